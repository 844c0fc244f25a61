//! Early boot memory allocator, following Linux 6.1 `mm/memblock.c`.
//!
//! Two region arrays (`memory` and `reserved`), each sorted, disjoint and
//! minimal (neighbouring compatible regions merged), with Linux's quirks kept:
//! an empty array holds one zero-sized dummy region (`cnt == 1`), so the
//! debugfs view of an empty array prints `   0: 0x00000000..0xffffffff`.
//!
//! Simplifications, each noted where it happens: no NUMA node ids (UMA,
//! like the vexpress-a9 kernel: `memblock_get_region_node()` is always 0),
//! no mirror/hotplug-driven allocation policy, and fixed-capacity arrays
//! (`INIT_MEMBLOCK_REGIONS` = 128) that never double: Linux's
//! `memblock_double_array()` is refused until `memblock_allow_resize()`
//! and fails the same way (`-ENOMEM`) when it cannot grow.

use core::fmt;

/// Page shift of the ARM32 kernel (4 KiB pages).
pub const PAGE_SHIFT: u32 = 12;
/// Page size in bytes.
pub const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;

/// `PHYS_ADDR_MAX`: the reference kernel (Debian `armmp`, no LPAE) has a
/// 32-bit `phys_addr_t`, so every address and end is capped to 32 bits.
pub const PHYS_ADDR_MAX: u64 = 0xffff_ffff;
/// `MEMBLOCK_ALLOC_ANYWHERE` (`~(phys_addr_t)0`).
pub const MEMBLOCK_ALLOC_ANYWHERE: u64 = PHYS_ADDR_MAX;
/// `MEMBLOCK_ALLOC_ACCESSIBLE`: "up to `memblock.current_limit`".
pub const MEMBLOCK_ALLOC_ACCESSIBLE: u64 = 0;
/// `MEMBLOCK_LOW_LIMIT`.
pub const MEMBLOCK_LOW_LIMIT: u64 = 0;
/// `INIT_MEMBLOCK_REGIONS`: capacity of each region array.
pub const INIT_MEMBLOCK_REGIONS: usize = 128;
/// `SMP_CACHE_BYTES` on ARMv7 (L1 line, 64 bytes): the alignment memblock
/// falls back to when asked for `align == 0`.
pub const SMP_CACHE_BYTES: u64 = 64;

pub use cmaemu_abi::page::{Pfn, PhysAddr};

/// `%pa` of a 32-bit `phys_addr_t`: `0x` and 8 zero-padded hex digits
/// (`Pa(x)` in a format string prints what Linux's `%pa` prints).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pa(pub u64);

impl fmt::Display for Pa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#010x}", self.0)
    }
}

/// `round_down()` for a power-of-two `align`.
#[inline]
pub const fn round_down(x: u64, align: u64) -> u64 {
    x & !(align - 1)
}

/// `round_up()` / `ALIGN()` for a power-of-two `align`.
#[inline]
pub const fn round_up(x: u64, align: u64) -> u64 {
    (x.wrapping_add(align - 1)) & !(align - 1)
}

/// `enum memblock_flags`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct MemblockFlags(pub u32);

impl MemblockFlags {
    /// `MEMBLOCK_NONE`.
    pub const NONE: Self = Self(0);
    /// `MEMBLOCK_HOTPLUG`.
    pub const HOTPLUG: Self = Self(0x1);
    /// `MEMBLOCK_MIRROR`.
    pub const MIRROR: Self = Self(0x2);
    /// `MEMBLOCK_NOMAP`.
    pub const NOMAP: Self = Self(0x4);
    /// `MEMBLOCK_DRIVER_MANAGED`.
    pub const DRIVER_MANAGED: Self = Self(0x8);

    /// True when every bit of `other` is set.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0 && other.0 != 0
    }
}

/// `struct memblock_region` (no node id: UMA).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct MemblockRegion {
    pub base: u64,
    pub size: u64,
    pub flags: MemblockFlags,
}

impl MemblockRegion {
    const EMPTY: Self = Self { base: 0, size: 0, flags: MemblockFlags::NONE };

    /// Exclusive end.
    pub const fn end(&self) -> u64 {
        self.base + self.size
    }
    /// `memblock_is_nomap()`.
    pub const fn is_nomap(&self) -> bool {
        self.flags.0 & MemblockFlags::NOMAP.0 != 0
    }
}

/// Which of memblock's arrays an error or view refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemblockTypeId {
    Memory,
    Reserved,
}

impl MemblockTypeId {
    /// The array's Linux name (`type->name`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Reserved => "reserved",
        }
    }
}

/// Errors of memblock operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemblockError {
    /// A region array is full; Linux would `memblock_double_array()`, which
    /// fails (`-ENOMEM`) before `memblock_allow_resize()`.
    ArrayFull { array: MemblockTypeId, max: usize },
}

impl MemblockError {
    /// The Linux errno this error maps to.
    pub const fn errno(self) -> i32 {
        match self {
            Self::ArrayFull { .. } => -12,
        }
    }
}

impl fmt::Display for MemblockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ArrayFull { array, max } => write!(
                f,
                "memblock: Failed to double {} array from {} to {} entries !",
                array.name(),
                max,
                max * 2
            ),
        }
    }
}

/// `struct memblock_type`: a sorted, fixed-capacity array of regions.
#[derive(Clone, Debug)]
pub struct MemblockType {
    regions: [MemblockRegion; INIT_MEMBLOCK_REGIONS],
    cnt: usize,
    max: usize,
    total_size: u64,
    id: MemblockTypeId,
}

/// `memblock_cap_size()`: shrink `size` so that `base + size` does not
/// overflow `PHYS_ADDR_MAX`.
#[inline]
fn memblock_cap_size(base: u64, size: u64) -> u64 {
    core::cmp::min(size, PHYS_ADDR_MAX.saturating_sub(base))
}

/// `memblock_addrs_overlap()`.
#[inline]
fn memblock_addrs_overlap(base1: u64, size1: u64, base2: u64, size2: u64) -> bool {
    base1 < base2 + size2 && base2 < base1 + size1
}

impl MemblockType {
    /// A statically initialised array: one empty dummy entry.
    pub const fn new(id: MemblockTypeId) -> Self {
        Self {
            regions: [MemblockRegion::EMPTY; INIT_MEMBLOCK_REGIONS],
            cnt: 1,
            max: INIT_MEMBLOCK_REGIONS,
            total_size: 0,
            id,
        }
    }

    /// Same, with a smaller capacity (tests of the "array full" path).
    pub fn with_max(id: MemblockTypeId, max: usize) -> Self {
        let mut t = Self::new(id);
        t.max = max.clamp(2, INIT_MEMBLOCK_REGIONS);
        t
    }

    /// `type->cnt` (1 with the dummy entry when empty).
    pub fn cnt(&self) -> usize {
        self.cnt
    }
    /// `type->total_size`.
    pub fn total_size(&self) -> u64 {
        self.total_size
    }
    /// `type->name`.
    pub fn name(&self) -> &'static str {
        self.id.name()
    }
    /// The regions, including the dummy entry of an empty array.
    pub fn regions(&self) -> &[MemblockRegion] {
        &self.regions[..self.cnt]
    }
    /// The regions, without the dummy entry of an empty array.
    pub fn real_regions(&self) -> &[MemblockRegion] {
        if self.cnt == 1 && self.regions[0].size == 0 {
            &self.regions[..0]
        } else {
            &self.regions[..self.cnt]
        }
    }

    fn full(&self) -> MemblockError {
        MemblockError::ArrayFull { array: self.id, max: self.max }
    }

    /// `memblock_remove_region()`.
    fn memblock_remove_region(&mut self, r: usize) {
        self.total_size -= self.regions[r].size;
        self.regions.copy_within(r + 1..self.cnt, r);
        self.cnt -= 1;
        if self.cnt == 0 {
            self.cnt = 1;
            self.regions[0] = MemblockRegion::EMPTY;
        }
    }

    /// `memblock_merge_regions()`: merge neighbouring compatible regions.
    pub fn memblock_merge_regions(&mut self) {
        let mut i = 0;
        while i + 1 < self.cnt {
            let this = self.regions[i];
            let next = self.regions[i + 1];
            if this.base + this.size != next.base || this.flags != next.flags {
                debug_assert!(this.base + this.size <= next.base);
                i += 1;
                continue;
            }
            self.regions[i].size += next.size;
            self.regions.copy_within(i + 2..self.cnt, i + 1);
            self.cnt -= 1;
        }
    }

    /// `memblock_insert_region()`: caller guarantees room.
    fn memblock_insert_region(&mut self, idx: usize, base: u64, size: u64, flags: MemblockFlags) {
        debug_assert!(self.cnt < self.max);
        self.regions.copy_within(idx..self.cnt, idx + 1);
        self.regions[idx] = MemblockRegion { base, size, flags };
        self.cnt += 1;
        self.total_size += size;
    }

    /// `memblock_add_range()`: add `[base, base+size)`; overlaps with existing
    /// regions don't affect them (only the gaps are filled), then merge.
    pub fn memblock_add_range(&mut self, base: u64, size: u64, flags: MemblockFlags) -> Result<(), MemblockError> {
        let obase = base;
        let size = memblock_cap_size(base, size);
        let end = base + size;
        if size == 0 {
            return Ok(());
        }
        // special case for empty array
        if self.regions[0].size == 0 {
            debug_assert!(self.cnt == 1 && self.total_size == 0);
            self.regions[0] = MemblockRegion { base, size, flags };
            self.total_size = size;
            return Ok(());
        }
        // Worst case the new range needs cnt + 1 new slots.
        let mut insert = self.cnt * 2 + 1 < self.max;
        loop {
            let mut base = obase;
            let mut nr_new = 0usize;
            let mut idx = 0usize;
            while idx < self.cnt {
                let rgn = self.regions[idx];
                let rbase = rgn.base;
                let rend = rbase + rgn.size;
                if rbase >= end {
                    break;
                }
                if rend <= base {
                    idx += 1;
                    continue;
                }
                // @rgn overlaps. If it separates the lower part of new
                // area, insert that portion.
                if rbase > base {
                    nr_new += 1;
                    if insert {
                        self.memblock_insert_region(idx, base, rbase - base, flags);
                        idx += 1;
                    }
                }
                // area below @rend is dealt with, forget about it
                base = core::cmp::min(rend, end);
                idx += 1;
            }
            // insert the remaining portion
            if base < end {
                nr_new += 1;
                if insert {
                    self.memblock_insert_region(idx, base, end - base, flags);
                }
            }
            if nr_new == 0 {
                return Ok(());
            }
            if !insert {
                // Linux: memblock_double_array() while cnt + nr_new > max.
                if self.cnt + nr_new > self.max {
                    return Err(self.full());
                }
                insert = true;
                continue;
            }
            self.memblock_merge_regions();
            return Ok(());
        }
    }

    /// `memblock_isolate_range()`: split regions at the boundaries of
    /// `[base, base+size)`; returns the index range `[start_rgn, end_rgn)` of
    /// the regions inside.
    pub fn memblock_isolate_range(&mut self, base: u64, size: u64) -> Result<(usize, usize), MemblockError> {
        let size = memblock_cap_size(base, size);
        let end = base + size;
        let (mut start_rgn, mut end_rgn) = (0usize, 0usize);
        if size == 0 {
            return Ok((0, 0));
        }
        // we'll create at most two more regions
        if self.cnt + 2 > self.max {
            return Err(self.full());
        }
        let mut idx: isize = 0;
        while (idx as usize) < self.cnt {
            let i = idx as usize;
            let rgn = self.regions[i];
            let rbase = rgn.base;
            let rend = rbase + rgn.size;
            if rbase >= end {
                break;
            }
            if rend <= base {
                idx += 1;
                continue;
            }
            if rbase < base {
                // @rgn intersects from below. Split and continue to process
                // the next region - the new top half.
                self.regions[i].base = base;
                self.regions[i].size -= base - rbase;
                self.total_size -= base - rbase;
                self.memblock_insert_region(i, rbase, base - rbase, rgn.flags);
            } else if rend > end {
                // @rgn intersects from above. Split and redo the current
                // region - the new bottom half.
                self.regions[i].base = end;
                self.regions[i].size -= end - rbase;
                self.total_size -= end - rbase;
                self.memblock_insert_region(i, rbase, end - rbase, rgn.flags);
                idx -= 1;
            } else {
                // @rgn is fully contained, record it
                if end_rgn == 0 {
                    start_rgn = i;
                }
                end_rgn = i + 1;
            }
            idx += 1;
        }
        Ok((start_rgn, end_rgn))
    }

    /// `memblock_remove_range()`.
    pub fn memblock_remove_range(&mut self, base: u64, size: u64) -> Result<(), MemblockError> {
        let (start_rgn, end_rgn) = self.memblock_isolate_range(base, size)?;
        for i in (start_rgn..end_rgn).rev() {
            self.memblock_remove_region(i);
        }
        Ok(())
    }

    /// `memblock_overlaps_region()`.
    pub fn memblock_overlaps_region(&self, base: u64, size: u64) -> bool {
        let size = memblock_cap_size(base, size);
        self.regions()
            .iter()
            .any(|r| memblock_addrs_overlap(base, size, r.base, r.size))
    }

    /// `memblock_search()`: index of the region containing `addr`.
    pub fn memblock_search(&self, addr: u64) -> Option<usize> {
        let (mut left, mut right) = (0usize, self.cnt);
        loop {
            let mid = (left + right) / 2;
            let r = &self.regions[mid];
            if addr < r.base {
                right = mid;
            } else if addr >= r.base + r.size {
                left = mid + 1;
            } else {
                return Some(mid);
            }
            if left >= right {
                return None;
            }
        }
    }

    /// `memblock_debug_show()`: the text of
    /// `/sys/kernel/debug/memblock/{memory,reserved}` (`"%4d: %pa..%pa\n"`).
    pub fn memblock_debug_show<W: fmt::Write>(&self, m: &mut W) -> fmt::Result {
        for (i, reg) in self.regions().iter().enumerate() {
            // end = base + size - 1 in phys_addr_t arithmetic (wraps for the
            // dummy entry of an empty array)
            let end = reg.base.wrapping_add(reg.size).wrapping_sub(1) & PHYS_ADDR_MAX;
            writeln!(m, "{:4}: {}..{}", i, Pa(reg.base), Pa(end))?;
        }
        Ok(())
    }

    /// `memblock_dump()` (printed by `memblock=debug`): one line per region
    /// as Linux 6.1 prints them, without the log-level prefix.
    pub fn memblock_dump(&self, log: &mut dyn FnMut(fmt::Arguments<'_>)) {
        log(format_args!(" {}.cnt  = {:#x}", self.name(), self.cnt));
        for (idx, rgn) in self.regions().iter().enumerate() {
            let end = rgn.base.wrapping_add(rgn.size).wrapping_sub(1) & PHYS_ADDR_MAX;
            log(format_args!(
                " {}[{:#x}]\t[{}-{}], {} bytes flags: {:#x}",
                self.name(),
                idx,
                Pa(rgn.base),
                Pa(end),
                Pa(rgn.size),
                rgn.flags.0
            ));
        }
    }
}

/// `struct memblock`.
#[derive(Clone, Debug)]
pub struct Memblock {
    pub memory: MemblockType,
    pub reserved: MemblockType,
    bottom_up: bool,
    current_limit: u64,
}

impl Default for Memblock {
    fn default() -> Self {
        Self::new()
    }
}

/// One step of `__next_mem_range()` / `__next_mem_range_rev()`: the loop
/// variable that packs two indices, `u64::MAX` = not started / finished.
pub type MemRangeIdx = u64;

/// `should_skip_region()`, for the `memory` array (UMA: no node check; no
/// hotplug/movable_node policy).
fn should_skip_region(is_memory: bool, m: &MemblockRegion, flags: MemblockFlags) -> bool {
    if !is_memory {
        return false;
    }
    if flags.0 & MemblockFlags::MIRROR.0 != 0 && m.flags.0 & MemblockFlags::MIRROR.0 == 0 {
        return true;
    }
    if flags.0 & MemblockFlags::NOMAP.0 == 0 && m.is_nomap() {
        return true;
    }
    if flags.0 & MemblockFlags::DRIVER_MANAGED.0 == 0 && m.flags.0 & MemblockFlags::DRIVER_MANAGED.0 != 0 {
        return true;
    }
    false
}

/// `__next_mem_range()`: next range of `type_a` not covered by `type_b`.
pub fn next_mem_range(
    idx: &mut MemRangeIdx,
    flags: MemblockFlags,
    type_a: &MemblockType,
    type_b: Option<&MemblockType>,
) -> Option<(u64, u64)> {
    let mut idx_a = (*idx & 0xffff_ffff) as usize;
    let mut idx_b = (*idx >> 32) as usize;
    let is_memory = type_a.id == MemblockTypeId::Memory;
    while idx_a < type_a.cnt {
        let m = &type_a.regions[idx_a];
        let (m_start, m_end) = (m.base, m.base + m.size);
        if should_skip_region(is_memory, m, flags) {
            idx_a += 1;
            continue;
        }
        let Some(tb) = type_b else {
            idx_a += 1;
            *idx = idx_a as u64 | (idx_b as u64) << 32;
            return Some((m_start, m_end));
        };
        // scan areas before each reservation
        while idx_b < tb.cnt + 1 {
            let r_start = if idx_b > 0 { tb.regions[idx_b - 1].end() } else { 0 };
            let r_end = if idx_b < tb.cnt { tb.regions[idx_b].base } else { PHYS_ADDR_MAX };
            // if idx_b advanced past idx_a, break out to advance idx_a
            if r_start >= m_end {
                break;
            }
            // if the two regions intersect, we're done
            if m_start < r_end {
                let out = (m_start.max(r_start), m_end.min(r_end));
                // The region which ends first is advanced for the next
                // iteration.
                if m_end <= r_end {
                    idx_a += 1;
                } else {
                    idx_b += 1;
                }
                *idx = idx_a as u64 | (idx_b as u64) << 32;
                return Some(out);
            }
            idx_b += 1;
        }
        idx_a += 1;
    }
    *idx = u64::MAX;
    None
}

/// `__next_mem_range_rev()`: reverse of [`next_mem_range`]; start with
/// `*idx == u64::MAX`.
pub fn next_mem_range_rev(
    idx: &mut MemRangeIdx,
    flags: MemblockFlags,
    type_a: &MemblockType,
    type_b: Option<&MemblockType>,
) -> Option<(u64, u64)> {
    let mut idx_a: isize = (*idx & 0xffff_ffff) as u32 as i32 as isize;
    let mut idx_b: isize = (*idx >> 32) as u32 as i32 as isize;
    if *idx == u64::MAX {
        idx_a = type_a.cnt as isize - 1;
        idx_b = type_b.map_or(0, |t| t.cnt as isize);
    }
    let is_memory = type_a.id == MemblockTypeId::Memory;
    let pack = |a: isize, b: isize| (a as i32 as u32 as u64) | ((b as i32 as u32 as u64) << 32);
    while idx_a >= 0 {
        let m = &type_a.regions[idx_a as usize];
        let (m_start, m_end) = (m.base, m.base + m.size);
        if should_skip_region(is_memory, m, flags) {
            idx_a -= 1;
            continue;
        }
        let Some(tb) = type_b else {
            idx_a -= 1;
            *idx = pack(idx_a, idx_b);
            return Some((m_start, m_end));
        };
        while idx_b >= 0 {
            let ib = idx_b as usize;
            let r_start = if ib > 0 { tb.regions[ib - 1].end() } else { 0 };
            let r_end = if ib < tb.cnt { tb.regions[ib].base } else { PHYS_ADDR_MAX };
            if r_end <= m_start {
                break;
            }
            if m_end > r_start {
                let out = (m_start.max(r_start), m_end.min(r_end));
                if m_start >= r_start {
                    idx_a -= 1;
                } else {
                    idx_b -= 1;
                }
                *idx = pack(idx_a, idx_b);
                return Some(out);
            }
            idx_b -= 1;
        }
        idx_a -= 1;
    }
    *idx = u64::MAX;
    None
}

/// Iterator behind `for_each_free_mem_range()` /
/// `for_each_free_mem_range_reverse()`: ranges of `memory` not in `reserved`.
pub struct FreeMemRanges<'a> {
    mb: &'a Memblock,
    idx: MemRangeIdx,
    flags: MemblockFlags,
    reverse: bool,
    done: bool,
}

impl Iterator for FreeMemRanges<'_> {
    type Item = (PhysAddr, PhysAddr);
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let r = if self.reverse {
            next_mem_range_rev(&mut self.idx, self.flags, &self.mb.memory, Some(&self.mb.reserved))
        } else {
            next_mem_range(&mut self.idx, self.flags, &self.mb.memory, Some(&self.mb.reserved))
        };
        if self.idx == u64::MAX {
            self.done = true;
        }
        r.map(|(s, e)| (PhysAddr(s), PhysAddr(e)))
    }
}

impl Memblock {
    /// `struct memblock memblock = { ... }`: empty arrays, top-down,
    /// `current_limit = MEMBLOCK_ALLOC_ANYWHERE`.
    pub const fn new() -> Self {
        Self {
            memory: MemblockType::new(MemblockTypeId::Memory),
            reserved: MemblockType::new(MemblockTypeId::Reserved),
            bottom_up: false,
            current_limit: MEMBLOCK_ALLOC_ANYWHERE,
        }
    }

    /// The array named by `id`.
    pub fn type_of(&self, id: MemblockTypeId) -> &MemblockType {
        match id {
            MemblockTypeId::Memory => &self.memory,
            MemblockTypeId::Reserved => &self.reserved,
        }
    }

    /// `memblock_add()`: add `[base, base+size)` to `memory`.
    pub fn memblock_add(&mut self, base: PhysAddr, size: u64) -> Result<(), MemblockError> {
        self.memory.memblock_add_range(base.0, size, MemblockFlags::NONE)
    }

    /// `memblock_remove()`: remove `[base, base+size)` from `memory`.
    pub fn memblock_remove(&mut self, base: PhysAddr, size: u64) -> Result<(), MemblockError> {
        self.memory.memblock_remove_range(base.0, size)
    }

    /// `memblock_reserve()`: add `[base, base+size)` to `reserved`.
    pub fn memblock_reserve(&mut self, base: PhysAddr, size: u64) -> Result<(), MemblockError> {
        self.reserved.memblock_add_range(base.0, size, MemblockFlags::NONE)
    }

    /// `memblock_phys_free()`: remove `[base, base+size)` from `reserved`.
    pub fn memblock_phys_free(&mut self, base: PhysAddr, size: u64) -> Result<(), MemblockError> {
        self.reserved.memblock_remove_range(base.0, size)
    }

    /// `memblock_free()` takes a virtual address in 6.1; ours takes the
    /// physical one and is `memblock_phys_free()`.
    pub fn memblock_free(&mut self, base: PhysAddr, size: u64) -> Result<(), MemblockError> {
        self.memblock_phys_free(base, size)
    }

    /// `memblock_setclr_flag()`: isolate the range in `memory` and set or
    /// clear `flag` on its regions.
    pub fn memblock_setclr_flag(&mut self, base: PhysAddr, size: u64, set: bool, flag: MemblockFlags) -> Result<(), MemblockError> {
        let (s, e) = self.memory.memblock_isolate_range(base.0, size)?;
        for r in &mut self.memory.regions[s..e] {
            if set {
                r.flags.0 |= flag.0;
            } else {
                r.flags.0 &= !flag.0;
            }
        }
        self.memory.memblock_merge_regions();
        Ok(())
    }

    /// `memblock_mark_nomap()`: no linear mapping; still covered by the
    /// memory map (pages PageReserved), never allocated by memblock.
    pub fn memblock_mark_nomap(&mut self, base: PhysAddr, size: u64) -> Result<(), MemblockError> {
        self.memblock_setclr_flag(base, size, true, MemblockFlags::NOMAP)
    }

    /// `memblock_clear_nomap()`.
    pub fn memblock_clear_nomap(&mut self, base: PhysAddr, size: u64) -> Result<(), MemblockError> {
        self.memblock_setclr_flag(base, size, false, MemblockFlags::NOMAP)
    }

    /// `memblock_bottom_up()`.
    pub fn memblock_bottom_up(&self) -> bool {
        self.bottom_up
    }

    /// `memblock_set_bottom_up()`.
    pub fn memblock_set_bottom_up(&mut self, enable: bool) {
        self.bottom_up = enable;
    }

    /// `memblock_set_current_limit()`.
    pub fn memblock_set_current_limit(&mut self, limit: PhysAddr) {
        self.current_limit = limit.0;
    }

    /// `memblock_get_current_limit()`.
    pub fn memblock_get_current_limit(&self) -> PhysAddr {
        PhysAddr(self.current_limit)
    }

    /// `memblock_phys_mem_size()`.
    pub fn memblock_phys_mem_size(&self) -> u64 {
        self.memory.total_size
    }

    /// `memblock_reserved_size()`.
    pub fn memblock_reserved_size(&self) -> u64 {
        self.reserved.total_size
    }

    /// `memblock_start_of_DRAM()`.
    #[allow(non_snake_case)]
    pub fn memblock_start_of_DRAM(&self) -> PhysAddr {
        PhysAddr(self.memory.regions[0].base)
    }

    /// `memblock_end_of_DRAM()`.
    #[allow(non_snake_case)]
    pub fn memblock_end_of_DRAM(&self) -> PhysAddr {
        PhysAddr(self.memory.regions[self.memory.cnt - 1].end())
    }

    /// `memblock_is_region_reserved()`: does `[base, base+size)` intersect
    /// a reserved region?
    pub fn memblock_is_region_reserved(&self, base: PhysAddr, size: u64) -> bool {
        self.reserved.memblock_overlaps_region(base.0, size)
    }

    /// `memblock_is_reserved()`.
    pub fn memblock_is_reserved(&self, addr: PhysAddr) -> bool {
        self.reserved.memblock_search(addr.0).is_some()
    }

    /// `memblock_is_memory()`.
    pub fn memblock_is_memory(&self, addr: PhysAddr) -> bool {
        self.memory.memblock_search(addr.0).is_some()
    }

    /// `memblock_is_map_memory()`: memory and not NOMAP.
    pub fn memblock_is_map_memory(&self, addr: PhysAddr) -> bool {
        self.memory
            .memblock_search(addr.0)
            .is_some_and(|i| !self.memory.regions[i].is_nomap())
    }

    /// `memblock_is_region_memory()`: is `[base, base+size)` inside one
    /// memory region?
    pub fn memblock_is_region_memory(&self, base: PhysAddr, size: u64) -> bool {
        let end = base.0 + memblock_cap_size(base.0, size);
        match self.memory.memblock_search(base.0) {
            None => false,
            Some(i) => self.memory.regions[i].end() >= end,
        }
    }

    /// `for_each_free_mem_range()`: memory minus reserved, NOMAP skipped.
    pub fn free_mem_ranges(&self) -> FreeMemRanges<'_> {
        FreeMemRanges { mb: self, idx: 0, flags: MemblockFlags::NONE, reverse: false, done: false }
    }

    /// `for_each_free_mem_range_reverse()`.
    pub fn free_mem_ranges_reverse(&self) -> FreeMemRanges<'_> {
        FreeMemRanges { mb: self, idx: u64::MAX, flags: MemblockFlags::NONE, reverse: true, done: false }
    }

    /// `for_each_mem_pfn_range()`: `(PFN_UP(base), PFN_DOWN(end))` of each
    /// memory region (NOMAP included), empty ones skipped.
    pub fn mem_pfn_ranges(&self) -> impl Iterator<Item = (Pfn, Pfn)> + '_ {
        self.memory.regions().iter().filter_map(|r| {
            let s = PhysAddr(r.base).pfn_up();
            let e = PhysAddr(r.end()).pfn_down();
            (s < e).then_some((s, e))
        })
    }

    /// `for_each_reserved_mem_range()`: `[start, end)` of each reserved region.
    pub fn reserved_mem_ranges(&self) -> impl Iterator<Item = (PhysAddr, PhysAddr)> + '_ {
        self.reserved
            .regions()
            .iter()
            .map(|r| (PhysAddr(r.base), PhysAddr(r.end())))
    }

    /// `__memblock_find_range_bottom_up()`.
    fn memblock_find_range_bottom_up(&self, start: u64, end: u64, size: u64, align: u64, flags: MemblockFlags) -> u64 {
        let mut idx = 0u64;
        while let Some((ts, te)) = next_mem_range(&mut idx, flags, &self.memory, Some(&self.reserved)) {
            let this_start = ts.clamp(start, end);
            let this_end = te.clamp(start, end);
            let cand = round_up(this_start, align);
            if cand < this_end && this_end - cand >= size {
                return cand;
            }
            if idx == u64::MAX {
                break;
            }
        }
        0
    }

    /// `__memblock_find_range_top_down()`.
    fn memblock_find_range_top_down(&self, start: u64, end: u64, size: u64, align: u64, flags: MemblockFlags) -> u64 {
        let mut idx = u64::MAX;
        while let Some((ts, te)) = next_mem_range_rev(&mut idx, flags, &self.memory, Some(&self.reserved)) {
            let this_start = ts.clamp(start, end);
            let this_end = te.clamp(start, end);
            if this_end >= size {
                let cand = round_down(this_end - size, align);
                if cand >= this_start {
                    return cand;
                }
            }
            if idx == u64::MAX {
                break;
            }
        }
        0
    }

    /// `memblock_find_in_range_node()`: find a free, `align`-aligned area of
    /// `size` bytes in `[start, end)`; top-down unless bottom-up is set.
    /// Like Linux, only `end == MEMBLOCK_ALLOC_ACCESSIBLE` is replaced by
    /// `memblock.current_limit`; an explicit `end` is used as given. The
    /// first page is never returned. Returns `None` for Linux's 0.
    pub fn memblock_find_in_range_node(&self, size: u64, align: u64, start: PhysAddr, end: PhysAddr) -> Option<PhysAddr> {
        self.memblock_find_in_range_node_flags(size, align, start.0, end.0, MemblockFlags::NONE)
    }

    fn memblock_find_in_range_node_flags(&self, size: u64, align: u64, start: u64, end: u64, flags: MemblockFlags) -> Option<PhysAddr> {
        let align = if align == 0 { 1 } else { align };
        debug_assert!(align.is_power_of_two());
        // pump up @end
        let mut end = if end == MEMBLOCK_ALLOC_ACCESSIBLE { self.current_limit } else { end };
        // avoid allocating the first page
        let start = start.max(PAGE_SIZE);
        end = end.max(start);
        let found = if self.bottom_up {
            self.memblock_find_range_bottom_up(start, end, size, align, flags)
        } else {
            self.memblock_find_range_top_down(start, end, size, align, flags)
        };
        (found != 0).then_some(PhysAddr(found))
    }

    /// `memblock_find_in_range()` (static in 6.1): any node, no mirror.
    pub fn memblock_find_in_range(&self, start: PhysAddr, end: PhysAddr, size: u64, align: u64) -> Option<PhysAddr> {
        self.memblock_find_in_range_node(size, align, start, end)
    }

    /// `memblock_alloc_range_nid()`: find and reserve. `align == 0` falls
    /// back to `SMP_CACHE_BYTES` (Linux also dumps a stack). UMA: `nid` and
    /// `exact_nid` have no effect. Returns `None` for Linux's 0.
    pub fn memblock_alloc_range_nid(&mut self, size: u64, align: u64, start: PhysAddr, end: PhysAddr) -> Option<PhysAddr> {
        let align = if align == 0 { SMP_CACHE_BYTES } else { align };
        let found = self.memblock_find_in_range_node(size, align, start, end)?;
        // Linux: `if (found && !memblock_reserve(found, size)) goto done;`
        self.memblock_reserve(found, size).ok()?;
        Some(found)
    }

    /// `memblock_phys_alloc_range()`.
    pub fn memblock_phys_alloc_range(&mut self, size: u64, align: u64, start: PhysAddr, end: PhysAddr) -> Option<PhysAddr> {
        self.memblock_alloc_range_nid(size, align, start, end)
    }

    /// `memblock_phys_alloc()`: anywhere below `current_limit`.
    pub fn memblock_phys_alloc(&mut self, size: u64, align: u64) -> Option<PhysAddr> {
        self.memblock_phys_alloc_range(size, align, PhysAddr(0), PhysAddr(MEMBLOCK_ALLOC_ACCESSIBLE))
    }

    /// `memblock_alloc_internal()` / `memblock_alloc_try_nid_raw()` without
    /// the VA conversion: `max_addr` clamped to `current_limit`, and a retry
    /// without the lower limit. The kernel turns the result into a VA.
    pub fn memblock_alloc_try_nid_raw(&mut self, size: u64, align: u64, min_addr: PhysAddr, max_addr: PhysAddr) -> Option<PhysAddr> {
        let max = if max_addr.0 > self.current_limit { PhysAddr(self.current_limit) } else { max_addr };
        self.memblock_alloc_range_nid(size, align, min_addr, max)
            .or_else(|| if min_addr.0 != 0 { self.memblock_alloc_range_nid(size, align, PhysAddr(0), max) } else { None })
    }

    /// `memblock_alloc()` without the VA conversion (and without zeroing,
    /// which the kernel does through its linear map).
    pub fn memblock_alloc(&mut self, size: u64, align: u64) -> Option<PhysAddr> {
        self.memblock_alloc_try_nid_raw(size, align, PhysAddr(MEMBLOCK_LOW_LIMIT), PhysAddr(MEMBLOCK_ALLOC_ACCESSIBLE))
    }

    /// `memblock_enforce_memory_limit()` (`mem=`): truncate memory and
    /// reserved above the address where `limit` bytes of memory end.
    pub fn memblock_enforce_memory_limit(&mut self, limit: u64) -> Result<(), MemblockError> {
        if limit == 0 {
            return Ok(());
        }
        // __find_max_addr()
        let mut limit = limit;
        let mut max_addr = PHYS_ADDR_MAX;
        for r in self.memory.regions() {
            if limit <= r.size {
                max_addr = r.base + limit;
                break;
            }
            limit -= r.size;
        }
        if max_addr == PHYS_ADDR_MAX {
            return Ok(());
        }
        self.memory.memblock_remove_range(max_addr, PHYS_ADDR_MAX)?;
        self.reserved.memblock_remove_range(max_addr, PHYS_ADDR_MAX)
    }

    /// `memblock_trim_memory()`: round each memory region inward to `align`.
    pub fn memblock_trim_memory(&mut self, align: u64) {
        let mut i = 0;
        while i < self.memory.cnt {
            let r = self.memory.regions[i];
            let (start, end) = (round_up(r.base, align), round_down(r.end(), align));
            if start == r.base && end == r.end() {
                i += 1;
                continue;
            }
            if start < end {
                self.memory.total_size -= r.size - (end - start);
                self.memory.regions[i].base = start;
                self.memory.regions[i].size = end - start;
                i += 1;
            } else {
                self.memory.memblock_remove_region(i);
                if self.memory.cnt == 1 && self.memory.regions[0].size == 0 {
                    break;
                }
            }
        }
    }

    /// `memblock_debug_show()` for the array named `id`.
    pub fn memblock_debug_show<W: fmt::Write>(&self, id: MemblockTypeId, m: &mut W) -> fmt::Result {
        self.type_of(id).memblock_debug_show(m)
    }

    /// `__memblock_dump_all()` (`memblock=debug`), line by line.
    pub fn memblock_dump_all(&self, log: &mut dyn FnMut(fmt::Arguments<'_>)) {
        log(format_args!("MEMBLOCK configuration:"));
        log(format_args!(
            " memory size = {} reserved size = {}",
            Pa(self.memory.total_size),
            Pa(self.reserved.total_size)
        ));
        self.memory.memblock_dump(log);
        self.reserved.memblock_dump(log);
    }
}

#[cfg(test)]
mod tests;
