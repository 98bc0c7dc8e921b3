//! Memory system calls: mmap and friends over the task's memory manager.

use crate::abi::*;
use crate::kernel::Task;
use crate::mm::{Mapping, PageCache, Placement, Source, VmaFlags, PROT_EXEC, PROT_RWX};
use crate::vfs::FileType;

/// Every flag Linux knows for mmap (MAP_SHARED_VALIDATE rejects others).
const MAP_KNOWN: u64 = 0x1ff_f7f;
const MAP_LOCKED: u64 = 0x2000;
const MAP_NONBLOCK: u64 = 0x10000;
/// Where MAP_32BIT mappings are placed on x86_64 Linux: between 1 and 2 GiB.
const MAP_32BIT_LOW: u64 = 0x4000_0000;
const MAP_32BIT_HIGH: u64 = 0x8000_0000;

pub fn brk(t: &mut Task, a: &[u64; 6]) -> SysResult {
    Ok(t.mm.brk(a[0]))
}

pub fn mmap(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let [addr, len, prot, flags, fd, offset] = *a;
    // sys_mmap checks the offset before anything else.
    if offset % PAGE_SIZE != 0 {
        return Err(Errno::EINVAL);
    }
    let flags = flags as u32 as u64;
    let anonymous = flags & MAP_ANONYMOUS != 0;
    let file = if anonymous {
        None
    } else {
        Some(t.fds.get(fd)?)
    };
    // As Linux's do_mmap: MAP_SHARED_VALIDATE exists only for file mappings, and
    // MAP_DROPPABLE (memory the kernel may drop) only for anonymous ones; keeping a
    // droppable mapping is always allowed, so it is served as private.
    let shared = match (flags & MAP_TYPE, anonymous) {
        (MAP_SHARED, _) => true,
        (MAP_PRIVATE, _) | (MAP_DROPPABLE, true) => false,
        (MAP_SHARED_VALIDATE, false) if flags & !MAP_KNOWN != 0 => return Err(Errno::EOPNOTSUPP),
        (MAP_SHARED_VALIDATE, false) => true,
        _ => return Err(Errno::EINVAL),
    };
    if len == 0 {
        return Err(Errno::EINVAL);
    }
    let pages = page_up(len)
        .filter(|&l| l <= TASK_SIZE_MAX)
        .ok_or(Errno::ENOMEM)?;
    if offset
        .checked_add(pages)
        .is_none_or(|end| end > i64::MAX as u64)
    {
        return Err(Errno::EOVERFLOW);
    }
    let prot = (prot & PROT_RWX as u64) as i32;
    let mut mapping = Mapping {
        prot,
        max_prot: PROT_RWX,
        shared,
        source: Source::Anonymous,
        flags: VmaFlags {
            growsdown: anonymous && flags & MAP_GROWSDOWN != 0,
            locked: flags & MAP_LOCKED != 0,
            ..VmaFlags::default()
        },
        populate: flags & MAP_POPULATE != 0 && flags & MAP_NONBLOCK == 0,
    };
    let memory = t.mm.memory_file().clone();
    match file {
        None if shared => mapping.source = Source::shared_anonymous(&memory),
        None => {}
        Some(file) => {
            if file.flags() & crate::vfs::O_PATH != 0 {
                return Err(Errno::EBADF);
            }
            let attr = file.attr()?;
            match attr.file_type() {
                Some(FileType::Regular) => {}
                // /dev/zero maps as anonymous memory.
                Some(FileType::CharDevice) if attr.rdev == crate::fs::devices::ZERO => {
                    if !file.readable() {
                        return Err(Errno::EACCES);
                    }
                    if shared {
                        mapping.source = Source::shared_anonymous(&memory);
                    }
                    return map(t, addr, len, flags, mapping);
                }
                _ => return Err(Errno::ENODEV),
            }
            // A file mapping needs read access; a shared writable one write access too,
            // and never on an append-only description.
            if !file.readable() {
                return Err(Errno::EACCES);
            }
            if shared && !file.writable() {
                if prot & PROT_WRITE as i32 != 0 {
                    return Err(Errno::EACCES);
                }
                mapping.max_prot = PROT_RWX & !(PROT_WRITE as i32);
            }
            if shared && prot & PROT_WRITE as i32 != 0 && file.flags() & crate::vfs::O_APPEND != 0 {
                return Err(Errno::EACCES);
            }
            // Files of a noexec mount never map executable (do_mmap's path_noexec).
            if file.location.as_ref().is_some_and(|l| l.mount.flags.noexec) {
                if prot & PROT_EXEC != 0 {
                    return Err(Errno::EPERM);
                }
                mapping.max_prot &= !PROT_EXEC;
            }
            mapping.source = Source::Cache {
                cache: PageCache::of_file(&memory, &file.inode),
                offset,
                file: Some(file),
            };
        }
    }
    map(t, addr, len, flags, mapping)
}

fn map(t: &mut Task, addr: u64, len: u64, flags: u64, mapping: Mapping) -> SysResult {
    // MAP_FIXED_NOREPLACE wins over MAP_FIXED when both are given (do_mmap).
    let placement = if flags & MAP_FIXED_NOREPLACE != 0 {
        Placement::FixedNoReplace(addr)
    } else if flags & MAP_FIXED != 0 {
        Placement::Fixed(addr)
    } else if flags & MAP_32BIT != 0 {
        Placement::Within {
            low: MAP_32BIT_LOW,
            high: MAP_32BIT_HIGH,
        }
    } else {
        Placement::Hint(addr)
    };
    t.mm.map(placement, len, mapping)
}

pub fn munmap(t: &mut Task, a: &[u64; 6]) -> SysResult {
    t.mm.unmap(a[0], a[1]).map(|()| 0)
}

pub fn mprotect(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let prot = a[2];
    if prot & !(PROT_RWX as u64 | PROT_GROWSDOWN | PROT_GROWSUP) != 0
        || prot & (PROT_GROWSDOWN | PROT_GROWSUP) == (PROT_GROWSDOWN | PROT_GROWSUP)
    {
        return Err(Errno::EINVAL);
    }
    if prot & PROT_GROWSUP != 0 {
        // x86_64 has no stacks that grow up.
        return Err(Errno::EINVAL);
    }
    let growsdown = prot & PROT_GROWSDOWN != 0;
    t.mm.protect(a[0], a[1], (prot & PROT_RWX as u64) as i32, growsdown)
        .map(|()| 0)
}

pub fn mremap(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let [old, old_len, new_len, flags, new_addr, _] = *a;
    t.mm.remap(old, old_len, new_len, flags, new_addr)
}

pub fn madvise(t: &mut Task, a: &[u64; 6]) -> SysResult {
    t.mm.advise(a[0], a[1], a[2]).map(|()| 0)
}

pub fn mincore(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let [addr, len, vec, ..] = *a;
    let resident = t.mm.mincore(addr, len)?;
    t.mm.copy_out(vec, &resident)?;
    Ok(0)
}

pub fn mlock(t: &mut Task, a: &[u64; 6]) -> SysResult {
    t.mm.set_locked(a[0], a[1], true, false).map(|()| 0)
}

pub fn mlock2(t: &mut Task, a: &[u64; 6]) -> SysResult {
    const MLOCK_ONFAULT: u64 = 1;
    if a[2] & !MLOCK_ONFAULT != 0 {
        return Err(Errno::EINVAL);
    }
    t.mm.set_locked(a[0], a[1], true, a[2] & MLOCK_ONFAULT != 0)
        .map(|()| 0)
}

pub fn munlock(t: &mut Task, a: &[u64; 6]) -> SysResult {
    t.mm.set_locked(a[0], a[1], false, false).map(|()| 0)
}

pub fn mlockall(t: &mut Task, a: &[u64; 6]) -> SysResult {
    const MCL_CURRENT: u64 = 1;
    const MCL_FUTURE: u64 = 2;
    const MCL_ONFAULT: u64 = 4;
    let flags = a[0];
    if flags == 0 || flags & !(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) != 0 || flags == MCL_ONFAULT
    {
        return Err(Errno::EINVAL);
    }
    t.mm.lock_all(
        flags & MCL_CURRENT != 0,
        flags & MCL_FUTURE != 0,
        flags & MCL_ONFAULT != 0,
    )
    .map(|()| 0)
}

pub fn munlockall(t: &mut Task, _a: &[u64; 6]) -> SysResult {
    t.mm.unlock_all();
    Ok(0)
}

pub fn msync(t: &mut Task, a: &[u64; 6]) -> SysResult {
    const MS_ASYNC: u64 = 1;
    const MS_INVALIDATE: u64 = 2;
    const MS_SYNC: u64 = 4;
    let flags = a[2];
    if flags & !(MS_ASYNC | MS_INVALIDATE | MS_SYNC) != 0
        || flags & (MS_ASYNC | MS_SYNC) == (MS_ASYNC | MS_SYNC)
    {
        return Err(Errno::EINVAL);
    }
    t.mm.sync(a[0], a[1], flags & MS_INVALIDATE != 0)
        .map(|()| 0)
}
