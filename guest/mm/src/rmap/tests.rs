//! Reverse-map edge cases.
use super::*;
use crate::buddy::tests::{boot_with, SMALL};
use crate::gfp::GFP_HIGHUSER_MOVABLE;

fn setup() -> (crate::buddy::PageAlloc<'static>, Rmap<'static>) {
    let pa = boot_with(SMALL, 0x60000, 256, &[], Some(976 << 20));
    let pool: &'static mut [RmapEntry] = Vec::leak(vec![RmapEntry::EMPTY; 4]);
    (pa, Rmap::new(pool))
}

#[test]
fn add_remove_keeps_mapcount_like_linux() {
    let (mut pa, mut rm) = setup();
    let pfn = pa.alloc_pages(GFP_HIGHUSER_MOVABLE, 0, OWNER_KIND_USER | 1).unwrap();
    assert_eq!(pa.mem.page(pfn).unwrap().mapcount, -1);
    rm.page_add_anon_rmap(&mut pa.mem, pfn, 1, 0x1000).unwrap();
    rm.page_add_anon_rmap(&mut pa.mem, pfn, 2, 0x1000).unwrap();
    let p = *pa.mem.page(pfn).unwrap();
    assert_eq!((p.mapcount, p.has(PG_ANON), p.mapping != 0), (1, true, true));
    assert_eq!(Rmap::page_mapcount(&pa.mem, pfn), 2);
    let v: Vec<_> = rm.for_each_mapping(&pa.mem, pfn).map(|e| (e.asid, e.va)).collect();
    assert_eq!(v, [(2, 0x1000), (1, 0x1000)]);
    assert_eq!(rm.page_add_anon_rmap(&mut pa.mem, pfn, 1, 0x1000), Err(RmapError::AlreadyMapped(pfn, 1, 0x1000)));
    assert_eq!(rm.page_add_anon_rmap(&mut pa.mem, pfn, 1, 0x1001), Err(RmapError::Misaligned(0x1001)));
    rm.page_remove_rmap(&mut pa.mem, pfn, 1, 0x1000).unwrap();
    assert_eq!(rm.page_remove_rmap(&mut pa.mem, pfn, 1, 0x1000), Err(RmapError::NotMapped(pfn, 1, 0x1000)));
    assert_eq!(rm.check_page(&pa.mem, pfn), Ok(1));
    rm.page_remove_rmap(&mut pa.mem, pfn, 2, 0x1000).unwrap();
    let p = *pa.mem.page(pfn).unwrap();
    assert_eq!((p.mapcount, p.mapping, rm.nr_used()), (-1, 0, 0));
    // PageAnon stays; the page frees cleanly.
    pa.__free_pages(pfn, 0).unwrap();
    pa.check_integrity().unwrap();
}

#[test]
fn pool_full_is_an_error_and_entries_recycle() {
    let (mut pa, mut rm) = setup();
    let pfn = pa.alloc_pages(GFP_HIGHUSER_MOVABLE, 0, 0).unwrap();
    for i in 0..4 {
        rm.page_add_anon_rmap(&mut pa.mem, pfn, 1, i << 12).unwrap();
    }
    assert_eq!(rm.page_add_anon_rmap(&mut pa.mem, pfn, 1, 9 << 12), Err(RmapError::PoolFull));
    assert_eq!(pa.mem.page(pfn).unwrap().mapcount, 3);
    rm.page_remove_rmap(&mut pa.mem, pfn, 1, 2 << 12).unwrap();
    rm.page_add_anon_rmap(&mut pa.mem, pfn, 1, 9 << 12).unwrap();
    let mut seen = [0u32; 1];
    rm.check_integrity(&pa.mem, &mut seen).unwrap();
}

#[test]
fn free_and_uncovered_pages_refused() {
    let (mut pa, mut rm) = setup();
    let pfn = pa.alloc_pages(GFP_HIGHUSER_MOVABLE, 0, 0).unwrap();
    pa.__free_pages(pfn, 0).unwrap();
    assert_eq!(rm.page_add_anon_rmap(&mut pa.mem, pfn, 1, 0), Err(RmapError::BadPage(pfn)));
    assert_eq!(rm.page_add_anon_rmap(&mut pa.mem, Pfn(5), 1, 0), Err(RmapError::OutOfRange(Pfn(5))));
    assert_eq!(rm.for_each_mapping(&pa.mem, Pfn(5)).count(), 0);
}

#[test]
fn corrupt_chain_detected_not_looping() {
    let (mut pa, mut rm) = setup();
    let pfn = pa.alloc_pages(GFP_HIGHUSER_MOVABLE, 0, 0).unwrap();
    rm.page_add_anon_rmap(&mut pa.mem, pfn, 1, 0).unwrap();
    rm.page_add_anon_rmap(&mut pa.mem, pfn, 1, 0x1000).unwrap();
    // Make a cycle.
    let head = chain_head(pa.mem.page(pfn).unwrap());
    let second = rm.pool[head as usize].next;
    rm.pool[second as usize].next = head;
    assert_eq!(rm.check_page(&pa.mem, pfn), Err(RmapError::Corrupt(pfn)));
    assert!(rm.for_each_mapping(&pa.mem, pfn).count() <= 4);
}
