//! Signal frames: how a handler is entered and how rt_sigreturn leaves it, laid out exactly
//! as Linux's x86_64 `struct rt_sigframe` (arch/x86/kernel/signal_64.c): the return
//! address (sa_restorer), a ucontext with the interrupted registers, the mask and the
//! alternate stack, the siginfo, and the XSAVE area 64-byte aligned above it.

use std::sync::atomic::{AtomicUsize, Ordering};

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::signals::{SigInfo, SA_ONSTACK, SA_RESTORER};
use super::{SignalStack, Task};
use crate::abi::*;

/// `struct sigcontext` (64-bit), the registers of the interrupted code.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
struct SigContext {
    r8: u64,
    r9: u64,
    r10: u64,
    r11: u64,
    r12: u64,
    r13: u64,
    r14: u64,
    r15: u64,
    rdi: u64,
    rsi: u64,
    rbp: u64,
    rbx: u64,
    rdx: u64,
    rax: u64,
    rcx: u64,
    rsp: u64,
    rip: u64,
    eflags: u64,
    cs: u16,
    gs: u16,
    fs: u16,
    ss: u16,
    err: u64,
    trapno: u64,
    oldmask: u64,
    cr2: u64,
    fpstate: u64,
    reserved: [u64; 8],
}

/// The kernel's `struct ucontext`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
struct UContext {
    flags: u64,
    link: u64,
    stack: StackT,
    mcontext: SigContext,
    sigmask: u64,
}

/// `struct rt_sigframe`: what sits at the handler's stack pointer.
#[repr(C)]
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
struct RtSigFrame {
    pretcode: u64,
    uc: UContext,
    info: SigInfo,
}

const UC_FP_XSTATE: u64 = 1;
const UC_SIGCONTEXT_SS: u64 = 2;
const UC_STRICT_RESTORE_SS: u64 = 4;
/// `sw_reserved` magic of an XSAVE area in a frame, and the word after the area.
const FP_XSTATE_MAGIC1: u32 = 0x4650_5853;
const FP_XSTATE_MAGIC2: u32 = 0x4650_5845;
const SW_RESERVED: usize = 464;
/// Flags a handler may change in the interrupted code (Linux's FIX_EFLAGS).
const FIX_EFLAGS: u64 = 0x40000 | 0x800 | 0x400 | 0x100 | 0x80 | 0x40 | 0x10 | 0x4 | 0x1 | 0x10000;
const EFLAGS_TF: u64 = 0x100;
const EFLAGS_DF: u64 = 0x400;
const EFLAGS_RF: u64 = 0x10000;
/// The page-fault vector, reported in sigcontext.trapno for SIGSEGV and SIGBUS.
const X86_TRAP_PF: u64 = 14;

/// The x86 exception vector behind a signal the CPU raised, as sigcontext.trapno shows it.
fn trap_number(info: &SigInfo) -> u64 {
    const SI_KERNEL: i32 = 0x80;
    const TRAP_TRACE: i32 = 2;
    match (info.signo, info.code) {
        // A general-protection fault (SI_KERNEL), or a page fault.
        (7 | 11, SI_KERNEL) => 13,
        (7 | 11, code) if code > 0 => X86_TRAP_PF,
        // A single step, or int3 (SI_KERNEL or TRAP_BRKPT).
        (5, TRAP_TRACE) => 1,
        (5, code) if code > 0 => 3,
        // Integer divide error; x87 and SIMD errors are vectors 16 and 19.
        (8, 1 | 2) => 0,
        (8, code) if code > 0 => 19,
        (4, code) if code > 0 => 6,
        _ => 0,
    }
}

/// The size of the guest's XSAVE area, learned from the first signal.
static XSTATE_SIZE: AtomicUsize = AtomicUsize::new(0);

/// The initial FP state as Linux gives a handler (fpu__clear_user_states): x87 control
/// word 0x37f, MXCSR 0x1f80, everything else in its init state.
fn init_fp_state(current: &[u8]) -> Vec<u8> {
    let mut state = vec![0u8; current.len()];
    if state.len() >= 576 {
        state[0..2].copy_from_slice(&0x37fu16.to_le_bytes());
        state[24..28].copy_from_slice(&0x1f80u32.to_le_bytes());
        // MXCSR_MASK and sw_reserved stay as the host reported them.
        state[28..32].copy_from_slice(&current[28..32]);
        state[SW_RESERVED..512].copy_from_slice(&current[SW_RESERVED..512]);
        // XSTATE_BV: x87 and SSE from this buffer, every other component init.
        state[512..520].copy_from_slice(&3u64.to_le_bytes());
    }
    state
}

impl Task {
    /// Enters the handler of `info.signo` as Linux's setup_rt_frame does. `old_mask` is the
    /// mask the handler's return restores. Err if the frame cannot be written (the caller
    /// then forces SIGSEGV).
    pub(super) fn setup_frame(
        &mut self,
        info: &SigInfo,
        action: &SigAction,
        old_mask: SigSet,
    ) -> Result<(), Errno> {
        if action.flags & SA_RESTORER == 0 {
            // x86_64 has no default return path: Linux fails the frame.
            return Err(Errno::EFAULT);
        }
        let regs = self.regs;
        let alt = self.sigaltstack;
        let on_alt = alt.contains(regs.rsp);
        // Below the red zone, or on top of the alternate stack.
        let mut sp = regs.rsp.wrapping_sub(128);
        if action.flags & SA_ONSTACK != 0 && alt.size != 0 && !on_alt {
            sp = alt.sp.wrapping_add(alt.size);
        }
        let fp = self.context.fp_state().map_err(|e| {
            log::warn!("signal delivery: {e}");
            Errno::EFAULT
        })?;
        XSTATE_SIZE.store(fp.len(), Ordering::Relaxed);
        let fp_at = (sp.wrapping_sub(fp.len() as u64 + 4)) & !63;
        let frame_at =
            ((fp_at.wrapping_sub(std::mem::size_of::<RtSigFrame>() as u64)) & !15).wrapping_sub(8);
        if on_alt && !alt.contains(frame_at) {
            // The alternate stack would overflow.
            return Err(Errno::EFAULT);
        }
        let xstate = fp.len() >= 512
            && u32::from_le_bytes([
                fp[SW_RESERVED],
                fp[SW_RESERVED + 1],
                fp[SW_RESERVED + 2],
                fp[SW_RESERVED + 3],
            ]) == FP_XSTATE_MAGIC1;
        let stack_flags = if alt.size == 0 {
            SS_DISABLE
        } else if on_alt {
            SS_ONSTACK
        } else {
            0
        } | (alt.flags as u64 & SS_AUTODISARM);
        let fault = matches!(info.signo, 7 | 11) && info.code > 0;
        let trapno = trap_number(info);
        let frame = RtSigFrame {
            pretcode: action.restorer,
            uc: UContext {
                flags: UC_SIGCONTEXT_SS
                    | UC_STRICT_RESTORE_SS
                    | if xstate { UC_FP_XSTATE } else { 0 },
                link: 0,
                stack: StackT {
                    sp: alt.sp,
                    flags: stack_flags as u32 as i32,
                    pad: 0,
                    size: alt.size,
                },
                mcontext: SigContext {
                    r8: regs.r8,
                    r9: regs.r9,
                    r10: regs.r10,
                    r11: regs.r11,
                    r12: regs.r12,
                    r13: regs.r13,
                    r14: regs.r14,
                    r15: regs.r15,
                    rdi: regs.rdi,
                    rsi: regs.rsi,
                    rbp: regs.rbp,
                    rbx: regs.rbx,
                    rdx: regs.rdx,
                    rax: regs.rax,
                    rcx: regs.rcx,
                    rsp: regs.rsp,
                    rip: regs.rip,
                    eflags: regs.eflags,
                    cs: regs.cs as u16,
                    gs: 0,
                    fs: 0,
                    ss: regs.ss as u16,
                    // A user-mode page fault; bit 0 when the page was there (a protection
                    // fault).
                    err: if fault {
                        4 | u64::from(info.code == 2)
                    } else {
                        0
                    },
                    trapno,
                    oldmask: old_mask,
                    cr2: if fault { info.addr() } else { 0 },
                    fpstate: fp_at,
                    reserved: [0; 8],
                },
                sigmask: old_mask,
            },
            info: *info,
        };
        self.mm.copy_out(fp_at, &fp)?;
        self.mm
            .write_obj(fp_at + fp.len() as u64, &FP_XSTATE_MAGIC2)?;
        self.mm.write_obj(frame_at, &frame)?;
        if alt.flags & SS_AUTODISARM as u32 != 0 {
            self.sigaltstack = SignalStack::default();
        }
        let _ = self.context.set_fp_state(&init_fp_state(&fp));
        let info_at = frame_at + std::mem::offset_of!(RtSigFrame, info) as u64;
        let uc_at = frame_at + std::mem::offset_of!(RtSigFrame, uc) as u64;
        // Linux passes all three whether or not SA_SIGINFO was asked for.
        self.regs.rdi = info.signo as u64;
        self.regs.rsi = info_at;
        self.regs.rdx = uc_at;
        self.regs.rax = 0;
        self.regs.rip = action.handler;
        self.regs.rsp = frame_at;
        self.regs.eflags &= !(EFLAGS_DF | EFLAGS_RF | EFLAGS_TF);
        self.regs.cs = USER_CS;
        self.regs.ss = USER_DS;
        self.regs.orig_rax = u64::MAX;
        Ok(())
    }

    /// rt_sigreturn: back to the code the handler interrupted, with the registers, mask,
    /// alternate stack and FP state of the frame (Linux's restore_sigcontext). A bad frame
    /// is SIGSEGV. Returns the restored rax, so the call's "result" leaves it as it was.
    pub fn sigreturn(&mut self) -> SysResult {
        let frame_at = self.regs.rsp.wrapping_sub(8);
        match self.restore_frame(frame_at) {
            Ok(()) => Ok(self.regs.rax),
            Err(_) => {
                self.force_sigsegv();
                Ok(self.regs.rax)
            }
        }
    }

    fn restore_frame(&mut self, frame_at: u64) -> Result<(), Errno> {
        let frame: RtSigFrame = self.mm.read_obj(frame_at)?;
        let sc = frame.uc.mcontext;
        let size = XSTATE_SIZE.load(Ordering::Relaxed);
        if sc.fpstate != 0 && size != 0 {
            let mut fp = vec![0u8; size];
            self.mm.copy_in(sc.fpstate, &mut fp)?;
            self.context.set_fp_state(&fp).map_err(|_| Errno::EFAULT)?;
        } else if size != 0 {
            if let Ok(current) = self.context.fp_state() {
                let _ = self.context.set_fp_state(&init_fp_state(&current));
            }
        }
        let r = &mut self.regs;
        r.r8 = sc.r8;
        r.r9 = sc.r9;
        r.r10 = sc.r10;
        r.r11 = sc.r11;
        r.r12 = sc.r12;
        r.r13 = sc.r13;
        r.r14 = sc.r14;
        r.r15 = sc.r15;
        r.rdi = sc.rdi;
        r.rsi = sc.rsi;
        r.rbp = sc.rbp;
        r.rbx = sc.rbx;
        r.rdx = sc.rdx;
        r.rax = sc.rax;
        r.rcx = sc.rcx;
        r.rsp = sc.rsp;
        r.rip = sc.rip;
        r.eflags = (r.eflags & !FIX_EFLAGS) | (sc.eflags & FIX_EFLAGS);
        r.cs = USER_CS;
        r.ss = USER_DS;
        // No system call restarts across a sigreturn.
        r.orig_rax = u64::MAX;
        self.set_signal_mask(frame.uc.sigmask);
        // restore_altstack: as sigaltstack(2) would, errors ignored.
        let stack = frame.uc.stack;
        let mode = stack.flags as u32 as u64 & !SS_AUTODISARM;
        if !self.sigaltstack.contains(self.regs.rsp) {
            self.sigaltstack = if mode == SS_DISABLE {
                SignalStack::default()
            } else if stack.size >= 2048 {
                SignalStack {
                    sp: stack.sp,
                    size: stack.size,
                    flags: stack.flags as u32 & SS_AUTODISARM as u32,
                }
            } else {
                self.sigaltstack
            };
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_structures_have_linux_sizes() {
        assert_eq!(std::mem::size_of::<SigContext>(), 256);
        assert_eq!(std::mem::size_of::<UContext>(), 304);
        assert_eq!(std::mem::size_of::<RtSigFrame>(), 440);
        assert_eq!(std::mem::offset_of!(RtSigFrame, info), 312);
    }
}
