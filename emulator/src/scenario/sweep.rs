//! Running a sweep's scenarios in parallel, reported in order; seed
//! ranges and shards.
use super::api::PreparedBoard;
use super::file::Scenario;
use super::run::{run_prepared, ScenarioResult};

/// A bad `--seeds` range or `--shard`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    #[error("--seeds {0:?}: expected A..B (B excluded) or A..=B")]
    Seeds(String),
    #[error("--seeds {0:?}: the range is reversed")]
    Reversed(String),
    #[error("--shard {0:?}: expected k/M with 0 <= k < M")]
    Shard(String),
}

/// `A..B` (B excluded) or `A..=B`.
pub fn parse_seed_range(s: &str) -> Result<std::ops::Range<u64>, RangeError> {
    let bad = || RangeError::Seeds(s.to_string());
    let (a, b, incl) = if let Some((a, b)) = s.split_once("..=") {
        (a, b, true)
    } else if let Some((a, b)) = s.split_once("..") {
        (a, b, false)
    } else {
        return Err(bad());
    };
    let a: u64 = a.trim().parse().map_err(|_| bad())?;
    let b: u64 = b.trim().parse().map_err(|_| bad())?;
    let end = if incl { b.checked_add(1).ok_or_else(bad)? } else { b };
    if end < a {
        return Err(RangeError::Reversed(s.to_string()));
    }
    Ok(a..end)
}

/// `k/M`: keep runs with `run % M == k`.
pub fn parse_shard(s: &str) -> Result<(u64, u64), RangeError> {
    let bad = || RangeError::Shard(s.to_string());
    let (k, m) = s.split_once('/').ok_or_else(bad)?;
    let k: u64 = k.trim().parse().map_err(|_| bad())?;
    let m: u64 = m.trim().parse().map_err(|_| bad())?;
    if m == 0 || k >= m {
        return Err(bad());
    }
    Ok((k, m))
}

/// Run `count` scenarios (`scenario_of(i)`, made in the worker) on `jobs`
/// threads (each builds its own Machine: it is not `Send`). `emit` gets
/// them in index order, as soon as every earlier one is done. A board that
/// cannot be built, or a panic, becomes a failed result.
pub fn run_indexed(count: usize, scenario_of: impl Fn(usize) -> Scenario + Sync, jobs: usize, emit: impl FnMut(usize, ScenarioResult)) {
    crate::pool::run_ordered(count, jobs, |i| run_one(&scenario_of, i), emit);
}

fn failed(v: &Scenario, why: String) -> ScenarioResult {
    ScenarioResult {
        name: v.name.clone(),
        file: None,
        seed: v.seed,
        status: super::run::Status::Fail,
        reasons: vec![why],
        virtual_ns: 0,
        insns: 0,
        wall: std::time::Duration::ZERO,
        console_tail: Vec::new(),
        metrics: Default::default(),
    }
}

fn run_one(scenario_of: &(impl Fn(usize) -> Scenario + Sync), i: usize) -> ScenarioResult {
    let mut name = None;
    let run = || {
        let v = scenario_of(i);
        name = Some(v.clone());
        if v.pending.is_some() {
            return super::run::run_scenario(&v).unwrap_or_else(|e| failed(&v, format!("board: {e}")));
        }
        match PreparedBoard::from_spec(&v.board, v.dir.as_deref()) {
            Ok(b) => run_prepared(&v, &b),
            Err(e) => failed(&v, format!("board: {e}")),
        }
    };
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)).unwrap_or_else(|p| {
        let what = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        let v = name.take().unwrap_or_else(|| scenario_of(i));
        failed(&v, format!("the emulator panicked: {what}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_shards() {
        assert_eq!(parse_seed_range("3..7").unwrap(), 3..7);
        assert_eq!(parse_seed_range("3..=7").unwrap(), 3..8);
        assert!(parse_seed_range("7..3").is_err());
        assert!(parse_seed_range("x").is_err());
        assert_eq!(parse_shard("1/4").unwrap(), (1, 4));
        assert!(parse_shard("4/4").is_err());
        assert!(parse_shard("1/0").is_err());
    }
}
