//! Background jobs of the shell (`cmd &`, `jobs`, `kill %N`): cooperative
//! state machines that run one step whenever the foreground waits (WFI
//! idle), so they run during a preview, deterministically.
use crate::arch::Guarded;
use crate::mm::{publish, with_mm, Mm};
use crate::{println, vm};
use core::sync::atomic::{AtomicBool, Ordering};

#[derive(Clone, Copy)]
pub enum Kind {
    /// `stress SECONDS [SEED]`: fill, free, pin and unpin movable memory
    /// in its own address space, and allocate and release CMA memory, so
    /// that CMA allocations migrate pages. Without a seed the steps follow
    /// a fixed cycle; with one, an xorshift generator seeded with it picks
    /// each step's action and size (the same seed gives the same steps).
    Stress { until_ns: u64, step: u32, task: usize, rng: Option<u64> },
}

#[derive(Clone, Copy)]
pub struct Job {
    pub id: u32,
    pub kind: Kind,
}

/// The job table (one owner: `JOBS.with`).
struct JobTable {
    jobs: [Option<Job>; 4],
    /// Jobs that finished since the last prompt (their ids): reported
    /// before the next prompt, as bash does, not in the middle of the
    /// user's line.
    done: [u32; 4],
    next_id: u32,
}

static JOBS: Guarded<JobTable> = Guarded::new_with(JobTable { jobs: [None; 4], done: [0; 4], next_id: 1 });
static RUNNING: AtomicBool = AtomicBool::new(false);

/// Report the jobs that finished since the last prompt (the shell calls it
/// before printing its prompt).
pub fn notify_done() {
    JOBS.with(|t| {
        for d in t.done.iter_mut().filter(|d| **d != 0) {
            println!("[{}]+ Done                    stress", *d);
            *d = 0;
        }
    });
}

/// Start `line` in the background; returns false if it cannot be.
pub fn spawn(line: &str) -> bool {
    crate::hostif::begin();
    let r = spawn_inner(line);
    publish::end_unheld();
    r
}

fn spawn_inner(line: &str) -> bool {
    let mut args = line.split_ascii_whitespace();
    let kind = match args.next() {
        Some("stress") => {
            let secs: u64 = match args.next().map(str::parse) {
                None => 5,
                Some(Ok(s)) => s,
                Some(Err(_)) => {
                    println!("stress: usage: stress SECONDS [SEED] & (SECONDS and SEED are integers)");
                    return true;
                }
            };
            let rng = match args.next().map(str::parse::<u64>) {
                None => None,
                // xorshift64 must not start at 0; splitmix the seed into a state
                Some(Ok(seed)) => Some(splitmix64(seed) | 1),
                Some(Err(_)) => {
                    println!("stress: usage: stress SECONDS [SEED] & (SECONDS and SEED are integers)");
                    return true;
                }
            };
            let made = with_mm(|mm| {
                let cur = vm::current_index(mm);
                let task = vm::task_new(mm);
                vm::switch_to(mm, cur);
                task
            });
            let task = match made {
                Some(Ok(t)) => t,
                Some(Err(e)) => {
                    println!("stress: {}", e);
                    return true;
                }
                None => return true,
            };
            Kind::Stress { until_ns: crate::time::sched_clock().saturating_add(secs.saturating_mul(1_000_000_000)), step: 0, task, rng }
        }
        _ => return false,
    };
    JOBS.with(|t| {
        let Some(slot) = t.jobs.iter().position(|j| j.is_none()) else {
            println!("sh: too many jobs");
            return;
        };
        let id = t.next_id;
        t.next_id += 1;
        t.jobs[slot] = Some(Job { id, kind });
        println!("[{}] {}", id, line.trim());
    });
    true
}

pub fn list() {
    JOBS.with(|t| {
        for j in t.jobs.iter().flatten() {
            match j.kind {
                Kind::Stress { until_ns, step, .. } => {
                    println!("[{}]  Running                 stress (step {}, ends at {} ms)", j.id, step, until_ns / 1_000_000)
                }
            }
        }
    });
}

pub fn kill(id: u32) -> bool {
    let found = JOBS.with(|t| t.jobs.iter_mut().find(|j| j.is_some_and(|x| x.id == id)).map(|j| j.take())).flatten();
    let Some(j) = found else { return false };
    if let Some(Job { kind: Kind::Stress { task, .. }, .. }) = j {
        finish_stress(task);
    }
    println!("[{}]  Terminated", id);
    true
}

fn finish_stress(task: usize) {
    with_mm(|mm| {
        let cur = vm::current_index(mm);
        crate::hostif::begin();
        if vm::switch_to(mm, task) {
            vm::unpin_quiet(mm);
            vm::free_quiet(mm, u32::MAX);
            vm::switch_to(mm, cur);
        }
        publish::end(mm);
    });
}

/// Run one step of every background job (called from the idle loop).
pub fn run_steps() {
    if RUNNING.swap(true, Ordering::Relaxed) {
        return;
    }
    let now = crate::time::sched_clock();
    JOBS.with(|t| steps(t, now));
    RUNNING.store(false, Ordering::Relaxed);
}

fn steps(t: &mut JobTable, now: u64) {
    for j in t.jobs.iter_mut() {
        let Some(job) = j.as_mut() else { continue };
        match &mut job.kind {
            Kind::Stress { until_ns, step, task, rng } => {
                if now >= *until_ns {
                    let (id, tk) = (job.id, *task);
                    *j = None;
                    finish_stress(tk);
                    if let Some(d) = t.done.iter_mut().find(|d| **d == 0) {
                        *d = id;
                    }
                    continue;
                }
                let action = match rng {
                    None => fixed_action(*step),
                    Some(state) => seeded_action(state),
                };
                let task = *task;
                with_mm(|mm| {
                    crate::hostif::begin();
                    stress_step(mm, task, action);
                    publish::end(mm);
                });
                *step += 1;
            }
        }
    }
}

/// What one step of `stress` does.
#[derive(Clone, Copy)]
enum Action {
    /// Map and fill this many MiB (when a fifth of memory is still free).
    Fill(u32),
    /// Pin this many of the task's pages.
    Pin(u32),
    /// Unpin everything and unmap this many MiB.
    UnpinFree(u32),
    /// `cma_alloc` this many pages in the default area.
    CmaAlloc(u32),
    /// `cma_release` this many pages of it.
    CmaRelease(u32),
}

/// The unseeded cycle: six 4 MiB fills, a pin, an unpin+free, a 4 MiB CMA
/// allocation and its release.
fn fixed_action(step: u32) -> Action {
    match step % 10 {
        0..=5 => Action::Fill(4),
        6 => Action::Pin(4),
        7 => Action::UnpinFree(4),
        8 => Action::CmaAlloc(1024),
        _ => Action::CmaRelease(1024),
    }
}

/// xorshift64 (Marsaglia): the next value of `state`.
fn xorshift64(state: &mut u64) -> u64 {
    let mut x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    x
}

/// splitmix64: spreads small seeds (0, 1, 2...) over the whole state.
fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A seeded step: the fixed cycle's mix of actions (fills most often),
/// with sizes drawn too: 1-8 MiB fills and frees, 1-8 pins, CMA
/// allocations of 256-2048 pages.
fn seeded_action(state: &mut u64) -> Action {
    let r = xorshift64(state);
    let size = 1 + ((r >> 8) % 8) as u32;
    match r % 10 {
        0..=5 => Action::Fill(size),
        6 => Action::Pin(size),
        7 => Action::UnpinFree(size),
        8 => Action::CmaAlloc(256 * size),
        _ => Action::CmaRelease(256 * size),
    }
}

/// One step of `stress` (CMA allocations migrate the movable pages in
/// their way).
fn stress_step(mm: &mut Mm, task: usize, action: Action) {
    let cur = vm::current_index(mm);
    if !vm::switch_to(mm, task) {
        return;
    }
    // keep about a fifth of memory free (room for migration targets)
    let roomy = mm.pa.as_ref().is_some_and(|pa| pa.nr_free_pages() * 5 > pa.totalram_pages());
    match action {
        Action::Fill(mib) => {
            if roomy {
                vm::fill_quiet(mm, mib)
            }
        }
        Action::Pin(n) => vm::pin_quiet(mm, n),
        Action::UnpinFree(mib) => {
            vm::unpin_quiet(mm);
            vm::free_quiet(mm, mib);
        }
        Action::CmaAlloc(pages) => crate::dma::stress_cma(mm, true, pages),
        Action::CmaRelease(pages) => crate::dma::stress_cma(mm, false, pages),
    }
    vm::switch_to(mm, cur);
}
