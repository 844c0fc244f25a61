//! User address spaces: each task has its own TTBR0 table (8 KiB, TTBCR.N
//! = 1 splits at 2 GiB) with 4 KiB small pages, so that anonymous movable
//! pages have real PTEs that migration must rewrite. The shell's `fill`,
//! `check`, `free`, `pin` commands work on the current task.
use crate::arch::{self, phys_to_virt};
use crate::{mm, paging, println};
use cmaemu_abi::page::{Pfn, OWNER_KIND_PGTABLE, OWNER_KIND_USER};
use cmaemu_mm::gfp;

/// First user VA of a task's anonymous region.
pub const USER_BASE: u32 = 0x0040_0000;
/// End of the user half (TTBR0 with TTBCR.N = 1).
pub const USER_END: u32 = 0x8000_0000;
pub const MAX_TASKS: usize = 4;

#[derive(Clone, Copy)]
pub struct Task {
    pub asid: u16,
    /// Physical address of the task's TTBR0 table (8 KiB aligned).
    pub ttbr0: u32,
    /// Pages mapped at USER_BASE .. USER_BASE + nr_pages * 4 KiB.
    pub nr_pages: u32,
    pub seed: u32,
    /// Pages whose refcount `pin` raised (from the start of the region).
    pub pinned: u32,
    /// Pages `share` mapped from another task: `shared.1` pages from
    /// index `shared.0` (they hold that task's pattern: `check` skips them).
    pub shared: (u32, u32),
}

static mut TASKS: [Option<Task>; MAX_TASKS] = [None; MAX_TASKS];
static mut CURRENT: usize = 0;
static QUIET: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

macro_rules! say {
    ($($a:tt)*) => {
        if !QUIET.load(core::sync::atomic::Ordering::Relaxed) {
            println!($($a)*);
        }
    };
}

fn quietly(f: impl FnOnce()) {
    QUIET.store(true, core::sync::atomic::Ordering::Relaxed);
    f();
    QUIET.store(false, core::sync::atomic::Ordering::Relaxed);
}
pub fn fill_quiet(mib: u32) {
    quietly(|| fill(mib, None))
}
pub fn free_quiet(mib: u32) {
    quietly(|| free(mib))
}
pub fn pin_quiet(n: u32) {
    quietly(|| pin(n))
}
pub fn unpin_quiet() {
    quietly(unpin)
}

/// `NR_ANON_MAPPED`: anonymous pages mapped in all tasks.
pub fn anon_pages() -> u64 {
    tasks().iter().flatten().map(|t| t.nr_pages as u64).sum()
}

fn tasks() -> &'static mut [Option<Task>; MAX_TASKS] {
    // SAFETY: single CPU; tasks are only touched from thread context.
    unsafe { &mut *core::ptr::addr_of_mut!(TASKS) }
}

pub fn task(i: usize) -> Option<&'static mut Task> {
    tasks().get_mut(i).and_then(|t| t.as_mut())
}

pub fn current_index() -> usize {
    // SAFETY: as in `tasks`.
    unsafe { CURRENT }
}

pub fn current() -> Option<&'static mut Task> {
    // SAFETY: as in `tasks`.
    task(unsafe { CURRENT })
}

/// `mm_alloc` + `pgd_alloc`: a new address space (an empty user table).
pub fn task_new() -> Result<usize, &'static str> {
    let slot = tasks().iter().position(|t| t.is_none()).ok_or("too many tasks")?;
    let pa = mm::page_alloc().ok_or("no page allocator")?;
    let pgd = pa.alloc_pages(gfp::GFP_KERNEL, 1, OWNER_KIND_PGTABLE | slot as u32).map_err(|_| "out of memory for the page table")?;
    let ttbr0 = pgd.0 << 12;
    // SAFETY: two fresh lowmem pages, linearly mapped, owned by this task.
    unsafe { core::ptr::write_bytes(phys_to_virt(ttbr0) as *mut u8, 0, 8192) };
    tasks()[slot] = Some(Task { asid: slot as u16 + 1, ttbr0, nr_pages: 0, seed: 0, pinned: 0, shared: (0, 0) });
    Ok(slot)
}

/// `switch_mm`: make task `i` current (TTBR0, TLB flush: no ASIDs used).
pub fn switch_to(i: usize) -> bool {
    let Some(t) = task(i) else { return false };
    arch::set_ttbr0(t.ttbr0);
    arch::tlb_flush_all();
    // SAFETY: as in `tasks`.
    unsafe { CURRENT = i };
    true
}

fn l1_entry(t: &Task, va: u32) -> *mut u32 {
    (phys_to_virt(t.ttbr0) + (va >> 20) * 4) as *mut u32
}

/// The PTE slot of `va`, allocating the L2 table if `alloc`.
fn pte_slot(t: &Task, va: u32, alloc: bool) -> Option<*mut u32> {
    let l1 = l1_entry(t, va);
    // SAFETY: the task's L1 table is a live 8 KiB lowmem allocation and
    // va < USER_END keeps the index inside it.
    let mut d = unsafe { core::ptr::read_volatile(l1) };
    if d & 3 != 1 {
        if !alloc {
            return None;
        }
        let pa = mm::page_alloc()?;
        let p = pa.alloc_pages(gfp::GFP_KERNEL, 0, OWNER_KIND_PGTABLE | t.asid as u32).ok()?;
        let l2 = p.0 << 12;
        // SAFETY: a fresh lowmem page used as the L2 table (first 1 KiB).
        unsafe {
            core::ptr::write_bytes(phys_to_virt(l2) as *mut u8, 0, 4096);
            d = l2 | paging::PDE_TABLE;
            core::ptr::write_volatile(l1, d);
        }
    }
    Some((phys_to_virt(d & !0x3ff) + ((va >> 12) & 0xff) * 4) as *mut u32)
}

/// Read the PTE of `va` in task `t` (0 = none).
pub fn pte_get(t: &Task, va: u32) -> u32 {
    match pte_slot(t, va, false) {
        // SAFETY: a slot inside a live L2 table.
        Some(p) => unsafe { core::ptr::read_volatile(p) },
        None => 0,
    }
}

/// Map `pfn` at `va` (user RW, XN, normal memory).
pub fn set_pte(t: &Task, va: u32, pfn: Pfn) -> bool {
    match pte_slot(t, va, true) {
        Some(p) => {
            // SAFETY: a slot inside a live L2 table.
            unsafe { core::ptr::write_volatile(p, (pfn.0 << 12) | paging::PTE_USER_DATA) };
            arch::dsb();
            true
        }
        None => false,
    }
}

/// Clear the PTE of `va`; returns the frame it mapped.
pub fn clear_pte(t: &Task, va: u32) -> Option<Pfn> {
    let p = pte_slot(t, va, false)?;
    // SAFETY: a slot inside a live L2 table.
    let old = unsafe { core::ptr::read_volatile(p) };
    if old & 2 == 0 {
        return None;
    }
    // SAFETY: as above.
    unsafe { core::ptr::write_volatile(p, 0) };
    arch::dsb();
    Some(Pfn(old >> 12))
}

/// The verifiable pattern of the word at user address `va`.
pub fn pattern(seed: u32, va: u32) -> u32 {
    let mut x = va ^ seed.wrapping_mul(0x9e37_79b9);
    x = x.wrapping_mul(0x85eb_ca6b);
    x ^ (x >> 13)
}

fn page_va(i: u32) -> u32 {
    USER_BASE + i * 4096
}

/// `fill MiB [seed]`: fault in movable anonymous pages and write the
/// pattern through the task's own VAs.
pub fn fill(mib: u32, seed: Option<u32>) {
    let Some(t) = current() else { say!("fill: no task"); return };
    let Some(pa) = mm::page_alloc() else { return };
    if let Some(s) = seed {
        if t.nr_pages == 0 {
            t.seed = s;
        }
    }
    let want = mib.saturating_mul(256);
    let mut done = 0;
    while done < want {
        let va = page_va(t.nr_pages);
        if va >= USER_END - 4096 {
            say!("fill: address space full");
            break;
        }
        let pfn = match pa.alloc_pages(gfp::GFP_HIGHUSER_MOVABLE, 0, OWNER_KIND_USER | t.asid as u32) {
            Ok(p) => p,
            Err(_) => {
                say!("fill: out of memory after {} pages", done);
                break;
            }
        };
        if !set_pte(t, va, pfn) {
            let _ = pa.__free_pages(pfn, 0);
            say!("fill: out of memory for page tables after {} pages", done);
            break;
        }
        crate::rmapk::add(pfn, t.asid, va);
        crate::dma::lru_cache_add(pfn);
        // Write through the user mapping (TTBR0 of the current task).
        let p = va as *mut u32;
        for w in 0..1024u32 {
            // SAFETY: `va` was just mapped user RW in the current TTBR0
            // table; kernel accesses to AP=11 pages are allowed.
            unsafe { core::ptr::write_volatile(p.add(w as usize), pattern(t.seed, va + w * 4)) };
        }
        t.nr_pages += 1;
        done += 1;
    }
    say!("fill: {} pages mapped at {:#010x}-{:#010x}", t.nr_pages, USER_BASE, page_va(t.nr_pages));
}

/// `check`: verify every byte through the task's VAs.
pub fn check() -> u32 {
    check_range(0, u32::MAX)
}

/// `check in S E`: verify only the pages whose frames lie in [S, E).
pub fn check_range(start_pfn: u32, end_pfn: u32) -> u32 {
    let Some(t) = current() else { println!("check: no task"); return 0 };
    let mut bad = 0;
    let mut seen = 0;
    // From the top down: the lowest VAs are touched last (and stay hot in
    // the TLB for whatever runs next).
    for i in (0..t.nr_pages).rev() {
        let va = page_va(i);
        let pte = pte_get(t, va);
        let pfn = pte >> 12;
        if pte & 2 == 0 || pfn < start_pfn || pfn >= end_pfn {
            continue;
        }
        seen += 1;
        let p = va as *const u32;
        // a page shared from another task holds that task's pattern
        if i >= t.shared.0 && i < t.shared.0 + t.shared.1 {
            seen -= 1;
            continue;
        }
        for w in 0..1024u32 {
            // SAFETY: `va` is mapped user RW in the current task.
            let v = unsafe { core::ptr::read_volatile(p.add(w as usize)) };
            let want = pattern(t.seed, va + w * 4);
            if v != want {
                let pte = pte_get(t, va);
                if bad < 16 {
                    println!(
                        "check: page at va {:#010x} (pfn {:#x}) differs at offset {:#x}: {:#010x} != {:#010x}",
                        va,
                        pte >> 12,
                        w * 4,
                        v,
                        want
                    );
                }
                bad += 1;
                break;
            }
        }
    }
    if bad == 0 {
        println!("check: {} pages ok", seen);
    } else {
        println!("check: {} of {} pages bad", bad, seen);
    }
    bad
}

/// `free MiB out S E`: unmap and free up to MiB of pages whose frames lie
/// outside [S, E) (pfns), from the top of the region; the region keeps its
/// size (the freed VAs are left unmapped and skipped by `check`).
pub fn free_outside(mib: u32, start: u32, end: u32) {
    let Some(t) = current() else { return };
    let Some(pa) = mm::page_alloc() else { return };
    // unmap_region: lru_add_drain() before the pages are zapped.
    pa.lru_add_drain();
    let mut n = mib.saturating_mul(256);
    let mut i = t.nr_pages;
    let mut freed = 0;
    while n > 0 && i > t.pinned {
        i -= 1;
        let va = page_va(i);
        let pte = pte_get(t, va);
        let pfn = pte >> 12;
        if pte & 2 == 0 || (pfn >= start && pfn < end) {
            continue;
        }
        if let Some(pfn) = clear_pte(t, va) {
            arch::tlb_flush_va(va);
            crate::rmapk::remove(pfn, t.asid, va);
            crate::dma::lru_del(pfn);
            let _ = pa.__free_pages(pfn, 0);
            freed += 1;
            n -= 1;
        }
    }
    say!("free: {} pages outside {:#x}-{:#x} freed", freed, start, end);
}

/// `free MiB`: unmap and free pages from the top of the region.
pub fn free(mib: u32) {
    let Some(t) = current() else { return };
    let Some(pa) = mm::page_alloc() else { return };
    // unmap_region: lru_add_drain() before the pages are zapped.
    pa.lru_add_drain();
    let mut n = mib.saturating_mul(256).min(t.nr_pages);
    // Fault injection `double_free`: a second, erroneous put_page drops the
    // mapping's reference of the page below the region's top: the page goes
    // back to the buddy while the task still maps it.
    if n > 0 && t.nr_pages > n && crate::hostif::injected(cmaemu_abi::trace::INJECT_DOUBLE_FREE) {
        let va = page_va(t.nr_pages - n - 1);
        let pte = pte_get(t, va);
        if pte & 2 != 0 {
            let pfn = Pfn(pte >> 12);
            crate::dma::lru_del(pfn);
            if let Some(pg) = pa.mem.page_mut(pfn) {
                pg.mapcount = -1;
                pg.mapping = 0;
                pg.flags &= !cmaemu_abi::page::PG_ANON;
            }
            let _ = pa.__free_pages(pfn, 0);
            crate::hostif::fired(cmaemu_abi::trace::INJECT_DOUBLE_FREE, pfn.0, va);
        }
    }
    let mut missed_put = crate::hostif::injected(cmaemu_abi::trace::INJECT_MISSED_PUT_PAGE);
    while n > 0 {
        let va = page_va(t.nr_pages - 1);
        if t.nr_pages <= t.pinned {
            say!("free: remaining pages are pinned");
            break;
        }
        if let Some(pfn) = clear_pte(t, va) {
            arch::tlb_flush_va(va);
            crate::rmapk::remove(pfn, t.asid, va);
            crate::dma::lru_del(pfn);
            if core::mem::take(&mut missed_put) {
                // Fault injection `missed_put_page`: the unmapped page's
                // reference is never dropped: the frame is never freed.
                crate::hostif::fired(cmaemu_abi::trace::INJECT_MISSED_PUT_PAGE, pfn.0, va);
            } else {
                let _ = pa.__free_pages(pfn, 0);
            }
        }
        t.nr_pages -= 1;
        n -= 1;
    }
    say!("free: {} pages left", t.nr_pages);
}

/// `share T N [in S E]`: map up to N pages of the current task (the first
/// ones, or the first whose frames lie in [S, E)) into task T as well,
/// after T's own pages: a shared anonymous mapping inherited over fork
/// (two tasks, one frame; each mapping holds a reference and is on the
/// frame's reverse map). T's `check` skips them (they hold this task's
/// pattern; this task's `check` verifies them).
pub fn share(other: usize, n: u32, start: u32, end: u32) {
    let (Some(t), Some(pa)) = (current(), mm::page_alloc()) else { return };
    let src = current_index();
    let Some(o) = task(other).filter(|_| other != src) else {
        println!("share: no other task {}", other);
        return;
    };
    if o.shared.1 != 0 {
        println!("share: task {} already maps shared pages", other);
        return;
    }
    let at = o.nr_pages;
    let mut done = 0;
    for i in 0..t.nr_pages {
        if done == n {
            break;
        }
        let pte = pte_get(t, page_va(i));
        let ova = page_va(o.nr_pages);
        if ova >= USER_END - 4096 {
            break;
        }
        let pfn = Pfn(pte >> 12);
        if pte & 2 == 0 || pfn.0 < start || pfn.0 >= end {
            continue;
        }
        if !set_pte(o, ova, pfn) {
            break;
        }
        if let Some(pg) = pa.mem.page_mut(pfn) {
            pg.refcount += 1;
        }
        crate::rmapk::add(pfn, o.asid, ova);
        o.nr_pages += 1;
        done += 1;
    }
    o.shared = (at, done);
    println!("share: {} pages of task {} mapped into task {} at {:#010x}", done, src, other, page_va(at));
}

/// Up to `out.len()` mapped pages of the current task whose frames lie
/// in `[start, end)`, lowest VA first: (VA, frame). Returns how many.
pub fn pages_in(start: u32, end: u32, out: &mut [(u32, Pfn)]) -> usize {
    let Some(t) = current() else { return 0 };
    let mut n = 0;
    for i in 0..t.nr_pages {
        if n == out.len() {
            break;
        }
        let va = page_va(i);
        let pte = pte_get(t, va);
        if pte & 2 != 0 && pte >> 12 >= start && pte >> 12 < end {
            out[n] = (va, Pfn(pte >> 12));
            n += 1;
        }
    }
    n
}

/// `get_user_pages` / `unpin_user_page` of one frame: one reference more
/// or less.
pub fn pin_frame(pfn: Pfn, va: u32, on: bool, origin: PinOrigin) {
    if let Some(pg) = mm::page_alloc().and_then(|pa| pa.mem.page_mut(pfn)) {
        if on {
            pg.refcount += 1;
        } else {
            pg.refcount = pg.refcount.saturating_sub(1).max(1);
        }
        note_pin(pfn.0, va, on, origin);
    }
}

/// Who takes a pin: the command and the kernel function (by address; the
/// host names it from `KALLSYMS`). Linux keeps this only with the
/// `page_pinner` debug option; the host's cause finder names it.
#[derive(Clone, Copy)]
pub struct PinOrigin {
    pub command: &'static str,
    pub func: usize,
}

/// Tell the host a pin of `pfn` (mapped at `va` of the current task) was
/// taken or dropped (a `TR_PIN` record).
fn note_pin(pfn: u32, va: u32, on: bool, origin: PinOrigin) {
    let asid = current().map_or(0, |t| t.asid as u32);
    crate::hostif::push(&cmaemu_abi::trace::TraceRecord::pin(crate::hostif::now(), on, pfn, va, asid, origin.func as u32, origin.command));
}

/// `pin`'s origin: the shell's command, or the `stress` job (which pins
/// quietly).
fn pin_origin(func: usize) -> PinOrigin {
    let command = if QUIET.load(core::sync::atomic::Ordering::Relaxed) { "stress" } else { "pin" };
    PinOrigin { command, func }
}

/// `pin N`: raise the refcount of N more pages, as `get_user_pages` would
/// (pinned pages cannot be migrated).
pub fn pin(n: u32) {
    let Some(t) = current() else { return };
    let Some(pa) = mm::page_alloc() else { return };
    let mut done = 0;
    while done < n && t.pinned < t.nr_pages {
        let pte = pte_get(t, page_va(t.pinned));
        if pte & 2 != 0 {
            if let Some(pg) = pa.mem.page_mut(Pfn(pte >> 12)) {
                pg.refcount += 1;
                note_pin(pte >> 12, page_va(t.pinned), true, pin_origin(pin as fn(u32) as usize));
            }
        }
        t.pinned += 1;
        done += 1;
    }
    // report the pages that hold a pin: slots freed since `fill` have none
    let mapped = (0..t.pinned).map(page_va).filter(|&va| pte_get(t, va) & 2 != 0);
    let (count, first) = mapped.fold((0u32, None), |(c, f), va| (c + 1, f.or(Some(va))));
    match first {
        Some(va) => say!("pin: {} pages pinned (first at va {:#010x}, pfn {:#x})", count, va, pte_get(t, va) >> 12),
        None => say!("pin: 0 pages pinned (no mapped page)"),
    }
}

/// `pin in START END`: pin the first page of the current task whose frame
/// lies in [START, END) (pfns); prints it.
pub fn pin_in(start: u32, end: u32) {
    let Some(t) = current() else { return };
    let Some(pa) = mm::page_alloc() else { return };
    for i in 0..t.nr_pages {
        let va = page_va(i);
        let pte = pte_get(t, va);
        let pfn = pte >> 12;
        if pte & 2 != 0 && pfn >= start && pfn < end {
            if let Some(pg) = pa.mem.page_mut(Pfn(pfn)) {
                pg.refcount += 1;
                note_pin(pfn, va, true, PinOrigin { command: "pin in", func: pin_in as fn(u32, u32) as usize });
            }
            EXTRA_PINS.with(|p| p.push((va, pfn)));
            println!("pin: pinned pfn {:#x} (va {:#010x})", pfn, va);
            return;
        }
    }
    println!("pin: no page of this task in pfns {:#x}-{:#x}", start, end);
}

/// Pins taken by `pin in`, dropped by `unpin`.
struct Pins {
    list: core::cell::UnsafeCell<[(u32, u32); 64]>,
    n: core::cell::Cell<usize>,
}
// SAFETY: single CPU; only used from thread context.
unsafe impl Sync for Pins {}
impl Pins {
    fn with<R>(&self, f: impl FnOnce(&mut PinsRef) -> R) -> R {
        // SAFETY: single CPU, thread context only, no re-entrancy.
        let mut r = PinsRef { list: unsafe { &mut *self.list.get() }, n: &self.n };
        f(&mut r)
    }
}
struct PinsRef<'a> {
    list: &'a mut [(u32, u32); 64],
    n: &'a core::cell::Cell<usize>,
}
impl PinsRef<'_> {
    fn push(&mut self, e: (u32, u32)) {
        let n = self.n.get();
        if n < self.list.len() {
            self.list[n] = e;
            self.n.set(n + 1);
        }
    }
    fn drain(&mut self) -> impl Iterator<Item = (u32, u32)> + '_ {
        let n = self.n.replace(0);
        self.list[..n].iter().copied()
    }
}
static EXTRA_PINS: Pins = Pins { list: core::cell::UnsafeCell::new([(0, 0); 64]), n: core::cell::Cell::new(0) };

/// `unpin`: drop every pin.
pub fn unpin() {
    let Some(t) = current() else { return };
    let Some(pa) = mm::page_alloc() else { return };
    // Fault injection `leaked_pin`: the first pin is never released.
    let mut leak = crate::hostif::injected(cmaemu_abi::trace::INJECT_LEAKED_PIN);
    let mut unpin_one = |pa: &mut cmaemu_mm::buddy::PageAlloc<'_>, va: u32, pte: u32| {
        if pte & 2 == 0 {
            return;
        }
        if core::mem::take(&mut leak) {
            crate::hostif::fired(cmaemu_abi::trace::INJECT_LEAKED_PIN, pte >> 12, va);
            return;
        }
        if let Some(pg) = pa.mem.page_mut(Pfn(pte >> 12)) {
            pg.refcount = pg.refcount.saturating_sub(1).max(1);
            note_pin(pte >> 12, va, false, pin_origin(unpin as fn() as usize));
        }
    };
    for i in 0..t.pinned {
        let va = page_va(i);
        unpin_one(pa, va, pte_get(t, va));
    }
    t.pinned = 0;
    EXTRA_PINS.with(|p| {
        for (va, _) in p.drain() {
            // the page may have moved since: unpin what the PTE maps now
            unpin_one(pa, va, pte_get(t, va) | 2);
        }
    });
    say!("unpin: done");
}

/// `task`: list the tasks.
pub fn list() {
    // SAFETY: as in `tasks`.
    let cur = unsafe { CURRENT };
    for (i, t) in tasks().iter().enumerate() {
        if let Some(t) = t {
            println!(
                "task {}{}: asid {} ttbr0 {:#010x} pages {} va {:#010x}-{:#010x} pinned {}",
                i,
                if i == cur { "*" } else { "" },
                t.asid,
                t.ttbr0,
                t.nr_pages,
                USER_BASE,
                page_va(t.nr_pages),
                t.pinned
            );
        }
    }
}
