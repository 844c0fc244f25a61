//! The seed article's `cma_test` misc device: each write allocates the
//! next free slot i (i = 0..9) of (i + 1) MiB with dma_alloc_coherent and
//! touches every page; each read frees the lowest allocated slot.
use crate::arch::phys_to_virt;
use crate::dma::{dma_alloc_coherent, dma_free_coherent};
use crate::mm::with_mm;
use crate::pr_info;
use cmaemu_abi::page::Pfn;
use core::sync::atomic::{AtomicU32, Ordering};

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
        match with_mm(|mm| dma_alloc_coherent(mm, cmaemu_abi::desc::DMA_DEV_CMA_TEST, None, size)).flatten() {
            Some(pfn) => {
                let pa = pfn.0 << 12;
                let va = phys_to_virt(pa);
                for off in (0..size as u32).step_by(4096) {
                    // the frames were just allocated to us, in the linear map
                    crate::arch::ram_write32(va + off, 0);
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
        with_mm(|mm| dma_free_coherent(mm, cmaemu_abi::desc::DMA_DEV_CMA_TEST, None, Pfn(pa >> 12), size));
        pr_info!("misc cma_test: free virt: {:#010x} phys: {:#010x}", phys_to_virt(pa), pa);
        slot.store(0, Ordering::Relaxed);
        return;
    }
}
