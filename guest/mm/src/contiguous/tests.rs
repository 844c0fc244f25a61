//! The seed scenarios (CMA.md), end to end through memblock, the
//! command line, `/reserved-memory`, `dma_contiguous_reserve()` and
//! activation, under both profiles.

use super::*;
use crate::cma::tests::{FakeMm, VecLog, VecTrace};
use crate::config::parse_bootargs;
use crate::memblock::MemblockTypeId;
use crate::rmem::{ReservedMemTable, ReservedMemoryDt, RmemNode, RmemOps};

const MIB: u64 = 1 << 20;
const RAM: (u64, u64) = (0x6000_0000, 0xa000_0000);

struct Booted {
    mb: Memblock,
    areas: CmaAreas<'static>,
    rmem: ReservedMemTable,
    log: Vec<String>,
    cfg: Config,
    mm: FakeMm,
}

impl Booted {
    fn cma_total_kb(&self) -> u64 {
        self.areas.totalcma_pages * 4
    }
    fn reserved(&self) -> String {
        let mut s = String::new();
        self.mb.memblock_debug_show(MemblockTypeId::Reserved, &mut s).unwrap();
        s
    }
    fn area(&self, name: &str) -> &crate::cma::Cma<'static> {
        self.areas.get(self.areas.find_by_name(name).unwrap_or_else(|| panic!("no area {name}")))
    }
}

/// What `arm_memblock_init()` does, in its order, then the initcalls.
fn boot(bootargs: &str, children: &[RmemNode]) -> Booted {
    let cfg = parse_bootargs(bootargs, &mut |e| panic!("{e}"));
    let mut log = VecLog::default();
    let mut mb = Memblock::new();
    mb.memblock_add(PhysAddr(RAM.0), RAM.1 - RAM.0).unwrap();
    let lowmem = cfg.lowmem_limit(RAM.0, RAM.1);
    // kernel image (the seed's memblock reserved list)
    mb.memblock_reserve(PhysAddr(0x6000_4000), 0x6800_bfda - 0x6000_4000).unwrap();
    mb.memblock_set_current_limit(PhysAddr(lowmem));
    let mut areas = CmaAreas::for_config(&cfg);
    let mut rmem = ReservedMemTable::new();
    let dt = ReservedMemoryDt { addr_cells: Some(1), size_cells: Some(1), has_ranges: true, children };
    rmem.early_init_fdt_scan_reserved_mem(&[], Some(&dt), (1, 1), &mut mb, &mut areas, &cfg, &mut log).unwrap();
    dma_contiguous_reserve(&mut areas, &mut mb, &cfg, PhysAddr(0xffff_ffff), PhysAddr(lowmem), &mut log);
    // zones: HighMem starts at the lowmem limit
    let mut mm = FakeMm { zone_boundary: Some((lowmem >> 12) as u32), ..Default::default() };
    areas.cma_init_reserved_areas(&mut |_, w| Some(Box::leak(vec![0u32; w].into_boxed_slice())), &mut mm, &mut log);
    Booted { mb, areas, rmem, log: log.0, cfg, mm }
}

fn vexpress_vram() -> RmemNode {
    RmemNode::new("vram@4c000000").compatible("shared-dma-pool").reg(&[(0x4c00_0000, 0x0080_0000)], 1, 1).no_map()
}

// ---- biscuitos-5.0 (the seed articles' kernel) ----

#[test]
fn seed_cmdline_4m_in_range_is_top_down_at_0x69400000() {
    let b = boot("cmaemu.profile=biscuitos-5.0 cma=4M@0x69000000-0x69800000", &[]);
    assert_eq!(b.log, vec!["cma: Reserved 4 MiB at 0x69400000"]);
    assert_eq!(b.area("reserved").cma_get_base(), PhysAddr(0x6940_0000));
    assert_eq!(b.cma_total_kb(), 4096);
    assert_eq!(b.areas.dma_contiguous_default_area, b.areas.find_by_name("reserved"));
}

#[test]
fn seed_build_time_128m_gives_cmatotal_131072() {
    let b = boot("cmaemu.profile=biscuitos-5.0 cmaemu.cma_size_mbytes=128", &[]);
    assert_eq!(b.cma_total_kb(), 131072);
    assert_eq!(b.log, vec!["cma: Reserved 128 MiB at 0x98000000"]);
}

#[test]
fn seed_dt_864m_default_area() {
    let dt = [RmemNode::new("cma@69000000")
        .compatible("shared-dma-pool")
        .reg(&[(0x6900_0000, 0x3600_0000)], 1, 1)
        .reusable()
        .cma_default()];
    let b = boot("cmaemu.profile=biscuitos-5.0", &dt);
    assert_eq!(b.cma_total_kb(), 884736);
    assert_eq!(
        b.log,
        vec![
            "Reserved memory: created CMA memory pool at 0x69000000, size 864 MiB",
            "OF: reserved mem: initialized node cma@69000000, compatible id shared-dma-pool",
        ]
    );
    assert_eq!(b.reserved(), "   0: 0x60004000..0x6800bfd9\n   1: 0x69000000..0x9effffff\n");
    assert_eq!(b.areas.len(), 1);
    assert_eq!(b.areas.dma_contiguous_default_area, Some(crate::cma::CmaId(0)));
    assert_eq!(b.rmem.entries()[0].ops, RmemOps::Cma(crate::cma::CmaId(0)));
}

#[test]
fn seed_two_8m_dt_areas() {
    let dt = [
        RmemNode::new("linux,cma")
            .compatible("shared-dma-pool")
            .reusable()
            .size(0x0080_0000, 1)
            .alloc_ranges(&[(0x6900_0000, 0x0080_0000)], 1, 1)
            .cma_default(),
        RmemNode::new("cma@69800000").compatible("shared-dma-pool").reg(&[(0x6980_0000, 0x0080_0000)], 1, 1).reusable(),
    ];
    let b = boot("cmaemu.profile=biscuitos-5.0", &dt);
    assert_eq!(b.cma_total_kb(), 16384);
    assert_eq!(b.areas.len(), 2);
    // dynamic nodes sort first (base 0) in fdt_init_reserved_mem()
    assert_eq!(b.areas.get(crate::cma::CmaId(0)).cma_get_name(), "linux,cma");
    assert_eq!(b.area("linux,cma").cma_get_base(), PhysAddr(0x6900_0000));
    assert_eq!(b.area("cma@69800000").cma_get_base(), PhysAddr(0x6980_0000));
    assert_eq!(b.areas.dma_contiguous_default_area, b.areas.find_by_name("linux,cma"));
    assert_eq!(
        b.log,
        vec![
            "Reserved memory: created CMA memory pool at 0x69000000, size 8 MiB",
            "OF: reserved mem: initialized node linux,cma, compatible id shared-dma-pool",
            "Reserved memory: created CMA memory pool at 0x69800000, size 8 MiB",
            "OF: reserved mem: initialized node cma@69800000, compatible id shared-dma-pool",
        ]
    );
    assert_eq!(b.reserved(), "   0: 0x60004000..0x6800bfd9\n   1: 0x69000000..0x69ffffff\n");
}

#[test]
fn seed_cma_test_device_allocates_until_exhausted() {
    // the seed's cma_test: write i allocates (i+1) MiB, read frees the oldest
    let mut b = boot("cmaemu.profile=biscuitos-5.0 cmaemu.cma_size_mbytes=16", &[]);
    let (mut t, mut log) = (VecTrace::default(), VecLog::default());
    let pool = atomic_pool_init(&mut b.areas, b.cfg.coherent_pool, &mut b.mm, &mut t, &mut log);
    assert!(matches!(pool, AtomicPool::Cma { size: 0x40000, .. }));
    assert_eq!(t.0[0], "cma_alloc_start: name=reserved count=64 align=6");
    assert_eq!(log.0, vec!["DMA: preallocated 256 KiB pool for atomic coherent allocations"]);
    let mut live = std::collections::VecDeque::new();
    let mut i = 0u64;
    loop {
        let size = (i + 1) * MIB;
        match dma_alloc_contiguous(&mut b.areas, None, size, true, false, &mut b.mm, &mut t, &mut log) {
            Some(p) => live.push_back((p, size)),
            None => break,
        }
        i += 1;
    }
    // 64 pages of atomic pool at bit 0, then 1..=5 MiB at 1 MiB-aligned
    // slots 256, 512, 1024, 1792, 2816 (the last one ends exactly at 4096);
    // 6 MiB does not fit
    assert_eq!(i, 5);
    assert!(log.0.last().unwrap().starts_with("cma: number of available pages:"));
    let (p, s) = live.pop_front().unwrap();
    assert!(dma_free_contiguous(&mut b.areas, None, p, s, &mut b.mm, &mut t));
    assert!(!dma_free_contiguous(&mut b.areas, None, Pfn(0x60000), 4096, &mut b.mm, &mut t));
}

// ---- priorities (6.1) ----

#[test]
fn cmdline_bypasses_dt_default_node_which_is_freed() {
    let dt = [RmemNode::new("linux,cma")
        .compatible("shared-dma-pool")
        .reusable()
        .size(0x0080_0000, 1)
        .alloc_ranges(&[(0x6900_0000, 0x0080_0000)], 1, 1)
        .cma_default()];
    let b = boot("cmaemu.profile=biscuitos-5.0 cma=4M@0x69000000-0x69800000", &dt);
    assert_eq!(
        b.log,
        vec![
            "Reserved memory: bypass linux,cma node, using cmdline CMA params instead",
            "OF: reserved mem: node linux,cma compatible matching fail",
            "cma: Reserved 4 MiB at 0x69400000",
        ]
    );
    assert_eq!(b.areas.len(), 1);
    assert_eq!(b.cma_total_kb(), 4096);
}

#[test]
fn cma_zero_disables_default_area() {
    let b = boot("cma=0", &[]);
    assert!(b.areas.is_empty());
    assert_eq!(b.areas.dma_contiguous_default_area, None);
    assert!(b.log.is_empty());
}

#[test]
fn non_default_dt_area_keeps_build_time_default() {
    let dt = [RmemNode::new("cam@70000000").compatible("shared-dma-pool").reg(&[(0x7000_0000, 0x0100_0000)], 1, 1).reusable()];
    let b = boot("cmaemu.profile=biscuitos-5.0", &dt);
    assert_eq!(b.areas.len(), 2);
    assert_eq!(b.cma_total_kb(), 16384 + 16384);
    assert_eq!(b.areas.dma_contiguous_default_area, b.areas.find_by_name("reserved"));
}

#[test]
fn vexpress_vram_is_a_coherent_pool_not_cma() {
    let b = boot("", &[vexpress_vram()]);
    assert_eq!(
        &b.log[..2],
        &[
            "Reserved memory: created DMA memory pool at 0x4c000000, size 8 MiB".to_string(),
            "OF: reserved mem: initialized node vram@4c000000, compatible id shared-dma-pool".to_string(),
        ]
    );
    assert_eq!(b.rmem.entries()[0].ops, RmemOps::DmaCoherent);
    // outside RAM: no memblock change; the default 16 MiB area still comes
    assert_eq!(b.areas.len(), 1);
}

// ---- default profile (debian-6.1): 8 MiB alignment, HighMem at 0x90000000 ----

#[test]
fn debian_build_time_area_goes_to_highmem() {
    let b = boot("", &[]);
    assert_eq!(b.log, vec!["cma: Reserved 16 MiB at 0x9f000000"]);
    assert_eq!(b.mm.cma_blocks.len(), 2);
}

#[test]
fn debian_cmdline_4m_rounds_to_8m() {
    let b = boot("cma=4M@0x69000000-0x69800000", &[]);
    assert_eq!(b.log, vec!["cma: Reserved 8 MiB at 0x69000000"]);
    assert_eq!(b.cma_total_kb(), 8192);
}

#[test]
fn debian_fixed_cmdline_area() {
    let b = boot("cma=16M@0x70000000", &[]);
    assert_eq!(b.log, vec!["cma: Reserved 16 MiB at 0x70000000"]);
}

#[test]
fn debian_dt_864m_spans_zone_boundary_and_fails_activation() {
    let dt = [RmemNode::new("cma@69000000")
        .compatible("shared-dma-pool")
        .reg(&[(0x6900_0000, 0x3600_0000)], 1, 1)
        .reusable()
        .cma_default()];
    let b = boot("", &dt);
    assert_eq!(b.log.last().unwrap(), "cma: CMA area cma@69000000 could not be activated");
    assert_eq!(b.cma_total_kb(), 0);
    assert_eq!(b.mm.freed_reserved, 0x36000);
}

#[test]
fn size_selection_modes() {
    let mut mb = Memblock::new();
    mb.memblock_add(PhysAddr(RAM.0), RAM.1 - RAM.0).unwrap();
    let mut cfg = Config { cma_size_percentage: 10, cma_size_sel: CmaSizeSel::Percentage, ..Config::default() };
    assert_eq!(cma_selected_size(&cfg, &mb), 26214 * 4096);
    cfg.cma_size_sel = CmaSizeSel::Min;
    assert_eq!(cma_selected_size(&cfg, &mb), 16 * MIB);
    cfg.cma_size_sel = CmaSizeSel::Max;
    assert_eq!(cma_selected_size(&cfg, &mb), 26214 * 4096);
    cfg.cma_size_sel = CmaSizeSel::Mbytes;
    assert_eq!(cma_selected_size(&cfg, &mb), 16 * MIB);
}

#[test]
fn percentage_area_rounds_up_to_pageblock() {
    let b = boot("cmaemu.cma_size_sel=percentage", &[]);
    // 104856 KiB rounded up to 8 MiB: 104 MiB, in HighMem
    assert_eq!(b.log, vec!["cma: Reserved 104 MiB at 0x99800000"]);
}

#[test]
fn get_order_matches_linux() {
    assert_eq!(get_order(1), 0);
    assert_eq!(get_order(4096), 0);
    assert_eq!(get_order(4097), 1);
    assert_eq!(get_order(256 << 10), 6);
    assert_eq!(get_order(3 * MIB), 10);
}

#[test]
fn dma_alloc_alignment_capped_at_cma_alignment() {
    let mut b = boot("cmaemu.profile=biscuitos-5.0 cmaemu.cma_size_mbytes=32", &[]);
    let (mut t, mut log) = (VecTrace::default(), VecLog::default());
    let p = dma_alloc_from_contiguous(&mut b.areas, None, 4096, 12, false, &mut b.mm, &mut t, &mut log).unwrap();
    assert_eq!(t.0[0], "cma_alloc_start: name=reserved count=4096 align=8");
    assert_eq!(p.0 % 256, 0);
    assert!(dma_release_from_contiguous(&mut b.areas, None, p, 4096, &mut b.mm, &mut t));
    // one page without a device area goes to the buddy
    assert!(dma_alloc_contiguous(&mut b.areas, None, 4096, true, false, &mut b.mm, &mut t, &mut log).is_none());
    assert!(dma_alloc_contiguous(&mut b.areas, None, 8192, false, false, &mut b.mm, &mut t, &mut log).is_none());
}

#[test]
fn atomic_pool_without_cma_uses_buddy() {
    let mut b = boot("cma=0", &[]);
    let (mut t, mut log) = (VecTrace::default(), VecLog::default());
    assert_eq!(atomic_pool_init(&mut b.areas, 256 << 10, &mut b.mm, &mut t, &mut log), AtomicPool::UseBuddy { size: 256 << 10 });
}
