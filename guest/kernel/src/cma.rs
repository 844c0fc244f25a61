//! The kernel side of CMA: reading `/reserved-memory` into `cmaemu_mm`'s
//! `RmemNode`s, the `Log` / `CmaTrace` / `CmaActivate` implementations, the
//! boot order of Linux ARM (`arm_memblock_init`: reserved memory, then
//! `dma_contiguous_reserve`; `cma_init_reserved_areas` at core_initcall).
use crate::arch::{phys_to_virt, Guarded};
use crate::dt;
use crate::mm::{self, Mm};
use crate::pr_info;
use cmaemu_abi::page::{Pfn, PhysAddr};
use cmaemu_mm::buddy::PageAlloc;
use cmaemu_mm::cma::{CmaActivate, CmaAreas, CmaId, CmaTrace, Log};
use cmaemu_mm::contiguous::dma_contiguous_reserve;
use cmaemu_mm::gfp;
use cmaemu_mm::rmem::{PropCells, ReservedMemTable, ReservedMemoryDt, RmemNode};
use core::fmt;

const MAX_NODES: usize = 32;
/// The `/reserved-memory` children as read (kept out of the boot stack).
static NODES: Guarded<[Option<RmemNode>; MAX_NODES]> = Guarded::new_with([None; MAX_NODES]);

/// printk as the `Log` of `cmaemu_mm`.
pub struct KLog;
impl Log for KLog {
    fn line(&mut self, args: fmt::Arguments<'_>) {
        crate::printk::printk(args);
    }
}

/// Tracepoints: text into the trace buffer when the `cma` events are on.
pub struct KTrace;
impl CmaTrace for KTrace {
    fn cma_alloc_start(&mut self, area: CmaId, name: &str, count: u64, align: u32) {
        let ts = crate::hostif::now();
        crate::hostif::push(&cmaemu_abi::trace::TraceRecord::cma_alloc_start(ts, area_index(area), count as u32, align));
        crate::trace::event("cma_alloc_start", ts, &|w| cmaemu_mm::cma::fmt_cma_alloc_start(w, name, count, align));
        // The host samples its counters at the start of every allocation,
        // not only once the allocation's records are drained at its end.
        crate::hostif::doorbell();
    }
    fn cma_alloc_busy_retry(&mut self, area: CmaId, name: &str, pfn: u64, page: Option<Pfn>, count: u64, align: u32) {
        let pp = page_ptr(page);
        let ts = crate::hostif::now();
        crate::hostif::push(&cmaemu_abi::trace::TraceRecord::cma_alloc_busy_retry(ts, area_index(area), pfn, pp, count as u32, align));
        crate::trace::event("cma_alloc_busy_retry", ts, &|w| cmaemu_mm::cma::fmt_cma_alloc_class(w, name, pfn, pp, count, align));
        // The host finds why the range was busy in the state of this moment.
        crate::hostif::doorbell();
    }
    fn cma_alloc_finish(&mut self, area: CmaId, name: &str, pfn: u64, page: Option<Pfn>, count: u64, align: u32, errorno: i32) {
        let pp = page_ptr(page);
        let ts = crate::hostif::now();
        crate::hostif::push(&cmaemu_abi::trace::TraceRecord::cma_alloc_finish(ts, area_index(area), pfn, pp, count as u32, align, errorno));
        crate::trace::event("cma_alloc_finish", ts, &|w| cmaemu_mm::cma::fmt_cma_alloc_class(w, name, pfn, pp, count, align));
        // ... and why it failed, before the caller changes anything.
        crate::hostif::doorbell();
    }
    fn cma_alloc_done(&mut self) {
        crate::hostif::doorbell_value(cmaemu_abi::boot::DOORBELL_CMA_ALLOC_DONE);
    }
    fn cma_release(&mut self, area: CmaId, name: &str, pfn: u64, page: Option<Pfn>, count: u64) {
        let pp = page_ptr(page);
        let ts = crate::hostif::now();
        crate::hostif::push(&cmaemu_abi::trace::TraceRecord::cma_release(ts, area_index(area), pfn, pp, count as u32));
        crate::trace::event("cma_release", ts, &|w| cmaemu_mm::cma::fmt_cma_release(w, name, pfn, pp, count));
    }
    fn fault_fired(&mut self, name: &'static str, pfn: Pfn, arg: u32) {
        crate::hostif::fired_name(name, pfn.0, arg);
    }
}

/// An area's index in trace records (the host's CMA table order).
fn area_index(area: CmaId) -> u8 {
    area.0 as u8
}

/// The `struct page *` Linux prints: the address of the page's record in
/// the page array (our `mem_map`), 0 for none.
fn page_ptr(page: Option<Pfn>) -> u32 {
    match (page, mm::MEMMAP_VA.load(core::sync::atomic::Ordering::Relaxed)) {
        (Some(p), base) if base != 0 => {
            let first = mm::MEMMAP_BASE_PFN.load(core::sync::atomic::Ordering::Relaxed);
            base.wrapping_add(p.0.wrapping_sub(first).wrapping_mul(32))
        }
        _ => 0,
    }
}

struct Activate<'a>(&'a mut PageAlloc<'static>);
impl CmaActivate for Activate<'_> {
    fn pfn_range_in_one_zone(&self, start: Pfn, end: Pfn) -> bool {
        // cma_activate_area: WARN_ON_ONCE(!pfn_valid(pfn)) → not_in_zone
        if end.0 <= start.0 || !self.0.mem.pfn_valid(start) || !self.0.mem.pfn_valid(Pfn(end.0 - 1)) {
            return false;
        }
        self.0.page_zone(start) == self.0.page_zone(Pfn(end.0 - 1))
    }
    fn init_cma_reserved_pageblock(&mut self, pfn: Pfn) {
        if let Err(e) = self.0.init_cma_reserved_pageblock(pfn) {
            pr_info!("cma: init_cma_reserved_pageblock({:#x}): {}", pfn.0, e);
        }
    }
    fn free_reserved_page(&mut self, pfn: Pfn) {
        let _ = self.0.free_reserved_page(pfn);
    }
}

fn cells_prop(node: &fdt::node::FdtNode, name: &str) -> Option<PropCells> {
    node.property(name).map(|p| PropCells::from_be_bytes(p.value))
}

/// `early_init_fdt_scan_reserved_mem` + `dma_contiguous_reserve`, as
/// `arm_memblock_init` runs them.
pub fn reserve(fdt: &fdt::Fdt, mm: &mut Mm, highmem_start: u64) {
    NODES.with(|nodes| reserve_with(fdt, mm, highmem_start, nodes));
}

fn reserve_with(fdt: &fdt::Fdt, mm: &mut Mm, highmem_start: u64, nodes: &mut [Option<RmemNode>; MAX_NODES]) {
    let (cfg, mb) = (&mm.config, &mut mm.memblock);
    let mut areas = CmaAreas::for_config(cfg);
    // the injected `leak_bitmap` lives in cma_release() itself
    areas.inject_skip_bitmap_clear = cfg.inject.contains(cmaemu_mm::config::Inject::LeakBitmap);
    let mut table = ReservedMemTable::default();
    let root = fdt.find_node("/");
    let (rac, rsc) = root.as_ref().map(dt::cells).unwrap_or((1, 1));
    let mut mem_rsv = [(0u64, 0u64); 16];
    let mut nrsv = 0;
    for r in fdt.memory_reservations() {
        if nrsv < mem_rsv.len() {
            mem_rsv[nrsv] = (r.address() as u64, r.size() as u64);
            nrsv += 1;
        }
    }
    let mut n = 0;
    let mut rm_dt = None;
    if let Some(rm) = fdt.find_node("/reserved-memory") {
        for child in rm.children() {
            if n == MAX_NODES {
                pr_info!("OF: reserved mem: more than {} nodes, the rest ignored", MAX_NODES);
                break;
            }
            let mut node = RmemNode::new(child.name);
            if let Some(p) = child.property("compatible") {
                if let Ok(s) = core::str::from_utf8(p.value) {
                    node = node.compatible(s.trim_end_matches('\0'));
                }
            }
            node.available = dt::is_available(&child);
            node.reg = cells_prop(&child, "reg");
            node.size = cells_prop(&child, "size");
            node.alignment = cells_prop(&child, "alignment");
            node.alloc_ranges = cells_prop(&child, "alloc-ranges");
            node.reusable = child.property("reusable").is_some();
            node.no_map = child.property("no-map").is_some();
            node.cma_default = child.property("linux,cma-default").is_some();
            node.dma_default = child.property("linux,dma-default").is_some();
            node.phandle = dt::prop_u64(&child, "phandle").or_else(|| dt::prop_u64(&child, "linux,phandle")).map(|v| v as u32);
            nodes[n] = Some(node);
            n += 1;
        }
        rm_dt = Some(rm);
    }
    let mut flat = [RmemNode::new(""); MAX_NODES];
    for (i, nd) in nodes[..n].iter().enumerate() {
        flat[i] = nd.unwrap_or(RmemNode::new(""));
    }
    let dt_rm = rm_dt.map(|rm| ReservedMemoryDt {
        addr_cells: dt::prop_u64(&rm, "#address-cells").map(|v| v as u32),
        size_cells: dt::prop_u64(&rm, "#size-cells").map(|v| v as u32),
        has_ranges: rm.property("ranges").is_some(),
        children: &flat[..n],
    });
    let mut log = KLog;
    if let Err(e) = table.early_init_fdt_scan_reserved_mem(&mem_rsv[..nrsv], dt_rm.as_ref(), (rac as u32, rsc as u32), mb, &mut areas, cfg, &mut log) {
        pr_info!("OF: fdt: Reserved memory: {}", e);
    }
    let _ = dma_contiguous_reserve(&mut areas, mb, cfg, PhysAddr(0xffff_ffff), PhysAddr(highmem_start), &mut log);
    mm.areas = Some(areas);
    mm.rmem = Some(table);
}

/// `cma_init_reserved_areas` (core_initcall): bitmaps from the page
/// allocator (Linux: `bitmap_zalloc`), pageblocks to MIGRATE_CMA.
pub fn init_reserved_areas(mm: &mut Mm) {
    let (Some(areas), Some(pa)) = (&mut mm.areas, &mut mm.pa) else { return };
    let mut log = KLog;
    // Bitmaps: allocate each from the buddy, zeroed, mapped linearly.
    let mut bitmaps: [Option<&'static mut [u32]>; 8] = Default::default();
    for (id, _) in areas.iter() {
        let words = areas.bitmap_words(id);
        let bytes = (words * 4).max(4) as u64;
        let order = cmaemu_mm::contiguous::get_order(bytes);
        if let Ok(pfn) = pa.alloc_pages(gfp::GFP_KERNEL, order, 0) {
            let va = phys_to_virt(pfn.0 << 12);
            // SAFETY: freshly allocated lowmem pages, mapped linearly, owned
            // by the CMA area for the kernel's lifetime.
            let s = unsafe {
                core::ptr::write_bytes(va as *mut u8, 0, bytes as usize);
                core::slice::from_raw_parts_mut(va as *mut u32, words)
            };
            if id.0 < bitmaps.len() {
                bitmaps[id.0] = Some(s);
            }
        }
    }
    let mut act = Activate(pa);
    areas.cma_init_reserved_areas(&mut |id: CmaId, _words| bitmaps.get_mut(id.0).and_then(|b| b.take()), &mut act, &mut log);
    // Linux has one `totalcma_pages` (mm/cma.c), which cma_activate_area
    // lowers for an area it cannot activate; meminfo's CmaTotal reads it.
    // The allocator keeps its own copy for the views: take it again.
    pa.totalcma_pages = areas.totalcma_pages;
}
