//! Cases measured natively and in the sandbox, side by side, where either side may fail:
//! a failure becomes a "failed: <why>" cell and the run goes on, so a feature the sandbox
//! lacks yet costs one line of the report, not the whole run.

use std::path::Path;
use std::process::Command;

use crate::rings::{wait_quiet, QUIET_BELOW, QUIET_PATIENCE, QUIET_SAMPLE};
use crate::{median, printed_values, run, RUN_LIMIT};

/// One thing measured both ways.
pub struct Case {
    pub name: String,
    pub native: Command,
    pub sandbox: Command,
}

impl Case {
    /// `prog args` natively and under `runsc-rs do --`.
    pub fn new(name: impl Into<String>, runsc: &Path, prog: &Path, args: &[&str]) -> Case {
        let mut native = Command::new(prog);
        native.args(args);
        let mut sandbox = Command::new(runsc);
        sandbox.args(["do", "--"]).arg(prog).args(args);
        Case {
            name: name.into(),
            native,
            sandbox,
        }
    }
}

/// What a run's figures are.
#[derive(Clone, Copy)]
pub enum Figure {
    /// The values the program prints ("<label> <value> <unit> [<value> <unit>]...").
    Printed,
    /// The wall time from spawn to exit, in ms (one value).
    WallMs,
}

/// A column of the table: figure number `value` divided by `divisor`, headed `unit`.
/// The ratio to native is always that of figure 0.
pub struct Column {
    pub unit: &'static str,
    pub value: usize,
    pub divisor: f64,
    pub decimals: usize,
}

/// The medians of a set of cases, or why a side failed.
pub struct Outcome {
    /// Per case: native, then sandbox; per side the median of each figure that every run
    /// printed.
    results: Vec<[Result<Vec<f64>, String>; 2]>,
    /// Runs made, and how many of them found no quiet moment first.
    runs: usize,
    noisy: usize,
}

/// Measures every case: a warm-up run of each side, then `reps` timed rounds over all cases
/// and both sides in turn, each run after waiting for a quiet machine. A side that fails is
/// not run again.
pub fn measure(cases: &mut [Case], reps: usize, figure: Figure) -> Outcome {
    let mut samples = vec![[Vec::new(), Vec::new()]; cases.len()];
    let mut failed: Vec<[Option<String>; 2]> = vec![[None, None]; cases.len()];
    let (mut runs, mut noisy) = (0, 0);
    for round in 0..=reps {
        for (i, case) in cases.iter_mut().enumerate() {
            for (side, cmd) in [&mut case.native, &mut case.sandbox]
                .into_iter()
                .enumerate()
            {
                if failed[i][side].is_some() {
                    continue;
                }
                runs += 1;
                if !wait_quiet() {
                    noisy += 1;
                }
                let values = run(cmd, RUN_LIMIT).and_then(|done| match figure {
                    Figure::Printed => printed_values(&done.stdout),
                    Figure::WallMs => Ok(vec![done.wall.as_secs_f64() * 1e3]),
                });
                match values {
                    // Round 0 is the warm-up.
                    Ok(v) if round > 0 => samples[i][side].push(v),
                    Ok(_) => {}
                    Err(e) => failed[i][side] = Some(e),
                }
            }
        }
    }
    let results = samples
        .into_iter()
        .zip(failed)
        .map(|(per_side, why)| {
            let [native, sandbox] = per_side;
            let [native_failed, sandbox_failed] = why;
            [
                native_failed.map_or_else(|| Ok(medians(native)), Err),
                sandbox_failed.map_or_else(|| Ok(medians(sandbox)), Err),
            ]
        })
        .collect();
    Outcome {
        results,
        runs,
        noisy,
    }
}

/// Per figure, the median over the runs, for the figures every run printed.
fn medians(runs: Vec<Vec<f64>>) -> Vec<f64> {
    let figures = runs.iter().map(Vec::len).min().unwrap_or(0);
    (0..figures)
        .map(|f| median(&mut runs.iter().map(|r| r[f]).collect::<Vec<_>>()))
        .collect()
}

impl Outcome {
    /// The table: a row per case with native and sandbox figures in `columns`, and the
    /// sandbox's figure over the native one.
    pub fn table(&self, cases: &[Case], columns: &[Column]) -> String {
        self.table_with(cases, columns, false)
    }

    /// As [`Outcome::table`]; when `higher_is_better` (a throughput) the ratio is native
    /// over sandbox instead, so that above 1 is always the sandbox being slower.
    pub fn table_with(&self, cases: &[Case], columns: &[Column], higher_is_better: bool) -> String {
        let head = |side: &str| {
            columns
                .iter()
                .map(|c| format!(" {side} {} |", c.unit))
                .collect::<String>()
        };
        let mut out = format!(
            "| case |{}{} vs native |\n|---|{}---:|\n",
            head("native"),
            head("sandbox"),
            "---:|".repeat(2 * columns.len())
        );
        for (case, [native, sandbox]) in cases.iter().zip(&self.results) {
            out.push_str(&format!("| {} |", case.name));
            for side in [native, sandbox] {
                match side {
                    Ok(figures) => {
                        for c in columns {
                            match figures.get(c.value) {
                                Some(v) => {
                                    out.push_str(&format!(" {:.*} |", c.decimals, v / c.divisor))
                                }
                                None => out.push_str(" n/a |"),
                            }
                        }
                    }
                    Err(why) => {
                        // One line, and no cell boundaries inside it.
                        let why = why.replace('|', "\\|");
                        out.push_str(&format!(" failed: {why} |"));
                        out.push_str(&" |".repeat(columns.len().saturating_sub(1)));
                    }
                }
            }
            match (native, sandbox) {
                (Ok(n), Ok(s)) if !n.is_empty() && !s.is_empty() => {
                    let ratio = if higher_is_better {
                        n[0] / s[0]
                    } else {
                        s[0] / n[0]
                    };
                    out.push_str(&format!(" {ratio:.2}x |\n"))
                }
                _ => out.push_str(" |\n"),
            }
        }
        out
    }

    /// A sentence on how quiet the machine was.
    pub fn quiet_note(&self) -> String {
        format!(
            "Each run waited until the machine had been under {:.0} % busy for {} ms; {} of {} \
             runs found no such moment within {} s and ran anyway.\n",
            QUIET_BELOW * 100.0,
            QUIET_SAMPLE.as_millis(),
            self.noisy,
            self.runs,
            QUIET_PATIENCE.as_secs()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_are_per_figure_over_the_figures_every_run_printed() {
        let runs = vec![vec![3.0, 0.5], vec![1.0], vec![2.0, 0.7]];
        assert_eq!(medians(runs), vec![2.0]);
        let runs = vec![vec![3.0, 0.5], vec![1.0, 0.9], vec![2.0, 0.7]];
        assert_eq!(medians(runs), vec![2.0, 0.7]);
        assert!(medians(Vec::new()).is_empty());
    }

    #[test]
    fn a_failed_side_is_one_cell_and_the_row_keeps_its_shape() {
        let cases = [
            Case::new("ok", Path::new("runsc-rs"), Path::new("prog"), &[]),
            Case::new("bad", Path::new("runsc-rs"), Path::new("prog"), &[]),
        ];
        let outcome = Outcome {
            results: vec![
                [Ok(vec![100.0, 1.0]), Ok(vec![250.0])],
                [Ok(vec![100.0, 1.0]), Err("exit status: 1: a | b".into())],
            ],
            runs: 4,
            noisy: 0,
        };
        let columns = [
            Column {
                unit: "ns/page",
                value: 0,
                divisor: 1.0,
                decimals: 0,
            },
            Column {
                unit: "faults/page",
                value: 1,
                divisor: 1.0,
                decimals: 3,
            },
        ];
        let table = outcome.table(&cases, &columns);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines,
            [
                "| case | native ns/page | native faults/page | sandbox ns/page | sandbox \
                 faults/page | vs native |",
                "|---|---:|---:|---:|---:|---:|",
                "| ok | 100 | 1.000 | 250 | n/a | 2.50x |",
                "| bad | 100 | 1.000 | failed: exit status: 1: a \\| b | | |",
            ]
        );
    }
}
