//! System calls on file descriptors: I/O, offsets, duplication, flags, stat, directory
//! listing, pipes, file locks, copy_file_range, fallocate, sync. (poll is in poll.rs.)

use std::sync::Arc;

use zerocopy::IntoBytes;

use crate::abi::*;
use crate::kernel::Task;
use crate::vfs::lock::LockType;
use crate::vfs::{
    FileType, OpenFile, SetAttr, O_APPEND, O_CLOEXEC, O_DIRECT, O_LARGEFILE, O_NONBLOCK, O_PATH,
    O_RDONLY, O_WRONLY,
};

/// The most one read or write moves (Linux's MAX_RW_COUNT).
pub(super) const MAX_RW_COUNT: u64 = 0x7fff_f000;
/// Data moves between the guest and a file in pieces of this size.
const CHUNK: usize = 1 << 20;
/// Most iovecs one call may take (UIO_MAXIOV).
pub(super) const UIO_MAXIOV: u64 = 1024;

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

/// One I/O call: where it reads or writes, and the status flags it runs with (the open file
/// description's, as preadv2's RWF_* flags change them for the call).
#[derive(Clone, Copy)]
struct Io {
    at: At,
    flags: u32,
}

impl Io {
    fn new(file: &OpenFile, at: At) -> Io {
        Io {
            at,
            flags: file.flags(),
        }
    }

    fn read(self, file: &OpenFile, buf: &mut [u8]) -> Result<usize, Errno> {
        match self.at {
            At::Cursor => file.read_with(buf, self.flags),
            At::Offset(o) => file.pread(o, buf),
        }
    }

    /// Writes `buf`; `done` bytes of the call are already written.
    fn write(self, file: &OpenFile, buf: &[u8], done: u64) -> Result<usize, Errno> {
        match self.at.after(done) {
            At::Cursor => file.write_with(buf, self.flags),
            At::Offset(o) => file.pwrite_with(o, buf, self.flags),
        }
    }
}

/// The open-file limit (RLIMIT_NOFILE) of the task's process.
pub(super) fn nofile_limit(t: &Task) -> u64 {
    t.tg.rlimits()[RLIMIT_NOFILE as usize].cur
}

/// The file open at `fd` for I/O: EBADF for O_PATH descriptors, which allow none (what
/// Linux's fdget refuses).
pub(super) fn io_file(t: &Task, fd: u64) -> Result<Arc<OpenFile>, Errno> {
    let file = t.fds.get(fd)?;
    if file.flags() & O_PATH != 0 {
        return Err(Errno::EBADF);
    }
    Ok(file)
}

/// Reads up to `count` bytes from `file` into guest memory at `addr`.
fn read_into(t: &Task, file: &OpenFile, addr: u64, count: u64, io: Io) -> SysResult {
    let count = count.min(MAX_RW_COUNT);
    if count == 0 {
        return Ok(0);
    }
    let mut buf = vec![0u8; (count as usize).min(CHUNK)];
    // Check the destination first: data taken from a file must never be dropped.
    t.mm.check_access(addr, buf.len() as u64, true)?;
    let n = io.read(file, &mut buf)?;
    t.mm.copy_out(addr, &buf[..n])?;
    Ok(n as u64)
}

/// Writes the guest memory the iovecs `iovs` name to `file`, gathering up to CHUNK bytes
/// per file write, so that a writev of at most PIPE_BUF bytes is one atomic pipe write as in
/// Linux. After the first byte, an error (a fault included) only ends the call early.
fn write_iovecs(t: &Task, file: &OpenFile, iovs: &[Iovec], io: Io) -> SysResult {
    if !file.writable() {
        return Err(Errno::EBADF);
    }
    let total: u64 = iovs.iter().map(|v| v.len).sum();
    let mut pending: std::collections::VecDeque<Iovec> =
        iovs.iter().copied().filter(|v| v.len > 0).collect();
    let mut buf = Vec::with_capacity((total as usize).min(CHUNK));
    let mut done = 0u64;
    loop {
        buf.clear();
        let fault = gather(t, &mut pending, &mut buf);
        let partial = |e| if done > 0 { Ok(done) } else { Err(e) };
        if buf.is_empty() {
            return match fault {
                Some(e) => partial(e),
                None => Ok(done),
            };
        }
        match io.write(file, &buf, done) {
            Ok(n) => {
                done += n as u64;
                if n < buf.len() || fault.is_some() {
                    return Ok(done);
                }
            }
            Err(e) => return partial(e),
        }
    }
}

/// Copies guest memory from the front of `pending` into `buf`, up to CHUNK bytes; the
/// fault that stopped it early, if one did.
fn gather(
    t: &Task,
    pending: &mut std::collections::VecDeque<Iovec>,
    buf: &mut Vec<u8>,
) -> Option<Errno> {
    while let Some(iov) = pending.front_mut() {
        let room = CHUNK - buf.len();
        if room == 0 {
            break;
        }
        let n = (iov.len as usize).min(room);
        let start = buf.len();
        buf.resize(start + n, 0);
        if let Err(e) = t.mm.copy_in(iov.base, &mut buf[start..]) {
            buf.truncate(start);
            return Some(e);
        }
        iov.base += n as u64;
        iov.len -= n as u64;
        if iov.len == 0 {
            pending.pop_front();
        }
    }
    None
}

/// The one iovec of write(2) and pwrite64(2).
fn one_iovec(base: u64, len: u64) -> [Iovec; 1] {
    [Iovec {
        base,
        len: len.min(MAX_RW_COUNT),
    }]
}

pub fn read(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let file = t.fds.get(a[0])?;
    read_into(t, &file, a[1], a[2], Io::new(&file, At::Cursor))
}

/// Datagram and packet sockets fail writes with EPIPE but raise no SIGPIPE
/// (unix_dgram_sendmsg); only streams do.
fn sigpipe_rule(t: &mut Task, file: &OpenFile) {
    use crate::net::unix::SockType;
    if file
        .socket()
        .is_some_and(|s| s.sock_type() != SockType::Stream)
    {
        t.suppress_sigpipe = true;
    }
}

pub fn write(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let file = t.fds.get(a[0])?;
    sigpipe_rule(t, &file);
    write_iovecs(t, &file, &one_iovec(a[1], a[2]), Io::new(&file, At::Cursor))
}

fn offset_arg(offset: u64) -> Result<At, Errno> {
    if (offset as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    Ok(At::Offset(offset))
}

pub fn pread64(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let file = t.fds.get(a[0])?;
    let io = Io::new(&file, offset_arg(a[3])?);
    read_into(t, &file, a[1], a[2], io)
}

pub fn pwrite64(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let file = t.fds.get(a[0])?;
    let io = Io::new(&file, offset_arg(a[3])?);
    write_iovecs(t, &file, &one_iovec(a[1], a[2]), io)
}

/// Reads and checks an iovec array as Linux's import_iovec does: a length negative as an
/// ssize_t is EINVAL, lengths are cut so the total stays within MAX_RW_COUNT, and each
/// segment must lie below the top of the user address space (else EFAULT).
pub(super) fn iovecs(t: &Task, addr: u64, count: u64) -> Result<Vec<Iovec>, Errno> {
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

fn readv_at(t: &Task, file: &OpenFile, iov_addr: u64, count: u64, io: Io) -> SysResult {
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
    let n = if buf.is_empty() {
        0
    } else {
        io.read(file, &mut buf)?
    };
    let mut done = 0;
    for iov in &iovs {
        let m = (iov.len as usize).min(n - done);
        t.mm.copy_out(iov.base, &buf[done..done + m])?;
        done += m;
    }
    Ok(n as u64)
}

fn writev_at(t: &Task, file: &OpenFile, iov_addr: u64, count: u64, io: Io) -> SysResult {
    let iovs = iovecs(t, iov_addr, count)?;
    write_iovecs(t, file, &iovs, io)
}

pub fn readv(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let file = t.fds.get(a[0])?;
    readv_at(t, &file, a[1], a[2], Io::new(&file, At::Cursor))
}

pub fn writev(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let file = t.fds.get(a[0])?;
    sigpipe_rule(t, &file);
    writev_at(t, &file, a[1], a[2], Io::new(&file, At::Cursor))
}

pub fn preadv(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let file = t.fds.get(a[0])?;
    let io = Io::new(&file, offset_arg(a[3])?);
    readv_at(t, &file, a[1], a[2], io)
}

pub fn pwritev(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let file = t.fds.get(a[0])?;
    let io = Io::new(&file, offset_arg(a[3])?);
    writev_at(t, &file, a[1], a[2], io)
}

/// The preadv2/pwritev2 flags Linux 6.18 knows (RWF_SUPPORTED).
const RWF_KNOWN: u64 = RWF_HIPRI
    | RWF_DSYNC
    | RWF_SYNC
    | RWF_NOWAIT
    | RWF_APPEND
    | RWF_NOAPPEND
    | RWF_ATOMIC
    | RWF_DONTCACHE
    | RWF_NOSIGNAL;

/// Where preadv2/pwritev2 read or write: offset -1 is the file offset; other negative
/// offsets are EINVAL (checked before the descriptor, as Linux does).
fn rwf_offset(offset: u64) -> Result<At, Errno> {
    if offset as i64 == -1 {
        Ok(At::Cursor)
    } else {
        offset_arg(offset)
    }
}

/// The call preadv2/pwritev2 make: the RWF_* flags become status flags for this call
/// (Linux's kiocb_set_rw_flags). RWF_HIPRI, RWF_DSYNC and RWF_SYNC change nothing in
/// sandbox memory; RWF_NOWAIT keeps a pipe from waiting; RWF_APPEND and RWF_NOAPPEND set
/// and clear O_APPEND; RWF_NOSIGNAL spares the SIGPIPE. RWF_ATOMIC and RWF_DONTCACHE ask for
/// what the Sentry's file systems do not offer (untorn writes, a page cache to drop), so, as
/// on tmpfs, EOPNOTSUPP.
fn rwf_io(t: &mut Task, file: &OpenFile, at: At, rwf: u64) -> Result<Io, Errno> {
    if rwf & !RWF_KNOWN != 0 || rwf & (RWF_ATOMIC | RWF_DONTCACHE) != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    if rwf & RWF_APPEND != 0 && rwf & RWF_NOAPPEND != 0 {
        return Err(Errno::EINVAL);
    }
    let mut flags = file.flags();
    if rwf & RWF_NOWAIT != 0 {
        flags |= O_NONBLOCK;
    }
    if rwf & RWF_APPEND != 0 {
        flags |= O_APPEND;
    }
    if rwf & RWF_NOAPPEND != 0 {
        flags &= !O_APPEND;
    }
    if rwf & RWF_NOSIGNAL != 0 {
        t.suppress_sigpipe = true;
    }
    Ok(Io { at, flags })
}

/// preadv2(2). On x86_64 the offset is one register (the high half, a[4], is unused).
pub fn preadv2(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let at = rwf_offset(a[3])?;
    let file = t.fds.get(a[0])?;
    let io = rwf_io(t, &file, at, a[5])?;
    readv_at(t, &file, a[1], a[2], io)
}

/// pwritev2(2). With RWF_APPEND the data goes to the end whatever the offset says.
pub fn pwritev2(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let at = rwf_offset(a[3])?;
    let file = t.fds.get(a[0])?;
    let io = rwf_io(t, &file, at, a[5])?;
    writev_at(t, &file, a[1], a[2], io)
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

const FD_CLOEXEC: u64 = 1;

/// The fcntl commands an O_PATH descriptor allows (Linux's check_fcntl_cmd); the others
/// get EBADF.
fn allowed_on_path(cmd: u64) -> bool {
    matches!(cmd, F_DUPFD | F_DUPFD_CLOEXEC | F_GETFD | F_SETFD | F_GETFL)
}

pub fn fcntl(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let file = t.fds.get(a[0])?;
    let arg = a[2];
    let cmd = a[1] & 0xffff_ffff;
    if file.flags() & O_PATH != 0 && !allowed_on_path(cmd) {
        return Err(Errno::EBADF);
    }
    match cmd {
        F_DUPFD | F_DUPFD_CLOEXEC => {
            let min = i32::try_from(arg as i64)
                .ok()
                .filter(|&m| m >= 0)
                .ok_or(Errno::EINVAL)?;
            let limit = nofile_limit(t);
            if min as u64 >= limit {
                return Err(Errno::EINVAL);
            }
            let cloexec = cmd == F_DUPFD_CLOEXEC;
            t.fds.install(file, cloexec, min, limit).map(|fd| fd as u64)
        }
        F_GETFD => Ok(t.fds.cloexec(a[0])? as u64),
        F_SETFD => t.fds.set_cloexec(a[0], arg & FD_CLOEXEC != 0).map(|()| 0),
        F_GETFL => Ok(file.flags() as u64),
        F_SETFL => {
            file.set_flags(arg as u32);
            Ok(0)
        }
        F_GETLK | F_OFD_GETLK => get_lock(t, &file, arg, cmd == F_OFD_GETLK),
        F_SETLK | F_SETLKW | F_OFD_SETLK | F_OFD_SETLKW => {
            let ofd = matches!(cmd, F_OFD_SETLK | F_OFD_SETLKW);
            set_lock(t, &file, arg, ofd, matches!(cmd, F_SETLKW | F_OFD_SETLKW))
        }
        F_GETPIPE_SZ => Ok(file.pipe().ok_or(Errno::EBADF)?.size()),
        // The argument is an unsigned int: the upper half of the register is ignored.
        F_SETPIPE_SZ => file.pipe().ok_or(Errno::EBADF)?.set_size(arg as u32),
        _ => Err(Errno::EINVAL),
    }
}

/// The record-lock owner of a `struct flock` call: the process (POSIX locks) or, for the
/// F_OFD_* commands, the open file description, whose requests must have l_pid 0.
fn lock_owner(
    t: &Task,
    file: &OpenFile,
    fl: &Flock,
    ofd: bool,
    setting: bool,
) -> Result<crate::vfs::lock::RecordOwner, Errno> {
    match (ofd, setting) {
        (true, _) if fl.l_pid != 0 => Err(Errno::EINVAL),
        (true, _) => Ok(file.ofd_owner()),
        (false, true) => Ok(t.fds.posix_lock_owner()),
        (false, false) => Ok(t.fds.posix_query_owner()),
    }
}

/// F_GETLK and F_OFD_GETLK: the first lock that would stand in the way of the lock in the
/// guest's `struct flock` at `addr`, written back there; l_type F_UNLCK if none would.
fn get_lock(t: &Task, file: &OpenFile, addr: u64, ofd: bool) -> SysResult {
    let mut fl: Flock = t.mm.read_obj(addr)?;
    let kind = LockType::from_l_type(fl.l_type)?.ok_or(Errno::EINVAL)?;
    let range = file.lock_range(fl.l_whence, fl.l_start, fl.l_len)?;
    let owner = lock_owner(t, file, &fl, ofd, false)?;
    match file.test_lock(owner, kind, range) {
        None => fl.l_type = F_UNLCK,
        Some(conflict) => {
            fl.l_type = conflict.kind.l_type();
            fl.l_whence = crate::vfs::SEEK_SET as i16;
            (fl.l_start, fl.l_len) = conflict.range.to_flock();
            fl.l_pid = conflict.pid;
        }
    }
    t.mm.write_obj(addr, &fl)?;
    Ok(0)
}

/// F_SETLK, F_SETLKW and their OFD forms: the guest's `struct flock` at `addr` says what
/// to lock or unlock. A read lock needs a descriptor open for reading, a write lock one
/// open for writing (EBADF).
fn set_lock(t: &Task, file: &OpenFile, addr: u64, ofd: bool, wait: bool) -> SysResult {
    let fl: Flock = t.mm.read_obj(addr)?;
    let range = file.lock_range(fl.l_whence, fl.l_start, fl.l_len)?;
    let kind = LockType::from_l_type(fl.l_type)?;
    match kind {
        Some(LockType::Read) if !file.readable() => return Err(Errno::EBADF),
        Some(LockType::Write) if !file.writable() => return Err(Errno::EBADF),
        _ => {}
    }
    let owner = lock_owner(t, file, &fl, ofd, true)?;
    file.set_lock(owner, t.tg.pid, kind, range, wait)?;
    Ok(0)
}

/// flock(2). LOCK_MAND requests succeed without doing anything (Linux 5.15 and later), and
/// the operation is checked before the descriptor.
pub fn flock(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let cmd = a[1] as u32 as u64;
    if cmd & LOCK_MAND != 0 {
        return Ok(0);
    }
    let kind = match cmd & !LOCK_NB {
        LOCK_SH => Some(LockType::Read),
        LOCK_EX => Some(LockType::Write),
        LOCK_UN => None,
        _ => return Err(Errno::EINVAL),
    };
    let file = io_file(t, a[0])?;
    if kind.is_some() && !file.readable() && !file.writable() {
        return Err(Errno::EBADF);
    }
    file.flock(kind, cmd & LOCK_NB == 0)?;
    Ok(0)
}

pub fn ioctl(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let file = io_file(t, a[0])?;
    // The request is an unsigned int in Linux: the upper half of the register is ignored.
    let request = a[1] & 0xffff_ffff;
    match request {
        // Descriptor flags and O_NONBLOCK, valid on every file (do_vfs_ioctl).
        FIOCLEX | FIONCLEX => return t.fds.set_cloexec(a[0], request == FIOCLEX).map(|()| 0),
        FIONBIO => {
            let on: i32 = t.mm.read_obj(a[2])?;
            let flags = file.flags();
            file.set_flags(if on != 0 {
                flags | O_NONBLOCK
            } else {
                flags & !O_NONBLOCK
            });
            return Ok(0);
        }
        FIONREAD => {
            if let Some(n) = bytes_to_read(&file)? {
                t.mm.write_obj(a[2], &n)?;
                return Ok(0);
            }
        }
        // What a socket's unread messages count against its send buffer.
        SIOCOUTQ if file.socket().is_some() => {
            let n = file.socket().map_or(0, |s| s.outq());
            t.mm.write_obj(a[2], &(n as i32))?;
            return Ok(0);
        }
        _ => {}
    }
    if let Some(tty) = file.terminal() {
        return super::tty::ioctl(t, &file, tty, request, a[2]);
    }
    let host = file
        .inode
        .as_any()
        .downcast_ref::<crate::fs::host::HostFile>()
        .map(|h| h.fd())
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
        FIONREAD => {
            let n =
                rustix::io::ioctl_fionread(host).map_err(|e| Errno::from_raw(e.raw_os_error()))?;
            t.mm.write_obj(a[2], &(n as i32))?;
        }
        _ => return Err(Errno::ENOTTY),
    }
    Ok(0)
}

/// FIONREAD of a Sentry file: what a pipe holds, or for a regular file the bytes from the
/// offset to the end (an int, negative past the end, as Linux computes it); None for files
/// that do not answer it.
fn bytes_to_read(file: &OpenFile) -> Result<Option<i32>, Errno> {
    if let Some(pipe) = file.pipe() {
        return Ok(Some(pipe.queued() as i32));
    }
    if let Some(socket) = file.socket() {
        return Ok(Some(socket.inq()? as i32));
    }
    let attr = file.attr()?;
    if attr.file_type() != Some(FileType::Regular) {
        return Ok(None);
    }
    Ok(Some(
        (attr.size as i64).wrapping_sub(file.offset() as i64) as i32
    ))
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
    crate::mm::page_cache::after_truncate(&file.inode, a[1]);
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

/// pipe(2).
pub fn pipe(t: &mut Task, a: &[u64; 6]) -> SysResult {
    make_pipe(t, a[0], 0)
}

/// pipe2(2): O_CLOEXEC, O_NONBLOCK and O_DIRECT (packet mode); any other flag is EINVAL.
pub fn pipe2(t: &mut Task, a: &[u64; 6]) -> SysResult {
    make_pipe(t, a[0], a[1] as u32)
}

fn make_pipe(t: &Task, addr: u64, flags: u32) -> SysResult {
    if flags & !(O_CLOEXEC | O_NONBLOCK | O_DIRECT) != 0 {
        return Err(Errno::EINVAL);
    }
    t.mm.check_access(addr, 8, true)?;
    let owner = crate::vfs::Owner {
        uid: t.creds.fsuid,
        gid: t.creds.fsgid,
    };
    let (inode, reader, writer) = crate::fs::pipe::new_pipe(owner);
    let status = flags & (O_NONBLOCK | O_DIRECT);
    let reader = OpenFile::new(None, inode.clone(), reader, O_RDONLY | status);
    let writer = OpenFile::new(None, inode, writer, O_WRONLY | status);
    let (cloexec, limit) = (flags & O_CLOEXEC != 0, nofile_limit(t));
    let read_fd = t.fds.install(reader, cloexec, 0, limit)?;
    // Nothing stays installed unless the guest gets both numbers.
    let installed = t
        .fds
        .install(writer, cloexec, 0, limit)
        .and_then(|write_fd| {
            let written = t.mm.write_obj(addr, &[read_fd, write_fd]);
            if written.is_err() {
                let _ = t.fds.close(write_fd as u64);
            }
            written
        });
    if let Err(e) = installed {
        let _ = t.fds.close(read_fd as u64);
        return Err(e);
    }
    Ok(0)
}

/// copy_file_range(2): copies up to `len` bytes between two regular files of one file
/// system, at `*off_in` and `*off_out` when given (which then advance) or else at the
/// files' offsets. The checks follow Linux's generic_copy_file_checks.
pub fn copy_file_range(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let [fd_in, off_in, fd_out, off_out, len, flags] = *a;
    let input = io_file(t, fd_in)?;
    let output = io_file(t, fd_out)?;
    let read_offset = |ptr: u64| -> Result<Option<i64>, Errno> {
        (ptr != 0).then(|| t.mm.read_obj::<i64>(ptr)).transpose()
    };
    let (given_in, given_out) = (read_offset(off_in)?, read_offset(off_out)?);
    if flags as u32 != 0 {
        return Err(Errno::EINVAL);
    }
    let (attr_in, attr_out) = (input.attr()?, output.attr()?);
    let kinds = [attr_in.file_type(), attr_out.file_type()];
    if kinds.contains(&Some(FileType::Directory)) {
        return Err(Errno::EISDIR);
    }
    if kinds.iter().any(|k| *k != Some(FileType::Regular)) {
        return Err(Errno::EINVAL);
    }
    if !input.readable() || !output.writable() || output.flags() & O_APPEND != 0 {
        return Err(Errno::EBADF);
    }
    let same_fs = match (&input.location, &output.location) {
        (Some(i), Some(o)) => Arc::ptr_eq(&i.mount, &o.mount),
        _ => false,
    };
    if !same_fs {
        return Err(Errno::EXDEV);
    }
    let pos_in = given_in.unwrap_or(input.offset() as i64);
    let pos_out = given_out.unwrap_or(output.offset() as i64);
    if (pos_in as u64).checked_add(len).is_none() || (pos_out as u64).checked_add(len).is_none() {
        return Err(Errno::EOVERFLOW);
    }
    if pos_in < 0 || pos_out < 0 {
        return Err(Errno::EINVAL);
    }
    let (pos_in, pos_out) = (pos_in as u64, pos_out as u64);
    // Shortened to the end of the input, then no overlap within one file.
    let count = len.min(attr_in.size.saturating_sub(pos_in));
    let overlap = pos_out < pos_in + count && pos_in < pos_out + count;
    if attr_in.key() == attr_out.key() && overlap {
        return Err(Errno::EINVAL);
    }
    let done = copy_range(&input, pos_in, &output, pos_out, count.min(MAX_RW_COUNT))?;
    if done == 0 {
        return Ok(0);
    }
    for (file, ptr, pos) in [(&input, off_in, pos_in), (&output, off_out, pos_out)] {
        if ptr == 0 {
            file.set_offset(pos + done);
        } else {
            t.mm.write_obj(ptr, &((pos + done) as i64))?;
        }
    }
    Ok(done)
}

/// Copies `count` bytes from `input` at `pos_in` to `output` at `pos_out`, in pieces; stops
/// early at the end of the input or a short write. After the first byte an error only ends
/// the copy.
fn copy_range(
    input: &OpenFile,
    pos_in: u64,
    output: &OpenFile,
    pos_out: u64,
    count: u64,
) -> SysResult {
    let mut buf = vec![0u8; (count as usize).min(CHUNK)];
    let mut done = 0u64;
    while done < count {
        let want = ((count - done) as usize).min(buf.len());
        let step = input
            .pread(pos_in + done, &mut buf[..want])
            .and_then(|n| output.pwrite(pos_out + done, &buf[..n]).map(|w| (n, w)));
        match step {
            Ok((0, _)) => break,
            Ok((n, w)) => {
                done += w as u64;
                if w < n {
                    break;
                }
            }
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        }
    }
    Ok(done)
}

/// The fallocate(2) modes, one at a time (FALLOC_FL_KEEP_SIZE is a flag beside them).
const FALLOC_MODES: u64 = FALLOC_FL_PUNCH_HOLE
    | FALLOC_FL_COLLAPSE_RANGE
    | FALLOC_FL_ZERO_RANGE
    | FALLOC_FL_INSERT_RANGE
    | FALLOC_FL_UNSHARE_RANGE
    | FALLOC_FL_WRITE_ZEROES;

/// fallocate(2), with the checks of Linux's vfs_fallocate. What the Sentry's file systems
/// do is what tmpfs does: allocating (the default mode, with or without
/// FALLOC_FL_KEEP_SIZE) and FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE; other modes are
/// EOPNOTSUPP.
pub fn fallocate(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let file = io_file(t, a[0])?;
    let (mode, offset, len) = (a[1] as u32 as u64, a[2] as i64, a[3] as i64);
    if offset < 0 || len <= 0 {
        return Err(Errno::EINVAL);
    }
    if mode & !(FALLOC_MODES | FALLOC_FL_KEEP_SIZE) != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    let keep_size = mode & FALLOC_FL_KEEP_SIZE != 0;
    let valid = match mode & FALLOC_MODES {
        0 | FALLOC_FL_UNSHARE_RANGE | FALLOC_FL_ZERO_RANGE => true,
        FALLOC_FL_PUNCH_HOLE => keep_size,
        FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_INSERT_RANGE | FALLOC_FL_WRITE_ZEROES => !keep_size,
        _ => false,
    };
    if !valid {
        return Err(Errno::EOPNOTSUPP);
    }
    if !file.writable() {
        return Err(Errno::EBADF);
    }
    match file.attr()?.file_type() {
        Some(FileType::Fifo) => return Err(Errno::ESPIPE),
        Some(FileType::Directory) => return Err(Errno::EISDIR),
        Some(FileType::Regular) => {}
        _ => return Err(Errno::ENODEV),
    }
    if offset.checked_add(len).is_none() {
        return Err(Errno::EFBIG);
    }
    let (offset, len) = (offset as u64, len as u64);
    match mode & FALLOC_MODES {
        0 => file.allocate(offset, len, keep_size)?,
        FALLOC_FL_PUNCH_HOLE => file.punch_hole(offset, len)?,
        _ => return Err(Errno::EOPNOTSUPP),
    }
    Ok(0)
}

/// fadvise64(2): advice on how a file will be read, with the checks of Linux's
/// generic_fadvise (a pipe or fifo is ESPIPE, a negative length or unknown advice EINVAL).
/// The Sentry keeps no page cache for the advice to tune, so valid advice changes nothing,
/// as in Linux for files without one.
pub fn fadvise64(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let [fd, _offset, len, advice, ..] = *a;
    let file = io_file(t, fd)?;
    if file.attr()?.file_type() == Some(FileType::Fifo) {
        return Err(Errno::ESPIPE);
    }
    if (len as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    // The advice is an int: the upper half of the register is ignored.
    match advice as u32 as u64 {
        POSIX_FADV_NORMAL..=POSIX_FADV_NOREUSE => Ok(0),
        _ => Err(Errno::EINVAL),
    }
}

/// sync(2): sandbox memory needs no flushing, and the gofer's host files are the host's
/// to write back.
pub fn sync(_t: &mut Task, _a: &[u64; 6]) -> SysResult {
    Ok(0)
}

/// syncfs(2): as sync, for the file system of an open descriptor.
pub fn syncfs(t: &mut Task, a: &[u64; 6]) -> SysResult {
    io_file(t, a[0]).map(|_| 0)
}
