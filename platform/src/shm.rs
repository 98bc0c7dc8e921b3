//! Shared memory between two processes that do not trust each other.
//!
//! [`SharedMemory`] is a memfd mapped `MAP_SHARED` into this process. Its file descriptor can
//! be handed to another process, which maps the same pages with [`SharedMemory::from_fd`].
//! The gofer's request/response rings live in one of these.
//!
//! The other side may be hostile and writes whenever it likes, so no Rust reference to
//! plain shared bytes is ever created: bytes move in and out only by copying
//! ([`SharedMemory::read`], [`SharedMemory::write`]), and words that both sides use for
//! synchronisation are reached as atomics ([`SharedMemory::atomic_u32`]). Every access is
//! bounds-checked and fails with an [`Error`], never a panic.
//!
//! The memfd is sealed against shrinking, so the other side cannot truncate it and make our
//! accesses fault (`SIGBUS`); [`SharedMemory::from_fd`] refuses a memfd without that seal.

use std::num::NonZeroUsize;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::AtomicU32;

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use nix::sys::memfd::{memfd_create, MFdFlags};
use nix::sys::mman::{mmap, munmap, MapFlags, ProtFlags};

/// Failures to create, map or access shared memory.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("shared memory: {what}: {errno}")]
    Host { what: &'static str, errno: Errno },
    #[error("shared memory of {0} bytes cannot be mapped: the size must be at least 1 byte and fit in this address space")]
    BadSize(u64),
    #[error("the shared memory file is not sealed against shrinking (F_SEAL_SHRINK), so the other side could truncate it and crash us; create it with SharedMemory::create")]
    NotSealed,
    #[error("access of {len} bytes at offset {offset} is outside the {size}-byte shared memory")]
    OutOfBounds {
        offset: usize,
        len: usize,
        size: usize,
    },
    #[error("offset {offset} in shared memory is not {align}-byte aligned")]
    Misaligned { offset: usize, align: usize },
}

fn host(what: &'static str) -> impl FnOnce(Errno) -> Error {
    move |errno| Error::Host { what, errno }
}

pub type Result<T> = std::result::Result<T, Error>;

/// A memfd mapped read-write and shared into this process.
///
/// Invariant: `base` points to a live `MAP_SHARED` mapping of `len` bytes of `fd`, which is
/// sealed against shrinking; it stays mapped until `drop`.
#[derive(Debug)]
pub struct SharedMemory {
    fd: OwnedFd,
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value, not tied to a thread. Every access
// through `&self` is an atomic operation or a raw copy, which other threads (and processes) may
// do concurrently; nothing hands out a non-atomic reference into the mapping.
unsafe impl Send for SharedMemory {}
// SAFETY: as for `Send`.
unsafe impl Sync for SharedMemory {}

impl SharedMemory {
    /// Creates a zero-filled memfd of `len` bytes called `name` (shown in `/proc/PID/maps`),
    /// seals its size, and maps it.
    pub fn create(name: &str, len: usize) -> Result<SharedMemory> {
        let size = i64::try_from(len)
            .ok()
            .filter(|&s| s > 0)
            .ok_or(Error::BadSize(len as u64))?;
        let fd = memfd_create(name, MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING)
            .map_err(host("memfd_create"))?;
        nix::unistd::ftruncate(&fd, size).map_err(host("ftruncate of the memfd"))?;
        // F_SEAL_SEAL too: otherwise the other side could add F_SEAL_FUTURE_WRITE and make
        // later writable mappings of the file fail.
        let seals = SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_SEAL;
        fcntl(&fd, FcntlArg::F_ADD_SEALS(seals)).map_err(host("sealing the memfd"))?;
        Self::map(fd, len)
    }

    /// Maps a memfd received from another process (or from [`SharedMemory::fd`]), all of it.
    /// The file must be sealed against shrinking.
    pub fn from_fd(fd: OwnedFd) -> Result<SharedMemory> {
        // F_GET_SEALS fails with EINVAL on files that are not memfds (or shmem).
        let seals = fcntl(&fd, FcntlArg::F_GET_SEALS).map_err(|_| Error::NotSealed)?;
        if !SealFlag::from_bits_truncate(seals).contains(SealFlag::F_SEAL_SHRINK) {
            return Err(Error::NotSealed);
        }
        let size = nix::sys::stat::fstat(&fd)
            .map_err(host("fstat of the memfd"))?
            .st_size;
        let len = usize::try_from(size)
            .ok()
            .filter(|&l| l > 0)
            .ok_or(Error::BadSize(size as u64))?;
        Self::map(fd, len)
    }

    fn map(fd: OwnedFd, len: usize) -> Result<SharedMemory> {
        let length = NonZeroUsize::new(len).ok_or(Error::BadSize(0))?;
        // SAFETY: a fresh mapping chosen by the kernel (no address hint), so no existing Rust
        // object is affected. The file is sealed against shrinking and `len` is at most its
        // size, so no access inside the mapping can raise SIGBUS.
        // MAP_POPULATE: first-touch faults cost ≈2 µs each on this host; take them all now.
        let base = unsafe {
            mmap(
                None,
                length,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED | MapFlags::MAP_POPULATE,
                &fd,
                0,
            )
        }
        .map_err(host("mmap of the memfd"))?;
        Ok(SharedMemory {
            fd,
            base: base.cast(),
            len,
        })
    }

    /// The memfd, to pass to another process (dup it or send it) for [`SharedMemory::from_fd`].
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Size of the mapping in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: a mapping has at least one byte.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Checks that `[offset, offset + len)` lies inside the mapping.
    fn check(&self, offset: usize, len: usize) -> Result<()> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(Error::OutOfBounds {
                offset,
                len,
                size: self.len,
            }),
        }
    }

    /// The 32-bit word at `offset` as an atomic. `offset` must be 4-aligned and in bounds.
    pub fn atomic_u32(&self, offset: usize) -> Result<&AtomicU32> {
        if !offset.is_multiple_of(align_of::<AtomicU32>()) {
            return Err(Error::Misaligned {
                offset,
                align: align_of::<AtomicU32>(),
            });
        }
        self.check(offset, size_of::<AtomicU32>())?;
        // SAFETY: in bounds (checked above) of a mapping that lives as long as `&self`, and
        // 4-aligned because the mapping is page-aligned and `offset` is a multiple of 4. All
        // Rust accesses to these bytes go through atomics: `read`/`write` are byte copies that
        // the caller must not aim at words it uses as atomics (a race there corrupts only the
        // value, as with a hostile peer, never memory safety).
        Ok(unsafe { AtomicU32::from_ptr(self.base.as_ptr().add(offset).cast()) })
    }

    /// Copies `buf.len()` bytes starting at `offset` out of the shared memory.
    ///
    /// The other side may be writing at the same time; the copy is then torn, never unsafe.
    /// Validate what you read only after it has been copied.
    pub fn read(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        self.check(offset, buf.len())?;
        // SAFETY: the source range is inside the mapping (checked above) and the destination is
        // a private buffer, so they do not overlap. No reference to the shared bytes is formed.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.base.as_ptr().add(offset),
                buf.as_mut_ptr(),
                buf.len(),
            )
        };
        Ok(())
    }

    /// Copies `data` into the shared memory at `offset`.
    pub fn write(&self, offset: usize, data: &[u8]) -> Result<()> {
        self.check(offset, data.len())?;
        // SAFETY: the destination range is inside the mapping (checked above), the source is a
        // private buffer, and the mapping is writable. No reference to the shared bytes is formed.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), self.base.as_ptr().add(offset), data.len())
        };
        Ok(())
    }
}

impl Drop for SharedMemory {
    fn drop(&mut self) {
        // SAFETY: `base`/`len` are exactly the mapping made in `map`, and every reference handed
        // out (`atomic_u32`) borrows `self`, so none outlives it.
        // A failing munmap (impossible for a valid mapping) would only leak the mapping.
        let _ = unsafe { munmap(self.base.cast(), self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn write_then_read_back() {
        let shm = SharedMemory::create("shm-test", 8192).unwrap();
        assert_eq!(shm.len(), 8192);
        let mut buf = [0u8; 5];
        shm.read(4000, &mut buf).unwrap();
        assert_eq!(buf, [0; 5], "a new memfd is zero-filled");
        shm.write(4094, b"hello").unwrap(); // straddles a page boundary
        shm.read(4094, &mut buf).unwrap();
        assert_eq!(&buf, b"hello");
        shm.write(8191, b"!").unwrap();
        shm.read(8191, &mut buf[..1]).unwrap();
        assert_eq!(buf[0], b'!');
    }

    #[test]
    fn out_of_bounds_accesses_fail() {
        let shm = SharedMemory::create("shm-test", 100).unwrap();
        let mut buf = [0u8; 8];
        assert!(matches!(
            shm.read(93, &mut buf),
            Err(Error::OutOfBounds {
                offset: 93,
                len: 8,
                size: 100
            })
        ));
        assert!(matches!(
            shm.write(100, b"x"),
            Err(Error::OutOfBounds { .. })
        ));
        assert!(matches!(
            shm.write(usize::MAX, b"x"),
            Err(Error::OutOfBounds { .. })
        ));
        assert!(matches!(
            shm.read(usize::MAX - 2, &mut buf),
            Err(Error::OutOfBounds { .. })
        ));
        // Empty accesses at the end are fine; past it are not.
        shm.read(100, &mut []).unwrap();
        assert!(shm.read(101, &mut []).is_err());
        assert!(matches!(
            shm.atomic_u32(97),
            Err(Error::Misaligned {
                offset: 97,
                align: 4
            })
        ));
        assert!(matches!(
            shm.atomic_u32(100),
            Err(Error::OutOfBounds { .. })
        ));
        assert!(matches!(
            shm.atomic_u32(usize::MAX - 3),
            Err(Error::OutOfBounds { .. })
        ));
        shm.atomic_u32(96).unwrap().store(7, Ordering::Relaxed);
        shm.read(96, &mut buf[..4]).unwrap();
        assert_eq!(u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]), 7);
    }

    #[test]
    fn zero_size_is_refused() {
        assert!(matches!(
            SharedMemory::create("shm-test", 0),
            Err(Error::BadSize(0))
        ));
    }

    #[test]
    fn second_mapping_of_the_fd_shares_pages() {
        let a = SharedMemory::create("shm-test", 4096).unwrap();
        let fd = a.fd().try_clone_to_owned().unwrap();
        let b = SharedMemory::from_fd(fd).unwrap();
        assert_eq!(b.len(), 4096);
        a.write(10, b"shared").unwrap();
        let mut buf = [0u8; 6];
        b.read(10, &mut buf).unwrap();
        assert_eq!(&buf, b"shared");
        b.atomic_u32(64).unwrap().fetch_add(3, Ordering::AcqRel);
        assert_eq!(a.atomic_u32(64).unwrap().load(Ordering::Acquire), 3);
    }

    #[test]
    fn size_is_sealed() {
        let shm = SharedMemory::create("shm-test", 4096).unwrap();
        assert_eq!(
            nix::unistd::ftruncate(shm.fd(), 100),
            Err(Errno::EPERM),
            "the peer must not be able to shrink the file under our mapping"
        );
        assert_eq!(
            fcntl(
                shm.fd(),
                FcntlArg::F_ADD_SEALS(SealFlag::F_SEAL_FUTURE_WRITE)
            ),
            Err(Errno::EPERM),
            "seals are sealed"
        );
    }

    #[test]
    fn unsealed_files_are_refused() {
        let fd = memfd_create("shm-test", MFdFlags::MFD_CLOEXEC).unwrap();
        nix::unistd::ftruncate(&fd, 4096).unwrap();
        assert!(matches!(SharedMemory::from_fd(fd), Err(Error::NotSealed)));
        // Not a memfd at all.
        let file = std::fs::File::open("/proc/self/exe").unwrap();
        assert!(matches!(
            SharedMemory::from_fd(file.into()),
            Err(Error::NotSealed)
        ));
    }
}
