//! A minimal sysfs for /sys: what programs and libraries commonly read to size themselves
//! (glibc's get_nprocs reads cpu/online; sysconf(_SC_NPROCESSORS_CONF) counts the cpuN
//! directories), and the empty directories tools expect to find.

use std::sync::Arc;

use super::kernfs::{build, text, Spec};
use crate::vfs::Inode;

/// sysfs's directories are drwxr-xr-x in Linux (the mount itself is read-only here).
const DIR_PERM: u32 = 0o755;

/// The root of a new sysfs on device `dev`, for a machine whose usable CPUs are `cpu_mask`
/// (bit n for CPU n).
pub fn new(dev: u64, cpu_mask: &[u8]) -> Arc<dyn Inode> {
    let cpus = format!("{}\n", cpu_list(cpu_mask));
    let mut cpu_dir: Vec<(&'static str, Spec)> = vec![
        ("online", text(cpus.clone())),
        ("possible", text(cpus.clone())),
        ("present", text(cpus)),
    ];
    for cpu in cpus_of(cpu_mask) {
        // The names must be &'static: there are at most 64 of them, made once per boot.
        let name: &'static str = CPU_NAMES.get(cpu).copied().unwrap_or("cpu");
        cpu_dir.push((name, Spec::Dir(Vec::new())));
    }
    let tree = Spec::Dir(vec![
        ("bus", Spec::Dir(Vec::new())),
        ("class", Spec::Dir(Vec::new())),
        (
            "devices",
            Spec::Dir(vec![(
                "system",
                Spec::Dir(vec![("cpu", Spec::Dir(cpu_dir))]),
            )]),
        ),
        ("fs", Spec::Dir(vec![("cgroup", Spec::Dir(Vec::new()))])),
        (
            "kernel",
            Spec::Dir(vec![(
                "mm",
                Spec::Dir(vec![(
                    "transparent_hugepage",
                    Spec::Dir(vec![("enabled", text("always [madvise] never\n"))]),
                )]),
            )]),
        ),
    ]);
    build(dev, b"/", tree, DIR_PERM)
}

/// Names of the per-CPU directories.
const CPU_NAMES: [&str; 64] = [
    "cpu0", "cpu1", "cpu2", "cpu3", "cpu4", "cpu5", "cpu6", "cpu7", "cpu8", "cpu9", "cpu10",
    "cpu11", "cpu12", "cpu13", "cpu14", "cpu15", "cpu16", "cpu17", "cpu18", "cpu19", "cpu20",
    "cpu21", "cpu22", "cpu23", "cpu24", "cpu25", "cpu26", "cpu27", "cpu28", "cpu29", "cpu30",
    "cpu31", "cpu32", "cpu33", "cpu34", "cpu35", "cpu36", "cpu37", "cpu38", "cpu39", "cpu40",
    "cpu41", "cpu42", "cpu43", "cpu44", "cpu45", "cpu46", "cpu47", "cpu48", "cpu49", "cpu50",
    "cpu51", "cpu52", "cpu53", "cpu54", "cpu55", "cpu56", "cpu57", "cpu58", "cpu59", "cpu60",
    "cpu61", "cpu62", "cpu63",
];

/// The CPUs set in `mask`, in order.
pub(crate) fn cpus_of(mask: &[u8]) -> impl Iterator<Item = usize> + '_ {
    (0..mask.len() * 8).filter(move |&cpu| mask[cpu / 8] & (1 << (cpu % 8)) != 0)
}

/// A CPU set in Linux's list format ("0-3,6"), as cpu/online and Cpus_allowed_list show it.
pub(crate) fn cpu_list(mask: &[u8]) -> String {
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    for cpu in cpus_of(mask) {
        match ranges.last_mut() {
            Some((_, end)) if *end + 1 == cpu => *end = cpu,
            _ => ranges.push((cpu, cpu)),
        }
    }
    ranges
        .iter()
        .map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// A CPU set as a hex mask in 32-bit groups ("ff,ffffffff"), as Cpus_allowed shows it,
/// as wide as the highest CPU needs.
pub(crate) fn cpu_mask_hex(mask: &[u8]) -> String {
    let cpus = cpus_of(mask).last().map_or(1, |c| c + 1);
    let digits = cpus.div_ceil(4);
    let mut out = String::new();
    for d in (0..digits).rev() {
        let nibble = (0..4)
            .filter(|b| {
                let cpu = d * 4 + b;
                mask.get(cpu / 8).is_some_and(|m| m & (1 << (cpu % 8)) != 0)
            })
            .fold(0u8, |n, b| n | 1 << b);
        out.push(char::from_digit(u32::from(nibble), 16).unwrap_or('0'));
        if d % 8 == 0 && d != 0 {
            out.push(',');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfs::O_RDONLY;

    #[test]
    fn cpu_sets_format_as_linux_does() {
        assert_eq!(cpu_list(&[0b11]), "0-1");
        assert_eq!(cpu_list(&[0b0100_1111, 0b1]), "0-3,6,8");
        assert_eq!(cpu_list(&[0]), "");
        assert_eq!(cpu_mask_hex(&[0b11]), "3");
        assert_eq!(cpu_mask_hex(&[0xff, 0xff, 0xff, 0xff, 0x1]), "1,ffffffff");
        assert_eq!(cpu_mask_hex(&[0x10]), "10");
    }

    #[test]
    fn the_tree_holds_cpus_and_thp() {
        let root = new(5, &[0b11, 0, 0, 0, 0, 0, 0, 0]);
        let cpu = ["devices", "system", "cpu"]
            .iter()
            .fold(root.clone(), |dir, name| {
                dir.lookup(name.as_bytes()).unwrap()
            });
        let online = cpu.lookup(b"online").unwrap().open(O_RDONLY).unwrap();
        let mut buf = [0u8; 16];
        let n = online.read(0, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"0-1\n");
        assert!(cpu.lookup(b"cpu1").unwrap().attr().unwrap().mode & 0o40000 != 0);
        assert!(cpu.lookup(b"cpu2").is_err());
        let fs = root.lookup(b"fs").unwrap();
        assert!(fs.lookup(b"cgroup").unwrap().readdir().unwrap().is_empty());
    }
}
