//! Page migration for anonymous LRU pages (Linux 6.1 `mm/migrate.c`,
//! `isolate_migratepages_block` of `mm/compaction.c`, the `try_to_migrate`
//! / `remove_migration_ptes` pair of `mm/rmap.c`).
//!
//! The mm side decides; the kernel does the hardware work through
//! [`MigrateEnv`]: clear / set one PTE, flush one TLB entry, copy one frame,
//! emit the `migrate:mm_migrate_pages` tracepoint.
//!
//! Reference counting follows Linux: an anonymous page holds one reference
//! per present mapping (see [`crate::rmap`]); isolation for migration takes
//! one more (`get_page_unless_zero`) and clears `PG_lru`. A page whose
//! count is above what its mappings explain is *pinned*: isolation skips it
//! (`page_count(page) > page_mapcount(page)`), and if it gets pinned after
//! isolation `migrate_page_move_mapping`'s refcount check makes it
//! `-EAGAIN`.
//!
//! Differences from Linux (single CPU, nothing runs concurrently):
//! - no page lock is taken; a page someone else left `PG_locked` or
//!   `PG_writeback` is `-EAGAIN` in every pass (Linux would sleep in
//!   `lock_page` / `folio_wait_writeback` in the forced passes 3..9, and
//!   nothing could wake it here);
//! - non-LRU movable pages (`__PageMovable`: balloon, zsmalloc) have no
//!   driver callbacks here: isolation skips them, so a range holding one
//!   fails later in `test_pages_isolated` (`-EBUSY`);
//! - no THP, hugetlb, swap cache or file pages: every page is order 0.
use crate::buddy::PageAlloc;
use crate::cma::Errno;
use crate::gfp::*;
use crate::page::*;
use crate::rmap::{Rmap, RMAP_NONE};
use crate::types::Pfn;
use core::fmt;

/// `MIGRATEPAGE_SUCCESS`.
pub const MIGRATEPAGE_SUCCESS: i32 = 0;
/// `COMPACT_CLUSTER_MAX` (= `SWAP_CLUSTER_MAX`): pages isolated per batch.
pub const COMPACT_CLUSTER_MAX: usize = 32;
/// The passes of `migrate_pages` (`for (pass = 0; pass < 10 && retry; ...)`).
pub const NR_MIGRATE_PASSES: u32 = 10;
/// Passes before `force` (`pass > 2`): 3 "try" passes, then 7 forced ones.
pub const NR_MIGRATE_UNFORCED_PASSES: u32 = 3;

/// `enum migrate_mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MigrateMode {
    /// `MIGRATE_ASYNC`.
    Async,
    /// `MIGRATE_SYNC_LIGHT`.
    SyncLight,
    /// `MIGRATE_SYNC`.
    Sync,
    /// `MIGRATE_SYNC_NO_COPY`.
    SyncNoCopy,
}

impl MigrateMode {
    /// The `MIGRATE_MODE` symbol the tracepoint prints.
    pub const fn name(self) -> &'static str {
        match self {
            MigrateMode::Async => "MIGRATE_ASYNC",
            MigrateMode::SyncLight => "MIGRATE_SYNC_LIGHT",
            MigrateMode::Sync => "MIGRATE_SYNC",
            MigrateMode::SyncNoCopy => "MIGRATE_SYNC_NO_COPY",
        }
    }
}

/// `enum migrate_reason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MigrateReason {
    /// `MR_COMPACTION`.
    Compaction,
    /// `MR_MEMORY_FAILURE`.
    MemoryFailure,
    /// `MR_MEMORY_HOTPLUG`.
    MemoryHotplug,
    /// `MR_SYSCALL`.
    Syscall,
    /// `MR_MEMPOLICY_MBIND`.
    MempolicyMbind,
    /// `MR_NUMA_MISPLACED`.
    NumaMisplaced,
    /// `MR_CONTIG_RANGE` (alloc_contig_range / CMA).
    ContigRange,
    /// `MR_LONGTERM_PIN`.
    LongtermPin,
    /// `MR_DEMOTION`.
    Demotion,
}

impl MigrateReason {
    /// The `MIGRATE_REASON` string the tracepoint prints.
    pub const fn name(self) -> &'static str {
        match self {
            MigrateReason::Compaction => "compaction",
            MigrateReason::MemoryFailure => "memory_failure",
            MigrateReason::MemoryHotplug => "memory_hotplug",
            MigrateReason::Syscall => "syscall_or_cpuset",
            MigrateReason::MempolicyMbind => "mempolicy_mbind",
            MigrateReason::NumaMisplaced => "numa_misplaced",
            MigrateReason::ContigRange => "contig_range",
            MigrateReason::LongtermPin => "longterm_pin",
            MigrateReason::Demotion => "demotion",
        }
    }
}

/// Fault injection: each flag breaks exactly one step of migration, so the
/// host verifiers can prove they notice.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MigrateFaults(pub u32);

impl MigrateFaults {
    /// No fault.
    pub const NONE: MigrateFaults = MigrateFaults(0);
    /// `try_to_migrate` clears each PTE but does not flush its TLB entry
    /// (the stale translation still points at the old frame).
    pub const SKIP_TLB_FLUSH: MigrateFaults = MigrateFaults(1 << 0);
    /// The contents are not copied to the new frame.
    pub const SKIP_COPY: MigrateFaults = MigrateFaults(1 << 1);
    /// After a successful move the PTEs are not set to the new frame (the
    /// reverse map says mapped, the page tables say not present).
    pub const SKIP_REMAP: MigrateFaults = MigrateFaults(1 << 2);
    /// The old frame's last reference is never dropped (it leaks in the
    /// range, which then fails `test_pages_isolated`).
    pub const LEAK_OLD_PAGE: MigrateFaults = MigrateFaults(1 << 3);
    /// Pinned pages are isolated and migrated like unpinned ones (the pin
    /// holder keeps the old frame, the mappings move away from it).
    pub const IGNORE_PIN: MigrateFaults = MigrateFaults(1 << 4);
    /// `alloc_contig_range` does not undo the isolation of the range's
    /// first pageblock (it stays `MIGRATE_ISOLATE`).
    pub const LEAK_ISOLATION: MigrateFaults = MigrateFaults(1 << 5);
    /// `alloc_contig_range` restores the range's last pageblock as
    /// `MIGRATE_MOVABLE` instead of the type it isolated it from.
    pub const WRONG_MIGRATETYPE: MigrateFaults = MigrateFaults(1 << 6);
    /// `try_to_migrate`'s reverse-map walk stops after the first mapping
    /// of a page mapped more than once.
    pub const RMAP_MISS: MigrateFaults = MigrateFaults(1 << 7);
    /// `lru_cache_disable` does not drain the LRU add batches: pages parked
    /// there stay off the LRU with the batch's extra reference, and
    /// `alloc_contig_range` cannot isolate (so cannot migrate) them.
    pub const SKIP_LRU_DRAIN: MigrateFaults = MigrateFaults(1 << 8);
    /// `alloc_contig_range` does not call `drain_all_pages`: free blocks
    /// on the per-CPU lists inside the isolated range stay there (not in
    /// the buddy), so `test_pages_isolated` fails on them.
    pub const SKIP_PCP_DRAIN: MigrateFaults = MigrateFaults(1 << 9);
    /// All known bits.
    pub const ALL: MigrateFaults = MigrateFaults(0x3ff);

    /// Whether every bit of `f` is set.
    pub const fn contains(self, f: MigrateFaults) -> bool {
        self.0 & f.0 == f.0 && f.0 != 0
    }
    /// Union.
    pub const fn with(self, f: MigrateFaults) -> MigrateFaults {
        MigrateFaults(self.0 | f.0)
    }
    /// Names of the set flags, for logs (`skip_tlb_flush,skip_copy`).
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        const N: [&str; 10] = ["skip_tlb_flush", "skip_copy", "skip_remap", "leak_old_page", "ignore_pin", "leak_isolation", "wrong_migratetype", "rmap_miss", "skip_lru_drain", "skip_pcp_drain"];
        (0..10).filter(move |i| self.0 & (1 << i) != 0).map(|i| N[i])
    }
    /// Parses one flag name.
    pub fn from_name(s: &str) -> Option<MigrateFaults> {
        Some(match s {
            "skip_tlb_flush" => Self::SKIP_TLB_FLUSH,
            "skip_copy" => Self::SKIP_COPY,
            "skip_remap" => Self::SKIP_REMAP,
            "leak_old_page" => Self::LEAK_OLD_PAGE,
            "ignore_pin" => Self::IGNORE_PIN,
            "leak_isolation" => Self::LEAK_ISOLATION,
            "wrong_migratetype" => Self::WRONG_MIGRATETYPE,
            "rmap_miss" => Self::RMAP_MISS,
            "skip_lru_drain" => Self::SKIP_LRU_DRAIN,
            "skip_pcp_drain" => Self::SKIP_PCP_DRAIN,
            _ => return None,
        })
    }
}

/// Why the kernel could not clear a PTE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PteError {
    /// No such address space.
    NoAsid(u16),
    /// The PTE is not present.
    NotPresent(u16, u32),
}

impl fmt::Display for PteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PteError::NoAsid(a) => write!(f, "no address space {}", a),
            PteError::NotPresent(a, va) => write!(f, "asid {} va {:#x}: pte not present", a, va),
        }
    }
}

/// One `migrate:mm_migrate_pages` event (6.1 fields).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MigratePagesEvent {
    /// `succeeded` (pages).
    pub succeeded: u64,
    /// `failed` (pages: `nr_failed_pages`).
    pub failed: u64,
    /// `thp_succeeded` (always 0 here).
    pub thp_succeeded: u64,
    /// `thp_failed` (always 0 here).
    pub thp_failed: u64,
    /// `thp_split` (always 0 here).
    pub thp_split: u64,
    /// `mode`.
    pub mode: MigrateMode,
    /// `reason`.
    pub reason: MigrateReason,
}

impl fmt::Display for MigratePagesEvent {
    /// The 6.1 `TP_printk` text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "nr_succeeded={} nr_failed={} nr_thp_succeeded={} nr_thp_failed={} nr_thp_split={} mode={} reason={}",
            self.succeeded,
            self.failed,
            self.thp_succeeded,
            self.thp_failed,
            self.thp_split,
            self.mode.name(),
            self.reason.name()
        )
    }
}

/// What the kernel does for migration: page tables, TLB, frame copies,
/// tracing. The mm code calls these in Linux's order.
pub trait MigrateEnv {
    /// `ptep_get_and_clear`: make the PTE of `(asid, va)` not present (a
    /// migration entry) and return the frame it mapped.
    fn clear_pte(&mut self, asid: u16, va: u32) -> Result<Pfn, PteError>;
    /// `set_pte_at`: map `(asid, va)` to `pfn` (with the attributes the PTE
    /// had before `clear_pte`).
    fn set_pte(&mut self, asid: u16, va: u32, pfn: Pfn);
    /// `flush_tlb_page`: drop the TLB entry of `(asid, va)`.
    fn flush_tlb_page(&mut self, asid: u16, va: u32);
    /// `copy_highpage`: copy frame `from` to frame `to`.
    fn copy_highpage(&mut self, from: Pfn, to: Pfn);
    /// `trace_mm_migrate_pages` (once per `migrate_pages` call).
    fn trace_mm_migrate_pages(&mut self, ev: &MigratePagesEvent) {
        let _ = ev;
    }
    /// An injected fault (`MigrateFaults`, by its name) just broke
    /// something at `pfn` (for the trace: every firing is recorded).
    fn fault_fired(&mut self, name: &'static str, pfn: Pfn, arg: u32) {
        let _ = (name, pfn, arg);
    }
    /// A kernel log line (`pr_info`/`WARN` text without the newline).
    fn printk(&mut self, args: fmt::Arguments<'_>) {
        let _ = args;
    }
    /// A fault injection fired (recorded in the trace): `pfn` is the frame
    /// concerned, `arg` a count.
    fn injected(&mut self, fault: MigrateFaults, pfn: Pfn, arg: u32) {
        let _ = (fault, pfn, arg);
    }
    /// `alloc_contig_range` enters `phase` (`cmaemu_abi::trace::CMA_PHASE_*`)
    /// on `[start, end)`, for the host's per-phase latency (and, at
    /// `CMA_PHASE_MIGRATE`, its look at the per-CPU lists in the range).
    fn contig_phase(&mut self, phase: u8, start: Pfn, end: Pfn) {
        let _ = (phase, start, end);
    }
}

/// A list of isolated pages (`cc->migratepages`, at most
/// [`COMPACT_CLUSTER_MAX`]), caller-side storage, no allocation. The live
/// pages are `pfns[head..head + len]`, so that taking the first page (what
/// `migrate_pages` does to every page it moves) costs no copying.
#[derive(Clone, Copy, Debug)]
pub struct MigrateList {
    pfns: [u32; COMPACT_CLUSTER_MAX],
    head: usize,
    len: usize,
}

impl Default for MigrateList {
    fn default() -> Self {
        Self::new()
    }
}

impl MigrateList {
    /// Empty.
    pub const fn new() -> Self {
        MigrateList { pfns: [0; COMPACT_CLUSTER_MAX], head: 0, len: 0 }
    }
    /// `list_empty`.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Number of pages.
    pub fn len(&self) -> usize {
        self.len
    }
    /// `list_add_tail`; false when full.
    pub fn push(&mut self, pfn: Pfn) -> bool {
        if self.len == COMPACT_CLUSTER_MAX {
            return false;
        }
        if self.head + self.len == COMPACT_CLUSTER_MAX {
            // compact to the front to make room at the tail
            self.pfns.copy_within(self.head..self.head + self.len, 0);
            self.head = 0;
        }
        self.pfns[self.head + self.len] = pfn.0;
        self.len += 1;
        true
    }
    /// The `i`-th page.
    pub fn get(&self, i: usize) -> Option<Pfn> {
        (i < self.len).then(|| Pfn(self.pfns[self.head + i]))
    }
    /// `list_del` of the `i`-th page (order kept). Panics when `i` is out
    /// of range, as indexing does.
    pub fn remove(&mut self, i: usize) -> Pfn {
        assert!(i < self.len, "MigrateList::remove({i}) of {}", self.len);
        let at = self.head + i;
        let p = self.pfns[at];
        if i == 0 {
            self.head += 1;
        } else {
            self.pfns.copy_within(at + 1..self.head + self.len, at);
        }
        self.len -= 1;
        if self.len == 0 {
            self.head = 0;
        }
        Pfn(p)
    }
    /// The pages.
    pub fn as_slice(&self) -> &[u32] {
        &self.pfns[self.head..self.head + self.len]
    }
    /// `list_splice` of `other` onto the tail (what does not fit is
    /// returned in `other`).
    pub fn splice(&mut self, other: &mut MigrateList) {
        while let Some(p) = other.get(0) {
            if !self.push(p) {
                break;
            }
            other.remove(0);
        }
    }
}

/// The counts one `migrate_pages` call produced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MigrateStats {
    /// `nr_succeeded` (pages).
    pub nr_succeeded: u32,
    /// `nr_failed_pages` (pages, `-EAGAIN` after the last pass included).
    pub nr_failed_pages: u32,
    /// `nr_failed` (the return value when not an errno).
    pub nr_failed: u32,
}

/// Migration over the allocator, the reverse map and the kernel's hooks.
pub struct Migrator<'x, 'a, 'r, E: MigrateEnv + ?Sized> {
    /// The page allocator (targets come from it, old pages go back).
    pub pa: &'x mut PageAlloc<'a>,
    /// The reverse map.
    pub rmap: &'x mut Rmap<'r>,
    /// The kernel's page-table/TLB/copy hooks.
    pub env: &'x mut E,
    /// Fault injection.
    pub faults: MigrateFaults,
    /// Frees the buddy refused (`bad_page`): the page is leaked, as Linux
    /// leaks a bad page.
    pub bad_frees: u32,
}

impl<'x, 'a, 'r, E: MigrateEnv + ?Sized> Migrator<'x, 'a, 'r, E> {
    /// A migrator without faults.
    pub fn new(pa: &'x mut PageAlloc<'a>, rmap: &'x mut Rmap<'r>, env: &'x mut E) -> Self {
        Migrator { pa, rmap, env, faults: MigrateFaults::NONE, bad_frees: 0 }
    }

    fn page(&self, pfn: Pfn) -> PageRecord {
        self.pa.mem.page(pfn).copied().unwrap_or(PageRecord { flags: PG_RESERVED, ..PageRecord::INIT })
    }

    fn pm(&mut self, pfn: Pfn) -> Option<&mut PageRecord> {
        self.pa.mem.page_mut(pfn)
    }

    /// `put_page`: drop one reference; the last one releases the page
    /// (`__page_cache_release` clears the LRU flags) to the buddy.
    pub fn put_page(&mut self, pfn: Pfn) {
        let p = self.page(pfn);
        if p.refcount <= 0 || p.has(PG_BUDDY) {
            // Underflow: Linux would VM_BUG_ON; refuse and count.
            self.bad_frees += 1;
            return;
        }
        if p.refcount > 1 {
            if let Some(p) = self.pm(pfn) {
                p.refcount -= 1;
            }
            return;
        }
        if let Some(p) = self.pm(pfn) {
            if p.has(PG_LRU) {
                p.flags &= !(PG_LRU | PG_ACTIVE | PG_UNEVICTABLE);
            }
            p.flags &= !PG_MLOCKED;
        }
        if self.pa.__free_pages(pfn, 0).is_err() {
            self.bad_frees += 1;
        }
    }

    /// `lru_cache_add`: the page goes (back) on the LRU.
    pub fn lru_cache_add(&mut self, pfn: Pfn) {
        if let Some(p) = self.pm(pfn) {
            p.flags |= PG_LRU;
        }
    }

    /// Whether `pfn` is pinned: `page_count(page) > total_mapcount(page)`
    /// for an anonymous page (`IGNORE_PIN` says never).
    pub fn page_pinned(&self, pfn: Pfn, extra_refs: i32) -> bool {
        let p = self.page(pfn);
        !self.faults.contains(MigrateFaults::IGNORE_PIN) && p.refcount - extra_refs > p.mapcount + 1
    }

    /// `isolate_migratepages_block` for an `alloc_contig` scan
    /// (`ISOLATE_UNEVICTABLE`): isolate the in-use LRU pages of
    /// `[low, end)` onto `list` until it holds [`COMPACT_CLUSTER_MAX`];
    /// returns where the scan stopped (`cc->migrate_pfn`).
    pub fn isolate_migratepages_block(&mut self, list: &mut MigrateList, low: Pfn, end: Pfn) -> Pfn {
        let max_order = self.pa.profile.max_order;
        let mut pfn = low.0;
        while pfn < end.0 {
            if !self.pa.mem.pfn_valid(Pfn(pfn)) {
                pfn += 1;
                continue;
            }
            let p = self.page(Pfn(pfn));
            if p.has(PG_BUDDY) {
                let order = p.private;
                if order > 0 && order < max_order {
                    pfn += (1 << order) - 1;
                }
                pfn += 1;
                continue;
            }
            if !p.has(PG_LRU) {
                // Non-LRU movable pages need a driver's isolate_page(): none
                // here. Everything else is not migratable: isolate_fail.
                pfn += 1;
                continue;
            }
            // Migration will fail if an anonymous page is pinned in memory,
            // so avoid isolating it (Linux: an admittedly racy check).
            if self.page_pinned(Pfn(pfn), 0) {
                pfn += 1;
                continue;
            }
            // get_page_unless_zero + TestClearPageLRU.
            if p.refcount <= 0 {
                pfn += 1;
                continue;
            }
            if let Some(q) = self.pm(Pfn(pfn)) {
                q.refcount += 1;
                q.flags &= !PG_LRU;
            }
            list.push(Pfn(pfn));
            pfn += 1;
            if list.len() >= COMPACT_CLUSTER_MAX {
                break;
            }
        }
        // (May lie past `end` after a free block: Linux's low_pfn does too.)
        Pfn(pfn)
    }

    /// `isolate_migratepages_range`: [`Self::isolate_migratepages_block`]
    /// pageblock by pageblock over `[start, end)`; returns
    /// `cc->migrate_pfn`.
    pub fn isolate_migratepages_range(&mut self, list: &mut MigrateList, start: Pfn, end: Pfn) -> Pfn {
        let pb = self.pa.pageblock_nr_pages();
        let mut pfn = start.0;
        let mut block_end = self.pa.mem.pageblock_end_pfn(start).0;
        let mut migrate_pfn = start;
        while pfn < end.0 {
            let be = block_end.min(end.0);
            migrate_pfn = self.isolate_migratepages_block(list, Pfn(pfn), Pfn(be));
            if list.len() >= COMPACT_CLUSTER_MAX {
                break;
            }
            pfn = block_end;
            block_end += pb;
        }
        migrate_pfn
    }

    /// `putback_movable_pages`: give every page left on `list` back to the
    /// LRU and drop the isolation reference.
    pub fn putback_movable_pages(&mut self, list: &mut MigrateList) {
        while !list.is_empty() {
            let pfn = list.remove(0);
            self.lru_cache_add(pfn);
            self.put_page(pfn);
        }
    }

    /// `alloc_migration_target`: a new order-0 page for `page` (its zone's
    /// highmem-ness added to `gfp`). As in 6.1, nothing checks the target's
    /// pageblock: the buddy never hands out a free page of an isolated
    /// block (those sit on the `MIGRATE_ISOLATE` lists), but a page left on
    /// a per-CPU list when `drain_all_pages` was missed is handed out by
    /// `rmqueue_pcplist` like any other, and the range it lies in is then
    /// busy (`test_pages_isolated` fails: `-EBUSY`).
    pub fn alloc_migration_target(&mut self, page: Pfn, gfp: Gfp) -> Option<Pfn> {
        let mut gfp = gfp;
        let zid = self.pa.page_zone(page);
        let kind = self.pa.zones[zid].kind;
        if kind.is_highmem() || kind == crate::zone::ZoneType::Movable {
            gfp = Gfp(gfp.0 | __GFP_HIGHMEM.0);
        }
        self.pa.__alloc_pages(gfp, 0).ok()
    }

    /// `try_to_migrate`: replace every present PTE of `pfn` by a migration
    /// entry (`ptep_clear_flush`: clear, then flush the TLB entry), dropping
    /// the mapping's reference and `mapcount`.
    pub fn try_to_migrate(&mut self, pfn: Pfn) {
        let mut idx = self.chain_first(pfn);
        let mut budget = self.rmap.capacity();
        let mut cleared = 0u32;
        while idx != RMAP_NONE && budget > 0 {
            budget -= 1;
            let Some(e) = self.rmap.entry(idx) else { break };
            if e.present() && cleared > 0 && self.faults.contains(MigrateFaults::RMAP_MISS) {
                // Injected bug: the walk misses this mapping, yet accounts
                // for it as if it had been unmapped (its PTE still maps
                // the old frame, which the migration then frees).
                self.env.fault_fired("rmap_miss", pfn, e.va);
                if let Some(p) = self.pm(pfn) {
                    p.mapcount -= 1;
                    p.refcount -= 1;
                }
                idx = e.next;
                continue;
            }
            if e.present() {
                cleared += 1;
                match self.env.clear_pte(e.asid, e.va) {
                    Ok(mapped) if mapped == pfn => {
                        if !self.faults.contains(MigrateFaults::SKIP_TLB_FLUSH) {
                            self.env.flush_tlb_page(e.asid, e.va);
                        } else {
                            self.env.fault_fired("skip_tlb_flush", pfn, e.va);
                        }
                        self.rmap.set_migration_entry(&mut self.pa.mem, pfn, idx);
                        if let Some(p) = self.pm(pfn) {
                            p.refcount -= 1;
                        }
                    }
                    Ok(other) => {
                        // The PTE maps another frame: the reverse map is
                        // stale. Put it back and leave the entry present:
                        // the page stays mapped and migration fails.
                        self.env.set_pte(e.asid, e.va, other);
                    }
                    Err(_) => {}
                }
            }
            idx = e.next;
        }
    }

    fn chain_first(&self, pfn: Pfn) -> u32 {
        self.pa.mem.page(pfn).map_or(RMAP_NONE, crate::rmap::chain_head)
    }

    /// `remove_migration_ptes(src, dst)`: every migration entry on `dst`'s
    /// chain (the chain moved to `dst` on success; `src == dst` restores the
    /// old page) becomes a present PTE to `dst`, taking a reference.
    pub fn remove_migration_ptes(&mut self, dst: Pfn, skip_set_pte: bool) {
        let mut idx = self.chain_first(dst);
        let mut budget = self.rmap.capacity();
        while idx != RMAP_NONE && budget > 0 {
            budget -= 1;
            let Some(e) = self.rmap.entry(idx) else { break };
            if !e.present() {
                if !skip_set_pte {
                    self.env.set_pte(e.asid, e.va, dst);
                }
                self.rmap.clear_migration_entry(&mut self.pa.mem, dst, idx);
                if let Some(p) = self.pm(dst) {
                    p.refcount += 1;
                }
            }
            idx = e.next;
        }
    }

    /// `move_to_new_folio` → `migrate_folio` for an anonymous page:
    /// `folio_migrate_mapping` (the refcount must be exactly the isolation
    /// reference, else `-EAGAIN`; the reverse map moves), `folio_migrate_copy`
    /// (`copy_highpage` + `folio_migrate_flags`), and the owner tag.
    pub fn move_to_new_folio(&mut self, newpage: Pfn, page: Pfn) -> i32 {
        let p = self.page(page);
        // folio_expected_refs(NULL mapping) == 1: only our isolation ref.
        if p.refcount != 1 {
            if !self.faults.contains(MigrateFaults::IGNORE_PIN) {
                return Errno::EAGAIN.0;
            }
            // Injected bug: the extra (pin) reference is ignored and the
            // pinned page moves; the pin holder keeps the old frame.
            self.env.fault_fired("ignore_pin", page, (p.refcount - 1) as u32);
        }
        // folio_migrate_mapping: newfolio->mapping = folio->mapping.
        Rmap::move_chain(&mut self.pa.mem, page, newpage);
        // folio_migrate_copy.
        if !self.faults.contains(MigrateFaults::SKIP_COPY) {
            self.env.copy_highpage(page, newpage);
        } else {
            self.env.fault_fired("skip_copy", page, newpage.0);
        }
        // folio_migrate_flags: active/unevictable/mlocked move (cleared on
        // the old page), anon and the rest are copied.
        const MOVE: u32 = PG_ACTIVE | PG_UNEVICTABLE | PG_MLOCKED;
        const COPY: u32 = PG_ANON | PG_PRIVATE;
        let owner = p.owner;
        if let Some(n) = self.pm(newpage) {
            n.flags |= p.flags & (MOVE | COPY);
            n.owner = owner;
        }
        if let Some(o) = self.pm(page) {
            o.flags &= !MOVE;
        }
        MIGRATEPAGE_SUCCESS
    }

    /// `__unmap_and_move`: unmap `page`, move it to `newpage`, map the
    /// result. `force` is `pass > 2`.
    pub fn __unmap_and_move(&mut self, page: Pfn, newpage: Pfn, force: bool, mode: MigrateMode) -> i32 {
        let p = self.page(page);
        // trylock_page / PageWriteback: we cannot sleep (see the module doc).
        if p.has(PG_LOCKED) {
            let _ = (force, mode);
            return Errno::EAGAIN.0;
        }
        if p.has(PG_WRITEBACK) {
            return if matches!(mode, MigrateMode::Sync | MigrateMode::SyncNoCopy) { Errno::EAGAIN.0 } else { Errno::EBUSY.0 };
        }
        let mut rc = Errno::EAGAIN.0;
        let mut page_was_mapped = false;
        if p.mapcount >= 0 {
            self.try_to_migrate(page);
            page_was_mapped = true;
        }
        if self.page(page).mapcount < 0 {
            rc = self.move_to_new_folio(newpage, page);
        }
        if rc == MIGRATEPAGE_SUCCESS {
            self.lru_cache_add(newpage);
        }
        if page_was_mapped {
            if rc == MIGRATEPAGE_SUCCESS {
                let skip = self.faults.contains(MigrateFaults::SKIP_REMAP);
                if skip {
                    self.env.fault_fired("skip_remap", newpage, page.0);
                }
                self.remove_migration_ptes(newpage, skip);
            } else {
                self.remove_migration_ptes(page, false);
            }
        }
        if rc == MIGRATEPAGE_SUCCESS {
            // Drop the allocation's reference: the mappings hold theirs.
            self.put_page(newpage);
        }
        rc
    }

    /// `unmap_and_move`: migrate one isolated page to a page from
    /// [`Self::alloc_migration_target`]. On success the isolation
    /// reference is dropped (freeing the old page); on failure the new page
    /// is freed.
    pub fn unmap_and_move(&mut self, page: Pfn, gfp: Gfp, force: bool, mode: MigrateMode) -> i32 {
        let p = self.page(page);
        if p.refcount == 1 {
            // Page was freed from under us. So we are done.
            if let Some(q) = self.pm(page) {
                q.flags &= !(PG_ACTIVE | PG_UNEVICTABLE);
            }
            self.put_page(page);
            return MIGRATEPAGE_SUCCESS;
        }
        let Some(newpage) = self.alloc_migration_target(page, gfp) else {
            return Errno::ENOMEM.0;
        };
        if let Some(n) = self.pm(newpage) {
            n.private = 0;
        }
        let rc = self.__unmap_and_move(page, newpage, force, mode);
        if rc == MIGRATEPAGE_SUCCESS {
            if !self.faults.contains(MigrateFaults::LEAK_OLD_PAGE) {
                self.put_page(page);
            } else {
                self.env.fault_fired("leak_old_page", page, newpage.0);
            }
        } else {
            self.put_page(newpage);
        }
        rc
    }

    /// `migrate_pages` (6.1, order-0 pages): up to [`NR_MIGRATE_PASSES`]
    /// passes while pages want a retry, `force` from the 4th pass. Migrated
    /// pages leave `from`; pages that failed (permanently or still `-EAGAIN`
    /// after the last pass) stay on it for `putback_movable_pages`. Returns
    /// the number of pages not migrated, or `-ENOMEM` when no target page
    /// could be allocated. Counts `pgmigrate_success` / `pgmigrate_fail`
    /// and emits `mm_migrate_pages`.
    pub fn migrate_pages(&mut self, from: &mut MigrateList, gfp: Gfp, mode: MigrateMode, reason: MigrateReason, stats: &mut MigrateStats) -> Result<u32, Errno> {
        let mut ret_pages = MigrateList::new();
        let mut retry = 1u32;
        let mut nr_failed = 0u32;
        let mut nr_failed_pages = 0u32;
        let mut nr_succeeded = 0u32;
        let mut nr_retry_pages = 0u32;
        let mut result: Result<u32, Errno> = Ok(0);
        'passes: for pass in 0..NR_MIGRATE_PASSES {
            if retry == 0 {
                break;
            }
            retry = 0;
            nr_retry_pages = 0;
            let mut i = 0;
            while let Some(page) = from.get(i) {
                let rc = self.unmap_and_move(page, gfp, pass >= NR_MIGRATE_UNFORCED_PASSES, mode);
                match rc {
                    x if x == Errno::ENOMEM.0 => {
                        // When memory is low, don't bother to try to
                        // migrate other pages, just exit.
                        nr_failed += 1;
                        nr_failed_pages += 1 + nr_retry_pages;
                        nr_retry_pages = 0;
                        retry = 0;
                        result = Err(Errno::ENOMEM);
                        break 'passes;
                    }
                    x if x == Errno::EAGAIN.0 => {
                        retry += 1;
                        nr_retry_pages += 1;
                        i += 1;
                    }
                    MIGRATEPAGE_SUCCESS => {
                        nr_succeeded += 1;
                        from.remove(i);
                    }
                    _ => {
                        // Permanent failure (-EBUSY, etc.).
                        nr_failed += 1;
                        nr_failed_pages += 1;
                        let p = from.remove(i);
                        ret_pages.push(p);
                    }
                }
            }
        }
        nr_failed += retry;
        nr_failed_pages += nr_retry_pages;
        if result.is_ok() {
            result = Ok(nr_failed);
        }
        // Put the permanent failures back on the migration list.
        from.splice(&mut ret_pages);
        self.pa.events.pgmigrate_success += nr_succeeded as u64;
        self.pa.events.pgmigrate_fail += nr_failed_pages as u64;
        self.env.trace_mm_migrate_pages(&MigratePagesEvent {
            succeeded: nr_succeeded as u64,
            failed: nr_failed_pages as u64,
            thp_succeeded: 0,
            thp_failed: 0,
            thp_split: 0,
            mode,
            reason,
        });
        *stats = MigrateStats { nr_succeeded, nr_failed_pages, nr_failed };
        result
    }
}

#[cfg(test)]
pub(crate) mod tests;
