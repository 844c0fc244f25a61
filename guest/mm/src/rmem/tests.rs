use super::*;
use crate::cma::tests::VecLog;
use crate::config::{parse_bootargs, Profile};

const MIB: u64 = 1 << 20;

fn setup(cfg: &Config) -> (Memblock, CmaAreas<'static>, ReservedMemTable, VecLog) {
    let mut mb = Memblock::new();
    mb.memblock_add(PhysAddr(0x6000_0000), 0x4000_0000).unwrap();
    (mb, CmaAreas::for_config(cfg), ReservedMemTable::new(), VecLog::default())
}

fn run(children: &[RmemNode], cells: (u32, u32)) -> (Memblock, CmaAreas<'static>, ReservedMemTable, Vec<String>) {
    let cfg = Config::for_profile(Profile::Biscuitos50);
    let (mut mb, mut a, mut t, mut log) = setup(&cfg);
    let dt = ReservedMemoryDt { addr_cells: Some(cells.0), size_cells: Some(cells.1), has_ranges: true, children };
    t.early_init_fdt_scan_reserved_mem(&[], Some(&dt), cells, &mut mb, &mut a, &cfg, &mut log).unwrap();
    (mb, a, t, log.0)
}

fn cma_node(name: &str) -> RmemNode {
    RmemNode::new(name).compatible("shared-dma-pool").reusable()
}

#[test]
fn two_cell_addresses_and_sizes() {
    let n = [cma_node("cma@70000000").reg(&[(0x7000_0000, 0x0100_0000)], 2, 2)];
    let (mb, a, _, log) = run(&n, (2, 2));
    assert_eq!(log[0], "Reserved memory: created CMA memory pool at 0x70000000, size 16 MiB");
    assert_eq!(a.get(crate::cma::CmaId(0)).count(), 4096);
    assert!(mb.memblock_is_region_reserved(PhysAddr(0x7000_0000), 16 * MIB));
}

#[test]
fn cells_mismatch_with_root_is_unsupported() {
    let cfg = Config::default();
    let (mut mb, mut a, mut t, mut log) = setup(&cfg);
    let n = [cma_node("cma@70000000").reg(&[(0x7000_0000, 0x0100_0000)], 1, 1)];
    let dt = ReservedMemoryDt { addr_cells: Some(1), size_cells: Some(1), has_ranges: false, children: &n };
    t.early_init_fdt_scan_reserved_mem(&[(0x6100_0000, 0x1000)], Some(&dt), (1, 1), &mut mb, &mut a, &cfg, &mut log).unwrap();
    assert_eq!(log.0, vec!["OF: fdt: Reserved memory: unsupported node format, ignoring"]);
    assert!(a.is_empty());
    // /memreserve/ still applied
    assert!(mb.memblock_is_reserved(PhysAddr(0x6100_0000)));
}

#[test]
fn invalid_reg_length_skips_node() {
    let mut n = cma_node("bad@70000000");
    n.reg = Some(PropCells::from_cells(&[0x7000_0000, 0x100_0000, 0x5]));
    let (_, a, _, log) = run(&[n], (1, 1));
    assert_eq!(log, vec!["OF: fdt: Reserved memory: invalid reg property in 'bad@70000000', skipping node."]);
    assert!(a.is_empty());
}

#[test]
fn invalid_size_and_alignment_lengths() {
    let mut n = cma_node("s");
    n.size = Some(PropCells::from_cells(&[0, 0x100_0000]));
    let (_, _, _, log) = run(&[n], (1, 1));
    assert_eq!(log, vec!["OF: reserved mem: invalid size property in 's' node."]);
    let n = cma_node("a").size(0x100_0000, 1).alignment(0x10_0000, 2);
    let (_, _, _, log) = run(&[n], (1, 1));
    assert_eq!(log, vec!["OF: reserved mem: invalid alignment property in 'a' node."]);
    let mut n = cma_node("r").size(0x100_0000, 1);
    n.alloc_ranges = Some(PropCells::from_cells(&[0x6900_0000]));
    let (_, _, _, log) = run(&[n], (1, 1));
    assert_eq!(log, vec!["OF: reserved mem: invalid alloc-ranges property in 'r', skipping node."]);
}

#[test]
fn dynamic_allocation_failure_message() {
    let n = [cma_node("huge").size(0x8000_0000, 1)];
    let (_, a, _, log) = run(&n, (1, 1));
    assert_eq!(log, vec!["OF: reserved mem: failed to allocate memory for node 'huge': size 2048 MiB"]);
    assert!(a.is_empty());
}

#[test]
fn dynamic_without_ranges_goes_to_top_of_ram_aligned_for_cma() {
    let n = [cma_node("dyn").size(0x0060_0000, 1)];
    let (_, a, t, _) = run(&n, (1, 1));
    // 6 MiB would not be pageblock (4 MiB) aligned in size: CMA setup fails
    assert!(a.is_empty());
    assert_eq!(t.entries()[0].base, 0x9fc0_0000 - 0x0040_0000);
}

#[test]
fn alloc_ranges_second_range_used_when_first_full() {
    let n = [
        cma_node("fixed@69000000").reg(&[(0x6900_0000, 0x0080_0000)], 1, 1),
        cma_node("dyn").size(0x0040_0000, 1).alloc_ranges(&[(0x6900_0000, 0x0080_0000), (0x7000_0000, 0x0100_0000)], 1, 1),
    ];
    let (_, a, _, log) = run(&n, (1, 1));
    assert_eq!(a.get(a.find_by_name("dyn").unwrap()).cma_get_base(), PhysAddr(0x70c0_0000));
    assert_eq!(log.len(), 4);
}

#[test]
fn no_map_cma_is_refused_and_returned() {
    let n = [RmemNode::new("nm@70000000").compatible("shared-dma-pool").reg(&[(0x7000_0000, 0x0100_0000)], 1, 1).reusable().no_map()];
    let (mb, a, _, log) = run(&n, (1, 1));
    assert!(a.is_empty());
    // cma: EINVAL (no-map); dma: EINVAL (reusable) → matching fail, nomap cleared
    assert_eq!(log, vec!["OF: reserved mem: node nm@70000000 compatible matching fail"]);
    assert!(mb.memblock_is_map_memory(PhysAddr(0x7000_0000)));
}

#[test]
fn misaligned_cma_region_is_refused_and_freed() {
    let n = [cma_node("mis@70100000").reg(&[(0x7010_0000, 0x0040_0000)], 1, 1)];
    let (mb, a, _, log) = run(&n, (1, 1));
    assert!(a.is_empty());
    assert_eq!(
        log,
        vec!["Reserved memory: incorrect alignment of CMA region", "OF: reserved mem: node mis@70100000 compatible matching fail"]
    );
    assert!(!mb.memblock_is_region_reserved(PhysAddr(0x7010_0000), 0x40_0000));
}

#[test]
fn coherent_pool_without_no_map_is_refused_on_arm() {
    let n = [RmemNode::new("pool@70000000").compatible("shared-dma-pool").reg(&[(0x7000_0000, 0x0010_0000)], 1, 1)];
    let (mb, _, t, log) = run(&n, (1, 1));
    assert_eq!(
        log,
        vec!["Reserved memory: regions without no-map are not yet supported", "OF: reserved mem: node pool@70000000 compatible matching fail"]
    );
    assert_eq!(t.entries()[0].ops, RmemOps::None);
    assert!(!mb.memblock_is_reserved(PhysAddr(0x7000_0000)));
}

#[test]
fn other_compatibles_and_disabled_nodes() {
    let mut off = cma_node("off@70000000").reg(&[(0x7000_0000, 0x0040_0000)], 1, 1);
    off.available = false;
    let plain = RmemNode::new("ramoops@71000000").compatible("ramoops").reg(&[(0x7100_0000, 0x0010_0000)], 1, 1);
    let (mb, a, t, log) = run(&[off, plain], (1, 1));
    assert!(log.is_empty());
    assert!(a.is_empty());
    assert!(!mb.memblock_is_reserved(PhysAddr(0x7000_0000)));
    // reserved but unclaimed: -ENOENT keeps the reservation
    assert!(mb.memblock_is_reserved(PhysAddr(0x7100_0000)));
    assert_eq!(t.entries().len(), 1);
}

#[test]
fn overlap_is_reported() {
    let n = [
        RmemNode::new("a@70000000").reg(&[(0x7000_0000, 0x0020_0000)], 1, 1),
        RmemNode::new("b@70100000").reg(&[(0x7010_0000, 0x0020_0000)], 1, 1),
    ];
    let (_, _, _, log) = run(&n, (1, 1));
    assert_eq!(
        log,
        vec![
            "OF: reserved mem: OVERLAP DETECTED!",
            "a@70000000 (0x70000000--0x70200000) overlaps with b@70100000 (0x70100000--0x70300000)",
        ]
    );
}

#[test]
fn failed_reg_reservation_logs() {
    // no-map over memory already reserved: -EBUSY
    let n = [
        RmemNode::new("r@70000000").reg(&[(0x7000_0000, 0x0020_0000)], 1, 1),
        RmemNode::new("n@70000000").reg(&[(0x7000_0000, 0x0010_0000)], 1, 1).no_map(),
    ];
    let (_, _, _, log) = run(&n, (1, 1));
    assert_eq!(log[0], "OF: fdt: Reserved memory: failed to reserve memory for node 'n@70000000': base 0x70000000, size 1 MiB");
}

#[test]
fn phandle_lookup_gives_device_its_area() {
    let n = [cma_node("cam@70000000").reg(&[(0x7000_0000, 0x0040_0000)], 1, 1).phandle(7)];
    let (_, _, t, _) = run(&n, (1, 1));
    let (ops, r) = t.of_reserved_mem_device_init(7).unwrap();
    assert_eq!(ops, RmemOps::Cma(crate::cma::CmaId(0)));
    assert_eq!(r.name.as_str(), "cam@70000000");
    assert_eq!(t.of_reserved_mem_device_init(8).unwrap_err(), Errno::EINVAL);
    assert!(t.of_reserved_mem_lookup("cam@70000000").is_some());
}

#[test]
fn compatible_is_prefix_case_insensitive_like_of_compat_cmp() {
    let n = RmemNode::new("x").compatible("vendor,pool\0Shared-DMA-Pool");
    assert!(n.is_compatible("shared-dma-pool"));
    assert!(!RmemNode::new("y").compatible("shared-dma").is_compatible("shared-dma-pool"));
}

#[test]
fn linux_sort_orders_and_swaps_equal_pairs_like_heapsort() {
    let mut v = [(0u64, 0u64, 'a'), (0, 0, 'b')];
    linux_sort(&mut v, |x, y| (x.0, x.1).cmp(&(y.0, y.1)));
    assert_eq!(v.map(|x| x.2), ['b', 'a']);
    let mut w = [5, 3, 9, 1, 1, 7, 0, 2];
    linux_sort(&mut w, |x, y| x.cmp(y));
    assert_eq!(w, [0, 1, 1, 2, 3, 5, 7, 9]);
}

#[test]
fn cmdline_priority_uses_parsed_cma() {
    let cfg = parse_bootargs("cma=32M", &mut |_| {});
    let (mut mb, mut a, mut t, mut log) = setup(&cfg);
    let n = [cma_node("cma@70000000").reg(&[(0x7000_0000, 0x0080_0000)], 1, 1)];
    let dt = ReservedMemoryDt { addr_cells: Some(1), size_cells: Some(1), has_ranges: true, children: &n };
    t.early_init_fdt_scan_reserved_mem(&[], Some(&dt), (1, 1), &mut mb, &mut a, &cfg, &mut log).unwrap();
    // not the default node: no bypass
    assert_eq!(a.len(), 1);
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn arbitrary_nodes_never_panic(
            nodes in proptest::collection::vec(
                (proptest::collection::vec(any::<u32>(), 0..6), proptest::collection::vec(any::<u32>(), 0..3),
                 proptest::collection::vec(any::<u32>(), 0..5), any::<[bool; 4]>()),
                0..6),
            cells in (1u32..3, 1u32..3),
        ) {
            let children: Vec<RmemNode> = nodes.iter().enumerate().map(|(i, (reg, size, ranges, f))| {
                let mut n = RmemNode::new(&format!("n{i}")).compatible(if f[0] { "shared-dma-pool" } else { "other" });
                if !reg.is_empty() { n.reg = Some(PropCells::from_cells(reg)); }
                if !size.is_empty() { n.size = Some(PropCells::from_cells(size)); }
                if !ranges.is_empty() { n.alloc_ranges = Some(PropCells::from_cells(ranges)); }
                n.reusable = f[1]; n.no_map = f[2]; n.cma_default = f[3];
                n
            }).collect();
            let _ = run(&children, cells);
        }
    }
}

/// Issue 19: `#address-cells = 0xffffffff` with `#size-cells = 2` wrapped
/// `t_len` to 4 and read 2^32 cells per `reg` entry.
#[test]
fn absurd_root_cells_are_a_typed_error_not_a_long_loop() {
    let cfg = Config::default();
    for cells in [(0xffff_ffff, 2), (2, 0xffff_ffff), (0xffff_fffe, 0xffff_fffe), (5, 1), (0, 1), (1, 5)] {
        let (mut mb, mut a, mut t, mut log) = setup(&cfg);
        let n = [cma_node("cma@70000000").reg(&[(0x7000_0000, 0x0100_0000)], 2, 2)];
        let dt = ReservedMemoryDt { addr_cells: Some(cells.0), size_cells: Some(cells.1), has_ranges: true, children: &n };
        let e = t.early_init_fdt_scan_reserved_mem(&[(0x6100_0000, 0x1000)], Some(&dt), cells, &mut mb, &mut a, &cfg, &mut log);
        assert_eq!(e, Err(RmemError::RootCells { addr_cells: cells.0, size_cells: cells.1 }));
        assert!(a.is_empty() && t.entries().is_empty(), "{cells:?}");
        assert!(mb.memblock_is_reserved(PhysAddr(0x6100_0000)), "/memreserve/ still applied");
    }
    assert_eq!(
        RmemError::RootCells { addr_cells: 0xffff_ffff, size_cells: 2 }.to_string(),
        "root #address-cells=4294967295/#size-cells=2 out of range (1-4 and 0-4), /reserved-memory ignored"
    );
    // the largest legal counts still decode (the low two cells of each number)
    let mut n = cma_node("cma@70000000");
    n.reg = Some(PropCells::from_cells(&[0, 0, 0, 0x7000_0000, 0, 0, 0, 0x0100_0000]));
    let (mb, a, _, log) = run(&[n], (4, 4));
    assert_eq!(log[0], "Reserved memory: created CMA memory pool at 0x70000000, size 16 MiB");
    assert_eq!(a.get(crate::cma::CmaId(0)).count(), 4096);
    assert!(mb.memblock_is_region_reserved(PhysAddr(0x7000_0000), 16 * MIB));
}
