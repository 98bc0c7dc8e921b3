//! tmpfs: a file system held in Sentry memory (for /tmp, /dev/shm, and as the upper layer of
//! the overlay root).

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::abi::{Errno, Timespec};
use crate::vfs::{Attr, DirEntry, FileOps, FileType, Inode, NewNode, Owner, SetAttr};

/// The largest file tmpfs holds (it lives in the Sentry's heap until the page cache lands).
const MAX_FILE_SIZE: u64 = 1 << 32;

/// One tmpfs instance.
#[derive(Debug)]
pub struct Tmpfs {
    root: Arc<TmpInode>,
}

/// What the inodes of one tmpfs share: its device number and inode counter.
#[derive(Debug)]
struct Shared {
    dev: u64,
    next_ino: AtomicU64,
}

impl Tmpfs {
    /// A new, empty tmpfs; its root is mode 0755, as mount(8) makes it by default.
    pub fn new(dev: u64) -> Arc<Tmpfs> {
        let fs = Arc::new(Shared {
            dev,
            next_ino: AtomicU64::new(2),
        });
        Arc::new(Tmpfs {
            root: Arc::new(TmpInode {
                fs,
                ino: 1,
                state: Mutex::new(State::new(
                    FileType::Directory.mode_bits() | 0o755,
                    Owner { uid: 0, gid: 0 },
                    Data::Dir(BTreeMap::new()),
                )),
            }),
        })
    }

    pub fn root(&self) -> Arc<dyn Inode> {
        self.root.clone()
    }
}

/// A tmpfs inode. `state` guards everything that changes.
#[derive(Debug)]
pub struct TmpInode {
    fs: Arc<Shared>,
    ino: u64,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    mode: u32,
    uid: u32,
    gid: u32,
    nlink: u64,
    atime: Timespec,
    mtime: Timespec,
    ctime: Timespec,
    data: Data,
}

#[derive(Debug)]
enum Data {
    File(Vec<u8>),
    Dir(BTreeMap<Vec<u8>, Arc<TmpInode>>),
    Symlink(Vec<u8>),
    /// Fifos and devices: only their attributes live here.
    Special {
        rdev: u64,
    },
}

fn now() -> Timespec {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Timespec::from_duration(d)
}

impl State {
    fn new(mode: u32, owner: Owner, data: Data) -> State {
        let t = now();
        let nlink = if matches!(data, Data::Dir(_)) { 2 } else { 1 };
        State {
            mode,
            uid: owner.uid,
            gid: owner.gid,
            nlink,
            atime: t,
            mtime: t,
            ctime: t,
            data,
        }
    }

    fn dir(&mut self) -> Result<&mut BTreeMap<Vec<u8>, Arc<TmpInode>>, Errno> {
        match &mut self.data {
            Data::Dir(entries) => Ok(entries),
            _ => Err(Errno::ENOTDIR),
        }
    }

    fn touch(&mut self) {
        let t = now();
        self.mtime = t;
        self.ctime = t;
    }
}

impl TmpInode {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn is_dir(&self) -> bool {
        matches!(self.lock().data, Data::Dir(_))
    }

    /// A tmpfs inode of the same file system, or EXDEV.
    fn same_fs(&self, other: &Arc<dyn Inode>) -> Result<Arc<TmpInode>, Errno> {
        let any: Arc<dyn Any + Send + Sync> = other.clone();
        let other = any.downcast::<TmpInode>().map_err(|_| Errno::EXDEV)?;
        if !Arc::ptr_eq(&self.fs, &other.fs) {
            return Err(Errno::EXDEV);
        }
        Ok(other)
    }
}

impl Inode for TmpInode {
    fn attr(&self) -> Result<Attr, Errno> {
        let s = self.lock();
        let (size, rdev) = match &s.data {
            Data::File(bytes) => (bytes.len() as u64, 0),
            // Linux's tmpfs counts 20 bytes per entry, "." and ".." included.
            Data::Dir(entries) => ((entries.len() as u64 + 2) * 20, 0),
            Data::Symlink(target) => (target.len() as u64, 0),
            Data::Special { rdev } => (0, *rdev),
        };
        Ok(Attr {
            mode: s.mode,
            ino: self.ino,
            dev: self.fs.dev,
            nlink: s.nlink,
            uid: s.uid,
            gid: s.gid,
            rdev,
            size,
            blksize: 4096,
            blocks: size.div_ceil(512),
            atime: s.atime,
            mtime: s.mtime,
            ctime: s.ctime,
        })
    }

    fn set_attr(&self, c: &SetAttr) -> Result<(), Errno> {
        let mut s = self.lock();
        if let Some(size) = c.size {
            match &mut s.data {
                Data::File(bytes) if size <= MAX_FILE_SIZE => bytes.resize(size as usize, 0),
                Data::File(_) => return Err(Errno::EFBIG),
                Data::Dir(_) => return Err(Errno::EISDIR),
                _ => return Err(Errno::EINVAL),
            }
            s.touch();
        }
        if let Some(mode) = c.mode {
            s.mode = (s.mode & crate::vfs::S_IFMT) | (mode & 0o7777);
        }
        if let Some(uid) = c.uid {
            s.uid = uid;
        }
        if let Some(gid) = c.gid {
            s.gid = gid;
        }
        if let Some(t) = c.atime {
            s.atime = t;
        }
        if let Some(t) = c.mtime {
            s.mtime = t;
        }
        s.ctime = now();
        Ok(())
    }

    fn lookup(&self, name: &[u8]) -> Result<Arc<dyn Inode>, Errno> {
        let mut s = self.lock();
        let child = s.dir()?.get(name).cloned().ok_or(Errno::ENOENT)?;
        Ok(child)
    }

    fn readdir(&self) -> Result<Vec<DirEntry>, Errno> {
        let mut s = self.lock();
        let entries: Vec<(Vec<u8>, Arc<TmpInode>)> = s
            .dir()?
            .iter()
            .map(|(n, i)| (n.clone(), i.clone()))
            .collect();
        drop(s);
        Ok(entries
            .into_iter()
            .map(|(name, inode)| {
                let file_type = FileType::from_mode(inode.lock().mode).unwrap_or(FileType::Regular);
                DirEntry {
                    name,
                    ino: inode.ino,
                    file_type,
                }
            })
            .collect())
    }

    fn create(&self, name: &[u8], node: &NewNode, owner: Owner) -> Result<Arc<dyn Inode>, Errno> {
        let (mode, data) = match node {
            NewNode::File { mode } => (
                FileType::Regular.mode_bits() | (mode & 0o7777),
                Data::File(Vec::new()),
            ),
            NewNode::Directory { mode } => (
                FileType::Directory.mode_bits() | (mode & 0o7777),
                Data::Dir(BTreeMap::new()),
            ),
            NewNode::Fifo { mode } => (
                FileType::Fifo.mode_bits() | (mode & 0o7777),
                Data::Special { rdev: 0 },
            ),
            NewNode::Device { mode, rdev } => (*mode, Data::Special { rdev: *rdev }),
            NewNode::Symlink { target } => (
                FileType::Symlink.mode_bits() | 0o777,
                Data::Symlink(target.clone()),
            ),
        };
        let is_dir = matches!(data, Data::Dir(_));
        let mut s = self.lock();
        if s.nlink == 0 {
            return Err(Errno::ENOENT); // This directory was removed.
        }
        let entries = s.dir()?;
        if entries.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        let inode = Arc::new(TmpInode {
            fs: self.fs.clone(),
            ino: self.fs.next_ino.fetch_add(1, Ordering::Relaxed),
            state: Mutex::new(State::new(mode, owner, data)),
        });
        entries.insert(name.to_vec(), inode.clone());
        if is_dir {
            s.nlink += 1;
        }
        s.touch();
        Ok(inode)
    }

    fn link(&self, name: &[u8], target: &Arc<dyn Inode>) -> Result<(), Errno> {
        let target = self.same_fs(target)?;
        if target.is_dir() {
            return Err(Errno::EPERM);
        }
        let mut s = self.lock();
        let entries = s.dir()?;
        if entries.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        entries.insert(name.to_vec(), target.clone());
        s.touch();
        drop(s);
        let mut t = target.lock();
        t.nlink += 1;
        t.ctime = now();
        Ok(())
    }

    fn unlink(&self, name: &[u8], dir: bool) -> Result<(), Errno> {
        let mut s = self.lock();
        let entries = s.dir()?;
        let child = entries.get(name).cloned().ok_or(Errno::ENOENT)?;
        {
            let c = child.lock();
            match (&c.data, dir) {
                (Data::Dir(e), true) if !e.is_empty() => return Err(Errno::ENOTEMPTY),
                (Data::Dir(_), false) => return Err(Errno::EISDIR),
                (Data::Dir(_), true) => {}
                (_, true) => return Err(Errno::ENOTDIR),
                (_, false) => {}
            }
        }
        entries.remove(name);
        if dir {
            s.nlink -= 1;
        }
        s.touch();
        drop(s);
        let mut c = child.lock();
        c.nlink = if dir { 0 } else { c.nlink.saturating_sub(1) };
        c.ctime = now();
        Ok(())
    }

    fn rename(&self, name: &[u8], new_dir: &Arc<dyn Inode>, new_name: &[u8]) -> Result<(), Errno> {
        let new_dir = self.same_fs(new_dir)?;
        let moving = self.lookup(name)?;
        let moving = self.same_fs(&moving)?;
        let moving_dir = moving.is_dir();
        if let Ok(existing) = new_dir.lookup(new_name) {
            let existing = self.same_fs(&existing)?;
            if Arc::ptr_eq(&existing, &moving) {
                return Ok(()); // Both names are links to one inode: nothing to do.
            }
            match (moving_dir, existing.is_dir()) {
                (true, false) => return Err(Errno::ENOTDIR),
                (false, true) => return Err(Errno::EISDIR),
                _ => {}
            }
            new_dir.unlink(new_name, moving_dir)?;
        }
        let same_dir = self.ino == new_dir.ino;
        let mut s = self.lock();
        s.dir()?.remove(name);
        if moving_dir && !same_dir {
            s.nlink -= 1;
        }
        s.touch();
        drop(s);
        let mut d = new_dir.lock();
        d.dir()?.insert(new_name.to_vec(), moving.clone());
        if moving_dir && !same_dir {
            d.nlink += 1;
        }
        d.touch();
        drop(d);
        moving.lock().ctime = now();
        Ok(())
    }

    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        match &self.lock().data {
            Data::Symlink(target) => Ok(target.clone()),
            _ => Err(Errno::EINVAL),
        }
    }

    fn open(self: Arc<Self>, _flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
        Ok(Arc::new(TmpFile { inode: self }))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// An open tmpfs file.
struct TmpFile {
    inode: Arc<TmpInode>,
}

impl FileOps for TmpFile {
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let mut s = self.inode.lock();
        let n = match &s.data {
            Data::File(bytes) => {
                let start = (offset.min(bytes.len() as u64)) as usize;
                let n = buf.len().min(bytes.len() - start);
                buf[..n].copy_from_slice(&bytes[start..start + n]);
                n
            }
            Data::Dir(_) => return Err(Errno::EISDIR),
            _ => return Err(Errno::EINVAL),
        };
        s.atime = now();
        Ok(n)
    }

    fn write(&self, offset: u64, buf: &[u8]) -> Result<usize, Errno> {
        let mut s = self.inode.lock();
        match &mut s.data {
            Data::File(bytes) => {
                let end = offset.checked_add(buf.len() as u64).ok_or(Errno::EFBIG)?;
                if end > MAX_FILE_SIZE {
                    return Err(Errno::EFBIG);
                }
                if bytes.len() < end as usize {
                    bytes.resize(end as usize, 0);
                }
                bytes[offset as usize..end as usize].copy_from_slice(buf);
            }
            Data::Dir(_) => return Err(Errno::EISDIR),
            _ => return Err(Errno::EINVAL),
        }
        s.touch();
        Ok(buf.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: Owner = Owner { uid: 0, gid: 0 };

    #[test]
    fn files_dirs_links_and_renames() {
        let fs = Tmpfs::new(7);
        let root = fs.root();
        let dir = root
            .create(b"d", &NewNode::Directory { mode: 0o700 }, ROOT)
            .unwrap();
        let file = dir
            .create(b"f", &NewNode::File { mode: 0o600 }, ROOT)
            .unwrap();
        assert_eq!(
            root.create(b"d", &NewNode::File { mode: 0 }, ROOT)
                .unwrap_err(),
            Errno::EEXIST
        );
        let f = file.clone().open(0).unwrap();
        assert_eq!(f.write(3, b"abc").unwrap(), 3);
        let mut buf = [9u8; 8];
        assert_eq!(f.read(0, &mut buf).unwrap(), 6);
        assert_eq!(&buf[..6], b"\0\0\0abc");
        assert_eq!(f.read(100, &mut buf).unwrap(), 0);
        let a = file.attr().unwrap();
        assert_eq!((a.size, a.mode, a.nlink, a.dev), (6, 0o100600, 1, 7));
        assert_eq!(root.attr().unwrap().nlink, 3);

        root.link(b"hard", &file).unwrap();
        assert_eq!(file.attr().unwrap().nlink, 2);
        assert_eq!(root.link(b"dlink", &dir).unwrap_err(), Errno::EPERM);
        assert_eq!(root.unlink(b"d", true).unwrap_err(), Errno::ENOTEMPTY);
        assert_eq!(root.unlink(b"d", false).unwrap_err(), Errno::EISDIR);
        assert_eq!(root.unlink(b"hard", true).unwrap_err(), Errno::ENOTDIR);

        // Move the file out of d, over nothing, then over the hard link (same inode).
        dir.rename(b"f", &root, b"moved").unwrap();
        assert_eq!(dir.lookup(b"f").unwrap_err(), Errno::ENOENT);
        root.rename(b"moved", &root, b"hard").unwrap();
        root.unlink(b"hard", false).unwrap();
        root.unlink(b"d", true).unwrap();
        assert_eq!(root.attr().unwrap().nlink, 2);
        let names: Vec<Vec<u8>> = root
            .readdir()
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names, vec![b"moved".to_vec()]);

        // A different tmpfs is a different device.
        let other = Tmpfs::new(8);
        assert_eq!(
            root.rename(b"moved", &other.root(), b"x").unwrap_err(),
            Errno::EXDEV
        );
    }
}
