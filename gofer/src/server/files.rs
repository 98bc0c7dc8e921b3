//! The file server proper: the fid table and one handler per operation. Transport-free:
//! [`Files::handle`] takes an opcode and a payload and returns a status and a payload.

use std::collections::HashMap;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use nix::errno::Errno;
use nix::fcntl::{fcntl, renameat2, AtFlags, FcntlArg, OFlag, RenameFlags};
use nix::libc;
use nix::sys::stat::{
    fchmod, fchmodat, futimens, mkdirat, mknodat, utimensat, FchmodatFlags, Mode, SFlag,
    UtimensatFlags,
};
use nix::sys::uio::{pread, pwrite};
use nix::unistd::{
    fchown, fchownat, fdatasync, fsync, ftruncate, linkat, lseek, symlinkat, unlinkat, Gid, Uid,
    UnlinkatFlags, Whence,
};

use super::host::{
    check_same, errno_of_io, id_at, open_beneath, reopen_dir, stat_fd, statfs_fd, timespec, FileId,
};
use super::ServerOptions;
use crate::proto::{
    self, errno_status, setattr, Created, Dirent, Fid, FidAttr, Name, Request, Response, SetAttr,
    Timespec, AT_REMOVEDIR, FSYNC_DATASYNC, MIN_VERSION, VERSION,
};

/// Where a node was found: its parent directory and its name there. Kept so that a node can
/// be opened for I/O by name (`openat(parent, name, O_NOFOLLOW)`) instead of through the
/// `/proc/self/fd` magic link; updated by `Rename`.
#[derive(Clone, Debug)]
struct Location {
    parent: Arc<OwnedFd>,
    parent_id: FileId,
    name: Name,
}

/// A walked node: a host `O_PATH | O_NOFOLLOW` descriptor. The parent's descriptor is shared
/// by its children, so closing a directory's fid does not strand them.
#[derive(Clone, Debug)]
struct Node {
    fd: Arc<OwnedFd>,
    id: FileId,
    /// `S_IFMT` bits; an inode never changes type.
    file_type: u32,
    /// `None` only for the root.
    location: Option<Location>,
}

/// An open file or directory, for I/O.
#[derive(Debug)]
struct OpenFile {
    fd: OwnedFd,
    file_type: u32,
    readable: bool,
    writable: bool,
}

#[derive(Debug)]
enum Entry {
    Node(Node),
    File(OpenFile),
}

/// A response to send.
pub(super) struct Reply {
    pub status: u32,
    pub payload: Vec<u8>,
    /// The request was `Shutdown`: stop serving once this is sent.
    pub shutdown: bool,
}

/// The state of one connection: the root, the fids handed out, the negotiated version.
pub(super) struct Files {
    root: Arc<OwnedFd>,
    root_id: FileId,
    fids: HashMap<u64, Entry>,
    /// Fids are never reused, so a stale fid cannot alias a newer handle.
    next_fid: u64,
    options: ServerOptions,
    /// The ring's data slot size: the largest payload either way.
    max_payload: u32,
    /// Set by the handshake.
    version: Option<u32>,
    /// Cleared if the kernel lacks openat2.
    pub(super) use_openat2: bool,
}

const S_IFDIR: u32 = libc::S_IFDIR;
const S_IFREG: u32 = libc::S_IFREG;
const S_IFLNK: u32 = libc::S_IFLNK;
const S_IFIFO: u32 = libc::S_IFIFO;

impl Files {
    pub fn new(root: OwnedFd, root_id: FileId, options: ServerOptions, max_payload: u32) -> Self {
        Files {
            root: Arc::new(root),
            root_id,
            fids: HashMap::new(),
            next_fid: 1,
            options,
            max_payload,
            version: None,
            use_openat2: true,
        }
    }

    /// Serves one request. Never panics on any input; every failure is an errno.
    pub fn handle(&mut self, opcode: u32, payload: &[u8]) -> Reply {
        let request = match Request::decode(opcode, payload) {
            Ok(request) => request,
            Err(e) => return Reply::error(e.errno(), false),
        };
        let shutdown = matches!(request, Request::Shutdown);
        match self.dispatch(request) {
            Ok(response) => {
                let payload = response.to_bytes();
                if payload.len() > self.max_payload as usize {
                    // The handlers size responses to fit; this would be a server bug.
                    return Reply::error(Errno::EIO, shutdown);
                }
                Reply {
                    status: 0,
                    payload,
                    shutdown,
                }
            }
            Err(errno) => Reply::error(errno, shutdown),
        }
    }

    fn dispatch(&mut self, request: Request) -> Result<Response, Errno> {
        let op = request.opcode();
        match request {
            Request::Version { version } => return self.version(version),
            Request::Shutdown => return Ok(Response::Empty),
            _ if self.version.is_none() => return Err(Errno::EPROTO),
            _ if self.options.read_only && op.is_mutation() => return Err(Errno::EROFS),
            _ => {}
        }
        match request {
            Request::Walk { dir, names } => self.walk(dir, names),
            Request::Stat { fid } => Ok(Response::Attr(stat_fd(self.any_fd(fid)?.as_fd())?.1)),
            Request::Open { fid, flags } => self.open(fid, flags),
            Request::Read { fid, offset, len } => self.read(fid, offset, len),
            Request::Write { fid, offset, data } => self.write(fid, offset, &data),
            Request::Create {
                dir,
                name,
                flags,
                mode,
                uid,
                gid,
            } => self.create(dir, name, flags, mode, (uid, gid)),
            Request::Mkdir {
                dir,
                name,
                mode,
                uid,
                gid,
            } => self.mkdir(dir, name, mode, (uid, gid)),
            Request::Mknod {
                dir,
                name,
                mode,
                rdev: _,
                uid,
                gid,
            } => self.mknod(dir, name, mode, (uid, gid)),
            Request::Symlink {
                dir,
                name,
                target,
                uid,
                gid,
            } => self.symlink(dir, name, &target, (uid, gid)),
            Request::Link { dir, name, target } => self.link(dir, name, target),
            Request::Unlink { dir, name, flags } => {
                let dir = self.dir(dir)?;
                let flags = if flags & AT_REMOVEDIR != 0 {
                    UnlinkatFlags::RemoveDir
                } else {
                    UnlinkatFlags::NoRemoveDir
                };
                unlinkat(dir.fd.as_fd(), name.as_bytes(), flags)?;
                Ok(Response::Empty)
            }
            Request::Rename {
                old_dir,
                old_name,
                new_dir,
                new_name,
                flags,
            } => self.rename(old_dir, old_name, new_dir, new_name, flags),
            Request::Readlink { fid } => {
                let node = self.node(fid)?;
                if node.file_type != S_IFLNK {
                    // As readlink(2) of something that is not a symlink.
                    return Err(Errno::EINVAL);
                }
                // readlinkat(2) with an empty path reads the link an O_PATH descriptor names.
                let target = nix::fcntl::readlinkat(node.fd.as_fd(), "")?;
                let target = std::os::unix::ffi::OsStringExt::into_vec(target);
                if target.len() > self.max_payload as usize {
                    return Err(Errno::ENAMETOOLONG);
                }
                Ok(Response::Data(target))
            }
            Request::Getdents { fid, cookie, max } => self.getdents(fid, cookie, max),
            Request::SetAttr { fid, attr } => self.set_attr(fid, &attr),
            Request::StatFs { fid } => Ok(Response::StatFs(statfs_fd(self.any_fd(fid)?.as_fd())?)),
            Request::Fsync { fid, flags } => {
                let file = self.file(fid)?;
                if flags & FSYNC_DATASYNC != 0 {
                    fdatasync(&file.fd)?;
                } else {
                    fsync(&file.fd)?;
                }
                Ok(Response::Empty)
            }
            Request::Close { fid } => match self.fids.remove(&fid.0) {
                Some(_) => Ok(Response::Empty),
                None => Err(Errno::EBADF),
            },
            Request::Version { .. } | Request::Shutdown => Err(Errno::EPROTO),
        }
    }

    // ---- The fid table. ----

    /// Fails with `EMFILE` unless `n` more fids fit: checked before any host object is made,
    /// so a full table leaves nothing behind.
    fn reserve(&self, n: usize) -> Result<(), Errno> {
        if self.fids.len().saturating_add(n) > self.options.max_fids {
            return Err(Errno::EMFILE);
        }
        Ok(())
    }

    fn insert(&mut self, entry: Entry) -> Result<Fid, Errno> {
        self.reserve(1)?;
        let fid = self.next_fid;
        self.next_fid += 1;
        self.fids.insert(fid, entry);
        Ok(Fid(fid))
    }

    /// A node fid (`EBADF` for an unknown fid or an open file, as a syscall on a descriptor
    /// of the wrong kind).
    fn node(&self, fid: Fid) -> Result<Node, Errno> {
        match self.fids.get(&fid.0) {
            Some(Entry::Node(node)) => Ok(node.clone()),
            _ => Err(Errno::EBADF),
        }
    }

    /// A node fid that is a directory (`ENOTDIR` otherwise).
    fn dir(&self, fid: Fid) -> Result<Node, Errno> {
        let node = self.node(fid)?;
        if node.file_type != S_IFDIR {
            return Err(Errno::ENOTDIR);
        }
        Ok(node)
    }

    /// An open-file fid (`EBADF` otherwise, as I/O on an `O_PATH` descriptor).
    fn file(&self, fid: Fid) -> Result<&OpenFile, Errno> {
        match self.fids.get(&fid.0) {
            Some(Entry::File(file)) => Ok(file),
            _ => Err(Errno::EBADF),
        }
    }

    /// The descriptor of any fid, for operations that work on both kinds.
    fn any_fd(&self, fid: Fid) -> Result<&OwnedFd, Errno> {
        match self.fids.get(&fid.0) {
            Some(Entry::Node(node)) => Ok(&node.fd),
            Some(Entry::File(file)) => Ok(&file.fd),
            None => Err(Errno::EBADF),
        }
    }

    fn new_node(&mut self, dir: &Node, name: Name, fd: OwnedFd) -> Result<FidAttr, Errno> {
        let (id, attr) = stat_fd(fd.as_fd())?;
        let node = Node {
            fd: Arc::new(fd),
            id,
            file_type: attr.file_type(),
            location: Some(Location {
                parent: Arc::clone(&dir.fd),
                parent_id: dir.id,
                name,
            }),
        };
        let fid = self.insert(Entry::Node(node))?;
        Ok(FidAttr { fid, attr })
    }

    /// Opens a node for I/O by its parent and name, and checks it is still the same inode.
    /// `O_NONBLOCK` keeps the open from blocking should the name now be a FIFO; it is cleared
    /// again so that regular-file I/O behaves as usual.
    fn reopen(&mut self, node: &Node, flags: OFlag) -> Result<OwnedFd, Errno> {
        let loc = node.location.as_ref().ok_or(Errno::ESTALE)?;
        let fd = open_beneath(
            loc.parent.as_fd(),
            &loc.name,
            flags | OFlag::O_NONBLOCK,
            Mode::empty(),
            &mut self.use_openat2,
        )?;
        check_same(&fd, node.id)?;
        fcntl(&fd, FcntlArg::F_SETFL(flags & OFlag::O_APPEND))?;
        Ok(fd)
    }

    /// Removes what a failed creating operation made, if the name still names it.
    fn remove_created(&self, dir: &Node, name: &Name, id: FileId, flags: UnlinkatFlags) {
        if id_at(dir.fd.as_fd(), name) == Ok(id) {
            // Best effort: the operation already failed with a better errno.
            let _ = unlinkat(dir.fd.as_fd(), name.as_bytes(), flags);
        }
    }

    // ---- Operations. ----

    fn version(&mut self, version: u32) -> Result<Response, Errno> {
        if self.version.is_some() {
            return Err(Errno::EPROTO);
        }
        if version < MIN_VERSION {
            return Err(Errno::EPROTONOSUPPORT);
        }
        let agreed = version.min(VERSION);
        let (id, attr) = stat_fd(self.root.as_fd())?;
        if id != self.root_id {
            return Err(Errno::ESTALE);
        }
        let root = Node {
            fd: Arc::clone(&self.root),
            id,
            file_type: S_IFDIR,
            location: None,
        };
        let fid = self.insert(Entry::Node(root))?;
        self.version = Some(agreed);
        Ok(Response::Version {
            version: agreed,
            max_payload: self.max_payload,
            root: FidAttr { fid, attr },
        })
    }

    fn walk(&mut self, dir: Fid, names: Vec<Name>) -> Result<Response, Errno> {
        if names.len() > proto::max_walk(self.max_payload) {
            return Err(Errno::EINVAL);
        }
        let mut cur = self.dir(dir)?;
        let mut nodes = Vec::with_capacity(names.len());
        let mut error = None;
        for name in names {
            let step = self.reserve(1).and_then(|()| {
                let fd = open_beneath(
                    cur.fd.as_fd(),
                    &name,
                    OFlag::O_PATH,
                    Mode::empty(),
                    &mut self.use_openat2,
                )?;
                self.new_node(&cur, name, fd)
            });
            match step {
                Ok(node) => {
                    nodes.push(node);
                    if !node.attr.is_dir() {
                        // A symlink is the Sentry's to resolve; anything else ends a path.
                        break;
                    }
                    // Just inserted.
                    cur = self.node(node.fid)?;
                }
                Err(errno) => {
                    error = Some(errno);
                    break;
                }
            }
        }
        Ok(Response::Walk { nodes, error })
    }

    fn open(&mut self, fid: Fid, flags: u32) -> Result<Response, Errno> {
        let node = self.node(fid)?;
        let flags = OFlag::from_bits_truncate(flags as i32);
        let access = flags & OFlag::O_ACCMODE;
        let writes = access != OFlag::O_RDONLY;
        let truncate = flags.contains(OFlag::O_TRUNC);
        if self.options.read_only && (writes || truncate) {
            return Err(Errno::EROFS);
        }
        self.reserve(1)?;
        let file = match node.file_type {
            S_IFDIR => {
                // As open(2): a directory opens read-only, and O_TRUNC asks for write access.
                if writes || truncate {
                    return Err(Errno::EISDIR);
                }
                OpenFile {
                    fd: reopen_dir(node.fd.as_fd())?,
                    file_type: S_IFDIR,
                    readable: true,
                    writable: false,
                }
            }
            S_IFREG => {
                if flags.contains(OFlag::O_DIRECTORY) {
                    return Err(Errno::ENOTDIR);
                }
                let keep = OFlag::O_ACCMODE | OFlag::O_APPEND | OFlag::O_DSYNC | OFlag::O_SYNC;
                let fd = self.reopen(&node, flags & keep)?;
                // Truncate only after checking the inode, so a renamed-over name cannot make
                // us truncate another file. Linux truncates for O_RDONLY | O_TRUNC too.
                if truncate {
                    if writes {
                        ftruncate(&fd, 0)?;
                    } else {
                        ftruncate(self.reopen(&node, OFlag::O_WRONLY)?, 0)?;
                    }
                }
                OpenFile {
                    fd,
                    file_type: S_IFREG,
                    readable: access != OFlag::O_WRONLY,
                    writable: writes,
                }
            }
            // As open(2) with O_NOFOLLOW; the Sentry resolves symlinks itself.
            S_IFLNK => return Err(Errno::ELOOP),
            // FIFOs, sockets and devices are the Sentry's to implement; opening a host device
            // or FIFO here could block or reach the host. As open(2) of a socket.
            _ => return Err(Errno::ENXIO),
        };
        let fid = self.insert(Entry::File(file))?;
        Ok(Response::Opened(fid))
    }

    fn read(&mut self, fid: Fid, offset: u64, len: u32) -> Result<Response, Errno> {
        if len > proto::max_read(self.max_payload) {
            return Err(Errno::EINVAL);
        }
        let file = self.file(fid)?;
        if file.file_type == S_IFDIR {
            return Err(Errno::EISDIR);
        }
        if !file.readable {
            return Err(Errno::EBADF);
        }
        let mut buf = vec![0u8; len as usize];
        let mut done = 0;
        // pread(2) may return less than asked before the end of the file (a signal); the
        // protocol promises a short read only at the end.
        while done < buf.len() {
            let Some(pos) = offset
                .checked_add(done as u64)
                .and_then(|p| i64::try_from(p).ok())
            else {
                break;
            };
            match pread(&file.fd, &mut buf[done..], pos) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(Errno::EINTR) => {}
                Err(_) if done > 0 => break,
                Err(errno) => return Err(errno),
            }
        }
        buf.truncate(done);
        Ok(Response::Data(buf))
    }

    fn write(&mut self, fid: Fid, offset: u64, data: &[u8]) -> Result<Response, Errno> {
        let file = self.file(fid)?;
        if !file.writable {
            return Err(Errno::EBADF);
        }
        let mut done = 0;
        while done < data.len() {
            let Some(pos) = offset
                .checked_add(done as u64)
                .and_then(|p| i64::try_from(p).ok())
            else {
                if done == 0 {
                    return Err(Errno::EFBIG);
                }
                break;
            };
            match pwrite(&file.fd, &data[done..], pos) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(Errno::EINTR) => {}
                Err(_) if done > 0 => break,
                Err(errno) => return Err(errno),
            }
        }
        Ok(Response::Written(done as u64))
    }

    fn create(
        &mut self,
        dir: Fid,
        name: Name,
        flags: u32,
        mode: u32,
        (uid, gid): (u32, u32),
    ) -> Result<Response, Errno> {
        let dir = self.dir(dir)?;
        self.reserve(2)?;
        let flags = OFlag::from_bits_truncate(flags as i32) & !OFlag::O_TRUNC;
        let mode = Mode::from_bits_truncate(mode);
        let fd = open_beneath(
            dir.fd.as_fd(),
            &name,
            flags | OFlag::O_CREAT | OFlag::O_EXCL,
            mode,
            &mut self.use_openat2,
        )?;
        let (id, _) = stat_fd(fd.as_fd())?;
        // Owner first (a chown clears set-user-ID bits), then the exact mode: the gofer's own
        // umask must not apply, the Sentry has applied the guest's.
        let node_fd = fchown(&fd, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))
            .and_then(|()| fchmod(&fd, mode))
            .and_then(|()| {
                open_beneath(
                    dir.fd.as_fd(),
                    &name,
                    OFlag::O_PATH,
                    Mode::empty(),
                    &mut self.use_openat2,
                )
            })
            .and_then(|node_fd| check_same(&node_fd, id).map(|()| node_fd));
        let node_fd = match node_fd {
            Ok(node_fd) => node_fd,
            Err(errno) => {
                self.remove_created(&dir, &name, id, UnlinkatFlags::NoRemoveDir);
                return Err(errno);
            }
        };
        let access = flags & OFlag::O_ACCMODE;
        let node = self.new_node(&dir, name, node_fd)?;
        let file = self.insert(Entry::File(OpenFile {
            fd,
            file_type: S_IFREG,
            readable: access != OFlag::O_WRONLY,
            writable: access != OFlag::O_RDONLY,
        }))?;
        Ok(Response::Created(Created {
            node: node.fid,
            file,
            attr: node.attr,
        }))
    }

    /// Finishes a creating operation: opens the new name as a node, sets its owner (and,
    /// through `set_mode`, its exact mode), and removes it again if any of that fails.
    fn finish_new(
        &mut self,
        dir: &Node,
        name: Name,
        (uid, gid): (u32, u32),
        set_mode: impl FnOnce(&mut Self, &Node) -> Result<(), Errno>,
        unlink: UnlinkatFlags,
    ) -> Result<Response, Errno> {
        let fd = open_beneath(
            dir.fd.as_fd(),
            &name,
            OFlag::O_PATH,
            Mode::empty(),
            &mut self.use_openat2,
        )?;
        let (id, attr) = stat_fd(fd.as_fd())?;
        let node = Node {
            fd: Arc::new(fd),
            id,
            file_type: attr.file_type(),
            location: Some(Location {
                parent: Arc::clone(&dir.fd),
                parent_id: dir.id,
                name: name.clone(),
            }),
        };
        // fchownat(2) with AT_EMPTY_PATH changes the inode an O_PATH descriptor names, a
        // symlink included, without a name that could be swapped.
        let done = fchownat(
            node.fd.as_fd(),
            "",
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
            AtFlags::AT_EMPTY_PATH | AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .and_then(|()| set_mode(self, &node))
        .and_then(|()| stat_fd(node.fd.as_fd()));
        match done {
            Ok((_, attr)) => {
                let fid = self.insert(Entry::Node(node))?;
                Ok(Response::Node(FidAttr { fid, attr }))
            }
            Err(errno) => {
                self.remove_created(dir, &name, id, unlink);
                Err(errno)
            }
        }
    }

    fn mkdir(
        &mut self,
        dir: Fid,
        name: Name,
        mode: u32,
        owner: (u32, u32),
    ) -> Result<Response, Errno> {
        let dir = self.dir(dir)?;
        self.reserve(1)?;
        let mode = Mode::from_bits_truncate(mode);
        mkdirat(dir.fd.as_fd(), name.as_bytes(), mode)?;
        self.finish_new(
            &dir,
            name,
            owner,
            |_, node| chmod_dir(node, mode),
            UnlinkatFlags::RemoveDir,
        )
    }

    fn mknod(
        &mut self,
        dir: Fid,
        name: Name,
        mode: u32,
        owner: (u32, u32),
    ) -> Result<Response, Errno> {
        // Only FIFOs: device nodes would reach host devices, sockets are the Sentry's.
        if mode & libc::S_IFMT != S_IFIFO {
            return Err(Errno::EPERM);
        }
        let dir = self.dir(dir)?;
        self.reserve(1)?;
        let perm = Mode::from_bits_truncate(mode & 0o7777);
        mknodat(dir.fd.as_fd(), name.as_bytes(), SFlag::S_IFIFO, perm, 0)?;
        self.finish_new(
            &dir,
            name,
            owner,
            |files, node| files.chmod_node(node, perm),
            UnlinkatFlags::NoRemoveDir,
        )
    }

    fn symlink(
        &mut self,
        dir: Fid,
        name: Name,
        target: &[u8],
        owner: (u32, u32),
    ) -> Result<Response, Errno> {
        let dir = self.dir(dir)?;
        self.reserve(1)?;
        symlinkat(target, dir.fd.as_fd(), name.as_bytes())?;
        // A symlink's mode is always 0777 on Linux.
        self.finish_new(&dir, name, owner, |_, _| Ok(()), UnlinkatFlags::NoRemoveDir)
    }

    fn link(&mut self, dir: Fid, name: Name, target: Fid) -> Result<Response, Errno> {
        let target = self.node(target)?;
        let dir = self.dir(dir)?;
        if target.file_type == S_IFDIR {
            // As link(2) of a directory.
            return Err(Errno::EPERM);
        }
        self.reserve(1)?;
        // linkat(2) with AT_EMPTY_PATH would need CAP_DAC_READ_SEARCH in the initial user
        // namespace; link by the target's name instead, after checking it still names the
        // target. linkat never follows a trailing symlink without AT_SYMLINK_FOLLOW.
        let loc = target.location.as_ref().ok_or(Errno::ESTALE)?;
        if id_at(loc.parent.as_fd(), &loc.name)? != target.id {
            return Err(Errno::ESTALE);
        }
        linkat(
            loc.parent.as_fd(),
            loc.name.as_bytes(),
            dir.fd.as_fd(),
            name.as_bytes(),
            AtFlags::empty(),
        )?;
        let fd = open_beneath(
            dir.fd.as_fd(),
            &name,
            OFlag::O_PATH,
            Mode::empty(),
            &mut self.use_openat2,
        )?;
        check_same(&fd, target.id)?;
        Ok(Response::Node(self.new_node(&dir, name, fd)?))
    }

    fn rename(
        &mut self,
        old_dir: Fid,
        old_name: Name,
        new_dir: Fid,
        new_name: Name,
        flags: u32,
    ) -> Result<Response, Errno> {
        let old = self.dir(old_dir)?;
        let new = self.dir(new_dir)?;
        renameat2(
            old.fd.as_fd(),
            old_name.as_bytes(),
            new.fd.as_fd(),
            new_name.as_bytes(),
            RenameFlags::from_bits_truncate(flags),
        )?;
        // Nodes found under the old name now live under the new one (and, for an exchange,
        // the other way round), so that opening them by name still works.
        let exchange = flags & proto::RENAME_EXCHANGE != 0;
        for entry in self.fids.values_mut() {
            let Entry::Node(Node {
                location: Some(loc),
                ..
            }) = entry
            else {
                continue;
            };
            if loc.parent_id == old.id && loc.name == old_name {
                *loc = Location {
                    parent: Arc::clone(&new.fd),
                    parent_id: new.id,
                    name: new_name.clone(),
                };
            } else if exchange && loc.parent_id == new.id && loc.name == new_name {
                *loc = Location {
                    parent: Arc::clone(&old.fd),
                    parent_id: old.id,
                    name: old_name.clone(),
                };
            }
        }
        Ok(Response::Empty)
    }

    fn getdents(&mut self, fid: Fid, cookie: u64, max: u32) -> Result<Response, Errno> {
        let file = self.file(fid)?;
        if file.file_type != S_IFDIR {
            return Err(Errno::ENOTDIR);
        }
        let limit = max.min(proto::max_dirents(self.max_payload)) as usize;
        // The cookie is the host's d_off of the last entry returned: seek there, as
        // seekdir(3) does. Decoding checked it fits an off_t.
        lseek(&file.fd, cookie as i64, Whence::SeekSet)?;
        let mut buf = vec![MaybeUninit::<u8>::uninit(); 16 * 1024];
        let mut dir = rustix::fs::RawDir::new(file.fd.as_fd(), &mut buf);
        let mut entries = Vec::new();
        let mut used = 0;
        while let Some(entry) = dir.next() {
            let entry = match entry {
                Ok(entry) => entry,
                Err(_) if !entries.is_empty() => break,
                Err(e) => return Err(errno_of_io(e.into())),
            };
            let bytes = entry.file_name().to_bytes();
            // The Sentry makes its own "." and ".."; the host's would name the host's parent.
            let Ok(name) = Name::new(bytes) else {
                continue;
            };
            let size = proto::dirent_size(bytes.len());
            if used + size > limit {
                if entries.is_empty() {
                    // As getdents(2) with a buffer too small for one entry.
                    return Err(Errno::EINVAL);
                }
                break;
            }
            used += size;
            entries.push(Dirent {
                ino: entry.ino(),
                kind: dirent_type(entry.file_type()),
                name,
                next_cookie: entry.next_entry_cookie(),
            });
        }
        Ok(Response::Dirents(entries))
    }

    fn set_attr(&mut self, fid: Fid, attr: &SetAttr) -> Result<Response, Errno> {
        let has = |bit| attr.mask & bit != 0;
        let owner = (
            has(setattr::UID).then(|| Uid::from_raw(attr.uid)),
            has(setattr::GID).then(|| Gid::from_raw(attr.gid)),
        );
        let mode = Mode::from_bits_truncate(attr.mode);
        let times = (has(setattr::ATIME) || has(setattr::MTIME)).then(|| {
            let pick = |bit, t: &Timespec| timespec(if has(bit) { t } else { &Timespec::OMIT });
            (
                pick(setattr::ATIME, &attr.atime),
                pick(setattr::MTIME, &attr.mtime),
            )
        });
        match self.fids.get(&fid.0) {
            None => return Err(Errno::EBADF),
            Some(Entry::File(file)) => {
                // An open file: the f* calls act on it directly. ftruncate(2) fails with
                // EINVAL unless it is open for writing, as on Linux.
                if has(setattr::SIZE) {
                    ftruncate(&file.fd, attr.size as i64)?;
                }
                if owner.0.is_some() || owner.1.is_some() {
                    fchown(&file.fd, owner.0, owner.1)?;
                }
                if has(setattr::MODE) {
                    fchmod(&file.fd, mode)?;
                }
                if let Some((atime, mtime)) = times {
                    futimens(&file.fd, &atime, &mtime)?;
                }
                return Ok(Response::Attr(stat_fd(file.fd.as_fd())?.1));
            }
            Some(Entry::Node(_)) => {}
        }
        let node = self.node(fid)?;
        if has(setattr::SIZE) {
            match node.file_type {
                S_IFDIR => return Err(Errno::EISDIR),
                S_IFREG => ftruncate(self.reopen(&node, OFlag::O_WRONLY)?, attr.size as i64)?,
                // As truncate(2) of anything else.
                _ => return Err(Errno::EINVAL),
            }
        }
        if owner.0.is_some() || owner.1.is_some() {
            fchownat(
                node.fd.as_fd(),
                "",
                owner.0,
                owner.1,
                AtFlags::AT_EMPTY_PATH | AtFlags::AT_SYMLINK_NOFOLLOW,
            )?;
        }
        if has(setattr::MODE) {
            self.chmod_node(&node, mode)?;
        }
        if let Some((atime, mtime)) = times {
            if node.file_type == S_IFDIR {
                utimensat(
                    node.fd.as_fd(),
                    ".",
                    &atime,
                    &mtime,
                    UtimensatFlags::FollowSymlink,
                )?;
            } else {
                // utimensat(2) cannot take an O_PATH descriptor without a name (before Linux
                // 5.8 and in nix); use the name, never following it, after checking it.
                let loc = node.location.as_ref().ok_or(Errno::ESTALE)?;
                if id_at(loc.parent.as_fd(), &loc.name)? != node.id {
                    return Err(Errno::ESTALE);
                }
                utimensat(
                    loc.parent.as_fd(),
                    loc.name.as_bytes(),
                    &atime,
                    &mtime,
                    UtimensatFlags::NoFollowSymlink,
                )?;
            }
        }
        Ok(Response::Attr(stat_fd(node.fd.as_fd())?.1))
    }

    /// chmod(2) of a node without following a name that could have become a symlink:
    /// directories through `.` of their own descriptor, regular files and FIFOs through a
    /// descriptor reopened by name and checked (`fchmod(2)` refuses `O_PATH` descriptors).
    /// Symlinks have no mode of their own (`EOPNOTSUPP`, as `fchmodat(AT_SYMLINK_NOFOLLOW)`);
    /// sockets and devices are not opened by the gofer, so their mode cannot be changed.
    fn chmod_node(&mut self, node: &Node, mode: Mode) -> Result<(), Errno> {
        match node.file_type {
            S_IFDIR => chmod_dir(node, mode),
            S_IFREG | S_IFIFO => fchmod(self.reopen(node, OFlag::O_RDONLY)?, mode),
            _ => Err(Errno::EOPNOTSUPP),
        }
    }
}

fn chmod_dir(node: &Node, mode: Mode) -> Result<(), Errno> {
    fchmodat(node.fd.as_fd(), ".", mode, FchmodatFlags::FollowSymlink)
}

fn dirent_type(file_type: rustix::fs::FileType) -> u8 {
    use rustix::fs::FileType;
    match file_type {
        FileType::RegularFile => libc::DT_REG,
        FileType::Directory => libc::DT_DIR,
        FileType::Symlink => libc::DT_LNK,
        FileType::Fifo => libc::DT_FIFO,
        FileType::Socket => libc::DT_SOCK,
        FileType::CharacterDevice => libc::DT_CHR,
        FileType::BlockDevice => libc::DT_BLK,
        _ => libc::DT_UNKNOWN,
    }
}

impl Reply {
    fn error(errno: Errno, shutdown: bool) -> Reply {
        Reply {
            status: errno_status(errno),
            payload: Vec::new(),
            shutdown,
        }
    }
}
