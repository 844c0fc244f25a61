//! `cmaemu`: the command line — the clap definitions and the dispatch.
//! Each subcommand's body is a module of `cmaemu::cli`; everything else
//! lives in the library.
use clap::{Parser, Subcommand};
use cmaemu::cli::{self, boot::BootArgs, matrix::MatrixArgs, oracle::OracleArgs, parse_size, sweep::SweepArgs, test::TestArgs, EXIT_BAD_INPUT};
use std::path::PathBuf;
use std::process::ExitCode;

/// The system allocator; under `cmaemu fuzz`, one allocation above the
/// fuzzer's limit saves the input and stops the run.
#[global_allocator]
static ALLOC: cmaemu::fuzz::LimitAlloc = cmaemu::fuzz::LimitAlloc;

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
        /// `verify` only: also run each workload at verification's floor
        /// (the guest's tracing and the doorbells alone, nothing checked),
        /// interleaved with off and on.
        #[arg(long)]
        floor: bool,
        /// `verify` only: interleaved rounds per workload (at least 5; more
        /// steady the medians on a noisy machine).
        #[arg(long, value_name = "N")]
        rounds: Option<usize>,
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
        Cmd::Boot(a) => cli::boot::run(a),
        Cmd::Dtb { output, memory } => cli::dtb::run(&output, memory),
        Cmd::Bench { what, profile, workload, floor, rounds } => cli::bench::run(what, profile, workload, floor, rounds),
        Cmd::Trace { cmd: TraceCmd::Summary { file } } => cli::trace::summary(&file),
        Cmd::Trace { cmd: TraceCmd::Map { file, frame, output, pages } } => cli::trace::map(&file, frame, &output, pages),
        Cmd::Report { file, output } => cli::trace::report(&file, &output),
        Cmd::Fuzz(a) => ExitCode::from(cmaemu::fuzz::cli(&a)),
        Cmd::Test(a) => cli::test::run(a),
        Cmd::Sweep(a) => cli::sweep::run(a),
        Cmd::Matrix(a) => cli::matrix::run(a),
        Cmd::Oracle(a) => cli::oracle::run(a),
    }
}
