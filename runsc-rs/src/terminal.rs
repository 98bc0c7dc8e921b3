//! runsc-rs's own terminal and signals: when runsc-rs runs in the foreground of a terminal,
//! that terminal becomes the guest's console (the Sentry runs the line discipline, so the
//! host terminal is put in raw mode until runsc-rs ends); and SIGINT, SIGTERM and SIGHUP
//! sent to runsc-rs go to the guest's init, SIGWINCH resizes the console.

use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::{SigSet, Signal};
use nix::sys::termios::{self, SetArg, Termios};
use sentry::fs::tty::ConsoleSetup;
use sentry::Kernel;

/// The signals runsc-rs passes on to the guest rather than dying of them.
const FORWARDED: [Signal; 3] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP];

fn stdin() -> BorrowedFd<'static> {
    sentry::fs::host::HostStdio::In.host_fd()
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

/// runsc-rs's terminal in raw mode; dropping it puts back the settings it had.
pub struct HostTerminal {
    saved: Termios,
}

impl HostTerminal {
    /// If standard input is a terminal and runsc-rs is in its foreground process group,
    /// makes it raw (cfmakeraw: no echo, no line editing, no signal characters, no output
    /// processing: the Sentry does all that) and returns it with what the guest's console
    /// starts from: the settings it had and its size.
    pub fn take() -> Option<(HostTerminal, ConsoleSetup)> {
        let fd = stdin();
        if !nix::unistd::isatty(fd).unwrap_or(false) {
            return None;
        }
        // In the background a change of settings would stop runsc-rs with SIGTTOU.
        if nix::unistd::tcgetpgrp(fd).ok()? != nix::unistd::getpgrp() {
            return None;
        }
        let saved = termios::tcgetattr(fd).ok()?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(fd, SetArg::TCSADRAIN, &raw).ok()?;
        crate::logger::set_raw_stderr(sentry::fs::tty::is_host_terminal(
            sentry::fs::host::HostStdio::Err,
        ));
        let setup = ConsoleSetup {
            termios: guest_termios(&saved),
            winsize: host_winsize().unwrap_or_default(),
        };
        Some((HostTerminal { saved }, setup))
    }
}

impl Drop for HostTerminal {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(stdin().as_fd(), SetArg::TCSANOW, &self.saved);
        crate::logger::set_raw_stderr(false);
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

fn host_winsize() -> Option<sentry::abi::Winsize> {
    let ws = rustix::termios::tcgetwinsize(stdin()).ok()?;
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
pub fn forward_signals(kernel: Arc<Kernel>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("host-signals".into())
        .spawn(move || {
            let set = signal_set();
            loop {
                let Ok(sig) = set.wait() else { continue };
                if sig == Signal::SIGWINCH {
                    if let (Some(console), Some(size)) = (&kernel.console, host_winsize()) {
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
