//! Processes, pipes, futexes and a shell, natively and in the sandbox, with
//! bench/c/proc.c as the driver: fork+exec+wait of /bin/true, pipe throughput between two
//! processes, a futex ping-pong between two threads, and a shell loop running /bin/true.

use std::path::{Path, PathBuf};

use crate::compare::{self, Case, Column, Figure};

/// Spawns of /bin/true per fork run; the median is reported.
const SPAWNS: usize = 200;
/// MiB sent through the pipe per run, in 1 MiB writes.
const PIPE_MIB: usize = 256;
/// Futex round trips per run.
const FUTEX_ROUNDS: usize = 10_000;
/// Times the shell loop runs /bin/true.
const SHELL_LOOPS: usize = 200;
/// The host's /bin/true: dynamically linked, so each spawn also loads libc.
const TRUE: &str = "/bin/true";

fn proc() -> PathBuf {
    Path::new(env!("OUT_DIR")).join("proc")
}

/// A section of one case of `proc ARGS` and one column.
struct Section<'a> {
    title: &'a str,
    case: String,
    args: &'a [&'a str],
    column: Column,
    higher_is_better: bool,
    /// What is measured and how, before the table.
    what: String,
}

impl Section<'_> {
    fn report(self, runsc: &Path, reps: usize) -> String {
        let mut cases = [Case::new(self.case, runsc, &proc(), self.args)];
        let outcome = compare::measure(&mut cases, reps, Figure::Printed);
        format!(
            "\n## {}\n\n{} Median of {reps} interleaved runs after a warm-up run of \
             each.\n\n{}\n{}",
            self.title,
            self.what,
            outcome.table_with(&cases, &[self.column], self.higher_is_better),
            outcome.quiet_note()
        )
    }
}

/// `bench fork`: fork + execve + waitpid of /bin/true.
pub fn fork_report(runsc: &Path, reps: usize) -> String {
    let spawns = SPAWNS.to_string();
    Section {
        title: "fork, exec and wait",
        case: format!("fork + execve `{TRUE}` + waitpid"),
        args: &["fork", &spawns, TRUE],
        column: Column {
            unit: "µs/spawn",
            value: 0,
            divisor: 1.0,
            decimals: 0,
        },
        higher_is_better: false,
        what: format!(
            "`bench/c/proc.c fork`: {SPAWNS} times fork, execve the host's `{TRUE}` \
             (dynamically linked: the loader maps libc each time), waitpid; each spawn timed \
             from before the fork to after the wait, and the median spawn of the run \
             reported."
        ),
    }
    .report(runsc, reps)
}

/// `bench pipe`: 1 MiB writes through a pipe from one process to another.
pub fn pipe_report(runsc: &Path, reps: usize) -> String {
    let mib = PIPE_MIB.to_string();
    Section {
        title: "pipe throughput between two processes",
        case: format!("{PIPE_MIB} MiB in 1 MiB writes and reads"),
        args: &["pipe", &mib],
        column: Column {
            unit: "MB/s",
            value: 0,
            divisor: 1.0,
            decimals: 0,
        },
        higher_is_better: true,
        what: format!(
            "`bench/c/proc.c pipe`: a forked child writes {PIPE_MIB} MiB into a pipe in 1 MiB \
             writes, the parent reads it in 1 MiB reads (a pipe holds 64 KiB, so each write \
             is many hand-offs); timed from before the fork to the last byte, which is \
             checked. The ratio is native / sandbox: above 1 is slower."
        ),
    }
    .report(runsc, reps)
}

/// `bench futex`: a futex ping-pong between two threads.
pub fn futex_report(runsc: &Path, reps: usize) -> String {
    let rounds = FUTEX_ROUNDS.to_string();
    Section {
        title: "futex ping-pong between two threads",
        case: format!("{FUTEX_ROUNDS} round trips"),
        args: &["futex", &rounds],
        column: Column {
            unit: "ns/round trip",
            value: 0,
            divisor: 1.0,
            decimals: 0,
        },
        higher_is_better: false,
        what: format!(
            "`bench/c/proc.c futex`: two threads of one process hand a turn back and forth \
             {FUTEX_ROUNDS} times over one futex word (FUTEX_WAIT_PRIVATE until it is one's \
             turn, then store and FUTEX_WAKE_PRIVATE): each round trip is two wake-ups of a \
             sleeping thread. Natively the threads may run on both CPUs, so a wake-up may \
             cross CPUs."
        ),
    }
    .report(runsc, reps)
}

/// `bench shell`: a shell loop of /bin/true.
pub fn shell_report(runsc: &Path, reps: usize) -> String {
    let script = format!("i=0; while [ $i -lt {SHELL_LOOPS} ]; do {TRUE}; i=$((i+1)); done");
    Section {
        title: "a shell loop",
        case: format!("`sh -c '{script}'`"),
        args: &["time", "/bin/sh", "-c", &script],
        column: Column {
            unit: "ms",
            value: 0,
            divisor: 1.0,
            decimals: 1,
        },
        higher_is_better: false,
        what: format!(
            "`bench/c/proc.c time /bin/sh -c '…'`: the host's /bin/sh (dash) forks and execs \
             `{TRUE}` {SHELL_LOOPS} times; the driver times the shell from its fork to its \
             wait, inside the sandbox when the driver runs there, so the sandbox's own \
             start-up is not in the figure."
        ),
    }
    .report(runsc, reps)
}
