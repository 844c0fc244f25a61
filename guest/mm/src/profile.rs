//! Linux build-time memory options as a run-time profile.
//!
//! Linux fixes `CONFIG_ARCH_FORCE_MAX_ORDER` (hence `MAX_ORDER`),
//! `pageblock_order` and `CONFIG_VMSPLIT_*`/`CONFIG_HIGHMEM` at build time;
//! the guest takes them at boot so that one binary emulates several kernel
//! builds. Nothing in the allocator hard-codes one profile.
use core::fmt;

/// Upper bound on [`MmProfile::max_order`] (array capacity of the free areas).
pub const MAX_ORDER_LIMIT: usize = 16;

/// The kernel/user address split (`CONFIG_VMSPLIT_*`), i.e. `PAGE_OFFSET`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmSplit {
    /// `CONFIG_VMSPLIT_3G`: `PAGE_OFFSET = 0xC0000000`.
    Split3G,
    /// `CONFIG_VMSPLIT_2G`: `PAGE_OFFSET = 0x80000000`.
    Split2G,
    /// `CONFIG_VMSPLIT_1G`: `PAGE_OFFSET = 0x40000000`.
    Split1G,
}

impl VmSplit {
    /// `PAGE_OFFSET` for this split.
    pub const fn page_offset(self) -> u64 {
        match self {
            VmSplit::Split3G => 0xC000_0000,
            VmSplit::Split2G => 0x8000_0000,
            VmSplit::Split1G => 0x4000_0000,
        }
    }
}

/// Memory-management build options in force.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmProfile {
    /// Profile name as shown by `/proc/cmaemu/config`.
    pub name: &'static str,
    /// `MAX_ORDER` as Linux 6.1 defines it: the *number* of buddy orders
    /// (orders `0..max_order`). 12 for Debian's armmp 6.1 build
    /// (`CONFIG_ARCH_FORCE_MAX_ORDER=12`), 11 for the BiscuitOS 5.0 build.
    pub max_order: u32,
    /// `pageblock_order`. On ARM without hugetlb pages Linux uses
    /// `MAX_ORDER - 1`.
    pub pageblock_order: u32,
    /// `CONFIG_VMSPLIT_*`.
    pub vmsplit: VmSplit,
    /// `CONFIG_HIGHMEM`: whether a HighMem zone exists at all.
    pub highmem: bool,
    /// `CONFIG_ZONE_DMA`: whether a DMA zone exists (on ARM it covers
    /// lowmem up to `arm_dma_limit`, all of it on vexpress).
    pub zone_dma: bool,
    /// `CONFIG_HIGHPTE`: user page tables come from HighMem
    /// (arch/arm/include/asm/pgalloc.h `pte_alloc_one`:
    /// `GFP_PGTABLE_USER | __GFP_HIGHMEM`). Depends on `CONFIG_HIGHMEM`.
    pub highpte: bool,
}

/// Why a profile is not usable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProfileError {
    /// `max_order` outside `1..=MAX_ORDER_LIMIT`.
    MaxOrder(u32),
    /// `pageblock_order` above `max_order - 1`.
    PageblockOrder(u32),
}

impl fmt::Display for ProfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProfileError::MaxOrder(o) => {
                write!(f, "max_order {} outside 1..={}", o, MAX_ORDER_LIMIT)
            }
            ProfileError::PageblockOrder(o) => {
                write!(f, "pageblock_order {} exceeds max_order - 1", o)
            }
        }
    }
}

impl MmProfile {
    /// `debian-6.1`: 12 orders, 8 MiB pageblocks, 3G/1G split with HighMem,
    /// and ZONE_DMA (Debian's armmp config has `CONFIG_ZONE_DMA=y`; its boot
    /// log on vexpress-a9 says `DMA [mem 0x60000000-…]`, `Normal empty`),
    /// and `CONFIG_HIGHPTE=y` (its /boot/config-6.1.0-*-armmp).
    pub const DEBIAN_6_1: MmProfile = MmProfile {
        name: "debian-6.1",
        max_order: 12,
        pageblock_order: 11,
        vmsplit: VmSplit::Split3G,
        highmem: true,
        zone_dma: true,
        highpte: true,
    };

    /// `biscuitos-5.0`: 11 orders, 4 MiB pageblocks, 2G/2G split (all of a
    /// 1 GiB board is lowmem). The BiscuitOS build's CONFIG_HIGHMEM is not
    /// known; with a 2G split on a 1 GiB board it would only add an empty
    /// zone, so we leave it off.
    pub const BISCUITOS_5_0: MmProfile = MmProfile {
        name: "biscuitos-5.0",
        max_order: 11,
        pageblock_order: 10,
        vmsplit: VmSplit::Split2G,
        highmem: false,
        zone_dma: false,
        // CONFIG_HIGHPTE depends on CONFIG_HIGHMEM
        highpte: false,
    };

    /// Looks a named profile up.
    pub fn by_name(name: &str) -> Option<MmProfile> {
        match name {
            "debian-6.1" => Some(Self::DEBIAN_6_1),
            "biscuitos-5.0" => Some(Self::BISCUITOS_5_0),
            _ => None,
        }
    }

    /// Checks the invariants the allocator relies on.
    pub fn validate(&self) -> Result<(), ProfileError> {
        if self.max_order == 0 || self.max_order as usize > MAX_ORDER_LIMIT {
            return Err(ProfileError::MaxOrder(self.max_order));
        }
        if self.pageblock_order > self.max_order - 1 {
            return Err(ProfileError::PageblockOrder(self.pageblock_order));
        }
        Ok(())
    }

    /// `pageblock_nr_pages`.
    pub const fn pageblock_nr_pages(&self) -> u32 {
        1 << self.pageblock_order
    }

    /// `MAX_ORDER_NR_PAGES`.
    pub const fn max_order_nr_pages(&self) -> u32 {
        1 << (self.max_order - 1)
    }
}

impl Default for MmProfile {
    fn default() -> Self {
        Self::DEBIAN_6_1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_profiles_are_valid() {
        for p in [MmProfile::DEBIAN_6_1, MmProfile::BISCUITOS_5_0] {
            p.validate().unwrap();
            assert_eq!(MmProfile::by_name(p.name), Some(p));
        }
        assert_eq!(MmProfile::DEBIAN_6_1.pageblock_nr_pages(), 2048);
        assert_eq!(MmProfile::BISCUITOS_5_0.pageblock_nr_pages(), 1024);
        let bad = MmProfile { pageblock_order: 12, ..MmProfile::DEBIAN_6_1 };
        assert_eq!(bad.validate(), Err(ProfileError::PageblockOrder(12)));
    }
}
