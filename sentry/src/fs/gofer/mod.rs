//! The gofer file system: inodes whose files live on the host and are reached only through
//! the gofer ([`Client`]), in the manner of gVisor's `fsimpl/gofer`. It is the lower layer
//! of the sandbox's root overlay (or, with `--overlay none`, the root itself).
//!
//! Each [`GoferInode`] holds one node fid, walked one component at a time; the gofer never
//! resolves a path or follows a symlink, and neither does this layer: symlinks are inodes
//! whose target the VFS reads and resolves inside the sandbox's root. Each open file
//! description of a regular file holds an open fid of its own. Fids are closed on drop.
//!
//! # Attribute cache
//!
//! An inode keeps the attributes of its last stat (or of the walk that found it) and uses
//! them while they are both young ([`ATTR_TTL`]: changes made on the host by others show
//! after at most that) and current. "Current" is decided by counters the inodes of one file
//! system share, bumped after every change made through it:
//!
//! * a change of the namespace (create, mkdir, mknod, symlink, link, unlink, rename) bumps
//!   the generation, which makes every cached attribute stale: it changes directories'
//!   times and link counts and the link counts of the files it names;
//! * a write or an attribute change of one host inode bumps the counter of its bucket (host
//!   `(dev, ino)` hashed into one of 64), which makes stale the attributes of every inode
//!   of the same host file (its other names, its other lookups) and, harmlessly, of the few
//!   others in that bucket.
//!
//! So `attr()` after a write, a `set_attr` or a creation made through this file system is
//! always fresh.

use std::any::Any;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use ::gofer::client::{self as client, Client};
use ::gofer::proto::{self, setattr, Fid, FidAttr};
use nix::fcntl::OFlag;

use crate::abi::{Errno, Timespec};
use crate::vfs::{
    Attr, DirEntry, FileOps, FileType, Inode, NewNode, Owner, SetAttr, O_ACCMODE, O_RDONLY,
    S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG,
};

#[cfg(test)]
mod tests;

/// How long cached attributes stand for changes made on the host by others.
pub const ATTR_TTL: Duration = Duration::from_secs(1);
/// Buckets of host inodes whose attributes a write or `set_attr` makes stale.
const BUCKETS: usize = 64;
/// At most this many open fids from `Create` wait for their `open` (see [`Shared::spares`]).
const MAX_SPARES: usize = 8;
/// A spare open fid no `open` took within this time is closed (at the next creation or
/// open of a spare).
const SPARE_TTL: Duration = Duration::from_secs(5);

/// The root inode of the file system the gofer behind `client` serves. Stats the root once,
/// so a dead gofer fails here (EIO) rather than at first use.
///
/// Call it once per client: the attribute cache of each root's tree only knows about
/// changes made through that tree. (Rename and link work across trees of one client.)
pub fn root(client: Arc<Client>) -> Result<Arc<dyn Inode>, Errno> {
    let root = client.root();
    let fs = Arc::new(Shared {
        client,
        generation: AtomicU64::new(0),
        buckets: std::array::from_fn(|_| AtomicU64::new(0)),
        changes: AtomicU64::new(0),
        spares: Mutex::new(Vec::new()),
    });
    if !root.attr.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    // The root fid is the connection's: it lives as long as the client, never closed here.
    let inode = GoferInode::new(&fs, root, false, None);
    inode.attr()?;
    Ok(inode)
}

/// A host inode's identity: `(st_dev, st_ino)` as the gofer reports them.
type HostId = (u64, u64);

/// What the inodes of one gofer file system share: the client and the counters that tell
/// cached attributes whether they are still current (see the module documentation).
struct Shared {
    client: Arc<Client>,
    /// Bumped after every namespace change.
    generation: AtomicU64,
    /// Bumped after a write or attribute change to a host inode of the bucket.
    buckets: [AtomicU64; BUCKETS],
    /// Bumped before any bucket: lets a walk, which learns its inode's bucket only from the
    /// answer, check that no bucket moved while it was out.
    changes: AtomicU64,
    /// Open fids that `Create` returned with the new file, waiting for the `open(2)` that
    /// follows. Taking one lets `open(O_CREAT | O_WRONLY, 0444)` write its new file even
    /// when the gofer itself could not open it for writing again (as Linux lets the
    /// creating open write a read-only file). Few and short-lived: see [`MAX_SPARES`] and
    /// [`SPARE_TTL`].
    spares: Mutex<Vec<Spare>>,
}

/// An open fid (read-write) of a file just created.
struct Spare {
    id: HostId,
    fid: OwnedFid,
    made: Instant,
}

/// The counters a cached attribute was fetched under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    generation: u64,
    bucket: u64,
}

/// The counters read before a walk, to stamp the attributes it returns.
#[derive(Debug, Clone, Copy)]
struct WalkStart {
    generation: u64,
    changes: u64,
    at: Instant,
}

impl Shared {
    fn bucket(&self, id: HostId) -> &AtomicU64 {
        // A cheap mix of dev and ino (Fibonacci hashing); collisions only cost a stat.
        let h = (id.1 ^ id.0.rotate_left(32)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        &self.buckets[(h >> 58) as usize % BUCKETS]
    }

    fn stamp(&self, id: HostId) -> Stamp {
        Stamp {
            generation: self.generation.load(Ordering::SeqCst),
            bucket: self.bucket(id).load(Ordering::SeqCst),
        }
    }

    fn walk_start(&self) -> WalkStart {
        WalkStart {
            generation: self.generation.load(Ordering::SeqCst),
            changes: self.changes.load(Ordering::SeqCst),
            at: Instant::now(),
        }
    }

    /// The stamp for attributes a walk begun at `start` returned for `id`, or None if a
    /// bucket moved meanwhile (it may have been this one).
    fn walk_stamp(&self, start: WalkStart, id: HostId) -> Option<Stamp> {
        let bucket = self.bucket(id).load(Ordering::SeqCst);
        (self.changes.load(Ordering::SeqCst) == start.changes).then_some(Stamp {
            generation: start.generation,
            bucket,
        })
    }

    /// After a namespace change (attempted: a failure may have changed something too).
    fn namespace_changed(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// After a write or attribute change of the host inode `id` (attempted).
    fn data_changed(&self, id: HostId) {
        // `changes` first: a walk that sees it unchanged read the bucket before this bump.
        self.changes.fetch_add(1, Ordering::SeqCst);
        self.bucket(id).fetch_add(1, Ordering::SeqCst);
    }

    fn spares(&self) -> MutexGuard<'_, Vec<Spare>> {
        self.spares.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps the open fid of a file just created for the `open` that follows.
    fn keep_spare(&self, id: HostId, fid: OwnedFid) {
        let mut spares = self.spares();
        let mut closing = take_expired(&mut spares);
        if spares.len() >= MAX_SPARES {
            closing.push(spares.remove(0));
        }
        spares.push(Spare {
            id,
            fid,
            made: Instant::now(),
        });
        drop(spares);
        drop(closing); // Closes them, without holding the lock over the requests.
    }

    /// The spare open fid of the file `id`, if it was just created and is still linked: an
    /// inode number may be reused once its file is gone, but no two live files share one.
    fn take_spare(&self, id: HostId) -> Option<OwnedFid> {
        let mut spares = self.spares();
        let closing = take_expired(&mut spares);
        let taken = spares
            .iter()
            .position(|s| s.id == id)
            .map(|i| spares.remove(i).fid);
        drop(spares);
        drop(closing);
        let file = taken?;
        let attr = self.client.stat(file.fid).ok()?;
        ((attr.dev, attr.ino) == id && attr.nlink > 0).then_some(file)
    }
}

fn take_expired(spares: &mut Vec<Spare>) -> Vec<Spare> {
    let (old, young) = std::mem::take(spares)
        .into_iter()
        .partition(|s| s.made.elapsed() >= SPARE_TTL);
    *spares = young;
    old
}

/// A fid this side must give back: closed on drop, best effort (the gofer may be dead, and
/// then there is nothing to give back).
struct OwnedFid {
    client: Arc<Client>,
    fid: Fid,
    /// False for the root fid, which belongs to the connection.
    close: bool,
}

impl OwnedFid {
    fn new(client: &Arc<Client>, fid: Fid) -> OwnedFid {
        OwnedFid {
            client: client.clone(),
            fid,
            close: true,
        }
    }
}

impl Drop for OwnedFid {
    fn drop(&mut self) {
        if self.close {
            if let Err(errno) = self.client.close(self.fid) {
                log::debug!("gofer: closing fid {}: {errno}", self.fid.0);
            }
        }
    }
}

/// A file served by the gofer. The fid, file type and host identity never change; the
/// cached attributes are guarded by `cache`, the symlink target is read once.
pub struct GoferInode {
    fs: Arc<Shared>,
    node: OwnedFid,
    /// The `S_IFMT` bits: a host inode never changes type.
    file_type: u32,
    id: HostId,
    cache: Mutex<Option<Cached>>,
    /// A symlink's target (a symlink's target never changes).
    target: OnceLock<Vec<u8>>,
}

#[derive(Clone, Copy)]
struct Cached {
    attr: proto::Attr,
    stamp: Stamp,
    /// When the request that fetched it was sent.
    fetched: Instant,
}

impl std::fmt::Debug for GoferInode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoferInode")
            .field("fid", &self.node.fid.0)
            .field("mode", &format_args!("{:o}", self.file_type))
            .field("host", &self.id)
            .finish()
    }
}

impl GoferInode {
    /// An inode for the node `node`; its attributes are cached under `walk` (the walk that
    /// returned them) if given and still consistent.
    fn new(
        fs: &Arc<Shared>,
        node: FidAttr,
        close: bool,
        walk: Option<WalkStart>,
    ) -> Arc<GoferInode> {
        let id = (node.attr.dev, node.attr.ino);
        let cached = walk.and_then(|start| {
            Some(Cached {
                attr: node.attr,
                stamp: fs.walk_stamp(start, id)?,
                fetched: start.at,
            })
        });
        Arc::new(GoferInode {
            fs: fs.clone(),
            node: OwnedFid {
                client: fs.client.clone(),
                fid: node.fid,
                close,
            },
            file_type: node.attr.file_type(),
            id,
            cache: Mutex::new(cached),
            target: OnceLock::new(),
        })
    }

    fn client(&self) -> &Client {
        &self.fs.client
    }

    fn fid(&self) -> Fid {
        self.node.fid
    }

    fn cache(&self) -> MutexGuard<'_, Option<Cached>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn is_dir(&self) -> bool {
        self.file_type == S_IFDIR
    }

    fn dir(&self) -> Result<(), Errno> {
        if self.is_dir() {
            Ok(())
        } else {
            Err(Errno::ENOTDIR)
        }
    }

    /// The attributes as the gofer reports them, from the cache while it is current.
    fn host_attr(&self) -> Result<proto::Attr, Errno> {
        if let Some(c) = *self.cache() {
            if c.fetched.elapsed() < ATTR_TTL && c.stamp == self.fs.stamp(self.id) {
                return Ok(c.attr);
            }
        }
        let stamp = self.fs.stamp(self.id);
        let fetched = Instant::now();
        let attr = self.client().stat(self.fid())?;
        *self.cache() = Some(Cached {
            attr,
            stamp,
            fetched,
        });
        Ok(attr)
    }

    /// Another inode of this file system (same client), or EXDEV.
    fn same_fs<'a>(&self, other: &'a Arc<dyn Inode>) -> Result<&'a GoferInode, Errno> {
        let other = other
            .as_any()
            .downcast_ref::<GoferInode>()
            .ok_or(Errno::EXDEV)?;
        if !Arc::ptr_eq(&self.fs.client, &other.fs.client) {
            return Err(Errno::EXDEV);
        }
        Ok(other)
    }

    /// Walks one name from this directory. The fid of what it finds is the caller's.
    fn walk_one(&self, name: &[u8]) -> Result<(FidAttr, WalkStart), Errno> {
        self.dir()?;
        let start = self.fs.walk_start();
        let walked = self.client().walk(self.fid(), &[name])?;
        match (walked.nodes.first(), walked.error) {
            (Some(node), _) => Ok((*node, start)),
            (None, Some(errno)) => Err(errno),
            // The gofer answered neither a node nor why not.
            (None, None) => Err(Errno::EIO),
        }
    }

    /// Makes `name` as `node` asks; returns the new node and, for a regular file, its open
    /// fid.
    fn make(
        &self,
        name: &[u8],
        node: &NewNode,
        owner: client::Owner,
    ) -> Result<(FidAttr, Option<Fid>), Errno> {
        let c = self.client();
        let dir = self.fid();
        Ok(match node {
            NewNode::File { mode } => {
                // Read-write, so that the open(2) that follows can have it whatever it asks.
                let made = c.create(dir, name, OFlag::O_RDWR, mode & 0o7777, owner)?;
                let node = FidAttr {
                    fid: made.node,
                    attr: made.attr,
                };
                (node, Some(made.file))
            }
            NewNode::Directory { mode } => (c.mkdir(dir, name, mode & 0o7777, owner)?, None),
            NewNode::Fifo { mode } => (c.mknod(dir, name, S_IFIFO | (mode & 0o7777), owner)?, None),
            // Device nodes would reach host devices; the gofer makes none (as it answers).
            NewNode::Device { .. } => return Err(Errno::EPERM),
            NewNode::Symlink { target } => (c.symlink(dir, name, target, owner)?, None),
        })
    }
}

/// The VFS's attributes from the gofer's.
fn vfs_attr(a: &proto::Attr) -> Attr {
    let ts = |t: proto::Timespec| Timespec {
        tv_sec: t.sec,
        tv_nsec: t.nsec,
    };
    Attr {
        mode: a.mode,
        ino: a.ino,
        dev: a.dev,
        nlink: u64::from(a.nlink),
        uid: a.uid,
        gid: a.gid,
        rdev: a.rdev,
        size: a.size,
        blksize: a.blksize,
        blocks: a.blocks,
        atime: ts(a.atime),
        mtime: ts(a.mtime),
        ctime: ts(a.ctime),
    }
}

/// The gofer's attribute changes from the VFS's; `mask` 0 when nothing changes.
fn gofer_set_attr(c: &SetAttr) -> proto::SetAttr {
    let ts = |t: Timespec| proto::Timespec {
        sec: t.tv_sec,
        nsec: t.tv_nsec,
    };
    let mut out = proto::SetAttr::default();
    if let Some(mode) = c.mode {
        out.mask |= setattr::MODE;
        out.mode = mode & 0o7777;
    }
    if let Some(uid) = c.uid {
        out.mask |= setattr::UID;
        out.uid = uid;
    }
    if let Some(gid) = c.gid {
        out.mask |= setattr::GID;
        out.gid = gid;
    }
    if let Some(size) = c.size {
        out.mask |= setattr::SIZE;
        out.size = size;
    }
    if let Some(t) = c.atime {
        out.mask |= setattr::ATIME;
        out.atime = ts(t);
    }
    if let Some(t) = c.mtime {
        out.mask |= setattr::MTIME;
        out.mtime = ts(t);
    }
    out
}

/// The file type of a directory entry's `d_type`; None for `DT_UNKNOWN` (or nonsense).
fn dirent_file_type(kind: u8) -> Option<FileType> {
    // DT_* is the S_IFMT value shifted down by 12 (Linux's IFTODT).
    FileType::from_mode(u32::from(kind) << 12)
}

impl Inode for GoferInode {
    fn attr(&self) -> Result<Attr, Errno> {
        Ok(vfs_attr(&self.host_attr()?))
    }

    fn set_attr(&self, changes: &SetAttr) -> Result<(), Errno> {
        let request = gofer_set_attr(changes);
        if request.mask == 0 {
            return Ok(());
        }
        let result = self.client().set_attr(self.fid(), &request);
        // The answer is the state after the change, but another change may have come since:
        // the next attr() asks again rather than trust it.
        self.fs.data_changed(self.id);
        result.map(drop)
    }

    fn lookup(&self, name: &[u8]) -> Result<Arc<dyn Inode>, Errno> {
        let (node, start) = self.walk_one(name)?;
        Ok(GoferInode::new(&self.fs, node, true, Some(start)))
    }

    fn readdir(&self) -> Result<Vec<DirEntry>, Errno> {
        self.dir()?;
        let c = self.client();
        let open = OwnedFid::new(&self.fs.client, c.open(self.fid(), OFlag::O_DIRECTORY)?);
        let mut entries = Vec::new();
        let mut unknown = Vec::new();
        let mut cookie = 0;
        // A gofer that hands back a cookie already asked for would loop us forever.
        let mut asked = HashSet::from([cookie]);
        loop {
            let batch = c.getdents(open.fid, cookie, c.max_payload())?;
            let Some(last) = batch.last() else {
                break;
            };
            cookie = last.next_cookie;
            for d in batch {
                match dirent_file_type(d.kind) {
                    Some(file_type) => entries.push(DirEntry {
                        name: d.name.as_bytes().to_vec(),
                        ino: d.ino,
                        file_type,
                    }),
                    None => unknown.push((entries.len(), d)),
                }
            }
            if !asked.insert(cookie) {
                log::warn!("gofer: getdents went back to cookie {cookie}");
                return Err(Errno::EIO);
            }
        }
        drop(open);
        // The host file system did not say (DT_UNKNOWN): walk to the entry and look. In
        // reverse, so that the recorded positions stay right as entries go in.
        for (at, d) in unknown.into_iter().rev() {
            let node = match self.walk_one(d.name.as_bytes()) {
                Ok((node, _)) => node,
                Err(Errno::ENOENT) => continue, // Removed since: as if listed a moment later.
                Err(errno) => return Err(errno),
            };
            drop(OwnedFid::new(&self.fs.client, node.fid));
            let file_type = FileType::from_mode(node.attr.mode).ok_or(Errno::EIO)?;
            entries.insert(
                at,
                DirEntry {
                    name: d.name.as_bytes().to_vec(),
                    ino: d.ino,
                    file_type,
                },
            );
        }
        Ok(entries)
    }

    fn create(&self, name: &[u8], node: &NewNode, owner: Owner) -> Result<Arc<dyn Inode>, Errno> {
        self.dir()?;
        let owner = client::Owner {
            uid: owner.uid,
            gid: owner.gid,
        };
        let made = self.make(name, node, owner);
        self.fs.namespace_changed();
        let (node, file) = made?;
        let file = file.map(|fid| OwnedFid::new(&self.fs.client, fid));
        // Its attributes are fetched at first use: one stat, and never a stale answer.
        let inode = GoferInode::new(&self.fs, node, true, None);
        if let Some(file) = file {
            self.fs.keep_spare(inode.id, file);
        }
        Ok(inode)
    }

    fn link(&self, name: &[u8], target: &Arc<dyn Inode>) -> Result<(), Errno> {
        self.dir()?;
        let target = self.same_fs(target)?;
        let result = self.client().link(self.fid(), name, target.fid());
        self.fs.namespace_changed();
        target.fs.namespace_changed();
        // The new name's node fid: nothing keeps it (a lookup makes its own).
        drop(OwnedFid::new(&self.fs.client, result?.fid));
        Ok(())
    }

    fn unlink(&self, name: &[u8], dir: bool) -> Result<(), Errno> {
        self.dir()?;
        let flags = if dir { proto::AT_REMOVEDIR } else { 0 };
        let result = self.client().unlink(self.fid(), name, flags);
        self.fs.namespace_changed();
        result
    }

    fn rename(&self, name: &[u8], new_dir: &Arc<dyn Inode>, new_name: &[u8]) -> Result<(), Errno> {
        self.dir()?;
        let new_dir = self.same_fs(new_dir)?;
        new_dir.dir()?;
        let result = self
            .client()
            .rename(self.fid(), name, new_dir.fid(), new_name, 0);
        self.fs.namespace_changed();
        new_dir.fs.namespace_changed();
        result
    }

    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        if self.file_type != S_IFLNK {
            return Err(Errno::EINVAL);
        }
        if let Some(target) = self.target.get() {
            return Ok(target.clone());
        }
        let target = self.client().readlink(self.fid())?;
        Ok(self.target.get_or_init(|| target).clone())
    }

    fn open(self: Arc<Self>, flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
        match self.file_type & S_IFMT {
            // The VFS lists directories through readdir; no open fid is needed.
            S_IFDIR if flags & O_ACCMODE == O_RDONLY => Ok(Arc::new(GoferDir)),
            S_IFDIR => Err(Errno::EISDIR),
            // O_NOFOLLOW met a symlink (the VFS resolves them before it gets here).
            S_IFLNK => Err(Errno::ELOOP),
            S_IFREG => {
                // Only what the host file must know: the VFS keeps O_APPEND (the offset it
                // writes at) and O_NONBLOCK, and truncates for O_TRUNC through set_attr.
                let sync = flags & (libc::O_DSYNC | libc::O_SYNC) as u32;
                let spare = if sync == 0 {
                    self.fs.take_spare(self.id)
                } else {
                    None
                };
                let file = match spare {
                    Some(file) => file,
                    None => {
                        let oflags = OFlag::from_bits_truncate(((flags & O_ACCMODE) | sync) as i32);
                        let fid = self.client().open(self.fid(), oflags)?;
                        OwnedFid::new(&self.fs.client, fid)
                    }
                };
                Ok(Arc::new(GoferFile { inode: self, file }))
            }
            // FIFOs, sockets and devices are the Sentry's to implement, never the host's.
            _ => Err(Errno::ENXIO),
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// An open regular file: I/O at offsets through its own open fid.
struct GoferFile {
    inode: Arc<GoferInode>,
    file: OwnedFid,
}

impl FileOps for GoferFile {
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        // The client splits what does not fit one request.
        self.inode.client().read(self.file.fid, offset, buf)
    }

    fn write(&self, offset: u64, buf: &[u8]) -> Result<usize, Errno> {
        let written = self.inode.client().write(self.file.fid, offset, buf);
        self.inode.fs.data_changed(self.inode.id);
        written
    }
}

/// An open directory: listed through [`Inode::readdir`], never read.
struct GoferDir;

impl FileOps for GoferDir {
    fn read(&self, _: u64, _: &mut [u8]) -> Result<usize, Errno> {
        Err(Errno::EISDIR)
    }

    fn write(&self, _: u64, _: &[u8]) -> Result<usize, Errno> {
        Err(Errno::EISDIR)
    }
}
