//! Signal dispositions and masks. They are recorded exactly as Linux would keep them;
//! delivering signals to handlers arrives with the process and signal work.

use crate::abi::*;
use crate::kernel::Task;

pub fn rt_sigaction(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let [sig, act, oldact, sigsetsize, ..] = *a;
    if sigsetsize != 8 {
        return Err(Errno::EINVAL);
    }
    let sig = sig as i32;
    if !(1..=NSIG).contains(&sig) || (act != 0 && sig_bit(sig) & UNBLOCKABLE != 0) {
        return Err(Errno::EINVAL);
    }
    let new = if act != 0 {
        let mut new: SigAction = t.mm.read_obj(act)?;
        new.mask &= !UNBLOCKABLE;
        Some(new)
    } else {
        None
    };
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

pub fn rt_sigprocmask(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let [how, set, oldset, sigsetsize, ..] = *a;
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
