//! Signals: dispositions, masks, the alternate stack, sending (kill and friends), waiting
//! for signals, and the timers that raise them (alarm, itimers, POSIX timers). Delivery
//! itself is the task loop's (kernel/task.rs, kernel/sigframe.rs).

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::abi::*;
use crate::kernel::signals::{self, PosixTimer, SigInfo, Target};
use crate::kernel::timers::Timer;
use crate::kernel::{SignalStack, Task, ThreadGroup};

pub fn rt_sigaction(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let [sig, act, oldact, sigsetsize, ..] = *a;
    if sigsetsize != 8 {
        return Err(Errno::EINVAL);
    }
    // Linux reads the new action before it looks at the signal number.
    let new = if act != 0 {
        let mut new: SigAction = t.mm.read_obj(act)?;
        new.mask &= !UNBLOCKABLE;
        // Bits Linux does not know are dropped (since 5.11), so programs can probe for them.
        new.flags &= SA_KNOWN;
        Some(new)
    } else {
        None
    };
    let sig = sig as i32;
    if !(1..=NSIG).contains(&sig) || (new.is_some() && sig_bit(sig) & UNBLOCKABLE != 0) {
        return Err(Errno::EINVAL);
    }
    let old = {
        let mut actions = t.tg.actions();
        let slot = &mut actions[(sig - 1) as usize];
        let old = *slot;
        if let Some(new) = new {
            *slot = new;
        }
        old
    };
    // POSIX: setting a signal's action to ignore it discards its pending instances, even
    // blocked ones.
    if let Some(new) = new {
        let ignores = new.handler == signals::SIG_IGN
            || (new.handler == signals::SIG_DFL
                && matches!(
                    signals::default_action(sig),
                    signals::DefaultAction::Ignore | signals::DefaultAction::Continue
                ));
        if ignores {
            signals::discard(&t.tg, sig);
        }
    }
    if oldact != 0 {
        t.mm.write_obj(oldact, &old)?;
    }
    Ok(0)
}

/// The sa_flags bits x86_64 Linux keeps (UAPI_SA_FLAGS): NOCLDSTOP, NOCLDWAIT, SIGINFO,
/// EXPOSE_TAGBITS, RESTORER, ONSTACK, RESTART, NODEFER, RESETHAND.
const SA_KNOWN: u64 =
    0x1 | 0x2 | 0x4 | 0x800 | 0x0400_0000 | 0x0800_0000 | 0x1000_0000 | 0x4000_0000 | 0x8000_0000;

pub fn rt_sigprocmask(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let [how, set, oldset, sigsetsize, ..] = *a;
    let how = how as u32 as u64;
    if sigsetsize != 8 {
        return Err(Errno::EINVAL);
    }
    let old = t.signal_mask();
    if set != 0 {
        let set: SigSet = t.mm.read_obj(set)?;
        let mask = match how {
            SIG_BLOCK => old | set,
            SIG_UNBLOCK => old & !set,
            SIG_SETMASK => set,
            _ => return Err(Errno::EINVAL),
        };
        t.set_signal_mask(mask);
    }
    if oldset != 0 {
        t.mm.write_obj(oldset, &old)?;
    }
    Ok(0)
}

/// The least size of an alternate signal stack (MINSIGSTKSZ on x86_64).
const MINSIGSTKSZ: u64 = 2048;

/// sigaltstack(2), as Linux's do_sigaltstack: the old stack is reported (SS_ONSTACK while
/// the caller runs on it, SS_DISABLE when there is none); a new one cannot be set while on
/// the current one (EPERM), must be at least MINSIGSTKSZ (ENOMEM), and its mode is 0,
/// SS_ONSTACK or SS_DISABLE, with SS_AUTODISARM beside it.
pub fn sigaltstack(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let [new, old_addr, ..] = *a;
    let new: Option<StackT> = if new != 0 {
        Some(t.mm.read_obj(new)?)
    } else {
        None
    };
    let sp = t.regs.rsp;
    let cur = t.sigaltstack;
    let state = if cur.size == 0 {
        SS_DISABLE
    } else if cur.contains(sp) {
        SS_ONSTACK
    } else {
        0
    };
    let old = StackT {
        sp: cur.sp,
        flags: (state | (cur.flags as u64 & SS_AUTODISARM)) as u32 as i32,
        pad: 0,
        size: cur.size,
    };
    if let Some(new) = new {
        if cur.contains(sp) {
            return Err(Errno::EPERM);
        }
        let flags = new.flags as u32;
        let mode = flags as u64 & !SS_AUTODISARM;
        if mode != 0 && mode != SS_ONSTACK && mode != SS_DISABLE {
            return Err(Errno::EINVAL);
        }
        let unchanged = new.sp == cur.sp && new.size == cur.size && flags == cur.flags;
        t.sigaltstack = if unchanged {
            cur
        } else if mode == SS_DISABLE {
            SignalStack {
                sp: 0,
                size: 0,
                flags,
            }
        } else {
            if new.size < MINSIGSTKSZ {
                return Err(Errno::ENOMEM);
            }
            SignalStack {
                sp: new.sp,
                size: new.size,
                flags,
            }
        };
    }
    if old_addr != 0 {
        t.mm.write_obj(old_addr, &old)?;
    }
    Ok(0)
}

pub fn signalfd(t: &mut Task, a: &[u64; 6]) -> SysResult {
    signalfd4(t, &[a[0], a[1], a[2], 0, 0, 0])
}

/// signalfd4(2): a new signalfd (fd -1), or a new mask for an existing one.
pub fn signalfd4(t: &mut Task, a: &[u64; 6]) -> SysResult {
    const SFD_CLOEXEC: u64 = 0o2000000;
    const SFD_NONBLOCK: u64 = crate::vfs::O_NONBLOCK as u64;
    let [fd, mask_at, size, flags, ..] = *a;
    if size != 8 || flags & !(SFD_CLOEXEC | SFD_NONBLOCK) != 0 {
        return Err(Errno::EINVAL);
    }
    let mask: SigSet = t.mm.read_obj(mask_at)?;
    if fd as i32 != -1 {
        let file = t.fds.get(fd)?;
        file.signalfd().ok_or(Errno::EINVAL)?.set_mask(mask);
        return Ok(fd as i32 as u64);
    }
    let ops = Arc::new(crate::fs::signalfd::SignalFd::new(t.tg.clone(), mask));
    let status = crate::vfs::O_RDWR | (flags & SFD_NONBLOCK) as u32;
    let file = crate::fs::anon::new_file("signalfd", ops, status);
    let limit = t.tg.rlimits()[RLIMIT_NOFILE as usize].cur;
    let fd = t.fds.install(file, flags & SFD_CLOEXEC != 0, 0, limit)?;
    Ok(fd as u64)
}

pub fn rt_sigreturn(t: &mut Task, _: &[u64; 6]) -> SysResult {
    t.sigreturn()
}

pub fn rt_sigpending(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let [set, size, ..] = *a;
    if size > 8 {
        return Err(Errno::EINVAL);
    }
    // Pending and blocked (Linux's do_sigpending).
    let pending = signals::pending(&t.tg, t.tid) & t.signal_mask();
    t.mm.copy_out(set, &pending.to_le_bytes()[..size as usize])?;
    Ok(0)
}

/// Linux's check_kill_permission (kill(2)): a process may signal itself; another one if a
/// real or effective uid of the sender is the target's real or saved uid, with CAP_KILL,
/// or, for SIGCONT, within its session. EPERM otherwise, the existence probe included.
fn may_signal(t: &Task, target: &ThreadGroup, sig: i32) -> Result<(), Errno> {
    if std::ptr::eq(target, Arc::as_ptr(&t.tg)) || t.creds.capable(CAP_KILL) {
        return Ok(());
    }
    let c = &t.creds;
    // Every process shows its credentials from its fork on.
    let Some(tc) = target.view().creds else {
        return Ok(());
    };
    if [c.euid, c.uid].iter().any(|&u| u == tc.uid || u == tc.suid) {
        return Ok(());
    }
    let processes = &t.kernel.processes;
    if sig == signals::SIGCONT && processes.sid_of(target.pid) == processes.sid_of(t.tg.pid) {
        return Ok(());
    }
    Err(Errno::EPERM)
}

/// Checks `sig` (0 is the existence probe) and the caller's permission, and sends it to
/// `target` as from `t`.
fn send_from(t: &Task, target: &ThreadGroup, to: Target, sig: i32, code: i32) -> Result<(), Errno> {
    may_signal(t, target, sig)?;
    if sig == 0 {
        return Ok(());
    }
    let info = SigInfo::from_sender(sig, code, t.tg.pid, t.creds.uid);
    signals::send_by(target, to, info, t.tg.pid)?;
    if sig == signals::SIGCONT {
        t.kernel.processes.continued(target);
    }
    Ok(())
}

fn check_signal(sig: u64) -> Result<i32, Errno> {
    let sig = sig as i32;
    if !(0..=NSIG).contains(&sig) {
        return Err(Errno::EINVAL);
    }
    Ok(sig)
}

pub fn kill(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let pid = a[0] as i32;
    let sig = check_signal(a[1])?;
    let processes = &t.kernel.processes;
    let targets = match pid {
        p if p > 0 => processes.process_of(p).into_iter().collect(),
        0 => processes.group(processes.pgid_of(t.tg.pid)?),
        // Every process but init, the caller included (unless it is init).
        -1 => processes
            .live()
            .into_iter()
            .filter(|p| p.pid != 1)
            .collect(),
        i32::MIN => return Err(Errno::ESRCH),
        p => processes.group(-p),
    };
    if targets.is_empty() {
        return Err(Errno::ESRCH);
    }
    // A group succeeds if one member got the signal, else fails as the last one did
    // (__kill_pgrp_info); -1 leaves out, silently, whom the caller may not signal.
    let (mut sent, mut failed) = (false, None);
    for target in &targets {
        match send_from(t, target, Target::Process, sig, signals::SI_USER) {
            Ok(()) => sent = true,
            Err(Errno::EPERM) if pid == -1 => {}
            Err(e) => failed = Some(e),
        }
    }
    match failed {
        Some(e) if !sent || pid == -1 => Err(e),
        _ => Ok(0),
    }
}

pub fn tkill(t: &mut Task, a: &[u64; 6]) -> SysResult {
    thread_kill(t, None, a[0] as i32, a[1])
}

pub fn tgkill(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let tgid = a[0] as i32;
    if tgid <= 0 {
        return Err(Errno::EINVAL);
    }
    thread_kill(t, Some(tgid), a[1] as i32, a[2])
}

fn thread_kill(t: &Task, tgid: Option<i32>, tid: i32, sig: u64) -> SysResult {
    if tid <= 0 {
        return Err(Errno::EINVAL);
    }
    let sig = check_signal(sig)?;
    let target = find_target(t, tgid, Some(tid))?;
    send_from(t, &target, Target::Thread(tid), sig, signals::SI_TKILL)?;
    Ok(0)
}

/// The process a thread-directed call names: thread `tid` (if given) must be one of its live
/// threads, and `tgid` (if given) its pid; ESRCH otherwise.
fn find_target(t: &Task, tgid: Option<i32>, tid: Option<i32>) -> Result<Arc<ThreadGroup>, Errno> {
    let id = tid.or(tgid).ok_or(Errno::ESRCH)?;
    let target = t.kernel.processes.process_of(id).ok_or(Errno::ESRCH)?;
    if tgid.is_some_and(|g| g != target.pid) || tid.is_some_and(|tid| !target.tids().contains(&tid))
    {
        return Err(Errno::ESRCH);
    }
    Ok(target)
}

/// rt_sigqueueinfo and rt_tgsigqueueinfo: the caller's own siginfo, which may not claim to
/// come from the kernel or from kill/tkill unless it is sent to the caller itself.
fn queue_info(t: &Task, tgid: i32, tid: Option<i32>, sig: u64, uinfo: u64) -> SysResult {
    let sig = check_signal(sig)?;
    let mut info: SigInfo = t.mm.read_obj(uinfo)?;
    let target = find_target(t, Some(tgid), tid)?;
    if (info.code >= 0 || info.code == signals::SI_TKILL) && target.pid != t.tg.pid {
        return Err(Errno::EPERM);
    }
    may_signal(t, &target, sig)?;
    // RLIMIT_SIGPENDING binds queued signals only (getrlimit(2)); counted per process.
    let limit = target.rlimits()[RLIMIT_SIGPENDING as usize].cur;
    if sig != 0 && signals::queued(&target) as u64 >= limit {
        return Err(Errno::EAGAIN);
    }
    if sig == 0 {
        return Ok(0);
    }
    info.signo = sig;
    let to = tid.map_or(Target::Process, Target::Thread);
    signals::send_by(&target, to, info, t.tg.pid)?;
    Ok(0)
}

pub fn rt_sigqueueinfo(t: &mut Task, a: &[u64; 6]) -> SysResult {
    queue_info(t, a[0] as i32, None, a[1], a[2])
}

pub fn rt_tgsigqueueinfo(t: &mut Task, a: &[u64; 6]) -> SysResult {
    queue_info(t, a[0] as i32, Some(a[1] as i32), a[2], a[3])
}

pub fn pause(_: &mut Task, _: &[u64; 6]) -> SysResult {
    crate::waiter::sleep_interruptible(None)?;
    Err(Errno::EINTR)
}

pub fn rt_sigsuspend(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let [set, size, ..] = *a;
    if size != 8 {
        return Err(Errno::EINVAL);
    }
    let mask: SigSet = t.mm.read_obj(set)?;
    // The handler's frame records the old mask, so its return puts it back.
    t.saved_mask = Some(t.signal_mask());
    t.set_signal_mask(mask);
    crate::waiter::sleep_interruptible(None)?;
    Err(Errno::EINTR)
}

pub fn rt_sigtimedwait(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let [set, uinfo, timeout, size, ..] = *a;
    if size != 8 {
        return Err(Errno::EINVAL);
    }
    let set: SigSet = t.mm.read_obj::<SigSet>(set)? & !UNBLOCKABLE;
    let deadline = if timeout != 0 {
        let ts: Timespec = t.mm.read_obj(timeout)?;
        Some(crate::waiter::later(ts.to_duration()?))
    } else {
        None
    };
    let old = t.signal_mask();
    let mut result = signals::take_from(&t.tg, t.tid, set);
    if result.is_none() {
        // The awaited signals wake us while we wait, as if unblocked, yet they are neither
        // ignored nor fatal when they come.
        signals::set_waiting(&t.tg, t.tid, set);
        t.set_signal_mask(old & !set);
        let slept = crate::waiter::sleep_interruptible(deadline);
        result = signals::take_from(&t.tg, t.tid, set);
        t.set_signal_mask(old);
        signals::set_waiting(&t.tg, t.tid, 0);
        if result.is_none() && slept.is_err() {
            return Err(Errno::EINTR);
        }
    }
    let info = result.ok_or(Errno::EAGAIN)?;
    if uinfo != 0 {
        t.mm.write_obj(uinfo, &info)?;
    }
    Ok(info.signo as u64)
}

/// `struct itimerval`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
struct Itimerval {
    interval: Timeval,
    value: Timeval,
}

/// `struct itimerspec`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
struct Itimerspec {
    interval: Timespec,
    value: Timespec,
}

fn timeval_duration(tv: Timeval) -> Result<Duration, Errno> {
    if tv.tv_sec < 0 || !(0..1_000_000).contains(&tv.tv_usec) {
        return Err(Errno::EINVAL);
    }
    Ok(Duration::new(tv.tv_sec as u64, tv.tv_usec as u32 * 1000))
}

fn timeval(d: Duration) -> Timeval {
    Timeval {
        tv_sec: d.as_secs() as i64,
        tv_usec: d.subsec_micros() as i64,
    }
}

/// A timer that sends `sig` to process `tg` each time it fires.
fn signal_timer(tg: &Arc<ThreadGroup>, sig: i32) -> Timer {
    let tg: Weak<ThreadGroup> = Arc::downgrade(tg);
    Timer::new(move |_| {
        if let Some(tg) = tg.upgrade() {
            let _ = signals::send(&tg, Target::Process, SigInfo::new(sig, signals::SI_KERNEL));
        }
    })
}

const ITIMER_REAL: u64 = 0;
const ITIMER_VIRTUAL: u64 = 1;
const ITIMER_PROF: u64 = 2;

/// Sets ITIMER_REAL (value zero disarms) and returns the old value and interval.
fn set_real_timer(t: &Task, value: Duration, interval: Duration) -> (Duration, Duration) {
    let mut timers = t.tg.timers();
    let old = real_timer_state(&timers);
    if value.is_zero() {
        timers.real = None;
    } else {
        let timer = timers
            .real
            .get_or_insert_with(|| signal_timer(&t.tg, signals::SIGALRM));
        timer.arm(crate::waiter::later(value), Some(interval));
    }
    old
}

/// What getitimer shows of ITIMER_REAL: the time left and the interval.
fn real_timer_state(timers: &signals::ProcessTimers) -> (Duration, Duration) {
    timers
        .real
        .as_ref()
        .and_then(|timer| timer.remaining())
        .map_or((Duration::ZERO, Duration::ZERO), |(left, every)| {
            (left, every.unwrap_or_default())
        })
}

/// What getitimer shows of CPU timer `i`: the CPU time left and the interval.
fn cpu_timer_state(timers: &signals::ProcessTimers, i: usize) -> (Duration, Duration) {
    timers.cpu[i].map_or((Duration::ZERO, Duration::ZERO), |c| {
        (c.deadline.saturating_sub(timers.cpu_used[i]), c.interval)
    })
}

/// Sets ITIMER_VIRTUAL (`i` 0) or ITIMER_PROF (1), counted in the process's CPU time
/// (value zero disarms), and returns the old value and interval.
fn set_cpu_timer(
    t: &mut Task,
    i: usize,
    value: Duration,
    interval: Duration,
) -> (Duration, Duration) {
    let counting = t.tg.cpu_timers_armed.load(Ordering::Relaxed);
    if counting {
        t.count_cpu();
    }
    let (user, system) = t.cpu_times();
    let mut timers = t.tg.timers();
    let old = cpu_timer_state(&timers, i);
    if !counting {
        // Counting starts with the first timer armed.
        timers.cpu_user_base = user;
        timers.cpu_system = Duration::ZERO;
        timers.cpu_used = [Duration::ZERO; 2];
    }
    timers.cpu_epoch += 1;
    t.cpu_sample = (timers.cpu_epoch, system);
    let used = timers.cpu_used[i];
    timers.cpu[i] = (!value.is_zero()).then_some(signals::CpuTimer {
        deadline: used + value,
        interval,
    });
    let armed = timers.cpu.iter().any(Option::is_some);
    t.tg.cpu_timers_armed.store(armed, Ordering::Relaxed);
    if !armed {
        timers.cpu_ticker = None;
    } else if timers.cpu_ticker.is_none() {
        let tg = Arc::downgrade(&t.tg);
        let ticker = Timer::new(move |_| {
            if let Some(tg) = tg.upgrade() {
                tg.signals().kick_all();
            }
        });
        let tick = Duration::from_millis(10);
        ticker.arm(Instant::now() + tick, Some(tick));
        timers.cpu_ticker = Some(ticker);
    }
    old
}

pub fn alarm(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let secs = a[0] as u32;
    let (left, _) = set_real_timer(t, Duration::from_secs(secs as u64), Duration::ZERO);
    // Rounded to the nearest second, and never 0 for a timer still armed.
    let mut old = left.as_secs();
    if (old == 0 && !left.is_zero()) || left.subsec_micros() >= 500_000 {
        old += 1;
    }
    Ok(old)
}

pub fn setitimer(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let [which, new, old_at, ..] = *a;
    let which = which as u32 as u64;
    if !matches!(which, ITIMER_REAL | ITIMER_VIRTUAL | ITIMER_PROF) {
        return Err(Errno::EINVAL);
    }
    let new: Itimerval = if new != 0 {
        t.mm.read_obj(new)?
    } else {
        Itimerval::default()
    };
    let value = timeval_duration(new.value)?;
    let interval = timeval_duration(new.interval)?;
    let old = if which == ITIMER_REAL {
        set_real_timer(t, value, interval)
    } else {
        set_cpu_timer(t, (which - 1) as usize, value, interval)
    };
    if old_at != 0 {
        let old = Itimerval {
            interval: timeval(old.1),
            value: timeval(old.0),
        };
        t.mm.write_obj(old_at, &old)?;
    }
    Ok(0)
}

pub fn getitimer(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let [which, at, ..] = *a;
    let which = which as u32 as u64;
    let (left, every) = match which {
        ITIMER_REAL => real_timer_state(&t.tg.timers()),
        ITIMER_VIRTUAL | ITIMER_PROF => {
            t.count_cpu();
            let timers = t.tg.timers();
            cpu_timer_state(&timers, (which - 1) as usize)
        }
        _ => return Err(Errno::EINVAL),
    };
    let value = Itimerval {
        interval: timeval(every),
        value: timeval(left),
    };
    t.mm.write_obj(at, &value)?;
    Ok(0)
}

/// `struct sigevent` as timer_create reads it.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
struct SigEvent {
    value: u64,
    signo: i32,
    notify: i32,
    tid: i32,
    pad: [i32; 11],
}

const SIGEV_SIGNAL: i32 = 0;
const SIGEV_NONE: i32 = 1;
const SIGEV_THREAD: i32 = 2;
const SIGEV_THREAD_ID: i32 = 4;
const TIMER_ABSTIME: u64 = 1;
/// At most this many POSIX timers per process.
const MAX_TIMERS: usize = 4096;

pub fn timer_create(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let [clock, sevp, id_at, ..] = *a;
    let clock = clock as u32 as u64;
    // Every clock but the CPU-time ones fires by wall time here.
    if !matches!(clock, CLOCK_REALTIME | CLOCK_MONOTONIC | 7 | 8 | 9 | 11) {
        if matches!(clock, CLOCK_PROCESS_CPUTIME_ID | CLOCK_THREAD_CPUTIME_ID) {
            t.kernel
                .report_once("timer_create on CPU-time clocks is not supported: returning EINVAL");
        }
        return Err(Errno::EINVAL);
    }
    let mut timers = t.tg.timers();
    let id = (0..MAX_TIMERS as i32)
        .find(|i| !timers.posix.contains_key(i))
        .ok_or(Errno::EAGAIN)?;
    let event = if sevp != 0 {
        t.mm.read_obj(sevp)?
    } else {
        SigEvent {
            value: id as u64,
            signo: signals::SIGALRM,
            notify: SIGEV_SIGNAL,
            ..SigEvent::default()
        }
    };
    let target = match event.notify & !SIGEV_THREAD_ID {
        _ if event.notify == SIGEV_NONE => None,
        SIGEV_SIGNAL | SIGEV_THREAD => {
            if !(1..=NSIG).contains(&event.signo) {
                return Err(Errno::EINVAL);
            }
            if event.notify & SIGEV_THREAD_ID != 0 {
                if !t.tg.tids().contains(&event.tid) {
                    return Err(Errno::EINVAL);
                }
                Some(Target::Thread(event.tid))
            } else {
                Some(Target::Process)
            }
        }
        _ => return Err(Errno::EINVAL),
    };
    let overrun = Arc::new(AtomicI32::new(0));
    let tg = Arc::downgrade(&t.tg);
    let (signo, value, last) = (event.signo, event.value, overrun.clone());
    let timer = Timer::new(move |count| {
        let Some(target) = target else { return };
        let Some(tg) = tg.upgrade() else { return };
        // While its last signal waits, expirations only add to that signal's overrun.
        if let Some(overrun) = signals::add_timer_overrun(&tg, signo, id, count) {
            last.store(overrun, Ordering::Relaxed);
            return;
        }
        let missed = (count.saturating_sub(1)).min(i32::MAX as u64) as i32;
        last.store(missed, Ordering::Relaxed);
        let _ = signals::send(&tg, target, SigInfo::timer(signo, id, missed, value));
    });
    t.mm.write_obj(id_at, &id)?;
    timers.posix.insert(
        id,
        PosixTimer {
            timer,
            clock,
            overrun,
        },
    );
    Ok(0)
}

fn timer_state(timer: &Timer) -> Itimerspec {
    let (left, every) = timer.remaining().unwrap_or_default();
    Itimerspec {
        interval: Timespec::from_duration(every.unwrap_or_default()),
        value: Timespec::from_duration(left),
    }
}

pub fn timer_settime(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let [id, flags, new_at, old_at, ..] = *a;
    if flags & !TIMER_ABSTIME != 0 {
        return Err(Errno::EINVAL);
    }
    let new: Itimerspec = t.mm.read_obj(new_at)?;
    let value = new.value.to_duration()?;
    let interval = new.interval.to_duration()?;
    let clock =
        t.tg.timers()
            .posix
            .get(&(id as i32))
            .map(|p| p.clock)
            .ok_or(Errno::EINVAL)?;
    let relative = if flags & TIMER_ABSTIME != 0 {
        let now = super::time::now(t, clock)?.to_duration()?;
        value.saturating_sub(now)
    } else {
        value
    };
    let timers = t.tg.timers();
    let posix = timers.posix.get(&(id as i32)).ok_or(Errno::EINVAL)?;
    let old = timer_state(&posix.timer);
    if value.is_zero() {
        posix.timer.disarm();
    } else {
        posix
            .timer
            .arm(crate::waiter::later(relative), Some(interval));
    }
    drop(timers);
    if old_at != 0 {
        t.mm.write_obj(old_at, &old)?;
    }
    Ok(0)
}

pub fn timer_gettime(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let state = {
        let timers = t.tg.timers();
        let posix = timers.posix.get(&(a[0] as i32)).ok_or(Errno::EINVAL)?;
        timer_state(&posix.timer)
    };
    t.mm.write_obj(a[1], &state)?;
    Ok(0)
}

pub fn timer_getoverrun(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let timers = t.tg.timers();
    let posix = timers.posix.get(&(a[0] as i32)).ok_or(Errno::EINVAL)?;
    Ok(posix.overrun.load(Ordering::Relaxed) as u64)
}

pub fn timer_delete(t: &mut Task, a: &[u64; 6]) -> SysResult {
    t.tg.timers()
        .posix
        .remove(&(a[0] as i32))
        .map(|_| 0)
        .ok_or(Errno::EINVAL)
}
