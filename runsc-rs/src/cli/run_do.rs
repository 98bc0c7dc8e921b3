//! `runsc-rs do`: run one program in a new sandbox, with runsc-rs's own stdio.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::gofer::Gofer;

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

/// Where the sandbox's writes to its root go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OverlayMode {
    /// Into sandbox memory, over a read-only root: the host is never changed.
    Memory,
    /// Through to the root directory itself.
    None,
}

#[derive(Debug, Args)]
pub struct DoArgs {
    /// How guest code runs and traps.
    #[arg(long, value_enum, default_value = "ptrace")]
    platform: PlatformName,
    /// Print every system call the program makes on stderr, strace style.
    #[arg(long)]
    strace: bool,
    /// The host directory served as the sandbox's root.
    #[arg(long, default_value = "/", value_name = "DIR")]
    rootfs: PathBuf,
    /// Where writes to the root go.
    #[arg(long, value_enum, default_value = "memory")]
    overlay: OverlayMode,
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
    // The Sentry waits for every gofer reply, so they never need to run at once; on one CPU a
    // reply costs a same-CPU wake-up instead of a cross-CPU one (platform-limits.md §7).
    // The gofer inherits this pin; the ptrace platform keeps the Sentry thread on it.
    pin_to_current_cpu();
    let read_only = args.overlay == OverlayMode::Memory;
    let gofer = match Gofer::start(&args.rootfs, read_only) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("runsc-rs: {e}");
            return EXIT_INTERNAL;
        }
    };
    let lower = match sentry::fs::gofer::root(gofer.client.clone()) {
        Ok(root) => root,
        Err(e) => {
            eprintln!(
                "runsc-rs: the root {} cannot be served: {e}",
                args.rootfs.display()
            );
            gofer.stop();
            return EXIT_INTERNAL;
        }
    };
    let (root, fs_type) = match args.overlay {
        OverlayMode::Memory => {
            use sentry::fs::devices::makedev;
            let upper = sentry::fs::tmpfs::Tmpfs::new(makedev(0, 4));
            match sentry::fs::overlay::overlay(lower, upper, makedev(0, 5)) {
                Ok(root) => (root, "overlay"),
                Err(e) => {
                    eprintln!(
                        "runsc-rs: the root {} cannot be served: {e}",
                        args.rootfs.display()
                    );
                    gofer.stop();
                    return EXIT_INTERNAL;
                }
            }
        }
        OverlayMode::None => (lower, "gofer"),
    };
    let config = Config {
        strace: args.strace,
        uid: nix::unistd::getuid().as_raw(),
        gid: nix::unistd::getgid().as_raw(),
        groups: nix::unistd::getgroups()
            .map(|g| g.into_iter().map(|g| g.as_raw()).collect())
            .unwrap_or_default(),
    };
    let kernel = Kernel::new(platform, memory, config, root, fs_type);
    // From here on the Sentry needs no host path: the gofer serves every file.
    if let Err(e) = crate::confine::sentry() {
        eprintln!("runsc-rs: {e}");
        gofer.stop();
        return EXIT_INTERNAL;
    }
    gofer.watch();
    let code = match kernel.run(&exec) {
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
    };
    gofer.stop();
    code
}

/// Pins the calling thread to the CPU it is running on (within any affinity it was given).
fn pin_to_current_cpu() {
    use nix::sched::{sched_getcpu, sched_setaffinity, CpuSet};
    let Ok(cpu) = sched_getcpu() else { return };
    let mut set = CpuSet::new();
    if set.set(cpu).is_ok() {
        let _ = sched_setaffinity(nix::unistd::Pid::from_raw(0), &set);
    }
}
