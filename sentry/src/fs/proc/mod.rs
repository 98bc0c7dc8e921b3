//! procfs, mounted on /proc: the kernel's state as files, generated when they are opened
//! (see proc(5); the formats are Linux's, byte for byte in layout).
//!
//! - `/proc/self` and `/proc/thread-self` point at the directory of whoever reads them: the
//!   task the calling Sentry thread runs (`kernel::current`).
//! - `/proc/PID` for every process in the table (zombies included, as in Linux): its
//!   status, stat, maps, memory (cmdline, environ), limits, mounts, descriptors (fd/,
//!   fdinfo/) and the magic links exe, cwd, root and fd/N, which path resolution follows to
//!   the object itself rather than to a path (`Inode::magic_link`): a deleted file or a file
//!   with no name can be reopened through them.
//! - System-wide files: cpuinfo (the host's, captured at start-up), meminfo, stat, uptime,
//!   loadavg, version, filesystems, mounts, and a few /proc/sys values.
//!
//! Nodes hold the kernel and processes weakly: the kernel owns procfs through its mount
//! table, and /proc must keep no process alive. A node under /proc/PID stops standing once
//! its process is reaped (its cached names are looked up again and fail), and belongs to
//! the process's effective user.

mod process;
mod system;

use std::sync::{Arc, Weak};

use super::kernfs::{self, join, Children, Dir, File, Link, Meta, Scope};
use crate::abi::{Errno, CAP_SYS_PTRACE};
use crate::kernel::{current, FdTable, Kernel, ProcessView, ThreadGroup};
use crate::vfs::{
    path::absolute, DirEntry, FileType, Inode, Location, Mount, OpenFile, Owner, O_ACCMODE, O_PATH,
    O_RDONLY, O_RDWR, O_WRONLY,
};

/// What every node of one procfs shares.
struct ProcFs {
    kernel: Weak<Kernel>,
    dev: u64,
}

impl ProcFs {
    fn kernel(&self) -> Result<Arc<Kernel>, Errno> {
        self.kernel.upgrade().ok_or(Errno::ENOENT)
    }
}

/// The root of a new procfs on device `dev`, showing `kernel`.
pub fn new(kernel: Weak<Kernel>, dev: u64) -> Arc<dyn Inode> {
    let fs = Arc::new(ProcFs { kernel, dev });
    let boot_id = system::uuid();
    let mut fixed: Vec<(Vec<u8>, Arc<dyn Inode>)> = Vec::new();
    let mut link = |name: &str, target: kernfs::Generate| {
        let meta = Meta::new(dev, &join(b"/", name.as_bytes()), 0o777);
        fixed.push((name.as_bytes().to_vec(), Link::new(meta, target)));
    };
    let me = fs.clone();
    link(
        "self",
        Box::new(move || {
            me.kernel()?;
            let task = current().ok_or(Errno::ENOENT)?;
            Ok(task.tg.pid.to_string().into_bytes())
        }),
    );
    let me = fs.clone();
    link(
        "thread-self",
        Box::new(move || {
            me.kernel()?;
            let task = current().ok_or(Errno::ENOENT)?;
            Ok(format!("{}/task/{}", task.tg.pid, task.tid).into_bytes())
        }),
    );
    link("mounts", Box::new(|| Ok(b"self/mounts".to_vec())));
    type System = fn(&Kernel) -> Result<Vec<u8>, Errno>;
    let files: [(&str, System); 7] = [
        ("cpuinfo", |k| Ok(k.host.cpuinfo.clone())),
        ("filesystems", |_| Ok(system::filesystems())),
        ("loadavg", system::loadavg),
        ("meminfo", system::meminfo),
        ("stat", system::stat),
        ("uptime", system::uptime),
        ("version", system::version),
    ];
    for (name, generate) in files {
        let me = fs.clone();
        let meta = Meta::new(dev, &join(b"/", name.as_bytes()), 0o444);
        let file = File::new(meta, Box::new(move || generate(&*me.kernel()?)));
        fixed.push((name.as_bytes().to_vec(), file));
    }
    let sys = system::sys_tree(fs.kernel.clone(), boot_id);
    fixed.push((b"sys".to_vec(), kernfs::build(dev, b"/sys", sys, 0o555)));
    let sysvipc = system::sysvipc_tree(fs.kernel.clone());
    fixed.push((
        b"sysvipc".to_vec(),
        kernfs::build(dev, b"/sysvipc", sysvipc, 0o555),
    ));
    let pids = Box::new(Pids { fs: fs.clone() });
    Dir::with_children(Meta::new(dev, b"/", 0o555), fixed, pids)
}

/// The processes of /proc: one directory per pid.
struct Pids {
    fs: Arc<ProcFs>,
}

impl Children for Pids {
    fn list(&self) -> Result<Vec<DirEntry>, Errno> {
        let kernel = self.fs.kernel()?;
        Ok(kernel
            .processes
            .pids()
            .into_iter()
            .map(|pid| {
                let name = pid.to_string().into_bytes();
                DirEntry {
                    ino: kernfs::ino_of(&join(b"/", &name)),
                    name,
                    file_type: FileType::Directory,
                }
            })
            .collect())
    }

    fn lookup(&self, name: &[u8]) -> Result<Arc<dyn Inode>, Errno> {
        let pid = parse_number(name).ok_or(Errno::ENOENT)?;
        let kernel = self.fs.kernel()?;
        let tg = kernel.processes.get(pid).ok_or(Errno::ENOENT)?;
        let proc = Arc::new(Proc {
            fs: self.fs.clone(),
            pid,
            tg: Arc::downgrade(&tg),
        });
        Ok(process_dir(proc, join(b"/", name), false))
    }
}

/// A decimal number as /proc names one: digits only, no leading zero (Linux's name_to_int).
fn parse_number(name: &[u8]) -> Option<i32> {
    if name.is_empty() || (name.len() > 1 && name[0] == b'0') {
        return None;
    }
    if !name.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(name).ok()?.parse().ok()
}

/// The process a /proc/PID node shows, held weakly. It is the node's scope: the process's
/// effective user owns the node, which stands while the process is in the table.
struct Proc {
    fs: Arc<ProcFs>,
    pid: i32,
    tg: Weak<ThreadGroup>,
}

impl Proc {
    /// The process, or ESRCH once it has been reaped (even if its pid was reused).
    fn tg(&self) -> Result<Arc<ThreadGroup>, Errno> {
        let tg = self.tg.upgrade().ok_or(Errno::ESRCH)?;
        match self.fs.kernel()?.processes.get(self.pid) {
            Some(now) if Arc::ptr_eq(&now, &tg) => Ok(tg),
            _ => Err(Errno::ESRCH),
        }
    }

    fn view(&self) -> Result<ProcessView, Errno> {
        Ok(self.tg()?.view())
    }

    /// Its descriptor table; ENOENT for a zombie, which has none.
    fn fds(&self) -> Result<Arc<FdTable>, Errno> {
        self.view()?.fds.ok_or(Errno::ENOENT)
    }

    /// EACCES unless the reader may look inside the process (its files, its memory): it is
    /// the same user or has CAP_SYS_PTRACE, a simplified ptrace_may_access(PTRACE_MODE_READ).
    fn check_access(&self) -> Result<(), Errno> {
        let Some(reader) = current().and_then(|c| c.tg.view().creds) else {
            return Ok(());
        };
        let target = self.view()?.creds;
        match target {
            _ if reader.capable(CAP_SYS_PTRACE) => Ok(()),
            Some(t) if t.uid == reader.euid && t.euid == reader.euid => Ok(()),
            _ => Err(Errno::EACCES),
        }
    }
}

impl Scope for Proc {
    fn owner(&self) -> Owner {
        let creds = self.tg.upgrade().and_then(|tg| tg.view().creds);
        creds.map_or(Owner { uid: 0, gid: 0 }, |c| Owner {
            uid: c.euid,
            gid: c.egid,
        })
    }

    fn valid(&self) -> bool {
        self.tg().is_ok()
    }
}

/// Makes a file of a process from its generator.
type ProcessFile = fn(&Proc) -> Result<Vec<u8>, Errno>;
/// Finds a place of a process (its executable, working directory, root).
type ProcessPlace = fn(&Proc) -> Result<Location, Errno>;

/// The directory of a process (/proc/PID) or of one of its threads (/proc/PID/task/TID,
/// which has no task/ of its own), at `path`.
fn process_dir(proc: Arc<Proc>, path: Vec<u8>, thread: bool) -> Arc<dyn Inode> {
    let dev = proc.fs.dev;
    let scope: Arc<dyn Scope> = proc.clone();
    let meta = |name: &str, perm: u32| {
        Meta::new(dev, &join(&path, name.as_bytes()), perm).scoped(scope.clone())
    };
    let mut fixed: Vec<(Vec<u8>, Arc<dyn Inode>)> = Vec::new();
    if !thread {
        let tasks = Box::new(Tasks {
            proc: proc.clone(),
            path: join(&path, b"task"),
        });
        fixed.push((
            b"task".to_vec(),
            Dir::with_children(meta("task", 0o555), Vec::new(), tasks),
        ));
    }
    for (name, info, perm) in [("fd", false, 0o500), ("fdinfo", true, 0o555)] {
        let fds = Box::new(Fds {
            proc: proc.clone(),
            path: join(&path, name.as_bytes()),
            info,
        });
        let dir = Dir::with_children(meta(name, perm), Vec::new(), fds);
        fixed.push((name.as_bytes().to_vec(), dir));
    }
    let files: [(&str, u32, ProcessFile); 12] = [
        ("cgroup", 0o444, |_| Ok(b"0::/\n".to_vec())),
        ("cmdline", 0o444, process::cmdline),
        ("comm", 0o444, process::comm),
        ("environ", 0o400, process::environ),
        ("limits", 0o444, process::limits),
        ("maps", 0o444, process::maps),
        ("mountinfo", 0o444, process::mountinfo),
        ("mounts", 0o444, process::mounts),
        ("stat", 0o444, process::stat),
        ("smaps_rollup", 0o444, process::smaps_rollup),
        ("statm", 0o444, process::statm),
        ("status", 0o444, process::status),
    ];
    for (name, perm, generate) in files {
        let p = proc.clone();
        let file = File::new(meta(name, perm), Box::new(move || generate(&p)));
        fixed.push((name.as_bytes().to_vec(), file));
    }
    let links: [(&str, ProcessPlace); 3] = [
        ("cwd", |p| Ok(fs_state(p)?.cwd)),
        ("exe", |p| {
            let view = p.view()?;
            // A zombie has let go of its memory, and with it of its executable.
            view.mm.as_ref().ok_or(Errno::ENOENT)?;
            view.exe_file.ok_or(Errno::ENOENT)
        }),
        ("root", |p| Ok(fs_state(p)?.root)),
    ];
    for (name, place) in links {
        let (p, q) = (proc.clone(), proc.clone());
        let link = Link::magic(
            meta(name, 0o777),
            Box::new(move || {
                p.check_access()?;
                let kernel = p.fs.kernel()?;
                Ok(path_text(&place(&p)?, &reader_root(&kernel)))
            }),
            Box::new(move || {
                q.check_access()?;
                place(&q)
            }),
            0,
        );
        fixed.push((name.as_bytes().to_vec(), link));
    }
    fixed.sort_by(|a, b| a.0.cmp(&b.0));
    Dir::new(meta_at(dev, &path, 0o555, scope.clone()), fixed)
}

fn meta_at(dev: u64, path: &[u8], perm: u32, scope: Arc<dyn Scope>) -> Meta {
    Meta::new(dev, path, perm).scoped(scope)
}

/// A process's root and working directory; ENOENT for a zombie.
fn fs_state(p: &Proc) -> Result<crate::kernel::FsState, Errno> {
    let fs = p.view()?.fs.ok_or(Errno::ENOENT)?;
    let state = fs.lock().clone();
    Ok(state)
}

/// The root directory of the task that asks, which paths are shown relative to (as
/// Linux's d_path does); the sandbox's root for a Sentry thread of its own.
fn reader_root(kernel: &Kernel) -> Location {
    current()
        .and_then(|c| c.tg.view().fs)
        .map_or_else(|| kernel.root.clone(), |fs| fs.lock().root.clone())
}

/// How a link under /proc/PID names a place: its absolute path, with " (deleted)" once it
/// has been removed; for a file with no name, its kind and inode number ("pipe:[5]").
fn path_text(place: &Location, root: &Location) -> Vec<u8> {
    let attr = place.dentry.inode.attr();
    if place.mount.is_detached() {
        let inode = place.dentry.inode.as_any();
        if let Some(anon) = inode.downcast_ref::<crate::fs::anon::AnonInode>() {
            return format!("anon_inode:[{}]", anon.name).into_bytes();
        }
        let ino = attr.map_or(0, |a| a.ino);
        let kind = attr.ok().and_then(|a| a.file_type());
        return match kind {
            Some(FileType::Fifo) => format!("pipe:[{ino}]"),
            Some(FileType::Socket) => format!("socket:[{ino}]"),
            _ => format!("anon_inode:[{ino}]"),
        }
        .into_bytes();
    }
    let mut text = absolute(place, root);
    if attr.is_ok_and(|a| a.nlink == 0) {
        text.extend_from_slice(b" (deleted)");
    }
    text
}

/// Where an open file is: its place in the tree, or a detached one for a file with none.
fn place_of(file: &OpenFile) -> Location {
    file.location
        .clone()
        .unwrap_or_else(|| Mount::detached(file.inode.clone()))
}

/// The threads of a process (task/). A thread's directory shows its process's files.
struct Tasks {
    proc: Arc<Proc>,
    path: Vec<u8>,
}

impl Tasks {
    /// The live threads; a zombie shows its leader still.
    fn tids(&self) -> Result<Vec<i32>, Errno> {
        let tids = self.proc.tg()?.tids();
        Ok(if tids.is_empty() {
            vec![self.proc.pid]
        } else {
            tids
        })
    }
}

impl Children for Tasks {
    fn list(&self) -> Result<Vec<DirEntry>, Errno> {
        Ok(self
            .tids()?
            .into_iter()
            .map(|tid| {
                let name = tid.to_string().into_bytes();
                DirEntry {
                    ino: kernfs::ino_of(&join(&self.path, &name)),
                    name,
                    file_type: FileType::Directory,
                }
            })
            .collect())
    }

    fn lookup(&self, name: &[u8]) -> Result<Arc<dyn Inode>, Errno> {
        let tid = parse_number(name).ok_or(Errno::ENOENT)?;
        if !self.tids()?.contains(&tid) {
            return Err(Errno::ENOENT);
        }
        Ok(process_dir(self.proc.clone(), join(&self.path, name), true))
    }
}

/// A process's descriptors: fd/ (magic links) or fdinfo/ (files).
struct Fds {
    proc: Arc<Proc>,
    path: Vec<u8>,
    info: bool,
}

impl Children for Fds {
    fn list(&self) -> Result<Vec<DirEntry>, Errno> {
        self.proc.check_access()?;
        let file_type = if self.info {
            FileType::Regular
        } else {
            FileType::Symlink
        };
        // A zombie has no descriptors left: its fd/ is empty.
        let Some(fds) = self.proc.view()?.fds else {
            return Ok(Vec::new());
        };
        Ok(fds
            .entries()
            .into_iter()
            .map(|(fd, ..)| {
                let name = fd.to_string().into_bytes();
                DirEntry {
                    ino: kernfs::ino_of(&join(&self.path, &name)),
                    name,
                    file_type,
                }
            })
            .collect())
    }

    fn lookup(&self, name: &[u8]) -> Result<Arc<dyn Inode>, Errno> {
        self.proc.check_access()?;
        let fd = parse_number(name).ok_or(Errno::ENOENT)?;
        let file = self.proc.fds()?.get(fd as u64).map_err(|_| Errno::ENOENT)?;
        let scope = Arc::new(Fd {
            proc: self.proc.clone(),
            fd,
            file: Arc::downgrade(&file),
        });
        let path = join(&self.path, name);
        if self.info {
            let meta = meta_at(self.proc.fs.dev, &path, 0o444, scope.clone());
            return Ok(File::new(meta, Box::new(move || scope.fdinfo())));
        }
        // lr-x------, l-wx------ or lrwx------ by how the file is open, as Linux shows.
        let flags = file.flags();
        let perm = match flags & O_ACCMODE {
            _ if flags & O_PATH != 0 => 0,
            O_RDONLY => 0o500,
            O_WRONLY => 0o300,
            O_RDWR => 0o700,
            _ => 0,
        };
        let meta = meta_at(self.proc.fs.dev, &path, perm, scope.clone());
        let other = scope.clone();
        Ok(Link::magic(
            meta,
            Box::new(move || {
                let file = scope.file()?;
                let kernel = scope.proc.fs.kernel()?;
                Ok(path_text(&place_of(&file), &reader_root(&kernel)))
            }),
            Box::new(move || Ok(place_of(&*other.file()?))),
            64,
        ))
    }
}

/// One descriptor of a process: the scope of its fd/N and fdinfo/N, which stand while that
/// number holds the same open file.
struct Fd {
    proc: Arc<Proc>,
    fd: i32,
    file: Weak<OpenFile>,
}

impl Fd {
    /// The open file, for a reader allowed to see it.
    fn file(&self) -> Result<Arc<OpenFile>, Errno> {
        self.proc.check_access()?;
        self.still_open()
    }

    /// The open file, while the descriptor still holds it.
    fn still_open(&self) -> Result<Arc<OpenFile>, Errno> {
        let file = self.file.upgrade().ok_or(Errno::ENOENT)?;
        let now = self
            .proc
            .fds()?
            .get(self.fd as u64)
            .map_err(|_| Errno::ENOENT)?;
        if !Arc::ptr_eq(&file, &now) {
            return Err(Errno::ENOENT);
        }
        Ok(file)
    }

    fn fdinfo(&self) -> Result<Vec<u8>, Errno> {
        let file = self.file()?;
        let cloexec = self.proc.fds()?.cloexec(self.fd as u64).unwrap_or(false);
        let mnt_id = file.location.as_ref().map_or(0, |l| l.mount.id);
        let ino = file.attr().map_or(0, |a| a.ino);
        let mut text = process::fdinfo_text(file.offset(), file.flags(), cloexec, mnt_id, ino);
        text.extend_from_slice(&file.fdinfo());
        Ok(text)
    }
}

impl Scope for Fd {
    fn owner(&self) -> Owner {
        self.proc.owner()
    }

    fn valid(&self) -> bool {
        self.still_open().is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_names_are_plain_decimals() {
        assert_eq!(parse_number(b"1"), Some(1));
        assert_eq!(parse_number(b"4194304"), Some(4194304));
        assert_eq!(parse_number(b"0"), Some(0));
        assert_eq!(parse_number(b"01"), None);
        assert_eq!(parse_number(b"+1"), None);
        assert_eq!(parse_number(b"-1"), None);
        assert_eq!(parse_number(b""), None);
        assert_eq!(parse_number(b"99999999999"), None);
        assert_eq!(parse_number(b"self"), None);
    }
}
