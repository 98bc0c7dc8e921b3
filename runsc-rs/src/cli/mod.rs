//! The command line: global flags and one module per command.

mod run_do;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// An application kernel for sandboxing untrusted Linux programs.
#[derive(Debug, Parser)]
#[command(name = "runsc-rs", version, about)]
struct Cli {
    /// Write log lines to this file instead of stderr.
    #[arg(long, global = true, value_name = "FILE")]
    log: Option<PathBuf>,
    /// Log debugging detail.
    #[arg(long, global = true)]
    debug: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a program in a new sandbox.
    Do(run_do::DoArgs),
    /// Serve a root file system to a Sentry (started by runsc-rs itself).
    #[command(hide = true)]
    Gofer(GoferArgs),
}

#[derive(Debug, clap::Args)]
struct GoferArgs {
    /// The directory to serve.
    #[arg(long, required_unless_present = "files", conflicts_with = "files")]
    root: Option<PathBuf>,
    /// Refuse every change (to the directory).
    #[arg(long, requires = "root")]
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
    if let Err(e) = crate::logger::init(cli.log.as_deref(), cli.debug) {
        eprintln!("runsc-rs: {e}");
        return 125;
    }
    match cli.command {
        Command::Do(args) => run_do::run(args),
        Command::Gofer(args) => {
            let served = match args.root {
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
