//! The file systems: each implements the VFS's `Inode` and `FileOps`.

pub mod devices;
pub mod gofer;
pub mod host;
pub mod overlay;
pub mod pipe;
pub mod tmpfs;

use std::sync::Arc;

use crate::vfs::{Inode, Location, MountTable, NewNode, Owner, SetAttr};
use tmpfs::Tmpfs;

/// An empty tmpfs to use as the root (tests, and `do` without a gofer).
pub fn tmpfs_root() -> Arc<dyn Inode> {
    Tmpfs::new(devices::makedev(0, 1)).root()
}

/// The tree the sandbox starts with: `root` (of file system type `fs_type`) with a devfs on
/// /dev and, unless the root is already an in-memory overlay, a tmpfs on /tmp. (Over the
/// host's root the overlay keeps /tmp's writes in memory already, and hiding the host's
/// /tmp would hide the programs people run from it.) Missing mount points are created where
/// the root allows it; where it does not, that mount is skipped with a log line.
pub fn boot_root(mounts: &MountTable, root: Arc<dyn Inode>, fs_type: &'static str) -> Location {
    let root_owner = Owner { uid: 0, gid: 0 };
    let root = mounts.root(root, fs_type);
    let mount_on = |name: &str, fs: Arc<Tmpfs>, mode: u32| {
        let dir = NewNode::Directory { mode: 0o755 };
        let _ = root.dentry.inode.create(name.as_bytes(), &dir, root_owner);
        let Ok(dentry) = root.dentry.lookup(name.as_bytes()) else {
            log::warn!("the root has no /{name} and it cannot be made: not mounting one");
            return;
        };
        let at = Location {
            mount: root.mount.clone(),
            dentry,
        };
        let fs_root = fs.root();
        let _ = fs_root.set_attr(&SetAttr {
            mode: Some(mode),
            ..SetAttr::default()
        });
        for (node, rdev, perm) in if name == "dev" {
            devices::DEV_NODES
        } else {
            &[]
        } {
            let mode = crate::vfs::S_IFCHR | perm;
            let _ = fs_root.create(
                node.as_bytes(),
                &NewNode::Device { mode, rdev: *rdev },
                root_owner,
            );
        }
        if let Err(e) = mounts.mount(&at, fs_root, "tmpfs", false) {
            log::warn!("mounting /{name}: {e}");
        }
    };
    mount_on("dev", Tmpfs::new(devices::makedev(0, 2)), 0o755);
    if fs_type != "overlay" {
        mount_on("tmp", Tmpfs::new(devices::makedev(0, 3)), 0o1777);
    }
    root
}
