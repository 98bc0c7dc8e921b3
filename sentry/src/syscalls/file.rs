//! System calls on file descriptors: I/O, offsets, duplication, flags, stat, directory
//! listing.

use zerocopy::IntoBytes;

use crate::abi::*;
use crate::kernel::Task;
use crate::vfs::{OpenFile, SetAttr, O_CLOEXEC, O_LARGEFILE, O_PATH};

/// The most one read or write moves (Linux's MAX_RW_COUNT).
const MAX_RW_COUNT: u64 = 0x7fff_f000;
/// Data moves between the guest and a file in pieces of this size.
const CHUNK: usize = 1 << 20;
/// Most iovecs one call may take (UIO_MAXIOV).
const UIO_MAXIOV: u64 = 1024;

/// Where an I/O call reads or writes: the file offset, or an explicit one (pread/pwrite).
#[derive(Clone, Copy)]
enum At {
    Cursor,
    Offset(u64),
}

impl At {
    fn after(self, n: u64) -> At {
        match self {
            At::Cursor => At::Cursor,
            At::Offset(o) => At::Offset(o + n),
        }
    }
}

/// The open-file limit (RLIMIT_NOFILE) of the task's process.
pub(super) fn nofile_limit(t: &Task) -> u64 {
    t.tg.rlimits()[RLIMIT_NOFILE as usize].cur
}

/// Reads up to `count` bytes from `file` into guest memory at `addr`.
fn read_into(t: &Task, file: &OpenFile, addr: u64, count: u64, at: At) -> SysResult {
    let count = count.min(MAX_RW_COUNT);
    if count == 0 {
        return Ok(0);
    }
    let mut buf = vec![0u8; (count as usize).min(CHUNK)];
    // Check the destination first: data taken from a file must never be dropped.
    t.mm.check_access(addr, buf.len() as u64, true)?;
    let n = match at {
        At::Cursor => file.read(&mut buf)?,
        At::Offset(o) => file.pread(o, &mut buf)?,
    };
    t.mm.copy_out(addr, &buf[..n])?;
    Ok(n as u64)
}

/// Writes `count` bytes of guest memory at `addr` to `file`, in pieces. `done` is what an
/// earlier part of the same call (writev) already wrote: after the first byte an error only
/// ends the call early, as in Linux.
fn write_from(t: &Task, file: &OpenFile, addr: u64, count: u64, at: At, done: u64) -> SysResult {
    if !file.writable() {
        return Err(Errno::EBADF);
    }
    let mut buf = vec![0u8; (count as usize).min(CHUNK)];
    let mut written = 0u64;
    while written < count {
        let n = ((count - written) as usize).min(CHUNK);
        let partial = |e| {
            if written + done > 0 {
                Ok(written)
            } else {
                Err(e)
            }
        };
        if let Err(e) = t.mm.copy_in(addr + written, &mut buf[..n]) {
            return partial(e);
        }
        let result = match at.after(written) {
            At::Cursor => file.write(&buf[..n]),
            At::Offset(o) => file.pwrite(o, &buf[..n]),
        };
        match result {
            Ok(w) => {
                written += w as u64;
                if w < n {
                    break;
                }
            }
            Err(e) => return partial(e),
        }
    }
    Ok(written)
}

pub fn read(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let file = t.fds.get(a[0])?;
    read_into(t, &file, a[1], a[2], At::Cursor)
}

pub fn write(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let file = t.fds.get(a[0])?;
    write_from(t, &file, a[1], a[2].min(MAX_RW_COUNT), At::Cursor, 0)
}

fn offset_arg(offset: u64) -> Result<At, Errno> {
    if (offset as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    Ok(At::Offset(offset))
}

pub fn pread64(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let file = t.fds.get(a[0])?;
    read_into(t, &file, a[1], a[2], offset_arg(a[3])?)
}

pub fn pwrite64(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let file = t.fds.get(a[0])?;
    write_from(t, &file, a[1], a[2].min(MAX_RW_COUNT), offset_arg(a[3])?, 0)
}

/// Reads and checks an iovec array as Linux's import_iovec does: a length negative as an
/// ssize_t is EINVAL, lengths are cut so the total stays within MAX_RW_COUNT, and each
/// segment must lie below the top of the user address space (else EFAULT).
fn iovecs(t: &Task, addr: u64, count: u64) -> Result<Vec<Iovec>, Errno> {
    if count > UIO_MAXIOV {
        return Err(Errno::EINVAL);
    }
    let mut iovs = vec![Iovec::default(); count as usize];
    t.mm.copy_in(addr, iovs.as_mut_slice().as_mut_bytes())?;
    let mut total: u64 = 0;
    for iov in &mut iovs {
        if (iov.len as i64) < 0 {
            return Err(Errno::EINVAL);
        }
        iov.len = iov.len.min(MAX_RW_COUNT - total);
        if iov
            .base
            .checked_add(iov.len)
            .is_none_or(|end| end > TASK_SIZE_MAX)
        {
            return Err(Errno::EFAULT);
        }
        total += iov.len;
    }
    Ok(iovs)
}

fn readv_at(t: &Task, file: &OpenFile, iov_addr: u64, count: u64, at: At) -> SysResult {
    let iovs = iovecs(t, iov_addr, count)?;
    let total: u64 = iovs.iter().map(|v| v.len).sum();
    let mut buf = vec![0u8; (total as usize).min(CHUNK)];
    // As in read: check every destination byte before taking data from the file.
    let mut left = buf.len() as u64;
    for iov in &iovs {
        let n = iov.len.min(left);
        t.mm.check_access(iov.base, n, true)?;
        left -= n;
    }
    let n = match (buf.is_empty(), at) {
        (true, _) => 0,
        (false, At::Cursor) => file.read(&mut buf)?,
        (false, At::Offset(o)) => file.pread(o, &mut buf)?,
    };
    let mut done = 0;
    for iov in &iovs {
        let m = (iov.len as usize).min(n - done);
        t.mm.copy_out(iov.base, &buf[done..done + m])?;
        done += m;
    }
    Ok(n as u64)
}

fn writev_at(t: &Task, file: &OpenFile, iov_addr: u64, count: u64, at: At) -> SysResult {
    let iovs = iovecs(t, iov_addr, count)?;
    let mut done = 0u64;
    for iov in &iovs {
        let n = write_from(t, file, iov.base, iov.len, at.after(done), done)?;
        done += n;
        if n < iov.len {
            break;
        }
    }
    Ok(done)
}

pub fn readv(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let file = t.fds.get(a[0])?;
    readv_at(t, &file, a[1], a[2], At::Cursor)
}

pub fn writev(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let file = t.fds.get(a[0])?;
    writev_at(t, &file, a[1], a[2], At::Cursor)
}

pub fn preadv(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let file = t.fds.get(a[0])?;
    readv_at(t, &file, a[1], a[2], offset_arg(a[3])?)
}

pub fn pwritev(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let file = t.fds.get(a[0])?;
    writev_at(t, &file, a[1], a[2], offset_arg(a[3])?)
}

/// sendfile(2): copies up to `count` bytes from `in_fd` (at `*offset` if given, which is then
/// advanced, else at its file offset) to `out_fd`.
pub fn sendfile(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let [out_fd, in_fd, offset_ptr, count, ..] = *a;
    let input = t.fds.get(in_fd)?;
    let output = t.fds.get(out_fd)?;
    if !input.readable() || !output.writable() {
        return Err(Errno::EBADF);
    }
    let mut offset = if offset_ptr != 0 {
        let o: i64 = t.mm.read_obj(offset_ptr)?;
        Some(u64::try_from(o).map_err(|_| Errno::EINVAL)?)
    } else {
        None
    };
    let count = count.min(MAX_RW_COUNT);
    let mut buf = vec![0u8; (count as usize).min(CHUNK)];
    let mut done = 0u64;
    while done < count {
        let want = ((count - done) as usize).min(buf.len());
        let read = match offset {
            Some(o) => input.pread(o, &mut buf[..want]),
            None => input.read(&mut buf[..want]),
        };
        let n = match read {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        };
        let written = match output.write(&buf[..n]) {
            Ok(w) => w,
            Err(e) if done == 0 => return Err(e),
            Err(_) => 0,
        };
        done += written as u64;
        if let Some(o) = offset.as_mut() {
            *o += written as u64;
        }
        if written < n {
            break;
        }
    }
    if let (Some(o), true) = (offset, offset_ptr != 0) {
        t.mm.write_obj(offset_ptr, &(o as i64))?;
    }
    Ok(done)
}

pub fn lseek(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let file = t.fds.get(a[0])?;
    file.seek(a[1] as i64, a[2])
}

pub fn close(t: &mut Task, a: &[u64; 6]) -> SysResult {
    t.fds.close(a[0]).map(|()| 0)
}

const CLOSE_RANGE_UNSHARE: u64 = 1 << 1;
const CLOSE_RANGE_CLOEXEC: u64 = 1 << 2;

pub fn close_range(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let [first, last, flags, ..] = *a;
    let (first, last) = (first as u32, last as u32);
    if flags & !(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC) != 0 || first > last {
        return Err(Errno::EINVAL);
    }
    // With one thread per process the table is never shared, so UNSHARE changes nothing.
    t.fds
        .close_range(first, last, flags & CLOSE_RANGE_CLOEXEC != 0);
    Ok(0)
}

pub fn dup(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let file = t.fds.get(a[0])?;
    t.fds
        .install(file, false, 0, nofile_limit(t))
        .map(|fd| fd as u64)
}

pub fn dup2(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let file = t.fds.get(a[0])?;
    if a[0] as i32 == a[1] as i32 {
        return Ok(a[1] as i32 as u64);
    }
    t.fds.install_at(a[1], file, false, nofile_limit(t))?;
    Ok(a[1] as i32 as u64)
}

pub fn dup3(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let flags = a[2] as u32;
    if flags & !O_CLOEXEC != 0 || a[0] as i32 == a[1] as i32 {
        return Err(Errno::EINVAL);
    }
    let file = t.fds.get(a[0])?;
    t.fds
        .install_at(a[1], file, flags & O_CLOEXEC != 0, nofile_limit(t))?;
    Ok(a[1] as i32 as u64)
}

const F_DUPFD: u64 = 0;
const F_GETFD: u64 = 1;
const F_SETFD: u64 = 2;
const F_GETFL: u64 = 3;
const F_SETFL: u64 = 4;
const F_DUPFD_CLOEXEC: u64 = 1030;
const FD_CLOEXEC: u64 = 1;

pub fn fcntl(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let file = t.fds.get(a[0])?;
    let arg = a[2];
    match a[1] & 0xffff_ffff {
        F_DUPFD | F_DUPFD_CLOEXEC => {
            let min = i32::try_from(arg as i64)
                .ok()
                .filter(|&m| m >= 0)
                .ok_or(Errno::EINVAL)?;
            let limit = nofile_limit(t);
            if min as u64 >= limit {
                return Err(Errno::EINVAL);
            }
            let cloexec = a[1] & 0xffff_ffff == F_DUPFD_CLOEXEC;
            t.fds.install(file, cloexec, min, limit).map(|fd| fd as u64)
        }
        F_GETFD => Ok(t.fds.cloexec(a[0])? as u64),
        F_SETFD => t.fds.set_cloexec(a[0], arg & FD_CLOEXEC != 0).map(|()| 0),
        F_GETFL => Ok(file.flags() as u64),
        F_SETFL if file.flags() & O_PATH != 0 => Err(Errno::EBADF),
        F_SETFL => {
            file.set_flags(arg as u32);
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}

pub fn ioctl(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let file = t.fds.get(a[0])?;
    // The request is an unsigned int in Linux: the upper half of the register is ignored.
    let request = a[1] & 0xffff_ffff;
    match request {
        // Descriptor flags, valid on every file.
        FIOCLEX | FIONCLEX => return t.fds.set_cloexec(a[0], request == FIOCLEX).map(|()| 0),
        _ => {}
    }
    let host = file
        .inode
        .as_any()
        .downcast_ref::<crate::fs::host::HostFile>()
        .map(|h| h.stream.host_fd())
        .ok_or(Errno::ENOTTY)?;
    match request {
        TCGETS => {
            let tio: libc::termios = nix::sys::termios::tcgetattr(host)?.into();
            let mut out = Termios {
                iflag: tio.c_iflag,
                oflag: tio.c_oflag,
                cflag: tio.c_cflag,
                lflag: tio.c_lflag,
                line: tio.c_line,
                cc: [0; 19],
            };
            out.cc.copy_from_slice(&tio.c_cc[..19]);
            t.mm.write_obj(a[2], &out)?;
        }
        TIOCGWINSZ => {
            let ws = rustix::termios::tcgetwinsize(host)
                .map_err(|e| Errno::from_raw(e.raw_os_error()))?;
            let out = Winsize {
                row: ws.ws_row,
                col: ws.ws_col,
                xpixel: ws.ws_xpixel,
                ypixel: ws.ws_ypixel,
            };
            t.mm.write_obj(a[2], &out)?;
        }
        _ => return Err(Errno::ENOTTY),
    }
    Ok(0)
}

pub fn fstat(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let file = t.fds.get(a[0])?;
    t.mm.write_obj(a[1], &file.attr()?.to_stat())?;
    Ok(0)
}

pub fn ftruncate(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let file = t.fds.get(a[0])?;
    if (a[1] as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    if file.flags() & O_PATH != 0 {
        return Err(Errno::EBADF);
    }
    // ftruncate(2): EINVAL unless a regular file open for writing.
    let regular = file.attr()?.file_type() == Some(crate::vfs::FileType::Regular);
    if !file.writable() || !regular {
        return Err(Errno::EINVAL);
    }
    super::fs::check_writable_mount(file.location.as_ref())?;
    file.inode.set_attr(&SetAttr {
        size: Some(a[1]),
        ..SetAttr::default()
    })?;
    Ok(0)
}

pub fn fsync(t: &mut Task, a: &[u64; 6]) -> SysResult {
    // Sandbox memory needs no flushing; gofer-backed files will forward this.
    t.fds.get(a[0]).map(|_| 0)
}

/// `struct linux_dirent64` without its name: d_ino, d_off, d_reclen, d_type.
const DIRENT64_HEADER: usize = 19;
/// `struct linux_dirent` without its name: d_ino, d_off, d_reclen (d_type is the last byte).
const DIRENT_HEADER: usize = 18;

pub fn getdents64(t: &mut Task, a: &[u64; 6]) -> SysResult {
    getdents(t, a, true)
}

pub fn getdents_old(t: &mut Task, a: &[u64; 6]) -> SysResult {
    getdents(t, a, false)
}

/// getdents64 (or the old getdents, whose records keep d_type in their last byte).
fn getdents(t: &mut Task, a: &[u64; 6], dirent64: bool) -> SysResult {
    let file = t.fds.get(a[0])?;
    let (addr, size) = (a[1], (a[2] as u32) as usize);
    if file.flags() & O_PATH != 0 {
        return Err(Errno::EBADF);
    }
    if !file.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    let dir = file.attr()?;
    if dir.nlink == 0 {
        return Err(Errno::ENOENT); // Removed while open.
    }
    // The offset counts entries: 0 is ".", 1 is "..", then the file system's entries.
    let parent_ino = file
        .location
        .as_ref()
        .and_then(|l| l.dentry.parent.as_ref())
        .and_then(|p| p.inode.attr().ok())
        .map_or(dir.ino, |a| a.ino);
    let mut entries = vec![
        (b".".to_vec(), dir.ino, crate::vfs::FileType::Directory),
        (b"..".to_vec(), parent_ino, crate::vfs::FileType::Directory),
    ];
    entries.extend(
        file.inode
            .readdir()?
            .into_iter()
            .map(|e| (e.name, e.ino, e.file_type)),
    );
    let header = if dirent64 {
        DIRENT64_HEADER
    } else {
        DIRENT_HEADER
    };
    let mut out = Vec::new();
    let mut index = file.offset() as usize;
    while let Some((name, ino, ty)) = entries.get(index) {
        // The old format needs a byte more for d_type after the name's NUL.
        let reclen = (header + name.len() + 1 + usize::from(!dirent64)).next_multiple_of(8);
        if out.len() + reclen > size {
            break;
        }
        let start = out.len();
        out.extend_from_slice(&ino.to_ne_bytes());
        out.extend_from_slice(&((index + 1) as i64).to_ne_bytes());
        out.extend_from_slice(&(reclen as u16).to_ne_bytes());
        if dirent64 {
            out.push(ty.dirent_type());
        }
        out.extend_from_slice(name);
        out.resize(start + reclen, 0);
        if !dirent64 {
            out[start + reclen - 1] = ty.dirent_type();
        }
        index += 1;
    }
    if out.is_empty() && index < entries.len() {
        return Err(Errno::EINVAL); // Not even one entry fits.
    }
    t.mm.copy_out(addr, &out)?;
    file.set_offset(index as u64);
    Ok(out.len() as u64)
}

/// The flags an open file description keeps (F_GETFL): all the open flags but those that
/// only act at open time (do_dentry_open), with O_LARGEFILE forced as 64-bit Linux does.
pub(super) fn status_flags(flags: u32) -> u32 {
    use crate::vfs::{O_CREAT, O_EXCL, O_TRUNC};
    const O_NOCTTY: u32 = 0o400;
    (flags & !(O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_CLOEXEC)) | O_LARGEFILE
}

/// `struct pollfd`.
#[repr(C)]
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    zerocopy::FromBytes,
    zerocopy::IntoBytes,
    zerocopy::Immutable,
    zerocopy::KnownLayout,
)]
struct PollFd {
    fd: i32,
    events: i16,
    revents: i16,
}

const POLLIN: i16 = 0x1;
const POLLPRI: i16 = 0x2;
const POLLOUT: i16 = 0x4;
const POLLERR: i16 = 0x8;
const POLLHUP: i16 = 0x10;
const POLLNVAL: i16 = 0x20;
const POLLRDNORM: i16 = 0x40;
const POLLWRNORM: i16 = 0x100;

pub fn poll(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let timeout = a[2] as i32;
    let timeout = (timeout >= 0).then(|| std::time::Duration::from_millis(timeout as u64));
    poll_fds(t, a[0], a[1], timeout)
}

pub fn ppoll(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let timeout = if a[2] != 0 {
        let ts: Timespec = t.mm.read_obj(a[2])?;
        Some(ts.to_duration()?)
    } else {
        None
    };
    if a[3] != 0 && a[4] != 8 {
        return Err(Errno::EINVAL);
    }
    // The signal mask only matters while signals are delivered, which comes later.
    poll_fds(t, a[0], a[1], timeout)
}

/// poll(2) over the files that exist so far: every file but runsc-rs's own stdio is always
/// ready (files, directories, devices never block); stdio is polled on the host.
fn poll_fds(t: &Task, addr: u64, count: u64, timeout: Option<std::time::Duration>) -> SysResult {
    let limit = nofile_limit(t);
    if count > limit.max(1024) {
        return Err(Errno::EINVAL);
    }
    let mut fds = vec![PollFd::default(); count as usize];
    t.mm.copy_in(addr, fds.as_mut_slice().as_mut_bytes())?;
    let mut host: Vec<(usize, std::os::fd::BorrowedFd<'static>)> = Vec::new();
    let mut ready = 0;
    for (i, pfd) in fds.iter_mut().enumerate() {
        pfd.revents = 0;
        if pfd.fd < 0 {
            continue;
        }
        let Ok(file) = t.fds.get(pfd.fd as u64) else {
            pfd.revents = POLLNVAL;
            ready += 1;
            continue;
        };
        match file
            .inode
            .as_any()
            .downcast_ref::<crate::fs::host::HostFile>()
        {
            Some(h) => host.push((i, h.stream.host_fd())),
            None => {
                let always = POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM;
                pfd.revents = pfd.events & always;
                if pfd.revents != 0 {
                    ready += 1;
                }
            }
        }
    }
    if !host.is_empty() {
        use nix::poll::{PollFd as HostPollFd, PollFlags, PollTimeout};
        let wait = if ready > 0 {
            PollTimeout::ZERO
        } else {
            match timeout {
                None => PollTimeout::NONE,
                Some(d) => PollTimeout::try_from(d).unwrap_or(PollTimeout::MAX),
            }
        };
        let mut polled: Vec<HostPollFd> = host
            .iter()
            .map(|(i, fd)| {
                HostPollFd::new(
                    *fd,
                    PollFlags::from_bits_truncate(fds[*i].events | POLLERR | POLLHUP),
                )
            })
            .collect();
        loop {
            match nix::poll::poll(&mut polled, wait) {
                Ok(_) => break,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e),
            }
        }
        for ((i, _), p) in host.iter().zip(&polled) {
            let revents = p.revents().map_or(0, |r| r.bits());
            fds[*i].revents = revents & (fds[*i].events | POLLERR | POLLHUP | POLLNVAL | POLLPRI);
            if fds[*i].revents != 0 {
                ready += 1;
            }
        }
    } else if ready == 0 {
        // Nothing can become ready: sleep out the timeout (forever is the guest's choice).
        std::thread::sleep(timeout.unwrap_or(std::time::Duration::MAX));
    }
    t.mm.copy_out(addr, fds.as_bytes())?;
    Ok(ready)
}
