//! futex(2): wait until woken at an address, wake waiters at an address.
//!
//! A private futex is keyed by its address space and address; a shared one (on memory
//! mapped MAP_SHARED) by the page cache and offset it lies at, so processes sharing the
//! memory meet there. Guest processes have one thread each until threads land, so a
//! private wait ends only by its timeout; shared waits are woken by other processes.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::abi::*;
use crate::kernel::Task;

const FUTEX_WAIT: u64 = 0;
const FUTEX_WAKE: u64 = 1;
const FUTEX_REQUEUE: u64 = 3;
const FUTEX_CMP_REQUEUE: u64 = 4;
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
    woken: Mutex<bool>,
    wake: Condvar,
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
                    Instant::now() + d
                } else {
                    // An absolute time on CLOCK_MONOTONIC, or CLOCK_REALTIME if asked.
                    let clock = if realtime {
                        CLOCK_REALTIME
                    } else {
                        CLOCK_MONOTONIC
                    };
                    let now = super::time::now(t, clock)?;
                    let now = Duration::new(now.tv_sec as u64, now.tv_nsec as u32);
                    Instant::now() + d.saturating_sub(now)
                })
            };
            wait(t, addr, private, val as u32, bitset, deadline).map(|()| 0)
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
        _ => {
            t.kernel
                .report_once("futex operations other than WAIT, WAKE and REQUEUE: ENOSYS");
            Err(Errno::ENOSYS)
        }
    }
}

impl Waiter {
    fn wake_up(&self) {
        *self.woken.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.wake.notify_one();
    }
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
    let waiter = Arc::new(Waiter {
        bitset,
        woken: Mutex::new(false),
        wake: Condvar::new(),
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
    let mut woken = waiter.woken.lock().unwrap_or_else(|e| e.into_inner());
    while !*woken {
        match deadline {
            None => {
                woken = waiter.wake.wait(woken).unwrap_or_else(|e| e.into_inner());
            }
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left == Duration::ZERO {
                    drop(woken);
                    remove(key, &waiter);
                    // A wake may have come just now.
                    return if *waiter.woken.lock().unwrap_or_else(|e| e.into_inner()) {
                        Ok(())
                    } else {
                        Err(Errno::ETIMEDOUT)
                    };
                }
                woken = waiter
                    .wake
                    .wait_timeout(woken, left)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        }
    }
    Ok(())
}

fn remove(key: Key, waiter: &Arc<Waiter>) {
    let mut all = waiters();
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
