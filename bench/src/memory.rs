//! The memory manager: mapping, touching and unmapping anonymous memory over and over, and
//! the cost of a first touch (a page fault) of anonymous memory, of a private file mapping
//! read, and of one written (copy on write). The program is bench/c/mem.c.

use std::path::{Path, PathBuf};

use crate::compare::{self, Case, Column, Figure};

/// Iterations of map, touch, unmap per run.
const CHURN_ITERATIONS: usize = 500;
/// Bytes mapped per iteration (mem.c's `CHURN_BYTES`).
const CHURN_BYTES: usize = 1 << 20;
/// Size of the anonymous region and of the file whose pages are faulted in.
const FAULT_MIB: usize = 64;
/// What mem.c expects the file to hold.
const FILL: u8 = 0x5a;

fn mem() -> PathBuf {
    Path::new(env!("OUT_DIR")).join("mem")
}

fn page_size() -> usize {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(4096)
}

/// The map/touch/unmap section of the report.
pub fn churn_report(runsc: &Path, reps: usize) -> String {
    let pages = CHURN_BYTES / page_size();
    let iterations = CHURN_ITERATIONS.to_string();
    let mut cases = [Case::new(
        format!("mmap 1 MiB, write {pages} pages, munmap"),
        runsc,
        &mem(),
        &["churn", &iterations],
    )];
    let outcome = compare::measure(&mut cases, reps, Figure::Printed);
    let columns = [
        Column {
            unit: "ns/iteration",
            value: 0,
            divisor: 1.0,
            decimals: 0,
        },
        Column {
            unit: "ns/page",
            value: 0,
            divisor: pages as f64,
            decimals: 0,
        },
    ];
    format!(
        "\n## mmap, touch, munmap churn\n\n\
         `bench/c/mem.c churn`: {CHURN_ITERATIONS} times, mmap 1 MiB anonymous private memory, \
         write a byte to each page, munmap it; the time per iteration, and that divided by \
         the {pages} pages. Median of {reps} interleaved runs after a warm-up run of each; \
         each run also warms up with a tenth of the iterations before it times. {}\n\n{}\n{}",
        huge_pages(),
        outcome.table(&cases, &columns),
        outcome.quiet_note()
    )
}

/// The page-fault section of the report.
pub fn faults_report(runsc: &Path, reps: usize) -> String {
    let title = "\n## First touch of a page (page faults)\n\n";
    let file = match make_file() {
        Ok(file) => file,
        Err(e) => return format!("{title}Not measured: {e}.\n"),
    };
    let path = file.to_string_lossy().into_owned();
    let mib = FAULT_MIB.to_string();
    let mut cases = [
        Case::new(
            format!("anonymous private, write ({FAULT_MIB} MiB)"),
            runsc,
            &mem(),
            &["anon", &mib],
        ),
        Case::new(
            format!("private file mapping, read ({FAULT_MIB} MiB file)"),
            runsc,
            &mem(),
            &["read", &path],
        ),
        Case::new(
            "private file mapping, write (copy on write)",
            runsc,
            &mem(),
            &["cow", &path],
        ),
    ];
    let outcome = compare::measure(&mut cases, reps, Figure::Printed);
    if let Some(dir) = file.parent() {
        let _ = std::fs::remove_dir_all(dir);
    }
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
    format!(
        "{title}`bench/c/mem.c`: map {FAULT_MIB} MiB, then time touching each page once, \
         in order, for the first time (a byte written or read per page): ns per page, and the \
         page faults the timed loop took per page (getrusage(2); n/a where it does not count \
         them). The file is a host file of {FAULT_MIB} MiB written in one go, in the page \
         cache (written just before, and read once by each run's warm-up); the sandbox \
         reaches it through the gofer, memory overlay. Natively one read fault can map many \
         cached pages: those around the one touched (fault-around, 16 pages by default), or a \
         whole large folio, since the page cache of a file written in large writes holds \
         folios of up to 2 MiB. A write to a private file mapping copies each page, a fault \
         each. Every run checks what the pages hold, and that the file is unchanged. Median \
         of {reps} interleaved runs after a warm-up run of each; each run also maps and \
         touches everything once untimed first. {}\n\n{}\n{}",
        huge_pages(),
        outcome.table(&cases, &columns),
        outcome.quiet_note()
    )
}

/// A sentence on whether anonymous memory here may come in huge pages (which would make a
/// fault cover 2 MiB): the host's transparent-huge-page mode.
fn huge_pages() -> String {
    let modes =
        std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
    let mode = modes
        .split_whitespace()
        .find_map(|m| m.strip_prefix('[')?.strip_suffix(']'))
        .unwrap_or("unknown");
    let effect = match mode {
        "always" => "anonymous memory may be faulted in 2 MiB at a time natively",
        "unknown" => "the native fault size is not known",
        _ => "mem.c asks for none, so anonymous memory is faulted in a page at a time",
    };
    format!("Transparent huge pages on this host: `{mode}`; {effect}.")
}

/// A file of `FAULT_MIB` MiB of `FILL` under target/ (not /tmp).
fn make_file() -> Result<PathBuf, String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-mem");
    let file = dir.join("file.bin");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(&file, vec![FILL; FAULT_MIB << 20]))
        .map_err(|e| format!("making {}: {e}", file.display()))?;
    Ok(file)
}
