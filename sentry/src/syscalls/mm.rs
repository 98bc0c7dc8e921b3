//! Memory system calls. Only anonymous mappings exist until the VFS lands.

use crate::abi::*;
use crate::kernel::Task;
use crate::mm::Placement;

/// Every flag Linux knows for mmap (MAP_SHARED_VALIDATE rejects others).
const MAP_KNOWN: u64 = 0x1ff_f7f;
const PROT_RWX: u64 = PROT_READ | PROT_WRITE | PROT_EXEC;
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
    if !anonymous {
        t.fds.get(fd)?;
    }
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
    if page_up(len).is_none_or(|l| l > TASK_SIZE_MAX) {
        return Err(Errno::ENOMEM);
    }
    if !anonymous {
        // A file mapping: the only files are the standard streams, which cannot be mapped.
        return Err(Errno::ENODEV);
    }
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
    t.mm.map_anonymous(placement, len, (prot & PROT_RWX) as i32, shared)
}

pub fn munmap(t: &mut Task, a: &[u64; 6]) -> SysResult {
    t.mm.unmap(a[0], a[1]).map(|()| 0)
}

pub fn mprotect(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let prot = a[2];
    if prot & !(PROT_RWX | PROT_GROWSDOWN | PROT_GROWSUP) != 0
        || prot & (PROT_GROWSDOWN | PROT_GROWSUP) == (PROT_GROWSDOWN | PROT_GROWSUP)
    {
        return Err(Errno::EINVAL);
    }
    t.mm.protect(a[0], a[1], (prot & PROT_RWX) as i32)
        .map(|()| 0)
}
