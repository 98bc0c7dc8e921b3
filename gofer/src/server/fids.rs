//! The fid table: every fid the server handed out, shared by the threads of all its rings
//! (a fid from one ring is valid on every ring: the Sentry's inodes hold fids, and any of
//! its threads may use them on any ring).
//!
//! One mutex guards the map, and it is held only to look up, insert or remove an entry,
//! never across a host call: a lookup hands out a clone whose host descriptors are
//! reference-counted, so a `Close` on one ring while another ring still uses the fid only
//! drops the table's reference, and the host descriptor is closed when the last user is
//! done (never reused under a request in flight).
//!
//! The table is bounded: [`FidTable::reserve`] takes room for the fids an operation will
//! make before it makes any host object, so a full table (`EMFILE`) leaves nothing behind,
//! and concurrent operations cannot together overshoot the bound.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use nix::errno::Errno;

use super::files::{Node, OpenFile};
use crate::proto::Fid;

/// What a fid names.
#[derive(Clone, Debug)]
pub(super) enum Entry {
    Node(Node),
    File(Arc<OpenFile>),
}

/// The fid table. See the module documentation.
pub(super) struct FidTable {
    /// Guards the entries, the reservations and the next fid.
    inner: Mutex<Table>,
    /// Most entries plus reservations.
    max: usize,
}

struct Table {
    entries: HashMap<u64, Entry>,
    /// Room taken by [`Reservation`]s not yet used or dropped.
    reserved: usize,
    /// Fids are never reused, so a stale fid cannot alias a newer handle.
    next: u64,
}

impl FidTable {
    pub fn new(max: usize) -> FidTable {
        FidTable {
            inner: Mutex::new(Table {
                entries: HashMap::new(),
                reserved: 0,
                next: 1,
            }),
            max,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        // Every update below is made of steps that cannot panic, so a table whose lock was
        // poisoned (by a panic elsewhere while it was held) is still consistent.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes room for `n` more fids, or fails with `EMFILE`.
    pub fn reserve(&self, n: usize) -> Result<Reservation<'_>, Errno> {
        let mut table = self.lock();
        let used = table.entries.len().saturating_add(table.reserved);
        if used.saturating_add(n) > self.max {
            return Err(Errno::EMFILE);
        }
        table.reserved += n;
        Ok(Reservation {
            table: self,
            left: n,
        })
    }

    /// A clone of the entry `fid` names.
    pub fn get(&self, fid: Fid) -> Option<Entry> {
        self.lock().entries.get(&fid.0).cloned()
    }

    /// Removes `fid`; the caller drops the entry (and so, if nothing else uses it, closes
    /// its host descriptors) after the lock is released.
    pub fn remove(&self, fid: Fid) -> Option<Entry> {
        self.lock().entries.remove(&fid.0)
    }

    /// Calls `f` on every node, under the lock: for `Rename`, which must move the locations
    /// of all of them at once.
    pub fn for_each_node(&self, mut f: impl FnMut(&mut Node)) {
        for entry in self.lock().entries.values_mut() {
            if let Entry::Node(node) = entry {
                f(node);
            }
        }
    }

    /// Fids held (not counting reservations).
    #[cfg(all(test, not(loom)))]
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }
}

/// Room for fids taken by [`FidTable::reserve`]; what is not used is given back on drop.
pub(super) struct Reservation<'a> {
    table: &'a FidTable,
    left: usize,
}

impl Reservation<'_> {
    /// Inserts `entry` into room reserved for it. `EMFILE` if the reservation is used up,
    /// which would be a server bug (each operation reserves what it inserts).
    pub fn insert(&mut self, entry: Entry) -> Result<Fid, Errno> {
        if self.left == 0 {
            return Err(Errno::EMFILE);
        }
        self.left -= 1;
        let mut table = self.table.lock();
        table.reserved = table.reserved.saturating_sub(1);
        let fid = table.next;
        table.next += 1;
        table.entries.insert(fid, entry);
        Ok(Fid(fid))
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if self.left > 0 {
            let mut table = self.table.lock();
            table.reserved = table.reserved.saturating_sub(self.left);
        }
    }
}
