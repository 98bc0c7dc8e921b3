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

/// The platform the sandboxes of this test run use: `RUNSC_PLATFORM` (which runsc-rs
/// itself reads), else its default, ptrace.
pub fn platform() -> String {
    std::env::var("RUNSC_PLATFORM").unwrap_or_else(|_| "ptrace".to_string())
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

/// A command that runs `prog args` in the sandbox under the reaper (tests/c/reaper.c): a
/// child subreaper that passes runsc-rs's exit status through, SIGKILLs it if it runs
/// longer than `limit`, and names on stderr ("reaper: ...") whatever runsc-rs leaves
/// behind (its gofers, stubs, anything they started) 5 s after it ends. Only processes of
/// this run are looked at, never another sandbox's on the same machine.
pub fn reaped(limit: Duration, prog: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(program("reaper"));
    cmd.arg(limit.as_secs().max(1).to_string())
        .arg(runsc())
        .args(["do", "--"])
        .arg(prog)
        .args(args);
    cmd
}

/// What the reaper said went wrong in `out`'s stderr: a timeout or processes left behind.
pub fn reaper_complaints(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.starts_with("reaper: "))
        .map(str::to_string)
        .collect()
}

/// A host process, known by its pid and its start time (so that a reused pid is not
/// mistaken for it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostProcess {
    pub pid: i32,
    pub comm: String,
    /// Clock ticks after boot (field 22 of /proc/PID/stat).
    pub start: u64,
}

impl HostProcess {
    /// The process behind `pid` now, with its parent and whether it is a zombie.
    fn read(pid: i32) -> Option<(HostProcess, i32, bool)> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // "pid (comm) state ppid ..."; comm may hold spaces and parentheses.
        let (head, rest) = stat.rsplit_once(") ")?;
        let comm = head.split_once(" (")?.1.to_string();
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ppid = fields.get(1)?.parse().ok()?;
        // Fields after comm start at 3 (state); starttime is field 22.
        let start = fields.get(22 - 3)?.parse().ok()?;
        let zombie = fields.first() == Some(&"Z");
        Some((HostProcess { pid, comm, start }, ppid, zombie))
    }

    /// Whether this very process still runs (is neither gone nor a zombie).
    pub fn alive(&self) -> bool {
        HostProcess::read(self.pid)
            .is_some_and(|(now, _, zombie)| now.start == self.start && !zombie)
    }
}

/// The live (not zombie) children of `pid`, whichever of its threads started them.
pub fn children_of(pid: u32) -> Vec<HostProcess> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Some((process, ppid, zombie)) = HostProcess::read(child) {
            if ppid == pid as i32 && !zombie {
                found.push(process);
            }
        }
    }
    found.sort_by_key(|p| p.start);
    found
}

/// Sends `signal` (a name such as "KILL") to host process `pid`.
pub fn kill(pid: i32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("running kill");
    assert!(status.success(), "kill -{signal} {pid} failed");
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
