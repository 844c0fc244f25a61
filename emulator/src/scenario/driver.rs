//! `cmaemu sweep` and `cmaemu sweep merge`: plan, check every board and
//! output path, run (one shard or all), write the JSON lines, the table
//! (standard error) and the plot.
use super::api::PreparedBoard;
use super::axes::Axis;
use super::file::Scenario;
use super::shard::shard_from_env;
use super::sweep::{parse_seed_range, parse_shard, run_indexed};
use super::verdict::{merge, read_lines, table, Line, Plan, RunRecord};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What `cmaemu sweep FILE` was asked.
#[derive(Clone, Debug, Default)]
pub struct SweepOptions {
    pub file: PathBuf,
    /// `--seeds A..B` (else the file's `[sweep] seeds`).
    pub seeds: Option<String>,
    /// `--axis NAME=VALUES`, each.
    pub axes: Vec<String>,
    pub size_axis: Option<String>,
    pub jobs: usize,
    /// `k/M` or `auto`.
    pub shard: Option<String>,
    /// `--shard-count M` (for `--shard auto` under Kubernetes).
    pub shard_count: Option<u64>,
    /// JSON lines here (else standard output).
    pub out: Option<PathBuf>,
    /// The verdict plot (PNG) here.
    pub plot: Option<PathBuf>,
}

/// Why a sweep could not run or finish (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("{0}")]
    Input(String),
    #[error("{path}: {err}")]
    Io { path: String, err: std::io::Error },
}

fn input(e: impl std::fmt::Display) -> DriverError {
    DriverError::Input(e.to_string())
}

/// An output opened before the run (so a bad path costs no boots).
struct Output {
    name: String,
    w: Box<dyn Write>,
}

impl Output {
    fn open(path: Option<&Path>) -> Result<Output, DriverError> {
        match path {
            None => Ok(Output { name: "standard output".into(), w: Box::new(std::io::stdout()) }),
            Some(p) => {
                let f = std::fs::File::create(p).map_err(|err| DriverError::Io { path: p.display().to_string(), err })?;
                Ok(Output { name: p.display().to_string(), w: Box::new(std::io::BufWriter::new(f)) })
            }
        }
    }
    fn line(&mut self, l: &Line) -> Result<(), DriverError> {
        writeln!(self.w, "{}", l.to_json()).and_then(|_| self.w.flush()).map_err(|err| DriverError::Io { path: self.name.clone(), err })
    }
}

fn open_plot(path: Option<&Path>) -> Result<Option<(String, std::fs::File)>, DriverError> {
    path.map(|p| std::fs::File::create(p).map(|f| (p.display().to_string(), f)).map_err(|err| DriverError::Io { path: p.display().to_string(), err }))
        .transpose()
}

fn write_plot(plot: Option<(String, std::fs::File)>, plan: &Plan, combos: &[super::verdict::Combination], table: &str) -> Result<(), DriverError> {
    if let Some((name, mut f)) = plot {
        let png = super::plot::plot_png(plan, combos).map_err(input)?;
        let bytes = if name.to_ascii_lowercase().ends_with(".html") { verdict_html(plan, table, &png).into_bytes() } else { png };
        f.write_all(&bytes).map_err(|err| DriverError::Io { path: name.clone(), err })?;
        eprintln!("cmaemu: sweep: plot written to {name}");
    }
    Ok(())
}

/// `--plot FILE.html`: one self-contained page (no network) with the
/// verdict table and the plot inlined as a PNG data URI.
fn verdict_html(plan: &Plan, table: &str, png: &[u8]) -> String {
    verdict_page(&plan.scenario, table, png)
}

#[cfg(test)]
pub(super) fn verdict_html_for_test(scenario: &str, table: &str, png: &[u8]) -> String {
    verdict_page(scenario, table, png)
}

fn verdict_page(scenario: &str, table: &str, png: &[u8]) -> String {
    use base64::Engine as _;
    let esc = crate::trace::html::html_escape;
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>cmaemu sweep: {t}</title>\n\
         <style>body{{font-family:sans-serif;margin:2em}}pre{{background:#f4f4f4;padding:1em}}</style></head>\n\
         <body><h1>Sweep verdict: {t}</h1>\n<section id=\"verdict\"><h2>Verdict</h2><pre>{table}</pre></section>\n\
         <section id=\"plot\"><h2>Plot</h2><img alt=\"sweep verdict plot\" src=\"data:image/png;base64,{img}\"></section>\n</body></html>\n",
        t = esc(scenario),
        table = esc(table),
        img = base64::engine::general_purpose::STANDARD.encode(png),
    )
}

/// The plan of a sweep command (scenario, axes, seeds), checked.
pub fn plan_of(o: &SweepOptions) -> Result<(Scenario, Plan), DriverError> {
    let seeds = o.seeds.as_deref().map(parse_seed_range).transpose().map_err(input)?;
    let axes = o.axes.iter().map(|a| Axis::parse_cli(a)).collect::<Result<Vec<_>, _>>().map_err(input)?;
    let sc = Scenario::load(&o.file).map_err(input)?;
    let bytes = std::fs::read(&o.file).map_err(|err| DriverError::Io { path: o.file.display().to_string(), err })?;
    let digest = format!("sha256:{:x}", Sha256::digest(&bytes));
    let plan = Plan::new(&sc, digest, axes, seeds, o.size_axis.as_deref()).map_err(|e| input(format!("{}: {e}", o.file.display())))?;
    Ok((sc, plan))
}

/// The board of every combination this process runs builds (checked
/// before the first boot). `runs` are increasing run numbers.
fn check_boards(sc: &Scenario, plan: &Plan, file: &Path, runs: impl Iterator<Item = u64>) -> Result<(), DriverError> {
    if sc.pending.is_some() {
        return Ok(());
    }
    let mut last = None;
    for i in runs {
        let c = plan.run(i).0;
        if last == Some(c) {
            continue;
        }
        last = Some(c);
        let v = plan.scenario(sc, i);
        if let Err(e) = PreparedBoard::from_spec(&v.board, v.dir.as_deref()) {
            let params: Vec<String> = plan.params(c).iter().map(|(k, v)| format!("{k}={v}")).collect();
            let with = if params.is_empty() { String::new() } else { format!(" with {}", params.join(" ")) };
            return Err(input(format!("{}: board{with}: {e}", file.display())));
        }
    }
    Ok(())
}

/// `cmaemu sweep FILE ...`. `progress(done, total)` after each run.
/// Returns whether every run passed (or was skipped).
pub fn sweep_command(o: &SweepOptions, progress: &mut dyn FnMut(u64, u64)) -> Result<bool, DriverError> {
    let (sc, plan) = plan_of(o)?;
    let shard = match o.shard.as_deref() {
        None => None,
        Some("auto") => {
            let (engine, k, m) = shard_from_env(|v| std::env::var(v).ok(), o.shard_count).map_err(input)?;
            eprintln!("cmaemu: sweep: shard {k}/{m} from the {}", engine.name());
            Some((k, m))
        }
        Some(s) => {
            if o.shard_count.is_some() {
                return Err(input("--shard-count goes with --shard auto (k/M names the count)"));
            }
            Some(parse_shard(s).map_err(input)?)
        }
    };
    let count = plan.shard_runs(shard).map_err(|e| input(format!("{}: {e}", o.file.display())))?;
    let (k, m) = shard.unwrap_or((0, 1));
    check_boards(&sc, &plan, &o.file, (0..count).map(|j| k + j * m))?;
    let mut out = Output::open(o.out.as_deref())?;
    let plot = if shard.is_some() {
        if o.plot.is_some() {
            return Err(input("--plot draws the whole sweep's verdict: give it to `cmaemu sweep merge`, not to a shard"));
        }
        None
    } else {
        open_plot(o.plot.as_deref())?
    };
    out.line(&Line::Sweep(plan.header(shard)))?;
    let start = Instant::now();
    let mut records: Vec<RunRecord> = Vec::with_capacity(count as usize);
    let mut werr = None;
    run_indexed(count as usize, |j| plan.scenario(&sc, k + j as u64 * m), o.jobs, |j, r| {
        let rec = plan.record(k + j as u64 * m, &r);
        if werr.is_none() {
            werr = out.line(&Line::Run(rec.clone())).err();
        }
        records.push(rec);
        progress(j as u64 + 1, count);
    });
    if let Some(e) = werr {
        return Err(e);
    }
    let wall = start.elapsed().as_secs_f64();
    let passed = records.iter().filter(|r| r.pass).count();
    let failed = records.iter().filter(|r| r.status == "fail").count();
    eprintln!(
        "cmaemu: sweep {}: {} runs on {} job(s) in {wall:.1} s wall: {:.1} boots/min; {passed} passed, {failed} failed",
        plan.scenario,
        records.len(),
        o.jobs.max(1),
        if wall > 0.0 { records.len() as f64 * 60.0 / wall } else { 0.0 }
    );
    if let Some((k, m)) = shard {
        eprintln!("cmaemu: sweep: this is shard {k}/{m}: combine every shard's output with `cmaemu sweep merge`");
        return Ok(failed == 0);
    }
    let lines = plan.result_lines(&records);
    for l in lines.iter().skip(1 + records.len()) {
        out.line(l)?;
    }
    finish(&plan, &records, plot)?;
    Ok(failed == 0)
}

fn finish(plan: &Plan, records: &[RunRecord], plot: Option<(String, std::fs::File)>) -> Result<(), DriverError> {
    let (combos, smallest) = plan.verdict(records);
    let t = table(plan, &combos, &smallest);
    eprint!("{t}");
    write_plot(plot, plan, &combos, &t)
}

/// `cmaemu sweep merge SHARD...`: the whole sweep's output from its
/// shards' (exactly what one machine would have written).
pub fn merge_command(files: &[PathBuf], out: Option<&Path>, plot: Option<&Path>) -> Result<bool, DriverError> {
    let mut shards = Vec::new();
    for f in files {
        let name = f.display().to_string();
        let text = std::fs::read_to_string(f).map_err(|err| DriverError::Io { path: name.clone(), err })?;
        shards.push((name.clone(), read_lines(&name, &text).map_err(input)?));
    }
    if let Some(o) = out {
        if files.iter().any(|f| f == o) {
            return Err(input(format!("--out {}: is one of the shard files", o.display())));
        }
    }
    let (plan, records) = merge(&shards).map_err(input)?;
    let mut w = Output::open(out)?;
    let plot = open_plot(plot)?;
    for l in plan.result_lines(&records) {
        w.line(&l)?;
    }
    finish(&plan, &records, plot)?;
    Ok(records.iter().all(|r| r.status != "fail"))
}
