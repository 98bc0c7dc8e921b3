//! The sandbox of one container: `create` starts `runsc-rs boot`, which sets up the Sentry
//! and its gofers for the bundle, reports on an inherited pipe whether that worked, then
//! serves the control socket. Its process is the one in `--pid-file`: it exits as the
//! container's process does, with its status (killed by the same signal if it was).

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use sentry::Kernel;

use super::control::{Connection, ExecProcess, Listener, Process, Reply, Request};
use super::{spec, Error, Global};

/// Starts the boot process of container `id` and waits until its sandbox is ready (or has
/// failed, whose one-line reason is the error). Returns its pid.
pub fn spawn(
    global: &Global,
    id: &str,
    bundle: &Path,
    options: &super::CreateOptions,
) -> Result<i32, Error> {
    let host = |what: &str, e: &dyn std::fmt::Display| Error::Host(format!("{what}: {e}"));
    let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| host("making a pipe", &e))?;
    // Above the descriptors the container keeps (`--preserve-fds`), and inherited.
    let lowest = 3 + options.preserve_fds as i32;
    let ready = rustix::io::fcntl_dupfd_cloexec(&write, lowest)
        .map_err(|e| host("duplicating a descriptor", &e))?;
    rustix::io::fcntl_setfd(&ready, rustix::io::FdFlags::empty()).map_err(|e| host("fcntl", &e))?;
    drop(write);
    let mut args: Vec<OsString> = global.flags();
    args.push("boot".into());
    args.push("--bundle".into());
    args.push(bundle.as_os_str().to_owned());
    args.push("--ready-fd".into());
    args.push(ready.as_raw_fd().to_string().into());
    if let Some(socket) = &options.console_socket {
        args.push("--console-socket".into());
        args.push(socket.as_os_str().to_owned());
    }
    if options.preserve_fds > 0 {
        args.push("--preserve-fds".into());
        args.push(options.preserve_fds.to_string().into());
    }
    args.push(id.into());
    let mut child = Command::new(self_exe())
        .args(&args)
        .spawn()
        .map_err(|e| host("starting the sandbox", &e))?;
    drop(ready);
    let mut report = String::new();
    let _ = std::fs::File::from(read).read_to_string(&mut report);
    if report == READY {
        return Ok(child.id() as i32);
    }
    let status = child.wait();
    let report = report.trim();
    Err(Error::Sandbox(if report.is_empty() {
        format!(
            "the sandbox exited while starting ({})",
            status.map_or_else(|e| e.to_string(), |s| s.to_string())
        )
    } else {
        report.to_string()
    }))
}

/// This program, for re-running as the boot process.
fn self_exe() -> PathBuf {
    std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe"))
}

/// What the boot process writes on the ready pipe when the sandbox is up.
const READY: &str = "ready";

/// `runsc-rs boot`'s arguments.
#[derive(Debug, clap::Args)]
pub struct BootArgs {
    #[arg(long)]
    bundle: PathBuf,
    /// The pipe to report readiness (or the reason for failure) on.
    #[arg(long)]
    ready_fd: i32,
    #[arg(long)]
    console_socket: Option<PathBuf>,
    #[arg(long, default_value_t = 0)]
    preserve_fds: u32,
    pub id: String,
}

/// The boot process: sets the sandbox up, reports, serves; returns only on failure to set
/// up (the status to exit with), else exits as the container's process does.
pub fn main(global: &Global, args: BootArgs) -> i32 {
    let mut ready = match platform::fd::take_inherited(args.ready_fd) {
        Ok(fd) => std::fs::File::from(fd),
        Err(e) => {
            log::error!("the ready descriptor {}: {e}", args.ready_fd);
            return 1;
        }
    };
    // Its standard streams will be /dev/null: a panic is logged instead.
    std::panic::set_hook(Box::new(|info| log::error!("{info}")));
    let booted = join_cgroup(global, &args.id).and_then(|()| {
        // Before any thread starts, so that only the forwarding thread takes these.
        crate::terminal::block_signals();
        boot(global, &args)
    });
    match booted {
        // If `create` is gone, nobody will start this container.
        Ok(booted) if ready.write_all(READY.as_bytes()).is_ok() => {
            drop(ready);
            serve(booted)
        }
        Ok(_) => 1,
        Err(e) => {
            let _ = ready.write_all(e.as_bytes());
            1
        }
    }
}

/// Moves this process into the container's cgroup, before any thread or child process
/// exists, so that all of them are counted in it.
fn join_cgroup(global: &Global, id: &str) -> Result<(), String> {
    let state = global.root().load(id).map_err(|e| e.to_string())?;
    match state.cgroup {
        Some(cgroup) => cgroup.join(std::process::id() as i32),
        None => Ok(()),
    }
}

/// A sandbox set up, its process loaded and waiting for `start`.
struct Booted {
    sandbox: crate::sandbox::Sandbox,
    listener: Listener,
    /// The container's process: it must run on the thread that prepared it.
    init: sentry::kernel::Init,
    /// The terminal's host side, raw while the sandbox runs.
    terminal: Option<(crate::terminal::HostTerminal, OwnedFd)>,
}

fn boot(global: &Global, args: &BootArgs) -> Result<Booted, String> {
    let spec = spec::load(&args.bundle).map_err(|e| e.to_string())?;
    let rootfs = spec::rootfs(&spec, &args.bundle).map_err(|e| e.to_string())?;
    let process = spec::exec_process(spec::process(&spec).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    // A session of its own: signals for `create`'s caller's process group or terminal do
    // not reach the container.
    let _ = rustix::process::setsid();
    // The descriptors the container keeps (`--preserve-fds`), at the same numbers.
    let mut files = Vec::new();
    for fd in 3..3 + args.preserve_fds as i32 {
        let owned = platform::fd::take_inherited(fd)
            .map_err(|e| format!("preserved descriptor {fd}: {e}"))?;
        files.push((fd, owned));
    }
    let mut terminal = None;
    let stdio = if process.terminal {
        let socket = args
            .console_socket
            .as_deref()
            .ok_or("a terminal needs --console-socket")?;
        let (master, slave) = super::console::open_pty(process.console_size)?;
        super::console::send_master(socket, &master)?;
        drop(master);
        // The host tells the controlling process of a terminal when its size changes.
        super::console::become_controlling(&slave)?;
        let (raw, setup) = crate::terminal::HostTerminal::make_raw(slave.as_fd())
            .map_err(|e| format!("setting up the container's terminal: {e}"))?;
        let size_from = slave.try_clone().map_err(|e| format!("dup: {e}"))?;
        terminal = Some((raw, size_from));
        let mut stdio = sentry::kernel::Stdio::terminal(slave, setup)
            .map_err(|e| format!("setting up the container's terminal: {e}"))?;
        stdio.files.extend(files);
        stdio
    } else {
        files.extend(own_stdio());
        sentry::kernel::Stdio::host(files)
    };
    // The container's process holds its own copies of the standard streams now; neither
    // this process nor the gofers it starts may keep the caller's.
    super::release_stdio()?;
    let socket = global
        .root()
        .container_dir(&args.id)
        .join(super::control::SOCKET);
    let listener = Listener::bind(&socket)?;
    // A read-only root still takes mount points (a runc container's are made before the
    // root is made read-only): they go to an in-memory layer over it, and the root mount
    // refuses the guest's writes.
    let read_only_root = spec::rootfs_read_only(&spec);
    let overlay = if read_only_root {
        crate::sandbox::OverlayMode::Memory
    } else {
        crate::sandbox::OverlayMode::None
    };
    let setup = crate::sandbox::Setup {
        platform: global.platform,
        rootfs: &rootfs,
        overlay,
        mounts: crate::sandbox::Mounts::Oci {
            spec: &spec,
            bundle: &args.bundle,
        },
        volumes: &[],
        gofer_rings: crate::sandbox::DEFAULT_GOFER_RINGS,
        gofer_cpu: crate::sandbox::GoferCpu::Same,
    };
    let config = sentry::Config {
        randomize: true,
        hostname: spec.hostname().clone(),
        read_only_root,
        ..sentry::Config::default()
    };
    let sandbox = crate::sandbox::Sandbox::boot(&setup, config)?;
    // Loaded now, so that a missing program fails `create`, as with runc.
    let init = sandbox
        .kernel
        .prepare_init(process_spec(&process, stdio)?)
        .map_err(|e| match &e {
            sentry::kernel::Error::NotFound(_) | sentry::kernel::Error::Exec { .. } => {
                format!("exec: {e}")
            }
            _ => e.to_string(),
        })?;
    Ok(Booted {
        sandbox,
        listener,
        init,
        terminal,
    })
}

/// runsc-rs's own standard streams, for the container's process.
fn own_stdio() -> Vec<(i32, OwnedFd)> {
    let (stdin, stdout, stderr) = (std::io::stdin(), std::io::stdout(), std::io::stderr());
    let streams = [(0, stdin.as_fd()), (1, stdout.as_fd()), (2, stderr.as_fd())];
    // A stream that is closed is not open in the container either.
    streams
        .iter()
        .filter_map(|&(n, fd)| Some((n, fd.try_clone_to_owned().ok()?)))
        .collect()
}

/// The Sentry's description of a process to run.
fn process_spec(
    process: &ExecProcess,
    stdio: sentry::kernel::Stdio,
) -> Result<sentry::kernel::ProcessSpec, String> {
    Ok(sentry::kernel::ProcessSpec {
        exec: sentry::kernel::Exec {
            program: process.args.first().cloned().unwrap_or_default(),
            argv: process.args.iter().map(|a| a.as_bytes().to_vec()).collect(),
            envp: process.env.iter().map(|e| e.as_bytes().to_vec()).collect(),
            cwd: process.cwd.clone(),
        },
        uid: process.uid,
        gid: process.gid,
        groups: process.groups.clone(),
        no_new_privs: process.no_new_privs,
        caps: process.capabilities.as_ref().map(cap_sets).transpose()?,
        rlimits: process
            .rlimits
            .iter()
            .map(|&(resource, cur, max)| (resource, sentry::abi::Rlimit { cur, max }))
            .collect(),
        umask: process.umask,
        stdio,
    })
}

/// OCI's capability names as the Sentry's sets; a set left out is empty, as with runc.
fn cap_sets(
    caps: &oci_spec::runtime::LinuxCapabilities,
) -> Result<sentry::kernel::CapSets, String> {
    let bits = |set: &Option<oci_spec::runtime::Capabilities>| -> Result<u64, String> {
        let mut bits = 0u64;
        for cap in set.iter().flatten() {
            let name = serde_json::to_value(cap)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let n = sentry::kernel::cap_from_name(&name)
                .ok_or_else(|| format!("unknown capability {name:?}"))?;
            bits |= 1 << n;
        }
        Ok(bits)
    };
    Ok(sentry::kernel::CapSets {
        effective: bits(caps.effective())?,
        permitted: bits(caps.permitted())?,
        inheritable: bits(caps.inheritable())?,
        bounding: bits(caps.bounding())?,
        ambient: bits(caps.ambient())?,
    })
}

/// Serves the control socket; runs the container's process once `start` comes, and exits
/// as it does.
fn serve(booted: Booted) -> i32 {
    let kernel = booted.sandbox.kernel.clone();
    let size_from = booted
        .terminal
        .as_ref()
        .and_then(|(_, fd)| fd.try_clone().ok());
    if let Err(e) = crate::terminal::forward_signals(kernel.clone(), size_from) {
        log::error!("starting the signal-forwarding thread: {e}");
        return 1;
    }
    let (start_tx, start_rx) = mpsc::channel::<()>();
    let listener = booted.listener;
    let control = Control {
        kernel: kernel.clone(),
        start: Mutex::new(Some(start_tx)),
        terminals: Mutex::new(HashMap::new()),
    };
    let spawned = std::thread::Builder::new()
        .name("control".into())
        .spawn(move || control.serve(&listener));
    if let Err(e) = spawned {
        log::error!("starting the control thread: {e}");
        return 1;
    }
    // The control thread ends only with the process: a closed channel means it failed.
    if start_rx.recv().is_err() {
        return 1;
    }
    let status = booted.init.run();
    drop(booted.terminal);
    exit_as(status)
}

/// The control socket's server: each connection on a thread of its own (an exec's waits
/// for its process to end).
struct Control {
    kernel: Arc<Kernel>,
    /// Told once, by the first `start`.
    start: Mutex<Option<mpsc::Sender<()>>>,
    /// The terminals of exec'd processes, by pid, for resizing.
    terminals: Mutex<HashMap<i32, Arc<sentry::fs::tty::Tty>>>,
}

impl Control {
    fn serve(self, listener: &Listener) {
        let control = Arc::new(self);
        loop {
            let connection = match listener.accept() {
                Ok(c) => c,
                Err(e) => {
                    log::error!("{e}");
                    return;
                }
            };
            let control = control.clone();
            let spawned = std::thread::Builder::new()
                .name("control-conn".into())
                .spawn(move || control.answer(&connection));
            if let Err(e) = spawned {
                log::warn!("answering a control request: {e}");
            }
        }
    }

    fn answer(&self, connection: &Connection) {
        let (request, fds) = match connection.recv::<Request>() {
            Ok(Some(received)) => received,
            Ok(None) => return,
            Err(e) => {
                let _ = connection.send(&Reply::Error(e), &[]);
                return;
            }
        };
        let reply = match request {
            Request::Start => match self.start.lock().unwrap_or_else(|e| e.into_inner()).take() {
                Some(tx) => {
                    let _ = tx.send(());
                    Reply::Ok
                }
                None => Reply::Error("the container has already been started".into()),
            },
            Request::Signal { sig, .. } if !(1..=64).contains(&sig) => {
                Reply::Error(format!("{sig} is not a signal number"))
            }
            Request::Signal { sig, all } => {
                let sent = if all {
                    self.kernel.signal_all(sig)
                } else {
                    self.kernel.signal_process(1, sig)
                };
                match sent {
                    Ok(()) => Reply::Ok,
                    Err(e) => Reply::Error(format!("signalling the container: {}", e.desc())),
                }
            }
            Request::Ps => Reply::Processes(
                self.kernel
                    .processes_info()
                    .into_iter()
                    .map(|p| Process {
                        pid: p.pid,
                        ppid: p.ppid,
                        uid: p.uid,
                        state: p.state,
                        started: p.started.as_secs(),
                        cpu: p.cpu.as_secs(),
                        cmd: if p.cmdline.is_empty() {
                            format!("[{}]", p.comm)
                        } else {
                            p.cmdline.join(" ")
                        },
                    })
                    .collect(),
            ),
            Request::Pause => {
                self.kernel.pause();
                Reply::Ok
            }
            Request::Resume => {
                self.kernel.resume();
                Reply::Ok
            }
            Request::Resize { pid, rows, cols } => {
                let tty = if pid == 0 {
                    self.kernel.console().cloned()
                } else {
                    self.terminals
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .get(&pid)
                        .cloned()
                };
                match tty {
                    Some(tty) => {
                        tty.set_winsize(sentry::abi::Winsize {
                            row: rows,
                            col: cols,
                            xpixel: 0,
                            ypixel: 0,
                        });
                        Reply::Ok
                    }
                    None => Reply::Error(format!("process {pid} has no terminal")),
                }
            }
            Request::Exec(process) => {
                self.exec(connection, &process, fds);
                return;
            }
        };
        let _ = connection.send(&reply, &[]);
    }

    /// Starts `process` with descriptors `fds` (stdin, stdout, stderr, or its terminal),
    /// tells its pid, then how it ended.
    fn exec(&self, connection: &Connection, process: &ExecProcess, fds: Vec<OwnedFd>) {
        let stdio = if process.terminal {
            match fds.into_iter().next() {
                Some(tty) => crate::terminal::HostTerminal::make_raw(tty.as_fd())
                    .map_err(|e| format!("setting up the exec's terminal: {e}"))
                    .and_then(|(raw, setup)| {
                        // The client's side of the terminal stays raw: the Sentry runs the
                        // line discipline for as long as the process lives.
                        std::mem::forget(raw);
                        sentry::kernel::Stdio::terminal(tty, setup)
                            .map_err(|e| format!("setting up the exec's terminal: {e}"))
                    }),
                None => Err("an exec with a terminal needs its terminal".to_string()),
            }
        } else {
            Ok(sentry::kernel::Stdio::host((0..).zip(fds).collect()))
        };
        let spawned = stdio.and_then(|stdio| {
            self.kernel
                .spawn(process_spec(process, stdio)?)
                .map_err(|e| format!("exec: {e}"))
        });
        let spawned = match spawned {
            Ok(spawned) => spawned,
            Err(e) => {
                let _ = connection.send(&Reply::Error(e), &[]);
                return;
            }
        };
        let pid = spawned.pid;
        if let Some(tty) = spawned.terminal {
            self.terminals
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(pid, tty);
        }
        let _ = connection.send(&Reply::Started { pid }, &[]);
        let ended = self.kernel.wait_process(pid);
        self.terminals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&pid);
        let (code, signal) = match ended {
            Some(sentry::kernel::ExitStatus::Exited(code)) => (code as i32, 0),
            Some(sentry::kernel::ExitStatus::Signaled(sig)) => (0, sig),
            None => (0, libc::SIGKILL),
        };
        let _ = connection.send(&Reply::Exited { code, signal }, &[]);
    }
}

/// Ends this process as the container's process ended: with its exit code, or killed by
/// the same signal, so that whoever waits for the pid-file's process sees what runc's
/// would show.
fn exit_as(status: sentry::kernel::ExitStatus) -> ! {
    match status {
        sentry::kernel::ExitStatus::Signaled(sig) => platform::process::die_of(sig),
        sentry::kernel::ExitStatus::Exited(code) => std::process::exit(code as i32),
    }
}
