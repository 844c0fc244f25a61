//! The bodies of `cmaemu`'s subcommands, one module each. The binary
//! (`main.rs`) holds only the clap definitions and the dispatch; the
//! argument structs of the larger subcommands (`BootArgs`, `TestArgs`, …)
//! live beside their bodies here, as `fuzz::FuzzArgs` does.
//!
//! Every body returns the process's exit status: 0 done, 1 a scenario or
//! comparison failed, 2 bad input (files, flags, DTB), 3 the guest failed,
//! 4 `--max-insns` reached, 5 a verifier found a violation.
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

pub mod bench;
pub mod boot;
pub mod dtb;
pub mod failure;
pub mod gdb;
pub mod matrix;
pub mod oracle;
pub mod sweep;
pub mod test;
pub mod trace;
pub mod tty;

/// Exit status when a scenario failed.
pub const EXIT_SCENARIO_FAILED: u8 = 1;
/// Exit status for bad input (files, flags, DTB).
pub const EXIT_BAD_INPUT: u8 = 2;
/// Exit status when the guest kernel crashed or the emulator had to stop it.
pub const EXIT_GUEST_FAILURE: u8 = 3;
/// Exit status when `--max-insns` was reached.
pub const EXIT_MAX_INSNS: u8 = 4;
/// Exit status when a verifier found a violation (unless `--on-violation
/// warn`); it wins over every other exit cause of the run.
pub const EXIT_VIOLATION: u8 = 5;

/// `memparse`-style sizes: 256M, 1G, 65536K, 0x10000000 (the scenario
/// files' parser).
pub fn parse_size(s: &str) -> Result<u64, crate::scenario::ValueError> {
    crate::scenario::parse_size(s)
}

/// Print `cmaemu: MSG` and return the bad-input exit status.
pub fn bad_input(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("cmaemu: {msg}");
    ExitCode::from(EXIT_BAD_INPUT)
}

/// A progress bar on a terminal's stderr (hidden otherwise).
pub fn progress_bar(n: usize, what: &str) -> indicatif::ProgressBar {
    if std::io::stderr().is_terminal() {
        let pb = indicatif::ProgressBar::new(n as u64);
        if let Ok(st) = indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}") {
            pb.set_style(st);
        }
        pb.set_message(what.to_string());
        pb.enable_steady_tick(Duration::from_millis(200));
        pb
    } else {
        indicatif::ProgressBar::hidden()
    }
}
