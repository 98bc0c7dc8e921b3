//! System calls: the table (`table.rs`) and one file of handlers per area.
//!
//! A handler takes the task and the six raw argument registers and returns the value for
//! `rax` or an errno. Arguments are hostile: pointers go through the memory manager, flags
//! are checked against what Linux accepts.

mod eventfd;
mod file;
mod fs;
pub(crate) mod futex;
mod ipc;
mod lifecycle;
mod mm;
mod net;
mod poll;
mod process;
mod sched;
mod signal;
mod sys;
pub(crate) mod table;
mod time;
mod tty;
mod xattr;

use std::sync::LazyLock;

use crate::abi::SysResult;
use crate::kernel::Task;
pub(crate) use lifecycle::follow_interpreters;
pub use table::TABLE;

/// A system call handler.
pub type Handler = fn(&mut Task, &[u64; 6]) -> SysResult;

/// How strace shows an argument.
#[derive(Debug, Clone, Copy)]
pub enum Arg {
    Dec,
    /// A C `int` (a pid, a signal number): the low 32 bits, signed.
    Int,
    Hex,
    Oct,
    Fd,
    /// A NUL-terminated string (a path).
    Str,
    /// A buffer the call reads, whose length is argument `n`.
    InBuf(usize),
    /// A buffer the call fills; its length is the result.
    OutBuf,
    /// A pointer to a structure.
    Ptr,
    /// One of a set of named values.
    Enum(&'static [(u64, &'static str)]),
    /// A mask of named bits.
    Flags(&'static [(u64, &'static str)]),
    Signal,
}

/// How strace shows a successful result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ret {
    Dec,
    Hex,
}

/// One row of the system call table.
#[derive(Debug)]
pub struct Syscall {
    pub nr: syscalls::Sysno,
    pub handler: Handler,
    pub args: &'static [Arg],
    pub ret: Ret,
}

/// The table entry for system call number `nr`, if the Sentry serves it.
pub fn lookup(nr: u64) -> Option<&'static Syscall> {
    static BY_NR: LazyLock<Vec<Option<&'static Syscall>>> = LazyLock::new(|| {
        let size = TABLE
            .iter()
            .map(|s| s.nr.id() as usize + 1)
            .max()
            .unwrap_or(0);
        let mut by_nr = vec![None; size];
        for entry in TABLE {
            by_nr[entry.nr.id() as usize] = Some(entry);
        }
        by_nr
    });
    BY_NR.get(usize::try_from(nr).ok()?).copied().flatten()
}

/// Where the legacy vsyscall page is (it is fixed in every x86_64 process).
const VSYSCALL_PAGE: u64 = 0xffff_ffff_ff60_0000;

/// Whether `info` is the SIGSYS the stub's seccomp filter raises when the guest calls into the
/// legacy vsyscall page (the host kernel emulates those calls without a ptrace stop).
pub fn is_vsyscall(info: &platform::SignalInfo) -> bool {
    const SYS_SECCOMP: i32 = 1;
    info.signo == libc::SIGSYS && info.code == SYS_SECCOMP && info.addr & !0xfff == VSYSCALL_PAGE
}

/// Serves a vsyscall at `addr`: gettimeofday, time or getcpu, with the usual arguments.
/// The host kernel has already emulated the `ret`; None for an address that is no entry.
pub fn vsyscall(t: &mut Task, addr: u64) -> Option<SysResult> {
    let args = [t.regs.rdi, t.regs.rsi, t.regs.rdx, 0, 0, 0];
    Some(match addr - VSYSCALL_PAGE {
        0x000 => time::gettimeofday(t, &args),
        0x400 => time::time(t, &args),
        0x800 => process::getcpu(t, &args),
        _ => return None,
    })
}

/// The name of system call `nr` (known to Linux or not).
pub fn name(nr: u64) -> String {
    usize::try_from(nr)
        .ok()
        .and_then(syscalls::Sysno::new)
        .map_or_else(|| format!("syscall_{nr:#x}"), |s| s.name().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_no_duplicates_and_lookup_finds_every_row() {
        let mut seen = std::collections::HashSet::new();
        for entry in TABLE {
            assert!(seen.insert(entry.nr), "{} listed twice", entry.nr.name());
            assert!(std::ptr::eq(lookup(entry.nr.id() as u64).unwrap(), entry));
        }
        assert!(lookup(u64::MAX).is_none());
        assert!(lookup(100_000).is_none());
        assert_eq!(name(39), "getpid");
        assert_eq!(name(100_000), "syscall_0x186a0");
    }
}
