//! Host system calls as the file server uses them: always relative to a directory
//! descriptor, one checked name at a time, never following a symlink.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;
use nix::fcntl::{openat, openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstat, fstatat, FileStat, Mode};

use crate::proto::{Attr, Name, StatFs, Timespec};

/// A host inode: what a reopened file is checked against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct FileId {
    pub dev: u64,
    pub ino: u64,
}

impl FileId {
    pub fn of(stat: &FileStat) -> FileId {
        FileId {
            dev: stat.st_dev,
            ino: stat.st_ino,
        }
    }
}

/// Opens `name` in `dir` for the file server. `O_NOFOLLOW | O_CLOEXEC` (and `O_NOCTTY` unless
/// `O_PATH`) are always added. With `openat2`, `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS`
/// makes the kernel refuse any way out of `dir`; on a kernel without `openat2` (before 5.6,
/// or filtered: `ENOSYS`) plain `openat` with `O_NOFOLLOW` is equivalent, because a checked
/// name is a single component that is neither `.` nor `..`. With `O_PATH`, a symlink (even
/// a magic one) is opened itself, as `open(2)` documents for `O_PATH | O_NOFOLLOW`; without
/// it, a symlink fails with `ELOOP`.
pub(super) fn open_beneath(
    dir: BorrowedFd<'_>,
    name: &Name,
    flags: OFlag,
    mode: Mode,
    use_openat2: &AtomicBool,
) -> Result<OwnedFd, Errno> {
    let mut flags = flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    // openat2 is strict where openat ignores: with O_PATH only O_CLOEXEC, O_DIRECTORY and
    // O_NOFOLLOW may be given (EINVAL otherwise).
    if !flags.contains(OFlag::O_PATH) {
        flags |= OFlag::O_NOCTTY;
    }
    // Relaxed: a stale `true` only costs one more ENOSYS.
    if use_openat2.load(Ordering::Relaxed) {
        let mut how = OpenHow::new().flags(flags).resolve(
            ResolveFlag::RESOLVE_BENEATH
                | ResolveFlag::RESOLVE_NO_MAGICLINKS
                | ResolveFlag::RESOLVE_NO_SYMLINKS,
        );
        // openat2 refuses a mode without O_CREAT (EINVAL), unlike openat.
        if flags.contains(OFlag::O_CREAT) {
            how = how.mode(mode);
        }
        match openat2(dir, name.as_bytes(), how) {
            Err(Errno::ENOSYS) => use_openat2.store(false, Ordering::Relaxed),
            result => return result,
        }
    }
    openat(dir, name.as_bytes(), flags, mode)
}

/// Opens the directory `dir` itself again, for reading. `.` of a descriptor is that
/// directory whatever has been renamed since, so no name is involved.
pub(super) fn reopen_dir(dir: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    openat(
        dir,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// The attributes of whatever `fd` refers to (an `O_PATH` descriptor of a symlink gives the
/// symlink's: `fstat(2)` works on `O_PATH` descriptors since Linux 3.6).
pub(super) fn stat_fd(fd: BorrowedFd<'_>) -> Result<(FileId, Attr), Errno> {
    let st = fstat(fd)?;
    Ok((FileId::of(&st), attr_of(&st)))
}

/// The inode `name` in `dir` names now, without following a symlink.
pub(super) fn id_at(dir: BorrowedFd<'_>, name: &Name) -> Result<FileId, Errno> {
    let st = fstatat(
        dir,
        name.as_bytes(),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )?;
    Ok(FileId::of(&st))
}

/// Checks that `fd` (just opened by name) is still the inode `want`; `ESTALE` if the name
/// now names another file, as NFS reports a handle whose file went away.
pub(super) fn check_same(fd: &OwnedFd, want: FileId) -> Result<(), Errno> {
    let (id, _) = stat_fd(fd.as_fd())?;
    if id == want {
        Ok(())
    } else {
        Err(Errno::ESTALE)
    }
}

fn clamp_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

pub(super) fn attr_of(st: &FileStat) -> Attr {
    Attr {
        ino: st.st_ino,
        dev: st.st_dev,
        mode: st.st_mode,
        nlink: u32::try_from(st.st_nlink).unwrap_or(u32::MAX),
        uid: st.st_uid,
        gid: st.st_gid,
        rdev: st.st_rdev,
        size: clamp_u64(st.st_size),
        blksize: clamp_u64(st.st_blksize),
        blocks: clamp_u64(st.st_blocks),
        atime: Timespec {
            sec: st.st_atime,
            nsec: st.st_atime_nsec,
        },
        mtime: Timespec {
            sec: st.st_mtime,
            nsec: st.st_mtime_nsec,
        },
        ctime: Timespec {
            sec: st.st_ctime,
            nsec: st.st_ctime_nsec,
        },
    }
}

pub(super) fn statfs_fd(fd: BorrowedFd<'_>) -> Result<StatFs, Errno> {
    let st = nix::sys::statfs::fstatfs(fd)?;
    Ok(StatFs {
        fs_type: st.filesystem_type().0 as u64,
        block_size: st.block_size() as u64,
        blocks: st.blocks(),
        blocks_free: st.blocks_free(),
        blocks_available: st.blocks_available(),
        files: st.files(),
        files_free: st.files_free(),
        name_max: st.maximum_name_length() as u64,
        flags: st.flags().bits() as u64,
    })
}

pub(super) fn timespec(t: &Timespec) -> nix::sys::time::TimeSpec {
    nix::sys::time::TimeSpec::new(t.sec, t.nsec)
}

/// Most descriptors [`grow_fd_table`] makes room for: 64 Ki take 512 KiB of kernel memory.
const MAX_PRESIZED_FDS: usize = 1 << 16;

/// Grows this process's descriptor table now to hold `fds` descriptors (as far as
/// `RLIMIT_NOFILE` and [`MAX_PRESIZED_FDS`] allow), by duplicating `fd` to the highest of
/// them and closing it again: the table never shrinks. Linux waits for an RCU grace period
/// each time the table of a process with several threads doubles (`expand_fdtable` in
/// fs/file.c); a server with a thread per ring would pay that for every doubling as the
/// client's fids pile up, ≈6 ms each here, which made every walk of a short run ~60 %
/// slower. Best effort: a table that cannot be grown now grows later.
pub(super) fn grow_fd_table(fd: BorrowedFd<'_>, fds: usize) {
    use nix::sys::resource::{getrlimit, Resource};
    let Ok((soft, _)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    let highest = fds
        .min(MAX_PRESIZED_FDS)
        .min(usize::try_from(soft).unwrap_or(usize::MAX))
        .saturating_sub(1);
    if let Ok(highest) = i32::try_from(highest) {
        // Dropped at once: only the table's size was wanted.
        let _ = rustix::io::fcntl_dupfd_cloexec(fd, highest);
    }
}

/// Converts an I/O error from a std or rustix call to an errno.
pub(super) fn errno_of_io(e: std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(Errno::EIO as i32))
}
