//! `cmaemu,dma-test` platform devices: each DT node with that compatible
//! gets its CMA area from its `memory-region` (`of_reserved_mem_device_init`)
//! and the shell's `dma alloc AREA N` / `dma free AREA` allocate and free
//! through it with `dma_alloc_coherent` (so `cma_alloc` with align =
//! min(order, CMA_ALIGNMENT)). The differential oracle's module
//! (`oracle/module/cmaemu_oracle.c`) does the same on real Linux, whose
//! Debian build has no CMA debugfs and does not export `cma_alloc`.
use crate::arch::Guarded;
use crate::mm::with_mm;
use crate::{dma, pr_info, println};
use cmaemu_abi::desc::DMA_DEV_CMA_TEST;
use cmaemu_abi::page::Pfn;
use cmaemu_mm::cma::CmaId;

const MAX_DEVS: usize = 8;
const MAX_BUFS: usize = 64;
const NAME_LEN: usize = 48;

#[derive(Clone, Copy)]
struct Dev {
    name: [u8; NAME_LEN],
    len: usize,
    area: Option<CmaId>,
}

#[derive(Clone, Copy)]
struct Buf {
    dev: usize,
    pfn: Pfn,
    pages: u32,
}

struct State {
    devs: [Option<Dev>; MAX_DEVS],
    /// Live allocations, oldest first.
    bufs: [Option<Buf>; MAX_BUFS],
}

static STATE: Guarded<State> = Guarded::new_with(State { devs: [None; MAX_DEVS], bufs: [None; MAX_BUFS] });

impl Dev {
    fn name(&self) -> &str {
        core::str::from_utf8(&self.name[..self.len]).unwrap_or("?")
    }
}

/// Probe every `cmaemu,dma-test` node (`dma_test_probe` in the module).
pub fn probe(fdt: &fdt::Fdt) {
    let mut n = 0;
    for node in fdt.all_nodes() {
        if !crate::dt::is_compatible(&node, "cmaemu,dma-test") || n == MAX_DEVS {
            continue;
        }
        let mut area = None;
        let name = node.name;
        if let Some(ph) = crate::dt::prop_u64(&node, "memory-region") {
            area = crate::video::device_area(ph as u32);
        }
        let mut d = Dev { name: [0; NAME_LEN], len: name.len().min(NAME_LEN), area };
        d.name[..d.len].copy_from_slice(&name.as_bytes()[..d.len]);
        if let Some(id) = area {
            with_mm(|mm| {
                if let Some(a) = mm.areas.as_ref().map(|t| t.get(id).cma_get_name()) {
                    d.len = a.len().min(NAME_LEN);
                    d.name[..d.len].copy_from_slice(&a.as_bytes()[..d.len]);
                    pr_info!("cmaemu-dma-test {}: assigned reserved memory node {}", node.name, a);
                }
            });
        }
        STATE.with(|st| st.devs[n] = Some(d));
        n += 1;
    }
}

/// The device whose area is `area`, and its index.
fn find(area: &str) -> Option<(usize, Dev)> {
    STATE.with(|st| st.devs.iter().enumerate().find_map(|(i, d)| d.filter(|d| d.name() == area).map(|d| (i, d)))).flatten()
}

/// `dma alloc AREA PAGES`.
pub fn alloc(area: &str, pages: u32) {
    let Some((i, dev)) = find(area) else {
        println!("dma: alloc: no device with memory-region {}", area);
        return;
    };
    match with_mm(|mm| dma::dma_alloc_coherent(mm, DMA_DEV_CMA_TEST, dev.area, pages as u64 * 4096)).flatten() {
        Some(pfn) => {
            let tracked = STATE.with(|st| match st.bufs.iter_mut().find(|b| b.is_none()) {
                Some(slot) => {
                    *slot = Some(Buf { dev: i, pfn, pages });
                    true
                }
                None => false,
            });
            if tracked != Some(true) {
                println!("dma: too many live allocations (the last is kept, not tracked)");
            }
            println!("dma: {}: {} pages at pfn {:#x}", area, pages, pfn.0);
        }
        None => println!("dma: {}: allocation of {} pages failed", area, pages),
    }
}

/// `dma free AREA`: the area's oldest live allocation.
pub fn free(area: &str) {
    let Some((i, dev)) = find(area) else {
        println!("dma: free: no device with memory-region {}", area);
        return;
    };
    let taken = STATE.with(|st| {
        let k = st.bufs.iter().position(|b| b.is_some_and(|b| b.dev == i))?;
        let b = st.bufs[k].take();
        // keep the list in allocation order
        st.bufs[k..].rotate_left(1);
        b
    });
    let Some(b) = taken.flatten() else {
        println!("dma: {}: nothing to free", area);
        return;
    };
    with_mm(|mm| dma::dma_free_coherent(mm, DMA_DEV_CMA_TEST, dev.area, b.pfn, b.pages as u64 * 4096));
    println!("dma: {}: freed {} pages at pfn {:#x}", area, b.pages, b.pfn.0);
}
