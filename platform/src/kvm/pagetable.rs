//! x86_64 4-level page tables for one guest address space, kept by the host.
//!
//! The tables live in guest-physical memory the platform owns ([`TableMemory`]); leaf
//! entries point at pages of the memory file (GPA = file offset). Every operation reports
//! which guest pages lost a mapping or a permission ([`Stale`]): under KVM a host-side write to
//! a page table is invisible to the vCPUs' TLBs (and to a shadow MMU), so the platform has
//! to invalidate those pages' translations itself.
//!
//! A table whose entries are all gone is freed at once. Its guest-physical page is never
//! handed out again for the life of the VM (see [`TableMemory::free`]): a shadow MMU may
//! still hold a link to the old table, and that link must never lead to another range.

use std::collections::HashMap;

/// Present.
pub const PTE_P: u64 = 1 << 0;
/// Writable.
pub const PTE_W: u64 = 1 << 1;
/// User-accessible.
pub const PTE_U: u64 = 1 << 2;
/// Software bit (ignored by the CPU): the entry maps a page with no access at all
/// (`PROT_NONE`) and is not present, but keeps the target so `protect` can bring it back.
pub const PTE_NOACCESS: u64 = 1 << 9;
/// No execute (needs EFER.NXE).
pub const PTE_NX: u64 = 1 << 63;
/// The physical address bits of an entry.
pub const PTE_ADDR: u64 = 0x000f_ffff_ffff_f000;

const PAGE: u64 = 4096;
const ENTRIES: usize = 512;
/// One past the last user address this module manages: the lower canonical half. The
/// upper half belongs to the platform (entry 511 of the top table and up).
pub const USER_TOP: u64 = 1 << 47;

/// Where page-table pages live: zeroed 4 KiB pages named by guest-physical address.
pub trait TableMemory {
    /// A zeroed page, or None when no more can be had.
    fn alloc(&mut self) -> Option<u64>;
    /// Gives back a page that holds only zeros again (every entry was cleared).
    fn free(&mut self, gpa: u64);
    fn read(&self, gpa: u64, index: usize) -> u64;
    fn write(&mut self, gpa: u64, index: usize, value: u64);
}

/// Ranges of guest-physical memory (memory-file offsets) whose old translations must be
/// dropped after an operation.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stale {
    /// (start, length), page-aligned, coalesced when adjacent.
    pub ranges: Vec<(u64, u64)>,
}

impl Stale {
    fn add(&mut self, gpa: u64) {
        if let Some(last) = self.ranges.last_mut() {
            if last.0 + last.1 == gpa {
                last.1 += PAGE;
                return;
            }
        }
        self.ranges.push((gpa, PAGE));
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}

/// The leaf flags for host mmap protection `prot`, x86 style: any access implies read,
/// write implies read, and only PROT_EXEC leaves NX clear.
pub fn leaf_flags(prot: i32) -> u64 {
    let any = libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC;
    if prot & any == 0 {
        return PTE_NOACCESS;
    }
    let mut flags = PTE_P | PTE_U;
    if prot & libc::PROT_WRITE != 0 {
        flags |= PTE_W;
    }
    if prot & libc::PROT_EXEC == 0 {
        flags |= PTE_NX;
    }
    flags
}

/// Whether going from leaf `old` to leaf `new` takes something away that a TLB may hold:
/// a different page, or a permission.
fn tightens(old: u64, new: u64) -> bool {
    if old & PTE_P == 0 {
        return false;
    }
    if new & PTE_P == 0 || old & PTE_ADDR != new & PTE_ADDR {
        return true;
    }
    (old & PTE_W != 0 && new & PTE_W == 0) || (old & PTE_NX == 0 && new & PTE_NX != 0)
}

/// Error: the table memory ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfTables;

/// The page tables of one address space.
pub struct PageTables<M: TableMemory> {
    mem: M,
    root: u64,
    /// Non-zero entries per table page below the root, for freeing empty tables.
    used: HashMap<u64, u16>,
}

/// Index of `va` in a table of `level` (4 = top, 1 = leaf).
fn index(va: u64, level: u32) -> usize {
    ((va >> (12 + 9 * (level - 1))) & 0x1ff) as usize
}

/// Bytes one entry of a table of `level` covers.
fn span(level: u32) -> u64 {
    1 << (12 + 9 * (level - 1))
}

impl<M: TableMemory> PageTables<M> {
    /// Empty tables; `top_entries` are written into the top table as they are (the
    /// platform's upper-half mapping, shared by every address space).
    pub fn new(mut mem: M, top_entries: &[(usize, u64)]) -> Result<Self, OutOfTables> {
        let root = mem.alloc().ok_or(OutOfTables)?;
        for &(i, entry) in top_entries {
            mem.write(root, i, entry);
        }
        Ok(PageTables {
            mem,
            root,
            used: HashMap::new(),
        })
    }

    /// Guest-physical address of the top table (CR3).
    pub fn root(&self) -> u64 {
        self.root
    }

    pub fn memory(&self) -> &M {
        &self.mem
    }

    /// Number of table pages below the root.
    pub fn tables(&self) -> usize {
        self.used.len()
    }

    /// Maps `[va, va + len)` to `[gpa, gpa + len)` with `prot`, replacing what was there.
    pub fn map(
        &mut self,
        va: u64,
        len: u64,
        gpa: u64,
        prot: i32,
        stale: &mut Stale,
    ) -> Result<(), OutOfTables> {
        let flags = leaf_flags(prot);
        let va = va & !(PAGE - 1);
        let end = va.saturating_add(len).min(USER_TOP);
        let mut at = va;
        while at < end {
            let leaf_table = self.walk_create(at)?;
            // Fill the rest of this leaf table in one go.
            let first = index(at, 1);
            let count = (ENTRIES - first).min(((end - at).div_ceil(PAGE)) as usize);
            for i in first..first + count {
                let target = gpa + (at - va) + ((i - first) as u64) * PAGE;
                self.set_leaf(leaf_table, i, (target & PTE_ADDR) | flags, stale);
            }
            at += count as u64 * PAGE;
        }
        Ok(())
    }

    /// Removes the mappings in `[va, va + len)` and frees tables left empty.
    pub fn unmap(&mut self, va: u64, len: u64, stale: &mut Stale) {
        let end = va.saturating_add(len).min(USER_TOP);
        if va < end {
            self.range(self.root, 4, 0, va, end, &mut |_| 0, stale);
        }
    }

    /// Changes the protection of the pages mapped in `[va, va + len)`.
    pub fn protect(&mut self, va: u64, len: u64, prot: i32, stale: &mut Stale) {
        let end = va.saturating_add(len).min(USER_TOP);
        let flags = leaf_flags(prot);
        if va < end {
            self.range(
                self.root,
                4,
                0,
                va,
                end,
                &mut |old| old & PTE_ADDR | flags,
                stale,
            );
        }
    }

    /// The guest-physical address `va` maps to, with the leaf entry, if present.
    pub fn translate(&self, va: u64) -> Option<(u64, u64)> {
        if va >= USER_TOP {
            return None;
        }
        let mut table = self.root;
        for level in (2..=4).rev() {
            let entry = self.mem.read(table, index(va, level));
            if entry & PTE_P == 0 {
                return None;
            }
            table = entry & PTE_ADDR;
        }
        let leaf = self.mem.read(table, index(va, 1));
        (leaf & PTE_P != 0).then_some(((leaf & PTE_ADDR) | (va & (PAGE - 1)), leaf))
    }

    /// The leaf table for `va`, creating the tables on the way.
    fn walk_create(&mut self, va: u64) -> Result<u64, OutOfTables> {
        let mut table = self.root;
        for level in (2..=4).rev() {
            let i = index(va, level);
            let entry = self.mem.read(table, i);
            table = if entry & PTE_P != 0 {
                entry & PTE_ADDR
            } else {
                let child = self.mem.alloc().ok_or(OutOfTables)?;
                self.used.insert(child, 0);
                // Permissions are decided at the leaf; upper levels allow everything.
                self.mem.write(table, i, child | PTE_P | PTE_W | PTE_U);
                if table != self.root {
                    *self.used.entry(table).or_default() += 1;
                }
                child
            };
        }
        Ok(table)
    }

    fn set_leaf(&mut self, table: u64, i: usize, new: u64, stale: &mut Stale) {
        let old = self.mem.read(table, i);
        if old == new {
            return;
        }
        if tightens(old, new) {
            stale.add(old & PTE_ADDR);
        }
        self.mem.write(table, i, new);
        let count = self.used.entry(table).or_default();
        match (old != 0, new != 0) {
            (false, true) => *count += 1,
            (true, false) => *count = count.saturating_sub(1),
            _ => {}
        }
    }

    /// Applies `change` to every existing leaf entry in `[lo, hi)` below `table` (of
    /// `level`, covering addresses from `base`); a change to 0 removes the entry. Returns
    /// whether `table` is now empty. Missing subtrees are skipped whole, so a huge sparse
    /// range costs only what is mapped in it.
    #[allow(clippy::too_many_arguments)]
    fn range(
        &mut self,
        table: u64,
        level: u32,
        base: u64,
        lo: u64,
        hi: u64,
        change: &mut dyn FnMut(u64) -> u64,
        stale: &mut Stale,
    ) -> bool {
        let size = span(level);
        let first = ((lo.max(base) - base) / size) as usize;
        let last = (((hi - base).div_ceil(size)) as usize).min(ENTRIES);
        for i in first..last {
            let entry = self.mem.read(table, i);
            if entry == 0 {
                continue;
            }
            let start = base + i as u64 * size;
            if level == 1 {
                let new = change(entry);
                self.set_leaf(table, i, new, stale);
                continue;
            }
            if entry & PTE_P == 0 {
                continue;
            }
            let child = entry & PTE_ADDR;
            let (clo, chi) = (lo.max(start), hi.min(start + size));
            if self.range(child, level - 1, start, clo, chi, change, stale) {
                self.mem.write(table, i, 0);
                self.used.remove(&child);
                self.mem.free(child);
                if table != self.root {
                    let count = self.used.entry(table).or_default();
                    *count = count.saturating_sub(1);
                }
            }
        }
        table != self.root && self.used.get(&table).copied().unwrap_or(0) == 0
    }
}

impl<M: TableMemory> Drop for PageTables<M> {
    fn drop(&mut self) {
        let mut stale = Stale::default();
        self.unmap(0, USER_TOP, &mut stale);
        // The root's upper-half entries are the platform's: cleared so the page is all
        // zeros when given back.
        for i in 0..ENTRIES {
            if self.mem.read(self.root, i) != 0 {
                self.mem.write(self.root, i, 0);
            }
        }
        self.mem.free(self.root);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Table pages in a HashMap; freed pages are checked to be zero and never reused, as
    /// the KVM table memory does.
    #[derive(Default)]
    struct Mem {
        pages: HashMap<u64, Box<[u64; ENTRIES]>>,
        next: u64,
        freed: Vec<u64>,
        limit: Option<usize>,
    }

    impl TableMemory for Mem {
        fn alloc(&mut self) -> Option<u64> {
            if self.limit.is_some_and(|l| self.pages.len() >= l) {
                return None;
            }
            self.next += PAGE;
            let gpa = 0x1_0000_0000 + self.next;
            self.pages.insert(gpa, Box::new([0; ENTRIES]));
            Some(gpa)
        }
        fn free(&mut self, gpa: u64) {
            let page = self
                .pages
                .remove(&gpa)
                .expect("freeing a page never allocated");
            assert!(page.iter().all(|&e| e == 0), "freed table not empty");
            self.freed.push(gpa);
        }
        fn read(&self, gpa: u64, index: usize) -> u64 {
            self.pages[&gpa][index]
        }
        fn write(&mut self, gpa: u64, index: usize, value: u64) {
            self.pages.get_mut(&gpa).expect("write to unknown page")[index] = value;
        }
    }

    const RW: i32 = libc::PROT_READ | libc::PROT_WRITE;
    const RO: i32 = libc::PROT_READ;

    fn tables() -> PageTables<Mem> {
        PageTables::new(Mem::default(), &[(511, 0xabc000 | PTE_P)]).unwrap()
    }

    #[test]
    fn map_translates_every_page_with_its_permissions() {
        let mut pt = tables();
        let mut stale = Stale::default();
        pt.map(0x40_0000, 3 * PAGE, 0x9000, RW, &mut stale).unwrap();
        assert!(stale.is_empty());
        for i in 0..3 {
            let (gpa, leaf) = pt.translate(0x40_0000 + i * PAGE + 5).unwrap();
            assert_eq!(gpa, 0x9000 + i * PAGE + 5);
            assert_eq!(
                leaf & (PTE_P | PTE_W | PTE_U | PTE_NX),
                PTE_P | PTE_W | PTE_U | PTE_NX
            );
        }
        assert_eq!(pt.translate(0x40_3000), None);
        // Three levels of tables below the root.
        assert_eq!(pt.tables(), 3);
        let exec = libc::PROT_READ | libc::PROT_EXEC;
        pt.map(0x50_0000, PAGE, 0x20000, exec, &mut stale).unwrap();
        let (_, leaf) = pt.translate(0x50_0000).unwrap();
        assert_eq!(leaf & (PTE_W | PTE_NX), 0);
    }

    #[test]
    fn map_across_table_boundaries() {
        let mut pt = tables();
        let mut stale = Stale::default();
        // 2 MiB - 1 page up to 1 GiB + 1 page: crosses leaf and directory tables.
        let va = (1 << 30) - PAGE;
        pt.map(va, 3 * PAGE, 0x100000, RO, &mut stale).unwrap();
        assert_eq!(pt.translate(va).unwrap().0, 0x100000);
        assert_eq!(pt.translate(va + PAGE).unwrap().0, 0x101000);
        assert_eq!(pt.translate(va + 2 * PAGE).unwrap().0, 0x102000);
        // Two leaf tables, two directories, one PDPT.
        assert_eq!(pt.tables(), 5);
    }

    #[test]
    fn replacing_a_mapping_reports_the_old_page() {
        let mut pt = tables();
        let mut stale = Stale::default();
        pt.map(0x40_0000, 2 * PAGE, 0x9000, RO, &mut stale).unwrap();
        // Copy-on-write: the first page moves to a private copy.
        pt.map(0x40_0000, PAGE, 0x50000, RW, &mut stale).unwrap();
        assert_eq!(stale.ranges, vec![(0x9000, PAGE)]);
        // The same page made writable takes nothing away.
        let mut stale = Stale::default();
        pt.map(0x40_1000, PAGE, 0xa000, RW, &mut stale).unwrap();
        assert!(stale.is_empty());
    }

    #[test]
    fn protect_tightening_is_stale_and_prot_none_keeps_the_target() {
        let mut pt = tables();
        let mut stale = Stale::default();
        pt.map(0x40_0000, 4 * PAGE, 0x9000, RW, &mut stale).unwrap();
        pt.protect(0x40_1000, 2 * PAGE, RO, &mut stale);
        assert_eq!(stale.ranges, vec![(0xa000, 2 * PAGE)]);
        assert_eq!(pt.translate(0x40_1000).unwrap().1 & PTE_W, 0);
        assert_ne!(pt.translate(0x40_0000).unwrap().1 & PTE_W, 0);
        let mut stale = Stale::default();
        pt.protect(0x40_0000, 4 * PAGE, libc::PROT_NONE, &mut stale);
        assert_eq!(stale.ranges, vec![(0x9000, 4 * PAGE)]);
        assert_eq!(pt.translate(0x40_0000), None);
        // Loosening again restores the same pages and reports nothing.
        let mut stale = Stale::default();
        pt.protect(0x40_0000, 4 * PAGE, RW, &mut stale);
        assert!(stale.is_empty());
        assert_eq!(pt.translate(0x40_3000).unwrap().0, 0xc000);
    }

    #[test]
    fn protect_leaves_unmapped_pages_unmapped() {
        let mut pt = tables();
        let mut stale = Stale::default();
        pt.map(0x40_0000, PAGE, 0x9000, RO, &mut stale).unwrap();
        pt.protect(0x40_0000, 16 * PAGE, RW, &mut stale);
        assert!(pt.translate(0x40_1000).is_none());
        assert!(pt.translate(0x40_0000).is_some());
    }

    #[test]
    fn unmap_frees_empty_tables_and_keeps_the_platform_entry() {
        let mut pt = tables();
        let mut stale = Stale::default();
        pt.map(0x40_0000, 2 * PAGE, 0x9000, RW, &mut stale).unwrap();
        pt.map(0x7fff_0000_0000, PAGE, 0x20000, RW, &mut stale)
            .unwrap();
        assert_eq!(pt.tables(), 6);
        pt.unmap(0x40_0000, PAGE, &mut stale);
        assert_eq!(stale.ranges, vec![(0x9000, PAGE)]);
        assert_eq!(pt.tables(), 6, "the leaf table still holds a page");
        pt.unmap(0x40_1000, PAGE, &mut stale);
        assert_eq!(pt.tables(), 3, "the first range's three tables are freed");
        assert_eq!(pt.memory().freed.len(), 3);
        assert!(pt.translate(0x7fff_0000_0000).is_some());
        assert_eq!(pt.memory().read(pt.root(), 511), 0xabc000 | PTE_P);
    }

    #[test]
    fn huge_sparse_ranges_cost_only_what_is_mapped() {
        let mut pt = tables();
        let mut stale = Stale::default();
        let spots = [0x10000, 0x5555_5555_0000, 0x7fff_ffff_e000, 0x40_0000_0000];
        for (i, &va) in spots.iter().enumerate() {
            pt.map(va, PAGE, (i as u64 + 1) * PAGE, RW, &mut stale)
                .unwrap();
        }
        // The whole user half: a walk per page would be 2^35 steps.
        let start = std::time::Instant::now();
        pt.protect(0, USER_TOP, RO, &mut stale);
        let total: u64 = stale.ranges.iter().map(|r| r.1).sum();
        assert_eq!(total, 4 * PAGE, "{:?}", stale.ranges);
        pt.unmap(0, USER_TOP, &mut stale);
        assert!(start.elapsed() < std::time::Duration::from_secs(1));
        assert_eq!(pt.tables(), 0);
        for va in spots {
            assert_eq!(pt.translate(va), None);
        }
    }

    #[test]
    fn running_out_of_table_memory_is_an_error() {
        let mem = Mem {
            limit: Some(3),
            ..Mem::default()
        };
        let mut pt = PageTables::new(mem, &[]).unwrap();
        let mut stale = Stale::default();
        assert_eq!(pt.map(0x40_0000, PAGE, 0, RW, &mut stale), Err(OutOfTables));
    }

    #[test]
    fn drop_gives_every_page_back() {
        let mut pt = tables();
        let mut stale = Stale::default();
        pt.map(0x40_0000, 600 * PAGE, 0, RW, &mut stale).unwrap();
        let tables = pt.tables();
        drop(pt);
        // Nothing to observe after the drop but the checks inside Mem::free; the count
        // shows the mapping needed two leaf tables.
        assert_eq!(tables, 4);
    }

    #[test]
    fn leaf_flags_follow_x86_rules() {
        assert_eq!(leaf_flags(libc::PROT_NONE), PTE_NOACCESS);
        assert_eq!(leaf_flags(libc::PROT_WRITE), PTE_P | PTE_U | PTE_W | PTE_NX);
        assert_eq!(leaf_flags(libc::PROT_EXEC), PTE_P | PTE_U);
    }
}
