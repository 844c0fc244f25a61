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

/// `arm_dma_alloc` → `__alloc_from_contiguous`: `size` bytes from the
/// device's area (or the default one); returns the first frame.
pub fn dma_alloc_coherent(mm: &mut Mm, dev: u32, dev_area: Option<CmaId>, size: u64) -> Option<Pfn> {
    let areas = mm.areas.as_ref()?;
    let count = size.div_ceil(4096);
    let order = contiguous::get_order(size);
    let id = contiguous::dev_get_cma_area(areas, dev_area)?;
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

/// `dma_free_coherent` → `dma_release_from_contiguous`.
pub fn dma_free_coherent(mm: &mut Mm, dev: u32, dev_area: Option<CmaId>, pfn: Pfn, size: u64) -> bool {
    let Some(areas) = mm.areas.as_ref() else { return false };
    let count = size.div_ceil(4096);
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
