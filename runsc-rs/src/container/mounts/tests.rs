//! Tests of [`parse`] on the config.json of a Docker container and of `runc spec`.

use super::*;
use sentry::fs::mounts::TmpfsOptions;
use sentry::fs::tty::devpts::DevptsOptions;

/// A directory of its own for a test, emptied first.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("runsc-rs-mounts-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A Docker container's directory (/var/lib/docker/containers/ID) and its config.json.
fn docker() -> (PathBuf, Spec) {
    let container = scratch("docker");
    std::fs::create_dir_all(container.join("mounts/shm")).unwrap();
    for file in ["resolv.conf", "hostname", "hosts"] {
        std::fs::write(container.join(file), file).unwrap();
    }
    let json =
        include_str!("testdata/docker.json").replace("@CONTAINER@", container.to_str().unwrap());
    (container, serde_json::from_str(&json).unwrap())
}

fn runc_spec() -> Spec {
    serde_json::from_str(include_str!("testdata/runc-spec.json")).unwrap()
}

fn destinations(planned: &[Planned]) -> Vec<&str> {
    planned.iter().map(|p| p.destination.as_str()).collect()
}

const NOSUID_NOEXEC_NODEV: MountFlags = MountFlags {
    read_only: false,
    nosuid: true,
    nodev: true,
    noexec: true,
};

#[test]
fn a_docker_config_plans_its_mounts_then_read_only_then_masked_paths() {
    let (container, spec) = docker();
    let planned = parse(&spec, Path::new("/nonexistent-bundle")).unwrap();
    let mounts = [
        "/proc",
        "/dev",
        "/dev/pts",
        "/sys",
        "/sys/fs/cgroup",
        "/dev/mqueue",
        "/dev/shm",
        "/etc/resolv.conf",
        "/etc/hostname",
        "/etc/hosts",
    ];
    let read_only = [
        "/proc/bus",
        "/proc/fs",
        "/proc/irq",
        "/proc/sys",
        "/proc/sysrq-trigger",
    ];
    let masked = [
        "/proc/asound",
        "/proc/acpi",
        "/proc/kcore",
        "/proc/keys",
        "/proc/latency_stats",
        "/proc/timer_list",
        "/proc/timer_stats",
        "/proc/sched_debug",
        "/proc/scsi",
        "/sys/firmware",
        "/sys/devices/virtual/powercap",
    ];
    let expected: Vec<&str> = mounts
        .iter()
        .chain(&read_only)
        .chain(&masked)
        .copied()
        .collect();
    assert_eq!(destinations(&planned), expected);

    let kind = |i: usize| match &planned[i].source {
        Source::Sentry(kind) => kind.clone(),
        other => panic!("{}: {other:?}", planned[i].destination),
    };
    assert!(matches!(kind(0), MountKind::Proc));
    assert_eq!(planned[0].flags, NOSUID_NOEXEC_NODEV);
    let MountKind::Tmpfs(dev) = kind(1) else {
        panic!("/dev: {:?}", kind(1))
    };
    assert_eq!(
        dev,
        TmpfsOptions {
            mode: 0o755,
            uid: 0,
            gid: 0,
            size: Some(64 << 20),
        }
    );
    assert!(planned[1].flags.nosuid && !planned[1].flags.noexec);
    let MountKind::Devpts(pts) = kind(2) else {
        panic!("/dev/pts: {:?}", kind(2))
    };
    assert_eq!(
        pts,
        DevptsOptions {
            ptmx_mode: 0o666,
            pty_mode: 0o620,
            pty_gid: Some(5),
        }
    );
    assert!(matches!(kind(3), MountKind::Sysfs));
    assert!(planned[3].flags.read_only);
    assert!(matches!(kind(4), MountKind::Cgroup));
    assert!(planned[4].flags.read_only);
    assert!(matches!(kind(5), MountKind::Mqueue));
    // Docker's /dev/shm is a directory of the container's; the rest are files.
    assert!(matches!(&planned[6].source, Source::HostDir(d) if *d == container.join("mounts/shm")));
    assert_eq!(planned[6].flags, NOSUID_NOEXEC_NODEV);
    for (i, file) in [(7, "resolv.conf"), (8, "hostname"), (9, "hosts")] {
        assert!(
            matches!(&planned[i].source, Source::HostFile(f) if *f == container.join(file)),
            "{:?}",
            planned[i]
        );
        assert_eq!(planned[i].flags, MountFlags::default());
    }
    assert!(planned[10..15]
        .iter()
        .all(|p| matches!(p.source, Source::Sentry(MountKind::ReadOnly))));
    assert!(planned[15..]
        .iter()
        .all(|p| matches!(p.source, Source::Sentry(MountKind::Mask))));
    std::fs::remove_dir_all(container).unwrap();
}

#[test]
fn a_runc_spec_config_needs_no_host_path() {
    let planned = parse(&runc_spec(), Path::new("/nonexistent-bundle")).unwrap();
    assert_eq!(planned.len(), 7 + 5 + 10);
    assert_eq!(
        destinations(&planned)[..7],
        [
            "/proc",
            "/dev",
            "/dev/pts",
            "/dev/shm",
            "/dev/mqueue",
            "/sys",
            "/sys/fs/cgroup"
        ]
    );
    assert!(planned
        .iter()
        .all(|p| matches!(p.source, Source::Sentry(_))));
    let Source::Sentry(MountKind::Tmpfs(shm)) = &planned[3].source else {
        panic!("{:?}", planned[3])
    };
    assert_eq!(shm.mode, 0o1777);
    assert_eq!(planned[3].flags, NOSUID_NOEXEC_NODEV);
    // "relatime" is ignored; "ro" is not.
    assert!(planned[6].flags.read_only && planned[6].flags.nosuid);
    assert_eq!(planned[12].destination, "/proc/acpi");
}

/// A config with these mounts and nothing else.
fn with_mounts(mounts: &str) -> Spec {
    let json = format!(r#"{{"ociVersion": "1.0.2", "mounts": {mounts}}}"#);
    serde_json::from_str(&json).unwrap()
}

#[test]
fn bind_sources_are_relative_to_the_bundle_and_must_exist() {
    let bundle = scratch("bundle");
    std::fs::create_dir(bundle.join("data")).unwrap();
    std::fs::write(bundle.join("motd"), "hi").unwrap();
    let spec = with_mounts(
        r#"[{"destination": "/srv", "source": "data", "options": ["bind", "ro"]},
            {"destination": "etc/motd", "type": "none", "source": "motd", "options": ["rbind"]}]"#,
    );
    let planned = parse(&spec, &bundle).unwrap();
    assert!(matches!(&planned[0].source, Source::HostDir(d) if *d == bundle.join("data")));
    assert!(planned[0].flags.read_only);
    // A relative destination is taken from "/", as runc does.
    assert_eq!(planned[1].destination, "/etc/motd");
    assert!(matches!(&planned[1].source, Source::HostFile(f) if *f == bundle.join("motd")));

    let spec = with_mounts(r#"[{"destination": "/x", "type": "bind", "source": "missing"}]"#);
    let err = parse(&spec, &bundle).unwrap_err();
    let missing = bundle.join("missing");
    assert_eq!(
        err,
        format!(
            "bind mount at /x: {}: No such file or directory (os error 2)",
            missing.display()
        )
    );
    std::fs::remove_dir_all(bundle).unwrap();
}

#[test]
fn unsupported_types_and_bad_options_are_clear_errors() {
    let parse = |mounts: &str| parse(&with_mounts(mounts), Path::new("/")).unwrap_err();
    assert_eq!(
        parse(r#"[{"destination": "/mnt", "type": "nfs", "source": "server:/export"}]"#),
        "mount at /mnt: type \"nfs\" is not supported \
         (runsc-rs mounts bind, tmpfs, proc, sysfs, devpts, mqueue, cgroup and cgroup2)"
    );
    assert_eq!(
        parse(r#"[{"destination": "/mnt", "source": "x"}]"#),
        "mount at /mnt: no type"
    );
    assert_eq!(
        parse(r#"[{"destination": "/run", "type": "tmpfs", "options": ["size=lots"]}]"#),
        "mount at /run: mount option \"size=lots\": not a size"
    );
    assert_eq!(
        parse(r#"[{"destination": "/x", "options": ["bind"]}]"#),
        "bind mount at /x: no source"
    );
}
