//! An in-repo fuzzer for every input the host takes (`cmaemu fuzz`).
//!
//! Stable Rust, no instrumentation: each target ([`targets`]) parses one
//! input the way `cmaemu` does and checks what it can (no panic, round
//! trips, invariants). The loop takes an input from the corpus (the
//! repo's own device trees, ELFs, scenarios, a recorded trace, …), mutates
//! it (byte-level havoc with the target's dictionary, or the target's own
//! structure-aware mutation, e.g. device-tree edits), and runs it under
//! `catch_unwind`. An input that ends in an outcome class not seen before
//! (its error message without numbers) joins the corpus: a cheap stand-in
//! for coverage that walks the parsers' error paths.
//!
//! Every panic saves the input as `<out>/<target>-panic-<hash>.bin`; a
//! watchdog thread saves an input that runs longer than the per-input
//! time limit as `…-hang-…` and ends the process; with [`LimitAlloc`] as
//! the global allocator (the `cmaemu` binary), one allocation above the
//! limit saves `…-oom-…` and ends it. Each prints how to replay it:
//! `cmaemu fuzz TARGET --replay FILE`.
pub mod dtbmut;
pub mod targets;

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// One fuzzed input kind.
pub trait Target {
    /// Short name (`cmaemu fuzz NAME`).
    fn name(&self) -> &'static str;
    /// What it runs.
    fn about(&self) -> &'static str;
    /// The starting corpus, from the repo's own files.
    fn seeds(&self) -> Vec<Vec<u8>>;
    /// Tokens the byte mutator inserts.
    fn dictionary(&self) -> &'static [&'static str] {
        &[]
    }
    /// Longest input the mutator makes.
    fn max_len(&self) -> usize {
        1 << 16
    }
    /// A structure-aware mutation of `input`, or `None` for a byte-level one.
    fn mutate(&self, _rng: &mut Rng, _input: &[u8]) -> Option<Vec<u8>> {
        None
    }
    /// Run one input: the outcome class (`ok`, or which error). A panic
    /// is a bug.
    fn run(&self, input: &[u8]) -> String;
}

/// xorshift64*: fast, deterministic, good enough to pick mutations.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
    pub fn pick<T: Clone>(&mut self, v: &[T]) -> T {
        v[self.below(v.len())].clone()
    }
}

/// How long to fuzz: whichever of the two ends first.
#[derive(Clone, Debug)]
pub struct Budget {
    pub execs: Option<u64>,
    pub time: Option<Duration>,
}

/// Fuzzing options.
#[derive(Clone, Debug)]
pub struct Options {
    pub budget: Budget,
    /// RNG seed (same seed and exec budget: same inputs).
    pub seed: u64,
    /// Where reproducers go.
    pub out_dir: PathBuf,
    /// Per-input time limit.
    pub timeout: Duration,
    /// Extra seed files.
    pub corpus: Vec<Vec<u8>>,
    /// Print a status line every few seconds.
    pub progress: bool,
}

/// What a run found.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub target: &'static str,
    pub execs: u64,
    pub elapsed: Duration,
    pub panics: u64,
    /// Reproducers saved (one per distinct panic location).
    pub saved: Vec<PathBuf>,
    pub classes: usize,
    pub corpus: usize,
    /// Outcome classes with their counts (capped), most frequent first.
    pub class_counts: Vec<(String, u64)>,
}

impl Report {
    pub fn execs_per_sec(&self) -> f64 {
        self.execs as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "fuzz {:<12} {:>9} execs in {:>7.1} s ({:>8.0}/s), {:>4} outcome classes, corpus {:>4}, panics {}, hangs 0",
            self.target,
            self.execs,
            self.elapsed.as_secs_f64(),
            self.execs_per_sec(),
            self.classes,
            self.corpus,
            self.panics
        )
    }
}

/// The input being run, for the watchdog and the allocation limit.
struct Current {
    target: &'static str,
    out_dir: PathBuf,
    input: Mutex<Vec<u8>>,
    /// Nanoseconds since `epoch` when the input started; 0 when idle.
    started: AtomicU64,
    epoch: Instant,
}

static CURRENT: OnceLock<Mutex<Option<Arc<Current>>>> = OnceLock::new();

fn current() -> Option<Arc<Current>> {
    CURRENT.get_or_init(|| Mutex::new(None)).lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// FNV-1a, for reproducer names.
fn fnv(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &x| (h ^ x as u64).wrapping_mul(0x100_0000_01b3))
}

/// Save `input` as a reproducer and print how to replay it.
fn save(out_dir: &Path, target: &str, kind: &str, input: &[u8], why: &str) -> PathBuf {
    let _ = std::fs::create_dir_all(out_dir);
    let path = out_dir.join(format!("{target}-{kind}-{:016x}.bin", fnv(input)));
    let tmp = path.with_extension("tmp");
    let ok = std::fs::write(&tmp, input).and_then(|_| std::fs::rename(&tmp, &path));
    eprintln!("cmaemu: fuzz {target}: {kind}: {why}");
    match ok {
        Ok(()) => eprintln!("  input ({} bytes) saved as {}\n  replay: cmaemu fuzz {target} --replay {}", input.len(), path.display(), path.display()),
        Err(e) => eprintln!("  could not save the input to {}: {e}", path.display()),
    }
    path
}

/// Report the running input as `kind` (hang, oom) and end the process.
fn abort_current(kind: &str, why: &str) -> ! {
    if let Some(c) = current() {
        let input = c.input.lock().unwrap_or_else(|p| p.into_inner()).clone();
        save(&c.out_dir, c.target, kind, &input, why);
    } else {
        eprintln!("cmaemu: fuzz: {kind}: {why}");
    }
    std::process::exit(EXIT_FOUND)
}

/// Exit status of `cmaemu fuzz` when it found a panic, hang or oom.
pub const EXIT_FOUND: i32 = 1;

/// Largest single allocation while an input runs (0: no limit).
static ALLOC_LIMIT: AtomicUsize = AtomicUsize::new(0);
/// Default for [`ALLOC_LIMIT`] during fuzzing: 512 MiB (the largest
/// legitimate buffers are a 1 GiB board's trace map, ~150 MB, and flash).
pub const DEFAULT_ALLOC_LIMIT: usize = 512 << 20;

/// A global allocator that ends the process, saving the input being
/// fuzzed, on one allocation above the limit (libFuzzer's
/// `-malloc_limit_mb`). Without a fuzz run it is the system allocator.
pub struct LimitAlloc;

fn check_size(size: usize) {
    let limit = ALLOC_LIMIT.load(Ordering::Relaxed);
    if limit != 0 && size > limit {
        ALLOC_LIMIT.store(0, Ordering::Relaxed);
        abort_current("oom", &format!("one allocation of {size} bytes (limit {limit})"));
    }
}

// SAFETY: every call is forwarded unchanged to `System`, which upholds the
// GlobalAlloc contract; the size check only reads an atomic (and on an
// oversized request ends the process before allocating).
unsafe impl GlobalAlloc for LimitAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        check_size(layout.size());
        // SAFETY: same layout as our caller's, forwarded.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        check_size(layout.size());
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        check_size(new_size);
        // SAFETY: `ptr` came from `System` with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Starts the watchdog for a target; it ends the process on a hang.
fn arm(target: &'static str, out_dir: &Path, timeout: Duration) -> Arc<Current> {
    let c = Arc::new(Current { target, out_dir: out_dir.to_path_buf(), input: Mutex::new(Vec::new()), started: AtomicU64::new(0), epoch: Instant::now() });
    *CURRENT.get_or_init(|| Mutex::new(None)).lock().unwrap_or_else(|p| p.into_inner()) = Some(c.clone());
    let w = Arc::downgrade(&c);
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_millis(20).min(timeout / 4).max(Duration::from_millis(1)));
        let Some(c) = w.upgrade() else { return };
        let t0 = c.started.load(Ordering::SeqCst);
        if t0 != 0 && c.epoch.elapsed().as_nanos() as u64 > t0 + timeout.as_nanos() as u64 {
            abort_current("hang", &format!("one input ran longer than {} ms", timeout.as_millis()));
        }
    });
    ALLOC_LIMIT.store(DEFAULT_ALLOC_LIMIT, Ordering::Relaxed);
    c
}

fn disarm() {
    ALLOC_LIMIT.store(0, Ordering::Relaxed);
    *CURRENT.get_or_init(|| Mutex::new(None)).lock().unwrap_or_else(|p| p.into_inner()) = None;
}

std::thread_local! {
    static LAST_PANIC: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

std::thread_local! {
    static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

type Hook = Box<dyn Fn(&std::panic::PanicHookInfo<'_>) + Sync + Send + 'static>;

/// While alive, panics on this thread record their location (and with
/// `echo` also go to the previous hook, which prints them); other
/// threads' panics go to the previous hook.
struct QuietPanics(Option<Arc<Hook>>);

impl QuietPanics {
    fn install(echo: bool) -> Self {
        let prev: Arc<Hook> = Arc::new(std::panic::take_hook());
        let p = prev.clone();
        std::panic::set_hook(Box::new(move |info| {
            if QUIET.with(|q| q.get()) {
                // the input is over; printing a backtrace is not its time
                if let Some(c) = current() {
                    c.started.store(0, Ordering::SeqCst);
                }
                let at = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
                LAST_PANIC.with(|l| *l.borrow_mut() = Some(at));
                if echo {
                    p(info)
                }
            } else {
                p(info)
            }
        }));
        QUIET.with(|q| q.set(true));
        QuietPanics(Some(prev))
    }
}

impl Drop for QuietPanics {
    fn drop(&mut self) {
        QUIET.with(|q| q.set(false));
        let _ = std::panic::take_hook();
        if let Some(prev) = self.0.take().and_then(|a| Arc::try_unwrap(a).ok()) {
            std::panic::set_hook(prev);
        }
    }
}

/// A target panicked on an input: the panic's message and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at {at})")]
pub struct Panicked {
    pub message: String,
    /// `file:line:column` of the panic.
    pub at: String,
}

/// Run one input with the watchdog timing it; `Err` holds the panic.
fn run_one(t: &dyn Target, c: &Current, input: &[u8]) -> Result<String, Panicked> {
    {
        let mut cur = c.input.lock().unwrap_or_else(|p| p.into_inner());
        cur.clear();
        cur.extend_from_slice(input);
    }
    c.started.store((c.epoch.elapsed().as_nanos() as u64).max(1), Ordering::SeqCst);
    let r = catch_unwind(AssertUnwindSafe(|| t.run(input)));
    c.started.store(0, Ordering::SeqCst);
    r.map_err(|p| {
        let message = p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
        let at = LAST_PANIC.with(|l| l.borrow_mut().take()).unwrap_or_default();
        Panicked { message, at }
    })
}

/// An outcome class: the text with digits and hex numbers folded, short.
pub fn class_of(s: &str) -> String {
    let mut out = String::new();
    let mut prev_hash = false;
    for ch in s.chars().take(160) {
        let num = ch.is_ascii_digit() || (prev_hash && (ch.is_ascii_hexdigit() || ch == 'x'));
        if num {
            if !prev_hash {
                out.push('#');
            }
            prev_hash = true;
        } else {
            out.push(ch);
            prev_hash = false;
        }
    }
    out
}

/// Byte-level havoc: 1 to 8 stacked edits.
pub fn havoc(rng: &mut Rng, input: &[u8], corpus: &[Vec<u8>], dict: &[&str], max_len: usize) -> Vec<u8> {
    const INTERESTING: [u32; 14] = [0, 1, 2, 3, 4, 7, 8, 0x10, 0x7f, 0x80, 0xff, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff];
    let mut b = input.to_vec();
    for _ in 0..1 + rng.below(8) {
        let len = b.len();
        let pos = rng.below(len.max(1));
        match rng.below(13) {
            0 if len > 0 => b[pos] ^= 1 << rng.below(8),
            1 if len > 0 => b[pos] = rng.next() as u8,
            2 if len > 0 => b[pos] = rng.pick(&INTERESTING) as u8,
            3 if len >= 4 => {
                let p = rng.below(len - 3);
                let v = rng.pick(&INTERESTING);
                let bytes = if rng.chance(2) { v.to_be_bytes() } else { v.to_le_bytes() };
                b[p..p + 4].copy_from_slice(&bytes);
            }
            4 if len > 0 => b[pos] = b[pos].wrapping_add(rng.below(35) as u8).wrapping_sub(17),
            5 if len >= 4 => {
                let p = rng.below(len - 3);
                let v = u32::from_be_bytes([b[p], b[p + 1], b[p + 2], b[p + 3]]).wrapping_add((rng.below(65) as u32).wrapping_sub(32));
                b[p..p + 4].copy_from_slice(&v.to_be_bytes());
            }
            6 if len > 1 => {
                let cap = if rng.chance(4) { len } else { 32 };
                let n = 1 + rng.below((len - pos).min(cap));
                b.drain(pos..(pos + n).min(len));
            }
            7 if len > 0 => {
                let from = rng.below(len);
                let n = 1 + rng.below((len - from).min(64));
                let chunk = b[from..from + n].to_vec();
                let at = rng.below(len + 1);
                b.splice(at..at, chunk);
            }
            8 => {
                let n = 1 + rng.below(16);
                let at = rng.below(len + 1);
                let chunk: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                b.splice(at..at, chunk);
            }
            9 | 10 if !dict.is_empty() => {
                let tok = rng.pick(dict).as_bytes();
                let at = rng.below(len + 1);
                if rng.chance(2) || at + tok.len() > len {
                    b.splice(at..at, tok.iter().copied());
                } else {
                    b[at..at + tok.len()].copy_from_slice(tok);
                }
            }
            11 if !corpus.is_empty() => {
                let other = &corpus[rng.below(corpus.len())];
                let cut = rng.below(len + 1);
                let from = rng.below(other.len() + 1);
                b.truncate(cut);
                b.extend_from_slice(&other[from..]);
            }
            12 if len > 0 => b.truncate(pos),
            _ => {}
        }
    }
    b.truncate(max_len);
    b
}

/// Fuzz one target with `opts`; panics are saved and counted, a hang or
/// an oversized allocation ends the process (after saving the input).
pub fn fuzz(t: &dyn Target, opts: &Options) -> Report {
    let c = arm(t.name(), &opts.out_dir, opts.timeout);
    let hook = QuietPanics::install(false);
    let mut rng = Rng::new(opts.seed ^ fnv(t.name().as_bytes()));
    let mut corpus: Vec<Vec<u8>> = t.seeds();
    corpus.extend(opts.corpus.iter().cloned());
    if corpus.is_empty() {
        corpus.push(Vec::new());
    }
    let mut classes: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    let mut panic_sites: HashSet<String> = HashSet::new();
    let mut rep = Report { target: t.name(), ..Default::default() };
    let start = Instant::now();
    let mut last_progress = start;
    let done = |execs: u64, el: Duration| opts.budget.execs.is_some_and(|n| execs >= n) || opts.budget.time.is_some_and(|d| el >= d);
    // the seeds themselves first, then mutants
    let mut queue: Vec<Vec<u8>> = corpus.clone();
    queue.reverse();
    while !done(rep.execs, start.elapsed()) {
        let input = match queue.pop() {
            Some(s) => s,
            None => {
                let base = &corpus[rng.below(corpus.len())];
                let structured = if rng.chance(2) { t.mutate(&mut rng, base) } else { None };
                structured.unwrap_or_else(|| havoc(&mut rng, base, &corpus, t.dictionary(), t.max_len()))
            }
        };
        rep.execs += 1;
        match run_one(t, &c, &input) {
            Ok(class) => {
                let class = class_of(&class);
                if let Some(n) = classes.get_mut(&class) {
                    *n += 1;
                } else if classes.len() < 4096 {
                    classes.insert(class, 1);
                    if corpus.len() < 2048 {
                        corpus.push(input);
                    }
                }
            }
            Err(panic) => {
                let msg = panic.to_string();
                rep.panics += 1;
                let site = class_of(&msg);
                if panic_sites.insert(site) {
                    rep.saved.push(save(&opts.out_dir, t.name(), "panic", &input, &msg));
                }
            }
        }
        if opts.progress && last_progress.elapsed() >= Duration::from_secs(10) {
            last_progress = Instant::now();
            rep.elapsed = start.elapsed();
            rep.classes = classes.len();
            rep.corpus = corpus.len();
            eprintln!("  {rep}");
        }
    }
    rep.elapsed = start.elapsed();
    rep.classes = classes.len();
    rep.corpus = corpus.len();
    rep.class_counts = classes.into_iter().collect();
    rep.class_counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    drop(hook);
    disarm();
    rep
}

/// Run one saved input (with the watchdog and the allocation limit):
/// its outcome class, or the panic (its message and location; the
/// default panic hook prints the backtrace with `RUST_BACKTRACE=1`).
pub fn replay(t: &dyn Target, input: &[u8], out_dir: &Path, timeout: Duration) -> Result<String, Panicked> {
    let c = arm(t.name(), out_dir, timeout);
    let hook = QuietPanics::install(true);
    let r = run_one(t, &c, input);
    drop(hook);
    disarm();
    r
}

/// `cmaemu fuzz`: fuzz every host input for a budget, or replay one saved
/// input.
#[derive(clap::Args, Debug)]
pub struct FuzzArgs {
    /// A target (see --list), or `all`.
    #[arg(default_value = "all")]
    pub target: String,
    /// Executions per target.
    #[arg(long)]
    pub execs: Option<u64>,
    /// Seconds per target.
    #[arg(long)]
    pub seconds: Option<f64>,
    /// RNG seed (a run with the same seed and --execs makes the same inputs).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Where crash, hang and oom reproducers are written.
    #[arg(long, default_value = "fuzz-out")]
    pub out: PathBuf,
    /// Per-input time limit in milliseconds (a slower input is a hang).
    #[arg(long, default_value_t = 2000)]
    pub timeout_ms: u64,
    /// More seed inputs: every file in DIR.
    #[arg(long, value_name = "DIR")]
    pub corpus: Option<PathBuf>,
    /// Run one saved input and report.
    #[arg(long, value_name = "FILE")]
    pub replay: Option<PathBuf>,
    /// List the targets.
    #[arg(long)]
    pub list: bool,
    /// After each target, print its N most frequent outcome classes.
    #[arg(long, value_name = "N")]
    pub classes: Option<usize>,
}

/// Run `cmaemu fuzz`; the exit status (0 clean, 1 found something, 2 bad
/// arguments).
pub fn cli(a: &FuzzArgs) -> u8 {
    let all = targets::all();
    if a.list {
        for t in &all {
            println!("{:<13} {}", t.name(), t.about());
        }
        return 0;
    }
    let one = targets::by_name(&a.target);
    let chosen: Vec<&dyn Target> = if a.target == "all" {
        all.iter().map(|t| t.as_ref()).collect()
    } else {
        match &one {
            Some(t) => vec![t.as_ref()],
            None => {
                let names: Vec<&str> = all.iter().map(|t| t.name()).collect();
                eprintln!("cmaemu: fuzz: no target {:?} (targets: {}, or all)", a.target, names.join(", "));
                return 2;
            }
        }
    };
    let timeout = Duration::from_millis(a.timeout_ms.max(1));
    if let Some(file) = &a.replay {
        let [t] = chosen[..] else {
            eprintln!("cmaemu: fuzz: --replay needs one target");
            return 2;
        };
        let bytes = match std::fs::read(file) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("cmaemu: fuzz: {}: {e}", file.display());
                return 2;
            }
        };
        return match replay(t, &bytes, &a.out, timeout) {
            Ok(class) => {
                println!("fuzz {}: {}: no panic ({class})", t.name(), file.display());
                0
            }
            Err(msg) => {
                println!("fuzz {}: {}: panic: {msg}", t.name(), file.display());
                EXIT_FOUND as u8
            }
        };
    }
    let time = match a.seconds {
        Some(s) if !(s.is_finite() && s >= 0.0) => {
            eprintln!("cmaemu: fuzz: --seconds {s}: not a number of seconds");
            return 2;
        }
        s => s.map(Duration::from_secs_f64),
    };
    let budget = if a.execs.is_none() && time.is_none() { Budget { execs: Some(100_000), time: None } } else { Budget { execs: a.execs, time } };
    let mut corpus = Vec::new();
    if let Some(dir) = &a.corpus {
        match std::fs::read_dir(dir) {
            Ok(rd) => corpus.extend(rd.filter_map(|e| e.ok()).filter_map(|e| std::fs::read(e.path()).ok())),
            Err(e) => {
                eprintln!("cmaemu: fuzz: --corpus {}: {e}", dir.display());
                return 2;
            }
        }
    }
    let opts = Options { budget, seed: a.seed, out_dir: a.out.clone(), timeout, corpus, progress: chosen.len() == 1 };
    let (mut execs, mut panics) = (0u64, 0u64);
    for t in &chosen {
        let rep = fuzz(*t, &opts);
        println!("{rep}");
        for (c, n) in rep.class_counts.iter().take(a.classes.unwrap_or(0)) {
            println!("  {n:>9}  {c}");
        }
        execs += rep.execs;
        panics += rep.panics;
    }
    println!("fuzz: {} targets, {execs} execs, panics {panics}, hangs 0", chosen.len());
    if panics > 0 {
        EXIT_FOUND as u8
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_fold_numbers() {
        assert_eq!(class_of("dtb: block at 0x1234+0x10 lies outside the 77-byte blob"), "dtb: block at #+# lies outside the #-byte blob");
    }

    #[test]
    fn havoc_stays_under_the_length_cap_and_is_deterministic() {
        let seed = b"hello world, this is a seed".to_vec();
        let run = || {
            let mut r = Rng::new(7);
            (0..2000).map(|_| havoc(&mut r, &seed, std::slice::from_ref(&seed), &["token"], 40)).collect::<Vec<_>>()
        };
        let a = run();
        assert!(a.iter().all(|m| m.len() <= 40));
        assert_eq!(a, run());
        assert!(a.iter().any(|m| m.windows(5).any(|w| w == b"token")));
    }

    struct Panicky;
    impl Target for Panicky {
        fn name(&self) -> &'static str {
            "selftest"
        }
        fn about(&self) -> &'static str {
            "panics on inputs starting with '!'"
        }
        fn seeds(&self) -> Vec<Vec<u8>> {
            vec![b"abc".to_vec()]
        }
        fn dictionary(&self) -> &'static [&'static str] {
            &["!"]
        }
        fn run(&self, input: &[u8]) -> String {
            if input.first() == Some(&b'!') {
                panic!("bang");
            }
            "ok".into()
        }
    }

    /// The harness itself: a planted panic is found, saved once and replays.
    #[test]
    fn a_planted_panic_is_found_saved_and_replayed() {
        let out = std::env::temp_dir().join(format!("cmaemu-fuzz-selftest-{}", std::process::id()));
        let opts = Options {
            budget: Budget { execs: Some(5000), time: None },
            seed: 1,
            out_dir: out.clone(),
            timeout: Duration::from_secs(5),
            corpus: Vec::new(),
            progress: false,
        };
        let rep = fuzz(&Panicky, &opts);
        assert_eq!(rep.execs, 5000);
        assert!(rep.panics > 0, "{rep}");
        assert_eq!(rep.saved.len(), 1, "one reproducer per panic site");
        let bytes = std::fs::read(&rep.saved[0]).unwrap();
        let e = replay(&Panicky, &bytes, &out, Duration::from_secs(5)).unwrap_err().to_string();
        assert!(e.starts_with("bang (at emulator/src/fuzz/mod.rs:"), "{e}");
        let _ = std::fs::remove_dir_all(out);
    }
}
