//! Pure checkers over introspection snapshots and events.
//!
//! - [`check_dma`]: a DMA transfer lands in one contiguous buffer that the
//!   guest allocated to that device (owner tags, CMA bitmap, live buffers
//!   from `dma_alloc`/`dma_free` records);
//! - [`check_migration`]: content preserved, every listed VA walks to the new
//!   frame, the CPU's cached translation agrees (missing TLB flush), and no
//!   PTE of that address space maps a free frame ([`check_mapped_free`]);
//! - [`check_integrity`]: free lists, page flags, pageblock types and CMA
//!   bitmaps agree (stable snapshots only);
//! - [`check_translation`]: the CMA-aware MMU hook for each translation the
//!   CPU caches.
//!
//! Every checker returns [`Violation`]s and never panics on guest data.
mod dma;
mod integrity;
mod lru;
mod migrate;
pub mod monitor;
mod ownership;
#[cfg(test)]
mod tests;

pub use dma::{check_dma, DmaBuffers, DmaTransfer};
pub use integrity::check_integrity;
pub use lru::{check_lru_batch_pages, check_lru_drained};
pub use migrate::{check_mapped_free, check_migration, check_translation, MigrationInput};
pub use monitor::Monitor;
pub use ownership::{check_frames, owner_text};

use std::fmt;

/// Which check fired.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Check {
    /// The transfer is not inside one live buffer of its device.
    DmaContiguity,
    /// The transfer touches free, movable or foreign frames.
    DmaOwnership,
    /// The new frame's content differs from the old frame's at the move.
    MigrateContent,
    /// A moved VA does not walk to the new frame.
    MigratePte,
    /// The CPU's cached translation disagrees with the page tables.
    MigrateTlb,
    /// A PTE (or a cached translation) maps a free frame.
    PteMapsFree,
    /// Buddy free lists are inconsistent (links, orders, counts, overlaps).
    FreeList,
    /// A page record is in an impossible state (free and owned...).
    PageState,
    /// Pageblock migrate types disagree with CMA areas or free lists.
    Pageblock,
    /// Pageblocks left isolated while no operation runs.
    Isolation,
    /// CMA bitmap bits disagree with page states.
    CmaBitmap,
    /// Zone counters disagree with the pages.
    Accounting,
    /// A migrated page's old frame was not freed after the move.
    MigrateOldPage,
    /// A frame is not owned as the guest's structures say (an orphan user
    /// page, a PTE to a frame that is not a user page, a wrong mapcount).
    Ownership,
    /// A DMA master wrote into a frame while it was being migrated.
    DmaMigrating,
    /// The LRU add batch holds pages while `lru_cache_disable()` is in
    /// force (the drain before migration was skipped).
    LruDrain,
}

impl Check {
    /// Every check.
    pub const ALL: [Check; 16] = [
        Check::DmaContiguity,
        Check::DmaOwnership,
        Check::MigrateContent,
        Check::MigratePte,
        Check::MigrateTlb,
        Check::PteMapsFree,
        Check::FreeList,
        Check::PageState,
        Check::Pageblock,
        Check::Isolation,
        Check::CmaBitmap,
        Check::Accounting,
        Check::MigrateOldPage,
        Check::Ownership,
        Check::DmaMigrating,
        Check::LruDrain,
    ];
    /// The check with this dotted name.
    pub fn from_name(n: &str) -> Option<Check> {
        Self::ALL.into_iter().find(|c| c.name() == n)
    }
    /// Stable dotted name (used in traces).
    pub const fn name(self) -> &'static str {
        match self {
            Check::DmaContiguity => "dma.contiguity",
            Check::DmaOwnership => "dma.ownership",
            Check::MigrateContent => "migrate.content",
            Check::MigratePte => "migrate.pte",
            Check::MigrateTlb => "migrate.tlb",
            Check::PteMapsFree => "pte.maps_free",
            Check::FreeList => "integrity.free_list",
            Check::PageState => "integrity.page_state",
            Check::Pageblock => "integrity.pageblock",
            Check::Isolation => "integrity.isolation",
            Check::CmaBitmap => "integrity.cma_bitmap",
            Check::Accounting => "integrity.accounting",
            Check::MigrateOldPage => "migrate.old_page",
            Check::Ownership => "integrity.ownership",
            Check::DmaMigrating => "dma.migrating",
            Check::LruDrain => "migrate.lru_drain",
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One violation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub check: Check,
    /// Frame (display/camera period) it was found in.
    pub frame: u64,
    /// Virtual time it was found at.
    pub at_ns: u64,
    pub pfn: Option<u32>,
    pub va: Option<u32>,
    pub device: Option<u32>,
    pub detail: String,
    /// The last events before it (one JSON line each), oldest first.
    pub recent_events: Vec<String>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[frame {} @{}ns] {}", self.frame, self.at_ns, self.check)?;
        if let Some(p) = self.pfn {
            write!(f, " pfn={p:#x}")?;
        }
        if let Some(v) = self.va {
            write!(f, " va={v:#010x}")?;
        }
        if let Some(d) = self.device {
            write!(f, " device={}", cmaemu_abi::desc::dma_dev_name(d))?;
        }
        write!(f, ": {}", self.detail)
    }
}

/// Where and when a check runs; copied into each violation.
#[derive(Clone, Debug, Default)]
pub struct CheckCtx {
    pub frame: u64,
    pub at_ns: u64,
    pub recent: Vec<String>,
}

impl CheckCtx {
    pub(crate) fn violation(&self, check: Check, pfn: Option<u32>, va: Option<u32>, device: Option<u32>, detail: String) -> Violation {
        Violation { check, frame: self.frame, at_ns: self.at_ns, pfn, va, device, detail, recent_events: self.recent.clone() }
    }
}

/// Most violations one checker call reports (then one "and N more").
pub const MAX_VIOLATIONS_PER_CALL: usize = 64;

pub(crate) struct Out<'a> {
    ctx: &'a CheckCtx,
    v: Vec<Violation>,
    dropped: usize,
}

impl<'a> Out<'a> {
    pub(crate) fn new(ctx: &'a CheckCtx) -> Self {
        Out { ctx, v: Vec::new(), dropped: 0 }
    }
    pub(crate) fn push(&mut self, check: Check, pfn: Option<u32>, va: Option<u32>, device: Option<u32>, detail: String) {
        if self.v.len() < MAX_VIOLATIONS_PER_CALL {
            self.v.push(self.ctx.violation(check, pfn, va, device, detail));
        } else {
            self.dropped += 1;
        }
    }
    pub(crate) fn finish(mut self) -> Vec<Violation> {
        if self.dropped > 0 {
            if let Some(last) = self.v.last_mut() {
                last.detail.push_str(&format!(" (and {} more violations not listed)", self.dropped));
            }
        }
        self.v
    }
}
