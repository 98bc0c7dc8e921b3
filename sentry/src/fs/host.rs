//! Host descriptors the Sentry was handed, given to the guest as files: runsc-rs's own
//! standard streams for `do`, a container process's stdio and preserved descriptors for the
//! OCI runtime. (Host files otherwise reach the Sentry only through the gofer.)

use std::any::Any;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::abi::{Errno, Timespec, POLLERR};
use crate::vfs::{
    Attr, FileOps, Inode, OpenFile, O_ACCMODE, O_NONBLOCK, O_RDONLY, O_RDWR, O_WRONLY,
};
use crate::waiter::Waker;

/// How long a wait for a host descriptor sleeps before it looks whether a signal came for
/// the task (the host cannot wake a Sentry waker).
const WAIT_SLICE_MS: u8 = 50;
/// What a pipe or terminal that polls writable takes in one write without blocking
/// (PIPE_BUF).
const WRITE_PIECE: usize = 4096;

/// A host descriptor as an inode: stat is the host's, I/O goes to the host descriptor.
/// Shared by every guest file made from it; the descriptor closes with the last.
#[derive(Debug)]
pub struct HostFile {
    fd: Arc<OwnedFd>,
    /// It can make a reader or writer wait (a pipe, a socket, a terminal): calls wait for
    /// it in the Sentry, where a signal can end the wait, rather than in the host.
    may_block: bool,
}

impl HostFile {
    pub fn new(fd: OwnedFd) -> Arc<HostFile> {
        let may_block = nix::sys::stat::fstat(fd.as_fd()).is_ok_and(|st| {
            matches!(
                st.st_mode & libc::S_IFMT,
                libc::S_IFIFO | libc::S_IFSOCK | libc::S_IFCHR
            )
        });
        Arc::new(HostFile {
            fd: Arc::new(fd),
            may_block,
        })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Waits until the host says the descriptor is ready for `events` (or hung up, or
    /// failed: the call itself then tells). EAGAIN at once if `nonblock`; EINTR if a
    /// signal comes for the task first.
    fn wait_for(&self, events: PollFlags, nonblock: bool) -> Result<(), Errno> {
        let waker = Waker::current();
        loop {
            let wait = if nonblock {
                PollTimeout::ZERO
            } else {
                PollTimeout::from(WAIT_SLICE_MS)
            };
            let mut fds = [PollFd::new(self.fd(), events)];
            match poll(&mut fds, wait) {
                Ok(n) if n > 0 => return Ok(()),
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => return Err(e),
            }
            if nonblock {
                return Err(Errno::EAGAIN);
            }
            if waker.interrupted() {
                return Err(Errno::EINTR);
            }
        }
    }
}

/// Host descriptor `fd` as a guest file, open for what the host descriptor is open for
/// (its O_ACCMODE).
pub fn open(fd: OwnedFd) -> Result<Arc<OpenFile>, Errno> {
    use nix::fcntl::{fcntl, FcntlArg};
    let host_flags = fcntl(fd.as_fd(), FcntlArg::F_GETFL)? as u32;
    let flags = match host_flags & O_ACCMODE {
        O_WRONLY => O_WRONLY,
        O_RDWR => O_RDWR,
        _ => O_RDONLY,
    };
    let inode = HostFile::new(fd);
    let ops = inode.clone().open(flags)?;
    Ok(OpenFile::new(None, inode, ops, flags))
}

impl Inode for HostFile {
    fn attr(&self) -> Result<Attr, Errno> {
        let st = nix::sys::stat::fstat(self.fd())?;
        let ts = |sec, nsec| Timespec {
            tv_sec: sec,
            tv_nsec: nsec,
        };
        Ok(Attr {
            mode: st.st_mode,
            ino: st.st_ino,
            dev: st.st_dev,
            nlink: st.st_nlink,
            uid: st.st_uid,
            gid: st.st_gid,
            rdev: st.st_rdev,
            size: st.st_size as u64,
            blksize: st.st_blksize as u64,
            blocks: st.st_blocks as u64,
            atime: ts(st.st_atime, st.st_atime_nsec),
            mtime: ts(st.st_mtime, st.st_mtime_nsec),
            ctime: ts(st.st_ctime, st.st_ctime_nsec),
        })
    }

    fn open(self: Arc<Self>, _flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
        Ok(self)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl FileOps for HostFile {
    fn read(&self, _offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        self.read_stream(buf, 0)
    }

    fn write(&self, _offset: u64, buf: &[u8]) -> Result<usize, Errno> {
        self.write_stream(buf, 0)
    }

    fn read_stream(&self, buf: &mut [u8], flags: u32) -> Result<usize, Errno> {
        if self.may_block {
            self.wait_for(PollFlags::POLLIN, flags & O_NONBLOCK != 0)?;
        }
        retry(|| nix::unistd::read(self.fd(), buf))
    }

    /// To a pipe or terminal, in pieces it takes without blocking, each once the host says
    /// there is room: the whole buffer as a blocking write does, unless a signal comes
    /// (then what was written).
    fn write_stream(&self, buf: &[u8], flags: u32) -> Result<usize, Errno> {
        if !self.may_block {
            return retry(|| nix::unistd::write(self.fd(), buf));
        }
        let mut done = 0;
        while done < buf.len() {
            let piece = buf
                .get(done..buf.len().min(done + WRITE_PIECE))
                .unwrap_or_default();
            let written = self
                .wait_for(PollFlags::POLLOUT, flags & O_NONBLOCK != 0)
                .and_then(|()| retry(|| nix::unistd::write(self.fd(), piece)));
            match written {
                Ok(n) => done += n,
                Err(_) if done > 0 => break,
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }

    fn seek_mode(&self) -> crate::vfs::SeekMode {
        crate::vfs::SeekMode::Stream
    }

    /// What the host says of the descriptor now. It has no wait queue (the host cannot
    /// notify one): waits poll the host for it.
    fn readiness(&self) -> u16 {
        let all = PollFlags::POLLIN | PollFlags::POLLOUT | PollFlags::POLLPRI;
        let mut fds = [PollFd::new(self.fd(), all)];
        match retry(|| poll(&mut fds, PollTimeout::ZERO)) {
            Ok(_) => fds[0].revents().map_or(0, |r| r.bits() as u16),
            Err(_) => POLLERR,
        }
    }

    fn pollable(&self) -> bool {
        true
    }
}

/// The host descriptor behind `file`, if it is a host file (waits poll the host for it).
pub fn host_stream(file: &OpenFile) -> Option<Arc<OwnedFd>> {
    file.inode
        .as_any()
        .downcast_ref::<HostFile>()
        .map(|h| h.fd.clone())
}

/// Retries a host call that a signal to the Sentry interrupted.
fn retry<T>(mut f: impl FnMut() -> Result<T, Errno>) -> Result<T, Errno> {
    loop {
        match f() {
            Err(Errno::EINTR) => continue,
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_pipe_end_is_a_guest_file_with_the_hosts_access_mode() {
        let (r, w) = nix::unistd::pipe().unwrap();
        let reader = open(r).unwrap();
        let writer = open(w).unwrap();
        assert_eq!(reader.flags() & O_ACCMODE, O_RDONLY);
        assert_eq!(writer.flags() & O_ACCMODE, O_WRONLY);
        assert_eq!(writer.write(b"hi"), Ok(2));
        assert!(host_stream(&reader).is_some());
        let mut buf = [0u8; 4];
        assert_eq!(reader.read(&mut buf), Ok(2));
        assert_eq!(&buf[..2], b"hi");
        // A read with nothing there waits, unless the file is non-blocking; a signal
        // for the thread ends the wait.
        reader.set_flags(O_NONBLOCK);
        assert_eq!(reader.read(&mut buf), Err(Errno::EAGAIN));
        reader.set_flags(0);
        let waker = Waker::current();
        let interrupter = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(30));
            waker.interrupt();
        });
        assert_eq!(reader.read(&mut buf), Err(Errno::EINTR));
        interrupter.join().unwrap();
        // The last guest file of the write end closes the host descriptor: end of file.
        drop(writer);
        assert_eq!(reader.read(&mut buf), Ok(0));
    }

    #[test]
    fn a_write_bigger_than_the_pipe_goes_through_whole_as_the_reader_drains() {
        let (r, w) = nix::unistd::pipe().unwrap();
        let writer = open(w).unwrap();
        let data: Vec<u8> = (0..300_000u32).map(|i| i as u8).collect();
        let expected = data.clone();
        let reader = std::thread::spawn(move || {
            let mut all = Vec::new();
            std::io::Read::read_to_end(&mut std::fs::File::from(r), &mut all).unwrap();
            all
        });
        assert_eq!(writer.write(&data), Ok(data.len()));
        drop(writer);
        assert_eq!(reader.join().unwrap(), expected);
    }
}
