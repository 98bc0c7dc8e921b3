//! devpts, the file system at /dev/pts: one node per pseudo-terminal whose master is open
//! (`N`, device 136:N) and `ptmx`. Opening /dev/ptmx (device 5:2) makes a new pair; the
//! slave's node appears with it and goes when the master closes (Linux's devpts_pty_new and
//! devpts_pty_kill). Also where the terminal devices are opened: /dev/ptmx, /dev/pts/N,
//! /dev/tty (the caller's controlling terminal) and /dev/console.

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};

use super::{Tty, TtyFile};
use crate::abi::{Errno, Timespec};
use crate::fs::devices::makedev;
use crate::fs::kernfs::{Children, Dir, Meta};
use crate::kernel::{Kernel, Task};
use crate::vfs::{
    resolve, Attr, DirEntry, FileOps, FileType, Inode, OpenFile, SetAttr, Start, O_ACCMODE,
    O_CLOEXEC, O_LARGEFILE, O_WRONLY, S_IFCHR,
};

/// /dev/tty: the opener's controlling terminal.
pub const TTY: u64 = makedev(5, 0);
/// /dev/console: runsc-rs's own terminal, when it has one.
pub const CONSOLE: u64 = makedev(5, 1);
/// /dev/ptmx: each open makes a new pty pair.
pub const PTMX: u64 = makedev(5, 2);
/// The major number of pty slaves (UNIX98_PTY_SLAVE_MAJOR).
const PTS_MAJOR: u64 = 136;
/// How many ptys may exist at once (Linux's default /proc/sys/kernel/pty/max).
const PTY_MAX: u32 = 4096;
/// open(2)'s O_NOCTTY.
pub const O_NOCTTY: u32 = 0o400;

/// The device number of /dev/pts/`index`.
pub fn pts_rdev(index: u32) -> u64 {
    makedev(PTS_MAJOR, u64::from(index))
}

/// Linux's new_decode_dev.
fn major(rdev: u64) -> u64 {
    ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff)
}
fn minor(rdev: u64) -> u64 {
    (rdev & 0xff) | ((rdev >> 12) & !0xff)
}

/// The devpts mount options the Sentry honours (see devpts in mount(8)): the permissions
/// of the ptmx node (`ptmxmode=`), and the permissions and group of new slaves (`mode=`,
/// `gid=`; without `gid=` a slave gets its opener's group).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DevptsOptions {
    pub ptmx_mode: u32,
    pub pty_mode: u32,
    pub pty_gid: Option<u32>,
}

impl Default for DevptsOptions {
    /// Linux's ptmxmode=000; slaves 0620 rather than Linux's 0600, which is what grantpt(3)
    /// would make of them.
    fn default() -> Self {
        DevptsOptions {
            ptmx_mode: 0,
            pty_mode: 0o620,
            pty_gid: None,
        }
    }
}

/// The ptys of a sandbox by number. A number stays taken while anything holds its
/// terminal (the slave may outlive the master); the node is listed while the master is open.
/// The sandbox has one set of ptys, whatever number of mounts show it (as devpts without
/// `newinstance`); `options` are the last mount's (guarded by its mutex).
pub struct Devpts {
    dev: u64,
    ptys: Mutex<BTreeMap<u32, Weak<Tty>>>,
    time: Timespec,
    options: Mutex<DevptsOptions>,
}

impl Devpts {
    pub fn new(dev: u64) -> Arc<Devpts> {
        Arc::new(Devpts {
            dev,
            ptys: Mutex::new(BTreeMap::new()),
            time: super::now(),
            options: Mutex::new(DevptsOptions::default()),
        })
    }

    fn ptys(&self) -> std::sync::MutexGuard<'_, BTreeMap<u32, Weak<Tty>>> {
        super::lock(&self.ptys)
    }

    /// The root directory of a new mount of devpts (at /dev/pts) with `options`, which
    /// slaves made from now on follow.
    pub fn root(self: &Arc<Self>, options: DevptsOptions) -> Arc<dyn Inode> {
        *super::lock(&self.options) = options;
        let ptmx = Arc::new(DevNode {
            attr: Attr {
                // What /dev/ptmx, a symlink to pts/ptmx where runc and Docker make /dev, opens.
                mode: S_IFCHR | (options.ptmx_mode & 0o7777),
                ino: 2,
                dev: self.dev,
                nlink: 1,
                rdev: PTMX,
                blksize: 1024,
                atime: self.time,
                mtime: self.time,
                ctime: self.time,
                ..Attr::default()
            },
        });
        let meta = Meta::new(self.dev, b"/", 0o755);
        Dir::with_children(meta, vec![(b"ptmx".to_vec(), ptmx)], Box::new(self.clone()))
    }

    /// A new pair with the lowest free number, owned by `uid`:`gid`; its master's file.
    /// ENOSPC when PTY_MAX exist.
    pub fn new_pty(&self, kernel: Weak<Kernel>, uid: u32, gid: u32) -> Result<Arc<TtyFile>, Errno> {
        let mut ptys = self.ptys();
        ptys.retain(|_, tty| tty.strong_count() > 0);
        let index = (0..PTY_MAX)
            .find(|i| !ptys.contains_key(i))
            .ok_or(Errno::ENOSPC)?;
        let options = *super::lock(&self.options);
        let master = Tty::new_pty(index, kernel, uid, options.pty_gid.unwrap_or(gid));
        let mut node = master.tty.node_attr();
        node.mode = S_IFCHR | (options.pty_mode & 0o7777);
        master.tty.set_node_attr(node);
        ptys.insert(index, Arc::downgrade(&master.tty));
        Ok(master)
    }

    /// Pty `index`, if its master is open.
    pub fn get(&self, index: u32) -> Option<Arc<Tty>> {
        let tty = self.ptys().get(&index)?.upgrade()?;
        tty.master_open().then_some(tty)
    }
}

impl Children for Arc<Devpts> {
    fn list(&self) -> Result<Vec<DirEntry>, Errno> {
        let live: Vec<u32> = self.ptys().keys().copied().collect();
        Ok(live
            .into_iter()
            .filter(|&i| self.get(i).is_some())
            .map(|i| DirEntry {
                name: i.to_string().into_bytes(),
                ino: u64::from(i) + 3,
                file_type: FileType::CharDevice,
            })
            .collect())
    }

    fn lookup(&self, name: &[u8]) -> Result<Arc<dyn Inode>, Errno> {
        let index = std::str::from_utf8(name)
            .ok()
            .filter(|s| !s.starts_with('0') || s.len() == 1)
            .and_then(|s| s.parse::<u32>().ok())
            .ok_or(Errno::ENOENT)?;
        let tty = self.get(index).ok_or(Errno::ENOENT)?;
        Ok(Arc::new(PtsNode {
            tty: Arc::downgrade(&tty),
            index,
            dev: self.dev,
        }))
    }
}

/// A device node with fixed attributes (devpts's ptmx).
struct DevNode {
    attr: Attr,
}

impl Inode for DevNode {
    fn attr(&self) -> Result<Attr, Errno> {
        Ok(self.attr)
    }

    fn open(self: Arc<Self>, _flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
        // Device nodes open by their number (see `open`).
        Err(Errno::ENXIO)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// /dev/pts/N: the slave of pty N, standing while its master is open.
struct PtsNode {
    tty: Weak<Tty>,
    index: u32,
    dev: u64,
}

impl Inode for PtsNode {
    fn attr(&self) -> Result<Attr, Errno> {
        let node = self.tty.upgrade().map(|t| t.node_attr());
        let (mode, uid, gid, time) = node.map_or((S_IFCHR, 0, 0, Timespec::default()), |n| {
            (n.mode, n.uid, n.gid, n.time)
        });
        Ok(Attr {
            mode,
            ino: u64::from(self.index) + 3,
            dev: self.dev,
            nlink: 1,
            uid,
            gid,
            rdev: pts_rdev(self.index),
            blksize: 1024,
            atime: time,
            mtime: time,
            ctime: time,
            ..Attr::default()
        })
    }

    /// chmod and chown (grantpt's old way, mesg(1)); times are accepted and not kept.
    fn set_attr(&self, changes: &SetAttr) -> Result<(), Errno> {
        if changes.size.is_some() {
            return Err(Errno::EINVAL);
        }
        let tty = self.tty.upgrade().ok_or(Errno::ENOENT)?;
        let mut node = tty.node_attr();
        if let Some(mode) = changes.mode {
            node.mode = S_IFCHR | (mode & 0o7777);
        }
        node.uid = changes.uid.unwrap_or(node.uid);
        node.gid = changes.gid.unwrap_or(node.gid);
        node.time = super::now();
        tty.set_node_attr(node);
        Ok(())
    }

    fn revalidate(&self) -> bool {
        self.tty.upgrade().is_some_and(|t| t.master_open())
    }

    fn open(self: Arc<Self>, _flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
        Err(Errno::ENXIO)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Opens the terminal device `rdev` (whose node is `inode`) for `t` with open flags
/// `flags`; None if `rdev` is no terminal. A slave opened without O_NOCTTY by a session
/// leader that has no controlling terminal becomes its controlling terminal, unless
/// another session has it (Linux's tty_open_proc_set_tty).
pub fn open(
    t: &Task,
    inode: &Arc<dyn Inode>,
    rdev: u64,
    flags: u32,
) -> Option<Result<Arc<dyn FileOps>, Errno>> {
    let kernel = &t.kernel;
    let opened = match rdev {
        PTMX => {
            let master =
                kernel
                    .devpts
                    .new_pty(Arc::downgrade(kernel), t.creds.fsuid, t.creds.fsgid);
            return Some(master.map(|m| m as Arc<dyn FileOps>));
        }
        TTY => kernel.processes.ctty_of(t.tg.pid).ok_or(Errno::ENXIO),
        CONSOLE => kernel.console().cloned().ok_or(Errno::ENXIO),
        _ if major(rdev) == PTS_MAJOR => match inode.as_any().downcast_ref::<PtsNode>() {
            Some(node) => node.tty.upgrade().ok_or(Errno::EIO),
            None => u32::try_from(minor(rdev))
                .ok()
                .and_then(|i| kernel.devpts.get(i))
                .ok_or(Errno::ENXIO),
        },
        _ => return None,
    };
    Some(opened.and_then(|tty| {
        let file = tty.open_slave()?;
        // /dev/tty is the terminal already; /dev/console never becomes one by opening.
        let may_acquire = flags & O_NOCTTY == 0 && !matches!(rdev, TTY | CONSOLE);
        if may_acquire && flags & O_ACCMODE != O_WRONLY {
            let _ = super::make_controlling(&kernel.processes, t.tg.pid, &tty, false, false);
        }
        Ok(file as Arc<dyn FileOps>)
    }))
}

/// TIOCGPTPEER: opens the slave of pty `tty` with open flags `flags` for `t`, without a
/// path lookup (so that a program need not trust /dev/pts/N). The file still names
/// /dev/pts/N, where the caller sees it, for /proc/PID/fd and ttyname(3).
pub fn open_peer(t: &Task, tty: &Arc<Tty>, flags: u32) -> Result<Arc<OpenFile>, Errno> {
    let index = tty.index.ok_or(Errno::EIO)?;
    let weak = Arc::downgrade(tty);
    let root = t.fs.lock().root.clone();
    let start = Start::new(&t.kernel.mounts, &root, &root);
    let at = resolve(start, format!("/dev/pts/{index}").as_bytes(), true)
        .ok()
        .filter(|at| {
            at.dentry
                .inode
                .as_any()
                .downcast_ref::<PtsNode>()
                .is_some_and(|node| node.tty.ptr_eq(&weak))
        });
    let inode: Arc<dyn Inode> = match &at {
        Some(at) => at.dentry.inode.clone(),
        None => Arc::new(PtsNode {
            tty: weak,
            index,
            dev: t.kernel.devpts.dev,
        }),
    };
    let ops = open(t, &inode, pts_rdev(index), flags).unwrap_or(Err(Errno::ENXIO))?;
    let status = (flags & !(O_CLOEXEC | O_NOCTTY)) | O_LARGEFILE;
    Ok(OpenFile::new(at, inode, ops, status))
}
