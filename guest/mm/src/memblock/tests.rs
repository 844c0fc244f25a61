use super::*;

const MIB: u64 = 1 << 20;

fn regions(t: &MemblockType) -> Vec<(u64, u64)> {
    t.real_regions().iter().map(|r| (r.base, r.end())).collect()
}

fn show(mb: &Memblock, id: MemblockTypeId) -> String {
    let mut s = String::new();
    mb.memblock_debug_show(id, &mut s).unwrap();
    s
}

fn board() -> Memblock {
    let mut mb = Memblock::new();
    mb.memblock_add(PhysAddr(0x6000_0000), 0x4000_0000).unwrap();
    mb
}

#[test]
fn empty_array_keeps_dummy_and_prints_it_like_linux() {
    let mb = Memblock::new();
    assert_eq!(mb.memory.cnt(), 1);
    assert_eq!(show(&mb, MemblockTypeId::Reserved), "   0: 0x00000000..0xffffffff\n");
}

#[test]
fn debugfs_format_matches_linux_6_1() {
    let mut mb = board();
    mb.memblock_reserve(PhysAddr(0x6000_4000), 0x6800_bfda - 0x6000_4000).unwrap();
    mb.memblock_reserve(PhysAddr(0x9f6e_3000), 0xa000_0000 - 0x9f6e_3000).unwrap();
    assert_eq!(show(&mb, MemblockTypeId::Memory), "   0: 0x60000000..0x9fffffff\n");
    assert_eq!(
        show(&mb, MemblockTypeId::Reserved),
        "   0: 0x60004000..0x6800bfd9\n   1: 0x9f6e3000..0x9fffffff\n"
    );
}

#[test]
fn add_adjacent_merges() {
    let mut mb = Memblock::new();
    mb.memblock_add(PhysAddr(0x1000), 0x1000).unwrap();
    mb.memblock_add(PhysAddr(0x2000), 0x1000).unwrap();
    mb.memblock_add(PhysAddr(0x0), 0x1000).unwrap();
    assert_eq!(regions(&mb.memory), vec![(0, 0x3000)]);
    assert_eq!(mb.memory.total_size(), 0x3000);
}

#[test]
fn add_disjoint_keeps_sorted() {
    let mut mb = Memblock::new();
    mb.memblock_add(PhysAddr(0x5000), 0x1000).unwrap();
    mb.memblock_add(PhysAddr(0x1000), 0x1000).unwrap();
    mb.memblock_add(PhysAddr(0x3000), 0x1000).unwrap();
    assert_eq!(regions(&mb.memory), vec![(0x1000, 0x2000), (0x3000, 0x4000), (0x5000, 0x6000)]);
}

#[test]
fn add_overlapping_fills_gaps_and_merges() {
    let mut mb = Memblock::new();
    mb.memblock_add(PhysAddr(0x1000), 0x1000).unwrap();
    mb.memblock_add(PhysAddr(0x3000), 0x1000).unwrap();
    mb.memblock_add(PhysAddr(0x0), 0x8000).unwrap();
    assert_eq!(regions(&mb.memory), vec![(0, 0x8000)]);
    assert_eq!(mb.memory.total_size(), 0x8000);
}

#[test]
fn add_contained_is_noop() {
    let mut mb = board();
    mb.memblock_add(PhysAddr(0x7000_0000), MIB).unwrap();
    assert_eq!(regions(&mb.memory), vec![(0x6000_0000, 0xa000_0000)]);
    assert_eq!(mb.memory.total_size(), 0x4000_0000);
}

#[test]
fn reserve_overlap_partial_extends() {
    let mut mb = board();
    mb.memblock_reserve(PhysAddr(0x6100_0000), 2 * MIB).unwrap();
    mb.memblock_reserve(PhysAddr(0x6110_0000), 2 * MIB).unwrap();
    assert_eq!(regions(&mb.reserved), vec![(0x6100_0000, 0x6130_0000)]);
    assert_eq!(mb.reserved.total_size(), 3 * MIB);
}

#[test]
fn add_size_zero_is_noop() {
    let mut mb = Memblock::new();
    mb.memblock_add(PhysAddr(0x1000), 0).unwrap();
    assert_eq!(mb.memory.real_regions().len(), 0);
}

#[test]
fn add_caps_at_phys_addr_max() {
    let mut mb = Memblock::new();
    mb.memblock_add(PhysAddr(0xf000_0000), u64::MAX).unwrap();
    assert_eq!(regions(&mb.memory), vec![(0xf000_0000, PHYS_ADDR_MAX)]);
}

#[test]
fn remove_middle_splits() {
    let mut mb = board();
    mb.memblock_remove(PhysAddr(0x7000_0000), 0x1000_0000).unwrap();
    assert_eq!(regions(&mb.memory), vec![(0x6000_0000, 0x7000_0000), (0x8000_0000, 0xa000_0000)]);
    assert_eq!(mb.memory.total_size(), 0x3000_0000);
}

#[test]
fn remove_spanning_several_regions() {
    let mut mb = Memblock::new();
    for i in 0..4u64 {
        mb.memblock_add(PhysAddr(i * 0x2000), 0x1000).unwrap();
    }
    mb.memblock_remove(PhysAddr(0x800), 0x5000).unwrap();
    assert_eq!(regions(&mb.memory), vec![(0, 0x800), (0x6000, 0x7000)]);
}

#[test]
fn remove_everything_restores_dummy() {
    let mut mb = board();
    mb.memblock_remove(PhysAddr(0), PHYS_ADDR_MAX).unwrap();
    assert_eq!(mb.memory.cnt(), 1);
    assert_eq!(mb.memory.total_size(), 0);
    assert_eq!(mb.memory.regions()[0].size, 0);
}

#[test]
fn free_part_of_reservation() {
    let mut mb = board();
    mb.memblock_reserve(PhysAddr(0x6800_0000), 4 * MIB).unwrap();
    mb.memblock_phys_free(PhysAddr(0x6810_0000), MIB).unwrap();
    assert_eq!(regions(&mb.reserved), vec![(0x6800_0000, 0x6810_0000), (0x6820_0000, 0x6840_0000)]);
    mb.memblock_free(PhysAddr(0x6800_0000), 4 * MIB).unwrap();
    assert_eq!(mb.reserved.real_regions().len(), 0);
}

#[test]
fn isolate_range_splits_both_ends() {
    let mut t = MemblockType::new(MemblockTypeId::Memory);
    t.memblock_add_range(0, 0x10000, MemblockFlags::NONE).unwrap();
    let (s, e) = t.memblock_isolate_range(0x4000, 0x4000).unwrap();
    assert_eq!((s, e), (1, 2));
    assert_eq!(regions(&t), vec![(0, 0x4000), (0x4000, 0x8000), (0x8000, 0x10000)]);
    assert_eq!(t.total_size(), 0x10000);
    // unchanged flags means merge glues them back
    t.memblock_merge_regions();
    assert_eq!(regions(&t), vec![(0, 0x10000)]);
}

#[test]
fn isolate_empty_range_returns_zero() {
    let mut t = MemblockType::new(MemblockTypeId::Memory);
    t.memblock_add_range(0, 0x10000, MemblockFlags::NONE).unwrap();
    assert_eq!(t.memblock_isolate_range(0x20000, 0x1000).unwrap(), (0, 0));
}

#[test]
fn nomap_splits_and_is_skipped_by_allocation() {
    let mut mb = board();
    mb.memblock_mark_nomap(PhysAddr(0x9000_0000), 0x1000_0000).unwrap();
    assert_eq!(
        regions(&mb.memory),
        vec![(0x6000_0000, 0x9000_0000), (0x9000_0000, 0xa000_0000), ]
    );
    assert!(mb.memory.regions()[1].is_nomap());
    assert!(mb.memblock_is_memory(PhysAddr(0x9800_0000)));
    assert!(!mb.memblock_is_map_memory(PhysAddr(0x9800_0000)));
    // top-down lands below the NOMAP region
    let a = mb.memblock_phys_alloc(MIB, MIB).unwrap();
    assert_eq!(a, PhysAddr(0x8ff0_0000));
    let free: Vec<_> = mb.free_mem_ranges().map(|(s, e)| (s.0, e.0)).collect();
    assert_eq!(free, vec![(0x6000_0000, 0x8ff0_0000)]);
    // clearing merges the regions back
    mb.memblock_clear_nomap(PhysAddr(0x9000_0000), 0x1000_0000).unwrap();
    assert_eq!(regions(&mb.memory), vec![(0x6000_0000, 0xa000_0000)]);
}

#[test]
fn different_flags_do_not_merge() {
    let mut t = MemblockType::new(MemblockTypeId::Memory);
    t.memblock_add_range(0, 0x1000, MemblockFlags::NONE).unwrap();
    t.memblock_add_range(0x1000, 0x1000, MemblockFlags::NOMAP).unwrap();
    assert_eq!(t.real_regions().len(), 2);
}

#[test]
fn top_down_is_default_and_aligned() {
    let mut mb = board();
    mb.memblock_reserve(PhysAddr(0x9f6e_3000), 0xa000_0000 - 0x9f6e_3000).unwrap();
    let a = mb.memblock_phys_alloc_range(16 * MIB, 4 * MIB, PhysAddr(0), PhysAddr(0xffff_ffff)).unwrap();
    assert_eq!(a, PhysAddr(0x9e40_0000));
    assert!(mb.memblock_is_region_reserved(a, 16 * MIB));
}

#[test]
fn bottom_up_picks_lowest() {
    let mut mb = board();
    mb.memblock_reserve(PhysAddr(0x6000_4000), 0x6800_bfda - 0x6000_4000).unwrap();
    mb.memblock_set_bottom_up(true);
    let a = mb.memblock_phys_alloc(MIB, MIB).unwrap();
    assert_eq!(a, PhysAddr(0x6810_0000));
}

#[test]
fn find_in_range_respects_bounds() {
    let mb = board();
    // [0x69000000, 0x69800000) top-down, 4 MiB aligned → 0x69400000
    let a = mb.memblock_find_in_range_node(4 * MIB, 4 * MIB, PhysAddr(0x6900_0000), PhysAddr(0x6980_0000));
    assert_eq!(a, Some(PhysAddr(0x6940_0000)));
    // too small a window
    let a = mb.memblock_find_in_range_node(16 * MIB, 4 * MIB, PhysAddr(0x6900_0000), PhysAddr(0x6980_0000));
    assert_eq!(a, None);
}

#[test]
fn accessible_end_uses_current_limit_explicit_end_does_not() {
    let mut mb = board();
    mb.memblock_set_current_limit(PhysAddr(0x8000_0000));
    assert_eq!(mb.memblock_phys_alloc(MIB, MIB), Some(PhysAddr(0x7ff0_0000)));
    assert_eq!(
        mb.memblock_phys_alloc_range(MIB, MIB, PhysAddr(0), PhysAddr(0xa000_0000)),
        Some(PhysAddr(0x9ff0_0000))
    );
    assert_eq!(mb.memblock_alloc(MIB, MIB), Some(PhysAddr(0x7fe0_0000)));
}

#[test]
fn never_allocates_first_page() {
    let mut mb = Memblock::new();
    mb.memblock_add(PhysAddr(0), 0x2000).unwrap();
    mb.memblock_set_bottom_up(true);
    assert_eq!(mb.memblock_phys_alloc(0x1000, 0x1000), Some(PhysAddr(0x1000)));
    assert_eq!(mb.memblock_phys_alloc(0x1000, 0x1000), None);
}

#[test]
fn alloc_fails_when_full() {
    let mut mb = Memblock::new();
    mb.memblock_add(PhysAddr(0x1000_0000), 4 * MIB).unwrap();
    assert!(mb.memblock_phys_alloc(4 * MIB, MIB).is_some());
    assert!(mb.memblock_phys_alloc(PAGE_SIZE, PAGE_SIZE).is_none());
}

#[test]
fn alloc_align_zero_uses_cache_line() {
    let mut mb = board();
    let a = mb.memblock_phys_alloc(100, 0).unwrap();
    assert_eq!(a.0 % SMP_CACHE_BYTES, 0);
    assert_eq!(a.0, round_down(0xa000_0000 - 100, SMP_CACHE_BYTES));
}

#[test]
fn free_ranges_forward_and_reverse_agree() {
    let mut mb = Memblock::new();
    mb.memblock_add(PhysAddr(0x1000_0000), 0x100_0000).unwrap();
    mb.memblock_add(PhysAddr(0x2000_0000), 0x100_0000).unwrap();
    mb.memblock_reserve(PhysAddr(0x0f00_0000), 0x100_2000).unwrap();
    mb.memblock_reserve(PhysAddr(0x1080_0000), 0x1000).unwrap();
    mb.memblock_reserve(PhysAddr(0x20ff_f000), 0x1000).unwrap();
    let fwd: Vec<_> = mb.free_mem_ranges().map(|(s, e)| (s.0, e.0)).collect();
    let mut rev: Vec<_> = mb.free_mem_ranges_reverse().map(|(s, e)| (s.0, e.0)).collect();
    rev.reverse();
    assert_eq!(
        fwd,
        vec![(0x1000_2000, 0x1080_0000), (0x1080_1000, 0x1100_0000), (0x2000_0000, 0x20ff_f000)]
    );
    assert_eq!(fwd, rev);
}

#[test]
fn array_full_is_an_error_not_a_panic() {
    let mut t = MemblockType::with_max(MemblockTypeId::Reserved, 4);
    for i in 0..4u64 {
        t.memblock_add_range(i * 0x2000, 0x1000, MemblockFlags::NONE).unwrap();
    }
    let e = t.memblock_add_range(0x10000, 0x1000, MemblockFlags::NONE).unwrap_err();
    assert_eq!(e.to_string(), "memblock: Failed to double reserved array from 4 to 8 entries !");
    assert_eq!(e.errno(), -12);
    assert!(t.memblock_isolate_range(0x800, 0x100).is_err());
}

#[test]
fn is_region_reserved_is_intersection() {
    let mut mb = board();
    mb.memblock_reserve(PhysAddr(0x6800_0000), MIB).unwrap();
    assert!(mb.memblock_is_region_reserved(PhysAddr(0x67f0_0000), 2 * MIB));
    assert!(!mb.memblock_is_region_reserved(PhysAddr(0x67f0_0000), MIB));
    assert!(!mb.memblock_is_region_reserved(PhysAddr(0x6810_0000), MIB));
    assert!(mb.memblock_is_reserved(PhysAddr(0x680f_ffff)));
    assert!(mb.memblock_is_region_memory(PhysAddr(0x9ff0_0000), MIB));
    assert!(!mb.memblock_is_region_memory(PhysAddr(0x9ff0_0000), 2 * MIB));
}

#[test]
fn end_of_dram_and_pfn_ranges() {
    let mb = board();
    assert_eq!(mb.memblock_start_of_DRAM(), PhysAddr(0x6000_0000));
    assert_eq!(mb.memblock_end_of_DRAM(), PhysAddr(0xa000_0000));
    let r: Vec<_> = mb.mem_pfn_ranges().collect();
    assert_eq!(r, vec![(Pfn(0x60000), Pfn(0xa0000))]);
}

#[test]
fn enforce_memory_limit_truncates() {
    let mut mb = board();
    mb.memblock_reserve(PhysAddr(0x7ff0_0000), 2 * MIB).unwrap();
    mb.memblock_enforce_memory_limit(512 * MIB).unwrap();
    assert_eq!(regions(&mb.memory), vec![(0x6000_0000, 0x8000_0000)]);
    assert_eq!(regions(&mb.reserved), vec![(0x7ff0_0000, 0x8000_0000)]);
}

#[test]
fn trim_memory_rounds_inward() {
    let mut mb = Memblock::new();
    mb.memblock_add(PhysAddr(0x1000_0800), 0x10_0000).unwrap();
    mb.memblock_add(PhysAddr(0x2000_0100), 0x100).unwrap();
    mb.memblock_trim_memory(PAGE_SIZE);
    assert_eq!(regions(&mb.memory), vec![(0x1000_1000, 0x1010_0000)]);
    assert_eq!(mb.memory.total_size(), 0x1010_0000 - 0x1000_1000);
}

#[test]
fn dump_all_lines() {
    let mb = board();
    let mut lines = Vec::new();
    mb.memblock_dump_all(&mut |a| lines.push(a.to_string()));
    assert_eq!(lines[0], "MEMBLOCK configuration:");
    assert_eq!(lines[1], " memory size = 0x40000000 reserved size = 0x00000000");
    assert_eq!(lines[3], " memory[0x0]\t[0x60000000-0x9fffffff], 0x40000000 bytes flags: 0x0");
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    // Shadow model: a set of pages (4 KiB granules over a small window).
    const PAGES: u64 = 64;

    fn check(t: &MemblockType, model: &[bool]) {
        let rs = t.real_regions();
        for w in rs.windows(2) {
            assert!(w[0].end() < w[1].base || (w[0].end() == w[1].base && w[0].flags != w[1].flags), "not minimal/sorted: {:?}", rs);
        }
        let mut got = vec![false; PAGES as usize];
        for r in rs {
            for p in r.base / PAGE_SIZE..r.end() / PAGE_SIZE {
                got[p as usize] = true;
            }
        }
        assert_eq!(got, model);
        let total: u64 = rs.iter().map(|r| r.size).sum();
        assert_eq!(total, t.total_size());
    }

    proptest! {
        #[test]
        fn add_remove_match_page_set(ops in proptest::collection::vec((any::<bool>(), 0..PAGES, 1..16u64), 1..60)) {
            let mut t = MemblockType::new(MemblockTypeId::Reserved);
            let mut model = vec![false; PAGES as usize];
            for (add, start, len) in ops {
                let end = (start + len).min(PAGES);
                if add {
                    t.memblock_add_range(start * PAGE_SIZE, (end - start) * PAGE_SIZE, MemblockFlags::NONE).unwrap();
                } else {
                    t.memblock_remove_range(start * PAGE_SIZE, (end - start) * PAGE_SIZE).unwrap();
                }
                for p in start..end { model[p as usize] = add; }
                check(&t, &model);
            }
        }

        #[test]
        fn find_top_down_returns_highest_fit(res in proptest::collection::vec((0..PAGES, 1..8u64), 0..10), size in 1..8u64, align_order in 0..3u32) {
            let mut mb = Memblock::new();
            mb.memblock_add(PhysAddr(0), PAGES * PAGE_SIZE).unwrap();
            let mut used = vec![false; PAGES as usize];
            used[0] = true; // first page never allocated
            for (s, l) in res {
                let e = (s + l).min(PAGES);
                mb.memblock_reserve(PhysAddr(s * PAGE_SIZE), (e - s) * PAGE_SIZE).unwrap();
                for p in s..e { used[p as usize] = true; }
            }
            let align = 1u64 << align_order;
            let fits = |c: u64| c + size <= PAGES && (c..c + size).all(|p| !used[p as usize]);
            let want_td = (0..PAGES).rev().filter(|c| c % align == 0).find(|&c| fits(c));
            let want_bu = (0..PAGES).filter(|c| c % align == 0).find(|&c| fits(c));
            let got = mb.memblock_find_in_range_node(size * PAGE_SIZE, align * PAGE_SIZE, PhysAddr(0), PhysAddr(MEMBLOCK_ALLOC_ANYWHERE));
            prop_assert_eq!(got.map(|a| a.0 / PAGE_SIZE), want_td);
            mb.memblock_set_bottom_up(true);
            let got = mb.memblock_find_in_range_node(size * PAGE_SIZE, align * PAGE_SIZE, PhysAddr(0), PhysAddr(MEMBLOCK_ALLOC_ANYWHERE));
            prop_assert_eq!(got.map(|a| a.0 / PAGE_SIZE), want_bu);
        }
    }
}
