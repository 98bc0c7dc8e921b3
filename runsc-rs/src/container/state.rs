//! A container's state directory: `<root>/<id>/` holds `state.json` (what [`State`] says)
//! and the sandbox's control socket. Commands that change a container hold an exclusive
//! `flock` on the directory, so that two `runsc-rs` invocations on one container take
//! turns; readers need none, as `state.json` is replaced whole (written aside, renamed).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use super::Error;

/// Where a container is in its life: the OCI runtime spec's states, plus `paused` as runc
/// has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// `create` is setting the sandbox up.
    Creating,
    /// The sandbox runs, the container's process is loaded and waits for `start`.
    Created,
    Running,
    Paused,
    /// The container's process has exited (or the sandbox is gone).
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// What runsc-rs remembers of a container between commands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub id: String,
    /// The bundle directory (absolute).
    pub bundle: PathBuf,
    /// The root file system (absolute).
    pub rootfs: PathBuf,
    /// The status last recorded; [`State::refresh`] turns it into `stopped` once the
    /// sandbox is gone.
    pub status: Status,
    /// The sandbox's host process (the Sentry), whose exit is the container's; 0 before it
    /// exists.
    pub pid: i32,
    /// Its start time in clock ticks since the host booted (/proc/PID/stat field 22), so
    /// that a reused pid is not taken for it.
    pub pid_start: u64,
    /// When `create` made it, RFC 3339.
    pub created: String,
    pub annotations: BTreeMap<String, String>,
    /// The cgroup its sandbox's host processes are in.
    pub cgroup: Option<super::cgroup::Cgroup>,
    /// Hooks to run once it is deleted (config.json's `hooks.poststop`), kept from
    /// create-time so that a changed bundle does not change them.
    pub poststop: Vec<oci_spec::runtime::Hook>,
}

impl State {
    /// The state as `runc state` prints it (the OCI state, plus runc's `rootfs`, `created`
    /// and `owner`).
    pub fn oci_json(&self) -> serde_json::Value {
        let mut state = serde_json::json!({
            "ociVersion": super::OCI_VERSION,
            "id": self.id,
            "pid": if self.status == Status::Stopped { 0 } else { self.pid },
            "status": self.status.to_string(),
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
            "owner": "",
        });
        if !self.annotations.is_empty() {
            state["annotations"] = serde_json::json!(self.annotations);
        }
        state
    }

    /// Marks the container stopped if its sandbox process has exited (or its pid now
    /// belongs to another process).
    pub fn refresh(&mut self) {
        let live = matches!(
            self.status,
            Status::Created | Status::Running | Status::Paused
        );
        if live && !process_alive(self.pid, self.pid_start) {
            self.status = Status::Stopped;
        }
    }
}

/// Start time (ticks since boot) and state letter of host process `pid`.
fn process_stat(pid: i32) -> Option<(u64, char)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields count from the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    // Field 22 overall is the 20th after the name.
    let start = fields.get(19)?.parse().ok()?;
    Some((start, state))
}

/// The start time of host process `pid`, for [`State::pid_start`].
pub fn process_start(pid: i32) -> Option<u64> {
    process_stat(pid).map(|(start, _)| start)
}

/// Whether `pid` is still the process that started at `start` and has not exited (a
/// zombie has: its parent just has not reaped it).
pub fn process_alive(pid: i32, start: u64) -> bool {
    pid > 0
        && matches!(process_stat(pid), Some((s, state)) if s == start && state != 'Z' && state != 'X')
}

/// The state directory of every container (`--root`).
#[derive(Debug, Clone)]
pub struct Root {
    pub dir: PathBuf,
}

impl Root {
    pub fn new(dir: &Path) -> Root {
        Root {
            dir: dir.to_path_buf(),
        }
    }

    /// The directory of container `id`.
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Makes the state directory of a new container, locked: fails if `id` is taken.
    pub fn create(&self, id: &str) -> Result<Locked, Error> {
        validate_id(id)?;
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| Error::Host(format!("creating {}: {e}", self.dir.display())))?;
        let dir = self.container_dir(id);
        match std::fs::DirBuilder::new().mode(0o711).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::Exists(id.to_string()))
            }
            Err(e) => return Err(Error::Host(format!("creating {}: {e}", dir.display()))),
        }
        Locked::lock(dir, id)
    }

    /// Locks container `id`'s directory and reads its state.
    pub fn lock(&self, id: &str) -> Result<(Locked, State), Error> {
        validate_id(id)?;
        let locked = Locked::lock(self.container_dir(id), id)?;
        let state = locked.load()?;
        Ok((locked, state))
    }

    /// Reads container `id`'s state without locking it, refreshed.
    pub fn load(&self, id: &str) -> Result<State, Error> {
        validate_id(id)?;
        let mut state = read_state(&self.container_dir(id), id)?;
        state.refresh();
        Ok(state)
    }

    /// The ids of every container under the root.
    pub fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().join(STATE_FILE).exists())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        ids.sort();
        ids
    }
}

use std::os::unix::fs::DirBuilderExt;

const STATE_FILE: &str = "state.json";

/// A container's state directory, held under an exclusive lock until dropped.
pub struct Locked {
    pub dir: PathBuf,
    id: String,
    _lock: Flock<File>,
}

impl Locked {
    fn lock(dir: PathBuf, id: &str) -> Result<Locked, Error> {
        let file = File::open(&dir).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::NotFound(id.to_string()),
            _ => Error::Host(format!("opening {}: {e}", dir.display())),
        })?;
        let lock = Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, e)| Error::Host(format!("locking {}: {e}", dir.display())))?;
        Ok(Locked {
            dir,
            id: id.to_string(),
            _lock: lock,
        })
    }

    /// The state as last saved, refreshed.
    pub fn load(&self) -> Result<State, Error> {
        let mut state = read_state(&self.dir, &self.id)?;
        state.refresh();
        Ok(state)
    }

    /// Saves `state`, replacing the file whole.
    pub fn save(&self, state: &State) -> Result<(), Error> {
        let bytes = serde_json::to_vec(state).map_err(|e| Error::Host(e.to_string()))?;
        write_atomically(&self.dir.join(STATE_FILE), &bytes)
    }

    /// The control socket of the container's sandbox.
    pub fn socket(&self) -> PathBuf {
        self.dir.join(super::control::SOCKET)
    }

    /// Removes the directory and everything in it.
    pub fn remove(self) -> Result<(), Error> {
        std::fs::remove_dir_all(&self.dir)
            .or_else(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Ok(()),
                _ => Err(e),
            })
            .map_err(|e| Error::Host(format!("removing {}: {e}", self.dir.display())))
    }
}

fn read_state(dir: &Path, id: &str) -> Result<State, Error> {
    let path = dir.join(STATE_FILE);
    let bytes = std::fs::read(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::NotFound(id.to_string()),
        _ => Error::Host(format!("reading {}: {e}", path.display())),
    })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::Host(format!("{} is damaged: {e}", path.display())))
}

/// Writes `bytes` to `path` by way of a file beside it and a rename, so that a reader sees
/// the old contents or the new, never part of either (runc writes its pid file so).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let fail = |e: std::io::Error| Error::Host(format!("writing {}: {e}", path.display()));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let aside = path.with_file_name(format!(".{name}.{}", std::process::id()));
    let mut file = File::create(&aside).map_err(fail)?;
    file.write_all(bytes).map_err(fail)?;
    std::fs::rename(&aside, path).map_err(fail)
}

/// Container ids are names in the state directory: runc's rule (`^[\w+-\.]+$`), which
/// keeps out `/`, `..` tricks and empty names.
pub fn validate_id(id: &str) -> Result<(), Error> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 1024
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+-.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidId(id.to_string()))
    }
}

/// Now as RFC 3339 with nanoseconds, as runc's `created`.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_nanos(SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_names_without_slashes_or_dots_alone() {
        assert!(validate_id("abc-1_2.3+x").is_ok());
        for bad in ["", ".", "..", "a/b", "../x", "a b", "é"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn our_own_process_is_alive_and_a_wrong_start_time_is_not() {
        let me = std::process::id() as i32;
        let start = process_start(me).expect("own /proc/self/stat");
        assert!(process_alive(me, start));
        assert!(!process_alive(me, start + 1));
        assert!(!process_alive(0, 0));
    }

    #[test]
    fn a_state_survives_a_save_and_a_load_and_prints_as_runc() {
        let root = std::env::temp_dir().join(format!("runsc-rs-state-{}", std::process::id()));
        let root = Root::new(&root);
        let locked = root.create("c1").expect("create");
        let state = State {
            id: "c1".into(),
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            status: Status::Created,
            pid: std::process::id() as i32,
            pid_start: process_start(std::process::id() as i32).unwrap_or(0),
            created: now_rfc3339(),
            annotations: BTreeMap::from([("a".to_string(), "b".to_string())]),
            cgroup: None,
            poststop: vec![],
        };
        locked.save(&state).expect("save");
        assert!(matches!(root.create("c1"), Err(Error::Exists(_))));
        drop(locked);
        let loaded = root.load("c1").expect("load");
        assert_eq!(loaded.status, Status::Created);
        let json = loaded.oci_json();
        assert_eq!(json["status"], "created");
        assert_eq!(json["annotations"]["a"], "b");
        assert_eq!(root.ids(), vec!["c1".to_string()]);
        let (locked, _) = root.lock("c1").expect("lock");
        locked.remove().expect("remove");
        assert!(matches!(root.load("c1"), Err(Error::NotFound(_))));
        let _ = std::fs::remove_dir(&root.dir);
    }
}
