//! The introspection descriptor: one `#[repr(C)]` block that the guest
//! places in its RAM and announces to the host at boot, telling the host
//! where everything it reads lives (page array, pageblock bitmap, zone
//! summary, CMA area table, address spaces, trace ring).
//!
//! ## Contract
//! - The guest allocates one page-aligned [`GuestDesc`] in lowmem RAM (it
//!   never moves), fills every field, and announces its physical address
//!   to the host (the board's choice of register; see the emulator's
//!   `introspect` module). The host also finds it by scanning RAM pages for
//!   [`DESC_MAGIC`] + [`DESC_VERSION`] + the size fields when nothing was
//!   announced.
//! - All addresses are guest physical, all numbers little-endian, all
//!   records fixed-size and free of implicit padding (sizes asserted below).
//! - `mm_seq` is a sequence count the host uses to know whether the mm
//!   state is consistent: the guest makes it odd before it starts changing
//!   page records, free lists, pageblock bits, CMA bitmaps or the zone
//!   summary, and even again once all of them (the zone summary included)
//!   agree. Integrity checks run only on snapshots read while it was even.
//!   A long operation (a whole `cma_alloc`) may keep it odd throughout.
//! - Every record the host reads is treated as untrusted.

use crate::page::{PageRecord, MIGRATE_TYPES};

/// `"CMAD"` in memory (little-endian).
pub const DESC_MAGIC: u32 = u32::from_le_bytes(*b"CMAD");
/// Layout version; bump on any change to a record in this file or `trace.rs`.
pub const DESC_VERSION: u32 = 3;

/// Zones in the summary (`MAX_NR_ZONES` on ARM32: DMA/Normal/HighMem).
pub const DESC_MAX_ZONES: usize = 3;
/// Orders in the zone summary (the mm crate's `MAX_ORDER_LIMIT`).
pub const DESC_MAX_ORDER: usize = 16;
/// Bytes of a CMA area name in [`CmaAreaRecord`] (NUL-padded, truncated).
pub const CMA_NAME_LEN: usize = 32;
/// Bytes of a zone name in [`ZoneRecord`].
pub const ZONE_NAME_LEN: usize = 8;

/// Plain-old-data records: every bit pattern is a valid value and there
/// are no padding bytes, so they can be copied from and to raw bytes.
///
/// # Safety
/// Only for `#[repr(C)]` types made of integers and integer arrays with no
/// implicit padding (checked by the size asserts next to each impl).
pub unsafe trait Pod: Copy + 'static {}

/// Read a `T` from the start of `bytes` (None when too short).
pub fn from_bytes<T: Pod>(bytes: &[u8]) -> Option<T> {
    if bytes.len() < core::mem::size_of::<T>() {
        return None;
    }
    // SAFETY: `T: Pod` accepts any bit pattern; the length is checked and
    // the read is unaligned.
    Some(unsafe { core::ptr::read_unaligned(bytes.as_ptr() as *const T) })
}

/// The bytes of a `T`.
pub fn as_bytes<T: Pod>(v: &T) -> &[u8] {
    // SAFETY: `T: Pod` has no padding, so every byte is initialised.
    unsafe { core::slice::from_raw_parts(v as *const T as *const u8, core::mem::size_of::<T>()) }
}

/// An all-zero `T`.
pub fn zeroed<T: Pod>() -> T {
    // SAFETY: `T: Pod` accepts any bit pattern, all-zero included.
    unsafe { core::mem::zeroed() }
}

/// The bytes of the records `v`, to overwrite: whatever bytes are written,
/// the records stay valid.
pub fn slice_as_bytes_mut<T: Pod>(v: &mut [T]) -> &mut [u8] {
    // SAFETY: `T: Pod` has no padding (every byte is initialised) and
    // accepts any bit pattern; the byte slice covers exactly `v` and
    // borrows it mutably for as long as it lives.
    unsafe { core::slice::from_raw_parts_mut(v.as_mut_ptr() as *mut u8, core::mem::size_of_val(v)) }
}

// SAFETY: an integer (bitmap words are read as arrays of them).
unsafe impl Pod for u32 {}

// SAFETY: eight u32/i32 fields, size asserted in page.rs (32).
unsafe impl Pod for PageRecord {}

/// One zone, as `/proc/zoneinfo` would show it, plus the free-list heads so
/// that the host can walk and check the buddy lists.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZoneRecord {
    /// `zone->name`, NUL-padded ("DMA", "Normal", "HighMem").
    pub name: [u8; ZONE_NAME_LEN],
    /// `zone_start_pfn`.
    pub start_pfn: u32,
    /// `zone_end_pfn` (exclusive: start + spanned pages).
    pub end_pfn: u32,
    /// `present_pages`.
    pub present_pages: u32,
    /// `managed_pages`.
    pub managed_pages: u32,
    /// `cma_pages`.
    pub cma_pages: u32,
    /// `vm_stat[NR_FREE_PAGES]`.
    pub nr_free_pages: u32,
    /// `vm_stat[NR_FREE_CMA_PAGES]`.
    pub nr_free_cma_pages: u32,
    /// `nr_isolate_pageblock`.
    pub nr_isolate_pageblock: u32,
    /// `free_area[order].nr_free` (blocks, not pages); unused orders 0.
    pub nr_free: [u32; DESC_MAX_ORDER],
    /// First PFN of `free_area[order].free_list[mt]`, `PFN_NONE` when empty.
    pub free_head: [[u32; MIGRATE_TYPES]; DESC_MAX_ORDER],
}
const _: () = assert!(core::mem::size_of::<ZoneRecord>() == 8 + 8 * 4 + 16 * 4 + 16 * 6 * 4);
const _: () = assert!(core::mem::size_of::<ZoneRecord>() == 488);
// SAFETY: integers only, no padding (size asserted).
unsafe impl Pod for ZoneRecord {}

impl ZoneRecord {
    /// An unused slot.
    pub const EMPTY: ZoneRecord = ZoneRecord {
        name: [0; ZONE_NAME_LEN],
        start_pfn: 0,
        end_pfn: 0,
        present_pages: 0,
        managed_pages: 0,
        cma_pages: 0,
        nr_free_pages: 0,
        nr_free_cma_pages: 0,
        nr_isolate_pageblock: 0,
        nr_free: [0; DESC_MAX_ORDER],
        free_head: [[crate::page::PFN_NONE; MIGRATE_TYPES]; DESC_MAX_ORDER],
    };
}

/// `CmaAreaRecord::flags`: the area was activated (pageblocks are CMA).
pub const CMA_AREA_ACTIVE: u32 = 1 << 0;

/// One CMA area (`struct cma`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CmaAreaRecord {
    /// `cma->name`, NUL-padded, truncated to 31 bytes.
    pub name: [u8; CMA_NAME_LEN],
    /// `cma->base_pfn`.
    pub base_pfn: u32,
    /// `cma->count` (pages).
    pub count: u32,
    /// `cma->order_per_bit`.
    pub order_per_bit: u32,
    /// Physical address of the bitmap (`u32` words, Linux's layout on ARM32).
    pub bitmap_pa: u32,
    /// Words in the bitmap (`BITS_TO_LONGS(cma_bitmap_maxno(cma))`).
    pub bitmap_words: u32,
    /// `CMA_AREA_*`.
    pub flags: u32,
    /// `alloc_pages_success` (sysfs counter, truncated).
    pub alloc_pages_success: u32,
    /// `alloc_pages_fail`.
    pub alloc_pages_fail: u32,
}
const _: () = assert!(core::mem::size_of::<CmaAreaRecord>() == 64);
// SAFETY: integers only, no padding (size asserted).
unsafe impl Pod for CmaAreaRecord {}

/// One user address space (a process's page tables).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddressSpaceRecord {
    /// ASID (CONTEXTIDR[7:0]); the id used in trace records and owner tags.
    pub asid: u32,
    /// TTBR0 value (table base | walk attributes) of this address space.
    pub ttbr0: u32,
    /// `AS_*` flags.
    pub flags: u32,
    /// Process id (for display).
    pub pid: u32,
}
const _: () = assert!(core::mem::size_of::<AddressSpaceRecord>() == 16);
// SAFETY: integers only, no padding (size asserted).
unsafe impl Pod for AddressSpaceRecord {}

/// `PAGEVEC_SIZE` in Linux 6.1: folios in a `folio_batch`.
pub const PAGEVEC_SIZE: usize = 15;

/// The CPU's LRU add batch (`cpu_fbatches.lru_add`, a `folio_batch` of
/// order-0 pages by PFN) and the global `lru_disable_count`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LruAddRecord {
    /// `folio_batch.nr`.
    pub nr: u32,
    /// `lru_disable_count`: non-zero while `alloc_contig_range` (and other
    /// `lru_cache_disable` users) run; the batch must then stay empty.
    pub disable_count: u32,
    /// `folio_batch.folios[]` (PFNs; the first `nr` are valid).
    pub pfns: [u32; PAGEVEC_SIZE],
}
const _: () = assert!(core::mem::size_of::<LruAddRecord>() == 68);
// SAFETY: integers only, no padding (size asserted).
unsafe impl Pod for LruAddRecord {}

impl LruAddRecord {
    /// Empty batch, cache enabled.
    pub const INIT: LruAddRecord = LruAddRecord { nr: 0, disable_count: 0, pfns: [crate::page::PFN_NONE; PAGEVEC_SIZE] };
    /// The pages in the batch (clamped to the array).
    pub fn batch(&self) -> &[u32] {
        &self.pfns[..(self.nr as usize).min(PAGEVEC_SIZE)]
    }
}

/// `AddressSpaceRecord::flags`: the slot is live.
pub const AS_LIVE: u32 = 1 << 0;

/// Pins a [`PinTable`] holds at most: the shell's `pin in` pins
/// ([`SHELL_PINS`]) and the camera's capture buffers ([`CAMERA_PINS`]),
/// each holder within its share, so that one never crowds out the other.
pub const PIN_TABLE_LEN: usize = SHELL_PINS + CAMERA_PINS;
/// `pin in` pins the shell holds at most.
pub const SHELL_PINS: usize = 64;
/// Pages a capture pins at most (its USERPTR buffers).
pub const CAMERA_PINS: usize = 4;

/// [`PinRecord::holder`]: the shell's `pin in` (released by `unpin`).
pub const PIN_HOLDER_SHELL: u32 = 1;
/// [`PinRecord::holder`]: the camera's capture (released when the capture
/// ends).
pub const PIN_HOLDER_CAMERA: u32 = 2;

/// One page pin (`pin_user_pages`) whose holder keeps it by frame, as a
/// driver keeps the `struct page *` it pinned: it releases that frame
/// (`unpin_user_page`), whatever the VA maps by then.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PinRecord {
    /// The pinned frame.
    pub pfn: u32,
    /// The user VA it was pinned through (for messages).
    pub va: u32,
    /// The address space of that VA.
    pub asid: u32,
    /// Who holds the pin and releases it: [`PIN_HOLDER_SHELL`] or
    /// [`PIN_HOLDER_CAMERA`] (each releases only its own).
    pub holder: u32,
}
const _: () = assert!(core::mem::size_of::<PinRecord>() == 16);
// SAFETY: integers only, no padding (size asserted).
unsafe impl Pod for PinRecord {}

impl PinRecord {
    pub const EMPTY: PinRecord = PinRecord { pfn: crate::page::PFN_NONE, va: 0, asid: 0, holder: 0 };
}

/// Name of a pin holder (for messages); None for an unknown tag.
pub fn pin_holder_name(holder: u32) -> Option<&'static str> {
    match holder {
        PIN_HOLDER_SHELL => Some("pin in"),
        PIN_HOLDER_CAMERA => Some("capture"),
        _ => None,
    }
}

/// The pins the guest's pin holders keep by frame (the shell's `pin in`,
/// the camera's capture buffers): the guest updates it in place, inside
/// its mm sections; the host reads it live. A pinned page may lose every
/// mapping (`munmap` does not wait for pins) and stays allocated, held by
/// its pins, until they are dropped: the host's ownership check counts
/// the pins listed here as the references of a page no PTE maps. Pins
/// not listed (`pin N`, whose pages cannot be unmapped while pinned) are
/// not such owners.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PinTable {
    /// Records in use: `pins[..nr]`.
    pub nr: u32,
    pub pins: [PinRecord; PIN_TABLE_LEN],
}
const _: () = assert!(core::mem::size_of::<PinTable>() == 4 + 16 * PIN_TABLE_LEN);
const _: () = assert!(core::mem::size_of::<PinTable>() == 1092);
// SAFETY: integers only, no padding (size asserted).
unsafe impl Pod for PinTable {}

impl PinTable {
    pub const EMPTY: PinTable = PinTable { nr: 0, pins: [PinRecord::EMPTY; PIN_TABLE_LEN] };
    /// The records in use (clamped to the array).
    pub fn pins(&self) -> &[PinRecord] {
        &self.pins[..(self.nr as usize).min(PIN_TABLE_LEN)]
    }
    /// How many records `holder` has.
    pub fn held_by(&self, holder: u32) -> usize {
        self.pins().iter().filter(|r| r.holder == holder).count()
    }
    /// Add a record; false (nothing added) when the table is full.
    pub fn push(&mut self, r: PinRecord) -> bool {
        let n = self.nr as usize;
        if n >= PIN_TABLE_LEN {
            return false;
        }
        self.pins[n] = r;
        self.nr += 1;
        true
    }
    /// Whether another record fits.
    pub fn is_full(&self) -> bool {
        self.nr as usize >= PIN_TABLE_LEN
    }
    /// Drop one record of `holder` on frame `pfn` (the last listed), keeping
    /// the others in order; false when there is none.
    pub fn remove_one(&mut self, pfn: u32, holder: u32) -> bool {
        let n = (self.nr as usize).min(PIN_TABLE_LEN);
        let Some(i) = self.pins[..n].iter().rposition(|r| r.pfn == pfn && r.holder == holder) else { return false };
        self.pins.copy_within(i + 1..n, i);
        self.pins[n - 1] = PinRecord::EMPTY;
        self.nr = n as u32 - 1;
        true
    }
    /// Drop `holder`'s records, keeping the others in order.
    pub fn remove_holder(&mut self, holder: u32) {
        let n = (self.nr as usize).min(PIN_TABLE_LEN);
        let mut kept = 0;
        for i in 0..n {
            if self.pins[i].holder != holder {
                self.pins[kept] = self.pins[i];
                kept += 1;
            }
        }
        for r in &mut self.pins[kept..n] {
            *r = PinRecord::EMPTY;
        }
        self.nr = kept as u32;
    }
}

/// The descriptor.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestDesc {
    /// [`DESC_MAGIC`].
    pub magic: u32,
    /// [`DESC_VERSION`].
    pub version: u32,
    /// `size_of::<GuestDesc>()`.
    pub desc_size: u32,
    /// `size_of::<PageRecord>()` (32).
    pub page_record_size: u32,
    /// `size_of::<CmaAreaRecord>()` (64).
    pub cma_record_size: u32,
    /// `size_of::<TraceRecord>()` (64).
    pub trace_record_size: u32,
    /// `size_of::<ZoneRecord>()` (488).
    pub zone_record_size: u32,
    /// `size_of::<AddressSpaceRecord>()` (16).
    pub as_record_size: u32,

    /// Sequence count: odd while the guest is changing mm state.
    pub mm_seq: u32,
    /// Fault injections armed (bit `1 << INJECT_*` of `trace.rs`).
    pub inject_mask: u32,
    /// Page size (4096).
    pub page_size: u32,
    /// Physical address of the kernel's `KALLSYMS` table
    /// (`crate::kallsyms`; 0: none): the host names kernel functions with it.
    pub kallsyms_pa: u32,

    /// First PFN described by the page array.
    pub base_pfn: u32,
    /// Number of page records.
    pub nr_pages: u32,
    /// Physical address of `PageRecord[nr_pages]` (record `i` is `base_pfn + i`).
    pub page_array_pa: u32,
    /// Kernel virtual address of the same array (what `%p` of a `struct
    /// page *` prints).
    pub page_array_va: u32,

    /// Physical address of the pageblock bitmap (`u32` words,
    /// `NR_PAGEBLOCK_BITS` per pageblock).
    pub pageblock_pa: u32,
    /// Words in the pageblock bitmap.
    pub pageblock_words: u32,
    /// First PFN the pageblock bitmap covers (pageblock-aligned).
    pub pageblock_base_pfn: u32,
    /// `pageblock_order`.
    pub pageblock_order: u32,

    /// `MAX_ORDER` (number of buddy orders).
    pub max_order: u32,
    /// Zones used in `zones`.
    pub nr_zones: u32,
    /// Areas in the CMA table.
    pub nr_cma_areas: u32,
    /// Physical address of `CmaAreaRecord[nr_cma_areas]`.
    pub cma_table_pa: u32,

    /// Physical address of the trace ring (a `RingHeader` then records).
    pub ring_pa: u32,
    /// Ring capacity in records (a power of two).
    pub ring_capacity: u32,
    /// Entries in the address-space table.
    pub nr_address_spaces: u32,
    /// Physical address of `AddressSpaceRecord[nr_address_spaces]`.
    pub as_table_pa: u32,

    /// Kernel TTBR1 (the kernel half of every address space).
    pub kernel_ttbr1: u32,
    /// TTBCR (N selects the TTBR0/TTBR1 split).
    pub ttbcr: u32,
    /// Kernel TTBR0 used when no user address space is current.
    pub kernel_ttbr0: u32,
    /// Physical address of the CPU's [`LruAddRecord`] (0: none). The guest
    /// updates it in place; the host reads it live.
    pub lru_add_pa: u32,
    /// Physical address of the [`PinTable`] (0: none). The guest updates
    /// it in place; the host reads it live.
    pub pin_table_pa: u32,
    /// Capacity of that table ([`PIN_TABLE_LEN`]).
    pub pin_table_len: u32,

    /// Zone summary, `nr_zones` used, in zone order.
    pub zones: [ZoneRecord; DESC_MAX_ZONES],
}
const _: () = assert!(core::mem::size_of::<GuestDesc>() == 34 * 4 + 3 * 488);
const _: () = assert!(core::mem::size_of::<GuestDesc>() == 1600);
// SAFETY: integers only, no padding (size asserted).
unsafe impl Pod for GuestDesc {}

impl GuestDesc {
    /// A descriptor with the header fields set and everything else empty.
    pub const fn new() -> GuestDesc {
        GuestDesc {
            magic: DESC_MAGIC,
            version: DESC_VERSION,
            desc_size: core::mem::size_of::<GuestDesc>() as u32,
            page_record_size: core::mem::size_of::<PageRecord>() as u32,
            cma_record_size: core::mem::size_of::<CmaAreaRecord>() as u32,
            trace_record_size: core::mem::size_of::<crate::trace::TraceRecord>() as u32,
            zone_record_size: core::mem::size_of::<ZoneRecord>() as u32,
            as_record_size: core::mem::size_of::<AddressSpaceRecord>() as u32,
            mm_seq: 0,
            inject_mask: 0,
            page_size: crate::page::PAGE_SIZE,
            kallsyms_pa: 0,
            base_pfn: 0,
            nr_pages: 0,
            page_array_pa: 0,
            page_array_va: 0,
            pageblock_pa: 0,
            pageblock_words: 0,
            pageblock_base_pfn: 0,
            pageblock_order: 0,
            max_order: 0,
            nr_zones: 0,
            nr_cma_areas: 0,
            cma_table_pa: 0,
            ring_pa: 0,
            ring_capacity: 0,
            nr_address_spaces: 0,
            as_table_pa: 0,
            kernel_ttbr1: 0,
            ttbcr: 0,
            kernel_ttbr0: 0,
            lru_add_pa: 0,
            pin_table_pa: 0,
            pin_table_len: 0,
            zones: [ZoneRecord::EMPTY; DESC_MAX_ZONES],
        }
    }
}

impl Default for GuestDesc {
    fn default() -> Self {
        Self::new()
    }
}

/// Copy `s` into a NUL-padded fixed buffer (truncated, always NUL-terminated).
pub fn fixed_name<const N: usize>(s: &str) -> [u8; N] {
    let mut out = [0u8; N];
    let b = s.as_bytes();
    let n = b.len().min(N.saturating_sub(1));
    out[..n].copy_from_slice(&b[..n]);
    out
}

/// The bytes of a NUL-padded name up to the first NUL.
pub fn name_bytes(b: &[u8]) -> &[u8] {
    let n = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    &b[..n]
}

// ---------------------------------------------------------------------------
// DMA device ids: shared by the guest's drivers (owner tags
// `OWNER_KIND_DEVICE | id`, `dma_alloc`/`dma_free` trace records) and the
// host's DMA masters.
// ---------------------------------------------------------------------------

/// The PL111 CLCD / HDMI scan-out master.
pub const DMA_DEV_CLCD: u32 = 1;
/// The camera capture master.
pub const DMA_DEV_CAMERA: u32 = 2;
/// The seed's `cma_test` device (allocations only, no master).
pub const DMA_DEV_CMA_TEST: u32 = 3;

/// Display name of a device id.
pub const fn dma_dev_name(id: u32) -> &'static str {
    match id {
        DMA_DEV_CLCD => "clcd",
        DMA_DEV_CAMERA => "camera",
        DMA_DEV_CMA_TEST => "cma_test",
        _ => "dev",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_names() {
        let mut d = GuestDesc::new();
        d.nr_pages = 1234;
        d.zones[1].free_head[3][4] = 77;
        let b = as_bytes(&d);
        assert_eq!(b.len(), 1600);
        assert_eq!(&b[0..4], b"CMAD");
        let back: GuestDesc = from_bytes(b).unwrap();
        assert_eq!(back, d);
        assert!(from_bytes::<GuestDesc>(&b[..100]).is_none());
        let n: [u8; 8] = fixed_name("HighMemXYZ");
        assert_eq!(name_bytes(&n), b"HighMem");
        assert_eq!(d.trace_record_size, 64);
    }

    #[test]
    fn a_pin_table_takes_records_until_full() {
        let mut t = PinTable::EMPTY;
        assert!(t.pins().is_empty());
        for i in 0..PIN_TABLE_LEN as u32 {
            assert!(!t.is_full());
            assert!(t.push(PinRecord { pfn: 0x60000 + i, va: 0x40_0000 + i * 4096, asid: 1, holder: PIN_HOLDER_SHELL }));
        }
        assert!(t.is_full());
        assert!(!t.push(PinRecord { pfn: 1, va: 2, asid: 3, holder: PIN_HOLDER_CAMERA }));
        assert_eq!(t.pins().len(), PIN_TABLE_LEN);
        assert_eq!(t.pins()[PIN_TABLE_LEN - 1].pfn, 0x60000 + PIN_TABLE_LEN as u32 - 1);
        // a count beyond the array (an untrusted record) is clamped
        t.nr = 1000;
        assert_eq!(t.pins().len(), PIN_TABLE_LEN);
    }

    #[test]
    fn a_holder_drops_only_its_own_records() {
        let mut t = PinTable::EMPTY;
        let r = |pfn, holder| PinRecord { pfn, va: 0x40_0000, asid: 1, holder };
        for (pfn, h) in [(1, PIN_HOLDER_SHELL), (2, PIN_HOLDER_CAMERA), (3, PIN_HOLDER_SHELL), (4, PIN_HOLDER_CAMERA), (5, PIN_HOLDER_SHELL)] {
            assert!(t.push(r(pfn, h)));
        }
        assert_eq!((t.held_by(PIN_HOLDER_SHELL), t.held_by(PIN_HOLDER_CAMERA)), (3, 2));
        t.remove_holder(PIN_HOLDER_SHELL);
        assert_eq!(t.pins(), &[r(2, PIN_HOLDER_CAMERA), r(4, PIN_HOLDER_CAMERA)]);
        // the slots let go read as empty again
        assert_eq!(t.pins[2], PinRecord::EMPTY);
        t.remove_holder(PIN_HOLDER_SHELL);
        assert_eq!(t.nr, 2);
        t.remove_holder(PIN_HOLDER_CAMERA);
        assert!(t.pins().is_empty());
        assert_eq!(pin_holder_name(PIN_HOLDER_CAMERA), Some("capture"));
        // one record of one holder on one frame at a time
        for (pfn, h) in [(7, PIN_HOLDER_CAMERA), (7, PIN_HOLDER_SHELL), (8, PIN_HOLDER_CAMERA), (7, PIN_HOLDER_CAMERA)] {
            assert!(t.push(r(pfn, h)));
        }
        assert!(t.remove_one(7, PIN_HOLDER_CAMERA));
        assert_eq!(t.pins(), &[r(7, PIN_HOLDER_CAMERA), r(7, PIN_HOLDER_SHELL), r(8, PIN_HOLDER_CAMERA)]);
        assert!(!t.remove_one(8, PIN_HOLDER_SHELL));
        assert!(t.remove_one(7, PIN_HOLDER_CAMERA));
        assert!(!t.remove_one(7, PIN_HOLDER_CAMERA));
        assert_eq!(t.pins(), &[r(7, PIN_HOLDER_SHELL), r(8, PIN_HOLDER_CAMERA)]);
        assert_eq!(t.pins[2], PinRecord::EMPTY);
        assert_eq!(pin_holder_name(0), None);
    }
}
