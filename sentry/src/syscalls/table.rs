//! The system call table: number, handler, and how strace shows the arguments.
//! A number that is not here gets ENOSYS and one log line naming it.

use syscalls::Sysno;

use super::Arg::*;
use super::{fs, mm, process, signal, sys, time, Arg, Ret, Syscall};
use crate::abi::*;

macro_rules! sys {
    ($name:ident, $handler:path, [$($arg:expr),*]) => {
        Syscall { nr: Sysno::$name, handler: $handler, args: &[$($arg),*], ret: Ret::Dec }
    };
    ($name:ident, $handler:path, [$($arg:expr),*], hex) => {
        Syscall { nr: Sysno::$name, handler: $handler, args: &[$($arg),*], ret: Ret::Hex }
    };
}

pub static TABLE: &[Syscall] = &[
    // Files (fs.rs). Until the VFS lands, descriptors 0-2 are the only files.
    sys!(read, fs::read, [Fd, OutBuf, Dec]),
    sys!(write, fs::write, [Fd, InBuf(2), Dec]),
    sys!(readv, fs::readv, [Fd, Ptr, Dec]),
    sys!(writev, fs::writev, [Fd, Ptr, Dec]),
    sys!(close, fs::close, [Fd]),
    sys!(ioctl, fs::ioctl, [Fd, Enum(IOCTLS), Hex]),
    sys!(fstat, fs::fstat, [Fd, Ptr]),
    sys!(newfstatat, fs::newfstatat, [Fd, Str, Ptr, Flags(AT_FLAGS)]),
    sys!(readlink, fs::readlink, [Str, OutBuf, Dec]),
    sys!(readlinkat, fs::readlinkat, [Fd, Str, OutBuf, Dec]),
    // Memory (mm.rs).
    sys!(brk, mm::brk, [Hex], hex),
    sys!(
        mmap,
        mm::mmap,
        [Hex, Dec, Flags(PROT), Flags(MAP), Fd, Hex],
        hex
    ),
    sys!(munmap, mm::munmap, [Hex, Dec]),
    sys!(mprotect, mm::mprotect, [Hex, Dec, Flags(PROT)]),
    // Processes and threads (process.rs).
    sys!(exit, process::exit, [Dec]),
    sys!(exit_group, process::exit_group, [Dec]),
    sys!(getpid, process::getpid, []),
    sys!(gettid, process::gettid, []),
    sys!(getppid, process::getppid, []),
    sys!(getuid, process::getuid, []),
    sys!(geteuid, process::geteuid, []),
    sys!(getgid, process::getgid, []),
    sys!(getegid, process::getegid, []),
    sys!(getresuid, process::getresuid, [Ptr, Ptr, Ptr]),
    sys!(getresgid, process::getresgid, [Ptr, Ptr, Ptr]),
    sys!(getgroups, process::getgroups, [Dec, Ptr]),
    sys!(set_tid_address, process::set_tid_address, [Hex]),
    sys!(set_robust_list, process::set_robust_list, [Hex, Dec]),
    sys!(rseq, process::rseq, [Hex, Dec, Hex, Hex]),
    sys!(arch_prctl, process::arch_prctl, [Enum(ARCH_PRCTL), Hex]),
    sys!(prctl, process::prctl, [Enum(PRCTL), Hex, Hex, Hex, Hex]),
    sys!(
        prlimit64,
        process::prlimit64,
        [Dec, Enum(RLIMITS), Ptr, Ptr]
    ),
    sys!(getrlimit, process::getrlimit, [Enum(RLIMITS), Ptr]),
    sys!(setrlimit, process::setrlimit, [Enum(RLIMITS), Ptr]),
    sys!(
        sched_getaffinity,
        process::sched_getaffinity,
        [Dec, Dec, Ptr]
    ),
    sys!(getcpu, process::getcpu, [Ptr, Ptr, Ptr]),
    // Signals (signal.rs): dispositions and masks are recorded; delivery comes later.
    sys!(rt_sigaction, signal::rt_sigaction, [Signal, Ptr, Ptr, Dec]),
    sys!(
        rt_sigprocmask,
        signal::rt_sigprocmask,
        [Enum(SIG_HOW), Ptr, Ptr, Dec]
    ),
    // Time (time.rs).
    sys!(clock_gettime, time::clock_gettime, [Enum(CLOCKS), Ptr]),
    sys!(clock_getres, time::clock_getres, [Enum(CLOCKS), Ptr]),
    sys!(gettimeofday, time::gettimeofday, [Ptr, Ptr]),
    sys!(time, time::time, [Ptr]),
    sys!(nanosleep, time::nanosleep, [Ptr, Ptr]),
    sys!(
        clock_nanosleep,
        time::clock_nanosleep,
        [Enum(CLOCKS), Hex, Ptr, Ptr]
    ),
    // System information (sys.rs).
    sys!(uname, sys::uname, [Ptr]),
    sys!(getrandom, sys::getrandom, [Ptr, Dec, Flags(GRND)]),
];

/// `[(VALUE, "VALUE"), …]` from constants of the ABI module.
macro_rules! names {
    ($($name:ident),* $(,)?) => { &[$(($name as u64, stringify!($name))),*] };
}

const PROT: &[(u64, &str)] = names![PROT_READ, PROT_WRITE, PROT_EXEC];
const MAP: &[(u64, &str)] = names![
    MAP_SHARED,
    MAP_PRIVATE,
    MAP_DROPPABLE,
    MAP_FIXED,
    MAP_ANONYMOUS,
    MAP_32BIT,
    MAP_GROWSDOWN,
    MAP_NORESERVE,
    MAP_POPULATE,
    MAP_STACK,
    MAP_FIXED_NOREPLACE,
];
const AT_FLAGS: &[(u64, &str)] = names![AT_SYMLINK_NOFOLLOW, AT_NO_AUTOMOUNT, AT_EMPTY_PATH];
const GRND: &[(u64, &str)] = names![GRND_NONBLOCK, GRND_RANDOM, GRND_INSECURE];
const IOCTLS: &[(u64, &str)] = names![TCGETS, TIOCGWINSZ, FIONCLEX, FIOCLEX];
const ARCH_PRCTL: &[(u64, &str)] = names![
    ARCH_SET_GS,
    ARCH_SET_FS,
    ARCH_GET_FS,
    ARCH_GET_GS,
    ARCH_GET_CPUID,
    ARCH_SET_CPUID,
];
const PRCTL: &[(u64, &str)] = names![PR_SET_NAME, PR_GET_NAME];
const SIG_HOW: &[(u64, &str)] = names![SIG_BLOCK, SIG_UNBLOCK, SIG_SETMASK];
const CLOCKS: &[(u64, &str)] = names![
    CLOCK_REALTIME,
    CLOCK_MONOTONIC,
    CLOCK_PROCESS_CPUTIME_ID,
    CLOCK_THREAD_CPUTIME_ID,
    CLOCK_MONOTONIC_RAW,
    CLOCK_REALTIME_COARSE,
    CLOCK_MONOTONIC_COARSE,
    CLOCK_BOOTTIME,
    CLOCK_REALTIME_ALARM,
    CLOCK_BOOTTIME_ALARM,
    CLOCK_TAI,
];
const RLIMITS: &[(u64, &str)] = names![
    RLIMIT_CPU,
    RLIMIT_FSIZE,
    RLIMIT_DATA,
    RLIMIT_STACK,
    RLIMIT_CORE,
    RLIMIT_RSS,
    RLIMIT_NPROC,
    RLIMIT_NOFILE,
    RLIMIT_MEMLOCK,
    RLIMIT_AS,
    RLIMIT_LOCKS,
    RLIMIT_SIGPENDING,
    RLIMIT_MSGQUEUE,
    RLIMIT_NICE,
    RLIMIT_RTPRIO,
    RLIMIT_RTTIME,
];

/// Used by strace to show unnamed arguments of calls that are not in the table.
pub const UNKNOWN_ARGS: &[Arg] = &[Hex, Hex, Hex, Hex, Hex, Hex];
