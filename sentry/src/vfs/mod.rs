//! The virtual file system: what every file system implements ([`Inode`], [`FileOps`]), the
//! dentry tree that caches names, mounts, and the one path-resolution routine
//! ([`resolve`]).
//!
//! A place in the tree is a [`Location`]: a mount and a dentry in it, like Linux's
//! `struct path`. File systems know nothing of mounts or of other file systems; the VFS
//! crosses mount points and follows symlinks.

mod file;
pub mod lock;
pub mod path;

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};

use crate::abi::{Errno, Stat, Timespec, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM};
use crate::fs::epoll::Epoll;
use crate::fs::pipe::Pipe;
use crate::fs::timerfd::TimerFd;
use crate::net::unix::UnixSocket;
use crate::waiter::WaitQueue;

pub use file::*;
pub use path::{resolve, resolve_parent, Resolved, Start};

/// The Sentry caches about this many dentries in all before it forgets unused ones (each
/// may hold a gofer fid, a host descriptor in the gofer).
const MAX_DENTRIES: usize = 1 << 16;

/// The most symlinks one resolution may follow (Linux's MAXSYMLINKS).
pub const MAX_SYMLINKS: usize = 40;
/// The longest file name (NAME_MAX).
pub const NAME_MAX: usize = 255;

pub const S_IFMT: u32 = 0o170000;
pub const S_IFSOCK: u32 = 0o140000;
pub const S_IFLNK: u32 = 0o120000;
pub const S_IFREG: u32 = 0o100000;
pub const S_IFBLK: u32 = 0o060000;
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFCHR: u32 = 0o020000;
pub const S_IFIFO: u32 = 0o010000;

/// What kind of object an inode is (the S_IFMT part of its mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileType {
    Regular,
    Directory,
    Symlink,
    CharDevice,
    BlockDevice,
    Fifo,
    Socket,
}

impl FileType {
    pub fn from_mode(mode: u32) -> Option<FileType> {
        Some(match mode & S_IFMT {
            S_IFREG => FileType::Regular,
            S_IFDIR => FileType::Directory,
            S_IFLNK => FileType::Symlink,
            S_IFCHR => FileType::CharDevice,
            S_IFBLK => FileType::BlockDevice,
            S_IFIFO => FileType::Fifo,
            S_IFSOCK => FileType::Socket,
            _ => return None,
        })
    }

    pub fn mode_bits(self) -> u32 {
        match self {
            FileType::Regular => S_IFREG,
            FileType::Directory => S_IFDIR,
            FileType::Symlink => S_IFLNK,
            FileType::CharDevice => S_IFCHR,
            FileType::BlockDevice => S_IFBLK,
            FileType::Fifo => S_IFIFO,
            FileType::Socket => S_IFSOCK,
        }
    }

    /// The `d_type` getdents64 reports.
    pub fn dirent_type(self) -> u8 {
        (self.mode_bits() >> 12) as u8
    }
}

/// An inode's attributes, as stat reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Attr {
    /// File type and permission bits.
    pub mode: u32,
    pub ino: u64,
    pub dev: u64,
    pub nlink: u64,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u64,
    pub size: u64,
    pub blksize: u64,
    pub blocks: u64,
    pub atime: Timespec,
    pub mtime: Timespec,
    pub ctime: Timespec,
}

impl Attr {
    pub fn file_type(&self) -> Option<FileType> {
        FileType::from_mode(self.mode)
    }

    /// The identity of the inode these are the attributes of.
    pub fn key(&self) -> InodeKey {
        (self.dev, self.ino)
    }

    /// The attributes in the layout of `struct stat`.
    pub fn to_stat(&self) -> Stat {
        Stat {
            dev: self.dev,
            ino: self.ino,
            nlink: self.nlink,
            mode: self.mode,
            uid: self.uid,
            gid: self.gid,
            pad0: 0,
            rdev: self.rdev,
            size: self.size as i64,
            blksize: self.blksize as i64,
            blocks: self.blocks as i64,
            atime: self.atime.tv_sec,
            atime_nsec: self.atime.tv_nsec,
            mtime: self.mtime.tv_sec,
            mtime_nsec: self.mtime.tv_nsec,
            ctime: self.ctime.tv_sec,
            ctime_nsec: self.ctime.tv_nsec,
            unused: [0; 3],
        }
    }
}

impl crate::abi::Statx {
    /// statx's view of `attr`, claiming the fields in `mask`.
    pub fn from_attr(attr: &Attr, mask: u32) -> crate::abi::Statx {
        let ts = |t: Timespec| crate::abi::StatxTimestamp {
            tv_sec: t.tv_sec,
            tv_nsec: t.tv_nsec as u32,
            reserved: 0,
        };
        // Linux's new_decode_dev.
        let major = |d: u64| (((d >> 8) & 0xfff) | ((d >> 32) & !0xfff)) as u32;
        let minor = |d: u64| ((d & 0xff) | ((d >> 12) & !0xff)) as u32;
        crate::abi::Statx {
            mask,
            blksize: attr.blksize as u32,
            attributes: 0,
            nlink: attr.nlink as u32,
            uid: attr.uid,
            gid: attr.gid,
            mode: attr.mode as u16,
            pad0: 0,
            ino: attr.ino,
            size: attr.size,
            blocks: attr.blocks,
            attributes_mask: 0,
            atime: ts(attr.atime),
            btime: crate::abi::StatxTimestamp::default(),
            ctime: ts(attr.ctime),
            mtime: ts(attr.mtime),
            rdev_major: major(attr.rdev),
            rdev_minor: minor(attr.rdev),
            dev_major: major(attr.dev),
            dev_minor: minor(attr.dev),
            spare: [0; 14],
        }
    }
}

/// One directory entry, as getdents reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub name: Vec<u8>,
    pub ino: u64,
    pub file_type: FileType,
}

/// What to make in a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewNode {
    /// A regular file with these permission bits.
    File {
        mode: u32,
    },
    Directory {
        mode: u32,
    },
    Fifo {
        mode: u32,
    },
    /// A device or a socket file: `mode` has the file type too.
    Device {
        mode: u32,
        rdev: u64,
    },
    Symlink {
        target: Vec<u8>,
    },
}

/// The owner a new node gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

/// Changes to an inode's attributes (chmod, chown, truncate, utimensat); `None` leaves a
/// field alone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SetAttr {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub atime: Option<Timespec>,
    pub mtime: Option<Timespec>,
}

/// A file system object. Directory methods default to ENOTDIR, the rest to what Linux
/// answers for a type that lacks the operation.
pub trait Inode: Send + Sync + Any {
    fn attr(&self) -> Result<Attr, Errno>;

    fn set_attr(&self, _changes: &SetAttr) -> Result<(), Errno> {
        Err(Errno::EPERM)
    }

    /// The child called `name` (never "." or "..": the VFS handles those).
    fn lookup(&self, _name: &[u8]) -> Result<Arc<dyn Inode>, Errno> {
        Err(Errno::ENOTDIR)
    }

    /// Every entry but "." and "..", in a stable order.
    fn readdir(&self) -> Result<Vec<DirEntry>, Errno> {
        Err(Errno::ENOTDIR)
    }

    /// Makes `name` in this directory (EEXIST if it exists).
    fn create(
        &self,
        _name: &[u8],
        _node: &NewNode,
        _owner: Owner,
    ) -> Result<Arc<dyn Inode>, Errno> {
        Err(Errno::ENOTDIR)
    }

    /// Adds a hard link `name` to `target`, an inode of the same file system.
    fn link(&self, _name: &[u8], _target: &Arc<dyn Inode>) -> Result<(), Errno> {
        Err(Errno::ENOTDIR)
    }

    /// Removes `name`: a directory (it must be empty) when `dir`, anything else otherwise.
    fn unlink(&self, _name: &[u8], _dir: bool) -> Result<(), Errno> {
        Err(Errno::ENOTDIR)
    }

    /// Moves `name` to `new_name` in `new_dir`, a directory of the same file system.
    fn rename(
        &self,
        _name: &[u8],
        _new_dir: &Arc<dyn Inode>,
        _new_name: &[u8],
    ) -> Result<(), Errno> {
        Err(Errno::ENOTDIR)
    }

    /// A symlink's target.
    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        Err(Errno::EINVAL)
    }

    /// For a "magic" symlink (procfs's /proc/PID/exe, cwd, root, fd/N): the place it stands
    /// for, which path resolution jumps to instead of resolving the text readlink shows (that
    /// text may name nothing, as "pipe:[5]" or a deleted file's old path). `Ok(None)` for
    /// every other inode, whose target is its text. See Linux's nd_jump_link.
    fn magic_link(&self) -> Result<Option<Location>, Errno> {
        Ok(None)
    }

    /// Whether a cached name for this inode still stands. File systems whose names come and
    /// go by themselves (procfs: processes exit, descriptors close) answer false once the
    /// object is gone, and the name is looked up again (Linux's d_revalidate).
    fn revalidate(&self) -> bool {
        true
    }

    /// Opens the inode for I/O with these open flags.
    fn open(self: Arc<Self>, flags: u32) -> Result<Arc<dyn FileOps>, Errno>;

    fn as_any(&self) -> &dyn Any;
}

impl std::fmt::Debug for dyn Inode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.attr() {
            Ok(a) => write!(f, "Inode(ino {}, mode {:o})", a.ino, a.mode),
            Err(e) => write!(f, "Inode({e})"),
        }
    }
}

/// I/O on an open file. Offsets are kept by the open file description, not here.
pub trait FileOps: Send + Sync {
    /// Reads at `offset` (ignored by streams); returns the bytes read, 0 at end of file.
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno>;
    /// Writes at `offset` (ignored by streams); returns the bytes written.
    fn write(&self, offset: u64, buf: &[u8]) -> Result<usize, Errno>;
    /// How lseek treats the file.
    fn seek_mode(&self) -> SeekMode {
        SeekMode::Normal
    }

    /// read(2) of a stream (`SeekMode::Stream`). `flags` are the open file description's
    /// status flags for this call: whether it may wait (O_NONBLOCK, or preadv2's
    /// RWF_NOWAIT) is the stream's business.
    fn read_stream(&self, buf: &mut [u8], _flags: u32) -> Result<usize, Errno> {
        self.read(0, buf)
    }

    /// write(2) of a stream; as `read_stream` (a pipe also looks at O_DIRECT).
    fn write_stream(&self, buf: &[u8], _flags: u32) -> Result<usize, Errno> {
        self.write(0, buf)
    }

    /// The poll(2) events the file is ready for now. Files that never make anyone wait are
    /// always readable and writable (Linux's DEFAULT_POLLMASK).
    fn readiness(&self) -> u16 {
        POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM
    }

    /// The queue notified whenever `readiness` may have changed; None for files whose
    /// readiness never changes.
    fn wait_queue(&self) -> Option<&WaitQueue> {
        None
    }

    /// Whether poll(2) means anything for the file (Linux's file_can_poll: its driver has a
    /// poll method); epoll refuses the others with EPERM. By default, the files with a wait
    /// queue.
    fn pollable(&self) -> bool {
        self.wait_queue().is_some()
    }

    /// The pipe behind a pipe or fifo end (Linux's get_pipe_info): F_GETPIPE_SZ,
    /// F_SETPIPE_SZ and FIONREAD work on it.
    fn pipe(&self) -> Option<&Pipe> {
        None
    }

    /// The epoll instance, if this is an epoll file.
    fn epoll(&self) -> Option<&Arc<Epoll>> {
        None
    }

    /// The timer, if this is a timerfd.
    fn timerfd(&self) -> Option<&TimerFd> {
        None
    }

    /// The signalfd, if this is one.
    fn signalfd(&self) -> Option<&crate::fs::signalfd::SignalFd> {
        None
    }

    /// What /proc/PID/fdinfo/N shows of the file after the lines every file has.
    fn fdinfo(&self) -> Vec<u8> {
        Vec::new()
    }
    /// The socket, if this is one: the socket calls (bind, connect, sendmsg, ...) work on it;
    /// on other files they fail with ENOTSOCK.
    fn socket(&self) -> Option<&UnixSocket> {
        None
    }

    /// The terminal behind a tty file (a pty's master or slave, the console): the
    /// terminal ioctls work on it.
    fn terminal(&self) -> Option<&crate::fs::tty::TtyFile> {
        None
    }
}

/// An inode's identity, the same for every inode object a file system hands out for it (a
/// gofer file gets one per lookup): its device and inode number.
pub type InodeKey = (u64, u64);

/// State the VFS keeps beside inodes while someone uses it (a fifo's pipe, the file
/// locks): at most one `T` per inode, found by its [`InodeKey`] and alive while anything
/// holds an `Arc` to it. The map is guarded by its mutex; dead entries are swept as it
/// grows.
pub struct PerInode<T> {
    map: Mutex<HashMap<InodeKey, Weak<T>>>,
}

impl<T> Default for PerInode<T> {
    fn default() -> Self {
        PerInode {
            map: Mutex::new(HashMap::new()),
        }
    }
}

impl<T> PerInode<T> {
    fn map(&self) -> MutexGuard<'_, HashMap<InodeKey, Weak<T>>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The state of `key`, if someone holds it.
    pub fn get(&self, key: InodeKey) -> Option<Arc<T>> {
        self.map().get(&key).and_then(Weak::upgrade)
    }

    /// The state of `key`, made by `make` if nobody holds one.
    pub fn get_or_insert_with(&self, key: InodeKey, make: impl FnOnce() -> T) -> Arc<T> {
        let mut map = self.map();
        if let Some(state) = map.get(&key).and_then(Weak::upgrade) {
            return state;
        }
        // Sweeping at each power of two keeps the map within twice the live entries.
        if map.len() >= 64 && map.len().is_power_of_two() {
            map.retain(|_, state| state.strong_count() > 0);
        }
        let state = Arc::new(make());
        map.insert(key, Arc::downgrade(&state));
        state
    }
}

/// How a file's offset behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeekMode {
    /// Regular files and directories.
    Normal,
    /// Pipes, sockets, terminals: lseek, pread and pwrite give ESPIPE.
    Stream,
    /// Devices like /dev/null: lseek always answers 0 (Linux's noop_llseek-like drivers).
    AlwaysZero,
}

/// The I/O of descriptors that allow none (O_PATH): the open file refuses before it gets here.
pub struct NoIo;

impl FileOps for NoIo {
    fn read(&self, _: u64, _: &mut [u8]) -> Result<usize, Errno> {
        Err(Errno::EBADF)
    }
    fn write(&self, _: u64, _: &[u8]) -> Result<usize, Errno> {
        Err(Errno::EBADF)
    }
}

/// A name in the dentry tree: caches lookups of its children. The children map is
/// guarded by its mutex; name, parent and inode never change (rename makes a new dentry).
pub struct Dentry {
    pub name: Vec<u8>,
    pub parent: Option<Arc<Dentry>>,
    pub inode: Arc<dyn Inode>,
    children: Mutex<HashMap<Vec<u8>, Arc<Dentry>>>,
    /// Whether it is on the cache's list of dentries with children.
    listed: AtomicBool,
}

/// The bound on all cached dentries, across directories and mounts. A dentry that only its
/// parent's map holds (no open file, working directory, mount, or cached child of its
/// own) is unused; when the count passes the threshold, unused dentries are forgotten,
/// leaves first, so whole unused subtrees go in a few rounds.
struct DentryCache {
    count: AtomicUsize,
    /// The count that triggers the next shrink: at least MAX_DENTRIES, and twice what a
    /// shrink could not free, so that a cache full of dentries in use is not rescanned at
    /// every lookup.
    threshold: AtomicUsize,
    /// Dentries that have (had) cached children.
    parents: Mutex<Vec<Weak<Dentry>>>,
}

static CACHE: DentryCache = DentryCache {
    count: AtomicUsize::new(0),
    threshold: AtomicUsize::new(MAX_DENTRIES),
    parents: Mutex::new(Vec::new()),
};

impl DentryCache {
    fn shrink(&self) {
        let mut parents = self.parents.lock().unwrap_or_else(|e| e.into_inner());
        // Each round frees the unused leaves; their parents may be leaves in the next.
        for _ in 0..16 {
            let before = self.count.load(Ordering::Relaxed);
            parents.retain(|p| p.strong_count() > 0);
            for parent in parents.iter().filter_map(Weak::upgrade) {
                parent.children().retain(|_, c| Arc::strong_count(c) > 1);
            }
            let after = self.count.load(Ordering::Relaxed);
            if after >= before || after <= MAX_DENTRIES / 2 {
                break;
            }
        }
        let left = self.count.load(Ordering::Relaxed);
        self.threshold
            .store(MAX_DENTRIES.max(2 * left), Ordering::Relaxed);
    }
}

impl Drop for Dentry {
    fn drop(&mut self) {
        CACHE.count.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Dentry {
    fn new(name: Vec<u8>, parent: Option<Arc<Dentry>>, inode: Arc<dyn Inode>) -> Arc<Dentry> {
        CACHE.count.fetch_add(1, Ordering::Relaxed);
        Arc::new(Dentry {
            name,
            parent,
            inode,
            children: Mutex::new(HashMap::new()),
            listed: AtomicBool::new(false),
        })
    }

    /// The root dentry of a file system.
    pub fn root(inode: Arc<dyn Inode>) -> Arc<Dentry> {
        Dentry::new(b"/".to_vec(), None, inode)
    }

    fn children(&self) -> MutexGuard<'_, HashMap<Vec<u8>, Arc<Dentry>>> {
        self.children.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The child `name`, from the cache (if its inode still stands) or looked up in the file
    /// system.
    pub fn lookup(self: &Arc<Dentry>, name: &[u8]) -> Result<Arc<Dentry>, Errno> {
        let cached = self.children().get(name).cloned();
        if let Some(child) = cached {
            // Asked outside the lock: revalidation may look at other kernel state.
            if child.inode.revalidate() {
                return Ok(child);
            }
            let mut children = self.children();
            if children.get(name).is_some_and(|c| Arc::ptr_eq(c, &child)) {
                children.remove(name);
            }
        }
        let inode = self.inode.lookup(name)?;
        let child = Dentry::new(name.to_vec(), Some(self.clone()), inode);
        let child = self
            .children()
            .entry(name.to_vec())
            .or_insert(child)
            .clone();
        if !self.listed.swap(true, Ordering::Relaxed) {
            let mut parents = CACHE.parents.lock().unwrap_or_else(|e| e.into_inner());
            parents.push(Arc::downgrade(self));
        }
        if CACHE.count.load(Ordering::Relaxed) > CACHE.threshold.load(Ordering::Relaxed) {
            CACHE.shrink();
        }
        Ok(child)
    }

    /// Forgets the cached child `name` (after unlink or rename).
    pub fn forget(&self, name: &[u8]) {
        self.children().remove(name);
    }

    pub fn is_dir(&self) -> bool {
        self.inode
            .attr()
            .is_ok_and(|a| a.file_type() == Some(FileType::Directory))
    }
}

#[cfg(test)]
mod dcache_tests {
    use super::*;

    /// A directory with every name in it, each another such directory.
    struct Everything;

    impl Inode for Everything {
        fn attr(&self) -> Result<Attr, Errno> {
            Ok(Attr {
                mode: S_IFDIR | 0o755,
                ..Attr::default()
            })
        }
        fn lookup(&self, _: &[u8]) -> Result<Arc<dyn Inode>, Errno> {
            Ok(Arc::new(Everything))
        }
        fn open(self: Arc<Self>, _: u32) -> Result<Arc<dyn FileOps>, Errno> {
            Err(Errno::EISDIR)
        }
        fn as_any(&self) -> &dyn Any {
            self
        }
    }

    #[test]
    fn the_cache_stays_bounded_across_directories_and_keeps_what_is_used() {
        let root = Dentry::root(Arc::new(Everything));
        let kept = root.lookup(b"kept").unwrap().lookup(b"deep").unwrap();
        // 300 directories of 600 names each: 180,000 dentries were looked up.
        for d in 0..300 {
            let dir = root.lookup(format!("d{d}").as_bytes()).unwrap();
            for f in 0..600 {
                dir.lookup(format!("f{f}").as_bytes()).unwrap();
            }
        }
        let count = CACHE.count.load(Ordering::Relaxed);
        assert!(count <= 2 * MAX_DENTRIES + 1000, "{count} dentries cached");
        // What is held stays cached: the same dentry comes back.
        let again = root.lookup(b"kept").unwrap().lookup(b"deep").unwrap();
        assert!(Arc::ptr_eq(&kept, &again));
    }
}

impl std::fmt::Debug for Dentry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dentry")
            .field("name", &String::from_utf8_lossy(&self.name))
            .finish()
    }
}

/// The per-mount flags of mount(2) that the Sentry keeps: MS_RDONLY (writes fail with
/// EROFS), MS_NOSUID (recorded and shown; exec honours no set-user-ID bit anywhere yet),
/// MS_NODEV (device nodes do not open: EACCES) and MS_NOEXEC (no execve, no PROT_EXEC
/// mapping of its files).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MountFlags {
    pub read_only: bool,
    pub nosuid: bool,
    pub nodev: bool,
    pub noexec: bool,
}

impl MountFlags {
    pub const READ_ONLY: MountFlags = MountFlags {
        read_only: true,
        nosuid: false,
        nodev: false,
        noexec: false,
    };

    /// The flags as /proc/PID/mounts lists them ("ro,nosuid,nodev,noexec").
    pub fn options(&self) -> String {
        let mut out = String::from(if self.read_only { "ro" } else { "rw" });
        for (set, name) in [
            (self.nosuid, ",nosuid"),
            (self.nodev, ",nodev"),
            (self.noexec, ",noexec"),
        ] {
            if set {
                out.push_str(name);
            }
        }
        out
    }

    /// statfs(2)'s f_flags: ST_RDONLY, ST_NOSUID, ST_NODEV, ST_NOEXEC.
    pub fn statfs_flags(&self) -> i64 {
        i64::from(self.read_only)
            | i64::from(self.nosuid) << 1
            | i64::from(self.nodev) << 2
            | i64::from(self.noexec) << 3
    }
}

/// A mounted file system: its root, and where it is mounted (None for the root mount and
/// for detached mounts).
#[derive(Debug)]
pub struct Mount {
    pub id: u64,
    pub root: Arc<Dentry>,
    pub mountpoint: Option<Location>,
    /// The file system's type, for /proc/mounts.
    pub fs_type: &'static str,
    pub flags: MountFlags,
}

/// The id of detached mounts, which no mount table lists.
const DETACHED_ID: u64 = 0;

impl Mount {
    /// A place for `inode`, a file with no name in the tree (a host stream, later a pipe or
    /// a socket), on a mount of its own that is in no table, as Linux keeps such files on
    /// internal mounts (pipefs, anon_inodefs). Reopening one through /proc/PID/fd needs it.
    pub fn detached(inode: Arc<dyn Inode>) -> Location {
        let mount = Arc::new(Mount {
            id: DETACHED_ID,
            root: Dentry::root(inode),
            mountpoint: None,
            fs_type: "anon_inodefs",
            flags: MountFlags::default(),
        });
        Location {
            dentry: mount.root.clone(),
            mount,
        }
    }

    /// Whether this is a detached mount: what it holds has no path.
    pub fn is_detached(&self) -> bool {
        self.id == DETACHED_ID
    }
}

/// A place in the tree: a dentry and the mount it is reached through.
#[derive(Debug, Clone)]
pub struct Location {
    pub mount: Arc<Mount>,
    pub dentry: Arc<Dentry>,
}

impl Location {
    pub fn same(&self, other: &Location) -> bool {
        Arc::ptr_eq(&self.mount, &other.mount) && Arc::ptr_eq(&self.dentry, &other.dentry)
    }
}

/// All mounts of a sandbox, keyed by the place they cover.
#[derive(Debug, Default)]
pub struct MountTable {
    /// (mount id, dentry address) of a mount point → what is mounted on it. The dentry is
    /// kept alive by the mounted Mount's `mountpoint`, so the address stays unique.
    covered: RwLock<HashMap<(u64, usize), Arc<Mount>>>,
    /// Root mounts (they cover nothing), for `list`.
    roots: RwLock<Vec<Arc<Mount>>>,
    next_id: std::sync::atomic::AtomicU64,
    /// Device numbers handed out by `anon_dev`.
    anon_devs: std::sync::atomic::AtomicU64,
}

impl MountTable {
    /// Makes the root mount of `root`.
    pub fn root(&self, root: Arc<dyn Inode>, fs_type: &'static str) -> Location {
        self.root_with(root, fs_type, MountFlags::default())
    }

    /// Like [`MountTable::root`], with mount flags (a read-only root).
    pub fn root_with(
        &self,
        root: Arc<dyn Inode>,
        fs_type: &'static str,
        flags: MountFlags,
    ) -> Location {
        let mount = Arc::new(Mount {
            id: self.next_id(),
            root: Dentry::root(root),
            mountpoint: None,
            fs_type,
            flags,
        });
        self.roots
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(mount.clone());
        Location {
            dentry: mount.root.clone(),
            mount,
        }
    }

    /// Every mount, in the order they were made (by id), for /proc/PID/mounts.
    pub fn list(&self) -> Vec<Arc<Mount>> {
        let mut all: Vec<Arc<Mount>> = self.roots.read().unwrap_or_else(|e| e.into_inner()).clone();
        all.extend(
            self.covered
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .values()
                .cloned(),
        );
        all.sort_by_key(|m| m.id);
        all
    }

    /// Mounts the file system whose root is `root` on `at`. A directory goes on a
    /// directory and anything else (a bind-mounted file) on a non-directory, else ENOTDIR,
    /// as Linux's graft_tree.
    pub fn mount(
        &self,
        at: &Location,
        root: Arc<dyn Inode>,
        fs_type: &'static str,
        flags: MountFlags,
    ) -> Result<Location, Errno> {
        let root_is_dir = root.attr()?.file_type() == Some(FileType::Directory);
        if at.dentry.is_dir() != root_is_dir {
            return Err(Errno::ENOTDIR);
        }
        let mount = Arc::new(Mount {
            id: self.next_id(),
            root: Dentry::root(root),
            mountpoint: Some(at.clone()),
            fs_type,
            flags,
        });
        let key = (at.mount.id, Arc::as_ptr(&at.dentry) as usize);
        self.covered
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, mount.clone());
        Ok(Location {
            dentry: mount.root.clone(),
            mount,
        })
    }

    /// What is mounted on `at`, followed down through mounts stacked on mounts.
    pub fn cross_down(&self, mut at: Location) -> Location {
        let covered = self.covered.read().unwrap_or_else(|e| e.into_inner());
        while let Some(m) = covered.get(&(at.mount.id, Arc::as_ptr(&at.dentry) as usize)) {
            at = Location {
                mount: m.clone(),
                dentry: m.root.clone(),
            };
        }
        at
    }

    /// A device number for a new in-memory file system (Linux's get_anon_bdev: major 0).
    /// Minors below 16 are the fixed ones of `fs` and runsc-rs.
    pub fn anon_dev(&self) -> u64 {
        let n = self
            .anon_devs
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        crate::fs::devices::makedev(0, 16 + n % (1 << 20))
    }

    fn next_id(&self) -> u64 {
        self.next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1
    }
}
