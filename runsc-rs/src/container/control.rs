//! The control socket: how `start`, `exec`, `kill`, `ps`, `pause` and `resume` reach a
//! container's sandbox. The sandbox listens on a unix socket in the container's state
//! directory (bound before the Sentry confines itself; only root can reach it). Each
//! connection carries one [`Request`], as a JSON message on a `SOCK_SEQPACKET` socket
//! (message boundaries kept, descriptors passed with it by `SCM_RIGHTS`), and the replies
//! to it: one, or for `exec` a `Started` and, when the process ends, an `Exited`.

use std::mem::MaybeUninit;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::io::Errno;
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketAddrUnix, SocketFlags, SocketType,
};
use serde::{Deserialize, Serialize};

/// The socket's name in the state directory.
pub const SOCKET: &str = "control.sock";

/// The largest message either side sends (an exec's environment is the big part).
const MAX_MESSAGE: usize = 1 << 20;

/// The most descriptors a request carries (an exec's stdio, or its terminal).
const MAX_FDS: usize = 3;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Request {
    /// Run the container's process (`start`).
    Start,
    /// Send `sig` to the container's init, or to every process in it (`kill --all`).
    Signal {
        sig: i32,
        all: bool,
    },
    /// Run another process in the container (`exec`); the descriptors are its stdin,
    /// stdout and stderr, or its terminal.
    Exec(Box<ExecProcess>),
    /// List the container's processes (`ps`).
    Ps,
    Pause,
    Resume,
    /// A terminal of the container changed size: process `pid`'s (0 for init's).
    Resize {
        pid: i32,
        rows: u16,
        cols: u16,
    },
}

/// A process to start in a running container (`exec`), resolved from the exec's flags or
/// `--process` file by the CLI.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExecProcess {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub umask: Option<u32>,
    pub terminal: bool,
    /// The terminal's size to start with: (rows, columns).
    pub console_size: Option<(u16, u16)>,
    pub no_new_privs: bool,
    /// The capability names of each set (OCI's `process.capabilities`), if given.
    pub capabilities: Option<oci_spec::runtime::LinuxCapabilities>,
    /// (RLIMIT_* number, soft, hard)
    pub rlimits: Vec<(u32, u64, u64)>,
}

/// A process of the container, as `ps` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Process {
    pub pid: i32,
    pub ppid: i32,
    pub uid: u32,
    /// Its state letter (R, S, D, T, Z).
    pub state: char,
    /// Seconds after the sandbox started that it did.
    pub started: u64,
    /// Its CPU time in seconds.
    pub cpu: u64,
    pub cmd: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Reply {
    Ok,
    Error(String),
    /// The exec'd process runs as this pid.
    Started {
        pid: i32,
    },
    /// It ended: with `code` if it exited, killed by `signal` if not (then `code` is 0).
    Exited {
        code: i32,
        signal: i32,
    },
    Processes(Vec<Process>),
}

/// One end of a control connection.
pub struct Connection {
    fd: OwnedFd,
}

impl Connection {
    /// Connects to the sandbox listening at `path`.
    pub fn connect(path: &Path) -> Result<Connection, String> {
        let fd = seqpacket().map_err(|e| format!("making a socket: {e}"))?;
        let (_dir, short) = short_path(path)?;
        let addr = SocketAddrUnix::new(&short).map_err(|e| format!("{}: {e}", path.display()))?;
        rustix::net::connect(&fd, &addr)
            .map_err(|e| format!("the sandbox does not answer at {}: {e}", path.display()))?;
        Ok(Connection { fd })
    }

    /// Sends `message` with descriptors `fds`.
    pub fn send<T: Serialize>(&self, message: &T, fds: &[BorrowedFd<'_>]) -> Result<(), String> {
        let bytes = serde_json::to_vec(message).map_err(|e| e.to_string())?;
        if bytes.len() > MAX_MESSAGE {
            return Err(format!(
                "a control message of {} bytes is over the limit of {MAX_MESSAGE}",
                bytes.len()
            ));
        }
        if fds.len() > MAX_FDS {
            return Err(format!(
                "at most {MAX_FDS} descriptors go with a control message"
            ));
        }
        let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        if !fds.is_empty() {
            control.push(SendAncillaryMessage::ScmRights(fds));
        }
        let iov = [std::io::IoSlice::new(&bytes)];
        retry(|| rustix::net::sendmsg(&self.fd, &iov, &mut control, SendFlags::NOSIGNAL))
            .map(drop)
            .map_err(|e| format!("sending on the control socket: {e}"))
    }

    /// Receives a message and the descriptors that came with it; `None` once the other end
    /// has closed the connection.
    pub fn recv<T: for<'de> Deserialize<'de>>(&self) -> Result<Option<(T, Vec<OwnedFd>)>, String> {
        let mut buf = vec![0u8; MAX_MESSAGE];
        let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let msg = retry(|| {
            rustix::net::recvmsg(&self.fd, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC)
        })
        .map_err(|e| format!("reading from the control socket: {e}"))?;
        let mut fds = Vec::new();
        for message in control.drain() {
            if let RecvAncillaryMessage::ScmRights(received) = message {
                fds.extend(received);
            }
        }
        if msg.bytes == 0 && fds.is_empty() {
            return Ok(None);
        }
        if msg
            .flags
            .intersects(ReturnFlags::TRUNC | ReturnFlags::CTRUNC)
        {
            return Err("a control message was cut short".to_string());
        }
        let message = serde_json::from_slice(&buf[..msg.bytes])
            .map_err(|e| format!("a control message makes no sense: {e}"))?;
        Ok(Some((message, fds)))
    }

    /// Sends `request` and waits for the one reply to it.
    pub fn call(path: &Path, request: &Request) -> Result<Reply, String> {
        let connection = Connection::connect(path)?;
        connection.send(request, &[])?;
        match connection.recv()? {
            Some((reply, _)) => Ok(reply),
            None => Err("the sandbox closed the connection without replying".to_string()),
        }
    }
}

/// Retries a socket call that a signal interrupted.
fn retry<T>(mut f: impl FnMut() -> Result<T, Errno>) -> Result<T, Errno> {
    loop {
        match f() {
            Err(Errno::INTR) => continue,
            other => return other,
        }
    }
}

/// A name for `path` that fits a socket address (108 bytes; clients' state directories
/// are deeper than that): its directory, held open, through /proc/self/fd.
fn short_path(path: &Path) -> Result<(OwnedFd, std::path::PathBuf), String> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default();
    let fd = rustix::fs::open(
        dir,
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| format!("{}: {e}", dir.display()))?;
    use std::os::fd::AsRawFd;
    let short = Path::new("/proc/self/fd")
        .join(fd.as_raw_fd().to_string())
        .join(name);
    Ok((fd, short))
}

fn seqpacket() -> Result<OwnedFd, Errno> {
    rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
}

/// The sandbox's listening socket.
pub struct Listener {
    fd: OwnedFd,
}

impl Listener {
    /// Binds and listens at `path` (replacing a stale socket), reachable by root only.
    pub fn bind(path: &Path) -> Result<Listener, String> {
        let fail =
            |what: &str, e: Errno| format!("{what} the control socket {}: {e}", path.display());
        let fd = seqpacket().map_err(|e| fail("making", e))?;
        let _ = std::fs::remove_file(path);
        let (_dir, short) = short_path(path)?;
        let addr = SocketAddrUnix::new(&short).map_err(|e| fail("naming", e))?;
        rustix::net::bind(&fd, &addr).map_err(|e| fail("binding", e))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("chmod {}: {e}", path.display()))?;
        rustix::net::listen(&fd, 16).map_err(|e| fail("listening on", e))?;
        Ok(Listener { fd })
    }

    /// Waits for the next connection.
    pub fn accept(&self) -> Result<Connection, String> {
        loop {
            match rustix::net::accept_with(&self.fd, SocketFlags::CLOEXEC) {
                Ok(fd) => return Ok(Connection { fd }),
                Err(Errno::INTR | Errno::CONNABORTED) => continue,
                Err(e) => return Err(format!("accepting on the control socket: {e}")),
            }
        }
    }
}
