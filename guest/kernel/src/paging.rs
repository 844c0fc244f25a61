//! The kernel's final translation tables (ARMv7 short descriptors).
//!
//! Like Linux ARM: the kernel L1 table (`swapper_pg_dir`) sits at
//! PHYS_OFFSET + 0x4000, RAM is mapped linearly at PAGE_OFFSET, every data
//! mapping is execute-never, and the kernel image is mapped with 4 KiB
//! pages so that only [_stext, _etext) is executable.
use crate::arch::{self, phys_to_virt, PAGE_OFFSET, PHYS_OFFSET};

/// Physical address of `swapper_pg_dir` (Linux: `KERNEL_RAM_VADDR - 0x4000`).
pub const SWAPPER_PG_DIR: u32 = PHYS_OFFSET + 0x4000;
pub const SWAPPER_PG_DIR_SIZE: u32 = 0x4000;

/// Section: kernel RW, normal memory write-back (TEX=001 C B), execute-never.
pub const SECT_RAM_XN: u32 = 0x0000_140e | SECT_XN;
pub const SECT_XN: u32 = 1 << 4;
/// Section: shared device, kernel RW, execute-never.
pub const SECT_DEVICE: u32 = 0x0000_0416;
/// Small page: normal WB, kernel RW (AP=01), executable.
pub const PTE_KERNEL_EXEC: u32 = 0x05e;
/// Small page: normal WB, kernel RW, execute-never.
pub const PTE_KERNEL_DATA: u32 = 0x05f;
/// Small page: normal WB, user RW (AP=11), non-global, execute-never.
pub const PTE_USER_DATA: u32 = 0x07f | (1 << 11);
/// L1 entry pointing at an L2 table (domain 0).
pub const PDE_TABLE: u32 = 0x1;

pub fn kernel_text() -> (u32, u32) {
    let s = crate::arch::sections();
    (s.stext, s.etext)
}
pub fn kernel_end() -> u32 {
    crate::arch::sections().end
}

fn l1() -> u32 {
    phys_to_virt(SWAPPER_PG_DIR)
}

/// Write one descriptor of a table that lives in the linear map (callers
/// pass a table in reserved RAM and an index inside it: L1 < 4096, L2 <
/// 256).
fn set(table_va: u32, idx: usize, v: u32) {
    crate::arch::ram_write32(table_va + idx as u32 * 4, v);
}

/// Build `swapper_pg_dir` for `ram_size` bytes of RAM and switch to it.
/// `alloc` returns zeroed, 1 KiB-aligned physical memory for L2 tables and
/// the (empty) user half table.
pub fn paging_init(ram_size: u64, alloc: &mut dyn FnMut(u32, u32) -> u32) {
    let l1 = l1();
    for i in 0..4096 {
        set(l1, i, 0);
    }
    let (stext, etext) = kernel_text();
    let kend = kernel_end();
    let mib = (ram_size >> 20) as u32;
    for m in 0..mib {
        let va = PAGE_OFFSET + (m << 20);
        let pa = PHYS_OFFSET + (m << 20);
        if va < kend && va + (1 << 20) > stext {
            // kernel image: 4 KiB pages, text executable, the rest XN
            let l2 = alloc(1024, 1024);
            let l2va = phys_to_virt(l2);
            for p in 0..256u32 {
                let pva = va + (p << 12);
                let attr = if pva >= stext && pva < etext { PTE_KERNEL_EXEC } else { PTE_KERNEL_DATA };
                set(l2va, p as usize, (pa + (p << 12)) | attr);
            }
            set(l1, (va >> 20) as usize, l2 | PDE_TABLE);
        } else {
            set(l1, (va >> 20) as usize, pa | SECT_RAM_XN);
        }
    }
    set(l1, (arch::io_p2v(0x1000_0000) >> 20) as usize, 0x1000_0000 | SECT_DEVICE);
    set(l1, (arch::io_p2v(0x1e00_0000) >> 20) as usize, 0x1e00_0000 | SECT_DEVICE);
    // The user half (TTBR0, 8 KiB with TTBCR.N = 1) of kernel threads maps
    // nothing.
    let user = alloc(8192, 8192);
    arch::dsb();
    arch::set_ttbr1(SWAPPER_PG_DIR);
    arch::set_ttbr0(user);
    arch::set_ttbcr(1);
    arch::tlb_flush_all();
    EMPTY_TTBR0.store(user, core::sync::atomic::Ordering::Relaxed);
}

/// TTBR0 value of kernel threads (an all-invalid user half).
pub static EMPTY_TTBR0: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);
