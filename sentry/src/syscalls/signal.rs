//! Signal dispositions and masks. They are recorded exactly as Linux would keep them;
//! delivering signals to handlers arrives with the process and signal work.

use crate::abi::*;
use crate::kernel::Task;

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
