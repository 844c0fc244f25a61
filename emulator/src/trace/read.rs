//! Reading a JSON-lines trace back (for `cmaemu trace summary|map` and
//! `cmaemu report`): every event the JSON-lines writer writes is rebuilt,
//! except the context lines of violations and fields no reader uses
//! (`page` pointers).
use super::{Event, EventKind, Layout, PfnSpan, RunInfo};
use crate::introspect::{MmCounters, MT_NAMES};
use crate::findings::{Check, Violation};
use cmaemu_abi::desc::{dma_dev_name, DMA_DEV_CAMERA, DMA_DEV_CLCD, DMA_DEV_CMA_TEST};
use cmaemu_abi::trace::inject_name;
use serde_json::Value;

/// Why a trace could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// A line is not JSON.
    #[error("line {line}: not JSON: {source}")]
    NotJson { line: usize, source: serde_json::Error },
    /// A line lacks the fields every event has.
    #[error("line {line}: missing ts_ns/frame (is this a jsonl trace?)")]
    NotAnEvent { line: usize },
    /// The file is a Chrome/Perfetto trace-event document.
    #[error("this is a Perfetto/Chrome trace-event file (open it in ui.perfetto.dev); `cmaemu trace` and `cmaemu report` read JSON lines: write the run again with `--trace FILE --trace-format jsonl` and pass that file")]
    Perfetto,
    /// The file is ftrace text.
    #[error("this is ftrace text; `cmaemu trace` and `cmaemu report` read JSON lines: write the run again with `--trace FILE --trace-format jsonl` and pass that file")]
    Ftrace,
}

fn sniff(text: &str) -> Option<ReadError> {
    let head = text.trim_start();
    if head.starts_with("{\"traceEvents\"") || (head.starts_with('{') && head.lines().next().is_some_and(|l| l.contains("\"traceEvents\""))) {
        return Some(ReadError::Perfetto);
    }
    if head.starts_with("# tracer:") {
        return Some(ReadError::Ftrace);
    }
    None
}

fn dev_id(name: &str) -> u32 {
    [DMA_DEV_CLCD, DMA_DEV_CAMERA, DMA_DEV_CMA_TEST].into_iter().find(|&d| dma_dev_name(d) == name).unwrap_or(0)
}

fn mode_id(name: &str) -> u8 {
    (0..8u8).find(|&m| super::ftrace::mode_name(m) == name).unwrap_or(0)
}

fn reason_id(name: &str) -> u32 {
    (0..16u32).find(|&r| super::ftrace::reason_name(r) == name).unwrap_or(0)
}

fn inject_id(name: &str) -> u8 {
    (0..=u8::MAX).find(|&i| inject_name(i) == name).unwrap_or(0)
}

fn spans(v: Option<&Value>) -> Vec<PfnSpan> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|z| PfnSpan {
                    name: z.get("name").and_then(Value::as_str).unwrap_or("").to_string(),
                    start: z.get("start_pfn").and_then(Value::as_u64).unwrap_or(0) as u32,
                    end: z.get("end_pfn").and_then(Value::as_u64).unwrap_or(0) as u32,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// One event from its JSON object (None: an event kind this build does not know).
fn event_of(v: &Value, line: usize) -> Result<Option<Event>, ReadError> {
    let u = |k: &str| v.get(k).and_then(Value::as_u64);
    let i = |k: &str| v.get(k).and_then(Value::as_i64).unwrap_or(0);
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let pfn = |k: &str| u(k).unwrap_or(u64::MAX);
    let (Some(ts_ns), Some(frame)) = (u("ts_ns"), u("frame")) else {
        return Err(ReadError::NotAnEvent { line });
    };
    let kind = match v.get("event").and_then(Value::as_str).unwrap_or("") {
        "cma_alloc_start" => EventKind::CmaAllocStart { name: s("name"), count: u("count").unwrap_or(0), align: u("align").unwrap_or(0) as u32 },
        "cma_alloc_finish" => EventKind::CmaAllocFinish {
            name: s("name"),
            pfn: pfn("pfn"),
            page: 0,
            count: u("count").unwrap_or(0),
            align: u("align").unwrap_or(0) as u32,
            errorno: i("errorno") as i32,
        },
        "cma_alloc_busy_retry" => EventKind::CmaAllocBusyRetry { name: s("name"), pfn: pfn("pfn"), page: 0, count: u("count").unwrap_or(0), align: u("align").unwrap_or(0) as u32 },
        "cma_release" => EventKind::CmaRelease { name: s("name"), pfn: pfn("pfn"), page: 0, count: u("count").unwrap_or(0) },
        "mm_migrate_pages_start" => EventKind::MigratePagesStart { mode: mode_id(&s("mode")), reason: reason_id(&s("reason")) },
        "mm_migrate_pages" => EventKind::MigratePages {
            succeeded: u("nr_succeeded").unwrap_or(0),
            failed: u("nr_failed").unwrap_or(0),
            thp_succeeded: u("nr_thp_succeeded").unwrap_or(0),
            thp_failed: u("nr_thp_failed").unwrap_or(0),
            thp_split: u("nr_thp_split").unwrap_or(0),
            mode: mode_id(&s("mode")),
            reason: reason_id(&s("reason")),
        },
        "migrate_page_begin" => EventKind::MigratePageBegin { old_pfn: u("old_pfn").unwrap_or(0) as u32, new_pfn: u("new_pfn").unwrap_or(0) as u32 },
        "migrate_page" => EventKind::MigratePage {
            old_pfn: u("old_pfn").unwrap_or(0) as u32,
            new_pfn: u("new_pfn").unwrap_or(0) as u32,
            asid: u("asid").unwrap_or(0) as u32,
            vas: v.get("vas").and_then(Value::as_array).map(|a| a.iter().filter_map(|x| x.as_u64().map(|x| x as u32)).collect()).unwrap_or_default(),
        },
        "dma_alloc" => EventKind::DmaAlloc {
            device: dev_id(&s("device")),
            pfn: pfn("pfn"),
            count: u("count").unwrap_or(0) as u32,
            order: u("order").unwrap_or(0) as u32,
            errorno: i("errorno") as i32,
        },
        "dma_free" => EventKind::DmaFree { device: dev_id(&s("device")), pfn: pfn("pfn"), count: u("count").unwrap_or(0) as u32 },
        "tlb_flush" => EventKind::TlbFlush { scope: u("scope").unwrap_or(0) as u8, asid: u("asid").unwrap_or(0) as u32, va: u("va").unwrap_or(0) as u32 },
        "inject" => EventKind::Inject { id: inject_id(&s("injection")), pfn: pfn("pfn"), arg: u("arg").unwrap_or(0) as u32, extra: u("extra").unwrap_or(0) as u32 },
        "mark" => EventKind::Mark { label: s("label") },
        "cma_alloc_phase" => EventKind::CmaAllocPhase { phase: (0..=u8::MAX).find(|&i| cmaemu_abi::trace::cma_phase_name(i) == s("phase")).unwrap_or(u8::MAX) },
        "cma_cause" => EventKind::CmaCause(Box::new(super::CmaCause {
            name: s("name"),
            count: u("count").unwrap_or(0),
            align: u("align").unwrap_or(0) as u32,
            retries: u("retries").unwrap_or(0) as u32,
            last: v.get("last").and_then(Value::as_bool).unwrap_or(false),
            errorno: i("errorno") as i32,
            migrated: u("migrated").unwrap_or(0),
            cause: s("cause"),
            pfn: u("pfn").map(|p| p as u32),
            text: s("text"),
        })),
        "dma_transfer" => EventKind::DmaTransfer {
            device: dev_id(&s("device")),
            pa: u("pa").unwrap_or(0),
            len: u("len").unwrap_or(0),
            write: v.get("write").and_then(Value::as_bool).unwrap_or(false),
            dur_ns: u("dur_ns").unwrap_or(0),
        },
        "frame" => EventKind::Frame { index: u("index").unwrap_or(frame) },
        "counters" => {
            let mut c = MmCounters::default();
            for (k, n) in MT_NAMES.iter().enumerate() {
                c.free_per_mt[k] = v.get("free_pages").and_then(|o| o.get(n)).and_then(Value::as_u64).unwrap_or(0);
                c.pageblocks_per_mt[k] = v.get("pageblocks").and_then(|o| o.get(n)).and_then(Value::as_u64).unwrap_or(0) as u32;
            }
            c.cma_used = v.get("cma_used").and_then(Value::as_array).map(|a| a.iter().map(|x| x.as_u64().unwrap_or(0)).collect()).unwrap_or_default();
            EventKind::Counters(Box::new(c))
        }
        "ring_loss" => EventKind::RingLoss { lost: u("lost").unwrap_or(0) },
        "violation" => {
            let vv = v.get("violation").cloned().unwrap_or(Value::Null);
            let check = vv.get("check").and_then(Value::as_str).and_then(Check::from_name).unwrap_or(Check::Accounting);
            EventKind::Violation(Box::new(Violation {
                check,
                frame: vv.get("frame").and_then(Value::as_u64).unwrap_or(frame),
                at_ns: vv.get("at_ns").and_then(Value::as_u64).unwrap_or(ts_ns),
                pfn: vv.get("pfn").and_then(Value::as_u64).map(|x| x as u32),
                va: vv.get("va").and_then(Value::as_u64).map(|x| x as u32),
                device: vv.get("device").and_then(Value::as_str).map(dev_id),
                detail: vv.get("detail").and_then(Value::as_str).unwrap_or("").to_string(),
                recent_events: Vec::new(),
            }))
        }
        "pageblock_map" => EventKind::PageblockMap {
            first_pfn: u("first_pfn").unwrap_or(0) as u32,
            pageblock_pages: u("pageblock_pages").unwrap_or(1) as u32,
            mts: s("mts").chars().map(|c| c.to_digit(16).unwrap_or(15) as u8).collect(),
        },
        "run" => EventKind::Run(Box::new(RunInfo { dtb: s("dtb"), cmdline: s("cmdline"), ram_bytes: u("ram_bytes").unwrap_or(0), profile: s("profile") })),
        "layout" => EventKind::Layout(Box::new(Layout {
            base_pfn: u("base_pfn").unwrap_or(0) as u32,
            nr_pages: u("nr_pages").unwrap_or(0) as u32,
            pageblock_pages: u("pageblock_pages").unwrap_or(1) as u32,
            max_order: u("max_order").unwrap_or(0) as u32,
            zones: spans(v.get("zones")),
            areas: spans(v.get("cma_areas")),
        })),
        "page_states" => EventKind::PageStates {
            full: v.get("full").and_then(Value::as_bool).unwrap_or(false),
            runs: v
                .get("runs")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|r| {
                            let r = r.as_array()?;
                            Some((r.first()?.as_u64()? as u32, r.get(1)?.as_u64()? as u32, r.get(2)?.as_u64()? as u8))
                        })
                        .collect()
                })
                .unwrap_or_default(),
        },
        "display_frame" => EventKind::DisplayFrame { number: u("number").unwrap_or(0), pa: u("pa").unwrap_or(0), camera: u("camera_frame") },
        _ => return Ok(None),
    };
    Ok(Some(Event { ts_ns, frame, kind }))
}

/// Parse a `--trace-format jsonl` file. Errors name the line; a
/// Perfetto or ftrace file is recognised and named.
pub fn read_jsonl(text: &str) -> Result<Vec<Event>, ReadError> {
    if let Some(e) = sniff(text) {
        return Err(e);
    }
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line).map_err(|source| ReadError::NotJson { line: i + 1, source })?;
        if let Some(e) = event_of(&v, i + 1)? {
            out.push(e);
        }
    }
    Ok(out)
}
