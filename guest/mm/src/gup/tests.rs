//! Pins over a host `Vec` of page records.
use super::*;
use crate::buddy::tests::boot;
use crate::gfp::*;
use crate::profile::MmProfile;

/// A movable anonymous page mapped once (`do_anonymous_page`), on the LRU.
fn mapped_user_page(pa: &mut PageAlloc) -> Pfn {
    let p = pa.__alloc_pages(GFP_HIGHUSER_MOVABLE, 0).unwrap();
    let r = pa.mem.page_mut(p).unwrap();
    r.mapcount = 0;
    r.flags |= PG_ANON | PG_LRU;
    p
}

/// `zap_pte_range` of the page's only mapping: the mapcount goes, then
/// the mapping's reference (`tlb_flush_mmu` → `free_pages_and_swap_cache`).
fn munmap(pa: &mut PageAlloc, p: Pfn) {
    pa.mem.page_mut(p).unwrap().mapcount = -1;
    let last = pa.mem.page(p).unwrap().refcount == 1;
    if last {
        pa.mem.page_mut(p).unwrap().flags &= !PG_LRU;
    }
    pa.__free_pages(p, 0).unwrap();
}

#[test]
fn a_pinned_page_outlives_munmap_and_its_unpin_frees_it() {
    let mut pa = boot(MmProfile::DEBIAN_6_1, 0x60000, 16384);
    let p = mapped_user_page(&mut pa);
    let free0 = pa.nr_free_pages();
    pa.pin_user_page(p).unwrap();
    assert_eq!(pa.mem.page(p).unwrap().refcount, 2);
    munmap(&mut pa, p);
    // the pin's reference keeps it allocated, off every page table
    let r = *pa.mem.page(p).unwrap();
    assert_eq!((r.refcount, r.mapcount), (1, -1), "{r:?}");
    assert!(!r.has(PG_BUDDY) && r.has(PG_LRU), "{r:?}");
    assert_eq!(pa.nr_free_pages(), free0);
    // the holder unpins the page it pinned: the last reference frees it,
    // off the LRU first (free_pages_check would call PG_lru a bad page)
    assert_eq!(pa.unpin_user_page(p), Ok(true));
    assert!(pa.mem.page(p).unwrap().has(PG_BUDDY));
    assert_eq!(pa.nr_free_pages(), free0 + 1);
    pa.check_integrity().unwrap();
    // a second unpin finds nothing to drop and changes nothing
    assert_eq!(pa.unpin_user_page(p), Err(BuddyError::DoubleFree(p)));
    assert_eq!(pa.nr_free_pages(), free0 + 1);
    pa.check_integrity().unwrap();
}

#[test]
fn unpinning_a_mapped_page_drops_only_the_pin() {
    let mut pa = boot(MmProfile::DEBIAN_6_1, 0x60000, 16384);
    let p = mapped_user_page(&mut pa);
    pa.pin_user_page(p).unwrap();
    pa.pin_user_page(p).unwrap();
    assert_eq!(pa.unpin_user_page(p), Ok(false));
    assert_eq!(pa.unpin_user_page(p), Ok(false));
    let r = *pa.mem.page(p).unwrap();
    assert_eq!((r.refcount, r.mapcount), (1, 0), "{r:?}");
    assert!(r.has(PG_LRU | PG_ANON), "{r:?}");
}

#[test]
fn a_free_page_cannot_be_pinned() {
    let mut pa = boot(MmProfile::DEBIAN_6_1, 0x60000, 16384);
    let p = pa.__alloc_pages(GFP_HIGHUSER_MOVABLE, 0).unwrap();
    pa.__free_pages(p, 0).unwrap();
    let free0 = pa.nr_free_pages();
    assert!(pa.pin_user_page(p).is_err());
    assert!(pa.mem.page(p).unwrap().has(PG_BUDDY));
    assert_eq!(pa.nr_free_pages(), free0);
    assert!(pa.pin_user_page(Pfn(0x10)).is_err(), "no record below the map");
    pa.check_integrity().unwrap();
}
