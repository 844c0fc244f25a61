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

/// One `cma_alloc` as the allocation table shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllocRow {
    pub start_ns: u64,
    pub name: String,
    pub count: u64,
    pub align: u32,
    /// Finish (or, for a request larger than the area, its cause event).
    pub end_ns: Option<u64>,
    /// Pages `mm_migrate_pages` moved while it ran.
    pub migrated: u64,
    pub retries: u32,
    pub errno: Option<i32>,
    /// Distinct causes (`cma_cause` events): `kind pfn`, in order.
    pub causes: Vec<String>,
    /// Virtual time in each phase over all tries (`cma_alloc_phase`
    /// events): bitmap search, isolation, draining, migration, finish
    /// (test, take the free pages, undo the isolation).
    pub phase_ns: [u64; 5],
    /// Virtual time of the tries that ended in a busy retry.
    pub retry_ns: u64,
}

/// Phase bookkeeping of the running allocation: (phase, since, try start).
#[derive(Clone, Copy)]
struct PhaseClock {
    phase: usize,
    since: u64,
    try_start: u64,
}

impl PhaseClock {
    fn close(&mut self, r: &mut AllocRow, now: u64) {
        if let Some(p) = r.phase_ns.get_mut(self.phase) {
            *p = p.saturating_add(now.saturating_sub(self.since));
        }
        self.since = now;
    }
}

/// Every `cma_alloc` of a trace, in start order.
pub fn allocations(events: &[Event]) -> Vec<AllocRow> {
    let mut rows: Vec<AllocRow> = Vec::new();
    // the latest allocation of each area, and the one running
    let mut latest: BTreeMap<&str, usize> = BTreeMap::new();
    let mut running: Option<usize> = None;
    let mut clock: Option<PhaseClock> = None;
    for e in events {
        match &e.kind {
            EventKind::CmaAllocStart { name, count, align } => {
                rows.push(AllocRow { start_ns: e.ts_ns, name: name.clone(), count: *count, align: *align, ..Default::default() });
                latest.insert(name, rows.len() - 1);
                running = Some(rows.len() - 1);
                clock = Some(PhaseClock { phase: 0, since: e.ts_ns, try_start: e.ts_ns });
            }
            EventKind::CmaAllocPhase { phase } => {
                if let (Some(r), Some(c)) = (running.and_then(|i| rows.get_mut(i)), clock.as_mut()) {
                    c.close(r, e.ts_ns);
                    c.phase = *phase as usize;
                }
            }
            EventKind::MigratePages { succeeded, .. } => {
                if let Some(r) = running.and_then(|i| rows.get_mut(i)) {
                    r.migrated = r.migrated.saturating_add(*succeeded);
                }
            }
            EventKind::CmaAllocBusyRetry { name, .. } => {
                if let Some(r) = latest.get(name.as_str()).and_then(|&i| rows.get_mut(i)) {
                    r.retries = r.retries.saturating_add(1);
                    if let Some(c) = clock.as_mut() {
                        c.close(r, e.ts_ns);
                        r.retry_ns = r.retry_ns.saturating_add(e.ts_ns.saturating_sub(c.try_start));
                        *c = PhaseClock { phase: 0, since: e.ts_ns, try_start: e.ts_ns };
                    }
                }
            }
            EventKind::CmaAllocFinish { name, errorno, .. } => {
                if let Some(r) = latest.get(name.as_str()).and_then(|&i| rows.get_mut(i)) {
                    if r.end_ns.is_none() {
                        r.end_ns = Some(e.ts_ns);
                        r.errno = Some(*errorno);
                        if let Some(c) = clock.as_mut() {
                            c.close(r, e.ts_ns);
                        }
                    }
                }
                running = None;
                clock = None;
            }
            EventKind::CmaCause(c) => {
                let super::CmaCause { name, cause, pfn, last, errorno, .. } = &**c;
                if let Some(r) = latest.get(name.as_str()).and_then(|&i| rows.get_mut(i)) {
                    let c = match pfn {
                        Some(p) => format!("{cause} {p:#x}"),
                        None => cause.clone(),
                    };
                    if !r.causes.contains(&c) {
                        r.causes.push(c);
                    }
                    if *last && r.end_ns.is_none() {
                        r.end_ns = Some(e.ts_ns);
                        r.errno = Some(*errorno);
                        running = None;
                    }
                }
            }
            _ => {}
        }
    }
    rows
}

/// `-16` as `-16 EBUSY`.
fn errno_text(e: i32) -> String {
    let name = match -e {
        0 => return "0".into(),
        12 => "ENOMEM",
        16 => "EBUSY",
        22 => "EINVAL",
        4 => "EINTR",
        _ => return e.to_string(),
    };
    format!("{e} {name}")
}

/// The allocation table: one line per `cma_alloc` (area, count, align,
/// latency, pages migrated, busy retries, virtual µs in each phase —
/// bitmap search, isolation, drain, migration, finish — and in the tries
/// that ended in a busy retry, MiB copied by migration, errno, causes).
pub fn allocation_table(events: &[Event]) -> String {
    let rows = allocations(events);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:>5} {:>12} {:<12} {:>7} {:>5} {:>12} {:>8} {:>7} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>9} {:>9}  cause",
        "alloc", "start_us", "area", "count", "align", "latency_us", "migrated", "retries", "bitmap_us", "isolate_us", "drain_us", "migrate_us", "finish_us", "retried_us", "copied_MiB", "errno"
    );
    for (i, r) in rows.iter().enumerate() {
        let lat = r.end_ns.map(|e| super::us(e.saturating_sub(r.start_ns))).unwrap_or_else(|| "-".into());
        let errno = r.errno.map(errno_text).unwrap_or_else(|| "-".into());
        let cause = match r.causes.len() {
            0 => "-".to_string(),
            1 => r.causes[0].clone(),
            n => format!("{} (+{} more)", r.causes[0], n - 1),
        };
        let p = r.phase_ns.map(super::us);
        let mib = format!("{:.1}", r.migrated as f64 * 4096.0 / (1 << 20) as f64);
        let _ = writeln!(
            s,
            "{:>5} {:>12} {:<12} {:>7} {:>5} {:>12} {:>8} {:>7} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>9} {:>9}  {}",
            i + 1,
            super::us(r.start_ns),
            r.name,
            r.count,
            r.align,
            lat,
            r.migrated,
            r.retries,
            p[0],
            p[1],
            p[2],
            p[3],
            p[4],
            super::us(r.retry_ns),
            mib,
            errno,
            cause
        );
    }
    s
}

/// One line per frame: migrations (`mm_migrate_pages` calls), pages copied
/// (moved pages), CMA allocations (failed), allocation latency
/// (start→finish, µs: min/avg/max), DMA transfers and bytes, violations;
/// then a total line; then, when the trace has allocations, the
/// [`allocation_table`].
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
    if events.iter().any(|e| matches!(e.kind, EventKind::CmaAllocStart { .. })) {
        s.push('\n');
        s.push_str(&allocation_table(events));
    }
    if events.iter().any(|e| matches!(e.kind, EventKind::DisplayFrame { camera: Some(_), .. })) {
        s.push('\n');
        s.push_str(&stutter_table(events));
    }
    s
}

/// A displayed frame that repeated the previous camera frame, or skipped
/// camera frames, and the mm operation that overlapped its frame period
/// the most (the one running when the frame's deadline passed, or just
/// before).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stutter {
    /// Display frame number and its vsync time.
    pub number: u64,
    pub ts_ns: u64,
    /// Camera frames skipped before it (0: it repeated the previous one).
    pub dropped: u64,
    /// `cma_alloc AREA COUNT pages @START_us` or `mm_migrate_pages @START_us`,
    /// None when no mm operation overlapped the frame period.
    pub blame: Option<String>,
}

/// Every stutter of the display (see [`Stutter`]), in order.
pub fn stutters(events: &[Event]) -> Vec<Stutter> {
    // (start, end, label) of every cma_alloc and migrate_pages call
    let mut ops: Vec<(u64, u64, String)> = Vec::new();
    let mut open_alloc: Option<(u64, String)> = None;
    let mut open_mig: Option<u64> = None;
    for e in events {
        match &e.kind {
            EventKind::CmaAllocStart { name, count, .. } => open_alloc = Some((e.ts_ns, format!("cma_alloc {name} {count} pages"))),
            EventKind::CmaAllocFinish { .. } => {
                if let Some((st, l)) = open_alloc.take() {
                    ops.push((st, e.ts_ns, l));
                }
            }
            EventKind::MigratePagesStart { .. } => open_mig = Some(e.ts_ns),
            EventKind::MigratePages { succeeded, .. } => {
                if let Some(st) = open_mig.take() {
                    ops.push((st, e.ts_ns, format!("mm_migrate_pages ({succeeded} pages)")));
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    let mut last: Option<(u64, u64)> = None; // (ts, camera frame)
    for e in events {
        let EventKind::DisplayFrame { number, camera: Some(cam), .. } = &e.kind else { continue };
        if let Some((prev_ts, prev_cam)) = last {
            let dropped = cam.saturating_sub(prev_cam.saturating_add(1));
            if *cam == prev_cam || dropped > 0 {
                // an allocation wins over the migration batches inside it
                let overlap = |o: &(u64, u64, String)| o.1.min(e.ts_ns).saturating_sub(o.0.max(prev_ts));
                let best = ops
                    .iter()
                    .filter(|o| overlap(o) > 0)
                    .max_by_key(|o| (o.2.starts_with("cma_alloc"), overlap(o)))
                    .map(|o| format!("{} @{} us", o.2, super::us(o.0)));
                out.push(Stutter { number: *number, ts_ns: e.ts_ns, dropped, blame: best });
            }
        }
        last = Some((e.ts_ns, *cam));
    }
    out
}

/// The display's repeated and dropped frames with what held them back.
pub fn stutter_table(events: &[Event]) -> String {
    let st = stutters(events);
    let mut s = String::new();
    let shown = events.iter().filter(|e| matches!(e.kind, EventKind::DisplayFrame { camera: Some(_), .. })).count();
    let repeated = st.iter().filter(|x| x.dropped == 0).count();
    let dropped: u64 = st.iter().map(|x| x.dropped).sum();
    let _ = writeln!(s, "display: {shown} frames shown, {repeated} repeated, {dropped} camera frames dropped");
    if !st.is_empty() {
        let _ = writeln!(s, "{:>7} {:>12} {:>9}  held back by", "display", "vsync_us", "what");
        for x in &st {
            let what = if x.dropped == 0 { "repeat".to_string() } else { format!("drop {}", x.dropped) };
            let _ = writeln!(s, "{:>7} {:>12} {:>9}  {}", x.number, super::us(x.ts_ns), what, x.blame.as_deref().unwrap_or("-"));
        }
    }
    s
}
