//! File system calls. The VFS is not here yet: descriptors 0-2 (runsc-rs's own stdio) are
//! the only files, and every path names nothing except /proc/self/exe for readlink.

use zerocopy::FromZeros;

use crate::abi::*;
use crate::kernel::Task;

/// The most one read or write moves (Linux's MAX_RW_COUNT).
const MAX_RW_COUNT: u64 = 0x7fff_f000;
/// Data moves between the guest and the host in pieces of this size.
const CHUNK: usize = 1 << 20;
/// Most iovecs one call may take (UIO_MAXIOV).
const UIO_MAXIOV: u64 = 1024;
/// Longest path, including its NUL (PATH_MAX).
const PATH_MAX: usize = 4096;

pub fn read(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let file = t.fds.get(a[0])?;
    let (addr, count) = (a[1], a[2].min(MAX_RW_COUNT));
    if count == 0 {
        return Ok(0);
    }
    let mut buf = vec![0u8; (count as usize).min(CHUNK)];
    // Check the destination first: data taken from the host must never be dropped.
    t.mm.check_access(addr, buf.len() as u64, true)?;
    let n = file.read(&mut buf)?;
    t.mm.copy_out(addr, &buf[..n])?;
    Ok(n as u64)
}

pub fn write(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let file = t.fds.get(a[0])?;
    write_from(t, &file, a[1], a[2].min(MAX_RW_COUNT), 0)
}

/// Writes `count` bytes of guest memory at `addr` to `file`, in pieces. `done` is what an
/// earlier part of the same call (writev) already wrote: after the first byte an error only
/// ends the call early, as in Linux.
fn write_from(t: &Task, file: &crate::kernel::File, addr: u64, count: u64, done: u64) -> SysResult {
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
        match file.write(&buf[..n]) {
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

/// Reads and checks an iovec array as Linux's import_iovec does: a length negative as an
/// ssize_t is EINVAL, lengths are cut so the total stays within MAX_RW_COUNT, and each
/// segment must lie below the top of the user address space (else EFAULT).
fn iovecs(t: &Task, addr: u64, count: u64) -> Result<Vec<Iovec>, Errno> {
    if count > UIO_MAXIOV {
        return Err(Errno::EINVAL);
    }
    let mut iovs = vec![Iovec::default(); count as usize];
    t.mm.copy_in(addr, zerocopy::IntoBytes::as_mut_bytes(iovs.as_mut_slice()))?;
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

pub fn readv(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let file = t.fds.get(a[0])?;
    let iovs = iovecs(t, a[1], a[2])?;
    let total: u64 = iovs.iter().map(|v| v.len).sum();
    let mut buf = vec![0u8; (total as usize).min(CHUNK)];
    // As in read: check every destination byte before taking data from the host.
    let mut left = buf.len() as u64;
    for iov in &iovs {
        let n = iov.len.min(left);
        t.mm.check_access(iov.base, n, true)?;
        left -= n;
    }
    let n = if buf.is_empty() {
        0
    } else {
        file.read(&mut buf)?
    };
    let mut at = 0;
    for iov in &iovs {
        let m = (iov.len as usize).min(n - at);
        t.mm.copy_out(iov.base, &buf[at..at + m])?;
        at += m;
    }
    Ok(n as u64)
}

pub fn writev(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let file = t.fds.get(a[0])?;
    let iovs = iovecs(t, a[1], a[2])?;
    let mut done = 0u64;
    for iov in &iovs {
        let want = iov.len;
        let n = write_from(t, &file, iov.base, want, done)?;
        done += n;
        if n < want {
            break;
        }
    }
    Ok(done)
}

pub fn close(t: &mut Task, a: &[u64; 6]) -> SysResult {
    t.fds.close(a[0]).map(|()| 0)
}

pub fn ioctl(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let file = t.fds.get(a[0])?;
    // The request is an unsigned int in Linux: the upper half of the register is ignored.
    match a[1] & 0xffff_ffff {
        // Descriptor flags, valid on every file.
        FIOCLEX | FIONCLEX => {
            t.fds.set_cloexec(a[0], a[1] & 0xffff_ffff == FIOCLEX)?;
            return Ok(0);
        }
        _ => {}
    }
    let host = file.host_fd().ok_or(Errno::ENOTTY)?;
    match a[1] & 0xffff_ffff {
        TCGETS => {
            let tio: nix::libc::termios = nix::sys::termios::tcgetattr(host)?.into();
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

/// The host's stat of one of its descriptors, in the guest's layout.
fn host_stat(fd: std::os::fd::BorrowedFd<'_>) -> Result<Stat, Errno> {
    let st = nix::sys::stat::fstat(fd)?;
    let mut out = Stat::new_zeroed();
    out.dev = st.st_dev;
    out.ino = st.st_ino;
    out.nlink = st.st_nlink;
    out.mode = st.st_mode;
    out.uid = st.st_uid;
    out.gid = st.st_gid;
    out.rdev = st.st_rdev;
    out.size = st.st_size;
    out.blksize = st.st_blksize;
    out.blocks = st.st_blocks;
    out.atime = st.st_atime;
    out.atime_nsec = st.st_atime_nsec;
    out.mtime = st.st_mtime;
    out.mtime_nsec = st.st_mtime_nsec;
    out.ctime = st.st_ctime;
    out.ctime_nsec = st.st_ctime_nsec;
    Ok(out)
}

pub fn fstat(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let file = t.fds.get(a[0])?;
    let st = host_stat(file.host_fd().ok_or(Errno::EBADF)?)?;
    t.mm.write_obj(a[1], &st)?;
    Ok(0)
}

pub fn newfstatat(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let flags = a[3];
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let path = t.mm.read_cstring(a[1], PATH_MAX - 1)?;
    if !path.is_empty() {
        // No file system is mounted yet: every path names nothing.
        return Err(Errno::ENOENT);
    }
    if flags & AT_EMPTY_PATH == 0 || a[0] as i32 == AT_FDCWD {
        return Err(Errno::ENOENT);
    }
    let file = t.fds.get(a[0])?;
    let st = host_stat(file.host_fd().ok_or(Errno::EBADF)?)?;
    t.mm.write_obj(a[2], &st)?;
    Ok(0)
}

pub fn readlink(t: &mut Task, a: &[u64; 6]) -> SysResult {
    readlink_at(t, AT_FDCWD as u64, a[0], a[1], a[2])
}

pub fn readlinkat(t: &mut Task, a: &[u64; 6]) -> SysResult {
    readlink_at(t, a[0], a[1], a[2], a[3])
}

fn readlink_at(t: &mut Task, dirfd: u64, path: u64, buf: u64, size: u64) -> SysResult {
    if size as i32 <= 0 {
        return Err(Errno::EINVAL);
    }
    let path = t.mm.read_cstring(path, PATH_MAX - 1)?;
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    if path[0] != b'/' && dirfd as i32 != AT_FDCWD {
        t.fds.get(dirfd)?;
        return Err(Errno::ENOTDIR);
    }
    let own = format!("/proc/{}/exe", t.tg.pid);
    if path != b"/proc/self/exe" && path != own.as_bytes() {
        return Err(Errno::ENOENT);
    }
    let target = t.tg.exe.as_bytes();
    let n = target.len().min(size as u32 as usize);
    t.mm.copy_out(buf, &target[..n])?;
    Ok(n as u64)
}
