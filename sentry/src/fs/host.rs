//! runsc-rs's own standard streams, given to the guest as its descriptors 0, 1 and 2.
//! (Host files otherwise reach the Sentry only through the gofer.)

use std::any::Any;
use std::io::{stderr, stdin, stdout, Stderr, Stdin, Stdout};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::{Arc, LazyLock};

use crate::abi::{Errno, Timespec, POLLERR};
use crate::vfs::{Attr, FileOps, Inode, OpenFile};

/// One of runsc-rs's standard streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostStdio {
    In,
    Out,
    Err,
}

impl HostStdio {
    /// The host descriptor behind it.
    pub fn host_fd(self) -> BorrowedFd<'static> {
        static IN: LazyLock<Stdin> = LazyLock::new(stdin);
        static OUT: LazyLock<Stdout> = LazyLock::new(stdout);
        static ERR: LazyLock<Stderr> = LazyLock::new(stderr);
        match self {
            HostStdio::In => IN.as_fd(),
            HostStdio::Out => OUT.as_fd(),
            HostStdio::Err => ERR.as_fd(),
        }
    }

    pub fn inode(self) -> Arc<dyn Inode> {
        Arc::new(HostFile { stream: self })
    }
}

/// A host stream as an inode: stat is the host's, I/O goes to the host descriptor.
#[derive(Debug)]
pub struct HostFile {
    pub stream: HostStdio,
}

impl Inode for HostFile {
    fn attr(&self) -> Result<Attr, Errno> {
        let st = nix::sys::stat::fstat(self.stream.host_fd())?;
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
        retry(|| nix::unistd::read(self.stream.host_fd(), buf))
    }

    fn write(&self, _offset: u64, buf: &[u8]) -> Result<usize, Errno> {
        retry(|| nix::unistd::write(self.stream.host_fd(), buf))
    }

    fn seek_mode(&self) -> crate::vfs::SeekMode {
        crate::vfs::SeekMode::Stream
    }

    /// What the host says of the stream now. It has no wait queue (the host cannot notify
    /// one): waits poll the host for it.
    fn readiness(&self) -> u16 {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let all = PollFlags::POLLIN | PollFlags::POLLOUT | PollFlags::POLLPRI;
        let mut fds = [PollFd::new(self.stream.host_fd(), all)];
        match retry(|| poll(&mut fds, PollTimeout::ZERO)) {
            Ok(_) => fds[0].revents().map_or(0, |r| r.bits() as u16),
            Err(_) => POLLERR,
        }
    }

    fn pollable(&self) -> bool {
        true
    }
}

/// The host descriptor behind `file`, if it is one of runsc-rs's standard streams.
pub fn host_stream(file: &OpenFile) -> Option<BorrowedFd<'static>> {
    file.inode
        .as_any()
        .downcast_ref::<HostFile>()
        .map(|h| h.stream.host_fd())
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
