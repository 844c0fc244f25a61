//! Background jobs of the shell (`cmd &`, `jobs`, `kill %N`): cooperative
//! state machines that run one step whenever the foreground waits (WFI
//! idle), so they run during a preview, deterministically.
use crate::{println, vm};
use core::sync::atomic::{AtomicBool, Ordering};

#[derive(Clone, Copy)]
pub enum Kind {
    /// `stress SECONDS`: fill, free, pin and unpin movable memory in its
    /// own address space, and allocate and release CMA memory, so that
    /// CMA allocations migrate pages.
    Stress { until_ns: u64, step: u32, task: usize },
}

#[derive(Clone, Copy)]
pub struct Job {
    pub id: u32,
    pub kind: Kind,
}

static mut JOBS: [Option<Job>; 4] = [None; 4];
/// Jobs that finished since the last prompt (their ids): reported before
/// the next prompt, as bash does, not in the middle of the user's line.
static mut DONE: [u32; 4] = [0; 4];
static mut NEXT_ID: u32 = 1;
static RUNNING: AtomicBool = AtomicBool::new(false);

fn done() -> &'static mut [u32; 4] {
    // SAFETY: as in `jobs`.
    unsafe { &mut *core::ptr::addr_of_mut!(DONE) }
}

/// Report the jobs that finished since the last prompt (the shell calls it
/// before printing its prompt).
pub fn notify_done() {
    for d in done().iter_mut().filter(|d| **d != 0) {
        println!("[{}]+ Done                    stress", *d);
        *d = 0;
    }
}

fn jobs() -> &'static mut [Option<Job>; 4] {
    // SAFETY: single CPU, thread context only; `run_steps` guards against
    // re-entry.
    unsafe { &mut *core::ptr::addr_of_mut!(JOBS) }
}

/// Start `line` in the background; returns false if it cannot be.
pub fn spawn(line: &str) -> bool {
    crate::hostif::begin();
    let r = spawn_inner(line);
    crate::hostif::end();
    r
}

fn spawn_inner(line: &str) -> bool {
    let mut args = line.split_ascii_whitespace();
    let kind = match args.next() {
        Some("stress") => {
            let secs: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(5);
            let cur = crate::vm::current_index();
            let task = match vm::task_new() {
                Ok(t) => t,
                Err(e) => {
                    println!("stress: {}", e);
                    return true;
                }
            };
            vm::switch_to(cur);
            Kind::Stress { until_ns: crate::time::sched_clock() + secs * 1_000_000_000, step: 0, task }
        }
        _ => return false,
    };
    let Some(slot) = jobs().iter().position(|j| j.is_none()) else {
        println!("sh: too many jobs");
        return true;
    };
    // SAFETY: as in `jobs`.
    let id = unsafe {
        let id = NEXT_ID;
        NEXT_ID += 1;
        id
    };
    jobs()[slot] = Some(Job { id, kind });
    println!("[{}] {}", id, line.trim());
    true
}

pub fn list() {
    for j in jobs().iter().flatten() {
        match j.kind {
            Kind::Stress { until_ns, step, .. } => {
                println!("[{}]  Running                 stress (step {}, ends at {} ms)", j.id, step, until_ns / 1_000_000)
            }
        }
    }
}

pub fn kill(id: u32) -> bool {
    for j in jobs().iter_mut() {
        if j.is_some_and(|x| x.id == id) {
            if let Some(Job { kind: Kind::Stress { task, .. }, .. }) = j.take() {
                finish_stress(task);
            }
            println!("[{}]  Terminated", id);
            return true;
        }
    }
    false
}

fn finish_stress(task: usize) {
    let cur = vm::current_index();
    crate::hostif::begin();
    if vm::switch_to(task) {
        vm::unpin_quiet();
        vm::free_quiet(u32::MAX);
        vm::switch_to(cur);
    }
    crate::hostif::end();
}

/// Run one step of every background job (called from the idle loop).
pub fn run_steps() {
    if RUNNING.swap(true, Ordering::Relaxed) {
        return;
    }
    let now = crate::time::sched_clock();
    for j in jobs().iter_mut() {
        let Some(job) = j.as_mut() else { continue };
        match &mut job.kind {
            Kind::Stress { until_ns, step, task } => {
                if now >= *until_ns {
                    let (id, t) = (job.id, *task);
                    *j = None;
                    finish_stress(t);
                    if let Some(d) = done().iter_mut().find(|d| **d == 0) {
                        *d = id;
                    }
                    continue;
                }
                crate::hostif::begin();
                stress_step(*task, *step);
                crate::hostif::end();
                *step += 1;
            }
        }
    }
    RUNNING.store(false, Ordering::Relaxed);
}

/// One step of `stress`: a deterministic cycle of fills, frees, pins and
/// CMA allocations (which migrate the movable pages in their way).
fn stress_step(task: usize, step: u32) {
    let cur = vm::current_index();
    if !vm::switch_to(task) {
        return;
    }
    // keep about a fifth of memory free (room for migration targets)
    let roomy = crate::mm::page_alloc().is_some_and(|pa| pa.nr_free_pages() * 5 > pa.totalram_pages());
    match step % 10 {
        0..=5 => {
            if roomy {
                vm::fill_quiet(4)
            }
        }
        6 => vm::pin_quiet(4),
        7 => {
            vm::unpin_quiet();
            vm::free_quiet(4);
        }
        8 => crate::dma::stress_cma(true),
        _ => crate::dma::stress_cma(false),
    }
    vm::switch_to(cur);
}
