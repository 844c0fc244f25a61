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
    let (base, base_wall, _) = run("poweroff\n")?;
    let (spin, spin_wall, text) = run(&format!("spin {TURNS}\npoweroff\n"))?;
    let want = (0..TURNS as u64).map(|i| (i + 1) as u32).fold(0u32, |a, b| a.wrapping_add(b));
    if !text.contains(&format!("checksum {:#010x}", want)) {
        return Err("guest spin loop gave a wrong checksum".into());
    }
    let d_insns = spin.stats.insns - base.stats.insns;
    let d_wall = (spin_wall.as_secs_f64() - base_wall.as_secs_f64()).max(1e-9);
    let instr_mips = d_insns as f64 / d_wall / 1e6;

    let kernel = Image::parse("kernel", images::KERNEL_ELF).map_err(|e| e.to_string())?;
    let f = kernel.symbols.iter().find(|(n, _, _)| n == "spin_loop").map(|s| s.1).ok_or("no spin_loop symbol")?;
    let segs: Vec<(u64, Vec<u8>)> = kernel.segments.iter().map(|s| (s.vaddr, s.data.clone())).collect();
    let t = Instant::now();
    let r = bare::run_function(&segs, f, TURNS).map_err(|e| e.to_string())?;
    let bare_wall = t.elapsed().as_secs_f64();
    if r != want {
        return Err("bare spin loop gave a wrong checksum".into());
    }
    let bare_mips = (3.0 * TURNS as f64 + 3.0) / bare_wall / 1e6;
    out += &format!(
        "guest ALU loop ({} M instructions): instrumented {:.0} MIPS, bare Unicorn {:.0} MIPS, ratio {:.2}\n",
        3 * TURNS as u64 / 1_000_000,
        instr_mips,
        bare_mips,
        instr_mips / bare_mips
    );
    out += &format!("targets: boot ≤ 250 ms ({}), instrumented ≥ 50 % of bare ({})",
        if boot_ms <= 250.0 { "met" } else { "missed" },
        if instr_mips / bare_mips >= 0.5 { "met" } else { "missed" });
    Ok(out)
}
