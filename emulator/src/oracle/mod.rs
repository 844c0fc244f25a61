//! The differential oracle: one case file drives cmaemu (in-process, the
//! guest shell) and the real Linux kernel (Debian's pinned 6.1 armmp on
//! `qemu-system-arm -M vexpress-a9`, with the oracle module and program of
//! `oracle/`), with the same DTB, RAM size and command line. Both
//! transcripts are reduced to named quantities (placement and reservation
//! lines, zone layout, `CmaTotal`/`CmaFree` after every step, the pfn of
//! every CMA/DMA allocation, ...) and compared; what cannot match (the real
//! kernel's own footprint, user-page pfns, kernel virtual addresses,
//! cmaemu's `cmaemu:` lines) is counted under a named reason, never dropped
//! silently. Nothing is compared against a stored expectation: both
//! systems run live.
mod compare;
mod qemu;

pub use compare::{compare, CaseResult, Quantity};

use crate::board::machine::{Machine, Step};
use crate::loader::{board_dtb, dtb::Dtb, images};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Errors of the oracle (bad case files, tools, runs).
#[derive(Debug, thiserror::Error)]
pub enum OracleError {
    #[error("{0}: {1}")]
    Case(String, String),
    #[error("dtc: {0}")]
    Dtc(String),
    #[error("cmaemu run of {0}: {1}")]
    Cmaemu(String, String),
    #[error("QEMU run of {0}: {1}")]
    Qemu(String, qemu::QemuError),
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
}

/// Where the case's device tree comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum DtbSource {
    /// Linux's own `vexpress-v2p-ca9.dtb` from Debian's kernel package.
    Linux,
    /// cmaemu's generated board (`cmaemu dtb`).
    Generated,
    /// A `.dts` file (relative to the case file).
    File(PathBuf),
}

/// One case: a board and the commands run on both systems.
#[derive(Clone, Debug)]
pub struct Case {
    pub name: String,
    pub description: String,
    pub dtb: DtbSource,
    pub ram: u64,
    pub bootargs: String,
    /// DTS text appended to the tree (dtc merges it): the areas and the
    /// `cmaemu,dma-test` devices of the case.
    pub dts_append: String,
    pub steps: Vec<String>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    name: Option<String>,
    #[serde(default)]
    description: String,
    dtb: String,
    ram: String,
    bootargs: String,
    #[serde(default)]
    dts_append: String,
    steps: Vec<String>,
}

impl Case {
    /// Parse a case file (`path` names it in errors and anchors `dtb`).
    pub fn parse(path: &Path, text: &str) -> Result<Case, OracleError> {
        let p = path.display().to_string();
        let f: CaseFile = toml::from_str(text).map_err(|e| OracleError::Case(p.clone(), e.to_string()))?;
        let dtb = match f.dtb.as_str() {
            "linux" => DtbSource::Linux,
            "generated" => DtbSource::Generated,
            file => DtbSource::File(path.parent().unwrap_or(Path::new(".")).join(file)),
        };
        let ram = crate::scenario::parse_size(&f.ram).map_err(|e| OracleError::Case(p.clone(), format!("ram: {e}")))?;
        if f.steps.iter().any(|s| s.trim() == "poweroff") {
            return Err(OracleError::Case(p, "steps: the oracle powers off itself; no `poweroff` step".into()));
        }
        Ok(Case {
            name: f.name.unwrap_or_else(|| path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()),
            description: f.description,
            dtb,
            ram,
            bootargs: f.bootargs,
            dts_append: f.dts_append,
            steps: f.steps,
        })
    }
}

/// The real-Linux side, as `scripts/linux-oracle.sh` prints it.
#[derive(Clone, Debug, Default)]
pub struct LinuxAssets {
    pub zimage: PathBuf,
    pub initrd: PathBuf,
    pub dtb: PathBuf,
    pub qemu: PathBuf,
    /// `LINUX_PKG LINUX_VERSION (LINUX_PIN)`, printed in every report.
    pub version: String,
}

impl LinuxAssets {
    /// From the `KEY=VALUE` lines of `scripts/linux-oracle.sh`.
    pub fn from_env_lines(text: &str) -> Result<LinuxAssets, OracleError> {
        let get = |k: &str| text.lines().find_map(|l| l.strip_prefix(k).and_then(|r| r.strip_prefix('='))).map(str::to_string);
        let need = |k: &str| get(k).ok_or_else(|| OracleError::Case("linux-oracle.sh output".into(), format!("no {k}= line")));
        Ok(LinuxAssets {
            zimage: need("ZIMAGE")?.into(),
            initrd: need("ORACLE_INITRD")?.into(),
            dtb: need("DTB")?.into(),
            qemu: need("QEMU")?.into(),
            version: format!("{} {} ({})", need("LINUX_PKG")?, need("LINUX_VERSION")?, get("LINUX_PIN").unwrap_or_else(|| "unpinned".into())),
        })
    }
}

/// What one system printed: the boot log (up to its first prompt) and each
/// step's output, with the time it took.
#[derive(Clone, Debug, Default)]
pub struct Transcript {
    pub boot: String,
    pub steps: Vec<(String, String)>,
    /// Wall time from the start to the end of the last step.
    pub wall: Duration,
    /// Of which the boot, to the first prompt.
    pub boot_wall: Duration,
}

fn dtc(args: &[&str], input: &[u8]) -> Result<Vec<u8>, OracleError> {
    use std::io::Write;
    let mut c = std::process::Command::new("dtc")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| OracleError::Dtc(format!("cannot run dtc ({e}); install device-tree-compiler")))?;
    let mut stdin = c.stdin.take().expect("piped");
    let input = input.to_vec();
    let w = std::thread::spawn(move || stdin.write_all(&input));
    let out = c.wait_with_output().map_err(|e| OracleError::Dtc(e.to_string()))?;
    let _ = w.join();
    if !out.status.success() {
        return Err(OracleError::Dtc(String::from_utf8_lossy(&out.stderr).into_owned()));
    }
    Ok(out.stdout)
}

/// The case's DTB: its source with `dts_append` merged in (dtc), `/memory`
/// set to the case's RAM (QEMU's `-m` does the same) and its bootargs.
pub fn build_dtb(case: &Case, assets: &LinuxAssets) -> Result<Vec<u8>, OracleError> {
    let mut dts = match &case.dtb {
        DtbSource::Linux => {
            let b = std::fs::read(&assets.dtb).map_err(|e| OracleError::Io(assets.dtb.display().to_string(), e))?;
            String::from_utf8_lossy(&dtc(&["-q", "-I", "dtb", "-O", "dts"], &b)?).into_owned()
        }
        DtbSource::Generated => String::from_utf8_lossy(&dtc(&["-q", "-I", "dtb", "-O", "dts"], &board_dtb::default_board_dtb(case.ram))?).into_owned(),
        DtbSource::File(p) => {
            // compile first, so that /include/s resolve beside the file
            let out = std::process::Command::new("dtc")
                .args(["-q", "-I", "dts", "-O", "dts"])
                .arg(p)
                .output()
                .map_err(|e| OracleError::Dtc(e.to_string()))?;
            if !out.status.success() {
                return Err(OracleError::Dtc(format!("{}: {}", p.display(), String::from_utf8_lossy(&out.stderr))));
            }
            String::from_utf8_lossy(&out.stdout).into_owned()
        }
    };
    dts.push('\n');
    dts.push_str(&case.dts_append);
    let blob = dtc(&["-q", "-I", "dts", "-O", "dtb"], dts.as_bytes())?;
    let mut d = Dtb::parse(&blob).map_err(|e| OracleError::Dtc(e.to_string()))?;
    d.set_memory(0x6000_0000, case.ram).map_err(|e| OracleError::Dtc(e.to_string()))?;
    d.set_bootargs(&case.bootargs).map_err(|e| OracleError::Dtc(e.to_string()))?;
    d.to_bytes().map_err(|e| OracleError::Dtc(e.to_string()))
}

/// Strip the echoed command line (the first line) and the prompt after
/// the output (a last line without newline).
/// Kernel messages (`[   12.345678] text`) are taken out first, wherever
/// they start: the real kernel's console writes them synchronously while
/// the tty's echo of the command may still be queued, so one can land in
/// the middle of the echoed line. They come first in the result.
fn step_text(raw: &str) -> String {
    let raw = raw.replace('\r', "");
    let (mut kmsgs, rest) = split_kmsg(&raw);
    let body = rest.split_once('\n').map(|(_, r)| r).unwrap_or("");
    if let Some(i) = body.rfind('\n') {
        kmsgs.push_str(&body[..=i]);
    }
    kmsgs
}

/// The length of a printk timestamp `[ddddd.dddddd] ` at the start of `s`.
fn stamp_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let close = s.find("] ")?;
    let inner = &s[1..close];
    let ok = b.first() == Some(&b'[') && inner.contains('.') && inner.trim_start().chars().all(|c| c.is_ascii_digit() || c == '.') && !inner.trim().is_empty();
    ok.then_some(close + 2)
}

/// (every kernel message line, the text without them).
fn split_kmsg(s: &str) -> (String, String) {
    let (mut k, mut rest) = (String::new(), String::new());
    let mut i = 0;
    while i < s.len() {
        if s.as_bytes()[i] == b'[' && stamp_len(&s[i..]).is_some() {
            let end = s[i..].find('\n').map(|e| i + e + 1).unwrap_or(s.len());
            k.push_str(&s[i..end]);
            if !k.ends_with('\n') {
                k.push('\n');
            }
            i = end;
            continue;
        }
        let c = s[i..].chars().next().unwrap_or(' ');
        rest.push(c);
        i += c.len_utf8();
    }
    (k, rest)
}

/// The commands the oracle runs after a step on both systems, their
/// output appended to the step's: after `cat /proc/meminfo`, `cmastat`
/// (per zone with CMA: the free CMA pages counted exactly, as meminfo's
/// counter shows them, and the CMA pages on the per-CPU lists), which
/// the comparison uses to normalise `CmaFree` by name (see
/// `compare::cmafree_normalised`).
pub fn follow_ups(cmd: &str) -> &'static [&'static str] {
    if cmd.trim() == "cat /proc/meminfo" {
        &["cmastat"]
    } else {
        &[]
    }
}

/// Run the case on cmaemu (the guest kernel of this build).
pub fn run_cmaemu(case: &Case, dtb: &[u8]) -> Result<Transcript, OracleError> {
    let t0 = Instant::now();
    let err = |e: String| OracleError::Cmaemu(case.name.clone(), e);
    let mut m = Machine::new(images::KERNEL_ELF, images::FIRMWARE_ELF, dtb, case.ram, 200_000_000_000).map_err(|e| err(e.to_string()))?;
    if m.run_until_idle() != Step::Paused {
        return Err(err(format!("did not reach the shell: {}", tail(&m.output()))));
    }
    let mut t = Transcript { boot: m.output().replace('\r', ""), boot_wall: t0.elapsed(), ..Default::default() };
    for cmd in &case.steps {
        let mut text = String::new();
        for c in std::iter::once(cmd.as_str()).chain(follow_ups(cmd).iter().copied()) {
            let before = m.output().len();
            if m.command(c) != Step::Paused {
                return Err(err(format!("`{c}` did not return to the prompt: {}", tail(&m.output()))));
            }
            text.push_str(&step_text(&m.output()[before..]));
        }
        t.steps.push((cmd.clone(), text));
    }
    t.wall = t0.elapsed();
    Ok(t)
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(8)..].join("\n")
}

pub use qemu::{run_qemu, QemuError};

/// Parse, build and run one case on both systems and compare.
pub fn run_case(path: &Path, assets: &LinuxAssets) -> Result<CaseResult, OracleError> {
    let text = std::fs::read_to_string(path).map_err(|e| OracleError::Io(path.display().to_string(), e))?;
    let case = Case::parse(path, &text)?;
    let dtb = build_dtb(&case, assets)?;
    // QEMU in a thread beside cmaemu: two cores, two systems.
    let (c2, d2, a2) = (case.clone(), dtb.clone(), assets.clone());
    let q = std::thread::spawn(move || run_qemu(&c2, &d2, &a2));
    let emu = run_cmaemu(&case, &dtb);
    let linux = q.join().map_err(|_| OracleError::Qemu(case.name.clone(), qemu::QemuError::Panicked))??;
    let emu = emu?;
    Ok(compare(&case, &emu, &linux))
}

/// One case's wall times over the rounds of `cmaemu oracle --bench`:
/// (whole case, of which the boot) per round, each system run alone.
#[derive(Clone, Debug, Default)]
pub struct BenchRow {
    pub name: String,
    pub cmaemu: Vec<(Duration, Duration)>,
    pub linux: Vec<(Duration, Duration)>,
}

/// The load average (`/proc/loadavg`'s first three figures).
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" ")).unwrap_or_else(|_| "?".into())
}

/// Time every case `rounds` times on each system, one system at a time
/// (so that neither shares the cores with the other), interleaved: in
/// even rounds cmaemu runs a case first, in odd rounds QEMU does.
/// `progress` hears each run.
pub fn bench(paths: &[PathBuf], assets: &LinuxAssets, rounds: usize, progress: &mut dyn FnMut(&str)) -> Result<Vec<BenchRow>, OracleError> {
    let mut cases = Vec::new();
    for p in paths {
        let text = std::fs::read_to_string(p).map_err(|e| OracleError::Io(p.display().to_string(), e))?;
        let case = Case::parse(p, &text)?;
        let dtb = build_dtb(&case, assets)?;
        cases.push((case, dtb));
    }
    let mut rows: Vec<BenchRow> = cases.iter().map(|(c, _)| BenchRow { name: c.name.clone(), ..Default::default() }).collect();
    for r in 0..rounds {
        for ((case, dtb), row) in cases.iter().zip(rows.iter_mut()) {
            for side in if r % 2 == 0 { [0, 1] } else { [1, 0] } {
                let t = if side == 0 { run_cmaemu(case, dtb)? } else { run_qemu(case, dtb, assets)? };
                progress(&format!("round {}: {} on {}: {:.2} s (boot {:.2} s), load {}", r + 1, case.name, if side == 0 { "cmaemu" } else { "QEMU+Linux" }, t.wall.as_secs_f64(), t.boot_wall.as_secs_f64(), loadavg()));
                if side == 0 { &mut row.cmaemu } else { &mut row.linux }.push((t.wall, t.boot_wall));
            }
        }
    }
    Ok(rows)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The benchmark's table (markdown): per case the median whole-case and
/// steps-only wall times on each system and their ratios (QEMU / cmaemu).
pub fn bench_report(rows: &[BenchRow], assets: &LinuxAssets, rounds: usize, load: (&str, &str)) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "# cmaemu vs QEMU + Linux, wall time per case\n\nReal kernel: {} on {} -M vexpress-a9 (TCG). Median of {rounds} rounds, each system alone, interleaved (cmaemu first in odd rounds, QEMU first in even ones). Whole case = boot to the first prompt + the steps (with the oracle's `cmastat` after each `cat /proc/meminfo`); steps = after the first prompt. Load average (1/5/15 min) at the start {} and at the end {}.\n\n",
        assets.version,
        assets.qemu.display(),
        load.0,
        load.1
    ));
    s.push_str("| case | cmaemu s | QEMU+Linux s | QEMU/cmaemu | cmaemu boot s | QEMU boot s | cmaemu steps s | QEMU steps s | steps QEMU/cmaemu |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for r in rows {
        let whole = |v: &[(Duration, Duration)]| median(v.iter().map(|x| x.0.as_secs_f64()).collect());
        let boot = |v: &[(Duration, Duration)]| median(v.iter().map(|x| x.1.as_secs_f64()).collect());
        let steps = |v: &[(Duration, Duration)]| median(v.iter().map(|x| (x.0 - x.1).as_secs_f64()).collect());
        let (cw, lw, cs, ls) = (whole(&r.cmaemu), whole(&r.linux), steps(&r.cmaemu), steps(&r.linux));
        s.push_str(&format!(
            "| {} | {:.3} | {:.2} | {:.1}x | {:.3} | {:.2} | {:.3} | {:.2} | {:.1}x |\n",
            r.name,
            cw,
            lw,
            lw / cw.max(1e-9),
            boot(&r.cmaemu),
            boot(&r.linux),
            cs,
            ls,
            ls / cs.max(1e-9)
        ));
    }
    s
}

impl Transcript {
    /// The transcript as one text: the boot log, then each step as
    /// `$ command` and its output.
    pub fn text(&self) -> String {
        let mut s = self.boot.clone();
        if !s.ends_with('\n') {
            s.push('\n');
        }
        for (cmd, out) in &self.steps {
            s.push_str(&format!("$ {cmd}\n{out}"));
            if !out.is_empty() && !out.ends_with('\n') {
                s.push('\n');
            }
        }
        s
    }
}

/// Both transcripts side by side, `width` columns each (cmaemu left, Linux
/// right), step by step: the boot logs, then each step's output.
pub fn side_by_side(emu: &Transcript, linux: &Transcript, width: usize) -> String {
    let mut s = String::new();
    let mut block = |title: &str, a: &str, b: &str| {
        s.push_str(&format!("==== {title}\n{:<width$} | {}\n", "cmaemu", "Linux"));
        let (la, lb): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
        for i in 0..la.len().max(lb.len()) {
            let l = la.get(i).copied().unwrap_or("");
            let r = lb.get(i).copied().unwrap_or("");
            let l: String = l.chars().take(width).collect();
            let mark = if la.get(i) == lb.get(i) { '|' } else { '*' };
            s.push_str(&format!("{l:<width$} {mark} {r}\n"));
        }
    };
    block("boot", &emu.boot, &linux.boot);
    for (i, (cmd, a)) in emu.steps.iter().enumerate() {
        let b = linux.steps.get(i).map(|(_, o)| o.as_str()).unwrap_or("(not run)");
        block(&format!("step {} `{cmd}`", i + 1), a, b);
    }
    s
}

/// Save a case's transcripts in `dir`: CASE.cmaemu.txt, CASE.linux.txt and
/// CASE.side.txt (side by side, differing lines marked `*`).
pub fn save_transcripts(dir: &Path, r: &CaseResult) -> Result<(), OracleError> {
    let io = |p: &Path, e| OracleError::Io(p.display().to_string(), e);
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let (emu, linux) = &r.transcripts;
    for (ext, text) in [("cmaemu.txt", emu.text()), ("linux.txt", linux.text()), ("side.txt", side_by_side(emu, linux, 80))] {
        let p = dir.join(format!("{}.{ext}", r.name));
        std::fs::write(&p, text).map_err(|e| io(&p, e))?;
    }
    Ok(())
}

/// The report of a suite (markdown).
pub fn report(results: &[CaseResult], assets: &LinuxAssets) -> String {
    compare::report(results, assets)
}

#[cfg(test)]
mod tests;
