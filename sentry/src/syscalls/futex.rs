//! futex(2): wait until woken at an address, wake waiters at an address.
//!
//! A private futex is keyed by its address space and address; a shared one (on memory
//! mapped MAP_SHARED) by the page cache and offset it lies at, so processes sharing the
//! memory meet there. A waiter sleeps on its thread's waker, so a signal ends the wait
//! (EINTR, restarted as signal(7) says for FUTEX_WAIT).
//!
//! The read-modify-write operations (WAKE_OP, the PI lock word, robust lists) are done
//! under the futex table's lock, which orders them against other futex calls but not
//! against the guest's own atomic instructions on the word.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::abi::*;
use crate::kernel::Task;
use crate::waiter::Waker;

const FUTEX_WAIT: u64 = 0;
const FUTEX_WAKE: u64 = 1;
const FUTEX_REQUEUE: u64 = 3;
const FUTEX_CMP_REQUEUE: u64 = 4;
const FUTEX_WAKE_OP: u64 = 5;
const FUTEX_LOCK_PI: u64 = 6;
const FUTEX_UNLOCK_PI: u64 = 7;
const FUTEX_TRYLOCK_PI: u64 = 8;
const FUTEX_LOCK_PI2: u64 = 13;
/// The lock word of PI and robust futexes: owner tid, waiters bit, owner-died bit.
const FUTEX_WAITERS: u32 = 0x8000_0000;
const FUTEX_OWNER_DIED: u32 = 0x4000_0000;
const FUTEX_TID_MASK: u32 = 0x3fff_ffff;
const FUTEX_WAIT_BITSET: u64 = 9;
const FUTEX_WAKE_BITSET: u64 = 10;
const FUTEX_PRIVATE_FLAG: u64 = 128;
const FUTEX_CLOCK_REALTIME: u64 = 256;
const FUTEX_BITSET_MATCH_ANY: u32 = u32::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    /// (address space, address)
    Private(usize, u64),
    /// (page cache, offset)
    Shared(usize, u64),
}

struct Waiter {
    bitset: u32,
    woken: AtomicBool,
    waker: Arc<Waker>,
}

static WAITERS: LazyLock<Mutex<HashMap<Key, Vec<Arc<Waiter>>>>> = LazyLock::new(Default::default);

fn waiters() -> MutexGuard<'static, HashMap<Key, Vec<Arc<Waiter>>>> {
    WAITERS.lock().unwrap_or_else(|e| e.into_inner())
}

fn key(t: &Task, addr: u64, private: bool) -> Result<Key, Errno> {
    if !addr.is_multiple_of(4) {
        return Err(Errno::EINVAL);
    }
    t.mm.check_access(addr, 4, false)?;
    if !private {
        if let Some((cache, offset)) = t.mm.shared_key(addr) {
            return Ok(Key::Shared(cache, offset));
        }
    }
    Ok(Key::Private(Arc::as_ptr(&t.mm) as usize, addr))
}

pub fn futex(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let [addr, op, val, timeout, addr2, val3] = *a;
    let private = op & FUTEX_PRIVATE_FLAG != 0;
    let realtime = op & FUTEX_CLOCK_REALTIME != 0;
    let cmd = op & !(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);
    if realtime && cmd != FUTEX_WAIT && cmd != FUTEX_WAIT_BITSET {
        return Err(Errno::ENOSYS);
    }
    match cmd {
        FUTEX_WAIT | FUTEX_WAIT_BITSET => {
            let bitset = if cmd == FUTEX_WAIT {
                FUTEX_BITSET_MATCH_ANY
            } else {
                val3 as u32
            };
            if bitset == 0 {
                return Err(Errno::EINVAL);
            }
            let deadline = if timeout == 0 {
                None
            } else {
                let ts: Timespec = t.mm.read_obj(timeout)?;
                let d = ts.to_duration()?;
                Some(if cmd == FUTEX_WAIT {
                    crate::waiter::later(d)
                } else {
                    // An absolute time on CLOCK_MONOTONIC, or CLOCK_REALTIME if asked.
                    let clock = if realtime {
                        CLOCK_REALTIME
                    } else {
                        CLOCK_MONOTONIC
                    };
                    let now = super::time::now(t, clock)?;
                    let now = Duration::new(now.tv_sec as u64, now.tv_nsec as u32);
                    crate::waiter::later(d.saturating_sub(now))
                })
            };
            let waited = wait(t, addr, private, val as u32, bitset, deadline);
            if let (Err(Errno::EINTR), Some(deadline)) = (waited, deadline) {
                t.restart_block = Some(crate::kernel::RestartBlock::FutexWait {
                    addr,
                    val: val as u32,
                    bitset,
                    private,
                    deadline,
                });
            }
            waited.map(|()| 0)
        }
        FUTEX_WAKE | FUTEX_WAKE_BITSET => {
            let bitset = if cmd == FUTEX_WAKE {
                FUTEX_BITSET_MATCH_ANY
            } else {
                val3 as u32
            };
            if bitset == 0 {
                return Err(Errno::EINVAL);
            }
            let key = key(t, addr, private)?;
            Ok(wake(key, val as u32 as usize, bitset) as u64)
        }
        FUTEX_REQUEUE | FUTEX_CMP_REQUEUE => {
            let key1 = key(t, addr, private)?;
            let key2 = key(t, addr2, private)?;
            let mut all = waiters();
            if cmd == FUTEX_CMP_REQUEUE {
                let current: u32 = t.mm.read_obj(addr)?;
                if current != val3 as u32 {
                    return Err(Errno::EAGAIN);
                }
            }
            let mut list = all.remove(&key1).unwrap_or_default();
            let n = (val as u32 as usize).min(list.len());
            for w in list.drain(..n) {
                w.wake_up();
            }
            let moved = list.len().min(timeout as u32 as usize);
            let rest = list.split_off(moved);
            all.entry(key2).or_default().extend(list);
            if !rest.is_empty() {
                all.insert(key1, rest);
            }
            Ok((n + moved) as u64)
        }
        FUTEX_WAKE_OP => {
            let key1 = key(t, addr, private)?;
            let key2 = key(t, addr2, private)?;
            let old = {
                let _all = waiters();
                let old: u32 = t.mm.read_obj(addr2)?;
                let new = wake_op_value(old, val3 as u32).ok_or(Errno::ENOSYS)?;
                t.mm.write_obj(addr2, &new)?;
                old
            };
            let mut woken = wake(key1, val as u32 as usize, FUTEX_BITSET_MATCH_ANY);
            if wake_op_compare(old, val3 as u32).ok_or(Errno::ENOSYS)? {
                woken += wake(key2, timeout as u32 as usize, FUTEX_BITSET_MATCH_ANY);
            }
            Ok(woken as u64)
        }
        FUTEX_LOCK_PI | FUTEX_LOCK_PI2 | FUTEX_TRYLOCK_PI => {
            let deadline = if timeout != 0 && cmd != FUTEX_TRYLOCK_PI {
                // An absolute CLOCK_REALTIME time (CLOCK_MONOTONIC for LOCK_PI2).
                let ts: Timespec = t.mm.read_obj(timeout)?;
                let d = ts.to_duration()?;
                let clock = if cmd == FUTEX_LOCK_PI2 && !realtime {
                    CLOCK_MONOTONIC
                } else {
                    CLOCK_REALTIME
                };
                let now = super::time::now(t, clock)?;
                let now = Duration::new(now.tv_sec as u64, now.tv_nsec as u32);
                Some(crate::waiter::later(d.saturating_sub(now)))
            } else {
                None
            };
            lock_pi(t, addr, private, cmd == FUTEX_TRYLOCK_PI, deadline).map(|()| 0)
        }
        FUTEX_UNLOCK_PI => unlock_pi(t, addr, private).map(|()| 0),
        _ => {
            t.kernel.report_once(
                "futex operations other than WAIT, WAKE, REQUEUE, WAKE_OP and the PI locks: ENOSYS",
            );
            Err(Errno::ENOSYS)
        }
    }
}

/// The new value FUTEX_WAKE_OP stores: `op` of the old value and the operation's argument.
fn wake_op_value(old: u32, encoded: u32) -> Option<u32> {
    let op = (encoded >> 28) & 0x7;
    let shift = encoded & (8 << 28) != 0;
    // 12-bit signed argument.
    let mut arg = (((encoded >> 12) & 0xfff) as i32) << 20 >> 20;
    if shift {
        arg = 1i32.checked_shl(arg as u32).unwrap_or(0);
    }
    let arg = arg as u32;
    Some(match op {
        0 => arg,
        1 => old.wrapping_add(arg),
        2 => old | arg,
        3 => old & !arg,
        4 => old ^ arg,
        _ => return None,
    })
}

/// Whether FUTEX_WAKE_OP also wakes the second address: the comparison of the old value.
fn wake_op_compare(old: u32, encoded: u32) -> Option<bool> {
    let cmp = (encoded >> 24) & 0xf;
    let arg = (((encoded & 0xfff) as i32) << 20) >> 20;
    let old = old as i32;
    Some(match cmp {
        0 => old == arg,
        1 => old != arg,
        2 => old < arg,
        3 => old <= arg,
        4 => old > arg,
        5 => old >= arg,
        _ => return None,
    })
}

/// FUTEX_LOCK_PI: takes the lock word for the caller's tid, waiting while another thread
/// owns it (no priority inheritance: the Sentry does not schedule). A dead owner's lock
/// is taken over with FUTEX_OWNER_DIED kept.
fn lock_pi(
    t: &Task,
    addr: u64,
    private: bool,
    try_only: bool,
    deadline: Option<Instant>,
) -> Result<(), Errno> {
    let key = key(t, addr, private)?;
    let tid = t.tid as u32;
    loop {
        let seen = {
            let _all = waiters();
            let word: u32 = t.mm.read_obj(addr)?;
            let owner = word & FUTEX_TID_MASK;
            if owner == tid {
                return Err(Errno::EDEADLK);
            }
            let owner_alive = owner != 0
                && t.kernel
                    .processes
                    .process_of(owner as i32)
                    .is_some_and(|tg| tg.tids().contains(&(owner as i32)));
            if !owner_alive {
                let new = tid | (word & (FUTEX_WAITERS | FUTEX_OWNER_DIED));
                t.mm.write_obj(addr, &new)?;
                return Ok(());
            }
            if try_only {
                return Err(Errno::EAGAIN);
            }
            let marked = word | FUTEX_WAITERS;
            t.mm.write_obj(addr, &marked)?;
            marked
        };
        match wait_key(t, key, addr, seen, FUTEX_BITSET_MATCH_ANY, deadline) {
            Ok(()) | Err(Errno::EAGAIN) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// FUTEX_UNLOCK_PI: the caller must own the word; it is cleared and one waiter woken.
fn unlock_pi(t: &Task, addr: u64, private: bool) -> Result<(), Errno> {
    let key = key(t, addr, private)?;
    {
        let _all = waiters();
        let word: u32 = t.mm.read_obj(addr)?;
        if word & FUTEX_TID_MASK != t.tid as u32 {
            return Err(Errno::EPERM);
        }
        t.mm.write_obj(addr, &0u32)?;
    }
    wake(key, 1, FUTEX_BITSET_MATCH_ANY);
    Ok(())
}

/// Wakes one waiter on `addr` (a thread's CLONE_CHILD_CLEARTID word at its exit).
pub fn wake_address(t: &Task, addr: u64) {
    if let Ok(key) = key(t, addr, false) {
        wake(key, 1, FUTEX_BITSET_MATCH_ANY);
    }
}

/// `struct robust_list_head`.
#[repr(C)]
#[derive(
    Debug,
    Clone,
    Copy,
    zerocopy::FromBytes,
    zerocopy::IntoBytes,
    zerocopy::Immutable,
    zerocopy::KnownLayout,
)]
struct RobustListHead {
    next: u64,
    futex_offset: i64,
    pending: u64,
}

/// At a thread's exit, marks the robust futexes it holds FUTEX_OWNER_DIED and wakes a
/// waiter of each (Linux's exit_robust_list). A list a guest broke is walked no further.
pub fn release_robust_list(t: &Task) {
    const ROBUST_LIST_LIMIT: usize = 2048;
    let (head_at, len) = t.robust_list;
    if head_at == 0 || len != std::mem::size_of::<RobustListHead>() as u64 {
        return;
    }
    let Ok(head) = t.mm.read_obj::<RobustListHead>(head_at) else {
        return;
    };
    let release = |entry: u64| {
        let word_at = (entry & !1).wrapping_add(head.futex_offset as u64);
        let _all = waiters();
        let Ok(word) = t.mm.read_obj::<u32>(word_at) else {
            return;
        };
        if word & FUTEX_TID_MASK != t.tid as u32 {
            return;
        }
        let new = (word & FUTEX_WAITERS) | FUTEX_OWNER_DIED;
        if t.mm.write_obj(word_at, &new).is_err() {
            return;
        }
        drop(_all);
        if let Ok(key) = key(t, word_at, false) {
            wake(key, 1, FUTEX_BITSET_MATCH_ANY);
        }
    };
    let mut entry = head.next;
    for _ in 0..ROBUST_LIST_LIMIT {
        if entry & !1 == head_at || entry == 0 {
            break;
        }
        if entry != head.pending {
            release(entry);
        }
        match t.mm.read_obj::<u64>(entry & !1) {
            Ok(next) => entry = next,
            Err(_) => break,
        }
    }
    if head.pending != 0 {
        release(head.pending);
    }
}

impl Waiter {
    fn wake_up(&self) {
        self.woken.store(true, Ordering::SeqCst);
        self.waker.wake();
    }
}

/// The FUTEX_WAIT a signal interrupted, going on to its first deadline (restart_syscall).
pub fn wait_restarted(
    t: &mut Task,
    addr: u64,
    val: u32,
    bitset: u32,
    private: bool,
    deadline: Instant,
) -> SysResult {
    let waited = wait(t, addr, private, val, bitset, Some(deadline));
    if waited == Err(Errno::EINTR) {
        t.restart_block = Some(crate::kernel::RestartBlock::FutexWait {
            addr,
            val,
            bitset,
            private,
            deadline,
        });
    }
    waited.map(|()| 0)
}

fn wait(
    t: &Task,
    addr: u64,
    private: bool,
    val: u32,
    bitset: u32,
    deadline: Option<Instant>,
) -> Result<(), Errno> {
    let key = key(t, addr, private)?;
    wait_key(t, key, addr, val, bitset, deadline)
}

/// Sleeps on `key` if the word at `addr` still holds `val` (EAGAIN otherwise), until woken,
/// `deadline` (ETIMEDOUT) or a signal (EINTR).
fn wait_key(
    t: &Task,
    key: Key,
    addr: u64,
    val: u32,
    bitset: u32,
    deadline: Option<Instant>,
) -> Result<(), Errno> {
    let waker = Waker::current();
    let waiter = Arc::new(Waiter {
        bitset,
        woken: AtomicBool::new(false),
        waker: waker.clone(),
    });
    {
        // The value is read with the table locked, so a wake after the guest changed it
        // cannot slip between the check and the sleep.
        let mut all = waiters();
        let current: u32 = t.mm.read_obj(addr)?;
        if current != val {
            return Err(Errno::EAGAIN);
        }
        all.entry(key).or_default().push(waiter.clone());
    }
    loop {
        if waiter.woken.load(Ordering::SeqCst) {
            return Ok(());
        }
        let interrupted = waker.interrupted();
        let timed_out = !interrupted && !waker.sleep(deadline);
        if interrupted || timed_out {
            remove(key, &waiter);
            // A wake may have come just now: it counts.
            if waiter.woken.load(Ordering::SeqCst) {
                return Ok(());
            }
            return Err(if interrupted {
                Errno::EINTR
            } else {
                Errno::ETIMEDOUT
            });
        }
    }
}

/// Takes `waiter` off the table: from `key`, or wherever a REQUEUE moved it.
fn remove(key: Key, waiter: &Arc<Waiter>) {
    let mut all = waiters();
    let found = all
        .get(&key)
        .is_some_and(|list| list.iter().any(|w| Arc::ptr_eq(w, waiter)));
    let key = if found {
        key
    } else {
        match all
            .iter()
            .find(|(_, list)| list.iter().any(|w| Arc::ptr_eq(w, waiter)))
        {
            Some((&k, _)) => k,
            None => return,
        }
    };
    if let Some(list) = all.get_mut(&key) {
        list.retain(|w| !Arc::ptr_eq(w, waiter));
        if list.is_empty() {
            all.remove(&key);
        }
    }
}

fn wake(key: Key, n: usize, bitset: u32) -> usize {
    let mut all = waiters();
    let Some(list) = all.get_mut(&key) else {
        return 0;
    };
    let mut woken = 0;
    list.retain(|w| {
        if woken < n && w.bitset & bitset != 0 {
            w.wake_up();
            woken += 1;
            false
        } else {
            true
        }
    });
    if list.is_empty() {
        all.remove(&key);
    }
    woken
}
