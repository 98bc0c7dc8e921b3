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
        let stopping = Arc::new(AtomicBool::new(false));
        watch(pid, stopping.clone());
        Ok(Gofer {
            client: Arc::new(client),
            pid,
            stopping,
        })
    }

    /// Asks the gofer to stop (the watcher thread reaps it).
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        if self.client.shutdown().is_err() {
            let _ = nix::sys::signal::kill(self.pid, nix::sys::signal::Signal::SIGKILL);
        }
    }
}

/// Takes ownership of a descriptor nix returned as a raw number.
fn nix_owned(fd: i32) -> Result<OwnedFd, String> {
    platform::fd::take_inherited(fd).map_err(|e| format!("taking a descriptor: {e}"))
}

/// Reaps the gofer when it exits, and says so once if that was not asked for: from then on
/// the guest's file calls fail with EIO.
fn watch(pid: Pid, stopping: Arc<AtomicBool>) {
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
    let root = confine_mounts(root, read_only)?;
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
    install_seccomp()?;
    server.serve().map_err(|e| e.to_string())
}

/// Gives the gofer a mount namespace of its own in which `root` is all there is: it is
/// bind-mounted on itself (read-only if nothing may be written), made the root with
/// pivot_root, and the old root is detached. Returns the path to serve from then on.
/// Serving the host's "/" itself, there is nothing narrower to pivot into.
fn confine_mounts(root: &Path, read_only: bool) -> Result<&'static Path, String> {
    use nix::mount::{mount, umount2, MntFlags, MsFlags};
    let fail = |what: &str, e: nix::errno::Errno| format!("confining the gofer ({what}): {e}");
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| fail("unshare(CLONE_NEWNS)", e))?;
    // Nothing mounted or unmounted here may reach the host's namespace.
    let private = MsFlags::MS_REC | MsFlags::MS_PRIVATE;
    mount(None::<&str>, "/", None::<&str>, private, None::<&str>)
        .map_err(|e| fail("making mounts private", e))?;
    let root =
        std::fs::canonicalize(root).map_err(|e| format!("the root {}: {e}", root.display()))?;
    if root == Path::new("/") {
        return Ok(Path::new("/"));
    }
    let bind = MsFlags::MS_BIND | MsFlags::MS_REC;
    mount(Some(&root), &root, None::<&str>, bind, None::<&str>)
        .map_err(|e| fail("bind-mounting the root", e))?;
    if read_only {
        let flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY;
        mount(None::<&str>, &root, None::<&str>, flags, None::<&str>)
            .map_err(|e| fail("making the root read-only", e))?;
    }
    nix::unistd::chdir(&root).map_err(|e| fail("chdir", e))?;
    nix::unistd::pivot_root(".", ".").map_err(|e| fail("pivot_root", e))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| fail("detaching the old root", e))?;
    nix::unistd::chdir("/").map_err(|e| fail("chdir /", e))?;
    Ok(Path::new("/"))
}

/// The gofer's seccomp allow-list: the file operations it serves, its ring (eventfd read,
/// write, poll) and what the Rust runtime needs. Anything else kills it (SIGSYS), which the
/// Sentry then reports as the gofer dying.
fn install_seccomp() -> Result<(), String> {
    use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, TargetArch};
    let allowed = [
        // Ring and housekeeping.
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
        // File operations, always relative to a descriptor the server holds.
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
    let rules = allowed.iter().map(|&nr| (nr, vec![])).collect();
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::KillProcess,
        SeccompAction::Allow,
        TargetArch::x86_64,
    )
    .map_err(|e| format!("building the gofer's seccomp filter: {e}"))?;
    let program: BpfProgram = filter
        .try_into()
        .map_err(|e| format!("compiling the gofer's seccomp filter: {e:?}"))?;
    seccompiler::apply_filter(&program)
        .map_err(|e| format!("installing the gofer's seccomp filter: {e}"))
}
