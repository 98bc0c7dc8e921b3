//! Confining runsc-rs's own processes once they are set up, as DESIGN.md asks: a mount
//! namespace in which only one directory is visible (the gofer: the root it serves; the
//! Sentry: an empty read-only tmpfs), then a seccomp allow-list.

use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// Moves the calling thread into a mount namespace of its own whose root is `dir` (read-only
/// if asked) and in which nothing else of the host's tree remains. Threads started later
/// inherit it; threads that already exist keep the old view, so call this before starting
/// any. `who` names the process in errors.
pub fn pivot_into(dir: &Path, read_only: bool, who: &str) -> Result<&'static Path, String> {
    let fail = |what: &str, e: nix::errno::Errno| format!("confining {who} ({what}): {e}");
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| fail("unshare(CLONE_NEWNS)", e))?;
    let private = MsFlags::MS_REC | MsFlags::MS_PRIVATE;
    mount(None::<&str>, "/", None::<&str>, private, None::<&str>)
        .map_err(|e| fail("making mounts private", e))?;
    let dir = std::fs::canonicalize(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if dir == Path::new("/") {
        // Nothing to hide; the gofer's own read-only mode guards the host's root.
        return Ok(Path::new("/"));
    }
    let bind = MsFlags::MS_BIND | MsFlags::MS_REC;
    mount(Some(&dir), &dir, None::<&str>, bind, None::<&str>)
        .map_err(|e| fail("bind-mounting the root", e))?;
    if read_only {
        let flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY;
        mount(None::<&str>, &dir, None::<&str>, flags, None::<&str>)
            .map_err(|e| fail("making the root read-only", e))?;
    }
    pivot(&dir, &fail)
}

/// Like [`pivot_into`], with a root that holds nothing but host files: file `i` of the new
/// root is `files[i].0` bind-mounted (read-only if `files[i].1`), in an empty tmpfs that is
/// then made read-only. The tmpfs is mounted over /proc (see [`empty_root`]) once every
/// source is resolved, so a source under /proc is refused.
pub fn pivot_into_files(files: &[(PathBuf, bool)], who: &str) -> Result<&'static Path, String> {
    let fail = |what: &str, e: nix::errno::Errno| format!("confining {who} ({what}): {e}");
    let mut sources = Vec::with_capacity(files.len());
    for (file, _) in files {
        let source = std::fs::canonicalize(file).map_err(|e| format!("{}: {e}", file.display()))?;
        if source.starts_with("/proc") {
            return Err(format!(
                "{}: files under /proc cannot be served",
                file.display()
            ));
        }
        sources.push(source);
    }
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| fail("unshare(CLONE_NEWNS)", e))?;
    let private = MsFlags::MS_REC | MsFlags::MS_PRIVATE;
    mount(None::<&str>, "/", None::<&str>, private, None::<&str>)
        .map_err(|e| fail("making mounts private", e))?;
    let root = Path::new("/proc");
    let tmpfs_flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let data = format!("size=4k,nr_inodes={},mode=0755", files.len() + 1);
    mount(
        Some("none"),
        root,
        Some("tmpfs"),
        tmpfs_flags,
        Some(data.as_str()),
    )
    .map_err(|e| fail("mounting a tmpfs for the files", e))?;
    for (i, (source, (_, read_only))) in sources.iter().zip(files).enumerate() {
        let target = root.join(i.to_string());
        std::fs::File::create(&target).map_err(|e| format!("confining {who}: {e}"))?;
        mount(
            Some(source),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| fail(&format!("bind-mounting {}", source.display()), e))?;
        if *read_only {
            let flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY;
            mount(None::<&str>, &target, None::<&str>, flags, None::<&str>)
                .map_err(|e| fail(&format!("making {} read-only", source.display()), e))?;
        }
    }
    // Nothing can be made beside the files (the server itself is not read-only: the files
    // may be writable).
    let flags = MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | tmpfs_flags;
    mount(None::<&str>, root, None::<&str>, flags, None::<&str>)
        .map_err(|e| fail("making the tmpfs read-only", e))?;
    pivot(root, &fail)
}

/// Like [`pivot_into`], with an empty read-only tmpfs as the root: the caller can reach no
/// host file by path at all. The tmpfs is mounted over /proc in the new namespace only
/// (a directory every Linux host has), then becomes the root.
pub fn empty_root(who: &str) -> Result<(), String> {
    let fail = |what: &str, e: nix::errno::Errno| format!("confining {who} ({what}): {e}");
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| fail("unshare(CLONE_NEWNS)", e))?;
    let private = MsFlags::MS_REC | MsFlags::MS_PRIVATE;
    mount(None::<&str>, "/", None::<&str>, private, None::<&str>)
        .map_err(|e| fail("making mounts private", e))?;
    let flags = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(
        Some("none"),
        "/proc",
        Some("tmpfs"),
        flags,
        Some("size=4k,nr_inodes=1,mode=0555"),
    )
    .map_err(|e| fail("mounting an empty tmpfs", e))?;
    pivot(Path::new("/proc"), &fail).map(drop)
}

fn pivot(
    dir: &Path,
    fail: &dyn Fn(&str, nix::errno::Errno) -> String,
) -> Result<&'static Path, String> {
    nix::unistd::chdir(dir).map_err(|e| fail("chdir", e))?;
    nix::unistd::pivot_root(".", ".").map_err(|e| fail("pivot_root", e))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| fail("detaching the old root", e))?;
    nix::unistd::chdir("/").map_err(|e| fail("chdir /", e))?;
    Ok(Path::new("/"))
}

/// What a seccomp filter lets through.
pub struct Allowed<'a> {
    /// These calls run.
    pub calls: &'a [i64],
    /// ioctl runs with these requests only.
    pub ioctls: &'a [u64],
    /// These fail with EACCES, so that a stray attempt to open a path is an error rather
    /// than a crash.
    pub refused: &'a [i64],
}

/// Installs a seccomp filter: what `allowed` lists runs or is refused, anything else kills
/// the process. `all_threads` applies it to every thread (TSYNC), else to the calling
/// thread and those it starts later.
pub fn seccomp(who: &str, allowed: &Allowed<'_>, all_threads: bool) -> Result<(), String> {
    let fail = |e: seccompiler::BackendError| format!("building {who}'s seccomp filter: {e}");
    let mut ioctl_rules = Vec::new();
    for &request in allowed.ioctls {
        let cond = SeccompCondition::new(1, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, request)
            .map_err(fail)?;
        ioctl_rules.push(SeccompRule::new(vec![cond]).map_err(fail)?);
    }
    let compile = |rules: &[i64], mismatch, matched| -> Result<BpfProgram, String> {
        let mut rules: std::collections::BTreeMap<i64, Vec<SeccompRule>> =
            rules.iter().map(|&nr| (nr, vec![])).collect();
        if !ioctl_rules.is_empty() && matched == SeccompAction::Allow {
            rules.insert(libc::SYS_ioctl, ioctl_rules.clone());
        }
        SeccompFilter::new(rules, mismatch, matched, TargetArch::x86_64)
            .map_err(|e| format!("building {who}'s seccomp filter: {e}"))?
            .try_into()
            .map_err(|e| format!("compiling {who}'s seccomp filter: {e:?}"))
    };
    let install = |program: &BpfProgram| {
        let applied = if all_threads {
            seccompiler::apply_filter_all_threads(program)
        } else {
            seccompiler::apply_filter(program)
        };
        applied.map_err(|e| format!("installing {who}'s seccomp filter: {e}"))
    };
    // Filters stack and the strictest answer wins: the refused calls are allowed by the
    // first filter and turned into EACCES by the second.
    let everything: Vec<i64> = allowed
        .calls
        .iter()
        .chain(allowed.refused)
        .copied()
        .collect();
    install(&compile(
        &everything,
        SeccompAction::KillProcess,
        SeccompAction::Allow,
    )?)?;
    if !allowed.refused.is_empty() {
        let eacces = SeccompAction::Errno(libc::EACCES as u32);
        install(&compile(allowed.refused, SeccompAction::Allow, eacces)?)?;
    }
    Ok(())
}

/// What the Sentry may ask of the host once the sandbox runs: memory-file and ptrace work,
/// threads (one per guest process), the gofer's rings, time, and writing to the descriptors
/// it already holds. The stubs it forks inherit this filter under their own, so the calls
/// a stub makes before it is traced, and those it runs for the Sentry (mmap, munmap,
/// mprotect) or that trap from the vsyscall page (gettimeofday, time, getcpu), are here too.
pub const SENTRY_SYSCALLS: &[i64] = &[
    // Memory.
    libc::SYS_mmap,
    libc::SYS_munmap,
    libc::SYS_mprotect,
    libc::SYS_mremap,
    libc::SYS_madvise,
    libc::SYS_brk,
    libc::SYS_fallocate,
    libc::SYS_lseek,
    // Threads and processes: task threads, stubs, waiting.
    libc::SYS_clone,
    libc::SYS_clone3,
    libc::SYS_set_robust_list,
    libc::SYS_rseq,
    libc::SYS_futex,
    libc::SYS_sched_yield,
    libc::SYS_sched_getaffinity,
    libc::SYS_sched_setaffinity,
    libc::SYS_getcpu,
    libc::SYS_exit,
    // The idle loop of stub threads not yet (or no longer) traced.
    libc::SYS_pause,
    // Watching stubs for deaths from outside (platform/src/ptrace/death.rs).
    libc::SYS_pidfd_open,
    libc::SYS_exit_group,
    libc::SYS_getpid,
    libc::SYS_gettid,
    libc::SYS_getppid,
    libc::SYS_kill,
    libc::SYS_tgkill,
    libc::SYS_ptrace,
    libc::SYS_wait4,
    libc::SYS_waitid,
    libc::SYS_prctl,
    libc::SYS_seccomp,
    libc::SYS_arch_prctl,
    libc::SYS_rt_sigaction,
    libc::SYS_rt_sigprocmask,
    libc::SYS_rt_sigreturn,
    // The thread that takes the signals sent to runsc-rs (sigwait).
    libc::SYS_rt_sigtimedwait,
    libc::SYS_sigaltstack,
    libc::SYS_restart_syscall,
    // Descriptors it holds: stdio, the memory file, the rings' eventfds, pidfds.
    libc::SYS_read,
    libc::SYS_write,
    libc::SYS_readv,
    libc::SYS_writev,
    libc::SYS_pread64,
    libc::SYS_pwrite64,
    libc::SYS_poll,
    libc::SYS_ppoll,
    libc::SYS_close,
    libc::SYS_close_range,
    libc::SYS_pipe2,
    libc::SYS_dup,
    libc::SYS_dup2,
    libc::SYS_dup3,
    libc::SYS_fcntl,
    libc::SYS_fstat,
    libc::SYS_newfstatat,
    libc::SYS_statx,
    // An OCI container's control socket, bound before confinement (container/control.rs).
    libc::SYS_accept4,
    libc::SYS_recvmsg,
    libc::SYS_sendmsg,
    // Time, identity, randomness.
    libc::SYS_clock_gettime,
    libc::SYS_clock_getres,
    libc::SYS_clock_nanosleep,
    libc::SYS_nanosleep,
    libc::SYS_gettimeofday,
    libc::SYS_time,
    libc::SYS_getrandom,
    libc::SYS_getuid,
    libc::SYS_geteuid,
    libc::SYS_getgid,
    libc::SYS_getegid,
    libc::SYS_prlimit64,
    libc::SYS_getrusage,
    libc::SYS_uname,
];

/// Calls that name host paths or make new host objects: refused with EACCES.
pub const SENTRY_REFUSED: &[i64] = &[
    libc::SYS_open,
    libc::SYS_openat,
    libc::SYS_openat2,
    libc::SYS_execve,
    libc::SYS_execveat,
    libc::SYS_socket,
    libc::SYS_memfd_create,
    libc::SYS_readlink,
    libc::SYS_readlinkat,
    libc::SYS_access,
    libc::SYS_faccessat,
    libc::SYS_faccessat2,
];

/// Confines the Sentry (the calling process) once its gofer, memory file and platform are
/// ready: an empty root, then the allow-list on every thread. `platform_ioctls` are the
/// ioctls the platform goes on making (KVM's on its VM and vCPUs).
pub fn sentry(platform_ioctls: &[u64]) -> Result<(), String> {
    empty_root("the Sentry")?;
    // Terminal queries the guest's stdio is answered from (syscalls/file.rs ioctl), the
    // console's size, and putting runsc-rs's terminal settings back at the end
    // (terminal.rs).
    // An exec'd process's terminal is made raw once the Sentry is confined
    // (container/boot.rs): TCSETSW is TCSETS after the output drains.
    let mut ioctls = vec![libc::TCGETS, libc::TIOCGWINSZ, libc::TCSETS, libc::TCSETSW];
    ioctls.extend_from_slice(platform_ioctls);
    let allowed = Allowed {
        calls: SENTRY_SYSCALLS,
        ioctls: &ioctls,
        refused: SENTRY_REFUSED,
    };
    seccomp("the Sentry", &allowed, true)
}
