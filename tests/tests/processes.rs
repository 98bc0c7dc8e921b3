//! Processes, threads, signals and IPC in the sandbox: shells, bash, python3 and make
//! doing what they do natively; small C programs for signal handlers, timers interrupting
//! blocking calls, alternate signal stacks, many threads, futexes across processes and
//! descriptor passing; and the Sentry's own confinement while they run.
//!
//! Every sandboxed run goes through the reaper (`tests::reaped`): a hang is killed and
//! reported, and any host process the run leaves behind (a stub, a gofer, a Sentry) fails
//! the test. Only the processes of this run are looked at: other sandboxes run on the same
//! machine.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use tests::*;

/// How long a sandboxed run may take unless a test says otherwise: natively each takes
/// under 2 s. A run that blocks for good (a timer that never fires, a stub's death
/// unnoticed) fails after this, named by the reaper.
const LIMIT: Duration = Duration::from_secs(30);

/// Fails the test if the reaper killed the run or found processes it left behind.
fn assert_clean(what: &str, out: &Output) {
    let complaints = reaper_complaints(out);
    assert!(
        complaints.is_empty(),
        "{what}: {complaints:?}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `busybox sh -c script` natively and in the sandbox (from /) and returns both.
fn both(script: &str) -> (Output, Output) {
    let mut native = Command::new(busybox());
    native.args(["sh", "-c", script]).current_dir("/");
    let mut sandbox = reaped(LIMIT, &busybox(), &["sh", "-c", script]);
    sandbox.current_dir("/");
    let (native, sandbox) = (run(native), run(sandbox));
    assert_clean(script, &sandbox);
    (native, sandbox)
}

/// Runs `argv` natively and in the sandbox (both from /, with the same environment and
/// no stdin), checks that stdout and the exit status are the same and that the sandbox
/// left nothing behind, and returns the native run's output.
fn same_as_native(limit: Duration, argv: &[&str]) -> Output {
    let mut native = Command::new(argv[0]);
    native.args(&argv[1..]).current_dir("/");
    let mut sandbox = reaped(limit, Path::new(argv[0]), &argv[1..]);
    sandbox.current_dir("/");
    let (native, sandbox) = (run(native), run(sandbox));
    let what = argv.join(" ");
    assert_clean(&what, &sandbox);
    assert_eq!(
        stdout(&sandbox),
        stdout(&native),
        "{what}: stdout differs; stderr in the sandbox:\n{}",
        String::from_utf8_lossy(&sandbox.stderr)
    );
    assert_eq!(
        (sandbox.status.code(), sandbox.status.signal()),
        (native.status.code(), native.status.signal()),
        "{what}: exit status differs; stderr in the sandbox:\n{}",
        String::from_utf8_lossy(&sandbox.stderr)
    );
    native
}

/// A C program of tests/c, natively and in the sandbox: the same output, exit 0 natively
/// (the program checked what it saw), and `last` as its last line.
fn c_program_matches_native(name: &str, limit: Duration, last: &str) {
    let _g = shared();
    let prog = program(name);
    let prog = prog.to_str().expect("UTF-8 path");
    let native = same_as_native(limit, &[prog]);
    assert!(native.status.success(), "{name} natively: {native:?}");
    let out = stdout(&native);
    assert_eq!(out.lines().last(), Some(last), "{name} natively:\n{out}");
}

#[test]
fn a_shell_sees_its_childrens_exit_statuses() {
    let _g = shared();
    let script = "(exit 3); echo sub $?; busybox sh -c 'exit 4'; echo child $?; \
                  busybox false; echo false $?; echo pid $$ ppid $PPID";
    let (native, sandbox) = both(script);
    let out = stdout(&sandbox);
    assert!(sandbox.status.success(), "{sandbox:?}");
    assert!(out.contains("sub 3\nchild 4\nfalse 1\n"), "{out}");
    // The sandbox's shell is its init: pid 1 with a parent outside.
    assert!(out.ends_with("pid 1 ppid 0\n"), "{out}");
    let native_out = stdout(&native);
    let strip = |s: &str| s.lines().take(3).collect::<Vec<_>>().join("\n");
    assert_eq!(strip(&out), strip(&native_out));
}

#[test]
fn the_acceptance_shell_chains_match_native() {
    let _g = shared();
    let dir = format!("/tmp/runsc-procs-{}", std::process::id());
    let script = format!(
        "mkdir -p {dir}/a/b && echo x > {dir}/a/b/f && cat {dir}/a/b/f && \
         ln -s f {dir}/a/b/l && cat {dir}/a/b/l && mv {dir}/a/b/f {dir}/a/g && \
         ls {dir}/a && stat -c '%n %s %F' {dir}/a/g && rm -r {dir}/a && ls {dir}; \
         rmdir {dir}"
    );
    let (native, sandbox) = both(&script);
    assert!(native.status.success(), "{native:?}");
    assert_eq!(stdout(&sandbox), stdout(&native));
    assert_eq!(sandbox.status.code(), Some(0), "{sandbox:?}");
    assert_eq!(
        stdout(&sandbox),
        format!("x\nx\nb\ng\n{dir}/a/g 2 regular file\n")
    );
    // The memory overlay kept the host untouched.
    assert!(!std::path::Path::new(&dir).exists());
}

#[test]
fn pipelines_and_command_substitution_work() {
    let _g = shared();
    let script = "echo $(echo inner) outer; x=$(busybox sh -c 'echo 42'); echo got $x";
    let (native, sandbox) = both(script);
    assert_eq!(stdout(&sandbox), stdout(&native));
    assert_eq!(stdout(&sandbox), "inner outer\ngot 42\n");
}

#[test]
fn many_children_come_and_go_and_leave_no_stub() {
    let _g = shared();
    let script = "i=0; while [ $i -lt 40 ]; do (true); busybox true; i=$((i+1)); done; echo $i";
    // `both` fails if any stub of the run outlives it.
    let (_, sandbox) = both(script);
    assert_eq!(stdout(&sandbox), "40\n", "{sandbox:?}");
}

#[test]
fn a_script_runs_through_its_interpreter() {
    let _g = shared();
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("scripts");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let script = dir.join("hello.sh");
    std::fs::write(&script, "#!/bin/busybox sh\necho script \"$0\" \"$@\"\n").expect("write");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let path = script.to_string_lossy().into_owned();
    let out = run(reaped(
        LIMIT,
        &busybox(),
        &["sh", "-c", &format!("{path} a b")],
    ));
    assert_clean("a script", &out);
    assert_eq!(stdout(&out), format!("script {path} a b\n"), "{out:?}");
}

#[test]
fn the_sentry_runs_confined_in_an_empty_root_under_seccomp() {
    let _g = shared();
    let reaper = reaped(LIMIT, &busybox(), &["sleep", "5"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let sentry = the_sentry(&reaper);
    let pid = sentry.pid;
    let confined = wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .is_ok_and(|s| s.contains("Seccomp:\t2"))
    });
    // Nothing of the host's tree is visible from its root.
    let seen: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/root"))
        .expect("the Sentry's root")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    // The Sentry (runsc-rs), not the reaper, so that the reaper sees what it leaves.
    kill(pid, "KILL");
    let out = reaper.wait_with_output().expect("wait");
    assert_clean("the Sentry killed", &out);
    assert!(confined, "the Sentry never reported Seccomp: 2");
    assert!(seen.is_empty(), "the Sentry's root holds {seen:?}");
}

/// The runsc-rs process (the Sentry) that `reaper` started: its only child.
fn the_sentry(reaper: &std::process::Child) -> HostProcess {
    let mut sentry = None;
    let found = wait_until(Duration::from_secs(10), || {
        sentry = children_of(reaper.id()).into_iter().next();
        sentry.is_some()
    });
    assert!(found, "runsc-rs did not start");
    sentry.expect("found")
}

#[test]
fn sh_counts_usr_bin_through_a_pipe_as_natively() {
    let _g = shared();
    let native = same_as_native(LIMIT, &["/bin/sh", "-c", "ls /usr/bin | wc -l"]);
    let count: usize = stdout(&native).trim().parse().expect("a count");
    assert!(count > 10, "{count}");
}

/// tests/scripts/NAME.
fn script(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("scripts")
        .join(name);
    path.to_str().expect("UTF-8 path").to_string()
}

#[test]
fn a_bash_script_with_traps_jobs_subshells_and_pipes_matches_native() {
    let _g = shared();
    let native = same_as_native(LIMIT, &["/bin/bash", &script("shell_features.sh")]);
    // The script's own checks held natively: the comparison means something.
    assert_eq!(native.status.code(), Some(5), "{native:?}");
    let out = stdout(&native);
    for line in [
        "USR1 trap ran (1)\nafter kill -USR1 $$: usr1=1\n",
        "subshell status 3, v=outer\n",
        "substitution: a,b, nested: deep\n",
        "PIPESTATUS 1 0 4\n",
        "sum of 1..100 through a while-read loop: 5050\n",
        "job 1 done\njob 1 status 0\njob 2 status 7\nkilled job status 143\n",
        "after sh's kill -USR1 of its parent: usr1=3\n",
        "EXIT trap: status 5\n",
    ] {
        assert!(out.contains(line), "missing {line:?} natively:\n{out}");
    }
}

/// The host's python3, named by path: the first python3 on PATH may be pyenv's shim.
const PYTHON: &str = "/usr/bin/python3";

#[test]
fn python_threads_contend_on_a_lock_as_natively() {
    let _g = shared();
    let code = "\
import threading
lock = threading.Lock()
counter = 0
def work():
    global counter
    for _ in range(20000):
        with lock:
            counter += 1
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
print('counter', counter, 'threads alive', threading.active_count())
";
    let native = same_as_native(Duration::from_secs(60), &[PYTHON, "-c", code]);
    assert_eq!(stdout(&native), "counter 160000 threads alive 1\n");
}

#[test]
fn python_multiprocessing_pool_maps_as_natively() {
    let _g = shared();
    let code = "\
import multiprocessing
def f(x):
    return x * x
with multiprocessing.Pool(4) as pool:
    squares = pool.map(f, range(100))
print('pool map: sum', sum(squares), 'first', squares[:5], 'last', squares[-1])
";
    let native = same_as_native(Duration::from_secs(120), &[PYTHON, "-c", code]);
    assert_eq!(
        stdout(&native),
        "pool map: sum 328350 first [0, 1, 4, 9, 16] last 9801\n"
    );
}

#[test]
fn python_subprocess_run_captures_ls_as_natively() {
    let _g = shared();
    let code = "\
import subprocess
r = subprocess.run(['ls', '/'], capture_output=True)
print('returncode', r.returncode, 'stderr', r.stderr)
print(r.stdout.decode(), end='')
";
    let native = same_as_native(LIMIT, &[PYTHON, "-c", code]);
    let out = stdout(&native);
    assert!(out.starts_with("returncode 0 stderr b''\n"), "{out}");
    assert!(out.contains("\nusr\n"), "{out}");
}

#[test]
fn make_j2_builds_ten_c_files_with_gcc_and_runs_the_program() {
    let _g = shared();
    // The script works in a fresh directory under /tmp: the sandbox's own tmpfs there,
    // the host's natively.
    let native = same_as_native(
        Duration::from_secs(180),
        &["/bin/sh", &script("make_j2.sh")],
    );
    assert_eq!(
        stdout(&native),
        "built: f0.o f1.o f2.o f3.o f4.o f5.o f6.o f7.o f8.o f9.o main.o prog\ntotal 495\n"
    );
}

#[test]
fn a_sigsegv_handler_recovers_with_siglongjmp() {
    c_program_matches_native("segv_longjmp", LIMIT, "handled 4 faults: ok");
}

#[test]
fn sigalrm_interrupts_a_blocking_read_with_and_without_sa_restart() {
    c_program_matches_native("alarm_read", LIMIT, "ok");
}

#[test]
fn handlers_run_on_the_alternate_signal_stack() {
    c_program_matches_native("altstack", LIMIT, "ok");
}

#[test]
fn a_thousand_threads_each_increment_an_atomic() {
    c_program_matches_native(
        "threads1000",
        Duration::from_secs(180),
        "threads 1000, total 1000, wrong joins 0, shared thread ids 0, main tid is pid yes",
    );
}

#[test]
fn a_futex_wakes_across_processes_over_shared_memory() {
    c_program_matches_native(
        "futex_shared",
        LIMIT,
        "rounds 1000: parent 1000, child 1000, child exit 0, turn back with the parent: yes",
    );
}

#[test]
fn scm_rights_passes_a_pipe_to_another_process() {
    c_program_matches_native("scm_rights", LIMIT, "parent: child exited 0");
}

/// What a sandbox running `prog args` consists of once its guest runs: the reaper
/// (spawned, stdout and stderr piped), the Sentry (runsc-rs) and the Sentry's children (the
/// gofer and the stubs).
struct Running {
    reaper: std::process::Child,
    sentry: HostProcess,
    children: Vec<HostProcess>,
}

fn start(prog: &Path, args: &[&str]) -> Running {
    let reaper = reaped(LIMIT, prog, args)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the reaper");
    let sentry = the_sentry(&reaper);
    let mut children = Vec::new();
    // On kvm the guest runs in the Sentry's own VM: there is no stub process.
    let part = if tests::platform() == "ptrace" {
        "runsc-stub"
    } else {
        "runsc-rs"
    };
    let found = wait_until(Duration::from_secs(10), || {
        children = children_of(sentry.pid as u32);
        children.iter().any(|c| c.comm == part)
    });
    assert!(found, "no {part} appeared under runsc-rs: {children:?}");
    // Let the guest get going (spinning in its code, or asleep in the Sentry).
    std::thread::sleep(Duration::from_millis(300));
    let children = children_of(sentry.pid as u32);
    assert!(
        children.iter().any(|c| c.comm == "runsc-rs"),
        "no gofer under runsc-rs: {children:?}"
    );
    Running {
        reaper,
        sentry,
        children,
    }
}

impl Running {
    /// Waits for the reaper (it waits up to 5 s for what runsc-rs left behind) and checks
    /// that nothing of the sandbox outlived it. Returns the reaper's output and how long
    /// it took from the call.
    fn finish(self) -> (Output, Duration) {
        let started = Instant::now();
        let out = self.reaper.wait_with_output().expect("wait for the reaper");
        let took = started.elapsed();
        assert_clean("the killed sandbox", &out);
        let alive: Vec<&HostProcess> = std::iter::once(&self.sentry)
            .chain(&self.children)
            .filter(|p| p.alive())
            .collect();
        assert!(alive.is_empty(), "still running: {alive:?}");
        (out, took)
    }
}

/// SIGKILLs runsc-rs while the guest runs `prog args`, and checks that its gofer and stubs
/// go with it.
fn kill_runsc_while(prog: &Path, args: &[&str]) {
    let _g = shared();
    let sandbox = start(prog, args);
    kill(sandbox.sentry.pid, "KILL");
    let (out, took) = sandbox.finish();
    // The reaper passes runsc-rs's death on.
    assert_eq!(out.status.signal(), Some(9), "{out:?}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

#[test]
fn sigkill_of_runsc_while_the_guest_sleeps_leaves_nothing_behind() {
    kill_runsc_while(Path::new("/bin/sleep"), &["100"]);
}

#[test]
fn sigkill_of_runsc_while_the_guest_spins_leaves_nothing_behind() {
    kill_runsc_while(&program("probe"), &["spin"]);
}

/// SIGKILLs, from the host, the stub that runs the guest's pid 1 (the oldest stub: the
/// first address space), and checks that runsc-rs notices soon, ends with a failure
/// status and a message rather than a panic, and leaves nothing behind.
fn kill_the_stub_of_pid_1(prog: &Path, args: &[&str]) {
    if tests::platform() != "ptrace" {
        eprintln!("skipped: only the ptrace platform runs guests in stub processes");
        return;
    }
    let _g = shared();
    let sandbox = start(prog, args);
    let stub = sandbox
        .children
        .iter()
        .find(|c| c.comm == "runsc-stub")
        .expect("a stub")
        .clone();
    kill(stub.pid, "KILL");
    let (out, took) = sandbox.finish();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{out:?}");
    assert!(!err.contains("panicked"), "{err}");
    // The reaper's 5 s of grace are not in this: it returns as soon as all is reaped.
    assert!(took < Duration::from_secs(10), "took {took:?}: {err}");
}

#[test]
fn sigkill_of_pid_1s_stub_while_it_sleeps_ends_the_sandbox() {
    kill_the_stub_of_pid_1(Path::new("/bin/sleep"), &["100"]);
}

#[test]
fn sigkill_of_pid_1s_stub_while_it_spins_ends_the_sandbox() {
    kill_the_stub_of_pid_1(&program("probe"), &["spin"]);
}
