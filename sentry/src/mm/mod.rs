//! The memory manager: a guest address space as VMAs over the memory file.
//!
//! Two range maps describe an address space (see `vma`): VMAs are what the guest mapped
//! (protection, flags, and where the contents come from: anonymous memory or a page
//! cache), PMAs are the memory-file pages that back them now. Pages are backed lazily:
//! anonymous memory gets one range of the memory file when it is mapped (the host fills it
//! on first touch), file pages come into the page cache on the first fault, a window at a
//! time, and private writes to shared pages (a private file mapping, memory shared with a
//! forked process) are copied first (copy-on-write).
//!
//! The platform's address space mirrors the PMAs: a page the stub can reach has a PMA,
//! mapped writable only if the PMA is. A fault the guest takes is resolved here
//! ([`MemoryManager::handle_fault`]) or becomes SIGSEGV/SIGBUS. The Sentry reaches guest
//! memory only through [`MemoryManager::copy_in`] / [`MemoryManager::copy_out`], which follow
//! the same rules and answer `EFAULT` for anything the guest could not access itself.

pub mod memory_file;
pub mod page_cache;
mod vma;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};

use platform::{AddressSpace, Prot};
use zerocopy::{FromBytes, Immutable, IntoBytes};

use crate::abi::{page_down, page_up, Errno, PAGE_SIZE};
pub use memory_file::MemoryFile;
use page_cache::FillError;
pub use page_cache::PageCache;
use vma::{Backing, Pma, RangeMap, Span};
pub use vma::{Source, Vma, VmaFlags};

pub const PROT_NONE: Prot = libc::PROT_NONE;
pub const PROT_READ: Prot = libc::PROT_READ;
pub const PROT_WRITE: Prot = libc::PROT_WRITE;
pub const PROT_EXEC: Prot = libc::PROT_EXEC;
pub const PROT_RWX: Prot = PROT_READ | PROT_WRITE | PROT_EXEC;

/// Bytes of a file a fault brings into the page cache at once (Linux reads ahead 128 KiB).
const FAULT_AROUND: u64 = 128 << 10;
/// Bytes a write fault copies at once when it breaks copy-on-write.
const COPY_AROUND: u64 = 64 << 10;
/// The gap kept below a stack that grows down (Linux's stack_guard_gap: 256 pages).
const STACK_GUARD_GAP: u64 = 256 * PAGE_SIZE;

/// Where a new mapping may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Anywhere; near the hint if it is free.
    Hint(u64),
    /// Exactly here, replacing what is mapped (MAP_FIXED).
    Fixed(u64),
    /// Exactly here, failing with EEXIST if anything is mapped (MAP_FIXED_NOREPLACE).
    FixedNoReplace(u64),
    /// Anywhere in `[low, high)` (MAP_32BIT: the first 2 GiB), else ENOMEM.
    Within { low: u64, high: u64 },
}

/// The layout limits of an address space.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    /// Lowest address a mapping may use (`vm.mmap_min_addr`).
    pub min: u64,
    /// One past the highest address a mapping may use.
    pub max: u64,
    /// Top-down searches for free space start below this.
    pub mmap_base: u64,
}

/// The resource limits an address space honours (current values, in bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// RLIMIT_AS: all mappings together.
    pub address_space: u64,
    /// RLIMIT_DATA: private writable mappings other than stacks.
    pub data: u64,
    /// RLIMIT_STACK: how far a stack may grow down.
    pub stack: u64,
    /// RLIMIT_MEMLOCK: mlock'ed mappings together.
    pub memlock: u64,
    /// Whether RLIMIT_MEMLOCK is waived (CAP_IPC_LOCK).
    pub lock_unlimited: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            address_space: u64::MAX,
            data: u64::MAX,
            stack: 8 << 20,
            memlock: 8 << 20,
            lock_unlimited: true,
        }
    }
}

/// A guest access the memory manager cannot serve: the signal the guest gets for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// SIGSEGV, SEGV_MAPERR: nothing is mapped there.
    MapErr,
    /// SIGSEGV, SEGV_ACCERR: the mapping does not allow the access.
    AccErr,
    /// SIGBUS, BUS_ADRERR: a file mapping's page past the end of the file.
    Bus,
}

impl Fault {
    /// `(signo, si_code)`.
    pub fn signal(self) -> (i32, i32) {
        match self {
            Fault::MapErr => (libc::SIGSEGV, 1),
            Fault::AccErr => (libc::SIGSEGV, 2),
            Fault::Bus => (libc::SIGBUS, 2),
        }
    }
}

/// What a new mapping is.
#[derive(Debug, Clone)]
pub struct Mapping {
    pub prot: Prot,
    pub max_prot: Prot,
    pub shared: bool,
    pub source: Source,
    pub flags: VmaFlags,
    /// MAP_POPULATE: back every page now.
    pub populate: bool,
}

impl Mapping {
    /// Private anonymous memory.
    pub fn anonymous(prot: Prot) -> Mapping {
        Mapping {
            prot,
            max_prot: PROT_RWX,
            shared: false,
            source: Source::Anonymous,
            flags: VmaFlags::default(),
            populate: false,
        }
    }
}

/// A forked child's memory before it has an address space: the parent's VMAs and PMAs,
/// private pages shared copy-on-write.
#[derive(Debug)]
pub struct ForkedMemory {
    state: State,
    layout: Layout,
}

/// Where the argument and environment strings lie (`[start, end)` each) and where the
/// initial stack starts, as Linux's mm_struct keeps them for /proc/PID/cmdline, environ,
/// stat and maps (whose `[stack]` is the VMA holding `stack`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArgEnv {
    pub args: (u64, u64),
    pub env: (u64, u64),
    /// The stack pointer at process entry (start_stack).
    pub stack: u64,
}

/// Memory use of an address space, as /proc/PID/status and statm show it (bytes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub size: u64,
    pub locked: u64,
    pub data: u64,
    pub stack: u64,
    pub rss_anon: u64,
    pub rss_file: u64,
    pub rss_shmem: u64,
}

/// A guest address space. `state` guards the VMAs, PMAs and the program break.
pub struct MemoryManager {
    space: Box<dyn AddressSpace>,
    file: Arc<MemoryFile>,
    layout: Layout,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    vmas: RangeMap<Vma>,
    pmas: RangeMap<Pma>,
    brk_start: u64,
    brk: u64,
    arg_env: ArgEnv,
    limits: Limits,
    /// mlockall(MCL_FUTURE): new mappings are locked.
    lock_future: bool,
}

impl MemoryManager {
    pub fn new(space: Box<dyn AddressSpace>, file: Arc<MemoryFile>, layout: Layout) -> Self {
        MemoryManager {
            space,
            file,
            layout,
            state: Mutex::new(State::default()),
        }
    }

    pub fn address_space(&self) -> &dyn AddressSpace {
        self.space.as_ref()
    }

    pub fn memory_file(&self) -> &Arc<MemoryFile> {
        &self.file
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The limits to honour from now on (set at exec and by setrlimit).
    pub fn set_limits(&self, limits: Limits) {
        self.lock().limits = limits;
    }

    // ---- Mapping and unmapping.

    /// Maps `len` bytes of fresh zeroed memory; returns the address.
    pub fn map_anonymous(
        &self,
        placement: Placement,
        len: u64,
        prot: Prot,
        shared: bool,
    ) -> Result<u64, Errno> {
        let mut mapping = Mapping::anonymous(prot);
        if shared {
            mapping.shared = true;
            mapping.source = Source::shared_anonymous(&self.file);
        }
        self.map(placement, len, mapping)
    }

    /// mmap: maps `len` bytes as `m` says; returns the address.
    pub fn map(&self, placement: Placement, len: u64, m: Mapping) -> Result<u64, Errno> {
        let len = page_up(len).filter(|&l| l > 0).ok_or(Errno::ENOMEM)?;
        let mut state = self.lock();
        let start = self.place(&state, placement, len)?;
        let end = start + len;
        let flags = VmaFlags {
            locked: m.flags.locked || state.lock_future,
            ..m.flags
        };
        let vma = Vma {
            start,
            end,
            prot: m.prot,
            max_prot: m.max_prot,
            shared: m.shared,
            source: m.source,
            flags,
        };
        state.check_growth(&vma, start, end)?;
        if flags.locked {
            state.check_lock(start, end, true)?;
        }
        self.unmap_locked(&mut state, start, end)?;
        state.insert_vma(vma.clone());
        match &vma.source {
            // Anonymous memory gets its pages now: the host makes them on first touch.
            Source::Anonymous => {
                let pma = self.private_pma(start, end)?;
                self.install(&vma, &pma).map_err(|_| Errno::ENOMEM)?;
                state.pmas.insert(pma);
            }
            // Cached pages are mapped at once; the others come on the first fault.
            Source::Cache { cache, offset, .. } => {
                let runs = if cache.is_anonymous() {
                    Vec::new()
                } else {
                    cache.present(*offset, offset + len)
                };
                for run in runs {
                    let pma = Pma {
                        start: start + (run.offset - offset),
                        end: start + (run.offset - offset) + run.len,
                        file_offset: run.memory_offset,
                        backing: run.backing,
                        writable: false,
                    };
                    if self.install(&vma, &pma).is_ok() {
                        state.pmas.insert(pma);
                    }
                }
            }
        }
        if m.populate || flags.locked {
            self.populate_all(&mut state, start, end);
        }
        Ok(start)
    }

    /// A fresh private PMA for `[start, end)`.
    fn private_pma(&self, start: u64, end: u64) -> Result<Pma, Errno> {
        let backing = Backing::allocate(&self.file, end - start, false)?;
        Ok(Pma {
            start,
            end,
            file_offset: backing.offset,
            backing,
            writable: true,
        })
    }

    fn place(&self, state: &State, placement: Placement, len: u64) -> Result<u64, Errno> {
        match placement {
            Placement::Fixed(addr) | Placement::FixedNoReplace(addr) => {
                if !addr.is_multiple_of(PAGE_SIZE) {
                    return Err(Errno::EINVAL);
                }
                let end = addr.checked_add(len).ok_or(Errno::ENOMEM)?;
                if addr < self.layout.min {
                    return Err(Errno::EPERM);
                }
                if end > self.layout.max {
                    return Err(Errno::ENOMEM);
                }
                if matches!(placement, Placement::FixedNoReplace(_))
                    && state.vmas.overlaps(addr, end)
                {
                    return Err(Errno::EEXIST);
                }
                Ok(addr)
            }
            Placement::Hint(hint) => self.find_free(state, page_down(hint), len),
            Placement::Within { low, high } => state
                .highest_gap(low.max(self.layout.min), high.min(self.layout.max), len)
                .ok_or(Errno::ENOMEM),
        }
    }

    /// A free range of `len` bytes: at `hint` if it fits, else the highest one below
    /// `mmap_base` (Linux's top-down allocator), else the highest one anywhere.
    fn find_free(&self, state: &State, hint: u64, len: u64) -> Result<u64, Errno> {
        let Layout {
            min,
            max,
            mmap_base,
        } = self.layout;
        if hint >= min
            && hint
                .checked_add(len)
                .is_some_and(|e| e <= max && !state.vmas.overlaps(hint, e))
        {
            return Ok(hint);
        }
        state
            .highest_gap(min, mmap_base, len)
            .or_else(|| state.highest_gap(min, max, len))
            .ok_or(Errno::ENOMEM)
    }

    /// munmap: removes every mapping in `[addr, addr + len)`.
    pub fn unmap(&self, addr: u64, len: u64) -> Result<(), Errno> {
        let end = self.user_range(addr, len, Errno::EINVAL)?;
        let mut state = self.lock();
        self.unmap_locked(&mut state, addr, end)
    }

    /// The end of `[addr, addr + len)` after checking that it is page-aligned, not empty
    /// and inside the user address space (`err` otherwise).
    fn user_range(&self, addr: u64, len: u64, err: Errno) -> Result<u64, Errno> {
        if !addr.is_multiple_of(PAGE_SIZE) || len == 0 {
            return Err(Errno::EINVAL);
        }
        let end = page_up(len).and_then(|l| addr.checked_add(l)).ok_or(err)?;
        if end > crate::abi::TASK_SIZE_MAX {
            return Err(err);
        }
        Ok(end)
    }

    fn unmap_locked(&self, state: &mut State, start: u64, end: u64) -> Result<(), Errno> {
        let hit: Vec<Vma> = state.vmas.overlapping(start, end).cloned().collect();
        let (Some(lowest), Some(highest)) = (hit.first(), hit.last()) else {
            return Ok(());
        };
        // What a shared mapping wrote goes to the file before the mapping goes.
        for vma in &hit {
            self.write_back(vma, start.max(vma.start), end.min(vma.end));
        }
        // Only the span that is mapped goes to the host: never beyond the guest's layout
        // (the platform's own pages may live there).
        let (first, last) = (lowest.start.max(start), highest.end.min(end));
        if let Err(e) = self.space.unmap(first, last - first) {
            // Nothing changed in the stub's mappings as far as we know: keep our view too.
            log::warn!("unmapping guest memory failed: {e}");
            return Err(Errno::ENOMEM);
        }
        state.vmas.carve(start, end);
        self.drop_pmas(state, start, end);
        Ok(())
    }

    /// Removes the PMAs of `[start, end)` (the stub must no longer map them). Private pages
    /// nobody else holds go back to the host at once.
    fn drop_pmas(&self, state: &mut State, start: u64, end: u64) {
        self.carve_pmas(state, start, end, None);
    }

    /// Puts `new` in place of the PMAs of its range, which may share its backing.
    fn replace_pma(&self, state: &mut State, new: Pma) {
        self.carve_pmas(state, new.start, new.end, Some(&new.backing));
        state.pmas.insert(new);
    }

    fn carve_pmas(&self, state: &mut State, start: u64, end: u64, keep: Option<&Arc<Backing>>) {
        let pieces = state.pmas.carve(start, end);
        for piece in pieces {
            if piece.backing.cache || keep.is_some_and(|k| Arc::ptr_eq(k, &piece.backing)) {
                continue;
            }
            if piece.backing.exclusive() {
                if let Err(e) = self.file.punch(piece.file_offset, piece.len()) {
                    log::warn!("releasing unmapped guest memory failed: {e}");
                }
            } else if !state
                .pmas
                .iter()
                .any(|p| Arc::ptr_eq(&p.backing, &piece.backing))
            {
                piece.backing.unshare();
            }
        }
    }

    /// Writes back what a shared file mapping wrote in `[start, end)` of `vma`.
    fn write_back(&self, vma: &Vma, start: u64, end: u64) {
        if !vma.shared {
            return;
        }
        if let (Some(file), Some((cache, lo))) = (vma.file(), vma.cache_at(start)) {
            if let Err(e) = cache.write_back(lo, lo + (end - start), file) {
                log::warn!("writing a shared mapping back to its file failed: {e}");
            }
        }
    }

    /// mprotect: every page of `[addr, addr + len)` must be mapped (else ENOMEM), and each
    /// mapping must allow the protection (else EACCES).
    pub fn protect(&self, addr: u64, len: u64, prot: Prot, growsdown: bool) -> Result<(), Errno> {
        if !addr.is_multiple_of(PAGE_SIZE) {
            return Err(Errno::EINVAL);
        }
        if len == 0 {
            return Ok(());
        }
        let mut start = addr;
        let end = page_up(len)
            .and_then(|l| addr.checked_add(l))
            .ok_or(Errno::ENOMEM)?;
        let mut state = self.lock();
        if growsdown {
            // PROT_GROWSDOWN: down to the start of a stack mapping.
            match state.vmas.get(addr) {
                Some(v) if v.flags.growsdown => start = v.start,
                Some(_) => return Err(Errno::EINVAL),
                None => return Err(Errno::ENOMEM),
            }
        }
        if !state.vmas.covers(start, end) {
            return Err(Errno::ENOMEM);
        }
        if state
            .vmas
            .overlapping(start, end)
            .any(|v| prot & !v.max_prot != 0)
        {
            return Err(Errno::EACCES);
        }
        for mut vma in state.vmas.carve(start, end) {
            vma.prot = prot;
            state.insert_vma(vma);
        }
        self.sync_protection(&state, start, end)
    }

    /// Makes the stub's protection of the PMAs in `[start, end)` what VMAs and PMAs say,
    /// one host call per run of equal protection.
    fn sync_protection(&self, state: &State, start: u64, end: u64) -> Result<(), Errno> {
        let mut runs: Vec<(u64, u64, Prot)> = Vec::new();
        for pma in state.pmas.overlapping(start, end) {
            let Some(vma) = state.vmas.get(pma.start.max(start)) else {
                continue;
            };
            let (s, e) = (pma.start.max(start), pma.end.min(end));
            let prot = stub_prot(vma, pma);
            match runs.last_mut() {
                Some(last) if last.1 == s && last.2 == prot => last.1 = e,
                _ => runs.push((s, e, prot)),
            }
        }
        for (s, e, prot) in runs {
            self.space.protect(s, e - s, prot).map_err(|e| {
                log::warn!("protecting guest memory failed: {e}");
                Errno::ENOMEM
            })?;
        }
        Ok(())
    }

    // ---- Faults and backing pages.

    /// Resolves a fault the guest took at `addr` (`code`: the host's si_code, SEGV_MAPERR
    /// when the stub had no mapping there, SEGV_ACCERR when its protection refused).
    /// Err: the signal the guest gets.
    pub fn handle_fault(&self, addr: u64, code: i32) -> Result<(), Fault> {
        const SEGV_ACCERR: i32 = 2;
        let mut state = self.lock();
        let vma = self.vma_at(&mut state, addr).ok_or(Fault::MapErr)?;
        if vma.prot == PROT_NONE {
            return Err(Fault::AccErr);
        }
        let page = page_down(addr);
        match state.pmas.get(page).cloned() {
            // Backed, but the stub was refused: a write the Sentry has to resolve, or an
            // access the mapping does not allow (a write to read-only memory, running
            // code from memory without PROT_EXEC).
            Some(pma) if code == SEGV_ACCERR => {
                if !vma.allows(true) || pma.writable {
                    return Err(Fault::AccErr);
                }
                // A file page is copied alone, as Linux does: the pages around it keep
                // following the file. Private memory shared after fork is copied in a
                // window, which no one can tell apart from single pages.
                let size = if pma.backing.cache {
                    PAGE_SIZE
                } else {
                    COPY_AROUND
                };
                let (lo, hi) = window(&vma, page, size);
                let (lo, hi) = (lo.max(pma.start), hi.min(pma.end));
                self.make_writable(&mut state, &vma, &pma, lo, hi, true)
            }
            // Backed, but not yet in the stub (after fork, mremap, or a read by the Sentry).
            Some(pma) => self.install(&vma, &pma),
            None => {
                // Which access faulted is not known: back the pages for reading (file pages
                // shared with the page cache); a write faults again and copies them, as
                // Linux's read fault and write fault would.
                let (lo, hi) = window(&vma, page, FAULT_AROUND);
                self.prepare(&mut state, &vma, lo, hi, false, true, page + PAGE_SIZE)
            }
        }
    }

    /// The VMA holding `addr`, growing a stack down to it if that is allowed.
    fn vma_at(&self, state: &mut State, addr: u64) -> Option<Vma> {
        if let Some(vma) = state.vmas.get(addr) {
            return Some(vma.clone());
        }
        let next = state.vmas.next_from(addr)?.clone();
        if !next.flags.growsdown || !matches!(next.source, Source::Anonymous) {
            return None;
        }
        let new_start = page_down(addr);
        if new_start < self.layout.min || next.end - new_start > state.limits.stack {
            return None;
        }
        if let Some(prev) = state.vmas.prev_before(new_start) {
            if !prev.flags.growsdown && prev.end.saturating_add(STACK_GUARD_GAP) > new_start {
                return None;
            }
        }
        if state.total() + (next.start - new_start) > state.limits.address_space {
            return None;
        }
        state.vmas.remove(next.start);
        let grown = Vma {
            start: new_start,
            ..next
        };
        state.vmas.insert(grown.clone());
        Some(grown)
    }

    /// Backs every page of `[start, end)` (page-aligned, inside `vma`) with PMAs fit for
    /// `write`, installing what changed in the stub if `install`. Pages from `need` on are
    /// best effort: a page past the end of a file stops the work there without an error.
    #[allow(clippy::too_many_arguments)]
    fn prepare(
        &self,
        state: &mut State,
        vma: &Vma,
        start: u64,
        end: u64,
        write: bool,
        install: bool,
        need: u64,
    ) -> Result<(), Fault> {
        let mut at = start;
        while at < end {
            if let Some(pma) = state.pmas.get(at).cloned() {
                let stop = pma.end.min(end);
                if write && !pma.writable {
                    self.make_writable(state, vma, &pma, at, stop, install)?;
                }
                at = stop;
                continue;
            }
            let gap_end = state
                .pmas
                .next_from(at)
                .map_or(vma.end, |p| p.start.min(vma.end));
            match self.back_gap(state, vma, at, end.min(gap_end), gap_end, write, install) {
                Ok(made) => at = made,
                Err(Fault::Bus) if at >= need => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Backs the unbacked `[at, hi)` (part of the gap `[at, gap_end)`); returns where the
    /// new PMA ends (at least one page on).
    #[allow(clippy::too_many_arguments)]
    fn back_gap(
        &self,
        state: &mut State,
        vma: &Vma,
        at: u64,
        hi: u64,
        gap_end: u64,
        write: bool,
        install: bool,
    ) -> Result<u64, Fault> {
        let Some((cache, offset)) = vma.cache_at(at) else {
            // Anonymous memory: the whole gap at once, it costs nothing until touched.
            let pma = self.private_pma(at, gap_end).map_err(|_| Fault::MapErr)?;
            if install {
                self.install(vma, &pma)?;
            }
            let end = pma.end;
            state.pmas.insert(pma);
            return Ok(end);
        };
        // Within one chunk of the cache.
        let chunk_end = at + (page_cache::CHUNK - offset % page_cache::CHUNK);
        let hi = hi.min(chunk_end).max(at + PAGE_SIZE);
        let file = vma.file().map(|f| f.as_ref());
        let run = match cache.fill(offset, offset, offset + (hi - at), file) {
            Ok(run) => run,
            Err(FillError::PastEnd) => return Err(Fault::Bus),
            Err(FillError::Errno(e)) => {
                log::warn!("reading a mapped file failed: {e}");
                return Err(Fault::Bus);
            }
        };
        let len = run.len - (offset - run.offset);
        let memory_offset = run.memory_offset + (offset - run.offset);
        let mut pma = Pma {
            start: at,
            end: at + len,
            file_offset: memory_offset,
            backing: run.backing,
            writable: false,
        };
        if vma.shared {
            if write || cache.is_anonymous() {
                cache.mark_dirty(offset, offset + len);
                pma.writable = true;
            }
        } else if write {
            pma = self.copy_pma(&pma)?;
        }
        if install {
            self.install(vma, &pma)?;
        }
        let end = pma.end;
        state.pmas.insert(pma);
        Ok(end)
    }

    /// A private, writable copy of `pma`'s pages.
    fn copy_pma(&self, pma: &Pma) -> Result<Pma, Fault> {
        let copy = self
            .private_pma(pma.start, pma.end)
            .map_err(|_| Fault::MapErr)?;
        self.file
            .copy_within(pma.file_offset, copy.file_offset, pma.len())
            .map_err(|_| Fault::MapErr)?;
        Ok(copy)
    }

    /// Lets the guest write `[lo, hi)` of `pma` (a part of it): marks shared file pages
    /// dirty, takes private memory nobody else holds as it is, copies the rest.
    fn make_writable(
        &self,
        state: &mut State,
        vma: &Vma,
        pma: &Pma,
        lo: u64,
        hi: u64,
        install: bool,
    ) -> Result<(), Fault> {
        let new = if vma.shared {
            if let Some((cache, offset)) = vma.cache_at(lo) {
                cache.mark_dirty(offset, offset + (hi - lo));
            }
            Pma {
                writable: true,
                ..pma.slice(lo, hi)
            }
        } else if pma.backing.exclusive() {
            // Nobody else holds these pages any more: the whole PMA is writable as is.
            Pma {
                writable: true,
                ..pma.clone()
            }
        } else {
            self.copy_pma(&pma.slice(lo, hi))?
        };
        if install {
            self.install(vma, &new)?;
        }
        self.replace_pma(state, new);
        Ok(())
    }

    /// Maps `pma` into the stub.
    fn install(&self, vma: &Vma, pma: &Pma) -> Result<(), Fault> {
        self.space
            .map_file(pma.start, pma.len(), pma.file_offset, stub_prot(vma, pma))
            .map_err(|e| {
                log::warn!("mapping guest memory failed: {e}");
                Fault::MapErr
            })
    }

    // ---- The Sentry's access to guest memory.

    /// Calls `f(memory-file offset, offset in the range, len)` for each piece of
    /// `[addr, addr + len)` after backing it for the access (`check`: only as the guest
    /// itself could access it). A write breaks copy-on-write first.
    fn with_memory(
        &self,
        addr: u64,
        len: u64,
        write: bool,
        check: bool,
        mut f: impl FnMut(u64, usize, usize) -> Result<(), Errno>,
    ) -> Result<(), Errno> {
        if len == 0 {
            return Ok(());
        }
        let end = addr.checked_add(len).ok_or(Errno::EFAULT)?;
        let mut state = self.lock();
        let mut at = addr;
        while at < end {
            let vma = self.vma_at(&mut state, at).ok_or(Errno::EFAULT)?;
            if check && !vma.allows(write) {
                return Err(Errno::EFAULT);
            }
            let stop = vma.end.min(end);
            let (lo, hi) = (page_down(at), page_up(stop).ok_or(Errno::EFAULT)?);
            // Reads never touch the stub (they may come from another process's thread);
            // writes replace what the stub maps when they copy.
            self.prepare(&mut state, &vma, lo, hi, write, write, hi)
                .map_err(|_| Errno::EFAULT)?;
            for pma in state.pmas.overlapping(at, stop) {
                let (s, e) = (pma.start.max(at), pma.end.min(stop));
                f(
                    pma.file_offset + (s - pma.start),
                    (s - addr) as usize,
                    (e - s) as usize,
                )?;
            }
            at = stop;
        }
        Ok(())
    }

    /// Copies guest memory at `addr` into `buf`; EFAULT unless all of it is readable.
    pub fn copy_in(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        self.with_memory(addr, buf.len() as u64, false, true, |offset, at, n| {
            self.file.read(offset, &mut buf[at..at + n])
        })
    }

    /// Copies `buf` to guest memory at `addr`; EFAULT unless all of it is writable.
    pub fn copy_out(&self, addr: u64, buf: &[u8]) -> Result<(), Errno> {
        self.with_memory(addr, buf.len() as u64, true, true, |offset, at, n| {
            self.file.write(offset, &buf[at..at + n])
        })
    }

    /// Writes guest memory whatever its protection, as the kernel does when loading a program.
    pub fn copy_out_force(&self, addr: u64, buf: &[u8]) -> Result<(), Errno> {
        self.with_memory(addr, buf.len() as u64, true, false, |offset, at, n| {
            self.file.write(offset, &buf[at..at + n])
        })
    }

    /// EFAULT unless `[addr, addr + len)` is mapped with the given access.
    pub fn check_access(&self, addr: u64, len: u64, write: bool) -> Result<(), Errno> {
        let end = addr.checked_add(len).ok_or(Errno::EFAULT)?;
        let mut state = self.lock();
        let mut at = addr;
        while at < end {
            let vma = self.vma_at(&mut state, at).ok_or(Errno::EFAULT)?;
            if !vma.allows(write) {
                return Err(Errno::EFAULT);
            }
            at = vma.end;
        }
        Ok(())
    }

    /// Reads a plain-old-data value from guest memory.
    pub fn read_obj<T: FromBytes + IntoBytes>(&self, addr: u64) -> Result<T, Errno> {
        let mut value = T::new_zeroed();
        self.copy_in(addr, value.as_mut_bytes())?;
        Ok(value)
    }

    /// Writes a plain-old-data value to guest memory.
    pub fn write_obj<T: IntoBytes + Immutable>(&self, addr: u64, value: &T) -> Result<(), Errno> {
        self.copy_out(addr, value.as_bytes())
    }

    /// Reads a NUL-terminated string of at most `max` bytes (without the NUL);
    /// ENAMETOOLONG if there is no NUL within `max + 1` bytes.
    pub fn read_cstring(&self, addr: u64, max: usize) -> Result<Vec<u8>, Errno> {
        let mut out = Vec::new();
        let mut chunk = [0u8; 256];
        let mut at = addr;
        loop {
            // Never cross into the next page in one read: it may be unmapped while the
            // string ends before it.
            let to_page_end = (PAGE_SIZE - at % PAGE_SIZE) as usize;
            let n = chunk.len().min(to_page_end);
            self.copy_in(at, &mut chunk[..n])?;
            if let Some(nul) = chunk[..n].iter().position(|&b| b == 0) {
                out.extend_from_slice(&chunk[..nul]);
                if out.len() > max {
                    return Err(Errno::ENAMETOOLONG);
                }
                return Ok(out);
            }
            out.extend_from_slice(&chunk[..n]);
            if out.len() > max {
                return Err(Errno::ENAMETOOLONG);
            }
            at = at.checked_add(n as u64).ok_or(Errno::EFAULT)?;
        }
    }

    /// Where a shared futex at `addr` lives: the page cache and offset of a shared
    /// mapping (None for private memory).
    pub fn shared_key(&self, addr: u64) -> Option<(usize, u64)> {
        let state = self.lock();
        let vma = state.vmas.get(addr)?;
        if !vma.shared {
            return None;
        }
        let (cache, offset) = vma.cache_at(addr)?;
        Some((Arc::as_ptr(cache) as usize, offset))
    }

    // ---- System V shared memory: segments are shared anonymous memory.

    /// shmdt, as Linux's: finds the first VMA at or above `addr` of shared anonymous
    /// memory whose offset in it is its distance from `addr` and whose cache `segment_size`
    /// knows (a segment's start, or a piece of one left by munmap or mprotect), and unmaps
    /// it with every later such VMA of the same segment up to the segment's size from
    /// `addr`. Caches are named by identity, as [`MemoryManager::shared_key`] names them
    /// (no reference is taken: a segment counts its attachments by references). Returns
    /// the segment's cache identity; EINVAL if there is no such VMA.
    pub fn detach_shared(
        &self,
        addr: u64,
        segment_size: impl Fn(usize) -> Option<u64>,
    ) -> Result<usize, Errno> {
        if !addr.is_multiple_of(PAGE_SIZE) {
            return Err(Errno::EINVAL);
        }
        let mut state = self.lock();
        // The identity of the cache `vma` maps if it is a piece of an attachment at `addr`.
        let piece_of = |vma: &Vma| {
            let cache = shared_anonymous(vma)?;
            let (_, offset) = vma.cache_at(vma.start)?;
            (vma.start >= addr && vma.start - addr == offset).then_some(Arc::as_ptr(cache) as usize)
        };
        let mut found: Option<(usize, u64)> = None;
        let mut ranges = Vec::new();
        for vma in state.vmas.overlapping(addr, u64::MAX) {
            match found {
                None => {
                    let Some(key) = piece_of(vma) else {
                        continue;
                    };
                    let Some(size) = segment_size(key) else {
                        continue;
                    };
                    let end = page_up(size).and_then(|s| addr.checked_add(s));
                    found = Some((key, end.unwrap_or(u64::MAX)));
                    ranges.push((vma.start, vma.end));
                }
                Some((key, end)) => {
                    if vma.end > end {
                        break;
                    }
                    if piece_of(vma) == Some(key) {
                        ranges.push((vma.start, vma.end));
                    }
                }
            }
        }
        let (key, _) = found.ok_or(Errno::EINVAL)?;
        for (start, end) in ranges {
            self.unmap_locked(&mut state, start, end)?;
        }
        Ok(key)
    }

    // ---- The program break, arguments and accounting.

    /// Records where the argument and environment strings and the initial stack were put.
    pub fn set_arg_env(&self, arg_env: ArgEnv) {
        self.lock().arg_env = arg_env;
    }

    pub fn arg_env(&self) -> ArgEnv {
        self.lock().arg_env
    }

    /// Sets where the program break starts (after loading an executable).
    pub fn set_brk_start(&self, addr: u64) {
        let mut state = self.lock();
        state.brk_start = addr;
        state.brk = addr;
    }

    /// Where the program break started and where it is now (`start_brk`, `brk`).
    pub fn brk_range(&self) -> (u64, u64) {
        let state = self.lock();
        (state.brk_start, state.brk)
    }

    /// brk: moves the program break and returns the new one, or the old one on failure.
    pub fn brk(&self, addr: u64) -> u64 {
        let mut state = self.lock();
        let old = state.brk;
        if addr < state.brk_start || addr - state.brk_start > state.limits.data {
            return old;
        }
        let (Some(old_top), Some(new_top)) = (page_up(old), page_up(addr)) else {
            return old;
        };
        if new_top > old_top {
            // As Linux, the page above the new break must be free too.
            let guard = new_top.saturating_add(PAGE_SIZE);
            if new_top > self.layout.max || state.vmas.overlaps(old_top, guard) {
                return old;
            }
            drop(state);
            let placement = Placement::Fixed(old_top);
            let heap = Mapping::anonymous(PROT_READ | PROT_WRITE);
            if self.map(placement, new_top - old_top, heap).is_err() {
                return old;
            }
            state = self.lock();
        } else if new_top < old_top && self.unmap_locked(&mut state, new_top, old_top).is_err() {
            return old;
        }
        state.brk = addr;
        addr
    }

    /// The VMAs, in address order (for /proc and diagnostics).
    pub fn vmas(&self) -> Vec<Vma> {
        self.lock().vmas.iter().cloned().collect()
    }

    /// Bytes of `[start, end)` that hold pages: private memory the guest touched and the
    /// cached file pages it maps.
    pub fn resident(&self, start: u64, end: u64) -> u64 {
        let state = self.lock();
        state
            .pmas
            .overlapping(start, end)
            .map(|p| {
                let (s, e) = (p.start.max(start), p.end.min(end));
                self.pma_resident(p, s, e)
            })
            .sum()
    }

    fn pma_resident(&self, pma: &Pma, start: u64, end: u64) -> u64 {
        self.file
            .resident(pma.file_offset + (start - pma.start), end - start)
    }

    /// Memory use as /proc/PID/status shows it.
    pub fn usage(&self) -> Usage {
        let state = self.lock();
        let mut usage = Usage::default();
        for vma in state.vmas.iter() {
            usage.size += vma.len();
            if vma.flags.locked {
                usage.locked += vma.len();
            }
            if vma.flags.growsdown {
                usage.stack += vma.len();
            } else if is_data(vma) {
                usage.data += vma.len();
            }
        }
        for pma in state.pmas.iter() {
            let resident = self.pma_resident(pma, pma.start, pma.end);
            let Some(vma) = state.vmas.get(pma.start) else {
                continue;
            };
            match &vma.source {
                _ if !pma.backing.cache => usage.rss_anon += resident,
                Source::Cache { file: None, .. } => usage.rss_shmem += resident,
                _ => usage.rss_file += resident,
            }
        }
        usage
    }

    // ---- fork.

    /// fork: the child's view of this address space, taken now (the caller's task is
    /// stopped). Private memory becomes copy-on-write in both; shared memory stays shared;
    /// MADV_DONTFORK mappings stay out and MADV_WIPEONFORK ones start empty.
    pub fn fork(&self) -> Result<ForkedMemory, Errno> {
        let mut state = self.lock();
        let mut child = State {
            brk_start: state.brk_start,
            brk: state.brk,
            arg_env: state.arg_env,
            limits: state.limits,
            lock_future: false,
            ..State::default()
        };
        let mut shared_now: HashSet<*const Backing> = HashSet::new();
        let mut protect: Vec<(u64, u64)> = Vec::new();
        let vmas: Vec<Vma> = state.vmas.iter().cloned().collect();
        for vma in vmas {
            if vma.flags.dontfork {
                continue;
            }
            // Locks are not inherited (mlock(2)).
            child.vmas.insert(Vma {
                flags: VmaFlags {
                    locked: false,
                    ..vma.flags
                },
                ..vma.clone()
            });
            if vma.flags.wipeonfork {
                continue;
            }
            let pmas: Vec<Pma> = state
                .pmas
                .overlapping(vma.start, vma.end)
                .map(|p| p.slice(p.start.max(vma.start), p.end.min(vma.end)))
                .collect();
            for mut pma in pmas {
                if !pma.backing.cache {
                    if shared_now.insert(Arc::as_ptr(&pma.backing)) {
                        pma.backing.share();
                    }
                    if pma.writable {
                        pma.writable = false;
                        match protect.last_mut() {
                            Some(last) if last.1 == pma.start => last.1 = pma.end,
                            _ => protect.push((pma.start, pma.end)),
                        }
                        state.pmas.carve(pma.start, pma.end);
                        state.pmas.insert(pma.clone());
                    }
                }
                child.pmas.insert(pma);
            }
        }
        // The parent's writable private pages become read-only until written again.
        for (start, end) in protect {
            self.sync_protection(&state, start, end)?;
        }
        Ok(ForkedMemory {
            state: child,
            layout: self.layout,
        })
    }

    /// The child's memory manager over `space`, a new address space on the child's thread.
    /// Its pages reach the stub as the child touches them.
    pub fn from_fork(
        space: Box<dyn AddressSpace>,
        file: Arc<MemoryFile>,
        forked: ForkedMemory,
    ) -> Result<MemoryManager, Errno> {
        Ok(MemoryManager {
            space,
            file,
            layout: forked.layout,
            state: Mutex::new(forked.state),
        })
    }

    // ---- mremap, madvise, mincore, mlock, msync.

    /// mremap: resizes or moves the mapping at `old` (`flags`: MREMAP_*); returns its new
    /// address.
    pub fn remap(
        &self,
        old: u64,
        old_len: u64,
        new_len: u64,
        flags: u64,
        new_addr: u64,
    ) -> Result<u64, Errno> {
        const MAYMOVE: u64 = 1;
        const FIXED: u64 = 2;
        const DONTUNMAP: u64 = 4;
        if flags & !(MAYMOVE | FIXED | DONTUNMAP) != 0
            || !old.is_multiple_of(PAGE_SIZE)
            || (flags & (FIXED | DONTUNMAP) != 0 && flags & MAYMOVE == 0)
        {
            return Err(Errno::EINVAL);
        }
        if flags & DONTUNMAP != 0 && old_len != new_len {
            return Err(Errno::EINVAL);
        }
        let old_len = page_up(old_len).ok_or(Errno::EINVAL)?;
        let new_len = page_up(new_len).filter(|&l| l > 0).ok_or(Errno::EINVAL)?;
        let old_end = old.checked_add(old_len).ok_or(Errno::EINVAL)?;
        if flags & FIXED != 0 {
            let new_end = new_addr.checked_add(new_len).ok_or(Errno::EINVAL)?;
            // The new range may not overlap the old one, counted at its larger size.
            let old_reach = old.saturating_add(old_len.max(new_len)).max(old + 1);
            if !new_addr.is_multiple_of(PAGE_SIZE) || (new_addr < old_reach && old < new_end) {
                return Err(Errno::EINVAL);
            }
        }
        let mut state = self.lock();
        let vma = state.vmas.get(old).cloned().ok_or(Errno::EFAULT)?;
        if old_end > vma.end {
            return Err(Errno::EFAULT);
        }
        if old_len == 0 {
            // A second mapping of the same shared pages.
            if !vma.shared || flags & MAYMOVE == 0 {
                return Err(Errno::EINVAL);
            }
        }
        if flags & (FIXED | DONTUNMAP) == 0 {
            if new_len <= old_len && old_len > 0 {
                self.unmap_locked(&mut state, old + new_len, old_end)?;
                return Ok(old);
            }
            // Grow in place if the pages above are free.
            let grown_end = old.checked_add(new_len).ok_or(Errno::ENOMEM)?;
            if old_len > 0
                && old_end == vma.end
                && grown_end <= self.layout.max
                && !state.vmas.overlaps(old_end, grown_end)
            {
                let grown = Vma {
                    end: grown_end,
                    ..vma.clone()
                };
                state.check_growth(&grown, old_end, grown_end)?;
                state.vmas.remove(vma.start);
                state.insert_vma(grown);
                return Ok(old);
            }
            if flags & MAYMOVE == 0 {
                return Err(Errno::ENOMEM);
            }
        }
        let target = if flags & FIXED != 0 {
            if new_addr < self.layout.min {
                return Err(Errno::EPERM);
            }
            if new_addr + new_len > self.layout.max {
                return Err(Errno::ENOMEM);
            }
            new_addr
        } else {
            self.find_free(&state, 0, new_len)?
        };
        // The moved mapping: the old one from `old`, longer or shorter.
        let keep = old_len.min(new_len);
        let mut moved = vma.slice(old, vma.end);
        moved.start = target;
        moved.end = target + new_len;
        if old_len > new_len || flags & DONTUNMAP != 0 {
            state.check_growth(&moved, target, target)?;
        } else {
            state.check_growth(&moved, target, target + new_len - old_len)?;
        }
        if flags & FIXED != 0 {
            self.unmap_locked(&mut state, target, target + new_len)?;
        }
        // Move the pages: they reach the stub at their new place on the next access.
        let pmas = if old_len > 0 {
            let pieces = state.pmas.carve(old, old + keep);
            if let Err(e) = self.space.unmap(old, keep) {
                log::warn!("unmapping moved guest memory failed: {e}");
            }
            pieces
        } else {
            Vec::new()
        };
        for mut pma in pmas {
            let len = pma.len();
            pma.start = target + (pma.start - old);
            pma.end = pma.start + len;
            state.pmas.insert(pma);
        }
        if flags & DONTUNMAP == 0 && old_len > 0 {
            self.unmap_locked(&mut state, old, old_end)?;
        }
        state.insert_vma(moved);
        Ok(target)
    }

    /// madvise: `advice` over `[addr, addr + len)`. Advice that only informs is accepted
    /// and ignored; ENOMEM (after acting on the mapped parts) if part of the range is not
    /// mapped.
    pub fn advise(&self, addr: u64, len: u64, advice: u64) -> Result<(), Errno> {
        const WILLNEED: u64 = 3;
        const DONTNEED: u64 = 4;
        const FREE: u64 = 8;
        const REMOVE: u64 = 9;
        const DONTFORK: u64 = 10;
        const DOFORK: u64 = 11;
        const WIPEONFORK: u64 = 18;
        const KEEPONFORK: u64 = 19;
        const POPULATE_READ: u64 = 22;
        const POPULATE_WRITE: u64 = 23;
        const DONTNEED_LOCKED: u64 = 24;
        // 0-2 access patterns, 14-17 huge pages and dumps, 20-21 reclaim, 25 collapse: hints.
        // 12-13 (MADV_MERGEABLE) need KSM, which this kernel does not have: EINVAL as Linux
        // without CONFIG_KSM.
        let known = matches!(advice, 0..=4 | 8..=11 | 14..=25);
        if !known || !addr.is_multiple_of(PAGE_SIZE) {
            return Err(Errno::EINVAL);
        }
        let Some(end) = page_up(len).and_then(|l| addr.checked_add(l)) else {
            return Err(Errno::EINVAL);
        };
        if end == addr {
            return Ok(());
        }
        let mut state = self.lock();
        let vmas: Vec<Vma> = state.vmas.overlapping(addr, end).cloned().collect();
        let covered = state.vmas.covers(addr, end);
        for vma in &vmas {
            let (s, e) = (addr.max(vma.start), end.min(vma.end));
            match advice {
                DONTNEED | DONTNEED_LOCKED | FREE => {
                    if advice == FREE && !matches!(vma.source, Source::Anonymous) {
                        return Err(Errno::EINVAL);
                    }
                    if advice == DONTNEED && vma.flags.locked {
                        return Err(Errno::EINVAL);
                    }
                    // The pages go: private ones read as zeros (or the file) again, shared
                    // ones as the cache has them.
                    if state.pmas.overlaps(s, e) {
                        if let Err(err) = self.space.unmap(s, e - s) {
                            log::warn!("dropping guest memory failed: {err}");
                            return Err(Errno::ENOMEM);
                        }
                        self.drop_pmas(&mut state, s, e);
                    }
                }
                REMOVE => {
                    // The pages and the file's bytes under them go (a hole punched).
                    if vma.flags.locked || matches!(vma.source, Source::Anonymous) {
                        return Err(Errno::EINVAL);
                    }
                    if !vma.shared || vma.max_prot & PROT_WRITE == 0 {
                        return Err(Errno::EACCES);
                    }
                    if let Some((cache, offset)) = vma.cache_at(s) {
                        match vma.file() {
                            Some(file) => file.punch_hole(offset, e - s)?,
                            None => cache.zero(offset, offset + (e - s)),
                        }
                    }
                }
                WILLNEED | POPULATE_READ | POPULATE_WRITE => {
                    let write = advice == POPULATE_WRITE;
                    if write && !vma.allows(true) || vma.prot == PROT_NONE {
                        if advice != WILLNEED {
                            return Err(Errno::EFAULT);
                        }
                        continue;
                    }
                    let done = if advice == WILLNEED {
                        self.prepare(&mut state, vma, s, e, false, false, s)
                    } else {
                        self.populate(&mut state, vma, s, e, write)
                    };
                    if let Err(f) = done {
                        if advice != WILLNEED {
                            return Err(if f == Fault::Bus {
                                Errno::EFAULT
                            } else {
                                Errno::ENOMEM
                            });
                        }
                    }
                }
                DONTFORK | DOFORK | WIPEONFORK | KEEPONFORK => {
                    if advice == WIPEONFORK && !matches!(vma.source, Source::Anonymous) {
                        return Err(Errno::EINVAL);
                    }
                    for mut piece in state.vmas.carve(s, e) {
                        match advice {
                            DONTFORK => piece.flags.dontfork = true,
                            DOFORK => piece.flags.dontfork = false,
                            WIPEONFORK => piece.flags.wipeonfork = true,
                            _ => piece.flags.wipeonfork = false,
                        }
                        state.insert_vma(piece);
                    }
                }
                // Hints about access patterns, huge pages, dumps and reclaim.
                _ => {}
            }
        }
        if covered {
            Ok(())
        } else {
            Err(Errno::ENOMEM)
        }
    }

    /// mincore: one byte per page of `[addr, addr + len)`, 1 if the page is in memory.
    pub fn mincore(&self, addr: u64, len: u64) -> Result<Vec<u8>, Errno> {
        if !addr.is_multiple_of(PAGE_SIZE) {
            return Err(Errno::EINVAL);
        }
        let end = page_up(len)
            .and_then(|l| addr.checked_add(l))
            .ok_or(Errno::ENOMEM)?;
        if end > crate::abi::TASK_SIZE_MAX {
            return Err(Errno::ENOMEM);
        }
        let state = self.lock();
        if !state.vmas.covers(addr, end) {
            return Err(Errno::ENOMEM);
        }
        let mut out = Vec::with_capacity(((end - addr) / PAGE_SIZE) as usize);
        let mut page = addr;
        while page < end {
            let resident = match state.pmas.get(page) {
                Some(pma) => {
                    pma.backing.cache || self.pma_resident(pma, page, page + PAGE_SIZE) > 0
                }
                None => state
                    .vmas
                    .get(page)
                    .and_then(|v| v.cache_at(page))
                    .is_some_and(|(cache, offset)| cache.is_cached(offset)),
            };
            out.push(resident as u8);
            page += PAGE_SIZE;
        }
        Ok(out)
    }

    /// mlock (`on`) or munlock over `[addr, addr + len)`; ENOMEM if part of it is not
    /// mapped or the lock limit would be passed. Locked pages are backed at once unless
    /// `on_fault` (MLOCK_ONFAULT).
    pub fn set_locked(&self, addr: u64, len: u64, on: bool, on_fault: bool) -> Result<(), Errno> {
        let start = page_down(addr);
        let end = addr
            .checked_add(len)
            .and_then(page_up)
            .ok_or(Errno::EINVAL)?;
        if end == start {
            return Ok(());
        }
        let mut state = self.lock();
        if !state.vmas.covers(start, end) {
            return Err(Errno::ENOMEM);
        }
        if on {
            state.check_lock(start, end, false)?;
        }
        for mut piece in state.vmas.carve(start, end) {
            piece.flags.locked = on;
            state.insert_vma(piece);
        }
        if on && !on_fault {
            self.populate_all(&mut state, start, end);
        }
        Ok(())
    }

    /// mlockall (`current`, `future`: MCL_CURRENT, MCL_FUTURE) and munlockall (both false,
    /// `unlock`).
    pub fn lock_all(&self, current: bool, future: bool, on_fault: bool) -> Result<(), Errno> {
        let mut state = self.lock();
        if current {
            let total = state.total();
            if !state.limits.lock_unlimited && total > state.limits.memlock {
                return Err(Errno::ENOMEM);
            }
            let all: Vec<Vma> = state.vmas.iter().cloned().collect();
            for mut vma in all {
                vma.flags.locked = true;
                state.vmas.replace(vma);
            }
            if !on_fault {
                self.populate_all(&mut state, 0, u64::MAX);
            }
        }
        state.lock_future = future;
        Ok(())
    }

    pub fn unlock_all(&self) {
        let mut state = self.lock();
        let all: Vec<Vma> = state.vmas.iter().cloned().collect();
        for mut vma in all {
            vma.flags.locked = false;
            state.vmas.replace(vma);
        }
        state.lock_future = false;
    }

    /// Backs every accessible page of the VMAs in `[start, end)` with memory (mlock,
    /// MAP_LOCKED, MAP_POPULATE). Failures are not reported, as Linux's mm_populate.
    fn populate_all(&self, state: &mut State, start: u64, end: u64) {
        let vmas: Vec<Vma> = state.vmas.overlapping(start, end).cloned().collect();
        for vma in vmas {
            if vma.prot == PROT_NONE {
                continue;
            }
            let (s, e) = (start.max(vma.start), end.min(vma.end));
            let write = vma.allows(true) && !vma.shared;
            let _ = self.populate(state, &vma, s, e, write);
        }
    }

    /// Backs `[start, end)` of `vma` and makes its private pages exist in the host now.
    fn populate(
        &self,
        state: &mut State,
        vma: &Vma,
        start: u64,
        end: u64,
        write: bool,
    ) -> Result<(), Fault> {
        self.prepare(state, vma, start, end, write, true, start)?;
        for pma in state.pmas.overlapping(start, end) {
            if !pma.backing.cache {
                let (s, e) = (pma.start.max(start), pma.end.min(end));
                let _ = self.file.populate(pma.file_offset + (s - pma.start), e - s);
            }
        }
        Ok(())
    }

    /// msync: writes what shared file mappings in `[addr, addr + len)` wrote back to their
    /// files; ENOMEM if part of the range is not mapped.
    pub fn sync(&self, addr: u64, len: u64, invalidate: bool) -> Result<(), Errno> {
        if !addr.is_multiple_of(PAGE_SIZE) {
            return Err(Errno::EINVAL);
        }
        let end = page_up(len)
            .and_then(|l| addr.checked_add(l))
            .ok_or(Errno::ENOMEM)?;
        let state = self.lock();
        // MS_INVALIDATE cannot drop locked pages.
        if invalidate && state.vmas.overlapping(addr, end).any(|v| v.flags.locked) {
            return Err(Errno::EBUSY);
        }
        for vma in state.vmas.overlapping(addr, end) {
            self.write_back(vma, addr.max(vma.start), end.min(vma.end));
        }
        if state.vmas.covers(addr, end) {
            Ok(())
        } else {
            Err(Errno::ENOMEM)
        }
    }
}

impl std::fmt::Debug for MemoryManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryManager").finish_non_exhaustive()
    }
}

impl Drop for MemoryManager {
    fn drop(&mut self) {
        let mut state = std::mem::take(self.state.get_mut().unwrap_or_else(|e| e.into_inner()));
        // What shared file mappings wrote goes to the files (exit, exec).
        let vmas: Vec<Vma> = state.vmas.iter().cloned().collect();
        for vma in &vmas {
            self.write_back(vma, vma.start, vma.end);
        }
        // Take the pages out of the guest before the file ranges can be handed to another
        // address space (the stub itself dies when `space` is dropped after this).
        if let (Some(first), Some(last)) = (vmas.first(), vmas.last()) {
            let _ = self.space.unmap(first.start, last.end - first.start);
        }
        let mut seen: HashSet<*const Backing> = HashSet::new();
        for pma in state.pmas.iter() {
            if !pma.backing.cache && seen.insert(Arc::as_ptr(&pma.backing)) {
                pma.backing.unshare();
            }
        }
        // Each backing returns to the file when its last PMA goes.
        state.pmas.clear();
        state.vmas.clear();
    }
}

impl State {
    /// Bytes mapped.
    fn total(&self) -> u64 {
        self.vmas.iter().map(|v| v.len()).sum()
    }

    /// Inserts `vma`, merged with its neighbours where they continue each other.
    fn insert_vma(&mut self, mut vma: Vma) {
        if let Some(prev) = self.vmas.prev_before(vma.start).cloned() {
            if prev.merges_with(&vma) {
                self.vmas.remove(prev.start);
                vma = Vma {
                    end: vma.end,
                    ..prev
                };
            }
        }
        if let Some(next) = self.vmas.get(vma.end).cloned() {
            if vma.merges_with(&next) {
                self.vmas.remove(next.start);
                vma.end = next.end;
            }
        }
        self.vmas.insert(vma);
    }

    /// ENOMEM if mapping `vma`'s new part `[start, end)` (replacing what is there) would
    /// pass RLIMIT_AS or, for private writable memory, RLIMIT_DATA.
    fn check_growth(&self, vma: &Vma, start: u64, end: u64) -> Result<(), Errno> {
        let replaced: u64 = self
            .vmas
            .overlapping(start, end)
            .map(|v| v.end.min(end) - v.start.max(start))
            .sum();
        let added = (end - start).saturating_sub(replaced);
        if self.total().saturating_add(added) > self.limits.address_space {
            return Err(Errno::ENOMEM);
        }
        if is_data(vma) {
            let data: u64 = self
                .vmas
                .iter()
                .filter(|v| is_data(v))
                .map(|v| v.len())
                .sum();
            if data.saturating_add(added) > self.limits.data {
                return Err(Errno::ENOMEM);
            }
        }
        Ok(())
    }

    /// ENOMEM (EPERM with a zero limit) if locking `[start, end)` more would pass
    /// RLIMIT_MEMLOCK. `new`: the range is about to be mapped.
    fn check_lock(&self, start: u64, end: u64, new: bool) -> Result<(), Errno> {
        if self.limits.lock_unlimited {
            return Ok(());
        }
        if self.limits.memlock == 0 {
            return Err(Errno::EPERM);
        }
        let locked: u64 = self
            .vmas
            .iter()
            .filter(|v| v.flags.locked)
            .map(|v| v.len())
            .sum();
        let already: u64 = if new {
            0
        } else {
            self.vmas
                .overlapping(start, end)
                .filter(|v| v.flags.locked)
                .map(|v| v.end.min(end) - v.start.max(start))
                .sum()
        };
        if locked + (end - start) - already > self.limits.memlock {
            return Err(Errno::ENOMEM);
        }
        Ok(())
    }

    /// The highest free range of `len` bytes in `[low, high)`, keeping the guard gap below
    /// stacks.
    fn highest_gap(&self, low: u64, high: u64, len: u64) -> Option<u64> {
        let mut end = high;
        for vma in self.vmas.iter().rev().filter(|v| v.start < high) {
            let floor = if vma.flags.growsdown {
                vma.start.saturating_sub(STACK_GUARD_GAP)
            } else {
                vma.start
            };
            if vma.end <= end && end - vma.end >= len && end - len >= low {
                return Some(end - len);
            }
            end = end.min(floor);
        }
        (end >= low && end - low >= len).then(|| end - len)
    }
}

/// Whether `vma` counts as data for RLIMIT_DATA (Linux's is_data_mapping: private,
/// writable, not a stack).
fn is_data(vma: &Vma) -> bool {
    vma.prot & PROT_WRITE != 0 && !vma.shared && !vma.flags.growsdown
}

/// The cache of `vma` if it maps shared anonymous memory (MAP_SHARED|MAP_ANONYMOUS, or a
/// System V segment).
fn shared_anonymous(vma: &Vma) -> Option<&Arc<PageCache>> {
    match &vma.source {
        Source::Cache {
            cache, file: None, ..
        } if vma.shared => Some(cache),
        _ => None,
    }
}

/// The protection the stub maps `pma` with inside `vma`.
fn stub_prot(vma: &Vma, pma: &Pma) -> Prot {
    if pma.writable {
        vma.prot
    } else {
        vma.prot & !PROT_WRITE
    }
}

/// The aligned window of `size` bytes around `page`, inside `vma` and, for a cache, inside
/// one chunk.
fn window(vma: &Vma, page: u64, size: u64) -> (u64, u64) {
    let mut lo = (page - page % size).max(vma.start);
    let mut hi = (page - page % size).saturating_add(size).min(vma.end);
    if let Some((_, offset)) = vma.cache_at(page) {
        let chunk_lo = page - offset % page_cache::CHUNK;
        lo = lo.max(chunk_lo);
        hi = hi.min(chunk_lo + page_cache::CHUNK);
    }
    (lo, hi)
}
