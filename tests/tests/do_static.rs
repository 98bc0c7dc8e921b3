//! `runsc-rs do` on static programs: busybox, and C programs compared with their native runs.

use std::process::{Command, Stdio};
use std::time::Duration;

use tests::*;

#[test]
fn busybox_echo_prints_hello() {
    let _g = shared();
    let out = run(sandboxed(&busybox(), &["echo", "hello"]));
    assert_eq!(stdout(&out), "hello\n");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn exit_status_is_the_guests() {
    let _g = shared();
    for (args, code) in [
        (&["sh", "-c", "exit 7"][..], 7),
        (&["true"][..], 0),
        (&["false"][..], 1),
    ] {
        let out = run(sandboxed(&busybox(), args));
        assert_eq!(out.status.code(), Some(code), "busybox {args:?}: {out:?}");
    }
}

#[test]
fn strace_shows_the_write() {
    let _g = shared();
    let mut cmd = Command::new(runsc());
    cmd.args(["do", "--strace", "--"])
        .arg(busybox())
        .args(["echo", "hello"]);
    let out = run(cmd);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("write(1, \"hello\\n\", 6) = 6\n"),
        "stderr was:\n{err}"
    );
    assert!(err.contains("exit_group(0) = ?"), "stderr was:\n{err}");
    assert_eq!(stdout(&out), "hello\n");
}

/// Runs a C program natively and in the sandbox with the same arguments, environment and
/// stdin, and checks both print the same thing.
fn same_as_native(name: &str) {
    let _g = shared();
    let prog = program(name);
    let args = ["first", "second arg", ""];
    let input: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut native = Command::new(&prog);
    native.args(args);
    let native = run_with_stdin(native, &input);
    let sandbox = run_with_stdin(sandboxed(&prog, &args), &input);
    assert_eq!(
        native.status.code(),
        Some(0),
        "native run failed: {native:?}"
    );
    assert_eq!(
        sandbox.status.code(),
        Some(0),
        "sandboxed run failed: {sandbox:?}"
    );
    let (n, s) = (stdout(&native), stdout(&sandbox));
    assert_eq!(n, s, "native and sandboxed output differ");
    // The program really did its work (and both runs agreed on it).
    for expected in [
        "argv[2] = second arg\n",
        "env TEST_VAR=hello world\n",
        "auxv AT_PAGESZ = 0x1000\n",
        "auxv AT_ENTRY is _start: yes\n",
        "auxv AT_RANDOM readable and not all zero: yes\n",
        "stdin: 300000 bytes",
        "malloc 64 MiB: page sum 2088960, last byte 0\n",
        "brk grew by 1048576, byte 0x5a\n",
        "brk back: yes\n",
        "tls_counter 46, tls_buf length 4095\n",
    ] {
        assert!(s.contains(expected), "missing {expected:?} in:\n{s}");
    }
}

#[test]
fn static_program_matches_native() {
    same_as_native("hello_static");
}

#[test]
fn static_pie_program_matches_native() {
    same_as_native("hello_pie");
}

#[test]
fn a_program_run_by_relative_path_sees_that_path() {
    let _g = shared();
    let prog = program("hello_static");
    let dir = prog.parent().expect("out dir");
    let mut native = Command::new("./hello_static");
    native.current_dir(dir);
    let mut sandbox = sandboxed(std::path::Path::new("./hello_static"), &[]);
    sandbox.current_dir(dir);
    let (n, s) = (stdout(&run(native)), stdout(&run(sandbox)));
    assert!(s.contains("auxv AT_EXECFN = ./hello_static\n"), "{s}");
    assert_eq!(n, s);
}

#[test]
fn bad_arguments_get_the_errnos_linux_gives() {
    let _g = shared();
    for probe in ["enosys", "efault", "einval"] {
        let mut native = Command::new(program("probe"));
        native.arg(probe);
        let native = run(native);
        let sandbox = run(sandboxed(&program("probe"), &[probe]));
        assert_eq!(stdout(&native), stdout(&sandbox), "probe {probe}");
        assert_eq!(sandbox.status.code(), Some(0), "probe {probe}: {sandbox:?}");
    }
    let out = run(sandboxed(&program("probe"), &["enosys"]));
    assert!(stdout(&out).contains("syscall(1000) = -1 errno ENOSYS"));
    let out = run(sandboxed(&program("probe"), &["efault"]));
    assert!(stdout(&out).contains("write(bad) = -1 errno EFAULT"));
}

#[test]
fn unsupported_syscalls_are_logged_once_by_name() {
    let _g = shared();
    let mut cmd = Command::new(runsc());
    cmd.args(["do", "--"]).arg(program("probe")).arg("enosys");
    let out = run(cmd);
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines,
        [
            "runsc-rs: warn: unsupported system call syscall_0x3e8 (1000): returning ENOSYS",
            "runsc-rs: warn: unsupported system call number 18446744073709551615 (and any other above 1023): returning ENOSYS",
        ],
        "stderr was:\n{err}"
    );
}

#[test]
fn the_guest_is_pid_1() {
    let _g = shared();
    let out = run(sandboxed(&program("probe"), &["ids"]));
    assert_eq!(stdout(&out), "getpid 1 gettid 1 getppid 0\n");
}

#[test]
fn a_null_write_kills_with_sigsegv() {
    let _g = shared();
    let out = run(sandboxed(&program("probe"), &["segv"]));
    assert_eq!(out.status.code(), Some(128 + 11), "{out:?}");
}

#[test]
fn errors_of_runsc_itself_are_one_line() {
    use std::os::unix::fs::PermissionsExt;
    let _g = shared();
    // Not in /tmp: the sandbox has its own tmpfs there.
    let not_elf = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("runsc-not-elf-{}", std::process::id()));
    std::fs::write(&not_elf, "just text\n").expect("write");
    std::fs::set_permissions(&not_elf, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let not_elf = not_elf.to_string_lossy().into_owned();
    let cases = [
        ("/nonexistent/prog", 127, "no such program"),
        ("no-such-program-anywhere", 127, "no such program"),
        (not_elf.as_str(), 126, "not an ELF executable"),
        ("/etc/passwd", 126, "permission denied"),
    ];
    for (prog, code, why) in cases {
        let out = run(sandboxed(std::path::Path::new(prog), &[]));
        assert_eq!(out.status.code(), Some(code), "{prog}: {out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!("runsc-rs: {prog}: {why}\n")
        );
    }
    let _ = std::fs::remove_file(&not_elf);
}

#[test]
fn no_process_is_left_after_a_run() {
    let _g = shared();
    // The reaper names whatever a run leaves behind (gofer, stubs), this run's only.
    let out = run(reaped(
        Duration::from_secs(30),
        &busybox(),
        &["echo", "hello"],
    ));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(reaper_complaints(&out), Vec::<String>::new());
    let out = run(reaped(
        Duration::from_secs(30),
        &program("probe"),
        &["segv"],
    ));
    assert_eq!(out.status.code(), Some(139));
    assert_eq!(reaper_complaints(&out), Vec::<String>::new());
}

#[test]
fn hostile_memory_calls_behave_as_on_linux() {
    let _g = shared();
    // Unmapping up to the top of user space takes the stack too: SIGSEGV, as natively,
    // and never a hang (the stub's own page lies above the guest's range).
    let mut native = Command::new(program("probe"));
    native.arg("munmap-all");
    let native = run(native);
    let out = run(sandboxed(&program("probe"), &["munmap-all"]));
    assert_eq!(native.status.code(), None, "{native:?}");
    assert_eq!(out.status.code(), Some(128 + 11), "{out:?}");
    let out = run(sandboxed(&program("probe"), &["noreplace"]));
    assert_eq!(
        stdout(&out),
        "MAP_FIXED|MAP_FIXED_NOREPLACE over a mapping: EEXIST, p[0] = A\nMAP_32BIT below 2 GiB: yes\n"
    );
}

#[test]
fn the_vsyscall_page_is_served() {
    let _g = shared();
    let out = run(sandboxed(&program("probe"), &["vsyscall"]));
    assert_eq!(
        stdout(&out),
        "vsyscall time within 2 s of time(): yes\n",
        "{out:?}"
    );
}

#[test]
fn int80_system_calls_get_enosys() {
    let _g = shared();
    let out = run(sandboxed(&program("probe"), &["int80"]));
    assert_eq!(stdout(&out), "int $0x80 getpid = -38\n", "{out:?}");
}

#[test]
fn a_write_to_a_broken_pipe_kills_with_sigpipe() {
    let _g = shared();
    let mut cmd = sandboxed(&program("probe"), &["sigpipe"]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    drop(child.stdout.take()); // The reader goes away.
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(128 + 13));
}
