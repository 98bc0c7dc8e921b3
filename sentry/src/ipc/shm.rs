//! System V shared memory segments (shmget(2), shmat(2), shmctl(2)).
//!
//! A segment's memory is shared anonymous memory of the memory manager: a page cache with
//! no file behind it, the same object a MAP_SHARED|MAP_ANONYMOUS mapping has. shmat maps it
//! into the caller's address space as such, so fork, futexes, mincore and /proc see an
//! ordinary shared mapping, and the pages live while any mapping or the registry holds the
//! cache.
//!
//! The number of attachments (shm_nattch) is, as in Linux, the number of VMAs that map a
//! segment: every VMA holds the cache, so it is the cache's reference count less the
//! registry's own. A child being forked holds its copies of the VMAs, so it counts from
//! the moment fork returns, as in Linux; a VMA that an address space is working on at the
//! moment (a fault, /proc/PID/maps) is copied for that moment and counts twice meanwhile.
//!
//! IPC_RMID takes the key back at once and lets the registry hold the cache only weakly:
//! the segment stays visible by id (SHM_DEST) until its last mapping goes, then it is gone
//! with its memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::{now, Ids, Ipc64Perm, Object, Perm, IPC_PRIVATE};
use crate::abi::{Errno, CAP_IPC_LOCK, PAGE_SIZE};
use crate::fs::kernfs::put;
use crate::kernel::Credentials;
use crate::mm::{MemoryFile, PageCache};

/// The smallest and largest segment (Linux's SHMMIN and default shmmax).
pub const SHMMIN: u64 = 1;
pub const SHMMAX: u64 = u64::MAX - (1 << 24);
/// Pages all segments together may have (default shmall).
pub const SHMALL: u64 = u64::MAX - (1 << 24);
/// How many segments there may be (default shmmni).
pub const SHMMNI: u64 = 4096;

/// Mode bits: the segment is removed and goes with its last attachment; it is locked.
pub const SHM_DEST: u32 = 0o1000;
pub const SHM_LOCKED: u32 = 0o2000;

/// `struct shmid64_ds` (x86_64).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct ShmidDs {
    pub perm: Ipc64Perm,
    pub segsz: u64,
    pub atime: i64,
    pub dtime: i64,
    pub ctime: i64,
    pub cpid: i32,
    pub lpid: i32,
    pub nattch: u64,
    pub unused4: u64,
    pub unused5: u64,
}

/// `struct shminfo64`: the limits (IPC_INFO).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct ShmInfo64 {
    pub shmmax: u64,
    pub shmmin: u64,
    pub shmmni: u64,
    pub shmseg: u64,
    pub shmall: u64,
    pub unused: [u64; 4],
}

/// `struct shm_info`: the use (SHM_INFO), in pages.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct ShmUsage {
    pub used_ids: i32,
    pub pad: u32,
    pub shm_tot: u64,
    pub shm_rss: u64,
    pub shm_swp: u64,
    pub swap_attempts: u64,
    pub swap_successes: u64,
}

/// The memory of a segment: held by the registry until IPC_RMID, then only by the
/// mappings of it.
enum Memory {
    Kept(Arc<PageCache>),
    Removed(Weak<PageCache>),
}

impl std::fmt::Debug for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Memory::Kept(_) => write!(f, "Kept"),
            Memory::Removed(weak) => write!(f, "Removed(alive: {})", weak.strong_count() > 0),
        }
    }
}

/// One segment. Times are seconds since the epoch; pids are of the creator and of the last
/// process to attach or detach it.
#[derive(Debug)]
struct Segment {
    perm: Perm,
    size: u64,
    memory: Memory,
    cpid: i32,
    lpid: i32,
    atime: i64,
    dtime: i64,
    ctime: i64,
}

impl Object for Segment {
    fn perm(&self) -> &Perm {
        &self.perm
    }
}

impl Segment {
    fn cache(&self) -> Option<Arc<PageCache>> {
        match &self.memory {
            Memory::Kept(cache) => Some(cache.clone()),
            Memory::Removed(weak) => weak.upgrade(),
        }
    }

    /// The identity of its memory, as address spaces name the caches they map.
    fn cache_key(&self) -> usize {
        match &self.memory {
            Memory::Kept(cache) => Arc::as_ptr(cache) as usize,
            Memory::Removed(weak) => weak.as_ptr() as usize,
        }
    }

    /// How many VMAs map it (each holds its cache).
    fn nattch(&self) -> u64 {
        match &self.memory {
            Memory::Kept(cache) => Arc::strong_count(cache) as u64 - 1,
            Memory::Removed(weak) => weak.strong_count() as u64,
        }
    }

    fn alive(&self) -> bool {
        match &self.memory {
            Memory::Kept(_) => true,
            Memory::Removed(weak) => weak.strong_count() > 0,
        }
    }

    fn pages(&self) -> u64 {
        self.size.div_ceil(PAGE_SIZE)
    }

    fn resident_pages(&self) -> u64 {
        self.cache().map_or(0, |c| c.cached_bytes() / PAGE_SIZE)
    }

    fn to_abi(&self, id: i32) -> ShmidDs {
        ShmidDs {
            perm: self.perm.to_abi(id),
            segsz: self.size,
            atime: self.atime,
            dtime: self.dtime,
            ctime: self.ctime,
            cpid: self.cpid,
            lpid: self.lpid,
            nattch: self.nattch(),
            ..ShmidDs::default()
        }
    }
}

/// Which segment a stat asks about and what it must be allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatBy {
    /// IPC_STAT: by id, needs read permission.
    Id,
    /// SHM_STAT: by slot index, needs read permission.
    Index,
    /// SHM_STAT_ANY: by slot index, no permission needed.
    IndexAny,
}

/// The sandbox's segments. One lock guards the table and every segment in it.
#[derive(Debug)]
pub struct Segments {
    ids: Mutex<Ids<Segment>>,
}

impl Default for Segments {
    fn default() -> Self {
        Segments {
            ids: Mutex::new(Ids::new(SHMMNI as usize)),
        }
    }
}

impl Segments {
    /// The table, without the removed segments whose last mapping has gone.
    fn lock(&self) -> MutexGuard<'_, Ids<Segment>> {
        let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        ids.retain(Segment::alive);
        ids
    }

    /// shmget: the id of the segment with `key`, made (`size` bytes of zeros, owned by
    /// `creds`, made by `pid`) when there is none and `flags` ask for one.
    pub fn get(
        &self,
        key: i32,
        size: u64,
        flags: u64,
        creds: &Credentials,
        pid: i32,
        memory: &Arc<MemoryFile>,
    ) -> Result<i32, Errno> {
        let mut ids = self.lock();
        // An existing segment must be at least as big as asked for (shm_more_checks).
        let big_enough = |seg: &Segment| {
            if size > seg.size {
                Err(Errno::EINVAL)
            } else {
                Ok(())
            }
        };
        if let Some(id) = ids.lookup(key, flags, creds, big_enough)? {
            return Ok(id);
        }
        // newseg's checks.
        if !(SHMMIN..=SHMMAX).contains(&size) {
            return Err(Errno::EINVAL);
        }
        let pages = size.div_ceil(PAGE_SIZE);
        let total: u64 = ids.iter().map(|(_, s)| s.pages()).sum();
        if total.checked_add(pages).is_none_or(|t| t > SHMALL) {
            return Err(Errno::ENOSPC);
        }
        let perm = Perm::new(key, flags, creds);
        ids.insert(|_| {
            Ok(Segment {
                perm,
                size,
                memory: Memory::Kept(PageCache::anonymous(memory)),
                cpid: pid,
                lpid: 0,
                atime: 0,
                dtime: 0,
                ctime: now(),
            })
        })
    }

    /// shmat's look-up: the memory and size of segment `id`, which `creds` must be allowed
    /// to access as `flag` says (S_IRUGO, S_IWUGO, S_IXUGO bits). A removed segment that
    /// is still attached somewhere may be attached again, as Linux allows.
    pub fn for_attach(
        &self,
        id: i32,
        creds: &Credentials,
        flag: u32,
    ) -> Result<(Arc<PageCache>, u64), Errno> {
        let ids = self.lock();
        let seg = ids.get(id)?;
        seg.perm.check(creds, flag)?;
        let cache = seg.cache().ok_or(Errno::EIDRM)?;
        Ok((cache, seg.size))
    }

    /// Records that `pid` attached (or detached) the segment whose memory is `cache`.
    pub fn touched(&self, cache: usize, pid: i32, attached: bool) {
        let mut ids = self.lock();
        let Some(id) = ids
            .iter()
            .find(|(_, s)| s.cache_key() == cache)
            .map(|(id, _)| id)
        else {
            return;
        };
        if let Ok(seg) = ids.get_mut(id) {
            seg.lpid = pid;
            if attached {
                seg.atime = now();
            } else {
                seg.dtime = now();
            }
        }
    }

    /// The size of every segment by the identity of its memory (for shmdt, which must
    /// tell segments from other shared memory).
    pub fn sizes(&self) -> HashMap<usize, u64> {
        self.lock()
            .iter()
            .map(|(_, s)| (s.cache_key(), s.size))
            .collect()
    }

    /// IPC_STAT, SHM_STAT, SHM_STAT_ANY: the segment's id and state.
    pub fn stat(
        &self,
        which: i32,
        by: StatBy,
        creds: &Credentials,
    ) -> Result<(i32, ShmidDs), Errno> {
        let ids = self.lock();
        let (id, seg) = match by {
            StatBy::Id => (which, ids.get(which)?),
            StatBy::Index | StatBy::IndexAny => ids.at_index(which)?,
        };
        if by != StatBy::IndexAny {
            seg.perm.check(creds, 0o444)?;
        }
        Ok((id, seg.to_abi(id)))
    }

    /// IPC_SET: a new owner and permission bits.
    pub fn set(&self, id: i32, creds: &Credentials, from: &Ipc64Perm) -> Result<(), Errno> {
        let mut ids = self.lock();
        let seg = ids.get_mut(id)?;
        seg.perm.check_owner(creds)?;
        seg.perm.set(from);
        seg.ctime = now();
        Ok(())
    }

    /// IPC_RMID: the key is free at once; the segment goes with its last mapping.
    pub fn remove(&self, id: i32, creds: &Credentials) -> Result<(), Errno> {
        let mut ids = self.lock();
        let seg = ids.get_mut(id)?;
        seg.perm.check_owner(creds)?;
        seg.perm.key = IPC_PRIVATE;
        seg.perm.mode |= SHM_DEST;
        let weak = match &seg.memory {
            Memory::Kept(cache) => Arc::downgrade(cache),
            Memory::Removed(weak) => weak.clone(),
        };
        seg.memory = Memory::Removed(weak);
        ids.retain(Segment::alive);
        Ok(())
    }

    /// SHM_LOCK, SHM_UNLOCK: only marks the segment (its pages are never swapped out
    /// here). Without CAP_IPC_LOCK the caller must own or have made the segment,
    /// and may lock only with a RLIMIT_MEMLOCK above zero (`memlock`).
    pub fn set_locked(
        &self,
        id: i32,
        creds: &Credentials,
        lock: bool,
        memlock: u64,
    ) -> Result<(), Errno> {
        let mut ids = self.lock();
        let seg = ids.get_mut(id)?;
        if !creds.capable(CAP_IPC_LOCK) {
            if creds.euid != seg.perm.uid && creds.euid != seg.perm.cuid {
                return Err(Errno::EPERM);
            }
            if lock && memlock == 0 {
                return Err(Errno::EPERM);
            }
        }
        if lock {
            seg.perm.mode |= SHM_LOCKED;
        } else {
            seg.perm.mode &= !SHM_LOCKED;
        }
        Ok(())
    }

    /// IPC_INFO: the limits, and the highest slot in use.
    pub fn limits(&self) -> (ShmInfo64, i32) {
        let info = ShmInfo64 {
            shmmax: SHMMAX,
            shmmin: SHMMIN,
            shmmni: SHMMNI,
            shmseg: SHMMNI,
            shmall: SHMALL,
            unused: [0; 4],
        };
        (info, self.lock().max_index())
    }

    /// SHM_INFO: how many segments there are and their pages, and the highest slot in use.
    pub fn usage(&self) -> (ShmUsage, i32) {
        let ids = self.lock();
        let usage = ShmUsage {
            used_ids: ids.len() as i32,
            shm_tot: ids.iter().map(|(_, s)| s.pages()).sum(),
            shm_rss: ids.iter().map(|(_, s)| s.resident_pages()).sum(),
            ..ShmUsage::default()
        };
        (usage, ids.max_index())
    }

    /// /proc/sysvipc/shm, in Linux's layout.
    pub fn proc_text(&self) -> Vec<u8> {
        let mut out = b"       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap\n".to_vec();
        for (id, s) in self.lock().iter() {
            let p = &s.perm;
            let nattch = s.nattch();
            put!(
                out,
                "{:>10} {:>10}  {:>4o} {:>21} {:>5} {:>5}  {:>5} {:>5} {:>5} {:>5} {:>5} {:>10} {:>10} {:>10} {:>21} {:>21}\n",
                p.key,
                id,
                p.mode,
                s.size,
                s.cpid,
                s.lpid,
                nattch,
                p.uid,
                p.gid,
                p.cuid,
                p.cgid,
                s.atime,
                s.dtime,
                s.ctime,
                s.resident_pages() * PAGE_SIZE,
                0
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipc::{IPC_CREAT, IPC_EXCL};

    fn memory() -> Arc<MemoryFile> {
        Arc::new(MemoryFile::new(64 << 20).unwrap())
    }

    #[test]
    fn a_removed_segment_lives_while_its_memory_is_held() {
        let (mem, segs) = (memory(), Segments::default());
        let owner = Credentials::new(1000, 1000, Vec::new());
        let id = segs
            .get(7, 5000, IPC_CREAT | 0o600, &owner, 10, &mem)
            .unwrap();
        assert_eq!(segs.get(7, 5000, 0, &owner, 10, &mem), Ok(id));
        assert_eq!(segs.get(7, 5001, 0, &owner, 10, &mem), Err(Errno::EINVAL));
        let excl = IPC_CREAT | IPC_EXCL | 0o600;
        assert_eq!(segs.get(7, 1, excl, &owner, 10, &mem), Err(Errno::EEXIST));
        assert_eq!(
            segs.get(8, 0, IPC_CREAT, &owner, 10, &mem),
            Err(Errno::EINVAL)
        );
        let (held, size) = segs.for_attach(id, &owner, 0o666).unwrap();
        assert_eq!(size, 5000);
        let stranger = Credentials::new(2000, 2000, Vec::new());
        assert_eq!(segs.remove(id, &stranger), Err(Errno::EPERM));
        segs.remove(id, &owner).unwrap();
        // The key is free at once; the id still answers while the memory is held.
        assert_eq!(segs.get(7, 1, 0, &owner, 10, &mem), Err(Errno::ENOENT));
        let (_, ds) = segs.stat(id, StatBy::Id, &owner).unwrap();
        assert_eq!(
            (ds.perm.key, ds.perm.mode, ds.nattch),
            (0, 0o600 | SHM_DEST, 1)
        );
        drop(held);
        assert_eq!(segs.stat(id, StatBy::Id, &owner).err(), Some(Errno::EINVAL));
    }
}
