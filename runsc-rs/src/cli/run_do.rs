//! `runsc-rs do`: run one program in a new sandbox, with runsc-rs's own stdio.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Args, ValueEnum};
use sentry::kernel::Exec;
use sentry::mm::MemoryFile;
use sentry::{Config, Kernel};

/// Size of the sparse memory file behind all guest memory; it costs host memory only as
/// the guest touches it.
const MEMORY_FILE_SIZE: u64 = 1 << 40;

/// Exit codes for failures of runsc-rs itself, as shells and Docker use them.
const EXIT_INTERNAL: i32 = 125;
const EXIT_CANNOT_EXECUTE: i32 = 126;
const EXIT_NOT_FOUND: i32 = 127;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PlatformName {
    Ptrace,
}

#[derive(Debug, Args)]
pub struct DoArgs {
    /// How guest code runs and traps.
    #[arg(long, value_enum, default_value = "ptrace")]
    platform: PlatformName,
    /// Print every system call the program makes on stderr, strace style.
    #[arg(long)]
    strace: bool,
    /// The program and its arguments.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "PROG ARGS"
    )]
    command: Vec<OsString>,
}

pub fn run(args: DoArgs) -> i32 {
    let program = &args.command[0];
    let Some(host_path) = find_program(program) else {
        eprintln!("runsc-rs: {}: no such program", program.to_string_lossy());
        return EXIT_NOT_FOUND;
    };
    // The guest sees the resolved path, as Linux records it for /proc/self/exe.
    let guest_path = std::fs::canonicalize(&host_path).unwrap_or_else(|_| host_path.clone());
    let exec = Exec {
        execfn: host_path.to_string_lossy().into_owned(),
        host_path,
        guest_path: guest_path.to_string_lossy().into_owned(),
        argv: args.command.iter().map(|a| a.as_bytes().to_vec()).collect(),
        envp: std::env::vars_os()
            .map(|(k, v)| {
                let mut kv = k.into_vec();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                kv
            })
            .collect(),
    };

    let memory = match MemoryFile::new(MEMORY_FILE_SIZE) {
        Ok(m) => Arc::new(m),
        Err(e) => {
            eprintln!("runsc-rs: creating the sandbox's memory file: {e}");
            return EXIT_INTERNAL;
        }
    };
    let platform: Box<dyn platform::Platform> = match args.platform {
        PlatformName::Ptrace => {
            let fd = match memory.fd().try_clone_to_owned() {
                Ok(fd) => fd,
                Err(e) => {
                    eprintln!("runsc-rs: duplicating the memory file descriptor: {e}");
                    return EXIT_INTERNAL;
                }
            };
            match platform::ptrace::PtracePlatform::new(fd) {
                Ok(p) => Box::new(p),
                Err(e) => {
                    eprintln!("runsc-rs: starting the ptrace platform: {e}");
                    return EXIT_INTERNAL;
                }
            }
        }
    };
    let config = Config {
        strace: args.strace,
        uid: nix::unistd::getuid().as_raw(),
        gid: nix::unistd::getgid().as_raw(),
        groups: nix::unistd::getgroups()
            .map(|g| g.into_iter().map(|g| g.as_raw()).collect())
            .unwrap_or_default(),
    };
    let kernel = Kernel::new(platform, memory, config, sentry::fs::tmpfs_root(), "tmpfs");
    match kernel.run(&exec) {
        Ok(status) => status.code(),
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

/// The host file `program` names: itself if it has a slash, else the first executable of
/// that name on PATH.
fn find_program(program: &OsString) -> Option<PathBuf> {
    let path = Path::new(program);
    if program.as_bytes().contains(&b'/') {
        return path.exists().then(|| path.to_path_buf());
    }
    let search = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&search)
        .map(|dir| dir.join(program))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}
