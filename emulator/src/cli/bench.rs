//! `cmaemu bench boot|cma|verify|sweep|explain`: run one benchmark and
//! print its report (ratios against a baseline in the same run).
use super::{EXIT_BAD_INPUT, EXIT_GUEST_FAILURE};
use crate::bench::{self, BenchKind, VerifyWorkload};
use std::process::ExitCode;

/// `cmaemu bench WHAT [--profile [N]] [--workload NAME] [--floor] [--rounds N]`.
pub fn run(what: BenchKind, profile: Option<usize>, workload: Option<String>, floor: bool, rounds: Option<usize>) -> ExitCode {
    match what {
        _ if rounds.is_some() && what != BenchKind::Verify => {
            eprintln!("cmaemu: bench {what}: --rounds applies to `bench verify` only");
            ExitCode::from(EXIT_BAD_INPUT)
        }
        _ if rounds.is_some_and(|n| !(bench::VERIFY_ROUNDS_MIN..=bench::VERIFY_ROUNDS_MAX).contains(&n)) => {
            eprintln!(
                "cmaemu: bench verify: --rounds {}: must be {} to {} (medians of at least {} interleaved runs)",
                rounds.unwrap_or_default(),
                bench::VERIFY_ROUNDS_MIN,
                bench::VERIFY_ROUNDS_MAX,
                bench::VERIFY_ROUNDS_MIN
            );
            ExitCode::from(EXIT_BAD_INPUT)
        }
        _ if floor && what != BenchKind::Verify => {
            eprintln!("cmaemu: bench {what}: --floor applies to `bench verify` only");
            ExitCode::from(EXIT_BAD_INPUT)
        }
        _ if profile.is_some() && what != BenchKind::Cma => {
            eprintln!("cmaemu: bench {what}: --profile applies to `bench cma` only (profile a run with `cmaemu boot --profile`)");
            ExitCode::from(EXIT_BAD_INPUT)
        }
        _ if workload.is_some() && what != BenchKind::Verify => {
            eprintln!("cmaemu: bench {what}: --workload applies to `bench verify` only");
            ExitCode::from(EXIT_BAD_INPUT)
        }
        BenchKind::Cma => report(bench::cma_bench(profile)),
        BenchKind::Verify => match workload.as_deref().map(|n| (n, VerifyWorkload::from_name(n))) {
            Some((n, None)) => {
                let names: Vec<String> = VerifyWorkload::ALL.iter().map(|w| w.name()).collect();
                eprintln!("cmaemu: bench verify: --workload {n}: no such workload (one of {})", names.join(", "));
                ExitCode::from(EXIT_BAD_INPUT)
            }
            w => report(bench::verify_bench(w.and_then(|w| w.1), floor, rounds.unwrap_or(bench::VERIFY_ROUNDS_MIN))),
        },
        BenchKind::Sweep => report(bench::sweep_bench()),
        BenchKind::Explain => report(bench::explain_bench()),
        BenchKind::Boot => report(bench::boot_bench()),
    }
}

/// Print the report, or the error and the guest-failure status.
fn report<E: std::fmt::Display>(r: Result<String, E>) -> ExitCode {
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
