//! `cmaemu boot`: the options, the run, its outputs (trace, report,
//! screenshot) and its exit status.
use super::{bad_input, failure, tty, EXIT_BAD_INPUT, EXIT_GUEST_FAILURE, EXIT_MAX_INSNS, EXIT_VIOLATION};
use crate::board::machine::{self, BootConfig, Exit, Outcome};
use crate::instrument::OnViolation;
use crate::loader::{board_dtb, images};
use crate::outpath::{self, OutPathError};
use crate::trace;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args, Clone)]
pub struct BootArgs {
    /// Device tree blob (default: the embedded board).
    #[arg(long)]
    pub dtb: Option<PathBuf>,
    /// Guest kernel: an ELF, a Linux zImage or raw Image (default: the
    /// embedded kernel). Placed as QEMU's ARM loader does.
    #[arg(long)]
    pub kernel: Option<PathBuf>,
    /// Initial ramdisk (initramfs), placed as QEMU's -initrd and named in
    /// /chosen/linux,initrd-start/end.
    #[arg(long)]
    pub initrd: Option<PathBuf>,
    /// Boot firmware ELF (default: the embedded firmware).
    #[arg(long)]
    pub firmware: Option<PathBuf>,
    /// RAM size at 0x60000000 (at most 1G); rewrites /memory in the DTB.
    #[arg(short = 'm', long = "memory", value_parser = super::parse_size)]
    pub memory: Option<u64>,
    /// Kernel command line; rewrites /chosen/bootargs (like QEMU's -append).
    #[arg(long)]
    pub append: Option<String>,
    /// Stop after this many guest instructions (0: no limit).
    #[arg(long, default_value_t = 50_000_000_000)]
    pub max_insns: u64,
    /// Print run statistics (instructions, virtual time, MIPS) at exit.
    #[arg(long)]
    pub stats: bool,
    /// GDB stub on 127.0.0.1:1234 (like QEMU's -s; see --gdb-port).
    #[arg(short = 's')]
    pub gdb: bool,
    /// Wait for the debugger before the first instruction (like QEMU's -S;
    /// implies -s).
    #[arg(short = 'S')]
    pub gdb_wait: bool,
    /// Port of the GDB stub (implies -s).
    #[arg(long)]
    pub gdb_port: Option<u16>,
    /// Write the event trace (migrations, CMA spans, DMA, counters, violations).
    #[arg(long)]
    pub trace: Option<PathBuf>,
    /// Trace format: perfetto (Chrome trace-event JSON for ui.perfetto.dev), jsonl, ftrace.
    #[arg(long, value_enum, default_value_t = crate::trace::TraceFormat::Perfetto)]
    pub trace_format: crate::trace::TraceFormat,
    /// What a failed verification does: log (report, go on, exit 5 at the
    /// end), stop (report, stop the run, exit 5), warn (report, go on, keep
    /// the guest's exit status).
    #[arg(long, value_enum, default_value_t = OnViolation::Log)]
    pub on_violation: OnViolation,
    /// Do not attach the host verifiers.
    #[arg(long)]
    pub no_verify: bool,
    /// Write a self-contained HTML report of the run (memory map per
    /// frame, allocation timeline, counters, violations) at exit.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Save the last displayed frame (PL111 scan-out) as PNG at exit.
    #[arg(long)]
    pub screenshot: Option<PathBuf>,
    /// Label --screenshot and --record-frames pictures with the display
    /// frame number, the camera frame shown and the buffer address.
    #[arg(long)]
    pub overlay: bool,
    /// Save every displayed frame as DIR/frame-NNNNNN.png.
    #[arg(long)]
    pub record_frames: Option<PathBuf>,
    /// Count retired instructions per guest function and print the top N
    /// (default 30) on stderr at exit. Slows the run down.
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "30")]
    pub profile: Option<usize>,
    /// A real Linux kernel's vmlinux with debug info (`linux-assets.sh
    /// dbg` prints VMLINUX=): read its mm state at quiet points into the
    /// trace and report, and check its allocator integrity there.
    #[arg(long, value_name = "VMLINUX")]
    pub linux_vmlinux: Option<PathBuf>,
}

/// The DTB of this boot (`--dtb`, `-m`, `--append`) and the RAM size.
pub fn boot_dtb(a: &BootArgs) -> Result<(Vec<u8>, u64), board_dtb::BootDtbError> {
    board_dtb::boot_dtb(a.dtb.as_deref(), a.memory, a.append.as_deref())
}

/// `--kernel`, `--firmware`, `--initrd` (read in that order), or the
/// embedded images.
fn boot_images(kernel: Option<&Path>, firmware: Option<&Path>, initrd: Option<&Path>) -> Result<(Vec<u8>, Vec<u8>, Option<Vec<u8>>), images::ImageError> {
    Ok((images::kernel(kernel)?, images::firmware(firmware)?, images::initrd(initrd)?))
}

/// Every output path of a boot, checked before the guest starts.
fn check_boot_outputs(a: &BootArgs) -> Result<(), OutPathError> {
    if let Some(p) = &a.trace {
        outpath::check_file("--trace", p)?;
    }
    if let Some(p) = &a.screenshot {
        outpath::check_file("--screenshot", p)?;
    }
    if let Some(d) = &a.record_frames {
        outpath::prepare_dir("--record-frames", d)?;
    }
    if let Some(p) = &a.report {
        outpath::check_file("--report", p)?;
    }
    Ok(())
}

/// `cmaemu boot`.
pub fn run(a: BootArgs) -> ExitCode {
    if let Err(e) = check_boot_outputs(&a) {
        return bad_input(e);
    }
    if a.gdb || a.gdb_wait || a.gdb_port.is_some() {
        return super::gdb::run(a);
    }
    let (dtb, ram_size) = match boot_dtb(&a) {
        Ok(x) => x,
        Err(e) => return bad_input(e),
    };
    let (kernel, firmware, initrd) = match boot_images(a.kernel.as_deref(), a.firmware.as_deref(), a.initrd.as_deref()) {
        Ok(x) => x,
        Err(e) => return bad_input(e),
    };
    let linux_debuginfo = match &a.linux_vmlinux {
        Some(p) => match crate::introspect::linux::DebugInfo::load(p) {
            Ok(d) => Some(std::sync::Arc::new(d)),
            Err(e) => return bad_input(format!("--linux-vmlinux: {e}")),
        },
        None => None,
    };
    let (input, guard) = tty::console_input();
    let cfg = BootConfig {
        kernel_elf: kernel,
        initrd,
        firmware_elf: firmware,
        dtb,
        ram_size,
        max_insns: if a.max_insns == 0 { u64::MAX } else { a.max_insns },
        input,
        stdout: true,
        capture: None,
        idle_after_eof_ns: 10_000_000_000,
        opts: machine::RunOptions {
            verify: !a.no_verify,
            on_violation: a.on_violation,
            every_frame: a.trace.is_some() || a.report.is_some(),
            report: true,
            record_frames: a.record_frames.clone(),
            profile: a.profile.is_some(),
            trace: a.trace.is_some() || a.report.is_some(),
            overlay: a.overlay,
            dtb_label: Some(a.dtb.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "default board".into())),
            linux_debuginfo,
            no_explain: false,
            // the stream is read only for --trace and --report
            drop_events: a.trace.is_none() && a.report.is_none(),
            transport_only: false,
            drain_every_doorbell: false,
        },
    };
    let outcome = machine::boot(cfg);
    drop(guard);
    let o = match outcome {
        Ok(o) => o,
        Err(e) => return bad_input(e),
    };
    finish(&a, &o)
}

/// An output of the run that could not be written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// `--trace`, `--report`: creating or writing the file.
    #[error("{flag} {}: {source}", path.display())]
    Write { flag: &'static str, path: PathBuf, source: std::io::Error },
    /// `--screenshot`: encoding or writing the PNG.
    #[error("--screenshot {}: {source}", path.display())]
    Screenshot { path: PathBuf, source: crate::board::frames::FrameError },
}

/// The error of writing `flag`'s file.
fn io<'a>(flag: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> OutputError + 'a {
    move |source| OutputError::Write { flag, path: path.to_path_buf(), source }
}

/// Write --trace, --report and --screenshot outputs, then the violation
/// summary and the scan-out mismatches on stderr.
fn write_outputs(a: &BootArgs, o: &Outcome) -> Result<(), OutputError> {
    if let Some(path) = &a.trace {
        let f = std::fs::File::create(path).map_err(io("--trace", path))?;
        let mut w = std::io::BufWriter::new(f);
        let r = a.trace_format.write(&o.events, &mut w);
        r.and_then(|_| std::io::Write::flush(&mut w)).map_err(io("--trace", path))?;
    }
    if let Some(path) = &a.report {
        let f = std::fs::File::create(path).map_err(io("--report", path))?;
        let mut w = std::io::BufWriter::new(f);
        let title = a.dtb.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "boot".into());
        let extra = vec![
            ("retired instructions".to_string(), o.stats.insns.to_string()),
            ("camera frames captured".to_string(), o.frames.0.to_string()),
            ("display frames scanned out".to_string(), o.frames.1.to_string()),
            ("displayed frames matching the camera / not".to_string(), format!("{} / {}", o.scanout.0, o.scanout.1)),
        ];
        trace::html::write_report(&o.events, &title, &extra, &mut w)
            .and_then(|_| std::io::Write::flush(&mut w))
            .map_err(io("--report", path))?;
    }
    if let Some(path) = &a.screenshot {
        match &o.last_frame {
            Some((w, h, rgba)) => crate::board::frames::write_png(path, *w, *h, rgba).map_err(|source| OutputError::Screenshot { path: path.clone(), source })?,
            None => eprintln!("cmaemu: --screenshot: the display never showed a frame; nothing written"),
        }
    }
    for l in o.violation_summary.lines() {
        eprintln!("{l}");
    }
    if o.scanout.1 > 0 {
        eprintln!("cmaemu: {} displayed frame(s) did not match the camera's frames", o.scanout.1);
    }
    Ok(())
}

pub fn finish(a: &BootArgs, o: &Outcome) -> ExitCode {
    if a.stats {
        failure::print_stats(o);
    }
    if let Some(n) = a.profile {
        eprint!("{}", crate::board::profile::format_profile(&o.profile, n));
    }
    if let Err(e) = write_outputs(a, o) {
        eprintln!("cmaemu: {e}");
        return ExitCode::from(EXIT_BAD_INPUT);
    }
    let code = exit_code(a, o);
    if o.violation_summary.total > 0 && a.on_violation != OnViolation::Warn && !matches!(o.exit, Exit::Violation) {
        eprintln!("cmaemu: exit status 5: the verifiers found {} violation(s) (--on-violation warn keeps the guest's status)", o.violation_summary.total);
        return ExitCode::from(EXIT_VIOLATION);
    }
    code
}

/// The exit status for how the run ended (a violation found on the way
/// overrides it: see `finish`).
fn exit_code(a: &BootArgs, o: &Outcome) -> ExitCode {
    match &o.exit {
        Exit::Violation => {
            eprintln!("cmaemu: stopped on a verification violation (--on-violation stop)");
            ExitCode::from(EXIT_VIOLATION)
        }
        Exit::Poweroff(c) => ExitCode::from(*c),
        Exit::Panic(code) => {
            failure::report_failure(o, &format!("kernel panic (poweroff status {code:#010x})"), &failure::symbolizer(a));
            ExitCode::from(EXIT_GUEST_FAILURE)
        }
        Exit::MaxInsns => {
            failure::report_max_insns(o, a.max_insns, &failure::symbolizer(a));
            ExitCode::from(EXIT_MAX_INSNS)
        }
        Exit::IdleAfterEof => {
            eprintln!("cmaemu: console input ended and the guest stayed idle for 10 s of virtual time; stopping");
            ExitCode::SUCCESS
        }
        Exit::UserQuit => {
            eprintln!("\r\ncmaemu: terminated by Ctrl-A x");
            ExitCode::SUCCESS
        }
        Exit::Error(e) => {
            failure::report_failure(o, e, &failure::symbolizer(a));
            ExitCode::from(EXIT_GUEST_FAILURE)
        }
    }
}
