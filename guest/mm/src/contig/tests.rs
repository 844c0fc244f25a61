//! alloc_contig_range tests over the fake kernel of the migration tests:
//! named edge cases, one test per fault-injection flag, and the property
//! test over random layouts.
//!
//! World: SMALL profile (16-page pageblocks, 128-page max-order blocks),
//! 2048 pages of RAM, a CMA area of 8 pageblocks at `AREA`.
use super::*;
use crate::buddy::PageAlloc;
use crate::migrate::tests::{World, RAM};
use crate::rmap::Rmap;
use std::collections::{BTreeMap, BTreeSet};
use std::vec::Vec;

const NR: u32 = 2048;
const AREA: u32 = RAM + 1024;
const AREA_PAGES: u32 = 128;

fn world() -> World {
    let blocks: Vec<u32> = (0..AREA_PAGES / 16).map(|i| AREA + 16 * i).collect();
    World::new(NR, &blocks)
}

/// Takes the whole area (all free at boot) so that tests can lay out
/// frames one by one; returns with every area page allocated (refcount 1).
fn grab_area(w: &mut World) {
    w.m().alloc_contig_range(Pfn(AREA), Pfn(AREA + AREA_PAGES), MigrateType::Cma, GFP_KERNEL).unwrap();
}

fn free(w: &mut World, pfn: u32) {
    w.pa.__free_pages(Pfn(pfn), 0).unwrap();
}

fn is_free(pa: &PageAlloc, pfn: u32) -> bool {
    // Covered by a free block?
    let mut o = 0;
    while o < pa.profile.max_order {
        let head = pfn & !((1 << o) - 1);
        if let Some(p) = pa.mem.page(Pfn(head)) {
            if p.has(PG_BUDDY) && p.private >= o && head + (1 << p.private) > pfn {
                return true;
            }
        }
        o += 1;
    }
    false
}

fn assert_allocated(w: &World, start: u32, end: u32, owner: Option<u32>) {
    for pfn in start..end {
        let p = w.pa.mem.page(Pfn(pfn)).unwrap();
        assert!(!p.has(PG_BUDDY) && p.refcount == 1 && p.mapcount == -1 && p.mapping == 0, "pfn {pfn:#x}: {p:?}");
        assert_eq!(p.flags & PG_STATE_MASK, 0, "pfn {pfn:#x} flags");
        if let Some(o) = owner {
            assert_eq!(p.owner, o);
        }
    }
}

fn no_isolated_pageblocks(w: &World) {
    for z in w.pa.zones() {
        assert_eq!(z.nr_isolate_pageblock, 0);
    }
    for b in (0..AREA_PAGES).step_by(16) {
        assert_eq!(w.pa.mem.get_pageblock_migratetype(Pfn(AREA + b)), MigrateType::Cma);
    }
}

// ---------------------------------------------------------------------------
// Snapshots: "identical" for a failed alloc_contig_range
// ---------------------------------------------------------------------------

/// The allocator state a failure must leave unchanged. Identical means:
/// - every page record equal in every field, except the free-list links
///   (`lru_next`/`lru_prev`) of free block heads: isolation moves free
///   blocks to the isolate lists and back to the *tail* of their list, so
///   the position of a block inside its list may change (Linux too); and
///   except the cached list migrate type (flags bits 24..26) of free pages
///   that are not block heads: a block split at an isolation boundary and
///   merged again leaves its former heads' cache saying "Isolate" (Linux's
///   `page->index` is just as stale there; it means nothing off a list);
/// - the set of free blocks per (zone, order, migrate type) equal (which
///   with the records' equality means the same blocks, merged the same);
/// - `nr_free` per order, `NR_FREE_PAGES`, `NR_FREE_CMA_PAGES`,
///   `nr_isolate_pageblock`, managed/cma page counts, all vm events;
/// - the pageblock bitmap word for word;
/// - the reverse map (per page, the sequence of entries) and the fake
///   kernel's page tables, TLB and frame contents.
#[derive(Debug, PartialEq, Eq)]
struct Snap {
    pages: Vec<PageRecord>,
    pb: Vec<u32>,
    free_blocks: BTreeSet<(usize, u32, usize, u32)>,
    counters: Vec<(u64, i64, i64, u32, u64, u64)>,
    nr_free: Vec<Vec<u64>>,
    events: crate::buddy::VmEvents,
    rmap: BTreeMap<u32, Vec<(u16, u32, u16)>>,
    ptes: BTreeMap<(u16, u32), u32>,
    tlb: BTreeMap<(u16, u32), u32>,
    mem: BTreeMap<u32, u64>,
}

fn snap(w: &World) -> Snap {
    let pa = &w.pa;
    let base = pa.mem.base_pfn().0;
    let pages = pa
        .mem
        .records()
        .iter()
        .map(|p| {
            if p.has(PG_BUDDY) {
                PageRecord { lru_next: 0, lru_prev: 0, ..*p }
            } else if p.refcount == 0 {
                // Inside a free block: the cached list type is stale.
                PageRecord { flags: p.flags & !(PG_LIST_MT_MASK << PG_LIST_MT_SHIFT), ..*p }
            } else {
                *p
            }
        })
        .collect();
    let mut free_blocks = BTreeSet::new();
    for (zid, z) in pa.zones().iter().enumerate() {
        for o in 0..pa.profile.max_order {
            for mt in MigrateType::ALL {
                let mut cur = z.free_area[o as usize].free_list[mt.idx()].head;
                while cur != PFN_NONE {
                    free_blocks.insert((zid, o, mt.idx(), cur));
                    cur = pa.mem.page(Pfn(cur)).unwrap().lru_next;
                }
            }
        }
    }
    let mut rmap = BTreeMap::new();
    for i in 0..pa.mem.records().len() as u32 {
        let v: Vec<_> = w.rmap.for_each_mapping(&pa.mem, Pfn(base + i)).map(|e| (e.asid, e.va, e.flags)).collect();
        if !v.is_empty() {
            rmap.insert(base + i, v);
        }
    }
    Snap {
        pages,
        pb: pa.mem.pageblock_words().to_vec(),
        free_blocks,
        counters: pa.zones().iter().map(|z| (z.managed_pages, z.nr_free_pages, z.nr_free_cma_pages, z.nr_isolate_pageblock, z.cma_pages, pa.totalcma_pages)).collect(),
        nr_free: pa.zones().iter().map(|z| z.free_area.iter().map(|a| a.nr_free).collect()).collect(),
        events: pa.events,
        rmap,
        ptes: w.env.ptes.clone(),
        tlb: w.env.tlb.clone(),
        mem: w.env.mem.clone(),
    }
}

fn assert_same(a: &Snap, b: &Snap, what: &str) {
    if a == b {
        return;
    }
    for (i, (x, y)) in a.pages.iter().zip(&b.pages).enumerate() {
        assert_eq!(x, y, "{what}: page record pfn {:#x}", RAM + i as u32);
    }
    assert_eq!(a.pb, b.pb, "{what}: pageblock bits");
    assert_eq!(a.free_blocks, b.free_blocks, "{what}: free blocks");
    assert_eq!(a.counters, b.counters, "{what}: counters");
    assert_eq!(a.nr_free, b.nr_free, "{what}: nr_free");
    assert_eq!(a.events, b.events, "{what}: events");
    assert_eq!(a.rmap, b.rmap, "{what}: rmap");
    assert_eq!(a.ptes, b.ptes, "{what}: ptes");
    assert_eq!(a.tlb, b.tlb, "{what}: tlb");
    assert_eq!(a.mem, b.mem, "{what}: contents");
}

// ---------------------------------------------------------------------------
// named cases
// ---------------------------------------------------------------------------

#[test]
fn free_range_unaligned_takes_exactly_the_range_and_frees_head_and_tail() {
    let mut w = world();
    let free0 = w.pa.nr_free_pages();
    let cma0 = w.pa.nr_free_cma_pages();
    // Inside one 128-page free block: outer_start = AREA, outer_end =
    // AREA + 128; head [AREA, AREA+21) and tail [AREA+50, AREA+128) go back.
    let (s, e) = (AREA + 21, AREA + 50);
    let mut c = CmaContig::new(w_m(&mut w), 3);
    let mm: &mut dyn ContigRange = &mut c;
    mm.alloc_contig_range(Pfn(s), Pfn(e)).unwrap();
    assert_allocated(&w, s, e, Some(OWNER_KIND_CMA | 3));
    for pfn in (AREA..s).chain(e..AREA + AREA_PAGES) {
        assert!(is_free(&w.pa, pfn), "head/tail pfn {pfn:#x} free again");
    }
    assert_eq!(w.pa.nr_free_pages(), free0 - 29);
    assert_eq!(w.pa.nr_free_cma_pages(), cma0 - 29);
    no_isolated_pageblocks(&w);
    w.check();
    // An empty range: migrate_pages still ran once, on an empty list.
    assert_eq!(w.env.traces.len(), 1);
    let mut c = CmaContig::new(w_m(&mut w), 3);
    c.free_contig_range(Pfn(s), 29);
    assert_eq!(w.pa.nr_free_pages(), free0);
    assert_eq!(w.pa.nr_free_cma_pages(), cma0);
    assert_eq!(w.pa.mem.page(Pfn(s)).unwrap().owner, OWNER_NONE);
    // Everything merged back into the 128-page CMA block.
    assert!(w.pa.page_buddy(Pfn(AREA)) && w.pa.buddy_order(Pfn(AREA)) == 7);
    w.check();
}

fn w_m(w: &mut World) -> Migrator<'_, 'static, 'static, crate::migrate::tests::FakeEnv> {
    w.m()
}

#[test]
fn ranges_crossing_pageblocks_and_single_pages() {
    for (s, e) in [(AREA + 15, AREA + 17), (AREA, AREA + 1), (AREA + 127, AREA + 128), (AREA + 3, AREA + 125), (AREA, AREA + 128)] {
        let mut w = world();
        let before = snap(&w);
        w.m().alloc_contig_range(Pfn(s), Pfn(e), MigrateType::Cma, GFP_KERNEL).unwrap();
        assert_allocated(&w, s, e, None);
        no_isolated_pageblocks(&w);
        w.check();
        let n = w.m().free_contig_range(Pfn(s), (e - s) as u64);
        assert_eq!(n, 0);
        // Freed back: the same free blocks as at boot.
        let after = snap(&w);
        assert_eq!(before.free_blocks, after.free_blocks, "[{s:#x}, {e:#x})");
        assert_eq!(before.counters, after.counters);
    }
}

#[test]
fn movable_pages_migrate_out_and_their_ptes_follow() {
    let mut w = world();
    grab_area(&mut w);
    let mut users = Vec::new();
    for i in 0..AREA_PAGES {
        let pfn = AREA + i;
        if i % 3 == 0 {
            w.map_at(Pfn(pfn), 1 + (i % 2) as u16, 0x40_0000 + (i << 12), 0x1000 + i as u64);
            if i % 9 == 0 {
                w.share(Pfn(pfn), 7, 0x80_0000 + (i << 12));
            }
            users.push((pfn, 1 + (i % 2) as u16, 0x40_0000 + (i << 12), 0x1000 + i as u64));
        } else {
            free(&mut w, pfn);
        }
    }
    w.check();
    let (s, e) = (AREA + 10, AREA + 100);
    let ev0 = w.pa.events;
    w.m().alloc_contig_range(Pfn(s), Pfn(e), MigrateType::Cma, GFP_KERNEL).unwrap();
    assert_allocated(&w, s, e, None);
    let mut moved = 0;
    for &(pfn, asid, va, content) in &users {
        let now = w.env.ptes[&(asid, va)];
        if (s..e).contains(&pfn) {
            assert!(!(AREA..AREA + AREA_PAGES).contains(&now) || !(s..e).contains(&now));
            assert!(!(s & !15..(e + 15) & !15).contains(&now), "target {now:#x} inside the isolated pageblocks");
            assert_eq!(w.env.mem[&now], content);
            assert!(!w.env.tlb.contains_key(&(asid, va)), "TLB flushed");
            moved += 1;
        } else {
            assert_eq!(now, pfn, "pages outside the range stay");
        }
    }
    assert_eq!(w.pa.events.pgmigrate_success - ev0.pgmigrate_success, moved);
    assert_eq!(w.pa.events.pgmigrate_fail, ev0.pgmigrate_fail);
    no_isolated_pageblocks(&w);
    w.check();
}

#[test]
fn pinned_page_is_ebusy_and_state_restored() {
    let mut w = world();
    grab_area(&mut w);
    for i in 0..AREA_PAGES {
        if i != 40 {
            free(&mut w, AREA + i);
        }
    }
    w.map_at(Pfn(AREA + 40), 1, 0x1000, 42);
    w.pin(Pfn(AREA + 40));
    let before = snap(&w);
    let r = w.m().alloc_contig_range(Pfn(AREA + 30), Pfn(AREA + 60), MigrateType::Cma, GFP_KERNEL);
    assert_eq!(r, Err(Errno::EBUSY));
    // Only the (empty) migrate_pages trace event differs: no migration.
    assert_same(&before, &snap(&w), "pinned");
    // Without the pin the same range succeeds.
    w.pa.mem.page_mut(Pfn(AREA + 40)).unwrap().refcount -= 1;
    w.m().alloc_contig_range(Pfn(AREA + 30), Pfn(AREA + 60), MigrateType::Cma, GFP_KERNEL).unwrap();
    assert_eq!(w.env.mem[&w.env.ptes[&(1, 0x1000)]], 42);
    w.check();
}

#[test]
fn unmovable_page_is_ebusy_and_state_restored() {
    let mut w = world();
    grab_area(&mut w);
    for i in 0..AREA_PAGES {
        if i != 77 {
            free(&mut w, AREA + i);
        }
    }
    w.pa.mem.page_mut(Pfn(AREA + 77)).unwrap().owner = OWNER_KIND_KERNEL;
    let before = snap(&w);
    assert_eq!(w.m().alloc_contig_range(Pfn(AREA + 64), Pfn(AREA + 80), MigrateType::Cma, GFP_KERNEL), Err(Errno::EBUSY));
    assert_same(&before, &snap(&w), "unmovable");
    // A range next to it (same pageblock) is fine: only [start, end) must
    // be free, the rest of the isolated pageblock may hold anything.
    w.m().alloc_contig_range(Pfn(AREA + 64), Pfn(AREA + 77), MigrateType::Cma, GFP_KERNEL).unwrap();
    w.m().alloc_contig_range(Pfn(AREA + 78), Pfn(AREA + 80), MigrateType::Cma, GFP_KERNEL).unwrap();
    no_isolated_pageblocks(&w);
    w.check();
}

#[test]
fn bad_ranges_are_einval_and_isolated_block_is_ebusy() {
    let mut w = world();
    assert_eq!(w.m().alloc_contig_range(Pfn(AREA), Pfn(AREA), MigrateType::Cma, GFP_KERNEL), Err(Errno::EINVAL));
    assert_eq!(w.m().alloc_contig_range(Pfn(RAM + NR - 1), Pfn(RAM + NR + 1), MigrateType::Cma, GFP_KERNEL), Err(Errno::EINVAL));
    // A pageblock someone else isolated.
    w.pa.set_migratetype_isolate(Pfn(AREA + 32), MigrateType::Cma, 0, Pfn(AREA + 32), Pfn(AREA + 48)).unwrap();
    assert_eq!(w.m().alloc_contig_range(Pfn(AREA + 20), Pfn(AREA + 40), MigrateType::Cma, GFP_KERNEL), Err(Errno::EBUSY));
    assert!(w.pa.mem.get_pageblock_migratetype(Pfn(AREA + 32)).is_isolate(), "not ours to undo");
    w.pa.unset_migratetype_isolate(Pfn(AREA + 32), MigrateType::Cma);
    no_isolated_pageblocks(&w);
    w.check();
}

#[test]
fn free_contig_range_warns_on_pages_still_in_use() {
    let mut w = world();
    w.m().alloc_contig_range(Pfn(AREA), Pfn(AREA + 4), MigrateType::Cma, GFP_KERNEL).unwrap();
    w.pa.mem.page_mut(Pfn(AREA + 1)).unwrap().refcount = 2;
    assert_eq!(w.m().free_contig_range(Pfn(AREA), 4), 1);
    assert_eq!(w.env.log, ["WARNING: free_contig_range: 1 pages are still in use!"]);
    assert_eq!(w.pa.mem.page(Pfn(AREA + 1)).unwrap().refcount, 1);
    w.check();
}

#[test]
fn no_migration_target_is_enomem() {
    let mut w = world();
    grab_area(&mut w);
    for i in 0..AREA_PAGES {
        if i == 5 {
            w.map_at(Pfn(AREA + i), 1, 0x1000, 5);
        } else {
            free(&mut w, AREA + i);
        }
    }
    // Fill everything else (watermarks do not stop ALLOC_NO_WATERMARKS-less
    // GFP_ATOMIC forever; loop until it fails) including the rest of CMA.
    while w.pa.__alloc_pages(crate::gfp::GFP_ATOMIC, 0).is_ok() {}
    while w.pa.__alloc_pages(GFP_HIGHUSER_MOVABLE, 0).is_ok() {}
    let r = w.m().alloc_contig_range(Pfn(AREA), Pfn(AREA + 16), MigrateType::Cma, GFP_KERNEL);
    assert_eq!(r, Err(Errno::ENOMEM));
    assert_eq!(w.env.ptes[&(1, 0x1000)], AREA + 5);
    no_isolated_pageblocks(&w);
    w.check();
}

// ---------------------------------------------------------------------------
// fault injection: each flag breaks what it says, visibly to the fake kernel
// ---------------------------------------------------------------------------

/// One user page at AREA+8 (content 0xabc, mapped at (1, 0x5000)), the rest
/// of the area free; alloc [AREA, AREA+16) with `faults`.
fn injected(faults: MigrateFaults, pin: bool) -> (World, Result<(), Errno>) {
    let mut w = world();
    grab_area(&mut w);
    for i in 0..AREA_PAGES {
        if i != 8 {
            free(&mut w, AREA + i);
        }
    }
    w.map_at(Pfn(AREA + 8), 1, 0x5000, 0xabc);
    if pin {
        w.pin(Pfn(AREA + 8));
    }
    w.faults = faults;
    let r = w.m().alloc_contig_range(Pfn(AREA), Pfn(AREA + 16), MigrateType::Cma, GFP_KERNEL);
    (w, r)
}

#[test]
fn injection_none_is_clean() {
    let (w, r) = injected(MigrateFaults::NONE, false);
    r.unwrap();
    let new = w.env.ptes[&(1, 0x5000)];
    assert_eq!(w.env.mem[&new], 0xabc);
    assert!(w.env.tlb.is_empty());
    w.check();
}

#[test]
fn injection_skip_tlb_flush_leaves_a_stale_tlb_entry() {
    let (w, r) = injected(MigrateFaults::SKIP_TLB_FLUSH, false);
    r.unwrap();
    let new = w.env.ptes[&(1, 0x5000)];
    assert_eq!(w.env.tlb.get(&(1, 0x5000)), Some(&(AREA + 8)), "stale translation to the old frame");
    assert_ne!(new, AREA + 8);
    w.check();
}

#[test]
fn injection_skip_copy_loses_the_contents() {
    let (w, r) = injected(MigrateFaults::SKIP_COPY, false);
    r.unwrap();
    let new = w.env.ptes[&(1, 0x5000)];
    assert_ne!(w.env.mem.get(&new), Some(&0xabc));
    w.pa.check_integrity().unwrap();
}

#[test]
fn injection_skip_remap_leaves_the_va_unmapped() {
    let (w, r) = injected(MigrateFaults::SKIP_REMAP, false);
    r.unwrap();
    assert!(!w.env.ptes.contains_key(&(1, 0x5000)), "no present PTE");
    assert_eq!(w.env.migration.get(&(1, 0x5000)), Some(&(AREA + 8)), "still a migration entry");
    // The reverse map claims a present mapping the page tables lack.
    let new = (0..NR).map(|i| RAM + i).find(|&p| w.rmap.for_each_mapping(&w.pa.mem, Pfn(p)).any(|e| e.va == 0x5000)).unwrap();
    assert!(w.rmap.for_each_mapping(&w.pa.mem, Pfn(new)).all(|e| e.present()));
    w.pa.check_integrity().unwrap();
}

#[test]
fn injection_leak_old_page_leaks_and_fails_the_range() {
    let (w, r) = injected(MigrateFaults::LEAK_OLD_PAGE, false);
    assert_eq!(r, Err(Errno::EBUSY));
    let old = *w.pa.mem.page(Pfn(AREA + 8)).unwrap();
    assert_eq!((old.refcount, old.mapcount, old.mapping, old.has(PG_LRU)), (1, -1, 0, false), "nobody's page, never freed");
    // The user page itself did move.
    let new = w.env.ptes[&(1, 0x5000)];
    assert_eq!(w.env.mem[&new], 0xabc);
    no_isolated_pageblocks(&w);
    w.check();
}

#[test]
fn injection_ignore_pin_moves_a_pinned_page() {
    let (w, r) = injected(MigrateFaults::IGNORE_PIN, true);
    // The pin holder still references the old frame, so the range fails.
    assert_eq!(r, Err(Errno::EBUSY));
    let new = w.env.ptes[&(1, 0x5000)];
    assert_ne!(new, AREA + 8, "the mapping moved away from the pinned frame");
    assert_eq!(w.pa.mem.page(Pfn(AREA + 8)).unwrap().refcount, 1, "the pin");
    // Without the flag the pinned page is left alone.
    let (w, r) = injected(MigrateFaults::NONE, true);
    assert_eq!(r, Err(Errno::EBUSY));
    assert_eq!(w.env.ptes[&(1, 0x5000)], AREA + 8);
    w.check();
}

// ---------------------------------------------------------------------------
// the property test
// ---------------------------------------------------------------------------

/// xorshift64*: deterministic, seed printed on failure.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u32) -> u32 {
        (self.next() % n as u64) as u32
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Frame {
    Free,
    Movable,
    Pinned,
    Unmovable,
}

struct User {
    pfn: u32,
    maps: Vec<(u16, u32)>,
    content: u64,
    pinned: bool,
}

/// Counts of the outcome classes, to show the generator reaches them.
#[derive(Default, Debug)]
struct Classes {
    success: u32,
    success_with_migration: u32,
    fail_exact: u32,
    fail_after_migration: u32,
}

fn one_case(seed: u64, classes: &mut Classes) {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut w = world();
    grab_area(&mut w);
    // Layout class: 0 = free/movable only, 1 = no movable, 2 = everything.
    let class = rng.below(3);
    let mut frames = Vec::new();
    let mut users: Vec<User> = Vec::new();
    let mut next_va = 0x10u32;
    for i in 0..AREA_PAGES {
        let pfn = AREA + i;
        let r = rng.below(100);
        let kind = match class {
            0 => if r < 50 { Frame::Free } else { Frame::Movable },
            1 => if r < 85 { Frame::Free } else if r < 93 { Frame::Pinned } else { Frame::Unmovable },
            _ => if r < 45 { Frame::Free } else if r < 88 { Frame::Movable } else if r < 95 { Frame::Pinned } else { Frame::Unmovable },
        };
        frames.push(kind);
        match kind {
            Frame::Free => free(&mut w, pfn),
            Frame::Movable | Frame::Pinned => {
                let asid = 1 + rng.below(4) as u16;
                next_va += 1 + rng.below(8);
                let va = next_va << 12;
                let content = rng.next();
                w.map_at(Pfn(pfn), asid, va, content);
                let mut maps = vec![(asid, va)];
                if rng.below(4) == 0 {
                    let asid2 = 1 + rng.below(4) as u16;
                    next_va += 1;
                    w.share(Pfn(pfn), asid2, next_va << 12);
                    maps.push((asid2, next_va << 12));
                }
                if kind == Frame::Pinned {
                    w.pin(Pfn(pfn));
                }
                users.push(User { pfn, maps, content, pinned: kind == Frame::Pinned });
            }
            Frame::Unmovable => w.pa.mem.page_mut(Pfn(pfn)).unwrap().owner = OWNER_KIND_KERNEL,
        }
    }
    // Some user pages outside the area too (never touched).
    for _ in 0..rng.below(20) {
        next_va += 1;
        let content = rng.next();
        let pfn = w.map_new(9, next_va << 12, content);
        users.push(User { pfn: pfn.0, maps: vec![(9, next_va << 12)], content, pinned: false });
    }
    w.check();
    let start = AREA + rng.below(AREA_PAGES);
    let len = 1 + rng.below((AREA + AREA_PAGES - start).min(64));
    let end = start + len;
    let ctx = format!("seed {seed} class {class} range [{:#x}, {:#x})", start, end);
    let expect_ok = (start..end).all(|p| matches!(frames[(p - AREA) as usize], Frame::Free | Frame::Movable));
    let before = snap(&w);
    let free_before = w.pa.nr_free_pages();
    let ev0 = w.pa.events;
    let iso = (start & !15, (end + 15) & !15);

    let r = w.m().alloc_contig_range(Pfn(start), Pfn(end), MigrateType::Cma, GFP_KERNEL);
    no_isolated_pageblocks(&w);
    w.check();
    assert_eq!(r.is_ok(), expect_ok, "{ctx}: {r:?}");
    if let Err(e) = r {
        assert_eq!(e, Errno::EBUSY, "{ctx}");
    }
    // Where every user page is now, and what it looks like.
    let mut moved = Vec::new();
    for u in &users {
        let now = w.env.ptes[&u.maps[0]];
        for m in &u.maps {
            assert_eq!(w.env.ptes.get(m), Some(&now), "{ctx}: all mappings of a page agree");
        }
        assert_eq!(w.env.mem.get(&now), Some(&u.content), "{ctx}: contents preserved");
        let p = *w.pa.mem.page(Pfn(now)).unwrap();
        assert_eq!(p.mapcount + 1, u.maps.len() as i32, "{ctx}");
        assert_eq!(p.refcount, u.maps.len() as i32 + u.pinned as i32, "{ctx}");
        assert!(p.has(PG_LRU) && p.has(PG_ANON), "{ctx}");
        if now != u.pfn {
            assert!((start..end).contains(&u.pfn), "{ctx}: only pages of [start, end) move");
            assert!(!u.pinned, "{ctx}: pinned pages never move");
            assert!(!(iso.0..iso.1).contains(&now), "{ctx}: target {now:#x} inside the isolated pageblocks");
            for m in &u.maps {
                assert!(!w.env.tlb.contains_key(m), "{ctx}: TLB entry flushed");
            }
            assert_eq!(p.owner, OWNER_KIND_USER | u.maps[0].0 as u32, "{ctx}: owner follows");
            moved.push((u.pfn, now));
        } else if (start..end).contains(&u.pfn) {
            assert!(r.is_err(), "{ctx}: a page left in an allocated range");
        }
    }
    assert_eq!(w.pa.events.pgmigrate_success - ev0.pgmigrate_success, moved.len() as u64, "{ctx}");
    match r {
        Ok(()) => {
            assert_allocated(&w, start, end, None);
            assert_eq!(w.pa.nr_free_pages(), free_before - len as u64, "{ctx}: exactly the range left the free pool");
            classes.success += 1;
            if !moved.is_empty() {
                classes.success_with_migration += 1;
            }
            // And back.
            assert_eq!(w.m().free_contig_range(Pfn(start), len as u64), 0);
            assert_eq!(w.pa.nr_free_pages(), free_before, "{ctx}");
            w.check();
        }
        Err(_) if moved.is_empty() => {
            assert_eq!(w.pa.events.pgmigrate_fail, ev0.pgmigrate_fail, "{ctx}");
            assert_same(&before, &snap(&w), &ctx);
            classes.fail_exact += 1;
        }
        Err(_) => {
            // Identical modulo the migrated pages: every frame is as before
            // except the old frames of moved pages (now free) and their new
            // frames (free before, now the pages); counters and pageblocks
            // as before.
            let after = snap(&w);
            let olds: BTreeSet<u32> = moved.iter().map(|m| m.0).collect();
            let news: BTreeSet<u32> = moved.iter().map(|m| m.1).collect();
            for (i, (x, y)) in before.pages.iter().zip(&after.pages).enumerate() {
                let pfn = RAM + i as u32;
                if olds.contains(&pfn) {
                    assert!(is_free(&w.pa, pfn), "{ctx}: old frame {pfn:#x} freed");
                } else if news.contains(&pfn) {
                    assert_eq!(x.refcount, 0, "{ctx}: target {pfn:#x} was free");
                } else if x.refcount != 0 || y.refcount != 0 {
                    assert_eq!(x, y, "{ctx}: untouched in-use frame {pfn:#x}");
                } else {
                    assert!(is_free(&w.pa, pfn), "{ctx}: free frame {pfn:#x} stays free");
                }
            }
            assert_eq!(before.pb, after.pb, "{ctx}");
            assert_eq!(w.pa.nr_free_pages(), free_before, "{ctx}");
            assert_eq!(before.events.cma_alloc_success, after.events.cma_alloc_success);
            classes.fail_after_migration += 1;
        }
    }
}

#[test]
fn property_alloc_contig_range_random_layouts() {
    let mut classes = Classes::default();
    for seed in 0..300 {
        one_case(seed, &mut classes);
    }
    std::println!("{classes:?}");
    assert!(classes.success >= 30 && classes.success_with_migration >= 20, "{classes:?}");
    assert!(classes.fail_exact >= 20 && classes.fail_after_migration >= 20, "{classes:?}");
}

// Unused-import guard for Rmap (used through World).
#[allow(dead_code)]
fn _types(_: &Rmap) {}

// ---------------------------------------------------------------------------
// wired into cma_alloc / cma_release
// ---------------------------------------------------------------------------

/// `CmaActivate` over the real allocator.
struct Activate<'x>(&'x mut PageAlloc<'static>);
impl crate::cma::CmaActivate for Activate<'_> {
    fn pfn_range_in_one_zone(&self, start: Pfn, end: Pfn) -> bool {
        self.0.page_zone(start) == self.0.page_zone(Pfn(end.0 - 1))
    }
    fn init_cma_reserved_pageblock(&mut self, pfn: Pfn) {
        self.0.init_cma_reserved_pageblock(pfn).unwrap();
    }
    fn free_reserved_page(&mut self, pfn: Pfn) {
        self.0.free_reserved_page(pfn).unwrap();
    }
}

fn cma_world() -> (World, crate::cma::CmaAreas<'static>, crate::cma::CmaId) {
    use crate::cma::{CmaAreas, NoLog};
    use crate::memblock::Memblock;
    use crate::types::PhysAddr;
    let mut w = World::new(NR, &[]);
    // Re-boot with the area reserved and not yet activated.
    w.pa = crate::buddy::tests::boot_full(crate::buddy::tests::SMALL, RAM, NR, &[(AREA, AREA + AREA_PAGES)], Some(976 << 20), &[]);
    let mut mb = Memblock::new();
    mb.memblock_add(Pfn(RAM).phys(), NR as u64 * 4096).unwrap();
    mb.memblock_reserve(Pfn(AREA).phys(), AREA_PAGES as u64 * 4096).unwrap();
    let mut areas = CmaAreas::new(16, 16);
    let id = areas.cma_init_reserved_mem(&mb, PhysAddr(Pfn(AREA).phys().0), AREA_PAGES as u64 * 4096, 0, Some("test"), &mut NoLog).unwrap();
    areas.cma_init_reserved_areas(&mut |_, n| Some(Vec::leak(vec![0u32; n])), &mut Activate(&mut w.pa), &mut NoLog);
    assert_eq!(w.pa.nr_free_cma_pages(), AREA_PAGES as u64);
    (w, areas, id)
}

#[derive(Default)]
struct Trace(Vec<String>);
impl crate::cma::CmaTrace for Trace {
    fn cma_alloc_start(&mut self, _: crate::cma::CmaId, _: &str, count: u64, _: u32) {
        self.0.push(format!("start {count}"));
    }
    fn cma_alloc_busy_retry(&mut self, _: crate::cma::CmaId, _: &str, pfn: u64, _: Option<Pfn>, _: u64, _: u32) {
        self.0.push(format!("busy {pfn:#x}"));
    }
    fn cma_alloc_finish(&mut self, _: crate::cma::CmaId, _: &str, pfn: u64, _: Option<Pfn>, _: u64, _: u32, e: i32) {
        self.0.push(format!("finish {pfn:#x} {e}"));
    }
    fn cma_release(&mut self, _: crate::cma::CmaId, _: &str, pfn: u64, _: Option<Pfn>, count: u64) {
        self.0.push(format!("release {pfn:#x} {count}"));
    }
}

#[test]
fn cma_alloc_migrates_through_cma_contig_and_retries_past_a_pinned_page() {
    let (mut w, mut areas, id) = cma_world();
    // A user page at AREA+5 (movable), a pinned one at AREA+40.
    grab_area(&mut w);
    for i in 0..AREA_PAGES {
        if i != 5 && i != 40 {
            free(&mut w, AREA + i);
        }
    }
    w.map_at(Pfn(AREA + 5), 1, 0x1000, 55);
    w.map_at(Pfn(AREA + 40), 2, 0x1000, 66);
    w.pin(Pfn(AREA + 40));
    let mut tr = Trace::default();
    let mut log = crate::cma::tests::VecLog::default();
    // 32 pages at bitmap 0: the movable page migrates out.
    let got = {
        let mut c = CmaContig::new(w.m(), id.0 as u32);
        areas.cma_alloc(Some(id), 32, 0, false, &mut c, &mut tr, &mut log)
    };
    assert_eq!(got, Some(Pfn(AREA)));
    assert_allocated(&w, AREA, AREA + 32, Some(OWNER_KIND_CMA | id.0 as u32));
    assert_eq!(w.env.mem[&w.env.ptes[&(1, 0x1000)]], 55);
    // Next 32: [AREA+32, AREA+64) holds the pinned page: -EBUSY, retried
    // one bit further each time until the range starts past it.
    let got = {
        let mut c = CmaContig::new(w.m(), id.0 as u32);
        areas.cma_alloc(Some(id), 32, 0, false, &mut c, &mut tr, &mut log)
    };
    assert_eq!(got, Some(Pfn(AREA + 41)));
    let busy = tr.0.iter().filter(|l| l.starts_with("busy")).count();
    assert_eq!(busy, 9, "{:?}", tr.0);
    assert_eq!(w.env.ptes[&(2, 0x1000)], AREA + 40, "pinned page untouched");
    no_isolated_pageblocks(&w);
    w.check();
    // Release both.
    {
        let mut c = CmaContig::new(w.m(), id.0 as u32);
        assert!(areas.cma_release(Some(id), Pfn(AREA), 32, &mut c, &mut tr));
        assert!(areas.cma_release(Some(id), Pfn(AREA + 41), 32, &mut c, &mut tr));
    }
    assert_eq!(w.pa.mem.page(Pfn(AREA)).unwrap().owner, OWNER_NONE);
    assert!(w.env.log.is_empty(), "{:?}", w.env.log);
    w.check();
}

/// A user page still in the LRU add batch: `alloc_contig_range` drains the
/// batch (`lru_cache_disable`) and migrates it; with `skip_lru_drain` the
/// page cannot be isolated and the range is busy.
#[test]
fn page_in_the_lru_add_batch_is_drained_then_migrated_unless_the_drain_is_skipped() {
    for skip in [false, true] {
        let mut w = world();
        grab_area(&mut w);
        for i in 0..AREA_PAGES {
            if i != 40 {
                free(&mut w, AREA + i);
            }
        }
        w.map_at(Pfn(AREA + 40), 1, 0x1000, 42);
        // A freshly faulted page: off the LRU, in the batch (folio_add_lru).
        w.pa.mem.page_mut(Pfn(AREA + 40)).unwrap().flags &= !PG_LRU;
        w.pa.folio_add_lru(Pfn(AREA + 40));
        assert!(w.pa.in_lru_add_batch(Pfn(AREA + 40)));
        if skip {
            w.faults = MigrateFaults::SKIP_LRU_DRAIN;
        }
        let r = w.m().alloc_contig_range(Pfn(AREA + 30), Pfn(AREA + 60), MigrateType::Cma, GFP_KERNEL);
        assert_eq!(w.pa.lru_add.disable_count, 0, "lru_cache_enable after the migration step");
        if skip {
            assert_eq!(r, Err(Errno::EBUSY));
            assert_eq!(w.env.ptes[&(1, 0x1000)], AREA + 40, "not migrated");
            assert!(w.pa.in_lru_add_batch(Pfn(AREA + 40)));
        } else {
            r.unwrap();
            let new = w.env.ptes[&(1, 0x1000)];
            assert!(!(AREA + 30..AREA + 60).contains(&new));
            assert_eq!(w.env.mem[&new], 42);
            assert_eq!(w.pa.lru_add.nr, 0);
            w.check();
        }
    }
}

/// The area's pages free but page 8 (mapped, movable) and page 3, freed
/// last with the per-CPU lists in use: the head of the per-CPU list,
/// inside the range.
fn pcp_page_in_range_world() -> World {
    let mut w = world();
    // per-CPU lists in use (frees of order 0 go there)
    w.pa.setup_per_cpu_pageset();
    grab_area(&mut w);
    for i in 0..AREA_PAGES {
        if i != 8 && i != 3 {
            free(&mut w, AREA + i);
        }
    }
    w.pa.drain_all_pages(None);
    w.map_at(Pfn(AREA + 8), 1, 0x5000, 0xabc);
    free(&mut w, AREA + 3);
    w
}

#[test]
fn injection_skip_pcp_drain_hands_a_per_cpu_page_of_the_range_out_as_a_target_and_the_range_is_busy() {
    let mut w = pcp_page_in_range_world();
    assert!(w.pa.mem.page(Pfn(AREA + 3)).unwrap().has(PG_PCP));
    let before = snap(&w);
    w.faults = MigrateFaults::SKIP_PCP_DRAIN;
    let r = w.m().alloc_contig_range(Pfn(AREA), Pfn(AREA + 16), MigrateType::Cma, GFP_KERNEL);
    // 6.1: rmqueue_pcplist and alloc_migration_target do not look at the
    // target's pageblock; the page moves into the range and
    // test_pages_isolated fails on it
    assert_eq!(r, Err(Errno::EBUSY));
    assert_eq!(w.env.ptes[&(1, 0x5000)], AREA + 3);
    assert_eq!(w.env.mem[&(AREA + 3)], 0xabc);
    no_isolated_pageblocks(&w);
    w.check();
    // with the drain, the same layout succeeds and the page leaves the range
    let mut w = pcp_page_in_range_world();
    assert_same(&before, &snap(&w), "the same layout");
    w.m().alloc_contig_range(Pfn(AREA), Pfn(AREA + 16), MigrateType::Cma, GFP_KERNEL).unwrap();
    assert!(!(AREA..AREA + 16).contains(&w.env.ptes[&(1, 0x5000)]));
    w.check();
}
