//! The KVM platform: guest code runs in ring 3 of a KVM virtual machine, under page tables
//! the platform keeps for each address space; every `syscall`, exception and kick exits
//! to the host thread that runs the vCPU.
//!
//! One VM per sandbox. The Sentry's memory file is the guest's physical memory (memory
//! slots over it, GPA = file offset, added a gigabyte at a time as mappings reach it). The
//! page tables live in a memory file of the platform's own ([`tables`]). `LSTAR` and every
//! IDT vector lead to a tiny stub that stores to a guest-physical page no slot covers
//! ([`guest::EXIT_GPA`]): KVM reports that as KVM_EXIT_MMIO, the address says which entry
//! it was. Registers travel through kvm_run's sync regs, and the return to ring 3 (an
//! emulated sysret or iret) is the host writing the user rip/rsp/rflags/cs/ss back.
//!
//! vCPUs are few (one GDT/TSS/stack page each in the fixed region) and guest threads many:
//! a context keeps the vCPU it last ran on, and one that needs a vCPU when all are made
//! takes it from a context not running guest code, moving that one's FP state out
//! ([`vcpu`]).

use std::any::Any;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use kvm_bindings::{
    kvm_msr_entry, kvm_regs, kvm_segment, kvm_sregs, kvm_userspace_memory_region, kvm_xcrs,
    kvm_xsave, CpuId, Msrs,
};
use kvm_ioctls::{Kvm, SyncReg, VcpuExit, VmFd};
use nix::errno::Errno;

use crate::{
    AddressSpace, Context, Error, Event, Interrupt, NewThread, Prot, Regs, Result, SignalInfo,
};

pub mod guest;
pub mod pagetable;
mod tables;
mod vcpu;

use guest::*;
use pagetable::{PageTables, Stale};
use tables::{HostMapping, TablePool, VmTables};
use vcpu::{set_region, GuestThread, HeldVcpu, Vcpu, VcpuPool, XsaveRegion};

/// The host signal that kicks a vCPU thread out of KVM_RUN. SIGURG is ignored by default
/// and used by nothing else in runsc-rs; the platform gives it an empty handler (with
/// SA_RESTART) so it is delivered, which makes KVM_RUN return EINTR.
pub const KICK_SIGNAL: i32 = libc::SIGURG;

/// Memory-file slots are added this much at a time, as mappings reach them: one slot over
/// a whole sparse terabyte would make KVM allocate its per-page metadata (gigabytes under
/// a shadow MMU) up front.
const MEMORY_CHUNK: u64 = 1 << 30;

/// MSR numbers.
const MSR_STAR: u32 = 0xc000_0081;
const MSR_LSTAR: u32 = 0xc000_0082;
const MSR_CSTAR: u32 = 0xc000_0083;
const MSR_SFMASK: u32 = 0xc000_0084;
const MSR_KERNEL_GS_BASE: u32 = 0xc000_0102;

const CR0_PE: u64 = 1 << 0;
const CR0_MP: u64 = 1 << 1;
const CR0_ET: u64 = 1 << 4;
const CR0_NE: u64 = 1 << 5;
const CR0_WP: u64 = 1 << 16;
const CR0_AM: u64 = 1 << 18;
const CR0_PG: u64 = 1 << 31;
const CR4_PAE: u64 = 1 << 5;
const CR4_OSFXSR: u64 = 1 << 9;
const CR4_OSXMMEXCPT: u64 = 1 << 10;
const CR4_FSGSBASE: u64 = 1 << 16;
const CR4_OSXSAVE: u64 = 1 << 18;
const EFER_SCE: u64 = 1 << 0;
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;
const EFER_NXE: u64 = 1 << 11;

/// RFLAGS bits user code may hold (Linux's FIX_EFLAGS plus IF): never IOPL, VM or the
/// virtual-interrupt bits.
const USER_FLAGS: u64 = 0x0025_4dd5 | 0x200;
/// Flags `syscall` clears on entry (Linux's SFMASK: TF DF IF IOPL AC NT).
const SFMASK: u64 = 0x4_7700;

/// Where the legacy vsyscall page is in every x86_64 process.
const VSYSCALL_PAGE: u64 = 0xffff_ffff_ff60_0000;

/// What a KVM call failed at.
fn kvm_err(what: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> Error {
    move |e| Error::Host {
        what,
        errno: Errno::from_raw(e.errno()),
    }
}

/// The KVM platform.
pub struct KvmPlatform {
    vm: Arc<Vm>,
}

/// One sandbox's VM and what all its address spaces and vCPUs share.
pub(crate) struct Vm {
    fd: VmFd,
    /// The Sentry's memory file, mapped again here as the memory slots' backing.
    memory: HostMapping,
    _memory_fd: OwnedFd,
    /// Which MEMORY_CHUNKs of it have a slot.
    memory_slots: Mutex<Vec<bool>>,
    /// The platform's fixed pages (stub, IDT, per-vCPU GDT/TSS/stack, upper-half tables).
    fixed: HostMapping,
    tables: Mutex<TablePool>,
    cpuid: CpuId,
    cr4: u64,
    xcr0: u64,
    /// Size of the XSAVE area for `xcr0` (standard format), as Linux's signal frames have.
    xstate_size: usize,
    vcpus: VcpuPool,
    /// The FP state of a vCPU just made: what a new thread or exec starts with.
    init_fp: OnceLock<Box<XsaveRegion>>,
}

/// Slot numbers: memory-file chunks from 0, then the fixed pages, then table chunks.
fn fixed_slot(memory_chunks: usize) -> u32 {
    memory_chunks as u32
}

impl KvmPlatform {
    /// A platform whose guests' physical memory is `memory`, the Sentry's memory file.
    pub fn new(memory: OwnedFd) -> Result<KvmPlatform> {
        KvmPlatform::with_vcpu_limit(memory, MAX_VCPUS)
    }

    /// The same with at most `limit` vCPUs (and at most [`MAX_VCPUS`] or what KVM
    /// allows), however many guest threads there are: they share them.
    pub fn with_vcpu_limit(memory: OwnedFd, limit: usize) -> Result<KvmPlatform> {
        install_kick_handler()?;
        let kvm = Kvm::new().map_err(kvm_err("opening /dev/kvm"))?;
        if kvm.get_api_version() != 12 {
            return Err(Error::Host {
                what: "KVM API version is not 12",
                errno: Errno::ENOTSUP,
            });
        }
        for (cap, what) in [
            (kvm_ioctls::Cap::SyncRegs, "KVM has no sync regs"),
            (kvm_ioctls::Cap::Xsave, "KVM has no XSAVE"),
            (kvm_ioctls::Cap::Xcrs, "KVM has no XCRs"),
        ] {
            if !kvm.check_extension(cap) {
                return Err(Error::Host {
                    what,
                    errno: Errno::ENOTSUP,
                });
            }
        }
        let fd = kvm.create_vm().map_err(kvm_err("creating a KVM VM"))?;
        let size = nix::sys::stat::fstat(&memory)
            .map_err(Error::host("reading the memory file's size"))?
            .st_size as u64;
        if size > MAX_MEMORY {
            return Err(Error::Host {
                what: "the memory file is larger than the KVM guest's physical space",
                errno: Errno::EFBIG,
            });
        }
        let memory_map = HostMapping::shared(&memory, size)?;
        let chunks = size.div_ceil(MEMORY_CHUNK) as usize;
        let nr_slots = kvm.get_nr_memslots();
        let fixed = HostMapping::anonymous(FIXED_SIZE)?;
        let first_table_slot = fixed_slot(chunks) + 1;
        if nr_slots <= first_table_slot as usize + 16 {
            return Err(Error::Host {
                what: "KVM has too few memory slots",
                errno: Errno::ENOSPC,
            });
        }
        let tables = TablePool::new(first_table_slot, nr_slots as u32)?;

        let cpuid = kvm
            .get_supported_cpuid(kvm_bindings::KVM_MAX_CPUID_ENTRIES)
            .map_err(kvm_err("reading KVM's supported CPUID"))?;
        let leaf = |function: u32, index: u32| {
            cpuid
                .as_slice()
                .iter()
                .find(|e| e.function == function && e.index == index)
                .copied()
        };
        // KVM refuses slots above the host's physical address width (leaf 0x80000008).
        let phys_bits = leaf(0x8000_0008, 0).map_or(36, |e| e.eax & 0xff);
        if phys_bits < guest::PHYS_BITS {
            return Err(Error::Host {
                what: "the CPU's guest-physical address space is smaller than the 39 bits the KVM platform lays out",
                errno: Errno::ENOTSUP,
            });
        }
        let has_xsave = leaf(1, 0).is_some_and(|e| e.ecx & (1 << 26) != 0);
        let has_fsgsbase = leaf(7, 0).is_some_and(|e| e.ebx & 1 != 0);
        let mut cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT;
        if has_fsgsbase {
            cr4 |= CR4_FSGSBASE;
        }
        if has_xsave {
            cr4 |= CR4_OSXSAVE;
        }
        // The state components both the host's user state and KVM have, without the
        // dynamically enabled (AMX) ones, which Linux users must ask for. This holds even
        // where KVM hides XSAVE from the guest's CPUID (our machines' nested KVM): user code
        // there runs with the host's XCR0 and CPUID, so glibc uses AVX-512, and KVM saves
        // and hands back that state all the same (KVM_GET_XSAVE).
        let supported = leaf(0xd, 0).map_or(3, |e| e.eax as u64 | (e.edx as u64) << 32);
        let xcr0 = host_xcr0() & supported & 0x2ff | 3;
        let mut xstate_size = 576;
        for bit in 2..10 {
            if xcr0 & (1 << bit) != 0 {
                if let Some(e) = leaf(0xd, bit) {
                    xstate_size = xstate_size.max((e.ebx + e.eax) as usize);
                }
            }
        }
        if xstate_size > std::mem::size_of::<kvm_xsave>() {
            return Err(Error::Host {
                what: "the guest's XSAVE area does not fit KVM_GET_XSAVE",
                errno: Errno::ENOTSUP,
            });
        }
        let vm = Vm {
            fd,
            memory: memory_map,
            _memory_fd: memory,
            memory_slots: Mutex::new(vec![false; chunks]),
            fixed,
            tables: Mutex::new(tables),
            cpuid,
            cr4,
            xcr0,
            xstate_size,
            vcpus: VcpuPool::new(limit.min(kvm.get_max_vcpus()).clamp(1, MAX_VCPUS)),
            init_fp: OnceLock::new(),
        };
        vm.setup_fixed(chunks)?;
        // The first vCPU now: it is needed anyway, and it gives the initial FP state,
        // which a context may be asked for before it ever runs.
        vm.vcpus.add(&|index| vm.new_vcpu(index))?;
        Ok(KvmPlatform { vm: Arc::new(vm) })
    }

    /// How many times a vCPU was taken from a context not running guest code (for tests
    /// and diagnostics).
    pub fn vcpu_steals(&self) -> u64 {
        self.vm.vcpus.steals()
    }
}

/// The host's XCR0 (the user state components the host kernel enabled).
fn host_xcr0() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: xgetbv with ecx = 0 only reads XCR0; the caller checked that the CPU has
    // XSAVE (KVM reports it, and KVM only reports what the host has enabled).
    unsafe {
        std::arch::asm!("xgetbv", in("ecx") 0, out("eax") lo, out("edx") hi,
                        options(nomem, nostack, preserves_flags));
    }
    lo as u64 | (hi as u64) << 32
}

extern "C" fn on_kick(_: libc::c_int) {}

/// Gives [`KICK_SIGNAL`] its empty handler, once per process.
fn install_kick_handler() -> Result<()> {
    static DONE: OnceLock<std::result::Result<(), Errno>> = OnceLock::new();
    let result = DONE.get_or_init(|| {
        // SAFETY: a zeroed sigaction is a valid value to fill in.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = on_kick as extern "C" fn(libc::c_int) as usize;
        action.sa_flags = libc::SA_RESTART;
        // SAFETY: the handler does nothing, so it is async-signal-safe; the struct is
        // fully initialised.
        let ret = unsafe { libc::sigaction(KICK_SIGNAL, &action, std::ptr::null_mut()) };
        if ret < 0 {
            return Err(Errno::last());
        }
        Ok(())
    });
    result.as_ref().map(|_| ()).map_err(|&errno| Error::Host {
        what: "installing the vCPU kick handler",
        errno,
    })
}

impl Vm {
    /// Writes the fixed pages and gives them a memory slot.
    fn setup_fixed(&self, memory_chunks: usize) -> Result<()> {
        self.fixed.write_bytes(STUB_OFF, &stub_page());
        self.fixed.write_words(IDT_OFF, &idt_page());
        for (table, index, entry) in platform_tables(self.vcpus.limit()) {
            self.fixed.write_words(table + index as u64 * 8, &[entry]);
        }
        self.add_slot(
            fixed_slot(memory_chunks),
            FIXED_GPA,
            &self.fixed,
            0,
            FIXED_SIZE,
        )
    }

    /// Registers `len` bytes of `mapping` from `offset` as guest-physical `gpa`.
    fn add_slot(
        &self,
        slot: u32,
        gpa: u64,
        mapping: &HostMapping,
        offset: u64,
        len: u64,
    ) -> Result<()> {
        let region = kvm_userspace_memory_region {
            slot,
            flags: 0,
            guest_phys_addr: gpa,
            memory_size: len,
            userspace_addr: mapping.addr(offset),
        };
        // SAFETY: the mapping lives as long as the VM (both are owned by `Vm` and the
        // mapping is dropped after the VM fd), and [offset, offset + len) is inside it.
        unsafe { self.fd.set_user_memory_region(region) }
            .map_err(kvm_err("adding a KVM memory slot"))
    }

    /// Makes sure the memory-file range `[offset, offset + len)` has memory slots.
    fn cover_memory(&self, offset: u64, len: u64) -> Result<()> {
        let first = (offset / MEMORY_CHUNK) as usize;
        let last = (offset.saturating_add(len).div_ceil(MEMORY_CHUNK)) as usize;
        let mut slots = lock(&self.memory_slots);
        if last > slots.len() {
            return Err(Error::Host {
                what: "mapping past the end of the memory file",
                errno: Errno::EINVAL,
            });
        }
        for chunk in first..last {
            if !slots[chunk] {
                let start = chunk as u64 * MEMORY_CHUNK;
                let len = MEMORY_CHUNK.min(self.memory.len() - start);
                self.add_slot(chunk as u32, start, &self.memory, start, len)?;
                slots[chunk] = true;
            }
        }
        Ok(())
    }

    /// Drops every translation to the memory-file ranges in `stale`: MADV_DONTNEED on our
    /// mapping of them makes the host kernel tell KVM (an MMU-notifier invalidation), which
    /// zaps the guest mappings of those pages in every address space and flushes every
    /// vCPU's TLB. The pages' contents stay in the file.
    fn invalidate(&self, stale: &Stale) {
        for &(gpa, len) in &stale.ranges {
            if gpa.saturating_add(len) > self.memory.len() {
                continue;
            }
            // SAFETY: the range is inside our shared mapping of the memory file; dropping
            // its page-table entries loses no data (the file keeps the pages).
            unsafe {
                libc::madvise(
                    self.memory.addr(gpa) as *mut libc::c_void,
                    len as usize,
                    libc::MADV_DONTNEED,
                );
            }
        }
    }

    /// Reads a u64 of guest memory at memory-file offset `gpa`.
    fn read_memory(&self, gpa: u64) -> Option<u64> {
        if !gpa.is_multiple_of(8) || gpa.checked_add(8)? > self.memory.len() {
            return None;
        }
        Some(self.memory.read_u64(gpa))
    }

    fn new_vcpu(&self, index: usize) -> Result<Vcpu> {
        let mut fd = self
            .fd
            .create_vcpu(index as u64)
            .map_err(kvm_err("creating a vCPU"))?;
        fd.set_cpuid2(&self.cpuid)
            .map_err(kvm_err("setting the vCPU's CPUID"))?;
        self.fixed
            .write_words(VCPU_OFF + index as u64 * 4096, &vcpu_page(index));
        let mut sregs = fd
            .get_sregs()
            .map_err(kvm_err("reading the vCPU's sregs"))?;
        sregs.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_AM | CR0_PG;
        sregs.cr4 = self.cr4;
        sregs.efer = EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE;
        // Any valid top table will do until a switch loads the address space's own: the
        // fixed PDPT page is all zeros below its platform entry.
        sregs.cr3 = FIXED_GPA + PDPT_OFF;
        sregs.gdt.base = vcpu_va(index) + GDT_OFF_IN_PAGE;
        sregs.gdt.limit = (GDT_ENTRIES * 8 - 1) as u16;
        sregs.idt.base = IDT_VA;
        sregs.idt.limit = 4095;
        sregs.tr = kvm_segment {
            base: vcpu_va(index) + TSS_OFF_IN_PAGE,
            limit: 0x67,
            selector: TSS_SEL,
            type_: 11,
            present: 1,
            ..Default::default()
        };
        sregs.ldt = kvm_segment {
            unusable: 1,
            ..Default::default()
        };
        set_user_segments(&mut sregs, 0, 0);
        fd.set_sregs(&sregs)
            .map_err(kvm_err("setting the vCPU's sregs"))?;
        let entry = |index, data| kvm_msr_entry {
            index,
            data,
            ..Default::default()
        };
        let star = (USER_CS32 as u64) << 48 | (KERNEL_CS as u64) << 32;
        let msrs = Msrs::from_entries(&[
            entry(MSR_STAR, star),
            entry(MSR_LSTAR, STUB_VA),
            // 32-bit `syscall` lands in the same stub; the Sentry refuses it.
            entry(MSR_CSTAR, STUB_VA),
            entry(MSR_SFMASK, SFMASK),
            entry(MSR_KERNEL_GS_BASE, 0),
        ])
        .map_err(|_| Error::Host {
            what: "building the vCPU's MSR list",
            errno: Errno::ENOMEM,
        })?;
        let set = fd
            .set_msrs(&msrs)
            .map_err(kvm_err("setting the vCPU's MSRs"))?;
        if set != msrs.as_slice().len() {
            return Err(Error::Host {
                what: "KVM refused one of the vCPU's MSRs",
                errno: Errno::EINVAL,
            });
        }
        if self.cr4 & CR4_OSXSAVE != 0 {
            let mut xcrs = kvm_xcrs {
                nr_xcrs: 1,
                ..Default::default()
            };
            xcrs.xcrs[0].xcr = 0;
            xcrs.xcrs[0].value = self.xcr0;
            fd.set_xcrs(&xcrs)
                .map_err(kvm_err("setting the vCPU's XCR0"))?;
        }
        if self.init_fp.get().is_none() {
            let init = fd
                .get_xsave()
                .map_err(kvm_err("reading a vCPU's FP state"))?;
            let _ = self.init_fp.set(Box::new(init.region));
        }
        fd.set_sync_valid_reg(SyncReg::Register);
        fd.set_sync_valid_reg(SyncReg::SystemRegister);
        // KVM fills the sync area only at exits: until the first, it must hold what the
        // vCPU has, since switch edits it in place and marks it dirty.
        fd.sync_regs_mut().sregs = sregs;
        let immediate_exit = std::ptr::addr_of_mut!(fd.get_kvm_run().immediate_exit);
        Ok(Vcpu {
            fd,
            index,
            immediate_exit,
        })
    }

    /// The FP state a new thread starts with.
    fn init_fp(&self) -> Result<&XsaveRegion> {
        self.init_fp.get().map(|b| &**b).ok_or(Error::Host {
            what: "the VM has no vCPU to take the initial FP state from",
            errno: Errno::ENXIO,
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// User segments: 64-bit code, data for ss, and ds/es/fs/gs (selector 0 or the user
/// data selector, as the guest had them), with the given fs and gs bases.
fn set_user_segments(sregs: &mut kvm_sregs, fs_base: u64, gs_base: u64) {
    sregs.cs = kvm_segment {
        base: 0,
        limit: 0xffff_ffff,
        selector: USER_CS,
        type_: 11,
        present: 1,
        dpl: 3,
        db: 0,
        s: 1,
        l: 1,
        g: 1,
        ..Default::default()
    };
    let data = kvm_segment {
        base: 0,
        limit: 0xffff_ffff,
        selector: USER_DS,
        type_: 3,
        present: 1,
        dpl: 3,
        db: 1,
        s: 1,
        l: 0,
        g: 1,
        ..Default::default()
    };
    sregs.ss = data;
    sregs.ds = kvm_segment {
        selector: 0,
        ..data
    };
    sregs.es = kvm_segment {
        selector: 0,
        ..data
    };
    sregs.fs = kvm_segment {
        selector: 0,
        base: fs_base,
        ..data
    };
    sregs.gs = kvm_segment {
        selector: 0,
        base: gs_base,
        ..data
    };
}

/// Whether the segments in `sregs` are the user segments `set_user_segments` makes.
fn user_segments_loaded(sregs: &kvm_sregs, fs_base: u64, gs_base: u64) -> bool {
    let user_cs = |s: &kvm_segment| s.selector == USER_CS && s.dpl == 3 && s.l == 1;
    let user_ss = |s: &kvm_segment| s.selector == USER_DS && s.dpl == 3 && s.present == 1;
    user_cs(&sregs.cs) && user_ss(&sregs.ss) && sregs.fs.base == fs_base && sregs.gs.base == gs_base
}

impl crate::Platform for KvmPlatform {
    fn name(&self) -> &'static str {
        "kvm"
    }

    fn max_user_address(&self) -> u64 {
        // As Linux: the last page below the non-canonical hole stays unmapped.
        pagetable::USER_TOP - 4096
    }

    fn new_address_space(&self) -> Result<Box<dyn AddressSpace>> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let tables = PageTables::new(VmTables::new(self.vm.clone()), &[pml4_entry()])
            .map_err(|_| out_of_tables())?;
        Ok(Box::new(KvmAddressSpace {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            root: tables.root(),
            tables: Mutex::new(tables),
            vm: self.vm.clone(),
            guest_ns: Arc::new(AtomicU64::new(0)),
        }))
    }

    fn new_context(&self) -> Box<dyn Context> {
        Box::new(KvmContext {
            vm: self.vm.clone(),
            vcpu: None,
            thread: Arc::new(GuestThread::default()),
            space: None,
            space_ns: None,
            own_ns: 0,
        })
    }
}

fn out_of_tables() -> Error {
    Error::Host {
        what: "no memory left for guest page tables",
        errno: Errno::ENOMEM,
    }
}

/// A guest address space: its page tables.
pub struct KvmAddressSpace {
    id: u64,
    /// Guest-physical address of the top table (CR3).
    root: u64,
    tables: Mutex<PageTables<VmTables>>,
    vm: Arc<Vm>,
    /// Time vCPUs spent in KVM_RUN for this address space (shared with the contexts that
    /// ran in it, for their `cpu_time`).
    guest_ns: Arc<AtomicU64>,
}

impl KvmAddressSpace {
    /// The guest-physical address `va` maps to, if it is mapped (for tests).
    pub fn translate(&self, va: u64) -> Option<u64> {
        lock(&self.tables).translate(va).map(|(gpa, _)| gpa)
    }
}

impl AddressSpace for KvmAddressSpace {
    fn map_file(&self, addr: u64, len: u64, file_offset: u64, prot: Prot) -> Result<()> {
        self.vm.cover_memory(file_offset, len)?;
        let mut stale = Stale::default();
        let mapped = lock(&self.tables).map(addr, len, file_offset, prot, &mut stale);
        self.vm.invalidate(&stale);
        mapped.map_err(|_| out_of_tables())
    }

    fn unmap(&self, addr: u64, len: u64) -> Result<()> {
        let mut stale = Stale::default();
        lock(&self.tables).unmap(addr, len, &mut stale);
        self.vm.invalidate(&stale);
        Ok(())
    }

    fn protect(&self, addr: u64, len: u64, prot: Prot) -> Result<()> {
        let mut stale = Stale::default();
        lock(&self.tables).protect(addr, len, prot, &mut stale);
        self.vm.invalidate(&stale);
        Ok(())
    }

    fn new_thread(&self) -> Result<NewThread> {
        // Nothing to prepare: any vCPU can run any address space.
        Ok(NewThread(0))
    }

    fn watch_death(&self, _callback: Box<dyn Fn() + Send + Sync>) {
        // No host process stands behind an address space here: nothing can kill it from
        // outside but the Sentry itself.
    }

    fn cpu_time(&self) -> Duration {
        Duration::from_nanos(self.guest_ns.load(Ordering::Relaxed))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

fn kvm_space(space: &dyn AddressSpace) -> Result<&KvmAddressSpace> {
    space
        .as_any()
        .downcast_ref::<KvmAddressSpace>()
        .ok_or(Error::Host {
            what: "switching to an address space of another platform",
            errno: Errno::EINVAL,
        })
}

/// Runs one guest thread, on the vCPU it ran on last unless another context took it.
pub struct KvmContext {
    vm: Arc<Vm>,
    /// The vCPU it ran on last; it may have been taken since.
    vcpu: Option<usize>,
    thread: Arc<GuestThread>,
    /// The address space it last ran.
    space: Option<u64>,
    /// That address space's guest time.
    space_ns: Option<Arc<AtomicU64>>,
    /// Time this context's thread spent in KVM_RUN.
    own_ns: u64,
}

/// What a KVM_RUN ended with, copied out of kvm_run.
enum Exit {
    Store(u64),
    Load(u64),
    Interrupted,
    Other(String),
}

/// The vCPU `index` (a context's last) locked, if `thread` still owns it.
fn owned_vcpu<'v>(
    vm: &'v Vm,
    thread: &Arc<GuestThread>,
    index: Option<usize>,
) -> Option<HeldVcpu<'v>> {
    vm.vcpus.lock_owned(index?, thread)
}

/// A vCPU locked for `thread` to run on, with its FP state in it: the one at `index` if
/// the thread still owns it (no ioctl), else one acquired (and `index` updated).
fn hold<'v>(
    vm: &'v Vm,
    thread: &Arc<GuestThread>,
    index: &mut Option<usize>,
) -> Result<HeldVcpu<'v>> {
    if let Some(held) = owned_vcpu(vm, thread, *index) {
        return Ok(held);
    }
    let held = vm
        .vcpus
        .acquire(thread, vm.init_fp()?, &|index| vm.new_vcpu(index))?;
    *index = Some(held.index);
    Ok(held)
}

impl KvmContext {
    /// Lets go of the vCPU and of the FP state saved for the thread.
    fn give_back(&mut self) {
        if let Some(mut held) = owned_vcpu(&self.vm, &self.thread, self.vcpu.take()) {
            held.disown();
        }
        *lock(&self.thread.saved_fp) = None;
    }
}

/// One KVM_RUN of `vcpu` for the context whose kick is `kick`, with the kick protocol;
/// returns the exit and the time spent in KVM_RUN.
fn run_once(vcpu: &mut Vcpu, kick: &vcpu::Kick) -> Result<(Exit, u64)> {
    kick.running.store(true, Ordering::SeqCst);
    if kick.pending.swap(false, Ordering::SeqCst) {
        kick.running.store(false, Ordering::SeqCst);
        // The kick may have set immediate_exit too: it is seen now.
        vcpu.clear_immediate_exit();
        return Ok((Exit::Interrupted, 0));
    }
    let start = Instant::now();
    let exit = match vcpu.fd.run() {
        Ok(VcpuExit::MmioWrite(addr, _)) => Exit::Store(addr),
        Ok(VcpuExit::MmioRead(addr, _)) => Exit::Load(addr),
        Ok(VcpuExit::Intr) => Exit::Interrupted,
        Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => Exit::Interrupted,
        Ok(other) => Exit::Other(format!("{other:?}")),
        Err(e) => {
            kick.running.store(false, Ordering::SeqCst);
            return Err(kvm_err("running the vCPU")(e));
        }
    };
    let spent = start.elapsed().as_nanos() as u64;
    kick.running.store(false, Ordering::SeqCst);
    vcpu.clear_immediate_exit();
    kick.pending.store(false, Ordering::SeqCst);
    Ok((exit, spent))
}

/// The FP state in `xsave` as `fp_state` hands it out: Linux's signal-frame layout.
fn fp_bytes(xsave: &XsaveRegion, size: usize, xcr0: u64) -> Vec<u8> {
    let mut bytes: Vec<u8> = xsave.iter().flat_map(|w| w.to_le_bytes()).collect();
    bytes.truncate(size);
    // sw_reserved, as Linux fills it for signal frames and the XSTATE regset
    // (struct _fpx_sw_bytes): magic1, extended size, features, xstate size.
    const FP_XSTATE_MAGIC1: u32 = 0x4650_5853;
    let mut sw = [0u8; 48];
    sw[0..4].copy_from_slice(&FP_XSTATE_MAGIC1.to_le_bytes());
    sw[4..8].copy_from_slice(&(size as u32 + 4).to_le_bytes());
    sw[8..16].copy_from_slice(&xcr0.to_le_bytes());
    sw[16..20].copy_from_slice(&(size as u32).to_le_bytes());
    if let Some(dst) = bytes.get_mut(464..512) {
        dst.copy_from_slice(&sw);
    }
    bytes
}

/// An XSAVE area from `state` (Linux's signal-frame layout), `sw_reserved` cleared.
fn xsave_from_bytes(state: &[u8]) -> Box<XsaveRegion> {
    let mut region = Box::new([0u32; 1024]);
    for (word, chunk) in region.iter_mut().zip(state.chunks(4)) {
        let mut b = [0u8; 4];
        b[..chunk.len()].copy_from_slice(chunk);
        *word = u32::from_le_bytes(b);
    }
    // sw_reserved is software's; the CPU ignores it, but keep it clean.
    for word in &mut region[116..128] {
        *word = 0;
    }
    region
}

/// Refuses what KVM_SET_XSAVE would refuse (Linux's `copy_uabi_to_xstate`), for an FP
/// state kept aside until the thread next runs: components outside `xcr0`, a compacted or
/// dirty header, MXCSR bits the CPU lacks (`mxcsr_mask`, from the initial state).
fn check_xsave(region: &XsaveRegion, xcr0: u64, mxcsr_mask: u32) -> Result<()> {
    let word = |i: usize| region.get(i).copied().unwrap_or(0);
    let xstate_bv = word(128) as u64 | (word(129) as u64) << 32;
    let header_rest_clean = (130..144).all(|i| word(i) == 0);
    // FP, SSE or AVX in use: MXCSR is checked.
    let mxcsr_ok = xstate_bv & 0b111 == 0 || word(6) & !mxcsr_mask == 0;
    if xstate_bv & !xcr0 != 0 || !header_rest_clean || !mxcsr_ok {
        return Err(Error::Host {
            what: "writing the guest's FP state",
            errno: Errno::EINVAL,
        });
    }
    Ok(())
}

/// Guest registers from KVM's.
fn regs_from(k: &kvm_regs, regs: &mut Regs) {
    regs.r15 = k.r15;
    regs.r14 = k.r14;
    regs.r13 = k.r13;
    regs.r12 = k.r12;
    regs.rbp = k.rbp;
    regs.rbx = k.rbx;
    regs.r11 = k.r11;
    regs.r10 = k.r10;
    regs.r9 = k.r9;
    regs.r8 = k.r8;
    regs.rax = k.rax;
    regs.rcx = k.rcx;
    regs.rdx = k.rdx;
    regs.rsi = k.rsi;
    regs.rdi = k.rdi;
    regs.rip = k.rip;
    regs.eflags = k.rflags;
    regs.rsp = k.rsp;
}

fn kvm_regs_of(r: &Regs) -> kvm_regs {
    kvm_regs {
        rax: r.rax,
        rbx: r.rbx,
        rcx: r.rcx,
        rdx: r.rdx,
        rsi: r.rsi,
        rdi: r.rdi,
        rsp: r.rsp,
        rbp: r.rbp,
        r8: r.r8,
        r9: r.r9,
        r10: r.r10,
        r11: r.r11,
        r12: r.r12,
        r13: r.r13,
        r14: r.r14,
        r15: r.r15,
        rip: r.rip,
        rflags: (r.eflags & USER_FLAGS) | 0x2,
    }
}

const SI_KERNEL: i32 = 0x80;
const SEGV_MAPERR: i32 = 1;
const SEGV_ACCERR: i32 = 2;

/// Linux's signal for a user-mode exception `vector` (arch/x86/kernel/traps.c).
fn exception_signal(vector: u64, error: u64, cr2: u64, rip: u64) -> Event {
    let signal = |signo, code, addr| Event::Signal(SignalInfo { signo, code, addr });
    match vector {
        0 => signal(libc::SIGFPE, 1, rip),        // FPE_INTDIV
        1 => signal(libc::SIGTRAP, 2, rip),       // TRAP_TRACE
        3 => signal(libc::SIGTRAP, SI_KERNEL, 0), // int3
        6 => signal(libc::SIGILL, 2, rip),        // ILL_ILLOPN
        16 | 19 => signal(libc::SIGFPE, 7, rip),  // FPE_FLTINV (details not decoded)
        17 => Event::Fault(SignalInfo {
            signo: libc::SIGBUS,
            code: 1, // BUS_ADRALN
            addr: 0,
        }),
        12 => Event::Fault(SignalInfo {
            signo: libc::SIGBUS,
            code: SI_KERNEL,
            addr: 0,
        }),
        14 => Event::Fault(SignalInfo {
            signo: libc::SIGSEGV,
            code: if error & 1 != 0 {
                SEGV_ACCERR
            } else {
                SEGV_MAPERR
            },
            addr: cr2,
        }),
        // #GP, #OF, #BR, #TS, #NP and the rest: SIGSEGV "from the kernel", address 0.
        _ => Event::Fault(SignalInfo {
            signo: libc::SIGSEGV,
            code: SI_KERNEL,
            addr: 0,
        }),
    }
}

impl KvmContext {
    /// Turns an exit store of `vcpu` at `gpa` into an event, updating `regs`.
    fn decode_store(
        &self,
        space: &KvmAddressSpace,
        vcpu: &mut Vcpu,
        gpa: u64,
        regs: &mut Regs,
    ) -> Result<Event> {
        let vm = &self.vm;
        let index = vcpu.index;
        let sync = vcpu.fd.sync_regs_mut();
        let k = sync.regs;
        let (fs_base, gs_base, cr2) = (sync.sregs.fs.base, sync.sregs.gs.base, sync.sregs.cr2);
        let slot = (gpa - EXIT_GPA) / 8;
        if !gpa.is_multiple_of(8) || slot > VECTORS || k.rip != rip_after_store(slot) {
            // User code stored to the exit page itself.
            regs_from(&k, regs);
            return Ok(Event::Fault(SignalInfo {
                signo: libc::SIGSEGV,
                code: SEGV_ACCERR,
                addr: EXIT_VA + (gpa - EXIT_GPA),
            }));
        }
        regs_from(&k, regs);
        regs.fs_base = fs_base;
        regs.gs_base = gs_base;
        regs.cs = USER_CS as u64;
        regs.ss = USER_DS as u64;
        if slot == SYSCALL_SLOT {
            // `syscall` left the user rip in rcx and rflags in r11, as Linux's entry sees.
            regs.orig_rax = k.rax;
            regs.rax = (-(libc::ENOSYS as i64)) as u64;
            regs.rip = k.rcx;
            regs.eflags = k.r11;
            return Ok(Event::Syscall);
        }
        let vector = slot - 1;
        // The frame the CPU pushed on the vCPU's exception stack (TSS.RSP0).
        let words = if has_error_code(vector) { 6 } else { 5 };
        let frame_va = stack_top(index) - words * 8;
        if k.rsp != frame_va {
            return Err(Error::Host {
                what: "an exception frame is not where the TSS puts it",
                errno: Errno::EFAULT,
            });
        }
        let frame_off = VCPU_OFF + index as u64 * 4096 + 4096 - words * 8;
        let mut frame = [0u64; 6];
        for (i, word) in frame.iter_mut().take(words as usize).enumerate() {
            *word = vm.fixed.read_u64(frame_off + i as u64 * 8);
        }
        // Nothing of this thread's state stays where another exit could replay it.
        vm.fixed.write_words(frame_off, &[0; 6][..words as usize]);
        let (error, rest) = if has_error_code(vector) {
            (frame[0], &frame[1..6])
        } else {
            (0, &frame[0..5])
        };
        regs.rip = rest[0];
        regs.eflags = rest[2];
        regs.rsp = rest[3];
        regs.orig_rax = u64::MAX;
        // `int $0x80`: a #GP for the absent IDT gate 0x80. Linux makes it a 32-bit system
        // call; the Sentry answers those with ENOSYS, so it is reported as one.
        if vector == 13 && error == (0x80 << 3) | 2 {
            regs.orig_rax = regs.rax;
            regs.rax = (-(libc::ENOSYS as i64)) as u64;
            regs.rip += 2;
            return Ok(Event::Syscall);
        }
        if vector == 14 && cr2 == regs.rip && cr2 & !0xfff == VSYSCALL_PAGE {
            return Ok(self.vsyscall(space, regs, cr2));
        }
        Ok(exception_signal(vector, error, cr2, regs.rip))
    }

    /// A call into the legacy vsyscall page: Linux emulates the `ret` and (under seccomp)
    /// reports SIGSYS, which the Sentry serves as the call; the same here.
    fn vsyscall(&self, space: &KvmAddressSpace, regs: &mut Regs, addr: u64) -> Event {
        let ret = lock(&space.tables)
            .translate(regs.rsp)
            .and_then(|(gpa, _)| self.vm.read_memory(gpa));
        match ret {
            Some(ret) => {
                regs.rip = ret;
                regs.rsp = regs.rsp.wrapping_add(8);
                Event::Signal(SignalInfo {
                    signo: libc::SIGSYS,
                    code: 1, // SYS_SECCOMP
                    addr,
                })
            }
            None => Event::Fault(SignalInfo {
                signo: libc::SIGSEGV,
                code: SEGV_MAPERR,
                addr,
            }),
        }
    }
}

impl Context for KvmContext {
    fn switch(&mut self, space: &dyn AddressSpace, regs: &mut Regs) -> Result<Event> {
        let space = kvm_space(space)?;
        // Held until the end: a context that wants this vCPU cannot take it meanwhile.
        let mut vcpu = hold(&self.vm, &self.thread, &mut self.vcpu)?;
        if self.space.is_some_and(|id| id != space.id) {
            // A thread moving to a new address space is an exec: Linux starts it with a
            // clean FPU.
            set_region(&vcpu.fd, self.vm.init_fp()?)?;
        }
        if self.space != Some(space.id) {
            self.space_ns = Some(space.guest_ns.clone());
        }
        self.space = Some(space.id);
        let sync = vcpu.fd.sync_regs_mut();
        sync.regs = kvm_regs_of(regs);
        let sregs = &mut sync.sregs;
        let mut sregs_dirty = false;
        // The sync area holds what the vCPU had at its last exit, whichever thread ran it.
        if !user_segments_loaded(sregs, regs.fs_base, regs.gs_base) {
            set_user_segments(sregs, regs.fs_base, regs.gs_base);
            sregs_dirty = true;
        }
        if sregs.cr3 != space.root {
            sregs.cr3 = space.root;
            sregs_dirty = true;
        }
        vcpu.fd.set_sync_dirty_reg(SyncReg::Register);
        if sregs_dirty {
            vcpu.fd.set_sync_dirty_reg(SyncReg::SystemRegister);
        }
        let (exit, spent) = run_once(&mut vcpu, &self.thread.kick)?;
        space.guest_ns.fetch_add(spent, Ordering::Relaxed);
        self.own_ns += spent;
        match exit {
            Exit::Store(gpa) if (EXIT_GPA..EXIT_GPA + 4096).contains(&gpa) => {
                self.decode_store(space, &mut vcpu, gpa, regs)
            }
            Exit::Interrupted => {
                let sync = vcpu.fd.sync_regs_mut();
                let k = sync.regs;
                let in_user = sync.sregs.cs.selector == USER_CS;
                // The guest may have run before the kick: its registers moved on. If it
                // stopped anywhere but in user mode (it cannot, short of an exit),
                // the registers we wrote stand.
                if in_user {
                    regs_from(&k, regs);
                    regs.fs_base = sync.sregs.fs.base;
                    regs.gs_base = sync.sregs.gs.base;
                }
                Ok(Event::Interrupted)
            }
            Exit::Store(gpa) | Exit::Load(gpa) => {
                // User code touched a guest-physical address outside every slot: only the
                // exit page is mapped to one, so it accessed that page.
                let k = vcpu.fd.sync_regs_mut().regs;
                regs_from(&k, regs);
                if matches!(exit, Exit::Load(_)) {
                    // KVM finishes an emulated MMIO read at the next KVM_RUN, after it has
                    // taken the registers we give it: the loaded value and the next rip
                    // would land on top of them (on a signal handler's entry, say). Finish
                    // it now, with nothing to run after (immediate_exit), and drop it.
                    vcpu.fd.set_kvm_immediate_exit(1);
                    let _ = vcpu.fd.run();
                    vcpu.fd.set_kvm_immediate_exit(0);
                }
                Ok(Event::Fault(SignalInfo {
                    signo: libc::SIGSEGV,
                    code: SEGV_ACCERR,
                    addr: EXIT_VA + (gpa & 0xfff),
                }))
            }
            Exit::Other(what) => {
                let k = vcpu.fd.sync_regs_mut().regs;
                Err(Error::Guest(format!("{what} at rip {:#x}", k.rip)))
            }
        }
    }

    fn cpu_time(&self) -> Duration {
        // As on ptrace: the address space's, all its threads together (time in KVM_RUN).
        self.space_ns.as_ref().map_or(Duration::ZERO, |ns| {
            Duration::from_nanos(ns.load(Ordering::Relaxed))
        })
    }

    fn thread_guest_time(&self) -> Duration {
        Duration::from_nanos(self.own_ns)
    }

    fn attach(&mut self, space: &dyn AddressSpace, _thread: NewThread) -> Result<()> {
        kvm_space(space).map(drop)
    }

    fn release(&mut self, _space: &dyn AddressSpace) {
        self.give_back();
        self.space = None;
    }

    fn interrupter(&self) -> Arc<dyn Interrupt> {
        self.thread.clone()
    }

    fn fp_state(&mut self) -> Result<Vec<u8>> {
        let (size, xcr0) = (self.vm.xstate_size, self.vm.xcr0);
        if let Some(vcpu) = owned_vcpu(&self.vm, &self.thread, self.vcpu) {
            let xsave = vcpu
                .fd
                .get_xsave()
                .map_err(kvm_err("reading the guest's FP state"))?;
            return Ok(fp_bytes(&xsave.region, size, xcr0));
        }
        // No vCPU holds it: the copy saved when the last one was taken, or the initial.
        let saved = lock(&self.thread.saved_fp);
        let region = match saved.as_deref() {
            Some(region) => region,
            None => self.vm.init_fp()?,
        };
        Ok(fp_bytes(region, size, xcr0))
    }

    fn set_fp_state(&mut self, state: &[u8]) -> Result<()> {
        let region = xsave_from_bytes(state);
        if let Some(vcpu) = owned_vcpu(&self.vm, &self.thread, self.vcpu) {
            return set_region(&vcpu.fd, &region);
        }
        // Kept until the thread gets a vCPU; refused now if KVM would refuse it then.
        let init = self.vm.init_fp()?;
        let mxcsr_mask = match init[7] {
            0 => 0xffbf, // the default when the CPU reports none
            mask => mask,
        };
        check_xsave(&region, self.vm.xcr0, mxcsr_mask)?;
        *lock(&self.thread.saved_fp) = Some(region);
        Ok(())
    }
}

impl Drop for KvmContext {
    fn drop(&mut self) {
        self.give_back();
    }
}

/// The ioctls the Sentry makes on KVM once it runs (for its seccomp filter).
pub const SENTRY_IOCTLS: &[u64] = &[
    kvm_ioctls_numbers::KVM_RUN,
    kvm_ioctls_numbers::KVM_CREATE_VCPU,
    kvm_ioctls_numbers::KVM_SET_USER_MEMORY_REGION,
    kvm_ioctls_numbers::KVM_GET_SREGS,
    kvm_ioctls_numbers::KVM_SET_SREGS,
    kvm_ioctls_numbers::KVM_SET_CPUID2,
    kvm_ioctls_numbers::KVM_SET_MSRS,
    kvm_ioctls_numbers::KVM_SET_XCRS,
    kvm_ioctls_numbers::KVM_GET_XSAVE,
    kvm_ioctls_numbers::KVM_SET_XSAVE,
];

/// The numbers of the KVM ioctls above (linux/kvm.h, x86_64).
mod kvm_ioctls_numbers {
    const fn io(nr: u64) -> u64 {
        0xae << 8 | nr
    }
    const fn iow(nr: u64, size: u64) -> u64 {
        1 << 30 | size << 16 | 0xae << 8 | nr
    }
    const fn ior(nr: u64, size: u64) -> u64 {
        2 << 30 | size << 16 | 0xae << 8 | nr
    }
    pub const KVM_RUN: u64 = io(0x80);
    pub const KVM_CREATE_VCPU: u64 = io(0x41);
    pub const KVM_SET_USER_MEMORY_REGION: u64 = iow(0x46, 32);
    pub const KVM_GET_SREGS: u64 = ior(0x83, 312);
    pub const KVM_SET_SREGS: u64 = iow(0x84, 312);
    pub const KVM_SET_CPUID2: u64 = iow(0x90, 8);
    pub const KVM_SET_MSRS: u64 = iow(0x89, 8);
    pub const KVM_SET_XCRS: u64 = iow(0xa7, 392);
    pub const KVM_GET_XSAVE: u64 = ior(0xa4, 4096);
    pub const KVM_SET_XSAVE: u64 = iow(0xa5, 4096);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_numbers_match_the_bindings_sizes() {
        assert_eq!(std::mem::size_of::<kvm_sregs>(), 312);
        assert_eq!(std::mem::size_of::<kvm_xcrs>(), 392);
        assert_eq!(std::mem::size_of::<kvm_xsave>(), 4096);
        assert_eq!(std::mem::size_of::<kvm_userspace_memory_region>(), 32);
        assert_eq!(kvm_ioctls_numbers::KVM_RUN, 0xae80);
        assert_eq!(kvm_ioctls_numbers::KVM_SET_USER_MEMORY_REGION, 0x4020_ae46);
        assert_eq!(kvm_ioctls_numbers::KVM_GET_SREGS, 0x8138_ae83);
    }

    #[test]
    fn exceptions_map_to_linux_signals() {
        let ev = exception_signal(14, 6, 0x1234, 0x400000);
        assert_eq!(
            ev,
            Event::Fault(SignalInfo {
                signo: libc::SIGSEGV,
                code: SEGV_MAPERR,
                addr: 0x1234
            })
        );
        // A write to a present read-only page (P|W|U).
        let ev = exception_signal(14, 7, 0x1234, 0x400000);
        assert!(matches!(
            ev,
            Event::Fault(SignalInfo {
                code: SEGV_ACCERR,
                ..
            })
        ));
        assert!(matches!(
            exception_signal(6, 0, 0, 0x401000),
            Event::Signal(SignalInfo {
                signo: libc::SIGILL,
                addr: 0x401000,
                ..
            })
        ));
        assert!(matches!(
            exception_signal(13, 0, 0, 1),
            Event::Fault(SignalInfo {
                signo: libc::SIGSEGV,
                addr: 0,
                code: SI_KERNEL
            })
        ));
    }
}
