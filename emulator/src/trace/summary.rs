//! Per-frame table of what happened.
use super::{Event, EventKind};
use std::collections::BTreeMap;
use std::fmt::Write as _;

#[derive(Default)]
struct Row {
    start_ns: Option<u64>,
    migrations: u64,
    pages_copied: u64,
    // sums of values read from the trace: u128 cannot overflow on any
    // number of u64 addends a file can hold
    migrate_failed: u128,
    allocs: u64,
    alloc_failed: u64,
    lat: Vec<u64>,
    dma: u64,
    dma_bytes: u128,
    violations: u64,
}

/// One line per frame: migrations (`mm_migrate_pages` calls), pages copied
/// (moved pages), CMA allocations (failed), allocation latency
/// (start→finish, µs: min/avg/max), DMA transfers and bytes, violations;
/// then a total line.
pub fn summary(events: &[Event]) -> String {
    let mut rows: BTreeMap<u64, Row> = BTreeMap::new();
    let mut open: BTreeMap<&str, u64> = BTreeMap::new();
    for e in events {
        let r = rows.entry(e.frame).or_default();
        r.start_ns.get_or_insert(e.ts_ns);
        match &e.kind {
            EventKind::MigratePages { failed, .. } => {
                r.migrations += 1;
                r.migrate_failed += u128::from(*failed);
            }
            EventKind::MigratePage { .. } => r.pages_copied += 1,
            EventKind::CmaAllocStart { name, .. } => {
                open.insert(name, e.ts_ns);
            }
            EventKind::CmaAllocFinish { name, errorno, pfn, .. } => {
                r.allocs += 1;
                if *errorno != 0 || *pfn == u64::MAX {
                    r.alloc_failed += 1;
                }
                if let Some(st) = open.remove(name.as_str()) {
                    r.lat.push(e.ts_ns.saturating_sub(st));
                }
            }
            EventKind::DmaTransfer { len, .. } => {
                r.dma += 1;
                r.dma_bytes += u128::from(*len);
            }
            EventKind::Violation(_) => r.violations += 1,
            _ => {}
        }
    }
    let mut s = String::new();
    let _ = writeln!(s, "{:>6} {:>12} {:>10} {:>7} {:>7} {:>7} {:>7} {:>26} {:>6} {:>12} {:>10}", "frame", "start_us", "migrations", "copied", "mfail", "allocs", "afail", "alloc_lat_us min/avg/max", "dma", "dma_bytes", "violations");
    let mut tot = Row::default();
    let lat = |v: &[u64]| -> String {
        if v.is_empty() {
            "-".into()
        } else {
            let min = v.iter().min().unwrap();
            let max = v.iter().max().unwrap();
            // the mean of u64s is a u64; the sum is taken in u128
            let avg = (v.iter().map(|&x| u128::from(x)).sum::<u128>() / v.len() as u128) as u64;
            format!("{}/{}/{}", super::us(*min), super::us(avg), super::us(*max))
        }
    };
    for (f, r) in &rows {
        let _ = writeln!(
            s,
            "{:>6} {:>12} {:>10} {:>7} {:>7} {:>7} {:>7} {:>26} {:>6} {:>12} {:>10}",
            f,
            super::us(r.start_ns.unwrap_or(0)),
            r.migrations,
            r.pages_copied,
            r.migrate_failed,
            r.allocs,
            r.alloc_failed,
            lat(&r.lat),
            r.dma,
            r.dma_bytes,
            r.violations
        );
        tot.migrations += r.migrations;
        tot.pages_copied += r.pages_copied;
        tot.migrate_failed += r.migrate_failed;
        tot.allocs += r.allocs;
        tot.alloc_failed += r.alloc_failed;
        tot.lat.extend_from_slice(&r.lat);
        tot.dma += r.dma;
        tot.dma_bytes += r.dma_bytes;
        tot.violations += r.violations;
    }
    let _ = writeln!(
        s,
        "{:>6} {:>12} {:>10} {:>7} {:>7} {:>7} {:>7} {:>26} {:>6} {:>12} {:>10}",
        "total",
        "",
        tot.migrations,
        tot.pages_copied,
        tot.migrate_failed,
        tot.allocs,
        tot.alloc_failed,
        lat(&tot.lat),
        tot.dma,
        tot.dma_bytes,
        tot.violations
    );
    s
}
