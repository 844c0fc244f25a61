//! `cmaemu matrix`: every fault injection against every workload, and
//! the verdict (each fired injection caught, clean runs clean, each
//! injection firing in at least two workloads).
use super::bad_input;
use crate::scenario::{self, matrix};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Clone)]
pub struct MatrixArgs {
    /// The reduced matrix CI runs (the small-RAM workload only).
    #[arg(long)]
    pub quick: bool,
    /// Worker threads.
    #[arg(short, long, default_value_t = 1)]
    pub jobs: usize,
    /// Value of `{seed}` (default: each workload's own).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Only these injections (repeatable; default: all).
    #[arg(long = "inject", value_name = "NAME")]
    pub inject: Vec<String>,
    /// Workload scenario files instead of the shipped ones.
    pub files: Vec<PathBuf>,
}

/// `cmaemu matrix`.
pub fn run(a: MatrixArgs) -> ExitCode {
    let known = matrix::injections();
    for i in &a.inject {
        if !known.contains(&i.as_str()) {
            return bad_input(format!("--inject {i}: not a fault injection (known: {})", known.join(", ")));
        }
    }
    let workloads: Vec<(String, String)> = if a.files.is_empty() {
        matrix::WORKLOADS
            .iter()
            .filter(|(n, _)| !a.quick || matrix::QUICK_WORKLOADS.contains(n))
            .map(|(n, s)| (n.to_string(), s.to_string()))
            .collect()
    } else {
        let mut v = Vec::new();
        for f in &a.files {
            match std::fs::read_to_string(f) {
                Ok(s) => match scenario::Scenario::parse(&f.display().to_string(), &s) {
                    Ok(_) => v.push((f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(), s)),
                    Err(e) => return bad_input(e),
                },
                Err(e) => return bad_input(format!("{}: {e}", f.display())),
            }
        }
        v
    };
    let mut injections: Vec<Option<String>> = vec![None];
    injections.extend(known.iter().filter(|n| a.inject.is_empty() || a.inject.iter().any(|i| i == *n)).map(|n| Some(n.to_string())));
    eprintln!("cmaemu matrix: {} workload(s) x {} run(s) each, {} job(s)", workloads.len(), injections.len(), a.jobs);
    let done = std::sync::atomic::AtomicUsize::new(0);
    let total = workloads.len() * injections.len();
    let cells = matrix::run_matrix(&workloads, &injections, a.jobs, a.seed, |c| {
        let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        eprintln!("  [{n}/{total}] {} / {}: fired {}, violations {}", c.workload, c.injection.as_deref().unwrap_or("(clean)"), c.fired, c.violations.total);
    });
    print!("{}", matrix::format_table(&cells));
    let (mut problems, per) = matrix::verdict(&cells);
    let need = if workloads.len() >= 2 { 2 } else { 1 };
    for (i, ws) in &per {
        if ws.len() < need {
            problems.push(format!("{i} fired in {} workload(s) ({}), fewer than {need}", ws.len(), ws.join(", ")));
        }
    }
    let (fired, caught, clean, dirty) = matrix::counts(&cells);
    println!();
    println!("fired cells: {fired}, caught: {caught} ({:.0} %); clean runs: {clean}, with violations: {dirty}", if fired == 0 { 100.0 } else { caught as f64 * 100.0 / fired as f64 });
    for (i, ws) in &per {
        println!("  {i:<22} fired in {}: {}", ws.len(), ws.join(", "));
    }
    if problems.is_empty() {
        println!("matrix: PASS");
        ExitCode::SUCCESS
    } else {
        for p in &problems {
            println!("matrix: FAIL {p}");
        }
        ExitCode::from(1)
    }
}
