//! Chrome / Perfetto trace-event JSON (`{"traceEvents":[...]}`, opens in
//! ui.perfetto.dev and chrome://tracing).
//!
//! Tracks (pid 1): tid 1 `cma` (an "X" span per allocation, start to
//! finish), tid 2 `migration: old pfn` and tid 5 `migration: new pfn` (per
//! moved page one slice on each, spanning the copy from
//! `migrate_page_begin` to the move, joined by an "s"/"f" flow arrow from
//! the old page's slice to the new one's), tid 3 `guest` (other guest
//! events as thread instants), tid 4 `verify` (violations as global
//! instants), and one track per DMA master (tid 100 + device id, an "X"
//! per transfer spanning its frame period: a scan-out from its vsync to the
//! next, a camera frame over the period that ends with its capture).
//! Frames are global instants; counters are "C" events `free pages` and
//! `pageblocks` with one series per migrate type and `CMA used: <area>`
//! per CMA area, sampled at every frame and at every allocation's start
//! and end. Timestamps are µs with ns precision. Output depends only on
//! the input events.
use super::jsonl::{json_str, violation_json, Obj};
use super::{us, Event, EventKind};
use crate::introspect::MT_NAMES;
use cmaemu_abi::desc::dma_dev_name;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};

const PID: u32 = 1;
const TID_CMA: u32 = 1;
const TID_MIGRATION: u32 = 2;
const TID_GUEST: u32 = 3;
const TID_VERIFY: u32 = 4;
const TID_MIGRATION_NEW: u32 = 5;
const TID_DMA_BASE: u32 = 100;

fn ev(name: &str, ph: &str, ts_ns: u64, tid: u32) -> Obj {
    Obj::new().str("name", name).str("ph", ph).raw("ts", us(ts_ns)).raw("pid", PID).raw("tid", tid)
}

fn meta(name: &str, tid: u32, value: &str) -> String {
    Obj::new().str("name", name).str("ph", "M").raw("pid", PID).raw("tid", tid).raw("args", Obj::new().str("name", value).done()).done()
}

/// All trace events (without the wrapper).
pub fn trace_events(events: &[Event]) -> Vec<String> {
    let mut out = Vec::new();
    let devices: BTreeSet<u32> = events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::DmaTransfer { device, .. } => Some(device),
            _ => None,
        })
        .collect();
    out.push(meta("process_name", 0, "cmaemu guest"));
    out.push(meta("thread_name", TID_CMA, "cma"));
    out.push(meta("thread_name", TID_MIGRATION, "migration: old pfn"));
    out.push(meta("thread_name", TID_MIGRATION_NEW, "migration: new pfn"));
    out.push(meta("thread_name", TID_GUEST, "guest"));
    out.push(meta("thread_name", TID_VERIFY, "verify"));
    for d in &devices {
        out.push(meta("thread_name", TID_DMA_BASE + d, &format!("dma: {}", dma_dev_name(*d))));
    }
    let mut open: BTreeMap<String, (u64, u64, u32)> = BTreeMap::new();
    let mut flow_id: u64 = 0;
    let mut begins: BTreeMap<u32, u64> = BTreeMap::new();
    let mut areas: Vec<String> = Vec::new();
    for e in events {
        let t = e.ts_ns;
        match &e.kind {
            EventKind::CmaAllocStart { name, count, align } => {
                if let Some((st, c, a)) = open.insert(name.clone(), (t, *count, *align)) {
                    out.push(ev(&format!("cma_alloc {name} (no finish)"), "i", st, TID_CMA).str("s", "t").raw("args", Obj::new().raw("count", c).raw("align", a).done()).done());
                }
            }
            EventKind::CmaAllocFinish { name, pfn, count, align, errorno, .. } => {
                let args = Obj::new().raw("count", count).raw("align", align).str("pfn", &format!("{pfn:#x}")).raw("errorno", errorno).raw("frame", e.frame).done();
                match open.remove(name) {
                    Some((st, _, _)) => out.push(ev(&format!("cma_alloc {name}"), "X", st, TID_CMA).raw("dur", us(t.saturating_sub(st))).raw("args", args).done()),
                    None => out.push(ev(&format!("cma_alloc_finish {name}"), "i", t, TID_CMA).str("s", "t").raw("args", args).done()),
                }
            }
            EventKind::MigratePageBegin { old_pfn, .. } => {
                begins.insert(*old_pfn, t);
            }
            EventKind::MigratePage { old_pfn, new_pfn, asid, vas } => {
                flow_id += 1;
                // the copy: from migrate_page_begin (PTEs cleared) to the
                // move; 1 µs where the begin record is missing
                let (st, dur) = match begins.remove(old_pfn) {
                    Some(b) if b < t => (b, t - b),
                    _ => (t, 1000),
                };
                let vs: Vec<String> = vas.iter().map(|v| json_str(&format!("{v:#x}"))).collect();
                let args = Obj::new().str("old_pfn", &format!("{old_pfn:#x}")).str("new_pfn", &format!("{new_pfn:#x}")).raw("asid", asid).raw("vas", format!("[{}]", vs.join(","))).raw("copy_ns", dur).done();
                out.push(ev(&format!("pfn {old_pfn:#x} (old)"), "X", st, TID_MIGRATION).str("cat", "migration").raw("dur", us(dur)).raw("args", args.clone()).done());
                out.push(ev("migrate", "s", st, TID_MIGRATION).str("cat", "migration").raw("id", flow_id).done());
                out.push(ev(&format!("pfn {new_pfn:#x} (new)"), "X", st, TID_MIGRATION_NEW).str("cat", "migration").raw("dur", us(dur)).raw("args", args).done());
                out.push(ev("migrate", "f", st + dur - 1, TID_MIGRATION_NEW).str("cat", "migration").str("bp", "e").raw("id", flow_id).done());
            }
            EventKind::DmaTransfer { device, pa, len, write, dur_ns } => {
                let args = Obj::new().str("pa", &format!("{pa:#x}")).raw("len", len).raw("frame", e.frame).done();
                let dur = (*dur_ns).max(1);
                // a camera frame is written over the period its capture
                // ends; a scan-out reads from its vsync to the next
                let st = if *write { t.saturating_sub(dur) } else { t };
                out.push(ev(if *write { "write" } else { "read" }, "X", st, TID_DMA_BASE + device).raw("dur", us(dur)).raw("args", args).done());
            }
            EventKind::DisplayFrame { number, pa, camera } => {
                let what = camera.map(|c| format!("shows camera frame {c}")).unwrap_or_else(|| "shows a non-camera picture".into());
                let args = Obj::new().raw("display_frame", number).str("pa", &format!("{pa:#x}")).raw("camera_frame", camera.map(|c| c.to_string()).unwrap_or("null".into())).done();
                out.push(ev(&what, "i", t, TID_DMA_BASE + cmaemu_abi::desc::DMA_DEV_CLCD).str("s", "t").raw("args", args).done());
            }
            EventKind::Layout(l) => {
                areas = l.areas.iter().map(|a| a.name.clone()).collect();
                let a: Vec<String> = l.areas.iter().map(|a| json_str(&format!("{} [{:#x}, {:#x})", a.name, (a.start as u64) << 12, (a.end as u64) << 12))).collect();
                let z: Vec<String> = l.zones.iter().map(|a| json_str(&format!("{} [{:#x}, {:#x})", a.name, (a.start as u64) << 12, (a.end as u64) << 12))).collect();
                let args = Obj::new().raw("pageblock_pages", l.pageblock_pages).raw("zones", format!("[{}]", z.join(","))).raw("cma_areas", format!("[{}]", a.join(","))).done();
                out.push(ev("layout", "i", t, TID_GUEST).str("s", "t").raw("args", args).done());
            }
            EventKind::Run(r) => {
                let args = Obj::new().str("dtb", &r.dtb).str("cmdline", &r.cmdline).raw("ram_bytes", r.ram_bytes).str("profile", &r.profile).done();
                out.push(ev("run", "i", t, TID_GUEST).str("s", "t").raw("args", args).done());
            }
            EventKind::PageStates { .. } => {}
            EventKind::Frame { index } => out.push(ev(&format!("frame {index}"), "i", t, TID_GUEST).str("s", "g").done()),
            EventKind::Counters(c) => {
                let mut f = Obj::new();
                let mut p = Obj::new();
                for (i, n) in MT_NAMES.iter().enumerate() {
                    f = f.raw(n, c.free_per_mt[i]);
                    p = p.raw(n, c.pageblocks_per_mt[i]);
                }
                out.push(ev("free pages", "C", t, 0).raw("args", f.done()).done());
                out.push(ev("pageblocks", "C", t, 0).raw("args", p.done()).done());
                for (i, used) in c.cma_used.iter().enumerate() {
                    let name = areas.get(i).cloned().unwrap_or_else(|| format!("area{i}"));
                    out.push(ev(&format!("CMA used: {name}"), "C", t, 0).raw("args", Obj::new().raw("pages", used).done()).done());
                }
            }
            EventKind::PageblockMap { .. } => {}
            EventKind::Violation(v) => out.push(ev(v.check.name(), "i", t, TID_VERIFY).str("s", "g").raw("args", violation_json(v)).done()),
            EventKind::CmaCause(c) => {
            let super::CmaCause { name, count, align, retries, last, errorno, migrated, cause, pfn, text } = &**c;
                let args = Obj::new()
                    .str("area", name)
                    .raw("count", count)
                    .raw("align", align)
                    .raw("retries", retries)
                    .raw("last", last)
                    .raw("errorno", errorno)
                    .raw("migrated", migrated)
                    .str("cause", cause)
                    .str("pfn", &pfn.map(|p| format!("{p:#x}")).unwrap_or_default())
                    .str("text", text)
                    .raw("frame", e.frame)
                    .done();
                out.push(ev(&format!("cma cause: {cause}"), "i", t, TID_CMA).str("s", "t").raw("args", args).done());
            }
            k => {
                let detail = super::ftrace::body(k).map(|(_, b)| b).unwrap_or_else(|| match k {
                    EventKind::RingLoss { lost } => format!("lost={lost}"),
                    _ => String::new(),
                });
                out.push(ev(k.name(), "i", t, TID_GUEST).str("s", "t").raw("args", Obj::new().str("detail", &detail).raw("frame", e.frame).done()).done());
            }
        }
    }
    for (name, (st, c, a)) in open {
        out.push(ev(&format!("cma_alloc {name} (no finish)"), "i", st, TID_CMA).str("s", "t").raw("args", Obj::new().raw("count", c).raw("align", a).done()).done());
    }
    out
}

/// The whole JSON document.
pub fn write_chrome(events: &[Event], w: &mut dyn Write) -> io::Result<()> {
    w.write_all(b"{\"traceEvents\":[\n")?;
    let evs = trace_events(events);
    for (i, e) in evs.iter().enumerate() {
        w.write_all(e.as_bytes())?;
        w.write_all(if i + 1 < evs.len() { b",\n" } else { b"\n" })?;
    }
    w.write_all(b"],\"displayTimeUnit\":\"ns\"}\n")
}

/// What is wrong with a trace-event JSON document.
#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    #[error("not JSON: {0}")]
    NotJson(#[from] serde_json::Error),
    #[error("no traceEvents array")]
    NoEvents,
    #[error("event {0} is not an object")]
    NotObject(usize),
    #[error("event {0}: `{1}` missing or not a string")]
    NotString(usize, &'static str),
    #[error("event {0}: `{1}` missing or not a number")]
    NotNumber(usize, &'static str),
    /// An event breaks a rule of its phase.
    #[error("event {0}: {1}")]
    Event(usize, &'static str),
    #[error("event {0}: unknown phase {1:?}")]
    UnknownPhase(usize, String),
    #[error("flow {0} is not one start and one finish")]
    Flow(u64),
}

/// Check a trace-event JSON document: a `traceEvents` array whose events
/// carry the keys and types each phase needs. Returns the event count.
pub fn validate(doc: &str) -> Result<usize, ValidateError> {
    use serde_json::Value;
    use ValidateError as E;
    let v: Value = serde_json::from_str(doc)?;
    let evs = v.get("traceEvents").and_then(Value::as_array).ok_or(E::NoEvents)?;
    let mut flows: BTreeMap<u64, (usize, usize)> = BTreeMap::new();
    for (i, e) in evs.iter().enumerate() {
        let o = e.as_object().ok_or(E::NotObject(i))?;
        let s = |k: &'static str| o.get(k).and_then(Value::as_str).ok_or(E::NotString(i, k));
        let n = |k: &'static str| o.get(k).and_then(Value::as_f64).ok_or(E::NotNumber(i, k));
        let ph = s("ph")?;
        s("name")?;
        n("pid")?;
        n("tid")?;
        if ph != "M" && n("ts")? < 0.0 {
            return Err(E::Event(i, "negative ts"));
        }
        match ph {
            "M" => {
                o.get("args").and_then(|a| a.get("name")).and_then(Value::as_str).ok_or(E::Event(i, "metadata without args.name"))?;
            }
            "X" => {
                if n("dur")? < 0.0 {
                    return Err(E::Event(i, "negative dur"));
                }
            }
            "i" | "I" => {
                if let Some(sc) = o.get("s") {
                    if !matches!(sc.as_str(), Some("g" | "p" | "t")) {
                        return Err(E::Event(i, "instant scope must be g, p or t"));
                    }
                }
            }
            "C" => {
                let a = o.get("args").and_then(Value::as_object).ok_or(E::Event(i, "counter without args"))?;
                if a.is_empty() || a.values().any(|x| !x.is_number()) {
                    return Err(E::Event(i, "counter args must be numbers"));
                }
            }
            "s" | "f" | "t" => {
                let id = o.get("id").and_then(Value::as_u64).ok_or(E::Event(i, "flow without numeric id"))?;
                let f = flows.entry(id).or_default();
                if ph == "s" {
                    f.0 += 1;
                } else if ph == "f" {
                    f.1 += 1;
                    if s("bp").ok() != Some("e") {
                        return Err(E::Event(i, "flow end should bind to the enclosing slice (bp=e)"));
                    }
                }
            }
            "B" | "E" => {}
            p => return Err(E::UnknownPhase(i, p.to_string())),
        }
    }
    if let Some((id, _)) = flows.iter().find(|(_, (s, f))| *s != 1 || *f != 1) {
        return Err(E::Flow(*id));
    }
    Ok(evs.len())
}
