//! config.json: reading and checking a bundle's, the process description the sandbox
//! runs from it, and the default one `runsc-rs spec` writes.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{PosixRlimitType, Process, Spec};

use super::control::ExecProcess;
use super::Error;

/// Reads `bundle/config.json`.
pub fn load(bundle: &Path) -> Result<Spec, Error> {
    let path = bundle.join("config.json");
    if !path.exists() {
        return Err(Error::Config(format!(
            "{}: no such file (a bundle holds a config.json)",
            path.display()
        )));
    }
    Spec::load(&path).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
}

/// The container's root directory: `root.path`, absolute or relative to the bundle. Like
/// runc, a symlink is refused (it could point anywhere on the host by the time it is used).
pub fn rootfs(spec: &Spec, bundle: &Path) -> Result<PathBuf, Error> {
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| Error::Config("config.json has no root".into()))?;
    let path = if root.path().is_absolute() {
        root.path().clone()
    } else {
        bundle.join(root.path())
    };
    match std::fs::symlink_metadata(&path) {
        Ok(meta) if meta.file_type().is_symlink() => Err(Error::Config(format!(
            "invalid rootfs {}: a symlink",
            path.display()
        ))),
        Ok(meta) if meta.is_dir() => Ok(path),
        Ok(_) => Err(Error::Config(format!(
            "invalid rootfs {}: not a directory",
            path.display()
        ))),
        Err(e) => Err(Error::Config(format!(
            "invalid rootfs {}: {e}",
            path.display()
        ))),
    }
}

/// Whether the root is mounted read-only.
pub fn rootfs_read_only(spec: &Spec) -> bool {
    spec.root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
}

/// The container's process: config.json's `process`.
pub fn process(spec: &Spec) -> Result<&Process, Error> {
    spec.process()
        .as_ref()
        .ok_or_else(|| Error::Config("config.json has no process".into()))
}

/// The process the sandbox runs for config.json's `process` (init, or an exec's
/// `--process` file).
pub fn exec_process(process: &Process) -> Result<ExecProcess, Error> {
    let args = process.args().clone().unwrap_or_default();
    if args.is_empty() {
        return Err(Error::Config("process.args must not be empty".into()));
    }
    let user = process.user();
    let mut rlimits = Vec::new();
    for limit in process.rlimits().iter().flatten() {
        let resource = rlimit_number(limit.typ()).ok_or_else(|| {
            Error::Config(format!("rlimit {:?} is not a Linux resource", limit.typ()))
        })?;
        if limit.soft() > limit.hard() {
            return Err(Error::Config(format!(
                "rlimit {}: soft limit {} is above the hard limit {}",
                limit.typ(),
                limit.soft(),
                limit.hard()
            )));
        }
        rlimits.push((resource, limit.soft(), limit.hard()));
    }
    Ok(ExecProcess {
        args,
        env: process.env().clone().unwrap_or_default(),
        cwd: process.cwd().to_string_lossy().into_owned(),
        uid: user.uid(),
        gid: user.gid(),
        groups: user.additional_gids().clone().unwrap_or_default(),
        umask: user.umask(),
        terminal: process.terminal().unwrap_or(false),
        console_size: process
            .console_size()
            .as_ref()
            .map(|b| (b.height() as u16, b.width() as u16)),
        no_new_privs: process.no_new_privileges().unwrap_or(false),
        capabilities: process.capabilities().clone(),
        rlimits,
    })
}

/// The Linux number of resource limit `typ`.
fn rlimit_number(typ: PosixRlimitType) -> Option<u32> {
    use PosixRlimitType::*;
    Some(match typ {
        RlimitCpu => 0,
        RlimitFsize => 1,
        RlimitData => 2,
        RlimitStack => 3,
        RlimitCore => 4,
        RlimitRss => 5,
        RlimitNproc => 6,
        RlimitNofile => 7,
        RlimitMemlock => 8,
        RlimitAs => 9,
        RlimitLocks => 10,
        RlimitSigpending => 11,
        RlimitMsgqueue => 12,
        RlimitNice => 13,
        RlimitRtprio => 14,
        RlimitRttime => 15,
        #[allow(unreachable_patterns)]
        _ => return None,
    })
}

/// The capability sets runc gives a container by default (`runc spec`).
fn default_capabilities() -> Vec<&'static str> {
    vec!["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
}

/// The config.json `runsc-rs spec` writes: runc's default (`runc spec`), a busybox-style
/// `sh` on a terminal in `rootfs`. With `rootless`, runc's rootless changes (no network
/// or cgroup namespace, user namespace mappings of the caller) are not made: runsc-rs's
/// sandbox has no host namespaces to map, so the same spec serves.
pub fn default_spec() -> serde_json::Value {
    let caps = default_capabilities();
    serde_json::json!({
        "ociVersion": super::OCI_VERSION,
        "process": {
            "terminal": true,
            "user": { "uid": 0, "gid": 0 },
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": caps, "effective": caps, "permitted": caps, "ambient": caps
            },
            "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }],
            "noNewPrivileges": true
        },
        "root": { "path": "rootfs", "readonly": true },
        "hostname": "runsc-rs",
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
              "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
              "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
            { "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
              "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
            { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
              "options": ["nosuid", "noexec", "nodev"] },
            { "destination": "/sys", "type": "sysfs", "source": "sysfs",
              "options": ["nosuid", "noexec", "nodev", "ro"] },
            { "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
              "options": ["nosuid", "noexec", "nodev", "relatime", "ro"] }
        ],
        "linux": {
            "resources": { "devices": [{ "allow": false, "access": "rwm" }] },
            "namespaces": [
                { "type": "pid" }, { "type": "network" }, { "type": "ipc" },
                { "type": "uts" }, { "type": "mount" }, { "type": "cgroup" }
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
                "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    })
}

/// Checks what runsc-rs cannot honour, so that it is a clear error at `create` rather than
/// a container that silently differs from its config.
pub fn check_supported(spec: &Spec) -> Result<(), Error> {
    if let Some(linux) = spec.linux() {
        for ns in linux.namespaces().iter().flatten() {
            use oci_spec::runtime::LinuxNamespaceType::*;
            match ns.typ() {
                // The sandbox has its own of each of these whatever the config says: its
                // pid, ipc, uts and mount tables live in the Sentry.
                Pid | Ipc | Uts | Mount | Cgroup => {}
                // The sandbox has no network yet: a container gets none, so a network
                // namespace of the host (a path) is accepted and not joined.
                Network => {}
                User => {
                    if ns.path().is_some() {
                        return Err(Error::Config(
                            "joining a user namespace (linux.namespaces user with a path) is not supported".into(),
                        ));
                    }
                }
                #[allow(unreachable_patterns)]
                other => {
                    if ns.path().is_some() {
                        return Err(Error::Config(format!(
                            "joining a {other:?} namespace by path is not supported"
                        )));
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_spec_parses_and_gives_a_process() {
        let spec: Spec = serde_json::from_value(default_spec()).expect("parses");
        let process = exec_process(process(&spec).expect("process")).expect("exec");
        assert_eq!(process.args, vec!["sh"]);
        assert!(process.terminal);
        assert_eq!(process.rlimits, vec![(7, 1024, 1024)]);
        assert!(rootfs_read_only(&spec));
        check_supported(&spec).expect("supported");
    }

    #[test]
    fn empty_args_and_inverted_rlimits_are_refused() {
        let mut spec = default_spec();
        spec["process"]["args"] = serde_json::json!([]);
        let parsed: Spec = serde_json::from_value(spec.clone()).expect("parses");
        assert!(exec_process(process(&parsed).expect("process")).is_err());
        spec["process"]["args"] = serde_json::json!(["sh"]);
        spec["process"]["rlimits"] =
            serde_json::json!([{ "type": "RLIMIT_NOFILE", "hard": 10, "soft": 20 }]);
        let parsed: Spec = serde_json::from_value(spec).expect("parses");
        assert!(exec_process(process(&parsed).expect("process")).is_err());
    }
}
