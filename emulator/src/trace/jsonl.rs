//! JSON lines: one event per line, fields in a fixed order
//! (`ts_ns`, `frame`, `event`, then the event's fields in declaration order).
use super::{Event, EventKind};
use crate::introspect::MT_NAMES;
use crate::findings::Violation;
use cmaemu_abi::desc::dma_dev_name;
use cmaemu_abi::trace::inject_name;
use std::fmt::Write as _;
use std::io::{self, Write};

/// JSON string literal.
pub fn json_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// A JSON object written field by field, in call order.
#[derive(Default)]
pub struct Obj(String);

impl Obj {
    pub fn new() -> Self {
        Obj(String::from("{"))
    }
    fn key(&mut self, k: &str) {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        self.0.push_str(&json_str(k));
        self.0.push(':');
    }
    /// A raw JSON value (number, nested object...).
    pub fn raw(mut self, k: &str, v: impl std::fmt::Display) -> Self {
        self.key(k);
        let _ = write!(self.0, "{v}");
        self
    }
    pub fn str(mut self, k: &str, v: &str) -> Self {
        self.key(k);
        self.0.push_str(&json_str(v));
        self
    }
    pub fn hex(self, k: &str, v: u64) -> Self {
        self.str(k, &format!("{v:#x}"))
    }
    pub fn done(mut self) -> String {
        self.0.push('}');
        self.0
    }
}

fn pfn_val(p: u64) -> String {
    if p == u64::MAX {
        "null".into()
    } else {
        p.to_string()
    }
}

/// The violation as a JSON object.
pub fn violation_json(v: &Violation) -> String {
    let mut o = Obj::new().str("check", v.check.name()).raw("frame", v.frame).raw("at_ns", v.at_ns);
    o = o.raw("pfn", v.pfn.map(|p| p.to_string()).unwrap_or("null".into()));
    o = o.raw("va", v.va.map(|p| p.to_string()).unwrap_or("null".into()));
    o = o.raw("device", v.device.map(|d| json_str(dma_dev_name(d))).unwrap_or("null".into()));
    o = o.str("detail", &v.detail);
    let recent: Vec<String> = v.recent_events.iter().map(|s| json_str(s)).collect();
    o.raw("recent_events", format!("[{}]", recent.join(","))).done()
}

/// One event as a JSON object (no newline).
pub fn event_json(e: &Event) -> String {
    let o = Obj::new().raw("ts_ns", e.ts_ns).raw("frame", e.frame).str("event", e.kind.name());
    match &e.kind {
        EventKind::CmaAllocStart { name, count, align } => o.str("name", name).raw("count", count).raw("align", align),
        EventKind::CmaAllocFinish { name, pfn, page, count, align, errorno } => {
            o.str("name", name).raw("pfn", pfn_val(*pfn)).hex("page", *page as u64).raw("count", count).raw("align", align).raw("errorno", errorno)
        }
        EventKind::CmaAllocBusyRetry { name, pfn, page, count, align } => o.str("name", name).raw("pfn", pfn_val(*pfn)).hex("page", *page as u64).raw("count", count).raw("align", align),
        EventKind::CmaRelease { name, pfn, page, count } => o.str("name", name).raw("pfn", pfn_val(*pfn)).hex("page", *page as u64).raw("count", count),
        EventKind::MigratePagesStart { mode, reason } => o.str("mode", &super::ftrace::mode_name(*mode)).str("reason", &super::ftrace::reason_name(*reason)),
        EventKind::MigratePages { succeeded, failed, thp_succeeded, thp_failed, thp_split, mode, reason } => o
            .raw("nr_succeeded", succeeded)
            .raw("nr_failed", failed)
            .raw("nr_thp_succeeded", thp_succeeded)
            .raw("nr_thp_failed", thp_failed)
            .raw("nr_thp_split", thp_split)
            .str("mode", &super::ftrace::mode_name(*mode))
            .str("reason", &super::ftrace::reason_name(*reason)),
        EventKind::MigratePageBegin { old_pfn, new_pfn } => o.raw("old_pfn", old_pfn).raw("new_pfn", new_pfn),
        EventKind::MigratePage { old_pfn, new_pfn, asid, vas } => {
            let v: Vec<String> = vas.iter().map(|v| v.to_string()).collect();
            o.raw("old_pfn", old_pfn).raw("new_pfn", new_pfn).raw("asid", asid).raw("vas", format!("[{}]", v.join(",")))
        }
        EventKind::DmaAlloc { device, pfn, count, order, errorno } => o.str("device", dma_dev_name(*device)).raw("pfn", pfn_val(*pfn)).raw("count", count).raw("order", order).raw("errorno", errorno),
        EventKind::DmaFree { device, pfn, count } => o.str("device", dma_dev_name(*device)).raw("pfn", pfn_val(*pfn)).raw("count", count),
        EventKind::TlbFlush { scope, asid, va } => o.raw("scope", scope).raw("asid", asid).raw("va", va),
        EventKind::Inject { id, pfn, arg, extra } => o.str("injection", inject_name(*id)).raw("pfn", pfn_val(*pfn)).raw("arg", arg).raw("extra", extra),
        EventKind::Mark { label } => o.str("label", label),
        EventKind::CmaAllocPhase { phase } => o.str("phase", cmaemu_abi::trace::cma_phase_name(*phase)),
        EventKind::CmaCause(c) => o
            .str("name", &c.name)
            .raw("count", c.count)
            .raw("align", c.align)
            .raw("retries", c.retries)
            .raw("last", c.last)
            .raw("errorno", c.errorno)
            .raw("migrated", c.migrated)
            .str("cause", &c.cause)
            .raw("pfn", c.pfn.map(|p| p.to_string()).unwrap_or("null".into()))
            .str("text", &c.text),
        EventKind::DmaTransfer { device, pa, len, write, dur_ns } => o.str("device", dma_dev_name(*device)).raw("pa", pa).raw("len", len).raw("write", write).raw("dur_ns", dur_ns),
        EventKind::Frame { index } => o.raw("index", index),
        EventKind::Counters(c) => {
            let mut f = Obj::new();
            let mut p = Obj::new();
            for (i, n) in MT_NAMES.iter().enumerate() {
                f = f.raw(n, c.free_per_mt[i]);
                p = p.raw(n, c.pageblocks_per_mt[i]);
            }
            let used: Vec<String> = c.cma_used.iter().map(|u| u.to_string()).collect();
            o.raw("free_pages", f.done()).raw("pageblocks", p.done()).raw("cma_used", format!("[{}]", used.join(",")))
        }
        EventKind::RingLoss { lost } => o.raw("lost", lost),
        EventKind::Violation(v) => o.raw("violation", violation_json(v)),
        EventKind::PageblockMap { first_pfn, pageblock_pages, mts } => {
            let m: String = mts.iter().map(|&t| char::from_digit((t & 0xf) as u32, 16).unwrap_or('?')).collect();
            o.raw("first_pfn", first_pfn).raw("pageblock_pages", pageblock_pages).str("mts", &m)
        }
        EventKind::Run(r) => o.str("dtb", &r.dtb).str("cmdline", &r.cmdline).raw("ram_bytes", r.ram_bytes).str("profile", &r.profile),
        EventKind::Layout(l) => {
            let spans = |v: &[super::PfnSpan]| -> String {
                let s: Vec<String> = v.iter().map(|z| Obj::new().str("name", &z.name).raw("start_pfn", z.start).raw("end_pfn", z.end).done()).collect();
                format!("[{}]", s.join(","))
            };
            o.raw("base_pfn", l.base_pfn)
                .raw("nr_pages", l.nr_pages)
                .raw("pageblock_pages", l.pageblock_pages)
                .raw("max_order", l.max_order)
                .raw("zones", spans(&l.zones))
                .raw("cma_areas", spans(&l.areas))
        }
        EventKind::PageStates { full, runs } => {
            let r: Vec<String> = runs.iter().map(|(p, n, c)| format!("[{p},{n},{c}]")).collect();
            o.raw("full", full).raw("runs", format!("[{}]", r.join(",")))
        }
        EventKind::DisplayFrame { number, pa, camera } => {
            o.raw("number", number).raw("pa", pa).raw("camera_frame", camera.map(|c| c.to_string()).unwrap_or("null".into()))
        }
    }
    .done()
}

/// Write every event, one line each.
pub fn write_jsonl(events: &[Event], w: &mut dyn Write) -> io::Result<()> {
    for e in events {
        w.write_all(event_json(e).as_bytes())?;
        w.write_all(b"\n")?;
    }
    Ok(())
}
