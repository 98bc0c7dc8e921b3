//! eventfd and timerfd: counters and timers as files (see fs/eventfd.rs, fs/timerfd.rs).

use super::file::{io_file, nofile_limit};
use crate::abi::*;
use crate::fs::eventfd::new_eventfd;
use crate::fs::timerfd::{new_timerfd, valid_clock};
use crate::kernel::Task;
use crate::vfs::OpenFile;

/// eventfd(2): eventfd2 without flags.
pub fn eventfd(t: &mut Task, a: &[u64; 6]) -> SysResult {
    make_eventfd(t, a[0] as u32, 0)
}

/// eventfd2(2): EFD_SEMAPHORE, EFD_NONBLOCK and EFD_CLOEXEC; anything else is EINVAL.
pub fn eventfd2(t: &mut Task, a: &[u64; 6]) -> SysResult {
    make_eventfd(t, a[0] as u32, a[1] as u32 as u64)
}

fn make_eventfd(t: &Task, initial: u32, flags: u64) -> SysResult {
    if flags & !(EFD_SEMAPHORE | EFD_NONBLOCK | EFD_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    let file = new_eventfd(
        initial,
        flags & EFD_SEMAPHORE != 0,
        flags & EFD_NONBLOCK != 0,
    );
    install(t, file, flags & EFD_CLOEXEC != 0)
}

fn install(t: &Task, file: std::sync::Arc<OpenFile>, cloexec: bool) -> SysResult {
    let fd = t.fds.install(file, cloexec, 0, nofile_limit(t))?;
    Ok(fd as u64)
}

/// timerfd_create(2): on CLOCK_REALTIME, CLOCK_MONOTONIC or CLOCK_BOOTTIME (EINVAL for other
/// clocks and flags). The alarm clocks need CAP_WAKE_ALARM.
pub fn timerfd_create(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let (clock, flags) = (a[0] as u32 as u64, a[1] as u32 as u64);
    if flags & !(TFD_NONBLOCK | TFD_CLOEXEC) != 0 || !valid_clock(clock) {
        return Err(Errno::EINVAL);
    }
    let alarm = clock == CLOCK_REALTIME_ALARM || clock == CLOCK_BOOTTIME_ALARM;
    if alarm && !t.creds.capable(CAP_WAKE_ALARM) {
        return Err(Errno::EPERM);
    }
    let file = new_timerfd(clock, flags & TFD_NONBLOCK != 0);
    install(t, file, flags & TFD_CLOEXEC != 0)
}

/// timerfd_settime(2), with Linux's order of checks: the new setting (EFAULT, then EINVAL
/// for bad flags or times), the descriptor (EBADF, EINVAL if no timerfd); the old setting
/// is written after the change.
pub fn timerfd_settime(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let [fd, flags, new_addr, old_addr, ..] = *a;
    let flags = flags as u32 as u64;
    let new: Itimerspec = t.mm.read_obj(new_addr)?;
    if flags & !(TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET) != 0 {
        return Err(Errno::EINVAL);
    }
    new.value.to_duration()?;
    new.interval.to_duration()?;
    let file = io_file(t, fd)?;
    let timer = file.timerfd().ok_or(Errno::EINVAL)?;
    let old = timer.set(flags, new)?;
    if old_addr != 0 {
        t.mm.write_obj(old_addr, &old)?;
    }
    Ok(0)
}

/// timerfd_gettime(2): the time to the next expiration and the interval.
pub fn timerfd_gettime(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let file = io_file(t, a[0])?;
    let timer = file.timerfd().ok_or(Errno::EINVAL)?;
    t.mm.write_obj(a[1], &timer.get())?;
    Ok(0)
}
