//! System V IPC system calls: shared memory (shmget, shmat, shmdt, shmctl) and semaphores
//! (semget, semop, semtimedop, semctl) over the sandbox's IPC namespace (`crate::ipc`).

use std::sync::Arc;

use crate::abi::*;
use crate::ipc::sem::{Field, SemBuf, SemidDs, SEMOPM, SEMVMX};
use crate::ipc::shm::{ShmidDs, StatBy};
use crate::ipc::{IPC_INFO, IPC_RMID, IPC_SET, IPC_STAT};
use crate::kernel::Task;
use crate::mm::{Mapping, Placement, Source, VmaFlags, PROT_READ, PROT_RWX, PROT_WRITE};

const SHM_RDONLY: u64 = 0o10000;
const SHM_RND: u64 = 0o20000;
const SHM_REMAP: u64 = 0o40000;
const SHM_EXEC: u64 = 0o100000;
/// Where segments may be attached: any page on x86_64.
const SHMLBA: u64 = PAGE_SIZE;

const SHM_LOCK: i32 = 11;
const SHM_UNLOCK: i32 = 12;
const SHM_STAT: i32 = 13;
const SHM_INFO: i32 = 14;
const SHM_STAT_ANY: i32 = 15;

const GETPID: i32 = 11;
const GETVAL: i32 = 12;
const GETALL: i32 = 13;
const GETNCNT: i32 = 14;
const GETZCNT: i32 = 15;
const SETVAL: i32 = 16;
const SETALL: i32 = 17;
const SEM_STAT: i32 = 18;
const SEM_INFO: i32 = 19;
const SEM_STAT_ANY: i32 = 20;

/// The permission bits an access asks for (S_IRUGO, S_IWUGO, S_IXUGO).
const READ: u32 = 0o444;
const WRITE: u32 = 0o222;
const EXEC: u32 = 0o111;

pub fn shmget(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let [key, size, flags, ..] = *a;
    let memory = t.mm.memory_file().clone();
    let id = t.kernel.ipc.shm.get(
        key as i32,
        size,
        flags as u32 as u64,
        &t.creds,
        t.tg.pid,
        &memory,
    )?;
    Ok(id as u64)
}

pub fn shmat(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let id = a[0] as i32;
    let mut addr = a[1];
    let flags = a[2] as u32 as u64;
    if id < 0 {
        return Err(Errno::EINVAL);
    }
    // As do_shmat: a given address must be aligned unless SHM_RND rounds it down, and
    // SHM_REMAP needs an address.
    let fixed = addr != 0;
    if fixed {
        if !addr.is_multiple_of(SHMLBA) {
            if flags & SHM_RND == 0 {
                return Err(Errno::EINVAL);
            }
            addr -= addr % SHMLBA;
            if addr == 0 && flags & SHM_REMAP != 0 {
                return Err(Errno::EINVAL);
            }
        }
    } else if flags & SHM_REMAP != 0 {
        return Err(Errno::EINVAL);
    }
    let (mut prot, max_prot, mut access) = if flags & SHM_RDONLY != 0 {
        (PROT_READ, PROT_RWX & !PROT_WRITE, READ)
    } else {
        (PROT_READ | PROT_WRITE, PROT_RWX, READ | WRITE)
    };
    if flags & SHM_EXEC != 0 {
        prot |= libc::PROT_EXEC;
        access |= EXEC;
    }
    let shm = &t.kernel.ipc.shm;
    let (cache, size) = shm.for_attach(id, &t.creds, access)?;
    // Without SHM_REMAP the segment may not replace anything mapped there.
    let placement = match (fixed, flags & SHM_REMAP != 0) {
        (false, _) => Placement::Hint(0),
        (true, true) => Placement::Fixed(addr),
        (true, false) => {
            if addr.checked_add(size).is_none() {
                return Err(Errno::EINVAL);
            }
            Placement::FixedNoReplace(addr)
        }
    };
    let key = Arc::as_ptr(&cache) as usize;
    let mapping = Mapping {
        prot,
        max_prot,
        shared: true,
        source: Source::Cache {
            cache,
            offset: 0,
            file: None,
        },
        flags: VmaFlags::default(),
        populate: false,
    };
    let at = t.mm.map(placement, size, mapping).map_err(|e| match e {
        Errno::EEXIST => Errno::EINVAL,
        e => e,
    })?;
    shm.touched(key, t.tg.pid, true);
    Ok(at)
}

pub fn shmdt(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let shm = &t.kernel.ipc.shm;
    let sizes = shm.sizes();
    let key = t.mm.detach_shared(a[0], |key| sizes.get(&key).copied())?;
    shm.touched(key, t.tg.pid, false);
    Ok(0)
}

pub fn shmctl(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let id = a[0] as i32;
    let cmd = a[1] as i32;
    let buf = a[2];
    if cmd < 0 || id < 0 {
        return Err(Errno::EINVAL);
    }
    let shm = &t.kernel.ipc.shm;
    match cmd {
        IPC_INFO => {
            let (info, max) = shm.limits();
            t.mm.write_obj(buf, &info)?;
            Ok(max as u64)
        }
        SHM_INFO => {
            let (usage, max) = shm.usage();
            t.mm.write_obj(buf, &usage)?;
            Ok(max as u64)
        }
        IPC_STAT | SHM_STAT | SHM_STAT_ANY => {
            let by = match cmd {
                IPC_STAT => StatBy::Id,
                SHM_STAT => StatBy::Index,
                _ => StatBy::IndexAny,
            };
            let (id, ds) = shm.stat(id, by, &t.creds)?;
            t.mm.write_obj(buf, &ds)?;
            Ok(if by == StatBy::Id { 0 } else { id as u64 })
        }
        IPC_SET => {
            let ds: ShmidDs = t.mm.read_obj(buf)?;
            shm.set(id, &t.creds, &ds.perm).map(|()| 0)
        }
        IPC_RMID => shm.remove(id, &t.creds).map(|()| 0),
        SHM_LOCK | SHM_UNLOCK => {
            let memlock = t.tg.rlimits()[RLIMIT_MEMLOCK as usize].cur;
            shm.set_locked(id, &t.creds, cmd == SHM_LOCK, memlock)
                .map(|()| 0)
        }
        _ => Err(Errno::EINVAL),
    }
}

pub fn semget(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let [key, nsems, flags, ..] = *a;
    let sem = &t.kernel.ipc.sem;
    let id = sem.get(key as i32, nsems as i32, flags as u32 as u64, &t.creds)?;
    Ok(id as u64)
}

pub fn semop(t: &mut Task, a: &[u64; 6]) -> SysResult {
    do_semop(t, a[0] as i32, a[1], a[2] as u32, 0)
}

pub fn semtimedop(t: &mut Task, a: &[u64; 6]) -> SysResult {
    do_semop(t, a[0] as i32, a[1], a[2] as u32, a[3])
}

/// Linux's do_semtimedop, with the checks in its order.
fn do_semop(t: &mut Task, id: i32, sops: u64, nsops: u32, timeout: u64) -> SysResult {
    if nsops < 1 || id < 0 {
        return Err(Errno::EINVAL);
    }
    if nsops as usize > SEMOPM {
        return Err(Errno::E2BIG);
    }
    let mut ops = vec![SemBuf::default(); nsops as usize];
    t.mm.copy_in(sops, zerocopy::IntoBytes::as_mut_bytes(ops.as_mut_slice()))?;
    let deadline = if timeout == 0 {
        None
    } else {
        let ts: Timespec = t.mm.read_obj(timeout)?;
        Some(crate::waiter::later(ts.to_duration()?))
    };
    let sem = &t.kernel.ipc.sem;
    sem.op(id, &ops, deadline, &t.creds, t.tg.pid).map(|()| 0)
}

pub fn semctl(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let id = a[0] as i32;
    let num = a[1] as i32;
    let cmd = a[2] as i32;
    let arg = a[3];
    if id < 0 {
        return Err(Errno::EINVAL);
    }
    let sem = &t.kernel.ipc.sem;
    let read = |field| sem.read(id, num, field, &t.creds);
    match cmd {
        IPC_INFO | SEM_INFO => {
            let (info, max) = sem.info(cmd == SEM_INFO);
            t.mm.write_obj(arg, &info)?;
            Ok(max as u64)
        }
        IPC_STAT | SEM_STAT | SEM_STAT_ANY => {
            let (id, ds) = sem.stat(id, cmd != IPC_STAT, cmd != SEM_STAT_ANY, &t.creds)?;
            t.mm.write_obj(arg, &ds)?;
            Ok(if cmd == IPC_STAT { 0 } else { id as u64 })
        }
        GETVAL => read(Field::Val),
        GETPID => read(Field::Pid),
        GETNCNT => read(Field::Ncnt),
        GETZCNT => read(Field::Zcnt),
        GETALL => {
            let values = sem.values(id, &t.creds)?;
            t.mm.copy_out(arg, zerocopy::IntoBytes::as_bytes(values.as_slice()))?;
            Ok(0)
        }
        SETVAL => {
            // The value is the int of union semun.
            let value = arg as i32;
            if !(0..=SEMVMX).contains(&value) {
                return Err(Errno::ERANGE);
            }
            sem.set_values(id, Some(num), &[value as u16], &t.creds, t.tg.pid)
                .map(|()| 0)
        }
        SETALL => {
            let n = sem.len_for_write(id, &t.creds)?;
            let mut values = vec![0u16; n];
            t.mm.copy_in(
                arg,
                zerocopy::IntoBytes::as_mut_bytes(values.as_mut_slice()),
            )?;
            sem.set_values(id, None, &values, &t.creds, t.tg.pid)
                .map(|()| 0)
        }
        IPC_SET => {
            let ds: SemidDs = t.mm.read_obj(arg)?;
            sem.set(id, &t.creds, &ds.perm).map(|()| 0)
        }
        IPC_RMID => sem.remove(id, &t.creds).map(|()| 0),
        _ => Err(Errno::EINVAL),
    }
}
