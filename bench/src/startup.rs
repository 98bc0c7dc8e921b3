//! Start-up of `/bin/true` from one OCI bundle (a static-busybox rootfs): runsc-rs vs runc
//! vs crun, interleaved, wall time per run from spawn to exit.
//!
//! runsc-rs runs it with `do --rootfs BUNDLE/rootfs` (its OCI commands are still to come);
//! runc and crun with `run --bundle`, each with a new container id. On this machine's hybrid
//! cgroups crun refuses to run unless cgroup2's mount is hidden
//! (shared/research/oci-clients.md), so it runs inside `unshare -m` with that mount detached;
//! the cost of that wrapper alone is measured too.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The config.json of the bundle: /bin/true, no terminal, read-only root, the default
/// namespaces of `runc spec` (pid, network, ipc, uts, mount).
const CONFIG: &str = r#"{
  "ociVersion": "1.0.2",
  "process": {
    "terminal": false,
    "user": {"uid": 0, "gid": 0},
    "args": ["/bin/true"],
    "env": ["PATH=/bin"],
    "cwd": "/",
    "noNewPrivileges": true
  },
  "root": {"path": "rootfs", "readonly": true},
  "hostname": "bench",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"}
  ],
  "linux": {
    "namespaces": [
      {"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"},
      {"type": "mount"}
    ]
  }
}"#;

/// One way to start the container, or why it cannot be measured here.
struct Runner {
    name: String,
    command: Result<Box<dyn Fn(usize) -> Command>, String>,
}

/// The start-up table (markdown), measured `reps` times per runner, interleaved.
pub fn report(runsc: &Path, reps: usize) -> String {
    let bundle = match make_bundle() {
        Ok(b) => b,
        Err(e) => return format!("\n## Start-up of /bin/true\n\nNot measured: {e}.\n"),
    };
    let rootfs = bundle.join("rootfs");
    let runsc = runsc.to_path_buf();
    let b = bundle.clone();
    let mut runners = vec![Runner {
        name: "runsc-rs do --rootfs".into(),
        command: Ok(Box::new(move |_| {
            let mut cmd = Command::new(&runsc);
            cmd.arg("do")
                .arg("--rootfs")
                .arg(&rootfs)
                .arg("--")
                .arg("/bin/true");
            cmd
        })),
    }];
    for runtime in ["runc", "crun"] {
        let Some(path) = which(runtime) else {
            runners.push(Runner {
                name: runtime.into(),
                command: Err(format!(
                    "{runtime} is not installed (apt-get install {runtime})"
                )),
            });
            continue;
        };
        let b = b.clone();
        let hybrid = runtime == "crun";
        runners.push(Runner {
            name: if hybrid {
                "crun (in the unshare wrapper)".into()
            } else {
                runtime.into()
            },
            command: Ok(Box::new(move |i| {
                let id = format!("bench-{}-{runtime}-{i}", std::process::id());
                let mut cmd = if hybrid {
                    hide_cgroup2()
                } else {
                    Command::new(&path)
                };
                if hybrid {
                    cmd.arg(&path);
                }
                cmd.args(["run", "--bundle"]).arg(&b).arg(id);
                cmd
            })),
        });
    }
    runners.push(Runner {
        name: "the unshare wrapper alone".into(),
        command: Ok(Box::new(|_| {
            let mut cmd = hide_cgroup2();
            cmd.arg("/bin/true");
            cmd
        })),
    });
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); runners.len()];
    let mut failures: Vec<Option<String>> = vec![None; runners.len()];
    for rep in 0..reps {
        for (i, r) in runners.iter().enumerate() {
            let Ok(make) = &r.command else { continue };
            if failures[i].is_some() {
                continue;
            }
            match time(make(rep)) {
                Ok(ms) => samples[i].push(ms),
                Err(e) => failures[i] = Some(e),
            }
        }
    }
    let _ = std::fs::remove_dir_all(&bundle);
    let base = samples
        .get(1)
        .filter(|s| !s.is_empty())
        .map(|s| median(&mut s.clone()));
    let mut out = format!(
        "\n## Start-up of /bin/true (one bundle, static busybox rootfs)\n\n\
         Wall time from spawn to exit, median of {reps} interleaved runs.\n\n\
         | runtime | ms | vs runc |\n|---|---:|---:|\n"
    );
    for (i, r) in runners.iter().enumerate() {
        let cell = match (&r.command, &failures[i]) {
            (Err(why), _) => format!("| {} | not measured: {why} | |\n", r.name),
            (_, Some(why)) => format!("| {} | failed: {why} | |\n", r.name),
            _ => {
                let m = median(&mut samples[i]);
                let ratio = base.map_or("".into(), |b| format!("{:.2}x", m / b));
                format!("| {} | {m:.1} | {ratio} |\n", r.name)
            }
        };
        out.push_str(&cell);
    }
    out.push_str(
        "\nrunc and crun set up namespaces and cgroups and exec /bin/true on the host kernel; \
         runsc-rs starts a Sentry, a gofer and a stub and runs it on the ptrace platform. \
         crun needs the wrapper here (hybrid cgroups, see shared/research/oci-clients.md): \
         subtract its own cost to compare crun itself.\n",
    );
    out
}

/// `unshare -m` with cgroup2's mount at /sys/fs/cgroup/unified detached, then the program
/// named by the next argument.
fn hide_cgroup2() -> Command {
    let mut cmd = Command::new("unshare");
    cmd.args([
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        "umount -l /sys/fs/cgroup/unified 2>/dev/null; exec \"$@\"",
        "sh",
    ]);
    cmd
}

/// Runs `cmd` to its end and returns the wall time in ms.
fn time(mut cmd: Command) -> Result<f64, String> {
    crate::run(&mut cmd, crate::RUN_LIMIT).map(|done| done.wall.as_secs_f64() * 1e3)
}

/// A bundle under target/: rootfs/bin/{busybox,true} and config.json.
fn make_bundle() -> Result<PathBuf, String> {
    let bundle = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-bundle");
    let _ = std::fs::remove_dir_all(&bundle);
    let bin = bundle.join("rootfs/bin");
    let made = std::fs::create_dir_all(&bin)
        .and_then(|()| std::fs::copy("/bin/busybox", bin.join("busybox")).map(drop))
        .and_then(|()| std::os::unix::fs::symlink("busybox", bin.join("true")))
        .and_then(|()| std::fs::create_dir_all(bundle.join("rootfs/proc")))
        .and_then(|()| std::fs::write(bundle.join("config.json"), CONFIG));
    made.map_err(|e| format!("making the bundle {}: {e}", bundle.display()))?;
    Ok(bundle)
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_else(|| vec!["/usr/sbin".into(), "/usr/bin".into()])
        .into_iter()
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join(name))
        .find(|p| p.exists())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}
