//! Start-up of dynamically linked programs: `python3 -c pass` (an interpreter that loads
//! shared libraries and a few hundred files before doing nothing) and the host's
//! `/usr/bin/true` (the dynamic loader and libc alone), natively and under `runsc-rs do`.

use std::path::Path;

use crate::compare::{self, Case, Column, Figure};

/// Named by path: the first `python3` on PATH may be a wrapper script (pyenv's shim, here),
/// which would measure a shell as well.
const PYTHON: &str = "/usr/bin/python3";
const TRUE: &str = "/usr/bin/true";

/// The section of the report, `reps` timed runs of each side of each case.
pub fn report(runsc: &Path, reps: usize) -> String {
    let mut cases = [
        Case::new(
            format!("`{PYTHON} -c pass`"),
            runsc,
            Path::new(PYTHON),
            &["-c", "pass"],
        ),
        Case::new(format!("`{TRUE}`"), runsc, Path::new(TRUE), &[]),
    ];
    let outcome = compare::measure(&mut cases, reps, Figure::WallMs);
    let ms = Column {
        unit: "ms",
        value: 0,
        divisor: 1.0,
        decimals: 2,
    };
    format!(
        "\n## Start-up of dynamically linked programs\n\n\
         Wall time from spawn to exit, natively and under `runsc-rs do --` (the host's root, \
         memory overlay), median of {reps} interleaved runs after one warm-up run of each. \
         Both programs are the host's, linked against its glibc; python3 is named by its \
         path, so that a wrapper earlier on PATH (such as pyenv's shim) is not what is \
         measured.\n\n{}\n{}",
        outcome.table(&cases, &[ms]),
        outcome.quiet_note()
    )
}
