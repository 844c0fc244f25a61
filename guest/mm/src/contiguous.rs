//! The DMA side of CMA, following Linux 6.1 `kernel/dma/contiguous.c`
//! (default area sizing and reservation, `dma_alloc_from_contiguous()` and
//! friends) and the ARM atomic pool of `arch/arm/mm/dma-mapping.c`.
//!
//! Boot order on ARM (`arm_memblock_init()`): kernel image, initrd and page
//! tables reserved → `early_init_fdt_scan_reserved_mem()` (DT areas,
//! [`crate::rmem`]) → `dma_contiguous_reserve(arm_dma_limit)` (this
//! module). A `linux,cma-default` DT area therefore exists before
//! `dma_contiguous_reserve()` runs, which then does nothing — unless `cma=`
//! was given, in which case `rmem_cma_setup()` bypassed the DT node (6.1
//! priority: cmdline > DT default > build-time size).

use crate::cma::{CmaAreas, CmaError, CmaId, CmaTrace, ContigRange, Level, Log};
use crate::cmdline::CmaCmdline;
use crate::config::{CmaSizeSel, Config, CONFIG_CMA_ALIGNMENT};
use crate::memblock::{Memblock, PhysAddr, Pfn, PAGE_SHIFT, PAGE_SIZE};

const SZ_1M: u64 = 1 << 20;

/// `get_order()`: the order of the smallest power-of-two page count
/// holding `size` bytes.
pub fn get_order(size: u64) -> u32 {
    if size <= PAGE_SIZE {
        return 0;
    }
    let pages = (size - 1) >> PAGE_SHIFT;
    64 - pages.leading_zeros()
}

/// `cma_early_percent_memory()`: `CONFIG_CMA_SIZE_PERCENTAGE` of memblock
/// memory, in bytes, rounded down to pages.
pub fn cma_early_percent_memory(mb: &Memblock, percentage: u64) -> u64 {
    let total_pages = mb.memblock_phys_mem_size() >> PAGE_SHIFT;
    (total_pages * percentage / 100) << PAGE_SHIFT
}

/// The size `dma_contiguous_reserve()` picks without `cma=`, per
/// `CONFIG_CMA_SIZE_SEL_*`.
pub fn cma_selected_size(cfg: &Config, mb: &Memblock) -> u64 {
    let size_bytes = cfg.cma_size_mbytes * SZ_1M;
    let pct = || cma_early_percent_memory(mb, cfg.cma_size_percentage);
    match cfg.cma_size_sel {
        CmaSizeSel::Mbytes => size_bytes,
        CmaSizeSel::Percentage => pct(),
        CmaSizeSel::Min => size_bytes.min(pct()),
        CmaSizeSel::Max => size_bytes.max(pct()),
    }
}

/// `dma_contiguous_reserve_area()`: declare an area named `reserved`.
/// Linux then calls `dma_contiguous_early_fixup()` (ARM: remember it for
/// `dma_contiguous_remap()`); the kernel does that from the area table.
#[allow(clippy::too_many_arguments)]
pub fn dma_contiguous_reserve_area(
    areas: &mut CmaAreas<'_>,
    mb: &mut Memblock,
    size: u64,
    base: PhysAddr,
    limit: PhysAddr,
    fixed: bool,
    highmem_start: PhysAddr,
    log: &mut dyn Log,
) -> Result<CmaId, CmaError> {
    areas.cma_declare_contiguous(mb, base, size, limit, 0, 0, fixed, Some("reserved"), highmem_start, log)
}

/// `dma_contiguous_reserve(limit)`: reserve the default (global) area from
/// `cma=` or the build-time size, unless a DT `linux,cma-default` area is
/// already the default. `limit` is `arm_dma_limit` (0xffffffff without a
/// DMA zone). Returns the result of the reservation, `None` when nothing
/// was attempted.
pub fn dma_contiguous_reserve(
    areas: &mut CmaAreas<'_>,
    mb: &mut Memblock,
    cfg: &Config,
    limit: PhysAddr,
    highmem_start: PhysAddr,
    log: &mut dyn Log,
) -> Option<Result<CmaId, CmaError>> {
    let mut selected_base = 0u64;
    let mut selected_limit = limit.0;
    let mut fixed = false;
    let selected_size = match cfg.cma {
        Some(CmaCmdline { size, base, limit: limit_cmdline }) => {
            selected_base = base;
            // min_not_zero(limit_cmdline, limit)
            selected_limit = match (limit_cmdline, limit.0) {
                (0, l) => l,
                (c, 0) => c,
                (c, l) => c.min(l),
            };
            if base.wrapping_add(size) == limit_cmdline {
                fixed = true;
            }
            size
        }
        None => cma_selected_size(cfg, mb),
    };
    if selected_size != 0 && areas.dma_contiguous_default_area.is_none() {
        let r = dma_contiguous_reserve_area(
            areas,
            mb,
            selected_size,
            PhysAddr(selected_base),
            PhysAddr(selected_limit),
            fixed,
            highmem_start,
            log,
        );
        if let Ok(id) = r {
            areas.dma_contiguous_default_area = Some(id);
        }
        return Some(r);
    }
    None
}

/// `dev_get_cma_area()`: the device's own area, else the default one.
pub fn dev_get_cma_area(areas: &CmaAreas<'_>, dev_cma_area: Option<CmaId>) -> Option<CmaId> {
    dev_cma_area.or(areas.dma_contiguous_default_area)
}

/// `dma_alloc_from_contiguous()`: `cma_alloc()` from the device's area (or
/// the default), alignment capped at `CONFIG_CMA_ALIGNMENT`.
#[allow(clippy::too_many_arguments)]
pub fn dma_alloc_from_contiguous(
    areas: &mut CmaAreas<'_>,
    dev_cma_area: Option<CmaId>,
    count: u64,
    align: u32,
    no_warn: bool,
    mm: &mut dyn ContigRange,
    trace: &mut dyn CmaTrace,
    log: &mut dyn Log,
) -> Option<Pfn> {
    let align = align.min(CONFIG_CMA_ALIGNMENT);
    let cma = dev_get_cma_area(areas, dev_cma_area);
    areas.cma_alloc(cma, count, align, no_warn, mm, trace, log)
}

/// `dma_release_from_contiguous()`.
pub fn dma_release_from_contiguous(
    areas: &mut CmaAreas<'_>,
    dev_cma_area: Option<CmaId>,
    pfn: Pfn,
    count: u64,
    mm: &mut dyn ContigRange,
    trace: &mut dyn CmaTrace,
) -> bool {
    let cma = dev_get_cma_area(areas, dev_cma_area);
    areas.cma_release(cma, pfn, count, mm, trace)
}

/// `dma_alloc_contiguous()` (dma-direct): `None` when the context cannot
/// sleep, or for one page or less without a device area (the caller then
/// uses the buddy). Alignment `min(get_order(size), CONFIG_CMA_ALIGNMENT)`.
#[allow(clippy::too_many_arguments)]
pub fn dma_alloc_contiguous(
    areas: &mut CmaAreas<'_>,
    dev_cma_area: Option<CmaId>,
    size: u64,
    can_block: bool,
    no_warn: bool,
    mm: &mut dyn ContigRange,
    trace: &mut dyn CmaTrace,
    log: &mut dyn Log,
) -> Option<Pfn> {
    if !can_block {
        return None;
    }
    let cma = match dev_cma_area {
        Some(c) => c,
        None => {
            if size <= PAGE_SIZE {
                return None;
            }
            areas.dma_contiguous_default_area?
        }
    };
    let align = get_order(size).min(CONFIG_CMA_ALIGNMENT);
    areas.cma_alloc(Some(cma), size >> PAGE_SHIFT, align, no_warn, mm, trace, log)
}

/// `dma_free_contiguous()`: true when a CMA area took the pages back; false
/// means "not CMA memory: `__free_pages(page, get_order(size))`".
pub fn dma_free_contiguous(
    areas: &mut CmaAreas<'_>,
    dev_cma_area: Option<CmaId>,
    pfn: Pfn,
    size: u64,
    mm: &mut dyn ContigRange,
    trace: &mut dyn CmaTrace,
) -> bool {
    let count = size.div_ceil(PAGE_SIZE);
    match dev_cma_area {
        Some(c) => areas.cma_release(Some(c), pfn, count, mm, trace),
        None => {
            let d = areas.dma_contiguous_default_area;
            areas.cma_release(d, pfn, count, mm, trace)
        }
    }
}

/// Where `atomic_pool_init()` got its pool from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AtomicPool {
    /// From the default CMA area (`__alloc_from_contiguous()`).
    Cma { pfn: Pfn, size: u64 },
    /// No default area: the kernel must take it from the buddy
    /// (`__alloc_remap_buffer()`) and log the result itself.
    UseBuddy { size: u64 },
    /// The CMA allocation failed; `DMA: failed to allocate ...` was logged.
    Failed { size: u64 },
}

/// ARM `atomic_pool_init()` (postcore_initcall): the atomic coherent pool
/// (`coherent_pool=`, 256 KiB by default) from the default CMA area:
/// `dma_alloc_from_contiguous(NULL, size >> PAGE_SHIFT, get_order(size))`,
/// i.e. `cma_alloc count=64 align=6`. Logs `DMA: preallocated 256 KiB pool
/// for atomic coherent allocations` on success.
pub fn atomic_pool_init(
    areas: &mut CmaAreas<'_>,
    atomic_pool_size: u64,
    mm: &mut dyn ContigRange,
    trace: &mut dyn CmaTrace,
    log: &mut dyn Log,
) -> AtomicPool {
    let size = atomic_pool_size;
    if dev_get_cma_area(areas, None).is_none() {
        return AtomicPool::UseBuddy { size };
    }
    let order = get_order(size);
    let count = size >> PAGE_SHIFT;
    // __alloc_from_contiguous(): GFP_KERNEL, so no_warn is false
    match dma_alloc_from_contiguous(areas, None, count, order, false, mm, trace, log) {
        Some(pfn) => {
            log.line_level(Level::Info, format_args!("DMA: preallocated {} KiB pool for atomic coherent allocations", size / 1024));
            AtomicPool::Cma { pfn, size }
        }
        None => {
            log.line_level(Level::Err, format_args!("DMA: failed to allocate {} KiB pool for atomic coherent allocation", size / 1024));
            AtomicPool::Failed { size }
        }
    }
}

#[cfg(test)]
mod tests;
