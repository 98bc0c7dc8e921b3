//! Tests of the overlay over two tmpfs instances. Every fixture checks when it is dropped
//! that the lower tmpfs is exactly as it was built (atime aside: reading sets it).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU8, Ordering};

use super::*;
use crate::abi::Timespec;
use crate::fs::devices;
use crate::vfs::{O_RDWR, S_IFCHR};

const ROOT: Owner = Owner { uid: 0, gid: 0 };
const USER: Owner = Owner {
    uid: 1000,
    gid: 100,
};
const OVL_DEV: u64 = devices::makedev(0, 42);
const OLD: Timespec = Timespec {
    tv_sec: 1_000_000,
    tv_nsec: 7,
};

struct Fixture {
    lower: Arc<dyn Inode>,
    upper: Arc<Tmpfs>,
    root: Arc<dyn Inode>,
    before: BTreeMap<String, String>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            assert_eq!(
                snapshot(&self.lower),
                self.before,
                "the lower layer changed"
            );
        }
    }
}

impl Fixture {
    fn get(&self, path: &str) -> Result<Arc<dyn Inode>, Errno> {
        walk(&self.root, path)
    }

    /// The upper tmpfs's object at `path`, bypassing the overlay.
    fn upper_get(&self, path: &str) -> Result<Arc<dyn Inode>, Errno> {
        walk(&self.upper.root(), path)
    }
}

/// The lower tree:
/// /etc/passwd, /etc/hostname; /home/user/notes (owned by USER); /bin/busybox (setuid),
/// /bin/sh -> busybox; /dir/{a,b,sub/c}; /empty/; /fifo; /null.
fn fixture() -> Fixture {
    let lower_fs = Tmpfs::new(devices::makedev(0, 40));
    let lower = lower_fs.root();
    let dir = |parent: &Arc<dyn Inode>, name: &str, mode: u32, owner: Owner| {
        parent
            .create(name.as_bytes(), &NewNode::Directory { mode }, owner)
            .unwrap()
    };
    let file = |parent: &Arc<dyn Inode>, name: &str, mode: u32, owner: Owner, data: &str| {
        let f = parent
            .create(name.as_bytes(), &NewNode::File { mode }, owner)
            .unwrap();
        f.clone()
            .open(O_WRONLY)
            .unwrap()
            .write(0, data.as_bytes())
            .unwrap();
        f.set_attr(&SetAttr {
            mode: Some(mode),
            mtime: Some(OLD),
            ..SetAttr::default()
        })
        .unwrap();
        f
    };
    let etc = dir(&lower, "etc", 0o755, ROOT);
    file(&etc, "passwd", 0o644, ROOT, "root:x:0:0::/root:/bin/sh\n");
    file(&etc, "hostname", 0o644, ROOT, "sandbox\n");
    let home = dir(&lower, "home", 0o755, ROOT);
    let user = dir(&home, "user", 0o750, USER);
    file(&user, "notes", 0o640, USER, "lower notes\n");
    let bin = dir(&lower, "bin", 0o755, ROOT);
    file(&bin, "busybox", 0o4755, ROOT, "\x7fELF busybox");
    bin.create(
        b"sh",
        &NewNode::Symlink {
            target: b"busybox".to_vec(),
        },
        ROOT,
    )
    .unwrap();
    let d = dir(&lower, "dir", 0o755, ROOT);
    file(&d, "a", 0o644, ROOT, "A");
    file(&d, "b", 0o644, ROOT, "B");
    let sub = dir(&d, "sub", 0o755, ROOT);
    file(&sub, "c", 0o644, ROOT, "C");
    dir(&lower, "empty", 0o755, ROOT);
    lower
        .create(b"fifo", &NewNode::Fifo { mode: 0o620 }, USER)
        .unwrap();
    lower
        .create(
            b"null",
            &NewNode::Device {
                mode: S_IFCHR | 0o666,
                rdev: devices::NULL,
            },
            ROOT,
        )
        .unwrap();
    let before = snapshot(&lower);
    let upper = Tmpfs::new(devices::makedev(0, 41));
    let root = overlay(lower.clone(), upper.clone(), OVL_DEV).unwrap();
    Fixture {
        lower,
        upper,
        root,
        before,
    }
}

/// Everything about a tree but atimes, by path.
fn snapshot(root: &Arc<dyn Inode>) -> BTreeMap<String, String> {
    fn visit(inode: &Arc<dyn Inode>, path: String, out: &mut BTreeMap<String, String>) {
        let a = inode.attr().unwrap();
        let content = match a.file_type().unwrap() {
            FileType::Regular => String::from_utf8_lossy(&read_all(inode)).into_owned(),
            FileType::Symlink => String::from_utf8_lossy(&inode.readlink().unwrap()).into_owned(),
            _ => String::new(),
        };
        let line = format!(
            "{:o} {}:{} ino {} dev {} nlink {} size {} rdev {} mtime {:?} ctime {:?} {content}",
            a.mode, a.uid, a.gid, a.ino, a.dev, a.nlink, a.size, a.rdev, a.mtime, a.ctime
        );
        out.insert(path.clone(), line);
        if a.file_type() == Some(FileType::Directory) {
            for e in inode.readdir().unwrap() {
                let child = inode.lookup(&e.name).unwrap();
                let name = String::from_utf8_lossy(&e.name);
                visit(&child, format!("{path}/{name}"), out);
            }
        }
    }
    let mut out = BTreeMap::new();
    visit(root, String::new(), &mut out);
    out
}

fn walk(root: &Arc<dyn Inode>, path: &str) -> Result<Arc<dyn Inode>, Errno> {
    let mut at = root.clone();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        at = at.lookup(part.as_bytes())?;
    }
    Ok(at)
}

fn read_all(inode: &Arc<dyn Inode>) -> Vec<u8> {
    let f = inode.clone().open(O_RDONLY).unwrap();
    read_file(&*f)
}

fn read_file(f: &dyn FileOps) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 7]; // Small, to cross chunk boundaries.
    loop {
        let n = f.read(out.len() as u64, &mut buf).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n]);
    }
}

fn names(dir: &Arc<dyn Inode>) -> Vec<String> {
    dir.readdir()
        .unwrap()
        .into_iter()
        .map(|e| String::from_utf8_lossy(&e.name).into_owned())
        .collect()
}

fn mkdir(dir: &Arc<dyn Inode>, name: &str) -> Arc<dyn Inode> {
    dir.create(name.as_bytes(), &NewNode::Directory { mode: 0o755 }, ROOT)
        .unwrap()
}

fn mkfile(dir: &Arc<dyn Inode>, name: &str, data: &str) -> Arc<dyn Inode> {
    let f = dir
        .create(name.as_bytes(), &NewNode::File { mode: 0o644 }, ROOT)
        .unwrap();
    f.clone()
        .open(O_WRONLY)
        .unwrap()
        .write(0, data.as_bytes())
        .unwrap();
    f
}

fn chmod(inode: &Arc<dyn Inode>, mode: u32) {
    inode
        .set_attr(&SetAttr {
            mode: Some(mode),
            ..SetAttr::default()
        })
        .unwrap();
}

#[test]
fn lookups_see_lower_and_upper_wins() {
    let fx = fixture();
    let passwd = fx.get("etc/passwd").unwrap();
    assert_eq!(read_all(&passwd), b"root:x:0:0::/root:/bin/sh\n");
    let lower_passwd = walk(&fx.lower, "etc/passwd").unwrap().attr().unwrap();
    let a = passwd.attr().unwrap();
    assert_eq!(
        (a.ino, a.dev, a.mode),
        // Still only in the lower layer: its real device, as Linux overlayfs shows it.
        (lower_passwd.ino, lower_passwd.dev, 0o100644)
    );
    assert_eq!(fx.root.attr().unwrap().dev, OVL_DEV);
    assert_eq!(fx.get("etc/nope").unwrap_err(), Errno::ENOENT);
    assert_eq!(fx.get("etc/passwd/x").unwrap_err(), Errno::ENOTDIR);
    // The same name is the same object.
    assert!(Arc::ptr_eq(&passwd, &fx.get("etc/passwd").unwrap()));

    // An upper layer that already holds /etc/hostname and /etc/extra: its file wins and
    // its /etc merges with lower's.
    let fx = fixture();
    let etc = mkdir_raw(&fx.upper.root(), "etc");
    let hostname = etc
        .create(b"hostname", &NewNode::File { mode: 0o600 }, ROOT)
        .unwrap();
    hostname
        .clone()
        .open(O_WRONLY)
        .unwrap()
        .write(0, b"upper\n")
        .unwrap();
    etc.create(b"extra", &NewNode::File { mode: 0o600 }, ROOT)
        .unwrap();
    assert_eq!(read_all(&fx.get("etc/hostname").unwrap()), b"upper\n");
    assert_eq!(
        fx.get("etc/hostname").unwrap().attr().unwrap().mode,
        0o100600
    );
    assert_eq!(
        read_all(&fx.get("etc/passwd").unwrap()),
        b"root:x:0:0::/root:/bin/sh\n"
    );
    assert_eq!(
        names(&fx.get("etc").unwrap()),
        ["extra", "hostname", "passwd"]
    );
}

fn mkdir_raw(dir: &Arc<dyn Inode>, name: &str) -> Arc<dyn Inode> {
    dir.create(name.as_bytes(), &NewNode::Directory { mode: 0o755 }, ROOT)
        .unwrap()
}

#[test]
fn whiteouts_hide_lower_entries_and_creation_removes_them() {
    let fx = fixture();
    let dir = fx.get("dir").unwrap();
    dir.unlink(b"a", false).unwrap();
    assert_eq!(dir.lookup(b"a").unwrap_err(), Errno::ENOENT);
    assert_eq!(names(&dir), ["b", "sub"]);
    // The whiteout is bookkeeping, not a file in upper.
    assert_eq!(names(&fx.upper_get("dir").unwrap()), Vec::<String>::new());
    assert_eq!(dir.unlink(b"a", false).unwrap_err(), Errno::ENOENT);

    let a = mkfile(&dir, "a", "new A");
    assert_eq!(read_all(&dir.lookup(b"a").unwrap()), b"new A");
    assert_ne!(a.attr().unwrap().ino & UPPER_INO, 0);
    assert_eq!(names(&dir), ["a", "b", "sub"]);
    // Removing it again must hide lower's "a" again.
    dir.unlink(b"a", false).unwrap();
    assert_eq!(dir.lookup(b"a").unwrap_err(), Errno::ENOENT);
    assert_eq!(names(&dir), ["b", "sub"]);
}

#[test]
fn a_new_directory_over_a_whited_out_one_is_opaque() {
    let fx = fixture();
    let dir = fx.get("dir").unwrap();
    let sub = dir.lookup(b"sub").unwrap();
    sub.unlink(b"c", false).unwrap();
    dir.unlink(b"sub", true).unwrap();
    assert_eq!(dir.lookup(b"sub").unwrap_err(), Errno::ENOENT);
    let new_sub = mkdir(&dir, "sub");
    assert_eq!(names(&new_sub), Vec::<String>::new());
    assert_eq!(new_sub.lookup(b"c").unwrap_err(), Errno::ENOENT);
    assert_eq!(names(&fx.get("dir/sub").unwrap()), Vec::<String>::new());
    // The old object is gone for good: nothing can be made in it.
    assert_eq!(
        sub.create(b"x", &NewNode::File { mode: 0o644 }, ROOT)
            .unwrap_err(),
        Errno::ENOENT
    );
    assert_eq!(sub.attr().unwrap().nlink, 0);
}

#[test]
fn readdir_merges_upper_then_lower_without_duplicates() {
    let fx = fixture();
    let dir = fx.get("dir").unwrap();
    chmod(&dir.lookup(b"b").unwrap(), 0o600); // Copied up: now in both layers.
    mkfile(&dir, "new", "n");
    let entries = dir.readdir().unwrap();
    let got: Vec<String> = entries
        .iter()
        .map(|e| String::from_utf8_lossy(&e.name).into_owned())
        .collect();
    assert_eq!(got, ["b", "new", "a", "sub"]);
    assert_eq!(dir.readdir().unwrap(), entries, "readdir is stable");
    for e in &entries {
        let a = dir.lookup(&e.name).unwrap().attr().unwrap();
        assert_eq!(e.ino, a.ino, "d_ino matches st_ino for {:?}", e.name);
        assert_eq!(Some(e.file_type), a.file_type());
    }
    assert_eq!(
        names(&fx.root),
        ["dir", "bin", "empty", "etc", "fifo", "home", "null"]
    );
}

#[test]
fn writing_copies_up_data_mode_owner_and_parents() {
    let fx = fixture();
    let notes = fx.get("home/user/notes").unwrap();
    let before = notes.attr().unwrap();
    let f = notes.clone().open(O_RDWR).unwrap();
    assert_eq!(f.write(0, b"UPPER").unwrap(), 5);
    assert_eq!(read_file(&*f), b"UPPER notes\n");
    assert_eq!(
        read_all(&fx.get("home/user/notes").unwrap()),
        b"UPPER notes\n"
    );

    let after = notes.attr().unwrap();
    assert_eq!(
        (after.ino, after.dev, after.mode, after.uid, after.gid),
        (before.ino, OVL_DEV, 0o100640, 1000, 100)
    );
    // The copy and the directories above it, with their modes and owners.
    let up = fx.upper_get("home/user/notes").unwrap().attr().unwrap();
    assert_eq!(
        (up.mode, up.uid, up.gid, up.size),
        (0o100640, 1000, 100, 12)
    );
    let user = fx.upper_get("home/user").unwrap().attr().unwrap();
    assert_eq!((user.mode, user.uid, user.gid), (0o40750, 1000, 100));
    let home = fx.upper_get("home").unwrap().attr().unwrap();
    assert_eq!((home.mode, home.uid), (0o40755, 0));
    // Nothing else was copied.
    assert_eq!(names(&fx.upper.root()), ["home"]);
    assert_eq!(names(&fx.upper_get("home/user").unwrap()), ["notes"]);
}

#[test]
fn chmod_and_chown_copy_up_and_keep_ino_and_times() {
    let fx = fixture();
    let busybox = fx.get("bin/busybox").unwrap();
    let before = busybox.attr().unwrap();
    assert_eq!(before.mode, 0o104755);
    busybox
        .set_attr(&SetAttr {
            uid: Some(5),
            gid: Some(6),
            ..SetAttr::default()
        })
        .unwrap();
    let up = fx.upper_get("bin/busybox").unwrap();
    assert_eq!(read_all(&up), b"\x7fELF busybox");
    let a = busybox.attr().unwrap();
    assert_eq!(
        (a.ino, a.mode, a.uid, a.gid, a.mtime, a.size),
        (before.ino, 0o104755, 5, 6, OLD, before.size)
    );
    chmod(&busybox, 0o700);
    assert_eq!(busybox.attr().unwrap().mode, 0o100700);
    // chmod of a lower directory copies it up (without its entries) and still merges.
    let etc = fx.get("etc").unwrap();
    let etc_ino = etc.attr().unwrap().ino;
    chmod(&etc, 0o700);
    assert_eq!(etc.attr().unwrap().mode, 0o40700);
    assert_eq!(etc.attr().unwrap().ino, etc_ino);
    assert_eq!(names(&fx.upper_get("etc").unwrap()), Vec::<String>::new());
    assert_eq!(names(&etc), ["hostname", "passwd"]);
}

#[test]
fn truncation_copies_up_only_what_is_kept() {
    let fx = fixture();
    let notes = fx.get("home/user/notes").unwrap();
    notes
        .set_attr(&SetAttr {
            size: Some(5),
            ..SetAttr::default()
        })
        .unwrap();
    assert_eq!(read_all(&notes), b"lower");
    // Open with O_TRUNC, as the VFS does it: open, then set the size to 0.
    let passwd = fx.get("etc/passwd").unwrap();
    let f = passwd.clone().open(O_WRONLY | O_TRUNC).unwrap();
    assert_eq!(fx.upper_get("etc/passwd").unwrap().attr().unwrap().size, 0);
    f.write(0, b"x").unwrap();
    assert_eq!(read_all(&passwd), b"x");
    assert_eq!(passwd.attr().unwrap().mode, 0o100644);
}

#[test]
fn reading_never_copies_up() {
    let fx = fixture();
    for path in ["etc/passwd", "home/user/notes", "bin/busybox"] {
        let f = fx.get(path).unwrap();
        assert!(!read_all(&f).is_empty());
        f.attr().unwrap();
    }
    assert_eq!(fx.get("bin/sh").unwrap().readlink().unwrap(), b"busybox");
    names(&fx.get("dir/sub").unwrap());
    names(&fx.root);
    let dir = fx.get("dir").unwrap().open(O_RDONLY).unwrap();
    assert_eq!(dir.read(0, &mut [0; 4]).unwrap_err(), Errno::EISDIR);
    assert_eq!(names(&fx.upper.root()), Vec::<String>::new());
}

#[test]
fn a_read_only_descriptor_follows_a_later_copy_up() {
    let fx = fixture();
    let notes = fx.get("home/user/notes").unwrap();
    let reader = notes.clone().open(O_RDONLY).unwrap();
    assert_eq!(read_file(&*reader), b"lower notes\n");
    let writer = notes.clone().open(O_WRONLY).unwrap();
    writer.write(0, b"UPPER").unwrap();
    assert_eq!(read_file(&*reader), b"UPPER notes\n");
    assert_eq!(reader.write(0, b"no").unwrap_err(), Errno::EBADF);
}

#[test]
fn symlinks_fifos_and_devices_copy_up_as_themselves() {
    let fx = fixture();
    let owner = SetAttr {
        uid: Some(7),
        ..SetAttr::default()
    };
    let sh = fx.get("bin/sh").unwrap();
    sh.set_attr(&owner).unwrap();
    let up = fx.upper_get("bin/sh").unwrap();
    assert_eq!(up.readlink().unwrap(), b"busybox");
    assert_eq!(up.attr().unwrap().file_type(), Some(FileType::Symlink));
    assert_eq!(sh.readlink().unwrap(), b"busybox");
    assert_eq!(sh.attr().unwrap().uid, 7);

    let fifo = fx.get("fifo").unwrap();
    fifo.set_attr(&owner).unwrap();
    let a = fx.upper_get("fifo").unwrap().attr().unwrap();
    assert_eq!((a.mode, a.uid, a.gid), (0o10620, 7, 100));

    let null = fx.get("null").unwrap();
    null.set_attr(&owner).unwrap();
    let a = fx.upper_get("null").unwrap().attr().unwrap();
    assert_eq!((a.mode, a.rdev, a.uid), (S_IFCHR | 0o666, devices::NULL, 7));
    assert_eq!(null.attr().unwrap().rdev, devices::NULL);
}

#[test]
fn create_unlink_and_rmdir() {
    let fx = fixture();
    let new = mkdir(&fx.root, "new");
    let f = mkfile(&new, "f", "data");
    assert_ne!(new.attr().unwrap().ino & UPPER_INO, 0);
    assert_eq!(read_all(&fx.get("new/f").unwrap()), b"data");
    assert!(Arc::ptr_eq(&f, &fx.get("new/f").unwrap()));
    for name in ["etc", "new", "fifo"] {
        assert_eq!(
            fx.root
                .create(name.as_bytes(), &NewNode::File { mode: 0 }, ROOT)
                .unwrap_err(),
            Errno::EEXIST
        );
    }
    // Made in a lower directory: its parents are copied up first.
    mkfile(&fx.get("home/user").unwrap(), "todo", "t");
    assert_eq!(fx.upper_get("home/user").unwrap().attr().unwrap().uid, 1000);
    assert_eq!(read_all(&fx.upper_get("home/user/todo").unwrap()), b"t");

    assert_eq!(fx.root.unlink(b"etc", false).unwrap_err(), Errno::EISDIR);
    assert_eq!(fx.root.unlink(b"fifo", true).unwrap_err(), Errno::ENOTDIR);
    assert_eq!(fx.root.unlink(b"etc", true).unwrap_err(), Errno::ENOTEMPTY);
    assert_eq!(fx.root.unlink(b"new", true).unwrap_err(), Errno::ENOTEMPTY);
    new.unlink(b"f", false).unwrap();
    fx.root.unlink(b"new", true).unwrap();
    fx.root.unlink(b"empty", true).unwrap();
    fx.root.unlink(b"fifo", false).unwrap();
    let etc = fx.get("etc").unwrap();
    etc.unlink(b"passwd", false).unwrap();
    assert_eq!(names(&etc), ["hostname"]);
    assert_eq!(names(&fx.root), ["etc", "home", "bin", "dir", "null"]);
    for gone in ["new", "empty", "fifo", "etc/passwd"] {
        assert_eq!(fx.get(gone).unwrap_err(), Errno::ENOENT, "{gone}");
    }
    // A directory of the same name as a removed file.
    mkdir(&fx.root, "fifo");
    assert_eq!(fx.get("fifo").unwrap().attr().unwrap().mode, 0o40755);
}

#[test]
fn rmdir_of_a_merged_directory_looks_at_the_merged_view() {
    let fx = fixture();
    let dir = fx.get("dir").unwrap();
    mkfile(&dir, "x", "");
    dir.unlink(b"x", false).unwrap();
    // Upper's dir is empty, but lower's a, b and sub still show.
    assert_eq!(names(&fx.upper_get("dir").unwrap()), Vec::<String>::new());
    assert_eq!(fx.root.unlink(b"dir", true).unwrap_err(), Errno::ENOTEMPTY);
    dir.unlink(b"a", false).unwrap();
    dir.unlink(b"b", false).unwrap();
    assert_eq!(fx.root.unlink(b"dir", true).unwrap_err(), Errno::ENOTEMPTY);
    let sub = dir.lookup(b"sub").unwrap();
    assert_eq!(dir.unlink(b"sub", true).unwrap_err(), Errno::ENOTEMPTY);
    sub.unlink(b"c", false).unwrap();
    dir.unlink(b"sub", true).unwrap();
    fx.root.unlink(b"dir", true).unwrap();
    assert_eq!(fx.get("dir").unwrap_err(), Errno::ENOENT);
    assert!(!names(&fx.root).contains(&"dir".to_string()));
    assert_eq!(names(&dir), Vec::<String>::new());
    // Made again: empty, whatever lower holds.
    let dir = mkdir(&fx.root, "dir");
    assert_eq!(names(&dir), Vec::<String>::new());
    assert_eq!(fx.get("dir/a").unwrap_err(), Errno::ENOENT);
}

#[test]
fn renaming_a_directory_that_exists_in_lower_is_exdev() {
    let fx = fixture();
    let root = &fx.root;
    assert_eq!(
        root.rename(b"dir", root, b"dir2").unwrap_err(),
        Errno::EXDEV
    );
    mkfile(&fx.get("dir").unwrap(), "x", ""); // Now merged: still EXDEV.
    assert_eq!(
        root.rename(b"dir", root, b"dir2").unwrap_err(),
        Errno::EXDEV
    );
    assert_eq!(
        root.rename(b"empty", root, b"e2").unwrap_err(),
        Errno::EXDEV
    );
    assert_eq!(names(&fx.get("dir").unwrap()), ["x", "a", "b", "sub"]);
    // A directory made in the overlay moves, with its contents.
    let x = mkdir(root, "x");
    mkfile(&x, "f", "in x");
    let ino = x.attr().unwrap().ino;
    root.rename(b"x", &fx.get("home").unwrap(), b"y").unwrap();
    assert_eq!(fx.get("x").unwrap_err(), Errno::ENOENT);
    assert_eq!(read_all(&fx.get("home/y/f").unwrap()), b"in x");
    assert_eq!(fx.get("home/y").unwrap().attr().unwrap().ino, ino);
    assert!(Arc::ptr_eq(&x, &fx.get("home/y").unwrap()));
}

#[test]
fn a_directory_moved_over_a_removed_lower_one_does_not_merge() {
    let fx = fixture();
    let dir = fx.get("dir").unwrap();
    dir.lookup(b"sub").unwrap().unlink(b"c", false).unwrap();
    let x = mkdir(&fx.root, "x");
    // Over an empty (in the merged view) lower directory.
    fx.root.rename(b"x", &dir, b"sub").unwrap();
    assert_eq!(names(&fx.get("dir/sub").unwrap()), Vec::<String>::new());
    assert_eq!(fx.get("dir/sub/c").unwrap_err(), Errno::ENOENT);
    assert!(Arc::ptr_eq(&x, &fx.get("dir/sub").unwrap()));
    // Over a non-empty one, or over a file: refused.
    let y = mkdir(&fx.root, "y");
    let _ = y;
    assert_eq!(
        fx.root.rename(b"y", &fx.root, b"etc").unwrap_err(),
        Errno::ENOTEMPTY
    );
    assert_eq!(
        fx.root.rename(b"y", &dir, b"a").unwrap_err(),
        Errno::ENOTDIR
    );
    assert_eq!(dir.rename(b"a", &fx.root, b"y").unwrap_err(), Errno::EISDIR);
}

#[test]
fn renaming_a_file_over_a_lower_file_leaves_a_whiteout() {
    let fx = fixture();
    let dir = fx.get("dir").unwrap();
    let a = dir.lookup(b"a").unwrap();
    let a_ino = a.attr().unwrap().ino;
    dir.rename(b"a", &dir, b"b").unwrap();
    assert_eq!(dir.lookup(b"a").unwrap_err(), Errno::ENOENT);
    let b = dir.lookup(b"b").unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    assert_eq!(read_all(&b), b"A");
    assert_eq!(b.attr().unwrap().ino, a_ino);
    assert_eq!(names(&dir), ["b", "sub"]);

    // Across directories, into one that is only in lower.
    let passwd = fx.get("etc/passwd").unwrap();
    let ino = passwd.attr().unwrap().ino;
    fx.get("etc")
        .unwrap()
        .rename(b"passwd", &fx.get("home/user").unwrap(), b"pw")
        .unwrap();
    assert_eq!(fx.get("etc/passwd").unwrap_err(), Errno::ENOENT);
    let pw = fx.get("home/user/pw").unwrap();
    assert_eq!(pw.attr().unwrap().ino, ino);
    assert_eq!(read_all(&pw), b"root:x:0:0::/root:/bin/sh\n");
    assert_eq!(names(&fx.get("home/user").unwrap()), ["pw", "notes"]);
    // A name made in the overlay, renamed: no whiteout needed, nothing comes back.
    let n = mkfile(&fx.root, "n", "n");
    fx.root.rename(b"n", &fx.root, b"m").unwrap();
    assert_eq!(fx.get("n").unwrap_err(), Errno::ENOENT);
    assert!(Arc::ptr_eq(&n, &fx.get("m").unwrap()));
    // Renaming a name onto itself does nothing.
    fx.root.rename(b"m", &fx.root, b"m").unwrap();
    assert_eq!(read_all(&fx.get("m").unwrap()), b"n");
}

#[test]
fn hard_links_copy_up_and_share_one_inode() {
    let fx = fixture();
    let etc = fx.get("etc").unwrap();
    let passwd = etc.lookup(b"passwd").unwrap();
    let ino = passwd.attr().unwrap().ino;
    etc.link(b"pw", &passwd).unwrap();
    let pw = etc.lookup(b"pw").unwrap();
    assert_eq!(pw.attr().unwrap().ino, ino);
    assert_eq!(passwd.attr().unwrap().nlink, 2);
    pw.clone()
        .open(O_WRONLY)
        .unwrap()
        .write(0, b"ROOT")
        .unwrap();
    assert_eq!(read_all(&passwd), b"ROOT:x:0:0::/root:/bin/sh\n");
    assert_eq!(etc.link(b"hostname", &passwd).unwrap_err(), Errno::EEXIST);
    assert_eq!(
        etc.link(b"d", &fx.get("dir").unwrap()).unwrap_err(),
        Errno::EPERM
    );
    let other = overlay(fx.lower.clone(), Tmpfs::new(99), 1).unwrap();
    let foreign = walk(&other, "etc/passwd").unwrap();
    assert_eq!(etc.link(b"f", &foreign).unwrap_err(), Errno::EXDEV);
    assert_eq!(etc.rename(b"pw", &other, b"pw").unwrap_err(), Errno::EXDEV);
    // Renaming one link over the other does nothing.
    etc.rename(b"pw", &etc, b"passwd").unwrap();
    assert_eq!(names(&etc), ["passwd", "pw", "hostname"]);
}

#[test]
fn a_removed_file_still_open_can_be_changed_without_coming_back() {
    let fx = fixture();
    let etc = fx.get("etc").unwrap();
    let passwd = etc.lookup(b"passwd").unwrap();
    let reader = passwd.clone().open(O_RDONLY).unwrap();
    etc.unlink(b"passwd", false).unwrap();
    assert_eq!(passwd.attr().unwrap().nlink, 0);
    chmod(&passwd, 0o600); // fchmod on the open descriptor
    assert_eq!(passwd.attr().unwrap().mode, 0o100600);
    assert_eq!(read_file(&*reader), b"root:x:0:0::/root:/bin/sh\n");
    assert_eq!(etc.lookup(b"passwd").unwrap_err(), Errno::ENOENT);
    assert_eq!(names(&etc), ["hostname"]);
    assert_eq!(names(&fx.upper.root()), ["etc"]);
    assert_eq!(etc.link(b"back", &passwd).unwrap_err(), Errno::ENOENT);
}

#[test]
fn a_busy_session_never_writes_lower() {
    let fx = fixture();
    let r = &fx.root;
    for path in ["etc/passwd", "home/user/notes", "bin/busybox", "dir/sub/c"] {
        let f = fx.get(path).unwrap();
        f.clone().open(O_RDWR).unwrap().write(1, b"zz").unwrap();
        f.set_attr(&SetAttr {
            mode: Some(0o777),
            uid: Some(1),
            gid: Some(2),
            size: Some(1),
            atime: Some(OLD),
            mtime: Some(OLD),
        })
        .unwrap();
    }
    for dir in ["etc", "home", "home/user", "dir", "dir/sub", "empty", ""] {
        chmod(&fx.get(dir).unwrap(), 0o711);
    }
    fx.get("bin/sh")
        .unwrap()
        .set_attr(&SetAttr::default())
        .unwrap();
    let bin = fx.get("bin").unwrap();
    bin.link(b"ash", &bin.lookup(b"busybox").unwrap()).unwrap();
    bin.rename(b"sh", &bin, b"busybox").unwrap();
    fx.get("dir/sub").unwrap().unlink(b"c", false).unwrap();
    fx.get("dir").unwrap().unlink(b"sub", true).unwrap();
    r.unlink(b"empty", true).unwrap();
    r.rename(b"null", r, b"fifo").unwrap();
    let d = mkdir(r, "empty");
    mkfile(&d, "f", "f");
    r.rename(b"empty", &fx.get("dir").unwrap(), b"sub").unwrap();
    assert_eq!(names(&fx.get("dir/sub").unwrap()), ["f"]);
    assert_eq!(fx.get("fifo").unwrap().attr().unwrap().rdev, devices::NULL);
    // The Fixture's drop compares the lower tree with its snapshot.
}

#[test]
fn through_the_vfs_renames_keep_inode_numbers() {
    use crate::vfs::{resolve, MountTable, Start};
    let fx = fixture();
    let mounts = MountTable::default();
    let root = mounts.root(fx.root.clone(), "overlay");
    let s = Start::new(&mounts, &root, &root);
    let before = resolve(s, b"/etc/passwd", true).unwrap();
    let ino = before.dentry.inode.attr().unwrap().ino;
    let etc = resolve(s, b"/etc", true).unwrap();
    etc.dentry
        .inode
        .rename(b"passwd", &root.dentry.inode, b"passwd2")
        .unwrap();
    etc.dentry.forget(b"passwd");
    root.dentry.forget(b"passwd2");
    let after = resolve(s, b"/passwd2", true).unwrap();
    assert_eq!(after.dentry.inode.attr().unwrap().ino, ino);
    assert_eq!(resolve(s, b"/etc/passwd", true).unwrap_err(), Errno::ENOENT);
    assert_eq!(
        resolve(s, b"/bin/sh", true).unwrap().dentry.name,
        b"busybox"
    );
}

/// A lower layer whose gofer can die: wraps a tmpfs tree and fails with EIO on request.
struct Flaky {
    inner: Arc<dyn Inode>,
    state: Arc<AtomicU8>,
}

const HEALTHY: u8 = 0;
const READS_FAIL: u8 = 1;
const DEAD: u8 = 2;

impl Flaky {
    fn check(&self) -> Result<(), Errno> {
        match self.state.load(Ordering::SeqCst) {
            DEAD => Err(Errno::EIO),
            _ => Ok(()),
        }
    }
}

impl Inode for Flaky {
    fn attr(&self) -> Result<Attr, Errno> {
        self.check()?;
        self.inner.attr()
    }
    fn lookup(&self, name: &[u8]) -> Result<Arc<dyn Inode>, Errno> {
        self.check()?;
        Ok(Arc::new(Flaky {
            inner: self.inner.lookup(name)?,
            state: self.state.clone(),
        }))
    }
    fn readdir(&self) -> Result<Vec<DirEntry>, Errno> {
        self.check()?;
        self.inner.readdir()
    }
    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        self.check()?;
        self.inner.readlink()
    }
    fn open(self: Arc<Self>, flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
        self.check()?;
        Ok(Arc::new(FlakyFile {
            inner: self.inner.clone().open(flags)?,
            state: self.state.clone(),
        }))
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

struct FlakyFile {
    inner: Arc<dyn FileOps>,
    state: Arc<AtomicU8>,
}

impl FileOps for FlakyFile {
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        if self.state.load(Ordering::SeqCst) != HEALTHY {
            return Err(Errno::EIO);
        }
        // Claims more than it was asked for: the overlay must not trust that.
        self.inner
            .read(offset, buf)
            .map(|n| if n > 0 { n + 1000 } else { 0 })
    }
    fn write(&self, offset: u64, buf: &[u8]) -> Result<usize, Errno> {
        self.inner.write(offset, buf)
    }
}

#[test]
fn lower_errors_pass_through_and_leave_no_half_copies() {
    let state = Arc::new(AtomicU8::new(HEALTHY));
    let fx = fixture();
    let flaky: Arc<dyn Inode> = Arc::new(Flaky {
        inner: fx.lower.clone(),
        state: state.clone(),
    });
    let upper = Tmpfs::new(5);
    let root = overlay(flaky.clone(), upper.clone(), 6).unwrap();
    let notes = walk(&root, "home/user/notes").unwrap();
    let user = walk(&root, "home/user").unwrap();

    state.store(READS_FAIL, Ordering::SeqCst);
    assert_eq!(notes.clone().open(O_WRONLY).err(), Some(Errno::EIO));
    // The parents were copied up, the file was not left half-made.
    assert_eq!(
        names(&walk(&upper.root(), "home/user").unwrap()),
        Vec::<String>::new()
    );
    assert!(upper_of(&notes).is_none());

    state.store(DEAD, Ordering::SeqCst);
    assert_eq!(walk(&root, "etc").err(), Some(Errno::EIO));
    assert_eq!(root.readdir().unwrap_err(), Errno::EIO);
    assert_eq!(notes.attr().unwrap_err(), Errno::EIO);
    assert_eq!(user.lookup(b"other").unwrap_err(), Errno::EIO);
    assert_eq!(
        user.create(b"other", &NewNode::File { mode: 0 }, ROOT)
            .unwrap_err(),
        Errno::EIO
    );
    assert_eq!(user.unlink(b"other", false).unwrap_err(), Errno::EIO);
    assert_eq!(user.rename(b"other", &root, b"x").unwrap_err(), Errno::EIO);
    assert_eq!(overlay(flaky, Tmpfs::new(7), 8).err(), Some(Errno::EIO));

    // Back to life: a whole copy, trusting only the bytes it asked for.
    state.store(HEALTHY, Ordering::SeqCst);
    let f = notes.clone().open(O_RDWR).unwrap();
    assert_eq!(read_file(&*f), b"lower notes\n");
    assert_eq!(
        read_all(&walk(&upper.root(), "home/user/notes").unwrap()),
        b"lower notes\n"
    );
}

/// The upper inode of an overlay inode, if it has been copied up.
fn upper_of(inode: &Arc<dyn Inode>) -> Option<Arc<dyn Inode>> {
    inode
        .as_any()
        .downcast_ref::<OvlInode>()
        .and_then(|o| o.upper())
}

#[test]
#[should_panic(expected = "the lower layer changed")]
fn the_lower_layer_check_catches_a_write() {
    let fx = fixture();
    let passwd = walk(&fx.lower, "etc/passwd").unwrap();
    passwd.open(O_WRONLY).unwrap().write(0, b"R").unwrap();
}
