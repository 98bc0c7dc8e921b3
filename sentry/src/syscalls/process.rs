//! Process and thread system calls: identity, thread-local state, prctl, limits, resource
//! usage.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::abi::*;
use crate::kernel::capabilities::CapPrctl;
use crate::kernel::Task;

pub fn getpid(t: &mut Task, _: &[u64; 6]) -> SysResult {
    Ok(t.tg.pid as u64)
}

pub fn gettid(t: &mut Task, _: &[u64; 6]) -> SysResult {
    Ok(t.tid as u64)
}

pub fn getuid(t: &mut Task, _: &[u64; 6]) -> SysResult {
    Ok(t.creds.uid as u64)
}

pub fn geteuid(t: &mut Task, _: &[u64; 6]) -> SysResult {
    Ok(t.creds.euid as u64)
}

pub fn getgid(t: &mut Task, _: &[u64; 6]) -> SysResult {
    Ok(t.creds.gid as u64)
}

pub fn getegid(t: &mut Task, _: &[u64; 6]) -> SysResult {
    Ok(t.creds.egid as u64)
}

pub fn getresuid(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let c = &t.creds;
    write_ids(t, a, [c.uid, c.euid, c.suid])
}

pub fn getresgid(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let c = &t.creds;
    write_ids(t, a, [c.gid, c.egid, c.sgid])
}

/// Writes real, effective and saved ids to the three pointers (all must be valid).
fn write_ids(t: &Task, a: &[u64; 6], ids: [u32; 3]) -> SysResult {
    for (ptr, id) in a.iter().zip(ids) {
        t.mm.write_obj(*ptr, &id)?;
    }
    Ok(0)
}

pub fn getgroups(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let [size, list, ..] = *a;
    let size = size as i32;
    if size < 0 {
        return Err(Errno::EINVAL);
    }
    let n = t.creds.groups.len() as u64;
    if size == 0 {
        return Ok(n);
    }
    if (size as u64) < n {
        return Err(Errno::EINVAL);
    }
    let bytes: Vec<u8> = t
        .creds
        .groups
        .iter()
        .flat_map(|g| g.to_ne_bytes())
        .collect();
    t.mm.copy_out(list, &bytes)?;
    Ok(n)
}

/// Which ids a set*id call changes: user or group ids.
#[derive(Clone, Copy, PartialEq, Eq)]
enum IdKind {
    User,
    Group,
}

/// The (real, effective, saved) ids of `kind`.
fn ids(t: &Task, kind: IdKind) -> [u32; 3] {
    let c = &t.creds;
    match kind {
        IdKind::User => [c.uid, c.euid, c.suid],
        IdKind::Group => [c.gid, c.egid, c.sgid],
    }
}

/// The capability that lets a set*id call pick any id of `kind`.
fn setid_cap(kind: IdKind) -> u32 {
    match kind {
        IdKind::User => CAP_SETUID,
        IdKind::Group => CAP_SETGID,
    }
}

/// Sets the ids of `kind`; the file-system id follows the effective one, and the
/// capabilities follow the uids (capabilities(7), "Effect of user ID changes").
fn set_ids(t: &mut Task, kind: IdKind, [r, e, s]: [u32; 3]) -> SysResult {
    let old = &t.creds;
    let mut new = old.clone();
    match kind {
        IdKind::User => {
            (new.uid, new.euid, new.suid, new.fsuid) = (r, e, s, e);
            new.fix_setuid(old);
        }
        IdKind::Group => (new.gid, new.egid, new.sgid, new.fsgid) = (r, e, s, e),
    }
    t.commit_creds(new);
    Ok(0)
}

/// An id argument: -1 (as a 32-bit value) leaves the id as it is.
fn id_arg(v: u64) -> Option<u32> {
    (v as u32 != u32::MAX).then_some(v as u32)
}

/// setresuid/setresgid (credentials(7)): unprivileged callers may only pick among their
/// current real, effective and saved ids.
fn setres(t: &mut Task, kind: IdKind, a: &[u64; 6]) -> SysResult {
    let old = ids(t, kind);
    let privileged = t.creds.capable(setid_cap(kind));
    let new = [id_arg(a[0]), id_arg(a[1]), id_arg(a[2])];
    if !privileged && new.iter().flatten().any(|id| !old.contains(id)) {
        return Err(Errno::EPERM);
    }
    let pick = |i: usize| new[i].unwrap_or(old[i]);
    set_ids(t, kind, [pick(0), pick(1), pick(2)])
}

/// setreuid/setregid: the real id may become the effective one; the effective id may
/// become the real or saved one; the saved id follows the effective one when the real id
/// is set or the effective one moves away from the old real id.
fn setre(t: &mut Task, kind: IdKind, a: &[u64; 6]) -> SysResult {
    let [ro, eo, so] = ids(t, kind);
    let privileged = t.creds.capable(setid_cap(kind));
    let (r, e) = (id_arg(a[0]), id_arg(a[1]));
    let bad_real = r.is_some_and(|r| r != ro && r != eo);
    let bad_effective = e.is_some_and(|e| e != ro && e != eo && e != so);
    if !privileged && (bad_real || bad_effective) {
        return Err(Errno::EPERM);
    }
    let (nr, ne) = (r.unwrap_or(ro), e.unwrap_or(eo));
    let ns = if r.is_some() || e.is_some_and(|e| e != ro) {
        ne
    } else {
        so
    };
    set_ids(t, kind, [nr, ne, ns])
}

/// setuid/setgid: with CAP_SETUID (CAP_SETGID) all three ids; otherwise only the effective
/// id, to the real or saved one.
fn set_one(t: &mut Task, kind: IdKind, a: &[u64; 6]) -> SysResult {
    let [ro, _, so] = ids(t, kind);
    let id = id_arg(a[0]).ok_or(Errno::EINVAL)?;
    if t.creds.capable(setid_cap(kind)) {
        return set_ids(t, kind, [id, id, id]);
    }
    if id != ro && id != so {
        return Err(Errno::EPERM);
    }
    let [r, _, s] = ids(t, kind);
    set_ids(t, kind, [r, id, s])
}

pub fn setuid(t: &mut Task, a: &[u64; 6]) -> SysResult {
    set_one(t, IdKind::User, a)
}

pub fn setgid(t: &mut Task, a: &[u64; 6]) -> SysResult {
    set_one(t, IdKind::Group, a)
}

pub fn setreuid(t: &mut Task, a: &[u64; 6]) -> SysResult {
    setre(t, IdKind::User, a)
}

pub fn setregid(t: &mut Task, a: &[u64; 6]) -> SysResult {
    setre(t, IdKind::Group, a)
}

pub fn setresuid(t: &mut Task, a: &[u64; 6]) -> SysResult {
    setres(t, IdKind::User, a)
}

pub fn setresgid(t: &mut Task, a: &[u64; 6]) -> SysResult {
    setres(t, IdKind::Group, a)
}

/// setfsuid(2)/setfsgid(2): the file-system id becomes `id` if it is the real, effective,
/// saved or current file-system id, or with CAP_SETUID (CAP_SETGID); either way the call
/// returns the previous one (so -1, never a valid id, only asks).
fn set_fs_id(t: &mut Task, kind: IdKind, a: &[u64; 6]) -> SysResult {
    let id = a[0] as u32;
    let c = &t.creds;
    let (current, previous) = match kind {
        IdKind::User => ([c.uid, c.euid, c.suid, c.fsuid], c.fsuid),
        IdKind::Group => ([c.gid, c.egid, c.sgid, c.fsgid], c.fsgid),
    };
    let allowed = current.contains(&id) || c.capable(setid_cap(kind));
    if id != u32::MAX && allowed && id != previous {
        let mut new = c.clone();
        match kind {
            IdKind::User => {
                new.fsuid = id;
                new.fix_setfsuid(c);
            }
            IdKind::Group => new.fsgid = id,
        }
        t.commit_creds(new);
    }
    Ok(previous as u64)
}

pub fn setfsuid(t: &mut Task, a: &[u64; 6]) -> SysResult {
    set_fs_id(t, IdKind::User, a)
}

pub fn setfsgid(t: &mut Task, a: &[u64; 6]) -> SysResult {
    set_fs_id(t, IdKind::Group, a)
}

/// The number of 32-bit words per set that a capget/capset header's version carries
/// (cap_validate_magic). For an unknown version Linux writes back the one it prefers, so
/// that a library can ask, and fails with EINVAL.
fn cap_words(t: &Task, header: u64) -> Result<usize, Errno> {
    let version: u32 = t.mm.read_obj(header)?;
    match version {
        LINUX_CAPABILITY_VERSION_1 => Ok(1),
        LINUX_CAPABILITY_VERSION_2 | LINUX_CAPABILITY_VERSION_3 => Ok(2),
        _ => {
            t.mm.write_obj(header, &LINUX_CAPABILITY_VERSION_3)?;
            Err(Errno::EINVAL)
        }
    }
}

/// capget(2): the effective, permitted and inheritable sets of thread `pid` (0: the caller).
/// A null data pointer only checks the version (0 even for a bad one, which is written back).
pub fn capget(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let [header, data, ..] = *a;
    let words = match cap_words(t, header) {
        Err(Errno::EINVAL) if data == 0 => return Ok(0),
        words => words?,
    };
    if data == 0 {
        return Ok(0);
    }
    let header: CapUserHeader = t.mm.read_obj(header)?;
    let caps = match header.pid {
        pid if pid < 0 => return Err(Errno::EINVAL),
        pid if pid == 0 || pid == t.tid => t.creds.caps,
        pid => {
            let tg = t.kernel.processes.process_of(pid).ok_or(Errno::ESRCH)?;
            tg.view().creds.ok_or(Errno::ESRCH)?.caps
        }
    };
    for word in 0..words {
        let shift = 32 * word;
        let set = CapUserData {
            effective: (caps.effective >> shift) as u32,
            permitted: (caps.permitted >> shift) as u32,
            inheritable: (caps.inheritable >> shift) as u32,
        };
        let at = data.wrapping_add((word * std::mem::size_of::<CapUserData>()) as u64);
        t.mm.write_obj(at, &set)?;
    }
    Ok(0)
}

/// capset(2): sets the caller's own effective, permitted and inheritable sets (EPERM for
/// another thread), under capset's subset rules. Version 1 data sets the low 32 bits and
/// clears the rest.
pub fn capset(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let [header, data, ..] = *a;
    let words = cap_words(t, header)?;
    let header: CapUserHeader = t.mm.read_obj(header)?;
    if header.pid != 0 && header.pid != t.tid {
        return Err(Errno::EPERM);
    }
    let (mut effective, mut permitted, mut inheritable) = (0u64, 0u64, 0u64);
    for word in 0..words {
        let at = data.wrapping_add((word * std::mem::size_of::<CapUserData>()) as u64);
        let set: CapUserData = t.mm.read_obj(at)?;
        let shift = 32 * word;
        effective |= u64::from(set.effective) << shift;
        permitted |= u64::from(set.permitted) << shift;
        inheritable |= u64::from(set.inheritable) << shift;
    }
    let new = t.creds.capset(effective, permitted, inheritable)?;
    t.commit_creds(new);
    Ok(0)
}

pub fn setgroups(t: &mut Task, a: &[u64; 6]) -> SysResult {
    /// NGROUPS_MAX.
    const MAX: u64 = 65536;
    let [size, list, ..] = *a;
    if size > MAX {
        return Err(Errno::EINVAL);
    }
    if !t.creds.capable(CAP_SETGID) {
        return Err(Errno::EPERM);
    }
    let mut bytes = vec![0u8; size as usize * 4];
    t.mm.copy_in(list, &mut bytes)?;
    let mut groups: Vec<u32> = bytes
        .chunks_exact(4)
        .map(|c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    groups.sort_unstable();
    let mut new = t.creds.clone();
    new.groups = groups;
    t.commit_creds(new);
    Ok(0)
}

/// personality(2): 0xffffffff asks; PER_LINUX (0) with any flags may be set; other
/// execution domains do not exist here (EINVAL, as Linux without them).
pub fn personality(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let new = a[0] as u32;
    let old = t.tg.personality.load(Ordering::Relaxed);
    if new != u32::MAX {
        if new & 0xff != 0 {
            return Err(Errno::EINVAL);
        }
        t.tg.personality.store(new, Ordering::Relaxed);
    }
    Ok(old as u64)
}

pub fn set_tid_address(t: &mut Task, a: &[u64; 6]) -> SysResult {
    t.clear_child_tid = a[0];
    Ok(t.tid as u64)
}

/// sizeof(struct robust_list_head).
const ROBUST_LIST_HEAD_SIZE: u64 = 24;

pub fn set_robust_list(t: &mut Task, a: &[u64; 6]) -> SysResult {
    if a[1] != ROBUST_LIST_HEAD_SIZE {
        return Err(Errno::EINVAL);
    }
    t.robust_list = (a[0], a[1]);
    Ok(0)
}

const RSEQ_FLAG_UNREGISTER: u64 = 1;
/// The size and alignment of the original `struct rseq`.
const ORIG_RSEQ_SIZE: u32 = 32;

/// rseq registration. The task runs pinned to one CPU with no other guest thread beside it,
/// so a critical section can never be preempted by a peer and only `cpu_id` needs keeping.
/// (Threads will have to abort critical sections when they are interrupted.)
pub fn rseq(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let [addr, len, flags, sig, ..] = *a;
    let (len, sig) = (len as u32, sig as u32);
    if flags & RSEQ_FLAG_UNREGISTER != 0 {
        if flags != RSEQ_FLAG_UNREGISTER {
            return Err(Errno::EINVAL);
        }
        let Some((cur_addr, cur_len, cur_sig)) = t.rseq else {
            return Err(Errno::EINVAL);
        };
        if cur_addr != addr || cur_len != len {
            return Err(Errno::EINVAL);
        }
        if cur_sig != sig {
            return Err(Errno::EPERM);
        }
        // As rseq_reset_rseq_cpu_node_id: cpu_id_start 0, cpu_id RSEQ_CPU_ID_UNINITIALIZED.
        t.mm.write_obj(addr, &[0u32, u32::MAX])?;
        t.mm.write_obj(addr + 20, &[0u32, 0u32])?;
        t.rseq = None;
        return Ok(0);
    }
    if flags != 0 {
        return Err(Errno::EINVAL);
    }
    if let Some((cur_addr, cur_len, cur_sig)) = t.rseq {
        if cur_addr != addr || cur_len != len {
            return Err(Errno::EINVAL);
        }
        return Err(if cur_sig != sig {
            Errno::EPERM
        } else {
            Errno::EBUSY
        });
    }
    if len < ORIG_RSEQ_SIZE || addr % ORIG_RSEQ_SIZE as u64 != 0 {
        return Err(Errno::EINVAL);
    }
    t.mm.check_access(addr, len as u64, true)?;
    let cpu = super::sched::current_cpu(t);
    // cpu_id_start and cpu_id, then node_id and mm_cid.
    t.mm.write_obj(addr, &[cpu, cpu])?;
    t.mm.write_obj(addr + 20, &[0u32, 0u32])?;
    t.rseq = Some((addr, len, sig));
    Ok(0)
}

pub fn arch_prctl(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let (code, addr) = (a[0] as u32 as u64, a[1]);
    match code {
        ARCH_SET_FS | ARCH_SET_GS if addr >= TASK_SIZE_MAX => Err(Errno::EPERM),
        ARCH_SET_FS => {
            t.regs.fs_base = addr;
            Ok(0)
        }
        ARCH_SET_GS => {
            t.regs.gs_base = addr;
            Ok(0)
        }
        ARCH_GET_FS => t.mm.write_obj(addr, &t.regs.fs_base).map(|()| 0),
        ARCH_GET_GS => t.mm.write_obj(addr, &t.regs.gs_base).map(|()| 0),
        ARCH_GET_CPUID => Ok(1),
        // CPUID faulting cannot be offered: the guest's cpuid runs on the host CPU.
        ARCH_SET_CPUID => Err(Errno::ENODEV),
        _ => Err(Errno::EINVAL),
    }
}

/// prctl(2): the thread's name, the parent-death signal, dumpability, no_new_privs and the
/// capability options (bounding and ambient sets, securebits). Most are recorded for what
/// reads them (signal delivery, /proc ownership, execve), as Linux keeps them.
pub fn prctl(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let [option, arg2, arg3, arg4, arg5, _] = *a;
    match option as u32 as u64 {
        // arg2 is an unsigned long: any signal number up to 64, or 0 for none.
        PR_SET_PDEATHSIG if arg2 > NSIG as u64 => Err(Errno::EINVAL),
        PR_SET_PDEATHSIG => {
            t.tg.pdeath_signal.store(arg2 as i32, Ordering::Relaxed);
            Ok(0)
        }
        PR_GET_PDEATHSIG => {
            let sig = t.tg.pdeath_signal.load(Ordering::Relaxed);
            t.mm.write_obj(arg2, &sig).map(|()| 0)
        }
        PR_SET_CHILD_SUBREAPER => {
            t.tg.subreaper.store(arg2 != 0, Ordering::Relaxed);
            Ok(0)
        }
        PR_GET_CHILD_SUBREAPER => {
            let on = i32::from(t.tg.subreaper.load(Ordering::Relaxed));
            t.mm.write_obj(arg2, &on).map(|()| 0)
        }
        PR_GET_DUMPABLE => Ok(u64::from(t.tg.dumpable.load(Ordering::Relaxed))),
        // SUID_DUMP_DISABLE or SUID_DUMP_USER (SUID_DUMP_ROOT cannot be asked for).
        PR_SET_DUMPABLE if arg2 > 1 => Err(Errno::EINVAL),
        PR_SET_DUMPABLE => {
            t.tg.dumpable.store(arg2 == 1, Ordering::Relaxed);
            Ok(0)
        }
        PR_SET_NO_NEW_PRIVS if arg2 != 1 || arg3 != 0 || arg4 != 0 || arg5 != 0 => {
            Err(Errno::EINVAL)
        }
        PR_SET_NO_NEW_PRIVS => {
            let mut new = t.creds.clone();
            new.no_new_privs = true;
            t.commit_creds(new);
            Ok(0)
        }
        PR_GET_NO_NEW_PRIVS if arg2 != 0 || arg3 != 0 || arg4 != 0 || arg5 != 0 => {
            Err(Errno::EINVAL)
        }
        PR_GET_NO_NEW_PRIVS => Ok(u64::from(t.creds.no_new_privs)),
        PR_SET_NAME => {
            // Like strncpy_from_user(comm, name, 15): stop at a NUL or after 15 bytes.
            let mut name = Vec::with_capacity(15);
            for i in 0..15 {
                let byte: u8 = t.mm.read_obj(a[1] + i)?;
                if byte == 0 {
                    break;
                }
                name.push(byte);
            }
            t.set_comm(&name);
            Ok(0)
        }
        PR_GET_NAME => t.mm.write_obj(a[1], &t.comm).map(|()| 0),
        option => match t.creds.cap_prctl(option, [arg2, arg3, arg4, arg5]) {
            Some(Ok(CapPrctl::Value(v))) => Ok(v),
            Some(Ok(CapPrctl::Commit(new))) => {
                t.commit_creds(new);
                Ok(0)
            }
            Some(Err(e)) => Err(e),
            None => Err(Errno::EINVAL),
        },
    }
}

pub fn prlimit64(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let [pid, resource, new, old, ..] = *a;
    if pid as i32 != 0 && pid as i32 != t.tg.pid {
        return Err(Errno::ESRCH);
    }
    let resource = usize::try_from(resource)
        .ok()
        .filter(|&r| r < RLIM_NLIMITS)
        .ok_or(Errno::EINVAL)?;
    let new = if new != 0 {
        Some(t.mm.read_obj::<Rlimit>(new)?)
    } else {
        None
    };
    let previous = {
        let mut limits = t.tg.rlimits();
        let previous = limits[resource];
        if let Some(new) = new {
            if new.cur > new.max {
                return Err(Errno::EINVAL);
            }
            if resource == RLIMIT_NOFILE as usize && new.max > NR_OPEN {
                return Err(Errno::EPERM);
            }
            // Raising a hard limit needs CAP_SYS_RESOURCE (setrlimit(2)).
            if new.max > previous.max && !t.creds.capable(CAP_SYS_RESOURCE) {
                return Err(Errno::EPERM);
            }
            limits[resource] = new;
        }
        previous
    };
    if new.is_some() {
        let limits = crate::kernel::memory_limits(&t.tg.rlimits(), &t.creds);
        t.mm.set_limits(limits);
    }
    if old != 0 {
        t.mm.write_obj(old, &previous)?;
    }
    Ok(0)
}

pub fn getrlimit(t: &mut Task, a: &[u64; 6]) -> SysResult {
    prlimit64(t, &[0, a[0], 0, a[1], 0, 0])
}

pub fn setrlimit(t: &mut Task, a: &[u64; 6]) -> SysResult {
    prlimit64(t, &[0, a[0], a[1], 0, 0, 0])
}

pub fn getcpu(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let cpu = super::sched::current_cpu(t);
    if a[0] != 0 {
        t.mm.write_obj(a[0], &cpu)?;
    }
    if a[1] != 0 {
        t.mm.write_obj(a[1], &0u32)?;
    }
    Ok(0)
}

fn timeval(d: Duration) -> Timeval {
    Timeval {
        tv_sec: d.as_secs() as i64,
        tv_usec: d.subsec_micros() as i64,
    }
}

/// Clock ticks (USER_HZ) in `d`.
fn ticks(d: Duration) -> i64 {
    (d.as_millis() * USER_HZ as u128 / 1000) as i64
}

/// The task's resident set in kilobytes (ru_maxrss). The peak is not tracked: the current
/// size is reported, which is what the peak is at least.
fn resident_kb(t: &Task) -> i64 {
    let bytes: u64 = t.mm.resident(0, u64::MAX);
    (bytes / 1024) as i64
}

/// getrusage(2): the caller's CPU time as user time (guest code) and system time (the
/// Sentry serving it), or that of the children it has reaped (all counted as user time:
/// a child's total is all that is kept). User time is the whole process's for
/// RUSAGE_THREAD too (the host shows the stub's threads' clocks only together); system
/// time is the calling thread's, plus that of exited threads for RUSAGE_SELF. Fault and
/// switch counters are not kept (0).
pub fn getrusage(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let usage = match a[0] as i32 as i64 as u64 {
        who @ (RUSAGE_SELF | RUSAGE_THREAD) => {
            let (user, mut system) = t.cpu_times();
            if who == RUSAGE_SELF {
                system += *t.tg.threads_cpu();
            }
            let mut counters = [0; 14];
            counters[0] = resident_kb(t);
            Rusage {
                utime: timeval(user),
                stime: timeval(system),
                counters,
            }
        }
        RUSAGE_CHILDREN => Rusage {
            utime: timeval(*t.tg.children_cpu()),
            ..Rusage::default()
        },
        _ => return Err(Errno::EINVAL),
    };
    t.mm.write_obj(a[1], &usage)?;
    Ok(0)
}

/// times(2): the CPU times of getrusage in clock ticks; returns the ticks since the sandbox
/// booted. A NULL buffer only asks for that.
pub fn times(t: &mut Task, a: &[u64; 6]) -> SysResult {
    if a[0] != 0 {
        let (user, system) = t.cpu_times();
        let tms = Tms {
            utime: ticks(user),
            stime: ticks(system),
            cutime: ticks(*t.tg.children_cpu()),
            cstime: 0,
        };
        t.mm.write_obj(a[0], &tms)?;
    }
    Ok(ticks(t.kernel.started.elapsed()) as u64)
}
