//! Running a scenario on a fresh machine.
use super::api::{Error, PreparedBoard, Session};
use super::file::{Action, Expect, Scenario, Source};
use super::procfs::{parse_meminfo, parse_vmstat, Counters};
use std::time::{Duration, Instant};

/// How a scenario ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    Pass,
    Fail,
    /// `pending` in the file: not run.
    Skipped,
}

/// The result of one scenario run.
#[derive(Clone, Debug)]
pub struct ScenarioResult {
    pub name: String,
    pub file: Option<String>,
    pub seed: u64,
    pub status: Status,
    /// Why it failed (every failed step or expectation), or why skipped.
    pub reasons: Vec<String>,
    /// Virtual time (ns) and retired instructions at the end.
    pub virtual_ns: u64,
    pub insns: u64,
    pub wall: Duration,
    /// For failure reports: the output of the first failing step (its
    /// last lines, its command first), else the last console lines before
    /// the runner read counters for `[[expect]]` (after, when a counter
    /// expectation failed: then its `cat` is what matters).
    pub console_tail: Vec<String>,
    /// Allocation latencies, frames (what a sweep's verdict reads).
    pub metrics: super::metrics::RunMetrics,
}

impl ScenarioResult {
    pub fn passed(&self) -> bool {
        self.status == Status::Pass
    }
}

fn lines_containing<'a>(text: &'a str, needle: &str) -> Vec<&'a str> {
    text.lines().map(|l| l.trim_end_matches('\r')).filter(|l| l.contains(needle)).collect()
}

/// Run `sc` (already seeded) on a freshly built `board`.
pub fn run_prepared(sc: &Scenario, board: &PreparedBoard) -> ScenarioResult {
    run_prepared_with(sc, board, &mut |_, _| {})
}

/// As [`run_prepared`], handing the finished session and the reasons it
/// failed (empty: passed) to `at_end` (`cmaemu test --report` writes the
/// run's report there) when the board booted.
pub fn run_prepared_with(sc: &Scenario, board: &PreparedBoard, at_end: &mut dyn FnMut(&mut Session, &[String])) -> ScenarioResult {
    let start = Instant::now();
    let mut res = ScenarioResult {
        name: sc.name.clone(),
        file: None,
        seed: sc.seed,
        status: Status::Pass,
        reasons: Vec::new(),
        virtual_ns: 0,
        insns: 0,
        wall: Duration::ZERO,
        console_tail: Vec::new(),
        metrics: Default::default(),
    };
    if let Some(p) = &sc.pending {
        res.status = Status::Skipped;
        res.reasons.push(format!("pending: {p}"));
        return res;
    }
    let mut session = match board.boot() {
        Ok(s) => Some(s),
        Err(e) => {
            res.reasons.push(e.to_string());
            None
        }
    };
    if let Some(s) = session.as_mut() {
        let (alive, failed_step) = run_steps(sc, s, &mut res.reasons);
        let before_expects = s.mark();
        let counter_failed = check_expects(sc, s, alive, &mut res.reasons);
        s.final_check();
        res.virtual_ns = s.now_ns();
        res.insns = s.insns();
        let full = s.output();
        res.metrics = super::metrics::RunMetrics::read(s.machine().events(), &full);
        let out = match failed_step {
            Some(step_out) => step_out,
            None if counter_failed => full,
            None => s.output_until(before_expects),
        };
        res.console_tail = last_lines(&out, 15);
        at_end(s, &res.reasons);
    }
    if !res.reasons.is_empty() {
        res.status = Status::Fail;
    }
    res.wall = start.elapsed();
    res
}

/// The last `n` lines of `text`.
fn last_lines(text: &str, n: usize) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].iter().map(|s| s.to_string()).collect()
}

/// The prompt and command line that start a step's output, so that the
/// failure report shows which command printed what.
fn with_command(s: &Session, mark: usize) -> String {
    let before = s.output_until(mark);
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    format!("{}{}", &before[start..], s.output_since(mark))
}

/// Run the steps; returns whether the guest is still at a prompt, and the
/// output of the first step that failed.
fn run_steps(sc: &Scenario, s: &mut Session, reasons: &mut Vec<String>) -> (bool, Option<String>) {
    let n = reasons.len();
    let mut failed: Option<String> = None;
    for st in &sc.steps {
        let label = format!("step {} (line {})", st.index, st.line);
        let mark = s.mark();
        let ev_mark = s.event_mark();
        let r: Result<(), Error> = match &st.action {
            Action::Send { cmd, repeat } => {
                let mut r = Ok(());
                for i in 0..*repeat {
                    let m = s.mark();
                    let t = st.timeout_ms.unwrap_or(super::api::DEFAULT_COMMAND_TIMEOUT_MS);
                    r = s.command_with_timeout(cmd, t).map(|_| ());
                    if r.is_err() {
                        break;
                    }
                    if *repeat > 1 {
                        // expectations hold for every repetition
                        let out = s.output_since(m);
                        if let Some(why) = step_expect_failure(st, &out) {
                            reasons.push(format!("{label}: repetition {} of '{cmd}': {why}", i + 1));
                            return (true, failed.or(Some(with_command(s, m))));
                        }
                    }
                }
                r
            }
            Action::Wait(text) => s.wait_for_line(text, st.timeout_ms.unwrap_or(10_000)).map(|_| ()),
            Action::RunMs(ms) => s.run_for(*ms),
        };
        match r {
            Ok(()) => {}
            Err(e) => {
                let alive = matches!(e, Error::Timeout { .. });
                reasons.push(format!("{label}: {e}"));
                let out = failed.unwrap_or_else(|| with_command(s, mark));
                return (alive && !matches!(st.action, Action::Send { .. }), Some(out));
            }
        }
        let out = s.output_since(mark);
        if let Some(why) = step_expect_failure(st, &out) {
            reasons.push(format!("{label}: {why}"));
        }
        if let Some(why) = step_cause_failure(st, s, ev_mark) {
            reasons.push(format!("{label}: {why}"));
        }
        if failed.is_none() && reasons.len() > n {
            failed = Some(with_command(s, mark));
        }
    }
    (true, failed)
}

/// `expect_cause`: every named cause was found for an allocation of the
/// step (not available, hence failed, without the instrumentation).
fn step_cause_failure(st: &super::file::Step, s: &Session, ev_mark: usize) -> Option<String> {
    if st.expect_cause.is_empty() {
        return None;
    }
    if !s.verifying() {
        return Some("expect_cause: not available (the host instrumentation is not live in this run)".into());
    }
    let found = s.causes_since(ev_mark);
    let missing: Vec<&String> = st.expect_cause.iter().filter(|w| !found.iter().any(|c| c.matches(w))).collect();
    if missing.is_empty() {
        return None;
    }
    let mut seen: Vec<String> = Vec::new();
    for c in &found {
        let k = match c.pfn {
            Some(p) => format!("{} {p:#x}", c.kind),
            None => c.kind.clone(),
        };
        if !seen.contains(&k) {
            seen.push(k);
        }
    }
    Some(format!(
        "expected cause {} for the step's allocations; found {}",
        missing.iter().map(|m| format!("{m:?}")).collect::<Vec<_>>().join(", "),
        if seen.is_empty() { "none".to_string() } else { seen.join(", ") }
    ))
}

fn step_expect_failure(st: &super::file::Step, out: &str) -> Option<String> {
    let mut why = Vec::new();
    for l in &st.expect_line {
        if lines_containing(out, l).is_empty() {
            why.push(format!("expected a line containing {l:?} in the step's output"));
        }
    }
    for l in &st.expect_no_line {
        let hits = lines_containing(out, l);
        if let Some(h) = hits.first() {
            why.push(format!("unexpected line {h:?} (contains {l:?})"));
        }
    }
    if why.is_empty() {
        None
    } else {
        Some(why.join("; "))
    }
}

/// Why a counter expectation's file (/proc/meminfo, /proc/vmstat) could
/// not be read.
#[derive(Debug, thiserror::Error)]
enum CounterError {
    #[error("the guest is not at a prompt")]
    NotAtPrompt,
    #[error(transparent)]
    Session(super::api::Error),
}

/// Check the `[[expect]]` entries; returns whether a counter expectation
/// failed.
fn check_expects(sc: &Scenario, s: &mut Session, alive: bool, reasons: &mut Vec<String>) -> bool {
    let mut counter_failed = false;
    // Line expectations look at the output of the scenario itself, before
    // the counters are read.
    let out = s.output();
    let mut counters: [Option<Result<Counters, CounterError>>; 2] = [None, None];
    for (i, e) in sc.expects.iter().enumerate() {
        let label = format!("expect {} ({e})", i + 1);
        match e {
            Expect::Line(t) => {
                if lines_containing(&out, t).is_empty() {
                    reasons.push(format!("{label}: no output line contains {t:?}"));
                }
            }
            Expect::NoLine(t) => {
                if let Some(h) = lines_containing(&out, t).first() {
                    reasons.push(format!("{label}: found {h:?}"));
                }
            }
            Expect::NoViolations => {
                s.final_check();
                let v = s.violations();
                if !s.verifying() {
                    reasons.push(format!(
                        "{label}: not available: the host verifier is not live in this run (the guest did not hand over its introspection descriptor), so this cannot be checked"
                    ));
                } else if !v.is_empty() {
                    let shown: Vec<String> = v.iter().take(5).map(ToString::to_string).collect();
                    let more = if v.len() > 5 { format!(" (and {} more)", v.len() - 5) } else { String::new() };
                    reasons.push(format!("{label}: {} violation(s): {}{more}", v.len(), shown.join("; ")));
                }
            }
            Expect::Counter(c) => {
                let slot = match c.source {
                    Source::Meminfo => 0,
                    Source::Vmstat => 1,
                };
                if counters[slot].is_none() {
                    counters[slot] = Some(if !alive {
                        Err(CounterError::NotAtPrompt)
                    } else {
                        s.command(&format!("cat {}", c.source.path())).map_err(CounterError::Session).map(|t| match c.source {
                            Source::Meminfo => parse_meminfo(&t),
                            Source::Vmstat => parse_vmstat(&t),
                        })
                    });
                }
                let n = reasons.len();
                match counters[slot].as_ref() {
                    Some(Ok(cs)) => match cs.get(&c.field) {
                        Some(v) if c.op.holds(v, c.value) => {}
                        Some(v) => reasons.push(format!("{label}: {}.{} is {v}", c.source.name(), c.field)),
                        None => reasons.push(format!("{label}: {} has no field {} ({} fields read)", c.source.path(), c.field, cs.0.len())),
                    },
                    Some(Err(e)) => reasons.push(format!("{label}: cannot read {}: {e}", c.source.path())),
                    None => {}
                }
                counter_failed |= reasons.len() > n;
            }
        }
    }
    counter_failed
}

/// Load-time preparation and run, for callers holding only a scenario.
pub fn run_scenario(sc: &Scenario) -> Result<ScenarioResult, super::api::BoardSpecError> {
    if sc.pending.is_some() {
        // no board needed (its DTB may not even exist yet)
        let board = PreparedBoard { dtb: Vec::new(), ram_size: 0, bootargs: String::new(), max_insns: 0, boot_timeout_ms: 0, every_frame: false, dtb_label: None };
        return Ok(run_prepared(sc, &board));
    }
    let board = PreparedBoard::from_spec(&sc.board, sc.dir.as_deref())?;
    Ok(run_prepared(sc, &board))
}
