//! The command line: global flags and one module per command.

mod oci;
mod run_do;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::container::Global;

/// An application kernel for sandboxing untrusted Linux programs.
#[derive(Debug, Parser)]
#[command(name = "runsc-rs", about, disable_version_flag = true)]
struct Cli {
    /// Print the version and the OCI spec version implemented.
    #[arg(long)]
    version: bool,
    /// Write log lines to this file instead of stderr.
    #[arg(long, global = true, value_name = "FILE")]
    log: Option<PathBuf>,
    /// How log lines are written: text, or JSON objects as runc writes them.
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Log debugging detail.
    #[arg(long, global = true)]
    debug: bool,
    /// Where containers' state is kept.
    #[arg(
        long,
        global = true,
        default_value = "/run/runsc-rs",
        value_name = "DIR"
    )]
    root: PathBuf,
    /// Take cgroup paths in systemd's "slice:prefix:name" form.
    #[arg(long, global = true)]
    systemd_cgroup: bool,
    /// How guest code runs and traps: ptrace (stub processes) or kvm (a KVM virtual
    /// machine, /dev/kvm needed). Given before or after the command, as runsc takes it, or
    /// by the environment (the test suites run all on kvm so).
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "ptrace",
        env = "RUNSC_PLATFORM"
    )]
    platform: crate::sandbox::PlatformName,
    /// Accepted for runc compatibility (true, false or auto): runsc-rs runs the same way.
    #[arg(long, value_name = "BOOL")]
    rootless: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a program in a new sandbox.
    Do(run_do::DoArgs),
    /// Create a container from a bundle; its process waits for `start`.
    Create(oci::CreateArgs),
    /// Start a created container's process.
    Start(oci::IdArgs),
    /// Print a container's state as JSON.
    State(oci::IdArgs),
    /// Send a signal to a container's process (or all of its processes).
    Kill(oci::KillArgs),
    /// Delete a container and everything it holds.
    Delete(oci::DeleteArgs),
    /// Create and start a container, and wait for it unless --detach.
    Run(oci::RunArgs),
    /// Run another process in a running container.
    Exec(oci::ExecArgs),
    /// List a container's processes.
    Ps(oci::PsArgs),
    /// Suspend every process of a container.
    Pause(oci::IdArgs),
    /// Resume a paused container.
    Resume(oci::IdArgs),
    /// Change a container's resource limits.
    Update(oci::UpdateArgs),
    /// List the containers.
    List(oci::ListArgs),
    /// Print what this runtime supports, as JSON.
    Features,
    /// Write a default config.json.
    Spec(oci::SpecArgs),
    /// Serve a root file system to a Sentry (started by runsc-rs itself).
    #[command(hide = true)]
    Gofer(GoferArgs),
    /// A container's sandbox (started by `create`).
    #[command(hide = true)]
    Boot(crate::container::boot::BootArgs),
}

#[derive(Debug, clap::Args)]
struct GoferArgs {
    /// The directory to serve.
    #[arg(long, required_unless_present = "files", conflicts_with = "files")]
    dir: Option<PathBuf>,
    /// Refuse every change (to the directory).
    #[arg(long, requires = "dir")]
    read_only: bool,
    /// Serve these host files instead, as entries 0, 1, ... of an otherwise empty root.
    #[arg(long = "file", value_name = "ro|rw:PATH", value_parser = crate::gofer::parse_file)]
    files: Vec<(PathBuf, bool)>,
    /// How many rings were inherited: descriptors 3, 4, 5 for the first, then in threes.
    #[arg(long, default_value_t = 1, value_parser = crate::gofer::parse_rings)]
    rings: u32,
}

/// Parses the command line, runs the command and returns the exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    let global = Global {
        root: cli.root.clone(),
        log: cli.log.clone(),
        log_json: cli.log_format == LogFormat::Json,
        debug: cli.debug,
        systemd_cgroup: cli.systemd_cgroup,
        platform: cli.platform,
    };
    // A container's sandbox has no stderr of its own (its streams are the container's):
    // without --log it logs beside its state.
    let log = match (&cli.log, &cli.command) {
        (None, Some(Command::Boot(args))) => {
            Some(global.root().container_dir(&args.id).join("sandbox.log"))
        }
        (log, _) => log.clone(),
    };
    if let Err(e) = crate::logger::init(log.as_deref(), cli.debug, global.log_json) {
        eprintln!("runsc-rs: {e}");
        return 125;
    }
    let Some(command) = cli.command else {
        if cli.version {
            println!(
                "runsc-rs version {}\nspec: {}",
                env!("CARGO_PKG_VERSION"),
                crate::container::OCI_VERSION
            );
            return 0;
        }
        eprintln!("runsc-rs: a command is needed (runsc-rs --help lists them)");
        return 2;
    };
    match command {
        Command::Do(args) => run_do::run(&global, args),
        Command::Create(args) => oci::create(&global, args),
        Command::Start(args) => oci::start(&global, args),
        Command::State(args) => oci::state(&global, args),
        Command::Kill(args) => oci::kill(&global, args),
        Command::Delete(args) => oci::delete(&global, args),
        Command::Run(args) => oci::run(&global, args),
        Command::Exec(args) => oci::exec(&global, args),
        Command::Ps(args) => oci::ps(&global, args),
        Command::Pause(args) => oci::pause(&global, args, true),
        Command::Resume(args) => oci::pause(&global, args, false),
        Command::Update(args) => oci::update(&global, args),
        Command::List(args) => oci::list(&global, args),
        Command::Features => oci::features(),
        Command::Spec(args) => oci::spec(&global, args),
        Command::Boot(args) => crate::container::boot::main(&global, args),
        Command::Gofer(args) => {
            let served = match args.dir {
                Some(path) => crate::gofer::Served::Dir {
                    path,
                    read_only: args.read_only,
                },
                None => crate::gofer::Served::Files(args.files),
            };
            match crate::gofer::serve(&served, args.rings as usize) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("runsc-rs gofer: {e}");
                    1
                }
            }
        }
    }
}
