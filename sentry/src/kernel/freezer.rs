//! Pausing the whole sandbox (runc pause; the cgroup freezer's job for runc): no task runs
//! guest code until it resumes, and the guest cannot tell beyond time having passed.
//!
//! Every task passes through [`Freezer::enter`] on its way into guest code. Pausing shuts
//! that gate, kicks the tasks in guest code out of it with the platform's interrupt (which
//! marks nothing: no signal, no EINTR) and waits until none is left there. Tasks in the
//! Sentry (in a system call, asleep in a futex or a read) carry on and stop at the gate on
//! their way back, so a pause never waits for a blocked call.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crate::waiter::{WaitQueue, Waker};

/// How long a pause waits for the tasks it kicked before kicking again: a task that was
/// entering its first switch had no guest thread yet to interrupt.
const KICK_AGAIN: Duration = Duration::from_millis(10);

/// The gate into guest code. `state` is guarded by its mutex; `left` is notified when the
/// last task leaves guest code while paused, `thawed` on resume.
#[derive(Debug, Default)]
pub struct Freezer {
    state: Mutex<State>,
    left: Condvar,
    thawed: WaitQueue,
}

#[derive(Debug, Default)]
struct State {
    paused: bool,
    /// Tasks between the gate and their return from guest code.
    in_guest: usize,
}

/// A task's stay in guest code; it leaves when this drops.
#[must_use]
pub struct InGuest<'a>(&'a Freezer);

impl Freezer {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Lets the calling task (woken through `waker`) into guest code, first waiting while
    /// the sandbox is paused. None if `must_exit` says the task is to end instead (a task
    /// killed while paused ends without running again).
    pub fn enter(&self, waker: &Arc<Waker>, must_exit: impl Fn() -> bool) -> Option<InGuest<'_>> {
        if let Some(inside) = self.try_enter() {
            return Some(inside);
        }
        let _subscription = self.thawed.subscribe(waker);
        loop {
            if let Some(inside) = self.try_enter() {
                return Some(inside);
            }
            // A kill wakes the task's waker after marking it, so it is not missed here.
            if must_exit() {
                return None;
            }
            waker.sleep(None);
        }
    }

    fn try_enter(&self) -> Option<InGuest<'_>> {
        let mut s = self.lock();
        if s.paused {
            return None;
        }
        s.in_guest += 1;
        Some(InGuest(self))
    }

    /// Pauses the sandbox and returns once no task runs guest code. `kick` cuts the guest
    /// code of every task short; it is called again while some task is still inside.
    pub fn pause(&self, kick: impl Fn()) {
        let mut s = self.lock();
        s.paused = true;
        while s.paused && s.in_guest > 0 {
            drop(s);
            kick();
            s = self.lock();
            if s.in_guest == 0 {
                break;
            }
            s = self
                .left
                .wait_timeout(s, KICK_AGAIN)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Lets every task run guest code again.
    pub fn resume(&self) {
        self.lock().paused = false;
        self.thawed.notify();
    }

    pub fn is_paused(&self) -> bool {
        self.lock().paused
    }
}

impl Drop for InGuest<'_> {
    fn drop(&mut self) {
        let mut s = self.0.lock();
        s.in_guest = s.in_guest.saturating_sub(1);
        if s.paused && s.in_guest == 0 {
            self.0.left.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    /// A task that runs "guest code" (counting) until kicked, over and over.
    struct Spinner {
        kicked: AtomicBool,
        count: AtomicU64,
        killed: AtomicBool,
        waker: Mutex<Option<Arc<Waker>>>,
    }

    fn spin(freezer: &Freezer, task: &Spinner) {
        *task.waker.lock().unwrap() = Some(Waker::current());
        loop {
            let Some(_inside) =
                freezer.enter(&Waker::current(), || task.killed.load(Ordering::SeqCst))
            else {
                return;
            };
            while !task.kicked.swap(false, Ordering::SeqCst) {
                task.count.fetch_add(1, Ordering::SeqCst);
                std::hint::spin_loop();
            }
        }
    }

    #[test]
    fn a_pause_stops_guest_code_until_resume_and_a_kill_still_ends_a_task() {
        let freezer = Arc::new(Freezer::default());
        let task = Arc::new(Spinner {
            kicked: AtomicBool::new(false),
            count: AtomicU64::new(0),
            killed: AtomicBool::new(false),
            waker: Mutex::new(None),
        });
        let (f, t) = (freezer.clone(), task.clone());
        let runner = std::thread::spawn(move || spin(&f, &t));
        while task.count.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        freezer.pause(|| task.kicked.store(true, Ordering::SeqCst));
        assert!(freezer.is_paused());
        let frozen = task.count.load(Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(
            task.count.load(Ordering::SeqCst),
            frozen,
            "no guest code ran"
        );

        freezer.resume();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while task.count.load(Ordering::SeqCst) == frozen {
            assert!(std::time::Instant::now() < deadline, "it runs again");
            std::thread::yield_now();
        }

        // Killed while paused: it leaves the gate without running.
        freezer.pause(|| task.kicked.store(true, Ordering::SeqCst));
        task.killed.store(true, Ordering::SeqCst);
        if let Some(waker) = task.waker.lock().unwrap().as_ref() {
            waker.interrupt();
        }
        runner.join().unwrap();
        freezer.resume();
        assert!(!freezer.is_paused());
    }

    #[test]
    fn pausing_with_no_task_in_guest_code_returns_at_once() {
        let freezer = Freezer::default();
        freezer.pause(|| panic!("nobody to kick"));
        freezer.pause(|| panic!("nobody to kick"));
        freezer.resume();
        assert!(freezer.try_enter().is_some());
    }
}
