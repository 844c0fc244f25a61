//! `cmaemu boot -s/-S`: the same board, run under the GDB stub.
use super::boot::{boot_dtb, finish, BootArgs};
use super::{bad_input, tty, EXIT_GUEST_FAILURE};
use crate::board::machine::{self, Outcome};
use crate::cpu::gdb::{self, GdbEnd};
use crate::loader::images;
use std::process::ExitCode;

/// `boot -s/-S`: the same board, run under the GDB stub.
pub fn run(a: BootArgs) -> ExitCode {
    let (dtb, ram_size) = match boot_dtb(&a) {
        Ok(x) => x,
        Err(e) => return bad_input(e),
    };
    let (kernel, firmware) = match images::kernel(a.kernel.as_deref()).and_then(|k| Ok((k, images::firmware(a.firmware.as_deref())?))) {
        Ok(x) => x,
        Err(e) => return bad_input(e),
    };
    let entry = match crate::loader::elf::Image::parse("firmware", &firmware) {
        Ok(i) => i.entry_pa as u32,
        Err(e) => return bad_input(e),
    };
    let max_insns = if a.max_insns == 0 { u64::MAX } else { a.max_insns };
    let mut m = match machine::Machine::new(&kernel, &firmware, &dtb, ram_size, max_insns) {
        Ok(m) => m,
        Err(e) => return bad_input(e),
    };
    let port = a.gdb_port.unwrap_or(1234);
    let listener = match gdb::listen(port) {
        Ok(l) => l,
        Err(e) => return bad_input(format!("gdb stub: cannot listen on 127.0.0.1:{port}: {e}")),
    };
    eprintln!(
        "cmaemu: gdb stub on 127.0.0.1:{port}{}",
        if a.gdb_wait { " (waiting for the debugger before the first instruction)" } else { "" }
    );
    let elf = match &a.kernel {
        Some(p) => Ok(p.clone()),
        None => images::kernel_elf_file(),
    };
    match elf {
        Ok(p) => eprintln!("cmaemu: kernel symbols: gdb-multiarch {} -ex 'target remote :{port}'", p.display()),
        Err(e) => eprintln!("cmaemu: cannot write the kernel ELF for gdb: {e}"),
    }
    let (input, guard) = tty::console_input();
    m.cpu().bus_mut().console = crate::board::console::Console::new(input, true, None);
    let start = std::time::Instant::now();
    let r = m.cpu().run_with_gdb(entry, &listener, a.gdb_wait, max_insns);
    drop(guard);
    m.final_check();
    let (violations, violation_summary) = (m.violations(), m.violation_summary());
    let cpu = m.cpu();
    cpu.bus_mut().console.flush();
    let stop = match r {
        Ok(GdbEnd::Killed) => {
            eprintln!("\r\ncmaemu: killed by the debugger");
            return ExitCode::SUCCESS;
        }
        Ok(GdbEnd::Stopped(s)) => s,
        Err(e) => {
            eprintln!("cmaemu: {e}");
            return ExitCode::from(EXIT_GUEST_FAILURE);
        }
    };
    let exit = m.exit_of(stop, "reboot is not supported under the gdb stub");
    let cpu = m.cpu();
    let o = Outcome {
        exit,
        violations,
        violation_summary,
        events: Vec::new(),
        snapshot: None,
        last_frame: None,
        frames: (0, 0),
        scanout: (0, 0),
        stutter: (0, 0),
        stats: cpu.stats(),
        wall: start.elapsed(),
        last_exception: cpu.last_exception(),
        regs: cpu.regs(),
        console_tail: cpu.bus().console.tail_lines(),
        reboots: 0,
        profile: Vec::new(),
    };
    finish(&a, &o)
}
