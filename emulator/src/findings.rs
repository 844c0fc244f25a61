//! Findings: what the verifiers report ([`Check`], [`Violation`]) and what
//! a run keeps of them ([`ViolationSummary`]). Below `verify` (which finds
//! them) and `trace` (which records them); imports nothing of the crate.
use std::collections::BTreeMap;
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
    /// A free block sits on a per-CPU list inside a range
    /// `alloc_contig_range` isolated and drained (`drain_all_pages` was
    /// skipped: `test_pages_isolated` fails on it).
    PcpDrain,
    /// A kernel, slab or page-table page in a `MIGRATE_CMA` pageblock (CMA
    /// pageblocks hold only movable pages: such a page can never be moved
    /// out, and every `cma_alloc` over it fails).
    CmaUnmovable,
}

impl Check {
    /// Every check.
    pub const ALL: [Check; 18] = [
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
        Check::PcpDrain,
        Check::CmaUnmovable,
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
            Check::PcpDrain => "migrate.pcp_drain",
            Check::CmaUnmovable => "integrity.cma_unmovable",
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

/// Per-check counts and the first violation: what a run prints at exit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ViolationSummary {
    pub total: u64,
    pub per_check: BTreeMap<Check, u64>,
    /// The first violation's headline.
    pub first: Option<String>,
    /// The first violation's virtual time and check.
    pub first_at: Option<(u64, Check)>,
}

impl ViolationSummary {
    /// Count one more violation.
    pub fn add(&mut self, v: &Violation) {
        self.total += 1;
        *self.per_check.entry(v.check).or_default() += 1;
        if self.first.is_none() {
            self.first = Some(v.to_string());
            self.first_at = Some((v.at_ns, v.check));
        }
    }
    /// The lines printed at exit (empty without violations).
    pub fn lines(&self) -> Vec<String> {
        if self.total == 0 {
            return Vec::new();
        }
        let per: Vec<String> = self.per_check.iter().map(|(c, n)| format!("{c} {n}")).collect();
        let mut l = vec![format!("cmaemu: {} verification violation(s): {}", self.total, per.join(", "))];
        if let Some(f) = &self.first {
            l.push(format!("cmaemu: first: {f}"));
        }
        l
    }
}

