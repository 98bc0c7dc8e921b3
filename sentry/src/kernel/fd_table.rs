//! File descriptors. Until the VFS lands the only files are the sandbox's standard streams,
//! which are runsc-rs's own stdin, stdout and stderr.

use std::collections::BTreeMap;
use std::io::{stderr, stdin, stdout, Stderr, Stdin, Stdout};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::{Arc, LazyLock, Mutex};

use crate::abi::Errno;

/// One of runsc-rs's standard streams, passed through to the guest.
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
}

/// An open file description.
#[derive(Debug)]
pub enum File {
    HostStdio(HostStdio),
}

/// A process's descriptor table. `files` maps descriptor numbers to open files and their
/// close-on-exec flag.
#[derive(Debug, Default)]
pub struct FdTable {
    files: Mutex<BTreeMap<i32, Descriptor>>,
}

/// One slot of the table.
#[derive(Debug, Clone)]
struct Descriptor {
    file: Arc<File>,
    cloexec: bool,
}

impl FdTable {
    /// A table with 0, 1 and 2 bound to runsc-rs's own standard streams.
    pub fn with_stdio() -> FdTable {
        let files = [HostStdio::In, HostStdio::Out, HostStdio::Err]
            .into_iter()
            .enumerate()
            .map(|(fd, s)| {
                let file = Arc::new(File::HostStdio(s));
                (
                    fd as i32,
                    Descriptor {
                        file,
                        cloexec: false,
                    },
                )
            })
            .collect();
        FdTable {
            files: Mutex::new(files),
        }
    }

    /// The file open at `fd`, or EBADF.
    pub fn get(&self, fd: u64) -> Result<Arc<File>, Errno> {
        let fd = number(fd)?;
        self.lock()
            .get(&fd)
            .map(|d| d.file.clone())
            .ok_or(Errno::EBADF)
    }

    /// Sets or clears the close-on-exec flag of `fd`.
    pub fn set_cloexec(&self, fd: u64, cloexec: bool) -> Result<(), Errno> {
        let fd = number(fd)?;
        let mut files = self.lock();
        let slot = files.get_mut(&fd).ok_or(Errno::EBADF)?;
        slot.cloexec = cloexec;
        Ok(())
    }

    /// Closes `fd`, or EBADF if it was not open.
    pub fn close(&self, fd: u64) -> Result<(), Errno> {
        let fd = number(fd)?;
        self.lock().remove(&fd).map(drop).ok_or(Errno::EBADF)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<i32, Descriptor>> {
        self.files.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A descriptor number from a register (an int in Linux's ABI), or EBADF.
fn number(fd: u64) -> Result<i32, Errno> {
    i32::try_from(fd as i64)
        .ok()
        .filter(|&fd| fd >= 0)
        .ok_or(Errno::EBADF)
}

impl File {
    /// Reads from the file into `buf`.
    pub fn read(&self, buf: &mut [u8]) -> Result<usize, Errno> {
        match self {
            File::HostStdio(s) => retry(|| nix::unistd::read(s.host_fd(), buf)),
        }
    }

    /// Writes `buf` to the file.
    pub fn write(&self, buf: &[u8]) -> Result<usize, Errno> {
        match self {
            File::HostStdio(s) => retry(|| nix::unistd::write(s.host_fd(), buf)),
        }
    }

    /// The host descriptor behind this file, if it is one of runsc-rs's own.
    pub fn host_fd(&self) -> Option<BorrowedFd<'static>> {
        match self {
            File::HostStdio(s) => Some(s.host_fd()),
        }
    }
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
