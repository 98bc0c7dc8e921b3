//! Waiting for files to become ready: poll, ppoll, select, pselect6 and the epoll calls.
//!
//! All of them wait the same way, in [`wait_ready`]: look at what is ready; if nothing is,
//! subscribe to the wait queues of the files concerned (for epoll, the instance's own
//! queue) and sleep until one is notified, the deadline passes or a signal comes, then look
//! again. runsc-rs's own standard streams have no wait queue: the wait polls the host for
//! them.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::file::{io_file, nofile_limit};
use crate::abi::*;
use crate::fs::epoll::new_epoll_file;
use crate::fs::host::host_stream;
use crate::kernel::Task;
use crate::vfs::{OpenFile, O_PATH};
use crate::waiter::{WaitQueue, Waker};

/// While a wait on host streams also waits for Sentry files, it looks at the host this
/// often (the host cannot wake a Sentry wait queue).
const HOST_POLL_SLICE: Duration = Duration::from_millis(10);

/// The one readiness wait of poll, select and epoll_wait. `scan` looks at what is ready and
/// says Some when the call is done. Between scans the thread sleeps until a queue in
/// `queues` is notified, a host stream in `host` (with the poll events to wait for) may be
/// ready, or `deadline` passes (then Ok(None), after a last scan). EINTR if a signal comes
/// while nothing is ready (a ready answer wins, as in Linux's do_poll).
pub(super) fn wait_ready<R>(
    queues: &[&WaitQueue],
    host: &[(Arc<OwnedFd>, u16)],
    deadline: Option<Instant>,
    mut scan: impl FnMut() -> Option<R>,
) -> Result<Option<R>, Errno> {
    let expired = || deadline.is_some_and(|d| Instant::now() >= d);
    // The common cases need no subscription: something is ready, or the timeout is 0.
    if let Some(result) = scan() {
        return Ok(Some(result));
    }
    if expired() {
        return Ok(None);
    }
    let waker = Waker::current();
    let _subscriptions: Vec<_> = queues.iter().map(|q| q.subscribe(&waker)).collect();
    // The host said a stream was ready, yet the scan found nothing the call wants (a hangup
    // select did not ask about, an edge already reported): the next wait is a slice on the
    // Sentry side, so that such a stream cannot make the thread spin.
    let mut host_was_ready = false;
    loop {
        if let Some(result) = scan() {
            return Ok(Some(result));
        }
        if expired() {
            return Ok(None);
        }
        if waker.interrupted() {
            return Err(Errno::EINTR);
        }
        if host.is_empty() || host_was_ready {
            let slice = Instant::now().checked_add(HOST_POLL_SLICE);
            let until = match (host.is_empty(), deadline) {
                (true, _) => deadline,
                (false, Some(d)) => slice.map(|s| s.min(d)),
                (false, None) => slice,
            };
            host_was_ready = false;
            waker.sleep(until);
            continue;
        }
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let wait = if queues.is_empty() {
            left
        } else {
            Some(left.map_or(HOST_POLL_SLICE, |l| l.min(HOST_POLL_SLICE)))
        };
        host_was_ready = wait_host(host, wait)?;
    }
}

/// Waits up to `wait` (None: for ever) for one of the host streams `host` to be ready for
/// its events; whether one is. A host signal ends it early; the caller looks again.
fn wait_host(host: &[(Arc<OwnedFd>, u16)], wait: Option<Duration>) -> Result<bool, Errno> {
    use nix::poll::{PollFd as HostPollFd, PollFlags, PollTimeout};
    let wait = match wait {
        None => PollTimeout::NONE,
        Some(d) => PollTimeout::try_from(d).unwrap_or(PollTimeout::MAX),
    };
    let mut fds: Vec<HostPollFd> = host
        .iter()
        .map(|(fd, events)| {
            HostPollFd::new(fd.as_fd(), PollFlags::from_bits_truncate(*events as i16))
        })
        .collect();
    match nix::poll::poll(&mut fds, wait) {
        Ok(n) => Ok(n > 0),
        Err(Errno::EINTR) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The deadline `timeout` from now sets; an overflowing one is as good as none.
fn deadline_after(timeout: Option<Duration>) -> Option<Instant> {
    timeout.and_then(|d| Instant::now().checked_add(d))
}

/// What is left of the time until `deadline`.
fn time_left(deadline: Option<Instant>) -> Duration {
    deadline.map_or(Duration::ZERO, |d| {
        d.saturating_duration_since(Instant::now())
    })
}

/// The signal mask argument of ppoll, pselect6 and epoll_pwait: None without one; EINVAL
/// unless `size` is that of a sigset_t (Linux's set_user_sigmask).
fn read_sigmask(t: &Task, addr: u64, size: u64) -> Result<Option<SigSet>, Errno> {
    if addr == 0 {
        return Ok(None);
    }
    if size != 8 {
        return Err(Errno::EINVAL);
    }
    let mask: SigSet = t.mm.read_obj(addr)?;
    Ok(Some(mask & !UNBLOCKABLE))
}

/// Runs `wait` with the signal mask a ppoll, pselect6 or epoll_pwait call gave, as Linux's
/// set_user_sigmask: a signal the mask unblocks interrupts the wait. When the wait ends in
/// EINTR the task's own mask comes back only once the handler's frame is set up (the
/// frame records it, so its return restores it); otherwise at once, so that a signal the
/// mask let through stays pending (restore_saved_sigmask_unless).
fn with_wait_mask<R>(
    t: &mut Task,
    mask: Option<SigSet>,
    wait: impl FnOnce(&mut Task) -> Result<R, Errno>,
) -> Result<R, Errno> {
    let Some(mask) = mask else {
        return wait(t);
    };
    let old = t.signal_mask();
    t.set_signal_mask(mask);
    let result = wait(t);
    match result {
        Err(Errno::EINTR) => t.saved_mask = Some(old),
        _ => t.set_signal_mask(old),
    }
    result
}

/// `struct pollfd`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
struct PollFd {
    fd: i32,
    events: u16,
    revents: u16,
}

/// poll(2): a negative timeout waits for ever.
pub fn poll(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let timeout = a[2] as i32;
    let timeout = (timeout >= 0).then(|| Duration::from_millis(timeout as u64));
    do_poll(t, a[0], a[1], deadline_after(timeout))
}

/// ppoll(2): as poll with a timespec (which it writes the time left back to, as the raw
/// system call does) and a signal mask for the wait.
pub fn ppoll(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let [fds, nfds, timeout_addr, mask_addr, mask_size, ..] = *a;
    let timeout = read_timeout(t, timeout_addr)?;
    let mask = read_sigmask(t, mask_addr, mask_size)?;
    let deadline = deadline_after(timeout);
    let result = with_wait_mask(t, mask, |t| do_poll(t, fds, nfds, deadline));
    write_time_left(t, timeout_addr, timeout, deadline, |d| {
        Timespec::from_duration(d)
    });
    result
}

/// A timespec timeout argument (None for a null pointer); EINVAL if it is no valid time.
fn read_timeout(t: &Task, addr: u64) -> Result<Option<Duration>, Errno> {
    if addr == 0 {
        return Ok(None);
    }
    let ts: Timespec = t.mm.read_obj(addr)?;
    ts.to_duration().map(Some)
}

/// Linux's poll_select_finish: the time left is written back to a non-zero timeout; a fault
/// doing so is ignored (the call's result stands).
fn write_time_left<T: IntoBytes + Immutable>(
    t: &Task,
    addr: u64,
    timeout: Option<Duration>,
    deadline: Option<Instant>,
    encode: impl FnOnce(Duration) -> T,
) {
    if addr == 0 || timeout.is_none_or(|d| d.is_zero()) {
        return;
    }
    let _ = t.mm.write_obj(addr, &encode(time_left(deadline)));
}

/// What one pollfd refers to.
enum Polled {
    /// A negative fd: skipped, revents 0.
    Nothing,
    /// Not an open descriptor (or an O_PATH one): POLLNVAL.
    Invalid,
    File(Arc<OpenFile>),
}

/// The file open at `fd` for poll and select (O_PATH descriptors are not).
fn pollable_file(t: &Task, fd: i32) -> Option<Arc<OpenFile>> {
    let file = t.fds.get(u64::try_from(fd).ok()?).ok()?;
    (file.flags() & O_PATH == 0).then_some(file)
}

/// The wait queues of `files`, and the host streams among them with the events to wait
/// for.
#[allow(clippy::type_complexity)]
fn sources<'a>(
    files: impl Iterator<Item = (&'a Arc<OpenFile>, u16)>,
) -> (Vec<&'a WaitQueue>, Vec<(Arc<OwnedFd>, u16)>) {
    let (mut queues, mut host) = (Vec::new(), Vec::new());
    for (file, events) in files {
        if let Some(queue) = file.wait_queue() {
            queues.push(queue);
        } else if let Some(fd) = host_stream(file) {
            host.push((fd, events));
        }
    }
    (queues, host)
}

/// poll(2) of the `count` pollfds at `addr`, until `deadline`.
fn do_poll(t: &Task, addr: u64, count: u64, deadline: Option<Instant>) -> SysResult {
    let limit = nofile_limit(t);
    if count > limit.max(1024) {
        return Err(Errno::EINVAL);
    }
    let mut fds = vec![PollFd::default(); count as usize];
    t.mm.copy_in(addr, fds.as_mut_slice().as_mut_bytes())?;
    let polled: Vec<Polled> = fds
        .iter()
        .map(|p| match p.fd {
            fd if fd < 0 => Polled::Nothing,
            fd => pollable_file(t, fd).map_or(Polled::Invalid, Polled::File),
        })
        .collect();
    let (queues, host) = sources(fds.iter().zip(&polled).filter_map(|(p, what)| match what {
        Polled::File(f) => Some((f, p.events | POLLERR | POLLHUP)),
        _ => None,
    }));
    let result = wait_ready(&queues, &host, deadline, || {
        let mut ready = 0;
        for (pfd, what) in fds.iter_mut().zip(&polled) {
            pfd.revents = match what {
                Polled::Nothing => 0,
                Polled::Invalid => POLLNVAL,
                Polled::File(f) => f.readiness() & (pfd.events | POLLERR | POLLHUP),
            };
            ready += u64::from(pfd.revents != 0);
        }
        (ready > 0).then_some(ready)
    });
    // Linux writes the revents back whatever the outcome.
    t.mm.copy_out(addr, fds.as_bytes())?;
    Ok(result?.unwrap_or(0))
}

/// What select reports an fd readable, writable and exceptional for (POLLIN_SET,
/// POLLOUT_SET, POLLEX_SET).
const SELECT_IN: u16 = POLLRDNORM | POLLRDBAND | POLLIN | POLLHUP | POLLERR;
const SELECT_OUT: u16 = POLLWRBAND | POLLWRNORM | POLLOUT | POLLERR;
const SELECT_EX: u16 = POLLPRI;

/// select(2): a timeval timeout (which it writes the time left back to, as Linux does).
pub fn select(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let [nfds, inp, outp, exp, timeout_addr, ..] = *a;
    let timeout = if timeout_addr != 0 {
        let tv: Timeval = t.mm.read_obj(timeout_addr)?;
        Some(timeval_duration(tv)?)
    } else {
        None
    };
    let deadline = deadline_after(timeout);
    let result = do_select(t, nfds, [inp, outp, exp], deadline);
    write_time_left(t, timeout_addr, timeout, deadline, |d| Timeval {
        tv_sec: d.as_secs() as i64,
        tv_usec: i64::from(d.subsec_micros()),
    });
    result
}

/// A select timeval as Linux takes it: microseconds past a second carry into the seconds;
/// EINVAL for a negative time.
fn timeval_duration(tv: Timeval) -> Result<Duration, Errno> {
    Timespec {
        tv_sec: tv.tv_sec.saturating_add(tv.tv_usec / 1_000_000),
        tv_nsec: (tv.tv_usec % 1_000_000) * 1000,
    }
    .to_duration()
}

/// pselect6(2): a timespec timeout (written back like select's) and, through the sixth
/// argument's { sigset_t *, size } pair, a signal mask for the wait.
pub fn pselect6(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let [nfds, inp, outp, exp, timeout_addr, mask_arg] = *a;
    let timeout = read_timeout(t, timeout_addr)?;
    let mask = if mask_arg != 0 {
        let [addr, size]: [u64; 2] = t.mm.read_obj(mask_arg)?;
        read_sigmask(t, addr, size)?
    } else {
        None
    };
    let deadline = deadline_after(timeout);
    let result = with_wait_mask(t, mask, |t| do_select(t, nfds, [inp, outp, exp], deadline));
    write_time_left(t, timeout_addr, timeout, deadline, |d| {
        Timespec::from_duration(d)
    });
    result
}

/// The bits select looks at: Linux cuts nfds to the size of the descriptor table, which
/// holds 64 descriptors and grows by powers of two from 128 (expand_fdtable).
fn select_limit(t: &Task) -> usize {
    match t.fds.highest() {
        Some(fd) if fd >= 64 => 128 * ((fd as usize) / 128 + 1).next_power_of_two(),
        _ => 64,
    }
}

/// select of the fd_sets at `sets` (read, write, exceptional; 0 for none) for descriptors
/// below `nfds`, until `deadline`.
fn do_select(t: &Task, nfds: u64, sets: [u64; 3], deadline: Option<Instant>) -> SysResult {
    let n = nfds as i32;
    if n < 0 {
        return Err(Errno::EINVAL);
    }
    let n = (n as usize).min(select_limit(t));
    let words = n.div_ceil(64);
    let mut wanted = [vec![0u64; words], vec![0u64; words], vec![0u64; words]];
    for (set, &addr) in wanted.iter_mut().zip(&sets) {
        if addr != 0 {
            t.mm.copy_in(addr, set.as_mut_slice().as_mut_bytes())?;
        }
    }
    let bit = |set: &[u64], fd: usize| set.get(fd / 64).is_some_and(|w| w & (1 << (fd % 64)) != 0);
    // Every descriptor asked about must be open (Linux's max_select_fd).
    let mut files = Vec::new();
    for fd in 0..n {
        let asked = [0, 1, 2].map(|i| bit(&wanted[i], fd));
        if asked.contains(&true) {
            let file = pollable_file(t, fd as i32).ok_or(Errno::EBADF)?;
            files.push((fd, file, asked));
        }
    }
    let (queues, host) = sources(files.iter().map(|(_, file, asked)| {
        let events = [POLLIN, POLLOUT, POLLPRI];
        let wants = (0..3).filter(|&i| asked[i]).fold(0, |e, i| e | events[i]);
        (file, wants)
    }));
    let mut found = [vec![0u64; words], vec![0u64; words], vec![0u64; words]];
    let result = wait_ready(&queues, &host, deadline, || {
        found.iter_mut().for_each(|set| set.fill(0));
        let mut count = 0;
        for (fd, file, asked) in &files {
            let mask = file.readiness();
            for (i, set_mask) in [SELECT_IN, SELECT_OUT, SELECT_EX].into_iter().enumerate() {
                if asked[i] && mask & set_mask != 0 {
                    if let Some(word) = found[i].get_mut(fd / 64) {
                        *word |= 1 << (fd % 64);
                    }
                    count += 1;
                }
            }
        }
        (count > 0).then_some(count)
    })?;
    for (set, &addr) in found.iter().zip(&sets) {
        if addr != 0 {
            t.mm.copy_out(addr, set.as_bytes())?;
        }
    }
    Ok(result.unwrap_or(0))
}

/// epoll_create(2): the size only has to be positive.
pub fn epoll_create(t: &mut Task, a: &[u64; 6]) -> SysResult {
    if a[0] as i32 <= 0 {
        return Err(Errno::EINVAL);
    }
    new_epoll(t, false)
}

/// epoll_create1(2): EPOLL_CLOEXEC is the one flag.
pub fn epoll_create1(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let flags = a[0] as u32 as u64;
    if flags & !EPOLL_CLOEXEC != 0 {
        return Err(Errno::EINVAL);
    }
    new_epoll(t, flags & EPOLL_CLOEXEC != 0)
}

fn new_epoll(t: &Task, cloexec: bool) -> SysResult {
    let fd = t
        .fds
        .install(new_epoll_file(), cloexec, 0, nofile_limit(t))?;
    Ok(fd as u64)
}

/// epoll_ctl(2), with the checks of Linux's do_epoll_ctl in its order: the event (EFAULT),
/// both descriptors (EBADF), a target that cannot be polled, like a regular file or a
/// directory (EPERM), an epfd that is the target or no epoll (EINVAL); then the interest
/// list's own rules (see `Epoll::ctl`).
pub fn epoll_ctl(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let [epfd, op, fd, event_addr, ..] = *a;
    let op = op as u32 as u64;
    let event = if op != EPOLL_CTL_DEL {
        t.mm.read_obj::<EpollEvent>(event_addr)?
    } else {
        EpollEvent::default()
    };
    let epoll_file = io_file(t, epfd)?;
    let target = io_file(t, fd)?;
    if !target.pollable() {
        return Err(Errno::EPERM);
    }
    if Arc::ptr_eq(&epoll_file, &target) {
        return Err(Errno::EINVAL);
    }
    let epoll = epoll_file.epoll().ok_or(Errno::EINVAL)?;
    epoll.ctl(op, fd as i32, &target, event)?;
    Ok(0)
}

/// The most events one epoll_wait may ask for (EP_MAX_EVENTS).
const EP_MAX_EVENTS: i32 = i32::MAX / std::mem::size_of::<EpollEvent>() as i32;

/// epoll_wait(2): a timeout in milliseconds, negative for ever.
pub fn epoll_wait(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let timeout = a[3] as i32;
    let timeout = (timeout >= 0).then(|| Duration::from_millis(timeout as u64));
    do_epoll_wait(t, a[0], a[1], a[2], deadline_after(timeout))
}

/// epoll_pwait(2): epoll_wait with a signal mask for the wait.
pub fn epoll_pwait(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let [epfd, events, max, timeout, mask_addr, mask_size] = *a;
    let mask = read_sigmask(t, mask_addr, mask_size)?;
    let timeout = timeout as i32;
    let timeout = (timeout >= 0).then(|| Duration::from_millis(timeout as u64));
    let deadline = deadline_after(timeout);
    with_wait_mask(t, mask, |t| do_epoll_wait(t, epfd, events, max, deadline))
}

/// epoll_pwait2(2): epoll_pwait with a timespec timeout (null: for ever), not written back.
pub fn epoll_pwait2(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let [epfd, events, max, timeout_addr, mask_addr, mask_size] = *a;
    let timeout = read_timeout(t, timeout_addr)?;
    let mask = read_sigmask(t, mask_addr, mask_size)?;
    let deadline = deadline_after(timeout);
    with_wait_mask(t, mask, |t| do_epoll_wait(t, epfd, events, max, deadline))
}

/// The wait of the epoll_wait calls: EINVAL for a bad count, EFAULT for a buffer that
/// cannot be in user memory, EBADF and EINVAL for an epfd that is no epoll; then the events
/// ready, once there are some or at `deadline` (0).
fn do_epoll_wait(
    t: &Task,
    epfd: u64,
    events_addr: u64,
    max: u64,
    deadline: Option<Instant>,
) -> SysResult {
    let max = max as i32;
    if max <= 0 || max > EP_MAX_EVENTS {
        return Err(Errno::EINVAL);
    }
    let bytes = max as u64 * std::mem::size_of::<EpollEvent>() as u64;
    if events_addr
        .checked_add(bytes)
        .is_none_or(|end| end > TASK_SIZE_MAX)
    {
        return Err(Errno::EFAULT);
    }
    let file = io_file(t, epfd)?;
    let epoll = file.epoll().ok_or(Errno::EINVAL)?;
    let host = epoll.host_streams();
    let events = wait_ready(&[epoll.queue()], &host, deadline, || {
        let events = epoll.harvest(max as usize);
        (!events.is_empty()).then_some(events)
    })?
    .unwrap_or_default();
    t.mm.copy_out(events_addr, events.as_bytes())?;
    Ok(events.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[test]
    fn the_wait_ends_on_a_notification_a_deadline_or_a_signal() {
        let queue = Arc::new(WaitQueue::default());
        let flag = Arc::new(AtomicBool::new(false));
        let (q, f) = (queue.clone(), flag.clone());
        let waiter = std::thread::spawn(move || {
            wait_ready(&[&q], &[], None, || f.load(Ordering::SeqCst).then_some(7))
        });
        std::thread::sleep(Duration::from_millis(20));
        flag.store(true, Ordering::SeqCst);
        queue.notify();
        assert_eq!(waiter.join().unwrap(), Ok(Some(7)));

        let start = Instant::now();
        let soon = Instant::now() + Duration::from_millis(20);
        assert_eq!(
            wait_ready(&[&queue], &[], Some(soon), || None::<()>),
            Ok(None)
        );
        assert!(start.elapsed() >= Duration::from_millis(20));

        let (tx, rx) = std::sync::mpsc::channel();
        let q = queue.clone();
        let interrupted = std::thread::spawn(move || {
            tx.send(Waker::current()).unwrap();
            wait_ready(&[&q], &[], None, || None::<()>)
        });
        rx.recv().unwrap().interrupt();
        assert_eq!(interrupted.join().unwrap(), Err(Errno::EINTR));
    }

    #[test]
    fn select_timevals_carry_microseconds_and_refuse_negatives() {
        let tv = |tv_sec, tv_usec| Timeval { tv_sec, tv_usec };
        assert_eq!(
            timeval_duration(tv(0, 1_500_000)),
            Ok(Duration::from_millis(1500))
        );
        assert_eq!(timeval_duration(tv(2, 5)), Ok(Duration::new(2, 5000)));
        assert_eq!(timeval_duration(tv(0, -1)), Err(Errno::EINVAL));
        assert_eq!(timeval_duration(tv(-1, 0)), Err(Errno::EINVAL));
    }
}
