//! User address spaces: each task has its own TTBR0 table (the first
//! 8 KiB of a 16 KiB `pgd_alloc`; TTBCR.N = 1 splits at 2 GiB) with 4 KiB small pages, so that anonymous movable
//! pages have real PTEs that migration must rewrite. The shell's `fill`,
//! `check`, `free`, `pin` commands work on the current task.
//!
//! Every operation takes the mm state (`&mut Mm`) from its caller; the
//! task table itself is `mm::task`'s.
use crate::arch::{self, phys_to_virt};
use crate::mm::task::Task;
use crate::mm::{self, Mm};
use crate::{paging, println};
use cmaemu_abi::desc::{PinRecord, PIN_HOLDER_CAMERA, PIN_HOLDER_SHELL, SHELL_PINS};
use cmaemu_abi::page::{Pfn, OWNER_KIND_PGTABLE, OWNER_KIND_USER};
use cmaemu_mm::buddy::PageAlloc;
use cmaemu_mm::gfp;

/// First user VA of a task's anonymous region.
pub const USER_BASE: u32 = 0x0040_0000;
/// End of the user half (TTBR0 with TTBCR.N = 1).
pub const USER_END: u32 = 0x8000_0000;
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
pub fn fill_quiet(mm: &mut Mm, mib: u32) {
    quietly(|| fill(mm, mib, None))
}
pub fn free_quiet(mm: &mut Mm, mib: u32) {
    quietly(|| free(mm, mib))
}
pub fn pin_quiet(mm: &mut Mm, n: u32) {
    quietly(|| pin(mm, n))
}
/// The `stress` job's unpin: its own task's `pin N` pins only (the
/// shell's `pin in` pins are the shell user's, whatever task runs).
pub fn unpin_quiet(mm: &mut Mm) {
    quietly(|| unpin_pins(mm, false))
}

/// `NR_ANON_MAPPED`: anonymous pages mapped in all tasks.
pub fn anon_pages(mm: &Mm) -> u64 {
    mm.tasks.slots.iter().flatten().map(|t| t.nr_pages as u64).sum()
}

/// `NR_PAGETABLE`: the page-table pages of all tasks (each serves the
/// pair of first-level entries of one 2 MiB; counted at the first of
/// the pair).
pub fn page_table_pages(mm: &Mm) -> u64 {
    let mut n = 0;
    for t in mm.tasks.slots.iter().flatten() {
        for pmd in (0..USER_END).step_by(PMD_SIZE as usize) {
            // the task's live first-level table, inside its user half
            if arch::ram_read32(pmd_entry(t, pmd)) & 3 == 1 {
                n += 1;
            }
        }
    }
    n
}

pub fn current_index(mm: &Mm) -> usize {
    mm.tasks.current
}

/// Order of a first-level table allocation: arch/arm/mm/pgd.c `__pgd_alloc`
/// without LPAE is `__get_free_pages(GFP_KERNEL, 2)`, 16 KiB (the whole
/// 4 GiB table). The guest's TTBR0 walks only the first 8 KiB (TTBCR.N =
/// 1); the rest is allocated as Linux allocates it, so lowmem holds the
/// same pages per task.
const PGD_ORDER: u32 = 2;

/// `mm_alloc` + `pgd_alloc`: a new address space (an empty user table).
pub fn task_new(mm: &mut Mm) -> Result<usize, &'static str> {
    let slot = mm.tasks.slots.iter().position(|t| t.is_none()).ok_or("too many tasks")?;
    let pa = mm.pa.as_mut().ok_or("no page allocator")?;
    let pgd = pa.alloc_pages(gfp::GFP_KERNEL, PGD_ORDER, OWNER_KIND_PGTABLE | slot as u32).map_err(|_| "out of memory for the page table")?;
    let ttbr0 = pgd.0 << 12;
    // four fresh lowmem pages, linearly mapped, owned by this task;
    // pgd_alloc clears the user entries and copies the kernel's (here:
    // none live above the TTBR0 half), so all of it is written
    arch::ram_zero(phys_to_virt(ttbr0), 4096 << PGD_ORDER);
    mm.tasks.slots[slot] = Some(Task { asid: slot as u16 + 1, ttbr0, nr_pages: 0, seed: 0, pinned: 0, shared: (0, 0) });
    Ok(slot)
}

/// `switch_mm`: make task `i` current (TTBR0, TLB flush: no ASIDs used).
pub fn switch_to(mm: &mut Mm, i: usize) -> bool {
    let Some(t) = mm.tasks.get(i) else { return false };
    arch::set_ttbr0(t.ttbr0);
    arch::tlb_flush_all();
    mm.tasks.current = i;
    true
}

/// VA one page-table page maps: ARM's two-level layout folds the pmd
/// into a pair of first-level entries (arch/arm/include/asm/pgtable-2level.h:
/// `PMD_SHIFT` 21), so each `pte_alloc_one` page serves 2 MiB.
pub const PMD_SIZE: u32 = 1 << 21;
/// Offset of the two hardware tables in a page-table page
/// (`PTE_HWTABLE_OFF` = `PTRS_PER_PTE` * 4): Linux keeps its own two
/// 256-entry tables (`pte_t`, software bits) in the first 2 KiB and the
/// two 1 KiB hardware tables after them; the first-level entries of the
/// 2 MiB point at the hardware ones (`__pmd_populate`). The guest keeps
/// only the hardware PTEs: the first 2 KiB stay zero.
pub const PTE_HWTABLE_OFF: u32 = 2048;

/// VA of the L1 descriptor of `va` in the task's table.
fn l1_entry(t: &Task, va: u32) -> u32 {
    phys_to_virt(t.ttbr0) + (va >> 20) * 4
}

/// VA of the first of the pair of L1 descriptors (Linux's `pmd_t[2]`)
/// of the 2 MiB that holds `va`.
fn pmd_entry(t: &Task, va: u32) -> u32 {
    l1_entry(t, va & !(PMD_SIZE - 1))
}

/// VA of the PTE slot of `va`, if its table exists. (The task's L1 table
/// is a live 16 KiB lowmem allocation and va < USER_END keeps the index
/// inside it; the table page is a frame the task owns, reached through
/// the kernel's linear map, which maps all RAM, HighMem included: no
/// kmap.)
fn pte_slot(t: &Task, va: u32) -> Option<u32> {
    let d = arch::ram_read32(l1_entry(t, va));
    if d & 3 != 1 {
        return None;
    }
    Some(phys_to_virt(d & !0x3ff) + ((va >> 12) & 0xff) * 4)
}

/// `pte_alloc` (mm/memory.c `__pte_alloc` + arch/arm/include/asm/pgalloc.h
/// `pte_alloc_one` and `pmd_populate`): give the 2 MiB holding `va` its
/// page table if it has none. One page, `GFP_PGTABLE_USER`, from HighMem
/// with `CONFIG_HIGHPTE` (`__GFP_HIGHMEM`; not movable), zeroed; both
/// first-level entries of the 2 MiB point into it. False: out of memory.
fn pte_alloc(t: &Task, va: u32, pa: &mut PageAlloc<'_>) -> bool {
    let pmd = pmd_entry(t, va);
    if arch::ram_read32(pmd) & 3 == 1 {
        return true;
    }
    let mut g = gfp::GFP_PGTABLE_USER;
    if pa.profile.highpte {
        g = gfp::Gfp(g.0 | gfp::__GFP_HIGHMEM.0);
    }
    // Fault injection `pgtable_movable`: the table is allocated as if it
    // were movable (a mis-flagged gfp, as drivers get wrong), so the
    // allocator may take it from a CMA pageblock, where nothing can
    // move it again.
    let movable = crate::hostif::injected(cmaemu_abi::trace::INJECT_PGTABLE_MOVABLE);
    if movable {
        g = gfp::Gfp(g.0 | gfp::__GFP_MOVABLE.0);
    }
    let Ok(p) = pa.alloc_pages(g, 0, OWNER_KIND_PGTABLE | t.asid as u32) else { return false };
    if movable && pa.mem.get_pageblock_migratetype(p).is_cma() {
        crate::hostif::fired(cmaemu_abi::trace::INJECT_PGTABLE_MOVABLE, p.0, va & !(PMD_SIZE - 1));
    }
    let table = p.0 << 12;
    // __GFP_ZERO (the allocator leaves it to the caller): a fresh frame
    // this task now owns
    arch::ram_zero(phys_to_virt(table), 4096);
    let d = (table + PTE_HWTABLE_OFF) | paging::PDE_TABLE;
    arch::ram_write32(pmd, d);
    arch::ram_write32(pmd + 4, d + 1024);
    arch::dsb();
    true
}

/// `free_pte_range` of one 2 MiB (its entries are all clear): unhook the
/// page table from both first-level entries, flush (`__pte_free_tlb`:
/// the page either side of the 1 MiB boundary) and free the page
/// (`pte_free_tlb` → `tlb_remove_page`, freed when the gather is).
fn pte_free(t: &Task, va: u32, pa: &mut PageAlloc<'_>) {
    let pmd = pmd_entry(t, va);
    let d = arch::ram_read32(pmd);
    if d & 3 != 1 {
        return;
    }
    arch::ram_write32(pmd, 0);
    arch::ram_write32(pmd + 4, 0);
    arch::dsb();
    let mid = (va & !(PMD_SIZE - 1)) + (1 << 20);
    arch::tlb_flush_va(mid - 4096);
    arch::tlb_flush_va(mid);
    let _ = pa.__free_pages(Pfn((d & !0x3ff) >> 12), 0);
}

/// Read the PTE of `va` in task `t` (0 = none).
pub fn pte_get(t: &Task, va: u32) -> u32 {
    match pte_slot(t, va) {
        Some(p) => arch::ram_read32(p),
        None => 0,
    }
}

/// Map `pfn` at `va` (user RW, XN, normal memory); a missing L2 table
/// comes from `alloc` (without it, only a slot that exists is set).
pub fn set_pte(t: &Task, va: u32, pfn: Pfn, alloc: Option<&mut PageAlloc<'_>>) -> bool {
    if let Some(pa) = alloc {
        if !pte_alloc(t, va, pa) {
            return false;
        }
    }
    match pte_slot(t, va) {
        Some(p) => {
            arch::ram_write32(p, (pfn.0 << 12) | paging::PTE_USER_DATA);
            arch::dsb();
            true
        }
        None => false,
    }
}

/// Clear the PTE of `va`; returns the frame it mapped.
pub fn clear_pte(t: &Task, va: u32) -> Option<Pfn> {
    let p = pte_slot(t, va)?;
    let old = arch::ram_read32(p);
    if old & 2 == 0 {
        return None;
    }
    arch::ram_write32(p, 0);
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
pub fn fill(mm: &mut Mm, mib: u32, seed: Option<u32>) {
    fill_until(mm, mib.saturating_mul(256), None, seed)
}

/// `fill leave MiB [seed]`: as `fill`, page by page until at most MiB
/// are free (`NR_FREE_PAGES` of all zones, read before each page; the
/// oracle program on the real kernel reads the same counter exactly,
/// `zone_page_state_snapshot`), so that a workload sized from free memory
/// reaches the same free memory on kernels with different footprints.
pub fn fill_leave(mm: &mut Mm, leave_mib: u32, seed: Option<u32>) {
    fill_until(mm, u32::MAX, Some(leave_mib as u64 * 256), seed)
}

fn fill_until(mm: &mut Mm, want: u32, leave_pages: Option<u64>, seed: Option<u32>) {
    let Some(t) = mm.tasks.get(mm.tasks.current) else { say!("fill: no task"); return };
    let Some(pa) = mm.pa.as_mut() else { return };
    if let Some(s) = seed {
        if t.nr_pages == 0 {
            t.seed = s;
        }
    }
    let mut done = 0;
    while done < want {
        if leave_pages.is_some_and(|l| pa.nr_free_pages() <= l) {
            break;
        }
        let va = page_va(t.nr_pages);
        if va >= USER_END - 4096 {
            say!("fill: address space full");
            break;
        }
        // do_anonymous_page: the page table first (pte_alloc), then the
        // page (alloc_zeroed_user_highpage_movable)
        if !pte_alloc(t, va, pa) {
            say!("fill: out of memory for page tables after {} pages", done);
            break;
        }
        let pfn = match pa.alloc_pages(gfp::GFP_HIGHUSER_MOVABLE, 0, OWNER_KIND_USER | t.asid as u32) {
            Ok(p) => p,
            Err(_) => {
                say!("fill: out of memory after {} pages", done);
                break;
            }
        };
        set_pte(t, va, pfn, None);
        mm::rmap::add(&mut mm.rmap, pa, pfn, t.asid, va);
        mm::lru_cache_add(pa, pfn);
        // Write through the user mapping (TTBR0 of the current task).
        // (`va` was just mapped user RW in the current TTBR0 table; kernel
        // accesses to AP=11 pages are allowed.)
        for w in 0..1024u32 {
            arch::ram_write32(va + w * 4, pattern(t.seed, va + w * 4));
        }
        t.nr_pages += 1;
        done += 1;
    }
    say!("fill: {} pages mapped at {:#010x}-{:#010x}", t.nr_pages, USER_BASE, page_va(t.nr_pages));
}

/// `check`: verify every byte through the task's VAs.
pub fn check(mm: &mut Mm) -> u32 {
    check_range(mm, 0, u32::MAX)
}

/// `check in S E`: verify only the pages whose frames lie in [S, E).
pub fn check_range(mm: &mut Mm, start_pfn: u32, end_pfn: u32) -> u32 {
    let Some(t) = mm.tasks.get(mm.tasks.current) else { println!("check: no task"); return 0 };
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
        // a page shared from another task holds that task's pattern
        if i >= t.shared.0 && i < t.shared.0 + t.shared.1 {
            seen -= 1;
            continue;
        }
        for w in 0..1024u32 {
            // `va` is mapped user RW in the current task
            let v = arch::ram_read32(va + w * 4);
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
pub fn free_outside(mm: &mut Mm, mib: u32, start: u32, end: u32) {
    let Some(t) = mm.tasks.get(mm.tasks.current) else { return };
    let Some(pa) = mm.pa.as_mut() else { return };
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
            mm::rmap::remove(&mut mm.rmap, pa, pfn, t.asid, va);
            mm::lru_del(pa, pfn);
            let _ = pa.__free_pages(pfn, 0);
            freed += 1;
            n -= 1;
        }
    }
    say!("free: {} pages outside {:#x}-{:#x} freed", freed, start, end);
}

/// `free MiB`: unmap and free pages from the top of the region.
pub fn free(mm: &mut Mm, mib: u32) {
    let Some(t) = mm.tasks.get(mm.tasks.current) else { return };
    let Some(pa) = mm.pa.as_mut() else { return };
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
            mm::lru_del(pa, pfn);
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
        // munmap of the top page: unmap_region's free_pgtables(floor =
        // the region's new end) frees the page table of every 2 MiB
        // wholly above it, i.e. the one of this page's 2 MiB when the
        // page is its first (USER_BASE is 2 MiB aligned). Both go in
        // one mmu_gather, the page first; release_pages list_add()s
        // each, so free_unref_page_list frees the table first.
        let last_of_table = va & (PMD_SIZE - 1) == 0;
        let mapped = clear_pte(t, va);
        if let Some(pfn) = mapped {
            arch::tlb_flush_va(va);
            mm::rmap::remove(&mut mm.rmap, pa, pfn, t.asid, va);
            mm::lru_del(pa, pfn);
        }
        if last_of_table {
            pte_free(t, va, pa);
        }
        if let Some(pfn) = mapped {
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
pub fn share(mm: &mut Mm, other: usize, n: u32, start: u32, end: u32) {
    let src = current_index(mm);
    let (Some(&mut t), Some(pa)) = (mm.tasks.get(src), mm.pa.as_mut()) else { return };
    let Some(mut o) = mm.tasks.get(other).filter(|_| other != src).copied() else {
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
        let pte = pte_get(&t, page_va(i));
        let ova = page_va(o.nr_pages);
        if ova >= USER_END - 4096 {
            break;
        }
        let pfn = Pfn(pte >> 12);
        if pte & 2 == 0 || pfn.0 < start || pfn.0 >= end {
            continue;
        }
        if !set_pte(&o, ova, pfn, Some(pa)) {
            break;
        }
        if let Some(pg) = pa.mem.page_mut(pfn) {
            pg.refcount += 1;
        }
        mm::rmap::add(&mut mm.rmap, pa, pfn, o.asid, ova);
        o.nr_pages += 1;
        done += 1;
    }
    o.shared = (at, done);
    mm.tasks.slots[other] = Some(o);
    println!("share: {} pages of task {} mapped into task {} at {:#010x}", done, src, other, page_va(at));
}

/// Up to `out.len()` mapped pages of the current task whose frames lie
/// in `[start, end)`, lowest VA first: (VA, frame). Returns how many.
pub fn pages_in(mm: &mut Mm, start: u32, end: u32, out: &mut [(u32, Pfn)]) -> usize {
    let Some(t) = mm.tasks.get(mm.tasks.current) else { return 0 };
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

/// `pin_user_pages` / `unpin_user_page` of one frame the camera keeps
/// (its USERPTR buffers during a capture): one reference more, or the
/// pin's reference dropped from that frame, which it frees if that was
/// the last reference (the page may have lost its mapping meanwhile: a
/// `stress` job's `free` in the capturing task). The pin is listed in the
/// pin table under the camera's name while it is held (the shell's
/// `unpin` leaves it alone); the record goes after the reference. False
/// when nothing was pinned (a free page, or no room: the table keeps
/// `CAMERA_PINS` records for the camera, as many as a capture pins).
pub fn pin_frame(mm: &mut Mm, pfn: Pfn, va: u32, on: bool, origin: PinOrigin) -> bool {
    let asid = mm.tasks.get(mm.tasks.current).map_or(0, |t| t.asid);
    let Some(pa) = mm.pa.as_mut() else { return false };
    let done = if on {
        !mm.tasks.pins.is_full() && pa.pin_user_page(pfn).is_ok() && mm.tasks.pins.push(PinRecord { pfn: pfn.0, va, asid: asid as u32, holder: PIN_HOLDER_CAMERA })
    } else {
        let done = pa.unpin_user_page(pfn).is_ok();
        mm.tasks.pins.remove_one(pfn.0, PIN_HOLDER_CAMERA);
        done
    };
    if done {
        note_pin(asid, pfn.0, va, on, origin);
    }
    done
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
fn note_pin(asid: u16, pfn: u32, va: u32, on: bool, origin: PinOrigin) {
    let asid = asid as u32;
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
pub fn pin(mm: &mut Mm, n: u32) {
    let Some(t) = mm.tasks.get(mm.tasks.current) else { return };
    let Some(pa) = mm.pa.as_mut() else { return };
    let mut done = 0;
    while done < n && t.pinned < t.nr_pages {
        let pte = pte_get(t, page_va(t.pinned));
        if pte & 2 != 0 && pa.pin_user_page(Pfn(pte >> 12)).is_ok() {
            note_pin(t.asid, pte >> 12, page_va(t.pinned), true, pin_origin(pin as fn(&mut Mm, u32) as usize));
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
/// lies in [START, END) (pfns); prints it. The pin is kept by frame in
/// `mm.tasks.pins`, under the shell's name (a holder keeps the `struct
/// page *` it pinned; at most `SHELL_PINS` of them): the
/// page may lose its mapping (`free`, `free out`) and stays allocated,
/// held by the pin, until `unpin` releases that frame.
pub fn pin_in(mm: &mut Mm, start: u32, end: u32) {
    let Some(&mut t) = mm.tasks.get(mm.tasks.current) else { return };
    let Some(pa) = mm.pa.as_mut() else { return };
    if mm.tasks.pins.held_by(PIN_HOLDER_SHELL) >= SHELL_PINS || mm.tasks.pins.is_full() {
        println!("pin: {} pins held already: unpin first", SHELL_PINS);
        return;
    }
    for i in 0..t.nr_pages {
        let va = page_va(i);
        let pte = pte_get(&t, va);
        let pfn = pte >> 12;
        if pte & 2 != 0 && pfn >= start && pfn < end {
            if pa.pin_user_page(Pfn(pfn)).is_err() {
                break;
            }
            mm.tasks.pins.push(PinRecord { pfn, va, asid: t.asid as u32, holder: PIN_HOLDER_SHELL });
            note_pin(t.asid, pfn, va, true, PinOrigin { command: "pin in", func: pin_in as fn(&mut Mm, u32, u32) as usize });
            println!("pin: pinned pfn {:#x} (va {:#010x})", pfn, va);
            return;
        }
    }
    println!("pin: no page of this task in pfns {:#x}-{:#x}", start, end);
}

/// `unpin`: drop every pin: the current task's `pin N` pins, and every
/// `pin in` pin (`unpin_user_page` of the frame each pinned: a page no
/// PTE maps any more is freed when its pin was its last reference). The
/// camera's pins of a capture in progress are the camera's to drop.
pub fn unpin(mm: &mut Mm) {
    unpin_pins(mm, true)
}

/// Drop the current task's `pin N` pins, and with `shell_pins` the
/// shell's `pin in` pins.
fn unpin_pins(mm: &mut Mm, shell_pins: bool) {
    let Some(t) = mm.tasks.get(mm.tasks.current) else { return };
    let Some(pa) = mm.pa.as_mut() else { return };
    // Fault injection `leaked_pin`: the first pin is never released.
    let mut leak = crate::hostif::injected(cmaemu_abi::trace::INJECT_LEAKED_PIN);
    let origin = pin_origin(unpin as fn(&mut Mm) as usize);
    // `pin N` keeps no frames, only how many pages from the region's start
    // it pinned (none of them can be unmapped while pinned: `free` stops
    // at them): their PTEs map the pinned frames, as a pinned page cannot
    // migrate. Only the `ignore_pin` injection moves one: the pin then
    // stays with the old frame, and the copy the PTE maps now holds none
    // (`page_count == total_mapcount`): left alone.
    for i in 0..t.pinned {
        let va = page_va(i);
        let pte = pte_get(t, va);
        if pte & 2 == 0 {
            continue;
        }
        let pfn = Pfn(pte >> 12);
        if core::mem::take(&mut leak) {
            crate::hostif::fired(cmaemu_abi::trace::INJECT_LEAKED_PIN, pfn.0, va);
            continue;
        }
        // page_count beyond the mappings' and the LRU add batch's references
        let batch = pa.in_lru_add_batch(pfn) as i32;
        let pinned = pa.mem.page(pfn).is_some_and(|p| p.refcount - batch > p.mapcount + 1);
        if pinned && pa.unpin_user_page(pfn).is_ok() {
            note_pin(t.asid, pfn.0, va, false, origin);
        }
    }
    t.pinned = 0;
    if !shell_pins {
        say!("unpin: done");
        return;
    }
    let pins = mm.tasks.pins;
    for r in pins.pins().iter().filter(|r| r.holder == PIN_HOLDER_SHELL) {
        if core::mem::take(&mut leak) {
            crate::hostif::fired(cmaemu_abi::trace::INJECT_LEAKED_PIN, r.pfn, r.va);
            continue;
        }
        if pa.unpin_user_page(Pfn(r.pfn)).is_ok() {
            note_pin(r.asid as u16, r.pfn, r.va, false, origin);
        }
    }
    // the records go after their references (a host that reads between
    // sees a listed pin of a page already unpinned, never the reverse)
    mm.tasks.pins.remove_holder(PIN_HOLDER_SHELL);
    say!("unpin: done");
}

/// `task`: list the tasks.
pub fn list(mm: &Mm) {
    let cur = mm.tasks.current;
    for (i, t) in mm.tasks.slots.iter().enumerate() {
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
