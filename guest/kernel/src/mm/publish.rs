//! The publisher: the descriptor announcing where the page array,
//! pageblock bits, zones, CMA areas, address spaces and the trace ring
//! live, and its summary (zones, CMA table, address-space table) refreshed
//! from [`Mm`] at the end of every mm section (`mm_seq` odd → even).
//! It reads only the mm state; the transport (ring, doorbell, `mm_seq`)
//! is `hostif`'s.
use super::task::MAX_TASKS;
use super::Mm;
use crate::arch::{phys_to_virt, virt_to_phys};
use crate::hostif;
use cmaemu_abi::desc::*;
use cmaemu_abi::page::PFN_NONE;
use cmaemu_abi::trace::{self as tr};
use cmaemu_mm::buddy::PageAlloc;
use core::sync::atomic::{AtomicU32, Ordering};

const RING_CAP: u32 = 1024;

static CMA_VA: AtomicU32 = AtomicU32::new(0);
static AS_VA: AtomicU32 = AtomicU32::new(0);

fn alloc_zeroed(pa: &mut PageAlloc<'_>, bytes: usize) -> Option<u32> {
    let order = cmaemu_mm::contiguous::get_order(bytes as u64);
    let pfn = pa.alloc_pages(cmaemu_mm::gfp::GFP_KERNEL, order, cmaemu_abi::page::OWNER_KIND_KERNEL).ok()?;
    let va = phys_to_virt(pfn.0 << 12);
    // fresh lowmem pages in the linear map, owned by this module
    crate::arch::ram_zero(va, bytes);
    Some(va)
}

/// Allocate and fill the descriptor, then announce it to the host.
pub fn init(mm: &mut Mm) {
    let Some(pa) = &mut mm.pa else { return };
    let (Some(dva), Some(rva), Some(cva), Some(ava)) = (
        alloc_zeroed(pa, core::mem::size_of::<GuestDesc>()),
        alloc_zeroed(pa, tr::ring_bytes(RING_CAP)),
        alloc_zeroed(pa, 8 * core::mem::size_of::<CmaAreaRecord>()),
        alloc_zeroed(pa, MAX_TASKS * core::mem::size_of::<AddressSpaceRecord>()),
    ) else {
        crate::pr_info!("cmaemu: no memory for the introspection descriptor");
        return;
    };
    let mut d = GuestDesc::new();
    let mem = &pa.mem;
    d.base_pfn = mem.base_pfn().0;
    d.nr_pages = mem.end_pfn().0 - mem.base_pfn().0;
    let rec_va = mem.records().as_ptr() as u32;
    d.page_array_va = rec_va;
    d.page_array_pa = virt_to_phys(rec_va);
    let pb = mem.pageblock_words();
    d.pageblock_pa = virt_to_phys(pb.as_ptr() as u32);
    d.pageblock_words = pb.len() as u32;
    d.pageblock_order = pa.profile.pageblock_order;
    d.pageblock_base_pfn = (d.base_pfn >> d.pageblock_order) << d.pageblock_order;
    d.max_order = pa.profile.max_order;
    d.ring_pa = virt_to_phys(rva);
    d.ring_capacity = RING_CAP;
    d.cma_table_pa = virt_to_phys(cva);
    d.as_table_pa = virt_to_phys(ava);
    d.nr_address_spaces = MAX_TASKS as u32;
    d.kernel_ttbr1 = crate::arch::ttbr1();
    d.ttbcr = crate::arch::ttbcr();
    d.kernel_ttbr0 = crate::paging::EMPTY_TTBR0.load(Ordering::Relaxed);
    d.inject_mask = hostif::inject_mask();
    d.lru_add_pa = virt_to_phys(&pa.lru_add as *const _ as u32);
    // the mm state never moves (a static): the host reads the table in place
    d.pin_table_pa = virt_to_phys(&mm.tasks.pins as *const _ as u32);
    d.pin_table_len = PIN_TABLE_LEN as u32;
    d.kallsyms_pa = virt_to_phys(crate::kallsyms::KALLSYMS.as_ptr() as u32);
    hostif::attach(dva, d, rva, RING_CAP);
    CMA_VA.store(cva, Ordering::Relaxed);
    AS_VA.store(ava, Ordering::Relaxed);
    refresh(mm);
    hostif::announce();
}

/// Refresh the zone summary, CMA table and address-space table.
pub fn refresh(mm: &mut Mm) {
    let Some(pa) = &mm.pa else { return };
    hostif::with_desc(|d| {
        let zones = pa.zones();
        d.nr_zones = zones.len().min(DESC_MAX_ZONES) as u32;
        for (i, z) in zones.iter().take(DESC_MAX_ZONES).enumerate() {
            let mut r = ZoneRecord::EMPTY;
            let name = z.kind.name().as_bytes();
            let n = name.len().min(ZONE_NAME_LEN);
            r.name[..n].copy_from_slice(&name[..n]);
            r.start_pfn = z.zone_start_pfn.0;
            r.end_pfn = z.zone_start_pfn.0 + z.spanned_pages;
            r.present_pages = z.present_pages;
            r.managed_pages = z.managed_pages as u32;
            r.cma_pages = z.cma_pages as u32;
            r.nr_free_pages = z.nr_free_pages.max(0) as u32;
            r.nr_free_cma_pages = z.nr_free_cma_pages.max(0) as u32;
            r.nr_isolate_pageblock = z.nr_isolate_pageblock;
            for o in 0..(pa.profile.max_order as usize).min(DESC_MAX_ORDER) {
                r.nr_free[o] = z.free_area[o].nr_free as u32;
                for mt in 0..cmaemu_abi::page::MIGRATE_TYPES {
                    let h = z.free_area[o].free_list[mt].head;
                    r.free_head[o][mt] = if h == PFN_NONE { PFN_NONE } else { h };
                }
            }
            d.zones[i] = r;
        }
        if let Some(areas) = &mm.areas {
            let cva = CMA_VA.load(Ordering::Relaxed);
            let mut n = 0;
            for (_, c) in areas.iter().take(8) {
                let mut r = CmaAreaRecord {
                    name: [0; CMA_NAME_LEN],
                    base_pfn: c.base_pfn().0,
                    count: c.count() as u32,
                    order_per_bit: c.order_per_bit(),
                    bitmap_pa: 0,
                    bitmap_words: 0,
                    flags: 0,
                    alloc_pages_success: c.alloc_pages_success as u32,
                    alloc_pages_fail: c.alloc_pages_fail as u32,
                };
                let nm = c.cma_get_name().as_bytes();
                let k = nm.len().min(CMA_NAME_LEN - 1);
                r.name[..k].copy_from_slice(&nm[..k]);
                if let Some(b) = c.bitmap() {
                    r.bitmap_pa = virt_to_phys(b.as_ptr() as u32);
                    r.bitmap_words = b.len() as u32;
                    r.flags = CMA_AREA_ACTIVE;
                }
                // the table (allocated in `init`, ours for good) has room
                // for 8 records
                crate::arch::ram_write(cva + (n * core::mem::size_of::<CmaAreaRecord>()) as u32, r);
                n += 1;
            }
            d.nr_cma_areas = n as u32;
        }
    });
    let ava = AS_VA.load(Ordering::Relaxed);
    if ava == 0 {
        return;
    }
    for (i, t) in mm.tasks.slots.iter().enumerate() {
        let r = match t {
            Some(t) => AddressSpaceRecord { asid: t.asid as u32, ttbr0: t.ttbr0, flags: AS_LIVE, pid: i as u32 + 1 },
            None => AddressSpaceRecord { asid: 0, ttbr0: 0, flags: 0, pid: 0 },
        };
        // the table (allocated in `init`, ours for good) has MAX_TASKS
        // records
        crate::arch::ram_write(ava + (i * core::mem::size_of::<AddressSpaceRecord>()) as u32, r);
    }
}

/// End of an mm mutation (`hostif::begin` started it): the outermost end
/// sends the migrated page's records, refreshes the summary, makes
/// `mm_seq` even and rings the doorbell.
pub fn end(mm: &mut Mm) {
    if hostif::leave() {
        close(mm);
    }
}

/// [`end`] for a caller that does not hold the mm state.
pub fn end_unheld() {
    if hostif::leave() && super::with_mm(close).is_none() {
        hostif::seq_close();
        hostif::doorbell();
    }
}

fn close(mm: &mut Mm) {
    // the last page's records go with the doorbell below
    super::pending::flush_quiet(&mut mm.pending);
    refresh(mm);
    hostif::seq_close();
    hostif::doorbell();
}
