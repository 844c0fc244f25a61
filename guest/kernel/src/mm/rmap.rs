//! The kernel's reverse map: one `cmaemu_mm::rmap` pool (one entry per
//! possible user mapping) allocated from memblock at boot.
use crate::arch::phys_to_virt;
use crate::pr_info;
use cmaemu_abi::page::{Pfn, PhysAddr};
use cmaemu_mm::buddy::PageAlloc;
use cmaemu_mm::memblock::Memblock;
use cmaemu_mm::rmap::{Rmap, RmapEntry};

/// Allocate the pool: one entry per RAM page.
pub fn init(mb: &mut Memblock, nr_pages: u32, limit: u64) -> Option<Rmap<'static>> {
    let bytes = nr_pages as u64 * core::mem::size_of::<RmapEntry>() as u64;
    let Some(pa) = mb.memblock_phys_alloc_range(bytes, 4096, PhysAddr(0x6000_0000), PhysAddr(limit)) else {
        pr_info!("rmap: no memory for {} entries", nr_pages);
        return None;
    };
    // SAFETY: freshly reserved lowmem, linearly mapped, never freed; the
    // pool is the only reference to it.
    let pool = unsafe { core::slice::from_raw_parts_mut(phys_to_virt(pa.0 as u32) as *mut RmapEntry, nr_pages as usize) };
    Some(Rmap::new(pool))
}

/// `page_add_anon_rmap`: the page is mapped at (`asid`, `va`).
pub fn add(rmap: &mut Option<Rmap<'static>>, pa: &mut PageAlloc<'_>, pfn: Pfn, asid: u16, va: u32) {
    let Some(r) = rmap else { return };
    if let Err(e) = r.page_add_anon_rmap(&mut pa.mem, pfn, asid, va) {
        pr_info!("rmap: add {:#x} asid {} va {:#x}: {}", pfn.0, asid, va, e);
    }
}

/// `page_remove_rmap`: the mapping at (`asid`, `va`) is gone.
pub fn remove(rmap: &mut Option<Rmap<'static>>, pa: &mut PageAlloc<'_>, pfn: Pfn, asid: u16, va: u32) {
    let Some(r) = rmap else { return };
    if let Err(e) = r.page_remove_rmap(&mut pa.mem, pfn, asid, va) {
        pr_info!("rmap: remove {:#x} asid {} va {:#x}: {}", pfn.0, asid, va, e);
    }
}
