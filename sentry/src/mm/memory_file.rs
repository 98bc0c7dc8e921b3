//! The memory file: one memfd that holds all guest memory.
//!
//! The Sentry maps the whole file into itself once and reaches guest memory through that
//! mapping at a file offset; platforms map ranges of the same file into the guest. The file
//! is sparse: a range costs host memory only once the guest or the Sentry touches it, and
//! freeing a range punches a hole so the host gets the memory back.
//!
//! This is one of the two places in the Sentry that uses `unsafe` (raw copies in and out of
//! the mapping); everything else reaches guest memory through it.
#![allow(unsafe_code)]

use std::collections::BTreeMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::Mutex;

use nix::fcntl::{fallocate, FallocateFlags};
use nix::sys::memfd::{memfd_create, MFdFlags};
use nix::sys::mman::{mmap, munmap, MapFlags, ProtFlags};

use crate::abi::{Errno, PAGE_SIZE};

/// All guest memory of one sandbox.
///
/// `alloc` guards the allocator; the bytes themselves are shared with guests that run
/// concurrently, so they are only ever copied with raw copies, never borrowed as Rust slices.
pub struct MemoryFile {
    fd: OwnedFd,
    base: NonNull<u8>,
    size: u64,
    alloc: Mutex<Allocator>,
}

// SAFETY: `base` points to a MAP_SHARED mapping that lives as long as the MemoryFile and is
// only accessed through raw copies with bounds checks; the allocator is behind a Mutex.
unsafe impl Send for MemoryFile {}
// SAFETY: as above.
unsafe impl Sync for MemoryFile {}

impl MemoryFile {
    /// Creates a sparse memory file of `size` bytes and maps it into the Sentry.
    pub fn new(size: u64) -> Result<MemoryFile, Errno> {
        let size = crate::abi::page_up(size).ok_or(Errno::EINVAL)?;
        let fd = memfd_create(c"runsc-rs-memory", MFdFlags::MFD_CLOEXEC)?;
        nix::unistd::ftruncate(&fd, size as i64)?;
        let len = std::num::NonZeroUsize::new(size as usize).ok_or(Errno::EINVAL)?;
        // SAFETY: a fresh shared mapping of a file we own; the kernel chooses the address, so
        // nothing existing is replaced.
        let base = unsafe {
            mmap(
                None,
                len,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED | MapFlags::MAP_NORESERVE,
                &fd,
                0,
            )?
        };
        Ok(MemoryFile {
            fd,
            base: base.cast(),
            size,
            alloc: Mutex::new(Allocator::new(size)),
        })
    }

    /// The memfd, for platforms to map.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Allocates `len` bytes (a multiple of the page size) of zeroed memory.
    pub fn allocate(&self, len: u64) -> Result<u64, Errno> {
        if len == 0 || !len.is_multiple_of(PAGE_SIZE) {
            return Err(Errno::EINVAL);
        }
        self.lock().allocate(len).ok_or(Errno::ENOMEM)
    }

    /// Returns `[offset, offset + len)` to the allocator and its pages to the host.
    pub fn free(&self, offset: u64, len: u64) {
        if len == 0 {
            return;
        }
        // Punching the hole also makes the range read as zeros when it is allocated again;
        // a range whose old contents could not be dropped is never handed out again.
        match self.punch(offset, len) {
            Ok(()) => self.lock().free(offset, len),
            Err(e) => log::warn!("releasing guest memory failed ({e}); {len} bytes stay reserved"),
        }
    }

    /// Gives the pages of `[offset, offset + len)` back to the host, leaving the range
    /// allocated and reading as zeros.
    pub fn punch(&self, offset: u64, len: u64) -> Result<(), Errno> {
        fallocate(
            &self.fd,
            FallocateFlags::FALLOC_FL_PUNCH_HOLE | FallocateFlags::FALLOC_FL_KEEP_SIZE,
            offset as i64,
            len as i64,
        )?;
        Ok(())
    }

    /// Makes the pages of `[offset, offset + len)` exist now (MAP_POPULATE, mlock), as a
    /// first write would: each page gets an atomic no-op write (`fetch_or(0)`), which leaves
    /// its contents alone even while a guest writes it.
    pub fn populate(&self, offset: u64, len: u64) -> Result<(), Errno> {
        let base = self.range(offset, len as usize)?;
        let mut at = 0;
        while at < len {
            // SAFETY: `range` checked that [offset, offset + len) lies inside the mapping;
            // an atomic byte access to shared memory is sound whatever else touches it.
            unsafe {
                std::sync::atomic::AtomicU8::from_ptr(base.add(at as usize))
                    .fetch_or(0, std::sync::atomic::Ordering::Relaxed);
            }
            at += PAGE_SIZE;
        }
        Ok(())
    }

    /// Copies `len` bytes from `src` to `dst` (both allocated, not overlapping, `dst` all
    /// zeros). Only the parts of `src` that hold pages are copied: untouched memory stays a
    /// hole in both, costing the host nothing.
    pub fn copy_within(&self, src: u64, dst: u64, len: u64) -> Result<(), Errno> {
        let end = src.checked_add(len).ok_or(Errno::EFAULT)?;
        self.range(src, len as usize)?;
        self.range(dst, len as usize)?;
        let mut at = src;
        while let Some((data, stop)) = self.next_data(at, end)? {
            let (from, to) = (self.range(data, 0)?, self.range(dst + (data - src), 0)?);
            // SAFETY: both ranges were checked to lie inside the mapping above and do not
            // overlap (the caller allocated them separately); raw copies tolerate a guest
            // writing the source concurrently.
            unsafe { std::ptr::copy_nonoverlapping(from, to, (stop - data) as usize) };
            at = stop;
        }
        Ok(())
    }

    /// How many bytes of `[offset, offset + len)` hold pages (0 if that cannot be told).
    pub fn resident(&self, offset: u64, len: u64) -> u64 {
        let Some(end) = offset.checked_add(len) else {
            return 0;
        };
        let mut at = offset;
        let mut total = 0;
        while let Ok(Some((data, stop))) = self.next_data(at, end) {
            total += stop - data;
            at = stop;
        }
        total
    }

    /// The first run of pages `[start, stop)` at or after `at`, cut at `end` (SEEK_DATA,
    /// SEEK_HOLE); None if there is no data before `end`.
    fn next_data(&self, at: u64, end: u64) -> Result<Option<(u64, u64)>, Errno> {
        use nix::unistd::{lseek, Whence};
        if at >= end {
            return Ok(None);
        }
        let data = match lseek(&self.fd, at as i64, Whence::SeekData) {
            Ok(data) => data as u64,
            Err(nix::errno::Errno::ENXIO) => return Ok(None),
            Err(e) => return Err(e),
        };
        if data >= end {
            return Ok(None);
        }
        let hole = lseek(&self.fd, data as i64, Whence::SeekHole)? as u64;
        Ok(Some((data, hole.min(end))))
    }

    /// Bytes currently allocated (not the host memory in use, which is at most this).
    pub fn allocated(&self) -> u64 {
        self.lock().allocated
    }

    /// Copies `buf.len()` bytes at `offset` into `buf`.
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let src = self.range(offset, buf.len())?;
        // SAFETY: `range` checked that [offset, offset + len) lies inside the mapping; the
        // source may change concurrently (a guest writing), which a raw byte copy tolerates.
        unsafe { std::ptr::copy_nonoverlapping(src, buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }

    /// Copies `buf` to `offset`.
    pub fn write(&self, offset: u64, buf: &[u8]) -> Result<(), Errno> {
        let dst = self.range(offset, buf.len())?;
        // SAFETY: as in `read`; `buf` is a Rust slice and cannot overlap the shared mapping
        // because no Rust reference into the mapping is ever created.
        unsafe { std::ptr::copy_nonoverlapping(buf.as_ptr(), dst, buf.len()) };
        Ok(())
    }

    /// A pointer to `[offset, offset + len)` after checking it lies inside the file.
    fn range(&self, offset: u64, len: usize) -> Result<*mut u8, Errno> {
        let end = offset.checked_add(len as u64).ok_or(Errno::EFAULT)?;
        if end > self.size {
            return Err(Errno::EFAULT);
        }
        // SAFETY: offset < size, so the result stays inside the mapping.
        Ok(unsafe { self.base.as_ptr().add(offset as usize) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Allocator> {
        self.alloc.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for MemoryFile {
    fn drop(&mut self) {
        // SAFETY: the mapping was made in `new` with this base and size and nothing refers to
        // it once the MemoryFile is gone.
        let _ = unsafe { munmap(self.base.cast(), self.size as usize) };
    }
}

/// First-fit allocator of page ranges in the file, with coalescing of freed ranges.
#[derive(Debug)]
struct Allocator {
    /// Free ranges below `top`: start → length.
    free: BTreeMap<u64, u64>,
    /// Everything at and above `top` is free.
    top: u64,
    size: u64,
    allocated: u64,
}

impl Allocator {
    fn new(size: u64) -> Allocator {
        Allocator {
            free: BTreeMap::new(),
            top: 0,
            size,
            allocated: 0,
        }
    }

    fn allocate(&mut self, len: u64) -> Option<u64> {
        let found = self
            .free
            .iter()
            .find(|(_, &l)| l >= len)
            .map(|(&s, &l)| (s, l));
        let start = match found {
            Some((start, have)) => {
                self.free.remove(&start);
                if have > len {
                    self.free.insert(start + len, have - len);
                }
                start
            }
            None => {
                let start = self.top;
                if self.size - start < len {
                    return None;
                }
                self.top += len;
                start
            }
        };
        self.allocated += len;
        Some(start)
    }

    fn free(&mut self, mut start: u64, mut len: u64) {
        self.allocated = self.allocated.saturating_sub(len);
        if let Some((&prev, &prev_len)) = self.free.range(..start).next_back() {
            if prev + prev_len == start {
                self.free.remove(&prev);
                start = prev;
                len += prev_len;
            }
        }
        if let Some(next_len) = self.free.remove(&(start + len)) {
            len += next_len;
        }
        if start + len == self.top {
            self.top = start;
        } else {
            self.free.insert(start, len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocator_reuses_and_coalesces() {
        let mut a = Allocator::new(16 * PAGE_SIZE);
        let x = a.allocate(PAGE_SIZE).unwrap();
        let y = a.allocate(2 * PAGE_SIZE).unwrap();
        let z = a.allocate(PAGE_SIZE).unwrap();
        assert_eq!((x, y, z), (0, PAGE_SIZE, 3 * PAGE_SIZE));
        a.free(x, PAGE_SIZE);
        a.free(y, 2 * PAGE_SIZE);
        // The two freed neighbours became one range that fits three pages.
        assert_eq!(a.allocate(3 * PAGE_SIZE), Some(0));
        a.free(z, PAGE_SIZE);
        assert_eq!(a.top, 3 * PAGE_SIZE);
        assert_eq!(a.allocate(14 * PAGE_SIZE), None);
        assert_eq!(a.allocate(13 * PAGE_SIZE), Some(3 * PAGE_SIZE));
        assert_eq!(a.allocated, 16 * PAGE_SIZE);
    }

    #[test]
    fn read_write_and_bounds() {
        let mf = MemoryFile::new(4 * PAGE_SIZE).unwrap();
        let off = mf.allocate(PAGE_SIZE).unwrap();
        mf.write(off + 10, b"hello").unwrap();
        let mut buf = [0u8; 7];
        mf.read(off + 9, &mut buf).unwrap();
        assert_eq!(&buf, b"\0hello\0");
        assert_eq!(mf.read(4 * PAGE_SIZE - 2, &mut buf), Err(Errno::EFAULT));
        assert_eq!(mf.write(u64::MAX - 2, b"abc"), Err(Errno::EFAULT));
        mf.free(off, PAGE_SIZE);
        let again = mf.allocate(PAGE_SIZE).unwrap();
        mf.read(again + 9, &mut buf).unwrap();
        assert_eq!(buf, [0; 7], "freed memory must come back zeroed");
    }

    #[test]
    fn copy_within_copies_data_and_keeps_holes() {
        let mf = MemoryFile::new(64 * PAGE_SIZE).unwrap();
        let src = mf.allocate(8 * PAGE_SIZE).unwrap();
        let dst = mf.allocate(8 * PAGE_SIZE).unwrap();
        mf.write(src + 5, b"first").unwrap();
        mf.write(src + 6 * PAGE_SIZE + 1, b"later").unwrap();
        mf.copy_within(src, dst, 8 * PAGE_SIZE).unwrap();
        // The copy did not fill the hole between the two written pages. (Checked before
        // reading it: a read fault on a hole of a shared mapping allocates the page.)
        use nix::unistd::{lseek, Whence};
        let data = lseek(&mf.fd, (dst + PAGE_SIZE) as i64, Whence::SeekData).unwrap() as u64;
        assert_eq!(data, dst + 6 * PAGE_SIZE);
        assert_eq!(mf.resident(src, 8 * PAGE_SIZE), 2 * PAGE_SIZE);
        assert_eq!(mf.resident(dst, 8 * PAGE_SIZE), 2 * PAGE_SIZE);
        assert_eq!(mf.resident(dst + PAGE_SIZE, 5 * PAGE_SIZE), 0);
        let mut buf = [0u8; 5];
        mf.read(dst + 5, &mut buf).unwrap();
        assert_eq!(&buf, b"first");
        mf.read(dst + 6 * PAGE_SIZE + 1, &mut buf).unwrap();
        assert_eq!(&buf, b"later");
        mf.read(dst + 3 * PAGE_SIZE, &mut buf).unwrap();
        assert_eq!(buf, [0; 5]);
        assert_eq!(
            mf.copy_within(src, 64 * PAGE_SIZE - 1, 8),
            Err(Errno::EFAULT)
        );
    }
}
