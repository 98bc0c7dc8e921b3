//! How many gofer rings serve best: K guest processes at once (bench/c/par.c) stat'ing or
//! reading host files, or stat'ing while another fsyncs, natively and in the sandbox under
//! `--gofer-rings 1, 2, 4`, each with the gofer pinned to the Sentry's CPU (runsc-rs's
//! placement) and unpinned (`--gofer-cpu any`). Also what each ring costs at start-up.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::{measure, median};

/// Processes at once.
const KS: [usize; 3] = [1, 2, 4];
/// Rings per gofer.
const RINGS: [u32; 3] = [1, 2, 4];
/// Files each process stats; the harness makes `4 * STATS_EACH` of them (`crate::FILES`).
pub const STATS_EACH: usize = 2_500;
/// Processes at once in the fsync table: one fsyncing, the others stat'ing.
const SYNC_KS: [usize; 2] = [2, 4];
/// Files each stat'ing process stats while another fsyncs (fewer: a stat can wait behind
/// an fsync).
const SYNC_STATS_EACH: usize = 500;
/// Bytes each process reads, from its own quarter of the 256 MiB file.
const READ_EACH: usize = 64 << 20;
/// Runs of `runsc-rs do -- getpid 1` per start-up figure.
const STARTS: usize = 20;
/// A run starts once the machine has been less busy than this over [`QUIET_SAMPLE`]: it is
/// shared, and everything in the sandbox is pinned to one CPU, so another process on that
/// CPU halves a figure.
pub const QUIET_BELOW: f64 = 0.15;
pub const QUIET_SAMPLE: Duration = Duration::from_millis(500);
/// Longest wait for quiet before running anyway (counted in the report).
pub const QUIET_PATIENCE: Duration = Duration::from_secs(30);

/// Busy and total jiffies of all CPUs so far, from /proc/stat.
fn cpu_jiffies() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    let total: u64 = fields.iter().sum();
    // idle and iowait are the fourth and fifth fields.
    let idle = fields.get(3)? + fields.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// Waits until the machine is quiet; returns false if it never was within the patience.
pub fn wait_quiet() -> bool {
    let start = Instant::now();
    while start.elapsed() < QUIET_PATIENCE {
        let Some((busy0, total0)) = cpu_jiffies() else {
            return true;
        };
        std::thread::sleep(QUIET_SAMPLE);
        let Some((busy1, total1)) = cpu_jiffies() else {
            return true;
        };
        let total = total1.saturating_sub(total0).max(1);
        if (busy1.saturating_sub(busy0) as f64) / (total as f64) < QUIET_BELOW {
            return true;
        }
    }
    false
}

/// One way of running `par`: natively (`rings: None`) or in the sandbox.
#[derive(Clone, Copy)]
struct Way {
    rings: Option<u32>,
    pinned: bool,
}

impl Way {
    fn name(&self) -> String {
        match self.rings {
            None => "native".into(),
            Some(n) => format!(
                "sandbox, {n} ring{}, gofer {}",
                if n == 1 { "" } else { "s" },
                if self.pinned {
                    "on the Sentry's CPU"
                } else {
                    "unpinned"
                }
            ),
        }
    }

    fn command(&self, runsc: &Path, prog: &Path, args: &[String], through: bool) -> Command {
        match self.rings {
            None => {
                let mut cmd = Command::new(prog);
                cmd.args(args);
                cmd
            }
            Some(n) => {
                let mut cmd = Command::new(runsc);
                cmd.args(["do", "--gofer-rings", &n.to_string()]);
                if !self.pinned {
                    cmd.args(["--gofer-cpu", "any"]);
                }
                if through {
                    cmd.args(["--overlay", "none"]);
                }
                cmd.arg("--").arg(prog).args(args);
                cmd
            }
        }
    }
}

fn ways() -> Vec<Way> {
    let mut ways = vec![Way {
        rings: None,
        pinned: true,
    }];
    for pinned in [true, false] {
        for n in RINGS {
            ways.push(Way {
                rings: Some(n),
                pinned,
            });
        }
    }
    ways
}

/// One table: a way of running `par` at several K.
struct Mode {
    title: &'static str,
    unit: &'static str,
    higher_is_better: bool,
    ks: &'static [usize],
    /// `par`'s arguments for K processes.
    args: Box<dyn Fn(usize) -> Vec<String>>,
    /// Run the sandbox with `--overlay none`, so that writes reach the host through the gofer.
    through: bool,
}

/// The section of the report. `par` is the program, `stat_dir` holds f0..f9999 (one byte
/// each), `read_file` 256 MiB of 0x5a, `sync_dir` is an empty host directory.
pub fn report(
    reps: usize,
    runsc: &Path,
    par: &Path,
    stat_dir: &Path,
    read_file: &Path,
    sync_dir: &Path,
) -> String {
    let ways = ways();
    let p = |p: &Path| p.to_string_lossy().into_owned();
    let (stat_dir, read_file, sync_dir) = (p(stat_dir), p(read_file), p(sync_dir));
    let modes = [
        Mode {
            title: "stat",
            unit: "ns/stat",
            higher_is_better: false,
            ks: &KS,
            args: Box::new({
                let dir = stat_dir.clone();
                move |k| {
                    vec![
                        "stat".into(),
                        k.to_string(),
                        dir.clone(),
                        STATS_EACH.to_string(),
                    ]
                }
            }),
            through: false,
        },
        Mode {
            title: "read",
            unit: "MB/s",
            higher_is_better: true,
            ks: &KS,
            args: Box::new(move |k| {
                let each = READ_EACH.to_string();
                vec!["read".into(), k.to_string(), read_file.clone(), each]
            }),
            through: false,
        },
        Mode {
            title: "stat while one more process writes and fsyncs",
            unit: "ns/stat",
            higher_is_better: false,
            ks: &SYNC_KS,
            args: Box::new(move |k| {
                vec![
                    "syncstat".into(),
                    k.to_string(),
                    stat_dir.clone(),
                    SYNC_STATS_EACH.to_string(),
                    sync_dir.clone(),
                ]
            }),
            through: true,
        },
    ];
    let mut out = format!(
        "\n## Gofer rings: K processes at once\n\n\
         K guest processes (`bench/c/par.c`, fork + waitpid) run at once. For `stat` each \
         stats {STATS_EACH} host files of its own (walked afresh: one gofer walk each); for \
         `read` each preads its own 64 MiB quarter of a host file in 1 MiB reads; in the \
         third table one process writes 4 KiB to a host file and fsyncs it in a loop (a host \
         call that blocks the gofer thread serving it) while the other K-1 each stat \
         {SYNC_STATS_EACH} files (sandbox with `--overlay none`, so the writes reach the host). \
         The figure is wall-clock time from before the first fork to after the last (stat) \
         child is reaped, for all of them together (so it includes the forks), as ns per stat \
         or total MB/s; in brackets, the ratio to native for the same K (for MB/s, native / \
         sandbox: above 1 is slower). Each cell is the median of {reps} repetitions; every \
         repetition runs every variant of every K in turn, so load on the machine is spread \
         over them all. \"Gofer on the Sentry's CPU\" is runsc-rs's placement (the Sentry pins \
         itself, and the gofer it starts, to the CPU it runs on); \"unpinned\" is the hidden \
         `--gofer-cpu any`, where the gofer's threads go wherever the host schedules them \
         (the Sentry's threads stay pinned).\n",
    );
    let (mut runs, mut noisy) = (0, 0);
    for mode in &modes {
        // samples[k][way]
        let mut samples = vec![vec![Vec::new(); ways.len()]; mode.ks.len()];
        for _ in 0..reps {
            for (ki, &k) in mode.ks.iter().enumerate() {
                let args = (mode.args)(k);
                for (wi, way) in ways.iter().enumerate() {
                    let mut cmd = way.command(runsc, par, &args, mode.through);
                    let name = format!("{} K={k} {}", mode.title, way.name());
                    runs += 1;
                    if !wait_quiet() {
                        noisy += 1;
                    }
                    samples[ki][wi].push(measure(&name, &mut cmd));
                }
            }
        }
        out.push_str(&format!(
            "\n### {} ({}, {})\n\n| variant |{}\n|---|{}\n",
            mode.title,
            mode.unit,
            if mode.higher_is_better {
                "higher is better"
            } else {
                "lower is better"
            },
            mode.ks
                .iter()
                .map(|k| format!(" K={k} |"))
                .collect::<String>(),
            mode.ks.iter().map(|_| "---:|").collect::<String>(),
        ));
        let medians: Vec<Vec<f64>> = samples
            .iter_mut()
            .map(|per_way| per_way.iter_mut().map(|s| median(s)).collect())
            .collect();
        for (wi, way) in ways.iter().enumerate() {
            out.push_str(&format!("| {} |", way.name()));
            for per_way in &medians {
                let (native, m) = (per_way[0], per_way[wi]);
                let ratio = if mode.higher_is_better {
                    native / m
                } else {
                    m / native
                };
                out.push_str(&format!(" {m:.0} ({ratio:.2}x) |"));
            }
            out.push('\n');
        }
    }
    out.push_str(&format!(
        "\nEach run waited until the machine had been under {:.0} % busy for {} ms; {noisy} of \
         {runs} runs found no such moment within {} s and ran anyway.\n",
        QUIET_BELOW * 100.0,
        QUIET_SAMPLE.as_millis(),
        QUIET_PATIENCE.as_secs()
    ));
    out.push_str(&startup(reps, runsc, par));
    out.push_str(CHOICE);
    out
}

/// What rings cost before any request: the wall time of a whole `runsc-rs do` of a program
/// that does almost nothing, by ring count.
fn startup(reps: usize, runsc: &Path, par: &Path) -> String {
    let getpid = par.with_file_name("getpid");
    let mut samples = vec![Vec::new(); RINGS.len()];
    for _ in 0..reps {
        for (i, n) in RINGS.iter().enumerate() {
            wait_quiet();
            let start = Instant::now();
            for _ in 0..STARTS {
                let mut cmd = Way {
                    rings: Some(*n),
                    pinned: true,
                }
                .command(runsc, &getpid, &["1".into()], false);
                measure("start-up", &mut cmd);
            }
            samples[i].push(start.elapsed().as_secs_f64() * 1e3 / STARTS as f64);
        }
    }
    let mut out = format!(
        "\n### Start-up\n\nWall time of one `runsc-rs do -- getpid 1` (median of {reps} \
         batches of {STARTS}): each ring is a populated shared-memory region in both \
         processes and a thread in the gofer.\n\n| rings | ms per run |\n|---|---:|\n"
    );
    for (n, s) in RINGS.iter().zip(&mut samples) {
        out.push_str(&format!("| {n} | {:.1} |\n", median(s)));
    }
    out
}

/// Which count runsc-rs uses and why, from the run that chose it. Keep in step with
/// `DEFAULT_GOFER_RINGS` in runsc-rs/src/cli/run_do.rs.
const CHOICE: &str = "
### The default: 2 rings, the gofer on the Sentry's CPU

`runsc-rs do` uses `--gofer-rings 2` unless told otherwise, and keeps the gofer pinned to the
Sentry's CPU. Chosen from three runs of these tables on 2026-11-21 before the one above (this
machine, quiet-waited, medians of 7; gofer on the Sentry's CPU; 1 / 2 / 4 rings):

| case | run 1 | run 2 | run 3 |
|---|---|---|---|
| stat, K=1, µs | 30.6 / 28.3 / 30.2 | 32.3 / 31.5 / 31.4 | 29.7 / 29.6 / 30.0 |
| stat, K=2, µs | 36.2 / 33.4 / 33.8 | 35.9 / 32.4 / 32.7 | 35.7 / 32.7 / 32.9 |
| stat, K=4, µs | 38.5 / 38.0 / 34.4 | 38.4 / 38.4 / 34.3 | 37.2 / 32.9 / 32.1 |
| stat while one more process fsyncs, K=2, µs | | 76.6 / 67.6 / 61.3 | 75.7 / 73.1 / 71.8 |
| stat while one more process fsyncs, K=4, µs | | 56.7 / 58.0 / 49.3 | 61.5 / 56.8 / 51.7 |
| read, K=4, MB/s | 3508 / 3161 / 3021 | 3758 / 3841 / 3574 | 3324 / 3513 / 2849 |
| start-up, ms | 9.9 / 11.6 / 14.5 | 10.4 / 12.1 / 15.7 | 10.1 / 11.0 / 15.2 |

* Everything the sandbox runs is on one CPU, so rings cannot add CPU; what they remove is the
  queue for the one ring: a process whose call finds the ring taken sleeps on its mutex and
  is woken when the other's answer has been taken (a same-CPU hand-off, a few µs), or waits
  out a host call that blocks, such as an fsync. With two processes at work, 2 rings take
  8-10 % less time per stat than 1, as much as 4 rings do. With four, 4 rings gain a further
  2-11 % on stat and 9-15 % beside an fsyncing process.
* Reads lose a little: two readers on 2 rings moved 3-10 % less than on 1 ring (K=2 read:
  3399 / 3188, 3468 / 3360, 3399 / 3053 MB/s), and four on 4 rings 4-19 % less than on 2,
  likely because 1 MiB copies interleave on the one CPU instead of taking turns.
* What a ring costs is start-up: its shared memory (1 MiB data slot plus header, populated
  in both processes) and a gofer thread: ≈1 ms for the second ring, 3-4 ms more for 4 rings
  (a ring of 64 slots, before this measurement, took ≈80 ms on its own).
* So 2: the gain where processes overlap in pairs (a shell and a command, a pipeline of two),
  where one process's blocking host call (a slow read, an fsync) no longer holds up the
  other's file calls; for a small loss on concurrent bulk reads and ≈1 ms. Workloads with
  more processes making metadata calls at once can ask for `--gofer-rings 4`.
* The pin stays. Unpinned, the gofer's threads answer from the other CPU, and a wake-up across
  CPUs costs ≈20 µs each way here (platform-limits.md §7): one process stats 2.7-3.6x slower
  (80-101 µs instead of 28-32). Unpinned wins only with several processes and several rings,
  where the other CPU is kept busy: reads with 4 rings and K=4 reach 4.3-4.8 GB/s instead of
  2.8-3.8, and stat at K=4 ties (31-35 µs). A gofer that spins, or Sentry threads spread over
  both CPUs, would be needed to use the second CPU without paying the wake-ups.
";
