//! The page array (`mem_map`) and per-page state checks.
//!
//! The guest places one [`PageRecord`] per RAM frame in guest RAM and hands
//! the slice to [`MemMap`], together with the pageblock bitmap (see
//! [`crate::pageblock`]). Everything is indexed by PFN; nothing allocates.
pub use cmaemu_abi::page::*;
use core::fmt;

/// `PAGE_FLAGS_CHECK_AT_FREE`: flags a page must not have when freed
/// (`PG_buddy` stands for Linux's buddy page type in `_mapcount`, which
/// `page_expected_state` catches as "nonzero mapcount").
pub const PAGE_FLAGS_CHECK_AT_FREE: u32 = PG_LRU
    | PG_LOCKED
    | PG_PRIVATE
    | PG_WRITEBACK
    | PG_RESERVED
    | PG_SLAB
    | PG_ACTIVE
    | PG_UNEVICTABLE
    | PG_MLOCKED
    | PG_BUDDY;

/// `PAGE_FLAGS_CHECK_AT_PREP`: no state flag at all may be set on a page
/// leaving the free lists (the buddy head's `PG_buddy` is cleared first).
pub const PAGE_FLAGS_CHECK_AT_PREP: u32 = PG_STATE_MASK & !PG_HWPOISON;

/// Errors of the page array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageError {
    /// The page slice and the pageblock bitmap disagree in size.
    BitmapTooSmall {
        /// Words needed.
        need: usize,
        /// Words given.
        have: usize,
    },
    /// The page array is empty or runs past the 32-bit PFN space.
    BadArray,
}

impl fmt::Display for PageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PageError::BitmapTooSmall { need, have } => {
                write!(f, "pageblock bitmap has {} words, needs {}", have, need)
            }
            PageError::BadArray => f.write_str("bad page array"),
        }
    }
}

/// `mem_map` plus `pageblock_flags`: the state of every RAM frame.
pub struct MemMap<'a> {
    pages: &'a mut [PageRecord],
    base: u32,
    pub(crate) pb_words: &'a mut [u32],
    pub(crate) pb_base: u32,
    pub(crate) pageblock_order: u32,
}

impl<'a> MemMap<'a> {
    /// Words of pageblock bitmap needed for `nr_pages` frames from `base`.
    pub fn pageblock_words_needed(base: Pfn, nr_pages: u32, pageblock_order: u32) -> usize {
        let pb_base = base.0 >> pageblock_order;
        let pb_end = (base.0 as u64 + nr_pages as u64 + (1u64 << pageblock_order) - 1) >> pageblock_order;
        let bits = (pb_end - pb_base as u64) * cmaemu_abi::page::NR_PAGEBLOCK_BITS as u64;
        bits.div_ceil(32) as usize
    }

    /// Wraps a page array for frames `base..base + pages.len()` and its
    /// pageblock bitmap. Resets every record to `__init_single_page`'s
    /// state (reserved, refcount 1) and every pageblock to 0; zone links and
    /// `MIGRATE_MOVABLE` are set by the allocator's `memmap_init`.
    pub fn new(
        pages: &'a mut [PageRecord],
        base: Pfn,
        pb_words: &'a mut [u32],
        pageblock_order: u32,
    ) -> Result<Self, PageError> {
        if pages.is_empty() || base.0 as u64 + pages.len() as u64 > u32::MAX as u64 {
            return Err(PageError::BadArray);
        }
        let need = Self::pageblock_words_needed(base, pages.len() as u32, pageblock_order);
        if pb_words.len() < need {
            return Err(PageError::BitmapTooSmall { need, have: pb_words.len() });
        }
        for p in pages.iter_mut() {
            *p = PageRecord { flags: PG_RESERVED, ..PageRecord::INIT };
        }
        for w in pb_words.iter_mut() {
            *w = 0;
        }
        Ok(MemMap {
            pages,
            base: base.0,
            pb_words,
            pb_base: (base.0 >> pageblock_order) << pageblock_order,
            pageblock_order,
        })
    }

    /// First frame covered.
    pub fn base_pfn(&self) -> Pfn {
        Pfn(self.base)
    }
    /// One past the last frame covered.
    pub fn end_pfn(&self) -> Pfn {
        Pfn(self.base + self.pages.len() as u32)
    }
    /// `pfn_valid`.
    pub fn pfn_valid(&self, pfn: Pfn) -> bool {
        pfn.0 >= self.base && ((pfn.0 - self.base) as usize) < self.pages.len()
    }
    /// The record of a frame, if covered.
    pub fn page(&self, pfn: Pfn) -> Option<&PageRecord> {
        self.pages.get(pfn.0.checked_sub(self.base)? as usize)
    }
    /// The record of a frame, mutable, if covered.
    pub fn page_mut(&mut self, pfn: Pfn) -> Option<&mut PageRecord> {
        self.pages.get_mut(pfn.0.checked_sub(self.base)? as usize)
    }
    /// The raw records (for the host-visible descriptor and the views).
    pub fn records(&self) -> &[PageRecord] {
        self.pages
    }
    /// The raw pageblock bitmap words.
    pub fn pageblock_words(&self) -> &[u32] {
        self.pb_words
    }
    /// `pfn_to_page` for a PFN the caller has checked.
    #[inline]
    pub(crate) fn p(&self, pfn: u32) -> &PageRecord {
        &self.pages[(pfn - self.base) as usize]
    }
    /// Mutable `pfn_to_page` for a PFN the caller has checked.
    #[inline]
    pub(crate) fn pm(&mut self, pfn: u32) -> &mut PageRecord {
        &mut self.pages[(pfn - self.base) as usize]
    }
}

/// `page_bad_reason`: why a page is not in the state expected when it is
/// freed (`check_flags = PAGE_FLAGS_CHECK_AT_FREE`) or allocated (`_PREP`).
pub fn page_bad_reason(p: &PageRecord, check_flags: u32) -> Option<&'static str> {
    let mut reason = None;
    if p.mapcount != -1 {
        reason = Some("nonzero mapcount");
    }
    if p.mapping != 0 {
        reason = Some("non-NULL mapping");
    }
    if p.refcount != 0 {
        reason = Some("nonzero _refcount");
    }
    if p.flags & check_flags != 0 {
        reason = Some(if check_flags == PAGE_FLAGS_CHECK_AT_PREP {
            "PAGE_FLAGS_CHECK_AT_PREP flag(s) set"
        } else {
            "PAGE_FLAGS_CHECK_AT_FREE flag(s) set"
        });
    }
    reason
}

/// `page_expected_state`.
pub fn page_expected_state(p: &PageRecord, check_flags: u32) -> bool {
    p.mapcount == -1 && p.mapping == 0 && p.refcount == 0 && p.flags & check_flags == 0
}
