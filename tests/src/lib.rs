//! Helpers for the end-to-end tests: where the runsc-rs binary and the C test programs are,
//! running them natively and in the sandbox, and finding stub processes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

/// The runsc-rs binary of this build (`cargo build` puts it beside the test's deps folder).
pub fn runsc() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile> folder");
    let bin = dir.join("runsc-rs");
    assert!(
        bin.exists(),
        "{} does not exist: build it first with `cargo build -p runsc-rs`",
        bin.display()
    );
    bin
}

/// A C test program built by build.rs.
pub fn program(name: &str) -> PathBuf {
    let path = Path::new(env!("OUT_DIR")).join(name);
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// The static busybox from Debian's busybox-static.
pub fn busybox() -> PathBuf {
    let path = PathBuf::from("/bin/busybox");
    assert!(
        path.exists(),
        "/bin/busybox is missing: apt-get install busybox-static"
    );
    path
}

/// A command that runs `prog args` in the sandbox.
pub fn sandboxed(prog: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(runsc());
    cmd.arg("do").arg("--").arg(prog).args(args);
    cmd
}

/// Runs `cmd` with `stdin` fed in and a clean, fixed environment; returns its output.
pub fn run_with_stdin(mut cmd: Command, stdin: &[u8]) -> Output {
    use std::io::Write;
    cmd.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("TEST_VAR", "hello world")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawning the program");
    let mut input = child.stdin.take().expect("stdin pipe");
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().expect("waiting for the program");
    writer.join().expect("stdin writer");
    out
}

pub fn run(cmd: Command) -> Output {
    run_with_stdin(cmd, b"")
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Tests that run the sandbox share this lock; tests that check no stub is left anywhere
/// on the machine take it exclusively, so other tests' stubs cannot confuse them.
static SANDBOXES: RwLock<()> = RwLock::new(());

pub fn shared() -> RwLockReadGuard<'static, ()> {
    SANDBOXES.read().unwrap_or_else(|e| e.into_inner())
}

pub fn exclusive() -> RwLockWriteGuard<'static, ()> {
    SANDBOXES.write().unwrap_or_else(|e| e.into_inner())
}

/// Live (not zombie) processes named `runsc-stub` on the machine.
pub fn live_stubs() -> Vec<i32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // "pid (comm) state ..."
        let Some(rest) = stat.split_once(") ") else {
            continue;
        };
        if rest.0.ends_with("(runsc-stub") && !rest.1.starts_with('Z') {
            pids.push(pid);
        }
    }
    pids
}

/// Polls `cond` every 10 ms until it holds or `limit` passes.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}
