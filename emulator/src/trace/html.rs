//! `cmaemu report`: one self-contained HTML file of a run (no network:
//! the data, the script and the style are inline; the script is
//! hand-written, `report/report.js`).
//!
//! The data is what the JSON-lines trace holds, condensed: page states and
//! pageblock types as deltas between frames (so the file grows with
//! events, not with frames × pages), allocations joined start to finish
//! with their latency, outcome, busy retries and pages migrated, every
//! migrated page, counters, displayed frames, violations and the run's
//! parameters. The page replays frames from the deltas.
use super::framemap::PAGE_COLORS;
use super::map::MT_COLORS;
use super::{Event, EventKind};
use crate::introspect::{PageState, MT_NAMES};
use cmaemu_abi::desc::dma_dev_name;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{self, Write};

const SCRIPT: &str = include_str!("report/report.js");
const STYLE: &str = include_str!("report/report.css");

/// One `cma_alloc`, start to finish.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Alloc {
    pub area: String,
    pub count: u64,
    pub align: u32,
    pub start_ns: u64,
    pub start_frame: u64,
    /// None: the trace ended before it finished.
    pub end_ns: Option<u64>,
    pub end_frame: Option<u64>,
    /// First pfn (None: failed or unfinished).
    pub pfn: Option<u64>,
    pub errorno: i32,
    /// Pages migrated while it ran.
    pub migrated: u64,
    /// `cma_alloc_busy_retry` records: the pfns found busy.
    pub busy: Vec<u64>,
}

/// Join every `cma_alloc_start` with its `cma_alloc_finish` (per area,
/// in order) and count what happened in between.
pub fn allocations(events: &[Event]) -> Vec<Alloc> {
    let mut out: Vec<Alloc> = Vec::new();
    let mut open: BTreeMap<String, usize> = BTreeMap::new();
    let mut last_open: Option<usize> = None;
    for e in events {
        match &e.kind {
            EventKind::CmaAllocStart { name, count, align } => {
                out.push(Alloc { area: name.clone(), count: *count, align: *align, start_ns: e.ts_ns, start_frame: e.frame, ..Default::default() });
                open.insert(name.clone(), out.len() - 1);
                last_open = Some(out.len() - 1);
            }
            EventKind::CmaAllocFinish { name, pfn, count, align, errorno, .. } => {
                let i = match open.remove(name) {
                    Some(i) => i,
                    None => {
                        // a finish without its start (the trace began mid-allocation)
                        out.push(Alloc { area: name.clone(), count: *count, align: *align, start_ns: e.ts_ns, start_frame: e.frame, ..Default::default() });
                        out.len() - 1
                    }
                };
                let a = &mut out[i];
                a.end_ns = Some(e.ts_ns);
                a.end_frame = Some(e.frame);
                a.pfn = (*pfn != u64::MAX && *errorno == 0).then_some(*pfn);
                a.errorno = *errorno;
                if last_open == Some(i) {
                    last_open = open.values().max().copied();
                }
            }
            EventKind::CmaAllocBusyRetry { name, pfn, .. } => {
                if let Some(&i) = open.get(name) {
                    out[i].busy.push(*pfn);
                }
            }
            EventKind::MigratePage { .. } => {
                if let Some(i) = last_open {
                    out[i].migrated += 1;
                }
            }
            _ => {}
        }
    }
    out
}

fn opt<T: Into<Value>>(v: Option<T>) -> Value {
    v.map(Into::into).unwrap_or(Value::Null)
}

fn hex3(c: [u8; 3]) -> String {
    format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
}

/// The report's data as one JSON value (deterministic: keys sorted,
/// events in trace order). `extra` are figures of the run the trace does
/// not hold (instructions, wall time...), shown with the stats.
pub fn report_data(events: &[Event], title: &str, extra: &[(String, String)]) -> Value {
    let mut run = Value::Null;
    let mut layout = Value::Null;
    let mut frames: Vec<Value> = Vec::new();
    let mut pb: Vec<Value> = Vec::new();
    let mut ps: Vec<Value> = Vec::new();
    let mut releases: Vec<Value> = Vec::new();
    let mut migr: Vec<u64> = Vec::new();
    let mut counters: Vec<Value> = Vec::new();
    let mut display: Vec<Value> = Vec::new();
    let mut violations: Vec<Value> = Vec::new();
    let mut dma: BTreeMap<(u64, String), (u64, u64)> = BTreeMap::new();
    let mut begins: BTreeMap<u32, u64> = BTreeMap::new();
    let (mut ring_lost, mut migrate_calls, mut migrate_failed) = (0u64, 0u64, 0u64);
    for e in events {
        let (t, f) = (e.ts_ns, e.frame);
        match &e.kind {
            EventKind::Run(r) => run = json!({"dtb": r.dtb, "cmdline": r.cmdline, "ram_bytes": r.ram_bytes, "profile": r.profile}),
            EventKind::Layout(l) => {
                let sp = |v: &[super::PfnSpan]| -> Vec<Value> { v.iter().map(|z| json!([z.name, z.start, z.end])).collect() };
                layout = json!({"base_pfn": l.base_pfn, "nr_pages": l.nr_pages, "pageblock_pages": l.pageblock_pages, "max_order": l.max_order, "zones": sp(&l.zones), "areas": sp(&l.areas)});
            }
            EventKind::Frame { index } => frames.push(json!([index, t])),
            EventKind::PageblockMap { first_pfn, pageblock_pages, mts } => {
                let m: String = mts.iter().map(|&x| char::from_digit((x & 0xf) as u32, 16).unwrap_or('f')).collect();
                pb.push(json!([f, first_pfn, pageblock_pages, m]));
            }
            EventKind::PageStates { full, runs } => {
                let flat: Vec<u64> = runs.iter().flat_map(|&(p, n, c)| [p as u64, n as u64, c as u64]).collect();
                ps.push(json!([f, *full as u8, flat]));
            }
            EventKind::CmaRelease { name, pfn, count, .. } => releases.push(json!([name, pfn, count, t, f])),
            EventKind::MigratePageBegin { old_pfn, .. } => {
                begins.insert(*old_pfn, t);
            }
            EventKind::MigratePage { old_pfn, new_pfn, .. } => {
                let st = begins.remove(old_pfn).unwrap_or(t);
                migr.extend_from_slice(&[st, t - st.min(t), f, *old_pfn as u64, *new_pfn as u64]);
            }
            EventKind::MigratePages { failed, .. } => {
                migrate_calls += 1;
                migrate_failed += failed;
            }
            EventKind::Counters(c) => {
                counters.push(json!([t, f, c.free_per_mt, c.pageblocks_per_mt, c.cma_used]));
            }
            EventKind::DisplayFrame { number, pa, camera } => display.push(json!([t, f, number, opt(*camera), pa])),
            EventKind::Violation(v) => violations.push(json!([t, f, v.check.name(), opt(v.pfn), opt(v.va), v.detail])),
            EventKind::DmaTransfer { device, len, .. } => {
                let d = dma.entry((f, dma_dev_name(*device).to_string())).or_default();
                d.0 += 1;
                d.1 += len;
            }
            EventKind::RingLoss { lost } => ring_lost += lost,
            _ => {}
        }
    }
    let allocs: Vec<Value> = allocations(events)
        .iter()
        .map(|a| json!([a.area, a.count, a.align, a.start_ns, a.start_frame, opt(a.end_ns), opt(a.end_frame), opt(a.pfn), a.errorno, a.migrated, a.busy]))
        .collect();
    let dma: Vec<Value> = dma.into_iter().map(|((f, d), (n, b))| json!([f, d, n, b])).collect();
    let last_ts = events.iter().map(|e| e.ts_ns).max().unwrap_or(0);
    let mut stats: Vec<Value> = vec![
        json!(["events", events.len()]),
        json!(["virtual time (ms)", format!("{:.3}", last_ts as f64 / 1e6)]),
        json!(["frames", frames.len()]),
        json!(["mm_migrate_pages calls", migrate_calls]),
        json!(["pages migrated", migr.len() / 5]),
        json!(["pages that failed to migrate", migrate_failed]),
        json!(["trace records lost", ring_lost]),
    ];
    stats.extend(extra.iter().map(|(k, v)| json!([k, v])));
    json!({
        "title": title,
        "run": run,
        "layout": layout,
        "mt_names": MT_NAMES,
        "mt_colors": MT_COLORS[..MT_NAMES.len()].iter().map(|c| hex3(*c)).collect::<Vec<_>>(),
        "page_states": PageState::ALL.iter().map(|s| s.name()).collect::<Vec<_>>(),
        "page_colors": PAGE_COLORS.iter().map(|c| hex3(*c)).collect::<Vec<_>>(),
        "frames": frames,
        "pb": pb,
        "ps": ps,
        "allocs": allocs,
        "releases": releases,
        "migr": migr,
        "counters": counters,
        "display": display,
        "violations": violations,
        "dma": dma,
        "stats": stats,
    })
}

/// Escape text for HTML element content.
pub fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Write the report. Output depends only on the arguments.
pub fn write_report(events: &[Event], title: &str, extra: &[(String, String)], w: &mut dyn Write) -> io::Result<()> {
    let data = report_data(events, title, extra).to_string().replace("</", "<\\/");
    write!(
        w,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width\">\n<title>{}</title>\n<style>\n{STYLE}</style>\n</head><body>\n<div id=\"app\"><noscript>This report needs JavaScript.</noscript></div>\n<script id=\"data\" type=\"application/json\">{data}</script>\n<script>\n{SCRIPT}</script>\n</body></html>\n",
        html_escape(&format!("cmaemu report: {title}"))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocations_join_start_and_finish_and_count_migrations() {
        let evs = crate::trace::tests::sample();
        let a = allocations(&evs);
        assert_eq!(a.len(), 2);
        assert_eq!((a[0].area.as_str(), a[0].count, a[0].pfn, a[0].migrated), ("linux,cma", 64, Some(0x69000), 0));
        assert_eq!(a[0].end_ns.unwrap() - a[0].start_ns, 543_000);
        assert_eq!((a[1].area.as_str(), a[1].pfn, a[1].migrated, a[1].busy.clone()), ("BiscuitOS_CMA", Some(0x69200), 1, vec![0x69100]));
    }

    #[test]
    fn report_is_self_contained_and_deterministic() {
        let evs = crate::trace::tests::sample();
        let mut a = Vec::new();
        write_report(&evs, "t</script>", &[], &mut a).unwrap();
        let mut b = Vec::new();
        write_report(&evs, "t</script>", &[], &mut b).unwrap();
        assert_eq!(a, b);
        let s = String::from_utf8(a).unwrap();
        for needle in ["<link", " src=", "url(", "@import", "fetch(", "XMLHttpRequest", "http://", "https://"] {
            assert!(!s.contains(needle), "external resource: {needle}");
        }
        // the data block cannot be closed early by a string in it
        assert_eq!(s.matches("</script>").count(), 2);
    }
}
