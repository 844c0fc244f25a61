//! The DMA API over CMA: `dma_alloc_coherent` / `dma_free_coherent`
//! (`alloc_contig_range` with migration, through `migrate::with_contig`),
//! the boot-time atomic pool, compaction of a few pages, and the CMA
//! allocations of the `stress` job. Each takes the mm state from its
//! caller and marks its own mm section (`hostif::begin` … `publish::end`).
use crate::cma::{KLog, KTrace};
use crate::migrate::{with_contig, with_migrator};
use crate::mm::{publish, Mm};
use crate::pr_info;
use cmaemu_abi::page::Pfn;
use cmaemu_mm::cma::CmaId;
use cmaemu_mm::contiguous::{self, AtomicPool};

/// `arm_dma_alloc` → `__dma_alloc`: `size` bytes from the device's area
/// (or the default one: `cma_allocator`, `__alloc_from_contiguous`), or,
/// when there is none (`cma=0`), from the buddy allocator
/// (`remap_allocator`); returns the first frame.
pub fn dma_alloc_coherent(mm: &mut Mm, dev: u32, dev_area: Option<CmaId>, size: u64) -> Option<Pfn> {
    let count = size.div_ceil(4096);
    let order = contiguous::get_order(size);
    let Some(id) = mm.areas.as_ref().and_then(|areas| contiguous::dev_get_cma_area(areas, dev_area)) else {
        return dma_alloc_buffer(mm, dev, count, order);
    };
    crate::hostif::begin();
    let r = with_contig(mm, id.0 as u32, |areas, cc| {
        contiguous::dma_alloc_from_contiguous(areas, dev_area, count, order, false, cc, &mut KTrace, &mut KLog)
    })
    .flatten();
    let (pfn, err) = match r {
        Some(p) => (p.0 as u64, 0),
        None => (0, -12),
    };
    let rec = cmaemu_abi::trace::TraceRecord::dma_alloc(crate::hostif::now(), dev, pfn, count as u32, order, err, id.0 as u8);
    crate::hostif::push(&rec);
    publish::end(mm);
    r
}

/// The trace record's area of a buffer from the buddy allocator.
const NO_AREA: u8 = u8::MAX;

/// `__dma_alloc_buffer` (the `remap_allocator` of a device without a CMA
/// area): `alloc_pages(GFP_KERNEL, order)`, `split_page`, and the pages
/// past `count` freed again.
fn dma_alloc_buffer(mm: &mut Mm, dev: u32, count: u64, order: u32) -> Option<Pfn> {
    let pa = mm.pa.as_mut()?;
    crate::hostif::begin();
    let owner = cmaemu_abi::page::OWNER_KIND_DEVICE | dev;
    let r = pa.alloc_pages(cmaemu_mm::gfp::GFP_KERNEL, order, owner).ok();
    if let Some(p) = r {
        let _ = pa.split_page(p, order);
        for i in count as u32..(1u32 << order) {
            let _ = pa.__free_pages(Pfn(p.0 + i), 0);
        }
    }
    let (pfn, err) = r.map(|p| (p.0 as u64, 0)).unwrap_or((0, -12));
    crate::hostif::push(&cmaemu_abi::trace::TraceRecord::dma_alloc(crate::hostif::now(), dev, pfn, count as u32, order, err, NO_AREA));
    publish::end(mm);
    r
}

/// `dma_free_coherent` → `dma_release_from_contiguous`, or for a buffer
/// of the buddy allocator (no CMA area) `__dma_free_buffer`: each page
/// freed.
pub fn dma_free_coherent(mm: &mut Mm, dev: u32, dev_area: Option<CmaId>, pfn: Pfn, size: u64) -> bool {
    let count = size.div_ceil(4096);
    let Some(areas) = mm.areas.as_ref().filter(|a| contiguous::dev_get_cma_area(a, dev_area).is_some()) else {
        let Some(pa) = mm.pa.as_mut() else { return false };
        crate::hostif::begin();
        crate::hostif::push(&cmaemu_abi::trace::TraceRecord::dma_free(crate::hostif::now(), dev, pfn.0 as u64, count as u32));
        let ok = (0..count as u32).all(|i| pa.__free_pages(Pfn(pfn.0 + i), 0).is_ok());
        publish::end(mm);
        return ok;
    };
    let id = contiguous::dev_get_cma_area(areas, dev_area).map(|i| i.0 as u32).unwrap_or(0);
    crate::hostif::begin();
    crate::hostif::push(&cmaemu_abi::trace::TraceRecord::dma_free(crate::hostif::now(), dev, pfn.0 as u64, count as u32));
    let r = with_contig(mm, id, |areas, cc| contiguous::dma_release_from_contiguous(areas, dev_area, pfn, count, cc, &mut KTrace)).unwrap_or(false);
    publish::end(mm);
    r
}

/// ARM `atomic_pool_init` (postcore_initcall).
pub fn atomic_pool_init(mm: &mut Mm) {
    let Some(areas) = mm.areas.as_ref() else { return };
    let size = mm.config.coherent_pool;
    let id = areas.dma_contiguous_default_area.map(|i| i.0 as u32).unwrap_or(0);
    let r = with_contig(mm, id, |areas, cc| contiguous::atomic_pool_init(areas, size, cc, &mut KTrace, &mut KLog));
    if let Some(AtomicPool::UseBuddy { size }) = r {
        let order = contiguous::get_order(size);
        let ok = mm.pa.as_mut().map(|pa| pa.alloc_pages(cmaemu_mm::gfp::GFP_KERNEL, order, 0).is_ok()).unwrap_or(false);
        if ok {
            pr_info!("DMA: preallocated {} KiB pool for atomic coherent allocations", size / 1024);
        } else {
            pr_info!("DMA: failed to allocate {} KiB pool for atomic coherent allocation", size / 1024);
        }
    }
}

/// Compaction of a few pages (`isolate_migratepages_block` +
/// `migrate_pages`, `MR_COMPACTION`): move each movable, unpinned page of
/// `pfns` to a new frame (pinned pages are not isolated). Returns how many
/// moved.
pub fn compact_pages(mm: &mut Mm, pfns: &[Pfn]) -> u32 {
    use cmaemu_mm::migrate::{MigrateList, MigrateMode, MigrateReason, MigrateStats};
    if mm.pa.is_none() || mm.rmap.is_none() {
        return 0;
    }
    crate::hostif::begin();
    let moved = with_migrator(mm, |m| {
        let mut list = MigrateList::new();
        for p in pfns {
            m.isolate_migratepages_block(&mut list, *p, Pfn(p.0 + 1));
        }
        let mut stats = MigrateStats::default();
        let _ = m.migrate_pages(&mut list, cmaemu_mm::contig::ALLOC_CONTIG_MIGRATE_GFP, MigrateMode::Sync, MigrateReason::Compaction, &mut stats);
        m.putback_movable_pages(&mut list);
        stats.nr_succeeded
    });
    publish::end(mm);
    moved.unwrap_or(0)
}

/// `stress`: allocate (or release) `pages` pages in the default area, as
/// a driver would, so that movable pages in the way are migrated.
pub fn stress_cma(mm: &mut Mm, alloc: bool, pages: u32) {
    let Some(id) = mm.areas.as_ref().and_then(|a| a.dma_contiguous_default_area) else { return };
    let _ = with_contig(mm, id.0 as u32, |areas, cc| {
        if alloc {
            let _ = areas.cma_debugfs_alloc(id, pages as u64, cc, &mut KTrace, &mut KLog);
        } else {
            let _ = areas.cma_debugfs_free(id, pages as u64, cc, &mut KTrace);
        }
    });
}
