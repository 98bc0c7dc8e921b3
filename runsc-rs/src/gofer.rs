//! Starting the gofer: the process that serves the sandbox's root file system to the Sentry
//! over shared-memory rings. runsc-rs re-executes itself as `runsc-rs gofer --rings N`,
//! which serves each ring on a thread of its own with one fid table, so that the Sentry's
//! threads (one per guest process) can have N requests in flight at once.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use gofer::client::{Client, ClientOptions};
use gofer::ring::{RingConfig, RingFds, ShmBackEnd, ShmFrontEnd};
use gofer::server::{Server, ServerOptions};
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::spawn::{posix_spawn, PosixSpawnAttr, PosixSpawnFileActions};
use nix::sys::stat::Mode;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

/// A ring's shape: 1 MiB payloads (reads and writes are split into pieces of this size),
/// and one slot, because the client has one request in flight per ring (a call waits for
/// its response before the ring takes another). Ring memory is populated up front in both
/// processes, so unused slots are not free: a ring of 64 slots cost ≈70 ms of start-up and
/// 64 MiB in each process, and used only its first data slot. Concurrency comes from more
/// rings (`--gofer-rings`); a client that pipelines requests on one ring would need more
/// slots.
pub const RING: RingConfig = RingConfig {
    slots: 1,
    data_slot_size: 1 << 20,
};

/// Where the gofer finds its first ring: memory, request eventfd, response eventfd. Ring `i`
/// is at these plus `3 * i`.
const RING_FDS: [i32; 3] = [3, 4, 5];

/// Most rings one gofer serves (`--gofer-rings`): each costs a thread in the gofer and a
/// populated ring in both processes (see [`RING`]).
pub const MAX_RINGS: u32 = 16;

/// Parses a ring count for the command line: 1 to [`MAX_RINGS`].
pub fn parse_rings(arg: &str) -> Result<u32, String> {
    match arg.parse::<u32>() {
        Ok(n) if (1..=MAX_RINGS).contains(&n) => Ok(n),
        _ => Err(format!("a ring count is a number from 1 to {MAX_RINGS}")),
    }
}

/// The inherited descriptor numbers of ring `i`.
fn ring_fds(i: usize) -> [i32; 3] {
    // i < MAX_RINGS, so this stays small.
    RING_FDS.map(|fd| fd + 3 * i as i32)
}

/// Where ring descriptors wait before `posix_spawn` moves them into place: above every
/// target, so that no dup2 meets a descriptor already at its target (which would keep
/// close-on-exec set).
const SPARE_FDS_FROM: i32 = 3 + 3 * MAX_RINGS as i32 + 16;

/// How long [`Gofer::stop`] waits for a gofer it shut down to exit.
const STOP_WAIT: Duration = Duration::from_secs(2);

/// A running gofer process and the client connected to it.
pub struct Gofer {
    pub client: Arc<Client>,
    pid: Pid,
    /// Set when runsc-rs itself shuts the gofer down, so its exit is not reported as a death.
    stopping: Arc<AtomicBool>,
    /// Set by [`Gofer::watch`]: a thread reaps the gofer and fills `exit`.
    watched: AtomicBool,
    exit: Arc<Exit>,
}

/// How the gofer ended, once the watcher thread has reaped it: whether cleanly (status 0),
/// and how, in words.
#[derive(Default)]
struct Exit {
    ended: Mutex<Option<(bool, String)>>,
    reaped: Condvar,
    /// Set once the gofer's death has been reported, so that it is reported once.
    reported: AtomicBool,
}

impl Exit {
    /// Says, once, that gofer `pid` died on its own.
    fn report_death(&self, pid: Pid, how: &str) {
        if !self.reported.swap(true, Ordering::SeqCst) {
            eprintln!("runsc-rs: the gofer (pid {pid}) {how}; the sandbox's file operations now fail with EIO");
        }
    }
}

/// What a gofer serves: a host directory, or host files gathered in a directory of their
/// own (see [`Gofer::start_files`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Served {
    Dir {
        path: PathBuf,
        read_only: bool,
    },
    /// Each file with whether it is read-only; file `i` is named `i`.
    Files(Vec<(PathBuf, bool)>),
}

impl Served {
    /// The `runsc-rs gofer` arguments that ask for this.
    fn args(&self) -> Vec<std::ffi::OsString> {
        match self {
            Served::Dir { path, read_only } => {
                let mut args = vec!["--dir".into(), path.into()];
                if *read_only {
                    args.push("--read-only".into());
                }
                args
            }
            Served::Files(files) => files
                .iter()
                .flat_map(|(path, read_only)| {
                    let mut file = std::ffi::OsString::from(if *read_only { "ro:" } else { "rw:" });
                    file.push(path);
                    ["--file".into(), file]
                })
                .collect(),
        }
    }
}

/// Parses `--file MODE:PATH` (MODE is ro or rw).
pub fn parse_file(arg: &str) -> Result<(PathBuf, bool), String> {
    match arg.split_once(':') {
        Some(("ro", path)) if !path.is_empty() => Ok((PathBuf::from(path), true)),
        Some(("rw", path)) if !path.is_empty() => Ok((PathBuf::from(path), false)),
        _ => Err(format!("{arg:?} is not ro:PATH or rw:PATH")),
    }
}

impl Gofer {
    /// Starts `runsc-rs gofer` serving `root` (read-only if asked) over `rings` rings (1 to
    /// [`MAX_RINGS`]) and connects to it.
    pub fn start(root: &Path, read_only: bool, rings: u32) -> Result<Gofer, String> {
        let served = Served::Dir {
            path: root.to_path_buf(),
            read_only,
        };
        Gofer::spawn(&served, rings)
    }

    /// Starts a gofer that serves host files (for file bind mounts) as the entries `0`,
    /// `1`, ... of its root, each read-only if asked. Serving each file's parent directory
    /// instead would show the Sentry, which is assumed compromised, the files beside it
    /// (Docker's container directory holds the container's config and logs); and one gofer
    /// for all of a container's files costs one start-up, not one per file or directory.
    pub fn start_files(files: &[(PathBuf, bool)], rings: u32) -> Result<Gofer, String> {
        Gofer::spawn(&Served::Files(files.to_vec()), rings)
    }

    fn spawn(served: &Served, rings: u32) -> Result<Gofer, String> {
        parse_rings(&rings.to_string())?;
        let mut fronts = Vec::new();
        let mut ring_fds_list = Vec::new();
        for _ in 0..rings {
            let (front, fds) = ShmFrontEnd::create(RING)
                .map_err(|e| format!("creating the gofer's rings: {e}"))?;
            fronts.push(front);
            ring_fds_list.push(fds);
        }
        let exe = std::fs::read_link("/proc/self/exe")
            .map_err(|e| format!("finding runsc-rs itself: {e}"))?;
        let cstr = |s: &str| CString::new(s).map_err(|_| format!("{s:?} contains a NUL byte"));
        let mut args = vec![cstr("runsc-rs")?, cstr("gofer")?];
        for arg in served.args() {
            args.push(
                CString::new(arg.as_encoded_bytes())
                    .map_err(|_| format!("{arg:?} has a NUL byte"))?,
            );
        }
        args.push(cstr("--rings")?);
        args.push(cstr(&rings.to_string())?);
        let env: Vec<CString> = Vec::new();
        let mut actions =
            PosixSpawnFileActions::init().map_err(|e| format!("posix_spawn set-up: {e}"))?;
        let mut high: Vec<OwnedFd> = Vec::new();
        for (i, fds) in ring_fds_list.into_iter().enumerate() {
            let ring = [fds.memory, fds.requests, fds.responses];
            for (fd, target) in ring.iter().zip(ring_fds(i)) {
                let dup = fcntl(fd, FcntlArg::F_DUPFD_CLOEXEC(SPARE_FDS_FROM))
                    .map_err(|e| format!("duplicating a ring descriptor: {e}"))?;
                let dup = nix_owned(dup)?;
                actions
                    .add_dup2(dup.as_raw_fd(), target)
                    .map_err(|e| format!("posix_spawn set-up: {e}"))?;
                high.push(dup);
            }
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
        let client = Client::connect_rings(fronts, options).map_err(|e| {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = waitpid(pid, None);
            format!("connecting to the gofer: {e}")
        })?;
        Ok(Gofer {
            client: Arc::new(client),
            pid,
            stopping: Arc::new(AtomicBool::new(false)),
            watched: AtomicBool::new(false),
            exit: Arc::new(Exit::default()),
        })
    }

    /// Starts a thread that reaps the gofer when it exits and says so once if that was not
    /// asked for: from then on the guest's file calls fail with EIO. (Separate from `start`
    /// so that the caller can confine itself before it has threads.)
    pub fn watch(&self) {
        let (pid, stopping, exit) = (self.pid, self.stopping.clone(), self.exit.clone());
        self.watched.store(true, Ordering::SeqCst);
        std::thread::spawn(move || {
            let status = waitpid(pid, None);
            let how = match status {
                Ok(WaitStatus::Exited(_, code)) => format!("exited with status {code}"),
                Ok(WaitStatus::Signaled(_, sig, _)) => format!("was killed by {sig}"),
                Ok(other) => format!("stopped ({other:?})"),
                Err(e) => format!("could not be waited for ({e})"),
            };
            if !stopping.load(Ordering::SeqCst) {
                exit.report_death(pid, &how);
            }
            let clean = matches!(status, Ok(WaitStatus::Exited(_, 0)));
            *exit.ended.lock().unwrap_or_else(PoisonError::into_inner) = Some((clean, how));
            exit.reaped.notify_all();
        });
    }

    /// Asks the gofer to stop and, if it is watched, waits for it to exit. A gofer asked to
    /// stop exits at once with status 0; anything else (such as a seccomp kill on its way
    /// out: a call missing from [`GOFER_SYSCALLS`]) is a bug worth one line.
    pub fn stop(&self) {
        let kill = || {
            let _ = nix::sys::signal::kill(self.pid, nix::sys::signal::Signal::SIGKILL);
        };
        if self.client.shutdown().is_err() {
            // Gone or broken before it was asked to stop: a death, reported once, by its
            // watcher or here if the sandbox ends before the watcher gets to it.
            kill();
            if self.watched.load(Ordering::SeqCst) {
                if let Some((_, how)) = &*self.wait_ended() {
                    self.exit.report_death(self.pid, how);
                }
            }
            return;
        }
        self.stopping.store(true, Ordering::SeqCst);
        if !self.watched.load(Ordering::SeqCst) {
            return;
        }
        let ended = self.wait_ended();
        match &*ended {
            Some((true, _)) => {}
            Some((false, how)) => {
                eprintln!(
                    "runsc-rs: the gofer (pid {}) {how} when asked to stop",
                    self.pid
                )
            }
            None => {
                eprintln!(
                    "runsc-rs: the gofer (pid {}) did not exit within {STOP_WAIT:?} of being asked to stop; killing it",
                    self.pid
                );
                kill();
            }
        }
    }
}

impl Gofer {
    /// Waits (at most [`STOP_WAIT`]) for the watcher to have reaped the gofer.
    fn wait_ended(&self) -> std::sync::MutexGuard<'_, Option<(bool, String)>> {
        let ended = self
            .exit
            .ended
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.exit
            .reaped
            .wait_timeout_while(ended, STOP_WAIT, |ended| ended.is_none())
            .unwrap_or_else(PoisonError::into_inner)
            .0
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

/// `runsc-rs gofer`: serves `served` on the `rings` rings whose descriptors were inherited.
pub fn serve(served: &Served, rings: usize) -> Result<(), String> {
    // Die with runsc-rs; if it is already gone, stop now.
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
        .map_err(|e| format!("prctl: {e}"))?;
    if nix::unistd::getppid() == Pid::from_raw(1) {
        return Err("runsc-rs exited before the gofer started".into());
    }
    let take =
        |fd| platform::fd::take_inherited(fd).map_err(|e| format!("ring descriptor {fd}: {e}"));
    let mut inherited = Vec::with_capacity(rings);
    for i in 0..rings {
        let [memory, requests, responses] = ring_fds(i);
        inherited.push(RingFds {
            memory: take(memory)?,
            requests: take(requests)?,
            responses: take(responses)?,
        });
    }
    let (root, read_only) = match served {
        Served::Dir { path, read_only } => (
            crate::confine::pivot_into(path, *read_only, "the gofer")?,
            *read_only,
        ),
        // Read-only files are read-only mounts in the gofer's namespace.
        Served::Files(files) => (crate::confine::pivot_into_files(files, "the gofer")?, false),
    };
    let root_fd = nix::fcntl::open(
        root,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("opening the root {}: {e}", root.display()))?;
    let rings = inherited
        .into_iter()
        .map(|fds| ShmBackEnd::attach(RING, fds))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("attaching to a ring: {e}"))?;
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
    let mut server = Server::with_rings(rings, root_fd, options).map_err(|e| e.to_string())?;
    let allowed = crate::confine::Allowed {
        calls: GOFER_SYSCALLS,
        ioctls: &[],
        refused: &[],
    };
    // The rings' threads exist before the filter is installed, on all of them (TSYNC), and
    // serve nothing until it is: the allow-list needs no clone.
    server
        .serve_confined(|| crate::confine::seccomp("the gofer", &allowed, true))
        .map_err(|e| e.to_string())
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
