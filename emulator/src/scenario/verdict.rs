//! A sweep's plan (axes × seeds, numbered runs), its JSON lines, the
//! verdict over them, the terminal table, and the merge of shard outputs.
//!
//! Output of a whole sweep (also what `sweep merge` writes), one JSON
//! object a line, tagged by `type`:
//!
//! * `sweep` — the plan: scenario name and digest, axes, seeds, runs;
//!   `shard` is `null` (a shard's own output says `"k/M"`);
//! * `run` — one per run, in run order: seed, the axis values (`params`),
//!   status, cause, reasons, virtual time, instructions, every CMA
//!   allocation's virtual latency, failed allocations' errnos, frames
//!   shown and dropped;
//! * `combination` — the verdict of each combination of axis values: pass
//!   rate, failures by cause, median and worst allocation latency,
//!   dropped frames;
//! * `smallest` — per combination of the other axes, the smallest value
//!   of the sized axis that passes every seed.
//!
//! Nothing in it depends on the host or wall-clock time, so a merged
//! sweep is byte for byte a single-machine one.
use super::axes::{combination, combination_count, Axis};
use super::file::Scenario;
use super::metrics::failure_cause;
use super::run::{ScenarioResult, Status};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::ops::Range;

/// The most runs one sweep (or one shard of it) runs: a million boots is
/// weeks of CPU time; more is a typo, not a plan.
pub const MAX_RUNS: u64 = 1 << 20;

/// A bad plan or a bad merge.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SweepError {
    #[error("no seeds: give --seeds A..B or seeds = \"A..B\" under [sweep]")]
    NoSeeds,
    #[error("{0}, more than the {MAX_RUNS} one sweep runs (use a smaller range, or split it with --shard k/M)")]
    TooMany(String),
    #[error("{combos} combinations × {seeds} seeds: more runs than a sweep can number (2^64)")]
    Overflow { combos: u128, seeds: u64 },
    #[error("--size-axis {0:?} is not one of the axes ({1})")]
    NoSuchSizeAxis(String, String),
    #[error("--size-axis {0}: its values are not numbers")]
    SizeAxisNotNumeric(String),
    #[error("{file}:{line}: {why}")]
    BadLine { file: String, line: usize, why: String },
    #[error("{file}: {why}")]
    BadFile { file: String, why: String },
    #[error("merge: {0}")]
    Merge(String),
}

/// A sweep line (the header of a sweep's output) that does not describe a
/// plan.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error(transparent)]
    Axis(#[from] super::axes::AxisError),
    #[error(transparent)]
    Range(#[from] super::sweep::RangeError),
    #[error("size_axis {0:?} is not an axis")]
    SizeAxis(String),
    #[error(transparent)]
    Plan(#[from] Box<SweepError>),
    #[error("runs is {header} but the axes and seeds make {plan}")]
    Runs { header: u64, plan: u64 },
}

/// The runs of a sweep: every combination of axis values × every seed,
/// numbered `combination * seeds + seed index`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub scenario: String,
    /// `sha256:` of the scenario file (shards of another file don't merge).
    pub digest: String,
    pub axes: Vec<Axis>,
    pub seeds: Range<u64>,
    /// Index of the axis the verdict sizes.
    pub size_axis: Option<usize>,
}

/// The `sweep` line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub scenario: String,
    pub digest: String,
    pub axes: Vec<AxisLine>,
    pub seeds: String,
    pub size_axis: Option<String>,
    pub runs: u64,
    /// `"k/M"` in a shard's output.
    pub shard: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AxisLine {
    pub name: String,
    pub values: Vec<String>,
}

/// A `run` line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    pub run: u64,
    pub seed: u64,
    pub params: BTreeMap<String, String>,
    pub pass: bool,
    pub status: String,
    pub cause: Option<String>,
    pub reasons: Vec<String>,
    pub virtual_ns: u64,
    pub insns: u64,
    pub alloc_ns: Vec<u64>,
    pub alloc_errors: Vec<i32>,
    pub frames_shown: u64,
    pub frames_dropped: u64,
}

/// A `combination` line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Combination {
    pub params: BTreeMap<String, String>,
    pub runs: u64,
    pub passed: u64,
    pub failed: u64,
    pub skipped: u64,
    pub pass_rate: f64,
    pub causes: BTreeMap<String, u64>,
    pub allocs: u64,
    pub alloc_median_ns: Option<u64>,
    pub alloc_worst_ns: Option<u64>,
    pub frames_shown: u64,
    pub frames_dropped: u64,
    pub frames_dropped_worst: u64,
}

/// A `smallest` line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Smallest {
    pub axis: String,
    /// The other axes' values.
    pub given: BTreeMap<String, String>,
    /// The smallest value that passes every seed, if any does.
    pub value: Option<String>,
    /// Every larger value passes every seed too.
    pub larger_all_pass: bool,
}

/// One line of a sweep's output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Line {
    Sweep(Header),
    Run(RunRecord),
    Combination(Combination),
    Smallest(Smallest),
}

impl Line {
    pub fn to_json(&self) -> String {
        // plain data: serialization cannot fail
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl Plan {
    /// The plan of `sc`: the file's `[sweep]` axes, replaced by (or
    /// joined with) the command line's; the command line's seeds and size
    /// axis over the file's.
    pub fn new(sc: &Scenario, digest: String, cli_axes: Vec<Axis>, seeds: Option<Range<u64>>, size_axis: Option<&str>) -> Result<Plan, SweepError> {
        let mut axes = sc.sweep.axes.clone();
        for a in cli_axes {
            match axes.iter_mut().find(|x| x.name == a.name) {
                Some(x) => *x = a,
                None => axes.push(a),
            }
        }
        let seeds = seeds.or_else(|| sc.sweep.seeds.clone()).ok_or(SweepError::NoSeeds)?;
        let names = || axes.iter().map(|a| a.name.as_str()).collect::<Vec<_>>().join(", ");
        let size_axis = match size_axis.or(sc.sweep.size_axis.as_deref()) {
            Some(n) => {
                let i = axes.iter().position(|a| a.name == n).ok_or_else(|| SweepError::NoSuchSizeAxis(n.into(), names()))?;
                if !axes[i].numeric() {
                    return Err(SweepError::SizeAxisNotNumeric(n.into()));
                }
                Some(i)
            }
            None => axes.iter().position(Axis::numeric),
        };
        let p = Plan { scenario: sc.name.clone(), digest, axes, seeds, size_axis };
        p.check_size()?;
        Ok(p)
    }

    fn check_size(&self) -> Result<(), SweepError> {
        let combos = combination_count(&self.axes).map(u128::from).unwrap_or(u128::MAX);
        let seeds = self.seeds.end - self.seeds.start;
        if combos.saturating_mul(u128::from(seeds)) > u128::from(u64::MAX) {
            return Err(SweepError::Overflow { combos, seeds });
        }
        Ok(())
    }

    /// How many runs shard `(k, M)` (or the whole sweep) runs: at most
    /// [`MAX_RUNS`]. Counted, never walked (issue 19: huge ranges).
    pub fn shard_runs(&self, shard: Option<(u64, u64)>) -> Result<u64, SweepError> {
        let (k, m) = shard.unwrap_or((0, 1));
        let total = self.runs();
        let count = if k >= total { 0 } else { (total - k).div_ceil(m) };
        if count > MAX_RUNS {
            let combos = combination_count(&self.axes).unwrap_or(0);
            let mut what = format!("--seeds {}..{}", self.seeds.start, self.seeds.end);
            if let Some((k, m)) = shard {
                what.push_str(&format!(" --shard {k}/{m}"));
            }
            what.push_str(&if combos == 1 { format!(": {count} seeds") } else { format!(": {count} runs ({combos} combinations of the axes)") });
            return Err(SweepError::TooMany(what));
        }
        Ok(count)
    }

    fn nseeds(&self) -> u64 {
        self.seeds.end - self.seeds.start
    }

    /// How many runs (at most 2^64 - 1: checked when made).
    pub fn runs(&self) -> u64 {
        combination_count(&self.axes).unwrap_or(0) * self.nseeds()
    }

    /// Combination index and seed of run `i`.
    pub fn run(&self, i: u64) -> (u64, u64) {
        let n = self.nseeds().max(1);
        (i / n, self.seeds.start + i % n)
    }

    /// Axis name → value of combination `c`.
    pub fn params(&self, c: u64) -> BTreeMap<String, String> {
        let idx = combination(&self.axes, c);
        self.axes.iter().zip(idx).map(|(a, i)| (a.name.clone(), a.values[i].clone())).collect()
    }

    /// The scenario of run `i`: axis values on its board, `{seed}` replaced.
    pub fn scenario(&self, base: &Scenario, i: u64) -> Scenario {
        let (c, seed) = self.run(i);
        let mut sc = base.with_seed(seed);
        for (a, vi) in self.axes.iter().zip(combination(&self.axes, c)) {
            a.apply(&a.values[vi], &mut sc.board);
        }
        sc
    }

    /// The `sweep` line (with `shard` for a shard's output).
    pub fn header(&self, shard: Option<(u64, u64)>) -> Header {
        Header {
            scenario: self.scenario.clone(),
            digest: self.digest.clone(),
            axes: self.axes.iter().map(|a| AxisLine { name: a.name.clone(), values: a.values.clone() }).collect(),
            seeds: format!("{}..{}", self.seeds.start, self.seeds.end),
            size_axis: self.size_axis.map(|i| self.axes[i].name.clone()),
            runs: self.runs(),
            shard: shard.map(|(k, m)| format!("{k}/{m}")),
        }
    }

    /// The plan a `sweep` line describes (axes checked again).
    pub fn from_header(h: &Header) -> Result<Plan, HeaderError> {
        let mut axes = Vec::new();
        for a in &h.axes {
            let refs: Vec<&str> = a.values.iter().map(String::as_str).collect();
            axes.push(Axis::new(&a.name, &refs)?);
        }
        let seeds = super::sweep::parse_seed_range(&h.seeds)?;
        let size_axis = match &h.size_axis {
            Some(n) => Some(axes.iter().position(|a| &a.name == n).ok_or_else(|| HeaderError::SizeAxis(n.clone()))?),
            None => None,
        };
        let p = Plan { scenario: h.scenario.clone(), digest: h.digest.clone(), axes, seeds, size_axis };
        p.check_size().map_err(Box::new)?;
        if p.runs() != h.runs {
            return Err(HeaderError::Runs { header: h.runs, plan: p.runs() });
        }
        Ok(p)
    }

    /// The record of run `i` from its result.
    pub fn record(&self, i: u64, r: &ScenarioResult) -> RunRecord {
        let (c, seed) = self.run(i);
        RunRecord {
            run: i,
            seed,
            params: self.params(c),
            pass: r.status == Status::Pass,
            status: match r.status {
                Status::Pass => "pass",
                Status::Fail => "fail",
                Status::Skipped => "skipped",
            }
            .into(),
            cause: failure_cause(r),
            reasons: r.reasons.clone(),
            virtual_ns: r.virtual_ns,
            insns: r.insns,
            alloc_ns: r.metrics.alloc_ns.clone(),
            alloc_errors: r.metrics.alloc_errors.clone(),
            frames_shown: r.metrics.frames_shown,
            frames_dropped: r.metrics.frames_dropped,
        }
    }

    /// The verdict over every run (in run order, all of them).
    pub fn verdict(&self, runs: &[RunRecord]) -> (Vec<Combination>, Vec<Smallest>) {
        let n = self.nseeds() as usize;
        let combos: Vec<Combination> = runs.chunks(n.max(1)).enumerate().map(|(c, rs)| combination_verdict(self.params(c as u64), rs)).collect();
        (combos.clone(), self.smallest(&combos))
    }

    fn smallest(&self, combos: &[Combination]) -> Vec<Smallest> {
        let Some(si) = self.size_axis else { return Vec::new() };
        let axis = &self.axes[si];
        // group the combinations by the other axes' values, in plan order
        let mut groups: Vec<(BTreeMap<String, String>, Vec<&Combination>)> = Vec::new();
        for c in combos {
            let mut given = c.params.clone();
            given.remove(&axis.name);
            match groups.iter_mut().find(|(g, _)| *g == given) {
                Some((_, v)) => v.push(c),
                None => groups.push((given, vec![c])),
            }
        }
        groups
            .into_iter()
            .map(|(given, mut cs)| {
                cs.sort_by_key(|c| axis.number(&c.params[&axis.name]).unwrap_or(u64::MAX));
                let all = |c: &&Combination| c.runs > 0 && c.passed == c.runs;
                let first = cs.iter().position(all);
                Smallest {
                    axis: axis.name.clone(),
                    given,
                    value: first.map(|i| cs[i].params[&axis.name].clone()),
                    larger_all_pass: first.is_some_and(|i| cs[i..].iter().all(all)),
                }
            })
            .collect()
    }

    /// Every line of the whole sweep's output, in order.
    pub fn result_lines(&self, runs: &[RunRecord]) -> Vec<Line> {
        let (combos, smallest) = self.verdict(runs);
        let mut out = vec![Line::Sweep(self.header(None))];
        out.extend(runs.iter().cloned().map(Line::Run));
        out.extend(combos.into_iter().map(Line::Combination));
        out.extend(smallest.into_iter().map(Line::Smallest));
        out
    }
}

fn median(v: &mut [u64]) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    Some(v[(v.len() - 1) / 2])
}

fn combination_verdict(params: BTreeMap<String, String>, rs: &[RunRecord]) -> Combination {
    let count = |s: &str| rs.iter().filter(|r| r.status == s).count() as u64;
    let (passed, failed, skipped) = (count("pass"), count("fail"), count("skipped"));
    let mut causes = BTreeMap::new();
    for c in rs.iter().filter_map(|r| r.cause.as_ref()) {
        *causes.entry(c.clone()).or_insert(0) += 1;
    }
    let mut lat: Vec<u64> = rs.iter().flat_map(|r| r.alloc_ns.iter().copied()).collect();
    let runs = rs.len() as u64;
    Combination {
        params,
        runs,
        passed,
        failed,
        skipped,
        pass_rate: if runs == 0 { 0.0 } else { passed as f64 / runs as f64 },
        causes,
        allocs: lat.len() as u64,
        alloc_worst_ns: lat.iter().copied().max(),
        alloc_median_ns: median(&mut lat),
        frames_shown: rs.iter().map(|r| r.frames_shown).sum(),
        frames_dropped: rs.iter().map(|r| r.frames_dropped).sum(),
        frames_dropped_worst: rs.iter().map(|r| r.frames_dropped).max().unwrap_or(0),
    }
}

fn ms(ns: Option<u64>) -> String {
    ns.map(|n| format!("{:.3}", n as f64 / 1e6)).unwrap_or_else(|| "-".into())
}

/// The verdict as a table for the terminal.
pub fn table(plan: &Plan, combos: &[Combination], smallest: &[Smallest]) -> String {
    let mut head: Vec<String> = plan.axes.iter().map(|a| a.name.clone()).collect();
    head.extend(["runs", "pass", "rate", "alloc p50 ms", "alloc max ms", "dropped", "failures by cause"].map(String::from));
    let mut rows = vec![head];
    for c in combos {
        let mut row: Vec<String> = plan.axes.iter().map(|a| c.params.get(&a.name).cloned().unwrap_or_default()).collect();
        let causes: Vec<String> = c.causes.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        row.extend([
            c.runs.to_string(),
            c.passed.to_string(),
            format!("{:.0}%", c.pass_rate * 100.0),
            ms(c.alloc_median_ns),
            ms(c.alloc_worst_ns),
            c.frames_dropped.to_string(),
            if causes.is_empty() { "-".into() } else { causes.join("; ") },
        ]);
        rows.push(row);
    }
    let ncol = rows[0].len();
    let widths: Vec<usize> = (0..ncol).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for r in &rows {
        let cells: Vec<String> = r.iter().zip(&widths).enumerate().map(|(i, (c, w))| if i + 1 == ncol { c.clone() } else { format!("{c:<w$}") }).collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    for s in smallest {
        let given: Vec<String> = s.given.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let given = if given.is_empty() { String::new() } else { format!(" with {}", given.join(", ")) };
        let _ = match &s.value {
            Some(v) => writeln!(
                out,
                "smallest {} that passes every seed{given}: {v}{}",
                s.axis,
                if s.larger_all_pass { "" } else { " (but a larger value fails some seed)" }
            ),
            None => writeln!(out, "no {} passes every seed{given}", s.axis),
        };
    }
    out
}

/// Read a sweep output file into lines.
pub fn read_lines(file: &str, text: &str) -> Result<Vec<Line>, SweepError> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| SweepError::BadLine { file: file.into(), line: i + 1, why: e.to_string() }))
        .collect()
}

/// Merge shard outputs (`(file name, lines)`) into the whole sweep's runs:
/// every shard `k/M` exactly once, every run exactly once, in its shard.
pub fn merge(shards: &[(String, Vec<Line>)]) -> Result<(Plan, Vec<RunRecord>), SweepError> {
    let err = |s: String| SweepError::Merge(s);
    if shards.is_empty() {
        return Err(err("no shard files".into()));
    }
    let mut plan: Option<(Plan, Header, String)> = None;
    let mut seen: BTreeMap<u64, String> = BTreeMap::new();
    let mut total_m = None;
    let mut runs: BTreeMap<u64, RunRecord> = BTreeMap::new();
    for (file, lines) in shards {
        let Some(Line::Sweep(h)) = lines.first() else {
            return Err(SweepError::BadFile { file: file.clone(), why: "does not start with a sweep line".into() });
        };
        let Some(shard) = &h.shard else {
            return Err(SweepError::BadFile { file: file.clone(), why: "is a whole sweep's output, not a shard's (it has shard: null)".into() });
        };
        let (k, m) = super::sweep::parse_shard(shard).map_err(|e| SweepError::BadFile { file: file.clone(), why: e.to_string() })?;
        match total_m {
            None => total_m = Some(m),
            Some(mm) if mm != m => return Err(err(format!("{file} is shard {k}/{m} but another file is a shard of {mm}"))),
            _ => {}
        }
        if let Some(other) = seen.insert(k, file.clone()) {
            return Err(err(format!("shard {k}/{m} is given twice: {other} and {file}")));
        }
        let mut bare = h.clone();
        bare.shard = None;
        match &plan {
            None => {
                let p = Plan::from_header(&bare).map_err(|e| SweepError::BadFile { file: file.clone(), why: e.to_string() })?;
                plan = Some((p, bare, file.clone()));
            }
            Some((_, first, first_file)) if *first != bare => {
                return Err(err(format!("{file} is a shard of another sweep than {first_file} (scenario, digest, axes, seeds or size axis differ)")));
            }
            _ => {}
        }
        let p = &plan.as_ref().map(|x| &x.0).ok_or_else(|| err("no plan".into()))?;
        for (li, l) in lines.iter().enumerate().skip(1) {
            let Line::Run(r) = l else {
                return Err(SweepError::BadLine { file: file.clone(), line: li + 1, why: "a shard's output holds run lines only after its sweep line".into() });
            };
            if r.run >= p.runs() || r.run % m != k {
                return Err(SweepError::BadLine { file: file.clone(), line: li + 1, why: format!("run {} does not belong to shard {k}/{m}", r.run) });
            }
            let (c, seed) = p.run(r.run);
            if r.seed != seed || r.params != p.params(c) {
                return Err(SweepError::BadLine { file: file.clone(), line: li + 1, why: format!("run {} has other parameters than the plan's", r.run) });
            }
            if runs.insert(r.run, r.clone()).is_some() {
                return Err(SweepError::BadLine { file: file.clone(), line: li + 1, why: format!("run {} appears twice", r.run) });
            }
        }
    }
    let (plan, _, _) = plan.ok_or_else(|| err("no plan".into()))?;
    let m = total_m.unwrap_or(1);
    let missing: Vec<String> = (0..m).filter(|k| !seen.contains_key(k)).map(|k| format!("{k}/{m}")).collect();
    if !missing.is_empty() {
        return Err(err(format!("missing shard(s): {}", missing.join(", "))));
    }
    if runs.len() as u64 != plan.runs() {
        let absent: Vec<String> = (0..plan.runs()).filter(|i| !runs.contains_key(i)).take(10).map(|i| i.to_string()).collect();
        return Err(err(format!("{} of {} runs are missing (runs {}...): a shard did not finish", plan.runs() - runs.len() as u64, plan.runs(), absent.join(", "))));
    }
    Ok((plan, runs.into_values().collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        let sc = Scenario::parse("t.toml", "[sweep]\nseeds = \"0..3\"\n[sweep.axes]\ncma = [\"8M\", \"4M\", \"16M\"]\nram = \"128M,256M\"\n").unwrap();
        Plan::new(&sc, "sha256:x".into(), vec![], None, None).unwrap()
    }

    fn rec(p: &Plan, i: u64, pass: bool) -> RunRecord {
        let (c, seed) = p.run(i);
        RunRecord {
            run: i,
            seed,
            params: p.params(c),
            pass,
            status: if pass { "pass" } else { "fail" }.into(),
            cause: (!pass).then(|| "cma_alloc -ENOMEM".into()),
            reasons: vec![],
            virtual_ns: 1,
            insns: 1,
            alloc_ns: vec![i * 10, 5],
            alloc_errors: vec![],
            frames_shown: 30,
            frames_dropped: i % 2,
        }
    }

    #[test]
    fn plan_numbers_runs_and_sizes_the_first_numeric_axis() {
        let p = plan();
        assert_eq!(p.runs(), 18);
        assert_eq!(p.size_axis, Some(0));
        assert_eq!(p.run(4), (1, 1));
        assert_eq!(p.params(1), BTreeMap::from([("cma".to_string(), "8M".to_string()), ("ram".to_string(), "256M".to_string())]));
        let sc = Scenario::parse("t.toml", "[board]\nbootargs = \"console=ttyAMA0\"\n").unwrap();
        let s = p.scenario(&sc, 4);
        assert_eq!((s.seed, s.board.ram, s.board.args.clone()), (1, Some(256 << 20), vec!["cma=8M".to_string()]));
        let none = Scenario::parse("t.toml", "").unwrap();
        assert_eq!(Plan::new(&none, String::new(), vec![], None, None), Err(SweepError::NoSeeds));
        let big = Plan::new(&none, String::new(), vec![Axis::parse_cli("cma=1M..=4000M:1M").unwrap()], Some(0..1000), None).unwrap();
        let e = big.shard_runs(None).unwrap_err().to_string();
        assert_eq!(e, "--seeds 0..1000: 4000000 runs (4000 combinations of the axes), more than the 1048576 one sweep runs (use a smaller range, or split it with --shard k/M)");
        assert_eq!(big.shard_runs(Some((3, 4))), Ok(1_000_000));
        let huge = Plan::new(&none, String::new(), vec![Axis::parse_cli("cma=1M..=4000M:1M").unwrap()], Some(0..u64::MAX), None);
        assert!(matches!(huge, Err(SweepError::Overflow { .. })), "{huge:?}");
        let bad = Plan::new(&none, String::new(), vec![Axis::parse_cli("profile=debian-6.1").unwrap()], Some(0..1), Some("profile"));
        assert_eq!(bad, Err(SweepError::SizeAxisNotNumeric("profile".into())));
    }

    /// Issue 19: `--seeds 0..18446744073709551615` collected the range
    /// (a 2 GiB allocation, then an abort); with `--shard
    /// 0/18446744073709551615` it filtered 2^64 numbers.
    #[test]
    fn huge_ranges_and_shards_are_counted_not_walked() {
        let none = Scenario::parse("t.toml", "").unwrap();
        let all = super::super::sweep::parse_seed_range("0..18446744073709551615").unwrap();
        let p = Plan::new(&none, String::new(), vec![], Some(all), None).unwrap();
        assert_eq!(
            p.shard_runs(None).unwrap_err().to_string(),
            "--seeds 0..18446744073709551615: 18446744073709551615 seeds, more than the 1048576 one sweep runs (use a smaller range, or split it with --shard k/M)"
        );
        assert_eq!(p.shard_runs(Some((0, u64::MAX))), Ok(1));
        assert_eq!(p.shard_runs(Some((u64::MAX - 1, u64::MAX))), Ok(1));
        assert_eq!(p.run(u64::MAX - 1), (0, u64::MAX - 1));
        let last = Plan::new(&none, String::new(), vec![], Some(u64::MAX - 3..u64::MAX), None).unwrap();
        assert_eq!(last.shard_runs(Some((0, 2))), Ok(2));
        assert_eq!((last.run(0).1, last.run(2).1), (u64::MAX - 3, u64::MAX - 1));
        let max = Plan::new(&none, String::new(), vec![], Some(0..MAX_RUNS), None).unwrap();
        assert_eq!(max.shard_runs(None), Ok(MAX_RUNS));
        let over = Plan::new(&none, String::new(), vec![], Some(0..MAX_RUNS + 1), None).unwrap();
        assert!(over.shard_runs(None).is_err());
        let two = Plan::new(&none, String::new(), vec![], Some(0..2 * MAX_RUNS), None).unwrap();
        assert_eq!(two.shard_runs(Some((1, 2))), Ok(MAX_RUNS));
    }

    #[test]
    fn verdict_finds_the_smallest_passing_size() {
        let p = plan();
        // cma=4M (combinations 2, 3) fails one seed; 8M fails with 128M only; 16M passes
        let runs: Vec<RunRecord> = (0..p.runs()).map(|i| rec(&p, i, !(matches!(p.run(i).0, 2 | 3) && i % 3 == 0 || p.run(i).0 == 0))).collect();
        let (combos, smallest) = p.verdict(&runs);
        assert_eq!(combos.len(), 6);
        assert_eq!((combos[0].passed, combos[0].failed, combos[0].causes["cma_alloc -ENOMEM"]), (0, 3, 3));
        assert_eq!(combos[1].alloc_worst_ns, Some(50));
        assert_eq!(combos[1].alloc_median_ns, Some(5));
        let s: Vec<(String, Option<String>)> = smallest.iter().map(|s| (s.given["ram"].clone(), s.value.clone())).collect();
        assert_eq!(s, vec![("128M".into(), Some("16M".into())), ("256M".into(), Some("8M".into()))]);
        let t = table(&p, &combos, &smallest);
        assert!(t.contains("smallest cma that passes every seed with ram=128M: 16M"), "{t}");
        assert!(t.lines().next().unwrap().starts_with("cma  ram   runs"), "{t}");
    }

    #[test]
    fn merge_equals_the_whole_and_rejects_missing_or_duplicate_shards() {
        let p = plan();
        let runs: Vec<RunRecord> = (0..p.runs()).map(|i| rec(&p, i, i % 5 != 0)).collect();
        let shard = |k: u64, m: u64| -> (String, Vec<Line>) {
            let mut v = vec![Line::Sweep(p.header(Some((k, m))))];
            v.extend(runs.iter().filter(|r| r.run % m == k).cloned().map(Line::Run));
            // through text, as files are
            let text: String = v.iter().map(|l| l.to_json() + "\n").collect();
            (format!("s{k}.jsonl"), read_lines("x", &text).unwrap())
        };
        let whole: String = p.result_lines(&runs).iter().map(|l| l.to_json() + "\n").collect();
        let (mp, mruns) = merge(&[shard(2, 3), shard(0, 3), shard(1, 3)]).unwrap();
        let merged: String = mp.result_lines(&mruns).iter().map(|l| l.to_json() + "\n").collect();
        assert_eq!(merged, whole);
        let e = merge(&[shard(0, 3), shard(2, 3)]).unwrap_err().to_string();
        assert!(e.contains("missing shard(s): 1/3"), "{e}");
        let e = merge(&[shard(0, 3), shard(1, 3), shard(1, 3), shard(2, 3)]).unwrap_err().to_string();
        assert!(e.contains("shard 1/3 is given twice"), "{e}");
        let e = merge(&[shard(0, 2), shard(1, 3)]).unwrap_err().to_string();
        assert!(e.contains("shard of 2"), "{e}");
        let mut cut = shard(1, 3);
        cut.1.pop();
        let e = merge(&[shard(0, 3), cut, shard(2, 3)]).unwrap_err().to_string();
        assert!(e.contains("runs are missing"), "{e}");
        let mut other = shard(1, 3);
        if let Line::Sweep(h) = &mut other.1[0] {
            h.digest = "sha256:y".into();
        }
        let e = merge(&[shard(0, 3), other, shard(2, 3)]).unwrap_err().to_string();
        assert!(e.contains("another sweep"), "{e}");
    }
}
