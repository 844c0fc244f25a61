//! `cmaemu test FILE...`: run scenario files (in parallel with `-j`),
//! print each result, write the JUnit XML, HTML reports and golden
//! artifacts asked for.
use super::{bad_input, progress_bar, EXIT_SCENARIO_FAILED};
use crate::{outpath, scenario};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args, Clone)]
pub struct TestArgs {
    /// Scenario files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Write a JUnit XML report here.
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Value of `{seed}` (default: each file's `seed`, else 0).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Run this many scenarios in parallel.
    #[arg(short, long, default_value_t = 1)]
    pub jobs: usize,
    /// Write an HTML report of each scenario's run here (DIR/FILE-STEM.html;
    /// the directory is created).
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
    /// Write each scenario's console bytes, counts and trace (all three
    /// formats) here: DIR/FILE-STEM.{console,stats,jsonl,perfetto.json,ftrace}
    /// (the directory is created; what tests/golden.rs compares).
    #[arg(long, value_name = "DIR")]
    pub trace_dir: Option<PathBuf>,
}

/// A scenario file that cannot run.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Scenario(#[from] scenario::ScenarioError),
    /// Its `[board]` table describes no board that can be built.
    #[error("{}: board: {source}", file.display())]
    Board { file: PathBuf, source: scenario::BoardSpecError },
}

fn print_result(pb: &indicatif::ProgressBar, r: &scenario::ScenarioResult) {
    let file = r.file.as_deref().map(|f| format!(" ({f})")).unwrap_or_default();
    let timing = format!(
        "virtual {:.1} ms, {} instructions, wall {:.1} s",
        r.virtual_ns as f64 / 1e6,
        r.insns,
        r.wall.as_secs_f64()
    );
    let mut text = match r.status {
        scenario::Status::Pass => format!("PASS {}{file}: {timing}", r.name),
        scenario::Status::Skipped => format!("SKIP {}{file}: {}", r.name, r.reasons.join("; ")),
        scenario::Status::Fail => {
            let mut t = format!("FAIL {}{file}: {timing}", r.name);
            for why in &r.reasons {
                t.push_str(&format!("\n  - {why}"));
            }
            if !r.console_tail.is_empty() {
                t.push_str("\n  last console lines:");
                for l in &r.console_tail {
                    t.push_str(&format!("\n    | {l}"));
                }
            }
            t
        }
    };
    text.retain(|c| c == '\n' || !c.is_control());
    pb.suspend(|| println!("{text}"));
}

fn load_scenarios(files: &[PathBuf], seed: Option<u64>) -> Result<Vec<(scenario::Scenario, Option<scenario::PreparedBoard>)>, LoadError> {
    let mut out = Vec::new();
    for f in files {
        let sc = scenario::Scenario::load(f)?;
        let sc = sc.with_seed(seed.unwrap_or(sc.seed));
        let board = if sc.pending.is_some() {
            None
        } else {
            Some(scenario::PreparedBoard::from_spec(&sc.board, sc.dir.as_deref()).map_err(|source| LoadError::Board { file: f.clone(), source })?)
        };
        out.push((sc, board));
    }
    Ok(out)
}

fn summary_line(results: &[scenario::ScenarioResult]) -> String {
    let pass = results.iter().filter(|r| r.status == scenario::Status::Pass).count();
    let fail = results.iter().filter(|r| r.status == scenario::Status::Fail).count();
    let skip = results.iter().filter(|r| r.status == scenario::Status::Skipped).count();
    format!("scenarios: {pass} passed, {fail} failed, {skip} skipped")
}

/// `cmaemu test FILE...`.
pub fn run(a: TestArgs) -> ExitCode {
    if let Some(p) = &a.junit {
        if let Err(e) = outpath::check_file("--junit", p) {
            return bad_input(e);
        }
    }
    if let Some(d) = &a.report {
        if let Err(e) = outpath::prepare_dir("--report", d) {
            return bad_input(e);
        }
    }
    if let Some(d) = &a.trace_dir {
        if let Err(e) = outpath::prepare_dir("--trace-dir", d) {
            return bad_input(e);
        }
    }
    let mut list = match load_scenarios(&a.files, a.seed) {
        Ok(l) => l,
        Err(e) => return bad_input(e),
    };
    if a.report.is_some() || a.trace_dir.is_some() {
        for (_, b) in list.iter_mut() {
            if let Some(b) = b {
                b.every_frame = true;
            }
        }
    }
    let report_errors = std::sync::Mutex::new(Vec::<String>::new());
    let pb = progress_bar(list.len(), "scenarios");
    let results = crate::pool::map(list.len(), a.jobs, |i| {
        let (sc, board) = &list[i];
        pb.set_message(sc.name.clone());
        let stem = a.files[i].file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| sc.name.clone());
        let mut r = match board {
            Some(b) => scenario::run_prepared_with(sc, b, &mut |s, reasons| {
                if let Some(dir) = &a.report {
                    let path = dir.join(format!("{stem}.html"));
                    if let Err(e) = scenario::artifacts::write_html_report(&path, sc, s, reasons) {
                        report_errors.lock().unwrap_or_else(|p| p.into_inner()).push(format!("--report {}: {e}", path.display()));
                    }
                }
                if let Some(dir) = &a.trace_dir {
                    if let Err(e) = scenario::artifacts::write_run_files(dir, &stem, s, reasons) {
                        report_errors.lock().unwrap_or_else(|p| p.into_inner()).push(format!("--trace-dir {e}"));
                    }
                }
            }),
            None => match scenario::run_scenario(sc) {
                Ok(r) => r,
                Err(e) => unreachable_board(sc, e),
            },
        };
        r.file = Some(a.files[i].display().to_string());
        print_result(&pb, &r);
        pb.inc(1);
        r
    });
    pb.finish_and_clear();
    if let Some(path) = &a.junit {
        if let Err(e) = std::fs::write(path, scenario::junit_xml("cmaemu", &results)) {
            return bad_input(format!("--junit {}: {e}", path.display()));
        }
    }
    println!("{}", summary_line(&results));
    let report_errors = report_errors.into_inner().unwrap_or_else(|p| p.into_inner());
    if !report_errors.is_empty() {
        return bad_input(report_errors.join("; "));
    }
    if results.iter().any(|r| r.status == scenario::Status::Fail) {
        ExitCode::from(EXIT_SCENARIO_FAILED)
    } else {
        ExitCode::SUCCESS
    }
}

/// A pending scenario needs no board; anything else was prepared at load.
fn unreachable_board(sc: &scenario::Scenario, e: scenario::BoardSpecError) -> scenario::ScenarioResult {
    scenario::ScenarioResult {
        name: sc.name.clone(),
        file: None,
        seed: sc.seed,
        status: scenario::Status::Fail,
        reasons: vec![format!("board: {e}")],
        virtual_ns: 0,
        insns: 0,
        wall: Duration::ZERO,
        console_tail: Vec::new(),
        metrics: Default::default(),
    }
}
