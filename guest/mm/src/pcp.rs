//! Per-CPU page lists, following Linux 6.1 `mm/page_alloc.c`:
//! `rmqueue_pcplist`, `rmqueue_bulk`, `free_unref_page`,
//! `free_unref_page_commit`, `free_pcppages_bulk`, `nr_pcp_free`,
//! `drain_all_pages`, `zone_batchsize`, `zone_highsize`.
//!
//! The board has one CPU (QEMU's `vexpress-a9` default), so each zone has
//! one `struct per_cpu_pages`. Debian's armmp build has no
//! `CONFIG_TRANSPARENT_HUGEPAGE` (it needs LPAE on ARM), so there are
//! `NR_PCP_LISTS = MIGRATE_PCPTYPES * (PAGE_ALLOC_COSTLY_ORDER + 1) = 12`
//! lists: one per (order <= 3, unmovable/movable/reclaimable).
//!
//! Pages on a pcp list are free to Linux's page checks (refcount 0,
//! mapcount -1) but not `PageBuddy` and not counted in `NR_FREE_PAGES`:
//! `rmqueue_bulk` takes them off the counters, `free_pcppages_bulk` puts
//! them back. They are linked through `lru_next`/`lru_prev` (Linux's
//! `page->pcp_list` shares the union with `buddy_list`), carry their
//! "pcppage migratetype" in the list-type field (Linux: `page->index`),
//! and carry [`PG_PCP`] with the block's order in `private` (our markers,
//! so that integrity checks and the host can tell them apart and size
//! them; Linux knows them by list membership only).
//!
//! `CONFIG_PCP_BATCH_SCALE_MAX` (default 5) caps `free_factor` as in the
//! 6.1 stable series (backported from 6.7).
use crate::buddy::{BuddyError, FreeList, PageAlloc, FPI_NONE};
use crate::page::*;
use crate::pageblock::{MigrateType, MIGRATE_PCPTYPES};
use crate::types::Pfn;

/// `PAGE_ALLOC_COSTLY_ORDER`.
pub const PAGE_ALLOC_COSTLY_ORDER: u32 = 3;
/// `NR_PCP_LISTS` without THP: `MIGRATE_PCPTYPES * (PAGE_ALLOC_COSTLY_ORDER + 1)`.
pub const NR_PCP_LISTS: usize = MIGRATE_PCPTYPES * (PAGE_ALLOC_COSTLY_ORDER as usize + 1);
/// `BOOT_PAGESET_HIGH`: the boot pageset stores nothing.
pub const BOOT_PAGESET_HIGH: u32 = 0;
/// `BOOT_PAGESET_BATCH`.
pub const BOOT_PAGESET_BATCH: u32 = 1;
/// `CONFIG_PCP_BATCH_SCALE_MAX` (Kconfig default).
pub const PCP_BATCH_SCALE_MAX: u32 = 5;
/// `SZ_1M / PAGE_SIZE`.
const SZ_1M_PAGES: u64 = 256;
/// CPUs online on the board (`num_online_cpus()`).
pub const NR_ONLINE_CPUS: u32 = 1;

/// `struct per_cpu_pages` of the one CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PerCpuPages {
    /// `count`: pages on the lists.
    pub count: u32,
    /// `high`: free to the buddy when `count` reaches it.
    pub high: u32,
    /// `batch`: chunk size for buddy add/remove.
    pub batch: u32,
    /// `free_factor`: batch scaling on consecutive frees.
    pub free_factor: u32,
    /// `lists[NR_PCP_LISTS]`, indexed by [`order_to_pindex`].
    pub lists: [FreeList; NR_PCP_LISTS],
}

impl PerCpuPages {
    /// `per_cpu_pages_init`: the boot pageset values.
    pub const BOOT: PerCpuPages = PerCpuPages {
        count: 0,
        high: BOOT_PAGESET_HIGH,
        batch: BOOT_PAGESET_BATCH,
        free_factor: 0,
        lists: [FreeList::EMPTY; NR_PCP_LISTS],
    };
}

/// `order_to_pindex` (no THP list).
pub const fn order_to_pindex(mt: MigrateType, order: u32) -> usize {
    MIGRATE_PCPTYPES * order as usize + mt as usize
}

/// `pindex_to_order`.
pub const fn pindex_to_order(pindex: usize) -> u32 {
    (pindex / MIGRATE_PCPTYPES) as u32
}

/// `pcp_allowed_order` (no THP).
pub const fn pcp_allowed_order(order: u32) -> bool {
    order <= PAGE_ALLOC_COSTLY_ORDER
}

/// `rounddown_pow_of_two` for `x >= 1`.
const fn rounddown_pow_of_two(x: u64) -> u64 {
    1 << (63 - x.leading_zeros())
}

/// `zone_batchsize` for a zone with `managed` pages (CONFIG_MMU).
pub fn zone_batchsize(managed: u64) -> u32 {
    let mut batch = (managed >> 10).min(SZ_1M_PAGES);
    batch /= 4;
    if batch < 1 {
        batch = 1;
    }
    (rounddown_pow_of_two(batch + batch / 2) - 1) as u32
}

/// `zone_highsize` with `percpu_pagelist_high_fraction` 0 (the default):
/// the zone's low watermark split over the online CPUs, at least
/// `batch * 4`.
pub fn zone_highsize(low_wmark: u64, batch: u32, cpu_online: u32) -> u32 {
    // cpumask_weight(cpumask_of_node(nid)) is the online mask without NUMA.
    let nr_split_cpus = (NR_ONLINE_CPUS + cpu_online).max(1) as u64;
    let high = low_wmark / nr_split_cpus;
    high.max((batch as u64) << 2) as u32
}

impl PageAlloc<'_> {
    // ------------------------------------------------------------------
    // list plumbing (pcp lists live in the zone, linked through the pages)
    // ------------------------------------------------------------------

    /// `list_add(&page->pcp_list, &pcp->lists[pindex])`.
    fn pcp_list_add(&mut self, zid: usize, pindex: usize, pfn: u32) {
        let l = &mut self.zones[zid].pcp.lists[pindex];
        let old = l.head;
        l.head = pfn;
        if old == PFN_NONE {
            l.tail = pfn;
        } else {
            self.mem.pm(old).lru_prev = pfn;
        }
        let p = self.mem.pm(pfn);
        p.lru_next = old;
        p.lru_prev = PFN_NONE;
        p.flags |= PG_PCP;
        p.private = pindex_to_order(pindex);
    }

    /// `list_add_tail(&page->pcp_list, list)` (refill order).
    fn pcp_list_add_tail(&mut self, zid: usize, pindex: usize, pfn: u32) {
        let l = &mut self.zones[zid].pcp.lists[pindex];
        let old = l.tail;
        l.tail = pfn;
        if old == PFN_NONE {
            l.head = pfn;
        } else {
            self.mem.pm(old).lru_next = pfn;
        }
        let p = self.mem.pm(pfn);
        p.lru_prev = old;
        p.lru_next = PFN_NONE;
        p.flags |= PG_PCP;
        p.private = pindex_to_order(pindex);
    }

    /// `list_del(&page->pcp_list)`.
    fn pcp_list_del(&mut self, zid: usize, pindex: usize, pfn: u32) {
        let (prev, next) = {
            let p = self.mem.p(pfn);
            (p.lru_prev, p.lru_next)
        };
        let l = &mut self.zones[zid].pcp.lists[pindex];
        if prev == PFN_NONE {
            l.head = next;
        } else {
            self.mem.pm(prev).lru_next = next;
        }
        if next == PFN_NONE {
            l.tail = prev;
        } else {
            self.mem.pm(next).lru_prev = prev;
        }
        let p = self.mem.pm(pfn);
        p.lru_next = PFN_NONE;
        p.lru_prev = PFN_NONE;
        p.flags &= !PG_PCP;
        p.private = 0;
    }

    /// `get_pcppage_migratetype`.
    fn get_pcppage_migratetype(&self, pfn: u32) -> MigrateType {
        MigrateType::from_u8(self.mem.p(pfn).list_mt()).unwrap_or(MigrateType::Movable)
    }

    // ------------------------------------------------------------------
    // high / batch
    // ------------------------------------------------------------------

    /// `zone_set_pageset_high_and_batch`.
    pub fn zone_set_pageset_high_and_batch(&mut self, zid: usize, cpu_online: u32) {
        let z = &mut self.zones[zid];
        let new_batch = zone_batchsize(z.managed_pages).max(1);
        let new_high = zone_highsize(z.low_wmark_pages(), new_batch, cpu_online);
        if z.pageset_high == new_high && z.pageset_batch == new_batch {
            return;
        }
        z.pageset_high = new_high;
        z.pageset_batch = new_batch;
        // pageset_update
        z.pcp.batch = new_batch;
        z.pcp.high = new_high;
    }

    /// `setup_per_cpu_pageset`: populated zones leave the boot pageset
    /// (`start_kernel`, after `mm_init`; the watermarks are still 0 then,
    /// so `high = batch * 4` until `init_per_zone_wmark_min`).
    pub fn setup_per_cpu_pageset(&mut self) {
        for zid in 0..self.nr_zones {
            if self.zones[zid].populated() && !self.zones[zid].pcp_ready {
                self.zones[zid].pcp_ready = true;
                self.zone_set_pageset_high_and_batch(zid, 0);
            }
        }
    }

    /// `zone_pcp_update(zone, 0)` for every zone, as `setup_per_zone_wmarks`
    /// ends. Zones still on the boot pageset (unpopulated, or before
    /// [`PageAlloc::setup_per_cpu_pageset`]) keep it: in Linux they share
    /// the boot pageset, whose values nothing shows.
    pub(crate) fn zone_pcp_update_all(&mut self) {
        for zid in 0..self.nr_zones {
            if self.zones[zid].pcp_ready {
                self.zone_set_pageset_high_and_batch(zid, 0);
            }
        }
    }

    // ------------------------------------------------------------------
    // allocation
    // ------------------------------------------------------------------

    /// `rmqueue_bulk`: `count` blocks of `order` from the buddy onto the
    /// tail of the pcp list, one `NR_FREE_PAGES` update for all of them.
    fn rmqueue_bulk(&mut self, zid: usize, order: u32, count: u32, pindex: usize, mt: MigrateType, alloc_flags: u32) -> u32 {
        let mut allocated = 0;
        let mut i = 0i64;
        while i < count as i64 {
            let Some(pfn) = self.__rmqueue(zid, order, mt, alloc_flags) else {
                break;
            };
            i += 1;
            if self.check_new_pages(pfn, order) {
                // check_pcp_refill: bad_page() leaks the block.
                self.events.bad_pages += 1 << order;
                continue;
            }
            self.pcp_list_add_tail(zid, pindex, pfn);
            allocated += 1;
            if self.get_pcppage_migratetype(pfn).is_cma() {
                self.zones[zid].nr_free_cma_pages -= 1 << order;
            }
        }
        self.zones[zid].nr_free_pages -= i << order;
        allocated
    }

    /// `__rmqueue_pcplist`: the first block of the list, refilling it by
    /// `batch` (scaled down by order) when empty.
    fn __rmqueue_pcplist(&mut self, zid: usize, order: u32, mt: MigrateType, alloc_flags: u32, pindex: usize) -> Option<u32> {
        if self.zones[zid].pcp.lists[pindex].is_empty() {
            let mut batch = self.zones[zid].pcp.batch;
            if batch > 1 {
                batch = (batch >> order).max(2);
            }
            let alloced = self.rmqueue_bulk(zid, order, batch, pindex, mt, alloc_flags);
            self.zones[zid].pcp.count += alloced << order;
            if self.zones[zid].pcp.lists[pindex].is_empty() {
                return None;
            }
        }
        // check_new_pcp: only with debug_pagealloc (off in Debian's build).
        let pfn = self.zones[zid].pcp.lists[pindex].head;
        self.pcp_list_del(zid, pindex, pfn);
        self.zones[zid].pcp.count -= 1 << order;
        Some(pfn)
    }

    /// `rmqueue_pcplist`.
    pub(crate) fn rmqueue_pcplist(&mut self, zid: usize, order: u32, mt: MigrateType, alloc_flags: u32) -> Option<u32> {
        // On allocation, reduce the number of pages that are batch freed.
        self.zones[zid].pcp.free_factor >>= 1;
        let pindex = order_to_pindex(mt, order);
        let pfn = self.__rmqueue_pcplist(zid, order, mt, alloc_flags, pindex)?;
        self.events.pgalloc[zid] += 1 << order;
        Some(pfn)
    }

    // ------------------------------------------------------------------
    // freeing
    // ------------------------------------------------------------------

    /// `free_pcppages_bulk`: `count` pages from the lists back to the
    /// buddy, round-robin over the lists starting with `pindex`, oldest
    /// (tail) first.
    pub fn free_pcppages_bulk(&mut self, zid: usize, count: u32, pindex: usize) {
        let mut count = count.min(self.zones[zid].pcp.count) as i64;
        let mut min_pindex = 0usize;
        let mut max_pindex = NR_PCP_LISTS - 1;
        // Ensure requested pindex is drained first.
        let mut pindex = pindex as isize - 1;
        let isolated_pageblocks = self.has_isolate_pageblock(zid);
        while count > 0 {
            // Remove pages from lists in a round-robin fashion.
            loop {
                pindex += 1;
                if pindex as usize > max_pindex {
                    pindex = min_pindex as isize;
                }
                let p = pindex as usize;
                if !self.zones[zid].pcp.lists[p].is_empty() {
                    break;
                }
                if p == max_pindex {
                    max_pindex -= 1;
                }
                if p == min_pindex {
                    min_pindex += 1;
                }
            }
            let p = pindex as usize;
            let order = pindex_to_order(p);
            let nr_pages = 1i64 << order;
            loop {
                let pfn = self.zones[zid].pcp.lists[p].tail;
                let mut mt = self.get_pcppage_migratetype(pfn);
                self.pcp_list_del(zid, p, pfn);
                count -= nr_pages;
                self.zones[zid].pcp.count -= nr_pages as u32;
                // bulkfree_pcp_prepare: only with debug_pagealloc.
                // Pageblock could have been isolated meanwhile.
                if isolated_pageblocks {
                    mt = self.mem.get_pageblock_migratetype(Pfn(pfn));
                }
                self.__free_one_page(Pfn(pfn), zid, order, mt, FPI_NONE);
                if count <= 0 || self.zones[zid].pcp.lists[p].is_empty() {
                    break;
                }
            }
        }
    }

    /// `nr_pcp_free`: how many pages a full list gives back.
    fn nr_pcp_free(&mut self, zid: usize, high: u32, batch: u32, free_high: bool) -> u32 {
        let pcp = &mut self.zones[zid].pcp;
        if free_high {
            return pcp.count;
        }
        // Check for PCP disabled or boot pageset.
        if high < batch {
            return 1;
        }
        let min_nr_free = batch as i64;
        let max_nr_free = high as i64 - batch as i64;
        // Double the number of pages freed each time there is subsequent
        // freeing of pages without any allocation.
        let mut b = (batch as i64) << pcp.free_factor;
        if b < max_nr_free && pcp.free_factor < PCP_BATCH_SCALE_MAX {
            pcp.free_factor += 1;
        }
        // clamp(): max_nr_free wins when it is below min_nr_free.
        b = b.max(min_nr_free).min(max_nr_free);
        b as u32
    }

    /// `nr_pcp_high` (`ZONE_RECLAIM_ACTIVE` is never set: no reclaim).
    fn nr_pcp_high(&self, zid: usize, free_high: bool) -> u32 {
        let high = self.zones[zid].pcp.high;
        if high == 0 || free_high {
            return 0;
        }
        high
    }

    /// `free_unref_page_commit`.
    fn free_unref_page_commit(&mut self, zid: usize, pfn: u32, mt: MigrateType, order: u32) {
        self.events.pgfree += 1 << order;
        let pindex = order_to_pindex(mt, order);
        self.pcp_list_add(zid, pindex, pfn);
        let pcp = &mut self.zones[zid].pcp;
        pcp.count += 1 << order;
        // Limit the number of high-order pages stored when the PCP is
        // heavily freeing without allocation.
        let free_high = pcp.free_factor != 0 && order != 0 && order <= PAGE_ALLOC_COSTLY_ORDER;
        let high = self.nr_pcp_high(zid, free_high);
        if self.zones[zid].pcp.count >= high {
            let batch = self.zones[zid].pcp.batch;
            let n = self.nr_pcp_free(zid, high, batch, free_high);
            self.free_pcppages_bulk(zid, n, pindex);
        }
    }

    /// `free_unref_page` after `free_unref_page_prepare`'s checks passed:
    /// onto the pcp list of the pageblock's type (CMA and HighAtomic ride
    /// on the movable list), or straight to the buddy for an isolated
    /// pageblock.
    pub(crate) fn free_unref_page(&mut self, zid: usize, pfn: Pfn, order: u32) {
        let mt = self.mem.get_pageblock_migratetype(pfn);
        // set_pcppage_migratetype
        let p = self.mem.pm(pfn.0);
        p.flags = (p.flags & !(PG_LIST_MT_MASK << PG_LIST_MT_SHIFT)) | ((mt as u32) << PG_LIST_MT_SHIFT);
        let mut pcpmt = mt;
        if mt.idx() >= MIGRATE_PCPTYPES {
            if mt.is_isolate() {
                // (no PGFREE count on this path in 6.1)
                self.free_one_page(zid, pfn, order, mt, FPI_NONE);
                return;
            }
            pcpmt = MigrateType::Movable;
        }
        self.free_unref_page_commit(zid, pfn.0, pcpmt, order);
    }

    /// `drain_pages_zone`.
    pub fn drain_pages_zone(&mut self, zid: usize) {
        loop {
            let count = self.zones[zid].pcp.count;
            if count == 0 {
                break;
            }
            let to_drain = count.min(self.zones[zid].pcp.batch << PCP_BATCH_SCALE_MAX);
            self.free_pcppages_bulk(zid, to_drain, 0);
        }
    }

    /// `drain_all_pages(zone)`: every pcp page of `zone` (all zones for
    /// `None`) back to the buddy.
    pub fn drain_all_pages(&mut self, zone: Option<usize>) {
        match zone {
            Some(zid) => self.drain_pages_zone(zid),
            None => {
                for zid in 0..self.nr_zones {
                    self.drain_pages_zone(zid);
                }
            }
        }
    }

    /// The lowest block on `zone`'s pcp lists inside `[start, end)` and
    /// how many pages such blocks hold.
    pub fn pcp_pages_in(&self, zid: usize, start: Pfn, end: Pfn) -> (Option<Pfn>, u32) {
        let (mut first, mut n) = (None::<u32>, 0u32);
        let records = self.mem.records().len();
        for (pindex, list) in self.zones[zid].pcp.lists.iter().enumerate() {
            let order = pindex_to_order(pindex);
            let mut cur = list.head;
            let mut steps = 0usize;
            while cur != PFN_NONE && steps <= records {
                if cur >= start.0 && cur < end.0 {
                    first = Some(first.map_or(cur, |f| f.min(cur)));
                    n += 1 << order;
                }
                cur = self.mem.page(Pfn(cur)).map_or(PFN_NONE, |p| p.lru_next);
                steps += 1;
            }
        }
        (first.map(Pfn), n)
    }

    /// Pages on all pcp lists (the difference between free memory and
    /// `NR_FREE_PAGES`).
    pub fn nr_pcp_pages(&self) -> u64 {
        self.zones().iter().map(|z| z.pcp.count as u64).sum()
    }

    /// Pages of zone `zid`'s pcp lists whose pcppage migratetype is
    /// `MIGRATE_CMA` (CMA pages freed by `free_unref_page`, or taken off the
    /// buddy by `rmqueue_bulk`: counted in neither `NR_FREE_CMA_PAGES` nor
    /// in use).
    pub fn pcp_cma_pages(&self, zid: usize) -> u64 {
        let mut n = 0u64;
        for (pindex, list) in self.zones[zid].pcp.lists.iter().enumerate() {
            let mut cur = list.head;
            while cur != PFN_NONE {
                if self.get_pcppage_migratetype(cur).is_cma() {
                    n += 1 << pindex_to_order(pindex);
                }
                cur = self.mem.p(cur).lru_next;
            }
        }
        n
    }

    /// Walks the pcp lists of a zone and checks what Linux relies on:
    /// links both ways, `count` equals the pages listed, every page in the
    /// zone, aligned to the list's order, marked [`PG_PCP`], refcount 0,
    /// not `PageBuddy`, and never of an isolated type. Returns the pages.
    pub(crate) fn check_pcp_integrity(&self, zid: usize) -> Result<u64, BuddyError> {
        let z = &self.zones[zid];
        let mut total = 0u64;
        for (pindex, list) in z.pcp.lists.iter().enumerate() {
            let order = pindex_to_order(pindex);
            let mut prev = PFN_NONE;
            let mut cur = list.head;
            let mut steps = 0u64;
            while cur != PFN_NONE {
                let pfn = Pfn(cur);
                let p = self.mem.page(pfn).ok_or(BuddyError::Corrupt(pfn, "pcp entry outside memmap"))?;
                if !p.has(PG_PCP) || p.has(PG_BUDDY) {
                    return Err(BuddyError::Corrupt(pfn, "pcp page without PG_PCP or with PageBuddy"));
                }
                if p.lru_prev != prev {
                    return Err(BuddyError::Corrupt(pfn, "broken pcp prev link"));
                }
                if p.private != order || cur & ((1 << order) - 1) != 0 || p.zone_idx() != zid || !z.zone_spans_pfn(Pfn(cur + (1 << order) - 1)) {
                    return Err(BuddyError::Corrupt(pfn, "misplaced pcp page"));
                }
                if p.refcount != 0 || p.mapcount != -1 {
                    return Err(BuddyError::Corrupt(pfn, "pcp page referenced"));
                }
                if MigrateType::from_u8(p.list_mt()).is_none_or(|m| m.is_isolate()) {
                    return Err(BuddyError::Corrupt(pfn, "pcp page of an isolated or bad type"));
                }
                total += 1 << order;
                steps += 1;
                if steps > self.mem.records().len() as u64 {
                    return Err(BuddyError::Corrupt(pfn, "pcp list cycle"));
                }
                prev = cur;
                cur = p.lru_next;
            }
            if list.tail != prev {
                return Err(BuddyError::Corrupt(Pfn(prev), "broken pcp tail"));
            }
        }
        if total != z.pcp.count as u64 {
            return Err(BuddyError::Corrupt(z.zone_start_pfn, "pcp count differs from the lists"));
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod model_tests;
