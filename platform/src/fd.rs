//! Descriptors a process inherits at known numbers from its parent (the gofer gets its
//! ring's memory and eventfds this way).

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, FdFlag};

/// Takes ownership of descriptor `fd`, inherited from the parent, and marks it
/// close-on-exec. Fails with EBADF if it is not open.
///
/// Call it once per number, at start-up, before anything else could have taken it over.
pub fn take_inherited(fd: RawFd) -> Result<OwnedFd, Errno> {
    if fd < 3 {
        return Err(Errno::EBADF); // Never stdio.
    }
    // SAFETY: F_GETFD only reads the descriptor's flags; it fails with EBADF if `fd` is not
    // open, so `from_raw_fd` below is only reached for an open descriptor.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if flags < 0 {
        return Err(Errno::last());
    }
    // SAFETY: `fd` is open (checked above) and, by this function's contract, owned by nobody
    // else in this process: it was inherited and is taken exactly once.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    fcntl(&owned, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
    Ok(owned)
}
