//! `bench platforms`: the KVM platform beside ptrace in one run: a getpid round trip,
//! fork + exec + wait of /bin/true, and the start-up of `runsc-rs do /bin/true`, each
//! natively, on ptrace and on kvm, runs interleaved; with kvm's ratio to ptrace and where
//! kvm's time goes.

use std::path::Path;
use std::process::Command;

use crate::{median, printed_values, run, RUN_LIMIT};

/// getpid calls per run.
const CALLS: &str = "20000";
/// Spawns of /bin/true per fork run.
const SPAWNS: &str = "100";
/// What a hardware VM exit and re-entry costs (platform-limits.md: a CPUID exit from user
/// space is ≈1 µs on hardware KVM, ≈3.5 µs on this machine's hypervisor).
const HARDWARE_EXIT_NS: f64 = 1000.0;

/// How to run a case natively (None) or in the sandbox on a platform.
type SideCommand = Box<dyn Fn(Option<&str>) -> Command>;

/// One measured quantity: how to run it on each side and which figure to take.
struct Metric {
    name: &'static str,
    unit: &'static str,
    /// The command natively, or in the sandbox on `platform`; None for a figure that the
    /// row before it prints as its second.
    command: Option<SideCommand>,
    /// The printed figure to take (by index), or None for the wall time in ms.
    figure: Option<usize>,
}

const SIDES: [Option<&str>; 3] = [None, Some("ptrace"), Some("kvm")];

pub fn report(runsc: &Path, reps: usize) -> String {
    let out = Path::new(env!("OUT_DIR"));
    let (getpid, proc) = (out.join("getpid"), out.join("proc"));
    let sandboxed = {
        let runsc = runsc.to_path_buf();
        move |platform: Option<&str>, prog: &Path, args: &[&str]| {
            let mut cmd = match platform {
                None => Command::new(prog),
                Some(p) => {
                    let mut cmd = Command::new(&runsc);
                    cmd.args(["--platform", p, "do", "--"]).arg(prog);
                    cmd
                }
            };
            cmd.args(args);
            cmd
        }
    };
    let (s1, s2, s3) = (sandboxed.clone(), sandboxed.clone(), sandboxed);
    let metrics = [
        Metric {
            name: "getpid round trip",
            unit: "ns/call",
            command: Some(Box::new(move |p| s1(p, &getpid, &[CALLS]))),
            figure: Some(0),
        },
        Metric {
            name: "… of which user CPU time (on kvm: inside KVM_RUN)",
            unit: "ns/call",
            command: None,
            figure: None,
        },
        Metric {
            name: "fork + execve `/bin/true` + waitpid",
            unit: "µs/spawn",
            command: Some(Box::new(move |p| {
                s2(p, &proc, &["fork", SPAWNS, "/bin/true"])
            })),
            figure: Some(0),
        },
        Metric {
            name: "start-up: `/bin/true`, natively or `runsc-rs do -- /bin/true`",
            unit: "ms",
            command: Some(Box::new(move |p| s3(p, Path::new("/bin/true"), &[]))),
            figure: None,
        },
    ];
    // samples[metric][side]; the second metric is filled from the first's second figure.
    let mut samples = vec![vec![Vec::new(); SIDES.len()]; metrics.len()];
    let mut failed: Vec<Vec<Option<String>>> = vec![vec![None; SIDES.len()]; metrics.len()];
    for _ in 0..=reps {
        for (m, metric) in metrics.iter().enumerate() {
            let Some(command) = &metric.command else {
                continue;
            };
            for (s, side) in SIDES.iter().enumerate() {
                if failed[m][s].is_some() {
                    continue;
                }
                let mut cmd = command(*side);
                match run(&mut cmd, RUN_LIMIT) {
                    Ok(done) => {
                        let values = match metric.figure {
                            Some(_) => printed_values(&done.stdout),
                            None => Ok(vec![done.wall.as_secs_f64() * 1e3]),
                        };
                        match values {
                            Ok(values) => {
                                let i = metric.figure.unwrap_or(0);
                                samples[m][s].push(values.get(i).copied().unwrap_or(f64::NAN));
                                if m == 0 {
                                    samples[1][s].push(values.get(1).copied().unwrap_or(f64::NAN));
                                }
                            }
                            Err(e) => failed[m][s] = Some(e),
                        }
                    }
                    Err(e) => failed[m][s] = Some(e),
                }
            }
        }
    }
    failed[1] = failed[0].clone();
    // The first run of each was a warm-up.
    let med = |v: &mut Vec<f64>| {
        if v.len() > 1 {
            v.remove(0);
        }
        if v.is_empty() {
            f64::NAN
        } else {
            median(v)
        }
    };
    let medians: Vec<Vec<f64>> = samples
        .iter_mut()
        .map(|sides| sides.iter_mut().map(med).collect())
        .collect();
    let mut text = format!(
        "\n## Platforms: kvm beside ptrace\n\nEach figure is the median of {reps} runs of each \
         side, interleaved, after a warm-up run. `kvm` runs on this machine's /dev/kvm, a \
         nested paravirtual implementation (kvm_pvm) where every exit to the host is \
         expensive.\n\n| case | unit | native | ptrace | kvm | kvm / ptrace |\n\
         |---|---|---:|---:|---:|---:|\n"
    );
    for (m, metric) in metrics.iter().enumerate() {
        let cell = |s: usize| match &failed[m][s] {
            Some(why) => format!("failed: {}", why.replace('|', "/")),
            None => format!("{:.1}", medians[m][s]),
        };
        let ratio = if failed[m][1].is_none() && failed[m][2].is_none() {
            format!("{:.2}x", medians[m][2] / medians[m][1])
        } else {
            "–".into()
        };
        text.push_str(&format!(
            "| {} | {} | {} | {} | {} | {ratio} |\n",
            metric.name,
            metric.unit,
            cell(0),
            cell(1),
            cell(2)
        ));
    }
    if failed[0][2].is_none() {
        let (total, in_run) = (medians[0][2], medians[1][2]);
        let sentry = total - in_run;
        let hardware = sentry + HARDWARE_EXIT_NS + medians[0][0];
        text.push_str(&format!(
            "\nWhere kvm's getpid goes: {total:.0} ns per call, of which {in_run:.0} ns are \
             inside KVM_RUN (the guest's user CPU time: the `syscall`, the exit to the host \
             and the re-entry) and {sentry:.0} ns are the Sentry's own work outside it. The \
             exit dominates: this machine's hypervisor makes each one cost tens of \
             microseconds. With a hardware VM exit of ≈{:.0} µs instead, the same design would \
             take about {hardware:.0} ns per getpid (Sentry work + one exit + the native \
             call), {:.1}x ptrace's {:.0} ns here — an estimate from the measured split, not a \
             measurement.\n",
            HARDWARE_EXIT_NS / 1000.0,
            hardware / medians[0][1],
            medians[0][1]
        ));
    }
    text
}
