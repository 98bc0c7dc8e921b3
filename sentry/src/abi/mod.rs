//! The Linux x86_64 ABI as the guest sees it: errno values, constants and the layouts of the
//! structures that cross the user/kernel boundary.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// A Linux errno value (the guest's and the host's are the same on x86_64).
pub use nix::errno::Errno;

/// What a system call handler returns: the value for `rax`, or an errno.
pub type SysResult = Result<u64, Errno>;

pub const PAGE_SIZE: u64 = 4096;

/// Rounds `x` down to a page boundary.
pub fn page_down(x: u64) -> u64 {
    x & !(PAGE_SIZE - 1)
}

/// Rounds `x` up to a page boundary, or `None` if that overflows.
pub fn page_up(x: u64) -> Option<u64> {
    x.checked_add(PAGE_SIZE - 1).map(page_down)
}

/// `struct timespec`.
#[repr(C)]
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Timespec {
    pub tv_sec: i64,
    pub tv_nsec: i64,
}

impl Timespec {
    /// The duration it stands for, or EINVAL if it is not a valid non-negative timespec.
    pub fn to_duration(self) -> Result<std::time::Duration, Errno> {
        if self.tv_sec < 0 || !(0..1_000_000_000).contains(&self.tv_nsec) {
            return Err(Errno::EINVAL);
        }
        Ok(std::time::Duration::new(
            self.tv_sec as u64,
            self.tv_nsec as u32,
        ))
    }

    pub fn from_duration(d: std::time::Duration) -> Timespec {
        Timespec {
            tv_sec: d.as_secs() as i64,
            tv_nsec: d.subsec_nanos() as i64,
        }
    }
}

/// `struct timeval`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct Timeval {
    pub tv_sec: i64,
    pub tv_usec: i64,
}

/// `struct timezone`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct Timezone {
    pub tz_minuteswest: i32,
    pub tz_dsttime: i32,
}

/// `struct iovec`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct Iovec {
    pub base: u64,
    pub len: u64,
}

/// `struct new_utsname`.
#[repr(C)]
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct Utsname {
    pub sysname: [u8; 65],
    pub nodename: [u8; 65],
    pub release: [u8; 65],
    pub version: [u8; 65],
    pub machine: [u8; 65],
    pub domainname: [u8; 65],
}

/// `struct rlimit64`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct Rlimit {
    pub cur: u64,
    pub max: u64,
}

pub const RLIM_INFINITY: u64 = u64::MAX;
/// Number of resource limits (RLIM_NLIMITS).
pub const RLIM_NLIMITS: usize = 16;
pub const RLIMIT_STACK: u64 = 3;
pub const RLIMIT_NOFILE: u64 = 7;
/// The largest RLIMIT_NOFILE that may be set (`fs.nr_open`).
pub const NR_OPEN: u64 = 1 << 20;

/// The kernel's `struct sigaction` for `rt_sigaction` on x86_64.
#[repr(C)]
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct SigAction {
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: u64,
}

/// A set of signals 1..=64, bit `n - 1` for signal `n` (the kernel's `sigset_t`).
pub type SigSet = u64;
pub const NSIG: i32 = 64;
pub const SIGKILL: i32 = 9;
pub const SIGSTOP: i32 = 19;

/// The bit of signal `sig` in a [`SigSet`].
pub fn sig_bit(sig: i32) -> SigSet {
    1 << (sig - 1)
}

/// Signals that can be neither caught, blocked nor ignored.
pub const UNBLOCKABLE: SigSet = (1 << (SIGKILL - 1)) | (1 << (SIGSTOP - 1));

/// The kernel's `struct stat` on x86_64.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct Stat {
    pub dev: u64,
    pub ino: u64,
    pub nlink: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub pad0: u32,
    pub rdev: u64,
    pub size: i64,
    pub blksize: i64,
    pub blocks: i64,
    pub atime: i64,
    pub atime_nsec: i64,
    pub mtime: i64,
    pub mtime_nsec: i64,
    pub ctime: i64,
    pub ctime_nsec: i64,
    pub unused: [i64; 3],
}

/// `struct statx_timestamp`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct StatxTimestamp {
    pub tv_sec: i64,
    pub tv_nsec: u32,
    pub reserved: i32,
}

/// `struct statx` (256 bytes; the tail is reserved and zero).
#[repr(C)]
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct Statx {
    pub mask: u32,
    pub blksize: u32,
    pub attributes: u64,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub mode: u16,
    pub pad0: u16,
    pub ino: u64,
    pub size: u64,
    pub blocks: u64,
    pub attributes_mask: u64,
    pub atime: StatxTimestamp,
    pub btime: StatxTimestamp,
    pub ctime: StatxTimestamp,
    pub mtime: StatxTimestamp,
    pub rdev_major: u32,
    pub rdev_minor: u32,
    pub dev_major: u32,
    pub dev_minor: u32,
    pub spare: [u64; 14],
}

/// `struct statfs` on x86_64.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct Statfs {
    pub f_type: i64,
    pub f_bsize: i64,
    pub f_blocks: u64,
    pub f_bfree: u64,
    pub f_bavail: u64,
    pub f_files: u64,
    pub f_ffree: u64,
    pub f_fsid: [i32; 2],
    pub f_namelen: i64,
    pub f_frsize: i64,
    pub f_flags: i64,
    pub f_spare: [i64; 4],
}

/// `struct flock` (fcntl record locks). The padding is explicit so that the structure
/// converts to bytes; what the guest had there is written back unchanged.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct Flock {
    pub l_type: i16,
    pub l_whence: i16,
    pub pad0: u32,
    pub l_start: i64,
    pub l_len: i64,
    pub l_pid: i32,
    pub pad1: u32,
}

/// `struct open_how` (openat2), OPEN_HOW_SIZE_VER0 bytes.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct OpenHow {
    pub flags: u64,
    pub mode: u64,
    pub resolve: u64,
}

/// The kernel's `struct termios` (TCGETS).
#[repr(C)]
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Termios {
    pub iflag: u32,
    pub oflag: u32,
    pub cflag: u32,
    pub lflag: u32,
    pub line: u8,
    pub cc: [u8; 19],
}

/// The kernel's `struct termios2` (TCGETS2): `struct termios` and the two speeds.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct Termios2 {
    pub termios: Termios,
    pub ispeed: u32,
    pub ospeed: u32,
}

/// `struct winsize` (TIOCGWINSZ).
#[repr(C)]
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Winsize {
    pub row: u16,
    pub col: u16,
    pub xpixel: u16,
    pub ypixel: u16,
}

/// `struct sysinfo` on x86_64. The padding Linux leaves implicit is spelled out.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct Sysinfo {
    pub uptime: i64,
    pub loads: [u64; 3],
    pub totalram: u64,
    pub freeram: u64,
    pub sharedram: u64,
    pub bufferram: u64,
    pub totalswap: u64,
    pub freeswap: u64,
    pub procs: u16,
    pub pad: u16,
    pub pad1: u32,
    pub totalhigh: u64,
    pub freehigh: u64,
    pub mem_unit: u32,
    pub pad2: u32,
}

/// `struct rusage`: user and system time, then 14 longs of counters (ru_maxrss first).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct Rusage {
    pub utime: Timeval,
    pub stime: Timeval,
    pub counters: [i64; 14],
}

/// `struct tms` (times(2)), in clock ticks.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct Tms {
    pub utime: i64,
    pub stime: i64,
    pub cutime: i64,
    pub cstime: i64,
}

/// `stack_t` (sigaltstack).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct StackT {
    pub sp: u64,
    pub flags: i32,
    pub pad: u32,
    pub size: u64,
}

/// Clock ticks per second as the guest counts them (USER_HZ, AT_CLKTCK).
pub const USER_HZ: u64 = 100;

// Auxiliary vector keys (include/uapi/linux/auxvec.h).
pub const AT_NULL: u64 = 0;
pub const AT_PHDR: u64 = 3;
pub const AT_PHENT: u64 = 4;
pub const AT_PHNUM: u64 = 5;
pub const AT_PAGESZ: u64 = 6;
pub const AT_BASE: u64 = 7;
pub const AT_FLAGS: u64 = 8;
pub const AT_ENTRY: u64 = 9;
pub const AT_UID: u64 = 11;
pub const AT_EUID: u64 = 12;
pub const AT_GID: u64 = 13;
pub const AT_EGID: u64 = 14;
pub const AT_PLATFORM: u64 = 15;
pub const AT_HWCAP: u64 = 16;
pub const AT_CLKTCK: u64 = 17;
pub const AT_SECURE: u64 = 23;
pub const AT_RANDOM: u64 = 25;
pub const AT_HWCAP2: u64 = 26;
pub const AT_EXECFN: u64 = 31;
pub const AT_MINSIGSTKSZ: u64 = 51;

/// User-mode segment selectors of x86_64 Linux.
pub const USER_CS: u64 = 0x33;
pub const USER_DS: u64 = 0x2b;

/// One past the highest canonical user address (TASK_SIZE_MAX).
pub const TASK_SIZE_MAX: u64 = 0x7fff_ffff_f000;

// Values of flag and command arguments. The syscall handlers test them and strace names
// them from here (`syscalls::table`), so each is written down once.

pub const AT_FDCWD: i32 = -100;
pub const AT_SYMLINK_NOFOLLOW: u64 = 0x100;
pub const AT_NO_AUTOMOUNT: u64 = 0x800;
pub const AT_EMPTY_PATH: u64 = 0x1000;

pub const TCGETS: u64 = 0x5401;
pub const TCSETS: u64 = 0x5402;
pub const TCSETSW: u64 = 0x5403;
pub const TCSETSF: u64 = 0x5404;
pub const TCSBRK: u64 = 0x5409;
pub const TCXONC: u64 = 0x540a;
pub const TCFLSH: u64 = 0x540b;
pub const TIOCEXCL: u64 = 0x540c;
pub const TIOCNXCL: u64 = 0x540d;
pub const TIOCSCTTY: u64 = 0x540e;
pub const TIOCGPGRP: u64 = 0x540f;
pub const TIOCSPGRP: u64 = 0x5410;
pub const TIOCOUTQ: u64 = 0x5411;
pub const TIOCSTI: u64 = 0x5412;
pub const TIOCGWINSZ: u64 = 0x5413;
pub const TIOCSWINSZ: u64 = 0x5414;
pub const FIONREAD: u64 = 0x541b;
pub const TIOCNOTTY: u64 = 0x5422;
pub const TIOCSETD: u64 = 0x5423;
pub const TIOCGETD: u64 = 0x5424;
pub const TCSBRKP: u64 = 0x5425;
pub const TIOCGSID: u64 = 0x5429;
pub const TCGETS2: u64 = 0x802c_542a;
pub const TCSETS2: u64 = 0x402c_542b;
pub const TCSETSW2: u64 = 0x402c_542c;
pub const TCSETSF2: u64 = 0x402c_542d;
pub const TIOCGPTN: u64 = 0x8004_5430;
pub const TIOCSPTLCK: u64 = 0x4004_5431;
pub const TIOCGPTLCK: u64 = 0x8004_5439;
pub const TIOCGEXCL: u64 = 0x8004_5440;
pub const TIOCGPTPEER: u64 = 0x5441;
pub const FIONBIO: u64 = 0x5421;
pub const FIONCLEX: u64 = 0x5450;
pub const FIOCLEX: u64 = 0x5451;

pub const F_DUPFD: u64 = 0;
pub const F_GETFD: u64 = 1;
pub const F_SETFD: u64 = 2;
pub const F_GETFL: u64 = 3;
pub const F_SETFL: u64 = 4;
pub const F_GETLK: u64 = 5;
pub const F_SETLK: u64 = 6;
pub const F_SETLKW: u64 = 7;
pub const F_OFD_GETLK: u64 = 36;
pub const F_OFD_SETLK: u64 = 37;
pub const F_OFD_SETLKW: u64 = 38;
pub const F_DUPFD_CLOEXEC: u64 = 1030;
pub const F_SETPIPE_SZ: u64 = 1031;
pub const F_GETPIPE_SZ: u64 = 1032;

// `struct flock`'s l_type.
pub const F_RDLCK: i16 = 0;
pub const F_WRLCK: i16 = 1;
pub const F_UNLCK: i16 = 2;

// flock(2) operations.
pub const LOCK_SH: u64 = 1;
pub const LOCK_EX: u64 = 2;
pub const LOCK_NB: u64 = 4;
pub const LOCK_UN: u64 = 8;
/// Ignored since Linux 5.15 (the call succeeds and does nothing).
pub const LOCK_MAND: u64 = 32;

// preadv2/pwritev2 flags.
pub const RWF_HIPRI: u64 = 0x01;
pub const RWF_DSYNC: u64 = 0x02;
pub const RWF_SYNC: u64 = 0x04;
pub const RWF_NOWAIT: u64 = 0x08;
pub const RWF_APPEND: u64 = 0x10;
pub const RWF_NOAPPEND: u64 = 0x20;
pub const RWF_ATOMIC: u64 = 0x40;
pub const RWF_DONTCACHE: u64 = 0x80;
pub const RWF_NOSIGNAL: u64 = 0x100;

// fallocate(2) modes.
pub const FALLOC_FL_KEEP_SIZE: u64 = 0x01;
pub const FALLOC_FL_PUNCH_HOLE: u64 = 0x02;
pub const FALLOC_FL_COLLAPSE_RANGE: u64 = 0x08;
pub const FALLOC_FL_ZERO_RANGE: u64 = 0x10;
pub const FALLOC_FL_INSERT_RANGE: u64 = 0x20;
pub const FALLOC_FL_UNSHARE_RANGE: u64 = 0x40;
pub const FALLOC_FL_WRITE_ZEROES: u64 = 0x80;

// openat2(2)'s `resolve`.
pub const RESOLVE_NO_XDEV: u64 = 0x01;
pub const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
pub const RESOLVE_NO_SYMLINKS: u64 = 0x04;
pub const RESOLVE_BENEATH: u64 = 0x08;
pub const RESOLVE_IN_ROOT: u64 = 0x10;
pub const RESOLVE_CACHED: u64 = 0x20;

// poll(2) events.
pub const POLLIN: u16 = 0x001;
pub const POLLPRI: u16 = 0x002;
pub const POLLOUT: u16 = 0x004;
pub const POLLERR: u16 = 0x008;
pub const POLLHUP: u16 = 0x010;
pub const POLLNVAL: u16 = 0x020;
pub const POLLRDNORM: u16 = 0x040;
pub const POLLRDBAND: u16 = 0x080;
pub const POLLWRNORM: u16 = 0x100;
pub const POLLWRBAND: u16 = 0x200;
pub const POLLMSG: u16 = 0x400;
pub const POLLRDHUP: u16 = 0x2000;

// epoll(7): the events are the poll(2) bits, with these flags above them.
pub const EPOLLEXCLUSIVE: u32 = 1 << 28;
pub const EPOLLWAKEUP: u32 = 1 << 29;
pub const EPOLLONESHOT: u32 = 1 << 30;
pub const EPOLLET: u32 = 1 << 31;
pub const EPOLL_CTL_ADD: u64 = 1;
pub const EPOLL_CTL_DEL: u64 = 2;
pub const EPOLL_CTL_MOD: u64 = 3;
/// epoll_create1's one flag (O_CLOEXEC).
pub const EPOLL_CLOEXEC: u64 = 0o2000000;

/// `struct epoll_event`, packed on x86_64 (12 bytes).
#[repr(C, packed)]
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct EpollEvent {
    pub events: u32,
    pub data: u64,
}

// eventfd(2) and timerfd_create(2) flags.
pub const EFD_SEMAPHORE: u64 = 0o1;
pub const EFD_NONBLOCK: u64 = 0o4000;
pub const EFD_CLOEXEC: u64 = 0o2000000;
pub const TFD_NONBLOCK: u64 = 0o4000;
pub const TFD_CLOEXEC: u64 = 0o2000000;
pub const TFD_TIMER_ABSTIME: u64 = 1;
pub const TFD_TIMER_CANCEL_ON_SET: u64 = 2;

/// `struct itimerspec`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct Itimerspec {
    pub interval: Timespec,
    pub value: Timespec,
}

pub const PROT_READ: u64 = 0x1;
pub const PROT_WRITE: u64 = 0x2;
pub const PROT_EXEC: u64 = 0x4;
pub const PROT_GROWSDOWN: u64 = 0x0100_0000;
pub const PROT_GROWSUP: u64 = 0x0200_0000;

pub const MAP_SHARED: u64 = 0x01;
pub const MAP_PRIVATE: u64 = 0x02;
pub const MAP_SHARED_VALIDATE: u64 = 0x03;
pub const MAP_DROPPABLE: u64 = 0x08;
pub const MAP_TYPE: u64 = 0x0f;
pub const MAP_FIXED: u64 = 0x10;
pub const MAP_ANONYMOUS: u64 = 0x20;
pub const MAP_32BIT: u64 = 0x40;
pub const MAP_GROWSDOWN: u64 = 0x100;
pub const MAP_NORESERVE: u64 = 0x4000;
pub const MAP_POPULATE: u64 = 0x8000;
pub const MAP_STACK: u64 = 0x20000;
pub const MAP_FIXED_NOREPLACE: u64 = 0x100000;

pub const ARCH_SET_GS: u64 = 0x1001;
pub const ARCH_SET_FS: u64 = 0x1002;
pub const ARCH_GET_FS: u64 = 0x1003;
pub const ARCH_GET_GS: u64 = 0x1004;
pub const ARCH_GET_CPUID: u64 = 0x1011;
pub const ARCH_SET_CPUID: u64 = 0x1012;

pub const PR_SET_PDEATHSIG: u64 = 1;
pub const PR_GET_PDEATHSIG: u64 = 2;
pub const PR_GET_DUMPABLE: u64 = 3;
pub const PR_SET_DUMPABLE: u64 = 4;
pub const PR_SET_NAME: u64 = 15;
pub const PR_GET_NAME: u64 = 16;
pub const PR_SET_CHILD_SUBREAPER: u64 = 36;
pub const PR_GET_CHILD_SUBREAPER: u64 = 37;
pub const PR_SET_NO_NEW_PRIVS: u64 = 38;
pub const PR_GET_NO_NEW_PRIVS: u64 = 39;
pub const PR_CAPBSET_READ: u64 = 23;
pub const PR_CAPBSET_DROP: u64 = 24;
pub const PR_GET_KEEPCAPS: u64 = 7;
pub const PR_SET_KEEPCAPS: u64 = 8;
pub const PR_GET_SECUREBITS: u64 = 27;
pub const PR_SET_SECUREBITS: u64 = 28;
pub const PR_CAP_AMBIENT: u64 = 47;
pub const PR_CAP_AMBIENT_IS_SET: u64 = 1;
pub const PR_CAP_AMBIENT_RAISE: u64 = 2;
pub const PR_CAP_AMBIENT_LOWER: u64 = 3;
pub const PR_CAP_AMBIENT_CLEAR_ALL: u64 = 4;

/// capget/capset header versions (linux/capability.h): version 1 carries one 32-bit word
/// per set, versions 2 and 3 two.
pub const LINUX_CAPABILITY_VERSION_1: u32 = 0x1998_0330;
pub const LINUX_CAPABILITY_VERSION_2: u32 = 0x2007_1026;
pub const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// struct __user_cap_header_struct (capget(2), capset(2)).
#[repr(C)]
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct CapUserHeader {
    pub version: u32,
    pub pid: i32,
}

/// struct __user_cap_data_struct: one 32-bit word of each set.
#[repr(C)]
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct CapUserData {
    pub effective: u32,
    pub permitted: u32,
    pub inheritable: u32,
}

/// Capability numbers (linux/capability.h).
pub const CAP_CHOWN: u32 = 0;
pub const CAP_DAC_OVERRIDE: u32 = 1;
pub const CAP_DAC_READ_SEARCH: u32 = 2;
pub const CAP_FOWNER: u32 = 3;
pub const CAP_FSETID: u32 = 4;
pub const CAP_KILL: u32 = 5;
pub const CAP_SETGID: u32 = 6;
pub const CAP_SETUID: u32 = 7;
pub const CAP_SETPCAP: u32 = 8;
pub const CAP_LINUX_IMMUTABLE: u32 = 9;
pub const CAP_NET_BIND_SERVICE: u32 = 10;
pub const CAP_NET_BROADCAST: u32 = 11;
pub const CAP_NET_ADMIN: u32 = 12;
pub const CAP_NET_RAW: u32 = 13;
pub const CAP_IPC_LOCK: u32 = 14;
pub const CAP_IPC_OWNER: u32 = 15;
pub const CAP_SYS_MODULE: u32 = 16;
pub const CAP_SYS_RAWIO: u32 = 17;
pub const CAP_SYS_CHROOT: u32 = 18;
pub const CAP_SYS_PTRACE: u32 = 19;
pub const CAP_SYS_PACCT: u32 = 20;
pub const CAP_SYS_ADMIN: u32 = 21;
pub const CAP_SYS_BOOT: u32 = 22;
pub const CAP_SYS_NICE: u32 = 23;
pub const CAP_SYS_RESOURCE: u32 = 24;
pub const CAP_SYS_TIME: u32 = 25;
pub const CAP_SYS_TTY_CONFIG: u32 = 26;
pub const CAP_MKNOD: u32 = 27;
pub const CAP_LEASE: u32 = 28;
pub const CAP_AUDIT_WRITE: u32 = 29;
pub const CAP_AUDIT_CONTROL: u32 = 30;
pub const CAP_SETFCAP: u32 = 31;
pub const CAP_MAC_OVERRIDE: u32 = 32;
pub const CAP_MAC_ADMIN: u32 = 33;
pub const CAP_SYSLOG: u32 = 34;
pub const CAP_WAKE_ALARM: u32 = 35;
pub const CAP_BLOCK_SUSPEND: u32 = 36;
pub const CAP_AUDIT_READ: u32 = 37;
pub const CAP_PERFMON: u32 = 38;
pub const CAP_BPF: u32 = 39;
pub const CAP_CHECKPOINT_RESTORE: u32 = 40;
/// The highest capability number, as on Linux 5.9 and later.
pub const CAP_LAST_CAP: u32 = CAP_CHECKPOINT_RESTORE;

/// Securebits (linux/securebits.h): each flag's lock is the bit above it.
pub const SECBIT_NOROOT: u32 = 1 << 0;
pub const SECBIT_NOROOT_LOCKED: u32 = 1 << 1;
pub const SECBIT_NO_SETUID_FIXUP: u32 = 1 << 2;
pub const SECBIT_NO_SETUID_FIXUP_LOCKED: u32 = 1 << 3;
pub const SECBIT_KEEP_CAPS: u32 = 1 << 4;
pub const SECBIT_KEEP_CAPS_LOCKED: u32 = 1 << 5;
pub const SECBIT_NO_CAP_AMBIENT_RAISE: u32 = 1 << 6;
pub const SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED: u32 = 1 << 7;

pub const SIG_BLOCK: u64 = 0;
pub const SIG_UNBLOCK: u64 = 1;
pub const SIG_SETMASK: u64 = 2;

pub const GRND_NONBLOCK: u64 = 1;
pub const GRND_RANDOM: u64 = 2;
pub const GRND_INSECURE: u64 = 4;

pub const CLOCK_REALTIME: u64 = 0;
pub const CLOCK_MONOTONIC: u64 = 1;
pub const CLOCK_PROCESS_CPUTIME_ID: u64 = 2;
pub const CLOCK_THREAD_CPUTIME_ID: u64 = 3;
pub const CLOCK_MONOTONIC_RAW: u64 = 4;
pub const CLOCK_REALTIME_COARSE: u64 = 5;
pub const CLOCK_MONOTONIC_COARSE: u64 = 6;
pub const CLOCK_BOOTTIME: u64 = 7;
pub const CLOCK_REALTIME_ALARM: u64 = 8;
pub const CLOCK_BOOTTIME_ALARM: u64 = 9;
pub const CLOCK_TAI: u64 = 11;
pub const TIMER_ABSTIME: u64 = 1;

pub const RLIMIT_CPU: u64 = 0;
pub const RLIMIT_FSIZE: u64 = 1;
pub const RLIMIT_DATA: u64 = 2;
pub const RLIMIT_CORE: u64 = 4;
pub const RLIMIT_RSS: u64 = 5;
pub const RLIMIT_NPROC: u64 = 6;
pub const RLIMIT_MEMLOCK: u64 = 8;
pub const RLIMIT_AS: u64 = 9;
pub const RLIMIT_LOCKS: u64 = 10;
pub const RLIMIT_SIGPENDING: u64 = 11;
pub const RLIMIT_MSGQUEUE: u64 = 12;
pub const RLIMIT_NICE: u64 = 13;
pub const RLIMIT_RTPRIO: u64 = 14;
pub const RLIMIT_RTTIME: u64 = 15;

pub const RUSAGE_SELF: u64 = 0;
pub const RUSAGE_CHILDREN: u64 = -1i64 as u64;
pub const RUSAGE_THREAD: u64 = 1;

pub const PRIO_PROCESS: u64 = 0;
pub const PRIO_PGRP: u64 = 1;
pub const PRIO_USER: u64 = 2;

pub const SCHED_NORMAL: u64 = 0;
pub const SCHED_FIFO: u64 = 1;
pub const SCHED_RR: u64 = 2;
pub const SCHED_BATCH: u64 = 3;
pub const SCHED_IDLE: u64 = 5;
pub const SCHED_DEADLINE: u64 = 6;
pub const SCHED_RESET_ON_FORK: u64 = 0x4000_0000;

pub const POSIX_FADV_NORMAL: u64 = 0;
pub const POSIX_FADV_RANDOM: u64 = 1;
pub const POSIX_FADV_SEQUENTIAL: u64 = 2;
pub const POSIX_FADV_WILLNEED: u64 = 3;
pub const POSIX_FADV_DONTNEED: u64 = 4;
pub const POSIX_FADV_NOREUSE: u64 = 5;

pub const XATTR_CREATE: u64 = 1;
pub const XATTR_REPLACE: u64 = 2;

pub const SS_ONSTACK: u64 = 1;
pub const SS_DISABLE: u64 = 2;
pub const SS_AUTODISARM: u64 = 1 << 31;

// Sockets (socket(2), unix(7), socket(7)).
pub const AF_UNSPEC: u64 = 0;
pub const AF_UNIX: u64 = 1;
pub const AF_INET: u64 = 2;
pub const AF_INET6: u64 = 10;
pub const AF_NETLINK: u64 = 16;
pub const AF_PACKET: u64 = 17;
/// One past the highest address family Linux knows (NPROTO): above it is EAFNOSUPPORT.
pub const AF_MAX: u64 = 46;

pub const SOCK_STREAM: u64 = 1;
pub const SOCK_DGRAM: u64 = 2;
pub const SOCK_RAW: u64 = 3;
pub const SOCK_RDM: u64 = 4;
pub const SOCK_SEQPACKET: u64 = 5;
/// The type bits of socket(2)'s `type`; the flags above them are SOCK_NONBLOCK and
/// SOCK_CLOEXEC (the values of O_NONBLOCK and O_CLOEXEC).
pub const SOCK_TYPE_MASK: u64 = 0xf;
pub const SOCK_NONBLOCK: u64 = 0o4000;
pub const SOCK_CLOEXEC: u64 = 0o2000000;

// send(2) and recv(2) flags.
pub const MSG_OOB: u64 = 0x1;
pub const MSG_PEEK: u64 = 0x2;
pub const MSG_DONTROUTE: u64 = 0x4;
pub const MSG_CTRUNC: u64 = 0x8;
pub const MSG_TRUNC: u64 = 0x20;
pub const MSG_DONTWAIT: u64 = 0x40;
pub const MSG_EOR: u64 = 0x80;
pub const MSG_WAITALL: u64 = 0x100;
pub const MSG_NOSIGNAL: u64 = 0x4000;
pub const MSG_CMSG_CLOEXEC: u64 = 0x4000_0000;

pub const SHUT_RD: u64 = 0;
pub const SHUT_WR: u64 = 1;
pub const SHUT_RDWR: u64 = 2;

pub const SOL_SOCKET: u64 = 1;
pub const SO_DEBUG: u64 = 1;
pub const SO_REUSEADDR: u64 = 2;
pub const SO_TYPE: u64 = 3;
pub const SO_ERROR: u64 = 4;
pub const SO_DONTROUTE: u64 = 5;
pub const SO_BROADCAST: u64 = 6;
pub const SO_SNDBUF: u64 = 7;
pub const SO_RCVBUF: u64 = 8;
pub const SO_KEEPALIVE: u64 = 9;
pub const SO_OOBINLINE: u64 = 10;
pub const SO_LINGER: u64 = 13;
pub const SO_REUSEPORT: u64 = 15;
pub const SO_PASSCRED: u64 = 16;
pub const SO_PEERCRED: u64 = 17;
pub const SO_RCVLOWAT: u64 = 18;
pub const SO_SNDLOWAT: u64 = 19;
pub const SO_RCVTIMEO: u64 = 20;
pub const SO_SNDTIMEO: u64 = 21;
pub const SO_ACCEPTCONN: u64 = 30;
pub const SO_PROTOCOL: u64 = 38;
pub const SO_DOMAIN: u64 = 39;

// Control message types at SOL_SOCKET.
pub const SCM_RIGHTS: i32 = 1;
pub const SCM_CREDENTIALS: i32 = 2;

pub const SIOCINQ: u64 = FIONREAD;
pub const SIOCOUTQ: u64 = 0x5411;

/// `struct msghdr` (sendmsg, recvmsg). The padding after the two ints is explicit.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct Msghdr {
    pub name: u64,
    pub namelen: u32,
    pub pad0: u32,
    pub iov: u64,
    pub iovlen: u64,
    pub control: u64,
    pub controllen: u64,
    pub flags: u32,
    pub pad1: u32,
}

/// `struct cmsghdr`, the header of each control message; its data follows, and the next
/// message starts CMSG_ALIGN(len) bytes after this one.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct Cmsghdr {
    pub len: u64,
    pub level: i32,
    pub kind: i32,
}

/// `struct ucred` (SCM_CREDENTIALS, SO_PEERCRED).
#[repr(C)]
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Ucred {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
}
