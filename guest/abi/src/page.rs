//! Frame numbers, the per-frame page record and the pageblock bitmap layout.
//!
//! The guest keeps one [`PageRecord`] per RAM frame (Linux's `struct page`,
//! 32 bytes on ARM32 like ours) in an array placed in guest RAM and indexed by
//! `pfn - base_pfn`; the host reads that array straight from guest physical
//! memory. Pageblock migrate types live in a separate bitmap of 32-bit words,
//! [`NR_PAGEBLOCK_BITS`] bits per pageblock, exactly as Linux's
//! `pageblock_flags` on a 32-bit kernel.

/// log2 of the page size (ARM32, 4 KiB pages).
pub const PAGE_SHIFT: u32 = 12;
/// Page size in bytes.
pub const PAGE_SIZE: u32 = 1 << PAGE_SHIFT;

/// A page frame number (physical address >> [`PAGE_SHIFT`]).
///
/// 32 bits cover the whole 4 GiB physical space of a non-LPAE ARM32 board.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
#[repr(transparent)]
pub struct Pfn(pub u32);

/// A physical address. 64 bits so that an exclusive end of `4 GiB` fits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
#[repr(transparent)]
pub struct PhysAddr(pub u64);

impl Pfn {
    /// `PFN_PHYS`: the physical address of the frame.
    pub const fn phys(self) -> PhysAddr {
        PhysAddr((self.0 as u64) << PAGE_SHIFT)
    }
    /// `pfn + n`.
    pub const fn add(self, n: u32) -> Pfn {
        Pfn(self.0 + n)
    }
}

impl PhysAddr {
    /// `PFN_DOWN`: the frame holding this address.
    pub const fn pfn_down(self) -> Pfn {
        Pfn((self.0 >> PAGE_SHIFT) as u32)
    }
    /// `PFN_UP`: the first frame at or above this address.
    pub const fn pfn_up(self) -> Pfn {
        Pfn(((self.0 + PAGE_SIZE as u64 - 1) >> PAGE_SHIFT) as u32)
    }
}

/// "No frame" in the intrusive list links of [`PageRecord`].
pub const PFN_NONE: u32 = u32::MAX;

// ---------------------------------------------------------------------------
// Page flags (`PageRecord::flags`). Linux keeps some of these states outside
// `page->flags` (PageBuddy is a page type in `_mapcount`, PageAnon and
// __PageMovable are low bits of `page->mapping`, the zone number sits in the
// top bits of `page->flags`); we keep them all as bits so that the host can
// read a frame's state from one word.
// ---------------------------------------------------------------------------

/// `PG_reserved`: memblock-reserved or hole; never handed to the buddy.
pub const PG_RESERVED: u32 = 1 << 0;
/// `PageBuddy`: head of a free block on a buddy free list; `private` = order.
pub const PG_BUDDY: u32 = 1 << 1;
/// `PG_lru`: on an LRU list (movable by migration).
pub const PG_LRU: u32 = 1 << 2;
/// `PG_active`.
pub const PG_ACTIVE: u32 = 1 << 3;
/// `PG_head`: head of a compound page.
pub const PG_HEAD: u32 = 1 << 4;
/// `PageTail` (Linux: bit 0 of `compound_head`).
pub const PG_TAIL: u32 = 1 << 5;
/// `PageAnon` (Linux: `PAGE_MAPPING_ANON` in `page->mapping`).
pub const PG_ANON: u32 = 1 << 6;
/// `__PageMovable`: non-LRU movable page (Linux: `PAGE_MAPPING_MOVABLE`).
pub const PG_MOVABLE: u32 = 1 << 7;
/// `PG_isolated`: taken off its LRU/movable list for migration.
pub const PG_ISOLATED: u32 = 1 << 8;
/// `PG_slab`.
pub const PG_SLAB: u32 = 1 << 9;
/// `PG_locked`.
pub const PG_LOCKED: u32 = 1 << 10;
/// `PG_writeback`.
pub const PG_WRITEBACK: u32 = 1 << 11;
/// `PG_unevictable`.
pub const PG_UNEVICTABLE: u32 = 1 << 12;
/// `PG_mlocked`.
pub const PG_MLOCKED: u32 = 1 << 13;
/// `PG_hwpoison`.
pub const PG_HWPOISON: u32 = 1 << 14;
/// `PG_private`.
pub const PG_PRIVATE: u32 = 1 << 15;
/// All state bits (everything below the packed fields).
pub const PG_STATE_MASK: u32 = (1 << 16) - 1;
/// On a per-CPU page list (`pcp->lists[]`): free to the page checks but not
/// in the buddy; the block's order is in `private`. Our marker, outside
/// [`PG_STATE_MASK`]; Linux knows these pages by list membership only.
pub const PG_PCP: u32 = 1 << 16;

/// Bits 24..=26: the migrate type of the free list the page is on while
/// `PG_BUDDY` is set, and afterwards the type it was allocated from (Linux
/// caches the latter in `page->index`, `set_pcppage_migratetype`).
pub const PG_LIST_MT_SHIFT: u32 = 24;
/// Mask of the list migrate type field (after shifting).
pub const PG_LIST_MT_MASK: u32 = 0x7;
/// Bits 28..=29: the zone index of the frame (`page_zonenum`).
pub const PG_ZONE_SHIFT: u32 = 28;
/// Mask of the zone field (after shifting).
pub const PG_ZONE_MASK: u32 = 0x3;

// Owner tags (`PageRecord::owner`): kind in the top byte, an id below.
/// Nobody (free, or not tagged).
pub const OWNER_NONE: u32 = 0;
/// Kernel-internal allocation.
pub const OWNER_KIND_KERNEL: u32 = 0x01 << 24;
/// Allocated to a device (low 24 bits: device id).
pub const OWNER_KIND_DEVICE: u32 = 0x02 << 24;
/// Part of a CMA allocation (low 24 bits: area id).
pub const OWNER_KIND_CMA: u32 = 0x03 << 24;
/// User (anonymous) memory (low 24 bits: address-space id).
pub const OWNER_KIND_USER: u32 = 0x04 << 24;
/// Page-table page.
pub const OWNER_KIND_PGTABLE: u32 = 0x05 << 24;
/// Mask of the owner kind.
pub const OWNER_KIND_MASK: u32 = 0xff << 24;

/// One record per RAM frame: the guest's `struct page`.
///
/// Free pages have `refcount == 0` and `mapcount == -1`, like Linux; the head
/// of a free block has [`PG_BUDDY`] and its order in `private`, and is linked
/// into its free list through `lru_prev`/`lru_next` (absolute PFNs,
/// [`PFN_NONE`] at the ends), as Linux links `page->buddy_list`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRecord {
    /// `PG_*` bits plus the packed list-migratetype and zone fields.
    pub flags: u32,
    /// `page->_refcount`.
    pub refcount: i32,
    /// `page->_mapcount` (-1: not mapped).
    pub mapcount: i32,
    /// `page_private`: buddy order while free.
    pub private: u32,
    /// Next PFN on the list this page is on.
    pub lru_next: u32,
    /// Previous PFN on the list this page is on.
    pub lru_prev: u32,
    /// Owner tag (`OWNER_KIND_*` | id).
    pub owner: u32,
    /// `page->mapping` stand-in: reverse-map cookie for anon/movable pages.
    /// For anonymous pages (`PG_ANON`): 1 + the index of the first entry of
    /// the page's chain in the guest's reverse-map pool (`cmaemu_mm::rmap`),
    /// 0 when no entry is left.
    pub mapping: u32,
}

const _: () = assert!(core::mem::size_of::<PageRecord>() == 32);
const _: () = assert!(core::mem::align_of::<PageRecord>() == 4);

impl PageRecord {
    /// The state `__init_single_page` leaves: refcount 1, unmapped, no links.
    pub const INIT: PageRecord = PageRecord {
        flags: 0,
        refcount: 1,
        mapcount: -1,
        private: 0,
        lru_next: PFN_NONE,
        lru_prev: PFN_NONE,
        owner: OWNER_NONE,
        mapping: 0,
    };

    /// Whether all bits of `f` are set.
    pub const fn has(&self, f: u32) -> bool {
        self.flags & f == f
    }
    /// `page_zonenum`.
    pub const fn zone_idx(&self) -> usize {
        ((self.flags >> PG_ZONE_SHIFT) & PG_ZONE_MASK) as usize
    }
    /// The free-list (or allocated-from) migrate type cached in the flags.
    pub const fn list_mt(&self) -> u8 {
        ((self.flags >> PG_LIST_MT_SHIFT) & PG_LIST_MT_MASK) as u8
    }
}

// ---------------------------------------------------------------------------
// Pageblock bitmap layout and migrate type numbers (include/linux/mmzone.h,
// include/linux/pageblock-flags.h, Linux 6.1 with CONFIG_CMA and
// CONFIG_MEMORY_ISOLATION).
// ---------------------------------------------------------------------------

/// `NR_PAGEBLOCK_BITS`: 3 migrate type bits + `PB_migrate_skip`.
pub const NR_PAGEBLOCK_BITS: u32 = 4;
/// `MIGRATETYPE_MASK` (`(1 << PB_migratetype_bits) - 1`).
pub const MIGRATETYPE_MASK: u32 = 0x7;
/// `PB_migrate_skip` bit index inside a pageblock's bits.
pub const PB_MIGRATE_SKIP: u32 = 3;

/// `MIGRATE_UNMOVABLE`.
pub const MIGRATE_UNMOVABLE: u8 = 0;
/// `MIGRATE_MOVABLE`.
pub const MIGRATE_MOVABLE: u8 = 1;
/// `MIGRATE_RECLAIMABLE`.
pub const MIGRATE_RECLAIMABLE: u8 = 2;
/// `MIGRATE_PCPTYPES`: the number of types on per-cpu lists.
pub const MIGRATE_PCPTYPES: u8 = 3;
/// `MIGRATE_HIGHATOMIC` (= `MIGRATE_PCPTYPES`).
pub const MIGRATE_HIGHATOMIC: u8 = MIGRATE_PCPTYPES;
/// `MIGRATE_CMA`.
pub const MIGRATE_CMA: u8 = 4;
/// `MIGRATE_ISOLATE`.
pub const MIGRATE_ISOLATE: u8 = 5;
/// `MIGRATE_TYPES`.
pub const MIGRATE_TYPES: usize = 6;
