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

/// The most seeds one sweep (or one shard of it) runs: a million boots
/// is weeks of CPU time; more is a typo, not a plan.
pub const MAX_SWEEP_SEEDS: u64 = 1 << 20;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SeedsError {
    #[error("--seeds {start}..{end}{}: {count} seeds, more than the {MAX_SWEEP_SEEDS} one sweep runs (use a smaller range, or split it with --shard k/M)", shard.map(|(k, m)| format!(" --shard {k}/{m}")).unwrap_or_default())]
    TooMany { start: u64, end: u64, shard: Option<(u64, u64)>, count: u64 },
}

/// The seeds of a sweep after sharding: `first, first + step, …`, `len`
/// of them, computed on demand (a range is never collected).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seeds {
    first: u64,
    step: u64,
    len: usize,
}

impl Seeds {
    /// How many seeds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The `i`th seed.
    pub fn get(&self, i: usize) -> Option<u64> {
        // i < len <= MAX_SWEEP_SEEDS and the last seed fits u64: no overflow
        (i < self.len).then(|| self.first + i as u64 * self.step)
    }

    /// Every seed in order.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        (0..self.len).filter_map(|i| self.get(i))
    }
}

/// The seeds of `range` with `seed % M == k` for a shard `(k, M)`,
/// counted without walking the range; more than [`MAX_SWEEP_SEEDS`] is
/// an error.
pub fn seeds(range: std::ops::Range<u64>, shard: Option<(u64, u64)>) -> Result<Seeds, SeedsError> {
    let (k, m) = shard.unwrap_or((0, 1));
    let (a, b) = (u128::from(range.start), u128::from(range.end));
    let (k, m128) = (u128::from(k), u128::from(m));
    // the first seed >= a in the shard's residue class
    let first = a - a % m128 + k + if k < a % m128 { m128 } else { 0 };
    let count = if first >= b { 0 } else { (b - 1 - first) / m128 + 1 };
    if count > u128::from(MAX_SWEEP_SEEDS) {
        return Err(SeedsError::TooMany { start: range.start, end: range.end, shard, count: count as u64 });
    }
    // count > 0 implies first < b <= u64::MAX
    Ok(Seeds { first: if count == 0 { 0 } else { first as u64 }, step: m, len: count as usize })
}

/// Run `sc` once per seed on `jobs` threads (each builds its own Machine:
/// it is not `Send`). `emit` is called in seed order, as soon as every
/// earlier seed is done. Boards are prepared per seed (bootargs may hold
/// `{seed}`); a board that cannot be built becomes a failed result.
pub fn sweep(sc: &Scenario, seeds: &Seeds, jobs: usize, mut emit: impl FnMut(&ScenarioResult)) -> Vec<ScenarioResult> {
    let jobs = jobs.max(1).min(seeds.len().max(1));
    let next = AtomicUsize::new(0);
    let done: Mutex<BTreeMap<usize, ScenarioResult>> = Mutex::new(BTreeMap::new());
    let cv = Condvar::new();
    let mut out = Vec::with_capacity(seeds.len());
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(seed) = seeds.get(i) else { break };
                let v = sc.with_seed(seed);
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
        let list = |r, sh| seeds(r, sh).unwrap().iter().collect::<Vec<u64>>();
        assert_eq!(list(0..10, Some((1, 4))), vec![1, 5, 9]);
        assert_eq!(list(2..10, Some((1, 4))), vec![5, 9]);
        assert_eq!(list(5..10, Some((1, 4))), vec![5, 9]);
        assert_eq!(list(6..9, Some((1, 4))), Vec::<u64>::new());
        assert_eq!(list(0..3, None), vec![0, 1, 2]);
        assert_eq!(list(7..7, None), Vec::<u64>::new());
    }

    /// Issue 19: `--seeds 0..18446744073709551615` collected the range
    /// (a 2 GiB allocation, then an abort); with `--shard 0/18446744073709551615`
    /// it filtered 2^64 numbers.
    #[test]
    fn huge_ranges_and_shards_are_counted_not_walked() {
        let all = parse_seed_range("0..18446744073709551615").unwrap();
        let e = seeds(all.clone(), None).unwrap_err();
        assert_eq!(e, SeedsError::TooMany { start: 0, end: u64::MAX, shard: None, count: u64::MAX });
        assert_eq!(e.to_string(), "--seeds 0..18446744073709551615: 18446744073709551615 seeds, more than the 1048576 one sweep runs (use a smaller range, or split it with --shard k/M)");
        let one = seeds(all.clone(), Some(parse_shard("0/18446744073709551615").unwrap())).unwrap();
        assert_eq!(one.iter().collect::<Vec<_>>(), vec![0]);
        let top = seeds(all, Some((u64::MAX - 1, u64::MAX))).unwrap();
        assert_eq!(top.iter().collect::<Vec<_>>(), vec![u64::MAX - 1]);
        let full = parse_seed_range("0..=18446744073709551615");
        assert!(full.is_err(), "{full:?}");
        let last = seeds(u64::MAX - 3..u64::MAX, Some((0, 2))).unwrap();
        assert_eq!(last.iter().collect::<Vec<_>>(), vec![u64::MAX - 3, u64::MAX - 1]);
        assert_eq!(seeds(0..MAX_SWEEP_SEEDS, None).unwrap().len(), MAX_SWEEP_SEEDS as usize);
        assert!(seeds(0..MAX_SWEEP_SEEDS + 1, None).is_err());
        assert_eq!(seeds(0..2 * MAX_SWEEP_SEEDS, Some((1, 2))).unwrap().len(), MAX_SWEEP_SEEDS as usize);
    }
}
