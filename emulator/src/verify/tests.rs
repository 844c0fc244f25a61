//! Each check is proven able to fail: the states below are what each guest
//! fault injection leaves behind.
use super::*;
use crate::introspect::synth::SynthGuest;
use crate::introspect::Snapshot;
use cmaemu_abi::desc::{as_bytes, PinRecord, DMA_DEV_CAMERA, DMA_DEV_CLCD, PIN_HOLDER_CAMERA, PIN_HOLDER_SHELL};
use cmaemu_abi::page::*;
use cmaemu_abi::trace::GuestEvent;

const VA: u32 = 0x0040_0000;

struct World {
    g: SynthGuest,
    cma_base: u32,
    user_old: u32,
    user_new: u32,
    bufs: DmaBuffers,
}

/// A healthy state: CMA area of 4 pageblocks, a camera buffer of 64 pages
/// at its start, a user page at `user_old` (in the CMA area: it will be
/// migrated out) mapped at VA.
fn world() -> World {
    let mut g = SynthGuest::new(64);
    let cma_base = g.pb_pfn(8);
    let a = g.add_cma("linux,cma", cma_base, 4 << 10, 0);
    g.cma_alloc_at(a, cma_base, 64, DMA_DEV_CAMERA);
    g.add_space(1);
    let user_old = cma_base + 200;
    let user_new = g.pb_pfn(3) + 7;
    g.user_page(1, VA, user_old);
    g.fill(user_old, 9);
    g.commit();
    let mut bufs = DmaBuffers::default();
    bufs.on_event(&GuestEvent::DmaAlloc { device: DMA_DEV_CAMERA, pfn: cma_base as u64, count: 64, order: 6, errorno: 0, area: 0 });
    World { g, cma_base, user_old, user_new, bufs }
}

fn snap(g: &SynthGuest) -> Snapshot {
    Snapshot::read(&g.ram, g.desc_pa).unwrap()
}

fn ctx() -> CheckCtx {
    CheckCtx { frame: 3, at_ns: 1000, recent: vec!["{\"e\":1}".into()] }
}

fn only(v: &[Violation], c: Check) -> Vec<&Violation> {
    v.iter().filter(|x| x.check == c).collect()
}

#[test]
fn healthy_state_has_no_violations() {
    let w = world();
    let s = snap(&w.g);
    assert_eq!(check_integrity(&s, &ctx()), vec![]);
    let t = DmaTransfer { device: DMA_DEV_CAMERA, pa: (w.cma_base as u64) << 12, len: 64 * 4096, write: true };
    assert_eq!(check_dma(&s, Some(&w.bufs), &t, &ctx()), vec![]);
    assert_eq!(check_mapped_free(&s, &w.g.ram, None, &ctx()), vec![]);
}

#[test]
fn healthy_migration_passes() {
    let mut w = world();
    let before = w.g.frame(w.user_old);
    w.g.move_user_page(1, VA, w.user_old, w.user_new, true);
    w.g.commit();
    let s = snap(&w.g);
    let after = w.g.frame(w.user_new);
    let m = MigrationInput { old_pfn: w.user_old, new_pfn: w.user_new, asid: 1, vas: &[VA], before: &before, after: &after, cached: &[Some((w.user_new as u64) << 12)] };
    assert_eq!(check_migration(&s, &w.g.ram, &m, &ctx()), vec![]);
    assert_eq!(check_integrity(&s, &ctx()), vec![]);
    assert!(check_translation(&s, 1, VA, (w.user_new as u64) << 12, &ctx()).is_none());
}

#[test]
fn skip_tlb_flush_is_caught() {
    let mut w = world();
    let before = w.g.frame(w.user_old);
    w.g.move_user_page(1, VA, w.user_old, w.user_new, true);
    w.g.commit();
    let s = snap(&w.g);
    let after = w.g.frame(w.user_new);
    // the CPU still caches VA -> old frame
    let m = MigrationInput { old_pfn: w.user_old, new_pfn: w.user_new, asid: 1, vas: &[VA], before: &before, after: &after, cached: &[Some(((w.user_old as u64) << 12) | 0x10)] };
    let v = check_migration(&s, &w.g.ram, &m, &ctx());
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].check, Check::MigrateTlb);
    assert_eq!(v[0].va, Some(VA));
    assert_eq!(v[0].pfn, Some(w.user_old));
    assert!(v[0].detail.contains("missing TLB flush"));
    assert_eq!((v[0].frame, v[0].at_ns, v[0].recent_events.len()), (3, 1000, 1));
    // and the CMA-aware MMU catches a later fill through that stale mapping
    let c = check_translation(&s, 1, VA, (w.user_old as u64) << 12, &ctx()).unwrap();
    assert_eq!((c.check, c.pfn, c.va), (Check::PteMapsFree, Some(w.user_old), Some(VA)));
}

#[test]
fn skip_copy_is_caught() {
    let mut w = world();
    let before = w.g.frame(w.user_old);
    w.g.move_user_page(1, VA, w.user_old, w.user_new, false);
    w.g.commit();
    let s = snap(&w.g);
    let after = w.g.frame(w.user_new);
    let m = MigrationInput { old_pfn: w.user_old, new_pfn: w.user_new, asid: 1, vas: &[VA], before: &before, after: &after, cached: &[] };
    let v = check_migration(&s, &w.g.ram, &m, &ctx());
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!((v[0].check, v[0].pfn), (Check::MigrateContent, Some(w.user_new)));
}

#[test]
fn missing_remap_and_pte_to_freed_frame_are_caught() {
    let mut w = world();
    let before = w.g.frame(w.user_old);
    // copied and old freed, but the PTE still points at the old frame
    w.g.move_user_page(1, VA, w.user_old, w.user_new, true);
    w.g.set_pte(1, VA, Some(w.user_old));
    w.g.commit();
    let s = snap(&w.g);
    let after = w.g.frame(w.user_new);
    let m = MigrationInput { old_pfn: w.user_old, new_pfn: w.user_new, asid: 1, vas: &[VA], before: &before, after: &after, cached: &[] };
    let mut v = check_migration(&s, &w.g.ram, &m, &ctx());
    // PTEs to free frames are found by the whole-space walk (the monitor
    // runs it at every frame boundary)
    v.extend(check_mapped_free(&s, &w.g.ram, Some(1), &ctx()));
    let pte = only(&v, Check::MigratePte);
    assert_eq!(pte.len(), 1, "{v:#?}");
    assert_eq!((pte[0].pfn, pte[0].va), (Some(w.user_old), Some(VA)));
    let free = only(&v, Check::PteMapsFree);
    assert_eq!(free.len(), 1);
    assert_eq!((free[0].pfn, free[0].va), (Some(w.user_old), Some(VA)));
}

#[test]
fn dma_noncontig_is_caught() {
    let mut w = world();
    // a second buffer, not adjacent: the driver programs one transfer over both
    let a = 0;
    let second = w.cma_base + 128;
    w.g.cma_alloc_at(a, second, 64, DMA_DEV_CAMERA);
    w.g.commit();
    w.bufs.on_event(&GuestEvent::DmaAlloc { device: DMA_DEV_CAMERA, pfn: second as u64, count: 64, order: 6, errorno: 0, area: 0 });
    let s = snap(&w.g);
    let t = DmaTransfer { device: DMA_DEV_CAMERA, pa: (w.cma_base as u64) << 12, len: 192 * 4096, write: true };
    let v = check_dma(&s, Some(&w.bufs), &t, &ctx());
    let c = only(&v, Check::DmaContiguity);
    assert_eq!(c.len(), 1, "{v:#?}");
    assert_eq!(c[0].pfn, Some(w.cma_base + 64));
    assert_eq!(c[0].device, Some(DMA_DEV_CAMERA));
    let o = only(&v, Check::DmaOwnership);
    assert_eq!(o.len(), 1, "{v:#?}");
    assert_eq!(o[0].pfn, Some(w.cma_base + 64));
    assert!(o[0].detail.contains("64 frame(s)") && o[0].detail.contains("free"), "{}", o[0].detail);
}

#[test]
fn dma_after_free_is_caught() {
    let mut w = world();
    w.g.cma_release(0, w.cma_base, 64);
    w.g.commit();
    w.bufs.on_event(&GuestEvent::DmaFree { device: DMA_DEV_CAMERA, pfn: w.cma_base as u64, count: 64 });
    let s = snap(&w.g);
    assert_eq!(check_integrity(&s, &ctx()), vec![]);
    let t = DmaTransfer { device: DMA_DEV_CAMERA, pa: ((w.cma_base as u64) << 12) + 0x800, len: 4096, write: true };
    let v = check_dma(&s, Some(&w.bufs), &t, &ctx());
    assert_eq!(only(&v, Check::DmaContiguity)[0].pfn, Some(w.cma_base));
    let o = only(&v, Check::DmaOwnership);
    assert_eq!(o.len(), 1);
    assert_eq!(o[0].pfn, Some(w.cma_base));
    assert!(o[0].detail.contains("2 frame(s)"), "{}", o[0].detail);
    // without the buffer list the ownership check alone still fires
    assert_eq!(check_dma(&s, None, &t, &ctx()).len(), 1);
}

#[test]
fn dma_into_movable_and_foreign_frames_is_caught() {
    let w = world();
    let s = snap(&w.g);
    // the display scans out the camera's buffer: sharing for reading is fine
    let t = DmaTransfer { device: DMA_DEV_CLCD, pa: (w.cma_base as u64) << 12, len: 4096, write: false };
    assert_eq!(check_dma(&s, Some(&w.bufs), &t, &ctx()), vec![]);
    // but writing into another device's buffer is not
    let t = DmaTransfer { write: true, ..t };
    let v = check_dma(&s, Some(&w.bufs), &t, &ctx());
    assert_eq!(v.len(), 2, "{v:#?}");
    assert_eq!(v[0].check, Check::DmaContiguity);
    assert!(v[1].detail.contains("allocated to device camera"));
    // the camera writes into a user page
    let t = DmaTransfer { device: DMA_DEV_CAMERA, pa: (w.user_old as u64) << 12, len: 16, write: true };
    let v = check_dma(&s, None, &t, &ctx());
    assert_eq!((v.len(), v[0].pfn), (1, Some(w.user_old)));
    assert!(v[0].detail.contains("movable"));
    // kernel memory, and beyond RAM
    let t = DmaTransfer { device: DMA_DEV_CAMERA, pa: 0x6000_0000, len: 8, write: true };
    assert!(check_dma(&s, None, &t, &ctx())[0].detail.contains("someone else"));
    let t = DmaTransfer { device: DMA_DEV_CAMERA, pa: 0x1_0000_0000 - 4096, len: u64::MAX, write: true };
    assert_eq!(check_dma(&s, None, &t, &ctx()).len(), 1);
    let t = DmaTransfer { device: DMA_DEV_CAMERA, pa: 0x4000_0000, len: 4096, write: true };
    assert!(check_dma(&s, None, &t, &ctx())[0].detail.contains("outside"));
}

#[test]
fn cma_owned_pages_belong_to_the_device_holding_the_buffer() {
    let mut w = world();
    // the mm tags cma_alloc pages OWNER_KIND_CMA | area; the buffer list says whose
    let second = w.cma_base + 128;
    w.g.set_bits(0, second, 16, true);
    w.g.alloc(second, 16, PageRecord { owner: OWNER_KIND_CMA, ..PageRecord::INIT });
    w.g.commit();
    let s = snap(&w.g);
    assert_eq!(check_integrity(&s, &ctx()), vec![]);
    let t = DmaTransfer { device: DMA_DEV_CLCD, pa: (second as u64) << 12, len: 16 * 4096, write: true };
    // not (yet) a buffer of the display: foreign
    let v = check_dma(&s, Some(&w.bufs), &t, &ctx());
    assert_eq!(v.len(), 2, "{v:#?}");
    w.bufs.on_event(&GuestEvent::DmaAlloc { device: DMA_DEV_CLCD, pfn: second as u64, count: 16, order: 4, errorno: 0, area: 0 });
    assert_eq!(check_dma(&s, Some(&w.bufs), &t, &ctx()), vec![]);
    // the camera may not write it, but may read it
    let cam = DmaTransfer { device: DMA_DEV_CAMERA, ..t };
    assert_eq!(check_dma(&s, Some(&w.bufs), &cam, &ctx()).len(), 2);
    assert_eq!(check_dma(&s, Some(&w.bufs), &DmaTransfer { write: false, ..cam }, &ctx()), vec![]);
}

#[test]
fn leak_isolation_is_caught() {
    let mut w = world();
    let pb = w.g.pb_pfn(9);
    w.g.pb_mt[9] = MIGRATE_ISOLATE;
    w.g.commit();
    let v = check_integrity(&snap(&w.g), &ctx());
    let iso = only(&v, Check::Isolation);
    assert_eq!(iso.len(), 1, "{v:#?}");
    assert_eq!(iso[0].pfn, Some(pb));
    // the same state read mid-operation (mm_seq odd) is not judged
    w.g.mm_seq = 1;
    w.g.commit();
    assert_eq!(check_integrity(&snap(&w.g), &ctx()), vec![]);
}

#[test]
fn leak_bitmap_is_caught() {
    let mut w = world();
    // cma_release freed the pages but left the bits set
    w.g.free(w.cma_base, 64);
    w.g.commit();
    let v = check_integrity(&snap(&w.g), &ctx());
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!((v[0].check, v[0].pfn), (Check::CmaBitmap, Some(w.cma_base)));
    assert!(v[0].detail.contains("64 page(s)"), "{}", v[0].detail);
}

#[test]
fn bitmap_clear_under_device_pages_is_caught() {
    let mut w = world();
    w.g.set_bits(0, w.cma_base + 8, 4, false);
    w.g.commit();
    let v = check_integrity(&snap(&w.g), &ctx());
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!((v[0].check, v[0].pfn), (Check::CmaBitmap, Some(w.cma_base + 8)));
    // and DMA into those frames is not owned
    let t = DmaTransfer { device: DMA_DEV_CAMERA, pa: (w.cma_base as u64) << 12, len: 64 * 4096, write: true };
    let o = check_dma(&snap(&w.g), Some(&w.bufs), &t, &ctx());
    assert_eq!((o.len(), o[0].pfn), (1, Some(w.cma_base + 8)));
}

#[test]
fn wrong_migratetype_is_caught() {
    // (a) a CMA pageblock retyped MOVABLE (its free pages follow it)
    let mut w = world();
    let pb = w.g.pb_pfn(10);
    w.g.pb_mt[10] = MIGRATE_MOVABLE;
    w.g.commit();
    let v = check_integrity(&snap(&w.g), &ctx());
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!((v[0].check, v[0].pfn), (Check::Pageblock, Some(pb)));
    // (b) the pageblock is fine but a CMA page was freed to the MOVABLE list
    let w = world();
    let s0 = snap(&w.g);
    let head = w.g.pb_pfn(11);
    let mut r = w.g.read_page(head);
    assert!(r.has(PG_BUDDY));
    r.flags = (r.flags & !(PG_LIST_MT_MASK << PG_LIST_MT_SHIFT)) | ((MIGRATE_MOVABLE as u32) << PG_LIST_MT_SHIFT);
    w.g.write_page(head, &r);
    // move it from the CMA list to the MOVABLE list of its order
    let order = r.private as usize;
    let mut d = s0.desc;
    let z = &mut d.zones[0];
    assert_eq!(z.free_head[order][MIGRATE_CMA as usize], w.g.pb_pfn(8) + 1024, "head of the CMA list");
    // unlink: head is the last block of the CMA list at this order
    let prev = r.lru_prev;
    let mut pr = w.g.read_page(prev);
    pr.lru_next = PFN_NONE;
    w.g.write_page(prev, &pr);
    let old_head = z.free_head[order][MIGRATE_MOVABLE as usize];
    let mut r2 = w.g.read_page(head);
    r2.lru_prev = PFN_NONE;
    r2.lru_next = old_head;
    w.g.write_page(head, &r2);
    if old_head != PFN_NONE {
        let mut oh = w.g.read_page(old_head);
        oh.lru_prev = head;
        w.g.write_page(old_head, &oh);
    }
    z.free_head[order][MIGRATE_MOVABLE as usize] = head;
    z.nr_free_cma_pages -= 1 << order;
    w.g.ram.write(w.g.desc_pa, as_bytes(&d)).unwrap();
    let v = check_integrity(&snap(&w.g), &ctx());
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!((v[0].check, v[0].pfn), (Check::Pageblock, Some(head)));
    assert!(v[0].detail.contains("Movable list") && v[0].detail.contains("CMA"), "{}", v[0].detail);
}

#[test]
fn double_free_is_caught() {
    let w = world();
    let s0 = snap(&w.g);
    // a page inside a free order-10 block is freed again as an order-0 block
    let blk = w.g.pb_pfn(5);
    assert!(w.g.read_page(blk).has(PG_BUDDY));
    let p = blk + 3;
    let mut d = s0.desc;
    let z = &mut d.zones[0];
    let mt = MIGRATE_MOVABLE as usize;
    let old_head = z.free_head[0][mt];
    let r = PageRecord { flags: PG_BUDDY | ((mt as u32) << PG_LIST_MT_SHIFT), refcount: 0, private: 0, lru_next: old_head, lru_prev: PFN_NONE, ..PageRecord::INIT };
    w.g.write_page(p, &r);
    if old_head != PFN_NONE {
        let mut oh = w.g.read_page(old_head);
        oh.lru_prev = p;
        w.g.write_page(old_head, &oh);
    }
    z.free_head[0][mt] = p;
    z.nr_free[0] += 1;
    z.nr_free_pages += 1;
    w.g.ram.write(w.g.desc_pa, as_bytes(&d)).unwrap();
    let v = check_integrity(&snap(&w.g), &ctx());
    let fl = only(&v, Check::FreeList);
    assert_eq!(fl.len(), 1, "{v:#?}");
    assert_eq!(fl[0].pfn, Some(p));
    assert!(fl[0].detail.contains("double free"));
}

#[test]
fn freed_while_owned_and_list_corruption_are_caught() {
    let w = world();
    // a free block head that still carries an owner (free and owned)
    let blk = w.g.pb_pfn(6);
    let mut r = w.g.read_page(blk);
    r.owner = OWNER_KIND_DEVICE | DMA_DEV_CAMERA;
    w.g.write_page(blk, &r);
    let v = check_integrity(&snap(&w.g), &ctx());
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!((v[0].check, v[0].pfn), (Check::PageState, Some(blk)));
    // a cycle in a free list
    r.owner = 0;
    r.lru_next = blk;
    w.g.write_page(blk, &r);
    let v = check_integrity(&snap(&w.g), &ctx());
    assert!(v.iter().any(|x| x.check == Check::FreeList && x.pfn == Some(blk)), "{v:#?}");
}

#[test]
fn many_violations_are_capped() {
    let mut w = world();
    for i in 1..16 {
        if i != 8 && i != 9 && i != 10 && i != 11 {
            w.g.pb_mt[i] = MIGRATE_ISOLATE;
        }
    }
    w.g.commit();
    // a hostile page array: every record claims to be a buddy head
    let s = snap(&w.g);
    let bad = PageRecord { flags: PG_BUDDY, private: 0, refcount: 5, ..PageRecord::INIT };
    let mut bytes = Vec::new();
    for _ in 0..s.pages.len() {
        bytes.extend_from_slice(as_bytes(&bad));
    }
    w.g.ram.write(w.g.page_array_pa, &bytes).unwrap();
    let v = check_integrity(&snap(&w.g), &ctx());
    assert_eq!(v.len(), MAX_VIOLATIONS_PER_CALL);
    assert!(v.last().unwrap().detail.contains("more violations"));
}

/// Snapshots read from descriptors with a valid header and a garbage body
/// (whatever `Snapshot::read` accepts): the integrity checks never panic.
#[test]
fn integrity_checks_survive_garbage_descriptors() {
    let mut g = SynthGuest::new(64);
    let base = g.pb_pfn(8);
    let a = g.add_cma("linux,cma", base, 4 << 10, 0);
    g.cma_alloc_at(a, base, 64, DMA_DEV_CAMERA);
    g.add_space(1);
    g.commit();
    let d0 = Snapshot::read_desc(&g.ram, g.desc_pa).unwrap();
    let mut x: u64 = 0x1234_5678_9abc_def0;
    let mut read = 0;
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
            read += 1;
            let _ = check_integrity(&s, &Default::default());
        }
    }
    assert!(read > 0, "no mutated descriptor was readable: the checks ran on nothing");
}

/// A snapshot kept up to date by tracked re-reads (only the page-array
/// windows RAM's dirty log reports are copied, the free map recomputed
/// where a head changed, the page index updated) equals a fresh read, its
/// state codes brought up to date over the changed ranges equal a fresh
/// computation, and the whole-state checks find the same violations in the
/// same order with the index as by scanning every page — over 300 rounds
/// of random healthy and broken records (bad free heads, overlapping and
/// misaligned blocks, busy pages inside free blocks, orphans, unmovable
/// pages in CMA pageblocks, PTEs).
/// The runs (first pfn, pages, new code) of pages whose state code
/// differs from `before`, consecutive pages of one code merged: what
/// `trace::state_runs` emits, written plainly as the tests' reference
/// (verify sits beside trace in the layers and does not import it).
fn changed_runs(base: u32, codes: &[u8], before: &[u8]) -> Vec<(u32, u32, u8)> {
    assert_eq!(codes.len(), before.len());
    let mut out: Vec<(u32, u32, u8)> = Vec::new();
    for (i, (&c, &b)) in codes.iter().zip(before).enumerate() {
        if c == b {
            continue;
        }
        let pfn = base + i as u32;
        match out.last_mut() {
            Some((s, n, oc)) if *oc == c && *s + *n == pfn => *n += 1,
            _ => out.push((pfn, 1, c)),
        }
    }
    out
}

#[test]
fn tracked_rereads_and_indexed_checks_match_fresh_full_reads() {
    let mut w = world();
    let g = &mut w.g;
    let mut s = snap(g);
    let mut changed = Vec::new();
    s.reread_tracked(&g.ram, &mut changed).unwrap();
    assert_eq!(changed, vec![0..s.pages.len()], "the first tracked re-read reads everything");
    let (base, n) = (s.base_pfn(), s.pages.len() as u32);
    let mut codes = s.page_state_codes();
    let mut scratch = Vec::new();
    let mut rng = 0x1234_5678_9abc_def0u64;
    let mut next = move || {
        rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (rng >> 33) as u32
    };
    let mut found = std::collections::BTreeSet::new();
    for round in 0..300 {
        if round % 25 == 0 {
            // the synthetic guest rewrites every record and free list
            let p = g.pb_pfn(1) + next() % 1024;
            if g.read_page(p).refcount == 0 {
                g.alloc(p, 1, PageRecord { owner: OWNER_KIND_KERNEL, ..PageRecord::INIT });
            }
            g.commit();
        }
        for _ in 0..1 + next() % 6 {
            // mostly near one spot, so blocks overlap and straddle windows
            let pfn = if next() % 2 == 0 { base + next() % n } else { g.pb_pfn(5) + next() % 512 };
            let copy_of = g.read_page(base + next() % n);
            let rec = match next() % 7 {
                0 => PageRecord { flags: PG_BUDDY, private: next() % 12, refcount: 0, owner: OWNER_NONE, ..PageRecord::INIT },
                1 => PageRecord { flags: PG_PCP, private: next() % 3, refcount: 0, owner: OWNER_NONE, ..PageRecord::INIT },
                2 => PageRecord { flags: PG_BUDDY | PG_PCP, private: next() % 4, refcount: 0, owner: OWNER_NONE, ..PageRecord::INIT },
                3 => PageRecord { flags: PG_LRU | PG_ANON, mapcount: next() as i32 % 2, owner: OWNER_KIND_USER | 1, ..PageRecord::INIT },
                4 => PageRecord { refcount: 0, owner: OWNER_NONE, ..PageRecord::INIT },
                5 => PageRecord { owner: [OWNER_KIND_KERNEL, OWNER_KIND_PGTABLE, OWNER_NONE][next() as usize % 3], flags: [0, PG_SLAB][next() as usize % 2], ..PageRecord::INIT },
                _ => copy_of,
            };
            g.write_page(pfn, &rec);
        }
        if next() % 3 == 0 {
            let va = VA + (next() % 64) * 4096;
            let pfn = base + next() % n;
            g.set_pte(1, va, (next() % 4 != 0).then_some(pfn));
        }
        changed.clear();
        s.reread_tracked(&g.ram, &mut changed).unwrap();
        let fresh = snap(g);
        assert!(s.index().is_some() && fresh.index().is_none());
        assert!(s.pages == fresh.pages, "round {round}: page records");
        assert!((base..base + n).all(|p| s.is_free(p) == fresh.is_free(p)), "round {round}: free map");
        let before = codes.clone();
        let mut in_place = codes.clone();
        s.update_state_codes(&changed, &mut codes);
        assert!(codes == fresh.page_state_codes(), "round {round}: state codes");
        let runs = s.update_state_codes_runs(&crate::introspect::snapshot::merge_ranges(changed.clone()), &mut in_place);
        assert!(in_place == codes, "round {round}: state codes updated in place");
        assert_eq!(runs, changed_runs(base, &codes, &before), "round {round}: changed runs");
        assert_eq!(s.counters(), fresh.counters(), "round {round}");
        let (a, b) = (check_integrity(&s, &ctx()), check_integrity(&fresh, &ctx()));
        assert_eq!(a, b, "round {round}: integrity");
        let (c, d) = (check_frames_with(&s, &g.ram, &ctx(), &mut scratch), check_frames(&fresh, &g.ram, &ctx()));
        assert_eq!(c, d, "round {round}: frames");
        found.extend(a.iter().chain(&c).map(|v| v.check));
    }
    // the walk went through broken states of every kind the index serves
    for k in [Check::PageState, Check::FreeList, Check::Ownership, Check::PteMapsFree, Check::CmaUnmovable] {
        assert!(found.contains(&k), "{k:?} never found: {found:?}");
    }
}

#[test]
fn cached_frame_checks_match_fresh_walks() {
    // FrameChecker (tables cached through RAM's single watched pages,
    // counts and reported pages kept between calls) against check_frames
    // on a fresh full read, over random states: PTEs set, cleared and
    // pointed at free, kernel-owned, foreign or absent frames; large
    // pages; first-level entries moved to other or absent tables; page
    // records rewritten under the mappings; address spaces added, killed,
    // duplicated (one table walked twice) and given a new table; unstable
    // snapshots. Between checks, prompts: the snapshot is re-read and the
    // checker catches up (tables re-read, changes judged) without
    // reporting; the next check judges only what changed since, as a
    // session does.
    let mut g = SynthGuest::new(64);
    let base = g.base_pfn;
    let n = g.nr_pages;
    for asid in 1..=3 {
        g.add_space(asid);
    }
    let mut rng = 0x0fed_cba9_8765_4321u64;
    let mut next = move || {
        rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (rng >> 33) as u32
    };
    // user pages to map: a region of their own, so most PTEs agree
    let user0 = g.pb_pfn(6);
    for k in 0..48 {
        let asid = 1 + k % 3;
        g.user_page(asid, VA + ((k / 3) << 12) + ((k % 2) << 20), user0 + k);
    }
    g.commit();
    let mut s = snap(&g);
    let mut changed = Vec::new();
    let mut fc = FrameChecker::new(&g.ram);
    // ranges at the front of `changed` the checker judged at a prompt
    let mut judged = 0;
    let mut settled = 0;
    let mut found = std::collections::BTreeSet::new();
    let mut nonempty = 0;
    let mut held = 0;
    let spaces = g.spaces.clone();
    let heal = |g: &mut SynthGuest| {
        // the first three address spaces with their first tables, mapping
        // the user pages as their records say, nothing else
        g.spaces = spaces.clone();
        for &(_, l1) in &spaces {
            g.ram.write(l1 as u64, &[0u8; 0x4000]).unwrap();
        }
        for k in 0..48 {
            g.set_pte(1 + k % 3, VA + ((k / 3) << 12) + ((k % 2) << 20), Some(user0 + k));
        }
        g.pins.clear();
        g.mm_seq += g.mm_seq % 2;
        g.commit();
    };
    for round in 0..400 {
        // every 25 rounds: healed, then three quiet rounds
        if round % 25 == 0 {
            heal(&mut g);
        }
        for _ in 0..if round % 25 < 3 { 0 } else { 1 + next() % 4 } {
            let asid = g.spaces[next() as usize % g.spaces.len()].0;
            let va = VA + (next() % 3 << 20) + (next() % 32) * 4096;
            match next() % 12 {
                0..=3 => {
                    let pfn = match next() % 4 {
                        0 => user0 + next() % 64,
                        1 => base + next() % n,
                        2 => base + n + next() % 16, // outside the page array
                        _ => g.pb_pfn(1) + next() % 8,
                    };
                    let l1 = g.spaces.iter().find(|s| s.0 == asid).unwrap().1 as u64 + ((va >> 20) as u64) * 4;
                    if g.ram.read_u32(l1) != Some(0x1000_0001) {
                        g.set_pte(asid, va, (next() % 5 != 0).then_some(pfn));
                    }
                }
                4 => {
                    // a raw descriptor: large page, garbage, or none
                    let l1 = g.spaces.iter().find(|s| s.0 == asid).unwrap().1 as u64 + ((va >> 20) as u64) * 4;
                    let d1 = g.ram.read_u32(l1).unwrap();
                    if d1 & 3 == 1 && d1 != 0x1000_0001 {
                        let pte = [((user0 + next() % 64) << 12) & 0xffff_0000 | 0x1, next(), 0][next() as usize % 3];
                        g.ram.write_u32((d1 & !0x3ff) as u64 + (((va >> 12) & 0xff) * 4) as u64, pte).unwrap();
                    }
                }
                5 => {
                    // a first-level entry moved: to another space's table,
                    // outside RAM, or cleared
                    let (src, dst) = (g.spaces[next() as usize % g.spaces.len()].1, g.spaces[next() as usize % g.spaces.len()].1);
                    let slot = VA >> 20 | next() % 3;
                    let d = match next() % 3 {
                        0 => g.ram.read_u32(src as u64 + slot as u64 * 4).unwrap(),
                        1 => 0x1000_0001,
                        _ => 0,
                    };
                    g.ram.write_u32(dst as u64 + (slot ^ (next() % 2)) as u64 * 4, d).unwrap();
                }
                6 => {
                    let pfn = user0 + next() % 64;
                    let rec = match next() % 5 {
                        0 => PageRecord { flags: PG_LRU | PG_ANON, mapcount: next() as i32 % 3, owner: OWNER_KIND_USER | 1, ..PageRecord::INIT },
                        1 => PageRecord { owner: OWNER_KIND_KERNEL, ..PageRecord::INIT },
                        2 => PageRecord { flags: PG_BUDDY, private: next() % 3, refcount: 0, owner: OWNER_NONE, ..PageRecord::INIT },
                        // unmapped, its references pins (or not)
                        3 => PageRecord { flags: PG_ANON, mapcount: -1, refcount: 1 + next() as i32 % 2, owner: OWNER_KIND_USER | 1, ..PageRecord::INIT },
                        _ => PageRecord { refcount: 0, owner: OWNER_NONE, ..PageRecord::INIT },
                    };
                    g.write_page(pfn, &rec);
                }
                // the pin table rewritten in place: up to three pins of
                // user pages, a frame possibly twice; half the time the
                // first one's page is unmapped (free out) and its last
                // reference the pin
                10 | 11 => {
                    // held by the shell or the camera; now and then a
                    // record naming no holder (which holds nothing)
                    let holder = |r: u32| [PIN_HOLDER_SHELL, PIN_HOLDER_CAMERA, PIN_HOLDER_SHELL, PIN_HOLDER_CAMERA, PIN_HOLDER_SHELL, 0][r as usize % 6];
                    let pins: Vec<PinRecord> = (0..next() % 4).map(|_| PinRecord { pfn: user0 + next() % 64, va: VA, asid: 1, holder: holder(next()) }).collect();
                    if let Some(k) = pins.first().map(|r| r.pfn - user0).filter(|&k| k < 48 && next() % 2 == 0) {
                        let (asid, va) = (1 + k % 3, VA + ((k / 3) << 12) + ((k % 2) << 20));
                        let l1 = g.spaces.iter().find(|s| s.0 == asid).map(|s| s.1 as u64 + ((va >> 20) as u64) * 4);
                        if l1.is_some_and(|l1| g.ram.read_u32(l1) != Some(0x1000_0001)) {
                            g.set_pte(asid, va, None);
                        }
                        g.write_page(user0 + k, &PageRecord { flags: PG_ANON, mapcount: -1, owner: OWNER_KIND_USER | (1 + k % 3), mapping: 1, ..PageRecord::INIT });
                    }
                    g.set_pins(&pins);
                }
                7 if round % 7 == 0 => {
                    let fresh = 10 + round;
                    g.add_space(fresh);
                    g.set_pte(fresh, VA, Some(user0 + next() % 64));
                    g.commit();
                }
                8 if round % 5 == 0 && g.spaces.len() > 2 => {
                    // killed, duplicated (the first of an asid's records
                    // gives every one its table), or a new table
                    let k = next() as usize % g.spaces.len();
                    match next() % 3 {
                        0 => {
                            g.spaces.remove(k);
                        }
                        1 => {
                            let l1 = g.add_space(0x77);
                            g.spaces.pop();
                            g.spaces.push((g.spaces[k].0, l1));
                        }
                        _ => {
                            let old = g.spaces[k].1;
                            let l1 = g.add_space(0x78);
                            g.spaces.pop();
                            let mut t = vec![0u8; 0x4000];
                            g.ram.read(old as u64, &mut t).unwrap();
                            g.ram.write(l1 as u64, &t).unwrap();
                            g.spaces[k].1 = l1;
                        }
                    }
                    g.commit();
                }
                9 if round % 11 == 0 => {
                    g.mm_seq = if g.mm_seq % 2 == 0 { g.mm_seq + 1 } else { g.mm_seq + 1 };
                    g.commit();
                }
                _ => {}
            }
            if next() % 3 == 0 {
                // a prompt: the checker catches up without reporting
                s.reread_tracked(&g.ram, &mut changed).unwrap();
                fc.catch_up(&s, &crate::introspect::snapshot::merge_ranges(changed[judged..].to_vec()));
                judged = changed.len();
                settled += 1;
            }
        }
        s.reread_tracked(&g.ram, &mut changed).unwrap();
        let merged = crate::introspect::snapshot::merge_ranges(changed[judged..].to_vec());
        let a = fc.check(&s, &ctx(), &merged);
        (changed, judged) = (Vec::new(), 0);
        let b = check_frames(&snap(&g), &g.ram, &ctx());
        assert_eq!(a, b, "round {round}");
        assert!(round % 25 >= 3 || a.is_empty(), "round {round}: healed, yet {a:#?}");
        nonempty += !a.is_empty() as usize;
        found.extend(a.iter().map(|v| (v.check, v.detail.contains("mapcount says"), v.detail.contains("orphan"))));
        // pages pins alone hold (unmapped, every reference listed)
        held += (0..64).filter(|k| {
            let p = user0 + k;
            let r = g.read_page(p);
            s.stable && r.owner & OWNER_KIND_MASK == OWNER_KIND_USER && r.refcount > 0 && crate::verify::ownership::held_by_pins(&s, p, &r) && !a.iter().any(|v| v.pfn == Some(p))
        }).count();
    }
    assert!(held > 20, "{held} page-rounds held by pins alone");
    assert!(settled > 200, "{settled} prompts between checks");
    // every kind of finding came and went
    assert!(nonempty > 200, "{nonempty} rounds with findings");
    for k in [(Check::PteMapsFree, false, false), (Check::Ownership, false, false), (Check::Ownership, true, false), (Check::Ownership, false, true)] {
        assert!(found.contains(&k), "{k:?} never found: {found:?}");
    }
}

#[test]
fn pins_hold_an_unmapped_user_page_and_only_pins_do() {
    // Linux 6.1: munmap drops the mapping's reference only; a pinned page
    // stays allocated, off every page table, until its holder's
    // unpin_user_page. The guest lists such pins (its pin table): the
    // ownership check counts them as the page's owners, and nothing else.
    let mut g = SynthGuest::new(64);
    g.add_space(1);
    let p = g.pb_pfn(3) + 5;
    g.user_page(1, VA, p);
    g.commit();
    let mut s = snap(&g);
    let mut fc = FrameChecker::new(&g.ram);
    let mut changed = Vec::new();
    // judge the state now with the cached checker (only what changed since
    // the last call) and with a fresh walk: they must agree
    let mut judge = |g: &SynthGuest, s: &mut Snapshot| {
        changed.clear();
        s.reread_tracked(&g.ram, &mut changed).unwrap();
        let a = fc.check(s, &ctx(), &crate::introspect::snapshot::merge_ranges(changed.clone()));
        let b = check_frames(&snap(g), &g.ram, &ctx());
        assert_eq!(a, b);
        a
    };
    assert_eq!(judge(&g, &mut s), vec![]);
    let user = |refcount: i32, mapcount: i32| PageRecord { flags: PG_ANON, refcount, mapcount, owner: OWNER_KIND_USER | 1, mapping: 1, ..PageRecord::INIT };
    // pinned (pin in): one reference more, listed
    let pin = PinRecord { pfn: p, va: VA, asid: 1, holder: PIN_HOLDER_SHELL };
    g.set_pins(&[pin]);
    g.write_page(p, &PageRecord { flags: PG_ANON | PG_LRU, ..user(2, 0) });
    assert_eq!(judge(&g, &mut s), vec![]);
    // unmapped (free out): the pin holds it
    g.set_pte(1, VA, None);
    g.write_page(p, &user(1, -1));
    assert_eq!(judge(&g, &mut s), vec![], "a page its pin holds is no orphan");
    // the pin dropped from the table, its reference not (a leaked pin):
    // no page record changes, yet the page is an orphan now
    g.set_pins(&[]);
    let v = judge(&g, &mut s);
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!((v[0].check, v[0].pfn), (Check::Ownership, Some(p)));
    assert!(v[0].detail.contains("orphan"), "{}", v[0].detail);
    // listed again: held again
    g.set_pins(&[pin]);
    assert_eq!(judge(&g, &mut s), vec![]);
    // a reference beyond the pins (a missed put_page): an orphan
    g.write_page(p, &user(2, -1));
    let v = judge(&g, &mut s);
    assert_eq!(v.iter().map(|v| (v.check, v.pfn)).collect::<Vec<_>>(), vec![(Check::Ownership, Some(p))]);
    // two pins of the frame hold two references
    g.set_pins(&[pin, pin]);
    assert_eq!(judge(&g, &mut s), vec![]);
    // a record that says mapped while no PTE maps it: pins do not excuse it
    g.write_page(p, &user(2, 0));
    let v = judge(&g, &mut s);
    assert_eq!(v.iter().map(|v| (v.check, v.pfn)).collect::<Vec<_>>(), vec![(Check::Ownership, Some(p))]);
    // a pin of another frame holds nothing here
    g.set_pins(&[PinRecord { pfn: p + 1, ..pin }]);
    g.write_page(p, &user(1, -1));
    let v = judge(&g, &mut s);
    assert_eq!(v.iter().map(|v| (v.check, v.pfn)).collect::<Vec<_>>(), vec![(Check::Ownership, Some(p))]);
    // pinned by the camera (a capture's USERPTR buffer) and by the shell:
    // both are holders, each reference held by one of them
    let cam = PinRecord { holder: PIN_HOLDER_CAMERA, ..pin };
    g.set_pins(&[pin, cam]);
    g.write_page(p, &user(2, -1));
    assert_eq!(judge(&g, &mut s), vec![], "a shell pin and a camera pin hold two references");
    // the shell unpinned (its record and reference gone): the camera holds it
    g.set_pins(&[cam]);
    g.write_page(p, &user(1, -1));
    assert_eq!(judge(&g, &mut s), vec![], "a page the camera's pin holds is no orphan");
    // the same record naming no holder the guest has: nobody releases it,
    // and nothing in the page record changed
    g.set_pins(&[PinRecord { holder: 0, ..cam }]);
    let v = judge(&g, &mut s);
    assert_eq!(v.iter().map(|v| (v.check, v.pfn)).collect::<Vec<_>>(), vec![(Check::Ownership, Some(p))]);
    g.set_pins(&[cam]);
    assert_eq!(judge(&g, &mut s), vec![]);
    // the camera's pin leaked (record dropped, reference kept): an orphan
    g.set_pins(&[]);
    let v = judge(&g, &mut s);
    assert_eq!(v.iter().map(|v| (v.check, v.pfn)).collect::<Vec<_>>(), vec![(Check::Ownership, Some(p))]);
    // unpinned: the frame is freed, its record gone with it
    g.free(p, 1);
    g.commit();
    assert_eq!(judge(&g, &mut s), vec![]);
}
