//! `start_kernel`: from the DTB to a running system (setup_arch →
//! arm_memblock_init → paging_init → IRQs and the tick).
use crate::arch::{self, phys_to_virt, virt_to_phys};
use crate::drivers::{gic, map, sysreg, timer, uart};
use crate::{dt, paging, pr_info};
use crate::mm::{with_mm, Mm};
use cmaemu_mm::memblock::{Memblock, PhysAddr};

/// The kernel command line (from /chosen/bootargs), kept for /proc/cmdline.
struct Cmdline {
    buf: [u8; 1024],
    len: usize,
}

static CMDLINE: crate::arch::Guarded<Cmdline> = crate::arch::Guarded::new_with(Cmdline { buf: [0; 1024], len: 0 });

/// Run `f` on the kernel command line.
pub fn with_cmdline<R>(f: impl FnOnce(&str) -> R) -> R {
    let mut f = Some(f);
    CMDLINE
        .with(|c| (f.take().unwrap())(core::str::from_utf8(&c.buf[..c.len]).unwrap_or("")))
        .unwrap_or_else(|| (f.take().unwrap())(""))
}

fn fail(msg: core::fmt::Arguments) -> ! {
    pr_info!("Kernel panic - not syncing: {}", msg);
    sysreg::poweroff(cmaemu_abi::boot::POWEROFF_PANIC | 1)
}

pub fn start_kernel(dtb_pa: u32, _machine: u32) {
    uart::init(map::UART0);
    arch::set_vbar(vectors_addr());
    pr_info!("Booting Linux on physical CPU 0x0");
    pr_info!("Linux version 6.1.0-cmaemu (cmaemu guest kernel) #1 SMP ARM");
    pr_info!(
        "CPU: ARMv7 Processor [{:08x}] revision {} (ARMv7), cr={:08x}",
        arch::midr(),
        arch::midr() & 0xf,
        arch::sctlr()
    );

    // --- the device tree
    let dtb_va = phys_to_virt(dtb_pa);
    if !(arch::PHYS_OFFSET..arch::PHYS_OFFSET + 0x4000_0000).contains(&dtb_pa) {
        fail(format_args!("DTB at {:#010x} is outside RAM", dtb_pa));
    }
    let size = match dt::check_header(dtb_va) {
        Ok(s) => s,
        Err(e) => fail(format_args!("Invalid device tree blob at physical address {:#010x}: {}", dtb_pa, e)),
    };
    let fdt = match dt::open(dtb_va, size) {
        Ok(f) => f,
        Err(e) => fail(format_args!("Invalid device tree blob at physical address {:#010x}: {}", dtb_pa, e)),
    };
    let root = match fdt.find_node("/") {
        Some(r) => r,
        None => fail(format_args!("device tree has no root node")),
    };
    if let Some(model) = dt::prop_str(&root, "model") {
        pr_info!("OF: fdt: Machine model: {}", model);
    }
    if let Some(chosen) = fdt.find_node("/chosen") {
        if let Some(args) = dt::prop_str(&chosen, "bootargs") {
            let n = args.len().min(1023);
            CMDLINE.with(|c| {
                c.buf[..n].copy_from_slice(&args.as_bytes()[..n]);
                c.len = n;
            });
        }
    }

    with_cmdline(crate::mm::parse_params);
    let Some(fdt) = with_mm(|mm| setup_mm(mm, fdt, dtb_pa, dtb_va, size)) else {
        fail(format_args!("mm state missing after parse_params"))
    };
    crate::video::probe(&fdt);
    crate::dmatest::probe(&fdt);
    crate::iomem::probe(&fdt);
    with_mm(|mm| {
        crate::mm::publish::init(mm);
        // the shell's task (init)
        match crate::vm::task_new(mm) {
            Ok(i) => {
                crate::vm::switch_to(mm, i);
            }
            Err(e) => pr_info!("init: cannot create the first task: {}", e),
        }
    });
    let _ = sysreg::read(sysreg::SYS_ID);
}

/// From memblock to a running page allocator (`setup_arch` →
/// `arm_memblock_init` → `paging_init`, then `mm_init` and the mm
/// initcalls); returns the device tree to probe devices from.
fn setup_mm(mm: &mut Mm, fdt: fdt::Fdt<'static>, dtb_pa: u32, dtb_va: u32, size: u32) -> fdt::Fdt<'static> {
    let root = match fdt.find_node("/") {
        Some(r) => r,
        None => fail(format_args!("device tree has no root node")),
    };
    // --- memblock: memory from /memory nodes (early_init_dt_scan_memory:
    // direct children of the root with device_type = "memory" that are
    // available; the host's Dtb::memory_regions reads the same nodes)
    let mb = &mut mm.memblock;
    let (rac, rsc) = dt::cells(&root);
    let mut nmem = 0;
    for node in root.children() {
        if dt::prop_str(&node, "device_type") != Some("memory") || !dt::is_available(&node) {
            continue;
        }
        let Some(reg) = node.property("reg") else { continue };
        let Some(it) = dt::RegIter::new(reg.value, rac, rsc) else {
            pr_info!("OF: fdt: {}: malformed reg property, ignored", node.name);
            continue;
        };
        for (base, sz) in it {
            if sz == 0 {
                continue;
            }
            let _ = mb.memblock_add(PhysAddr(base), sz);
            nmem += 1;
        }
    }
    if nmem == 0 {
        fail(format_args!("device tree has no usable /memory node"));
    }
    let ram_start = mb.memblock_start_of_DRAM().0 as u32;
    let ram_end = mb.memblock_end_of_DRAM().0;
    if ram_start != arch::PHYS_OFFSET || ram_end > (arch::PHYS_OFFSET as u64 + 0x4000_0000) {
        fail(format_args!(
            "memory {:#010x}-{:#010x} is not inside the vexpress-a9 RAM window 0x60000000-0x9fffffff",
            ram_start, ram_end - 1
        ));
    }

    // --- arm_memblock_init: swapper_pg_dir and the kernel image; then
    // early_init_fdt_reserve_self (the /memreserve/ entries are reserved by
    // early_init_fdt_scan_reserved_mem in cma::reserve)
    let (stext, _) = paging::kernel_text();
    let kend = paging::kernel_end();
    let own = [
        ("swapper_pg_dir", paging::SWAPPER_PG_DIR, paging::SWAPPER_PG_DIR_SIZE),
        ("the kernel image", virt_to_phys(stext), kend - stext),
        ("the device tree blob", dtb_pa, size),
    ];
    for (_, base, len) in own {
        let _ = mb.memblock_reserve(PhysAddr(base as u64), len as u64);
    }
    // adjust_lowmem_bounds: memblock allocations stay in lowmem
    let lowmem = lowmem_limit(mb, &mm.profile);
    mb.memblock_set_current_limit(PhysAddr(lowmem));
    crate::cma::reserve(&fdt, mm, lowmem);
    let mb = &mut mm.memblock;
    // A reserved-memory node whose setup failed is memblock-freed (as in
    // Linux's fdt_init_reserved_mem); if its range covered the kernel's own
    // reservations they are gone, and Linux would go on to hand its own
    // image out as free memory. Say so instead.
    for (what, base, len) in own {
        if let Some(off) = (0..len).step_by(4096).chain([len - 1]).find(|o| !mb.memblock_is_reserved(PhysAddr((base + o) as u64))) {
            fail(format_args!(
                "reserved-memory: a node freed after a failed setup covered {} ({:#010x}-{:#010x}, unreserved at {:#010x}); fix the device tree",
                what,
                base,
                base + len - 1,
                base + off
            ));
        }
    }

    // --- unflatten_device_tree reads a copy in memblock memory: the blob
    // may lie outside the memory the tree declares (QEMU places it by its
    // RAM size, not by /memory), where paging_init maps nothing. Copy it
    // while the boot table still maps the whole RAM window.
    let in_lowmem = mb.memblock_is_region_memory(PhysAddr(dtb_pa as u64), size as u64) && dtb_pa as u64 + size as u64 <= lowmem;
    let fdt = if in_lowmem {
        fdt
    } else {
        let Some(pa) = mb.memblock_phys_alloc_range(size as u64, 8, PhysAddr(ram_start as u64), PhysAddr(lowmem)) else {
            fail(format_args!("early_init_dt_alloc_memory_arch: Failed to allocate {} bytes align=0x8 (the device tree lies outside /memory)", size))
        };
        let dst = phys_to_virt(pa.0 as u32);
        // The source is the blob the firmware placed in the RAM window
        // (only read); the destination was just reserved in memblock below
        // lowmem; the boot page table maps the whole window, and the two
        // do not overlap (the blob's range is memblock-reserved, so the
        // allocation lies elsewhere).
        arch::ram_copy(dtb_va, dst, size as usize);
        match dt::open(dst, size) {
            Ok(f) => f,
            Err(e) => fail(format_args!("device tree copy at {:#010x}: {}", pa.0, e)),
        }
    };

    // --- paging_init: final tables (L2 tables from memblock, below lowmem:
    // Linux's early_alloc is memblock_alloc, MEMBLOCK_ALLOC_ACCESSIBLE, up
    // to memblock.current_limit = arm_lowmem_limit; from the top of RAM
    // they took 3 HighMem pages on a 1 GiB board, one less HighMem min
    // watermark page than the real kernel)
    let ram_size = ram_end - ram_start as u64;
    let mut alloc = |size: u32, align: u32| -> u32 {
        match mb.memblock_phys_alloc_range(size as u64, align as u64, PhysAddr(ram_start as u64), PhysAddr(lowmem)) {
            Some(pa) => {
                let va = phys_to_virt(pa.0 as u32);
                // freshly reserved lowmem, mapped by the boot table
                arch::ram_zero(va, size as usize);
                pa.0 as u32
            }
            None => fail(format_args!("paging_init: out of memory for page tables")),
        }
    };
    paging::paging_init(ram_size, &mut alloc);
    if let Err(e) = crate::mm::free_area_init(mm) {
        fail(format_args!("free_area_init: {}", e));
    }

    // --- IRQs and the tick
    gic::init();
    gic::enable(map::IRQ_TIMER01);
    gic::enable(map::IRQ_UART0);
    timer::init();
    arch::irq_enable();

    with_cmdline(|c| pr_info!("Kernel command line: {}", c));
    if let Err(e) = crate::mm::mm_init(mm) {
        fail(format_args!("mm_init: {}", e));
    }
    crate::mm::mem_init_print_info(mm);
    crate::cma::init_reserved_areas(mm);
    let spec = mm.config.trace_event.as_str();
    if !spec.is_empty() {
        crate::trace::boot_param(spec);
    }
    crate::dma::atomic_pool_init(mm);
    crate::mm::init_per_zone_wmark_min(mm);
    crate::cma_test::init();
    crate::mm::do_sysctl_args(mm);
    fdt
}

/// `arm_lowmem_limit` for the memory memblock holds (adjust_lowmem_bounds).
fn lowmem_limit(mb: &Memblock, p: &cmaemu_mm::profile::MmProfile) -> u64 {
    let (mem, n) = crate::mm::memory_ranges(mb);
    cmaemu_mm::zone::adjust_lowmem_bounds(p, &mem[..n], None)
        .map(|l| l.0)
        .unwrap_or(mb.memblock_end_of_DRAM().0)
}

fn vectors_addr() -> u32 {
    arch::sections().vectors
}
