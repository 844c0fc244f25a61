//! What `cmaemu boot` prints on stderr about how a run ended: a guest
//! failure (the last exception, the registers with their symbols, the
//! console's last lines), `--max-insns` reached, and `--stats`.
use super::boot::BootArgs;
use crate::board::machine::Outcome;
use crate::board::profile::Symbolizer;
use crate::loader::images;

/// The kernel's and firmware's symbols, for PC/LR in failure reports.
pub fn symbolizer(a: &BootArgs) -> Symbolizer {
    let kernel = images::kernel(a.kernel.as_deref()).unwrap_or_default();
    let firmware = images::firmware(a.firmware.as_deref()).unwrap_or_default();
    Symbolizer::from_elves(&[("kernel", &kernel), ("firmware", &firmware)])
}

/// ` (func+0x1c/0x80)` for a code address, or nothing.
pub fn at_symbol(sym: &Symbolizer, addr: u32) -> String {
    sym.symbol(addr as u64).map(|s| format!(" ({s})")).unwrap_or_default()
}

pub fn report_failure(o: &Outcome, what: &str, sym: &Symbolizer) {
    eprintln!();
    eprintln!("cmaemu: guest failure: {what}");
    if let Some(e) = &o.last_exception {
        eprintln!(
            "  last exception: {} at pc {:#010x}{}, fault address {:#010x}, fault status {:#x}, cpsr {:#010x}, at {} ns",
            e.kind.name(),
            e.pc,
            at_symbol(sym, e.pc),
            e.far,
            e.fsr,
            e.cpsr,
            e.at
        );
        print_regs("  registers at the exception:", &e.regs, sym);
    }
    let (r, cpsr) = o.regs;
    print_regs(&format!("  registers now (cpsr {cpsr:#010x}):"), &r, sym);
    eprintln!("  retired instructions: {}", o.stats.insns);
    print_console_tail(o);
}

pub fn print_console_tail(o: &Outcome) {
    if o.console_tail.is_empty() {
        eprintln!("  last console lines: (the guest printed nothing)");
        return;
    }
    eprintln!("  last console lines:");
    for l in &o.console_tail {
        eprintln!("    | {l}");
    }
}

/// `--max-insns` reached: not a guest failure; where the guest was and
/// what it printed last.
pub fn report_max_insns(o: &Outcome, max: u64, sym: &Symbolizer) {
    let (r, _) = o.regs;
    eprintln!();
    eprintln!("cmaemu: stopped: --max-insns {max} reached (the instruction limit, not a guest failure; raise it, or 0 for no limit)");
    eprintln!("  pc {:#010x}{}, lr {:#010x}{}", r[15], at_symbol(sym, r[15]), r[14], at_symbol(sym, r[14]));
    print_console_tail(o);
}

pub fn print_regs(title: &str, r: &[u32; 16], sym: &Symbolizer) {
    eprintln!("{title}");
    // Linux's __show_regs: "PC is at func+off/size", "LR is at ..."
    eprintln!("    PC is at {}", sym.symbol(r[15] as u64).unwrap_or_else(|| format!("{:#010x}", r[15])));
    eprintln!("    LR is at {}", sym.symbol(r[14] as u64).unwrap_or_else(|| format!("{:#010x}", r[14])));
    for row in 0..4 {
        let names = ["r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9", "r10", "r11", "r12", "sp", "lr", "pc"];
        let line: Vec<String> = (0..4).map(|c| format!("{:>3}={:08x}", names[row * 4 + c], r[row * 4 + c])).collect();
        eprintln!("    {}", line.join("  "));
    }
}

pub fn print_stats(o: &Outcome) {
    let s = &o.stats;
    let mips = s.insns as f64 / o.wall.as_secs_f64().max(1e-9) / 1e6;
    eprintln!(
        "cmaemu: stats: retired_instructions={} virtual_time_ns={} idle_ns={} blocks={} irqs={} exceptions={} tlb_fills={} wfi={} reboots={} wall_ms={:.1} mips={:.1} camera_frames={} display_frames={} scanout_ok={} scanout_bad={} frames_repeated={} camera_frames_dropped={} violations={}",
        s.insns,
        s.insns * crate::board::machine::NS_PER_INSN + s.idle_ns,
        s.idle_ns,
        s.blocks,
        s.irqs,
        s.exceptions,
        s.tlb_fills,
        s.wfi,
        o.reboots,
        o.wall.as_secs_f64() * 1e3,
        mips,
        o.frames.0,
        o.frames.1,
        o.scanout.0,
        o.scanout.1,
        o.stutter.0,
        o.stutter.1,
        o.violations.len()
    );
}
