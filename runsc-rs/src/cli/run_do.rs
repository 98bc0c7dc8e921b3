//! `runsc-rs do`: run one program in a new sandbox, with runsc-rs's own stdio.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::container::mounts;
use crate::gofer::Gofer;

use clap::{Args, ValueEnum};
use sentry::fs::mounts::{MountFlags, MountKind, MountSpec};
use sentry::kernel::Exec;
use sentry::mm::MemoryFile;
use sentry::{Config, Kernel};

/// Size of the sparse memory file behind all guest memory; it costs host memory only as
/// the guest touches it.
const MEMORY_FILE_SIZE: u64 = 1 << 40;

/// Rings per gofer unless `--gofer-rings` says otherwise. Measured in bench/RESULTS.md
/// ("Gofer rings"; the reasons are `CHOICE` in bench/src/rings.rs): with two guest
/// processes making file calls at once, 2 rings took 8-10 % less time per stat than 1, as
/// much as 4 did, for ≈1 ms of start-up; 4 rings helped four processes' metadata calls
/// more, but slowed their reads and cost ≈5 ms.
const DEFAULT_GOFER_RINGS: u32 = 2;

/// Exit codes for failures of runsc-rs itself, as shells and Docker use them.
const EXIT_INTERNAL: i32 = 125;
const EXIT_CANNOT_EXECUTE: i32 = 126;
const EXIT_NOT_FOUND: i32 = 127;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PlatformName {
    Ptrace,
}

/// Where the gofers run (`--gofer-cpu`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GoferCpu {
    /// Pinned with the Sentry to the CPU it started on.
    Same,
    /// Unpinned: started before the Sentry pins itself.
    Any,
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

pub fn run(args: DoArgs) -> i32 {
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
    let sandbox = match Sandbox::boot(&args, console) {
        Ok(sandbox) => sandbox,
        Err(e) => {
            drop(terminal);
            eprintln!("runsc-rs: {e}");
            return EXIT_INTERNAL;
        }
    };
    if let Err(e) = crate::terminal::forward_signals(sandbox.kernel.clone()) {
        drop(terminal);
        eprintln!("runsc-rs: starting the signal-forwarding thread: {e}");
        return EXIT_INTERNAL;
    }
    let ran = sandbox.kernel.run(&exec);
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

/// A host directory mounted in the sandbox (`--volume HOST:GUEST[:ro]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    host: PathBuf,
    guest: String,
    read_only: bool,
}

impl std::str::FromStr for Volume {
    type Err = String;

    fn from_str(spec: &str) -> Result<Volume, String> {
        let parts: Vec<&str> = spec.split(':').collect();
        let (host, guest, read_only) = match parts[..] {
            [host, guest] => (host, guest, false),
            [host, guest, "ro"] => (host, guest, true),
            [host, guest, "rw"] => (host, guest, false),
            _ => return Err(format!("{spec:?} is not HOST:GUEST[:ro|rw]")),
        };
        if !guest.starts_with('/') {
            return Err(format!(
                "{guest:?}: the path in the sandbox must be absolute"
            ));
        }
        if host.is_empty() {
            return Err(format!("{spec:?}: the host directory is empty"));
        }
        Ok(Volume {
            host: PathBuf::from(host),
            guest: guest.to_string(),
            read_only,
        })
    }
}

/// A booted sandbox: its kernel and the gofers serving its files (each stops when
/// dropped).
struct Sandbox {
    kernel: Arc<Kernel>,
    /// Dropped after the kernel has run, which stops them.
    _gofers: Vec<Gofer>,
}

impl Sandbox {
    /// Creates the memory file and the platform, starts the gofers (the root's and one per
    /// volume), builds the kernel with its mounts, then confines runsc-rs itself.
    fn boot(
        args: &DoArgs,
        console: Option<sentry::fs::tty::ConsoleSetup>,
    ) -> Result<Sandbox, String> {
        let memory = MemoryFile::new(MEMORY_FILE_SIZE)
            .map_err(|e| format!("creating the sandbox's memory file: {e}"))?;
        let memory = Arc::new(memory);
        let platform: Box<dyn platform::Platform> = match args.platform {
            PlatformName::Ptrace => {
                let fd = memory
                    .fd()
                    .try_clone_to_owned()
                    .map_err(|e| format!("duplicating the memory file descriptor: {e}"))?;
                let ptrace = platform::ptrace::PtracePlatform::new(fd)
                    .map_err(|e| format!("starting the ptrace platform: {e}"))?;
                Box::new(ptrace)
            }
        };
        // A Sentry thread waits for each gofer reply, so the two need not run at once; on one
        // CPU a reply costs a same-CPU wake-up instead of a cross-CPU one
        // (platform-limits.md §7). The gofers, all their ring threads, inherit this pin; the
        // ptrace platform keeps the Sentry's threads on it. Measured again with several
        // rings (bench/RESULTS.md): unpinned, one process's stat took 2.7-3.6x longer, and only
        // 4 processes reading at once gained (≈25 %).
        if args.gofer_cpu == GoferCpu::Same {
            pin_to_current_cpu();
        }
        let mut gofers = Vec::new();
        let read_only = args.overlay == OverlayMode::Memory;
        let lower = serve(&mut gofers, &args.rootfs, read_only, args.gofer_rings)?;
        let (root, fs_type) = match args.overlay {
            OverlayMode::Memory => {
                use sentry::fs::devices::makedev;
                let upper = sentry::fs::tmpfs::Tmpfs::new(makedev(0, 4));
                let root =
                    sentry::fs::overlay::overlay(lower, upper, makedev(0, 5)).map_err(|e| {
                        format!("the root {} cannot be served: {e}", args.rootfs.display())
                    })?;
                (root, "overlay")
            }
            OverlayMode::None => (lower, "gofer"),
        };
        let mut volumes = Vec::new();
        for volume in &args.volumes {
            volumes.push((
                volume,
                serve(
                    &mut gofers,
                    &volume.host,
                    volume.read_only,
                    args.gofer_rings,
                )?,
            ));
        }
        let oci_plan = match &args.oci_mounts {
            Some(config) => {
                let spec = oci_spec::runtime::Spec::load(config)
                    .map_err(|e| format!("{}: {e}", config.display()))?;
                let bundle = config.parent().unwrap_or(Path::new("."));
                let (plan, plan_gofers) = mounts::plan(&spec, bundle, args.gofer_rings)?;
                gofers.extend(plan_gofers);
                Some(plan)
            }
            None => None,
        };
        if args.gofer_cpu == GoferCpu::Any {
            pin_to_current_cpu();
        }
        let config = Config {
            strace: args.strace,
            randomize: !args.no_randomize,
            uid: nix::unistd::getuid().as_raw(),
            gid: nix::unistd::getgid().as_raw(),
            groups: nix::unistd::getgroups()
                .map(|g| g.into_iter().map(|g| g.as_raw()).collect())
                .unwrap_or_default(),
            console,
        };
        let kernel = Kernel::new(platform, memory, config, root, fs_type);
        // The defaults are best effort (a root that cannot take a mount point loses that
        // mount); a config's mounts and the volumes were asked for.
        match oci_plan {
            Some(plan) => {
                for spec in &plan {
                    kernel.mount(spec).map_err(|e| e.to_string())?;
                }
            }
            None => {
                for spec in sentry::fs::mounts::default_plan(fs_type) {
                    if let Err(e) = kernel.mount(&spec) {
                        log::warn!("{e}");
                    }
                }
            }
        }
        for (volume, inode) in volumes {
            let spec = MountSpec {
                destination: volume.guest.clone(),
                kind: MountKind::Bind(inode),
                flags: MountFlags {
                    read_only: volume.read_only,
                    ..MountFlags::default()
                },
            };
            kernel
                .mount(&spec)
                .map_err(|e| format!("{e} (the volume {})", volume.host.display()))?;
        }
        // From here on the Sentry needs no host path: the gofers serve every file.
        crate::confine::sentry()?;
        for gofer in &gofers {
            gofer.watch();
        }
        Ok(Sandbox {
            kernel,
            _gofers: gofers,
        })
    }
}

/// Starts a gofer serving `dir` and returns the root of the file system it serves.
fn serve(
    gofers: &mut Vec<Gofer>,
    dir: &Path,
    read_only: bool,
    rings: u32,
) -> Result<Arc<dyn sentry::vfs::Inode>, String> {
    // Checked here so that a mistyped path is one clear line, not the gofer's failure.
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return Err(format!("{}: not a directory", dir.display())),
        Err(e) => return Err(format!("{}: {e}", dir.display())),
    }
    let gofer = Gofer::start(dir, read_only, rings)?;
    let root = sentry::fs::gofer::root(gofer.client.clone());
    gofers.push(gofer);
    root.map_err(|e| format!("{} cannot be served: {e}", dir.display()))
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
