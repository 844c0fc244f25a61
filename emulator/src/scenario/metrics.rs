//! What a sweep's verdict reads from one run: CMA allocation latencies and
//! errors (from the trace events), frames `preview` showed and dropped
//! (from its summary line), and a short cause for a failure.
use super::run::{ScenarioResult, Status};
use crate::trace::{Event, EventKind};
use std::collections::BTreeMap;

/// Measurements of one run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunMetrics {
    /// Virtual ns from `cma_alloc_start` to `cma_alloc_finish` of every
    /// allocation, in order (failed ones too).
    pub alloc_ns: Vec<u64>,
    /// The errno (positive, 12 = ENOMEM) of every failed allocation.
    pub alloc_errors: Vec<i32>,
    /// Frames every `preview` showed.
    pub frames_shown: u64,
    /// Camera frame periods `preview` did not show: `last camera frame +
    /// 1 - shown` of each preview (the camera drops a frame when no
    /// buffer is queued).
    pub frames_dropped: u64,
}

impl RunMetrics {
    /// Read the metrics of a run from its events and console text.
    pub fn read(events: &[Event], console: &str) -> RunMetrics {
        let mut m = RunMetrics::default();
        let mut started: BTreeMap<&str, u64> = BTreeMap::new();
        for e in events {
            match &e.kind {
                EventKind::CmaAllocStart { name, .. } => {
                    started.insert(name, e.ts_ns);
                }
                EventKind::CmaAllocFinish { name, errorno, .. } => {
                    if let Some(t0) = started.remove(name.as_str()) {
                        m.alloc_ns.push(e.ts_ns.saturating_sub(t0));
                    }
                    if *errorno != 0 {
                        m.alloc_errors.push(errorno.saturating_abs());
                    }
                }
                _ => {}
            }
        }
        for l in console.lines() {
            if let Some((shown, last)) = parse_preview_line(l) {
                m.frames_shown += shown;
                if shown > 0 {
                    m.frames_dropped += (last + 1).saturating_sub(shown);
                }
            }
        }
        m
    }
}

/// `preview: 60 frames shown (last camera frame 63), 68 vsyncs` → (60, 63).
fn parse_preview_line(l: &str) -> Option<(u64, u64)> {
    let rest = l.trim_end_matches('\r').strip_prefix("preview: ")?;
    let (shown, rest) = rest.split_once(" frames shown (last camera frame ")?;
    let (last, _) = rest.split_once(')')?;
    Some((shown.trim().parse().ok()?, last.trim().parse().ok()?))
}

/// Linux's name of an errno (the ones CMA returns), else `errno N`.
pub fn errno_name(e: i32) -> String {
    match e {
        4 => "EINTR".into(),
        11 => "EAGAIN".into(),
        12 => "ENOMEM".into(),
        16 => "EBUSY".into(),
        22 => "EINVAL".into(),
        _ => format!("errno {e}"),
    }
}

/// Why a run failed, in a few words (the verdict counts failures by it):
/// the errno of its first failed CMA allocation, else what its first
/// reason names (a step, an expectation, the board). `None` unless failed.
pub fn failure_cause(r: &ScenarioResult) -> Option<String> {
    if r.status != Status::Fail {
        return None;
    }
    if let Some(e) = r.metrics.alloc_errors.first() {
        return Some(format!("cma_alloc -{}", errno_name(*e)));
    }
    let first = r.reasons.first().map(String::as_str).unwrap_or("failed");
    if first.contains("violation") {
        return Some("verifier violation".into());
    }
    if first.contains("panicked") || first.contains("Oops") {
        return Some("guest panic".into());
    }
    if first.contains("not done within") {
        return Some("timeout".into());
    }
    // `step 2 (line 17): ...`, `expect 3 (vmstat.x == 0): ...`, `board: ...`
    let head = match first.find("): ") {
        Some(i) => &first[..i + 1],
        None => first.split(':').next().unwrap_or(first),
    };
    Some(head.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(ts_ns: u64, kind: EventKind) -> Event {
        Event { ts_ns, frame: 0, kind }
    }

    #[test]
    fn latencies_errors_and_dropped_frames() {
        let n = || "linux,cma".to_string();
        let events = vec![
            ev(100, EventKind::CmaAllocStart { name: n(), count: 4, align: 0 }),
            ev(350, EventKind::CmaAllocFinish { name: n(), pfn: 1, page: 0, count: 4, align: 0, errorno: 0 }),
            ev(400, EventKind::CmaAllocStart { name: n(), count: 4, align: 0 }),
            ev(1400, EventKind::CmaAllocFinish { name: n(), pfn: 0, page: 0, count: 4, align: 0, errorno: -12 }),
        ];
        let console = "# preview 60\npreview: 60 frames shown (last camera frame 63), 68 vsyncs\r\npreview: 30 frames shown (last camera frame 29), 31 vsyncs\n";
        let m = RunMetrics::read(&events, console);
        assert_eq!(m.alloc_ns, vec![250, 1000]);
        assert_eq!(m.alloc_errors, vec![12]);
        assert_eq!((m.frames_shown, m.frames_dropped), (90, 4));
    }

    #[test]
    fn causes() {
        let mut r = ScenarioResult {
            name: "x".into(),
            file: None,
            seed: 0,
            status: Status::Fail,
            reasons: vec!["expect 2 (vmstat.cma_alloc_fail == 0): vmstat.cma_alloc_fail is 3".into()],
            virtual_ns: 0,
            insns: 0,
            wall: Default::default(),
            console_tail: Vec::new(),
            metrics: RunMetrics::default(),
        };
        assert_eq!(failure_cause(&r).as_deref(), Some("expect 2 (vmstat.cma_alloc_fail == 0)"));
        r.metrics.alloc_errors = vec![12];
        assert_eq!(failure_cause(&r).as_deref(), Some("cma_alloc -ENOMEM"));
        r.status = Status::Pass;
        assert_eq!(failure_cause(&r), None);
    }
}
