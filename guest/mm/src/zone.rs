//! Zones of an ARM32 board and where Linux puts their boundaries.
//!
//! Linux ARM (arch/arm/mm/mmu.c `adjust_lowmem_bounds`, arch/arm/mm/init.c
//! `find_limits`/`zone_sizes_init`) makes lowmem everything the kernel's
//! linear map can reach below `vmalloc_min`, and HighMem the rest.
//!
//! ZONE_DMA: Debian's `armmp` 6.1 build has `CONFIG_ZONE_DMA=y` (some of
//! its platforms need it). `zone_sizes_init` gives ZONE_DMA the lowmem below
//! `arm_dma_pfn_limit`; a machine without `dma_zone_size` (vexpress) has
//! `arm_dma_limit = 0xffffffff`, so ZONE_DMA is *all* of lowmem and Normal
//! is empty — the real kernel's boot log on this board says
//! `DMA [mem 0x60000000-…]`, `Normal empty`. The zones of that profile are
//! DMA, Normal, HighMem and the always-present (here empty) Movable zone.
//! The `biscuitos-5.0` profile (the seed articles' build) has no ZONE_DMA:
//! Normal and Movable (plus HighMem with `CONFIG_HIGHMEM`).
use crate::profile::MmProfile;
use crate::types::{Pfn, PhysAddr};
use core::fmt;

/// `enum zone_type` (the subset that exists on our board).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZoneType {
    /// `ZONE_DMA`: lowmem below `arm_dma_limit` (all of it on vexpress).
    Dma,
    /// `ZONE_NORMAL`: lowmem, permanently mapped by the kernel.
    Normal,
    /// `ZONE_HIGHMEM`.
    HighMem,
    /// `ZONE_MOVABLE` (empty unless `kernelcore=`/`movablecore=`, which we
    /// do not emulate).
    Movable,
}

impl ZoneType {
    /// `zone_names[]`.
    pub const fn name(self) -> &'static str {
        match self {
            ZoneType::Dma => "DMA",
            ZoneType::Normal => "Normal",
            ZoneType::HighMem => "HighMem",
            ZoneType::Movable => "Movable",
        }
    }
    /// `is_highmem_idx`.
    pub const fn is_highmem(self) -> bool {
        matches!(self, ZoneType::HighMem)
    }
    /// `sysctl_lowmem_reserve_ratio[]` default for this zone.
    pub const fn lowmem_reserve_ratio(self) -> u64 {
        match self {
            ZoneType::Dma => 256,
            ZoneType::Normal => 32,
            ZoneType::HighMem | ZoneType::Movable => 0,
        }
    }
}

/// Most zones a node can have in any profile.
pub const MAX_NR_ZONES_LIMIT: usize = 4;

/// The zones that exist (`MAX_NR_ZONES` of the build), in index order.
pub fn zone_types(profile: &MmProfile) -> &'static [ZoneType] {
    match (profile.zone_dma, profile.highmem) {
        (true, true) => &[ZoneType::Dma, ZoneType::Normal, ZoneType::HighMem, ZoneType::Movable],
        (true, false) => &[ZoneType::Dma, ZoneType::Normal, ZoneType::Movable],
        (false, true) => &[ZoneType::Normal, ZoneType::HighMem, ZoneType::Movable],
        (false, false) => &[ZoneType::Normal, ZoneType::Movable],
    }
}

/// `arm_dma_pfn_limit` (arch/arm/mm/init.c `setup_dma_zone`): without a
/// machine `dma_zone_size`, `arm_dma_limit` is 0xffffffff.
pub const ARM_DMA_PFN_LIMIT: u32 = 0xffff_ffff >> 12;

/// `VMALLOC_END` (arch/arm/include/asm/pgtable.h).
pub const VMALLOC_END: u64 = 0xff80_0000;
/// `VMALLOC_OFFSET`: the 8 MiB hole between lowmem and vmalloc.
pub const VMALLOC_OFFSET: u64 = 8 << 20;
/// Default vmalloc area: 240 MiB.
pub const VMALLOC_DEFAULT: u64 = 240 << 20;
/// `PMD_SIZE` with the 2-level ARM page tables.
pub const PMD_SIZE: u64 = 2 << 20;

/// Bad memory layouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZoneError {
    /// No RAM range was given.
    NoMemory,
    /// A range is empty, unordered, or overlaps the previous one.
    BadRange(PhysAddr, PhysAddr),
    /// The first RAM range is below the linear map's reach.
    NoLowmem,
}

impl fmt::Display for ZoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ZoneError::NoMemory => f.write_str("no memory ranges"),
            ZoneError::BadRange(s, e) => {
                write!(f, "bad memory range {:#x}-{:#x}", s.0, e.0)
            }
            ZoneError::NoLowmem => f.write_str("no RAM below the lowmem limit"),
        }
    }
}

/// `vmalloc_min` as `arch/arm/mm/mmu.c` sets it: by default
/// `VMALLOC_END - (240 << 20) - VMALLOC_OFFSET`; with `vmalloc=<size>`
/// (`early_vmalloc`) `VMALLOC_END - size`, size clamped to
/// `[16 MiB, VMALLOC_END - (PAGE_OFFSET + 32 MiB + VMALLOC_OFFSET)]`.
pub fn vmalloc_min(profile: &MmProfile, vmalloc: Option<u64>) -> u64 {
    match vmalloc {
        None => VMALLOC_END - VMALLOC_DEFAULT - VMALLOC_OFFSET,
        Some(size) => {
            let max = VMALLOC_END - (profile.vmsplit.page_offset() + (32 << 20) + VMALLOC_OFFSET);
            VMALLOC_END - size.clamp(16 << 20, max)
        }
    }
}

/// Follows `adjust_lowmem_bounds`: returns `arm_lowmem_limit`, the physical
/// address where lowmem ends. `memory` is memblock.memory (sorted ranges
/// `[start, end)`); `PHYS_OFFSET` is the start of the first range.
///
/// `vmalloc_limit = vmalloc_min - PAGE_OFFSET + PHYS_OFFSET`: with RAM at
/// 0x60000000 and the 3G split that is 0xF0000000 - 0xC0000000 + 0x60000000
/// = 0x90000000.
pub fn adjust_lowmem_bounds(
    profile: &MmProfile,
    memory: &[(PhysAddr, PhysAddr)],
    vmalloc: Option<u64>,
) -> Result<PhysAddr, ZoneError> {
    let phys_offset = memory.first().ok_or(ZoneError::NoMemory)?.0 .0;
    let vmalloc_limit = vmalloc_min(profile, vmalloc) - profile.vmsplit.page_offset() + phys_offset;
    let mut lowmem_limit = 0u64;
    for &(s, e) in memory {
        if s.0 < vmalloc_limit && e.0 > lowmem_limit {
            lowmem_limit = vmalloc_limit.min(e.0);
        }
    }
    if lowmem_limit == 0 {
        return Err(ZoneError::NoLowmem);
    }
    Ok(PhysAddr(lowmem_limit))
}

/// One zone's span.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZoneSpan {
    /// Which zone.
    pub kind: ZoneType,
    /// `zone_start_pfn` (0 for an empty zone, as Linux sets it).
    pub start: Pfn,
    /// `zone_end_pfn` (exclusive).
    pub end: Pfn,
    /// `present_pages`: frames of memblock.memory inside the span.
    pub present: u32,
}

impl ZoneSpan {
    /// `spanned_pages`.
    pub const fn spanned(&self) -> u32 {
        self.end.0 - self.start.0
    }
}

/// The node's zones as `free_area_init` computes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZoneLayout {
    /// `arm_lowmem_limit`.
    pub lowmem_limit: PhysAddr,
    /// First RAM frame (`min_low_pfn`).
    pub min_pfn: Pfn,
    /// `max_low_pfn`.
    pub max_low_pfn: Pfn,
    /// `max_pfn` (end of RAM, or of lowmem without `CONFIG_HIGHMEM`).
    pub max_pfn: Pfn,
    /// Zones in index order; only `nr_zones` are meaningful.
    pub zones: [ZoneSpan; MAX_NR_ZONES_LIMIT],
    /// `MAX_NR_ZONES` of the build.
    pub nr_zones: usize,
}

impl ZoneLayout {
    /// The span of a zone type, if the build has it.
    pub fn zone(&self, kind: ZoneType) -> Option<&ZoneSpan> {
        self.zones[..self.nr_zones].iter().find(|z| z.kind == kind)
    }
}

/// Follows arch/arm/mm/init.c `find_limits` + `zone_sizes_init` and
/// mm/page_alloc.c `free_area_init`: DMA = `[min_pfn, min(arm_dma_pfn_limit,
/// max_low))`, Normal = the rest of `[min_pfn, max_low)` (empty on vexpress
/// with ZONE_DMA), HighMem = `[max_low, max_high)`, Movable empty. Without `CONFIG_HIGHMEM` Linux
/// `memblock_remove`s the RAM above lowmem ("Ignoring RAM at ...").
pub fn zone_sizes_init(
    profile: &MmProfile,
    memory: &[(PhysAddr, PhysAddr)],
    vmalloc: Option<u64>,
) -> Result<ZoneLayout, ZoneError> {
    let mut prev_end = 0u64;
    for &(s, e) in memory {
        if e.0 <= s.0 || s.0 < prev_end {
            return Err(ZoneError::BadRange(s, e));
        }
        prev_end = e.0;
    }
    let lowmem_limit = adjust_lowmem_bounds(profile, memory, vmalloc)?;
    let min_pfn = memory[0].0.pfn_up();
    let max_low = lowmem_limit.pfn_down();
    let max_high = if profile.highmem {
        PhysAddr(prev_end).pfn_down()
    } else {
        max_low
    };
    let present = |s: Pfn, e: Pfn| -> u32 {
        memory
            .iter()
            .map(|&(ms, me)| {
                let a = ms.pfn_up().0.max(s.0);
                let b = me.pfn_down().0.min(e.0);
                b.saturating_sub(a)
            })
            .sum()
    };
    let span = |kind, s: Pfn, e: Pfn| {
        if e.0 > s.0 {
            ZoneSpan { kind, start: s, end: e, present: present(s, e) }
        } else {
            ZoneSpan { kind, start: Pfn(0), end: Pfn(0), present: 0 }
        }
    };
    let types = zone_types(profile);
    let mut zones = [span(ZoneType::Movable, Pfn(0), Pfn(0)); MAX_NR_ZONES_LIMIT];
    let dma_end = if profile.zone_dma { Pfn(ARM_DMA_PFN_LIMIT.min(max_low.0)) } else { min_pfn };
    for (i, &t) in types.iter().enumerate() {
        zones[i] = match t {
            ZoneType::Dma => span(t, min_pfn, dma_end),
            ZoneType::Normal => span(t, Pfn(dma_end.0.max(min_pfn.0)), max_low),
            ZoneType::HighMem => span(t, max_low, max_high),
            ZoneType::Movable => span(t, Pfn(0), Pfn(0)),
        };
    }
    Ok(ZoneLayout {
        lowmem_limit,
        min_pfn,
        max_low_pfn: max_low,
        max_pfn: max_high,
        zones,
        nr_zones: types.len(),
    })
}

impl ZoneLayout {
    /// The lines `free_area_init` prints (mm/page_alloc.c): `Zone ranges:`
    /// with each zone but Movable (`  %-8s ` then `empty` or
    /// `[mem %#018Lx-%#018Lx]`), `Movable zone start for each node` (no
    /// `kernelcore=`/`movablecore=`: no node line), `Early memory node
    /// ranges` with each memblock.memory region (`for_each_mem_pfn_range`:
    /// regions split by flags, e.g. `no-map`, are printed separately) and
    /// `Initmem setup node 0 [mem …]` (`free_area_init_node`: the node's
    /// span).
    pub fn free_area_init_lines(&self, memory: &[(PhysAddr, PhysAddr)], out: &mut dyn FnMut(fmt::Arguments<'_>)) {
        let mem = |s: u64, e: u64| MemRange(s, e);
        out(format_args!("Zone ranges:"));
        for z in &self.zones[..self.nr_zones] {
            if z.kind == ZoneType::Movable {
                continue;
            }
            if z.spanned() == 0 {
                out(format_args!("  {:<8} empty", z.kind.name()));
            } else {
                out(format_args!("  {:<8} {}", z.kind.name(), mem((z.start.0 as u64) << 12, (z.end.0 as u64) << 12)));
            }
        }
        out(format_args!("Movable zone start for each node"));
        out(format_args!("Early memory node ranges"));
        for &(s, e) in memory {
            let (sp, ep) = (s.pfn_up().0 as u64, e.pfn_down().0 as u64);
            if ep > sp {
                out(format_args!("  node {:>3}: {}", 0, mem(sp << 12, ep << 12)));
            }
        }
        out(format_args!("Initmem setup node 0 {}", mem((self.min_pfn.0 as u64) << 12, (self.max_pfn.0 as u64) << 12)));
    }
}

/// `[mem %#018Lx-%#018Lx]` of `[start, end)`.
struct MemRange(u64, u64);

impl fmt::Display for MemRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[mem {:#018x}-{:#018x}]", self.0, self.1 - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAM_1G: [(PhysAddr, PhysAddr); 1] = [(PhysAddr(0x6000_0000), PhysAddr(0xA000_0000))];

    #[test]
    fn vexpress_1g_debian_has_all_lowmem_in_dma_and_highmem_above_0x90000000() {
        let l = zone_sizes_init(&MmProfile::DEBIAN_6_1, &RAM_1G, None).unwrap();
        assert_eq!(vmalloc_min(&MmProfile::DEBIAN_6_1, None), 0xF000_0000);
        assert_eq!(l.lowmem_limit, PhysAddr(0x9000_0000));
        let d = l.zone(ZoneType::Dma).unwrap();
        let n = l.zone(ZoneType::Normal).unwrap();
        let h = l.zone(ZoneType::HighMem).unwrap();
        let m = l.zone(ZoneType::Movable).unwrap();
        assert_eq!((d.start, d.end), (Pfn(0x60000), Pfn(0x90000)));
        assert_eq!((n.spanned(), n.start), (0, Pfn(0)));
        assert_eq!((h.start, h.end), (Pfn(0x90000), Pfn(0xA0000)));
        assert_eq!(d.present, 768 << 8); // 768 MiB lowmem
        assert_eq!(h.present, 256 << 8); // 256 MiB highmem
        assert_eq!((m.spanned(), m.start), (0, Pfn(0)));
        assert_eq!(l.nr_zones, 4);
    }

    /// The lines of Debian's armmp 6.1 on QEMU vexpress-a9 with 1 GiB.
    #[test]
    fn free_area_init_lines_read_as_debians_boot_log() {
        let l = zone_sizes_init(&MmProfile::DEBIAN_6_1, &RAM_1G, None).unwrap();
        let mut s = alloc_lines(&l, &RAM_1G);
        assert_eq!(
            s,
            "Zone ranges:\n  DMA      [mem 0x0000000060000000-0x000000008fffffff]\n  Normal   empty\n  HighMem  [mem 0x0000000090000000-0x000000009fffffff]\nMovable zone start for each node\nEarly memory node ranges\n  node   0: [mem 0x0000000060000000-0x000000009fffffff]\nInitmem setup node 0 [mem 0x0000000060000000-0x000000009fffffff]\n"
        );
        // 256 MiB, an area marked no-map in the middle: two node lines
        let ram = [(PhysAddr(0x6000_0000), PhysAddr(0x6800_0000)), (PhysAddr(0x6800_0000), PhysAddr(0x7000_0000))];
        let l = zone_sizes_init(&MmProfile::DEBIAN_6_1, &ram, None).unwrap();
        s = alloc_lines(&l, &ram);
        assert!(s.contains("  HighMem  empty\n"), "{s}");
        assert!(s.contains("  node   0: [mem 0x0000000060000000-0x0000000067ffffff]\n  node   0: [mem 0x0000000068000000-0x000000006fffffff]\n"), "{s}");
        // the seed's build: no DMA zone
        let l = zone_sizes_init(&MmProfile::BISCUITOS_5_0, &RAM_1G, None).unwrap();
        assert!(alloc_lines(&l, &RAM_1G).starts_with("Zone ranges:\n  Normal   [mem 0x0000000060000000-0x000000009fffffff]\nMovable"));
    }

    fn alloc_lines(l: &ZoneLayout, mem: &[(PhysAddr, PhysAddr)]) -> String {
        use core::fmt::Write;
        let mut s = String::new();
        l.free_area_init_lines(mem, &mut |a| {
            let _ = writeln!(s, "{a}");
        });
        s
    }

    #[test]
    fn vexpress_1g_biscuitos_is_all_lowmem() {
        let l = zone_sizes_init(&MmProfile::BISCUITOS_5_0, &RAM_1G, None).unwrap();
        assert_eq!(l.lowmem_limit, PhysAddr(0xA000_0000));
        let n = l.zone(ZoneType::Normal).unwrap();
        assert_eq!((n.start, n.end), (Pfn(0x60000), Pfn(0xA0000)));
        assert!(l.zone(ZoneType::HighMem).is_none());
        assert_eq!(l.nr_zones, 2);
    }

    #[test]
    fn vmalloc_param_moves_the_boundary() {
        // vmalloc=512M: vmalloc_min = 0xff800000 - 0x20000000 = 0xdf800000,
        // limit = 0xdf800000 - 0xc0000000 + 0x60000000 = 0x7f800000.
        let l = zone_sizes_init(&MmProfile::DEBIAN_6_1, &RAM_1G, Some(512 << 20)).unwrap();
        assert_eq!(l.lowmem_limit, PhysAddr(0x7f80_0000));
        // small RAM entirely below the limit: no highmem pages.
        let small = [(PhysAddr(0x6000_0000), PhysAddr(0x7000_0000))];
        let l = zone_sizes_init(&MmProfile::DEBIAN_6_1, &small, None).unwrap();
        assert_eq!(l.zone(ZoneType::HighMem).unwrap().spanned(), 0);
        assert_eq!(
            zone_sizes_init(&MmProfile::DEBIAN_6_1, &[], None),
            Err(ZoneError::NoMemory)
        );
    }
}
