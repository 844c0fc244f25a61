//! Named edge cases of the per-cpu page lists over a host `Vec` of page
//! records, with the values 6.1 computes for the vexpress board.
use super::*;
use crate::buddy::tests::{boot, boot_opts};
use crate::gfp::*;
use crate::profile::MmProfile;

const RAM: u32 = 0x60000;

#[test]
fn batchsize_and_highsize_as_6_1_computes_them() {
    // zone_batchsize: min(managed >> 10, 256) / 4, then 2^n - 1.
    assert_eq!(zone_batchsize(0), 0);
    assert_eq!(zone_batchsize(196608), 63); // 768 MiB Normal
    assert_eq!(zone_batchsize(65536), 15); // 256 MiB HighMem
    assert_eq!(zone_batchsize(4096), 0); // 16 MiB: batch 1 -> 2^0 - 1
    assert_eq!(zone_batchsize(8192), 1);
    assert_eq!(zone_batchsize(24576), 7); // 96 MiB: 24 / 4 = 6, 6 + 3 = 9 -> 8 - 1
    assert_eq!(zone_highsize(1107, 63, 0), 1107);
    assert_eq!(zone_highsize(100, 63, 0), 252);
}

#[test]
fn boot_1g_debian_pagesets() {
    let pa = boot(MmProfile::DEBIAN_6_1, RAM, 1 << 18);
    // Without setup_per_cpu_pageset: still the boot pageset.
    assert_eq!((pa.zones[0].pcp.high, pa.zones[0].pcp.batch), (0, 1));
    let pa = boot_pcp(MmProfile::DEBIAN_6_1, 1 << 18, &[]);
    let (n, h) = (&pa.zones[0], &pa.zones[2]);
    assert_eq!((n.pcp.high, n.pcp.batch), (1107, 63));
    assert_eq!((h.pcp.high, h.pcp.batch), (137, 15));
    assert_eq!((n.stat_threshold, h.stat_threshold), (8, 6));
    // Normal (all lowmem is DMA) and Movable are empty: boot pagesets.
    assert!(!pa.zones[1].pcp_ready);
    assert!(!pa.zones[3].pcp_ready);
}

/// A booted allocator with per-cpu pagesets; `cma` pageblocks at the top.
fn boot_pcp(profile: MmProfile, nr_pages: u32, cma: &[u32]) -> crate::buddy::PageAlloc<'static> {
    let reserved: Vec<(u32, u32)> = cma.iter().map(|&b| (b, b + profile.pageblock_nr_pages())).collect();
    boot_opts(profile, RAM, nr_pages, &reserved, None, cma, true)
}

/// 64 MiB Debian board: Normal only (16384 pages), one CMA pageblock.
fn small_board() -> crate::buddy::PageAlloc<'static> {
    boot_pcp(MmProfile::DEBIAN_6_1, 16384, &[RAM + 16384 - 2048])
}

fn list(pa: &crate::buddy::PageAlloc, zid: usize, pindex: usize) -> Vec<u32> {
    let mut v = Vec::new();
    let mut cur = pa.zones[zid].pcp.lists[pindex].head;
    while cur != PFN_NONE {
        v.push(cur);
        cur = pa.mem.page(Pfn(cur)).unwrap().lru_next;
    }
    v
}

#[test]
fn small_zone_values() {
    let pa = small_board();
    let z = &pa.zones[0];
    // managed 16384: 16384 >> 10 = 16, / 4 = 4, 4 + 2 = 6 -> 4 - 1 = 3.
    assert_eq!(z.pcp.batch, 3);
    assert_eq!(z.pcp.high, z.low_wmark_pages() as u32);
    assert!(z.pcp.high > 4 * 3);
}

#[test]
fn refill_takes_batch_and_frees_are_lifo_and_not_in_memfree() {
    let mut pa = small_board();
    let free0 = pa.nr_free_pages();
    let batch = pa.zones[0].pcp.batch;
    let a = pa.__alloc_pages(GFP_KERNEL, 0).unwrap();
    // rmqueue_bulk moved `batch` pages off the buddy; one was handed out.
    assert_eq!(pa.nr_free_pages(), free0 - batch as u64);
    assert_eq!(pa.zones[0].pcp.count, batch - 1);
    let rest = list(&pa, 0, order_to_pindex(MigrateType::Unmovable, 0));
    assert_eq!(rest.len() as u32, batch - 1);
    // The refill is in physical order (expand() hands out ascending pfns).
    assert!(rest.windows(2).all(|w| w[0] < w[1]) && rest[0] > a.0, "{a:?} {rest:x?}");
    // Freeing puts the page at the head of its list; MemFree does not move.
    pa.__free_pages(a, 0).unwrap();
    assert_eq!(pa.nr_free_pages(), free0 - batch as u64);
    assert_eq!(pa.zones[0].pcp.count, batch);
    assert!(pa.mem.page(a).unwrap().has(PG_PCP));
    // ... and the next allocation of that type gets it back (LIFO).
    assert_eq!(pa.__alloc_pages(GFP_KERNEL, 0).unwrap(), a);
    // Another migratetype has its own list.
    let m = pa.__alloc_pages(GFP_HIGHUSER_MOVABLE, 0).unwrap();
    assert!(list(&pa, 0, order_to_pindex(MigrateType::Unmovable, 0)).len() as u32 == batch - 1);
    assert_ne!(m, a);
    pa.check_integrity().unwrap();
}

#[test]
fn order_scaled_refill_and_costly_orders_bypass() {
    let mut pa = small_board();
    let batch = pa.zones[0].pcp.batch; // 3: order 1 refills max(3 >> 1, 2) = 2
    let p = pa.__alloc_pages(GFP_KERNEL, 1).unwrap();
    assert_eq!(pa.zones[0].pcp.count, 2);
    assert_eq!(list(&pa, 0, order_to_pindex(MigrateType::Unmovable, 1)).len(), 1);
    let _ = (p, batch);
    // Order 4 is above PAGE_ALLOC_COSTLY_ORDER: straight from/to the buddy.
    let before = pa.zones[0].pcp.count;
    let big = pa.__alloc_pages(GFP_KERNEL, 4).unwrap();
    assert_eq!(pa.zones[0].pcp.count, before);
    let free = pa.nr_free_pages();
    pa.__free_pages(big, 4).unwrap();
    assert_eq!(pa.nr_free_pages(), free + 16);
    assert_eq!(pa.zones[0].pcp.count, before);
}

#[test]
fn reaching_high_frees_batches_oldest_first_with_growing_free_factor() {
    let mut pa = small_board();
    let (high, batch) = (pa.zones[0].pcp.high, pa.zones[0].pcp.batch);
    // Take enough pages, then free them all without allocating between.
    let n = 3 * high;
    let pages: Vec<Pfn> = (0..n).map(|_| pa.__alloc_pages(GFP_KERNEL, 0).unwrap()).collect();
    pa.drain_all_pages(None);
    let free0 = pa.nr_free_pages();
    let mut freed_to_buddy = Vec::new();
    let mut last = free0;
    for (i, &p) in pages.iter().enumerate() {
        pa.__free_pages(p, 0).unwrap();
        let now = pa.nr_free_pages();
        if now != last {
            freed_to_buddy.push((i as u32 + 1, now - last));
            last = now;
        }
        assert!(pa.zones[0].pcp.count < high, "count {} high {}", pa.zones[0].pcp.count, high);
    }
    // First overflow at count == high frees `batch`, then 2*batch, 4*...
    // (free_factor grows while batch << factor < high - batch, capped at
    // CONFIG_PCP_BATCH_SCALE_MAX), always leaving at least `batch`.
    assert_eq!(freed_to_buddy[0], (high, batch as u64));
    let mut factor = 0u32;
    let mut count = high - batch;
    let mut expect = vec![(high, batch as u64)];
    if batch < high - batch {
        factor = 1;
    }
    for i in high + 1..=n {
        count += 1;
        if count >= high {
            let mut b = batch << factor;
            if b < high - batch && factor < PCP_BATCH_SCALE_MAX {
                factor += 1;
            }
            b = b.max(batch).min(high - batch);
            expect.push((i, b as u64));
            count -= b;
        }
    }
    assert_eq!(freed_to_buddy, expect);
    // The oldest frees went back first: the first page freed is in the
    // buddy, the last one is on the list head.
    assert!(!pa.mem.page(pages[0]).unwrap().has(PG_PCP));
    assert_eq!(pa.zones[0].pcp.lists[order_to_pindex(MigrateType::Unmovable, 0)].head, pages[n as usize - 1].0);
    // An allocation halves free_factor.
    let f = pa.zones[0].pcp.free_factor;
    pa.__alloc_pages(GFP_KERNEL, 0).unwrap();
    assert_eq!(pa.zones[0].pcp.free_factor, f >> 1);
    pa.check_integrity().unwrap();
}

#[test]
fn cma_pages_ride_on_the_movable_list_and_drain_restores_counters() {
    let mut pa = small_board();
    let cma_free0 = pa.nr_free_cma_pages();
    let free0 = pa.nr_free_pages();
    // Movable requests take CMA first once CMA is over half of free... not
    // here (1 pageblock of 16): allocate until a CMA page shows up.
    let mut got = Vec::new();
    let cma_pfn = loop {
        let p = pa.__alloc_pages(GFP_HIGHUSER_MOVABLE, 0).unwrap();
        got.push(p);
        if pa.mem.get_pageblock_migratetype(p).is_cma() {
            break p;
        }
        if got.len() > 20000 {
            panic!("no CMA page handed out");
        }
    };
    pa.__free_pages(cma_pfn, 0).unwrap();
    let pi = order_to_pindex(MigrateType::Movable, 0);
    assert_eq!(pa.zones[0].pcp.lists[pi].head, cma_pfn.0);
    assert_eq!(pa.mem.page(cma_pfn).unwrap().list_mt(), MigrateType::Cma as u8);
    // the oracle's cmastat: the CMA page is neither free nor in use
    assert!(pa.pcp_cma_pages(0) >= 1);
    for p in got.into_iter().filter(|&p| p != cma_pfn) {
        pa.__free_pages(p, 0).unwrap();
    }
    assert!(pa.nr_pcp_pages() > 0);
    // every CMA page is back: free, or parked on a list
    assert_eq!(pa.nr_free_cma_pages() + pa.pcp_cma_pages(0), cma_free0);
    assert!(pa.nr_free_cma_pages() < cma_free0 || pa.nr_free_pages() < free0);
    pa.drain_all_pages(None);
    assert_eq!((pa.nr_pcp_pages(), pa.pcp_cma_pages(0)), (0, 0));
    assert_eq!((pa.nr_free_pages(), pa.nr_free_cma_pages()), (free0, cma_free0));
    pa.check_integrity().unwrap();
}

#[test]
fn isolated_pageblocks_bypass_the_lists_and_drain_onto_the_isolate_list() {
    let mut pa = small_board();
    let cma = Pfn(RAM + 16384 - 2048);
    // A CMA page on the pcp list, then its pageblock isolated.
    let mut held = Vec::new();
    let p = loop {
        let p = pa.__alloc_pages(GFP_HIGHUSER_MOVABLE, 0).unwrap();
        if pa.mem.get_pageblock_migratetype(p).is_cma() {
            break p;
        }
        held.push(p);
    };
    let q = pa.__alloc_pages(GFP_HIGHUSER_MOVABLE, 0).unwrap();
    assert!(pa.mem.get_pageblock_migratetype(q).is_cma());
    pa.__free_pages(p, 0).unwrap();
    assert!(pa.mem.page(p).unwrap().has(PG_PCP));
    pa.start_isolate_page_range(cma, Pfn(cma.0 + 2048), MigrateType::Cma, 0).unwrap();
    // Still on the list: test_pages_isolated fails until drained.
    assert!(pa.test_pages_isolated(p, Pfn(p.0 + 1), 0).is_err());
    // A page freed into an isolated pageblock goes straight to the buddy.
    let pgfree = pa.events.pgfree;
    pa.__free_pages(q, 0).unwrap();
    assert!(pa.mem.page(q).unwrap().has(PG_BUDDY));
    assert_eq!(pa.events.pgfree, pgfree, "6.1 counts no PGFREE there");
    pa.drain_all_pages(Some(0));
    assert!(!pa.mem.page(p).unwrap().has(PG_PCP));
    assert!(pa.test_pages_isolated(cma, Pfn(cma.0 + 2048), 0).is_ok());
    pa.undo_isolate_page_range(cma, Pfn(cma.0 + 2048), MigrateType::Cma);
    for h in held {
        pa.__free_pages(h, 0).unwrap();
    }
    pa.check_integrity().unwrap();
}

#[test]
fn double_free_of_a_pcp_page_is_refused() {
    let mut pa = small_board();
    let p = pa.__alloc_pages(GFP_KERNEL, 0).unwrap();
    pa.__free_pages(p, 0).unwrap();
    let before = *pa.mem.page(p).unwrap();
    assert!(matches!(pa.__free_pages(p, 0), Err(crate::buddy::BuddyError::DoubleFree(_))));
    assert_eq!(*pa.mem.page(p).unwrap(), before);
    // An order-1 free whose second page sits on a pcp list is refused too.
    let b = pa.__alloc_pages(GFP_KERNEL, 1).unwrap();
    pa.split_page(b, 1).unwrap();
    pa.__free_pages(Pfn(b.0 + 1), 0).unwrap();
    assert!(pa.__free_pages(b, 1).is_err());
    pa.check_integrity().unwrap();
}

#[test]
fn slow_path_drains_before_failing() {
    let mut pa = small_board();
    // Exhaust all memory (reserves and CMA included), then free 8 pages:
    // they sit on the pcp list.
    let mut v = Vec::new();
    for gfp in [GFP_KERNEL | __GFP_MEMALLOC, GFP_HIGHUSER_MOVABLE | __GFP_MEMALLOC] {
        while let Ok(p) = pa.__alloc_pages(gfp, 0) {
            v.push(p);
        }
    }
    pa.drain_all_pages(None);
    assert_eq!(pa.nr_free_pages(), 0);
    // Put back 8 aligned pages so that an order-3 block can form in the
    // buddy only once they leave the pcp list.
    let mut freed = 0;
    v.sort();
    for w in v.windows(8) {
        if w[0].0 % 8 == 0 && w[7].0 == w[0].0 + 7 {
            for &p in w {
                pa.__free_pages(p, 0).unwrap();
            }
            freed = 8;
            break;
        }
    }
    assert_eq!(freed, 8);
    let pcp = pa.nr_pcp_pages();
    assert!(pcp >= 8, "pages should be parked on the pcp lists");
    // A high-order GFP_KERNEL|__GFP_MEMALLOC request: the fast path fails,
    // the drain in the slow path lets it succeed.
    let r = pa.__alloc_pages(GFP_KERNEL | __GFP_MEMALLOC, 3);
    assert!(r.is_ok(), "{r:?}");
    pa.check_integrity().unwrap();
}
