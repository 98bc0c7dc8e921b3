//! The sandbox's mounts over its root, made at start-up from a plan: a list of
//! [`MountSpec`]s applied in order, as runc applies config.json's `mounts` and then
//! `linux.readonlyPaths` and `linux.maskedPaths`. `runsc-rs do` uses [`default_plan`]; the
//! OCI runtime builds its plan from config.json (runsc-rs's `container::mounts`), parsing
//! each mount's options with [`parse_options`].
//!
//! Missing mount points are made (directories, or an empty file for a file bind mount),
//! following symlinks within the sandbox to where they lead, as runc's securejoin does.
//! A tmpfs mounted on /dev gets runc's default devices and symlinks.

use std::sync::{Arc, Weak};

use crate::abi::Errno;
use crate::fs::devices;
use crate::fs::tmpfs::Tmpfs;
use crate::fs::tty::devpts::{Devpts, DevptsOptions};
use crate::fs::{proc, sys};
use crate::kernel::Kernel;
pub use crate::vfs::MountFlags;
use crate::vfs::{
    resolve, FileType, Inode, Location, MountTable, NewNode, Owner, SetAttr, Start, MAX_SYMLINKS,
    S_IFCHR,
};

/// One mount of the plan: what goes where, with which per-mount flags.
#[derive(Debug, Clone)]
pub struct MountSpec {
    /// An absolute path in the sandbox.
    pub destination: String,
    pub kind: MountKind,
    pub flags: MountFlags,
}

/// What a [`MountSpec`] mounts.
#[derive(Debug, Clone)]
pub enum MountKind {
    /// A file or directory that a gofer serves (a bind mount of a host path): its inode.
    Bind(Arc<dyn Inode>),
    /// A new, empty tmpfs. On /dev it gets runc's default devices.
    Tmpfs(TmpfsOptions),
    Proc,
    Sysfs,
    /// The sandbox's ptys (one set for all devpts mounts, as if never `newinstance`).
    Devpts(DevptsOptions),
    /// POSIX message queues' file system. The Sentry has no POSIX message queues yet
    /// (mq_open is ENOSYS), so this is an empty directory of type "mqueue".
    Mqueue,
    /// cgroup or cgroup2: an empty directory, always read-only (the Sentry has no cgroups to
    /// show; programs that look find none).
    Cgroup,
    /// `linux.maskedPaths`: a directory is covered by an empty read-only tmpfs, anything
    /// else by /dev/null, as runc does, so that it reads empty. A path that does not exist is
    /// left alone.
    Mask,
    /// `linux.readonlyPaths`: what is at the destination is mounted again over itself,
    /// read-only (runc's bind-and-remount). A path that does not exist is left alone.
    ReadOnly,
}

impl MountKind {
    /// The file system type /proc/mounts shows.
    fn fs_type(&self) -> &'static str {
        match self {
            MountKind::Bind(_) => "gofer",
            MountKind::Tmpfs(_) | MountKind::Mask => "tmpfs",
            MountKind::Proc => "proc",
            MountKind::Sysfs => "sysfs",
            MountKind::Devpts(_) => "devpts",
            MountKind::Mqueue => "mqueue",
            MountKind::Cgroup => "cgroup2",
            MountKind::ReadOnly => "bind",
        }
    }
}

/// A tmpfs's mount options: its root's permissions and owner, and its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TmpfsOptions {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// `size=` in bytes, None for no limit or a percentage. Parsed and kept, not enforced
    /// yet: tmpfs has no size limit of its own (the sandbox's memory bounds it).
    pub size: Option<u64>,
}

impl Default for TmpfsOptions {
    /// tmpfs(5)'s defaults: mode 1777, owned by root.
    fn default() -> Self {
        TmpfsOptions {
            mode: 0o1777,
            uid: 0,
            gid: 0,
            size: None,
        }
    }
}

/// What a mount's fstab-style options (OCI `options`) say, for whichever type reads them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MountOptions {
    pub flags: MountFlags,
    /// `bind` or `rbind`: a bind mount whatever the type says (runc's rule).
    pub bind: bool,
    /// `mode=` (octal): tmpfs's root, devpts's new slaves.
    pub mode: Option<u32>,
    /// `uid=`, `gid=`: tmpfs's root owner; `gid=` is devpts's slaves' group too.
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// `size=`: bytes, with an optional k, m, g or t suffix; a percentage is None.
    pub size: Option<u64>,
    /// `ptmxmode=` (octal).
    pub ptmx_mode: Option<u32>,
}

impl MountOptions {
    pub fn tmpfs(&self) -> TmpfsOptions {
        let default = TmpfsOptions::default();
        TmpfsOptions {
            mode: self.mode.unwrap_or(default.mode),
            uid: self.uid.unwrap_or(default.uid),
            gid: self.gid.unwrap_or(default.gid),
            size: self.size,
        }
    }

    pub fn devpts(&self) -> DevptsOptions {
        let default = DevptsOptions::default();
        DevptsOptions {
            ptmx_mode: self.ptmx_mode.unwrap_or(default.ptmx_mode),
            pty_mode: self.mode.unwrap_or(default.pty_mode),
            pty_gid: self.gid,
        }
    }
}

/// Parses OCI mount options. Options the Sentry has no use for (atime flavours, sync,
/// propagation such as `rprivate`, `newinstance`, ...) are ignored with a debug line; a
/// value that does not parse is an error naming it.
pub fn parse_options<S: AsRef<str>>(options: &[S]) -> Result<MountOptions, String> {
    let mut parsed = MountOptions::default();
    for option in options {
        let option = option.as_ref();
        let (name, value) = match option.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (option, None),
        };
        let octal = |v: Option<&str>| -> Result<u32, String> {
            v.and_then(|v| u32::from_str_radix(v, 8).ok())
                .filter(|&m| m <= 0o7777)
                .ok_or_else(|| format!("mount option {option:?}: not an octal mode"))
        };
        let id = |v: Option<&str>| -> Result<u32, String> {
            v.and_then(|v| v.parse::<u32>().ok())
                .ok_or_else(|| format!("mount option {option:?}: not a user or group id"))
        };
        let flags = &mut parsed.flags;
        match (name, value) {
            ("ro", None) => flags.read_only = true,
            ("rw", None) => flags.read_only = false,
            ("nosuid", None) => flags.nosuid = true,
            ("suid", None) => flags.nosuid = false,
            ("nodev", None) => flags.nodev = true,
            ("dev", None) => flags.nodev = false,
            ("noexec", None) => flags.noexec = true,
            ("exec", None) => flags.noexec = false,
            ("bind" | "rbind", None) => parsed.bind = true,
            ("defaults", None) => {}
            ("mode", v) => parsed.mode = Some(octal(v)?),
            ("ptmxmode", v) => parsed.ptmx_mode = Some(octal(v)?),
            ("uid", v) => parsed.uid = Some(id(v)?),
            ("gid", v) => parsed.gid = Some(id(v)?),
            ("size", v) => parsed.size = parse_size(v.unwrap_or_default(), option)?,
            _ => log::debug!("ignoring mount option {option:?}"),
        }
    }
    Ok(parsed)
}

/// tmpfs's `size=`: a number of bytes with an optional k, m, g or t suffix, or a
/// percentage of memory (None: not enforced, see [`TmpfsOptions::size`]).
fn parse_size(value: &str, option: &str) -> Result<Option<u64>, String> {
    let bad = || format!("mount option {option:?}: not a size");
    let (digits, unit) = match value.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() || c == '%' => (&value[..i], Some(c)),
        _ => (value, None),
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let shift = match unit.map(|c| c.to_ascii_lowercase()) {
        None => 0,
        Some('k') => 10,
        Some('m') => 20,
        Some('g') => 30,
        Some('t') => 40,
        Some('%') => return Ok(None),
        Some(_) => return Err(bad()),
    };
    n.checked_mul(1 << shift).map(Some).ok_or_else(bad)
}

/// What `runsc-rs do` mounts over the root: /dev (a tmpfs with the devices), /dev/shm
/// (world-writable and sticky, as systemd and docker mount it: shm_open and sem_open make
/// their files there), /dev/pts, /proc, a read-only /sys and, unless the root is already an
/// in-memory overlay, a tmpfs on /tmp. (Over the host's root the overlay keeps /tmp's writes
/// in memory already, and hiding the host's /tmp would hide the programs people run from it.)
pub fn default_plan(root_type: &str) -> Vec<MountSpec> {
    let spec = |destination: &str, kind, flags| MountSpec {
        destination: destination.to_string(),
        kind,
        flags,
    };
    let tmpfs = |mode| {
        MountKind::Tmpfs(TmpfsOptions {
            mode,
            ..TmpfsOptions::default()
        })
    };
    let rw = MountFlags::default();
    let devpts = DevptsOptions {
        ptmx_mode: 0o666,
        ..DevptsOptions::default()
    };
    let mut plan = vec![
        spec("/dev", tmpfs(0o755), rw),
        spec("/dev/shm", tmpfs(0o1777), rw),
        spec("/dev/pts", MountKind::Devpts(devpts), rw),
        spec("/proc", MountKind::Proc, rw),
        spec("/sys", MountKind::Sysfs, MountFlags::READ_ONLY),
    ];
    if root_type != "overlay" {
        plan.push(spec("/tmp", tmpfs(0o1777), rw));
    }
    plan
}

/// A mount of the plan that could not be made: one line for the user.
#[derive(Debug, thiserror::Error)]
#[error("mounting {fs_type} at {destination}: {reason}")]
pub struct MountError {
    pub destination: String,
    pub fs_type: &'static str,
    pub reason: String,
}

/// What mounting needs of the sandbox: its mount table and root, and what the file systems
/// it makes show (procfs the kernel, devpts the ptys). /dev/console is made later, by
/// `Kernel::prepare_init`, if init gets a terminal.
pub struct Namespace<'a> {
    pub mounts: &'a MountTable,
    pub root: &'a Location,
    pub kernel: Weak<Kernel>,
    pub devpts: &'a Arc<Devpts>,
    /// The CPUs sysfs shows.
    pub cpu_mask: &'a [u8],
}

const ROOT_OWNER: Owner = Owner { uid: 0, gid: 0 };

/// Applies one mount of the plan.
pub fn mount(ns: &Namespace<'_>, spec: &MountSpec) -> Result<(), MountError> {
    let fs_type = spec.kind.fs_type();
    let fail = |reason: String| MountError {
        destination: spec.destination.clone(),
        fs_type,
        reason,
    };
    let errno = |e: Errno| fail(e.desc().to_lowercase());
    let path = clean(&spec.destination).map_err(fail)?;
    let mut flags = spec.flags;
    let (fs_root, at): (Arc<dyn Inode>, Location) = match &spec.kind {
        MountKind::Mask | MountKind::ReadOnly => {
            let start = Start::new(ns.mounts, ns.root, ns.root);
            let at = match resolve(start, path.as_bytes(), true) {
                Err(Errno::ENOENT) => return Ok(()),
                found => found.map_err(errno)?,
            };
            let fs_root = if matches!(spec.kind, MountKind::ReadOnly) {
                flags = at.mount.flags;
                flags.read_only = true;
                at.dentry.inode.clone()
            } else if at.dentry.is_dir() {
                flags = MountFlags::READ_ONLY;
                Tmpfs::new(ns.mounts.anon_dev()).root()
            } else {
                null_device(ns.mounts.anon_dev()).map_err(errno)?
            };
            (fs_root, at)
        }
        kind => {
            let fs_root = new_fs(ns, kind, &path).map_err(errno)?;
            if matches!(kind, MountKind::Cgroup) {
                flags.read_only = true;
            }
            let node = if fs_root.attr().map_err(errno)?.file_type() == Some(FileType::Directory) {
                NewNode::Directory { mode: 0o755 }
            } else {
                NewNode::File { mode: 0o644 }
            };
            let at = make_mount_point(ns, path.as_bytes(), &node).map_err(errno)?;
            (fs_root, at)
        }
    };
    // The name the type shows: a re-mount keeps what it covers.
    let fs_type = match spec.kind {
        MountKind::ReadOnly => at.mount.fs_type,
        _ => fs_type,
    };
    ns.mounts
        .mount(&at, fs_root, fs_type, flags)
        .map(drop)
        .map_err(errno)
}

/// The root of the new file system a mount of `kind` at `path` makes.
fn new_fs(ns: &Namespace<'_>, kind: &MountKind, path: &str) -> Result<Arc<dyn Inode>, Errno> {
    Ok(match kind {
        MountKind::Bind(inode) => inode.clone(),
        MountKind::Tmpfs(options) => {
            let root = Tmpfs::new(ns.mounts.anon_dev()).root();
            root.set_attr(&SetAttr {
                mode: Some(options.mode),
                uid: Some(options.uid),
                gid: Some(options.gid),
                ..SetAttr::default()
            })?;
            if path == "/dev" {
                populate_dev(&root)?;
            }
            root
        }
        MountKind::Proc => proc::new(ns.kernel.clone(), ns.mounts.anon_dev()),
        MountKind::Sysfs => sys::new(ns.mounts.anon_dev(), ns.cpu_mask),
        MountKind::Devpts(options) => ns.devpts.root(*options),
        MountKind::Mqueue => {
            let root = Tmpfs::new(ns.mounts.anon_dev()).root();
            root.set_attr(&SetAttr {
                mode: Some(0o1777),
                ..SetAttr::default()
            })?;
            root
        }
        MountKind::Cgroup => {
            let root = Tmpfs::new(ns.mounts.anon_dev()).root();
            root.set_attr(&SetAttr {
                mode: Some(0o555),
                ..SetAttr::default()
            })?;
            root
        }
        MountKind::Mask | MountKind::ReadOnly => return Err(Errno::EINVAL),
    })
}

/// A /dev/null node of its own, to mask a file with.
fn null_device(dev: u64) -> Result<Arc<dyn Inode>, Errno> {
    let node = NewNode::Device {
        mode: S_IFCHR | 0o666,
        rdev: devices::NULL,
    };
    Tmpfs::new(dev).root().create(b"null", &node, ROOT_OWNER)
}

/// The devices and symlinks runc makes in a container's /dev (libcontainer's default
/// devices and default symlinks): null, zero, full, random, urandom, tty, ptmx (to the
/// devpts mounted on /dev/pts), fd, stdin, stdout, stderr.
fn populate_dev(dev: &Arc<dyn Inode>) -> Result<(), Errno> {
    for (name, rdev, perm) in devices::DEV_NODES.iter() {
        let node = NewNode::Device {
            mode: S_IFCHR | perm,
            rdev: *rdev,
        };
        dev.create(name.as_bytes(), &node, ROOT_OWNER)?;
    }
    for (name, target) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        let link = NewNode::Symlink {
            target: target.as_bytes().to_vec(),
        };
        dev.create(name.as_bytes(), &link, ROOT_OWNER)?;
    }
    Ok(())
}

/// `destination` as a clean absolute path: "." and empty components dropped, ".." taken
/// lexically (never above "/"). The root itself is refused: the sandbox's root is not
/// mounted over.
fn clean(destination: &str) -> Result<String, String> {
    if !destination.starts_with('/') {
        return Err("the path in the sandbox must be absolute".into());
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in destination.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            name => parts.push(name),
        }
    }
    if parts.is_empty() {
        return Err("the sandbox's root cannot be mounted over".into());
    }
    Ok(format!("/{}", parts.join("/")))
}

/// How many components [`make_mount_point`] takes in all, those of the symlinks it
/// follows included: the image (hostile) chooses the symlinks it meets.
const MAX_MOUNT_POINT_STEPS: usize = 1024;

/// Finds `path`, making what is missing: directories on the way and `node` at the end. A
/// dangling symlink on the way is followed to where it leads and that is made, as runc's
/// securejoin does (within the sandbox's root), at most MAX_SYMLINKS of them (ELOOP) and
/// MAX_MOUNT_POINT_STEPS components in all (ENAMETOOLONG). Each component is resolved by
/// `vfs::resolve`, which crosses mounts and takes "." and "..".
fn make_mount_point(ns: &Namespace<'_>, path: &[u8], node: &NewNode) -> Result<Location, Errno> {
    let components = |path: &[u8]| -> Vec<Vec<u8>> {
        path.split(|&b| b == b'/')
            .filter(|c| !c.is_empty())
            .map(<[u8]>::to_vec)
            .collect()
    };
    let mut pending: std::collections::VecDeque<Vec<u8>> = components(path).into();
    let mut at = ns.root.clone();
    let (mut links, mut steps) = (0, 0);
    while let Some(name) = pending.pop_front() {
        steps += 1;
        if steps > MAX_MOUNT_POINT_STEPS {
            return Err(Errno::ENAMETOOLONG);
        }
        let start = Start::new(ns.mounts, ns.root, &at);
        match resolve(start, &name, true) {
            Err(Errno::ENOENT) => {}
            found => {
                at = found?;
                continue;
            }
        }
        match at.dentry.lookup(&name) {
            // A dangling symlink: its target's components go first.
            Ok(link) => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(Errno::ELOOP);
                }
                let target = link.inode.readlink()?;
                if target.first() == Some(&b'/') {
                    at = ns.root.clone();
                }
                for component in components(&target).into_iter().rev() {
                    pending.push_front(component);
                }
            }
            Err(Errno::ENOENT) => {
                let made = if pending.is_empty() {
                    node
                } else {
                    &NewNode::Directory { mode: 0o755 }
                };
                match at.dentry.inode.create(&name, made, ROOT_OWNER) {
                    Ok(_) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(e),
                }
                at.dentry.forget(&name);
                pending.push_front(name);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(at)
}

#[cfg(test)]
mod tests;
