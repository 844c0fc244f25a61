//! Seeded variants of one scenario, run in parallel, reported in seed order.
use super::api::PreparedBoard;
use super::file::Scenario;
use super::run::{run_prepared, ScenarioResult};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

/// `A..B` (B excluded) or `A..=B`.
pub fn parse_seed_range(s: &str) -> Result<std::ops::Range<u64>, String> {
    let bad = || format!("--seeds {s:?}: expected A..B (B excluded) or A..=B");
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
        return Err(format!("--seeds {s:?}: the range is reversed"));
    }
    Ok(a..end)
}

/// `k/M`: keep seeds with `seed % M == k`.
pub fn parse_shard(s: &str) -> Result<(u64, u64), String> {
    let bad = || format!("--shard {s:?}: expected k/M with 0 <= k < M");
    let (k, m) = s.split_once('/').ok_or_else(bad)?;
    let k: u64 = k.trim().parse().map_err(|_| bad())?;
    let m: u64 = m.trim().parse().map_err(|_| bad())?;
    if m == 0 || k >= m {
        return Err(bad());
    }
    Ok((k, m))
}

/// The seeds of a sweep after sharding.
pub fn seeds(range: std::ops::Range<u64>, shard: Option<(u64, u64)>) -> Vec<u64> {
    range.filter(|s| shard.is_none_or(|(k, m)| s % m == k)).collect()
}

/// Run `sc` once per seed on `jobs` threads (each builds its own Machine:
/// it is not `Send`). `emit` is called in seed order, as soon as every
/// earlier seed is done. Boards are prepared per seed (bootargs may hold
/// `{seed}`); a board that cannot be built becomes a failed result.
pub fn sweep(sc: &Scenario, seeds: &[u64], jobs: usize, mut emit: impl FnMut(&ScenarioResult)) -> Vec<ScenarioResult> {
    let jobs = jobs.max(1).min(seeds.len().max(1));
    let next = AtomicUsize::new(0);
    let done: Mutex<BTreeMap<usize, ScenarioResult>> = Mutex::new(BTreeMap::new());
    let cv = Condvar::new();
    let mut out = Vec::with_capacity(seeds.len());
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= seeds.len() {
                    break;
                }
                let v = sc.with_seed(seeds[i]);
                let run = || match PreparedBoard::from_spec(&v.board, v.dir.as_deref()) {
                    Ok(b) => run_prepared(&v, &b),
                    Err(e) => {
                        let mut r = run_prepared(&Scenario { pending: Some(String::new()), ..v.clone() }, &PreparedBoard {
                            dtb: Vec::new(),
                            ram_size: 0,
                            bootargs: String::new(),
                            max_insns: 0,
                            boot_timeout_ms: 0,
                        });
                        r.status = super::run::Status::Fail;
                        r.reasons = vec![format!("board: {e}")];
                        r
                    }
                };
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)).unwrap_or_else(|p| {
                    let what = p
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    ScenarioResult {
                        name: v.name.clone(),
                        file: None,
                        seed: v.seed,
                        status: super::run::Status::Fail,
                        reasons: vec![format!("the emulator panicked: {what}")],
                        virtual_ns: 0,
                        insns: 0,
                        wall: std::time::Duration::ZERO,
                        console_tail: Vec::new(),
                    }
                });
                done.lock().unwrap_or_else(|p| p.into_inner()).insert(i, r);
                cv.notify_all();
            });
        }
        let mut want = 0;
        let mut g = done.lock().unwrap_or_else(|p| p.into_inner());
        while want < seeds.len() {
            if let Some(r) = g.remove(&want) {
                emit(&r);
                out.push(r);
                want += 1;
            } else {
                g = cv.wait(g).unwrap_or_else(|p| p.into_inner());
            }
        }
    });
    out
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
        assert_eq!(seeds(0..10, Some((1, 4))), vec![1, 5, 9]);
        assert_eq!(seeds(0..3, None), vec![0, 1, 2]);
    }
}
