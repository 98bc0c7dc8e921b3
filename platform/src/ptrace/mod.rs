//! The ptrace platform: guest code runs in stub processes stopped at every system call by
//! `PTRACE_SYSEMU`.
//!
//! One stub process per address space, traced by the Sentry thread that created it; that
//! thread and the stub are pinned to one CPU, because a trap that crosses CPUs costs five
//! times more here (platform-limits.md §2). Mappings are installed by injecting `mmap`,
//! `munmap` and `mprotect` into the stopped stub at its syscall site.

use std::any::Any;
use std::cell::Cell;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use nix::errno::Errno;
use nix::sched::{sched_getaffinity, sched_getcpu, sched_setaffinity, CpuSet};
use nix::sys::ptrace;
use nix::sys::signal::{kill, Signal};
use nix::unistd::{gettid, Pid};
use seccompiler::BpfProgram;

use crate::{AddressSpace, Context, Error, Event, Prot, Regs, Result, SignalInfo};

pub mod floor;
mod stub;

use stub::{StubPage, STUB_MEMORY_FD, SYSCALL_SITE};

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
        let tracer = gettid();
        let injector = match ptrace::getregs(pid) {
            Ok(regs) => regs,
            Err(errno) => {
                reap(pid);
                return Err(Error::Host {
                    what: "reading the new stub's registers",
                    errno,
                });
            }
        };
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Ok(Box::new(PtraceAddressSpace {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            pid,
            tracer,
            syscall_site: self.stub.start + SYSCALL_SITE,
            injector: Mutex::new(injector),
            dead: AtomicBool::new(false),
        }))
    }

    fn new_context(&self) -> Box<dyn Context> {
        Box::new(PtraceContext {
            bound: None,
            written: None,
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
/// Its thread is stopped whenever the Sentry runs; system calls are injected into it by the
/// tracer thread only (`injector` serialises them and holds the register template).
pub struct PtraceAddressSpace {
    /// Unique for the life of the Sentry (pids can be reused; this cannot).
    id: u64,
    pid: Pid,
    tracer: Pid,
    syscall_site: u64,
    injector: Mutex<Regs>,
    dead: AtomicBool,
}

impl PtraceAddressSpace {
    /// The host pid of the stub process (for tests and diagnostics).
    pub fn stub_pid(&self) -> i32 {
        self.pid.as_raw()
    }

    /// Runs one system call in the stub and returns its result. The stub's registers are
    /// saved before and restored after, so the guest's context is untouched.
    fn inject(&self, nr: i64, args: [u64; 6]) -> Result<u64> {
        if gettid() != self.tracer {
            return Err(Error::WrongThread);
        }
        let mut template = self.injector.lock().unwrap_or_else(|e| e.into_inner());
        let pid = self.pid;
        let saved = ptrace::getregs(pid).map_err(Error::host("saving the stub's registers"))?;
        let mut regs = *template;
        regs.rip = self.syscall_site;
        regs.rax = nr as u64;
        regs.orig_rax = u64::MAX;
        regs.rdi = args[0];
        regs.rsi = args[1];
        regs.rdx = args[2];
        regs.r10 = args[3];
        regs.r8 = args[4];
        regs.r9 = args[5];
        ptrace::setregs(pid, regs).map_err(Error::host("setting the stub's registers"))?;
        ptrace::cont(pid, None).map_err(Error::host("resuming the stub"))?;
        // The int3 after the syscall instruction stops the stub with rip just past it.
        let after = match wait_for_trap(
            pid,
            self.syscall_site + 3,
            "running an injected system call",
        ) {
            Ok(regs) => regs,
            Err(e) => {
                self.dead.store(true, Ordering::Relaxed);
                return Err(e);
            }
        };
        *template = after;
        ptrace::setregs(pid, saved).map_err(Error::host("restoring the stub's registers"))?;
        Ok(after.rax)
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

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl Drop for PtraceAddressSpace {
    fn drop(&mut self) {
        if !self.dead.load(Ordering::Relaxed) {
            reap(self.pid);
        }
    }
}

/// Runs one guest thread: the stub thread of the address space it is switched into.
pub struct PtraceContext {
    /// The address space and stub thread this context last ran, if any.
    bound: Option<(u64, Pid)>,
    /// The registers as they are in the stub thread now, to write back only what changed.
    written: Option<Regs>,
}

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
    fn cpu_time(&self) -> std::time::Duration {
        let Some((_, tid)) = self.bound else {
            return std::time::Duration::ZERO;
        };
        nix::time::ClockId::pid_cpu_clock_id(tid)
            .and_then(nix::time::clock_gettime)
            .map(|t| std::time::Duration::new(t.tv_sec() as u64, t.tv_nsec() as u32))
            .unwrap_or_default()
    }

    fn switch(&mut self, space: &dyn AddressSpace, regs: &mut Regs) -> Result<Event> {
        let Some(space) = space.as_any().downcast_ref::<PtraceAddressSpace>() else {
            return Err(Error::Host {
                what: "switching to an address space of another platform",
                errno: Errno::EINVAL,
            });
        };
        if space.tracer != gettid() {
            return Err(Error::WrongThread);
        }
        let tid = space.pid;
        if self.bound != Some((space.id, tid)) {
            self.bound = Some((space.id, tid));
            self.written = None;
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
