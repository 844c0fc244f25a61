//! Golden outputs: the console bytes, counts (`--stats`) and traces (JSON
//! lines, Perfetto JSON, ftrace text) of every example scenario, of the
//! catch-matrix workloads, of the small-RAM workload under several fault
//! injections, and of a few `cmaemu boot` runs (piped console input,
//! injections, `--on-violation stop`, `--max-insns`), compared byte for
//! byte with the files recorded under `tests/golden/`.
//!
//! A refactor must reproduce them exactly. A change that alters guest or
//! trace behaviour on purpose re-records them in the same commit and says
//! in its message what changed and why:
//!
//! ```text
//! bash scripts/golden-record.sh
//! # = CMAEMU_GOLDEN_RECORD=1 cargo test --release -p cmaemu --test golden
//! git diff --stat tests/golden/
//! ```
//!
//! Recording runs every case as the comparison does (each `boot` case once
//! per trace format, all of them checked against one another), then
//! rewrites `tests/golden/CASE/` (files over 16 KiB gzip-compressed; read
//! them with `zcat`) and removes directories of cases that no longer
//! exist. A new file in `examples/` or `examples/matrix/` becomes a case by
//! itself and fails until recorded.
//!
//! A change to the guest kernel's code changes the instructions it
//! retires, and virtual time is retired instructions: every time stamp
//! moves, and the host's per-frame samples (free-page counters, page
//! states) catch the guest a few instructions earlier or later. Such a
//! change (a guest refactor) is checked with the untimed comparison, then
//! re-recorded:
//!
//! ```text
//! CMAEMU_GOLDEN_UNTIMED=1 cargo test --release -p cmaemu --test golden
//! ```
//!
//! It masks virtual time stamps (`ts_ns`, `ts`, `dur`, printk's and
//! ftrace's `[s.uuuuuu]`, `@… us`, `@…ns`), the instruction-derived counts
//! of the stats, and leaves out the host's samples taken at frame
//! boundaries (`counters`, `page_states` events, Perfetto counters), and
//! the kernel image's section sizes in the `Memory:` line (the image's end
//! is pinned in `guest/kernel/link.ld`, so pfns and the available and
//! reserved figures do not move with code size); the console text, every
//! guest event and its fields, the verdicts, the violations and the exit
//! status must still be identical.
//!
//! On a mismatch the test names the case and file, the first differing
//! line with the lines around it in both versions, and leaves the new
//! output in `$CARGO_TARGET_TMPDIR/golden-actual/CASE/` for a full `diff`.
//! Cases run on every core in parallel, each as its own `cmaemu` process.
use flate2::read::GzDecoder;
use flate2::{Compression, GzBuilder};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// The trace formats of `cmaemu boot --trace-format`, with the file
/// suffixes `cmaemu test --trace-dir` uses.
const ALL_FORMATS: [(&str, &str); 3] = [("jsonl", "jsonl"), ("perfetto", "perfetto.json"), ("ftrace", "ftrace")];
/// JSON lines only (the richest format; the large matrix workloads keep
/// the repository small with it alone).
const JSONL_ONLY: [(&str, &str); 1] = [("jsonl", "jsonl")];
/// Files above this size are stored gzip-compressed.
const GZIP_ABOVE: usize = 16 << 10;

/// The fault injections run on the small-RAM workload.
const INJECTIONS: [&str; 6] = ["skip_copy", "leak_bitmap", "ignore_pin", "skip_tlb_flush", "dma_during_migration", "rmap_miss"];

enum Kind {
    /// `cmaemu test FILE --trace-dir DIR`, the file with `inject` added.
    Scenario { file: PathBuf, inject: Option<&'static str> },
    /// `cmaemu boot ARGS --stats --trace FILE --trace-format F`, console
    /// input piped, once per format.
    Boot { args: &'static [&'static str], stdin: &'static str },
}

struct Case {
    name: String,
    kind: Kind,
    formats: &'static [(&'static str, &'static str)],
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn golden_dir() -> PathBuf {
    root().join("tests/golden")
}

fn recording() -> bool {
    std::env::var_os("CMAEMU_GOLDEN_RECORD").is_some_and(|v| !v.is_empty() && v != "0")
}

fn toml_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    v.sort();
    v
}

fn stem(p: &Path) -> String {
    p.file_stem().unwrap().to_string_lossy().into_owned()
}

/// Every case: the examples (all formats), the matrix workloads (JSON
/// lines; the small-RAM one in all formats), the injections on the
/// small-RAM workload and the boot runs.
fn all_cases() -> Vec<Case> {
    let mut v = Vec::new();
    for f in toml_files(&root().join("examples")) {
        v.push(Case { name: format!("example-{}", stem(&f)), kind: Kind::Scenario { file: f, inject: None }, formats: &ALL_FORMATS });
    }
    let matrix = root().join("examples/matrix");
    for f in toml_files(&matrix) {
        let formats: &[_] = if stem(&f) == "small-ram" { &ALL_FORMATS } else { &JSONL_ONLY };
        v.push(Case { name: format!("matrix-{}", stem(&f)), kind: Kind::Scenario { file: f, inject: None }, formats });
    }
    for inj in INJECTIONS {
        v.push(Case {
            name: format!("inject-{inj}"),
            kind: Kind::Scenario { file: matrix.join("small-ram.toml"), inject: Some(inj) },
            formats: &ALL_FORMATS,
        });
    }
    let boots: [(&str, &'static [&'static str], &'static str, &'static [(&'static str, &'static str)]); 4] = [
        (
            "boot-256m",
            &["-m", "256M"],
            "fill 120 5\nshare 0 8\necho 4096 > /sys/kernel/debug/cma/linux,cma/alloc\npreview 6\ncat /proc/vmstat\ncat /proc/pagetypeinfo\npoweroff\n",
            &ALL_FORMATS,
        ),
        (
            "boot-skip-copy",
            &["-m", "64M", "--append", "console=ttyAMA0 cma=8M cmaemu.inject=skip_copy"],
            "fill 40 3\necho 1984 > /sys/kernel/debug/cma/reserved/alloc\ncheck\npoweroff\n",
            &ALL_FORMATS,
        ),
        (
            "boot-leak-bitmap-stop",
            &["-m", "64M", "--append", "console=ttyAMA0 cma=8M cmaemu.inject=leak_bitmap", "--on-violation", "stop"],
            "fill 40 3\necho 1024 > /sys/kernel/debug/cma/reserved/alloc\necho 1024 > /sys/kernel/debug/cma/reserved/free\nsleep 40\npoweroff\n",
            &JSONL_ONLY,
        ),
        ("boot-max-insns", &["-m", "64M", "--max-insns", "60000000"], "fill 40 3\npoweroff\n", &JSONL_ONLY),
    ];
    for (name, args, stdin, formats) in boots {
        v.push(Case { name: name.to_string(), kind: Kind::Boot { args, stdin }, formats });
    }
    v
}

/// The outputs of one case: (file name, bytes), in a fixed order.
type Outputs = Vec<(String, Vec<u8>)>;

fn have_dtc() -> bool {
    Command::new("dtc").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

fn needs_dtc(file: &Path) -> bool {
    std::fs::read_to_string(file).is_ok_and(|s| s.lines().any(|l| l.trim_start().starts_with("dtb") && l.contains(".dts")))
}

fn scratch(case: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cmaemu-golden-{}", std::process::id())).join(case);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `boot --stats` prints the host's wall time and speed, and `tlb_fills`
/// (Unicorn resizes its TLB in wall-clock windows, as QEMU does): not
/// golden.
fn mask_wall_clock(stderr: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(stderr);
    let mut out = String::new();
    for line in text.split_inclusive('\n') {
        let masked: Vec<String> = line
            .split(' ')
            .map(|w| {
                if w.starts_with("wall_ms=") {
                    "wall_ms=_".to_string()
                } else if w.starts_with("mips=") {
                    "mips=_".to_string()
                } else if w.starts_with("tlb_fills=") {
                    "tlb_fills=_".to_string()
                } else {
                    w.to_string()
                }
            })
            .collect();
        out.push_str(&masked.join(" "));
    }
    out.into_bytes()
}

fn run_scenario(case: &Case, file: &Path, inject: Option<&str>) -> Result<Outputs, String> {
    let dir = scratch(&case.name);
    let file = match inject {
        None => file.to_path_buf(),
        Some(inj) => {
            // The workload with `inject` added to its board, beside the
            // original so that relative paths resolve alike.
            let text = std::fs::read_to_string(file).unwrap();
            assert!(text.contains("\n[board]\n"), "{}: no [board] table", file.display());
            let text = text.replacen("\n[board]\n", &format!("\n[board]\ninject = [\"{inj}\"]\n"), 1);
            let p = dir.join(format!("{}.toml", case.name));
            std::fs::write(&p, text).unwrap();
            p
        }
    };
    let out_dir = dir.join("out");
    let out = Command::new(env!("CARGO_BIN_EXE_cmaemu"))
        .arg("test")
        .arg(&file)
        .arg("--trace-dir")
        .arg(&out_dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run cmaemu: {e}"))?;
    let code = out.status.code();
    if code != Some(0) && code != Some(1) {
        return Err(format!("cmaemu test exited {code:?}\nstdout:\n{}\nstderr:\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)));
    }
    let s = stem(&file);
    let mut files = vec!["console".to_string(), "stats".to_string()];
    files.extend(case.formats.iter().map(|(_, suffix)| suffix.to_string()));
    let mut outputs = Vec::new();
    for f in files {
        let p = out_dir.join(format!("{s}.{f}"));
        let bytes = std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        outputs.push((f, bytes));
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(outputs)
}

fn run_boot(case: &Case, args: &[&str], stdin: &str) -> Result<Outputs, String> {
    let dir = scratch(&case.name);
    let mut first: Option<Outputs> = None;
    let mut traces = Vec::new();
    for (format, suffix) in case.formats {
        let trace = dir.join(format!("trace.{suffix}"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_cmaemu"))
            .arg("boot")
            .args(args)
            .arg("--stats")
            .arg("--trace")
            .arg(&trace)
            .args(["--trace-format", format])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run cmaemu: {e}"))?;
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        let status = format!("exit status {}\n", out.status.code().map_or("none (signal)".to_string(), |c| c.to_string()));
        let these = vec![
            ("console".to_string(), out.stdout),
            ("stderr".to_string(), mask_wall_clock(&out.stderr)),
            ("status".to_string(), status.into_bytes()),
        ];
        // Every format's run must print the same console, counts and status.
        match &first {
            None => first = Some(these),
            Some(f) => {
                for ((name, a), (_, b)) in f.iter().zip(&these) {
                    if a != b {
                        return Err(format!("the --trace-format {format} run differs from the first in {name}:\n{}", first_difference(a, b)));
                    }
                }
            }
        }
        traces.push((suffix.to_string(), std::fs::read(&trace).map_err(|e| format!("{}: {e}", trace.display()))?));
    }
    let _ = std::fs::remove_dir_all(&dir);
    let mut outputs = first.unwrap();
    outputs.extend(traces);
    Ok(outputs)
}

fn run_case(case: &Case) -> Result<Outputs, String> {
    match &case.kind {
        Kind::Scenario { file, inject } => run_scenario(case, file, *inject),
        Kind::Boot { args, stdin } => run_boot(case, args, stdin),
    }
}

/// A recorded file (`NAME` or `NAME.gz`), decompressed.
fn read_golden(dir: &Path, name: &str) -> Option<Vec<u8>> {
    if let Ok(b) = std::fs::read(dir.join(name)) {
        return Some(b);
    }
    let gz = std::fs::read(dir.join(format!("{name}.gz"))).ok()?;
    let mut out = Vec::new();
    GzDecoder::new(&gz[..]).read_to_end(&mut out).unwrap_or_else(|e| panic!("{}/{name}.gz: {e}", dir.display()));
    Some(out)
}

fn write_golden(dir: &Path, name: &str, bytes: &[u8]) {
    if bytes.len() > GZIP_ABOVE {
        let f = std::fs::File::create(dir.join(format!("{name}.gz"))).unwrap();
        // No name, no time stamp: the same bytes compress the same.
        let mut w = GzBuilder::new().mtime(0).write(f, Compression::best());
        w.write_all(bytes).unwrap();
        w.finish().unwrap();
    } else {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

/// Up to 240 characters of a line, printable.
fn show(line: &[u8]) -> String {
    let s = String::from_utf8_lossy(line);
    let s: String = s.chars().map(|c| if c.is_control() && c != '\t' { '·' } else { c }).collect();
    if s.chars().count() > 240 {
        format!("{}…", s.chars().take(240).collect::<String>())
    } else {
        s
    }
}

/// Where `want` and `got` first differ: the line, with two lines of
/// context from each version.
fn first_difference(want: &[u8], got: &[u8]) -> String {
    let at = want.iter().zip(got).position(|(a, b)| a != b).unwrap_or(want.len().min(got.len()));
    let line_no = want[..at].iter().filter(|&&b| b == b'\n').count();
    let lines = |b: &[u8]| -> Vec<Vec<u8>> { b.split(|&c| c == b'\n').map(<[u8]>::to_vec).collect() };
    let (w, g) = (lines(want), lines(got));
    let from = line_no.saturating_sub(2);
    let mut t = format!(
        "first difference at byte {at}, line {} (golden {} bytes / {} lines, new {} bytes / {} lines)\n",
        line_no + 1,
        want.len(),
        w.len(),
        got.len(),
        g.len()
    );
    for (label, v) in [("golden", &w), ("new   ", &g)] {
        for (i, l) in v.iter().enumerate().skip(from).take(line_no + 3 - from) {
            let mark = if i == line_no { '>' } else { ' ' };
            t.push_str(&format!("  {label} {mark}{:>6} | {}\n", i + 1, show(l)));
        }
        if v.len() <= line_no {
            t.push_str(&format!("  {label} >{:>6} | (end of file)\n", line_no + 1));
        }
    }
    t
}

fn untimed() -> bool {
    std::env::var_os("CMAEMU_GOLDEN_UNTIMED").is_some_and(|v| !v.is_empty() && v != "0")
}

/// Replace the number after each `marker` in `line` with `_`.
fn mask_after(line: &str, marker: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(at) = rest.find(marker) {
        out.push_str(&rest[..at + marker.len()]);
        rest = &rest[at + marker.len()..];
        let n = rest.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-')).unwrap_or(rest.len());
        if n > 0 {
            out.push('_');
        }
        rest = &rest[n..];
    }
    out.push_str(rest);
    out
}

/// Replace the number just before each `marker` in `line` with `_`.
fn mask_before(line: &str, marker: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(at) = rest.find(marker) {
        let head = &rest[..at];
        let keep = head.trim_end_matches(|c: char| c.is_ascii_digit());
        out.push_str(keep);
        if keep.len() < head.len() {
            out.push('_');
        }
        out.push_str(marker);
        rest = &rest[at + marker.len()..];
    }
    out.push_str(rest);
    out
}

/// Replace every `D.DDDDDD` (six decimals: printk, ftrace and violation
/// time stamps) with `T`.
fn mask_six_decimals(line: &str) -> String {
    let b = line.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() && (i == 0 || !b[i - 1].is_ascii_digit()) {
            let mut j = i;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            let k = j + 1;
            if j < b.len() && b[j] == b'.' && k + 6 <= b.len() && b[k..k + 6].iter().all(u8::is_ascii_digit) && b.get(k + 6).is_none_or(|c| !c.is_ascii_digit()) {
                out.push('T');
                i = k + 6;
                continue;
            }
            out.push_str(&line[i..j]);
            i = j;
            continue;
        }
        let c = line[i..].chars().next().unwrap();
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// A file with its virtual time taken out (see the module documentation).
/// In the JSON traces the frame an event fell in is masked too, the
/// events before a violation are left out, and the lines are sorted: the
/// same events with the same fields, wherever the frame boundaries fell
/// (the console and the ftrace text keep their order).
fn without_time(name: &str, bytes: &[u8]) -> Vec<u8> {
    let json = name == "jsonl" || name == "perfetto.json";
    let text = String::from_utf8_lossy(bytes);
    let mut lines = Vec::new();
    for line in text.split_inclusive('\n') {
        if line.contains("\"event\":\"counters\"") || line.contains("\"event\":\"page_states\"") || line.contains("\"ph\":\"C\"") {
            continue;
        }
        if json && (line.contains("\"event\":\"frame\"") || line.contains("\"name\":\"frame ")) {
            continue;
        }
        let mut l = match line.find("\"recent_events\"") {
            Some(at) if json => format!("{}\n", &line[..at]),
            _ => line.to_string(),
        };
        l = mask_six_decimals(&l);
        for m in ["\"ts_ns\":", "\"ts\":", "\"dur\":", "_ns\":", "_us\":", "@", " ms = ", "retired_instructions=", "virtual_time_ns=", "idle_ns=", "blocks=", "irqs=", "wfi="] {
            l = mask_after(&l, m);
        }
        if json {
            l = mask_after(&l, "\"frame\":");
        }
        if l.contains("Memory: ") {
            // the image's section sizes follow the code; its end (and so
            // every pfn and the available/reserved figures) is pinned in
            // guest/kernel/link.ld
            for m in ["K kernel code", "K rwdata", "K rodata", "K bss"] {
                l = mask_before(&l, m);
            }
        }
        lines.push(l);
    }
    if json {
        lines.sort();
    }
    lines.concat().into_bytes()
}

/// Compare a case's outputs with its recorded files; `Err` describes every
/// difference (and the new files are left for `diff`).
fn compare(case: &Case, outputs: &Outputs) -> Result<(), String> {
    let dir = golden_dir().join(&case.name);
    if !dir.is_dir() {
        return Err(format!("{}: no golden outputs recorded (tests/golden/{}/ is missing): record them with `bash scripts/golden-record.sh`", case.name, case.name));
    }
    let mut problems = Vec::new();
    let plain = !untimed();
    for (name, got) in outputs {
        let read = read_golden(&dir, name);
        let (read, got) = if plain { (read, got.clone()) } else { (read.map(|b| without_time(name, &b)), without_time(name, got)) };
        let got = &got;
        match read {
            None => problems.push(format!("{}/{name}: not recorded", case.name)),
            Some(want) if want != *got => {
                let keep = Path::new(env!("CARGO_TARGET_TMPDIR")).join("golden-actual").join(&case.name);
                std::fs::create_dir_all(&keep).unwrap();
                std::fs::write(keep.join(name), got).unwrap();
                let gz = if dir.join(format!("{name}.gz")).exists() { ".gz" } else { "" };
                problems.push(format!(
                    "{case}/{name} differs from tests/golden/{case}/{name}{gz}{}\n{}  full diff: diff <({}cat tests/golden/{case}/{name}{gz}) {}",
                    if plain { "" } else { " (untimed)" },
                    first_difference(&want, got),
                    if gz.is_empty() { "" } else { "z" },
                    keep.join(name).display(),
                    case = case.name
                ));
            }
            Some(_) => {}
        }
    }
    let expected: Vec<&str> = outputs.iter().map(|(n, _)| n.as_str()).collect();
    for e in std::fs::read_dir(&dir).unwrap() {
        let f = e.unwrap().file_name().to_string_lossy().into_owned();
        let base = f.strip_suffix(".gz").unwrap_or(&f);
        if !expected.contains(&base) {
            problems.push(format!("{}/{f}: recorded, but the case no longer writes it (re-record)", case.name));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

fn record(case: &Case, outputs: &Outputs) {
    let dir = golden_dir().join(&case.name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in outputs {
        write_golden(&dir, name, bytes);
    }
}

#[test]
fn golden_outputs_are_reproduced_byte_for_byte() {
    let dtc = have_dtc();
    let cases: Vec<Case> = all_cases()
        .into_iter()
        .filter(|c| match &c.kind {
            Kind::Scenario { file, .. } if !dtc && needs_dtc(file) => {
                eprintln!("dtc not installed: skipping {} (run scripts/setup.sh)", c.name);
                false
            }
            _ => true,
        })
        .collect();
    let rec = recording();
    assert!(!(rec && untimed()), "CMAEMU_GOLDEN_RECORD and CMAEMU_GOLDEN_UNTIMED together: record the exact outputs only");
    if rec {
        // Directories of cases that no longer exist go.
        let names: Vec<String> = all_cases().iter().map(|c| c.name.clone()).collect();
        std::fs::create_dir_all(golden_dir()).unwrap();
        for e in std::fs::read_dir(golden_dir()).unwrap() {
            let e = e.unwrap();
            if e.path().is_dir() && !names.contains(&e.file_name().to_string_lossy().into_owned()) {
                std::fs::remove_dir_all(e.path()).unwrap();
            }
        }
    }
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).min(cases.len());
    let start = std::time::Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(case) = cases.get(i) else { break };
                let t = std::time::Instant::now();
                let r = run_case(case).and_then(|out| {
                    if rec {
                        record(case, &out);
                        Ok(())
                    } else {
                        compare(case, &out)
                    }
                });
                eprintln!("golden: {} {} ({:.1} s)", case.name, if r.is_ok() { "ok" } else { "FAILED" }, t.elapsed().as_secs_f64());
                if let Err(e) = r {
                    failures.lock().unwrap().push(format!("{}: {e}", case.name));
                }
            });
        }
    });
    eprintln!("golden: {} cases in {:.1} s on {threads} threads", cases.len(), start.elapsed().as_secs_f64());
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} golden cases differ (a deliberate behaviour change re-records them: bash scripts/golden-record.sh):\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
    if !rec {
        // No recorded case is left without its run.
        let names: Vec<String> = all_cases().iter().map(|c| c.name.clone()).collect();
        for e in std::fs::read_dir(golden_dir()).unwrap() {
            let n = e.unwrap().file_name().to_string_lossy().into_owned();
            assert!(names.contains(&n), "tests/golden/{n}/: no such case any more (re-record: bash scripts/golden-record.sh)");
        }
    }
}

#[test]
fn untimed_view_masks_time_and_drops_frame_samples() {
    let t = without_time(
        "console",
        b"[    0.000380] Booting\n{\"ts_ns\":123,\"event\":\"cma_alloc_start\",\"count\":4}\n{\"ts_ns\":5,\"event\":\"counters\",\"free\":1}\n sh-1 [000] .....   1.234567: cma_release: pfn=0x63840\nretired_instructions=99 blocks=7 camera_frames=3\n[frame 9 @151223666ns] migrate.content pfn=0x6085b\n",
    );
    assert_eq!(
        String::from_utf8(t).unwrap(),
        "[    T] Booting\n{\"ts_ns\":_,\"event\":\"cma_alloc_start\",\"count\":4}\n sh-1 [000] .....   T: cma_release: pfn=0x63840\nretired_instructions=_ blocks=_ camera_frames=3\n[frame 9 @_ns] migrate.content pfn=0x6085b\n"
    );
    assert_eq!(mask_after("a=1.5 b a=22", "a="), "a=_ b a=_");
    let m = without_time("console", b"[    0.006976] Memory: 160152K/262144K available (236K kernel code, 50K rwdata, 64K rodata, 0K init, 485K bss, 3688K reserved)\n");
    assert_eq!(String::from_utf8(m).unwrap(), "[    T] Memory: 160152K/262144K available (_K kernel code, _K rwdata, _K rodata, 0K init, _K bss, 3688K reserved)\n");
    let j = without_time("jsonl", b"{\"ts_ns\":9,\"frame\":2,\"event\":\"tlb_flush\"}\n{\"ts_ns\":8,\"frame\":2,\"event\":\"frame\"}\n{\"ts_ns\":7,\"frame\":1,\"event\":\"cma_release\"}\n");
    assert_eq!(String::from_utf8(j).unwrap(), "{\"ts_ns\":_,\"frame\":_,\"event\":\"cma_release\"}\n{\"ts_ns\":_,\"frame\":_,\"event\":\"tlb_flush\"}\n");
    assert_eq!(mask_six_decimals("x 12.1234567 3.123456: 4.12345"), "x 12.1234567 T: 4.12345");
}
