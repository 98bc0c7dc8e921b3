//! Clocks and sleeping. Wall and monotonic clocks are the host's; CPU clocks count the
//! task's own time.

use std::time::{Duration, Instant};

use nix::time::{clock_getres as host_clock_getres, clock_gettime as host_clock_gettime, ClockId};

use crate::abi::*;
use crate::kernel::{RestartBlock, Task};

/// The host clock behind guest clock `id`, or EINVAL for clocks the guest cannot name.
fn host_clock(id: u64) -> Result<ClockId, Errno> {
    match id as u32 as u64 {
        CLOCK_REALTIME
        | CLOCK_MONOTONIC
        | CLOCK_MONOTONIC_RAW
        | CLOCK_REALTIME_COARSE
        | CLOCK_MONOTONIC_COARSE
        | CLOCK_BOOTTIME
        | CLOCK_REALTIME_ALARM
        | CLOCK_BOOTTIME_ALARM
        | CLOCK_TAI => Ok(ClockId::from_raw(id as libc::clockid_t)),
        _ => Err(Errno::EINVAL),
    }
}

pub(super) fn now(t: &Task, id: u64) -> Result<Timespec, Errno> {
    let id = id as u32 as u64;
    match id {
        // One thread per process for now: the process's CPU time is the thread's.
        CLOCK_PROCESS_CPUTIME_ID | CLOCK_THREAD_CPUTIME_ID => {
            Ok(Timespec::from_duration(t.cpu_time()))
        }
        _ => {
            let ts = host_clock_gettime(host_clock(id)?)?;
            Ok(Timespec {
                tv_sec: ts.tv_sec(),
                tv_nsec: ts.tv_nsec(),
            })
        }
    }
}

pub fn clock_gettime(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let ts = now(t, a[0])?;
    t.mm.write_obj(a[1], &ts)?;
    Ok(0)
}

pub fn clock_getres(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let res = match a[0] {
        CLOCK_PROCESS_CPUTIME_ID | CLOCK_THREAD_CPUTIME_ID => Timespec {
            tv_sec: 0,
            tv_nsec: 1,
        },
        id => {
            let ts = host_clock_getres(host_clock(id)?)?;
            Timespec {
                tv_sec: ts.tv_sec(),
                tv_nsec: ts.tv_nsec(),
            }
        }
    };
    if a[1] != 0 {
        t.mm.write_obj(a[1], &res)?;
    }
    Ok(0)
}

pub fn gettimeofday(t: &mut Task, a: &[u64; 6]) -> SysResult {
    if a[0] != 0 {
        let ts = now(t, CLOCK_REALTIME)?;
        let tv = Timeval {
            tv_sec: ts.tv_sec,
            tv_usec: ts.tv_nsec / 1000,
        };
        t.mm.write_obj(a[0], &tv)?;
    }
    if a[1] != 0 {
        t.mm.write_obj(a[1], &Timezone::default())?;
    }
    Ok(0)
}

pub fn time(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let secs = now(t, CLOCK_REALTIME)?.tv_sec;
    if a[0] != 0 {
        t.mm.write_obj(a[0], &secs)?;
    }
    Ok(secs as u64)
}

pub fn nanosleep(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let req: Timespec = t.mm.read_obj(a[0])?;
    sleep_for(t, req.to_duration()?, a[1])
}

/// Sleeps `d`; a signal ends it early with EINTR and the time left written at `rem` (if
/// not NULL), as nanosleep and relative clock_nanosleep do.
fn sleep_for(t: &mut Task, d: Duration, rem: u64) -> SysResult {
    let Some(deadline) = Instant::now().checked_add(d) else {
        crate::waiter::sleep_interruptible(None)?;
        return Ok(0);
    };
    sleep_until(t, deadline, rem)
}

/// The sleep of [`sleep_for`] up to `deadline`. An interrupted one leaves its deadline for
/// restart_syscall(2), which goes on with it if no handler runs (ERESTART_RESTARTBLOCK).
fn sleep_until(t: &mut Task, deadline: Instant, rem: u64) -> SysResult {
    if let Err(e) = crate::waiter::sleep_interruptible(Some(deadline)) {
        if rem != 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            t.mm.write_obj(rem, &Timespec::from_duration(left))?;
        }
        t.restart_block = Some(RestartBlock::Sleep { deadline, rem });
        return Err(e);
    }
    Ok(0)
}

/// restart_syscall(2): goes on with a timed call a signal interrupted (EINTR if there is
/// none).
pub fn restart_syscall(t: &mut Task, _: &[u64; 6]) -> SysResult {
    match t.restart_block.take().ok_or(Errno::EINTR)? {
        RestartBlock::Sleep { deadline, rem } => sleep_until(t, deadline, rem),
        RestartBlock::FutexWait {
            addr,
            val,
            bitset,
            private,
            deadline,
        } => super::futex::wait_restarted(t, addr, val, bitset, private, deadline),
    }
}

pub fn clock_nanosleep(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let [id, flags, req, ..] = *a;
    // Linux looks only at TIMER_ABSTIME and ignores other flag bits.
    let absolute = flags & TIMER_ABSTIME != 0;
    match id {
        // Clocks with a sleep method in Linux; the others (thread CPU time, the raw and
        // coarse clocks) have none and give EOPNOTSUPP.
        CLOCK_REALTIME
        | CLOCK_MONOTONIC
        | CLOCK_BOOTTIME
        | CLOCK_REALTIME_ALARM
        | CLOCK_BOOTTIME_ALARM
        | CLOCK_TAI
        | CLOCK_PROCESS_CPUTIME_ID => {}
        CLOCK_MONOTONIC_RAW
        | CLOCK_REALTIME_COARSE
        | CLOCK_MONOTONIC_COARSE
        | CLOCK_THREAD_CPUTIME_ID => return Err(Errno::EOPNOTSUPP),
        _ => return Err(Errno::EINVAL),
    }
    let req: Timespec = t.mm.read_obj(req)?;
    let req = req.to_duration()?;
    let clock_now = |t: &Task| now(t, id).map(|n| Duration::new(n.tv_sec as u64, n.tv_nsec as u32));
    let deadline = if absolute { req } else { clock_now(t)? + req };
    if id == CLOCK_PROCESS_CPUTIME_ID {
        // The process's CPU clock only advances while it runs: wait for it in small steps.
        while clock_now(t)? < deadline {
            let step = Instant::now() + Duration::from_millis(10);
            crate::waiter::sleep_interruptible(Some(step))?;
        }
        return Ok(0);
    }
    if absolute {
        let left = deadline.saturating_sub(clock_now(t)?);
        crate::waiter::sleep_interruptible(Instant::now().checked_add(left))?;
        return Ok(0);
    }
    sleep_for(t, req, a[3])
}
