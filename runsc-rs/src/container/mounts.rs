//! A container's mounts: config.json's `mounts`, then `linux.readonlyPaths` and
//! `linux.maskedPaths` (runc's order), as the Sentry's mount plan (`sentry::fs::mounts`),
//! with the gofers that serve bind mounts' sources.
//!
//! [`parse`] checks the config and looks at each bind source on the host; [`start`] starts
//! the gofers: one per bound directory, and one for all bound files together (Docker binds
//! three: resolv.conf, hostname, hosts), serving only those files.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{Mount, Spec};
use sentry::fs::mounts::{parse_options, MountFlags, MountKind, MountSpec};

use crate::gofer::Gofer;

/// One mount of the container as config.json asks for it, bind sources resolved.
#[derive(Debug, Clone)]
pub struct Planned {
    /// An absolute path in the container.
    pub destination: String,
    pub source: Source,
    pub flags: MountFlags,
}

/// Where a [`Planned`] mount's file system comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A file system the Sentry makes (never `MountKind::Bind`).
    Sentry(MountKind),
    /// A host directory, served by a gofer of its own.
    HostDir(PathBuf),
    /// A host file (or other non-directory), served with the container's other files.
    HostFile(PathBuf),
}

/// The mount types a container may ask for; `bind` may also be an option of any type.
const SUPPORTED: &str = "bind, tmpfs, proc, sysfs, devpts, mqueue, cgroup and cgroup2";

/// The container's mounts from `spec`, whose bundle is `bundle` (relative bind sources
/// are relative to it, as runc takes them).
pub fn parse(spec: &Spec, bundle: &Path) -> Result<Vec<Planned>, String> {
    let mut planned = Vec::new();
    for mount in spec.mounts().iter().flatten() {
        planned.push(parse_mount(mount, bundle)?);
    }
    let linux = spec.linux().as_ref();
    let read_only = linux.and_then(|l| l.readonly_paths().as_ref());
    let masked = linux.and_then(|l| l.masked_paths().as_ref());
    let paths = [(read_only, MountKind::ReadOnly), (masked, MountKind::Mask)];
    for (paths, kind) in paths {
        for path in paths.into_iter().flatten() {
            planned.push(Planned {
                destination: absolute(path),
                source: Source::Sentry(kind.clone()),
                flags: MountFlags::default(),
            });
        }
    }
    Ok(planned)
}

/// A destination as an absolute path: runc still takes a relative one from "/".
fn absolute(path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    }
}

fn parse_mount(mount: &Mount, bundle: &Path) -> Result<Planned, String> {
    let destination = mount
        .destination()
        .to_str()
        .map(absolute)
        .ok_or_else(|| format!("mount destination {:?} is not UTF-8", mount.destination()))?;
    let typ = mount.typ().as_deref().unwrap_or_default();
    let options = parse_options(mount.options().as_deref().unwrap_or_default())
        .map_err(|e| format!("mount at {destination}: {e}"))?;
    let source = if options.bind || typ == "bind" {
        let source = mount
            .source()
            .as_ref()
            .ok_or_else(|| format!("bind mount at {destination}: no source"))?;
        let source = bundle.join(source);
        let meta = std::fs::metadata(&source)
            .map_err(|e| format!("bind mount at {destination}: {}: {e}", source.display()))?;
        if meta.is_dir() {
            Source::HostDir(source)
        } else {
            Source::HostFile(source)
        }
    } else {
        Source::Sentry(match typ {
            "tmpfs" => MountKind::Tmpfs(options.tmpfs()),
            "proc" => MountKind::Proc,
            "sysfs" => MountKind::Sysfs,
            "devpts" => MountKind::Devpts(options.devpts()),
            "mqueue" => MountKind::Mqueue,
            "cgroup" | "cgroup2" => MountKind::Cgroup,
            "" => return Err(format!("mount at {destination}: no type")),
            other => {
                return Err(format!(
                    "mount at {destination}: type {other:?} is not supported (runsc-rs mounts {SUPPORTED})"
                ))
            }
        })
    };
    Ok(Planned {
        destination,
        source,
        flags: options.flags,
    })
}

/// Starts the gofers `planned` needs (each with `rings` rings, the files' with one) and
/// returns the Sentry's plan, in the same order, with the gofers, which stop when dropped.
pub fn start(planned: Vec<Planned>, rings: u32) -> Result<(Vec<MountSpec>, Vec<Gofer>), String> {
    let mut gofers = Vec::new();
    let files: Vec<(PathBuf, bool)> = planned
        .iter()
        .filter_map(|p| match &p.source {
            Source::HostFile(path) => Some((path.clone(), p.flags.read_only)),
            _ => None,
        })
        .collect();
    // The files' gofer is asked for little (Docker's files are read at start-up): one ring.
    let files_root = if files.is_empty() {
        None
    } else {
        let gofer = Gofer::start_files(&files, 1)?;
        let root = sentry::fs::gofer::root(gofer.client.clone())
            .map_err(|e| format!("the bind-mounted files cannot be served: {e}"))?;
        gofers.push(gofer);
        Some(root)
    };
    let mut next_file = 0usize;
    let mut plan = Vec::with_capacity(planned.len());
    for p in planned {
        let kind = match p.source {
            Source::Sentry(kind) => kind,
            Source::HostDir(dir) => {
                let gofer = Gofer::start(&dir, p.flags.read_only, rings)?;
                let root = sentry::fs::gofer::root(gofer.client.clone())
                    .map_err(|e| format!("{} cannot be served: {e}", dir.display()))?;
                gofers.push(gofer);
                MountKind::Bind(root)
            }
            Source::HostFile(file) => {
                let name = next_file.to_string();
                next_file += 1;
                let inode = files_root
                    .as_ref()
                    .ok_or("no gofer serves the files")?
                    .lookup(name.as_bytes())
                    .map_err(|e| format!("{} cannot be served: {e}", file.display()))?;
                MountKind::Bind(inode)
            }
        };
        plan.push(MountSpec {
            destination: p.destination,
            kind,
            flags: p.flags,
        });
    }
    Ok((plan, gofers))
}

/// [`parse`], then [`start`]: the container's mount plan and its gofers.
pub fn plan(
    spec: &Spec,
    bundle: &Path,
    rings: u32,
) -> Result<(Vec<MountSpec>, Vec<Gofer>), String> {
    start(parse(spec, bundle)?, rings)
}

#[cfg(test)]
mod tests;
