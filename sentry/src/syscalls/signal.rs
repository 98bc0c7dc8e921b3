//! Signal dispositions, masks and the alternate signal stack. They are recorded exactly as
//! Linux would keep them; delivering signals to handlers arrives with the process and
//! signal work.

use crate::abi::*;
use crate::kernel::{SignalStack, Task};

pub fn rt_sigaction(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let [sig, act, oldact, sigsetsize, ..] = *a;
    if sigsetsize != 8 {
        return Err(Errno::EINVAL);
    }
    // Linux reads the new action before it looks at the signal number.
    let new = if act != 0 {
        let mut new: SigAction = t.mm.read_obj(act)?;
        new.mask &= !UNBLOCKABLE;
        // Bits Linux does not know are dropped (since 5.11), so programs can probe for them.
        new.flags &= SA_KNOWN;
        Some(new)
    } else {
        None
    };
    let sig = sig as i32;
    if !(1..=NSIG).contains(&sig) || (new.is_some() && sig_bit(sig) & UNBLOCKABLE != 0) {
        return Err(Errno::EINVAL);
    }
    let old = {
        let mut actions = t.tg.actions();
        let slot = &mut actions[(sig - 1) as usize];
        let old = *slot;
        if let Some(new) = new {
            *slot = new;
        }
        old
    };
    if oldact != 0 {
        t.mm.write_obj(oldact, &old)?;
    }
    Ok(0)
}

/// The sa_flags bits x86_64 Linux keeps (UAPI_SA_FLAGS): NOCLDSTOP, NOCLDWAIT, SIGINFO,
/// EXPOSE_TAGBITS, RESTORER, ONSTACK, RESTART, NODEFER, RESETHAND.
const SA_KNOWN: u64 =
    0x1 | 0x2 | 0x4 | 0x800 | 0x0400_0000 | 0x0800_0000 | 0x1000_0000 | 0x4000_0000 | 0x8000_0000;

pub fn rt_sigprocmask(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let [how, set, oldset, sigsetsize, ..] = *a;
    let how = how as u32 as u64;
    if sigsetsize != 8 {
        return Err(Errno::EINVAL);
    }
    let old = t.signal_mask;
    if set != 0 {
        let set: SigSet = t.mm.read_obj(set)?;
        let mask = match how {
            SIG_BLOCK => old | set,
            SIG_UNBLOCK => old & !set,
            SIG_SETMASK => set,
            _ => return Err(Errno::EINVAL),
        };
        t.signal_mask = mask & !UNBLOCKABLE;
    }
    if oldset != 0 {
        t.mm.write_obj(oldset, &old)?;
    }
    Ok(0)
}

/// The least size of an alternate signal stack (MINSIGSTKSZ on x86_64).
const MINSIGSTKSZ: u64 = 2048;

/// sigaltstack(2), as Linux's do_sigaltstack: the old stack is reported (SS_ONSTACK while
/// the caller runs on it, SS_DISABLE when there is none); a new one cannot be set while on
/// the current one (EPERM), must be at least MINSIGSTKSZ (ENOMEM), and its mode is 0,
/// SS_ONSTACK or SS_DISABLE, with SS_AUTODISARM beside it.
pub fn sigaltstack(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let [new, old_addr, ..] = *a;
    let new: Option<StackT> = if new != 0 {
        Some(t.mm.read_obj(new)?)
    } else {
        None
    };
    let sp = t.regs.rsp;
    let cur = t.sigaltstack;
    let state = if cur.size == 0 {
        SS_DISABLE
    } else if cur.contains(sp) {
        SS_ONSTACK
    } else {
        0
    };
    let old = StackT {
        sp: cur.sp,
        flags: (state | (cur.flags as u64 & SS_AUTODISARM)) as u32 as i32,
        pad: 0,
        size: cur.size,
    };
    if let Some(new) = new {
        if cur.contains(sp) {
            return Err(Errno::EPERM);
        }
        let flags = new.flags as u32;
        let mode = flags as u64 & !SS_AUTODISARM;
        if mode != 0 && mode != SS_ONSTACK && mode != SS_DISABLE {
            return Err(Errno::EINVAL);
        }
        let unchanged = new.sp == cur.sp && new.size == cur.size && flags == cur.flags;
        t.sigaltstack = if unchanged {
            cur
        } else if mode == SS_DISABLE {
            SignalStack {
                sp: 0,
                size: 0,
                flags,
            }
        } else {
            if new.size < MINSIGSTKSZ {
                return Err(Errno::ENOMEM);
            }
            SignalStack {
                sp: new.sp,
                size: new.size,
                flags,
            }
        };
    }
    if old_addr != 0 {
        t.mm.write_obj(old_addr, &old)?;
    }
    Ok(0)
}
