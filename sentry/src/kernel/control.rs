//! What the runtime outside the sandbox asks of it (gVisor's control server, as calls):
//! starting its init and further processes (`do`; runc create, start and exec), waiting
//! for them, signalling them as from outside, listing them (runc ps) and pausing the whole
//! sandbox (runc pause and resume).

use std::marker::PhantomData;
use std::os::fd::OwnedFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::signals::{self, SigInfo};
use super::ThreadGroup;
use super::{Credentials, Error, Exec, ExitStatus, FdTable, FsContext, Kernel, LoadArgs, Task};
use crate::abi::*;
use crate::fs::tty::{ConsoleSetup, HostTtyNode, Tty};
use crate::vfs::{Location, NewNode, OpenFile, Owner, Start, O_RDWR, S_IFCHR};

/// How long the end of the sandbox waits for its other processes to die once init has
/// exited: SIGKILL ends each promptly, so this only bounds a Sentry bug.
const KILL_WAIT: Duration = Duration::from_secs(10);
/// The most of a process's arguments `ps` reads.
const MAX_CMDLINE: u64 = 1 << 20;

/// A process to start in the sandbox, as an OCI runtime describes one (config.json's
/// `process`; runc exec's flags).
#[derive(Debug)]
pub struct ProcessSpec {
    /// The program, its arguments, environment and working directory.
    pub exec: Exec,
    /// Its user and group ids (real, effective and saved alike) and supplementary groups.
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    /// PR_SET_NO_NEW_PRIVS from the start.
    pub no_new_privs: bool,
    /// Its capability sets before its first execve (OCI's `process.capabilities`); None
    /// gives root all and anyone else none, as for a process a root shell starts.
    pub caps: Option<super::CapSets>,
    /// Resource limits in place of the host's: (RLIMIT_* number, limit).
    pub rlimits: Vec<(u32, Rlimit)>,
    /// The file mode creation mask; None keeps the default (022).
    pub umask: Option<u32>,
    pub stdio: Stdio,
}

impl ProcessSpec {
    /// The credentials the process starts with. The one place they are made from a spec,
    /// so whatever else credentials come to hold is set here too.
    pub fn credentials(&self) -> Credentials {
        let creds = Credentials::new(self.uid, self.gid, self.groups.clone());
        let creds = match self.caps {
            Some(caps) => creds.with_caps(caps),
            None => creds,
        };
        // The first program runs as a runtime's execve(2) would leave it (capabilities(7)).
        creds.with_no_new_privs(self.no_new_privs).for_exec()
    }
}

/// The descriptors a new process starts with. A number given twice is the terminal's.
#[derive(Debug, Default)]
pub struct Stdio {
    /// Host descriptors, each open at a guest number: standard streams, and the
    /// descriptors runc's `--preserve-fds` passes from 3 on.
    pub files: Vec<(i32, OwnedFd)>,
    /// A host terminal that becomes the process's controlling terminal.
    pub terminal: Option<TerminalSpec>,
}

/// A host terminal for a new process, which the caller has made raw: the Sentry runs its
/// line discipline. For the sandbox's init it is also the console (/dev/console).
#[derive(Debug)]
pub struct TerminalSpec {
    /// Where the terminal's keys are read from.
    pub input: OwnedFd,
    /// Where output is written: a descriptor of the same terminal (or a copy of `input`).
    pub output: OwnedFd,
    /// The settings and size the guest sees first: the terminal's before it was made raw.
    pub setup: ConsoleSetup,
    /// The guest descriptors open on it.
    pub fds: Vec<i32>,
}

impl Stdio {
    /// Host descriptors at the guest numbers given, with no terminal.
    pub fn host(files: Vec<(i32, OwnedFd)>) -> Stdio {
        Stdio {
            files,
            terminal: None,
        }
    }

    /// Host terminal `tty` (made raw already; `setup` is what the guest starts from) as
    /// descriptors 0, 1 and 2 and the controlling terminal.
    pub fn terminal(tty: OwnedFd, setup: ConsoleSetup) -> std::io::Result<Stdio> {
        let output = tty.try_clone()?;
        Ok(Stdio {
            files: Vec::new(),
            terminal: Some(TerminalSpec {
                input: tty,
                output,
                setup,
                fds: vec![0, 1, 2],
            }),
        })
    }
}

/// The sandbox's init (pid 1), loaded and ready to run. It runs on the thread that
/// prepared it, which the platform made its tracer (hence not `Send`). Dropped without
/// running, it ends as if killed.
pub struct Init {
    kernel: Arc<Kernel>,
    ready: Option<Ready>,
    _same_thread: PhantomData<*const ()>,
}

impl Init {
    /// Runs init on the calling thread until it exits; then, as when a pid namespace's
    /// init dies, every other process of the sandbox is killed and this returns once they
    /// have all exited. Returns how init ended.
    pub fn run(mut self) -> ExitStatus {
        if let Some(ready) = self.ready.take() {
            ready.run();
        }
        // The first thread may end before the process does (it exits alone, or another
        // thread execs): the sandbox lasts as long as init does.
        let status = self.kernel.processes.wait_exit(1);
        self.kernel.kill_all_but_init();
        status
    }
}

impl Drop for Init {
    fn drop(&mut self) {
        if let Some(ready) = self.ready.take() {
            ready.task.exit_thread(ExitStatus::Signaled(SIGKILL));
            self.kernel.kill_all_but_init();
        }
    }
}

/// A process started in the running sandbox ([`Kernel::spawn`]).
#[derive(Debug, Clone)]
pub struct Spawned {
    pub pid: i32,
    /// Its terminal, if it was given one (to resize it: [`Tty::set_winsize`]).
    pub terminal: Option<Arc<Tty>>,
}

/// One process as `ps` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessSummary {
    pub pid: i32,
    /// 0 for init and for processes started from outside the sandbox.
    pub ppid: i32,
    pub uid: u32,
    /// R (running guest code now), S (in the Sentry: a system call, a wait), T (stopped)
    /// or Z (a zombie).
    pub state: char,
    /// When it started, from the sandbox's boot.
    pub started: Duration,
    /// CPU time it used: its guest code and the Sentry's work for it.
    pub cpu: Duration,
    pub comm: String,
    /// Its arguments; empty for a zombie.
    pub cmdline: Vec<String>,
}

/// Where a new process goes in the process tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placement {
    Init,
    /// No parent in the sandbox (runc exec).
    Detached,
}

/// A new process, loaded and ready to run on the thread that loaded it.
struct Ready {
    task: Task,
    terminal: Option<Arc<Tty>>,
}

impl Ready {
    fn run(self) -> ExitStatus {
        if let Some(tty) = &self.terminal {
            if let Err(e) = tty.start_host_input() {
                log::warn!("reading the terminal: {e}");
            }
        }
        self.task.run_to_exit()
    }
}

impl Kernel {
    /// Makes the sandbox's init (pid 1) from `spec`, loaded and ready to run on the calling
    /// thread ([`Init::run`]). Fails with one line for the user if the program cannot be
    /// found or loaded, before anything of the process exists.
    pub fn prepare_init(self: &Arc<Kernel>, spec: ProcessSpec) -> Result<Init, Error> {
        let ready = self.new_process(spec, Placement::Init)?;
        Ok(Init {
            kernel: self.clone(),
            ready: Some(ready),
            _same_thread: PhantomData,
        })
    }

    /// Starts a process from `spec` in the running sandbox (runc exec), on a Sentry thread
    /// of its own: it has no parent in the sandbox, leads a session and process group of
    /// its own, and its terminal, if it has one, is its controlling terminal. Returns once
    /// it is loaded; [`Kernel::wait_process`] tells how it ends.
    pub fn spawn(self: &Arc<Kernel>, spec: ProcessSpec) -> Result<Spawned, Error> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let kernel = self.clone();
        // The address space is made by the thread that will run the process.
        std::thread::Builder::new()
            .name("task (exec)".into())
            .spawn(
                move || match kernel.new_process(spec, Placement::Detached) {
                    Ok(ready) => {
                        let spawned = Spawned {
                            pid: ready.task.tg.pid,
                            terminal: ready.terminal.clone(),
                        };
                        let _ = tx.send(Ok(spawned));
                        ready.run();
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                },
            )
            .map_err(|e| Error::Host(format!("starting a Sentry thread: {e}")))?;
        rx.recv()
            .unwrap_or_else(|_| Err(Error::Host("the new process's thread died".into())))
    }

    /// Waits until process `pid` has exited and returns how it ended; None if there is no
    /// such process. The status of a process started by [`Kernel::spawn`] is told once.
    pub fn wait_process(&self, pid: i32) -> Option<ExitStatus> {
        self.processes.wait_process(pid)
    }

    /// Sends `sig` to process `pid` as from outside the sandbox (SI_USER from pid 0, as
    /// from an ancestor pid namespace: init's protection does not hold, so SIGKILL kills
    /// it). Signal 0 only checks that the process exists.
    pub fn signal_process(&self, pid: i32, sig: i32) -> Result<(), Errno> {
        if !(0..=NSIG).contains(&sig) {
            return Err(Errno::EINVAL);
        }
        let tg = (pid > 0)
            .then(|| self.processes.process_of(pid))
            .flatten()
            .ok_or(Errno::ESRCH)?;
        if sig == 0 {
            return Ok(());
        }
        self.signal_from_outside(&tg, sig)
    }

    /// Sends `sig` to every live process of the sandbox, as [`Kernel::signal_process`].
    pub fn signal_all(&self, sig: i32) -> Result<(), Errno> {
        if !(1..=NSIG).contains(&sig) {
            return Err(Errno::EINVAL);
        }
        for tg in self.processes.live() {
            let _ = self.signal_from_outside(&tg, sig);
        }
        Ok(())
    }

    /// Sends `sig` to the sandbox's init as from outside the sandbox (runsc-rs got it from
    /// the host): false if init is not running.
    pub fn signal_init(&self, sig: i32) -> bool {
        self.signal_process(1, sig).is_ok()
    }

    fn signal_from_outside(&self, tg: &ThreadGroup, sig: i32) -> Result<(), Errno> {
        let info = SigInfo::from_sender(sig, signals::SI_USER, 0, 0);
        signals::send_from_host(tg, info)?;
        if sig == signals::SIGCONT {
            self.processes.continued(tg);
        }
        Ok(())
    }

    /// Pauses the sandbox: returns once no task runs guest code, and none does until
    /// [`Kernel::resume`]. Tasks in the Sentry finish what they do (a blocked call stays
    /// blocked) and wait on their way back to the guest, which sees nothing of it.
    pub fn pause(&self) {
        self.freezer.pause(|| {
            for tg in self.processes.live() {
                tg.signals().kick_all();
            }
        });
    }

    pub fn resume(&self) {
        self.freezer.resume();
    }

    pub fn is_paused(&self) -> bool {
        self.freezer.is_paused()
    }

    /// Every process of the sandbox, live or zombie, by pid (runc ps).
    pub fn processes_info(&self) -> Vec<ProcessSummary> {
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        self.processes
            .entries()
            .into_iter()
            .map(|(tg, info)| {
                let view = tg.view();
                let comm_len = view.comm.iter().position(|&b| b == 0);
                let comm = text(view.comm.get(..comm_len.unwrap_or(16)).unwrap_or_default());
                let cmdline = view.mm.as_ref().map_or_else(Vec::new, |mm| {
                    let (start, end) = mm.arg_env().args;
                    let len = end.saturating_sub(start).min(MAX_CMDLINE) as usize;
                    let mut bytes = vec![0u8; len];
                    if mm.copy_in(start, &mut bytes).is_err() {
                        return Vec::new();
                    }
                    let bytes = bytes.strip_suffix(b"\0").unwrap_or(&bytes);
                    bytes.split(|&b| b == 0).map(text).collect()
                });
                let (state, cpu, uid) = match info.exit {
                    Some(exited) => ('Z', exited.cpu, exited.uid),
                    None => {
                        let state = if tg.signals().stop.is_some() {
                            'T'
                        } else if tg.in_guest.load(Ordering::Relaxed) > 0 {
                            'R'
                        } else {
                            'S'
                        };
                        let uid = view.creds.as_ref().map_or(0, |c| c.uid);
                        (state, tg.cpu_time(), uid)
                    }
                };
                ProcessSummary {
                    pid: tg.pid,
                    ppid: info.parent,
                    uid,
                    state,
                    started: tg.started.saturating_duration_since(self.started),
                    cpu,
                    comm,
                    cmdline,
                }
            })
            .collect()
    }

    /// Whether init exists and has not exited.
    fn init_running(&self) -> bool {
        let gone = self.init_exited.load(Ordering::SeqCst) || self.processes.is_zombie(1);
        !gone && self.processes.get(1).is_some()
    }

    /// Init has exited (or will never run): as when a pid namespace's init dies
    /// (zap_pid_ns_processes), every other process is killed, and this returns once they
    /// have all exited. No process can be started any more.
    fn kill_all_but_init(&self) {
        self.init_exited.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + KILL_WAIT;
        loop {
            let live = self.processes.live();
            if live.is_empty() {
                return;
            }
            for tg in &live {
                signals::kill_process(tg);
            }
            // A process forked meanwhile is found and killed on the next round.
            let soon = (Instant::now() + Duration::from_millis(100)).min(deadline);
            if self.processes.wait_none_live(soon) {
                return;
            }
            if Instant::now() >= deadline {
                log::warn!("processes of the sandbox live on after its init exited");
                return;
            }
        }
    }

    /// The host's resource limits with `overrides` in their place.
    fn rlimits_with(&self, overrides: &[(u32, Rlimit)]) -> Result<[Rlimit; RLIM_NLIMITS], Error> {
        let mut limits = self.host.rlimits;
        for &(resource, limit) in overrides {
            let slot = limits
                .get_mut(resource as usize)
                .ok_or_else(|| Error::Spec(format!("{resource} is no resource limit")))?;
            if limit.cur > limit.max {
                return Err(Error::Spec(format!(
                    "resource limit {resource}: the soft limit {} is above the hard limit {}",
                    limit.cur, limit.max
                )));
            }
            *slot = limit;
        }
        Ok(limits)
    }

    /// Makes a process from `spec`, loaded on the calling thread, placed in the tree as
    /// `placement` says. Everything that can fail is done before the process exists.
    fn new_process(
        self: &Arc<Kernel>,
        spec: ProcessSpec,
        placement: Placement,
    ) -> Result<Ready, Error> {
        let creds = spec.credentials();
        let ProcessSpec {
            exec,
            no_new_privs: _,
            rlimits,
            umask,
            stdio,
            ..
        } = spec;
        match placement {
            Placement::Init if self.processes.get(1).is_some() => {
                return Err(Error::State("the sandbox has its init already"));
            }
            Placement::Detached if !self.init_running() => {
                return Err(Error::State("the sandbox's init is not running"));
            }
            _ => {}
        }
        let rlimits = self.rlimits_with(&rlimits)?;
        let guest_fds = stdio.files.iter().map(|(fd, _)| *fd);
        let terminal_fds = stdio.terminal.iter().flat_map(|t| t.fds.iter().copied());
        if let Some(fd) = guest_fds.chain(terminal_fds).find(|&fd| fd < 0) {
            return Err(Error::Spec(format!("{fd} is no descriptor number")));
        }

        let fs = Arc::new(FsContext::new(self.root.clone()));
        let start = Start::new(&self.mounts, &self.root, &self.root);
        if let Ok(cwd) = crate::vfs::resolve(start, exec.cwd.as_bytes(), true) {
            if cwd.dentry.is_dir() {
                fs.lock().cwd = cwd;
            }
        }
        if let Some(umask) = umask {
            fs.lock().umask = umask & 0o777;
        }
        let (location, execfn) = self.find_program(&fs, &exec)?;
        // A script runs its `#!` interpreter, as execve does.
        let mut argv = exec.argv.clone();
        let find = |name: &[u8]| crate::vfs::resolve(start, name, true);
        let (location, _) = crate::syscalls::follow_interpreters(
            find,
            location,
            execfn.clone().into_bytes(),
            &mut argv,
        )
        .map_err(|errno| Error::Exec {
            path: exec.program.clone(),
            reason: errno.desc().to_lowercase(),
            errno,
        })?;
        let guest_path =
            String::from_utf8_lossy(&crate::vfs::path::absolute(&location, &self.root))
                .into_owned();
        let args = LoadArgs {
            execfn: execfn.as_bytes(),
            argv: &argv,
            envp: &exec.envp,
            creds: &creds,
            rlimits,
        };
        let loaded = self.load(&location, &args).map_err(|e| match e {
            Error::Exec { reason, errno, .. } => Error::Exec {
                path: exec.program.clone(),
                reason,
                errno,
            },
            e => e,
        })?;
        let mut files = Vec::new();
        for (fd, host) in stdio.files {
            let file = crate::fs::host::open(host)
                .map_err(|e| Error::Host(format!("the host descriptor for {fd}: {e}")))?;
            files.push((fd, file));
        }
        let console = placement == Placement::Init;
        let terminal = stdio.terminal.map(|t| {
            let kernel = Arc::downgrade(self);
            let tty = Tty::new_host(kernel, &t.setup, t.input, t.output, console);
            (tty, t.fds)
        });

        // Only now does the process exist.
        let make = |pid| Arc::new(ThreadGroup::new(pid, guest_path.clone(), rlimits));
        let tg = match placement {
            Placement::Init => {
                let tg = make(1);
                tg.signals().unkillable = true;
                self.processes.add_init(tg.clone());
                tg
            }
            Placement::Detached => self
                .processes
                .add_detached(make)
                .map_err(|_| Error::Host("every pid is in use".into()))?,
        };
        self.watch_address_space(&loaded.mm, &tg);
        // The process leads its session; its terminal is its controlling terminal and its
        // standard streams, as a login shell's is.
        if let Some((tty, fds)) = &terminal {
            let _ = crate::fs::tty::make_controlling(&self.processes, tg.pid, tty, false, false);
            let at = if console {
                let _ = self.console.set(tty.clone());
                self.console_node()
            } else {
                None
            };
            for &fd in fds {
                let Ok(ops) = tty.open_slave() else { continue };
                let file = match &at {
                    Some(at) => {
                        let inode = at.dentry.inode.clone();
                        OpenFile::new(Some(at.clone()), inode, ops, O_RDWR)
                    }
                    None => {
                        let tty = Arc::downgrade(tty);
                        OpenFile::new(None, Arc::new(HostTtyNode { tty }), ops, O_RDWR)
                    }
                };
                files.push((fd, file));
            }
        }
        let mut task = Task::new(
            self.clone(),
            tg,
            loaded.mm,
            Arc::new(FdTable::with_files(files)),
            fs,
            creds,
        );
        let comm = guest_path
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        task.set_exe(guest_path, location);
        task.set_comm(comm.as_bytes());
        task.regs.rip = loaded.entry;
        task.regs.rsp = loaded.sp;
        Ok(Ready {
            task,
            terminal: terminal.map(|(tty, _)| tty),
        })
    }

    /// /dev/console, made now that the sandbox has a console.
    fn console_node(&self) -> Option<Location> {
        let start = Start::new(&self.mounts, &self.root, &self.root);
        let dev = crate::vfs::resolve(start, b"/dev", true).ok()?;
        let node = NewNode::Device {
            mode: S_IFCHR | 0o600,
            rdev: crate::fs::tty::devpts::CONSOLE,
        };
        let root = Owner { uid: 0, gid: 0 };
        match dev.dentry.inode.create(b"console", &node, root) {
            Ok(_) | Err(Errno::EEXIST) => {}
            Err(e) => {
                log::warn!("making /dev/console: {e}");
                return None;
            }
        }
        crate::vfs::resolve(start, b"/dev/console", true).ok()
    }
}
