//! The sandbox of one container: `create` starts `runsc-rs boot`, which sets up the Sentry
//! and its gofers for the bundle, reports on an inherited pipe whether that worked, then
//! serves the control socket. Its process is the one in `--pid-file`: it exits as the
//! container's process does, with its status (killed by the same signal if it was).

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::sync::Arc;

use sentry::Kernel;

use super::control::{ExecProcess, Listener, Reply, Request};
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
    id: String,
}

/// The boot process: sets the sandbox up, reports, serves; returns only on failure to set
/// up (the status to exit with), else exits as the container's process does.
pub fn main(global: &Global, args: BootArgs) -> i32 {
    let ready = match platform::fd::take_inherited(args.ready_fd) {
        Ok(fd) => std::fs::File::from(fd),
        Err(e) => {
            log::error!("the ready descriptor {}: {e}", args.ready_fd);
            return 1;
        }
    };
    // Into the container's cgroup before any thread or child process exists, so that all
    // of them are counted in it.
    match global.root().load(&args.id).map(|s| s.cgroup) {
        Ok(Some(cgroup)) => {
            if let Err(e) = cgroup.join(std::process::id() as i32) {
                let mut ready = ready;
                let _ = ready.write_all(e.as_bytes());
                return 1;
            }
        }
        Ok(None) => {}
        Err(e) => {
            let mut ready = ready;
            let _ = ready.write_all(e.to_string().as_bytes());
            return 1;
        }
    }
    // Before any thread starts, so that only the forwarding thread takes these.
    crate::terminal::block_signals();
    match boot(global, &args) {
        Ok(booted) => {
            let mut ready = ready;
            if ready.write_all(READY.as_bytes()).is_err() {
                // `create` is gone: nobody will start this container.
                return 1;
            }
            drop(ready);
            serve(booted)
        }
        Err(e) => {
            let mut ready = ready;
            let _ = ready.write_all(e.as_bytes());
            1
        }
    }
}

/// A sandbox set up and waiting for `start`.
struct Booted {
    sandbox: crate::sandbox::Sandbox,
    listener: Listener,
    process: ExecProcess,
    /// Kept for the life of the sandbox: the terminal's host side settings come back when
    /// it is dropped.
    _terminal: Option<crate::terminal::HostTerminal>,
}

fn boot(global: &Global, args: &BootArgs) -> Result<Booted, String> {
    let spec = spec::load(&args.bundle).map_err(|e| e.to_string())?;
    let rootfs = spec::rootfs(&spec, &args.bundle).map_err(|e| e.to_string())?;
    let process = spec::exec_process(spec::process(&spec).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    // A session of its own: signals for `create`'s caller's process group or terminal do
    // not reach the container.
    let _ = rustix::process::setsid();
    let mut terminal = None;
    let mut console = None;
    if process.terminal {
        let socket = args
            .console_socket
            .as_deref()
            .ok_or("a terminal needs --console-socket")?;
        let (master, slave) = super::console::open_pty(process.console_size)?;
        super::console::send_master(socket, &master)?;
        drop(master);
        super::console::become_controlling(&slave)?;
        // The container's process gets the terminal as its standard streams, and the
        // Sentry runs its line discipline as for `runsc-rs do` on a terminal.
        let dup = |r: nix::Result<()>| r.map_err(|e| format!("dup2: {e}"));
        dup(nix::unistd::dup2_stdin(&slave))?;
        dup(nix::unistd::dup2_stdout(&slave))?;
        dup(nix::unistd::dup2_stderr(&slave))?;
        drop(slave);
        let (host_terminal, setup) = crate::terminal::HostTerminal::take()
            .ok_or("the terminal made for the container cannot be set up")?;
        terminal = Some(host_terminal);
        console = Some(setup);
    }
    let socket = global
        .root()
        .container_dir(&args.id)
        .join(super::control::SOCKET);
    let listener = Listener::bind(&socket)?;
    let overlay = if spec::rootfs_read_only(&spec) {
        crate::sandbox::OverlayMode::ReadOnly
    } else {
        crate::sandbox::OverlayMode::None
    };
    let setup = crate::sandbox::Setup {
        platform: crate::sandbox::PlatformName::Ptrace,
        rootfs: &rootfs,
        overlay,
        volumes: &[],
        gofer_rings: crate::sandbox::DEFAULT_GOFER_RINGS,
        gofer_cpu: crate::sandbox::GoferCpu::Same,
    };
    let config = sentry::Config {
        randomize: true,
        uid: process.uid,
        gid: process.gid,
        groups: process.groups.clone(),
        console,
        ..sentry::Config::default()
    };
    let sandbox = crate::sandbox::Sandbox::boot(&setup, config)?;
    Ok(Booted {
        sandbox,
        listener,
        process,
        _terminal: terminal,
    })
}

/// Serves the control socket; runs the container's process once `start` comes, and exits
/// as it does.
fn serve(booted: Booted) -> i32 {
    let kernel = booted.sandbox.kernel.clone();
    if let Err(e) = crate::terminal::forward_signals(kernel.clone()) {
        log::error!("starting the signal-forwarding thread: {e}");
        return 1;
    }
    let (start_tx, start_rx) = mpsc::channel::<()>();
    let listener = booted.listener;
    let control_kernel = kernel.clone();
    let spawned = std::thread::Builder::new()
        .name("control".into())
        .spawn(move || control_loop(&listener, &control_kernel, start_tx));
    if let Err(e) = spawned {
        log::error!("starting the control thread: {e}");
        return 1;
    }
    // The control thread ends only with the process: a closed channel means it failed.
    if start_rx.recv().is_err() {
        return 1;
    }
    let process = &booted.process;
    let exec = sentry::kernel::Exec {
        program: process.args.first().cloned().unwrap_or_default(),
        argv: process.args.iter().map(|a| a.as_bytes().to_vec()).collect(),
        envp: process.env.iter().map(|e| e.as_bytes().to_vec()).collect(),
        cwd: process.cwd.clone(),
    };
    let status = match kernel.run(&exec) {
        Ok(status) => status,
        Err(e) => {
            log::error!("{e}");
            sentry::kernel::ExitStatus::Exited(127)
        }
    };
    drop(booted._terminal);
    exit_as(status)
}

/// Answers control requests, each connection on a thread of its own (an exec's waits
/// for its process to end).
fn control_loop(listener: &Listener, kernel: &Arc<Kernel>, start: mpsc::Sender<()>) {
    let start = std::sync::Mutex::new(Some(start));
    loop {
        let connection = match listener.accept() {
            Ok(c) => c,
            Err(e) => {
                log::error!("{e}");
                return;
            }
        };
        let request = match connection.recv::<Request>() {
            Ok(Some((request, fds))) => (request, fds),
            Ok(None) => continue,
            Err(e) => {
                let _ = connection.send(&Reply::Error(e), &[]);
                continue;
            }
        };
        let reply = match request {
            (Request::Start, _) => match start.lock().unwrap_or_else(|e| e.into_inner()).take() {
                Some(tx) => {
                    let _ = tx.send(());
                    Reply::Ok
                }
                None => Reply::Error("the container has already been started".into()),
            },
            (Request::Signal { sig, all: _ }, _) => {
                if !(1..=64).contains(&sig) {
                    Reply::Error(format!("{sig} is not a signal number"))
                } else if kernel.signal_init(sig) {
                    Reply::Ok
                } else {
                    Reply::Error("the container's process is not running".into())
                }
            }
            (other, _fds) => Reply::Error(format!("{other:?} is not supported yet")),
        };
        let _ = connection.send(&reply, &[]);
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
