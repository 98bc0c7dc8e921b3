//! Host terminals and runsc-rs's own signals: a host terminal a guest process runs on (for
//! `do`, runsc-rs's own when it runs in the foreground of one, which becomes the guest's
//! console) is put in raw mode while the Sentry runs its line discipline; and SIGINT,
//! SIGTERM and SIGHUP sent to runsc-rs go to the guest's init, SIGWINCH resizes the console.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::{SigSet, Signal};
use nix::sys::termios::{self, SetArg, Termios};
use sentry::fs::tty::ConsoleSetup;
use sentry::Kernel;

/// The signals runsc-rs passes on to the guest rather than dying of them.
const FORWARDED: [Signal; 3] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP];

fn stdin() -> BorrowedFd<'static> {
    static STDIN: std::sync::LazyLock<std::io::Stdin> = std::sync::LazyLock::new(std::io::stdin);
    STDIN.as_fd()
}

/// Blocks the forwarded signals and SIGWINCH in the calling thread, so that every thread
/// started afterwards has them blocked too and only [`forward_signals`]' thread takes
/// them. Call before any thread starts. (The gofers inherit the mask: a Ctrl-C on a cooked
/// terminal, sent to runsc-rs's whole process group, does not kill them; the stubs clear
/// their masks.)
pub fn block_signals() {
    let _ = signal_set().thread_block();
}

fn signal_set() -> SigSet {
    let mut set = SigSet::empty();
    for sig in FORWARDED {
        set.add(sig);
    }
    set.add(Signal::SIGWINCH);
    set
}

/// A host terminal in raw mode; dropping it puts back the settings it had.
pub struct HostTerminal {
    fd: OwnedFd,
    saved: Termios,
    /// runsc-rs's stderr is this terminal: the logger writes raw-mode line ends meanwhile.
    stderr_raw: bool,
}

impl HostTerminal {
    /// If standard input is a terminal and runsc-rs is in its foreground process group,
    /// makes it raw ([`HostTerminal::make_raw`]) for the guest's console.
    pub fn take() -> Option<(HostTerminal, ConsoleSetup)> {
        let fd = stdin();
        if !nix::unistd::isatty(fd).unwrap_or(false) {
            return None;
        }
        // In the background a change of settings would stop runsc-rs with SIGTTOU.
        if nix::unistd::tcgetpgrp(fd).ok()? != nix::unistd::getpgrp() {
            return None;
        }
        let (mut terminal, setup) = HostTerminal::make_raw(fd).ok()?;
        terminal.stderr_raw = sentry::fs::tty::same_terminal(fd, std::io::stderr().as_fd());
        crate::logger::set_raw_stderr(terminal.stderr_raw);
        Some((terminal, setup))
    }

    /// Makes terminal `fd` raw (cfmakeraw: no echo, no line editing, no signal
    /// characters, no output processing: the Sentry does all that) and returns it with
    /// what the guest's terminal starts from: the settings it had and its size.
    pub fn make_raw(fd: BorrowedFd<'_>) -> nix::Result<(HostTerminal, ConsoleSetup)> {
        let saved = termios::tcgetattr(fd)?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(fd, SetArg::TCSADRAIN, &raw)?;
        let setup = ConsoleSetup {
            termios: guest_termios(&saved),
            winsize: host_winsize(fd).unwrap_or_default(),
        };
        let fd = fd.try_clone_to_owned().map_err(|e| {
            let _ = termios::tcsetattr(fd, SetArg::TCSANOW, &saved);
            nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EBADF))
        })?;
        let stderr_raw = false;
        Ok((
            HostTerminal {
                fd,
                saved,
                stderr_raw,
            },
            setup,
        ))
    }
}

impl Drop for HostTerminal {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(self.fd.as_fd(), SetArg::TCSANOW, &self.saved);
        if self.stderr_raw {
            crate::logger::set_raw_stderr(false);
        }
    }
}

/// The kernel's `struct termios` of host settings `t`.
fn guest_termios(t: &Termios) -> sentry::abi::Termios {
    let raw: libc::termios = t.clone().into();
    let mut cc = [0u8; 19];
    for (dst, src) in cc.iter_mut().zip(raw.c_cc.iter()) {
        *dst = *src;
    }
    sentry::abi::Termios {
        iflag: raw.c_iflag,
        oflag: raw.c_oflag,
        cflag: raw.c_cflag,
        lflag: raw.c_lflag,
        line: raw.c_line,
        cc,
    }
}

/// The size of host terminal `fd`.
pub fn host_winsize(fd: BorrowedFd<'_>) -> Option<sentry::abi::Winsize> {
    let ws = rustix::termios::tcgetwinsize(fd).ok()?;
    Some(sentry::abi::Winsize {
        row: ws.ws_row,
        col: ws.ws_col,
        xpixel: ws.ws_xpixel,
        ypixel: ws.ws_ypixel,
    })
}

/// Starts the thread that takes the signals [`block_signals`] blocked: SIGINT, SIGTERM
/// and SIGHUP go to the guest's init, as if sent from outside the sandbox (Docker's and
/// runc's signal forwarding); SIGWINCH gives the console the host terminal's new size.
/// The console's size is read from `console` (runsc-rs's stdin if None).
pub fn forward_signals(
    kernel: Arc<Kernel>,
    console: Option<std::os::fd::OwnedFd>,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("host-signals".into())
        .spawn(move || {
            let set = signal_set();
            loop {
                let Ok(sig) = set.wait() else { continue };
                if sig == Signal::SIGWINCH {
                    let size = host_winsize(console.as_ref().map_or(stdin(), |fd| fd.as_fd()));
                    if let (Some(console), Some(size)) = (kernel.console(), size) {
                        console.set_winsize(size);
                    }
                    continue;
                }
                // A signal that comes while init is still being made waits for it a while.
                for _ in 0..200 {
                    if kernel.signal_init(sig as i32) {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        })
        .map(drop)
}
