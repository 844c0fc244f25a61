//! `memcpy MiB`: copy MiB from one set of 1 MiB kernel blocks to another
//! through the linear map (the baseline `cmaemu bench cma` compares
//! migration against: moving the same bytes with no mm work at all).
use crate::arch::phys_to_virt;
use crate::mm::Mm;
use crate::println;
use cmaemu_abi::page::Pfn;

pub fn memcpy_bench(mm: &mut Mm, mib: u32) {
    let Some(pa) = mm.pa.as_mut() else { return };
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
        // the blocks were just allocated to us (lowmem, 1 MiB each)
        crate::arch::ram_copy(phys_to_virt(src[i] << 12), phys_to_virt(dst[i] << 12), 1 << 20);
    }
    let ns = crate::time::sched_clock() - start;
    for i in 0..got {
        let _ = pa.__free_pages(Pfn(src[i]), 8);
        let _ = pa.__free_pages(Pfn(dst[i]), 8);
    }
    println!("memcpy: {} MiB in {} us (virtual)", got, ns / 1000);
}
