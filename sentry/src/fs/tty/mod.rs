//! Terminals: a line discipline ([`ldisc`]) with the job control around it, behind two
//! kinds of driver. A pseudo-terminal (devpts, `/dev/ptmx`) connects its slave to a master
//! that a program holds (a terminal emulator, sshd, script); a host terminal connects the
//! guest to a terminal on the host (runsc-rs's own for `do`, a container's pty for the OCI
//! runtime), which the caller puts in raw mode so that every key reaches this line
//! discipline and Ctrl-C becomes SIGINT for the guest's foreground process group. The
//! host terminal of the sandbox's init is the console (/dev/console).
//!
//! A terminal may be the controlling terminal of one session (`State::session`), whose
//! foreground process group (`State::pgrp`) gets the signals its characters raise and may
//! read it; processes of other groups of that session that read it (or write it, with
//! TOSTOP) get SIGTTIN (SIGTTOU), as Linux's __tty_check_change does. Which terminal a
//! process has is kept with the process (`kernel::processes`).

pub mod devpts;
pub mod ldisc;

use std::collections::VecDeque;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use crate::abi::*;
use crate::kernel::signals::{self, SigInfo, Target, SIGCONT, SIGHUP, SIGTTIN, SIGTTOU, SIGWINCH};
use crate::kernel::Kernel;
use crate::vfs::{FileOps, SeekMode, O_NONBLOCK};
use crate::waiter::{WaitQueue, Waker};
use ldisc::LineDiscipline;

/// What the slave side of a pty may have written before the master reads it; writers wait
/// past this (Linux's tty buffer limit is of this order).
const OUTPUT_MAX: usize = 64 * 1024;
/// Echo is dropped past this, when the master reads nothing (Linux drops echoes too once
/// its echo buffer fills).
const ECHO_MAX: usize = OUTPUT_MAX + 4096;

/// One terminal. `state` guards everything that changes; `queue` is notified whenever a
/// reader, writer or poller of either side may find something new.
pub struct Tty {
    /// The pty's number (its /dev/pts name); None for the console.
    pub index: Option<u32>,
    kernel: Weak<Kernel>,
    state: Mutex<State>,
    queue: WaitQueue,
    /// The host terminal behind it; None for a pty.
    host: Option<HostTerminal>,
    /// The /dev/pts node's permissions and owner (chmod, chown) and its times.
    node: Mutex<NodeAttr>,
}

/// Who owns a pty's /dev/pts node.
#[derive(Debug, Clone, Copy)]
pub struct NodeAttr {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub time: Timespec,
}

#[derive(Debug)]
struct State {
    ldisc: LineDiscipline,
    winsize: Winsize,
    /// The session this is the controlling terminal of, and its foreground process group.
    session: Option<i32>,
    pgrp: Option<i32>,
    /// Pty: what the slave side wrote (after output processing) and echoed, for the master.
    output: VecDeque<u8>,
    /// Pty: the master is open (the pair exists and /dev/pts/N is listed).
    master_open: bool,
    /// The terminal hung up (its master closed, the host terminal went away): the slave
    /// side reads end of file and writes fail with EIO.
    hung_up: bool,
    /// Pty: the slave cannot be opened until unlockpt (TIOCSPTLCK).
    locked: bool,
    /// Open files of the slave side.
    slaves: usize,
    /// Pty: the last slave file closed (Linux's TTY_OTHER_CLOSED on the master): master
    /// reads fail with EIO once the output is drained.
    slave_closed: bool,
}

/// A terminal on the host: where its keys are read from and its output goes (two
/// descriptors of one terminal, or one descriptor twice); `lock` keeps echoes and writes in
/// order.
struct HostTerminal {
    input: Arc<OwnedFd>,
    output: OwnedFd,
    lock: Mutex<()>,
    /// The device number the guest sees: /dev/console's for the console, else the host's.
    rdev: u64,
}

impl HostTerminal {
    fn write_all(&self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match nix::unistd::write(&self.output, bytes) {
                Ok(0) => return,
                Ok(n) => bytes = bytes.get(n..).unwrap_or_default(),
                Err(nix::errno::Errno::EINTR) => {}
                // The host terminal is gone or refuses: the guest's output has nowhere to go.
                Err(_) => return,
            }
        }
    }
}

/// A host terminal's starting point: its settings before the caller made it raw (the guest
/// sees those) and its size.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConsoleSetup {
    pub termios: Termios,
    pub winsize: Winsize,
}

fn now() -> Timespec {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(Timespec::from_duration)
        .unwrap_or_default()
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Waits on `queue` until `step` says it is done; `step` runs with nothing locked and
/// returns None to wait (until `deadline`, if it gives one, then it is asked again). EINTR
/// when a signal comes first.
fn wait_on<R>(
    queue: &WaitQueue,
    mut step: impl FnMut(Instant) -> Result<R, Option<Instant>>,
) -> Result<R, Errno> {
    let waker = Waker::current();
    let _subscription = queue.subscribe(&waker);
    loop {
        match step(Instant::now()) {
            Ok(result) => return Ok(result),
            Err(deadline) => {
                if waker.interrupted() {
                    return Err(Errno::EINTR);
                }
                waker.sleep(deadline);
            }
        }
    }
}

impl Tty {
    fn new(
        index: Option<u32>,
        kernel: Weak<Kernel>,
        ldisc: LineDiscipline,
        winsize: Winsize,
        host: Option<HostTerminal>,
        node: NodeAttr,
    ) -> Arc<Tty> {
        Arc::new(Tty {
            index,
            kernel,
            state: Mutex::new(State {
                ldisc,
                winsize,
                session: None,
                pgrp: None,
                output: VecDeque::new(),
                master_open: index.is_some(),
                hung_up: false,
                locked: index.is_some(),
                slaves: 0,
                slave_closed: false,
            }),
            queue: WaitQueue::default(),
            host,
            node: Mutex::new(node),
        })
    }

    /// A new pty pair number `index`, locked until unlockpt, with the master open: returns
    /// the master's file.
    fn new_pty(index: u32, kernel: Weak<Kernel>, uid: u32, gid: u32) -> Arc<TtyFile> {
        let node = NodeAttr {
            mode: crate::vfs::S_IFCHR | 0o620,
            uid,
            gid,
            time: now(),
        };
        let tty = Tty::new(
            Some(index),
            kernel,
            LineDiscipline::default(),
            Winsize::default(),
            None,
            node,
        );
        Arc::new(TtyFile { tty, master: true })
    }

    /// A terminal over a host terminal that the caller made raw: keys are read from `input`
    /// ([`Tty::start_host_input`]), output is written to `output` (a descriptor of the same
    /// terminal). The `console` is /dev/console (5:1); another shows the host's device
    /// number.
    pub fn new_host(
        kernel: Weak<Kernel>,
        setup: &ConsoleSetup,
        input: OwnedFd,
        output: OwnedFd,
        console: bool,
    ) -> Arc<Tty> {
        let termios = ldisc::with_speeds(
            Termios2 {
                termios: setup.termios,
                ispeed: 0,
                ospeed: 0,
            },
            false,
        );
        let node = NodeAttr {
            mode: crate::vfs::S_IFCHR | 0o600,
            uid: 0,
            gid: 0,
            time: now(),
        };
        let rdev = match nix::sys::stat::fstat(output.as_fd()) {
            Ok(st) if !console => st.st_rdev,
            _ => devpts::CONSOLE,
        };
        let host = HostTerminal {
            input: Arc::new(input),
            output,
            lock: Mutex::new(()),
            rdev,
        };
        Tty::new(
            None,
            kernel,
            LineDiscipline::new(termios),
            setup.winsize,
            Some(host),
            node,
        )
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Whether it is a host terminal rather than a pty.
    pub fn is_host(&self) -> bool {
        self.host.is_some()
    }

    /// The device number its slave side has: /dev/pts/N (136:N), /dev/console (5:1), or
    /// the host's for another host terminal.
    pub fn rdev(&self) -> u64 {
        match (self.index, &self.host) {
            (Some(n), _) => devpts::pts_rdev(n),
            (None, Some(host)) => host.rdev,
            (None, None) => devpts::CONSOLE,
        }
    }

    pub fn node_attr(&self) -> NodeAttr {
        *lock(&self.node)
    }

    pub fn set_node_attr(&self, attr: NodeAttr) {
        *lock(&self.node) = attr;
    }

    /// Whether the master is open (a pty whose master closed has no /dev/pts name).
    pub fn master_open(&self) -> bool {
        self.lock().master_open
    }

    /// Opens a file of the slave side (EIO if the pair is gone or still locked).
    pub fn open_slave(self: &Arc<Self>) -> Result<Arc<TtyFile>, Errno> {
        let mut s = self.lock();
        if self.index.is_some() && (!s.master_open || s.locked) {
            return Err(Errno::EIO);
        }
        s.slaves += 1;
        s.slave_closed = false;
        drop(s);
        self.queue.notify();
        Ok(Arc::new(TtyFile {
            tty: self.clone(),
            master: false,
        }))
    }

    // Settings (the ioctls).

    pub fn termios(&self) -> Termios2 {
        self.lock().ldisc.termios
    }

    /// TCSETS and friends; `flush` (TCSETSF) drops pending input first.
    pub fn set_termios(&self, termios: Termios2, flush: bool) {
        let mut s = self.lock();
        if flush {
            s.ldisc.flush_input();
        }
        s.ldisc.set_termios(termios);
        drop(s);
        self.queue.notify();
    }

    pub fn winsize(&self) -> Winsize {
        self.lock().winsize
    }

    /// TIOCSWINSZ: a new size; SIGWINCH to the foreground process group if it changed.
    pub fn set_winsize(&self, winsize: Winsize) {
        let mut s = self.lock();
        if s.winsize == winsize {
            return;
        }
        s.winsize = winsize;
        let pgrp = s.pgrp;
        drop(s);
        if let Some(pgrp) = pgrp {
            self.signal_group(pgrp, SIGWINCH);
        }
    }

    /// TCFLSH: drops pending input (`input`) and output not yet read by the master.
    pub fn flush(&self, input: bool, output: bool) {
        let mut s = self.lock();
        if input {
            s.ldisc.flush_input();
        }
        if output {
            s.output.clear();
        }
        drop(s);
        self.queue.notify();
    }

    /// FIONREAD: what a read of the master (`master`) or of the slave could take now.
    pub fn queued(&self, master: bool) -> usize {
        let s = self.lock();
        if master {
            s.output.len()
        } else {
            s.ldisc.readable()
        }
    }

    pub fn locked(&self) -> bool {
        self.lock().locked
    }

    pub fn set_locked(&self, locked: bool) {
        self.lock().locked = locked;
    }

    /// Whether the slave side has hung up.
    pub fn hung_up(&self) -> bool {
        self.lock().hung_up
    }

    /// The session it controls and that session's foreground process group.
    pub fn session(&self) -> Option<i32> {
        self.lock().session
    }

    pub fn foreground(&self) -> Option<i32> {
        self.lock().pgrp
    }

    pub fn set_foreground(&self, pgrp: i32) {
        self.lock().pgrp = Some(pgrp);
    }

    /// Makes it the controlling terminal of session `sid` with `pgrp` in the foreground
    /// (Linux's __proc_set_tty; the process side is the caller's business).
    pub fn attach(&self, sid: i32, pgrp: i32) {
        let mut s = self.lock();
        s.session = Some(sid);
        s.pgrp = Some(pgrp);
    }

    /// It stops being anyone's controlling terminal (Linux's disassociate_ctty, for the
    /// session leader's exit or TIOCNOTTY): the foreground group gets SIGHUP, and SIGCONT
    /// unless the leader is exiting, and no process of the session keeps it.
    pub fn disassociate(&self, processes: &crate::kernel::processes::ProcessTable, exiting: bool) {
        let (session, pgrp) = {
            let mut s = self.lock();
            (s.session.take(), s.pgrp.take())
        };
        if let Some(pgrp) = pgrp {
            self.signal_group(pgrp, SIGHUP);
            if !exiting {
                self.signal_group(pgrp, SIGCONT);
            }
        }
        if let Some(sid) = session {
            processes.clear_ctty(sid, self);
        }
    }

    /// The terminal hangs up (its master closed, the host terminal went away; Linux's
    /// __tty_hangup): its slave files read end of file and fail writes with EIO, the session
    /// loses it, and the session leader gets SIGHUP and SIGCONT.
    fn hang_up(&self) {
        let session = {
            let mut s = self.lock();
            if s.hung_up {
                return;
            }
            s.hung_up = true;
            s.pgrp = None;
            s.session.take()
        };
        self.queue.notify();
        let (Some(sid), Some(kernel)) = (session, self.kernel.upgrade()) else {
            return;
        };
        if let Some(leader) = kernel.processes.clear_ctty(sid, self) {
            for sig in [SIGHUP, SIGCONT] {
                let info = SigInfo::new(sig, signals::SI_KERNEL);
                let _ = signals::send(&leader, Target::Process, info);
            }
            kernel.processes.continued(&leader);
        }
    }

    /// Sends `sig` to every process of group `pgrp` as the kernel (kill_pgrp with priv):
    /// as for any process, init included (`signals::send`).
    fn signal_group(&self, pgrp: i32, sig: i32) {
        let Some(kernel) = self.kernel.upgrade() else {
            return;
        };
        for tg in kernel.processes.group(pgrp) {
            let _ = signals::send(&tg, Target::Process, SigInfo::new(sig, signals::SI_KERNEL));
            if sig == SIGCONT {
                kernel.processes.continued(&tg);
            }
        }
    }

    /// Job control for the calling process using this terminal (Linux's
    /// __tty_check_change): if it is its controlling terminal and its process group is not
    /// the foreground one, its group gets `sig` and the call is to be restarted once the
    /// group runs again (EINTR here). If the process blocks or ignores `sig`, a read fails
    /// with EIO and other uses go ahead; an orphaned group gets EIO, since nobody would
    /// continue it.
    pub fn job_control(&self, sig: i32) -> Result<(), Errno> {
        let (Some(current), Some(kernel)) = (crate::kernel::current(), self.kernel.upgrade())
        else {
            return Ok(());
        };
        let processes = &kernel.processes;
        let pid = current.tg.pid;
        let ours = processes
            .ctty_of(pid)
            .is_some_and(|tty| std::ptr::eq(Arc::as_ptr(&tty), self));
        if !ours {
            return Ok(());
        }
        let Ok(pgrp) = processes.pgid_of(pid) else {
            return Ok(());
        };
        match self.foreground() {
            Some(fg) if fg != pgrp => {}
            _ => return Ok(()),
        }
        let ignored = current
            .tg
            .actions()
            .get((sig - 1) as usize)
            .is_some_and(|a| a.handler == signals::SIG_IGN);
        let blocked = current
            .tg
            .signals()
            .threads
            .get(&current.tid)
            .is_some_and(|t| t.mask & sig_bit(sig) != 0);
        if ignored || blocked {
            return if sig == SIGTTIN {
                Err(Errno::EIO)
            } else {
                Ok(())
            };
        }
        if processes.is_orphaned_pgrp(pgrp) {
            return Err(Errno::EIO);
        }
        self.signal_group(pgrp, sig);
        Err(Errno::EINTR)
    }

    // The slave side (and the console): what the guest's programs read and write.

    /// read(2) of the slave side: canonical lines, or as VMIN and VTIME say.
    fn read_slave(&self, buf: &mut [u8], flags: u32) -> Result<usize, Errno> {
        self.job_control(SIGTTIN)?;
        let nonblock = flags & O_NONBLOCK != 0;
        // The VTIME timer: since the wait began (VMIN 0) or since the last byte came.
        let mut timer: Option<(usize, Instant)> = None;
        let n = wait_on(&self.queue, |now| {
            let mut s = self.lock();
            if s.hung_up {
                return Ok(Ok(0));
            }
            let available = s.ldisc.readable();
            if s.ldisc.canonical() {
                return if s.ldisc.can_read(1) {
                    Ok(Ok(s.ldisc.read(buf)))
                } else if nonblock {
                    Ok(Err(Errno::EAGAIN))
                } else {
                    Err(None)
                };
            }
            // Linux's n_tty_read: VMIN 0 and VTIME 0 never wait; otherwise a read waits for
            // VMIN bytes (at most what it asked for), and VTIME bounds the wait (VMIN 0) or
            // the pause between bytes once the first came.
            let (min, time) = s.ldisc.min_time();
            let want = (min as usize).min(buf.len()).max(1);
            if (min == 0 && time == 0) || available >= want || (nonblock && available > 0) {
                return Ok(Ok(s.ldisc.read(buf)));
            }
            if nonblock {
                return Ok(Err(Errno::EAGAIN));
            }
            if time == 0 || (min > 0 && available == 0) {
                return Err(None);
            }
            let deadline = match timer {
                Some((seen, deadline)) if min == 0 || seen == available => deadline,
                _ => now + Duration::from_millis(100 * u64::from(time)),
            };
            timer = Some((available, deadline));
            if now >= deadline {
                return Ok(Ok(s.ldisc.read(buf)));
            }
            Err(Some(deadline))
        })??;
        self.queue.notify();
        Ok(n)
    }

    /// write(2) of the slave side: output processing, then to the master or the host.
    fn write_slave(&self, buf: &[u8], flags: u32) -> Result<usize, Errno> {
        if self.lock().ldisc.tostop() {
            self.job_control(SIGTTOU)?;
        }
        if let Some(host) = &self.host {
            let mut s = self.lock();
            if s.hung_up {
                return Err(Errno::EIO);
            }
            let mut out = Vec::with_capacity(buf.len() + buf.len() / 8);
            s.ldisc.output(buf, &mut out);
            let _order = lock(&host.lock);
            drop(s);
            host.write_all(&out);
            return Ok(buf.len());
        }
        let nonblock = flags & O_NONBLOCK != 0;
        let mut done = 0;
        let result = wait_on(&self.queue, |_| {
            let mut s = self.lock();
            if s.hung_up {
                return Ok(Err(Errno::EIO));
            }
            let before = done;
            let mut out = Vec::new();
            while done < buf.len() && s.output.len() < OUTPUT_MAX {
                let end = (done + 512).min(buf.len());
                out.clear();
                s.ldisc.output(&buf[done..end], &mut out);
                s.output.extend(&out);
                done = end;
            }
            if done > before {
                self.queue.notify();
            }
            if done == buf.len() {
                Ok(Ok(()))
            } else if nonblock {
                Ok(Err(Errno::EAGAIN))
            } else {
                Err(None)
            }
        });
        match result.and_then(|r| r) {
            Ok(()) => Ok(done),
            Err(_) if done > 0 => Ok(done),
            Err(e) => Err(e),
        }
    }

    /// Takes keyboard-side input: the master's writes, the host terminal's keys. Waits while
    /// a non-canonical reader's buffer is full (unless `nonblock`); echoes; raises the
    /// signals the input asks for.
    fn receive(&self, buf: &[u8], nonblock: bool) -> Result<usize, Errno> {
        let mut done = 0;
        let result = wait_on(&self.queue, |_| {
            loop {
                let (mut echo, mut raised) = (Vec::new(), Vec::new());
                let (n, pgrp) = {
                    let mut s = self.lock();
                    let rest = buf.get(done..).unwrap_or_default();
                    let n = s.ldisc.receive(rest, &mut echo, &mut raised);
                    (n, s.pgrp)
                };
                done += n;
                // The signal goes before its echo (Linux's n_tty_receive_signal_char), so
                // that whoever sees ^C on the screen finds the job already told.
                if let Some(pgrp) = pgrp {
                    for sig in raised {
                        self.signal_group(pgrp, sig);
                    }
                }
                self.echo(&echo);
                if n > 0 {
                    self.queue.notify();
                }
                if done >= buf.len() {
                    return Ok(Ok(done));
                }
                if n == 0 {
                    break;
                }
            }
            if nonblock {
                Ok(if done > 0 {
                    Ok(done)
                } else {
                    Err(Errno::EAGAIN)
                })
            } else {
                Err(None)
            }
        });
        match result.and_then(|r| r) {
            Err(_) if done > 0 => Ok(done),
            other => other,
        }
    }

    /// Shows echoed input: on the host terminal, or for the master to read.
    fn echo(&self, echo: &[u8]) {
        if echo.is_empty() {
            return;
        }
        match &self.host {
            Some(host) => {
                let _order = lock(&host.lock);
                host.write_all(echo);
            }
            None => {
                let mut s = self.lock();
                let room = ECHO_MAX.saturating_sub(s.output.len());
                s.output.extend(echo.iter().take(room));
            }
        }
    }

    // The master side of a pty.

    /// read(2) of the master: what the slave side wrote and echoed. EIO once the slave side
    /// is closed and nothing is left.
    fn read_master(&self, buf: &mut [u8], flags: u32) -> Result<usize, Errno> {
        let nonblock = flags & O_NONBLOCK != 0;
        let n = wait_on(&self.queue, |_| {
            let mut s = self.lock();
            if !s.output.is_empty() {
                let n = s.output.len().min(buf.len());
                for (dst, src) in buf.iter_mut().zip(s.output.drain(..n)) {
                    *dst = src;
                }
                return Ok(Ok(n));
            }
            if s.slave_closed {
                Ok(Err(Errno::EIO))
            } else if nonblock {
                Ok(Err(Errno::EAGAIN))
            } else {
                Err(None)
            }
        })??;
        self.queue.notify();
        Ok(n)
    }

    /// The master closed: the pair is gone and the slave hangs up (Linux's pty_close).
    fn master_closed(&self) {
        self.lock().master_open = false;
        self.hang_up();
    }

    fn slave_file_closed(&self) {
        let mut s = self.lock();
        s.slaves = s.slaves.saturating_sub(1);
        if s.slaves == 0 {
            s.slave_closed = true;
        }
        drop(s);
        self.queue.notify();
    }

    /// The poll(2) events of the master (`master`) or the slave side.
    fn readiness(&self, master: bool) -> u16 {
        let s = self.lock();
        let mut events = 0;
        if master {
            if !s.output.is_empty() {
                events |= POLLIN | POLLRDNORM;
            }
            if s.slave_closed {
                events |= POLLHUP;
            }
            if s.ldisc.has_room() {
                events |= POLLOUT | POLLWRNORM;
            }
            return events;
        }
        if s.hung_up {
            return POLLIN | POLLOUT | POLLERR | POLLHUP | POLLRDNORM | POLLWRNORM;
        }
        // Linux's n_tty_poll: with VTIME 0, readable once VMIN bytes are there.
        let (min, time) = s.ldisc.min_time();
        let amount = if time == 0 && min > 0 {
            min as usize
        } else {
            1
        };
        if s.ldisc.can_read(amount) {
            events |= POLLIN | POLLRDNORM;
        }
        if self.host.is_some() || s.output.len() < OUTPUT_MAX {
            events |= POLLOUT | POLLWRNORM;
        }
        events
    }

    /// Starts the thread that reads a host terminal's keys into the line discipline until
    /// the host terminal goes away (end of file or an error: the terminal hangs up).
    /// Nothing for a pty.
    pub fn start_host_input(self: &Arc<Self>) -> std::io::Result<()> {
        let Some(host) = &self.host else {
            return Ok(());
        };
        let input = host.input.clone();
        let tty = self.clone();
        std::thread::Builder::new()
            .name("tty-input".into())
            .spawn(move || {
                let mut buf = [0u8; 4096];
                loop {
                    match nix::unistd::read(input.as_fd(), &mut buf) {
                        Ok(0) => break,
                        // Waits until the line discipline took them all.
                        Ok(n) => {
                            let _ = tty.receive(buf.get(..n).unwrap_or_default(), false);
                        }
                        Err(nix::errno::Errno::EINTR) => {}
                        // Someone made the shared descriptor non-blocking: wait for input.
                        Err(nix::errno::Errno::EAGAIN) => {
                            use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
                            let mut fds = [PollFd::new(input.as_fd(), PollFlags::POLLIN)];
                            let _ = poll(&mut fds, PollTimeout::NONE);
                        }
                        Err(_) => break,
                    }
                }
                tty.hang_up();
            })
            .map(drop)
    }
}

/// Makes `tty` the controlling terminal of process `pid` (TIOCSCTTY, or opening a slave),
/// as Linux's tiocsctty: `pid` must lead its session and have no controlling terminal
/// (EPERM); a terminal that controls another session is taken from it only with `steal`
/// by a `privileged` caller (EPERM otherwise). Its own terminal already: nothing to do.
pub fn make_controlling(
    processes: &crate::kernel::processes::ProcessTable,
    pid: i32,
    tty: &Arc<Tty>,
    steal: bool,
    privileged: bool,
) -> Result<(), Errno> {
    let sid = processes.sid_of(pid)?;
    let leader = sid == pid;
    if leader && tty.session() == Some(sid) {
        return Ok(());
    }
    if !leader || processes.ctty_of(pid).is_some() {
        return Err(Errno::EPERM);
    }
    if let Some(other) = tty.session() {
        if !(steal && privileged) {
            return Err(Errno::EPERM);
        }
        processes.clear_ctty(other, tty);
    }
    let pgrp = processes.pgid_of(pid)?;
    processes.set_ctty(pid, Some(tty.clone()));
    tty.attach(sid, pgrp);
    Ok(())
}

impl std::fmt::Debug for Tty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tty").field("index", &self.index).finish()
    }
}

/// An open file of a terminal: the master of a pty, or its slave side (a pty's slave, the
/// console, /dev/tty).
pub struct TtyFile {
    pub tty: Arc<Tty>,
    pub master: bool,
}

impl FileOps for TtyFile {
    fn read(&self, _offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        self.read_stream(buf, 0)
    }

    fn write(&self, _offset: u64, buf: &[u8]) -> Result<usize, Errno> {
        self.write_stream(buf, 0)
    }

    fn seek_mode(&self) -> SeekMode {
        SeekMode::Stream
    }

    fn read_stream(&self, buf: &mut [u8], flags: u32) -> Result<usize, Errno> {
        if self.master {
            self.tty.read_master(buf, flags)
        } else {
            self.tty.read_slave(buf, flags)
        }
    }

    fn write_stream(&self, buf: &[u8], flags: u32) -> Result<usize, Errno> {
        if self.master {
            self.tty.receive(buf, flags & O_NONBLOCK != 0)
        } else {
            self.tty.write_slave(buf, flags)
        }
    }

    fn readiness(&self) -> u16 {
        self.tty.readiness(self.master)
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.tty.queue)
    }

    fn terminal(&self) -> Option<&TtyFile> {
        Some(self)
    }
}

impl Drop for TtyFile {
    fn drop(&mut self) {
        if self.master {
            self.tty.master_closed();
        } else {
            self.tty.slave_file_closed();
        }
    }
}

/// The inode of a host terminal's files that have no name in the sandbox (the standard
/// streams of a process started on a terminal other than the console): a character device
/// with the terminal's number and node attributes.
#[derive(Debug)]
pub struct HostTtyNode {
    pub tty: Weak<Tty>,
}

impl crate::vfs::Inode for HostTtyNode {
    fn attr(&self) -> Result<crate::vfs::Attr, Errno> {
        let tty = self.tty.upgrade().ok_or(Errno::EIO)?;
        let node = tty.node_attr();
        Ok(crate::vfs::Attr {
            mode: node.mode,
            nlink: 1,
            uid: node.uid,
            gid: node.gid,
            rdev: tty.rdev(),
            blksize: 1024,
            atime: node.time,
            mtime: node.time,
            ctime: node.time,
            ..Default::default()
        })
    }

    fn open(self: Arc<Self>, _flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
        let tty = self.tty.upgrade().ok_or(Errno::EIO)?;
        Ok(tty.open_slave()?)
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// Whether host descriptors `a` and `b` are the same terminal.
pub fn same_terminal(a: BorrowedFd<'_>, b: BorrowedFd<'_>) -> bool {
    use nix::sys::stat::fstat;
    let (Ok(a), Ok(b)) = (fstat(a), fstat(b)) else {
        return false;
    };
    let chr = |mode: u32| mode & libc::S_IFMT == libc::S_IFCHR;
    chr(a.st_mode) && chr(b.st_mode) && a.st_rdev == b.st_rdev
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pty pair with no kernel behind it (no signals are sent): (master, slave).
    fn pair() -> (Arc<TtyFile>, Arc<TtyFile>) {
        let master = Tty::new_pty(0, Weak::new(), 0, 0);
        assert_eq!(master.tty.open_slave().err(), Some(Errno::EIO), "locked");
        master.tty.set_locked(false);
        let slave = master.tty.open_slave().unwrap();
        (master, slave)
    }

    #[test]
    fn a_blocked_slave_read_wakes_for_a_line_from_the_master() {
        let (master, slave) = pair();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 16];
            let n = slave.read_stream(&mut buf, 0).unwrap();
            (buf[..n].to_vec(), slave)
        });
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(master.write_stream(b"ab", 0), Ok(2));
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(master.write_stream(b"c\r", 0), Ok(2));
        let (line, slave) = reader.join().unwrap();
        assert_eq!(line, b"abc\n");
        // The echo, with ONLCR.
        let mut buf = [0u8; 16];
        assert_eq!(master.read_stream(&mut buf, O_NONBLOCK), Ok(5));
        assert_eq!(&buf[..5], b"abc\r\n");
        assert_eq!(master.read_stream(&mut buf, O_NONBLOCK), Err(Errno::EAGAIN));
        drop(slave);
    }

    #[test]
    fn closing_either_side_is_seen_by_the_other() {
        let (master, slave) = pair();
        assert_eq!(slave.write_stream(b"x\n", 0), Ok(2));
        drop(slave);
        let mut buf = [0u8; 8];
        assert_eq!(master.read_stream(&mut buf, 0), Ok(3));
        assert_eq!(master.read_stream(&mut buf, 0), Err(Errno::EIO));
        assert_ne!(master.readiness() & POLLHUP, 0);

        let (master, slave) = pair();
        let tty = master.tty.clone();
        drop(master);
        assert!(!tty.master_open());
        assert_eq!(slave.read_stream(&mut buf, 0), Ok(0));
        assert_eq!(slave.write_stream(b"x", 0), Err(Errno::EIO));
        assert_ne!(slave.readiness() & POLLHUP, 0);
        assert_eq!(tty.open_slave().err(), Some(Errno::EIO));
    }

    #[test]
    fn vtime_bounds_a_raw_read() {
        let (_master, slave) = pair();
        let mut raw = slave.tty.termios();
        raw.termios.lflag = 0;
        raw.termios.cc[ldisc::VMIN] = 0;
        raw.termios.cc[ldisc::VTIME] = 1;
        slave.tty.set_termios(raw, false);
        let start = Instant::now();
        let mut buf = [0u8; 8];
        assert_eq!(slave.read_stream(&mut buf, 0), Ok(0));
        assert!(start.elapsed() >= Duration::from_millis(90));
    }
}
