//! Pageblock isolation (Linux 6.1 `mm/page_isolation.c`) and the free-page
//! movers of `mm/page_alloc.c` it relies on: `move_freepages_block`,
//! `__isolate_free_page`, `__putback_isolated_page`, `split_free_page`.
//!
//! Linux takes `zone->lock` around each of these; the guest is single-CPU
//! and the allocator is `&mut`, which gives the same exclusion.
use crate::buddy::{PageAlloc, FPI_SKIP_REPORT_NOTIFY, FPI_TO_TAIL, FPI_NONE};
use crate::gfp::{ALLOC_CMA, WMARK_MIN};
use crate::page::*;
use crate::pageblock::MigrateType;
use crate::types::Pfn;
use crate::zone::ZoneType;
use core::fmt;

/// `MEMORY_OFFLINE` isolation flag.
pub const MEMORY_OFFLINE: u32 = 0x1;
/// `REPORT_FAILURE` isolation flag.
pub const REPORT_FAILURE: u32 = 0x2;

/// Errors of pageblock isolation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IsolationError {
    /// `-EBUSY`: the pageblock holds an unmovable page (its PFN), is
    /// already isolated, or pages are not free/isolated.
    Busy(Pfn),
    /// The PFN range is outside the memory map or not in one zone.
    OutOfRange(Pfn),
}

impl fmt::Display for IsolationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IsolationError::Busy(p) => write!(f, "pageblock busy at pfn {:#x} (-EBUSY)", p.0),
            IsolationError::OutOfRange(p) => write!(f, "pfn {:#x} out of range", p.0),
        }
    }
}

impl PageAlloc<'_> {
    /// `move_freepages`: move every free block of `[start, end]` (inclusive,
    /// as in Linux) to the tail of `mt`'s lists; count movable in-use pages.
    pub(crate) fn move_freepages(&mut self, zid: usize, start: u32, end: u32, mt: MigrateType, mut num_movable: Option<&mut u32>) -> u32 {
        let mut pages_moved = 0;
        let mut pfn = start;
        while pfn <= end {
            let p = self.mem.p(pfn);
            if !p.has(PG_BUDDY) {
                if p.has(PG_LRU) || p.has(PG_MOVABLE) {
                    if let Some(n) = num_movable.as_deref_mut() {
                        *n += 1;
                    }
                }
                pfn += 1;
                continue;
            }
            let order = p.private;
            self.move_to_free_list(pfn, zid, order, mt);
            pfn += 1 << order;
            pages_moved += 1 << order;
        }
        pages_moved
    }

    /// `move_freepages_block`: [`Self::move_freepages`] over the pageblock
    /// of `pfn`, clipped at the zone start; 0 if the block ends outside the
    /// zone.
    pub fn move_freepages_block(&mut self, zid: usize, pfn: Pfn, mt: MigrateType, num_movable: Option<&mut u32>) -> u32 {
        let mut num_movable = num_movable;
        if let Some(n) = num_movable.as_deref_mut() {
            *n = 0;
        }
        let mut start = self.mem.pageblock_start_pfn(pfn);
        let end = Pfn(self.mem.pageblock_end_pfn(pfn).0 - 1);
        let z = &self.zones[zid];
        if !z.zone_spans_pfn(start) {
            start = pfn;
        }
        if !z.zone_spans_pfn(end) {
            return 0;
        }
        self.move_freepages(zid, start.0, end.0, mt, num_movable)
    }

    /// `has_unmovable_pages`: the first page of `[start, end)` (one
    /// pageblock) that cannot be migrated away, if any. CMA pageblocks count
    /// as movable only for a CMA isolation.
    pub fn has_unmovable_pages(&self, start: Pfn, end: Pfn, mt: MigrateType, flags: u32) -> Option<Pfn> {
        let zid = self.page_zone(start);
        if self.mem.get_pageblock_migratetype(start).is_cma() {
            return if mt.is_cma() { None } else { Some(start) };
        }
        let mut pfn = start.0;
        while pfn < end.0 {
            let p = self.mem.p(pfn);
            if p.has(PG_RESERVED) {
                return Some(Pfn(pfn));
            }
            if self.zones[zid].kind == ZoneType::Movable {
                pfn += 1;
                continue;
            }
            // (no hugetlb/THP here)
            if p.refcount == 0 {
                if p.has(PG_BUDDY) {
                    pfn += (1 << p.private) - 1;
                }
                pfn += 1;
                continue;
            }
            if flags & MEMORY_OFFLINE != 0 && p.has(PG_HWPOISON) {
                pfn += 1;
                continue;
            }
            if p.has(PG_MOVABLE) || p.has(PG_LRU) {
                pfn += 1;
                continue;
            }
            return Some(Pfn(pfn));
        }
        None
    }

    /// `set_migratetype_isolate`: make the pageblock of `pfn`
    /// `MIGRATE_ISOLATE` and move its free pages to the isolate lists
    /// (they stop counting as free), unless it holds an unmovable page in
    /// `[start, end)` or is already isolated (`-EBUSY`).
    pub fn set_migratetype_isolate(&mut self, pfn: Pfn, migratetype: MigrateType, isol_flags: u32, start: Pfn, end: Pfn) -> Result<(), IsolationError> {
        if !self.mem.pfn_valid(pfn) {
            return Err(IsolationError::OutOfRange(pfn));
        }
        let pfn = self.mem.pageblock_start_pfn(pfn).max(self.mem.base_pfn());
        if self.mem.get_pageblock_migratetype(pfn).is_isolate() {
            return Err(IsolationError::Busy(pfn));
        }
        let zid = self.page_zone(pfn);
        let check_start = pfn.max(start);
        let check_end = Pfn(self.mem.pageblock_end_pfn(pfn).0.min(end.0).min(self.mem.end_pfn().0));
        if let Some(bad) = self.has_unmovable_pages(check_start, check_end, migratetype, isol_flags) {
            // REPORT_FAILURE: Linux dump_page()s it; the caller may log.
            return Err(IsolationError::Busy(bad));
        }
        let mt = self.mem.get_pageblock_migratetype(pfn);
        self.set_pageblock_migratetype(pfn, MigrateType::Isolate);
        self.zones[zid].nr_isolate_pageblock += 1;
        let nr_pages = self.move_freepages_block(zid, pfn, MigrateType::Isolate, None);
        self.__mod_zone_freepage_state(zid, -(nr_pages as i64), mt);
        Ok(())
    }

    /// `unset_migratetype_isolate`: give the pageblock of `pfn` back its type
    /// `migratetype` and its free pages back to the counters. A free block
    /// of `pageblock_order` or more whose buddy is not isolated is taken out
    /// and freed again so that it merges (Linux: isolated blocks must not
    /// merge with others while isolated).
    pub fn unset_migratetype_isolate(&mut self, pfn: Pfn, migratetype: MigrateType) {
        if !self.mem.pfn_valid(pfn) {
            return;
        }
        let pfn = self.mem.pageblock_start_pfn(pfn).max(self.mem.base_pfn());
        let zid = self.page_zone(pfn);
        if !self.mem.get_pageblock_migratetype(pfn).is_isolate() {
            return;
        }
        let mut isolated_page = None;
        if self.page_buddy(pfn) {
            let order = self.buddy_order(pfn);
            if order >= self.profile.pageblock_order && order < self.profile.max_order - 1 {
                if let Some(buddy) = self.find_buddy_page_pfn(zid, pfn.0, order) {
                    if !self.mem.get_pageblock_migratetype(Pfn(buddy)).is_isolate() && self.__isolate_free_page(pfn, order) != 0 {
                        isolated_page = Some(order);
                    }
                }
            }
        }
        if isolated_page.is_none() {
            let nr_pages = self.move_freepages_block(zid, pfn, migratetype, None);
            self.__mod_zone_freepage_state(zid, nr_pages as i64, migratetype);
        }
        self.set_pageblock_migratetype(pfn, migratetype);
        if let Some(order) = isolated_page {
            self.__putback_isolated_page(pfn, order, migratetype);
        }
        self.zones[zid].nr_isolate_pageblock -= 1;
    }

    /// `__isolate_free_page`: take a free block off its list for the caller
    /// (CMA, compaction). Outside isolated pageblocks the min watermark
    /// (raised by the block size) must still hold. Returns the number of
    /// pages taken, 0 if refused.
    pub fn __isolate_free_page(&mut self, pfn: Pfn, order: u32) -> u32 {
        if !self.mem.pfn_valid(pfn) || !self.page_buddy(pfn) || self.buddy_order(pfn) != order {
            return 0;
        }
        let zid = self.page_zone(pfn);
        let mt = self.mem.get_pageblock_migratetype(pfn);
        if !mt.is_isolate() {
            let watermark = self.zones[zid].watermark[WMARK_MIN] + (1u64 << order);
            if !self.zone_watermark_ok(zid, 0, watermark, 0, ALLOC_CMA) {
                return 0;
            }
            self.__mod_zone_freepage_state(zid, -(1i64 << order), mt);
        }
        self.del_page_from_free_list(pfn.0, zid, order);
        if order + 1 >= self.profile.pageblock_order {
            let end = pfn.0 + (1 << order) - 1;
            let mut p = pfn.0;
            while p < end {
                let mt = self.mem.get_pageblock_migratetype(Pfn(p));
                if mt.is_mergeable() {
                    self.set_pageblock_migratetype(Pfn(p), MigrateType::Movable);
                }
                p += self.pageblock_nr_pages();
            }
        }
        1 << order
    }

    /// `__putback_isolated_page`: return a block taken by
    /// `__isolate_free_page` to the tail of its free list.
    pub fn __putback_isolated_page(&mut self, pfn: Pfn, order: u32, mt: MigrateType) {
        let zid = self.page_zone(pfn);
        self.__free_one_page(pfn, zid, order, mt, FPI_SKIP_REPORT_NOTIFY | FPI_TO_TAIL);
    }

    /// `split_free_page`: split a free block at `split_pfn_offset` so that
    /// each part goes to the lists of its own pageblock's type. Returns
    /// false (`-ENOENT`) if the block changed.
    pub fn split_free_page(&mut self, free_pfn: Pfn, order: u32, split_pfn_offset: u32) -> bool {
        if split_pfn_offset == 0 {
            return true;
        }
        if !self.page_buddy(free_pfn) || self.buddy_order(free_pfn) != order {
            return false;
        }
        let zid = self.page_zone(free_pfn);
        let mt = self.mem.get_pageblock_migratetype(free_pfn);
        if !mt.is_isolate() {
            self.__mod_zone_freepage_state(zid, -(1i64 << order), mt);
        }
        self.del_page_from_free_list(free_pfn.0, zid, order);
        let mut split = split_pfn_offset;
        let mut pfn = free_pfn.0;
        let end = free_pfn.0 + (1 << order);
        while pfn < end {
            let mt = self.mem.get_pageblock_migratetype(Pfn(pfn));
            let natural = if pfn != 0 { pfn.trailing_zeros() } else { order };
            let o = natural.min(31 - split.leading_zeros());
            self.__free_one_page(Pfn(pfn), zid, o, mt, FPI_NONE);
            pfn += 1 << o;
            split -= 1 << o;
            if split == 0 {
                split = (1 << order) - (pfn - free_pfn.0);
            }
        }
        true
    }

    /// `isolate_single_pageblock`: isolate the pageblock before/after a
    /// pageblock-aligned boundary, splitting free blocks that cross it.
    fn isolate_single_pageblock(&mut self, boundary: u32, flags: u32, isolate_before: bool, skip_isolation: bool, migratetype: MigrateType) -> Result<(), IsolationError> {
        let pb = self.pageblock_nr_pages();
        let isolate_pageblock = if isolate_before { boundary - pb } else { boundary };
        let zid = self.page_zone(Pfn(isolate_pageblock));
        let max_nr = self.profile.max_order_nr_pages();
        let start = (isolate_pageblock & !(max_nr - 1)).max(self.zones[zid].zone_start_pfn.0).max(self.mem.base_pfn().0);
        if !skip_isolation {
            self.set_migratetype_isolate(Pfn(isolate_pageblock), migratetype, flags, Pfn(isolate_pageblock), Pfn(isolate_pageblock + pb))?;
        }
        if isolate_before {
            if !self.mem.pfn_valid(Pfn(boundary)) {
                return Ok(());
            }
        } else if boundary == 0 || !self.mem.pfn_valid(Pfn(boundary - 1)) {
            return Ok(());
        }
        let mut pfn = start;
        while pfn < boundary {
            let p = *self.mem.p(pfn);
            if p.has(PG_BUDDY) {
                let order = p.private;
                if pfn + (1 << order) > boundary && !self.split_free_page(Pfn(pfn), order, boundary - pfn) {
                    continue;
                }
                pfn += 1 << order;
                continue;
            }
            if p.has(PG_HEAD) {
                // An in-use compound page across the boundary would have to
                // be migrated first; we do not migrate here: fail.
                let mut n = 1;
                while pfn + n < self.mem.end_pfn().0 && self.mem.p(pfn + n).has(PG_TAIL) {
                    n += 1;
                }
                if pfn + n > boundary {
                    if !skip_isolation {
                        self.unset_migratetype_isolate(Pfn(isolate_pageblock), migratetype);
                    }
                    return Err(IsolationError::Busy(Pfn(pfn)));
                }
                pfn += n;
                continue;
            }
            pfn += 1;
        }
        Ok(())
    }

    /// `start_isolate_page_range`: isolate every pageblock touching
    /// `[start, end)`; on failure nothing stays isolated.
    pub fn start_isolate_page_range(&mut self, start: Pfn, end: Pfn, migratetype: MigrateType, flags: u32) -> Result<(), IsolationError> {
        if start >= end || !self.mem.pfn_valid(start) || !self.mem.pfn_valid(Pfn(end.0 - 1)) {
            return Err(IsolationError::OutOfRange(start));
        }
        let pb = self.pageblock_nr_pages();
        let isolate_start = self.mem.pageblock_start_pfn(start).0;
        let isolate_end = (end.0 + pb - 1) & !(pb - 1);
        if !self.mem.pfn_valid(Pfn(isolate_start)) || !self.mem.pfn_valid(Pfn(isolate_end - 1)) {
            return Err(IsolationError::OutOfRange(start));
        }
        self.isolate_single_pageblock(isolate_start, flags, false, false, migratetype)?;
        let skip = isolate_start == isolate_end - pb;
        if let Err(e) = self.isolate_single_pageblock(isolate_end, flags, true, skip, migratetype) {
            self.unset_migratetype_isolate(Pfn(isolate_start), migratetype);
            return Err(e);
        }
        let mut pfn = isolate_start + pb;
        while pfn + pb < isolate_end {
            if let Err(e) = self.set_migratetype_isolate(Pfn(pfn), migratetype, flags, start, end) {
                self.undo_isolate_page_range(Pfn(isolate_start), Pfn(pfn), migratetype);
                self.unset_migratetype_isolate(Pfn(isolate_end - pb), migratetype);
                return Err(e);
            }
            pfn += pb;
        }
        Ok(())
    }

    /// `undo_isolate_page_range`.
    pub fn undo_isolate_page_range(&mut self, start: Pfn, end: Pfn, migratetype: MigrateType) {
        let pb = self.pageblock_nr_pages();
        let mut pfn = self.mem.pageblock_start_pfn(start).0;
        let end = (end.0 + pb - 1) & !(pb - 1);
        while pfn < end {
            if self.mem.pfn_valid(Pfn(pfn)) && self.mem.get_pageblock_migratetype(Pfn(pfn)).is_isolate() {
                self.unset_migratetype_isolate(Pfn(pfn), migratetype);
            }
            pfn += pb;
        }
    }

    /// `__test_page_isolated_in_pageblock`: first PFN of `[pfn, end)` that is
    /// neither free nor (offlining) hwpoisoned.
    fn __test_page_isolated_in_pageblock(&self, mut pfn: u32, end: u32, flags: u32) -> u32 {
        while pfn < end {
            let p = self.mem.p(pfn);
            if p.has(PG_BUDDY) {
                pfn += 1 << p.private;
            } else if flags & MEMORY_OFFLINE != 0 && p.has(PG_HWPOISON) {
                pfn += 1;
            } else {
                break;
            }
        }
        pfn
    }

    /// `test_pages_isolated`: every pageblock of `[start, end)` isolated and
    /// every page in it free.
    pub fn test_pages_isolated(&self, start: Pfn, end: Pfn, flags: u32) -> Result<(), IsolationError> {
        if start >= end || !self.mem.pfn_valid(start) || !self.mem.pfn_valid(Pfn(end.0 - 1)) {
            return Err(IsolationError::OutOfRange(start));
        }
        let pb = self.pageblock_nr_pages();
        let mut pfn = start.0;
        while pfn < end.0 {
            if !self.mem.get_pageblock_migratetype(Pfn(pfn)).is_isolate() {
                return Err(IsolationError::Busy(Pfn(pfn)));
            }
            pfn += pb;
        }
        let first_bad = self.__test_page_isolated_in_pageblock(start.0, end.0, flags);
        if first_bad < end.0 {
            Err(IsolationError::Busy(Pfn(first_bad)))
        } else {
            Ok(())
        }
    }
}
