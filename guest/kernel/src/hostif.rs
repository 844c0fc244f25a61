//! The host channel (`guest/abi`): the trace ring the guest pushes binary
//! records into, the doorbell that makes the host look at them at once,
//! the `mm_seq` word of the descriptor around every mm mutation, the
//! clock records carry, and the fault-injection mask. It knows nothing of
//! the mm state: `mm::publish` fills the descriptor and hands it over.
//!
//! Board registers (cmaemu's, in the V2M sysregs block): SYS_CMAEMU_DESC
//! (0xF0) takes the descriptor's physical address, SYS_CMAEMU_DOORBELL
//! (0xF4) asks the host to drain the ring now, SYS_CMAEMU_PROMPT (0xF8)
//! says whether the shell waits at its prompt.
use crate::arch::{io_p2v, virt_to_phys, writel, Guarded};
use crate::drivers::map;
use cmaemu_abi::desc::GuestDesc;
use cmaemu_abi::trace::{self as tr, RawRing, TraceRecord};
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use cmaemu_abi::boot::{SYS_CMAEMU_DESC, SYS_CMAEMU_DOORBELL, SYS_CMAEMU_PROMPT};

/// Tell the host whether the shell waits at its prompt for a command
/// (stepping APIs pause there; kernel messages printed after the prompt
/// do not hide it).
pub fn at_prompt(waiting: bool) {
    writel(io_p2v(map::SYSREGS) + SYS_CMAEMU_PROMPT, waiting as u32);
}

static DESC_VA: AtomicU32 = AtomicU32::new(0);
static RING_VA: AtomicU32 = AtomicU32::new(0);
static RING_CAP: AtomicU32 = AtomicU32::new(0);
static DEPTH: AtomicU32 = AtomicU32::new(0);
/// `cmaemu.inject=` as a bit mask (1 << INJECT_*), set once at boot.
static INJECT_MASK: AtomicU32 = AtomicU32::new(0);

/// The descriptor page (set by [`attach`]).
static DESC: Guarded<&'static mut GuestDesc> = Guarded::new();

/// Take over the descriptor page `dva` (filled with `d`) and the ring at
/// `rva` (`cap` records); push the injections that fired before the ring
/// existed.
pub fn attach(dva: u32, d: GuestDesc, rva: u32, cap: u32) {
    // SAFETY: `rva` points at ring_bytes(cap) bytes of fresh kernel pages
    // the caller hands over for good.
    let mut ring = unsafe { RawRing::new(rva as *mut u8, tr::ring_bytes(cap)) };
    let _ = tr::init(&mut ring, cap);
    // SAFETY: `dva` is a fresh kernel page the caller hands over for good,
    // large enough for a descriptor; from here on it is reached only
    // through `DESC` (the host only reads it).
    let desc = unsafe {
        core::ptr::write_volatile(dva as *mut GuestDesc, d);
        &mut *(dva as *mut GuestDesc)
    };
    DESC.install(desc);
    DESC_VA.store(dva, Ordering::Relaxed);
    RING_CAP.store(cap, Ordering::Relaxed);
    RING_VA.store(rva, Ordering::Relaxed);
    // injections that fired before the ring existed (the boot-time atomic
    // pool allocation) are recorded now, with their own time
    let n = EARLY_N.load(Ordering::Relaxed).min(EARLY_MAX);
    for k in 0..n {
        if let Some((ts, id, pfn, arg)) = EARLY.with(|e| e[k]) {
            push(&TraceRecord::inject(ts, id, pfn as u64, arg, 0));
        }
    }
}

/// Give the host the descriptor's address.
pub fn announce() {
    crate::arch::dsb();
    writel(io_p2v(map::SYSREGS) + SYS_CMAEMU_DESC, virt_to_phys(DESC_VA.load(Ordering::Relaxed)));
}

/// Run `f` on the descriptor; `None` before [`attach`].
pub fn with_desc<R>(f: impl FnOnce(&mut GuestDesc) -> R) -> Option<R> {
    DESC.with(|d| f(d))
}

/// Set the injection mask (`mm::parse_params`).
pub fn set_inject_mask(m: u32) {
    INJECT_MASK.store(m, Ordering::Relaxed);
}

/// `cmaemu.inject=` as the descriptor's bit mask (1 << INJECT_*).
pub fn inject_mask() -> u32 {
    INJECT_MASK.load(Ordering::Relaxed)
}

pub fn injected(id: u8) -> bool {
    inject_mask() & (1 << id) != 0
}

/// Start of an mm mutation: `mm_seq` odd (nesting allowed).
pub fn begin() {
    if DEPTH.fetch_add(1, Ordering::Relaxed) == 0 {
        with_desc(|d| {
            d.mm_seq = d.mm_seq.wrapping_add(1) | 1;
            crate::arch::dsb();
        });
    }
}

/// Leave an mm mutation; true for the outermost one, whose caller then
/// publishes the summary and calls [`seq_close`] (`mm::publish::end`).
pub fn leave() -> bool {
    DEPTH.fetch_sub(1, Ordering::Relaxed) == 1
}

/// `mm_seq` even: the state the descriptor describes is consistent.
pub fn seq_close() {
    with_desc(|d| {
        crate::arch::dsb();
        d.mm_seq = (d.mm_seq | 1).wrapping_add(1);
    });
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
    let cap = RING_CAP.load(Ordering::Relaxed);
    crate::arch::without_irqs(|| {
        // SAFETY: the ring memory is ours for good (see `attach`); IRQs
        // are masked, so this is the only view of it while it lives.
        let mut ring = unsafe { RawRing::new(rva as *mut u8, tr::ring_bytes(cap)) };
        tr::push(&mut ring, rec);
    });
}

/// Record that an injection fired (for the trace and the reports).
pub fn fired_name(name: &str, pfn: u32, arg: u32) {
    if let Some(id) = (0..32u8).find(|&i| tr::inject_name(i) == name) {
        fired(id, pfn, arg);
    }
}

const EARLY_MAX: usize = 8;
/// Injections that fired before the ring existed: (time, id, pfn, arg).
static EARLY: Guarded<[(u64, u8, u32, u32); EARLY_MAX]> = Guarded::new_with([(0, 0, 0, 0); EARLY_MAX]);
static EARLY_N: AtomicUsize = AtomicUsize::new(0);

/// Record that injection `id` fired (for the trace and the reports).
pub fn fired(id: u8, pfn: u32, arg: u32) {
    if RING_VA.load(Ordering::Relaxed) == 0 {
        let k = EARLY_N.fetch_add(1, Ordering::Relaxed);
        if k < EARLY_MAX {
            let ts = now();
            EARLY.with(|e| e[k] = (ts, id, pfn, arg));
        }
        return;
    }
    push(&TraceRecord::inject(now(), id, pfn as u64, arg, 0));
}
