//! Named edge cases of the buddy allocator over a host `Vec` of page records.
use super::*;
use crate::isolation::IsolationError;
use crate::zone::zone_sizes_init;

/// A booted allocator over leaked host memory: RAM `[start, start + pages)`,
/// frames in `reserved` kept back (memblock-reserved), `vmalloc=` optional.
pub(crate) fn boot_with(profile: MmProfile, start: u32, nr_pages: u32, reserved: &[(u32, u32)], vmalloc: Option<u64>) -> PageAlloc<'static> {
    boot_full(profile, start, nr_pages, reserved, vmalloc, &[])
}

/// [`boot_with`] plus CMA pageblocks (inside `reserved`) activated before
/// the watermarks are computed, as `cma_init_reserved_areas` (a core
/// initcall) runs before `init_per_zone_wmark_min` (postcore).
pub(crate) fn boot_full(profile: MmProfile, start: u32, nr_pages: u32, reserved: &[(u32, u32)], vmalloc: Option<u64>, cma_blocks: &[u32]) -> PageAlloc<'static> {
    boot_opts(profile, start, nr_pages, reserved, vmalloc, cma_blocks, false)
}

/// [`boot_full`], with `setup_per_cpu_pageset` (between `mm_init` and the
/// initcalls, as `start_kernel` runs it) when `pcp` is set; without it
/// every zone keeps the boot pageset, which hands each page straight on.
pub(crate) fn boot_opts(profile: MmProfile, start: u32, nr_pages: u32, reserved: &[(u32, u32)], vmalloc: Option<u64>, cma_blocks: &[u32], pcp: bool) -> PageAlloc<'static> {
    let ram = [(Pfn(start).phys(), Pfn(start + nr_pages).phys())];
    let layout = zone_sizes_init(&profile, &ram, vmalloc).unwrap();
    let pages: &'static mut [PageRecord] = Vec::leak(vec![PageRecord::INIT; nr_pages as usize]);
    let words = MemMap::pageblock_words_needed(Pfn(start), nr_pages, profile.pageblock_order);
    let words: &'static mut [u32] = Vec::leak(vec![0u32; words]);
    let mem = MemMap::new(pages, Pfn(start), words, profile.pageblock_order).unwrap();
    let mut pa = PageAlloc::new(profile, &layout, mem).unwrap();
    pa.build_all_zonelists();
    // memblock_free_all: every range not reserved.
    let mut cur = start;
    let mut rs: Vec<(u32, u32)> = reserved.to_vec();
    rs.sort();
    for (s, e) in rs {
        if s > cur {
            pa.memblock_free_pages(Pfn(cur), Pfn(s)).unwrap();
        }
        cur = cur.max(e);
    }
    if cur < start + nr_pages {
        pa.memblock_free_pages(Pfn(cur), Pfn(start + nr_pages)).unwrap();
    }
    if pcp {
        pa.setup_per_cpu_pageset();
    }
    for &b in cma_blocks {
        pa.init_cma_reserved_pageblock(Pfn(b)).unwrap();
        pa.totalcma_pages += profile.pageblock_nr_pages() as u64;
    }
    pa.init_per_zone_wmark_min();
    pa.check_integrity().unwrap();
    pa
}

/// [`boot_with`] without reservations or `vmalloc=`.
pub(crate) fn boot(profile: MmProfile, start: u32, nr_pages: u32) -> PageAlloc<'static> {
    boot_with(profile, start, nr_pages, &[], None)
}

/// A small profile where blocks span several pageblocks (order 7 blocks,
/// order 4 pageblocks), to reach the `order >= pageblock_order` rules.
pub(crate) const SMALL: MmProfile = MmProfile { name: "small", max_order: 8, pageblock_order: 4, vmsplit: crate::profile::VmSplit::Split3G, highmem: true, zone_dma: false, highpte: false };

const RAM: u32 = 0x60000;

fn nr_free(pa: &PageAlloc, zid: usize, order: u32) -> u64 {
    pa.zones[zid].free_area[order as usize].nr_free
}

#[test]
fn boot_1g_debian_watermarks_and_buddyinfo() {
    let pa = boot(MmProfile::DEBIAN_6_1, RAM, 1 << 18);
    // ZONE_DMA holds all lowmem; Normal is empty.
    let (n, e, h) = (&pa.zones[0], &pa.zones[1], &pa.zones[2]);
    assert_eq!((n.kind, n.managed_pages), (ZoneType::Dma, 196608));
    assert_eq!((e.kind, e.managed_pages, e.spanned_pages), (ZoneType::Normal, 0, 0));
    assert_eq!((h.kind, h.managed_pages), (ZoneType::HighMem, 65536));
    // min_free_kbytes = int_sqrt(196608 * 4 * 16) = 3547
    assert_eq!(pa.min_free_kbytes, 3547);
    assert_eq!(n.watermark[..3], [886, 1107, 1328]);
    assert_eq!(h.watermark[..3], [64, 137, 210]);
    // sysctl_lowmem_reserve_ratio[ZONE_DMA] = 256: 65536 / 256
    assert_eq!(n.lowmem_reserve[..4], [0, 0, 256, 256]);
    assert_eq!(pa.totalreserve_pages, 256 + 1328 + 210);
    // Everything merged to MAX_ORDER - 1 = 11 (8 MiB blocks).
    assert_eq!(nr_free(&pa, 0, 11), 96);
    assert_eq!(nr_free(&pa, 2, 11), 32);
    assert_eq!(pa.nr_free_pages(), 1 << 18);
    assert_eq!(pa.check_integrity().unwrap(), 1 << 18);
}

#[test]
fn merge_at_max_order_stops_and_reforms() {
    let mut pa = boot(MmProfile::BISCUITOS_5_0, RAM, 8192);
    // 8 blocks of order 10 (MAX_ORDER - 1), never order 11.
    assert_eq!(nr_free(&pa, 0, 10), 8);
    let a = pa.__alloc_pages(GFP_KERNEL, 9).unwrap();
    let b = pa.__alloc_pages(GFP_KERNEL, 9).unwrap();
    assert_eq!(a.0 ^ b.0, 1 << 9, "the two halves of one block are buddies");
    assert_eq!(nr_free(&pa, 0, 10), 7);
    pa.__free_pages(a, 9).unwrap();
    assert_eq!(nr_free(&pa, 0, 9), 1);
    pa.__free_pages(b, 9).unwrap();
    assert_eq!((nr_free(&pa, 0, 9), nr_free(&pa, 0, 10)), (0, 8));
    // Two adjacent order-10 blocks are buddies at order 10 but never merge.
    assert!(pa.find_buddy_page_pfn(0, RAM, 10).is_some());
    pa.check_integrity().unwrap();
}

#[test]
fn no_merge_across_isolated_pageblock() {
    // SMALL: pageblock = 16 pages, blocks up to 128 pages.
    let mut pa = boot_with(SMALL, RAM, 1024, &[], Some(976 << 20));
    let zid = 0;
    let pfn = pa.__alloc_pages(GFP_KERNEL, 5).unwrap(); // two pageblocks
    let (lo, hi) = (pfn, Pfn(pfn.0 + 16));
    // (Linux: the tails of a non-compound allocation have refcount 0, so
    // `has_unmovable_pages` would not even object to isolating `hi` now.)
    // Free the upper pageblock's pages by splitting the allocation first.
    pa.split_page(pfn, 5).unwrap();
    for i in 16..32 {
        pa.__free_pages(Pfn(pfn.0 + i), 0).unwrap();
    }
    pa.set_migratetype_isolate(hi, MigrateType::Unmovable, 0, hi, Pfn(hi.0 + 16)).unwrap();
    assert!(pa.has_isolate_pageblock(zid));
    let free_before = pa.zones[zid].nr_free_pages;
    for i in 0..16 {
        pa.__free_pages(Pfn(lo.0 + i), 0).unwrap();
    }
    // lo's block merged up to order 4 (its pageblock) and stopped there:
    // its buddy pageblock is isolated.
    assert!(pa.page_buddy(lo) && pa.buddy_order(lo) == 4);
    assert!(pa.page_buddy(hi) && pa.buddy_order(hi) == 4);
    assert_eq!(pa.zones[zid].nr_free_pages, free_before + 16, "isolated pages do not count");
    pa.check_integrity().unwrap();
    // Undoing the isolation merges them (and further up).
    pa.unset_migratetype_isolate(hi, MigrateType::Unmovable);
    assert!(!pa.page_buddy(hi) || pa.buddy_order(hi) == 4);
    assert!(pa.page_buddy(lo) && pa.buddy_order(lo) >= 5);
    pa.check_integrity().unwrap();
}

#[test]
fn isolated_pageblock_merges_inside_but_is_not_free() {
    let mut pa = boot(MmProfile::BISCUITOS_5_0, RAM, 8192);
    let free0 = pa.nr_free_pages();
    let blk = Pfn(RAM + 1024);
    pa.set_migratetype_isolate(blk, MigrateType::Movable, 0, blk, Pfn(blk.0 + 1024)).unwrap();
    assert_eq!(pa.nr_free_pages(), free0 - 1024);
    assert_eq!(pa.set_migratetype_isolate(blk, MigrateType::Movable, 0, blk, Pfn(blk.0 + 1024)), Err(IsolationError::Busy(blk)));
    // Allocations never come from the isolated block.
    let mut got = Vec::new();
    while let Ok(p) = pa.__alloc_pages(GFP_HIGHUSER_MOVABLE | __GFP_MEMALLOC, 6) {
        assert!(!(blk.0..blk.0 + 1024).contains(&p.0));
        got.push(p);
    }
    assert_eq!(got.len(), 7 * 16);
    pa.test_pages_isolated(blk, Pfn(blk.0 + 1024), 0).unwrap();
    pa.unset_migratetype_isolate(blk, MigrateType::Movable);
    assert_eq!(pa.nr_free_pages(), 1024);
    for p in got {
        pa.__free_pages(p, 6).unwrap();
    }
    assert_eq!(pa.nr_free_pages(), free0);
    pa.check_integrity().unwrap();
}

#[test]
fn fallback_steals_a_whole_pageblock() {
    let mut pa = boot(MmProfile::BISCUITOS_5_0, RAM, 8192);
    for b in 0..8 {
        assert_eq!(pa.mem.get_pageblock_migratetype(Pfn(RAM + b * 1024)), MigrateType::Movable);
    }
    // An unmovable order-0 request finds no UNMOVABLE page: it takes the
    // largest MOVABLE block (order 10 >= pageblock_order) and claims it.
    let p = pa.__alloc_pages(GFP_KERNEL, 0).unwrap();
    let blk = pa.mem.pageblock_start_pfn(p);
    assert_eq!(pa.mem.get_pageblock_migratetype(blk), MigrateType::Unmovable);
    let unmovable_free: u64 = (0..10).map(|o| {
        let mut n = 0;
        let mut c = pa.get_page_from_free_area(0, o, MigrateType::Unmovable);
        while let Some(x) = c {
            n += 1 << o;
            let nx = pa.mem.p(x).lru_next;
            c = (nx != PFN_NONE).then_some(nx);
        }
        n
    }).sum();
    assert_eq!(unmovable_free, 1023, "the rest of the stolen block is on UNMOVABLE lists");
    // The next unmovable allocation comes from the same pageblock.
    let q = pa.__alloc_pages(GFP_KERNEL, 3).unwrap();
    assert_eq!(pa.mem.pageblock_start_pfn(q), blk);
    pa.check_integrity().unwrap();
}

#[test]
fn fallback_claims_a_pageblock_when_half_is_free() {
    let mut pa = boot(MmProfile::BISCUITOS_5_0, RAM, 8192);
    // Fill 7 pageblocks with movable pages, half of the 8th too.
    for _ in 0..7 {
        pa.__alloc_pages(GFP_HIGHUSER_MOVABLE, 10).unwrap();
    }
    let x = pa.__alloc_pages(GFP_HIGHUSER_MOVABLE, 9).unwrap();
    let last = pa.mem.pageblock_start_pfn(x);
    assert_eq!(pa.nr_free_pages(), 512);
    // Only 512 pages of `last` are free, in one order-9 block: an
    // unmovable order-0 request steals from it. order 9 < pageblock order,
    // but unmovable requests may always steal; free (512) + alike (the
    // in-use pages not marked LRU/movable: 512) >= 512: claimed.
    let u = pa.__alloc_pages(GFP_KERNEL, 0).unwrap();
    assert_eq!(pa.mem.pageblock_start_pfn(u), last);
    assert_eq!(pa.mem.get_pageblock_migratetype(last), MigrateType::Unmovable);
    pa.check_integrity().unwrap();
}

#[test]
fn fallback_for_movable_does_not_claim_a_mostly_used_pageblock() {
    let mut pa = boot(MmProfile::BISCUITOS_5_0, RAM, 8192);
    // Make every pageblock UNMOVABLE by unmovable allocations, then free
    // them: free pages now sit on UNMOVABLE lists.
    let mut ps = Vec::new();
    for _ in 0..8 {
        ps.push(pa.__alloc_pages(GFP_KERNEL | __GFP_MEMALLOC, 10).unwrap());
    }
    for b in 0..8 {
        assert_eq!(pa.mem.get_pageblock_migratetype(Pfn(RAM + b * 1024)), MigrateType::Unmovable);
    }
    // Keep 3/4 of block 0 in use (split so the rest can be freed).
    pa.split_page(ps[0], 10).unwrap();
    for i in 768..1024 {
        pa.__free_pages(Pfn(ps[0].0 + i), 0).unwrap();
    }
    for &p in &ps[1..] {
        pa.__free_pages(p, 10).unwrap();
    }
    // A movable order-0 request falls back; blocks of order 10 are whole
    // pageblocks: the largest fallback is stolen whole.
    let m = pa.__alloc_pages(GFP_HIGHUSER_MOVABLE, 0).unwrap();
    assert_ne!(pa.mem.pageblock_start_pfn(m), ps[0]);
    assert_eq!(pa.mem.get_pageblock_migratetype(pa.mem.pageblock_start_pfn(m)), MigrateType::Movable);
    // Use up the other free pageblocks movably; then the only fallback is
    // block 0's 256 free pages: a movable order-0 request takes the
    // smallest block without claiming the pageblock (256 free < 512).
    let mut got = Vec::new();
    while let Ok(p) = pa.__alloc_pages(GFP_HIGHUSER_MOVABLE | __GFP_MEMALLOC, 0) {
        if pa.mem.pageblock_start_pfn(p) == ps[0] {
            got.push(p);
            break;
        }
    }
    assert_eq!(got.len(), 1);
    assert_eq!(pa.mem.get_pageblock_migratetype(ps[0]), MigrateType::Unmovable);
    pa.check_integrity().unwrap();
}

#[test]
fn tiny_memory_disables_grouping_by_mobility() {
    // Fewer pages than pageblock_nr_pages * MIGRATE_TYPES (6144).
    let mut pa = boot(MmProfile::BISCUITOS_5_0, RAM, 4096);
    assert!(pa.page_group_by_mobility_disabled);
    let p = pa.__alloc_pages(GFP_HIGHUSER_MOVABLE, 0).unwrap();
    assert_eq!(pa.mem.get_pageblock_migratetype(p), MigrateType::Unmovable);
    let pa = boot(MmProfile::BISCUITOS_5_0, RAM, 6144);
    assert!(!pa.page_group_by_mobility_disabled);
}

fn boot_with_cma(profile: MmProfile, nr_pages: u32, cma_blocks: u32) -> PageAlloc<'static> {
    let pb = profile.pageblock_nr_pages();
    let cma_start = RAM + nr_pages - cma_blocks * pb;
    let blocks: Vec<u32> = (0..cma_blocks).map(|b| cma_start + b * pb).collect();
    boot_full(profile, RAM, nr_pages, &[(cma_start, RAM + nr_pages)], None, &blocks)
}

#[test]
fn cma_only_for_movable() {
    // 8 pageblocks, 6 of them CMA.
    let mut pa = boot_with_cma(MmProfile::BISCUITOS_5_0, 8192, 6);
    assert_eq!(pa.zones[0].cma_pages, 6144);
    assert_eq!(pa.nr_free_cma_pages(), 6144);
    let cma = RAM + 2048;
    // Unmovable allocations never land in CMA, however much is free there.
    let mut un = Vec::new();
    while let Ok(p) = pa.__alloc_pages(GFP_KERNEL | __GFP_MEMALLOC, 0) {
        assert!(p.0 < cma, "unmovable page {:#x} in CMA", p.0);
        un.push(p);
    }
    assert_eq!(un.len(), 2048);
    assert_eq!(pa.nr_free_cma_pages(), 6144);
    // Movable ones do.
    let m = pa.__alloc_pages(GFP_HIGHUSER_MOVABLE, 0).unwrap();
    assert!(m.0 >= cma);
    assert_eq!(pa.nr_free_cma_pages(), 6143);
    // CMA pageblocks were never stolen.
    for b in 0..6 {
        assert_eq!(pa.mem.get_pageblock_migratetype(Pfn(cma + b * 1024)), MigrateType::Cma);
    }
    for p in un {
        pa.__free_pages(p, 0).unwrap();
    }
    pa.__free_pages(m, 0).unwrap();
    assert_eq!(pa.nr_free_cma_pages(), 6144);
    pa.check_integrity().unwrap();
}

#[test]
fn movable_takes_cma_first_when_over_half_free() {
    // 8 pageblocks, 5 CMA: free CMA (5120) > free (8192) / 2.
    let mut pa = boot_with_cma(MmProfile::BISCUITOS_5_0, 8192, 5);
    let cma = RAM + 3 * 1024;
    let p = pa.__alloc_pages(GFP_HIGHUSER_MOVABLE, 0).unwrap();
    assert!(p.0 >= cma, "over half free is CMA: CMA first");
    // 3 CMA blocks: free CMA (3072) < free (8192) / 2: movable lists first.
    let mut pa = boot_with_cma(MmProfile::BISCUITOS_5_0, 8192, 3);
    let cma = RAM + 5 * 1024;
    let p = pa.__alloc_pages(GFP_HIGHUSER_MOVABLE, 0).unwrap();
    assert!(p.0 < cma, "CMA under half of free: regular movable first");
    // Exhaust the non-CMA pages: movable falls back to CMA before
    // stealing from other types.
    let mut n = 0;
    while let Ok(q) = pa.__alloc_pages(GFP_HIGHUSER_MOVABLE, 0) {
        n += 1;
        if q.0 >= cma {
            break;
        }
    }
    assert!(n > 0);
    // CMA was taken while regular movable pages were still free: the
    // rule flipped as soon as CMA became more than half of what is free.
    let z = &pa.zones[0];
    assert!(z.free_pages() > z.free_cma_pages());
    pa.check_integrity().unwrap();
}

#[test]
fn watermark_without_alloc_cma_ignores_free_cma() {
    let mut pa = boot_with_cma(MmProfile::BISCUITOS_5_0, 8192, 6);
    // Take nearly all non-CMA pages with __GFP_MEMALLOC (no watermarks).
    let mut keep = Vec::new();
    for _ in 0..2024 {
        keep.push(pa.__alloc_pages(GFP_KERNEL | __GFP_MEMALLOC, 0).unwrap());
    }
    let z = &pa.zones[0];
    let free = z.free_pages();
    let min = z.min_wmark_pages();
    assert!(free > min + 2900, "plenty free overall: {} vs min {}", free, min);
    // Without ALLOC_CMA the 6144 free CMA pages do not count.
    assert!(!pa.zone_watermark_ok(0, 0, min, 0, 0));
    assert!(pa.zone_watermark_ok(0, 0, min, 0, ALLOC_CMA));
    // So an unmovable request fails while a movable one succeeds.
    assert_eq!(pa.__alloc_pages(GFP_KERNEL, 0), Err(BuddyError::NoMemory { order: 0 }));
    assert!(pa.__alloc_pages(GFP_HIGHUSER_MOVABLE, 0).is_ok());
    // High-order check: CMA free blocks count only with ALLOC_CMA.
    assert!(pa.zone_watermark_ok(0, 10, 0, 0, ALLOC_CMA));
    pa.check_integrity().unwrap();
}

#[test]
fn highmem_falls_back_to_normal_but_normal_never_to_highmem() {
    // 64 MiB with vmalloc=976M: lowmem 40 MiB, HighMem 24 MiB.
    let mut pa = boot_with(MmProfile::DEBIAN_6_1, RAM, 16384, &[], Some(976 << 20));
    assert_eq!((pa.zones[0].managed_pages, pa.zones[2].managed_pages), (10240, 6144));
    let h = pa.zone_idx(ZoneType::HighMem).unwrap();
    let hz = pa.zones[h].clone();
    let p = pa.__alloc_pages(GFP_HIGHUSER, 0).unwrap();
    assert!(hz.zone_spans_pfn(p));
    let k = pa.__alloc_pages(GFP_KERNEL, 0).unwrap();
    assert!(!hz.zone_spans_pfn(k));
    // Exhaust HighMem down to its watermark: GFP_HIGHUSER spills to Normal.
    let mut spilled = false;
    for _ in 0..7000 {
        let q = pa.__alloc_pages(GFP_HIGHUSER_MOVABLE, 0).unwrap();
        if !hz.zone_spans_pfn(q) {
            spilled = true;
            break;
        }
    }
    assert!(spilled);
    assert!(pa.events.pgalloc[h] > 6000 && pa.events.pgalloc[0] >= 2);
    pa.check_integrity().unwrap();
}

#[test]
fn bad_frees_are_errors_not_ub() {
    let mut pa = boot_with(MmProfile::BISCUITOS_5_0, RAM, 2048, &[(RAM, RAM + 8)], None);
    let p = pa.__alloc_pages(GFP_KERNEL, 2).unwrap();
    pa.__free_pages(p, 2).unwrap();
    assert_eq!(pa.__free_pages(p, 2), Err(BuddyError::DoubleFree(p)));
    // A tail page of a free block.
    assert!(matches!(pa.__free_pages(Pfn(RAM + 1500), 0), Err(BuddyError::DoubleFree(_))));
    // Reserved page, misaligned, out of range, too large.
    assert_eq!(pa.__free_pages(Pfn(RAM), 0), Err(BuddyError::BadPage(Pfn(RAM), "PAGE_FLAGS_CHECK_AT_FREE flag(s) set")));
    assert_eq!(pa.__free_pages(Pfn(RAM + 1), 1), Err(BuddyError::Misaligned(Pfn(RAM + 1), 1)));
    assert_eq!(pa.__free_pages(Pfn(RAM - 1), 0), Err(BuddyError::OutOfRange(Pfn(RAM - 1))));
    assert_eq!(pa.__free_pages(Pfn(RAM), 11), Err(BuddyError::OrderTooLarge(11)));
    // Freeing at a larger order than allocated overlaps free pages.
    let q = pa.__alloc_pages(GFP_KERNEL, 0).unwrap();
    let r = Pfn(q.0 & !7);
    assert!(pa.__free_pages(r, 3).is_err());
    // A mapped page.
    pa.mem.page_mut(q).unwrap().mapcount = 0;
    assert_eq!(pa.__free_pages(q, 0), Err(BuddyError::BadPage(q, "nonzero mapcount")));
    pa.mem.page_mut(q).unwrap().mapcount = -1;
    pa.__free_pages(q, 0).unwrap();
    assert_eq!(pa.__alloc_pages(GFP_KERNEL, 12), Err(BuddyError::OrderTooLarge(12)));
    assert_eq!(pa.__alloc_pages(__GFP_DMA | __GFP_HIGHMEM, 0), Err(BuddyError::BadGfp(__GFP_DMA | __GFP_HIGHMEM)));
    pa.check_integrity().unwrap();
}

#[test]
fn shared_reference_frees_tail_halves_like_linux() {
    let mut pa = boot(MmProfile::BISCUITOS_5_0, RAM, 1024);
    let p = pa.__alloc_pages(GFP_KERNEL, 3).unwrap();
    pa.mem.page_mut(p).unwrap().refcount += 1; // a speculative reference
    let free = pa.nr_free_pages();
    pa.__free_pages(p, 3).unwrap();
    // The head page stays; pages 1..8 went back (4 + 2 + 1).
    assert_eq!(pa.nr_free_pages(), free + 7);
    assert_eq!(pa.mem.page(p).unwrap().refcount, 1);
    pa.__free_pages(p, 0).unwrap();
    assert_eq!(pa.nr_free_pages(), 1024);
    pa.check_integrity().unwrap();
}

#[test]
fn compound_pages_and_split() {
    let mut pa = boot(MmProfile::BISCUITOS_5_0, RAM, 1024);
    let c = pa.__alloc_pages(GFP_KERNEL | __GFP_COMP, 2).unwrap();
    assert!(pa.mem.page(c).unwrap().has(PG_HEAD));
    assert!(pa.mem.page(Pfn(c.0 + 3)).unwrap().has(PG_TAIL));
    assert!(pa.split_page(c, 2).is_err());
    pa.__free_pages(c, 2).unwrap();
    let s = pa.alloc_pages(GFP_KERNEL, 2, OWNER_KIND_DEVICE | 7).unwrap();
    pa.split_page(s, 2).unwrap();
    for i in 0..4 {
        assert_eq!(pa.mem.page(Pfn(s.0 + i)).unwrap().owner, OWNER_KIND_DEVICE | 7);
        pa.__free_pages(Pfn(s.0 + i), 0).unwrap();
        assert_eq!(pa.mem.page(Pfn(s.0 + i)).unwrap().owner, OWNER_NONE);
    }
    assert_eq!(pa.nr_free_pages(), 1024);
    pa.check_integrity().unwrap();
}

#[test]
fn highatomic_reserve_for_atomic_high_order() {
    let mut pa = boot(MmProfile::BISCUITOS_5_0, RAM, 8192);
    // Push the zone below the low watermark so the fast path fails and the
    // slow path (ALLOC_HIGHATOMIC for non-blocking high order) runs.
    let low = pa.zones[0].low_wmark_pages();
    let mut keep = Vec::new();
    while pa.zones[0].free_pages() > low - 8 {
        keep.push(pa.__alloc_pages(GFP_KERNEL | __GFP_MEMALLOC, 0).unwrap());
    }
    let a = pa.__alloc_pages(GFP_ATOMIC, 1).unwrap();
    let blk = pa.mem.pageblock_start_pfn(a);
    assert_eq!(pa.mem.get_pageblock_migratetype(blk), MigrateType::HighAtomic);
    assert_eq!(pa.zones[0].nr_reserved_highatomic, 1024);
    // Order-0 non-atomic requests do not get those pages.
    let hi_free = pa.zones[0].nr_reserved_highatomic;
    assert!(hi_free > 0);
    pa.check_integrity().unwrap();
    // Freed into the reserved block, the pages go to the HighAtomic list;
    // unreserve gives the block back to a blocking requester's type.
    pa.__free_pages(a, 1).unwrap();
    assert!(pa.get_page_from_free_area(0, 1, MigrateType::HighAtomic).is_some() || pa.get_page_from_free_area(0, 2, MigrateType::HighAtomic).is_some() || pa.zones[0].free_area.iter().any(|a| !a.free_area_empty(MigrateType::HighAtomic)));
    let ac = AllocContext { highest_zoneidx: 0, migratetype: MigrateType::Unmovable };
    assert!(pa.unreserve_highatomic_pageblock(&ac, true));
    assert_eq!(pa.zones[0].nr_reserved_highatomic, 0);
    assert_ne!(pa.mem.get_pageblock_migratetype(blk), MigrateType::HighAtomic);
    pa.check_integrity().unwrap();
}

#[test]
fn buddy_merge_likely_puts_block_at_tail() {
    let mut pa = boot(MmProfile::BISCUITOS_5_0, RAM, 8192);
    let ps: Vec<Pfn> = (0..8).map(|_| pa.__alloc_pages(GFP_HIGHUSER_MOVABLE, 0).unwrap()).collect();
    assert_eq!(ps.iter().map(|p| p.0 - RAM).collect::<Vec<_>>(), (0..8).collect::<Vec<_>>());
    let mv = MigrateType::Movable.idx();
    // 5: buddy 4 in use, and {4,5}'s buddy {6,7} in use: list head.
    pa.__free_pages(ps[5], 0).unwrap();
    // 3 then 2: they merge into an order-1 block at 2.
    pa.__free_pages(ps[3], 0).unwrap();
    pa.__free_pages(ps[2], 0).unwrap();
    assert_eq!(pa.zones[0].free_area[0].free_list[mv].head, RAM + 5);
    // 0: buddy 1 in use, but {0,1}'s buddy {2,3} is free at order 1: a
    // merge is likely soon, so 0 goes to the tail.
    pa.__free_pages(ps[0], 0).unwrap();
    let l = pa.zones[0].free_area[0].free_list[mv];
    assert_eq!((l.head, l.tail), (RAM + 5, RAM));
    for i in [1, 4, 6, 7] {
        pa.__free_pages(ps[i], 0).unwrap();
    }
    assert_eq!(pa.buddy_order(Pfn(RAM)), 10);
    pa.check_integrity().unwrap();
}

