//! The file systems: each implements the VFS's `Inode` and `FileOps`.

pub mod anon;
pub mod devices;
pub mod epoll;
pub mod eventfd;
pub mod gofer;
pub mod host;
pub mod kernfs;
pub mod mounts;
pub mod overlay;
pub mod pipe;
pub mod proc;
pub mod pseudo;
pub mod signalfd;
pub mod sys;
pub mod timerfd;
pub mod tmpfs;
pub mod tty;

use std::sync::Arc;

use crate::vfs::Inode;
use devices::makedev;
use tmpfs::Tmpfs;

/// The device number of devpts (the sandbox's one set of ptys). Other file systems made at
/// start-up take theirs from `MountTable::anon_dev`.
pub const DEVPTS_DEV: u64 = makedev(0, 9);

/// An empty tmpfs to use as the root (tests, and `do` without a gofer).
pub fn tmpfs_root() -> Arc<dyn Inode> {
    Tmpfs::new(makedev(0, 1)).root()
}
