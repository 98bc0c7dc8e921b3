//! Scheduling: policies and priorities (sched_setscheduler, setpriority), CPU affinity,
//! sched_yield. The host schedules the Sentry's threads; what a guest asks for is checked as
//! Linux checks it, kept per process (`SchedAttrs`) and reported back.

use std::sync::Arc;

use crate::abi::*;
use crate::kernel::{Credentials, Task, ThreadGroup};

/// The highest real-time priority (MAX_RT_PRIO - 1).
const MAX_RT_PRIORITY: u32 = 99;
const MIN_NICE: i32 = -20;
const MAX_NICE: i32 = 19;

/// Whether the caller may raise priorities and change other users' processes.
fn has_cap_sys_nice(t: &Task) -> bool {
    t.creds.capable(CAP_SYS_NICE)
}

/// The process a scheduling call names by `pid`: the caller for 0, else ESRCH if there is
/// none (zombies included, as Linux finds them until they are reaped).
fn target(t: &Task, pid: i32) -> Result<Arc<ThreadGroup>, Errno> {
    if pid == 0 || pid == t.tid {
        return Ok(t.tg.clone());
    }
    t.kernel.processes.get(pid).ok_or(Errno::ESRCH)
}

/// A pid argument of the sched_* calls: negative is EINVAL.
fn pid_arg(pid: u64) -> Result<i32, Errno> {
    let pid = pid as i32;
    if pid < 0 {
        return Err(Errno::EINVAL);
    }
    Ok(pid)
}

/// The CPUs a process may run on: its affinity, or every CPU of the sandbox.
fn affinity(t: &Task, tg: &ThreadGroup) -> Vec<u8> {
    tg.sched()
        .affinity
        .clone()
        .unwrap_or_else(|| t.kernel.host.cpu_mask.clone())
}

/// The CPU the guest is shown as running on: the host's, if the task's affinity allows it,
/// else the first CPU the affinity allows (the host does not pin the Sentry's threads to the
/// guest's choice, so the CPU number is the guest's view, as in gVisor).
pub(super) fn current_cpu(t: &Task) -> u32 {
    let host = nix::sched::sched_getcpu().unwrap_or(0);
    let mask = affinity(t, &t.tg);
    let allowed = |cpu: usize| mask.get(cpu / 8).is_some_and(|b| b & (1 << (cpu % 8)) != 0);
    if allowed(host) {
        return host as u32;
    }
    (0..mask.len() * 8).find(|&c| allowed(c)).unwrap_or(0) as u32
}

pub fn sched_getaffinity(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let [pid, len, mask, ..] = *a;
    let len = len as u32 as u64;
    let tg = target(t, pid as i32)?;
    let cpus = affinity(t, &tg);
    if !len.is_multiple_of(8) || (len as usize) < cpus.len() {
        return Err(Errno::EINVAL);
    }
    t.mm.copy_out(mask, &cpus)?;
    Ok(cpus.len() as u64)
}

/// sched_setaffinity(2). As Linux's get_user_cpu_mask: a shorter mask is padded with zeros
/// and a longer one cut to the kernel's size; CPUs the sandbox does not have are dropped
/// (as a cpuset drops them), and a mask with none left is EINVAL.
pub fn sched_setaffinity(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let [pid, len, mask, ..] = *a;
    let sandbox = &t.kernel.host.cpu_mask;
    let mut wanted = vec![0u8; sandbox.len()];
    let n = (len as u32 as usize).min(wanted.len());
    t.mm.copy_in(mask, &mut wanted[..n])?;
    let tg = target(t, pid as i32)?;
    check_same_owner(t, &tg)?;
    for (w, s) in wanted.iter_mut().zip(sandbox) {
        *w &= s;
    }
    if wanted.iter().all(|&b| b == 0) {
        return Err(Errno::EINVAL);
    }
    tg.sched().affinity = Some(wanted);
    Ok(0)
}

/// The credentials of `tg` (the caller's own are current in the task).
fn creds_of(t: &Task, tg: &Arc<ThreadGroup>) -> Option<Credentials> {
    if Arc::ptr_eq(tg, &t.tg) {
        Some(t.creds.clone())
    } else {
        tg.view().creds
    }
}

/// Linux's check_same_owner, or CAP_SYS_NICE: may the caller change `tg`'s scheduling?
fn check_same_owner(t: &Task, tg: &Arc<ThreadGroup>) -> Result<(), Errno> {
    if has_cap_sys_nice(t) {
        return Ok(());
    }
    match creds_of(t, tg) {
        Some(c) if c.uid == t.creds.euid || c.euid == t.creds.euid => Ok(()),
        _ => Err(Errno::EPERM),
    }
}

pub fn sched_yield(_t: &mut Task, _a: &[u64; 6]) -> SysResult {
    std::thread::yield_now();
    Ok(0)
}

fn is_rt(policy: u64) -> bool {
    matches!(policy, SCHED_FIFO | SCHED_RR)
}

/// sched_get_priority_max(2): 99 for the real-time policies, 0 for the others.
pub fn sched_get_priority_max(_t: &mut Task, a: &[u64; 6]) -> SysResult {
    match a[0] as i32 as i64 as u64 {
        SCHED_FIFO | SCHED_RR => Ok(MAX_RT_PRIORITY as u64),
        SCHED_NORMAL | SCHED_BATCH | SCHED_IDLE | SCHED_DEADLINE => Ok(0),
        _ => Err(Errno::EINVAL),
    }
}

/// sched_get_priority_min(2): 1 for the real-time policies, 0 for the others.
pub fn sched_get_priority_min(_t: &mut Task, a: &[u64; 6]) -> SysResult {
    match a[0] as i32 as i64 as u64 {
        SCHED_FIFO | SCHED_RR => Ok(1),
        SCHED_NORMAL | SCHED_BATCH | SCHED_IDLE | SCHED_DEADLINE => Ok(0),
        _ => Err(Errno::EINVAL),
    }
}

pub fn sched_getscheduler(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let tg = target(t, pid_arg(a[0])?)?;
    let sched = tg.sched();
    let reset = if sched.reset_on_fork {
        SCHED_RESET_ON_FORK
    } else {
        0
    };
    Ok(sched.policy | reset)
}

pub fn sched_getparam(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let [pid, param, ..] = *a;
    let pid = pid_arg(pid)?;
    if param == 0 {
        return Err(Errno::EINVAL);
    }
    let priority = target(t, pid)?.sched().priority as i32;
    t.mm.write_obj(param, &priority)?;
    Ok(0)
}

pub fn sched_setscheduler(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let policy = a[1] as i32;
    if policy < 0 {
        return Err(Errno::EINVAL);
    }
    set_scheduler(t, a[0], Some(policy as u64), a[2])
}

pub fn sched_setparam(t: &mut Task, a: &[u64; 6]) -> SysResult {
    set_scheduler(t, a[0], None, a[1])
}

/// sched_setscheduler and sched_setparam (`policy` None: keep the policy), with the checks
/// of Linux's __sched_setscheduler and user_check_sched_setscheduler.
fn set_scheduler(t: &Task, pid: u64, policy: Option<u64>, param: u64) -> SysResult {
    let pid = pid as i32;
    if param == 0 || pid < 0 {
        return Err(Errno::EINVAL);
    }
    // sched_priority is read as the unsigned field of struct sched_attr.
    let priority: i32 = t.mm.read_obj(param)?;
    let priority = priority as u32;
    let tg = target(t, pid)?;
    let old = tg.sched().clone();
    let (policy, reset_on_fork) = match policy {
        None => (old.policy, old.reset_on_fork),
        Some(p) => (p & !SCHED_RESET_ON_FORK, p & SCHED_RESET_ON_FORK != 0),
    };
    if !matches!(
        policy,
        SCHED_NORMAL | SCHED_FIFO | SCHED_RR | SCHED_BATCH | SCHED_IDLE | SCHED_DEADLINE
    ) {
        return Err(Errno::EINVAL);
    }
    // SCHED_DEADLINE needs sched_setattr's runtime and deadline, which this call lacks.
    if priority > MAX_RT_PRIORITY || policy == SCHED_DEADLINE || is_rt(policy) != (priority != 0) {
        return Err(Errno::EINVAL);
    }
    if !has_cap_sys_nice(t) {
        let rtprio = tg.rlimits()[RLIMIT_RTPRIO as usize].cur;
        let denied = (is_rt(policy)
            && ((policy != old.policy && rtprio == 0)
                || (priority > old.priority && u64::from(priority) > rtprio)))
            || (old.policy == SCHED_IDLE && policy != SCHED_IDLE && !may_lower_nice(&tg, old.nice))
            || (old.reset_on_fork && !reset_on_fork);
        if denied {
            return Err(Errno::EPERM);
        }
        check_same_owner(t, &tg)?;
    }
    let mut sched = tg.sched();
    sched.policy = policy;
    sched.priority = priority;
    sched.reset_on_fork = reset_on_fork;
    Ok(0)
}

/// Linux's is_nice_reduction without the capability: RLIMIT_NICE allows nice values down
/// to 20 - limit.
fn may_lower_nice(tg: &ThreadGroup, nice: i32) -> bool {
    let limit = tg.rlimits()[RLIMIT_NICE as usize].cur;
    (20 - nice) as u64 <= limit
}

/// The processes a getpriority/setpriority `which` and `who` select (live ones: a zombie
/// has no priority left to change).
fn prio_targets(t: &Task, which: u64, who: i32) -> Result<Vec<Arc<ThreadGroup>>, Errno> {
    let processes = &t.kernel.processes;
    Ok(match which {
        PRIO_PROCESS => target(t, who).into_iter().collect(),
        PRIO_PGRP => {
            let pgid = if who == 0 {
                processes.pgid_of(t.tg.pid)?
            } else {
                who
            };
            processes
                .live()
                .into_iter()
                .filter(|tg| processes.pgid_of(tg.pid) == Ok(pgid))
                .collect()
        }
        PRIO_USER => {
            let uid = if who == 0 { t.creds.uid } else { who as u32 };
            processes
                .live()
                .into_iter()
                .filter(|tg| creds_of(t, tg).is_some_and(|c| c.uid == uid))
                .collect()
        }
        _ => return Err(Errno::EINVAL),
    })
}

/// getpriority(2). The raw call returns 20 - nice (1..=40) of the highest priority among
/// the selected processes, so that no success looks like an error.
pub fn getpriority(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let targets = prio_targets(t, a[0] as i32 as i64 as u64, a[1] as i32)?;
    let nice = targets
        .iter()
        .map(|tg| tg.sched().nice)
        .min()
        .ok_or(Errno::ESRCH)?;
    Ok((20 - nice) as u64)
}

/// setpriority(2): the nice value (clamped to -20..=19) of every selected process. Lowering
/// it needs CAP_SYS_NICE or RLIMIT_NICE (EACCES), changing another user's process needs the
/// capability (EPERM); the last such error is returned, as Linux's set_one_prio does.
pub fn setpriority(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let nice = (a[2] as i32).clamp(MIN_NICE, MAX_NICE);
    let targets = prio_targets(t, a[0] as i32 as i64 as u64, a[1] as i32)?;
    let mut result = Err(Errno::ESRCH);
    for tg in targets {
        let outcome = if check_same_owner(t, &tg).is_err() {
            Err(Errno::EPERM)
        } else if nice < tg.sched().nice && !has_cap_sys_nice(t) && !may_lower_nice(&tg, nice) {
            Err(Errno::EACCES)
        } else {
            tg.sched().nice = nice;
            Ok(0)
        };
        // A success is kept unless a later process fails.
        result = match (result, outcome) {
            (_, Err(e)) => Err(e),
            (Err(Errno::ESRCH), ok) => ok,
            (kept, Ok(_)) => kept,
        };
    }
    result
}
