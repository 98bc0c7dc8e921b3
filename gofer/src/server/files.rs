//! The file server proper: one handler per operation over the shared fid table
//! ([`super::fids`]). Transport-free: [`Files::handle`] takes an opcode and a payload and
//! returns a status and a payload.
//!
//! One `Files` serves every ring of a server at once (`&self`, one thread per ring). Host
//! calls run outside every lock but one: the rename lock, which `Rename` holds exclusively
//! and every other request shares. A node remembers where it was found (its
//! [`Location`]), and `Rename` moves the locations of the nodes it renames; without the lock,
//! a walk that found a name just before a concurrent rename could file its node under the
//! old name after the rename moved the others, and opening it later would fail (`ESTALE`)
//! where the one-ring server succeeded. Renames are rare and short, so sharing the lock
//! costs the other requests an atomic operation each; a rename waits for the requests in
//! flight on other rings.

use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};

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

use super::fids::{Entry, FidTable, Reservation};
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
pub(super) struct Node {
    fd: Arc<OwnedFd>,
    id: FileId,
    /// `S_IFMT` bits; an inode never changes type.
    file_type: u32,
    /// `None` only for the root.
    location: Option<Location>,
}

/// An open file or directory, for I/O. Shared (`Arc`) between the table and the requests
/// using it, so that a concurrent `Close` never closes the descriptor under them.
#[derive(Debug)]
pub(super) struct OpenFile {
    fd: OwnedFd,
    file_type: u32,
    readable: bool,
    writable: bool,
    /// Held by `Getdents`, which seeks the descriptor and then reads from there: two at once
    /// on one directory would read from each other's position. File I/O is positional
    /// (`pread`/`pwrite`) and needs no lock.
    cursor: Mutex<()>,
}

impl OpenFile {
    fn new(fd: OwnedFd, file_type: u32, readable: bool, writable: bool) -> OpenFile {
        OpenFile {
            fd,
            file_type,
            readable,
            writable,
            cursor: Mutex::new(()),
        }
    }
}

impl Entry {
    /// The host descriptor, for operations that work on both kinds of fid.
    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Entry::Node(node) => node.fd.as_fd(),
            Entry::File(file) => file.fd.as_fd(),
        }
    }
}

/// A response to send.
pub(super) struct Reply {
    pub status: u32,
    pub payload: Vec<u8>,
    /// The request was `Shutdown`: stop serving once this is sent.
    pub shutdown: bool,
}

/// The state of one connection, shared by all its rings: the root, the fids handed out, the
/// negotiated version.
pub(super) struct Files {
    root: Arc<OwnedFd>,
    root_id: FileId,
    fids: FidTable,
    options: ServerOptions,
    /// The rings' smallest data slot size: the largest payload either way.
    max_payload: u32,
    /// Set once, by the handshake (on whichever ring it comes).
    version: OnceLock<u32>,
    /// Held exclusively by `Rename`, shared by every other request (see the module
    /// documentation).
    renames: RwLock<()>,
    /// Cleared if the kernel lacks openat2.
    pub(super) use_openat2: AtomicBool,
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
            fids: FidTable::new(options.max_fids),
            options,
            max_payload,
            version: OnceLock::new(),
            renames: RwLock::new(()),
            use_openat2: AtomicBool::new(true),
        }
    }

    /// Makes room in the process's descriptor table for every fid the client may hold, before
    /// the server starts threads (see [`super::host::grow_fd_table`]).
    pub(super) fn presize_fd_table(&self) {
        // The fids, and a margin for the rings' and the process's own descriptors.
        super::host::grow_fd_table(self.root.as_fd(), self.options.max_fids.saturating_add(64));
    }

    /// Fids held, for tests of the bound.
    #[cfg(all(test, not(loom)))]
    pub(super) fn fids_held(&self) -> usize {
        self.fids.len()
    }

    /// Serves one request. Never panics on any input; every failure is an errno.
    pub fn handle(&self, opcode: u32, payload: &[u8]) -> Reply {
        let request = match Request::decode(opcode, payload) {
            Ok(request) => request,
            Err(e) => return Reply::error(e.errno(), false),
        };
        let shutdown = matches!(request, Request::Shutdown);
        match self.dispatch(request) {
            Ok(response) => {
                let payload = match response {
                    // Data encodes as itself: hand the buffer over rather than copy a read of
                    // up to a data slot into a second one.
                    Response::Data(data) => data,
                    other => other.to_bytes(),
                };
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

    fn dispatch(&self, request: Request) -> Result<Response, Errno> {
        let op = request.opcode();
        match request {
            Request::Version { version } => return self.version(version),
            Request::Shutdown => return Ok(Response::Empty),
            _ if self.version.get().is_none() => return Err(Errno::EPROTO),
            _ if self.options.read_only && op.is_mutation() => return Err(Errno::EROFS),
            Request::Rename {
                old_dir,
                old_name,
                new_dir,
                new_name,
                flags,
            } => {
                let _renaming = self.renames.write().unwrap_or_else(PoisonError::into_inner);
                return self.rename(old_dir, old_name, new_dir, new_name, flags);
            }
            _ => {}
        }
        let _not_renaming = self.renames.read().unwrap_or_else(PoisonError::into_inner);
        match request {
            Request::Walk { dir, names } => self.walk(dir, names),
            Request::Stat { fid } => Ok(Response::Attr(stat_fd(self.any(fid)?.fd())?.1)),
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
            Request::StatFs { fid } => Ok(Response::StatFs(statfs_fd(self.any(fid)?.fd())?)),
            Request::Fsync { fid, flags } => {
                let file = self.file(fid)?;
                if flags & FSYNC_DATASYNC != 0 {
                    fdatasync(&file.fd)?;
                } else {
                    fsync(&file.fd)?;
                }
                Ok(Response::Empty)
            }
            // The entry is dropped outside the table's lock; its descriptor closes once no
            // request on another ring uses it.
            Request::Close { fid } => match self.fids.remove(fid) {
                Some(_) => Ok(Response::Empty),
                None => Err(Errno::EBADF),
            },
            Request::Version { .. } | Request::Shutdown | Request::Rename { .. } => {
                Err(Errno::EPROTO)
            }
        }
    }

    // ---- Fids. Creating operations reserve room in the table before they make any host
    // object (`EMFILE` when full), so a full table leaves nothing behind. ----

    /// A node fid (`EBADF` for an unknown fid or an open file, as a syscall on a descriptor
    /// of the wrong kind).
    fn node(&self, fid: Fid) -> Result<Node, Errno> {
        match self.fids.get(fid) {
            Some(Entry::Node(node)) => Ok(node),
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
    fn file(&self, fid: Fid) -> Result<Arc<OpenFile>, Errno> {
        match self.fids.get(fid) {
            Some(Entry::File(file)) => Ok(file),
            _ => Err(Errno::EBADF),
        }
    }

    /// Any fid, for operations that work on both kinds.
    fn any(&self, fid: Fid) -> Result<Entry, Errno> {
        self.fids.get(fid).ok_or(Errno::EBADF)
    }

    /// Makes `fd`, just opened as `name` in `dir`, a node fid in room reserved for it.
    /// Returns the node too, so that a walk goes on from it without looking the fid up
    /// again (another ring may have closed it meanwhile).
    fn new_node(
        &self,
        room: &mut Reservation<'_>,
        dir: &Node,
        name: Name,
        fd: OwnedFd,
    ) -> Result<(FidAttr, Node), Errno> {
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
        let fid = room.insert(Entry::Node(node.clone()))?;
        Ok((FidAttr { fid, attr }, node))
    }

    /// Opens a node for I/O by its parent and name, and checks it is still the same inode.
    /// `O_NONBLOCK` keeps the open from blocking should the name now be a FIFO; it is cleared
    /// again so that regular-file I/O behaves as usual.
    fn reopen(&self, node: &Node, flags: OFlag) -> Result<OwnedFd, Errno> {
        let loc = node.location.as_ref().ok_or(Errno::ESTALE)?;
        let fd = open_beneath(
            loc.parent.as_fd(),
            &loc.name,
            flags | OFlag::O_NONBLOCK,
            Mode::empty(),
            &self.use_openat2,
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

    fn version(&self, version: u32) -> Result<Response, Errno> {
        if self.version.get().is_some() {
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
        let mut room = self.fids.reserve(1)?;
        // Two handshakes racing on two rings: only the first is answered.
        if self.version.set(agreed).is_err() {
            return Err(Errno::EPROTO);
        }
        let fid = room.insert(Entry::Node(root))?;
        Ok(Response::Version {
            version: agreed,
            max_payload: self.max_payload,
            root: FidAttr { fid, attr },
        })
    }

    fn walk(&self, dir: Fid, names: Vec<Name>) -> Result<Response, Errno> {
        if names.len() > proto::max_walk(self.max_payload) {
            return Err(Errno::EINVAL);
        }
        let mut cur = self.dir(dir)?;
        let mut nodes = Vec::with_capacity(names.len());
        let mut error = None;
        for name in names {
            let step = self.fids.reserve(1).and_then(|mut room| {
                let fd = open_beneath(
                    cur.fd.as_fd(),
                    &name,
                    OFlag::O_PATH,
                    Mode::empty(),
                    &self.use_openat2,
                )?;
                self.new_node(&mut room, &cur, name, fd)
            });
            match step {
                Ok((found, node)) => {
                    nodes.push(found);
                    if !found.attr.is_dir() {
                        // A symlink is the Sentry's to resolve; anything else ends a path.
                        break;
                    }
                    cur = node;
                }
                Err(errno) => {
                    error = Some(errno);
                    break;
                }
            }
        }
        Ok(Response::Walk { nodes, error })
    }

    fn open(&self, fid: Fid, flags: u32) -> Result<Response, Errno> {
        let node = self.node(fid)?;
        let flags = OFlag::from_bits_truncate(flags as i32);
        let access = flags & OFlag::O_ACCMODE;
        let writes = access != OFlag::O_RDONLY;
        let truncate = flags.contains(OFlag::O_TRUNC);
        if self.options.read_only && (writes || truncate) {
            return Err(Errno::EROFS);
        }
        let mut room = self.fids.reserve(1)?;
        let file = match node.file_type {
            S_IFDIR => {
                // As open(2): a directory opens read-only, and O_TRUNC asks for write access.
                if writes || truncate {
                    return Err(Errno::EISDIR);
                }
                OpenFile::new(reopen_dir(node.fd.as_fd())?, S_IFDIR, true, false)
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
                OpenFile::new(fd, S_IFREG, access != OFlag::O_WRONLY, writes)
            }
            // As open(2) with O_NOFOLLOW; the Sentry resolves symlinks itself.
            S_IFLNK => return Err(Errno::ELOOP),
            // FIFOs, sockets and devices are the Sentry's to implement; opening a host device
            // or FIFO here could block or reach the host. As open(2) of a socket.
            _ => return Err(Errno::ENXIO),
        };
        let fid = room.insert(Entry::File(Arc::new(file)))?;
        Ok(Response::Opened(fid))
    }

    fn read(&self, fid: Fid, offset: u64, len: u32) -> Result<Response, Errno> {
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

    fn write(&self, fid: Fid, offset: u64, data: &[u8]) -> Result<Response, Errno> {
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
        &self,
        dir: Fid,
        name: Name,
        flags: u32,
        mode: u32,
        (uid, gid): (u32, u32),
    ) -> Result<Response, Errno> {
        let dir = self.dir(dir)?;
        let mut room = self.fids.reserve(2)?;
        let flags = OFlag::from_bits_truncate(flags as i32) & !OFlag::O_TRUNC;
        let mode = Mode::from_bits_truncate(mode);
        let fd = open_beneath(
            dir.fd.as_fd(),
            &name,
            flags | OFlag::O_CREAT | OFlag::O_EXCL,
            mode,
            &self.use_openat2,
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
                    &self.use_openat2,
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
        let (node, _) = self.new_node(&mut room, &dir, name, node_fd)?;
        let file = room.insert(Entry::File(Arc::new(OpenFile::new(
            fd,
            S_IFREG,
            access != OFlag::O_WRONLY,
            access != OFlag::O_RDONLY,
        ))))?;
        Ok(Response::Created(Created {
            node: node.fid,
            file,
            attr: node.attr,
        }))
    }

    /// Finishes a creating operation: opens the new name as a node, sets its owner (and,
    /// through `set_mode`, its exact mode), and removes it again if any of that fails. The
    /// node's fid goes into `room`, reserved before the host object was made.
    fn finish_new(
        &self,
        mut room: Reservation<'_>,
        dir: &Node,
        name: Name,
        (uid, gid): (u32, u32),
        set_mode: impl FnOnce(&Self, &Node) -> Result<(), Errno>,
        unlink: UnlinkatFlags,
    ) -> Result<Response, Errno> {
        let fd = open_beneath(
            dir.fd.as_fd(),
            &name,
            OFlag::O_PATH,
            Mode::empty(),
            &self.use_openat2,
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
                let fid = room.insert(Entry::Node(node))?;
                Ok(Response::Node(FidAttr { fid, attr }))
            }
            Err(errno) => {
                self.remove_created(dir, &name, id, unlink);
                Err(errno)
            }
        }
    }

    fn mkdir(&self, dir: Fid, name: Name, mode: u32, owner: (u32, u32)) -> Result<Response, Errno> {
        let dir = self.dir(dir)?;
        let room = self.fids.reserve(1)?;
        let mode = Mode::from_bits_truncate(mode);
        mkdirat(dir.fd.as_fd(), name.as_bytes(), mode)?;
        self.finish_new(
            room,
            &dir,
            name,
            owner,
            |_, node| chmod_dir(node, mode),
            UnlinkatFlags::RemoveDir,
        )
    }

    fn mknod(&self, dir: Fid, name: Name, mode: u32, owner: (u32, u32)) -> Result<Response, Errno> {
        // Only FIFOs: device nodes would reach host devices, sockets are the Sentry's.
        if mode & libc::S_IFMT != S_IFIFO {
            return Err(Errno::EPERM);
        }
        let dir = self.dir(dir)?;
        let room = self.fids.reserve(1)?;
        let perm = Mode::from_bits_truncate(mode & 0o7777);
        mknodat(dir.fd.as_fd(), name.as_bytes(), SFlag::S_IFIFO, perm, 0)?;
        self.finish_new(
            room,
            &dir,
            name,
            owner,
            |files, node| files.chmod_node(node, perm),
            UnlinkatFlags::NoRemoveDir,
        )
    }

    fn symlink(
        &self,
        dir: Fid,
        name: Name,
        target: &[u8],
        owner: (u32, u32),
    ) -> Result<Response, Errno> {
        let dir = self.dir(dir)?;
        let room = self.fids.reserve(1)?;
        symlinkat(target, dir.fd.as_fd(), name.as_bytes())?;
        // A symlink's mode is always 0777 on Linux.
        self.finish_new(
            room,
            &dir,
            name,
            owner,
            |_, _| Ok(()),
            UnlinkatFlags::NoRemoveDir,
        )
    }

    fn link(&self, dir: Fid, name: Name, target: Fid) -> Result<Response, Errno> {
        let target = self.node(target)?;
        let dir = self.dir(dir)?;
        if target.file_type == S_IFDIR {
            // As link(2) of a directory.
            return Err(Errno::EPERM);
        }
        let mut room = self.fids.reserve(1)?;
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
            &self.use_openat2,
        )?;
        check_same(&fd, target.id)?;
        Ok(Response::Node(self.new_node(&mut room, &dir, name, fd)?.0))
    }

    /// Runs with the rename lock held exclusively (see the module documentation).
    fn rename(
        &self,
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
        self.fids.for_each_node(|node| {
            let Some(loc) = &mut node.location else {
                return;
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
        });
        Ok(Response::Empty)
    }

    fn getdents(&self, fid: Fid, cookie: u64, max: u32) -> Result<Response, Errno> {
        let file = self.file(fid)?;
        if file.file_type != S_IFDIR {
            return Err(Errno::ENOTDIR);
        }
        let _cursor = file.cursor.lock().unwrap_or_else(PoisonError::into_inner);
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

    fn set_attr(&self, fid: Fid, attr: &SetAttr) -> Result<Response, Errno> {
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
        let node = match self.any(fid)? {
            Entry::File(file) => {
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
            Entry::Node(node) => node,
        };
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
    fn chmod_node(&self, node: &Node, mode: Mode) -> Result<(), Errno> {
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
