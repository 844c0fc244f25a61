//! Binary trace records and the single-producer ring that carries them from
//! the guest to the host.
//!
//! ## Record
//! [`TraceRecord`] is 64 bytes, `#[repr(C)]`, little-endian. `kind` says
//! which fields mean what (see the `TR_*` constants and [`GuestEvent`]);
//! build records with the `TraceRecord::*` constructors and read them with
//! [`TraceRecord::decode`], never by hand.
//!
//! ## Ring
//! In guest RAM at `GuestDesc::ring_pa`: a 32-byte [`RingHeader`], then
//! `capacity` records (`capacity` a power of two). `head` and `tail` are
//! free-running `u32` counters (they wrap); slot of index `i` is
//! `i & (capacity - 1)`.
//! - Producer (guest, the only writer of `head` and `overflow`): if
//!   `head - tail == capacity` the ring is full: increment `overflow`, drop
//!   the record, never block. Otherwise write the record (with `seq = head`)
//!   into slot `head`, then a release barrier (`dmb ish` on the guest),
//!   then store `head + 1`.
//! - Consumer (host, the only writer of `tail`): read `head`, read every
//!   record in `[tail, head)`, then store `tail = head`. A header whose
//!   `head - tail` exceeds `capacity` is corrupt: the consumer skips to
//!   `head` and counts the loss.
//!
//! [`push`] and [`drain`] implement both sides over a [`RingMem`]: the
//! guest passes raw memory ([`RawRing`]), the host its guest-RAM reader,
//! tests a byte slice.

use crate::desc::{as_bytes, from_bytes, Pod};

/// Size of a [`TraceRecord`].
pub const TRACE_RECORD_SIZE: usize = 64;
/// Size of a [`RingHeader`].
pub const RING_HEADER_SIZE: usize = 32;
/// `"CMAR"` in memory.
pub const RING_MAGIC: u32 = u32::from_le_bytes(*b"CMAR");
/// Largest capacity a consumer accepts (records).
pub const RING_MAX_CAPACITY: u32 = 1 << 20;

// Record kinds.
/// `cma:cma_alloc_start`: area, count, align.
pub const TR_CMA_ALLOC_START: u16 = 1;
/// `cma:cma_alloc_finish`: area, pfn, page, count, align, errorno.
pub const TR_CMA_ALLOC_FINISH: u16 = 2;
/// `cma:cma_alloc_busy_retry`: area, pfn, page, count, align.
pub const TR_CMA_ALLOC_BUSY_RETRY: u16 = 3;
/// `cma:cma_release`: area, pfn, page, count.
pub const TR_CMA_RELEASE: u16 = 4;
/// `migrate:mm_migrate_pages_start`: mode, args[0] = reason.
pub const TR_MM_MIGRATE_PAGES_START: u16 = 5;
/// `migrate:mm_migrate_pages`: mode, args = succeeded, failed,
/// thp_succeeded, thp_failed, thp_split, reason.
pub const TR_MM_MIGRATE_PAGES: u16 = 6;
/// One page is about to be copied: its first PTE has just been cleared
/// (the TLB not yet flushed), its content is final. pfn = old, page = new;
/// count = 1 when args[0] = asid and args[1] = the VA of that PTE. The
/// guest rings the doorbell after pushing it (the host captures the old
/// frame now, and makes the CPU's TLB hold the VA's old translation, as a
/// real TLB may, so that a missing flush is always observable).
pub const TR_MIGRATE_PAGE_BEGIN: u16 = 7;
/// One page moved (copied, remapped, TLB maintained): pfn = old, page =
/// new, count = total mappings, align = index of the first VA here,
/// args[0] = asid, args[1] = VAs in this record (<= 4), args[2..6] = VAs.
/// More mappings than 4: more records with the same old/new. The guest
/// rings the doorbell after the last one.
pub const TR_MIGRATE_PAGE: u16 = 8;
/// `dma_alloc_coherent` returned: args[0] = device, pfn, count (pages),
/// align (order), errorno (0 or -ENOMEM: then pfn = u64::MAX), area.
pub const TR_DMA_ALLOC: u16 = 9;
/// `dma_free_coherent`: args[0] = device, pfn, count.
pub const TR_DMA_FREE: u16 = 10;
/// TLB maintenance: mode = `TLB_*`, args[0] = asid, args[1] = VA.
pub const TR_TLB_FLUSH: u16 = 11;
/// A fault injection fired: mode = `INJECT_*`, pfn = frame concerned
/// (u64::MAX: none), args[0] = VA or device, args[1] = extra.
pub const TR_INJECT: u16 = 12;
/// A free-form marker: args (24 bytes) hold a NUL-padded label.
pub const TR_MARK: u16 = 13;
/// A page pin taken (`mode` 1: `get_user_pages`/`pin_user_pages`) or
/// dropped (0): `pfn`, `page` = the VA, `count` = the ASID, `args[0]` = the
/// kernel function that took it (the host names it from `KALLSYMS`),
/// `args[1..6]` = the command that asked for it (20 bytes, NUL-padded).
/// Only Linux's `page_pinner` debugging keeps this; the host's cause
/// finder names a pin's origin from it.
pub const TR_PIN: u16 = 14;
/// `alloc_contig_range` enters a phase (`mode`: `CMA_PHASE_*`) on the range
/// `[pfn, pfn + count)`; it lasts until the next phase record, busy retry
/// or finish of the running `cma_alloc` (from its start or busy retry
/// until the first phase: the bitmap search). The guest rings the
/// doorbell at `CMA_PHASE_MIGRATE` (the drains are done: the host finds
/// what the per-CPU lists still hold inside the range). cmaemu's own
/// record (Linux has no tracepoint here).
pub const TR_CMA_PHASE: u16 = 15;
/// `start_isolate_page_range`.
pub const CMA_PHASE_ISOLATE: u8 = 1;
/// `drain_all_pages`.
pub const CMA_PHASE_DRAIN: u8 = 2;
/// `__alloc_contig_migrate_range` (LRU drain, isolation and migration).
pub const CMA_PHASE_MIGRATE: u8 = 3;
/// `test_pages_isolated`, `isolate_freepages_range`, undoing the isolation.
pub const CMA_PHASE_FINISH: u8 = 4;

/// Name of a `CMA_PHASE_*` (0: the bitmap search).
pub const fn cma_phase_name(phase: u8) -> &'static str {
    match phase {
        0 => "bitmap",
        CMA_PHASE_ISOLATE => "isolate",
        CMA_PHASE_DRAIN => "drain",
        CMA_PHASE_MIGRATE => "migrate",
        CMA_PHASE_FINISH => "finish",
        _ => "unknown",
    }
}

/// Bytes of a [`TR_PIN`] record's command.
pub const PIN_COMMAND_LEN: usize = 20;

/// `TR_TLB_FLUSH` mode: one VA of one ASID (`TLBIMVA`).
pub const TLB_PAGE: u8 = 0;
/// One ASID (`TLBIASID`).
pub const TLB_ASID: u8 = 1;
/// Everything (`TLBIALL`).
pub const TLB_ALL: u8 = 2;

// Fault injections (`TR_INJECT` mode, `GuestDesc::inject_mask` bit).
/// Skip the TLB flush after remapping a migrated page.
pub const INJECT_SKIP_TLB_FLUSH: u8 = 1;
/// Skip the copy of a migrated page.
pub const INJECT_SKIP_COPY: u8 = 2;
/// Hand a non-contiguous buffer to a DMA master.
pub const INJECT_DMA_NONCONTIG: u8 = 3;
/// Free a buffer while its DMA master still uses it.
pub const INJECT_DMA_AFTER_FREE: u8 = 4;
/// Leave pageblocks isolated after `alloc_contig_range`.
pub const INJECT_LEAK_ISOLATION: u8 = 5;
/// Leave CMA bitmap bits set in `cma_release`.
pub const INJECT_LEAK_BITMAP: u8 = 6;
/// Free a CMA page onto a non-CMA free list / mistype a pageblock.
pub const INJECT_WRONG_MIGRATETYPE: u8 = 7;
/// Free the same page twice.
pub const INJECT_DOUBLE_FREE: u8 = 8;
/// Leave the PTEs of a migrated page unset.
pub const INJECT_SKIP_REMAP: u8 = 9;
/// Never drop the old frame's last reference after a migration.
pub const INJECT_LEAK_OLD_PAGE: u8 = 10;
/// Migrate a pinned page (the extra reference ignored).
pub const INJECT_IGNORE_PIN: u8 = 11;
/// Unmap a user page without dropping its reference (never freed).
pub const INJECT_MISSED_PUT_PAGE: u8 = 12;
/// A pin (`get_user_pages` reference) that is never released.
pub const INJECT_LEAKED_PIN: u8 = 13;
/// The reverse-map walk misses one mapping of a shared page.
pub const INJECT_RMAP_MISS: u8 = 14;
/// The camera keeps writing into a user buffer page while it migrates.
pub const INJECT_DMA_DURING_MIGRATION: u8 = 15;
/// `lru_cache_disable` without draining the LRU add batch (pfn = first
/// page left in the batch, args[1] = pages in it).
pub const INJECT_SKIP_LRU_DRAIN: u8 = 16;
/// `alloc_contig_range` leaves out `drain_all_pages`: blocks on the
/// per-CPU lists inside the isolated range stay there (pfn = the lowest
/// such block, args[1] = pages in the range on the lists).
pub const INJECT_SKIP_PCP_DRAIN: u8 = 17;
/// Page-table pages allocated with a movable gfp (`GFP_KERNEL |
/// __GFP_MOVABLE`, a mis-flagged allocation): one may land in a CMA
/// pageblock, where nothing can move it (pfn = the L2 table's frame,
/// args[0] = the first VA it maps; fired only when it lands in CMA).
pub const INJECT_PGTABLE_MOVABLE: u8 = 18;

/// Name of an injection.
pub const fn inject_name(id: u8) -> &'static str {
    match id {
        INJECT_SKIP_TLB_FLUSH => "skip_tlb_flush",
        INJECT_SKIP_COPY => "skip_copy",
        INJECT_DMA_NONCONTIG => "dma_noncontig",
        INJECT_DMA_AFTER_FREE => "dma_after_free",
        INJECT_LEAK_ISOLATION => "leak_isolation",
        INJECT_LEAK_BITMAP => "leak_bitmap",
        INJECT_WRONG_MIGRATETYPE => "wrong_migratetype",
        INJECT_DOUBLE_FREE => "double_free",
        INJECT_SKIP_REMAP => "skip_remap",
        INJECT_LEAK_OLD_PAGE => "leak_old_page",
        INJECT_IGNORE_PIN => "ignore_pin",
        INJECT_MISSED_PUT_PAGE => "missed_put_page",
        INJECT_LEAKED_PIN => "leaked_pin",
        INJECT_RMAP_MISS => "rmap_miss",
        INJECT_DMA_DURING_MIGRATION => "dma_during_migration",
        INJECT_SKIP_LRU_DRAIN => "skip_lru_drain",
        INJECT_SKIP_PCP_DRAIN => "skip_pcp_drain",
        INJECT_PGTABLE_MOVABLE => "pgtable_movable",
        _ => "unknown",
    }
}

/// `enum migrate_mode`: `MIGRATE_ASYNC`.
pub const MIGRATE_ASYNC: u8 = 0;
/// `MIGRATE_SYNC_LIGHT`.
pub const MIGRATE_SYNC_LIGHT: u8 = 1;
/// `MIGRATE_SYNC`.
pub const MIGRATE_SYNC: u8 = 2;
/// `MIGRATE_SYNC_NO_COPY`.
pub const MIGRATE_SYNC_NO_COPY: u8 = 3;

/// `enum migrate_reason` (6.1): `MR_COMPACTION`.
pub const MR_COMPACTION: u32 = 0;
/// `MR_SYSCALL`.
pub const MR_SYSCALL: u32 = 3;
/// `MR_CONTIG_RANGE` (what `alloc_contig_range` passes).
pub const MR_CONTIG_RANGE: u32 = 6;
/// `MR_LONGTERM_PIN`.
pub const MR_LONGTERM_PIN: u32 = 7;
/// `MR_DEMOTION`.
pub const MR_DEMOTION: u32 = 8;

/// No CMA area (`TraceRecord::area`).
pub const AREA_NONE: u8 = 0xff;
/// VAs carried by one `TR_MIGRATE_PAGE` record.
pub const MIGRATE_VAS_PER_RECORD: usize = 4;

/// One trace record.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct TraceRecord {
    /// `TR_*`.
    pub kind: u16,
    /// CMA area index (into the descriptor's table), [`AREA_NONE`] if none.
    pub area: u8,
    /// Kind-specific small value (migrate mode, TLB scope, injection id).
    pub mode: u8,
    /// Ring index the producer wrote it at (set by [`push`]).
    pub seq: u32,
    /// Virtual time in ns (the guest's clock, from retired instructions).
    pub ts_ns: u64,
    /// A PFN (`u64::MAX` = Linux's `-1` / none).
    pub pfn: u64,
    /// `struct page *` as the guest prints it (0 = NULL), or the new PFN.
    pub page: u32,
    /// Pages (or mappings).
    pub count: u32,
    /// Alignment order (or a VA index).
    pub align: u32,
    /// Negative errno, 0 for success.
    pub errorno: i32,
    /// Kind-specific words.
    pub args: [u32; 6],
}
const _: () = assert!(core::mem::size_of::<TraceRecord>() == TRACE_RECORD_SIZE);
const _: () = assert!(2 + 1 + 1 + 4 + 8 + 8 + 4 * 4 + 24 == TRACE_RECORD_SIZE);
// SAFETY: integers only, no padding (both asserts above).
unsafe impl Pod for TraceRecord {}

/// A decoded record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuestEvent {
    CmaAllocStart { area: u8, count: u32, align: u32 },
    CmaAllocFinish { area: u8, pfn: u64, page: u32, count: u32, align: u32, errorno: i32 },
    CmaAllocBusyRetry { area: u8, pfn: u64, page: u32, count: u32, align: u32 },
    CmaRelease { area: u8, pfn: u64, page: u32, count: u32 },
    MigratePagesStart { mode: u8, reason: u32 },
    MigratePages { succeeded: u32, failed: u32, thp_succeeded: u32, thp_failed: u32, thp_split: u32, mode: u8, reason: u32 },
    /// `first`: (asid, VA) of the PTE just cleared, when the guest gave it.
    MigratePageBegin { old_pfn: u32, new_pfn: u32, first: Option<(u32, u32)> },
    /// `vas[..nr_vas]` are valid.
    MigratePage { old_pfn: u32, new_pfn: u32, asid: u32, total: u32, first: u32, nr_vas: u8, vas: [u32; MIGRATE_VAS_PER_RECORD] },
    DmaAlloc { device: u32, pfn: u64, count: u32, order: u32, errorno: i32, area: u8 },
    DmaFree { device: u32, pfn: u64, count: u32 },
    TlbFlush { scope: u8, asid: u32, va: u32 },
    Inject { id: u8, pfn: u64, arg: u32, extra: u32 },
    /// Label bytes, NUL-padded.
    Mark { label: [u8; 24] },
    /// `phase`: `CMA_PHASE_*`, on `[pfn, pfn + count)`.
    CmaPhase { phase: u8, pfn: u32, count: u32 },
    /// `command`: NUL-padded.
    Pin { on: bool, pfn: u32, va: u32, asid: u32, func: u32, command: [u8; PIN_COMMAND_LEN] },
}

/// Why a record did not decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    UnknownKind(u16),
    /// A count field is out of range (`TR_MIGRATE_PAGE` with > 4 VAs...).
    BadField(&'static str),
}

impl TraceRecord {
    fn base(kind: u16, ts_ns: u64) -> TraceRecord {
        TraceRecord { kind, area: AREA_NONE, ts_ns, pfn: u64::MAX, ..Default::default() }
    }
    pub fn cma_alloc_start(ts_ns: u64, area: u8, count: u32, align: u32) -> Self {
        TraceRecord { area, count, align, ..Self::base(TR_CMA_ALLOC_START, ts_ns) }
    }
    pub fn cma_alloc_finish(ts_ns: u64, area: u8, pfn: u64, page: u32, count: u32, align: u32, errorno: i32) -> Self {
        TraceRecord { area, pfn, page, count, align, errorno, ..Self::base(TR_CMA_ALLOC_FINISH, ts_ns) }
    }
    pub fn cma_alloc_busy_retry(ts_ns: u64, area: u8, pfn: u64, page: u32, count: u32, align: u32) -> Self {
        TraceRecord { area, pfn, page, count, align, ..Self::base(TR_CMA_ALLOC_BUSY_RETRY, ts_ns) }
    }
    pub fn cma_release(ts_ns: u64, area: u8, pfn: u64, page: u32, count: u32) -> Self {
        TraceRecord { area, pfn, page, count, ..Self::base(TR_CMA_RELEASE, ts_ns) }
    }
    pub fn mm_migrate_pages_start(ts_ns: u64, mode: u8, reason: u32) -> Self {
        let mut r = TraceRecord { mode, ..Self::base(TR_MM_MIGRATE_PAGES_START, ts_ns) };
        r.args[0] = reason;
        r
    }
    #[allow(clippy::too_many_arguments)]
    pub fn mm_migrate_pages(ts_ns: u64, succeeded: u32, failed: u32, thp_succeeded: u32, thp_failed: u32, thp_split: u32, mode: u8, reason: u32) -> Self {
        TraceRecord { mode, args: [succeeded, failed, thp_succeeded, thp_failed, thp_split, reason], ..Self::base(TR_MM_MIGRATE_PAGES, ts_ns) }
    }
    pub fn migrate_page_begin(ts_ns: u64, old_pfn: u32, new_pfn: u32, first: Option<(u32, u32)>) -> Self {
        let mut r = TraceRecord { pfn: old_pfn as u64, page: new_pfn, ..Self::base(TR_MIGRATE_PAGE_BEGIN, ts_ns) };
        if let Some((asid, va)) = first {
            r.count = 1;
            r.args[0] = asid;
            r.args[1] = va;
        }
        r
    }
    /// One record for `vas` (at most 4; extra VAs are ignored: split them
    /// with [`TraceRecord::migrate_page_records`]).
    pub fn migrate_page(ts_ns: u64, old_pfn: u32, new_pfn: u32, asid: u32, total: u32, first: u32, vas: &[u32]) -> Self {
        let n = vas.len().min(MIGRATE_VAS_PER_RECORD);
        let mut args = [asid, n as u32, 0, 0, 0, 0];
        args[2..2 + n].copy_from_slice(&vas[..n]);
        TraceRecord { pfn: old_pfn as u64, page: new_pfn, count: total, align: first, args, ..Self::base(TR_MIGRATE_PAGE, ts_ns) }
    }
    /// The records for all mappings of one moved page (one if `vas` is
    /// empty), passed one by one to `f`.
    pub fn migrate_page_records(ts_ns: u64, old_pfn: u32, new_pfn: u32, asid: u32, vas: &[u32], mut f: impl FnMut(TraceRecord)) {
        if vas.is_empty() {
            f(Self::migrate_page(ts_ns, old_pfn, new_pfn, asid, 0, 0, &[]));
        }
        for (i, chunk) in vas.chunks(MIGRATE_VAS_PER_RECORD).enumerate() {
            f(Self::migrate_page(ts_ns, old_pfn, new_pfn, asid, vas.len() as u32, (i * MIGRATE_VAS_PER_RECORD) as u32, chunk));
        }
    }
    pub fn dma_alloc(ts_ns: u64, device: u32, pfn: u64, count: u32, order: u32, errorno: i32, area: u8) -> Self {
        let mut r = TraceRecord { area, pfn, count, align: order, errorno, ..Self::base(TR_DMA_ALLOC, ts_ns) };
        r.args[0] = device;
        r
    }
    pub fn dma_free(ts_ns: u64, device: u32, pfn: u64, count: u32) -> Self {
        let mut r = TraceRecord { pfn, count, ..Self::base(TR_DMA_FREE, ts_ns) };
        r.args[0] = device;
        r
    }
    pub fn tlb_flush(ts_ns: u64, scope: u8, asid: u32, va: u32) -> Self {
        let mut r = TraceRecord { mode: scope, ..Self::base(TR_TLB_FLUSH, ts_ns) };
        r.args[0] = asid;
        r.args[1] = va;
        r
    }
    pub fn inject(ts_ns: u64, id: u8, pfn: u64, arg: u32, extra: u32) -> Self {
        let mut r = TraceRecord { mode: id, pfn, ..Self::base(TR_INJECT, ts_ns) };
        r.args[0] = arg;
        r.args[1] = extra;
        r
    }
    pub fn mark(ts_ns: u64, label: &str) -> Self {
        let mut b = [0u8; 24];
        let n = label.len().min(24);
        b[..n].copy_from_slice(&label.as_bytes()[..n]);
        let mut r = Self::base(TR_MARK, ts_ns);
        for (i, w) in r.args.iter_mut().enumerate() {
            *w = u32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]]);
        }
        r
    }

    /// `alloc_contig_range` enters `phase`; see [`TR_CMA_PHASE`].
    pub fn cma_phase(ts_ns: u64, phase: u8, pfn: u32, count: u32) -> Self {
        TraceRecord { mode: phase, pfn: pfn as u64, count, ..Self::base(TR_CMA_PHASE, ts_ns) }
    }

    /// A pin taken (`on`) or dropped; see [`TR_PIN`].
    #[allow(clippy::too_many_arguments)]
    pub fn pin(ts_ns: u64, on: bool, pfn: u32, va: u32, asid: u32, func: u32, command: &str) -> Self {
        let mut b = [0u8; PIN_COMMAND_LEN];
        let n = command.len().min(PIN_COMMAND_LEN);
        b[..n].copy_from_slice(&command.as_bytes()[..n]);
        let mut r = TraceRecord { mode: on as u8, pfn: pfn as u64, page: va, count: asid, ..Self::base(TR_PIN, ts_ns) };
        r.args[0] = func;
        for i in 0..PIN_COMMAND_LEN / 4 {
            r.args[1 + i] = u32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]]);
        }
        r
    }

    /// The record as bytes (what the ring stores).
    pub fn to_bytes(&self) -> [u8; TRACE_RECORD_SIZE] {
        let mut b = [0u8; TRACE_RECORD_SIZE];
        b.copy_from_slice(as_bytes(self));
        b
    }
    /// A record from ring bytes.
    pub fn from_bytes(b: &[u8; TRACE_RECORD_SIZE]) -> Self {
        // from_bytes cannot fail on a full-size buffer.
        from_bytes(b).unwrap_or_default()
    }

    /// The typed event. Never panics on garbage.
    pub fn decode(&self) -> Result<GuestEvent, DecodeError> {
        let a = self.args;
        Ok(match self.kind {
            TR_CMA_ALLOC_START => GuestEvent::CmaAllocStart { area: self.area, count: self.count, align: self.align },
            TR_CMA_ALLOC_FINISH => GuestEvent::CmaAllocFinish { area: self.area, pfn: self.pfn, page: self.page, count: self.count, align: self.align, errorno: self.errorno },
            TR_CMA_ALLOC_BUSY_RETRY => GuestEvent::CmaAllocBusyRetry { area: self.area, pfn: self.pfn, page: self.page, count: self.count, align: self.align },
            TR_CMA_RELEASE => GuestEvent::CmaRelease { area: self.area, pfn: self.pfn, page: self.page, count: self.count },
            TR_MM_MIGRATE_PAGES_START => GuestEvent::MigratePagesStart { mode: self.mode, reason: a[0] },
            TR_MM_MIGRATE_PAGES => GuestEvent::MigratePages { succeeded: a[0], failed: a[1], thp_succeeded: a[2], thp_failed: a[3], thp_split: a[4], mode: self.mode, reason: a[5] },
            TR_MIGRATE_PAGE_BEGIN => GuestEvent::MigratePageBegin {
                old_pfn: pfn32(self.pfn)?,
                new_pfn: self.page,
                first: match self.count {
                    0 => None,
                    1 => Some((a[0], a[1])),
                    _ => return Err(DecodeError::BadField("migrate_page_begin count")),
                },
            },
            TR_MIGRATE_PAGE => {
                if a[1] as usize > MIGRATE_VAS_PER_RECORD {
                    return Err(DecodeError::BadField("migrate_page nr_vas"));
                }
                GuestEvent::MigratePage { old_pfn: pfn32(self.pfn)?, new_pfn: self.page, asid: a[0], total: self.count, first: self.align, nr_vas: a[1] as u8, vas: [a[2], a[3], a[4], a[5]] }
            }
            TR_DMA_ALLOC => GuestEvent::DmaAlloc { device: a[0], pfn: self.pfn, count: self.count, order: self.align, errorno: self.errorno, area: self.area },
            TR_DMA_FREE => GuestEvent::DmaFree { device: a[0], pfn: self.pfn, count: self.count },
            TR_TLB_FLUSH => GuestEvent::TlbFlush { scope: self.mode, asid: a[0], va: a[1] },
            TR_INJECT => GuestEvent::Inject { id: self.mode, pfn: self.pfn, arg: a[0], extra: a[1] },
            TR_MARK => {
                let mut label = [0u8; 24];
                for (i, w) in a.iter().enumerate() {
                    label[4 * i..4 * i + 4].copy_from_slice(&w.to_le_bytes());
                }
                GuestEvent::Mark { label }
            }
            TR_CMA_PHASE => match self.mode {
                CMA_PHASE_ISOLATE..=CMA_PHASE_FINISH => GuestEvent::CmaPhase { phase: self.mode, pfn: u32::try_from(self.pfn).map_err(|_| DecodeError::BadField("cma phase pfn"))?, count: self.count },
                _ => return Err(DecodeError::BadField("cma phase")),
            },
            TR_PIN => {
                let mut command = [0u8; PIN_COMMAND_LEN];
                for (i, w) in a[1..].iter().enumerate() {
                    command[4 * i..4 * i + 4].copy_from_slice(&w.to_le_bytes());
                }
                let on = match self.mode {
                    0 => false,
                    1 => true,
                    _ => return Err(DecodeError::BadField("pin mode")),
                };
                GuestEvent::Pin { on, pfn: pfn32(self.pfn)?, va: self.page, asid: self.count, func: a[0], command }
            }
            k => return Err(DecodeError::UnknownKind(k)),
        })
    }
}

fn pfn32(p: u64) -> Result<u32, DecodeError> {
    u32::try_from(p).map_err(|_| DecodeError::BadField("pfn"))
}

/// The ring header at the start of the ring memory.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RingHeader {
    /// [`RING_MAGIC`].
    pub magic: u32,
    /// [`TRACE_RECORD_SIZE`].
    pub record_size: u32,
    /// Records (a power of two).
    pub capacity: u32,
    /// Reserved, 0.
    pub flags: u32,
    /// Records produced (free-running; guest writes).
    pub head: u32,
    /// Records consumed (free-running; host writes).
    pub tail: u32,
    /// Records dropped because the ring was full (guest writes).
    pub overflow: u32,
    /// Reserved, 0.
    pub _reserved: u32,
}
const _: () = assert!(core::mem::size_of::<RingHeader>() == RING_HEADER_SIZE);
// SAFETY: integers only, no padding (size asserted).
unsafe impl Pod for RingHeader {}

/// Byte offsets of the header fields.
pub const RING_OFF_HEAD: u32 = 16;
/// Offset of `tail`.
pub const RING_OFF_TAIL: u32 = 20;
/// Offset of `overflow`.
pub const RING_OFF_OVERFLOW: u32 = 24;

/// Bytes of ring memory for `capacity` records.
pub const fn ring_bytes(capacity: u32) -> usize {
    RING_HEADER_SIZE + capacity as usize * TRACE_RECORD_SIZE
}

/// Byte access to the ring memory (offsets from the ring base). Returns
/// false when the range is not accessible.
pub trait RingMem {
    fn read(&self, off: u32, buf: &mut [u8]) -> bool;
    fn write(&mut self, off: u32, data: &[u8]) -> bool;
    /// Ordering point between writing a record and publishing it.
    fn release_barrier(&mut self) {
        core::sync::atomic::fence(core::sync::atomic::Ordering::Release);
    }
    fn read_u32(&self, off: u32) -> Option<u32> {
        let mut b = [0u8; 4];
        self.read(off, &mut b).then(|| u32::from_le_bytes(b))
    }
    fn write_u32(&mut self, off: u32, v: u32) -> bool {
        self.write(off, &v.to_le_bytes())
    }
    /// The header's bytes, unchecked (a fast path for memory that can be
    /// read as a struct; the default goes through `read`).
    fn read_header_raw(&self) -> Option<RingHeader> {
        let mut b = [0u8; RING_HEADER_SIZE];
        if !self.read(0, &mut b) {
            return None;
        }
        from_bytes(&b)
    }
    /// Write one record at `off` (a producer fast path; the default goes
    /// through `write`).
    fn write_record(&mut self, off: u32, rec: &TraceRecord) -> bool {
        self.write(off, as_bytes(rec))
    }
}

impl RingMem for [u8] {
    fn read(&self, off: u32, buf: &mut [u8]) -> bool {
        let o = off as usize;
        match self.get(o..o.saturating_add(buf.len())) {
            Some(s) => {
                buf.copy_from_slice(s);
                true
            }
            None => false,
        }
    }
    fn write(&mut self, off: u32, data: &[u8]) -> bool {
        let o = off as usize;
        match self.get_mut(o..o.saturating_add(data.len())) {
            Some(s) => {
                s.copy_from_slice(data);
                true
            }
            None => false,
        }
    }
}

/// Ring memory through a raw pointer with volatile accesses (the guest's
/// view: the host changes `tail` behind the compiler's back).
pub struct RawRing {
    base: *mut u8,
    len: usize,
}

impl RawRing {
    /// # Safety
    /// `base..base + len` must be valid, writable memory for the lifetime
    /// of the value, used by nobody else but the host.
    pub unsafe fn new(base: *mut u8, len: usize) -> RawRing {
        RawRing { base, len }
    }
}

impl RawRing {
    /// `off..off + size_of::<T>()` in bounds and suitably aligned for `T`.
    fn typed<T>(&self, off: u32) -> Option<*mut T> {
        let o = off as usize;
        if o.checked_add(core::mem::size_of::<T>()).is_none_or(|e| e > self.len) {
            return None;
        }
        // SAFETY: in bounds (checked), valid per `new`'s contract.
        let p = unsafe { self.base.add(o) };
        (p as usize).is_multiple_of(core::mem::align_of::<T>()).then_some(p as *mut T)
    }
}

impl RingMem for RawRing {
    fn write_u32(&mut self, off: u32, v: u32) -> bool {
        match self.typed::<u32>(off) {
            Some(p) => {
                // SAFETY: in bounds and aligned (`typed`), ours to write.
                unsafe { core::ptr::write_volatile(p, v.to_le()) };
                true
            }
            None => self.write(off, &v.to_le_bytes()),
        }
    }
    fn read_header_raw(&self) -> Option<RingHeader> {
        match self.typed::<RingHeader>(0) {
            // SAFETY: in bounds and aligned (`typed`); any bits are a valid
            // RingHeader (integers only).
            Some(p) => Some(unsafe { core::ptr::read_volatile(p) }),
            None => None,
        }
    }
    fn write_record(&mut self, off: u32, rec: &TraceRecord) -> bool {
        match self.typed::<TraceRecord>(off) {
            Some(p) => {
                // SAFETY: in bounds and aligned (`typed`), ours to write.
                unsafe { core::ptr::write_volatile(p, *rec) };
                true
            }
            None => self.write(off, as_bytes(rec)),
        }
    }
    fn read(&self, off: u32, buf: &mut [u8]) -> bool {
        let o = off as usize;
        if o.checked_add(buf.len()).is_none_or(|e| e > self.len) {
            return false;
        }
        // SAFETY: in bounds (checked), valid per `new`'s contract.
        let p = unsafe { self.base.add(o) };
        if (p as usize).is_multiple_of(4) && buf.len().is_multiple_of(4) {
            // Word at a time: the ring is pushed several times per migrated
            // page, so its cost shows in `cma_alloc`.
            for (i, c) in buf.chunks_exact_mut(4).enumerate() {
                // SAFETY: in bounds and 4-aligned (checked above).
                let w = unsafe { core::ptr::read_volatile((p as *const u32).add(i)) };
                c.copy_from_slice(&w.to_ne_bytes());
            }
            return true;
        }
        for (i, b) in buf.iter_mut().enumerate() {
            // SAFETY: in bounds (checked), valid per `new`'s contract.
            *b = unsafe { core::ptr::read_volatile(p.add(i)) };
        }
        true
    }
    fn write(&mut self, off: u32, data: &[u8]) -> bool {
        let o = off as usize;
        if o.checked_add(data.len()).is_none_or(|e| e > self.len) {
            return false;
        }
        // SAFETY: in bounds (checked), valid per `new`'s contract.
        let p = unsafe { self.base.add(o) };
        if (p as usize).is_multiple_of(4) && data.len().is_multiple_of(4) {
            for (i, c) in data.chunks_exact(4).enumerate() {
                // SAFETY: in bounds and 4-aligned (checked above).
                unsafe { core::ptr::write_volatile((p as *mut u32).add(i), u32::from_ne_bytes([c[0], c[1], c[2], c[3]])) };
            }
            return true;
        }
        for (i, b) in data.iter().enumerate() {
            // SAFETY: in bounds (checked), valid per `new`'s contract.
            unsafe { core::ptr::write_volatile(p.add(i), *b) };
        }
        true
    }
}

/// Ring errors (consumer side).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingError {
    /// The header could not be read.
    Unreadable,
    BadMagic(u32),
    BadRecordSize(u32),
    /// Capacity zero, not a power of two, too large, or not what was expected.
    BadCapacity(u32),
    /// `head - tail > capacity`: skipped to `head`, records lost.
    Corrupt { head: u32, tail: u32 },
    /// [`consume`] of more records than wait.
    Short { waiting: u32, wanted: u32 },
}

/// Initialise a ring of `capacity` records (a power of two) in `m`.
pub fn init<M: RingMem + ?Sized>(m: &mut M, capacity: u32) -> Result<(), RingError> {
    if capacity == 0 || !capacity.is_power_of_two() || capacity > RING_MAX_CAPACITY {
        return Err(RingError::BadCapacity(capacity));
    }
    let h = RingHeader { magic: RING_MAGIC, record_size: TRACE_RECORD_SIZE as u32, capacity, ..Default::default() };
    if !m.write(0, as_bytes(&h)) {
        return Err(RingError::Unreadable);
    }
    Ok(())
}

/// Read and validate the header.
pub fn header<M: RingMem + ?Sized>(m: &M) -> Result<RingHeader, RingError> {
    let h = m.read_header_raw().ok_or(RingError::Unreadable)?;
    if h.magic != RING_MAGIC {
        return Err(RingError::BadMagic(h.magic));
    }
    if h.record_size != TRACE_RECORD_SIZE as u32 {
        return Err(RingError::BadRecordSize(h.record_size));
    }
    if h.capacity == 0 || !h.capacity.is_power_of_two() || h.capacity > RING_MAX_CAPACITY {
        return Err(RingError::BadCapacity(h.capacity));
    }
    Ok(h)
}

/// Producer: append `rec` (its `seq` is set to the ring index). Returns
/// false (and counts an overflow) when the ring is full or unusable.
pub fn push<M: RingMem + ?Sized>(m: &mut M, rec: &TraceRecord) -> bool {
    let h = match header(m) {
        Ok(h) => h,
        Err(_) => return false,
    };
    if h.head.wrapping_sub(h.tail) >= h.capacity {
        m.write_u32(RING_OFF_OVERFLOW, h.overflow.wrapping_add(1));
        return false;
    }
    let mut r = *rec;
    r.seq = h.head;
    if !m.write_record(record_offset(h.head, h.capacity), &r) {
        return false;
    }
    m.release_barrier();
    m.write_u32(RING_OFF_HEAD, h.head.wrapping_add(1))
}

/// Where the record at ring position `idx` lies, from the ring's start
/// (`capacity` a power of two).
pub const fn record_offset(idx: u32, capacity: u32) -> u32 {
    RING_HEADER_SIZE as u32 + (idx & (capacity - 1)) * TRACE_RECORD_SIZE as u32
}

/// The header and the records waiting in `[tail, head)`; a corrupt
/// header (more outstanding than capacity) advances `tail` to `head`.
fn outstanding<M: RingMem + ?Sized>(m: &mut M) -> Result<(RingHeader, u32), RingError> {
    let h = header(m)?;
    let outstanding = h.head.wrapping_sub(h.tail);
    if outstanding > h.capacity {
        m.write_u32(RING_OFF_TAIL, h.head);
        return Err(RingError::Corrupt { head: h.head, tail: h.tail });
    }
    Ok((h, outstanding))
}

/// Consumer, for records the caller has already read in place (its own
/// copy of `[tail, tail + n)`, `bad_seq` of them with the wrong `seq`):
/// advance `tail` over them as [`drain`] would, with its checks and
/// counts, reading none. [`RingError::Short`] (nothing consumed) when
/// fewer than `n` wait.
pub fn consume<M: RingMem + ?Sized>(m: &mut M, n: u32, bad_seq: u32) -> Result<DrainStats, RingError> {
    let (h, outstanding) = outstanding(m)?;
    if n > outstanding {
        return Err(RingError::Short { waiting: outstanding, wanted: n });
    }
    m.write_u32(RING_OFF_TAIL, h.tail.wrapping_add(n));
    Ok(DrainStats { records: n, bad_seq, overflow: h.overflow })
}

/// What one [`drain`] saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DrainStats {
    /// Records handed to the callback.
    pub records: u32,
    /// Records whose `seq` did not match their index (torn or garbage; still
    /// handed over).
    pub bad_seq: u32,
    /// The producer's overflow counter.
    pub overflow: u32,
}

/// Consumer: hand every record in `[tail, head)` to `f`, oldest first, at
/// most `max` of them, then advance `tail`. A corrupt header (more
/// outstanding than capacity) advances `tail` to `head` and returns
/// [`RingError::Corrupt`].
pub fn drain<M: RingMem + ?Sized>(m: &mut M, max: u32, mut f: impl FnMut(TraceRecord)) -> Result<DrainStats, RingError> {
    let (h, outstanding) = outstanding(m)?;
    let n = outstanding.min(max);
    let mut st = DrainStats { overflow: h.overflow, ..Default::default() };
    let mut b = [0u8; TRACE_RECORD_SIZE];
    for i in 0..n {
        let idx = h.tail.wrapping_add(i);
        if !m.read(record_offset(idx, h.capacity), &mut b) {
            m.write_u32(RING_OFF_TAIL, h.head);
            return Err(RingError::Unreadable);
        }
        let r = TraceRecord::from_bytes(&b);
        if r.seq != idx {
            st.bad_seq += 1;
        }
        st.records += 1;
        f(r);
    }
    m.write_u32(RING_OFF_TAIL, h.tail.wrapping_add(n));
    Ok(st)
}

#[cfg(test)]
mod tests {
    use super::*;

    extern crate std;
    use std::vec;
    use std::vec::Vec;

    #[test]
    fn raw_ring_word_and_byte_paths_agree_with_a_slice() {
        // backing store of u32s: word-aligned base; offsets 0/1/4 and odd
        // lengths take both paths
        let mut words = vec![0u32; 64];
        let bytes = words.len() * 4;
        // SAFETY: the vector outlives `raw` and nothing else touches it.
        let mut raw = unsafe { RawRing::new(words.as_mut_ptr() as *mut u8, bytes) };
        let mut shadow = vec![0u8; bytes];
        let data: Vec<u8> = (0..40u8).map(|i| i.wrapping_mul(37) ^ 0x5a).collect();
        for (off, len) in [(0u32, 32usize), (4, 40), (1, 7), (6, 12), (bytes as u32 - 8, 8)] {
            assert!(raw.write(off, &data[..len]));
            assert!(RingMem::write(&mut shadow[..], off, &data[..len]));
            let mut a = vec![0u8; len];
            let mut b = vec![0u8; len];
            assert!(raw.read(off, &mut a));
            assert!(RingMem::read(&shadow[..], off, &mut b));
            assert_eq!(a, b, "offset {off} length {len}");
        }
        let mut all = vec![0u8; bytes];
        assert!(raw.read(0, &mut all));
        assert_eq!(all, shadow);
        assert!(!raw.write(bytes as u32 - 4, &data[..8]), "out of bounds");
        assert!(!raw.read(bytes as u32, &mut [0u8; 4]), "out of bounds");
    }

    #[test]
    fn raw_ring_push_matches_slice_push_aligned_or_not() {
        let cap = 4u32;
        let bytes = ring_bytes(cap);
        for shift in [0usize, 4] {
            // u64 backing: 8-aligned; shift 4 makes records 4-aligned only
            // (the byte fallback path)
            let mut back = vec![0u64; bytes / 8 + 1];
            // SAFETY: in bounds of `back`, which outlives `raw`.
            let base = unsafe { (back.as_mut_ptr() as *mut u8).add(shift) };
            // SAFETY: as above; nothing else touches `back` meanwhile.
            let mut raw = unsafe { RawRing::new(base, bytes) };
            let mut shadow = vec![0u8; bytes];
            init(&mut raw, cap).unwrap();
            init(&mut shadow[..], cap).unwrap();
            for i in 0..6u64 {
                let r = TraceRecord::cma_alloc_finish(i, 1, 0x69000 + i, 0xc100_0000, 64, 6, 0);
                assert_eq!(push(&mut raw, &r), push(&mut shadow[..], &r), "push {i}");
            }
            let mut got = vec![0u8; bytes];
            assert!(raw.read(0, &mut got));
            assert_eq!(got, shadow, "shift {shift}");
            assert_eq!(header(&raw).unwrap().overflow, 2);
        }
    }

    #[test]
    fn records_roundtrip_and_decode() {
        let r = TraceRecord::cma_alloc_finish(5, 1, 0x69000, 0xc100_0000, 64, 6, 0);
        let b = r.to_bytes();
        assert_eq!(TraceRecord::from_bytes(&b), r);
        assert_eq!(r.decode().unwrap(), GuestEvent::CmaAllocFinish { area: 1, pfn: 0x69000, page: 0xc100_0000, count: 64, align: 6, errorno: 0 });
        let m = TraceRecord::mark(1, "phase one");
        match m.decode().unwrap() {
            GuestEvent::Mark { label } => assert_eq!(&label[..9], b"phase one"),
            e => panic!("{e:?}"),
        }
        let p = TraceRecord::pin(2, true, 0x6d040, 0x09fd_c000, 1, 0xc000_8001, "a command longer than twenty");
        match p.decode().unwrap() {
            GuestEvent::Pin { on: true, pfn: 0x6d040, va: 0x09fd_c000, asid: 1, func: 0xc000_8001, command } => assert_eq!(&command, b"a command longer tha"),
            e => panic!("{e:?}"),
        }
        assert_eq!(TraceRecord::cma_phase(4, CMA_PHASE_DRAIN, 0x6d000, 4096).decode(), Ok(GuestEvent::CmaPhase { phase: CMA_PHASE_DRAIN, pfn: 0x6d000, count: 4096 }));
        assert_eq!(TraceRecord::cma_phase(4, 0, 0x6d000, 4096).decode(), Err(DecodeError::BadField("cma phase")));
        let mut off = TraceRecord::pin(3, false, 1, 2, 3, 4, "pin");
        assert!(matches!(off.decode(), Ok(GuestEvent::Pin { on: false, .. })));
        off.mode = 2;
        assert_eq!(off.decode(), Err(DecodeError::BadField("pin mode")));
        let mut recs = Vec::new();
        TraceRecord::migrate_page_records(9, 10, 20, 3, &[1, 2, 3, 4, 5, 6], |r| recs.push(r));
        assert_eq!(recs.len(), 2);
        match recs[1].decode().unwrap() {
            GuestEvent::MigratePage { total, first, nr_vas, vas, .. } => {
                assert_eq!((total, first, nr_vas), (6, 4, 2));
                assert_eq!(&vas[..2], &[5, 6]);
            }
            e => panic!("{e:?}"),
        }
        let mut bad = TraceRecord { kind: 999, ..Default::default() };
        assert_eq!(bad.decode(), Err(DecodeError::UnknownKind(999)));
        bad.kind = TR_MIGRATE_PAGE;
        bad.args[1] = 77;
        assert!(bad.decode().is_err());
    }

    #[test]
    fn ring_push_drain_wrap_overflow() {
        let mut mem = vec![0u8; ring_bytes(4)];
        let m: &mut [u8] = &mut mem;
        assert_eq!(init(m, 3), Err(RingError::BadCapacity(3)));
        init(m, 4).unwrap();
        let mut got = Vec::new();
        for round in 0..5u64 {
            for i in 0..3u64 {
                assert!(push(m, &TraceRecord::mark(round * 10 + i, "x")));
            }
            let st = drain(m, u32::MAX, |r| got.push(r.ts_ns)).unwrap();
            assert_eq!(st.records, 3);
            assert_eq!(st.bad_seq, 0);
        }
        assert_eq!(got.len(), 15);
        assert_eq!(got[14], 42);
        // full: never blocks, counts
        for i in 0..6 {
            let ok = push(m, &TraceRecord::mark(i, "y"));
            assert_eq!(ok, i < 4);
        }
        let st = drain(m, 2, |_| {}).unwrap();
        assert_eq!((st.records, st.overflow), (2, 2));
        let st = drain(m, u32::MAX, |_| {}).unwrap();
        assert_eq!(st.records, 2);
        // hostile header: head far ahead of tail
        m.write_u32(RING_OFF_HEAD, 1000);
        assert_eq!(drain(m, u32::MAX, |_| {}), Err(RingError::Corrupt { head: 1000, tail: 19 }));
        assert_eq!(drain(m, u32::MAX, |_| {}).unwrap().records, 0);
        // bad magic
        m.write_u32(0, 0);
        assert_eq!(drain(m, u32::MAX, |_| {}), Err(RingError::BadMagic(0)));
        assert!(!push(m, &TraceRecord::mark(0, "z")));
    }

    #[test]
    fn counters_wrap() {
        let mut mem = vec![0u8; ring_bytes(2)];
        let m: &mut [u8] = &mut mem;
        init(m, 2).unwrap();
        m.write_u32(RING_OFF_HEAD, u32::MAX);
        m.write_u32(RING_OFF_TAIL, u32::MAX);
        assert!(push(m, &TraceRecord::mark(1, "a")));
        assert!(push(m, &TraceRecord::mark(2, "b")));
        assert!(!push(m, &TraceRecord::mark(3, "c")));
        let mut ts = Vec::new();
        let st = drain(m, u32::MAX, |r| ts.push(r.ts_ns)).unwrap();
        assert_eq!(ts, vec![1, 2]);
        assert_eq!(st.bad_seq, 0);
        assert_eq!(header(m).unwrap().tail, 1);
    }

    #[test]
    fn consume_advances_the_tail_as_a_drain_does() {
        let (mut a, mut b) = (vec![0u8; ring_bytes(4)], vec![0u8; ring_bytes(4)]);
        for mem in [&mut a, &mut b] {
            let m: &mut [u8] = mem;
            init(m, 4).unwrap();
            for t in 0..5 {
                push(m, &TraceRecord::mark(t, "x"));
            }
        }
        let (ma, mb): (&mut [u8], &mut [u8]) = (&mut a, &mut b);
        // the same stats and header as a drain of the same records
        let drained = drain(ma, 3, |_| {}).unwrap();
        assert_eq!(consume(mb, 3, 0).unwrap(), drained);
        assert_eq!(header(ma).unwrap(), header(mb).unwrap());
        assert_eq!(drained, DrainStats { records: 3, bad_seq: 0, overflow: 1 });
        // more than wait: nothing consumed
        assert_eq!(consume(mb, 2, 0), Err(RingError::Short { waiting: 1, wanted: 2 }));
        assert_eq!(header(mb).unwrap().tail, 3);
        // a corrupt header: skipped to head, as a drain does
        mb.write_u32(RING_OFF_TAIL, 100);
        assert_eq!(consume(mb, 1, 0), Err(RingError::Corrupt { head: 4, tail: 100 }));
        assert_eq!(header(mb).unwrap().tail, 4);
    }
}
