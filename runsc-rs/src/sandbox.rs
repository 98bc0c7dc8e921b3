//! Booting a sandbox: the memory file, the platform, the gofers serving the root and the
//! volumes, the kernel, then confining runsc-rs itself. `runsc-rs do` and an OCI
//! container's `boot` process both start here.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::gofer::Gofer;

use clap::ValueEnum;
use sentry::fs::mounts::{MountFlags, MountKind, MountSpec};
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
pub const DEFAULT_GOFER_RINGS: u32 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlatformName {
    /// PTRACE_SYSEMU stub processes.
    Ptrace,
    /// A KVM virtual machine (platform::kvm).
    Kvm,
}

/// Where the gofers run (`--gofer-cpu`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GoferCpu {
    /// Pinned with the Sentry to the CPU it started on.
    Same,
    /// Unpinned: started before the Sentry pins itself.
    Any,
}

/// What becomes of the sandbox's writes to its root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OverlayMode {
    /// Into sandbox memory, over a read-only root: the host is never changed.
    Memory,
    /// Through to the root directory itself.
    None,
}

/// A host directory mounted in the sandbox (`--volume HOST:GUEST[:ro]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub host: PathBuf,
    pub guest: String,
    pub read_only: bool,
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

/// What is mounted over the root.
pub enum Mounts<'a> {
    /// `runsc-rs do`'s: /dev, /proc, /sys, ... (`fs::mounts::default_plan`), each as far
    /// as the root allows.
    Default,
    /// A container's: config.json's `mounts`, masked and read-only paths, all or nothing.
    Oci {
        spec: &'a oci_spec::runtime::Spec,
        bundle: &'a Path,
    },
}

/// How to build a sandbox.
pub struct Setup<'a> {
    pub platform: PlatformName,
    /// The host directory served as the root.
    pub rootfs: &'a Path,
    pub overlay: OverlayMode,
    pub mounts: Mounts<'a>,
    pub volumes: &'a [Volume],
    pub gofer_rings: u32,
    pub gofer_cpu: GoferCpu,
}

/// A booted sandbox: its kernel and the gofers serving its files (each stops when
/// dropped).
pub struct Sandbox {
    pub kernel: Arc<Kernel>,
    /// Dropped after the kernel has run, which stops them.
    _gofers: Vec<Gofer>,
}

impl Sandbox {
    /// Creates the memory file and the platform, starts the gofers (the root's and one per
    /// volume), builds the kernel with its mounts, then confines runsc-rs itself.
    pub fn boot(setup: &Setup<'_>, config: Config) -> Result<Sandbox, String> {
        // On kvm the memory file is the guest's physical memory, which must fit the layout
        // of the platform's guest-physical space.
        let size = match setup.platform {
            PlatformName::Ptrace => MEMORY_FILE_SIZE,
            PlatformName::Kvm => MEMORY_FILE_SIZE.min(platform::kvm::guest::MAX_MEMORY),
        };
        let memory = MemoryFile::new(size)
            .map_err(|e| format!("creating the sandbox's memory file: {e}"))?;
        let memory = Arc::new(memory);
        let fd = memory
            .fd()
            .try_clone_to_owned()
            .map_err(|e| format!("duplicating the memory file descriptor: {e}"))?;
        let platform: Box<dyn platform::Platform> = match setup.platform {
            PlatformName::Ptrace => Box::new(
                platform::ptrace::PtracePlatform::new(fd)
                    .map_err(|e| format!("starting the ptrace platform: {e}"))?,
            ),
            PlatformName::Kvm => Box::new(
                platform::kvm::KvmPlatform::new(fd)
                    .map_err(|e| format!("starting the KVM platform: {e}"))?,
            ),
        };
        // A Sentry thread waits for each gofer reply, so the two need not run at once; on one
        // CPU a reply costs a same-CPU wake-up instead of a cross-CPU one
        // (platform-limits.md §7). The gofers, all their ring threads, inherit this pin; the
        // ptrace platform keeps the Sentry's threads on it. Measured again with several
        // rings (bench/RESULTS.md): unpinned, one process's stat took 2.7-3.6x longer, and only
        // 4 processes reading at once gained (≈25 %).
        if setup.gofer_cpu == GoferCpu::Same {
            pin_to_current_cpu();
        }
        let mut gofers = Vec::new();
        let read_only = setup.overlay != OverlayMode::None;
        let lower = serve(&mut gofers, setup.rootfs, read_only, setup.gofer_rings)?;
        let (root, fs_type) = match setup.overlay {
            OverlayMode::Memory => {
                use sentry::fs::devices::makedev;
                let upper = sentry::fs::tmpfs::Tmpfs::new(makedev(0, 4));
                let root =
                    sentry::fs::overlay::overlay(lower, upper, makedev(0, 5)).map_err(|e| {
                        format!("the root {} cannot be served: {e}", setup.rootfs.display())
                    })?;
                (root, "overlay")
            }
            OverlayMode::None => (lower, "gofer"),
        };
        let mut volumes = Vec::new();
        for volume in setup.volumes {
            volumes.push((
                volume,
                serve(
                    &mut gofers,
                    &volume.host,
                    volume.read_only,
                    setup.gofer_rings,
                )?,
            ));
        }
        let plan = match setup.mounts {
            Mounts::Oci { spec, bundle } => {
                let (plan, plan_gofers) =
                    crate::container::mounts::plan(spec, bundle, setup.gofer_rings)?;
                gofers.extend(plan_gofers);
                Some(plan)
            }
            Mounts::Default => None,
        };
        if setup.gofer_cpu == GoferCpu::Any {
            pin_to_current_cpu();
        }
        let kernel = Kernel::new(platform, memory, config, root, fs_type);
        match plan {
            Some(plan) => {
                for spec in &plan {
                    kernel.mount(spec).map_err(|e| e.to_string())?;
                }
            }
            // The defaults are best effort (a root that cannot take a mount point loses
            // that mount); a config's mounts and the volumes were asked for.
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
        let platform_ioctls: &[u64] = match setup.platform {
            PlatformName::Ptrace => &[],
            PlatformName::Kvm => platform::kvm::SENTRY_IOCTLS,
        };
        crate::confine::sentry(platform_ioctls)?;
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
