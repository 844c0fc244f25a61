//! `cmaemu`: the command line (clap). Everything else lives in the library.
use clap::{Parser, Subcommand};
use cmaemu::board::console::Input;
use cmaemu::board::machine::{self, BootConfig, Exit, Outcome};
use cmaemu::memory::map::{valid_ram_size, RAM_MAX_SIZE};
use cmaemu::loader::{board_dtb, images};
use cmaemu::bench::BenchKind;
use cmaemu::instrument::OnViolation;
use cmaemu::scenario;
use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// The system allocator; under `cmaemu fuzz`, one allocation above the
/// fuzzer's limit saves the input and stops the run.
#[global_allocator]
static ALLOC: cmaemu::fuzz::LimitAlloc = cmaemu::fuzz::LimitAlloc;

/// Exit status for bad input (files, flags, DTB).
const EXIT_BAD_INPUT: u8 = 2;
/// Exit status when the guest kernel crashed or the emulator had to stop it.
const EXIT_GUEST_FAILURE: u8 = 3;
/// Exit status when `--max-insns` was reached.
const EXIT_MAX_INSNS: u8 = 4;
/// Exit status when a verifier found a violation (unless `--on-violation
/// warn`); it wins over every other exit cause of the run.
const EXIT_VIOLATION: u8 = 5;

#[derive(Parser)]
#[command(name = "cmaemu", version, about = "An instrumented vexpress-a9 emulator for Linux's Contiguous Memory Allocator")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Boot the board (like `qemu-system-arm -M vexpress-a9`): the serial
    /// console is this terminal; Ctrl-A x quits.
    Boot(BootArgs),
    /// Write the default board's device tree.
    Dtb {
        /// Output file (`-`: standard output).
        #[arg(short, long)]
        output: PathBuf,
        /// RAM size (e.g. 256M, 1G).
        #[arg(short = 'm', long = "memory", default_value = "1G", value_parser = parse_size)]
        memory: u64,
    },
    /// Run scenario files (TOML; see `cmaemu::scenario`): boot, drive the
    /// console, check expectations. Exit status 1 if one failed, 2 if a
    /// file is bad.
    Test(TestArgs),
    /// Run one scenario once per seed (`{seed}` in its commands and
    /// bootargs), in parallel; one JSON line per seed, in seed order.
    Sweep(SweepArgs),
    /// Write one self-contained HTML report (memory map per frame,
    /// allocation timeline, counters, violations) of a trace written with
    /// `boot --trace FILE --trace-format jsonl`.
    Report {
        /// The JSON-lines trace.
        file: PathBuf,
        /// The HTML file to write.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// The catch matrix: every fault injection against every shipped
    /// workload (examples/matrix/) plus a clean run of each; prints per
    /// cell fired/caught, the checks that caught it and the virtual time
    /// from the firing to the first violation. Exit 1 if a fired injection
    /// went uncaught, a clean run reported anything, or an injection fired
    /// in fewer than two workloads (one with --quick).
    Matrix(MatrixArgs),
    /// The differential oracle: run case files (oracle/cases/) on cmaemu
    /// and on the real Linux kernel under QEMU and compare (use
    /// scripts/oracle.sh, which fetches and builds the Linux side). Exit 1
    /// if a compared quantity differs.
    Oracle(OracleArgs),
    /// Fuzz the host's input parsers (DTB, ELF, scenarios, traces, sizes,
    /// the guest command line and reserved memory, gdb packets, console)
    /// for a budget; crashes and hangs are saved with a replay command.
    Fuzz(cmaemu::fuzz::FuzzArgs),
    /// Read a trace written with `boot --trace FILE --trace-format jsonl`.
    Trace {
        #[command(subcommand)]
        cmd: TraceCmd,
    },
    /// Benchmarks (figures are ratios against a baseline in the same run).
    Bench {
        #[arg(value_enum)]
        what: cmaemu::bench::BenchKind,
        /// `cma` only: also print the top N guest functions of each
        /// full-area allocation, by retired instructions (wall times then
        /// include the profiler's cost).
        #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "30")]
        profile: Option<usize>,
        /// `verify` only: run this workload alone (mixed, cma64, cma16,
        /// preview-stress).
        #[arg(long, value_name = "NAME")]
        workload: Option<String>,
    },
}

#[derive(Subcommand)]
enum TraceCmd {
    /// Per-frame table: migrations, pages copied, CMA allocations and their
    /// latency, DMA transfers, violations.
    Summary { file: PathBuf },
    /// Draw the physical memory of frame N as a PNG: one cell per
    /// pageblock coloured by migrate type, zone and CMA-area bands with
    /// their addresses, a row address axis and a legend.
    Map {
        file: PathBuf,
        #[arg(long)]
        frame: u64,
        #[arg(short, long)]
        output: PathBuf,
        /// Show every page's state (free, kernel, user, CMA, device...) inside its pageblock.
        #[arg(long)]
        pages: bool,
    },
}

#[derive(clap::Args, Clone)]
struct BootArgs {
    /// Device tree blob (default: the embedded board).
    #[arg(long)]
    dtb: Option<PathBuf>,
    /// Guest kernel: an ELF, a Linux zImage or raw Image (default: the
    /// embedded kernel). Placed as QEMU's ARM loader does.
    #[arg(long)]
    kernel: Option<PathBuf>,
    /// Initial ramdisk (initramfs), placed as QEMU's -initrd and named in
    /// /chosen/linux,initrd-start/end.
    #[arg(long)]
    initrd: Option<PathBuf>,
    /// Boot firmware ELF (default: the embedded firmware).
    #[arg(long)]
    firmware: Option<PathBuf>,
    /// RAM size at 0x60000000 (at most 1G); rewrites /memory in the DTB.
    #[arg(short = 'm', long = "memory", value_parser = parse_size)]
    memory: Option<u64>,
    /// Kernel command line; rewrites /chosen/bootargs (like QEMU's -append).
    #[arg(long)]
    append: Option<String>,
    /// Stop after this many guest instructions (0: no limit).
    #[arg(long, default_value_t = 50_000_000_000)]
    max_insns: u64,
    /// Print run statistics (instructions, virtual time, MIPS) at exit.
    #[arg(long)]
    stats: bool,
    /// GDB stub on 127.0.0.1:1234 (like QEMU's -s; see --gdb-port).
    #[arg(short = 's')]
    gdb: bool,
    /// Wait for the debugger before the first instruction (like QEMU's -S;
    /// implies -s).
    #[arg(short = 'S')]
    gdb_wait: bool,
    /// Port of the GDB stub (implies -s).
    #[arg(long)]
    gdb_port: Option<u16>,
    /// Write the event trace (migrations, CMA spans, DMA, counters, violations).
    #[arg(long)]
    trace: Option<PathBuf>,
    /// Trace format: perfetto (Chrome trace-event JSON for ui.perfetto.dev), jsonl, ftrace.
    #[arg(long, value_enum, default_value_t = cmaemu::trace::TraceFormat::Perfetto)]
    trace_format: cmaemu::trace::TraceFormat,
    /// What a failed verification does: log (report, go on, exit 5 at the
    /// end), stop (report, stop the run, exit 5), warn (report, go on, keep
    /// the guest's exit status).
    #[arg(long, value_enum, default_value_t = OnViolation::Log)]
    on_violation: OnViolation,
    /// Do not attach the host verifiers.
    #[arg(long)]
    no_verify: bool,
    /// Write a self-contained HTML report of the run (memory map per
    /// frame, allocation timeline, counters, violations) at exit.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Save the last displayed frame (PL111 scan-out) as PNG at exit.
    #[arg(long)]
    screenshot: Option<PathBuf>,
    /// Label --screenshot and --record-frames pictures with the display
    /// frame number, the camera frame shown and the buffer address.
    #[arg(long)]
    overlay: bool,
    /// Save every displayed frame as DIR/frame-NNNNNN.png.
    #[arg(long)]
    record_frames: Option<PathBuf>,
    /// Count retired instructions per guest function and print the top N
    /// (default 30) on stderr at exit. Slows the run down.
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "30")]
    profile: Option<usize>,
    /// A real Linux kernel's vmlinux with debug info (`linux-assets.sh
    /// dbg` prints VMLINUX=): read its mm state at quiet points into the
    /// trace and report, and check its allocator integrity there.
    #[arg(long, value_name = "VMLINUX")]
    linux_vmlinux: Option<PathBuf>,
}

#[derive(clap::Args, Clone)]
struct TestArgs {
    /// Scenario files.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Write a JUnit XML report here.
    #[arg(long)]
    junit: Option<PathBuf>,
    /// Value of `{seed}` (default: each file's `seed`, else 0).
    #[arg(long)]
    seed: Option<u64>,
    /// Run this many scenarios in parallel.
    #[arg(short, long, default_value_t = 1)]
    jobs: usize,
    /// Write an HTML report of each scenario's run here (DIR/FILE-STEM.html;
    /// the directory is created).
    #[arg(long, value_name = "DIR")]
    report: Option<PathBuf>,
    /// Write each scenario's console bytes, counts and trace (all three
    /// formats) here: DIR/FILE-STEM.{console,stats,jsonl,perfetto.json,ftrace}
    /// (the directory is created; what tests/golden.rs compares).
    #[arg(long, value_name = "DIR")]
    trace_dir: Option<PathBuf>,
}

#[derive(clap::Args, Clone)]
struct OracleArgs {
    /// The KEY=VALUE lines scripts/linux-oracle.sh printed (ZIMAGE,
    /// ORACLE_INITRD, DTB, QEMU, LINUX_PKG, LINUX_VERSION, LINUX_PIN).
    #[arg(long, value_name = "FILE")]
    linux_env: PathBuf,
    /// Write the report (markdown) here too.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Case files.
    #[arg(required = true)]
    cases: Vec<PathBuf>,
}

#[derive(clap::Args, Clone)]
struct MatrixArgs {
    /// The reduced matrix CI runs (the small-RAM workload only).
    #[arg(long)]
    quick: bool,
    /// Worker threads.
    #[arg(short, long, default_value_t = 1)]
    jobs: usize,
    /// Value of `{seed}` (default: each workload's own).
    #[arg(long)]
    seed: Option<u64>,
    /// Only these injections (repeatable; default: all).
    #[arg(long = "inject", value_name = "NAME")]
    inject: Vec<String>,
    /// Workload scenario files instead of the shipped ones.
    files: Vec<PathBuf>,
}

#[derive(clap::Args, Clone)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
struct SweepArgs {
    #[command(subcommand)]
    cmd: Option<SweepCmd>,
    /// The scenario file.
    #[arg(required = true)]
    file: Option<PathBuf>,
    /// Seeds: A..B (B excluded) or A..=B (default: the file's [sweep] seeds).
    #[arg(long)]
    seeds: Option<String>,
    /// A parameter axis crossed with the seeds, NAME=VALUES (repeatable):
    /// cma=4M..=64M*2, ram=128M,256M, profile=..., cmaemu.KNOB=..., dt.NODE=SIZES, arg.NAME=...
    #[arg(long = "axis", value_name = "NAME=VALUES")]
    axes: Vec<String>,
    /// The axis whose smallest value passing every seed the verdict names (default: the first numeric one).
    #[arg(long)]
    size_axis: Option<String>,
    /// Worker threads.
    #[arg(short, long, default_value_t = 1)]
    jobs: usize,
    /// Run only runs with run % M == k (k/M), or `auto`: k and M from a Slurm job array, a Kubernetes Indexed Job or GitLab CI parallel.
    #[arg(long)]
    shard: Option<String>,
    /// With --shard auto under Kubernetes: the Job's completions.
    #[arg(long)]
    shard_count: Option<u64>,
    /// Write the JSON lines here instead of standard output.
    #[arg(short, long)]
    out: Option<PathBuf>,
    /// Draw the verdict (pass rate, allocation latency) as a PNG here; a
    /// name ending in .html writes one self-contained page instead: the
    /// verdict table and the plot.
    #[arg(long)]
    plot: Option<PathBuf>,
}

#[derive(Subcommand, Clone)]
enum SweepCmd {
    /// Combine the outputs of every shard of a sweep into the single-machine result.
    Merge {
        /// The shards' JSON lines files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Write the merged JSON lines here instead of standard output.
        #[arg(short, long)]
        out: Option<PathBuf>,
        /// Draw the verdict as a PNG here (.html: table and plot in one page).
        #[arg(long)]
        plot: Option<PathBuf>,
    },
}

/// `memparse`-style sizes: 256M, 1G, 65536K, 0x10000000 (the scenario
/// files' parser).
fn parse_size(s: &str) -> Result<u64, scenario::ValueError> {
    scenario::parse_size(s)
}

fn read_file(what: &str, p: &PathBuf) -> Result<Vec<u8>, String> {
    std::fs::read(p).map_err(|e| format!("{what} {}: {e}", p.display()))
}

fn bad_input(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("cmaemu: {msg}");
    ExitCode::from(EXIT_BAD_INPUT)
}

/// Build the DTB handed to the guest: the user's or the default, with -m
/// and --append applied, validated.
fn prepare_dtb(a: &BootArgs) -> Result<(Vec<u8>, u64), String> {
    if let Some(m) = a.memory {
        check_ram_size(m)?;
    }
    let bytes = match &a.dtb {
        Some(p) => read_file("--dtb", p)?,
        None => board_dtb::default_board_dtb(a.memory.unwrap_or(RAM_MAX_SIZE)),
    };
    let what = a.dtb.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "default board".into());
    board_dtb::prepare_boot_dtb(&bytes, a.memory, a.append.as_deref()).map_err(|e| format!("{what}: {e}"))
}

/// `-m`: a multiple of 1 MiB from 16M to 1G; a bare number that would be
/// valid in MiB gets a hint (`-m 256` is 256 bytes, as in QEMU's size
/// syntax with a suffix).
fn check_ram_size(m: u64) -> Result<(), String> {
    if valid_ram_size(m) {
        return Ok(());
    }
    let hint = match m.checked_mul(1 << 20) {
        Some(mib) if valid_ram_size(mib) => format!(" (did you mean {m}M?)"),
        _ => String::new(),
    };
    Err(format!(
        "-m {}: RAM must be a multiple of 1 MiB from 16M to 1G (vexpress-a9 maps RAM at 0x60000000-0x9fffffff){hint}",
        human(m)
    ))
}

/// Every output path of a boot, checked before the guest starts.
fn check_boot_outputs(a: &BootArgs) -> Result<(), String> {
    use cmaemu::outpath;
    if let Some(p) = &a.trace {
        outpath::check_file("--trace", p).map_err(|e| e.to_string())?;
    }
    if let Some(p) = &a.screenshot {
        outpath::check_file("--screenshot", p).map_err(|e| e.to_string())?;
    }
    if let Some(d) = &a.record_frames {
        outpath::prepare_dir("--record-frames", d).map_err(|e| e.to_string())?;
    }
    if let Some(p) = &a.report {
        outpath::check_file("--report", p).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn human(n: u64) -> String {
    if n % (1 << 30) == 0 && n > 0 {
        format!("{}G", n >> 30)
    } else if n % (1 << 20) == 0 && n > 0 {
        format!("{}M", n >> 20)
    } else {
        format!("{n}")
    }
}

/// Console input: a raw-mode TTY, or stdin lines from a reader thread.
fn console_input() -> (Input, Option<TtyGuard>) {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        let guard = TtyGuard::raw();
        let (tx, rx) = crossbeam_channel::unbounded();
        std::thread::spawn(move || {
            let mut buf = [0u8; 256];
            let mut s = std::io::stdin().lock();
            while let Ok(n) = s.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        (Input::Tty(rx), guard)
    } else {
        let (tx, rx) = crossbeam_channel::unbounded();
        std::thread::spawn(move || cmaemu::board::console::send_lines(std::io::stdin().lock(), &tx));
        (Input::Lines(rx), None)
    }
}

/// Puts the terminal in raw mode and restores it on drop.
struct TtyGuard(libc::termios);
impl TtyGuard {
    fn raw() -> Option<TtyGuard> {
        // SAFETY: termios is plain data; tcgetattr fills it for fd 0.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: valid fd and pointer.
        if unsafe { libc::tcgetattr(0, &mut t) } != 0 {
            return None;
        }
        let saved = t;
        // SAFETY: cfmakeraw edits the struct we own; tcsetattr applies it.
        unsafe {
            libc::cfmakeraw(&mut t);
            libc::tcsetattr(0, libc::TCSANOW, &t);
        }
        Some(TtyGuard(saved))
    }
}
impl Drop for TtyGuard {
    fn drop(&mut self) {
        // SAFETY: restores the attributes saved in `raw`.
        unsafe { libc::tcsetattr(0, libc::TCSANOW, &self.0) };
    }
}

/// The kernel's and firmware's symbols, for PC/LR in failure reports.
fn symbolizer(a: &BootArgs) -> cmaemu::board::profile::Symbolizer {
    let (kernel, firmware) = load_images(a).unwrap_or_default();
    cmaemu::board::profile::Symbolizer::from_elves(&[("kernel", &kernel), ("firmware", &firmware)])
}

/// ` (func+0x1c/0x80)` for a code address, or nothing.
fn at_symbol(sym: &cmaemu::board::profile::Symbolizer, addr: u32) -> String {
    sym.symbol(addr as u64).map(|s| format!(" ({s})")).unwrap_or_default()
}

fn report_failure(o: &Outcome, what: &str, sym: &cmaemu::board::profile::Symbolizer) {
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

fn print_console_tail(o: &Outcome) {
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
fn report_max_insns(o: &Outcome, max: u64, sym: &cmaemu::board::profile::Symbolizer) {
    let (r, _) = o.regs;
    eprintln!();
    eprintln!("cmaemu: stopped: --max-insns {max} reached (the instruction limit, not a guest failure; raise it, or 0 for no limit)");
    eprintln!("  pc {:#010x}{}, lr {:#010x}{}", r[15], at_symbol(sym, r[15]), r[14], at_symbol(sym, r[14]));
    print_console_tail(o);
}

fn print_regs(title: &str, r: &[u32; 16], sym: &cmaemu::board::profile::Symbolizer) {
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

fn print_stats(o: &Outcome) {
    let s = &o.stats;
    let mips = s.insns as f64 / o.wall.as_secs_f64().max(1e-9) / 1e6;
    eprintln!(
        "cmaemu: stats: retired_instructions={} virtual_time_ns={} idle_ns={} blocks={} irqs={} exceptions={} tlb_fills={} wfi={} reboots={} wall_ms={:.1} mips={:.1} camera_frames={} display_frames={} scanout_ok={} scanout_bad={} frames_repeated={} camera_frames_dropped={} violations={}",
        s.insns,
        s.insns * machine::NS_PER_INSN + s.idle_ns,
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

fn cmd_boot(a: BootArgs) -> ExitCode {
    if let Err(e) = check_boot_outputs(&a) {
        return bad_input(e);
    }
    if a.gdb || a.gdb_wait || a.gdb_port.is_some() {
        return cmd_boot_gdb(a);
    }
    let (dtb, ram_size) = match prepare_dtb(&a) {
        Ok(x) => x,
        Err(e) => return bad_input(e),
    };
    let kernel = match &a.kernel {
        Some(p) => match read_file("--kernel", p) {
            Ok(b) => b,
            Err(e) => return bad_input(e),
        },
        None => images::KERNEL_ELF.to_vec(),
    };
    let firmware = match &a.firmware {
        Some(p) => match read_file("--firmware", p) {
            Ok(b) => b,
            Err(e) => return bad_input(e),
        },
        None => images::FIRMWARE_ELF.to_vec(),
    };
    let initrd = match &a.initrd {
        Some(p) => match read_file("--initrd", p) {
            Ok(b) => Some(b),
            Err(e) => return bad_input(e),
        },
        None => None,
    };
    let linux_debuginfo = match &a.linux_vmlinux {
        Some(p) => match cmaemu::introspect::linux::DebugInfo::load(p) {
            Ok(d) => Some(std::sync::Arc::new(d)),
            Err(e) => return bad_input(format!("--linux-vmlinux: {e}")),
        },
        None => None,
    };
    let (input, guard) = console_input();
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

/// Write --trace and --screenshot outputs.
fn write_outputs(a: &BootArgs, o: &Outcome) -> Result<(), String> {
    use cmaemu::trace;
    if let Some(path) = &a.trace {
        let f = std::fs::File::create(path).map_err(|e| format!("--trace {}: {e}", path.display()))?;
        let mut w = std::io::BufWriter::new(f);
        let r = a.trace_format.write(&o.events, &mut w);
        r.and_then(|_| std::io::Write::flush(&mut w)).map_err(|e| format!("--trace {}: {e}", path.display()))?;
    }
    if let Some(path) = &a.report {
        let f = std::fs::File::create(path).map_err(|e| format!("--report {}: {e}", path.display()))?;
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
            .map_err(|e| format!("--report {}: {e}", path.display()))?;
    }
    if let Some(path) = &a.screenshot {
        match &o.last_frame {
            Some((w, h, rgba)) => cmaemu::board::frames::write_png(path, *w, *h, rgba)
                .map_err(|e| format!("--screenshot {}: {e}", path.display()))?,
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

fn finish(a: &BootArgs, o: &Outcome) -> ExitCode {
    if a.stats {
        print_stats(o);
    }
    if let Some(n) = a.profile {
        eprint!("{}", cmaemu::board::profile::format_profile(&o.profile, n));
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
            report_failure(o, &format!("kernel panic (poweroff status {code:#010x})"), &symbolizer(a));
            ExitCode::from(EXIT_GUEST_FAILURE)
        }
        Exit::MaxInsns => {
            report_max_insns(o, a.max_insns, &symbolizer(a));
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
            report_failure(o, e, &symbolizer(a));
            ExitCode::from(EXIT_GUEST_FAILURE)
        }
    }
}

fn load_images(a: &BootArgs) -> Result<(Vec<u8>, Vec<u8>), String> {
    let kernel = match &a.kernel {
        Some(p) => read_file("--kernel", p)?,
        None => images::KERNEL_ELF.to_vec(),
    };
    let firmware = match &a.firmware {
        Some(p) => read_file("--firmware", p)?,
        None => images::FIRMWARE_ELF.to_vec(),
    };
    Ok((kernel, firmware))
}

/// `boot -s/-S`: the same board, run under the GDB stub.
fn cmd_boot_gdb(a: BootArgs) -> ExitCode {
    use cmaemu::cpu::gdb::{self, GdbEnd};
    let (dtb, ram_size) = match prepare_dtb(&a) {
        Ok(x) => x,
        Err(e) => return bad_input(e),
    };
    let (kernel, firmware) = match load_images(&a) {
        Ok(x) => x,
        Err(e) => return bad_input(e),
    };
    let entry = match cmaemu::loader::elf::Image::parse("firmware", &firmware) {
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
    let (input, guard) = console_input();
    m.cpu().bus_mut().console = cmaemu::board::console::Console::new(input, true, None);
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

fn cmd_trace(cmd: TraceCmd) -> ExitCode {
    use cmaemu::trace::{read, summary};
    let file = match &cmd {
        TraceCmd::Summary { file } | TraceCmd::Map { file, .. } => file.clone(),
    };
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) => return bad_input(format!("{}: {e}", file.display())),
    };
    let events = match read::read_jsonl(&text) {
        Ok(ev) => ev,
        Err(e) => return bad_input(format!("{}: {e}", file.display())),
    };
    match cmd {
        TraceCmd::Summary { .. } => {
            print!("{}", summary::summary(&events));
            ExitCode::SUCCESS
        }
        TraceCmd::Map { frame, output, pages, .. } => {
            use cmaemu::trace::framemap;
            let c = match framemap::view_at(&events, frame).and_then(|v| framemap::render(&v, pages)) {
                Ok(x) => x,
                Err(e) => return bad_input(format!("{}: {e}", file.display())),
            };
            match cmaemu::board::frames::write_png(&output, c.width, c.height, &c.rgba) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => bad_input(format!("{}: {e}", output.display())),
            }
        }
    }
}

/// `cmaemu report TRACE -o FILE`.
fn cmd_report(file: &PathBuf, output: &PathBuf) -> ExitCode {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => return bad_input(format!("{}: {e}", file.display())),
    };
    let events = match cmaemu::trace::read::read_jsonl(&text) {
        Ok(ev) => ev,
        Err(e) => return bad_input(format!("{}: {e}", file.display())),
    };
    let title = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let r = std::fs::File::create(output).and_then(|f| {
        let mut w = std::io::BufWriter::new(f);
        cmaemu::trace::html::write_report(&events, &title, &[], &mut w)?;
        std::io::Write::flush(&mut w)
    });
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => bad_input(format!("{}: {e}", output.display())),
    }
}

fn bench_report(r: Result<String, String>) -> ExitCode {
    match r {
        Ok(s) => {
            println!("{s}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cmaemu: bench: {e}");
            ExitCode::from(EXIT_GUEST_FAILURE)
        }
    }
}

fn cmd_bench_boot() -> ExitCode {
    match cmaemu::bench::boot_bench() {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cmaemu: bench: {e}");
            ExitCode::from(EXIT_GUEST_FAILURE)
        }
    }
}

/// Exit status when a scenario failed.
const EXIT_SCENARIO_FAILED: u8 = 1;

fn progress_bar(n: usize, what: &str) -> indicatif::ProgressBar {
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

fn print_result(pb: &indicatif::ProgressBar, r: &scenario::ScenarioResult) {
    let file = r.file.as_deref().map(|f| format!(" ({f})")).unwrap_or_default();
    let timing = format!(
        "virtual {:.1} ms, {} instructions, wall {:.1} s",
        r.virtual_ns as f64 / 1e6,
        r.insns,
        r.wall.as_secs_f64()
    );
    let mut text = match r.status {
        scenario::Status::Pass => format!("PASS {}{file}: {timing}", r.name),
        scenario::Status::Skipped => format!("SKIP {}{file}: {}", r.name, r.reasons.join("; ")),
        scenario::Status::Fail => {
            let mut t = format!("FAIL {}{file}: {timing}", r.name);
            for why in &r.reasons {
                t.push_str(&format!("\n  - {why}"));
            }
            if !r.console_tail.is_empty() {
                t.push_str("\n  last console lines:");
                for l in &r.console_tail {
                    t.push_str(&format!("\n    | {l}"));
                }
            }
            t
        }
    };
    text.retain(|c| c == '\n' || !c.is_control());
    pb.suspend(|| println!("{text}"));
}

fn load_scenarios(files: &[PathBuf], seed: Option<u64>) -> Result<Vec<(scenario::Scenario, Option<scenario::PreparedBoard>)>, String> {
    let mut out = Vec::new();
    for f in files {
        let sc = scenario::Scenario::load(f).map_err(|e| e.to_string())?;
        let sc = sc.with_seed(seed.unwrap_or(sc.seed));
        let board = if sc.pending.is_some() {
            None
        } else {
            Some(scenario::PreparedBoard::from_spec(&sc.board, sc.dir.as_deref()).map_err(|e| format!("{}: board: {e}", f.display()))?)
        };
        out.push((sc, board));
    }
    Ok(out)
}

fn summary_line(results: &[scenario::ScenarioResult]) -> String {
    let pass = results.iter().filter(|r| r.status == scenario::Status::Pass).count();
    let fail = results.iter().filter(|r| r.status == scenario::Status::Fail).count();
    let skip = results.iter().filter(|r| r.status == scenario::Status::Skipped).count();
    format!("scenarios: {pass} passed, {fail} failed, {skip} skipped")
}

fn cmd_test(a: TestArgs) -> ExitCode {
    if let Some(p) = &a.junit {
        if let Err(e) = cmaemu::outpath::check_file("--junit", p) {
            return bad_input(e);
        }
    }
    if let Some(d) = &a.report {
        if let Err(e) = cmaemu::outpath::prepare_dir("--report", d) {
            return bad_input(e);
        }
    }
    if let Some(d) = &a.trace_dir {
        if let Err(e) = cmaemu::outpath::prepare_dir("--trace-dir", d) {
            return bad_input(e);
        }
    }
    let mut list = match load_scenarios(&a.files, a.seed) {
        Ok(l) => l,
        Err(e) => return bad_input(e),
    };
    if a.report.is_some() || a.trace_dir.is_some() {
        for (_, b) in list.iter_mut() {
            if let Some(b) = b {
                b.every_frame = true;
            }
        }
    }
    let report_errors = std::sync::Mutex::new(Vec::<String>::new());
    let pb = progress_bar(list.len(), "scenarios");
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(vec![None; list.len()]);
    std::thread::scope(|s| {
        for _ in 0..a.jobs.clamp(1, list.len().max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some((sc, board)) = list.get(i) else { break };
                pb.set_message(sc.name.clone());
                let stem = a.files[i].file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| sc.name.clone());
                let mut r = match board {
                    Some(b) => scenario::run_prepared_with(sc, b, &mut |s, reasons| {
                        if let Some(dir) = &a.report {
                            let path = dir.join(format!("{stem}.html"));
                            if let Err(e) = write_scenario_report(&path, sc, s, reasons) {
                                report_errors.lock().unwrap_or_else(|p| p.into_inner()).push(format!("--report {}: {e}", path.display()));
                            }
                        }
                        if let Some(dir) = &a.trace_dir {
                            if let Err(e) = scenario::artifacts::write_run_files(dir, &stem, s, reasons) {
                                report_errors.lock().unwrap_or_else(|p| p.into_inner()).push(format!("--trace-dir {e}"));
                            }
                        }
                    }),
                    None => match scenario::run_scenario(sc) {
                        Ok(r) => r,
                        Err(e) => unreachable_board(sc, e),
                    },
                };
                r.file = Some(a.files[i].display().to_string());
                print_result(&pb, &r);
                pb.inc(1);
                results.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(r);
            });
        }
    });
    pb.finish_and_clear();
    let results: Vec<scenario::ScenarioResult> = results.into_inner().unwrap_or_else(|p| p.into_inner()).into_iter().flatten().collect();
    if let Some(path) = &a.junit {
        if let Err(e) = std::fs::write(path, scenario::junit_xml("cmaemu", &results)) {
            return bad_input(format!("--junit {}: {e}", path.display()));
        }
    }
    println!("{}", summary_line(&results));
    let report_errors = report_errors.into_inner().unwrap_or_else(|p| p.into_inner());
    if !report_errors.is_empty() {
        return bad_input(report_errors.join("; "));
    }
    if results.iter().any(|r| r.status == scenario::Status::Fail) {
        ExitCode::from(EXIT_SCENARIO_FAILED)
    } else {
        ExitCode::SUCCESS
    }
}

/// The HTML report of one scenario's run.
fn write_scenario_report(path: &std::path::Path, sc: &scenario::Scenario, s: &mut scenario::Session, reasons: &[String]) -> std::io::Result<()> {
    let mut extra = vec![
        ("scenario".to_string(), format!("{} (seed {})", sc.name, sc.seed)),
        ("result".to_string(), if reasons.is_empty() { "PASS".to_string() } else { format!("FAIL: {}", reasons.join("; ")) }),
        ("retired instructions".to_string(), s.insns().to_string()),
    ];
    if let Some(d) = &sc.description {
        extra.insert(1, ("description".to_string(), d.clone()));
    }
    let f = std::fs::File::create(path)?;
    let mut w = std::io::BufWriter::new(f);
    cmaemu::trace::html::write_report(s.machine().events(), &sc.name, &extra, &mut w)?;
    std::io::Write::flush(&mut w)
}

/// A pending scenario needs no board; anything else was prepared at load.
fn unreachable_board(sc: &scenario::Scenario, e: String) -> scenario::ScenarioResult {
    scenario::ScenarioResult {
        name: sc.name.clone(),
        file: None,
        seed: sc.seed,
        status: scenario::Status::Fail,
        reasons: vec![format!("board: {e}")],
        virtual_ns: 0,
        insns: 0,
        wall: Duration::ZERO,
        console_tail: Vec::new(),
        metrics: Default::default(),
    }
}

fn cmd_oracle(a: OracleArgs) -> ExitCode {
    use cmaemu::oracle;
    let env = match std::fs::read_to_string(&a.linux_env) {
        Ok(t) => t,
        Err(e) => return bad_input(format!("--linux-env {}: {e}", a.linux_env.display())),
    };
    let assets = match oracle::LinuxAssets::from_env_lines(&env) {
        Ok(x) => x,
        Err(e) => return bad_input(e),
    };
    if let Some(o) = &a.output {
        if let Err(e) = cmaemu::outpath::check_file("-o", o) {
            return bad_input(e);
        }
    }
    for c in &a.cases {
        match std::fs::read_to_string(c) {
            Ok(t) => {
                if let Err(e) = oracle::Case::parse(c, &t) {
                    return bad_input(e);
                }
            }
            Err(e) => return bad_input(format!("{}: {e}", c.display())),
        }
    }
    let mut results = Vec::new();
    let mut failed = Vec::new();
    for c in &a.cases {
        eprintln!("cmaemu oracle: {} ...", c.display());
        match oracle::run_case(c, &assets) {
            Ok(r) => {
                eprintln!("cmaemu oracle: {}: {}/{} identical, cmaemu {:.1} s, QEMU {:.1} s", r.name, r.identical(), r.quantities.len(), r.wall_cmaemu.as_secs_f64(), r.wall_linux.as_secs_f64());
                for q in r.quantities.iter().filter(|q| !q.same()) {
                    eprintln!("  differs: {}: cmaemu {:?} / Linux {:?}", q.what, q.cmaemu, q.linux);
                }
                results.push(r);
            }
            Err(e) => {
                eprintln!("cmaemu oracle: {e}");
                failed.push(format!("{}: {e}", c.display()));
            }
        }
    }
    let mut rep = oracle::report(&results, &assets);
    if !failed.is_empty() {
        rep.push_str("\n## Cases that did not run\n\n");
        for f in &failed {
            rep.push_str(&format!("- {f}\n"));
        }
    }
    print!("{rep}");
    if let Some(o) = &a.output {
        if let Err(e) = std::fs::write(o, &rep) {
            eprintln!("cmaemu oracle: {}: {e}", o.display());
            return ExitCode::from(2);
        }
    }
    if failed.is_empty() && results.iter().all(|r| r.identical() == r.quantities.len()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn cmd_matrix(a: MatrixArgs) -> ExitCode {
    use cmaemu::scenario::matrix;
    let known = matrix::injections();
    for i in &a.inject {
        if !known.contains(&i.as_str()) {
            return bad_input(format!("--inject {i}: not a fault injection (known: {})", known.join(", ")));
        }
    }
    let workloads: Vec<(String, String)> = if a.files.is_empty() {
        matrix::WORKLOADS
            .iter()
            .filter(|(n, _)| !a.quick || matrix::QUICK_WORKLOADS.contains(n))
            .map(|(n, s)| (n.to_string(), s.to_string()))
            .collect()
    } else {
        let mut v = Vec::new();
        for f in &a.files {
            match std::fs::read_to_string(f) {
                Ok(s) => match scenario::Scenario::parse(&f.display().to_string(), &s) {
                    Ok(_) => v.push((f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(), s)),
                    Err(e) => return bad_input(e),
                },
                Err(e) => return bad_input(format!("{}: {e}", f.display())),
            }
        }
        v
    };
    let mut injections: Vec<Option<String>> = vec![None];
    injections.extend(known.iter().filter(|n| a.inject.is_empty() || a.inject.iter().any(|i| i == *n)).map(|n| Some(n.to_string())));
    eprintln!("cmaemu matrix: {} workload(s) x {} run(s) each, {} job(s)", workloads.len(), injections.len(), a.jobs);
    let done = std::sync::atomic::AtomicUsize::new(0);
    let total = workloads.len() * injections.len();
    let cells = matrix::run_matrix(&workloads, &injections, a.jobs, a.seed, |c| {
        let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        eprintln!("  [{n}/{total}] {} / {}: fired {}, violations {}", c.workload, c.injection.as_deref().unwrap_or("(clean)"), c.fired, c.violations.total);
    });
    print!("{}", matrix::format_table(&cells));
    let (mut problems, per) = matrix::verdict(&cells);
    let need = if workloads.len() >= 2 { 2 } else { 1 };
    for (i, ws) in &per {
        if ws.len() < need {
            problems.push(format!("{i} fired in {} workload(s) ({}), fewer than {need}", ws.len(), ws.join(", ")));
        }
    }
    let (fired, caught, clean, dirty) = matrix::counts(&cells);
    println!();
    println!("fired cells: {fired}, caught: {caught} ({:.0} %); clean runs: {clean}, with violations: {dirty}", if fired == 0 { 100.0 } else { caught as f64 * 100.0 / fired as f64 });
    for (i, ws) in &per {
        println!("  {i:<22} fired in {}: {}", ws.len(), ws.join(", "));
    }
    if problems.is_empty() {
        println!("matrix: PASS");
        ExitCode::SUCCESS
    } else {
        for p in &problems {
            println!("matrix: FAIL {p}");
        }
        ExitCode::from(1)
    }
}

fn cmd_sweep(a: SweepArgs) -> ExitCode {
    use scenario::driver::{merge_command, sweep_command, SweepOptions};
    let r = match (a.cmd, a.file) {
        (Some(SweepCmd::Merge { files, out, plot }), _) => merge_command(&files, out.as_deref(), plot.as_deref()),
        (None, Some(file)) => {
            let o = SweepOptions {
                file,
                seeds: a.seeds,
                axes: a.axes,
                size_axis: a.size_axis,
                jobs: a.jobs,
                shard: a.shard,
                shard_count: a.shard_count,
                out: a.out,
                plot: a.plot,
            };
            let name = o.file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            let mut pb: Option<indicatif::ProgressBar> = None;
            sweep_command(&o, &mut |done, total| {
                let p = pb.get_or_insert_with(|| progress_bar(total as usize, &name));
                p.set_position(done);
                if done == total {
                    p.finish_and_clear();
                }
            })
        }
        (None, None) => return bad_input("sweep: a scenario file, or `sweep merge SHARD...`"),
    };
    match r {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(EXIT_SCENARIO_FAILED),
        Err(e) => bad_input(format!("sweep: {e}")),
    }
}

/// QEMU's single-dash spellings of the options cmaemu shares with it
/// (`-kernel`, `-initrd`, `-dtb`, `-append`), so a QEMU command line's
/// boot options work unchanged.
fn qemu_style_args(args: impl Iterator<Item = std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    args.map(|a| match a.to_str() {
        Some("-kernel" | "-initrd" | "-dtb" | "-append") => format!("-{}", a.to_str().unwrap_or_default()).into(),
        _ => a,
    })
    .collect()
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse_from(qemu_style_args(std::env::args_os())) {
        Ok(c) => c,
        Err(e) => {
            let kind = e.kind();
            let _ = e.print();
            return if matches!(kind, clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion) {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_BAD_INPUT)
            };
        }
    };
    match cli.cmd {
        Cmd::Boot(a) => cmd_boot(a),
        Cmd::Dtb { output, memory } => {
            if let Err(e) = check_ram_size(memory) {
                return bad_input(e);
            }
            let b = board_dtb::default_board_dtb(memory);
            let written = if output.as_os_str() == "-" {
                use std::io::Write;
                std::io::stdout().lock().write_all(&b).and_then(|_| std::io::stdout().flush())
            } else {
                std::fs::write(&output, b)
            };
            match written {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => bad_input(format!("{}: {e}", output.display())),
            }
        }
        Cmd::Bench { what, profile, workload } => match what {
            _ if profile.is_some() && what != BenchKind::Cma => {
                eprintln!("cmaemu: bench {what}: --profile applies to `bench cma` only (profile a run with `cmaemu boot --profile`)");
                ExitCode::from(EXIT_BAD_INPUT)
            }
            BenchKind::Cma => bench_report(cmaemu::bench::cma_bench(profile)),
            _ if workload.is_some() && what != BenchKind::Verify => {
                eprintln!("cmaemu: bench {what}: --workload applies to `bench verify` only");
                ExitCode::from(EXIT_BAD_INPUT)
            }
            BenchKind::Verify => match workload.as_deref().map(|n| (n, cmaemu::bench::VerifyWorkload::from_name(n))) {
                Some((n, None)) => {
                    let names: Vec<String> = cmaemu::bench::VerifyWorkload::ALL.iter().map(|w| w.name()).collect();
                    eprintln!("cmaemu: bench verify: --workload {n}: no such workload (one of {})", names.join(", "));
                    ExitCode::from(EXIT_BAD_INPUT)
                }
                w => bench_report(cmaemu::bench::verify_bench(w.and_then(|w| w.1))),
            },
            BenchKind::Sweep => bench_report(cmaemu::bench::sweep_bench()),
            BenchKind::Explain => bench_report(cmaemu::bench::explain_bench()),
            BenchKind::Boot => cmd_bench_boot(),
        },
        Cmd::Trace { cmd } => cmd_trace(cmd),
        Cmd::Report { file, output } => cmd_report(&file, &output),
        Cmd::Fuzz(a) => ExitCode::from(cmaemu::fuzz::cli(&a)),
        Cmd::Test(a) => cmd_test(a),
        Cmd::Sweep(a) => cmd_sweep(a),
        Cmd::Matrix(a) => cmd_matrix(a),
        Cmd::Oracle(a) => cmd_oracle(a),
    }
}
