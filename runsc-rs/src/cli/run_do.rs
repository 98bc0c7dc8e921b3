//! `runsc-rs do`: run one program in a new sandbox, with runsc-rs's own stdio.

use std::ffi::OsString;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use crate::sandbox::{GoferCpu, Mounts, OverlayMode, Sandbox, Setup, Volume, DEFAULT_GOFER_RINGS};

use clap::Args;
use sentry::fs::tty::ConsoleSetup;
use sentry::kernel::{Exec, ProcessSpec, Stdio, TerminalSpec};
use sentry::Config;

/// Exit codes for failures of runsc-rs itself, as shells and Docker use them.
pub const EXIT_INTERNAL: i32 = 125;
pub const EXIT_CANNOT_EXECUTE: i32 = 126;
pub const EXIT_NOT_FOUND: i32 = 127;

#[derive(Debug, Args)]
pub struct DoArgs {
    /// Print every system call the program makes on stderr, strace style.
    #[arg(long)]
    strace: bool,
    /// Load programs, libraries, the stack and the heap at the same addresses every run
    /// (no address-space layout randomisation), for reproducible runs.
    #[arg(long)]
    no_randomize: bool,
    /// The host directory served as the sandbox's root.
    #[arg(long, default_value = "/", value_name = "DIR")]
    rootfs: PathBuf,
    /// Where writes to the root go.
    #[arg(long, value_enum, default_value = "memory")]
    overlay: OverlayMode,
    /// Mount host directory HOST at GUEST in the sandbox, served by a gofer of its own;
    /// writes go to HOST unless `:ro`. May be given several times.
    #[arg(long = "volume", short = 'v', value_name = "HOST:GUEST[:ro]")]
    volumes: Vec<Volume>,
    /// Mount what this config.json's `mounts`, `linux.readonlyPaths` and
    /// `linux.maskedPaths` ask for, as a container would get them, instead of the defaults
    /// (bind sources are relative to its directory). Hidden: for testing the OCI runtime's
    /// mounts end to end.
    #[arg(long, value_name = "CONFIG.JSON", hide = true)]
    oci_mounts: Option<PathBuf>,
    /// Rings between the Sentry and each gofer (1 to 16): as many file requests can be in
    /// flight at once, each guest process running on a Sentry thread of its own. Each ring
    /// costs ≈1.3 ms of start-up; bench/RESULTS.md shows how the default was chosen.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_GOFER_RINGS,
          value_parser = crate::gofer::parse_rings)]
    gofer_rings: u32,
    /// Where the gofers run: on the Sentry's CPU (`same`) or wherever the host schedules
    /// them (`any`). Hidden: for measuring the pin (bench/RESULTS.md).
    #[arg(long, value_enum, default_value = "same", hide = true)]
    gofer_cpu: GoferCpu,
    /// The program and its arguments.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "PROG ARGS"
    )]
    command: Vec<OsString>,
}

pub fn run(global: &crate::container::Global, args: DoArgs) -> i32 {
    // Before any thread starts, so that all of them leave these to the forwarding thread.
    crate::terminal::block_signals();
    let program = args.command[0].to_string_lossy().into_owned();
    // With the host's root the sandbox starts where runsc-rs was started; elsewhere at "/".
    let cwd = match std::env::current_dir() {
        Ok(dir) if args.rootfs == Path::new("/") => dir.to_string_lossy().into_owned(),
        _ => "/".to_string(),
    };
    let exec = Exec {
        program,
        argv: args.command.iter().map(|a| a.as_bytes().to_vec()).collect(),
        envp: std::env::vars_os()
            .map(|(k, v)| {
                let mut kv = k.into_vec();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                kv
            })
            .collect(),
        cwd,
    };
    // The terminal stays raw while the sandbox runs.
    let terminal = crate::terminal::HostTerminal::take();
    let console = terminal.as_ref().map(|(_, setup)| *setup);
    let oci_spec = match &args.oci_mounts {
        Some(config) => match oci_spec::runtime::Spec::load(config) {
            Ok(spec) => Some(spec),
            Err(e) => {
                eprintln!("runsc-rs: {}: {e}", config.display());
                return EXIT_INTERNAL;
            }
        },
        None => None,
    };
    let mounts = match (&oci_spec, &args.oci_mounts) {
        (Some(spec), Some(config)) => Mounts::Oci {
            spec,
            bundle: config.parent().unwrap_or(Path::new(".")),
        },
        _ => Mounts::Default,
    };
    let setup = Setup {
        platform: global.platform,
        rootfs: &args.rootfs,
        overlay: args.overlay,
        mounts,
        volumes: &args.volumes,
        gofer_rings: args.gofer_rings,
        gofer_cpu: args.gofer_cpu,
    };
    let config = Config {
        strace: args.strace,
        randomize: !args.no_randomize,
        hostname: None,
        read_only_root: false,
    };
    // Before the Sentry is confined: it is made of runsc-rs's own ids and streams.
    let spec = init_spec(exec, console);
    let booted = spec.and_then(|spec| Ok((spec, Sandbox::boot(&setup, config)?)));
    let (spec, sandbox) = match booted {
        Ok(booted) => booted,
        Err(e) => {
            drop(terminal);
            eprintln!("runsc-rs: {e}");
            return EXIT_INTERNAL;
        }
    };
    if let Err(e) = crate::terminal::forward_signals(sandbox.kernel.clone(), None) {
        drop(terminal);
        eprintln!("runsc-rs: starting the signal-forwarding thread: {e}");
        return EXIT_INTERNAL;
    }
    let ran = sandbox
        .kernel
        .prepare_init(spec)
        .map(sentry::kernel::Init::run);
    // The terminal's own settings are back before anything more is printed.
    drop(terminal);
    match ran {
        Ok(status) => status.code(),
        Err(e @ sentry::kernel::Error::NotFound(_)) => {
            eprintln!("runsc-rs: {e}");
            EXIT_NOT_FOUND
        }
        Err(e @ sentry::kernel::Error::Exec { .. }) => {
            eprintln!("runsc-rs: {e}");
            EXIT_CANNOT_EXECUTE
        }
        Err(e) => {
            eprintln!("runsc-rs: {e}");
            EXIT_INTERNAL
        }
    }
}

/// The guest's init as `do` runs it: as runsc-rs's own user and groups, on runsc-rs's
/// standard streams. Those that are the terminal runsc-rs runs on, if it made it raw for a
/// `console`, are the console; the others are the host's as they are.
fn init_spec(exec: Exec, console: Option<ConsoleSetup>) -> Result<ProcessSpec, String> {
    let (stdin, stdout, stderr) = (std::io::stdin(), std::io::stdout(), std::io::stderr());
    let stdin = stdin.as_fd();
    let streams = [(0, stdin), (1, stdout.as_fd()), (2, stderr.as_fd())];
    let on_terminal =
        |fd: BorrowedFd<'_>| console.is_some() && sentry::fs::tty::same_terminal(stdin, fd);
    let dup = |fd: BorrowedFd<'_>| {
        fd.try_clone_to_owned()
            .map_err(|e| format!("duplicating a standard stream: {e}"))
    };
    // A stream that is closed is not open in the guest either.
    let files = streams
        .iter()
        .filter(|&&(_, fd)| !on_terminal(fd))
        .filter_map(|&(n, fd)| Some((n, fd.try_clone_to_owned().ok()?)))
        .collect();
    let terminal = match console {
        Some(setup) => {
            // Output reaches the terminal through whichever of stdout and stderr is that
            // terminal (else stdin, usually opened for both).
            let out = streams[1..]
                .iter()
                .map(|&(_, fd)| fd)
                .find(|&fd| on_terminal(fd))
                .unwrap_or(stdin);
            Some(TerminalSpec {
                input: dup(stdin)?,
                output: dup(out)?,
                setup,
                fds: streams
                    .iter()
                    .filter(|&&(_, fd)| on_terminal(fd))
                    .map(|&(n, _)| n)
                    .collect(),
            })
        }
        None => None,
    };
    Ok(ProcessSpec {
        exec,
        uid: nix::unistd::getuid().as_raw(),
        gid: nix::unistd::getgid().as_raw(),
        groups: nix::unistd::getgroups()
            .map(|g| g.into_iter().map(|g| g.as_raw()).collect())
            .unwrap_or_default(),
        no_new_privs: false,
        caps: None,
        rlimits: Vec::new(),
        umask: None,
        stdio: Stdio { files, terminal },
    })
}
