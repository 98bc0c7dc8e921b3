//! A container's host cgroup: config.json's `linux.resources` applied to the sandbox's host
//! processes (the Sentry, its stub processes and the gofers), on cgroup v1, v2 and the
//! hybrid layout (v1 controllers plus a cgroup2 mount, typically /sys/fs/cgroup/unified,
//! that holds whatever controllers no v1 hierarchy took).
//!
//! The hierarchies are found in /proc/self/mountinfo and our own place in each in
//! /proc/self/cgroup, never from hard-coded paths. A container gets one directory in every
//! mounted hierarchy (v1 ones, named ones like `name=systemd`, and cgroup2), as runc's
//! cgroupfs manager does; each limit goes to the hierarchy that owns its controller: a v1
//! one if any, else cgroup2, where the controller is first enabled down the path through
//! `cgroup.subtree_control`.
//!
//! Numbers follow runc's reading of the spec, because the Docker, containerd and podman
//! callers are written against it: a 0 means "not set" (Go's zero value, which `docker
//! update` sends for every field it does not change), and -1 means "unlimited".
//!
//! A [`Cgroup`] serialises to the list of its directories, for the container's state file:
//! a later CLI process (`update`, `ps`, `delete`) cannot re-derive them from
//! `linux.cgroupsPath`, because a relative path resolves against the cgroup of the process
//! that created the container, which differs per hierarchy and per caller.

// The life cycle in container/ that calls this is being written alongside it.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::{LinuxResources, LinuxThrottleDevice};
use serde::{Deserialize, Serialize};

/// One container's directories, one per mounted cgroup hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cgroup {
    /// The path within each hierarchy as the caller gave it (`linux.cgroupsPath`), for
    /// messages.
    path: String,
    hierarchies: Vec<Hierarchy>,
}

/// The container's directory in one hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Hierarchy {
    /// Where the hierarchy is mounted; the directories between it and `dir` are the
    /// ancestors whose `cgroup.subtree_control` a v2 controller must be enabled in.
    mount: PathBuf,
    dir: PathBuf,
    version: Version,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Version {
    /// The controllers bound to this hierarchy, as /proc/self/cgroup names them (`cpu`,
    /// `cpuacct`, `name=systemd`, ...).
    V1(Vec<String>),
    /// cgroup2: its controllers are whatever the directory's `cgroup.controllers` offers,
    /// read when needed because a parent can enable or withdraw them at any time.
    V2,
}

/// The controllers that `linux.resources` sets limits with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Controller {
    Memory,
    Cpu,
    Cpuset,
    Pids,
    Io,
    Hugetlb,
}

const LIMITED: [Controller; 6] = [
    Controller::Memory,
    Controller::Cpu,
    Controller::Cpuset,
    Controller::Pids,
    Controller::Io,
    Controller::Hugetlb,
];

impl Controller {
    fn v1_name(self) -> &'static str {
        match self {
            Controller::Io => "blkio",
            c => c.v2_name(),
        }
    }

    /// The field of `linux.resources` that the controller's limits come from.
    fn spec_name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Cpu => "cpu",
            Controller::Cpuset => "cpu.cpus/mems",
            Controller::Pids => "pids",
            Controller::Io => "blockIO",
            Controller::Hugetlb => "hugepageLimits",
        }
    }

    fn v2_name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Cpu => "cpu",
            Controller::Cpuset => "cpuset",
            Controller::Pids => "pids",
            Controller::Io => "io",
            Controller::Hugetlb => "hugetlb",
        }
    }
}

/// How long `destroy` waits for tasks that were killed to leave the cgroup: a task stays
/// in it until its exit completes, which takes a moment after the kill that caused it.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// How long `freeze` waits for every task to reach the frozen state.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(2);

impl Cgroup {
    /// Makes the container's directory in every mounted hierarchy and applies `resources`.
    /// `path` is `linux.cgroupsPath`: absolute paths start at each hierarchy's root,
    /// relative ones under this process's own cgroup in it (as runc). The caller turns an
    /// empty path into its default and a `--systemd-cgroup` path through [`systemd_path`].
    /// A directory that already exists is used as it is. On failure, the directories this
    /// call made are removed again.
    pub fn create(path: &str, resources: Option<&LinuxResources>) -> Result<Cgroup, String> {
        let mountinfo = read_proc("/proc/self/mountinfo")?;
        let own = read_proc("/proc/self/cgroup")?;
        let cgroup = Cgroup {
            path: path.to_string(),
            hierarchies: resolve(path, &mountinfo, &own)?,
        };
        let mut made = Vec::new();
        let result = cgroup.make_dirs(&mut made).and_then(|()| {
            let only_v2 = cgroup.hierarchies.iter().all(|h| h.version == Version::V2);
            // On a pure v2 host every controller is enabled, as runc does, so that callers
            // which read statistics straight from the cgroup (the containerd shim for
            // `docker stats`) find them; in the hybrid layout only those a limit needs,
            // to leave the host's cgroup2 tree alone otherwise.
            let wanted: Vec<Controller> = LIMITED
                .into_iter()
                .filter(|&c| only_v2 || resources.is_some_and(|r| asks(c, r)))
                .collect();
            cgroup.enable_v2(&wanted);
            match resources {
                Some(r) => cgroup.apply(r),
                None => Ok(()),
            }
        });
        if let Err(e) = result {
            for dir in made.iter().rev() {
                let _ = fs::remove_dir(dir);
            }
            return Err(e);
        }
        Ok(cgroup)
    }

    /// Moves process `pid` (all its threads) into the container's cgroup in every
    /// hierarchy. Children it forks later are born there; those it already has are not
    /// moved.
    pub fn join(&self, pid: i32) -> Result<(), String> {
        for h in &self.hierarchies {
            let file = h.dir.join("cgroup.procs");
            fs::write(&file, pid.to_string())
                .map_err(|e| format!("cgroup: moving pid {pid} into {}: {e}", file.display()))?;
        }
        Ok(())
    }

    /// Changes the limits (`runc update`). Fields left unset (or 0) keep their values.
    pub fn update(&self, resources: &LinuxResources) -> Result<(), String> {
        let wanted: Vec<Controller> = LIMITED
            .into_iter()
            .filter(|&c| asks(c, resources))
            .collect();
        self.enable_v2(&wanted);
        self.apply(resources)
    }

    /// The processes (thread-group ids) in the container's cgroup, sorted, in any
    /// hierarchy: a task moved out of one hierarchy by someone else still counts.
    pub fn pids(&self) -> Result<Vec<i32>, String> {
        let mut pids = BTreeSet::new();
        for h in &self.hierarchies {
            let file = h.dir.join("cgroup.procs");
            let text = fs::read_to_string(&file)
                .map_err(|e| format!("cgroup: reading {}: {e}", file.display()))?;
            for line in text.lines() {
                let pid = line
                    .trim()
                    .parse::<i32>()
                    .map_err(|_| format!("cgroup: {} holds {line:?}, not a pid", file.display()))?;
                pids.insert(pid);
            }
        }
        Ok(pids.into_iter().collect())
    }

    /// Stops every task in the cgroup (`runc pause`), through the v1 freezer if there is
    /// one, else cgroup2's `cgroup.freeze`; returns once all are frozen.
    pub fn freeze(&self) -> Result<(), String> {
        self.set_frozen(true)
    }

    /// Lets the tasks frozen by [`Cgroup::freeze`] run again (`runc resume`).
    pub fn thaw(&self) -> Result<(), String> {
        self.set_frozen(false)
    }

    /// Removes the container's directories (and any child cgroups made inside them). It
    /// kills nothing: the caller kills the sandbox first, and this waits up to
    /// [`DRAIN_TIMEOUT`] for exiting tasks to leave. A directory already gone is fine.
    pub fn destroy(self) -> Result<(), String> {
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        let mut errors = Vec::new();
        for h in &self.hierarchies {
            if let Err(e) = remove_tree(&h.dir, deadline) {
                errors.push(e);
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(format!("cgroup: {}", errors.join("; ")))
        }
    }

    /// `linux.cgroupsPath` as given to [`Cgroup::create`].
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The container's directory in every hierarchy.
    pub fn dirs(&self) -> impl Iterator<Item = &Path> {
        self.hierarchies.iter().map(|h| h.dir.as_path())
    }

    /// Creates every hierarchy's directory, recording in `made` those this call created.
    fn make_dirs(&self, made: &mut Vec<PathBuf>) -> Result<(), String> {
        for h in &self.hierarchies {
            let cpuset = matches!(&h.version, Version::V1(c) if c.iter().any(|c| c == "cpuset"));
            let below = h.dir.strip_prefix(&h.mount).map_err(|_| {
                format!(
                    "cgroup: {} is not below its hierarchy's mount {}",
                    h.dir.display(),
                    h.mount.display()
                )
            })?;
            let mut dir = h.mount.clone();
            for part in below.components() {
                let parent = dir.clone();
                dir.push(part);
                match fs::create_dir(&dir) {
                    Ok(()) => made.push(dir.clone()),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => {
                        return Err(format!("cgroup: creating {}: {e}", dir.display()));
                    }
                }
                // A new v1 cpuset starts with no CPUs and no memory nodes and refuses
                // tasks until it has some; runc copies the parent's down each level.
                if cpuset {
                    for file in ["cpuset.cpus", "cpuset.mems"] {
                        copy_if_empty(&parent, &dir, file)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Enables `wanted` controllers for the container's cgroup2 directory, in
    /// `cgroup.subtree_control` of each ancestor below the mount. A controller the host
    /// does not offer, or that an ancestor cannot pass on (cgroup2 lets a cgroup with
    /// processes of its own enable none), stays off; [`Cgroup::apply`] names it if a
    /// limit needs it.
    fn enable_v2(&self, wanted: &[Controller]) {
        for h in self.hierarchies.iter().filter(|h| h.version == Version::V2) {
            let Ok(below) = h.dir.strip_prefix(&h.mount) else {
                continue;
            };
            let mut ancestors = vec![h.mount.clone()];
            let mut dir = h.mount.clone();
            for part in below.components() {
                dir.push(part);
                ancestors.push(dir.clone());
            }
            ancestors.pop();
            for c in wanted.iter().map(|c| c.v2_name()) {
                for a in &ancestors {
                    if has_word(&a.join("cgroup.subtree_control"), c) {
                        continue;
                    }
                    let file = a.join("cgroup.subtree_control");
                    if let Err(e) = fs::write(&file, format!("+{c}")) {
                        log::debug!("cgroup: enabling {c} in {}: {e}", file.display());
                        break;
                    }
                }
            }
        }
    }

    /// The directory that holds controller `c`'s files, and whether it is v1: a v1
    /// hierarchy bound to it, else the cgroup2 directory if `c` is enabled there.
    fn locate(&self, c: Controller) -> Option<(&Path, bool)> {
        let v1 = self.hierarchies.iter().find(
            |h| matches!(&h.version, Version::V1(names) if names.iter().any(|n| n == c.v1_name())),
        );
        if let Some(h) = v1 {
            return Some((&h.dir, true));
        }
        self.hierarchies
            .iter()
            .find(|h| {
                h.version == Version::V2 && has_word(&h.dir.join("cgroup.controllers"), c.v2_name())
            })
            .map(|h| (h.dir.as_path(), false))
    }

    /// Writes the limits in `resources` into the directories that own their controllers.
    fn apply(&self, resources: &LinuxResources) -> Result<(), String> {
        for field in ignored(resources) {
            log::warn!(
                "cgroup {}: linux.resources.{field} is not supported; ignored",
                self.path
            );
        }
        for c in LIMITED {
            if !asks(c, resources) {
                continue;
            }
            let Some((dir, v1)) = self.locate(c) else {
                return Err(self.absent(c));
            };
            let peek = |file: &str| fs::read_to_string(dir.join(file)).ok();
            let writes = plan(c, v1, resources, &peek)?;
            write_all(dir, &writes)?;
        }
        Ok(())
    }

    /// The error for a limit whose controller no hierarchy offers.
    fn absent(&self, c: Controller) -> String {
        let v2 = match self.hierarchies.iter().find(|h| h.version == Version::V2) {
            Some(h) => format!(
                "{} does not offer {}",
                h.dir.join("cgroup.controllers").display(),
                c.v2_name()
            ),
            None => "cgroup2 is not mounted".to_string(),
        };
        format!(
            "cgroup {}: linux.resources.{} is set, but no cgroup v1 hierarchy has the {} controller and {v2}",
            self.path,
            c.spec_name(),
            c.v1_name(),
        )
    }

    fn set_frozen(&self, frozen: bool) -> Result<(), String> {
        let v1 = self.hierarchies.iter().find(
            |h| matches!(&h.version, Version::V1(names) if names.iter().any(|n| n == "freezer")),
        );
        let (file, value, done_file, done) = match v1 {
            Some(h) => {
                let state = if frozen { "FROZEN" } else { "THAWED" };
                let file = h.dir.join("freezer.state");
                (file.clone(), state, file, state.to_string())
            }
            None => {
                let Some(h) = self.hierarchies.iter().find(|h| h.version == Version::V2) else {
                    return Err(format!(
                        "cgroup {}: cannot freeze: no v1 freezer hierarchy and no cgroup2 mount",
                        self.path
                    ));
                };
                let done = format!("frozen {}", u8::from(frozen));
                (
                    h.dir.join("cgroup.freeze"),
                    if frozen { "1" } else { "0" },
                    h.dir.join("cgroup.events"),
                    done,
                )
            }
        };
        fs::write(&file, value)
            .map_err(|e| format!("cgroup: writing {value} to {}: {e}", file.display()))?;
        // Freezing is asynchronous: the state reads FREEZING (v1) or `frozen 0` (v2) until
        // every task has stopped.
        let deadline = Instant::now() + FREEZE_TIMEOUT;
        loop {
            let text = fs::read_to_string(&done_file)
                .map_err(|e| format!("cgroup: reading {}: {e}", done_file.display()))?;
            if text.lines().any(|l| l.trim() == done) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        if frozen {
            // Leave nothing half-frozen behind a failed pause.
            let _ = self.set_frozen(false);
        }
        Err(format!(
            "cgroup: {} did not reach {done:?} within {FREEZE_TIMEOUT:?}",
            done_file.display()
        ))
    }
}

/// Converts a `--systemd-cgroup` path, `slice:prefix:name`, into the cgroupfs path
/// systemd would give it: the slice expanded into its nested slices
/// (`a-b.slice` → `/a.slice/a-b.slice`; an empty slice is `system.slice`) and the unit
/// `prefix-name.scope` (or `name` itself if it is a slice). There is no systemd here to ask,
/// so the cgroups are made directly where systemd would have put them.
pub fn systemd_path(path: &str) -> Result<String, String> {
    let parts: Vec<&str> = path.split(':').collect();
    let [slice, prefix, name] = parts[..] else {
        return Err(format!(
            "cgroup path {path:?}: with --systemd-cgroup it must be \"slice:prefix:name\""
        ));
    };
    if name.is_empty() || name.contains('/') || prefix.contains('/') {
        return Err(format!(
            "cgroup path {path:?}: the unit name must be non-empty and neither it nor the prefix may contain '/'"
        ));
    }
    let slice = if slice.is_empty() {
        "system.slice"
    } else {
        slice
    };
    let mut out = expand_slice(slice).map_err(|why| format!("cgroup path {path:?}: {why}"))?;
    let unit = if name.ends_with(".slice") {
        name.to_string()
    } else if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    if !out.ends_with('/') {
        out.push('/');
    }
    out.push_str(&unit);
    Ok(out)
}

/// systemd's slice naming (systemd.slice(5)): each dash opens a level, so `a-b-c.slice` is
/// `/a.slice/a-b.slice/a-b-c.slice`; `-.slice` is the root.
fn expand_slice(slice: &str) -> Result<String, String> {
    let Some(stem) = slice.strip_suffix(".slice") else {
        return Err(format!("slice {slice:?} does not end in .slice"));
    };
    if slice.contains('/') {
        return Err(format!("slice {slice:?} contains '/'"));
    }
    if stem == "-" {
        return Ok("/".to_string());
    }
    let mut path = String::new();
    let mut prefix = String::new();
    for part in stem.split('-') {
        if part.is_empty() {
            return Err(format!("slice {slice:?} has an empty part between dashes"));
        }
        path.push('/');
        path.push_str(&prefix);
        path.push_str(part);
        path.push_str(".slice");
        prefix.push_str(part);
        prefix.push('-');
    }
    Ok(path)
}

/// cpu.shares (2..262144, default 1024) to cgroup2's cpu.weight (1..10000, default 100),
/// runc's linear mapping, so that a container gets the same weight under either runtime.
pub fn shares_to_weight(shares: u64) -> u64 {
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

/// blkio.weight (10..1000) to cgroup2's io.weight (1..10000), runc's mapping.
fn blkio_to_io_weight(weight: u16) -> u64 {
    let weight = u64::from(weight.clamp(10, 1000));
    1 + ((weight - 10) * 9999) / 990
}

/// One mounted cgroup hierarchy, from a /proc/PID/mountinfo line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mount {
    /// `major:minor`: the same hierarchy mounted twice has the same one.
    device: String,
    /// The hierarchy's directory shown at the mount point (not `/` for a bind mount of a
    /// sub-tree, as container runtimes give their containers).
    root: String,
    mount_point: PathBuf,
    v2: bool,
    /// The superblock options (`rw,cpu,cpuacct`), which name a v1 hierarchy's controllers.
    options: Vec<String>,
}

/// The cgroup and cgroup2 mounts in a mountinfo text (proc(5)), one per hierarchy: of two
/// mounts of one hierarchy, the one showing more of it.
fn parse_mountinfo(text: &str) -> Vec<Mount> {
    let mut mounts: Vec<Mount> = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        // Optional fields end at a lone "-"; the file system type and options follow.
        let Some(dash) = fields.iter().skip(6).position(|f| *f == "-").map(|i| i + 6) else {
            continue;
        };
        let (Some(device), Some(root), Some(mount_point), Some(fstype), Some(options)) = (
            fields.get(2),
            fields.get(3),
            fields.get(4),
            fields.get(dash + 1),
            fields.get(dash + 3),
        ) else {
            continue;
        };
        let v2 = match *fstype {
            "cgroup" => false,
            "cgroup2" => true,
            _ => continue,
        };
        let mount = Mount {
            device: device.to_string(),
            root: unescape(root),
            mount_point: PathBuf::from(unescape(mount_point)),
            v2,
            options: options.split(',').map(str::to_string).collect(),
        };
        match mounts.iter_mut().find(|m| m.device == mount.device) {
            Some(seen) if mount.root.len() < seen.root.len() => *seen = mount,
            Some(_) => {}
            None => mounts.push(mount),
        }
    }
    mounts
}

/// mountinfo escapes space, tab, newline and backslash as three octal digits.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)))
            .and_then(|d| {
                d.iter()
                    .try_fold(0u8, |n, c| n.checked_mul(8)?.checked_add(c - b'0'))
            });
        match octal {
            Some(c) if b == b'\\' => {
                out.push(c);
                i += 4;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One line of /proc/PID/cgroup (cgroups(7)): a v1 hierarchy's controllers, or none for
/// cgroup2, and the process's cgroup in it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Membership {
    controllers: Vec<String>,
    v2: bool,
    path: String,
}

fn parse_proc_cgroup(text: &str) -> Vec<Membership> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let id = parts.next()?;
            let controllers = parts.next()?;
            let path = parts.next()?;
            Some(Membership {
                controllers: controllers
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect(),
                v2: id == "0" && controllers.is_empty(),
                path: path.to_string(),
            })
        })
        .collect()
}

/// The container's directory in every hierarchy mounted in `mountinfo`, for
/// `linux.cgroupsPath` `path`, where `own` is the creating process's /proc/self/cgroup.
fn resolve(path: &str, mountinfo: &str, own: &str) -> Result<Vec<Hierarchy>, String> {
    let relative = check_path(path)?;
    let memberships = parse_proc_cgroup(own);
    let known: BTreeSet<&str> = memberships
        .iter()
        .flat_map(|m| m.controllers.iter().map(String::as_str))
        .collect();
    let mut hierarchies = Vec::new();
    for mount in parse_mountinfo(mountinfo) {
        let (membership, version) = if mount.v2 {
            (memberships.iter().find(|m| m.v2), Version::V2)
        } else {
            // The controllers are the options that /proc/self/cgroup also names.
            let names: BTreeSet<&str> = mount
                .options
                .iter()
                .map(String::as_str)
                .filter(|o| known.contains(o))
                .collect();
            let membership = memberships.iter().find(|m| {
                !m.v2
                    && m.controllers
                        .iter()
                        .map(String::as_str)
                        .collect::<BTreeSet<_>>()
                        == names
            });
            let names = names.into_iter().map(str::to_string).collect();
            (membership, Version::V1(names))
        };
        let Some(membership) = membership else {
            log::debug!(
                "cgroup: {} is in no line of /proc/self/cgroup; skipped",
                mount.mount_point.display()
            );
            continue;
        };
        let dir = if path.starts_with('/') {
            mount.mount_point.join(&relative)
        } else {
            // Our own cgroup, as seen through this mount, which shows the hierarchy from
            // `root` down.
            let own = Path::new(&membership.path);
            let below = own.strip_prefix(&mount.root).map_err(|_| {
                format!(
                    "cgroup: our cgroup {} lies outside {} (mounted at {})",
                    membership.path,
                    mount.root,
                    mount.mount_point.display()
                )
            })?;
            mount.mount_point.join(below).join(&relative)
        };
        hierarchies.push(Hierarchy {
            mount: mount.mount_point,
            dir,
            version,
        });
    }
    if hierarchies.is_empty() {
        return Err("cgroup: no cgroup file system is mounted (see /proc/self/mountinfo)".into());
    }
    Ok(hierarchies)
}

/// `path` without its leading `/`, refusing what would leave the hierarchy or name it
/// whole: `..` (config.json is the caller's input) and a path that is only slashes.
fn check_path(path: &str) -> Result<PathBuf, String> {
    let mut out = PathBuf::new();
    for part in Path::new(path).components() {
        match part {
            Component::Normal(p) => out.push(p),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(format!("cgroup path {path:?}: '..' is not allowed"));
            }
        }
    }
    if out.as_os_str().is_empty() {
        return Err(format!(
            "cgroup path {path:?} names no cgroup below the root"
        ));
    }
    Ok(out)
}

/// Whether `c` has anything to set in `r`.
fn asks(c: Controller, r: &LinuxResources) -> bool {
    match c {
        Controller::Memory => r.memory().is_some_and(|m| {
            [m.limit(), m.reservation(), m.swap()]
                .into_iter()
                .any(|v| set(v).is_some())
                || m.swappiness().is_some()
                || m.disable_oom_killer() == Some(true)
        }),
        Controller::Cpu => r.cpu().as_ref().is_some_and(|c| {
            set(c.shares()).is_some() || set(c.quota()).is_some() || set(c.period()).is_some()
        }),
        Controller::Cpuset => r.cpu().as_ref().is_some_and(|c| {
            [c.cpus(), c.mems()]
                .into_iter()
                .any(|s| s.as_deref().is_some_and(|s| !s.is_empty()))
        }),
        Controller::Pids => r.pids().is_some_and(|p| p.limit() != 0),
        Controller::Io => r.block_io().as_ref().is_some_and(|b| {
            set(b.weight()).is_some() || throttles(b).any(|(_, list)| !list.is_empty())
        }),
        Controller::Hugetlb => r.hugepage_limits().as_ref().is_some_and(|l| !l.is_empty()),
    }
}

/// Fields of `linux.resources` that are set but that this runtime does not apply.
/// `devices` is not among them: it is ignored without a word, because the Sentry gives the
/// sandbox no host devices, so a device cgroup would guard nothing (and every caller sends
/// a device list).
fn ignored(r: &LinuxResources) -> Vec<&'static str> {
    let mut out = Vec::new();
    if let Some(m) = r.memory() {
        // Kernel memory limits are deprecated in v1 and absent in v2; runc ignores them too.
        if set(m.kernel()).is_some() {
            out.push("memory.kernel");
        }
        if set(m.kernel_tcp()).is_some() {
            out.push("memory.kernelTCP");
        }
    }
    if let Some(c) = r.cpu() {
        if set(c.realtime_runtime()).is_some() || set(c.realtime_period()).is_some() {
            out.push("cpu.realtimeRuntime/realtimePeriod");
        }
        if c.idle().is_some() {
            out.push("cpu.idle");
        }
        if c.burst().is_some() {
            out.push("cpu.burst");
        }
    }
    if let Some(b) = r.block_io() {
        if set(b.leaf_weight()).is_some() {
            out.push("blockIO.leafWeight");
        }
        if b.weight_device().as_ref().is_some_and(|d| !d.is_empty()) {
            out.push("blockIO.weightDevice");
        }
    }
    if r.network().is_some() {
        out.push("network");
    }
    if r.rdma().as_ref().is_some_and(|m| !m.is_empty()) {
        out.push("rdma");
    }
    if r.unified().as_ref().is_some_and(|m| !m.is_empty()) {
        out.push("unified");
    }
    out
}

/// A number as runc reads it: 0 is "not set".
fn set<T: Default + PartialEq>(v: Option<T>) -> Option<T> {
    v.filter(|v| *v != T::default())
}

/// A limit in cgroup2 syntax: negative is "max".
fn max_or(v: i64) -> String {
    if v < 0 {
        "max".to_string()
    } else {
        v.to_string()
    }
}

/// The four throttle lists of `blockIO` with their v1 file and v2 `io.max` key.
fn throttles(
    b: &oci_spec::runtime::LinuxBlockIo,
) -> impl Iterator<Item = ((&'static str, &'static str), &[LinuxThrottleDevice])> {
    [
        (
            ("blkio.throttle.read_bps_device", "rbps"),
            b.throttle_read_bps_device(),
        ),
        (
            ("blkio.throttle.write_bps_device", "wbps"),
            b.throttle_write_bps_device(),
        ),
        (
            ("blkio.throttle.read_iops_device", "riops"),
            b.throttle_read_iops_device(),
        ),
        (
            ("blkio.throttle.write_iops_device", "wiops"),
            b.throttle_write_iops_device(),
        ),
    ]
    .into_iter()
    .map(|(names, list)| (names, list.as_deref().unwrap_or_default()))
}

/// The file writes, in order, that set controller `c`'s share of `r` in a v1 (`v1`) or
/// cgroup2 directory. `peek` reads a file of that directory (None if it does not exist):
/// optional files (swap accounting, BFQ weights, page sizes) are used only if present, and
/// cgroup2's `cpu.max`, which holds quota and period together, keeps the half not asked for.
fn plan(
    c: Controller,
    v1: bool,
    r: &LinuxResources,
    peek: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>, String> {
    let mut w: Vec<(String, String)> = Vec::new();
    let mut put = |file: &str, value: String| w.push((file.to_string(), value));
    match c {
        Controller::Memory => {
            let Some(m) = r.memory() else {
                return Ok(Vec::new());
            };
            let limit = set(m.limit());
            let swap = set(m.swap());
            if v1 {
                // An unlimited memory limit needs an unlimited memory+swap limit, which
                // the kernel keeps at least as high.
                let swap = swap.or(limit.filter(|&l| l == -1));
                if let Some(l) = limit {
                    put("memory.limit_in_bytes", l.to_string());
                }
                if let Some(s) = swap {
                    if peek("memory.memsw.limit_in_bytes").is_some() {
                        put("memory.memsw.limit_in_bytes", s.to_string());
                    } else if set(m.swap()).is_some() {
                        log::warn!("cgroup: the kernel does not account swap (no memory.memsw.limit_in_bytes); the swap limit is ignored");
                    }
                }
                if let Some(v) = set(m.reservation()) {
                    put("memory.soft_limit_in_bytes", v.to_string());
                }
                if let Some(s) = m.swappiness() {
                    if s > 100 {
                        return Err(format!("cgroup: memory swappiness {s} is not in 0..100"));
                    }
                    put("memory.swappiness", s.to_string());
                }
                if m.disable_oom_killer() == Some(true) {
                    put("memory.oom_control", "1".to_string());
                }
            } else {
                if let Some(l) = limit {
                    put("memory.max", max_or(l));
                }
                if let Some(s) = swap {
                    // The spec's swap is memory+swap (v1's memsw); cgroup2 limits swap
                    // alone. Without a new memory limit, the current one counts.
                    let memory = limit.or_else(|| {
                        peek("memory.max").map(|v| v.trim().parse::<i64>().unwrap_or(-1))
                    });
                    let value = v2_swap(s, memory.unwrap_or(0))?;
                    if peek("memory.swap.max").is_some() {
                        put("memory.swap.max", value);
                    } else {
                        log::warn!("cgroup: the kernel does not account swap (no memory.swap.max); the swap limit is ignored");
                    }
                }
                if let Some(v) = set(m.reservation()) {
                    put("memory.low", max_or(v));
                }
                if m.swappiness().is_some() || m.disable_oom_killer() == Some(true) {
                    log::warn!("cgroup: cgroup2 has no swappiness or OOM-killer switch; ignored");
                }
            }
        }
        Controller::Cpu => {
            let Some(cpu) = r.cpu() else {
                return Ok(Vec::new());
            };
            let (quota, period) = (set(cpu.quota()), set(cpu.period()));
            if v1 {
                if let Some(s) = set(cpu.shares()) {
                    put("cpu.shares", s.to_string());
                }
                if let Some(p) = period {
                    put("cpu.cfs_period_us", p.to_string());
                }
                if let Some(q) = quota {
                    put("cpu.cfs_quota_us", q.to_string());
                }
            } else {
                if let Some(s) = set(cpu.shares()) {
                    put("cpu.weight", shares_to_weight(s).to_string());
                }
                if quota.is_some() || period.is_some() {
                    let current = peek("cpu.max").unwrap_or_default();
                    let mut current = current.split_whitespace();
                    let old_quota = current.next().unwrap_or("max").to_string();
                    let old_period = current.next().unwrap_or("100000").to_string();
                    let quota = quota.map_or(old_quota, max_or);
                    let period = period.map_or(old_period, |p| p.to_string());
                    put("cpu.max", format!("{quota} {period}"));
                }
            }
        }
        Controller::Cpuset => {
            let Some(cpu) = r.cpu() else {
                return Ok(Vec::new());
            };
            for (file, value) in [("cpuset.cpus", cpu.cpus()), ("cpuset.mems", cpu.mems())] {
                if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
                    put(file, v.to_string());
                }
            }
        }
        Controller::Pids => {
            if let Some(p) = r.pids().filter(|p| p.limit() != 0) {
                put("pids.max", max_or(p.limit()));
            }
        }
        Controller::Io => {
            let Some(b) = r.block_io() else {
                return Ok(Vec::new());
            };
            if let Some(weight) = set(b.weight()) {
                // The weight file belongs to the I/O scheduler: CFQ's blkio.weight (gone
                // since Linux 5.0) or BFQ's, which takes the same 10..1000 in v1 and
                // 1..1000 in v2; cgroup2's own io.weight takes 1..10000.
                let choices: [(&str, String); 2] = if v1 {
                    [
                        ("blkio.weight", weight.to_string()),
                        ("blkio.bfq.weight", weight.to_string()),
                    ]
                } else {
                    [
                        ("io.bfq.weight", weight.to_string()),
                        ("io.weight", blkio_to_io_weight(weight).to_string()),
                    ]
                };
                let Some((file, value)) = choices.iter().find(|(f, _)| peek(f).is_some()) else {
                    return Err(format!(
                        "cgroup: a block I/O weight was asked, but the kernel offers neither {} nor {} (the I/O scheduler has no weights)",
                        choices[0].0, choices[1].0
                    ));
                };
                put(file, value.clone());
            }
            for ((v1_file, key), list) in throttles(b) {
                for d in list {
                    let device = format!("{}:{}", d.major(), d.minor());
                    if v1 {
                        put(v1_file, format!("{device} {}", d.rate()));
                    } else {
                        put("io.max", format!("{device} {key}={}", d.rate()));
                    }
                }
            }
        }
        Controller::Hugetlb => {
            for l in r.hugepage_limits().as_deref().unwrap_or_default() {
                let size = l.page_size();
                // The size becomes part of a file name.
                if size.is_empty() || !size.chars().all(|c| c.is_ascii_alphanumeric()) {
                    return Err(format!(
                        "cgroup: hugepage size {size:?} is not like \"2MB\""
                    ));
                }
                let (file, value) = if v1 {
                    (
                        format!("hugetlb.{size}.limit_in_bytes"),
                        l.limit().to_string(),
                    )
                } else {
                    (format!("hugetlb.{size}.max"), max_or(l.limit()))
                };
                if peek(&file).is_none() {
                    return Err(format!(
                        "cgroup: the kernel offers no {size} huge pages (no {file})"
                    ));
                }
                put(&file, value);
            }
        }
    }
    Ok(w)
}

/// The spec's memory+swap limit `swap` as cgroup2's swap-only limit, given memory limit
/// `memory` (-1 unlimited, 0 unknown); runc's conversion.
fn v2_swap(swap: i64, memory: i64) -> Result<String, String> {
    if swap == -1 {
        return Ok("max".to_string());
    }
    if memory <= 0 {
        return Err(
            "cgroup: a swap limit needs a memory limit (the spec's swap is memory+swap)".into(),
        );
    }
    if swap < memory {
        return Err(format!(
            "cgroup: the memory+swap limit {swap} is below the memory limit {memory}"
        ));
    }
    Ok((swap - memory).to_string())
}

/// Writes `writes` into `dir` in order. The kernel checks some values against others in
/// the same cgroup (memory.limit_in_bytes may not exceed memory.memsw.limit_in_bytes, a
/// CFS quota must suit its period), so which order works depends on the current values;
/// a write refused with EINVAL is retried once after the others.
fn write_all(dir: &Path, writes: &[(String, String)]) -> Result<(), String> {
    let write = |file: &str, value: &str| {
        fs::write(dir.join(file), value).map_err(|e| {
            (
                e,
                format!("cgroup: writing {value} to {}", dir.join(file).display()),
            )
        })
    };
    let mut refused = Vec::new();
    for (file, value) in writes {
        match write(file, value) {
            Ok(()) => {}
            Err((e, _)) if e.raw_os_error() == Some(libc::EINVAL) => refused.push((file, value)),
            Err((e, what)) => return Err(format!("{what}: {e}")),
        }
    }
    for (file, value) in refused {
        write(file, value).map_err(|(e, what)| format!("{what}: {e}"))?;
    }
    Ok(())
}

/// Copies `file` from `parent` into `dir` if it is empty in `dir`.
fn copy_if_empty(parent: &Path, dir: &Path, file: &str) -> Result<(), String> {
    let read = |d: &Path| {
        fs::read_to_string(d.join(file))
            .map(|s| s.trim().to_string())
            .map_err(|e| format!("cgroup: reading {}: {e}", d.join(file).display()))
    };
    if !read(dir)?.is_empty() {
        return Ok(());
    }
    let value = read(parent)?;
    fs::write(dir.join(file), &value).map_err(|e| {
        format!(
            "cgroup: copying {value:?} into {}: {e}",
            dir.join(file).display()
        )
    })
}

/// Whether whitespace-separated `file` lists `word`; false if it cannot be read.
fn has_word(file: &Path, word: &str) -> bool {
    fs::read_to_string(file).is_ok_and(|t| t.split_whitespace().any(|w| w == word))
}

/// Removes cgroup directory `dir` and the child cgroups inside it, deepest first. rmdir
/// fails with EBUSY while tasks remain, which is retried until `deadline`.
fn remove_tree(dir: &Path, deadline: Instant) -> Result<(), String> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("reading {}: {e}", dir.display())),
    };
    for entry in entries {
        let entry = entry.map_err(|e| format!("reading {}: {e}", dir.display()))?;
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_tree(&entry.path(), deadline)?;
        }
    }
    let mut pause = Duration::from_millis(5);
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            Err(e) => {
                let left = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
                let left: Vec<&str> = left.split_whitespace().collect();
                return Err(if left.is_empty() {
                    format!("removing {}: {e}", dir.display())
                } else {
                    format!(
                        "removing {}: {e} (pids {} still in it)",
                        dir.display(),
                        left.join(" ")
                    )
                });
            }
        }
    }
}

fn read_proc(file: &str) -> Result<String, String> {
    fs::read_to_string(file).map_err(|e| format!("cgroup: reading {file}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::process::{Child, Command};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// This machine's layout, captured with `cat /proc/self/mountinfo /proc/self/cgroup`:
    /// v1 controllers each on their own hierarchy, and cgroup2 at /sys/fs/cgroup/unified
    /// holding only hugetlb; the memory cgroup is not the root.
    const HYBRID_MOUNTINFO: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const HYBRID_CGROUP: &str = "\
9:name=systemd:/
8:pids:/
7:blkio:/
6:freezer:/
5:devices:/
4:memory:/process_api/a553a79819138391f340530a1286fa1c
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/
";

    /// A systemd host on cgroup v1 only, with co-mounted controllers, options that are not
    /// controllers (xattr, clone_children), and a second, partial mount of the memory
    /// hierarchy as a container runtime makes.
    const V1_MOUNTINFO: &str = "\
25 18 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,xattr,name=systemd
40 30 0:27 /user.slice /mnt/my\\040mem rw,relatime - cgroup cgroup rw,memory
29 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,cpu,cpuacct
30 25 0:27 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,memory
31 25 0:28 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,net_cls,net_prio
32 25 0:29 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,cpuset,clone_children
";
    const V1_CGROUP: &str = "\
12:cpuset:/
11:net_cls,net_prio:/
5:memory:/user.slice
4:cpu,cpuacct:/user.slice
1:name=systemd:/user.slice/user-1000.slice/session-2.scope
0::/user.slice/user-1000.slice/session-2.scope
";

    /// A systemd host on cgroup v2 only.
    const V2_MOUNTINFO: &str = "\
35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";
    const V2_CGROUP: &str = "0::/user.slice/user-1000.slice/session-1.scope\n";

    fn v1(names: &[&str]) -> Version {
        Version::V1(names.iter().map(|n| n.to_string()).collect())
    }

    fn dirs_of(hierarchies: &[Hierarchy]) -> Vec<(&str, &Version)> {
        hierarchies
            .iter()
            .map(|h| (h.dir.to_str().unwrap_or("?"), &h.version))
            .collect()
    }

    #[test]
    fn cgroup_hybrid_layout_resolves_every_hierarchy() {
        let h = resolve("/runsc-rs/abc", HYBRID_MOUNTINFO, HYBRID_CGROUP).unwrap();
        assert_eq!(
            dirs_of(&h),
            vec![
                ("/sys/fs/cgroup/cpu/runsc-rs/abc", &v1(&["cpu"])),
                ("/sys/fs/cgroup/cpuacct/runsc-rs/abc", &v1(&["cpuacct"])),
                ("/sys/fs/cgroup/cpuset/runsc-rs/abc", &v1(&["cpuset"])),
                ("/sys/fs/cgroup/memory/runsc-rs/abc", &v1(&["memory"])),
                ("/sys/fs/cgroup/devices/runsc-rs/abc", &v1(&["devices"])),
                ("/sys/fs/cgroup/freezer/runsc-rs/abc", &v1(&["freezer"])),
                ("/sys/fs/cgroup/blkio/runsc-rs/abc", &v1(&["blkio"])),
                ("/sys/fs/cgroup/pids/runsc-rs/abc", &v1(&["pids"])),
                (
                    "/sys/fs/cgroup/systemd/runsc-rs/abc",
                    &v1(&["name=systemd"])
                ),
                ("/sys/fs/cgroup/unified/runsc-rs/abc", &Version::V2),
            ]
        );
        assert!(h.iter().all(|h| h.dir.starts_with(&h.mount)));
    }

    #[test]
    fn cgroup_relative_path_goes_under_our_own_cgroup_in_each_hierarchy() {
        let h = resolve("docker/abc", HYBRID_MOUNTINFO, HYBRID_CGROUP).unwrap();
        let dirs: Vec<&str> = dirs_of(&h).into_iter().map(|(d, _)| d).collect();
        assert!(dirs.contains(&"/sys/fs/cgroup/cpu/docker/abc"));
        assert!(dirs.contains(
            &"/sys/fs/cgroup/memory/process_api/a553a79819138391f340530a1286fa1c/docker/abc"
        ));
        assert!(dirs.contains(&"/sys/fs/cgroup/unified/docker/abc"));
    }

    #[test]
    fn cgroup_v1_comounted_controllers_and_partial_mounts() {
        let h = resolve("x", V1_MOUNTINFO, V1_CGROUP).unwrap();
        assert_eq!(
            dirs_of(&h),
            vec![
                (
                    "/sys/fs/cgroup/systemd/user.slice/user-1000.slice/session-2.scope/x",
                    &v1(&["name=systemd"])
                ),
                // The partial mount at /mnt/my mem shows less of the hierarchy than the
                // one at /sys/fs/cgroup/memory, which replaces it.
                ("/sys/fs/cgroup/memory/user.slice/x", &v1(&["memory"])),
                (
                    "/sys/fs/cgroup/cpu,cpuacct/user.slice/x",
                    &v1(&["cpu", "cpuacct"])
                ),
                (
                    "/sys/fs/cgroup/net_cls,net_prio/x",
                    &v1(&["net_cls", "net_prio"])
                ),
                ("/sys/fs/cgroup/cpuset/x", &v1(&["cpuset"])),
            ]
        );
    }

    #[test]
    fn cgroup_mount_of_a_subtree_is_used_from_its_root() {
        let mountinfo =
            "40 30 0:27 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
        let inside = "5:memory:/docker/abc/sub\n";
        let h = resolve("x", mountinfo, inside).unwrap();
        assert_eq!(h[0].dir, Path::new("/sys/fs/cgroup/memory/sub/x"));
        let h = resolve("/y", mountinfo, inside).unwrap();
        assert_eq!(h[0].dir, Path::new("/sys/fs/cgroup/memory/y"));
        let outside = "5:memory:/elsewhere\n";
        let e = resolve("x", mountinfo, outside).unwrap_err();
        assert!(e.contains("/elsewhere lies outside /docker/abc"), "{e}");
    }

    #[test]
    fn cgroup_v2_only() {
        let h = resolve("/runsc-rs/abc", V2_MOUNTINFO, V2_CGROUP).unwrap();
        assert_eq!(
            dirs_of(&h),
            vec![("/sys/fs/cgroup/runsc-rs/abc", &Version::V2)]
        );
        let h = resolve("abc", V2_MOUNTINFO, V2_CGROUP).unwrap();
        assert_eq!(
            h[0].dir,
            Path::new("/sys/fs/cgroup/user.slice/user-1000.slice/session-1.scope/abc")
        );
    }

    #[test]
    fn cgroup_no_mount_is_an_error() {
        let e = resolve("/x", "27 1 254:0 / / rw - ext4 /dev/vda rw\n", V2_CGROUP).unwrap_err();
        assert!(e.contains("no cgroup file system is mounted"), "{e}");
    }

    #[test]
    fn cgroup_paths_may_not_climb_or_name_the_root() {
        for bad in ["../x", "/a/../../b", "/", "", "//"] {
            assert!(check_path(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(check_path("/a//b/./c").unwrap(), Path::new("a/b/c"));
    }

    #[test]
    fn cgroup_mountinfo_octal_escapes() {
        assert_eq!(unescape("/mnt/my\\040mem"), "/mnt/my mem");
        assert_eq!(unescape("/a\\134b"), "/a\\b");
        assert_eq!(unescape("/trailing\\04"), "/trailing\\04");
        assert_eq!(unescape("/not\\999octal"), "/not\\999octal");
        assert_eq!(unescape("/sign\\+12"), "/sign\\+12");
        assert_eq!(unescape("/big\\777"), "/big\\777");
    }

    #[test]
    fn cgroup_systemd_paths() {
        let ok = [
            ("system.slice:docker:abc", "/system.slice/docker-abc.scope"),
            (
                "machine-libpod_pod_1.slice:libpod:x",
                "/machine.slice/machine-libpod_pod_1.slice/libpod-x.scope",
            ),
            (
                "a-b-c.slice:p:n",
                "/a.slice/a-b.slice/a-b-c.slice/p-n.scope",
            ),
            (":runc:id", "/system.slice/runc-id.scope"),
            ("-.slice::x", "/x.scope"),
            ("user.slice:p:sub.slice", "/user.slice/sub.slice"),
        ];
        for (input, want) in ok {
            assert_eq!(systemd_path(input).as_deref(), Ok(want), "{input}");
        }
        for bad in [
            "a:b",
            "a:b:c:d",
            "foo:p:n",
            "a--b.slice:p:n",
            "-a.slice:p:n",
            "x.slice:p:",
            "x.slice:p:a/b",
            "a/b.slice:p:n",
        ] {
            assert!(systemd_path(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn cgroup_shares_to_weight_as_runc() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(1), 1);
        assert_eq!(shares_to_weight(u64::MAX), 10_000);
        assert_eq!(blkio_to_io_weight(10), 1);
        assert_eq!(blkio_to_io_weight(500), 4950);
        assert_eq!(blkio_to_io_weight(1000), 10_000);
    }

    fn resources(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    /// plan() against a directory whose files are `files`.
    fn plan_with(
        c: Controller,
        v1: bool,
        json: &str,
        files: &[(&str, &str)],
    ) -> Result<Vec<(String, String)>, String> {
        let files: HashMap<String, String> = files
            .iter()
            .map(|(f, v)| (f.to_string(), v.to_string()))
            .collect();
        plan(c, v1, &resources(json), &|f: &str| files.get(f).cloned())
    }

    fn writes(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(f, v)| (f.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn cgroup_memory_v1() {
        let memsw = [("memory.memsw.limit_in_bytes", "9223372036854771712")];
        let json = r#"{"memory":{"limit":67108864,"reservation":33554432,"swap":134217728,"disableOOMKiller":false}}"#;
        assert_eq!(
            plan_with(Controller::Memory, true, json, &memsw),
            Ok(writes(&[
                ("memory.limit_in_bytes", "67108864"),
                ("memory.memsw.limit_in_bytes", "134217728"),
                ("memory.soft_limit_in_bytes", "33554432"),
            ]))
        );
        // Without swap accounting the swap limit is dropped, not an error.
        assert_eq!(
            plan_with(Controller::Memory, true, json, &[]),
            Ok(writes(&[
                ("memory.limit_in_bytes", "67108864"),
                ("memory.soft_limit_in_bytes", "33554432"),
            ]))
        );
        // Unlimited memory lifts memory+swap too.
        assert_eq!(
            plan_with(
                Controller::Memory,
                true,
                r#"{"memory":{"limit":-1}}"#,
                &memsw
            ),
            Ok(writes(&[
                ("memory.limit_in_bytes", "-1"),
                ("memory.memsw.limit_in_bytes", "-1"),
            ]))
        );
        // `docker update` sends zeros for what it leaves alone.
        let zeros = r#"{"memory":{"limit":0,"reservation":0,"swap":0},"cpu":{"shares":0,"quota":0,"period":0,"cpus":"","mems":""},"pids":{"limit":0},"blockIO":{"weight":0}}"#;
        for c in LIMITED {
            assert!(!asks(c, &resources(zeros)), "{c:?}");
            assert_eq!(plan_with(c, true, zeros, &memsw), Ok(vec![]), "{c:?}");
            assert_eq!(plan_with(c, false, zeros, &memsw), Ok(vec![]), "{c:?}");
        }
    }

    #[test]
    fn cgroup_memory_v2_swap_is_swap_alone() {
        let files = [("memory.swap.max", "max"), ("memory.max", "max")];
        let json = r#"{"memory":{"limit":67108864,"reservation":33554432,"swap":268435456}}"#;
        assert_eq!(
            plan_with(Controller::Memory, false, json, &files),
            Ok(writes(&[
                ("memory.max", "67108864"),
                ("memory.swap.max", "201326592"),
                ("memory.low", "33554432"),
            ]))
        );
        // A swap limit alone is taken relative to the memory limit already set.
        let current = [("memory.swap.max", "max"), ("memory.max", "67108864\n")];
        assert_eq!(
            plan_with(
                Controller::Memory,
                false,
                r#"{"memory":{"swap":100663296}}"#,
                &current
            ),
            Ok(writes(&[("memory.swap.max", "33554432")]))
        );
        let e = plan_with(
            Controller::Memory,
            false,
            r#"{"memory":{"swap":1000}}"#,
            &files,
        )
        .unwrap_err();
        assert!(e.contains("needs a memory limit"), "{e}");
        let e = plan_with(
            Controller::Memory,
            false,
            r#"{"memory":{"limit":2000,"swap":1000}}"#,
            &files,
        )
        .unwrap_err();
        assert!(e.contains("below the memory limit"), "{e}");
        assert_eq!(
            plan_with(
                Controller::Memory,
                false,
                r#"{"memory":{"limit":-1,"swap":-1}}"#,
                &files
            ),
            Ok(writes(&[("memory.max", "max"), ("memory.swap.max", "max")]))
        );
    }

    #[test]
    fn cgroup_cpu_v1_and_v2() {
        let json =
            r#"{"cpu":{"shares":1024,"quota":50000,"period":100000,"cpus":"0-1","mems":"0"}}"#;
        assert_eq!(
            plan_with(Controller::Cpu, true, json, &[]),
            Ok(writes(&[
                ("cpu.shares", "1024"),
                ("cpu.cfs_period_us", "100000"),
                ("cpu.cfs_quota_us", "50000"),
            ]))
        );
        assert_eq!(
            plan_with(Controller::Cpu, false, json, &[]),
            Ok(writes(&[("cpu.weight", "39"), ("cpu.max", "50000 100000")]))
        );
        let cpuset = writes(&[("cpuset.cpus", "0-1"), ("cpuset.mems", "0")]);
        assert_eq!(
            plan_with(Controller::Cpuset, true, json, &[]),
            Ok(cpuset.clone())
        );
        assert_eq!(plan_with(Controller::Cpuset, false, json, &[]), Ok(cpuset));
        // cpu.max holds both numbers: changing one keeps the other.
        let current = [("cpu.max", "20000 50000\n")];
        assert_eq!(
            plan_with(
                Controller::Cpu,
                false,
                r#"{"cpu":{"period":200000}}"#,
                &current
            ),
            Ok(writes(&[("cpu.max", "20000 200000")]))
        );
        assert_eq!(
            plan_with(Controller::Cpu, false, r#"{"cpu":{"quota":-1}}"#, &current),
            Ok(writes(&[("cpu.max", "max 50000")]))
        );
    }

    #[test]
    fn cgroup_pids_io_hugetlb() {
        for (limit, want) in [("50", "50"), ("-1", "max")] {
            let json = format!(r#"{{"pids":{{"limit":{limit}}}}}"#);
            assert_eq!(
                plan_with(Controller::Pids, true, &json, &[]),
                Ok(writes(&[("pids.max", want)]))
            );
        }

        let json = r#"{"blockIO":{"weight":500,"throttleReadBpsDevice":[{"major":8,"minor":0,"rate":1048576}]}}"#;
        assert_eq!(
            plan_with(Controller::Io, true, json, &[("blkio.bfq.weight", "100")]),
            Ok(writes(&[
                ("blkio.bfq.weight", "500"),
                ("blkio.throttle.read_bps_device", "8:0 1048576"),
            ]))
        );
        assert_eq!(
            plan_with(Controller::Io, false, json, &[("io.weight", "default 100")]),
            Ok(writes(&[
                ("io.weight", "4950"),
                ("io.max", "8:0 rbps=1048576")
            ]))
        );
        let e = plan_with(Controller::Io, true, json, &[]).unwrap_err();
        assert!(
            e.contains("neither blkio.weight nor blkio.bfq.weight"),
            "{e}"
        );

        let json = r#"{"hugepageLimits":[{"pageSize":"2MB","limit":4194304}]}"#;
        assert_eq!(
            plan_with(
                Controller::Hugetlb,
                false,
                json,
                &[("hugetlb.2MB.max", "max")]
            ),
            Ok(writes(&[("hugetlb.2MB.max", "4194304")]))
        );
        assert_eq!(
            plan_with(
                Controller::Hugetlb,
                true,
                json,
                &[("hugetlb.2MB.limit_in_bytes", "0")]
            ),
            Ok(writes(&[("hugetlb.2MB.limit_in_bytes", "4194304")]))
        );
        assert!(plan_with(Controller::Hugetlb, false, json, &[]).is_err());
        let sneaky = r#"{"hugepageLimits":[{"pageSize":"../x","limit":1}]}"#;
        assert!(plan_with(
            Controller::Hugetlb,
            false,
            sneaky,
            &[("hugetlb.../x.max", "")]
        )
        .is_err());
    }

    #[test]
    fn cgroup_limit_without_its_controller_is_an_error_naming_it() {
        let cgroup = Cgroup {
            path: "/t".into(),
            hierarchies: vec![
                Hierarchy {
                    mount: "/nonexistent/memory".into(),
                    dir: "/nonexistent/memory/t".into(),
                    version: v1(&["memory"]),
                },
                Hierarchy {
                    mount: "/nonexistent/unified".into(),
                    dir: "/nonexistent/unified/t".into(),
                    version: Version::V2,
                },
            ],
        };
        let e = cgroup
            .apply(&resources(r#"{"pids":{"limit":5}}"#))
            .unwrap_err();
        assert_eq!(
            e,
            "cgroup /t: linux.resources.pids is set, but no cgroup v1 hierarchy has the pids \
             controller and /nonexistent/unified/t/cgroup.controllers does not offer pids"
        );
        // Devices, and limits not asked, need no controller.
        let fine = r#"{"devices":[{"allow":false,"access":"rwm"}],"pids":{"limit":0}}"#;
        assert_eq!(cgroup.apply(&resources(fine)), Ok(()));
    }

    #[test]
    fn cgroup_state_round_trips_through_json() {
        let cgroup = Cgroup {
            path: "x".into(),
            hierarchies: resolve("x", HYBRID_MOUNTINFO, HYBRID_CGROUP).unwrap(),
        };
        let json = serde_json::to_string(&cgroup).unwrap();
        assert_eq!(serde_json::from_str::<Cgroup>(&json).unwrap(), cgroup);
    }

    // Tests against this machine's cgroupfs. They make cgroups named
    // /runsc-rs-test-<pid>-<n> and remove them even when they fail.

    /// A unique cgroup path for one test.
    fn test_path() -> String {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        format!(
            "/runsc-rs-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// Whether cgroups can be made here; prints why not.
    fn cgroupfs_writable() -> bool {
        let mounts = fs::read_to_string("/proc/self/mountinfo")
            .map(|t| parse_mountinfo(&t))
            .unwrap_or_default();
        let Some(mount) = mounts.first() else {
            eprintln!("skipped: no cgroup file system is mounted");
            return false;
        };
        let probe = mount.mount_point.join(test_path());
        match fs::create_dir(&probe) {
            Ok(()) => {
                let _ = fs::remove_dir(&probe);
                true
            }
            Err(e) => {
                eprintln!(
                    "skipped: cgroupfs is not writable ({}: {e})",
                    probe.display()
                );
                false
            }
        }
    }

    /// Kills its children and removes its cgroup when dropped, so a failing test leaves
    /// nothing behind.
    #[derive(Default)]
    struct Cleanup {
        cgroup: Option<Cgroup>,
        children: Vec<Child>,
    }

    impl Cleanup {
        fn kill_children(&mut self) {
            for mut child in self.children.drain(..) {
                let _ = child.kill();
                let _ = child.wait();
            }
        }

        fn cgroup(&self) -> &Cgroup {
            self.cgroup.as_ref().unwrap()
        }
    }

    impl Drop for Cleanup {
        fn drop(&mut self) {
            self.kill_children();
            if let Some(cgroup) = self.cgroup.take() {
                if let Err(e) = cgroup.destroy() {
                    eprintln!("cleanup: {e}");
                }
            }
        }
    }

    /// The contents of controller `c`'s file: `v1_file` in a v1 hierarchy, else `v2_file`.
    fn read(cgroup: &Cgroup, c: Controller, v1_file: &str, v2_file: &str) -> String {
        let (dir, v1) = cgroup.locate(c).unwrap();
        let file = dir.join(if v1 { v1_file } else { v2_file });
        fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
            .trim()
            .to_string()
    }

    fn sleeper() -> Child {
        Command::new("sleep").arg("100").spawn().unwrap()
    }

    #[test]
    fn cgroup_real_create_join_update_destroy() {
        if !cgroupfs_writable() {
            return;
        }
        let path = test_path();
        let mut t = Cleanup::default();
        let limits = r#"{"memory":{"limit":67108864},"pids":{"limit":50},"cpu":{"quota":50000,"period":100000}}"#;
        t.cgroup = Some(Cgroup::create(&path, Some(&resources(limits))).unwrap());
        let cg = t.cgroup();
        assert!(cg.dirs().count() > 0);
        for dir in cg.dirs() {
            assert!(dir.is_dir(), "{} missing", dir.display());
            assert!(dir.ends_with(path.trim_start_matches('/')));
        }
        let mem = |cg: &Cgroup| {
            read(
                cg,
                Controller::Memory,
                "memory.limit_in_bytes",
                "memory.max",
            )
        };
        let pids = |cg: &Cgroup| read(cg, Controller::Pids, "pids.max", "pids.max");
        assert_eq!(mem(cg), "67108864");
        assert_eq!(pids(cg), "50");
        let (_, cpu_v1) = cg.locate(Controller::Cpu).unwrap();
        if cpu_v1 {
            assert_eq!(read(cg, Controller::Cpu, "cpu.cfs_quota_us", ""), "50000");
            assert_eq!(read(cg, Controller::Cpu, "cpu.cfs_period_us", ""), "100000");
        } else {
            assert_eq!(read(cg, Controller::Cpu, "", "cpu.max"), "50000 100000");
        }

        t.children.push(sleeper());
        let pid = t.children[0].id() as i32;
        let cg = t.cgroup();
        cg.join(pid).unwrap();
        assert_eq!(cg.pids().unwrap(), vec![pid]);
        // The kernel agrees: the child's cgroup is ours in every hierarchy.
        let own = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        let lines: Vec<&str> = own.lines().collect();
        assert_eq!(lines.len(), cg.dirs().count(), "{own}");
        for line in lines {
            assert!(line.ends_with(&path), "{line} is not in {path}");
        }

        // Raising memory above the current memory+swap limit only works with memsw
        // written first; lowering needs the opposite order.
        let (mem_dir, mem_v1) = cg.locate(Controller::Memory).unwrap();
        let swap = mem_dir
            .join(if mem_v1 {
                "memory.memsw.limit_in_bytes"
            } else {
                "memory.swap.max"
            })
            .exists();
        let raise = r#"{"memory":{"limit":134217728,"swap":268435456},"pids":{"limit":100},"cpu":{"shares":512,"cpus":"0","mems":"0"}}"#;
        cg.update(&resources(raise)).unwrap();
        assert_eq!(mem(cg), "134217728");
        if swap {
            assert_eq!(
                read(
                    cg,
                    Controller::Memory,
                    "memory.memsw.limit_in_bytes",
                    "memory.swap.max"
                ),
                if mem_v1 { "268435456" } else { "134217728" }
            );
        }
        assert_eq!(pids(cg), "100");
        let shares = read(cg, Controller::Cpu, "cpu.shares", "cpu.weight");
        assert_eq!(shares, if cpu_v1 { "512" } else { "20" });
        assert_eq!(
            read(cg, Controller::Cpuset, "cpuset.cpus", "cpuset.cpus"),
            "0"
        );
        // What the update left out stays.
        if cpu_v1 {
            assert_eq!(read(cg, Controller::Cpu, "cpu.cfs_quota_us", ""), "50000");
        } else {
            assert_eq!(read(cg, Controller::Cpu, "", "cpu.max"), "50000 100000");
        }
        let higher = r#"{"memory":{"limit":536870912,"swap":1073741824}}"#;
        cg.update(&resources(higher)).unwrap();
        assert_eq!(mem(cg), "536870912");
        let lower = r#"{"memory":{"limit":67108864,"swap":67108864},"pids":{"limit":-1}}"#;
        cg.update(&resources(lower)).unwrap();
        assert_eq!(mem(cg), "67108864");
        assert_eq!(pids(cg), "max");

        t.kill_children();
        let dirs: Vec<PathBuf> = t.cgroup().dirs().map(Path::to_path_buf).collect();
        t.cgroup.take().unwrap().destroy().unwrap();
        for dir in dirs {
            assert!(!dir.exists(), "{} left behind", dir.display());
        }
    }

    #[test]
    fn cgroup_real_nested_path_copies_cpuset_and_destroy_is_idempotent() {
        if !cgroupfs_writable() {
            return;
        }
        let top = test_path();
        let mut t = Cleanup::default();
        // The outer level is made too and stays (as runc leaves /docker); remove it last.
        let outer = Cgroup::create(&top, None).unwrap();
        t.cgroup = Some(Cgroup::create(&format!("{top}/inner"), None).unwrap());
        let cg = t.cgroup();
        if let Some((dir, true)) = cg.locate(Controller::Cpuset) {
            let cpus = fs::read_to_string(dir.join("cpuset.cpus")).unwrap();
            assert!(
                !cpus.trim().is_empty(),
                "cpuset.cpus left empty in {}",
                dir.display()
            );
        }
        // A process can join a fresh cpuset only if it has CPUs and memory nodes.
        t.children.push(sleeper());
        let pid = t.children[0].id() as i32;
        t.cgroup().join(pid).unwrap();
        assert_eq!(t.cgroup().pids().unwrap(), vec![pid]);
        t.kill_children();
        let again = t.cgroup().clone();
        t.cgroup.take().unwrap().destroy().unwrap();
        again.destroy().unwrap();
        outer.destroy().unwrap();
    }

    #[test]
    fn cgroup_real_destroy_refuses_while_tasks_remain() {
        if !cgroupfs_writable() {
            return;
        }
        let mut t = Cleanup::default();
        t.cgroup = Some(Cgroup::create(&test_path(), None).unwrap());
        t.children.push(sleeper());
        let pid = t.children[0].id() as i32;
        t.cgroup().join(pid).unwrap();
        let e = t.cgroup().clone().destroy().unwrap_err();
        assert!(e.contains(&format!("pids {pid} still in it")), "{e}");
    }

    #[test]
    fn cgroup_real_freeze_and_thaw() {
        if !cgroupfs_writable() {
            return;
        }
        let mut t = Cleanup::default();
        t.cgroup = Some(Cgroup::create(&test_path(), None).unwrap());
        t.children.push(sleeper());
        let pid = t.children[0].id() as i32;
        let cg = t.cgroup();
        cg.join(pid).unwrap();
        cg.freeze().unwrap();
        let state = |cg: &Cgroup| {
            let v1 = cg
                .hierarchies
                .iter()
                .find(|h| matches!(&h.version, Version::V1(n) if n.iter().any(|n| n == "freezer")));
            match v1 {
                Some(h) => fs::read_to_string(h.dir.join("freezer.state")).unwrap(),
                None => {
                    let h = cg
                        .hierarchies
                        .iter()
                        .find(|h| h.version == Version::V2)
                        .unwrap();
                    fs::read_to_string(h.dir.join("cgroup.events")).unwrap()
                }
            }
        };
        let frozen = state(cg);
        assert!(
            frozen.contains("FROZEN") || frozen.contains("frozen 1"),
            "{frozen}"
        );
        cg.thaw().unwrap();
        let thawed = state(cg);
        assert!(
            thawed.contains("THAWED") || thawed.contains("frozen 0"),
            "{thawed}"
        );
    }

    /// Enables hugetlb in cgroup2's root for the test and withdraws it again if it was off.
    struct RestoreSubtreeControl(Option<PathBuf>);

    impl Drop for RestoreSubtreeControl {
        fn drop(&mut self) {
            if let Some(file) = &self.0 {
                let _ = fs::write(file, "-hugetlb");
            }
        }
    }

    /// On this machine hugetlb lives only in cgroup2: the limit must go there, after the
    /// controller is enabled down the path.
    #[test]
    fn cgroup_real_hugetlb_wherever_it_lives() {
        if !cgroupfs_writable() {
            return;
        }
        if !Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB").exists() {
            eprintln!("skipped: no 2 MB huge pages");
            return;
        }
        let mounts = parse_mountinfo(&fs::read_to_string("/proc/self/mountinfo").unwrap());
        let _restore = RestoreSubtreeControl(mounts.iter().find(|m| m.v2).and_then(|m| {
            let file = m.mount_point.join("cgroup.subtree_control");
            (!has_word(&file, "hugetlb")).then_some(file)
        }));
        let path = test_path();
        let limit = r#"{"hugepageLimits":[{"pageSize":"2MB","limit":4194304}]}"#;
        let mut t = Cleanup::default();
        match Cgroup::create(&path, Some(&resources(limit))) {
            Ok(cg) => t.cgroup = Some(cg),
            Err(e) => {
                // Only acceptable if no hierarchy offers hugetlb at all.
                assert!(e.contains("hugetlb"), "{e}");
                return;
            }
        }
        let got = read(
            t.cgroup(),
            Controller::Hugetlb,
            "hugetlb.2MB.limit_in_bytes",
            "hugetlb.2MB.max",
        );
        assert_eq!(got, "4194304");
    }
}
