//! The kernel proper: the sandbox-wide state ([`Kernel`]) and the tasks that run in it.

pub mod capabilities;
mod control;
mod fd_table;
mod freezer;
pub mod processes;
mod sigframe;
pub mod signals;
mod task;
pub mod timers;

use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Instant, SystemTime};

use platform::Platform;

use crate::abi::*;
use crate::loader::{self, LoadError, StackInfo};
use crate::mm::{Layout, MemoryFile, MemoryManager, Placement, PROT_READ, PROT_WRITE};
use crate::vfs::{Location, MountTable, OpenFile};
pub use capabilities::{cap_from_name, CapSets};
pub use control::{Init, ProcessSpec, ProcessSummary, Spawned, Stdio, TerminalSpec};
pub use fd_table::{FdTable, FsContext, FsState};
use processes::ProcessTable;
pub use task::{
    entry_regs, ChildMemory, Credentials, Forked, NewTask, ProcessView, Restart, RestartBlock,
    SchedAttrs, SignalStack, Task, ThreadGroup, VforkDone,
};

/// The task a Sentry thread runs: each task is served by a host thread of its own, so
/// "who is asking" (for /proc/self) is a property of the thread.
#[derive(Debug, Clone)]
pub struct Current {
    pub tid: i32,
    pub tg: Arc<ThreadGroup>,
}

thread_local! {
    static CURRENT: RefCell<Option<Current>> = const { RefCell::new(None) };
}

/// The task the calling thread runs, if it runs one (Sentry threads of their own do not).
pub fn current() -> Option<Current> {
    CURRENT.with(|c| c.borrow().clone())
}

/// Records the task the calling thread runs from now on (None when it is done).
pub(crate) fn set_current(task: Option<Current>) {
    CURRENT.with(|c| *c.borrow_mut() = task);
}

/// How the sandbox was asked to behave.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Print every system call on stderr, strace style.
    pub strace: bool,
    /// Randomise where programs, the stack, the heap and mmap go (ASLR).
    pub randomize: bool,
    /// The sandbox's host name (uname's nodename); the host's if None.
    pub hostname: Option<String>,
    /// The root is mounted read-only (an OCI container's `root.readonly`). Mount points
    /// the start-up plan needs are still made in it (inode operations are not mount
    /// operations), as runc makes them before it remounts the root.
    pub read_only_root: bool,
}

/// How a guest process ended. `code()` is what runsc-rs exits with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Exited(u8),
    /// Killed by this signal.
    Signaled(i32),
}

impl ExitStatus {
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Exited(code) => code as i32,
            ExitStatus::Signaled(sig) => 128 + sig,
        }
    }
}

/// Failures to start a guest; each is one line for the user.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}: no such program")]
    NotFound(String),
    #[error("{path}: {reason}")]
    Exec {
        path: String,
        reason: String,
        errno: Errno,
    },
    #[error("{0}")]
    Platform(#[from] platform::Error),
    #[error("setting up the guest's memory: {0}")]
    Memory(Errno),
    /// The process asked for cannot be: a limit or descriptor number that does not exist.
    #[error("{0}")]
    Spec(String),
    /// The sandbox is not in a state to do it (no init yet, or init exited).
    #[error("{0}")]
    State(&'static str),
    /// A host-side failure on the way.
    #[error("{0}")]
    Host(String),
}

impl Error {
    /// What execve returns for this failure.
    pub fn errno(&self) -> Errno {
        match self {
            Error::NotFound(_) => Errno::ENOENT,
            Error::Exec { errno, .. } | Error::Memory(errno) => *errno,
            Error::Platform(_) => Errno::ENOMEM,
            Error::Spec(_) => Errno::EINVAL,
            Error::State(_) => Errno::ESRCH,
            Error::Host(_) => Errno::EAGAIN,
        }
    }
}

/// A program loaded into a new address space: its memory and where it starts.
pub struct Loaded {
    pub mm: Arc<MemoryManager>,
    pub entry: u64,
    pub sp: u64,
}

/// What `Kernel::load` needs besides the executable.
pub struct LoadArgs<'a> {
    /// The path the program was found by (AT_EXECFN), and the name for errors.
    pub execfn: &'a [u8],
    pub argv: &'a [Vec<u8>],
    pub envp: &'a [Vec<u8>],
    pub creds: &'a Credentials,
    /// The resource limits of the process (RLIMIT_STACK, RLIMIT_AS, ...).
    pub rlimits: [Rlimit; RLIM_NLIMITS],
}

/// What to run as the sandbox's first process.
#[derive(Debug, Clone)]
pub struct Exec {
    /// The program as the user named it: a path in the sandbox (relative to `cwd`), or a
    /// name to look up on the PATH in `envp`.
    pub program: String,
    pub argv: Vec<Vec<u8>>,
    pub envp: Vec<Vec<u8>>,
    /// The working directory in the sandbox; "/" if it does not exist there.
    pub cwd: String,
}

/// Reads a whole executable through the VFS: it must be a regular file with an execute bit
/// on a mount that allows exec (EACCES otherwise, as execve).
fn open_executable(location: &Location) -> Result<Arc<OpenFile>, Errno> {
    let attr = location.dentry.inode.attr()?;
    if attr.file_type() != Some(crate::vfs::FileType::Regular)
        || attr.mode & 0o111 == 0
        || location.mount.flags.noexec
    {
        return Err(Errno::EACCES);
    }
    open_read_only(location)
}

fn open_read_only(location: &Location) -> Result<Arc<OpenFile>, Errno> {
    let inode = location.dentry.inode.clone();
    let ops = inode.clone().open(crate::vfs::O_RDONLY)?;
    Ok(OpenFile::new(
        Some(location.clone()),
        inode,
        ops,
        crate::vfs::O_RDONLY,
    ))
}

/// The memory manager's limits from a process's resource limits.
pub fn memory_limits(rlimits: &[Rlimit; RLIM_NLIMITS], creds: &Credentials) -> crate::mm::Limits {
    crate::mm::Limits {
        address_space: rlimits[RLIMIT_AS as usize].cur,
        data: rlimits[RLIMIT_DATA as usize].cur,
        stack: rlimits[RLIMIT_STACK as usize].cur,
        memlock: rlimits[RLIMIT_MEMLOCK as usize].cur,
        lock_unlimited: creds.capable(CAP_IPC_LOCK),
    }
}

/// Random offsets of an address space's layout (all zero without randomisation), with
/// Linux's ranges on x86_64: 28 bits of pages for mmap and position-independent programs,
/// 16 GiB for the stack, 32 MiB for the heap.
#[derive(Debug, Clone, Copy, Default)]
struct Aslr {
    mmap: u64,
    program: u64,
    stack: u64,
    brk: u64,
}

impl Aslr {
    fn new(randomize: bool) -> Aslr {
        if !randomize {
            return Aslr::default();
        }
        let mut bytes = [0u8; 32];
        let _ = rustix::rand::getrandom(&mut bytes, rustix::rand::GetRandomFlags::empty());
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&bytes[i * 8..i * 8 + 8]);
            u64::from_le_bytes(w)
        };
        let pages = |w: u64, bits: u32| (w & ((1 << bits) - 1)) * PAGE_SIZE;
        Aslr {
            mmap: pages(word(0), 28),
            program: pages(word(1), 28),
            stack: pages(word(2), 22),
            brk: pages(word(3), 13),
        }
    }
}

/// Facts about the host, captured once at start-up, that the guest is shown.
#[derive(Debug, Clone)]
pub struct HostInfo {
    /// CPUs the sandbox may run on, bit n for CPU n.
    pub cpu_mask: Vec<u8>,
    pub hwcap: u64,
    pub hwcap2: u64,
    pub minsigstksz: u64,
    pub utsname: Utsname,
    pub rlimits: [Rlimit; RLIM_NLIMITS],
    /// The host's /proc/cpuinfo text (read now: later the Sentry can open no host file).
    pub cpuinfo: Vec<u8>,
    /// The host's memory in bytes (MemTotal), 0 if unknown.
    pub mem_total: u64,
}

impl HostInfo {
    fn capture() -> HostInfo {
        let mut cpu_mask = vec![0u8; 8];
        if let Ok(set) = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)) {
            for cpu in 0..nix::sched::CpuSet::count().min(cpu_mask.len() * 8) {
                if set.is_set(cpu).unwrap_or(false) {
                    cpu_mask[cpu / 8] |= 1 << (cpu % 8);
                }
            }
        }
        let (hwcap, hwcap2) = rustix::param::linux_hwcap();
        let mut utsname = Utsname {
            sysname: [0; 65],
            nodename: [0; 65],
            release: [0; 65],
            version: [0; 65],
            machine: [0; 65],
            domainname: [0; 65],
        };
        use std::os::unix::ffi::OsStrExt;
        if let Ok(u) = nix::sys::utsname::uname() {
            set_uts_field(&mut utsname.sysname, u.sysname().as_bytes());
            set_uts_field(&mut utsname.nodename, u.nodename().as_bytes());
            set_uts_field(&mut utsname.release, u.release().as_bytes());
            set_uts_field(&mut utsname.version, u.version().as_bytes());
            set_uts_field(&mut utsname.machine, u.machine().as_bytes());
        }
        set_uts_field(&mut utsname.domainname, b"(none)");
        let mut rlimits = [Rlimit {
            cur: RLIM_INFINITY,
            max: RLIM_INFINITY,
        }; RLIM_NLIMITS];
        for (i, slot) in rlimits.iter_mut().enumerate() {
            if let Ok(resource) = rustix_resource(i) {
                if let Ok((cur, max)) = nix::sys::resource::getrlimit(resource) {
                    *slot = Rlimit { cur, max };
                }
            }
        }
        HostInfo {
            cpu_mask,
            hwcap: hwcap as u64,
            hwcap2: hwcap2 as u64,
            minsigstksz: rustix::param::linux_minsigstksz() as u64,
            utsname,
            rlimits,
            cpuinfo: read_host_file("/proc/cpuinfo"),
            mem_total: mem_total(&read_host_file("/proc/meminfo")),
        }
    }
}

/// Sets a utsname field to `value`, cut at 64 bytes, NUL-padded.
pub fn set_uts_field(field: &mut [u8; 65], value: &[u8]) {
    let n = value.len().min(64);
    field.fill(0);
    field[..n].copy_from_slice(&value[..n]);
}

/// A host file's contents (at most 1 MiB), or nothing if it cannot be read.
fn read_host_file(path: &str) -> Vec<u8> {
    use std::io::Read;
    const MAX: u64 = 1 << 20;
    let mut bytes = Vec::new();
    if let Ok(file) = std::fs::File::open(path) {
        let _ = file.take(MAX).read_to_end(&mut bytes);
    }
    bytes
}

/// MemTotal of a /proc/meminfo text, in bytes.
fn mem_total(meminfo: &[u8]) -> u64 {
    String::from_utf8_lossy(meminfo)
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb.saturating_mul(1024))
}

/// The nix name of resource limit number `i`.
fn rustix_resource(i: usize) -> Result<nix::sys::resource::Resource, ()> {
    use nix::sys::resource::Resource::*;
    Ok(match i {
        0 => RLIMIT_CPU,
        1 => RLIMIT_FSIZE,
        2 => RLIMIT_DATA,
        3 => RLIMIT_STACK,
        4 => RLIMIT_CORE,
        5 => RLIMIT_RSS,
        6 => RLIMIT_NPROC,
        7 => RLIMIT_NOFILE,
        8 => RLIMIT_MEMLOCK,
        9 => RLIMIT_AS,
        10 => RLIMIT_LOCKS,
        11 => RLIMIT_SIGPENDING,
        12 => RLIMIT_MSGQUEUE,
        13 => RLIMIT_NICE,
        14 => RLIMIT_RTPRIO,
        15 => RLIMIT_RTTIME,
        _ => return Err(()),
    })
}

/// One sandbox: the platform, the memory file and what all tasks share.
pub struct Kernel {
    pub platform: Box<dyn Platform>,
    pub memory: Arc<MemoryFile>,
    pub config: Config,
    pub host: HostInfo,
    /// When the sandbox started (CLOCK_MONOTONIC and uptime are relative to the host's).
    pub started: Instant,
    /// The wall-clock time it started (the guest's boot time, /proc/stat's btime).
    pub booted: SystemTime,
    /// Every mount of the sandbox.
    pub mounts: MountTable,
    /// Every process of the sandbox.
    pub processes: ProcessTable,
    /// System V shared memory and semaphores.
    pub ipc: crate::ipc::IpcNamespace,
    /// The root of the sandbox's file system tree.
    pub root: Location,
    /// The names bound unix sockets are found by.
    pub unix_names: Arc<crate::net::unix::Names>,
    /// The pseudo-terminals (/dev/pts).
    pub devpts: Arc<crate::fs::tty::devpts::Devpts>,
    /// The console (/dev/console): init's host terminal, if it was started on one.
    console: OnceLock<Arc<crate::fs::tty::Tty>>,
    /// The host and domain names (sethostname, setdomainname), with the host's kernel
    /// names.
    utsname: Mutex<Utsname>,
    /// The gate into guest code that pausing the sandbox shuts.
    freezer: freezer::Freezer,
    /// Set once init has exited: no process can be started any more.
    init_exited: AtomicBool,
    /// System call numbers already reported as unsupported, so each is logged once.
    unsupported: Mutex<HashSet<u64>>,
    /// Other notices already logged.
    notices: Mutex<HashSet<&'static str>>,
}

impl Kernel {
    pub fn new(
        platform: Box<dyn Platform>,
        memory: Arc<MemoryFile>,
        config: Config,
        root: Arc<dyn crate::vfs::Inode>,
        root_type: &'static str,
    ) -> Arc<Kernel> {
        // What is made with the kernel and refers back to it (the console; procfs, mounted
        // later) holds a weak reference: the kernel owns it.
        let host = HostInfo::capture();
        let devpts = crate::fs::tty::devpts::Devpts::new(crate::fs::DEVPTS_DEV);
        Arc::new_cyclic(|kernel: &Weak<Kernel>| {
            let mounts = MountTable::default();
            // What goes over the root (/dev, /proc, ...) is the caller's plan: `mount`.
            let flags = crate::vfs::MountFlags {
                read_only: config.read_only_root,
                ..crate::vfs::MountFlags::default()
            };
            let root = mounts.root_with(root, root_type, flags);
            let mut utsname = host.utsname;
            if let Some(name) = &config.hostname {
                set_uts_field(&mut utsname.nodename, name.as_bytes());
            }
            let processes = ProcessTable::default();
            // An exiting process's semaphore adjustments (SEM_UNDO) are undone before its
            // parent can see the exit, as Linux's exit_sem in do_exit.
            let me = kernel.clone();
            processes.on_exit(Box::new(move |pid| {
                if let Some(kernel) = me.upgrade() {
                    kernel.ipc.process_exited(pid);
                }
            }));
            Kernel {
                platform,
                memory,
                config,
                host,
                started: Instant::now(),
                booted: SystemTime::now(),
                mounts,
                processes,
                ipc: crate::ipc::IpcNamespace::default(),
                root,
                unix_names: Arc::default(),
                devpts,
                console: OnceLock::new(),
                utsname: Mutex::new(utsname),
                freezer: freezer::Freezer::default(),
                init_exited: AtomicBool::new(false),
                unsupported: Mutex::new(HashSet::new()),
                notices: Mutex::new(HashSet::new()),
            }
        })
    }

    /// Makes one mount of the sandbox's start-up plan (`fs::mounts`), before the sandbox
    /// runs: `runsc-rs do`'s defaults and volumes, or a container's config.json, in order.
    pub fn mount(
        self: &Arc<Kernel>,
        spec: &crate::fs::mounts::MountSpec,
    ) -> Result<(), crate::fs::mounts::MountError> {
        let ns = crate::fs::mounts::Namespace {
            mounts: &self.mounts,
            root: &self.root,
            kernel: Arc::downgrade(self),
            devpts: &self.devpts,
            cpu_mask: &self.host.cpu_mask,
        };
        crate::fs::mounts::mount(&ns, spec)
    }

    /// The guest's memory as /proc/meminfo and sysinfo(2) show it: the total (the host's,
    /// or the memory file's size if that is smaller) and how much of it guests hold.
    pub fn memory_usage(&self) -> (u64, u64) {
        let total = if self.host.mem_total > 0 {
            self.host.mem_total.min(self.memory.size())
        } else {
            self.memory.size()
        };
        // What the sandbox's memory holds now: pages of the memory file that exist.
        let used = self.memory.resident(0, self.memory.size());
        (total, used.min(total))
    }

    /// Ends process `tg` if the host process behind its address space `mm` dies from
    /// outside (killed on the host while its threads sleep in the Sentry), as SIGKILL would.
    pub fn watch_address_space(&self, mm: &MemoryManager, tg: &Arc<ThreadGroup>) {
        let tg = Arc::downgrade(tg);
        mm.address_space().watch_death(Box::new(move || {
            if let Some(tg) = tg.upgrade() {
                log::warn!(
                    "the host process of guest process {} died: killing it",
                    tg.pid
                );
                signals::kill_process(&tg);
            }
        }));
    }

    /// Logs, once per number, that the guest used a system call the Sentry does not serve.
    /// Numbers no Linux uses are logged once together, so a guest cannot grow the set or
    /// flood the log.
    pub fn report_unsupported(&self, nr: u64) {
        const ANY_OTHER: u64 = u64::MAX;
        let key = if nr < 1024 { nr } else { ANY_OTHER };
        let mut seen = self.unsupported.lock().unwrap_or_else(|e| e.into_inner());
        if !seen.insert(key) {
            return;
        }
        if key == ANY_OTHER {
            log::warn!(
                "unsupported system call number {nr} (and any other above 1023): returning ENOSYS"
            );
        } else {
            let name = crate::syscalls::name(nr);
            log::warn!("unsupported system call {name} ({nr}): returning ENOSYS");
        }
    }

    /// Logs `message` once.
    pub fn report_once(&self, message: &'static str) {
        if self
            .notices
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(message)
        {
            log::warn!("{message}");
        }
    }

    /// The console (/dev/console): init's host terminal, if it was started on one.
    pub fn console(&self) -> Option<&Arc<crate::fs::tty::Tty>> {
        self.console.get()
    }

    /// The names uname(2) reports.
    pub fn utsname(&self) -> Utsname {
        *self.uts()
    }

    /// The names, to change the host or domain name (sethostname, setdomainname).
    pub fn uts(&self) -> MutexGuard<'_, Utsname> {
        self.utsname.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Loads the executable at `location` (and the interpreter it names) into a new
    /// address space, made on the calling thread (the one that will run it), with its
    /// initial stack.
    pub fn load(&self, location: &Location, args: &LoadArgs<'_>) -> Result<Loaded, Error> {
        let exec_err = |reason: String, errno: Errno| Error::Exec {
            path: String::from_utf8_lossy(args.execfn).into_owned(),
            reason,
            errno,
        };
        let file = open_executable(location).map_err(|e| exec_err(e.desc().to_lowercase(), e))?;
        let space = self.platform.new_address_space()?;
        let stack_limit = args.rlimits[RLIMIT_STACK as usize].cur;
        let aslr = Aslr::new(self.config.randomize);
        let layout = self.layout(stack_limit, &aslr);
        let mm = Arc::new(MemoryManager::new(space, self.memory.clone(), layout));
        mm.set_limits(memory_limits(&args.rlimits, args.creds));
        let base = loader::Base::Program {
            offset: aslr.program,
        };
        let image =
            loader::load_elf(&mm, &file, base).map_err(|e| exec_err(e.to_string(), e.errno()))?;
        let (entry, interpreter_base) = match &image.interpreter {
            None => (image.entry, 0),
            Some(name) => {
                let shown = String::from_utf8_lossy(name).into_owned();
                let start = crate::vfs::Start::new(&self.mounts, &self.root, &self.root);
                let interpreter = crate::vfs::resolve(start, name, true)
                    .and_then(|l| open_read_only(&l))
                    .map_err(|e| {
                        exec_err(
                            format!("interpreter {shown}: {}", e.desc().to_lowercase()),
                            e,
                        )
                    })?;
                // A file that is no interpreter makes the program a bad one (ELIBBAD).
                let loaded = loader::load_elf(&mm, &interpreter, loader::Base::Interpreter)
                    .map_err(|e| {
                        let errno = match e.errno() {
                            Errno::ENOEXEC => Errno::ELIBBAD,
                            errno => errno,
                        };
                        exec_err(format!("interpreter {shown}: {e}"), errno)
                    })?;
                (loaded.entry, loaded.bias)
            }
        };
        mm.set_brk_start(image.brk + aslr.brk);

        // The stack: what the arguments need and more, growing down on faults up to
        // RLIMIT_STACK.
        let stack_top = self.stack_top() - aslr.stack;
        let stack_size = 128 * 1024;
        let mut stack = crate::mm::Mapping::anonymous(PROT_READ | PROT_WRITE);
        stack.flags.growsdown = true;
        mm.map(Placement::Fixed(stack_top - stack_size), stack_size, stack)
            .map_err(Error::Memory)?;
        let creds = args.creds;
        let auxv = [
            (AT_PHDR, image.phdr),
            (AT_PHENT, image.phent),
            (AT_PHNUM, image.phnum),
            (AT_PAGESZ, PAGE_SIZE),
            (AT_BASE, interpreter_base),
            (AT_FLAGS, 0),
            (AT_ENTRY, image.entry),
            (AT_UID, creds.uid as u64),
            (AT_EUID, creds.euid as u64),
            (AT_GID, creds.gid as u64),
            (AT_EGID, creds.egid as u64),
            (AT_SECURE, u64::from(creds.exec_is_secure())),
            (AT_HWCAP, self.host.hwcap),
            (AT_HWCAP2, self.host.hwcap2),
            (AT_CLKTCK, 100),
            (AT_MINSIGSTKSZ, self.host.minsigstksz),
        ];
        let mut random = [0u8; 16];
        let _ = rustix::rand::getrandom(&mut random, rustix::rand::GetRandomFlags::empty());
        let info = StackInfo {
            argv: args.argv,
            envp: args.envp,
            execfn: args.execfn,
            auxv: &auxv,
            random,
        };
        // Linux allows argument and environment strings a quarter of the stack limit.
        let strings_limit = (stack_limit / 4).max(32 * PAGE_SIZE);
        let sp =
            loader::build_stack(&mm, stack_top, strings_limit, &info).map_err(|e| match e {
                LoadError::TooBig => exec_err(e.to_string(), Errno::E2BIG),
                e => Error::Memory(e.errno()),
            })?;
        Ok(Loaded { mm, entry, sp })
    }

    /// Finds `exec.program` in the sandbox as execvp(3) would: a name with a slash is a
    /// path, anything else is looked up on the PATH of `exec.envp`. Returns the file and the
    /// path it was found by (AT_EXECFN).
    fn find_program(&self, fs: &FsContext, exec: &Exec) -> Result<(Location, String), Error> {
        let state = fs.lock().clone();
        let start = crate::vfs::Start::new(&self.mounts, &state.root, &state.cwd);
        let usable = |path: &str| {
            let location = crate::vfs::resolve(start, path.as_bytes(), true).ok()?;
            let attr = location.dentry.inode.attr().ok()?;
            let regular = attr.file_type() == Some(crate::vfs::FileType::Regular);
            (regular && attr.mode & 0o111 != 0).then_some(location)
        };
        if exec.program.contains('/') {
            let location = crate::vfs::resolve(start, exec.program.as_bytes(), true)
                .map_err(|_| Error::NotFound(exec.program.clone()))?;
            return Ok((location, exec.program.clone()));
        }
        let path_var = exec
            .envp
            .iter()
            .find_map(|e| e.strip_prefix(b"PATH="))
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
        for dir in path_var.split(':').filter(|d| !d.is_empty()) {
            let candidate = format!("{}/{}", dir.trim_end_matches('/'), exec.program);
            if let Some(location) = usable(&candidate) {
                return Ok((location, candidate));
            }
        }
        Err(Error::NotFound(exec.program.clone()))
    }

    /// The first address above the guest's stack: one guard page below the platform's limit.
    fn stack_top(&self) -> u64 {
        self.platform.max_user_address() - PAGE_SIZE
    }

    fn layout(&self, stack_limit: u64, aslr: &Aslr) -> Layout {
        // Linux keeps at least 128 MiB (and at most the stack limit, up to 5/6 of the space)
        // between the stack and the top-down mmap area, plus the stack's random offset.
        let gap = stack_limit.clamp(128 << 20, 1 << 40) + aslr.stack;
        Layout {
            min: self.platform.min_user_address(),
            max: self.stack_top(),
            mmap_base: crate::abi::page_down(self.stack_top() - gap - aslr.mmap),
        }
    }
}

impl std::fmt::Debug for Kernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kernel")
            .field("platform", &self.platform.name())
            .finish()
    }
}
