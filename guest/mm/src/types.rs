//! Frame-number newtypes and size helpers shared by the mm modules.
//!
//! The newtypes themselves live in the ABI crate (the host reads the same
//! layouts); this module re-exports them and adds the arithmetic the
//! allocator needs.
pub use cmaemu_abi::page::{PageRecord, Pfn, PhysAddr, PAGE_SHIFT, PAGE_SIZE};

/// `K(x)`: pages to KiB.
pub const fn pages_to_kb(pages: u64) -> u64 {
    pages << (PAGE_SHIFT - 10)
}

/// `ALIGN_DOWN(pfn, 1 << order)`.
pub const fn align_down(pfn: u32, order: u32) -> u32 {
    pfn & !((1u32 << order) - 1)
}

/// `ALIGN(pfn, 1 << order)`.
pub const fn align_up(pfn: u64, order: u32) -> u64 {
    let m = (1u64 << order) - 1;
    (pfn + m) & !m
}
