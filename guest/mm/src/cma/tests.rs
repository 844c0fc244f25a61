use super::*;
use crate::cmdline::parse_uint_strict;
use std::collections::BTreeSet;

const MIB: u64 = 1 << 20;

/// Collects log lines.
#[derive(Default)]
pub(crate) struct VecLog(pub Vec<String>);
impl Log for VecLog {
    fn line(&mut self, args: fmt::Arguments<'_>) {
        self.0.push(args.to_string());
    }
}

/// Collects trace events as text.
#[derive(Default)]
pub(crate) struct VecTrace(pub Vec<String>);
impl CmaTrace for VecTrace {
    fn cma_alloc_start(&mut self, _: CmaId, name: &str, count: u64, align: u32) {
        let mut s = String::from("cma_alloc_start: ");
        fmt_cma_alloc_start(&mut s, name, count, align).unwrap();
        self.0.push(s);
    }
    fn cma_alloc_busy_retry(&mut self, _: CmaId, name: &str, pfn: u64, page: Option<Pfn>, count: u64, align: u32) {
        let mut s = String::from("cma_alloc_busy_retry: ");
        fmt_cma_alloc_class(&mut s, name, pfn, page.map_or(0, |p| p.0), count, align).unwrap();
        self.0.push(s);
    }
    fn cma_alloc_finish(&mut self, _: CmaId, name: &str, pfn: u64, page: Option<Pfn>, count: u64, align: u32, errorno: i32) {
        let mut s = String::from("cma_alloc_finish: ");
        fmt_cma_alloc_class(&mut s, name, pfn, page.map_or(0, |p| p.0), count, align).unwrap();
        s += &format!(" [errorno={errorno}]");
        self.0.push(s);
    }
    fn cma_release(&mut self, _: CmaId, name: &str, pfn: u64, page: Option<Pfn>, count: u64) {
        let mut s = String::from("cma_release: ");
        fmt_cma_release(&mut s, name, pfn, page.map_or(0, |p| p.0), count).unwrap();
        self.0.push(s);
    }
}

/// A fake page allocator: pinned pages make `alloc_contig_range` fail
/// with `-EBUSY`; it checks pages are never handed out twice.
#[derive(Default)]
pub(crate) struct FakeMm {
    pub pinned: BTreeSet<u32>,
    pub taken: BTreeSet<u32>,
    pub fail_with: Option<Errno>,
    pub calls: Vec<(u32, u32)>,
    pub zone_boundary: Option<u32>,
    pub cma_blocks: Vec<u32>,
    pub freed_reserved: u64,
}

impl ContigRange for FakeMm {
    fn alloc_contig_range(&mut self, start: Pfn, end: Pfn) -> Result<(), Errno> {
        self.calls.push((start.0, end.0));
        if let Some(e) = self.fail_with {
            return Err(e);
        }
        if (start.0..end.0).any(|p| self.pinned.contains(&p)) {
            return Err(Errno::EBUSY);
        }
        for p in start.0..end.0 {
            assert!(self.taken.insert(p), "pfn {p:#x} handed out twice");
        }
        Ok(())
    }
    fn free_contig_range(&mut self, pfn: Pfn, count: u64) {
        for p in pfn.0..pfn.0 + count as u32 {
            assert!(self.taken.remove(&p), "freeing pfn {p:#x} that was not allocated");
        }
    }
}

impl CmaActivate for FakeMm {
    fn pfn_range_in_one_zone(&self, start: Pfn, end: Pfn) -> bool {
        match self.zone_boundary {
            Some(b) => end.0 <= b || start.0 >= b,
            None => true,
        }
    }
    fn init_cma_reserved_pageblock(&mut self, pfn: Pfn) {
        self.cma_blocks.push(pfn.0);
    }
    fn free_reserved_page(&mut self, _pfn: Pfn) {
        self.freed_reserved += 1;
    }
}

fn board() -> Memblock {
    let mut mb = Memblock::new();
    mb.memblock_add(PhysAddr(0x6000_0000), 0x4000_0000).unwrap();
    mb.memblock_reserve(PhysAddr(0x6000_4000), 0x6800_bfda - 0x6000_4000).unwrap();
    mb
}

/// biscuitos-5.0 geometry: 4 MiB pageblocks, no highmem.
fn areas_b() -> CmaAreas<'static> {
    CmaAreas::new(1024, 1024)
}
/// debian-6.1 geometry: 8 MiB pageblocks.
fn areas_d() -> CmaAreas<'static> {
    CmaAreas::new(2048, 2048)
}
const NO_HIGHMEM: PhysAddr = PhysAddr(0xa000_0000);
const HIGHMEM_3G: PhysAddr = PhysAddr(0x9000_0000);

fn leak(words: usize) -> &'static mut [u32] {
    Box::leak(vec![0u32; words].into_boxed_slice())
}

fn activate_all(a: &mut CmaAreas<'static>, mm: &mut FakeMm, log: &mut VecLog) {
    a.cma_init_reserved_areas(&mut |_, w| Some(leak(w)), mm, log);
}

#[test]
fn declare_dynamic_top_down_logs_reserved() {
    let (mut mb, mut a, mut log) = (board(), areas_b(), VecLog::default());
    let id = a
        .cma_declare_contiguous(&mut mb, PhysAddr(0), 16 * MIB, PhysAddr(0), 0, 0, false, Some("reserved"), NO_HIGHMEM, &mut log)
        .unwrap();
    assert_eq!(a.get(id).cma_get_base(), PhysAddr(0x9f00_0000));
    assert_eq!(a.get(id).count(), 4096);
    assert_eq!(log.0, vec!["cma: Reserved 16 MiB at 0x9f000000"]);
    assert_eq!(a.totalcma_pages, 4096);
    assert!(mb.memblock_is_region_reserved(PhysAddr(0x9f00_0000), 16 * MIB));
}

#[test]
fn declare_prefers_highmem_when_limit_allows() {
    let (mut mb, mut a, mut log) = (board(), areas_d(), VecLog::default());
    // something at the very top: the area lands just below it, still highmem
    mb.memblock_reserve(PhysAddr(0x9ff0_0000), MIB).unwrap();
    let id = a
        .cma_declare_contiguous(&mut mb, PhysAddr(0), 16 * MIB, PhysAddr(0xffff_ffff), 0, 0, false, Some("reserved"), HIGHMEM_3G, &mut log)
        .unwrap();
    assert_eq!(a.get(id).cma_get_base(), PhysAddr(0x9e80_0000));
    // highmem full: falls back to lowmem, below highmem_start
    let mut mb2 = board();
    mb2.memblock_reserve(HIGHMEM_3G, 0x1000_0000).unwrap();
    let id = a
        .cma_declare_contiguous(&mut mb2, PhysAddr(0), 16 * MIB, PhysAddr(0), 0, 0, false, None, HIGHMEM_3G, &mut log)
        .unwrap();
    assert_eq!(a.get(id).cma_get_base(), PhysAddr(0x8f00_0000));
    assert_eq!(a.get(id).cma_get_name(), "cma1");
}

#[test]
fn declare_rounds_size_and_base_to_pageblock() {
    let (mut mb, mut a, mut log) = (board(), areas_d(), VecLog::default());
    let id = a
        .cma_declare_contiguous(&mut mb, PhysAddr(0x6900_0000), 4 * MIB, PhysAddr(0x6980_0000), 0, 0, false, None, HIGHMEM_3G, &mut log)
        .unwrap();
    assert_eq!(a.get(id).cma_get_size(), 8 * MIB);
    assert_eq!(a.get(id).cma_get_base(), PhysAddr(0x6900_0000));
    assert_eq!(log.0, vec!["cma: Reserved 8 MiB at 0x69000000"]);
}

#[test]
fn declare_fixed_unaligned_is_einval_with_linux_lines() {
    let (mut mb, mut a, mut log) = (board(), areas_b(), VecLog::default());
    let e = a
        .cma_declare_contiguous(&mut mb, PhysAddr(0x6910_0000), 4 * MIB, PhysAddr(0x6950_0000), 0, 0, true, None, NO_HIGHMEM, &mut log)
        .unwrap_err();
    assert_eq!(e.errno(), Errno::EINVAL);
    assert_eq!(
        log.0,
        vec!["cma: Region at 0x69100000 must be aligned to 0x00400000 bytes", "cma: Failed to reserve 4 MiB"]
    );
}

#[test]
fn declare_fixed_overlapping_is_ebusy() {
    let (mut mb, mut a, mut log) = (board(), areas_b(), VecLog::default());
    let e = a
        .cma_declare_contiguous(&mut mb, PhysAddr(0x6800_0000), 4 * MIB, PhysAddr(0x6840_0000), 0, 0, true, None, NO_HIGHMEM, &mut log)
        .unwrap_err();
    assert_eq!(e.errno(), Errno::EBUSY);
    assert_eq!(log.0, vec!["cma: Failed to reserve 4 MiB"]);
}

#[test]
fn declare_fixed_across_highmem_is_einval() {
    let (mut mb, mut a, mut log) = (board(), areas_d(), VecLog::default());
    let e = a
        .cma_declare_contiguous(&mut mb, PhysAddr(0x8f80_0000), 16 * MIB, PhysAddr(0x9080_0000), 0, 0, true, None, HIGHMEM_3G, &mut log)
        .unwrap_err();
    assert_eq!(e, CmaError::CrossesHighmem { base: 0x8f80_0000, highmem_start: 0x9000_0000 });
    assert_eq!(log.0[0], "cma: Region at 0x8f800000 defined on low/high memory boundary (0x90000000)");
}

#[test]
fn declare_exceeding_limit_and_enomem() {
    let (mut mb, mut a, mut log) = (board(), areas_b(), VecLog::default());
    let e = a
        .cma_declare_contiguous(&mut mb, PhysAddr(0x9f00_0000), 32 * MIB, PhysAddr(0), 0, 0, false, None, NO_HIGHMEM, &mut log)
        .unwrap_err();
    assert_eq!(e.errno(), Errno::EINVAL);
    assert_eq!(log.0[0], "cma: Size (0x02000000) of region at 0x9f000000 exceeds limit (0xa0000000)");
    log.0.clear();
    let e = a
        .cma_declare_contiguous(&mut mb, PhysAddr(0), 1024 * MIB, PhysAddr(0), 0, 0, false, None, NO_HIGHMEM, &mut log)
        .unwrap_err();
    assert_eq!(e.errno(), Errno::ENOMEM);
    assert_eq!(log.0, vec!["cma: Failed to reserve 1024 MiB"]);
}

#[test]
fn declare_rejects_bad_args_silently_like_linux() {
    let (mut mb, mut a, mut log) = (board(), areas_b(), VecLog::default());
    let z = a.cma_declare_contiguous(&mut mb, PhysAddr(0), 0, PhysAddr(0), 0, 0, false, None, NO_HIGHMEM, &mut log);
    assert_eq!(z.unwrap_err().errno(), Errno::EINVAL);
    let p = a.cma_declare_contiguous(&mut mb, PhysAddr(0), MIB, PhysAddr(0), 3 * MIB, 0, false, None, NO_HIGHMEM, &mut log);
    assert_eq!(p.unwrap_err(), CmaError::AlignmentNotPowerOfTwo { alignment: 3 * MIB });
    assert!(log.0.is_empty());
}

#[test]
fn eighth_area_is_enospc() {
    let (mut mb, mut a, mut log) = (board(), areas_b(), VecLog::default());
    for _ in 0..MAX_CMA_AREAS {
        a.cma_declare_contiguous(&mut mb, PhysAddr(0), 4 * MIB, PhysAddr(0), 0, 0, false, None, NO_HIGHMEM, &mut log)
            .unwrap();
    }
    log.0.clear();
    let e = a
        .cma_declare_contiguous(&mut mb, PhysAddr(0), 4 * MIB, PhysAddr(0), 0, 0, false, None, NO_HIGHMEM, &mut log)
        .unwrap_err();
    assert_eq!(e.errno(), Errno::ENOSPC);
    assert_eq!(log.0, vec!["cma: Not enough slots for CMA reserved regions!"]);
    assert_eq!(e.to_string(), "cma: no free CMA area slot (MAX_CMA_AREAS = 7)");
}

#[test]
fn init_reserved_mem_checks() {
    let (mb, mut a, mut log) = (board(), areas_b(), VecLog::default());
    // not reserved
    let e = a.cma_init_reserved_mem(&mb, PhysAddr(0x7000_0000), 4 * MIB, 0, None, &mut log).unwrap_err();
    assert_eq!(e.errno(), Errno::EINVAL);
    // reserved but misaligned
    let mut mb = mb;
    mb.memblock_reserve(PhysAddr(0x7010_0000), 4 * MIB).unwrap();
    let e = a.cma_init_reserved_mem(&mb, PhysAddr(0x7010_0000), 4 * MIB, 0, None, &mut log).unwrap_err();
    assert!(matches!(e, CmaError::Misaligned { .. }));
    // order_per_bit too coarse for CMA_MIN_ALIGNMENT_PAGES
    mb.memblock_reserve(PhysAddr(0x7040_0000), 4 * MIB).unwrap();
    let e = a.cma_init_reserved_mem(&mb, PhysAddr(0x7040_0000), 4 * MIB, 11, None, &mut log).unwrap_err();
    assert_eq!(e, CmaError::OrderPerBit { order_per_bit: 11 });
    // name truncated to 63 bytes
    let long = "x".repeat(100);
    let id = a.cma_init_reserved_mem(&mb, PhysAddr(0x7040_0000), 4 * MIB, 0, Some(&long), &mut log).unwrap();
    assert_eq!(a.get(id).cma_get_name().len(), 63);
}

fn one_area(pages: u64, order_per_bit: u32) -> (CmaAreas<'static>, CmaId, FakeMm) {
    let (mut mb, mut a, mut log) = (board(), areas_b(), VecLog::default());
    let id = a
        .cma_declare_contiguous(&mut mb, PhysAddr(0), pages * PAGE_SIZE, PhysAddr(0), 0, order_per_bit, false, Some("test"), NO_HIGHMEM, &mut log)
        .unwrap();
    let mut mm = FakeMm::default();
    activate_all(&mut a, &mut mm, &mut log);
    (a, id, mm)
}

#[test]
fn activation_hands_pageblocks_to_buddy() {
    let (a, id, mm) = one_area(4096, 0);
    let base = a.get(id).base_pfn().0;
    assert_eq!(mm.cma_blocks, vec![base, base + 1024, base + 2048, base + 3072]);
    assert_eq!(a.get(id).bitmap().unwrap().len(), 4096 / 32);
}

#[test]
fn activation_across_zones_fails_and_frees_pages() {
    let (mut mb, mut a, mut log) = (board(), areas_d(), VecLog::default());
    mb.memblock_reserve(PhysAddr(0x8f80_0000), 16 * MIB).unwrap();
    let id = a.cma_init_reserved_mem(&mb, PhysAddr(0x8f80_0000), 16 * MIB, 0, Some("span"), &mut log).unwrap();
    let mut mm = FakeMm { zone_boundary: Some(0x90000), ..Default::default() };
    assert!(!a.cma_activate_area(id, Some(leak(128)), &mut mm, &mut log));
    assert_eq!(log.0, vec!["cma: CMA area span could not be activated"]);
    assert_eq!(mm.freed_reserved, 4096);
    assert_eq!(a.totalcma_pages, 0);
    assert_eq!(a.get(id).count(), 0);
    // and allocation from it fails (counted)
    let mut t = VecTrace::default();
    assert!(a.cma_alloc(Some(id), 1, 0, false, &mut mm, &mut t, &mut log).is_none());
    assert_eq!(a.vm_cma_alloc_fail, 1);
    assert!(t.0.is_empty());
}

#[test]
fn activation_without_bitmap_storage_fails() {
    let (mut mb, mut a, mut log) = (board(), areas_b(), VecLog::default());
    let id = a
        .cma_declare_contiguous(&mut mb, PhysAddr(0), 4 * MIB, PhysAddr(0), 0, 0, false, Some("x"), NO_HIGHMEM, &mut log)
        .unwrap();
    let mut mm = FakeMm::default();
    assert!(!a.cma_activate_area(id, Some(leak(3)), &mut mm, &mut log));
    assert_eq!(log.0.last().unwrap(), "cma: CMA area x could not be activated");
}

#[test]
fn alloc_traces_and_bitmap_views() {
    let (mut a, id, mut mm) = one_area(4096, 0);
    let (mut t, mut log) = (VecTrace::default(), VecLog::default());
    let base = a.get(id).base_pfn().0;
    let p = a.cma_alloc(Some(id), 64, 6, false, &mut mm, &mut t, &mut log).unwrap();
    assert_eq!(p.0, base);
    assert_eq!(
        t.0,
        vec![
            "cma_alloc_start: name=test count=64 align=6".to_string(),
            format!("cma_alloc_finish: name=test pfn={:#x} page={:08x} count=64 align=6 [errorno=0]", base, base),
        ]
    );
    let mut s = String::new();
    a.get(id).debugfs_used(&mut s).unwrap();
    a.get(id).debugfs_maxchunk(&mut s).unwrap();
    a.get(id).debugfs_count(&mut s).unwrap();
    a.get(id).debugfs_order_per_bit(&mut s).unwrap();
    a.get(id).debugfs_base_pfn(&mut s).unwrap();
    assert_eq!(s, format!("64\n4032\n4096\n0\n{}\n", base));
    let mut b = String::new();
    a.get(id).debugfs_bitmap(&mut b).unwrap();
    assert!(b.starts_with("4294967295 4294967295 0 0 "));
    assert!(b.ends_with(" 0\n"));
    assert_eq!(b.split(' ').count(), 128);
    assert_eq!(a.vm_cma_alloc_success, 1);
    assert_eq!(a.get(id).alloc_pages_success, 64);
    let mut s = String::new();
    a.get(id).sysfs_alloc_pages_success(&mut s).unwrap();
    assert_eq!(s, "64\n");
    // release
    t.0.clear();
    assert!(a.cma_release(Some(id), p, 64, &mut mm, &mut t));
    assert_eq!(t.0, vec![format!("cma_release: name=test pfn={:#x} page={:08x} count=64", base, base)]);
    assert_eq!(a.get(id).cma_used_get(), 0);
    assert!(mm.taken.is_empty());
}

#[test]
fn busy_range_retries_at_next_aligned_slot() {
    let (mut a, id, mut mm) = one_area(4096, 0);
    let base = a.get(id).base_pfn().0;
    mm.pinned.insert(base + 100);
    let (mut t, mut log) = (VecTrace::default(), VecLog::default());
    let p = a.cma_alloc(Some(id), 256, 8, false, &mut mm, &mut t, &mut log).unwrap();
    assert_eq!(p.0, base + 256);
    assert_eq!(mm.calls, vec![(base, base + 256), (base + 256, base + 512)]);
    assert_eq!(t.0[1], format!("cma_alloc_busy_retry: name=test pfn={:#x} page={:08x} count=256 align=8", base, base));
    assert!(log.0.is_empty());
    // the busy attempt's bits were cleared again
    assert_eq!(a.get(id).cma_used_get(), 256);
}

#[test]
fn failure_logs_linux_lines_and_free_runs() {
    let (mut a, id, mut mm) = one_area(4096, 0);
    let base = a.get(id).base_pfn().0;
    let (mut t, mut log) = (VecTrace::default(), VecLog::default());
    a.cma_alloc(Some(id), 1024, 0, false, &mut mm, &mut t, &mut log).unwrap();
    a.cma_alloc(Some(id), 1024, 0, false, &mut mm, &mut t, &mut log).unwrap();
    let p3 = a.cma_alloc(Some(id), 1024, 0, false, &mut mm, &mut t, &mut log).unwrap();
    a.cma_release(Some(id), Pfn(base), 1024, &mut mm, &mut t);
    let _ = p3;
    t.0.clear();
    assert!(a.cma_alloc(Some(id), 2048, 0, false, &mut mm, &mut t, &mut log).is_none());
    assert_eq!(
        log.0,
        vec![
            "cma: cma_alloc: test: alloc failed, req-size: 2048 pages, ret: -12",
            "cma: number of available pages: 1024@0+1024@3072=> 2048 free of 4096 total pages",
        ]
    );
    // nothing was tried: pfn stays -1 (0xffffffff), page NULL
    assert_eq!(t.0[1], "cma_alloc_finish: name=test pfn=0xffffffff page=00000000 count=2048 align=0 [errorno=-12]");
    assert_eq!(a.vm_cma_alloc_fail, 1);
    assert_eq!(a.get(id).alloc_pages_fail, 2048);
    // no_warn: no log
    log.0.clear();
    assert!(a.cma_alloc(Some(id), 2048, 0, true, &mut mm, &mut t, &mut log).is_none());
    assert!(log.0.is_empty());
}

#[test]
fn busy_everywhere_reports_ebusy() {
    let (mut a, id, mut mm) = one_area(2048, 0);
    let base = a.get(id).base_pfn().0;
    mm.pinned.insert(base + 10);
    mm.pinned.insert(base + 1500);
    let (mut t, mut log) = (VecTrace::default(), VecLog::default());
    assert!(a.cma_alloc(Some(id), 1024, 10, false, &mut mm, &mut t, &mut log).is_none());
    assert_eq!(log.0[0], "cma: cma_alloc: test: alloc failed, req-size: 1024 pages, ret: -16");
    assert_eq!(t.0.iter().filter(|e| e.starts_with("cma_alloc_busy_retry")).count(), 2);
    assert_eq!(a.get(id).cma_used_get(), 0);
}

#[test]
fn other_error_stops_immediately() {
    let (mut a, id, mut mm) = one_area(2048, 0);
    mm.fail_with = Some(Errno::EINTR);
    let (mut t, mut log) = (VecTrace::default(), VecLog::default());
    assert!(a.cma_alloc(Some(id), 16, 0, false, &mut mm, &mut t, &mut log).is_none());
    assert_eq!(mm.calls.len(), 1);
    assert_eq!(log.0[0], "cma: cma_alloc: test: alloc failed, req-size: 16 pages, ret: -4");
}

#[test]
fn alloc_edge_cases_count_as_failures() {
    let (mut a, id, mut mm) = one_area(1024, 0);
    let (mut t, mut log) = (VecTrace::default(), VecLog::default());
    assert!(a.cma_alloc(None, 1, 0, false, &mut mm, &mut t, &mut log).is_none());
    assert!(a.cma_alloc(Some(id), 0, 0, false, &mut mm, &mut t, &mut log).is_none());
    // larger than the area: start traced, no finish, no log
    assert!(a.cma_alloc(Some(id), 1025, 0, false, &mut mm, &mut t, &mut log).is_none());
    assert_eq!(a.vm_cma_alloc_fail, 3);
    assert_eq!(t.0, vec!["cma_alloc_start: name=test count=1025 align=0"]);
    assert!(log.0.is_empty());
}

#[test]
fn release_outside_area_is_refused() {
    let (mut a, id, mut mm) = one_area(1024, 0);
    let base = a.get(id).base_pfn().0;
    let mut t = VecTrace::default();
    assert!(!a.cma_release(Some(id), Pfn(base - 1), 1, &mut mm, &mut t));
    assert!(!a.cma_release(Some(id), Pfn(base + 1024), 1, &mut mm, &mut t));
    assert!(!a.cma_release(Some(id), Pfn(base + 1000), 100, &mut mm, &mut t));
    assert!(!a.cma_release(None, Pfn(base), 1, &mut mm, &mut t));
}

#[test]
fn order_per_bit_rounds_to_bit_granularity() {
    let (mut a, id, mut mm) = one_area(4096, 2);
    let base = a.get(id).base_pfn().0;
    let (mut t, mut log) = (VecTrace::default(), VecLog::default());
    let p = a.cma_alloc(Some(id), 5, 0, false, &mut mm, &mut t, &mut log).unwrap();
    assert_eq!(p.0, base);
    // 5 pages take 2 bits = 8 pages
    assert_eq!(a.get(id).cma_used_get(), 8);
    let q = a.cma_alloc(Some(id), 1, 0, false, &mut mm, &mut t, &mut log).unwrap();
    assert_eq!(q.0, base + 8);
    let mut s = String::new();
    a.get(id).debugfs_order_per_bit(&mut s).unwrap();
    assert_eq!(s, "2\n");
}

#[test]
fn debugfs_alloc_free_newest_first_and_partial() {
    let (mut a, id, mut mm) = one_area(4096, 0);
    let base = a.get(id).base_pfn().0;
    let (mut t, mut log) = (VecTrace::default(), VecLog::default());
    a.cma_debugfs_alloc(id, 10, &mut mm, &mut t, &mut log).unwrap();
    a.cma_debugfs_alloc(id, 20, &mut mm, &mut t, &mut log).unwrap();
    // free 25: the 20-page block (newest), then 5 of the 10-page block
    a.cma_debugfs_free(id, 25, &mut mm, &mut t).unwrap();
    assert_eq!(a.get(id).cma_used_get(), 5);
    assert!(mm.taken.contains(&(base + 9)) && !mm.taken.contains(&(base + 4)));
    a.cma_debugfs_free(id, 100, &mut mm, &mut t).unwrap();
    assert_eq!(a.get(id).cma_used_get(), 0);
    assert!(parse_uint_strict("5").is_some());
}

#[test]
fn inject_skip_bitmap_clear_leaves_bits_set() {
    let (mut a, id, mut mm) = one_area(1024, 0);
    let (mut t, mut log) = (VecTrace::default(), VecLog::default());
    let p = a.cma_alloc(Some(id), 8, 0, false, &mut mm, &mut t, &mut log).unwrap();
    a.inject_skip_bitmap_clear = true;
    assert!(a.cma_release(Some(id), p, 8, &mut mm, &mut t));
    // the released range's last page stays "allocated" in the bitmap
    assert_eq!(a.get(id).cma_used_get(), 1);
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    /// Reference: the lowest bit index >= start of `nbits` clear bits whose
    /// pfn is aligned to `1 << align` (any pfn when align <= opb).
    fn naive_find(bits: &[bool], start: usize, nbits: usize, base_pfn: u64, opb: u32, align: u32) -> Option<usize> {
        (start..bits.len()).find(|&b| {
            b + nbits <= bits.len()
                && bits[b..b + nbits].iter().all(|x| !x)
                && (align <= opb || (base_pfn + ((b as u64) << opb)).is_multiple_of(1u64 << align))
        })
    }

    proptest! {
        #[test]
        fn bitmap_arithmetic_matches_naive_model(
            count in 1u64..300,
            align in 0u32..10,
            base_block in 0u64..64,
            opb in 0u32..4,
            maxno in 1usize..400,
            set in proptest::collection::vec(any::<bool>(), 400),
            start in 0usize..50,
        ) {
            // base_pfn aligned to the bit granularity, as pageblock alignment guarantees
            let base_pfn = 0x60000 + (base_block << opb) * 3;
            let cma = Cma { base_pfn, count: (maxno as u64) << opb, order_per_bit: opb, ..Cma::empty() };
            let mask = cma.cma_bitmap_aligned_mask(align);
            let offset = cma.cma_bitmap_aligned_offset(align);
            let nbits = cma.cma_bitmap_pages_to_bits(count);
            prop_assert_eq!(nbits, count.div_ceil(1 << opb));
            prop_assert_eq!(mask + 1, 1u64 << align.saturating_sub(opb));
            let mut map = vec![0u32; bits_to_longs(maxno)];
            let bits: Vec<bool> = set[..maxno].to_vec();
            for (i, &b) in bits.iter().enumerate() { if b { bitmap_set(&mut map, i, 1); } }
            let got = bitmap_find_next_zero_area_off(&map, maxno, start.min(maxno), nbits as usize, mask as usize, offset as usize);
            let want = naive_find(&bits, start.min(maxno), nbits as usize, base_pfn, opb, align);
            match want {
                Some(w) => prop_assert_eq!(got, w),
                None => prop_assert!(got >= maxno || got + nbits as usize > maxno),
            }
            prop_assert_eq!(bitmap_weight(&map, maxno), bits.iter().filter(|b| **b).count());
        }

        #[test]
        fn alloc_release_match_shadow_model(
            opb in 0u32..3,
            ops in proptest::collection::vec((any::<bool>(), 1u64..200, 0u32..9, any::<u16>()), 1..60),
            pinned in proptest::collection::vec(0u32..2048, 0..6),
        ) {
            let (mut a, id, mut mm) = one_area(2048, opb);
            let base = a.get(id).base_pfn().0;
            for p in &pinned { mm.pinned.insert(base + p); }
            let (mut t, mut log) = (NoTrace, NoLog);
            // shadow: allocated bits, live allocations
            let maxno = 2048usize >> opb;
            let mut bits = vec![false; maxno];
            let mut live: Vec<(u32, u64)> = Vec::new();
            for (alloc, count, align, pick) in ops {
                if alloc || live.is_empty() {
                    let nbits = count.div_ceil(1 << opb) as usize;
                    // lowest aligned free slot whose pages avoid pinned ones
                    let want = (0..maxno).find(|&b| {
                        let pfn = base as u64 + ((b as u64) << opb);
                        b + nbits <= maxno
                            && bits[b..b + nbits].iter().all(|x| !x)
                            && (align <= opb || pfn.is_multiple_of(1u64 << align))
                            && (pfn..pfn + count).all(|p| !mm.pinned.contains(&(p as u32)))
                    });
                    let got = a.cma_alloc(Some(id), count, align, false, &mut mm, &mut t, &mut log);
                    let want_pfn = want.map(|b| base + ((b as u32) << opb));
                    prop_assert_eq!(got.map(|p| p.0), want_pfn);
                    if let Some(b) = want {
                        for x in &mut bits[b..b + nbits] { *x = true; }
                        live.push((want_pfn.unwrap(), count));
                    }
                } else {
                    let (pfn, count) = live.swap_remove(pick as usize % live.len());
                    prop_assert!(a.cma_release(Some(id), Pfn(pfn), count, &mut mm, &mut t));
                    let b = ((pfn - base) >> opb) as usize;
                    for x in &mut bits[b..b + count.div_ceil(1 << opb) as usize] { *x = false; }
                }
                let used = bits.iter().filter(|b| **b).count() as u64;
                prop_assert_eq!(a.get(id).cma_used_get(), used << opb);
                let taken: u64 = live.iter().map(|l| l.1).sum();
                prop_assert_eq!(mm.taken.len() as u64, taken);
            }
        }
    }
}

#[test]
fn injected_bitmap_leak_sets_bits_only_inside_the_area() {
    let mut mb = crate::memblock::Memblock::new();
    let _ = mb.memblock_add(PhysAddr(0x6000_0000), 0x1000_0000);
    let mut areas = CmaAreas::for_config(&crate::config::Config::default());
    let id = areas
        .cma_declare_contiguous(&mut mb, PhysAddr(0x6400_0000), 4 << 20, PhysAddr(0), 0, 0, true, Some("t"), PhysAddr(0x7000_0000), &mut NoLog)
        .unwrap();
    let words = areas.bitmap_words(id);
    let mut store = vec![0u32; words];
    let bm: &'static mut [u32] = Box::leak(store.split_off(0).into_boxed_slice());
    struct A;
    impl CmaActivate for A {
        fn pfn_range_in_one_zone(&self, _: Pfn, _: Pfn) -> bool {
            true
        }
        fn init_cma_reserved_pageblock(&mut self, _: Pfn) {}
        fn free_reserved_page(&mut self, _: Pfn) {}
    }
    assert!(areas.cma_activate_area(id, Some(bm), &mut A, &mut NoLog));
    let base = areas.get(id).base_pfn();
    areas.get_mut(id).cma_inject_leak_bitmap(Pfn(base.0 + 10), 2);
    assert_eq!(areas.get(id).cma_used_get(), 2);
    let n = areas.get(id).count() as u32;
    areas.get_mut(id).cma_inject_leak_bitmap(Pfn(base.0 + n - 1), 5); // past the end: ignored
    assert_eq!(areas.get(id).cma_used_get(), 2);
}

#[test]
fn errno_messages_are_the_shells() {
    assert_eq!(Errno::ENOMEM.strerror(), Some("Cannot allocate memory"));
    assert_eq!(Errno::EBUSY.strerror(), Some("Device or resource busy"));
    assert_eq!(Errno::EINVAL.strerror(), Some("Invalid argument"));
    assert_eq!(Errno(-99).strerror(), None);
}
