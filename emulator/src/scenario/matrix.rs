//! The catch matrix: every fault injection (`cmaemu.inject=`) run against
//! every workload (scenario files shipped in `examples/matrix/`), plus a
//! clean run of each workload. Per cell: whether the injection fired (the
//! guest's `TR_INJECT` records), whether a verifier caught it, by which
//! checks, and the virtual time from the first firing to the first
//! violation. A fired injection that nobody caught, or a clean run that
//! reported anything, fails the matrix.
use super::api::PreparedBoard;
use super::file::Scenario;
use super::run::run_prepared_with;
use crate::findings::ViolationSummary;
use std::fmt::Write as _;

/// The shipped workloads: (file name, source).
pub const WORKLOADS: [(&str, &str); 7] = [
    ("debugfs-churn.toml", include_str!("../../../examples/matrix/debugfs-churn.toml")),
    ("fill-then-allocate.toml", include_str!("../../../examples/matrix/fill-then-allocate.toml")),
    ("cma-test-pressure.toml", include_str!("../../../examples/matrix/cma-test-pressure.toml")),
    ("preview-under-stress.toml", include_str!("../../../examples/matrix/preview-under-stress.toml")),
    ("pin-inside-area.toml", include_str!("../../../examples/matrix/pin-inside-area.toml")),
    ("small-ram.toml", include_str!("../../../examples/matrix/small-ram.toml")),
    ("tasks-share-area.toml", include_str!("../../../examples/matrix/tasks-share-area.toml")),
];

/// The workloads of `--quick` (what CI runs): one small board that runs
/// every code path an injection lives in.
pub const QUICK_WORKLOADS: [&str; 1] = ["small-ram.toml"];

/// Every injection the guest knows (its `TR_INJECT` ids), by name.
pub fn injections() -> Vec<&'static str> {
    (1..32u8).map(cmaemu_abi::trace::inject_name).filter(|n| *n != "unknown").collect()
}

/// One cell: a workload run with one injection (or none).
#[derive(Clone, Debug)]
pub struct Cell {
    pub workload: String,
    /// None: the clean run.
    pub injection: Option<String>,
    /// Firings of the injection (virtual ns of the first).
    pub fired: usize,
    pub first_fired_ns: Option<u64>,
    pub violations: ViolationSummary,
    /// Why the run itself could not happen (board, boot).
    pub error: Option<String>,
    /// The scenario's own expectations that failed (informative: an
    /// injected bug may well break them).
    pub scenario_failures: usize,
}

impl Cell {
    /// Caught: a violation was reported.
    pub fn caught(&self) -> bool {
        self.violations.total > 0
    }
    /// Virtual time from the first firing to the first violation.
    pub fn latency_ns(&self) -> Option<i64> {
        let (v, _) = self.violations.first_at?;
        Some(v as i64 - self.first_fired_ns? as i64)
    }
    /// What is wrong with this cell (None: fine).
    pub fn failure(&self) -> Option<String> {
        if let Some(e) = &self.error {
            return Some(format!("did not run: {e}"));
        }
        match &self.injection {
            None if self.caught() => Some(format!("clean run reported {} violation(s): {}", self.violations.total, self.violations.first.clone().unwrap_or_default())),
            Some(i) if self.fired > 0 && !self.caught() => Some(format!("{i} fired {} time(s) and nobody caught it", self.fired)),
            _ => None,
        }
    }
}

/// Run one cell.
pub fn run_cell(name: &str, src: &str, injection: Option<&str>, seed: Option<u64>) -> Cell {
    let mut cell = Cell {
        workload: name.trim_end_matches(".toml").to_string(),
        injection: injection.map(str::to_string),
        fired: 0,
        first_fired_ns: None,
        violations: ViolationSummary::default(),
        error: None,
        scenario_failures: 0,
    };
    let sc = match Scenario::parse(name, src) {
        Ok(s) => s,
        Err(e) => {
            cell.error = Some(e.to_string());
            return cell;
        }
    };
    let mut sc = sc.with_seed(seed.unwrap_or(sc.seed));
    if let Some(i) = injection {
        sc.board.inject.push(i.to_string());
    }
    let board = match PreparedBoard::from_spec(&sc.board, None) {
        Ok(b) => b,
        Err(e) => {
            cell.error = Some(e.to_string());
            return cell;
        }
    };
    let id = injection.and_then(|n| (1..32u8).find(|&i| cmaemu_abi::trace::inject_name(i) == n));
    let mut seen = None;
    let res = run_prepared_with(&sc, &board, &mut |s, _| {
        let m = s.machine();
        seen = Some((m.injections_fired(), m.violation_summary()));
    });
    match seen {
        Some((fired, v)) => {
            let mine: Vec<u64> = fired.iter().filter(|f| Some(f.1) == id).map(|f| f.0).collect();
            cell.fired = mine.len();
            cell.first_fired_ns = mine.first().copied();
            cell.violations = v;
            cell.scenario_failures = res.reasons.len();
        }
        None => cell.error = Some(res.reasons.join("; ")),
    }
    cell
}

/// Run every (workload, injection) pair — `None` is the clean run — on
/// `jobs` threads; cells come back in input order.
pub fn run_matrix(workloads: &[(String, String)], injections: &[Option<String>], jobs: usize, seed: Option<u64>, progress: impl Fn(&Cell) + Sync) -> Vec<Cell> {
    let tasks: Vec<(usize, usize)> = (0..workloads.len()).flat_map(|w| (0..injections.len()).map(move |i| (w, i))).collect();
    crate::pool::map(tasks.len(), jobs, |k| {
        let (w, i) = tasks[k];
        let (name, src) = &workloads[w];
        let cell = run_cell(name, src, injections[i].as_deref(), seed);
        progress(&cell);
        cell
    })
}

fn ms(ns: i64) -> String {
    format!("{:.3}", ns as f64 / 1e6)
}

/// The table: one line per cell, then the verdict lines.
pub fn format_table(cells: &[Cell]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{:<22} {:<22} {:>6} {:>6}  {:<44} {:>14}", "workload", "injection", "fired", "caught", "by (check: violations)", "first_after_ms");
    for c in cells {
        let inj = c.injection.as_deref().unwrap_or("(clean)");
        let by: Vec<String> = c.violations.per_check.iter().map(|(k, n)| format!("{k}:{n}")).collect();
        let by = if by.is_empty() { "-".to_string() } else { by.join(" ") };
        let first = match (c.latency_ns(), c.violations.first_at) {
            (Some(l), Some((_, k))) => format!("{} ({k})", ms(l)),
            _ => "-".into(),
        };
        let fired = if c.injection.is_none() { "-".to_string() } else { c.fired.to_string() };
        let caught = match (&c.injection, c.fired, c.caught()) {
            (_, _, _) if c.error.is_some() => "ERROR",
            (None, _, false) => "-",
            (None, _, true) => "FALSE+",
            (Some(_), 0, false) => "-",
            (Some(_), 0, true) => "yes",
            (Some(_), _, true) => "yes",
            (Some(_), _, false) => "MISSED",
        };
        let _ = writeln!(s, "{:<22} {:<22} {:>6} {:>6}  {:<44} {}", c.workload, inj, fired, caught, by, first);
    }
    s
}

/// The verdict: every problem (empty: the matrix passed), and per
/// injection the workloads it fired in.
pub fn verdict(cells: &[Cell]) -> (Vec<String>, Vec<(String, Vec<String>)>) {
    let mut problems = Vec::new();
    for c in cells {
        if let Some(f) = c.failure() {
            problems.push(format!("{} / {}: {f}", c.workload, c.injection.as_deref().unwrap_or("(clean)")));
        }
    }
    let mut per: Vec<(String, Vec<String>)> = Vec::new();
    for c in cells {
        let Some(i) = &c.injection else { continue };
        let e = match per.iter_mut().find(|p| &p.0 == i) {
            Some(e) => e,
            None => {
                per.push((i.clone(), Vec::new()));
                per.last_mut().unwrap()
            }
        };
        if c.fired > 0 {
            e.1.push(c.workload.clone());
        }
    }
    (problems, per)
}

/// Counts of a run: (cells fired, fired and caught, clean runs, clean runs
/// with violations).
pub fn counts(cells: &[Cell]) -> (usize, usize, usize, usize) {
    let fired = cells.iter().filter(|c| c.injection.is_some() && c.fired > 0).count();
    let caught = cells.iter().filter(|c| c.injection.is_some() && c.fired > 0 && c.caught()).count();
    let clean = cells.iter().filter(|c| c.injection.is_none()).count();
    let dirty = cells.iter().filter(|c| c.injection.is_none() && c.caught()).count();
    (fired, caught, clean, dirty)
}
