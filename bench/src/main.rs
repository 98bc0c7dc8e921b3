//! The benchmarks: each measured natively and in the sandbox in the same run, interleaved,
//! several repetitions, medians and ratios. Writes the table to bench/RESULTS.md.
//!
//! Run with `cargo build --release --workspace && target/release/bench`;
//! `target/release/bench rings` runs only the gofer-ring section and prints it without
//! writing the file.

mod ring;
mod rings;
mod startup;

use std::path::{Path, PathBuf};
use std::process::Command;

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
    let runsc = sibling("runsc-rs");
    // `bench --startup`: only the start-up comparison, printed, RESULTS.md untouched.
    if args.get(1).map(String::as_str) == Some("--startup") {
        print!("{}", startup::report(&runsc, STARTUP_REPS));
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
    if args.get(1).map(String::as_str) == Some("rings") {
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

/// Runs `cmd` and parses the value from its "<label> <value> <unit>" output.
fn measure(name: &str, cmd: &mut Command) -> f64 {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {name}: {e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    let value = text
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|_| out.status.success());
    match value {
        Some(v) => v,
        None => {
            eprintln!("bench: {name} failed: {out:?}");
            std::process::exit(1);
        }
    }
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
