//! Wait queues: how a Sentry thread sleeps until something it waits for changes (data in a
//! pipe, a lock released, a partner opening a fifo), in the manner of gVisor's `waiter`.
//!
//! Each Sentry thread has one [`Waker`]: a flag and a `Condvar`. An object others wait on has
//! a [`WaitQueue`]. A waiter subscribes its thread's waker to the queue, checks the object's
//! state and sleeps; whoever changes the state notifies the queue, which wakes every
//! subscribed waker. The flag latches, so a notification that comes between the check and
//! the sleep is not lost, and one thread may wait on many queues at once (poll). Because
//! guest tasks run on separate Sentry threads, a reader blocked on one thread is woken by a
//! writer on another.
//!
//! A queue's subscribers are [`Subscriber`]s: a thread's waker is one; an epoll interest
//! (`fs::epoll`) is another, which does not sleep but records that its file may have become
//! ready and passes the news on to the epoll's own queue, as Linux's wait-queue entries with
//! a callback (ep_poll_callback) do. A notifier may say which poll events the change concerns
//! ([`WaitQueue::notify_events`], Linux's wake-up "key"): wakers ignore it and look again,
//! an epoll interest ignores changes outside the events it asked for, which is what makes
//! edge-triggered epoll report "new data" rather than "any change". A subscriber's
//! `notify` runs with the queue's list locked: it must not block, sleep, or take a lock its
//! notifier may hold.
//!
//! A signal for the task interrupts its sleep: the sender marks the task's waker
//! [`Waker::interrupt`], and a blocking call that finds it marked gives up with EINTR, which
//! the task loop turns into EINTR or a restart as Linux's signal rules say.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use crate::abi::Errno;

thread_local! {
    static CURRENT_WAKER: std::cell::RefCell<Arc<Waker>> = std::cell::RefCell::new(Arc::new(Waker::default()));
}

/// One thread's wake-up call. `woken` is set by [`Waker::wake`] and consumed by
/// [`Waker::sleep`]; `interrupted` is set while the task has a signal to take (Linux's
/// TIF_SIGPENDING) and is cleared only by the task's own signal code.
#[derive(Debug, Default)]
pub struct Waker {
    woken: Mutex<bool>,
    cond: Condvar,
    interrupted: AtomicBool,
}

impl Waker {
    /// The calling thread's waker.
    pub fn current() -> Arc<Waker> {
        CURRENT_WAKER.with(|w| w.borrow().clone())
    }

    /// Makes `waker` the calling thread's (a task thread uses its task's, which signal
    /// senders know).
    pub fn install(waker: Arc<Waker>) {
        CURRENT_WAKER.with(|w| *w.borrow_mut() = waker);
    }

    fn flag(&self) -> MutexGuard<'_, bool> {
        self.woken.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes the thread if it sleeps, or makes its next sleep return at once.
    pub fn wake(&self) {
        *self.flag() = true;
        self.cond.notify_one();
    }

    /// Marks the thread as having a signal to take and wakes it: its blocking calls end
    /// with EINTR.
    pub fn interrupt(&self) {
        self.interrupted.store(true, Ordering::SeqCst);
        self.wake();
    }

    /// Whether a signal waits for the thread (blocking calls must not sleep).
    pub fn interrupted(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst)
    }

    /// Sets or clears the mark, as the task's signal code recomputes it.
    pub fn set_interrupted(&self, interrupted: bool) {
        self.interrupted.store(interrupted, Ordering::SeqCst);
    }

    /// Sleeps until woken or until `deadline`; false if the deadline came first. A sleep
    /// may also end early (a wake-up meant for an earlier wait): callers check their
    /// condition again.
    pub fn sleep(&self, deadline: Option<Instant>) -> bool {
        let mut woken = self.flag();
        loop {
            if *woken {
                *woken = false;
                return true;
            }
            woken = match deadline {
                None => self.cond.wait(woken).unwrap_or_else(|e| e.into_inner()),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return false;
                    }
                    self.cond
                        .wait_timeout(woken, deadline - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
    }
}

/// All poll events: what [`WaitQueue::notify`] says a change concerns.
pub const ALL_EVENTS: u16 = u16::MAX;

/// What a [`WaitQueue`] notifies: a thread's [`Waker`], or an object that reacts to the
/// change itself (an epoll interest).
pub trait Subscriber: Send + Sync {
    /// The queue's object changed; `events` are the poll events the change may concern
    /// ([`ALL_EVENTS`] when the notifier does not say). Runs with the queue's list locked.
    fn notify(&self, events: u16);
}

impl Subscriber for Waker {
    fn notify(&self, _events: u16) {
        self.wake();
    }
}

/// The subscribers waiting for an object to change: threads' wakers for the length of one
/// wait ([`WaitQueue::subscribe`]), epoll interests for as long as they stand
/// ([`WaitQueue::add`]). The list is guarded by its mutex.
#[derive(Default)]
pub struct WaitQueue {
    subscribers: Mutex<Vec<Arc<dyn Subscriber>>>,
}

impl std::fmt::Debug for WaitQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WaitQueue")
            .field("subscribers", &self.subscribers().len())
            .finish()
    }
}

/// Whether `a` and `b` are the same subscriber (by address: the vtables of one type may
/// differ between codegen units).
fn same(a: &Arc<dyn Subscriber>, b: &Arc<dyn Subscriber>) -> bool {
    std::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b))
}

impl WaitQueue {
    fn subscribers(&self) -> MutexGuard<'_, Vec<Arc<dyn Subscriber>>> {
        self.subscribers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notifies every subscriber: the object changed.
    pub fn notify(&self) {
        self.notify_events(ALL_EVENTS);
    }

    /// Notifies every subscriber that the object changed in a way that concerns `events`
    /// (POLLIN after new data, POLLOUT after room was made). Threads wake whatever the
    /// events; an epoll interest ignores events it does not watch.
    pub fn notify_events(&self, events: u16) {
        for subscriber in self.subscribers().iter() {
            subscriber.notify(events);
        }
    }

    /// Subscribes `subscriber` (a thread's waker) until the returned guard is dropped.
    pub fn subscribe<S: Subscriber + 'static>(&self, subscriber: &Arc<S>) -> Subscription<'_> {
        let subscriber: Arc<dyn Subscriber> = subscriber.clone();
        self.add(subscriber.clone());
        Subscription {
            queue: self,
            subscriber,
        }
    }

    /// Subscribes `subscriber` until [`WaitQueue::remove`]: for subscribers that outlive a
    /// call (epoll interests), which cannot hold a guard borrowing the queue.
    pub fn add(&self, subscriber: Arc<dyn Subscriber>) {
        self.subscribers().push(subscriber);
    }

    /// Ends one subscription of `subscriber` (nothing if it has none).
    pub fn remove(&self, subscriber: &Arc<dyn Subscriber>) {
        let mut subscribers = self.subscribers();
        if let Some(i) = subscribers.iter().position(|s| same(s, subscriber)) {
            subscribers.swap_remove(i);
        }
    }
}

/// A subscriber's place in a queue; leaving it on drop.
#[must_use]
pub struct Subscription<'a> {
    queue: &'a WaitQueue,
    subscriber: Arc<dyn Subscriber>,
}

impl Drop for Subscription<'_> {
    fn drop(&mut self) {
        self.queue.remove(&self.subscriber);
    }
}

/// Blocks the calling thread until `check`, run on the state behind `state` with its lock
/// held, returns `Some`: once at once, then after every notification of `queue`. Whoever
/// changes that state must notify `queue` afterwards. EINTR if a signal comes for the
/// thread while it waits (what `check` saw ready is always returned first).
pub fn wait_until<T, R>(
    queue: &WaitQueue,
    state: &Mutex<T>,
    check: impl FnMut(&mut T) -> Option<R>,
) -> Result<R, Errno> {
    wait_until_deadline(queue, state, None, check)?.ok_or(Errno::ETIMEDOUT)
}

/// [`wait_until`] that also gives up at `deadline`: `Ok(None)` then.
pub fn wait_until_deadline<T, R>(
    queue: &WaitQueue,
    state: &Mutex<T>,
    deadline: Option<Instant>,
    mut check: impl FnMut(&mut T) -> Option<R>,
) -> Result<Option<R>, Errno> {
    let lock = || state.lock().unwrap_or_else(|e| e.into_inner());
    // The common case needs no subscription: the answer is there at once.
    if let Some(result) = check(&mut lock()) {
        return Ok(Some(result));
    }
    let waker = Waker::current();
    let _subscription = queue.subscribe(&waker);
    loop {
        if let Some(result) = check(&mut lock()) {
            return Ok(Some(result));
        }
        if waker.interrupted() {
            return Err(Errno::EINTR);
        }
        if !waker.sleep(deadline) {
            return Ok(check(&mut lock()));
        }
    }
}

/// The instant `d` from now; a guest's absurdly long time saturates at about 136 years
/// rather than overflowing.
pub fn later(d: std::time::Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .or_else(|| now.checked_add(std::time::Duration::from_secs(u32::MAX as u64)))
        .unwrap_or(now)
}

/// Sleeps until `deadline` (forever with None) or a signal: EINTR then. For nanosleep,
/// pause and the like.
pub fn sleep_interruptible(deadline: Option<Instant>) -> Result<(), Errno> {
    let waker = Waker::current();
    loop {
        if waker.interrupted() {
            return Err(Errno::EINTR);
        }
        if !waker.sleep(deadline) {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_waiter_on_one_thread_is_woken_from_another() {
        let queue = Arc::new(WaitQueue::default());
        let state = Arc::new(Mutex::new(0u32));
        let (q, s) = (queue.clone(), state.clone());
        let waiter = std::thread::spawn(move || wait_until(&q, &s, |v| (*v >= 3).then_some(*v)));
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(5));
            *state.lock().unwrap() += 1;
            queue.notify();
        }
        assert_eq!(waiter.join().unwrap(), Ok(3));
        assert!(queue.subscribers().is_empty(), "the subscription is gone");
    }

    #[test]
    fn an_interrupt_ends_a_wait_with_eintr_but_ready_state_wins() {
        let queue = Arc::new(WaitQueue::default());
        let state = Arc::new(Mutex::new(false));
        let (q, s) = (queue.clone(), state.clone());
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn(move || {
            tx.send(Waker::current()).unwrap();
            let first = wait_until(&q, &s, |ready| ready.then_some(()));
            *s.lock().unwrap() = true;
            // Interrupted still, but the state is ready: the state wins.
            let second = wait_until(&q, &s, |ready| ready.then_some(()));
            (first, second)
        });
        let waker = rx.recv().unwrap();
        std::thread::sleep(Duration::from_millis(10));
        waker.interrupt();
        assert_eq!(waiter.join().unwrap(), (Err(Errno::EINTR), Ok(())));
    }

    #[test]
    fn a_callback_subscriber_hears_the_events_of_each_notification_until_removed() {
        struct Log(Mutex<Vec<u16>>);
        impl Subscriber for Log {
            fn notify(&self, events: u16) {
                self.0.lock().unwrap().push(events);
            }
        }
        let queue = WaitQueue::default();
        let log = Arc::new(Log(Mutex::new(Vec::new())));
        let subscriber: Arc<dyn Subscriber> = log.clone();
        queue.add(subscriber.clone());
        // A thread's subscription beside it comes and goes on its own.
        drop(queue.subscribe(&Waker::current()));
        queue.notify_events(crate::abi::POLLIN);
        queue.notify();
        queue.remove(&subscriber);
        queue.notify();
        assert_eq!(*log.0.lock().unwrap(), vec![crate::abi::POLLIN, ALL_EVENTS]);
        assert!(queue.subscribers().is_empty());
    }

    #[test]
    fn a_wake_before_the_sleep_is_not_lost_and_deadlines_end_sleeps() {
        let waker = Arc::new(Waker::default());
        waker.wake();
        assert!(waker.sleep(None));
        let soon = Instant::now() + Duration::from_millis(10);
        assert!(!waker.sleep(Some(soon)));
    }
}
