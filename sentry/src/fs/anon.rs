//! Files with no inode of their own (Linux's anon_inodefs): epoll instances, eventfds and
//! timerfds. As in Linux they all share one inode — mode 0600 with no file type bits, owned
//! by root — and /proc/PID/fd names each by its kind ("anon_inode:[eventfd]").

use std::any::Any;
use std::sync::{Arc, LazyLock};

use crate::abi::{Errno, Timespec};
use crate::vfs::{Attr, FileOps, Inode, OpenFile};

/// The device anon_inodefs reports in st_dev.
pub const ANON_INODE_DEV: u64 = super::devices::makedev(0, 16);
/// The number of the one anonymous inode.
const ANON_INO: u64 = 1;

/// The anonymous inode, as seen through a file of kind `name` ("eventfd", "eventpoll").
#[derive(Debug)]
pub struct AnonInode {
    pub name: &'static str,
}

impl Inode for AnonInode {
    fn attr(&self) -> Result<Attr, Errno> {
        // The inode exists from the first anonymous file on; its times are then.
        static CREATED: LazyLock<Timespec> = LazyLock::new(|| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            Timespec::from_duration(now)
        });
        Ok(Attr {
            mode: 0o600,
            ino: ANON_INO,
            dev: ANON_INODE_DEV,
            nlink: 1,
            blksize: 4096,
            atime: *CREATED,
            mtime: *CREATED,
            ctime: *CREATED,
            ..Attr::default()
        })
    }

    /// Reopening one through /proc/PID/fd fails as in Linux (anon_inodefs has no open).
    fn open(self: Arc<Self>, _flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
        Err(Errno::ENXIO)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A new open file of kind `name` doing `ops`, with status flags `flags` (Linux's
/// anon_inode_getfile).
pub fn new_file(name: &'static str, ops: Arc<dyn FileOps>, flags: u32) -> Arc<OpenFile> {
    OpenFile::new(None, Arc::new(AnonInode { name }), ops, flags)
}
