//! The conformance runner: builds the C test programs in `conformance/c/` (one per area), runs
//! every case natively and in the sandbox, and prints a table and one closing line.
//!
//! ```text
//! cargo run -p conformance -- [--platform ptrace|kvm] [--filter AREA]
//! ```
//!
//! A case that fails natively is a broken test. A case that fails in the sandbox must be
//! listed in `conformance/expected-failures.txt` with the reason; a listed case that passes
//! must be removed from the list. Either kind of surprise makes the runner exit non-zero.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long one case may run before it counts as hung.
const CASE_TIMEOUT: Duration = Duration::from_secs(30);

struct Options {
    platform: String,
    filter: Option<String>,
}

fn usage() -> ! {
    eprintln!("usage: conformance [--platform ptrace|kvm] [--filter AREA]");
    std::process::exit(2);
}

fn parse_args() -> Options {
    let mut opts = Options {
        platform: "ptrace".into(),
        filter: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--platform" => opts.platform = args.next().unwrap_or_else(|| usage()),
            "--filter" => opts.filter = Some(args.next().unwrap_or_else(|| usage())),
            _ => usage(),
        }
    }
    if opts.platform != "ptrace" && opts.platform != "kvm" {
        eprintln!("conformance: there is no platform {}", opts.platform);
        std::process::exit(2);
    }
    opts
}

/// The outcome of one case in one environment.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Pass,
    /// Failed, with the line or reason that says why.
    Fail(String),
}

impl Outcome {
    fn passed(&self) -> bool {
        *self == Outcome::Pass
    }
}

fn main() {
    let opts = parse_args();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workspace = root.parent().expect("workspace root");
    let runsc = build_runsc(workspace);
    let out_dir = workspace.join("target").join("conformance");
    let expected = read_expected(&root.join("expected-failures.txt"));

    let mut areas = areas(&root.join("c"));
    if let Some(filter) = &opts.filter {
        areas.retain(|a| a == filter);
        if areas.is_empty() {
            eprintln!("conformance: no area named {filter}");
            std::process::exit(2);
        }
    }

    let started = Instant::now();
    let (mut passed, mut expected_failures) = (0, 0);
    let mut surprises: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    println!(
        "{:<14} {:>6} {:>8} {:>9} {:>9}",
        "area", "cases", "native", "sandbox", "expected"
    );
    for area in &areas {
        let prog = match build_area(&root.join("c"), &out_dir, area) {
            Ok(prog) => prog,
            Err(e) => {
                surprises.push(format!("{area}: does not build: {e}"));
                continue;
            }
        };
        let cases = list_cases(&prog);
        let (mut native_ok, mut sandbox_ok, mut xfail) = (0, 0, 0);
        for case in &cases {
            let id = format!("{area}.{case}");
            seen.insert(id.clone());
            let native = run_case(Command::new(&prog), case);
            let mut cmd = Command::new(&runsc);
            cmd.args(["do", "--platform", &opts.platform, "--"])
                .arg(&prog);
            let sandbox = run_case(cmd, case);
            native_ok += native.passed() as usize;
            sandbox_ok += sandbox.passed() as usize;
            match (&native, &sandbox, expected.get(&id)) {
                (Outcome::Fail(why), _, _) => {
                    surprises.push(format!("{id}: BROKEN TEST, fails natively: {why}"))
                }
                (Outcome::Pass, Outcome::Pass, None) => passed += 1,
                (Outcome::Pass, Outcome::Pass, Some(_)) => surprises.push(format!(
                    "{id}: passes now; remove it from expected-failures.txt"
                )),
                (Outcome::Pass, Outcome::Fail(_), Some(_)) => {
                    xfail += 1;
                    expected_failures += 1;
                }
                (Outcome::Pass, Outcome::Fail(why), None) => {
                    surprises.push(format!("{id}: FAILS in the sandbox: {why}"))
                }
            }
        }
        println!(
            "{area:<14} {:>6} {native_ok:>8} {sandbox_ok:>9} {xfail:>9}",
            cases.len()
        );
    }
    for (id, why) in &expected {
        if why.is_empty() {
            surprises.push(format!(
                "{id}: listed in expected-failures.txt without a reason"
            ));
        }
    }
    if opts.filter.is_none() {
        for id in expected.keys().filter(|id| !seen.contains(*id)) {
            surprises.push(format!(
                "{id}: listed in expected-failures.txt but no such case"
            ));
        }
    }
    println!();
    for s in &surprises {
        println!("{s}");
    }
    println!(
        "platform {}: {expected_failures} cases failed as expected (conformance/expected-failures.txt); {:.1} s",
        opts.platform,
        started.elapsed().as_secs_f64()
    );
    println!("{passed} passed, {} failed", surprises.len());
    std::process::exit(if surprises.is_empty() { 0 } else { 1 });
}

/// Builds runsc-rs with the profile this runner was built with and returns its path.
fn build_runsc(workspace: &Path) -> PathBuf {
    let exe = std::env::current_exe().expect("own path");
    let release = exe
        .parent()
        .and_then(Path::file_name)
        .is_some_and(|p| p == "release");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet", "-p", "runsc-rs"])
        .current_dir(workspace);
    if release {
        cmd.arg("--release");
    }
    match cmd.status() {
        Ok(s) if s.success() => {}
        other => {
            eprintln!("conformance: building runsc-rs failed: {other:?}");
            std::process::exit(2);
        }
    }
    exe.with_file_name("runsc-rs")
}

/// The areas: every `c/*.c` but the harness, sorted.
fn areas(dir: &Path) -> Vec<String> {
    let mut areas: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".c").map(str::to_string)
        })
        .filter(|n| n != "harness")
        .collect();
    areas.sort();
    areas
}

/// Compiles one area (statically: only static programs run in the sandbox so far), unless
/// the binary is newer than its sources: the harness, the area's file and every header (an
/// area may include any of them).
fn build_area(src: &Path, out: &Path, area: &str) -> Result<PathBuf, String> {
    std::fs::create_dir_all(out).map_err(|e| e.to_string())?;
    let prog = out.join(area);
    let harness = src.join("harness.c");
    let area_c = src.join(format!("{area}.c"));
    let headers = std::fs::read_dir(src)
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "h"));
    let mtime = |p: &Path| p.metadata().and_then(|m| m.modified()).ok();
    if let Some(built) = mtime(&prog) {
        let mut sources = [harness.clone(), area_c.clone()].into_iter().chain(headers);
        if sources.all(|s| mtime(&s).is_some_and(|t| t <= built)) {
            return Ok(prog);
        }
    }
    let output = Command::new("gcc")
        .args(["-O1", "-static", "-Wall", "-Werror", "-o"])
        .arg(&prog)
        .arg(&harness)
        .arg(&area_c)
        .output()
        .map_err(|e| format!("running gcc: {e}"))?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    Ok(prog)
}

fn list_cases(prog: &Path) -> Vec<String> {
    let out = Command::new(prog)
        .arg("--list")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("listing {}: {e}", prog.display()));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Runs `cmd --case NAME` with a timeout and judges its output.
fn run_case(mut cmd: Command, case: &str) -> Outcome {
    cmd.args(["--case", case])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return Outcome::Fail(format!("cannot start: {e}")),
    };
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if start.elapsed() > CASE_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Outcome::Fail(format!("timed out after {CASE_TIMEOUT:?}"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            Err(e) => return Outcome::Fail(format!("wait: {e}")),
        }
    }
    let out = match child.wait_with_output() {
        Ok(out) => out,
        Err(e) => return Outcome::Fail(format!("collecting output: {e}")),
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    if out.status.success() && stdout.lines().any(|l| l == format!("PASS {case}")) {
        return Outcome::Pass;
    }
    let why = stdout
        .lines()
        .find(|l| l.starts_with("FAIL"))
        .map(str::to_string)
        .unwrap_or_else(|| {
            let err = String::from_utf8_lossy(&out.stderr);
            format!("{} {}", out.status, err.lines().last().unwrap_or(""))
        });
    Outcome::Fail(why)
}

/// `area.case reason…` per line; `#` starts a comment.
fn read_expected(path: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(|l| match l.split_once(char::is_whitespace) {
            Some((id, why)) => (id.to_string(), why.trim().to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect()
}
