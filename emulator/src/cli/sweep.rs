//! `cmaemu sweep`: one scenario once per seed (crossed with parameter
//! axes), in parallel or sharded; `sweep merge` combines the shards.
use super::{bad_input, progress_bar, EXIT_SCENARIO_FAILED};
use crate::scenario::driver::{merge_command, sweep_command, SweepOptions};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Clone)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct SweepArgs {
    #[command(subcommand)]
    pub cmd: Option<SweepCmd>,
    /// The scenario file.
    #[arg(required = true)]
    pub file: Option<PathBuf>,
    /// Seeds: A..B (B excluded) or A..=B (default: the file's [sweep] seeds).
    #[arg(long)]
    pub seeds: Option<String>,
    /// A parameter axis crossed with the seeds, NAME=VALUES (repeatable):
    /// cma=4M..=64M*2, ram=128M,256M, profile=..., cmaemu.KNOB=..., dt.NODE=SIZES, arg.NAME=...
    #[arg(long = "axis", value_name = "NAME=VALUES")]
    pub axes: Vec<String>,
    /// The axis whose smallest value passing every seed the verdict names (default: the first numeric one).
    #[arg(long)]
    pub size_axis: Option<String>,
    /// Worker threads.
    #[arg(short, long, default_value_t = 1)]
    pub jobs: usize,
    /// Run only runs with run % M == k (k/M), or `auto`: k and M from a Slurm job array, a Kubernetes Indexed Job or GitLab CI parallel.
    #[arg(long)]
    pub shard: Option<String>,
    /// With --shard auto under Kubernetes: the Job's completions.
    #[arg(long)]
    pub shard_count: Option<u64>,
    /// Write the JSON lines here instead of standard output.
    #[arg(short, long)]
    pub out: Option<PathBuf>,
    /// Draw the verdict (pass rate, allocation latency) as a PNG here; a
    /// name ending in .html writes one self-contained page instead: the
    /// verdict table and the plot.
    #[arg(long)]
    pub plot: Option<PathBuf>,
}

#[derive(clap::Subcommand, Clone)]
pub enum SweepCmd {
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

/// `cmaemu sweep FILE ...` and `cmaemu sweep merge SHARD...`.
pub fn run(a: SweepArgs) -> ExitCode {
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
