//! The one worker pool: `count` jobs, numbered `0..count`, run on up to
//! `jobs` scoped threads that take the next number from a shared counter
//! (each builds what it needs itself: a `Machine` is not `Send`). `cmaemu
//! test`, `cmaemu sweep` and `cmaemu matrix` all run on it.
//!
//! A job that panics does not hang the pool: the panic is raised again on
//! the calling thread once every worker has stopped.
use std::collections::BTreeMap;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

/// Run `work(i)` for every `i < count` on up to `jobs` threads (at least
/// one, at most `count`); `emit(i, result)` runs on the calling thread, in
/// index order, as soon as every earlier job is done.
pub fn run_ordered<R: Send>(count: usize, jobs: usize, work: impl Fn(usize) -> R + Sync, mut emit: impl FnMut(usize, R)) {
    let jobs = jobs.clamp(1, count.max(1));
    let next = AtomicUsize::new(0);
    let done: Mutex<BTreeMap<usize, std::thread::Result<R>>> = Mutex::new(BTreeMap::new());
    let cv = Condvar::new();
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= count {
                    break;
                }
                let r = catch_unwind(AssertUnwindSafe(|| work(i)));
                let failed = r.is_err();
                done.lock().unwrap_or_else(|p| p.into_inner()).insert(i, r);
                cv.notify_all();
                if failed {
                    // the other workers finish their jobs; nobody starts new ones
                    next.store(count, Ordering::SeqCst);
                    break;
                }
            });
        }
        let mut want = 0;
        let mut g = done.lock().unwrap_or_else(|p| p.into_inner());
        while want < count {
            match g.remove(&want) {
                Some(Ok(r)) => {
                    drop(g);
                    emit(want, r);
                    want += 1;
                    g = done.lock().unwrap_or_else(|p| p.into_inner());
                }
                Some(Err(panic)) => {
                    drop(g);
                    resume_unwind(panic);
                }
                None => g = cv.wait(g).unwrap_or_else(|p| p.into_inner()),
            }
        }
    });
}

/// Run `work(i)` for every `i < count` on up to `jobs` threads; the
/// results in index order.
pub fn map<R: Send>(count: usize, jobs: usize, work: impl Fn(usize) -> R + Sync) -> Vec<R> {
    let mut out = Vec::with_capacity(count);
    run_ordered(count, jobs, work, |_, r| out.push(r));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_back_in_index_order_whatever_the_finishing_order() {
        let v = map(20, 4, |i| {
            std::thread::sleep(std::time::Duration::from_millis(((20 - i) % 5) as u64));
            i * i
        });
        assert_eq!(v, (0..20).map(|i| i * i).collect::<Vec<_>>());
        let mut seen = Vec::new();
        run_ordered(5, 3, |i| i + 100, |i, r| seen.push((i, r)));
        assert_eq!(seen, [(0, 100), (1, 101), (2, 102), (3, 103), (4, 104)]);
        assert!(map(0, 4, |i| i).is_empty());
    }

    #[test]
    fn a_panicking_job_is_raised_on_the_caller_not_a_hang() {
        let r = catch_unwind(|| map(8, 2, |i| if i == 3 { panic!("job 3") } else { i }));
        let p = r.expect_err("the panic must reach the caller");
        assert_eq!(p.downcast_ref::<&str>(), Some(&"job 3"));
    }
}
