//! The system-wide files of /proc and /proc/sys, as the sandbox sees itself: its uptime and
//! boot time, its processes, its memory (the host's total, less what guests hold), the
//! host's CPUs and names captured at start-up.

use std::sync::Weak;
use std::time::Duration;

use super::kernfs::{put, text, Spec};
use crate::abi::Errno;
use crate::fs::sys::cpus_of;
use crate::kernel::Kernel;

/// /proc/filesystems: the types this Sentry mounts ("nodev": none needs a device).
pub(super) fn filesystems() -> Vec<u8> {
    let mut out = Vec::new();
    for fs in ["sysfs", "tmpfs", "proc", "overlay"] {
        put!(out, "nodev\t{fs}\n");
    }
    out
}

pub(super) fn loadavg(k: &Kernel) -> Result<Vec<u8>, Errno> {
    Ok(loadavg_text(
        k.processes.live().len(),
        k.processes.last_pid(),
    ))
}

/// /proc/loadavg: no load is measured; one entity runs (the reader) of `total`.
pub(super) fn loadavg_text(total: usize, last_pid: i32) -> Vec<u8> {
    format!("0.00 0.00 0.00 1/{total} {last_pid}\n").into_bytes()
}

pub(super) fn meminfo(k: &Kernel) -> Result<Vec<u8>, Errno> {
    let (total, used) = k.memory_usage();
    Ok(meminfo_text(
        total,
        used,
        crate::mm::page_cache::total_cached(),
    ))
}

/// /proc/meminfo with Linux 6's fields: `total` bytes of which guests hold `used`,
/// `cached` of it file pages in the page cache, the rest anonymous; no swap, huge pages or
/// kernel memory are kept apart.
pub(super) fn meminfo_text(total: u64, used: u64, cached: u64) -> Vec<u8> {
    let kb = |bytes: u64| bytes / 1024;
    let (total, used) = (kb(total), kb(used).min(kb(total)));
    let cached = kb(cached).min(used);
    let anon = used - cached;
    let free = total - used;
    let rows: [(&str, u64); 48] = [
        ("MemTotal", total),
        ("MemFree", free),
        ("MemAvailable", free),
        ("Buffers", 0),
        ("Cached", cached),
        ("SwapCached", 0),
        ("Active", used),
        ("Inactive", 0),
        ("Active(anon)", anon),
        ("Inactive(anon)", 0),
        ("Active(file)", cached),
        ("Inactive(file)", 0),
        ("Unevictable", 0),
        ("Mlocked", 0),
        ("SwapTotal", 0),
        ("SwapFree", 0),
        ("Zswap", 0),
        ("Zswapped", 0),
        ("Dirty", 0),
        ("Writeback", 0),
        ("AnonPages", anon),
        ("Mapped", 0),
        ("Shmem", 0),
        ("KReclaimable", 0),
        ("Slab", 0),
        ("SReclaimable", 0),
        ("SUnreclaim", 0),
        ("KernelStack", 0),
        ("PageTables", 0),
        ("SecPageTables", 0),
        ("NFS_Unstable", 0),
        ("Bounce", 0),
        ("WritebackTmp", 0),
        ("CommitLimit", total),
        ("Committed_AS", used),
        ("VmallocTotal", 34_359_738_367),
        ("VmallocUsed", 0),
        ("VmallocChunk", 0),
        ("Percpu", 0),
        ("AnonHugePages", 0),
        ("ShmemHugePages", 0),
        ("ShmemPmdMapped", 0),
        ("FileHugePages", 0),
        ("FilePmdMapped", 0),
        ("HugePages_Total", 0),
        ("HugePages_Free", 0),
        ("HugePages_Rsvd", 0),
        ("HugePages_Surp", 0),
    ];
    let mut out = Vec::new();
    for (name, value) in rows {
        let label = format!("{name}:");
        if name.starts_with("HugePages_") {
            // Counts, not sizes: Linux prints them 5 wide after the padded label.
            put!(out, "{label:<16}   {value:>5}\n");
        } else {
            put!(out, "{label:<16}{value:>8} kB\n");
        }
    }
    for (name, value) in [
        ("Hugepagesize", 2048),
        ("Hugetlb", 0),
        ("DirectMap4k", 0),
        ("DirectMap2M", 0),
        ("DirectMap1G", 0),
    ] {
        let label = format!("{name}:");
        put!(out, "{label:<16}{value:>8} kB\n");
    }
    out
}

pub(super) fn stat(k: &Kernel) -> Result<Vec<u8>, Errno> {
    let cpus: Vec<usize> = cpus_of(&k.host.cpu_mask).collect();
    let btime = k
        .booted
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Ok(stat_text(
        &cpus,
        k.started.elapsed(),
        btime,
        k.processes.last_pid().max(0) as u64,
    ))
}

/// /proc/stat: CPU time per CPU (no work is measured yet, so every CPU has been idle since
/// boot), the boot time, and how many processes were made.
pub(super) fn stat_text(cpus: &[usize], up: Duration, btime: u64, processes: u64) -> Vec<u8> {
    let idle = (up.as_millis() / 10) as u64;
    let mut out = Vec::new();
    put!(out, "cpu  0 0 0 {} 0 0 0 0 0 0\n", idle * cpus.len() as u64);
    for cpu in cpus {
        put!(out, "cpu{cpu} 0 0 0 {idle} 0 0 0 0 0 0\n");
    }
    put!(
        out,
        "intr 0\nctxt 0\nbtime {btime}\nprocesses {processes}\n"
    );
    put!(out, "procs_running 1\nprocs_blocked 0\n");
    put!(out, "softirq 0 0 0 0 0 0 0 0 0 0 0\n");
    out
}

pub(super) fn uptime(k: &Kernel) -> Result<Vec<u8>, Errno> {
    Ok(uptime_text(k.started.elapsed()))
}

/// /proc/uptime: seconds since boot and idle seconds (not measured), to the hundredth.
pub(super) fn uptime_text(up: Duration) -> Vec<u8> {
    format!("{}.{:02} 0.00\n", up.as_secs(), up.subsec_millis() / 10).into_bytes()
}

pub(super) fn version(k: &Kernel) -> Result<Vec<u8>, Errno> {
    let u = &k.utsname();
    let mut out = Vec::new();
    out.extend_from_slice(until_nul(&u.sysname));
    out.extend_from_slice(b" version ");
    out.extend_from_slice(until_nul(&u.release));
    out.extend_from_slice(b" (runsc-rs@sandbox) (runsc-rs) ");
    out.extend_from_slice(until_nul(&u.version));
    out.push(b'\n');
    Ok(out)
}

/// A utsname field without its NUL padding.
fn until_nul(field: &[u8]) -> &[u8] {
    let len = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    &field[..len]
}

/// A random (version 4) UUID, as /proc/sys/kernel/random/uuid gives a new one each read.
pub(super) fn uuid() -> String {
    let mut b = [0u8; 16];
    let _ = rustix::rand::getrandom(&mut b, rustix::rand::GetRandomFlags::empty());
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// /proc/sys: the values programs commonly read. `boot_id` stays for the sandbox's life.
pub(super) fn sys_tree(kernel: Weak<Kernel>, boot_id: String) -> Spec {
    /// A file made from one utsname field.
    fn uts(kernel: &Weak<Kernel>, field: fn(&crate::abi::Utsname) -> &[u8; 65]) -> Spec {
        let kernel = kernel.clone();
        Spec::File(Box::new(move || {
            let k = kernel.upgrade().ok_or(Errno::ENOENT)?;
            let mut value = until_nul(field(&k.utsname())).to_vec();
            value.push(b'\n');
            Ok(value)
        }))
    }
    let kernel_dir = Spec::Dir(vec![
        ("cap_last_cap", text("40\n")),
        ("domainname", uts(&kernel, |u| &u.domainname)),
        ("hostname", uts(&kernel, |u| &u.nodename)),
        ("ngroups_max", text("65536\n")),
        ("osrelease", uts(&kernel, |u| &u.release)),
        ("ostype", uts(&kernel, |u| &u.sysname)),
        (
            "pid_max",
            text(format!("{}\n", crate::kernel::processes::PID_MAX)),
        ),
        (
            "random",
            Spec::Dir(vec![
                ("boot_id", text(format!("{boot_id}\n"))),
                (
                    "uuid",
                    Spec::File(Box::new(|| Ok(format!("{}\n", uuid()).into_bytes()))),
                ),
            ]),
        ),
        ("sem", text("32000\t1024000000\t500\t32000\n")),
        ("shmall", text(format!("{}\n", crate::ipc::shm::SHMALL))),
        ("shmmax", text(format!("{}\n", crate::ipc::shm::SHMMAX))),
        ("shmmni", text(format!("{}\n", crate::ipc::shm::SHMMNI))),
        ("version", uts(&kernel, |u| &u.version)),
    ]);
    Spec::Dir(vec![
        (
            "fs",
            Spec::Dir(vec![
                ("nr_open", text("1048576\n")),
                ("pipe-max-size", text("1048576\n")),
            ]),
        ),
        ("kernel", kernel_dir),
        (
            "vm",
            Spec::Dir(vec![
                ("max_map_count", text("65530\n")),
                ("overcommit_memory", text("0\n")),
            ]),
        ),
    ])
}

/// /proc/sysvipc: the System V IPC objects, one line each (message queues do not exist
/// here: their file has the header only).
pub(super) fn sysvipc_tree(kernel: Weak<Kernel>) -> Spec {
    let k = kernel.clone();
    let shm = Spec::File(Box::new(move || {
        let k = k.upgrade().ok_or(Errno::ENOENT)?;
        Ok(k.ipc.shm.proc_text())
    }));
    let sem = Spec::File(Box::new(move || {
        let k = kernel.upgrade().ok_or(Errno::ENOENT)?;
        Ok(k.ipc.sem.proc_text())
    }));
    Spec::Dir(vec![
        ("msg", text("       key      msqid perms      cbytes       qnum lspid lrpid   uid   gid  cuid  cgid      stime      rtime      ctime\n")),
        ("sem", sem),
        ("shm", shm),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_keeps_linux_layout() {
        let text = String::from_utf8(meminfo_text(24_684_092 * 1024, 1024 * 1024, 0)).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "MemTotal:       24684092 kB");
        assert_eq!(lines[1], "MemFree:        24683068 kB");
        assert_eq!(lines[2], "MemAvailable:   24683068 kB");
        assert!(lines.contains(&"Active(anon):       1024 kB"));
        assert!(lines.contains(&"VmallocTotal:   34359738367 kB"));
        assert!(lines.contains(&"HugePages_Total:       0"));
        assert!(lines.contains(&"Hugepagesize:       2048 kB"));
        assert_eq!(lines.last(), Some(&"DirectMap1G:           0 kB"));
        // Guests can never appear to hold more than there is.
        let full = String::from_utf8(meminfo_text(4096, 8192, 0)).unwrap();
        assert!(full.starts_with("MemTotal:              4 kB\nMemFree:               0 kB\n"));
    }

    #[test]
    fn small_files_match_linux() {
        assert_eq!(
            uptime_text(Duration::from_millis(8_150_687)),
            b"8150.68 0.00\n"
        );
        assert_eq!(uptime_text(Duration::from_millis(5)), b"0.00 0.00\n");
        assert_eq!(loadavg_text(3, 17), b"0.00 0.00 0.00 1/3 17\n");
        let stat = String::from_utf8(stat_text(&[0, 1], Duration::from_secs(2), 1000, 5)).unwrap();
        assert!(stat.starts_with("cpu  0 0 0 400 0 0 0 0 0 0\ncpu0 0 0 0 200 0 0 0 0 0 0\n"));
        assert!(stat.contains("\nbtime 1000\nprocesses 5\nprocs_running 1\n"));
        assert!(filesystems().starts_with(b"nodev\tsysfs\n"));
        let id = uuid();
        assert_eq!(id.len(), 36);
        assert_eq!(id.as_bytes()[14], b'4');
        assert_ne!(id, uuid());
    }
}
