//! The benchmarks: each measured natively and in the sandbox in the same run, interleaved,
//! several repetitions, medians and ratios. Writes the table to bench/RESULTS.md.
//!
//! Run with `cargo build --release --workspace && target/release/bench`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Repetitions of each variant; the median is reported.
const REPS: usize = 7;
/// getpid calls per repetition.
const CALLS: &str = "100000";

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
    let getpid = Path::new(env!("OUT_DIR")).join("getpid");
    let me = std::env::current_exe().expect("own path");

    let variants: [(&str, Command); 3] = [
        ("native", command(&getpid, &[CALLS])),
        (
            "ptrace floor",
            command(&me, &["--floor", path(&getpid), CALLS]),
        ),
        (
            "sandbox (ptrace)",
            command(&runsc, &["do", "--", path(&getpid), CALLS]),
        ),
    ];
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    let mut variants = variants;
    for _ in 0..REPS {
        for (i, (name, cmd)) in variants.iter_mut().enumerate() {
            samples[i].push(ns_per_call(name, cmd));
        }
    }
    let medians: Vec<f64> = samples.iter_mut().map(|s| median(s)).collect();
    let (native, floor, sandbox) = (medians[0], medians[1], medians[2]);

    let mut report = String::new();
    report.push_str("# Benchmark results\n\n");
    report.push_str(&machine());
    report.push_str(&format!(
        "\nEach figure is the median of {REPS} interleaved runs of {CALLS} calls; \
         `target/release/bench` produced this file.\n\n"
    ));
    report.push_str(
        "## getpid\n\n| variant | ns/call | vs native | vs floor |\n|---|---:|---:|---:|\n",
    );
    for (i, (name, _)) in variants.iter().enumerate() {
        let m = medians[i];
        report.push_str(&format!(
            "| {name} | {m:.0} | {:.1}x | {:.2}x |\n",
            m / native,
            m / floor
        ));
    }
    report.push_str(&format!(
        "\nThe floor is a bare PTRACE_SYSEMU tracer in the project \
         (`platform::ptrace::floor`): waitpid, GETREGS, POKEUSER rax, resume, with the tracer \
         and tracee on one CPU. The sandbox costs **{:.2}x** the floor per getpid.\n",
        sandbox / floor
    ));
    print!("{report}");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("RESULTS.md");
    if let Err(e) = std::fs::write(&out, &report) {
        eprintln!("bench: writing {}: {e}", out.display());
        std::process::exit(1);
    }
}

fn command(prog: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(prog);
    cmd.args(args);
    cmd
}

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
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

/// Runs `cmd` and parses "getpid <ns> ns/call" from its output.
fn ns_per_call(name: &str, cmd: &mut Command) -> f64 {
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
