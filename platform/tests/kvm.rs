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
    ".globl kvm_guest_ud, kvm_guest_int3, kvm_guest_loop, kvm_guest_end",
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
    let platform = KvmPlatform::new(fd.try_clone().expect("dup")).expect("kvm platform");
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
