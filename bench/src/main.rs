//! The benchmarks: each measured natively and in the sandbox in the same run, interleaved,
//! several repetitions, medians and ratios. Writes the table to bench/RESULTS.md.
//!
//! Run with `cargo build --release --workspace && target/release/bench`. One section alone,
//! printed without writing the file: `target/release/bench SECTION` (or `--SECTION`), where
//! SECTION is `rings` (gofer rings), `startup` (OCI start-up against runc and crun), `python`
//! (start-up of dynamically linked programs), `mmap` (map/touch/unmap churn), `faults`
//! (first-touch page faults), `fork` (fork+exec+wait), `pipe` (pipe throughput), `futex`
//! (futex ping-pong between threads), `shell` (a shell loop of /bin/true) or `platforms`
//! (kvm beside ptrace: getpid, fork+exec, start-up).

mod compare;
mod memory;
mod platforms;
mod procs;
mod python;
mod ring;
mod rings;
mod startup;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// Repetitions of each variant; the median is reported.
const REPS: usize = 5;
/// Repetitions of each variant in the gofer-rings section: its figures are closer together
/// and the machine is shared, so it takes more.
const RINGS_REPS: usize = 7;
/// Repetitions of the start-up comparison (each run is short).
const STARTUP_REPS: usize = 21;
/// getpid calls per repetition.
const GETPID_CALLS: &str = "100000";
/// Files stat'ed, and created and deleted, per repetition.
const FILES: usize = 10_000;
/// Size of the file read through the gofer.
const READ_BYTES: usize = 256 << 20;
/// The longest any one run of a program may take before it is killed and counted as failed
/// (a sandbox that hangs on something it cannot do yet must not stop the whole run).
const RUN_LIMIT: Duration = Duration::from_secs(120);
/// The sections that can be run alone.
const SECTIONS: &str = "rings, startup, python, mmap, faults, fork, pipe, futex, shell, platforms";

/// One way of running a benchmark program.
struct Variant {
    name: &'static str,
    command: Command,
}

/// A benchmark: variants that each print "<label> <value> <unit>"; the first is native.
struct Benchmark {
    title: &'static str,
    unit: &'static str,
    /// Higher values are better (throughput) rather than lower (latency).
    higher_is_better: bool,
    variants: Vec<Variant>,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // Hidden mode: run a program under the bare PTRACE_SYSEMU floor tracer.
    if args.get(1).map(String::as_str) == Some("--floor") {
        let prog = PathBuf::from(&args[2]);
        let code = match platform::ptrace::floor::run_getpid_floor(&prog, &args[2..]) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("bench: floor tracer: {e}");
                1
            }
        };
        std::process::exit(code);
    }
    // `bench SECTION` (or `--SECTION`): that section only, printed, RESULTS.md untouched.
    let section = args.get(1).map(|a| a.trim_start_matches('-'));
    if let Some(s) = section.filter(|s| !SECTIONS.split(", ").any(|known| known == *s)) {
        eprintln!("bench: no section {s:?}; the sections are {SECTIONS}");
        std::process::exit(2);
    }
    let runsc = sibling("runsc-rs");
    let alone = match section {
        Some("startup") => Some(startup::report(&runsc, STARTUP_REPS)),
        Some("python") => Some(python::report(&runsc, STARTUP_REPS)),
        Some("mmap") => Some(memory::churn_report(&runsc, REPS)),
        Some("faults") => Some(memory::faults_report(&runsc, REPS)),
        Some("fork") => Some(procs::fork_report(&runsc, REPS)),
        Some("pipe") => Some(procs::pipe_report(&runsc, REPS)),
        Some("futex") => Some(procs::futex_report(&runsc, REPS)),
        Some("shell") => Some(procs::shell_report(&runsc, REPS)),
        Some("platforms") => Some(platforms::report(&runsc, REPS)),
        _ => None,
    };
    if let Some(report) = alone {
        print!("{report}");
        return;
    }
    let out = Path::new(env!("OUT_DIR"));
    let (getpid, fs, par) = (out.join("getpid"), out.join("fs"), out.join("par"));
    let me = std::env::current_exe().expect("own path");
    let data = setup_data();
    let stat_dir = data.join("stat");
    let read_file = data.join("read.bin");
    let create_dir = data.join("create");
    let sync_dir = data.join("sync");
    const _: () = assert!(FILES >= 4 * rings::STATS_EACH);
    if section == Some("rings") {
        print!(
            "{}",
            rings::report(RINGS_REPS, &runsc, &par, &stat_dir, &read_file, &sync_dir)
        );
        let _ = std::fs::remove_dir_all(&data);
        return;
    }
    let sandbox = |args: &[&str]| {
        let mut cmd = Command::new(&runsc);
        cmd.args(["do", "--"]).args(args);
        cmd
    };
    let sandbox_through = |args: &[&str]| {
        let mut cmd = Command::new(&runsc);
        cmd.args(["do", "--overlay", "none", "--"]).args(args);
        cmd
    };
    let p = |p: &Path| p.to_str().expect("UTF-8 path").to_string();
    let files = FILES.to_string();
    let mut benchmarks = vec![
        Benchmark {
            title: "getpid",
            unit: "ns/call",
            higher_is_better: false,
            variants: vec![
                Variant {
                    name: "native",
                    command: command(&getpid, &[GETPID_CALLS]),
                },
                Variant {
                    name: "ptrace floor",
                    command: command(&me, &["--floor", &p(&getpid), GETPID_CALLS]),
                },
                Variant {
                    name: "sandbox (ptrace)",
                    command: sandbox(&[&p(&getpid), GETPID_CALLS]),
                },
            ],
        },
        Benchmark {
            title: "stat of 10,000 host files",
            unit: "ns/stat",
            higher_is_better: false,
            variants: vec![
                Variant {
                    name: "native",
                    command: command(&fs, &["stat", &p(&stat_dir), &files]),
                },
                Variant {
                    name: "sandbox (gofer, overlay)",
                    command: sandbox(&[&p(&fs), "stat", &p(&stat_dir), &files]),
                },
            ],
        },
        Benchmark {
            title: "reading a 256 MiB host file",
            unit: "MB/s",
            higher_is_better: true,
            variants: vec![
                Variant {
                    name: "native",
                    command: command(&fs, &["read", &p(&read_file)]),
                },
                Variant {
                    name: "sandbox (gofer, overlay)",
                    command: sandbox(&[&p(&fs), "read", &p(&read_file)]),
                },
            ],
        },
        Benchmark {
            title: "create+write+close, then unlink, 10,000 small files",
            unit: "ns/file",
            higher_is_better: false,
            variants: vec![
                Variant {
                    name: "native (host disk)",
                    command: command(&fs, &["create", &p(&create_dir), &files]),
                },
                Variant {
                    name: "sandbox, memory overlay",
                    command: sandbox(&[&p(&fs), "create", &p(&create_dir), &files]),
                },
                Variant {
                    name: "sandbox, through the gofer (--overlay none)",
                    command: sandbox_through(&[&p(&fs), "create", &p(&create_dir), &files]),
                },
            ],
        },
    ];
    let mut report = String::new();
    report.push_str("# Benchmark results\n\n");
    report.push_str(&machine());
    report.push_str(&format!(
        "\nEach figure is the median of {REPS} interleaved runs; `target/release/bench` produced \
         this file. Ratios are against the native run (for throughput, native / sandbox, so a \
         ratio above 1 is always the sandbox being slower).\n"
    ));
    for b in &mut benchmarks {
        let mut samples: Vec<Vec<f64>> = vec![Vec::new(); b.variants.len()];
        for _ in 0..REPS {
            for (i, v) in b.variants.iter_mut().enumerate() {
                samples[i].push(measure(v.name, &mut v.command));
            }
        }
        let medians: Vec<f64> = samples.iter_mut().map(|s| median(s)).collect();
        report.push_str(&format!(
            "\n## {}\n\n| variant | {} | vs native |\n|---|---:|---:|\n",
            b.title, b.unit
        ));
        for (v, m) in b.variants.iter().zip(&medians) {
            let ratio = if b.higher_is_better {
                medians[0] / m
            } else {
                m / medians[0]
            };
            report.push_str(&format!("| {} | {m:.0} | {ratio:.2}x |\n", v.name));
        }
        if b.title == "getpid" {
            report.push_str(&format!(
                "\nThe floor is a bare PTRACE_SYSEMU tracer in the project \
                 (`platform::ptrace::floor`): waitpid, GETREGS, POKEUSER rax, resume, with the \
                 tracer and tracee on one CPU. The sandbox costs **{:.2}x** the floor per getpid.\n",
                medians[2] / medians[1]
            ));
        }
    }
    report.push_str(&ring::report(REPS));
    report.push_str(&rings::report(
        RINGS_REPS, &runsc, &par, &stat_dir, &read_file, &sync_dir,
    ));
    report.push_str(&startup::report(&runsc, STARTUP_REPS));
    report.push_str(&python::report(&runsc, STARTUP_REPS));
    report.push_str(&memory::churn_report(&runsc, REPS));
    report.push_str(&memory::faults_report(&runsc, REPS));
    report.push_str(&procs::fork_report(&runsc, REPS));
    report.push_str(&procs::pipe_report(&runsc, REPS));
    report.push_str(&procs::futex_report(&runsc, REPS));
    report.push_str(&procs::shell_report(&runsc, REPS));
    report.push_str(&platforms::report(&runsc, REPS));
    print!("{report}");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("RESULTS.md");
    if let Err(e) = std::fs::write(&out, &report) {
        eprintln!("bench: writing {}: {e}", out.display());
        std::process::exit(1);
    }
    let _ = std::fs::remove_dir_all(&data);
}

/// Makes the files the file system benchmarks read, under target/ (not /tmp).
fn setup_data() -> PathBuf {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-data");
    let _ = std::fs::remove_dir_all(&data);
    let made = std::fs::create_dir_all(data.join("stat"))
        .and_then(|()| std::fs::create_dir_all(data.join("create")))
        .and_then(|()| std::fs::create_dir_all(data.join("sync")))
        .and_then(|()| {
            (0..FILES).try_for_each(|i| std::fs::write(data.join(format!("stat/f{i}")), b"x"))
        })
        .and_then(|()| std::fs::write(data.join("read.bin"), vec![0x5au8; READ_BYTES]));
    if let Err(e) = made {
        eprintln!("bench: preparing {}: {e}", data.display());
        std::process::exit(1);
    }
    data
}

fn command(prog: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(prog);
    cmd.args(args);
    cmd
}

/// A binary built beside this one (same target directory and profile).
fn sibling(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("own path");
    let bin = exe.with_file_name(name);
    if !bin.exists() {
        eprintln!(
            "bench: {} is missing: cargo build --release --workspace",
            bin.display()
        );
        std::process::exit(1);
    }
    bin
}

/// Runs `cmd` and parses the value from its "<label> <value> <unit>" output; exits if it
/// fails.
fn measure(name: &str, cmd: &mut Command) -> f64 {
    match run(cmd, RUN_LIMIT).and_then(|done| printed_values(&done.stdout)) {
        Ok(values) => values[0],
        Err(e) => {
            eprintln!("bench: {name} failed: {e}");
            std::process::exit(1);
        }
    }
}

/// The values in a benchmark program's "<label> <value> <unit> [<value> <unit>]..."
/// output: at least one.
fn printed_values(stdout: &str) -> Result<Vec<f64>, String> {
    let values: Vec<f64> = stdout
        .split_whitespace()
        .skip(1)
        .step_by(2)
        .map_while(|v| v.parse().ok())
        .collect();
    if values.is_empty() {
        return Err(format!(
            "no \"<label> <value> <unit>\" in its output {stdout:?}"
        ));
    }
    Ok(values)
}

/// A program that ran to a successful exit.
struct Finished {
    stdout: String,
    /// From just before the spawn to the exit.
    wall: Duration,
}

/// Runs `cmd` to its end with stdin closed and its output captured; kills it if it has not
/// ended within `limit`. A failure (it did not start, was killed, exited non-zero) comes
/// back as one line: how it ended and the last line of its stderr.
fn run(cmd: &mut Command, limit: Duration) -> Result<Finished, String> {
    use nix::sys::wait::{waitid, Id, WaitPidFlag};

    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn().map_err(|e| format!("could not start: {e}"))?;
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let read_all = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut text);
            }
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let stdout = read_all(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = read_all(child.stderr.take().map(|p| Box::new(p) as _));
    // Set once the child has exited, before it is reaped: until it is reaped its pid cannot
    // be reused, so killing it while this is false under the lock cannot hit another process.
    let exited = Arc::new(Mutex::new(false));
    let (tx, rx) = mpsc::channel();
    let waiter_exited = Arc::clone(&exited);
    std::thread::spawn(move || {
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT;
        while waitid(Id::Pid(pid), flags) == Err(nix::errno::Errno::EINTR) {}
        let wall = start.elapsed();
        *waiter_exited.lock().unwrap_or_else(|e| e.into_inner()) = true;
        let status = child.wait();
        let out = stdout.join().unwrap_or_default();
        let err = stderr.join().unwrap_or_default();
        let _ = tx.send((status, out, err, wall));
    });
    let Ok((status, stdout, stderr, wall)) = rx.recv_timeout(limit) else {
        let exited = exited.lock().unwrap_or_else(|e| e.into_inner());
        if *exited {
            // Something it started still holds its stdout or stderr.
            return Err(format!("its output was still open {limit:?} on"));
        }
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        return Err(format!("did not end within {limit:?} (killed)"));
    };
    let status = status.map_err(|e| format!("waiting for it: {e}"))?;
    if !status.success() {
        let why = stderr.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("");
        return Err(format!("{status}: {}", why.trim()));
    }
    Ok(Finished { stdout, wall })
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A description of the machine the figures come from.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("Machine: {model}, {cpus} CPUs, Linux {}.\n", kernel.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]);
        cmd
    }

    #[test]
    fn printed_values_reads_every_value_after_the_label() {
        assert_eq!(printed_values("getpid 128.5 ns/call\n"), Ok(vec![128.5]));
        assert_eq!(
            printed_values("read 12 ns/page 0.0020 faults/page\n"),
            Ok(vec![12.0, 0.002])
        );
        assert!(printed_values("").is_err());
        assert!(printed_values("mmap: No such device\n").is_err());
    }

    #[test]
    fn run_returns_the_output_of_a_program_that_succeeds() {
        let done = run(&mut sh("echo churn 5 ns/iteration"), RUN_LIMIT).expect("sh runs");
        assert_eq!(done.stdout, "churn 5 ns/iteration\n");
        assert!(done.wall < RUN_LIMIT);
    }

    #[test]
    fn run_says_how_a_program_failed_in_one_line() {
        let why = run(
            &mut sh("echo noise >&2; echo the reason >&2; exit 3"),
            RUN_LIMIT,
        )
        .err()
        .expect("exit 3 is a failure");
        assert_eq!(why, "exit status: 3: the reason");
        let why = run(&mut Command::new("/nonexistent/prog"), RUN_LIMIT)
            .err()
            .expect("a missing program is a failure");
        assert!(why.starts_with("could not start: "), "{why}");
    }

    #[test]
    fn run_kills_a_program_that_overruns_its_limit() {
        let start = Instant::now();
        let why = run(&mut sh("exec sleep 30"), Duration::from_millis(200))
            .err()
            .expect("a program past its limit is a failure");
        assert_eq!(why, "did not end within 200ms (killed)");
        assert!(start.elapsed() < Duration::from_secs(10));
    }
}
