//! The stub: the code a ptrace stub process runs, and how a stub process is made.
//!
//! The Sentry maps one page of stub code near the top of its own address space. A stub
//! process is a `fork` of the Sentry thread that will trace it; before it lets anything else
//! happen, the child closes every descriptor but the memory file, installs its seccomp
//! filter and jumps into the stub page, whose code unmaps everything else (so the stub
//! starts clean: nothing mapped but the stub page) and stops with `int3` for its tracer.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::OnceLock;

use nix::errno::Errno;
use nix::sys::mman::{mmap_anonymous, mprotect, MapFlags, ProtFlags};
use nix::sys::ptrace;
use nix::unistd::Pid;
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use super::wait_stop;
use crate::{Error, Result, PAGE_SIZE};

/// Where the memory file sits in every stub's descriptor table.
pub(crate) const STUB_MEMORY_FD: i32 = 0;

/// One past the highest user address on x86_64 Linux (TASK_SIZE_MAX).
const TASK_SIZE: u64 = 0x7fff_ffff_f000;

/// The first address tried for the stub page; lower pages are tried while this is taken.
const STUB_FIRST_TRY: u64 = 0x7fff_ffff_0000;

/// Offset in the stub page of `syscall; int3`, where injected system calls run.
pub(crate) const SYSCALL_SITE: u64 = 47;
/// Offset of a `pause` loop: where a stub thread waits untraced (a new thread before its
/// tracer takes it up; a group leader whose guest thread exited while others run).
pub(crate) const PAUSE_LOOP: u64 = 52;
/// Offset of `syscall` for an injected thread clone: the parent stops on the `int3` after
/// it (rip = CLONE_SITE + 8), the child jumps to the pause loop.
pub(crate) const CLONE_SITE: u64 = 61;
/// The clone flags of a new stub thread: one more thread of the stub process.
pub(crate) const THREAD_FLAGS: u64 = (libc::CLONE_VM
    | libc::CLONE_FS
    | libc::CLONE_FILES
    | libc::CLONE_SIGHAND
    | libc::CLONE_THREAD
    | libc::CLONE_SYSVSEM) as u64;

/// The stub page, mapped once into the Sentry at `start`.
#[derive(Debug)]
pub(crate) struct StubPage {
    pub start: u64,
}

impl StubPage {
    /// The stub page of this process, mapped on first use.
    pub fn get() -> Result<&'static StubPage> {
        static PAGE: OnceLock<std::result::Result<StubPage, Errno>> = OnceLock::new();
        match PAGE.get_or_init(StubPage::map) {
            Ok(page) => Ok(page),
            Err(Errno::EEXIST) => Err(Error::NoStubAddress),
            Err(errno) => Err(Error::Host {
                what: "mapping the stub page",
                errno: *errno,
            }),
        }
    }

    fn map() -> std::result::Result<StubPage, Errno> {
        // Step down from the top until a free page is found, as the guest's usable space ends
        // below the stub; 4096 tries cover the host stack and vDSO wherever ASLR put them.
        let mut start = STUB_FIRST_TRY;
        for _ in 0..4096 {
            let addr = std::num::NonZeroUsize::new(start as usize).ok_or(Errno::EINVAL)?;
            let len = std::num::NonZeroUsize::new(PAGE_SIZE as usize).ok_or(Errno::EINVAL)?;
            // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping, so this cannot
            // clobber memory the Sentry uses.
            let res = unsafe {
                mmap_anonymous(
                    Some(addr),
                    len,
                    ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                    MapFlags::MAP_PRIVATE | MapFlags::MAP_FIXED_NOREPLACE,
                )
            };
            match res {
                Ok(ptr) if ptr.as_ptr() as u64 == start => {
                    let code = stub_code(start);
                    // SAFETY: the page was just mapped read-write at `start` and is PAGE_SIZE
                    // long; the code is shorter than a page.
                    unsafe {
                        std::ptr::copy_nonoverlapping(
                            code.as_ptr(),
                            ptr.as_ptr().cast::<u8>(),
                            code.len(),
                        )
                    };
                    // SAFETY: changes only the protection of the page mapped above.
                    unsafe {
                        mprotect(ptr, len.get(), ProtFlags::PROT_READ | ProtFlags::PROT_EXEC)?
                    };
                    return Ok(StubPage { start });
                }
                Ok(_) | Err(Errno::EEXIST) => start -= PAGE_SIZE,
                Err(errno) => return Err(errno),
            }
        }
        Err(Errno::EEXIST)
    }
}

/// Machine code of the stub page at `start`:
///
/// ```text
///  0: mov $SYS_munmap, %eax; xor %edi, %edi; movabs $start, %rsi; syscall
/// 19: mov $SYS_munmap, %eax; movabs $end, %rdi; movabs $(TASK_SIZE - end), %rsi; syscall
/// 46: int3                        the stub is clean: stop for the tracer
/// 47: syscall; int3; jmp 47       SYSCALL_SITE, where injected system calls run
/// 52: mov $SYS_pause, %eax; syscall; jmp 52          PAUSE_LOOP
/// 61: syscall; test %rax, %rax; jz 52; int3          CLONE_SITE
/// ```
fn stub_code(start: u64) -> Vec<u8> {
    let end = start + PAGE_SIZE;
    let mut code = Vec::with_capacity(64);
    code.extend_from_slice(&[0xb8, 0x0b, 0, 0, 0]); // mov $SYS_munmap, %eax
    code.extend_from_slice(&[0x31, 0xff]); // xor %edi, %edi
    code.extend_from_slice(&[0x48, 0xbe]); // movabs $start, %rsi
    code.extend_from_slice(&start.to_le_bytes());
    code.extend_from_slice(&[0x0f, 0x05]); // syscall
    code.extend_from_slice(&[0xb8, 0x0b, 0, 0, 0]); // mov $SYS_munmap, %eax
    code.extend_from_slice(&[0x48, 0xbf]); // movabs $end, %rdi
    code.extend_from_slice(&end.to_le_bytes());
    code.extend_from_slice(&[0x48, 0xbe]); // movabs $(TASK_SIZE - end), %rsi
    code.extend_from_slice(&(TASK_SIZE - end).to_le_bytes());
    code.extend_from_slice(&[0x0f, 0x05]); // syscall
    code.push(0xcc); // int3: the stub is clean and waits for its tracer
    debug_assert_eq!(code.len() as u64, SYSCALL_SITE);
    code.extend_from_slice(&[0x0f, 0x05]); // syscall_site: syscall
    code.push(0xcc); // int3
    code.extend_from_slice(&[0xeb, 0xfb]); // jmp syscall_site
    debug_assert_eq!(code.len() as u64, PAUSE_LOOP);
    code.extend_from_slice(&[0xb8, libc::SYS_pause as u8, 0, 0, 0]); // mov $SYS_pause, %eax
    code.extend_from_slice(&[0x0f, 0x05]); // syscall
    code.extend_from_slice(&[0xeb, 0xf7]); // jmp pause_loop
    debug_assert_eq!(code.len() as u64, CLONE_SITE);
    code.extend_from_slice(&[0x0f, 0x05]); // syscall (clone)
    code.extend_from_slice(&[0x48, 0x85, 0xc0]); // test %rax, %rax
    code.extend_from_slice(&[0x74, 0xf0]); // jz pause_loop (the child)
    code.push(0xcc); // int3 (the parent)
    code
}

/// The stub's own seccomp filter. It matters only for system calls the stub really executes:
/// the ones the tracer injects (mapping the memory file, unmapping, protecting) and the
/// legacy vsyscall page's time calls, which the host kernel emulates without a ptrace stop
/// (guest system calls stop under PTRACE_SYSEMU before seccomp runs). Anything else traps
/// with SIGSYS, which the tracer sees: the Sentry serves vsyscalls itself, and a SIGSYS
/// during an injection kills the stub.
pub(crate) fn stub_filter() -> Result<BpfProgram> {
    let bad = |_| Error::Host {
        what: "building the stub's seccomp filter",
        errno: Errno::EINVAL,
    };
    let mmap_rule = SeccompRule::new(vec![
        SeccompCondition::new(
            3,
            SeccompCmpArgLen::Dword,
            SeccompCmpOp::Eq,
            (libc::MAP_SHARED | libc::MAP_FIXED) as u64,
        )
        .map_err(bad)?,
        SeccompCondition::new(
            4,
            SeccompCmpArgLen::Dword,
            SeccompCmpOp::Eq,
            STUB_MEMORY_FD as u64,
        )
        .map_err(bad)?,
    ])
    .map_err(bad)?;
    let clone_rule = SeccompRule::new(vec![SeccompCondition::new(
        0,
        SeccompCmpArgLen::Qword,
        SeccompCmpOp::Eq,
        THREAD_FLAGS,
    )
    .map_err(bad)?])
    .map_err(bad)?;
    let rules = [
        (libc::SYS_mmap, vec![mmap_rule]),
        (libc::SYS_munmap, vec![]),
        (libc::SYS_mprotect, vec![]),
        // New stub threads, their idle loop, and a stub thread's own end.
        (libc::SYS_clone, vec![clone_rule]),
        (libc::SYS_pause, vec![]),
        (libc::SYS_exit, vec![]),
    ]
    .into_iter()
    .collect();
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Trap,
        SeccompAction::Allow,
        TargetArch::x86_64,
    )
    .map_err(|_| Error::Host {
        what: "building the stub's seccomp filter",
        errno: Errno::EINVAL,
    })?;
    filter.try_into().map_err(|_| Error::Host {
        what: "compiling the stub's seccomp filter",
        errno: Errno::EINVAL,
    })
}

/// Forks a stub process traced by the calling thread and waits until it is clean and stopped.
pub(crate) fn spawn_stub(memory: &OwnedFd, filter: &BpfProgram, page: &StubPage) -> Result<Pid> {
    let (ready_r, ready_w) = nix::unistd::pipe().map_err(Error::host("creating a pipe"))?;
    let parent = nix::unistd::getpid();
    let memory_fd = memory.as_raw_fd();
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr() as *mut libc::sock_filter,
    };
    let rseq = current_rseq();
    // SAFETY: the child runs only async-signal-safe raw system calls on memory that the
    // fork copied (no allocation, no locks) and then jumps into the stub page, never
    // returning into Rust code.
    let pid = match unsafe { libc::fork() } {
        -1 => return Err(Error::host("forking a stub process")(Errno::last())),
        0 => unsafe {
            libc::close(ready_w.as_raw_fd());
            stub_child(
                ready_r.as_raw_fd(),
                memory_fd,
                parent.as_raw(),
                &prog,
                page.start,
                rseq,
            )
        },
        pid => Pid::from_raw(pid),
    };
    drop(ready_r);
    let options = ptrace::Options::PTRACE_O_EXITKILL | ptrace::Options::PTRACE_O_TRACESYSGOOD;
    let seized = ptrace::seize(pid, options);
    // Let the child go on whatever happened: if the seize failed, it is killed below.
    let _ = nix::unistd::write(&ready_w, &[1]);
    drop(ready_w);
    if let Err(errno) = seized {
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = wait_stop(pid);
        return Err(Error::Host {
            what: "tracing the stub process (PTRACE_SEIZE)",
            errno,
        });
    }
    // The first int3, after the stub has unmapped everything else, leaves rip at the
    // syscall site.
    super::wait_for_trap(pid, page.start + SYSCALL_SITE, "starting the stub")?;
    Ok(pid)
}

/// The signature glibc registers rseq areas with on x86 (RSEQ_SIG).
const RSEQ_SIG: u32 = 0x5305_3053;
const RSEQ_FLAG_UNREGISTER: u32 = 1;

extern "C" {
    /// glibc (2.35 and later): where the thread's rseq area is, relative to the thread
    /// pointer, and its size (0 when rseq is not registered).
    static __rseq_offset: isize;
    static __rseq_size: u32;
}

/// The calling thread's rseq registration as glibc made it: (area, registered length).
fn current_rseq() -> Option<(u64, u32)> {
    // SAFETY: plain reads of two glibc variables that are set once at start-up.
    let (offset, size) = unsafe { (__rseq_offset, __rseq_size) };
    if size == 0 {
        return None;
    }
    let mut thread_pointer: u64 = 0;
    // SAFETY: ARCH_GET_FS writes one u64 to the pointer given.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_arch_prctl,
            0x1003,
            &mut thread_pointer as *mut u64,
        )
    };
    if ret != 0 {
        return None;
    }
    // The kernel only accepts the length the area was registered with: glibc registers at
    // least the original 32-byte struct rseq.
    Some((thread_pointer.wrapping_add(offset as u64), size.max(32)))
}

/// The forked child. Only raw system calls: the parent may be multithreaded.
///
/// # Safety
/// Must be called only in a freshly forked child; it never returns.
unsafe fn stub_child(
    ready: i32,
    memory_fd: i32,
    parent: i32,
    prog: &libc::sock_fprog,
    stub_start: u64,
    rseq: Option<(u64, u32)>,
) -> ! {
    // SAFETY (whole body): raw system calls on values owned by this child; see the caller.
    unsafe {
        // Die with the thread that traces us, even before the seize takes effect.
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        if libc::getppid() != parent {
            libc::_exit(1);
        }
        // Wait until the parent has seized us: then int3 stops instead of killing.
        let mut byte = 0u8;
        while libc::read(ready, (&mut byte as *mut u8).cast(), 1) < 0
            && *libc::__errno_location() == libc::EINTR
        {}
        // Traced now: PTRACE_O_EXITKILL kills us with the Sentry. The thread that forked us
        // may end before the process does (its guest thread exits while others run).
        libc::prctl(libc::PR_SET_PDEATHSIG, 0, 0, 0, 0);
        libc::prctl(libc::PR_SET_NAME, c"runsc-stub".as_ptr(), 0, 0, 0);
        // fork kept glibc's rseq registration of the parent thread; once its memory is
        // unmapped the kernel's next rseq update would fault and kill the stub.
        if let Some((area, len)) = rseq {
            if libc::syscall(libc::SYS_rseq, area, len, RSEQ_FLAG_UNREGISTER, RSEQ_SIG) != 0 {
                libc::_exit(4);
            }
        }
        let empty: libc::sigset_t = std::mem::zeroed();
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        if libc::dup2(memory_fd, STUB_MEMORY_FD) < 0 {
            libc::_exit(2);
        }
        // Every Sentry descriptor but the memory file must go (close_range: Linux 5.9).
        if libc::syscall(
            libc::SYS_close_range,
            STUB_MEMORY_FD as u32 + 1,
            u32::MAX,
            0u32,
        ) != 0
        {
            libc::_exit(5);
        }
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
            || libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0,
                prog as *const libc::sock_fprog,
            ) != 0
        {
            libc::_exit(3);
        }
        let entry: extern "C" fn() -> ! = std::mem::transmute(stub_start as usize);
        entry()
    }
}
