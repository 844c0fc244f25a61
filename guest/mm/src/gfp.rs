//! GFP flags (include/linux/gfp_types.h, Linux 6.1, ARM32 without KASAN
//! hardware tags or lockdep, so the `__GFP_SKIP_KASAN_*`/`__GFP_NOLOCKDEP`
//! bits are 0) and the allocator-internal `ALLOC_*` flags (mm/internal.h).
use crate::pageblock::MigrateType;

/// A `gfp_t`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Gfp(pub u32);

impl core::ops::BitOr for Gfp {
    type Output = Gfp;
    fn bitor(self, o: Gfp) -> Gfp {
        Gfp(self.0 | o.0)
    }
}

impl Gfp {
    /// Whether any of the bits of `o` is set.
    pub const fn any(self, o: Gfp) -> bool {
        self.0 & o.0 != 0
    }
    /// `self & !o`.
    pub const fn without(self, o: Gfp) -> Gfp {
        Gfp(self.0 & !o.0)
    }
}

/// `__GFP_DMA`.
pub const __GFP_DMA: Gfp = Gfp(0x01);
/// `__GFP_HIGHMEM`.
pub const __GFP_HIGHMEM: Gfp = Gfp(0x02);
/// `__GFP_DMA32`.
pub const __GFP_DMA32: Gfp = Gfp(0x04);
/// `__GFP_MOVABLE`.
pub const __GFP_MOVABLE: Gfp = Gfp(0x08);
/// `__GFP_RECLAIMABLE`.
pub const __GFP_RECLAIMABLE: Gfp = Gfp(0x10);
/// `__GFP_HIGH`.
pub const __GFP_HIGH: Gfp = Gfp(0x20);
/// `__GFP_IO`.
pub const __GFP_IO: Gfp = Gfp(0x40);
/// `__GFP_FS`.
pub const __GFP_FS: Gfp = Gfp(0x80);
/// `__GFP_ZERO`.
pub const __GFP_ZERO: Gfp = Gfp(0x100);
/// `__GFP_ATOMIC`.
pub const __GFP_ATOMIC: Gfp = Gfp(0x200);
/// `__GFP_DIRECT_RECLAIM`.
pub const __GFP_DIRECT_RECLAIM: Gfp = Gfp(0x400);
/// `__GFP_KSWAPD_RECLAIM`.
pub const __GFP_KSWAPD_RECLAIM: Gfp = Gfp(0x800);
/// `__GFP_WRITE`.
pub const __GFP_WRITE: Gfp = Gfp(0x1000);
/// `__GFP_NOWARN`.
pub const __GFP_NOWARN: Gfp = Gfp(0x2000);
/// `__GFP_RETRY_MAYFAIL`.
pub const __GFP_RETRY_MAYFAIL: Gfp = Gfp(0x4000);
/// `__GFP_NOFAIL`.
pub const __GFP_NOFAIL: Gfp = Gfp(0x8000);
/// `__GFP_NORETRY`.
pub const __GFP_NORETRY: Gfp = Gfp(0x10000);
/// `__GFP_MEMALLOC`.
pub const __GFP_MEMALLOC: Gfp = Gfp(0x20000);
/// `__GFP_COMP`.
pub const __GFP_COMP: Gfp = Gfp(0x40000);
/// `__GFP_NOMEMALLOC`.
pub const __GFP_NOMEMALLOC: Gfp = Gfp(0x80000);
/// `__GFP_HARDWALL`.
pub const __GFP_HARDWALL: Gfp = Gfp(0x100000);
/// `__GFP_THISNODE`.
pub const __GFP_THISNODE: Gfp = Gfp(0x200000);
/// `__GFP_ACCOUNT`.
pub const __GFP_ACCOUNT: Gfp = Gfp(0x400000);

/// `__GFP_RECLAIM`.
pub const __GFP_RECLAIM: Gfp = Gfp(__GFP_DIRECT_RECLAIM.0 | __GFP_KSWAPD_RECLAIM.0);
/// `GFP_ATOMIC`.
pub const GFP_ATOMIC: Gfp = Gfp(__GFP_HIGH.0 | __GFP_ATOMIC.0 | __GFP_KSWAPD_RECLAIM.0);
/// `GFP_KERNEL`.
pub const GFP_KERNEL: Gfp = Gfp(__GFP_RECLAIM.0 | __GFP_IO.0 | __GFP_FS.0);
/// `GFP_NOWAIT`.
pub const GFP_NOWAIT: Gfp = __GFP_KSWAPD_RECLAIM;
/// `GFP_NOIO`.
pub const GFP_NOIO: Gfp = __GFP_RECLAIM;
/// `GFP_USER`.
pub const GFP_USER: Gfp = Gfp(GFP_KERNEL.0 | __GFP_HARDWALL.0);
/// `GFP_DMA`.
pub const GFP_DMA: Gfp = __GFP_DMA;
/// `GFP_HIGHUSER`.
pub const GFP_HIGHUSER: Gfp = Gfp(GFP_USER.0 | __GFP_HIGHMEM.0);
/// `GFP_HIGHUSER_MOVABLE`.
pub const GFP_HIGHUSER_MOVABLE: Gfp = Gfp(GFP_HIGHUSER.0 | __GFP_MOVABLE.0);
/// `GFP_PGTABLE_KERNEL` (include/asm-generic/pgalloc.h).
pub const GFP_PGTABLE_KERNEL: Gfp = Gfp(GFP_KERNEL.0 | __GFP_ZERO.0);
/// `GFP_PGTABLE_USER`: a user page table, charged to the task's memcg.
pub const GFP_PGTABLE_USER: Gfp = Gfp(GFP_PGTABLE_KERNEL.0 | __GFP_ACCOUNT.0);
/// `GFP_KERNEL | __GFP_RECLAIMABLE` (`GFP_KERNEL_RECLAIMABLE` style).
pub const GFP_RECLAIMABLE: Gfp = Gfp(GFP_KERNEL.0 | __GFP_RECLAIMABLE.0);

/// `GFP_MOVABLE_MASK`.
pub const GFP_MOVABLE_MASK: u32 = __GFP_RECLAIMABLE.0 | __GFP_MOVABLE.0;
/// `GFP_MOVABLE_SHIFT`.
pub const GFP_MOVABLE_SHIFT: u32 = 3;

/// `gfp_migratetype` (with `page_group_by_mobility_disabled` applied as
/// Linux does: everything becomes `MIGRATE_UNMOVABLE`).
pub fn gfp_migratetype(gfp: Gfp, mobility_disabled: bool) -> MigrateType {
    if mobility_disabled {
        return MigrateType::Unmovable;
    }
    match (gfp.0 & GFP_MOVABLE_MASK) >> GFP_MOVABLE_SHIFT {
        1 => MigrateType::Movable,
        2 => MigrateType::Reclaimable,
        // 0, and 3 which Linux rejects with VM_WARN_ON.
        _ => MigrateType::Unmovable,
    }
}

// --- ALLOC_* (mm/internal.h of the 6.1.y stable tree Debian builds) ---

/// Watermark index `WMARK_MIN` (= `ALLOC_WMARK_MIN`).
pub const WMARK_MIN: usize = 0;
/// `WMARK_LOW`.
pub const WMARK_LOW: usize = 1;
/// `WMARK_HIGH`.
pub const WMARK_HIGH: usize = 2;
/// `WMARK_PROMO`.
pub const WMARK_PROMO: usize = 3;
/// `NR_WMARK`.
pub const NR_WMARK: usize = 4;

/// `ALLOC_WMARK_MIN`.
pub const ALLOC_WMARK_MIN: u32 = WMARK_MIN as u32;
/// `ALLOC_WMARK_LOW`.
pub const ALLOC_WMARK_LOW: u32 = WMARK_LOW as u32;
/// `ALLOC_WMARK_HIGH`.
pub const ALLOC_WMARK_HIGH: u32 = WMARK_HIGH as u32;
/// `ALLOC_NO_WATERMARKS`.
pub const ALLOC_NO_WATERMARKS: u32 = 0x04;
/// `ALLOC_WMARK_MASK`.
pub const ALLOC_WMARK_MASK: u32 = ALLOC_NO_WATERMARKS - 1;
/// `ALLOC_OOM`.
pub const ALLOC_OOM: u32 = 0x08;
/// `ALLOC_NON_BLOCK`.
pub const ALLOC_NON_BLOCK: u32 = 0x10;
/// `ALLOC_MIN_RESERVE` (= `__GFP_HIGH`).
pub const ALLOC_MIN_RESERVE: u32 = 0x20;
/// `ALLOC_CPUSET`.
pub const ALLOC_CPUSET: u32 = 0x40;
/// `ALLOC_CMA`.
pub const ALLOC_CMA: u32 = 0x80;
/// `ALLOC_NOFRAGMENT`.
pub const ALLOC_NOFRAGMENT: u32 = 0x100;
/// `ALLOC_HIGHATOMIC`.
pub const ALLOC_HIGHATOMIC: u32 = 0x200;
/// `ALLOC_KSWAPD` (= `__GFP_KSWAPD_RECLAIM`).
pub const ALLOC_KSWAPD: u32 = 0x800;
/// `ALLOC_RESERVES`.
pub const ALLOC_RESERVES: u32 = ALLOC_NON_BLOCK | ALLOC_MIN_RESERVE | ALLOC_HIGHATOMIC | ALLOC_OOM;

/// `gfp_to_alloc_flags_cma`: only movable requests may use CMA pageblocks.
pub fn gfp_to_alloc_flags_cma(gfp: Gfp, alloc_flags: u32, mobility_disabled: bool) -> u32 {
    if gfp_migratetype(gfp, mobility_disabled) == MigrateType::Movable {
        alloc_flags | ALLOC_CMA
    } else {
        alloc_flags
    }
}

/// `gfp_to_alloc_flags` (the slow path's flags). `rt_task` is never true
/// here: the guest has no real-time tasks.
pub fn gfp_to_alloc_flags(gfp: Gfp, order: u32, mobility_disabled: bool) -> u32 {
    let mut alloc_flags = ALLOC_WMARK_MIN | ALLOC_CPUSET;
    alloc_flags |= gfp.0 & (__GFP_HIGH.0 | __GFP_KSWAPD_RECLAIM.0);
    if !gfp.any(__GFP_DIRECT_RECLAIM) {
        if !gfp.any(__GFP_NOMEMALLOC) {
            alloc_flags |= ALLOC_NON_BLOCK;
            if order > 0 {
                alloc_flags |= ALLOC_HIGHATOMIC;
            }
        }
        if alloc_flags & ALLOC_MIN_RESERVE != 0 {
            alloc_flags &= !ALLOC_CPUSET;
        }
    }
    gfp_to_alloc_flags_cma(gfp, alloc_flags, mobility_disabled)
}

/// `__gfp_pfmemalloc_flags` for a task context without `PF_MEMALLOC` and
/// not an OOM victim: only `__GFP_MEMALLOC` grants `ALLOC_NO_WATERMARKS`.
pub fn __gfp_pfmemalloc_flags(gfp: Gfp) -> u32 {
    if gfp.any(__GFP_NOMEMALLOC) {
        0
    } else if gfp.any(__GFP_MEMALLOC) {
        ALLOC_NO_WATERMARKS
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migratetype_of_common_masks() {
        assert_eq!(gfp_migratetype(GFP_KERNEL, false), MigrateType::Unmovable);
        assert_eq!(gfp_migratetype(GFP_HIGHUSER_MOVABLE, false), MigrateType::Movable);
        assert_eq!(gfp_migratetype(GFP_RECLAIMABLE, false), MigrateType::Reclaimable);
        assert_eq!(gfp_migratetype(GFP_HIGHUSER_MOVABLE, true), MigrateType::Unmovable);
        assert_eq!(GFP_KERNEL.0, 0xcc0);
        assert_eq!(GFP_ATOMIC.0, 0xa20);
        assert_eq!(GFP_HIGHUSER_MOVABLE.0, 0x100cca);
    }

    #[test]
    fn alloc_flags_of_atomic_and_kernel() {
        let a = gfp_to_alloc_flags(GFP_ATOMIC, 1, false);
        assert_eq!(a & ALLOC_NON_BLOCK, ALLOC_NON_BLOCK);
        assert_eq!(a & ALLOC_HIGHATOMIC, ALLOC_HIGHATOMIC);
        assert_eq!(a & ALLOC_MIN_RESERVE, ALLOC_MIN_RESERVE);
        assert_eq!(a & ALLOC_CPUSET, 0);
        let k = gfp_to_alloc_flags(GFP_KERNEL, 0, false);
        assert_eq!(k, ALLOC_WMARK_MIN | ALLOC_CPUSET | ALLOC_KSWAPD);
        let m = gfp_to_alloc_flags(GFP_HIGHUSER_MOVABLE, 0, false);
        assert_eq!(m & ALLOC_CMA, ALLOC_CMA);
    }
}
