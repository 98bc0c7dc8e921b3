//! The terminal ioctls (Linux's tty_ioctl, tty_mode_ioctl, n_tty_ioctl and the pty
//! driver's) on a pty's master or slave and on the console: settings, window size, job
//! control (controlling terminal, foreground process group), queues, and the pty pair's
//! own (number, lock, opening the peer).
//!
//! Requests on a pty's master that concern the terminal act on its slave side, as Linux's
//! `real_tty`: there is one set of settings, one size and one foreground group per pair.

use std::sync::Arc;

use crate::abi::*;
use crate::fs::tty::{self, ldisc, TtyFile};
use crate::kernel::signals::SIGTTOU;
use crate::kernel::Task;
use crate::vfs::{OpenFile, O_ACCMODE, O_CLOEXEC, O_NONBLOCK};

/// Serves `request` on `file`, a terminal file (`tf`).
pub fn ioctl(t: &mut Task, file: &OpenFile, tf: &TtyFile, request: u64, arg: u64) -> SysResult {
    let tty = &tf.tty;
    // A hung-up slave file answers nothing (Linux's hung_up_tty_ioctl).
    if !tf.master && tty.hung_up() {
        return Err(if request == TIOCSPGRP {
            Errno::ENOTTY
        } else {
            Errno::EIO
        });
    }
    let processes = &t.kernel.processes;
    let pid = t.tg.pid;
    let is_ctty = || processes.ctty_of(pid).is_some_and(|c| Arc::ptr_eq(&c, tty));
    let master_only = || {
        if tf.master {
            Ok(())
        } else {
            Err(Errno::ENOTTY)
        }
    };
    match request {
        TCGETS => t.mm.write_obj(arg, &tty.termios().termios)?,
        TCGETS2 => t.mm.write_obj(arg, &tty.termios())?,
        TCSETS | TCSETSW | TCSETSF => {
            tty.job_control(SIGTTOU)?;
            let termios: Termios = t.mm.read_obj(arg)?;
            let mut new = tty.termios();
            new.termios = termios;
            tty.set_termios(ldisc::with_speeds(new, false), request == TCSETSF);
        }
        TCSETS2 | TCSETSW2 | TCSETSF2 => {
            tty.job_control(SIGTTOU)?;
            let new: Termios2 = t.mm.read_obj(arg)?;
            tty.set_termios(ldisc::with_speeds(new, true), request == TCSETSF2);
        }
        TIOCGWINSZ => t.mm.write_obj(arg, &tty.winsize())?,
        TIOCSWINSZ => {
            let winsize: Winsize = t.mm.read_obj(arg)?;
            tty.set_winsize(winsize);
        }
        // Only through the master, or of one's own controlling terminal.
        TIOCGPGRP => {
            if !tf.master && !is_ctty() {
                return Err(Errno::ENOTTY);
            }
            t.mm.write_obj(arg, &tty.foreground().unwrap_or(0))?;
        }
        TIOCGSID => {
            if !tf.master && !is_ctty() {
                return Err(Errno::ENOTTY);
            }
            let sid = tty.session().ok_or(Errno::ENOTTY)?;
            t.mm.write_obj(arg, &sid)?;
        }
        TIOCSPGRP => {
            match tty.job_control(SIGTTOU) {
                Err(Errno::EIO) => return Err(Errno::ENOTTY),
                other => other?,
            }
            let sid = processes.sid_of(pid)?;
            if !is_ctty() || tty.session() != Some(sid) {
                return Err(Errno::ENOTTY);
            }
            let pgrp: i32 = t.mm.read_obj(arg)?;
            if pgrp < 0 {
                return Err(Errno::EINVAL);
            }
            processes.group_in_session(pgrp, sid)?;
            tty.set_foreground(pgrp);
        }
        TIOCSCTTY => {
            // Linux lets only a reader take a terminal, but CAP_SYS_ADMIN may; with arg 1
            // CAP_SYS_ADMIN also takes it from another session (tiocsctty).
            let root = t.creds.capable(CAP_SYS_ADMIN);
            if !file.readable() && !root {
                return Err(Errno::EPERM);
            }
            tty::make_controlling(processes, pid, tty, arg as i32 == 1, root)?;
        }
        TIOCNOTTY => {
            if !is_ctty() {
                return Err(Errno::ENOTTY);
            }
            if processes.sid_of(pid)? == pid {
                tty.disassociate(processes, false);
            } else {
                processes.set_ctty(pid, None);
            }
        }
        FIONREAD => t.mm.write_obj(arg, &(tty.queued(tf.master) as i32))?,
        // What the slave writes is with the master at once; the master's input is taken at
        // once: nothing waits to be sent.
        TIOCOUTQ => t.mm.write_obj(arg, &0i32)?,
        TCFLSH => {
            tty.job_control(SIGTTOU)?;
            let (input, output) = match arg as u32 {
                0 => (true, false),
                1 => (false, true),
                2 => (true, true),
                _ => return Err(Errno::EINVAL),
            };
            // The master's input is what the slave wrote.
            if tf.master {
                tty.flush(false, input);
            } else {
                tty.flush(input, output);
            }
        }
        // Flow control and breaks are accepted: nothing is held back or sent on a line
        // here. tcdrain is TCSBRK 1: output is never pending.
        TCXONC => {
            tty.job_control(SIGTTOU)?;
            if arg as u32 > 3 {
                return Err(Errno::EINVAL);
            }
        }
        TCSBRK | TCSBRKP => tty.job_control(SIGTTOU)?,
        TIOCGETD => t.mm.write_obj(arg, &0i32)?,
        TIOCSETD => {
            // Only N_TTY is here.
            let disc: i32 = t.mm.read_obj(arg)?;
            if disc != 0 {
                return Err(Errno::EINVAL);
            }
        }
        TIOCEXCL | TIOCNXCL => {}
        TIOCGEXCL => t.mm.write_obj(arg, &0i32)?,
        // Faking input needs CAP_SYS_ADMIN on Linux without legacy TIOCSTI.
        TIOCSTI => return Err(Errno::EIO),
        TIOCGPTN => {
            master_only()?;
            let index = tty.index.ok_or(Errno::ENOTTY)?;
            t.mm.write_obj(arg, &index)?;
        }
        TIOCSPTLCK => {
            master_only()?;
            let lock: i32 = t.mm.read_obj(arg)?;
            tty.set_locked(lock != 0);
        }
        TIOCGPTLCK => {
            master_only()?;
            t.mm.write_obj(arg, &i32::from(tty.locked()))?;
        }
        TIOCGPTPEER => {
            master_only()?;
            return open_peer(t, tf, arg as u32);
        }
        _ => return Err(Errno::ENOTTY),
    }
    Ok(0)
}

/// TIOCGPTPEER: opens the slave of the pty whose master is `tf` with open flags `flags`,
/// without going through a path (Linux's ptm_open_peer), and returns its descriptor.
fn open_peer(t: &Task, tf: &TtyFile, flags: u32) -> SysResult {
    const KNOWN: u32 = O_ACCMODE | O_NONBLOCK | O_CLOEXEC | tty::devpts::O_NOCTTY;
    let flags = flags & KNOWN;
    let file = tty::devpts::open_peer(t, &tf.tty, flags)?;
    let fd = t.fds.install(
        file,
        flags & O_CLOEXEC != 0,
        0,
        super::file::nofile_limit(t),
    )?;
    Ok(fd as u64)
}
