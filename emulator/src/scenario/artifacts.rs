//! `cmaemu test --trace-dir DIR`: the files a scenario run leaves behind,
//! one set per scenario file (`STEM` is the file's stem):
//!
//! - `STEM.console`: the console's bytes as the guest wrote them;
//! - `STEM.stats`: the run's counts (as `cmaemu boot --stats` prints them,
//!   without the wall-clock fields) and its result with the reasons;
//! - `STEM.jsonl`, `STEM.perfetto.json`, `STEM.ftrace`: its trace in the
//!   three formats of `cmaemu boot --trace-format`.
//!
//! All of it is deterministic (virtual time), so two runs of one scenario
//! write the same bytes: `tests/golden.rs` compares them with the recorded
//! golden outputs under `tests/golden/`.
use super::api::Session;
use super::file::Scenario;
use crate::trace;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The trace formats written, with their file suffixes.
pub const TRACE_FILES: [(trace::TraceFormat, &str); 3] = [(trace::TraceFormat::Jsonl, "jsonl"), (trace::TraceFormat::Perfetto, "perfetto.json"), (trace::TraceFormat::Ftrace, "ftrace")];

/// `DIR/STEM.SUFFIX`.
pub fn artifact_path(dir: &Path, stem: &str, suffix: &str) -> PathBuf {
    dir.join(format!("{stem}.{suffix}"))
}

/// The counts of a finished run, one line (the fields of `boot --stats`
/// that do not depend on the host: not the wall time, the speed, nor
/// `tlb_fills`, which follows Unicorn's TLB resizing, timed in wall-clock
/// windows), then the result and the reasons it failed, one per line.
pub fn stats_text(s: &mut Session, reasons: &[String]) -> String {
    let st = s.machine().stats();
    let ((ok, bad), (camera, display)) = s.machine().frames();
    let (repeated, dropped) = s.machine().stutter();
    let violations = s.machine().violations().len();
    let mut t = format!(
        "retired_instructions={} virtual_time_ns={} idle_ns={} blocks={} irqs={} exceptions={} wfi={} camera_frames={camera} display_frames={display} scanout_ok={ok} scanout_bad={bad} frames_repeated={repeated} camera_frames_dropped={dropped} violations={violations}\n",
        st.insns,
        s.now_ns(),
        st.idle_ns,
        st.blocks,
        st.irqs,
        st.exceptions,
        st.wfi,
    );
    t.push_str(if reasons.is_empty() { "result=PASS\n" } else { "result=FAIL\n" });
    for r in reasons {
        t.push_str(&format!("reason: {r}\n"));
    }
    t
}

/// Write the console, the counts and the three traces of a finished run.
pub fn write_run_files(dir: &Path, stem: &str, s: &mut Session, reasons: &[String]) -> io::Result<()> {
    let with_path = |p: &Path, e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", p.display()));
    let console = artifact_path(dir, stem, "console");
    std::fs::write(&console, s.console_bytes()).map_err(|e| with_path(&console, e))?;
    let stats = artifact_path(dir, stem, "stats");
    std::fs::write(&stats, stats_text(s, reasons)).map_err(|e| with_path(&stats, e))?;
    for (format, suffix) in TRACE_FILES {
        let path = artifact_path(dir, stem, suffix);
        let write = |w: &mut dyn Write| -> io::Result<()> { format.write(s.machine_ref().events(), w) };
        let f = std::fs::File::create(&path).map_err(|e| with_path(&path, e))?;
        let mut w = io::BufWriter::new(f);
        write(&mut w).and_then(|_| w.flush()).map_err(|e| with_path(&path, e))?;
    }
    Ok(())
}

/// `cmaemu test --report DIR`: the HTML report of one scenario's run
/// (`DIR/STEM.html`).
pub fn write_html_report(path: &Path, sc: &Scenario, s: &mut Session, reasons: &[String]) -> io::Result<()> {
    let mut extra = vec![
        ("scenario".to_string(), format!("{} (seed {})", sc.name, sc.seed)),
        ("result".to_string(), if reasons.is_empty() { "PASS".to_string() } else { format!("FAIL: {}", reasons.join("; ")) }),
        ("retired instructions".to_string(), s.insns().to_string()),
    ];
    if let Some(d) = &sc.description {
        extra.insert(1, ("description".to_string(), d.clone()));
    }
    let f = std::fs::File::create(path)?;
    let mut w = io::BufWriter::new(f);
    trace::html::write_report(s.machine().events(), &sc.name, &extra, &mut w)?;
    w.flush()
}
