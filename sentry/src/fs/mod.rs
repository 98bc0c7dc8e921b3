//! The file systems: each implements the VFS's `Inode` and `FileOps`.

pub mod devices;
pub mod gofer;
pub mod host;
pub mod overlay;
pub mod tmpfs;

use std::sync::Arc;

use crate::abi::Errno;
use crate::vfs::{Inode, Location, MountTable, NewNode, Owner, SetAttr, Start};
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
    let root = mounts.root(root, fs_type);
    let mount_on = |name: &str, fs: Arc<Tmpfs>, mode: u32| {
        let fs_root = fs.root();
        let _ = fs_root.set_attr(&SetAttr {
            mode: Some(mode),
            ..SetAttr::default()
        });
        if name == "dev" {
            for (node, rdev, perm) in devices::DEV_NODES {
                let mode = crate::vfs::S_IFCHR | perm;
                let node_kind = NewNode::Device { mode, rdev: *rdev };
                let _ = fs_root.create(node.as_bytes(), &node_kind, ROOT_OWNER);
            }
        }
        if let Err(e) = mount_at(mounts, &root, name.as_bytes(), fs_root, "tmpfs", false) {
            log::warn!("mounting /{name}: {e}");
        }
    };
    mount_on("dev", Tmpfs::new(devices::makedev(0, 2)), 0o755);
    if fs_type != "overlay" {
        mount_on("tmp", Tmpfs::new(devices::makedev(0, 3)), 0o1777);
    }
    root
}

const ROOT_OWNER: Owner = Owner { uid: 0, gid: 0 };

/// Mounts the file system whose root is `fs_root` at `path` (from `root`), making the
/// directories on the way that are missing, as runc does for mount targets.
pub fn mount_at(
    mounts: &MountTable,
    root: &Location,
    path: &[u8],
    fs_root: Arc<dyn Inode>,
    fs_type: &'static str,
    read_only: bool,
) -> Result<Location, Errno> {
    let mut at = root.clone();
    for name in path.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
        let start = |at: &Location| {
            let start = Start { mounts, root, at };
            crate::vfs::resolve(start, name, true)
        };
        at = match start(&at) {
            Err(Errno::ENOENT) => {
                let dir = NewNode::Directory { mode: 0o755 };
                at.dentry.inode.create(name, &dir, ROOT_OWNER)?;
                start(&at)?
            }
            found => found?,
        };
    }
    mounts.mount(&at, fs_root, fs_type, read_only)
}
