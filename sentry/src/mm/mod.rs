//! The memory manager: a guest address space as a tree of VMAs over the memory file.
//!
//! Every VMA owns a range of the memory file (`file_offset` is where its first page lives).
//! A change to the VMAs is mirrored into the platform's address space at once, so the guest
//! never faults on memory the Sentry thinks is mapped. Guest memory is read and written only
//! through [`MemoryManager::copy_in`] / [`MemoryManager::copy_out`], which follow the VMAs and
//! answer `EFAULT` for anything the guest could not access itself.

pub mod memory_file;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use platform::{AddressSpace, Prot};
use zerocopy::{FromBytes, Immutable, IntoBytes};

use crate::abi::{page_down, page_up, Errno, PAGE_SIZE};
pub use memory_file::MemoryFile;

pub const PROT_NONE: Prot = libc::PROT_NONE;
pub const PROT_READ: Prot = libc::PROT_READ;
pub const PROT_WRITE: Prot = libc::PROT_WRITE;
pub const PROT_EXEC: Prot = libc::PROT_EXEC;

/// A range of the memory file that VMAs map. It goes back to the file when the last VMA
/// using it is gone: the pieces of a split VMA share it, and so do parent and child for a
/// shared mapping after fork.
pub struct Backing {
    file: Arc<MemoryFile>,
    offset: u64,
    len: u64,
}

impl std::fmt::Debug for Backing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Backing({:#x}+{:#x})", self.offset, self.len)
    }
}

impl Backing {
    fn allocate(file: &Arc<MemoryFile>, len: u64) -> Result<Arc<Backing>, Errno> {
        Ok(Arc::new(Backing {
            file: file.clone(),
            offset: file.allocate(len)?,
            len,
        }))
    }
}

impl Drop for Backing {
    fn drop(&mut self) {
        self.file.free(self.offset, self.len);
    }
}

/// One mapping: `[start, end)` backed by the memory file from `file_offset`, which lies in
/// `backing`.
#[derive(Debug, Clone)]
pub struct Vma {
    pub start: u64,
    pub end: u64,
    pub prot: Prot,
    pub shared: bool,
    pub file_offset: u64,
    backing: Arc<Backing>,
}

impl PartialEq for Vma {
    fn eq(&self, other: &Vma) -> bool {
        (
            self.start,
            self.end,
            self.prot,
            self.shared,
            self.file_offset,
        ) == (
            other.start,
            other.end,
            other.prot,
            other.shared,
            other.file_offset,
        ) && Arc::ptr_eq(&self.backing, &other.backing)
    }
}

impl Vma {
    fn len(&self) -> u64 {
        self.end - self.start
    }

    /// Whether the guest itself could access this VMA the given way (on x86, any access
    /// permission implies read).
    fn allows(&self, write: bool) -> bool {
        if write {
            self.prot & PROT_WRITE != 0
        } else {
            self.prot != PROT_NONE
        }
    }
}

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

/// A forked child's memory before it has an address space: the parent's VMAs with private
/// memory copied and shared memory shared, and the program break.
#[derive(Debug)]
pub struct ForkedMemory {
    vmas: Vec<Vma>,
    brk_start: u64,
    brk: u64,
    arg_env: ArgEnv,
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

/// A guest address space. `state` guards the VMAs and the program break.
pub struct MemoryManager {
    space: Box<dyn AddressSpace>,
    file: Arc<MemoryFile>,
    layout: Layout,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// VMAs by start address; they never overlap.
    vmas: BTreeMap<u64, Vma>,
    brk_start: u64,
    brk: u64,
    arg_env: ArgEnv,
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

    /// fork: a copy of this address space's memory, taken now (the caller's task is
    /// stopped, so nothing changes during the copy). Private memory is copied, without its
    /// untouched pages; shared memory stays shared.
    pub fn fork(&self) -> Result<ForkedMemory, Errno> {
        let state = self.lock();
        let mut vmas = Vec::with_capacity(state.vmas.len());
        for vma in state.vmas.values() {
            if vma.shared {
                vmas.push(vma.clone());
                continue;
            }
            let backing = Backing::allocate(&self.file, vma.len())?;
            self.file
                .copy_within(vma.file_offset, backing.offset, vma.len())?;
            vmas.push(Vma {
                file_offset: backing.offset,
                backing,
                ..vma.clone()
            });
        }
        Ok(ForkedMemory {
            vmas,
            brk_start: state.brk_start,
            brk: state.brk,
            arg_env: state.arg_env,
            layout: self.layout,
        })
    }

    /// The child's memory manager over `space`, a new address space on the child's thread.
    pub fn from_fork(
        space: Box<dyn AddressSpace>,
        file: Arc<MemoryFile>,
        forked: ForkedMemory,
    ) -> Result<MemoryManager, Errno> {
        let mm = MemoryManager::new(space, file, forked.layout);
        {
            let mut state = mm.lock();
            state.brk_start = forked.brk_start;
            state.brk = forked.brk;
            state.arg_env = forked.arg_env;
            for vma in forked.vmas {
                mm.space
                    .map_file(vma.start, vma.len(), vma.file_offset, vma.prot)
                    .map_err(|e| {
                        log::warn!("mapping a forked child's memory failed: {e}");
                        Errno::ENOMEM
                    })?;
                state.vmas.insert(vma.start, vma);
            }
        }
        Ok(mm)
    }

    pub fn address_space(&self) -> &dyn AddressSpace {
        self.space.as_ref()
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Maps `len` bytes of fresh zeroed memory; returns the address.
    pub fn map_anonymous(
        &self,
        placement: Placement,
        len: u64,
        prot: Prot,
        shared: bool,
    ) -> Result<u64, Errno> {
        let mut state = self.lock();
        self.map_locked(&mut state, placement, len, prot, shared)
    }

    fn map_locked(
        &self,
        state: &mut State,
        placement: Placement,
        len: u64,
        prot: Prot,
        shared: bool,
    ) -> Result<u64, Errno> {
        let len = page_up(len).filter(|&l| l > 0).ok_or(Errno::ENOMEM)?;
        let start = match placement {
            Placement::Fixed(addr) | Placement::FixedNoReplace(addr) => {
                if addr % PAGE_SIZE != 0 {
                    return Err(Errno::EINVAL);
                }
                let end = addr.checked_add(len).ok_or(Errno::ENOMEM)?;
                if addr < self.layout.min {
                    return Err(Errno::EPERM);
                }
                if end > self.layout.max {
                    return Err(Errno::ENOMEM);
                }
                if matches!(placement, Placement::FixedNoReplace(_)) && state.overlaps(addr, end) {
                    return Err(Errno::EEXIST);
                }
                addr
            }
            Placement::Hint(hint) => self.find_free(state, page_down(hint), len)?,
            Placement::Within { low, high } => Self::highest_gap(
                state,
                low.max(self.layout.min),
                high.min(self.layout.max),
                len,
            )
            .ok_or(Errno::ENOMEM)?,
        };
        let backing = Backing::allocate(&self.file, len)?;
        let file_offset = backing.offset;
        // The host mapping replaces whatever was there (MAP_FIXED) in one step; only once
        // it succeeded do the old VMAs go, so the Sentry's view never departs from the stub's.
        if let Err(e) = self.space.map_file(start, len, file_offset, prot) {
            log::warn!("mapping guest memory failed: {e}");
            return Err(Errno::ENOMEM);
        }
        for old in state.carve(start, start + len) {
            self.release(old);
        }
        let vma = Vma {
            start,
            end: start + len,
            prot,
            shared,
            file_offset,
            backing,
        };
        state.vmas.insert(start, vma);
        Ok(start)
    }

    /// The highest free range of `len` bytes in `[low, high)`.
    fn highest_gap(state: &State, low: u64, high: u64, len: u64) -> Option<u64> {
        let mut end = high;
        for vma in state.vmas.range(..high).rev().map(|(_, v)| v) {
            if vma.end <= end && end - vma.end >= len && end - len >= low {
                return Some(end - len);
            }
            end = end.min(vma.start);
        }
        (end >= low && end - low >= len).then(|| end - len)
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
                .is_some_and(|e| e <= max && !state.overlaps(hint, e))
        {
            return Ok(hint);
        }
        Self::highest_gap(state, min, mmap_base, len)
            .or_else(|| Self::highest_gap(state, min, max, len))
            .ok_or(Errno::ENOMEM)
    }

    /// munmap: removes every mapping in `[addr, addr + len)`.
    pub fn unmap(&self, addr: u64, len: u64) -> Result<(), Errno> {
        if !addr.is_multiple_of(PAGE_SIZE) || len == 0 {
            return Err(Errno::EINVAL);
        }
        let end = page_up(len)
            .and_then(|l| addr.checked_add(l))
            .ok_or(Errno::EINVAL)?;
        if end > crate::abi::TASK_SIZE_MAX {
            return Err(Errno::EINVAL);
        }
        let mut state = self.lock();
        self.unmap_locked(&mut state, addr, end)
    }

    fn unmap_locked(&self, state: &mut State, start: u64, end: u64) -> Result<(), Errno> {
        // Only the span that is mapped goes to the host: never beyond the guest's layout
        // (the platform's own pages may live there).
        let hit: Vec<&Vma> = state
            .vmas
            .range(..end)
            .rev()
            .take_while(|(_, v)| v.end > start)
            .map(|(_, v)| v)
            .collect();
        let (Some(highest), Some(lowest)) = (hit.first(), hit.last()) else {
            return Ok(());
        };
        let (first, last) = (lowest.start.max(start), highest.end.min(end));
        if let Err(e) = self.space.unmap(first, last - first) {
            // Nothing changed in the stub's mappings as far as we know: keep our view too.
            log::warn!("unmapping guest memory failed: {e}");
            return Err(Errno::ENOMEM);
        }
        for vma in state.carve(start, end) {
            self.release(vma);
        }
        Ok(())
    }

    /// Drops a VMA that left the address space. Its private pages go back to the host at
    /// once (no other VMA maps them); a shared backing waits for its last user.
    fn release(&self, vma: Vma) {
        if !vma.shared {
            if let Err(e) = self.file.punch(vma.file_offset, vma.len()) {
                log::warn!("releasing unmapped guest memory failed: {e}");
            }
        }
    }

    /// mprotect: every page of `[addr, addr + len)` must be mapped (else ENOMEM).
    pub fn protect(&self, addr: u64, len: u64, prot: Prot) -> Result<(), Errno> {
        if !addr.is_multiple_of(PAGE_SIZE) {
            return Err(Errno::EINVAL);
        }
        if len == 0 {
            return Ok(());
        }
        let end = page_up(len)
            .and_then(|l| addr.checked_add(l))
            .ok_or(Errno::ENOMEM)?;
        let mut state = self.lock();
        if !state.covered(addr, end) {
            return Err(Errno::ENOMEM);
        }
        self.space.protect(addr, end - addr, prot).map_err(|e| {
            log::warn!("protecting guest memory failed: {e}");
            Errno::ENOMEM
        })?;
        for mut vma in state.carve(addr, end) {
            vma.prot = prot;
            state.vmas.insert(vma.start, vma);
        }
        Ok(())
    }

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

    /// How many bytes of `vma` hold pages (its resident set): memory never touched is a
    /// hole in the memory file.
    pub fn resident(&self, vma: &Vma) -> u64 {
        self.file.resident(vma.file_offset, vma.len())
    }

    /// brk: moves the program break and returns the new one, or the old one on failure.
    pub fn brk(&self, addr: u64) -> u64 {
        let mut state = self.lock();
        let old = state.brk;
        if addr < state.brk_start {
            return old;
        }
        let (Some(old_top), Some(new_top)) = (page_up(old), page_up(addr)) else {
            return old;
        };
        if new_top > old_top {
            if new_top > self.layout.max || state.overlaps(old_top, new_top) {
                return old;
            }
            let rw = PROT_READ | PROT_WRITE;
            let placement = Placement::Fixed(old_top);
            if self
                .map_locked(&mut state, placement, new_top - old_top, rw, false)
                .is_err()
            {
                return old;
            }
        } else if new_top < old_top && self.unmap_locked(&mut state, new_top, old_top).is_err() {
            return old;
        }
        state.brk = addr;
        addr
    }

    /// The VMAs, in address order (for /proc and diagnostics).
    pub fn vmas(&self) -> Vec<Vma> {
        self.lock().vmas.values().cloned().collect()
    }

    /// Copies guest memory at `addr` into `buf`; EFAULT unless all of it is readable.
    pub fn copy_in(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let state = self.lock();
        let mut done = 0;
        for (offset, n) in state.pieces(addr, buf.len() as u64, Some(false))? {
            self.file.read(offset, &mut buf[done..done + n])?;
            done += n;
        }
        Ok(())
    }

    /// Copies `buf` to guest memory at `addr`; EFAULT unless all of it is writable.
    pub fn copy_out(&self, addr: u64, buf: &[u8]) -> Result<(), Errno> {
        self.copy_out_checked(addr, buf, Some(true))
    }

    /// Writes guest memory whatever its protection, as the kernel does when loading a program.
    pub fn copy_out_force(&self, addr: u64, buf: &[u8]) -> Result<(), Errno> {
        self.copy_out_checked(addr, buf, None)
    }

    fn copy_out_checked(&self, addr: u64, buf: &[u8], access: Option<bool>) -> Result<(), Errno> {
        let state = self.lock();
        let mut done = 0;
        for (offset, n) in state.pieces(addr, buf.len() as u64, access)? {
            self.file.write(offset, &buf[done..done + n])?;
            done += n;
        }
        Ok(())
    }

    /// EFAULT unless `[addr, addr + len)` is mapped with the given access.
    pub fn check_access(&self, addr: u64, len: u64, write: bool) -> Result<(), Errno> {
        self.lock().pieces(addr, len, Some(write)).map(drop)
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
}

impl std::fmt::Debug for MemoryManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryManager").finish_non_exhaustive()
    }
}

impl Drop for MemoryManager {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        // Take the pages out of the guest before the file ranges can be handed to another
        // address space (the stub itself dies when `space` is dropped after this).
        if let (Some(first), Some(last)) =
            (state.vmas.values().next(), state.vmas.values().next_back())
        {
            let _ = self.space.unmap(first.start, last.end - first.start);
        }
        // Each backing returns to the file when its last VMA goes.
        state.vmas.clear();
    }
}

impl State {
    fn overlaps(&self, start: u64, end: u64) -> bool {
        self.vmas
            .range(..end)
            .next_back()
            .is_some_and(|(_, vma)| vma.end > start)
    }

    /// Whether every byte of `[start, end)` is mapped.
    fn covered(&self, start: u64, end: u64) -> bool {
        let mut at = start;
        for vma in self.vmas.range(..end).map(|(_, v)| v) {
            if vma.end <= at {
                continue;
            }
            if vma.start > at {
                return false;
            }
            at = vma.end;
            if at >= end {
                return true;
            }
        }
        at >= end
    }

    /// Removes `[start, end)` from the VMAs, splitting those that straddle its ends, and
    /// returns the removed pieces (each with its own share of the file range).
    fn carve(&mut self, start: u64, end: u64) -> Vec<Vma> {
        let hit: Vec<u64> = self
            .vmas
            .range(..end)
            .rev()
            .take_while(|(_, vma)| vma.end > start)
            .map(|(&s, _)| s)
            .collect();
        let mut removed = Vec::with_capacity(hit.len());
        for key in hit.into_iter().rev() {
            let Some(vma) = self.vmas.remove(&key) else {
                continue;
            };
            let cut_start = vma.start.max(start);
            let cut_end = vma.end.min(end);
            if vma.start < cut_start {
                self.vmas.insert(
                    vma.start,
                    Vma {
                        end: cut_start,
                        ..vma.clone()
                    },
                );
            }
            if cut_end < vma.end {
                let tail = Vma {
                    start: cut_end,
                    file_offset: vma.file_offset + (cut_end - vma.start),
                    ..vma.clone()
                };
                self.vmas.insert(cut_end, tail);
            }
            removed.push(Vma {
                start: cut_start,
                end: cut_end,
                file_offset: vma.file_offset + (cut_start - vma.start),
                ..vma
            });
        }
        removed
    }

    /// The memory-file pieces `(offset, len)` behind `[addr, addr + len)`, checking the
    /// access (`None`: no check, but it must still be mapped).
    fn pieces(
        &self,
        addr: u64,
        len: u64,
        access: Option<bool>,
    ) -> Result<Vec<(u64, usize)>, Errno> {
        let end = addr.checked_add(len).ok_or(Errno::EFAULT)?;
        let mut pieces = Vec::new();
        let mut at = addr;
        while at < end {
            let (_, vma) = self.vmas.range(..=at).next_back().ok_or(Errno::EFAULT)?;
            if vma.end <= at || access.is_some_and(|write| !vma.allows(write)) {
                return Err(Errno::EFAULT);
            }
            let n = vma.end.min(end) - at;
            pieces.push((vma.file_offset + (at - vma.start), n as usize));
            at += n;
        }
        Ok(pieces)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One backing for every test VMA: the tests look at offsets, not at memory.
    fn backing() -> Arc<Backing> {
        static BACKING: std::sync::OnceLock<Arc<Backing>> = std::sync::OnceLock::new();
        BACKING
            .get_or_init(|| {
                let file = Arc::new(MemoryFile::new(1 << 20).unwrap());
                Backing::allocate(&file, 1 << 20).unwrap()
            })
            .clone()
    }

    fn vma(start: u64, end: u64, file_offset: u64) -> Vma {
        Vma {
            start,
            end,
            prot: PROT_READ,
            shared: false,
            file_offset,
            backing: backing(),
        }
    }

    #[test]
    fn carve_splits_and_keeps_file_offsets() {
        let mut s = State::default();
        s.vmas.insert(0x1000, vma(0x1000, 0x5000, 0x10000));
        s.vmas.insert(0x6000, vma(0x6000, 0x8000, 0x20000));
        let removed = s.carve(0x2000, 0x7000);
        assert_eq!(
            removed,
            vec![vma(0x2000, 0x5000, 0x11000), vma(0x6000, 0x7000, 0x20000)]
        );
        let left: Vec<Vma> = s.vmas.values().cloned().collect();
        assert_eq!(
            left,
            vec![vma(0x1000, 0x2000, 0x10000), vma(0x7000, 0x8000, 0x21000)]
        );
        assert!(s.covered(0x1000, 0x2000));
        assert!(!s.covered(0x1000, 0x3000));
        assert!(s.overlaps(0x1fff, 0x2000));
        assert!(!s.overlaps(0x2000, 0x7000));
    }

    #[test]
    fn pieces_check_access_and_holes() {
        let mut s = State::default();
        s.vmas.insert(0x1000, vma(0x1000, 0x2000, 0x0));
        s.vmas.insert(
            0x2000,
            Vma {
                prot: PROT_READ | PROT_WRITE,
                ..vma(0x2000, 0x3000, 0x8000)
            },
        );
        assert_eq!(
            s.pieces(0x1ff0, 0x20, Some(false)).unwrap(),
            vec![(0xff0, 0x10), (0x8000, 0x10)]
        );
        assert_eq!(s.pieces(0x1ff0, 0x20, Some(true)), Err(Errno::EFAULT));
        assert_eq!(s.pieces(0x2ff0, 0x20, Some(false)), Err(Errno::EFAULT));
        assert_eq!(s.pieces(u64::MAX, 2, None), Err(Errno::EFAULT));
        assert!(s.pieces(0x500, 0, Some(true)).unwrap().is_empty());
    }
}
