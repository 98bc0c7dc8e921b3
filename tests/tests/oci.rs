//! runsc-rs as an OCI runtime, driven through its runc-compatible CLI on bundles the tests
//! build: a busybox-static root, and a Debian minbase root made with debootstrap.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use tests::{program, runsc, shared, wait_until};

/// A bundle in a directory of its own, with a state root of its own; dropping it deletes
/// its containers and the directory.
struct Bundle {
    dir: PathBuf,
    root: PathBuf,
}

impl Bundle {
    /// A busybox bundle whose config.json is `runsc-rs spec`'s with `args` as the process,
    /// no terminal, the root writable, then changed by `edit`.
    fn busybox(name: &str, args: &[&str], edit: impl FnOnce(&mut Value)) -> Bundle {
        let dir = std::env::temp_dir().join(format!("runsc-rs-oci-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let rootfs = dir.join("rootfs");
        for sub in ["bin", "dev", "proc", "sys", "tmp", "etc", "root"] {
            std::fs::create_dir_all(rootfs.join(sub)).expect("rootfs directories");
        }
        std::fs::copy(tests::busybox(), rootfs.join("bin/busybox")).expect("copying busybox");
        let list = Command::new(tests::busybox())
            .arg("--list")
            .output()
            .expect("busybox --list");
        for applet in String::from_utf8_lossy(&list.stdout).lines() {
            let _ = std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet));
        }
        std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n")
            .expect("passwd");
        std::fs::write(rootfs.join("etc/group"), "root:x:0:\n").expect("group");
        Bundle::with_rootfs(dir, args, |config| {
            config["root"]["readonly"] = json!(false);
            edit(config)
        })
    }

    /// A bundle in `dir`, whose `rootfs` is already there.
    fn with_rootfs(dir: PathBuf, args: &[&str], edit: impl FnOnce(&mut Value)) -> Bundle {
        let root = dir.join("state");
        let bundle = Bundle { dir, root };
        let _ = std::fs::remove_file(bundle.dir.join("config.json"));
        let out = bundle
            .runsc(&["spec", "--bundle"])
            .arg(&bundle.dir)
            .output()
            .expect("spec");
        assert!(out.status.success(), "runsc-rs spec: {out:?}");
        let mut config: Value =
            serde_json::from_slice(&std::fs::read(bundle.dir.join("config.json")).expect("config"))
                .expect("config.json is JSON");
        config["process"]["terminal"] = json!(false);
        config["process"]["args"] = json!(args);
        edit(&mut config);
        std::fs::write(bundle.dir.join("config.json"), config.to_string()).expect("config");
        bundle
    }

    /// runsc-rs with this bundle's state root.
    fn runsc(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(runsc());
        cmd.arg("--root").arg(&self.root).args(args);
        cmd
    }

    /// Runs runsc-rs with `args` (stdin empty) and returns its output. The output goes
    /// through files, not pipes: a container made by `create` holds its stdio for as long
    /// as it lives, as runc's does, and a pipe would not reach its end before that.
    fn run(&self, args: &[&str]) -> Output {
        run_via_files(self.runsc(args), &self.dir)
    }

    /// Runs runsc-rs with `args` and asserts it succeeded.
    fn ok(&self, args: &[&str]) -> Output {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "runsc-rs {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn create(&self, id: &str) {
        let bundle = self.dir.to_string_lossy().into_owned();
        self.ok(&[
            "create",
            "--bundle",
            &bundle,
            "--pid-file",
            &self.pid_file(id),
            id,
        ]);
    }

    fn pid_file(&self, id: &str) -> String {
        self.dir
            .join(format!("{id}.pid"))
            .to_string_lossy()
            .into_owned()
    }

    fn state(&self, id: &str) -> Value {
        let out = self.ok(&["state", id]);
        serde_json::from_slice(&out.stdout).expect("state is JSON")
    }

    fn status(&self, id: &str) -> String {
        self.state(id)["status"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    fn bundle_arg(&self) -> String {
        self.dir.to_string_lossy().into_owned()
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        let ids = self.run(&["list", "-q"]);
        for id in String::from_utf8_lossy(&ids.stdout).lines() {
            let _ = self.run(&["delete", "--force", id]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `cmd` with stdin empty and stdout and stderr in files under `dir`.
fn run_via_files(mut cmd: Command, dir: &Path) -> Output {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let (out_path, err_path) = (dir.join(format!(".out{n}")), dir.join(format!(".err{n}")));
    let out = std::fs::File::create(&out_path).expect("stdout file");
    let err = std::fs::File::create(&err_path).expect("stderr file");
    let status = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .status()
        .expect("running runsc-rs");
    let output = Output {
        status,
        stdout: std::fs::read(&out_path).unwrap_or_default(),
        stderr: std::fs::read(&err_path).unwrap_or_default(),
    };
    let _ = std::fs::remove_file(out_path);
    let _ = std::fs::remove_file(err_path);
    output
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Whether host process `pid` exists and is not a zombie.
fn alive(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(false)
}

#[test]
fn create_start_kill_delete_walk_through_the_states() {
    let _guard = shared();
    let b = Bundle::busybox("states", &["/bin/sleep", "100"], |_| {});
    b.create("c1");
    let state = b.state("c1");
    assert_eq!(state["status"], "created");
    assert_eq!(state["id"], "c1");
    assert_eq!(state["ociVersion"], "1.0.2-dev");
    let pid = state["pid"].as_i64().expect("pid");
    assert!(alive(pid), "the sandbox {pid} runs once created");
    let pid_file = std::fs::read_to_string(b.pid_file("c1")).expect("pid file");
    assert_eq!(pid_file.trim(), pid.to_string());
    b.ok(&["start", "c1"]);
    assert_eq!(b.status("c1"), "running");
    let again = b.run(&["start", "c1"]);
    assert!(!again.status.success(), "a second start fails");
    let list = text(&b.ok(&["list"]).stdout);
    assert!(
        list.lines()
            .any(|l| l.starts_with("c1 ") && l.contains("running")),
        "{list}"
    );
    b.ok(&["kill", "c1", "KILL"]);
    assert!(wait_until(Duration::from_secs(5), || b.status("c1") == "stopped"));
    assert_eq!(b.state("c1")["pid"], 0);
    b.ok(&["delete", "c1"]);
    assert!(!alive(pid), "no sandbox left after delete");
    assert!(!b.root.join("c1").exists(), "no state left after delete");
    let gone = b.run(&["state", "c1"]);
    assert!(!gone.status.success());
    assert!(
        text(&gone.stderr).contains("does not exist"),
        "{}",
        text(&gone.stderr)
    );
}

#[test]
fn the_pid_file_process_exits_as_the_container_does_for_a_subreaper() {
    let _guard = shared();
    let shim = |b: &Bundle, signal: Option<&str>| {
        let mut cmd = Command::new(program("shim"));
        cmd.arg(runsc()).arg(&b.root).arg(&b.dir).arg("c");
        cmd.args(signal);
        let out = run_via_files(cmd, &b.dir);
        assert!(out.status.success(), "shim: {}", text(&out.stderr));
        text(&out.stdout).trim().to_string()
    };
    let exits = Bundle::busybox("pidfile-exit", &["/bin/sh", "-c", "exit 7"], |_| {});
    assert_eq!(shim(&exits, None), "exited 7");
    let killed = Bundle::busybox("pidfile-kill", &["/bin/sleep", "100"], |_| {});
    assert_eq!(shim(&killed, Some("9")), "killed 9");
}

#[test]
fn run_prints_the_containers_output_and_exits_with_its_status() {
    let _guard = shared();
    let b = Bundle::busybox(
        "run",
        &["/bin/sh", "-c", "echo hello from the container; exit 3"],
        |_| {},
    );
    let out = b.run(&["run", "--bundle", &b.bundle_arg(), "r1"]);
    assert_eq!(text(&out.stdout), "hello from the container\n");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        !b.root.join("r1").exists(),
        "run deletes the container it ran"
    );
}

#[test]
fn hooks_run_on_the_host_with_the_state_at_each_point() {
    let _guard = shared();
    let dir = std::env::temp_dir().join(format!("runsc-rs-oci-hooks-out-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("hook output directory");
    let hook = |name: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {}/{name}", dir.display())]});
    let b = Bundle::busybox("hooks", &["/bin/true"], |c| {
        c["hooks"] = json!({
            "prestart": [hook("prestart")],
            "createRuntime": [hook("createRuntime")],
            "createContainer": [hook("createContainer")],
            "startContainer": [hook("startContainer")],
            "poststart": [hook("poststart")],
            "poststop": [hook("poststop")],
        });
    });
    let out = b.run(&["run", "--bundle", &b.bundle_arg(), "h1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for (point, status) in [
        ("prestart", "creating"),
        ("createRuntime", "creating"),
        ("createContainer", "creating"),
        ("startContainer", "created"),
        ("poststart", "running"),
        ("poststop", "stopped"),
    ] {
        let got = std::fs::read(dir.join(point)).unwrap_or_else(|_| panic!("{point} hook ran"));
        let state: Value = serde_json::from_slice(&got).expect("the hook got JSON");
        assert_eq!(state["id"], "h1", "{point}");
        assert_eq!(state["status"], status, "{point}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_failed_create_is_one_error_line_in_the_json_log_and_leaves_nothing() {
    let _guard = shared();
    let b = Bundle::busybox("badexec", &["/no/such/program"], |_| {});
    let log = b.dir.join("log.json");
    let log_arg = log.to_string_lossy().into_owned();
    let out = b.run(&[
        "--log",
        &log_arg,
        "--log-format",
        "json",
        "create",
        "--bundle",
        &b.bundle_arg(),
        "x1",
    ]);
    assert!(!out.status.success(), "create of a missing program fails");
    let lines = std::fs::read_to_string(&log).expect("the log was written");
    let last_error = lines
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .rfind(|v| v["level"] == "error")
        .unwrap_or_else(|| panic!("no error line in {lines}"));
    let msg = last_error["msg"].as_str().unwrap_or_default();
    assert!(msg.contains("/no/such/program"), "{msg}");
    assert!(!msg.contains('\n'), "{msg}");
    assert!(
        !b.root.join("x1").exists(),
        "a failed create leaves no state"
    );
}

#[test]
fn delete_force_kills_a_running_container_and_removes_its_cgroup() {
    let _guard = shared();
    let id = format!("del{}", std::process::id());
    let cgroup = format!("/runsc-rs-test/{id}");
    let b = Bundle::busybox("delete", &["/bin/sleep", "100"], |c| {
        c["linux"]["cgroupsPath"] = json!(cgroup);
        c["linux"]["resources"]["memory"] = json!({"limit": 64 << 20});
        c["linux"]["resources"]["pids"] = json!({"limit": 200});
    });
    b.create(&id);
    b.ok(&["start", &id]);
    let pid = b.state(&id)["pid"].as_i64().expect("pid");
    // The sandbox's processes are in the container's cgroup, with its limits.
    let memory = Path::new("/sys/fs/cgroup/memory").join(cgroup.trim_start_matches('/'));
    if memory.exists() {
        let limit = std::fs::read_to_string(memory.join("memory.limit_in_bytes")).expect("limit");
        assert_eq!(limit.trim(), (64u64 << 20).to_string());
        let procs = std::fs::read_to_string(memory.join("cgroup.procs")).expect("procs");
        assert!(procs.lines().any(|p| p == pid.to_string()), "{procs}");
        // `update`, as `docker update` calls it, changes the limit in place.
        b.ok(&["update", "--memory", "128m", &id]);
        let limit = std::fs::read_to_string(memory.join("memory.limit_in_bytes")).expect("limit");
        assert_eq!(limit.trim(), (128u64 << 20).to_string());
    }
    let refused = b.run(&["delete", &id]);
    assert!(
        !refused.status.success(),
        "delete of a running container needs --force"
    );
    assert!(
        text(&refused.stderr).contains("not stopped"),
        "{}",
        text(&refused.stderr)
    );
    b.ok(&["delete", "--force", &id]);
    assert!(!alive(pid));
    assert!(!memory.exists(), "the cgroup is gone");
    // Deleting what is gone is fine with --force, as for runc.
    b.ok(&["delete", "--force", &id]);
}

#[test]
fn a_console_socket_receives_a_working_terminal() {
    let _guard = shared();
    let b = Bundle::busybox("console", &["/bin/sh"], |c| {
        c["process"]["terminal"] = json!(true);
        c["process"]["consoleSize"] = json!({"height": 30, "width": 100});
    });
    let socket = b.dir.join("console.sock");
    let mut receiver = Command::new("/usr/bin/python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/console_socket.py"))
        .arg(&socket)
        .arg("trap 'echo winch' WINCH; stty size; echo $((6*7))x; tty\n")
        .arg("10")
        .args(["40", "120", "stty size; exit\n"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    assert!(
        wait_until(Duration::from_secs(10), || socket.exists()),
        "the receiver listens"
    );
    let socket_arg = socket.to_string_lossy().into_owned();
    b.ok(&[
        "create",
        "--bundle",
        &b.bundle_arg(),
        "--console-socket",
        &socket_arg,
        "t1",
    ]);
    b.ok(&["start", "t1"]);
    let mut printed = String::new();
    use std::io::Read;
    receiver
        .stdout
        .take()
        .expect("receiver stdout")
        .read_to_string(&mut printed)
        .expect("reading the terminal's output");
    let _ = receiver.wait();
    assert!(
        printed.contains("30 100"),
        "the terminal has the size asked for: {printed:?}"
    );
    assert!(printed.contains("42x"), "the shell answered: {printed:?}");
    assert!(
        printed.contains("/dev/console") || printed.contains("/dev/pts"),
        "{printed:?}"
    );
    assert!(wait_until(Duration::from_secs(5), || b.status("t1") == "stopped"));
    b.ok(&["delete", "t1"]);
}

#[test]
fn exec_runs_a_process_in_a_running_container_with_its_own_stdio_and_status() {
    let _guard = shared();
    let b = Bundle::busybox("exec", &["/bin/sleep", "100"], |c| {
        c["process"]["env"] = json!(["PATH=/bin", "FROM_CONFIG=yes"]);
    });
    b.create("e1");
    b.ok(&["start", "e1"]);
    // The exec's own stdout is the process's; its status is the process's.
    let out = b.run(&[
        "exec",
        "--env",
        "EXTRA=1",
        "e1",
        "/bin/sh",
        "-c",
        "echo $FROM_CONFIG $EXTRA $$; exit 5",
    ]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
    let words: Vec<String> = text(&out.stdout)
        .split_whitespace()
        .map(String::from)
        .collect();
    assert_eq!(&words[..2], ["yes", "1"], "{words:?}");
    assert_ne!(
        words[2], "1",
        "an exec'd process is not the container's init"
    );
    // As a user, in a directory.
    let out = b.run(&[
        "exec",
        "--user",
        "1000:1000",
        "--cwd",
        "/tmp",
        "e1",
        "/bin/sh",
        "-c",
        "id -u; pwd",
    ]);
    assert_eq!(text(&out.stdout), "1000\n/tmp\n", "{}", text(&out.stderr));
    // --detach with --pid-file: the pid is a process that ends as the exec'd one does.
    let pid_file = b.dir.join("exec.pid");
    let pid_arg = pid_file.to_string_lossy().into_owned();
    b.ok(&[
        "exec",
        "--detach",
        "--pid-file",
        &pid_arg,
        "e1",
        "/bin/sleep",
        "1",
    ]);
    let pid: i64 = std::fs::read_to_string(&pid_file)
        .expect("pid file")
        .trim()
        .parse()
        .expect("a pid");
    assert!(alive(pid), "the detached exec's waiter runs");
    assert!(
        wait_until(Duration::from_secs(10), || !alive(pid)),
        "and ends with the process"
    );
    // The process file form, as containerd and podman use it.
    let process = b.dir.join("process.json");
    std::fs::write(
        &process,
        json!({"args": ["/bin/echo", "from a file"], "cwd": "/", "user": {"uid": 0, "gid": 0}})
            .to_string(),
    )
    .expect("process.json");
    let out = b.run(&["exec", "--process", &process.to_string_lossy(), "e1"]);
    assert_eq!(text(&out.stdout), "from a file\n", "{}", text(&out.stderr));
    let missing = b.run(&["exec", "e1", "/no/such/program"]);
    assert!(!missing.status.success());
    b.ok(&["delete", "--force", "e1"]);
}

#[test]
fn ps_lists_the_containers_processes() {
    let _guard = shared();
    let b = Bundle::busybox("ps", &["/bin/sh", "-c", "sleep 100 & sleep 200"], |_| {});
    b.create("p1");
    b.ok(&["start", "p1"]);
    let table = || text(&b.ok(&["ps", "p1"]).stdout);
    assert!(
        wait_until(Duration::from_secs(5), || table().contains("sleep 100")),
        "{}",
        table()
    );
    let listing = table();
    assert!(listing.starts_with("UID"), "{listing}");
    assert!(listing.contains("sleep 200"), "{listing}");
    let pids: Value =
        serde_json::from_slice(&b.ok(&["ps", "--format", "json", "p1"]).stdout).expect("JSON");
    let pids: Vec<i64> = pids
        .as_array()
        .expect("an array")
        .iter()
        .filter_map(Value::as_i64)
        .collect();
    // The shell execs its last command: init is `sleep 200`, its child `sleep 100`.
    assert_eq!(pids.len(), 2, "{pids:?}");
    assert!(pids.contains(&1), "{pids:?}");
    b.ok(&["delete", "--force", "p1"]);
}

#[test]
fn pause_stops_the_container_and_resume_lets_it_go_on() {
    let _guard = shared();
    let b = Bundle::busybox(
        "pause",
        &[
            "/bin/sh",
            "-c",
            "i=0; while true; do i=$((i+1)); echo $i > /tmp/count; done",
        ],
        |_| {},
    );
    b.create("z1");
    b.ok(&["start", "z1"]);
    let count = || {
        std::fs::read_to_string(b.dir.join("rootfs/tmp/count"))
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    assert!(
        wait_until(Duration::from_secs(10), || count() > 10),
        "the loop runs"
    );
    b.ok(&["pause", "z1"]);
    assert_eq!(b.status("z1"), "paused");
    let paused_at = count();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(count(), paused_at, "nothing runs while paused");
    b.ok(&["resume", "z1"]);
    assert_eq!(b.status("z1"), "running");
    assert!(
        wait_until(Duration::from_secs(10), || count() > paused_at + 10),
        "it goes on"
    );
    let again = b.run(&["resume", "z1"]);
    assert!(
        !again.status.success(),
        "resuming a running container fails"
    );
    b.ok(&["delete", "--force", "z1"]);
}

#[test]
fn run_on_a_terminal_gives_the_container_that_terminal() {
    let _guard = shared();
    let b = Bundle::busybox("own-tty", &["/bin/sh"], |c| {
        c["process"]["terminal"] = json!(true);
    });
    // `script` runs runsc-rs on a pseudo-terminal of its own, 20 rows by 70 columns.
    let command = format!(
        "stty rows 20 cols 70; {} --root {} run --bundle {} tt; echo rc=$?",
        runsc().display(),
        b.root.display(),
        b.dir.display()
    );
    let mut script = Command::new("script");
    script.args(["-qec", &command, "/dev/null"]);
    let keys = b"stty size; echo $((6*7))x; exit 4\r";
    let out = tests::run_with_stdin(script, keys);
    let printed = text(&out.stdout);
    assert!(printed.contains("20 70"), "{printed:?}");
    assert!(printed.contains("42x"), "{printed:?}");
    assert!(printed.contains("rc=4"), "{printed:?}");
}

#[test]
fn a_debian_minbase_root_runs_its_dynamically_linked_programs() {
    let _guard = shared();
    // Built once with debootstrap (tests/scripts/rootfs.sh), kept under target/ and shared
    // read-only by every run.
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("rootfs-debian");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/rootfs.sh");
    let made = Command::new(&script)
        .arg("debian")
        .arg(&cache)
        .status()
        .expect("rootfs.sh");
    assert!(
        made.success(),
        "debootstrap of a Debian minbase root failed"
    );
    let dir = std::env::temp_dir().join(format!("runsc-rs-oci-debian-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("bundle directory");
    let b = Bundle::with_rootfs(
        dir,
        &["/bin/bash", "-c", "cat /etc/debian_version; id -un; ls /usr/bin | wc -l; dpkg-query -W -f='${Version}' coreutils; echo; touch /etc/x"],
        |c| {
            c["root"]["path"] = json!(cache);
            c["root"]["readonly"] = json!(true);
        },
    );
    let out = b.run(&["run", "--bundle", &b.bundle_arg(), "deb"]);
    let printed = text(&out.stdout);
    let lines: Vec<&str> = printed.lines().collect();
    assert!(
        lines.first().is_some_and(|v| v.starts_with("12.")),
        "{printed:?} {}",
        text(&out.stderr)
    );
    assert_eq!(lines.get(1), Some(&"root"), "{printed:?}");
    assert!(
        lines
            .get(2)
            .and_then(|n| n.trim().parse::<u32>().ok())
            .is_some_and(|n| n > 100),
        "{printed:?}"
    );
    assert!(
        lines.get(3).is_some_and(|v| v.starts_with("9.")),
        "coreutils 9.x: {printed:?}"
    );
    // The root is read-only: the last command fails, and so the container does.
    assert!(
        text(&out.stderr).contains("Read-only file system"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn exec_tty_on_a_terminal_gives_the_process_a_terminal_of_that_size() {
    let _guard = shared();
    let b = Bundle::busybox("exec-tty", &["/bin/sleep", "100"], |_| {});
    b.create("et");
    b.ok(&["start", "et"]);
    let command = format!(
        "stty rows 25 cols 90; {} --root {} exec -t et /bin/sh; echo rc=$?",
        runsc().display(),
        b.root.display()
    );
    let mut script = Command::new("script");
    script.args(["-qec", &command, "/dev/null"]);
    let out = tests::run_with_stdin(script, b"stty size; echo $((6*7))x; exit 4\r");
    let printed = text(&out.stdout);
    assert!(printed.contains("25 90"), "{printed:?}");
    assert!(printed.contains("42x"), "{printed:?}");
    assert!(printed.contains("rc=4"), "{printed:?}");
    b.ok(&["delete", "--force", "et"]);
}
