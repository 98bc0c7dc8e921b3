//! The KVM platform against a tiny guest program, through the same AddressSpace and
//! Context calls the Sentry makes. Skipped (with a line saying why) where /dev/kvm cannot
//! be opened.

use std::os::fd::{AsFd, OwnedFd};

use platform::kvm::KvmPlatform;
use platform::{Event, Platform, Regs, SignalInfo};

// The guest: a few labelled steps, each ending in a trap the test checks. Copied into the
// memory file at CODE_OFFSET and mapped at CODE.
std::arch::global_asm!(
    ".globl kvm_guest_start, kvm_guest_fault, kvm_guest_rofault, kvm_guest_fp",
    ".globl kvm_guest_ud, kvm_guest_int3, kvm_guest_loop, kvm_guest_count, kvm_guest_end",
    "kvm_guest_start:",
    "mov $39, %eax",
    "mov $1, %edi",
    "mov $2, %esi",
    "mov $3, %edx",
    "mov $4, %r10d",
    "mov $5, %r8d",
    "mov $6, %r9d",
    "syscall",
    // The result goes back as the next call's first argument.
    "mov %rax, %rdi",
    "mov $60, %eax",
    "syscall",
    "kvm_guest_fault:",
    "mov 0x600008, %rax",
    "kvm_guest_rofault:",
    "movq $5, 0x400010",
    "kvm_guest_fp:",
    "movq %xmm0, %rax",
    "mov $0x1122334455667788, %rbx",
    "movq %rbx, %xmm1",
    "syscall",
    "kvm_guest_ud:",
    "ud2",
    "kvm_guest_int3:",
    "int3",
    "kvm_guest_loop:",
    "mov $1000, %eax",
    "syscall",
    "mov $1, %eax",
    "xor %ecx, %ecx",
    "cpuid",
    "mov %rcx, %rdi",
    "mov $7, %eax",
    "xor %ecx, %ecx",
    "cpuid",
    "mov %rbx, %rsi",
    "xor %ecx, %ecx",
    "xgetbv",
    "mov %rax, %rdx",
    "mov $1001, %eax",
    "syscall",
    "mov $1000, %eax",
    "syscall",
    "jmp kvm_guest_loop",
    // Counts in a vector and a general register, and reports with a system call the
    // counts and the word at %fs:0: state that must follow the guest thread from vCPU to
    // vCPU.
    "kvm_guest_count:",
    "paddq %xmm2, %xmm3",
    "add %r12, %r13",
    "movq %xmm3, %rdi",
    "mov %fs:0, %rsi",
    "mov $1002, %eax",
    "syscall",
    "jmp kvm_guest_count",
    "kvm_guest_end:",
    options(att_syntax)
);

extern "C" {
    static kvm_guest_start: u8;
    static kvm_guest_fault: u8;
    static kvm_guest_rofault: u8;
    static kvm_guest_fp: u8;
    static kvm_guest_ud: u8;
    static kvm_guest_int3: u8;
    static kvm_guest_loop: u8;
    static kvm_guest_count: u8;
    static kvm_guest_end: u8;
}

const CODE: u64 = 0x40_0000;
const STACK: u64 = 0x50_0000;
const CODE_OFFSET: u64 = 0x1_0000;
const STACK_OFFSET: u64 = 0x2_0000;

/// Guest address of a label.
fn at(label: &u8) -> u64 {
    // SAFETY: only the addresses of the statics are taken, never their contents.
    let start = unsafe { &kvm_guest_start } as *const u8 as u64;
    CODE + (label as *const u8 as u64 - start)
}

fn guest_code() -> Vec<u8> {
    // SAFETY: both labels are in the same .text blob; its bytes are readable code.
    unsafe {
        let start = &kvm_guest_start as *const u8;
        let end = &kvm_guest_end as *const u8;
        std::slice::from_raw_parts(start, end as usize - start as usize).to_vec()
    }
}

/// A memory file with the guest's code in it, or None (and why) without /dev/kvm.
fn setup() -> Option<(KvmPlatform, OwnedFd)> {
    setup_with_vcpus(usize::MAX)
}

/// The same, with at most `vcpus` vCPUs.
fn setup_with_vcpus(vcpus: usize) -> Option<(KvmPlatform, OwnedFd)> {
    if let Err(e) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
    {
        println!("skipped: /dev/kvm cannot be opened ({e})");
        return None;
    }
    let fd = nix::sys::memfd::memfd_create(c"kvm-test", nix::sys::memfd::MFdFlags::empty())
        .expect("memfd");
    nix::unistd::ftruncate(&fd, 16 << 20).expect("ftruncate");
    nix::sys::uio::pwrite(&fd, &guest_code(), CODE_OFFSET as i64).expect("writing the code");
    let platform =
        KvmPlatform::with_vcpu_limit(fd.try_clone().expect("dup"), vcpus).expect("kvm platform");
    Some((platform, fd))
}

fn regs_at(rip: u64) -> Regs {
    // SAFETY: user_regs_struct is plain integers.
    let mut regs: Regs = unsafe { std::mem::zeroed() };
    regs.rip = rip;
    regs.rsp = STACK + 0x1000;
    regs.eflags = 0x202;
    regs.cs = 0x33;
    regs.ss = 0x2b;
    regs
}

const RX: i32 = libc::PROT_READ | libc::PROT_EXEC;
const RW: i32 = libc::PROT_READ | libc::PROT_WRITE;

#[test]
fn guest_syscalls_faults_and_fp_state() {
    let Some((platform, _fd)) = setup() else {
        return;
    };
    let space = platform.new_address_space().expect("address space");
    space
        .map_file(CODE, 0x1000, CODE_OFFSET, RX)
        .expect("map code");
    space
        .map_file(STACK, 0x1000, STACK_OFFSET, RW)
        .expect("map stack");
    let mut ctx = platform.new_context();
    let mut regs = regs_at(at(unsafe { &kvm_guest_start }));

    // A system call with six arguments, and its result seen by the guest.
    assert_eq!(ctx.switch(&*space, &mut regs).unwrap(), Event::Syscall);
    assert_eq!(regs.orig_rax, 39);
    let args = [regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8, regs.r9];
    assert_eq!(args, [1, 2, 3, 4, 5, 6]);
    assert_eq!(
        regs.rcx, regs.rip,
        "rcx holds the return address, as after syscall"
    );
    assert_eq!(regs.cs, 0x33);
    regs.rax = 0xbeef;
    assert_eq!(ctx.switch(&*space, &mut regs).unwrap(), Event::Syscall);
    assert_eq!(regs.orig_rax, 60);
    assert_eq!(regs.rdi, 0xbeef);

    // A read of an unmapped address.
    let event = ctx.switch(&*space, &mut regs).unwrap();
    assert_eq!(
        event,
        Event::Fault(SignalInfo {
            signo: libc::SIGSEGV,
            code: 1,
            addr: 0x60_0008
        })
    );
    assert_eq!(regs.rip, at(unsafe { &kvm_guest_fault }));
    assert_eq!(
        regs.rsp,
        STACK + 0x1000,
        "the user stack, not the exception stack"
    );

    // Mapping the page and resuming retries the instruction: it now reads the memory.
    space
        .map_file(0x60_0000, 0x1000, STACK_OFFSET, libc::PROT_READ)
        .unwrap();
    // A write to the read-only code page.
    let event = ctx.switch(&*space, &mut regs).unwrap();
    assert_eq!(
        event,
        Event::Fault(SignalInfo {
            signo: libc::SIGSEGV,
            code: 2,
            addr: 0x40_0010
        })
    );
    assert_eq!(regs.rip, at(unsafe { &kvm_guest_rofault }));

    // FP state: xmm0 set from the host is seen by the guest; xmm1 set by the guest is seen
    // by the host; the layout is Linux's (sw_reserved magic).
    let mut fp = ctx.fp_state().expect("fp state");
    assert!(fp.len() >= 576, "XSAVE area of {} bytes", fp.len());
    assert_eq!(&fp[464..468], &0x4650_5853u32.to_le_bytes());
    fp[160..168].copy_from_slice(&0xfeed_f00d_u64.to_le_bytes());
    ctx.set_fp_state(&fp).expect("set fp state");
    regs.rip = at(unsafe { &kvm_guest_fp });
    assert_eq!(ctx.switch(&*space, &mut regs).unwrap(), Event::Syscall);
    assert_eq!(regs.rax as i64, -(libc::ENOSYS as i64));
    assert_eq!(regs.rdi, 0xbeef);
    let fp = ctx.fp_state().unwrap();
    assert_eq!(&fp[176..184], &0x1122_3344_5566_7788u64.to_le_bytes());

    // ud2 and int3.
    let event = ctx.switch(&*space, &mut regs).unwrap();
    assert_eq!(
        event,
        Event::Signal(SignalInfo {
            signo: libc::SIGILL,
            code: 2,
            addr: at(unsafe { &kvm_guest_ud })
        })
    );
    regs.rip = at(unsafe { &kvm_guest_int3 });
    let event = ctx.switch(&*space, &mut regs).unwrap();
    assert!(matches!(
        event,
        Event::Signal(SignalInfo {
            signo: libc::SIGTRAP,
            ..
        })
    ));
    assert_eq!(
        regs.rip,
        at(unsafe { &kvm_guest_loop }),
        "int3 is a trap: rip after it"
    );
    assert!(space.cpu_time() > std::time::Duration::ZERO);
}

#[test]
fn unmap_and_protect_take_effect_on_a_running_vcpu() {
    let Some((platform, _fd)) = setup() else {
        return;
    };
    let space = platform.new_address_space().expect("address space");
    space.map_file(CODE, 0x1000, CODE_OFFSET, RX).unwrap();
    space.map_file(STACK, 0x1000, STACK_OFFSET, RW).unwrap();
    space.map_file(0x60_0000, 0x1000, STACK_OFFSET, RW).unwrap();
    let mut ctx = platform.new_context();
    // The guest reads 0x600008 once (its TLB now holds it), then it is unmapped: the next
    // read must fault.
    let mut regs = regs_at(at(unsafe { &kvm_guest_fault }));
    regs.rip = at(unsafe { &kvm_guest_fault });
    let event = ctx.switch(&*space, &mut regs).unwrap();
    // It read the page, then wrote the code page.
    assert!(matches!(
        event,
        Event::Fault(SignalInfo {
            code: 2,
            addr: 0x40_0010,
            ..
        })
    ));
    space.unmap(0x60_0000, 0x1000).unwrap();
    regs.rip = at(unsafe { &kvm_guest_fault });
    let event = ctx.switch(&*space, &mut regs).unwrap();
    assert!(matches!(
        event,
        Event::Fault(SignalInfo {
            code: 1,
            addr: 0x60_0008,
            ..
        })
    ));
    // Mapped read-write then made read-only: a write faults with ACCERR.
    space
        .map_file(0x40_0000, 0x1000, CODE_OFFSET, RX | libc::PROT_WRITE)
        .unwrap();
    regs.rip = at(unsafe { &kvm_guest_rofault });
    let event = ctx.switch(&*space, &mut regs).unwrap();
    // Writable: the store went through, the next step is the fp syscall.
    assert_eq!(event, Event::Syscall);
    space.protect(0x40_0000, 0x1000, RX).unwrap();
    regs.rip = at(unsafe { &kvm_guest_rofault });
    let event = ctx.switch(&*space, &mut regs).unwrap();
    assert!(matches!(
        event,
        Event::Fault(SignalInfo {
            code: 2,
            addr: 0x40_0010,
            ..
        })
    ));
}

#[test]
fn interrupt_stops_a_spinning_guest() {
    let Some((platform, fd)) = setup() else {
        return;
    };
    // A guest that spins without trapping.
    nix::sys::uio::pwrite(fd.as_fd(), &[0xeb, 0xfe], (CODE_OFFSET + 0x800) as i64).unwrap();
    let space = platform.new_address_space().unwrap();
    space.map_file(CODE, 0x1000, CODE_OFFSET, RX).unwrap();
    let mut ctx = platform.new_context();
    let kick = ctx.interrupter();
    let kicker = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(100));
        kick.interrupt();
    });
    let mut regs = regs_at(CODE + 0x800);
    let start = std::time::Instant::now();
    assert_eq!(ctx.switch(&*space, &mut regs).unwrap(), Event::Interrupted);
    assert!(start.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(regs.rip, CODE + 0x800);
    kicker.join().unwrap();
}

#[test]
fn syscall_round_trip_cost() {
    let Some((platform, _fd)) = setup() else {
        return;
    };
    let space = platform.new_address_space().unwrap();
    space.map_file(CODE, 0x1000, CODE_OFFSET, RX).unwrap();
    let mut ctx = platform.new_context();
    let mut regs = regs_at(at(unsafe { &kvm_guest_loop }));
    let n = 2000;
    let in_run = space.cpu_time();
    let start = std::time::Instant::now();
    for _ in 0..n {
        assert_eq!(ctx.switch(&*space, &mut regs).unwrap(), Event::Syscall);
        regs.rax = 0;
    }
    let per = start.elapsed() / n;
    let run = (space.cpu_time() - in_run) / n;
    assert_eq!(ctx.switch(&*space, &mut regs).unwrap(), Event::Syscall);
    println!(
        "guest cpuid 1 ecx {:#x}, 7 ebx {:#x}, xcr0 {:#x} ({})",
        regs.rdi, regs.rsi, regs.rdx, regs.orig_rax
    );
    println!("kvm: {per:?} per guest syscall round trip, {run:?} of it in KVM_RUN");
}

/// Offsets of xmm2 and xmm3 in the XSAVE layout.
const XMM2: usize = 160 + 2 * 16;
const XMM3: usize = 160 + 3 * 16;
/// Where each counting context's %fs points: a word per context in the stack page.
const FS_WORDS: u64 = 0x100;

fn read_u64(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
}

/// A counting guest thread `i`: it adds `i + 1` to xmm3 and `1000 * (i + 1)` to r13 each
/// round, and reads the word `0xf5_0000 + i` at %fs:0.
struct Counter {
    ctx: Box<dyn platform::Context>,
    regs: Regs,
    step: u64,
}

impl Counter {
    fn new(platform: &KvmPlatform, i: u64) -> Counter {
        let mut ctx = platform.new_context();
        let step = i + 1;
        // Before the context ever ran: no vCPU holds its state yet.
        let mut fp = ctx.fp_state().expect("initial fp state");
        fp[XMM2..XMM2 + 16].copy_from_slice(&(step as u128).to_le_bytes());
        fp[XMM3..XMM3 + 16].fill(0);
        // XSTATE_BV: the SSE registers are in use (else XRSTOR loads their initial state).
        fp[512] |= 0b10;
        ctx.set_fp_state(&fp).expect("set fp state");
        let mut regs = regs_at(at(unsafe { &kvm_guest_count }));
        regs.r12 = 1000 * step;
        regs.r13 = 0;
        regs.fs_base = STACK + FS_WORDS + 8 * i;
        Counter { ctx, regs, step }
    }

    /// One round: the guest counts once more; checks what it reports after `rounds`.
    fn round(&mut self, space: &dyn platform::AddressSpace, rounds: u64, i: u64) {
        let event = self.ctx.switch(space, &mut self.regs).expect("switch");
        assert_eq!(event, Event::Syscall, "context {i}, round {rounds}");
        assert_eq!(self.regs.orig_rax, 1002);
        assert_eq!(self.regs.rdi, rounds * self.step, "xmm3 of context {i}");
        assert_eq!(
            self.regs.r13,
            rounds * 1000 * self.step,
            "r13 of context {i}"
        );
        assert_eq!(self.regs.rsi, 0xf5_0000 + i, "%fs:0 of context {i}");
        self.regs.rax = 0;
    }
}

fn counting_space(
    platform: &KvmPlatform,
    fd: &OwnedFd,
    contexts: u64,
) -> Box<dyn platform::AddressSpace> {
    for i in 0..contexts {
        let word = (0xf5_0000 + i).to_le_bytes();
        let at = STACK_OFFSET + FS_WORDS + 8 * i;
        nix::sys::uio::pwrite(fd.as_fd(), &word, at as i64).unwrap();
    }
    let space = platform.new_address_space().unwrap();
    space.map_file(CODE, 0x1000, CODE_OFFSET, RX).unwrap();
    space.map_file(STACK, 0x1000, STACK_OFFSET, RW).unwrap();
    space
}

#[test]
fn more_contexts_than_vcpus_keep_their_registers_and_fp_state() {
    let Some((platform, fd)) = setup_with_vcpus(2) else {
        return;
    };
    let space = counting_space(&platform, &fd, 5);
    let mut counters: Vec<Counter> = (0..5).map(|i| Counter::new(&platform, i)).collect();
    for rounds in 1..=20 {
        // Five contexts in turn on two vCPUs: each takes one from a context that waits.
        for (i, c) in counters.iter_mut().enumerate() {
            c.round(&*space, rounds, i as u64);
        }
        // Each context's FP state as the Sentry sees it, whether a vCPU still holds it or
        // it was saved when the vCPU was taken.
        for (i, c) in counters.iter_mut().enumerate() {
            let fp = c.ctx.fp_state().unwrap();
            assert_eq!(read_u64(&fp, XMM3), rounds * c.step, "context {i}");
        }
    }
    assert!(
        platform.vcpu_steals() >= 20 * 3,
        "{} steals",
        platform.vcpu_steals()
    );
    // Writing the FP state of contexts with and without a vCPU: both take effect.
    for c in &mut counters {
        let mut fp = c.ctx.fp_state().unwrap();
        fp[XMM3..XMM3 + 16].fill(0);
        c.ctx.set_fp_state(&fp).unwrap();
        c.regs.r13 = 0;
    }
    for rounds in 1..=3 {
        for (i, c) in counters.iter_mut().enumerate() {
            c.round(&*space, rounds, i as u64);
        }
    }
    // A state KVM would refuse is refused at once, even with no vCPU to try it on.
    let c = &mut counters[0];
    assert!(c.ctx.fp_state().is_ok());
    let mut fp = c.ctx.fp_state().unwrap();
    fp[24..28].copy_from_slice(&u32::MAX.to_le_bytes()); // MXCSR reserved bits
    assert!(c.ctx.set_fp_state(&fp).is_err());
}

#[test]
fn threads_share_vcpus_and_wait_when_all_run() {
    let Some((platform, fd)) = setup_with_vcpus(2) else {
        return;
    };
    let threads = 6;
    let space = counting_space(&platform, &fd, threads);
    std::thread::scope(|s| {
        for i in 0..threads {
            let (platform, space) = (&platform, &*space);
            s.spawn(move || {
                let mut c = Counter::new(platform, i);
                for rounds in 1..=300 {
                    c.round(space, rounds, i);
                }
            });
        }
    });
    assert!(platform.vcpu_steals() > 0);
}

#[test]
fn kicks_follow_a_context_from_vcpu_to_vcpu() {
    let Some((platform, fd)) = setup_with_vcpus(1) else {
        return;
    };
    // A guest that spins without trapping.
    nix::sys::uio::pwrite(fd.as_fd(), &[0xeb, 0xfe], (CODE_OFFSET + 0x800) as i64).unwrap();
    let space = counting_space(&platform, &fd, 2);
    let mut a = Counter::new(&platform, 0);
    let mut b = Counter::new(&platform, 1);
    a.round(&*space, 1, 0);
    // B takes the only vCPU; A, kicked meanwhile, sees it at its next switch and B does not.
    b.round(&*space, 1, 1);
    a.ctx.interrupter().interrupt();
    b.round(&*space, 2, 1);
    let rip = a.regs.rip;
    assert_eq!(
        a.ctx.switch(&*space, &mut a.regs).unwrap(),
        Event::Interrupted
    );
    assert_eq!(a.regs.rip, rip);
    a.round(&*space, 2, 0);
    b.round(&*space, 3, 1);

    // A spins on the only vCPU until kicked; B, wanting a vCPU meanwhile, waits for it.
    let kick = a.ctx.interrupter();
    let spin = std::time::Duration::from_millis(300);
    std::thread::scope(|s| {
        let space = &*space;
        let spinner = s.spawn(move || {
            let mut regs = regs_at(CODE + 0x800);
            let event = a.ctx.switch(space, &mut regs).unwrap();
            (event, regs.rip)
        });
        std::thread::sleep(spin / 3);
        let waiter = s.spawn(move || {
            let start = std::time::Instant::now();
            b.round(space, 4, 1);
            start.elapsed()
        });
        std::thread::sleep(spin);
        kick.interrupt();
        assert_eq!(spinner.join().unwrap(), (Event::Interrupted, CODE + 0x800));
        let waited = waiter.join().unwrap();
        assert!(waited >= spin / 2, "B ran after {waited:?}, while A spun");
    });
}
