//! Benchmarks: figures printed as ratios against a baseline run in the
//! same process (never asserted by tests).
use crate::board::console::{Capture, Input};
use crate::board::machine::{self, BootConfig, Exit};
use crate::loader::{board_dtb, images};
use std::time::Instant;

/// Boot to the shell prompt and power off; report wall time and MIPS.
pub fn boot_bench() -> Result<String, String> {
    let mut lines = Vec::new();
    let mut walls = Vec::new();
    for _ in 0..5 {
        let cap = Capture::default();
        let cfg = BootConfig {
            kernel_elf: images::KERNEL_ELF.to_vec(),
            firmware_elf: images::FIRMWARE_ELF.to_vec(),
            dtb: board_dtb::default_board_dtb(1 << 30),
            ram_size: 1 << 30,
            max_insns: 10_000_000_000,
            input: Input::Script(b"poweroff\n".iter().copied().collect()),
            stdout: false,
            capture: Some(cap.clone()),
            idle_after_eof_ns: 1_000_000_000,
        };
        let t = Instant::now();
        let o = machine::boot(cfg).map_err(|e| e.to_string())?;
        let wall = t.elapsed();
        if o.exit != Exit::Poweroff(0) {
            return Err(format!("boot did not power off cleanly: {:?}", o.exit));
        }
        walls.push(wall.as_secs_f64());
        lines.push(format!("  boot→prompt→poweroff: {:.1} ms wall, {} guest instructions", wall.as_secs_f64() * 1e3, o.stats.insns));
    }
    walls.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Ok(format!("bench boot (5 runs, median {:.1} ms)\n{}", walls[2] * 1e3, lines.join("\n")))
}
