//! Open file descriptions: what a descriptor refers to, with its offset and status flags.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use super::lock::{self, Conflict, FileLocks, LockType, Range, RecordOwner};
use super::{Attr, FileOps, FileType, Inode, Location, SeekMode};
use crate::abi::Errno;
use crate::fs::epoll::{Epoll, Watches};
use crate::fs::pipe::Pipe;
use crate::fs::timerfd::TimerFd;
use crate::mm::page_cache;
use crate::net::unix::UnixSocket;
use crate::waiter::WaitQueue;

pub const O_ACCMODE: u32 = 0o3;
pub const O_RDONLY: u32 = 0o0;
pub const O_WRONLY: u32 = 0o1;
pub const O_RDWR: u32 = 0o2;
pub const O_APPEND: u32 = 0o2000;
pub const O_NONBLOCK: u32 = 0o4000;
/// On files: direct I/O (a hint the Sentry's file systems need not act on). On pipes:
/// packet mode.
pub const O_DIRECT: u32 = 0o40000;
pub const O_PATH: u32 = 0o10000000;
pub const O_CREAT: u32 = 0o100;
pub const O_EXCL: u32 = 0o200;
pub const O_TRUNC: u32 = 0o1000;
pub const O_LARGEFILE: u32 = 0o100000;
pub const O_DIRECTORY: u32 = 0o200000;
pub const O_NOFOLLOW: u32 = 0o400000;
pub const O_CLOEXEC: u32 = 0o2000000;
/// O_TMPFILE includes O_DIRECTORY.
pub const O_TMPFILE: u32 = 0o20000000 | O_DIRECTORY;

pub const SEEK_SET: u64 = 0;
pub const SEEK_CUR: u64 = 1;
pub const SEEK_END: u64 = 2;
pub const SEEK_DATA: u64 = 3;
pub const SEEK_HOLE: u64 = 4;

/// An open file description (Linux's `struct file`). Descriptors made by dup share one.
/// `state` guards the offset and the status flags.
pub struct OpenFile {
    /// Where it was opened; None for files with no name in the tree (host stdio, pipes).
    pub location: Option<Location>,
    pub inode: Arc<dyn Inode>,
    ops: Arc<dyn FileOps>,
    state: Mutex<State>,
    /// This description's identity as the owner of flock and OFD locks.
    id: u64,
    /// The inode's locks, once a lock call went through this description: kept while it is
    /// open, and its locks are released from them when it closes.
    locks: OnceLock<Arc<FileLocks>>,
    /// The epoll interests in this description, which end when it closes.
    watches: Watches,
}

struct State {
    offset: u64,
    flags: u32,
}

impl OpenFile {
    pub fn new(
        location: Option<Location>,
        inode: Arc<dyn Inode>,
        ops: Arc<dyn FileOps>,
        flags: u32,
    ) -> Arc<OpenFile> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        Arc::new(OpenFile {
            location,
            inode,
            ops,
            state: Mutex::new(State { offset: 0, flags }),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            locks: OnceLock::new(),
            watches: Watches::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The status flags (access mode, O_APPEND, O_NONBLOCK, ...).
    pub fn flags(&self) -> u32 {
        self.lock().flags
    }

    /// F_SETFL: only O_APPEND, O_NONBLOCK and, on pipes, O_DIRECT (packet mode) can change
    /// (fcntl(2)).
    pub fn set_flags(&self, flags: u32) {
        let mut changeable = O_APPEND | O_NONBLOCK;
        if self.ops.pipe().is_some() {
            changeable |= O_DIRECT;
        }
        let mut s = self.lock();
        s.flags = (s.flags & !changeable) | (flags & changeable);
    }

    pub fn readable(&self) -> bool {
        let f = self.flags();
        f & O_PATH == 0 && matches!(f & O_ACCMODE, O_RDONLY | O_RDWR)
    }

    pub fn writable(&self) -> bool {
        let f = self.flags();
        f & O_PATH == 0 && matches!(f & O_ACCMODE, O_WRONLY | O_RDWR)
    }

    pub fn attr(&self) -> Result<Attr, Errno> {
        self.inode.attr()
    }

    pub fn is_dir(&self) -> bool {
        self.inode
            .attr()
            .is_ok_and(|a| a.file_type() == Some(FileType::Directory))
    }

    /// read(2): at the file offset, which moves past what was read.
    pub fn read(&self, buf: &mut [u8]) -> Result<usize, Errno> {
        self.read_with(buf, self.flags())
    }

    /// read(2) with `flags` standing for the status flags in this call (preadv2's
    /// RWF_NOWAIT adds O_NONBLOCK).
    pub fn read_with(&self, buf: &mut [u8], flags: u32) -> Result<usize, Errno> {
        if !self.readable() {
            return Err(Errno::EBADF);
        }
        if self.is_dir() {
            return Err(Errno::EISDIR);
        }
        if self.ops.seek_mode() == SeekMode::Stream {
            return self.ops.read_stream(buf, flags);
        }
        let mut s = self.lock();
        let n = self.ops.read(s.offset, buf)?;
        page_cache::after_read(&self.inode, s.offset, &mut buf[..n]);
        s.offset += n as u64;
        Ok(n)
    }

    /// write(2): at the file offset, or at the end with O_APPEND.
    pub fn write(&self, buf: &[u8]) -> Result<usize, Errno> {
        self.write_with(buf, self.flags())
    }

    /// write(2) with `flags` standing for the status flags in this call (pwritev2's
    /// RWF_APPEND and RWF_NOAPPEND set and clear O_APPEND, RWF_NOWAIT adds O_NONBLOCK).
    pub fn write_with(&self, buf: &[u8], flags: u32) -> Result<usize, Errno> {
        if !self.writable() {
            return Err(Errno::EBADF);
        }
        if self.ops.seek_mode() == SeekMode::Stream {
            return self.ops.write_stream(buf, flags);
        }
        let mut s = self.lock();
        if flags & O_APPEND != 0 {
            s.offset = self.inode.attr()?.size;
        }
        let n = self.ops.write(s.offset, buf)?;
        page_cache::after_write(&self.inode, s.offset, &buf[..n]);
        s.offset += n as u64;
        Ok(n)
    }

    /// pread64(2): at `offset`, leaving the file offset alone.
    pub fn pread(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        if !self.readable() {
            return Err(Errno::EBADF);
        }
        if self.ops.seek_mode() == SeekMode::Stream {
            return Err(Errno::ESPIPE);
        }
        if self.is_dir() {
            return Err(Errno::EISDIR);
        }
        let n = self.ops.read(offset, buf)?;
        page_cache::after_read(&self.inode, offset, &mut buf[..n]);
        Ok(n)
    }

    /// Reads at `offset` from the file itself, past the page cache (which fills itself so).
    pub fn read_uncached(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        self.ops.read(offset, buf)
    }

    /// Writes at `offset` to the file itself, past the page cache (which writes back so).
    pub fn write_uncached(&self, offset: u64, buf: &[u8]) -> Result<usize, Errno> {
        self.ops.write(offset, buf)
    }

    /// pwrite64(2). As on Linux, O_APPEND wins over the offset.
    pub fn pwrite(&self, offset: u64, buf: &[u8]) -> Result<usize, Errno> {
        self.pwrite_with(offset, buf, self.flags())
    }

    /// pwrite64(2) with `flags` standing for the status flags in this call.
    pub fn pwrite_with(&self, offset: u64, buf: &[u8], flags: u32) -> Result<usize, Errno> {
        if !self.writable() {
            return Err(Errno::EBADF);
        }
        if self.ops.seek_mode() == SeekMode::Stream {
            return Err(Errno::ESPIPE);
        }
        let offset = if flags & O_APPEND != 0 {
            self.inode.attr()?.size
        } else {
            offset
        };
        let n = self.ops.write(offset, buf)?;
        page_cache::after_write(&self.inode, offset, &buf[..n]);
        Ok(n)
    }

    /// lseek(2).
    pub fn seek(&self, offset: i64, whence: u64) -> Result<u64, Errno> {
        if self.flags() & O_PATH != 0 {
            return Err(Errno::EBADF);
        }
        match self.ops.seek_mode() {
            SeekMode::Stream => return Err(Errno::ESPIPE),
            SeekMode::AlwaysZero => return Ok(0),
            SeekMode::Normal => {}
        }
        let mut s = self.lock();
        let new = match whence {
            SEEK_SET => offset,
            SEEK_CUR => (s.offset as i64)
                .checked_add(offset)
                .ok_or(Errno::EOVERFLOW)?,
            SEEK_END => (self.inode.attr()?.size as i64)
                .checked_add(offset)
                .ok_or(Errno::EOVERFLOW)?,
            // With no holes recorded, all data runs to the end and the one hole is there.
            SEEK_DATA | SEEK_HOLE => {
                let size = self.inode.attr()?.size as i64;
                if offset < 0 || offset >= size {
                    return Err(Errno::ENXIO);
                }
                if whence == SEEK_DATA {
                    offset
                } else {
                    size
                }
            }
            _ => return Err(Errno::EINVAL),
        };
        if new < 0 {
            return Err(Errno::EINVAL);
        }
        s.offset = new as u64;
        Ok(new as u64)
    }

    /// The offset, for getdents, which counts entries with it.
    pub fn offset(&self) -> u64 {
        self.lock().offset
    }

    pub fn set_offset(&self, offset: u64) {
        self.lock().offset = offset;
    }

    /// The poll(2) events the file is ready for.
    pub fn readiness(&self) -> u16 {
        self.ops.readiness()
    }

    /// The queue notified when `readiness` may change (None: it never does).
    pub fn wait_queue(&self) -> Option<&WaitQueue> {
        self.ops.wait_queue()
    }

    /// Whether poll means anything for the file (see `FileOps::pollable`).
    pub fn pollable(&self) -> bool {
        self.ops.pollable()
    }

    /// The terminal, if this is a tty file.
    pub fn terminal(&self) -> Option<&crate::fs::tty::TtyFile> {
        self.ops.terminal()
    }

    /// The pipe, if this is a pipe or fifo end.
    pub fn pipe(&self) -> Option<&Pipe> {
        self.ops.pipe()
    }

    /// The epoll instance, if this is an epoll file.
    pub fn epoll(&self) -> Option<&Arc<Epoll>> {
        self.ops.epoll()
    }

    /// The timer, if this is a timerfd.
    pub fn timerfd(&self) -> Option<&TimerFd> {
        self.ops.timerfd()
    }

    /// The signalfd, if this is one.
    pub fn signalfd(&self) -> Option<&crate::fs::signalfd::SignalFd> {
        self.ops.signalfd()
    }

    /// The file's own lines of /proc/PID/fdinfo/N.
    pub fn fdinfo(&self) -> Vec<u8> {
        self.ops.fdinfo()
    }

    /// The epoll interests in this description.
    pub(crate) fn watches(&self) -> &Watches {
        &self.watches
    }

    /// A number that identifies this description while it is open (and is never reused).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The socket, if this is one.
    pub fn socket(&self) -> Option<&UnixSocket> {
        self.ops.socket()
    }

    /// fallocate(2) without FALLOC_FL_PUNCH_HOLE on a regular file open for writing:
    /// the file grows to `offset + len` unless `keep_size`. (Every file system of the
    /// Sentry allocates as it writes, so there is nothing else to reserve.)
    pub fn allocate(&self, offset: u64, len: u64, keep_size: bool) -> Result<(), Errno> {
        let end = offset.checked_add(len).ok_or(Errno::EFBIG)?;
        if !keep_size && end > self.attr()?.size {
            self.inode.set_attr(&super::SetAttr {
                size: Some(end),
                ..super::SetAttr::default()
            })?;
        }
        Ok(())
    }

    /// fallocate(2) with FALLOC_FL_PUNCH_HOLE (and FALLOC_FL_KEEP_SIZE): the bytes of
    /// `[offset, offset + len)` inside the file read as zeros afterwards; the size stays.
    pub fn punch_hole(&self, offset: u64, len: u64) -> Result<(), Errno> {
        static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];
        let end = offset.saturating_add(len).min(self.attr()?.size);
        let mut at = offset;
        while at < end {
            let n = (end - at).min(ZEROS.len() as u64) as usize;
            match self.ops.write(at, &ZEROS[..n])? {
                0 => return Err(Errno::EIO),
                written => {
                    page_cache::after_write(&self.inode, at, &ZEROS[..written]);
                    at += written as u64
                }
            }
        }
        Ok(())
    }

    /// The inode's locks, found (or made) at the first lock call through this description
    /// and kept from then on.
    fn locks(&self) -> Result<&Arc<FileLocks>, Errno> {
        if let Some(locks) = self.locks.get() {
            return Ok(locks);
        }
        let key = self.attr()?.key();
        Ok(self.locks.get_or_init(|| lock::locks_of(key)))
    }

    /// The inode's locks if it has any, without making them.
    fn existing_locks(&self) -> Option<Arc<FileLocks>> {
        match self.locks.get() {
            Some(locks) => Some(locks.clone()),
            None => lock::existing_locks(self.attr().ok()?.key()),
        }
    }

    /// flock(2) through this description (None unlocks); see `FileLocks::flock`.
    pub fn flock(&self, kind: Option<LockType>, wait: bool) -> Result<(), Errno> {
        self.locks()?.flock(self.id, kind, wait)
    }

    /// The record-lock owner this description is for OFD locks.
    pub fn ofd_owner(&self) -> RecordOwner {
        RecordOwner::Description(self.id)
    }

    /// The byte range a `struct flock` names for this file (SEEK_CUR from its offset,
    /// SEEK_END from its size).
    pub fn lock_range(&self, whence: i16, start: i64, len: i64) -> Result<Range, Errno> {
        let size = if whence == SEEK_END as i16 {
            self.attr()?.size
        } else {
            0
        };
        Range::from_flock(whence, start, len, self.offset(), size)
    }

    /// F_GETLK: what stands in the way of a `kind` lock of `owner` over `range`.
    pub fn test_lock(&self, owner: RecordOwner, kind: LockType, range: Range) -> Option<Conflict> {
        self.existing_locks()
            .and_then(|locks| locks.test(owner, kind, range))
    }

    /// F_SETLK, F_SETLKW and their OFD forms; see `FileLocks::set`.
    pub fn set_lock(
        &self,
        owner: RecordOwner,
        pid: i32,
        kind: Option<LockType>,
        range: Range,
        wait: bool,
    ) -> Result<(), Errno> {
        self.locks()?.set(owner, pid, kind, range, wait)
    }

    /// The process whose descriptor table has id `owner` closed a descriptor of this file:
    /// all its POSIX locks on the inode go, whichever description took them (fcntl(2)).
    pub fn release_posix_locks(&self, owner: u64) {
        if let Some(locks) = self.existing_locks() {
            locks.release_records(RecordOwner::Process(owner));
        }
    }
}

impl Drop for OpenFile {
    /// The description's last reference is gone: its flock and OFD locks go with it, and
    /// so do the epoll interests in it.
    fn drop(&mut self) {
        self.watches.release(self.ops.wait_queue());
        if let Some(locks) = self.locks.get() {
            locks.release_description(self.id);
        }
    }
}

impl std::fmt::Debug for OpenFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenFile")
            .field("location", &self.location)
            .field("flags", &self.flags())
            .finish()
    }
}
