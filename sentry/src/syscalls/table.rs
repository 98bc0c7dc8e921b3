//! The system call table: number, handler, and how strace shows the arguments.
//! A number that is not here gets ENOSYS and one log line naming it.

use syscalls::Sysno;

use super::Arg::*;
use super::{fs, mm, process, signal, sys, time, Arg, Ret, Syscall};

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

const PROT: &[(u64, &str)] = &[(1, "PROT_READ"), (2, "PROT_WRITE"), (4, "PROT_EXEC")];

const MAP: &[(u64, &str)] = &[
    (0x01, "MAP_SHARED"),
    (0x02, "MAP_PRIVATE"),
    (0x10, "MAP_FIXED"),
    (0x20, "MAP_ANONYMOUS"),
    (0x40, "MAP_32BIT"),
    (0x100, "MAP_GROWSDOWN"),
    (0x4000, "MAP_NORESERVE"),
    (0x8000, "MAP_POPULATE"),
    (0x20000, "MAP_STACK"),
    (0x100000, "MAP_FIXED_NOREPLACE"),
];

const AT_FLAGS: &[(u64, &str)] = &[
    (0x100, "AT_SYMLINK_NOFOLLOW"),
    (0x800, "AT_NO_AUTOMOUNT"),
    (0x1000, "AT_EMPTY_PATH"),
];

const GRND: &[(u64, &str)] = &[
    (1, "GRND_NONBLOCK"),
    (2, "GRND_RANDOM"),
    (4, "GRND_INSECURE"),
];

const IOCTLS: &[(u64, &str)] = &[
    (0x5401, "TCGETS"),
    (0x5413, "TIOCGWINSZ"),
    (0x5450, "FIONCLEX"),
    (0x5451, "FIOCLEX"),
];

const ARCH_PRCTL: &[(u64, &str)] = &[
    (0x1001, "ARCH_SET_GS"),
    (0x1002, "ARCH_SET_FS"),
    (0x1003, "ARCH_GET_FS"),
    (0x1004, "ARCH_GET_GS"),
    (0x1011, "ARCH_GET_CPUID"),
    (0x1012, "ARCH_SET_CPUID"),
];

const PRCTL: &[(u64, &str)] = &[(15, "PR_SET_NAME"), (16, "PR_GET_NAME")];

const SIG_HOW: &[(u64, &str)] = &[(0, "SIG_BLOCK"), (1, "SIG_UNBLOCK"), (2, "SIG_SETMASK")];

const CLOCKS: &[(u64, &str)] = &[
    (0, "CLOCK_REALTIME"),
    (1, "CLOCK_MONOTONIC"),
    (2, "CLOCK_PROCESS_CPUTIME_ID"),
    (3, "CLOCK_THREAD_CPUTIME_ID"),
    (4, "CLOCK_MONOTONIC_RAW"),
    (5, "CLOCK_REALTIME_COARSE"),
    (6, "CLOCK_MONOTONIC_COARSE"),
    (7, "CLOCK_BOOTTIME"),
    (8, "CLOCK_REALTIME_ALARM"),
    (9, "CLOCK_BOOTTIME_ALARM"),
    (11, "CLOCK_TAI"),
];

const RLIMITS: &[(u64, &str)] = &[
    (0, "RLIMIT_CPU"),
    (1, "RLIMIT_FSIZE"),
    (2, "RLIMIT_DATA"),
    (3, "RLIMIT_STACK"),
    (4, "RLIMIT_CORE"),
    (5, "RLIMIT_RSS"),
    (6, "RLIMIT_NPROC"),
    (7, "RLIMIT_NOFILE"),
    (8, "RLIMIT_MEMLOCK"),
    (9, "RLIMIT_AS"),
    (10, "RLIMIT_LOCKS"),
    (11, "RLIMIT_SIGPENDING"),
    (12, "RLIMIT_MSGQUEUE"),
    (13, "RLIMIT_NICE"),
    (14, "RLIMIT_RTPRIO"),
    (15, "RLIMIT_RTTIME"),
];

/// Used by strace to show unnamed arguments of calls that are not in the table.
pub const UNKNOWN_ARGS: &[Arg] = &[Hex, Hex, Hex, Hex, Hex, Hex];
