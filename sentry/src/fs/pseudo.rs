//! Inodes of objects that live in no directory (Linux's pipefs and sockfs): an anonymous
//! pipe, a socket. They exist for fstat and /proc/PID/fd, and cannot be opened by name.

use std::any::Any;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::abi::{Errno, Timespec};
use crate::vfs::{Attr, FileOps, FileType, Inode, Owner};

/// One such inode: its type and permission bits, device, owner and birth time.
pub struct PseudoInode {
    ino: u64,
    mode: u32,
    dev: u64,
    owner: Owner,
    created: Timespec,
}

impl PseudoInode {
    /// A new inode of `file_type` with permissions `perm` on device `dev`, owned by `owner`
    /// (numbers are never reused, as Linux's get_next_ino).
    pub fn new(file_type: FileType, perm: u32, dev: u64, owner: Owner) -> Arc<PseudoInode> {
        static NEXT_INO: AtomicU64 = AtomicU64::new(1);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Arc::new(PseudoInode {
            ino: NEXT_INO.fetch_add(1, Ordering::Relaxed),
            mode: file_type.mode_bits() | perm,
            dev,
            owner,
            created: Timespec::from_duration(now),
        })
    }
}

impl Inode for PseudoInode {
    fn attr(&self) -> Result<Attr, Errno> {
        Ok(Attr {
            mode: self.mode,
            ino: self.ino,
            dev: self.dev,
            nlink: 1,
            uid: self.owner.uid,
            gid: self.owner.gid,
            rdev: 0,
            size: 0,
            blksize: 4096,
            blocks: 0,
            atime: self.created,
            mtime: self.created,
            ctime: self.created,
        })
    }

    /// Not even through /proc/PID/fd (ENXIO, as Linux).
    fn open(self: Arc<Self>, _flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
        Err(Errno::ENXIO)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
