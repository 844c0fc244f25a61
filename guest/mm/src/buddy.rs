//! The zoned buddy allocator, following Linux 6.1 `mm/page_alloc.c`.
//!
//! Free blocks are linked through the page records (`lru_next`/`lru_prev`,
//! like Linux's `page->buddy_list`) into `zone->free_area[order]
//! .free_list[migratetype]`, so nothing here allocates.
//!
//! Simplifications against Linux, each also noted where it happens:
//! - per-cpu page lists for the one CPU are in [`crate::pcp`]: order <= 3
//!   requests go through `rmqueue_pcplist` and frees through
//!   `free_unref_page`, as in 6.1.
//! - no reclaim, compaction, kswapd or OOM killer: the slow path retries
//!   with the lowered watermarks and the reserves Linux would grant, then
//!   fails (`__GFP_NOFAIL` fails too instead of looping forever).
//! - no watermark boosting (`boost_watermark`): without kswapd nothing
//!   would ever clear the boost. `watermark_boost` stays 0.
//! - no page shuffling (`page_alloc.shuffle` is off by default in Linux).
use crate::gfp::*;
use crate::page::*;
use crate::pageblock::{MigrateType, MIGRATE_PCPTYPES, MIGRATE_TYPES};
use crate::pcp::{pcp_allowed_order, PerCpuPages, BOOT_PAGESET_BATCH, BOOT_PAGESET_HIGH, NR_ONLINE_CPUS};
use crate::profile::{MmProfile, ProfileError, MAX_ORDER_LIMIT};
use crate::types::Pfn;
use crate::zone::{zone_types, ZoneLayout, ZoneType, MAX_NR_ZONES_LIMIT};
use core::fmt;

/// `FPI_NONE`.
pub const FPI_NONE: u32 = 0;
/// `FPI_SKIP_REPORT_NOTIFY` (no free page reporting here; kept for
/// signature fidelity).
pub const FPI_SKIP_REPORT_NOTIFY: u32 = 1 << 0;
/// `FPI_TO_TAIL`: put the freed block at the tail of its free list.
pub const FPI_TO_TAIL: u32 = 1 << 1;

/// `SWAP_CLUSTER_MAX`.
pub const SWAP_CLUSTER_MAX: u64 = 32;

/// Errors of the buddy allocator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuddyError {
    /// The profile is unusable.
    Profile(ProfileError),
    /// The memory map's pageblock order differs from the profile's.
    PageblockOrderMismatch,
    /// A zone lies (partly) outside the memory map.
    ZoneOutsideMemMap(ZoneType),
    /// `order >= MAX_ORDER` (Linux: `WARN_ON_ONCE`, returns NULL).
    OrderTooLarge(u32),
    /// Conflicting zone modifiers in the GFP mask (Linux: `GFP_ZONE_BAD`).
    BadGfp(Gfp),
    /// No page could be allocated (`-ENOMEM`).
    NoMemory {
        /// Requested order.
        order: u32,
    },
    /// The PFN is not covered by the memory map.
    OutOfRange(Pfn),
    /// The PFN is not aligned to the order.
    Misaligned(Pfn, u32),
    /// The block crosses a zone boundary or the end of the memory map.
    CrossesZone(Pfn, u32),
    /// Freeing a page that is already free (refcount 0 or on a free list).
    DoubleFree(Pfn),
    /// A page is not in the state Linux's checks expect (`bad_page`).
    BadPage(Pfn, &'static str),
    /// Integrity check failure (see [`PageAlloc::check_integrity`]).
    Corrupt(Pfn, &'static str),
}

impl fmt::Display for BuddyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuddyError::Profile(e) => write!(f, "bad profile: {}", e),
            BuddyError::PageblockOrderMismatch => {
                f.write_str("memory map pageblock order differs from the profile's")
            }
            BuddyError::ZoneOutsideMemMap(z) => {
                write!(f, "zone {} lies outside the memory map", z.name())
            }
            BuddyError::OrderTooLarge(o) => write!(f, "order {} >= MAX_ORDER", o),
            BuddyError::BadGfp(g) => write!(f, "bad gfp mask {:#x}", g.0),
            BuddyError::NoMemory { order } => {
                write!(f, "page allocation failure: order:{}", order)
            }
            BuddyError::OutOfRange(p) => write!(f, "pfn {:#x} outside the memory map", p.0),
            BuddyError::Misaligned(p, o) => {
                write!(f, "pfn {:#x} not aligned to order {}", p.0, o)
            }
            BuddyError::CrossesZone(p, o) => {
                write!(f, "block pfn {:#x} order {} crosses a zone boundary", p.0, o)
            }
            BuddyError::DoubleFree(p) => write!(f, "double free of pfn {:#x}", p.0),
            BuddyError::BadPage(p, r) => write!(f, "BUG: Bad page state pfn:{:05x} ({})", p.0, r),
            BuddyError::Corrupt(p, r) => write!(f, "allocator corrupt at pfn {:#x}: {}", p.0, r),
        }
    }
}

/// A free list head (`struct list_head` of `free_list[mt]`): PFNs of the
/// first and last block, [`PFN_NONE`] when empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FreeList {
    /// First block (`list_first_entry`).
    pub head: u32,
    /// Last block.
    pub tail: u32,
}

impl FreeList {
    /// An empty list.
    pub const EMPTY: FreeList = FreeList { head: PFN_NONE, tail: PFN_NONE };
    /// `list_empty`.
    pub const fn is_empty(&self) -> bool {
        self.head == PFN_NONE
    }
}

/// `struct free_area`.
#[derive(Clone, Copy, Debug)]
pub struct FreeArea {
    /// One list per migrate type.
    pub free_list: [FreeList; MIGRATE_TYPES],
    /// Blocks on all lists of this order.
    pub nr_free: u64,
}

impl FreeArea {
    const EMPTY: FreeArea = FreeArea { free_list: [FreeList::EMPTY; MIGRATE_TYPES], nr_free: 0 };
    /// `free_area_empty`.
    pub fn free_area_empty(&self, mt: MigrateType) -> bool {
        self.free_list[mt.idx()].is_empty()
    }
}

/// `struct zone` (the fields the page allocator and the views use).
#[derive(Clone, Debug)]
pub struct Zone {
    /// Zone type (its `name`).
    pub kind: ZoneType,
    /// `zone_start_pfn`.
    pub zone_start_pfn: Pfn,
    /// `spanned_pages`.
    pub spanned_pages: u32,
    /// `present_pages`.
    pub present_pages: u32,
    /// `managed_pages`: pages handed to the buddy allocator.
    pub managed_pages: u64,
    /// `cma_pages`.
    pub cma_pages: u64,
    /// `free_area[MAX_ORDER]` (only `max_order` entries used).
    pub free_area: [FreeArea; MAX_ORDER_LIMIT],
    /// `vm_stat[NR_FREE_PAGES]`.
    pub nr_free_pages: i64,
    /// `vm_stat[NR_FREE_CMA_PAGES]`.
    pub nr_free_cma_pages: i64,
    /// `_watermark[NR_WMARK]` (min, low, high, promo).
    pub watermark: [u64; NR_WMARK],
    /// `watermark_boost` (always 0 here).
    pub watermark_boost: u64,
    /// `lowmem_reserve[MAX_NR_ZONES]`.
    pub lowmem_reserve: [u64; MAX_NR_ZONES_LIMIT],
    /// `nr_reserved_highatomic`.
    pub nr_reserved_highatomic: u64,
    /// `nr_isolate_pageblock`.
    pub nr_isolate_pageblock: u32,
    /// `per_cpu_pageset` of the one CPU.
    pub pcp: PerCpuPages,
    /// The zone left the boot pageset (`setup_zone_pageset` ran).
    pub pcp_ready: bool,
    /// `pageset_high`.
    pub pageset_high: u32,
    /// `pageset_batch`.
    pub pageset_batch: u32,
    /// `per_cpu_zonestats->stat_threshold` (`calculate_normal_threshold`).
    pub stat_threshold: u32,
}

impl Zone {
    fn new(kind: ZoneType) -> Zone {
        Zone {
            kind,
            zone_start_pfn: Pfn(0),
            spanned_pages: 0,
            present_pages: 0,
            managed_pages: 0,
            cma_pages: 0,
            free_area: [FreeArea::EMPTY; MAX_ORDER_LIMIT],
            nr_free_pages: 0,
            nr_free_cma_pages: 0,
            watermark: [0; NR_WMARK],
            watermark_boost: 0,
            lowmem_reserve: [0; MAX_NR_ZONES_LIMIT],
            nr_reserved_highatomic: 0,
            nr_isolate_pageblock: 0,
            pcp: PerCpuPages::BOOT,
            pcp_ready: false,
            pageset_high: BOOT_PAGESET_HIGH,
            pageset_batch: BOOT_PAGESET_BATCH,
            stat_threshold: 0,
        }
    }
    /// `zone_end_pfn`.
    pub fn zone_end_pfn(&self) -> Pfn {
        Pfn(self.zone_start_pfn.0 + self.spanned_pages)
    }
    /// `zone_spans_pfn`.
    pub fn zone_spans_pfn(&self, pfn: Pfn) -> bool {
        self.zone_start_pfn <= pfn && pfn < self.zone_end_pfn()
    }
    /// `populated_zone`.
    pub fn populated(&self) -> bool {
        self.present_pages != 0
    }
    /// `wmark_pages(zone, i)`.
    pub fn wmark_pages(&self, i: usize) -> u64 {
        self.watermark[i] + self.watermark_boost
    }
    /// `min_wmark_pages`.
    pub fn min_wmark_pages(&self) -> u64 {
        self.wmark_pages(WMARK_MIN)
    }
    /// `low_wmark_pages`.
    pub fn low_wmark_pages(&self) -> u64 {
        self.wmark_pages(WMARK_LOW)
    }
    /// `high_wmark_pages`.
    pub fn high_wmark_pages(&self) -> u64 {
        self.wmark_pages(WMARK_HIGH)
    }
    /// `zone_page_state(zone, NR_FREE_PAGES)` (clamped at 0 like Linux).
    pub fn free_pages(&self) -> u64 {
        self.nr_free_pages.max(0) as u64
    }
    /// `zone_page_state(zone, NR_FREE_CMA_PAGES)`.
    pub fn free_cma_pages(&self) -> u64 {
        self.nr_free_cma_pages.max(0) as u64
    }
}

/// The VM event counters and allocator statistics shown in `/proc/vmstat`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VmEvents {
    /// `pgalloc_<zone>` per zone index.
    pub pgalloc: [u64; MAX_NR_ZONES_LIMIT],
    /// `pgfree`.
    pub pgfree: u64,
    /// `pgmigrate_success` (bumped by the migration code).
    pub pgmigrate_success: u64,
    /// `pgmigrate_fail`.
    pub pgmigrate_fail: u64,
    /// `cma_alloc_success` (bumped by the CMA code).
    pub cma_alloc_success: u64,
    /// `cma_alloc_fail`.
    pub cma_alloc_fail: u64,
    /// Pages leaked by `bad_page` on the allocation path (not in Linux's
    /// vmstat; Linux taints the kernel instead).
    pub bad_pages: u64,
}

/// A zonelist snapshot: zone indices, preferred first.
#[derive(Clone, Copy, Debug)]
pub struct ZoneList {
    zids: [usize; MAX_NR_ZONES_LIMIT],
    len: usize,
    pos: usize,
}

impl Iterator for ZoneList {
    type Item = usize;
    fn next(&mut self) -> Option<usize> {
        (self.pos < self.len).then(|| {
            self.pos += 1;
            self.zids[self.pos - 1]
        })
    }
}

/// `struct alloc_context`, reduced to what one node needs.
#[derive(Clone, Copy, Debug)]
pub struct AllocContext {
    /// `highest_zoneidx` (`gfp_zone`).
    pub highest_zoneidx: usize,
    /// `migratetype` (`gfp_migratetype`).
    pub migratetype: MigrateType,
}

/// The node (`pglist_data`) with its zones, the memory map, and the global
/// state Linux keeps next to them.
pub struct PageAlloc<'a> {
    /// Build options in force.
    pub profile: MmProfile,
    /// `mem_map` + `pageblock_flags`.
    pub mem: MemMap<'a>,
    /// `node_zones[]`; `nr_zones` are used.
    pub zones: [Zone; MAX_NR_ZONES_LIMIT],
    /// `MAX_NR_ZONES` of the build.
    pub nr_zones: usize,
    /// `page_group_by_mobility_disabled`.
    pub page_group_by_mobility_disabled: bool,
    /// `min_free_kbytes`.
    pub min_free_kbytes: u64,
    /// `user_min_free_kbytes` (-1 in Linux: unset).
    pub user_min_free_kbytes: Option<u64>,
    /// `watermark_scale_factor` (default 10).
    pub watermark_scale_factor: u64,
    /// `totalreserve_pages`.
    pub totalreserve_pages: u64,
    /// `totalcma_pages` (maintained by the CMA declaration code).
    pub totalcma_pages: u64,
    /// Event counters.
    pub events: VmEvents,
    /// The CPU's LRU add batch and `lru_disable_count` (mm/swap.c's
    /// per-cpu `cpu_fbatches`; see [`crate::swap`]).
    pub lru_add: crate::swap::LruAdd,
}

/// Integer square root (`int_sqrt`).
pub fn int_sqrt(x: u64) -> u64 {
    if x < 2 {
        return x;
    }
    // Newton's iteration from above converges to floor(sqrt(x)).
    let mut r = x;
    let mut y = r.div_ceil(2);
    while y < r {
        r = y;
        y = (r + x / r) / 2;
    }
    r
}

/// `mult_frac(x, n, d)`.
const fn mult_frac(x: u64, n: u64, d: u64) -> u64 {
    (x / d) * n + (x % d) * n / d
}

/// `fallbacks[MIGRATE_TYPES][3]`: what each type falls back to, in order.
/// The other types (HighAtomic, CMA, Isolate) have no fallbacks and are
/// never a fallback source.
pub const FALLBACKS: [[MigrateType; 2]; MIGRATE_PCPTYPES] = [
    [MigrateType::Reclaimable, MigrateType::Movable],   // UNMOVABLE
    [MigrateType::Reclaimable, MigrateType::Unmovable], // MOVABLE
    [MigrateType::Unmovable, MigrateType::Movable],     // RECLAIMABLE
];

impl<'a> PageAlloc<'a> {
    /// Sets up the node over `mem` with the zones of `layout`, as
    /// `free_area_init` + `memmap_init` do: every frame reserved with
    /// refcount 1 and linked to its zone, every pageblock `MIGRATE_MOVABLE`,
    /// all free lists empty. Memory reaches the allocator through
    /// [`PageAlloc::memblock_free_pages`] afterwards.
    pub fn new(profile: MmProfile, layout: &ZoneLayout, mut mem: MemMap<'a>) -> Result<Self, BuddyError> {
        profile.validate().map_err(BuddyError::Profile)?;
        if mem.pageblock_order() != profile.pageblock_order {
            return Err(BuddyError::PageblockOrderMismatch);
        }
        let types = zone_types(&profile);
        let mut zones = [Zone::new(ZoneType::Dma), Zone::new(ZoneType::Normal), Zone::new(ZoneType::HighMem), Zone::new(ZoneType::Movable)];
        for (zid, &kind) in types.iter().enumerate() {
            let z = &mut zones[zid];
            *z = Zone::new(kind);
            if let Some(span) = layout.zone(kind) {
                z.zone_start_pfn = span.start;
                z.spanned_pages = span.spanned();
                z.present_pages = span.present;
            }
        }
        for (zid, z) in zones.iter().enumerate().take(types.len()) {
            if z.spanned_pages == 0 {
                continue;
            }
            // The memory map must cover every frame of the zone.
            if !mem.pfn_valid(z.zone_start_pfn) || !mem.pfn_valid(Pfn(z.zone_end_pfn().0 - 1)) {
                return Err(BuddyError::ZoneOutsideMemMap(z.kind));
            }
            // memmap_init_range: set_page_links + MIGRATE_MOVABLE per block.
            for pfn in z.zone_start_pfn.0..z.zone_end_pfn().0 {
                let p = mem.pm(pfn);
                p.flags = (p.flags & !(PG_ZONE_MASK << PG_ZONE_SHIFT)) | ((zid as u32) << PG_ZONE_SHIFT);
                if pfn & ((1 << profile.pageblock_order) - 1) == 0 {
                    mem.set_pageblock_migratetype_raw(Pfn(pfn), MigrateType::Movable);
                }
            }
            // A zone start that is not pageblock aligned still has a block.
            mem.set_pageblock_migratetype_raw(z.zone_start_pfn, MigrateType::Movable);
        }
        Ok(PageAlloc {
            profile,
            mem,
            zones,
            nr_zones: types.len(),
            page_group_by_mobility_disabled: false,
            min_free_kbytes: 1024,
            user_min_free_kbytes: None,
            watermark_scale_factor: 10,
            totalreserve_pages: 0,
            totalcma_pages: 0,
            events: VmEvents::default(),
            lru_add: crate::swap::LruAdd::INIT,
        })
    }

    // ------------------------------------------------------------------
    // small helpers
    // ------------------------------------------------------------------

    /// The zones of the build.
    pub fn zones(&self) -> &[Zone] {
        &self.zones[..self.nr_zones]
    }

    /// Index of a zone type, if the build has it.
    pub fn zone_idx(&self, kind: ZoneType) -> Option<usize> {
        self.zones().iter().position(|z| z.kind == kind)
    }

    /// `page_zone` (index) of a covered frame.
    pub fn page_zone(&self, pfn: Pfn) -> usize {
        self.mem.p(pfn.0).zone_idx()
    }

    /// `pageblock_nr_pages`.
    pub fn pageblock_nr_pages(&self) -> u32 {
        1 << self.profile.pageblock_order
    }

    /// `totalram_pages()`: managed pages of all zones.
    pub fn totalram_pages(&self) -> u64 {
        self.zones().iter().map(|z| z.managed_pages).sum()
    }

    /// `totalhigh_pages()`.
    pub fn totalhigh_pages(&self) -> u64 {
        self.zones().iter().filter(|z| z.kind.is_highmem()).map(|z| z.managed_pages).sum()
    }

    /// `global_zone_page_state(NR_FREE_PAGES)`.
    pub fn nr_free_pages(&self) -> u64 {
        self.zones().iter().map(|z| z.free_pages()).sum()
    }

    /// `global_zone_page_state(NR_FREE_CMA_PAGES)`.
    pub fn nr_free_cma_pages(&self) -> u64 {
        self.zones().iter().map(|z| z.free_cma_pages()).sum()
    }

    /// Free pages of HighMem zones (`nr_free_highpages`).
    pub fn nr_free_highpages(&self) -> u64 {
        self.zones().iter().filter(|z| z.kind.is_highmem()).map(|z| z.free_pages()).sum()
    }

    /// `has_isolate_pageblock`.
    pub fn has_isolate_pageblock(&self, zid: usize) -> bool {
        self.zones[zid].nr_isolate_pageblock != 0
    }

    /// `set_pageblock_migratetype`.
    pub fn set_pageblock_migratetype(&mut self, pfn: Pfn, mut mt: MigrateType) {
        if self.page_group_by_mobility_disabled && mt.idx() < MIGRATE_PCPTYPES {
            mt = MigrateType::Unmovable;
        }
        self.mem.set_pageblock_migratetype_raw(pfn, mt);
    }

    /// `buddy_order`.
    #[inline]
    pub fn buddy_order(&self, pfn: Pfn) -> u32 {
        self.mem.p(pfn.0).private
    }

    /// `PageBuddy`.
    #[inline]
    pub fn page_buddy(&self, pfn: Pfn) -> bool {
        self.mem.p(pfn.0).has(PG_BUDDY)
    }

    /// `page_is_buddy`.
    #[inline]
    fn page_is_buddy(&self, zid: usize, buddy: u32, order: u32) -> bool {
        match self.mem.page(Pfn(buddy)) {
            Some(b) => b.has(PG_BUDDY) && b.private == order && b.zone_idx() == zid,
            None => false,
        }
    }

    /// `find_buddy_page_pfn`: the buddy of `pfn` at `order` if it is free at
    /// that order in the same zone.
    #[inline]
    pub fn find_buddy_page_pfn(&self, zid: usize, pfn: u32, order: u32) -> Option<u32> {
        let buddy = pfn ^ (1 << order);
        if self.page_is_buddy(zid, buddy, order) {
            Some(buddy)
        } else {
            None
        }
    }

    // ------------------------------------------------------------------
    // free lists
    // ------------------------------------------------------------------

    #[inline]
    fn set_list_mt(&mut self, pfn: u32, mt: MigrateType) {
        let p = self.mem.pm(pfn);
        p.flags = (p.flags & !(PG_LIST_MT_MASK << PG_LIST_MT_SHIFT)) | ((mt as u32) << PG_LIST_MT_SHIFT);
    }

    /// `list_add` onto `free_area[order].free_list[mt]`.
    fn list_add(&mut self, zid: usize, order: u32, mt: MigrateType, pfn: u32) {
        let l = &mut self.zones[zid].free_area[order as usize].free_list[mt.idx()];
        let old = l.head;
        l.head = pfn;
        if old == PFN_NONE {
            l.tail = pfn;
        }
        if old != PFN_NONE {
            self.mem.pm(old).lru_prev = pfn;
        }
        let p = self.mem.pm(pfn);
        p.lru_next = old;
        p.lru_prev = PFN_NONE;
        self.set_list_mt(pfn, mt);
    }

    /// `list_add_tail` onto `free_area[order].free_list[mt]`.
    fn list_add_tail(&mut self, zid: usize, order: u32, mt: MigrateType, pfn: u32) {
        let l = &mut self.zones[zid].free_area[order as usize].free_list[mt.idx()];
        let old = l.tail;
        l.tail = pfn;
        if old == PFN_NONE {
            l.head = pfn;
        }
        if old != PFN_NONE {
            self.mem.pm(old).lru_next = pfn;
        }
        let p = self.mem.pm(pfn);
        p.lru_prev = old;
        p.lru_next = PFN_NONE;
        self.set_list_mt(pfn, mt);
    }

    /// `list_del` from the list the page is on (its order and list type).
    fn list_del(&mut self, zid: usize, order: u32, pfn: u32) {
        let (prev, next, mt) = {
            let p = self.mem.p(pfn);
            (p.lru_prev, p.lru_next, p.list_mt() as usize)
        };
        let l = &mut self.zones[zid].free_area[order as usize].free_list[mt];
        if prev == PFN_NONE {
            l.head = next;
        }
        if next == PFN_NONE {
            l.tail = prev;
        }
        if prev != PFN_NONE {
            self.mem.pm(prev).lru_next = next;
        }
        if next != PFN_NONE {
            self.mem.pm(next).lru_prev = prev;
        }
        let p = self.mem.pm(pfn);
        p.lru_next = PFN_NONE;
        p.lru_prev = PFN_NONE;
    }

    /// `set_buddy_order`.
    #[inline]
    fn set_buddy_order(&mut self, pfn: u32, order: u32) {
        let p = self.mem.pm(pfn);
        p.private = order;
        p.flags |= PG_BUDDY;
    }

    /// `add_to_free_list` (head).
    pub(crate) fn add_to_free_list(&mut self, pfn: u32, zid: usize, order: u32, mt: MigrateType) {
        self.list_add(zid, order, mt, pfn);
        self.zones[zid].free_area[order as usize].nr_free += 1;
    }

    /// `add_to_free_list_tail`.
    pub(crate) fn add_to_free_list_tail(&mut self, pfn: u32, zid: usize, order: u32, mt: MigrateType) {
        self.list_add_tail(zid, order, mt, pfn);
        self.zones[zid].free_area[order as usize].nr_free += 1;
    }

    /// `move_to_free_list`: `list_move_tail` to another type's list.
    pub(crate) fn move_to_free_list(&mut self, pfn: u32, zid: usize, order: u32, mt: MigrateType) {
        self.list_del(zid, order, pfn);
        self.list_add_tail(zid, order, mt, pfn);
    }

    /// `del_page_from_free_list`.
    pub(crate) fn del_page_from_free_list(&mut self, pfn: u32, zid: usize, order: u32) {
        self.list_del(zid, order, pfn);
        let p = self.mem.pm(pfn);
        p.flags &= !PG_BUDDY;
        p.private = 0;
        self.zones[zid].free_area[order as usize].nr_free -= 1;
    }

    /// `get_page_from_free_area`: first block of a list.
    pub fn get_page_from_free_area(&self, zid: usize, order: u32, mt: MigrateType) -> Option<u32> {
        let h = self.zones[zid].free_area[order as usize].free_list[mt.idx()].head;
        (h != PFN_NONE).then_some(h)
    }

    /// `__mod_zone_freepage_state`.
    pub(crate) fn __mod_zone_freepage_state(&mut self, zid: usize, nr: i64, mt: MigrateType) {
        let z = &mut self.zones[zid];
        z.nr_free_pages += nr;
        if mt.is_cma() {
            z.nr_free_cma_pages += nr;
        }
    }

    // ------------------------------------------------------------------
    // freeing
    // ------------------------------------------------------------------

    /// `buddy_merge_likely`: is the buddy of the next-higher block free?
    fn buddy_merge_likely(&self, zid: usize, pfn: u32, buddy_pfn: u32, order: u32) -> bool {
        if order + 2 >= self.profile.max_order {
            return false;
        }
        let higher_page_pfn = buddy_pfn & pfn;
        self.find_buddy_page_pfn(zid, higher_page_pfn, order + 1).is_some()
    }

    /// `__free_one_page`: put a block back, merging with free buddies.
    ///
    /// Merging stops at `MAX_ORDER - 1`, at a non-free buddy, and at
    /// `pageblock_order` and above between a non-mergeable type (CMA,
    /// HighAtomic, Isolate) and a different type.
    pub(crate) fn __free_one_page(&mut self, pfn: Pfn, zid: usize, order: u32, mt: MigrateType, fpi_flags: u32) {
        let max_order = self.profile.max_order;
        let pageblock_order = self.profile.pageblock_order;
        let mut pfn = pfn.0;
        let mut order = order;
        debug_assert!(pfn & ((1 << order) - 1) == 0);
        if !mt.is_isolate() {
            self.__mod_zone_freepage_state(zid, 1 << order, mt);
        }
        while order < max_order - 1 {
            // compaction_capture: no compaction here.
            let Some(buddy_pfn) = self.find_buddy_page_pfn(zid, pfn, order) else {
                break;
            };
            if order >= pageblock_order {
                // Prevent merges between pageblocks without fallbacks and
                // normal pageblocks (isolation, CMA, HighAtomic accounting).
                let buddy_mt = self.mem.get_pageblock_migratetype(Pfn(buddy_pfn));
                if mt != buddy_mt && (!mt.is_mergeable() || !buddy_mt.is_mergeable()) {
                    break;
                }
            }
            // (no CONFIG_DEBUG_PAGEALLOC guard pages)
            self.del_page_from_free_list(buddy_pfn, zid, order);
            pfn &= buddy_pfn;
            order += 1;
        }
        self.set_buddy_order(pfn, order);
        let buddy_pfn = pfn ^ (1 << order);
        // (no page shuffling: is_shuffle_order() is false)
        let to_tail = fpi_flags & FPI_TO_TAIL != 0 || self.buddy_merge_likely(zid, pfn, buddy_pfn, order);
        if to_tail {
            self.add_to_free_list_tail(pfn, zid, order, mt);
        } else {
            self.add_to_free_list(pfn, zid, order, mt);
        }
    }

    /// `free_one_page` (with the isolation re-check of the caller's type).
    pub(crate) fn free_one_page(&mut self, zid: usize, pfn: Pfn, order: u32, mut mt: MigrateType, fpi_flags: u32) {
        if self.has_isolate_pageblock(zid) || mt.is_isolate() {
            mt = self.mem.get_pageblock_migratetype(pfn);
        }
        self.__free_one_page(pfn, zid, order, mt, fpi_flags);
    }

    /// Range checks every public entry point applies: covered, aligned, in
    /// one zone. Returns the zone index.
    fn check_block(&self, pfn: Pfn, order: u32) -> Result<usize, BuddyError> {
        if order >= self.profile.max_order {
            return Err(BuddyError::OrderTooLarge(order));
        }
        if !self.mem.pfn_valid(pfn) {
            return Err(BuddyError::OutOfRange(pfn));
        }
        if pfn.0 & ((1 << order) - 1) != 0 {
            return Err(BuddyError::Misaligned(pfn, order));
        }
        let last = Pfn(pfn.0 + (1 << order) - 1);
        if !self.mem.pfn_valid(last) {
            return Err(BuddyError::CrossesZone(pfn, order));
        }
        let zid = self.page_zone(pfn);
        let z = &self.zones[zid];
        if !z.zone_spans_pfn(pfn) || !z.zone_spans_pfn(last) {
            return Err(BuddyError::CrossesZone(pfn, order));
        }
        Ok(zid)
    }

    /// `free_pages_prepare` checks, done before anything is changed (Linux
    /// reports a bad page and leaks it; we refuse the free and leave every
    /// record as it was). `head_refs` is the head's refcount the caller
    /// expects to drop to zero.
    fn free_pages_check(&self, pfn: Pfn, order: u32, head_refs: i32) -> Result<(), BuddyError> {
        let head = self.mem.p(pfn.0);
        let compound = head.has(PG_HEAD);
        for i in 1..(1u32 << order) {
            let p = self.mem.p(pfn.0 + i);
            if p.has(PG_BUDDY) || p.has(PG_PCP) {
                return Err(BuddyError::DoubleFree(Pfn(pfn.0 + i)));
            }
            if compound && !p.has(PG_TAIL) {
                return Err(BuddyError::BadPage(Pfn(pfn.0 + i), "PageTail not set"));
            }
            let mut q = *p;
            q.flags &= !PG_TAIL;
            if let Some(r) = page_bad_reason(&q, PAGE_FLAGS_CHECK_AT_FREE) {
                return Err(BuddyError::BadPage(Pfn(pfn.0 + i), r));
            }
        }
        let mut q = *head;
        q.refcount -= head_refs;
        if q.flags & (PG_ANON | PG_MOVABLE) != 0 {
            // PageMappingFlags: Linux clears page->mapping.
            q.mapping = 0;
        }
        if let Some(r) = page_bad_reason(&q, PAGE_FLAGS_CHECK_AT_FREE) {
            return Err(BuddyError::BadPage(pfn, r));
        }
        Ok(())
    }

    /// The state changes of `free_pages_prepare` once the checks passed.
    fn free_pages_prepare_apply(&mut self, pfn: Pfn, order: u32) {
        for i in 0..(1u32 << order) {
            let p = self.mem.pm(pfn.0 + i);
            p.flags &= !(PAGE_FLAGS_CHECK_AT_PREP & !PG_HWPOISON);
            p.refcount = 0;
            p.mapping = 0;
            p.owner = OWNER_NONE;
            p.private = 0;
        }
    }

    /// `free_the_page`: blocks of order <= `PAGE_ALLOC_COSTLY_ORDER` go to
    /// the per-cpu lists (`free_unref_page`), larger ones to the buddy
    /// (`__free_pages_ok`). Both run `free_pages_prepare` first.
    fn free_the_page(&mut self, pfn: Pfn, order: u32, head_refs: i32) -> Result<(), BuddyError> {
        if !pcp_allowed_order(order) {
            return self.__free_pages_ok(pfn, order, FPI_NONE, head_refs);
        }
        if !self.free_pages_prepare(pfn, order, head_refs)? {
            return Ok(());
        }
        let zid = self.page_zone(pfn);
        self.free_unref_page(zid, pfn, order);
        Ok(())
    }

    /// `free_pages_prepare`: the checks, then the state changes. `Ok(false)`
    /// when the page must not reach the allocator (hwpoison).
    fn free_pages_prepare(&mut self, pfn: Pfn, order: u32, head_refs: i32) -> Result<bool, BuddyError> {
        if order == 0 && self.mem.p(pfn.0).has(PG_HWPOISON) {
            // Do not let hwpoison pages hit the buddy.
            self.mem.pm(pfn.0).refcount = 0;
            return Ok(false);
        }
        self.free_pages_check(pfn, order, head_refs)?;
        self.free_pages_prepare_apply(pfn, order);
        Ok(true)
    }

    /// `__free_pages_ok`: straight to the buddy.
    fn __free_pages_ok(&mut self, pfn: Pfn, order: u32, fpi_flags: u32, head_refs: i32) -> Result<(), BuddyError> {
        let zid = self.page_zone(pfn);
        if !self.free_pages_prepare(pfn, order, head_refs)? {
            return Ok(());
        }
        let pbo = self.profile.pageblock_order;
        if order > pbo {
            // A block larger than a pageblock (only with a profile whose
            // pageblock_order < MAX_ORDER - 1; never with the named ones).
            // Linux 6.1 frees it whole on its head's pageblock type, which
            // puts the pages of a since-isolated pageblock on a normal list;
            // we free it pageblock by pageblock, as mainline does since 6.10
            // (`split_large_buddy`). Merging rebuilds the large block.
            for i in 0..(1u32 << (order - pbo)) {
                let chunk = Pfn(pfn.0 + (i << pbo));
                let mt = self.mem.get_pageblock_migratetype(chunk);
                self.free_one_page(zid, chunk, pbo, mt, fpi_flags);
            }
        } else {
            let mt = self.mem.get_pageblock_migratetype(pfn);
            self.free_one_page(zid, pfn, order, mt, fpi_flags);
        }
        self.events.pgfree += 1 << order;
        Ok(())
    }

    /// `__free_pages`: drop a reference to a block from `alloc_pages`; free
    /// it when it was the last one. A non-compound block whose head is still
    /// referenced has its tail halves freed, exactly as Linux does.
    ///
    /// Errors (never UB): out of range, misaligned, crossing zones, double
    /// free (refcount already 0 or a page already on a free list), bad page
    /// state. On error nothing is changed.
    pub fn __free_pages(&mut self, pfn: Pfn, order: u32) -> Result<(), BuddyError> {
        self.check_block(pfn, order)?;
        let head = *self.mem.p(pfn.0);
        if head.has(PG_BUDDY) || head.refcount <= 0 {
            return Err(BuddyError::DoubleFree(pfn));
        }
        if head.has(PG_TAIL) {
            return Err(BuddyError::BadPage(pfn, "freeing a tail page"));
        }
        if head.refcount == 1 {
            return self.free_the_page(pfn, order, 1);
        }
        // put_page_testzero() did not reach zero.
        if !head.has(PG_HEAD) {
            for o in (0..order).rev() {
                self.free_pages_check(Pfn(pfn.0 + (1 << o)), o, 0)?;
            }
        }
        self.mem.pm(pfn.0).refcount -= 1;
        if !head.has(PG_HEAD) {
            for o in (0..order).rev() {
                self.free_the_page(Pfn(pfn.0 + (1 << o)), o, 0)?;
            }
        }
        Ok(())
    }

    /// `__free_pages_core`: hand a reserved block to the buddy at boot.
    fn __free_pages_core(&mut self, pfn: Pfn, order: u32) -> Result<(), BuddyError> {
        let zid = self.check_block(pfn, order)?;
        for i in 0..(1u32 << order) {
            let p = self.mem.p(pfn.0 + i);
            if !p.has(PG_RESERVED) || p.has(PG_BUDDY) {
                return Err(BuddyError::DoubleFree(Pfn(pfn.0 + i)));
            }
        }
        for i in 0..(1u32 << order) {
            let p = self.mem.pm(pfn.0 + i);
            p.flags &= !PG_RESERVED;
            p.refcount = 0;
        }
        self.zones[zid].managed_pages += 1 << order;
        // Bypass the pcp lists and place fresh pages at the tail.
        self.__free_pages_ok(pfn, order, FPI_TO_TAIL | FPI_SKIP_REPORT_NOTIFY, 0)
    }

    /// `__free_pages_memory` (`memblock_free_all` for one free range of
    /// lowmem): largest naturally aligned blocks up to `MAX_ORDER - 1`.
    fn __free_pages_memory(&mut self, start: u32, end: u32) -> Result<(), BuddyError> {
        let mut start = start;
        while start < end {
            let mut order = (self.profile.max_order - 1).min(start.trailing_zeros());
            while start as u64 + (1u64 << order) > end as u64 {
                order -= 1;
            }
            self.__free_pages_core(Pfn(start), order)?;
            start += 1 << order;
        }
        Ok(())
    }

    /// Frees a range of boot memory that memblock left free, as Linux does
    /// at the end of boot: the lowmem part through `memblock_free_all`
    /// (`__free_memory_core`, blocks to the tail), the HighMem part page by
    /// page through ARM's `free_highpages` (`free_highmem_page`). Ranges
    /// must consist of reserved (not yet freed) frames.
    pub fn memblock_free_pages(&mut self, start: Pfn, end: Pfn) -> Result<(), BuddyError> {
        if start.0 >= end.0 {
            return Ok(());
        }
        if !self.mem.pfn_valid(start) {
            return Err(BuddyError::OutOfRange(start));
        }
        if !self.mem.pfn_valid(Pfn(end.0 - 1)) {
            return Err(BuddyError::OutOfRange(Pfn(end.0 - 1)));
        }
        let mut pfn = start.0;
        while pfn < end.0 {
            let zid = self.page_zone(Pfn(pfn));
            let zend = self.zones[zid].zone_end_pfn().0.min(end.0);
            if !self.zones[zid].zone_spans_pfn(Pfn(pfn)) {
                return Err(BuddyError::CrossesZone(Pfn(pfn), 0));
            }
            if self.zones[zid].kind.is_highmem() {
                for p in pfn..zend {
                    self.free_reserved_page(Pfn(p))?;
                }
            } else {
                self.__free_pages_memory(pfn, zend)?;
            }
            pfn = zend;
        }
        Ok(())
    }

    /// `free_reserved_page` / `free_highmem_page`: one reserved frame to the
    /// buddy, managed count +1.
    pub fn free_reserved_page(&mut self, pfn: Pfn) -> Result<(), BuddyError> {
        let zid = self.check_block(pfn, 0)?;
        let p = self.mem.p(pfn.0);
        if !p.has(PG_RESERVED) || p.has(PG_BUDDY) {
            return Err(BuddyError::DoubleFree(pfn));
        }
        let p = self.mem.pm(pfn.0);
        p.flags &= !PG_RESERVED;
        p.refcount = 0;
        self.zones[zid].managed_pages += 1;
        // __free_page(): through the (boot) pageset.
        self.free_the_page(pfn, 0, 0)
    }

    /// `init_cma_reserved_pageblock`: a reserved pageblock becomes
    /// `MIGRATE_CMA` and is freed into the buddy at `pageblock_order`;
    /// managed and `cma_pages` counts grow. (`totalcma_pages` is counted at
    /// declaration time by the CMA code, as in Linux.)
    pub fn init_cma_reserved_pageblock(&mut self, pfn: Pfn) -> Result<(), BuddyError> {
        let order = self.profile.pageblock_order;
        let zid = self.check_block(pfn, order)?;
        for i in 0..(1u32 << order) {
            let p = self.mem.p(pfn.0 + i);
            if !p.has(PG_RESERVED) || p.has(PG_BUDDY) {
                return Err(BuddyError::BadPage(Pfn(pfn.0 + i), "CMA pageblock page not reserved"));
            }
        }
        for i in 0..(1u32 << order) {
            let p = self.mem.pm(pfn.0 + i);
            p.flags &= !PG_RESERVED;
            p.refcount = 0;
        }
        self.set_pageblock_migratetype(pfn, MigrateType::Cma);
        self.mem.pm(pfn.0).refcount = 1; // set_page_refcounted
        self.__free_pages_ok(pfn, order, FPI_NONE, 1)?;
        // adjust_managed_page_count
        self.zones[zid].managed_pages += 1 << order;
        self.zones[zid].cma_pages += 1 << order;
        Ok(())
    }

    /// `split_page`: a non-compound high-order allocation becomes
    /// `1 << order` independently refcounted order-0 pages.
    pub fn split_page(&mut self, pfn: Pfn, order: u32) -> Result<(), BuddyError> {
        self.check_block(pfn, order)?;
        let head = self.mem.p(pfn.0);
        if head.has(PG_HEAD) {
            return Err(BuddyError::BadPage(pfn, "split_page of a compound page"));
        }
        if head.refcount <= 0 || head.has(PG_BUDDY) {
            return Err(BuddyError::BadPage(pfn, "split_page of a free page"));
        }
        for i in 1..(1u32 << order) {
            let p = self.mem.pm(pfn.0 + i);
            p.refcount = 1;
        }
        let owner = self.mem.p(pfn.0).owner;
        for i in 1..(1u32 << order) {
            self.mem.pm(pfn.0 + i).owner = owner;
        }
        Ok(())
    }

    // ------------------------------------------------------------------
    // allocation
    // ------------------------------------------------------------------

    /// `expand`: split a block of `high` order down to `low`, putting the
    /// upper halves on `mt`'s lists.
    pub(crate) fn expand(&mut self, zid: usize, pfn: u32, low: u32, mut high: u32, mt: MigrateType) {
        let mut size = 1u32 << high;
        while high > low {
            high -= 1;
            size >>= 1;
            // (no guard pages)
            self.add_to_free_list(pfn + size, zid, high, mt);
            self.set_buddy_order(pfn + size, high);
        }
    }

    /// `__rmqueue_smallest`: the smallest block of `mt` at `order` or above.
    pub fn __rmqueue_smallest(&mut self, zid: usize, order: u32, mt: MigrateType) -> Option<u32> {
        for current_order in order..self.profile.max_order {
            let Some(pfn) = self.get_page_from_free_area(zid, current_order, mt) else {
                continue;
            };
            self.del_page_from_free_list(pfn, zid, current_order);
            self.expand(zid, pfn, order, current_order, mt);
            self.set_list_mt(pfn, mt); // set_pcppage_migratetype
            return Some(pfn);
        }
        None
    }

    /// `__rmqueue_cma_fallback`.
    fn __rmqueue_cma_fallback(&mut self, zid: usize, order: u32) -> Option<u32> {
        self.__rmqueue_smallest(zid, order, MigrateType::Cma)
    }

    /// `change_pageblock_range`.
    fn change_pageblock_range(&mut self, pfn: u32, start_order: u32, mt: MigrateType) {
        let n = 1u32 << (start_order - self.profile.pageblock_order);
        for i in 0..n {
            self.set_pageblock_migratetype(Pfn(pfn + i * self.pageblock_nr_pages()), mt);
        }
    }

    /// `can_steal_fallback`.
    pub fn can_steal_fallback(&self, order: u32, start_mt: MigrateType) -> bool {
        let pbo = self.profile.pageblock_order;
        if order >= pbo {
            return true;
        }
        order >= pbo / 2
            || start_mt == MigrateType::Reclaimable
            || start_mt == MigrateType::Unmovable
            || self.page_group_by_mobility_disabled
    }

    /// `steal_suitable_fallback`: take the block at `pfn` (on a fallback
    /// list) for `start_type`; claim its whole pageblock when large enough
    /// or when at least half of the pageblock is free or alike.
    pub fn steal_suitable_fallback(&mut self, zid: usize, pfn: u32, _alloc_flags: u32, start_type: MigrateType, whole_block: bool) {
        let current_order = self.buddy_order(Pfn(pfn));
        let old_block_type = self.mem.get_pageblock_migratetype(Pfn(pfn));
        let pbo = self.profile.pageblock_order;
        let single = 'steal: {
            if old_block_type.is_highatomic() {
                break 'steal true;
            }
            if current_order >= pbo {
                self.change_pageblock_range(pfn, current_order, start_type);
                break 'steal true;
            }
            // boost_watermark(): not emulated (no kswapd to clear it).
            if !whole_block {
                break 'steal true;
            }
            let mut movable_pages = 0u32;
            let free_pages = self.move_freepages_block(zid, Pfn(pfn), start_type, Some(&mut movable_pages));
            let alike_pages = if start_type == MigrateType::Movable {
                movable_pages
            } else if old_block_type == MigrateType::Movable {
                self.pageblock_nr_pages().saturating_sub(free_pages + movable_pages)
            } else {
                0
            };
            if free_pages == 0 {
                break 'steal true;
            }
            if free_pages + alike_pages >= (1 << (pbo - 1)) || self.page_group_by_mobility_disabled {
                self.set_pageblock_migratetype(Pfn(pfn), start_type);
            }
            false
        };
        if single {
            self.move_to_free_list(pfn, zid, current_order, start_type);
        }
    }

    /// `find_suitable_fallback`: the first fallback type with a free block
    /// at `order`, and whether it may be stolen whole.
    pub fn find_suitable_fallback(&self, zid: usize, order: u32, mt: MigrateType, only_stealable: bool) -> Option<(MigrateType, bool)> {
        let area = &self.zones[zid].free_area[order as usize];
        if area.nr_free == 0 || mt.idx() >= MIGRATE_PCPTYPES {
            return None;
        }
        let mut can_steal = false;
        for &fallback_mt in &FALLBACKS[mt.idx()] {
            if area.free_area_empty(fallback_mt) {
                continue;
            }
            if self.can_steal_fallback(order, mt) {
                can_steal = true;
            }
            if !only_stealable || can_steal {
                return Some((fallback_mt, can_steal));
            }
        }
        None
    }

    /// `reserve_highatomic_pageblock`.
    fn reserve_highatomic_pageblock(&mut self, pfn: u32, zid: usize) {
        let z = &self.zones[zid];
        let max_managed = z.managed_pages / 100 + self.pageblock_nr_pages() as u64;
        if z.nr_reserved_highatomic >= max_managed {
            return;
        }
        let mt = self.mem.get_pageblock_migratetype(Pfn(pfn));
        if mt.is_mergeable() {
            self.zones[zid].nr_reserved_highatomic += self.pageblock_nr_pages() as u64;
            self.set_pageblock_migratetype(Pfn(pfn), MigrateType::HighAtomic);
            self.move_freepages_block(zid, Pfn(pfn), MigrateType::HighAtomic, None);
        }
    }

    /// `unreserve_highatomic_pageblock`.
    pub fn unreserve_highatomic_pageblock(&mut self, ac: &AllocContext, force: bool) -> bool {
        let pb = self.pageblock_nr_pages() as u64;
        for zid in self.zonelist(ac.highest_zoneidx) {
            if !force && self.zones[zid].nr_reserved_highatomic <= pb {
                continue;
            }
            for order in 0..self.profile.max_order {
                let Some(pfn) = self.get_page_from_free_area(zid, order, MigrateType::HighAtomic) else {
                    continue;
                };
                if self.mem.get_pageblock_migratetype(Pfn(pfn)).is_highatomic() {
                    let z = &mut self.zones[zid];
                    z.nr_reserved_highatomic -= pb.min(z.nr_reserved_highatomic);
                }
                self.set_pageblock_migratetype(Pfn(pfn), ac.migratetype);
                if self.move_freepages_block(zid, Pfn(pfn), ac.migratetype, None) != 0 {
                    return true;
                }
            }
        }
        false
    }

    /// `__rmqueue_fallback`: steal from another type's lists, largest block
    /// first (smallest when a movable request cannot steal the block).
    /// CMA and HighAtomic lists are never fallback sources.
    pub fn __rmqueue_fallback(&mut self, zid: usize, order: u32, start_mt: MigrateType, alloc_flags: u32) -> bool {
        let pbo = self.profile.pageblock_order;
        let max_order = self.profile.max_order;
        let min_order = if order < pbo && alloc_flags & ALLOC_NOFRAGMENT != 0 { pbo } else { order };
        let mut found = None;
        let mut current_order = max_order as i64 - 1;
        while current_order >= min_order as i64 {
            if let Some((fmt, can_steal)) = self.find_suitable_fallback(zid, current_order as u32, start_mt, false) {
                found = Some((current_order as u32, fmt, can_steal));
                break;
            }
            current_order -= 1;
        }
        let Some((mut co, mut fallback_mt, mut can_steal)) = found else {
            return false;
        };
        if !can_steal && start_mt == MigrateType::Movable && co > order {
            // find_smallest
            for o in order..max_order {
                if let Some((fmt, cs)) = self.find_suitable_fallback(zid, o, start_mt, false) {
                    co = o;
                    fallback_mt = fmt;
                    can_steal = cs;
                    break;
                }
            }
        }
        let Some(pfn) = self.get_page_from_free_area(zid, co, fallback_mt) else {
            return false;
        };
        self.steal_suitable_fallback(zid, pfn, alloc_flags, start_mt, can_steal);
        true
    }

    /// `__rmqueue`: the preferred list, then CMA (movable only), then the
    /// fallbacks. When more than half of the zone's free pages are CMA,
    /// movable requests take CMA first.
    pub fn __rmqueue(&mut self, zid: usize, order: u32, mt: MigrateType, alloc_flags: u32) -> Option<u32> {
        if alloc_flags & ALLOC_CMA != 0 {
            let z = &self.zones[zid];
            if z.free_cma_pages() > z.free_pages() / 2 {
                if let Some(p) = self.__rmqueue_cma_fallback(zid, order) {
                    return Some(p);
                }
            }
        }
        loop {
            let mut page = self.__rmqueue_smallest(zid, order, mt);
            if page.is_none() {
                if alloc_flags & ALLOC_CMA != 0 {
                    page = self.__rmqueue_cma_fallback(zid, order);
                }
                if page.is_none() && self.__rmqueue_fallback(zid, order, mt, alloc_flags) {
                    continue;
                }
            }
            return page;
        }
    }

    /// `check_new_pages`: true when a page of the block is bad.
    pub(crate) fn check_new_pages(&self, pfn: u32, order: u32) -> bool {
        (0..(1u32 << order)).any(|i| !page_expected_state(self.mem.p(pfn + i), PAGE_FLAGS_CHECK_AT_PREP | PG_HWPOISON))
    }

    /// `rmqueue`: the per-cpu lists for small orders (not for movable
    /// requests that may not use CMA: the movable pcp list may hold CMA
    /// pages), else the buddy.
    fn rmqueue(&mut self, zid: usize, order: u32, alloc_flags: u32, mt: MigrateType) -> Option<u32> {
        if pcp_allowed_order(order) && (alloc_flags & ALLOC_CMA != 0 || mt != MigrateType::Movable) {
            if let Some(pfn) = self.rmqueue_pcplist(zid, order, mt, alloc_flags) {
                return Some(pfn);
            }
        }
        self.rmqueue_buddy(zid, order, alloc_flags, mt)
    }

    /// `rmqueue_buddy`.
    fn rmqueue_buddy(&mut self, zid: usize, order: u32, alloc_flags: u32, mt: MigrateType) -> Option<u32> {
        loop {
            let mut page = None;
            if alloc_flags & ALLOC_HIGHATOMIC != 0 {
                page = self.__rmqueue_smallest(zid, order, MigrateType::HighAtomic);
            }
            if page.is_none() {
                page = self.__rmqueue(zid, order, mt, alloc_flags);
                if page.is_none() && alloc_flags & (ALLOC_OOM | ALLOC_NON_BLOCK) != 0 {
                    page = self.__rmqueue_smallest(zid, order, MigrateType::HighAtomic);
                }
            }
            let pfn = page?;
            let list_mt = MigrateType::from_u8(self.mem.p(pfn).list_mt()).unwrap_or(mt);
            self.__mod_zone_freepage_state(zid, -(1i64 << order), list_mt);
            if self.check_new_pages(pfn, order) {
                // bad_page(): the block is leaked, try again.
                self.events.bad_pages += 1 << order;
                continue;
            }
            self.events.pgalloc[zid] += 1 << order;
            return Some(pfn);
        }
    }

    /// `__zone_watermark_unusable_free`.
    fn __zone_watermark_unusable_free(&self, zid: usize, order: u32, alloc_flags: u32) -> i64 {
        let z = &self.zones[zid];
        let mut unusable = (1i64 << order) - 1;
        if alloc_flags & ALLOC_RESERVES == 0 {
            unusable += z.nr_reserved_highatomic as i64;
        }
        if alloc_flags & ALLOC_CMA == 0 {
            unusable += z.free_cma_pages() as i64;
        }
        unusable
    }

    /// `__zone_watermark_ok`.
    pub fn __zone_watermark_ok(&self, zid: usize, order: u32, mark: u64, highest_zoneidx: usize, alloc_flags: u32, free_pages: i64) -> bool {
        let z = &self.zones[zid];
        let mut min = mark as i64;
        let free_pages = free_pages - self.__zone_watermark_unusable_free(zid, order, alloc_flags);
        if alloc_flags & ALLOC_RESERVES != 0 {
            if alloc_flags & ALLOC_MIN_RESERVE != 0 {
                min -= min / 2;
                if alloc_flags & ALLOC_NON_BLOCK != 0 {
                    min -= min / 4;
                }
            }
            if alloc_flags & ALLOC_OOM != 0 {
                min -= min / 2;
            }
        }
        let reserve = z.lowmem_reserve.get(highest_zoneidx).copied().unwrap_or(0) as i64;
        if free_pages <= min + reserve {
            return false;
        }
        if order == 0 {
            return true;
        }
        for o in order..self.profile.max_order {
            let area = &z.free_area[o as usize];
            if area.nr_free == 0 {
                continue;
            }
            for mt in &MigrateType::ALL[..MIGRATE_PCPTYPES] {
                if !area.free_area_empty(*mt) {
                    return true;
                }
            }
            if alloc_flags & ALLOC_CMA != 0 && !area.free_area_empty(MigrateType::Cma) {
                return true;
            }
            if alloc_flags & (ALLOC_HIGHATOMIC | ALLOC_OOM) != 0 && !area.free_area_empty(MigrateType::HighAtomic) {
                return true;
            }
        }
        false
    }

    /// `zone_watermark_ok`.
    pub fn zone_watermark_ok(&self, zid: usize, order: u32, mark: u64, highest_zoneidx: usize, alloc_flags: u32) -> bool {
        self.__zone_watermark_ok(zid, order, mark, highest_zoneidx, alloc_flags, self.zones[zid].free_pages() as i64)
    }

    /// `zone_watermark_fast` (the `__GFP_ATOMIC` boost exception never
    /// applies: `watermark_boost` is always 0 here).
    fn zone_watermark_fast(&self, zid: usize, order: u32, mark: u64, highest_zoneidx: usize, alloc_flags: u32) -> bool {
        let z = &self.zones[zid];
        let free_pages = z.free_pages() as i64;
        if order == 0 {
            let reserved = self.__zone_watermark_unusable_free(zid, 0, alloc_flags);
            let usable = free_pages - free_pages.min(reserved);
            let reserve = z.lowmem_reserve.get(highest_zoneidx).copied().unwrap_or(0) as i64;
            if usable > mark as i64 + reserve {
                return true;
            }
        }
        self.__zone_watermark_ok(zid, order, mark, highest_zoneidx, alloc_flags, free_pages)
    }

    /// The node's zonelist for `highest_zoneidx`: populated zones from the
    /// highest allowed down to Normal (HighMem -> Normal on this board).
    pub fn zonelist(&self, highest_zoneidx: usize) -> ZoneList {
        let mut zl = ZoneList { zids: [0; MAX_NR_ZONES_LIMIT], len: 0, pos: 0 };
        let top = highest_zoneidx.min(self.nr_zones - 1);
        for z in (0..=top).rev() {
            if self.zones[z].managed_pages > 0 {
                zl.zids[zl.len] = z;
                zl.len += 1;
            }
        }
        zl
    }

    /// `gfp_zone`: the highest zone a request may use.
    pub fn gfp_zone(&self, gfp: Gfp) -> Result<usize, BuddyError> {
        let n = [__GFP_DMA, __GFP_HIGHMEM, __GFP_DMA32].iter().filter(|b| gfp.any(**b)).count();
        if n > 1 {
            return Err(BuddyError::BadGfp(gfp));
        }
        let kind = if gfp.any(__GFP_HIGHMEM) && gfp.any(__GFP_MOVABLE) {
            ZoneType::Movable
        } else if gfp.any(__GFP_HIGHMEM) && self.profile.highmem {
            ZoneType::HighMem
        } else if gfp.any(__GFP_DMA) && self.profile.zone_dma {
            ZoneType::Dma
        } else {
            // OPT_ZONE_DMA (without CONFIG_ZONE_DMA) / OPT_ZONE_DMA32 /
            // OPT_ZONE_HIGHMEM (without CONFIG_HIGHMEM) fold to Normal.
            ZoneType::Normal
        };
        Ok(self.zone_idx(kind).unwrap_or(0))
    }

    /// `prep_new_page` / `post_alloc_hook`: refcount 1 on the head, compound
    /// head/tails for `__GFP_COMP`. (`__GFP_ZERO` is the caller's job: this
    /// crate never touches page contents.)
    fn prep_new_page(&mut self, pfn: u32, order: u32, gfp: Gfp) {
        let p = self.mem.pm(pfn);
        p.private = 0;
        p.refcount = 1;
        if order > 0 && gfp.any(__GFP_COMP) {
            self.mem.pm(pfn).flags |= PG_HEAD;
            for i in 1..(1u32 << order) {
                self.mem.pm(pfn + i).flags |= PG_TAIL;
            }
        }
    }

    /// `get_page_from_freelist`: the first zone of the zonelist that passes
    /// its watermark and has a block. (`ALLOC_NOFRAGMENT` is never set on
    /// ARM32: it needs ZONE_DMA32. Node reclaim is off, as by default.)
    fn get_page_from_freelist(&mut self, gfp: Gfp, order: u32, alloc_flags: u32, ac: &AllocContext) -> Option<u32> {
        for zid in self.zonelist(ac.highest_zoneidx) {
            let mark = self.zones[zid].wmark_pages((alloc_flags & ALLOC_WMARK_MASK) as usize);
            if !self.zone_watermark_fast(zid, order, mark, ac.highest_zoneidx, alloc_flags) && alloc_flags & ALLOC_NO_WATERMARKS == 0 {
                continue;
            }
            if let Some(pfn) = self.rmqueue(zid, order, alloc_flags, ac.migratetype) {
                self.prep_new_page(pfn, order, gfp);
                if alloc_flags & ALLOC_HIGHATOMIC != 0 {
                    self.reserve_highatomic_pageblock(pfn, zid);
                }
                return Some(pfn);
            }
        }
        None
    }

    /// `__alloc_pages`: allocate `1 << order` contiguous frames.
    ///
    /// Fast path with `ALLOC_WMARK_LOW`, then the slow path's flags
    /// (`gfp_to_alloc_flags`: min watermark, `__GFP_HIGH`/atomic reserves,
    /// HighAtomic for non-blocking high-order requests), `__GFP_MEMALLOC`'s
    /// `ALLOC_NO_WATERMARKS`, and for blocking requests the unreserving of
    /// HighAtomic pageblocks Linux does before giving up. There is no
    /// reclaim, compaction or OOM killer.
    pub fn __alloc_pages(&mut self, gfp: Gfp, order: u32) -> Result<Pfn, BuddyError> {
        if order >= self.profile.max_order {
            return Err(BuddyError::OrderTooLarge(order));
        }
        let md = self.page_group_by_mobility_disabled;
        let ac = AllocContext { highest_zoneidx: self.gfp_zone(gfp)?, migratetype: gfp_migratetype(gfp, md) };
        let mut alloc_flags = gfp_to_alloc_flags_cma(gfp, ALLOC_WMARK_LOW, md);
        // alloc_flags_nofragment(): __GFP_KSWAPD_RECLAIM == ALLOC_KSWAPD.
        alloc_flags |= gfp.0 & __GFP_KSWAPD_RECLAIM.0;
        if let Some(p) = self.get_page_from_freelist(gfp, order, alloc_flags, &ac) {
            return Ok(Pfn(p));
        }
        // __alloc_pages_slowpath
        let mut alloc_flags = gfp_to_alloc_flags(gfp, order, md);
        if let Some(p) = self.get_page_from_freelist(gfp, order, alloc_flags, &ac) {
            return Ok(Pfn(p));
        }
        let mut drained = false;
        loop {
            let reserve_flags = __gfp_pfmemalloc_flags(gfp);
            if reserve_flags != 0 {
                alloc_flags = gfp_to_alloc_flags_cma(gfp, reserve_flags, md) | (alloc_flags & ALLOC_KSWAPD);
            }
            if let Some(p) = self.get_page_from_freelist(gfp, order, alloc_flags, &ac) {
                return Ok(Pfn(p));
            }
            if !gfp.any(__GFP_DIRECT_RECLAIM) {
                break;
            }
            // __alloc_pages_direct_reclaim: no reclaim progress is
            // possible; it retries once after unreserving HighAtomic
            // blocks and draining the per-cpu lists.
            if !drained {
                drained = true;
                self.unreserve_highatomic_pageblock(&ac, false);
                self.drain_all_pages(None);
                if let Some(p) = self.get_page_from_freelist(gfp, order, alloc_flags, &ac) {
                    return Ok(Pfn(p));
                }
            }
            // should_reclaim_retry() ends with
            // unreserve_highatomic_pageblock(ac, true) before OOM.
            if !self.unreserve_highatomic_pageblock(&ac, true) {
                break;
            }
        }
        Err(BuddyError::NoMemory { order })
    }

    /// `alloc_pages`: [`PageAlloc::__alloc_pages`] that also tags the block's
    /// frames with an owner (`OWNER_KIND_*` | id).
    pub fn alloc_pages(&mut self, gfp: Gfp, order: u32, owner: u32) -> Result<Pfn, BuddyError> {
        let pfn = self.__alloc_pages(gfp, order)?;
        self.set_owner(pfn, order, owner);
        Ok(pfn)
    }

    /// Tags every frame of a block with an owner.
    pub fn set_owner(&mut self, pfn: Pfn, order: u32, owner: u32) {
        for i in 0..(1u32 << order) {
            if let Some(p) = self.mem.page_mut(Pfn(pfn.0 + i)) {
                p.owner = owner;
            }
        }
    }

    // ------------------------------------------------------------------
    // watermarks
    // ------------------------------------------------------------------

    /// `nr_free_zone_pages(gfp_zone(GFP_USER))` = `nr_free_buffer_pages`:
    /// managed pages above the high watermark in the zones <= Normal (DMA
    /// and Normal).
    pub fn nr_free_buffer_pages(&self) -> u64 {
        self.zones()
            .iter()
            .filter(|z| matches!(z.kind, ZoneType::Dma | ZoneType::Normal))
            .map(|z| z.managed_pages.saturating_sub(z.high_wmark_pages()))
            .sum()
    }

    /// `calculate_min_free_kbytes`: `sqrt(lowmem_kbytes * 16)` clamped to
    /// `[128, 262144]`, unless the user's value is larger.
    pub fn calculate_min_free_kbytes(&mut self) {
        let lowmem_kbytes = self.nr_free_buffer_pages() * 4;
        let new = int_sqrt(lowmem_kbytes * 16);
        if self.user_min_free_kbytes.is_none_or(|u| new > u) {
            self.min_free_kbytes = new.clamp(128, 262144);
        }
    }

    /// `__setup_per_zone_wmarks` (`setup_per_zone_wmarks`).
    pub fn setup_per_zone_wmarks(&mut self) {
        let pages_min = self.min_free_kbytes >> (crate::types::PAGE_SHIFT - 10);
        // is_highmem(zone): is_highmem_idx, where ZONE_MOVABLE counts as
        // highmem when movable_zone (find_usable_zone_for_movable: the
        // highest zone below it with pages in its range) is HighMem; an
        // empty Movable zone then gets min = clamp(0 / 1024, 32, 128) = 32
        // as on the real kernel's 1 GiB board.
        let movable_zone_is_highmem = self.zones().iter().any(|z| z.kind.is_highmem() && z.spanned_pages > 0);
        let is_highmem = |k: ZoneType| k.is_highmem() || (k == ZoneType::Movable && movable_zone_is_highmem);
        let lowmem_pages: u64 = self.zones().iter().filter(|z| !is_highmem(z.kind)).map(|z| z.managed_pages).sum();
        let wsf = self.watermark_scale_factor;
        for z in self.zones[..self.nr_zones].iter_mut() {
            let managed = z.managed_pages;
            let mut tmp = (pages_min * managed).checked_div(lowmem_pages).unwrap_or(0);
            if is_highmem(z.kind) {
                z.watermark[WMARK_MIN] = (managed / 1024).clamp(SWAP_CLUSTER_MAX, 128);
            } else {
                z.watermark[WMARK_MIN] = tmp;
            }
            tmp = (tmp >> 2).max(mult_frac(managed, wsf, 10000));
            z.watermark_boost = 0;
            z.watermark[WMARK_LOW] = z.watermark[WMARK_MIN] + tmp;
            z.watermark[WMARK_HIGH] = z.watermark[WMARK_LOW] + tmp;
            z.watermark[WMARK_PROMO] = z.watermark[WMARK_HIGH] + tmp;
        }
        self.calculate_totalreserve_pages();
        // The watermark size have changed so update the pcpu batch and
        // high limits or the limits may be inappropriate.
        self.zone_pcp_update_all();
    }

    /// `refresh_zone_stat_thresholds` (`calculate_normal_threshold` for
    /// each populated zone).
    pub fn refresh_zone_stat_thresholds(&mut self) {
        for z in self.zones[..self.nr_zones].iter_mut().filter(|z| z.present_pages != 0) {
            let mem = (z.managed_pages >> (27 - crate::types::PAGE_SHIFT)) as u32;
            let fls = |x: u32| 32 - x.leading_zeros();
            z.stat_threshold = (2 * fls(NR_ONLINE_CPUS) * (1 + fls(mem))).min(125);
        }
    }

    /// `calculate_totalreserve_pages`.
    pub fn calculate_totalreserve_pages(&mut self) {
        let mut reserve = 0;
        for (i, z) in self.zones().iter().enumerate() {
            let mut max = (i..self.nr_zones).map(|j| z.lowmem_reserve[j]).max().unwrap_or(0);
            max += z.high_wmark_pages();
            reserve += max.min(z.managed_pages);
        }
        self.totalreserve_pages = reserve;
    }

    /// `setup_per_zone_lowmem_reserve`.
    pub fn setup_per_zone_lowmem_reserve(&mut self) {
        let n = self.nr_zones;
        for i in 0..n.saturating_sub(1) {
            let ratio = self.zones[i].kind.lowmem_reserve_ratio();
            let clear = ratio == 0 || self.zones[i].managed_pages == 0;
            let mut managed = 0;
            for j in (i + 1)..n {
                managed += self.zones[j].managed_pages;
                self.zones[i].lowmem_reserve[j] = if clear { 0 } else { managed / ratio };
            }
        }
        self.calculate_totalreserve_pages();
    }

    /// `init_per_zone_wmark_min` (a postcore initcall in Linux; call it once
    /// all boot memory is freed).
    pub fn init_per_zone_wmark_min(&mut self) {
        self.calculate_min_free_kbytes();
        self.setup_per_zone_wmarks();
        self.refresh_zone_stat_thresholds();
        self.setup_per_zone_lowmem_reserve();
    }

    /// `min_free_kbytes_sysctl_handler` for a write.
    pub fn set_min_free_kbytes(&mut self, kb: u64) {
        self.min_free_kbytes = kb;
        self.user_min_free_kbytes = Some(kb);
        self.setup_per_zone_wmarks();
    }

    /// `build_all_zonelists` decides `page_group_by_mobility_disabled`:
    /// grouping by mobility is off when the node has fewer pages than
    /// `pageblock_nr_pages * MIGRATE_TYPES`. Linux counts
    /// `nr_free_zone_pages` when the zonelists are built; we count the
    /// present pages of the zones.
    pub fn build_all_zonelists(&mut self) {
        let total: u64 = self.zones().iter().map(|z| z.present_pages as u64).sum();
        self.page_group_by_mobility_disabled = total < self.pageblock_nr_pages() as u64 * MIGRATE_TYPES as u64;
    }

    // ------------------------------------------------------------------
    // integrity (the host verifier's and the tests' oracle)
    // ------------------------------------------------------------------

    /// Walks every free list and checks what Linux guarantees: each block
    /// is aligned, marked `PageBuddy` with its order, on the list of its
    /// order, linked both ways; blocks do not overlap; `nr_free` and the
    /// free-page counters match the lists; CMA/Isolate lists hold only
    /// blocks of CMA/Isolate pageblocks and vice versa; the per-cpu lists
    /// hold what their counts say ([`PageAlloc::check_pcp_integrity`]).
    /// Returns the number of free pages found (isolated ones and those on
    /// the per-cpu lists included). `O(pages)`, read-only,
    /// no allocation.
    pub fn check_integrity(&self) -> Result<u64, BuddyError> {
        let mut total = 0u64;
        for (zid, z) in self.zones().iter().enumerate() {
            let mut free = 0i64;
            let mut free_cma = 0i64;
            for order in 0..self.profile.max_order {
                let area = &z.free_area[order as usize];
                let mut count = 0u64;
                for mt in MigrateType::ALL {
                    let list = area.free_list[mt.idx()];
                    let mut prev = PFN_NONE;
                    let mut cur = list.head;
                    while cur != PFN_NONE {
                        let pfn = Pfn(cur);
                        let p = self.mem.page(pfn).ok_or(BuddyError::Corrupt(pfn, "list entry outside memmap"))?;
                        if !p.has(PG_BUDDY) || p.has(PG_PCP) || p.private != order {
                            return Err(BuddyError::Corrupt(pfn, "free block without PageBuddy/order"));
                        }
                        if p.lru_prev != prev {
                            return Err(BuddyError::Corrupt(pfn, "broken prev link"));
                        }
                        if p.list_mt() != mt as u8 {
                            return Err(BuddyError::Corrupt(pfn, "list type cache differs"));
                        }
                        if cur & ((1 << order) - 1) != 0 || !z.zone_spans_pfn(Pfn(cur + (1 << order) - 1)) || p.zone_idx() != zid {
                            return Err(BuddyError::Corrupt(pfn, "misplaced free block"));
                        }
                        if p.refcount != 0 || p.mapcount != -1 {
                            return Err(BuddyError::Corrupt(pfn, "free block referenced"));
                        }
                        for i in 0..(1u32 << order) {
                            let pbt = self.mem.get_pageblock_migratetype(Pfn(cur + i));
                            let special = |t: MigrateType| t.is_cma() || t.is_isolate();
                            if (special(mt) || special(pbt)) && pbt != mt {
                                return Err(BuddyError::Corrupt(pfn, "free block on the wrong CMA/Isolate list"));
                            }
                            if i > 0 {
                                let q = self.mem.p(cur + i);
                                if q.has(PG_BUDDY) || q.has(PG_PCP) || q.refcount != 0 {
                                    return Err(BuddyError::Corrupt(Pfn(cur + i), "overlapping free blocks"));
                                }
                            }
                        }
                        count += 1;
                        if !mt.is_isolate() {
                            free += 1 << order;
                            if mt.is_cma() {
                                free_cma += 1 << order;
                            }
                        }
                        total += 1 << order;
                        prev = cur;
                        cur = p.lru_next;
                    }
                    if list.tail != prev {
                        return Err(BuddyError::Corrupt(Pfn(prev), "broken tail"));
                    }
                }
                if count != area.nr_free {
                    return Err(BuddyError::Corrupt(z.zone_start_pfn, "nr_free differs from the lists"));
                }
            }
            total += self.check_pcp_integrity(zid)?;
            if free != z.nr_free_pages {
                return Err(BuddyError::Corrupt(z.zone_start_pfn, "NR_FREE_PAGES differs from the lists"));
            }
            if free_cma != z.nr_free_cma_pages {
                return Err(BuddyError::Corrupt(z.zone_start_pfn, "NR_FREE_CMA_PAGES differs from the lists"));
            }
        }
        Ok(total)
    }
}

#[cfg(test)]
pub(crate) mod tests;
#[cfg(test)]
mod model_tests;
