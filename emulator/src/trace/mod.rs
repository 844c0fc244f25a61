//! Events and their writers.
//!
//! Events come from the guest's trace ring ([`Decoder`] turns ring records
//! into [`Event`]s, resolving CMA area names), from the board's DMA masters
//! ([`EventKind::DmaTransfer`]), from frame boundaries and counters, and
//! from the verifiers ([`EventKind::Violation`]). The
//! [`Instrumentation`](crate::instrument::Instrumentation) keeps them in
//! order; they are written as JSON lines
//! ([`jsonl`]), Chrome/Perfetto trace-event JSON ([`chrome`]) and Linux 6.1
//! ftrace text ([`ftrace`]); [`summary`] tabulates them per frame and
//! [`map`] draws the pageblock/page map of a snapshot. Every writer is a
//! pure function of its input: identical events give identical bytes.
pub mod chrome;
pub mod draw;
pub mod framemap;
pub mod ftrace;
pub mod html;
pub mod jsonl;
pub mod map;
pub mod summary;
pub mod read;
#[cfg(test)]
mod tests;
mod vas;

pub use map::{map_png, map_rgb};
pub use summary::{allocation_table, allocations, summary, AllocRow};
pub use vas::{Vas, VAS_INLINE};

use crate::introspect::MmCounters;
use crate::findings::Violation;
use cmaemu_abi::desc::name_bytes;
use cmaemu_abi::trace::{GuestEvent, TraceRecord};
use std::collections::VecDeque;

/// One event. Kinds that are large and rare (counters, violations, causes,
/// the run and the layout) are boxed: an event is 80 bytes, not 128, and a
/// migration storm writes two per page.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Virtual time.
    pub ts_ns: u64,
    /// Frame (camera/display period) index.
    pub frame: u64,
    pub kind: EventKind,
}

/// What happened.
#[derive(Clone, Debug, PartialEq)]
pub enum EventKind {
    CmaAllocStart { name: String, count: u64, align: u32 },
    CmaAllocFinish { name: String, pfn: u64, page: u32, count: u64, align: u32, errorno: i32 },
    CmaAllocBusyRetry { name: String, pfn: u64, page: u32, count: u64, align: u32 },
    CmaRelease { name: String, pfn: u64, page: u32, count: u64 },
    MigratePagesStart { mode: u8, reason: u32 },
    MigratePages { succeeded: u64, failed: u64, thp_succeeded: u64, thp_failed: u64, thp_split: u64, mode: u8, reason: u32 },
    /// The old frame is unmapped and about to be copied.
    MigratePageBegin { old_pfn: u32, new_pfn: u32 },
    /// One page moved; `vas` mapped it (in `asid`).
    MigratePage { old_pfn: u32, new_pfn: u32, asid: u32, vas: Vas },
    DmaAlloc { device: u32, pfn: u64, count: u32, order: u32, errorno: i32 },
    DmaFree { device: u32, pfn: u64, count: u32 },
    TlbFlush { scope: u8, asid: u32, va: u32 },
    Inject { id: u8, pfn: u64, arg: u32, extra: u32 },
    Mark { label: String },
    /// A DMA master moved `len` bytes at `pa` (board).
    DmaTransfer { device: u32, pa: u64, len: u64, write: bool, dur_ns: u64 },
    /// A frame boundary (board): frame `index` starts.
    Frame { index: u64 },
    /// mm counters at this point (board, usually at each frame boundary).
    Counters(Box<MmCounters>),
    /// The guest dropped `lost` records (ring full) or the ring was corrupt.
    RingLoss { lost: u64 },
    Violation(Box<Violation>),
    /// The migrate type of every pageblock (board, at the first frame
    /// boundary and at every later one where a type changed): what
    /// `cmaemu trace map` draws.
    PageblockMap { first_pfn: u32, pageblock_pages: u32, mts: Vec<u8> },
    /// What the run was started with (board, first event).
    Run(Box<RunInfo>),
    /// The guest's memory layout (host, when the verifier attaches).
    Layout(Box<Layout>),
    /// Page occupancy (host, at frame boundaries): `full` lists every
    /// page, otherwise only the runs that changed since the last one.
    /// Runs are `(first pfn, pages, PageState code)`.
    PageStates { full: bool, runs: Vec<(u32, u32, u8)> },
    /// The display scanned out its frame `number` from `pa`; `camera` is
    /// the camera frame it showed (None: not a camera frame).
    DisplayFrame { number: u64, pa: u64, camera: Option<u64> },
    /// Why a `cma_alloc` retried or failed (host, from guest memory;
    /// `crate::explain`): one event per cause.
    CmaCause(Box<CmaCause>),
    /// The running `cma_alloc`'s `alloc_contig_range` enters `phase`
    /// (`cmaemu_abi::trace::CMA_PHASE_*`; see `TR_CMA_PHASE`).
    CmaAllocPhase { phase: u8 },
}

/// Why a `cma_alloc` of area `name` retried or failed
/// ([`EventKind::CmaCause`]). `retries`: busy retries so far; `last`: at
/// the allocation's end (else at a busy retry); `cause`: the cause's short
/// name; `pfn`: the page it names; `text`: the sentence the console prints.
#[derive(Clone, Debug, PartialEq)]
pub struct CmaCause {
    pub name: String,
    pub count: u64,
    pub align: u32,
    pub retries: u32,
    pub last: bool,
    pub errorno: i32,
    pub migrated: u64,
    pub cause: String,
    pub pfn: Option<u32>,
    pub text: String,
}

/// What a run was started with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunInfo {
    /// The device tree: a file name or "default board".
    pub dtb: String,
    /// The kernel command line (`/chosen/bootargs` as handed over).
    pub cmdline: String,
    /// RAM size in bytes.
    pub ram_bytes: u64,
    /// `cmaemu.profile=` of the command line (default debian-6.1).
    pub profile: String,
}

impl RunInfo {
    /// The profile a command line selects (`cmaemu.profile=`, last wins).
    pub fn profile_of(cmdline: &str) -> String {
        cmdline.split_whitespace().filter_map(|w| w.strip_prefix("cmaemu.profile=")).last().unwrap_or("debian-6.1").to_string()
    }
}

/// A named pfn range `[start, end)`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PfnSpan {
    pub name: String,
    pub start: u32,
    pub end: u32,
}

/// The memory layout a report draws.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Layout {
    /// First pfn with a page record, and how many.
    pub base_pfn: u32,
    pub nr_pages: u32,
    pub pageblock_pages: u32,
    pub max_order: u32,
    pub zones: Vec<PfnSpan>,
    pub areas: Vec<PfnSpan>,
}

impl Layout {
    /// The layout of a snapshot.
    pub fn of(s: &crate::introspect::Snapshot) -> Layout {
        Layout {
            base_pfn: s.base_pfn(),
            nr_pages: s.pages.len() as u32,
            pageblock_pages: s.pageblock_pages(),
            max_order: s.desc.max_order,
            zones: s
                .zones
                .iter()
                .filter(|z| z.end_pfn > z.start_pfn)
                .map(|z| PfnSpan { name: String::from_utf8_lossy(name_bytes(&z.name)).into_owned(), start: z.start_pfn, end: z.end_pfn })
                .collect(),
            areas: s.cma.iter().map(|a| PfnSpan { name: a.name.clone(), start: a.base_pfn, end: a.base_pfn + a.count }).collect(),
        }
    }
}

/// The [`PageState`](crate::introspect::PageState) code of every page of a snapshot.
pub fn page_states(s: &crate::introspect::Snapshot) -> Vec<u8> {
    s.page_state_codes()
}

/// `new` (codes of pages from `base` on) as runs `(first pfn, pages,
/// code)`; with `old`, only the pages whose code changed.
pub fn state_runs(base: u32, new: &[u8], old: Option<&[u8]>) -> Vec<(u32, u32, u8)> {
    let mut out: Vec<(u32, u32, u8)> = Vec::new();
    // equal stretches are skipped a block at a time (a plain compare)
    const BLOCK: usize = 64;
    let mut i = 0;
    while i < new.len() {
        if let Some(o) = old {
            let e = (i + BLOCK).min(new.len());
            if o.get(i..e) == Some(&new[i..e]) {
                i = e;
                continue;
            }
        }
        let e = (i + BLOCK).min(new.len());
        for (i, &c) in new.iter().enumerate().take(e).skip(i) {
            if old.is_some_and(|o| o.get(i) == Some(&c)) {
                continue;
            }
            push_run(&mut out, base + i as u32, c);
        }
        i = e;
    }
    out
}

/// The pages of `ranges` (ascending, disjoint indices) whose code differs
/// between `old` and `new`, as runs (as [`state_runs_in`] finds them;
/// neither is changed).
pub fn state_runs_between(base: u32, ranges: &[std::ops::Range<usize>], new: &[u8], old: &[u8]) -> Vec<(u32, u32, u8)> {
    let mut out: Vec<(u32, u32, u8)> = Vec::new();
    let n = new.len().min(old.len());
    const BLOCK: usize = 64;
    for r in ranges {
        let (mut i, end) = (r.start.min(n), r.end.min(n));
        while i < end {
            let e = (i + BLOCK).min(end);
            if old[i..e] != new[i..e] {
                for j in i..e {
                    if old[j] != new[j] {
                        push_run(&mut out, base + j as u32, new[j]);
                    }
                }
            }
            i = e;
        }
    }
    out
}

/// `runs` (ascending pfns) without the pages of `ranges` (ascending,
/// disjoint page-array indices from `base`).
pub fn runs_outside(base: u32, runs: &[(u32, u32, u8)], ranges: &[std::ops::Range<usize>]) -> Vec<(u32, u32, u8)> {
    let mut out = Vec::with_capacity(runs.len());
    let mut k = 0;
    for &(pfn, n, c) in runs {
        let (mut lo, hi) = (pfn as u64, pfn as u64 + n as u64);
        // the ranges that end before this run cannot cut a later one
        while k < ranges.len() && base as u64 + (ranges[k].end as u64) <= lo {
            k += 1;
        }
        let mut j = k;
        while lo < hi {
            match ranges.get(j).map(|r| (base as u64 + r.start as u64, base as u64 + r.end as u64)) {
                Some((rs, re)) if rs < hi => {
                    if rs > lo {
                        out.push((lo as u32, (rs - lo) as u32, c));
                    }
                    lo = lo.max(re);
                    j += 1;
                }
                _ => {
                    out.push((lo as u32, (hi - lo) as u32, c));
                    lo = hi;
                }
            }
        }
    }
    out
}

/// Two run lists of disjoint pages (each ascending) as one, neighbouring
/// runs of one code joined: the runs [`state_runs`] gives for their pages.
pub fn merge_runs(a: &[(u32, u32, u8)], b: &[(u32, u32, u8)]) -> Vec<(u32, u32, u8)> {
    let mut out: Vec<(u32, u32, u8)> = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let r = if j >= b.len() || (i < a.len() && a[i].0 < b[j].0) {
            i += 1;
            a[i - 1]
        } else {
            j += 1;
            b[j - 1]
        };
        match out.last_mut() {
            Some((s, n, c)) if *c == r.2 && *s + *n == r.0 => *n += r.1,
            _ => out.push(r),
        }
    }
    out
}

/// Add page `pfn` with code `c` to `out`: the last run grows when it
/// ends just before `pfn` with the same code.
fn push_run(out: &mut Vec<(u32, u32, u8)>, pfn: u32, c: u8) {
    match out.last_mut() {
        Some((s, n, oc)) if *oc == c && *s + *n == pfn => *n += 1,
        _ => out.push((pfn, 1, c)),
    }
}

/// [`state_runs`] of `new` against `old` where they may differ: only
/// over `ranges` (ascending, disjoint indices; outside them `old` and
/// `new` are equal), copying `new` into `old` there.
pub fn state_runs_in(base: u32, ranges: &[std::ops::Range<usize>], new: &[u8], old: &mut [u8]) -> Vec<(u32, u32, u8)> {
    let runs = state_runs_between(base, ranges, new, old);
    apply_runs(base, &runs, old);
    runs
}

/// Bring `codes` (of pages from `base` on) up to date with `runs`.
pub fn apply_runs(base: u32, runs: &[(u32, u32, u8)], codes: &mut [u8]) {
    for &(pfn, k, c) in runs {
        let i = (pfn - base) as usize;
        codes[i..i + k as usize].fill(c);
    }
}

impl EventKind {
    /// Short stable name (the `event` field of the JSON lines).
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::CmaAllocStart { .. } => "cma_alloc_start",
            EventKind::CmaAllocFinish { .. } => "cma_alloc_finish",
            EventKind::CmaAllocBusyRetry { .. } => "cma_alloc_busy_retry",
            EventKind::CmaRelease { .. } => "cma_release",
            EventKind::MigratePagesStart { .. } => "mm_migrate_pages_start",
            EventKind::MigratePages { .. } => "mm_migrate_pages",
            EventKind::MigratePageBegin { .. } => "migrate_page_begin",
            EventKind::MigratePage { .. } => "migrate_page",
            EventKind::DmaAlloc { .. } => "dma_alloc",
            EventKind::DmaFree { .. } => "dma_free",
            EventKind::TlbFlush { .. } => "tlb_flush",
            EventKind::Inject { .. } => "inject",
            EventKind::Mark { .. } => "mark",
            EventKind::DmaTransfer { .. } => "dma_transfer",
            EventKind::Frame { .. } => "frame",
            EventKind::Counters(_) => "counters",
            EventKind::RingLoss { .. } => "ring_loss",
            EventKind::Violation(_) => "violation",
            EventKind::PageblockMap { .. } => "pageblock_map",
            EventKind::Run(_) => "run",
            EventKind::Layout(_) => "layout",
            EventKind::PageStates { .. } => "page_states",
            EventKind::DisplayFrame { .. } => "display_frame",
            EventKind::CmaCause { .. } => "cma_cause",
            EventKind::CmaAllocPhase { .. } => "cma_alloc_phase",
        }
    }
}

/// Turns ring records into events: resolves area names and joins the
/// records of one migrated page with more than 4 mappings.
#[derive(Clone, Debug, Default)]
pub struct Decoder {
    names: Vec<String>,
    pending: Option<(Event, u32)>,
    /// Records that did not decode (unknown kind, bad field).
    pub undecodable: u64,
}

impl Decoder {
    /// `area_names[i]` is area `i` of the descriptor (`Snapshot::area_names`).
    pub fn new(area_names: Vec<String>) -> Self {
        Decoder { names: area_names, ..Default::default() }
    }

    fn name(&self, area: u8) -> String {
        self.names.get(area as usize).cloned().unwrap_or_else(|| format!("area{area}"))
    }

    /// Decode one record; completed events are appended to `out`.
    pub fn push(&mut self, r: &TraceRecord, frame: u64, out: &mut Vec<Event>) {
        self.push_decoded(r, r.decode().ok(), frame, out)
    }

    /// [`Decoder::push`] for a record the caller decoded already (`ge`:
    /// `r.decode().ok()`).
    pub fn push_decoded(&mut self, r: &TraceRecord, ge: Option<GuestEvent>, frame: u64, out: &mut Vec<Event>) {
        let Some(ge) = ge else {
            self.undecodable += 1;
            return;
        };
        if let GuestEvent::MigratePage { old_pfn, new_pfn, asid, total, first, nr_vas, vas } = ge {
            let vs = &vas[..nr_vas as usize];
            if first > 0 {
                if let Some((Event { kind: EventKind::MigratePage { old_pfn: o, new_pfn: n, asid: a, vas: pv }, .. }, _)) = &mut self.pending {
                    if *o == old_pfn && *n == new_pfn && *a == asid && pv.len() == first as usize {
                        pv.extend_from_slice(vs);
                        if pv.len() >= total as usize {
                            out.push(self.pending.take().unwrap().0);
                        }
                        return;
                    }
                }
            }
            self.flush(out);
            let ev = Event { ts_ns: r.ts_ns, frame, kind: EventKind::MigratePage { old_pfn, new_pfn, asid, vas: Vas::from_slice(vs) } };
            if vs.len() >= total as usize {
                out.push(ev);
            } else {
                self.pending = Some((ev, total));
            }
            return;
        }
        if let GuestEvent::Pin { .. } = ge {
            // for the cause finder only (it names a pin's origin)
            return;
        }
        self.flush(out);
        let kind = match ge {
            GuestEvent::CmaAllocStart { area, count, align } => EventKind::CmaAllocStart { name: self.name(area), count: count as u64, align },
            GuestEvent::CmaAllocFinish { area, pfn, page, count, align, errorno } => EventKind::CmaAllocFinish { name: self.name(area), pfn, page, count: count as u64, align, errorno },
            GuestEvent::CmaAllocBusyRetry { area, pfn, page, count, align } => EventKind::CmaAllocBusyRetry { name: self.name(area), pfn, page, count: count as u64, align },
            GuestEvent::CmaRelease { area, pfn, page, count } => EventKind::CmaRelease { name: self.name(area), pfn, page, count: count as u64 },
            GuestEvent::MigratePagesStart { mode, reason } => EventKind::MigratePagesStart { mode, reason },
            GuestEvent::MigratePages { succeeded, failed, thp_succeeded, thp_failed, thp_split, mode, reason } => EventKind::MigratePages {
                succeeded: succeeded as u64,
                failed: failed as u64,
                thp_succeeded: thp_succeeded as u64,
                thp_failed: thp_failed as u64,
                thp_split: thp_split as u64,
                mode,
                reason,
            },
            GuestEvent::MigratePageBegin { old_pfn, new_pfn, .. } => EventKind::MigratePageBegin { old_pfn, new_pfn },
            GuestEvent::MigratePage { .. } => unreachable!("handled above"),
            GuestEvent::DmaAlloc { device, pfn, count, order, errorno, .. } => EventKind::DmaAlloc { device, pfn, count, order, errorno },
            GuestEvent::DmaFree { device, pfn, count } => EventKind::DmaFree { device, pfn, count },
            GuestEvent::TlbFlush { scope, asid, va } => EventKind::TlbFlush { scope, asid, va },
            GuestEvent::Inject { id, pfn, arg, extra } => EventKind::Inject { id, pfn, arg, extra },
            GuestEvent::Mark { label } => EventKind::Mark { label: String::from_utf8_lossy(name_bytes(&label)).into_owned() },
            GuestEvent::Pin { .. } => unreachable!("handled above"),
            GuestEvent::CmaPhase { phase, .. } => EventKind::CmaAllocPhase { phase },
        };
        out.push(Event { ts_ns: r.ts_ns, frame, kind });
    }

    /// Emit a migrated page whose continuation records never came.
    pub fn flush(&mut self, out: &mut Vec<Event>) {
        if let Some((e, _)) = self.pending.take() {
            out.push(e);
        }
    }
}

/// The trace file formats (`--trace-format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TraceFormat {
    /// Chrome trace-event JSON, for ui.perfetto.dev.
    Perfetto,
    /// JSON lines (what `trace summary|map` and `report` read).
    Jsonl,
    /// Linux ftrace text.
    Ftrace,
}

impl TraceFormat {
    /// Write `events` in this format.
    pub fn write(self, events: &[Event], w: &mut dyn std::io::Write) -> std::io::Result<()> {
        match self {
            TraceFormat::Jsonl => jsonl::write_jsonl(events, w),
            TraceFormat::Ftrace => ftrace::write_ftrace(events, w),
            TraceFormat::Perfetto => chrome::write_chrome(events, w),
        }
    }
}

/// The last N events as JSON lines (what violations carry as context).
/// A stream's owner either pushes every event, or keeps its newest events
/// itself and hands them over in batches ([`RecentEvents::extend_from`],
/// which copies at most N of them), asking for the lines with those not yet
/// handed over ([`RecentEvents::to_vec_with`]).
#[derive(Clone, Debug)]
pub struct RecentEvents {
    cap: usize,
    /// Kept as events: formatted only when a violation needs them.
    q: VecDeque<Event>,
}

impl RecentEvents {
    pub fn new(cap: usize) -> Self {
        RecentEvents { cap, q: VecDeque::with_capacity(cap) }
    }
    pub fn push(&mut self, e: &Event) {
        if self.cap == 0 {
            return;
        }
        if self.q.len() == self.cap {
            self.q.pop_front();
        }
        let kept = match short(e) {
            Some(s) => s,
            None => e.clone(),
        };
        self.q.push_back(kept);
    }
    /// Push `es`, oldest first (only the last N are copied).
    pub fn extend_from(&mut self, es: &[Event]) {
        for e in &es[es.len().saturating_sub(self.cap)..] {
            self.push(e);
        }
    }
    /// The kept events as JSON lines, oldest first.
    pub fn to_vec(&self) -> Vec<String> {
        self.to_vec_with(&[])
    }
    /// The last N of the kept events followed by `newer` (not pushed), as
    /// JSON lines, oldest first.
    pub fn to_vec_with(&self, newer: &[Event]) -> Vec<String> {
        let from_newer = newer.len().min(self.cap);
        let kept = self.q.iter().skip(self.q.len() - (self.cap - from_newer).min(self.q.len()));
        let newer = &newer[newer.len() - from_newer..];
        kept.map(jsonl::event_json).chain(newer.iter().map(|e| match short(e) {
            Some(s) => jsonl::event_json(&s),
            None => jsonl::event_json(e),
        })).collect()
    }
}

/// A violation's own context is not repeated inside later contexts (it
/// would nest and grow without bound): the violation without it (None:
/// `e` is kept as it is).
fn short(e: &Event) -> Option<Event> {
    match &e.kind {
        EventKind::Violation(v) if !v.recent_events.is_empty() => {
            let mut short = v.clone();
            short.recent_events.clear();
            Some(Event { ts_ns: e.ts_ns, frame: e.frame, kind: EventKind::Violation(short) })
        }
        _ => None,
    }
}

/// `ns` as microseconds with three decimals (trace-event `ts`).
pub(crate) fn us(ns: u64) -> String {
    format!("{}.{:03}", ns / 1000, ns % 1000)
}

/// One JSON-line event (as violations carry them) as a short line a user
/// reads: `@<µs> <event> key=value ...`, frames, addresses and VAs in hex,
/// a violation as its check and pfn only.
pub fn event_text(line: &str) -> String {
    let Ok(serde_json::Value::Object(m)) = serde_json::from_str::<serde_json::Value>(line) else { return line.to_string() };
    let ts = m.get("ts_ns").and_then(|v| v.as_u64()).unwrap_or(0);
    let ev = m.get("event").and_then(|v| v.as_str()).unwrap_or("?");
    let mut s = format!("@{} us {ev}", us(ts));
    let hexy = |k: &str| k.contains("pfn") || k == "va" || k == "pa" || k == "page" || k == "vas";
    let val = |k: &str, v: &serde_json::Value| -> String {
        match v {
            serde_json::Value::Number(n) if hexy(k) => n.as_u64().map(|x| format!("{x:#x}")).unwrap_or_else(|| n.to_string()),
            serde_json::Value::Array(a) => {
                let items: Vec<String> = a.iter().map(|x| match x.as_u64() {
                    Some(x) if hexy(k) => format!("{x:#x}"),
                    _ => x.to_string(),
                }).collect();
                format!("[{}]", items.join(","))
            }
            serde_json::Value::String(t) => t.clone(),
            other => other.to_string(),
        }
    };
    for (k, v) in &m {
        match k.as_str() {
            "ts_ns" | "frame" | "event" => {}
            "violation" => {
                let check = v.get("check").and_then(|c| c.as_str()).unwrap_or("?");
                s.push_str(&format!(" {check}"));
                if let Some(p) = v.get("pfn").and_then(|p| p.as_u64()) {
                    s.push_str(&format!(" pfn={p:#x}"));
                }
            }
            "mts" => {}
            _ if v.is_null() => {}
            _ => s.push_str(&format!(" {k}={}", val(k, v))),
        }
    }
    s
}
