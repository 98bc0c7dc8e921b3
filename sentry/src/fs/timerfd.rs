//! timerfd_create(2): a timer whose expirations are read as a u64 count.
//!
//! As in Linux's fs/timerfd.c, the timer is armed one expiration at a time: when it fires,
//! the count goes up by one and the timer rests; a read or timerfd_gettime of a periodic
//! timer then counts the periods that passed since (hrtimer_forward_now) and re-arms it for
//! the next one. A timer that nobody reads does not keep the timer thread busy, however
//! short its interval.

use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use nix::time::{clock_gettime, ClockId};

use crate::abi::{
    Errno, Itimerspec, Timespec, CLOCK_BOOTTIME, CLOCK_BOOTTIME_ALARM, CLOCK_MONOTONIC,
    CLOCK_REALTIME, CLOCK_REALTIME_ALARM, POLLIN, TFD_TIMER_ABSTIME,
};
use crate::kernel::timers::Timer;
use crate::vfs::{FileOps, OpenFile, SeekMode, O_NONBLOCK, O_RDWR};
use crate::waiter::{wait_until, WaitQueue};

/// The longest time a timer can be set to, as Linux's ktime_t holds it (KTIME_MAX ns).
const KTIME_MAX: Duration = Duration::from_nanos(i64::MAX as u64);

/// The timer's state, guarded by `Shared::state`.
#[derive(Default)]
struct State {
    /// Expirations not read yet.
    ticks: u64,
    /// When it fires (next), while armed.
    deadline: Option<Instant>,
    interval: Option<Duration>,
    /// It fired and was not re-armed yet (periodic timers re-arm on read and gettime).
    expired: bool,
    /// Bumped by every timerfd_settime: a firing of an earlier setting is ignored.
    generation: u64,
    /// The flags of the last timerfd_settime, for fdinfo.
    settime_flags: u64,
    timer: Option<Timer>,
}

impl State {
    /// Linux's hrtimer_forward_now for a periodic timer that fired: counts the periods that
    /// passed since, and re-arms the timer for the next.
    fn forward(&mut self) {
        let (Some(deadline), Some(interval), true) = (self.deadline, self.interval, self.expired)
        else {
            return;
        };
        self.expired = false;
        let late = Instant::now()
            .saturating_duration_since(deadline)
            .as_nanos();
        let missed = late / interval.as_nanos().max(1);
        self.ticks = self
            .ticks
            .saturating_add(u64::try_from(missed).unwrap_or(u64::MAX));
        let ahead = interval.as_nanos().saturating_mul(missed + 1);
        let next = u64::try_from(ahead)
            .ok()
            .and_then(|ns| deadline.checked_add(Duration::from_nanos(ns)));
        self.deadline = next;
        match (next, &self.timer) {
            (Some(next), Some(timer)) => timer.arm(next, None),
            _ => self.deadline = None,
        }
    }

    fn remaining(&self) -> Itimerspec {
        let left = self.deadline.map_or(Duration::ZERO, |d| {
            d.saturating_duration_since(Instant::now())
        });
        Itimerspec {
            interval: Timespec::from_duration(self.interval.unwrap_or_default()),
            value: Timespec::from_duration(left),
        }
    }
}

/// What the timer thread's callback and the file share.
struct Shared {
    state: Mutex<State>,
    /// Notified when the timer fires.
    queue: WaitQueue,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A timerfd: a timer on `clock`.
pub struct TimerFd {
    clock: u64,
    shared: Arc<Shared>,
}

/// The clocks a timerfd may use (the alarm ones behave as their base clocks here).
pub fn valid_clock(clock: u64) -> bool {
    matches!(
        clock,
        CLOCK_REALTIME
            | CLOCK_MONOTONIC
            | CLOCK_BOOTTIME
            | CLOCK_REALTIME_ALARM
            | CLOCK_BOOTTIME_ALARM
    )
}

/// The time on `clock` now.
fn clock_now(clock: u64) -> Duration {
    let id = match clock {
        CLOCK_REALTIME | CLOCK_REALTIME_ALARM => ClockId::CLOCK_REALTIME,
        CLOCK_BOOTTIME | CLOCK_BOOTTIME_ALARM => ClockId::CLOCK_BOOTTIME,
        _ => ClockId::CLOCK_MONOTONIC,
    };
    clock_gettime(id).map_or(Duration::ZERO, |t| {
        Duration::new(
            t.tv_sec().max(0) as u64,
            t.tv_nsec().clamp(0, 999_999_999) as u32,
        )
    })
}

impl TimerFd {
    /// timerfd_settime(2) with a checked `new` setting: returns the old one. `flags` may hold
    /// TFD_TIMER_ABSTIME (`new.value` is a time on the clock, not from now) and
    /// TFD_TIMER_CANCEL_ON_SET (nothing sets the sandbox's clock, so it never cancels).
    pub fn set(&self, flags: u64, new: Itimerspec) -> Result<Itimerspec, Errno> {
        let value = new.value.to_duration()?.min(KTIME_MAX);
        let interval = new.interval.to_duration()?.min(KTIME_MAX);
        let mut s = self.shared.lock();
        s.forward();
        let old = s.remaining();
        s.generation += 1;
        s.ticks = 0;
        s.expired = false;
        s.settime_flags = flags;
        s.interval = (!interval.is_zero()).then_some(interval);
        // A new timer for each setting: a firing of the old one, already on its way, finds
        // the generation changed.
        s.timer = None;
        s.deadline = None;
        if !value.is_zero() {
            let now = Instant::now();
            let deadline = if flags & TFD_TIMER_ABSTIME != 0 {
                // A time already past stays in the past: a periodic timer counts the
                // periods since.
                let clock = clock_now(self.clock);
                match value.checked_sub(clock) {
                    Some(ahead) => now.checked_add(ahead),
                    None => now.checked_sub(clock - value).or(Some(now)),
                }
            } else {
                now.checked_add(value)
            };
            let Some(deadline) = deadline.or_else(|| now.checked_add(KTIME_MAX)) else {
                return Ok(old);
            };
            let generation = s.generation;
            let shared = Arc::downgrade(&self.shared);
            let timer = Timer::new(move |_| fired(&shared, generation));
            timer.arm(deadline, None);
            s.timer = Some(timer);
            s.deadline = Some(deadline);
        }
        Ok(old)
    }

    /// timerfd_gettime(2): the time to the next expiration and the interval.
    pub fn get(&self) -> Itimerspec {
        let mut s = self.shared.lock();
        s.forward();
        s.remaining()
    }
}

/// The timer of generation `generation` fired.
fn fired(shared: &Weak<Shared>, generation: u64) {
    let Some(shared) = shared.upgrade() else {
        return;
    };
    let mut s = shared.lock();
    if s.generation != generation {
        return;
    }
    s.ticks = s.ticks.saturating_add(1);
    s.expired = true;
    drop(s);
    shared.queue.notify_events(POLLIN);
}

impl FileOps for TimerFd {
    fn read(&self, _offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        self.read_stream(buf, 0)
    }

    fn write(&self, _offset: u64, _buf: &[u8]) -> Result<usize, Errno> {
        Err(Errno::EINVAL)
    }

    fn seek_mode(&self) -> SeekMode {
        SeekMode::Stream
    }

    /// The expirations since the last read, as a u64; waits for one unless `O_NONBLOCK`.
    fn read_stream(&self, buf: &mut [u8], flags: u32) -> Result<usize, Errno> {
        let out = buf.get_mut(..8).ok_or(Errno::EINVAL)?;
        let nonblock = flags & O_NONBLOCK != 0;
        let ticks = wait_until(&self.shared.queue, &self.shared.state, |s| {
            if s.ticks == 0 {
                return nonblock.then_some(Err(Errno::EAGAIN));
            }
            s.forward();
            Some(Ok(std::mem::take(&mut s.ticks)))
        })??;
        out.copy_from_slice(&ticks.to_ne_bytes());
        Ok(8)
    }

    fn write_stream(&self, _buf: &[u8], _flags: u32) -> Result<usize, Errno> {
        Err(Errno::EINVAL)
    }

    fn readiness(&self) -> u16 {
        if self.shared.lock().ticks > 0 {
            POLLIN
        } else {
            0
        }
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.shared.queue)
    }

    fn timerfd(&self) -> Option<&TimerFd> {
        Some(self)
    }

    fn fdinfo(&self) -> Vec<u8> {
        let mut s = self.shared.lock();
        s.forward();
        let t = s.remaining();
        format!(
            "clockid: {}\nticks: {}\nsettime flags: 0{:o}\nit_value: ({}, {})\nit_interval: ({}, {})\n",
            self.clock,
            s.ticks,
            s.settime_flags,
            t.value.tv_sec,
            t.value.tv_nsec,
            t.interval.tv_sec,
            t.interval.tv_nsec
        )
        .into_bytes()
    }
}

/// A new, disarmed timerfd on `clock` (checked with [`valid_clock`]).
pub fn new_timerfd(clock: u64, nonblock: bool) -> Arc<OpenFile> {
    let ops = Arc::new(TimerFd {
        clock,
        shared: Arc::new(Shared {
            state: Mutex::new(State::default()),
            queue: WaitQueue::default(),
        }),
    });
    let flags = O_RDWR | if nonblock { O_NONBLOCK } else { 0 };
    super::anon::new_file("timerfd", ops, flags)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(value_ms: u64, interval_ms: u64) -> Itimerspec {
        Itimerspec {
            value: Timespec::from_duration(Duration::from_millis(value_ms)),
            interval: Timespec::from_duration(Duration::from_millis(interval_ms)),
        }
    }

    fn ticks(file: &OpenFile) -> Result<u64, Errno> {
        let mut buf = [0u8; 8];
        file.read(&mut buf)?;
        Ok(u64::from_ne_bytes(buf))
    }

    #[test]
    fn one_shot_and_periodic_expirations_are_counted() {
        let f = new_timerfd(CLOCK_MONOTONIC, true);
        let t = f.timerfd().unwrap();
        assert_eq!(ticks(&f), Err(Errno::EAGAIN));
        t.set(0, spec(10, 0)).unwrap();
        assert_eq!(f.readiness(), 0);
        let g = f.clone();
        // A blocking read waits for the expiration.
        let blocked = std::thread::spawn(move || {
            let mut buf = [0u8; 8];
            g.read_with(&mut buf, 0).map(|_| u64::from_ne_bytes(buf))
        });
        assert_eq!(blocked.join().unwrap(), Ok(1));
        assert_eq!(t.get().value, Timespec::default(), "disarmed once fired");
        // Periodic: the periods that passed before the read are all counted.
        t.set(0, spec(5, 10)).unwrap();
        std::thread::sleep(Duration::from_millis(60));
        let n = ticks(&f).unwrap();
        assert!((4..=7).contains(&n), "{n} expirations");
        let old = t.set(0, spec(0, 0)).unwrap();
        assert_eq!(
            old.interval,
            Timespec::from_duration(Duration::from_millis(10))
        );
        assert!(old.value.to_duration().unwrap() <= Duration::from_millis(10));
        assert_eq!(t.get().value, Timespec::default());
    }

    #[test]
    fn an_absolute_time_in_the_past_fires_at_once() {
        let f = new_timerfd(CLOCK_REALTIME, true);
        let t = f.timerfd().unwrap();
        let past = Itimerspec {
            value: Timespec {
                tv_sec: 1,
                tv_nsec: 0,
            },
            interval: Timespec::default(),
        };
        t.set(TFD_TIMER_ABSTIME, past).unwrap();
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(f.readiness(), POLLIN);
        assert_eq!(ticks(&f), Ok(1));
    }
}
