//! Client ↔ server over a real shared-memory ring, the server on a thread (or, to be killed,
//! in a child process), on a temporary directory tree built by each test.

use std::collections::BTreeSet;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::libc;
use nix::sys::stat::Mode;

use crate::client::{Client, ClientOptions, Owner, Walked};
use crate::proto::{
    self, setattr, Fid, FidAttr, Name, Opcode, Request, Response, SetAttr, Timespec, AT_REMOVEDIR,
    MIN_PAYLOAD, RENAME_EXCHANGE, RENAME_NOREPLACE,
};
use crate::ring::{RingConfig, RingFds, ShmBackEnd, ShmFrontEnd};
use crate::server::{Server, ServerError, ServerOptions};

mod rings;

const CONFIG: RingConfig = RingConfig {
    slots: 8,
    data_slot_size: 64 * 1024,
};
/// The smallest slot the protocol allows: reads, writes and walks must be split.
const SMALL: RingConfig = RingConfig {
    slots: 2,
    data_slot_size: MIN_PAYLOAD,
};
const SECRET: &[u8] = b"TOP SECRET: outside the root";

/// A directory tree made for one test: `root/` is served, `outside/` is not. Removed on drop.
struct Tree {
    base: PathBuf,
}

impl Tree {
    fn new(test: &str) -> Tree {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let base = std::env::temp_dir().join(format!(
            "gofer-test-{}-{test}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let tree = Tree { base };
        std::fs::create_dir_all(tree.root().join("dir")).unwrap();
        std::fs::create_dir_all(tree.outside()).unwrap();
        std::fs::write(tree.outside().join("secret.txt"), SECRET).unwrap();
        std::fs::write(tree.root().join("file.txt"), b"hello world").unwrap();
        std::fs::write(tree.root().join("dir/inner.txt"), b"inner").unwrap();
        let outside_secret = tree.outside().join("secret.txt");
        let links: [(&str, &Path); 6] = [
            ("escape_shadow", Path::new("/etc/shadow")),
            ("escape_dotdot", Path::new("../../..")),
            ("escape_proc", Path::new("/proc/self/root")),
            ("escape_abs", &outside_secret),
            ("escape_outside_dir", Path::new("../outside")),
            ("dir/escape_up", Path::new("../../outside/secret.txt")),
        ];
        for (name, target) in links {
            std::os::unix::fs::symlink(target, tree.root().join(name)).unwrap();
        }
        tree
    }

    fn root(&self) -> PathBuf {
        self.base.join("root")
    }

    fn outside(&self) -> PathBuf {
        self.base.join("outside")
    }

    fn open_root(&self) -> OwnedFd {
        nix::fcntl::open(
            &self.root(),
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .unwrap()
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

struct Running {
    client: Client,
    server: Option<JoinHandle<Result<(), ServerError>>>,
}

impl Running {
    /// Shuts the server down and checks it stopped cleanly.
    fn stop(mut self) {
        self.client.shutdown().unwrap();
        let server = self.server.take().unwrap();
        server.join().unwrap().unwrap();
    }
}

/// A server for `tree` on a thread; `openat2: false` makes it behave as on a kernel without
/// openat2 (plain openat with O_NOFOLLOW).
fn serve_on_thread_with(
    tree: &Tree,
    options: ServerOptions,
    config: RingConfig,
    openat2: bool,
) -> (ShmFrontEnd, JoinHandle<Result<(), ServerError>>) {
    let (front, fds) = ShmFrontEnd::create(config).unwrap();
    let back = ShmBackEnd::attach(config, fds).unwrap();
    let mut server = Server::new(back, tree.open_root(), options).unwrap();
    if !openat2 {
        server = server.without_openat2();
    }
    (front, std::thread::spawn(move || server.serve()))
}

fn serve_on_thread(
    tree: &Tree,
    options: ServerOptions,
    config: RingConfig,
) -> (ShmFrontEnd, JoinHandle<Result<(), ServerError>>) {
    serve_on_thread_with(tree, options, config, true)
}

/// Both ways a server opens names: the escape tests run under each.
const OPENAT2_OR_NOT: [bool; 2] = [true, false];

fn start_openat2(tree: &Tree, openat2: bool) -> Running {
    let (front, server) = serve_on_thread_with(tree, ServerOptions::default(), CONFIG, openat2);
    let client = Client::connect(front, ClientOptions::default()).unwrap();
    Running {
        client,
        server: Some(server),
    }
}

fn start_with(tree: &Tree, options: ServerOptions, config: RingConfig) -> Running {
    let (front, server) = serve_on_thread(tree, options, config);
    let client = Client::connect(front, ClientOptions::default()).unwrap();
    Running {
        client,
        server: Some(server),
    }
}

fn start(tree: &Tree) -> Running {
    start_with(tree, ServerOptions::default(), CONFIG)
}

fn me() -> Owner {
    Owner {
        uid: nix::unistd::getuid().as_raw(),
        gid: nix::unistd::getgid().as_raw(),
    }
}

/// Walks a whole path that must exist; returns the last node.
fn walk_all(client: &Client, path: &[&str]) -> FidAttr {
    let walked = client.walk(client.root().fid, path).unwrap();
    assert_eq!(walked.error, None, "walking {path:?}");
    assert_eq!(walked.nodes.len(), path.len(), "walking {path:?}");
    *walked.nodes.last().unwrap()
}

fn read_all(client: &Client, file: Fid) -> Vec<u8> {
    let mut buf = vec![0; 1 << 20];
    let n = client.read(file, 0, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

fn open_and_read(client: &Client, path: &[&str]) -> Vec<u8> {
    let node = walk_all(client, path);
    let file = client.open(node.fid, OFlag::O_RDONLY).unwrap();
    let data = read_all(client, file);
    client.close(file).unwrap();
    data
}

#[test]
fn client_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Client>();
}

#[test]
fn walk_stat_open_read() {
    let tree = Tree::new("read");
    let run = start(&tree);
    let c = &run.client;
    let root = c.root();
    assert!(root.attr.is_dir());
    assert_eq!(root.attr.ino, std::fs::metadata(tree.root()).unwrap().ino());
    assert_eq!(c.version(), proto::VERSION);

    let walked = c.walk(root.fid, &["dir", "inner.txt"]).unwrap();
    assert_eq!(walked.error, None);
    let [dir, inner] = walked.nodes[..] else {
        panic!("{walked:?}")
    };
    assert!(dir.attr.is_dir());
    assert!(inner.attr.is_regular());
    assert_eq!(inner.attr.size, 5);
    let host = std::fs::metadata(tree.root().join("dir/inner.txt")).unwrap();
    assert_eq!((inner.attr.ino, inner.attr.dev), (host.ino(), host.dev()));
    assert_eq!(inner.attr.mode, host.mode());
    assert_eq!(c.stat(inner.fid).unwrap(), inner.attr);

    let file = c.open(inner.fid, OFlag::O_RDONLY).unwrap();
    assert_ne!(file, inner.fid, "open hands out a new fid");
    assert_eq!(c.stat(file).unwrap().ino, inner.attr.ino);
    let mut buf = [0u8; 16];
    assert_eq!(c.read(file, 0, &mut buf).unwrap(), 5);
    assert_eq!(&buf[..5], b"inner");
    assert_eq!(c.read(file, 2, &mut buf[..2]).unwrap(), 2);
    assert_eq!(&buf[..2], b"ne");
    assert_eq!(c.read(file, 100, &mut buf).unwrap(), 0, "past the end");
    // The node fid is no file: I/O on it is EBADF, as on an O_PATH descriptor.
    assert_eq!(c.read(inner.fid, 0, &mut buf), Err(Errno::EBADF));
    assert_eq!(c.read(inner.fid, 0, &mut []), Err(Errno::EBADF));
    assert_eq!(c.read(file, 0, &mut []), Ok(0));
    assert_eq!(
        c.write(file, 0, b"x"),
        Err(Errno::EBADF),
        "opened read-only"
    );

    // Directories open read-only, and only as directories.
    assert_eq!(c.open(dir.fid, OFlag::O_RDWR), Err(Errno::EISDIR));
    assert_eq!(c.open(inner.fid, OFlag::O_DIRECTORY), Err(Errno::ENOTDIR));
    let d = c
        .open(dir.fid, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
        .unwrap();
    assert_eq!(c.read(d, 0, &mut buf), Err(Errno::EISDIR));

    for fid in [file, d, inner.fid, dir.fid] {
        c.close(fid).unwrap();
    }
    assert_eq!(c.close(file), Err(Errno::EBADF), "closed twice");
    assert_eq!(c.stat(inner.fid), Err(Errno::EBADF));
    run.stop();
}

#[test]
fn partial_walks() {
    let tree = Tree::new("walk");
    let run = start(&tree);
    let c = &run.client;
    let root = c.root().fid;

    // A missing component: the ones before it, and its errno.
    let walked = c.walk(root, &["dir", "missing", "more"]).unwrap();
    assert_eq!(walked.nodes.len(), 1);
    assert!(walked.nodes[0].attr.is_dir());
    assert_eq!(walked.error, Some(Errno::ENOENT));
    let walked = c.walk(root, &["nothing"]).unwrap();
    assert_eq!(
        walked,
        Walked {
            nodes: vec![],
            error: Some(Errno::ENOENT)
        }
    );

    // A non-directory in the middle ends the walk without an error: ENOTDIR is the
    // Sentry's to report.
    let walked = c.walk(root, &["file.txt", "x", "y"]).unwrap();
    assert_eq!(walked.nodes.len(), 1);
    assert!(walked.nodes[0].attr.is_regular());
    assert_eq!(walked.error, None);
    // Walking from a non-directory fails as a whole.
    assert_eq!(c.walk(walked.nodes[0].fid, &["x"]), Err(Errno::ENOTDIR));
    // No names: nothing to do.
    assert_eq!(
        c.walk(root, &[] as &[&str]).unwrap(),
        Walked {
            nodes: vec![],
            error: None
        }
    );
    run.stop();
}

#[test]
fn long_walks_reads_and_writes_are_split_to_fit_small_slots() {
    let tree = Tree::new("split");
    // Three walk requests with 8 KiB slots, within the host's PATH_MAX for the set-up.
    const DEPTH: usize = 70;
    let level = |i: usize| format!("level-{i:03}-{}", "d".repeat(35));
    let mut deep = tree.root();
    for i in 0..DEPTH {
        deep.push(level(i));
    }
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::write(deep.join("leaf"), b"deep down").unwrap();
    let run = start_with(&tree, ServerOptions::default(), SMALL);
    let c = &run.client;
    assert_eq!(c.max_payload(), MIN_PAYLOAD);

    let mut path: Vec<String> = (0..DEPTH).map(level).collect();
    path.push("leaf".into());
    let walked = c.walk(c.root().fid, &path).unwrap();
    assert_eq!(walked.error, None);
    assert_eq!(walked.nodes.len(), DEPTH + 1);
    let leaf = walked.nodes[DEPTH];
    assert!(leaf.attr.is_regular());
    let file = c.open(leaf.fid, OFlag::O_RDONLY).unwrap();
    assert_eq!(read_all(c, file), b"deep down");
    // A missing name in a later chunk still reports the nodes before it.
    path[DEPTH] = "no-leaf".into();
    let walked = c.walk(c.root().fid, &path).unwrap();
    assert_eq!(
        (walked.nodes.len(), walked.error),
        (DEPTH, Some(Errno::ENOENT))
    );

    // 100 KiB through 8 KiB slots, both ways.
    let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let created = c
        .create(c.root().fid, b"big", OFlag::O_RDWR, 0o600, me())
        .unwrap();
    assert_eq!(c.write(created.file, 0, &data).unwrap(), data.len());
    assert_eq!(std::fs::read(tree.root().join("big")).unwrap(), data);
    assert_eq!(read_all(c, created.file), data);
    let mut middle = vec![0; 20_000];
    assert_eq!(c.read(created.file, 50_000, &mut middle).unwrap(), 20_000);
    assert_eq!(middle, &data[50_000..70_000]);
    run.stop();
}

#[test]
fn create_write_and_modes_are_exact() {
    let tree = Tree::new("create");
    let run = start(&tree);
    let c = &run.client;
    let root = c.root().fid;

    // 0o666 would become 0o644 under the usual umask: the gofer applies the mode as given.
    let created = c
        .create(root, b"new.txt", OFlag::O_RDWR, 0o666, me())
        .unwrap();
    assert_eq!(created.attr.mode, libc::S_IFREG | 0o666);
    assert_eq!(created.attr.size, 0);
    assert_eq!(c.write(created.file, 0, b"abcdef").unwrap(), 6);
    assert_eq!(c.write(created.file, 3, b"XY").unwrap(), 2);
    assert_eq!(c.write(created.file, 0, b"").unwrap(), 0);
    c.fsync(created.file, false).unwrap();
    c.fsync(created.file, true).unwrap();
    assert_eq!(c.fsync(created.node, false), Err(Errno::EBADF));
    assert_eq!(
        std::fs::read(tree.root().join("new.txt")).unwrap(),
        b"abcXYf"
    );
    let host = std::fs::metadata(tree.root().join("new.txt")).unwrap();
    assert_eq!(host.mode(), libc::S_IFREG | 0o666);
    assert_eq!((host.uid(), host.gid()), (me().uid, me().gid));
    assert_eq!(c.stat(created.node).unwrap().size, 6);

    // Exclusive: an existing name is EEXIST, and nothing is opened.
    assert_eq!(
        c.create(root, b"new.txt", OFlag::O_RDWR, 0o600, me())
            .map(|_| ()),
        Err(Errno::EEXIST)
    );
    assert_eq!(
        c.create(root, b"file.txt", OFlag::O_WRONLY, 0o600, me())
            .map(|_| ()),
        Err(Errno::EEXIST)
    );
    // Set-user-ID and sticky bits survive.
    let suid = c
        .create(root, b"suid", OFlag::O_WRONLY, 0o4755, me())
        .unwrap();
    assert_eq!(suid.attr.mode, libc::S_IFREG | 0o4755);

    // O_APPEND: pwrite(2) appends whatever the offset, as on Linux.
    let node = walk_all(c, &["new.txt"]);
    let append = c.open(node.fid, OFlag::O_WRONLY | OFlag::O_APPEND).unwrap();
    c.write(append, 0, b"++").unwrap();
    assert_eq!(
        std::fs::read(tree.root().join("new.txt")).unwrap(),
        b"abcXYf++"
    );
    // O_TRUNC, also with O_RDONLY (Linux truncates then too).
    let t = c.open(node.fid, OFlag::O_RDONLY | OFlag::O_TRUNC).unwrap();
    assert_eq!(c.stat(t).unwrap().size, 0);
    c.write(append, 0, b"again").unwrap();
    let t = c.open(node.fid, OFlag::O_RDWR | OFlag::O_TRUNC).unwrap();
    assert_eq!(c.stat(t).unwrap().size, 0);
    assert_eq!(c.stat(node.fid).unwrap().size, 0);

    // Flags the gofer does not take.
    assert_eq!(c.open(node.fid, OFlag::O_CREAT), Err(Errno::EINVAL));
    assert_eq!(c.open(node.fid, OFlag::O_PATH), Err(Errno::EINVAL));
    assert_eq!(
        c.create(root, b"x", OFlag::O_DIRECTORY, 0o600, me())
            .map(|_| ()),
        Err(Errno::EINVAL)
    );
    run.stop();
}

#[test]
fn mkdir_symlink_link_unlink_rename() {
    let tree = Tree::new("ns");
    let run = start(&tree);
    let c = &run.client;
    let root = c.root().fid;

    let sub = c.mkdir(root, b"sub", 0o1777, me()).unwrap();
    assert_eq!(
        sub.attr.mode,
        libc::S_IFDIR | 0o1777,
        "sticky, and no umask"
    );
    assert!(tree.root().join("sub").is_dir());
    assert_eq!(
        c.mkdir(root, b"sub", 0o755, me()).map(|_| ()),
        Err(Errno::EEXIST)
    );
    let inside = c
        .create(sub.fid, b"f", OFlag::O_WRONLY, 0o600, me())
        .unwrap();
    c.write(inside.file, 0, b"in sub").unwrap();

    // Symlinks are stored as text and never followed.
    let link = c.symlink(sub.fid, b"sl", b"../file.txt", me()).unwrap();
    assert!(link.attr.is_symlink());
    assert_eq!(c.readlink(link.fid).unwrap(), b"../file.txt");
    assert_eq!(
        std::fs::read_link(tree.root().join("sub/sl")).unwrap(),
        Path::new("../file.txt")
    );
    assert_eq!(c.readlink(sub.fid), Err(Errno::EINVAL), "not a symlink");
    assert_eq!(
        c.symlink(sub.fid, b"empty", b"", me()).map(|_| ()),
        Err(Errno::ENOENT)
    );

    // Hard links.
    let file = walk_all(c, &["file.txt"]);
    let hard = c.link(sub.fid, b"hard", file.fid).unwrap();
    assert_eq!(hard.attr.ino, file.attr.ino);
    assert_eq!(hard.attr.nlink, 2);
    assert_eq!(
        c.link(root, b"dirlink", sub.fid).map(|_| ()),
        Err(Errno::EPERM)
    );
    assert_eq!(
        c.link(root, b"file.txt", file.fid).map(|_| ()),
        Err(Errno::EEXIST)
    );

    // Rename keeps node fids usable: they are opened by their new name.
    c.rename(root, b"file.txt", sub.fid, b"moved.txt", 0)
        .unwrap();
    assert!(!tree.root().join("file.txt").exists());
    assert_eq!(
        std::fs::read(tree.root().join("sub/moved.txt")).unwrap(),
        b"hello world"
    );
    let f = c.open(file.fid, OFlag::O_RDONLY).unwrap();
    assert_eq!(read_all(c, f), b"hello world");
    assert_eq!(
        c.rename(sub.fid, b"moved.txt", sub.fid, b"f", RENAME_NOREPLACE),
        Err(Errno::EEXIST)
    );
    // An exchange swaps the names, and the fids follow their files.
    let f_node = walk_all(c, &["sub", "f"]);
    c.rename(sub.fid, b"moved.txt", sub.fid, b"f", RENAME_EXCHANGE)
        .unwrap();
    assert_eq!(
        std::fs::read(tree.root().join("sub/f")).unwrap(),
        b"hello world"
    );
    let f = c.open(f_node.fid, OFlag::O_RDONLY).unwrap();
    assert_eq!(read_all(c, f), b"in sub");
    let f = c.open(file.fid, OFlag::O_RDONLY).unwrap();
    assert_eq!(read_all(c, f), b"hello world");
    assert_eq!(
        c.rename(root, b"nothing", root, b"x", 0),
        Err(Errno::ENOENT)
    );
    assert_eq!(
        c.rename(root, b"a", root, b"b", RENAME_EXCHANGE | RENAME_NOREPLACE),
        Err(Errno::EINVAL)
    );

    // Unlink and rmdir, with Linux's errnos.
    assert_eq!(c.unlink(root, b"sub", 0), Err(Errno::EISDIR));
    assert_eq!(c.unlink(root, b"sub", AT_REMOVEDIR), Err(Errno::ENOTEMPTY));
    assert_eq!(c.unlink(sub.fid, b"f", AT_REMOVEDIR), Err(Errno::ENOTDIR));
    for name in [&b"f"[..], b"sl", b"hard", b"moved.txt"] {
        c.unlink(sub.fid, name, 0).unwrap();
    }
    c.unlink(root, b"sub", AT_REMOVEDIR).unwrap();
    assert!(!tree.root().join("sub").exists());
    assert_eq!(c.unlink(root, b"sub", AT_REMOVEDIR), Err(Errno::ENOENT));
    // The unlinked file's node can no longer be opened by name.
    assert!(matches!(
        c.open(file.fid, OFlag::O_RDONLY),
        Err(Errno::ENOENT | Errno::ESTALE)
    ));
    // But its fid still stats (the O_PATH descriptor holds the inode).
    assert_eq!(c.stat(file.fid).unwrap().nlink, 0);
    run.stop();
}

#[test]
fn fifos_only_for_mknod() {
    let tree = Tree::new("mknod");
    let run = start(&tree);
    let c = &run.client;
    let root = c.root().fid;
    let fifo = c.mknod(root, b"fifo", libc::S_IFIFO | 0o666, me()).unwrap();
    assert_eq!(fifo.attr.mode, libc::S_IFIFO | 0o666);
    assert_eq!(fifo.attr.file_type(), libc::S_IFIFO);
    // The Sentry implements FIFOs; the gofer never opens one (it could block).
    assert_eq!(c.open(fifo.fid, OFlag::O_RDONLY), Err(Errno::ENXIO));
    for kind in [
        libc::S_IFCHR,
        libc::S_IFBLK,
        libc::S_IFREG,
        libc::S_IFSOCK,
        0,
    ] {
        assert_eq!(
            c.mknod(root, b"dev", kind | 0o600, me()).map(|_| ()),
            Err(Errno::EPERM),
            "type {kind:o}"
        );
    }
    assert!(!tree.root().join("dev").exists());
    run.stop();
}

#[test]
fn getdents_pages_through_a_directory() {
    let tree = Tree::new("getdents");
    let big = tree.root().join("big");
    std::fs::create_dir(&big).unwrap();
    let mut want = BTreeSet::new();
    for i in 0..300 {
        let name = format!("entry-{i:04}-{}", "n".repeat(i % 50));
        std::fs::write(big.join(&name), b"").unwrap();
        want.insert(name.into_bytes());
    }
    std::fs::create_dir(big.join("subdir")).unwrap();
    want.insert(b"subdir".to_vec());
    let run = start(&tree);
    let c = &run.client;
    let node = walk_all(c, &["big"]);
    let dir = c.open(node.fid, OFlag::O_RDONLY).unwrap();

    let mut got = BTreeSet::new();
    let mut cookie = 0;
    let mut calls = 0;
    loop {
        let entries = c.getdents(dir, cookie, 700).unwrap();
        calls += 1;
        let Some(last) = entries.last() else { break };
        cookie = last.next_cookie;
        for e in &entries {
            assert!(got.insert(e.name.as_bytes().to_vec()), "{e:?} twice");
            let kind = if e.name.as_bytes() == b"subdir" {
                libc::DT_DIR
            } else {
                libc::DT_REG
            };
            assert_eq!(e.kind, kind);
            let host = std::fs::symlink_metadata(big.join(std::ffi::OsStr::new(
                std::str::from_utf8(e.name.as_bytes()).unwrap(),
            )))
            .unwrap();
            assert_eq!(e.ino, host.ino());
        }
        assert!(calls < 1000);
    }
    assert_eq!(got, want, "every entry once, and no . or ..");
    assert!(calls > 10, "700-byte pages: {calls} calls");
    // Starting over from 0 gives the same first page.
    let first = c.getdents(dir, 0, 700).unwrap();
    assert_eq!(first, c.getdents(dir, 0, 700).unwrap());
    // Too small for one entry.
    assert_eq!(c.getdents(dir, 0, 10), Err(Errno::EINVAL));
    // Only open directories.
    assert_eq!(c.getdents(node.fid, 0, 700), Err(Errno::EBADF));
    let file = c
        .open(walk_all(c, &["file.txt"]).fid, OFlag::O_RDONLY)
        .unwrap();
    assert_eq!(c.getdents(file, 0, 700), Err(Errno::ENOTDIR));
    // An empty directory has nothing, not even dots.
    let empty = c.mkdir(c.root().fid, b"empty", 0o755, me()).unwrap();
    let empty = c.open(empty.fid, OFlag::O_RDONLY).unwrap();
    assert_eq!(c.getdents(empty, 0, 4096).unwrap(), vec![]);
    run.stop();
}

#[test]
fn set_attr_stat_fs() {
    let tree = Tree::new("setattr");
    let run = start(&tree);
    let c = &run.client;
    let file = walk_all(c, &["file.txt"]);
    let set = |fid, attr: SetAttr| c.set_attr(fid, &attr);

    let a = set(
        file.fid,
        SetAttr {
            mask: setattr::MODE,
            mode: 0o4711,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(a.mode, libc::S_IFREG | 0o4711);
    assert_eq!(
        std::fs::metadata(tree.root().join("file.txt"))
            .unwrap()
            .mode(),
        libc::S_IFREG | 0o4711
    );
    // Truncate through the node, then times.
    let a = set(
        file.fid,
        SetAttr {
            mask: setattr::SIZE | setattr::ATIME | setattr::MTIME,
            size: 5,
            atime: Timespec {
                sec: 1_000_000,
                nsec: 7,
            },
            mtime: Timespec {
                sec: 2_000_000,
                nsec: 9,
            },
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(a.size, 5);
    assert_eq!(
        a.atime,
        Timespec {
            sec: 1_000_000,
            nsec: 7
        }
    );
    assert_eq!(
        a.mtime,
        Timespec {
            sec: 2_000_000,
            nsec: 9
        }
    );
    assert_eq!(
        std::fs::read(tree.root().join("file.txt")).unwrap(),
        b"hello"
    );
    // UTIME_OMIT leaves a time, UTIME_NOW sets it to now. (Reading the file above may have
    // moved atime, as relatime does: compare with a fresh stat.)
    let atime = c.stat(file.fid).unwrap().atime;
    let a = set(
        file.fid,
        SetAttr {
            mask: setattr::ATIME | setattr::MTIME,
            atime: Timespec::OMIT,
            mtime: Timespec::NOW,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(a.atime, atime);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((a.mtime.sec - now).abs() < 60, "{:?}", a.mtime);

    // Through an open fid: growing needs it open for writing.
    let rdonly = c.open(file.fid, OFlag::O_RDONLY).unwrap();
    let grow = SetAttr {
        mask: setattr::SIZE,
        size: 10,
        ..Default::default()
    };
    assert_eq!(set(rdonly, grow), Err(Errno::EINVAL));
    let rw = c.open(file.fid, OFlag::O_RDWR).unwrap();
    assert_eq!(set(rw, grow).unwrap().size, 10);
    let a = set(
        rw,
        SetAttr {
            mask: setattr::MODE | setattr::MTIME,
            mode: 0o600,
            mtime: Timespec { sec: 42, nsec: 0 },
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!((a.mode & 0o7777, a.mtime.sec), (0o600, 42));

    // Directories, and symlinks (which have no mode of their own on Linux).
    let dir = walk_all(c, &["dir"]);
    let a = set(
        dir.fid,
        SetAttr {
            mask: setattr::MODE | setattr::MTIME,
            mode: 0o700,
            mtime: Timespec { sec: 77, nsec: 0 },
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!((a.mode, a.mtime.sec), (libc::S_IFDIR | 0o700, 77));
    assert_eq!(
        set(
            dir.fid,
            SetAttr {
                mask: setattr::SIZE,
                ..Default::default()
            }
        ),
        Err(Errno::EISDIR)
    );
    let link = walk_all(c, &["escape_abs"]);
    assert_eq!(
        set(
            link.fid,
            SetAttr {
                mask: setattr::MODE,
                mode: 0o600,
                ..Default::default()
            }
        ),
        Err(Errno::EOPNOTSUPP)
    );
    let a = set(
        link.fid,
        SetAttr {
            mask: setattr::MTIME,
            mtime: Timespec { sec: 99, nsec: 0 },
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(a.mtime.sec, 99, "the symlink itself (lutimes)");
    assert_ne!(
        std::fs::metadata(tree.outside().join("secret.txt"))
            .unwrap()
            .mtime(),
        99,
        "not its target"
    );

    // Owners: to anyone when root, else to ourselves.
    let owner = if nix::unistd::getuid().is_root() {
        (1234, 5678)
    } else {
        (me().uid, me().gid)
    };
    let a = set(
        file.fid,
        SetAttr {
            mask: setattr::UID | setattr::GID,
            uid: owner.0,
            gid: owner.1,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!((a.uid, a.gid), owner);
    let a = set(
        link.fid,
        SetAttr {
            mask: setattr::UID,
            uid: owner.0,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(a.uid, owner.0, "lchown");

    let fs = c.statfs(c.root().fid).unwrap();
    let host = nix::sys::statfs::statfs(&tree.root()).unwrap();
    assert_eq!(fs.fs_type, host.filesystem_type().0 as u64);
    assert_eq!(fs.block_size, host.block_size() as u64);
    assert!(fs.name_max >= 255);
    assert_eq!(c.statfs(rw).unwrap().fs_type, fs.fs_type);
    run.stop();
}

// ---- Escapes: nothing outside the root is reachable. ----

const ESCAPES: [&str; 5] = [
    "escape_shadow",
    "escape_dotdot",
    "escape_proc",
    "escape_abs",
    "escape_outside_dir",
];

#[test]
fn symlinks_are_walked_as_themselves_and_never_opened() {
    for openat2 in OPENAT2_OR_NOT {
        symlinks_are_walked_as_themselves_and_never_opened_with(openat2);
    }
}

fn symlinks_are_walked_as_themselves_and_never_opened_with(openat2: bool) {
    let tree = Tree::new("escape");
    let run = start_openat2(&tree, openat2);
    let c = &run.client;
    let root = c.root().fid;
    for name in ESCAPES {
        let walked = c.walk(root, &[name, "etc", "passwd"]).unwrap();
        assert_eq!(walked.error, None, "{name}");
        assert_eq!(
            walked.nodes.len(),
            1,
            "{name}: the walk stops after the symlink"
        );
        let link = walked.nodes[0];
        assert!(link.attr.is_symlink(), "{name}: {:o}", link.attr.mode);
        let host = std::fs::symlink_metadata(tree.root().join(name)).unwrap();
        assert_eq!(
            link.attr.ino,
            host.ino(),
            "{name}: the link, not its target"
        );
        assert_eq!(
            c.readlink(link.fid).unwrap(),
            std::fs::read_link(tree.root().join(name))
                .unwrap()
                .as_os_str()
                .as_encoded_bytes()
        );
        assert_eq!(
            c.open(link.fid, OFlag::O_RDONLY),
            Err(Errno::ELOOP),
            "{name}"
        );
        assert_eq!(c.open(link.fid, OFlag::O_RDWR), Err(Errno::ELOOP), "{name}");
        assert_eq!(c.walk(link.fid, &["x"]), Err(Errno::ENOTDIR), "{name}");
        assert_eq!(c.getdents(link.fid, 0, 4096), Err(Errno::EBADF));
        let mut buf = [0u8; 64];
        assert_eq!(c.read(link.fid, 0, &mut buf), Err(Errno::EBADF));
    }
    let walked = c.walk(root, &["dir", "escape_up"]).unwrap();
    assert_eq!(walked.nodes.len(), 2);
    assert!(walked.nodes[1].attr.is_symlink());
    assert_eq!(
        c.open(walked.nodes[1].fid, OFlag::O_RDONLY),
        Err(Errno::ELOOP)
    );
    run.stop();
}

#[test]
fn bad_names_and_unknown_fids_are_refused() {
    for openat2 in OPENAT2_OR_NOT {
        bad_names_and_unknown_fids_are_refused_with(openat2);
    }
}

fn bad_names_and_unknown_fids_are_refused_with(openat2: bool) {
    let tree = Tree::new("names");
    let run = start_openat2(&tree, openat2);
    let c = &run.client;
    let root = c.root().fid;
    let bad: [&[u8]; 5] = [b"..", b".", b"a/b", b"", b"x\0y"];

    // The client refuses them before sending.
    for name in bad {
        assert_eq!(c.walk(root, &[name]), Err(Errno::EINVAL), "{name:?}");
        assert_eq!(
            c.mkdir(root, name, 0o700, me()).map(|_| ()),
            Err(Errno::EINVAL)
        );
        assert_eq!(c.unlink(root, name, 0), Err(Errno::EINVAL));
    }
    assert_eq!(c.walk(root, &[&[b'x'; 256][..]]), Err(Errno::ENAMETOOLONG));

    // The server refuses them too, from a client that skips the checks.
    for name in bad {
        for (opcode, payload) in hostile_name_requests(root, name) {
            let (status, reply) = c.call_raw(opcode as u32, &payload).unwrap();
            assert_eq!(status, libc::EINVAL as u32, "{opcode:?} with name {name:?}");
            assert!(reply.is_empty());
        }
    }
    assert!(tree.root().join("dir").exists());
    assert!(!tree.root().join("a").exists());

    // Fids never handed out.
    let mut buf = [0u8; 8];
    for fid in [Fid(0), Fid(9999), Fid(u64::MAX)] {
        assert_eq!(c.stat(fid), Err(Errno::EBADF));
        assert_eq!(c.walk(fid, &["dir"]), Err(Errno::EBADF));
        assert_eq!(c.open(fid, OFlag::O_RDONLY), Err(Errno::EBADF));
        assert_eq!(c.read(fid, 0, &mut buf), Err(Errno::EBADF));
        assert_eq!(c.write(fid, 0, b"x"), Err(Errno::EBADF));
        assert_eq!(
            c.mkdir(fid, b"d", 0o700, me()).map(|_| ()),
            Err(Errno::EBADF)
        );
        assert_eq!(c.link(root, b"l", fid).map(|_| ()), Err(Errno::EBADF));
        assert_eq!(c.rename(root, b"file.txt", fid, b"x", 0), Err(Errno::EBADF));
        assert_eq!(c.close(fid), Err(Errno::EBADF));
        assert_eq!(c.statfs(fid).map(|_| ()), Err(Errno::EBADF));
        assert_eq!(c.readlink(fid), Err(Errno::EBADF));
    }
    // A directory operation on a file node is ENOTDIR, on an open fid EBADF.
    let file = walk_all(c, &["file.txt"]);
    assert_eq!(
        c.mkdir(file.fid, b"d", 0o700, me()).map(|_| ()),
        Err(Errno::ENOTDIR)
    );
    let open = c.open(walk_all(c, &["dir"]).fid, OFlag::O_RDONLY).unwrap();
    assert_eq!(c.walk(open, &["inner.txt"]), Err(Errno::EBADF));
    assert_eq!(c.open(open, OFlag::O_RDONLY), Err(Errno::EBADF));
    run.stop();
}

/// Requests carrying `name` (which a [`Name`] would refuse) in every name-bearing position.
fn hostile_name_requests(dir: Fid, name: &[u8]) -> Vec<(Opcode, Vec<u8>)> {
    let dir_bytes = dir.0.to_ne_bytes();
    let u32s = |v: &[u32]| -> Vec<u8> { v.iter().flat_map(|x| x.to_ne_bytes()).collect() };
    let cat = |parts: &[&[u8]]| parts.concat();
    // Walk: header, then a length byte and the name.
    let walk = cat(&[&dir_bytes, &u32s(&[1, 0]), &[name.len() as u8], name]);
    let create = cat(&[&dir_bytes, &u32s(&[0, 0o600, 0, 0]), name]);
    let mkdir = cat(&[
        &dir_bytes,
        &u32s(&[0o700, 0, 0, 0]),
        &0u64.to_ne_bytes(),
        name,
    ]);
    let symlink = cat(&[
        &dir_bytes,
        &u32s(&[0, 0, name.len() as u32, 0]),
        name,
        b"target",
    ]);
    let link = cat(&[&dir_bytes, &dir_bytes, name]);
    let unlink = cat(&[&dir_bytes, &u32s(&[0, 0]), name]);
    let rename_old = cat(&[
        &dir_bytes,
        &dir_bytes,
        &u32s(&[0, name.len() as u32]),
        name,
        b"new",
    ]);
    let rename_new = cat(&[&dir_bytes, &dir_bytes, &u32s(&[0, 8]), b"file.txt", name]);
    vec![
        (Opcode::Walk, walk),
        (Opcode::Create, create),
        (Opcode::Mkdir, mkdir),
        (Opcode::Symlink, symlink),
        (Opcode::Link, link),
        (Opcode::Unlink, unlink),
        (Opcode::Rename, rename_old),
        (Opcode::Rename, rename_new),
    ]
}

#[test]
fn swapping_a_name_for_a_symlink_does_not_escape() {
    for openat2 in OPENAT2_OR_NOT {
        swapping_a_name_for_a_symlink_does_not_escape_with(openat2);
    }
}

fn swapping_a_name_for_a_symlink_does_not_escape_with(openat2: bool) {
    let tree = Tree::new("swap");
    std::fs::write(tree.root().join("victim"), b"victim data").unwrap();
    let run = start_openat2(&tree, openat2);
    let c = &run.client;
    let root = c.root().fid;
    let victim = walk_all(c, &["victim"]);
    let outside = tree.outside().join("secret.txt");
    let target = outside.as_os_str().as_encoded_bytes();
    let before = std::fs::metadata(&outside).unwrap();

    // Through the protocol: the Sentry replaces the walked file with a symlink out.
    c.symlink(root, b"evil", target, me()).unwrap();
    c.rename(root, b"evil", root, b"victim", 0).unwrap();
    let mode = SetAttr {
        mask: setattr::MODE,
        mode: 0o777,
        ..Default::default()
    };
    let size = SetAttr {
        mask: setattr::SIZE,
        size: 0,
        ..Default::default()
    };
    let times = SetAttr {
        mask: setattr::MTIME,
        mtime: Timespec { sec: 5, nsec: 0 },
        ..Default::default()
    };
    fn refused<T>(r: Result<T, Errno>) -> bool {
        matches!(r, Err(Errno::ELOOP | Errno::ESTALE))
    }
    assert!(refused(c.open(victim.fid, OFlag::O_RDONLY)));
    assert!(refused(c.open(victim.fid, OFlag::O_RDWR | OFlag::O_TRUNC)));
    assert!(refused(c.set_attr(victim.fid, &mode)));
    assert!(refused(c.set_attr(victim.fid, &size)));
    assert!(refused(c.set_attr(victim.fid, &times)));
    assert!(refused(c.link(root, b"l", victim.fid)));
    // Behind the server's back, on the host (as a second client or the host could).
    let host_victim = tree.root().join("dir/inner.txt");
    let inner = walk_all(c, &["dir", "inner.txt"]);
    std::fs::remove_file(&host_victim).unwrap();
    std::os::unix::fs::symlink(&outside, &host_victim).unwrap();
    assert!(refused(c.open(inner.fid, OFlag::O_RDONLY)));
    assert!(refused(c.set_attr(inner.fid, &mode)));

    let after = std::fs::metadata(&outside).unwrap();
    assert_eq!(after.permissions().mode(), before.permissions().mode());
    assert_eq!(
        (after.mtime(), after.mtime_nsec()),
        (before.mtime(), before.mtime_nsec())
    );
    assert_eq!(std::fs::read(&outside).unwrap(), SECRET);
    run.stop();
}

/// Walks every name under the root (depth-first), opening every regular file and reading
/// it; returns what was read. Symlinks are walked (never followed) and opened too.
fn read_everything(c: &Client, dir: Fid, depth: usize, seen: &mut Vec<Vec<u8>>) {
    let open = c.open(dir, OFlag::O_RDONLY).unwrap();
    let mut cookie = 0;
    loop {
        let entries = c.getdents(open, cookie, 4096).unwrap();
        let Some(last) = entries.last() else { break };
        cookie = last.next_cookie;
        for e in entries {
            let walked = c.walk(dir, &[e.name.as_bytes()]).unwrap();
            let node = walked.nodes[0];
            match c.open(node.fid, OFlag::O_RDONLY) {
                Ok(f) if node.attr.is_regular() => seen.push(read_all(c, f)),
                Ok(f) if node.attr.is_dir() && depth < 8 => {
                    c.close(f).unwrap();
                    read_everything(c, node.fid, depth + 1, seen);
                }
                Ok(f) => c.close(f).unwrap(),
                Err(errno) => assert!(node.attr.is_symlink() && errno == Errno::ELOOP),
            }
        }
    }
}

#[test]
fn nothing_outside_the_root_can_be_read() {
    for openat2 in OPENAT2_OR_NOT {
        nothing_outside_the_root_can_be_read_with(openat2);
    }
}

fn nothing_outside_the_root_can_be_read_with(openat2: bool) {
    let tree = Tree::new("everything");
    let run = start_openat2(&tree, openat2);
    let c = &run.client;
    let mut seen = Vec::new();
    read_everything(c, c.root().fid, 0, &mut seen);
    assert!(seen.contains(&b"hello world".to_vec()));
    assert!(seen.contains(&b"inner".to_vec()));
    assert_eq!(seen.len(), 2, "only the two files in the root");
    assert!(!seen
        .iter()
        .any(|data| data.windows(10).any(|w| w == &SECRET[..10])));
    run.stop();
}

// ---- Server modes and limits. ----

#[test]
fn read_only_refuses_every_mutation() {
    let tree = Tree::new("ro");
    let options = ServerOptions {
        read_only: true,
        ..Default::default()
    };
    let run = start_with(&tree, options, CONFIG);
    let c = &run.client;
    let root = c.root().fid;
    let file = walk_all(c, &["file.txt"]);
    let dir = walk_all(c, &["dir"]);
    let rofs = Err(Errno::EROFS);
    assert_eq!(
        c.create(root, b"n", OFlag::O_RDWR, 0o600, me()).map(|_| ()),
        rofs
    );
    assert_eq!(c.mkdir(root, b"n", 0o700, me()).map(|_| ()), rofs);
    assert_eq!(
        c.mknod(root, b"n", libc::S_IFIFO | 0o600, me()).map(|_| ()),
        rofs
    );
    assert_eq!(c.symlink(root, b"n", b"t", me()).map(|_| ()), rofs);
    assert_eq!(c.link(root, b"n", file.fid).map(|_| ()), rofs);
    assert_eq!(c.unlink(root, b"file.txt", 0), rofs);
    assert_eq!(c.unlink(root, b"dir", AT_REMOVEDIR), rofs);
    assert_eq!(c.rename(root, b"file.txt", root, b"n", 0), rofs);
    for mask in [
        setattr::MODE,
        setattr::UID,
        setattr::GID,
        setattr::SIZE,
        setattr::ATIME,
        setattr::MTIME,
    ] {
        let attr = SetAttr {
            mask,
            uid: 0,
            gid: 0,
            ..Default::default()
        };
        assert_eq!(
            c.set_attr(file.fid, &attr).map(|_| ()),
            rofs,
            "mask {mask:#x}"
        );
        assert_eq!(
            c.set_attr(dir.fid, &attr).map(|_| ()),
            rofs,
            "mask {mask:#x}"
        );
    }
    assert_eq!(c.open(file.fid, OFlag::O_WRONLY).map(|_| ()), rofs);
    assert_eq!(c.open(file.fid, OFlag::O_RDWR).map(|_| ()), rofs);
    assert_eq!(
        c.open(file.fid, OFlag::O_RDONLY | OFlag::O_TRUNC)
            .map(|_| ()),
        rofs
    );
    // Writes are refused whatever the fid.
    let f = c.open(file.fid, OFlag::O_RDONLY).unwrap();
    assert_eq!(c.write(f, 0, b"x").map(|_| ()), rofs);
    // Reading still works, and nothing changed.
    assert_eq!(read_all(c, f), b"hello world");
    assert_eq!(open_and_read(c, &["dir", "inner.txt"]), b"inner");
    assert!(c.statfs(root).is_ok());
    let entries = c
        .getdents(c.open(root, OFlag::O_RDONLY).unwrap(), 0, 4096)
        .unwrap();
    assert_eq!(entries.len(), 7);
    let names: BTreeSet<_> = std::fs::read_dir(tree.root())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 7);
    run.stop();
}

#[test]
fn the_fid_table_is_bounded() {
    let tree = Tree::new("limit");
    // The root takes one fid.
    let options = ServerOptions {
        max_fids: 4,
        ..Default::default()
    };
    let run = start_with(&tree, options, CONFIG);
    let c = &run.client;
    let walked = c.walk(c.root().fid, &["dir", "inner.txt"]).unwrap();
    assert_eq!(walked.nodes.len(), 2);
    let inner = walked.nodes[1].fid;
    let f = c.open(inner, OFlag::O_RDONLY).unwrap();
    // Full: a walk stops with EMFILE, creations and opens fail and leave nothing behind.
    let walked = c.walk(c.root().fid, &["file.txt"]).unwrap();
    assert_eq!(
        walked,
        Walked {
            nodes: vec![],
            error: Some(Errno::EMFILE)
        }
    );
    assert_eq!(c.open(inner, OFlag::O_RDONLY), Err(Errno::EMFILE));
    assert_eq!(
        c.mkdir(c.root().fid, b"d", 0o700, me()).map(|_| ()),
        Err(Errno::EMFILE)
    );
    assert!(!tree.root().join("d").exists());
    c.close(f).unwrap();
    // One free: Create needs two.
    assert_eq!(
        c.create(c.root().fid, b"n", OFlag::O_RDWR, 0o600, me())
            .map(|_| ()),
        Err(Errno::EMFILE)
    );
    assert!(!tree.root().join("n").exists());
    assert_eq!(c.walk(c.root().fid, &["file.txt"]).unwrap().nodes.len(), 1);
    run.stop();
}

#[test]
fn malformed_requests_get_errnos() {
    let tree = Tree::new("malformed");
    let run = start(&tree);
    let c = &run.client;
    let root = c.root().fid;
    let file = walk_all(c, &["file.txt"]);
    let f = c.open(file.fid, OFlag::O_RDONLY).unwrap();
    let status = |opcode: u32, payload: &[u8]| c.call_raw(opcode, payload).unwrap().0;

    assert_eq!(status(0, b""), libc::ENOSYS as u32);
    assert_eq!(status(999, b"whatever"), libc::ENOSYS as u32);
    assert_eq!(status(Opcode::Stat as u32, b"short"), libc::EINVAL as u32);
    assert_eq!(status(Opcode::Stat as u32, &[0; 9]), libc::EINVAL as u32);
    let too_long = Request::Read {
        fid: f,
        offset: 0,
        len: CONFIG.data_slot_size + 1,
    };
    assert_eq!(
        status(Opcode::Read as u32, &too_long.to_bytes()),
        libc::EINVAL as u32
    );
    let walk_count_lies = Request::Walk {
        dir: root,
        names: vec![],
    }
    .to_bytes();
    let mut lying = walk_count_lies.clone();
    lying[8..12].copy_from_slice(&u32::MAX.to_ne_bytes());
    assert_eq!(status(Opcode::Walk as u32, &lying), libc::EINVAL as u32);
    // Too many names for one response.
    let names = vec![Name::new(b"dir").unwrap(); proto::max_walk(CONFIG.data_slot_size) + 1];
    let many = Request::Walk { dir: root, names };
    assert_eq!(
        status(Opcode::Walk as u32, &many.to_bytes()),
        libc::EINVAL as u32
    );
    // A second handshake.
    let version = Request::Version {
        version: proto::VERSION,
    }
    .to_bytes();
    assert_eq!(
        status(Opcode::Version as u32, &version),
        libc::EPROTO as u32
    );
    // The connection survives all that.
    assert_eq!(read_all(c, f), b"hello world");
    run.stop();
}

#[test]
fn handshake_rules() {
    let tree = Tree::new("handshake");
    let (mut front, server) = serve_on_thread(&tree, ServerOptions::default(), CONFIG);
    let timeout = Some(Duration::from_secs(30));
    let mut call = |request: &Request| {
        let r = front
            .call(request.opcode() as u32, &request.to_bytes(), timeout)
            .unwrap();
        (r.status, r.payload)
    };
    // Nothing before the handshake.
    assert_eq!(call(&Request::Stat { fid: Fid(1) }).0, libc::EPROTO as u32);
    assert_eq!(
        call(&Request::Version { version: 0 }).0,
        libc::EPROTONOSUPPORT as u32
    );
    // A newer client gets the server's version, which it may accept or refuse.
    let (status, payload) = call(&Request::Version { version: 99 });
    assert_eq!(status, 0);
    let Ok(Response::Version {
        version,
        max_payload,
        root,
    }) = Response::decode(Opcode::Version, &payload)
    else {
        panic!()
    };
    assert_eq!(
        (version, max_payload),
        (proto::VERSION, CONFIG.data_slot_size)
    );
    assert!(root.attr.is_dir());
    assert_eq!(call(&Request::Stat { fid: root.fid }).0, 0);
    assert_eq!(call(&Request::Shutdown).0, 0);
    server.join().unwrap().unwrap();

    // A ring too small for the protocol.
    let small = RingConfig {
        slots: 2,
        data_slot_size: 4096,
    };
    let (front, fds) = ShmFrontEnd::create(small).unwrap();
    let back = ShmBackEnd::attach(small, fds).unwrap();
    assert!(matches!(
        Server::new(back, tree.open_root(), ServerOptions::default()),
        Err(ServerError::SlotTooSmall(4096))
    ));
    assert_eq!(
        Client::connect(front, ClientOptions::default()).map(|_| ()),
        Err(Errno::EINVAL)
    );
    // A root that is no directory.
    let (_front, fds) = ShmFrontEnd::create(CONFIG).unwrap();
    let back = ShmBackEnd::attach(CONFIG, fds).unwrap();
    let file: OwnedFd = std::fs::File::open(tree.root().join("file.txt"))
        .unwrap()
        .into();
    assert!(matches!(
        Server::new(back, file, ServerOptions::default()),
        Err(ServerError::Root(Errno::ENOTDIR))
    ));
}

#[test]
fn many_threads_share_one_client() {
    let tree = Tree::new("threads");
    let run = start(&tree);
    let client = Arc::new(run.client);
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let c = Arc::clone(&client);
            std::thread::spawn(move || {
                let name = format!("t{i}");
                let created = c
                    .create(c.root().fid, name.as_bytes(), OFlag::O_RDWR, 0o600, me())
                    .unwrap();
                for n in 0..200u64 {
                    c.write(created.file, n * 8, &n.to_ne_bytes()).unwrap();
                    assert_eq!(c.stat(created.node).unwrap().size, (n + 1) * 8);
                }
                let data = read_all(&c, created.file);
                assert_eq!(data.len(), 1600);
                assert_eq!(&data[8 * 199..], &199u64.to_ne_bytes());
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let Ok(client) = Arc::try_unwrap(client) else {
        panic!()
    };
    Running {
        client,
        server: run.server,
    }
    .stop();
}

// ---- A dead server. ----

#[test]
fn a_server_that_stops_answering_times_out_into_eio() {
    let tree = Tree::new("timeout");
    let (front, server) = serve_on_thread(&tree, ServerOptions::default(), CONFIG);
    let options = ClientOptions {
        timeout: Duration::from_millis(300),
        server_process: None,
    };
    let c = Client::connect(front, options).unwrap();
    assert!(c.stat(c.root().fid).is_ok());
    // Stop the server behind the client's back: it answers, then serves no more.
    let (status, _) = c.call_raw(Opcode::Shutdown as u32, b"").unwrap();
    assert_eq!(status, 0);
    server.join().unwrap().unwrap();
    let started = Instant::now();
    assert_eq!(c.stat(c.root().fid), Err(Errno::EIO));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(10),
        "{waited:?}"
    );
    assert!(
        c.failure().unwrap().contains("did not answer"),
        "{:?}",
        c.failure()
    );
    // From now on EIO at once, for every operation.
    let started = Instant::now();
    assert_eq!(c.walk(c.root().fid, &["dir"]), Err(Errno::EIO));
    assert_eq!(c.close(c.root().fid), Err(Errno::EIO));
    assert!(started.elapsed() < Duration::from_millis(100));
}

const CHILD_MEMFD: &str = "GOFER_FS_TEST_CHILD_MEMFD";
const CHILD_ROOT: &str = "GOFER_FS_TEST_CHILD_ROOT";

#[test]
fn a_killed_server_process_makes_calls_fail_with_eio() {
    let tree = Tree::new("kill");
    let (front, fds) = ShmFrontEnd::create(CONFIG).unwrap();
    // As ring::tests::two_processes_share_a_ring: the child reopens the memfd through our
    // /proc entry and takes the eventfds as stdin (requests) and stderr (responses).
    let memfd = format!("/proc/{}/fd/{}", std::process::id(), fds.memory.as_raw_fd());
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "fs_tests::child_serves_gofer",
            "--ignored",
            "--test-threads=1",
        ])
        .env(CHILD_MEMFD, memfd)
        .env(CHILD_ROOT, tree.root())
        .stdin(Stdio::from(fds.requests))
        .stderr(Stdio::from(fds.responses))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pidfd = rustix::process::pidfd_open(
        rustix::process::Pid::from_child(&child),
        rustix::process::PidfdFlags::empty(),
    )
    .unwrap();
    let options = ClientOptions {
        timeout: Duration::from_secs(30),
        server_process: Some(pidfd),
    };
    let client = Arc::new(Client::connect(front, options).unwrap());
    drop(fds.memory);
    assert_eq!(open_and_read(&client, &["dir", "inner.txt"]), b"inner");

    // Keep calls going while the server dies under them.
    let busy = {
        let c = Arc::clone(&client);
        std::thread::spawn(move || {
            let mut ok = 0u64;
            loop {
                match c.stat(c.root().fid) {
                    Ok(_) => ok += 1,
                    Err(errno) => return (ok, errno, Instant::now()),
                }
            }
        })
    };
    std::thread::sleep(Duration::from_millis(100));
    let killed = Instant::now();
    child.kill().unwrap();
    let (ok, errno, failed) = busy.join().unwrap();
    assert!(ok > 0, "the server answered before it died");
    assert_eq!(errno, Errno::EIO);
    let noticed = failed.saturating_duration_since(killed);
    assert!(
        noticed < Duration::from_secs(5),
        "noticed after {noticed:?}, not the 30 s timeout"
    );
    assert!(
        client.failure().unwrap().contains("exited"),
        "{:?}",
        client.failure()
    );
    assert_eq!(client.stat(client.root().fid), Err(Errno::EIO));
    assert_eq!(client.walk(client.root().fid, &["dir"]), Err(Errno::EIO));
    child.wait().unwrap();
}

#[test]
#[ignore = "the server of a_killed_server_process_makes_calls_fail_with_eio, run in a child"]
fn child_serves_gofer() {
    let (Ok(memfd), Ok(root)) = (std::env::var(CHILD_MEMFD), std::env::var(CHILD_ROOT)) else {
        return;
    };
    let memory: OwnedFd = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(memfd)
        .unwrap()
        .into();
    let fds = RingFds {
        memory,
        requests: std::io::stdin().as_fd().try_clone_to_owned().unwrap(),
        responses: std::io::stderr().as_fd().try_clone_to_owned().unwrap(),
    };
    let back = ShmBackEnd::attach(CONFIG, fds).unwrap();
    let root = nix::fcntl::open(
        Path::new(&root),
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .unwrap();
    let mut server = Server::new(back, root, ServerOptions::default()).unwrap();
    // Killed by the parent; a clean return means the parent shut it down.
    server.serve().unwrap();
}

// ---- Broken peers. ----

#[test]
fn a_broken_ring_stops_the_server_with_an_error() {
    use crate::ring::{EventFdNotifier, Index, Notifier, RingMemory, ShmRing};
    let tree = Tree::new("broken");
    let (_front, fds) = ShmFrontEnd::create(CONFIG).unwrap();
    let intruder = ShmRing::attach(CONFIG, fds.memory.try_clone().unwrap()).unwrap();
    let kick = EventFdNotifier::from_fd(fds.requests.try_clone().unwrap()).unwrap();
    let back = ShmBackEnd::attach(CONFIG, fds).unwrap();
    let mut server = Server::new(back, tree.open_root(), ServerOptions::default()).unwrap();
    let serving = std::thread::spawn(move || server.serve());
    // More requests published than the ring has slots.
    intruder
        .store(Index::ReqProd, 1000, std::sync::atomic::Ordering::Release)
        .unwrap();
    kick.notify().unwrap();
    let result = serving.join().unwrap();
    assert!(
        matches!(
            result,
            Err(ServerError::Ring(crate::ring::Error::Protocol(_)))
        ),
        "{result:?}"
    );
}

/// A fake server on a thread: answers the handshake like a real one (unless `version`
/// overrides it), then answers `requests` more requests with `answer(opcode, payload)`.
fn hostile_server(
    version: Option<Response>,
    requests: usize,
    answer: impl Fn(u32, &[u8]) -> (u32, Vec<u8>) + Send + 'static,
) -> (Result<Client, Errno>, JoinHandle<()>) {
    let (front, fds) = ShmFrontEnd::create(CONFIG).unwrap();
    let mut back = ShmBackEnd::attach(CONFIG, fds).unwrap();
    let server = std::thread::spawn(move || {
        for _ in 0..=requests {
            serve_one(&mut back, &version, &answer);
        }
    });
    let options = ClientOptions {
        timeout: Duration::from_secs(30),
        server_process: None,
    };
    (Client::connect(front, options), server)
}

/// Answers one request as [`hostile_server`] describes.
fn serve_one(
    back: &mut ShmBackEnd,
    version: &Option<Response>,
    answer: &impl Fn(u32, &[u8]) -> (u32, Vec<u8>),
) {
    let request = loop {
        if let Some(request) = back.next_request().unwrap() {
            break request;
        }
        back.wait_for_requests(Some(Duration::from_secs(30)))
            .unwrap();
    };
    let (status, payload) = if request.opcode == Opcode::Version as u32 {
        let dir = proto::Attr {
            mode: libc::S_IFDIR | 0o755,
            ..Default::default()
        };
        let response = version.clone().unwrap_or(Response::Version {
            version: proto::VERSION,
            max_payload: CONFIG.data_slot_size,
            root: FidAttr {
                fid: Fid(1),
                attr: dir,
            },
        });
        (0, response.to_bytes())
    } else {
        answer(request.opcode, &request.payload)
    };
    back.respond(request.id, status, &payload).unwrap();
    back.push_responses().unwrap();
}

#[test]
fn a_hostile_server_makes_the_client_fail_with_eio() {
    type Check = fn(&Client) -> Result<(), Errno>;
    let cases: [(&str, u32, Vec<u8>, Check); 6] = [
        ("no errno", 70_000, vec![], |c| c.stat(Fid(1)).map(drop)),
        ("malformed", 0, vec![1, 2, 3], |c| c.stat(Fid(1)).map(drop)),
        (
            "more nodes than names",
            0,
            Response::Walk {
                nodes: vec![FidAttr::default(); 2],
                error: None,
            }
            .to_bytes(),
            |c| c.walk(Fid(1), &["one"]).map(drop),
        ),
        ("more bytes than asked", 0, vec![7; 10], |c| {
            c.read(Fid(2), 0, &mut [0; 4]).map(drop)
        }),
        (
            "more bytes written than sent",
            0,
            8u64.to_ne_bytes().to_vec(),
            |c| c.write(Fid(2), 0, b"abc").map(drop),
        ),
        ("no symlink target", 0, b"a\0b".to_vec(), |c| {
            c.readlink(Fid(3)).map(drop)
        }),
    ];
    for (what, status, payload, check) in cases {
        let (client, server) = hostile_server(None, 1, move |_, _| (status, payload.clone()));
        let client = client.unwrap();
        assert_eq!(check(&client), Err(Errno::EIO), "{what}");
        assert!(client.failure().is_some(), "{what}");
        // Dead for good: no more requests go out.
        assert_eq!(client.stat(Fid(1)), Err(Errno::EIO), "{what}");
        drop(client);
        server.join().unwrap();
    }
    // An errno is passed through and leaves the connection alive.
    let enoent = libc::ENOENT as u32;
    let (client, server) = hostile_server(None, 2, move |_, _| (enoent, vec![]));
    let client = client.unwrap();
    assert_eq!(client.stat(Fid(1)), Err(Errno::ENOENT));
    assert_eq!(client.stat(Fid(1)), Err(Errno::ENOENT));
    assert_eq!(client.failure(), None);
    drop(client);
    server.join().unwrap();
}

#[test]
fn a_bad_handshake_fails_connect() {
    let dir = proto::Attr {
        mode: libc::S_IFDIR | 0o755,
        ..Default::default()
    };
    let file = proto::Attr {
        mode: libc::S_IFREG | 0o644,
        ..Default::default()
    };
    let version = |version, max_payload, attr| Response::Version {
        version,
        max_payload,
        root: FidAttr { fid: Fid(1), attr },
    };
    let cases = [
        (
            version(proto::VERSION + 1, CONFIG.data_slot_size, dir),
            Errno::EPROTONOSUPPORT,
        ),
        (
            version(0, CONFIG.data_slot_size, dir),
            Errno::EPROTONOSUPPORT,
        ),
        (version(proto::VERSION, 100, dir), Errno::EIO),
        (
            version(proto::VERSION, CONFIG.data_slot_size, file),
            Errno::EIO,
        ),
    ];
    for (response, errno) in cases {
        let (client, server) = hostile_server(Some(response.clone()), 0, |_, _| (0, vec![]));
        assert_eq!(client.map(drop), Err(errno), "{response:?}");
        server.join().unwrap();
    }
}
