//! System calls on paths: open, stat, directories, links, renames, the working directory,
//! permissions. Every path goes through the VFS's one resolution routine.

use std::sync::Arc;

use crate::abi::*;
use crate::kernel::{Credentials, Task};
use crate::vfs::{
    self, Attr, FileType, Location, NewNode, OpenFile, Owner, Resolved, SetAttr, Start, O_ACCMODE,
    O_CLOEXEC, O_CREAT, O_DIRECTORY, O_EXCL, O_NOFOLLOW, O_PATH, O_RDONLY, O_TMPFILE, O_TRUNC,
};

/// Longest path, including its NUL (PATH_MAX).
const PATH_MAX: usize = 4096;

/// Reads a path argument: EFAULT, ENAMETOOLONG past PATH_MAX.
pub(super) fn read_path(t: &Task, addr: u64) -> Result<Vec<u8>, Errno> {
    t.mm.read_cstring(addr, PATH_MAX - 1)
}

/// Where a path given with `dirfd` starts: the root for absolute paths, else the working
/// directory (AT_FDCWD) or the directory open at `dirfd`. A `scoped` resolution
/// (RESOLVE_BENEATH, RESOLVE_IN_ROOT) always starts at `dirfd`, which it treats as its root.
fn start_dir(t: &Task, dirfd: u64, path: &[u8], scoped: bool) -> Result<Location, Errno> {
    let fs = t.fs.lock();
    if path.first() == Some(&b'/') && !scoped {
        return Ok(fs.root.clone());
    }
    if dirfd as i32 == AT_FDCWD {
        return Ok(fs.cwd.clone());
    }
    drop(fs);
    let file = t.fds.get(dirfd)?;
    let location = file.location.clone().ok_or(Errno::ENOTDIR)?;
    if !location.dentry.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    Ok(location)
}

/// Runs `f` on the resolution context of `path` given with `dirfd` and openat2's RESOLVE_*
/// flags `resolve`.
fn resolving<R>(
    t: &Task,
    dirfd: u64,
    path: &[u8],
    resolve: u64,
    f: impl FnOnce(Start<'_>) -> Result<R, Errno>,
) -> Result<R, Errno> {
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    let scoped = resolve & (RESOLVE_BENEATH | RESOLVE_IN_ROOT) != 0;
    let at = start_dir(t, dirfd, path, scoped)?;
    let root = t.fs.lock().root.clone();
    f(Start {
        resolve,
        ..Start::new(&t.kernel.mounts, &root, &at)
    })
}

/// Resolves `path` from `dirfd`; `follow` says whether a final symlink is followed.
pub(super) fn lookup(t: &Task, dirfd: u64, path: &[u8], follow: bool) -> Result<Location, Errno> {
    resolving(t, dirfd, path, 0, |start| vfs::resolve(start, path, follow))
}

/// Resolves all but the last component of `path` from `dirfd`.
fn lookup_parent(t: &Task, dirfd: u64, path: &[u8]) -> Result<Resolved, Errno> {
    resolving(t, dirfd, path, 0, |start| vfs::resolve_parent(start, path))
}

/// EROFS if `location` is on a read-only mount.
pub(super) fn check_writable_mount(location: Option<&Location>) -> Result<(), Errno> {
    match location {
        Some(l) if l.mount.flags.read_only => Err(Errno::EROFS),
        _ => Ok(()),
    }
}

const MAY_EXEC: u32 = 1;
pub(super) const MAY_WRITE: u32 = 2;
pub(super) const MAY_READ: u32 = 4;

/// Whether the caller may access a file with these attributes, by its mode bits.
pub(super) fn permitted(t: &Task, attr: &Attr, want: u32) -> bool {
    permitted_by(&t.creds, attr, want)
}

/// Linux's generic_permission for `creds`: the owner, group or other bits by the
/// file-system ids; failing those, CAP_DAC_READ_SEARCH reads any file and reads or searches
/// any directory, and CAP_DAC_OVERRIDE allows the rest but executing a file without any
/// execute bit.
fn permitted_by(creds: &Credentials, attr: &Attr, want: u32) -> bool {
    let want = want & 7;
    let bits = if attr.uid == creds.fsuid {
        attr.mode >> 6
    } else if creds.in_group(attr.gid) {
        attr.mode >> 3
    } else {
        attr.mode
    };
    if bits & want == want {
        return true;
    }
    if attr.file_type() == Some(FileType::Directory) {
        return (want & MAY_WRITE == 0 && creds.capable(CAP_DAC_READ_SEARCH))
            || creds.capable(CAP_DAC_OVERRIDE);
    }
    if want == MAY_READ && creds.capable(CAP_DAC_READ_SEARCH) {
        return true;
    }
    (want & MAY_EXEC == 0 || attr.mode & 0o111 != 0) && creds.capable(CAP_DAC_OVERRIDE)
}

/// Whether the caller owns a file or has CAP_FOWNER (inode_owner_or_capable).
fn owner_or_capable(t: &Task, attr: &Attr) -> bool {
    attr.uid == t.creds.fsuid || t.creds.capable(CAP_FOWNER)
}

fn owner(t: &Task) -> Owner {
    Owner {
        uid: t.creds.fsuid,
        gid: t.creds.fsgid,
    }
}

fn umask(t: &Task) -> u32 {
    t.fs.lock().umask
}

pub fn open(t: &mut Task, a: &[u64; 6]) -> SysResult {
    open_at(t, AT_FDCWD as u64, a[0], a[1] as u32, a[2] as u32, 0)
}

pub fn openat(t: &mut Task, a: &[u64; 6]) -> SysResult {
    open_at(t, a[0], a[1], a[2] as u32, a[3] as u32, 0)
}

pub fn creat(t: &mut Task, a: &[u64; 6]) -> SysResult {
    open_at(
        t,
        AT_FDCWD as u64,
        a[0],
        O_CREAT | vfs::O_WRONLY | O_TRUNC,
        a[1] as u32,
        0,
    )
}

/// `struct open_how`'s first version: the least openat2 takes.
const OPEN_HOW_SIZE_VER0: u64 = 24;
/// Every open flag Linux knows (VALID_OPEN_FLAGS): openat2 refuses any other bit.
const VALID_OPEN_FLAGS: u64 = 0o37777703;
/// What O_PATH may come with in openat2 (O_PATH_FLAGS; O_CLOEXEC is taken out before).
const O_PATH_FLAGS: u64 = (O_DIRECTORY | O_NOFOLLOW | O_PATH) as u64;
const VALID_RESOLVE_FLAGS: u64 = RESOLVE_NO_XDEV
    | RESOLVE_NO_MAGICLINKS
    | RESOLVE_NO_SYMLINKS
    | RESOLVE_BENEATH
    | RESOLVE_IN_ROOT
    | RESOLVE_CACHED;

/// openat2(2): openat with a `struct open_how` of `size` bytes whose every field is checked
/// (Linux's build_open_flags) and whose `resolve` flags confine the path resolution.
pub fn openat2(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let [dirfd, path, how, size, ..] = *a;
    let how = read_open_how(t, how, size)?;
    check_open_how(&how)?;
    open_at(
        t,
        dirfd,
        path,
        how.flags as u32,
        how.mode as u32,
        how.resolve,
    )
}

/// Reads a `struct open_how` the way Linux's copy_struct_from_user reads extensible
/// structures: smaller than the first version is EINVAL, more than a page E2BIG, and bytes
/// past the fields this kernel knows must be zero (else E2BIG).
fn read_open_how(t: &Task, addr: u64, size: u64) -> Result<OpenHow, Errno> {
    if size < OPEN_HOW_SIZE_VER0 {
        return Err(Errno::EINVAL);
    }
    if size > PAGE_SIZE {
        return Err(Errno::E2BIG);
    }
    if size > OPEN_HOW_SIZE_VER0 {
        let mut rest = vec![0u8; (size - OPEN_HOW_SIZE_VER0) as usize];
        let tail = addr.checked_add(OPEN_HOW_SIZE_VER0).ok_or(Errno::EFAULT)?;
        t.mm.copy_in(tail, &mut rest)?;
        if rest.iter().any(|&b| b != 0) {
            return Err(Errno::E2BIG);
        }
    }
    t.mm.read_obj(addr)
}

/// The checks openat2 makes of `struct open_how` that open and openat leave out.
fn check_open_how(how: &OpenHow) -> Result<(), Errno> {
    let flags = how.flags & !(O_CLOEXEC as u64);
    if flags & !VALID_OPEN_FLAGS != 0 || how.resolve & !VALID_RESOLVE_FLAGS != 0 {
        return Err(Errno::EINVAL);
    }
    if how.resolve & RESOLVE_BENEATH != 0 && how.resolve & RESOLVE_IN_ROOT != 0 {
        return Err(Errno::EINVAL);
    }
    let tmpfile = flags & O_TMPFILE as u64 == O_TMPFILE as u64;
    let creates = flags & O_CREAT as u64 != 0 || tmpfile;
    let mode_ok = if creates {
        how.mode & !0o7777 == 0
    } else {
        how.mode == 0
    };
    if !mode_ok {
        return Err(Errno::EINVAL);
    }
    let directory_and_create = (O_DIRECTORY | O_CREAT) as u64;
    if flags & directory_and_create == directory_and_create {
        return Err(Errno::EINVAL);
    }
    // O_TMPFILE's own bit wants O_DIRECTORY with it and a writable access mode.
    let tmpfile_bit = (O_TMPFILE & !O_DIRECTORY) as u64;
    if flags & tmpfile_bit != 0 && (!tmpfile || flags & O_ACCMODE as u64 == 0) {
        return Err(Errno::EINVAL);
    }
    if flags & O_PATH as u64 != 0 && flags & !O_PATH_FLAGS != 0 {
        return Err(Errno::EINVAL);
    }
    // A lookup from the dentry cache alone cannot create or truncate.
    let changes = (O_TRUNC | O_CREAT) as u64 | tmpfile_bit;
    if how.resolve & RESOLVE_CACHED != 0 && flags & changes != 0 {
        return Err(Errno::EAGAIN);
    }
    Ok(())
}

/// open(2): finds or creates the file, checks what the flags ask against it, and installs a
/// new open file description. `resolve` holds openat2's RESOLVE_* flags.
fn open_at(t: &mut Task, dirfd: u64, path: u64, flags: u32, mode: u32, resolve: u64) -> SysResult {
    let path = read_path(t, path)?;
    if flags & O_TMPFILE == O_TMPFILE {
        return Err(Errno::EOPNOTSUPP);
    }
    let flags = if flags & O_PATH != 0 {
        flags & (O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
    } else {
        flags
    };
    let follow = flags & O_NOFOLLOW == 0;
    let find = |follow| resolving(t, dirfd, &path, resolve, |s| vfs::resolve(s, &path, follow));
    let location = if flags & O_CREAT != 0 {
        match find(follow && flags & O_EXCL == 0) {
            Ok(_) if flags & O_EXCL != 0 => return Err(Errno::EEXIST),
            Ok(found) => found,
            Err(Errno::ENOENT) => {
                let follow = follow && flags & O_EXCL == 0;
                let parent = resolving(t, dirfd, &path, resolve, |s| {
                    vfs::path::resolve_create(s, &path, follow)
                })?;
                create_file(t, parent, mode)?
            }
            Err(e) => return Err(e),
        }
    } else {
        find(follow)?
    };
    let file = open_location(t, location, flags)?;
    let fd = t.fds.install(
        file,
        flags & O_CLOEXEC != 0,
        0,
        super::file::nofile_limit(t),
    )?;
    Ok(fd as u64)
}

/// Creates the regular file open(O_CREAT) found missing at `parent` (where the path, or
/// the dangling symlink it ends in, leads).
fn create_file(t: &Task, parent: Resolved, mode: u32) -> Result<Location, Errno> {
    if parent.trailing_slash || matches!(parent.name.as_slice(), b"" | b"." | b"..") {
        return Err(Errno::EISDIR);
    }
    check_writable_mount(Some(&parent.parent))?;
    let dir_attr = parent.parent.dentry.inode.attr()?;
    if !permitted(t, &dir_attr, MAY_WRITE | MAY_EXEC) {
        return Err(Errno::EACCES);
    }
    let mode = mode & 0o7777 & !umask(t);
    parent
        .parent
        .dentry
        .inode
        .create(&parent.name, &NewNode::File { mode }, owner(t))?;
    let dentry = parent.parent.dentry.lookup(&parent.name)?;
    Ok(Location {
        mount: parent.parent.mount.clone(),
        dentry,
    })
}

/// Opens what `location` names with open flags `flags`.
fn open_location(t: &Task, location: Location, flags: u32) -> Result<Arc<OpenFile>, Errno> {
    let inode = location.dentry.inode.clone();
    let attr = inode.attr()?;
    let kind = attr.file_type();
    let status = super::file::status_flags(flags);
    if flags & O_PATH != 0 {
        if flags & O_DIRECTORY != 0 && kind != Some(FileType::Directory) {
            return Err(Errno::ENOTDIR);
        }
        return Ok(OpenFile::new(
            Some(location),
            inode,
            Arc::new(vfs::NoIo),
            status,
        ));
    }
    if flags & O_DIRECTORY != 0 && kind != Some(FileType::Directory) {
        return Err(Errno::ENOTDIR);
    }
    if kind == Some(FileType::Symlink) {
        return Err(Errno::ELOOP); // O_NOFOLLOW met a symlink.
    }
    let access = flags & O_ACCMODE;
    let writes = access != O_RDONLY || flags & O_TRUNC != 0;
    if kind == Some(FileType::Directory) && (writes || flags & O_CREAT != 0) {
        return Err(Errno::EISDIR);
    }
    let mut want = 0;
    if access != vfs::O_WRONLY {
        want |= MAY_READ;
    }
    if writes {
        want |= MAY_WRITE;
    }
    if !permitted(t, &attr, want) {
        return Err(Errno::EACCES);
    }
    if writes && kind == Some(FileType::Regular) {
        check_writable_mount(Some(&location))?;
    }
    // A nodev mount's device nodes do not open (Linux's may_open_dev).
    let device = matches!(kind, Some(FileType::CharDevice | FileType::BlockDevice));
    if device && location.mount.flags.nodev {
        return Err(Errno::EACCES);
    }
    let ops = match kind {
        Some(FileType::CharDevice) => {
            match crate::fs::tty::devpts::open(t, &inode, attr.rdev, flags) {
                Some(terminal) => terminal?,
                None => crate::fs::devices::open(attr.rdev)?,
            }
        }
        // Every opener of a fifo shares one pipe, whatever file system holds the fifo.
        Some(FileType::Fifo) => crate::fs::pipe::open_fifo(attr.key(), flags)?,
        Some(FileType::Socket) | Some(FileType::BlockDevice) => return Err(Errno::ENXIO),
        _ => inode.clone().open(flags)?,
    };
    // O_TRUNC truncates even with O_RDONLY (open(2): "the effect ... is unspecified";
    // Linux truncates).
    if flags & O_TRUNC != 0 && kind == Some(FileType::Regular) {
        inode.set_attr(&SetAttr {
            size: Some(0),
            ..SetAttr::default()
        })?;
        crate::mm::page_cache::after_truncate(&inode, 0);
    }
    Ok(OpenFile::new(Some(location), inode, ops, status))
}

const AT_REMOVEDIR: u64 = 0x200;
const AT_SYMLINK_FOLLOW: u64 = 0x400;
const AT_EACCESS: u64 = 0x200;

/// The stat family: resolves (or, with AT_EMPTY_PATH and "", takes `dirfd` itself) and
/// writes `struct stat`.
fn stat_at(t: &Task, dirfd: u64, path: u64, buf: u64, flags: u64) -> SysResult {
    let flags = flags as u32 as u64;
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_EMPTY_PATH | AT_STATX_SYNC_TYPE) != 0 {
        return Err(Errno::EINVAL);
    }
    let attr = attr_at(t, dirfd, path, flags)?;
    t.mm.write_obj(buf, &attr.to_stat())?;
    Ok(0)
}

/// The attributes of what `path` names from `dirfd` for fstatat and statx: the directory
/// (or cwd) itself for an empty path with AT_EMPTY_PATH, the link itself with
/// AT_SYMLINK_NOFOLLOW.
fn attr_at(t: &Task, dirfd: u64, path: u64, flags: u64) -> Result<Attr, Errno> {
    let path = read_path(t, path)?;
    if path.is_empty() && flags & AT_EMPTY_PATH != 0 {
        return if dirfd as i32 == AT_FDCWD {
            t.fs.lock().cwd.dentry.inode.attr()
        } else {
            t.fds.get(dirfd)?.attr()
        };
    }
    lookup(t, dirfd, &path, flags & AT_SYMLINK_NOFOLLOW == 0)?
        .dentry
        .inode
        .attr()
}

pub fn stat(t: &mut Task, a: &[u64; 6]) -> SysResult {
    stat_at(t, AT_FDCWD as u64, a[0], a[1], 0)
}

pub fn lstat(t: &mut Task, a: &[u64; 6]) -> SysResult {
    stat_at(t, AT_FDCWD as u64, a[0], a[1], AT_SYMLINK_NOFOLLOW)
}

pub fn newfstatat(t: &mut Task, a: &[u64; 6]) -> SysResult {
    stat_at(t, a[0], a[1], a[2], a[3])
}

pub fn readlink(t: &mut Task, a: &[u64; 6]) -> SysResult {
    readlink_at(t, AT_FDCWD as u64, a[0], a[1], a[2])
}

pub fn readlinkat(t: &mut Task, a: &[u64; 6]) -> SysResult {
    readlink_at(t, a[0], a[1], a[2], a[3])
}

fn readlink_at(t: &Task, dirfd: u64, path: u64, buf: u64, size: u64) -> SysResult {
    if size as i32 <= 0 {
        return Err(Errno::EINVAL);
    }
    let path = read_path(t, path)?;
    let target = if path.is_empty() {
        // readlinkat(fd, ""): the link open (O_PATH|O_NOFOLLOW) at fd; ENOENT for others.
        if dirfd as i32 == AT_FDCWD {
            return Err(Errno::ENOENT);
        }
        let file = t.fds.get(dirfd)?;
        let location = file.location.clone().ok_or(Errno::ENOENT)?;
        location
            .dentry
            .inode
            .readlink()
            .map_err(|_| Errno::ENOENT)?
    } else {
        lookup(t, dirfd, &path, false)?.dentry.inode.readlink()?
    };
    let n = target.len().min(size as u32 as usize);
    t.mm.copy_out(buf, &target[..n])?;
    Ok(n as u64)
}

pub fn mkdir(t: &mut Task, a: &[u64; 6]) -> SysResult {
    mkdir_at(t, AT_FDCWD as u64, a[0], a[1] as u32)
}

pub fn mkdirat(t: &mut Task, a: &[u64; 6]) -> SysResult {
    mkdir_at(t, a[0], a[1], a[2] as u32)
}

fn mkdir_at(t: &Task, dirfd: u64, path: u64, mode: u32) -> SysResult {
    let path = read_path(t, path)?;
    let mode = mode & 0o1777 & !umask(t);
    make_node(t, dirfd, &path, &NewNode::Directory { mode }, true)
}

pub fn mknod(t: &mut Task, a: &[u64; 6]) -> SysResult {
    mknod_at(t, AT_FDCWD as u64, a[0], a[1] as u32, a[2])
}

pub fn mknodat(t: &mut Task, a: &[u64; 6]) -> SysResult {
    mknod_at(t, a[0], a[1], a[2] as u32, a[3])
}

fn mknod_at(t: &Task, dirfd: u64, path: u64, mode: u32, dev: u64) -> SysResult {
    let path = read_path(t, path)?;
    let perm = mode & 0o7777 & !umask(t);
    let node = match FileType::from_mode(mode) {
        None if mode & vfs::S_IFMT == 0 => NewNode::File { mode: perm },
        Some(FileType::Regular) => NewNode::File { mode: perm },
        Some(FileType::Fifo) => NewNode::Fifo { mode: perm },
        Some(FileType::CharDevice) | Some(FileType::BlockDevice) if t.creds.capable(CAP_MKNOD) => {
            NewNode::Device {
                mode: (mode & vfs::S_IFMT) | perm,
                rdev: dev,
            }
        }
        Some(FileType::CharDevice) | Some(FileType::BlockDevice) => return Err(Errno::EPERM),
        // A socket file that no socket is bound to (connect finds nobody there).
        Some(FileType::Socket) => NewNode::Device {
            mode: FileType::Socket.mode_bits() | perm,
            rdev: 0,
        },
        _ => return Err(Errno::EINVAL),
    };
    make_node(t, dirfd, &path, &node, false)
}

/// Creates `node` at `path` (the last component must not exist).
fn make_node(t: &Task, dirfd: u64, path: &[u8], node: &NewNode, dir: bool) -> SysResult {
    create_node(t, dirfd, path, node, dir).map(|_| 0)
}

/// Creates `node` at `path` and returns its inode.
fn create_node(
    t: &Task,
    dirfd: u64,
    path: &[u8],
    node: &NewNode,
    dir: bool,
) -> Result<Arc<dyn vfs::Inode>, Errno> {
    let parent = lookup_parent(t, dirfd, path)?;
    if matches!(parent.name.as_slice(), b"" | b"." | b"..") || (parent.trailing_slash && !dir) {
        return Err(Errno::EEXIST);
    }
    check_writable_mount(Some(&parent.parent))?;
    let dir_attr = parent.parent.dentry.inode.attr()?;
    if !permitted(t, &dir_attr, MAY_WRITE | MAY_EXEC) {
        return Err(Errno::EACCES);
    }
    parent
        .parent
        .dentry
        .inode
        .create(&parent.name, node, owner(t))
}

/// The socket file bind(2) makes for a unix socket at `path` (unix_bind_bsd): mode 0777 less
/// the umask; EADDRINUSE if the name exists. Returns its inode's identity.
pub(super) fn make_socket_file(t: &Task, path: &[u8]) -> Result<vfs::InodeKey, Errno> {
    let node = NewNode::Device {
        mode: FileType::Socket.mode_bits() | (0o777 & !umask(t)),
        rdev: 0,
    };
    let inode = match create_node(t, AT_FDCWD as u64, path, &node, false) {
        Err(Errno::EEXIST) => return Err(Errno::EADDRINUSE),
        other => other?,
    };
    // Looked up again, so that the key is the one a later lookup of the name finds.
    match lookup(t, AT_FDCWD as u64, path, false) {
        Ok(found) => Ok(found.dentry.inode.attr()?.key()),
        Err(_) => Ok(inode.attr()?.key()),
    }
}

/// The socket file at `path` that connect(2) or sendto(2) reach (unix_find_bsd): symlinks
/// are followed, writing to it must be permitted (EACCES), and it must be a socket file
/// (ECONNREFUSED). Returns its inode's identity.
pub(super) fn find_socket_file(t: &Task, path: &[u8]) -> Result<vfs::InodeKey, Errno> {
    let attr = lookup(t, AT_FDCWD as u64, path, true)?
        .dentry
        .inode
        .attr()?;
    if !permitted(t, &attr, MAY_WRITE) {
        return Err(Errno::EACCES);
    }
    if attr.file_type() != Some(FileType::Socket) {
        return Err(Errno::ECONNREFUSED);
    }
    Ok(attr.key())
}

/// Removes the file at `path` (a socket file a failed bind made).
pub(super) fn unlink_path(t: &Task, path: &[u8]) -> Result<(), Errno> {
    remove_path(t, AT_FDCWD as u64, path, false).map(|_| ())
}

pub fn symlink(t: &mut Task, a: &[u64; 6]) -> SysResult {
    symlink_at(t, a[0], AT_FDCWD as u64, a[1])
}

pub fn symlinkat(t: &mut Task, a: &[u64; 6]) -> SysResult {
    symlink_at(t, a[0], a[1], a[2])
}

fn symlink_at(t: &Task, target: u64, dirfd: u64, path: u64) -> SysResult {
    let target = read_path(t, target)?;
    if target.is_empty() {
        return Err(Errno::ENOENT);
    }
    let path = read_path(t, path)?;
    make_node(t, dirfd, &path, &NewNode::Symlink { target }, false)
}

pub fn unlink(t: &mut Task, a: &[u64; 6]) -> SysResult {
    remove(t, AT_FDCWD as u64, a[0], false)
}

pub fn rmdir(t: &mut Task, a: &[u64; 6]) -> SysResult {
    remove(t, AT_FDCWD as u64, a[0], true)
}

pub fn unlinkat(t: &mut Task, a: &[u64; 6]) -> SysResult {
    if a[2] & !AT_REMOVEDIR != 0 {
        return Err(Errno::EINVAL);
    }
    remove(t, a[0], a[1], a[2] & AT_REMOVEDIR != 0)
}

/// unlink or rmdir of `path`.
fn remove(t: &Task, dirfd: u64, path: u64, dir: bool) -> SysResult {
    let path = read_path(t, path)?;
    remove_path(t, dirfd, &path, dir)
}

fn remove_path(t: &Task, dirfd: u64, path: &[u8], dir: bool) -> SysResult {
    let parent = lookup_parent(t, dirfd, path)?;
    match (parent.name.as_slice(), dir) {
        (b"", true) => return Err(Errno::EBUSY),
        (b".", true) => return Err(Errno::EINVAL),
        (b"..", true) => return Err(Errno::ENOTEMPTY),
        (b"" | b"." | b"..", false) => return Err(Errno::EISDIR),
        _ => {}
    }
    if parent.trailing_slash && !dir {
        // unlink("file/") resolves the name as a directory first.
        let found = parent.parent.dentry.lookup(&parent.name)?;
        return Err(if found.is_dir() {
            Errno::EISDIR
        } else {
            Errno::ENOTDIR
        });
    }
    check_writable_mount(Some(&parent.parent))?;
    let child = parent.parent.dentry.lookup(&parent.name)?;
    let here = Location {
        mount: parent.parent.mount.clone(),
        dentry: child,
    };
    if !t.kernel.mounts.cross_down(here.clone()).same(&here) {
        return Err(Errno::EBUSY); // A mount point.
    }
    let dir_attr = parent.parent.dentry.inode.attr()?;
    if !permitted(t, &dir_attr, MAY_WRITE | MAY_EXEC) {
        return Err(Errno::EACCES);
    }
    parent.parent.dentry.inode.unlink(&parent.name, dir)?;
    parent.parent.dentry.forget(&parent.name);
    Ok(0)
}

pub fn link(t: &mut Task, a: &[u64; 6]) -> SysResult {
    link_at(t, AT_FDCWD as u64, a[0], AT_FDCWD as u64, a[1], 0)
}

pub fn linkat(t: &mut Task, a: &[u64; 6]) -> SysResult {
    link_at(t, a[0], a[1], a[2], a[3], a[4])
}

fn link_at(t: &Task, olddir: u64, old: u64, newdir: u64, new: u64, flags: u64) -> SysResult {
    if flags & !(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let old = read_path(t, old)?;
    let new = read_path(t, new)?;
    let target = if old.is_empty() && flags & AT_EMPTY_PATH != 0 {
        t.fds.get(olddir)?.location.clone().ok_or(Errno::ENOENT)?
    } else {
        lookup(t, olddir, &old, flags & AT_SYMLINK_FOLLOW != 0)?
    };
    if target.dentry.is_dir() {
        return Err(Errno::EPERM);
    }
    let parent = lookup_parent(t, newdir, &new)?;
    if parent.trailing_slash {
        return Err(Errno::ENOENT);
    }
    if matches!(parent.name.as_slice(), b"" | b"." | b"..") {
        return Err(Errno::EEXIST);
    }
    if !Arc::ptr_eq(&parent.parent.mount, &target.mount) {
        return Err(Errno::EXDEV);
    }
    check_writable_mount(Some(&parent.parent))?;
    parent
        .parent
        .dentry
        .inode
        .link(&parent.name, &target.dentry.inode)?;
    Ok(0)
}

const RENAME_NOREPLACE: u64 = 1;
const RENAME_EXCHANGE: u64 = 2;
const RENAME_WHITEOUT: u64 = 4;

pub fn rename(t: &mut Task, a: &[u64; 6]) -> SysResult {
    rename_at(t, AT_FDCWD as u64, a[0], AT_FDCWD as u64, a[1], 0)
}

pub fn renameat(t: &mut Task, a: &[u64; 6]) -> SysResult {
    rename_at(t, a[0], a[1], a[2], a[3], 0)
}

pub fn renameat2(t: &mut Task, a: &[u64; 6]) -> SysResult {
    rename_at(t, a[0], a[1], a[2], a[3], a[4])
}

fn rename_at(t: &Task, olddir: u64, old: u64, newdir: u64, new: u64, flags: u64) -> SysResult {
    if flags & !(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT) != 0
        || (flags & RENAME_EXCHANGE != 0 && flags & (RENAME_NOREPLACE | RENAME_WHITEOUT) != 0)
    {
        return Err(Errno::EINVAL);
    }
    if flags & (RENAME_EXCHANGE | RENAME_WHITEOUT) != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    let old = read_path(t, old)?;
    let new = read_path(t, new)?;
    let from = lookup_parent(t, olddir, &old)?;
    let to = lookup_parent(t, newdir, &new)?;
    for r in [&from, &to] {
        if matches!(r.name.as_slice(), b"" | b"." | b"..") {
            return Err(Errno::EBUSY);
        }
    }
    let moving = from.parent.dentry.lookup(&from.name)?;
    if (from.trailing_slash || to.trailing_slash) && !moving.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    if !Arc::ptr_eq(&from.parent.mount, &to.parent.mount) {
        return Err(Errno::EXDEV);
    }
    check_writable_mount(Some(&to.parent))?;
    // A directory cannot move below itself.
    let mut up = Some(to.parent.dentry.clone());
    while let Some(d) = up {
        if Arc::ptr_eq(&d, &moving) {
            return Err(Errno::EINVAL);
        }
        up = d.parent.clone();
    }
    let existing = to.parent.dentry.lookup(&to.name);
    if flags & RENAME_NOREPLACE != 0 && existing.is_ok() {
        return Err(Errno::EEXIST);
    }
    if let Ok(existing) = existing {
        if Arc::ptr_eq(&existing, &to.parent.dentry) || existing.parent.is_none() {
            return Err(Errno::EBUSY);
        }
    }
    from.parent
        .dentry
        .inode
        .rename(&from.name, &to.parent.dentry.inode, &to.name)?;
    from.parent.dentry.forget(&from.name);
    to.parent.dentry.forget(&to.name);
    Ok(0)
}

pub fn chdir(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let path = read_path(t, a[0])?;
    let location = lookup(t, AT_FDCWD as u64, &path, true)?;
    change_dir(t, location)
}

pub fn fchdir(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let location = t.fds.get(a[0])?.location.clone().ok_or(Errno::ENOTDIR)?;
    change_dir(t, location)
}

fn change_dir(t: &Task, location: Location) -> SysResult {
    let attr = location.dentry.inode.attr()?;
    if attr.file_type() != Some(FileType::Directory) {
        return Err(Errno::ENOTDIR);
    }
    if !permitted(t, &attr, MAY_EXEC) {
        return Err(Errno::EACCES);
    }
    t.fs.lock().cwd = location;
    Ok(0)
}

pub fn getcwd(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let cwd = t.fs.lock().cwd.clone();
    if cwd.dentry.inode.attr()?.nlink == 0 {
        return Err(Errno::ENOENT); // The working directory was removed.
    }
    let mut bytes = path_of(t, &cwd);
    bytes.push(0);
    if (a[1] as usize) < bytes.len() {
        return Err(Errno::ERANGE);
    }
    t.mm.copy_out(a[0], &bytes)?;
    Ok(bytes.len() as u64)
}

/// The absolute path of `location` as seen from the task's root.
pub(crate) fn path_of(t: &Task, location: &Location) -> Vec<u8> {
    let root = t.fs.lock().root.clone();
    vfs::path::absolute(location, &root)
}

pub fn umask_call(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let mut fs = t.fs.lock();
    let old = fs.umask;
    fs.umask = a[0] as u32 & 0o777;
    Ok(old as u64)
}

pub fn access(t: &mut Task, a: &[u64; 6]) -> SysResult {
    access_at(t, AT_FDCWD as u64, a[0], a[1], 0)
}

pub fn faccessat(t: &mut Task, a: &[u64; 6]) -> SysResult {
    access_at(t, a[0], a[1], a[2], 0)
}

pub fn faccessat2(t: &mut Task, a: &[u64; 6]) -> SysResult {
    access_at(t, a[0], a[1], a[2], a[3])
}

fn access_at(t: &Task, dirfd: u64, path: u64, mode: u64, flags: u64) -> SysResult {
    if mode & !7 != 0 || flags & !(AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let path = read_path(t, path)?;
    let location = if path.is_empty() && flags & AT_EMPTY_PATH != 0 {
        t.fds.get(dirfd)?.location.clone().ok_or(Errno::ENOENT)?
    } else {
        lookup(t, dirfd, &path, flags & AT_SYMLINK_NOFOLLOW == 0)?
    };
    let attr = location.dentry.inode.attr()?;
    if mode & MAY_WRITE as u64 != 0 && location.mount.flags.read_only {
        return Err(Errno::EROFS);
    }
    // access(2) checks as the real user unless AT_EACCESS asks for the effective one.
    let creds = if flags & AT_EACCESS == 0 {
        t.creds.for_access()
    } else {
        t.creds.clone()
    };
    if !permitted_by(&creds, &attr, mode as u32) {
        return Err(Errno::EACCES);
    }
    Ok(0)
}

pub fn truncate(t: &mut Task, a: &[u64; 6]) -> SysResult {
    if (a[1] as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    let path = read_path(t, a[0])?;
    let location = lookup(t, AT_FDCWD as u64, &path, true)?;
    let attr = location.dentry.inode.attr()?;
    match attr.file_type() {
        Some(FileType::Directory) => return Err(Errno::EISDIR),
        Some(FileType::Regular) => {}
        _ => return Err(Errno::EINVAL),
    }
    check_writable_mount(Some(&location))?;
    if !permitted(t, &attr, MAY_WRITE) {
        return Err(Errno::EACCES);
    }
    location.dentry.inode.set_attr(&SetAttr {
        size: Some(a[1]),
        ..SetAttr::default()
    })?;
    crate::mm::page_cache::after_truncate(&location.dentry.inode, a[1]);
    Ok(0)
}

/// Applies `changes` to `location` after the ownership checks chmod and chown make.
fn change_attr(t: &Task, location: &Location, changes: SetAttr) -> SysResult {
    check_writable_mount(Some(location))?;
    let attr = location.dentry.inode.attr()?;
    let mut changes = changes;
    if let Some(mode) = changes.mode.as_mut() {
        if !owner_or_capable(t, &attr) {
            return Err(Errno::EPERM);
        }
        // chmod(2): set-group-ID goes unless the caller is in the file's group or has
        // CAP_FSETID.
        if !t.creds.in_group(attr.gid) && !t.creds.capable(CAP_FSETID) {
            *mode &= !0o2000;
        }
    }
    // chown(2) without CAP_CHOWN: only the owner, who may keep the owner and give the file
    // to its group or one it is in (chown_ok, chgrp_ok).
    let c = &t.creds;
    let owner = attr.uid == c.fsuid;
    let uid_ok = changes.uid.is_none_or(|u| owner && u == attr.uid);
    let gid_ok = changes
        .gid
        .is_none_or(|g| owner && (g == attr.gid || c.in_group(g)));
    if !(uid_ok && gid_ok || c.capable(CAP_CHOWN)) {
        return Err(Errno::EPERM);
    }
    location.dentry.inode.set_attr(&changes)?;
    Ok(0)
}

pub fn chmod(t: &mut Task, a: &[u64; 6]) -> SysResult {
    chmod_at(t, AT_FDCWD as u64, a[0], a[1], 0)
}

/// The location of a descriptor that is not O_PATH (fchmod, fchown), else EBADF.
fn io_location(t: &Task, fd: u64) -> Result<Location, Errno> {
    let file = t.fds.get(fd)?;
    if file.flags() & O_PATH != 0 {
        return Err(Errno::EBADF);
    }
    file.location.clone().ok_or(Errno::EBADF)
}

pub fn fchmod(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let location = io_location(t, a[0])?;
    chmod_location(t, &location, a[1])
}

pub fn fchmodat(t: &mut Task, a: &[u64; 6]) -> SysResult {
    // The raw fchmodat has no flags argument: it always follows symlinks.
    chmod_at(t, a[0], a[1], a[2], 0)
}

pub fn fchmodat2(t: &mut Task, a: &[u64; 6]) -> SysResult {
    chmod_at(t, a[0], a[1], a[2], a[3])
}

/// The chmod family by path: fchmodat2 semantics (AT_SYMLINK_NOFOLLOW, AT_EMPTY_PATH).
fn chmod_at(t: &Task, dirfd: u64, path: u64, mode: u64, flags: u64) -> SysResult {
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let path = read_path(t, path)?;
    let location = if path.is_empty() && flags & AT_EMPTY_PATH != 0 {
        t.fds.get(dirfd)?.location.clone().ok_or(Errno::EBADF)?
    } else {
        lookup(t, dirfd, &path, flags & AT_SYMLINK_NOFOLLOW == 0)?
    };
    // Linux cannot change a symlink's mode: EOPNOTSUPP.
    if location.dentry.inode.attr()?.file_type() == Some(FileType::Symlink) {
        return Err(Errno::EOPNOTSUPP);
    }
    chmod_location(t, &location, mode)
}

fn chmod_location(t: &Task, location: &Location, mode: u64) -> SysResult {
    let changes = SetAttr {
        mode: Some(mode as u32 & 0o7777),
        ..SetAttr::default()
    };
    change_attr(t, location, changes)
}

/// The uid or gid argument of chown: -1 leaves it alone.
fn id_arg(v: u64) -> Option<u32> {
    (v as u32 != u32::MAX).then_some(v as u32)
}

fn chown_location(t: &Task, location: &Location, uid: u64, gid: u64) -> SysResult {
    let attr = location.dentry.inode.attr()?;
    // chown(2): set-user-ID is cleared on a non-directory, and set-group-ID too when
    // group execute is set (else it marks mandatory locking and stays).
    let mut mode = None;
    if attr.file_type() != Some(FileType::Directory) {
        let mut m = attr.mode & 0o7777 & !0o4000;
        if m & 0o010 != 0 {
            m &= !0o2000;
        }
        mode = Some(m);
    }
    change_attr(
        t,
        location,
        SetAttr {
            uid: id_arg(uid),
            gid: id_arg(gid),
            ..SetAttr::default()
        },
    )?;
    if let Some(m) = mode.filter(|&m| m != attr.mode & 0o7777) {
        location.dentry.inode.set_attr(&SetAttr {
            mode: Some(m),
            ..SetAttr::default()
        })?;
    }
    Ok(0)
}

pub fn chown(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let path = read_path(t, a[0])?;
    let location = lookup(t, AT_FDCWD as u64, &path, true)?;
    chown_location(t, &location, a[1], a[2])
}

pub fn lchown(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let path = read_path(t, a[0])?;
    let location = lookup(t, AT_FDCWD as u64, &path, false)?;
    chown_location(t, &location, a[1], a[2])
}

pub fn fchown(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let location = io_location(t, a[0])?;
    chown_location(t, &location, a[1], a[2])
}

pub fn fchownat(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let flags = a[4];
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let path = read_path(t, a[1])?;
    let location = if path.is_empty() && flags & AT_EMPTY_PATH != 0 {
        t.fds.get(a[0])?.location.clone().ok_or(Errno::EBADF)?
    } else {
        lookup(t, a[0], &path, flags & AT_SYMLINK_NOFOLLOW == 0)?
    };
    chown_location(t, &location, a[2], a[3])
}

const AT_STATX_SYNC_TYPE: u64 = 0x6000;
const STATX_BASIC_STATS: u32 = 0x7ff;
const STATX_RESERVED: u64 = 0x8000_0000;

pub fn statx(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let [dirfd, path, flags, mask, buf, ..] = *a;
    let flags = flags as u32 as u64;
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_EMPTY_PATH | AT_STATX_SYNC_TYPE) != 0
        || flags & AT_STATX_SYNC_TYPE == AT_STATX_SYNC_TYPE
        || (mask as u32 as u64) & STATX_RESERVED != 0
    {
        return Err(Errno::EINVAL);
    }
    let attr = attr_at(t, dirfd, path, flags)?;
    t.mm.write_obj(buf, &Statx::from_attr(&attr, STATX_BASIC_STATS))?;
    Ok(0)
}

pub fn statfs(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let path = read_path(t, a[0])?;
    let location = lookup(t, AT_FDCWD as u64, &path, true)?;
    t.mm.write_obj(a[1], &statfs_of(&location))?;
    Ok(0)
}

pub fn fstatfs(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let file = t.fds.get(a[0])?;
    let location = file.location.clone().ok_or(Errno::ENOSYS)?;
    t.mm.write_obj(a[1], &statfs_of(&location))?;
    Ok(0)
}

/// What statfs reports for the file system holding `location`.
fn statfs_of(location: &Location) -> Statfs {
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    const PROC_SUPER_MAGIC: i64 = 0x9fa0;
    const SYSFS_MAGIC: i64 = 0x6265_6572;
    const DEVPTS_SUPER_MAGIC: i64 = 0x1cd1;
    const MQUEUE_MAGIC: i64 = 0x1980_0202;
    const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
    let dev = location.dentry.inode.attr().map_or(0, |a| a.dev);
    // Programs tell procfs and sysfs by their magic (procps, systemd do).
    let f_type = match location.mount.fs_type {
        "proc" => PROC_SUPER_MAGIC,
        "sysfs" => SYSFS_MAGIC,
        "devpts" => DEVPTS_SUPER_MAGIC,
        "mqueue" => MQUEUE_MAGIC,
        "cgroup2" => CGROUP2_SUPER_MAGIC,
        _ => TMPFS_MAGIC,
    };
    Statfs {
        f_type,
        f_bsize: PAGE_SIZE as i64,
        f_blocks: 0,
        f_bfree: 0,
        f_bavail: 0,
        f_files: 0,
        f_ffree: 0,
        f_fsid: [dev as i32, (dev >> 32) as i32],
        f_namelen: vfs::NAME_MAX as i64,
        f_frsize: PAGE_SIZE as i64,
        f_flags: location.mount.flags.statfs_flags(),
        f_spare: [0; 4],
    }
}

/// utimensat's special tv_nsec values.
const UTIME_NOW: i64 = (1 << 30) - 1;
const UTIME_OMIT: i64 = (1 << 30) - 2;

/// utimensat(2); a NULL path means `dirfd` itself (futimens).
pub fn utimensat(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let [dirfd, path, times, flags, ..] = *a;
    let flags = flags as u32 as u64;
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let [atime, mtime] = if times != 0 {
        let ts: [Timespec; 2] = t.mm.read_obj(times)?;
        ts
    } else {
        [Timespec {
            tv_sec: 0,
            tv_nsec: UTIME_NOW,
        }; 2]
    };
    for ts in [atime, mtime] {
        if ts.tv_nsec != UTIME_NOW
            && ts.tv_nsec != UTIME_OMIT
            && !(0..1_000_000_000).contains(&ts.tv_nsec)
        {
            return Err(Errno::EINVAL);
        }
    }
    let location = if path == 0 {
        t.fds.get(dirfd)?.location.clone().ok_or(Errno::EBADF)?
    } else {
        let path = read_path(t, path)?;
        if path.is_empty() && flags & AT_EMPTY_PATH != 0 {
            t.fds.get(dirfd)?.location.clone().ok_or(Errno::EBADF)?
        } else {
            lookup(t, dirfd, &path, flags & AT_SYMLINK_NOFOLLOW == 0)?
        }
    };
    if atime.tv_nsec == UTIME_OMIT && mtime.tv_nsec == UTIME_OMIT {
        return Ok(0);
    }
    check_writable_mount(Some(&location))?;
    let attr = location.dentry.inode.attr()?;
    let owner_or_root = owner_or_capable(t, &attr);
    let both_now = atime.tv_nsec == UTIME_NOW && mtime.tv_nsec == UTIME_NOW;
    // Setting explicit times needs ownership; setting "now" also works with write access.
    let may_touch = both_now && permitted(t, &attr, MAY_WRITE);
    if !(owner_or_root || may_touch) {
        return Err(if both_now {
            Errno::EACCES
        } else {
            Errno::EPERM
        });
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(Timespec::from_duration)
        .unwrap_or_default();
    let resolve = |ts: Timespec| match ts.tv_nsec {
        UTIME_OMIT => None,
        UTIME_NOW => Some(now),
        _ => Some(ts),
    };
    let changes = SetAttr {
        atime: resolve(atime),
        mtime: resolve(mtime),
        ..SetAttr::default()
    };
    location.dentry.inode.set_attr(&changes)?;
    Ok(0)
}
