//! The file systems: each implements the VFS's `Inode` and `FileOps`.

pub mod anon;
pub mod devices;
pub mod epoll;
pub mod eventfd;
pub mod gofer;
pub mod host;
pub mod kernfs;
pub mod overlay;
pub mod pipe;
pub mod proc;
pub mod pseudo;
pub mod signalfd;
pub mod sys;
pub mod timerfd;
pub mod tmpfs;
pub mod tty;

use std::sync::{Arc, Weak};

use crate::abi::Errno;
use crate::kernel::{HostInfo, Kernel};
use crate::vfs::{Inode, Location, MountTable, NewNode, Owner, SetAttr, Start};
use devices::makedev;
use tmpfs::Tmpfs;

/// The device numbers of the sandbox's own file systems at boot.
const DEV_DEV: u64 = makedev(0, 2);
const TMP_DEV: u64 = makedev(0, 3);
const PROC_DEV: u64 = makedev(0, 6);
const SYS_DEV: u64 = makedev(0, 7);
const SHM_DEV: u64 = makedev(0, 8);
pub const DEVPTS_DEV: u64 = makedev(0, 9);

/// An empty tmpfs to use as the root (tests, and `do` without a gofer).
pub fn tmpfs_root() -> Arc<dyn Inode> {
    Tmpfs::new(makedev(0, 1)).root()
}

/// The tree the sandbox starts with: `root` (of file system type `fs_type`) with a devfs on
/// /dev (with a tmpfs on /dev/shm, world-writable and sticky, as systemd and docker mount it:
/// shm_open and sem_open make their files there; devpts on /dev/pts; /dev/console comes
/// with a console, when init is made), procfs on /proc, a read-only sysfs on /sys and, unless the root is
/// already an in-memory overlay, a tmpfs on /tmp. (Over the host's root the overlay keeps /tmp's
/// writes in memory already, and hiding the host's /tmp would hide the programs people run
/// from it.) Missing mount points are created where the root allows it; where it does not,
/// that mount is skipped with a log line. procfs shows `kernel`, which is being made.
pub fn boot_root(
    mounts: &MountTable,
    root: Arc<dyn Inode>,
    fs_type: &'static str,
    kernel: &Weak<Kernel>,
    host: &HostInfo,
    devpts: &Arc<tty::devpts::Devpts>,
) -> Location {
    let root = mounts.root(root, fs_type);
    let mount_on = |name: &str, fs_root: Arc<dyn Inode>, fs_type: &'static str, read_only| {
        if let Err(e) = mount_at(mounts, &root, name.as_bytes(), fs_root, fs_type, read_only) {
            log::warn!("mounting /{name}: {e}");
        }
    };
    let tmpfs_with_mode = |dev: u64, mode: u32| {
        let fs_root = Tmpfs::new(dev).root();
        let _ = fs_root.set_attr(&SetAttr {
            mode: Some(mode),
            ..SetAttr::default()
        });
        fs_root
    };
    let dev = tmpfs_with_mode(DEV_DEV, 0o755);
    for (node, rdev, perm) in devices::DEV_NODES {
        let mode = crate::vfs::S_IFCHR | perm;
        let device = NewNode::Device { mode, rdev: *rdev };
        let _ = dev.create(node.as_bytes(), &device, ROOT_OWNER);
    }
    let _ = dev.create(b"shm", &NewNode::Directory { mode: 0o1777 }, ROOT_OWNER);
    mount_on("dev", dev, "tmpfs", false);
    mount_on("dev/shm", tmpfs_with_mode(SHM_DEV, 0o1777), "tmpfs", false);
    mount_on("dev/pts", devpts.root(), "devpts", false);
    mount_on("proc", proc::new(kernel.clone(), PROC_DEV), "proc", false);
    mount_on("sys", sys::new(SYS_DEV, &host.cpu_mask), "sysfs", true);
    if fs_type != "overlay" {
        mount_on("tmp", tmpfs_with_mode(TMP_DEV, 0o1777), "tmpfs", false);
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
            let start = Start::new(mounts, root, at);
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
