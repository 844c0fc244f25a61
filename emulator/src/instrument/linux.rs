//! Watching a real Linux kernel (no cmaemu descriptor, no trace ring): at
//! quiet points (the CPU idle in WFI), at most once per frame period of
//! virtual time, read the kernel's mm state (`introspect::linux`), make it
//! the verifiers' [`Snapshot`], run the integrity check and emit the same
//! events as for cmaemu's own guest — `layout`, `frame`, `counters`,
//! `pageblock_map`, `page_states`, `violation` — so `--trace`, `cmaemu
//! trace summary`, `trace map` and the report work on it unchanged.
//!
//! Migrations are checked page by page with breakpoints on a few kernel
//! instructions (addresses from the build's symbols; only those
//! instructions are hooked):
//!
//! - `try_to_migrate_one(folio, vma, address)`, the rmap callback that
//!   replaces each PTE of a folio about to migrate by a migration entry
//!   (`ptep_clear_flush`, then `set_pte_at`): the mapping it is about to
//!   clear is recorded and, when its address space is the CPU's current
//!   one and the CPU can hold the translation, the CPU's TLB is made to
//!   hold it (as a real TLB may, until the kernel's flush);
//! - `folio_migrate_flags(dst, src)`, which every migration path of this
//!   kernel calls right after `folio_copy(dst, src)` (`folio_migrate_copy`,
//!   `migrate_folio_extra`; the no-copy mode is only for device-private
//!   memory, which Debian's armmp build lacks): the PTEs are cleared and
//!   flushed by now, so the new frames must hold the old frames' bytes
//!   (`migrate.content`) and a TLB invalidate the guest issued (the CPU
//!   reports each CP15 c8 operation) must have covered every cleared VA
//!   the TLB held (`migrate.tlb`: the kernel's flush in
//!   `ptep_clear_flush`);
//! - the return from every call of `migrate_pages` (the instruction after
//!   each `bl migrate_pages`): every PTE of each moved frame — those the
//!   kernel's rmap walk cleared, and those the host saw mapping the frame
//!   in the page tables at the last quiet point — must now map the new
//!   frame, not the old one nor a migration entry for it
//!   (`migrate.pte`: `remove_migration_ptes`). Left-over moves are checked
//!   at the next quiet point.
//!
//! At each quiet point the frame the CLCD scans out (its base latched at
//! the last vsync, the frame's bytes) must lie in frames the kernel owns as
//! a CMA allocation: pages of a CMA area whose bitmap bits are set
//! (`dma.ownership`, the check cmaemu's own guest gets for every scan-out;
//! a free frame, a movable page or a page outside every CMA area is
//! reported).
use crate::cpu::{BreakRegs, Breaker, CpuTlb};
use crate::findings::{Check, CheckCtx, Violation};
use crate::introspect::linux::{address_spaces, linux_pte, linux_ptes, read::linux_pte_pa, read::Kmem, snapshot::to_snapshot, snapshot::ModelError, user_pages, DebugInfo, Layout, LayoutError, LinuxMm, Pte, ReadError, VmcoreInfo};
use crate::memory::GuestRam;
use crate::trace::{Event, EventKind, Vas};
use crate::verify::check_integrity;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Why a [`LinuxSession`] stopped reading the kernel.
#[derive(Debug, thiserror::Error)]
pub enum LinuxSessionError {
    #[error("the kernel's debug info does not fit the running kernel: {0}")]
    Layout(#[source] LayoutError),
    #[error("reading the kernel's mm state: {0}")]
    Read(#[source] ReadError),
    #[error("reading the kernel's mm state: {0}")]
    Model(#[source] ModelError),
}

/// A mapping `try_to_migrate_one` is about to clear.
#[derive(Clone, Copy, Debug)]
struct Unmap {
    pfn: u32,
    pgd_pa: u64,
    va: u32,
    /// The CPU's TLB holds `va -> pfn` (the address space was current).
    retained: bool,
    /// The address space's ASID (CONTEXTIDR's low byte while it was
    /// current): only invalidates for it, or for every ASID, flush `va`.
    asid: u8,
    /// A TLB invalidate the guest issued since covered `va`.
    flushed: bool,
}

/// A frame moved at `folio_migrate_flags`, its PTEs to check once the
/// migration pass returns.
#[derive(Clone, Debug)]
struct Moved {
    old_pfn: u32,
    new_pfn: u32,
    /// (first-level table, VA) of every mapping of the old frame known.
    maps: Vec<(u64, u32)>,
}

/// See the module doc.
pub struct LinuxSession {
    debug: Arc<DebugInfo>,
    layout: Option<Layout>,
    /// Why reading stopped (a layout that does not fit the running kernel).
    pub error: Option<LinuxSessionError>,
    next_ns: u64,
    period_ns: u64,
    frame: u64,
    events: Vec<Event>,
    last_mts: Option<Vec<u8>>,
    last_states: Option<Vec<u8>>,
    seen: HashSet<(crate::findings::Check, Option<u32>, String)>,
    /// Every violation found (each state violation once).
    pub violations: Vec<Violation>,
    /// Quiet points read.
    pub reads: u64,
    /// The last snapshot read (for `trace map`).
    pub last: Option<crate::introspect::Snapshot>,
    /// Entry of `folio_migrate_flags`.
    migrate_flags: u32,
    /// Entry of `try_to_migrate_one`.
    unmap_one: u32,
    /// The instructions after each `bl migrate_pages`.
    migrate_returns: Vec<u32>,
    /// Migrations checked at the breakpoint.
    pub migrations_checked: u64,
    /// Cleared mappings whose translation the TLB held, checked after the flush.
    pub tlb_checked: u64,
    /// PTEs found on the new frame after a move.
    pub ptes_checked: u64,
    old_buf: Vec<u8>,
    new_buf: Vec<u8>,
    unmapped: Vec<Unmap>,
    moved: Vec<Moved>,
    /// Frame -> (first-level table, VA) of its Linux PTEs at the last quiet point.
    pte_index: HashMap<u32, Vec<(u64, u32)>>,
    /// Quiet points at which the CLCD's scan-out was checked.
    pub scanouts_checked: u64,
    /// The scan-out checked last: (physical base, bytes).
    pub last_scanout: Option<(u64, u64)>,
}

impl LinuxSession {
    /// Read at most once per `period_ns` of virtual time.
    pub fn new(debug: Arc<DebugInfo>, period_ns: u64) -> Self {
        LinuxSession {
            debug: debug.clone(),
            layout: None,
            error: None,
            next_ns: 0,
            period_ns,
            frame: 0,
            events: Vec::new(),
            last_mts: None,
            last_states: None,
            seen: HashSet::new(),
            violations: Vec::new(),
            reads: 0,
            last: None,
            migrate_flags: debug.symbol("folio_migrate_flags").unwrap_or(0),
            unmap_one: debug.symbol("try_to_migrate_one").unwrap_or(0),
            migrate_returns: debug.call_returns("migrate_pages"),
            migrations_checked: 0,
            tlb_checked: 0,
            ptes_checked: 0,
            old_buf: Vec::new(),
            new_buf: Vec::new(),
            unmapped: Vec::new(),
            moved: Vec::new(),
            pte_index: HashMap::new(),
            scanouts_checked: 0,
            last_scanout: None,
        }
    }

    /// Kernel instructions to hook (for [`Cpu::add_breakpoints`](crate::cpu::Cpu::add_breakpoints)).
    pub fn breakpoints(debug: &DebugInfo) -> Vec<u32> {
        let mut v: Vec<u32> = ["folio_migrate_flags", "try_to_migrate_one"].iter().filter_map(|n| debug.symbol(n).ok()).collect();
        v.extend(debug.call_returns("migrate_pages"));
        v
    }

    /// The layout, found once vmcoreinfo is in RAM.
    fn layout(&mut self, ram: &GuestRam) -> Option<&Layout> {
        if self.layout.is_none() && self.error.is_none() {
            let v = VmcoreInfo::locate(ram).ok()?;
            match Layout::new(&v, &self.debug) {
                Ok(l) => self.layout = Some(l),
                Err(e) => self.error = Some(LinuxSessionError::Layout(e)),
            }
        }
        self.layout.as_ref()
    }

    /// The pfn of `struct page *` `p` and its folio's page count.
    fn folio_pfns(k: &Kmem, l: &Layout, p: u32) -> Option<(u32, u32)> {
        let mem_map = k.u32("mem_map", l.mem_map).ok()?;
        let start = k.u32("node_start_pfn", l.contig_page_data + l.pgdat_start_pfn).ok()?;
        let off = p.checked_sub(mem_map)?;
        if off % l.page_size != 0 {
            return None;
        }
        // A compound folio: order in its second page.
        let flags = k.u32("page.flags", p + l.page_flags).unwrap_or(0);
        let order = match (flags & l.pg_head_mask != 0, l.page_compound_order) {
            (true, Some(o)) => k.bytes("compound_order", p + l.page_size + o, 1).map(|b| b[0] as u32).unwrap_or(0).min(l.max_order),
            _ => 0,
        };
        Some((start + off / l.page_size, 1 << order))
    }

    /// `try_to_migrate_one(folio, vma, address)`: record each mapping of
    /// the folio in `vma` (its Linux PTE maps the folio's page); when the
    /// address space is the current one and the CPU can translate the VA
    /// (a hardware PTE: the page is young), make the TLB hold it, as a
    /// real TLB may (the emulator's may have dropped it already; and the
    /// kernel's own accesses cannot fill it: with CPU_SW_DOMAIN_PAN the
    /// user domain is closed to the kernel).
    fn on_unmap(&mut self, ram: &GuestRam, folio: u32, vma: u32, address: u32, tlb: &mut dyn CpuTlb) {
        let Some(l) = self.layout(ram).cloned() else { return };
        let Ok(k) = Kmem::find(ram, &l) else { return };
        let Some((pfn, n)) = Self::folio_pfns(&k, &l, folio) else { return };
        let Ok(mm) = k.u32("vm_area_struct.vm_mm", vma + l.vma_mm) else { return };
        let Some(pgd_pa) = k.u32("mm_struct.pgd", mm + l.mm_pgd).ok().and_then(|p| k.pa("mm_struct.pgd", p, 16 << 10).ok()) else { return };
        let current = tlb.ttbr0() & !0x3fff == pgd_pa as u32 & !0x3fff;
        let asid = tlb.contextidr() as u8;
        for i in 0..n {
            let va = address.wrapping_add(i << 12);
            if linux_pte(ram, pgd_pa, va) != Some(Pte::Present(pfn + i)) {
                continue;
            }
            // the hardware entry (2048 bytes above the Linux one): a small
            // page mapping the frame, which a TLB may hold
            let hw = linux_pte_pa(ram, pgd_pa, va).and_then(|pa| ram.read_u32(pa + 2048)).unwrap_or(0);
            let retained = current && hw & 2 != 0 && hw >> 12 == pfn + i;
            if retained {
                tlb.retain(va, ((pfn + i) as u64) << 12);
            }
            self.unmapped.push(Unmap { pfn: pfn + i, pgd_pa, va, retained, asid, flushed: false });
        }
    }

    /// The guest issued a TLB invalidate (reported by the CPU as it runs):
    /// the cleared mappings it covers, in their own address space, are
    /// flushed (an invalidate naming another ASID leaves them in the TLB).
    pub fn tlb_maintenance(&mut self, op: crate::cpu::TlbOp) {
        for u in self.unmapped.iter_mut().filter(|u| u.retained && !u.flushed) {
            u.flushed |= op.covers_asid(u.va, u.asid);
        }
    }

    /// `folio_migrate_flags(dst, src)`: the PTEs are cleared and flushed
    /// and the copy is done; compare frames, look in the TLB, and queue the
    /// PTE check.
    fn check_migration(&mut self, ram: &GuestRam, dst: u32, src: u32, now: u64, tlb: &mut dyn CpuTlb) {
        let Some(l) = self.layout(ram).cloned() else { return };
        let Ok(k) = Kmem::find(ram, &l) else { return };
        let (Some((new_pfn, _)), Some((old_pfn, n))) = (Self::folio_pfns(&k, &l, dst), Self::folio_pfns(&k, &l, src)) else { return };
        let len = 4096usize * n as usize;
        self.old_buf.resize(len, 0);
        self.new_buf.resize(len, 0);
        let (opa, npa) = ((old_pfn as u64) << 12, (new_pfn as u64) << 12);
        if ram.read(opa, &mut self.old_buf).is_err() || ram.read(npa, &mut self.new_buf).is_err() {
            return;
        }
        self.migrations_checked += 1;
        self.emit(now, EventKind::MigratePage { old_pfn, new_pfn, asid: 0, vas: Vas::new() });
        if let Some(i) = self.old_buf.iter().zip(&self.new_buf).position(|(a, b)| a != b) {
            let detail = format!(
                "the kernel migrated frame {old_pfn:#x} to {new_pfn:#x} (folio_migrate_flags after folio_copy) but their contents differ from byte {i:#x} ({:#04x} vs {:#04x}): the copy was lost",
                self.old_buf[i], self.new_buf[i]
            );
            self.report(now, Check::MigrateContent, Some(old_pfn), None, detail);
        }
        let cur = tlb.ttbr0() & !0x3fff;
        let (mine, rest): (Vec<Unmap>, Vec<Unmap>) = self.unmapped.iter().partition(|u| (old_pfn..old_pfn + n).contains(&u.pfn));
        self.unmapped = rest;
        for u in mine.iter().filter(|u| u.retained && u.pgd_pa as u32 & !0x3fff == cur) {
            self.tlb_checked += 1;
            if !u.flushed {
                let detail = format!(
                    "the kernel replaced the PTE of VA {:#010x} by a migration entry to move frame {:#x} to {:#x}, but no TLB invalidate covered the VA in its address space (ASID {}) before the copy, so the CPU's TLB still translates it to {:#x}: the TLB was not flushed (ptep_clear_flush), so the task can still write to the old frame after the copy",
                    u.va,
                    u.pfn,
                    new_pfn + (u.pfn - old_pfn),
                    u.asid,
                    (u.pfn as u64) << 12
                );
                self.report(now, Check::MigrateTlb, Some(u.pfn), Some(u.va), detail);
            }
        }
        for i in 0..n {
            let mut maps: Vec<(u64, u32)> = mine.iter().filter(|u| u.pfn == old_pfn + i).map(|u| (u.pgd_pa, u.va)).collect();
            maps.extend(self.pte_index.get(&(old_pfn + i)).into_iter().flatten().copied());
            maps.sort_unstable();
            maps.dedup();
            self.moved.push(Moved { old_pfn: old_pfn + i, new_pfn: new_pfn + i, maps });
        }
    }

    /// After a migration pass: every known PTE of each moved frame maps the
    /// new frame (not the old one, nor a migration entry for it). A mapping
    /// that is gone or maps something else was changed since (unmapped,
    /// migrated again) and is not counted.
    fn check_moved(&mut self, ram: &GuestRam, now: u64) {
        if self.moved.is_empty() {
            return;
        }
        let Some(l) = self.layout(ram).cloned() else { return };
        // only page tables still in use (a task that exited freed its own)
        let live: HashSet<u64> = address_spaces(ram, &l).map(|v| v.iter().map(|a| a.pgd_pa).collect()).unwrap_or_default();
        for m in std::mem::take(&mut self.moved) {
            for &(pgd_pa, va) in m.maps.iter().filter(|(p, _)| live.contains(p)) {
                let why = match linux_pte(ram, pgd_pa, va) {
                    Some(Pte::Present(p)) if p == m.new_pfn => {
                        self.ptes_checked += 1;
                        continue;
                    }
                    Some(Pte::Present(p)) if p == m.old_pfn => "still maps the old frame",
                    Some(Pte::Swap { ty, offset }) if Pte::swp_offset_pfn(offset) == m.old_pfn && l.is_migration_type(ty) => "still holds the migration entry for the old frame (remove_migration_ptes did not restore it)",
                    _ => continue,
                };
                let detail = format!("after the kernel moved frame {:#x} to {:#x}, the PTE of VA {va:#010x} (page table {pgd_pa:#x}) {why}", m.old_pfn, m.new_pfn);
                self.report(now, Check::MigratePte, Some(m.old_pfn), Some(va), detail);
            }
        }
    }

    fn report(&mut self, now: u64, check: Check, pfn: Option<u32>, va: Option<u32>, detail: String) {
        let ctx = CheckCtx { frame: self.frame, at_ns: now, recent: Vec::new() };
        let v = ctx.violation(check, pfn, va, None, detail);
        self.violations.push(v.clone());
        self.emit(now, EventKind::Violation(Box::new(v)));
    }

    /// Index every Linux PTE of every address space by frame.
    fn index_ptes(&mut self, ram: &GuestRam, l: &Layout) {
        self.pte_index.clear();
        let Ok(k) = Kmem::find(ram, l) else { return };
        let Ok(spaces) = address_spaces(ram, l) else { return };
        for a in &spaces {
            for (va, pte) in linux_ptes(ram, &k.map, a) {
                if let Pte::Present(pfn) = pte {
                    self.pte_index.entry(pfn).or_default().push((a.pgd_pa, va));
                }
            }
        }
    }

    /// The CPU is idle in WFI at `now`: read the kernel if a period passed.
    /// `scanout`: what the CLCD shows, (physical base, bytes), if it scans out.
    pub fn quiet(&mut self, ram: &GuestRam, now: u64, scanout: Option<(u64, u64)>) {
        if now < self.next_ns || self.error.is_some() {
            return;
        }
        self.next_ns = now + self.period_ns;
        // vmcoreinfo appears at the kernel's subsys initcalls.
        let Some(l) = self.layout(ram).cloned() else { return };
        let l = &l;
        self.check_moved(ram, now);
        self.unmapped.clear();
        self.index_ptes(ram, l);
        let snap = match LinuxMm::read(ram, l).map_err(LinuxSessionError::Read).and_then(|mm| to_snapshot(&mm).map_err(LinuxSessionError::Model)) {
            Ok(s) => s,
            Err(e) => {
                self.error = Some(e);
                return;
            }
        };
        self.reads += 1;
        if self.frame == 0 {
            self.emit(now, EventKind::Layout(Box::new(crate::trace::Layout::of(&snap))));
        }
        self.frame += 1;
        let index = self.frame;
        self.emit(now, EventKind::Frame { index });
        self.emit(now, EventKind::Counters(Box::new(snap.counters())));
        let mts: Vec<u8> = snap.pageblocks().map(|p| snap.pageblock_mt(p.max(snap.base_pfn())).unwrap_or(0xf)).collect();
        if self.last_mts.as_ref() != Some(&mts) {
            let first_pfn = snap.pageblocks().next().unwrap_or(0);
            self.emit(now, EventKind::PageblockMap { first_pfn, pageblock_pages: snap.pageblock_pages(), mts: mts.clone() });
            self.last_mts = Some(mts);
        }
        let states = crate::trace::page_states(&snap);
        let old = self.last_states.take().filter(|o| o.len() == states.len());
        let runs = crate::trace::state_runs(snap.base_pfn(), &states, old.as_deref());
        if old.is_none() || !runs.is_empty() {
            self.emit(now, EventKind::PageStates { full: old.is_none(), runs });
        }
        self.last_states = Some(states);
        self.last = Some(snap.clone());
        let ctx = CheckCtx { frame: index, at_ns: now, recent: Vec::new() };
        let mut found = check_integrity(&snap, &ctx);
        found.extend(check_user_ptes(ram, l, &snap, &ctx));
        if let Some((pa, len)) = scanout {
            self.scanouts_checked += 1;
            self.last_scanout = Some((pa, len));
            found.extend(check_scanout(&snap, pa, len, &ctx));
        }
        for v in found {
            if self.seen.insert((v.check, v.pfn, v.detail.clone())) {
                self.violations.push(v.clone());
                self.emit(now, EventKind::Violation(Box::new(v)));
            }
        }
    }

    fn emit(&mut self, ts_ns: u64, kind: EventKind) {
        self.events.push(Event { ts_ns, frame: self.frame, kind });
    }

    /// The events so far (taken).
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }
}

impl Breaker for LinuxSession {
    fn hit(&mut self, pc: u32, regs: &BreakRegs, now: u64, ram: &GuestRam, tlb: &mut dyn CpuTlb) {
        if self.error.is_some() || pc == 0 {
            return;
        }
        let [a0, a1, a2, _] = regs.args;
        if pc == self.migrate_flags {
            self.check_migration(ram, a0, a1, now, tlb);
        } else if pc == self.unmap_one {
            self.on_unmap(ram, a0, a1, a2, tlb);
        } else if self.migrate_returns.contains(&pc) {
            self.check_moved(ram, now);
        }
    }
}

/// The CLCD's scan-out of `len` bytes at `pa` reads only frames the
/// kernel owns as a CMA allocation (`dma.ownership`): in a CMA area, not
/// free, with their bitmap bits set. The real kernel has no cmaemu DMA
/// records, so no buffer list: the area's bitmap is the owner. One
/// violation per run of frames with the same fault.
pub fn check_scanout(snap: &crate::introspect::Snapshot, pa: u64, len: u64, ctx: &CheckCtx) -> Vec<Violation> {
    let mut out = Vec::new();
    if len == 0 {
        return out;
    }
    let end = pa.saturating_add(len);
    let why = |pfn: u32| -> Option<String> {
        if snap.is_free(pfn) {
            return Some("free (in the buddy allocator)".into());
        }
        match snap.cma_area_of(pfn) {
            None => Some("outside every CMA area (not a CMA allocation)".into()),
            Some(a) if a.bit(pfn) != Some(true) => Some(format!("in CMA area {} but not allocated in its bitmap", a.name)),
            Some(_) => None,
        }
    };
    let outside = "outside the frames the page array describes".to_string();
    let mut run: Option<(u32, u32, String)> = None;
    let flush = |run: &mut Option<(u32, u32, String)>, out: &mut Vec<Violation>| {
        if let Some((p, n, w)) = run.take() {
            if out.len() < crate::verify::MAX_VIOLATIONS_PER_CALL {
                out.push(ctx.violation(
                    Check::DmaOwnership,
                    Some(p),
                    None,
                    Some(cmaemu_abi::desc::DMA_DEV_CLCD),
                    format!("the CLCD scans out [{pa:#x}, {end:#x}): {n} frame(s) from pfn {p:#x} are {w}"),
                ));
            }
        }
    };
    let (first, last) = (pa >> 12, (end - 1) >> 12);
    for pfn in first..=last {
        let w = match u32::try_from(pfn) {
            Ok(p) => snap.page(p).map_or(Some(outside.clone()), |_| why(p)),
            Err(_) => Some(outside.clone()),
        };
        let pfn = pfn as u32;
        match (&mut run, w) {
            (Some((_, n, r)), Some(w)) if *r == w => *n += 1,
            (_, w) => {
                flush(&mut run, &mut out);
                run = w.map(|w| (pfn, 1, w));
            }
        }
    }
    flush(&mut run, &mut out);
    out
}

/// No user PTE of any task maps a free frame (`pte.maps_free`): walk every
/// `mm` of the kernel's task list and every page mapping below TASK_SIZE.
/// After a migration the old frame is freed: a PTE left on it (a missed
/// `remove_migration_ptes`) is caught here.
pub fn check_user_ptes(ram: &GuestRam, l: &Layout, snap: &crate::introspect::Snapshot, ctx: &CheckCtx) -> Vec<Violation> {
    let Ok(k) = Kmem::find(ram, l) else { return Vec::new() };
    let Ok(spaces) = address_spaces(ram, l) else { return Vec::new() };
    let mut out = Vec::new();
    for a in &spaces {
        for (va, pfn) in user_pages(ram, &k.map, a) {
            if snap.is_free(pfn) && out.len() < crate::verify::MAX_VIOLATIONS_PER_CALL {
                out.push(ctx.violation(
                    crate::findings::Check::PteMapsFree,
                    Some(pfn),
                    Some(va),
                    None,
                    format!("VA {va:#010x} of pid {} maps frame {pfn:#x}, which is free", a.pid),
                ));
            }
        }
    }
    out
}
