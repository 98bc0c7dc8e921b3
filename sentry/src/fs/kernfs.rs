//! Building blocks of the synthetic file systems, procfs and sysfs (as gVisor's kernfs):
//! read-only directories, files whose contents are generated from kernel state when they
//! are opened (so one open sees one consistent snapshot, as Linux's seq_file gives), and
//! symlinks whose targets are computed when they are read.
//!
//! Nothing here can be changed: files refuse to open for writing (EACCES), directories
//! refuse to make, link, remove or rename names (EPERM), attributes stay (EPERM).
//!
//! Inode numbers come from a node's path in its file system, so they are stable for as long
//! as the path means the same thing, across lookups and caches.

use std::any::Any;
use std::sync::Arc;

use crate::abi::{Errno, Timespec};
use crate::vfs::{
    Attr, DirEntry, FileOps, FileType, Inode, Location, NewNode, NoIo, Owner, O_ACCMODE, O_RDONLY,
    O_TRUNC,
};

/// Appends formatted text to a byte buffer (a `Vec<u8>`), which cannot fail.
macro_rules! put {
    ($out:expr, $($arg:tt)*) => {
        $out.extend_from_slice(format!($($arg)*).as_bytes())
    };
}
pub(crate) use put;

/// Makes the contents of a file, or a symlink's target, from kernel state.
pub type Generate = Box<dyn Fn() -> Result<Vec<u8>, Errno> + Send + Sync>;

/// Finds the place a magic link stands for.
pub type Jump = Box<dyn Fn() -> Result<Location, Errno> + Send + Sync>;

/// What a node shows, which decides who owns it and how long it stands: a process for
/// /proc/PID and what is below it. Nodes without a scope are root's and always stand.
pub trait Scope: Send + Sync {
    fn owner(&self) -> Owner;
    /// False once what the node shows is gone (the process was reaped, the descriptor
    /// closed): cached names for it are then looked up again.
    fn valid(&self) -> bool;
}

/// What every node has: where it lives, its number and permissions, its scope.
#[derive(Clone)]
pub struct Meta {
    pub dev: u64,
    pub ino: u64,
    /// Permission bits (no file type).
    pub perm: u32,
    pub scope: Option<Arc<dyn Scope>>,
    /// Its times: when the node was made, as Linux's proc inodes show.
    pub time: Timespec,
}

impl Meta {
    /// A node at `path` (from its file system's root, "/" for the root itself).
    pub fn new(dev: u64, path: &[u8], perm: u32) -> Meta {
        let time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(Timespec::from_duration)
            .unwrap_or_default();
        Meta {
            dev,
            ino: ino_of(path),
            perm,
            scope: None,
            time,
        }
    }

    pub fn scoped(self, scope: Arc<dyn Scope>) -> Meta {
        Meta {
            scope: Some(scope),
            ..self
        }
    }

    fn valid(&self) -> bool {
        self.scope.as_ref().is_none_or(|s| s.valid())
    }

    fn attr(&self, kind: FileType, nlink: u64, size: u64) -> Attr {
        let owner = self
            .scope
            .as_ref()
            .map_or(Owner { uid: 0, gid: 0 }, |s| s.owner());
        Attr {
            mode: kind.mode_bits() | self.perm,
            ino: self.ino,
            dev: self.dev,
            nlink,
            uid: owner.uid,
            gid: owner.gid,
            rdev: 0,
            size,
            blksize: 1024,
            blocks: 0,
            atime: self.time,
            mtime: self.time,
            ctime: self.time,
        }
    }
}

/// The inode number of the node at `path`: 1 for the root, else a hash of the path
/// (FNV-1a), kept in 2..2^62 so that it is never the root's and stays positive for
/// programs that hold inode numbers in signed integers.
pub fn ino_of(path: &[u8]) -> u64 {
    if path == b"/" {
        return 1;
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in path {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash >> 2) + 2
}

/// `parent/name` as a node path.
pub fn join(parent: &[u8], name: &[u8]) -> Vec<u8> {
    let mut path = parent.to_vec();
    if !path.ends_with(b"/") {
        path.push(b'/');
    }
    path.extend_from_slice(name);
    path
}

/// A read-only file whose contents are generated when it is opened.
pub struct File {
    meta: Meta,
    generate: Generate,
}

impl File {
    pub fn new(meta: Meta, generate: Generate) -> Arc<File> {
        Arc::new(File { meta, generate })
    }
}

impl Inode for File {
    fn attr(&self) -> Result<Attr, Errno> {
        // Linux's proc files report size 0: their contents exist only once opened.
        Ok(self.meta.attr(FileType::Regular, 1, 0))
    }

    fn open(self: Arc<Self>, flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
        if flags & O_ACCMODE != O_RDONLY || flags & O_TRUNC != 0 {
            return Err(Errno::EACCES);
        }
        Ok(Arc::new(Snapshot((self.generate)()?)))
    }

    fn revalidate(&self) -> bool {
        self.meta.valid()
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The contents of a generated file, as they were when it was opened.
struct Snapshot(Vec<u8>);

impl FileOps for Snapshot {
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let start = usize::try_from(offset).map_or(self.0.len(), |o| o.min(self.0.len()));
        let rest = self.0.get(start..).unwrap_or_default();
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        Ok(n)
    }

    fn write(&self, _: u64, _: &[u8]) -> Result<usize, Errno> {
        Err(Errno::EBADF)
    }
}

/// A symlink whose target is computed when it is read; a magic one also knows the place it
/// stands for (see `Inode::magic_link`).
pub struct Link {
    meta: Meta,
    target: Generate,
    jump: Option<Jump>,
    size: u64,
}

impl Link {
    pub fn new(meta: Meta, target: Generate) -> Arc<Link> {
        Arc::new(Link {
            meta,
            target,
            jump: None,
            size: 0,
        })
    }

    /// A magic link: resolution jumps to what `jump` finds; readlink shows `target`.
    /// `size` is what stat reports (Linux says 64 for /proc/PID/fd/N, 0 elsewhere).
    pub fn magic(meta: Meta, target: Generate, jump: Jump, size: u64) -> Arc<Link> {
        Arc::new(Link {
            meta,
            target,
            jump: Some(jump),
            size,
        })
    }
}

impl Inode for Link {
    fn attr(&self) -> Result<Attr, Errno> {
        Ok(self.meta.attr(FileType::Symlink, 1, self.size))
    }

    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        (self.target)()
    }

    fn magic_link(&self) -> Result<Option<Location>, Errno> {
        self.jump.as_ref().map(|jump| jump()).transpose()
    }

    fn open(self: Arc<Self>, _flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
        Err(Errno::ELOOP)
    }

    fn revalidate(&self) -> bool {
        self.meta.valid()
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Names a directory makes up as it is asked (the processes in /proc, the descriptors in
/// /proc/PID/fd).
pub trait Children: Send + Sync {
    fn list(&self) -> Result<Vec<DirEntry>, Errno>;
    fn lookup(&self, name: &[u8]) -> Result<Arc<dyn Inode>, Errno>;
}

/// A read-only directory: fixed children, then those `more` makes up.
pub struct Dir {
    meta: Meta,
    fixed: Vec<(DirEntry, Arc<dyn Inode>)>,
    more: Option<Box<dyn Children>>,
}

impl Dir {
    pub fn new(meta: Meta, fixed: Vec<(Vec<u8>, Arc<dyn Inode>)>) -> Arc<Dir> {
        Arc::new(Dir {
            meta,
            fixed: entries_of(fixed),
            more: None,
        })
    }

    pub fn with_children(
        meta: Meta,
        fixed: Vec<(Vec<u8>, Arc<dyn Inode>)>,
        more: Box<dyn Children>,
    ) -> Arc<Dir> {
        Arc::new(Dir {
            meta,
            fixed: entries_of(fixed),
            more: Some(more),
        })
    }
}

/// The directory entries of fixed children, taken once: their numbers and types never change.
fn entries_of(fixed: Vec<(Vec<u8>, Arc<dyn Inode>)>) -> Vec<(DirEntry, Arc<dyn Inode>)> {
    fixed
        .into_iter()
        .map(|(name, inode)| {
            let attr = inode.attr().unwrap_or_default();
            let entry = DirEntry {
                name,
                ino: attr.ino,
                file_type: attr.file_type().unwrap_or(FileType::Regular),
            };
            (entry, inode)
        })
        .collect()
}

impl Inode for Dir {
    fn attr(&self) -> Result<Attr, Errno> {
        // "." and ".." and each subdirectory's "..".
        let is_dir = |e: &DirEntry| e.file_type == FileType::Directory;
        let mut subdirs = self.fixed.iter().filter(|(e, _)| is_dir(e)).count();
        if let Some(more) = &self.more {
            subdirs += more
                .list()
                .map_or(0, |l| l.iter().filter(|e| is_dir(e)).count());
        }
        Ok(self.meta.attr(FileType::Directory, 2 + subdirs as u64, 0))
    }

    fn lookup(&self, name: &[u8]) -> Result<Arc<dyn Inode>, Errno> {
        if let Some((_, child)) = self.fixed.iter().find(|(e, _)| e.name == name) {
            return Ok(child.clone());
        }
        match &self.more {
            Some(more) => more.lookup(name),
            None => Err(Errno::ENOENT),
        }
    }

    fn readdir(&self) -> Result<Vec<DirEntry>, Errno> {
        let mut entries: Vec<DirEntry> = self.fixed.iter().map(|(e, _)| e.clone()).collect();
        if let Some(more) = &self.more {
            entries.extend(more.list()?);
        }
        Ok(entries)
    }

    fn create(&self, _: &[u8], _: &NewNode, _: Owner) -> Result<Arc<dyn Inode>, Errno> {
        Err(Errno::EPERM)
    }

    fn link(&self, _: &[u8], _: &Arc<dyn Inode>) -> Result<(), Errno> {
        Err(Errno::EPERM)
    }

    fn unlink(&self, _: &[u8], _: bool) -> Result<(), Errno> {
        Err(Errno::EPERM)
    }

    fn rename(&self, _: &[u8], _: &Arc<dyn Inode>, _: &[u8]) -> Result<(), Errno> {
        Err(Errno::EPERM)
    }

    fn open(self: Arc<Self>, _flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
        // A directory is read with getdents, which asks the inode.
        Ok(Arc::new(NoIo))
    }

    fn revalidate(&self) -> bool {
        self.meta.valid()
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A static tree, described for `build`.
pub enum Spec {
    Dir(Vec<(&'static str, Spec)>),
    File(Generate),
}

/// A file of fixed text.
pub fn text(s: impl Into<Vec<u8>>) -> Spec {
    let bytes: Vec<u8> = s.into();
    Spec::File(Box::new(move || Ok(bytes.clone())))
}

/// Builds the tree `spec` at `path` on device `dev`: directories with `dir_perm`, files
/// read-only for all (0444).
pub fn build(dev: u64, path: &[u8], spec: Spec, dir_perm: u32) -> Arc<dyn Inode> {
    match spec {
        Spec::File(generate) => File::new(Meta::new(dev, path, 0o444), generate),
        Spec::Dir(children) => {
            let fixed = children
                .into_iter()
                .map(|(name, child)| {
                    let child = build(dev, &join(path, name.as_bytes()), child, dir_perm);
                    (name.as_bytes().to_vec(), child)
                })
                .collect();
            Dir::new(Meta::new(dev, path, dir_perm), fixed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfs::Dentry;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A scope that stands until told otherwise.
    struct Switch(AtomicBool);

    impl Scope for Switch {
        fn owner(&self) -> Owner {
            Owner { uid: 7, gid: 8 }
        }
        fn valid(&self) -> bool {
            self.0.load(Ordering::Relaxed)
        }
    }

    #[test]
    fn cached_names_of_gone_objects_are_looked_up_again() {
        let switch = Arc::new(Switch(AtomicBool::new(true)));
        let meta = Meta::new(9, b"/f", 0o444).scoped(switch.clone());
        let file = File::new(meta, Box::new(|| Ok(Vec::new())));
        assert_eq!(file.attr().map(|a| (a.uid, a.gid)), Ok((7, 8)));
        let dir = Dentry::root(Dir::new(
            Meta::new(9, b"/", 0o555),
            vec![(b"f".to_vec(), file)],
        ));
        let first = dir.lookup(b"f").unwrap();
        assert!(Arc::ptr_eq(&first, &dir.lookup(b"f").unwrap()));
        switch.0.store(false, Ordering::Relaxed);
        assert!(!Arc::ptr_eq(&first, &dir.lookup(b"f").unwrap()));
    }

    fn read_all(inode: Arc<dyn Inode>) -> Vec<u8> {
        let file = inode.open(O_RDONLY).unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 3];
        loop {
            let n = file.read(out.len() as u64, &mut buf).unwrap();
            if n == 0 {
                return out;
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    #[test]
    fn a_built_tree_reads_lists_and_refuses_changes() {
        let root = build(
            9,
            b"/",
            Spec::Dir(vec![
                ("a", Spec::Dir(vec![("f", text("hello\n"))])),
                ("g", text("x")),
            ]),
            0o555,
        );
        let attr = root.attr().unwrap();
        assert_eq!(
            (attr.mode, attr.ino, attr.dev, attr.nlink),
            (0o40555, 1, 9, 3)
        );
        let names: Vec<Vec<u8>> = root
            .readdir()
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names, vec![b"a".to_vec(), b"g".to_vec()]);
        let f = root.lookup(b"a").unwrap().lookup(b"f").unwrap();
        assert_eq!(f.attr().unwrap().mode, 0o100444);
        assert_eq!(f.attr().unwrap().ino, ino_of(b"/a/f"));
        assert_eq!(read_all(f.clone()), b"hello\n");
        assert_eq!(
            f.clone().open(crate::vfs::O_WRONLY).err(),
            Some(Errno::EACCES)
        );
        assert_eq!(root.lookup(b"nope").err(), Some(Errno::ENOENT));
        let file = NewNode::File { mode: 0o644 };
        let owner = Owner { uid: 0, gid: 0 };
        assert_eq!(root.create(b"new", &file, owner).err(), Some(Errno::EPERM));
        assert_eq!(root.unlink(b"g", false), Err(Errno::EPERM));
        assert_ne!(ino_of(b"/a"), ino_of(b"/g"));
    }
}
