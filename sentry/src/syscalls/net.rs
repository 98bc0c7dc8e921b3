//! System calls on sockets: socket, socketpair, bind, listen, accept, connect, the send and
//! receive family, shutdown, names and options. Only AF_UNIX sockets exist so far
//! (`net::unix`); inet sockets will go through the gofer.

use std::collections::VecDeque;
use std::sync::Arc;

use zerocopy::{FromBytes, IntoBytes};

use super::file::{io_file, iovecs, nofile_limit, MAX_RW_COUNT, UIO_MAXIOV};
use super::fs::{find_socket_file, make_socket_file, unlink_path};
use crate::abi::*;
use crate::kernel::Task;
use crate::net::unix::{
    self, socket_inode, Addr, Ancillary, Caller, Endpoint, Names, Received, Sink, SockType, Source,
    UnixSocket, SCM_MAX_FD,
};
use crate::vfs::{OpenFile, Owner, O_NONBLOCK, O_RDWR};

/// sizeof(struct sockaddr_storage): the most address bytes a call takes.
const SOCKADDR_STORAGE: u64 = 128;
/// sendmsg's control buffer must be smaller than this (net.core.optmem_max): ENOBUFS.
const OPTMEM_MAX: u64 = 131072;
/// sizeof(struct cmsghdr).
const CMSG_HDR: usize = std::mem::size_of::<Cmsghdr>();
/// The most a send or receive moves at once (INT_MAX, as sendto and recvfrom cut it).
const INT_MAX: u64 = i32::MAX as u64;

/// The caller as af_unix records it.
fn caller(t: &Task) -> Caller {
    Caller {
        pid: t.tg.pid,
        uid: t.creds.uid,
        gid: t.creds.gid,
        euid: t.creds.euid,
        egid: t.creds.egid,
    }
}

/// The socket open at `fd`: EBADF if none is (O_PATH descriptors included), ENOTSOCK for
/// other files.
fn socket_file(t: &Task, fd: u64) -> Result<Arc<OpenFile>, Errno> {
    let file = io_file(t, fd)?;
    if file.socket().is_none() {
        return Err(Errno::ENOTSOCK);
    }
    Ok(file)
}

fn sock(file: &OpenFile) -> Result<&UnixSocket, Errno> {
    file.socket().ok_or(Errno::ENOTSOCK)
}

/// Installs `sock` as a new descriptor; `flags` are SOCK_NONBLOCK and SOCK_CLOEXEC.
fn install(t: &Task, sock: UnixSocket, flags: u64) -> Result<i32, Errno> {
    let inode = socket_inode(Owner {
        uid: t.creds.fsuid,
        gid: t.creds.fsgid,
    });
    let status = O_RDWR
        | if flags & SOCK_NONBLOCK != 0 {
            O_NONBLOCK
        } else {
            0
        };
    let file = OpenFile::new(None, inode, Arc::new(sock), status);
    t.fds
        .install(file, flags & SOCK_CLOEXEC != 0, 0, nofile_limit(t))
}

/// The type and flags of socket(2) and socketpair(2): EINVAL for unknown flags or a type
/// past SOCK_PACKET (__sock_create), EAFNOSUPPORT for a family Linux does not know.
fn socket_args(domain: u64, ty: u64) -> Result<(u64, u64), Errno> {
    let (domain, ty) = (domain as u32 as u64, ty as u32 as u64);
    let flags = ty & !SOCK_TYPE_MASK;
    if flags & !(SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    if domain >= AF_MAX {
        return Err(Errno::EAFNOSUPPORT);
    }
    const SOCK_MAX: u64 = 11;
    if ty & SOCK_TYPE_MASK >= SOCK_MAX {
        return Err(Errno::EINVAL);
    }
    Ok((ty & SOCK_TYPE_MASK, flags))
}

/// The unix socket type for socket(2)'s `type` and `protocol` (unix_create).
fn unix_type(ty: u64, protocol: u64) -> Result<SockType, Errno> {
    if !matches!(protocol as u32 as u64, 0 | AF_UNIX) {
        return Err(Errno::EPROTONOSUPPORT);
    }
    SockType::from_raw(ty)
}

/// socket(2).
pub fn socket(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let (ty, flags) = socket_args(a[0], a[1])?;
    match a[0] as u32 as u64 {
        AF_UNIX => {}
        AF_INET | AF_INET6 => {
            t.kernel.report_once(
                "inet sockets (AF_INET, AF_INET6) are not supported yet: returning EAFNOSUPPORT",
            );
            return Err(Errno::EAFNOSUPPORT);
        }
        _ => return Err(Errno::EAFNOSUPPORT),
    }
    let ty = unix_type(ty, a[2])?;
    let sock = UnixSocket::new(ty, t.kernel.unix_names.clone());
    install(t, sock, flags).map(|fd| fd as u64)
}

/// socketpair(2): two connected unix sockets. Inet families have no pairs (EOPNOTSUPP).
pub fn socketpair(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let (ty, flags) = socket_args(a[0], a[1])?;
    match a[0] as u32 as u64 {
        AF_UNIX => {}
        AF_INET | AF_INET6 => return Err(Errno::EOPNOTSUPP),
        _ => return Err(Errno::EAFNOSUPPORT),
    }
    let ty = unix_type(ty, a[2])?;
    let sv = a[3];
    t.mm.check_access(sv, 8, true)?;
    let (first, second) = UnixSocket::pair(ty, t.kernel.unix_names.clone(), &caller(t));
    let fd0 = install(t, first, flags)?;
    // Nothing stays installed unless the guest gets both numbers.
    let installed = install(t, second, flags).and_then(|fd1| {
        let written = t.mm.write_obj(sv, &[fd0, fd1]);
        if written.is_err() {
            let _ = t.fds.close(fd1 as u64);
        }
        written
    });
    if let Err(e) = installed {
        let _ = t.fds.close(fd0 as u64);
        return Err(e);
    }
    Ok(0)
}

/// Reads a socket address of `len` bytes (move_addr_to_kernel): EINVAL if the length is
/// negative or larger than sockaddr_storage.
fn read_sockaddr(t: &Task, addr: u64, len: u64) -> Result<Vec<u8>, Errno> {
    let len = len as i32;
    if len < 0 || len as u64 > SOCKADDR_STORAGE {
        return Err(Errno::EINVAL);
    }
    let mut bytes = vec![0u8; len as usize];
    t.mm.copy_in(addr, &mut bytes)?;
    Ok(bytes)
}

/// Writes a socket address for the guest (move_addr_to_user): as much as `*lenp` has room
/// for, then the full length to `*lenp`.
fn write_sockaddr(t: &Task, bytes: &[u8], addr: u64, lenp: u64) -> Result<(), Errno> {
    let room: i32 = t.mm.read_obj(lenp)?;
    if room < 0 {
        return Err(Errno::EINVAL);
    }
    let n = (room as usize).min(bytes.len());
    if n > 0 {
        t.mm.copy_out(addr, &bytes[..n])?;
    }
    t.mm.write_obj(lenp, &(bytes.len() as i32))
}

/// The socket address bytes of a name; a socket with none shows only its family.
fn sockaddr_of(name: Option<&Addr>) -> Vec<u8> {
    name.map_or_else(|| unix::UNNAMED.to_vec(), Addr::to_sockaddr)
}

/// The bound socket a connect or send to `addr` reaches (unix_find_other).
fn find_target(t: &Task, addr: &Addr, ty: SockType, names: &Names) -> Result<Arc<Endpoint>, Errno> {
    match addr {
        Addr::Path(path) => names.find_path(find_socket_file(t, path)?, ty),
        Addr::Abstract(name) => names.find_abstract(name, ty),
    }
}

/// bind(2). A path makes a socket file (EADDRINUSE if the name exists); an address of only
/// the family picks a free abstract name.
pub fn bind(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let file = socket_file(t, a[0])?;
    let sock = sock(&file)?;
    let bytes = read_sockaddr(t, a[1], a[2])?;
    if bytes.len() == unix::SUN_PATH_OFFSET && unix::family(&bytes) == Some(AF_UNIX) {
        return sock.autobind().map(|()| 0);
    }
    match Addr::parse(&bytes)? {
        Addr::Abstract(name) => sock.bind_abstract(name)?,
        Addr::Path(path) => {
            let key = make_socket_file(t, &path)?;
            if let Err(e) = sock.bind_path(path.clone(), key) {
                // Already bound: the file just made goes again (unix_bind_bsd).
                let _ = unlink_path(t, &path);
                return Err(e);
            }
        }
    }
    Ok(0)
}

/// listen(2).
pub fn listen(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let file = socket_file(t, a[0])?;
    sock(&file)?.listen(a[1] as i32, &caller(t))?;
    Ok(0)
}

pub fn accept(t: &mut Task, a: &[u64; 6]) -> SysResult {
    accept_common(t, a[0], a[1], a[2], 0)
}

pub fn accept4(t: &mut Task, a: &[u64; 6]) -> SysResult {
    accept_common(t, a[0], a[1], a[2], a[3])
}

/// accept4(2): the next connection as a new descriptor, and its peer's address at `addr`.
fn accept_common(t: &Task, fd: u64, addr: u64, lenp: u64, flags: u64) -> SysResult {
    let file = socket_file(t, fd)?;
    let flags = flags as u32 as u64;
    if flags & !(SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    let nonblock = file.flags() & O_NONBLOCK != 0;
    let accepted = sock(&file)?.accept(nonblock)?;
    if addr != 0 {
        // A fault here loses the connection, as in Linux.
        let peer = accepted.peer_name()?;
        write_sockaddr(t, &sockaddr_of(peer.as_ref()), addr, lenp)?;
    }
    install(t, accepted, flags).map(|fd| fd as u64)
}

/// connect(2). A datagram socket takes AF_UNSPEC to disconnect.
pub fn connect(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let file = socket_file(t, a[0])?;
    let sock = sock(&file)?;
    let bytes = read_sockaddr(t, a[1], a[2])?;
    let nonblock = file.flags() & O_NONBLOCK != 0;
    let me = caller(t);
    if sock.sock_type() == SockType::Dgram {
        match unix::family(&bytes) {
            None => return Err(Errno::EINVAL),
            Some(AF_UNSPEC) => return sock.connect(None, &me, nonblock).map(|()| 0),
            Some(_) => {}
        }
    }
    let addr = Addr::parse(&bytes)?;
    let target = find_target(t, &addr, sock.sock_type(), sock.names())?;
    sock.connect(Some(&target), &me, nonblock)?;
    Ok(0)
}

pub fn getsockname(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let file = socket_file(t, a[0])?;
    let name = sock(&file)?.name();
    write_sockaddr(t, &sockaddr_of(name.as_ref()), a[1], a[2])?;
    Ok(0)
}

pub fn getpeername(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let file = socket_file(t, a[0])?;
    let name = sock(&file)?.peer_name()?;
    write_sockaddr(t, &sockaddr_of(name.as_ref()), a[1], a[2])?;
    Ok(0)
}

/// shutdown(2).
pub fn shutdown(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let file = socket_file(t, a[0])?;
    let how = a[1] as i32;
    if !(0..=2).contains(&how) {
        return Err(Errno::EINVAL);
    }
    sock(&file)?.shutdown(how as u64)?;
    Ok(0)
}

/// Guest memory a send reads, iovec by iovec.
struct GuestSource<'a> {
    t: &'a Task,
    iovs: VecDeque<Iovec>,
    left: usize,
}

impl<'a> GuestSource<'a> {
    fn new(t: &'a Task, iovs: Vec<Iovec>) -> GuestSource<'a> {
        let left = iovs.iter().map(|v| v.len as usize).sum();
        GuestSource {
            t,
            iovs: iovs.into(),
            left,
        }
    }
}

impl Source for GuestSource<'_> {
    fn remaining(&self) -> usize {
        self.left
    }

    fn take(&mut self, n: usize, out: &mut Vec<u8>) -> Result<(), Errno> {
        let mut want = n.min(self.left);
        while want > 0 {
            let Some(iov) = self.iovs.front_mut() else {
                break;
            };
            let k = (iov.len as usize).min(want);
            let start = out.len();
            out.resize(start + k, 0);
            self.t.mm.copy_in(iov.base, &mut out[start..])?;
            iov.base += k as u64;
            iov.len -= k as u64;
            want -= k;
            self.left -= k;
            if iov.len == 0 {
                self.iovs.pop_front();
            }
        }
        Ok(())
    }
}

/// Guest memory a receive fills, iovec by iovec.
struct GuestSink<'a> {
    t: &'a Task,
    iovs: VecDeque<Iovec>,
    room: usize,
}

impl<'a> GuestSink<'a> {
    fn new(t: &'a Task, iovs: Vec<Iovec>) -> GuestSink<'a> {
        let room = iovs.iter().map(|v| v.len as usize).sum();
        GuestSink {
            t,
            iovs: iovs.into(),
            room,
        }
    }
}

impl Sink for GuestSink<'_> {
    fn room(&self) -> usize {
        self.room
    }

    fn put(&mut self, mut data: &[u8]) -> Result<(), Errno> {
        while !data.is_empty() {
            let Some(iov) = self.iovs.front_mut() else {
                return Err(Errno::EFAULT);
            };
            let k = (iov.len as usize).min(data.len());
            self.t.mm.copy_out(iov.base, &data[..k])?;
            iov.base += k as u64;
            iov.len -= k as u64;
            self.room -= k;
            data = &data[k..];
            if iov.len == 0 {
                self.iovs.pop_front();
            }
        }
        Ok(())
    }
}

/// The one iovec of send, sendto, recv and recvfrom: EFAULT unless it lies in user memory
/// (import_ubuf's access_ok).
fn one_iovec(base: u64, len: u64) -> Result<Vec<Iovec>, Errno> {
    let len = len.min(INT_MAX).min(MAX_RW_COUNT);
    if base.checked_add(len).is_none_or(|end| end > TASK_SIZE_MAX) {
        return Err(Errno::EFAULT);
    }
    Ok(vec![Iovec { base, len }])
}

/// The MSG_* flags a call runs with: those given (an int), and MSG_DONTWAIT for a
/// non-blocking file.
fn call_flags(file: &OpenFile, flags: u64) -> u64 {
    let flags = flags as u32 as u64;
    if file.flags() & O_NONBLOCK != 0 {
        flags | MSG_DONTWAIT
    } else {
        flags
    }
}

/// sendmsg(2) once its arguments are read: the data of `iovs` to `to` or the peer.
fn send_common(
    t: &mut Task,
    file: &OpenFile,
    iovs: Vec<Iovec>,
    to: Option<Vec<u8>>,
    anc: Ancillary,
    flags: u64,
) -> SysResult {
    let sock = sock(file)?;
    let flags = call_flags(file, flags);
    // Only a stream raises SIGPIPE, and not with MSG_NOSIGNAL (unix_stream_sendmsg).
    if flags & MSG_NOSIGNAL != 0 || sock.sock_type() != SockType::Stream {
        t.suppress_sigpipe = true;
    }
    let target = match (sock.sock_type(), to) {
        (_, None) => None,
        (SockType::Stream, Some(_)) => {
            return Err(if sock.is_connected() {
                Errno::EISCONN
            } else {
                Errno::EOPNOTSUPP
            })
        }
        // A packet socket ignores the address (unix_seqpacket_sendmsg).
        (SockType::SeqPacket, Some(_)) => None,
        (SockType::Dgram, Some(bytes)) => {
            let addr = Addr::parse(&bytes)?;
            Some(find_target(t, &addr, SockType::Dgram, sock.names())?)
        }
    };
    let me = caller(t);
    let mut src = GuestSource::new(t, iovs);
    let sent = sock.send(target.as_ref(), &mut src, anc, flags, Some(&me))?;
    Ok(sent as u64)
}

/// sendto(2) (and send(3), which is sendto without an address).
pub fn sendto(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let [fd, buf, len, flags, addr, addrlen] = *a;
    let file = socket_file(t, fd)?;
    // A null address, or a zero length, is no address.
    let to = if addr != 0 && addrlen as u32 != 0 {
        Some(read_sockaddr(t, addr, addrlen)?)
    } else {
        None
    };
    let iovs = one_iovec(buf, len)?;
    send_common(t, &file, iovs, to, Ancillary::default(), flags)
}

/// sendmsg(2).
pub fn sendmsg(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let [fd, msgp, flags, ..] = *a;
    let file = socket_file(t, fd)?;
    let mh: Msghdr = t.mm.read_obj(msgp)?;
    // copy_msghdr_from_user: a long address is cut to sockaddr_storage.
    let namelen = mh.namelen as i32;
    if namelen < 0 {
        return Err(Errno::EINVAL);
    }
    if mh.iovlen > UIO_MAXIOV {
        return Err(Errno::EMSGSIZE);
    }
    let to = if mh.name != 0 && namelen > 0 {
        Some(read_sockaddr(
            t,
            mh.name,
            (namelen as u64).min(SOCKADDR_STORAGE),
        )?)
    } else {
        None
    };
    let iovs = iovecs(t, mh.iov, mh.iovlen)?;
    if mh.controllen >= OPTMEM_MAX {
        return Err(Errno::ENOBUFS);
    }
    let mut control = vec![0u8; mh.controllen as usize];
    if !control.is_empty() {
        t.mm.copy_in(mh.control, &mut control)?;
    }
    let anc = parse_control(t, &control)?;
    send_common(t, &file, iovs, to, anc, flags)
}

/// The control messages of a sendmsg (__scm_send): SCM_RIGHTS (descriptors, at most
/// SCM_MAX_FD in all) and SCM_CREDENTIALS; other SOL_SOCKET types are EINVAL, other levels
/// are ignored. A header that does not fit is EINVAL (CMSG_OK).
fn parse_control(t: &Task, control: &[u8]) -> Result<Ancillary, Errno> {
    let mut anc = Ancillary::default();
    // CMSG_FIRSTHDR: a buffer shorter than one header holds no message.
    if control.len() < CMSG_HDR {
        return Ok(anc);
    }
    let mut at = 0;
    while at < control.len() {
        let rest = &control[at..];
        let (hdr, _) = Cmsghdr::read_from_prefix(rest).map_err(|_| Errno::EINVAL)?;
        if hdr.len < CMSG_HDR as u64 || hdr.len > rest.len() as u64 {
            return Err(Errno::EINVAL);
        }
        let len = hdr.len as usize;
        let data = &rest[CMSG_HDR..len];
        if hdr.level as u64 == SOL_SOCKET {
            match hdr.kind {
                SCM_RIGHTS => {
                    let fds = data.chunks_exact(4);
                    if anc.rights.len() + fds.len() > SCM_MAX_FD {
                        return Err(Errno::EINVAL);
                    }
                    for fd in fds {
                        let fd = i32::from_ne_bytes([fd[0], fd[1], fd[2], fd[3]]);
                        // fget_raw: O_PATH descriptors may travel too.
                        anc.rights.push(t.fds.get(fd as i64 as u64)?);
                    }
                }
                SCM_CREDENTIALS => {
                    if data.len() != std::mem::size_of::<Ucred>() {
                        return Err(Errno::EINVAL);
                    }
                    let (cred, _) = Ucred::read_from_prefix(data).map_err(|_| Errno::EINVAL)?;
                    check_cred(t, &cred)?;
                    anc.cred = Some(cred);
                }
                _ => return Err(Errno::EINVAL),
            }
        }
        at += len.next_multiple_of(8);
    }
    Ok(anc)
}

/// Whether the caller may claim `cred` in SCM_CREDENTIALS (scm_check_creds): its own pid
/// unless CAP_SYS_ADMIN, one of its real, effective or saved uids unless CAP_SETUID, and
/// gids unless CAP_SETGID. EINVAL for an id of -1.
fn check_cred(t: &Task, cred: &Ucred) -> Result<(), Errno> {
    if cred.uid == u32::MAX || cred.gid == u32::MAX {
        return Err(Errno::EINVAL);
    }
    let c = &t.creds;
    let pid_ok = cred.pid == t.tg.pid || c.capable(CAP_SYS_ADMIN);
    let uid_ok = [c.uid, c.euid, c.suid].contains(&cred.uid) || c.capable(CAP_SETUID);
    let gid_ok = [c.gid, c.egid, c.sgid].contains(&cred.gid) || c.capable(CAP_SETGID);
    if pid_ok && uid_ok && gid_ok {
        Ok(())
    } else {
        Err(Errno::EPERM)
    }
}

/// recvmsg(2) once its arguments are read.
fn recv_common(t: &Task, file: &OpenFile, iovs: Vec<Iovec>, flags: u64) -> Result<Received, Errno> {
    let sock = sock(file)?;
    let flags = call_flags(file, flags);
    let mut sink = GuestSink::new(t, iovs);
    sock.recv(&mut sink, flags)
}

/// recvfrom(2) (and recv(3)). Files passed with the data are closed: there is no room for
/// them.
pub fn recvfrom(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let [fd, buf, len, flags, addr, lenp] = *a;
    let file = socket_file(t, fd)?;
    let iovs = one_iovec(buf, len)?;
    let got = recv_common(t, &file, iovs, flags)?;
    if addr != 0 {
        let from = got.from.as_ref().map(Addr::to_sockaddr).unwrap_or_default();
        write_sockaddr(t, &from, addr, lenp)?;
    }
    Ok(got.len as u64)
}

/// recvmsg(2): the data, the sender's address, and control messages: SCM_CREDENTIALS with
/// SO_PASSCRED, then SCM_RIGHTS as new descriptors (MSG_CMSG_CLOEXEC makes them
/// close-on-exec). What does not fit sets MSG_CTRUNC; files that do not fit are closed.
pub fn recvmsg(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let [fd, msgp, flags, ..] = *a;
    let file = socket_file(t, fd)?;
    let mh: Msghdr = t.mm.read_obj(msgp)?;
    if (mh.namelen as i32) < 0 {
        return Err(Errno::EINVAL);
    }
    if mh.iovlen > UIO_MAXIOV {
        return Err(Errno::EMSGSIZE);
    }
    let iovs = iovecs(t, mh.iov, mh.iovlen)?;
    let flags = flags as u32 as u64;
    let mut got = recv_common(t, &file, iovs, flags)?;
    // ____sys_recvmsg starts msg_flags from MSG_CMSG_CLOEXEC.
    let mut out_flags = flags & MSG_CMSG_CLOEXEC;
    if got.truncated {
        out_flags |= MSG_TRUNC;
    }
    if mh.name != 0 {
        let from = got.from.as_ref().map(Addr::to_sockaddr).unwrap_or_default();
        let lenp = msgp + std::mem::offset_of!(Msghdr, namelen) as u64;
        write_sockaddr(t, &from, mh.name, lenp)?;
    }
    let used = put_control(t, &mh, &mut got, flags, &mut out_flags);
    t.mm.write_obj(
        msgp + std::mem::offset_of!(Msghdr, controllen) as u64,
        &used,
    )?;
    t.mm.write_obj(
        msgp + std::mem::offset_of!(Msghdr, flags) as u64,
        &(out_flags as u32),
    )?;
    Ok(got.len as u64)
}

/// Writes the control messages of a receive into the guest's control buffer (scm_recv,
/// put_cmsg, scm_detach_fds); returns how many bytes it used. Faults writing them are
/// ignored, as in Linux.
fn put_control(t: &Task, mh: &Msghdr, got: &mut Received, flags: u64, out: &mut u64) -> u64 {
    let rights = std::mem::take(&mut got.rights);
    if mh.control == 0 {
        if got.cred.is_some() || !rights.is_empty() {
            *out |= MSG_CTRUNC;
        }
        return 0;
    }
    let mut at = mh.control;
    let mut left = mh.controllen;
    if let Some(cred) = got.cred {
        let data = cred.as_bytes();
        if left < CMSG_HDR as u64 {
            *out |= MSG_CTRUNC;
        } else {
            let full = (CMSG_HDR + data.len()) as u64;
            let len = if left < full {
                *out |= MSG_CTRUNC;
                left
            } else {
                full
            };
            let hdr = Cmsghdr {
                len,
                level: SOL_SOCKET as i32,
                kind: SCM_CREDENTIALS,
            };
            let _ = t.mm.copy_out(at, hdr.as_bytes());
            let _ =
                t.mm.copy_out(at + CMSG_HDR as u64, &data[..len as usize - CMSG_HDR]);
            let step = full.next_multiple_of(8).min(left);
            at += step;
            left -= step;
        }
    }
    if !rights.is_empty() {
        let fit = if left > CMSG_HDR as u64 {
            ((left - CMSG_HDR as u64) / 4) as usize
        } else {
            0
        };
        let cloexec = flags & MSG_CMSG_CLOEXEC != 0;
        let limit = nofile_limit(t);
        let mut installed = 0;
        for (i, file) in rights.iter().take(fit).enumerate() {
            let Ok(fd) = t.fds.install(file.clone(), cloexec, 0, limit) else {
                break;
            };
            if t.mm.write_obj(at + (CMSG_HDR + 4 * i) as u64, &fd).is_err() {
                let _ = t.fds.close(fd as u64);
                break;
            }
            installed += 1;
        }
        if installed > 0 {
            let hdr = Cmsghdr {
                len: (CMSG_HDR + 4 * installed) as u64,
                level: SOL_SOCKET as i32,
                kind: SCM_RIGHTS,
            };
            let _ = t.mm.copy_out(at, hdr.as_bytes());
            let step = hdr.len.next_multiple_of(8).min(left);
            left -= step;
        }
        if installed < rights.len() {
            *out |= MSG_CTRUNC;
        }
    }
    mh.controllen - left
}

/// setsockopt(2): SOL_SOCKET options only (other levels have none on unix sockets).
pub fn setsockopt(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let [fd, level, name, val, len, ..] = *a;
    let file = socket_file(t, fd)?;
    let len = len as i32;
    if len < 0 {
        return Err(Errno::EINVAL);
    }
    if level as u32 as u64 != SOL_SOCKET {
        return Err(Errno::EOPNOTSUPP);
    }
    // No option reads more than a struct timeval.
    let mut bytes = vec![0u8; (len as usize).min(std::mem::size_of::<Timeval>())];
    t.mm.copy_in(val, &mut bytes)?;
    sock(&file)?.setsockopt(name as u32 as u64, &bytes)?;
    Ok(0)
}

/// getsockopt(2): as much of the value as `*lenp` has room for; `*lenp` becomes what was
/// written.
pub fn getsockopt(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let [fd, level, name, val, lenp, ..] = *a;
    let file = socket_file(t, fd)?;
    if level as u32 as u64 != SOL_SOCKET {
        return Err(Errno::EOPNOTSUPP);
    }
    let room: i32 = t.mm.read_obj(lenp)?;
    if room < 0 {
        return Err(Errno::EINVAL);
    }
    let value = sock(&file)?.getsockopt(name as u32 as u64)?;
    let n = (room as usize).min(value.len());
    t.mm.copy_out(val, &value[..n])?;
    t.mm.write_obj(lenp, &(n as i32))?;
    Ok(0)
}
