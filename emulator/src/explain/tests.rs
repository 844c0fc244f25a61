use super::*;
use crate::introspect::synth::SynthGuest;

/// A 32 MiB guest (8192 frames, 1024-page pageblocks) with one 2048-page
/// area over pageblocks 4 and 5, and one address space (asid 1, pid 101).
fn guest() -> (SynthGuest, u32) {
    let mut g = SynthGuest::new(32);
    let base = g.pb_pfn(4);
    g.add_cma("linux,cma", base, 2048, 0);
    g.add_space(1);
    (g, base)
}

fn snap(g: &mut SynthGuest) -> Snapshot {
    g.commit();
    Snapshot::read(&g.ram, g.desc_pa).expect("snapshot")
}

fn req(range: Option<u32>, count: u32, errno: i32) -> Request {
    Request { area: 0, count, align: 0, range, errno }
}

fn run(g: &mut SynthGuest, r: &Request, lru: Option<&LruAddRecord>, dma: &[DmaSpan]) -> Vec<Cause> {
    let s = snap(g);
    explain(&s, Extra { ram: &g.ram, lru, dma, pins: None, maps: None, pcp_seen: &[] }, r)
}

fn user(g: &mut SynthGuest, va: u32, pfn: u32, refcount: i32) {
    g.user_page(1, va, pfn);
    let i = (pfn - g.base_pfn) as usize;
    g.pages[i].refcount = refcount;
}

#[test]
fn a_request_larger_than_the_area_says_so_and_nothing_else() {
    let (mut g, base) = guest();
    user(&mut g, 0x40_0000, base + 5, 2);
    let c = run(&mut g, &req(None, 2049, ENOMEM), None, &[]);
    assert_eq!(c, vec![Cause::TooLarge { count: 2049, area_pages: 2048 }]);
    assert_eq!(c[0].to_string(), "the request (2,049 pages) is larger than the whole area (2,048 pages)");
}

#[test]
fn a_pinned_page_names_its_pfn_task_and_va() {
    let (mut g, base) = guest();
    user(&mut g, 0x40_3000, base + 0x40, 2);
    // a page mapped once without a pin is no cause (it migrated: free here)
    let c = run(&mut g, &req(Some(base), 2000, EBUSY), None, &[]);
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(
        c[0],
        Cause::Pinned { pfn: base + 0x40, refcount: 2, mapcount: 1, extra: 1, mapped: vec![MappedBy { pid: 101, asid: 1, va: 0x40_3000 }], dma: None, by: None, more: 0 }
    );
    let t = c[0].to_string();
    assert!(t.starts_with(&format!("pfn {:#x} is pinned (refcount 2, mapcount 1", base + 0x40)), "{t}");
    assert!(t.contains("mapped by task 101 (asid 1) at VA 0x00403000"), "{t}");
}

#[test]
fn a_pinned_page_outside_the_tried_range_is_not_blamed() {
    let (mut g, base) = guest();
    user(&mut g, 0x40_3000, base + 0x40, 2);
    assert_eq!(run(&mut g, &req(Some(base + 0x41), 100, EBUSY), None, &[]), vec![]);
}

#[test]
fn a_pinned_page_under_a_live_device_buffer_says_which_device() {
    let (mut g, base) = guest();
    user(&mut g, 0x40_0000, base + 7, 2);
    let dma = [DmaSpan { device: cmaemu_abi::desc::DMA_DEV_CAMERA, pfn: base + 4, count: 8 }];
    let c = run(&mut g, &req(Some(base), 64, EBUSY), None, &dma);
    assert!(matches!(c[0], Cause::Pinned { dma: Some(cmaemu_abi::desc::DMA_DEV_CAMERA), .. }), "{c:?}");
    assert_eq!(c[0].kind(), "device");
    assert!(c[0].to_string().contains("held for DMA by camera"), "{}", c[0]);
}

#[test]
fn many_pinned_pages_list_four_and_count_the_rest() {
    let (mut g, base) = guest();
    for i in 0..7 {
        user(&mut g, 0x40_0000 + i * 0x1000, base + i, 2);
    }
    let c = run(&mut g, &req(Some(base), 64, EBUSY), None, &[]);
    assert_eq!(c.len(), MAX_PAGES_PER_KIND);
    assert!(matches!(c[3], Cause::Pinned { more: 3, .. }), "{c:?}");
    assert!(c[3].to_string().ends_with("(and 3 more pinned pages)"), "{}", c[3]);
}

#[test]
fn the_lru_batch_reference_is_not_a_pin() {
    let (mut g, base) = guest();
    // in the batch: one reference from the mapping, one from the batch
    user(&mut g, 0x40_0000, base + 1, 2);
    // in the batch and pinned too
    user(&mut g, 0x40_1000, base + 2, 3);
    let mut lru = LruAddRecord::INIT;
    lru.nr = 2;
    lru.pfns[0] = base + 1;
    lru.pfns[1] = base + 2;
    let c = run(&mut g, &req(Some(base), 64, EBUSY), Some(&lru), &[]);
    assert_eq!(c.len(), 2, "{c:?}");
    assert!(matches!(c[0], Cause::Pinned { pfn, extra: 1, .. } if pfn == base + 2), "{c:?}");
    assert_eq!(c[1], Cause::LruBatch { pfn: base + 1, refcount: 2, mapcount: 1, mapped: vec![MappedBy { pid: 101, asid: 1, va: 0x40_0000 }], more: 0 });
    assert_eq!(
        c[1].to_string(),
        format!("pfn {:#x} sits in the LRU add batch (refcount 2, mapcount 1) — mapped by task 101 (asid 1) at VA 0x00400000: not on the LRU, so not isolated for migration (lru_add_drain missed)", base + 1)
    );
}

#[test]
fn kernel_reserved_and_page_table_pages_name_their_owner() {
    let (mut g, base) = guest();
    g.alloc(base + 3, 1, PageRecord { owner: OWNER_KIND_KERNEL | 0x42, ..PageRecord::INIT });
    g.alloc(base + 9, 1, PageRecord { owner: OWNER_KIND_PGTABLE | 2, ..PageRecord::INIT });
    g.alloc(base + 12, 1, PageRecord { flags: PG_RESERVED, ..PageRecord::INIT });
    let c = run(&mut g, &req(Some(base), 64, EBUSY), None, &[]);
    let t: Vec<String> = c.iter().map(|c| c.to_string()).collect();
    assert_eq!(c.iter().map(Cause::pfn).collect::<Vec<_>>(), vec![Some(base + 3), Some(base + 9), Some(base + 12)]);
    assert!(t[0].contains("the kernel (allocation tag 0x42"), "{t:?}");
    assert!(t[1].contains("a page table of asid 2"), "{t:?}");
    assert!(t[2].contains("reserved memory"), "{t:?}");
}

#[test]
fn a_device_buffer_in_the_range_names_the_device() {
    let (mut g, base) = guest();
    g.alloc(base + 16, 4, PageRecord { owner: OWNER_KIND_DEVICE | cmaemu_abi::desc::DMA_DEV_CLCD, ..PageRecord::INIT });
    let c = run(&mut g, &req(Some(base), 64, EBUSY), None, &[]);
    assert_eq!(c.len(), 4);
    assert_eq!(c[0], Cause::DeviceOwned { pfn: base + 16, device: cmaemu_abi::desc::DMA_DEV_CLCD, more: 0 });
    assert!(c[0].to_string().contains("DMA buffer of clcd"), "{}", c[0]);
}

#[test]
fn a_per_cpu_block_is_named_once_by_its_head() {
    let (mut g, base) = guest();
    g.alloc(base + 8, 4, PageRecord { refcount: 0, ..PageRecord::INIT });
    g.pages[(base + 8 - g.base_pfn) as usize] = PageRecord { flags: PG_PCP, refcount: 0, private: 2, ..PageRecord::INIT };
    let c = run(&mut g, &req(Some(base), 64, EBUSY), None, &[]);
    assert_eq!(c, vec![Cause::PcpList { pfn: base + 8, order: 2, more: 0 }]);
    // a try that stopped at isolation never drained: not a cause then
    g.commit();
    g.poke_pageblock(base, MIGRATE_ISOLATE);
    let s = Snapshot::read(&g.ram, g.desc_pa).unwrap();
    let c = explain(&s, Extra { ram: &g.ram, lru: None, dma: &[], pins: None, maps: None, pcp_seen: &[] }, &req(Some(base), 64, EBUSY));
    assert_eq!(c, vec![Cause::NotIsolated { pageblock: base }]);
}

#[test]
fn a_per_cpu_block_seen_at_migration_and_handed_out_as_a_target_is_named_with_who_maps_it_now() {
    let (mut g, base) = guest();
    // found on a per-CPU list when migration began; now the new frame of a
    // user page (the move put task 101's page at VA 0x40_5000 there)
    user(&mut g, 0x40_5000, base + 8, 1);
    // another block seen then was freed back to the buddy since: no cause
    let seen = [(base + 8, 0), (base + 12, 2)];
    let s = snap(&mut g);
    let c = explain(&s, Extra { ram: &g.ram, lru: None, dma: &[], pins: None, maps: None, pcp_seen: &seen }, &req(Some(base), 64, EBUSY));
    assert_eq!(c, vec![Cause::PcpTaken { pfn: base + 8, order: 0, mapped: vec![MappedBy { pid: 101, asid: 1, va: 0x40_5000 }], more: 0 }]);
    assert_eq!(c[0].kind(), "pcp_taken");
    let t = c[0].to_string();
    assert!(t.contains("was on a per-CPU free list inside the isolated range when migration began (drain_all_pages missed it) and was handed out as a migration target — mapped by task 101 (asid 1) at VA 0x00405000"), "{t}");
    // without what the host saw at the migrate phase the same page is a
    // movable page left behind, nothing about the per-CPU lists
    let c = explain(&s, Extra { ram: &g.ram, lru: None, dma: &[], pins: None, maps: None, pcp_seen: &[] }, &req(Some(base), 64, EBUSY));
    assert_eq!(c.iter().map(Cause::kind).collect::<Vec<_>>(), vec!["not_migrated"], "{c:?}");
}

#[test]
fn per_cpu_blocks_are_read_from_the_range_only() {
    let (mut g, base) = guest();
    for (pfn, order) in [(base - 4, 2), (base + 8, 0), (base + 16, 3), (base + 64, 0)] {
        g.alloc(pfn, 1 << order, PageRecord { refcount: 0, ..PageRecord::INIT });
        g.pages[(pfn - g.base_pfn) as usize] = PageRecord { flags: PG_PCP, refcount: 0, private: order, ..PageRecord::INIT };
    }
    let s = snap(&mut g);
    assert_eq!(s.read_pcp_blocks(&g.ram, base, base + 64).unwrap(), vec![(base + 8, 0), (base + 16, 3)]);
    assert_eq!(s.read_pcp_blocks(&g.ram, base + 9, base + 16).unwrap(), vec![]);
}

#[test]
fn an_isolated_pageblock_is_named() {
    let (mut g, base) = guest();
    g.commit();
    g.poke_pageblock(base + 1024, MIGRATE_ISOLATE);
    let s2 = Snapshot::read(&g.ram, g.desc_pa).unwrap();
    // the range ends inside the second pageblock
    let c = explain(&s2, Extra { ram: &g.ram, lru: None, dma: &[], pins: None, maps: None, pcp_seen: &[] }, &req(Some(base + 1000), 100, EBUSY));
    assert_eq!(c, vec![Cause::NotIsolated { pageblock: base + 1024 }]);
    // movable pages left in the range are not blamed: nothing migrated
    let (mut g, base) = guest();
    user(&mut g, 0x40_0000, base + 1030, 1);
    user(&mut g, 0x40_1000, base + 1031, 2);
    g.commit();
    g.poke_pageblock(base + 1024, MIGRATE_ISOLATE);
    let s2 = Snapshot::read(&g.ram, g.desc_pa).unwrap();
    let c = explain(&s2, Extra { ram: &g.ram, lru: None, dma: &[], pins: None, maps: None, pcp_seen: &[] }, &req(Some(base + 1000), 100, EBUSY));
    assert_eq!(c.iter().map(Cause::kind).collect::<Vec<_>>(), vec!["not_isolated", "pinned"], "{c:?}");
    // a range inside the first block only is not blamed on the second
    assert_eq!(explain(&s2, Extra { ram: &g.ram, lru: None, dma: &[], pins: None, maps: None, pcp_seen: &[] }, &req(Some(base), 1000, EBUSY)), vec![]);
}

#[test]
fn enomem_with_movable_pages_left_is_out_of_targets_with_free_pages_outside() {
    let (mut g, base) = guest();
    for i in 0..10 {
        user(&mut g, 0x40_0000 + i * 0x1000, base + 100 + i, 1);
    }
    // everything outside the area but 5 frames is taken
    let first = g.base_pfn + RESERVED;
    g.alloc(first, base - first - 5, PageRecord { owner: OWNER_KIND_KERNEL, ..PageRecord::INIT });
    let end = base + 2048;
    let last = g.base_pfn + g.nr_pages;
    g.alloc(end, last - end, PageRecord { owner: OWNER_KIND_KERNEL, ..PageRecord::INIT });
    let c = run(&mut g, &req(Some(base), 2048, ENOMEM), None, &[]);
    assert_eq!(c, vec![Cause::OutOfTargets { needed: 10, first: base + 100, free_outside: vec![("Normal".into(), 5)] }]);
    assert_eq!(
        c[0].to_string(),
        format!("migration ran out of target memory: 10 movable pages (first pfn {:#x}) still need a new frame and only 5 pages are free outside the area (Normal 5); free at least 5 more pages outside the area (or ask for fewer pages) and try again", base + 100)
    );
    // enough free pages on paper: the watermarks held them back
    let wm = Cause::OutOfTargets { needed: 10, first: base + 100, free_outside: vec![("Normal".into(), 8), ("HighMem".into(), 4)] };
    assert!(
        wm.to_string().ends_with("only 12 pages are free outside the area (Normal 8, HighMem 4); the zone watermarks keep those back: free more memory outside the area (or ask for fewer pages) and try again"),
        "{wm}"
    );
    // the same pages after -EBUSY were not moved for a reason we cannot see
    let c = run(&mut g, &req(Some(base), 2048, EBUSY), None, &[]);
    assert_eq!(c, vec![Cause::NotMigrated { pfn: base + 100, refcount: 1, mapcount: 1, task: Some((101, 1)), ptes: 1, more: 9 }]);
    assert_eq!(c[0].to_string(), format!("pfn {:#x} is a movable page of task 101 (asid 1) that was not migrated (refcount 1, mapcount 1) (and 9 more such pages)", base + 100));
    // its PTE gone while the mapcount still counts it: a stale reverse map
    g.set_pte(1, 0x40_0000, None);
    let c = run(&mut g, &req(Some(base), 2048, EBUSY), None, &[]);
    assert!(matches!(c[0], Cause::NotMigrated { ptes: 0, mapcount: 1, .. }), "{c:?}");
    assert!(c[0].to_string().contains(": 0 page table entries map it where its mapcount says 1 — a stale reverse map"), "{}", c[0]);
}

#[test]
fn a_page_held_by_a_reference_nothing_accounts_for_is_unmovable_and_a_pinned_one_is_not() {
    let (mut g, base) = guest();
    user(&mut g, 0x40_0000, base + 9, 1);
    // unmapped and off the LRU, one reference left (a missed put_page)
    g.set_pte(1, 0x40_0000, None);
    let i = (base + 9 - g.base_pfn) as usize;
    g.pages[i].mapcount = -1;
    g.pages[i].flags &= !cmaemu_abi::page::PG_LRU;
    let s = snap(&mut g);
    let none = crate::explain::PinTable::new();
    let c = explain(&s, Extra { ram: &g.ram, lru: None, dma: &[], pins: Some(&none), maps: None, pcp_seen: &[] }, &req(Some(base), 64, EBUSY));
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(c[0].kind(), "unmovable");
    assert_eq!(c[0].pfn(), Some(base + 9));
    assert!(c[0].to_string().contains("nobody: 1 reference(s) that no mapping, pin or LRU list accounts for (a leaked reference"), "{}", c[0]);
    assert!(c[0].to_string().ends_with("its owner tag says task 101 (asid 1), which no longer maps it"), "{}", c[0]);
    // with a pin on record it stays a pin
    let mut pins = crate::explain::PinTable::new();
    pins.insert(base + 9, vec![crate::explain::PinSite { asid: 1, va: 0x40_0000, func: 0, command: "pin".into() }]);
    let c = explain(&s, Extra { ram: &g.ram, lru: None, dma: &[], pins: Some(&pins), maps: None, pcp_seen: &[] }, &req(Some(base), 64, EBUSY));
    assert_eq!(c[0].kind(), "pinned", "{c:?}");
}

const RESERVED: u32 = crate::introspect::synth::RESERVED_FRAMES;

#[test]
fn no_free_run_names_the_largest_one_at_the_alignment() {
    let (mut g, base) = guest();
    // free runs: [0x100, 0x180) and [0x305, 0x405) (unaligned start)
    g.cma_alloc_at(0, base, 0x100, 1);
    g.cma_alloc_at(0, base + 0x180, 0x185, 1);
    g.cma_alloc_at(0, base + 0x405, 2048 - 0x405, 1);
    let c = run(&mut g, &req(None, 0x101, ENOMEM), None, &[]);
    assert_eq!(c, vec![Cause::Fragmented { count: 0x101, align: 0, largest: 0x100, at: Some(base + 0x305), free: 0x180 }]);
    // 0x100 pages fit unaligned, but aligned to 64 pages the second run
    // only offers [0x340, 0x405)
    let mut r = req(None, 0x100, ENOMEM);
    r.align = 6;
    let c = run(&mut g, &r, None, &[]);
    assert_eq!(c, vec![Cause::Fragmented { count: 0x100, align: 6, largest: 0xc5, at: Some(base + 0x340), free: 0x180 }]);
    assert_eq!(c[0].to_string(), format!("no free run of 256 pages aligned to 64 pages in the bitmap: the largest is 197 pages at pfn {:#x} (384 pages free in all: fragmented)", base + 0x340));
    // a run that fits is no cause
    r.count = 0xc5;
    assert_eq!(run(&mut g, &r, None, &[]), vec![]);
}

#[test]
fn several_causes_come_most_decisive_first() {
    let (mut g, base) = guest();
    g.alloc(base + 2, 1, PageRecord { owner: OWNER_KIND_KERNEL | 1, ..PageRecord::INIT });
    g.alloc(base + 4, 1, PageRecord { refcount: 0, ..PageRecord::INIT });
    g.pages[(base + 4 - g.base_pfn) as usize] = PageRecord { flags: PG_PCP, refcount: 0, private: 0, ..PageRecord::INIT };
    user(&mut g, 0x40_0000, base + 6, 3);
    let c = run(&mut g, &req(Some(base), 64, EBUSY), None, &[]);
    assert_eq!(c.iter().map(Cause::kind).collect::<Vec<_>>(), vec!["pinned", "unmovable", "pcp_list"]);
    assert!(matches!(c[0], Cause::Pinned { extra: 2, .. }));
}

#[test]
fn a_fully_free_range_has_no_cause() {
    let (mut g, base) = guest();
    assert_eq!(run(&mut g, &req(Some(base), 2048, EBUSY), None, &[]), vec![]);
}

#[test]
fn thousands_groups_digits() {
    assert_eq!(thousands(0), "0");
    assert_eq!(thousands(999), "999");
    assert_eq!(thousands(13139), "13,139");
    assert_eq!(thousands(1234567), "1,234,567");
}

#[test]
fn a_pin_names_its_command_and_function() {
    let (mut g, base) = guest();
    user(&mut g, 0x40_3000, base + 0x40, 2);
    let s = snap(&mut g);
    let mut pins = PinTable::new();
    pins.entry(base + 0x40).or_default().push(PinSite { asid: 1, va: 0x40_3000, func: 0xc000_1234, command: "pin in".into() });
    let c = explain(&s, Extra { ram: &g.ram, lru: None, dma: &[], pins: Some(&pins), maps: None, pcp_seen: &[] }, &req(Some(base), 2000, EBUSY));
    // the synthetic guest has no KALLSYMS: the address stands for the name
    assert!(matches!(&c[0], Cause::Pinned { by: Some(PinnedBy { pid: Some(101), asid: 1, .. }), .. }), "{c:?}");
    let t = c[0].to_string();
    assert!(t.contains("; pinned by `pin in` in 0xc0001234 (task 101, asid 1); migration cannot move it"), "{t}");
    // the page dump of that frame, in Linux's dump_page format
    let d = dump::dump_page(&s, base + 0x40, 0x403, dump::MIGRATION_FAILURE);
    assert_eq!(d.len(), 4, "{d:?}");
    assert!(d[0].ends_with(&format!(" refcount:2 mapcount:1 mapping:00000000 index:0x403 pfn:{:#x}", base + 0x40)), "{d:?}");
    assert!(d[1].starts_with("anon flags: 0x"), "{d:?}");
    assert!(d[1].contains("(uptodate|lru|swapbacked|zone=") && d[1].ends_with(") CMA"), "{d:?}");
    assert_eq!(d[2].split(' ').count(), 9, "{d:?}");
    assert_eq!(d[3], "page dumped because: migration failure");
}

#[test]
fn the_mapping_cache_follows_moves_and_reports_only_what_the_page_tables_hold() {
    let (mut g, base) = guest();
    user(&mut g, 0x40_0000, base + 3, 1);
    let s = snap(&mut g);
    let mut c = MapCache::default();
    let m = MappedBy { pid: 101, asid: 1, va: 0x40_0000 };
    assert_eq!(c.of(&s, &g.ram, base + 3), vec![m]);
    // a move the record announces: the new frame is found without a walk,
    // the old one no longer
    g.move_user_page(1, 0x40_0000, base + 3, base + 9, true);
    let s = snap(&mut g);
    c.moved(&s, base + 9, 1, &[0x40_0000]);
    assert_eq!(c.of(&s, &g.ram, base + 9), vec![m]);
    assert_eq!(c.of(&s, &g.ram, base + 3), vec![]);
    // a move whose PTE was never set (skip_remap): the candidate is checked
    g.set_pte(1, 0x40_0000, None);
    let s = snap(&mut g);
    c.moved(&s, base + 11, 1, &[0x40_0000]);
    assert_eq!(c.of(&s, &g.ram, base + 11), vec![]);
    assert_eq!(c.of(&s, &g.ram, base + 9), vec![]);
    // cleared: the next question walks again
    g.set_pte(1, 0x40_0000, Some(base + 5));
    let s = snap(&mut g);
    assert_eq!(c.of(&s, &g.ram, base + 5), vec![], "not a candidate of the old walk");
    c.clear();
    assert_eq!(c.of(&s, &g.ram, base + 5), vec![m]);
}
