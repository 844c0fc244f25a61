//! Watching a real Linux kernel (no cmaemu descriptor, no trace ring): at
//! quiet points (the CPU idle in WFI), at most once per frame period of
//! virtual time, read the kernel's mm state (`introspect::linux`), make it
//! the verifiers' [`Snapshot`], run the integrity check and emit the same
//! events as for cmaemu's own guest — `layout`, `frame`, `counters`,
//! `pageblock_map`, `page_states`, `violation` — so `--trace`, `cmaemu
//! trace summary`, `trace map` and the report work on it unchanged.
use crate::findings::{CheckCtx, Violation};
use crate::introspect::linux::{snapshot::to_snapshot, DebugInfo, Layout, LinuxMm, VmcoreInfo};
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
}

impl LinuxSession {
    /// Read at most once per `period_ns` of virtual time.
    pub fn new(debug: Arc<DebugInfo>, period_ns: u64) -> Self {
        LinuxSession { debug, layout: None, error: None, next_ns: 0, period_ns, frame: 0, events: Vec::new(), last_mts: None, last_states: None, seen: HashSet::new(), violations: Vec::new(), reads: 0, last: None }
    }

    /// The CPU is idle in WFI at `now`: read the kernel if a period passed.
    pub fn quiet(&mut self, ram: &GuestRam, now: u64) {
        if now < self.next_ns || self.error.is_some() {
            return;
        }
        self.next_ns = now + self.period_ns;
        if self.layout.is_none() {
            // vmcoreinfo appears at the kernel's subsys initcalls.
            let Ok(v) = VmcoreInfo::locate(ram) else { return };
            match Layout::new(&v, &self.debug) {
                Ok(l) => self.layout = Some(l),
                Err(e) => {
                    self.error = Some(format!("the kernel's debug info does not fit the running kernel: {e}"));
                    return;
                }
            }
        }
        let Some(l) = &self.layout else { return };
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
        for v in check_integrity(&snap, &ctx) {
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
