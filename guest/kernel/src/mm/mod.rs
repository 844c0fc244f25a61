//! The kernel's memory management state and its one owner: the boot-time
//! knobs, memblock, the zones, the page array and the buddy allocator from
//! `cmaemu_mm`, the CMA areas and reserved-memory table, the reverse map,
//! the tasks' address spaces and the migration in progress — all in one
//! [`Mm`], reached only through [`with_mm`], which lends it as `&mut` to
//! one caller at a time and panics on re-entry. Everything below the
//! caller gets it (or the fields it needs) as `&mut` arguments.
//!
//! Set up from memblock as Linux's `mm_init` → `mem_init` →
//! `memblock_free_all` does.
pub mod pending;
pub mod publish;
pub mod rmap;
pub mod task;

use crate::arch::{phys_to_virt, Guarded};
use crate::{paging, pr_info};
use cmaemu_abi::page::{PageRecord, Pfn, PhysAddr, PG_LRU};
use cmaemu_mm::buddy::PageAlloc;
use cmaemu_mm::cma::CmaAreas;
use cmaemu_mm::config::{self, Config};
use cmaemu_mm::memblock::Memblock;
use cmaemu_mm::page::MemMap;
use cmaemu_mm::profile::{MmProfile, VmSplit};
use cmaemu_mm::rmem::ReservedMemTable;
use cmaemu_mm::zone::{zone_sizes_init, ZoneLayout};

/// All mm state of the kernel (one owner: [`with_mm`]).
pub struct Mm {
    /// The knobs of the command line (`cmaemu.*`, `cma=`, ...).
    pub config: Config,
    pub profile: MmProfile,
    /// Kept after boot (ARCH_KEEP_MEMBLOCK) for debugfs and /proc/iomem.
    pub memblock: Memblock,
    pub layout: Option<ZoneLayout>,
    /// Pages of RAM memblock knows (`get_num_physpages`).
    pub physpages: u64,
    /// The page array and the buddy allocator (from `mm_init`).
    pub pa: Option<PageAlloc<'static>>,
    /// The CMA areas (from `cma::reserve`).
    pub areas: Option<CmaAreas<'static>>,
    /// `/reserved-memory` as `of_reserved_mem_device_init` reads it.
    pub rmem: Option<ReservedMemTable>,
    pub rmap: Option<cmaemu_mm::rmap::Rmap<'static>>,
    /// The tasks' address spaces.
    pub tasks: task::Tasks,
    /// The page being migrated (its records go to the host when done).
    pub pending: Option<pending::Pending>,
}

static MM: Guarded<Mm> = Guarded::new();

/// Run `f` on the kernel's mm state; `None` before `parse_params` set it up.
/// Panics if called again while `f` runs (one `&mut Mm` at a time).
pub fn with_mm<R>(f: impl FnOnce(&mut Mm) -> R) -> Option<R> {
    MM.with(f)
}

/// VA of the page array and its first pfn (for `struct page *` values).
pub static MEMMAP_VA: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);
pub static MEMMAP_BASE_PFN: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

/// Parse the knobs (`parse_early_param` for ours and `cma=`) and set up
/// the mm state with them (nothing allocated yet).
pub fn parse_params(cmdline: &str) -> MmProfile {
    let cfg = config::parse_bootargs(cmdline, &mut |e| pr_info!("{}", e));
    let p = MmProfile {
        name: match cfg.profile {
            config::Profile::Debian61 => "debian-6.1",
            config::Profile::Biscuitos50 => "biscuitos-5.0",
        },
        max_order: cfg.max_order,
        pageblock_order: cfg.pageblock_order,
        vmsplit: match cfg.vmsplit {
            config::VmSplit::Split3G => VmSplit::Split3G,
            _ => VmSplit::Split2G,
        },
        highmem: matches!(cfg.vmsplit, config::VmSplit::Split3G),
        // Debian's armmp has CONFIG_ZONE_DMA=y; the BiscuitOS 5.0 build of
        // the seed articles shows a Normal zone.
        zone_dma: matches!(cfg.profile, config::Profile::Debian61),
        // Debian's armmp has CONFIG_HIGHPTE=y (user page tables from
        // HighMem); HIGHPTE depends on HIGHMEM. The BiscuitOS build's is
        // not known: without HighMem it changes nothing.
        highpte: matches!(cfg.profile, config::Profile::Debian61) && matches!(cfg.vmsplit, config::VmSplit::Split3G),
    };
    let p = match p.validate() {
        Ok(()) => p,
        Err(e) => {
            pr_info!("cmaemu: invalid mm configuration ({}), using debian-6.1", e);
            MmProfile::DEBIAN_6_1
        }
    };
    crate::hostif::set_inject_mask(inject_mask(&cfg));
    MM.install(Mm {
        config: cfg,
        profile: p,
        memblock: Memblock::new(),
        layout: None,
        physpages: 0,
        pa: None,
        areas: None,
        rmem: None,
        rmap: None,
        tasks: task::Tasks::new(),
        pending: None,
    });
    p
}

/// `cmaemu.inject=` as the descriptor's bit mask (1 << INJECT_*).
fn inject_mask(cfg: &Config) -> u32 {
    let mut m = 0;
    for i in cfg.inject.iter() {
        for id in 1..32u8 {
            if cmaemu_abi::trace::inject_name(id) == i.name() {
                m |= 1 << id;
            }
        }
    }
    m
}

fn alloc_zeroed(mb: &mut Memblock, size: u64, align: u64, limit: u64) -> Option<u32> {
    let pa = mb.memblock_phys_alloc_range(size, align, PhysAddr(0x6000_0000), PhysAddr(limit))?;
    crate::arch::ram_zero(phys_to_virt(pa.0 as u32), size as usize);
    Some(pa.0 as u32)
}

/// memblock.memory's regions as `[start, end)` (at most 16) and how many.
pub fn memory_ranges(mb: &Memblock) -> ([(PhysAddr, PhysAddr); 16], usize) {
    let mut mem = [(PhysAddr(0), PhysAddr(0)); 16];
    let mut n = 0;
    for r in mb.memory.regions() {
        if n < mem.len() && r.size > 0 {
            mem[n] = (PhysAddr(r.base), PhysAddr(r.base + r.size));
            n += 1;
        }
    }
    (mem, n)
}

/// `zone_sizes_init` → `free_area_init` (from `paging_init`): the zones'
/// spans, and in the debian-6.1 profile the lines Linux prints there
/// (`Zone ranges:` ... `Initmem setup node 0`; the biscuitos-5.0 profile
/// keeps the seed articles' boot log).
pub fn free_area_init(mm: &mut Mm) -> Result<(), &'static str> {
    let (mem, n) = memory_ranges(&mm.memblock);
    let layout = zone_sizes_init(&mm.profile, &mem[..n], None).map_err(|_| "zone_sizes_init failed")?;
    if matches!(mm.config.profile, config::Profile::Debian61) {
        layout.free_area_init_lines(&mem[..n], &mut |a| pr_info!("{}", a));
    }
    mm.layout = Some(layout);
    Ok(())
}

/// `mem_init`: build the page array over the zones [`free_area_init`]
/// laid out, and free every memblock-free range to the buddy allocator.
pub fn mm_init(mm: &mut Mm) -> Result<(), &'static str> {
    let profile = mm.profile;
    let layout = mm.layout.ok_or("free_area_init did not run")?;
    let mb = &mut mm.memblock;
    let lowmem_end = layout.lowmem_limit.0;
    let base = layout.min_pfn;
    let nr = layout.max_pfn.0 - base.0;
    let pages_bytes = nr as u64 * core::mem::size_of::<PageRecord>() as u64;
    let pa_pages = alloc_zeroed(mb, pages_bytes, 4096, lowmem_end).ok_or("no memory for the page array")?;
    let words = MemMap::pageblock_words_needed(base, nr, profile.pageblock_order);
    let pa_pb = alloc_zeroed(mb, (words * 4) as u64, 64, lowmem_end).ok_or("no memory for pageblock flags")?;
    // SAFETY: both regions were just reserved in memblock (never freed) and
    // lie in the linear map; nothing else aliases them.
    let (pages, pb) = unsafe {
        (
            core::slice::from_raw_parts_mut(phys_to_virt(pa_pages) as *mut PageRecord, nr as usize),
            core::slice::from_raw_parts_mut(phys_to_virt(pa_pb) as *mut u32, words),
        )
    };
    MEMMAP_VA.store(phys_to_virt(pa_pages), core::sync::atomic::Ordering::Relaxed);
    MEMMAP_BASE_PFN.store(base.0, core::sync::atomic::Ordering::Relaxed);
    mm.rmap = rmap::init(mb, nr, lowmem_end);
    let memmap = MemMap::new(pages, base, pb, profile.pageblock_order).map_err(|_| "bad page array")?;
    let mut pa = PageAlloc::new(profile, &layout, memmap).map_err(|_| "page allocator setup failed")?;
    // start_kernel: build_all_zonelists(NULL) before mm_init.
    pa.build_all_zonelists();
    // memblock_free_all: every range memblock did not reserve goes to the buddy.
    for (s, e) in mb.free_mem_ranges() {
        let sp = ((s.0 + 0xfff) >> 12) as u32;
        let ep = (e.0 >> 12) as u32;
        if ep > sp {
            let _ = pa.memblock_free_pages(Pfn(sp), Pfn(ep));
        }
    }
    if let Some(a) = &mm.areas {
        pa.totalcma_pages = a.totalcma_pages;
    }
    // start_kernel: setup_per_cpu_pageset() after mm_init; the watermarks
    // are still 0, so high = 4 * batch until init_per_zone_wmark_min.
    pa.setup_per_cpu_pageset();
    mm.physpages = mb.memblock_phys_mem_size() >> 12;
    mm.pa = Some(pa);
    Ok(())
}

/// `mem_init_print_info`.
pub fn mem_init_print_info(mm: &Mm) {
    let Some(pa) = &mm.pa else { return };
    let s = crate::arch::sections();
    let (sdata, edata, sbss, ebss) = (s.sdata as u64, s.edata as u64, s.sbss as u64, s.ebss as u64);
    let (stext, etext) = paging::kernel_text();
    let code = (etext - stext) as u64;
    let rodata = sdata - etext as u64;
    let physpages = mm.physpages;
    let totalcma = mm.areas.as_ref().map(|a| a.totalcma_pages).unwrap_or(0);
    let k = |pages: u64| pages << 2;
    let highmem = mm.profile.highmem;
    let mut line = crate::printk::LineBuf::new();
    use core::fmt::Write;
    let _ = write!(
        line,
        "Memory: {}K/{}K available ({}K kernel code, {}K rwdata, {}K rodata, {}K init, {}K bss, {}K reserved, {}K cma-reserved",
        k(pa.nr_free_pages()),
        k(physpages),
        code >> 10,
        (edata - sdata) >> 10,
        rodata >> 10,
        0,
        (ebss - sbss) >> 10,
        // (unsigned in Linux; saturate rather than wrap when a CMA area
        // was declared outside RAM)
        k(physpages.saturating_sub(pa.totalram_pages() + totalcma)),
        k(totalcma)
    );
    if highmem {
        let _ = write!(line, ", {}K highmem", k(pa.totalhigh_pages()));
    }
    let _ = write!(line, ")");
    pr_info!("{}", line.as_str());
}

/// `init_per_zone_wmark_min` (postcore_initcall, after ARM's
/// `atomic_pool_init` in link order): `min_free_kbytes`, the watermarks,
/// the per-cpu `high`/`batch` that follow them, `lowmem_reserve`.
pub fn init_per_zone_wmark_min(mm: &mut Mm) {
    if let Some(pa) = &mut mm.pa {
        pa.init_per_zone_wmark_min();
    }
}

/// `do_sysctl_args` (`kernel_init`, once the initcalls ran): the
/// command line's `sysctl.vm.min_free_kbytes=N` written to
/// `/proc/sys/vm/min_free_kbytes` (`min_free_kbytes_sysctl_handler`:
/// `user_min_free_kbytes`, `setup_per_zone_wmarks`, which also sets every
/// zone's per-cpu `high` from the new low watermark).
pub fn do_sysctl_args(mm: &mut Mm) {
    let Some(kb) = mm.config.sysctl_min_free_kbytes else { return };
    if let Some(pa) = &mut mm.pa {
        pa.set_min_free_kbytes(kb);
    }
}

/// A freshly mapped anonymous page goes to the LRU through the CPU's
/// LRU add batch (`folio_add_lru_vma` → `folio_add_lru`): it becomes
/// `PageLRU`, hence migratable, when the batch moves.
pub fn lru_cache_add(pa: &mut PageAlloc<'_>, pfn: Pfn) {
    pa.folio_add_lru(pfn);
}

/// Take a page off the LRU before freeing it (`release_pages`).
pub fn lru_del(pa: &mut PageAlloc<'_>, pfn: Pfn) {
    if let Some(p) = pa.mem.page_mut(pfn) {
        p.flags &= !PG_LRU;
    }
}
