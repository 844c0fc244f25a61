//! Pageblock migrate types (include/linux/mmzone.h,
//! include/linux/pageblock-flags.h, mm/page_alloc.c
//! `get_pfnblock_flags_mask`/`set_pfnblock_flags_mask`).
//!
//! Linux 6.1 with `CONFIG_CMA` and `CONFIG_MEMORY_ISOLATION` numbers the
//! types `MIGRATE_UNMOVABLE, MIGRATE_MOVABLE, MIGRATE_RECLAIMABLE,
//! MIGRATE_PCPTYPES (= MIGRATE_HIGHATOMIC), MIGRATE_CMA, MIGRATE_ISOLATE`.
//! Each pageblock has `NR_PAGEBLOCK_BITS` = 4 bits in an array of
//! 32-bit words (`unsigned long` on ARM32): 3 for the type, 1 for
//! `PB_migrate_skip`.
//!
//! Linux (FLATMEM) keeps one bitmap per zone starting at the zone's first
//! pageblock; we keep one bitmap for the whole memory map starting at its
//! first pageblock, so the host finds every pageblock at one address.
use crate::page::MemMap;
use crate::types::Pfn;
use cmaemu_abi::page as abi;

/// `enum migratetype`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum MigrateType {
    /// `MIGRATE_UNMOVABLE`.
    Unmovable = abi::MIGRATE_UNMOVABLE,
    /// `MIGRATE_MOVABLE`.
    Movable = abi::MIGRATE_MOVABLE,
    /// `MIGRATE_RECLAIMABLE`.
    Reclaimable = abi::MIGRATE_RECLAIMABLE,
    /// `MIGRATE_HIGHATOMIC` (= `MIGRATE_PCPTYPES`).
    HighAtomic = abi::MIGRATE_HIGHATOMIC,
    /// `MIGRATE_CMA`.
    Cma = abi::MIGRATE_CMA,
    /// `MIGRATE_ISOLATE`.
    Isolate = abi::MIGRATE_ISOLATE,
}

/// `MIGRATE_TYPES`.
pub const MIGRATE_TYPES: usize = abi::MIGRATE_TYPES;
/// `MIGRATE_PCPTYPES`.
pub const MIGRATE_PCPTYPES: usize = abi::MIGRATE_PCPTYPES as usize;

/// `migratetype_names[MIGRATE_TYPES]` (mm/page_alloc.c).
pub const MIGRATETYPE_NAMES: [&str; MIGRATE_TYPES] =
    ["Unmovable", "Movable", "Reclaimable", "HighAtomic", "CMA", "Isolate"];

impl MigrateType {
    /// All types in index order.
    pub const ALL: [MigrateType; MIGRATE_TYPES] = [
        MigrateType::Unmovable,
        MigrateType::Movable,
        MigrateType::Reclaimable,
        MigrateType::HighAtomic,
        MigrateType::Cma,
        MigrateType::Isolate,
    ];

    /// From the 3-bit field value; `None` for 6 and 7.
    pub const fn from_u8(v: u8) -> Option<MigrateType> {
        match v {
            0 => Some(MigrateType::Unmovable),
            1 => Some(MigrateType::Movable),
            2 => Some(MigrateType::Reclaimable),
            3 => Some(MigrateType::HighAtomic),
            4 => Some(MigrateType::Cma),
            5 => Some(MigrateType::Isolate),
            _ => None,
        }
    }
    /// Index into per-type arrays.
    pub const fn idx(self) -> usize {
        self as usize
    }
    /// `migratetype_names[mt]`.
    pub const fn name(self) -> &'static str {
        MIGRATETYPE_NAMES[self as usize]
    }
    /// `is_migrate_cma`.
    pub const fn is_cma(self) -> bool {
        matches!(self, MigrateType::Cma)
    }
    /// `is_migrate_isolate`.
    pub const fn is_isolate(self) -> bool {
        matches!(self, MigrateType::Isolate)
    }
    /// `is_migrate_highatomic`.
    pub const fn is_highatomic(self) -> bool {
        matches!(self, MigrateType::HighAtomic)
    }
    /// `migratetype_is_mergeable`: `mt < MIGRATE_PCPTYPES`.
    pub const fn is_mergeable(self) -> bool {
        (self as usize) < MIGRATE_PCPTYPES
    }
}

impl MemMap<'_> {
    /// `pfn_to_bitidx` + word index: (word, bit offset) of a pageblock.
    #[inline]
    fn pb_pos(&self, pfn: u32) -> (usize, u32) {
        let bitidx = ((pfn - self.pb_base) >> self.pageblock_order) * abi::NR_PAGEBLOCK_BITS;
        ((bitidx / 32) as usize, bitidx % 32)
    }

    /// `get_pfnblock_flags_mask`.
    pub fn get_pfnblock_flags_mask(&self, pfn: Pfn, mask: u32) -> u32 {
        let (w, b) = self.pb_pos(pfn.0);
        (self.pb_words[w] >> b) & mask
    }

    /// `set_pfnblock_flags_mask`.
    pub fn set_pfnblock_flags_mask(&mut self, pfn: Pfn, flags: u32, mask: u32) {
        let (w, b) = self.pb_pos(pfn.0);
        let word = self.pb_words[w];
        self.pb_words[w] = (word & !(mask << b)) | ((flags & mask) << b);
    }

    /// `get_pageblock_migratetype` / `get_pfnblock_migratetype`.
    ///
    /// An out-of-range value (6 or 7, never written by us) reads as
    /// `Unmovable` rather than panicking.
    #[inline]
    pub fn get_pageblock_migratetype(&self, pfn: Pfn) -> MigrateType {
        let v = self.get_pfnblock_flags_mask(pfn, abi::MIGRATETYPE_MASK) as u8;
        MigrateType::from_u8(v).unwrap_or(MigrateType::Unmovable)
    }

    /// `set_pageblock_migratetype` without the `page_group_by_mobility_disabled`
    /// adjustment (the allocator applies that, it owns the flag).
    pub fn set_pageblock_migratetype_raw(&mut self, pfn: Pfn, mt: MigrateType) {
        self.set_pfnblock_flags_mask(pfn, mt as u32, abi::MIGRATETYPE_MASK);
    }

    /// `get_pageblock_skip`.
    pub fn get_pageblock_skip(&self, pfn: Pfn) -> bool {
        self.get_pfnblock_flags_mask(pfn, 1 << abi::PB_MIGRATE_SKIP) != 0
    }

    /// `pageblock_order` of this map.
    pub fn pageblock_order(&self) -> u32 {
        self.pageblock_order
    }

    /// `pageblock_start_pfn`.
    pub fn pageblock_start_pfn(&self, pfn: Pfn) -> Pfn {
        Pfn(pfn.0 & !((1u32 << self.pageblock_order) - 1))
    }

    /// `pageblock_end_pfn` (exclusive).
    pub fn pageblock_end_pfn(&self, pfn: Pfn) -> Pfn {
        Pfn(self.pageblock_start_pfn(pfn).0 + (1u32 << self.pageblock_order))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::page::PageRecord;

    #[test]
    fn pageblock_bits_pack_four_per_block() {
        let mut pages = vec![PageRecord::INIT; 8 * 1024];
        let base = Pfn(0x60000);
        let n = MemMap::pageblock_words_needed(base, 8 * 1024, 10);
        assert_eq!(n, 1); // 8 blocks * 4 bits
        let mut words = vec![0u32; n];
        let mut m = MemMap::new(&mut pages, base, &mut words, 10).unwrap();
        for (i, mt) in MigrateType::ALL.iter().enumerate() {
            m.set_pageblock_migratetype_raw(Pfn(0x60000 + (i as u32) * 1024 + 7), *mt);
        }
        for (i, mt) in MigrateType::ALL.iter().enumerate() {
            assert_eq!(m.get_pageblock_migratetype(Pfn(0x60000 + (i as u32) * 1024)), *mt);
        }
        assert!(!m.get_pageblock_skip(Pfn(0x60000)));
        // type i at bit 4*i of word 0: 0x543210
        assert_eq!(m.pageblock_words()[0], 0x0054_3210);
        assert_eq!(MIGRATETYPE_NAMES[MigrateType::HighAtomic.idx()], "HighAtomic");
        assert!(MigrateType::Reclaimable.is_mergeable() && !MigrateType::Cma.is_mergeable());
    }
}
