//! Processes in the sandbox: a shell forking, exec-ing and waiting for its children, and
//! the Sentry's own confinement while they run.

use std::process::{Command, Stdio};
use std::time::Duration;

use tests::*;

/// Runs `busybox sh -c script` natively and in the sandbox (from /) and returns both.
fn both(script: &str) -> (std::process::Output, std::process::Output) {
    let mut native = Command::new(busybox());
    native.args(["sh", "-c", script]).current_dir("/");
    let mut sandbox = sandboxed(&busybox(), &["sh", "-c", script]);
    sandbox.current_dir("/");
    (run(native), run(sandbox))
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
    let _g = exclusive();
    let script = "i=0; while [ $i -lt 40 ]; do (true); busybox true; i=$((i+1)); done; echo $i";
    let (_, sandbox) = both(script);
    assert_eq!(stdout(&sandbox), "40\n", "{sandbox:?}");
    assert!(
        wait_until(Duration::from_secs(5), || live_stubs().is_empty()),
        "stubs left: {:?}",
        live_stubs()
    );
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
    let out = run(sandboxed(&busybox(), &["sh", "-c", &format!("{path} a b")]));
    assert_eq!(stdout(&out), format!("script {path} a b\n"), "{out:?}");
}

#[test]
fn the_sentry_runs_confined_in_an_empty_root_under_seccomp() {
    let _g = shared();
    let mut child = sandboxed(&busybox(), &["sleep", "5"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let pid = child.id();
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
    let _ = child.kill();
    let _ = child.wait();
    assert!(confined, "the Sentry never reported Seccomp: 2");
    assert!(seen.is_empty(), "the Sentry's root holds {seen:?}");
}
