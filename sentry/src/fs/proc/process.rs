//! The files of /proc/PID: what is gathered from the process, and the formatters that lay
//! it out as Linux does (fs/proc/array.c, task_mmu.c, base.c; see proc_pid_status(5),
//! proc_pid_stat(5), proc_pid_maps(5)). The formatters take plain values so that their
//! layout can be tested on its own.

use std::sync::Arc;

use super::kernfs::put;
use super::{fs_state, Proc};
use crate::abi::{
    Errno, Rlimit, NSIG, PAGE_SIZE, RLIMIT_RSS, RLIMIT_SIGPENDING, RLIM_INFINITY, RLIM_NLIMITS,
};
use crate::fs::sys::{cpu_list, cpu_mask_hex};
use crate::kernel::processes::ProcessInfo;
use crate::kernel::{current, CapSets, ExitStatus, Kernel, ProcessView, ThreadGroup};
use crate::mm::{MemoryManager, PROT_EXEC, PROT_READ, PROT_WRITE};
use crate::vfs::{path::absolute, Location, MountFlags, O_CLOEXEC};

/// The most of a process's memory cmdline or environ copies (their strings are bounded by
/// the stack limit anyway).
const MAX_STRINGS: u64 = 4 << 20;
/// Clock ticks per second as /proc counts them (USER_HZ).
const USER_HZ: u128 = 100;

pub(super) fn cmdline(p: &Proc) -> Result<Vec<u8>, Errno> {
    let view = p.view()?;
    Ok(view.mm.map_or_else(Vec::new, |mm| {
        let range = mm.arg_env().args;
        read_strings(&mm, range)
    }))
}

pub(super) fn environ(p: &Proc) -> Result<Vec<u8>, Errno> {
    p.check_access()?;
    let view = p.view()?;
    Ok(view.mm.map_or_else(Vec::new, |mm| {
        let range = mm.arg_env().env;
        read_strings(&mm, range)
    }))
}

/// The bytes of `[start, end)` of a process's memory; nothing if it is not all mapped.
fn read_strings(mm: &MemoryManager, (start, end): (u64, u64)) -> Vec<u8> {
    let len = end.saturating_sub(start).min(MAX_STRINGS) as usize;
    let mut bytes = vec![0u8; len];
    match mm.copy_in(start, &mut bytes) {
        Ok(()) => bytes,
        Err(_) => Vec::new(),
    }
}

pub(super) fn comm(p: &Proc) -> Result<Vec<u8>, Errno> {
    let mut out = name_of(&p.view()?).to_vec();
    out.push(b'\n');
    Ok(out)
}

/// The process's name (comm), without its NUL padding.
fn name_of(view: &ProcessView) -> &[u8] {
    let len = view.comm.iter().position(|&b| b == 0).unwrap_or(16);
    &view.comm[..len.min(view.comm.len())]
}

pub(super) fn limits(p: &Proc) -> Result<Vec<u8>, Errno> {
    let limits = *p.tg()?.rlimits();
    Ok(limits_text(&limits))
}

/// The rows of /proc/PID/limits: name and unit, by resource number.
const LIMITS: [(&str, &str); RLIM_NLIMITS] = [
    ("Max cpu time", "seconds"),
    ("Max file size", "bytes"),
    ("Max data size", "bytes"),
    ("Max stack size", "bytes"),
    ("Max core file size", "bytes"),
    ("Max resident set", "bytes"),
    ("Max processes", "processes"),
    ("Max open files", "files"),
    ("Max locked memory", "bytes"),
    ("Max address space", "bytes"),
    ("Max file locks", "locks"),
    ("Max pending signals", "signals"),
    ("Max msgqueue size", "bytes"),
    ("Max nice priority", ""),
    ("Max realtime priority", ""),
    ("Max realtime timeout", "us"),
];

/// /proc/PID/limits (Linux's proc_pid_limits).
pub(super) fn limits_text(limits: &[Rlimit; RLIM_NLIMITS]) -> Vec<u8> {
    let mut out = Vec::new();
    put!(
        out,
        "{:<25} {:<20} {:<20} {:<10}\n",
        "Limit",
        "Soft Limit",
        "Hard Limit",
        "Units"
    );
    let value = |v: u64| {
        if v == RLIM_INFINITY {
            "unlimited".to_string()
        } else {
            v.to_string()
        }
    };
    for ((name, unit), limit) in LIMITS.iter().zip(limits) {
        put!(
            out,
            "{:<25} {:<20} {:<20} ",
            name,
            value(limit.cur),
            value(limit.max)
        );
        if unit.is_empty() {
            out.push(b'\n');
        } else {
            put!(out, "{unit:<10}\n");
        }
    }
    out
}

/// One VMA as /proc shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Region {
    pub start: u64,
    pub end: u64,
    pub prot: i32,
    pub shared: bool,
    /// Bytes that hold pages (only counted when asked for).
    pub resident: u64,
    pub label: Option<&'static str>,
    /// For a file mapping: the file's path, the offset of `start` in it, its device and
    /// inode.
    pub file: Option<(Vec<u8>, u64, u64, u64)>,
    pub locked: bool,
}

impl Region {
    fn len(&self) -> u64 {
        self.end - self.start
    }
}

/// The VMAs of `mm`, labelled [heap] (the program break's, as Linux's vma_is_initial_heap)
/// and [stack] (the one holding the initial stack pointer); with their resident sizes if
/// `resident`.
fn regions(mm: &MemoryManager, resident: bool, root: Option<&Location>) -> Vec<Region> {
    let (start_brk, brk) = mm.brk_range();
    let stack = mm.arg_env().stack;
    mm.vmas()
        .iter()
        .map(|v| Region {
            start: v.start,
            end: v.end,
            prot: v.prot,
            shared: v.shared,
            resident: if resident {
                mm.resident(v.start, v.end)
            } else {
                0
            },
            file: file_of(v, root),
            locked: v.flags.locked,
            label: if v.file().is_some() {
                None
            } else if v.start < brk && v.end > start_brk {
                Some("[heap]")
            } else if stack != 0 && v.start <= stack && v.end >= stack {
                Some("[stack]")
            } else {
                None
            },
        })
        .collect()
}

/// A file mapping's path (as the process sees it), offset, device and inode.
fn file_of(v: &crate::mm::Vma, root: Option<&Location>) -> Option<(Vec<u8>, u64, u64, u64)> {
    let file = v.file()?;
    let (_, offset) = v.cache_at(v.start)?;
    let path = match (&file.location, root) {
        (Some(location), Some(root)) => absolute(location, root),
        _ => Vec::new(),
    };
    let attr = file.attr().ok()?;
    Some((path, offset, attr.dev, attr.ino))
}

pub(super) fn maps(p: &Proc) -> Result<Vec<u8>, Errno> {
    let view = p.view()?;
    let Some(mm) = view.mm else {
        return Ok(Vec::new());
    };
    let root = view.fs.as_ref().map(|fs| fs.lock().root.clone());
    let mut out = Vec::new();
    for region in regions(&mm, false, root.as_ref()) {
        out.extend(maps_line(&region));
    }
    // x86_64's vsyscall page is in every process (the platform emulates it).
    out.extend(maps_line(&Region {
        start: 0xffff_ffff_ff60_0000,
        end: 0xffff_ffff_ff60_1000,
        prot: PROT_EXEC,
        shared: false,
        resident: 0,
        label: Some("[vsyscall]"),
        file: None,
        locked: false,
    }));
    Ok(out)
}

/// One line of /proc/PID/maps: `start-end perms offset dev inode`, then the name from
/// column 74 (Linux pads the line to 72 characters and a space): the file's path for a
/// file mapping, [heap], [stack] and the like for some anonymous ones.
pub(super) fn maps_line(r: &Region) -> Vec<u8> {
    let flag = |bit: i32, c: u8| if r.prot & bit != 0 { c } else { b'-' };
    let mut line = Vec::new();
    put!(line, "{:08x}-{:08x} ", r.start, r.end);
    line.extend([
        flag(PROT_READ, b'r'),
        flag(PROT_WRITE, b'w'),
        flag(PROT_EXEC, b'x'),
        if r.shared { b's' } else { b'p' },
    ]);
    let (offset, dev, ino) = r.file.as_ref().map_or((0, 0, 0), |f| (f.1, f.2, f.3));
    let (major, minor) = ((dev >> 8) & 0xfff, (dev & 0xff) | ((dev >> 12) & !0xff));
    put!(line, " {offset:08x} {major:02x}:{minor:02x} {ino} ");
    let name = match (&r.file, r.label) {
        (Some(file), _) => Some(file.0.as_slice()),
        (None, Some(label)) => Some(label.as_bytes()),
        (None, None) => None,
    };
    if let Some(name) = name {
        if line.len() < 72 {
            line.resize(72, b' ');
        }
        line.push(b' ');
        line.extend_from_slice(name);
    }
    line.push(b'\n');
    line
}

/// Memory figures of a process, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct VmStats {
    pub size: u64,
    pub rss: u64,
    /// The resident part of shared mappings.
    pub rss_shared: u64,
    /// Private writable memory but the stack (Linux's data_vm).
    pub data: u64,
    pub stack: u64,
    /// Executable, not writable memory (exec_vm).
    pub exec: u64,
    /// mlock'ed mappings.
    pub locked: u64,
    /// The resident part of file mappings.
    pub rss_file: u64,
}

pub(super) fn vm_stats(regions: &[Region]) -> VmStats {
    let mut vm = VmStats::default();
    for r in regions {
        vm.size += r.len();
        vm.rss += r.resident;
        if r.locked {
            vm.locked += r.len();
        }
        if r.file.is_some() {
            vm.rss_file += r.resident;
        } else if r.shared {
            vm.rss_shared += r.resident;
        }
        if r.label == Some("[stack]") {
            vm.stack += r.len();
        } else if r.prot & PROT_WRITE != 0 && !r.shared {
            vm.data += r.len();
        } else if r.prot & PROT_EXEC != 0 && r.prot & PROT_WRITE == 0 {
            vm.exec += r.len();
        }
    }
    vm
}

/// What stat, statm and status are made of, gathered at once.
struct Facts {
    kernel: Arc<Kernel>,
    tg: Arc<ThreadGroup>,
    view: ProcessView,
    info: ProcessInfo,
    /// Empty for a zombie, which has no memory.
    regions: Vec<Region>,
    vm: Option<VmStats>,
}

fn facts(p: &Proc) -> Result<Facts, Errno> {
    let kernel = p.fs.kernel()?;
    let tg = p.tg()?;
    let info = kernel.processes.info(p.pid).ok_or(Errno::ESRCH)?;
    let view = tg.view();
    let regions = view
        .mm
        .as_ref()
        .map_or_else(Vec::new, |mm| regions(mm, true, None));
    let vm = view.mm.as_ref().map(|_| vm_stats(&regions));
    Ok(Facts {
        kernel,
        tg,
        view,
        info,
        regions,
        vm,
    })
}

impl Facts {
    /// The state letter and word: Z for a zombie, R for the process reading (it runs),
    /// S for the others, which the Sentry cannot see running.
    fn state(&self) -> (char, &'static str) {
        if self.info.exit.is_some() {
            ('Z', "zombie")
        } else if current().is_some_and(|c| Arc::ptr_eq(&c.tg, &self.tg)) {
            ('R', "running")
        } else {
            ('S', "sleeping")
        }
    }

    /// Ignored and caught signals, bit n-1 for signal n.
    fn signals(&self) -> (u64, u64) {
        let actions = self.tg.actions();
        let (mut ignored, mut caught) = (0, 0);
        for (bit, action) in actions.iter().enumerate().take(NSIG as usize) {
            match action.handler {
                0 => {}
                1 => ignored |= 1 << bit,
                _ => caught |= 1 << bit,
            }
        }
        (ignored, caught)
    }

    /// Clock ticks from the sandbox's boot to the process's creation.
    fn start_ticks(&self) -> u64 {
        let since = self
            .tg
            .started
            .saturating_duration_since(self.kernel.started);
        (since.as_millis() * USER_HZ / 1000) as u64
    }

    /// The lowest and highest address of executable mappings (start_code, end_code).
    fn code(&self) -> (u64, u64) {
        let exec = self.regions.iter().filter(|r| r.prot & PROT_EXEC != 0);
        let start = exec.clone().map(|r| r.start).min().unwrap_or(0);
        (start, exec.map(|r| r.end).max().unwrap_or(0))
    }
}

pub(super) fn stat(p: &Proc) -> Result<Vec<u8>, Errno> {
    let f = facts(p)?;
    let (ignored, caught) = f.signals();
    let mm = f.view.mm.as_ref();
    let arg_env = mm.map(|mm| mm.arg_env()).unwrap_or_default();
    let (start_brk, _) = mm.map_or((0, 0), |mm| mm.brk_range());
    let (start_code, end_code) = f.code();
    let exit_code = match f.info.exit.map(|e| e.status) {
        Some(ExitStatus::Exited(code)) => i32::from(code) << 8,
        Some(ExitStatus::Signaled(sig)) => sig & 0x7f,
        None => 0,
    };
    let vm = f.vm.unwrap_or_default();
    let rss_limit = f.tg.rlimits()[RLIMIT_RSS as usize].cur;
    let sched = f.tg.sched().clone();
    // The controlling terminal's device number and foreground process group.
    let ctty = f.kernel.processes.ctty_of(p.pid);
    let tty_nr = ctty.as_ref().map_or(0, |tty| tty.rdev());
    let tpgid = ctty.and_then(|tty| tty.foreground()).unwrap_or(-1);
    Ok(stat_text(&StatLine {
        pid: p.pid,
        comm: name_of(&f.view),
        state: f.state().0,
        ppid: f.info.parent,
        pgid: f.info.pgid,
        sid: f.info.sid,
        tty_nr,
        tpgid,
        threads: f.tg.tids().len().max(1) as u64,
        start_time: f.start_ticks(),
        vsize: vm.size,
        rss_pages: vm.rss / PAGE_SIZE,
        rss_limit,
        code: (start_code, end_code),
        start_stack: arg_env.stack,
        ignored,
        caught,
        exit_signal: f.info.exit_signal,
        start_brk,
        args: arg_env.args,
        env: arg_env.env,
        exit_code,
        nice: sched.nice,
        rt_priority: sched.priority,
        policy: sched.policy,
    }))
}

/// The values of /proc/PID/stat that are not always 0.
pub(super) struct StatLine<'a> {
    pub pid: i32,
    pub comm: &'a [u8],
    pub state: char,
    pub ppid: i32,
    pub pgid: i32,
    pub sid: i32,
    /// The controlling terminal (its device number, 0 for none) and its foreground process
    /// group (-1 for none).
    pub tty_nr: u64,
    pub tpgid: i32,
    pub threads: u64,
    pub start_time: u64,
    pub vsize: u64,
    pub rss_pages: u64,
    pub rss_limit: u64,
    pub code: (u64, u64),
    pub start_stack: u64,
    pub ignored: u64,
    pub caught: u64,
    pub exit_signal: i32,
    pub start_brk: u64,
    pub args: (u64, u64),
    pub env: (u64, u64),
    pub exit_code: i32,
    pub nice: i32,
    /// The real-time priority (0 under the normal policies) and the SCHED_* policy.
    pub rt_priority: u32,
    pub policy: u64,
}

/// /proc/PID/stat: 52 fields on one line (Linux's do_task_stat). Times, faults and
/// pending signals are not counted yet and show 0.
pub(super) fn stat_text(s: &StatLine<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    put!(out, "{} (", s.pid);
    out.extend_from_slice(s.comm);
    put!(out, ") {} {} {} {} ", s.state, s.ppid, s.pgid, s.sid);
    // tty_nr, tpgid, flags, minflt, cminflt, majflt, cmajflt, utime, stime, cutime, cstime,
    // priority (Linux's task_prio: -1 - rt_priority for real-time tasks, else 20 + nice),
    // nice.
    let priority = if s.rt_priority > 0 {
        -1 - s.rt_priority as i64
    } else {
        20 + i64::from(s.nice)
    };
    put!(
        out,
        "{} {} 0 0 0 0 0 0 0 0 0 {priority} {} ",
        s.tty_nr,
        s.tpgid,
        s.nice
    );
    // num_threads, itrealvalue, starttime, vsize, rss, rsslim.
    put!(
        out,
        "{} 0 {} {} {} {} ",
        s.threads,
        s.start_time,
        s.vsize,
        s.rss_pages,
        s.rss_limit
    );
    // startcode, endcode, startstack, kstkesp, kstkeip, signal, blocked, sigignore,
    // sigcatch, wchan, nswap, cnswap.
    put!(
        out,
        "{} {} {} 0 0 0 0 {} {} 0 0 0 ",
        s.code.0,
        s.code.1,
        s.start_stack,
        s.ignored,
        s.caught
    );
    // exit_signal, processor, rt_priority, policy, delayacct_blkio_ticks, guest_time,
    // cguest_time, start_data, end_data.
    put!(
        out,
        "{} 0 {} {} 0 0 0 0 0 ",
        s.exit_signal,
        s.rt_priority,
        s.policy
    );
    // start_brk, arg_start, arg_end, env_start, env_end, exit_code.
    put!(
        out,
        "{} {} {} {} {} {}\n",
        s.start_brk,
        s.args.0,
        s.args.1,
        s.env.0,
        s.env.1,
        s.exit_code
    );
    out
}

pub(super) fn statm(p: &Proc) -> Result<Vec<u8>, Errno> {
    let f = facts(p)?;
    Ok(statm_text(&f.vm.unwrap_or_default()))
}

/// /proc/PID/statm: size resident shared text lib data dt, in pages.
pub(super) fn statm_text(vm: &VmStats) -> Vec<u8> {
    let pages = |bytes: u64| bytes / PAGE_SIZE;
    let mut out = Vec::new();
    put!(
        out,
        "{} {} {} {} 0 {} 0\n",
        pages(vm.size),
        pages(vm.rss),
        pages(vm.rss_shared),
        pages(vm.exec),
        pages(vm.data + vm.stack)
    );
    out
}

pub(super) fn status(p: &Proc) -> Result<Vec<u8>, Errno> {
    let f = facts(p)?;
    let (ignored, caught) = f.signals();
    let creds = f
        .view
        .creds
        .clone()
        .unwrap_or_else(|| crate::kernel::Credentials::new(0, 0, Vec::new()));
    let umask = f.view.fs.as_ref().map(|fs| fs.lock().umask);
    let highest_fd = f
        .view
        .fds
        .as_ref()
        .and_then(|fds| fds.entries().last().map(|(fd, ..)| *fd))
        .unwrap_or(0);
    let fd_size = (highest_fd.max(0) as u64 + 1).next_power_of_two().max(64);
    let limits = *f.tg.rlimits();
    let affinity =
        f.tg.sched()
            .affinity
            .clone()
            .unwrap_or_else(|| f.kernel.host.cpu_mask.clone());
    Ok(status_text(&Status {
        name: name_of(&f.view),
        umask,
        state: f.state(),
        pid: p.pid,
        ppid: f.info.parent,
        pgid: f.info.pgid,
        sid: f.info.sid,
        uids: [creds.uid, creds.euid, creds.suid, creds.fsuid],
        gids: [creds.gid, creds.egid, creds.sgid, creds.fsgid],
        fd_size: if f.view.fds.is_some() { fd_size } else { 0 },
        groups: &creds.groups,
        vm: f.vm,
        sig_queue_limit: limits[RLIMIT_SIGPENDING as usize].cur,
        threads: f.tg.tids().len().max(1) as u64,
        pending: crate::kernel::signals::pending(&f.tg, p.pid),
        ignored,
        caught,
        caps: creds.caps,
        no_new_privs: creds.no_new_privs,
        cpus: &affinity,
    }))
}

/// The values of /proc/PID/status that are not always the same.
pub(super) struct Status<'a> {
    pub name: &'a [u8],
    /// None for a zombie, whose file-system context is gone (Linux leaves the line out).
    pub umask: Option<u32>,
    pub state: (char, &'static str),
    pub pid: i32,
    pub ppid: i32,
    pub pgid: i32,
    pub sid: i32,
    /// Real, effective, saved and file-system ids.
    pub uids: [u32; 4],
    pub gids: [u32; 4],
    pub fd_size: u64,
    pub groups: &'a [u32],
    /// None for a zombie (Linux leaves the Vm lines out).
    pub vm: Option<VmStats>,
    pub sig_queue_limit: u64,
    pub threads: u64,
    /// Signals pending for the process (ShdPnd).
    pub pending: u64,
    pub ignored: u64,
    pub caught: u64,
    pub caps: CapSets,
    pub no_new_privs: bool,
    pub cpus: &'a [u8],
}

/// /proc/PID/status (Linux's proc_pid_status), its fields in Linux 6's order.
pub(super) fn status_text(s: &Status<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(b"Name:\t");
    // Linux escapes only newlines and backslashes in the name here.
    for &b in s.name {
        match b {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\\' => out.extend_from_slice(b"\\\\"),
            _ => out.push(b),
        }
    }
    out.push(b'\n');
    if let Some(umask) = s.umask {
        put!(out, "Umask:\t{umask:04o}\n");
    }
    put!(out, "State:\t{} ({})\n", s.state.0, s.state.1);
    put!(out, "Tgid:\t{}\nNgid:\t0\nPid:\t{}\n", s.pid, s.pid);
    put!(out, "PPid:\t{}\nTracerPid:\t0\n", s.ppid);
    let [a, b, c, d] = s.uids;
    put!(out, "Uid:\t{a}\t{b}\t{c}\t{d}\n");
    let [a, b, c, d] = s.gids;
    put!(out, "Gid:\t{a}\t{b}\t{c}\t{d}\n");
    put!(out, "FDSize:\t{}\nGroups:\t", s.fd_size);
    let groups: Vec<String> = s.groups.iter().map(u32::to_string).collect();
    put!(out, "{} \n", groups.join(" "));
    put!(out, "NStgid:\t{}\nNSpid:\t{}\n", s.pid, s.pid);
    put!(out, "NSpgid:\t{}\nNSsid:\t{}\n", s.pgid, s.sid);
    out.extend_from_slice(b"Kthread:\t0\n");
    if let Some(vm) = s.vm {
        let kb = |bytes: u64| bytes / 1024;
        // Page tables: one 4 KiB table per 2 MiB that holds pages.
        let pte = vm.rss.div_ceil(2 << 20) * 4096;
        let rows = [
            ("VmPeak", vm.size),
            ("VmSize", vm.size),
            ("VmLck", vm.locked),
            ("VmPin", 0),
            ("VmHWM", vm.rss),
            ("VmRSS", vm.rss),
            ("RssAnon", vm.rss - vm.rss_shared - vm.rss_file),
            ("RssFile", vm.rss_file),
            ("RssShmem", vm.rss_shared),
            ("VmData", vm.data),
            ("VmStk", vm.stack),
            ("VmExe", vm.exec),
            ("VmLib", 0),
            ("VmPTE", pte),
            ("VmSwap", 0),
        ];
        for (name, bytes) in rows {
            put!(out, "{name}:\t{:>8} kB\n", kb(bytes));
        }
        put!(out, "HugetlbPages:\t{:>8} kB\n", 0);
    }
    out.extend_from_slice(b"CoreDumping:\t0\n");
    if s.vm.is_some() {
        out.extend_from_slice(b"THP_enabled:\t1\nuntag_mask:\t0xffffffffffffffff\n");
    }
    put!(
        out,
        "Threads:\t{}\nSigQ:\t0/{}\n",
        s.threads,
        s.sig_queue_limit
    );
    put!(out, "SigPnd:\t{:016x}\nShdPnd:\t{:016x}\n", 0, s.pending);
    put!(out, "SigBlk:\t{:016x}\n", 0);
    put!(
        out,
        "SigIgn:\t{:016x}\nSigCgt:\t{:016x}\n",
        s.ignored,
        s.caught
    );
    let c = &s.caps;
    put!(out, "CapInh:\t{:016x}\n", c.inheritable);
    put!(out, "CapPrm:\t{:016x}\n", c.permitted);
    put!(out, "CapEff:\t{:016x}\n", c.effective);
    put!(out, "CapBnd:\t{:016x}\n", c.bounding);
    put!(out, "CapAmb:\t{:016x}\n", c.ambient);
    put!(out, "NoNewPrivs:\t{}\n", u8::from(s.no_new_privs));
    out.extend_from_slice(b"Seccomp:\t0\nSeccomp_filters:\t0\n");
    put!(out, "Cpus_allowed:\t{}\n", cpu_mask_hex(s.cpus));
    put!(out, "Cpus_allowed_list:\t{}\n", cpu_list(s.cpus));
    // One memory node, in the 1024-node mask of common kernel configurations.
    out.extend_from_slice(b"Mems_allowed:\t");
    for _ in 0..31 {
        out.extend_from_slice(b"00000000,");
    }
    out.extend_from_slice(b"00000001\nMems_allowed_list:\t0\n");
    out.extend_from_slice(b"voluntary_ctxt_switches:\t0\nnonvoluntary_ctxt_switches:\t0\n");
    out
}

/// /proc/PID/fdinfo/N: the offset, the status flags in octal (with O_CLOEXEC when the
/// descriptor has it, as Linux shows), the mount id and the inode number.
pub(super) fn fdinfo_text(
    offset: u64,
    flags: u32,
    cloexec: bool,
    mnt_id: u64,
    ino: u64,
) -> Vec<u8> {
    let flags = if cloexec { flags | O_CLOEXEC } else { flags };
    let mut out = Vec::new();
    put!(
        out,
        "pos:\t{offset}\nflags:\t0{flags:o}\nmnt_id:\t{mnt_id}\nino:\t{ino}\n"
    );
    out
}

/// One mount as the mount tables show it.
pub(super) struct MountEntry {
    pub id: u64,
    pub parent: u64,
    pub dev: u64,
    pub path: Vec<u8>,
    pub fs_type: &'static str,
    pub flags: MountFlags,
}

/// The mounts a process sees, their paths from its root.
fn mount_entries(p: &Proc) -> Result<Vec<MountEntry>, Errno> {
    let kernel = p.fs.kernel()?;
    let root = fs_state(p)?.root;
    Ok(kernel
        .mounts
        .list()
        .into_iter()
        .map(|m| {
            let place = Location {
                mount: m.clone(),
                dentry: m.root.clone(),
            };
            MountEntry {
                id: m.id,
                parent: m.mountpoint.as_ref().map_or(m.id, |at| at.mount.id),
                dev: m.root.inode.attr().map_or(0, |a| a.dev),
                path: absolute(&place, &root),
                fs_type: m.fs_type,
                flags: m.flags,
            }
        })
        .collect())
}

pub(super) fn mounts(p: &Proc) -> Result<Vec<u8>, Errno> {
    Ok(mounts_text(&mount_entries(p)?))
}

pub(super) fn mountinfo(p: &Proc) -> Result<Vec<u8>, Errno> {
    Ok(mountinfo_text(&mount_entries(p)?))
}

/// /proc/PID/mounts (fstab's layout): source, mount point, type, options, 0 0.
pub(super) fn mounts_text(mounts: &[MountEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in mounts {
        put!(out, "{} ", m.fs_type);
        out.extend(mangle(&m.path));
        put!(out, " {} {} 0 0\n", m.fs_type, m.flags.options());
    }
    out
}

/// /proc/PID/mountinfo: id, parent id, major:minor, root, mount point, options, "-", type,
/// source, super options (proc_pid_mountinfo(5)).
pub(super) fn mountinfo_text(mounts: &[MountEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in mounts {
        let (major, minor) = decode_dev(m.dev);
        put!(out, "{} {} {major}:{minor} / ", m.id, m.parent);
        out.extend(mangle(&m.path));
        // Per-mount options, then the super block's (only ro or rw of those).
        let mode = if m.flags.read_only { "ro" } else { "rw" };
        let options = m.flags.options();
        put!(out, " {options} - {} {} {mode}\n", m.fs_type, m.fs_type);
    }
    out
}

/// Linux's new_decode_dev.
fn decode_dev(dev: u64) -> (u64, u64) {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    (major, minor)
}

/// A path in a mount table, with space, tab, newline and backslash as octal escapes
/// (Linux's mangle).
fn mangle(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len());
    for &b in path {
        if matches!(b, b' ' | b'\t' | b'\n' | b'\\') {
            put!(out, "\\{b:03o}");
        } else {
            out.push(b);
        }
    }
    out
}

/// /proc/PID/smaps_rollup: the resident figures of all mappings together.
pub(super) fn smaps_rollup(p: &Proc) -> Result<Vec<u8>, Errno> {
    let f = facts(p)?;
    let vm = f.vm.unwrap_or_default();
    let (low, high) = match (f.regions.first(), f.regions.last()) {
        (Some(first), Some(last)) => (first.start, last.end),
        _ => (0, 0),
    };
    let mut out = Vec::new();
    put!(out, "{low:08x}-{high:08x} ---p 00000000 00:00 0");
    out.resize(72, b' ');
    out.extend_from_slice(b" [rollup]\n");
    let anon = vm.rss - vm.rss_shared - vm.rss_file;
    let kb = |v: u64| v / 1024;
    for (name, value) in [
        ("Rss", vm.rss),
        ("Pss", vm.rss),
        ("Pss_Anon", anon),
        ("Pss_File", vm.rss_file),
        ("Pss_Shmem", vm.rss_shared),
        ("Shared_Clean", 0),
        ("Shared_Dirty", 0),
        ("Private_Clean", vm.rss_file),
        ("Private_Dirty", anon + vm.rss_shared),
        ("Referenced", vm.rss),
        ("Anonymous", anon),
        ("KSM", 0),
        ("LazyFree", 0),
        ("AnonHugePages", 0),
        ("ShmemPmdMapped", 0),
        ("FilePmdMapped", 0),
        ("Shared_Hugetlb", 0),
        ("Private_Hugetlb", 0),
        ("Swap", 0),
        ("SwapPss", 0),
        ("Locked", vm.locked.min(vm.rss)),
    ] {
        put!(out, "{:<16}{:>8} kB\n", format!("{name}:"), kb(value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::RLIMIT_STACK;
    use crate::fs::devices::makedev;

    /// Unlimited but for an 8 MiB soft stack limit.
    fn unlimited() -> [Rlimit; RLIM_NLIMITS] {
        let mut limits = [Rlimit {
            cur: RLIM_INFINITY,
            max: RLIM_INFINITY,
        }; RLIM_NLIMITS];
        limits[RLIMIT_STACK as usize].cur = 8 << 20;
        limits
    }

    fn region(start: u64, end: u64, prot: i32, label: Option<&'static str>) -> Region {
        Region {
            start,
            end,
            prot,
            shared: false,
            resident: 0,
            label,
            file: None,
            locked: false,
        }
    }

    #[test]
    fn maps_lines_match_linux() {
        let stack = region(
            0x7ffe_e210_7000,
            0x7ffe_e212_8000,
            PROT_READ | PROT_WRITE,
            Some("[stack]"),
        );
        assert_eq!(
            String::from_utf8(maps_line(&stack)).unwrap(),
            "7ffee2107000-7ffee2128000 rw-p 00000000 00:00 0                          [stack]\n"
        );
        let anon = region(
            0x7f2f_fc02_7000,
            0x7f2f_fc04_9000,
            PROT_READ | PROT_WRITE,
            None,
        );
        assert_eq!(
            String::from_utf8(maps_line(&anon)).unwrap(),
            "7f2ffc027000-7f2ffc049000 rw-p 00000000 00:00 0 \n"
        );
        let vsyscall = region(
            0xffff_ffff_ff60_0000,
            0xffff_ffff_ff60_1000,
            PROT_EXEC,
            Some("[vsyscall]"),
        );
        assert_eq!(
            String::from_utf8(maps_line(&vsyscall)).unwrap(),
            "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n"
        );
        let low = Region {
            shared: true,
            ..region(0x1000, 0x2000, PROT_READ, None)
        };
        assert_eq!(
            maps_line(&low),
            b"00001000-00002000 r--s 00000000 00:00 0 \n"
        );
    }

    #[test]
    fn vm_stats_sort_memory_by_kind() {
        let regions = [
            region(0x1000, 0x3000, PROT_READ | PROT_EXEC, None),
            Region {
                resident: 0x1000,
                ..region(0x3000, 0x4000, PROT_READ | PROT_WRITE, Some("[heap]"))
            },
            Region {
                resident: 0x2000,
                ..region(0x10000, 0x18000, PROT_READ | PROT_WRITE, Some("[stack]"))
            },
        ];
        let vm = vm_stats(&regions);
        assert_eq!(
            vm,
            VmStats {
                size: 0xb000,
                rss: 0x3000,
                rss_shared: 0,
                data: 0x1000,
                stack: 0x8000,
                exec: 0x2000,
                ..VmStats::default()
            }
        );
        assert_eq!(statm_text(&vm), b"11 3 0 2 0 9 0\n");
    }

    #[test]
    fn stat_line_has_52_fields_and_a_raw_comm() {
        let line = stat_text(&StatLine {
            pid: 7,
            comm: b"a) b",
            state: 'S',
            ppid: 1,
            pgid: 7,
            sid: 1,
            tty_nr: 0,
            tpgid: -1,
            threads: 1,
            start_time: 12,
            vsize: 4096,
            rss_pages: 1,
            rss_limit: u64::MAX,
            code: (0x1000, 0x2000),
            start_stack: 0x7fff_0000,
            ignored: 1 << 12,
            caught: 0,
            exit_signal: 17,
            start_brk: 0x5000,
            args: (10, 20),
            env: (20, 30),
            exit_code: 0,
            nice: 5,
            rt_priority: 0,
            policy: 3,
        });
        let text = String::from_utf8(line).unwrap();
        assert!(text.starts_with("7 (a) b) S 1 7 1 0 -1 0 "));
        assert!(text.ends_with(" 20480 10 20 20 30 0\n"));
        // Fields after the comm's closing parenthesis: 50 more (3..=52).
        let rest = &text[text.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        assert_eq!(fields.len(), 50);
        assert_eq!(fields[22 - 3], "12"); // starttime
        assert_eq!(fields[25 - 3], "18446744073709551615"); // rsslim
        assert_eq!(fields[33 - 3], "4096"); // sigignore
        assert_eq!(fields[38 - 3], "17"); // exit_signal
        assert_eq!(fields[18 - 3], "25"); // priority
        assert_eq!(fields[19 - 3], "5"); // nice
        assert_eq!(fields[40 - 3], "0"); // rt_priority
        assert_eq!(fields[41 - 3], "3"); // policy
    }

    #[test]
    fn status_fields_match_linux() {
        let text = status_text(&Status {
            name: b"sh\\x\n",
            umask: Some(0o22),
            state: ('R', "running"),
            pid: 3,
            ppid: 1,
            pgid: 3,
            sid: 1,
            uids: [1000, 1000, 1000, 1000],
            gids: [100, 100, 100, 100],
            fd_size: 64,
            groups: &[4, 24],
            vm: Some(VmStats {
                size: 3060 * 1024,
                rss: 1752 * 1024,
                ..VmStats::default()
            }),
            sig_queue_limit: 96365,
            threads: 1,
            pending: 0,
            ignored: 0x1000,
            caught: 0x4002,
            caps: CapSets::none(),
            no_new_privs: true,
            cpus: &[0b11],
        });
        let text = String::from_utf8(text).unwrap();
        for line in [
            "Name:\tsh\\\\x\\n\n",
            "Umask:\t0022\n",
            "State:\tR (running)\n",
            "Tgid:\t3\nNgid:\t0\nPid:\t3\nPPid:\t1\nTracerPid:\t0\n",
            "Uid:\t1000\t1000\t1000\t1000\nGid:\t100\t100\t100\t100\n",
            "FDSize:\t64\nGroups:\t4 24 \n",
            "VmPeak:\t    3060 kB\nVmSize:\t    3060 kB\n",
            "VmRSS:\t    1752 kB\n",
            "Threads:\t1\nSigQ:\t0/96365\n",
            "SigIgn:\t0000000000001000\nSigCgt:\t0000000000004002\n",
            "CapPrm:\t0000000000000000\nCapEff:\t0000000000000000\n",
            "CapBnd:\t000001ffffffffff\nCapAmb:\t0000000000000000\nNoNewPrivs:\t1\n",
            "Cpus_allowed:\t3\nCpus_allowed_list:\t0-1\n",
        ] {
            assert!(text.contains(line), "{line:?} missing from\n{text}");
        }
        assert!(text.starts_with("Name:"));
        assert!(text.ends_with("nonvoluntary_ctxt_switches:\t0\n"));
        let empty = status_text(&Status {
            groups: &[],
            umask: None,
            vm: None,
            ..Status {
                name: b"z",
                umask: None,
                state: ('Z', "zombie"),
                pid: 4,
                ppid: 1,
                pgid: 4,
                sid: 1,
                uids: [0; 4],
                gids: [0; 4],
                fd_size: 0,
                groups: &[],
                vm: None,
                sig_queue_limit: 0,
                threads: 1,
                pending: 0,
                ignored: 0,
                caught: 0,
                caps: CapSets::full(),
                no_new_privs: false,
                cpus: &[1],
            }
        });
        let empty = String::from_utf8(empty).unwrap();
        assert!(empty.contains("Groups:\t \n"));
        assert!(!empty.contains("Umask") && !empty.contains("VmSize"));
        assert!(empty.contains("State:\tZ (zombie)\n"));
    }

    #[test]
    fn limits_table_matches_linux() {
        let text = String::from_utf8(limits_text(&unlimited())).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 17);
        assert_eq!(
            lines[0],
            "Limit                     Soft Limit           Hard Limit           Units     "
        );
        assert_eq!(
            lines[4],
            "Max stack size            8388608              unlimited            bytes     "
        );
        assert_eq!(
            lines[14],
            "Max nice priority         unlimited            unlimited            "
        );
    }

    #[test]
    fn fdinfo_and_mount_tables() {
        assert_eq!(
            fdinfo_text(3, 0o100000, true, 24, 7),
            b"pos:\t3\nflags:\t02100000\nmnt_id:\t24\nino:\t7\n"
        );
        let mounts = [
            MountEntry {
                id: 1,
                parent: 1,
                dev: makedev(0, 5),
                path: b"/".to_vec(),
                fs_type: "overlay",
                flags: MountFlags::default(),
            },
            MountEntry {
                id: 4,
                parent: 1,
                dev: makedev(0, 6),
                path: b"/my proc".to_vec(),
                fs_type: "proc",
                flags: MountFlags {
                    read_only: true,
                    nosuid: true,
                    nodev: true,
                    noexec: true,
                },
            },
        ];
        assert_eq!(
            String::from_utf8(mounts_text(&mounts)).unwrap(),
            "overlay / overlay rw 0 0\nproc /my\\040proc proc ro,nosuid,nodev,noexec 0 0\n"
        );
        assert_eq!(
            String::from_utf8(mountinfo_text(&mounts)).unwrap(),
            "1 1 0:5 / / rw - overlay overlay rw\n4 1 0:6 / /my\\040proc ro,nosuid,nodev,noexec - proc proc ro\n"
        );
    }
}
