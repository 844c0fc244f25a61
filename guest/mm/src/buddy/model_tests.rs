//! Model-based tests: long random sequences of allocations, frees, splits,
//! isolations and bad frees, checked against a shadow model.
//!
//! Invariants checked: no frame handed out twice; the frames on the free
//! lists are exactly the model's free frames, each on exactly one list of
//! its order (and of the CMA/Isolate type iff its pageblock is); counters
//! (`nr_free`, `NR_FREE_PAGES`, `NR_FREE_CMA_PAGES`, `pgfree`) equal the
//! model's; merges are maximal (no two free buddies that Linux would have
//! merged); CMA frames only go to movable requests; isolated frames are
//! never handed out; isolation succeeds exactly when the model says the
//! pageblock holds no unmovable page.
use super::tests::{boot_full, SMALL};
use super::*;
use crate::isolation::IsolationError;

/// xorshift64*: a seeded, dependency-free generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Frame {
    Reserved,
    Free,
    Used,
}

#[derive(Clone, Copy, Debug)]
struct Block {
    pfn: u32,
    order: u32,
    movable: bool,
}

struct Model {
    base: u32,
    frames: Vec<Frame>,
    blocks: Vec<Block>,
    /// Pageblock start -> type before isolation.
    isolated: Vec<(u32, MigrateType)>,
    /// Pageblocks that were ever HighAtomic: unreserving one moves its free
    /// blocks to another type's lists without merging them
    /// (`move_freepages_block`), so its order >= pageblock_order blocks may
    /// sit beside a free buddy, in Linux as here.
    ever_highatomic: std::collections::BTreeSet<u32>,
    pgfree: u64,
}

impl Model {
    fn f(&self, pfn: u32) -> Frame {
        self.frames[(pfn - self.base) as usize]
    }
    fn set(&mut self, pfn: u32, order: u32, st: Frame) {
        for i in 0..(1u32 << order) {
            self.frames[(pfn + i - self.base) as usize] = st;
        }
    }
}

const GFPS: [Gfp; 6] = [
    GFP_KERNEL,
    GFP_HIGHUSER_MOVABLE,
    GFP_RECLAIMABLE,
    GFP_ATOMIC,
    Gfp(GFP_NOWAIT.0 | __GFP_MOVABLE.0),
    GFP_HIGHUSER,
];

fn full_check(pa: &PageAlloc, m: &Model, ctx: &str) {
    let total = pa.check_integrity().unwrap_or_else(|e| panic!("{}: {}", ctx, e));
    let n = m.frames.len();
    let mut on_list = vec![false; n];
    let pbo = pa.profile.pageblock_order;
    let max = pa.profile.max_order;
    let mut expect_free = 0i64;
    let mut expect_cma = 0i64;
    for (zid, z) in pa.zones().iter().enumerate() {
        let _ = zid;
        for order in 0..max {
            for mt in MigrateType::ALL {
                let mut cur = z.free_area[order as usize].free_list[mt.idx()].head;
                while cur != PFN_NONE {
                    for i in 0..(1u32 << order) {
                        let k = (cur + i - m.base) as usize;
                        assert!(!on_list[k], "{}: frame {:#x} on two lists", ctx, cur + i);
                        on_list[k] = true;
                    }
                    // Maximal merging.
                    if order < max - 1 {
                        let b = cur ^ (1 << order);
                        if let Some(bp) = pa.mem.page(Pfn(b)) {
                            if bp.has(PG_BUDDY) && bp.private == order && bp.zone_idx() == pa.page_zone(Pfn(cur)) {
                                let t1 = pa.mem.get_pageblock_migratetype(Pfn(cur));
                                let t2 = pa.mem.get_pageblock_migratetype(Pfn(b));
                                let blocked = order >= pbo && t1 != t2 && (!t1.is_mergeable() || !t2.is_mergeable());
                                let pbm = !((1u32 << pbo) - 1);
                                let unreserved = order >= pbo && (m.ever_highatomic.contains(&(cur & pbm)) || m.ever_highatomic.contains(&(b & pbm)));
                                let blocked = blocked || unreserved;
                                assert!(blocked, "{}: free buddies {:#x}/{:#x} order {} not merged ({:?}/{:?}, lists {}/{})", ctx, cur, b, order, t1, t2, pa.mem.p(cur).list_mt(), bp.list_mt());
                            }
                        }
                    }
                    cur = pa.mem.p(cur).lru_next;
                }
            }
        }
    }
    for (k, &f) in m.frames.iter().enumerate() {
        let pfn = m.base + k as u32;
        assert_eq!(f == Frame::Free, on_list[k], "{}: frame {:#x} model {:?} vs lists {}", ctx, pfn, f, on_list[k]);
        if f == Frame::Free {
            let t = pa.mem.get_pageblock_migratetype(Pfn(pfn));
            if !t.is_isolate() {
                expect_free += 1;
            }
            if t.is_cma() {
                expect_cma += 1;
            }
        }
    }
    assert_eq!(total, m.frames.iter().filter(|&&f| f == Frame::Free).count() as u64, "{}", ctx);
    let nfp: i64 = pa.zones().iter().map(|z| z.nr_free_pages).sum();
    let nfc: i64 = pa.zones().iter().map(|z| z.nr_free_cma_pages).sum();
    assert_eq!((nfp, nfc), (expect_free, expect_cma), "{}: counters", ctx);
    assert_eq!(pa.events.pgfree, m.pgfree, "{}: pgfree", ctx);
    for b in &m.blocks {
        let p = pa.mem.p(b.pfn);
        assert!(p.refcount >= 1 && !p.has(PG_BUDDY), "{}: live block {:#x} looks free", ctx, b.pfn);
    }
}

/// Does the model see an unmovable page in `[s, e)` as Linux's
/// `has_unmovable_pages` would? (CMA blocks are handled by the caller.)
fn model_unmovable(pa: &PageAlloc, m: &Model, s: u32, e: u32) -> bool {
    (s..e).any(|pfn| {
        let p = pa.mem.p(pfn);
        match m.f(pfn) {
            Frame::Reserved => true,
            Frame::Free => false,
            Frame::Used => p.refcount > 0 && !p.has(PG_MOVABLE),
        }
    })
}

/// `PGFREE` a free adds in 6.1: none for a small block freed into an
/// isolated pageblock (`free_unref_page` hands it to `free_one_page`
/// without counting), else its pages.
fn pgfree_of(pa: &PageAlloc, pfn: u32, order: u32) -> u64 {
    if crate::pcp::pcp_allowed_order(order) && pa.mem.get_pageblock_migratetype(Pfn(pfn)).is_isolate() {
        0
    } else {
        1 << order
    }
}

fn run(profile: MmProfile, nr_pages: u32, cma_blocks: u32, vmalloc: Option<u64>, seed: u64, actions: usize) {
    let base = 0x60000u32;
    let pb = profile.pageblock_nr_pages();
    let reserved_head = 37u32; // kernel image etc.: never freed
    let cma_start = base + nr_pages - cma_blocks * pb;
    let blocks: Vec<u32> = (0..cma_blocks).map(|b| cma_start + b * pb).collect();
    let mut reserved = vec![(base, base + reserved_head)];
    if cma_blocks > 0 {
        reserved.push((cma_start, base + nr_pages));
    }
    let mut pa = boot_full(profile, base, nr_pages, &reserved, vmalloc, &blocks);
    let mut m = Model {
        base,
        frames: vec![Frame::Free; nr_pages as usize],
        blocks: Vec::new(),
        isolated: Vec::new(),
        ever_highatomic: Default::default(),
        pgfree: pa.events.pgfree,
    };
    for i in 0..reserved_head {
        m.frames[i as usize] = Frame::Reserved;
    }
    full_check(&pa, &m, "boot");
    let mut rng = Rng(seed | 1);
    let max = profile.max_order;
    let nblocks = nr_pages / pb;
    let (mut allocs, mut fails, mut isolations, mut steals_seen) = (0u64, 0u64, 0u64, 0u64);
    for step in 0..actions {
        let ctx = format!("{} seed {} step {}", profile.name, seed, step);
        let trace = std::env::var("MODEL_TRACE").map(|v| v.parse::<usize>().unwrap_or(0) <= step).unwrap_or(false);
        // Phases of pressure and of release so that memory runs out, types
        // fall back and merges happen.
        let alloc_bias = if (step / 1000) % 2 == 0 { 85 } else { 30 };
        let r = rng.below(100);
        if r < alloc_bias {
            let gfp = GFPS[rng.below(GFPS.len() as u64) as usize];
            let gfp = if rng.chance(10) { gfp | __GFP_MEMALLOC } else { gfp };
            // Geometric order distribution.
            let mut order = 0;
            while order < max - 1 && rng.chance(55) {
                order += 1;
            }
            let movable = gfp_migratetype(gfp, pa.page_group_by_mobility_disabled) == MigrateType::Movable;
            let mt_before: Vec<MigrateType> = (0..nblocks).map(|b| pa.mem.get_pageblock_migratetype(Pfn(base + b * pb))).collect();
            let res = pa.__alloc_pages(gfp, order);
            if trace { eprintln!("{} alloc {:?} o{} -> {:?}", step, gfp, order, res); }
            match res {
                Ok(p) => {
                    allocs += 1;
                    assert_eq!(p.0 & ((1 << order) - 1), 0, "{}: misaligned", ctx);
                    for i in 0..(1u32 << order) {
                        assert_eq!(m.f(p.0 + i), Frame::Free, "{}: frame {:#x} handed out twice", ctx, p.0 + i);
                        let t = pa.mem.get_pageblock_migratetype(Pfn(p.0 + i));
                        assert!(!t.is_isolate(), "{}: allocated from an isolated pageblock", ctx);
                        assert!(!t.is_cma() || movable, "{}: CMA frame to a non-movable request", ctx);
                    }
                    if !gfp.any(__GFP_HIGHMEM) {
                        let zid = pa.page_zone(p);
                        assert!(!pa.zones[zid].kind.is_highmem(), "{}: lowmem request got HighMem", ctx);
                    }
                    m.set(p.0, order, Frame::Used);
                    if movable {
                        pa.mem.page_mut(p).unwrap().flags |= PG_MOVABLE;
                    }
                    m.blocks.push(Block { pfn: p.0, order, movable });
                    let mt_after: Vec<MigrateType> = (0..nblocks).map(|b| pa.mem.get_pageblock_migratetype(Pfn(base + b * pb))).collect();
                    for (b, t) in mt_after.iter().enumerate() {
                        if t.is_highatomic() {
                            m.ever_highatomic.insert(base + b as u32 * pb);
                        }
                    }
                    for (b, (x, y)) in mt_before.iter().zip(&mt_after).enumerate() {
                        if x != y {
                            steals_seen += 1;
                            assert!(!x.is_cma() && !y.is_cma(), "{}: CMA pageblock {} changed type {:?}->{:?}", ctx, b, x, y);
                            assert!(!x.is_isolate() && !y.is_isolate(), "{}: isolated pageblock changed", ctx);
                        }
                    }
                }
                Err(BuddyError::NoMemory { .. }) => fails += 1,
                Err(e) => panic!("{}: {}", ctx, e),
            }
        } else if r < 93 {
            if m.blocks.is_empty() {
                continue;
            }
            let i = rng.below(m.blocks.len() as u64) as usize;
            let b = m.blocks.swap_remove(i);
            if trace { eprintln!("{} free {:?}", step, b); }
            if b.order > 0 && rng.chance(15) {
                // split_page, then free some pieces now, keep the rest.
                pa.split_page(Pfn(b.pfn), b.order).unwrap();
                for k in 0..(1u32 << b.order) {
                    let pfn = b.pfn + k;
                    if b.movable {
                        pa.mem.page_mut(Pfn(pfn)).unwrap().flags |= PG_MOVABLE;
                    }
                    if rng.chance(50) {
                        m.pgfree += pgfree_of(&pa, pfn, 0);
                        pa.__free_pages(Pfn(pfn), 0).unwrap_or_else(|e| panic!("{}: {}", ctx, e));
                        m.set(pfn, 0, Frame::Free);
                    } else {
                        m.blocks.push(Block { pfn, order: 0, movable: b.movable });
                    }
                }
            } else {
                m.pgfree += pgfree_of(&pa, b.pfn, b.order);
                pa.__free_pages(Pfn(b.pfn), b.order).unwrap_or_else(|e| panic!("{}: {}", ctx, e));
                m.set(b.pfn, b.order, Frame::Free);
            }
        } else if r < 96 {
            // Isolate a random pageblock.
            let blk = base + rng.below(nblocks as u64) as u32 * pb;
            let t = pa.mem.get_pageblock_migratetype(Pfn(blk));
            if t.is_isolate() {
                assert_eq!(pa.set_migratetype_isolate(Pfn(blk), MigrateType::Movable, 0, Pfn(blk), Pfn(blk + pb)), Err(IsolationError::Busy(Pfn(blk))));
                continue;
            }
            let want = if t.is_cma() { MigrateType::Cma } else { MigrateType::Movable };
            let predicted_busy = !t.is_cma() && model_unmovable(&pa, &m, blk, blk + pb);
            // start_isolate_page_range (what alloc_contig_range uses) also
            // splits free blocks that span more than the pageblock.
            let res = pa.start_isolate_page_range(Pfn(blk), Pfn(blk + pb), want, 0);
            if trace { eprintln!("{} isolate {:#x} {:?} -> {:?}", step, blk, t, res); }
            assert_eq!(res.is_err(), predicted_busy, "{}: isolation of {:#x} ({:?}) gave {:?}", ctx, blk, t, res);
            if res.is_ok() {
                isolations += 1;
                m.isolated.push((blk, t));
                if rng.chance(30) {
                    let all_free = (blk..blk + pb).all(|p| m.f(p) == Frame::Free);
                    assert_eq!(pa.test_pages_isolated(Pfn(blk), Pfn(blk + pb), 0).is_ok(), all_free, "{}", ctx);
                }
            }
        } else if r < 99 {
            if m.isolated.is_empty() {
                continue;
            }
            let i = rng.below(m.isolated.len() as u64) as usize;
            let (blk, t) = m.isolated.swap_remove(i);
            if trace { eprintln!("{} undo {:#x} {:?}", step, blk, t); }
            pa.undo_isolate_page_range(Pfn(blk), Pfn(blk + pb), t);
            assert_eq!(pa.mem.get_pageblock_migratetype(Pfn(blk)), t, "{}", ctx);
        } else {
            // A bad free must be refused and change nothing.
            let pfn = base + rng.below(nr_pages as u64) as u32;
            let before = *pa.mem.page(Pfn(pfn)).unwrap();
            match m.f(pfn) {
                Frame::Free => assert!(matches!(pa.__free_pages(Pfn(pfn), 0), Err(BuddyError::DoubleFree(_))), "{}", ctx),
                Frame::Reserved => assert!(matches!(pa.__free_pages(Pfn(pfn), 0), Err(BuddyError::BadPage(..))), "{}", ctx),
                Frame::Used => continue,
            }
            assert_eq!(*pa.mem.page(Pfn(pfn)).unwrap(), before, "{}", ctx);
        }
        if step % 16 == 0 || std::env::var("MODEL_EVERY").is_ok() {
            full_check(&pa, &m, &ctx);
        }
    }
    full_check(&pa, &m, "end");
    // Release everything: all memory merges back.
    for (blk, t) in core::mem::take(&mut m.isolated) {
        pa.undo_isolate_page_range(Pfn(blk), Pfn(blk + pb), t);
    }
    for b in core::mem::take(&mut m.blocks) {
        pa.__free_pages(Pfn(b.pfn), b.order).unwrap();
        m.set(b.pfn, b.order, Frame::Free);
        m.pgfree += 1 << b.order;
    }
    full_check(&pa, &m, "drained");
    assert_eq!(pa.nr_free_pages(), (nr_pages - reserved_head) as u64);
    assert!(allocs > (actions as u64) / 4, "{} allocations only", allocs);
    assert!(fails > 0, "memory never ran out: the test did not reach pressure");
    assert!(isolations > 0 && steals_seen > 0, "isolations {} steals {}", isolations, steals_seen);
}

#[test]
fn model_debian_profile() {
    for seed in [1, 0xC0FFEE] {
        run(MmProfile::DEBIAN_6_1, 8 * 2048, 2, None, seed, 12_000);
    }
}

#[test]
fn model_biscuitos_profile() {
    for seed in [7, 0xB15C] {
        run(MmProfile::BISCUITOS_5_0, 8 * 1024, 2, None, seed, 12_000);
    }
}

#[test]
fn model_small_blocks_span_pageblocks_with_highmem() {
    // 64 MiB with vmalloc=976M: 40 MiB lowmem, 24 MiB HighMem (CMA there).
    for seed in [3, 99] {
        run(SMALL, 16384, 8, Some(976 << 20), seed, 12_000);
    }
}
