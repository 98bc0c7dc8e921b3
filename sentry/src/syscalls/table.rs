//! The system call table: number, handler, and how strace shows the arguments.
//! A number that is not here gets ENOSYS and one log line naming it.

use syscalls::Sysno;

use super::Arg::*;
use super::{
    eventfd, file, fs, futex, ipc, lifecycle, mm, net, poll, process, sched, signal, sys, time,
    xattr, Arg, Ret, Syscall,
};
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
    // Descriptors (file.rs).
    sys!(read, file::read, [Fd, OutBuf, Dec]),
    sys!(write, file::write, [Fd, InBuf(2), Dec]),
    sys!(pread64, file::pread64, [Fd, OutBuf, Dec, Dec]),
    sys!(pwrite64, file::pwrite64, [Fd, InBuf(2), Dec, Dec]),
    sys!(readv, file::readv, [Fd, Ptr, Dec]),
    sys!(writev, file::writev, [Fd, Ptr, Dec]),
    sys!(preadv, file::preadv, [Fd, Ptr, Dec, Dec]),
    sys!(pwritev, file::pwritev, [Fd, Ptr, Dec, Dec]),
    sys!(preadv2, file::preadv2, [Fd, Ptr, Dec, Dec, Dec, Flags(RWF)]),
    sys!(
        pwritev2,
        file::pwritev2,
        [Fd, Ptr, Dec, Dec, Dec, Flags(RWF)]
    ),
    sys!(lseek, file::lseek, [Fd, Dec, Enum(SEEK)]),
    sys!(sendfile, file::sendfile, [Fd, Fd, Ptr, Dec]),
    sys!(
        copy_file_range,
        file::copy_file_range,
        [Fd, Ptr, Fd, Ptr, Dec, Hex]
    ),
    sys!(pipe, file::pipe, [Ptr]),
    sys!(pipe2, file::pipe2, [Ptr, Flags(OPEN_FLAGS)]),
    sys!(close, file::close, [Fd]),
    sys!(close_range, file::close_range, [Dec, Dec, Hex]),
    sys!(dup, file::dup, [Fd]),
    sys!(dup2, file::dup2, [Fd, Fd]),
    sys!(dup3, file::dup3, [Fd, Fd, Flags(OPEN_FLAGS)]),
    sys!(fcntl, file::fcntl, [Fd, Enum(FCNTL), Hex]),
    sys!(ioctl, file::ioctl, [Fd, Enum(IOCTLS), Hex]),
    sys!(flock, file::flock, [Fd, Flags(LOCK_OPS)]),
    sys!(fstat, file::fstat, [Fd, Ptr]),
    sys!(ftruncate, file::ftruncate, [Fd, Dec]),
    sys!(fsync, file::fsync, [Fd]),
    sys!(fdatasync, file::fsync, [Fd]),
    sys!(sync, file::sync, []),
    sys!(syncfs, file::syncfs, [Fd]),
    sys!(fallocate, file::fallocate, [Fd, Flags(FALLOC), Dec, Dec]),
    sys!(getdents64, file::getdents64, [Fd, Ptr, Dec]),
    sys!(getdents, file::getdents_old, [Fd, Ptr, Dec]),
    sys!(fadvise64, file::fadvise64, [Fd, Dec, Dec, Enum(FADVISE)]),
    // Waiting for readiness (poll.rs).
    sys!(poll, poll::poll, [Ptr, Dec, Dec]),
    sys!(ppoll, poll::ppoll, [Ptr, Dec, Ptr, Ptr, Dec]),
    sys!(select, poll::select, [Dec, Ptr, Ptr, Ptr, Ptr]),
    sys!(pselect6, poll::pselect6, [Dec, Ptr, Ptr, Ptr, Ptr, Ptr]),
    sys!(epoll_create, poll::epoll_create, [Dec]),
    sys!(epoll_create1, poll::epoll_create1, [Flags(EPOLL_FLAGS)]),
    sys!(epoll_ctl, poll::epoll_ctl, [Fd, Enum(EPOLL_CTL), Fd, Ptr]),
    sys!(epoll_wait, poll::epoll_wait, [Fd, Ptr, Dec, Dec]),
    sys!(
        epoll_pwait,
        poll::epoll_pwait,
        [Fd, Ptr, Dec, Dec, Ptr, Dec]
    ),
    sys!(
        epoll_pwait2,
        poll::epoll_pwait2,
        [Fd, Ptr, Dec, Ptr, Ptr, Dec]
    ),
    // Event files (eventfd.rs).
    sys!(eventfd, eventfd::eventfd, [Dec]),
    sys!(eventfd2, eventfd::eventfd2, [Dec, Flags(EFD_FLAGS)]),
    sys!(
        timerfd_create,
        eventfd::timerfd_create,
        [Enum(CLOCKS), Flags(TFD_FLAGS)]
    ),
    sys!(
        timerfd_settime,
        eventfd::timerfd_settime,
        [Fd, Flags(TFD_SETTIME_FLAGS), Ptr, Ptr]
    ),
    sys!(timerfd_gettime, eventfd::timerfd_gettime, [Fd, Ptr]),
    // Paths (fs.rs).
    sys!(open, fs::open, [Str, Flags(OPEN_FLAGS), Oct]),
    sys!(openat, fs::openat, [Fd, Str, Flags(OPEN_FLAGS), Oct]),
    sys!(openat2, fs::openat2, [Fd, Str, Ptr, Dec]),
    sys!(creat, fs::creat, [Str, Oct]),
    sys!(stat, fs::stat, [Str, Ptr]),
    sys!(lstat, fs::lstat, [Str, Ptr]),
    sys!(newfstatat, fs::newfstatat, [Fd, Str, Ptr, Flags(AT_FLAGS)]),
    sys!(statx, fs::statx, [Fd, Str, Flags(AT_FLAGS), Hex, Ptr]),
    sys!(statfs, fs::statfs, [Str, Ptr]),
    sys!(fstatfs, fs::fstatfs, [Fd, Ptr]),
    sys!(readlink, fs::readlink, [Str, OutBuf, Dec]),
    sys!(readlinkat, fs::readlinkat, [Fd, Str, OutBuf, Dec]),
    sys!(mkdir, fs::mkdir, [Str, Oct]),
    sys!(mkdirat, fs::mkdirat, [Fd, Str, Oct]),
    sys!(mknod, fs::mknod, [Str, Oct, Hex]),
    sys!(mknodat, fs::mknodat, [Fd, Str, Oct, Hex]),
    sys!(symlink, fs::symlink, [Str, Str]),
    sys!(symlinkat, fs::symlinkat, [Str, Fd, Str]),
    sys!(unlink, fs::unlink, [Str]),
    sys!(unlinkat, fs::unlinkat, [Fd, Str, Hex]),
    sys!(rmdir, fs::rmdir, [Str]),
    sys!(link, fs::link, [Str, Str]),
    sys!(linkat, fs::linkat, [Fd, Str, Fd, Str, Hex]),
    sys!(rename, fs::rename, [Str, Str]),
    sys!(renameat, fs::renameat, [Fd, Str, Fd, Str]),
    sys!(renameat2, fs::renameat2, [Fd, Str, Fd, Str, Hex]),
    sys!(chdir, fs::chdir, [Str]),
    sys!(fchdir, fs::fchdir, [Fd]),
    sys!(getcwd, fs::getcwd, [OutBuf, Dec]),
    sys!(umask, fs::umask_call, [Oct]),
    sys!(access, fs::access, [Str, Oct]),
    sys!(faccessat, fs::faccessat, [Fd, Str, Oct]),
    sys!(faccessat2, fs::faccessat2, [Fd, Str, Oct, Hex]),
    sys!(truncate, fs::truncate, [Str, Dec]),
    sys!(chmod, fs::chmod, [Str, Oct]),
    sys!(fchmod, fs::fchmod, [Fd, Oct]),
    sys!(fchmodat, fs::fchmodat, [Fd, Str, Oct]),
    sys!(fchmodat2, fs::fchmodat2, [Fd, Str, Oct, Hex]),
    sys!(chown, fs::chown, [Str, Dec, Dec]),
    sys!(lchown, fs::lchown, [Str, Dec, Dec]),
    sys!(fchown, fs::fchown, [Fd, Dec, Dec]),
    sys!(fchownat, fs::fchownat, [Fd, Str, Dec, Dec, Hex]),
    sys!(utimensat, fs::utimensat, [Fd, Str, Ptr, Hex]),
    // Extended attributes (xattr.rs).
    sys!(getxattr, xattr::getxattr, [Str, Str, Ptr, Dec]),
    sys!(lgetxattr, xattr::lgetxattr, [Str, Str, Ptr, Dec]),
    sys!(fgetxattr, xattr::fgetxattr, [Fd, Str, Ptr, Dec]),
    sys!(
        setxattr,
        xattr::setxattr,
        [Str, Str, InBuf(3), Dec, Flags(XATTR_FLAGS)]
    ),
    sys!(
        lsetxattr,
        xattr::lsetxattr,
        [Str, Str, InBuf(3), Dec, Flags(XATTR_FLAGS)]
    ),
    sys!(
        fsetxattr,
        xattr::fsetxattr,
        [Fd, Str, InBuf(3), Dec, Flags(XATTR_FLAGS)]
    ),
    sys!(listxattr, xattr::listxattr, [Str, OutBuf, Dec]),
    sys!(llistxattr, xattr::llistxattr, [Str, OutBuf, Dec]),
    sys!(flistxattr, xattr::flistxattr, [Fd, OutBuf, Dec]),
    sys!(removexattr, xattr::removexattr, [Str, Str]),
    sys!(lremovexattr, xattr::lremovexattr, [Str, Str]),
    sys!(fremovexattr, xattr::fremovexattr, [Fd, Str]),
    // Sockets (net.rs).
    sys!(socket, net::socket, [Enum(AF), Flags(SOCK_TYPES), Dec]),
    sys!(
        socketpair,
        net::socketpair,
        [Enum(AF), Flags(SOCK_TYPES), Dec, Ptr]
    ),
    sys!(bind, net::bind, [Fd, Ptr, Dec]),
    sys!(listen, net::listen, [Fd, Dec]),
    sys!(accept, net::accept, [Fd, Ptr, Ptr]),
    sys!(accept4, net::accept4, [Fd, Ptr, Ptr, Flags(SOCK_TYPES)]),
    sys!(connect, net::connect, [Fd, Ptr, Dec]),
    sys!(getsockname, net::getsockname, [Fd, Ptr, Ptr]),
    sys!(getpeername, net::getpeername, [Fd, Ptr, Ptr]),
    sys!(
        sendto,
        net::sendto,
        [Fd, InBuf(2), Dec, Flags(MSG_FLAGS), Ptr, Dec]
    ),
    sys!(
        recvfrom,
        net::recvfrom,
        [Fd, OutBuf, Dec, Flags(MSG_FLAGS), Ptr, Ptr]
    ),
    sys!(sendmsg, net::sendmsg, [Fd, Ptr, Flags(MSG_FLAGS)]),
    sys!(recvmsg, net::recvmsg, [Fd, Ptr, Flags(MSG_FLAGS)]),
    sys!(shutdown, net::shutdown, [Fd, Enum(SHUT_HOW)]),
    sys!(
        setsockopt,
        net::setsockopt,
        [Fd, Enum(SOCKOPT_LEVELS), Enum(SOCKOPTS), Ptr, Dec]
    ),
    sys!(
        getsockopt,
        net::getsockopt,
        [Fd, Enum(SOCKOPT_LEVELS), Enum(SOCKOPTS), Ptr, Ptr]
    ),
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
    sys!(mremap, mm::mremap, [Hex, Dec, Dec, Hex, Hex], hex),
    sys!(madvise, mm::madvise, [Hex, Dec, Dec]),
    sys!(mincore, mm::mincore, [Hex, Dec, Ptr]),
    sys!(mlock, mm::mlock, [Hex, Dec]),
    sys!(mlock2, mm::mlock2, [Hex, Dec, Hex]),
    sys!(munlock, mm::munlock, [Hex, Dec]),
    sys!(mlockall, mm::mlockall, [Hex]),
    sys!(munlockall, mm::munlockall, []),
    sys!(msync, mm::msync, [Hex, Dec, Hex]),
    sys!(futex, futex::futex, [Ptr, Hex, Dec, Ptr, Ptr, Hex]),
    // System V IPC (ipc.rs).
    sys!(shmget, ipc::shmget, [Int, Dec, Oct]),
    sys!(shmat, ipc::shmat, [Int, Hex, Oct], hex),
    sys!(shmdt, ipc::shmdt, [Hex]),
    sys!(shmctl, ipc::shmctl, [Int, Int, Ptr]),
    sys!(semget, ipc::semget, [Int, Int, Oct]),
    sys!(semop, ipc::semop, [Int, Ptr, Dec]),
    sys!(semtimedop, ipc::semtimedop, [Int, Ptr, Dec, Ptr]),
    sys!(semctl, ipc::semctl, [Int, Int, Int, Hex]),
    // Life cycle (lifecycle.rs).
    sys!(clone, lifecycle::clone, [Hex, Hex, Ptr, Ptr, Hex]),
    sys!(clone3, lifecycle::clone3, [Ptr, Dec]),
    sys!(fork, lifecycle::fork, []),
    sys!(vfork, lifecycle::vfork, []),
    sys!(execve, lifecycle::execve, [Str, Ptr, Ptr]),
    sys!(
        execveat,
        lifecycle::execveat,
        [Fd, Str, Ptr, Ptr, Flags(AT_FLAGS)]
    ),
    sys!(exit, lifecycle::exit, [Dec]),
    sys!(exit_group, lifecycle::exit_group, [Dec]),
    sys!(wait4, lifecycle::wait4, [Int, Ptr, Hex, Ptr]),
    sys!(waitid, lifecycle::waitid, [Dec, Int, Ptr, Hex, Ptr]),
    sys!(getppid, lifecycle::getppid, []),
    sys!(getpgid, lifecycle::getpgid, [Int]),
    sys!(getpgrp, lifecycle::getpgrp, []),
    sys!(setpgid, lifecycle::setpgid, [Int, Int]),
    sys!(getsid, lifecycle::getsid, [Int]),
    sys!(setsid, lifecycle::setsid, []),
    // Processes and threads (process.rs).
    sys!(getpid, process::getpid, []),
    sys!(gettid, process::gettid, []),
    sys!(getuid, process::getuid, []),
    sys!(geteuid, process::geteuid, []),
    sys!(getgid, process::getgid, []),
    sys!(getegid, process::getegid, []),
    sys!(getresuid, process::getresuid, [Ptr, Ptr, Ptr]),
    sys!(getresgid, process::getresgid, [Ptr, Ptr, Ptr]),
    sys!(getgroups, process::getgroups, [Dec, Ptr]),
    sys!(personality, process::personality, [Hex]),
    sys!(setuid, process::setuid, [Dec]),
    sys!(setgid, process::setgid, [Dec]),
    sys!(setreuid, process::setreuid, [Int, Int]),
    sys!(setregid, process::setregid, [Int, Int]),
    sys!(setresuid, process::setresuid, [Int, Int, Int]),
    sys!(setresgid, process::setresgid, [Int, Int, Int]),
    sys!(setgroups, process::setgroups, [Dec, Ptr]),
    sys!(setfsuid, process::setfsuid, [Int]),
    sys!(setfsgid, process::setfsgid, [Int]),
    sys!(capget, process::capget, [Ptr, Ptr]),
    sys!(capset, process::capset, [Ptr, Ptr]),
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
    sys!(getrusage, process::getrusage, [Enum(RUSAGE), Ptr]),
    sys!(times, process::times, [Ptr]),
    sys!(getcpu, process::getcpu, [Ptr, Ptr, Ptr]),
    // Scheduling (sched.rs).
    sys!(sched_yield, sched::sched_yield, []),
    sys!(sched_getaffinity, sched::sched_getaffinity, [Int, Dec, Ptr]),
    sys!(sched_setaffinity, sched::sched_setaffinity, [Int, Dec, Ptr]),
    sys!(sched_getscheduler, sched::sched_getscheduler, [Int]),
    sys!(
        sched_setscheduler,
        sched::sched_setscheduler,
        [Int, Enum(SCHED_POLICIES), Ptr]
    ),
    sys!(sched_getparam, sched::sched_getparam, [Int, Ptr]),
    sys!(sched_setparam, sched::sched_setparam, [Int, Ptr]),
    sys!(
        sched_get_priority_max,
        sched::sched_get_priority_max,
        [Enum(SCHED_POLICIES)]
    ),
    sys!(
        sched_get_priority_min,
        sched::sched_get_priority_min,
        [Enum(SCHED_POLICIES)]
    ),
    sys!(getpriority, sched::getpriority, [Enum(PRIO_WHICH), Int]),
    sys!(
        setpriority,
        sched::setpriority,
        [Enum(PRIO_WHICH), Int, Int]
    ),
    // Signals (signal.rs); delivery is the task loop's.
    sys!(rt_sigaction, signal::rt_sigaction, [Signal, Ptr, Ptr, Dec]),
    sys!(rt_sigreturn, signal::rt_sigreturn, []),
    sys!(signalfd, signal::signalfd, [Fd, Ptr, Dec]),
    sys!(signalfd4, signal::signalfd4, [Fd, Ptr, Dec, Hex]),
    sys!(rt_sigpending, signal::rt_sigpending, [Ptr, Dec]),
    sys!(rt_sigsuspend, signal::rt_sigsuspend, [Ptr, Dec]),
    sys!(
        rt_sigtimedwait,
        signal::rt_sigtimedwait,
        [Ptr, Ptr, Ptr, Dec]
    ),
    sys!(rt_sigqueueinfo, signal::rt_sigqueueinfo, [Int, Signal, Ptr]),
    sys!(
        rt_tgsigqueueinfo,
        signal::rt_tgsigqueueinfo,
        [Int, Int, Signal, Ptr]
    ),
    sys!(kill, signal::kill, [Int, Signal]),
    sys!(tkill, signal::tkill, [Int, Signal]),
    sys!(tgkill, signal::tgkill, [Int, Int, Signal]),
    sys!(pause, signal::pause, []),
    sys!(alarm, signal::alarm, [Dec]),
    sys!(setitimer, signal::setitimer, [Dec, Ptr, Ptr]),
    sys!(getitimer, signal::getitimer, [Dec, Ptr]),
    sys!(timer_create, signal::timer_create, [Enum(CLOCKS), Ptr, Ptr]),
    sys!(timer_settime, signal::timer_settime, [Int, Hex, Ptr, Ptr]),
    sys!(timer_gettime, signal::timer_gettime, [Int, Ptr]),
    sys!(timer_getoverrun, signal::timer_getoverrun, [Int]),
    sys!(timer_delete, signal::timer_delete, [Int]),
    sys!(
        rt_sigprocmask,
        signal::rt_sigprocmask,
        [Enum(SIG_HOW), Ptr, Ptr, Dec]
    ),
    sys!(sigaltstack, signal::sigaltstack, [Ptr, Ptr]),
    // Time (time.rs).
    sys!(clock_gettime, time::clock_gettime, [Enum(CLOCKS), Ptr]),
    sys!(clock_getres, time::clock_getres, [Enum(CLOCKS), Ptr]),
    sys!(gettimeofday, time::gettimeofday, [Ptr, Ptr]),
    sys!(time, time::time, [Ptr]),
    sys!(nanosleep, time::nanosleep, [Ptr, Ptr]),
    sys!(restart_syscall, time::restart_syscall, []),
    sys!(
        clock_nanosleep,
        time::clock_nanosleep,
        [Enum(CLOCKS), Hex, Ptr, Ptr]
    ),
    // System information (sys.rs).
    sys!(uname, sys::uname, [Ptr]),
    sys!(sethostname, sys::sethostname, [InBuf(1), Dec]),
    sys!(setdomainname, sys::setdomainname, [InBuf(1), Dec]),
    sys!(sysinfo, sys::sysinfo, [Ptr]),
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
const OPEN_FLAGS: &[(u64, &str)] = &[
    (0o1, "O_WRONLY"),
    (0o2, "O_RDWR"),
    (0o100, "O_CREAT"),
    (0o200, "O_EXCL"),
    (0o400, "O_NOCTTY"),
    (0o1000, "O_TRUNC"),
    (0o2000, "O_APPEND"),
    (0o4000, "O_NONBLOCK"),
    (0o40000, "O_DIRECT"),
    (0o200000, "O_DIRECTORY"),
    (0o400000, "O_NOFOLLOW"),
    (0o2000000, "O_CLOEXEC"),
    (0o10000000, "O_PATH"),
];
const EPOLL_FLAGS: &[(u64, &str)] = names![EPOLL_CLOEXEC];
const EPOLL_CTL: &[(u64, &str)] = names![EPOLL_CTL_ADD, EPOLL_CTL_DEL, EPOLL_CTL_MOD];
const EFD_FLAGS: &[(u64, &str)] = names![EFD_SEMAPHORE, EFD_NONBLOCK, EFD_CLOEXEC];
const TFD_FLAGS: &[(u64, &str)] = names![TFD_NONBLOCK, TFD_CLOEXEC];
const TFD_SETTIME_FLAGS: &[(u64, &str)] = names![TFD_TIMER_ABSTIME, TFD_TIMER_CANCEL_ON_SET];
const AF: &[(u64, &str)] = names![AF_UNSPEC, AF_UNIX, AF_INET, AF_INET6, AF_NETLINK, AF_PACKET];
const SOCK_TYPES: &[(u64, &str)] = names![
    SOCK_STREAM,
    SOCK_DGRAM,
    SOCK_RAW,
    SOCK_RDM,
    SOCK_SEQPACKET,
    SOCK_NONBLOCK,
    SOCK_CLOEXEC,
];
const MSG_FLAGS: &[(u64, &str)] = names![
    MSG_OOB,
    MSG_PEEK,
    MSG_DONTROUTE,
    MSG_CTRUNC,
    MSG_TRUNC,
    MSG_DONTWAIT,
    MSG_EOR,
    MSG_WAITALL,
    MSG_NOSIGNAL,
    MSG_CMSG_CLOEXEC,
];
const SHUT_HOW: &[(u64, &str)] = names![SHUT_RD, SHUT_WR, SHUT_RDWR];
const SOCKOPT_LEVELS: &[(u64, &str)] = names![SOL_SOCKET];
const SOCKOPTS: &[(u64, &str)] = names![
    SO_DEBUG,
    SO_REUSEADDR,
    SO_TYPE,
    SO_ERROR,
    SO_DONTROUTE,
    SO_BROADCAST,
    SO_SNDBUF,
    SO_RCVBUF,
    SO_KEEPALIVE,
    SO_OOBINLINE,
    SO_LINGER,
    SO_REUSEPORT,
    SO_PASSCRED,
    SO_PEERCRED,
    SO_RCVLOWAT,
    SO_SNDLOWAT,
    SO_RCVTIMEO,
    SO_SNDTIMEO,
    SO_ACCEPTCONN,
    SO_PROTOCOL,
    SO_DOMAIN,
];
const SEEK: &[(u64, &str)] = &[(0, "SEEK_SET"), (1, "SEEK_CUR"), (2, "SEEK_END")];
const FCNTL: &[(u64, &str)] = names![
    F_DUPFD,
    F_GETFD,
    F_SETFD,
    F_GETFL,
    F_SETFL,
    F_GETLK,
    F_SETLK,
    F_SETLKW,
    F_OFD_GETLK,
    F_OFD_SETLK,
    F_OFD_SETLKW,
    F_DUPFD_CLOEXEC,
    F_SETPIPE_SZ,
    F_GETPIPE_SZ,
];
const IOCTLS: &[(u64, &str)] = names![
    TCGETS,
    TCSETS,
    TCSETSW,
    TCSETSF,
    TCSBRK,
    TCXONC,
    TCFLSH,
    TIOCEXCL,
    TIOCNXCL,
    TIOCSCTTY,
    TIOCGPGRP,
    TIOCSPGRP,
    TIOCOUTQ,
    TIOCSTI,
    TIOCGWINSZ,
    TIOCSWINSZ,
    FIONREAD,
    TIOCNOTTY,
    TIOCSETD,
    TIOCGETD,
    TCSBRKP,
    TIOCGSID,
    TCGETS2,
    TCSETS2,
    TCSETSW2,
    TCSETSF2,
    TIOCGPTN,
    TIOCSPTLCK,
    TIOCGPTLCK,
    TIOCGEXCL,
    TIOCGPTPEER,
    FIONBIO,
    FIONCLEX,
    FIOCLEX,
    SIOCOUTQ
];
const LOCK_OPS: &[(u64, &str)] = names![LOCK_SH, LOCK_EX, LOCK_NB, LOCK_UN, LOCK_MAND];
const RWF: &[(u64, &str)] = names![
    RWF_HIPRI,
    RWF_DSYNC,
    RWF_SYNC,
    RWF_NOWAIT,
    RWF_APPEND,
    RWF_NOAPPEND,
    RWF_ATOMIC,
    RWF_DONTCACHE,
    RWF_NOSIGNAL,
];
const FALLOC: &[(u64, &str)] = names![
    FALLOC_FL_KEEP_SIZE,
    FALLOC_FL_PUNCH_HOLE,
    FALLOC_FL_COLLAPSE_RANGE,
    FALLOC_FL_ZERO_RANGE,
    FALLOC_FL_INSERT_RANGE,
    FALLOC_FL_UNSHARE_RANGE,
    FALLOC_FL_WRITE_ZEROES,
];
const ARCH_PRCTL: &[(u64, &str)] = names![
    ARCH_SET_GS,
    ARCH_SET_FS,
    ARCH_GET_FS,
    ARCH_GET_GS,
    ARCH_GET_CPUID,
    ARCH_SET_CPUID,
];
const PRCTL: &[(u64, &str)] = names![
    PR_SET_PDEATHSIG,
    PR_GET_PDEATHSIG,
    PR_GET_DUMPABLE,
    PR_SET_DUMPABLE,
    PR_SET_NAME,
    PR_GET_NAME,
    PR_SET_NO_NEW_PRIVS,
    PR_GET_NO_NEW_PRIVS,
    PR_GET_KEEPCAPS,
    PR_SET_KEEPCAPS,
    PR_CAPBSET_READ,
    PR_CAPBSET_DROP,
    PR_GET_SECUREBITS,
    PR_SET_SECUREBITS,
    PR_CAP_AMBIENT,
];
const FADVISE: &[(u64, &str)] = names![
    POSIX_FADV_NORMAL,
    POSIX_FADV_RANDOM,
    POSIX_FADV_SEQUENTIAL,
    POSIX_FADV_WILLNEED,
    POSIX_FADV_DONTNEED,
    POSIX_FADV_NOREUSE,
];
const XATTR_FLAGS: &[(u64, &str)] = names![XATTR_CREATE, XATTR_REPLACE];
const RUSAGE: &[(u64, &str)] = names![RUSAGE_SELF, RUSAGE_CHILDREN, RUSAGE_THREAD];
const PRIO_WHICH: &[(u64, &str)] = names![PRIO_PROCESS, PRIO_PGRP, PRIO_USER];
const SCHED_POLICIES: &[(u64, &str)] = names![
    SCHED_NORMAL,
    SCHED_FIFO,
    SCHED_RR,
    SCHED_BATCH,
    SCHED_IDLE,
    SCHED_DEADLINE,
];
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
