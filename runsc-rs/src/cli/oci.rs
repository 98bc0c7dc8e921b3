//! The OCI runtime commands, with runc's flags and output formats (Docker, containerd and
//! podman parse them). Each parses its flags and calls `crate::container`.

use std::io::Write;
use std::os::fd::AsFd;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::container::control::ExecProcess;
use crate::container::{self, Error, Global};

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The bundle directory (holding config.json); the working directory by default.
    #[arg(long, short = 'b', default_value = ".")]
    bundle: PathBuf,
    /// Write the pid of the container's process (the sandbox) to this file.
    #[arg(long)]
    pid_file: Option<PathBuf>,
    /// A unix socket to send the master of the container's terminal to.
    #[arg(long)]
    console_socket: Option<PathBuf>,
    /// Pass this many descriptors after stdio (3, 4, ...) to the container's process.
    #[arg(long, default_value_t = 0)]
    preserve_fds: u32,
    /// Accepted for runc compatibility: the sandbox never pivots on the host.
    #[arg(long)]
    no_pivot: bool,
    /// Accepted for runc compatibility: the sandbox has no host keyring to share.
    #[arg(long)]
    no_new_keyring: bool,
    /// The container's id.
    id: String,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    create: CreateArgs,
    /// Return once the container has started, leaving it running.
    #[arg(long, short = 'd')]
    detach: bool,
    /// Keep the container's state after it exits (no delete).
    #[arg(long)]
    keep: bool,
}

#[derive(Debug, Args)]
pub struct IdArgs {
    id: String,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    /// Send the signal to every process of the container.
    #[arg(long, short = 'a')]
    all: bool,
    id: String,
    /// A signal name (KILL, SIGKILL) or number; SIGTERM by default.
    #[arg(default_value = "SIGTERM")]
    signal: String,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Kill the container first if it is still running.
    #[arg(long, short = 'f')]
    force: bool,
    id: String,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    #[arg(long, short = 'f', value_enum, default_value = "table")]
    format: Format,
    id: String,
    /// ps(1) options, which runc passes to the host's ps: not supported here.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    ps_options: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[arg(long, short = 'f', value_enum, default_value = "table")]
    format: Format,
    /// Print only the ids.
    #[arg(long, short = 'q')]
    quiet: bool,
}

#[derive(Debug, Args)]
pub struct SpecArgs {
    /// Where to write config.json.
    #[arg(long, short = 'b', default_value = ".")]
    bundle: PathBuf,
    /// Accepted for runc compatibility: the same spec serves (see `spec::default_spec`).
    #[arg(long)]
    rootless: bool,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// A JSON file with the process to run (config.json's `process`).
    #[arg(long, short = 'p')]
    process: Option<PathBuf>,
    /// Return once the process has started.
    #[arg(long, short = 'd')]
    detach: bool,
    /// Write the pid of the process that ends as the exec'd process does to this file.
    #[arg(long)]
    pid_file: Option<PathBuf>,
    /// Give the process a terminal.
    #[arg(long, short = 't')]
    tty: bool,
    #[arg(long)]
    console_socket: Option<PathBuf>,
    #[arg(long)]
    cwd: Option<String>,
    /// Set an environment variable (KEY=VALUE); may be repeated.
    #[arg(long, short = 'e')]
    env: Vec<String>,
    /// UID[:GID]
    #[arg(long, short = 'u')]
    user: Option<String>,
    #[arg(long, short = 'g')]
    additional_gids: Vec<u32>,
    /// Add a capability; may be repeated.
    #[arg(long, short = 'c')]
    cap: Vec<String>,
    #[arg(long)]
    no_new_privs: bool,
    #[arg(long, default_value_t = 0)]
    preserve_fds: u32,
    /// Accepted for runc compatibility (no host labels apply inside the sandbox).
    #[arg(long)]
    process_label: Option<String>,
    #[arg(long)]
    apparmor: Option<String>,
    #[arg(long)]
    ignore_paused: bool,
    /// Internal: report the start on this descriptor (the detached half of `--detach`).
    #[arg(long, hide = true)]
    started_fd: Option<i32>,
    id: String,
    /// The command and its arguments, unless --process.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// Prints `e` for the user; with a log file it is logged there too (clients show the last
/// error of runc's log).
pub fn fail(global: &Global, e: impl std::fmt::Display) -> i32 {
    if global.log.is_some() {
        log::error!("{e}");
    }
    eprintln!("runsc-rs: {e}");
    1
}

fn done(global: &Global, result: Result<(), Error>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(e) => fail(global, e),
    }
}

pub fn create(global: &Global, args: CreateArgs) -> i32 {
    let options = create_options(&args);
    done(
        global,
        container::create(global, &args.id, &options).map(drop),
    )
}

fn create_options(args: &CreateArgs) -> container::CreateOptions {
    container::CreateOptions {
        bundle: args.bundle.clone(),
        pid_file: args.pid_file.clone(),
        console_socket: args.console_socket.clone(),
        preserve_fds: args.preserve_fds,
    }
}

pub fn start(global: &Global, args: IdArgs) -> i32 {
    done(global, container::start(global, &args.id))
}

pub fn state(global: &Global, args: IdArgs) -> i32 {
    match container::state(global, &args.id) {
        Ok(state) => print_json(&state.oci_json()),
        Err(e) => fail(global, e),
    }
}

fn print_json(value: &serde_json::Value) -> i32 {
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    0
}

pub fn kill(global: &Global, args: KillArgs) -> i32 {
    let sig = match parse_signal(&args.signal) {
        Ok(sig) => sig,
        Err(e) => return fail(global, e),
    };
    done(global, container::kill(global, &args.id, sig, args.all))
}

/// A signal by number or name, with or without "SIG", any case (runc's rule).
pub fn parse_signal(text: &str) -> Result<i32, String> {
    if let Ok(n) = text.parse::<i32>() {
        return if (1..=64).contains(&n) {
            Ok(n)
        } else {
            Err(format!("{text} is not a signal number"))
        };
    }
    let upper = text.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .map(|s| s as i32)
        .map_err(|_| format!("unknown signal {text:?}"))
}

pub fn delete(global: &Global, args: DeleteArgs) -> i32 {
    done(global, container::delete(global, &args.id, args.force))
}

pub fn pause(global: &Global, args: IdArgs, pause: bool) -> i32 {
    done(global, container::pause(global, &args.id, pause))
}

pub fn ps(global: &Global, args: PsArgs) -> i32 {
    if !args.ps_options.is_empty() {
        return fail(
            global,
            "ps options are not supported: the sandbox's processes are not host processes",
        );
    }
    let list = match container::ps(global, &args.id) {
        Ok(list) => list,
        Err(e) => return fail(global, e),
    };
    match args.format {
        // runc prints the pids; these are the sandbox's own (its processes are not the
        // host's), as gVisor's runsc does.
        Format::Json => print_json(&serde_json::json!(list
            .iter()
            .map(|p| p.pid)
            .collect::<Vec<_>>())),
        Format::Table => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(
                out,
                "{:<8} {:>6} {:>6} {:>3} {:>8} {:>8} CMD",
                "UID", "PID", "PPID", "C", "STIME", "TIME"
            );
            for p in &list {
                let _ = writeln!(
                    out,
                    "{:<8} {:>6} {:>6} {:>3} {:>8} {:>8} {}",
                    p.uid,
                    p.pid,
                    p.ppid,
                    0,
                    format_duration(p.started),
                    format_duration(p.cpu),
                    p.cmd
                );
            }
            0
        }
    }
}

/// Seconds as ps's [[dd-]hh:]mm:ss.
fn format_duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    format!("{h:02}:{m:02}:{s:02}")
}

pub fn list(global: &Global, args: ListArgs) -> i32 {
    let root = global.root();
    let states: Vec<_> = root
        .ids()
        .into_iter()
        .filter_map(|id| root.load(&id).ok())
        .collect();
    let mut out = std::io::stdout().lock();
    if args.quiet {
        for s in &states {
            let _ = writeln!(out, "{}", s.id);
        }
        return 0;
    }
    match args.format {
        Format::Json => {
            let all: Vec<_> = states.iter().map(|s| s.oci_json()).collect();
            let _ = writeln!(out, "{}", serde_json::Value::Array(all));
        }
        Format::Table => {
            let _ = writeln!(
                out,
                "{:<12} {:<8} {:<10} {:<40} {:<32} OWNER",
                "ID", "PID", "STATUS", "BUNDLE", "CREATED"
            );
            for s in &states {
                let pid = if s.status == container::state::Status::Stopped {
                    0
                } else {
                    s.pid
                };
                let _ = writeln!(
                    out,
                    "{:<12} {:<8} {:<10} {:<40} {:<32} root",
                    s.id,
                    pid,
                    s.status.to_string(),
                    s.bundle.display(),
                    s.created
                );
            }
        }
    }
    0
}

pub fn spec(global: &Global, args: SpecArgs) -> i32 {
    let _ = args.rootless;
    let path = args.bundle.join("config.json");
    if path.exists() {
        return fail(
            global,
            format!("{}: exists; remove it first", path.display()),
        );
    }
    let text = serde_json::to_string_pretty(&container::spec::default_spec()).unwrap_or_default();
    match std::fs::write(&path, text + "\n") {
        Ok(()) => 0,
        Err(e) => fail(global, format!("writing {}: {e}", path.display())),
    }
}

/// runc's `features` output: what this runtime supports.
pub fn features() -> i32 {
    let caps: Vec<String> = CAPABILITIES.iter().map(|c| format!("CAP_{c}")).collect();
    print_json(&serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": container::OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": ["bind", "rbind", "ro", "rw", "nosuid", "suid", "nodev", "dev", "noexec", "exec", "rprivate", "private", "mode", "size", "newinstance", "ptmxmode", "gid", "uid"],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "uts"],
            "capabilities": caps,
            "cgroup": { "v1": true, "v2": true, "systemd": false, "systemdUser": false },
            "seccomp": { "enabled": false },
            "apparmor": { "enabled": false },
            "selinux": { "enabled": false }
        },
        "annotations": { "io.github.runsc-rs.sandbox": "one Sentry per container" }
    }))
}

const CAPABILITIES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

pub fn exec(global: &Global, args: ExecArgs) -> i32 {
    if args.detach {
        return exec_detached(global);
    }
    let process = match exec_process(global, &args) {
        Ok(p) => p,
        Err(e) => return fail(global, e),
    };
    let mut started_fd = match args.started_fd.map(platform::fd::take_inherited) {
        Some(Ok(fd)) => Some(std::fs::File::from(fd)),
        Some(Err(e)) => return fail(global, format!("the start descriptor: {e}")),
        None => None,
    };
    // The process's stdio: ours, or a new terminal whose master goes to the client, or
    // without --console-socket stays here, joined to our own streams (runc's `exec -t`).
    let mut terminal = None;
    let mut own_master = None;
    if process.terminal {
        let size = process
            .console_size
            .or_else(|| crate::container::console::size(std::io::stdin().as_fd()));
        let (master, slave) = match crate::container::console::open_pty(size) {
            Ok(pty) => pty,
            Err(e) => return fail(global, e),
        };
        match &args.console_socket {
            Some(socket) => {
                if let Err(e) = crate::container::console::send_master(socket, &master) {
                    return fail(global, e);
                }
            }
            None => own_master = Some(master),
        }
        terminal = Some(slave);
    }
    let (stdin, stdout, stderr) = (std::io::stdin(), std::io::stdout(), std::io::stderr());
    let stdio: Vec<std::os::fd::BorrowedFd<'_>> = match &terminal {
        Some(slave) => vec![slave.as_fd()],
        None => vec![stdin.as_fd(), stdout.as_fd(), stderr.as_fd()],
    };
    let pid_file = args.pid_file.clone();
    let mut report = Ok(());
    if terminal.is_some() {
        // Only the resizing thread takes SIGWINCH.
        let mut set = nix::sys::signal::SigSet::empty();
        set.add(nix::sys::signal::Signal::SIGWINCH);
        let _ = set.thread_block();
    }
    let mut joined = None;
    let ended = container::exec(global, &args.id, &process, &stdio, |pid| {
        match (&own_master, &terminal) {
            (Some(master), _) => joined = join_terminal(global, &args.id, pid, master),
            (None, Some(slave)) => follow_size(global, &args.id, pid, slave),
            (None, None) => {}
        }
        if let Some(path) = &pid_file {
            report =
                container::state::write_atomically(path, std::process::id().to_string().as_bytes());
        }
        if let Some(mut fd) = started_fd.take() {
            let _ = fd.write_all(b"started");
        }
        if own_master.is_none() {
            let _ = container::release_stdio();
        }
    });
    if let Some((raw, output)) = joined {
        // The rest of what the process printed is still on its way from the terminal.
        if let Some(done) = output {
            let _ = done.recv_timeout(std::time::Duration::from_secs(2));
        }
        drop(raw);
    }
    if let Err(e) = report {
        return fail(global, e);
    }
    match ended {
        Ok(container::Ended::Exited(code)) => code,
        Ok(container::Ended::Signaled(sig)) => platform::process::die_of(sig),
        Err(e) => {
            if let Some(mut fd) = started_fd.take() {
                let _ = fd.write_all(e.to_string().as_bytes());
            }
            fail(global, e)
        }
    }
}

/// An exec's terminal joined to our own: our terminal made raw (until dropped), and the
/// end of the copy of its output.
type Joined = (
    Option<crate::terminal::HostTerminal>,
    Option<std::sync::mpsc::Receiver<()>>,
);

/// Joins the exec's terminal (`master`) to our own streams, our terminal made raw, and
/// passes our terminal's size changes on to it and to the sandbox.
fn join_terminal(
    global: &Global,
    id: &str,
    pid: i32,
    master: &std::os::fd::OwnedFd,
) -> Option<Joined> {
    let raw = crate::terminal::HostTerminal::make_raw(std::io::stdin().as_fd())
        .ok()
        .map(|(raw, _)| raw);
    let output = master.try_clone().ok().and_then(proxy_terminal);
    let master = master.try_clone().ok()?;
    resize_on_winch(global, id, pid, move || {
        let (rows, cols) = container::console::size(std::io::stdin().as_fd())?;
        container::console::set_size(&master, rows, cols);
        Some((rows, cols))
    });
    Some((raw, output))
}

/// Passes on size changes of the exec's terminal (made by the client on the master) to the
/// sandbox: the terminal becomes this process's controlling one, so the host tells it
/// with SIGWINCH.
fn follow_size(global: &Global, id: &str, pid: i32, slave: &std::os::fd::OwnedFd) {
    use crate::container::console;
    if let Err(e) = console::become_controlling(slave) {
        log::warn!("{e}: the exec's terminal will not follow size changes");
        return;
    }
    let Ok(slave) = slave.try_clone() else { return };
    resize_on_winch(global, id, pid, move || console::size(&slave));
}

/// Starts the thread that takes SIGWINCH (blocked in every other thread) and tells the
/// sandbox process `pid`'s terminal the size `read_size` gives then.
fn resize_on_winch(
    global: &Global,
    id: &str,
    pid: i32,
    read_size: impl Fn() -> Option<(u16, u16)> + Send + 'static,
) {
    let (global, id) = (global.clone(), id.to_string());
    let _ = std::thread::Builder::new()
        .name("resize".into())
        .spawn(move || {
            let mut set = nix::sys::signal::SigSet::empty();
            set.add(nix::sys::signal::Signal::SIGWINCH);
            while set.wait().is_ok() {
                if let Some((rows, cols)) = read_size() {
                    let _ = container::resize(&global, &id, pid, rows, cols);
                }
            }
        });
}

/// `exec --detach`: the same exec, run by a child that outlives this process, which
/// returns once the child reports the process started (or why it did not). The child
/// writes its own pid to `--pid-file`: it ends as the exec'd process does, so the client
/// (a subreaper) waits for it as for runc's.
fn exec_detached(global: &Global) -> i32 {
    let (read, write) = match rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC) {
        Ok(p) => p,
        Err(e) => return fail(global, format!("making a pipe: {e}")),
    };
    let inherited = rustix::io::fcntl_dupfd_cloexec(&write, 3)
        .and_then(|fd| rustix::io::fcntl_setfd(&fd, rustix::io::FdFlags::empty()).map(|()| fd));
    let inherited = match inherited {
        Ok(fd) => fd,
        Err(e) => return fail(global, format!("duplicating a descriptor: {e}")),
    };
    drop(write);
    use std::os::fd::AsRawFd;
    let mut argv: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    argv.retain(|a| a != "--detach" && a != "-d");
    let Some(at) = argv.iter().position(|a| a == "exec") else {
        return fail(global, "exec --detach: cannot find the exec command line");
    };
    argv.insert(
        at + 1,
        format!("--started-fd={}", inherited.as_raw_fd()).into(),
    );
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe"));
    let child = std::process::Command::new(exe).args(&argv).spawn();
    drop(inherited);
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return fail(global, format!("starting exec: {e}")),
    };
    let mut report = String::new();
    use std::io::Read;
    let _ = std::fs::File::from(read).read_to_string(&mut report);
    if report == "started" {
        return 0;
    }
    let _ = child.wait();
    if report.is_empty() {
        report = "exec ended before the process started".into();
    }
    // The child has printed and logged its error already.
    let _ = global;
    eprintln!("runsc-rs: {report}");
    1
}

/// The process an exec runs: `--process`'s file, or the container's own process with the
/// command line and flags over it (runc's rule).
fn exec_process(global: &Global, args: &ExecArgs) -> Result<ExecProcess, Error> {
    let state = container::state(global, &args.id)?;
    let mut process = match &args.process {
        Some(path) => {
            let text = std::fs::read(path)
                .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
            let oci: oci_spec::runtime::Process = serde_json::from_slice(&text)
                .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
            container::spec::exec_process(&oci)?
        }
        None => {
            if args.command.is_empty() {
                return Err(Error::Config("exec needs a command or --process".into()));
            }
            let spec = container::spec::load(&state.bundle)?;
            let mut process = container::spec::exec_process(container::spec::process(&spec)?)?;
            process.args = args.command.clone();
            process.terminal = args.tty;
            process
        }
    };
    if let Some(cwd) = &args.cwd {
        process.cwd = cwd.clone();
    }
    process.env.extend(args.env.iter().cloned());
    if let Some(user) = &args.user {
        let (uid, gid) = user.split_once(':').unwrap_or((user, "0"));
        let parse = |s: &str| {
            s.parse::<u32>()
                .map_err(|_| Error::Config(format!("--user {user}: UID[:GID] are numbers here")))
        };
        process.uid = parse(uid)?;
        process.gid = parse(gid)?;
    }
    if !args.additional_gids.is_empty() {
        process.groups = args.additional_gids.clone();
    }
    if args.no_new_privs {
        process.no_new_privs = true;
    }
    if args.tty {
        process.terminal = true;
    }
    if !args.cap.is_empty() {
        let mut caps = process.capabilities.clone().unwrap_or_default();
        let add = |set: &Option<oci_spec::runtime::Capabilities>| -> Result<oci_spec::runtime::Capabilities, Error> {
            let mut set = set.clone().unwrap_or_default();
            for name in &args.cap {
                let cap = name
                    .parse::<oci_spec::runtime::Capability>()
                    .map_err(|_| Error::Config(format!("unknown capability {name:?}")))?;
                set.insert(cap);
            }
            Ok(set)
        };
        caps.set_bounding(Some(add(caps.bounding())?));
        caps.set_effective(Some(add(caps.effective())?));
        caps.set_permitted(Some(add(caps.permitted())?));
        process.capabilities = Some(caps);
    }
    if args.preserve_fds > 0 {
        return Err(Error::Config("exec --preserve-fds is not supported".into()));
    }
    Ok(process)
}

/// `run`: create, start, and unless `--detach` wait for the container's process, then
/// delete it; exits as the process did. In the foreground, signals runsc-rs gets go to the
/// container's process, and a container with a terminal but no `--console-socket` gets
/// one whose other end is runsc-rs's own standard streams (runc's behaviour).
pub fn run(global: &Global, args: RunArgs) -> i32 {
    let mut options = create_options(&args.create);
    let id = &args.create.id;
    let wants_terminal = container::spec::load(&options.bundle)
        .ok()
        .and_then(|spec| spec.process().as_ref().and_then(|p| p.terminal()))
        .unwrap_or(false);
    let own_console = if wants_terminal && options.console_socket.is_none() && !args.detach {
        match container::console::ConsoleSocket::new() {
            Ok(socket) => {
                options.console_socket = Some(socket.path.clone());
                Some(socket)
            }
            Err(e) => return fail(global, e),
        }
    } else {
        None
    };
    // Only the forwarding thread takes these, from before any other thread exists.
    let forwarded = forwarded_signals();
    if !args.detach {
        let _ = forwarded.thread_block();
    }
    let receiver = own_console.map(|socket| std::thread::spawn(move || socket.receive()));
    let state = match container::create(global, id, &options) {
        Ok(state) => state,
        Err(e) => return fail(global, e),
    };
    let master = match receiver.map(|r| r.join()) {
        Some(Ok(Ok(master))) => Some(master),
        Some(Ok(Err(e))) => {
            let _ = container::delete(global, id, true);
            return fail(global, e);
        }
        Some(Err(_)) => {
            let _ = container::delete(global, id, true);
            return fail(global, "receiving the terminal failed");
        }
        None => None,
    };
    if let Err(e) = container::start(global, id) {
        let _ = container::delete(global, id, true);
        return fail(global, e);
    }
    if args.detach {
        return 0;
    }
    let raw = master.as_ref().map(|master| {
        let stdin = std::io::stdin();
        if let Some((rows, cols)) = container::console::size(stdin.as_fd()) {
            container::console::set_size(master, rows, cols);
        }
        let raw = crate::terminal::HostTerminal::make_raw(stdin.as_fd()).ok();
        let output = master.try_clone().ok().and_then(proxy_terminal);
        (raw, output)
    });
    forward(
        global,
        id,
        forwarded,
        master.as_ref().and_then(|m| m.try_clone().ok()),
    );
    // The sandbox is this process's child: its exit status is the container's.
    let status = wait_child(state.pid);
    if let Some((raw, output)) = raw {
        // What the container printed last is still on its way from the terminal: the
        // copy ends when the terminal reports that nobody has it open any more.
        if let Some(done) = output {
            let _ = done.recv_timeout(std::time::Duration::from_secs(2));
        }
        drop(raw);
    }
    if !args.keep {
        if let Err(e) = container::delete(global, id, true) {
            fail(global, e);
        }
    }
    match status {
        container::Ended::Exited(code) => code,
        container::Ended::Signaled(sig) => 128 + sig,
    }
}

/// The signals `run` passes on to the container (SIGWINCH resizes its terminal).
fn forwarded_signals() -> nix::sys::signal::SigSet {
    use nix::sys::signal::Signal::*;
    let mut set = nix::sys::signal::SigSet::empty();
    for sig in [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH] {
        set.add(sig);
    }
    set
}

/// Starts the thread that sends the signals runsc-rs gets to the container's process,
/// and gives its terminal (`master`) runsc-rs's terminal's new size on SIGWINCH.
fn forward(
    global: &Global,
    id: &str,
    set: nix::sys::signal::SigSet,
    master: Option<std::os::fd::OwnedFd>,
) {
    let (global, id) = (global.clone(), id.to_string());
    let _ = std::thread::Builder::new()
        .name("forward".into())
        .spawn(move || loop {
            let Ok(sig) = set.wait() else { continue };
            if sig == nix::sys::signal::Signal::SIGWINCH {
                if let (Some(master), Some((rows, cols))) =
                    (&master, container::console::size(std::io::stdin().as_fd()))
                {
                    container::console::set_size(master, rows, cols);
                }
                continue;
            }
            let _ = container::kill(&global, &id, sig as i32, false);
        });
}

/// Copies runsc-rs's stdin to the container's terminal and the terminal's output to
/// runsc-rs's stdout, each on a thread of its own, until either side ends; the channel
/// says when the output has all been copied.
fn proxy_terminal(master: std::os::fd::OwnedFd) -> Option<std::sync::mpsc::Receiver<()>> {
    let output = master.try_clone().ok()?;
    let mut to_terminal = std::fs::File::from(master);
    let _ = std::thread::Builder::new()
        .name("terminal-in".into())
        .spawn(move || {
            let _ = std::io::copy(&mut std::io::stdin().lock(), &mut to_terminal);
        });
    let mut from_terminal = std::fs::File::from(output);
    let (done, finished) = std::sync::mpsc::channel();
    let _ = std::thread::Builder::new()
        .name("terminal-out".into())
        .spawn(move || {
            // The terminal reports EIO once its last user has closed it: the end.
            let _ = std::io::copy(&mut from_terminal, &mut std::io::stdout().lock());
            let _ = done.send(());
        });
    Some(finished)
}

fn wait_child(pid: i32) -> container::Ended {
    use nix::sys::wait::{waitpid, WaitStatus};
    loop {
        match waitpid(nix::unistd::Pid::from_raw(pid), None) {
            Ok(WaitStatus::Exited(_, code)) => return container::Ended::Exited(code),
            Ok(WaitStatus::Signaled(_, sig, _)) => return container::Ended::Signaled(sig as i32),
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return container::Ended::Exited(255),
        }
    }
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// A JSON file with linux.resources ("-" for standard input); the flags override it.
    #[arg(long, short = 'r')]
    resources: Option<PathBuf>,
    /// Memory limit, in bytes or with a k, m or g suffix.
    #[arg(long)]
    memory: Option<String>,
    #[arg(long)]
    memory_reservation: Option<String>,
    /// Memory plus swap limit.
    #[arg(long)]
    memory_swap: Option<String>,
    #[arg(long)]
    cpu_shares: Option<u64>,
    #[arg(long)]
    cpu_quota: Option<i64>,
    #[arg(long)]
    cpu_period: Option<u64>,
    #[arg(long)]
    cpuset_cpus: Option<String>,
    #[arg(long)]
    cpuset_mems: Option<String>,
    #[arg(long)]
    pids_limit: Option<i64>,
    #[arg(long)]
    blkio_weight: Option<u16>,
    id: String,
}

pub fn update(global: &Global, args: UpdateArgs) -> i32 {
    match update_resources(&args) {
        Ok(resources) => done(global, container::update(global, &args.id, &resources)),
        Err(e) => fail(global, e),
    }
}

/// The resources `update` asks for: the file's, with the flags over them.
fn update_resources(args: &UpdateArgs) -> Result<oci_spec::runtime::LinuxResources, String> {
    let mut value = match &args.resources {
        Some(path) => {
            let text = if path.as_os_str() == "-" {
                let mut text = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                    .map_err(|e| format!("reading the resources: {e}"))?;
                text
            } else {
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?
            };
            serde_json::from_str::<serde_json::Value>(&text)
                .map_err(|e| format!("the resources are not JSON: {e}"))?
        }
        None => serde_json::json!({}),
    };
    let mut set = |group: &str, key: &str, v: serde_json::Value| {
        if !value[group].is_object() {
            value[group] = serde_json::json!({});
        }
        value[group][key] = v;
    };
    if let Some(m) = &args.memory {
        set("memory", "limit", bytes(m)?.into());
    }
    if let Some(m) = &args.memory_reservation {
        set("memory", "reservation", bytes(m)?.into());
    }
    if let Some(m) = &args.memory_swap {
        set("memory", "swap", bytes(m)?.into());
    }
    if let Some(v) = args.cpu_shares {
        set("cpu", "shares", v.into());
    }
    if let Some(v) = args.cpu_quota {
        set("cpu", "quota", v.into());
    }
    if let Some(v) = args.cpu_period {
        set("cpu", "period", v.into());
    }
    if let Some(v) = &args.cpuset_cpus {
        set("cpu", "cpus", v.clone().into());
    }
    if let Some(v) = &args.cpuset_mems {
        set("cpu", "mems", v.clone().into());
    }
    if let Some(v) = args.pids_limit {
        set("pids", "limit", v.into());
    }
    if let Some(v) = args.blkio_weight {
        set("blockIO", "weight", v.into());
    }
    serde_json::from_value(value).map_err(|e| format!("the resources make no sense: {e}"))
}

/// A byte count with an optional k, m or g suffix (binary units, as runc's flags); -1 is
/// "no limit".
fn bytes(text: &str) -> Result<i64, String> {
    let t = text.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (digits, unit) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    let n: i64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size in bytes"))?;
    if n == -1 {
        return Ok(-1);
    }
    n.checked_mul(unit)
        .filter(|&b| b >= 0)
        .ok_or_else(|| format!("{text:?} is not a size in bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_name_or_number_in_any_case() {
        assert_eq!(parse_signal("9"), Ok(9));
        assert_eq!(parse_signal("KILL"), Ok(9));
        assert_eq!(parse_signal("sigterm"), Ok(15));
        assert_eq!(parse_signal("SIGUSR1"), Ok(10));
        assert!(parse_signal("0").is_err());
        assert!(parse_signal("NOPE").is_err());
    }

    #[test]
    fn sizes_take_binary_suffixes() {
        assert_eq!(bytes("64m"), Ok(64 << 20));
        assert_eq!(bytes("1G"), Ok(1 << 30));
        assert_eq!(bytes("512"), Ok(512));
        assert_eq!(bytes("-1"), Ok(-1));
        assert!(bytes("lots").is_err());
    }
}
