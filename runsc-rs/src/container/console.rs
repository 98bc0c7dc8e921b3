//! Terminals for containers: a host pseudo-terminal whose master goes to the client over
//! `--console-socket` (runc's protocol: one message carrying the descriptor) and whose
//! slave the sandbox uses as the process's terminal.

use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketAddrUnix};
use rustix::pty::OpenptFlags;

/// A new pseudo-terminal: (master, slave), the slave `rows` × `cols` if given.
pub fn open_pty(size: Option<(u16, u16)>) -> Result<(OwnedFd, OwnedFd), String> {
    let fail = |what: &str, e: rustix::io::Errno| format!("making a terminal ({what}): {e}");
    let master =
        rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)
            .map_err(|e| fail("openpt", e))?;
    rustix::pty::grantpt(&master).map_err(|e| fail("grantpt", e))?;
    rustix::pty::unlockpt(&master).map_err(|e| fail("unlockpt", e))?;
    let slave = rustix::pty::ioctl_tiocgptpeer(
        &master,
        OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC,
    )
    .map_err(|e| fail("opening the slave", e))?;
    if let Some((rows, cols)) = size {
        set_size(&slave, rows, cols);
    }
    Ok((master, slave))
}

/// Sets a terminal's size.
pub fn set_size(fd: impl AsFd, rows: u16, cols: u16) {
    let size = rustix::termios::Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let _ = rustix::termios::tcsetwinsize(fd, size);
}

/// A terminal's size: (rows, columns).
pub fn size(fd: impl AsFd) -> Option<(u16, u16)> {
    let ws = rustix::termios::tcgetwinsize(fd).ok()?;
    Some((ws.ws_row, ws.ws_col))
}

/// Sends `master` to the client listening at `socket`, as runc does.
pub fn send_master(socket: &Path, master: &OwnedFd) -> Result<(), String> {
    let fail = |e: rustix::io::Errno| format!("console socket {}: {e}", socket.display());
    let fd = rustix::net::socket_with(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::STREAM,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )
    .map_err(fail)?;
    let addr = SocketAddrUnix::new(socket).map_err(fail)?;
    rustix::net::connect(&fd, &addr).map_err(fail)?;
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let fds = [master.as_fd()];
    control.push(SendAncillaryMessage::ScmRights(&fds));
    // runc sends the terminal's name with it; clients only take the descriptor.
    let iov = [std::io::IoSlice::new(b"/dev/ptmx")];
    rustix::net::sendmsg(&fd, &iov, &mut control, SendFlags::NOSIGNAL).map_err(fail)?;
    Ok(())
}

/// Makes `slave` the calling process's controlling terminal in a new session, so that the
/// host tells it of size changes (SIGWINCH) made on the master.
pub fn become_controlling(slave: &OwnedFd) -> Result<(), String> {
    let _ = rustix::process::setsid();
    rustix::process::ioctl_tiocsctty(slave)
        .map_err(|e| format!("making the terminal controlling: {e}"))
}

/// A console socket of runsc-rs's own, for `run` in the foreground with a terminal: it
/// takes the master the sandbox sends, as a client would.
pub struct ConsoleSocket {
    pub path: std::path::PathBuf,
    listener: OwnedFd,
}

impl ConsoleSocket {
    /// Listens at a new path under the temporary directory.
    pub fn new() -> Result<ConsoleSocket, String> {
        let path =
            std::env::temp_dir().join(format!("runsc-rs-console-{}.sock", std::process::id()));
        let fail = |e: rustix::io::Errno| format!("console socket {}: {e}", path.display());
        let _ = std::fs::remove_file(&path);
        let listener = rustix::net::socket_with(
            rustix::net::AddressFamily::UNIX,
            rustix::net::SocketType::STREAM,
            rustix::net::SocketFlags::CLOEXEC,
            None,
        )
        .map_err(fail)?;
        rustix::net::bind(&listener, &SocketAddrUnix::new(&path).map_err(fail)?).map_err(fail)?;
        rustix::net::listen(&listener, 1).map_err(fail)?;
        Ok(ConsoleSocket { path, listener })
    }

    /// Waits for the master.
    pub fn receive(&self) -> Result<OwnedFd, String> {
        let fail = |e: rustix::io::Errno| format!("receiving the terminal: {e}");
        let conn = rustix::net::accept_with(&self.listener, rustix::net::SocketFlags::CLOEXEC)
            .map_err(fail)?;
        let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = rustix::net::RecvAncillaryBuffer::new(&mut space);
        let mut name = [0u8; 4096];
        let mut iov = [std::io::IoSliceMut::new(&mut name)];
        rustix::net::recvmsg(
            &conn,
            &mut iov,
            &mut control,
            rustix::net::RecvFlags::CMSG_CLOEXEC,
        )
        .map_err(fail)?;
        for message in control.drain() {
            if let rustix::net::RecvAncillaryMessage::ScmRights(mut fds) = message {
                if let Some(fd) = fds.next() {
                    return Ok(fd);
                }
            }
        }
        Err("the sandbox sent no terminal".into())
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
