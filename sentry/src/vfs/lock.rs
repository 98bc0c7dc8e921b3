//! File locks: flock(2) locks and fcntl(2) record locks, kept by the VFS per inode (one
//! [`FileLocks`] per [`InodeKey`]), so that every file system has them.
//!
//! - flock locks cover the whole file, shared or exclusive, and belong to an open file
//!   description: descriptors made by dup share them, and they go when its last
//!   descriptor is closed.
//! - Record locks cover byte ranges, for reading or writing. Classic POSIX locks belong to
//!   the process, which Linux identifies by its descriptor table (files_struct): closing
//!   any descriptor of the file releases them. They report the process's pid. OFD locks
//!   (F_OFD_*) belong to an open file description and report pid -1. The two kinds share
//!   one space and conflict with each other; flock and record locks never conflict.
//! - An owner's record locks of one type that overlap or touch merge; changing part of one
//!   splits it (fcntl(2)).
//!
//! Waiting requests (F_SETLKW, F_OFD_SETLKW, flock without LOCK_NB) sleep on the inode's
//! queue, notified by every change. A POSIX request that would wait for a process that
//! waits, directly or along a chain of processes, for the requester fails with EDEADLK.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

use super::{InodeKey, PerInode};
use crate::abi::{Errno, F_RDLCK, F_UNLCK, F_WRLCK};
use crate::waiter::{wait_until, WaitQueue};

/// The largest file offset (Linux's OFFSET_MAX): a range ending here runs to the end of
/// any file.
pub const OFFSET_MAX: u64 = i64::MAX as u64;
/// Record locks one inode may hold before requests fail with ENOLCK, so that a guest
/// cannot grow the Sentry's memory by splitting ranges.
const MAX_RECORDS: usize = 10_000;
/// How far the deadlock check follows a chain of waiting processes (as Linux's
/// MAX_DEADLK_ITERATIONS).
const MAX_DEADLOCK_DEPTH: usize = 10;

/// A read (shared) or write (exclusive) lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockType {
    Read,
    Write,
}

impl LockType {
    /// The lock type of a `struct flock`'s l_type: None for F_UNLCK, EINVAL for nonsense.
    pub fn from_l_type(l_type: i16) -> Result<Option<LockType>, Errno> {
        match l_type {
            F_RDLCK => Ok(Some(LockType::Read)),
            F_WRLCK => Ok(Some(LockType::Write)),
            F_UNLCK => Ok(None),
            _ => Err(Errno::EINVAL),
        }
    }

    pub fn l_type(self) -> i16 {
        match self {
            LockType::Read => F_RDLCK,
            LockType::Write => F_WRLCK,
        }
    }

    fn conflicts_with(self, other: LockType) -> bool {
        self == LockType::Write || other == LockType::Write
    }
}

/// An inclusive byte range; `end` is OFFSET_MAX for "to the end of the file".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub start: u64,
    pub end: u64,
}

impl Range {
    fn overlaps(&self, other: &Range) -> bool {
        self.start <= other.end && other.start <= self.end
    }

    /// The range a `struct flock` names (Linux's flock_to_posix_lock): l_start is counted
    /// from the start (SEEK_SET), the file offset `offset` (SEEK_CUR) or the file's `size`
    /// (SEEK_END); l_len 0 runs to the end of the file, and a negative l_len covers the
    /// bytes before l_start.
    pub fn from_flock(
        whence: i16,
        l_start: i64,
        l_len: i64,
        offset: u64,
        size: u64,
    ) -> Result<Range, Errno> {
        let base = match whence {
            0 => 0,
            1 => i64::try_from(offset).map_err(|_| Errno::EOVERFLOW)?,
            2 => i64::try_from(size).map_err(|_| Errno::EOVERFLOW)?,
            _ => return Err(Errno::EINVAL),
        };
        let start = base.checked_add(l_start).ok_or(Errno::EINVAL)?;
        if start < 0 {
            return Err(Errno::EINVAL);
        }
        let (start, end) = if l_len > 0 {
            if l_len - 1 > i64::MAX - start {
                return Err(Errno::EOVERFLOW);
            }
            (start, start + (l_len - 1))
        } else if l_len < 0 {
            let first = start.checked_add(l_len).ok_or(Errno::EINVAL)?;
            if first < 0 {
                return Err(Errno::EINVAL);
            }
            (first, start - 1)
        } else {
            (start, i64::MAX)
        };
        if end < start {
            return Err(Errno::EOVERFLOW);
        }
        Ok(Range {
            start: start as u64,
            end: end as u64,
        })
    }

    /// (l_start, l_len) for F_GETLK, from the start of the file.
    pub fn to_flock(&self) -> (i64, i64) {
        let len = if self.end >= OFFSET_MAX {
            0
        } else {
            (self.end - self.start + 1) as i64
        };
        (self.start as i64, len)
    }
}

/// Who holds a record lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordOwner {
    /// A process, by the id of its descriptor table (classic POSIX locks).
    Process(u64),
    /// An open file description, by its id (OFD locks).
    Description(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Record {
    owner: RecordOwner,
    /// The pid F_GETLK reports for a POSIX lock.
    pid: i32,
    kind: LockType,
    range: Range,
}

/// A lock that stands in a request's way, as F_GETLK reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conflict {
    pub kind: LockType,
    pub range: Range,
    /// The holder's pid; -1 for an OFD lock.
    pub pid: i32,
}

/// The locks of one inode, guarded by `state`; `queue` is notified after every release.
#[derive(Default)]
pub struct FileLocks {
    state: Mutex<State>,
    queue: WaitQueue,
}

#[derive(Default)]
struct State {
    /// flock locks: (open file description id, type).
    flocks: Vec<(u64, LockType)>,
    records: Vec<Record>,
}

/// The lock tables of the inodes that have any.
static LOCKS: LazyLock<PerInode<FileLocks>> = LazyLock::new(PerInode::default);

/// The locks of inode `key`, made empty if it has none. Holding the `Arc` keeps them.
pub fn locks_of(key: InodeKey) -> Arc<FileLocks> {
    LOCKS.get_or_insert_with(key, FileLocks::default)
}

/// The locks of inode `key`, if something holds them.
pub fn existing_locks(key: InodeKey) -> Option<Arc<FileLocks>> {
    LOCKS.get(key)
}

impl FileLocks {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// flock(2) for open file description `file`: takes `kind` (None: unlocks). A change of
    /// type first drops the old lock, as Linux does (the change is not atomic). EAGAIN
    /// (EWOULDBLOCK) if another description holds a conflicting lock and not `wait`.
    pub fn flock(&self, file: u64, kind: Option<LockType>, wait: bool) -> Result<(), Errno> {
        let mut first = true;
        wait_until(&self.queue, &self.state, |s| {
            if std::mem::take(&mut first) {
                if let Some(i) = s.flocks.iter().position(|&(f, _)| f == file) {
                    if Some(s.flocks[i].1) == kind {
                        return Some(Ok(()));
                    }
                    s.flocks.swap_remove(i);
                    self.queue.notify();
                }
            }
            let Some(kind) = kind else {
                return Some(Ok(()));
            };
            let busy = s
                .flocks
                .iter()
                .any(|&(f, k)| f != file && k.conflicts_with(kind));
            if !busy {
                s.flocks.push((file, kind));
                Some(Ok(()))
            } else if wait {
                None
            } else {
                Some(Err(Errno::EAGAIN))
            }
        })
        .and_then(|r| r)
    }

    /// F_GETLK: the first lock of another owner that a `kind` lock of `owner` over `range`
    /// would conflict with.
    pub fn test(&self, owner: RecordOwner, kind: LockType, range: Range) -> Option<Conflict> {
        let s = self.lock();
        find_conflict(&s.records, owner, kind, range).map(|r| Conflict {
            kind: r.kind,
            range: r.range,
            pid: match r.owner {
                RecordOwner::Process(_) => r.pid,
                RecordOwner::Description(_) => -1,
            },
        })
    }

    /// F_SETLK and F_SETLKW: makes `owner`'s locks over `range` be of `kind` (None:
    /// unlocks them). A conflicting lock of another owner gives EAGAIN, or with `wait` a
    /// wait for it to go (EDEADLK if that would never happen).
    pub fn set(
        &self,
        owner: RecordOwner,
        pid: i32,
        kind: Option<LockType>,
        range: Range,
        wait: bool,
    ) -> Result<(), Errno> {
        let result = wait_until(&self.queue, &self.state, |s| {
            let blocker = kind
                .and_then(|k| find_conflict(&s.records, owner, k, range))
                .map(|r| r.owner);
            match blocker {
                None => Some(apply(&mut s.records, owner, pid, kind, range)),
                Some(_) if !wait => Some(Err(Errno::EAGAIN)),
                Some(blocker) => would_deadlock(owner, blocker).then_some(Err(Errno::EDEADLK)),
            }
        })
        .and_then(|r| r);
        if wait {
            done_waiting(owner);
        }
        if result.is_ok() {
            // An unlock or a change of type may let a waiter in.
            self.queue.notify();
        }
        result
    }

    /// Releases every record lock of `owner` (a POSIX owner closing the file, an OFD owner
    /// going away).
    pub fn release_records(&self, owner: RecordOwner) {
        let mut s = self.lock();
        let before = s.records.len();
        s.records.retain(|r| r.owner != owner);
        let changed = s.records.len() != before;
        drop(s);
        if changed {
            self.queue.notify();
        }
    }

    /// The open file description `file` is closed: its flock and OFD locks go.
    pub fn release_description(&self, file: u64) {
        let mut s = self.lock();
        s.flocks.retain(|&(f, _)| f != file);
        s.records
            .retain(|r| r.owner != RecordOwner::Description(file));
        drop(s);
        self.queue.notify();
    }
}

/// The first lock of another owner that a `kind` lock over `range` conflicts with.
fn find_conflict(
    records: &[Record],
    owner: RecordOwner,
    kind: LockType,
    range: Range,
) -> Option<&Record> {
    records
        .iter()
        .find(|r| r.owner != owner && r.range.overlaps(&range) && r.kind.conflicts_with(kind))
}

/// Makes `owner`'s locks over `range` be of `kind` (None: none), splitting the ranges it
/// cuts and merging what touches a range of the same type. ENOLCK past MAX_RECORDS.
fn apply(
    records: &mut Vec<Record>,
    owner: RecordOwner,
    pid: i32,
    kind: Option<LockType>,
    range: Range,
) -> Result<(), Errno> {
    let mut mine: Vec<Record> = Vec::new();
    for r in records.iter().filter(|r| r.owner == owner) {
        if !r.range.overlaps(&range) {
            mine.push(*r);
            continue;
        }
        // What sticks out on either side stays as it was.
        if r.range.start < range.start {
            let end = range.start - 1;
            mine.push(Record {
                range: Range { end, ..r.range },
                ..*r
            });
        }
        if r.range.end > range.end {
            let start = range.end + 1;
            mine.push(Record {
                range: Range { start, ..r.range },
                ..*r
            });
        }
    }
    if let Some(kind) = kind {
        mine.push(Record {
            owner,
            pid,
            kind,
            range,
        });
    }
    mine.sort_by_key(|r| r.range.start);
    let mut merged: Vec<Record> = Vec::with_capacity(mine.len());
    for r in mine {
        match merged.last_mut() {
            Some(last)
                if last.kind == r.kind && last.range.end.saturating_add(1) >= r.range.start =>
            {
                last.range.end = last.range.end.max(r.range.end);
                last.pid = pid;
            }
            _ => merged.push(r),
        }
    }
    let others = records.iter().filter(|r| r.owner != owner).count();
    if others + merged.len() > MAX_RECORDS {
        return Err(Errno::ENOLCK);
    }
    records.retain(|r| r.owner != owner);
    records.extend(merged);
    Ok(())
}

/// Which process each waiting process waits for (by descriptor-table id): the graph the
/// deadlock check walks. Entries live while their process sleeps in F_SETLKW.
static WAITS_FOR: LazyLock<Mutex<HashMap<u64, u64>>> = LazyLock::new(Mutex::default);

fn waits_for() -> MutexGuard<'static, HashMap<u64, u64>> {
    WAITS_FOR.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether `owner` waiting for `blocker` closes a cycle of waiting processes; if not, records
/// the wait. OFD owners are not processes: as in Linux, their waits are not checked.
fn would_deadlock(owner: RecordOwner, blocker: RecordOwner) -> bool {
    let (RecordOwner::Process(me), RecordOwner::Process(blocker)) = (owner, blocker) else {
        return false;
    };
    let mut waits = waits_for();
    let mut next = blocker;
    for _ in 0..MAX_DEADLOCK_DEPTH {
        if next == me {
            return true;
        }
        match waits.get(&next) {
            Some(&further) => next = further,
            None => break,
        }
    }
    waits.insert(me, blocker);
    false
}

fn done_waiting(owner: RecordOwner) {
    if let RecordOwner::Process(me) = owner {
        waits_for().remove(&me);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use LockType::{Read, Write};
    use RecordOwner::{Description, Process};

    fn r(start: u64, end: u64) -> Range {
        Range { start, end }
    }

    /// An owner id no other test uses (the deadlock graph is shared by the process).
    fn owner() -> u64 {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1 << 40);
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    #[test]
    fn flock_ranges_as_linux_computes_them() {
        let f = |w, s, l| Range::from_flock(w, s, l, 100, 50);
        assert_eq!(f(0, 10, 10), Ok(r(10, 19)));
        assert_eq!(f(0, 10, 0), Ok(r(10, OFFSET_MAX)));
        assert_eq!(f(1, -10, 5), Ok(r(90, 94)));
        assert_eq!(f(2, 0, 0), Ok(r(50, OFFSET_MAX)));
        assert_eq!(f(0, 5, -5), Ok(r(0, 4)));
        assert_eq!(f(0, 5, -6), Err(Errno::EINVAL));
        assert_eq!(f(0, -1, 1), Err(Errno::EINVAL));
        assert_eq!(f(3, 0, 0), Err(Errno::EINVAL));
        assert_eq!(f(0, i64::MAX, 1), Ok(r(OFFSET_MAX, OFFSET_MAX)));
        assert_eq!(f(0, i64::MAX, 2), Err(Errno::EOVERFLOW));
        assert_eq!(f(1, i64::MAX, 0), Err(Errno::EINVAL));
        assert_eq!(f(0, 0, i64::MIN), Err(Errno::EINVAL));
        assert_eq!(r(10, 19).to_flock(), (10, 10));
        assert_eq!(r(10, OFFSET_MAX).to_flock(), (10, 0));
    }

    fn set(records: &mut Vec<Record>, owner: RecordOwner, kind: Option<LockType>, range: Range) {
        apply(records, owner, 1, kind, range).unwrap();
    }

    fn ranges(records: &[Record]) -> Vec<(LockType, u64, u64)> {
        records
            .iter()
            .map(|r| (r.kind, r.range.start, r.range.end))
            .collect()
    }

    #[test]
    fn ranges_split_and_merge() {
        let me = Process(1);
        let mut recs = Vec::new();
        set(&mut recs, me, Some(Write), r(0, 99));
        // A read lock in the middle splits the write lock in three.
        set(&mut recs, me, Some(Read), r(40, 59));
        assert_eq!(
            ranges(&recs),
            [(Write, 0, 39), (Read, 40, 59), (Write, 60, 99)]
        );
        // Unlocking across a boundary trims both sides.
        set(&mut recs, me, None, r(30, 49));
        assert_eq!(
            ranges(&recs),
            [(Write, 0, 29), (Read, 50, 59), (Write, 60, 99)]
        );
        // A write lock that touches its neighbours merges with them.
        set(&mut recs, me, Some(Write), r(30, 59));
        assert_eq!(ranges(&recs), [(Write, 0, 99)]);
        // Adjacent locks of one type merge; of different types they do not.
        set(&mut recs, me, Some(Write), r(100, 109));
        set(&mut recs, me, Some(Read), r(110, 119));
        assert_eq!(ranges(&recs), [(Write, 0, 109), (Read, 110, 119)]);
        set(&mut recs, me, None, r(0, OFFSET_MAX));
        assert!(recs.is_empty());
        // Another owner's locks are left alone.
        set(&mut recs, Description(9), Some(Read), r(0, 9));
        set(&mut recs, me, Some(Read), r(5, 14));
        set(&mut recs, me, None, r(0, 100));
        assert_eq!(ranges(&recs), [(Read, 0, 9)]);
    }

    #[test]
    fn too_many_ranges_is_enolck() {
        let mut recs: Vec<Record> = (0..MAX_RECORDS as u64)
            .map(|i| Record {
                owner: Process(1),
                pid: 1,
                kind: Read,
                range: r(2 * i, 2 * i),
            })
            .collect();
        assert_eq!(
            apply(
                &mut recs,
                Process(1),
                1,
                Some(Read),
                r(u64::MAX - 1, u64::MAX - 1)
            ),
            Err(Errno::ENOLCK)
        );
        // Merging needs no new record.
        set(&mut recs, Process(1), Some(Read), r(1, 1));
    }

    #[test]
    fn conflicts_between_owners_and_kinds() {
        let locks = FileLocks::default();
        let b_id = owner();
        let (a, b) = (Process(owner()), Description(b_id));
        locks.set(a, 42, Some(Write), r(10, 19), false).unwrap();
        // The owner never conflicts with itself; others do, on overlap only.
        assert_eq!(locks.test(a, Write, r(0, OFFSET_MAX)), None);
        assert_eq!(locks.test(b, Read, r(0, 9)), None);
        let c = locks.test(b, Read, r(0, OFFSET_MAX)).unwrap();
        assert_eq!((c.kind, c.range, c.pid), (Write, r(10, 19), 42));
        assert_eq!(
            locks.set(b, 0, Some(Read), r(15, 15), false),
            Err(Errno::EAGAIN)
        );
        // Read locks share; an OFD lock reports pid -1.
        locks.set(a, 42, Some(Read), r(10, 19), false).unwrap();
        locks.set(b, 0, Some(Read), r(15, 30), false).unwrap();
        let c = locks.test(a, Write, r(25, 25)).unwrap();
        assert_eq!((c.kind, c.range, c.pid), (Read, r(15, 30), -1));
        locks.release_records(a);
        locks.release_description(b_id);
        assert_eq!(locks.test(Process(owner()), Write, r(0, OFFSET_MAX)), None);
    }

    #[test]
    fn flock_shares_excludes_and_converts() {
        let locks = FileLocks::default();
        let (a, b) = (owner(), owner());
        locks.flock(a, Some(Read), false).unwrap();
        locks.flock(b, Some(Read), false).unwrap();
        assert_eq!(locks.flock(b, Some(Write), false), Err(Errno::EAGAIN));
        // The failed conversion dropped b's shared lock: a may now convert.
        locks.flock(a, Some(Write), false).unwrap();
        assert_eq!(locks.flock(b, Some(Read), false), Err(Errno::EAGAIN));
        locks.flock(a, None, false).unwrap();
        locks.flock(b, Some(Write), false).unwrap();
        // Record locks are another space.
        locks
            .set(Process(owner()), 1, Some(Write), r(0, OFFSET_MAX), false)
            .unwrap();
        locks.release_description(b);
        locks.flock(a, Some(Write), false).unwrap();
    }

    #[test]
    fn a_waiting_lock_is_granted_when_the_holder_unlocks() {
        let locks = Arc::new(FileLocks::default());
        let (a, b) = (Process(owner()), Process(owner()));
        locks.set(a, 1, Some(Write), r(0, 9), false).unwrap();
        let l = locks.clone();
        let waiter = std::thread::spawn(move || l.set(b, 2, Some(Write), r(5, 5), true));
        std::thread::sleep(Duration::from_millis(20));
        assert!(!waiter.is_finished());
        locks.set(a, 1, None, r(0, 9), false).unwrap();
        assert_eq!(waiter.join().unwrap(), Ok(()));
        assert_eq!(locks.test(a, Read, r(5, 5)).map(|c| c.pid), Some(2));

        // flock likewise.
        let (f, g) = (owner(), owner());
        locks.flock(f, Some(Write), false).unwrap();
        let l = locks.clone();
        let waiter = std::thread::spawn(move || l.flock(g, Some(Read), true));
        std::thread::sleep(Duration::from_millis(20));
        assert!(!waiter.is_finished());
        locks.release_description(f);
        assert_eq!(waiter.join().unwrap(), Ok(()));
    }

    #[test]
    fn a_wait_that_closes_a_cycle_is_edeadlk() {
        let locks = Arc::new(FileLocks::default());
        let (a, b) = (Process(owner()), Process(owner()));
        locks.set(a, 1, Some(Write), r(0, 0), false).unwrap();
        locks.set(b, 2, Some(Write), r(1, 1), false).unwrap();
        // b waits for a...
        let l = locks.clone();
        let waiter = std::thread::spawn(move || l.set(b, 2, Some(Write), r(0, 0), true));
        std::thread::sleep(Duration::from_millis(20));
        // ...so a waiting for b would never end.
        assert_eq!(
            locks.set(a, 1, Some(Write), r(1, 1), true),
            Err(Errno::EDEADLK)
        );
        locks.release_records(a);
        assert_eq!(waiter.join().unwrap(), Ok(()));
    }
}
