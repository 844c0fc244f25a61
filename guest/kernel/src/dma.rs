//! Migration hooks, the CMA allocation path of the kernel and the DMA API:
//! `MigrateEnv` over our page tables, `cma_alloc` through
//! `alloc_contig_range` (`CmaContig`), `dma_alloc_coherent` /
//! `dma_free_coherent`, the boot-time atomic pool, debugfs `alloc`/`free`,
//! and the seed article's `cma_test` misc device.
use crate::arch::{self, phys_to_virt};
use crate::cma::{areas, KLog, KTrace};
use crate::{mm, pr_info, println, rmapk, vm};
use cmaemu_abi::page::{Pfn, PG_LRU};
use cmaemu_mm::cma::CmaId;
use cmaemu_mm::contig::CmaContig;
use cmaemu_mm::contiguous::{self, AtomicPool};
use cmaemu_mm::migrate::{MigrateEnv, MigrateFaults, MigratePagesEvent, Migrator, PteError};
use core::fmt;
use core::sync::atomic::{AtomicU32, Ordering};

/// The kernel's page-table, TLB and copy hooks for migration.
pub struct KEnv;

/// The page being migrated: its old and new frame and the (asid, VA)s
/// unmapped (a shared page is mapped by several tasks).
struct Pending {
    old: u32,
    new: u32,
    maps: [(u16, u32); 8],
    n: usize,
}
static mut PENDING: Option<Pending> = None;

fn pending() -> &'static mut Option<Pending> {
    // SAFETY: single CPU; migration runs in thread context only.
    unsafe { &mut *core::ptr::addr_of_mut!(PENDING) }
}

impl KEnv {
    /// The previous page's migration is complete: tell the host (its
    /// checkers compare contents, PTEs and cached translations now).
    pub fn flush_pending() {
        if KEnv::flush_pending_quiet() {
            crate::hostif::doorbell();
        }
    }

    /// As [`KEnv::flush_pending`], for a caller that rings the doorbell
    /// itself right after (nothing the checks read changes in between), so
    /// that a migrated page costs the host one stop, not two. Returns
    /// whether records were pushed.
    pub fn flush_pending_quiet() -> bool {
        let Some(p) = pending().take() else { return false };
        let ts = crate::hostif::now();
        // one record group per address space, in the order first unmapped
        let maps = &p.maps[..p.n];
        for (i, &(asid, _)) in maps.iter().enumerate() {
            if maps[..i].iter().any(|m| m.0 == asid) {
                continue;
            }
            let mut vas = [0u32; 8];
            let mut k = 0;
            for m in maps.iter().filter(|m| m.0 == asid) {
                vas[k] = m.1;
                k += 1;
            }
            cmaemu_abi::trace::TraceRecord::migrate_page_records(ts, p.old, p.new, asid as u32, &vas[..k], |r| crate::hostif::push(&r));
        }
        true
    }
}

fn task_of(asid: u16) -> Option<&'static mut vm::Task> {
    vm::task((asid as usize).checked_sub(1)?)
}

impl MigrateEnv for KEnv {
    fn contig_phase(&mut self, phase: u8) {
        crate::hostif::push(&cmaemu_abi::trace::TraceRecord::cma_phase(crate::hostif::now(), phase));
    }
    fn clear_pte(&mut self, asid: u16, va: u32) -> Result<Pfn, PteError> {
        let t = task_of(asid).ok_or(PteError::NoAsid(asid))?;
        let old = vm::clear_pte(t, va).ok_or(PteError::NotPresent(asid, va))?;
        let same = matches!(pending(), Some(p) if p.old == old.0);
        if !same {
            // the previous page's records go with this page's doorbell
            KEnv::flush_pending_quiet();
            *pending() = Some(Pending { old: old.0, new: 0, maps: [(0, 0); 8], n: 0 });
            // the host captures the old frame now, before anything moves
            crate::hostif::push(&cmaemu_abi::trace::TraceRecord::migrate_page_begin(crate::hostif::now(), old.0, 0, Some((asid as u32, va))));
            crate::hostif::doorbell();
        }
        if let Some(p) = pending() {
            if p.n < p.maps.len() {
                p.maps[p.n] = (asid, va);
                p.n += 1;
            }
        }
        Ok(old)
    }
    fn set_pte(&mut self, asid: u16, va: u32, pfn: Pfn) {
        if let Some(t) = task_of(asid) {
            vm::set_pte(t, va, pfn);
        }
        if let Some(p) = pending() {
            p.new = pfn.0;
        }
    }
    fn flush_tlb_page(&mut self, asid: u16, va: u32) {
        // flush_tlb_page: TLBIMVA (no ASIDs are in use; see vm.rs)
        arch::tlb_flush_va(va);
        crate::hostif::push(&cmaemu_abi::trace::TraceRecord::tlb_flush(crate::hostif::now(), 1, asid as u32, va));
    }
    fn copy_highpage(&mut self, from: Pfn, to: Pfn) {
        if let Some(p) = pending() {
            if p.old == from.0 {
                p.new = to.0;
            }
        }
        // All RAM is in the kernel linear map (kmap_atomic is the identity).
        // SAFETY: both frames are RAM in the linear map; `to` was just
        // allocated and `from` is isolated by migration: no overlap.
        unsafe {
            core::ptr::copy_nonoverlapping(
                phys_to_virt(from.0 << 12) as *const u8,
                phys_to_virt(to.0 << 12) as *mut u8,
                4096,
            )
        };
    }
    fn trace_mm_migrate_pages(&mut self, ev: &MigratePagesEvent) {
        KEnv::flush_pending();
        let mode = ev.mode as u8;
        let ts = crate::hostif::now();
        let rec = cmaemu_abi::trace::TraceRecord::mm_migrate_pages(
            ts,
            ev.succeeded as u32,
            ev.failed as u32,
            0,
            0,
            0,
            mode,
            cmaemu_abi::trace::MR_CONTIG_RANGE,
        );
        crate::hostif::push(&rec);
        crate::trace::event("mm_migrate_pages", ts, &|w| {
            use core::fmt::Write;
            write!(w, "{}", ev)
        });
    }
    fn fault_fired(&mut self, name: &'static str, pfn: Pfn, arg: u32) {
        crate::hostif::fired_name(name, pfn.0, arg);
    }
    fn printk(&mut self, args: fmt::Arguments<'_>) {
        crate::printk::printk(args);
    }
    fn injected(&mut self, fault: MigrateFaults, pfn: Pfn, arg: u32) {
        if fault.contains(MigrateFaults::SKIP_LRU_DRAIN) {
            crate::hostif::fired(cmaemu_abi::trace::INJECT_SKIP_LRU_DRAIN, pfn.0, arg);
        }
    }
}

/// Migration fault injections from `cmaemu.inject=` (the names migrate.rs
/// knows; others belong to other subsystems).
pub fn migrate_faults() -> MigrateFaults {
    let mut f = MigrateFaults::NONE;
    if let Some(cfg) = mm::config() {
        for i in cfg.inject.iter() {
            if let Some(x) = MigrateFaults::from_name(i.name()) {
                f = f.with(x);
            }
        }
    }
    f
}

/// Run `f` with a `ContigRange` (alloc_contig_range with migration) for
/// CMA area `area`.
fn with_contig<R>(area: u32, f: impl FnOnce(&mut CmaContig<'_, '_, '_, KEnv>) -> R) -> Option<R> {
    let pa = mm::page_alloc()?;
    let rmap = rmapk::rmap()?;
    let mut env = KEnv;
    let mut m = Migrator::new(pa, rmap, &mut env);
    m.faults = migrate_faults();
    let mut cc = CmaContig::new(m, area);
    Some(f(&mut cc))
}

/// `arm_dma_alloc` → `__alloc_from_contiguous`: `size` bytes from the
/// device's area (or the default one); returns the first frame.
pub fn dma_alloc_coherent(dev: u32, dev_area: Option<CmaId>, size: u64) -> Option<Pfn> {
    let areas = areas()?;
    let count = size.div_ceil(4096);
    let order = contiguous::get_order(size);
    let id = contiguous::dev_get_cma_area(areas, dev_area)?;
    crate::hostif::begin();
    let r = with_contig(id.0 as u32, |cc| {
        contiguous::dma_alloc_from_contiguous(areas, dev_area, count, order, false, cc, &mut KTrace, &mut KLog)
    })
    .flatten();
    let (pfn, err) = match r {
        Some(p) => (p.0 as u64, 0),
        None => (0, -12),
    };
    let rec = cmaemu_abi::trace::TraceRecord::dma_alloc(crate::hostif::now(), dev, pfn, count as u32, order, err, id.0 as u8);
    crate::hostif::push(&rec);
    crate::hostif::end();
    r
}

/// `dma_free_coherent` → `dma_release_from_contiguous`.
pub fn dma_free_coherent(dev: u32, dev_area: Option<CmaId>, pfn: Pfn, size: u64) -> bool {
    let Some(areas) = areas() else { return false };
    let count = size.div_ceil(4096);
    let id = contiguous::dev_get_cma_area(areas, dev_area).map(|i| i.0 as u32).unwrap_or(0);
    crate::hostif::begin();
    crate::hostif::push(&cmaemu_abi::trace::TraceRecord::dma_free(crate::hostif::now(), dev, pfn.0 as u64, count as u32));
    let r = with_contig(id, |cc| contiguous::dma_release_from_contiguous(areas, dev_area, pfn, count, cc, &mut KTrace)).unwrap_or(false);
    crate::hostif::end();
    r
}

/// ARM `atomic_pool_init` (postcore_initcall).
pub fn atomic_pool_init() {
    let (Some(areas), Some(cfg)) = (areas(), mm::config()) else { return };
    let size = cfg.coherent_pool;
    let id = areas.dma_contiguous_default_area.map(|i| i.0 as u32).unwrap_or(0);
    let r = with_contig(id, |cc| contiguous::atomic_pool_init(areas, size, cc, &mut KTrace, &mut KLog));
    if let Some(AtomicPool::UseBuddy { size }) = r {
        let order = contiguous::get_order(size);
        let ok = mm::page_alloc().map(|pa| pa.alloc_pages(cmaemu_mm::gfp::GFP_KERNEL, order, 0).is_ok()).unwrap_or(false);
        if ok {
            pr_info!("DMA: preallocated {} KiB pool for atomic coherent allocations", size / 1024);
        } else {
            pr_info!("DMA: failed to allocate {} KiB pool for atomic coherent allocation", size / 1024);
        }
    }
}

/// `echo N > /sys/kernel/debug/cma/<name>/alloc` and `…/free`.
pub fn debugfs_write(path: &str, val: &str) -> Option<bool> {
    let rest = path.strip_prefix("/sys/kernel/debug/cma/")?;
    let (name, file) = rest.rsplit_once('/')?;
    let areas = areas()?;
    let id = areas.find_by_name(name)?;
    let Ok(n) = val.parse::<u64>() else {
        println!("sh: write error: Invalid argument");
        return Some(true);
    };
    let r = match file {
        "alloc" => with_contig(id.0 as u32, |cc| areas.cma_debugfs_alloc(id, n, cc, &mut KTrace, &mut KLog))?,
        "free" => with_contig(id.0 as u32, |cc| areas.cma_debugfs_free(id, n, cc, &mut KTrace))?,
        _ => return None,
    };
    if let Err(e) = r {
        match e.strerror() {
            Some(m) => println!("sh: write error: {}", m),
            None => println!("sh: write error: {}", e),
        }
    }
    Some(true)
}

/// A freshly mapped anonymous page goes to the LRU through the CPU's
/// LRU add batch (`folio_add_lru_vma` → `folio_add_lru`): it becomes
/// `PageLRU`, hence migratable, when the batch moves.
pub fn lru_cache_add(pfn: Pfn) {
    if let Some(pa) = mm::page_alloc() {
        pa.folio_add_lru(pfn);
    }
}
/// Take a page off the LRU before freeing it (`release_pages`).
pub fn lru_del(pfn: Pfn) {
    if let Some(p) = mm::page_alloc().and_then(|pa| pa.mem.page_mut(pfn)) {
        p.flags &= !PG_LRU;
    }
}

/// The seed article's `cma_test` misc device: each write allocates the
/// next free slot i (i = 0..9) of (i + 1) MiB with dma_alloc_coherent and
/// touches every page; each read frees the lowest allocated slot.
pub mod cma_test {
    use super::*;
    const CMA_NUM: usize = 10;
    static PHYS: [AtomicU32; CMA_NUM] = [const { AtomicU32::new(0) }; CMA_NUM];

    pub fn init() {
        pr_info!("misc cma_test: registered.");
    }

    pub fn write() {
        for (i, slot) in PHYS.iter().enumerate() {
            if slot.load(Ordering::Relaxed) != 0 {
                continue;
            }
            let size = (i as u64 + 1) << 20;
            match dma_alloc_coherent(cmaemu_abi::desc::DMA_DEV_CMA_TEST, None, size) {
                Some(pfn) => {
                    let pa = pfn.0 << 12;
                    let va = phys_to_virt(pa);
                    for off in (0..size as u32).step_by(4096) {
                        // SAFETY: the frames were just allocated to us and
                        // are in the linear map.
                        unsafe { core::ptr::write_volatile((va + off) as *mut u32, 0) };
                    }
                    slot.store(pa, Ordering::Relaxed);
                    pr_info!("misc cma_test: alloc virt: {:#010x} phys: {:#010x}", va, pa);
                }
                None => pr_info!("misc cma_test: no mem in CMA area"),
            }
            return;
        }
    }

    pub fn read() {
        for (i, slot) in PHYS.iter().enumerate() {
            let pa = slot.load(Ordering::Relaxed);
            if pa == 0 {
                continue;
            }
            let size = (i as u64 + 1) << 20;
            dma_free_coherent(cmaemu_abi::desc::DMA_DEV_CMA_TEST, None, Pfn(pa >> 12), size);
            pr_info!("misc cma_test: free virt: {:#010x} phys: {:#010x}", phys_to_virt(pa), pa);
            slot.store(0, Ordering::Relaxed);
            return;
        }
    }
}

/// Compaction of a few pages (`isolate_migratepages_block` +
/// `migrate_pages`, `MR_COMPACTION`): move each movable, unpinned page of
/// `pfns` to a new frame (pinned pages are not isolated). Returns how many
/// moved.
pub fn compact_pages(pfns: &[Pfn]) -> u32 {
    use cmaemu_mm::migrate::{MigrateList, MigrateMode, MigrateReason, MigrateStats};
    let (Some(pa), Some(rmap)) = (mm::page_alloc(), rmapk::rmap()) else { return 0 };
    crate::hostif::begin();
    let mut env = KEnv;
    let mut m = Migrator::new(pa, rmap, &mut env);
    m.faults = migrate_faults();
    let mut list = MigrateList::new();
    for p in pfns {
        m.isolate_migratepages_block(&mut list, *p, Pfn(p.0 + 1));
    }
    let mut stats = MigrateStats::default();
    let _ = m.migrate_pages(&mut list, cmaemu_mm::contig::ALLOC_CONTIG_MIGRATE_GFP, MigrateMode::Sync, MigrateReason::Compaction, &mut stats);
    m.putback_movable_pages(&mut list);
    crate::hostif::end();
    stats.nr_succeeded
}

/// `stress`: allocate (or release) `pages` pages in the default area, as
/// a driver would, so that movable pages in the way are migrated.
pub fn stress_cma(alloc: bool, pages: u32) {
    let Some(areas) = areas() else { return };
    let Some(id) = areas.dma_contiguous_default_area else { return };
    let _ = with_contig(id.0 as u32, |cc| {
        if alloc {
            let _ = areas.cma_debugfs_alloc(id, pages as u64, cc, &mut KTrace, &mut crate::cma::KLog);
        } else {
            let _ = areas.cma_debugfs_free(id, pages as u64, cc, &mut KTrace);
        }
    });
}

/// `memcpy MiB`: copy MiB from one set of 1 MiB kernel blocks to another
/// through the linear map (the baseline `cmaemu bench cma` compares
/// migration against: moving the same bytes with no mm work at all).
pub fn memcpy_bench(mib: u32) {
    let Some(pa) = mm::page_alloc() else { return };
    let n = mib.min(128) as usize;
    let mut src = [0u32; 128];
    let mut dst = [0u32; 128];
    let mut got = 0;
    for i in 0..n {
        let a = pa.alloc_pages(cmaemu_mm::gfp::GFP_KERNEL, 8, 0);
        let b = pa.alloc_pages(cmaemu_mm::gfp::GFP_KERNEL, 8, 0);
        match (a, b) {
            (Ok(a), Ok(b)) => {
                src[i] = a.0;
                dst[i] = b.0;
                got += 1;
            }
            (a, b) => {
                for p in [a, b].into_iter().flatten() {
                    let _ = pa.__free_pages(p, 8);
                }
                break;
            }
        }
    }
    let start = crate::time::sched_clock();
    for i in 0..got {
        // SAFETY: the blocks were just allocated to us (lowmem, 1 MiB each).
        unsafe {
            core::ptr::copy_nonoverlapping(phys_to_virt(src[i] << 12) as *const u8, phys_to_virt(dst[i] << 12) as *mut u8, 1 << 20)
        };
    }
    let ns = crate::time::sched_clock() - start;
    for i in 0..got {
        let _ = pa.__free_pages(Pfn(src[i]), 8);
        let _ = pa.__free_pages(Pfn(dst[i]), 8);
    }
    println!("memcpy: {} MiB in {} us (virtual)", got, ns / 1000);
}
