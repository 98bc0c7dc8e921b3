//! Tests of mount plans applied over a tmpfs root, and of OCI option parsing.

use super::*;
use crate::fs::devices::makedev;
use crate::fs::tty::devpts::PTMX;
use crate::vfs::{O_RDONLY, O_RDWR};

/// A sandbox's mount namespace without a kernel: a tmpfs root and the ptys.
struct Sandbox {
    mounts: MountTable,
    root: Location,
    devpts: Arc<Devpts>,
}

impl Sandbox {
    fn new() -> Sandbox {
        let mounts = MountTable::default();
        let root = mounts.root(Tmpfs::new(makedev(0, 1)).root(), "tmpfs");
        Sandbox {
            mounts,
            root,
            devpts: Devpts::new(crate::fs::DEVPTS_DEV),
        }
    }

    fn mount(&self, destination: &str, kind: MountKind, options: &[&str]) -> Result<(), String> {
        let options = parse_options(options)?;
        let spec = MountSpec {
            destination: destination.to_string(),
            kind,
            flags: options.flags,
        };
        let ns = Namespace {
            mounts: &self.mounts,
            root: &self.root,
            kernel: Weak::new(),
            devpts: &self.devpts,
            cpu_mask: &[1],
        };
        mount(&ns, &spec).map_err(|e| e.to_string())
    }

    fn resolve(&self, path: &str, follow: bool) -> Result<Location, Errno> {
        let start = Start::new(&self.mounts, &self.root, &self.root);
        resolve(start, path.as_bytes(), follow)
    }

    fn read(&self, path: &str) -> Vec<u8> {
        let at = self.resolve(path, true).unwrap();
        let file = at.dentry.inode.clone().open(O_RDONLY).unwrap();
        let mut buf = vec![0; 4096];
        let n = file.read(0, &mut buf).unwrap();
        buf.truncate(n);
        buf
    }

    fn names(&self, path: &str) -> Vec<String> {
        let at = self.resolve(path, true).unwrap();
        let mut names: Vec<String> = at
            .dentry
            .inode
            .readdir()
            .unwrap()
            .into_iter()
            .map(|e| String::from_utf8_lossy(&e.name).into_owned())
            .collect();
        names.sort();
        names
    }
}

const ROOT: Owner = Owner { uid: 0, gid: 0 };

/// A file with `content` in a tmpfs of its own, standing for one a gofer serves.
fn served_file(content: &[u8]) -> Arc<dyn Inode> {
    let fs = Tmpfs::new(makedev(0, 200)).root();
    let file = fs
        .create(b"f", &NewNode::File { mode: 0o644 }, ROOT)
        .unwrap();
    file.clone()
        .open(O_RDWR)
        .unwrap()
        .write(0, content)
        .unwrap();
    file
}

/// A directory holding `name`, standing for one a gofer serves.
fn served_dir(name: &[u8]) -> Arc<dyn Inode> {
    let dir = Tmpfs::new(makedev(0, 201)).root();
    dir.create(name, &NewNode::File { mode: 0o644 }, ROOT)
        .unwrap();
    dir
}

fn tmpfs(options: &[&str]) -> MountKind {
    MountKind::Tmpfs(parse_options(options).unwrap().tmpfs())
}

/// Docker's default mounts, in its order, plus the three files it binds.
fn docker(s: &Sandbox) {
    let devpts = [
        "nosuid",
        "noexec",
        "newinstance",
        "ptmxmode=0666",
        "mode=0620",
        "gid=5",
    ];
    let devpts_kind = MountKind::Devpts(parse_options(&devpts).unwrap().devpts());
    let plan: Vec<(&str, MountKind, &[&str])> = vec![
        ("/proc", MountKind::Proc, &["nosuid", "noexec", "nodev"]),
        (
            "/dev",
            tmpfs(&["nosuid", "strictatime", "mode=755", "size=65536k"]),
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        ("/dev/pts", devpts_kind, &devpts),
        (
            "/sys",
            MountKind::Sysfs,
            &["nosuid", "noexec", "nodev", "ro"],
        ),
        (
            "/sys/fs/cgroup",
            MountKind::Cgroup,
            &["ro", "nosuid", "noexec", "nodev"],
        ),
        (
            "/dev/mqueue",
            MountKind::Mqueue,
            &["nosuid", "noexec", "nodev"],
        ),
        (
            "/dev/shm",
            tmpfs(&["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]),
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        ),
        (
            "/etc/resolv.conf",
            MountKind::Bind(served_file(b"nameserver 10.0.0.1\n")),
            &["rbind", "rprivate"],
        ),
        (
            "/etc/hostname",
            MountKind::Bind(served_file(b"c0ffee\n")),
            &["rbind", "rprivate"],
        ),
        (
            "/etc/hosts",
            MountKind::Bind(served_file(b"127.0.0.1 localhost\n")),
            &["rbind", "rprivate", "ro"],
        ),
    ];
    for (destination, kind, options) in plan {
        s.mount(destination, kind, options)
            .unwrap_or_else(|e| panic!("{destination}: {e}"));
    }
}

#[test]
fn docker_options_parse() {
    let devpts = parse_options(&[
        "nosuid",
        "noexec",
        "newinstance",
        "ptmxmode=0666",
        "mode=0620",
        "gid=5",
    ])
    .unwrap();
    assert_eq!(
        devpts.flags,
        MountFlags {
            nosuid: true,
            noexec: true,
            ..MountFlags::default()
        }
    );
    assert_eq!(
        devpts.devpts(),
        DevptsOptions {
            ptmx_mode: 0o666,
            pty_mode: 0o620,
            pty_gid: Some(5),
        }
    );
    let shm = parse_options(&["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]).unwrap();
    assert_eq!(
        shm.tmpfs(),
        TmpfsOptions {
            mode: 0o1777,
            uid: 0,
            gid: 0,
            size: Some(65536 << 10),
        }
    );
    assert!(shm.flags.nodev && shm.flags.noexec && shm.flags.nosuid && !shm.flags.read_only);
    let bind = parse_options(&["rbind", "rprivate", "ro"]).unwrap();
    assert!(bind.bind && bind.flags.read_only);
    // The last of ro and rw wins, as mount(8).
    assert!(!parse_options(&["ro", "rw"]).unwrap().flags.read_only);
    // tmpfs defaults: 1777, no size.
    assert_eq!(
        parse_options::<&str>(&[]).unwrap().tmpfs(),
        TmpfsOptions::default()
    );
}

#[test]
fn sizes_parse_with_suffixes_and_percentages() {
    let size = |s: &str| parse_options(&[format!("size={s}")]).map(|o| o.size);
    assert_eq!(size("4096"), Ok(Some(4096)));
    assert_eq!(size("64k"), Ok(Some(64 << 10)));
    assert_eq!(size("2M"), Ok(Some(2 << 20)));
    assert_eq!(size("1g"), Ok(Some(1 << 30)));
    assert_eq!(size("50%"), Ok(None));
    for bad in ["", "k", "12x", "-1", "99999999999999999999t", "1.5g"] {
        assert!(size(bad).is_err(), "size={bad}");
    }
}

#[test]
fn bad_values_are_errors_and_unknown_options_are_ignored() {
    let err = parse_options(&["mode=abc"]).unwrap_err();
    assert_eq!(err, "mount option \"mode=abc\": not an octal mode");
    assert!(parse_options(&["mode=17777"]).is_err());
    assert!(parse_options(&["mode="]).is_err());
    assert!(parse_options(&["ptmxmode=9"]).is_err());
    assert!(parse_options(&["gid=tty"]).is_err());
    assert!(parse_options(&["uid=-1"]).is_err());
    let ignored = parse_options(&["relatime", "rprivate", "newinstance", "x-foo=bar"]).unwrap();
    assert_eq!(ignored, MountOptions::default());
}

#[test]
fn the_default_plan_mounts_tmp_unless_the_root_is_an_overlay() {
    let destinations =
        |plan: Vec<MountSpec>| -> Vec<String> { plan.into_iter().map(|m| m.destination).collect() };
    let base = ["/dev", "/dev/shm", "/dev/pts", "/proc", "/sys"];
    assert_eq!(destinations(default_plan("overlay")), base);
    let mut with_tmp = base.to_vec();
    with_tmp.push("/tmp");
    assert_eq!(destinations(default_plan("gofer")), with_tmp);
}

#[test]
fn a_docker_plan_makes_its_mount_points_and_paths_cross_its_mounts() {
    let s = Sandbox::new();
    docker(&s);
    // /dev is a tmpfs with runc's devices; the other /dev mounts went into it.
    let dev = s.resolve("/dev", true).unwrap();
    assert_eq!(dev.mount.fs_type, "tmpfs");
    assert!(dev.mount.flags.nosuid && !dev.mount.flags.noexec);
    assert_eq!(dev.dentry.inode.attr().unwrap().mode & 0o7777, 0o755);
    let expected = [
        "fd", "full", "mqueue", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin",
        "stdout", "tty", "urandom", "zero",
    ];
    assert_eq!(s.names("/dev"), expected);
    let null = s
        .resolve("/dev/null", true)
        .unwrap()
        .dentry
        .inode
        .attr()
        .unwrap();
    assert_eq!((null.mode, null.rdev), (S_IFCHR | 0o666, devices::NULL));
    let stdin = s.resolve("/dev/stdin", false).unwrap();
    assert_eq!(stdin.dentry.inode.readlink().unwrap(), b"/proc/self/fd/0");
    // /dev/ptmx leads to devpts's ptmx, which ptmxmode=0666 opens to all.
    let ptmx = s.resolve("/dev/ptmx", true).unwrap();
    assert_eq!(ptmx.mount.fs_type, "devpts");
    let attr = ptmx.dentry.inode.attr().unwrap();
    assert_eq!((attr.mode, attr.rdev), (S_IFCHR | 0o666, PTMX));
    // Each mount is its own file system, with its own flags.
    let shm = s.resolve("/dev/shm", true).unwrap();
    assert_eq!(shm.dentry.inode.attr().unwrap().mode & 0o7777, 0o1777);
    assert!(shm.mount.flags.noexec && shm.mount.flags.nodev);
    assert_ne!(
        shm.dentry.inode.attr().unwrap().dev,
        dev.dentry.inode.attr().unwrap().dev
    );
    assert_eq!(
        s.resolve("/dev/mqueue", true).unwrap().mount.fs_type,
        "mqueue"
    );
    assert_eq!(s.resolve("/proc", true).unwrap().mount.fs_type, "proc");
    let sys = s.resolve("/sys", true).unwrap();
    assert_eq!(
        (sys.mount.fs_type, sys.mount.flags.read_only),
        ("sysfs", true)
    );
    let cgroup = s.resolve("/sys/fs/cgroup", true).unwrap();
    assert_eq!(cgroup.mount.fs_type, "cgroup2");
    assert!(cgroup.mount.flags.read_only);
    assert!(s.names("/sys/fs/cgroup").is_empty());
    // The bound files: /etc was made for them; each reads as served.
    assert_eq!(s.names("/etc"), ["hostname", "hosts", "resolv.conf"]);
    assert_eq!(s.read("/etc/hosts"), b"127.0.0.1 localhost\n");
    assert_eq!(s.read("/etc/hostname"), b"c0ffee\n");
    let hosts = s.resolve("/etc/hosts", true).unwrap();
    assert_eq!(hosts.mount.fs_type, "gofer");
    assert!(hosts.mount.flags.read_only);
    assert!(
        !s.resolve("/etc/hostname", true)
            .unwrap()
            .mount
            .flags
            .read_only
    );
    // ".." from inside a mount climbs out of it.
    assert_eq!(
        s.resolve("/dev/pts/../shm/../../etc/./hostname", true)
            .unwrap()
            .mount
            .fs_type,
        "gofer"
    );
    assert_eq!(
        crate::vfs::path::absolute(&hosts, &s.root),
        b"/etc/hosts".to_vec()
    );
    // A file mount point cannot be a directory on the way.
    assert_eq!(s.resolve("/etc/hosts/x", true).unwrap_err(), Errno::ENOTDIR);
}

#[test]
fn a_file_bind_covers_an_existing_file_and_a_directory_bind_a_directory() {
    let s = Sandbox::new();
    let root = &s.root.dentry.inode;
    let etc = root
        .create(b"etc", &NewNode::Directory { mode: 0o755 }, ROOT)
        .unwrap();
    let hosts = etc
        .create(b"hosts", &NewNode::File { mode: 0o644 }, ROOT)
        .unwrap();
    hosts
        .open(O_RDWR)
        .unwrap()
        .write(0, b"the image's\n")
        .unwrap();
    s.mount(
        "/etc/hosts",
        MountKind::Bind(served_file(b"docker's\n")),
        &[],
    )
    .unwrap();
    assert_eq!(s.read("/etc/hosts"), b"docker's\n");
    s.mount("/srv/data", MountKind::Bind(served_dir(b"inside")), &["ro"])
        .unwrap();
    assert_eq!(s.names("/srv/data"), ["inside"]);
    assert_eq!(
        s.resolve("/srv/data/inside", true).unwrap().mount.fs_type,
        "gofer"
    );
    // Linux's graft_tree: a directory goes on a directory, anything else on a non-directory.
    let err = s
        .mount("/etc", MountKind::Bind(served_file(b"x")), &[])
        .unwrap_err();
    assert_eq!(err, "mounting gofer at /etc: not a directory");
    let err = s.mount("/etc/hosts", tmpfs(&[]), &[]).unwrap_err();
    assert_eq!(err, "mounting tmpfs at /etc/hosts: not a directory");
    // A mount stacks on another at the same place.
    s.mount("/srv/data", tmpfs(&[]), &[]).unwrap();
    assert!(s.names("/srv/data").is_empty());
}

#[test]
fn a_dangling_symlink_leads_to_where_the_mount_point_is_made() {
    let s = Sandbox::new();
    let root = &s.root.dentry.inode;
    let etc = root
        .create(b"etc", &NewNode::Directory { mode: 0o755 }, ROOT)
        .unwrap();
    // Ubuntu's systemd-resolved link, with /run missing in the image.
    let target = b"../run/systemd/resolve/stub-resolv.conf".to_vec();
    etc.create(b"resolv.conf", &NewNode::Symlink { target }, ROOT)
        .unwrap();
    // And an absolute one to a missing directory.
    etc.create(
        b"data",
        &NewNode::Symlink {
            target: b"/var/lib/data".to_vec(),
        },
        ROOT,
    )
    .unwrap();
    let conf = served_file(b"nameserver 1.1.1.1\n");
    s.mount("/etc/resolv.conf", MountKind::Bind(conf), &[])
        .unwrap();
    assert_eq!(s.read("/etc/resolv.conf"), b"nameserver 1.1.1.1\n");
    assert_eq!(
        s.read("/run/systemd/resolve/stub-resolv.conf"),
        b"nameserver 1.1.1.1\n"
    );
    s.mount("/etc/data", tmpfs(&[]), &[]).unwrap();
    assert_eq!(
        s.resolve("/var/lib/data", true).unwrap().mount.fs_type,
        "tmpfs"
    );
    // A loop of symlinks ends.
    etc.create(
        b"loop",
        &NewNode::Symlink {
            target: b"loop".to_vec(),
        },
        ROOT,
    )
    .unwrap();
    let err = s.mount("/etc/loop", tmpfs(&[]), &[]).unwrap_err();
    assert!(err.contains("symbolic links"), "{err}");
    // So does a chain of symlinks to ever deeper missing directories.
    let deep = "d/".repeat(2000);
    for i in 0..40 {
        let target = format!("/{deep}link{}", i + 1).into_bytes();
        let name = format!("link{i}");
        root.create(name.as_bytes(), &NewNode::Symlink { target }, ROOT)
            .unwrap();
    }
    let err = s.mount("/link0", tmpfs(&[]), &[]).unwrap_err();
    assert_eq!(err, "mounting tmpfs at /link0: file name too long");
}

#[test]
fn masked_paths_read_empty_and_read_only_paths_refuse_writes() {
    let s = Sandbox::new();
    docker(&s);
    // A directory is covered by an empty read-only tmpfs; a file by /dev/null; a path that
    // does not exist is left alone.
    s.mount("/sys/devices", MountKind::Mask, &[]).unwrap();
    s.mount("/etc/hostname", MountKind::Mask, &[]).unwrap();
    s.mount("/proc/no-such-file", MountKind::Mask, &[]).unwrap();
    assert!(s.resolve("/proc/no-such-file", true).is_err());
    let devices = s.resolve("/sys/devices", true).unwrap();
    assert!(devices.mount.flags.read_only);
    assert!(s.names("/sys/devices").is_empty());
    let hostname = s.resolve("/etc/hostname", true).unwrap();
    assert_eq!(hostname.dentry.inode.attr().unwrap().rdev, devices::NULL);
    // /proc/sys stays what it was, read-only from now on; /proc around it does not change.
    let before = s.names("/proc/sys");
    assert!(!before.is_empty());
    s.mount("/proc/sys", MountKind::ReadOnly, &[]).unwrap();
    s.mount("/proc/sysrq-trigger", MountKind::ReadOnly, &[])
        .unwrap();
    let sys = s.resolve("/proc/sys", true).unwrap();
    assert_eq!(sys.mount.fs_type, "proc");
    assert!(sys.mount.flags.read_only && sys.mount.flags.nosuid && sys.mount.flags.noexec);
    assert_eq!(s.names("/proc/sys"), before);
    assert!(!s.resolve("/proc", true).unwrap().mount.flags.read_only);
    // The files under it are reached through the read-only mount.
    let kernel = s.resolve("/proc/sys/kernel", true).unwrap();
    assert!(kernel.mount.flags.read_only);
}

#[test]
fn destinations_must_be_absolute_and_not_the_root() {
    let s = Sandbox::new();
    let err = s.mount("dev", tmpfs(&[]), &[]).unwrap_err();
    assert_eq!(
        err,
        "mounting tmpfs at dev: the path in the sandbox must be absolute"
    );
    assert!(s.mount("/", tmpfs(&[]), &[]).is_err());
    assert!(s.mount("/a/..", tmpfs(&[]), &[]).is_err());
    // Lexically cleaned: "/x/../y/./" is "/y".
    s.mount("/x/../y/./", tmpfs(&[]), &[]).unwrap();
    assert_eq!(s.names("/"), ["y"]);
}

#[test]
fn a_tmpfs_root_takes_its_mode_and_owner() {
    let s = Sandbox::new();
    s.mount("/run", tmpfs(&["mode=700", "uid=1000", "gid=100"]), &[])
        .unwrap();
    let attr = s
        .resolve("/run", true)
        .unwrap()
        .dentry
        .inode
        .attr()
        .unwrap();
    assert_eq!((attr.mode & 0o7777, attr.uid, attr.gid), (0o700, 1000, 100));
    // Only /dev gets devices.
    assert!(s.names("/run").is_empty());
}
