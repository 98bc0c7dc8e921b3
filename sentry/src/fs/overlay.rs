//! overlay: a writable view of a read-only tree, like Linux's overlayfs. The sandbox's root
//! is one: the *lower* layer is the host's tree (served by the gofer) and the *upper* layer is
//! a tmpfs in Sentry memory, so a guest may write anywhere and the host is never changed.
//!
//! - Lookup: an upper entry wins; a whiteout in the upper directory hides the lower entry; a
//!   directory present in both is merged unless the upper one is opaque.
//! - Copy-up: the first change to a lower object (write-open, truncate, chmod, chown, utimes,
//!   link) copies it (data, mode, owner, times) and the directories above it into upper.
//!   Reading never copies up.
//! - Whiteouts and opaque markers are the overlay's own bookkeeping, kept beside the upper
//!   tmpfs and keyed by upper inode number; the guest never sees them as files.
//! - Inode numbers: an object reports its lower inode number, and keeps reporting it after
//!   copy-up; objects made in the overlay report their upper number with [`UPPER_INO`] set.
//!   The whole overlay is one device.
//!
//! - Open files: opening for writing copies up first; a read-only descriptor of a lower file
//!   reads lower, and switches to the upper copy once one exists (see `LowerFile`).
//!
//! Not supported, as in Linux overlayfs without `redirect_dir`/`index`: renaming a directory
//! that exists in lower (EXDEV; mv falls back to copy and delete), and keeping lower hard
//! links together: copying up one name makes it a file of its own (still reporting the
//! shared inode number). Changes made to the lower layer behind the overlay's back may be
//! seen late or not at all. Every directory made in the overlay is opaque.

use std::any::Any;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};

use crate::abi::Errno;
use crate::vfs::{
    Attr, DirEntry, FileOps, FileType, Inode, NewNode, Owner, SeekMode, SetAttr, O_ACCMODE,
    O_RDONLY, O_TRUNC, O_WRONLY,
};

use super::tmpfs::Tmpfs;

/// Set in the inode number of objects that exist only in upper, so they never collide with
/// lower inode numbers (which are reported as they are). Like Linux's `xino` layer bits.
pub const UPPER_INO: u64 = 1 << 63;

/// How much data one step of a copy-up moves.
const COPY_CHUNK: usize = 64 * 1024;

/// The overlay of `lower` (read-only, never written) under `upper` (a tmpfs that takes every
/// change); `dev` is the st_dev every object reports. Returns the merged root directory,
/// whose attributes start as the lower root's.
pub fn overlay(
    lower: Arc<dyn Inode>,
    upper: Arc<Tmpfs>,
    dev: u64,
) -> Result<Arc<dyn Inode>, Errno> {
    let attr = lower.attr()?;
    if kind_of(&attr)? != FileType::Directory {
        return Err(Errno::ENOTDIR);
    }
    let upper_root = upper.root();
    upper_root.set_attr(&SetAttr {
        mode: Some(attr.mode & 0o7777),
        uid: Some(attr.uid),
        gid: Some(attr.gid),
        size: None,
        atime: Some(attr.atime),
        mtime: Some(attr.mtime),
    })?;
    let mut book = Book::default();
    book.origin_ino.insert(upper_root.attr()?.ino, attr.ino);
    let fs = Arc::new(Overlay {
        dev,
        upper_root: upper_root.clone(),
        namespace: RwLock::new(()),
        book: Mutex::new(book),
        next_tmp: AtomicU64::new(0),
    });
    let root: Arc<dyn Inode> = OvlInode::new(
        fs,
        attr.ino,
        FileType::Directory,
        Some(lower),
        Some(upper_root),
        None,
        b"/".to_vec(),
    );
    Ok(root)
}

/// One overlay instance.
///
/// `namespace` orders changes to the tree: lookups and readdir hold it for reading; create,
/// link, unlink, rename and copy-up hold it for writing, so a lookup never sees half of a
/// change. (A big copy-up therefore stalls lookups until it is done.) `book` guards the
/// bookkeeping; it is taken alone, never while calling into a layer.
struct Overlay {
    dev: u64,
    upper_root: Arc<dyn Inode>,
    namespace: RwLock<()>,
    book: Mutex<Book>,
    /// Names for anonymous copy-ups (see `OvlInode::copy_up`).
    next_tmp: AtomicU64,
}

/// The overlay's bookkeeping, keyed by upper inode numbers (tmpfs never reuses them).
#[derive(Debug, Default)]
struct Book {
    /// Upper inode → the inode number it reports: that of the lower object it was copied from.
    origin_ino: HashMap<u64, u64>,
    /// Upper directory → names of its lower directory that were removed.
    whiteouts: HashMap<u64, BTreeSet<Vec<u8>>>,
    /// Upper directories that hide whatever lower holds under their name.
    opaque: HashSet<u64>,
}

impl Overlay {
    fn read(&self) -> RwLockReadGuard<'_, ()> {
        self.namespace.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, ()> {
        self.namespace.write().unwrap_or_else(|e| e.into_inner())
    }

    fn book(&self) -> MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The inode number reported for the object whose upper inode number is `upper_ino`.
    fn ino_of_upper(book: &Book, upper_ino: u64) -> u64 {
        book.origin_ino
            .get(&upper_ino)
            .copied()
            .unwrap_or(upper_ino | UPPER_INO)
    }

    fn is_whiteout(&self, upper_dir: u64, name: &[u8]) -> bool {
        self.book()
            .whiteouts
            .get(&upper_dir)
            .is_some_and(|w| w.contains(name))
    }

    fn add_whiteout(&self, upper_dir: u64, name: &[u8]) {
        self.book()
            .whiteouts
            .entry(upper_dir)
            .or_default()
            .insert(name.to_vec());
    }

    /// Removes a whiteout; says whether there was one.
    fn remove_whiteout(&self, upper_dir: u64, name: &[u8]) -> bool {
        let mut book = self.book();
        let Some(set) = book.whiteouts.get_mut(&upper_dir) else {
            return false;
        };
        let had = set.remove(name);
        if set.is_empty() {
            book.whiteouts.remove(&upper_dir);
        }
        had
    }

    /// Makes `node` under a fresh name in the upper root (for the caller to remove soon);
    /// returns it and the name. Names a guest took are skipped.
    fn create_anonymous(
        &self,
        node: &NewNode,
        owner: Owner,
    ) -> Result<(Arc<dyn Inode>, Vec<u8>), Errno> {
        loop {
            let n = self.next_tmp.fetch_add(1, Ordering::Relaxed);
            let name = format!(".overlay-copy-up.{n}").into_bytes();
            match self.upper_root.create(&name, node, owner) {
                Err(Errno::EEXIST) => continue,
                other => return other.map(|upper| (upper, name)),
            }
        }
    }

    /// Drops the bookkeeping of an upper inode that no name refers to any more.
    fn forget_if_gone(&self, upper: &Arc<dyn Inode>) {
        if let Ok(attr) = upper.attr() {
            if attr.nlink == 0 {
                let mut book = self.book();
                book.origin_ino.remove(&attr.ino);
                book.whiteouts.remove(&attr.ino);
                book.opaque.remove(&attr.ino);
            }
        }
    }
}

/// An overlay object: its lower object (fixed when it is looked up; None for objects made in
/// the overlay and for opaque directories) and its upper one (set by copy-up). `state` guards
/// what changes; it is never held while calling into a layer or another overlay inode.
struct OvlInode {
    fs: Arc<Overlay>,
    /// Itself, for the methods that get `&self` but must hand out an `Arc` (children's
    /// parent links). Always upgradable while a method runs.
    this: Weak<OvlInode>,
    /// The inode number reported; it never changes.
    ino: u64,
    kind: FileType,
    lower: Option<Arc<dyn Inode>>,
    state: Mutex<NodeState>,
}

struct NodeState {
    upper: Option<Arc<dyn Inode>>,
    /// Where it is: needed to copy it up. None only for the root.
    parent: Option<Arc<OvlInode>>,
    name: Vec<u8>,
    /// Removed (or replaced by a rename) while something still held it.
    unlinked: bool,
    /// Directories: the children looked up, so that one name is one object (copy-up
    /// then shows through every holder).
    children: HashMap<Vec<u8>, Weak<OvlInode>>,
}

impl OvlInode {
    fn new(
        fs: Arc<Overlay>,
        ino: u64,
        kind: FileType,
        lower: Option<Arc<dyn Inode>>,
        upper: Option<Arc<dyn Inode>>,
        parent: Option<Arc<OvlInode>>,
        name: Vec<u8>,
    ) -> Arc<OvlInode> {
        Arc::new_cyclic(|this| OvlInode {
            fs,
            this: this.clone(),
            ino,
            kind,
            lower,
            state: Mutex::new(NodeState {
                upper,
                parent,
                name,
                unlinked: false,
                children: HashMap::new(),
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, NodeState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn arc(&self) -> Result<Arc<OvlInode>, Errno> {
        self.this.upgrade().ok_or(Errno::ESTALE)
    }

    fn upper(&self) -> Option<Arc<dyn Inode>> {
        self.lock().upper.clone()
    }

    /// Another inode of this overlay, or EXDEV.
    fn same_fs(&self, other: &Arc<dyn Inode>) -> Result<Arc<OvlInode>, Errno> {
        let any: Arc<dyn Any + Send + Sync> = other.clone();
        let other = any.downcast::<OvlInode>().map_err(|_| Errno::EXDEV)?;
        if !Arc::ptr_eq(&self.fs, &other.fs) {
            return Err(Errno::EXDEV);
        }
        Ok(other)
    }

    /// The child `name` of this directory in the merged view. Call with `namespace` held.
    fn child(&self, name: &[u8]) -> Result<Arc<OvlInode>, Errno> {
        if self.kind != FileType::Directory {
            return Err(Errno::ENOTDIR);
        }
        let upper_dir = {
            let s = self.lock();
            if s.unlinked {
                return Err(Errno::ENOENT);
            }
            if let Some(child) = s.children.get(name).and_then(Weak::upgrade) {
                return Ok(child);
            }
            s.upper.clone()
        };
        let mut upper = None;
        let mut whited_out = false;
        if let Some(dir) = &upper_dir {
            upper = present(dir.lookup(name))?;
            if upper.is_none() {
                whited_out = self.fs.is_whiteout(dir.attr()?.ino, name);
            }
        }
        let upper_attr = upper.as_ref().map(|u| u.attr()).transpose()?;
        let upper_kind = upper_attr.as_ref().map(kind_of).transpose()?;
        let want_lower = match (&upper_attr, upper_kind) {
            (None, _) => !whited_out,
            (Some(a), Some(FileType::Directory)) => !self.fs.book().opaque.contains(&a.ino),
            _ => false,
        };
        let mut lower = None;
        if let (true, Some(dir)) = (want_lower, &self.lower) {
            if let Some(child) = present(dir.lookup(name))? {
                let attr = child.attr()?;
                let kind = kind_of(&attr)?;
                // Under an upper entry only a directory merges.
                if upper_kind.is_none() || kind == FileType::Directory {
                    lower = Some((child, attr.ino, kind));
                }
            }
        }
        let (ino, kind) = match (&upper_attr, &lower, upper_kind) {
            (Some(a), _, Some(kind)) => (Overlay::ino_of_upper(&self.fs.book(), a.ino), kind),
            (None, Some((_, ino, kind)), _) => (*ino, *kind),
            _ => return Err(Errno::ENOENT),
        };
        let node = OvlInode::new(
            self.fs.clone(),
            ino,
            kind,
            lower.map(|(l, _, _)| l),
            upper,
            Some(self.arc()?),
            name.to_vec(),
        );
        let mut s = self.lock();
        // Another lookup may have got there first: one name, one object.
        if let Some(child) = s.children.get(name).and_then(Weak::upgrade) {
            return Ok(child);
        }
        let len = s.children.len();
        if len >= 1024 && len.is_power_of_two() {
            s.children.retain(|_, c| c.strong_count() > 0);
        }
        s.children.insert(name.to_vec(), Arc::downgrade(&node));
        Ok(node)
    }

    /// The merged entries of this directory: upper's, then lower's that are neither
    /// shadowed nor whited out. Call with `namespace` held.
    fn entries(&self) -> Result<Vec<DirEntry>, Errno> {
        if self.kind != FileType::Directory {
            return Err(Errno::ENOTDIR);
        }
        let (upper, unlinked) = {
            let s = self.lock();
            (s.upper.clone(), s.unlinked)
        };
        if unlinked {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut whiteouts = BTreeSet::new();
        if let Some(dir) = upper {
            let dir_ino = dir.attr()?.ino;
            let entries = dir.readdir()?;
            let book = self.fs.book();
            if let Some(w) = book.whiteouts.get(&dir_ino) {
                whiteouts = w.clone();
            }
            for e in entries {
                seen.insert(e.name.clone());
                let ino = Overlay::ino_of_upper(&book, e.ino);
                out.push(DirEntry { ino, ..e });
            }
        }
        if let Some(dir) = &self.lower {
            for e in dir.readdir()? {
                if !whiteouts.contains(&e.name) && seen.insert(e.name.clone()) {
                    out.push(e);
                }
            }
        }
        Ok(out)
    }

    /// Whether this directory's lower layer has `name`, so that removing it needs a
    /// whiteout. When lower cannot say (EIO), answers yes: a needless whiteout is harmless.
    fn lower_has(&self, name: &[u8]) -> bool {
        self.lower
            .as_ref()
            .is_some_and(|dir| !matches!(dir.lookup(name), Err(Errno::ENOENT)))
    }

    /// The upper inode, made by copying this object (and first its parents) up if there is
    /// none yet. For a regular file, at most `limit` bytes of data are copied (a truncation
    /// needs no more). Call with `namespace` held for writing.
    fn copy_up(&self, limit: Option<u64>) -> Result<Arc<dyn Inode>, Errno> {
        let (upper, parent, name, unlinked) = {
            let s = self.lock();
            (
                s.upper.clone(),
                s.parent.clone(),
                s.name.clone(),
                s.unlinked,
            )
        };
        if let Some(upper) = upper {
            return Ok(upper);
        }
        // Every object has a layer; and the root, with no parent, always has upper.
        let lower = self.lower.clone().ok_or(Errno::EIO)?;
        let attr = lower.attr()?;
        if unlinked && self.kind == FileType::Directory {
            return Err(Errno::ENOENT);
        }
        let dir = match parent {
            // Removed but still open (fchmod, ftruncate): copied to a name in the upper
            // root that is removed at once, like Linux's copy-up through O_TMPFILE.
            _ if unlinked => self.fs.upper_root.clone(),
            Some(parent) => parent.copy_up(None)?,
            None => return Err(Errno::EIO),
        };
        let perm = attr.mode & 0o7777;
        let node = match self.kind {
            FileType::Regular => NewNode::File { mode: perm },
            FileType::Directory => NewNode::Directory { mode: perm },
            FileType::Symlink => NewNode::Symlink {
                target: lower.readlink()?,
            },
            FileType::Fifo => NewNode::Fifo { mode: perm },
            FileType::CharDevice | FileType::BlockDevice | FileType::Socket => NewNode::Device {
                mode: attr.mode,
                rdev: attr.rdev,
            },
        };
        let owner = Owner {
            uid: attr.uid,
            gid: attr.gid,
        };
        let (upper, name) = if unlinked {
            self.fs.create_anonymous(&node, owner)?
        } else {
            (dir.create(&name, &node, owner)?, name)
        };
        let is_dir = self.kind == FileType::Directory;
        if let Err(e) = self.fill_copy(&lower, &upper, &attr, limit) {
            let _ = dir.unlink(&name, is_dir);
            return Err(e);
        }
        if unlinked {
            dir.unlink(&name, false)?;
        } else {
            let upper_ino = upper.attr()?.ino;
            self.fs.book().origin_ino.insert(upper_ino, self.ino);
        }
        self.lock().upper = Some(upper.clone());
        Ok(upper)
    }

    /// Copies data (regular files) and attributes from `lower` into its fresh copy `upper`.
    fn fill_copy(
        &self,
        lower: &Arc<dyn Inode>,
        upper: &Arc<dyn Inode>,
        attr: &Attr,
        limit: Option<u64>,
    ) -> Result<(), Errno> {
        if self.kind == FileType::Regular {
            let src = lower.clone().open(O_RDONLY)?;
            let dst = upper.clone().open(O_WRONLY)?;
            // As Linux does, copy the size lower had when the copy began.
            let limit = limit.unwrap_or(u64::MAX).min(attr.size);
            let mut buf = vec![0u8; COPY_CHUNK];
            let mut offset = 0u64;
            while offset < limit {
                let want = (limit - offset).min(COPY_CHUNK as u64) as usize;
                let chunk = buf.get_mut(..want).ok_or(Errno::EIO)?;
                // A lower layer that claims more than it was asked for is not trusted.
                let n = src.read(offset, chunk)?.min(want);
                if n == 0 {
                    break;
                }
                let mut done = 0;
                while done < n {
                    let part = chunk.get(done..n).ok_or(Errno::EIO)?;
                    let w = dst.write(offset + done as u64, part)?;
                    if w == 0 {
                        return Err(Errno::EIO);
                    }
                    done += w;
                }
                offset += n as u64;
            }
        }
        upper.set_attr(&SetAttr {
            mode: (self.kind != FileType::Symlink).then_some(attr.mode & 0o7777),
            uid: None,
            gid: None,
            size: None,
            atime: Some(attr.atime),
            mtime: Some(attr.mtime),
        })
    }

    /// Marks `child` gone from this directory after unlink or rename-over.
    fn detach(&self, name: &[u8], child: &OvlInode) {
        self.lock().children.remove(name);
        child.lock().unlinked = true;
        if let Some(upper) = child.upper() {
            self.fs.forget_if_gone(&upper);
        }
    }
}

impl Inode for OvlInode {
    fn attr(&self) -> Result<Attr, Errno> {
        let (upper, unlinked) = {
            let s = self.lock();
            (s.upper.clone(), s.unlinked)
        };
        let mut attr = match (upper, &self.lower) {
            (Some(upper), lower) => {
                let mut attr = upper.attr()?;
                // A merged directory shows the lower directory's size and link count (its
                // upper half is only a container for what changed), as ls shows natively.
                let merged_dir =
                    attr.file_type() == Some(FileType::Directory) && !unlinked && attr.nlink > 0;
                if let Some(lower) = lower.as_ref().filter(|_| merged_dir) {
                    if let Ok(l) = lower.attr() {
                        if l.file_type() == Some(FileType::Directory) {
                            attr.size = l.size;
                            attr.nlink = l.nlink;
                            attr.blocks = l.blocks;
                        }
                    }
                }
                attr.dev = self.fs.dev;
                attr
            }
            (None, Some(lower)) => {
                let mut attr = lower.attr()?;
                if unlinked {
                    attr.nlink = 0;
                }
                // Like Linux overlayfs without xino: a non-directory still in the lower layer
                // keeps its real device; directories are the overlay's.
                if attr.file_type() == Some(FileType::Directory) {
                    attr.dev = self.fs.dev;
                }
                attr
            }
            (None, None) => return Err(Errno::EIO),
        };
        attr.ino = self.ino;
        Ok(attr)
    }

    fn set_attr(&self, changes: &SetAttr) -> Result<(), Errno> {
        let upper = match self.upper() {
            Some(upper) => upper,
            None => {
                let _w = self.fs.write();
                self.copy_up(changes.size)?
            }
        };
        upper.set_attr(changes)
    }

    fn lookup(&self, name: &[u8]) -> Result<Arc<dyn Inode>, Errno> {
        let _r = self.fs.read();
        Ok(self.child(name)?)
    }

    fn readdir(&self) -> Result<Vec<DirEntry>, Errno> {
        let _r = self.fs.read();
        self.entries()
    }

    fn create(&self, name: &[u8], node: &NewNode, owner: Owner) -> Result<Arc<dyn Inode>, Errno> {
        let _w = self.fs.write();
        match self.child(name) {
            Ok(_) => return Err(Errno::EEXIST),
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(e),
        }
        if self.lock().unlinked {
            return Err(Errno::ENOENT);
        }
        let dir = self.copy_up(None)?;
        let dir_ino = dir.attr()?.ino;
        let had_whiteout = self.fs.remove_whiteout(dir_ino, name);
        let upper = match dir.create(name, node, owner) {
            Ok(upper) => upper,
            Err(e) => {
                if had_whiteout {
                    self.fs.add_whiteout(dir_ino, name);
                }
                return Err(e);
            }
        };
        let attr = upper.attr()?;
        let kind = kind_of(&attr)?;
        if kind == FileType::Directory {
            // Nothing of lower showed through at this name when it was made (it did not
            // exist or was whited out), and nothing should later: the new directory is opaque.
            self.fs.book().opaque.insert(attr.ino);
        }
        let child = OvlInode::new(
            self.fs.clone(),
            attr.ino | UPPER_INO,
            kind,
            None,
            Some(upper),
            Some(self.arc()?),
            name.to_vec(),
        );
        self.lock()
            .children
            .insert(name.to_vec(), Arc::downgrade(&child));
        Ok(child)
    }

    fn link(&self, name: &[u8], target: &Arc<dyn Inode>) -> Result<(), Errno> {
        let _w = self.fs.write();
        let target = self.same_fs(target)?;
        if target.kind == FileType::Directory {
            return Err(Errno::EPERM);
        }
        if target.lock().unlinked {
            return Err(Errno::ENOENT);
        }
        match self.child(name) {
            Ok(_) => return Err(Errno::EEXIST),
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(e),
        }
        let target_upper = target.copy_up(None)?;
        let dir = self.copy_up(None)?;
        let dir_ino = dir.attr()?.ino;
        let had_whiteout = self.fs.remove_whiteout(dir_ino, name);
        if let Err(e) = dir.link(name, &target_upper) {
            if had_whiteout {
                self.fs.add_whiteout(dir_ino, name);
            }
            return Err(e);
        }
        Ok(())
    }

    fn unlink(&self, name: &[u8], dir: bool) -> Result<(), Errno> {
        let _w = self.fs.write();
        let child = self.child(name)?;
        let child_is_dir = child.kind == FileType::Directory;
        match (dir, child_is_dir) {
            (true, false) => return Err(Errno::ENOTDIR),
            (false, true) => return Err(Errno::EISDIR),
            _ => {}
        }
        // rmdir looks at the merged view: lower entries count unless whited out.
        if child_is_dir && !child.entries()?.is_empty() {
            return Err(Errno::ENOTEMPTY);
        }
        let needs_whiteout = self.lower_has(name);
        let upper_dir = self.copy_up(None)?;
        if child.upper().is_some() {
            upper_dir.unlink(name, child_is_dir)?;
        }
        if needs_whiteout {
            self.fs.add_whiteout(upper_dir.attr()?.ino, name);
        }
        self.detach(name, &child);
        Ok(())
    }

    fn rename(&self, name: &[u8], new_dir: &Arc<dyn Inode>, new_name: &[u8]) -> Result<(), Errno> {
        let _w = self.fs.write();
        let new_dir = self.same_fs(new_dir)?;
        let moving = self.child(name)?;
        let moving_is_dir = moving.kind == FileType::Directory;
        if new_dir.kind != FileType::Directory {
            return Err(Errno::ENOTDIR);
        }
        if new_dir.lock().unlinked {
            return Err(Errno::ENOENT);
        }
        // Without redirect_dir, Linux overlayfs cannot move a directory that has a lower
        // part; callers such as mv then copy and delete.
        if moving_is_dir && moving.lower.is_some() {
            return Err(Errno::EXDEV);
        }
        let existing = match new_dir.child(new_name) {
            Ok(existing) => Some(existing),
            Err(Errno::ENOENT) => None,
            Err(e) => return Err(e),
        };
        if let Some(existing) = &existing {
            if Arc::ptr_eq(existing, &moving) {
                return Ok(());
            }
            let same_upper = match (existing.upper(), moving.upper()) {
                (Some(a), Some(b)) => Arc::ptr_eq(&a, &b),
                _ => false,
            };
            if same_upper {
                return Ok(()); // Two links to one file: rename(2) does nothing.
            }
            match (moving_is_dir, existing.kind == FileType::Directory) {
                (true, false) => return Err(Errno::ENOTDIR),
                (false, true) => return Err(Errno::EISDIR),
                (true, true) if !existing.entries()?.is_empty() => return Err(Errno::ENOTEMPTY),
                _ => {}
            }
        }
        let needs_whiteout = self.lower_has(name);
        let moving_upper = moving.copy_up(None)?;
        let from_dir = self.copy_up(None)?;
        let to_dir = new_dir.copy_up(None)?;
        let to_ino = to_dir.attr()?.ino;
        let had_whiteout = self.fs.remove_whiteout(to_ino, new_name);
        if let Err(e) = from_dir.rename(name, &to_dir, new_name) {
            if had_whiteout {
                self.fs.add_whiteout(to_ino, new_name);
            }
            return Err(e);
        }
        if needs_whiteout {
            self.fs.add_whiteout(from_dir.attr()?.ino, name);
        }
        if moving_is_dir {
            // Whatever lower holds at the new name must not merge into it.
            let ino = moving_upper.attr()?.ino;
            self.fs.book().opaque.insert(ino);
        }
        if let Some(existing) = &existing {
            new_dir.detach(new_name, existing);
        }
        self.lock().children.remove(name);
        {
            let mut s = moving.lock();
            s.parent = Some(new_dir.clone());
            s.name = new_name.to_vec();
        }
        new_dir
            .lock()
            .children
            .insert(new_name.to_vec(), Arc::downgrade(&moving));
        Ok(())
    }

    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        match (self.upper(), &self.lower) {
            (Some(upper), _) => upper.readlink(),
            (None, Some(lower)) => lower.readlink(),
            (None, None) => Err(Errno::EIO),
        }
    }

    /// Opening for writing copies up first. A read-only open of a lower file reads lower
    /// until the file is copied up and then follows the upper copy (see `LowerFile`).
    fn open(self: Arc<Self>, flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
        if self.kind == FileType::Directory {
            // Entries are read through readdir, which merges the layers.
            return Ok(Arc::new(DirFile));
        }
        if let Some(upper) = self.upper() {
            return upper.open(flags);
        }
        let writes = flags & O_ACCMODE != O_RDONLY || flags & O_TRUNC != 0;
        if writes && self.kind == FileType::Regular {
            let upper = {
                let _w = self.fs.write();
                let limit = (flags & O_TRUNC != 0).then_some(0);
                self.copy_up(limit)?
            };
            return upper.open(flags);
        }
        let lower = self.lower.clone().ok_or(Errno::EIO)?;
        let ops = lower.open(flags)?;
        Ok(Arc::new(LowerFile {
            inode: self,
            flags,
            current: Mutex::new((ops, false)),
        }))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A file opened read-only while it was only in lower. Reads go to the lower file until the
/// inode is copied up (by a write through another descriptor, a truncate, a chmod...), then
/// to the upper copy, so the reader sees the changes as on any other file system (Linux
/// overlayfs does the same since 4.19; before, such a descriptor kept the old lower data).
/// A read that races with the copy-up may still return lower data.
struct LowerFile {
    inode: Arc<OvlInode>,
    flags: u32,
    /// The file read now, and whether it is the upper copy.
    current: Mutex<(Arc<dyn FileOps>, bool)>,
}

impl LowerFile {
    fn ops(&self) -> Result<Arc<dyn FileOps>, Errno> {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if !current.1 {
            if let Some(upper) = self.inode.upper() {
                *current = (upper.open(self.flags)?, true);
            }
        }
        Ok(current.0.clone())
    }
}

impl FileOps for LowerFile {
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        self.ops()?.read(offset, buf)
    }

    fn write(&self, _offset: u64, _buf: &[u8]) -> Result<usize, Errno> {
        Err(Errno::EBADF) // Opened read-only; OpenFile refuses before this.
    }

    fn seek_mode(&self) -> SeekMode {
        self.ops().map_or(SeekMode::Normal, |ops| ops.seek_mode())
    }
}

/// An open overlay directory: it has no bytes to read or write.
struct DirFile;

impl FileOps for DirFile {
    fn read(&self, _: u64, _: &mut [u8]) -> Result<usize, Errno> {
        Err(Errno::EISDIR)
    }
    fn write(&self, _: u64, _: &[u8]) -> Result<usize, Errno> {
        Err(Errno::EISDIR)
    }
}

/// The type of an object, or EIO for a mode no file has.
fn kind_of(attr: &Attr) -> Result<FileType, Errno> {
    attr.file_type().ok_or(Errno::EIO)
}

/// A lookup's result with ENOENT as None; other errors (EIO from a dead gofer) pass.
fn present(found: Result<Arc<dyn Inode>, Errno>) -> Result<Option<Arc<dyn Inode>>, Errno> {
    match found {
        Ok(inode) => Ok(Some(inode)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests;
