//! The file systems: each implements the VFS's `Inode` and `FileOps`.

pub mod devices;
pub mod host;
pub mod tmpfs;

use crate::vfs::{Location, MountTable, NewNode, Owner, SetAttr};
use tmpfs::Tmpfs;

/// The tree the sandbox starts with: a tmpfs root with /dev (device nodes) and /tmp
/// mounted on it. (The root served by the gofer replaces the tmpfs root when it lands.)
pub fn boot_root(mounts: &MountTable) -> Location {
    let root_owner = Owner { uid: 0, gid: 0 };
    let rootfs = Tmpfs::new(devices::makedev(0, 1));
    let root = mounts.root(rootfs.root(), "tmpfs");
    for dir in ["dev", "tmp", "proc", "sys"] {
        // A fresh tmpfs cannot already hold these names.
        let _ = root.dentry.inode.create(
            dir.as_bytes(),
            &NewNode::Directory { mode: 0o755 },
            root_owner,
        );
    }
    let mount_on = |name: &str, fs: std::sync::Arc<Tmpfs>, mode: u32| {
        let Ok(dentry) = root.dentry.lookup(name.as_bytes()) else {
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
        let _ = mounts.mount(&at, fs_root, "tmpfs", false);
    };
    mount_on("dev", Tmpfs::new(devices::makedev(0, 2)), 0o755);
    mount_on("tmp", Tmpfs::new(devices::makedev(0, 3)), 0o1777);
    root
}
