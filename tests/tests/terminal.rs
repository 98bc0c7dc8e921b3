//! runsc-rs on a terminal: the host terminal becomes the guest's console, with the
//! Sentry's line discipline and job control over it (Ctrl-C is SIGINT for the guest's
//! foreground job), and signals sent to runsc-rs reach the guest's init.

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tests::*;

/// A new pty pair (master, slave), 24x80.
fn open_pty() -> (OwnedFd, OwnedFd) {
    let (mut master, mut slave) = (-1, -1);
    let size = libc::winsize {
        ws_row: 24,
        ws_col: 80,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty writes the two descriptors it opens; the name pointer may be null.
    let ret = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    assert_eq!(ret, 0, "openpty: {}", std::io::Error::last_os_error());
    // Not inherited by runsc-rs: it must not hold the master open itself.
    for fd in [master, slave] {
        // SAFETY: fcntl on descriptors this function owns.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    // SAFETY: both descriptors were just opened and are owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) }
}

/// The terminal's local modes (c_lflag), asked through the master.
fn lflag(master: &OwnedFd) -> libc::tcflag_t {
    // SAFETY: tcgetattr fills the termios it is given.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::tcgetattr(master.as_raw_fd(), &mut t) }, 0);
    t.c_lflag
}

/// Starts runsc-rs with `args` on the slave side of a new pty as its controlling
/// terminal, the way a terminal emulator starts a shell. Also returns the terminal's local
/// modes from before.
fn spawn_on_terminal(args: &[&str]) -> (Running, OwnedFd, libc::tcflag_t) {
    let (master, slave) = open_pty();
    let before = lflag(&master);
    let mut cmd = Command::new(runsc());
    cmd.args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("PS1", "$ ")
        .env("TERM", "dumb")
        .current_dir("/")
        .stdin(Stdio::from(slave.try_clone().expect("dup")))
        .stdout(Stdio::from(slave.try_clone().expect("dup")))
        .stderr(Stdio::from(slave));
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().expect("starting runsc-rs");
    drop(cmd); // Our copies of the slave go: the master sees EIO once runsc-rs is gone.
    (Running(child), master, before)
}

/// Reads the master until what came contains `want` (returns all that came) or `limit`
/// passes (panics with what came).
fn expect(master: &OwnedFd, seen: &mut String, want: &str, limit: Duration) {
    let start = Instant::now();
    let mut file = std::fs::File::from(master.try_clone().expect("dup"));
    while !seen.contains(want) {
        let left = limit.saturating_sub(start.elapsed());
        assert!(
            !left.is_zero(),
            "waited for {want:?}; the terminal showed {seen:?}"
        );
        let mut pfd = libc::pollfd {
            fd: master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd.
        let ready = unsafe { libc::poll(&mut pfd, 1, left.as_millis() as i32) };
        if ready <= 0 {
            continue;
        }
        let mut buf = [0u8; 4096];
        match file.read(&mut buf) {
            Ok(0) | Err(_) => panic!("the terminal closed before {want:?}; it showed {seen:?}"),
            Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
}

fn type_keys(master: &OwnedFd, keys: &[u8]) {
    // SAFETY: writes from a valid buffer.
    let n = unsafe { libc::write(master.as_raw_fd(), keys.as_ptr().cast(), keys.len()) };
    assert_eq!(n, keys.len() as isize);
}

/// A runsc-rs that a failing test kills rather than leaves behind.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("waiting for runsc-rs") {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("runsc-rs did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

const LIMIT: Duration = Duration::from_secs(20);

#[test]
fn an_interactive_shell_runs_commands_and_ctrl_c_interrupts_its_job() {
    let _g = shared();
    let (mut child, master, cooked) = spawn_on_terminal(&["do", "--", "/bin/sh", "-i"]);
    assert_ne!(cooked & libc::ICANON, 0);
    let mut seen = String::new();
    expect(&master, &mut seen, "$ ", LIMIT);
    // runsc-rs made the host terminal raw: the Sentry echoes and edits lines.
    assert_eq!(lflag(&master) & (libc::ICANON | libc::ECHO | libc::ISIG), 0);
    type_keys(&master, b"echo hi\n");
    // The Sentry's echo (with ONLCR), then the command's output.
    expect(&master, &mut seen, "echo hi\r\nhi\r\n$ ", LIMIT);
    // A foreground job reading the terminal; Ctrl-C is SIGINT for its process group, not
    // for the shell.
    seen.clear();
    type_keys(&master, b"cat\n");
    expect(&master, &mut seen, "cat\r\n", LIMIT);
    type_keys(&master, b"typed\n");
    expect(&master, &mut seen, "typed\r\ntyped\r\n", LIMIT);
    type_keys(&master, b"\x03");
    expect(&master, &mut seen, "^C", LIMIT);
    expect(&master, &mut seen, "$ ", LIMIT);
    type_keys(&master, b"echo status $? pgrp-ok\n");
    expect(&master, &mut seen, "status 130 pgrp-ok", LIMIT);
    type_keys(&master, b"tty; stty size\n");
    expect(&master, &mut seen, "/dev/console\r\n24 80\r\n", LIMIT);
    type_keys(&master, b"exit\n");
    let status = wait_exit(&mut child.0, LIMIT);
    assert_eq!(status.code(), Some(0), "{seen:?}");
    // The terminal's own settings are back.
    assert_eq!(lflag(&master), cooked);
}

/// bash's job control through the console: Ctrl-Z stops the foreground job (bash sees it
/// stop through wait4's WUNTRACED and takes the terminal back with TIOCSPGRP), fg resumes
/// it in the foreground, Ctrl-C ends it.
#[test]
fn bash_job_control_stops_and_resumes_a_job() {
    let _g = shared();
    let (mut child, master, _) =
        spawn_on_terminal(&["do", "--", "/bin/bash", "--norc", "--noprofile", "-i"]);
    let mut seen = String::new();
    expect(&master, &mut seen, "$ ", LIMIT);
    type_keys(&master, b"echo hi\n");
    expect(&master, &mut seen, "hi\r\n", LIMIT);
    seen.clear();
    // Keys typed while readline edits are not echoed by the terminal (readline turns ECHO
    // off): the job says when it runs in the foreground.
    type_keys(&master, b"sh -c 'echo started; exec cat'\n");
    expect(&master, &mut seen, "started\r\n", LIMIT);
    type_keys(&master, b"\x1a");
    expect(&master, &mut seen, "Stopped", LIMIT);
    expect(&master, &mut seen, "$ ", LIMIT);
    seen.clear();
    type_keys(&master, b"fg\n");
    expect(&master, &mut seen, "exec cat'\r\n", LIMIT);
    type_keys(&master, b"again\n");
    expect(&master, &mut seen, "again\r\nagain\r\n", LIMIT);
    type_keys(&master, b"\x03");
    expect(&master, &mut seen, "^C", LIMIT);
    expect(&master, &mut seen, "\n$ ", LIMIT);
    type_keys(&master, b"echo st $?\n");
    expect(&master, &mut seen, "st 130", LIMIT);
    type_keys(&master, b"exit\n");
    let status = wait_exit(&mut child.0, LIMIT);
    assert_eq!(status.code(), Some(0), "{seen:?}");
}

#[test]
fn sigterm_to_runsc_rs_reaches_the_guests_init() {
    let _g = shared();
    let script = "trap 'echo got TERM; exit 3' TERM; echo ready; while :; do :; done";
    let mut child = Running(
        Command::new(runsc())
            .args(["do", "--", "/bin/sh", "-c", script])
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting runsc-rs"),
    );
    let mut stdout = child.0.stdout.take().expect("stdout");
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    while !seen.ends_with(b"ready\n") {
        let n = stdout.read(&mut buf).expect("reading the guest's output");
        assert!(
            n > 0,
            "the guest ended early: {:?}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
    let pid = child.0.id() as i32;
    // SAFETY: kill has no memory effects.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = wait_exit(&mut child.0, LIMIT);
    stdout.read_to_end(&mut seen).expect("reading the rest");
    assert_eq!(String::from_utf8_lossy(&seen), "ready\ngot TERM\n");
    assert_eq!(status.code(), Some(3));
}
