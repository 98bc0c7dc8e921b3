//! The Sentry's API for an OCI runtime, against a real sandbox: a kernel on the ptrace
//! platform over a tmpfs root holding the static busybox, its init started as `runc start`
//! would and more processes as `runc exec` would, their output read from host pipes.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sentry::abi::{Rlimit, Winsize};
use sentry::fs::tty::ConsoleSetup;
use sentry::kernel::{Error, Exec, ProcessSpec, Stdio};
use sentry::mm::MemoryFile;
use sentry::vfs::{NewNode, Owner, O_WRONLY};
use sentry::{Config, ExitStatus, Kernel};

const BUSYBOX: &str = "/bin/busybox";
const SIGINT: i32 = 2;
const SIGKILL: i32 = 9;
const SIGTERM: i32 = 15;

/// A sandbox whose root is a tmpfs with /bin/busybox in it.
fn boot(hostname: Option<&str>) -> Arc<Kernel> {
    let memory = Arc::new(MemoryFile::new(1 << 36).expect("memory file"));
    let fd = memory.fd().try_clone_to_owned().expect("dup");
    let platform = platform::ptrace::PtracePlatform::new(fd).expect("ptrace platform");
    let root = sentry::fs::tmpfs_root();
    let owner = Owner { uid: 0, gid: 0 };
    let bin = root
        .create(b"bin", &NewNode::Directory { mode: 0o755 }, owner)
        .expect("/bin");
    let file = bin
        .create(b"busybox", &NewNode::File { mode: 0o755 }, owner)
        .expect("/bin/busybox");
    let ops = file.open(O_WRONLY).expect("open");
    let bytes = std::fs::read(BUSYBOX).expect("/bin/busybox: apt-get install busybox-static");
    let mut done = 0;
    while done < bytes.len() {
        done += ops.write(done as u64, &bytes[done..]).expect("write");
    }
    let config = Config {
        strace: false,
        randomize: true,
        hostname: hostname.map(String::from),
        read_only_root: false,
    };
    let kernel = Kernel::new(Box::new(platform), memory, config, root, "tmpfs");
    // /dev, /proc, /sys and /tmp, as `runsc-rs do` mounts them.
    for spec in sentry::fs::mounts::default_plan("tmpfs") {
        kernel.mount(&spec).expect("a default mount");
    }
    kernel
}

fn exec(argv: &[&str]) -> Exec {
    Exec {
        program: argv[0].to_string(),
        argv: argv.iter().map(|a| a.as_bytes().to_vec()).collect(),
        envp: vec![b"PATH=/bin".to_vec()],
        cwd: "/".into(),
    }
}

/// `argv` (busybox applets found on PATH through busybox's own name) as root.
fn spec(argv: &[&str], stdio: Stdio) -> ProcessSpec {
    let mut full = vec![BUSYBOX];
    full.extend_from_slice(argv);
    ProcessSpec {
        exec: exec(&full),
        uid: 0,
        gid: 0,
        groups: Vec::new(),
        no_new_privs: false,
        caps: None,
        rlimits: Vec::new(),
        umask: None,
        stdio,
    }
}

/// A host pipe whose write end is the process's stdout and stderr: (stdio, read end).
fn output_pipe() -> (Stdio, std::fs::File) {
    let (r, w) = nix::unistd::pipe().expect("pipe");
    let w2 = w.try_clone().expect("dup");
    (Stdio::host(vec![(1, w), (2, w2)]), std::fs::File::from(r))
}

/// Starts init (`argv`) on a thread of its own, which then runs it; returns that thread,
/// which ends with init's status.
fn start_init(kernel: &Arc<Kernel>, spec: ProcessSpec) -> JoinHandle<ExitStatus> {
    let kernel = kernel.clone();
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::spawn(move || match kernel.prepare_init(spec) {
        Ok(init) => {
            tx.send(Ok(())).unwrap();
            init.run()
        }
        Err(e) => {
            tx.send(Err(e.to_string())).unwrap();
            ExitStatus::Exited(255)
        }
    });
    rx.recv().unwrap().expect("init prepared");
    thread
}

/// Runs `spec` in the running sandbox; returns how it ended.
fn run(kernel: &Arc<Kernel>, spec: ProcessSpec) -> ExitStatus {
    let spawned = kernel.spawn(spec).expect("spawn");
    kernel.wait_process(spawned.pid).expect("it existed")
}

/// Runs `argv` in the running sandbox; returns its output and how it ended.
fn output(kernel: &Arc<Kernel>, argv: &[&str]) -> (String, ExitStatus) {
    let (stdio, mut out) = output_pipe();
    let status = run(kernel, spec(argv, stdio));
    let mut text = String::new();
    out.read_to_string(&mut text).expect("read");
    (text, status)
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn cpu_of(kernel: &Kernel, pid: i32) -> Duration {
    kernel
        .processes_info()
        .into_iter()
        .find(|p| p.pid == pid)
        .map(|p| p.cpu)
        .expect("the process is listed")
}

#[test]
fn exec_runs_processes_in_a_running_sandbox_and_ps_lists_them() {
    let kernel = boot(None);
    assert!(matches!(
        kernel.spawn(spec(&["true"], Stdio::default())),
        Err(Error::State(_))
    ));
    let init = start_init(&kernel, spec(&["sleep", "1000"], Stdio::default()));

    let (text, status) = output(&kernel, &["echo", "hello from exec"]);
    assert_eq!(
        (text.as_str(), status),
        ("hello from exec\n", ExitStatus::Exited(0))
    );
    let (_, status) = output(&kernel, &["sh", "-c", "exit 7"]);
    assert_eq!(status, ExitStatus::Exited(7));
    // No parent in the sandbox; a session and process group of its own.
    let script = "read -r pid comm state ppid pgid sid rest < /proc/self/stat; \
                  echo $ppid $((pgid == pid)) $((sid == pid))";
    let (text, _) = output(&kernel, &["sh", "-c", script]);
    assert_eq!(text, "0 1 1\n");
    // The ids, limits and umask asked for.
    let (stdio, mut out) = output_pipe();
    let mut as_user = spec(&["sh", "-c", "id; ulimit -n; umask"], stdio);
    as_user.uid = 1000;
    as_user.gid = 100;
    as_user.groups = vec![100, 27];
    as_user.umask = Some(0o027);
    as_user.rlimits = vec![(7, Rlimit { cur: 123, max: 456 })];
    let status = run(&kernel, as_user);
    let mut text = String::new();
    out.read_to_string(&mut text).unwrap();
    assert_eq!(status, ExitStatus::Exited(0), "{text}");
    assert_eq!(text, "uid=1000 gid=100 groups=100,27\n123\n0027\n");

    // A program that is not there fails the exec, and nothing is left of it.
    let before = kernel.processes_info().len();
    let missing = kernel.spawn(ProcessSpec {
        exec: exec(&["no-such-program"]),
        ..spec(&[], Stdio::default())
    });
    assert!(matches!(missing, Err(Error::NotFound(_))), "{missing:?}");
    assert_eq!(kernel.processes_info().len(), before);
    assert_eq!(kernel.wait_process(12345), None);

    // ps: init and an exec'd sleep, by pid, with their arguments.
    let sleeper = kernel
        .spawn(spec(&["sleep", "1000"], Stdio::default()))
        .unwrap();
    let state = |pid| {
        kernel
            .processes_info()
            .iter()
            .find(|p| p.pid == pid)
            .map(|p| p.state)
    };
    wait_until("the sleeper to sleep", || state(sleeper.pid) == Some('S'));
    let ps = kernel.processes_info();
    let init_entry = ps.iter().find(|p| p.pid == 1).expect("init listed");
    assert_eq!(init_entry.ppid, 0);
    assert_eq!(init_entry.comm, "busybox");
    assert_eq!(init_entry.cmdline, ["/bin/busybox", "sleep", "1000"]);
    let entry = ps.iter().find(|p| p.pid == sleeper.pid).expect("listed");
    assert_eq!((entry.ppid, entry.uid, entry.state), (0, 0, 'S'));
    assert!(entry.started >= init_entry.started);
    assert!(ps.windows(2).all(|w| w[0].pid < w[1].pid));

    // Signals from outside: SIGTERM ends the sleeper; SIGKILL from outside kills init.
    assert_eq!(kernel.signal_process(sleeper.pid, SIGTERM), Ok(()));
    assert_eq!(
        kernel.wait_process(sleeper.pid),
        Some(ExitStatus::Signaled(SIGTERM))
    );
    assert_eq!(kernel.wait_process(sleeper.pid), None, "told once");
    assert_eq!(
        kernel.signal_process(sleeper.pid, SIGTERM),
        Err(sentry::abi::Errno::ESRCH)
    );
    assert_eq!(
        kernel.signal_process(1, 99),
        Err(sentry::abi::Errno::EINVAL)
    );
    assert_eq!(kernel.signal_process(1, 0), Ok(()));
    assert_eq!(kernel.signal_process(1, SIGKILL), Ok(()));
    assert_eq!(init.join().unwrap(), ExitStatus::Signaled(SIGKILL));
    assert!(matches!(
        kernel.spawn(spec(&["true"], Stdio::default())),
        Err(Error::State(_))
    ));
}

#[test]
fn when_init_exits_every_other_process_is_killed() {
    let kernel = boot(None);
    let (mut stdio, mut out) = output_pipe();
    let (input, go) = nix::unistd::pipe().unwrap();
    stdio.files.push((0, input));
    // Init's child sleeps on; init waits to be told to go.
    let init = start_init(
        &kernel,
        spec(
            &["sh", "-c", "sleep 1000 & echo $!; read line; exit 4"],
            stdio,
        ),
    );
    let mut line = [0u8; 16];
    let n = out.read(&mut line).unwrap();
    let child: i32 = std::str::from_utf8(&line[..n])
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // An exec'd reader blocked on a host pipe nobody writes (kept open here).
    let (stdin, _writer) = nix::unistd::pipe().unwrap();
    let exec = kernel
        .spawn(spec(&["cat"], Stdio::host(vec![(0, stdin)])))
        .unwrap();
    // Init's end of file: it exits, and takes the others with it.
    drop(go);
    assert_eq!(init.join().unwrap(), ExitStatus::Exited(4));
    assert_eq!(
        kernel.wait_process(exec.pid),
        Some(ExitStatus::Signaled(SIGKILL))
    );
    assert_eq!(
        kernel.wait_process(child),
        Some(ExitStatus::Signaled(SIGKILL))
    );
    assert!(kernel.processes_info().iter().all(|p| p.state == 'Z'));
}

#[test]
fn pause_stops_guest_code_until_resume_without_the_guest_noticing() {
    let kernel = boot(None);
    let init = start_init(
        &kernel,
        spec(&["sh", "-c", "while :; do :; done"], Stdio::default()),
    );
    // A reader blocked in the Sentry, whose input comes while the sandbox is paused
    // (the shell reads a byte at a time, in guest code between them).
    let (input_r, input_w) = nix::unistd::pipe().unwrap();
    let (mut stdio, mut out) = output_pipe();
    stdio.files.push((0, input_r));
    let script = "read -r line; echo \"got $line\"; read -r more; echo \"then $more\"";
    let reader = kernel.spawn(spec(&["sh", "-c", script], stdio)).unwrap();
    wait_until("the loop to use CPU", || {
        cpu_of(&kernel, 1) > Duration::from_millis(50)
    });

    let start = Instant::now();
    kernel.pause();
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "pause returned promptly"
    );
    assert!(kernel.is_paused());
    let frozen = cpu_of(&kernel, 1);
    let mut input = std::fs::File::from(input_w);
    input.write_all(b"typed while paused\n").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let after = cpu_of(&kernel, 1);
    assert!(
        after.saturating_sub(frozen) < Duration::from_millis(5),
        "the loop ran while paused: {frozen:?} -> {after:?}"
    );
    // The read in progress took its byte in the Sentry; the shell does not get back.
    let mut pending = [0u8; 64];
    nix::fcntl::fcntl(
        out.as_fd(),
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )
    .unwrap();
    assert!(out.read(&mut pending).is_err(), "no output while paused");
    let states: Vec<char> = kernel.processes_info().iter().map(|p| p.state).collect();
    assert!(states.iter().all(|&s| s == 'S'), "{states:?}");

    kernel.resume();
    assert!(!kernel.is_paused());
    wait_until("the loop to run again", || {
        cpu_of(&kernel, 1) > after + Duration::from_millis(20)
    });
    nix::fcntl::fcntl(
        out.as_fd(),
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::empty()),
    )
    .unwrap();
    drop(input);
    let mut text = String::new();
    out.read_to_string(&mut text).unwrap();
    // No EINTR, no signal: the shell saw one line and the end of its input.
    assert_eq!(text, "got typed while paused\nthen \n");
    assert_eq!(kernel.wait_process(reader.pid), Some(ExitStatus::Exited(0)));

    // Killed while paused, the sandbox still ends.
    kernel.pause();
    kernel.signal_all(SIGKILL).unwrap();
    assert_eq!(init.join().unwrap(), ExitStatus::Signaled(SIGKILL));
}

#[test]
fn a_process_on_a_host_terminal_gets_its_size_and_ctrl_c() {
    let kernel = boot(Some("sandbox-host"));
    let init = start_init(&kernel, spec(&["sleep", "1000"], Stdio::default()));
    // The host name, and changing it as root (not as anyone else).
    let (text, _) = output(
        &kernel,
        &["sh", "-c", "hostname; cat /proc/sys/kernel/hostname"],
    );
    assert_eq!(text, "sandbox-host\nsandbox-host\n");
    let (_, status) = output(&kernel, &["hostname", "renamed"]);
    assert_eq!(status, ExitStatus::Exited(0));
    let (text, _) = output(&kernel, &["hostname"]);
    assert_eq!(text, "renamed\n");
    let (stdio, _out) = output_pipe();
    let mut as_user = spec(&["hostname", "nope"], stdio);
    as_user.uid = 1000;
    assert_eq!(run(&kernel, as_user), ExitStatus::Exited(1));

    let pty = nix::pty::openpty(None, None).expect("openpty");
    let (master, slave) = (pty.master, pty.slave);
    let cooked = nix::sys::termios::tcgetattr(&slave).unwrap();
    let mut raw = cooked.clone();
    nix::sys::termios::cfmakeraw(&mut raw);
    nix::sys::termios::tcsetattr(&slave, nix::sys::termios::SetArg::TCSANOW, &raw).unwrap();
    let cooked: libc::termios = cooked.into();
    let mut cc = [0u8; 19];
    cc.copy_from_slice(&cooked.c_cc[..19]);
    let setup = ConsoleSetup {
        termios: sentry::abi::Termios {
            iflag: cooked.c_iflag,
            oflag: cooked.c_oflag,
            cflag: cooked.c_cflag,
            lflag: cooked.c_lflag,
            line: cooked.c_line,
            cc,
        },
        winsize: Winsize {
            row: 33,
            col: 99,
            xpixel: 0,
            ypixel: 0,
        },
    };
    let stdio = Stdio::terminal(slave, setup).unwrap();
    let shell = kernel
        .spawn(spec(&["sh", "-c", "stty size; exec sleep 1000"], stdio))
        .unwrap();
    let terminal = shell.terminal.clone().expect("a terminal");
    let mut master = std::fs::File::from(master);
    let mut seen = String::new();
    let mut buf = [0u8; 256];
    while !seen.contains("33 99\r\n") {
        let n = master.read(&mut buf).unwrap();
        assert!(n > 0);
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    terminal.set_winsize(Winsize {
        row: 10,
        col: 20,
        xpixel: 0,
        ypixel: 0,
    });
    assert_eq!(terminal.winsize().row, 10);
    // Ctrl-C: the line discipline sends SIGINT to the foreground group, the exec'd process.
    std::thread::sleep(Duration::from_millis(100));
    master.write_all(b"\x03").unwrap();
    assert_eq!(
        kernel.wait_process(shell.pid),
        Some(ExitStatus::Signaled(SIGINT))
    );
    kernel.signal_process(1, SIGKILL).unwrap();
    assert_eq!(init.join().unwrap(), ExitStatus::Signaled(SIGKILL));
}
