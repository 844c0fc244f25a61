//! A validated copy of the guest's mm state, read straight from guest
//! physical memory through the descriptor (`cmaemu_abi::desc`).
//!
//! Everything read is untrusted: every address and length is checked
//! against RAM, every count against what RAM could hold, and a bad value
//! yields an [`IntrospectError`] that names the field. Nothing here panics
//! on hostile data.
use crate::memory::GuestRam;
use crate::memory::walk::MmuRegs;
use cmaemu_abi::desc::{
    name_bytes, pin_holder_name, slice_as_bytes_mut, zeroed, AddressSpaceRecord, CmaAreaRecord, GuestDesc, PinRecord, Pod, ZoneRecord, AS_LIVE, CMA_AREA_ACTIVE,
    DESC_MAGIC, DESC_MAX_ORDER, DESC_MAX_ZONES, DESC_VERSION,
};
use cmaemu_abi::page::*;
use cmaemu_abi::trace::TRACE_RECORD_SIZE;
use std::fmt;

/// Most CMA areas a descriptor may list.
pub const MAX_AREAS: u32 = 64;
/// Most address spaces a descriptor may list.
pub const MAX_ADDRESS_SPACES: u32 = 4096;
/// Largest pin table a descriptor may announce.
pub const MAX_PINS: u32 = 4096;

/// Why a descriptor (or something it points to) was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IntrospectError {
    /// `what` at `[pa, pa + len)` is not inside guest RAM.
    NotInRam { what: &'static str, pa: u64, len: u64 },
    BadMagic { pa: u64, got: u32 },
    BadVersion { got: u32 },
    /// A record size field disagrees with this build's ABI.
    BadSize { field: &'static str, got: u32, want: u32 },
    /// A field holds a value that cannot be right.
    Absurd { field: &'static str, value: u64, why: String },
    /// The trace ring header is unusable.
    Ring(String),
}

impl fmt::Display for IntrospectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IntrospectError::NotInRam { what, pa, len } => write!(f, "guest descriptor: {what} at {pa:#x} (+{len:#x} bytes) is outside guest RAM"),
            IntrospectError::BadMagic { pa, got } => write!(f, "guest descriptor at {pa:#x}: bad magic {got:#010x} (want {DESC_MAGIC:#010x} \"CMAD\")"),
            IntrospectError::BadVersion { got } => write!(f, "guest descriptor: version {got}, this host speaks {DESC_VERSION}"),
            IntrospectError::BadSize { field, got, want } => write!(f, "guest descriptor: field `{field}` is {got}, this host's ABI has {want}"),
            IntrospectError::Absurd { field, value, why } => write!(f, "guest descriptor: field `{field}` = {value:#x} is absurd: {why}"),
            IntrospectError::Ring(s) => write!(f, "guest trace ring: {s}"),
        }
    }
}

impl std::error::Error for IntrospectError {}

type R<T> = Result<T, IntrospectError>;

fn absurd(field: &'static str, value: u64, why: impl Into<String>) -> IntrospectError {
    IntrospectError::Absurd { field, value, why: why.into() }
}

fn read_array<T: Pod>(ram: &GuestRam, what: &'static str, pa: u64, n: u64) -> R<Vec<T>> {
    let mut v = Vec::new();
    read_array_into(ram, what, pa, n, &mut v)?;
    Ok(v)
}

/// Read `n` records at `pa` into `v` (its allocation is reused): one
/// plain copy out of guest RAM, no per-record decoding.
fn read_array_into<T: Pod>(ram: &GuestRam, what: &'static str, pa: u64, n: u64, v: &mut Vec<T>) -> R<()> {
    read_array_chunked(ram, what, pa, n, v, usize::MAX, |_, _| {})
}

/// [`read_array_into`] `chunk` records at a time, calling `seen(v, range)`
/// after each chunk is copied (while it is still in the host's cache).
fn read_array_chunked<T: Pod>(ram: &GuestRam, what: &'static str, pa: u64, n: u64, v: &mut Vec<T>, chunk: usize, mut seen: impl FnMut(&[T], std::ops::Range<usize>)) -> R<()> {
    let size = std::mem::size_of::<T>();
    let len = n.saturating_mul(size as u64);
    if len > ram.len() as u64 || !ram.contains(pa, len as usize) {
        return Err(IntrospectError::NotInRam { what, pa, len });
    }
    if v.len() != n as usize {
        v.clear();
        v.resize(n as usize, zeroed());
    }
    let mut at = 0usize;
    while at < v.len() {
        let end = at.saturating_add(chunk.max(1)).min(v.len());
        ram.read(pa + (at * size) as u64, slice_as_bytes_mut(&mut v[at..end])).map_err(|_| IntrospectError::NotInRam { what, pa, len })?;
        seen(v.as_slice(), at..end);
        at = end;
    }
    Ok(())
}

/// Mark in `free` every page inside a free buddy block or a per-cpu list
/// block whose head is in `heads` (`free` is as long as `pages`).
fn mark_free(pages: &[PageRecord], heads: std::ops::Range<usize>, max_order: u32, free: &mut [bool]) {
    let n = pages.len();
    for i in heads {
        let p = &pages[i];
        if (p.has(PG_BUDDY) || p.has(PG_PCP)) && p.private < max_order {
            let len = 1usize << p.private;
            let e = (i + len).min(n);
            free[i..e].iter_mut().for_each(|f| *f = true);
        }
    }
}

/// One CMA area as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CmaArea {
    /// Index in the guest's table (what trace records and owner tags use).
    pub index: usize,
    pub name: String,
    pub base_pfn: u32,
    pub count: u32,
    pub order_per_bit: u32,
    pub active: bool,
    pub bitmap: Vec<u32>,
    pub record: CmaAreaRecord,
}

impl CmaArea {
    /// Whether `pfn` is inside the area.
    pub fn contains(&self, pfn: u32) -> bool {
        pfn >= self.base_pfn && (pfn as u64) < self.base_pfn as u64 + self.count as u64
    }
    /// The bitmap bit covering `pfn` (None outside the area / bitmap).
    pub fn bit(&self, pfn: u32) -> Option<bool> {
        if !self.contains(pfn) {
            return None;
        }
        let bit = ((pfn - self.base_pfn) >> self.order_per_bit) as usize;
        self.bitmap.get(bit / 32).map(|w| (w >> (bit % 32)) & 1 != 0)
    }
    /// Bits in the bitmap that matter (`cma_bitmap_maxno`).
    pub fn nbits(&self) -> u32 {
        self.count >> self.order_per_bit
    }
}

/// A validated snapshot of the guest's mm state.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub desc_pa: u64,
    pub desc: GuestDesc,
    /// `pages[i]` is frame `desc.base_pfn + i`.
    pub pages: Vec<PageRecord>,
    pub pageblock_words: Vec<u32>,
    pub zones: Vec<ZoneRecord>,
    pub cma: Vec<CmaArea>,
    pub address_spaces: Vec<AddressSpaceRecord>,
    /// The pins the guest's pin holders keep by frame (its pin table;
    /// empty without one): the owners of a pinned page no PTE maps.
    pub pins: Vec<PinRecord>,
    /// `mm_seq` was even and unchanged across the whole read.
    pub stable: bool,
    /// For each page: inside a free buddy block (head with `PG_BUDDY`) or a
    /// block on a per-cpu list (head with `PG_PCP`).
    free: Vec<bool>,
    /// The page array was read by [`Snapshot::reread_tracked`] with RAM
    /// watching it: the next tracked re-read copies only what was written.
    tracked: bool,
    /// Free pages per pageblock (from the first pageblock of the array),
    /// kept by [`Snapshot::reread_tracked`] (empty otherwise).
    pb_free: Vec<u32>,
    /// Which pages the whole-state checks report on, kept by
    /// [`Snapshot::reread_tracked`] (None for a snapshot read otherwise:
    /// the checks then scan every page).
    index: Option<PageIndex>,
}

/// One bit per page of the array.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PageBits(Vec<u64>);

impl PageBits {
    fn with_len(n: usize) -> PageBits {
        PageBits(vec![0; n.div_ceil(64)])
    }
    fn set(&mut self, i: usize, on: bool) {
        let (w, b) = (i / 64, i % 64);
        if on {
            self.0[w] |= 1 << b;
        } else {
            self.0[w] &= !(1 << b);
        }
    }
    /// Whether bit `i` is set.
    pub fn get(&self, i: usize) -> bool {
        self.0.get(i / 64).is_some_and(|w| (w >> (i % 64)) & 1 != 0)
    }
    /// The set bits in `range`, in ascending order.
    pub fn ones(&self, range: std::ops::Range<usize>) -> impl Iterator<Item = usize> + '_ {
        let end = range.end.min(self.0.len() * 64);
        let mut w = range.start / 64;
        let mut cur = if range.start < end { self.0[w] & (u64::MAX << (range.start % 64)) } else { 0 };
        let last = end.saturating_sub(1) / 64;
        std::iter::from_fn(move || loop {
            if range.start >= end {
                return None;
            }
            if cur != 0 {
                let i = w * 64 + cur.trailing_zeros() as usize;
                cur &= cur - 1;
                return (i < end).then_some(i);
            }
            if w >= last {
                return None;
            }
            w += 1;
            cur = self.0[w];
        })
    }
}

/// Which pages of the array the whole-state checks must look at, so that
/// they visit those instead of every page (what each bit means mirrors the
/// condition of the check that uses it: `verify::integrity`,
/// `verify::ownership`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PageIndex {
    /// Free block heads: `PG_BUDDY` or `PG_PCP`.
    pub heads: PageBits,
    /// User pages in use: refcount > 0, not `PG_BUDDY`, owned by a task.
    pub user: PageBits,
    /// Pages in a state no free page may have (a reference, an owner, a
    /// mapping, `PG_RESERVED`, LRU/anon/slab flags).
    pub busy: PageBits,
    /// Unmovable pages in use (not a free head; owned by the kernel or a
    /// page table, or slab; a reference): what a CMA pageblock must not hold.
    pub unmovable: PageBits,
}

impl PageIndex {
    fn build(pages: &[PageRecord]) -> PageIndex {
        let n = pages.len();
        let mut ix = PageIndex { heads: PageBits::with_len(n), user: PageBits::with_len(n), busy: PageBits::with_len(n), unmovable: PageBits::with_len(n) };
        for (i, p) in pages.iter().enumerate() {
            ix.update(i, p);
        }
        ix
    }
    fn update(&mut self, i: usize, p: &PageRecord) {
        let head = is_free_head(p);
        self.heads.set(i, head);
        self.unmovable.set(i, !head && is_unmovable_in_use(p));
        self.user.set(i, is_user_in_use(p));
        self.busy.set(i, is_busy(p));
    }
}

/// A free block's head: on the buddy lists (`PG_BUDDY`) or a per-CPU list
/// (`PG_PCP`).
pub fn is_free_head(p: &PageRecord) -> bool {
    p.has(PG_BUDDY) || p.has(PG_PCP)
}

/// An unmovable page in use: owned by the kernel or a page table, or slab,
/// with a reference (what a MIGRATE_CMA pageblock must not hold).
pub fn is_unmovable_in_use(p: &PageRecord) -> bool {
    let k = p.owner & OWNER_KIND_MASK;
    (k == OWNER_KIND_KERNEL || k == OWNER_KIND_PGTABLE || p.has(PG_SLAB)) && p.refcount > 0
}

/// A user page in use: a reference, not a buddy block, owned by a task.
pub fn is_user_in_use(p: &PageRecord) -> bool {
    p.refcount > 0 && !p.has(PG_BUDDY) && p.owner & OWNER_KIND_MASK == OWNER_KIND_USER
}

/// A state no free page may have: a reference, an owner, a mapping,
/// `PG_RESERVED`, or LRU/anon/slab flags.
pub fn is_busy(p: &PageRecord) -> bool {
    p.refcount != 0 || p.owner != OWNER_NONE || p.mapcount != -1 || p.has(PG_RESERVED) || p.flags & (PG_LRU | PG_ANON | PG_SLAB) != 0
}

/// `v`'s ranges sorted and merged where they overlap or touch (each index
/// once).
pub fn merge_ranges(mut v: Vec<std::ops::Range<usize>>) -> Vec<std::ops::Range<usize>> {
    v.sort_unstable_by_key(|r| r.start);
    let mut merged: Vec<std::ops::Range<usize>> = Vec::with_capacity(v.len());
    for r in v {
        match merged.last_mut() {
            Some(m) if r.start <= m.end => m.end = m.end.max(r.end),
            _ => merged.push(r),
        }
    }
    merged
}

/// Counters for one point in time (what the "C" trace events plot).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MmCounters {
    /// Free pages by the migrate type of the pageblock they sit in.
    pub free_per_mt: [u64; MIGRATE_TYPES],
    /// Pageblocks by migrate type.
    pub pageblocks_per_mt: [u32; MIGRATE_TYPES],
    /// Pages allocated in each CMA area (set bitmap bits × 2^order_per_bit),
    /// in the descriptor's area order.
    pub cma_used: Vec<u64>,
}

/// What one page frame holds, as the maps and the report draw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum PageState {
    /// Inside a free buddy block.
    Free = 0,
    /// `PG_reserved` (memblock-reserved, kernel image, holes).
    Reserved = 1,
    /// Allocated to the kernel (slab, page tables' neighbours, other).
    Kernel = 2,
    /// A movable user page (LRU/anon): what migration moves.
    User = 3,
    /// Allocated from a CMA area (its bitmap bit is set).
    CmaAllocated = 4,
    /// Owned by a device (a DMA buffer).
    Device = 5,
    /// A page-table page.
    PageTable = 6,
}

impl PageState {
    /// Every state, by code.
    pub const ALL: [PageState; 7] =
        [PageState::Free, PageState::Reserved, PageState::Kernel, PageState::User, PageState::CmaAllocated, PageState::Device, PageState::PageTable];
    /// Short name (legends, JSON).
    pub fn name(self) -> &'static str {
        match self {
            PageState::Free => "free",
            PageState::Reserved => "reserved",
            PageState::Kernel => "kernel",
            PageState::User => "user (movable)",
            PageState::CmaAllocated => "CMA allocated",
            PageState::Device => "device (DMA buffer)",
            PageState::PageTable => "page table",
        }
    }
    /// The state with code `c`.
    pub fn from_code(c: u8) -> Option<PageState> {
        Self::ALL.get(c as usize).copied()
    }
}

/// Names of the migrate types, as `/proc/pagetypeinfo` prints them.
pub const MT_NAMES: [&str; MIGRATE_TYPES] = ["Unmovable", "Movable", "Reclaimable", "HighAtomic", "CMA", "Isolate"];

impl Snapshot {
    /// A snapshot of state read some other way (a real Linux kernel's
    /// structures, `introspect::linux`): no descriptor in guest RAM
    /// (`desc_pa` 0), the free map computed as for a read one.
    pub fn from_parts(desc: GuestDesc, pages: Vec<PageRecord>, pageblock_words: Vec<u32>, cma: Vec<CmaArea>, stable: bool) -> Snapshot {
        let zones = desc.zones[..(desc.nr_zones as usize).min(DESC_MAX_ZONES)].to_vec();
        let mut s = Snapshot { desc_pa: 0, desc, pages, pageblock_words, zones, cma, address_spaces: Vec::new(), pins: Vec::new(), stable, free: Vec::new(), tracked: false, index: None, pb_free: Vec::new() };
        s.compute_free();
        s
    }

    /// Read and validate only the descriptor.
    pub fn read_desc(ram: &GuestRam, desc_pa: u64) -> R<GuestDesc> {
        let sz = std::mem::size_of::<GuestDesc>() as u64;
        // read straight into the record (no buffer per read: the CPU's TLB
        // helpers read the descriptor at every doorbell)
        let mut d: GuestDesc = zeroed();
        if !ram.contains(desc_pa, sz as usize) {
            return Err(IntrospectError::NotInRam { what: "descriptor", pa: desc_pa, len: sz });
        }
        ram.read(desc_pa, slice_as_bytes_mut(std::slice::from_mut(&mut d))).map_err(|_| IntrospectError::NotInRam { what: "descriptor", pa: desc_pa, len: sz })?;
        validate_desc(ram, desc_pa, &d)?;
        Ok(d)
    }

    /// Find a descriptor by scanning RAM pages for one that validates
    /// (when the guest did not announce it).
    pub fn locate(ram: &GuestRam) -> Option<u64> {
        let mut pa = ram.base();
        let end = ram.base() + ram.len() as u64;
        while pa + 4096 <= end {
            if ram.read_u32(pa) == Some(DESC_MAGIC) && Self::read_desc(ram, pa).is_ok() {
                return Some(pa);
            }
            pa += 4096;
        }
        None
    }

    /// Read everything the descriptor at `desc_pa` describes.
    pub fn read(ram: &GuestRam, desc_pa: u64) -> R<Snapshot> {
        Self::read_reusing(ram, desc_pa, Vec::new(), Vec::new()).map_err(|e| e.0)
    }

    /// Read the snapshot again into `self` (its page array and free map
    /// allocations are reused: a 1 GiB board's page array is 8 MiB).
    /// On error `self` is left as it was.
    pub fn reread(&mut self, ram: &GuestRam) -> R<()> {
        let (pages, free) = (std::mem::take(&mut self.pages), std::mem::take(&mut self.free));
        match Self::read_reusing(ram, self.desc_pa, pages, free) {
            Ok(s) => {
                *self = s;
                Ok(())
            }
            Err((e, pages, free)) => {
                (self.pages, self.free) = (pages, free);
                Err(e)
            }
        }
    }

    /// [`Snapshot::reread`], copying only the 4 KiB windows of the page
    /// array written since the last tracked re-read, and recomputing the
    /// free map only where a free block's head changed. The first tracked
    /// re-read (or one after the array moved) watches the array in RAM's
    /// dirty log ([`GuestRam::watch_writes`]) and reads it whole. RAM's
    /// log has one reader: this must be the only snapshot re-read this way
    /// from `ram`. The result is the same as a full re-read's. `changed`
    /// receives (not necessarily sorted or disjoint) index ranges of the
    /// page array outside which no record and no free mark changed.
    /// On error `self` is left as it was.
    pub fn reread_tracked(&mut self, ram: &GuestRam, changed: &mut Vec<std::ops::Range<usize>>) -> R<()> {
        let d = Self::read_desc(ram, self.desc_pa)?;
        let (pageblock_words, cma, address_spaces, pins) = Self::read_tables(ram, &d)?;
        let n = d.nr_pages as usize;
        let arr_pa = d.page_array_pa as u64;
        let arr_len = n as u64 * std::mem::size_of::<PageRecord>() as u64;
        let same_array = self.tracked
            && self.desc.page_array_pa == d.page_array_pa
            && self.desc.max_order == d.max_order
            && self.desc.base_pfn == d.base_pfn
            && self.desc.pageblock_order == d.pageblock_order
            && self.pages.len() == n
            && self.free.len() == n;
        let mut windows = Vec::new();
        let incremental = same_array && ram.take_dirty(arr_pa, arr_len, |pa| windows.push(pa)).is_some();
        if incremental {
            let freed = match self.copy_windows(ram, arr_pa, &windows, d.max_order, changed) {
                Ok(f) => f,
                Err(e) => {
                    self.tracked = false;
                    return Err(e);
                }
            };
            self.desc = d;
            if self.pb_free.len() != self.pageblock_count() {
                self.count_free(0..n);
            } else {
                // each pageblock whose free marks may have changed, once
                let pb = self.pageblock_pages() as usize;
                let first = (self.desc.base_pfn as usize / pb) * pb;
                let off = self.desc.base_pfn as usize - first;
                let mut last_k = usize::MAX;
                for r in freed {
                    for k in (off + r.start) / pb..=(off + r.end.max(r.start + 1) - 1) / pb {
                        if k != last_k {
                            let lo = (k * pb).saturating_sub(off);
                            self.count_free(lo..lo + 1);
                            last_k = k;
                        }
                    }
                }
            }
        } else {
            // watch first, then copy: a write after this is logged
            ram.watch_writes(arr_pa, arr_len);
            let watching = ram.take_dirty(arr_pa, arr_len, |_| {}).is_some();
            let mut free = std::mem::take(&mut self.free);
            free.clear();
            free.resize(n, false);
            let max_order = d.max_order;
            let read = read_array_chunked(ram, "page array", arr_pa, n as u64, &mut self.pages, 2048, |pages, range| mark_free(pages, range, max_order, &mut free));
            self.free = free;
            self.tracked = watching && read.is_ok();
            self.index = None;
            self.pb_free.clear();
            read?;
            self.index = Some(PageIndex::build(&self.pages));
            self.desc = d;
            self.count_free(0..n);
            changed.push(0..n);
        }
        let seq_after = ram.read_u32(self.desc_pa + std::mem::offset_of!(GuestDesc, mm_seq) as u64).unwrap_or(u32::MAX);
        self.stable = d.mm_seq % 2 == 0 && seq_after == d.mm_seq;
        self.zones = d.zones[..d.nr_zones as usize].to_vec();
        self.desc = d;
        self.pageblock_words = pageblock_words;
        self.cma = cma;
        self.address_spaces = address_spaces;
        self.pins = pins;
        Ok(())
    }

    /// Pageblocks the array spans (from the one holding its first page).
    fn pageblock_count(&self) -> usize {
        let pb = self.pageblock_pages() as u64;
        let first = (self.desc.base_pfn as u64 / pb) * pb;
        (self.end_pfn() - first).div_ceil(pb) as usize
    }

    /// Recount `pb_free` for the pageblocks that overlap `range` of the
    /// page array (all of them when its length is wrong).
    fn count_free(&mut self, range: std::ops::Range<usize>) {
        let count = self.pageblock_count();
        if self.pb_free.len() != count {
            self.pb_free.clear();
            self.pb_free.resize(count, 0);
            return self.count_free(0..self.free.len());
        }
        let pb = self.pageblock_pages() as usize;
        let base = self.desc.base_pfn as usize;
        let first = (base / pb) * pb;
        let n = self.free.len();
        if range.start >= range.end.min(n) {
            return;
        }
        let (k0, k1) = ((base + range.start - first) / pb, (base + range.end.min(n) - 1 - first) / pb);
        for k in k0..=k1.min(count - 1) {
            let lo = (first + k * pb).max(base) - base;
            let hi = (first + (k + 1) * pb - base).min(n);
            self.pb_free[k] = self.free[lo..hi].iter().filter(|&&f| f).count() as u32;
        }
    }

    /// Copy the page-array windows at `windows` (4 KiB pages of guest RAM,
    /// in address order) into `self.pages` and bring the free map up to
    /// date where a free block's head changed (see [`Snapshot::reread_tracked`]).
    /// Returns the ranges whose free marks were recomputed (ascending,
    /// disjoint).
    fn copy_windows(&mut self, ram: &GuestRam, arr_pa: u64, windows: &[u64], max_order: u32, changed: &mut Vec<std::ops::Range<usize>>) -> R<Vec<std::ops::Range<usize>>> {
        const REC: u64 = std::mem::size_of::<PageRecord>() as u64;
        let n = self.pages.len();
        let arr_end = arr_pa + n as u64 * REC;
        let head_len = |p: &PageRecord| (is_free_head(p) && p.private < max_order).then(|| 1usize << p.private);
        let mut heads: Vec<std::ops::Range<usize>> = Vec::new();
        let mut tmp: Vec<PageRecord> = Vec::new();
        for &w in windows {
            let lo = w.max(arr_pa);
            let hi = (w + 4096).min(arr_end);
            if lo >= hi {
                continue;
            }
            let i0 = ((lo - arr_pa) / REC) as usize;
            let i1 = ((hi - arr_pa).div_ceil(REC) as usize).min(n);
            tmp.clear();
            tmp.resize(i1 - i0, zeroed());
            let (pa, len) = (arr_pa + i0 as u64 * REC, (i1 - i0) as u64 * REC);
            ram.read(pa, slice_as_bytes_mut(&mut tmp)).map_err(|_| IntrospectError::NotInRam { what: "page array", pa, len })?;
            for (k, new) in (i0..i1).zip(&tmp) {
                let old = &self.pages[k];
                if old == new {
                    continue;
                }
                for l in [head_len(old), head_len(new)].into_iter().flatten() {
                    heads.push(k..(k + l).min(n));
                }
                if let Some(ix) = &mut self.index {
                    ix.update(k, new);
                }
            }
            self.pages[i0..i1].copy_from_slice(&tmp);
            changed.push(i0..i1);
        }
        if heads.is_empty() {
            return Ok(Vec::new());
        }
        // A page's free mark depends on the heads at most a largest block
        // before it: recompute each range a changed head covered (before or
        // after the change) from every head that may reach into it.
        let merged = merge_ranges(heads);
        let reach = (1usize << (max_order - 1)) - 1;
        for r in merged.iter().cloned() {
            self.free[r.clone()].iter_mut().for_each(|f| *f = false);
            for j in r.start.saturating_sub(reach)..r.end {
                if let Some(l) = head_len(&self.pages[j]) {
                    let (a, b) = (j.max(r.start), (j + l).min(r.end));
                    if a < b {
                        self.free[a..b].iter_mut().for_each(|f| *f = true);
                    }
                }
            }
            changed.push(r);
        }
        Ok(merged)
    }

    /// [`Snapshot::read`] into the given allocations; on error they come
    /// back untouched (the page array is read last, after every check).
    #[allow(clippy::type_complexity)]
    fn read_reusing(ram: &GuestRam, desc_pa: u64, mut pages: Vec<PageRecord>, free: Vec<bool>) -> Result<Snapshot, (IntrospectError, Vec<PageRecord>, Vec<bool>)> {
        let d = match Self::read_desc(ram, desc_pa) {
            Ok(d) => d,
            Err(e) => return Err((e, pages, free)),
        };
        let rest = match Self::read_tables(ram, &d) {
            Ok(r) => r,
            Err(e) => return Err((e, pages, free)),
        };
        // validate_desc checked that the page array lies in RAM. The free
        // map is computed as the array is copied, 64 KiB at a time (one
        // pass over a large board's 8 MiB instead of two).
        let mut free = free;
        free.clear();
        free.resize(d.nr_pages as usize, false);
        let max_order = d.max_order;
        let marked = read_array_chunked(ram, "page array", d.page_array_pa as u64, d.nr_pages as u64, &mut pages, 2048, |pages, range| {
            mark_free(pages, range, max_order, &mut free)
        });
        if let Err(e) = marked {
            return Err((e, Vec::new(), free));
        }
        let (pageblock_words, cma, address_spaces, pins) = rest;
        let zones = d.zones[..d.nr_zones as usize].to_vec();
        let seq_after = ram.read_u32(desc_pa + std::mem::offset_of!(GuestDesc, mm_seq) as u64).unwrap_or(u32::MAX);
        let stable = d.mm_seq % 2 == 0 && seq_after == d.mm_seq;
        Ok(Snapshot { desc_pa, desc: d, pages, pageblock_words, zones, cma, address_spaces, pins, stable, free, tracked: false, index: None, pb_free: Vec::new() })
    }

    /// The pageblock bitmap, the CMA areas, the address-space table and
    /// the pin table.
    #[allow(clippy::type_complexity)]
    fn read_tables(ram: &GuestRam, d: &GuestDesc) -> R<(Vec<u32>, Vec<CmaArea>, Vec<AddressSpaceRecord>, Vec<PinRecord>)> {
        let pageblock_words: Vec<u32> = read_array(ram, "pageblock bitmap", d.pageblock_pa as u64, d.pageblock_words as u64)?;
        let recs: Vec<CmaAreaRecord> = read_array(ram, "CMA area table", d.cma_table_pa as u64, d.nr_cma_areas as u64)?;
        let mut cma = Vec::with_capacity(recs.len());
        let end_pfn = d.base_pfn as u64 + d.nr_pages as u64;
        for (i, r) in recs.iter().enumerate() {
            if (r.base_pfn as u64) < d.base_pfn as u64 || r.base_pfn as u64 + r.count as u64 > end_pfn {
                return Err(absurd("cma_area.base_pfn/count", r.base_pfn as u64, format!("area {i} [{:#x}+{:#x}) is outside the page array", r.base_pfn, r.count)));
            }
            if r.order_per_bit >= 20 {
                return Err(absurd("cma_area.order_per_bit", r.order_per_bit as u64, format!("area {i}")));
            }
            let nbits = (r.count >> r.order_per_bit) as u64;
            let need = nbits.div_ceil(32);
            if (r.bitmap_words as u64) < need || r.bitmap_words as u64 > need + 1024 {
                return Err(absurd("cma_area.bitmap_words", r.bitmap_words as u64, format!("area {i} needs {need} words")));
            }
            let bitmap: Vec<u32> = read_array(ram, "CMA bitmap", r.bitmap_pa as u64, r.bitmap_words as u64)?;
            cma.push(CmaArea {
                index: i,
                name: String::from_utf8_lossy(name_bytes(&r.name)).into_owned(),
                base_pfn: r.base_pfn,
                count: r.count,
                order_per_bit: r.order_per_bit,
                active: r.flags & CMA_AREA_ACTIVE != 0,
                bitmap,
                record: *r,
            });
        }
        let address_spaces: Vec<AddressSpaceRecord> = read_array(ram, "address-space table", d.as_table_pa as u64, d.nr_address_spaces as u64)?;
        let pins = Self::read_pins(ram, d)?;
        Ok((pageblock_words, cma, address_spaces, pins))
    }

    /// The records in use of the pin table (`PinTable`: a count, then
    /// `pin_table_len` records), none without a table.
    fn read_pins(ram: &GuestRam, d: &GuestDesc) -> R<Vec<PinRecord>> {
        if d.pin_table_pa == 0 || d.pin_table_len == 0 {
            return Ok(Vec::new());
        }
        let nr = ram.read_u32(d.pin_table_pa as u64).ok_or(IntrospectError::NotInRam { what: "pin table", pa: d.pin_table_pa as u64, len: 4 })?;
        if nr > d.pin_table_len {
            return Err(absurd("pin_table.nr", nr as u64, format!("the table holds {}", d.pin_table_len)));
        }
        read_array(ram, "pin table", d.pin_table_pa as u64 + 4, nr as u64)
    }

    /// Mark every page inside a free buddy block or a per-cpu list block.
    fn compute_free(&mut self) {
        let n = self.pages.len();
        let mut free = std::mem::take(&mut self.free);
        free.clear();
        free.resize(n, false);
        mark_free(&self.pages, 0..n, self.desc.max_order, &mut free);
        self.free = free;
    }

    /// The page index the tracked re-reads keep (see [`PageIndex`]).
    pub fn index(&self) -> Option<&PageIndex> {
        self.index.as_ref().filter(|ix| ix.heads.0.len() == self.pages.len().div_ceil(64))
    }
    /// First PFN with a record.
    pub fn base_pfn(&self) -> u32 {
        self.desc.base_pfn
    }
    /// One past the last PFN with a record.
    pub fn end_pfn(&self) -> u64 {
        self.desc.base_pfn as u64 + self.pages.len() as u64
    }
    /// The record of `pfn`.
    pub fn page(&self, pfn: u32) -> Option<&PageRecord> {
        self.pages.get(pfn.checked_sub(self.desc.base_pfn)? as usize)
    }
    /// The blocks on per-CPU lists (head pfn, order, ascending) whose head
    /// lies in `[start, end)`, read live from guest RAM: only that range's
    /// page records, not the whole array.
    pub fn read_pcp_blocks(&self, ram: &GuestRam, start: u32, end: u32) -> R<Vec<(u32, u32)>> {
        let base = self.desc.base_pfn;
        let (lo, hi) = (start.max(base), (end as u64).min(self.end_pfn()) as u32);
        let mut out = Vec::new();
        if lo >= hi {
            return Ok(out);
        }
        let size = std::mem::size_of::<PageRecord>() as u64;
        let pa_of = |pfn: u32| self.desc.page_array_pa as u64 + (pfn - base) as u64 * size;
        let len = (hi - lo) as u64 * size;
        if !ram.contains(pa_of(lo), len as usize) {
            return Err(IntrospectError::NotInRam { what: "page array", pa: pa_of(lo), len });
        }
        // a chunk at a time (an area's range is megabytes of records)
        let mut recs = [zeroed::<PageRecord>(); 256];
        let mut pfn = lo;
        while pfn < hi {
            let n = ((hi - pfn) as usize).min(recs.len());
            ram.read(pa_of(pfn), slice_as_bytes_mut(&mut recs[..n])).map_err(|_| IntrospectError::NotInRam { what: "page array", pa: pa_of(lo), len })?;
            let mut i = 0usize;
            while i < n {
                let p = &recs[i];
                if p.has(PG_PCP) && p.private < self.desc.max_order {
                    out.push((pfn + i as u32, p.private));
                    i += 1 << p.private;
                } else {
                    i += 1;
                }
            }
            // (a block may end past the chunk)
            pfn = pfn.saturating_add(i as u32);
        }
        Ok(out)
    }

    /// The CPU's LRU add batch, read live from guest RAM (None when the
    /// guest publishes none or it is not in RAM).
    pub fn read_lru_add(&self, ram: &GuestRam) -> Option<cmaemu_abi::desc::LruAddRecord> {
        if self.desc.lru_add_pa == 0 {
            return None;
        }
        // straight into the record: it is read at every doorbell
        let mut rec: cmaemu_abi::desc::LruAddRecord = zeroed();
        ram.read(self.desc.lru_add_pa as u64, slice_as_bytes_mut(std::slice::from_mut(&mut rec))).ok()?;
        Some(rec)
    }
    /// Whether `pfn` lies inside a free buddy block or a block on a per-cpu
    /// list (free to Linux, not in the buddy).
    pub fn is_free(&self, pfn: u32) -> bool {
        pfn.checked_sub(self.desc.base_pfn).and_then(|i| self.free.get(i as usize).copied()).unwrap_or(false)
    }
    /// Pages per pageblock.
    pub fn pageblock_pages(&self) -> u32 {
        1 << self.desc.pageblock_order
    }
    /// Raw pageblock bits of the block holding `pfn`.
    pub fn pageblock_bits(&self, pfn: u32) -> Option<u32> {
        let rel = pfn.checked_sub(self.desc.pageblock_base_pfn)?;
        let bitidx = (rel >> self.desc.pageblock_order) as u64 * NR_PAGEBLOCK_BITS as u64;
        let w = self.pageblock_words.get((bitidx / 32) as usize)?;
        Some((w >> (bitidx % 32)) & ((1 << NR_PAGEBLOCK_BITS) - 1))
    }
    /// Migrate type of the pageblock holding `pfn`.
    pub fn pageblock_mt(&self, pfn: u32) -> Option<u8> {
        self.pageblock_bits(pfn).map(|b| (b & MIGRATETYPE_MASK) as u8)
    }
    /// The CMA area holding `pfn`.
    pub fn cma_area_of(&self, pfn: u32) -> Option<&CmaArea> {
        self.cma.iter().find(|a| a.contains(pfn))
    }
    /// Name of area `idx` (trace records carry indices).
    pub fn area_name(&self, idx: u8) -> String {
        self.cma.get(idx as usize).map(|a| a.name.clone()).unwrap_or_else(|| format!("area{idx}"))
    }
    /// All area names in table order.
    pub fn area_names(&self) -> Vec<String> {
        self.cma.iter().map(|a| a.name.clone()).collect()
    }
    /// Start PFNs of all pageblocks covered by the page array.
    pub fn pageblocks(&self) -> impl Iterator<Item = u32> + '_ {
        let pb = self.pageblock_pages() as u64;
        let first = (self.desc.base_pfn as u64 / pb) * pb;
        let end = self.end_pfn();
        (0..).map(move |i| first + i * pb).take_while(move |&p| p < end).map(|p| p as u32)
    }
    /// What frame `pfn` holds (None outside the page array).
    pub fn page_state(&self, pfn: u32) -> Option<PageState> {
        let p = self.page(pfn)?;
        if self.is_free(pfn) {
            return Some(PageState::Free);
        }
        if p.has(PG_RESERVED) {
            return Some(PageState::Reserved);
        }
        let kind = p.owner & OWNER_KIND_MASK;
        Some(match kind {
            OWNER_KIND_DEVICE => PageState::Device,
            OWNER_KIND_PGTABLE => PageState::PageTable,
            _ if self.cma_area_of(pfn).is_some_and(|a| a.bit(pfn) == Some(true)) && kind != OWNER_KIND_USER => PageState::CmaAllocated,
            OWNER_KIND_CMA => PageState::CmaAllocated,
            _ if p.flags & (PG_LRU | PG_ANON | PG_MOVABLE) != 0 || kind == OWNER_KIND_USER => PageState::User,
            _ => PageState::Kernel,
        })
    }

    /// [`Snapshot::page_state`] of every page of the array, as codes, in
    /// one pass (what frame events and maps record).
    pub fn page_state_codes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.page_state_codes_into(&mut out);
        out
    }

    /// [`Snapshot::page_state_codes`] into `out` (its allocation reused).
    pub fn page_state_codes_into(&self, out: &mut Vec<u8>) {
        out.clear();
        out.reserve(self.pages.len());
        for (i, (p, &free)) in self.pages.iter().zip(&self.free).enumerate() {
            out.push(self.state_code(i, p, free));
        }
    }

    /// Bring `codes` (the codes of every page of an earlier snapshot of
    /// the same array) up to date over `ranges` of the page array: what
    /// [`Snapshot::page_state_codes_into`] would give when nothing outside
    /// them changed (records, free marks, CMA bitmap bits).
    pub fn update_state_codes(&self, ranges: &[std::ops::Range<usize>], codes: &mut [u8]) {
        let n = self.pages.len().min(self.free.len()).min(codes.len());
        for r in ranges {
            for i in r.start.min(n)..r.end.min(n) {
                codes[i] = self.state_code(i, &self.pages[i], self.free[i]);
            }
        }
    }

    /// [`Snapshot::update_state_codes`] over `ranges` (ascending,
    /// disjoint), returning the pages whose code changed as runs (first
    /// pfn, pages, code): what `trace::state_runs` gives for the codes
    /// before and after.
    pub fn update_state_codes_runs(&self, ranges: &[std::ops::Range<usize>], codes: &mut [u8]) -> Vec<(u32, u32, u8)> {
        let n = self.pages.len().min(self.free.len()).min(codes.len());
        let mut out: Vec<(u32, u32, u8)> = Vec::new();
        for r in ranges {
            for i in r.start.min(n)..r.end.min(n) {
                let c = self.state_code(i, &self.pages[i], self.free[i]);
                if codes[i] == c {
                    continue;
                }
                codes[i] = c;
                let pfn = self.desc.base_pfn + i as u32;
                match out.last_mut() {
                    Some((s, k, oc)) if *oc == c && *s + *k == pfn => *k += 1,
                    _ => out.push((pfn, 1, c)),
                }
            }
        }
        out
    }

    /// The state code of page `i` of the array (record `p`, free mark `free`).
    #[inline]
    fn state_code(&self, i: usize, p: &PageRecord, free: bool) -> u8 {
        let s = if free {
            PageState::Free
        } else if p.has(PG_RESERVED) {
            PageState::Reserved
        } else {
            match p.owner & OWNER_KIND_MASK {
                OWNER_KIND_DEVICE => PageState::Device,
                OWNER_KIND_PGTABLE => PageState::PageTable,
                OWNER_KIND_CMA => PageState::CmaAllocated,
                OWNER_KIND_USER => PageState::User,
                _ => {
                    let pfn = self.desc.base_pfn + i as u32;
                    if self.cma_area_of(pfn).is_some_and(|a| a.bit(pfn) == Some(true)) {
                        PageState::CmaAllocated
                    } else if p.flags & (PG_LRU | PG_ANON | PG_MOVABLE) != 0 {
                        PageState::User
                    } else {
                        PageState::Kernel
                    }
                }
            }
        };
        s as u8
    }

    /// Free pages per migrate type and pageblocks per migrate type.
    pub fn counters(&self) -> MmCounters {
        let mut c = MmCounters::default();
        let base = self.desc.base_pfn as u64;
        let end = self.end_pfn().min(base + self.free.len() as u64);
        let pb_pages = self.pageblock_pages() as u64;
        let counted = self.pb_free.len() == self.pageblock_count() && self.free.len() == self.pages.len();
        for (k, pb) in self.pageblocks().enumerate() {
            let Some(mt) = self.pageblock_mt(pb.max(self.desc.base_pfn)) else { continue };
            if mt as usize >= MIGRATE_TYPES {
                continue;
            }
            c.pageblocks_per_mt[mt as usize] += 1;
            // every page of a pageblock has its type: count its free ones
            let (lo, hi) = ((pb as u64).max(base), (pb as u64 + pb_pages).min(end));
            if counted {
                c.free_per_mt[mt as usize] += self.pb_free[k] as u64;
            } else if lo < hi {
                let free = &self.free[(lo - base) as usize..(hi - base) as usize];
                c.free_per_mt[mt as usize] += free.iter().map(|&f| f as u64).sum::<u64>();
            }
        }
        c.cma_used = self.cma.iter().map(cma_used_pages).collect();
        c
    }
    /// Pins the guest's pin table lists on frame `pfn` with a holder that
    /// releases them (the shell's `pin in`, the camera's capture): a
    /// record naming no holder the guest has (a torn or corrupt table)
    /// holds nothing.
    pub fn pins_of(&self, pfn: u32) -> u32 {
        self.holding_pins().filter(|r| r.pfn == pfn).count() as u32
    }

    /// The pin table's records that name a holder the guest has (the ones
    /// [`Snapshot::pins_of`] counts).
    pub fn holding_pins(&self) -> impl Iterator<Item = &PinRecord> {
        self.pins.iter().filter(|r| pin_holder_name(r.holder).is_some())
    }
    /// Live address space with this ASID.
    pub fn address_space(&self, asid: u32) -> Option<&AddressSpaceRecord> {
        self.address_spaces.iter().find(|a| a.asid == asid && a.flags & AS_LIVE != 0)
    }
    /// Translation registers for walking `asid`'s tables (all domains
    /// manager, privileged: the walk only finds the frame).
    pub fn mmu_regs(&self, asid: u32) -> Option<MmuRegs> {
        let a = self.address_space(asid)?;
        Some(MmuRegs { sctlr: 1, ttbr0: a.ttbr0, ttbr1: self.desc.kernel_ttbr1, ttbcr: self.desc.ttbcr, dacr: 0xffff_ffff, privileged: true })
    }
}

/// Pages allocated in `a`: set bits among its `nbits()`, times the pages a bit covers.
fn cma_used_pages(a: &CmaArea) -> u64 {
    let n = a.nbits() as usize;
    let mut bits = 0u64;
    for (i, w) in a.bitmap.iter().enumerate() {
        let lo = i * 32;
        if lo >= n {
            break;
        }
        let valid = if n - lo >= 32 { u32::MAX } else { (1u32 << (n - lo)) - 1 };
        bits += (w & valid).count_ones() as u64;
    }
    (bits << a.order_per_bit).min(a.count as u64)
}

fn validate_desc(ram: &GuestRam, pa: u64, d: &GuestDesc) -> R<()> {
    if d.magic != DESC_MAGIC {
        return Err(IntrospectError::BadMagic { pa, got: d.magic });
    }
    if d.version != DESC_VERSION {
        return Err(IntrospectError::BadVersion { got: d.version });
    }
    let sizes: [(&'static str, u32, usize); 6] = [
        ("desc_size", d.desc_size, std::mem::size_of::<GuestDesc>()),
        ("page_record_size", d.page_record_size, std::mem::size_of::<PageRecord>()),
        ("cma_record_size", d.cma_record_size, std::mem::size_of::<CmaAreaRecord>()),
        ("trace_record_size", d.trace_record_size, TRACE_RECORD_SIZE),
        ("zone_record_size", d.zone_record_size, std::mem::size_of::<ZoneRecord>()),
        ("as_record_size", d.as_record_size, std::mem::size_of::<AddressSpaceRecord>()),
    ];
    for (field, got, want) in sizes {
        if got as usize != want {
            return Err(IntrospectError::BadSize { field, got, want: want as u32 });
        }
    }
    if d.page_size != PAGE_SIZE {
        return Err(IntrospectError::BadSize { field: "page_size", got: d.page_size, want: PAGE_SIZE });
    }
    let ram_first = ram.base() >> PAGE_SHIFT;
    let ram_frames = (ram.len() as u64) >> PAGE_SHIFT;
    let ram_end = ram_first + ram_frames;
    if d.nr_pages == 0 || d.nr_pages as u64 > ram_frames {
        return Err(absurd("nr_pages", d.nr_pages as u64, format!("RAM has {ram_frames} frames")));
    }
    if (d.base_pfn as u64) < ram_first || d.base_pfn as u64 + d.nr_pages as u64 > ram_end {
        return Err(absurd("base_pfn", d.base_pfn as u64, format!("[{:#x}+{:#x}) is not inside RAM frames [{ram_first:#x}, {ram_end:#x})", d.base_pfn, d.nr_pages)));
    }
    let in_ram = |what: &'static str, pa: u32, len: u64| -> R<()> {
        if len > ram.len() as u64 || !ram.contains(pa as u64, len as usize) {
            Err(IntrospectError::NotInRam { what, pa: pa as u64, len })
        } else {
            Ok(())
        }
    };
    in_ram("page array", d.page_array_pa, d.nr_pages as u64 * 32)?;
    if d.max_order == 0 || d.max_order as usize > DESC_MAX_ORDER {
        return Err(absurd("max_order", d.max_order as u64, format!("must be 1..={DESC_MAX_ORDER}")));
    }
    if d.pageblock_order >= 24 || d.pageblock_order >= d.max_order.max(1) + 8 {
        return Err(absurd("pageblock_order", d.pageblock_order as u64, "larger than any ARM32 configuration"));
    }
    let pb = 1u64 << d.pageblock_order;
    if !(d.pageblock_base_pfn as u64).is_multiple_of(pb) || d.pageblock_base_pfn > d.base_pfn {
        return Err(absurd("pageblock_base_pfn", d.pageblock_base_pfn as u64, "must be pageblock-aligned and at or below base_pfn"));
    }
    let end = d.base_pfn as u64 + d.nr_pages as u64;
    let nblocks = (end - d.pageblock_base_pfn as u64).div_ceil(pb);
    let need_words = (nblocks * NR_PAGEBLOCK_BITS as u64).div_ceil(32);
    if (d.pageblock_words as u64) < need_words || d.pageblock_words as u64 > need_words + 1024 {
        return Err(absurd("pageblock_words", d.pageblock_words as u64, format!("{nblocks} pageblocks need {need_words} words")));
    }
    in_ram("pageblock bitmap", d.pageblock_pa, d.pageblock_words as u64 * 4)?;
    if d.nr_zones == 0 || d.nr_zones as usize > DESC_MAX_ZONES {
        return Err(absurd("nr_zones", d.nr_zones as u64, format!("must be 1..={DESC_MAX_ZONES}")));
    }
    for z in &d.zones[..d.nr_zones as usize] {
        let nonempty = z.end_pfn > z.start_pfn;
        if z.start_pfn > z.end_pfn || (nonempty && (z.start_pfn < d.base_pfn || z.end_pfn as u64 > end)) {
            return Err(absurd("zones.start_pfn/end_pfn", z.start_pfn as u64, format!("zone [{:#x}, {:#x}) is outside the page array", z.start_pfn, z.end_pfn)));
        }
    }
    if d.nr_cma_areas > MAX_AREAS {
        return Err(absurd("nr_cma_areas", d.nr_cma_areas as u64, format!("more than {MAX_AREAS}")));
    }
    if d.nr_cma_areas > 0 {
        in_ram("CMA area table", d.cma_table_pa, d.nr_cma_areas as u64 * 64)?;
    }
    if d.nr_address_spaces > MAX_ADDRESS_SPACES {
        return Err(absurd("nr_address_spaces", d.nr_address_spaces as u64, format!("more than {MAX_ADDRESS_SPACES}")));
    }
    if d.nr_address_spaces > 0 {
        in_ram("address-space table", d.as_table_pa, d.nr_address_spaces as u64 * 16)?;
    }
    if d.pin_table_len > MAX_PINS {
        return Err(absurd("pin_table_len", d.pin_table_len as u64, format!("more than {MAX_PINS}")));
    }
    if d.pin_table_pa != 0 && d.pin_table_len > 0 {
        in_ram("pin table", d.pin_table_pa, 4 + d.pin_table_len as u64 * std::mem::size_of::<PinRecord>() as u64)?;
    }
    if d.ring_capacity != 0 {
        let cap = d.ring_capacity;
        if !cap.is_power_of_two() || cap > cmaemu_abi::trace::RING_MAX_CAPACITY {
            return Err(absurd("ring_capacity", cap as u64, "must be a power of two up to 2^20"));
        }
        in_ram("trace ring", d.ring_pa, cmaemu_abi::trace::ring_bytes(cap) as u64)?;
    }
    if d.ttbcr & !0x7 != 0 {
        return Err(absurd("ttbcr", d.ttbcr as u64, "only TTBCR.N (bits 2:0) is supported (no LPAE)"));
    }
    Ok(())
}
