//! A process's life cycle: clone, fork, vfork, execve, exit, wait4, waitid, and process
//! groups and sessions.

use std::sync::Arc;

use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};

use super::fs::{lookup, read_path};
use crate::abi::*;
use crate::kernel::processes::{ChildEvent, WaitFor, WaitOptions, SIGCHLD};
use crate::kernel::signals;
use crate::kernel::{
    entry_regs, ChildMemory, ExitStatus, Forked, LoadArgs, NewTask, Task, VforkDone,
};
use crate::vfs::{FileType, Location};

const CSIGNAL: u64 = 0xff;
const CLONE_VM: u64 = 0x100;
const CLONE_FS: u64 = 0x200;
const CLONE_FILES: u64 = 0x400;
const CLONE_SIGHAND: u64 = 0x800;
const CLONE_PIDFD: u64 = 0x1000;
const CLONE_PTRACE: u64 = 0x2000;
const CLONE_VFORK: u64 = 0x4000;
const CLONE_PARENT: u64 = 0x8000;
const CLONE_THREAD: u64 = 0x10000;
const CLONE_NEWNS: u64 = 0x20000;
const CLONE_SYSVSEM: u64 = 0x40000;
const CLONE_SETTLS: u64 = 0x80000;
const CLONE_PARENT_SETTID: u64 = 0x10_0000;
const CLONE_CHILD_CLEARTID: u64 = 0x20_0000;
const CLONE_DETACHED: u64 = 0x40_0000;
const CLONE_UNTRACED: u64 = 0x80_0000;
const CLONE_CHILD_SETTID: u64 = 0x100_0000;
const CLONE_NEWCGROUP: u64 = 0x200_0000;
const CLONE_NEWUTS: u64 = 0x400_0000;
const CLONE_NEWIPC: u64 = 0x800_0000;
const CLONE_NEWUSER: u64 = 0x1000_0000;
const CLONE_NEWPID: u64 = 0x2000_0000;
const CLONE_NEWNET: u64 = 0x4000_0000;
const CLONE_IO: u64 = 0x8000_0000;
const CLONE_NEWTIME: u64 = 0x80;
/// clone3 only: CLONE_CLEAR_SIGHAND and CLONE_INTO_CGROUP.
const CLONE_CLEAR_SIGHAND: u64 = 0x1_0000_0000;
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

const NAMESPACES: u64 = CLONE_NEWNS
    | CLONE_NEWCGROUP
    | CLONE_NEWUTS
    | CLONE_NEWIPC
    | CLONE_NEWUSER
    | CLONE_NEWPID
    | CLONE_NEWNET;

/// What clone and clone3 were asked for.
#[derive(Debug, Clone, Copy, Default)]
struct CloneArgs {
    flags: u64,
    exit_signal: u64,
    stack: u64,
    parent_tid: u64,
    child_tid: u64,
    tls: u64,
}

/// `struct clone_args` of clone3, its first version (64 bytes); later versions append
/// set_tid, set_tid_size and cgroup.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
struct CloneArgs3 {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

pub fn clone(t: &mut Task, a: &[u64; 6]) -> SysResult {
    // x86_64 argument order: flags, stack, parent_tid, child_tid, tls.
    let [flags, stack, parent_tid, child_tid, tls, _] = *a;
    clone_task(
        t,
        CloneArgs {
            flags: flags & !CSIGNAL & 0xffff_ffff,
            exit_signal: flags & CSIGNAL,
            stack,
            parent_tid,
            child_tid,
            tls,
        },
    )
}

pub fn clone3(t: &mut Task, a: &[u64; 6]) -> SysResult {
    const VER0: u64 = 64;
    let [addr, size, ..] = *a;
    if size < VER0 {
        return Err(Errno::EINVAL);
    }
    if size > PAGE_SIZE {
        return Err(Errno::E2BIG);
    }
    let mut raw = vec![0u8; size as usize];
    t.mm.copy_in(addr, &mut raw)?;
    let known = std::mem::size_of::<CloneArgs3>();
    // A newer caller's extra fields must be zero (copy_struct_from_user).
    if raw
        .get(known..)
        .is_some_and(|extra| extra.iter().any(|&b| b != 0))
    {
        return Err(Errno::E2BIG);
    }
    raw.resize(known, 0);
    let args = CloneArgs3::read_from_bytes(&raw).map_err(|_| Errno::EINVAL)?;
    if args.flags & CSIGNAL != 0 || args.exit_signal & !CSIGNAL != 0 {
        return Err(Errno::EINVAL);
    }
    if args.exit_signal > NSIG as u64 {
        return Err(Errno::EINVAL);
    }
    if (args.stack == 0) != (args.stack_size == 0) || args.set_tid_size != 0 {
        return Err(Errno::EINVAL);
    }
    if args.flags & (CLONE_CLEAR_SIGHAND | CLONE_INTO_CGROUP) != 0 {
        t.kernel
            .report_once("clone3 CLONE_CLEAR_SIGHAND/CLONE_INTO_CGROUP: returning EINVAL");
        return Err(Errno::EINVAL);
    }
    clone_task(
        t,
        CloneArgs {
            flags: args.flags,
            exit_signal: args.exit_signal,
            // clone3 gives the stack's lowest address and size; it grows down from the end.
            stack: args.stack.wrapping_add(args.stack_size),
            parent_tid: args.parent_tid,
            child_tid: args.child_tid,
            tls: args.tls,
        },
    )
}

pub fn fork(t: &mut Task, _: &[u64; 6]) -> SysResult {
    clone_task(
        t,
        CloneArgs {
            exit_signal: SIGCHLD as u64,
            ..CloneArgs::default()
        },
    )
}

pub fn vfork(t: &mut Task, _: &[u64; 6]) -> SysResult {
    clone_task(
        t,
        CloneArgs {
            flags: CLONE_VM | CLONE_VFORK,
            exit_signal: SIGCHLD as u64,
            ..CloneArgs::default()
        },
    )
}

/// The flag checks of Linux's copy_process, then a new process.
fn clone_task(t: &mut Task, args: CloneArgs) -> SysResult {
    let flags = args.flags;
    if flags & (CLONE_NEWNS | CLONE_NEWUSER) != 0 && flags & CLONE_FS != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & CLONE_THREAD != 0 && flags & CLONE_SIGHAND == 0 {
        return Err(Errno::EINVAL);
    }
    if flags & CLONE_SIGHAND != 0 && flags & CLONE_VM == 0 {
        return Err(Errno::EINVAL);
    }
    if flags & CLONE_PIDFD != 0 && flags & (CLONE_DETACHED | CLONE_THREAD) != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & (NAMESPACES | CLONE_NEWTIME) != 0 {
        t.kernel
            .report_once("clone with new namespaces is not supported: returning EINVAL");
        return Err(Errno::EINVAL);
    }
    if flags & CLONE_PIDFD != 0 {
        t.kernel
            .report_once("clone with CLONE_PIDFD is not supported yet: returning EINVAL");
        return Err(Errno::EINVAL);
    }
    const IGNORED: u64 = CLONE_PTRACE | CLONE_UNTRACED | CLONE_DETACHED | CLONE_IO | CLONE_SYSVSEM;
    let known = CLONE_VM
        | CLONE_FS
        | CLONE_FILES
        | CLONE_SIGHAND
        | CLONE_THREAD
        | CLONE_VFORK
        | CLONE_PARENT
        | CLONE_SETTLS
        | CLONE_PARENT_SETTID
        | CLONE_CHILD_CLEARTID
        | CLONE_CHILD_SETTID
        | IGNORED;
    if flags & !known != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & CLONE_SETTLS != 0 && args.tls >= TASK_SIZE_MAX {
        return Err(Errno::EPERM);
    }
    let thread = flags & CLONE_THREAD != 0;
    // A child that shares its parent's memory, other than vfork's (whose parent waits, so
    // a copy behaves the same for a child that only execs or exits), runs in the same
    // address space on a stub thread of its own.
    let share_memory = flags & CLONE_VM != 0 && flags & CLONE_VFORK == 0;
    let parent = if flags & CLONE_PARENT != 0 || thread {
        // The sandbox's init has no parent inside it to share.
        match t.kernel.processes.parent_of(t.tg.pid) {
            0 if !thread => return Err(Errno::EINVAL),
            ppid => ppid,
        }
    } else {
        t.tg.pid
    };

    let memory = if share_memory {
        let new_thread = t.mm.address_space().new_thread().map_err(|e| {
            log::warn!("clone: {e}");
            Errno::EAGAIN
        })?;
        ChildMemory::Shared(t.mm.clone(), new_thread)
    } else {
        ChildMemory::Copy(t.mm.fork()?)
    };
    let mut regs = t.regs;
    regs.rax = 0;
    if args.stack != 0 {
        regs.rsp = args.stack;
    }
    if flags & CLONE_SETTLS != 0 {
        regs.fs_base = args.tls;
    }
    let fds = if flags & CLONE_FILES != 0 {
        t.fds.clone()
    } else {
        Arc::new(t.fds.fork())
    };
    let fs = if flags & CLONE_FS != 0 {
        t.fs.clone()
    } else {
        Arc::new(t.fs.fork())
    };
    let exit_signal = args.exit_signal as i32;
    let (tg, tid) = if thread {
        (t.tg.clone(), t.kernel.processes.add_thread(t.tg.pid)?)
    } else {
        let tg = t
            .kernel
            .processes
            .add_child(parent, exit_signal, |pid| Arc::new(t.tg.fork(pid)))?;
        let pid = tg.pid;
        (tg, pid)
    };
    let vfork_done = (flags & CLONE_VFORK != 0).then(|| Arc::new(VforkDone::default()));
    let child = Forked {
        memory,
        task: NewTask {
            tid,
            tg,
            fds,
            fs,
            creds: t.creds.clone(),
            regs,
            signal_mask: t.signal_mask(),
            comm: t.comm,
            rseq: if thread { None } else { t.rseq },
            // A thread starts without an alternate stack (Linux clears it for CLONE_VM).
            sigaltstack: if share_memory {
                Default::default()
            } else {
                t.sigaltstack
            },
            set_child_tid: if flags & CLONE_CHILD_SETTID != 0 {
                args.child_tid
            } else {
                0
            },
            clear_child_tid: if flags & CLONE_CHILD_CLEARTID != 0 {
                args.child_tid
            } else {
                0
            },
            vfork_done: vfork_done.clone(),
            // A child is a copy of its parent, floating-point state too (clone(2); POSIX
            // has a new thread inherit the floating-point environment).
            fp_state: t.fp_state(),
        },
    };
    if flags & CLONE_PARENT_SETTID != 0 {
        // Written in the parent's memory only (without CLONE_VM the child has a copy made
        // before); a bad address is ignored, as Linux does.
        let _ = t.mm.write_obj(args.parent_tid, &(tid as u32));
    }
    if let Err(e) = t.kernel.start_forked(child) {
        if thread {
            t.tg.signals().threads.remove(&tid);
            t.kernel.processes.remove_thread(tid);
        } else {
            t.kernel.processes.remove(tid);
        }
        return Err(e);
    }
    if let Some(done) = vfork_done {
        done.wait();
    }
    Ok(tid as u64)
}

/// Longest single argument or environment string (MAX_ARG_STRLEN).
const MAX_ARG_STRLEN: usize = 32 * PAGE_SIZE as usize;
/// How many times a `#!` interpreter may itself be a script (Linux's BINPRM_MAX_RECURSION).
const MAX_INTERPRETER_DEPTH: usize = 4;

/// Reads a NULL-terminated array of string pointers (argv or envp), with at most `budget`
/// bytes of strings in all (E2BIG beyond).
fn read_strings(t: &Task, mut addr: u64, budget: &mut u64) -> Result<Vec<Vec<u8>>, Errno> {
    let mut out = Vec::new();
    if addr == 0 {
        // Linux treats a NULL argv or envp as empty.
        return Ok(out);
    }
    loop {
        let ptr: u64 = t.mm.read_obj(addr)?;
        if ptr == 0 {
            return Ok(out);
        }
        let s =
            t.mm.read_cstring(ptr, MAX_ARG_STRLEN - 1)
                .map_err(|e| match e {
                    Errno::ENAMETOOLONG => Errno::E2BIG,
                    e => e,
                })?;
        // Each string also costs its pointer and its NUL.
        let cost = s.len() as u64 + 1 + 8;
        *budget = budget.checked_sub(cost).ok_or(Errno::E2BIG)?;
        out.push(s);
        addr = addr.checked_add(8).ok_or(Errno::EFAULT)?;
    }
}

pub fn execve(t: &mut Task, a: &[u64; 6]) -> SysResult {
    exec_at(t, AT_FDCWD as u64, a[0], a[1], a[2], 0)
}

pub fn execveat(t: &mut Task, a: &[u64; 6]) -> SysResult {
    exec_at(t, a[0], a[1], a[2], a[3], a[4])
}

fn exec_at(t: &mut Task, dirfd: u64, path: u64, argv: u64, envp: u64, flags: u64) -> SysResult {
    let path = read_path(t, path)?;
    // Linux looks at the name (ENOENT for "" without AT_EMPTY_PATH) before the flags.
    if path.is_empty() && flags & AT_EMPTY_PATH == 0 {
        return Err(Errno::ENOENT);
    }
    if flags & !(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0 {
        return Err(Errno::EINVAL);
    }
    let stack_limit = t.tg.rlimits()[RLIMIT_STACK as usize].cur;
    // Linux allows a quarter of the stack limit for the strings, and at least 128 KiB.
    let mut budget = (stack_limit / 4).max(32 * PAGE_SIZE);
    let mut argv = read_strings(t, argv, &mut budget)?;
    let envp = read_strings(t, envp, &mut budget)?;
    let (location, execfn) = if path.is_empty() {
        let file = t.fds.get(dirfd)?;
        let location = file.location.clone().ok_or(Errno::EACCES)?;
        (location, format!("/dev/fd/{}", dirfd as i32).into_bytes())
    } else {
        let follow = flags & AT_SYMLINK_NOFOLLOW == 0;
        let location = lookup(t, dirfd, &path, follow)?;
        if !follow && location.dentry.inode.attr()?.file_type() == Some(FileType::Symlink) {
            return Err(Errno::ELOOP);
        }
        (location, path)
    };
    let find = |name: &[u8]| lookup(t, AT_FDCWD as u64, name, true);
    let (location, filename) = follow_interpreters(find, location, execfn.clone(), &mut argv)?;
    let creds = t.creds.for_exec();
    let loaded = t.kernel.load(
        &location,
        &LoadArgs {
            execfn: &execfn,
            argv: &argv,
            envp: &envp,
            creds: &creds,
            rlimits: *t.tg.rlimits(),
        },
    );
    let loaded = loaded.map_err(|e| {
        if let crate::kernel::Error::Platform(e) = &e {
            log::warn!("execve: {e}");
        }
        e.errno()
    })?;
    // The point of no return: the old image is gone, and so are the other threads.
    de_thread(t);
    t.mm = loaded.mm;
    t.commit_creds(creds);
    t.kernel.watch_address_space(&t.mm, &t.tg);
    // POSIX timers end with the image; alarm and the itimers carry on (setitimer(2)).
    t.tg.timers().posix.clear();
    t.regs = entry_regs(loaded.entry, loaded.sp);
    // The table stays the process's own (its POSIX locks survive exec, as in Linux); one
    // still shared with another process (CLONE_FILES) is unshared first.
    if Arc::strong_count(&t.fds) > 2 {
        t.fds = Arc::new(t.fds.fork());
    }
    t.fds.close_on_exec();
    reset_signal_handlers(t);
    // A new image has no alternate signal stack, and its memory is dumpable again.
    t.sigaltstack = Default::default();
    t.tg.dumpable
        .store(true, std::sync::atomic::Ordering::Relaxed);
    t.rseq = None;
    t.robust_list = (0, 0);
    t.clear_child_tid = 0;
    let exe = super::fs::path_of(t, &location);
    t.set_exe(String::from_utf8_lossy(&exe).into_owned(), location);
    let name = filename.rsplit(|&b| b == b'/').next().unwrap_or_default();
    t.set_comm(name);
    t.kernel.processes.execed(t.tg.pid);
    t.release_vfork_parent();
    Ok(0)
}

/// Follows `#!` lines: while the file is a script, runs its interpreter instead, with the
/// optional argument and the script's path in front of the original arguments (argv[0]
/// is dropped, as Linux does). Returns the program to load and the name it goes by.
pub(crate) fn follow_interpreters(
    find: impl Fn(&[u8]) -> Result<Location, Errno>,
    mut location: Location,
    mut filename: Vec<u8>,
    argv: &mut Vec<Vec<u8>>,
) -> Result<(Location, Vec<u8>), Errno> {
    for _ in 0..=MAX_INTERPRETER_DEPTH {
        let Some((interpreter, arg)) = read_shebang(&location)? else {
            return Ok((location, filename));
        };
        let mut new_argv = vec![interpreter.clone()];
        new_argv.extend(arg);
        new_argv.push(filename);
        new_argv.extend(argv.drain(..).skip(1));
        *argv = new_argv;
        location = find(&interpreter)?;
        filename = interpreter;
    }
    Err(Errno::ELOOP)
}

/// A `#!` line: the interpreter and its optional argument.
type Shebang = (Vec<u8>, Option<Vec<u8>>);

/// The interpreter and optional argument of a `#!` line, or None if the file is not a
/// script. The line is read up to 256 bytes (BINPRM_BUF_SIZE); an interpreter name cut off
/// by that limit is ENOEXEC.
fn read_shebang(location: &Location) -> Result<Option<Shebang>, Errno> {
    const BUF: usize = 256;
    let attr = location.dentry.inode.attr()?;
    if attr.file_type() != Some(FileType::Regular)
        || attr.mode & 0o111 == 0
        || location.mount.flags.noexec
    {
        return Err(Errno::EACCES);
    }
    let file = location.dentry.inode.clone().open(crate::vfs::O_RDONLY)?;
    let mut head = [0u8; BUF];
    let mut n = 0;
    while n < BUF {
        match file.read(n as u64, &mut head[n..])? {
            0 => break,
            got => n += got,
        }
    }
    let head = &head[..n];
    let Some(line) = head.strip_prefix(b"#!") else {
        return Ok(None);
    };
    let end = line.iter().position(|&b| b == b'\n');
    let line = &line[..end.unwrap_or(line.len())];
    let is_space = |b: &u8| *b == b' ' || *b == b'\t';
    let line: &[u8] = {
        let start = line.iter().position(|b| !is_space(b)).unwrap_or(line.len());
        let stop = line
            .iter()
            .rposition(|b| !is_space(b))
            .map_or(start, |p| p + 1);
        &line[start..stop.max(start)]
    };
    if line.is_empty() {
        return Err(Errno::ENOEXEC);
    }
    let name_end = line.iter().position(is_space).unwrap_or(line.len());
    if end.is_none() && name_end == line.len() && n == BUF {
        return Err(Errno::ENOEXEC);
    }
    let interpreter = line[..name_end].to_vec();
    let rest = &line[name_end..];
    let rest_start = rest.iter().position(|b| !is_space(b));
    let arg = rest_start.map(|s| rest[s..].to_vec());
    Ok(Some((interpreter, arg)))
}

/// execve's flush_signal_handlers: caught signals go back to their default action; ignored
/// ones stay ignored.
fn reset_signal_handlers(t: &Task) {
    const SIG_IGN: u64 = 1;
    for action in t.tg.actions().iter_mut() {
        let handler = if action.handler == SIG_IGN {
            SIG_IGN
        } else {
            0
        };
        *action = SigAction {
            handler,
            ..SigAction::default()
        };
    }
}

/// Linux's de_thread: every other thread of the process ends, and the exec'ing thread
/// becomes the leader (its tid becomes the pid).
fn de_thread(t: &mut Task) {
    let mut s = t.tg.signals();
    if s.threads.len() > 1 {
        s.exec = Some(t.tid);
        let others: Vec<i32> = s.threads.keys().copied().filter(|&x| x != t.tid).collect();
        for tid in others {
            s.recalc(tid);
            s.wake(tid);
        }
        while s.threads.len() > 1 && s.exit.is_none() {
            s =
                t.tg.stop_changed()
                    .wait(s)
                    .unwrap_or_else(|e| e.into_inner());
        }
        s.exec = None;
    }
    if t.tid != t.tg.pid {
        if let Some(me) = s.threads.remove(&t.tid) {
            s.threads.insert(t.tg.pid, me);
        }
        drop(s);
        t.kernel.processes.remove_thread(t.tid);
        t.tid = t.tg.pid;
        crate::kernel::set_current(Some(crate::kernel::Current {
            tid: t.tid,
            tg: t.tg.clone(),
        }));
    }
}

pub fn exit(t: &mut Task, a: &[u64; 6]) -> SysResult {
    // This thread only; the process ends with its last thread.
    t.exit = Some(ExitStatus::Exited(a[0] as u8));
    Ok(0)
}

pub fn exit_group(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let status = ExitStatus::Exited(a[0] as u8);
    t.tg.signals().start_group_exit(status, Some(t.tid));
    t.exit = Some(status);
    Ok(0)
}

const WNOHANG: u64 = 1;
const WUNTRACED: u64 = 2;
const WSTOPPED: u64 = 2;
const WEXITED: u64 = 4;
const WCONTINUED: u64 = 8;
const WNOWAIT: u64 = 0x100_0000;
const WNOTHREAD: u64 = 0x2000_0000;
const WALL: u64 = 0x4000_0000;
const WCLONE: u64 = 0x8000_0000;

/// The selection and treatment a wait asks for; `exited` is WEXITED (wait4 always).
fn wait_options(options: u64, exited: bool) -> WaitOptions {
    WaitOptions {
        no_hang: options & WNOHANG != 0,
        no_reap: options & WNOWAIT != 0,
        all: options & WALL != 0,
        clone_only: options & WCLONE != 0,
        exited,
        stopped: options & WSTOPPED != 0,
        continued: options & WCONTINUED != 0,
    }
}

/// The status word wait4 reports (see wait(2)'s W* macros).
fn wait_status(event: &ChildEvent) -> i32 {
    match *event {
        ChildEvent::Exited(exited) => match exited.status {
            ExitStatus::Exited(code) => (code as i32) << 8,
            ExitStatus::Signaled(sig) => sig & 0x7f,
        },
        ChildEvent::Stopped { signo, .. } => (signo << 8) | 0x7f,
        ChildEvent::Continued { .. } => 0xffff,
    }
}

fn rusage_of(event: &ChildEvent) -> Rusage {
    let ChildEvent::Exited(exited) = event else {
        return Rusage::default();
    };
    Rusage {
        utime: Timeval {
            tv_sec: exited.cpu.as_secs() as i64,
            tv_usec: exited.cpu.subsec_micros() as i64,
        },
        ..Rusage::default()
    }
}

pub fn wait4(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let [pid, status, options, rusage, ..] = *a;
    let pid = pid as i32;
    if options & !(WNOHANG | WUNTRACED | WCONTINUED | WNOTHREAD | WALL | WCLONE) != 0 {
        return Err(Errno::EINVAL);
    }
    let which = match pid {
        i32::MIN => return Err(Errno::ESRCH),
        -1 => WaitFor::Any,
        0 => WaitFor::Group(t.kernel.processes.pgid_of(t.tg.pid)?),
        p if p < 0 => WaitFor::Group(-p),
        p => WaitFor::Pid(p),
    };
    // As in Linux, the child is reaped before its status is written: a bad pointer is
    // EFAULT and the status is gone.
    let Some(event) = t
        .kernel
        .processes
        .wait(t.tg.pid, which, wait_options(options, true))?
    else {
        return Ok(0);
    };
    if status != 0 {
        t.mm.write_obj(status, &wait_status(&event))?;
    }
    if rusage != 0 {
        t.mm.write_obj(rusage, &rusage_of(&event))?;
    }
    Ok(event.pid() as u64)
}

/// The SIGCHLD part of `siginfo_t` that waitid fills (128 bytes in all).
#[repr(C)]
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
struct ChildInfo {
    signo: i32,
    errno: i32,
    code: i32,
    pad: i32,
    pid: i32,
    uid: u32,
    status: i32,
    pad2: i32,
    utime: i64,
    stime: i64,
    rest: [u8; 80],
}

pub fn waitid(t: &mut Task, a: &[u64; 6]) -> SysResult {
    const P_ALL: u64 = 0;
    const P_PID: u64 = 1;
    const P_PGID: u64 = 2;
    let [idtype, id, infop, options, rusage, _] = *a;
    let known = WNOHANG | WSTOPPED | WEXITED | WCONTINUED | WNOWAIT | WNOTHREAD | WALL | WCLONE;
    if options & !known != 0 || options & (WEXITED | WSTOPPED | WCONTINUED) == 0 {
        return Err(Errno::EINVAL);
    }
    let id = id as i32;
    let which = match idtype as u32 as u64 {
        P_ALL => WaitFor::Any,
        P_PID if id > 0 => WaitFor::Pid(id),
        P_PGID if id == 0 => WaitFor::Group(t.kernel.processes.pgid_of(t.tg.pid)?),
        P_PGID if id > 0 => WaitFor::Group(id),
        _ => return Err(Errno::EINVAL),
    };
    let wait = wait_options(options, options & WEXITED != 0);
    let found = t.kernel.processes.wait(t.tg.pid, which, wait)?;
    let mut info = <ChildInfo as FromZeros>::new_zeroed();
    if let Some(event) = &found {
        info.signo = SIGCHLD;
        info.pid = event.pid();
        (info.code, info.status) = match *event {
            ChildEvent::Exited(exited) => {
                info.uid = exited.uid;
                // In clock ticks (USER_HZ, 100 a second).
                info.utime = (exited.cpu.as_millis() / 10) as i64;
                match exited.status {
                    ExitStatus::Exited(code) => (signals::CLD_EXITED, code as i32),
                    ExitStatus::Signaled(sig) => (signals::CLD_KILLED, sig),
                }
            }
            // The sandbox runs every process as one user.
            ChildEvent::Stopped { signo, .. } => {
                info.uid = t.creds.uid;
                (signals::CLD_STOPPED, signo)
            }
            ChildEvent::Continued { .. } => {
                info.uid = t.creds.uid;
                (signals::CLD_CONTINUED, signals::SIGCONT)
            }
        };
    }
    if infop != 0 {
        t.mm.write_obj(infop, &info)?;
    }
    if rusage != 0 {
        let usage = found.as_ref().map(rusage_of).unwrap_or_default();
        t.mm.write_obj(rusage, &usage)?;
    }
    Ok(0)
}

pub fn getppid(t: &mut Task, _: &[u64; 6]) -> SysResult {
    // The first process's parent is outside its pid namespace, which Linux shows as 0.
    Ok(t.kernel.processes.parent_of(t.tg.pid) as u64)
}

/// A pid argument where 0 means the caller.
fn pid_or_self(t: &Task, pid: u64) -> Result<i32, Errno> {
    match pid as i32 {
        0 => Ok(t.tg.pid),
        p if p < 0 => Err(Errno::ESRCH),
        p => Ok(p),
    }
}

pub fn getpgid(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let pid = pid_or_self(t, a[0])?;
    Ok(t.kernel.processes.pgid_of(pid)? as u64)
}

pub fn getpgrp(t: &mut Task, _: &[u64; 6]) -> SysResult {
    Ok(t.kernel.processes.pgid_of(t.tg.pid)? as u64)
}

pub fn setpgid(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let (pid, pgid) = (a[0] as i32, a[1] as i32);
    t.kernel.processes.setpgid(t.tg.pid, pid, pgid)?;
    Ok(0)
}

pub fn getsid(t: &mut Task, a: &[u64; 6]) -> SysResult {
    let pid = pid_or_self(t, a[0])?;
    Ok(t.kernel.processes.sid_of(pid)? as u64)
}

pub fn setsid(t: &mut Task, _: &[u64; 6]) -> SysResult {
    Ok(t.kernel.processes.setsid(t.tg.pid)? as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_status_matches_the_w_macros() {
        let gone = |status| {
            wait_status(&ChildEvent::Exited(crate::kernel::processes::Exited {
                pid: 2,
                uid: 0,
                status,
                cpu: std::time::Duration::ZERO,
            }))
        };
        let exited = gone(ExitStatus::Exited(3));
        assert!(libc::WIFEXITED(exited));
        assert_eq!(libc::WEXITSTATUS(exited), 3);
        let stopped = wait_status(&ChildEvent::Stopped { pid: 2, signo: 19 });
        assert!(libc::WIFSTOPPED(stopped));
        assert_eq!(libc::WSTOPSIG(stopped), 19);
        assert!(libc::WIFCONTINUED(wait_status(&ChildEvent::Continued {
            pid: 2
        })));
        let killed = gone(ExitStatus::Signaled(9));
        assert!(libc::WIFSIGNALED(killed));
        assert_eq!(libc::WTERMSIG(killed), 9);
        assert_eq!(std::mem::size_of::<ChildInfo>(), 128);
        assert_eq!(std::mem::size_of::<Rusage>(), 144);
        assert_eq!(std::mem::size_of::<CloneArgs3>(), 88);
    }
}
