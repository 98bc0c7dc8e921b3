//! Timers: one Sentry thread that fires every armed timer of the sandbox at its deadline
//! (alarm, setitimer, timer_create, timerfd). A timer is a callback told how many times it
//! expired; periodic timers are re-armed by the service, and expirations missed while the
//! service was late are counted together (the overrun), as Linux's hrtimer forwarding does.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

type Callback = Arc<dyn Fn(u64) + Send + Sync>;

/// The shortest time between two firings of one periodic timer.
const MIN_PERIOD: Duration = Duration::from_micros(100);

/// What the service knows of one timer.
struct Armed {
    deadline: Instant,
    interval: Option<Duration>,
    /// Bumped on every arm and disarm, so heap entries of an earlier arming are stale.
    generation: u64,
}

#[derive(Default)]
struct State {
    next_id: u64,
    /// (deadline, timer id, generation), earliest first.
    heap: BinaryHeap<Reverse<(Instant, u64, u64)>>,
    armed: HashMap<u64, Armed>,
    callbacks: HashMap<u64, Callback>,
    running: bool,
}

/// The sandbox's timer thread and its timers.
#[derive(Default)]
pub struct TimerService {
    state: Mutex<State>,
    changed: Condvar,
}

static SERVICE: LazyLock<Arc<TimerService>> = LazyLock::new(Arc::default);

impl TimerService {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Fires due timers until the process ends; started with the first timer.
    fn run(self: Arc<Self>) {
        let mut state = self.lock();
        loop {
            let now = Instant::now();
            let mut due = Vec::new();
            while let Some(&Reverse((deadline, id, generation))) = state.heap.peek() {
                if deadline > now {
                    break;
                }
                state.heap.pop();
                let Some(armed) = state.armed.get_mut(&id) else {
                    continue;
                };
                if armed.generation != generation {
                    continue;
                }
                let mut count: u64 = 1;
                match armed.interval {
                    Some(interval) if !interval.is_zero() => {
                        let late = now.saturating_duration_since(deadline);
                        let missed = late.as_nanos() / interval.as_nanos();
                        count = count.saturating_add(missed.min(u64::MAX as u128) as u64);
                        let advance = interval.as_nanos().saturating_mul(missed + 1);
                        let advance = Duration::from_nanos(advance.min(u64::MAX as u128) as u64);
                        // A guest's tiny period must not keep this thread spinning: it
                        // fires at most every MIN_PERIOD, its expirations still counted.
                        let next = deadline
                            .checked_add(advance)
                            .unwrap_or(now)
                            .max(now + MIN_PERIOD);
                        armed.deadline = next;
                        state.heap.push(Reverse((next, id, generation)));
                    }
                    _ => {
                        state.armed.remove(&id);
                    }
                }
                if let Some(callback) = state.callbacks.get(&id) {
                    due.push((callback.clone(), count));
                }
            }
            if !due.is_empty() {
                // Callbacks take the locks of signals and files: not under the service's.
                drop(state);
                for (callback, count) in due {
                    callback(count);
                }
                state = self.lock();
                continue;
            }
            state = match state.heap.peek() {
                Some(&Reverse((deadline, ..))) => {
                    let wait = deadline.saturating_duration_since(Instant::now());
                    self.changed
                        .wait_timeout(state, wait)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
                None => self.changed.wait(state).unwrap_or_else(|e| e.into_inner()),
            };
        }
    }
}

/// One timer. Dropping it disarms it for good.
pub struct Timer {
    id: u64,
    service: Arc<TimerService>,
}

impl std::fmt::Debug for Timer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timer").field("id", &self.id).finish()
    }
}

impl Timer {
    /// A disarmed timer that calls `callback(expirations)` on the timer thread when it fires.
    pub fn new(callback: impl Fn(u64) + Send + Sync + 'static) -> Timer {
        let service = SERVICE.clone();
        let mut state = service.lock();
        state.next_id += 1;
        let id = state.next_id;
        state.callbacks.insert(id, Arc::new(callback));
        if !state.running {
            let runner = service.clone();
            let started = std::thread::Builder::new()
                .name("timers".into())
                .spawn(move || runner.run());
            match started {
                Ok(_) => state.running = true,
                Err(e) => log::error!("starting the timer thread: {e}"),
            }
        }
        drop(state);
        Timer { id, service }
    }

    /// Arms the timer to fire at `deadline`, then every `interval` if one is given (a zero
    /// interval is none); replaces an earlier arming.
    pub fn arm(&self, deadline: Instant, interval: Option<Duration>) {
        let mut state = self.service.lock();
        let generation = state.armed.get(&self.id).map_or(0, |a| a.generation) + 1;
        let interval = interval.filter(|i| !i.is_zero());
        state.armed.insert(
            self.id,
            Armed {
                deadline,
                interval,
                generation,
            },
        );
        state.heap.push(Reverse((deadline, self.id, generation)));
        drop(state);
        self.service.changed.notify_one();
    }

    /// Disarms the timer; returns what [`Timer::remaining`] said just before.
    pub fn disarm(&self) -> Option<(Duration, Option<Duration>)> {
        let old = self.remaining();
        self.service.lock().armed.remove(&self.id);
        old
    }

    /// Time until the timer fires next and its interval, or None while disarmed.
    pub fn remaining(&self) -> Option<(Duration, Option<Duration>)> {
        let state = self.service.lock();
        let armed = state.armed.get(&self.id)?;
        Some((
            armed.deadline.saturating_duration_since(Instant::now()),
            armed.interval,
        ))
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        let mut state = self.service.lock();
        state.armed.remove(&self.id);
        state.callbacks.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn one_shot_and_periodic_timers_fire_and_disarm() {
        let fired = Arc::new(AtomicU64::new(0));
        let f = fired.clone();
        let timer = Timer::new(move |n| {
            f.fetch_add(n, Ordering::SeqCst);
        });
        timer.arm(Instant::now() + Duration::from_millis(5), None);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(fired.load(Ordering::SeqCst), 1);
        assert!(timer.remaining().is_none());
        timer.arm(
            Instant::now() + Duration::from_millis(5),
            Some(Duration::from_millis(10)),
        );
        std::thread::sleep(Duration::from_millis(60));
        let (left, interval) = timer.disarm().expect("armed");
        assert!(left <= Duration::from_millis(10));
        assert_eq!(interval, Some(Duration::from_millis(10)));
        let n = fired.load(Ordering::SeqCst);
        assert!(n >= 4, "periodic expirations counted: {n}");
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(fired.load(Ordering::SeqCst), n, "disarmed");
    }
}
