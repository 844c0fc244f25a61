//! `cmaemu oracle`: run case files on cmaemu and on the real Linux kernel
//! under QEMU, and compare (`scripts/oracle.sh` fetches the Linux side).
use super::bad_input;
use crate::oracle;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Clone)]
pub struct OracleArgs {
    /// The KEY=VALUE lines scripts/linux-oracle.sh printed (ZIMAGE,
    /// ORACLE_INITRD, DTB, QEMU, LINUX_PKG, LINUX_VERSION, LINUX_PIN).
    #[arg(long, value_name = "FILE")]
    pub linux_env: PathBuf,
    /// Write the report (markdown) here too.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Save both systems' transcripts of each case here (created):
    /// CASE.cmaemu.txt, CASE.linux.txt and CASE.side.txt (side by side,
    /// differing lines marked `*`).
    #[arg(long, value_name = "DIR")]
    pub transcripts: Option<PathBuf>,
    /// Benchmark instead of compare: time each case ROUNDS times on each
    /// system alone, interleaved, and print the medians and ratios.
    #[arg(long, value_name = "ROUNDS")]
    pub bench: Option<usize>,
    /// Case files.
    #[arg(required = true)]
    pub cases: Vec<PathBuf>,
}

/// `cmaemu oracle --linux-env FILE CASE...`.
pub fn run(a: OracleArgs) -> ExitCode {
    let env = match std::fs::read_to_string(&a.linux_env) {
        Ok(t) => t,
        Err(e) => return bad_input(format!("--linux-env {}: {e}", a.linux_env.display())),
    };
    let assets = match oracle::LinuxAssets::from_env_lines(&env) {
        Ok(x) => x,
        Err(e) => return bad_input(e),
    };
    if let Some(o) = &a.output {
        if let Err(e) = crate::outpath::check_file("-o", o) {
            return bad_input(e);
        }
    }
    if let Some(d) = &a.transcripts {
        if let Err(e) = crate::outpath::prepare_dir("--transcripts", d) {
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
    if let Some(rounds) = a.bench {
        if rounds == 0 {
            return bad_input("--bench: at least one round");
        }
        let load0 = oracle::loadavg();
        let rows = match oracle::bench(&a.cases, &assets, rounds, &mut |m| eprintln!("cmaemu oracle --bench: {m}")) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("cmaemu oracle: {e}");
                return ExitCode::from(3);
            }
        };
        let rep = oracle::bench_report(&rows, &assets, rounds, (&load0, &oracle::loadavg()));
        print!("{rep}");
        if let Some(o) = &a.output {
            if let Err(e) = std::fs::write(o, &rep) {
                eprintln!("cmaemu oracle: {}: {e}", o.display());
                return ExitCode::from(2);
            }
        }
        return ExitCode::SUCCESS;
    }
    let mut results = Vec::new();
    let mut failed = Vec::new();
    for c in &a.cases {
        eprintln!("cmaemu oracle: {} ...", c.display());
        match oracle::run_case(c, &assets) {
            Ok(r) => {
                eprintln!(
                    "cmaemu oracle: {}: {}/{} identical ({} raw), cmaemu {:.1} s (boot {:.1}), QEMU {:.1} s (boot {:.1})",
                    r.name,
                    r.identical(),
                    r.quantities.len(),
                    r.identical_raw(),
                    r.wall_cmaemu.as_secs_f64(),
                    r.boot_cmaemu.as_secs_f64(),
                    r.wall_linux.as_secs_f64(),
                    r.boot_linux.as_secs_f64()
                );
                for q in r.quantities.iter().filter(|q| !q.same()) {
                    eprintln!("  differs: {}: cmaemu {:?} / Linux {:?}", q.what, q.cmaemu, q.linux);
                }
                if let Some(d) = &a.transcripts {
                    if let Err(e) = oracle::save_transcripts(d, &r) {
                        eprintln!("cmaemu oracle: {e}");
                        return ExitCode::from(2);
                    }
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
