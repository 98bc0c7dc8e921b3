//! Signals of a thread group: what is pending for the process and for each of its threads,
//! each thread's mask, and the group-wide states that signals cause (a group exit, an exec
//! taking the process over, a group stop). One lock guards it all, as Linux's siglock does,
//! because sending needs a consistent view of every thread's mask.
//!
//! Senders queue a signal and wake one thread that does not block it: its waker is marked
//! interrupted (its blocking call ends with EINTR) and its context is kicked out of guest
//! code. The thread then takes the signal in its task loop ([`dequeue`]) and runs the
//! default action or sets up a handler frame (`sigframe.rs`).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Condvar, MutexGuard};
use std::time::Duration;

use platform::Interrupt;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::{ExitStatus, ThreadGroup};
use crate::abi::*;
use crate::waiter::Waker;

pub const SIGHUP: i32 = 1;
pub const SIGINT: i32 = 2;
pub const SIGQUIT: i32 = 3;
pub const SIGILL: i32 = 4;
pub const SIGTRAP: i32 = 5;
pub const SIGABRT: i32 = 6;
pub const SIGBUS: i32 = 7;
pub const SIGFPE: i32 = 8;
pub const SIGUSR1: i32 = 10;
pub const SIGSEGV: i32 = 11;
pub const SIGPIPE: i32 = 13;
pub const SIGALRM: i32 = 14;
pub const SIGTERM: i32 = 15;
pub const SIGCHLD: i32 = 17;
pub const SIGCONT: i32 = 18;
pub const SIGTSTP: i32 = 20;
pub const SIGTTIN: i32 = 21;
pub const SIGTTOU: i32 = 22;
pub const SIGURG: i32 = 23;
pub const SIGXCPU: i32 = 24;
pub const SIGXFSZ: i32 = 25;
pub const SIGVTALRM: i32 = 26;
pub const SIGPROF: i32 = 27;
pub const SIGWINCH: i32 = 28;
pub const SIGSYS: i32 = 31;
pub const SIGRTMIN: i32 = 32;

pub const SIG_DFL: u64 = 0;
pub const SIG_IGN: u64 = 1;

pub const SA_NOCLDSTOP: u64 = 0x1;
pub const SA_SIGINFO: u64 = 0x4;
pub const SA_RESTORER: u64 = 0x0400_0000;
pub const SA_ONSTACK: u64 = 0x0800_0000;
pub const SA_RESTART: u64 = 0x1000_0000;
pub const SA_NODEFER: u64 = 0x4000_0000;
pub const SA_RESETHAND: u64 = 0x8000_0000;

// si_code values.
pub const SI_USER: i32 = 0;
pub const SI_KERNEL: i32 = 0x80;
pub const SI_QUEUE: i32 = -1;
pub const SI_TIMER: i32 = -2;
pub const SI_TKILL: i32 = -6;
pub const CLD_EXITED: i32 = 1;
pub const CLD_KILLED: i32 = 2;
pub const CLD_DUMPED: i32 = 3;
pub const CLD_STOPPED: i32 = 5;
pub const CLD_CONTINUED: i32 = 6;

/// Signals raised by the CPU for the instruction that ran: taken before any other.
const SYNCHRONOUS: SigSet = (1 << (SIGSEGV - 1))
    | (1 << (SIGBUS - 1))
    | (1 << (SIGILL - 1))
    | (1 << (SIGTRAP - 1))
    | (1 << (SIGFPE - 1))
    | (1 << (SIGSYS - 1));
const STOP_SIGNALS: SigSet =
    (1 << (SIGSTOP - 1)) | (1 << (SIGTSTP - 1)) | (1 << (SIGTTIN - 1)) | (1 << (SIGTTOU - 1));

/// What a signal does when its disposition is SIG_DFL (signal(7)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultAction {
    Terminate,
    Core,
    Ignore,
    Stop,
    Continue,
}

pub fn default_action(sig: i32) -> DefaultAction {
    match sig {
        SIGCHLD | SIGURG | SIGWINCH => DefaultAction::Ignore,
        SIGCONT => DefaultAction::Continue,
        SIGSTOP | SIGTSTP | SIGTTIN | SIGTTOU => DefaultAction::Stop,
        SIGQUIT | SIGILL | SIGTRAP | SIGABRT | SIGBUS | SIGFPE | SIGSEGV | SIGXCPU | SIGXFSZ
        | SIGSYS => DefaultAction::Core,
        _ => DefaultAction::Terminate,
    }
}

/// The kernel's `siginfo_t` (128 bytes): signo, errno, code, then a union whose fields
/// are laid out by the constructors below as Linux's `__sifields`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct SigInfo {
    pub signo: i32,
    pub errno: i32,
    pub code: i32,
    pad: i32,
    pub fields: [u64; 14],
}

impl SigInfo {
    pub fn new(signo: i32, code: i32) -> SigInfo {
        SigInfo {
            signo,
            errno: 0,
            code,
            pad: 0,
            fields: [0; 14],
        }
    }

    /// kill, tkill and the like: the sender's pid and uid (`_kill`, `_rt`).
    pub fn from_sender(signo: i32, code: i32, pid: i32, uid: u32) -> SigInfo {
        let mut info = SigInfo::new(signo, code);
        info.fields[0] = pid as u32 as u64 | (uid as u64) << 32;
        info
    }

    /// A fault at `addr` (`_sigfault`).
    pub fn fault(signo: i32, code: i32, addr: u64) -> SigInfo {
        let mut info = SigInfo::new(signo, code);
        info.fields[0] = addr;
        info
    }

    /// SIGCHLD about child `pid` (`_sigchld`): status is the exit code or signal.
    pub fn child(
        signo: i32,
        code: i32,
        pid: i32,
        uid: u32,
        status: i32,
        utime_ticks: i64,
    ) -> SigInfo {
        let mut info = SigInfo::from_sender(signo, code, pid, uid);
        info.fields[1] = status as u32 as u64;
        info.fields[2] = utime_ticks as u64;
        info
    }

    /// A POSIX timer's expiry (`_timer`).
    pub fn timer(signo: i32, timer_id: i32, overrun: i32, value: u64) -> SigInfo {
        let mut info = SigInfo::new(signo, SI_TIMER);
        info.fields[0] = timer_id as u32 as u64 | (overrun as u32 as u64) << 32;
        info.fields[1] = value;
        info
    }

    /// si_addr of a fault.
    pub fn addr(&self) -> u64 {
        self.fields[0]
    }
}

/// Pending signals: a bit per signal and the queued siginfos. A standard signal is pending
/// at most once; real-time signals queue (signal(7)).
#[derive(Debug, Default, Clone)]
pub struct SigQueue {
    pub pending: SigSet,
    infos: VecDeque<SigInfo>,
}

/// At most this many real-time signals queue per queue (RLIMIT_SIGPENDING's role).
const MAX_QUEUED: usize = 4096;

impl SigQueue {
    /// Queues `info`; false if it was dropped (a standard signal already pending, or the
    /// real-time queue full).
    pub fn push(&mut self, info: SigInfo) -> bool {
        let bit = sig_bit(info.signo);
        if info.signo < SIGRTMIN && self.pending & bit != 0 {
            return false;
        }
        if self.infos.len() >= MAX_QUEUED {
            return false;
        }
        self.pending |= bit;
        self.infos.push_back(info);
        true
    }

    /// The next signal not in `blocked`: synchronous ones first, then the lowest number.
    pub fn take(&mut self, blocked: SigSet) -> Option<SigInfo> {
        let ready = self.pending & !blocked;
        if ready == 0 {
            return None;
        }
        let pick = if ready & SYNCHRONOUS != 0 {
            ready & SYNCHRONOUS
        } else {
            ready
        };
        self.take_signal(pick.trailing_zeros() as i32 + 1)
    }

    /// The first queued instance of `sig`.
    pub fn take_signal(&mut self, sig: i32) -> Option<SigInfo> {
        let i = self.infos.iter().position(|i| i.signo == sig)?;
        let info = self.infos.remove(i)?;
        if !self.infos.iter().any(|i| i.signo == sig) {
            self.pending &= !sig_bit(sig);
        }
        Some(info)
    }

    /// Forgets every pending signal in `set`.
    pub fn discard(&mut self, set: SigSet) {
        self.pending &= !set;
        self.infos.retain(|i| sig_bit(i.signo) & set == 0);
    }
}

/// What one thread of the group has: its mask and own pending signals, and how to reach it.
pub struct ThreadSignals {
    pub mask: SigSet,
    /// Signals a sigtimedwait in progress waits for (Linux's real_blocked): unblocked for
    /// the wait, yet never ignored or fatal on arrival.
    pub waiting: SigSet,
    pub pending: SigQueue,
    waker: Arc<Waker>,
    kick: Arc<dyn Interrupt>,
}

impl ThreadSignals {
    fn wake(&self) {
        self.waker.interrupt();
        self.kick.interrupt();
    }
}

/// A group stop in progress or in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupStop {
    pub signo: i32,
    /// Threads that have stopped so far.
    pub stopped: usize,
    /// Whether the parent has been told.
    pub reported: bool,
}

/// The signal state of a thread group; guarded by [`ThreadGroup::signals`].
#[derive(Default)]
pub struct Signals {
    /// Signals sent to the process as a whole.
    pub shared: SigQueue,
    pub threads: BTreeMap<i32, ThreadSignals>,
    /// Set when the whole group is to exit (exit_group, a fatal signal): every thread ends.
    pub exit: Option<ExitStatus>,
    /// Set while thread `tid` execs: every other thread ends.
    pub exec: Option<i32>,
    pub stop: Option<GroupStop>,
    /// The exit code the group leader left when it exited alone (the process's status if
    /// no group exit follows).
    pub leader_exit: Option<ExitStatus>,
    /// Set by a SIGCONT that ended a stop, until the parent's wait reports it.
    pub continued: bool,
    /// The sandbox's init: signals other processes of the sandbox send it whose action is
    /// the default are dropped, SIGKILL included, unless they are blocked (pid_namespaces(7):
    /// "only signals for which the init process has established a signal handler can be
    /// sent to the init process by other members of the PID namespace"). Unlike Linux's
    /// SIGNAL_UNKILLABLE, init's own signals and the kernel's (SIGPIPE, its timers, its
    /// faults) act as for any process, so that `runsc-rs do -- PROG` behaves as PROG.
    pub unkillable: bool,
}

impl std::fmt::Debug for Signals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signals")
            .field("shared", &self.shared)
            .field("threads", &self.threads.keys().collect::<Vec<_>>())
            .field("exit", &self.exit)
            .finish()
    }
}

impl Signals {
    /// Recomputes whether thread `tid` has something to take (Linux's recalc_sigpending).
    pub fn recalc(&self, tid: i32) {
        let Some(thread) = self.threads.get(&tid) else {
            return;
        };
        let group =
            self.exit.is_some() || self.exec.is_some_and(|e| e != tid) || self.stop.is_some();
        let pending = (thread.pending.pending | self.shared.pending) & !thread.mask != 0;
        thread.waker.set_interrupted(group || pending);
    }

    /// Cuts every running thread's guest code short (without marking any interrupted).
    pub fn kick_all(&self) {
        for thread in self.threads.values() {
            thread.kick.interrupt();
        }
    }

    /// Wakes thread `tid` to look at its signals.
    pub fn wake(&self, tid: i32) {
        if let Some(thread) = self.threads.get(&tid) {
            thread.wake();
        }
    }

    fn wake_all(&self, except: Option<i32>) {
        for (&tid, thread) in &self.threads {
            if Some(tid) != except {
                thread.wake();
            }
        }
    }

    /// Starts a group exit with `status` (the first one wins) and wakes every thread.
    pub fn start_group_exit(&mut self, status: ExitStatus, except: Option<i32>) {
        if self.exit.is_none() {
            self.exit = Some(status);
        }
        self.stop = None;
        self.wake_all(except);
    }

    /// Changes thread `tid`'s mask, handing process signals it now blocks to a thread
    /// that does not (Linux's retarget_shared_pending).
    pub fn set_mask(&mut self, tid: i32, mask: SigSet) {
        let mask = mask & !UNBLOCKABLE;
        let Some(thread) = self.threads.get_mut(&tid) else {
            return;
        };
        let newly_blocked = mask & !thread.mask;
        thread.mask = mask;
        self.recalc(tid);
        let orphaned = self.shared.pending & newly_blocked;
        if orphaned != 0 {
            if let Some(other) = self
                .threads
                .values()
                .find(|t| t.mask & orphaned != orphaned)
            {
                other.wake();
            }
        }
    }
}

impl ThreadGroup {
    pub fn signals(&self) -> MutexGuard<'_, Signals> {
        self.signals.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Condition variable for stopped threads (group stop) to wait on.
    pub fn stop_changed(&self) -> &Condvar {
        &self.stop_changed
    }

    /// Adds thread `tid` with `mask`, reachable through `waker` and `kick`.
    pub fn add_thread(&self, tid: i32, mask: SigSet, waker: Arc<Waker>, kick: Arc<dyn Interrupt>) {
        let mut signals = self.signals();
        signals.threads.insert(
            tid,
            ThreadSignals {
                mask: mask & !UNBLOCKABLE,
                waiting: 0,
                pending: SigQueue::default(),
                waker,
                kick,
            },
        );
        signals.recalc(tid);
    }

    /// The tids of the live threads, in order.
    pub fn tids(&self) -> Vec<i32> {
        self.signals().threads.keys().copied().collect()
    }
}

/// A process's timers: ITIMER_REAL (alarm, setitimer) and the POSIX timers by id. Dropping
/// a timer disarms it.
#[derive(Debug, Default)]
pub struct ProcessTimers {
    pub real: Option<super::timers::Timer>,
    pub posix: BTreeMap<i32, PosixTimer>,
    /// ITIMER_VIRTUAL and ITIMER_PROF, in that order.
    pub cpu: [Option<CpuTimer>; 2],
    /// The process's CPU time counted for them: user time, and user plus system time.
    pub cpu_used: [Duration; 2],
    /// The guest code's CPU time (the address space's, see `Context::cpu_time`) when
    /// counting began, and the system time the threads have added since.
    pub cpu_user_base: Duration,
    pub cpu_system: Duration,
    /// Bumped when a CPU timer is set: threads then count their system time afresh.
    pub cpu_epoch: u64,
    /// While a CPU timer is armed: kicks the running threads every 10 ms, so that a thread
    /// that computes without system calls still traps and counts its time.
    pub cpu_ticker: Option<super::timers::Timer>,
}

/// A CPU-time itimer: it fires when the process's counted CPU time reaches `deadline`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuTimer {
    pub deadline: Duration,
    pub interval: Duration,
}

impl ProcessTimers {
    /// Disarms and forgets them all (exit, exec).
    pub fn clear(&mut self) {
        self.real = None;
        self.posix.clear();
        self.cpu = [None, None];
        self.cpu_ticker = None;
    }

    /// Counts the guest's user time now (`user`, the address space's total) and `system`
    /// more of a thread's system time, and returns the signals of the CPU timers that are
    /// now due, re-arming periodic ones.
    pub fn count_cpu(&mut self, user: Duration, system: Duration) -> Vec<i32> {
        self.cpu_system += system;
        let user = user.saturating_sub(self.cpu_user_base);
        self.cpu_used = [user, user + self.cpu_system];
        let mut due = Vec::new();
        for (i, sig) in [(0, SIGVTALRM), (1, SIGPROF)] {
            let used = self.cpu_used[i];
            let Some(timer) = self.cpu[i].as_mut() else {
                continue;
            };
            if used < timer.deadline {
                continue;
            }
            due.push(sig);
            if timer.interval.is_zero() {
                self.cpu[i] = None;
            } else {
                while timer.deadline <= used {
                    timer.deadline += timer.interval;
                }
            }
        }
        due
    }
}

/// A timer_create timer: its host timer and the expirations its signal has not reported.
#[derive(Debug)]
pub struct PosixTimer {
    pub timer: super::timers::Timer,
    pub clock: u64,
    pub overrun: Arc<std::sync::atomic::AtomicI32>,
}

/// Where a signal is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The process: any thread that does not block it takes it.
    Process,
    /// One thread (tkill, tgkill, synchronous signals, timers with SIGEV_THREAD_ID).
    Thread(i32),
}

/// Sends `info` to `tg` as Linux's send_signal and complete_signal do: it may be dropped
/// as ignored; stop and continue signals act at once on the whole group; a fatal signal
/// nobody handles starts the group exit right away. ESRCH if `Thread` names no thread
/// of the group.
pub fn send(tg: &ThreadGroup, target: Target, info: SigInfo) -> Result<(), Errno> {
    send_as(tg, target, info, false)
}

/// [`send`] by process `sender` of the sandbox (kill and friends): another process's
/// signals to init are subject to init's protection.
pub fn send_by(tg: &ThreadGroup, target: Target, info: SigInfo, sender: i32) -> Result<(), Errno> {
    send_as(tg, target, info, sender != tg.pid)
}

/// Ends process `tg` as SIGKILL from the kernel does (init's protection does not hold):
/// for host-side failures that leave it unable to run.
pub fn kill_process(tg: &ThreadGroup) {
    let _ = send_from_host(tg, SigInfo::new(SIGKILL, SI_KERNEL));
}

/// [`send`] from outside the sandbox (runsc-rs passing on a signal it got), as from an
/// ancestor pid namespace.
pub fn send_from_host(tg: &ThreadGroup, info: SigInfo) -> Result<(), Errno> {
    send_as(tg, Target::Process, info, false)
}

fn send_as(tg: &ThreadGroup, target: Target, info: SigInfo, protect: bool) -> Result<(), Errno> {
    let sig = info.signo;
    if !(1..=NSIG).contains(&sig) {
        return Err(Errno::EINVAL);
    }
    let action = tg.actions()[(sig - 1) as usize];
    let mut s = tg.signals();
    if let Target::Thread(tid) = target {
        if !s.threads.contains_key(&tid) {
            return Err(Errno::ESRCH);
        }
    }
    if s.exit.is_some() {
        return Ok(());
    }
    let bit = sig_bit(sig);
    let protected = protect && s.unkillable && action.handler == SIG_DFL;
    if sig == SIGKILL && protected {
        return Ok(());
    }
    if sig == SIGKILL {
        s.start_group_exit(ExitStatus::Signaled(SIGKILL), None);
        drop(s);
        tg.stop_changed.notify_all();
        return Ok(());
    }
    if sig == SIGCONT {
        s.shared.discard(STOP_SIGNALS);
        for thread in s.threads.values_mut() {
            thread.pending.discard(STOP_SIGNALS);
        }
        if s.stop.take().is_some() {
            tg.stop_changed.notify_all();
            let tids: Vec<i32> = s.threads.keys().copied().collect();
            for tid in tids {
                s.recalc(tid);
            }
            s.continued = true;
        }
    } else if bit & STOP_SIGNALS != 0 {
        s.shared.discard(sig_bit(SIGCONT));
        for thread in s.threads.values_mut() {
            thread.pending.discard(sig_bit(SIGCONT));
        }
    }
    let blocked_by = |s: &Signals, tid: i32| {
        s.threads
            .get(&tid)
            .is_some_and(|t| (t.mask | t.waiting) & bit != 0)
    };
    let ignored = action.handler == SIG_IGN
        || protected
        || (action.handler == SIG_DFL
            && matches!(
                default_action(sig),
                DefaultAction::Ignore | DefaultAction::Continue
            ));
    let all_block = s.threads.values().all(|t| (t.mask | t.waiting) & bit != 0);
    let blocked = match target {
        Target::Thread(tid) => blocked_by(&s, tid),
        Target::Process => all_block,
    };
    if ignored && !blocked {
        return Ok(());
    }
    let queued = match target {
        Target::Thread(tid) => s
            .threads
            .get_mut(&tid)
            .is_some_and(|t| t.pending.push(info)),
        Target::Process => s.shared.push(info),
    };
    if !queued {
        return Ok(());
    }
    // signalfd readers of the process look (they may take it before a thread does).
    tg.signal_queue.notify();
    // Who takes it: the target thread, or for the process the first thread (the leader
    // first) that does not block it.
    let unblocked = |s: &Signals, tid: i32| s.threads.get(&tid).is_some_and(|t| t.mask & bit == 0);
    let chosen = match target {
        Target::Thread(tid) => unblocked(&s, tid).then_some(tid),
        Target::Process => s
            .threads
            .iter()
            .find(|(_, t)| t.mask & bit == 0)
            .map(|(&tid, _)| tid),
    };
    let Some(chosen) = chosen else {
        return Ok(());
    };
    let fatal = action.handler == SIG_DFL
        && matches!(
            default_action(sig),
            DefaultAction::Terminate | DefaultAction::Core
        );
    let awaited = s.threads.get(&chosen).is_some_and(|t| t.waiting & bit != 0);
    if fatal && bit & SYNCHRONOUS == 0 && !awaited {
        // Nobody can catch it: the group exits now, even threads asleep in calls that
        // do not end for signals.
        s.start_group_exit(ExitStatus::Signaled(sig), None);
        drop(s);
        tg.stop_changed.notify_all();
        return Ok(());
    }
    if let Some(thread) = s.threads.get(&chosen) {
        thread.wake();
    }
    Ok(())
}

/// What thread `tid` must do next about signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dequeued {
    /// Nothing to take.
    Nothing,
    /// The thread must end: its group exits (or another thread execs).
    Exit(ExitStatus),
    /// The group stops: wait for SIGCONT ([`ThreadGroup::stop_here`]).
    Stop,
    /// Run this signal's handler.
    Handle(SigInfo, SigAction),
}

/// Takes thread `tid`'s next signal. Ignored signals are dropped and default actions that
/// need no handler are carried out on the group here; what remains is returned.
pub fn dequeue(tg: &ThreadGroup, tid: i32) -> Dequeued {
    let actions = *tg.actions();
    let mut s = tg.signals();
    loop {
        if let Some(status) = s.exit {
            return Dequeued::Exit(status);
        }
        if s.exec.is_some_and(|e| e != tid) {
            return Dequeued::Exit(ExitStatus::Signaled(SIGKILL));
        }
        if s.stop.is_some() {
            return Dequeued::Stop;
        }
        let Some(thread) = s.threads.get_mut(&tid) else {
            return Dequeued::Nothing;
        };
        let mask = thread.mask;
        let info = match thread.pending.take(mask) {
            Some(info) => Some(info),
            None => s.shared.take(mask),
        };
        let Some(info) = info else {
            s.recalc(tid);
            return Dequeued::Nothing;
        };
        let sig = info.signo;
        let action = actions[(sig - 1) as usize];
        match action.handler {
            SIG_IGN => continue,
            SIG_DFL => match default_action(sig) {
                DefaultAction::Ignore | DefaultAction::Continue => continue,
                DefaultAction::Stop => {
                    s.stop = Some(GroupStop {
                        signo: sig,
                        stopped: 0,
                        reported: false,
                    });
                    s.wake_all(Some(tid));
                    return Dequeued::Stop;
                }
                DefaultAction::Terminate | DefaultAction::Core => {
                    s.start_group_exit(ExitStatus::Signaled(sig), Some(tid));
                    drop(s);
                    tg.stop_changed.notify_all();
                    return Dequeued::Exit(ExitStatus::Signaled(sig));
                }
            },
            _ => {
                s.recalc(tid);
                return Dequeued::Handle(info, action);
            }
        }
    }
}

/// Whether thread `tid` is to end rather than run on: its group exits, or another of its
/// threads execs ([`dequeue`] then says `Exit`).
pub fn must_exit(tg: &ThreadGroup, tid: i32) -> bool {
    let s = tg.signals();
    s.exit.is_some() || s.exec.is_some_and(|e| e != tid)
}

/// Takes a pending signal of `set` for thread `tid` without running anything
/// (sigtimedwait, signalfd).
pub fn take_from(tg: &ThreadGroup, tid: i32, set: SigSet) -> Option<SigInfo> {
    let mut s = tg.signals();
    let thread = s.threads.get_mut(&tid)?;
    let info = match thread.pending.take(!set) {
        Some(info) => Some(info),
        None => s.shared.take(!set),
    };
    s.recalc(tid);
    info
}

/// Sets the signals thread `tid` waits for in sigtimedwait (0 when the wait ends).
pub fn set_waiting(tg: &ThreadGroup, tid: i32, set: SigSet) {
    if let Some(thread) = tg.signals().threads.get_mut(&tid) {
        thread.waiting = set;
    }
}

/// A POSIX timer fired again: if its last signal is still queued for `tg`, its si_overrun
/// grows by `count` instead of a second signal being queued (timer_getoverrun(2)); returns
/// the new overrun, or None if no such signal is queued.
pub fn add_timer_overrun(tg: &ThreadGroup, signo: i32, timer_id: i32, count: u64) -> Option<i32> {
    let mut s = tg.signals();
    let Signals {
        shared, threads, ..
    } = &mut *s;
    let queues = std::iter::once(shared).chain(threads.values_mut().map(|t| &mut t.pending));
    for queue in queues {
        let queued = queue.infos.iter_mut().find(|i| {
            i.signo == signo && i.code == SI_TIMER && i.fields[0] as u32 == timer_id as u32
        });
        if let Some(info) = queued {
            let overrun = ((info.fields[0] >> 32) as u32 as i32)
                .saturating_add(count.min(i32::MAX as u64) as i32);
            info.fields[0] = timer_id as u32 as u64 | (overrun as u32 as u64) << 32;
            return Some(overrun);
        }
    }
    None
}

/// How many signals are queued for process `tg`, counting every thread's own.
pub fn queued(tg: &ThreadGroup) -> usize {
    let s = tg.signals();
    s.shared.infos.len()
        + s.threads
            .values()
            .map(|t| t.pending.infos.len())
            .sum::<usize>()
}

/// Forgets the pending instances of `sig` everywhere in `tg` (its action became ignore).
pub fn discard(tg: &ThreadGroup, sig: i32) {
    let mut s = tg.signals();
    s.shared.discard(sig_bit(sig));
    for thread in s.threads.values_mut() {
        thread.pending.discard(sig_bit(sig));
    }
}

/// The signals pending for thread `tid` (its own and the process's).
pub fn pending(tg: &ThreadGroup, tid: i32) -> SigSet {
    let s = tg.signals();
    s.threads.get(&tid).map_or(0, |t| t.pending.pending) | s.shared.pending
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_signals_coalesce_and_realtime_ones_queue_in_order() {
        let mut q = SigQueue::default();
        assert!(q.push(SigInfo::new(SIGUSR1, SI_USER)));
        assert!(!q.push(SigInfo::new(SIGUSR1, SI_USER)));
        assert!(q.push(SigInfo::new(SIGRTMIN + 1, SI_QUEUE)));
        assert!(q.push(SigInfo::new(SIGRTMIN + 1, SI_QUEUE)));
        assert!(q.push(SigInfo::new(SIGSEGV, 1)));
        // Synchronous first, then the lowest number.
        assert_eq!(q.take(0).map(|i| i.signo), Some(SIGSEGV));
        assert_eq!(
            q.take(sig_bit(SIGUSR1)).map(|i| i.signo),
            Some(SIGRTMIN + 1)
        );
        assert_eq!(q.take(0).map(|i| i.signo), Some(SIGUSR1));
        assert_eq!(q.take(0).map(|i| i.signo), Some(SIGRTMIN + 1));
        assert_eq!(q.take(0), None);
        assert_eq!(q.pending, 0);
        assert_eq!(std::mem::size_of::<SigInfo>(), 128);
    }
}
