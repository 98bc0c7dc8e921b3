//! Host memory behind the guest: mappings of the memory files, and the pool of
//! page-table pages.
//!
//! Page-table pages come from a sparse memfd of the platform's own, registered with KVM a
//! chunk at a time from [`TABLES_GPA`] upward. A guest-physical page that held a table is
//! never handed out again for the life of the VM: a shadow MMU (the nested KVM of our
//! machines is one) keeps its shadow of a table by that table's address, and host-side
//! writes are invisible to it, so a link left to an old table must never lead into
//! another range. A freed page is punched out of the file at once (the host gets the
//! memory back, and the MMU notifier drops any translation through it); a chunk whose
//! pages are all freed loses its memory slot.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use nix::errno::Errno;

use super::guest::{TABLES_GPA, TABLES_SIZE};
use super::pagetable::TableMemory;
use super::{kvm_err, lock, Vm};
use crate::{Error, Result};

/// A region of the Sentry's address space, unmapped when dropped.
pub struct HostMapping {
    base: *mut u8,
    len: u64,
}

// SAFETY: the mapping is plain shared memory; every access goes through the atomic or
// bounds-checked methods below.
unsafe impl Send for HostMapping {}
// SAFETY: as above.
unsafe impl Sync for HostMapping {}

impl HostMapping {
    /// `len` bytes of `fd` from offset 0, shared, not reserved.
    pub fn shared(fd: &OwnedFd, len: u64) -> Result<HostMapping> {
        Self::map(len, libc::MAP_SHARED | libc::MAP_NORESERVE, Some(fd))
    }

    /// `len` bytes of zeroed private memory.
    pub fn anonymous(len: u64) -> Result<HostMapping> {
        Self::map(
            len,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            None,
        )
    }

    fn map(len: u64, flags: i32, fd: Option<&OwnedFd>) -> Result<HostMapping> {
        use std::os::fd::AsRawFd;
        let raw = fd.map_or(-1, |fd| fd.as_fd().as_raw_fd());
        // SAFETY: a new mapping at an address the kernel picks replaces nothing.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                raw,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(Error::Host {
                what: "mapping guest memory for KVM",
                errno: Errno::last(),
            });
        }
        Ok(HostMapping {
            base: base.cast(),
            len,
        })
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    /// The host address of `offset` (for memory slots and madvise).
    pub fn addr(&self, offset: u64) -> u64 {
        self.base as u64 + offset.min(self.len)
    }

    fn word(&self, offset: u64) -> &AtomicU64 {
        assert!(
            offset.is_multiple_of(8) && offset + 8 <= self.len,
            "offset {offset:#x} outside the mapping"
        );
        // SAFETY: aligned and inside the mapping (checked above), which lives as long as
        // `self`; guests may access it concurrently, hence atomics.
        unsafe { AtomicU64::from_ptr(self.base.add(offset as usize).cast()) }
    }

    pub fn read_u64(&self, offset: u64) -> u64 {
        self.word(offset).load(Ordering::Relaxed)
    }

    pub fn write_words(&self, offset: u64, words: &[u64]) {
        for (i, &w) in words.iter().enumerate() {
            self.word(offset + 8 * i as u64).store(w, Ordering::Release);
        }
    }

    pub fn write_bytes(&self, offset: u64, bytes: &[u8]) {
        for (i, chunk) in bytes.chunks(8).enumerate() {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.write_words(offset + 8 * i as u64, &[u64::from_le_bytes(w)]);
        }
    }
}

impl Drop for HostMapping {
    fn drop(&mut self) {
        // SAFETY: our own mapping; nothing refers to it once its owner is gone (the VM fd,
        // whose slots point here, is dropped first: see Vm's field order).
        unsafe { libc::munmap(self.base.cast(), self.len as usize) };
    }
}

/// Pages per memory slot of table memory.
const CHUNK_PAGES: u64 = 16384;
const CHUNK: u64 = CHUNK_PAGES * 4096;

/// The page-table pages of a VM.
pub struct TablePool {
    fd: OwnedFd,
    map: HostMapping,
    /// Offset of the next never-used page.
    next: u64,
    /// Live tables per chunk.
    live: Vec<u32>,
    /// Whether each chunk has a memory slot now.
    slotted: Vec<bool>,
    first_slot: u32,
    nr_slots: u32,
}

impl TablePool {
    pub fn new(first_slot: u32, nr_slots: u32) -> Result<TablePool> {
        let fd = nix::sys::memfd::memfd_create(
            c"runsc-rs-pagetables",
            nix::sys::memfd::MFdFlags::MFD_CLOEXEC,
        )
        .map_err(Error::host("creating the page-table memory file"))?;
        nix::unistd::ftruncate(&fd, TABLES_SIZE as i64)
            .map_err(Error::host("sizing the page-table memory file"))?;
        let map = HostMapping::shared(&fd, TABLES_SIZE)?;
        Ok(TablePool {
            fd,
            map,
            next: 0,
            live: Vec::new(),
            slotted: Vec::new(),
            first_slot,
            nr_slots,
        })
    }

    /// Allocates a page (as a guest-physical address), adding its chunk's slot if needed.
    fn alloc(&mut self, vm: &Vm) -> Option<u64> {
        if self.next >= TABLES_SIZE {
            return None;
        }
        let chunk = (self.next / CHUNK) as usize;
        if chunk >= self.live.len() {
            let slot = self.first_slot.checked_add(chunk as u32)?;
            if slot >= self.nr_slots {
                return None;
            }
            let start = chunk as u64 * CHUNK;
            vm.add_slot(slot, TABLES_GPA + start, &self.map, start, CHUNK)
                .ok()?;
            self.live.push(0);
            self.slotted.push(true);
        }
        let gpa = TABLES_GPA + self.next;
        self.next += 4096;
        self.live[chunk] += 1;
        Some(gpa)
    }

    fn free(&mut self, vm: &Vm, gpa: u64) {
        let offset = gpa - TABLES_GPA;
        // The page is all zeros already; punching it gives the memory back and, through
        // the MMU notifier, flushes every translation that went through it.
        let _ = nix::fcntl::fallocate(
            self.fd.as_fd(),
            nix::fcntl::FallocateFlags::FALLOC_FL_PUNCH_HOLE
                | nix::fcntl::FallocateFlags::FALLOC_FL_KEEP_SIZE,
            offset as i64,
            4096,
        );
        let chunk = (offset / CHUNK) as usize;
        let Some(live) = self.live.get_mut(chunk) else {
            return;
        };
        *live = live.saturating_sub(1);
        let used_up = self.next >= (chunk as u64 + 1) * CHUNK;
        if *live == 0 && used_up && self.slotted[chunk] {
            // No table will ever live in this chunk again.
            let region = kvm_bindings::kvm_userspace_memory_region {
                slot: self.first_slot + chunk as u32,
                flags: 0,
                guest_phys_addr: TABLES_GPA + chunk as u64 * CHUNK,
                memory_size: 0,
                userspace_addr: self.map.addr(chunk as u64 * CHUNK),
            };
            // SAFETY: deleting a slot (size 0) only makes KVM forget the memory.
            let deleted = unsafe { vm.fd.set_user_memory_region(region) }
                .map_err(kvm_err("deleting a page-table memory slot"));
            if deleted.is_ok() {
                self.slotted[chunk] = false;
            }
        }
    }

    fn word_offset(gpa: u64, index: usize) -> u64 {
        gpa - TABLES_GPA + index as u64 * 8
    }
}

/// One address space's view of the pool (the [`TableMemory`] of its page tables).
pub struct VmTables {
    vm: Arc<Vm>,
}

impl VmTables {
    pub fn new(vm: Arc<Vm>) -> VmTables {
        VmTables { vm }
    }
}

impl TableMemory for VmTables {
    fn alloc(&mut self) -> Option<u64> {
        lock(&self.vm.tables).alloc(&self.vm)
    }

    fn free(&mut self, gpa: u64) {
        lock(&self.vm.tables).free(&self.vm, gpa)
    }

    fn read(&self, gpa: u64, index: usize) -> u64 {
        let pool = lock(&self.vm.tables);
        pool.map.read_u64(TablePool::word_offset(gpa, index))
    }

    fn write(&mut self, gpa: u64, index: usize, value: u64) {
        let pool = lock(&self.vm.tables);
        pool.map
            .write_words(TablePool::word_offset(gpa, index), &[value]);
    }
}
