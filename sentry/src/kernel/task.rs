//! Tasks (guest threads) and thread groups (guest processes), and the task loop.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use platform::{Context, Event, NewThread, Regs, SignalInfo};

use super::capabilities::CapSets;
use super::processes::Exited;
use super::signals::{self, Dequeued, ProcessTimers, SigInfo, Signals, Target};
use super::{ExitStatus, FdTable, FsContext, Kernel};
use crate::abi::*;
use crate::mm::MemoryManager;
use crate::vfs::Location;
use crate::waiter::Waker;

/// A task's credentials (credentials(7), capabilities(7)): its user and group ids, its
/// capability sets and securebits, and no_new_privs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub uid: u32,
    pub euid: u32,
    pub suid: u32,
    /// The file-system uid: what file permission checks and new files use. It follows the
    /// effective uid unless setfsuid(2) moved it.
    pub fsuid: u32,
    pub gid: u32,
    pub egid: u32,
    pub sgid: u32,
    pub fsgid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
    pub caps: CapSets,
    /// SECBIT_* flags (prctl PR_SET_SECUREBITS, PR_SET_KEEPCAPS).
    pub securebits: u32,
    /// PR_SET_NO_NEW_PRIVS: once set, never cleared, and inherited by children. Linux keeps
    /// it as a task flag; it lives here because it goes wherever the credentials go (fork,
    /// execve, /proc/PID/status) and limits what execve may grant.
    pub no_new_privs: bool,
}

impl Credentials {
    /// Credentials with all ids `uid` and `gid`: uid 0 has every capability, others none
    /// (with a full bounding set), as after execve(2) by a process with no capabilities.
    pub fn new(uid: u32, gid: u32, groups: Vec<u32>) -> Credentials {
        Credentials {
            uid,
            euid: uid,
            suid: uid,
            fsuid: uid,
            gid,
            egid: gid,
            sgid: gid,
            fsgid: gid,
            groups,
            caps: CapSets::for_uid(uid),
            securebits: 0,
            no_new_privs: false,
        }
    }
}

/// A guest process: what its threads share. Each field is guarded by its own lock.
#[derive(Debug)]
pub struct ThreadGroup {
    /// The process id in the sandbox's pid namespace.
    pub pid: i32,
    pub rlimits: Mutex<[Rlimit; RLIM_NLIMITS]>,
    /// Signal dispositions, index `signo - 1`.
    pub actions: Mutex<[SigAction; NSIG as usize]>,
    /// When the process was created (fork), for /proc/PID/stat's starttime.
    pub started: Instant,
    /// How it asked to be scheduled.
    pub sched: Mutex<SchedAttrs>,
    /// PR_SET_DUMPABLE (a property of the address space in Linux: kept across fork, set
    /// again by execve).
    pub dumpable: AtomicBool,
    /// CPU time of the children it has reaped, and of the children they reaped (the
    /// RUSAGE_CHILDREN and tms_cutime totals).
    pub children_cpu: Mutex<Duration>,
    view: Mutex<ProcessView>,
    /// Pending signals, masks and group-wide states (see signals.rs).
    pub(super) signals: Mutex<Signals>,
    /// Notified when a group stop ends or the group exits.
    pub(super) stop_changed: Condvar,
    /// ITIMER_REAL and the POSIX timers.
    pub timers: Mutex<ProcessTimers>,
    /// Notified whenever a signal is queued for the process or one of its threads (for
    /// signalfd readers and pollers).
    pub signal_queue: crate::waiter::WaitQueue,
    /// System time (the Sentry's) of its threads that have exited.
    threads_cpu: Mutex<Duration>,
    /// The host thread (its tid) that serves each of its live threads, whose CPU clock is
    /// their system time.
    sentry_threads: Mutex<BTreeMap<i32, i32>>,
    /// How many of its threads are in guest code now (for ps's state letter).
    pub in_guest: AtomicU32,
    /// PR_SET_PDEATHSIG: the signal it gets when its parent dies (0 for none). Linux keeps
    /// it per thread; here the process keeps it.
    pub pdeath_signal: AtomicI32,
    /// PR_SET_CHILD_SUBREAPER: orphaned descendants are adopted by it rather than init.
    pub subreaper: AtomicBool,
    /// The execution domain personality(2) set (only PER_LINUX exists here; the flag bits
    /// are kept and reported back).
    pub personality: std::sync::atomic::AtomicU32,
    /// Whether an ITIMER_VIRTUAL or ITIMER_PROF is armed: threads then count their CPU
    /// time at each trap.
    pub cpu_timers_armed: AtomicBool,
}

/// How a process asked to be scheduled: what sched_setscheduler, setpriority and
/// sched_setaffinity set. The host runs the Sentry's threads as it likes; these values are
/// kept and reported back, and the affinity decides which CPU numbers the guest is shown.
/// (Linux keeps them per thread; with one thread per process they are kept per process,
/// where another process can find them by pid.)
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchedAttrs {
    /// SCHED_NORMAL, SCHED_FIFO, SCHED_RR, SCHED_BATCH or SCHED_IDLE.
    pub policy: u64,
    /// The real-time priority: 1..=99 under SCHED_FIFO and SCHED_RR, else 0.
    pub priority: u32,
    /// SCHED_RESET_ON_FORK: children start with the default policy and a nice of at least 0.
    pub reset_on_fork: bool,
    /// The nice value, -20..=19.
    pub nice: i32,
    /// The CPUs it may run on (bit n for CPU n), or None for every CPU of the sandbox.
    pub affinity: Option<Vec<u8>>,
}

impl SchedAttrs {
    /// What a child forked from a process with these attributes starts with.
    fn for_child(&self) -> SchedAttrs {
        let mut child = self.clone();
        if self.reset_on_fork {
            if matches!(self.policy, SCHED_FIFO | SCHED_RR) {
                child.policy = SCHED_NORMAL;
                child.priority = 0;
            }
            child.nice = child.nice.max(0);
            child.reset_on_fork = false;
        }
        child
    }
}

/// What other tasks and /proc may see of a process. Its task keeps this current
/// ([`Task::publish`]) and empties it when it exits, so a zombie holds no files or memory
/// (it keeps its names and credentials).
#[derive(Debug, Clone, Default)]
pub struct ProcessView {
    /// The executable's path as the guest sees it.
    pub exe: String,
    /// The executable itself, for /proc/PID/exe.
    pub exe_file: Option<Location>,
    pub comm: [u8; 16],
    pub mm: Option<Arc<MemoryManager>>,
    pub fds: Option<Arc<FdTable>>,
    pub fs: Option<Arc<FsContext>>,
    pub creds: Option<Credentials>,
}

impl ThreadGroup {
    pub fn new(pid: i32, exe: String, rlimits: [Rlimit; RLIM_NLIMITS]) -> ThreadGroup {
        ThreadGroup {
            pid,
            rlimits: Mutex::new(rlimits),
            actions: Mutex::new([SigAction::default(); NSIG as usize]),
            started: Instant::now(),
            sched: Mutex::new(SchedAttrs::default()),
            dumpable: AtomicBool::new(true),
            children_cpu: Mutex::new(Duration::ZERO),
            view: Mutex::new(ProcessView {
                exe,
                ..ProcessView::default()
            }),
            signals: Mutex::default(),
            stop_changed: Condvar::new(),
            timers: Mutex::default(),
            signal_queue: Default::default(),
            threads_cpu: Mutex::new(Duration::ZERO),
            sentry_threads: Mutex::default(),
            in_guest: AtomicU32::new(0),
            pdeath_signal: AtomicI32::new(0),
            subreaper: AtomicBool::new(false),
            personality: Default::default(),
            cpu_timers_armed: AtomicBool::new(false),
        }
    }

    /// A child forked from `self`: the same limits, signal dispositions, scheduling,
    /// executable and credentials (shown before the child first runs, for kill(2)'s checks).
    pub fn fork(&self, pid: i32) -> ThreadGroup {
        let view = self.view();
        ThreadGroup {
            pid,
            rlimits: Mutex::new(*self.rlimits()),
            actions: Mutex::new(*self.actions()),
            started: Instant::now(),
            sched: Mutex::new(self.sched().for_child()),
            dumpable: AtomicBool::new(self.dumpable.load(Ordering::Relaxed)),
            children_cpu: Mutex::new(Duration::ZERO),
            view: Mutex::new(ProcessView {
                exe: view.exe,
                exe_file: view.exe_file,
                creds: view.creds,
                ..ProcessView::default()
            }),
            signals: Mutex::default(),
            stop_changed: Condvar::new(),
            timers: Mutex::default(),
            signal_queue: Default::default(),
            threads_cpu: Mutex::new(Duration::ZERO),
            sentry_threads: Mutex::default(),
            in_guest: AtomicU32::new(0),
            pdeath_signal: AtomicI32::new(0),
            subreaper: AtomicBool::new(false),
            personality: self.personality.load(Ordering::Relaxed).into(),
            cpu_timers_armed: AtomicBool::new(false),
        }
    }

    /// A snapshot of what the process shows others.
    pub fn view(&self) -> ProcessView {
        self.view.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set_view(&self, view: ProcessView) {
        *self.view.lock().unwrap_or_else(|e| e.into_inner()) = view;
    }

    /// The executable's path as the guest sees it.
    pub fn exe(&self) -> String {
        self.view
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .exe
            .clone()
    }

    /// Whether its children are reaped as they exit, without a wait: SIGCHLD is ignored or
    /// has SA_NOCLDWAIT.
    pub fn ignores_children(&self) -> bool {
        const SA_NOCLDWAIT: u64 = 2;
        let action = self.actions()[(super::processes::SIGCHLD - 1) as usize];
        action.handler == 1 || action.flags & SA_NOCLDWAIT != 0
    }

    pub fn rlimits(&self) -> MutexGuard<'_, [Rlimit; RLIM_NLIMITS]> {
        self.rlimits.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn actions(&self) -> MutexGuard<'_, [SigAction; NSIG as usize]> {
        self.actions.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn sched(&self) -> MutexGuard<'_, SchedAttrs> {
        self.sched.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn threads_cpu(&self) -> MutexGuard<'_, Duration> {
        self.threads_cpu.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn timers(&self) -> MutexGuard<'_, ProcessTimers> {
        self.timers.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn children_cpu(&self) -> MutexGuard<'_, Duration> {
        self.children_cpu.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn sentry_threads(&self) -> MutexGuard<'_, BTreeMap<i32, i32>> {
        self.sentry_threads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// CPU time the live process has used so far, from any thread: its guest code (its
    /// address space's clock) and the Sentry's work for its threads, live and exited.
    pub fn cpu_time(&self) -> Duration {
        let user = self
            .view()
            .mm
            .map_or(Duration::ZERO, |mm| mm.address_space().cpu_time());
        let live: Duration = self
            .sentry_threads()
            .values()
            .map(|&host_tid| thread_cpu_time(host_tid))
            .sum();
        user + *self.threads_cpu() + live
    }
}

/// The CPU clock of host thread `host_tid` of the Sentry (Linux's
/// MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED): any thread of a process may read another's).
fn thread_cpu_time(host_tid: i32) -> Duration {
    const CPUCLOCK_SCHED: i32 = 2;
    const CPUCLOCK_PERTHREAD: i32 = 4;
    let clock = ((!host_tid) << 3) | CPUCLOCK_PERTHREAD | CPUCLOCK_SCHED;
    nix::time::clock_gettime(nix::time::ClockId::from_raw(clock))
        .map(|t| Duration::new(t.tv_sec() as u64, t.tv_nsec() as u32))
        .unwrap_or_default()
}

/// A guest thread, run by one Sentry host thread. Its fields are private to that thread.
pub struct Task {
    pub kernel: Arc<Kernel>,
    pub tid: i32,
    pub tg: Arc<ThreadGroup>,
    pub mm: Arc<MemoryManager>,
    pub fds: Arc<FdTable>,
    pub fs: Arc<FsContext>,
    pub creds: Credentials,
    /// The guest's registers while the Sentry handles a trap.
    pub regs: Regs,
    /// This thread's wake-up call: signals mark it interrupted.
    pub waker: Arc<Waker>,
    /// Set when the last system call was cut short by a signal (it returned EINTR): how
    /// it may be restarted once the signal is dealt with.
    pub restart: Option<Restart>,
    /// The mask to go back to after a handler runs, when a call (sigsuspend, ppoll,
    /// pselect6, epoll_pwait) waited with a temporary one.
    pub saved_mask: Option<SigSet>,
    /// What restart_syscall(2) resumes.
    pub restart_block: Option<RestartBlock>,
    /// The CPU-timer epoch and this thread's system time when it last counted it for its
    /// process's CPU timers.
    pub cpu_sample: (u64, Duration),
    /// set_tid_address: cleared (and futex-woken) when the thread exits.
    pub clear_child_tid: u64,
    /// set_robust_list: (head, len).
    pub robust_list: (u64, u64),
    /// rseq registration: (address, length, signature).
    pub rseq: Option<(u64, u32, u32)>,
    /// The thread's name (prctl PR_SET_NAME), NUL-padded.
    pub comm: [u8; 16],
    /// The alternate signal stack (sigaltstack): where handlers would run with SA_ONSTACK.
    pub sigaltstack: SignalStack,
    /// Set when the task has exited; the loop stops.
    pub exit: Option<ExitStatus>,
    /// For a child of vfork: the parent waits on this until the child execs or exits.
    pub vfork_done: Option<Arc<VforkDone>>,
    /// Set by a call that asked for no SIGPIPE on EPIPE (pwritev2's RWF_NOSIGNAL); cleared
    /// before each call.
    pub suppress_sigpipe: bool,
    pub(super) context: Box<dyn Context>,
}

/// How an interrupted system call is restarted (Linux's -ERESTART* codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    /// ERESTARTSYS: restarted if no handler runs or the handler has SA_RESTART.
    Sys,
    /// ERESTARTNOHAND: restarted only if no handler runs.
    NoHandler,
    /// ERESTART_RESTARTBLOCK: if no handler runs, the call goes on through
    /// restart_syscall(2) with what it left in [`Task::restart_block`] (a relative sleep
    /// keeps its deadline rather than starting over).
    Block,
    /// Plain EINTR: never restarted.
    Never,
}

impl Restart {
    /// The restart rule of system call `nr` when a signal interrupts it (signal(7)).
    pub fn of(nr: u64, args: &[u64; 6]) -> Restart {
        const FUTEX_CMD_MASK: u64 = !(128 | 256);
        match nr as i64 {
            libc::SYS_epoll_wait
            | libc::SYS_epoll_pwait
            | libc::SYS_epoll_pwait2
            | libc::SYS_rt_sigtimedwait
            | libc::SYS_semtimedop
            | libc::SYS_msgrcv
            | libc::SYS_msgsnd => Restart::Never,
            libc::SYS_nanosleep => Restart::Block,
            // A relative clock_nanosleep; an absolute one just runs again.
            libc::SYS_clock_nanosleep if args[1] & 1 == 0 => Restart::Block,
            libc::SYS_pause
            | libc::SYS_rt_sigsuspend
            | libc::SYS_poll
            | libc::SYS_ppoll
            | libc::SYS_select
            | libc::SYS_pselect6
            | libc::SYS_clock_nanosleep
            | libc::SYS_restart_syscall => Restart::NoHandler,
            // A futex wait with a timeout goes on to its deadline, without a handler only.
            libc::SYS_futex if args[3] != 0 && matches!(args[1] & FUTEX_CMD_MASK, 0 | 9) => {
                Restart::Block
            }
            _ => Restart::Sys,
        }
    }
}

/// A call with a deadline that a signal interrupted, kept for restart_syscall(2) to go on
/// with if no handler runs (Linux's restart_block).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartBlock {
    /// nanosleep or a relative clock_nanosleep: the deadline, and where the time left is
    /// written if it is interrupted again.
    Sleep { deadline: Instant, rem: u64 },
    /// A FUTEX_WAIT with a timeout: the same wait, to the same deadline.
    FutexWait {
        addr: u64,
        val: u32,
        bitset: u32,
        private: bool,
        deadline: Instant,
    },
}

/// An alternate signal stack as sigaltstack(2) sets it; size 0 means none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SignalStack {
    pub sp: u64,
    pub size: u64,
    /// The ss_flags it was set with (of which SS_AUTODISARM matters afterwards).
    pub flags: u32,
}

impl SignalStack {
    /// Whether `sp` lies on this stack (Linux's on_sig_stack): never, with SS_AUTODISARM.
    pub fn contains(&self, sp: u64) -> bool {
        self.flags & SS_AUTODISARM as u32 == 0 && sp > self.sp && sp - self.sp <= self.size
    }
}

/// A vfork parent's wait for its child to let go of it (by execve or exit).
#[derive(Debug, Default)]
pub struct VforkDone {
    done: Mutex<bool>,
    cv: Condvar,
}

impl VforkDone {
    pub fn release(&self) {
        *self.done.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.cv.notify_all();
    }

    pub fn wait(&self) {
        let mut done = self.done.lock().unwrap_or_else(|e| e.into_inner());
        while !*done {
            done = self.cv.wait(done).unwrap_or_else(|e| e.into_inner());
        }
    }
}

impl Task {
    pub fn new(
        kernel: Arc<Kernel>,
        tg: Arc<ThreadGroup>,
        mm: Arc<MemoryManager>,
        fds: Arc<FdTable>,
        fs: Arc<FsContext>,
        creds: Credentials,
    ) -> Task {
        Task::new_thread(kernel, tg.pid, tg, mm, fds, fs, creds, 0)
    }

    /// A task for thread `tid` of `tg`, with signal mask `mask`; it joins the group's
    /// threads at once, so signals can reach it before it runs.
    #[allow(clippy::too_many_arguments)]
    pub fn new_thread(
        kernel: Arc<Kernel>,
        tid: i32,
        tg: Arc<ThreadGroup>,
        mm: Arc<MemoryManager>,
        fds: Arc<FdTable>,
        fs: Arc<FsContext>,
        creds: Credentials,
        mask: SigSet,
    ) -> Task {
        let context = kernel.platform.new_context();
        let regs = entry_regs(0, 0);
        let waker = Arc::new(Waker::default());
        tg.add_thread(tid, mask, waker.clone(), context.interrupter());
        Task {
            kernel,
            tid,
            tg,
            mm,
            fds,
            fs,
            creds,
            regs,
            waker,
            restart: None,
            saved_mask: None,
            restart_block: None,
            cpu_sample: (0, Duration::ZERO),
            clear_child_tid: 0,
            robust_list: (0, 0),
            rseq: None,
            comm: [0; 16],
            sigaltstack: SignalStack::default(),
            exit: None,
            vfork_done: None,
            suppress_sigpipe: false,
            context,
        }
    }

    /// The guest thread's FP/vector state (XSAVE layout), for a child to copy.
    pub fn fp_state(&mut self) -> Option<Vec<u8>> {
        self.context.fp_state().ok()
    }

    pub fn set_comm(&mut self, name: &[u8]) {
        let n = name.len().min(15);
        self.comm = [0; 16];
        self.comm[..n].copy_from_slice(&name[..n]);
        self.publish();
    }

    /// Shows the task's current resources to other tasks and /proc.
    pub fn publish(&self) {
        let ProcessView { exe, exe_file, .. } = self.tg.view();
        self.tg.set_view(ProcessView {
            exe,
            exe_file,
            comm: self.comm,
            mm: Some(self.mm.clone()),
            fds: Some(self.fds.clone()),
            fs: Some(self.fs.clone()),
            creds: Some(self.creds.clone()),
        });
    }

    /// Replaces the task's credentials (Linux's commit_creds) and shows them to others. The
    /// memory manager's limits follow CAP_IPC_LOCK.
    pub fn commit_creds(&mut self, creds: Credentials) {
        let lock_changes = creds.capable(CAP_IPC_LOCK) != self.creds.capable(CAP_IPC_LOCK);
        self.creds = creds;
        if lock_changes {
            let limits = super::memory_limits(&self.tg.rlimits(), &self.creds);
            self.mm.set_limits(limits);
        }
        self.publish();
    }

    /// Sets the executable: its path as the guest sees it, and the file (execve).
    pub fn set_exe(&mut self, exe: String, file: Location) {
        self.tg.set_view(ProcessView {
            exe,
            exe_file: Some(file),
            ..ProcessView::default()
        });
        self.publish();
    }

    /// Lets a vfork parent go on (at execve or exit).
    pub fn release_vfork_parent(&mut self) {
        if let Some(done) = self.vfork_done.take() {
            done.release();
        }
    }

    /// Runs the task until it exits, then lets go of its memory and files; the last thread
    /// of a process leaves it a zombie for the parent to reap. Returns how it ended.
    pub fn run_to_exit(mut self) -> ExitStatus {
        crate::waiter::Waker::install(self.waker.clone());
        super::set_current(Some(super::Current {
            tid: self.tid,
            tg: self.tg.clone(),
        }));
        let host_tid = nix::unistd::gettid().as_raw();
        self.tg.sentry_threads().insert(self.tid, host_tid);
        let status = self.run();
        self.exit_thread(status)
    }

    /// The end of a thread (Linux's do_exit): its tid word is cleared and woken, its
    /// robust futexes released, and it leaves its group; the last one out ends the
    /// process.
    pub(super) fn exit_thread(mut self, status: ExitStatus) -> ExitStatus {
        if self.clear_child_tid != 0 && self.mm.write_obj(self.clear_child_tid, &0u32).is_ok() {
            crate::syscalls::futex::wake_address(&self, self.clear_child_tid);
        }
        crate::syscalls::futex::release_robust_list(&self);
        self.release_vfork_parent();
        // The guest's user time is its address space's, all threads together; system time
        // is each Sentry thread's own.
        let (user, system) = self.cpu_times();
        let (last, status) = {
            let mut s = self.tg.signals();
            s.threads.remove(&self.tid);
            if self.tid == self.tg.pid && s.exit.is_none() && s.exec.is_none() {
                s.leader_exit = Some(status);
            }
            let last = s.threads.is_empty();
            (last, s.exit.or(s.leader_exit).unwrap_or(status))
        };
        // An exec waits for the other threads to go.
        self.tg.stop_changed.notify_all();
        self.tg.sentry_threads().remove(&self.tid);
        *self.tg.threads_cpu() += system;
        if self.tid != self.tg.pid {
            self.kernel.processes.remove_thread(self.tid);
        }
        if Arc::strong_count(&self.mm) > 1 {
            // Other threads (or processes sharing the memory) still run in the address
            // space: only this thread's part of it goes.
            self.context.release(self.mm.address_space());
        }
        if !last {
            super::set_current(None);
            return status;
        }
        self.tg.timers().clear();
        let exe = self.tg.exe();
        self.tg.set_view(ProcessView {
            exe,
            comm: self.comm,
            creds: Some(self.creds.clone()),
            ..ProcessView::default()
        });
        let cpu = user + *self.tg.threads_cpu();
        let Task {
            kernel,
            tg,
            mm,
            fds,
            fs,
            creds,
            context,
            ..
        } = self;
        // Files close and the stub goes before the parent can see the exit, as in Linux
        // (a pipe's reader sees EOF once its writers have exited).
        drop((fds, fs, context, mm));
        kernel.processes.exit(Exited {
            pid: tg.pid,
            uid: creds.uid,
            status,
            cpu,
        });
        super::set_current(None);
        status
    }

    /// Runs the task until it exits: switch to the guest, handle what stopped it, take
    /// signals, repeat.
    pub fn run(&mut self) -> ExitStatus {
        loop {
            // While the sandbox is paused no guest code runs; a task killed meanwhile still
            // goes on to exit.
            let must_exit = || signals::must_exit(&self.tg, self.tid);
            let Some(in_guest) = self.kernel.freezer.enter(&self.waker, must_exit) else {
                self.handle_signals();
                if let Some(status) = self.exit {
                    return status;
                }
                continue;
            };
            let space = self.mm.clone();
            self.tg.in_guest.fetch_add(1, Ordering::Relaxed);
            let event = self.context.switch(space.address_space(), &mut self.regs);
            self.tg.in_guest.fetch_sub(1, Ordering::Relaxed);
            drop(in_guest);
            match event {
                Ok(Event::Syscall) => self.syscall(),
                Ok(Event::Fault(info)) => {
                    if let Err(fault) = self.mm.handle_fault(info.addr, info.code) {
                        let (signo, code) = fault.signal();
                        self.synchronous_signal(SignalInfo {
                            signo,
                            code,
                            addr: info.addr,
                        });
                    }
                }
                Ok(Event::Signal(info)) if crate::syscalls::is_vsyscall(&info) => {
                    self.regs.rax = match crate::syscalls::vsyscall(self, info.addr) {
                        Some(Ok(value)) => value,
                        Some(Err(errno)) => (-(errno as i64)) as u64,
                        None => {
                            self.synchronous_signal(SignalInfo {
                                signo: libc::SIGSEGV,
                                ..info
                            });
                            continue;
                        }
                    };
                }
                Ok(Event::Signal(info)) if info.is_synchronous() => self.synchronous_signal(info),
                // Kicks (a signal for the task arrived) and signals sent to the stub from
                // outside the sandbox, which are not the guest's.
                Ok(Event::Signal(_)) | Ok(Event::Interrupted) => {}
                Err(e) => {
                    log::error!("the guest's platform failed: {e}");
                    signals::kill_process(&self.tg);
                    self.exit = Some(ExitStatus::Signaled(SIGKILL));
                }
            }
            if self.tg.cpu_timers_armed.load(Ordering::Relaxed) {
                self.count_cpu();
            }
            if self.exit.is_none() && (self.waker.interrupted() || self.restart.is_some()) {
                self.handle_signals();
            }
            if let Some(status) = self.exit {
                return status;
            }
        }
    }

    /// Adds the CPU time this thread used since it last counted to its process's CPU
    /// timers (ITIMER_VIRTUAL, ITIMER_PROF), and sends the signals of those now due.
    pub fn count_cpu(&mut self) {
        let (user, system) = self.cpu_times();
        let mut timers = self.tg.timers();
        let (epoch, last_system) = self.cpu_sample;
        self.cpu_sample = (timers.cpu_epoch, system);
        // After timers were set, this thread's system time counts from now on.
        let more = if epoch == timers.cpu_epoch {
            system.saturating_sub(last_system)
        } else {
            Duration::ZERO
        };
        let due = timers.count_cpu(user, more);
        if timers.cpu.iter().all(Option::is_none) {
            timers.cpu_ticker = None;
            self.tg.cpu_timers_armed.store(false, Ordering::Relaxed);
        }
        drop(timers);
        for sig in due {
            let _ = signals::send(
                &self.tg,
                Target::Process,
                SigInfo::new(sig, signals::SI_KERNEL),
            );
        }
    }

    /// The thread's signal mask.
    pub fn signal_mask(&self) -> SigSet {
        self.tg
            .signals()
            .threads
            .get(&self.tid)
            .map_or(0, |t| t.mask)
    }

    /// Sets the thread's signal mask (SIGKILL and SIGSTOP stay unblocked).
    pub fn set_signal_mask(&self, mask: SigSet) {
        self.tg.signals().set_mask(self.tid, mask);
    }

    /// Takes the signals that are due, as Linux does on the way back to user mode: runs
    /// default actions, sets up handler frames (each new one on top of the last), and
    /// finishes a system call a signal interrupted, with EINTR or a restart.
    fn handle_signals(&mut self) {
        loop {
            let (info, action) = match signals::dequeue(&self.tg, self.tid) {
                Dequeued::Nothing => break,
                Dequeued::Exit(status) => {
                    self.exit = Some(status);
                    return;
                }
                Dequeued::Stop => {
                    self.stop_here();
                    continue;
                }
                Dequeued::Handle(info, action) => (info, action),
            };
            if let Some(restart) = self.restart.take() {
                let again = restart == Restart::Sys && action.flags & signals::SA_RESTART != 0;
                if again {
                    self.restart_syscall();
                } else {
                    self.regs.rax = (-(Errno::EINTR as i64)) as u64;
                }
            }
            let current = self.signal_mask();
            let old_mask = self.saved_mask.take().unwrap_or(current);
            if self.kernel.config.strace {
                eprintln!(
                    "--- {} {{si_code={}}} ---",
                    crate::strace::signal_name(info.signo),
                    info.code
                );
            }
            if self.setup_frame(&info, &action, old_mask).is_err() {
                // Linux's force_sigsegv: a frame that cannot be written kills, even with a
                // SIGSEGV handler (it could not be entered either).
                self.set_signal_mask(old_mask);
                self.force_sigsegv();
                continue;
            }
            let mut mask = current | action.mask;
            if action.flags & signals::SA_NODEFER == 0 {
                mask |= sig_bit(info.signo);
            }
            self.set_signal_mask(mask);
            if action.flags & signals::SA_RESETHAND != 0 {
                let mut actions = self.tg.actions();
                if let Some(slot) = actions.get_mut((info.signo - 1) as usize) {
                    *slot = SigAction::default();
                }
            }
        }
        if let Some(restart) = self.restart.take() {
            // No handler ran: the call goes on, unless it never restarts.
            match restart {
                Restart::Never => self.regs.rax = (-(Errno::EINTR as i64)) as u64,
                Restart::Block => {
                    self.restart_syscall();
                    self.regs.rax = libc::SYS_restart_syscall as u64;
                }
                Restart::Sys | Restart::NoHandler => self.restart_syscall(),
            }
        }
        if let Some(mask) = self.saved_mask.take() {
            self.set_signal_mask(mask);
        }
    }

    /// Makes the guest execute the same system call again.
    fn restart_syscall(&mut self) {
        self.regs.rax = self.regs.orig_rax;
        self.regs.rip = self.regs.rip.wrapping_sub(2);
    }

    /// Waits out a group stop (SIGSTOP and friends) until SIGCONT or SIGKILL.
    fn stop_here(&mut self) {
        let mut s = self.tg.signals();
        let mut report = None;
        let threads = s.threads.len();
        if let Some(stop) = s.stop.as_mut() {
            stop.stopped += 1;
            if stop.stopped >= threads && !stop.reported {
                stop.reported = true;
                report = Some(stop.signo);
            }
        }
        if let Some(signo) = report {
            drop(s);
            self.kernel.processes.stopped(&self.tg, signo);
            s = self.tg.signals();
        }
        while s.stop.is_some() && s.exit.is_none() {
            s = self
                .tg
                .stop_changed
                .wait(s)
                .unwrap_or_else(|e| e.into_inner());
        }
        if let Some(stop) = s.stop.as_mut() {
            stop.stopped = stop.stopped.saturating_sub(1);
        }
    }

    /// SIGSEGV with its default action, for a state no handler can repair.
    pub fn force_sigsegv(&mut self) {
        if let Some(action) = self.tg.actions().get_mut((signals::SIGSEGV - 1) as usize) {
            action.handler = signals::SIG_DFL;
        }
        self.force_signal(SigInfo::new(signals::SIGSEGV, signals::SI_KERNEL));
    }

    /// Sends the thread a signal it cannot escape (a fault, a bad frame): if it is blocked
    /// or ignored, its default action applies (Linux's force_sig_info).
    pub fn force_signal(&mut self, info: SigInfo) {
        let sig = info.signo;
        let bit = sig_bit(sig);
        let mask = self.signal_mask();
        {
            let mut actions = self.tg.actions();
            if let Some(action) = actions.get_mut((sig - 1) as usize) {
                if action.handler == signals::SIG_IGN || mask & bit != 0 {
                    action.handler = signals::SIG_DFL;
                }
            }
        }
        if mask & bit != 0 {
            self.set_signal_mask(mask & !bit);
        }
        let _ = signals::send(&self.tg, Target::Thread(self.tid), info);
    }

    /// CPU time this task has used: guest code plus the Sentry's work on its behalf.
    pub fn cpu_time(&self) -> std::time::Duration {
        let (user, system) = self.cpu_times();
        user + system
    }

    /// CPU time this task has used, as user time (guest code) and system time (the
    /// Sentry's work on its behalf, which is the guest's kernel).
    pub fn cpu_times(&self) -> (Duration, Duration) {
        let sentry = nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
            .map(|t| Duration::new(t.tv_sec() as u64, t.tv_nsec() as u32))
            .unwrap_or_default();
        // On KVM this thread ran the guest itself: that part of its clock is user time.
        let system = sentry.saturating_sub(self.context.thread_guest_time());
        (self.context.cpu_time(), system)
    }

    /// Serves the system call in the registers and stores its result in rax.
    fn syscall(&mut self) {
        let nr = self.regs.orig_rax;
        let args = [
            self.regs.rdi,
            self.regs.rsi,
            self.regs.rdx,
            self.regs.r10,
            self.regs.r8,
            self.regs.r9,
        ];
        let entry = crate::syscalls::lookup(nr);
        self.suppress_sigpipe = false;
        let result = match entry {
            _ if self.is_int80() => {
                self.kernel.report_once(
                    "32-bit system calls (int $0x80) are not supported: returning ENOSYS",
                );
                Err(Errno::ENOSYS)
            }
            Some(entry) => (entry.handler)(self, &args),
            None => {
                self.kernel.report_unsupported(nr);
                Err(Errno::ENOSYS)
            }
        };
        if result == Err(Errno::EPIPE) && !self.suppress_sigpipe {
            self.sigpipe();
        }
        if result == Err(Errno::EINTR) {
            // Cut short by a signal: EINTR or a restart, decided as the signal is taken.
            let mut restart = Restart::of(nr, &args);
            if restart == Restart::Sys && self.socket_with_timeout(nr, args[0]) {
                restart = Restart::Never;
            }
            self.restart = Some(restart);
        }
        if self.kernel.config.strace {
            let line = crate::strace::format_call(self, nr, entry, &args, &result);
            eprintln!("{line}");
        }
        self.regs.rax = match result {
            Ok(value) => value,
            Err(errno) => (-(errno as i64)) as u64,
        };
    }

    /// Whether system call `nr` works on descriptor `fd` and that is a socket with a send
    /// or receive timeout (then it is never restarted).
    fn socket_with_timeout(&self, nr: u64, fd: u64) -> bool {
        let on_fd = matches!(
            nr as i64,
            libc::SYS_read
                | libc::SYS_write
                | libc::SYS_readv
                | libc::SYS_writev
                | libc::SYS_recvfrom
                | libc::SYS_recvmsg
                | libc::SYS_sendto
                | libc::SYS_sendmsg
                | libc::SYS_accept
                | libc::SYS_accept4
                | libc::SYS_connect
        );
        on_fd
            && self
                .fds
                .get(fd)
                .is_ok_and(|f| f.socket().is_some_and(|s| s.has_timeout()))
    }

    /// Whether the trap came from `int $0x80` (the 32-bit ABI) rather than `syscall`: the two
    /// bytes before rip are the instruction that trapped.
    fn is_int80(&self) -> bool {
        let mut insn = [0u8; 2];
        self.mm
            .copy_in(self.regs.rip.wrapping_sub(2), &mut insn)
            .is_ok()
            && insn == [0xcd, 0x80]
    }

    /// A write to a broken pipe: SIGPIPE for the thread (if it is blocked or ignored the
    /// call just fails with EPIPE).
    fn sigpipe(&mut self) {
        let info = SigInfo::from_sender(
            signals::SIGPIPE,
            signals::SI_USER,
            self.tg.pid,
            self.creds.uid,
        );
        let _ = signals::send(&self.tg, Target::Thread(self.tid), info);
    }

    /// A signal raised by the guest's own execution (a fault, an illegal instruction, …).
    fn synchronous_signal(&mut self, info: SignalInfo) {
        if self.kernel.config.strace {
            eprintln!("{}", crate::strace::format_signal(&info));
        }
        self.force_signal(SigInfo::fault(info.signo, info.code, info.addr));
    }
}

/// A child made by fork or clone, waiting for its own Sentry thread: its address space
/// (or its stub thread, for a thread) must be taken up by the thread that will trace it.
pub struct Forked {
    pub memory: ChildMemory,
    pub task: NewTask,
}

/// What a new task takes from its parent.
pub struct NewTask {
    pub tid: i32,
    pub tg: Arc<ThreadGroup>,
    pub fds: Arc<FdTable>,
    pub fs: Arc<FsContext>,
    pub creds: Credentials,
    pub regs: Regs,
    pub signal_mask: SigSet,
    pub comm: [u8; 16],
    pub rseq: Option<(u64, u32, u32)>,
    pub sigaltstack: SignalStack,
    /// CLONE_CHILD_SETTID: where the child's tid is written in its own memory.
    pub set_child_tid: u64,
    /// CLONE_CHILD_CLEARTID.
    pub clear_child_tid: u64,
    pub vfork_done: Option<Arc<VforkDone>>,
    /// The parent's FP/vector state (XSAVE layout), if the platform could read it.
    pub fp_state: Option<Vec<u8>>,
}

/// A child's memory: a copy of the parent's (fork), or the parent's own with a stub thread
/// made ready for the child (a thread, or a process made with CLONE_VM).
pub enum ChildMemory {
    Copy(crate::mm::ForkedMemory),
    Shared(Arc<MemoryManager>, NewThread),
}

impl Kernel {
    /// Starts `child` on a Sentry thread of its own. A child sharing the parent's memory
    /// joins its thread group's signal state before this returns.
    pub fn start_forked(self: &Arc<Kernel>, forked: Forked) -> Result<(), Errno> {
        let kernel = self.clone();
        let Forked {
            memory,
            task: child,
        } = forked;
        let tid = child.tid;
        let start: Box<dyn FnOnce() + Send> = match memory {
            ChildMemory::Shared(mm, thread) => {
                let mut task = Task::for_child(kernel, mm, &child);
                Box::new(move || {
                    let space = task.mm.clone();
                    if let Err(e) = task.context.attach(space.address_space(), thread) {
                        log::error!("thread {tid} could not start: {e}");
                        signals::kill_process(&task.tg);
                        task.exit = Some(ExitStatus::Signaled(SIGKILL));
                        task.exit_thread(ExitStatus::Signaled(SIGKILL));
                        return;
                    }
                    task.publish();
                    task.run_to_exit();
                })
            }
            ChildMemory::Copy(memory) => Box::new(move || kernel.run_forked(memory, child)),
        };
        std::thread::Builder::new()
            .name(format!("task {tid}"))
            .spawn(start)
            .map(drop)
            .map_err(|e| {
                log::warn!("starting a Sentry thread for task {tid}: {e}");
                Errno::EAGAIN
            })
    }

    fn run_forked(self: Arc<Kernel>, memory: crate::mm::ForkedMemory, child: NewTask) {
        let pid = child.tg.pid;
        let mm = self
            .platform
            .new_address_space()
            .map_err(|e| e.to_string())
            .and_then(|space| {
                MemoryManager::from_fork(space, self.memory.clone(), memory)
                    .map_err(|e| e.desc().to_string())
            });
        let mm = match mm {
            Ok(mm) => Arc::new(mm),
            Err(e) => {
                log::error!("process {pid} could not start: {e}");
                if let Some(done) = child.vfork_done {
                    done.release();
                }
                self.processes.exit(Exited {
                    pid,
                    uid: child.creds.uid,
                    status: ExitStatus::Signaled(SIGKILL),
                    cpu: std::time::Duration::ZERO,
                });
                return;
            }
        };
        self.watch_address_space(&mm, &child.tg);
        let task = Task::for_child(self, mm, &child);
        task.publish();
        task.run_to_exit();
    }
}

impl Task {
    /// The task of a new child, in `mm`, with the state it took from its parent.
    fn for_child(kernel: Arc<Kernel>, mm: Arc<MemoryManager>, child: &NewTask) -> Task {
        let mut task = Task::new_thread(
            kernel,
            child.tid,
            child.tg.clone(),
            mm,
            child.fds.clone(),
            child.fs.clone(),
            child.creds.clone(),
            child.signal_mask,
        );
        task.adopt(child);
        task
    }

    /// Takes the parent's copied state for a new child task.
    fn adopt(&mut self, child: &NewTask) {
        self.regs = child.regs;
        self.comm = child.comm;
        self.rseq = child.rseq;
        self.sigaltstack = child.sigaltstack;
        self.clear_child_tid = child.clear_child_tid;
        self.vfork_done = child.vfork_done.clone();
        if let Some(fp) = &child.fp_state {
            // Before its first switch: the platform keeps it until the child runs.
            if let Err(e) = self.context.set_fp_state(fp) {
                log::debug!(
                    "task {}: the parent's FP state was not taken: {e}",
                    self.tid
                );
            }
        }
        if child.set_child_tid != 0 {
            // As Linux, a bad address here is not the parent's problem: the write is skipped.
            let _ = self.mm.write_obj(child.set_child_tid, &(child.tid as u32));
        }
    }
}

/// Registers at process entry, as Linux's start_thread leaves them.
pub fn entry_regs(rip: u64, rsp: u64) -> Regs {
    Regs {
        cs: USER_CS,
        ss: USER_DS,
        eflags: 0x202,
        orig_rax: u64::MAX,
        rip,
        rsp,
        ..zero_regs()
    }
}

/// All-zero registers.
fn zero_regs() -> Regs {
    Regs {
        r15: 0,
        r14: 0,
        r13: 0,
        r12: 0,
        rbp: 0,
        rbx: 0,
        r11: 0,
        r10: 0,
        r9: 0,
        r8: 0,
        rax: 0,
        rcx: 0,
        rdx: 0,
        rsi: 0,
        rdi: 0,
        orig_rax: 0,
        rip: 0,
        cs: 0,
        eflags: 0,
        rsp: 0,
        ss: 0,
        fs_base: 0,
        gs_base: 0,
        ds: 0,
        es: 0,
        fs: 0,
        gs: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_on_fork_gives_children_the_default_policy() {
        let parent = SchedAttrs {
            policy: SCHED_FIFO,
            priority: 10,
            reset_on_fork: true,
            nice: -5,
            affinity: Some(vec![1]),
        };
        let child = parent.for_child();
        assert_eq!(child.policy, SCHED_NORMAL);
        assert_eq!(child.priority, 0);
        assert_eq!(child.nice, 0);
        assert!(!child.reset_on_fork);
        assert_eq!(child.affinity, Some(vec![1]));
        let plain = SchedAttrs {
            policy: SCHED_BATCH,
            nice: -3,
            ..SchedAttrs::default()
        };
        assert_eq!(plain.for_child(), plain);
    }

    #[test]
    fn another_thread_reads_a_sentry_threads_cpu_clock() {
        let (tx, rx) = std::sync::mpsc::channel();
        let spinner = std::thread::spawn(move || {
            tx.send(nix::unistd::gettid().as_raw()).unwrap();
            let start = Instant::now();
            while start.elapsed() < Duration::from_millis(100) {
                std::hint::spin_loop();
            }
            std::thread::sleep(Duration::from_millis(200));
        });
        let host_tid = rx.recv().unwrap();
        std::thread::sleep(Duration::from_millis(150));
        let used = thread_cpu_time(host_tid);
        assert!(used > Duration::from_millis(20), "{used:?}");
        assert!(used < Duration::from_millis(250), "{used:?}");
        spinner.join().unwrap();
    }

    #[test]
    fn signal_stack_contains_its_range_unless_autodisarm() {
        let stack = SignalStack {
            sp: 0x1000,
            size: 0x1000,
            flags: 0,
        };
        // The stack grows down from sp + size: its base itself is outside.
        assert!(!stack.contains(0x1000));
        assert!(stack.contains(0x1001));
        assert!(stack.contains(0x2000));
        assert!(!stack.contains(0x2001));
        assert!(!SignalStack::default().contains(0x10));
        let disarming = SignalStack {
            flags: SS_AUTODISARM as u32,
            ..stack
        };
        assert!(!disarming.contains(0x1800));
    }
}
