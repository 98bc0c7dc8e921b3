//! The ptrace platform: guest code runs in stub processes stopped at every system call by
//! `PTRACE_SYSEMU`.
//!
//! One stub process per address space, traced by the Sentry thread that created it; that
//! thread and the stub are pinned to one CPU, because a trap that crosses CPUs costs five
//! times more here (platform-limits.md §2). Mappings are installed by injecting `mmap`,
//! `munmap` and `mprotect` into the stopped stub at its syscall site.

use std::any::Any;
use std::cell::Cell;
use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use nix::errno::Errno;
use nix::sched::{sched_getaffinity, sched_getcpu, sched_setaffinity, CpuSet};
use nix::sys::ptrace;
use nix::sys::signal::{kill, Signal};
use nix::unistd::{gettid, Pid};
use seccompiler::BpfProgram;

use crate::{
    AddressSpace, Context, Error, Event, Interrupt, NewThread, Prot, Regs, Result, SignalInfo,
};

mod death;
pub mod floor;
mod stub;

use stub::{StubPage, CLONE_SITE, PAUSE_LOOP, STUB_MEMORY_FD, SYSCALL_SITE, THREAD_FLAGS};

/// The host signal that cuts a guest thread's run short ([`Interrupt`]): ignored by
/// default, so it can never hurt a stub thread that is not traced at that moment.
const KICK_SIGNAL: i32 = libc::SIGCHLD;

/// Byte offset of `rax` in `struct user` (for PTRACE_POKEUSER).
const RAX_OFFSET: usize = std::mem::offset_of!(libc::user_regs_struct, rax);

/// The ptrace platform.
pub struct PtracePlatform {
    memory: OwnedFd,
    filter: BpfProgram,
    stub: &'static StubPage,
}

impl PtracePlatform {
    /// A platform whose stubs map `memory`, the Sentry's memory file.
    pub fn new(memory: OwnedFd) -> Result<PtracePlatform> {
        Ok(PtracePlatform {
            memory,
            filter: stub::stub_filter()?,
            stub: StubPage::get()?,
        })
    }
}

impl crate::Platform for PtracePlatform {
    fn name(&self) -> &'static str {
        "ptrace"
    }

    fn max_user_address(&self) -> u64 {
        self.stub.start
    }

    fn new_address_space(&self) -> Result<Box<dyn AddressSpace>> {
        pin_current_thread();
        let pid = stub::spawn_stub(&self.memory, &self.filter, self.stub)?;
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Ok(Box::new(PtraceAddressSpace {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            pid,
            threads: Mutex::new(HashMap::from([(gettid(), pid)])),
            stub_start: self.stub.start,
            dead: AtomicBool::new(false),
            watch: Mutex::new(None),
        }))
    }

    fn new_context(&self) -> Box<dyn Context> {
        Box::new(PtraceContext {
            bound: None,
            written: None,
            kick: Arc::new(Kick::default()),
            pending_fp: None,
        })
    }
}

thread_local! {
    static PINNED: Cell<bool> = const { Cell::new(false) };
}

/// Pins the calling thread to the CPU it runs on, once; stubs it forks inherit the pin.
fn pin_current_thread() {
    if PINNED.get() {
        return;
    }
    PINNED.set(true);
    let Ok(cpu) = sched_getcpu() else { return };
    // Respect a narrower affinity the user gave (taskset): the current CPU is inside it.
    if sched_getaffinity(Pid::from_raw(0)).is_err() {
        return;
    }
    let mut set = CpuSet::new();
    if set.set(cpu).is_ok() {
        let _ = sched_setaffinity(Pid::from_raw(0), &set);
    }
}

/// Why a traced thread stopped or ended, as `waitpid` tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// A system-call stop (PTRACE_O_TRACESYSGOOD marks them).
    Syscall,
    /// A signal-delivery stop for this signal number.
    Signal(i32),
    /// A PTRACE_EVENT_* stop (for a seized thread, group stops are PTRACE_EVENT_STOP).
    Event(i32),
    Exited(i32),
    Killed(i32),
}

/// Waits for `pid` to stop or end. Decoded here rather than by nix so that stops for
/// real-time signals, which nix cannot name, are reported too.
pub(crate) fn wait_stop(pid: Pid) -> std::result::Result<Stop, Errno> {
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes only the status integer it is given.
        let ret = unsafe { libc::waitpid(pid.as_raw(), &mut status, libc::__WALL) };
        if ret < 0 {
            match Errno::last() {
                Errno::EINTR => continue,
                errno => return Err(errno),
            }
        }
        return Ok(if libc::WIFEXITED(status) {
            Stop::Exited(libc::WEXITSTATUS(status))
        } else if libc::WIFSIGNALED(status) {
            Stop::Killed(libc::WTERMSIG(status))
        } else if libc::WIFSTOPPED(status) {
            let sig = libc::WSTOPSIG(status);
            match status >> 16 {
                0 if sig == libc::SIGTRAP | 0x80 => Stop::Syscall,
                0 => Stop::Signal(sig),
                event => Stop::Event(event),
            }
        } else {
            continue; // WIFCONTINUED
        });
    }
}

/// Waits until the stub stops on its own `int3` with `rip` at `expected_rip` and returns its
/// registers then. A SIGTRAP sent from outside (wrong address or not from the kernel) or
/// another asynchronous signal is dropped; a fault means the stub is broken, so it is
/// killed and reported dead rather than resumed into the same fault forever.
pub(crate) fn wait_for_trap(pid: Pid, expected_rip: u64, what: &'static str) -> Result<Regs> {
    loop {
        match wait_stop(pid).map_err(Error::host(what))? {
            Stop::Signal(signo) => {
                let info = ptrace::getsiginfo(pid).map_err(Error::host(what))?;
                let regs = ptrace::getregs(pid).map_err(Error::host(what))?;
                let own_trap = signo == libc::SIGTRAP
                    && info.si_code == libc::SI_KERNEL
                    && regs.rip == expected_rip;
                if own_trap {
                    return Ok(regs);
                }
                let fault = SignalInfo {
                    signo,
                    code: info.si_code,
                    addr: 0,
                };
                if fault.is_synchronous() {
                    reap(pid);
                    return Err(Error::StubDied {
                        pid: pid.as_raw(),
                        how: format!("signal {signo} at {:#x} while {what}", regs.rip),
                    });
                }
                ptrace::cont(pid, None).map_err(Error::host(what))?;
            }
            Stop::Event(_) | Stop::Syscall => ptrace::cont(pid, None).map_err(Error::host(what))?,
            Stop::Exited(code) => {
                return Err(Error::StubDied {
                    pid: pid.as_raw(),
                    how: format!("exited with status {code} while {what}"),
                })
            }
            Stop::Killed(signo) => {
                return Err(Error::StubDied {
                    pid: pid.as_raw(),
                    how: format!("killed by signal {signo} while {what}"),
                })
            }
        }
    }
}

/// Kills and reaps a stub.
fn reap(pid: Pid) {
    let _ = kill(pid, Signal::SIGKILL);
    while let Ok(stop) = wait_stop(pid) {
        if matches!(stop, Stop::Exited(_) | Stop::Killed(_)) {
            return;
        }
    }
}

/// One stub process: a guest address space.
///
/// Each guest thread that runs in it has a stub thread of its own, traced by the Sentry
/// thread that runs that guest thread (`threads`, keyed by tracer). A stub thread is
/// stopped whenever its Sentry thread works, so that thread injects system calls into its
/// own stub thread: mappings made through any thread hold for all.
pub struct PtraceAddressSpace {
    /// Unique for the life of the Sentry (pids can be reused; this cannot).
    id: u64,
    /// The stub process (its first thread).
    pid: Pid,
    /// Stub threads by the Sentry thread that traces each.
    threads: Mutex<HashMap<Pid, Pid>>,
    stub_start: u64,
    dead: AtomicBool,
    /// The death watch's token (see death.rs), if one was asked for.
    watch: Mutex<Option<u64>>,
}

impl PtraceAddressSpace {
    /// The host pid of the stub process (for tests and diagnostics).
    pub fn stub_pid(&self) -> i32 {
        self.pid.as_raw()
    }

    /// The stub thread the calling Sentry thread traces here.
    fn own_thread(&self) -> Result<Pid> {
        let threads = self.threads.lock().unwrap_or_else(|e| e.into_inner());
        threads.get(&gettid()).copied().ok_or(Error::WrongThread)
    }

    /// Runs one system call in the caller's stub thread at `site` and returns its result;
    /// the thread stops on the `int3` that leaves rip at `trap`. The thread's registers are
    /// saved before and restored after, so the guest's context is untouched.
    fn inject_at(&self, site: u64, trap: u64, nr: i64, args: [u64; 6]) -> Result<u64> {
        let tid = self.own_thread()?;
        let saved = ptrace::getregs(tid).map_err(Error::host("saving the stub's registers"))?;
        let regs = Regs {
            rip: self.stub_start + site,
            rax: nr as u64,
            orig_rax: u64::MAX,
            rdi: args[0],
            rsi: args[1],
            rdx: args[2],
            r10: args[3],
            r8: args[4],
            r9: args[5],
            // Whatever flags the guest left (a trap flag) must not follow the injection.
            eflags: 0x202,
            ..saved
        };
        ptrace::setregs(tid, regs).map_err(Error::host("setting the stub's registers"))?;
        ptrace::cont(tid, None).map_err(Error::host("resuming the stub"))?;
        let after = match wait_for_trap(
            tid,
            self.stub_start + trap,
            "running an injected system call",
        ) {
            Ok(regs) => regs,
            Err(e) => {
                self.dead.store(true, Ordering::Relaxed);
                return Err(e);
            }
        };
        ptrace::setregs(tid, saved).map_err(Error::host("restoring the stub's registers"))?;
        Ok(after.rax)
    }

    fn inject(&self, nr: i64, args: [u64; 6]) -> Result<u64> {
        self.inject_at(SYSCALL_SITE, SYSCALL_SITE + 3, nr, args)
    }

    fn inject_checked(&self, what: &'static str, nr: i64, args: [u64; 6]) -> Result<()> {
        let ret = self.inject(nr, args)? as i64;
        if (-4095..0).contains(&ret) {
            return Err(Error::Host {
                what,
                errno: Errno::from_raw(-ret as i32),
            });
        }
        Ok(())
    }
}

impl AddressSpace for PtraceAddressSpace {
    fn map_file(&self, addr: u64, len: u64, file_offset: u64, prot: Prot) -> Result<()> {
        let flags = (libc::MAP_SHARED | libc::MAP_FIXED) as u64;
        let args = [
            addr,
            len,
            prot as u64,
            flags,
            STUB_MEMORY_FD as u64,
            file_offset,
        ];
        self.inject_checked("mapping memory into the stub", libc::SYS_mmap, args)
    }

    fn unmap(&self, addr: u64, len: u64) -> Result<()> {
        let args = [addr, len, 0, 0, 0, 0];
        self.inject_checked("unmapping memory in the stub", libc::SYS_munmap, args)
    }

    fn protect(&self, addr: u64, len: u64, prot: Prot) -> Result<()> {
        let args = [addr, len, prot as u64, 0, 0, 0];
        self.inject_checked("protecting memory in the stub", libc::SYS_mprotect, args)
    }

    fn watch_death(&self, callback: Box<dyn Fn() + Send + Sync>) {
        let token = death::watch(self.pid, callback);
        let old = std::mem::replace(
            &mut *self.watch.lock().unwrap_or_else(|e| e.into_inner()),
            token,
        );
        if let Some(old) = old {
            death::unwatch(old);
        }
    }

    fn new_thread(&self) -> Result<NewThread> {
        let args = [THREAD_FLAGS, 0, 0, 0, 0, 0];
        let ret = self.inject_at(CLONE_SITE, CLONE_SITE + 8, libc::SYS_clone, args)? as i64;
        if ret <= 0 {
            return Err(Error::Host {
                what: "starting a stub thread",
                errno: Errno::from_raw(-ret as i32),
            });
        }
        Ok(NewThread(ret as i32))
    }

    fn cpu_time(&self) -> std::time::Duration {
        process_cpu_time(self.pid)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl Drop for PtraceAddressSpace {
    fn drop(&mut self) {
        if let Some(token) = self.watch.lock().unwrap_or_else(|e| e.into_inner()).take() {
            death::unwatch(token);
        }
        if !self.dead.load(Ordering::Relaxed) {
            reap(self.pid);
        }
    }
}

/// The CPU clock of the stub process `pid` belongs to (0 if it cannot be read).
fn process_cpu_time(pid: Pid) -> std::time::Duration {
    nix::time::ClockId::pid_cpu_clock_id(pid)
        .and_then(nix::time::clock_gettime)
        .map(|t| std::time::Duration::new(t.tv_sec() as u64, t.tv_nsec() as u32))
        .unwrap_or_default()
}

fn ptrace_space(space: &dyn AddressSpace) -> Result<&PtraceAddressSpace> {
    space
        .as_any()
        .downcast_ref::<PtraceAddressSpace>()
        .ok_or(Error::Host {
            what: "switching to an address space of another platform",
            errno: Errno::EINVAL,
        })
}

/// Runs one guest thread: the stub thread of the address space it is switched into.
pub struct PtraceContext {
    /// The address space and stub thread this context last ran, if any.
    bound: Option<(u64, Pid)>,
    /// The registers as they are in the stub thread now, to write back only what changed.
    written: Option<Regs>,
    kick: Arc<Kick>,
    /// FP state set before the context first ran (a child's, copied from its parent),
    /// written to the stub thread when it does.
    pending_fp: Option<Vec<u8>>,
}

/// Interrupts a context by sending its stub thread [`KICK_SIGNAL`]: a running guest stops
/// at once; a stopped one stops again as soon as it is resumed.
#[derive(Debug, Default)]
struct Kick {
    /// (stub process, stub thread) the context runs now.
    target: Mutex<Option<(Pid, Pid)>>,
}

impl Interrupt for Kick {
    fn interrupt(&self) {
        if let Some((pid, tid)) = *self.target.lock().unwrap_or_else(|e| e.into_inner()) {
            // SAFETY: tgkill only sends a signal; a thread that has gone is ESRCH.
            unsafe { libc::syscall(libc::SYS_tgkill, pid.as_raw(), tid.as_raw(), KICK_SIGNAL) };
        }
    }
}

/// PTRACE_GETREGSET or PTRACE_SETREGSET of the XSAVE area of `tid` through `len` bytes at
/// `buf`; returns the length the kernel used.
fn xstate_regset(
    tid: Pid,
    request: libc::c_uint,
    buf: *mut u8,
    len: usize,
) -> std::result::Result<usize, Errno> {
    let mut iov = libc::iovec {
        iov_base: buf.cast(),
        iov_len: len,
    };
    // SAFETY: the kernel reads or writes at most iov_len bytes at buf, which the caller's
    // buffer holds, and updates iov_len.
    let ret = unsafe {
        libc::ptrace(
            request,
            tid.as_raw(),
            NT_X86_XSTATE as usize,
            &mut iov as *mut libc::iovec,
        )
    };
    if ret < 0 {
        return Err(Errno::last());
    }
    Ok(iov.iov_len)
}

/// PTRACE_GETREGSET/SETREGSET's note type for the XSAVE area.
const NT_X86_XSTATE: libc::c_int = 0x202;
/// Room for any XSAVE area the host may have (AVX-512 with AMX tiles is about 11 KiB).
const XSTATE_MAX: usize = 16384;

impl PtraceContext {
    fn write_regs(&mut self, tid: Pid, regs: &Regs) -> Result<()> {
        match &self.written {
            Some(old) if old == regs => {}
            Some(old)
                if Regs {
                    rax: regs.rax,
                    ..*old
                } == *regs =>
            {
                // Only the result changed, the common case after a system call: one
                // POKEUSER (0.6 µs) instead of SETREGS (1.6 µs), platform-limits.md §2.
                ptrace::write_user(tid, RAX_OFFSET as ptrace::AddressType, regs.rax as i64)
                    .map_err(Error::host("writing the guest's rax"))?;
            }
            _ => {
                ptrace::setregs(tid, *regs).map_err(Error::host("writing the guest's registers"))?
            }
        }
        self.written = Some(*regs);
        Ok(())
    }

    fn read_regs(&mut self, tid: Pid, regs: &mut Regs) -> Result<()> {
        *regs = ptrace::getregs(tid).map_err(Error::host("reading the guest's registers"))?;
        self.written = Some(*regs);
        Ok(())
    }
}

impl Context for PtraceContext {
    fn attach(&mut self, space: &dyn AddressSpace, thread: NewThread) -> Result<()> {
        let space = ptrace_space(space)?;
        let tid = Pid::from_raw(thread.0);
        pin_current_thread();
        // The stub thread runs where its tracer runs (it was made on the creator's CPU).
        if let Ok(set) = sched_getaffinity(Pid::from_raw(0)) {
            let _ = sched_setaffinity(tid, &set);
        }
        let options = ptrace::Options::PTRACE_O_EXITKILL | ptrace::Options::PTRACE_O_TRACESYSGOOD;
        ptrace::seize(tid, options).map_err(Error::host("tracing a new stub thread"))?;
        ptrace::interrupt(tid).map_err(Error::host("stopping a new stub thread"))?;
        loop {
            match wait_stop(tid).map_err(Error::host("waiting for a new stub thread"))? {
                Stop::Event(_) => break,
                Stop::Signal(_) | Stop::Syscall => {
                    ptrace::cont(tid, None).map_err(Error::host("resuming a stub thread"))?
                }
                Stop::Exited(_) | Stop::Killed(_) => {
                    return Err(Error::StubDied {
                        pid: tid.as_raw(),
                        how: "ended before its tracer took it up".into(),
                    })
                }
            }
        }
        space
            .threads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(gettid(), tid);
        Ok(())
    }

    fn release(&mut self, space: &dyn AddressSpace) {
        let Ok(space) = ptrace_space(space) else {
            return;
        };
        let Ok(tid) = space.own_thread() else { return };
        if space.dead.load(Ordering::Relaxed) {
            return;
        }
        if tid == space.pid {
            // The process's first thread must stay while it has others (Linux keeps a
            // group leader that exits as a zombie): it idles untraced.
            if let Ok(regs) = ptrace::getregs(tid) {
                let idle = Regs {
                    rip: space.stub_start + PAUSE_LOOP,
                    orig_rax: u64::MAX,
                    eflags: 0x202,
                    ..regs
                };
                let _ = ptrace::setregs(tid, idle);
            }
            let _ = ptrace::detach(tid, None);
        } else if let Ok(regs) = ptrace::getregs(tid) {
            // Any other stub thread ends with its guest thread.
            let exit = Regs {
                rip: space.stub_start + SYSCALL_SITE,
                rax: libc::SYS_exit as u64,
                rdi: 0,
                orig_rax: u64::MAX,
                eflags: 0x202,
                ..regs
            };
            if ptrace::setregs(tid, exit).is_ok() && ptrace::cont(tid, None).is_ok() {
                while let Ok(stop) = wait_stop(tid) {
                    match stop {
                        Stop::Exited(_) | Stop::Killed(_) => break,
                        _ => {
                            if ptrace::cont(tid, None).is_err() {
                                break;
                            }
                        }
                    }
                }
            }
        }
        space
            .threads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&gettid());
        *self.kick.target.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.bound = None;
        self.written = None;
    }

    fn interrupter(&self) -> Arc<dyn Interrupt> {
        self.kick.clone()
    }

    fn fp_state(&mut self) -> Result<Vec<u8>> {
        let Some((_, tid)) = self.bound else {
            return Err(Error::WrongThread);
        };
        let mut buf = vec![0u8; XSTATE_MAX];
        let len = xstate_regset(tid, libc::PTRACE_GETREGSET, buf.as_mut_ptr(), buf.len())
            .map_err(Error::host("reading the guest's FP state"))?;
        buf.truncate(len);
        Ok(buf)
    }

    fn set_fp_state(&mut self, state: &[u8]) -> Result<()> {
        let Some((_, tid)) = self.bound else {
            self.pending_fp = Some(state.to_vec());
            return Ok(());
        };
        // SETREGSET only reads the buffer, whatever the pointer's mutability says.
        xstate_regset(
            tid,
            libc::PTRACE_SETREGSET,
            state.as_ptr().cast_mut(),
            state.len(),
        )
        .map_err(Error::host("writing the guest's FP state"))?;
        Ok(())
    }

    fn cpu_time(&self) -> std::time::Duration {
        let Some((_, tid)) = self.bound else {
            return std::time::Duration::ZERO;
        };
        process_cpu_time(tid)
    }

    fn switch(&mut self, space: &dyn AddressSpace, regs: &mut Regs) -> Result<Event> {
        let space = ptrace_space(space)?;
        let tid = space.own_thread()?;
        if self.bound != Some((space.id, tid)) {
            self.bound = Some((space.id, tid));
            self.written = None;
            *self.kick.target.lock().unwrap_or_else(|e| e.into_inner()) = Some((space.pid, tid));
        }
        if let Some(fp) = self.pending_fp.take() {
            self.set_fp_state(&fp)?;
        }
        self.write_regs(tid, regs)?;
        ptrace::sysemu(tid, None).map_err(Error::host("resuming the guest (PTRACE_SYSEMU)"))?;
        let stop = wait_stop(tid).map_err(Error::host("waiting for the guest"))?;
        let how = match stop {
            Stop::Syscall => {
                self.read_regs(tid, regs)?;
                return Ok(Event::Syscall);
            }
            Stop::Signal(signo) => {
                let info =
                    ptrace::getsiginfo(tid).map_err(Error::host("reading the guest's signal"))?;
                // SAFETY: reading si_addr is memory-safe for every signal; the value means
                // something only for faults and SIGSYS (for kill() it overlaps si_pid).
                let addr = unsafe { info.si_addr() } as u64;
                self.read_regs(tid, regs)?;
                let info = SignalInfo {
                    signo,
                    code: info.si_code,
                    addr,
                };
                let fault = signo == libc::SIGSEGV || signo == libc::SIGBUS;
                return Ok(if fault && info.is_synchronous() {
                    Event::Fault(info)
                } else {
                    Event::Signal(info)
                });
            }
            Stop::Event(_) => {
                // A group stop (someone sent the stub SIGSTOP): the guest did nothing.
                self.read_regs(tid, regs)?;
                return Ok(Event::Interrupted);
            }
            Stop::Exited(code) => format!("exited with status {code}"),
            Stop::Killed(signo) => format!("killed by signal {signo}"),
        };
        space.dead.store(true, Ordering::Relaxed);
        Err(Error::StubDied {
            pid: tid.as_raw(),
            how,
        })
    }
}
