//! Starting the gofer: the process that serves the sandbox's root file system to the Sentry
//! over a shared-memory ring. runsc-rs re-executes itself as `runsc-rs gofer`.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gofer::client::{Client, ClientOptions};
use gofer::ring::{RingConfig, RingFds, ShmBackEnd, ShmFrontEnd};
use gofer::server::{Server, ServerOptions};
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::spawn::{posix_spawn, PosixSpawnAttr, PosixSpawnFileActions};
use nix::sys::stat::Mode;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

/// The ring's shape: 64 requests in flight, 1 MiB payloads (reads and writes are split into
/// pieces of this size).
pub const RING: RingConfig = RingConfig {
    slots: 64,
    data_slot_size: 1 << 20,
};

/// Where the gofer finds its ring: memory, request eventfd, response eventfd.
const RING_FDS: [i32; 3] = [3, 4, 5];

/// A running gofer process and the client connected to it.
pub struct Gofer {
    pub client: Arc<Client>,
    pid: Pid,
    /// Set when runsc-rs itself shuts the gofer down, so its exit is not reported as a death.
    stopping: Arc<AtomicBool>,
}

impl Gofer {
    /// Starts `runsc-rs gofer` serving `root` (read-only if asked) and connects to it.
    pub fn start(root: &Path, read_only: bool) -> Result<Gofer, String> {
        let (front, fds) =
            ShmFrontEnd::create(RING).map_err(|e| format!("creating the gofer's ring: {e}"))?;
        let exe = std::fs::read_link("/proc/self/exe")
            .map_err(|e| format!("finding runsc-rs itself: {e}"))?;
        let cstr = |s: &str| CString::new(s).map_err(|_| format!("{s:?} contains a NUL byte"));
        let mut args = vec![cstr("runsc-rs")?, cstr("gofer")?, cstr("--root")?];
        args.push(
            CString::new(root.as_os_str().as_encoded_bytes())
                .map_err(|_| "root path has a NUL byte".to_string())?,
        );
        if read_only {
            args.push(cstr("--read-only")?);
        }
        let env: Vec<CString> = Vec::new();
        let mut actions =
            PosixSpawnFileActions::init().map_err(|e| format!("posix_spawn set-up: {e}"))?;
        // Duplicate each ring descriptor above the target numbers first, so dup2 never meets
        // a descriptor already at its target (which would keep close-on-exec set).
        let ring = [fds.memory, fds.requests, fds.responses];
        let mut high: Vec<OwnedFd> = Vec::new();
        for (fd, target) in ring.iter().zip(RING_FDS) {
            let dup = fcntl(fd, FcntlArg::F_DUPFD_CLOEXEC(64))
                .map_err(|e| format!("duplicating a ring descriptor: {e}"))?;
            let dup = nix_owned(dup)?;
            actions
                .add_dup2(dup.as_raw_fd(), target)
                .map_err(|e| format!("posix_spawn set-up: {e}"))?;
            high.push(dup);
        }
        actions
            .add_open(0, c"/dev/null", OFlag::O_RDONLY, Mode::empty())
            .and_then(|()| actions.add_open(1, c"/dev/null", OFlag::O_WRONLY, Mode::empty()))
            .map_err(|e| format!("posix_spawn set-up: {e}"))?;
        let attr = PosixSpawnAttr::init().map_err(|e| format!("posix_spawn set-up: {e}"))?;
        let pid = posix_spawn(exe.as_path(), &actions, &attr, &args, &env)
            .map_err(|e| format!("starting the gofer: {e}"))?;
        drop(high);
        let pidfd = rustix::process::Pid::from_raw(pid.as_raw()).and_then(|p| {
            rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok()
        });
        let options = ClientOptions {
            timeout: Duration::from_secs(30),
            server_process: pidfd,
        };
        let client = Client::connect(front, options).map_err(|e| {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = waitpid(pid, None);
            format!("connecting to the gofer: {e}")
        })?;
        Ok(Gofer {
            client: Arc::new(client),
            pid,
            stopping: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Starts a thread that reaps the gofer when it exits and says so once if that was not
    /// asked for: from then on the guest's file calls fail with EIO. (Separate from `start`
    /// so that the caller can confine itself before it has threads.)
    pub fn watch(&self) {
        let (pid, stopping) = (self.pid, self.stopping.clone());
        std::thread::spawn(move || {
            let how = match waitpid(pid, None) {
                Ok(WaitStatus::Exited(_, code)) => format!("exited with status {code}"),
                Ok(WaitStatus::Signaled(_, sig, _)) => format!("was killed by {sig}"),
                Ok(other) => format!("stopped ({other:?})"),
                Err(e) => format!("could not be waited for ({e})"),
            };
            if !stopping.load(Ordering::SeqCst) {
                eprintln!("runsc-rs: the gofer (pid {pid}) {how}; the sandbox's file operations now fail with EIO");
            }
        });
    }

    /// Asks the gofer to stop (the watcher thread reaps it).
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        if self.client.shutdown().is_err() {
            let _ = nix::sys::signal::kill(self.pid, nix::sys::signal::Signal::SIGKILL);
        }
    }
}

impl Drop for Gofer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Takes ownership of a descriptor nix returned as a raw number.
fn nix_owned(fd: i32) -> Result<OwnedFd, String> {
    platform::fd::take_inherited(fd).map_err(|e| format!("taking a descriptor: {e}"))
}

/// `runsc-rs gofer`: serves `root` on the ring whose descriptors were inherited.
pub fn serve(root: &Path, read_only: bool) -> Result<(), String> {
    // Die with runsc-rs; if it is already gone, stop now.
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
        .map_err(|e| format!("prctl: {e}"))?;
    if nix::unistd::getppid() == Pid::from_raw(1) {
        return Err("runsc-rs exited before the gofer started".into());
    }
    let take =
        |fd| platform::fd::take_inherited(fd).map_err(|e| format!("ring descriptor {fd}: {e}"));
    let fds = RingFds {
        memory: take(RING_FDS[0])?,
        requests: take(RING_FDS[1])?,
        responses: take(RING_FDS[2])?,
    };
    let root = crate::confine::pivot_into(root, read_only, "the gofer")?;
    let root_fd = nix::fcntl::open(
        root,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("opening the root {}: {e}", root.display()))?;
    let ring = ShmBackEnd::attach(RING, fds).map_err(|e| format!("attaching to the ring: {e}"))?;
    // Every fid the Sentry holds is a host descriptor here: allow as many as the host lets
    // this process have.
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let max_fids = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((_, hard)) => {
            let hard = hard.min(1 << 20);
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
            (hard as usize).saturating_sub(64).max(256)
        }
        Err(_) => ServerOptions::default().max_fids,
    };
    let options = ServerOptions {
        read_only,
        max_fids,
    };
    let mut server = Server::new(ring, root_fd, options).map_err(|e| e.to_string())?;
    let allowed = crate::confine::Allowed {
        calls: GOFER_SYSCALLS,
        ioctls: &[],
        refused: &[],
    };
    crate::confine::seccomp("the gofer", &allowed, false)?;
    server.serve().map_err(|e| e.to_string())
}

/// What the gofer may ask of the host once it serves: file operations relative to the
/// descriptors it holds, ring I/O, memory, threads, time. Anything else kills it.
const GOFER_SYSCALLS: &[i64] = &[
    libc::SYS_read,
    libc::SYS_write,
    libc::SYS_readv,
    libc::SYS_writev,
    libc::SYS_poll,
    libc::SYS_ppoll,
    libc::SYS_close,
    libc::SYS_fcntl,
    libc::SYS_dup,
    libc::SYS_dup3,
    libc::SYS_mmap,
    libc::SYS_munmap,
    libc::SYS_mremap,
    libc::SYS_mprotect,
    libc::SYS_madvise,
    libc::SYS_brk,
    libc::SYS_futex,
    libc::SYS_sched_yield,
    libc::SYS_exit,
    libc::SYS_exit_group,
    libc::SYS_rt_sigreturn,
    libc::SYS_rt_sigaction,
    libc::SYS_rt_sigprocmask,
    libc::SYS_sigaltstack,
    libc::SYS_getpid,
    libc::SYS_gettid,
    libc::SYS_tgkill,
    libc::SYS_clock_gettime,
    libc::SYS_clock_nanosleep,
    libc::SYS_nanosleep,
    libc::SYS_getrandom,
    libc::SYS_restart_syscall,
    libc::SYS_openat,
    libc::SYS_openat2,
    libc::SYS_newfstatat,
    libc::SYS_fstat,
    libc::SYS_statx,
    libc::SYS_fstatfs,
    libc::SYS_getdents64,
    libc::SYS_lseek,
    libc::SYS_pread64,
    libc::SYS_pwrite64,
    libc::SYS_preadv,
    libc::SYS_pwritev,
    libc::SYS_readlinkat,
    libc::SYS_mkdirat,
    libc::SYS_mknodat,
    libc::SYS_symlinkat,
    libc::SYS_linkat,
    libc::SYS_unlinkat,
    libc::SYS_renameat,
    libc::SYS_renameat2,
    libc::SYS_fchmod,
    libc::SYS_fchmodat,
    libc::SYS_fchown,
    libc::SYS_fchownat,
    libc::SYS_ftruncate,
    libc::SYS_utimensat,
    libc::SYS_fsync,
    libc::SYS_fdatasync,
];
