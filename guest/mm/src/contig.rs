//! Contiguous range allocation (Linux 6.1 `alloc_contig_range`,
//! `__alloc_contig_migrate_range`, `free_contig_range` of
//! `mm/page_alloc.c`; `isolate_freepages_range` of `mm/compaction.c`), and
//! the [`ContigRange`] implementation `cma_alloc()` calls.
//!
//! The sequence, as 6.1:
//! 1. `start_isolate_page_range(start, end)`: every pageblock touching the
//!    range becomes `MIGRATE_ISOLATE` (6.1 isolates by pageblock and splits
//!    free blocks crossing the boundary; pre-5.19 kernels aligned to
//!    `MAX_ORDER_NR_PAGES` instead — the same thing for both named profiles,
//!    whose pageblock is the largest buddy block);
//! 2. `drain_all_pages(zone)`: pages on the per-cpu lists go back to the
//!    buddy (onto the isolate lists for the range's pageblocks);
//! 3. `__alloc_contig_migrate_range`: isolate the LRU pages in batches of
//!    32 and migrate them away, `-EBUSY` after 5 rounds without emptying
//!    the batch (`-EBUSY` is then ignored: the next step decides);
//! 4. `test_pages_isolated(outer_start, end)`: every page free, else
//!    `-EBUSY`;
//! 5. `isolate_freepages_range(outer_start, end)`: take the free blocks off
//!    the isolate lists, one reference per page (`split_map_pages`);
//! 6. give back the head `[outer_start, start)` and tail `[end, outer_end)`;
//! 7. `undo_isolate_page_range` on every path.
//!
//! Linux does not undo migrations when a later step fails: pages moved out
//! of the range stay at their new frames.
use crate::cma::{ContigRange, Errno};
use crate::gfp::*;
use crate::isolation::IsolationError;
use crate::migrate::*;
use crate::page::*;
use crate::pageblock::MigrateType;
use crate::types::Pfn;
use cmaemu_abi::trace::{CMA_PHASE_DRAIN, CMA_PHASE_FINISH, CMA_PHASE_ISOLATE, CMA_PHASE_MIGRATE};

/// Rounds of `migrate_pages` on one batch before `-EBUSY`
/// (`if (++tries == 5)`).
pub const ALLOC_CONTIG_MIGRATE_TRIES: u32 = 5;

/// `mtc.gfp_mask` of `__alloc_contig_migrate_range`: where migrated pages
/// go (`alloc_migration_target` adds `__GFP_HIGHMEM` for HighMem pages).
pub const ALLOC_CONTIG_MIGRATE_GFP: Gfp = Gfp(GFP_USER.0 | __GFP_MOVABLE.0 | __GFP_RETRY_MAYFAIL.0);

fn isolation_errno(e: IsolationError) -> Errno {
    match e {
        IsolationError::Busy(_) => Errno::EBUSY,
        IsolationError::OutOfRange(_) => Errno::EINVAL,
    }
}

impl<E: MigrateEnv + ?Sized> Migrator<'_, '_, '_, E> {
    /// `__alloc_contig_migrate_range`: migrate every movable page out of
    /// `[start, end)` (whose pageblocks are isolated). `-EBUSY` when a batch
    /// still holds pages after [`ALLOC_CONTIG_MIGRATE_TRIES`] rounds,
    /// `-ENOMEM` when no target page was left.
    pub fn __alloc_contig_migrate_range(&mut self, start: Pfn, end: Pfn) -> Result<(), Errno> {
        let mut list = MigrateList::new();
        let mut pfn = start;
        let mut tries = 0u32;
        let mut ret: Result<u32, Errno> = Ok(0);
        // lru_cache_disable(): drain the LRU add batches, bypass them from
        // now on (the `skip_lru_drain` injection leaves the drain out).
        self.pa.lru_cache_disable(self.faults.contains(MigrateFaults::SKIP_LRU_DRAIN));
        if self.faults.contains(MigrateFaults::SKIP_LRU_DRAIN) && self.pa.lru_add.nr != 0 {
            self.env.injected(MigrateFaults::SKIP_LRU_DRAIN, Pfn(self.pa.lru_add.pfns[0]), self.pa.lru_add.nr);
        }
        while pfn < end || !list.is_empty() {
            // (fatal_signal_pending: no signals in the guest kernel)
            if list.is_empty() {
                pfn = self.isolate_migratepages_range(&mut list, pfn, end);
                tries = 0;
            } else {
                tries += 1;
                if tries == ALLOC_CONTIG_MIGRATE_TRIES {
                    ret = Err(Errno::EBUSY);
                    break;
                }
            }
            // reclaim_clean_pages_from_list: no clean file pages here.
            let mut stats = MigrateStats::default();
            ret = self.migrate_pages(&mut list, ALLOC_CONTIG_MIGRATE_GFP, MigrateMode::Sync, MigrateReason::ContigRange, &mut stats);
            // On -ENOMEM, migrate_pages() bails out right away. It is
            // pointless to retry again over this error, so do the same here.
            if ret == Err(Errno::ENOMEM) {
                break;
            }
        }
        self.pa.lru_cache_enable();
        if let Err(e) = ret {
            // (alloc_contig_dump_pages: dynamic debug only, off by default)
            self.putback_movable_pages(&mut list);
            return Err(e);
        }
        Ok(())
    }

    /// `isolate_freepages_range` in strict mode: take every free block
    /// covering `[start, end)` off the (isolate) free lists, each page with
    /// one reference (`split_map_pages`). Returns `outer_end`, the PFN after
    /// the last block taken; `None` (Linux: 0) when some page is not free —
    /// then everything taken is given back.
    pub fn isolate_freepages_range(&mut self, start: Pfn, end: Pfn) -> Option<Pfn> {
        let mut pfn = start.0;
        let mut ok = true;
        while pfn < end.0 {
            // isolate_freepages_block(strict): a free block must start at
            // every position reached.
            let Some(p) = self.pa.mem.page(Pfn(pfn)) else {
                ok = false;
                break;
            };
            if !p.has(PG_BUDDY) {
                ok = false;
                break;
            }
            let order = p.private;
            let isolated = self.pa.__isolate_free_page(Pfn(pfn), order);
            if isolated == 0 {
                ok = false;
                break;
            }
            // split_map_pages: post_alloc_hook (refcounted, private 0) +
            // split_page (every page its own reference).
            for i in 0..isolated {
                if let Some(q) = self.pa.mem.page_mut(Pfn(pfn + i)) {
                    q.private = 0;
                    q.refcount = 1;
                }
            }
            pfn += isolated;
        }
        if !ok {
            // Loop terminated early, cleanup: release_freepages.
            for q in start.0..pfn {
                if self.pa.__free_pages(Pfn(q), 0).is_err() {
                    self.bad_frees += 1;
                }
            }
            return None;
        }
        Some(Pfn(pfn))
    }

    /// `alloc_contig_range(start, end, migratetype, gfp_mask)`: allocate
    /// every page of `[start, end)`, each with one reference. Errors:
    /// `-EINVAL` (range outside the memory map), `-EBUSY` (an unmovable or
    /// pinned page, or a pageblock already isolated), `-ENOMEM` (no page to
    /// migrate to). Every path undoes the isolation.
    pub fn alloc_contig_range(&mut self, start: Pfn, end: Pfn, migratetype: MigrateType, gfp_mask: Gfp) -> Result<(), Errno> {
        let _ = gfp_mask; // current_gfp_context(): only __GFP_NOWARN matters (dump_pages)
        if start >= end || !self.pa.mem.pfn_valid(start) || !self.pa.mem.pfn_valid(Pfn(end.0 - 1)) {
            return Err(Errno::EINVAL);
        }
        if self.pa.page_zone(start) != self.pa.page_zone(Pfn(end.0 - 1)) {
            // Linux assumes one zone (cc.zone = page_zone(start)); callers
            // (CMA activation) guarantee it. Refuse rather than corrupt.
            return Err(Errno::EINVAL);
        }
        // 6.1 jumps to `done` (undo) here; start_isolate_page_range has
        // already undone its own work, so return directly.
        self.env.contig_phase(CMA_PHASE_ISOLATE, start, end);
        self.pa.start_isolate_page_range(start, end, migratetype, 0).map_err(isolation_errno)?;
        let ret = self.alloc_contig_range_isolated(start, end);
        self.undo_isolate_page_range(start, end, migratetype);
        ret
    }

    /// `undo_isolate_page_range(start, end, migratetype)` at `done:` — where
    /// the injected `leak_isolation` (the first pageblock is never
    /// un-isolated) and `wrong_migratetype` (the last pageblock is restored
    /// as `MIGRATE_MOVABLE`) live.
    fn undo_isolate_page_range(&mut self, start: Pfn, end: Pfn, migratetype: MigrateType) {
        let pb = self.pa.pageblock_nr_pages();
        let first = self.pa.mem.pageblock_start_pfn(start);
        let last = self.pa.mem.pageblock_start_pfn(Pfn(end.0 - 1));
        let mut from = start;
        let mut to = end;
        if self.faults.contains(MigrateFaults::LEAK_ISOLATION) {
            self.env.fault_fired("leak_isolation", first, 0);
            from = Pfn(first.0 + pb);
        }
        if self.faults.contains(MigrateFaults::WRONG_MIGRATETYPE) && last.0 >= from.0 {
            self.env.fault_fired("wrong_migratetype", last, 0);
            self.pa.undo_isolate_page_range(last, Pfn(last.0 + pb), MigrateType::Movable);
            to = last;
        }
        if from < to {
            self.pa.undo_isolate_page_range(from, to, migratetype);
        }
    }

    /// The part of [`Self::alloc_contig_range`] between isolation and
    /// `done:`.
    fn alloc_contig_range_isolated(&mut self, start: Pfn, end: Pfn) -> Result<(), Errno> {
        self.env.contig_phase(CMA_PHASE_DRAIN, start, end);
        let zid = self.pa.page_zone(start);
        if self.faults.contains(MigrateFaults::SKIP_PCP_DRAIN) {
            // injected: the drain is left out; what the per-CPU lists hold
            // inside the range stays there
            if let (Some(first), n) = self.pa.pcp_pages_in(zid, start, end) {
                self.env.fault_fired("skip_pcp_drain", first, n);
            }
        } else {
            self.pa.drain_all_pages(Some(zid));
        }
        // In case of -EBUSY, we'd like to know which page causes problem.
        // So, just fall through. test_pages_isolated() decides.
        self.env.contig_phase(CMA_PHASE_MIGRATE, start, end);
        let migrated = self.__alloc_contig_migrate_range(start, end);
        self.env.contig_phase(CMA_PHASE_FINISH, start, end);
        match migrated {
            Err(e) if e != Errno::EBUSY => return Err(e),
            _ => {}
        }
        // The first and last pages may be part of larger free blocks:
        // find the block holding `start`.
        let max_order = self.pa.profile.max_order;
        let mut order = 0;
        let mut outer_start = start.0;
        loop {
            if self.pa.mem.page(Pfn(outer_start)).is_some_and(|p| p.has(PG_BUDDY)) {
                break;
            }
            order += 1;
            if order >= max_order || !self.pa.mem.pfn_valid(Pfn(outer_start & (!0u32 << order))) {
                outer_start = start.0;
                break;
            }
            outer_start &= !0u32 << order;
        }
        if outer_start != start.0 {
            let order = self.pa.buddy_order(Pfn(outer_start));
            // outer_start page could be small order buddy page and it
            // doesn't include start page.
            if outer_start + (1 << order) <= start.0 {
                outer_start = start.0;
            }
        }
        // Make sure the range is really isolated.
        if self.pa.test_pages_isolated(Pfn(outer_start), end, 0).is_err() {
            return Err(Errno::EBUSY);
        }
        // Grab isolated pages from freelists.
        let outer_end = self.isolate_freepages_range(Pfn(outer_start), end).ok_or(Errno::EBUSY)?;
        // Free head and tail (if any).
        if start.0 != outer_start {
            self.free_contig_range(Pfn(outer_start), (start.0 - outer_start) as u64);
        }
        if end != outer_end {
            self.free_contig_range(end, (outer_end.0 - end.0) as u64);
        }
        Ok(())
    }

    /// `free_contig_range(pfn, nr_pages)`: drop one reference on each page
    /// (freeing it). Returns how many were not at exactly one reference
    /// (Linux `WARN`s "%lu pages are still in use!"; we print the line).
    pub fn free_contig_range(&mut self, pfn: Pfn, nr_pages: u64) -> u64 {
        let mut count = 0u64;
        for i in 0..nr_pages {
            let Some(q) = pfn.0.checked_add(i as u32).map(Pfn) else { break };
            let Some(p) = self.pa.mem.page(q) else {
                count += 1;
                continue;
            };
            if p.refcount != 1 {
                count += 1;
            }
            if self.pa.__free_pages(q, 0).is_err() {
                self.bad_frees += 1;
            }
        }
        if count != 0 {
            self.env.printk(format_args!("WARNING: free_contig_range: {} pages are still in use!", count));
        }
        count
    }
}

/// `cma_alloc()`'s view of the page allocator: `alloc_contig_range(start,
/// end, MIGRATE_CMA, gfp)` with migration through the kernel's hooks, and
/// `free_contig_range`. Allocated pages get the owner tag `owner`; freed
/// pages lose it.
pub struct CmaContig<'x, 'a, 'r, E: MigrateEnv + ?Sized> {
    /// The migrator (allocator, reverse map, hooks, fault injection).
    pub m: Migrator<'x, 'a, 'r, E>,
    /// `GFP_KERNEL`, `| __GFP_NOWARN` for `no_warn` callers.
    pub gfp: Gfp,
    /// Owner tag for allocated pages (`OWNER_KIND_CMA | area id`).
    pub owner: u32,
    /// The last `alloc_contig_range` result (for logs and tests).
    pub last: Option<Result<(), Errno>>,
}

impl<'x, 'a, 'r, E: MigrateEnv + ?Sized> CmaContig<'x, 'a, 'r, E> {
    /// A wrapper with `GFP_KERNEL` and owner `OWNER_KIND_CMA | area`.
    pub fn new(m: Migrator<'x, 'a, 'r, E>, area: u32) -> Self {
        CmaContig { m, gfp: GFP_KERNEL, owner: OWNER_KIND_CMA | (area & !OWNER_KIND_MASK), last: None }
    }
}

impl<E: MigrateEnv + ?Sized> ContigRange for CmaContig<'_, '_, '_, E> {
    fn alloc_contig_range(&mut self, start: Pfn, end: Pfn) -> Result<(), Errno> {
        let r = self.m.alloc_contig_range(start, end, MigrateType::Cma, self.gfp);
        if r.is_ok() {
            for pfn in start.0..end.0 {
                if let Some(p) = self.m.pa.mem.page_mut(Pfn(pfn)) {
                    p.owner = self.owner;
                }
            }
        }
        self.last = Some(r);
        r
    }

    fn free_contig_range(&mut self, pfn: Pfn, count: u64) {
        self.m.free_contig_range(pfn, count);
    }
}

#[cfg(test)]
mod tests;
