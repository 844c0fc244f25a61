//! The LRU add batch over a host `Vec` of page records.
use super::*;
use crate::buddy::tests::boot;
use crate::gfp::*;
use crate::profile::MmProfile;

fn new_user_page(pa: &mut PageAlloc) -> Pfn {
    let p = pa.__alloc_pages(GFP_HIGHUSER_MOVABLE, 0).unwrap();
    // mapped once (page_add_new_anon_rmap)
    let r = pa.mem.page_mut(p).unwrap();
    r.mapcount = 0;
    r.flags |= PG_ANON;
    p
}

#[test]
fn pages_wait_in_the_batch_with_an_extra_reference_until_it_fills() {
    let mut pa = boot(MmProfile::DEBIAN_6_1, 0x60000, 16384);
    let mut pages = Vec::new();
    for i in 0..PAGEVEC_SIZE - 1 {
        let p = new_user_page(&mut pa);
        pa.folio_add_lru(p);
        pages.push(p);
        assert_eq!(pa.lru_add.nr as usize, i + 1);
        let r = pa.mem.page(p).unwrap();
        assert!(!r.has(PG_LRU) && r.refcount == 2, "{r:?}");
        assert!(pa.in_lru_add_batch(p));
    }
    // The 15th fills the batch: all move to the LRU, the extra refs go.
    let p = new_user_page(&mut pa);
    pa.folio_add_lru(p);
    pages.push(p);
    assert_eq!(pa.lru_add.nr, 0);
    for p in pages {
        let r = pa.mem.page(p).unwrap();
        assert!(r.has(PG_LRU) && r.refcount == 1, "{r:?}");
    }
}

#[test]
fn drain_and_disabled_cache() {
    let mut pa = boot(MmProfile::DEBIAN_6_1, 0x60000, 16384);
    let a = new_user_page(&mut pa);
    pa.folio_add_lru(a);
    assert!(!pa.mem.page(a).unwrap().has(PG_LRU));
    // lru_cache_disable drains ...
    pa.lru_cache_disable(false);
    assert!(pa.mem.page(a).unwrap().has(PG_LRU));
    assert_eq!(pa.mem.page(a).unwrap().refcount, 1);
    // ... and new pages bypass the batch while disabled.
    let b = new_user_page(&mut pa);
    pa.folio_add_lru(b);
    assert!(pa.mem.page(b).unwrap().has(PG_LRU) && pa.lru_add.nr == 0);
    pa.lru_cache_enable();
    let c = new_user_page(&mut pa);
    pa.folio_add_lru(c);
    assert_eq!(pa.lru_add.nr, 1);
    // The injection leaves the batch as it was.
    pa.lru_cache_disable(true);
    assert_eq!(pa.lru_add.nr, 1);
    pa.lru_cache_enable();
    pa.lru_add_drain_all();
    assert!(pa.mem.page(c).unwrap().has(PG_LRU) && pa.lru_add.nr == 0);
}

#[test]
fn a_page_unmapped_while_in_the_batch_is_freed_when_the_batch_moves() {
    let mut pa = boot(MmProfile::DEBIAN_6_1, 0x60000, 16384);
    let a = new_user_page(&mut pa);
    pa.folio_add_lru(a);
    // zap_pte_range + release_pages without a drain first: the mapping's
    // reference goes, the batch's stays.
    let r = pa.mem.page_mut(a).unwrap();
    r.mapcount = -1;
    r.flags &= !PG_ANON;
    pa.__free_pages(a, 0).unwrap();
    assert_eq!(pa.mem.page(a).unwrap().refcount, 1);
    let free = pa.nr_free_pages() + pa.nr_pcp_pages();
    pa.lru_add_drain();
    let r = pa.mem.page(a).unwrap();
    assert!(r.refcount == 0 && !r.has(PG_LRU), "{r:?}");
    assert_eq!(pa.nr_free_pages() + pa.nr_pcp_pages(), free + 1);
    pa.check_integrity().unwrap();
}

#[test]
fn double_add_is_refused() {
    let mut pa = boot(MmProfile::DEBIAN_6_1, 0x60000, 16384);
    let a = new_user_page(&mut pa);
    pa.folio_add_lru(a);
    pa.folio_add_lru(a);
    assert_eq!((pa.lru_add.nr, pa.mem.page(a).unwrap().refcount), (1, 2));
}
