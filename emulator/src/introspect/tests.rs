use super::synth::SynthGuest;
use super::*;
use cmaemu_abi::desc::{as_bytes, GuestDesc};
use cmaemu_abi::page::*;
use cmaemu_abi::trace::{self as tr, TraceRecord};

fn guest() -> SynthGuest {
    let mut g = SynthGuest::new(64);
    let base = g.pb_pfn(8);
    let a = g.add_cma("linux,cma", base, 4 << 10, 0);
    g.cma_alloc_at(a, base, 64, cmaemu_abi::desc::DMA_DEV_CAMERA);
    g.add_space(1);
    g.user_page(1, 0x0040_0000, g.pb_pfn(2) + 5);
    g.commit();
    g
}

#[test]
fn snapshot_reads_what_the_guest_wrote() {
    let g = guest();
    let s = Snapshot::read(&g.ram, g.desc_pa).unwrap();
    assert!(s.stable);
    assert_eq!(s.pages.len(), 16384);
    assert_eq!(s.cma.len(), 1);
    assert_eq!(s.cma[0].name, "linux,cma");
    let base = g.pb_pfn(8);
    assert_eq!(s.cma[0].bit(base), Some(true));
    assert_eq!(s.cma[0].bit(base + 64), Some(false));
    assert_eq!(s.pageblock_mt(base), Some(MIGRATE_CMA));
    assert_eq!(s.pageblock_mt(g.pb_pfn(0)), Some(MIGRATE_UNMOVABLE));
    assert!(s.is_free(base + 64));
    assert!(!s.is_free(base));
    let c = s.counters();
    assert_eq!(c.pageblocks_per_mt.iter().sum::<u32>(), 16);
    assert_eq!(c.pageblocks_per_mt[MIGRATE_CMA as usize], 4);
    assert_eq!(c.free_per_mt[MIGRATE_CMA as usize], 4096 - 64);
    assert_eq!(Snapshot::locate(&g.ram), Some(g.desc_pa));
    let regs = s.mmu_regs(1).unwrap();
    assert_eq!(va::translate_va(&g.ram, &regs, 0x0040_0123), Some(((g.pb_pfn(2) as u64 + 5) << 12) | 0x123));
    let maps = va::user_mappings(&g.ram, &regs);
    assert_eq!(maps.len(), 1);
    assert_eq!(maps[0].va, 0x0040_0000);
}

/// The one-pass page states equal `page_state` page by page, and a
/// re-read in place equals a fresh read, on a state with every kind of
/// page (free, CMA bitmap, user, kernel, device, page table, reserved).
#[test]
fn page_state_codes_and_reread_match_the_per_page_answers() {
    let mut g = guest();
    let k = g.pb_pfn(3);
    g.alloc(k, 3, PageRecord { flags: 0, refcount: 1, mapcount: -1, private: 0, lru_next: PFN_NONE, lru_prev: PFN_NONE, owner: OWNER_KIND_DEVICE | 1, mapping: 0 });
    g.alloc(k + 3, 2, PageRecord { flags: PG_RESERVED, refcount: 1, mapcount: -1, private: 0, lru_next: PFN_NONE, lru_prev: PFN_NONE, owner: 0, mapping: 0 });
    g.alloc(k + 5, 1, PageRecord { flags: 0, refcount: 1, mapcount: -1, private: 0, lru_next: PFN_NONE, lru_prev: PFN_NONE, owner: OWNER_KIND_PGTABLE, mapping: 0 });
    g.alloc(k + 6, 1, PageRecord { flags: PG_LRU, refcount: 1, mapcount: -1, private: 0, lru_next: PFN_NONE, lru_prev: PFN_NONE, owner: 0, mapping: 0 });
    g.alloc(k + 7, 1, PageRecord { flags: 0, refcount: 1, mapcount: -1, private: 0, lru_next: PFN_NONE, lru_prev: PFN_NONE, owner: 0, mapping: 0 });
    // inside the area: a kernel-owned page under a set bit, and a CMA-owned one
    let c = g.pb_pfn(8) + 100;
    g.alloc(c, 1, PageRecord { flags: 0, refcount: 1, mapcount: -1, private: 0, lru_next: PFN_NONE, lru_prev: PFN_NONE, owner: 0, mapping: 0 });
    g.set_bits(0, c, 1, true);
    g.alloc(c + 1, 1, PageRecord { flags: 0, refcount: 1, mapcount: -1, private: 0, lru_next: PFN_NONE, lru_prev: PFN_NONE, owner: OWNER_KIND_CMA, mapping: 0 });
    g.commit();
    let mut s = Snapshot::read(&g.ram, g.desc_pa).unwrap();
    let codes = s.page_state_codes();
    let base = s.base_pfn();
    let each: Vec<u8> = (0..s.pages.len() as u32).map(|i| s.page_state(base + i).unwrap() as u8).collect();
    assert_eq!(codes, each);
    let kinds: std::collections::BTreeSet<u8> = codes.iter().copied().collect();
    assert_eq!(kinds.len(), PageState::ALL.len(), "every state occurs: {kinds:?}");
    g.free(k, 3);
    g.commit();
    s.reread(&g.ram).unwrap();
    let fresh = Snapshot::read(&g.ram, g.desc_pa).unwrap();
    assert_eq!((s.pages == fresh.pages, s.page_state_codes() == fresh.page_state_codes()), (true, true));
    assert_eq!(s.page_state(k), Some(PageState::Free));
}

#[test]
fn unstable_when_seq_odd() {
    let mut g = guest();
    g.mm_seq = 3;
    g.commit();
    assert!(!Snapshot::read(&g.ram, g.desc_pa).unwrap().stable);
}

fn with_desc(g: &SynthGuest, d0: &GuestDesc, f: impl Fn(&mut GuestDesc)) -> Result<Snapshot, IntrospectError> {
    let mut d = *d0;
    f(&mut d);
    g.ram.write(g.desc_pa, as_bytes(&d)).unwrap();
    Snapshot::read(&g.ram, g.desc_pa)
}

#[test]
fn hostile_descriptors_are_refused_naming_the_field() {
    let g = guest();
    let d0 = Snapshot::read_desc(&g.ram, g.desc_pa).unwrap();
    let cases: Vec<(&str, Box<dyn Fn(&mut GuestDesc)>)> = vec![
        ("magic", Box::new(|d| d.magic = 0xdead_beef)),
        ("version", Box::new(|d| d.version = 99)),
        ("page_record_size", Box::new(|d| d.page_record_size = 31)),
        ("trace_record_size", Box::new(|d| d.trace_record_size = 0)),
        ("nr_pages", Box::new(|d| d.nr_pages = u32::MAX)),
        ("nr_pages", Box::new(|d| d.nr_pages = 0)),
        ("base_pfn", Box::new(|d| d.base_pfn = 0)),
        ("base_pfn", Box::new(|d| d.base_pfn = u32::MAX - 10)),
        ("page array", Box::new(|d| d.page_array_pa = 0x9fff_f000)),
        ("page array", Box::new(|d| d.page_array_pa = u32::MAX)),
        ("max_order", Box::new(|d| d.max_order = 1000)),
        ("pageblock_order", Box::new(|d| d.pageblock_order = 31)),
        ("pageblock_words", Box::new(|d| d.pageblock_words = u32::MAX)),
        ("pageblock_words", Box::new(|d| d.pageblock_words = 0)),
        ("pageblock_base_pfn", Box::new(|d| d.pageblock_base_pfn = 7)),
        ("nr_zones", Box::new(|d| d.nr_zones = 7)),
        ("zones", Box::new(|d| d.zones[0].end_pfn = u32::MAX)),
        ("nr_cma_areas", Box::new(|d| d.nr_cma_areas = 1 << 30)),
        ("CMA area table", Box::new(|d| d.cma_table_pa = 0x1000)),
        ("nr_address_spaces", Box::new(|d| d.nr_address_spaces = u32::MAX)),
        ("ring_capacity", Box::new(|d| d.ring_capacity = 3)),
        ("trace ring", Box::new(|d| d.ring_pa = 0x63ff_ff00)),
        ("ttbcr", Box::new(|d| d.ttbcr = 0x8000_0000)),
    ];
    for (field, f) in cases {
        let e = with_desc(&g, &d0, f).expect_err(field);
        let msg = e.to_string();
        assert!(msg.contains(field), "{field}: {msg}");
    }
    assert!(with_desc(&g, &d0, |_| {}).is_ok());
}

#[test]
fn hostile_cma_records_and_random_garbage_never_panic() {
    let g = guest();
    // CMA record pointing outside the page array
    let mut rec = g.ram.read_u32(g.cma_table_pa + 32).unwrap();
    g.ram.write_u32(g.cma_table_pa + 32, 0xffff_0000).unwrap();
    let e = Snapshot::read(&g.ram, g.desc_pa).unwrap_err().to_string();
    assert!(e.contains("cma_area.base_pfn"), "{e}");
    g.ram.write_u32(g.cma_table_pa + 32, rec).unwrap();
    rec = g.ram.read_u32(g.cma_table_pa + 48).unwrap();
    g.ram.write_u32(g.cma_table_pa + 48, u32::MAX).unwrap();
    let e = Snapshot::read(&g.ram, g.desc_pa).unwrap_err().to_string();
    assert!(e.contains("bitmap_words"), "{e}");
    g.ram.write_u32(g.cma_table_pa + 48, rec).unwrap();
    assert!(Snapshot::read(&g.ram, g.desc_pa).is_ok());
    // deterministic pseudo-random descriptors: valid header, garbage body
    let mut x: u64 = 0x1234_5678_9abc_def0;
    let d0 = Snapshot::read_desc(&g.ram, g.desc_pa).unwrap();
    for _ in 0..2000 {
        let mut b = as_bytes(&d0).to_vec();
        for _ in 0..6 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let off = 32 + (x as usize % (b.len() - 32));
            b[off] = (x >> 32) as u8;
        }
        g.ram.write(g.desc_pa, &b).unwrap();
        if let Ok(s) = Snapshot::read(&g.ram, g.desc_pa) {
            // (verify's tests run the checkers on such snapshots too)
            let _ = s.counters();
        }
    }
    // a descriptor at the very end of RAM
    let end = g.ram.base() + g.ram.len() as u64 - 8;
    assert!(matches!(Snapshot::read(&g.ram, end), Err(IntrospectError::NotInRam { .. })));
    assert!(Snapshot::read(&g.ram, 0).is_err());
    assert!(Snapshot::read(&g.ram, u64::MAX - 3).is_err());
}

#[test]
fn ring_drainer_reads_and_survives_hostile_indices() {
    let g = guest();
    let d = Snapshot::read_desc(&g.ram, g.desc_pa).unwrap();
    let mut dr = RingDrainer::new(&g.ram, &d).unwrap();
    for i in 0..10 {
        assert!(g.push(&TraceRecord::mark(i, "t")));
    }
    let mut out = Vec::new();
    assert_eq!(dr.drain(&g.ram, &mut out).unwrap(), 0);
    assert_eq!(out.len(), 10);
    for i in 0..200 {
        g.push(&TraceRecord::mark(i, "t"));
    }
    out.clear();
    assert_eq!(dr.drain(&g.ram, &mut out).unwrap(), 72);
    assert_eq!(out.len(), 128);
    g.ram.write_u32(g.ring_pa + tr::RING_OFF_HEAD as u64, 0x7fff_ffff).unwrap();
    assert!(dr.drain(&g.ram, &mut out).is_err());
    assert_eq!(dr.corrupt, 1);
    out.clear();
    assert!(g.push(&TraceRecord::mark(1, "after")));
    dr.drain(&g.ram, &mut out).unwrap();
    assert_eq!(out.len(), 1);
    g.ram.write_u32(g.ring_pa, 0).unwrap();
    assert!(dr.drain(&g.ram, &mut out).is_err());
    assert!(RingDrainer::new(&g.ram, &d).is_err());
}

/// The free map computed chunk by chunk as the page array is copied
/// equals the one computed over the whole array, also for a free block
/// that starts in one 2048-record chunk and ends in the next (a corrupt,
/// misaligned buddy head), and it is recomputed in place by a re-read.
#[test]
fn free_map_read_in_chunks_matches_the_whole_array() {
    let mut g = guest();
    let base = g.pb_pfn(0);
    let head = base + 2045;
    g.alloc(head, 8, PageRecord { flags: 0, refcount: 1, mapcount: -1, private: 0, lru_next: PFN_NONE, lru_prev: PFN_NONE, owner: 0, mapping: 0 });
    g.commit();
    let mut s = Snapshot::read(&g.ram, g.desc_pa).unwrap();
    let free_of = |s: &Snapshot| -> Vec<bool> { (0..s.pages.len() as u32).map(|i| s.is_free(base + i)).collect() };
    assert!(!s.is_free(head + 4));
    // a buddy head of order 3 at 2045: pages 2045..2053 straddle the chunk boundary
    let mut rec = s.pages[(head - base) as usize];
    rec.flags |= PG_BUDDY;
    rec.private = 3;
    g.ram.write(s.desc.page_array_pa as u64 + (head - base) as u64 * 32, cmaemu_abi::desc::as_bytes(&rec)).unwrap();
    s.reread(&g.ram).unwrap();
    let whole = Snapshot::from_parts(s.desc, s.pages.clone(), s.pageblock_words.clone(), s.cma.clone(), s.stable);
    assert_eq!(free_of(&s), free_of(&whole));
    assert!(s.is_free(head + 7) && s.is_free(base + 2048), "the block's pages past the chunk boundary are free");
    assert!(!s.is_free(head + 8));
}
