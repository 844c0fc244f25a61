//! Benchmarks: figures printed as ratios against a baseline run in the
//! same process (never asserted by tests).
use crate::board::console::{Capture, Input};
use crate::board::machine::{self, BootConfig, Exit, Outcome};
use crate::cpu::bare;
use crate::loader::elf::Image;
use crate::loader::{board_dtb, images};
use std::time::{Duration, Instant};

fn run(script: &str) -> Result<(Outcome, Duration, String), String> {
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
    let o = machine::boot(cfg).map_err(|e| e.to_string())?;
    let wall = t.elapsed();
    if o.exit != Exit::Poweroff(0) {
        return Err(format!("run did not power off cleanly: {:?}", o.exit));
    }
    Ok((o, wall, cap.text()))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Boot to the prompt (wall time), and guest MIPS of the instrumented loop
/// against bare Unicorn running the same guest function.
pub fn boot_bench() -> Result<String, String> {
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
    let kernel = Image::parse("kernel", images::KERNEL_ELF).map_err(|e| e.to_string())?;
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
fn alu_pairs(m: &mut Machine, kernel: &Image, segs: &[(u64, Vec<u8>)], lp: AluLoop, turns: u32) -> Result<(f64, f64, f64, f64), String> {
    let want = (lp.checksum)(turns);
    let f = kernel.symbols.iter().find(|(n, _, _)| n == lp.symbol).map(|s| s.1).ok_or(format!("no {} symbol", lp.symbol))?;
    let mut pairs = Vec::new();
    for _ in 0..5 {
        let (insns, wall, text) = timed(m, &format!("spin {turns}{}", lp.arg))?;
        if !text.contains(&format!("checksum {:#010x}", want)) {
            return Err(format!("guest {} gave a wrong checksum: {text}", lp.symbol));
        }
        let instr = insns as f64 / wall / 1e6;
        let t = Instant::now();
        let r = bare::run_function(segs, f, turns).map_err(|e| e.to_string())?;
        let wall = t.elapsed().as_secs_f64();
        if r != want {
            return Err(format!("bare {} gave a wrong checksum", lp.symbol));
        }
        pairs.push((instr, (lp.per_turn as f64 * turns as f64 + lp.fixed as f64) / wall / 1e6));
    }
    pairs.sort_by(|a, b| (a.0 / a.1).total_cmp(&(b.0 / b.1)));
    let (i, b) = pairs[pairs.len() / 2];
    let (lo, hi) = (pairs[0].0 / pairs[0].1, pairs[pairs.len() - 1].0 / pairs[pairs.len() - 1].1);
    Ok((i, b, lo, hi))
}

fn machine(ram: u64, bootargs: &str, verify: bool) -> Result<Machine, String> {
    let mut dtb = Dtb::parse(&board_dtb::default_board_dtb(ram)).map_err(|e| e.to_string())?;
    dtb.set_bootargs(bootargs).map_err(|e| e.to_string())?;
    let opts = RunOptions { verify, ..Default::default() };
    let mut m = Machine::with_options(images::KERNEL_ELF, images::FIRMWARE_ELF, &dtb.to_bytes().map_err(|e| e.to_string())?, ram, 500_000_000_000, opts)
        .map_err(|e| e.to_string())?;
    if m.run_until_idle() != Step::Paused {
        return Err("guest did not reach its prompt".into());
    }
    Ok(m)
}

/// Run one command; (guest instructions, wall seconds, its output).
fn timed(m: &mut Machine, cmd: &str) -> Result<(u64, f64, String), String> {
    let before = m.output().len();
    let i0 = m.stats().insns;
    let t = Instant::now();
    if m.command(cmd) != Step::Paused {
        return Err(format!("`{cmd}` did not return to the prompt"));
    }
    let out = m.output()[before..].to_string();
    Ok((m.stats().insns - i0, t.elapsed().as_secs_f64(), out))
}

/// One full-area allocation of `mib` MiB: fill all memory (the CMA area
/// fills last, by fallback), give back memory outside the area so that
/// migration has targets, then allocate. Returns (guest instructions, wall
/// seconds, pages migrated, the profile if asked).
fn full_area_alloc(mib: u64, verify: bool, profile: Option<usize>) -> Result<(u64, f64, u64, String), String> {
    let pages = mib * 256;
    let mut m = machine(1 << 30, CMA_BENCH_ARGS, verify)?;
    let base: u64 = timed(&mut m, "cat /sys/kernel/debug/cma/reserved/base_pfn")?.2.lines().nth(1).and_then(|l| l.trim().parse().ok()).ok_or("no base_pfn")?;
    let count: u64 = 80 * 256;
    let mi = timed(&mut m, "cat /proc/meminfo")?.2;
    let free_kb: u64 = mi.lines().find(|l| l.starts_with("MemFree:")).and_then(|l| l[8..].trim().trim_end_matches("kB").trim().parse().ok()).ok_or("no MemFree")?;
    timed(&mut m, &format!("fill {}", free_kb / 1024 - 4))?;
    timed(&mut m, &format!("free {} out {:#x} {:#x}", mib + 8, base, base + count))?;
    let vm0 = timed(&mut m, "cat /proc/vmstat")?.2;
    if profile.is_some() {
        m.enable_profile().map_err(|e| e.to_string())?;
    }
    let (fi, fw, fo) = timed(&mut m, &format!("echo {pages} > /sys/kernel/debug/cma/reserved/alloc"))?;
    let prof = match profile {
        Some(n) => format!("\nfull-area allocation of {mib} MiB:\n{}", crate::board::profile::format_profile(&m.take_profile(), n)),
        None => String::new(),
    };
    if fo.contains("alloc failed") {
        return Err(format!("full-area allocation of {mib} MiB failed: {fo}"));
    }
    let vm1 = timed(&mut m, "cat /proc/vmstat")?.2;
    let mig = |t: &str| -> u64 { t.lines().find(|l| l.starts_with("pgmigrate_success ")).and_then(|l| l[18..].trim().parse().ok()).unwrap_or(0) };
    Ok((fi, fw, mig(&vm1) - mig(&vm0), prof))
}

const CMA_BENCH_ARGS: &str = "console=ttyAMA0 cma=80M";

/// `cmaemu bench cma`: cma_alloc latency for 1, 4, 16, 64 MiB on an empty
/// area and on an area full of movable pages, beside a guest memcpy of the
/// same size, in guest instructions and wall time (the full-area case with
/// host verification on, as by default, and off).
pub fn cma_bench(profile: Option<usize>) -> Result<String, String> {
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
            return Err(format!("empty-area allocation of {mib} MiB failed: {eo}"));
        }
        let (fi, fw, migrated, prof) = full_area_alloc(mib, true, profile)?;
        profiles += &prof;
        // Without verification nobody drains the trace ring, so the guest's
        // pushes take the (cheaper) overflow path: only its wall time is
        // shown.
        let (_, nw, _, _) = full_area_alloc(mib, false, None)?;
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

/// `cmaemu bench verify`: the same workload (fill, CMA allocations with
/// migration, a camera preview under stress) with host verification at
/// every doorbell and frame vs without, as a ratio from one run.
pub fn verify_bench() -> Result<String, String> {
    let script = ["fill 110 3", "echo 4096 > /sys/kernel/debug/cma/linux,cma/alloc", "stress 2 &", "preview 60", "check"];
    let mut res = Vec::new();
    // five runs each, interleaved (off, on, off, on, ...): the median of each
    for verify in [false, true].repeat(5) {
        let t = Instant::now();
        let mut m = machine(256 << 20, "console=ttyAMA0", verify)?;
        for c in script {
            timed(&mut m, c)?;
        }
        if verify && !m.verifying() {
            return Err("verification did not attach".into());
        }
        res.push((verify, t.elapsed().as_secs_f64(), m.violations().len()));
    }
    let off = median(res.iter().filter(|r| !r.0).map(|r| r.1).collect());
    let on = median(res.iter().filter(|r| r.0).map(|r| r.1).collect());
    Ok(format!(
        "bench verify: workload `{}`\n  verification off: {:.0} ms, on: {:.0} ms (median of 5 interleaved runs each), ratio {:.2} (target <= 1.10), violations {}",
        script.join("; "),
        off * 1e3,
        on * 1e3,
        on / off,
        res.iter().map(|r| r.2).sum::<usize>()
    ))
}

/// `cmaemu bench sweep`: sweep throughput (boots per minute) of the
/// camera-preview-under-pressure example (2 CMA sizes × 4 seeds) on one
/// worker thread and on two, interleaved, 5 rounds; the scaling ratio is
/// of the medians. The two give the same records (checked).
pub fn sweep_bench() -> Result<String, String> {
    use crate::scenario::axes::Axis;
    use crate::scenario::{run_indexed, Plan, Scenario};
    let src = include_str!("../../examples/camera-preview-under-pressure.toml");
    let sc = Scenario::parse("camera-preview-under-pressure.toml", src).map_err(|e| e.to_string())?;
    let axis = Axis::parse_cli("cma=16M,64M").map_err(|e| e.to_string())?;
    let plan = Plan::new(&sc, String::new(), vec![axis], Some(0..4), None).map_err(|e| e.to_string())?;
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
                Some(f) if *f != recs => return Err(format!("--jobs {jobs} gave other records than the first round")),
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
