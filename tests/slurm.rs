//! The sweep on a real cluster engine: `scripts/slurm-test.sh` brings up a
//! one-node Slurm (installing Debian's slurm-wlm and munge when missing),
//! runs a sweep as a job array of `examples/cluster/sweep.sbatch`
//! (`--shard auto`), merges the shards through Slurm too, and requires the
//! result to equal the single-machine run byte for byte; it tears the
//! daemons down by their pid files.
use std::path::Path;
use std::process::Command;

#[test]
fn slurm_job_array_sweep_merges_to_the_local_result() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("slurm test: NOT RUN: needs root (munged runs as user munge); run scripts/slurm-test.sh as root");
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/slurm-test.sh");
    let out = Command::new("bash").arg(&script).arg(env!("CARGO_BIN_EXE_cmaemu")).output().expect("bash");
    let (so, se) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "scripts/slurm-test.sh failed ({}):\n{so}\n{se}", out.status);
    assert!(so.contains("merged: identical to the local run"), "{so}\n{se}");
    eprintln!("{}", so.trim());
}
