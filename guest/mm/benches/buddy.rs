//! Alloc/free throughput of the Linux-faithful buddy allocator against the
//! `buddy_system_allocator` crate's `FrameAllocator`, on the same operation
//! sequence, by order. Not a test: run with
//! `cargo bench -p cmaemu-mm --bench buddy`. Prints a ratio table.
use buddy_system_allocator::FrameAllocator;
use cmaemu_mm::buddy::PageAlloc;
use cmaemu_mm::gfp::GFP_KERNEL;
use cmaemu_mm::page::{MemMap, PageRecord};
use cmaemu_mm::profile::MmProfile;
use cmaemu_mm::types::Pfn;
use cmaemu_mm::zone::zone_sizes_init;
use std::hint::black_box;
use std::time::Instant;

const BASE: u32 = 0x60000;
const FRAMES: u32 = 32768; // 128 MiB
const OPS_PER_ORDER: usize = 400_000;

/// One round: allocate `n` blocks of `order`, free them in the order given
/// by `perm`. The same sequence drives both allocators.
struct Workload {
    order: u32,
    n: usize,
    rounds: usize,
    perm: Vec<usize>,
}

fn xorshift(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

fn workload(order: u32) -> Workload {
    let n = ((FRAMES as usize / 2) >> order).clamp(1, 2048);
    let rounds = (OPS_PER_ORDER / (2 * n)).max(1);
    let mut perm: Vec<usize> = (0..n).collect();
    let mut s = 0x9E37_79B9_7F4A_7C15u64 ^ order as u64;
    for i in (1..n).rev() {
        let j = (xorshift(&mut s) % (i as u64 + 1)) as usize;
        perm.swap(i, j);
    }
    Workload { order, n, rounds, perm }
}

fn boot<'a>(pages: &'a mut [PageRecord], words: &'a mut [u32]) -> PageAlloc<'a> {
    let profile = MmProfile::DEBIAN_6_1;
    let ram = [(Pfn(BASE).phys(), Pfn(BASE + FRAMES).phys())];
    let layout = zone_sizes_init(&profile, &ram, None).unwrap();
    let mem = MemMap::new(pages, Pfn(BASE), words, profile.pageblock_order).unwrap();
    let mut pa = PageAlloc::new(profile, &layout, mem).unwrap();
    pa.build_all_zonelists();
    pa.memblock_free_pages(Pfn(BASE), Pfn(BASE + FRAMES)).unwrap();
    pa.init_per_zone_wmark_min();
    pa
}

fn run_ours(w: &Workload) -> f64 {
    let mut pages = vec![PageRecord::INIT; FRAMES as usize];
    let words = MemMap::pageblock_words_needed(Pfn(BASE), FRAMES, MmProfile::DEBIAN_6_1.pageblock_order);
    let mut words = vec![0u32; words];
    let mut pa = boot(&mut pages, &mut words);
    let mut got = vec![Pfn(0); w.n];
    let t = Instant::now();
    for _ in 0..w.rounds {
        for g in got.iter_mut() {
            *g = pa.__alloc_pages(GFP_KERNEL, w.order).expect("alloc");
        }
        for &i in &w.perm {
            pa.__free_pages(black_box(got[i]), w.order).expect("free");
        }
    }
    let dt = t.elapsed().as_secs_f64();
    assert_eq!(pa.nr_free_pages(), FRAMES as u64);
    (2 * w.n * w.rounds) as f64 / dt
}

fn run_bsa(w: &Workload) -> f64 {
    let mut fa = FrameAllocator::<12>::new();
    fa.add_frame(BASE as usize, (BASE + FRAMES) as usize);
    let mut got = vec![0usize; w.n];
    let count = 1usize << w.order;
    let t = Instant::now();
    for _ in 0..w.rounds {
        for g in got.iter_mut() {
            *g = fa.alloc(count).expect("alloc");
        }
        for &i in &w.perm {
            fa.dealloc(black_box(got[i]), count);
        }
    }
    let dt = t.elapsed().as_secs_f64();
    (2 * w.n * w.rounds) as f64 / dt
}

fn main() {
    println!("buddy alloc+free throughput, {} frames (128 MiB), debian-6.1 profile vs buddy_system_allocator::FrameAllocator<12>", FRAMES);
    println!("{:>5} {:>6} {:>7} {:>14} {:>14} {:>8}", "order", "blocks", "rounds", "cmaemu ops/s", "bsa ops/s", "ratio");
    let mut geo = 0.0f64;
    let mut k = 0;
    for order in 0..=10 {
        let w = workload(order);
        // warm-up, then the best of 3 for each side
        let _ = (run_ours(&w), run_bsa(&w));
        let ours = (0..3).map(|_| run_ours(&w)).fold(0.0, f64::max);
        let bsa = (0..3).map(|_| run_bsa(&w)).fold(0.0, f64::max);
        let ratio = ours / bsa;
        geo += ratio.ln();
        k += 1;
        println!("{:>5} {:>6} {:>7} {:>14.0} {:>14.0} {:>7.2}x", order, w.n, w.rounds, ours, bsa, ratio);
    }
    println!("geometric mean ratio (cmaemu / bsa): {:.2}x", (geo / k as f64).exp());
}
