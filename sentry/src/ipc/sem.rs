//! System V semaphore sets (semget(2), semop(2), semctl(2)).
//!
//! One lock guards every set and every process's adjustments, and one wait queue serves
//! every blocked semop: whatever changes a semaphore (an operation, SETVAL, SETALL, a
//! removal, an exiting process's undo) notifies the queue and each waiter tries its whole
//! operation again. Semaphores change rarely enough (build tools' job slots, Python's
//! locks go through futexes instead) that waking every waiter costs nothing worth
//! avoiding.
//!
//! SEM_UNDO adjustments are kept per (process, set) and applied when the process exits, as
//! Linux's exit_sem; a forked child starts with none.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::{now, Ids, Ipc64Perm, Object, Perm, IPC_NOWAIT};
use crate::abi::Errno;
use crate::fs::kernfs::put;
use crate::kernel::Credentials;
use crate::waiter::{wait_until_deadline, WaitQueue};

/// Linux's limits: semaphores per set, in all, operations per call, sets; the largest
/// value and the largest adjustment.
pub const SEMMSL: i32 = 32000;
pub const SEMMNS: usize = 1_024_000_000;
pub const SEMOPM: usize = 500;
pub const SEMMNI: usize = 32000;
pub const SEMVMX: i32 = 32767;
pub const SEMAEM: i32 = SEMVMX;

/// sem_flg: undo the operation when the process exits.
pub const SEM_UNDO: i16 = 0x1000;

/// `struct sembuf`: one operation.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct SemBuf {
    pub num: u16,
    pub op: i16,
    pub flg: i16,
}

/// `struct semid64_ds` (x86_64).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct SemidDs {
    pub perm: Ipc64Perm,
    pub otime: i64,
    pub unused1: u64,
    pub ctime: i64,
    pub unused2: u64,
    pub nsems: u64,
    pub unused3: u64,
    pub unused4: u64,
}

/// `struct seminfo` (IPC_INFO, SEM_INFO).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct SemInfo {
    pub semmap: i32,
    pub semmni: i32,
    pub semmns: i32,
    pub semmnu: i32,
    pub semmsl: i32,
    pub semopm: i32,
    pub semume: i32,
    pub semusz: i32,
    pub semvmx: i32,
    pub semaem: i32,
}

/// One semaphore: its value, the last process to change it, and how many blocked semops
/// wait on it for an increase (ncnt) or for zero (zcnt).
#[derive(Debug, Clone, Copy, Default)]
struct Sem {
    val: i32,
    pid: i32,
    ncnt: u32,
    zcnt: u32,
}

#[derive(Debug)]
struct SemSet {
    perm: Perm,
    sems: Vec<Sem>,
    otime: i64,
    ctime: i64,
}

impl Object for SemSet {
    fn perm(&self) -> &Perm {
        &self.perm
    }
}

impl SemSet {
    fn sem(&self, num: i32) -> Result<&Sem, Errno> {
        usize::try_from(num)
            .ok()
            .and_then(|n| self.sems.get(n))
            .ok_or(Errno::EINVAL)
    }

    /// Counts (or stops counting) a waiter blocked on semaphore `num`.
    fn count_waiter(&mut self, (num, zero): (u16, bool), add: bool) {
        if let Some(sem) = self.sems.get_mut(num as usize) {
            let count = if zero { &mut sem.zcnt } else { &mut sem.ncnt };
            *count = if add {
                count.saturating_add(1)
            } else {
                count.saturating_sub(1)
            };
        }
    }
}

/// Why a semop could not be done now.
enum Blocked {
    /// It must wait for semaphore `.0` to grow (`.1` false) or to reach zero (true).
    Wait(u16, bool),
    Failed(Errno),
}

/// Linux's perform_atomic_semop: all of `ops` in order, or none. `adj` holds the caller's
/// adjustments for the set when any operation has SEM_UNDO.
fn apply(
    set: &mut SemSet,
    ops: &[SemBuf],
    adj: Option<&mut Vec<i32>>,
    pid: i32,
) -> Result<(), Blocked> {
    let mut vals: Vec<i32> = set.sems.iter().map(|s| s.val).collect();
    let mut new_adj = adj.as_ref().map(|a| a.to_vec());
    for op in ops {
        let n = op.num as usize;
        let blocked = |zero| {
            if op.flg as u64 & IPC_NOWAIT != 0 {
                Blocked::Failed(Errno::EAGAIN)
            } else {
                Blocked::Wait(op.num, zero)
            }
        };
        let val = vals.get_mut(n).ok_or(Blocked::Failed(Errno::EFBIG))?;
        if op.op == 0 {
            if *val != 0 {
                return Err(blocked(true));
            }
            continue;
        }
        let result = *val + op.op as i32;
        if result < 0 {
            return Err(blocked(false));
        }
        if result > SEMVMX {
            return Err(Blocked::Failed(Errno::ERANGE));
        }
        if op.flg & SEM_UNDO != 0 {
            if let Some(a) = new_adj.as_mut().and_then(|a| a.get_mut(n)) {
                let undo = *a - op.op as i32;
                if !(-SEMAEM - 1..=SEMAEM).contains(&undo) {
                    return Err(Blocked::Failed(Errno::ERANGE));
                }
                *a = undo;
            }
        }
        *val = result;
    }
    for (sem, val) in set.sems.iter_mut().zip(vals) {
        sem.val = val;
    }
    for op in ops {
        if let Some(sem) = set.sems.get_mut(op.num as usize) {
            sem.pid = pid;
        }
    }
    if let (Some(adj), Some(new_adj)) = (adj, new_adj) {
        *adj = new_adj;
    }
    set.otime = now();
    Ok(())
}

#[derive(Debug)]
struct State {
    ids: Ids<SemSet>,
    /// SEM_UNDO adjustments by (process, set id), one per semaphore of the set.
    undo: HashMap<(i32, i32), Vec<i32>>,
}

impl State {
    /// Forgets every process's adjustments to semaphore `num` of set `id` (all of them
    /// for None): its value was set outright.
    fn clear_undo(&mut self, id: i32, num: Option<usize>) {
        for ((_, set), adj) in self.undo.iter_mut() {
            if *set != id {
                continue;
            }
            match num {
                Some(n) => {
                    if let Some(a) = adj.get_mut(n) {
                        *a = 0;
                    }
                }
                None => adj.fill(0),
            }
        }
    }
}

/// Which semaphore value semctl reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Val,
    Pid,
    Ncnt,
    Zcnt,
}

/// The sandbox's semaphore sets.
#[derive(Debug)]
pub struct SemSets {
    state: Mutex<State>,
    /// Notified whenever a semaphore changes or a set goes.
    changed: WaitQueue,
}

impl Default for SemSets {
    fn default() -> Self {
        SemSets {
            state: Mutex::new(State {
                ids: Ids::new(SEMMNI),
                undo: HashMap::new(),
            }),
            changed: WaitQueue::default(),
        }
    }
}

impl SemSets {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// semget: the id of the set with `key`, made with `nsems` semaphores at zero when
    /// there is none and `flags` ask for one.
    pub fn get(&self, key: i32, nsems: i32, flags: u64, creds: &Credentials) -> Result<i32, Errno> {
        if !(0..=SEMMSL).contains(&nsems) {
            return Err(Errno::EINVAL);
        }
        let nsems = nsems as usize;
        let mut state = self.lock();
        // An existing set must have at least as many semaphores (sem_more_checks).
        let enough = |set: &SemSet| {
            if nsems > set.sems.len() {
                Err(Errno::EINVAL)
            } else {
                Ok(())
            }
        };
        if let Some(id) = state.ids.lookup(key, flags, creds, enough)? {
            return Ok(id);
        }
        if nsems == 0 {
            return Err(Errno::EINVAL);
        }
        let total: usize = state.ids.iter().map(|(_, s)| s.sems.len()).sum();
        if total + nsems > SEMMNS {
            return Err(Errno::ENOSPC);
        }
        let perm = Perm::new(key, flags, creds);
        state.ids.insert(|_| {
            Ok(SemSet {
                perm,
                sems: vec![Sem::default(); nsems],
                otime: 0,
                ctime: now(),
            })
        })
    }

    /// semop, semtimedop: does `ops` on set `id` atomically, waiting (until `deadline`)
    /// while an operation without IPC_NOWAIT cannot be done yet. EFBIG for a semaphore
    /// the set lacks, EACCES without read (or, to change values, write) permission,
    /// EAGAIN for an IPC_NOWAIT operation that would wait or at the deadline, ERANGE past
    /// SEMVMX, EIDRM if the set goes meanwhile, EINTR for a signal.
    pub fn op(
        &self,
        id: i32,
        ops: &[SemBuf],
        deadline: Option<Instant>,
        creds: &Credentials,
        pid: i32,
    ) -> Result<(), Errno> {
        let alter = ops.iter().any(|o| o.op != 0);
        let undo = ops.iter().any(|o| o.flg & SEM_UNDO != 0);
        let max = ops.iter().map(|o| o.num as usize).max().unwrap_or(0);
        {
            let state = self.lock();
            let set = state.ids.get(id)?;
            if max >= set.sems.len() {
                return Err(Errno::EFBIG);
            }
            set.perm.check(creds, if alter { 0o222 } else { 0o444 })?;
        }
        // The semaphore this call is counted as waiting on (GETNCNT, GETZCNT), if any.
        let mut waiting: Option<(u16, bool)> = None;
        let outcome = wait_until_deadline(&self.changed, &self.state, deadline, |state| {
            let State { ids, undo: undos } = state;
            let Ok(set) = ids.get_mut(id) else {
                return Some(Err(Errno::EIDRM));
            };
            if let Some(w) = waiting.take() {
                set.count_waiter(w, false);
            }
            let adj = undo.then(|| {
                undos
                    .entry((pid, id))
                    .or_insert_with(|| vec![0; set.sems.len()])
            });
            match apply(set, ops, adj, pid) {
                Ok(()) => Some(Ok(alter)),
                Err(Blocked::Failed(e)) => Some(Err(e)),
                Err(Blocked::Wait(num, zero)) => {
                    set.count_waiter((num, zero), true);
                    waiting = Some((num, zero));
                    None
                }
            }
        });
        if let Some(w) = waiting {
            if let Ok(set) = self.lock().ids.get_mut(id) {
                set.count_waiter(w, false);
            }
        }
        match outcome {
            Ok(Some(Ok(changed))) => {
                if changed {
                    self.changed.notify();
                }
                Ok(())
            }
            Ok(Some(Err(e))) | Err(e) => Err(e),
            Ok(None) => Err(Errno::EAGAIN),
        }
    }

    /// IPC_STAT (by id), SEM_STAT (by slot index) and SEM_STAT_ANY (by index, without the
    /// read permission the others need): the set's id and state.
    pub fn stat(
        &self,
        which: i32,
        by_index: bool,
        check: bool,
        creds: &Credentials,
    ) -> Result<(i32, SemidDs), Errno> {
        let state = self.lock();
        let (id, set) = if by_index {
            state.ids.at_index(which)?
        } else {
            (which, state.ids.get(which)?)
        };
        if check {
            set.perm.check(creds, 0o444)?;
        }
        let ds = SemidDs {
            perm: set.perm.to_abi(id),
            otime: set.otime,
            ctime: set.ctime,
            nsems: set.sems.len() as u64,
            ..SemidDs::default()
        };
        Ok((id, ds))
    }

    /// IPC_SET: a new owner and permission bits.
    pub fn set(&self, id: i32, creds: &Credentials, from: &Ipc64Perm) -> Result<(), Errno> {
        let mut state = self.lock();
        let set = state.ids.get_mut(id)?;
        set.perm.check_owner(creds)?;
        set.perm.set(from);
        set.ctime = now();
        Ok(())
    }

    /// IPC_RMID: the set goes at once; its waiters fail with EIDRM.
    pub fn remove(&self, id: i32, creds: &Credentials) -> Result<(), Errno> {
        let mut state = self.lock();
        state.ids.get(id)?.perm.check_owner(creds)?;
        state.ids.remove(id);
        state.undo.retain(|(_, set), _| *set != id);
        drop(state);
        self.changed.notify();
        Ok(())
    }

    /// GETVAL, GETPID, GETNCNT, GETZCNT of semaphore `num`.
    pub fn read(&self, id: i32, num: i32, field: Field, creds: &Credentials) -> Result<u64, Errno> {
        let state = self.lock();
        let set = state.ids.get(id)?;
        set.perm.check(creds, 0o444)?;
        let sem = set.sem(num)?;
        Ok(match field {
            Field::Val => sem.val as u64,
            Field::Pid => sem.pid as u64,
            Field::Ncnt => sem.ncnt as u64,
            Field::Zcnt => sem.zcnt as u64,
        })
    }

    /// GETALL: every value.
    pub fn values(&self, id: i32, creds: &Credentials) -> Result<Vec<u16>, Errno> {
        let state = self.lock();
        let set = state.ids.get(id)?;
        set.perm.check(creds, 0o444)?;
        Ok(set.sems.iter().map(|s| s.val as u16).collect())
    }

    /// How many semaphores set `id` has, if `creds` may write it (before SETALL reads the
    /// values).
    pub fn len_for_write(&self, id: i32, creds: &Credentials) -> Result<usize, Errno> {
        let state = self.lock();
        let set = state.ids.get(id)?;
        set.perm.check(creds, 0o222)?;
        Ok(set.sems.len())
    }

    /// SETVAL (`num` Some) or SETALL: sets values outright, which forgets every process's
    /// adjustments to them, and wakes the waiters.
    pub fn set_values(
        &self,
        id: i32,
        num: Option<i32>,
        values: &[u16],
        creds: &Credentials,
        pid: i32,
    ) -> Result<(), Errno> {
        if values.iter().any(|&v| v as i32 > SEMVMX) {
            return Err(Errno::ERANGE);
        }
        let mut state = self.lock();
        let set = state.ids.get_mut(id)?;
        let first = match num {
            Some(n) => {
                set.sem(n)?;
                n as usize
            }
            None if values.len() == set.sems.len() => 0,
            // The set was replaced since its size was read.
            None => return Err(Errno::EIDRM),
        };
        set.perm.check(creds, 0o222)?;
        for (sem, &v) in set.sems.iter_mut().skip(first).zip(values) {
            sem.val = v as i32;
            sem.pid = pid;
        }
        set.ctime = now();
        state.clear_undo(id, num.map(|_| first));
        drop(state);
        self.changed.notify();
        Ok(())
    }

    /// IPC_INFO (`usage` false) and SEM_INFO: the limits, with the use for SEM_INFO, and
    /// the highest slot in use.
    pub fn info(&self, usage: bool) -> (SemInfo, i32) {
        let state = self.lock();
        let mut info = SemInfo {
            semmap: SEMMNS as i32,
            semmni: SEMMNI as i32,
            semmns: SEMMNS as i32,
            semmnu: SEMMNS as i32,
            semmsl: SEMMSL,
            semopm: SEMOPM as i32,
            semume: SEMOPM as i32,
            semusz: 20,
            semvmx: SEMVMX,
            semaem: SEMAEM,
        };
        if usage {
            info.semusz = state.ids.len() as i32;
            info.semaem = state.ids.iter().map(|(_, s)| s.sems.len() as i32).sum();
        }
        (info, state.ids.max_index())
    }

    /// Process `pid` has exited: its adjustments are applied (values clamped to
    /// `[0, SEMVMX]`) and dropped.
    pub fn exit(&self, pid: i32) {
        let mut state = self.lock();
        let mine: Vec<(i32, i32)> = state
            .undo
            .keys()
            .filter(|(p, _)| *p == pid)
            .copied()
            .collect();
        if mine.is_empty() {
            return;
        }
        for key in mine {
            let Some(adj) = state.undo.remove(&key) else {
                continue;
            };
            let Ok(set) = state.ids.get_mut(key.1) else {
                continue;
            };
            for (sem, a) in set.sems.iter_mut().zip(adj) {
                if a != 0 {
                    sem.val = (sem.val + a).clamp(0, SEMVMX);
                    sem.pid = pid;
                }
            }
        }
        drop(state);
        self.changed.notify();
    }

    /// /proc/sysvipc/sem, in Linux's layout.
    pub fn proc_text(&self) -> Vec<u8> {
        let mut out =
            b"       key      semid perms      nsems   uid   gid  cuid  cgid      otime      ctime\n"
                .to_vec();
        for (id, s) in self.lock().ids.iter() {
            let p = &s.perm;
            put!(
                out,
                "{:>10} {:>10}  {:>4o} {:>10} {:>5} {:>5} {:>5} {:>5} {:>10} {:>10}\n",
                p.key,
                id,
                p.mode,
                s.sems.len(),
                p.uid,
                p.gid,
                p.cuid,
                p.cgid,
                s.otime,
                s.ctime
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipc::IPC_CREAT;
    use std::sync::Arc;
    use std::time::Duration;

    fn op(num: u16, op: i16, flg: i16) -> SemBuf {
        SemBuf { num, op, flg }
    }

    #[test]
    fn operations_are_all_or_nothing() {
        let sets = SemSets::default();
        let me = Credentials::new(0, 0, Vec::new());
        let id = sets.get(0, 2, IPC_CREAT | 0o600, &me).unwrap();
        sets.op(id, &[op(0, 2, 0)], None, &me, 1).unwrap();
        let nowait = IPC_NOWAIT as i16;
        // The second operation would block: the first is not kept either.
        let both = [op(0, -1, nowait), op(1, -1, nowait)];
        assert_eq!(sets.op(id, &both, None, &me, 1), Err(Errno::EAGAIN));
        assert_eq!(sets.read(id, 0, Field::Val, &me), Ok(2));
        assert_eq!(
            sets.op(id, &[op(0, SEMVMX as i16, 0)], None, &me, 1),
            Err(Errno::ERANGE)
        );
        assert_eq!(sets.op(id, &[op(2, 1, 0)], None, &me, 1), Err(Errno::EFBIG));
        let soon = Instant::now() + Duration::from_millis(5);
        assert_eq!(
            sets.op(id, &[op(1, -1, 0)], Some(soon), &me, 1),
            Err(Errno::EAGAIN)
        );
        assert_eq!(
            sets.read(id, 1, Field::Ncnt, &me),
            Ok(0),
            "no longer waiting"
        );
    }

    #[test]
    fn a_waiter_is_woken_by_an_increase_and_undo_applies_at_exit() {
        let sets = Arc::new(SemSets::default());
        let me = Credentials::new(0, 0, Vec::new());
        let id = sets.get(0, 1, IPC_CREAT | 0o600, &me).unwrap();
        let (s, c) = (sets.clone(), me.clone());
        let waiter = std::thread::spawn(move || s.op(id, &[op(0, -1, 0)], None, &c, 2));
        while sets.read(id, 0, Field::Ncnt, &me) != Ok(1) {
            std::thread::sleep(Duration::from_millis(1));
        }
        sets.op(id, &[op(0, 3, SEM_UNDO)], None, &me, 1).unwrap();
        assert_eq!(waiter.join().unwrap(), Ok(()));
        assert_eq!(sets.read(id, 0, Field::Val, &me), Ok(2));
        // Process 1's +3 is undone at its exit, which would go below zero: clamped.
        sets.exit(1);
        assert_eq!(sets.read(id, 0, Field::Val, &me), Ok(0));
        assert_eq!(sets.read(id, 0, Field::Pid, &me), Ok(1));
    }
}
