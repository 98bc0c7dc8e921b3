//! The guest machine's fixed parts: where things are in guest-physical and guest-virtual
//! memory, the entry stub, IDT, GDT and TSS.
//!
//! Guest-physical layout (all below 2^46, inside any guest MAXPHYADDR we meet):
//!
//! ```text
//! [0, memory file size)          the Sentry's memory file (GPA = file offset)
//! EXIT_GPA                       one page no memory slot covers: stores there exit to us
//! FIXED_GPA .. + FIXED_SIZE      the platform's fixed pages (below)
//! TABLES_GPA ..                  page-table pages, allocated upward, never reused
//! ```
//!
//! Guest-virtual: user code owns the lower half; the platform's pages sit in the top 2 GiB
//! (PML4 entry 511, PDPT entry 510), clear of the vsyscall page at 0xffffffffff600000.
//!
//! The stub page and the exit page are user-accessible: on the nested paravirtual KVM of
//! our machines a user `syscall` reaches LSTAR still at CPL 3 (research/kvm-here.md), so
//! the stub must run from there too. It holds nothing but the exit stores.

use super::pagetable::{PTE_NX, PTE_P, PTE_U, PTE_W};

/// The guest-physical address space the layout needs: 39 bits (512 GiB), what the
/// smallest x86_64 CPUs in use give (many Intel client parts; QEMU's TCG `max` CPU gives
/// 40). KVM refuses a memory slot above the host's MAXPHYADDR, so nothing goes higher.
pub const PHYS_BITS: u32 = 39;
/// A guest-physical page no memory slot covers: an access exits with KVM_EXIT_MMIO.
pub const EXIT_GPA: u64 = 0x40_0000_0000;
/// The platform's fixed pages.
pub const FIXED_GPA: u64 = 0x40_4000_0000;
pub const FIXED_SIZE: u64 = 1 << 20;
/// Page-table pages start here.
pub const TABLES_GPA: u64 = 0x60_0000_0000;
/// Room for page-table pages over the life of a VM (GPAs are never reused): 16 M pages.
pub const TABLES_SIZE: u64 = 64 << 30;
/// The memory file must end below the exit page: 256 GiB of guest memory offsets.
pub const MAX_MEMORY: u64 = EXIT_GPA;

/// Offsets in the fixed region.
pub const PDPT_OFF: u64 = 0x0000;
pub const PD_OFF: u64 = 0x1000;
pub const PT_OFF: u64 = 0x2000;
pub const STUB_OFF: u64 = 0x3000;
pub const IDT_OFF: u64 = 0x4000;
/// Per-vCPU pages (GDT, TSS and exception stack) from here.
pub const VCPU_OFF: u64 = 0x5000;

/// Where the platform's pages are in every address space.
pub const PLATFORM_VA: u64 = 0xffff_ffff_8000_0000;
pub const STUB_VA: u64 = PLATFORM_VA;
pub const EXIT_VA: u64 = PLATFORM_VA + 0x1000;
pub const IDT_VA: u64 = PLATFORM_VA + 0x2000;
/// The page of vCPU `i` is at `VCPU_VA + i * 4096`.
pub const VCPU_VA: u64 = PLATFORM_VA + 0x3000;

/// How many vCPUs the fixed region has pages for.
pub const MAX_VCPUS: usize = ((FIXED_SIZE - VCPU_OFF) / 4096) as usize;

/// Within a vCPU page: the GDT, the TSS; the exception stack runs down from the page end.
pub const GDT_OFF_IN_PAGE: u64 = 0;
pub const TSS_OFF_IN_PAGE: u64 = 0x100;

/// Segment selectors, Linux's layout.
pub const KERNEL_CS: u16 = 0x10;
pub const KERNEL_DS: u16 = 0x18;
pub const USER_CS32: u16 = 0x23;
pub const USER_DS: u16 = 0x2b;
pub const USER_CS: u16 = 0x33;
pub const TSS_SEL: u16 = 0x40;
/// GDT entries: null .. TSS (two entries).
pub const GDT_ENTRIES: usize = 10;

/// Exit slots: a store to `EXIT_GPA + 8 * slot` says what happened. Slot 0 is `syscall`,
/// slot `1 + v` is exception vector `v`.
pub const SYSCALL_SLOT: u64 = 0;
pub const VECTORS: u64 = 32;
/// Each slot's code is 16 bytes of the stub page.
pub const SLOT_CODE: u64 = 16;
/// Length of the store instruction in each slot.
const STORE_LEN: u64 = 8;

/// Where the store of `slot` leaves rip once KVM has emulated it.
pub fn rip_after_store(slot: u64) -> u64 {
    STUB_VA + slot * SLOT_CODE + STORE_LEN
}

/// The stub page: per slot, `mov %rax, EXIT_VA + 8 * slot` (an absolute store that
/// changes no register) then a jump back to it, so a guest that were resumed there would
/// only exit again.
pub fn stub_page() -> [u8; 4096] {
    // int3 everywhere else.
    let mut page = [0xccu8; 4096];
    for slot in 0..=VECTORS {
        let at = (slot * SLOT_CODE) as usize;
        let target = (EXIT_VA + 8 * slot) as u32; // sign-extends back to EXIT_VA + 8 * slot
        let mut code = vec![0x48, 0x89, 0x04, 0x25];
        code.extend_from_slice(&target.to_le_bytes());
        // jmp rel8 back to the store: -(STORE_LEN + 2).
        code.extend_from_slice(&[0xeb, (-(STORE_LEN as i8 + 2)) as u8]);
        page[at..at + code.len()].copy_from_slice(&code);
    }
    page
}

/// A 64-bit interrupt gate to `handler`.
fn gate(handler: u64, dpl: u64) -> [u64; 2] {
    let low = (handler & 0xffff)
        | ((KERNEL_CS as u64) << 16)
        | (0x8e00 | dpl << 13) << 32
        | ((handler >> 16) & 0xffff) << 48;
    [low, handler >> 32]
}

/// The IDT: vectors 0-31 go to their stub slots; `int3` and `into` may be raised from
/// user mode (DPL 3) as on Linux; the rest are absent, so `int $n` from user mode is #GP.
pub fn idt_page() -> [u64; 512] {
    let mut idt = [0u64; 512];
    for v in 0..VECTORS {
        let dpl = if v == 3 || v == 4 { 3 } else { 0 };
        let [lo, hi] = gate(STUB_VA + (1 + v) * SLOT_CODE, dpl);
        idt[2 * v as usize] = lo;
        idt[2 * v as usize + 1] = hi;
    }
    idt
}

/// The GDT and TSS of vCPU `i`, written into its page (as u64 words).
pub fn vcpu_page(i: usize) -> [u64; 512] {
    let mut page = [0u64; 512];
    let va = vcpu_va(i);
    page[(KERNEL_CS / 8) as usize] = 0x00af_9b00_0000_ffff;
    page[(KERNEL_DS / 8) as usize] = 0x00cf_9300_0000_ffff;
    page[(USER_CS32 / 8) as usize] = 0x00cf_fb00_0000_ffff;
    page[(USER_DS / 8) as usize] = 0x00cf_f300_0000_ffff;
    page[(USER_CS / 8) as usize] = 0x00af_fb00_0000_ffff;
    let tss = va + TSS_OFF_IN_PAGE;
    let limit = 0x67u64;
    // Busy 64-bit TSS (type 0xb), present.
    page[(TSS_SEL / 8) as usize] =
        limit | (tss & 0xff_ffff) << 16 | 0x8b << 40 | ((tss >> 24) & 0xff) << 56;
    page[(TSS_SEL / 8) as usize + 1] = tss >> 32;
    // TSS: rsp0 at byte 4 (unaligned: split over words), I/O map base past the limit.
    let t = (TSS_OFF_IN_PAGE / 8) as usize;
    let rsp0 = stack_top(i);
    page[t] = (rsp0 & 0xffff_ffff) << 32;
    page[t + 1] = rsp0 >> 32;
    // Bytes 102..104: iomap base = 104 (no bitmap: every port is refused in ring 3).
    page[t + 12] = 104u64 << 48;
    page
}

pub fn vcpu_va(i: usize) -> u64 {
    VCPU_VA + i as u64 * 4096
}

/// Top of vCPU `i`'s exception stack (TSS.RSP0).
pub fn stack_top(i: usize) -> u64 {
    vcpu_va(i) + 4096
}

/// The platform's upper-half tables: the PDPT (shared by every address space through
/// PML4 entry 511) → PD → one leaf table mapping the stub, exit, IDT and vCPU pages.
/// Returns (offset in the fixed region, index, entry) triples to write.
pub fn platform_tables(vcpus: usize) -> Vec<(u64, usize, u64)> {
    let table = PTE_P | PTE_W;
    let mut out = vec![
        (PDPT_OFF, 510, (FIXED_GPA + PD_OFF) | table | PTE_U),
        (PD_OFF, 0, (FIXED_GPA + PT_OFF) | table | PTE_U),
        // Read-only, executable, user-accessible: the only thing user code can reach.
        (PT_OFF, 0, (FIXED_GPA + STUB_OFF) | PTE_P | PTE_U),
        (PT_OFF, 1, EXIT_GPA | PTE_P | PTE_W | PTE_U | PTE_NX),
        (PT_OFF, 2, (FIXED_GPA + IDT_OFF) | PTE_P | PTE_NX),
    ];
    for i in 0..vcpus {
        let gpa = FIXED_GPA + VCPU_OFF + i as u64 * 4096;
        out.push((PT_OFF, 3 + i, gpa | PTE_P | PTE_W | PTE_NX));
    }
    out
}

/// The PML4 entry every address space gets for the platform's half.
pub fn pml4_entry() -> (usize, u64) {
    (511, (FIXED_GPA + PDPT_OFF) | PTE_P | PTE_W | PTE_U)
}

/// Whether exception `vector` pushes an error code.
pub fn has_error_code(vector: u64) -> bool {
    matches!(vector, 8 | 10..=14 | 17 | 21 | 29 | 30)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The layout's invariants, checked when compiling.
    const _: () = {
        assert!(MAX_VCPUS >= 64);
        // One leaf table maps every platform page.
        assert!(3 + MAX_VCPUS <= 512);
        assert!(EXIT_GPA + 4096 <= FIXED_GPA && FIXED_GPA + FIXED_SIZE <= TABLES_GPA);
        assert!(TABLES_GPA + TABLES_SIZE <= 1 << PHYS_BITS);
    };

    #[test]
    fn layout_fits() {
        // The vCPU pages and the stubs are reachable with 32-bit sign-extended addresses.
        assert_eq!(EXIT_VA as u32 as i32 as i64 as u64, EXIT_VA);
        assert_eq!((PLATFORM_VA >> 39) & 0x1ff, 511);
        assert_eq!((PLATFORM_VA >> 30) & 0x1ff, 510);
    }

    #[test]
    fn stub_slots_store_to_their_exit_address() {
        let page = stub_page();
        for slot in [0, 1, 15, 32] {
            let at = (slot * SLOT_CODE) as usize;
            assert_eq!(&page[at..at + 4], &[0x48, 0x89, 0x04, 0x25]);
            let disp = i32::from_le_bytes(page[at + 4..at + 8].try_into().unwrap());
            assert_eq!(disp as i64 as u64, EXIT_VA + 8 * slot);
            assert_eq!(page[at + 8..at + 10], [0xeb, 0xf6]);
        }
    }

    #[test]
    fn idt_gates_point_at_slots() {
        let idt = idt_page();
        let handler =
            |v: usize| (idt[2 * v] & 0xffff) | ((idt[2 * v] >> 48) << 16) | (idt[2 * v + 1] << 32);
        assert_eq!(handler(14), STUB_VA + 15 * SLOT_CODE);
        assert_eq!((idt[2 * 14] >> 16) & 0xffff, KERNEL_CS as u64);
        assert_eq!((idt[2 * 3] >> 45) & 3, 3, "int3 allowed from ring 3");
        assert_eq!((idt[2 * 13] >> 45) & 3, 0);
        assert_eq!(idt[2 * 32], 0);
    }

    #[test]
    fn tss_has_rsp0() {
        let page = vcpu_page(2);
        let bytes: Vec<u8> = page.iter().flat_map(|w| w.to_le_bytes()).collect();
        let t = TSS_OFF_IN_PAGE as usize;
        let rsp0 = u64::from_le_bytes(bytes[t + 4..t + 12].try_into().unwrap());
        assert_eq!(rsp0, stack_top(2));
        assert_eq!(u16::from_le_bytes([bytes[t + 102], bytes[t + 103]]), 104);
        let desc = page[(TSS_SEL / 8) as usize];
        let base = ((desc >> 16) & 0xff_ffff) | ((desc >> 56) << 24) | (page[9] << 32);
        assert_eq!(base, vcpu_va(2) + TSS_OFF_IN_PAGE);
    }
}
