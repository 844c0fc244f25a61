//! The run's instrumentation, one type from the guest's trace ring to the
//! run's outcome: the guest announces its introspection descriptor
//! (sysregs 0xF0) and rings a doorbell (0xF4); [`Instrumentation`] attaches
//! a [`Session`], drains the guest's trace ring at each doorbell and at
//! frame boundaries, checks every DMA transfer, and keeps the event stream
//! (for the trace writers) and every [`Violation`], structured, for the
//! outcome. It is the CPU's [`Servicer`]: it runs while the engine is
//! stopped, with the CPU's TLB at hand.
pub mod linux;
mod session;

pub use session::{Session, TlbAccess, RECENT_EVENTS};

use crate::cpu::{CpuTlb, Servicer};
use crate::findings::{Violation, ViolationSummary};
use crate::introspect::snapshot::{IntrospectError, Snapshot};
use crate::memory::GuestRam;
use crate::trace::{Event, EventKind};
use crate::verify::DmaTransfer;
use cmaemu_abi::desc::{from_bytes, AddressSpaceRecord};

/// Why introspection of the guest stopped or failed (kept in
/// [`Instrumentation::error`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InstrumentError {
    /// The descriptor the guest announced could not be read: nothing is
    /// attached, no checks run.
    #[error("guest introspection descriptor at {pa:#x} rejected: {source}")]
    Rejected { pa: u64, source: IntrospectError },
    /// A service pass of the attached session failed.
    #[error(transparent)]
    Session(IntrospectError),
}

/// What to do when a check fails (`--on-violation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OnViolation {
    /// Report on stderr and go on; the run exits 5 at its end.
    #[default]
    Log,
    /// Report and stop the run (exit 5).
    Stop,
    /// Report on stderr and go on; the exit status stays the guest's.
    Warn,
}

/// Without [`Instrumentation::keep_events`], the stream is dropped once
/// it holds this many counted events: the memory it takes stays bounded,
/// and the events leave the session in batches (the session copies the
/// last [`RECENT_EVENTS`] of a batch as context, not every event).
pub const DROP_AFTER: usize = 4096;

/// Violations printed in full on stderr; later ones are only counted (all
/// of them go to the trace and into the summary at exit).
pub const REPORTED_IN_FULL: usize = 3;
/// Events shown before each violation printed in full.
pub const EVENTS_SHOWN: usize = 8;

/// A violation as a user reads it: the headline, where (pfn and physical
/// address, VA, device), what, and the events just before it.
pub fn format_violation(n: u64, v: &Violation) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let ms = v.at_ns as f64 / 1e6;
    let _ = writeln!(s, "cmaemu: VIOLATION #{n}: {} (frame {}, virtual time {ms:.6} ms = {} ns)", v.check, v.frame, v.at_ns);
    if let Some(p) = v.pfn {
        let _ = writeln!(s, "cmaemu:   frame:  pfn {p:#x} (physical address {:#010x})", (p as u64) << 12);
    }
    if let Some(va) = v.va {
        let _ = writeln!(s, "cmaemu:   VA:     {va:#010x}");
    }
    if let Some(d) = v.device {
        let _ = writeln!(s, "cmaemu:   device: {}", cmaemu_abi::desc::dma_dev_name(d));
    }
    let _ = writeln!(s, "cmaemu:   what:   {}", v.detail);
    let recent = &v.recent_events[v.recent_events.len().saturating_sub(EVENTS_SHOWN)..];
    if !recent.is_empty() {
        let _ = writeln!(s, "cmaemu:   the {} events just before it (oldest first):", recent.len());
        for r in recent {
            let _ = writeln!(s, "cmaemu:     before: {}", crate::trace::event_text(r));
        }
    }
    s
}

/// See the module doc.
pub struct Instrumentation {
    ram: GuestRam,
    pub desc_pa: Option<u64>,
    mon: Option<Session>,
    pub doorbell: bool,
    /// The guest's shell waits at its prompt: bring the snapshot up to
    /// date with what the command wrote ([`Session::settle`]), so that
    /// the bookkeeping of a command's writes is done at its end, not by
    /// whatever reads the state next.
    pub prompt: bool,
    pub frame_due: Option<u64>,
    pub dma: Vec<(DmaTransfer, u64, u64)>,
    /// Board events (displayed frames) waiting to join the stream.
    pub notes: Vec<Event>,
    /// Every event so far (for --trace): here until the session attaches
    /// and after [`Instrumentation::finish`]; the session holds it in
    /// between (see [`Instrumentation::events`]). Without `keep_events`,
    /// only the events since the stream was last dropped.
    events: Vec<Event>,
    /// Keep the whole event stream (the default). False when nothing reads
    /// it: the stream is dropped once it holds `drop_after` counted events
    /// (the session keeps the last ones as violations' context).
    pub keep_events: bool,
    /// See `keep_events` ([`DROP_AFTER`]).
    drop_after: usize,
    /// Events of the stream counted by `collect` (injections, violations).
    scanned: usize,
    /// The session's violation and injection events `collect` has seen
    /// (`Session::notable`): when it has seen them all, the events since
    /// are not looked at.
    notable_seen: u64,
    /// Every violation so far, in order.
    pub violations: Vec<Violation>,
    /// Counts per check and the first violation.
    pub summary: ViolationSummary,
    /// Every injection that fired: (virtual ns, `INJECT_*` id, pfn).
    pub fired: Vec<(u64, u8, u64)>,
    /// Why introspection stopped or failed last (reported once on stderr).
    pub error: Option<InstrumentError>,
    pub on_violation: OnViolation,
    /// Stderr reporting (off in tests that read `violations`).
    pub report: bool,
    pub stop_requested: bool,
    /// The run is over: drain and check everything once more.
    final_due: bool,
    /// Run the verifiers (false: events for a trace only).
    checks: bool,
    /// Run the cause finder (`crate::explain`) in the session.
    pub explain: bool,
    /// Only drain the ring (`RunOptions::transport_only`).
    pub transport_only: bool,
    /// The guest's `cma_alloc` returned (`DOORBELL_CMA_ALLOC_DONE`): its
    /// cause lines are due on the console.
    pub alloc_done: bool,
    /// `cmaemu:` lines for the console, in order.
    pub console_lines: Vec<String>,
    /// The address-space table as last read (see [`AsidTlb`]).
    ttbrs: AsidTable,
    /// Serve a migrated page's doorbell without a drain when it can be
    /// (`Session::light_doorbell`; the default). False: drain at every
    /// doorbell (the same events and violations, found at each doorbell).
    pub light_doorbells: bool,
    /// Doorbells served light so far.
    pub light_served: u64,
}

impl Instrumentation {
    /// `checks`: run the verifiers; without them the box only collects the
    /// guest's events (for `--trace` with `--no-verify`).
    pub fn new(ram: GuestRam, on_violation: OnViolation, report: bool, checks: bool) -> Self {
        Instrumentation {
            ram,
            desc_pa: None,
            mon: None,
            doorbell: false,
            prompt: false,
            frame_due: None,
            dma: Vec::new(),
            notes: Vec::new(),
            events: Vec::new(),
            keep_events: true,
            drop_after: DROP_AFTER,
            scanned: 0,
            notable_seen: 0,
            violations: Vec::new(),
            summary: ViolationSummary::default(),
            fired: Vec::new(),
            error: None,
            on_violation,
            report,
            stop_requested: false,
            final_due: false,
            checks,
            explain: true,
            transport_only: false,
            alloc_done: false,
            console_lines: Vec::new(),
            ttbrs: AsidTable::default(),
            light_doorbells: true,
            light_served: 0,
        }
    }

    /// Whether a service pass has anything to do.
    pub fn has_work(&self) -> bool {
        (self.mon.is_none() && self.desc_pa.is_some() && self.error.is_none())
            || (self.mon.is_some() && (self.doorbell || self.prompt || self.frame_due.is_some() || !self.dma.is_empty() || !self.notes.is_empty() || self.final_due))
    }

    /// Ask for the final full check (at every exit: poweroff, --max-insns,
    /// a stop, the end of input); the next service pass runs it.
    pub fn request_final_check(&mut self) {
        if self.mon.is_some() {
            self.final_due = true;
        }
    }

    pub fn attached(&self) -> bool {
        self.mon.is_some()
    }

    /// Attached and running the verifiers.
    pub fn verifying(&self) -> bool {
        self.checks && self.attached()
    }

    /// The CPU stopped: the session's core comes back from its thread
    /// (see [`Session::join`]) and what it found is collected, as it was
    /// when the doorbell that shipped it to the thread was served.
    pub fn join(&mut self) {
        if let Some(m) = self.mon.as_mut().filter(|m| m.away()) {
            m.join();
            self.collect();
        }
    }

    /// The guest invalidated TLB entries (see [`Session::tlb_maintenance`]).
    pub fn tlb_maintenance(&mut self, op: crate::cpu::TlbOp, _now: u64) {
        if let Some(m) = &mut self.mon {
            m.tlb_maintenance(&self.ram, op);
        }
    }

    /// Take the session's new events: count injections and violations
    /// (printing the first few), keep them all (or, without `keep_events`,
    /// drop the stream once it is long enough: see [`DROP_AFTER`]).
    fn collect(&mut self) {
        let Some(mon) = self.mon.as_mut() else { return };
        // (what the core's thread finds is collected when it comes back)
        if mon.away() {
            return;
        }
        if mon.stream().is_none() {
            mon.hand_back(&mut self.events);
        }
        let seen_before = std::mem::replace(&mut self.notable_seen, mon.notable());
        let stream = match &self.mon {
            Some(m) => m.stream().unwrap_or(&self.events),
            None => &self.events,
        };
        let start = std::mem::replace(&mut self.scanned, stream.len());
        let unseen = if seen_before == self.notable_seen { &[][..] } else { &stream[start..] };
        for e in unseen {
            if let EventKind::Inject { id, pfn, .. } = e.kind {
                self.fired.push((e.ts_ns, id, pfn));
            }
            if let EventKind::Violation(v) = &e.kind {
                self.summary.add(v);
                let n = self.summary.total;
                if self.report && n as usize <= REPORTED_IN_FULL {
                    eprint!("{}", format_violation(n, v));
                    if n as usize == REPORTED_IN_FULL {
                        eprintln!("cmaemu: further violations are counted, not printed: the summary follows at exit (--trace FILE records every one)");
                    }
                }
                self.violations.push((**v).clone());
                if self.on_violation == OnViolation::Stop {
                    self.stop_requested = true;
                }
            }
        }
        if !self.keep_events && self.scanned >= self.drop_after {
            self.drop_stream();
        }
    }

    /// Drop the stream, every event of it counted, wherever it is held.
    fn drop_stream(&mut self) {
        if let Some(m) = &mut self.mon {
            m.drop_stream();
        }
        self.events.clear();
        self.scanned = 0;
    }

    /// The last snapshot (for `trace map`).
    pub fn snapshot(&mut self) -> Option<Snapshot> {
        let ram = self.ram.clone();
        self.mon.as_mut()?.snapshot(&ram).ok().cloned()
    }

    /// End of the run: close the stream and return every event.
    pub fn finish(&mut self) -> Vec<Event> {
        if let Some(m) = &mut self.mon {
            if let Err(e) = m.catch_up(&self.ram) {
                self.error.get_or_insert(InstrumentError::Session(e));
            }
            m.finish();
        }
        self.collect();
        if let Some(m) = &mut self.mon {
            if m.stream().is_some() {
                m.hand_back(&mut self.events);
            }
        }
        self.scanned = 0;
        if !self.keep_events {
            self.events.clear();
        }
        std::mem::take(&mut self.events)
    }

    /// Every event so far, in order (none without `keep_events`).
    pub fn events(&self) -> &[Event] {
        if !self.keep_events {
            return &[];
        }
        match &self.mon {
            Some(m) => m.stream().unwrap_or(&self.events),
            None => &self.events,
        }
    }

    /// Add an event of the board's to the stream (not counted as the
    /// session's: no violation or injection is looked for in it).
    pub fn push_event(&mut self, e: Event) {
        if let Some(m) = &mut self.mon {
            if m.stream().is_some() {
                m.hand_back(&mut self.events);
            }
        }
        let counted = self.scanned == self.events.len();
        self.events.push(e);
        if counted {
            self.scanned = self.events.len();
        }
    }
}

/// Where the guest's address-space table lies and its length in bytes
/// (at most 64 records), from the descriptor.
fn address_space_table(ram: &GuestRam, desc_pa: Option<u64>) -> Option<(u64, usize)> {
    use cmaemu_abi::desc::GuestDesc;
    let pa = desc_pa?;
    let field = |off: usize| ram.read_u32(pa + off as u64);
    let nr = field(std::mem::offset_of!(GuestDesc, nr_address_spaces))?;
    let table_pa = field(std::mem::offset_of!(GuestDesc, as_table_pa))?;
    Some((table_pa as u64, nr.min(64) as usize * 16))
}

/// (asid, TTBR0) of every live address space in the guest's table at
/// `table_pa` (`len` bytes, from [`address_space_table`]), into `out`.
fn address_spaces(ram: &GuestRam, table_pa: u64, len: usize, out: &mut Vec<(u32, u32)>) {
    out.clear();
    let nr = len / 16;
    // the table in one read (record by record only if that fails)
    let mut table = [0u8; 64 * 16];
    let whole = ram.read(table_pa, &mut table[..nr * 16]).is_ok();
    for i in 0..nr {
        let mut b = [0u8; 16];
        if whole {
            b.copy_from_slice(&table[i * 16..i * 16 + 16]);
        } else if ram.read(table_pa + i as u64 * 16, &mut b).is_err() {
            break;
        }
        if let Some(r) = from_bytes::<AddressSpaceRecord>(&b) {
            if r.flags & cmaemu_abi::desc::AS_LIVE != 0 {
                out.push((r.asid, r.ttbr0));
            }
        }
    }
}

/// The CPU's TLB by address space: only the current one can have cached
/// user translations (the guest flushes the TLB when it switches; kernel
/// VAs are global).
struct AsidTlb<'t> {
    cpu: &'t mut dyn CpuTlb,
    /// (asid, TTBR0) of every live address space, as the guest's table
    /// says (re-read when it was written).
    table: &'t mut AsidTable,
    loaded: bool,
    ram: &'t GuestRam,
    desc_pa: Option<u64>,
    /// TTBR0 in this service pass (the CPU is stopped: it cannot change).
    ttbr0: Option<u32>,
}

/// The guest's address-space table as last read, kept between service
/// passes: its pages are watched in RAM's dirty log, and it is read again
/// only after one was written (a task created or gone). At a migrated
/// page's doorbell the TLB check asks which address space is current:
/// reading the table at every one cost a copy per page.
#[derive(Debug, Default)]
struct AsidTable {
    ttbrs: Vec<(u32, u32)>,
    /// The table's pages, watched since it was read (empty: not read).
    pages: Vec<u64>,
}

impl AsidTable {
    /// Whether the table read last still holds: read and not written since.
    fn still_valid(&mut self, ram: &GuestRam) -> bool {
        // every page's mark is taken (a written one must not stay marked)
        let mut valid = !self.pages.is_empty();
        for &p in &self.pages {
            valid &= ram.take_page(p) == Some(false);
        }
        valid
    }

    /// Read the table from the guest, watching its pages first.
    fn load(&mut self, ram: &GuestRam, desc_pa: Option<u64>) {
        for p in self.pages.drain(..) {
            ram.watch_page(p, false);
        }
        self.ttbrs.clear();
        let Some((table_pa, len)) = address_space_table(ram, desc_pa) else { return };
        let mut p = table_pa & !0xfff;
        while p < table_pa + len.max(1) as u64 {
            if ram.watch_page(p, true) {
                self.pages.push(p);
            }
            p += 0x1000;
        }
        address_spaces(ram, table_pa, len, &mut self.ttbrs);
    }
}

impl AsidTlb<'_> {
    fn ttbrs(&mut self) -> &[(u32, u32)] {
        if !self.loaded {
            if !self.table.still_valid(self.ram) {
                self.table.load(self.ram, self.desc_pa);
            }
            self.loaded = true;
        }
        &self.table.ttbrs
    }
    fn cur_ttbr0(&mut self) -> u32 {
        match self.ttbr0 {
            Some(t) => t,
            None => *self.ttbr0.insert(self.cpu.ttbr0()),
        }
    }
    fn is_current(&mut self, asid: u32) -> bool {
        let cur = self.cur_ttbr0();
        self.ttbrs().iter().any(|&(a, t)| a == asid && t & !0x1fff == cur & !0x1fff)
    }
}

impl TlbAccess for AsidTlb<'_> {
    fn current_asid(&mut self) -> Option<u32> {
        let cur = self.cur_ttbr0();
        self.ttbrs().iter().find(|&&(_, t)| t & !0x1fff == cur & !0x1fff).map(|&(a, _)| a)
    }
    fn retain(&mut self, asid: u32, va: u32, pa: u64) -> bool {
        if va >= 0x8000_0000 || !self.is_current(asid) {
            return false;
        }
        self.cpu.retain(va, pa);
        true
    }
}

impl Instrumentation {
    /// A migrated page's doorbell is all there is to serve: it may be light
    /// (see `Session::light_doorbell`); not when a violation must stop the
    /// run where the drain would have found it.
    fn light_due(&self) -> bool {
        self.may_defer() && self.doorbell && !self.prompt && !self.alloc_done && !self.final_due && self.frame_due.is_none() && self.dma.is_empty() && self.notes.is_empty()
    }

    /// Checks may run later than their pass (a light doorbell's records at
    /// a later pass, a frame's checks on the core's thread): not when a
    /// violation must stop the run where it is found.
    fn may_defer(&self) -> bool {
        self.light_doorbells && self.on_violation != OnViolation::Stop
    }
}

impl Servicer for Instrumentation {
    fn serve_light(&mut self, now: u64, tlb: &mut dyn CpuTlb) -> bool {
        if !self.light_due() {
            return false;
        }
        let ram = &self.ram;
        let mut tlb = AsidTlb { cpu: tlb, table: &mut self.ttbrs, loaded: false, ram, desc_pa: self.desc_pa, ttbr0: None };
        let Some(mon) = self.mon.as_mut() else { return false };
        if !mon.light_doorbell(ram, now, &mut tlb) {
            return false;
        }
        self.doorbell = false;
        self.light_served += 1;
        true
    }

    fn service(&mut self, now: u64, tlb: &mut dyn CpuTlb) {
        if self.mon.is_none() {
            let Some(pa) = self.desc_pa else { return };
            if self.error.is_some() {
                return;
            }
            match Session::attach(&self.ram, pa) {
                Ok(mut m) => {
                    m.set_modes(self.checks, self.explain, self.transport_only);
                    if self.checks && !self.transport_only {
                        // migrated pages' old frames will be kept
                        // copy-on-write: the engine set up now
                        self.ram.prepare_preserve();
                    }
                    m.emit_layout(now);
                    // (its count of violations and injections starts at 0)
                    self.notable_seen = 0;
                    self.mon = Some(m);
                }
                Err(source) => {
                    let e = InstrumentError::Rejected { pa, source };
                    if self.report {
                        eprintln!("cmaemu: {e}");
                    }
                    self.error = Some(e);
                    return;
                }
            }
        }
        // (a CPU that serves at block starts asked first)
        if self.serve_light(now, tlb) {
            return;
        }
        // borrowed beside the other fields (a clone per pass cost an
        // atomic increment and decrement)
        let ram = &self.ram;
        // a frame's checks on the core's thread, unless a violation must
        // stop the run at once
        let away = self.may_defer();
        let mut tlb = AsidTlb { cpu: tlb, table: &mut self.ttbrs, loaded: false, ram, desc_pa: self.desc_pa, ttbr0: None };
        let Some(mon) = self.mon.as_mut() else { return };
        // a translation the guest did not invalidate stays cached
        mon.hold_translation(&mut tlb);
        // the session appends to the run's stream in place (and keeps it)
        mon.lend(&mut self.events);
        let mut err = None;
        // what light doorbells left comes first, as their drains did
        if let Err(e) = mon.catch_up(ram) {
            err = Some(InstrumentError::Session(e));
        }
        // Transfers first: they happened at the last device tick, before
        // whatever the guest announced since (e.g. a buffer freed or
        // unpinned right after the device was stopped).
        for (t, at, dur) in std::mem::take(&mut self.dma) {
            if let Err(e) = mon.dma(ram, t, at, dur) {
                err = Some(InstrumentError::Session(e));
            }
        }
        if std::mem::take(&mut self.doorbell) {
            if let Err(e) = mon.service(ram, now, &mut tlb) {
                err = Some(InstrumentError::Session(e));
            }
        }
        if std::mem::take(&mut self.prompt) {
            if let Err(e) = mon.settle(ram) {
                err = Some(InstrumentError::Session(e));
            }
        }
        if std::mem::take(&mut self.alloc_done) || self.final_due {
            self.console_lines.extend(mon.take_console_lines());
        }
        for e in std::mem::take(&mut self.notes) {
            mon.note(e);
        }
        if let Some(i) = self.frame_due.take() {
            if let Err(e) = mon.frame_boundary(ram, i, now, &mut tlb, away) {
                err = Some(InstrumentError::Session(e));
            }
        }
        if std::mem::take(&mut self.final_due) {
            if let Err(e) = mon.final_check(ram, now, &mut tlb) {
                err = Some(InstrumentError::Session(e));
            }
        }
        if let Some(e) = err {
            if self.report && self.error.as_ref() != Some(&e) {
                eprintln!("cmaemu: introspection: {e}");
            }
            self.error = Some(e);
        }
        self.collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cmaemu_abi::desc::{as_bytes, AddressSpaceRecord, GuestDesc, AS_LIVE};

    /// A CPU whose TTBR0 is `ttbr0` and which retains nothing.
    struct FixedCpu {
        ttbr0: u32,
        reads: u32,
    }
    impl CpuTlb for FixedCpu {
        fn ttbr0(&mut self) -> u32 {
            self.reads += 1;
            self.ttbr0
        }
        fn contextidr(&mut self) -> u32 {
            0
        }
        fn retain(&mut self, _va: u32, _pa: u64) {}
    }

    /// A synthetic guest for a migration storm: 12 user pages of address
    /// space 1 at `VA`, in the CMA area, each filled with its own byte;
    /// returns it, the area's first pfn and the space's TTBR0.
    fn storm_guest() -> (crate::introspect::synth::SynthGuest, u32, u32) {
        storm_guest_of(12)
    }

    /// [`storm_guest`] of `pages` pages.
    fn storm_guest_of(pages: u32) -> (crate::introspect::synth::SynthGuest, u32, u32) {
        let mut g = crate::introspect::synth::SynthGuest::new(64);
        let cma = g.pb_pfn(8);
        g.add_cma("linux,cma", cma, 4 << 10, 0);
        let ttbr0 = g.add_space(1);
        for k in 0..pages {
            g.user_page(1, STORM_VA + k * 0x1000, cma + k);
            g.fill(cma + k, 1 + k as u8);
        }
        g.commit();
        (g, cma, ttbr0)
    }
    const STORM_VA: u32 = 0x0040_0000;

    /// A run nobody reads the stream of (`keep_events` off) drops its
    /// events in batches, yet collects the same violations, each with the
    /// same events before it, as a run that keeps the stream: a migration
    /// storm over several passes and frames, every third page not copied
    /// (batches of at least 20 events here: several drops; the pages'
    /// doorbells between frames are light, their records wait).
    #[test]
    fn a_stream_nobody_reads_is_dropped_and_the_same_violations_are_collected() {
        use cmaemu_abi::trace::TraceRecord;
        const VA: u32 = STORM_VA;
        let run = |keep: bool| {
            let (mut g, cma, ttbr0) = storm_guest();
            let mut i = Instrumentation::new(g.ram.clone(), OnViolation::Log, false, true);
            i.keep_events = keep;
            i.drop_after = 20;
            i.desc_pa = Some(g.desc_pa);
            let mut cpu = FixedCpu { ttbr0, reads: 0 };
            let mut lens = Vec::new();
            for k in 0..12u32 {
                let (old, new, va, t) = (cma + k, g.pb_pfn(2) + k, VA + k * 0x1000, 1000 * (k as u64 + 1));
                g.push(&TraceRecord::migrate_page_begin(t, old, new, Some((1, va))));
                i.doorbell = true;
                i.frame_due = (k % 2 == 1).then_some(k as u64);
                Servicer::service(&mut i, t, &mut cpu);
                // (a frame's checks may be on the core's thread: it comes
                // back when the CPU stops, before anyone reads the stream)
                i.join();
                assert!(keep || i.events().is_empty());
                // the stream's length, wherever it is held
                lens.push(i.mon.as_ref().and_then(|m| m.stream()).map_or(i.events.len(), |s| s.len()));
                g.move_user_page(1, va, old, new, k % 3 != 0);
                g.commit();
                g.push(&TraceRecord::migrate_page(t + 500, old, new, 1, 1, 0, &[va]));
            }
            i.request_final_check();
            Servicer::service(&mut i, 20_000, &mut cpu);
            let last = i.finish();
            (i.violations.clone(), lens, last.len())
        };
        let (kept, kept_lens, kept_last) = run(true);
        let (dropped, dropped_lens, dropped_last) = run(false);
        assert!(kept.iter().filter(|v| v.check == crate::findings::Check::MigrateContent).count() >= 3, "{kept:?}");
        assert!(kept.iter().all(|v| !v.recent_events.is_empty()));
        assert_eq!(dropped, kept);
        // the kept stream grows at every frame (the pages' doorbells between
        // are light: their records wait for the next full pass); the other
        // is dropped again and again (a frame's pass adds fewer than 20
        // events), nothing is returned
        assert!(kept_lens.windows(2).all(|w| w[0] <= w[1]) && kept_lens.iter().skip(1).step_by(2).collect::<Vec<_>>().windows(2).all(|w| w[0] < w[1]) && kept_last > kept_lens[11], "{kept_lens:?} {kept_last}");
        assert!(dropped_lens.iter().all(|&n| n < 20 + 20) && dropped_lens.windows(2).filter(|w| w[1] < w[0]).count() >= 2 && dropped_last == 0, "{dropped_lens:?} {dropped_last}");
    }

    /// A migration storm of `pages` pages through the instrumentation,
    /// with light doorbells or a drain at every doorbell: every third page
    /// not copied, every fourth without its invalidate, the middle page's
    /// old frame left mapped by a second PTE, a frame every
    /// `frame_every` pages, a device writing into page `dma.1`'s old frame
    /// (moved away) just before page `dma.0`; with `batch`, every
    /// `batch`-th page's move is flushed with a doorbell of its own and an
    /// `mm_migrate_pages` record follows, as the guest ends a batch of
    /// pages. Returns the stream, the violations, the doorbells served
    /// light and the passes after which the core worked on its thread.
    fn storm(light: bool, pages: u32, frame_every: u32, dma: (u32, u32), batch: Option<u32>) -> (Vec<Event>, Vec<Violation>, u64, u32) {
        use cmaemu_abi::trace::TraceRecord;
        const VA: u32 = STORM_VA;
        let (mut g, cma, ttbr0) = storm_guest_of(pages);
        let mut i = Instrumentation::new(g.ram.clone(), OnViolation::Log, false, true);
        i.light_doorbells = light;
        i.desc_pa = Some(g.desc_pa);
        let mut cpu = FixedCpu { ttbr0, reads: 0 };
        let mut away = 0;
        for k in 0..pages {
            let (old, new, va, t) = (cma + k, g.pb_pfn(2) + k, VA + k * 0x1000, 1000 * (k as u64 + 1));
            g.push(&TraceRecord::migrate_page_begin(t, old, new, Some((1, va))));
            i.doorbell = true;
            i.frame_due = (k % frame_every == frame_every - 1).then_some(k as u64);
            if k == dma.0 {
                i.dma.push((DmaTransfer { device: 0, pa: ((cma + dma.1) as u64) << 12, len: 4096, write: true }, t - 10, 5));
            }
            Servicer::service(&mut i, t, &mut cpu);
            away += i.mon.as_ref().is_some_and(|m| m.away()) as u32;
            g.move_user_page(1, va, old, new, k % 3 != 0);
            if k == pages / 2 {
                // a stale PTE left on the freed old frame (the frame checks')
                g.set_pte(1, VA + pages * 0x1000, Some(old));
            }
            g.commit();
            if k % 4 != 1 {
                i.tlb_maintenance(crate::cpu::TlbOp::Va { va, asid: 1 }, t + 400);
                g.push(&TraceRecord::tlb_flush(t + 400, cmaemu_abi::trace::TLB_PAGE, 1, va));
            }
            g.push(&TraceRecord::migrate_page(t + 500, old, new, 1, 1, 0, &[va]));
            if batch.is_some_and(|b| k % b == b - 1) {
                i.doorbell = true;
                Servicer::service(&mut i, t + 600, &mut cpu);
                g.push(&TraceRecord::mm_migrate_pages(t + 700, batch.unwrap_or(0), 0, 0, 0, 0, 2, 6));
            }
        }
        i.request_final_check();
        Servicer::service(&mut i, 1000 * (pages as u64 + 10), &mut cpu);
        (i.finish(), i.violations.clone(), i.light_served, away)
    }

    /// Light doorbells (a migrated page's doorbell served without a drain,
    /// its records decoded and checked at the next full pass) give the
    /// stream a drain at every doorbell gives — the same events in the
    /// same order, the same violations with the same events before them:
    /// a migration storm where every third page is not copied, every
    /// fourth keeps its old translation (no invalidate) and the camera
    /// writes into a frame that migrated away, between frames.
    #[test]
    fn light_doorbells_give_the_stream_a_drain_at_every_doorbell_gives() {
        let (light, light_v, served, away) = storm(true, 12, 5, (7, 2), None);
        let (drained, drained_v, none, _) = storm(false, 12, 5, (7, 2), None);
        // (the two frames' checks were done on the core's thread)
        assert!(served >= 8 && none == 0 && away >= 2, "{served} {none} {away}");
        let count = |c: crate::findings::Check| light_v.iter().filter(|v| v.check == c).count();
        use crate::findings::Check;
        assert!(count(Check::MigrateContent) >= 3 && count(Check::MigrateTlb) >= 2 && count(Check::DmaMigrating) >= 1 && count(Check::PteMapsFree) >= 1, "{light_v:#?}");
        assert_eq!(light_v, drained_v);
        assert_eq!(light, drained);
    }

    /// A storm long enough that the records light doorbells leave fill
    /// half the ring again and again (shipped to the core's thread, checked
    /// there while the "guest" goes on) gives the stream and the
    /// violations a drain at every doorbell gives: batches of 8 pages (the
    /// last page's move flushed with a doorbell of its own, an
    /// `mm_migrate_pages` record after it), every third page not copied,
    /// every fourth without its invalidate, a device writing into a frame
    /// that migrated away, frames now and then.
    #[test]
    fn batches_checked_on_the_cores_thread_give_the_stream_a_drain_at_every_doorbell_gives() {
        const PAGES: u32 = 96;
        let (light, light_v, served, shipped) = storm(true, PAGES, 40, (70, 5), Some(8));
        let (drained, drained_v, none, _) = storm(false, PAGES, 40, (70, 5), Some(8));
        // (the ring holds 128 records: about 3 a page wait until 64 do)
        assert!(served >= PAGES as u64 && none == 0 && shipped >= 3, "served {served}, {none} without light doorbells, shipped {shipped}");
        use crate::findings::Check;
        let count = |c: Check| light_v.iter().filter(|v| v.check == c).count();
        assert!(count(Check::MigrateContent) >= 20 && count(Check::MigrateTlb) >= 15 && count(Check::DmaMigrating) >= 1 && count(Check::PteMapsFree) >= 1, "{light_v:#?}");
        assert_eq!(light_v, drained_v);
        assert_eq!(light, drained);
    }

    const DESC: u64 = 0x1000;
    const TABLE: u64 = 0x3ff8; // straddles two pages

    fn put_record(ram: &GuestRam, i: u64, asid: u32, ttbr0: u32, flags: u32) {
        let r = AddressSpaceRecord { asid, ttbr0, flags, pid: asid };
        ram.write(TABLE + i * 16, as_bytes(&r)).unwrap();
    }

    fn current(ram: &GuestRam, table: &mut AsidTable, cpu: &mut FixedCpu) -> Option<u32> {
        let mut tlb = AsidTlb { cpu, table, loaded: false, ram, desc_pa: Some(DESC), ttbr0: None };
        let a = tlb.current_asid();
        // asked twice in one pass: TTBR0 read once
        assert_eq!(tlb.is_current(a.unwrap_or(u32::MAX)), a.is_some());
        a
    }

    #[test]
    fn the_address_space_table_is_read_again_only_after_it_was_written() {
        let ram = GuestRam::new(0, 0x10000).unwrap();
        ram.write_u32(DESC + std::mem::offset_of!(GuestDesc, nr_address_spaces) as u64, 3).unwrap();
        ram.write_u32(DESC + std::mem::offset_of!(GuestDesc, as_table_pa) as u64, TABLE as u32).unwrap();
        put_record(&ram, 0, 1, 0x8000, AS_LIVE);
        put_record(&ram, 1, 2, 0xc000, AS_LIVE);
        let mut table = AsidTable::default();
        let mut cpu = FixedCpu { ttbr0: 0xc000 | 0x4a, reads: 0 };
        assert_eq!(current(&ram, &mut table, &mut cpu), Some(2));
        assert_eq!(cpu.reads, 1);
        assert_eq!(table.pages, vec![0x3000, 0x4000]);
        // a task created in the table's second page: seen at the next pass
        put_record(&ram, 2, 3, 0x10000, AS_LIVE);
        cpu.ttbr0 = 0x10000;
        assert_eq!(current(&ram, &mut table, &mut cpu), Some(3));
        // gone again (its record written in place), in the first page
        put_record(&ram, 0, 1, 0x8000, 0);
        cpu.ttbr0 = 0x8000;
        assert_eq!(current(&ram, &mut table, &mut cpu), None);
        // nothing written: the table kept is used (a planted stale entry
        // that a fresh read would drop stays)
        table.ttbrs.push((9, 0x8000));
        assert_eq!(current(&ram, &mut table, &mut cpu), Some(9));
        // every mark was taken: a write to either page is seen once
        put_record(&ram, 1, 2, 0xc000, AS_LIVE);
        assert_eq!(current(&ram, &mut table, &mut cpu), None);
    }
}
