//! The gofer's file protocol: typed messages that ride the [`crate::ring`], in the manner of
//! gVisor's LISAFS. The server hands out handles ([`Fid`]s); every operation names a handle
//! and at most one path component at a time, so path resolution (mounts, `..`, symlinks)
//! stays in the Sentry's VFS and the gofer never follows a symlink.
//!
//! # Wire format
//!
//! A request is the ring descriptor's opcode ([`Opcode`]) plus a payload in the request's
//! data slot: a fixed `#[repr(C)]` header (zerocopy, native byte order: both ends run on the
//! same host) followed by the variable part (names, data). A response is the descriptor's
//! status plus a payload:
//!
//! * status 0: success; the payload is the operation's response ([`Response`]);
//! * status `1..=4095`: a Linux errno; the payload is empty. Anything else is a protocol
//!   violation.
//!
//! Errors of one path component during a [`Request::Walk`] are not request errors: the walk
//! succeeds with the components found so far and the errno of the one that stopped it
//! ([`Response::Walk`]), so no handle the server created is lost.
//!
//! All encoding and decoding lives here. Decoding checks everything (lengths, reserved
//! fields, names, flags and modes) and fails with a [`DecodeError`] that maps to the errno
//! the server answers ([`DecodeError::errno`]); it never panics on any input.
//!
//! # Versions
//!
//! The first request on a ring must be [`Request::Version`] carrying the highest version the
//! client speaks. The server answers `min(requested, VERSION)` if that is at least
//! [`MIN_VERSION`], and `EPROTONOSUPPORT` otherwise; the client refuses an answer it does not
//! speak. Any other request before the handshake, or a second `Version`, gets `EPROTO`.

use nix::errno::Errno;
use nix::libc;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

#[cfg(test)]
mod tests;

/// The protocol version this crate speaks (and the highest it knows).
pub const VERSION: u32 = 1;
/// The oldest version this crate still speaks.
pub const MIN_VERSION: u32 = 1;
/// Smallest ring data slot the protocol works with: room for a symlink target of
/// [`PATH_MAX`] bytes plus a name plus headers.
pub const MIN_PAYLOAD: u32 = 8192;
/// Longest file name (Linux `NAME_MAX`).
pub const NAME_MAX: usize = 255;
/// Linux `PATH_MAX`, counting the terminating NUL: a symlink target has at most
/// `PATH_MAX - 1` bytes.
pub const PATH_MAX: usize = 4096;

/// Operations. The value is the ring descriptor's opcode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Opcode {
    Version = 1,
    Walk = 2,
    Stat = 3,
    Open = 4,
    Read = 5,
    Write = 6,
    Create = 7,
    Mkdir = 8,
    Mknod = 9,
    Symlink = 10,
    Link = 11,
    Unlink = 12,
    Rename = 13,
    Readlink = 14,
    Getdents = 15,
    SetAttr = 16,
    StatFs = 17,
    Fsync = 18,
    Close = 19,
    /// Ends the server's serve loop (after answering).
    Shutdown = 20,
}

impl Opcode {
    pub const ALL: [Opcode; 20] = [
        Opcode::Version,
        Opcode::Walk,
        Opcode::Stat,
        Opcode::Open,
        Opcode::Read,
        Opcode::Write,
        Opcode::Create,
        Opcode::Mkdir,
        Opcode::Mknod,
        Opcode::Symlink,
        Opcode::Link,
        Opcode::Unlink,
        Opcode::Rename,
        Opcode::Readlink,
        Opcode::Getdents,
        Opcode::SetAttr,
        Opcode::StatFs,
        Opcode::Fsync,
        Opcode::Close,
        Opcode::Shutdown,
    ];

    pub fn from_u32(code: u32) -> Option<Opcode> {
        Self::ALL.into_iter().find(|op| *op as u32 == code)
    }

    /// Whether the operation changes the file system (refused by a read-only server).
    /// `Open` is not listed: whether it mutates depends on its flags.
    pub fn is_mutation(self) -> bool {
        matches!(
            self,
            Opcode::Write
                | Opcode::Create
                | Opcode::Mkdir
                | Opcode::Mknod
                | Opcode::Symlink
                | Opcode::Link
                | Opcode::Unlink
                | Opcode::Rename
                | Opcode::SetAttr
        )
    }
}

/// A handle the server handed out: a walked node (a host `O_PATH` descriptor) or an open
/// file. Never reused during a connection; 0 is never a valid fid.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(transparent)]
pub struct Fid(pub u64);

/// A time stamp, as Linux `struct timespec`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct Timespec {
    pub sec: i64,
    pub nsec: i64,
}

impl Timespec {
    /// In [`SetAttr`]: set this time to the current time (`utimensat(2)`'s `UTIME_NOW`).
    pub const NOW: Timespec = Timespec {
        sec: 0,
        nsec: libc::UTIME_NOW,
    };
    /// In [`SetAttr`]: leave this time alone (`UTIME_OMIT`).
    pub const OMIT: Timespec = Timespec {
        sec: 0,
        nsec: libc::UTIME_OMIT,
    };

    /// A time `utimensat(2)` accepts: nanoseconds below 10^9, or `UTIME_NOW`/`UTIME_OMIT`.
    pub fn is_valid_for_utimensat(&self) -> bool {
        (0..1_000_000_000).contains(&self.nsec)
            || self.nsec == libc::UTIME_NOW
            || self.nsec == libc::UTIME_OMIT
    }
}

/// A file's attributes, as the host's `stat(2)` reports them. `dev` and `ino` are the host's:
/// the Sentry may use them to recognise hard links, never to reach the host.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct Attr {
    pub ino: u64,
    pub dev: u64,
    /// File type (`S_IFMT` bits) and permissions.
    pub mode: u32,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u64,
    pub size: u64,
    pub blksize: u64,
    /// In 512-byte units.
    pub blocks: u64,
    pub atime: Timespec,
    pub mtime: Timespec,
    pub ctime: Timespec,
}

impl Attr {
    /// The `S_IFMT` bits.
    pub fn file_type(&self) -> u32 {
        self.mode & libc::S_IFMT
    }

    pub fn is_dir(&self) -> bool {
        self.file_type() == libc::S_IFDIR
    }

    pub fn is_symlink(&self) -> bool {
        self.file_type() == libc::S_IFLNK
    }

    pub fn is_regular(&self) -> bool {
        self.file_type() == libc::S_IFREG
    }
}

/// A file system's statistics, as `statfs(2)`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct StatFs {
    /// The magic number (`f_type`).
    pub fs_type: u64,
    pub block_size: u64,
    pub blocks: u64,
    pub blocks_free: u64,
    pub blocks_available: u64,
    pub files: u64,
    pub files_free: u64,
    pub name_max: u64,
    /// Mount flags (`f_flags`: `ST_RDONLY`, `ST_NOSUID`, ...).
    pub flags: u64,
}

/// A handle and the attributes of the node it names: what `Walk` returns per component and
/// what the creating operations (`Mkdir`, `Mknod`, `Symlink`, `Link`) return.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct FidAttr {
    pub fid: Fid,
    pub attr: Attr,
}

/// What `Create` returns: a node handle for the new file (for the dentry) and a second,
/// open handle for I/O (for the file description).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct Created {
    pub node: Fid,
    pub file: Fid,
    pub attr: Attr,
}

/// `SetAttr` bits: which fields of [`SetAttr`] to apply.
pub mod setattr {
    pub const MODE: u32 = 1 << 0;
    pub const UID: u32 = 1 << 1;
    pub const GID: u32 = 1 << 2;
    pub const SIZE: u32 = 1 << 3;
    pub const ATIME: u32 = 1 << 4;
    pub const MTIME: u32 = 1 << 5;
    pub const ALL: u32 = MODE | UID | GID | SIZE | ATIME | MTIME;
}

/// Attribute changes. Fields whose bit is not in `mask` are ignored. The server applies
/// them in the order size, owner, mode, times (an owner change clears set-user-ID bits, so
/// the mode comes after it; a truncation updates mtime, so the times come last); a failure
/// part-way leaves the earlier changes applied.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct SetAttr {
    /// [`setattr`] bits.
    pub mask: u32,
    /// Permission bits only (at most `0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    /// May be [`Timespec::NOW`] or [`Timespec::OMIT`].
    pub atime: Timespec,
    pub mtime: Timespec,
}

/// Open flags a client may pass to `Open` ([`OPEN_FLAGS`]) and `Create` ([`CREATE_FLAGS`]):
/// the access mode, `O_APPEND` (with which Linux `pwrite(2)` appends whatever the offset),
/// `O_TRUNC`, `O_DSYNC`/`O_SYNC`, and for `Open` `O_DIRECTORY`. Everything else is the
/// Sentry's business (`O_NONBLOCK`, `O_CLOEXEC`, ...) or dangerous (`O_CREAT` outside
/// `Create`, `O_PATH`, `O_DIRECT` with unaligned buffers): `EINVAL`.
pub const OPEN_FLAGS: u32 = (libc::O_ACCMODE
    | libc::O_APPEND
    | libc::O_TRUNC
    | libc::O_DSYNC
    | libc::O_SYNC
    | libc::O_DIRECTORY) as u32;
/// See [`OPEN_FLAGS`]. `Create` always creates exclusively (`O_CREAT | O_EXCL`).
pub const CREATE_FLAGS: u32 =
    (libc::O_ACCMODE | libc::O_APPEND | libc::O_TRUNC | libc::O_DSYNC | libc::O_SYNC) as u32;
/// `Fsync` flag: only `fdatasync(2)`.
pub const FSYNC_DATASYNC: u32 = 1;
/// `Unlink` flag, as `unlinkat(2)`.
pub const AT_REMOVEDIR: u32 = libc::AT_REMOVEDIR as u32;
/// `Rename` flags, as `renameat2(2)` (`RENAME_WHITEOUT` is refused).
pub const RENAME_NOREPLACE: u32 = libc::RENAME_NOREPLACE;
pub const RENAME_EXCHANGE: u32 = libc::RENAME_EXCHANGE;

/// A file name: one path component, checked. Non-empty, at most [`NAME_MAX`] bytes, no `/`
/// or NUL, and not `.` or `..`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Name(Vec<u8>);

/// Why a [`Name`] was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("empty file name")]
    Empty,
    #[error("file name of {0} bytes is longer than {NAME_MAX}")]
    TooLong(usize),
    #[error("file name contains '/'")]
    Slash,
    #[error("file name contains NUL")]
    Nul,
    #[error("file name is '.' or '..'")]
    Dots,
}

impl NameError {
    /// `ENAMETOOLONG` for a long name (as Linux), `EINVAL` for the rest.
    pub fn errno(self) -> Errno {
        match self {
            NameError::TooLong(_) => Errno::ENAMETOOLONG,
            _ => Errno::EINVAL,
        }
    }
}

impl Name {
    pub fn new(bytes: &[u8]) -> Result<Name, NameError> {
        match bytes {
            [] => Err(NameError::Empty),
            b"." | b".." => Err(NameError::Dots),
            _ if bytes.len() > NAME_MAX => Err(NameError::TooLong(bytes.len())),
            _ if bytes.contains(&b'/') => Err(NameError::Slash),
            _ if bytes.contains(&0) => Err(NameError::Nul),
            _ => Ok(Name(bytes.to_vec())),
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for Name {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Checks a symlink target: non-empty (`ENOENT`, as `symlink(2)`), shorter than
/// [`PATH_MAX`] (`ENAMETOOLONG`), no NUL (`EINVAL`). It may be absolute or contain `..`: it
/// is only text to the gofer.
pub fn check_symlink_target(target: &[u8]) -> Result<(), Errno> {
    if target.is_empty() {
        Err(Errno::ENOENT)
    } else if target.len() >= PATH_MAX {
        Err(Errno::ENAMETOOLONG)
    } else if target.contains(&0) {
        Err(Errno::EINVAL)
    } else {
        Ok(())
    }
}

/// One directory entry from `Getdents`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dirent {
    /// The host inode number (as `d_ino`).
    pub ino: u64,
    /// `DT_*` (may be `DT_UNKNOWN`: then `Walk` and look at the mode).
    pub kind: u8,
    pub name: Name,
    /// Pass this as `cookie` to continue after this entry.
    pub next_cookie: u64,
}

/// A request, decoded and checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// The handshake. Must come first.
    Version {
        version: u32,
    },
    /// Walks `names` from the directory `dir`, one component at a time, never following a
    /// symlink. See [`Response::Walk`].
    Walk {
        dir: Fid,
        names: Vec<Name>,
    },
    Stat {
        fid: Fid,
    },
    /// Opens the node `fid` for I/O and returns a new, open handle; `fid` stays a node
    /// handle. Regular files and directories only.
    Open {
        fid: Fid,
        flags: u32,
    },
    /// `pread(2)` on an open handle; `len` is at most [`max_read`].
    Read {
        fid: Fid,
        offset: u64,
        len: u32,
    },
    /// `pwrite(2)` on an open handle; at most [`max_write`] bytes.
    Write {
        fid: Fid,
        offset: u64,
        data: Vec<u8>,
    },
    /// Creates and opens a regular file (`O_CREAT | O_EXCL`), owned by `uid:gid`, with
    /// exactly `mode` (the gofer's umask does not apply; the Sentry applies the guest's).
    Create {
        dir: Fid,
        name: Name,
        flags: u32,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    Mkdir {
        dir: Fid,
        name: Name,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    /// `mode` carries the file type; only `S_IFIFO` is served (others: `EPERM`).
    Mknod {
        dir: Fid,
        name: Name,
        mode: u32,
        rdev: u64,
        uid: u32,
        gid: u32,
    },
    Symlink {
        dir: Fid,
        name: Name,
        target: Vec<u8>,
        uid: u32,
        gid: u32,
    },
    /// Hard link: `dir/name` becomes another name of the node `target`.
    Link {
        dir: Fid,
        name: Name,
        target: Fid,
    },
    /// `flags` is 0 or [`AT_REMOVEDIR`].
    Unlink {
        dir: Fid,
        name: Name,
        flags: u32,
    },
    /// `flags` is 0, [`RENAME_NOREPLACE`] or [`RENAME_EXCHANGE`].
    Rename {
        old_dir: Fid,
        old_name: Name,
        new_dir: Fid,
        new_name: Name,
        flags: u32,
    },
    Readlink {
        fid: Fid,
    },
    /// Reads entries of an open directory starting at `cookie` (0: the start), at most
    /// `max` encoded bytes.
    Getdents {
        fid: Fid,
        cookie: u64,
        max: u32,
    },
    SetAttr {
        fid: Fid,
        attr: SetAttr,
    },
    StatFs {
        fid: Fid,
    },
    /// `flags` is 0 or [`FSYNC_DATASYNC`].
    Fsync {
        fid: Fid,
        flags: u32,
    },
    Close {
        fid: Fid,
    },
    Shutdown,
}

/// A successful response. Its shape is fixed by the request's opcode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// To `Version`.
    Version {
        version: u32,
        /// The ring's data slot size: the largest request or response payload.
        max_payload: u32,
        root: FidAttr,
    },
    /// To `Walk`: the components walked, in order. Fewer than requested when the walk
    /// stopped: after a symlink or a non-directory (`error` is `None`; the Sentry resolves
    /// the symlink or reports `ENOTDIR` itself), or at a component that could not be walked
    /// (`error` is its errno, e.g. `ENOENT`; `nodes` are those before it).
    Walk {
        nodes: Vec<FidAttr>,
        error: Option<Errno>,
    },
    /// To `Stat` and `SetAttr` (the attributes after the change).
    Attr(Attr),
    /// To `Open`: the new open handle.
    Opened(Fid),
    /// To `Read` (at most the bytes asked; fewer only at end of file) and `Readlink`.
    Data(Vec<u8>),
    /// To `Write`: bytes written.
    Written(u64),
    /// To `Create`.
    Created(Created),
    /// To `Mkdir`, `Mknod`, `Symlink` and `Link`: a node handle for the new name.
    Node(FidAttr),
    /// To `Getdents`: no entries means the end of the directory. `.` and `..` are never
    /// included (the Sentry makes its own).
    Dirents(Vec<Dirent>),
    StatFs(StatFs),
    /// To `Unlink`, `Rename`, `Fsync`, `Close` and `Shutdown`.
    Empty,
}

/// Why a payload could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("unknown opcode {0}")]
    UnknownOpcode(u32),
    #[error("{0}: payload too short")]
    Truncated(&'static str),
    #[error("{0}: {1} bytes left over after the message")]
    Trailing(&'static str, usize),
    #[error("{0}: reserved field not zero")]
    Reserved(&'static str),
    #[error("{what}: {error}")]
    Name {
        what: &'static str,
        error: NameError,
    },
    #[error("{what}: {errno}")]
    Invalid { what: &'static str, errno: Errno },
}

impl DecodeError {
    /// The errno the server answers: `ENOSYS` for an unknown opcode, the name's or field's
    /// own errno, `EINVAL` for anything malformed.
    pub fn errno(&self) -> Errno {
        match self {
            DecodeError::UnknownOpcode(_) => Errno::ENOSYS,
            DecodeError::Name { error, .. } => error.errno(),
            DecodeError::Invalid { errno, .. } => *errno,
            _ => Errno::EINVAL,
        }
    }
}

fn invalid(what: &'static str, errno: Errno) -> DecodeError {
    DecodeError::Invalid { what, errno }
}

/// Converts a response status to a result: 0 is success, `1..=4095` an errno, anything else
/// a protocol violation (`Err(None)`).
pub fn status_to_result(status: u32) -> Result<(), Option<Errno>> {
    match status {
        0 => Ok(()),
        1..=4095 => Err(Some(Errno::from_raw(status as i32))),
        _ => Err(None),
    }
}

/// The status that carries `errno`.
pub fn errno_status(errno: Errno) -> u32 {
    // Errno values are small positive numbers; UnknownErrno (0) becomes EIO so that a
    // failure is never reported as success.
    match errno as i32 {
        e @ 1..=4095 => e as u32,
        _ => Errno::EIO as u32,
    }
}

// ---- Wire headers (private: the typed enums above are the interface). ----

#[derive(Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct VersionReq {
    version: u32,
    reserved: u32,
}

#[derive(Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct VersionRsp {
    version: u32,
    max_payload: u32,
    root: FidAttr,
}

#[derive(Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct FidReq {
    fid: Fid,
}

/// Followed by `count` names, each a length byte and the name.
#[derive(Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct WalkReq {
    dir: Fid,
    count: u32,
    reserved: u32,
}

/// Followed by `count` [`FidAttr`]s.
#[derive(Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct WalkRsp {
    count: u32,
    /// Errno of the component that stopped the walk, or 0.
    error: u32,
}

#[derive(Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct OpenReq {
    fid: Fid,
    flags: u32,
    reserved: u32,
}

#[derive(Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct ReadReq {
    fid: Fid,
    offset: u64,
    len: u32,
    reserved: u32,
}

/// Followed by the data.
#[derive(Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct WriteReq {
    fid: Fid,
    offset: u64,
}

#[derive(Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct WriteRsp {
    count: u64,
}

/// Followed by the name.
#[derive(Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct CreateReq {
    dir: Fid,
    flags: u32,
    mode: u32,
    uid: u32,
    gid: u32,
}

/// Followed by the name. Serves `Mkdir` (`rdev` zero) and `Mknod`.
#[derive(Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct MknodReq {
    dir: Fid,
    mode: u32,
    uid: u32,
    gid: u32,
    reserved: u32,
    rdev: u64,
}

/// Followed by the name (`name_len` bytes), then the target.
#[derive(Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct SymlinkReq {
    dir: Fid,
    uid: u32,
    gid: u32,
    name_len: u32,
    reserved: u32,
}

/// Followed by the name.
#[derive(Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct LinkReq {
    dir: Fid,
    target: Fid,
}

/// Followed by the name.
#[derive(Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct UnlinkReq {
    dir: Fid,
    flags: u32,
    reserved: u32,
}

/// Followed by the old name (`old_name_len` bytes), then the new name.
#[derive(Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct RenameReq {
    old_dir: Fid,
    new_dir: Fid,
    flags: u32,
    old_name_len: u32,
}

#[derive(Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct GetdentsReq {
    fid: Fid,
    cookie: u64,
    max: u32,
    reserved: u32,
}

/// Followed by `count` entries, each a [`DirentHdr`] and the name.
#[derive(Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct GetdentsRsp {
    count: u32,
    reserved: u32,
}

#[derive(Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct DirentHdr {
    ino: u64,
    next_cookie: u64,
    kind: u8,
    name_len: u8,
    reserved: [u8; 6],
}

#[derive(Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct SetAttrReq {
    fid: Fid,
    attr: SetAttr,
}

#[derive(Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct FsyncReq {
    fid: Fid,
    flags: u32,
    reserved: u32,
}

// ---- Size limits, for both ends. ----

/// Most bytes one `Read` may ask for with data slots of `max_payload` bytes.
pub fn max_read(max_payload: u32) -> u32 {
    max_payload
}

/// Most bytes one `Write` may carry.
pub fn max_write(max_payload: u32) -> u32 {
    max_payload.saturating_sub(size_of::<WriteReq>() as u32)
}

/// Most names one `Walk` may carry: its response must fit a data slot.
pub fn max_walk(max_payload: u32) -> usize {
    (max_payload as usize).saturating_sub(size_of::<WalkRsp>()) / size_of::<FidAttr>()
}

/// Bytes one `Walk` request for `names` takes.
pub fn walk_request_size<N: AsRef<[u8]>>(names: &[N]) -> usize {
    size_of::<WalkReq>() + names.iter().map(|n| 1 + n.as_ref().len()).sum::<usize>()
}

/// Most bytes of entries one `Getdents` response may carry.
pub fn max_dirents(max_payload: u32) -> u32 {
    max_payload.saturating_sub(size_of::<GetdentsRsp>() as u32)
}

/// Bytes a directory entry with a name of `name_len` bytes takes in a `Getdents` response.
pub fn dirent_size(name_len: usize) -> usize {
    size_of::<DirentHdr>() + name_len
}

// ---- Encoding. ----

fn put<T: IntoBytes + Immutable>(out: &mut Vec<u8>, value: &T) {
    out.extend_from_slice(value.as_bytes());
}

/// A name's length as it travels; names are at most 255 bytes (checked by [`Name::new`]).
fn name_len(name: &Name) -> u8 {
    name.0.len() as u8
}

impl Request {
    pub fn opcode(&self) -> Opcode {
        match self {
            Request::Version { .. } => Opcode::Version,
            Request::Walk { .. } => Opcode::Walk,
            Request::Stat { .. } => Opcode::Stat,
            Request::Open { .. } => Opcode::Open,
            Request::Read { .. } => Opcode::Read,
            Request::Write { .. } => Opcode::Write,
            Request::Create { .. } => Opcode::Create,
            Request::Mkdir { .. } => Opcode::Mkdir,
            Request::Mknod { .. } => Opcode::Mknod,
            Request::Symlink { .. } => Opcode::Symlink,
            Request::Link { .. } => Opcode::Link,
            Request::Unlink { .. } => Opcode::Unlink,
            Request::Rename { .. } => Opcode::Rename,
            Request::Readlink { .. } => Opcode::Readlink,
            Request::Getdents { .. } => Opcode::Getdents,
            Request::SetAttr { .. } => Opcode::SetAttr,
            Request::StatFs { .. } => Opcode::StatFs,
            Request::Fsync { .. } => Opcode::Fsync,
            Request::Close { .. } => Opcode::Close,
            Request::Shutdown => Opcode::Shutdown,
        }
    }

    /// Appends the payload to `out`. Encodes whatever the fields hold (a test may build a
    /// request the server must refuse); [`Request::decode`] is where checks happen.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Request::Version { version } => put(
                out,
                &VersionReq {
                    version: *version,
                    reserved: 0,
                },
            ),
            Request::Walk { dir, names } => {
                put(
                    out,
                    &WalkReq {
                        dir: *dir,
                        count: names.len() as u32,
                        reserved: 0,
                    },
                );
                for name in names {
                    out.push(name_len(name));
                    out.extend_from_slice(name.as_bytes());
                }
            }
            Request::Stat { fid }
            | Request::Readlink { fid }
            | Request::StatFs { fid }
            | Request::Close { fid } => put(out, &FidReq { fid: *fid }),
            Request::Open { fid, flags } => put(
                out,
                &OpenReq {
                    fid: *fid,
                    flags: *flags,
                    reserved: 0,
                },
            ),
            Request::Read { fid, offset, len } => put(
                out,
                &ReadReq {
                    fid: *fid,
                    offset: *offset,
                    len: *len,
                    reserved: 0,
                },
            ),
            Request::Write { fid, offset, data } => {
                put(
                    out,
                    &WriteReq {
                        fid: *fid,
                        offset: *offset,
                    },
                );
                out.extend_from_slice(data);
            }
            Request::Create {
                dir,
                name,
                flags,
                mode,
                uid,
                gid,
            } => {
                put(
                    out,
                    &CreateReq {
                        dir: *dir,
                        flags: *flags,
                        mode: *mode,
                        uid: *uid,
                        gid: *gid,
                    },
                );
                out.extend_from_slice(name.as_bytes());
            }
            Request::Mkdir {
                dir,
                name,
                mode,
                uid,
                gid,
            } => {
                put(
                    out,
                    &MknodReq {
                        dir: *dir,
                        mode: *mode,
                        uid: *uid,
                        gid: *gid,
                        reserved: 0,
                        rdev: 0,
                    },
                );
                out.extend_from_slice(name.as_bytes());
            }
            Request::Mknod {
                dir,
                name,
                mode,
                rdev,
                uid,
                gid,
            } => {
                put(
                    out,
                    &MknodReq {
                        dir: *dir,
                        mode: *mode,
                        uid: *uid,
                        gid: *gid,
                        reserved: 0,
                        rdev: *rdev,
                    },
                );
                out.extend_from_slice(name.as_bytes());
            }
            Request::Symlink {
                dir,
                name,
                target,
                uid,
                gid,
            } => {
                put(
                    out,
                    &SymlinkReq {
                        dir: *dir,
                        uid: *uid,
                        gid: *gid,
                        name_len: name.0.len() as u32,
                        reserved: 0,
                    },
                );
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(target);
            }
            Request::Link { dir, name, target } => {
                put(
                    out,
                    &LinkReq {
                        dir: *dir,
                        target: *target,
                    },
                );
                out.extend_from_slice(name.as_bytes());
            }
            Request::Unlink { dir, name, flags } => {
                put(
                    out,
                    &UnlinkReq {
                        dir: *dir,
                        flags: *flags,
                        reserved: 0,
                    },
                );
                out.extend_from_slice(name.as_bytes());
            }
            Request::Rename {
                old_dir,
                old_name,
                new_dir,
                new_name,
                flags,
            } => {
                put(
                    out,
                    &RenameReq {
                        old_dir: *old_dir,
                        new_dir: *new_dir,
                        flags: *flags,
                        old_name_len: old_name.0.len() as u32,
                    },
                );
                out.extend_from_slice(old_name.as_bytes());
                out.extend_from_slice(new_name.as_bytes());
            }
            Request::Getdents { fid, cookie, max } => put(
                out,
                &GetdentsReq {
                    fid: *fid,
                    cookie: *cookie,
                    max: *max,
                    reserved: 0,
                },
            ),
            Request::SetAttr { fid, attr } => put(
                out,
                &SetAttrReq {
                    fid: *fid,
                    attr: *attr,
                },
            ),
            Request::Fsync { fid, flags } => put(
                out,
                &FsyncReq {
                    fid: *fid,
                    flags: *flags,
                    reserved: 0,
                },
            ),
            Request::Shutdown => {}
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Decodes and checks a request payload. Checks that need the server's state (fids,
    /// sizes against the ring) are the server's.
    pub fn decode(opcode: u32, payload: &[u8]) -> Result<Request, DecodeError> {
        let op = Opcode::from_u32(opcode).ok_or(DecodeError::UnknownOpcode(opcode))?;
        let what = op.name();
        let mut r = Reader::new(payload, what);
        let request = match op {
            Opcode::Version => {
                let h: VersionReq = r.header()?;
                reserved_zero(what, h.reserved)?;
                Request::Version { version: h.version }
            }
            Opcode::Walk => {
                let h: WalkReq = r.header()?;
                reserved_zero(what, h.reserved)?;
                // Each name takes at least two bytes: do not trust `count` for the allocation.
                let mut names = Vec::with_capacity((h.count as usize).min(r.remaining() / 2));
                for _ in 0..h.count {
                    let len = r.bytes(1)?[0];
                    names.push(r.name(len as usize)?);
                }
                Request::Walk { dir: h.dir, names }
            }
            Opcode::Stat => Request::Stat {
                fid: r.header::<FidReq>()?.fid,
            },
            Opcode::Readlink => Request::Readlink {
                fid: r.header::<FidReq>()?.fid,
            },
            Opcode::StatFs => Request::StatFs {
                fid: r.header::<FidReq>()?.fid,
            },
            Opcode::Close => Request::Close {
                fid: r.header::<FidReq>()?.fid,
            },
            Opcode::Open => {
                let h: OpenReq = r.header()?;
                reserved_zero(what, h.reserved)?;
                check_open_flags(what, h.flags, OPEN_FLAGS)?;
                Request::Open {
                    fid: h.fid,
                    flags: h.flags,
                }
            }
            Opcode::Read => {
                let h: ReadReq = r.header()?;
                reserved_zero(what, h.reserved)?;
                check_offset(what, h.offset)?;
                Request::Read {
                    fid: h.fid,
                    offset: h.offset,
                    len: h.len,
                }
            }
            Opcode::Write => {
                let h: WriteReq = r.header()?;
                check_offset(what, h.offset)?;
                Request::Write {
                    fid: h.fid,
                    offset: h.offset,
                    data: r.rest().to_vec(),
                }
            }
            Opcode::Create => {
                let h: CreateReq = r.header()?;
                check_open_flags(what, h.flags, CREATE_FLAGS)?;
                check_permissions(what, h.mode)?;
                check_owner(what, h.uid, h.gid)?;
                Request::Create {
                    dir: h.dir,
                    name: r.name(r.remaining())?,
                    flags: h.flags,
                    mode: h.mode,
                    uid: h.uid,
                    gid: h.gid,
                }
            }
            Opcode::Mkdir => {
                let h: MknodReq = r.header()?;
                reserved_zero(what, h.reserved)?;
                reserved_zero(what, h.rdev)?;
                check_permissions(what, h.mode)?;
                check_owner(what, h.uid, h.gid)?;
                Request::Mkdir {
                    dir: h.dir,
                    name: r.name(r.remaining())?,
                    mode: h.mode,
                    uid: h.uid,
                    gid: h.gid,
                }
            }
            Opcode::Mknod => {
                let h: MknodReq = r.header()?;
                reserved_zero(what, h.reserved)?;
                check_permissions(what, h.mode & !libc::S_IFMT)?;
                check_owner(what, h.uid, h.gid)?;
                Request::Mknod {
                    dir: h.dir,
                    name: r.name(r.remaining())?,
                    mode: h.mode,
                    rdev: h.rdev,
                    uid: h.uid,
                    gid: h.gid,
                }
            }
            Opcode::Symlink => {
                let h: SymlinkReq = r.header()?;
                reserved_zero(what, h.reserved)?;
                check_owner(what, h.uid, h.gid)?;
                let name = r.name(h.name_len as usize)?;
                let target = r.rest();
                check_symlink_target(target).map_err(|errno| invalid("symlink target", errno))?;
                Request::Symlink {
                    dir: h.dir,
                    name,
                    target: target.to_vec(),
                    uid: h.uid,
                    gid: h.gid,
                }
            }
            Opcode::Link => {
                let h: LinkReq = r.header()?;
                Request::Link {
                    dir: h.dir,
                    name: r.name(r.remaining())?,
                    target: h.target,
                }
            }
            Opcode::Unlink => {
                let h: UnlinkReq = r.header()?;
                reserved_zero(what, h.reserved)?;
                if h.flags & !AT_REMOVEDIR != 0 {
                    return Err(invalid("unlink flags", Errno::EINVAL));
                }
                Request::Unlink {
                    dir: h.dir,
                    name: r.name(r.remaining())?,
                    flags: h.flags,
                }
            }
            Opcode::Rename => {
                let h: RenameReq = r.header()?;
                // As renameat2(2): unknown flags, or NOREPLACE with EXCHANGE, are EINVAL.
                // RENAME_WHITEOUT is for overlay file systems; the Sentry has its own overlay.
                let known = RENAME_NOREPLACE | RENAME_EXCHANGE;
                if h.flags & !known != 0 || h.flags == known {
                    return Err(invalid("rename flags", Errno::EINVAL));
                }
                let old_name = r.name(h.old_name_len as usize)?;
                Request::Rename {
                    old_dir: h.old_dir,
                    old_name,
                    new_dir: h.new_dir,
                    new_name: r.name(r.remaining())?,
                    flags: h.flags,
                }
            }
            Opcode::Getdents => {
                let h: GetdentsReq = r.header()?;
                reserved_zero(what, h.reserved)?;
                check_offset(what, h.cookie)?;
                Request::Getdents {
                    fid: h.fid,
                    cookie: h.cookie,
                    max: h.max,
                }
            }
            Opcode::SetAttr => {
                let h: SetAttrReq = r.header()?;
                check_setattr(&h.attr)?;
                Request::SetAttr {
                    fid: h.fid,
                    attr: h.attr,
                }
            }
            Opcode::Fsync => {
                let h: FsyncReq = r.header()?;
                reserved_zero(what, h.reserved)?;
                if h.flags & !FSYNC_DATASYNC != 0 {
                    return Err(invalid("fsync flags", Errno::EINVAL));
                }
                Request::Fsync {
                    fid: h.fid,
                    flags: h.flags,
                }
            }
            Opcode::Shutdown => Request::Shutdown,
        };
        r.finish()?;
        Ok(request)
    }
}

impl Opcode {
    pub fn name(self) -> &'static str {
        match self {
            Opcode::Version => "version",
            Opcode::Walk => "walk",
            Opcode::Stat => "stat",
            Opcode::Open => "open",
            Opcode::Read => "read",
            Opcode::Write => "write",
            Opcode::Create => "create",
            Opcode::Mkdir => "mkdir",
            Opcode::Mknod => "mknod",
            Opcode::Symlink => "symlink",
            Opcode::Link => "link",
            Opcode::Unlink => "unlink",
            Opcode::Rename => "rename",
            Opcode::Readlink => "readlink",
            Opcode::Getdents => "getdents",
            Opcode::SetAttr => "setattr",
            Opcode::StatFs => "statfs",
            Opcode::Fsync => "fsync",
            Opcode::Close => "close",
            Opcode::Shutdown => "shutdown",
        }
    }
}

fn reserved_zero<T: Default + PartialEq>(what: &'static str, value: T) -> Result<(), DecodeError> {
    if value == T::default() {
        Ok(())
    } else {
        Err(DecodeError::Reserved(what))
    }
}

/// File offsets are `off_t`: a value past `i64::MAX` is `EINVAL`, as `pread(2)` with a
/// negative offset.
fn check_offset(what: &'static str, offset: u64) -> Result<(), DecodeError> {
    if offset > i64::MAX as u64 {
        return Err(invalid(what, Errno::EINVAL));
    }
    Ok(())
}

fn check_open_flags(what: &'static str, flags: u32, allowed: u32) -> Result<(), DecodeError> {
    // Access mode 3 is Linux's "no access" mode, which only ioctl users want.
    if flags & !allowed != 0 || flags & libc::O_ACCMODE as u32 == libc::O_ACCMODE as u32 {
        return Err(invalid(what, Errno::EINVAL));
    }
    Ok(())
}

fn check_permissions(what: &'static str, mode: u32) -> Result<(), DecodeError> {
    if mode & !0o7777 != 0 {
        return Err(invalid(what, Errno::EINVAL));
    }
    Ok(())
}

/// `u32::MAX` means "unchanged" to `chown(2)`; it is no owner to create a file with.
fn check_owner(what: &'static str, uid: u32, gid: u32) -> Result<(), DecodeError> {
    if uid == u32::MAX || gid == u32::MAX {
        return Err(invalid(what, Errno::EINVAL));
    }
    Ok(())
}

fn check_setattr(attr: &SetAttr) -> Result<(), DecodeError> {
    let what = "setattr";
    if attr.mask & !setattr::ALL != 0 {
        return Err(invalid(what, Errno::EINVAL));
    }
    if attr.mask & setattr::MODE != 0 {
        check_permissions(what, attr.mode)?;
    }
    if (attr.mask & setattr::UID != 0 && attr.uid == u32::MAX)
        || (attr.mask & setattr::GID != 0 && attr.gid == u32::MAX)
    {
        return Err(invalid(what, Errno::EINVAL));
    }
    if attr.mask & setattr::SIZE != 0 {
        check_offset(what, attr.size)?;
    }
    let times = [(setattr::ATIME, &attr.atime), (setattr::MTIME, &attr.mtime)];
    for (bit, time) in times {
        if attr.mask & bit != 0 && !time.is_valid_for_utimensat() {
            return Err(invalid(what, Errno::EINVAL));
        }
    }
    Ok(())
}

impl Response {
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Response::Version {
                version,
                max_payload,
                root,
            } => put(
                out,
                &VersionRsp {
                    version: *version,
                    max_payload: *max_payload,
                    root: *root,
                },
            ),
            Response::Walk { nodes, error } => {
                put(
                    out,
                    &WalkRsp {
                        count: nodes.len() as u32,
                        error: error.map_or(0, errno_status),
                    },
                );
                for node in nodes {
                    put(out, node);
                }
            }
            Response::Attr(attr) => put(out, attr),
            Response::Opened(fid) => put(out, fid),
            Response::Data(data) => out.extend_from_slice(data),
            Response::Written(count) => put(out, &WriteRsp { count: *count }),
            Response::Created(created) => put(out, created),
            Response::Node(node) => put(out, node),
            Response::Dirents(entries) => {
                put(
                    out,
                    &GetdentsRsp {
                        count: entries.len() as u32,
                        reserved: 0,
                    },
                );
                for entry in entries {
                    put(
                        out,
                        &DirentHdr {
                            ino: entry.ino,
                            next_cookie: entry.next_cookie,
                            kind: entry.kind,
                            name_len: name_len(&entry.name),
                            reserved: [0; 6],
                        },
                    );
                    out.extend_from_slice(entry.name.as_bytes());
                }
            }
            Response::StatFs(statfs) => put(out, statfs),
            Response::Empty => {}
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// The data of a successful `Read` response, borrowed where [`Response::decode`] copies
    /// it into [`Response::Data`]: the client copies a large read once, from the ring to its
    /// destination.
    pub fn read_data(payload: &[u8]) -> &[u8] {
        // A Read response is its data, with nothing before or after (see `encode`).
        payload
    }

    /// Decodes the payload of a successful response to a request of opcode `op`. Checks
    /// the shape only; the client checks it against what it asked (counts, lengths).
    pub fn decode(op: Opcode, payload: &[u8]) -> Result<Response, DecodeError> {
        let what = op.name();
        let mut r = Reader::new(payload, what);
        let response = match op {
            Opcode::Version => {
                let h: VersionRsp = r.header()?;
                Response::Version {
                    version: h.version,
                    max_payload: h.max_payload,
                    root: h.root,
                }
            }
            Opcode::Walk => {
                let h: WalkRsp = r.header()?;
                let error = match h.error {
                    0 => None,
                    status => match status_to_result(status) {
                        Err(Some(errno)) => Some(errno),
                        _ => return Err(invalid("walk error", Errno::EINVAL)),
                    },
                };
                let count = h.count as usize;
                if r.remaining() != count.saturating_mul(size_of::<FidAttr>()) {
                    return Err(DecodeError::Truncated(what));
                }
                let mut nodes = Vec::with_capacity(count);
                for _ in 0..count {
                    nodes.push(r.header::<FidAttr>()?);
                }
                Response::Walk { nodes, error }
            }
            Opcode::Stat | Opcode::SetAttr => Response::Attr(r.header()?),
            Opcode::Open => Response::Opened(r.header()?),
            Opcode::Read | Opcode::Readlink => Response::Data(r.rest().to_vec()),
            Opcode::Write => Response::Written(r.header::<WriteRsp>()?.count),
            Opcode::Create => Response::Created(r.header()?),
            Opcode::Mkdir | Opcode::Mknod | Opcode::Symlink | Opcode::Link => {
                Response::Node(r.header()?)
            }
            Opcode::Getdents => {
                let h: GetdentsRsp = r.header()?;
                reserved_zero(what, h.reserved)?;
                let mut entries = Vec::with_capacity(
                    (h.count as usize).min(r.remaining() / size_of::<DirentHdr>()),
                );
                for _ in 0..h.count {
                    let d: DirentHdr = r.header()?;
                    reserved_zero(what, d.reserved)?;
                    entries.push(Dirent {
                        ino: d.ino,
                        kind: d.kind,
                        name: r.name(d.name_len as usize)?,
                        next_cookie: d.next_cookie,
                    });
                }
                Response::Dirents(entries)
            }
            Opcode::StatFs => Response::StatFs(r.header()?),
            Opcode::Unlink | Opcode::Rename | Opcode::Fsync | Opcode::Close | Opcode::Shutdown => {
                Response::Empty
            }
        };
        r.finish()?;
        Ok(response)
    }
}

/// A cursor over a payload that fails, never panics, when the payload is short.
struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], what: &'static str) -> Self {
        Reader { buf, what }
    }

    fn remaining(&self) -> usize {
        self.buf.len()
    }

    fn header<T: FromBytes>(&mut self) -> Result<T, DecodeError> {
        let (value, rest) =
            T::read_from_prefix(self.buf).map_err(|_| DecodeError::Truncated(self.what))?;
        self.buf = rest;
        Ok(value)
    }

    fn bytes(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        if len > self.buf.len() {
            return Err(DecodeError::Truncated(self.what));
        }
        let (bytes, rest) = self.buf.split_at(len);
        self.buf = rest;
        Ok(bytes)
    }

    fn name(&mut self, len: usize) -> Result<Name, DecodeError> {
        let what = self.what;
        Name::new(self.bytes(len)?).map_err(|error| DecodeError::Name { what, error })
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    fn finish(self) -> Result<(), DecodeError> {
        match self.buf.len() {
            0 => Ok(()),
            n => Err(DecodeError::Trailing(self.what, n)),
        }
    }
}
