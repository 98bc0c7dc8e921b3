//! The OCI container life cycle as a library (youki's split): `cli/` parses flags and calls
//! this module; this module owns a container's state directory, its state machine
//! (creating → created → running ⇄ paused → stopped) and the sandbox behind it.
//!
//! A container is one sandbox: `create` starts a hidden `runsc-rs boot` process that sets
//! up the Sentry and its gofers for the bundle, loads the container's process and waits;
//! its pid goes into `--pid-file`, and it exits with the container's exit status. Later
//! commands reach it over a unix socket in the state directory (`control.rs`).

pub mod boot;
pub mod cgroup;
pub mod console;
pub mod control;
pub mod hooks;
pub mod mounts;
pub mod spec;
pub mod state;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use control::{Connection, ExecProcess, Reply, Request};
use state::{Root, State, Status};

/// The OCI runtime spec version runsc-rs implements (the one runc 1.1 reports).
pub const OCI_VERSION: &str = "1.0.2-dev";

/// Why a container command failed: one line for the user (and for the client, which
/// shows runc's last error line from `--log`).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("container \"{0}\" does not exist")]
    NotFound(String),
    #[error("container with id exists: {0}")]
    Exists(String),
    #[error("invalid container id {0:?}: ids are made of letters, digits and _+-.")]
    InvalidId(String),
    /// The container is not in a state the command applies to.
    #[error("{0}")]
    State(String),
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Hook(String),
    /// The sandbox refused or failed a request.
    #[error("{0}")]
    Sandbox(String),
    #[error("{0}")]
    Host(String),
}

/// Global options every command gets (runc's global flags), passed on to the processes
/// runsc-rs starts for a container.
#[derive(Debug, Clone)]
pub struct Global {
    pub root: PathBuf,
    pub log: Option<PathBuf>,
    pub log_json: bool,
    pub debug: bool,
    pub systemd_cgroup: bool,
    pub platform: crate::sandbox::PlatformName,
}

impl Global {
    pub fn root(&self) -> Root {
        Root::new(&self.root)
    }

    /// These options as command-line flags, for a runsc-rs process started on their behalf.
    pub fn flags(&self) -> Vec<std::ffi::OsString> {
        let mut flags = vec!["--root".into(), self.root.clone().into_os_string()];
        if let Some(log) = &self.log {
            flags.push("--log".into());
            flags.push(log.clone().into_os_string());
        }
        if self.log_json {
            flags.push("--log-format".into());
            flags.push("json".into());
        }
        if self.debug {
            flags.push("--debug".into());
        }
        if self.systemd_cgroup {
            flags.push("--systemd-cgroup".into());
        }
        if let crate::sandbox::PlatformName::Kvm = self.platform {
            flags.push("--platform".into());
            flags.push("kvm".into());
        }
        flags
    }
}

/// `create`'s options.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub preserve_fds: u32,
}

/// Makes the container: its state directory and its sandbox, with the process loaded and
/// waiting for `start`. Returns its state (status `created`).
pub fn create(global: &Global, id: &str, options: &CreateOptions) -> Result<State, Error> {
    let bundle = absolute(&options.bundle)?;
    let spec = spec::load(&bundle)?;
    spec::check_supported(&spec)?;
    let rootfs = spec::rootfs(&spec, &bundle)?;
    let process = spec::exec_process(spec::process(&spec)?)?;
    if process.terminal && options.console_socket.is_none() {
        return Err(Error::Config(
            "cannot allocate a terminal if runsc-rs will detach without setting --console-socket"
                .into(),
        ));
    }
    let root = global.root();
    let locked = root.create(id)?;
    let hooks = spec.hooks().clone().unwrap_or_default();
    let mut state = State {
        id: id.to_string(),
        bundle: bundle.clone(),
        rootfs,
        status: Status::Creating,
        pid: 0,
        pid_start: 0,
        created: state::now_rfc3339(),
        annotations: spec
            .annotations()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        cgroup: None,
        poststop: hooks.poststop().clone().unwrap_or_default(),
    };
    let made = (|| {
        // The sandbox's host processes (the Sentry, its stubs and gofers) live in the
        // container's cgroup: `boot` joins it before it starts any of them.
        let path = cgroup_path(global, id, &spec)?;
        let resources = spec.linux().as_ref().and_then(|l| l.resources().as_ref());
        state.cgroup = Some(cgroup::Cgroup::create(&path, resources).map_err(Error::Host)?);
        locked.save(&state)?;
        let pid = boot::spawn(global, id, &bundle, options)?;
        state.pid = pid;
        state.pid_start = state::process_start(pid).unwrap_or(0);
        locked.save(&state)?;
        // runc runs these once the container's namespaces exist, before its process starts:
        // the sandbox is that point here.
        let json = state.oci_json();
        hooks::run(
            "prestart",
            hooks.prestart().as_deref().unwrap_or(&[]),
            &json,
        )?;
        hooks::run(
            "createRuntime",
            hooks.create_runtime().as_deref().unwrap_or(&[]),
            &json,
        )?;
        hooks::run(
            "createContainer",
            hooks.create_container().as_deref().unwrap_or(&[]),
            &json,
        )?;
        state.status = Status::Created;
        locked.save(&state)?;
        if let Some(pid_file) = &options.pid_file {
            state::write_atomically(pid_file, state.pid.to_string().as_bytes())?;
        }
        Ok(())
    })();
    if let Err(e) = made {
        stop_sandbox(&state);
        remove_cgroup(&state);
        let _ = locked.remove();
        return Err(e);
    }
    Ok(state)
}

/// The container's cgroup: `linux.cgroupsPath` (systemd's "slice:prefix:name" form with
/// `--systemd-cgroup`), or `/runsc-rs/<id>` if it names none.
fn cgroup_path(global: &Global, id: &str, spec: &oci_spec::runtime::Spec) -> Result<String, Error> {
    let given = spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().as_ref())
        .map(|p| p.to_string_lossy().into_owned())
        .filter(|p| !p.is_empty());
    match given {
        Some(path) if global.systemd_cgroup => cgroup::systemd_path(&path).map_err(Error::Config),
        Some(path) => Ok(path),
        None => Ok(format!("/runsc-rs/{id}")),
    }
}

/// Removes the container's cgroup, killing what is left in it first: nothing of the
/// sandbox may outlive `delete`.
fn remove_cgroup(state: &State) {
    let Some(cgroup) = state.cgroup.clone() else {
        return;
    };
    for pid in cgroup.pids().unwrap_or_default() {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    if let Err(e) = cgroup.destroy() {
        log::warn!("{e}");
    }
}

/// Changes the container's resource limits (`update`).
pub fn update(
    global: &Global,
    id: &str,
    resources: &oci_spec::runtime::LinuxResources,
) -> Result<(), Error> {
    let (_locked, state) = global.root().lock(id)?;
    if state.status == Status::Stopped {
        return Err(Error::State("container not running".into()));
    }
    let cgroup = state
        .cgroup
        .as_ref()
        .ok_or_else(|| Error::State("the container has no cgroup".into()))?;
    cgroup.update(resources).map_err(Error::Host)
}

/// Starts the container's process.
pub fn start(global: &Global, id: &str) -> Result<(), Error> {
    let (locked, mut state) = global.root().lock(id)?;
    match state.status {
        Status::Created => {}
        Status::Stopped => {
            return Err(Error::State(
                "cannot start a container that has stopped".into(),
            ))
        }
        Status::Creating => {
            return Err(Error::State(
                "cannot start a container that is still being created".into(),
            ))
        }
        Status::Running | Status::Paused => {
            return Err(Error::State(
                "cannot start an already running container".into(),
            ))
        }
    }
    let hooks = spec::load(&state.bundle)
        .ok()
        .and_then(|spec| spec.hooks().clone())
        .unwrap_or_default();
    let json = state.oci_json();
    hooks::run(
        "startContainer",
        hooks.start_container().as_deref().unwrap_or(&[]),
        &json,
    )?;
    expect_ok(request(&locked.socket(), &Request::Start))?;
    state.status = Status::Running;
    locked.save(&state)?;
    hooks::run_warning(
        "poststart",
        hooks.poststart().as_deref().unwrap_or(&[]),
        &state.oci_json(),
    );
    Ok(())
}

/// The container's state, refreshed.
pub fn state(global: &Global, id: &str) -> Result<State, Error> {
    global.root().load(id)
}

/// Sends `sig` to the container's process, or with `all` to every process in it.
pub fn kill(global: &Global, id: &str, sig: i32, all: bool) -> Result<(), Error> {
    let (state, socket) = live(global, id)?;
    match request(&socket, &Request::Signal { sig, all }) {
        Ok(reply) => expect_ok(Ok(reply)),
        // A sandbox that no longer answers still dies of SIGKILL from the host.
        Err(_) if sig == libc::SIGKILL => {
            stop_sandbox(&state);
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Removes the container: its sandbox (which must have stopped, unless `force`), its
/// cgroup and its state.
pub fn delete(global: &Global, id: &str, force: bool) -> Result<(), Error> {
    let (locked, state) = match global.root().lock(id) {
        // runc's `delete --force` of a container that is already gone succeeds: shims call
        // it to make sure.
        Err(Error::NotFound(_)) if force => return Ok(()),
        other => other?,
    };
    match state.status {
        Status::Stopped | Status::Creating | Status::Created => {}
        Status::Running | Status::Paused if force => {}
        status => {
            return Err(Error::State(format!(
                "cannot delete container {id} that is not stopped: {status}"
            )))
        }
    }
    stop_sandbox(&state);
    remove_cgroup(&state);
    let mut json = state.oci_json();
    json["status"] = "stopped".into();
    hooks::run_warning("poststop", &state.poststop, &json);
    locked.remove()
}

/// Kills the container's sandbox from the host and waits (a little) until it is gone: its
/// gofers and stubs die with it.
fn stop_sandbox(state: &State) {
    if !state::process_alive(state.pid, state.pid_start) {
        return;
    }
    let pid = nix::unistd::Pid::from_raw(state.pid);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    let deadline = Instant::now() + Duration::from_secs(5);
    while state::process_alive(state.pid, state.pid_start) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// `pause` (true) or `resume` (false).
pub fn pause(global: &Global, id: &str, pause: bool) -> Result<(), Error> {
    let (locked, mut state) = global.root().lock(id)?;
    let (from, to, request_) = if pause {
        (Status::Running, Status::Paused, Request::Pause)
    } else {
        (Status::Paused, Status::Running, Request::Resume)
    };
    if state.status != from {
        return Err(Error::State(format!("container not {from}")));
    }
    expect_ok(request(&locked.socket(), &request_))?;
    state.status = to;
    locked.save(&state)
}

/// The container's processes.
pub fn ps(global: &Global, id: &str) -> Result<Vec<control::Process>, Error> {
    let (_, socket) = live(global, id)?;
    match request(&socket, &Request::Ps)? {
        Reply::Processes(list) => Ok(list),
        other => Err(unexpected(other)),
    }
}

/// How an exec'd process ended.
#[derive(Debug, Clone, Copy)]
pub enum Ended {
    Exited(i32),
    Signaled(i32),
}

/// Runs `process` in the running container with descriptors `stdio` (0, 1, 2, or the one
/// terminal); `started` is told its pid once it runs. Returns how it ended.
pub fn exec(
    global: &Global,
    id: &str,
    process: &ExecProcess,
    stdio: &[std::os::fd::BorrowedFd<'_>],
    started: impl FnOnce(i32),
) -> Result<Ended, Error> {
    let root = global.root();
    let state = root.load(id)?;
    if state.status != Status::Running {
        return Err(Error::State(format!(
            "cannot exec in a container that is {}",
            state.status
        )));
    }
    let socket = root.container_dir(id).join(control::SOCKET);
    let connection = Connection::connect(&socket).map_err(Error::Sandbox)?;
    connection
        .send(&Request::Exec(Box::new(process.clone())), stdio)
        .map_err(Error::Sandbox)?;
    let mut started = Some(started);
    loop {
        match connection.recv::<Reply>().map_err(Error::Sandbox)? {
            Some((Reply::Started { pid }, _)) => {
                if let Some(started) = started.take() {
                    started(pid);
                }
            }
            Some((Reply::Exited { code, signal }, _)) => {
                return Ok(if signal != 0 {
                    Ended::Signaled(signal)
                } else {
                    Ended::Exited(code)
                })
            }
            Some((Reply::Error(e), _)) => return Err(Error::Sandbox(e)),
            Some((other, _)) => return Err(unexpected(other)),
            // The sandbox ended (its init exited), and the process with it, as SIGKILL.
            None => return Ok(Ended::Signaled(libc::SIGKILL)),
        }
    }
}

/// Tells the sandbox a terminal changed size.
pub fn resize(global: &Global, id: &str, pid: i32, rows: u16, cols: u16) -> Result<(), Error> {
    let socket = global.root().container_dir(id).join(control::SOCKET);
    expect_ok(request(&socket, &Request::Resize { pid, rows, cols }))
}

/// The state of container `id` and its sandbox's control socket, if the sandbox runs.
fn live(global: &Global, id: &str) -> Result<(State, PathBuf), Error> {
    let root = global.root();
    let state = root.load(id)?;
    if !matches!(
        state.status,
        Status::Created | Status::Running | Status::Paused
    ) {
        return Err(Error::State("container not running".into()));
    }
    Ok((state, root.container_dir(id).join(control::SOCKET)))
}

/// Points this process's standard streams at /dev/null: once a container's process has
/// its own copies of them, a runsc-rs process that kept them would keep a client that
/// reads them to their end (containerd's, for `create` of a container with a terminal)
/// waiting for this process's exit.
pub fn release_stdio() -> Result<(), String> {
    let null = std::fs::File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| format!("/dev/null: {e}"))?;
    let dup = |r: nix::Result<()>| r.map_err(|e| format!("dup2: {e}"));
    dup(nix::unistd::dup2_stdin(&null))?;
    dup(nix::unistd::dup2_stdout(&null))?;
    dup(nix::unistd::dup2_stderr(&null))
}

fn request(socket: &Path, request: &Request) -> Result<Reply, Error> {
    Connection::call(socket, request).map_err(Error::Sandbox)
}

fn expect_ok(reply: Result<Reply, Error>) -> Result<(), Error> {
    match reply? {
        Reply::Ok => Ok(()),
        Reply::Error(e) => Err(Error::Sandbox(e)),
        other => Err(unexpected(other)),
    }
}

fn unexpected(reply: Reply) -> Error {
    Error::Sandbox(format!("the sandbox replied out of turn: {reply:?}"))
}

/// `path` made absolute against the working directory.
fn absolute(path: &Path) -> Result<PathBuf, Error> {
    std::path::absolute(path).map_err(|e| Error::Host(format!("{}: {e}", path.display())))
}
