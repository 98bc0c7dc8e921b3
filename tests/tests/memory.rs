//! The memory manager end to end: dynamically linked host programs, the page cache shared
//! between processes, and faults that kill.

use std::path::Path;
use std::process::Command;

use tests::*;

/// Runs `argv` natively and in the sandbox (both from /) and checks that the output and
/// the exit status are the same.
fn same_as_native(argv: &[&str]) {
    let mut native = Command::new(argv[0]);
    native.args(&argv[1..]).current_dir("/");
    let mut sandbox = sandboxed(Path::new(argv[0]), &argv[1..]);
    sandbox.current_dir("/");
    let (native, sandbox) = (run(native), run(sandbox));
    assert!(native.status.success(), "{argv:?} natively: {native:?}");
    assert_eq!(
        stdout(&sandbox),
        stdout(&native),
        "{argv:?}: stderr in the sandbox:\n{}",
        String::from_utf8_lossy(&sandbox.stderr)
    );
    assert_eq!(sandbox.status.code(), native.status.code(), "{argv:?}");
}

/// Skips (saying why) when a host program the test runs is not installed.
fn installed(path: &str) -> bool {
    let there = Path::new(path).exists();
    if !there {
        eprintln!("skipped: {path} is not installed (scripts/test installs it)");
    }
    there
}

#[test]
fn dynamically_linked_host_programs_match_native() {
    let _g = shared();
    same_as_native(&["/bin/ls", "-la", "/usr/lib"]);
    same_as_native(&["/bin/cat", "/etc/passwd"]);
    same_as_native(&["/usr/bin/sha256sum", "/usr/bin/ls"]);
    if installed("/usr/bin/python3") {
        same_as_native(&[
            "/usr/bin/python3",
            "-c",
            "import json, hashlib, sqlite3; print(json.dumps({'h': hashlib.sha256(b'x').hexdigest()}))",
        ]);
    }
    if installed("/usr/bin/perl") {
        same_as_native(&[
            "/usr/bin/perl",
            "-e",
            r#"print join(",", map { $_*$_ } 1..10), "\n""#,
        ]);
    }
    if installed("/usr/bin/gcc") {
        same_as_native(&["/usr/bin/gcc", "--version"]);
    }
}

/// POSIX shared memory and semaphores (files in /dev/shm mapped MAP_SHARED, futexes on
/// them) as Python's multiprocessing uses them: a segment opened twice, written by a forked
/// child, and a lock made by sem_open.
#[test]
fn python_multiprocessing_shares_memory_and_locks() {
    let _g = shared();
    if !installed("/usr/bin/python3") {
        return;
    }
    let script = "\
import multiprocessing as mp
from multiprocessing import shared_memory as sm
def child(name):
    s = sm.SharedMemory(name)
    s.buf[1] = s.buf[0] + 1
    s.close()
a = sm.SharedMemory(create=True, size=4096)
a.buf[0] = 7
b = sm.SharedMemory(a.name)
print(b.buf[0])
b.close()
p = mp.get_context('fork').Process(target=child, args=(a.name,))
p.start()
p.join()
print(a.buf[1], p.exitcode)
l = mp.Lock()
l.acquire()
l.release()
print('ok')
a.close()
a.unlink()
";
    let out = run(sandboxed(Path::new("/usr/bin/python3"), &["-c", script]));
    assert_eq!(
        stdout(&out),
        "7\n8 0\nok\n",
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success());
}

#[test]
fn a_shell_script_runs_dynamically_linked_commands() {
    let _g = shared();
    let script =
        "for f in /etc/hostname /etc/passwd; do /usr/bin/wc -l $f | /usr/bin/cut -d' ' -f1; done";
    let mut native = Command::new("/bin/sh");
    native.args(["-c", script]);
    let native = run(native);
    let sandbox = run(sandboxed(Path::new("/bin/sh"), &["-c", script]));
    assert_eq!(stdout(&sandbox), stdout(&native), "{sandbox:?}");
    assert!(sandbox.status.success());
}

#[test]
fn a_null_pointer_write_exits_139_without_a_core_file() {
    let _g = shared();
    let dir = std::env::temp_dir().join(format!("runsc-null-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut cmd = sandboxed(&program("nullwrite"), &[]);
    cmd.current_dir(&dir);
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(139), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    let left: Vec<_> = std::fs::read_dir(&dir)
        .expect("read temp dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "files left behind (a core?): {left:?}");
    let _ = std::fs::remove_dir(&dir);
}

#[test]
fn two_processes_mapping_one_file_share_its_pages() {
    let _g = shared();
    let out = run(sandboxed(&program("pagecache"), &[]));
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    let field = |name: &str| -> i64 {
        text.split_whitespace()
            .find_map(|w| w.strip_prefix(name))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {text:?}"))
    };
    let (first, second) = (field("first="), field("second="));
    // The first mapping brings the 64 MiB file into the page cache; the second, in
    // another process, maps the same pages.
    assert!(first >= 63 * 1024, "{text}");
    assert!(second < 4 * 1024, "{text}");
}
