//! The Contiguous Memory Allocator's area table, following Linux 6.1
//! `mm/cma.c`, `mm/cma_debug.c` and `mm/cma_sysfs.c`.
//!
//! Differences from 6.1, all deliberate:
//! - No locks: the guest is single-core and the kernel calls in with the
//!   state it owns (`cma->lock`, `cma_mutex` serialise nothing here).
//! - The bitmap is storage the caller hands to [`CmaAreas::cma_activate_area`]
//!   (the kernel places it in guest RAM so the host can read it); its words
//!   are `u32` because `unsigned long` is 32 bits on ARM32, so the layout is
//!   Linux's byte for byte.
//! - `struct page *` values are PFNs; the kernel turns them into its
//!   `mem_map` addresses where a pointer is printed.
//! - The per-area sysfs counters (`CONFIG_CMA_SYSFS`, off in Debian) are on.
//! - `cma_debug_show_areas()` is `CONFIG_CMA_DEBUG`-only in 6.1 (off in
//!   Debian); CMA.md wants it, so it is on unless
//!   [`CmaAreas::show_areas_on_failure`] is cleared.

pub mod bitmap;

use core::fmt;

use crate::cmdline::FixedStr;
use crate::config::CONFIG_CMA_AREAS;
use crate::memblock::{round_up, Memblock, Pa, PhysAddr, Pfn, PAGE_SHIFT, PAGE_SIZE};

/// A `Pfn` from an `unsigned long` pfn computed in 64 bits.
#[inline]
fn to_pfn(x: u64) -> Pfn {
    Pfn(x as u32)
}
use bitmap::{bitmap_clear, bitmap_find_next_zero_area_off, bitmap_set, bitmap_weight, bits_to_longs, find_next_bit, find_next_zero_bit};

/// `MAX_CMA_AREAS` (= `CONFIG_CMA_AREAS`).
pub const MAX_CMA_AREAS: usize = CONFIG_CMA_AREAS;
/// `CMA_MAX_NAME`: the name buffer holds 63 bytes and a NUL in Linux.
pub const CMA_MAX_NAME: usize = 64;
/// Outstanding debugfs `alloc` allocations kept per area (Linux keeps an
/// unbounded `hlist` of kzalloc'ed records).
pub const CMA_DEBUGFS_MEM_MAX: usize = 64;
const SZ_1M: u64 = 1 << 20;

/// A Linux errno, negative as the kernel returns them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(pub i32);

impl Errno {
    pub const ENOENT: Errno = Errno(-2);
    pub const EINTR: Errno = Errno(-4);
    pub const EAGAIN: Errno = Errno(-11);
    pub const ENOMEM: Errno = Errno(-12);
    pub const EBUSY: Errno = Errno(-16);
    pub const ENODEV: Errno = Errno(-19);
    pub const EINVAL: Errno = Errno(-22);
    pub const ENOSPC: Errno = Errno(-28);

    /// The message a shell prints for it (glibc's `strerror`, which
    /// busybox's and bash's `write error: ...` use); the number for one
    /// this kernel never returns.
    pub const fn strerror(self) -> Option<&'static str> {
        Some(match self.0 {
            -2 => "No such file or directory",
            -4 => "Interrupted system call",
            -11 => "Resource temporarily unavailable",
            -12 => "Cannot allocate memory",
            -16 => "Device or resource busy",
            -19 => "No such device",
            -22 => "Invalid argument",
            -28 => "No space left on device",
            _ => return None,
        })
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// printk level of a log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Err,
    Warn,
    Info,
    Debug,
}

/// Where the mm code prints its kernel log lines. Each call is one whole
/// line (without `\n`), including the `pr_fmt` prefix (`cma: `, `OF:
/// reserved mem: `...).
pub trait Log {
    /// One line.
    fn line(&mut self, args: fmt::Arguments<'_>);
    /// One line at a printk level; defaults to [`Log::line`].
    fn line_level(&mut self, level: Level, args: fmt::Arguments<'_>) {
        let _ = level;
        self.line(args)
    }
}

/// A [`Log`] that drops everything.
pub struct NoLog;

impl Log for NoLog {
    fn line(&mut self, _args: fmt::Arguments<'_>) {}
}

/// The page allocator side of `cma_alloc()` / `cma_release()` (the buddy
/// helper implements it).
pub trait ContigRange {
    /// `alloc_contig_range(start, end, MIGRATE_CMA, gfp)`: take every page
    /// of `[start, end)` out of the buddy (migrating what is in use).
    /// `-EBUSY` makes `cma_alloc()` retry elsewhere; other errors stop it.
    fn alloc_contig_range(&mut self, start: Pfn, end: Pfn) -> Result<(), Errno>;
    /// `free_contig_range(pfn, count)`.
    fn free_contig_range(&mut self, pfn: Pfn, count: u64);
}

/// The mm hooks `cma_activate_area()` needs.
pub trait CmaActivate {
    /// `pfn_valid()` of every pfn in `[start, end)` and `page_zone()` the
    /// same for all of them.
    fn pfn_range_in_one_zone(&self, start: Pfn, end: Pfn) -> bool;
    /// `init_cma_reserved_pageblock()`: make the pageblock at `pfn`
    /// `MIGRATE_CMA` and free its pages to the buddy (also adjusts managed
    /// pages and `totalram_pages`).
    fn init_cma_reserved_pageblock(&mut self, pfn: Pfn);
    /// `free_reserved_page()` of one page (activation failed: the pages go
    /// to the buddy as ordinary memory).
    fn free_reserved_page(&mut self, pfn: Pfn);
}

/// The `cma:` tracepoints (include/trace/events/cma.h). `page` is the PFN
/// of the first page (`None` = NULL); `pfn` is Linux's `unsigned long pfn`
/// (`u64::MAX` stands for its initial `-1`).
/// Each event names its area by id (for binary records) and by name (the
/// string Linux's tracepoint records): no callback looks an area up.
pub trait CmaTrace {
    /// `cma_alloc_start`.
    fn cma_alloc_start(&mut self, area: CmaId, name: &str, count: u64, align: u32);
    /// `cma_alloc_busy_retry`.
    fn cma_alloc_busy_retry(&mut self, area: CmaId, name: &str, pfn: u64, page: Option<Pfn>, count: u64, align: u32);
    /// `cma_alloc_finish`. `errorno` is what 6.2+ records; 6.1's event has
    /// no such field ([`fmt_cma_alloc_class`] prints the 6.1 text).
    fn cma_alloc_finish(&mut self, area: CmaId, name: &str, pfn: u64, page: Option<Pfn>, count: u64, align: u32, errorno: i32);
    /// `cma_release`.
    fn cma_release(&mut self, area: CmaId, name: &str, pfn: u64, page: Option<Pfn>, count: u64);
    /// `cma_alloc()` returns (after its failure lines, on every path): not a
    /// Linux tracepoint; cmaemu's host prints why an allocation failed or
    /// retried here.
    fn cma_alloc_done(&mut self) {}
    /// An injected fault (by its `cmaemu.inject` name) broke something at
    /// `pfn` (every firing goes to the trace).
    fn fault_fired(&mut self, name: &'static str, pfn: Pfn, arg: u32) {
        let _ = (name, pfn, arg);
    }
}

/// A [`CmaTrace`] that drops everything.
pub struct NoTrace;

impl CmaTrace for NoTrace {
    fn cma_alloc_start(&mut self, _: CmaId, _: &str, _: u64, _: u32) {}
    fn cma_alloc_busy_retry(&mut self, _: CmaId, _: &str, _: u64, _: Option<Pfn>, _: u64, _: u32) {}
    fn cma_alloc_finish(&mut self, _: CmaId, _: &str, _: u64, _: Option<Pfn>, _: u64, _: u32, _: i32) {}
    fn cma_release(&mut self, _: CmaId, _: &str, _: u64, _: Option<Pfn>, _: u64) {}
}

/// `unsigned long` on ARM32, for printing Linux's `-1` pfn as 0xffffffff.
fn ulong(v: u64) -> u64 {
    v & 0xffff_ffff
}

/// TP_printk of `cma_alloc_start` (6.1): `name=%s count=%lu align=%u`.
pub fn fmt_cma_alloc_start<W: fmt::Write>(w: &mut W, name: &str, count: u64, align: u32) -> fmt::Result {
    write!(w, "name={} count={} align={}", name, ulong(count), align)
}

/// TP_printk of `cma_alloc_finish` and `cma_alloc_busy_retry` (class
/// `cma_alloc`, 6.1): `name=%s pfn=0x%lx page=%p count=%lu align=%u`.
/// `page_ptr` is the value `%p` prints (0 = NULL prints `00000000`).
pub fn fmt_cma_alloc_class<W: fmt::Write>(w: &mut W, name: &str, pfn: u64, page_ptr: u32, count: u64, align: u32) -> fmt::Result {
    write!(w, "name={} pfn={:#x} page={:08x} count={} align={}", name, ulong(pfn), page_ptr, ulong(count), align)
}

/// TP_printk of `cma_release` (6.1): `name=%s pfn=0x%lx page=%p count=%lu`.
pub fn fmt_cma_release<W: fmt::Write>(w: &mut W, name: &str, pfn: u64, page_ptr: u32, count: u64) -> fmt::Result {
    write!(w, "name={} pfn={:#x} page={:08x} count={}", name, ulong(pfn), page_ptr, ulong(count))
}

/// Index of an area in the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CmaId(pub usize);

/// Why `cma_init_reserved_mem()` / `cma_declare_contiguous_nid()` refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmaError {
    /// `-ENOSPC`: all `MAX_CMA_AREAS` slots used.
    NoSlots,
    /// `-EINVAL`: size 0.
    ZeroSize,
    /// `-EINVAL`: alignment not a power of two.
    AlignmentNotPowerOfTwo { alignment: u64 },
    /// `-EINVAL`: a fixed base not aligned.
    BaseUnaligned { base: u64, alignment: u64 },
    /// `-EINVAL`: size not a multiple of `1 << order_per_bit` pages, or
    /// `order_per_bit` finer than the minimum alignment allows.
    OrderPerBit { order_per_bit: u32 },
    /// `-EINVAL`: a fixed region across the lowmem/highmem boundary.
    CrossesHighmem { base: u64, highmem_start: u64 },
    /// `-EINVAL`: `base + size > limit`.
    ExceedsLimit { size: u64, base: u64, limit: u64 },
    /// `-EINVAL`: `cma_init_reserved_mem()` on memory memblock has not
    /// reserved.
    NotReserved { base: u64, size: u64 },
    /// `-EINVAL`: base or size not aligned to `CMA_MIN_ALIGNMENT_BYTES`.
    Misaligned { base: u64, size: u64, min_alignment: u64 },
    /// `-EBUSY`: a fixed region overlaps a reservation.
    Busy { base: u64, size: u64 },
    /// `-ENOMEM`: memblock found no room.
    NoMemory { size: u64 },
}

impl CmaError {
    /// The Linux errno.
    pub const fn errno(self) -> Errno {
        match self {
            Self::NoSlots => Errno::ENOSPC,
            Self::Busy { .. } => Errno::EBUSY,
            Self::NoMemory { .. } => Errno::ENOMEM,
            _ => Errno::EINVAL,
        }
    }
}

impl fmt::Display for CmaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::NoSlots => write!(f, "cma: no free CMA area slot (MAX_CMA_AREAS = {MAX_CMA_AREAS})"),
            Self::ZeroSize => f.write_str("cma: area size is 0"),
            Self::AlignmentNotPowerOfTwo { alignment } => write!(f, "cma: alignment {alignment:#x} is not a power of 2"),
            Self::BaseUnaligned { base, alignment } => {
                write!(f, "cma: Region at {} must be aligned to {} bytes", Pa(base), Pa(alignment))
            }
            Self::OrderPerBit { order_per_bit } => write!(f, "cma: size or alignment does not fit order_per_bit {order_per_bit}"),
            Self::CrossesHighmem { base, highmem_start } => write!(
                f,
                "cma: Region at {} defined on low/high memory boundary ({})",
                Pa(base),
                Pa(highmem_start)
            ),
            Self::ExceedsLimit { size, base, limit } => write!(
                f,
                "cma: Size ({}) of region at {} exceeds limit ({})",
                Pa(size),
                Pa(base),
                Pa(limit)
            ),
            Self::NotReserved { base, size } => write!(
                f,
                "cma: region {}..{} is not reserved in memblock",
                Pa(base),
                Pa(base.wrapping_add(size).wrapping_sub(1))
            ),
            Self::Misaligned { base, size, min_alignment } => write!(
                f,
                "cma: base {} / size {:#x} not aligned to {:#x} bytes",
                Pa(base),
                size,
                min_alignment
            ),
            Self::Busy { base, size } => write!(
                f,
                "cma: fixed region {}..{} overlaps reserved memory",
                Pa(base),
                Pa(base.wrapping_add(size).wrapping_sub(1))
            ),
            Self::NoMemory { size } => write!(f, "cma: no free memory for {} MiB", size / SZ_1M),
        }
    }
}

/// One debugfs `alloc` record (`struct cma_mem`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct CmaMem {
    pfn: u64,
    n: u64,
}

/// `struct cma`.
#[derive(Debug)]
pub struct Cma<'b> {
    base_pfn: u64,
    count: u64,
    bitmap: Option<&'b mut [u32]>,
    order_per_bit: u32,
    name: FixedStr<CMA_MAX_NAME>,
    /// `cma_kobject` counters (`/sys/kernel/mm/cma/<name>/alloc_pages_*`),
    /// in pages.
    pub alloc_pages_success: u64,
    pub alloc_pages_fail: u64,
    /// `reserve_pages_on_error`.
    pub reserve_pages_on_error: bool,
    /// debugfs `mem_head` (newest last; Linux adds at the head and takes
    /// from the head).
    mem: [CmaMem; CMA_DEBUGFS_MEM_MAX],
    mem_len: usize,
}

impl<'b> Cma<'b> {
    const fn empty() -> Self {
        Self {
            base_pfn: 0,
            count: 0,
            bitmap: None,
            order_per_bit: 0,
            name: FixedStr::new(),
            alloc_pages_success: 0,
            alloc_pages_fail: 0,
            reserve_pages_on_error: false,
            mem: [CmaMem { pfn: 0, n: 0 }; CMA_DEBUGFS_MEM_MAX],
            mem_len: 0,
        }
    }

    /// `cma_get_base()`.
    pub fn cma_get_base(&self) -> PhysAddr {
        to_pfn(self.base_pfn).phys()
    }
    /// `cma_get_size()`.
    pub fn cma_get_size(&self) -> u64 {
        self.count << PAGE_SHIFT
    }
    /// `cma_get_name()`.
    pub fn cma_get_name(&self) -> &str {
        self.name.as_str()
    }
    /// `cma->base_pfn`.
    pub fn base_pfn(&self) -> Pfn {
        to_pfn(self.base_pfn)
    }
    /// `cma->count` (0 after a failed activation).
    pub fn count(&self) -> u64 {
        self.count
    }
    /// `cma->order_per_bit`.
    pub fn order_per_bit(&self) -> u32 {
        self.order_per_bit
    }
    /// The bitmap, once activated.
    pub fn bitmap(&self) -> Option<&[u32]> {
        self.bitmap.as_deref()
    }

    /// `cma_bitmap_maxno()`.
    pub fn cma_bitmap_maxno(&self) -> u64 {
        self.count >> self.order_per_bit
    }

    /// `cma_bitmap_aligned_mask()`.
    pub fn cma_bitmap_aligned_mask(&self, align_order: u32) -> u64 {
        if align_order <= self.order_per_bit {
            return 0;
        }
        (1u64 << (align_order - self.order_per_bit)) - 1
    }

    /// `cma_bitmap_aligned_offset()`: the offset of `base_pfn` from an
    /// `align_order` boundary, in bits.
    pub fn cma_bitmap_aligned_offset(&self, align_order: u32) -> u64 {
        (self.base_pfn & ((1u64 << align_order) - 1)) >> self.order_per_bit
    }

    /// `cma_bitmap_pages_to_bits()`.
    pub fn cma_bitmap_pages_to_bits(&self, pages: u64) -> u64 {
        round_up(pages, 1u64 << self.order_per_bit) >> self.order_per_bit
    }

    /// `cma_clear_bitmap()`.
    /// Fault injection `leak_bitmap`: the bits of `[pfn, pfn + count)` say
    /// "allocated" although nothing allocated those pages (what a lost
    /// `cma_clear_bitmap` leaves behind). Out-of-area ranges are ignored.
    pub fn cma_inject_leak_bitmap(&mut self, pfn: Pfn, count: u64) {
        if (pfn.0 as u64) < self.base_pfn || pfn.0 as u64 + count > self.base_pfn + self.count {
            return;
        }
        let bitmap_no = (pfn.0 as u64 - self.base_pfn) >> self.order_per_bit;
        let bitmap_count = self.cma_bitmap_pages_to_bits(count);
        if let Some(b) = self.bitmap.as_deref_mut() {
            bitmap_set(b, bitmap_no as usize, bitmap_count as usize);
        }
    }

    pub fn cma_clear_bitmap(&mut self, pfn: Pfn, count: u64) {
        let bitmap_no = (pfn.0 as u64 - self.base_pfn) >> self.order_per_bit;
        let bitmap_count = self.cma_bitmap_pages_to_bits(count);
        if let Some(b) = self.bitmap.as_deref_mut() {
            bitmap_clear(b, bitmap_no as usize, bitmap_count as usize);
        }
    }

    /// `cma_pages_valid()`: does `pfn` fall inside the area?
    pub fn cma_pages_valid(&self, pfn: Pfn) -> bool {
        (pfn.0 as u64) >= self.base_pfn && (pfn.0 as u64) < self.base_pfn + self.count
    }

    /// The free runs of the bitmap as `(pages, first bit)`, what
    /// `cma_debug_show_areas()` walks.
    pub fn free_runs(&self) -> FreeRuns<'_> {
        FreeRuns { cma: self, start: 0 }
    }

    /// `cma_debug_show_areas()`: one line, e.g. `cma: number of available
    /// pages: 1024@0+3072@2048=> 4096 free of 8192 total pages`.
    pub fn cma_debug_show_areas(&self, log: &mut dyn Log) {
        struct Runs<'a, 'b>(&'a Cma<'b>);
        impl fmt::Display for Runs<'_, '_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut total = 0u64;
                for (pages, bit) in self.0.free_runs() {
                    write!(f, "{}{}@{}", if total != 0 { "+" } else { "" }, pages, bit)?;
                    total += pages;
                }
                write!(f, "=> {} free of {} total pages", total, self.0.count)
            }
        }
        log.line_level(Level::Info, format_args!("cma: number of available pages: {}", Runs(self)));
    }

    /// debugfs `count`: `%llu`.
    pub fn debugfs_count<W: fmt::Write>(&self, w: &mut W) -> fmt::Result {
        writeln!(w, "{}", self.count)
    }
    /// debugfs `base_pfn`: `%llu`.
    pub fn debugfs_base_pfn<W: fmt::Write>(&self, w: &mut W) -> fmt::Result {
        writeln!(w, "{}", self.base_pfn)
    }
    /// debugfs `order_per_bit`: `%llu`.
    pub fn debugfs_order_per_bit<W: fmt::Write>(&self, w: &mut W) -> fmt::Result {
        writeln!(w, "{}", self.order_per_bit)
    }
    /// `cma_used_get()`: allocated pages.
    pub fn cma_used_get(&self) -> u64 {
        let Some(b) = self.bitmap.as_deref() else { return 0 };
        (bitmap_weight(b, self.cma_bitmap_maxno() as usize) as u64) << self.order_per_bit
    }
    /// debugfs `used`: `%llu`.
    pub fn debugfs_used<W: fmt::Write>(&self, w: &mut W) -> fmt::Result {
        writeln!(w, "{}", self.cma_used_get())
    }
    /// `cma_maxchunk_get()`: the largest free run, in pages.
    pub fn cma_maxchunk_get(&self) -> u64 {
        self.free_runs().map(|(p, _)| p).max().unwrap_or(0)
    }
    /// debugfs `maxchunk`: `%llu`.
    pub fn debugfs_maxchunk<W: fmt::Write>(&self, w: &mut W) -> fmt::Result {
        writeln!(w, "{}", self.cma_maxchunk_get())
    }
    /// debugfs `bitmap`: a `u32` array, `%u` separated by spaces, `\n` last
    /// (`u32_format_array()`); `DIV_ROUND_UP(maxno, 32)` elements.
    pub fn debugfs_bitmap<W: fmt::Write>(&self, w: &mut W) -> fmt::Result {
        let n = bits_to_longs(self.cma_bitmap_maxno() as usize);
        let Some(b) = self.bitmap.as_deref() else { return Ok(()) };
        for (i, word) in b[..n].iter().enumerate() {
            write!(w, "{}{}", word, if i + 1 == n { '\n' } else { ' ' })?;
        }
        Ok(())
    }
    /// sysfs `alloc_pages_success`: `%llu`.
    pub fn sysfs_alloc_pages_success<W: fmt::Write>(&self, w: &mut W) -> fmt::Result {
        writeln!(w, "{}", self.alloc_pages_success)
    }
    /// sysfs `alloc_pages_fail`: `%llu`.
    pub fn sysfs_alloc_pages_fail<W: fmt::Write>(&self, w: &mut W) -> fmt::Result {
        writeln!(w, "{}", self.alloc_pages_fail)
    }
}

/// Iterator over `(pages, first bit)` of each run of clear bits.
pub struct FreeRuns<'a> {
    cma: &'a Cma<'a>,
    start: usize,
}

impl Iterator for FreeRuns<'_> {
    type Item = (u64, u64);
    fn next(&mut self) -> Option<Self::Item> {
        let b = self.cma.bitmap.as_deref()?;
        let nbits = self.cma.cma_bitmap_maxno() as usize;
        let zero = find_next_zero_bit(b, nbits, self.start);
        if zero >= nbits {
            return None;
        }
        let set = find_next_bit(b, nbits, zero);
        self.start = set;
        Some((((set - zero) as u64) << self.cma.order_per_bit, zero as u64))
    }
}

/// The area table (`cma_areas[]`, `cma_area_count`) and the globals next
/// to it (`totalcma_pages`, the `cma_alloc_*` vm events,
/// `dma_contiguous_default_area`).
#[derive(Debug)]
pub struct CmaAreas<'b> {
    areas: [Cma<'b>; MAX_CMA_AREAS],
    cma_area_count: usize,
    /// `totalcma_pages` (`CmaTotal` = this × 4 kB).
    pub totalcma_pages: u64,
    /// `/proc/vmstat` `cma_alloc_success`.
    pub vm_cma_alloc_success: u64,
    /// `/proc/vmstat` `cma_alloc_fail`.
    pub vm_cma_alloc_fail: u64,
    /// `dma_contiguous_default_area`.
    pub dma_contiguous_default_area: Option<CmaId>,
    /// `CMA_MIN_ALIGNMENT_PAGES`.
    min_alignment_pages: u64,
    /// `pageblock_nr_pages`.
    pageblock_nr_pages: u64,
    /// Print `cma_debug_show_areas()` after a failed `cma_alloc()`
    /// (`CONFIG_CMA_DEBUG`).
    pub show_areas_on_failure: bool,
    /// Fault injection `leak_bitmap`: `cma_release()` does not clear the
    /// bit of the released range's last page.
    pub inject_skip_bitmap_clear: bool,
}

impl<'b> CmaAreas<'b> {
    /// An empty table for a kernel with `CMA_MIN_ALIGNMENT_PAGES =
    /// min_alignment_pages` and `pageblock_nr_pages` (see
    /// [`crate::config::Config::cma_min_alignment_pages`]).
    pub const fn new(min_alignment_pages: u64, pageblock_nr_pages: u64) -> Self {
        Self {
            areas: [Cma::empty(), Cma::empty(), Cma::empty(), Cma::empty(), Cma::empty(), Cma::empty(), Cma::empty()],
            cma_area_count: 0,
            totalcma_pages: 0,
            vm_cma_alloc_success: 0,
            vm_cma_alloc_fail: 0,
            dma_contiguous_default_area: None,
            min_alignment_pages,
            pageblock_nr_pages,
            show_areas_on_failure: true,
            inject_skip_bitmap_clear: false,
        }
    }

    /// A table for the options in force.
    pub fn for_config(cfg: &crate::config::Config) -> Self {
        Self::new(cfg.cma_min_alignment_pages(), cfg.pageblock_nr_pages())
    }

    /// `CMA_MIN_ALIGNMENT_BYTES`.
    pub fn cma_min_alignment_bytes(&self) -> u64 {
        self.min_alignment_pages * PAGE_SIZE
    }

    /// `cma_area_count`.
    pub fn len(&self) -> usize {
        self.cma_area_count
    }
    /// No areas declared.
    pub fn is_empty(&self) -> bool {
        self.cma_area_count == 0
    }
    /// One area.
    pub fn get(&self, id: CmaId) -> &Cma<'b> {
        &self.areas[..self.cma_area_count][id.0]
    }
    /// One area, mutably.
    pub fn get_mut(&mut self, id: CmaId) -> &mut Cma<'b> {
        &mut self.areas[..self.cma_area_count][id.0]
    }
    /// `cma_for_each_area()`.
    pub fn iter(&self) -> impl Iterator<Item = (CmaId, &Cma<'b>)> {
        self.areas[..self.cma_area_count].iter().enumerate().map(|(i, c)| (CmaId(i), c))
    }
    /// The area with this name.
    pub fn find_by_name(&self, name: &str) -> Option<CmaId> {
        self.iter().find(|(_, c)| c.cma_get_name() == name).map(|(i, _)| i)
    }
    /// The area containing `pfn`.
    pub fn find_by_pfn(&self, pfn: Pfn) -> Option<CmaId> {
        self.iter().find(|(_, c)| c.cma_pages_valid(pfn)).map(|(i, _)| i)
    }

    /// `cma_init_reserved_mem()`: make an area of memory memblock already
    /// reserved. `name` `None` gives `cmaN` (Linux's format is `"cma%d\n"`,
    /// newline included, a 6.1 bug we leave out).
    pub fn cma_init_reserved_mem(
        &mut self,
        mb: &Memblock,
        base: PhysAddr,
        size: u64,
        order_per_bit: u32,
        name: Option<&str>,
        log: &mut dyn Log,
    ) -> Result<CmaId, CmaError> {
        // Sanity checks
        if self.cma_area_count == MAX_CMA_AREAS {
            log.line_level(Level::Err, format_args!("cma: Not enough slots for CMA reserved regions!"));
            return Err(CmaError::NoSlots);
        }
        if size == 0 {
            return Err(CmaError::ZeroSize);
        }
        if !mb.memblock_is_region_reserved(base, size) {
            return Err(CmaError::NotReserved { base: base.0, size });
        }
        // alignment should be aligned with order_per_bit
        if order_per_bit >= 64 || !self.min_alignment_pages.is_multiple_of(1u64 << order_per_bit) {
            return Err(CmaError::OrderPerBit { order_per_bit });
        }
        // ensure minimal alignment required by mm core
        let min = self.cma_min_alignment_bytes();
        if !(base.0 | size).is_multiple_of(min) {
            return Err(CmaError::Misaligned { base: base.0, size, min_alignment: min });
        }
        let id = CmaId(self.cma_area_count);
        let cma = &mut self.areas[id.0];
        *cma = Cma::empty();
        cma.name = FixedStr::new();
        match name {
            Some(n) => {
                // snprintf(cma->name, CMA_MAX_NAME, ...) keeps 63 bytes
                let mut end = n.len().min(CMA_MAX_NAME - 1);
                while !n.is_char_boundary(end) {
                    end -= 1;
                }
                cma.name.push_str(&n[..end]);
            }
            None => {
                let _ = fmt::write(&mut cma.name, format_args!("cma{}", id.0));
            }
        }
        cma.base_pfn = base.pfn_down().0 as u64;
        cma.count = size >> PAGE_SHIFT;
        cma.order_per_bit = order_per_bit;
        self.cma_area_count += 1;
        self.totalcma_pages += size / PAGE_SIZE;
        Ok(id)
    }

    /// `cma_declare_contiguous_nid()`: reserve an area from memblock —
    /// fixed at `base`, or anywhere in `[base, limit)` top-down (highmem
    /// first when the range spans `highmem_start`) — and declare it.
    /// `highmem_start` is `__pa(high_memory - 1) + 1` (lowmem end).
    /// Logs `cma: Reserved N MiB at 0x...` or `cma: Failed to reserve N MiB`.
    #[allow(clippy::too_many_arguments)]
    pub fn cma_declare_contiguous_nid(
        &mut self,
        mb: &mut Memblock,
        base: PhysAddr,
        size: u64,
        limit: PhysAddr,
        alignment: u64,
        order_per_bit: u32,
        fixed: bool,
        name: Option<&str>,
        highmem_start: PhysAddr,
        log: &mut dyn Log,
    ) -> Result<CmaId, CmaError> {
        let memblock_end = mb.memblock_end_of_DRAM().0;
        let highmem_start = highmem_start.0;
        // phys_addr_t is 32 bits: arguments wider than that are truncated
        let m = crate::memblock::PHYS_ADDR_MAX;
        let (mut base, mut size, mut limit, mut fixed) = (base.0 & m, size & m, limit.0 & m, fixed);
        let alignment = alignment & m;
        if self.cma_area_count == MAX_CMA_AREAS {
            log.line_level(Level::Err, format_args!("cma: Not enough slots for CMA reserved regions!"));
            return Err(CmaError::NoSlots);
        }
        if size == 0 {
            return Err(CmaError::ZeroSize);
        }
        if alignment != 0 && !alignment.is_power_of_two() {
            return Err(CmaError::AlignmentNotPowerOfTwo { alignment });
        }
        let fail = |log: &mut dyn Log, size: u64, e: CmaError| {
            log.line_level(Level::Err, format_args!("cma: Failed to reserve {} MiB", ulong(size) / SZ_1M));
            Err(e)
        };
        // Sanitise input arguments.
        let alignment = alignment.max(self.cma_min_alignment_bytes());
        if fixed && base & (alignment - 1) != 0 {
            log.line_level(
                Level::Err,
                format_args!("cma: Region at {} must be aligned to {} bytes", Pa(base), Pa(alignment)),
            );
            return fail(log, size, CmaError::BaseUnaligned { base, alignment });
        }
        base = round_up(base, alignment);
        size = round_up(size, alignment);
        limit &= !(alignment - 1);
        if base == 0 {
            fixed = false;
        }
        // size should be aligned with order_per_bit
        if order_per_bit >= 64 || !(size >> PAGE_SHIFT).is_multiple_of(1u64 << order_per_bit) {
            return Err(CmaError::OrderPerBit { order_per_bit });
        }
        // If allocating at a fixed base the request region must not cross
        // the low/high memory boundary.
        if fixed && base < highmem_start && base + size > highmem_start {
            log.line_level(
                Level::Err,
                format_args!(
                    "cma: Region at {} defined on low/high memory boundary ({})",
                    Pa(base),
                    Pa(highmem_start)
                ),
            );
            return fail(log, size, CmaError::CrossesHighmem { base, highmem_start });
        }
        // If the limit is unspecified or above the memblock end, its
        // effective value will be the memblock end.
        if limit == 0 || limit > memblock_end {
            limit = memblock_end;
        }
        if base + size > limit {
            log.line_level(
                Level::Err,
                format_args!(
                    "cma: Size ({}) of region at {} exceeds limit ({})",
                    Pa(size),
                    Pa(base),
                    Pa(limit)
                ),
            );
            return fail(log, size, CmaError::ExceedsLimit { size, base, limit });
        }
        // Reserve memory
        if fixed {
            if mb.memblock_is_region_reserved(PhysAddr(base), size) || mb.memblock_reserve(PhysAddr(base), size).is_err() {
                return fail(log, size, CmaError::Busy { base, size });
            }
        } else {
            let mut addr = None;
            // All pages in the reserved area must come from the same zone.
            // If the requested region crosses the low/high memory boundary,
            // try allocating from high memory first and fall back to low
            // memory in case of failure.
            if base < highmem_start && limit > highmem_start {
                addr = mb.memblock_alloc_range_nid(size, alignment, PhysAddr(highmem_start), PhysAddr(limit));
                limit = highmem_start;
            }
            // (CONFIG_PHYS_ADDR_T_64BIT bottom-up attempt above 4 GiB: not
            // on a 32-bit phys_addr_t.)
            if addr.is_none() {
                addr = mb.memblock_alloc_range_nid(size, alignment, PhysAddr(base), PhysAddr(limit));
                if addr.is_none() {
                    return fail(log, size, CmaError::NoMemory { size });
                }
            }
            base = addr.map_or(0, |a| a.0);
        }
        match self.cma_init_reserved_mem(mb, PhysAddr(base), size, order_per_bit, name, log) {
            Ok(id) => {
                log.line_level(Level::Info, format_args!("cma: Reserved {} MiB at {}", ulong(size) / SZ_1M, Pa(base)));
                Ok(id)
            }
            Err(e) => {
                let _ = mb.memblock_phys_free(PhysAddr(base), size);
                fail(log, size, e)
            }
        }
    }

    /// `cma_declare_contiguous()`: [`Self::cma_declare_contiguous_nid`] on
    /// any node.
    #[allow(clippy::too_many_arguments)]
    pub fn cma_declare_contiguous(
        &mut self,
        mb: &mut Memblock,
        base: PhysAddr,
        size: u64,
        limit: PhysAddr,
        alignment: u64,
        order_per_bit: u32,
        fixed: bool,
        name: Option<&str>,
        highmem_start: PhysAddr,
        log: &mut dyn Log,
    ) -> Result<CmaId, CmaError> {
        self.cma_declare_contiguous_nid(mb, base, size, limit, alignment, order_per_bit, fixed, name, highmem_start, log)
    }

    /// Words of bitmap storage area `id` needs (`BITS_TO_LONGS(maxno)`).
    pub fn bitmap_words(&self, id: CmaId) -> usize {
        bits_to_longs(self.get(id).cma_bitmap_maxno() as usize)
    }

    /// `cma_activate_area()`: attach the (zeroed here) bitmap, check the
    /// area lies in one zone, and hand its pageblocks to the buddy as
    /// `MIGRATE_CMA`. `bitmap` `None` (or too short) is `bitmap_zalloc()`
    /// failing. On failure the pages go to the buddy as ordinary memory
    /// (unless `reserve_pages_on_error`), `totalcma_pages` drops, `count`
    /// becomes 0, and `CMA area %s could not be activated` is logged.
    /// Returns whether the area is usable.
    pub fn cma_activate_area(&mut self, id: CmaId, bitmap: Option<&'b mut [u32]>, mm: &mut dyn CmaActivate, log: &mut dyn Log) -> bool {
        let words = self.bitmap_words(id);
        let pageblock = self.pageblock_nr_pages;
        let cma = self.get_mut(id);
        let (base_pfn, count) = (cma.base_pfn, cma.count);
        let ok = match bitmap {
            Some(b) if b.len() >= words => {
                b.fill(0);
                // alloc_contig_range() requires the pfn range specified to
                // be in the same zone.
                if mm.pfn_range_in_one_zone(to_pfn(base_pfn), to_pfn(base_pfn + count)) {
                    cma.bitmap = Some(b);
                    true
                } else {
                    false
                }
            }
            _ => false,
        };
        if ok {
            let mut pfn = base_pfn;
            while pfn < base_pfn + count {
                mm.init_cma_reserved_pageblock(to_pfn(pfn));
                pfn += pageblock;
            }
            return true;
        }
        // Expose all pages to the buddy, they are useless for CMA.
        if !cma.reserve_pages_on_error {
            for pfn in base_pfn..base_pfn + count {
                mm.free_reserved_page(to_pfn(pfn));
            }
        }
        cma.count = 0;
        cma.bitmap = None;
        self.totalcma_pages -= count;
        let name = self.get(id).name;
        log.line_level(Level::Err, format_args!("cma: CMA area {} could not be activated", name));
        false
    }

    /// `cma_init_reserved_areas()` (core_initcall): activate every area,
    /// asking `alloc_bitmap(words)` for each bitmap's storage.
    pub fn cma_init_reserved_areas(
        &mut self,
        alloc_bitmap: &mut dyn FnMut(CmaId, usize) -> Option<&'b mut [u32]>,
        mm: &mut dyn CmaActivate,
        log: &mut dyn Log,
    ) {
        for i in 0..self.cma_area_count {
            let id = CmaId(i);
            let words = self.bitmap_words(id);
            let b = alloc_bitmap(id, words);
            self.cma_activate_area(id, b, mm, log);
        }
    }

    /// `cma_alloc()`: allocate `count` pages aligned to `1 << align` pages
    /// from area `cma` (`None` = a NULL `struct cma *`). Returns the first
    /// PFN. Counts the vm events and sysfs counters, emits the tracepoints,
    /// and unless `no_warn` logs `cma_alloc: <name>: alloc failed, req-size:
    /// N pages, ret: E` (plus the free runs) on failure.
    #[allow(clippy::too_many_arguments)]
    pub fn cma_alloc(
        &mut self,
        cma: Option<CmaId>,
        count: u64,
        align: u32,
        no_warn: bool,
        mm: &mut dyn ContigRange,
        trace: &mut dyn CmaTrace,
        log: &mut dyn Log,
    ) -> Option<Pfn> {
        let page = self.cma_alloc_inner(cma, count, align, no_warn, mm, trace, log);
        trace.cma_alloc_done();
        // out:
        if page.is_some() {
            self.vm_cma_alloc_success += 1;
            if let Some(id) = cma {
                self.get_mut(id).alloc_pages_success += count;
            }
        } else {
            self.vm_cma_alloc_fail += 1;
            if let Some(id) = cma {
                self.get_mut(id).alloc_pages_fail += count;
            }
        }
        page
    }

    #[allow(clippy::too_many_arguments)]
    fn cma_alloc_inner(
        &mut self,
        cma: Option<CmaId>,
        count: u64,
        align: u32,
        no_warn: bool,
        mm: &mut dyn ContigRange,
        trace: &mut dyn CmaTrace,
        log: &mut dyn Log,
    ) -> Option<Pfn> {
        let id = cma?;
        let area = self.get_mut(id);
        if area.count == 0 || area.bitmap.is_none() || count == 0 {
            return None;
        }
        let name = area.name;
        trace.cma_alloc_start(id, name.as_str(), count, align);
        // align beyond the word size makes no sense; clamp the shift
        let align_c = align.min(63);
        let mask = area.cma_bitmap_aligned_mask(align_c);
        let offset = area.cma_bitmap_aligned_offset(align_c);
        let bitmap_maxno = area.cma_bitmap_maxno();
        let bitmap_count = area.cma_bitmap_pages_to_bits(count);
        if bitmap_count > bitmap_maxno {
            return None;
        }
        let mut start = 0u64;
        let mut pfn = u64::MAX;
        let mut page = None;
        let mut ret = Errno::ENOMEM;
        loop {
            let area = self.get_mut(id);
            let opb = area.order_per_bit;
            let base_pfn = area.base_pfn;
            let bm = area.bitmap.as_deref_mut().expect("checked above");
            let bitmap_no = bitmap_find_next_zero_area_off(
                bm,
                bitmap_maxno as usize,
                start.min(bitmap_maxno) as usize,
                bitmap_count as usize,
                mask as usize,
                offset as usize,
            ) as u64;
            if bitmap_no >= bitmap_maxno {
                break;
            }
            bitmap_set(bm, bitmap_no as usize, bitmap_count as usize);
            // It's safe to drop the lock here. We've marked this region for
            // our exclusive use.
            pfn = base_pfn + (bitmap_no << opb);
            match mm.alloc_contig_range(to_pfn(pfn), to_pfn(pfn + count)) {
                Ok(()) => {
                    ret = Errno(0);
                    page = Some(to_pfn(pfn));
                    break;
                }
                Err(e) => {
                    ret = e;
                    self.get_mut(id).cma_clear_bitmap(to_pfn(pfn), count);
                    if e != Errno::EBUSY {
                        break;
                    }
                    trace.cma_alloc_busy_retry(id, name.as_str(), pfn, Some(to_pfn(pfn)), count, align);
                    // try again with a bit different memory target
                    start = bitmap_no + mask + 1;
                }
            }
        }
        trace.cma_alloc_finish(id, name.as_str(), pfn, page, count, align, ret.0);
        if page.is_none() && !no_warn {
            // pr_err_ratelimited: we don't rate-limit
            log.line_level(
                Level::Err,
                format_args!(
                    "cma: cma_alloc: {}: alloc failed, req-size: {} pages, ret: {}",
                    name,
                    ulong(count),
                    ret.0
                ),
            );
            if self.show_areas_on_failure {
                self.get(id).cma_debug_show_areas(log);
            }
        }
        page
    }

    /// `cma_release()`: give back `count` pages at `pfn` allocated from
    /// `cma`. False when `pfn` is not inside the area. Linux only
    /// `VM_BUG_ON`s a range running past the area's end (a no-op in
    /// Debian's build, which then frees foreign pages); we refuse it too.
    pub fn cma_release(&mut self, cma: Option<CmaId>, pfn: Pfn, count: u64, mm: &mut dyn ContigRange, trace: &mut dyn CmaTrace) -> bool {
        let Some(id) = cma else { return false };
        let area = self.get(id);
        if !area.cma_pages_valid(pfn) || area.bitmap.is_none() {
            return false;
        }
        if pfn.0 as u64 + count > area.base_pfn + area.count {
            return false;
        }
        let name = area.name;
        mm.free_contig_range(pfn, count);
        if !self.inject_skip_bitmap_clear {
            self.get_mut(id).cma_clear_bitmap(pfn, count);
        } else {
            // Injected bug: the bits of the released range's last page are
            // not cleared (the area believes that page is still allocated).
            let last = Pfn(pfn.0 + count as u32 - 1);
            if count > 1 {
                self.get_mut(id).cma_clear_bitmap(pfn, count - 1);
            }
            trace.fault_fired("leak_bitmap", last, 1);
        }
        trace.cma_release(id, name.as_str(), pfn.0 as u64, Some(pfn), count);
        true
    }

    /// debugfs `alloc` write (`cma_alloc_mem()`): `cma_alloc(cma, count, 0,
    /// false)` and remember the block for `free`.
    pub fn cma_debugfs_alloc(&mut self, id: CmaId, count: u64, mm: &mut dyn ContigRange, trace: &mut dyn CmaTrace, log: &mut dyn Log) -> Result<(), Errno> {
        if self.get(id).mem_len == CMA_DEBUGFS_MEM_MAX {
            return Err(Errno::ENOMEM);
        }
        let p = self.cma_alloc(Some(id), count, 0, false, mm, trace, log).ok_or(Errno::ENOMEM)?;
        let a = self.get_mut(id);
        a.mem[a.mem_len] = CmaMem { pfn: p.0 as u64, n: count };
        a.mem_len += 1;
        Ok(())
    }

    /// debugfs `free` write (`cma_free_mem()`): release up to `count` pages,
    /// newest allocation first; a partial block only when
    /// `order_per_bit == 0`.
    pub fn cma_debugfs_free(&mut self, id: CmaId, mut count: u64, mm: &mut dyn ContigRange, trace: &mut dyn CmaTrace) -> Result<(), Errno> {
        while count > 0 {
            let a = self.get_mut(id);
            if a.mem_len == 0 {
                break;
            }
            a.mem_len -= 1;
            let mem = a.mem[a.mem_len];
            if mem.n <= count {
                self.cma_release(Some(id), to_pfn(mem.pfn), mem.n, mm, trace);
                count -= mem.n;
            } else if self.get(id).order_per_bit == 0 {
                self.cma_release(Some(id), to_pfn(mem.pfn), count, mm, trace);
                let a = self.get_mut(id);
                a.mem[a.mem_len] = CmaMem { pfn: mem.pfn + count, n: mem.n - count };
                a.mem_len += 1;
                count = 0;
            } else {
                // "cma: cannot release partial block when order_per_bit != 0"
                let a = self.get_mut(id);
                a.mem_len += 1;
                break;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests;
