//! System V IPC (svipc(7)): shared memory segments ([`shm`]) and semaphore sets ([`sem`]),
//! one IPC namespace for the whole sandbox.
//!
//! Both kinds keep their objects in an [`Ids`] table, as Linux's `ipc_ids`: an object is
//! found by the id shmget/semget returned, or by the key it was made with, and carries an
//! [`Perm`] (owner, creator, mode) that every call checks as Linux's `ipcperms` does.

pub mod sem;
pub mod shm;

use std::collections::BTreeMap;

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::abi::{Errno, CAP_IPC_OWNER, CAP_SYS_ADMIN};
use crate::kernel::Credentials;

/// The key that always makes a new object.
pub const IPC_PRIVATE: i32 = 0;
pub const IPC_CREAT: u64 = 0o1000;
pub const IPC_EXCL: u64 = 0o2000;
pub const IPC_NOWAIT: u64 = 0o4000;

pub const IPC_RMID: i32 = 0;
pub const IPC_SET: i32 = 1;
pub const IPC_STAT: i32 = 2;
pub const IPC_INFO: i32 = 3;

/// Permission bits of an object's mode (S_IRWXUGO).
const MODE_BITS: u32 = 0o777;
/// An id is a slot index below 2^15 (Linux's IPCMNI) with a sequence number above it.
const INDEX_BITS: u32 = 15;
const INDEX_MASK: i32 = (1 << INDEX_BITS) - 1;
/// Sequence numbers wrap here, so that ids stay positive ints (Linux's IPCID_SEQ_MAX).
const SEQ_MAX: u32 = (i32::MAX as u32) >> INDEX_BITS;

/// `struct ipc64_perm` (x86_64).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct Ipc64Perm {
    pub key: i32,
    pub uid: u32,
    pub gid: u32,
    pub cuid: u32,
    pub cgid: u32,
    pub mode: u32,
    pub seq: u16,
    pub pad2: u16,
    pub pad3: u32,
    pub unused1: u64,
    pub unused2: u64,
}

/// An object's `ipc_perm`: the key it was made with (IPC_PRIVATE once it is removed), its
/// owner and creator, and its mode (permission bits, plus state bits of the kind).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Perm {
    pub key: i32,
    pub uid: u32,
    pub gid: u32,
    pub cuid: u32,
    pub cgid: u32,
    pub mode: u32,
}

impl Perm {
    /// The perm of an object `creds` makes now with `flags`' permission bits.
    pub fn new(key: i32, flags: u64, creds: &Credentials) -> Perm {
        Perm {
            key,
            uid: creds.euid,
            gid: creds.egid,
            cuid: creds.euid,
            cgid: creds.egid,
            mode: flags as u32 & MODE_BITS,
        }
    }

    /// Linux's ipcperms: whether `creds` may access the object as the permission bits of
    /// `flag` ask (S_IRUGO to read, S_IWUGO to alter). The owner or creator is judged by
    /// the user bits, a member of the owner's or creator's group by the group bits, anyone
    /// else by the other bits; CAP_IPC_OWNER may do anything.
    pub fn allows(&self, creds: &Credentials, flag: u32) -> bool {
        let requested = (flag >> 6 | flag >> 3 | flag) & 0o7;
        let granted = if creds.euid == self.cuid || creds.euid == self.uid {
            self.mode >> 6
        } else if in_group(creds, self.cgid) || in_group(creds, self.gid) {
            self.mode >> 3
        } else {
            self.mode
        };
        requested & !granted & 0o7 == 0 || creds.capable(CAP_IPC_OWNER)
    }

    /// EACCES unless [`Perm::allows`].
    pub fn check(&self, creds: &Credentials, flag: u32) -> Result<(), Errno> {
        if self.allows(creds, flag) {
            Ok(())
        } else {
            Err(Errno::EACCES)
        }
    }

    /// EPERM unless `creds` may change or remove the object (IPC_SET, IPC_RMID): its owner,
    /// its creator, or CAP_SYS_ADMIN, as Linux's ipcctl_obtain_check.
    pub fn check_owner(&self, creds: &Credentials) -> Result<(), Errno> {
        if creds.euid == self.uid || creds.euid == self.cuid || creds.capable(CAP_SYS_ADMIN) {
            Ok(())
        } else {
            Err(Errno::EPERM)
        }
    }

    /// IPC_SET: the new owner and permission bits (the kind's state bits stay).
    pub fn set(&mut self, from: &Ipc64Perm) {
        self.uid = from.uid;
        self.gid = from.gid;
        self.mode = (self.mode & !MODE_BITS) | (from.mode & MODE_BITS);
    }

    /// The ABI form, for the object with `id`.
    pub fn to_abi(&self, id: i32) -> Ipc64Perm {
        Ipc64Perm {
            key: self.key,
            uid: self.uid,
            gid: self.gid,
            cuid: self.cuid,
            cgid: self.cgid,
            mode: self.mode,
            seq: (id >> INDEX_BITS) as u16,
            ..Ipc64Perm::default()
        }
    }
}

/// Whether `creds` are in group `gid` (Linux's in_group_p).
fn in_group(creds: &Credentials, gid: u32) -> bool {
    creds.egid == gid || creds.groups.contains(&gid)
}

/// What an [`Ids`] table needs of its objects.
pub trait Object {
    fn perm(&self) -> &Perm;
}

/// The objects of one kind by id (Linux's `ipc_ids`). An id is the slot index plus, above
/// it, the sequence number the object got when it was made: a stale id of a removed object
/// does not name the next object put in its slot.
#[derive(Debug)]
pub struct Ids<T> {
    /// Slot index to (id, object).
    slots: BTreeMap<i32, (i32, T)>,
    /// The sequence number the next object gets.
    seq: u32,
    /// How many objects there may be (SHMMNI, SEMMNI).
    max: usize,
}

impl<T: Object> Ids<T> {
    pub fn new(max: usize) -> Ids<T> {
        Ids {
            slots: BTreeMap::new(),
            seq: 0,
            max: max.min(1 << INDEX_BITS),
        }
    }

    /// The object with `id`; EINVAL if there is none (or it has been removed).
    pub fn get(&self, id: i32) -> Result<&T, Errno> {
        match self.slots.get(&(id & INDEX_MASK)) {
            Some((have, object)) if id >= 0 && *have == id => Ok(object),
            _ => Err(Errno::EINVAL),
        }
    }

    pub fn get_mut(&mut self, id: i32) -> Result<&mut T, Errno> {
        match self.slots.get_mut(&(id & INDEX_MASK)) {
            Some((have, object)) if id >= 0 && *have == id => Ok(object),
            _ => Err(Errno::EINVAL),
        }
    }

    /// The object in slot `index` and its id (SHM_STAT, SEM_STAT).
    pub fn at_index(&self, index: i32) -> Result<(i32, &T), Errno> {
        self.slots
            .get(&index)
            .map(|(id, object)| (*id, object))
            .ok_or(Errno::EINVAL)
    }

    /// The id of the object made with `key` (never IPC_PRIVATE).
    pub fn find_key(&self, key: i32) -> Option<i32> {
        if key == IPC_PRIVATE {
            return None;
        }
        self.slots
            .values()
            .find(|(_, object)| object.perm().key == key)
            .map(|(id, _)| *id)
    }

    /// Puts `object` in the lowest free slot and returns its id; ENOSPC when the table
    /// is full.
    pub fn insert(&mut self, make: impl FnOnce(i32) -> Result<T, Errno>) -> Result<i32, Errno> {
        if self.slots.len() >= self.max {
            return Err(Errno::ENOSPC);
        }
        let index = (0..)
            .zip(self.slots.keys())
            .find(|(want, have)| want != *have)
            .map_or(self.slots.len() as i32, |(want, _)| want);
        let id = ((self.seq as i32) << INDEX_BITS) | index;
        let object = make(id)?;
        self.seq = if self.seq >= SEQ_MAX { 0 } else { self.seq + 1 };
        self.slots.insert(index, (id, object));
        Ok(id)
    }

    pub fn remove(&mut self, id: i32) -> Option<T> {
        self.get(id).ok()?;
        self.slots
            .remove(&(id & INDEX_MASK))
            .map(|(_, object)| object)
    }

    /// Keeps only the objects `keep` says to.
    pub fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        self.slots.retain(|_, (_, object)| keep(object));
    }

    /// Every object and its id, by slot.
    pub fn iter(&self) -> impl Iterator<Item = (i32, &T)> {
        self.slots.values().map(|(id, object)| (*id, object))
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The highest slot in use, 0 if none (what IPC_INFO and the *_INFO calls return).
    pub fn max_index(&self) -> i32 {
        self.slots.keys().next_back().copied().unwrap_or(0)
    }

    /// shmget/semget for an existing key (Linux's ipcget): the id of the object made with
    /// `key`, or None if a new one is to be made (IPC_PRIVATE, or no such key and
    /// IPC_CREAT). ENOENT if there is none and IPC_CREAT is missing, EEXIST if there is one
    /// and IPC_CREAT|IPC_EXCL ask for a new one; an existing object must then pass `check`
    /// (EINVAL for a size or count it does not have) and allow `flags`' permission bits
    /// (EACCES), in that order.
    pub fn lookup(
        &self,
        key: i32,
        flags: u64,
        creds: &Credentials,
        check: impl FnOnce(&T) -> Result<(), Errno>,
    ) -> Result<Option<i32>, Errno> {
        if key == IPC_PRIVATE {
            return Ok(None);
        }
        let Some(id) = self.find_key(key) else {
            return if flags & IPC_CREAT != 0 {
                Ok(None)
            } else {
                Err(Errno::ENOENT)
            };
        };
        if flags & (IPC_CREAT | IPC_EXCL) == IPC_CREAT | IPC_EXCL {
            return Err(Errno::EEXIST);
        }
        let object = self.get(id)?;
        check(object)?;
        object.perm().check(creds, flags as u32)?;
        Ok(Some(id))
    }
}

/// Seconds since the epoch, for the times IPC objects keep.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The sandbox's IPC namespace.
#[derive(Debug, Default)]
pub struct IpcNamespace {
    pub shm: shm::Segments,
    pub sem: sem::SemSets,
}

impl IpcNamespace {
    /// Process `pid` has exited: its semaphore adjustments (SEM_UNDO) are applied.
    pub fn process_exited(&self, pid: i32) {
        self.sem.exit(pid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Thing(Perm);

    impl Object for Thing {
        fn perm(&self) -> &Perm {
            &self.0
        }
    }

    fn creds(uid: u32, gid: u32) -> Credentials {
        Credentials::new(uid, gid, Vec::new())
    }

    fn thing(key: i32, mode: u64, owner: &Credentials) -> impl FnOnce(i32) -> Result<Thing, Errno> {
        let perm = Perm::new(key, mode, owner);
        move |_| Ok(Thing(perm))
    }

    #[test]
    fn ids_reuse_the_lowest_slot_with_a_new_sequence_number() {
        let owner = creds(1000, 1000);
        let mut ids: Ids<Thing> = Ids::new(4);
        let a = ids.insert(thing(5, 0o600, &owner)).unwrap();
        let b = ids.insert(thing(6, 0o600, &owner)).unwrap();
        assert_eq!((a, b), (0, (1 << 15) | 1));
        assert!(ids.remove(a).is_some());
        let c = ids.insert(thing(7, 0o600, &owner)).unwrap();
        assert_eq!(c, 2 << 15, "slot 0 again, sequence 2");
        assert_eq!(
            ids.get(a).err(),
            Some(Errno::EINVAL),
            "a stale id names nothing"
        );
        assert_eq!(ids.find_key(6), Some(b));
        assert_eq!(ids.max_index(), 1);
        ids.insert(thing(8, 0, &owner)).unwrap();
        ids.insert(thing(9, 0, &owner)).unwrap();
        assert_eq!(ids.insert(thing(10, 0, &owner)).err(), Some(Errno::ENOSPC));
    }

    #[test]
    fn lookup_follows_ipcget_order() {
        let owner = creds(1000, 1000);
        let mut ids: Ids<Thing> = Ids::new(8);
        let id = ids.insert(thing(42, 0o640, &owner)).unwrap();
        let ok = |_: &Thing| Ok(());
        assert_eq!(ids.lookup(42, 0o600, &owner, ok), Ok(Some(id)));
        assert_eq!(ids.lookup(43, 0o600, &owner, ok), Err(Errno::ENOENT));
        assert_eq!(ids.lookup(43, IPC_CREAT, &owner, ok), Ok(None));
        assert_eq!(ids.lookup(IPC_PRIVATE, 0, &owner, ok), Ok(None));
        let excl = IPC_CREAT | IPC_EXCL;
        assert_eq!(ids.lookup(42, excl, &owner, ok), Err(Errno::EEXIST));
        let small = |_: &Thing| Err(Errno::EINVAL);
        assert_eq!(ids.lookup(42, 0, &owner, small), Err(Errno::EINVAL));
        let group = creds(2000, 1000);
        assert_eq!(ids.lookup(42, 0o040, &group, ok), Ok(Some(id)));
        assert_eq!(ids.lookup(42, 0o020, &group, ok), Err(Errno::EACCES));
        let other = creds(3000, 3000);
        assert_eq!(ids.lookup(42, 0o004, &other, ok), Err(Errno::EACCES));
        assert_eq!(ids.lookup(42, 0o777, &creds(0, 0), ok), Ok(Some(id)));
    }
}
