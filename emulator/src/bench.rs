//! Benchmarks: figures printed as ratios against a baseline run in the
//! same process (never asserted by tests).
use crate::board::console::{Capture, Input};
use crate::board::machine::{self, BootConfig, Exit, Outcome};
use crate::cpu::bare;
use crate::loader::elf::Image;
use crate::loader::{board_dtb, images};
use std::time::{Duration, Instant};

/// Why a benchmark could not produce its figures.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Board(#[from] crate::board::machine::BoardError),
    #[error(transparent)]
    Elf(#[from] crate::loader::elf::ElfError),
    #[error(transparent)]
    Dtb(#[from] crate::loader::dtb::DtbError),
    #[error(transparent)]
    Cpu(#[from] crate::cpu::CpuError),
    #[error(transparent)]
    Scenario(#[from] crate::scenario::ScenarioError),
    #[error(transparent)]
    Axis(#[from] crate::scenario::axes::AxisError),
    #[error(transparent)]
    Sweep(#[from] crate::scenario::SweepError),
    #[error("run did not power off cleanly: {0:?}")]
    NoPoweroff(Exit),
    #[error("no {0} symbol")]
    NoSymbol(&'static str),
    #[error("guest {symbol} gave a wrong checksum: {text}")]
    GuestChecksum { symbol: &'static str, text: String },
    #[error("bare {0} gave a wrong checksum")]
    BareChecksum(&'static str),
    #[error("guest did not reach its prompt")]
    NoPrompt,
    #[error("`{0}` did not return to the prompt")]
    NoReturn(String),
    /// A value the guest did not print (`base_pfn`, `MemFree`).
    #[error("no {0}")]
    Missing(&'static str),
    /// `cma_alloc` of a whole area failed: which, and the guest's output.
    #[error("{what} allocation of {mib} MiB failed: {output}")]
    AllocFailed { what: &'static str, mib: u64, output: String },
    #[error("verification did not attach")]
    NotVerifying,
    #[error("preview 300 printed nothing expected: {0}")]
    Preview(String),
    #[error("--jobs {0} gave other records than the first round")]
    JobsDiffer(usize),
    #[error("{name}: the cause finder printed {lines} line(s) while off")]
    ExplainWhileOff { name: &'static str, lines: usize },
}

/// The benchmarks (`cmaemu bench WHAT`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchKind {
    Boot,
    Cma,
    Verify,
    Sweep,
    Explain,
}

impl std::fmt::Display for BenchKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BenchKind::Boot => "boot",
            BenchKind::Cma => "cma",
            BenchKind::Verify => "verify",
            BenchKind::Sweep => "sweep",
            BenchKind::Explain => "explain",
        })
    }
}

fn run(script: &str) -> Result<(Outcome, Duration, String), BenchError> {
    let cap = Capture::default();
    let cfg = BootConfig {
        kernel_elf: images::KERNEL_ELF.to_vec(),
        initrd: None,
        firmware_elf: images::FIRMWARE_ELF.to_vec(),
        dtb: board_dtb::default_board_dtb(1 << 30),
        ram_size: 1 << 30,
        max_insns: 50_000_000_000,
        input: Input::Script(script.bytes().collect()),
        stdout: false,
        capture: Some(cap.clone()),
        idle_after_eof_ns: 1_000_000_000,
        opts: Default::default(),
    };
    let t = Instant::now();
    let o = machine::boot(cfg)?;
    let wall = t.elapsed();
    if o.exit != Exit::Poweroff(0) {
        return Err(BenchError::NoPoweroff(o.exit));
    }
    Ok((o, wall, cap.text()))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Boot to the prompt (wall time), and guest MIPS of the instrumented loop
/// against bare Unicorn running the same guest function.
pub fn boot_bench() -> Result<String, BenchError> {
    let mut out = String::new();
    let mut boots = Vec::new();
    let mut insns = 0;
    for _ in 0..5 {
        let (o, wall, _) = run("poweroff\n")?;
        boots.push(wall.as_secs_f64());
        insns = o.stats.insns;
    }
    let boot_ms = median(boots.clone()) * 1e3;
    out += &format!("boot to prompt and poweroff: median {:.1} ms wall over 5 runs ({} guest instructions)\n", boot_ms, insns);

    const TURNS: u32 = 100_000_000;
    let kernel = Image::parse("kernel", images::KERNEL_ELF)?;
    let segs: Vec<(u64, Vec<u8>)> = kernel.segments.iter().map(|s| (s.vaddr, s.data.clone())).collect();
    let mut m = machine(1 << 30, "console=ttyAMA0", true)?;
    let mut worst = 0.0;
    for lp in [AluLoop::SPIN, AluLoop::XORSHIFT] {
        let (instr, bare, lo, hi) = alu_pairs(&mut m, &kernel, &segs, lp, TURNS)?;
        out += &format!(
            "guest ALU loop `{}` ({} instructions a block, {} M instructions; median of 5 interleaved pairs): instrumented {:.0} MIPS, bare Unicorn {:.0} MIPS, ratio {:.2} (pairs {:.2}..{:.2})\n",
            lp.symbol,
            lp.per_turn,
            lp.per_turn as u64 * TURNS as u64 / 1_000_000,
            instr,
            bare,
            instr / bare,
            lo,
            hi
        );
        if lp.symbol == AluLoop::SPIN.symbol {
            worst = instr / bare;
        }
    }
    // Host memory: guest RAM is mapped lazily; what filling it costs in
    // resident memory, against the guest memory filled.
    let rss0 = rss_kib();
    let (_, _, text) = timed(&mut m, "fill 900")?;
    let rss1 = rss_kib();
    let pages: u64 = text.split("fill: ").filter_map(|l| l.split_whitespace().next()?.parse().ok()).last().unwrap_or(0);
    if let (Some(a), Some(b)) = (rss0, rss1) {
        let filled = pages * 4;
        out += &format!(
            "host memory: resident {} MiB after boot; filling {} MiB of guest pages adds {} MiB (ratio {:.2})\n",
            a / 1024,
            filled / 1024,
            b.saturating_sub(a) / 1024,
            b.saturating_sub(a) as f64 / filled.max(1) as f64
        );
    }
    out += &format!(
        "targets: boot ≤ 250 ms ({}), instrumented ≥ 50 % of bare on the 3-instruction worst case ({})",
        if boot_ms <= 250.0 { "met" } else { "missed" },
        if worst >= 0.5 { "met" } else { "missed" }
    );
    Ok(out)
}

use crate::board::machine::{Machine, RunOptions, Step};
use crate::loader::dtb::Dtb;

/// This process's resident set (Linux `/proc/self/status`), KiB.
fn rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().trim_end_matches("kB").trim().parse().ok()
}

/// A guest ALU loop the boot benchmark runs both instrumented and bare.
#[derive(Clone, Copy)]
struct AluLoop {
    /// Kernel symbol (`u32 f(u32 turns)`).
    symbol: &'static str,
    /// Shell command suffix after `spin N`.
    arg: &'static str,
    /// Instructions per turn (= per block).
    per_turn: u32,
    /// Instructions outside the loop.
    fixed: u32,
    /// The checksum the loop returns.
    checksum: fn(u32) -> u32,
}

impl AluLoop {
    const SPIN: AluLoop = AluLoop {
        symbol: "spin_loop",
        arg: "",
        per_turn: 3,
        fixed: 3,
        checksum: |n| (1..=n).fold(0u32, |a, b| a.wrapping_add(b)),
    };
    const XORSHIFT: AluLoop = AluLoop {
        symbol: "xorshift_loop",
        arg: " xorshift",
        per_turn: 6,
        fixed: 5,
        checksum: |n| {
            let (mut x, mut sum) = (0x2545_f491u32, 0u32);
            for _ in 0..n {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                sum = sum.wrapping_add(x);
            }
            sum
        },
    };
}

/// Five interleaved pairs of (instrumented `spin` command on a booted
/// board, timed alone; the same function on a hookless Unicorn), so that
/// host noise hits both sides. Returns the median pair's MIPS and the
/// lowest and highest pair ratio.
fn alu_pairs(m: &mut Machine, kernel: &Image, segs: &[(u64, Vec<u8>)], lp: AluLoop, turns: u32) -> Result<(f64, f64, f64, f64), BenchError> {
    let want = (lp.checksum)(turns);
    let f = kernel.symbols.iter().find(|(n, _, _)| n == lp.symbol).map(|s| s.1).ok_or(BenchError::NoSymbol(lp.symbol))?;
    let mut pairs = Vec::new();
    for _ in 0..5 {
        let (insns, wall, text) = timed(m, &format!("spin {turns}{}", lp.arg))?;
        if !text.contains(&format!("checksum {:#010x}", want)) {
            return Err(BenchError::GuestChecksum { symbol: lp.symbol, text });
        }
        let instr = insns as f64 / wall / 1e6;
        let t = Instant::now();
        let r = bare::run_function(segs, f, turns)?;
        let wall = t.elapsed().as_secs_f64();
        if r != want {
            return Err(BenchError::BareChecksum(lp.symbol));
        }
        pairs.push((instr, (lp.per_turn as f64 * turns as f64 + lp.fixed as f64) / wall / 1e6));
    }
    pairs.sort_by(|a, b| (a.0 / a.1).total_cmp(&(b.0 / b.1)));
    let (i, b) = pairs[pairs.len() / 2];
    let (lo, hi) = (pairs[0].0 / pairs[0].1, pairs[pairs.len() - 1].0 / pairs[pairs.len() - 1].1);
    Ok((i, b, lo, hi))
}

fn machine(ram: u64, bootargs: &str, verify: bool) -> Result<Machine, BenchError> {
    machine_mode(ram, bootargs, if verify { VerifyMode::On } else { VerifyMode::Off })
}

fn machine_mode(ram: u64, bootargs: &str, mode: VerifyMode) -> Result<Machine, BenchError> {
    // nothing here reads the event stream: only violations are counted
    let verify = matches!(mode, VerifyMode::On | VerifyMode::Drain);
    let m = machine_with(ram, bootargs, RunOptions { verify, transport_only: mode == VerifyMode::Floor, drain_every_doorbell: mode == VerifyMode::Drain, drop_events: true, ..Default::default() })?;
    match mode {
        VerifyMode::On | VerifyMode::Drain if !m.verifying() => Err(BenchError::NotVerifying),
        VerifyMode::Floor if !m.attached() => Err(BenchError::NotVerifying),
        _ => Ok(m),
    }
}

fn machine_with(ram: u64, bootargs: &str, opts: RunOptions) -> Result<Machine, BenchError> {
    let mut dtb = Dtb::parse(&board_dtb::default_board_dtb(ram))?;
    dtb.set_bootargs(bootargs)?;
    let mut m = Machine::with_options(images::KERNEL_ELF, images::FIRMWARE_ELF, &dtb.to_bytes()?, ram, 500_000_000_000, opts)?;
    if m.run_until_idle() != Step::Paused {
        return Err(BenchError::NoPrompt);
    }
    Ok(m)
}

/// Run one command; (guest instructions, wall seconds, its output).
fn timed(m: &mut Machine, cmd: &str) -> Result<(u64, f64, String), BenchError> {
    let before = m.output().len();
    let i0 = m.stats().insns;
    let t = Instant::now();
    if m.command(cmd) != Step::Paused {
        return Err(BenchError::NoReturn(cmd.to_string()));
    }
    let out = m.output()[before..].to_string();
    Ok((m.stats().insns - i0, t.elapsed().as_secs_f64(), out))
}

/// One full-area allocation (see [`full_area_alloc`]).
struct FullArea {
    /// Guest instructions of the allocation.
    insns: u64,
    /// Its wall seconds.
    wall: f64,
    /// Its virtual nanoseconds.
    virt_ns: u64,
    /// Pages migrated.
    migrated: u64,
    /// The profile, if asked.
    profile: String,
    /// Violations reported over the whole run.
    violations: usize,
    /// Doorbells of the allocation served without a drain.
    light: u64,
}

/// One full-area allocation of `mib` MiB: fill all memory (the CMA area
/// fills last, by fallback), give back memory outside the area so that
/// migration has targets, then allocate.
fn full_area_alloc(mib: u64, mode: VerifyMode, profile: Option<usize>, mark: &mut dyn FnMut(bool)) -> Result<FullArea, BenchError> {
    let pages = mib * 256;
    let mut m = machine_mode(1 << 30, CMA_BENCH_ARGS, mode)?;
    let base: u64 = timed(&mut m, "cat /sys/kernel/debug/cma/reserved/base_pfn")?.2.lines().nth(1).and_then(|l| l.trim().parse().ok()).ok_or(BenchError::Missing("base_pfn"))?;
    let count: u64 = 80 * 256;
    let mi = timed(&mut m, "cat /proc/meminfo")?.2;
    let free_kb: u64 = mi.lines().find(|l| l.starts_with("MemFree:")).and_then(|l| l[8..].trim().trim_end_matches("kB").trim().parse().ok()).ok_or(BenchError::Missing("MemFree"))?;
    timed(&mut m, &format!("fill {}", free_kb / 1024 - 4))?;
    timed(&mut m, &format!("free {} out {:#x} {:#x}", mib + 8, base, base + count))?;
    let vm0 = timed(&mut m, "cat /proc/vmstat")?.2;
    if profile.is_some() {
        m.enable_profile()?;
    }
    let (v0, l0) = (m.now(), m.light_doorbells_served());
    mark(true);
    let (fi, fw, fo) = timed(&mut m, &format!("echo {pages} > /sys/kernel/debug/cma/reserved/alloc"))?;
    mark(false);
    let (virt_ns, light) = (m.now() - v0, m.light_doorbells_served() - l0);
    let prof = match profile {
        Some(n) => format!("\nfull-area allocation of {mib} MiB:\n{}", crate::board::profile::format_profile(&m.take_profile(), n)),
        None => String::new(),
    };
    if fo.contains("alloc failed") {
        return Err(BenchError::AllocFailed { what: "full-area", mib, output: fo });
    }
    let vm1 = timed(&mut m, "cat /proc/vmstat")?.2;
    let mig = |t: &str| -> u64 { t.lines().find(|l| l.starts_with("pgmigrate_success ")).and_then(|l| l[18..].trim().parse().ok()).unwrap_or(0) };
    Ok(FullArea { insns: fi, wall: fw, virt_ns, migrated: mig(&vm1) - mig(&vm0), profile: prof, violations: m.violations().len(), light })
}

const CMA_BENCH_ARGS: &str = "console=ttyAMA0 cma=80M";

/// `cmaemu bench cma`: cma_alloc latency for 1, 4, 16, 64 MiB on an empty
/// area and on an area full of movable pages, beside a guest memcpy of the
/// same size, in guest instructions and wall time (the full-area case with
/// host verification on, as by default, and off).
pub fn cma_bench(profile: Option<usize>) -> Result<String, BenchError> {
    const RAM: u64 = 1 << 30;
    let mut out = String::from("bench cma: 1 GiB board, cma=80M (area \"reserved\"), debian-6.1 profile\n");
    out += &format!(
        "{:>6} {:>12} {:>9} {:>12} {:>9} {:>12} {:>12} {:>9} {:>12} {:>15} {:>9}\n",
        "MiB", "empty insns", "empty ms", "full insns", "full ms", "full ms (nv)", "memcpy insns", "memcpy ms", "full/memcpy", "wall (nv)/memcpy", "migrated"
    );
    let mut profiles = String::new();
    for mib in [1u64, 4, 16, 64] {
        let pages = mib * 256;
        // memcpy baseline and empty area: a fresh board
        let mut m = machine(RAM, CMA_BENCH_ARGS, true)?;
        let (ci, cw, _) = timed(&mut m, &format!("memcpy {mib}"))?;
        let (ei, ew, eo) = timed(&mut m, &format!("echo {pages} > /sys/kernel/debug/cma/reserved/alloc"))?;
        if eo.contains("alloc failed") {
            return Err(BenchError::AllocFailed { what: "empty-area", mib, output: eo });
        }
        let FullArea { insns: fi, wall: fw, migrated, profile: prof, .. } = full_area_alloc(mib, VerifyMode::On, profile, &mut |_| {})?;
        profiles += &prof;
        // Without verification nobody drains the trace ring, so the guest's
        // pushes take the (cheaper) overflow path: only its wall time is
        // shown.
        let nw = full_area_alloc(mib, VerifyMode::Off, None, &mut |_| {})?.wall;
        out += &format!(
            "{:>6} {:>12} {:>9.1} {:>12} {:>9.1} {:>12.1} {:>12} {:>9.1} {:>12.2} {:>15.2} {:>9}\n",
            mib,
            ei,
            ew * 1e3,
            fi,
            fw * 1e3,
            nw * 1e3,
            ci,
            cw * 1e3,
            fi as f64 / ci.max(1) as f64,
            nw / cw.max(1e-9),
            migrated
        );
    }
    out += "(target: a full-area allocation costs <= 1.5x the memcpy of its size, in guest instructions; nv = host verification off)";
    out += &profiles;
    Ok(out)
}

/// A workload of `bench verify`: a board prepared untimed, then a timed
/// part, run with host verification on and off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VerifyWorkload {
    /// Boot a 256 MiB board, fill, allocate with migration, preview under
    /// stress, check (the whole run is timed, boot included).
    Mixed,
    /// `cma_alloc` of this many MiB from an area full of movable pages
    /// (1 GiB board; only the allocation is timed): the migration storm.
    FullArea(u64),
    /// `stress 5 &` then `preview 300` on a 1 GiB board (the preview is
    /// timed): the camera streaming while compaction and CMA migrate.
    PreviewStress,
}

/// How a [`VerifyWorkload`] runs: host verification off or on, or its
/// floor — the guest's tracing and the doorbells alone, the ring drained
/// and nothing decoded or checked (`RunOptions::transport_only`): the
/// part of "on" that no check can avoid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VerifyMode {
    Off,
    On,
    Floor,
    /// On, with the ring drained at every doorbell (no light doorbells:
    /// verification as it was before them, the same findings).
    Drain,
}

impl VerifyMode {
    /// `off`, `on` or `floor`.
    pub fn name(self) -> &'static str {
        match self {
            VerifyMode::Off => "off",
            VerifyMode::On => "on",
            VerifyMode::Floor => "floor",
            VerifyMode::Drain => "drain",
        }
    }

    /// The mode named `s`.
    pub fn from_name(s: &str) -> Option<VerifyMode> {
        [VerifyMode::Off, VerifyMode::On, VerifyMode::Floor, VerifyMode::Drain].into_iter().find(|m| m.name() == s)
    }
}

/// One timed run of a [`VerifyWorkload`].
#[derive(Clone, Copy, Debug)]
pub struct VerifySample {
    /// Wall seconds of the timed part.
    pub wall: f64,
    /// Virtual nanoseconds of the timed part.
    pub virt_ns: u64,
    /// Guest instructions of the timed part.
    pub insns: u64,
    /// Violations the verifiers reported (0 when off).
    pub violations: usize,
    /// Doorbells of the timed part served without a drain (light
    /// doorbells; 0 when off, at the floor's drains or with a drain at
    /// every doorbell).
    pub light: u64,
}

const MIXED_SCRIPT: [&str; 5] = ["fill 110 3", "echo 4096 > /sys/kernel/debug/cma/linux,cma/alloc", "stress 2 &", "preview 60", "check"];

impl VerifyWorkload {
    /// Every workload `bench verify` runs, in order.
    pub const ALL: [VerifyWorkload; 4] = [VerifyWorkload::Mixed, VerifyWorkload::FullArea(64), VerifyWorkload::FullArea(16), VerifyWorkload::PreviewStress];

    /// Short name (`--workload` spelling and the table's first column).
    pub fn name(self) -> String {
        match self {
            VerifyWorkload::Mixed => "mixed".into(),
            VerifyWorkload::FullArea(mib) => format!("cma{mib}"),
            VerifyWorkload::PreviewStress => "preview-stress".into(),
        }
    }

    /// What it runs, for the report.
    pub fn describe(self) -> String {
        match self {
            VerifyWorkload::Mixed => format!("256 MiB board, boot + `{}` (whole run timed)", MIXED_SCRIPT.join("; ")),
            VerifyWorkload::FullArea(mib) => format!("1 GiB board, cma=80M full of movable pages, `cma_alloc` of {mib} MiB (allocation timed)"),
            VerifyWorkload::PreviewStress => "1 GiB board, `stress 5 &` then `preview 300` (preview timed)".into(),
        }
    }

    /// The workload named `s`.
    pub fn from_name(s: &str) -> Option<VerifyWorkload> {
        Self::ALL.into_iter().find(|w| w.name() == s)
    }

    /// Run it once in `mode`.
    pub fn run(self, mode: VerifyMode) -> Result<VerifySample, BenchError> {
        self.run_marked(mode, &mut |_| {})
    }

    /// As [`VerifyWorkload::run`], calling `mark(true)` just before the
    /// timed part and `mark(false)` just after it (e.g. to switch a host
    /// profiler on for the timed part alone).
    pub fn run_marked(self, mode: VerifyMode, mark: &mut dyn FnMut(bool)) -> Result<VerifySample, BenchError> {
        match self {
            VerifyWorkload::Mixed => {
                mark(true);
                let t = Instant::now();
                let mut m = machine_mode(256 << 20, "console=ttyAMA0", mode)?;
                for c in MIXED_SCRIPT {
                    timed(&mut m, c)?;
                }
                mark(false);
                let wall = t.elapsed().as_secs_f64();
                Ok(VerifySample { wall, virt_ns: m.now(), insns: m.stats().insns, violations: m.violations().len(), light: m.light_doorbells_served() })
            }
            VerifyWorkload::FullArea(mib) => {
                let r = full_area_alloc(mib, mode, None, mark)?;
                Ok(VerifySample { wall: r.wall, virt_ns: r.virt_ns, insns: r.insns, violations: r.violations, light: r.light })
            }
            VerifyWorkload::PreviewStress => {
                let mut m = machine_mode(1 << 30, "console=ttyAMA0", mode)?;
                timed(&mut m, "stress 5 &")?;
                let (v0, i0, l0) = (m.now(), m.stats().insns, m.light_doorbells_served());
                mark(true);
                let (_, wall, out) = timed(&mut m, "preview 300")?;
                mark(false);
                if !out.contains("preview") {
                    return Err(BenchError::Preview(out));
                }
                Ok(VerifySample { wall, virt_ns: m.now() - v0, insns: m.stats().insns - i0, violations: m.violations().len(), light: m.light_doorbells_served() - l0 })
            }
        }
    }
}

/// On/off medians of one workload over `runs` interleaved pairs.
pub struct VerifyRatio {
    pub workload: VerifyWorkload,
    pub off: f64,
    pub on: f64,
    /// The floor's median, when measured ([`VerifyMode::Floor`]).
    pub floor: Option<f64>,
    /// The median with a drain at every doorbell, measured with the floor
    /// ([`VerifyMode::Drain`]).
    pub drain: Option<f64>,
    /// Virtual ns of the timed part (the same in every run).
    pub virt_ns: u64,
    pub violations: usize,
    /// Doorbells of the timed part served without a drain, with
    /// verification on (the same in every run).
    pub light: u64,
    /// Each round's (off, on) wall seconds, in run order.
    pub rounds: Vec<(f64, f64)>,
    /// Each round's floor wall seconds, in run order (empty without the
    /// floor).
    pub floors: Vec<f64>,
}

impl VerifyRatio {
    pub fn ratio(&self) -> f64 {
        self.on / self.off
    }
    /// Each round's on/off ratio, in run order.
    pub fn pairs(&self) -> impl Iterator<Item = f64> + '_ {
        self.rounds.iter().map(|&(off, on)| on / off)
    }
    /// A 95 % interval for [`VerifyRatio::ratio`] (see [`ratio_interval`]).
    pub fn interval(&self) -> Option<(f64, f64)> {
        ratio_interval(&self.rounds)
    }
    /// 95 % intervals for floor/off (what the guest's tracing and the
    /// doorbells cost) and on/floor (what the decoding and checks cost),
    /// from the same rounds (None without the floor).
    pub fn floor_intervals(&self) -> Option<((f64, f64), (f64, f64))> {
        let floor_off: Vec<(f64, f64)> = self.rounds.iter().zip(&self.floors).map(|(&(off, _), &fl)| (off, fl)).collect();
        let on_floor: Vec<(f64, f64)> = self.rounds.iter().zip(&self.floors).map(|(&(_, on), &fl)| (fl, on)).collect();
        Some((ratio_interval(&floor_off)?, ratio_interval(&on_floor)?))
    }
}

/// A 95 % interval for `median(on) / median(off)` over interleaved rounds
/// of `(off, on)` wall times: the 2.5th and 97.5th percentiles of that
/// ratio over bootstrap resamples of the rounds (each round's pair kept
/// together, a fixed seed: the same rounds give the same interval). It
/// says how far the machine's noise leaves the ratio open; None with
/// fewer than 2 rounds.
pub fn ratio_interval(rounds: &[(f64, f64)]) -> Option<(f64, f64)> {
    const RESAMPLES: usize = 2000;
    let n = rounds.len();
    if n < 2 {
        return None;
    }
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut ratios = Vec::with_capacity(RESAMPLES);
    for _ in 0..RESAMPLES {
        let (mut off, mut on) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for _ in 0..n {
            // xorshift64
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let (f, o) = rounds[(x % n as u64) as usize];
            off.push(f);
            on.push(o);
        }
        ratios.push(median(on) / median(off));
    }
    ratios.sort_by(f64::total_cmp);
    Some((ratios[RESAMPLES * 25 / 1000], ratios[RESAMPLES * 975 / 1000 - 1]))
}

/// Run `w` `runs` times with verification off and on (and at its floor
/// and with a drain at every doorbell with `floor`), interleaved: the
/// order rotates each round so that a drift hits every side.
pub fn verify_ratio(w: VerifyWorkload, runs: usize, floor: bool) -> Result<VerifyRatio, BenchError> {
    let modes: &[VerifyMode] = if floor { &[VerifyMode::Off, VerifyMode::On, VerifyMode::Floor, VerifyMode::Drain] } else { &[VerifyMode::Off, VerifyMode::On] };
    // each mode's walls in round order: index i of every mode is round i
    let mut walls: [Vec<f64>; 4] = Default::default();
    let (mut virt_ns, mut violations, mut light) = (0, 0, 0);
    for round in 0..runs {
        for k in 0..modes.len() {
            let mode = modes[(round + k) % modes.len()];
            let s = w.run(mode)?;
            walls[mode as usize].push(s.wall);
            if mode == VerifyMode::On {
                violations += s.violations;
                virt_ns = s.virt_ns;
                light = s.light;
            }
        }
    }
    let [off, on, floors, dr] = walls;
    let rounds = off.iter().copied().zip(on.iter().copied()).collect();
    Ok(VerifyRatio { workload: w, off: median(off), on: median(on), floor: floor.then(|| median(floors.clone())), drain: floor.then(|| median(dr)), virt_ns, violations, light, rounds, floors })
}

/// Interleaved rounds `bench verify` runs per workload: at least 5 (the
/// house rule for medians), at most this many.
pub const VERIFY_ROUNDS_MIN: usize = 5;
pub const VERIFY_ROUNDS_MAX: usize = 99;

/// `cmaemu bench verify`: every [`VerifyWorkload`] with host verification
/// on and off (median of `rounds` interleaved runs each) and the on/off ratio;
/// then how close the migration path is to a plain copy, with
/// verification off (wall full-area / wall memcpy against instructions
/// full-area / instructions memcpy, 64 MiB).
pub fn verify_bench(only: Option<VerifyWorkload>, floor: bool, rounds: usize) -> Result<String, BenchError> {
    let rounds = rounds.clamp(VERIFY_ROUNDS_MIN, VERIFY_ROUNDS_MAX);
    let mut out = format!("bench verify: host verification on vs off, median of {rounds} interleaved runs each (target: ratio <= 1.10)\n");
    if floor {
        out += "  floor: the guest's tracing and the doorbells alone (ring drained; nothing decoded, captured or checked); drain: on, with the ring drained at every doorbell (no light doorbells); both interleaved with off and on\n";
    }
    let mut total = 0;
    for w in VerifyWorkload::ALL.into_iter().filter(|w| only.is_none_or(|o| o == *w)) {
        let r = verify_ratio(w, rounds, floor)?;
        total += r.violations;
        let pairs: Vec<String> = r.pairs().map(|p| format!("{p:.2}")).collect();
        let interval = match r.interval() {
            Some((lo, hi)) => format!("95 % interval over the rounds {lo:.3}-{hi:.3}; "),
            None => String::new(),
        };
        out += &format!("  {:<15} {}\n", w.name(), w.describe());
        out += &format!(
            "  {:<15} off {:.0} ms, on {:.0} ms, ratio {:.3} ({}; {}pairs {}); {:.2} s virtual, real-time factor on {:.2}, off {:.2}\n",
            "",
            r.off * 1e3,
            r.on * 1e3,
            r.ratio(),
            if r.ratio() <= 1.10 { "met" } else { "missed" },
            interval,
            pairs.join(" "),
            r.virt_ns as f64 / 1e9,
            r.virt_ns as f64 / 1e9 / r.on,
            r.virt_ns as f64 / 1e9 / r.off
        );
        if let Some(f) = r.floor {
            let (fo, of) = match r.floor_intervals() {
                Some(((a, b), (c, d))) => (format!(" ({a:.3}-{b:.3})"), format!(" ({c:.3}-{d:.3})")),
                None => Default::default(),
            };
            out += &format!(
                "  {:<15} floor {:.0} ms: floor/off {:.3}{fo}, on/floor {:.3}{of} (95 % intervals; the tracing and doorbells cost {:.0} % of off, the decoding and checks {:.0} %)\n",
                "",
                f * 1e3,
                f / r.off,
                r.on / f,
                (f / r.off - 1.0) * 100.0,
                (r.on - f) / r.off * 100.0
            );
        }
        if let Some(d) = r.drain {
            out += &format!("  {:<15} drain {:.0} ms: drain/off {:.2}, on/drain {:.2} (light doorbells)\n", "", d * 1e3, d / r.off, r.on / d);
        }
        out += &format!("  {:<15} light doorbells (a migrated page's doorbell served without a drain) in the timed part, verification on: {}\n", "", r.light);
    }
    if only.is_none_or(|o| matches!(o, VerifyWorkload::FullArea(64))) {
        out += &copy_efficiency(64, rounds)?;
    }
    out += &format!("violations: {total}");
    Ok(out)
}

/// The migration path against a plain copy, verification off: `runs`
/// interleaved pairs of (guest `memcpy` of `mib` MiB, full-area
/// allocation of `mib` MiB); (wall full / wall memcpy) against
/// (instructions full / instructions memcpy).
fn copy_efficiency(mib: u64, runs: usize) -> Result<String, BenchError> {
    let (mut cw, mut fw) = (Vec::new(), Vec::new());
    let (mut ci, mut fi) = (0, 0);
    for _ in 0..runs {
        let mut m = machine(1 << 30, CMA_BENCH_ARGS, false)?;
        let (i, w, _) = timed(&mut m, &format!("memcpy {mib}"))?;
        drop(m);
        ci = i;
        cw.push(w);
        let r = full_area_alloc(mib, VerifyMode::Off, None, &mut |_| {})?;
        fi = r.insns;
        fw.push(r.wall);
    }
    let (cw, fw) = (median(cw), median(fw));
    let wall = fw / cw;
    let insns = fi as f64 / ci.max(1) as f64;
    Ok(format!(
        "  migration vs memcpy ({mib} MiB, verification off, median of {runs} interleaved): memcpy {:.0} ms / {ci} insns, full-area allocation {:.0} ms / {fi} insns; wall {wall:.2}x vs instructions {insns:.2}x: {:.2} (target <= 1.25, {})\n",
        cw * 1e3,
        fw * 1e3,
        wall / insns,
        if wall / insns <= 1.25 { "met" } else { "missed" }
    ))
}

/// `cmaemu bench sweep`: sweep throughput (boots per minute) of the
/// camera-preview-under-pressure example (2 CMA sizes × 4 seeds) on one
/// worker thread and on two, interleaved, 5 rounds; the scaling ratio is
/// of the medians. The two give the same records (checked).
pub fn sweep_bench() -> Result<String, BenchError> {
    use crate::scenario::axes::Axis;
    use crate::scenario::{run_indexed, Plan, Scenario};
    let src = include_str!("../../examples/camera-preview-under-pressure.toml");
    let sc = Scenario::parse("camera-preview-under-pressure.toml", src)?;
    let axis = Axis::parse_cli("cma=16M,64M")?;
    let plan = Plan::new(&sc, String::new(), vec![axis], Some(0..4), None)?;
    let n = plan.runs() as usize;
    let mut times: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut first: Option<Vec<crate::scenario::RunRecord>> = None;
    for round in 0..5 {
        let order = if round % 2 == 0 { [1, 2] } else { [2, 1] };
        for jobs in order {
            let t = Instant::now();
            let mut recs = Vec::with_capacity(n);
            run_indexed(n, |i| plan.scenario(&sc, i as u64), jobs, |i, r| recs.push(plan.record(i as u64, &r)));
            times[jobs - 1].push(t.elapsed().as_secs_f64());
            match &first {
                None => first = Some(recs),
                Some(f) if *f != recs => return Err(BenchError::JobsDiffer(jobs)),
                _ => {}
            }
        }
    }
    let per_min = |s: f64| n as f64 * 60.0 / s;
    let (t1, t2) = (median(times[0].clone()), median(times[1].clone()));
    Ok(format!(
        "bench sweep: camera-preview-under-pressure, cma=16M,64M x seeds 0..4 = {n} boots per sweep, 5 rounds interleaved (median)\n  --jobs 1: {:.1} s, {:.1} boots/min\n  --jobs 2: {:.1} s, {:.1} boots/min\n  scaling --jobs 2 / --jobs 1: {:.2}x (on {} host CPUs; other processes on the machine count)",
        t1,
        per_min(t1),
        t2,
        per_min(t2),
        t1 / t2,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    ))
}

/// A workload of `bench explain`: (name, RAM, bootargs, commands).
const EXPLAIN_WORKLOADS: [(&str, u64, &str, &[&str]); 3] = [
    // one failure after one busy retry (the README's pinned page)
    ("pinned", 256 << 20, "console=ttyAMA0 cma=16M", &["fill 200 7", "pin in 0x6d000 0x6e000", "echo 4032 > /sys/kernel/debug/cma/reserved/alloc"]),
    // 193 busy retries, each explained from a fresh snapshot
    ("retry-storm", 256 << 20, "console=ttyAMA0", &["fill 200 3", "task new", "fill 1", "pin 4", "echo 8000 > /sys/kernel/debug/cma/camera-cma/alloc"]),
    // allocations that succeed at once (nothing to explain) among fills,
    // preview and stress
    ("mixed", 256 << 20, "console=ttyAMA0", &MIXED_SCRIPT),
];

/// One run of an explain workload with the cause finder on or off: wall
/// seconds of the whole run (boot included) and its `cmaemu:` cause lines.
fn explain_run(ram: u64, bootargs: &str, cmds: &[&str], explain: bool) -> Result<(f64, usize), BenchError> {
    let t = Instant::now();
    let mut m = machine_with(ram, bootargs, RunOptions { verify: true, no_explain: !explain, ..Default::default() })?;
    for c in cmds {
        timed(&mut m, c)?;
    }
    if !m.verifying() {
        return Err(BenchError::NotVerifying);
    }
    let lines = m.output().lines().filter(|l| l.starts_with("cmaemu: cma_alloc ")).count();
    Ok((t.elapsed().as_secs_f64(), lines))
}

/// `cmaemu bench explain`: the cause finder's cost (issue 13) — each
/// workload with verification on and the cause finder on vs off, `RUNS`
/// interleaved pairs, medians and the on/off ratio.
pub fn explain_bench() -> Result<String, BenchError> {
    const RUNS: usize = 5;
    let mut out = format!("bench explain: the cause finder on vs off (host verification on in both), whole run wall time, median of {RUNS} interleaved runs each (target: ratio <= 1.05)\n");
    for (name, ram, bootargs, cmds) in EXPLAIN_WORKLOADS {
        let (mut on, mut off, mut pairs) = (Vec::new(), Vec::new(), Vec::new());
        let mut lines = (0, 0);
        for round in 0..RUNS {
            let order = if round % 2 == 0 { [false, true] } else { [true, false] };
            let mut pair = [0.0; 2];
            for explain in order {
                let (w, n) = explain_run(ram, bootargs, cmds, explain)?;
                pair[explain as usize] = w;
                if explain {
                    on.push(w);
                    lines.1 = n;
                } else {
                    off.push(w);
                    lines.0 = n;
                }
            }
            pairs.push(pair[1] / pair[0]);
        }
        if lines.0 != 0 {
            return Err(BenchError::ExplainWhileOff { name, lines: lines.0 });
        }
        let (on, off) = (median(on), median(off));
        let ratio = on / off;
        let pairs: Vec<String> = pairs.iter().map(|p| format!("{p:.3}")).collect();
        out += &format!("  {:<12} `{}`\n", name, cmds.join("; "));
        out += &format!(
            "  {:<12} off {:.0} ms, on {:.0} ms, ratio {:.3} ({}; pairs {}); {} cause line(s) when on\n",
            "",
            off * 1e3,
            on * 1e3,
            ratio,
            if ratio <= 1.05 { "met" } else { "missed" },
            pairs.join(" "),
            lines.1
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::{median, ratio_interval, VerifyRatio, VerifyWorkload};

    #[test]
    fn the_floor_intervals_split_the_ratio_at_the_floor() {
        // every round: floor 5 % over off, on 10 % over the floor
        let offs = [0.140, 0.150, 0.138, 0.145, 0.160];
        let r = VerifyRatio {
            workload: VerifyWorkload::FullArea(64),
            off: 0.145,
            on: 0.145 * 1.05 * 1.10,
            floor: Some(0.145 * 1.05),
            drain: None,
            virt_ns: 0,
            violations: 0,
            light: 0,
            rounds: offs.iter().map(|&o| (o, o * 1.05 * 1.10)).collect(),
            floors: offs.iter().map(|&o| o * 1.05).collect(),
        };
        let ((a, b), (c, d)) = r.floor_intervals().unwrap();
        assert!((a - 1.05).abs() < 1e-9 && (b - 1.05).abs() < 1e-9, "floor/off {a}-{b}");
        assert!((c - 1.10).abs() < 1e-9 && (d - 1.10).abs() < 1e-9, "on/floor {c}-{d}");
        let none = VerifyRatio { floors: Vec::new(), ..r };
        assert_eq!(none.floor_intervals(), None, "no floor measured: no intervals");
    }

    #[test]
    fn the_ratio_interval_is_a_point_without_noise_and_widens_with_it() {
        assert_eq!(ratio_interval(&[(1.0, 1.2)]), None, "one round: no interval");
        let steady: Vec<(f64, f64)> = (0..9).map(|i| (0.1 + i as f64 * 0.01, (0.1 + i as f64 * 0.01) * 1.2)).collect();
        let (lo, hi) = ratio_interval(&steady).unwrap();
        assert!((lo - 1.2).abs() < 1e-9 && (hi - 1.2).abs() < 1e-9, "every round 1.2: {lo}-{hi}");
        // the same medians with one side noisy: the interval spans the
        // median ratio and is wider
        let noisy: Vec<(f64, f64)> = [(140.0, 150.0), (138.0, 170.0), (141.0, 152.0), (139.0, 149.0), (150.0, 160.0), (137.0, 210.0), (142.0, 151.0), (140.0, 158.0), (139.0, 155.0)].to_vec();
        let (lo, hi) = ratio_interval(&noisy).unwrap();
        let point = median(noisy.iter().map(|r| r.1).collect()) / median(noisy.iter().map(|r| r.0).collect());
        assert!(lo <= point && point <= hi && hi - lo > 0.02, "{lo}-{hi} around {point}");
        assert_eq!(ratio_interval(&noisy), Some((lo, hi)), "the same rounds give the same interval");
    }
}
