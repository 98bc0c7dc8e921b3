//! The gofer file system against a real gofer server on a thread, over a real shared-memory
//! ring, serving a temporary directory tree each test builds.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::JoinHandle;

use ::gofer::client::ClientOptions;
use ::gofer::proto::MIN_PAYLOAD;
use ::gofer::ring::{RingConfig, ShmBackEnd, ShmFrontEnd};
use ::gofer::server::{Server, ServerError, ServerOptions};

use super::*;
use crate::fs::tmpfs::Tmpfs;
use crate::vfs::{resolve, Location, MountTable, Start, O_DIRECTORY, O_RDWR, O_WRONLY};

const CONFIG: RingConfig = RingConfig {
    slots: 8,
    data_slot_size: 64 * 1024,
};
/// The smallest slot the protocol allows: reads, writes and getdents take many requests.
const SMALL: RingConfig = RingConfig {
    slots: 2,
    data_slot_size: MIN_PAYLOAD,
};
const SECRET: &[u8] = b"outside the root";
const BIG: usize = 200 * 1024;

fn big_content() -> Vec<u8> {
    (0..BIG).map(|i| (i % 251) as u8).collect()
}

/// `base/root` is served, `base/outside` is not. Removed on drop.
///
/// root/file.txt "hello world", root/big.bin (BIG bytes), root/dir/inner.txt "inner",
/// root/dir/sub/, root/fifo, root/link_to_file -> file.txt, root/dir/up -> ../file.txt,
/// root/abs_link -> /dir/inner.txt, root/escape_abs -> base/outside/secret.txt,
/// root/escape_dotdot -> ../outside/secret.txt.
struct Tree {
    base: PathBuf,
}

impl Tree {
    fn new(test: &str) -> Tree {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let base = std::env::temp_dir().join(format!(
            "sentry-gofer-{}-{test}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let tree = Tree { base };
        let root = tree.root();
        std::fs::create_dir_all(root.join("dir/sub")).unwrap();
        std::fs::create_dir_all(tree.outside()).unwrap();
        std::fs::write(tree.outside().join("secret.txt"), SECRET).unwrap();
        std::fs::write(root.join("file.txt"), b"hello world").unwrap();
        std::fs::write(root.join("big.bin"), big_content()).unwrap();
        std::fs::write(root.join("dir/inner.txt"), b"inner").unwrap();
        nix::unistd::mkfifo(
            &root.join("fifo"),
            nix::sys::stat::Mode::from_bits_truncate(0o644),
        )
        .unwrap();
        let secret = tree.outside().join("secret.txt");
        let links: [(&str, &Path); 5] = [
            ("link_to_file", Path::new("file.txt")),
            ("dir/up", Path::new("../file.txt")),
            ("abs_link", Path::new("/dir/inner.txt")),
            ("escape_abs", &secret),
            ("escape_dotdot", Path::new("../outside/secret.txt")),
        ];
        for (name, target) in links {
            std::os::unix::fs::symlink(target, root.join(name)).unwrap();
        }
        tree
    }

    fn root(&self) -> PathBuf {
        self.base.join("root")
    }

    fn outside(&self) -> PathBuf {
        self.base.join("outside")
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

/// A gofer server on a thread and the root of the file system it serves.
struct Gofer {
    client: Arc<Client>,
    root: Arc<dyn Inode>,
    server: Option<JoinHandle<Result<(), ServerError>>>,
}

impl Gofer {
    fn start_with(tree: &Tree, options: ServerOptions, config: RingConfig) -> Gofer {
        let (front, fds) = ShmFrontEnd::create(config).unwrap();
        let back = ShmBackEnd::attach(config, fds).unwrap();
        let dir = OwnedFd::from(std::fs::File::open(tree.root()).unwrap());
        let mut server = Server::new(back, dir, options).unwrap();
        let server = std::thread::spawn(move || server.serve());
        let client = Arc::new(Client::connect(front, ClientOptions::default()).unwrap());
        let root = root(client.clone()).unwrap();
        Gofer {
            client,
            root,
            server: Some(server),
        }
    }

    fn start(tree: &Tree) -> Gofer {
        Gofer::start_with(tree, ServerOptions::default(), CONFIG)
    }

    /// Stops the server and checks it stopped cleanly.
    fn stop(mut self) {
        self.client.shutdown().unwrap();
        self.server.take().unwrap().join().unwrap().unwrap();
    }
}

impl Drop for Gofer {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            let _ = self.client.shutdown();
            let _ = server.join();
        }
    }
}

fn me() -> Owner {
    Owner {
        uid: nix::unistd::getuid().as_raw(),
        gid: nix::unistd::getgid().as_raw(),
    }
}

fn walk(dir: &Arc<dyn Inode>, path: &str) -> Arc<dyn Inode> {
    path.split('/')
        .fold(dir.clone(), |d, name| d.lookup(name.as_bytes()).unwrap())
}

fn kind(inode: &Arc<dyn Inode>) -> FileType {
    inode.attr().unwrap().file_type().unwrap()
}

fn read_all(inode: &Arc<dyn Inode>) -> Vec<u8> {
    let file = inode.clone().open(O_RDONLY).unwrap();
    let mut out = Vec::new();
    let mut buf = vec![0; 4096];
    loop {
        let n = file.read(out.len() as u64, &mut buf).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n]);
    }
}

fn names(dir: &Arc<dyn Inode>) -> Vec<(String, FileType)> {
    let mut entries: Vec<_> = dir
        .readdir()
        .unwrap()
        .into_iter()
        .map(|e| (String::from_utf8(e.name).unwrap(), e.file_type))
        .collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries
}

#[test]
fn lookup_and_attr_of_files_dirs_and_symlinks() {
    let tree = Tree::new("lookup");
    let g = Gofer::start(&tree);
    let host = |p: &str| std::fs::symlink_metadata(tree.root().join(p)).unwrap();
    use std::os::unix::fs::MetadataExt;

    let root = g.root.attr().unwrap();
    let meta = std::fs::metadata(tree.root()).unwrap();
    assert_eq!(root.file_type(), Some(FileType::Directory));
    assert_eq!((root.ino, root.dev), (meta.ino(), meta.dev()));

    let file = g.root.lookup(b"file.txt").unwrap();
    let a = file.attr().unwrap();
    let m = host("file.txt");
    assert_eq!(a.file_type(), Some(FileType::Regular));
    assert_eq!(
        (a.size, a.mode, a.ino, a.dev, a.nlink, a.uid, a.gid),
        (11, m.mode(), m.ino(), m.dev(), 1, m.uid(), m.gid())
    );
    assert_eq!(
        (a.mtime.tv_sec, a.mtime.tv_nsec),
        (m.mtime(), m.mtime_nsec())
    );

    assert_eq!(kind(&g.root.lookup(b"dir").unwrap()), FileType::Directory);
    assert_eq!(kind(&walk(&g.root, "dir/sub")), FileType::Directory);
    assert_eq!(kind(&g.root.lookup(b"fifo").unwrap()), FileType::Fifo);

    // Symlinks are inodes of their own, never followed here.
    let link = g.root.lookup(b"link_to_file").unwrap();
    assert_eq!(kind(&link), FileType::Symlink);
    assert_eq!(link.attr().unwrap().ino, host("link_to_file").ino());
    assert_eq!(link.readlink().unwrap(), b"file.txt");
    assert_eq!(walk(&g.root, "dir/up").readlink().unwrap(), b"../file.txt");
    assert_eq!(file.readlink().unwrap_err(), Errno::EINVAL);

    assert_eq!(g.root.lookup(b"nope").unwrap_err(), Errno::ENOENT);
    assert_eq!(file.lookup(b"x").unwrap_err(), Errno::ENOTDIR);
    assert_eq!(link.lookup(b"x").unwrap_err(), Errno::ENOTDIR);
    assert_eq!(file.readdir().unwrap_err(), Errno::ENOTDIR);
    g.stop();
}

#[test]
fn readdir_lists_every_entry_with_its_type() {
    let tree = Tree::new("readdir");
    let g = Gofer::start(&tree);
    use FileType::*;
    let expected = [
        ("abs_link", Symlink),
        ("big.bin", Regular),
        ("dir", Directory),
        ("escape_abs", Symlink),
        ("escape_dotdot", Symlink),
        ("fifo", Fifo),
        ("file.txt", Regular),
        ("link_to_file", Symlink),
    ];
    let expected: Vec<_> = expected.iter().map(|(n, t)| (n.to_string(), *t)).collect();
    assert_eq!(names(&g.root), expected);
    let entries = g.root.readdir().unwrap();
    let file = entries.iter().find(|e| e.name == b"file.txt").unwrap();
    assert_eq!(
        file.ino,
        g.root.lookup(b"file.txt").unwrap().attr().unwrap().ino
    );
    assert!(names(&walk(&g.root, "dir/sub")).is_empty());
    g.stop();
}

#[test]
fn readdir_pages_through_a_big_directory() {
    let tree = Tree::new("bigdir");
    let many = tree.root().join("many");
    std::fs::create_dir(&many).unwrap();
    let mut want = Vec::new();
    for i in 0..600 {
        let name = format!("entry-with-a-longish-name-{i:04}");
        std::fs::write(many.join(&name), b"").unwrap();
        want.push((name, FileType::Regular));
    }
    // The smallest slot holds far fewer than 600 entries: many Getdents with cookies.
    let g = Gofer::start_with(&tree, ServerOptions::default(), SMALL);
    let dir = g.root.lookup(b"many").unwrap();
    assert_eq!(names(&dir), want);
    // Stable order, as the VFS wants.
    assert_eq!(dir.readdir().unwrap(), dir.readdir().unwrap());
    g.stop();
}

#[test]
fn dirent_types_map_to_file_types() {
    assert_eq!(dirent_file_type(libc::DT_REG), Some(FileType::Regular));
    assert_eq!(dirent_file_type(libc::DT_DIR), Some(FileType::Directory));
    assert_eq!(dirent_file_type(libc::DT_LNK), Some(FileType::Symlink));
    assert_eq!(dirent_file_type(libc::DT_FIFO), Some(FileType::Fifo));
    assert_eq!(dirent_file_type(libc::DT_SOCK), Some(FileType::Socket));
    assert_eq!(dirent_file_type(libc::DT_CHR), Some(FileType::CharDevice));
    assert_eq!(dirent_file_type(libc::DT_BLK), Some(FileType::BlockDevice));
    // DT_UNKNOWN: readdir walks to the entry to learn its type.
    assert_eq!(dirent_file_type(libc::DT_UNKNOWN), None);
    assert_eq!(dirent_file_type(0xff), None);
}

#[test]
fn reads_at_offsets_split_to_the_payload() {
    let tree = Tree::new("read");
    let big = big_content();
    for config in [CONFIG, SMALL] {
        let g = Gofer::start_with(&tree, ServerOptions::default(), config);
        let file = g.root.lookup(b"file.txt").unwrap();
        let f = file.clone().open(O_RDONLY).unwrap();
        let mut buf = [0u8; 5];
        assert_eq!(f.read(6, &mut buf).unwrap(), 5);
        assert_eq!(&buf, b"world");
        assert_eq!(f.read(9, &mut buf).unwrap(), 2);
        assert_eq!(&buf[..2], b"ld");
        assert_eq!(f.read(11, &mut buf).unwrap(), 0);
        assert_eq!(f.read(1 << 40, &mut buf).unwrap(), 0);
        // Not open for writing: the host says EBADF.
        assert_eq!(f.write(0, b"x").unwrap_err(), Errno::EBADF);

        // Much more than one data slot, from an odd offset.
        let bigf = g.root.lookup(b"big.bin").unwrap();
        let f = bigf.clone().open(O_RDONLY).unwrap();
        let mut buf = vec![0u8; BIG];
        assert_eq!(f.read(1001, &mut buf).unwrap(), BIG - 1001);
        assert_eq!(&buf[..BIG - 1001], &big[1001..]);
        assert_eq!(read_all(&bigf), big);
        g.stop();
    }
}

#[test]
fn create_write_and_read_back_with_fresh_attributes() {
    let tree = Tree::new("create");
    for config in [CONFIG, SMALL] {
        let g = Gofer::start_with(&tree, ServerOptions::default(), config);
        let name = format!("new-{}", config.data_slot_size);
        let file = g
            .root
            .create(name.as_bytes(), &NewNode::File { mode: 0o640 }, me())
            .unwrap();
        let a = file.attr().unwrap();
        assert_eq!(
            (a.mode, a.size, a.uid, a.gid),
            (0o100640, 0, me().uid, me().gid)
        );
        assert_eq!(
            g.root
                .create(name.as_bytes(), &NewNode::File { mode: 0o640 }, me())
                .unwrap_err(),
            Errno::EEXIST
        );
        // The VFS looks the new name up again, as after open(O_CREAT).
        let found = g.root.lookup(name.as_bytes()).unwrap();
        let f = found.clone().open(O_RDWR).unwrap();
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
        assert_eq!(f.write(0, &data).unwrap(), data.len());
        // Fresh at once, through every inode of the file.
        assert_eq!(found.attr().unwrap().size, data.len() as u64);
        assert_eq!(file.attr().unwrap().size, data.len() as u64);
        assert_eq!(f.write(200_000, b"tail").unwrap(), 4);
        assert_eq!(found.attr().unwrap().size, 200_004);
        let mut buf = vec![0u8; data.len()];
        assert_eq!(f.read(0, &mut buf).unwrap(), data.len());
        assert_eq!(buf, data);
        let mut hole = [9u8; 8];
        assert_eq!(f.read(150_000, &mut hole).unwrap(), 8);
        assert_eq!(hole, [0; 8]);
        let host = std::fs::read(tree.root().join(&name)).unwrap();
        assert_eq!(host.len(), 200_004);
        assert_eq!(&host[..data.len()], &data[..]);
        assert_eq!(&host[200_000..], b"tail");
        // The parent's times changed with the new name.
        let meta = std::fs::metadata(tree.root()).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!(g.root.attr().unwrap().mtime.tv_nsec, meta.mtime_nsec());
        g.stop();
    }
}

#[test]
fn a_file_created_read_only_can_still_be_written_by_its_creator() {
    let tree = Tree::new("readonly-mode");
    let g = Gofer::start(&tree);
    g.root
        .create(b"ro", &NewNode::File { mode: 0o444 }, me())
        .unwrap();
    // open(O_CREAT | O_WRONLY, 0444): the open after the creation gets the creation's fid.
    let file = g.root.lookup(b"ro").unwrap();
    let f = file.clone().open(O_WRONLY).unwrap();
    assert_eq!(f.write(0, b"written").unwrap(), 7);
    assert_eq!(std::fs::read(tree.root().join("ro")).unwrap(), b"written");
    assert_eq!(file.attr().unwrap().mode, 0o100444);
    // A later open is an ordinary one (and reads what was written).
    assert_eq!(read_all(&file), b"written");
    g.stop();
}

#[test]
fn directories_fifos_and_symlinks_open_as_linux_says() {
    let tree = Tree::new("open");
    let g = Gofer::start(&tree);
    let dir = g.root.lookup(b"dir").unwrap();
    let d = dir.clone().open(O_RDONLY | O_DIRECTORY).unwrap();
    let mut buf = [0u8; 4];
    assert_eq!(d.read(0, &mut buf).unwrap_err(), Errno::EISDIR);
    assert_eq!(dir.clone().open(O_RDWR).err(), Some(Errno::EISDIR));
    let link = g.root.lookup(b"link_to_file").unwrap();
    assert_eq!(link.open(O_RDONLY).err(), Some(Errno::ELOOP));
    let fifo = g.root.lookup(b"fifo").unwrap();
    assert_eq!(fifo.open(O_RDONLY).err(), Some(Errno::ENXIO));
    g.stop();
}

#[test]
fn mkdir_unlink_rmdir_rename_symlink_readlink_link() {
    let tree = Tree::new("mutate");
    let g = Gofer::start(&tree);
    let r = &g.root;
    let host = |p: &str| tree.root().join(p);
    use std::os::unix::fs::MetadataExt;

    let nlink = r.attr().unwrap().nlink;
    let d = r
        .create(b"newdir", &NewNode::Directory { mode: 0o750 }, me())
        .unwrap();
    assert_eq!(d.attr().unwrap().mode, 0o40750);
    assert_eq!(r.attr().unwrap().nlink, nlink + 1);
    assert!(host("newdir").is_dir());
    let f = d
        .create(b"f", &NewNode::File { mode: 0o600 }, me())
        .unwrap();
    f.clone().open(O_WRONLY).unwrap().write(0, b"data").unwrap();

    let fifo = d
        .create(b"pipe", &NewNode::Fifo { mode: 0o620 }, me())
        .unwrap();
    assert_eq!(fifo.attr().unwrap().mode, S_IFIFO | 0o620);
    let dev = NewNode::Device {
        mode: crate::vfs::S_IFCHR | 0o600,
        rdev: 0x103,
    };
    assert_eq!(d.create(b"null", &dev, me()).unwrap_err(), Errno::EPERM);

    let sym = NewNode::Symlink {
        target: b"f".to_vec(),
    };
    let s = d.create(b"s", &sym, me()).unwrap();
    assert_eq!(kind(&s), FileType::Symlink);
    assert_eq!(s.readlink().unwrap(), b"f");
    assert_eq!(
        std::fs::read_link(host("newdir/s")).unwrap(),
        Path::new("f")
    );

    // Hard link: both names, one inode, link counts fresh at once.
    r.link(b"hard", &f).unwrap();
    assert_eq!(f.attr().unwrap().nlink, 2);
    let hard = r.lookup(b"hard").unwrap();
    assert_eq!(hard.attr().unwrap().ino, f.attr().unwrap().ino);
    assert_eq!(read_all(&hard), b"data");
    assert_eq!(r.link(b"hard", &f).unwrap_err(), Errno::EEXIST);
    assert_eq!(r.link(b"dirlink", &d).unwrap_err(), Errno::EPERM);

    // Removal: the right kind of each, and errors as Linux.
    assert_eq!(r.unlink(b"newdir", true).unwrap_err(), Errno::ENOTEMPTY);
    assert_eq!(r.unlink(b"newdir", false).unwrap_err(), Errno::EISDIR);
    assert_eq!(r.unlink(b"hard", true).unwrap_err(), Errno::ENOTDIR);
    assert_eq!(r.unlink(b"nope", false).unwrap_err(), Errno::ENOENT);
    r.unlink(b"hard", false).unwrap();
    assert_eq!(f.attr().unwrap().nlink, 1);
    assert_eq!(r.lookup(b"hard").unwrap_err(), Errno::ENOENT);

    // Rename across directories; the moved inode keeps working.
    d.rename(b"f", r, b"moved").unwrap();
    assert_eq!(d.lookup(b"f").unwrap_err(), Errno::ENOENT);
    assert_eq!(read_all(&f), b"data");
    assert_eq!(read_all(&r.lookup(b"moved").unwrap()), b"data");
    assert_eq!(
        std::fs::metadata(host("moved")).unwrap().ino(),
        f.attr().unwrap().ino
    );
    // Over an existing file, and onto a non-empty directory.
    r.rename(b"moved", r, b"file.txt").unwrap();
    assert_eq!(std::fs::read(host("file.txt")).unwrap(), b"data");
    assert_eq!(r.rename(b"file.txt", r, b"dir").unwrap_err(), Errno::EISDIR);
    assert_eq!(r.rename(b"nope", r, b"x").unwrap_err(), Errno::ENOENT);

    for name in [&b"s"[..], b"pipe"] {
        d.unlink(name, false).unwrap();
    }
    r.unlink(b"newdir", true).unwrap();
    assert!(!host("newdir").exists());
    assert_eq!(r.attr().unwrap().nlink, nlink);
    g.stop();
}

#[test]
fn set_attr_changes_mode_size_and_times() {
    let tree = Tree::new("setattr");
    let g = Gofer::start(&tree);
    let file = g.root.lookup(b"file.txt").unwrap();
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    assert_eq!(file.attr().unwrap().size, 11);
    file.set_attr(&SetAttr {
        mode: Some(0o600),
        size: Some(5),
        ..SetAttr::default()
    })
    .unwrap();
    let a = file.attr().unwrap();
    assert_eq!((a.mode, a.size), (0o100600, 5));
    let meta = std::fs::metadata(tree.root().join("file.txt")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
    assert_eq!(
        std::fs::read(tree.root().join("file.txt")).unwrap(),
        b"hello"
    );

    // Growing, and times.
    let t = Timespec {
        tv_sec: 1_000_000_000,
        tv_nsec: 42,
    };
    file.set_attr(&SetAttr {
        size: Some(8),
        atime: Some(t),
        mtime: Some(t),
        ..SetAttr::default()
    })
    .unwrap();
    let a = file.attr().unwrap();
    assert_eq!((a.size, a.mtime, a.atime), (8, t, t));
    assert_eq!(read_all(&file), b"hello\0\0\0");
    assert_eq!(
        std::fs::metadata(tree.root().join("file.txt"))
            .unwrap()
            .mtime(),
        1_000_000_000
    );

    // Owner to itself (allowed to anyone) changes nothing but works.
    file.set_attr(&SetAttr {
        uid: Some(me().uid),
        gid: Some(me().gid),
        ..SetAttr::default()
    })
    .unwrap();
    // Directory mode; a directory has no size.
    let dir = g.root.lookup(b"dir").unwrap();
    dir.set_attr(&SetAttr {
        mode: Some(0o711),
        ..SetAttr::default()
    })
    .unwrap();
    assert_eq!(dir.attr().unwrap().mode, 0o40711);
    let truncate = SetAttr {
        size: Some(0),
        ..SetAttr::default()
    };
    assert_eq!(dir.set_attr(&truncate).unwrap_err(), Errno::EISDIR);
    // Nothing to change is no request at all.
    dir.set_attr(&SetAttr::default()).unwrap();
    g.stop();
}

#[test]
fn a_read_only_gofer_refuses_every_mutation_with_erofs() {
    let tree = Tree::new("rofs");
    let options = ServerOptions {
        read_only: true,
        ..ServerOptions::default()
    };
    let g = Gofer::start_with(&tree, options, CONFIG);
    let r = &g.root;
    let file = r.lookup(b"file.txt").unwrap();
    let dir = r.lookup(b"dir").unwrap();
    let erofs = Err(Errno::EROFS);
    for node in [
        NewNode::File { mode: 0o644 },
        NewNode::Directory { mode: 0o755 },
        NewNode::Fifo { mode: 0o644 },
        NewNode::Symlink {
            target: b"x".to_vec(),
        },
    ] {
        assert_eq!(r.create(b"new", &node, me()).map(drop), erofs);
    }
    assert_eq!(r.link(b"new", &file), erofs);
    assert_eq!(r.unlink(b"file.txt", false), erofs);
    assert_eq!(r.unlink(b"dir", true), erofs);
    assert_eq!(r.rename(b"file.txt", &dir, b"x"), erofs);
    let chmod = SetAttr {
        mode: Some(0o600),
        ..SetAttr::default()
    };
    assert_eq!(file.set_attr(&chmod), erofs);
    assert_eq!(file.clone().open(O_WRONLY).map(drop), erofs);
    assert_eq!(file.clone().open(O_RDWR).map(drop), erofs);
    // Reading is fine, and nothing changed.
    assert_eq!(read_all(&file), b"hello world");
    assert_eq!(names(r).len(), 8);
    g.stop();
}

#[test]
fn a_symlink_out_of_the_root_is_returned_never_followed() {
    let tree = Tree::new("escape");
    let g = Gofer::start(&tree);
    let secret = tree.outside().join("secret.txt");
    for (name, target) in [
        ("escape_abs", secret.as_os_str().as_encoded_bytes()),
        ("escape_dotdot", b"../outside/secret.txt"),
    ] {
        let link = g.root.lookup(name.as_bytes()).unwrap();
        let a = link.attr().unwrap();
        assert_eq!(a.file_type(), Some(FileType::Symlink));
        // The link's own size, not the secret's.
        assert_eq!(a.size, target.len() as u64);
        assert_eq!(link.readlink().unwrap(), target);
        assert_eq!(link.lookup(b"x").unwrap_err(), Errno::ENOTDIR);
        assert_eq!(link.clone().open(O_RDONLY).err(), Some(Errno::ELOOP));
    }
    // Nor through the VFS: the targets are resolved inside the sandbox's root.
    let mounts = MountTable::default();
    let top = mounts.root(g.root.clone(), "gofer");
    let s = Start::new(&mounts, &top, &top);
    assert_eq!(resolve(s, b"/escape_abs", true).unwrap_err(), Errno::ENOENT);
    assert_eq!(
        resolve(s, b"/escape_dotdot", true).unwrap_err(),
        Errno::ENOENT
    );
    assert!(resolve(s, b"/escape_dotdot/..", true).is_err());
    g.stop();
}

#[test]
fn the_vfs_resolves_paths_with_symlinks_inside_the_tree() {
    let tree = Tree::new("resolve");
    let g = Gofer::start(&tree);
    let mounts = MountTable::default();
    let top = mounts.root(g.root.clone(), "gofer");
    let s = Start::new(&mounts, &top, &top);
    let read = |loc: &Location| read_all(&loc.dentry.inode);
    let name = |loc: &Location| String::from_utf8(loc.dentry.name.clone()).unwrap();

    let found = resolve(s, b"/link_to_file", true).unwrap();
    assert_eq!(
        (name(&found), read(&found)),
        ("file.txt".into(), b"hello world".to_vec())
    );
    let found = resolve(s, b"/dir/up", true).unwrap();
    assert_eq!(read(&found), b"hello world");
    // An absolute target is resolved from the sandbox's root, which is the gofer's root.
    let found = resolve(s, b"/abs_link", true).unwrap();
    assert_eq!(
        (name(&found), read(&found)),
        ("inner.txt".into(), b"inner".to_vec())
    );
    // A symlink in the middle of a path, and ".." after it.
    let found = resolve(s, b"/dir/up/../dir/sub/../inner.txt", true);
    assert_eq!(found.unwrap_err(), Errno::ENOTDIR);
    let found = resolve(s, b"/dir/sub/../../link_to_file", true).unwrap();
    assert_eq!(read(&found), b"hello world");
    // Not following the last one gives the link.
    let link = resolve(s, b"/dir/up", false).unwrap();
    assert_eq!(
        link.dentry.inode.attr().unwrap().file_type(),
        Some(FileType::Symlink)
    );
    assert_eq!(resolve(s, b"/dir/nope", true).unwrap_err(), Errno::ENOENT);
    assert_eq!(
        resolve(s, b"/file.txt/x", true).unwrap_err(),
        Errno::ENOTDIR
    );
    g.stop();
}

#[test]
fn rename_and_link_across_file_systems_are_exdev() {
    let tree = Tree::new("exdev");
    let g = Gofer::start(&tree);
    let other_tree = Tree::new("exdev-other");
    let other = Gofer::start(&other_tree);
    let tmp = Tmpfs::new(9).root();
    let file = g.root.lookup(b"file.txt").unwrap();
    assert_eq!(g.root.rename(b"file.txt", &tmp, b"x"), Err(Errno::EXDEV));
    assert_eq!(
        g.root.rename(b"file.txt", &other.root, b"x"),
        Err(Errno::EXDEV)
    );
    assert_eq!(other.root.link(b"x", &file), Err(Errno::EXDEV));
    let tmp_file = tmp
        .create(b"t", &NewNode::File { mode: 0o644 }, me())
        .unwrap();
    assert_eq!(g.root.link(b"x", &tmp_file), Err(Errno::EXDEV));
    assert!(tree.root().join("file.txt").exists());
    g.stop();
    other.stop();
}

#[test]
fn fids_are_given_back_when_inodes_and_files_drop() {
    let tree = Tree::new("fids");
    let options = ServerOptions {
        max_fids: 8,
        ..ServerOptions::default()
    };
    let g = Gofer::start_with(&tree, options, CONFIG);
    // Far more fids over time than the gofer allows at once.
    for i in 0..100 {
        let file = walk(&g.root, "dir/inner.txt");
        assert_eq!(read_all(&file), b"inner");
        assert_eq!(names(&g.root).len(), 8);
        let name = format!("n{i}");
        // As open(O_CREAT): create, look up, open (which takes the creation's open fid).
        g.root
            .create(name.as_bytes(), &NewNode::File { mode: 0o644 }, me())
            .unwrap();
        let made = g.root.lookup(name.as_bytes()).unwrap();
        made.clone().open(O_WRONLY).unwrap().write(0, b"x").unwrap();
        g.root.link(b"h", &file).unwrap();
        g.root.unlink(b"h", false).unwrap();
        g.root.unlink(name.as_bytes(), false).unwrap();
    }
    g.stop();
}

#[test]
fn open_fids_of_creations_never_opened_are_bounded() {
    let tree = Tree::new("spares");
    // The root, the spares, and the two fids of one creation.
    let options = ServerOptions {
        max_fids: 1 + MAX_SPARES + 2,
        ..ServerOptions::default()
    };
    let g = Gofer::start_with(&tree, options, CONFIG);
    for i in 0..4 * MAX_SPARES {
        let name = format!("n{i}");
        g.root
            .create(name.as_bytes(), &NewNode::File { mode: 0o644 }, me())
            .unwrap();
    }
    // The oldest were given back; the newest still open with one fid spare.
    let last = format!("n{}", 4 * MAX_SPARES - 1);
    let last = g.root.lookup(last.as_bytes()).unwrap();
    last.clone()
        .open(O_WRONLY)
        .unwrap()
        .write(0, b"ok")
        .unwrap();
    assert_eq!(read_all(&last), b"ok");
    g.stop();
}

#[test]
fn attributes_changed_on_the_host_show_after_the_ttl() {
    let tree = Tree::new("ttl");
    let g = Gofer::start(&tree);
    let file = g.root.lookup(b"file.txt").unwrap();
    assert_eq!(file.attr().unwrap().size, 11);
    std::fs::write(tree.root().join("file.txt"), b"longer than before").unwrap();
    std::thread::sleep(ATTR_TTL + Duration::from_millis(50));
    assert_eq!(file.attr().unwrap().size, 18);
    g.stop();
}

#[test]
fn a_dead_gofer_gives_eio_and_nothing_panics() {
    let tree = Tree::new("dead");
    let g = Gofer::start(&tree);
    let file = g.root.lookup(b"file.txt").unwrap();
    let open = file.clone().open(O_RDONLY).unwrap();
    let link = g.root.lookup(b"link_to_file").unwrap();
    let dir = g.root.lookup(b"dir").unwrap();
    let client = g.client.clone();
    g.stop();
    assert!(client.failure().is_some());
    let mut buf = [0u8; 4];
    assert_eq!(open.read(0, &mut buf).unwrap_err(), Errno::EIO);
    assert_eq!(open.write(0, b"x").unwrap_err(), Errno::EIO);
    assert_eq!(dir.lookup(b"inner.txt").unwrap_err(), Errno::EIO);
    assert_eq!(dir.readdir().unwrap_err(), Errno::EIO);
    assert_eq!(link.readlink().unwrap_err(), Errno::EIO);
    assert_eq!(file.clone().open(O_RDONLY).err(), Some(Errno::EIO));
    let new = NewNode::File { mode: 0o644 };
    assert_eq!(dir.create(b"x", &new, me()).err(), Some(Errno::EIO));
    // A write invalidated the file's cached attributes: they must be asked for.
    assert_eq!(file.attr().unwrap_err(), Errno::EIO);
    assert_eq!(root(client.clone()).err(), Some(Errno::EIO));
    // Dropping everything closes nothing and panics not.
    drop((file, open, link, dir));
}
