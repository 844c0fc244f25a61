//! Watching a real Linux kernel (no cmaemu descriptor, no trace ring): at
//! quiet points (the CPU idle in WFI), at most once per frame period of
//! virtual time, read the kernel's mm state (`introspect::linux`), make it
//! the verifiers' [`Snapshot`], run the integrity check and emit the same
//! events as for cmaemu's own guest — `layout`, `frame`, `counters`,
//! `pageblock_map`, `page_states`, `violation` — so `--trace`, `cmaemu
//! trace summary`, `trace map` and the report work on it unchanged.
//!
//! Migrations are checked page by page with a breakpoint on one kernel
//! function's entry (its address from the build's symbols; only that
//! instruction is hooked): `folio_migrate_flags(dst, src)`, which every
//! migration path of this kernel calls right after `folio_copy(dst, src)`
//! (`folio_migrate_copy`, `migrate_folio_extra`; the no-copy mode is only
//! for device-private memory, which Debian's armmp build lacks). There the
//! new frames must hold the old frames' bytes (`migrate.content`).
use crate::findings::{CheckCtx, Violation};
use crate::introspect::linux::{address_spaces, read::Kmem, snapshot::to_snapshot, user_pages, DebugInfo, Layout, LinuxMm, VmcoreInfo};
use crate::memory::GuestRam;
use crate::trace::{Event, EventKind};
use crate::verify::check_integrity;
use std::collections::HashSet;
use std::sync::Arc;

/// See the module doc.
pub struct LinuxSession {
    debug: Arc<DebugInfo>,
    layout: Option<Layout>,
    /// Why reading stopped (a layout that does not fit the running kernel).
    pub error: Option<String>,
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
    /// Migrations checked at the breakpoint.
    pub migrations_checked: u64,
    old_buf: Vec<u8>,
    new_buf: Vec<u8>,
}

impl LinuxSession {
    /// Read at most once per `period_ns` of virtual time.
    pub fn new(debug: Arc<DebugInfo>, period_ns: u64) -> Self {
        LinuxSession { debug: debug.clone(), layout: None, error: None, next_ns: 0, period_ns, frame: 0, events: Vec::new(), last_mts: None, last_states: None, seen: HashSet::new(), violations: Vec::new(), reads: 0, last: None, migrate_flags: debug.symbol("folio_migrate_flags").unwrap_or(0), migrations_checked: 0, old_buf: Vec::new(), new_buf: Vec::new() }
    }

    /// Kernel function entries to hook (for [`Cpu::add_breakpoints`](crate::cpu::Cpu::add_breakpoints)).
    pub fn breakpoints(debug: &DebugInfo) -> Vec<u32> {
        debug.symbol("folio_migrate_flags").map(|a| vec![a]).unwrap_or_default()
    }

    /// The layout, found once vmcoreinfo is in RAM.
    fn layout(&mut self, ram: &GuestRam) -> Option<&Layout> {
        if self.layout.is_none() && self.error.is_none() {
            let v = VmcoreInfo::locate(ram).ok()?;
            match Layout::new(&v, &self.debug) {
                Ok(l) => self.layout = Some(l),
                Err(e) => self.error = Some(format!("the kernel's debug info does not fit the running kernel: {e}")),
            }
        }
        self.layout.as_ref()
    }

    /// The CPU is about to run the hooked instruction at `pc`.
    pub fn breakpoint(&mut self, ram: &GuestRam, pc: u32, args: [u32; 4], now: u64) {
        if pc == self.migrate_flags && pc != 0 {
            self.check_migration(ram, args[0], args[1], now);
        }
    }

    /// `folio_migrate_flags(dst, src)`: the copy is done; compare frames.
    fn check_migration(&mut self, ram: &GuestRam, dst: u32, src: u32, now: u64) {
        let Some(l) = self.layout(ram).cloned() else { return };
        let Ok(k) = Kmem::find(ram, &l) else { return };
        let (Ok(mem_map), Ok(start)) = (k.u32("mem_map", l.mem_map), k.u32("node_start_pfn", l.contig_page_data + l.pgdat_start_pfn)) else { return };
        let pfn = |p: u32| -> Option<u32> {
            let off = p.checked_sub(mem_map)?;
            (off % l.page_size == 0).then(|| start + off / l.page_size)
        };
        let (Some(new_pfn), Some(old_pfn)) = (pfn(dst), pfn(src)) else { return };
        // A compound folio: order in its second page.
        let flags = k.u32("page.flags", src + l.page_flags).unwrap_or(0);
        let order = match (flags & l.pg_head_mask != 0, l.page_compound_order) {
            (true, Some(o)) => k.bytes("compound_order", src + l.page_size + o, 1).map(|b| b[0] as u32).unwrap_or(0).min(l.max_order),
            _ => 0,
        };
        let len = 4096usize << order;
        self.old_buf.resize(len, 0);
        self.new_buf.resize(len, 0);
        let (opa, npa) = ((old_pfn as u64) << 12, (new_pfn as u64) << 12);
        if ram.read(opa, &mut self.old_buf).is_err() || ram.read(npa, &mut self.new_buf).is_err() {
            return;
        }
        self.migrations_checked += 1;
        self.emit(now, EventKind::MigratePage { old_pfn, new_pfn, asid: 0, vas: Vec::new() });
        if let Some(i) = self.old_buf.iter().zip(&self.new_buf).position(|(a, b)| a != b) {
            let ctx = CheckCtx { frame: self.frame, at_ns: now, recent: Vec::new() };
            let v = ctx.violation(
                crate::findings::Check::MigrateContent,
                Some(old_pfn),
                None,
                None,
                format!(
                    "the kernel migrated frame {old_pfn:#x} to {new_pfn:#x} (folio_migrate_flags after folio_copy) but their contents differ from byte {i:#x} ({:#04x} vs {:#04x}): the copy was lost",
                    self.old_buf[i], self.new_buf[i]
                ),
            );
            self.violations.push(v.clone());
            self.emit(now, EventKind::Violation(v));
        }
    }

    /// The CPU is idle in WFI at `now`: read the kernel if a period passed.
    pub fn quiet(&mut self, ram: &GuestRam, now: u64) {
        if now < self.next_ns || self.error.is_some() {
            return;
        }
        self.next_ns = now + self.period_ns;
        // vmcoreinfo appears at the kernel's subsys initcalls.
        let Some(l) = self.layout(ram).cloned() else { return };
        let l = &l;
        let snap = match LinuxMm::read(ram, l).map_err(|e| e.to_string()).and_then(|mm| to_snapshot(&mm).map_err(|e| e.to_string())) {
            Ok(s) => s,
            Err(e) => {
                self.error = Some(format!("reading the kernel's mm state: {e}"));
                return;
            }
        };
        self.reads += 1;
        if self.frame == 0 {
            self.emit(now, EventKind::Layout(crate::trace::Layout::of(&snap)));
        }
        self.frame += 1;
        let index = self.frame;
        self.emit(now, EventKind::Frame { index });
        self.emit(now, EventKind::Counters(snap.counters()));
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
        for v in found {
            if self.seen.insert((v.check, v.pfn, v.detail.clone())) {
                self.violations.push(v.clone());
                self.emit(now, EventKind::Violation(v));
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
