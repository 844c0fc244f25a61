//! Linux 6.1's `dump_page()` (mm/debug.c) of a frame, from its page
//! record: what `alloc_contig_dump_pages()` prints (with dynamic debug) for
//! the pages a contiguous allocation could not migrate, and
//! `has_unmovable_pages()` for an unmovable one.
//!
//! The text is Linux's: `page:%p refcount:%d mapcount:%d mapping:%p
//! index:%#lx pfn:%#lx`, `%sflags: %pGp%s` (`anon `, Linux's page-flag
//! names in `__def_pageflag_names` order, then `zone=N`; ` CMA` in a CMA
//! pageblock), `raw: ` (`print_hex_dump`, 32 bytes in 32-bit words), `page
//! dumped because: %s`. The values are the guest's: `%p` prints the
//! record's kernel address unhashed (as with `no_hash_pointers`); the flag
//! word is the one Linux would hold for the record's state on a 32-bit
//! FLATMEM kernel (the zone in bits 30-31, no node or section fields); the
//! raw words are the guest's own 32-byte record (its `struct page`).
use crate::introspect::Snapshot;
use cmaemu_abi::desc::as_bytes;
use cmaemu_abi::page::*;

/// `dump_page()`'s reason in `alloc_contig_dump_pages()`.
pub const MIGRATION_FAILURE: &str = "migration failure";
/// `dump_page()`'s reason in `has_unmovable_pages()`.
pub const UNMOVABLE_PAGE: &str = "unmovable page";

/// `ZONES_PGSHIFT` of a 32-bit FLATMEM kernel with 2 zone bits.
const ZONES_PGSHIFT: u32 = 30;

/// Linux 6.1's `enum pageflags` bit of each name, in
/// `__def_pageflag_names` order (include/trace/events/mmflags.h).
const PAGEFLAG_NAMES: [(u32, &str); 22] = [
    (0, "locked"),
    (7, "waiters"),
    (8, "error"),
    (1, "referenced"),
    (2, "uptodate"),
    (3, "dirty"),
    (4, "lru"),
    (5, "active"),
    (6, "workingset"),
    (9, "slab"),
    (10, "owner_priv_1"),
    (11, "arch_1"),
    (12, "reserved"),
    (13, "private"),
    (14, "private_2"),
    (15, "writeback"),
    (16, "head"),
    (17, "mappedtodisk"),
    (18, "reclaim"),
    (19, "swapbacked"),
    (20, "unevictable"),
    (21, "mlocked"),
];

/// The `page->flags` word Linux would hold for a record: its `PG_*` bits
/// at Linux's positions (an anonymous page is uptodate and swapbacked, as
/// every anonymous page Linux maps) and the zone number.
pub fn linux_flags(p: &PageRecord) -> u32 {
    const MAP: [(u32, u32); 10] = [
        (PG_LOCKED, 0),
        (PG_LRU, 4),
        (PG_ACTIVE, 5),
        (PG_SLAB, 9),
        (PG_RESERVED, 12),
        (PG_PRIVATE, 13),
        (PG_WRITEBACK, 15),
        (PG_HEAD, 16),
        (PG_UNEVICTABLE, 20),
        (PG_MLOCKED, 21),
    ];
    let mut f = MAP.iter().filter(|(ours, _)| p.flags & ours != 0).fold(0u32, |f, (_, bit)| f | 1 << bit);
    if p.flags & PG_ANON != 0 {
        f |= 1 << 2 | 1 << 19;
    }
    f | ((p.flags >> PG_ZONE_SHIFT) & PG_ZONE_MASK) << ZONES_PGSHIFT
}

/// `%pGp`: `0x...(name|name|zone=N)`.
pub fn format_page_flags(flags: u32) -> String {
    let main = flags & ((1 << ZONES_PGSHIFT) - 1);
    let mut parts: Vec<String> = PAGEFLAG_NAMES.iter().filter(|(bit, _)| main & (1 << bit) != 0).map(|(_, n)| n.to_string()).collect();
    parts.push(format!("zone={}", flags >> ZONES_PGSHIFT));
    format!("{flags:#x}({})", parts.join("|"))
}

/// `dump_page(page, reason)` of `pfn` (`index`: `page->index`, the VA's
/// page number for an anonymous page): its lines, without log prefix.
pub fn dump_page(s: &Snapshot, pfn: u32, index: u32, reason: &str) -> Vec<String> {
    let Some(p) = s.page(pfn) else { return Vec::new() };
    let page = s.desc.page_array_va.wrapping_add(pfn.wrapping_sub(s.desc.base_pfn).wrapping_mul(32));
    // page->_mapcount of a slab page holds the slab's own data
    let mapcount = if p.has(PG_SLAB) { 0 } else { p.mapcount.saturating_add(1) };
    let anon = p.has(PG_ANON);
    let cma = s.pageblock_mt(pfn) == Some(MIGRATE_CMA);
    let raw: Vec<String> = as_bytes(p).chunks(4).map(|w| format!("{:08x}", u32::from_le_bytes([w[0], w[1], w[2], w[3]]))).collect();
    vec![
        format!("page:{page:08x} refcount:{} mapcount:{mapcount} mapping:00000000 index:{:#x} pfn:{pfn:#x}", p.refcount, if anon { index } else { 0 }),
        format!("{}flags: {}{}", if anon { "anon " } else { "" }, format_page_flags(linux_flags(p)), if cma { " CMA" } else { "" }),
        format!("raw: {}", raw.join(" ")),
        format!("page dumped because: {reason}"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_read_as_linux_prints_them() {
        let p = PageRecord { flags: PG_LRU | PG_ANON | (1 << PG_ZONE_SHIFT), refcount: 2, mapcount: 0, ..PageRecord::INIT };
        assert_eq!(format_page_flags(linux_flags(&p)), "0x40080014(uptodate|lru|swapbacked|zone=1)");
        let k = PageRecord { flags: PG_RESERVED, ..PageRecord::INIT };
        assert_eq!(format_page_flags(linux_flags(&k)), "0x1000(reserved|zone=0)");
        assert_eq!(format_page_flags(0), "0x0(zone=0)");
    }
}
