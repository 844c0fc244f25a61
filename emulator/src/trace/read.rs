//! Reading a JSON-lines trace back (for `cmaemu trace summary|map`). Only
//! the events those commands use are rebuilt; others are skipped.
use super::{Event, EventKind};
use crate::verify::{Check, Violation};
use serde_json::Value;

/// Parse a `--trace-format jsonl` file. Errors name the line.
pub fn read_jsonl(text: &str) -> Result<Vec<Event>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line).map_err(|e| format!("line {}: not JSON: {e}", i + 1))?;
        let u = |k: &str| v.get(k).and_then(Value::as_u64);
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let (Some(ts_ns), Some(frame)) = (u("ts_ns"), u("frame")) else {
            return Err(format!("line {}: missing ts_ns/frame (is this a jsonl trace?)", i + 1));
        };
        let kind = match v.get("event").and_then(Value::as_str).unwrap_or("") {
            "cma_alloc_start" => EventKind::CmaAllocStart { name: s("name"), count: u("count").unwrap_or(0), align: u("align").unwrap_or(0) as u32 },
            "cma_alloc_finish" => EventKind::CmaAllocFinish {
                name: s("name"),
                pfn: u("pfn").unwrap_or(u64::MAX),
                page: 0,
                count: u("count").unwrap_or(0),
                align: u("align").unwrap_or(0) as u32,
                errorno: v.get("errorno").and_then(Value::as_i64).unwrap_or(0) as i32,
            },
            "mm_migrate_pages" => EventKind::MigratePages {
                succeeded: u("nr_succeeded").unwrap_or(0),
                failed: u("nr_failed").unwrap_or(0),
                thp_succeeded: 0,
                thp_failed: 0,
                thp_split: 0,
                mode: 0,
                reason: 0,
            },
            "migrate_page" => EventKind::MigratePage {
                old_pfn: u("old_pfn").unwrap_or(0) as u32,
                new_pfn: u("new_pfn").unwrap_or(0) as u32,
                asid: u("asid").unwrap_or(0) as u32,
                vas: v.get("vas").and_then(Value::as_array).map(|a| a.iter().filter_map(|x| x.as_u64().map(|x| x as u32)).collect()).unwrap_or_default(),
            },
            "dma_transfer" => EventKind::DmaTransfer {
                device: 0,
                pa: u("pa").unwrap_or(0),
                len: u("len").unwrap_or(0),
                write: v.get("write").and_then(Value::as_bool).unwrap_or(false),
                dur_ns: u("dur_ns").unwrap_or(0),
            },
            "frame" => EventKind::Frame { index: u("index").unwrap_or(frame) },
            "violation" => {
                let vv = v.get("violation").cloned().unwrap_or(Value::Null);
                let check = vv.get("check").and_then(Value::as_str).and_then(Check::from_name).unwrap_or(Check::Accounting);
                EventKind::Violation(Violation {
                    check,
                    frame,
                    at_ns: ts_ns,
                    pfn: vv.get("pfn").and_then(Value::as_u64).map(|x| x as u32),
                    va: vv.get("va").and_then(Value::as_u64).map(|x| x as u32),
                    device: vv.get("device").and_then(Value::as_u64).map(|x| x as u32),
                    detail: vv.get("detail").and_then(Value::as_str).unwrap_or("").to_string(),
                    recent_events: Vec::new(),
                })
            }
            "pageblock_map" => EventKind::PageblockMap {
                first_pfn: u("first_pfn").unwrap_or(0) as u32,
                pageblock_pages: u("pageblock_pages").unwrap_or(1) as u32,
                mts: s("mts").chars().map(|c| c.to_digit(16).unwrap_or(15) as u8).collect(),
            },
            _ => continue,
        };
        out.push(Event { ts_ns, frame, kind });
    }
    Ok(out)
}

/// Colour of a migrate type in the map (Unmovable, Movable, Reclaimable,
/// HighAtomic, CMA, Isolate; anything else grey).
pub fn mt_colour(mt: u8) -> [u8; 3] {
    match mt {
        0 => [0xd6, 0x27, 0x28],
        1 => [0x2c, 0xa0, 0x2c],
        2 => [0xff, 0x7f, 0x0e],
        3 => [0x94, 0x67, 0xbd],
        4 => [0x1f, 0x77, 0xb4],
        5 => [0xff, 0xd7, 0x00],
        _ => [0x80, 0x80, 0x80],
    }
}

/// The most pageblocks a map can hold: the board's largest RAM (1 GiB) in
/// pageblocks of one 4 KiB page. A longer map is not from a cmaemu guest,
/// and drawing it would take gigabytes.
pub const MAX_MAP_PAGEBLOCKS: usize = (crate::board::memmap::RAM_MAX_SIZE >> 12) as usize;

/// The pageblock map of frame `frame` (the last map at or before it) as
/// an RGBA picture: one 12×12 cell per pageblock, 16 a row.
pub fn pageblock_map_rgba(events: &[Event], frame: u64) -> Result<(u32, u32, Vec<u8>), String> {
    let map = events
        .iter()
        .filter(|e| e.frame <= frame)
        .filter_map(|e| match &e.kind {
            EventKind::PageblockMap { mts, .. } => Some(mts),
            _ => None,
        })
        .last()
        .ok_or_else(|| format!("no pageblock map at or before frame {frame} (was the trace written with --trace-format jsonl?)"))?;
    if map.len() > MAX_MAP_PAGEBLOCKS {
        return Err(format!(
            "the pageblock map at or before frame {frame} has {} pageblocks, more than the {MAX_MAP_PAGEBLOCKS} of a 1 GiB board (not a cmaemu trace?)",
            map.len()
        ));
    }
    const CELL: u32 = 12;
    const PER_ROW: u32 = 16;
    // at most 16384 rows of 12 px: every product below fits u32 and usize
    let rows = (map.len() as u32).div_ceil(PER_ROW).max(1);
    let (w, h) = (PER_ROW * CELL, rows * CELL);
    let mut rgba = vec![0xffu8; w as usize * h as usize * 4];
    for (i, &mt) in map.iter().enumerate() {
        let (cx, cy) = ((i as u32 % PER_ROW) * CELL, (i as u32 / PER_ROW) * CELL);
        let c = mt_colour(mt);
        for y in cy + 1..cy + CELL - 1 {
            for x in cx + 1..cx + CELL - 1 {
                let o = ((y * w + x) * 4) as usize;
                rgba[o..o + 3].copy_from_slice(&c);
            }
        }
    }
    Ok((w, h, rgba))
}
