//! Model-based tests of the per-cpu lists: long random sequences of
//! allocations (orders 0..=4, every migrate type), frees (whole blocks and
//! split pages), drains and pageblock isolations on a booted allocator with
//! pagesets, against a shadow model of the lists.
//!
//! The shadow keeps each list as a `VecDeque` and replays 6.1's rules on
//! its own: a free goes to the head of the list of (pageblock type, CMA and
//! HighAtomic as movable, order), or to the buddy for an isolated
//! pageblock; reaching `high` gives back `nr_pcp_free()` pages round-robin
//! from the requested list on, oldest first; an allocation takes the head,
//! or refills. What the shadow takes from the allocator rather than
//! predicting: which buddy pages a refill brings (it checks they were free
//! in the buddy and not on any list), and `free_factor` after an
//! allocation (a failed watermark check in a preferred zone may halve that
//! zone's factor without a visible result).
//!
//! Checked after every step: every list equal to the shadow, in order;
//! `count`; pages on lists exactly the shadow's; every other frame free in
//! the buddy exactly when the shadow says so; `NR_FREE_PAGES` excludes the
//! lists; `check_integrity()`.
use super::*;
use crate::buddy::tests::boot_opts;
use crate::buddy::PageAlloc;
use crate::gfp::*;
use crate::profile::MmProfile;
use std::collections::VecDeque;

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
    fn chance(&mut self, p: u64) -> bool {
        self.below(100) < p
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum F {
    Reserved,
    Buddy,
    Pcp,
    Used,
}

struct Shadow {
    base: u32,
    frames: Vec<F>,
    lists: Vec<[VecDeque<u32>; NR_PCP_LISTS]>,
    count: Vec<u32>,
    free_factor: Vec<u32>,
    /// Frees that reached `high` (coverage).
    overflows: u64,
}

impl Shadow {
    fn set(&mut self, pfn: u32, order: u32, f: F) {
        for i in 0..(1u32 << order) {
            self.frames[(pfn + i - self.base) as usize] = f;
        }
    }
    fn f(&self, pfn: u32) -> F {
        self.frames[(pfn - self.base) as usize]
    }

    /// 6.1's `free_pcppages_bulk`, on the shadow lists.
    fn bulk(&mut self, z: usize, count: u32, pindex: usize) {
        let mut count = count.min(self.count[z]) as i64;
        let (mut min_p, mut max_p) = (0usize, NR_PCP_LISTS - 1);
        let mut p = pindex as isize - 1;
        while count > 0 {
            loop {
                p += 1;
                if p as usize > max_p {
                    p = min_p as isize;
                }
                if !self.lists[z][p as usize].is_empty() {
                    break;
                }
                if p as usize == max_p {
                    max_p -= 1;
                }
                if p as usize == min_p {
                    min_p += 1;
                }
            }
            let order = pindex_to_order(p as usize);
            loop {
                let pfn = self.lists[z][p as usize].pop_back().unwrap();
                self.set(pfn, order, F::Buddy);
                count -= 1 << order;
                self.count[z] -= 1 << order;
                if count <= 0 || self.lists[z][p as usize].is_empty() {
                    break;
                }
            }
        }
    }

    /// 6.1's `free_unref_page` for a block whose checks passed.
    fn free(&mut self, pa: &PageAlloc, pfn: u32, order: u32) {
        let z = pa.page_zone(Pfn(pfn));
        let mt = pa.mem.get_pageblock_migratetype(Pfn(pfn));
        if mt.is_isolate() {
            self.set(pfn, order, F::Buddy);
            return;
        }
        let pmt = if mt.idx() >= MIGRATE_PCPTYPES { MigrateType::Movable } else { mt };
        let pindex = order_to_pindex(pmt, order);
        self.lists[z][pindex].push_front(pfn);
        self.set(pfn, order, F::Pcp);
        self.count[z] += 1 << order;
        let pcp = &pa.zones[z].pcp;
        let free_high = self.free_factor[z] != 0 && order > 0;
        let high = if pcp.high == 0 || free_high { 0 } else { pcp.high };
        if self.count[z] >= high {
            let batch = pcp.batch;
            let n = if free_high {
                self.count[z]
            } else if high < batch {
                1
            } else {
                let mut b = (batch as i64) << self.free_factor[z];
                if b < (high - batch) as i64 && self.free_factor[z] < PCP_BATCH_SCALE_MAX {
                    self.free_factor[z] += 1;
                }
                b = b.max(batch as i64).min((high - batch) as i64);
                b as u32
            };
            self.bulk(z, n, pindex);
            self.overflows += 1;
        }
    }
}

fn actual_list(pa: &PageAlloc, z: usize, p: usize) -> Vec<u32> {
    let mut v = Vec::new();
    let mut cur = pa.zones[z].pcp.lists[p].head;
    while cur != PFN_NONE {
        v.push(cur);
        cur = pa.mem.page(Pfn(cur)).unwrap().lru_next;
    }
    v
}

fn check(pa: &PageAlloc, s: &Shadow, ctx: &str) {
    pa.check_integrity().unwrap_or_else(|e| panic!("{ctx}: {e}"));
    let n = s.frames.len();
    let mut buddy = vec![false; n];
    for (i, p) in pa.mem.records().iter().enumerate() {
        if p.has(PG_BUDDY) {
            buddy[i..i + (1usize << p.private)].iter_mut().for_each(|b| *b = true);
        }
    }
    let mut free_counted = 0i64;
    for (k, &f) in s.frames.iter().enumerate() {
        let pfn = s.base + k as u32;
        let on_pcp = pa.mem.records()[k].has(PG_PCP) || {
            // tail pages of an order > 0 pcp block carry no marker
            (1..4u32).any(|o| {
                let h = pfn & !((1 << o) - 1);
                h != pfn && pa.mem.page(Pfn(h)).is_some_and(|q| q.has(PG_PCP)) && s.f(h) == F::Pcp && matches!(s.f(pfn), F::Pcp)
            })
        };
        match f {
            F::Buddy => {
                assert!(buddy[k], "{ctx}: frame {pfn:#x} should be free in the buddy");
                if !pa.mem.get_pageblock_migratetype(Pfn(pfn)).is_isolate() {
                    free_counted += 1;
                }
            }
            F::Pcp => assert!(!buddy[k] && on_pcp, "{ctx}: frame {pfn:#x} should be on a pcp list"),
            F::Used | F::Reserved => assert!(!buddy[k] && !pa.mem.records()[k].has(PG_PCP), "{ctx}: frame {pfn:#x} should be in use"),
        }
    }
    for z in 0..pa.nr_zones {
        for p in 0..NR_PCP_LISTS {
            let want: Vec<u32> = s.lists[z][p].iter().copied().collect();
            assert_eq!(actual_list(pa, z, p), want, "{ctx}: zone {z} list {p}");
        }
        assert_eq!(pa.zones[z].pcp.count, s.count[z], "{ctx}: zone {z} count");
        assert_eq!(pa.zones[z].pcp.free_factor, s.free_factor[z], "{ctx}: zone {z} free_factor");
    }
    let nfp: i64 = pa.zones().iter().map(|z| z.nr_free_pages).sum();
    assert_eq!(nfp, free_counted, "{ctx}: NR_FREE_PAGES");
}

const GFPS: [Gfp; 6] = [GFP_KERNEL, GFP_HIGHUSER_MOVABLE, GFP_RECLAIMABLE, GFP_ATOMIC, GFP_HIGHUSER, Gfp(GFP_KERNEL.0 | __GFP_MEMALLOC.0)];

fn run(profile: MmProfile, nr_pages: u32, cma_blocks: u32, vmalloc: Option<u64>, seed: u64, steps: usize) {
    let base = 0x60000u32;
    let pb = profile.pageblock_nr_pages();
    let cma_start = base + nr_pages - cma_blocks * pb;
    let blocks: Vec<u32> = (0..cma_blocks).map(|b| cma_start + b * pb).collect();
    let mut reserved = vec![(base, base + 21)];
    if cma_blocks > 0 {
        reserved.push((cma_start, base + nr_pages));
    }
    let mut pa = boot_opts(profile, base, nr_pages, &reserved, vmalloc, &blocks, true);
    let mut s = Shadow {
        base,
        frames: vec![F::Buddy; nr_pages as usize],
        lists: (0..pa.nr_zones).map(|_| core::array::from_fn(|_| VecDeque::new())).collect(),
        count: vec![0; pa.nr_zones],
        free_factor: vec![0; pa.nr_zones],
        overflows: 0,
    };
    for i in 0..21 {
        s.frames[i] = F::Reserved;
    }
    check(&pa, &s, "boot");
    let mut live: Vec<(u32, u32)> = Vec::new();
    let mut isolated: Vec<(u32, MigrateType)> = Vec::new();
    let mut rng = Rng(seed | 1);
    let (mut hits, mut refills) = (0u64, 0u64);
    for step in 0..steps {
        let ctx = format!("{} seed {seed} step {step}", profile.name);
        let bias = if (step / 2000) % 2 == 0 { 85 } else { 35 };
        let r = rng.below(100);
        if step % 1000 == 999 {
            // A burst of frees without allocations in between (munmap of a
            // large range, a process exiting): lists reach `high`.
            let n = live.len() * 2 / 3;
            for _ in 0..n {
                let (p, order) = live.swap_remove(rng.below(live.len() as u64) as usize);
                pa.__free_pages(Pfn(p), order).unwrap();
                if pcp_allowed_order(order) {
                    s.free(&pa, p, order);
                } else {
                    s.set(p, order, F::Buddy);
                }
                if rng.chance(2) {
                    check(&pa, &s, &ctx);
                }
            }
        } else if r < bias {
            let gfp = GFPS[rng.below(GFPS.len() as u64) as usize];
            let mut order = 0;
            while order < 4 && rng.chance(30) {
                order += 1;
            }
            let mt = gfp_migratetype(gfp, pa.page_group_by_mobility_disabled);
            let before: Vec<Vec<u32>> = (0..pa.nr_zones).map(|z| s.lists[z][order_to_pindex(mt, order.min(3))].iter().copied().collect()).collect();
            let res = pa.__alloc_pages(gfp, order);
            let Ok(p) = res else {
                // A failure may have drained everything (slow path).
                if pa.nr_pcp_pages() == 0 {
                    for z in 0..pa.nr_zones {
                        for l in 0..NR_PCP_LISTS {
                            while let Some(x) = s.lists[z][l].pop_front() {
                                s.set(x, pindex_to_order(l), F::Buddy);
                            }
                        }
                        s.count[z] = 0;
                    }
                }
                s.free_factor = pa.zones().iter().map(|z| z.pcp.free_factor).collect();
                check(&pa, &s, &ctx);
                continue;
            };
            let z = pa.page_zone(p);
            if pcp_allowed_order(order) {
                let pindex = order_to_pindex(mt, order);
                if let Some(&head) = before[z].first() {
                    assert_eq!(p.0, head, "{ctx}: allocation must take the list head");
                    s.lists[z][pindex].pop_front();
                    s.count[z] -= 1 << order;
                    hits += 1;
                } else {
                    // Refill: the rest of the batch is on the list now.
                    let got = actual_list(&pa, z, pindex);
                    for &x in got.iter().chain(core::iter::once(&p.0)) {
                        for i in 0..(1u32 << order) {
                            assert_eq!(s.f(x + i), F::Buddy, "{ctx}: refill took {:#x}, not free in the buddy", x + i);
                        }
                    }
                    for &x in &got {
                        s.set(x, order, F::Pcp);
                    }
                    s.count[z] += (got.len() as u32) << order;
                    s.lists[z][pindex] = got.into_iter().collect();
                    refills += 1;
                }
            }
            for i in 0..(1u32 << order) {
                assert_eq!(s.f(p.0 + i), if pcp_allowed_order(order) && s.f(p.0 + i) == F::Pcp { F::Pcp } else { F::Buddy }, "{ctx}: {:#x} handed out while not free", p.0 + i);
            }
            s.set(p.0, order, F::Used);
            s.free_factor = pa.zones().iter().map(|z| z.pcp.free_factor).collect();
            live.push((p.0, order));
        } else if r < 92 {
            if live.is_empty() {
                continue;
            }
            let (p, order) = live.swap_remove(rng.below(live.len() as u64) as usize);
            if order > 0 && rng.chance(20) {
                pa.split_page(Pfn(p), order).unwrap();
                for i in 0..(1u32 << order) {
                    if rng.chance(50) {
                        pa.__free_pages(Pfn(p + i), 0).unwrap();
                        s.free(&pa, p + i, 0);
                    } else {
                        live.push((p + i, 0));
                    }
                }
            } else {
                pa.__free_pages(Pfn(p), order).unwrap();
                if pcp_allowed_order(order) {
                    s.free(&pa, p, order);
                } else {
                    s.set(p, order, F::Buddy);
                }
            }
        } else if r < 95 {
            let zone = if rng.chance(50) { None } else { Some(rng.below(pa.nr_zones as u64) as usize) };
            pa.drain_all_pages(zone);
            for z in 0..pa.nr_zones {
                if zone.is_some_and(|x| x != z) {
                    continue;
                }
                let c = s.count[z];
                s.bulk(z, c, 0);
            }
        } else if r < 98 {
            let blk = base + (rng.below((nr_pages / pb) as u64) as u32) * pb;
            let t = pa.mem.get_pageblock_migratetype(Pfn(blk));
            if !t.is_isolate() && pa.start_isolate_page_range(Pfn(blk), Pfn(blk + pb), if t.is_cma() { MigrateType::Cma } else { MigrateType::Movable }, 0).is_ok() {
                isolated.push((blk, t));
            }
        } else if let Some((blk, t)) = isolated.pop() {
            pa.undo_isolate_page_range(Pfn(blk), Pfn(blk + pb), t);
        }
        check(&pa, &s, &ctx);
    }
    let overflows = s.overflows;
    assert!(hits > 100 && refills > 20 && overflows > 5, "hits {hits} refills {refills} overflows {overflows}");
}

#[test]
fn model_pcp_debian_highmem() {
    // 64 MiB with vmalloc=976M: 40 MiB Normal, 24 MiB HighMem with CMA.
    for seed in [1, 0xBEEF] {
        run(MmProfile::DEBIAN_6_1, 16384, 2, Some(976 << 20), seed, 6000);
    }
}

#[test]
fn model_pcp_biscuitos() {
    for seed in [5, 77] {
        run(MmProfile::BISCUITOS_5_0, 16384, 2, None, seed, 6000);
    }
}

#[test]
fn model_pcp_debian_256m_batch_15() {
    // 256 MiB of lowmem: batch 15, high = the low watermark.
    for seed in [3, 1234] {
        run(MmProfile::DEBIAN_6_1, 65536, 4, None, seed, 3000);
    }
}
