//! How guest code runs and traps.
//!
//! A [`Platform`] creates [`AddressSpace`]s (the guest's page mappings, backed by ranges of
//! one memory file) and [`Context`]s (a place to run one guest thread). The Sentry's task
//! loop is `Context::switch` → handle the [`Event`] → repeat. This crate knows registers,
//! faults and syscall numbers, nothing of Linux semantics beyond that.
//!
//! Back-ends: [`ptrace`] (PTRACE_SYSEMU stub processes) and [`kvm`] (a KVM virtual machine
//! whose ring 3 runs the guest).

use std::any::Any;

pub mod fd;
pub mod kvm;
pub mod process;
pub mod ptrace;
pub mod shm;

/// The guest's general-purpose registers, laid out as ptrace's `user_regs_struct`.
pub type Regs = libc::user_regs_struct;

/// Size of a page on x86_64.
pub const PAGE_SIZE: u64 = 4096;

/// Host mmap protection bits (`PROT_READ`, `PROT_WRITE`, `PROT_EXEC`).
pub type Prot = i32;

/// What stopped the guest and handed control back to the Sentry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The guest executed `syscall`: the number is in `orig_rax`, arguments in
    /// rdi, rsi, rdx, r10, r8, r9. The result is to be written to `rax`; `rip` already points
    /// past the instruction.
    Syscall,
    /// A memory access faulted (SIGSEGV or SIGBUS raised by the guest's own execution).
    Fault(SignalInfo),
    /// Any other signal the guest thread received: raised by its execution (SIGILL, SIGFPE,
    /// SIGTRAP: `code > 0`) or sent from outside the sandbox (`code <= 0`).
    Signal(SignalInfo),
    /// The switch was cut short before the guest trapped (an interrupt or a host job
    /// control stop); nothing happened in the guest that needs handling.
    Interrupted,
}

/// The parts of a host `siginfo_t` the Sentry needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignalInfo {
    pub signo: i32,
    /// `si_code`: > 0 when the kernel raised it for the guest's own execution.
    pub code: i32,
    /// `si_addr` for faults; 0 otherwise.
    pub addr: u64,
}

impl SignalInfo {
    /// True when the signal came from the guest's own execution (a fault, a trap, an
    /// illegal instruction) rather than from `kill`, a terminal or a timer.
    pub fn is_synchronous(&self) -> bool {
        let raised_by_cpu = matches!(
            self.signo,
            libc::SIGSEGV
                | libc::SIGBUS
                | libc::SIGILL
                | libc::SIGFPE
                | libc::SIGTRAP
                | libc::SIGSYS
        );
        raised_by_cpu && self.code > 0
    }
}

/// Host-side failures of the platform. None of these is caused by guest behaviour alone.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what}: {errno}")]
    Host {
        what: &'static str,
        errno: nix::errno::Errno,
    },
    #[error("the stub process {pid} died ({how})")]
    StubDied { pid: i32, how: String },
    #[error("address space used from a thread that does not trace its stub")]
    WrongThread,
    #[error("no free place for the stub page below the top of the address space")]
    NoStubAddress,
    #[error("the KVM guest stopped in a way it never should: {0}")]
    Guest(String),
}

impl Error {
    pub(crate) fn host(what: &'static str) -> impl FnOnce(nix::errno::Errno) -> Error {
        move |errno| Error::Host { what, errno }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// A way of running guest code.
pub trait Platform: Send + Sync {
    /// Short name, as given to `--platform`.
    fn name(&self) -> &'static str;
    /// The lowest address the guest may map.
    fn min_user_address(&self) -> u64 {
        0x10000
    }
    /// One past the highest address the guest may map.
    fn max_user_address(&self) -> u64;
    /// A new, empty address space.
    fn new_address_space(&self) -> Result<Box<dyn AddressSpace>>;
    /// A new context to run one guest thread.
    fn new_context(&self) -> Box<dyn Context>;
}

/// A host thread made ready to run another guest thread in an address space
/// ([`AddressSpace::new_thread`]), to be taken up by that thread's context
/// ([`Context::attach`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewThread(pub i32);

/// Something that makes a context's `switch` return soon ([`Event::Interrupted`] or a
/// spurious event), from any thread: a signal for the guest thread it runs has arrived.
pub trait Interrupt: Send + Sync {
    fn interrupt(&self);
}

/// A guest's page mappings. Every mapping is a range of the memory file.
pub trait AddressSpace: Send + Sync + Any {
    /// Maps `len` bytes of the memory file at `file_offset` to `addr`, replacing what was there.
    fn map_file(&self, addr: u64, len: u64, file_offset: u64, prot: Prot) -> Result<()>;
    /// Removes the mappings in `[addr, addr + len)`.
    fn unmap(&self, addr: u64, len: u64) -> Result<()>;
    /// Changes the protection of the mappings in `[addr, addr + len)`.
    fn protect(&self, addr: u64, len: u64, prot: Prot) -> Result<()>;
    /// Prepares a place for one more guest thread in this address space (clone of a
    /// thread, or of a process sharing the memory). Called by a thread that runs a context
    /// in this address space.
    fn new_thread(&self) -> Result<NewThread>;
    /// Calls `callback` (on another thread) if the address space dies from outside while it
    /// is in use, e.g. its host process is killed; not when it is dropped.
    fn watch_death(&self, callback: Box<dyn Fn() + Send + Sync>);
    /// CPU time spent running guest code in this address space, all its threads together;
    /// readable from any thread (for `ps` of another process).
    fn cpu_time(&self) -> std::time::Duration;
    fn as_any(&self) -> &dyn Any;
}

/// A place to run one guest thread, bound to the host thread that calls `switch`.
pub trait Context: Send {
    /// Runs the guest with `regs` in `space` until it traps, then stores its registers back in
    /// `regs`.
    fn switch(&mut self, space: &dyn AddressSpace, regs: &mut Regs) -> Result<Event>;
    /// CPU time the guest has spent running guest code in this context's address space.
    /// On ptrace that is the stub process's, all its threads together: the host shows
    /// one thread's clock only to its own process.
    fn cpu_time(&self) -> std::time::Duration;
    /// How much of the calling host thread's own CPU time went to running guest code: on
    /// KVM the Sentry thread itself runs the vCPU, so its thread clock includes the
    /// guest's time, which the Sentry must not count again as system time. Zero where the
    /// guest runs in another host thread (ptrace).
    fn thread_guest_time(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
    /// Takes up `thread` (made by [`AddressSpace::new_thread`]) as this context's guest
    /// thread in `space`; called by the host thread that will switch to it.
    fn attach(&mut self, space: &dyn AddressSpace, thread: NewThread) -> Result<()>;
    /// Lets go of this context's guest thread in `space` while the address space lives on
    /// for other guest threads (a thread exits, the others run).
    fn release(&mut self, space: &dyn AddressSpace);
    /// Something other threads can use to cut this context's `switch` short.
    fn interrupter(&self) -> std::sync::Arc<dyn Interrupt>;
    /// The guest thread's floating-point and vector state in the XSAVE layout Linux puts in
    /// signal frames (the user ABI of the XSTATE regset, `sw_reserved` filled).
    fn fp_state(&mut self) -> Result<Vec<u8>>;
    /// Replaces that state; `EINVAL` (as an error) if the host refuses it as malformed.
    fn set_fp_state(&mut self, state: &[u8]) -> Result<()>;
}
