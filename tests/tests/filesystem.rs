//! The sandbox's file system: the host root served by the gofer under the memory overlay,
//! other roots with --rootfs, and what a hostile rootfs cannot do.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use tests::*;

fn native(args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(busybox());
    cmd.args(args).current_dir("/");
    run(cmd)
}

fn sandbox(args: &[&str]) -> std::process::Output {
    let mut cmd = sandboxed(&busybox(), args);
    cmd.current_dir("/");
    run(cmd)
}

#[test]
fn host_files_read_as_natively() {
    let _g = shared();
    for args in [
        &["cat", "/etc/os-release"][..],
        &["find", "/usr/share/doc", "-maxdepth", "1"][..],
        // Files only: directories show the overlay's device, as with Linux overlayfs.
        &["stat", "/etc/os-release", "/usr/bin/busybox"][..],
        &["ls", "-la", "/usr/lib"][..],
    ] {
        let (n, s) = (native(args), sandbox(args));
        assert_eq!(s.status.code(), Some(0), "{args:?}: {s:?}");
        assert_eq!(stdout(&n), stdout(&s), "{args:?}");
        assert!(!stdout(&s).is_empty());
    }
}

#[test]
fn ls_of_the_root_matches_but_for_the_sandbox_mounts() {
    let _g = shared();
    // /dev, /proc and /sys are the sandbox's own, and /tmp changes as tests run; the total
    // block count includes them.
    let keep = |out: &std::process::Output| -> Vec<String> {
        stdout(out)
            .lines()
            .filter(|l| !l.starts_with("total"))
            .filter(|l| {
                !["dev", "tmp", "proc", "sys"]
                    .iter()
                    .any(|m| l.ends_with(&format!(" {m}")))
            })
            .map(str::to_string)
            .collect()
    };
    let (n, s) = (native(&["ls", "-la", "/"]), sandbox(&["ls", "-la", "/"]));
    assert_eq!(keep(&n), keep(&s));
    assert!(keep(&s).len() > 5);
}

#[test]
fn writes_stay_in_the_sandbox() {
    let _g = shared();
    let before = std::fs::read("/etc/hostname").expect("host /etc/hostname");
    // echo and read are shell builtins: no fork is needed.
    let script = "echo sandboxed > /etc/hostname; read l < /etc/hostname; echo \"$l\"; \
                  echo new > /usr/new-file; read m < /usr/new-file; echo \"$m\"";
    let out = sandbox(&["sh", "-c", script]);
    assert_eq!(stdout(&out), "sandboxed\nnew\n", "{out:?}");
    assert_eq!(
        std::fs::read("/etc/hostname").expect("host /etc/hostname"),
        before
    );
    assert!(!Path::new("/usr/new-file").exists());
}

/// A rootfs holding a static busybox, in the target's temp folder (not /tmp, which the
/// sandbox replaces with its own tmpfs).
fn rootfs(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("bin")).expect("mkdir rootfs/bin");
    std::fs::copy(busybox(), dir.join("bin/busybox")).expect("copy busybox");
    dir
}

fn in_rootfs(root: &Path, overlay: &str, script: &str) -> std::process::Output {
    let mut cmd = Command::new(runsc());
    cmd.arg("do")
        .arg("--rootfs")
        .arg(root)
        .args(["--overlay", overlay, "--"]);
    cmd.args(["/bin/busybox", "sh", "-c", script]);
    run(cmd)
}

#[test]
fn overlay_none_writes_through_to_the_rootfs() {
    let _g = shared();
    let root = rootfs("rootfs-none");
    let out = in_rootfs(&root, "memory", "echo kept-in-memory > /data");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        !root.join("data").exists(),
        "the memory overlay wrote to the rootfs"
    );
    let out = in_rootfs(
        &root,
        "none",
        "echo written > /data; read l < /data; echo \"$l\"",
    );
    assert_eq!(stdout(&out), "written\n", "{out:?}");
    assert_eq!(
        std::fs::read_to_string(root.join("data")).expect("data"),
        "written\n"
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn symlinks_in_the_rootfs_never_lead_out_of_it() {
    use std::os::unix::fs::symlink;
    let _g = shared();
    let root = rootfs("rootfs-escape");
    let secret =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("secret-{}", std::process::id()));
    std::fs::write(&secret, "SECRET\n").expect("write secret");
    let depth = "../".repeat(root.components().count() + 2);
    let relative = format!("{depth}{}", secret.display());
    symlink(&secret, root.join("absolute")).expect("symlink");
    symlink(&relative, root.join("relative")).expect("symlink");
    symlink(
        format!("/proc/self/root{}", secret.display()),
        root.join("procroot"),
    )
    .expect("symlink");
    symlink("/etc/shadow", root.join("shadow")).expect("symlink");
    symlink("../../../../../../../..", root.join("up")).expect("symlink");
    // The host itself can follow them (the test is meaningful).
    assert_eq!(
        std::fs::read_to_string(root.join("absolute")).expect("host follows"),
        "SECRET\n"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("relative")).expect("host follows"),
        "SECRET\n"
    );
    for overlay in ["memory", "none"] {
        let script = "for f in /absolute /relative /procroot /shadow /up/etc/shadow; do \
                      read l < $f && echo \"read $f: $l\"; done; echo checked";
        let out = in_rootfs(&root, overlay, script);
        let text = stdout(&out);
        assert_eq!(text, "checked\n", "{overlay}: {out:?}");
    }
    let _ = std::fs::remove_file(&secret);
    let _ = std::fs::remove_dir_all(&root);
}

/// The gofer process runsc-rs `pid` started.
fn gofer_of(pid: u32) -> Option<i32> {
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
    children
        .split_whitespace()
        .filter_map(|c| c.parse::<i32>().ok())
        .find(|c| {
            std::fs::read(format!("/proc/{c}/cmdline"))
                .map(|cmd| cmd.split(|&b| b == 0).nth(1) == Some(b"gofer"))
                .unwrap_or(false)
        })
}

#[test]
fn killing_the_gofer_gives_eio_and_one_line_and_no_hang() {
    let _g = shared();
    // Program pages come from the gofer too (the page cache fills on first touch, and a
    // page that cannot be read is SIGBUS, as on Linux): `echo` runs once before the gofer
    // dies so that its code is in memory when the loop ends.
    let script =
        "echo warm >/dev/null; while read l < /etc/os-release; do :; done; echo loop ended";
    let mut child = sandboxed(&busybox(), &["sh", "-c", script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn runsc-rs");
    let pid = child.id();
    let mut gofer = None;
    assert!(wait_until(Duration::from_secs(10), || {
        gofer = gofer_of(pid);
        gofer.is_some()
    }));
    std::thread::sleep(Duration::from_millis(300));
    let gofer = gofer.expect("gofer pid");
    let killed = Command::new("kill")
        .args(["-KILL", &gofer.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    assert!(
        wait_until(Duration::from_secs(15), || child
            .try_wait()
            .ok()
            .flatten()
            .is_some()),
        "runsc-rs did not exit after its gofer died"
    );
    let out = child.wait_with_output().expect("output");
    assert_eq!(stdout(&out), "loop ended\n");
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("gofer")).collect();
    assert_eq!(lines.len(), 1, "stderr:\n{err}");
    assert!(
        lines[0].contains(&format!("the gofer (pid {gofer}) was killed by SIGKILL")),
        "{err}"
    );
}

#[test]
fn every_change_reaches_the_rootfs_through_the_confined_gofer() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let _g = shared();
    let root = rootfs("rootfs-changes");
    // One applet per run: a shell would need fork for each, which comes with processes.
    let steps: &[&[&str]] = &[
        &["mkdir", "/d"],
        &["chmod", "700", "/d"],
        &["touch", "/d/f"],
        &["truncate", "-s", "10", "/d/f"],
        &["ln", "-s", "f", "/d/sym"],
        &["ln", "/d/f", "/d/hard"],
        &["mv", "/d/f", "/d/g"],
        &["touch", "-d", "2001-02-03 04:05:06", "/d/g"],
        &["chown", "0:0", "/d/g"],
        &["rm", "/d/hard"],
    ];
    for step in steps {
        let mut cmd = Command::new(runsc());
        cmd.arg("do")
            .arg("--rootfs")
            .arg(&root)
            .args(["--overlay", "none", "--", "/bin/busybox"]);
        cmd.args(*step);
        let out = run(cmd);
        assert_eq!(out.status.code(), Some(0), "{step:?}: {out:?}");
    }
    let d = root.join("d");
    assert_eq!(
        std::fs::metadata(&d).expect("d").permissions().mode() & 0o777,
        0o700
    );
    let g = std::fs::metadata(d.join("g")).expect("g");
    assert_eq!((g.len(), g.nlink()), (10, 1));
    assert_eq!(g.mtime(), 981173106, "touch -d set the time");
    assert_eq!(
        std::fs::read_link(d.join("sym")).expect("sym"),
        Path::new("f")
    );
    assert!(!d.join("f").exists() && !d.join("hard").exists());
    let out = run({
        let mut cmd = Command::new(runsc());
        cmd.arg("do").arg("--rootfs").arg(&root).args([
            "--overlay",
            "none",
            "--",
            "/bin/busybox",
            "rm",
            "-r",
            "/d",
        ]);
        cmd
    });
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(!d.exists());
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn the_gofer_sees_only_its_root_and_runs_under_seccomp() {
    let _g = shared();
    let root = rootfs("rootfs-confined");
    let mut cmd = Command::new(runsc());
    cmd.arg("do")
        .arg("--rootfs")
        .arg(&root)
        .args(["--", "/bin/busybox", "sleep", "5"]);
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let mut gofer = None;
    assert!(wait_until(Duration::from_secs(10), || {
        gofer = gofer_of(pid);
        gofer.is_some()
    }));
    let gofer = gofer.expect("gofer");
    // Give it a moment to finish setting up (pivot_root, seccomp) after the handshake.
    assert!(wait_until(Duration::from_secs(5), || {
        std::fs::read_to_string(format!("/proc/{gofer}/status"))
            .is_ok_and(|s| s.contains("Seccomp:\t2"))
    }));
    // Its root is the rootfs, pivoted into: only what the rootfs holds is there.
    let seen: Vec<String> = std::fs::read_dir(format!("/proc/{gofer}/root"))
        .expect("gofer root")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(seen, ["bin"]);
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn volumes_write_through_to_the_host_and_ro_volumes_refuse() {
    let _g = shared();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("volume");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("in.txt"), "from the host\n").expect("write");
    let rw = format!("{}:/data/rw", dir.display());
    let ro = format!("{}:/data/ro:ro", dir.display());
    let mut cmd = Command::new(runsc());
    cmd.args(["do", "-v", &rw, "-v", &ro, "--", "/bin/busybox", "sh", "-c"])
        .arg(
            "read line < /data/ro/in.txt; echo \"$line\"; echo out > /data/rw/out.txt; \
             echo no > /data/ro/no.txt || echo refused",
        );
    let out = run(cmd);
    assert_eq!(stdout(&out), "from the host\nrefused\n", "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Read-only file system"));
    assert_eq!(
        std::fs::read_to_string(dir.join("out.txt")).expect("out.txt on the host"),
        "out\n"
    );
    assert!(!dir.join("no.txt").exists());
    // A volume that is not there is one clear line and exit 125.
    let mut cmd = Command::new(runsc());
    cmd.args([
        "do",
        "-v",
        "/nonexistent-volume:/x",
        "--",
        "/bin/busybox",
        "true",
    ]);
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(125));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("/nonexistent-volume: No such file or directory"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A container's mounts from a config.json (`do --oci-mounts`, the OCI runtime's code):
/// Docker's three files bound from one directory through one gofer (hosts read-only), a
/// bound directory, Docker's /dev, a noexec and nodev tmpfs, a masked file and directory, a
/// read-only path.
#[test]
fn oci_mounts_bind_files_and_directories_mask_and_make_read_only() {
    let _g = shared();
    let bundle = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("oci-mounts");
    let _ = std::fs::remove_dir_all(&bundle);
    std::fs::create_dir_all(bundle.join("container/data")).expect("mkdir");
    for (file, content) in [
        ("hostname", "c0ffee\n"),
        ("hosts", "127.0.0.1 localhost\n"),
        ("resolv.conf", "nameserver 10.0.0.53\n"),
    ] {
        std::fs::write(bundle.join("container").join(file), content).expect("write");
    }
    let config = r#"{
      "ociVersion": "1.1.0",
      "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/run", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "noexec", "mode=755"]},
        {"destination": "/data", "type": "bind", "source": "container/data", "options": ["rbind"]},
        {"destination": "/etc/resolv.conf", "type": "bind", "source": "container/resolv.conf", "options": ["rbind", "rprivate"]},
        {"destination": "/etc/hostname", "type": "bind", "source": "container/hostname", "options": ["rbind", "rprivate"]},
        {"destination": "/etc/hosts", "type": "bind", "source": "container/hosts", "options": ["rbind", "rprivate", "ro"]}
      ],
      "linux": {
        "maskedPaths": ["/etc/os-release", "/usr/share/doc", "/no/such/path"],
        "readonlyPaths": ["/usr"]
      }
    }"#;
    std::fs::write(bundle.join("config.json"), config).expect("config.json");
    let script = "cat /etc/hostname /etc/hosts /etc/resolv.conf; echo new-name > /etc/hostname; \
                  echo x > /etc/hosts || echo hosts refused; echo out > /data/out; \
                  echo x > /usr/x || echo usr refused; wc -c < /etc/os-release; \
                  ls /usr/share/doc | wc -l; readlink /dev/ptmx; grep -c ' gofer ' /proc/mounts; \
                  cp /bin/busybox /run/bb && /run/bb true || echo exec refused; \
                  mknod /run/null c 1 3 && cat /run/null || echo open refused";
    let mut cmd = Command::new(runsc());
    cmd.arg("do")
        .arg("--oci-mounts")
        .arg(bundle.join("config.json"))
        .args(["--", "/bin/busybox", "sh", "-c", script]);
    let out = run(cmd);
    assert_eq!(
        stdout(&out),
        "c0ffee\n127.0.0.1 localhost\nnameserver 10.0.0.53\nhosts refused\nusr refused\n\
         0\n0\npts/ptmx\n4\nexec refused\nopen refused\n",
        "{out:?}"
    );
    let host = |file: &str| std::fs::read_to_string(bundle.join("container").join(file));
    assert_eq!(host("hostname").expect("hostname"), "new-name\n");
    assert_eq!(host("hosts").expect("hosts"), "127.0.0.1 localhost\n");
    assert_eq!(host("data/out").expect("data/out"), "out\n");
    // A type the Sentry cannot mount is one clear line and exit 125.
    let config = r#"{"ociVersion": "1.1.0", "mounts": [{"destination": "/mnt", "type": "nfs", "source": "s:/x"}]}"#;
    std::fs::write(bundle.join("config.json"), config).expect("config.json");
    let mut cmd = Command::new(runsc());
    cmd.arg("do")
        .arg("--oci-mounts")
        .arg(bundle.join("config.json"))
        .args(["--", "/bin/busybox", "true"]);
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(125));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("type \"nfs\" is not supported"), "{err}");
    let _ = std::fs::remove_dir_all(&bundle);
}

#[test]
fn processes_at_once_read_host_files_over_several_gofer_rings() {
    let _g = shared();
    let files = [
        "/etc/os-release",
        "/bin/busybox",
        "/usr/share/common-licenses/GPL-3",
    ];
    let mut args = vec!["4", "3"];
    args.extend(files);
    let sorted = |out: &std::process::Output| {
        let mut lines: Vec<String> = stdout(out).lines().map(str::to_string).collect();
        lines.sort();
        lines
    };
    let mut cmd = Command::new(program("forkread"));
    cmd.args(&args);
    let native = run(cmd);
    assert_eq!(native.status.code(), Some(0), "{native:?}");
    assert_eq!(sorted(&native).len(), 4 * files.len());
    // 1 ring (the children queue on it), fewer rings than children, as many, more.
    for rings in ["1", "3", "4", "16"] {
        let mut cmd = Command::new(runsc());
        cmd.args(["do", "--gofer-rings", rings, "--"])
            .arg(program("forkread"))
            .args(&args);
        let out = run(cmd);
        assert_eq!(out.status.code(), Some(0), "{rings} rings: {out:?}");
        assert_eq!(sorted(&out), sorted(&native), "{rings} rings");
        // Nothing on stderr: in particular, the gofer exited cleanly when asked to stop, so
        // its seccomp allow-list covers its ring threads' way out.
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "",
            "{rings} rings: {out:?}"
        );
    }
}
