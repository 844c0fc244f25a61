//! The guest's side of host introspection (`guest/abi`): one descriptor
//! announcing where the page array, pageblock bits, zones, CMA areas,
//! address spaces and the trace ring live; the `mm_seq` lock around every
//! mm mutation; binary trace records and the doorbell that makes the host
//! look at them at once.
//!
//! Board registers (cmaemu's, in the V2M sysregs block): SYS_CMAEMU_DESC
//! (0xF0) takes the descriptor's physical address, SYS_CMAEMU_DOORBELL
//! (0xF4) asks the host to drain the ring now, SYS_CMAEMU_PROMPT (0xF8)
//! says whether the shell waits at its prompt.
use crate::arch::{io_p2v, phys_to_virt, virt_to_phys, writel};
use crate::drivers::map;
use crate::{mm, vm};
use cmaemu_abi::desc::*;
use cmaemu_abi::page::{Pfn, PFN_NONE};
use cmaemu_abi::trace::{self as tr, RawRing, TraceRecord};
use core::sync::atomic::{AtomicU32, Ordering};

use cmaemu_abi::boot::{SYS_CMAEMU_DESC, SYS_CMAEMU_DOORBELL, SYS_CMAEMU_PROMPT};

/// Tell the host whether the shell waits at its prompt for a command
/// (stepping APIs pause there; kernel messages printed after the prompt
/// do not hide it).
pub fn at_prompt(waiting: bool) {
    writel(io_p2v(map::SYSREGS) + SYS_CMAEMU_PROMPT, waiting as u32);
}
const RING_CAP: u32 = 1024;

static DESC_VA: AtomicU32 = AtomicU32::new(0);
static RING_VA: AtomicU32 = AtomicU32::new(0);
static CMA_VA: AtomicU32 = AtomicU32::new(0);
static AS_VA: AtomicU32 = AtomicU32::new(0);
static DEPTH: AtomicU32 = AtomicU32::new(0);

fn desc() -> Option<&'static mut GuestDesc> {
    match DESC_VA.load(Ordering::Relaxed) {
        0 => None,
        // SAFETY: a kernel page allocated in `init`, never freed, written
        // only here (thread context; the host only reads it).
        va => Some(unsafe { &mut *(va as *mut GuestDesc) }),
    }
}

fn alloc_zeroed(bytes: usize) -> Option<u32> {
    let pa = mm::page_alloc()?;
    let order = cmaemu_mm::contiguous::get_order(bytes as u64);
    let pfn = pa.alloc_pages(cmaemu_mm::gfp::GFP_KERNEL, order, cmaemu_abi::page::OWNER_KIND_KERNEL).ok()?;
    let va = phys_to_virt(pfn.0 << 12);
    // SAFETY: fresh lowmem pages in the linear map, owned by this module.
    unsafe { core::ptr::write_bytes(va as *mut u8, 0, bytes) };
    Some(va)
}

/// Allocate and fill the descriptor, then announce it to the host.
pub fn init() {
    let Some(pa) = mm::page_alloc() else { return };
    let (Some(dva), Some(rva), Some(cva), Some(ava)) = (
        alloc_zeroed(core::mem::size_of::<GuestDesc>()),
        alloc_zeroed(tr::ring_bytes(RING_CAP)),
        alloc_zeroed(8 * core::mem::size_of::<CmaAreaRecord>()),
        alloc_zeroed(vm::MAX_TASKS * core::mem::size_of::<AddressSpaceRecord>()),
    ) else {
        crate::pr_info!("cmaemu: no memory for the introspection descriptor");
        return;
    };
    // SAFETY: `rva` points at ring_bytes(RING_CAP) bytes we own for good.
    let mut ring = unsafe { RawRing::new(rva as *mut u8, tr::ring_bytes(RING_CAP)) };
    let _ = tr::init(&mut ring, RING_CAP);
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
    d.nr_address_spaces = vm::MAX_TASKS as u32;
    d.kernel_ttbr1 = crate::arch::ttbr1();
    d.ttbcr = crate::arch::ttbcr();
    d.kernel_ttbr0 = crate::paging::EMPTY_TTBR0.load(Ordering::Relaxed);
    d.inject_mask = inject_mask();
    d.lru_add_pa = virt_to_phys(&pa.lru_add as *const _ as u32);
    d.kallsyms_pa = virt_to_phys(crate::kallsyms::KALLSYMS.as_ptr() as u32);
    // SAFETY: `dva` is our descriptor page.
    unsafe { core::ptr::write_volatile(dva as *mut GuestDesc, d) };
    DESC_VA.store(dva, Ordering::Relaxed);
    RING_VA.store(rva, Ordering::Relaxed);
    // injections that fired before the ring existed (the boot-time atomic
    // pool allocation) are recorded now, with their own time
    let n = EARLY_N.load(Ordering::Relaxed).min(EARLY_MAX);
    for k in 0..n {
        // SAFETY: single CPU at boot; EARLY is only written before the
        // ring exists (see `fired`).
        let (ts, id, pfn, arg) = unsafe { (*core::ptr::addr_of!(EARLY))[k] };
        push(&TraceRecord::inject(ts, id, pfn as u64, arg, 0));
    }
    CMA_VA.store(cva, Ordering::Relaxed);
    AS_VA.store(ava, Ordering::Relaxed);
    refresh();
    crate::arch::dsb();
    writel(io_p2v(map::SYSREGS) + SYS_CMAEMU_DESC, virt_to_phys(dva));
}

/// `cmaemu.inject=` as the descriptor's bit mask (1 << INJECT_*).
pub fn inject_mask() -> u32 {
    let mut m = 0;
    if let Some(cfg) = mm::config() {
        for i in cfg.inject.iter() {
            for id in 1..32u8 {
                if tr::inject_name(id) == i.name() {
                    m |= 1 << id;
                }
            }
        }
    }
    m
}

pub fn injected(id: u8) -> bool {
    inject_mask() & (1 << id) != 0
}

/// Refresh the zone summary, CMA table and address-space table.
pub fn refresh() {
    let (Some(d), Some(pa)) = (desc(), mm::page_alloc()) else { return };
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
    if let Some(areas) = crate::cma::areas() {
        let cva = CMA_VA.load(Ordering::Relaxed) as *mut CmaAreaRecord;
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
            // SAFETY: the table has room for 8 records.
            unsafe { core::ptr::write_volatile(cva.add(n), r) };
            n += 1;
        }
        d.nr_cma_areas = n as u32;
    }
    let ava = AS_VA.load(Ordering::Relaxed) as *mut AddressSpaceRecord;
    for i in 0..vm::MAX_TASKS {
        let r = match vm::task(i) {
            Some(t) => AddressSpaceRecord { asid: t.asid as u32, ttbr0: t.ttbr0, flags: AS_LIVE, pid: i as u32 + 1 },
            None => AddressSpaceRecord { asid: 0, ttbr0: 0, flags: 0, pid: 0 },
        };
        // SAFETY: the table has MAX_TASKS records.
        unsafe { core::ptr::write_volatile(ava.add(i), r) };
    }
}

/// Start of an mm mutation: `mm_seq` odd (nesting allowed).
pub fn begin() {
    if DEPTH.fetch_add(1, Ordering::Relaxed) == 0 {
        if let Some(d) = desc() {
            d.mm_seq = d.mm_seq.wrapping_add(1) | 1;
            crate::arch::dsb();
        }
    }
}

/// End of an mm mutation: refresh the summary, `mm_seq` even, doorbell.
pub fn end() {
    if DEPTH.fetch_sub(1, Ordering::Relaxed) == 1 {
        // the last page's records go with the doorbell below
        crate::dma::KEnv::flush_pending_quiet();
        refresh();
        if let Some(d) = desc() {
            crate::arch::dsb();
            d.mm_seq = (d.mm_seq | 1).wrapping_add(1);
        }
        doorbell();
    }
}

/// Ask the host to drain the ring now.
pub fn doorbell() {
    doorbell_value(cmaemu_abi::boot::DOORBELL_DRAIN);
}

/// Ring the doorbell with a value (`DOORBELL_*`) saying why.
pub fn doorbell_value(v: u32) {
    if DESC_VA.load(Ordering::Relaxed) != 0 {
        crate::arch::dsb();
        writel(io_p2v(map::SYSREGS) + SYS_CMAEMU_DOORBELL, v);
    }
}

pub fn now() -> u64 {
    crate::time::sched_clock()
}

/// Push one record (dropped, and counted by the ring, when it is full).
pub fn push(rec: &TraceRecord) {
    let rva = RING_VA.load(Ordering::Relaxed);
    if rva == 0 {
        return;
    }
    crate::arch::without_irqs(|| {
        // SAFETY: the ring memory is ours for good (see `init`).
        let mut ring = unsafe { RawRing::new(rva as *mut u8, tr::ring_bytes(RING_CAP)) };
        tr::push(&mut ring, rec);
    });
}

/// `struct page *` value of a frame (its record's kernel VA).
pub fn page_ptr(pfn: Pfn) -> u32 {
    match desc() {
        Some(d) => d.page_array_va.wrapping_add(pfn.0.wrapping_sub(d.base_pfn).wrapping_mul(32)),
        None => 0,
    }
}

/// Record that an injection fired (for the trace and the reports).
pub fn fired_name(name: &str, pfn: u32, arg: u32) {
    if let Some(id) = (0..32u8).find(|&i| tr::inject_name(i) == name) {
        fired(id, pfn, arg);
    }
}

const EARLY_MAX: usize = 8;
static mut EARLY: [(u64, u8, u32, u32); EARLY_MAX] = [(0, 0, 0, 0); EARLY_MAX];
static EARLY_N: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

/// Record that injection `id` fired (for the trace and the reports).
pub fn fired(id: u8, pfn: u32, arg: u32) {
    if RING_VA.load(Ordering::Relaxed) == 0 {
        let k = EARLY_N.fetch_add(1, Ordering::Relaxed);
        if k < EARLY_MAX {
            // SAFETY: single CPU, boot only (the ring does not exist yet).
            unsafe { (*core::ptr::addr_of_mut!(EARLY))[k] = (now(), id, pfn, arg) };
        }
        return;
    }
    push(&TraceRecord::inject(now(), id, pfn as u64, arg, 0));
}
