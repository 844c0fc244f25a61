//! Reading a running Linux's mm state out of guest RAM with a [`Layout`]:
//! zones and their buddy free lists, the per-CPU page lists, pageblock
//! migrate types, CMA areas and bitmaps, and every `struct page`.
//!
//! Read only at a quiet point (the CPU idle in WFI: no task is inside a
//! zone-lock, pcp-lock or cma-lock section, no interrupt handler runs), so
//! that no list is half-updated. Everything is untrusted: list walks are
//! bounded, pointers checked against the page array and the linear map.
use super::layout::Layout;
use crate::memory::GuestRam;

/// Why the kernel's state could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// A kernel virtual address outside the linear map of RAM.
    #[error("{what}: kernel address {va:#010x} is not in the linear map of guest RAM")]
    NotLinear { what: &'static str, va: u32 },
    /// No PAGE_OFFSET/PHYS_OFFSET makes `init_uts_ns` read back OSRELEASE.
    #[error("cannot place the kernel's linear map: init_uts_ns does not hold release {0:?} at any PAGE_OFFSET")]
    NoLinearMap(String),
    /// A value that cannot be right.
    #[error("{what} = {value:#x}: {why}")]
    Absurd { what: &'static str, value: u64, why: String },
}

type R<T> = Result<T, ReadError>;

/// The kernel's linear map: lowmem VA = PA - phys_offset + page_offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinearMap {
    pub page_offset: u32,
    pub phys_offset: u64,
}

/// Kernel memory through the linear map.
pub struct Kmem<'a> {
    pub ram: &'a GuestRam,
    pub map: LinearMap,
}

impl<'a> Kmem<'a> {
    /// Find the linear map: the PAGE_OFFSET among ARM's VMSPLIT choices
    /// (3G, 3G_OPT, 2G, 1G) with RAM's base as PHYS_OFFSET at which
    /// `init_uts_ns.name.release` reads back vmcoreinfo's OSRELEASE.
    pub fn find(ram: &'a GuestRam, l: &Layout) -> R<Kmem<'a>> {
        for page_offset in [0xc000_0000u32, 0xb000_0000, 0x8000_0000, 0x4000_0000] {
            let k = Kmem { ram, map: LinearMap { page_offset, phys_offset: ram.base() } };
            // struct new_utsname: sysname[65], nodename[65], release[65]
            if let Ok(rel) = k.cstr("init_uts_ns", l.init_uts_ns.wrapping_add(l.uts_name + 130), 65) {
                if rel == l.osrelease {
                    return Ok(k);
                }
            }
        }
        Err(ReadError::NoLinearMap(l.osrelease.clone()))
    }
    /// The physical address of lowmem `va`.
    pub fn pa(&self, what: &'static str, va: u32, len: u32) -> R<u64> {
        let off = va.checked_sub(self.map.page_offset).ok_or(ReadError::NotLinear { what, va })?;
        let pa = self.map.phys_offset + off as u64;
        if !self.ram.contains(pa, len as usize) {
            return Err(ReadError::NotLinear { what, va });
        }
        Ok(pa)
    }
    pub fn bytes(&self, what: &'static str, va: u32, len: u32) -> R<Vec<u8>> {
        let pa = self.pa(what, va, len)?;
        let mut b = vec![0u8; len as usize];
        self.ram.read(pa, &mut b).map_err(|_| ReadError::NotLinear { what, va })?;
        Ok(b)
    }
    pub fn u32(&self, what: &'static str, va: u32) -> R<u32> {
        let pa = self.pa(what, va, 4)?;
        self.ram.read_u32(pa).ok_or(ReadError::NotLinear { what, va })
    }
    /// A NUL-terminated string of at most `max` bytes.
    pub fn cstr(&self, what: &'static str, va: u32, max: u32) -> R<String> {
        let b = self.bytes(what, va, max)?;
        let n = b.iter().position(|&c| c == 0).unwrap_or(b.len());
        Ok(String::from_utf8_lossy(&b[..n]).into_owned())
    }
}

/// One free block on a buddy or per-CPU list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FreeBlock {
    pub pfn: u32,
    pub order: u32,
    /// The migrate type of the list it is on.
    pub mt: u32,
}

/// One zone as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Zone {
    pub idx: usize,
    pub name: String,
    pub start_pfn: u32,
    pub spanned: u32,
    pub present: u32,
    pub managed: u32,
    pub cma_pages: u32,
    pub nr_isolate_pageblock: u32,
    /// `free_area[order].nr_free` (blocks).
    pub nr_free: Vec<u32>,
    /// Blocks on `free_area[order].free_list[mt]`, walked: `[order][mt]`.
    pub list_blocks: Vec<Vec<u32>>,
    /// Every block on the buddy lists, in list order.
    pub buddy: Vec<FreeBlock>,
    /// Every block on CPU 0's per-CPU lists.
    pub pcp: Vec<FreeBlock>,
    /// `pcp->count` (pages).
    pub pcp_count: u32,
    /// `vm_stat[NR_FREE_PAGES]` and `[NR_FREE_CMA_PAGES]` (global part, as
    /// `/proc/zoneinfo` and `/proc/meminfo` print them).
    pub vm_free: i64,
    pub vm_free_cma: i64,
    /// The per-CPU deltas not yet folded into them (CPU 0).
    pub diff_free: i64,
    pub diff_free_cma: i64,
    /// Migrate type of each pageblock from `pageblock_start_pfn(start_pfn)`.
    pub pageblock_mt: Vec<u8>,
    /// Raw pageblock words (`NR_PAGEBLOCK_BITS` per block, unsigned long).
    pub pageblock_words: Vec<u32>,
}

impl Zone {
    pub fn end_pfn(&self) -> u32 {
        self.start_pfn + self.spanned
    }
    /// `populated_zone`.
    pub fn populated(&self) -> bool {
        self.present > 0
    }
}

/// One CMA area as read (`cma_areas[i]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cma {
    pub name: String,
    pub base_pfn: u32,
    pub count: u32,
    pub order_per_bit: u32,
    /// Kernel virtual address of the bitmap (0: none).
    pub bitmap_va: u32,
    /// Empty when the area has no bitmap (never activated, or failed).
    pub bitmap: Vec<u32>,
}

impl Cma {
    /// Pages the bitmap says are allocated.
    pub fn used_pages(&self) -> u64 {
        let nbits = (self.count >> self.order_per_bit) as usize;
        let mut set = 0u64;
        for b in 0..nbits {
            if self.bitmap.get(b / 32).is_some_and(|w| (w >> (b % 32)) & 1 != 0) {
                set += 1;
            }
        }
        set << self.order_per_bit
    }
}

/// The raw fields of one `struct page`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawPage {
    pub flags: u32,
    pub refcount: i32,
    pub mapcount: i32,
    pub private: u32,
    pub mapping: u32,
    pub lru_next: u32,
    pub lru_prev: u32,
    pub compound_head: u32,
}

/// The kernel's mm state at one point.
#[derive(Clone, Debug)]
pub struct LinuxMm {
    pub layout: Layout,
    pub map: LinearMap,
    pub node_start_pfn: u32,
    pub node_spanned: u32,
    /// Kernel virtual address of `mem_map` (the page of `node_start_pfn`).
    pub mem_map_va: u32,
    pub zones: Vec<Zone>,
    pub cma: Vec<Cma>,
    /// `totalcma_pages`.
    pub totalcma_pages: u32,
    /// `pages[i]` is pfn `node_start_pfn + i`.
    pub pages: Vec<RawPage>,
}

/// Longest list walked before it is called a cycle.
const MAX_WALK: usize = 1 << 22;

impl LinuxMm {
    /// Read everything at this moment (call it at a quiet point).
    pub fn read(ram: &GuestRam, l: &Layout) -> R<LinuxMm> {
        let k = Kmem::find(ram, l)?;
        let mem_map_va = k.u32("mem_map", l.mem_map)?;
        let pgdat = l.contig_page_data;
        let node_start_pfn = k.u32("node_start_pfn", pgdat + l.pgdat_start_pfn)?;
        let node_spanned = k.u32("node_spanned_pages", pgdat + l.pgdat_spanned)?;
        let ram_pages = (ram.len() as u64 / 4096) as u32;
        if node_spanned == 0 || node_spanned > ram_pages {
            return Err(ReadError::Absurd { what: "node_spanned_pages", value: node_spanned as u64, why: format!("RAM has {ram_pages} pages") });
        }
        let pages = read_pages(&k, l, mem_map_va, node_spanned)?;
        let nr_zones = k.u32("nr_zones", pgdat + l.pgdat_nr_zones)?;
        if nr_zones == 0 || nr_zones > 8 {
            return Err(ReadError::Absurd { what: "nr_zones", value: nr_zones as u64, why: "want 1..=8".into() });
        }
        let pcpu0 = k.u32("__per_cpu_offset[0]", l.per_cpu_offset)?;
        let mut mm = LinuxMm { layout: l.clone(), map: k.map, node_start_pfn, node_spanned, mem_map_va, zones: Vec::new(), cma: Vec::new(), totalcma_pages: 0, pages };
        for z in 0..nr_zones as usize {
            let zva = pgdat + l.pgdat_node_zones + z as u32 * l.zone_size;
            let zone = mm.read_zone(&k, z, zva, pcpu0)?;
            mm.zones.push(zone);
        }
        mm.totalcma_pages = k.u32("totalcma_pages", l.totalcma_pages)?;
        let n = k.u32("cma_area_count", l.cma_area_count)?;
        if n > l.max_cma_areas {
            return Err(ReadError::Absurd { what: "cma_area_count", value: n as u64, why: format!("MAX_CMA_AREAS is {}", l.max_cma_areas) });
        }
        for i in 0..n {
            let a = l.cma_areas + i * l.cma_size;
            let base_pfn = k.u32("cma.base_pfn", a + l.cma_base_pfn)?;
            let count = k.u32("cma.count", a + l.cma_count)?;
            let order_per_bit = k.u32("cma.order_per_bit", a + l.cma_order_per_bit)?;
            if order_per_bit >= 20 {
                return Err(ReadError::Absurd { what: "cma.order_per_bit", value: order_per_bit as u64, why: "too large".into() });
            }
            let bitmap_va = k.u32("cma.bitmap", a + l.cma_bitmap)?;
            let words = (count >> order_per_bit).div_ceil(32);
            let bitmap = if bitmap_va == 0 || count == 0 {
                Vec::new()
            } else {
                k.bytes("cma.bitmap", bitmap_va, words * 4)?.chunks_exact(4).map(|c| u32::from_le_bytes(c.try_into().unwrap())).collect()
            };
            let name = k.cstr("cma.name", a + l.cma_name, l.cma_name_len)?;
            mm.cma.push(Cma { name, base_pfn, count, order_per_bit, bitmap_va, bitmap });
        }
        Ok(mm)
    }

    /// The guest physical address of lowmem `va` (the linear map).
    pub fn lowmem_pa(&self, va: u32) -> u64 {
        va.wrapping_sub(self.map.page_offset) as u64 + self.map.phys_offset
    }
    /// The guest physical address of `pfn`'s `struct page`.
    pub fn page_pa(&self, pfn: u32) -> Option<u64> {
        let i = pfn.checked_sub(self.node_start_pfn).filter(|&i| i < self.node_spanned)?;
        Some(self.lowmem_pa(self.mem_map_va) + i as u64 * self.layout.page_size as u64)
    }
    /// `vm_stat[NR_FREE_PAGES]` summed over zones (what `/proc/meminfo`'s
    /// `MemFree` prints: per-CPU deltas not folded in).
    pub fn global_free_pages(&self) -> i64 {
        self.zones.iter().map(|z| z.vm_free).sum()
    }

    /// The page of `pfn`.
    pub fn page(&self, pfn: u32) -> Option<&RawPage> {
        self.pages.get(pfn.checked_sub(self.node_start_pfn)? as usize)
    }

    /// The pfn a `struct page *` (or a pointer to its `lru` member, `off`
    /// bytes in) stands for; None when it is not inside `mem_map`.
    fn pfn_of(&self, ptr: u32, off: u32) -> Option<u32> {
        let p = ptr.checked_sub(self.mem_map_va)?.checked_sub(off)?;
        let sz = self.layout.page_size;
        if p % sz != 0 || p / sz >= self.node_spanned {
            return None;
        }
        Some(self.node_start_pfn + p / sz)
    }

    fn read_zone(&self, k: &Kmem, idx: usize, zva: u32, pcpu0: u32) -> R<Zone> {
        let l = &self.layout;
        let name_va = k.u32("zone.name", zva + l.zone_name)?;
        let name = k.cstr("zone.name", name_va, 16).unwrap_or_else(|_| format!("zone{idx}"));
        let start_pfn = k.u32("zone_start_pfn", zva + l.zone_start_pfn)?;
        let spanned = k.u32("spanned_pages", zva + l.zone_spanned)?;
        let present = k.u32("present_pages", zva + l.zone_present)?;
        let managed = k.u32("managed_pages", zva + l.zone_managed)?;
        let cma_pages = k.u32("cma_pages", zva + l.zone_cma_pages)?;
        let nr_isolate_pageblock = k.u32("nr_isolate_pageblock", zva + l.zone_nr_isolate)?;
        let vm_free = k.u32("vm_stat", zva + l.zone_vm_stat + 4 * l.nr_free_pages_item)? as i32 as i64;
        let vm_free_cma = k.u32("vm_stat", zva + l.zone_vm_stat + 4 * l.nr_free_cma_item)? as i32 as i64;
        let mut z = Zone {
            idx,
            name,
            start_pfn,
            spanned,
            present,
            managed,
            cma_pages,
            nr_isolate_pageblock,
            nr_free: Vec::new(),
            list_blocks: Vec::new(),
            buddy: Vec::new(),
            pcp: Vec::new(),
            pcp_count: 0,
            vm_free,
            vm_free_cma,
            diff_free: 0,
            diff_free_cma: 0,
            pageblock_mt: Vec::new(),
            pageblock_words: Vec::new(),
        };
        if spanned == 0 {
            z.list_blocks = vec![vec![0; l.migrate_types as usize]; l.max_order as usize];
            z.nr_free = vec![0; l.max_order as usize];
            return Ok(z);
        }
        if start_pfn < self.node_start_pfn || start_pfn as u64 + spanned as u64 > self.node_start_pfn as u64 + self.node_spanned as u64 {
            return Err(ReadError::Absurd { what: "zone span", value: start_pfn as u64, why: format!("zone {} [{start_pfn:#x}+{spanned:#x}) is outside the node", z.name) });
        }
        for order in 0..l.max_order {
            let fa = zva + l.zone_free_area + order * l.free_area_size;
            z.nr_free.push(k.u32("free_area.nr_free", fa + l.free_area_nr_free)?);
            let mut per_mt = Vec::new();
            for mt in 0..l.migrate_types {
                let head = fa + l.free_area_free_list + mt * 8;
                let blocks = self.walk(k, "free_list", head, |pfn| FreeBlock { pfn, order, mt })?;
                per_mt.push(blocks.len() as u32);
                z.buddy.extend(blocks);
            }
            z.list_blocks.push(per_mt);
        }
        // CPU 0's per-CPU lists and counter deltas.
        let pcp = k.u32("zone.per_cpu_pageset", zva + l.zone_pcp)?.wrapping_add(pcpu0);
        z.pcp_count = k.u32("per_cpu_pages.count", pcp + l.pcp_count)?;
        for pindex in 0..l.pcp_nr_lists {
            let head = pcp + l.pcp_lists + pindex * 8;
            let (order, mt) = (pindex / l.migrate_pcptypes, pindex % l.migrate_pcptypes);
            z.pcp.extend(self.walk(k, "pcp list", head, |pfn| FreeBlock { pfn, order, mt })?);
        }
        let stats = k.u32("zone.per_cpu_zonestats", zva + l.zone_pcp_stats)?.wrapping_add(pcpu0);
        let diff = k.bytes("vm_stat_diff", stats + l.zonestat_diff, l.nr_free_cma_item.max(l.nr_free_pages_item) + 1)?;
        z.diff_free = diff[l.nr_free_pages_item as usize] as i8 as i64;
        z.diff_free_cma = diff[l.nr_free_cma_item as usize] as i8 as i64;
        // Pageblock bits: FLATMEM keeps them per zone, from the pageblock
        // holding zone_start_pfn.
        let pb = 1u32 << l.pageblock_order;
        let first = start_pfn / pb * pb;
        let nblocks = (start_pfn + spanned - first).div_ceil(pb);
        let words = (nblocks * l.nr_pageblock_bits).div_ceil(32);
        let flags_va = k.u32("zone.pageblock_flags", zva + l.zone_pageblock_flags)?;
        z.pageblock_words = k.bytes("pageblock_flags", flags_va, words * 4)?.chunks_exact(4).map(|c| u32::from_le_bytes(c.try_into().unwrap())).collect();
        let mask = l.migratetype_mask;
        for b in 0..nblocks {
            let bit = b * l.nr_pageblock_bits;
            let w = z.pageblock_words[(bit / 32) as usize];
            z.pageblock_mt.push(((w >> (bit % 32)) & mask) as u8);
        }
        Ok(z)
    }

    /// Walk the `list_head` at `head` (entries are `struct page`s linked
    /// through `lru`), making each pfn into an item.
    fn walk<T>(&self, k: &Kmem, what: &'static str, head: u32, mut item: impl FnMut(u32) -> T) -> R<Vec<T>> {
        let off = self.layout.page_lru;
        let mut out = Vec::new();
        let mut cur = k.u32(what, head)?;
        while cur != head {
            let Some(pfn) = self.pfn_of(cur, off) else {
                return Err(ReadError::Absurd { what, value: cur as u64, why: format!("list at {head:#010x} links to something that is not a struct page") });
            };
            out.push(item(pfn));
            if out.len() > MAX_WALK {
                return Err(ReadError::Absurd { what, value: head as u64, why: "list does not end".into() });
            }
            cur = self.page(pfn).map(|p| p.lru_next).unwrap_or(head);
        }
        Ok(out)
    }

    /// Migrate type of the pageblock holding `pfn` (None outside every zone).
    pub fn pageblock_mt(&self, pfn: u32) -> Option<u8> {
        let z = self.zones.iter().find(|z| z.spanned > 0 && pfn >= z.start_pfn && pfn < z.end_pfn())?;
        let pb = 1u32 << self.layout.pageblock_order;
        let first = z.start_pfn / pb * pb;
        z.pageblock_mt.get(((pfn - first) / pb) as usize).copied()
    }
}

/// One user address space: a task's `mm`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddressSpace {
    /// The first task found using it.
    pub pid: u32,
    /// Physical address of its first-level table (`mm->pgd`).
    pub pgd_pa: u64,
}

/// Every distinct `mm` of the task list (`init_task.tasks`; kernel
/// threads have none).
pub fn address_spaces(ram: &GuestRam, l: &Layout) -> R<Vec<AddressSpace>> {
    let k = Kmem::find(ram, l)?;
    let head = l.init_task + l.task_tasks;
    let mut cur = k.u32("task_struct.tasks", head)?;
    let mut out: Vec<AddressSpace> = Vec::new();
    let mut n = 0;
    while cur != head {
        n += 1;
        if n > 100_000 {
            return Err(ReadError::Absurd { what: "task list", value: head as u64, why: "does not end".into() });
        }
        let task = cur.wrapping_sub(l.task_tasks);
        let mm = k.u32("task_struct.mm", task + l.task_mm)?;
        if mm != 0 {
            let pgd = k.u32("mm_struct.pgd", mm + l.mm_pgd)?;
            let pgd_pa = k.pa("mm_struct.pgd", pgd, 16 << 10)?;
            if !out.iter().any(|a| a.pgd_pa == pgd_pa) {
                out.push(AddressSpace { pid: k.u32("task_struct.pid", task + l.task_pid)?, pgd_pa });
            }
        }
        cur = k.u32("task_struct.tasks", cur)?;
    }
    Ok(out)
}

/// Every user page mapping of `a` (below the modules area, 16 MiB under
/// PAGE_OFFSET: ARM's TASK_SIZE): (va, frame).
pub fn user_pages(ram: &GuestRam, map: &LinearMap, a: &AddressSpace) -> Vec<(u32, u32)> {
    let regs = crate::memory::walk::MmuRegs { sctlr: 1, ttbr0: a.pgd_pa as u32, ttbr1: 0, ttbcr: 0, dacr: 0xffff_ffff, privileged: true };
    let task_size = map.page_offset.wrapping_sub(16 << 20);
    crate::introspect::va::user_mappings(ram, &regs).into_iter().filter(|m| m.va < task_size).map(|m| (m.va, (m.pa >> 12) as u32)).collect()
}

/// One entry of a Linux page table, as the kernel itself reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pte {
    /// `pte_none`.
    None,
    /// `pte_present`: the frame it maps.
    Present(u32),
    /// Not present, not none: a swap-format entry (`__swp_type`,
    /// `__swp_offset`); a migration entry's offset is the frame being
    /// migrated ([`Pte::swp_offset_pfn`]).
    Swap { ty: u32, offset: u32 },
}

/// `SWP_PFN_BITS` on 32-bit ARM without LPAE: MAX_PHYSMEM_BITS (32) -
/// PAGE_SHIFT (12). A migration entry's offset holds the pfn in these
/// bits and its young and dirty bits above them (`SWP_MIG_YOUNG_BIT`).
pub const SWP_PFN_BITS: u32 = 20;

impl Pte {
    /// `swp_offset_pfn`: the frame a migration entry names.
    pub fn swp_offset_pfn(offset: u32) -> u32 {
        offset & ((1 << SWP_PFN_BITS) - 1)
    }
}

impl Pte {
    /// ARM's `pte_present` (L_PTE_PRESENT, bit 0) and its swap format
    /// (arch/arm/include/asm/pgtable.h: type in bits 2..6, offset above).
    pub fn decode(v: u32) -> Pte {
        if v == 0 {
            Pte::None
        } else if v & 1 != 0 {
            Pte::Present(v >> 12)
        } else {
            Pte::Swap { ty: (v >> 2) & 0x1f, offset: v >> 7 }
        }
    }
}

/// Where the Linux PTE of `va` is in the address space whose first-level
/// table is at `pgd_pa`. ARM Linux (two-level, not LPAE) keeps each
/// page-table page as two Linux tables (+0, +1024) and the two hardware
/// tables they shadow (+2048, +3072); a first-level entry points at the
/// hardware one, the Linux one is 2048 bytes below. The Linux entry is
/// the one that says what is mapped: an old (not young) page has a Linux
/// PTE but no hardware one.
pub fn linux_pte_pa(ram: &GuestRam, pgd_pa: u64, va: u32) -> Option<u64> {
    let l1 = ram.read_u32(pgd_pa + (va >> 20) as u64 * 4)?;
    if l1 & 3 != 1 {
        return None;
    }
    let hw = (l1 & !0x3ff) as u64;
    Some(hw.checked_sub(2048)? + ((va >> 12) & 0xff) as u64 * 4)
}

/// The Linux PTE of `va` (see [`linux_pte_pa`]); None when no page table covers it.
pub fn linux_pte(ram: &GuestRam, pgd_pa: u64, va: u32) -> Option<Pte> {
    linux_pte_pa(ram, pgd_pa, va).and_then(|pa| ram.read_u32(pa)).map(Pte::decode)
}

/// Every non-none Linux PTE of `a` below the modules area (ARM's
/// TASK_SIZE, 16 MiB under PAGE_OFFSET): (va, entry).
pub fn linux_ptes(ram: &GuestRam, map: &LinearMap, a: &AddressSpace) -> Vec<(u32, Pte)> {
    let task_size = map.page_offset.wrapping_sub(16 << 20);
    let mut out = Vec::new();
    let mut l1 = vec![0u8; (task_size >> 20) as usize * 4];
    if ram.read(a.pgd_pa, &mut l1).is_err() {
        return out;
    }
    let mut table = [0u8; 1024];
    for (mb, e) in l1.chunks_exact(4).enumerate() {
        let e = u32::from_le_bytes(e.try_into().unwrap());
        if e & 3 != 1 {
            continue;
        }
        let Some(lpa) = ((e & !0x3ff) as u64).checked_sub(2048) else { continue };
        if ram.read(lpa, &mut table).is_err() {
            continue;
        }
        for (i, w) in table.chunks_exact(4).enumerate() {
            let v = u32::from_le_bytes(w.try_into().unwrap());
            if v != 0 {
                out.push(((mb as u32) << 20 | (i as u32) << 12, Pte::decode(v)));
            }
        }
    }
    out
}

/// Every `struct page` of the node, in one copy out of RAM.
fn read_pages(k: &Kmem, l: &Layout, mem_map_va: u32, n: u32) -> R<Vec<RawPage>> {
    let sz = l.page_size;
    let raw = k.bytes("mem_map", mem_map_va, n * sz)?;
    let f = |b: &[u8], o: u32| u32::from_le_bytes(b[o as usize..o as usize + 4].try_into().unwrap());
    Ok(raw
        .chunks_exact(sz as usize)
        .map(|b| RawPage {
            flags: f(b, l.page_flags),
            refcount: f(b, l.page_refcount) as i32,
            mapcount: f(b, l.page_mapcount) as i32,
            private: f(b, l.page_private),
            mapping: f(b, l.page_mapping),
            lru_next: f(b, l.page_lru),
            lru_prev: f(b, l.page_lru + 4),
            compound_head: f(b, l.page_compound_head),
        })
        .collect())
}
