//! The Rust API: boot a board in a test and drive its console.
use super::file::{parse_size, BoardSpec};
use super::procfs::{parse_meminfo, parse_vmstat, Counters};
use crate::board::machine::{Exit, Machine, Step};
use crate::memory::map::RAM_BASE;
use crate::loader::board_dtb::{board_dtb, BoardDtbOptions, DEFAULT_BOOTARGS};
use crate::loader::dtb::{Dtb, DtbError};
use crate::loader::images;
use std::path::{Path, PathBuf};

/// Virtual nanoseconds in a millisecond (1 instruction = 1 ns).
const NS_PER_MS: u64 = 1_000_000;
/// Default instruction limit of a whole run.
pub const DEFAULT_MAX_INSNS: u64 = 50_000_000_000;
/// Default virtual-time limit for the boot to reach the shell prompt.
pub const DEFAULT_BOOT_TIMEOUT_MS: u64 = 20_000;
/// Default virtual-time limit of one console command.
pub const DEFAULT_COMMAND_TIMEOUT_MS: u64 = 20_000;
/// Smallest instruction budget of one chunk of a time-bounded wait.
const MIN_CHUNK: u64 = 2_000;

/// Why a session step failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The board could not be built (DTB, sizes, images).
    #[error("board: {0}")]
    Board(String),
    /// The awaited prompt/text did not come within the virtual-time limit.
    #[error("{what}: not done within {ms} ms of virtual time")]
    Timeout { what: String, ms: u64 },
    /// The guest stopped (powered off, panicked, hit the instruction limit).
    #[error("{what}: the guest {}", describe_exit(.exit))]
    Exited { what: String, exit: Exit },
}

/// Why a `[board]` table (or a test's builder) describes no board that
/// can be built: its device tree, a `dt.NODE` size, `dtc`.
#[derive(Debug, thiserror::Error)]
pub enum BoardSpecError {
    /// The tree (named by its file, or `the generated board`) is bad.
    #[error("{what}: {source}")]
    Dtb { what: String, source: DtbError },
    #[error("{what}: no /reserved-memory node to resize")]
    NoReservedMemory { what: String },
    #[error("dt.{node}: {what} has no /reserved-memory/{node} (it has: {have})")]
    NoSuchNode { node: String, what: String, have: String },
    #[error("dt.{node}: {size:#x} does not fit the node's one size cell")]
    SizeCell { node: String, size: u64 },
    #[error("dt.{node}: reg has {len} bytes, expected one (address, size) entry")]
    RegLen { node: String, len: usize },
    #[error("dt.{node}: /reserved-memory/{full} has neither size nor reg")]
    NoSize { node: String, full: String },
    #[error("{}: cannot run dtc ({source}); install device-tree-compiler or give a .dtb", path.display())]
    NoDtc { path: PathBuf, source: std::io::Error },
    #[error("{}: dtc failed: {stderr}", path.display())]
    Dtc { path: PathBuf, stderr: String },
    /// The `.dtb` (or `dtc`'s output) could not be read.
    #[error("{}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
}

/// The error of a device tree named `what`.
fn dtb_err(what: &impl std::fmt::Display) -> impl FnOnce(DtbError) -> BoardSpecError + '_ {
    move |source| BoardSpecError::Dtb { what: what.to_string(), source }
}

/// A human description of how a run ended.
pub fn describe_exit(e: &Exit) -> String {
    match e {
        Exit::Poweroff(c) => format!("powered off with code {c}"),
        Exit::Panic(code) => format!("panicked (poweroff status {code:#010x})"),
        Exit::MaxInsns => "reached the instruction limit (max_insns)".into(),
        Exit::IdleAfterEof => "stayed idle with no console input (the machine ended the run)".into(),
        Exit::UserQuit => "was stopped by the user".into(),
        Exit::Violation => "was stopped by a verification violation".into(),
        Exit::Error(s) => format!("could not continue: {s}"),
    }
}

/// A DTB and RAM size, ready to boot (plain bytes: `Send`, so sweeps can
/// prepare once and boot in worker threads).
#[derive(Clone, Debug)]
pub struct PreparedBoard {
    pub dtb: Vec<u8>,
    pub ram_size: u64,
    pub bootargs: String,
    pub max_insns: u64,
    pub boot_timeout_ms: u64,
    /// Emit frame events, counters and page states at every frame, not
    /// only after mm activity (for `cmaemu test --report`).
    pub every_frame: bool,
    /// What the trace's `run` event calls the device tree.
    pub dtb_label: Option<String>,
}

impl PreparedBoard {
    /// Build the board a `[board]` table describes. Relative `dtb` paths
    /// are taken from `dir`; a `.dts` is compiled with `dtc`.
    pub fn from_spec(spec: &BoardSpec, dir: Option<&Path>) -> Result<PreparedBoard, BoardSpecError> {
        let mut inject = if spec.inject.is_empty() { String::new() } else { format!(" cmaemu.inject={}", spec.inject.join(",")) };
        for a in &spec.args {
            inject.push(' ');
            inject.push_str(a);
        }
        let (dtb, ram_size, bootargs) = match &spec.dtb {
            None => {
                let mut o = BoardDtbOptions::new(spec.ram.unwrap_or(1 << 30));
                o.bootargs = format!("{}{}", spec.bootargs.as_deref().unwrap_or(DEFAULT_BOOTARGS), inject);
                if let Some(c) = spec.cma {
                    o.cma_size = c;
                }
                if let Some(c) = spec.camera_cma {
                    o.camera_cma_size = c;
                }
                (set_reserved_sizes(board_dtb(&o), &spec.reserved_sizes, "the generated board")?, o.ram_size, o.bootargs)
            }
            Some(p) => {
                let path = match dir {
                    Some(d) if Path::new(p).is_relative() => d.join(p),
                    _ => PathBuf::from(p),
                };
                let bytes = read_dtb(&path)?;
                let what = path.display();
                let mut dtb = Dtb::parse(&bytes).map_err(dtb_err(&what))?;
                if let Some(r) = spec.ram {
                    dtb.set_memory(RAM_BASE, r).map_err(dtb_err(&what))?;
                }
                let base = spec.bootargs.clone().or_else(|| dtb.bootargs()).unwrap_or_else(|| DEFAULT_BOOTARGS.to_string());
                let args = format!("{base}{inject}");
                dtb.set_bootargs(&args).map_err(dtb_err(&what))?;
                let regions = dtb.memory_regions().map_err(dtb_err(&what))?;
                let end = regions.iter().map(|(b, s)| b + s).max().unwrap_or(RAM_BASE);
                let ram = (end.saturating_sub(RAM_BASE)).div_ceil(1 << 20) << 20;
                let bytes = dtb.to_bytes().map_err(dtb_err(&what))?;
                (set_reserved_sizes(bytes, &spec.reserved_sizes, &what.to_string())?, ram.clamp(16 << 20, 1 << 30), args)
            }
        };
        Ok(PreparedBoard {
            dtb,
            ram_size,
            bootargs,
            max_insns: spec.max_insns.unwrap_or(DEFAULT_MAX_INSNS),
            boot_timeout_ms: spec.boot_timeout_ms.unwrap_or(DEFAULT_BOOT_TIMEOUT_MS),
            every_frame: false,
            dtb_label: spec.dtb.clone(),
        })
    }

    /// Boot it to the shell prompt.
    pub fn boot(&self) -> Result<Session, Error> {
        let opts = crate::board::machine::RunOptions {
            verify: true,
            every_frame: self.every_frame,
            dtb_label: self.dtb_label.clone(),
            ..Default::default()
        };
        let m = Machine::with_options(images::KERNEL_ELF, images::FIRMWARE_ELF, &self.dtb, self.ram_size, self.max_insns, opts)
            .map_err(|e| Error::Board(e.to_string()))?;
        let mut s = Session { m, command_timeout_ms: DEFAULT_COMMAND_TIMEOUT_MS };
        s.bounded("boot (waiting for the shell prompt)", self.boot_timeout_ms * NS_PER_MS, false, |m| m.run_until_idle(), |_, _| false)?;
        Ok(s)
    }
}

/// Give `/reserved-memory` nodes new sizes: `size` of a dynamically
/// placed node, the size cells of a static node's one `reg` entry. A node
/// is named in full (`camera-cma`, `buffer@78000000`) or by the part
/// before `@`.
fn set_reserved_sizes(dtb: Vec<u8>, sizes: &[(String, u64)], what: &str) -> Result<Vec<u8>, BoardSpecError> {
    if sizes.is_empty() {
        return Ok(dtb);
    }
    let mut d = Dtb::parse(&dtb).map_err(dtb_err(&what))?;
    let rm_path = "/reserved-memory";
    let Some(rm) = d.find(rm_path) else { return Err(BoardSpecError::NoReservedMemory { what: what.to_string() }) };
    let (ac, sc) = (rm.prop_u32("#address-cells").unwrap_or(d.address_cells()), rm.prop_u32("#size-cells").unwrap_or(d.size_cells()));
    let names: Vec<String> = rm.children.iter().map(|c| c.name.clone()).collect();
    for (node, size) in sizes {
        let Some(full) = names.iter().find(|n| *n == node || n.split('@').next() == Some(node.as_str())) else {
            return Err(BoardSpecError::NoSuchNode { node: node.clone(), what: what.to_string(), have: names.join(", ") });
        };
        let cells = |v: u64, n: u32| -> Vec<u8> {
            if n == 2 { v.to_be_bytes().to_vec() } else { (v as u32).to_be_bytes().to_vec() }
        };
        if sc == 1 && *size > u32::MAX as u64 {
            return Err(BoardSpecError::SizeCell { node: node.clone(), size: *size });
        }
        let Some(n) = d.find_mut(&format!("{rm_path}/{full}")) else { unreachable!("{full} is a child of {rm_path}") };
        if n.prop("size").is_some() {
            n.set_prop("size", cells(*size, sc));
        } else if let Some(reg) = n.prop("reg").map(<[u8]>::to_vec) {
            let a = 4 * ac as usize;
            if reg.len() != a + 4 * sc as usize {
                return Err(BoardSpecError::RegLen { node: node.clone(), len: reg.len() });
            }
            let mut r = reg[..a].to_vec();
            r.extend(cells(*size, sc));
            n.set_prop("reg", r);
        } else {
            return Err(BoardSpecError::NoSize { node: node.clone(), full: full.clone() });
        }
    }
    d.to_bytes().map_err(dtb_err(&what))
}

fn read_dtb(path: &Path) -> Result<Vec<u8>, BoardSpecError> {
    if path.extension().is_some_and(|e| e == "dts") {
        let out = std::env::temp_dir().join(format!(
            "cmaemu-{}-{:?}-{}.dtb",
            std::process::id(),
            std::thread::current().id(),
            path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
        ));
        let r = std::process::Command::new("dtc").args(["-q", "-I", "dts", "-O", "dtb", "-o"]).arg(&out).arg(path).output();
        let res = match r {
            Err(source) => Err(BoardSpecError::NoDtc { path: path.to_path_buf(), source }),
            Ok(o) if !o.status.success() => Err(BoardSpecError::Dtc { path: path.to_path_buf(), stderr: String::from_utf8_lossy(&o.stderr).trim().to_string() }),
            Ok(_) => std::fs::read(&out).map_err(|source| BoardSpecError::Read { path: out.clone(), source }),
        };
        let _ = std::fs::remove_file(&out);
        res
    } else {
        std::fs::read(path).map_err(|source| BoardSpecError::Read { path: path.to_path_buf(), source })
    }
}

/// Builds a board for a test; see the module documentation.
#[derive(Clone, Debug, Default)]
pub struct BoardBuilder {
    spec: BoardSpec,
    dtb_bytes: Option<Vec<u8>>,
}

/// Entry point of the Rust API: `Board::builder()`.
pub struct Board;

impl Board {
    pub fn builder() -> BoardBuilder {
        BoardBuilder::default()
    }
}

impl BoardBuilder {
    /// RAM size in bytes (16 MiB to 1 GiB, whole MiB).
    pub fn ram(mut self, bytes: u64) -> Self {
        self.spec.ram = Some(bytes);
        self
    }
    /// RAM size as text (`"256M"`).
    pub fn ram_str(self, s: &str) -> Self {
        match parse_size(s) {
            Ok(b) => self.ram(b),
            Err(_) => self.ram(0),
        }
    }
    /// The kernel command line.
    pub fn bootargs(mut self, args: &str) -> Self {
        self.spec.bootargs = Some(args.to_string());
        self
    }
    /// Size of the generated board's default CMA pool.
    pub fn cma(mut self, bytes: u64) -> Self {
        self.spec.cma = Some(bytes);
        self
    }
    /// Size of the generated board's camera pool.
    pub fn camera_cma(mut self, bytes: u64) -> Self {
        self.spec.camera_cma = Some(bytes);
        self
    }
    /// Boot this DTB (`.dtb` or `.dts`) instead of the generated board.
    pub fn dtb_file(mut self, path: impl AsRef<Path>) -> Self {
        self.spec.dtb = Some(path.as_ref().display().to_string());
        self
    }
    /// Boot this DTB blob instead of the generated board.
    pub fn dtb(mut self, blob: Vec<u8>) -> Self {
        self.dtb_bytes = Some(blob);
        self
    }
    /// A fault injection (`cmaemu.inject=`).
    pub fn inject(mut self, name: &str) -> Self {
        self.spec.inject.push(name.to_string());
        self
    }
    /// Overall instruction limit.
    pub fn max_insns(mut self, n: u64) -> Self {
        self.spec.max_insns = Some(n);
        self
    }
    /// Virtual-time limit of the boot.
    pub fn boot_timeout_ms(mut self, ms: u64) -> Self {
        self.spec.boot_timeout_ms = Some(ms);
        self
    }
    /// The board, not yet booted.
    pub fn prepare(&self) -> Result<PreparedBoard, Error> {
        if let Some(r) = self.spec.ram {
            if !crate::memory::map::valid_ram_size(r) {
                return Err(Error::Board(format!("ram {r:#x}: must be a multiple of 1 MiB from 16M to 1G")));
            }
        }
        match &self.dtb_bytes {
            None => PreparedBoard::from_spec(&self.spec, None).map_err(|e| Error::Board(e.to_string())),
            Some(blob) => {
                let tmp = std::env::temp_dir().join(format!("cmaemu-api-{}-{:?}.dtb", std::process::id(), std::thread::current().id()));
                std::fs::write(&tmp, blob).map_err(|e| Error::Board(e.to_string()))?;
                let mut spec = self.spec.clone();
                spec.dtb = Some(tmp.display().to_string());
                let r = PreparedBoard::from_spec(&spec, None).map_err(|e| Error::Board(e.to_string()));
                let _ = std::fs::remove_file(&tmp);
                r
            }
        }
    }
    /// Build and boot to the shell prompt.
    pub fn boot(&self) -> Result<Session, Error> {
        self.prepare()?.boot()
    }
}

/// A booted board at the shell prompt.
pub struct Session {
    m: Machine,
    command_timeout_ms: u64,
}

impl Session {
    /// The underlying stepping machine (RAM, CPU, statistics).
    pub fn machine(&mut self) -> &mut Machine {
        &mut self.m
    }
    /// The underlying machine, read-only (its events, statistics).
    pub fn machine_ref(&self) -> &Machine {
        &self.m
    }
    /// The console's bytes so far, as the guest wrote them.
    pub fn console_bytes(&self) -> Vec<u8> {
        self.m.capture.0.lock().clone()
    }
    /// Whether the host verifier is live (the guest handed over its
    /// introspection descriptor).
    pub fn verifying(&self) -> bool {
        self.m.verifying()
    }
    /// Violations the host verifier reported so far.
    /// Drain the guest's ring and run every state check now (what every
    /// exit does).
    pub fn final_check(&mut self) {
        self.m.final_check();
    }
    pub fn violations(&self) -> Vec<crate::findings::Violation> {
        self.m.violations()
    }
    /// How many events the run has so far (a mark for [`Session::causes_since`]).
    pub fn event_mark(&self) -> usize {
        self.m.events().len()
    }
    /// Why `cma_alloc`s retried or failed since `mark` ([`Session::event_mark`]),
    /// as the host found it in guest memory (`crate::explain`): one per
    /// cause event, in order.
    pub fn causes_since(&self, mark: usize) -> Vec<AllocCause> {
        self.m.events().get(mark..).unwrap_or(&[]).iter().filter_map(AllocCause::of).collect()
    }
    /// Virtual time so far (ns).
    pub fn now_ns(&self) -> u64 {
        self.m.now()
    }
    /// Retired guest instructions so far.
    pub fn insns(&self) -> u64 {
        self.m.stats().insns
    }
    /// Everything the console printed so far (`\r\n` as `\n`).
    pub fn output(&self) -> String {
        self.m.output().replace("\r\n", "\n")
    }
    /// Bytes of console output so far (a mark for [`Session::output_since`]).
    pub fn mark(&self) -> usize {
        self.m.capture.0.lock().len()
    }
    /// Console output before a mark (`\r\n` as `\n`).
    pub fn output_until(&self, mark: usize) -> String {
        let b = self.m.capture.0.lock();
        String::from_utf8_lossy(&b[..mark.min(b.len())]).replace("\r\n", "\n")
    }
    /// Console output after a mark (`\r\n` as `\n`).
    pub fn output_since(&self, mark: usize) -> String {
        let b = self.m.capture.0.lock();
        String::from_utf8_lossy(&b[mark.min(b.len())..]).replace("\r\n", "\n")
    }
    /// The virtual-time limit of [`Session::command`] (default 20 s).
    pub fn set_command_timeout_ms(&mut self, ms: u64) {
        self.command_timeout_ms = ms;
    }

    /// Run `step` in budgeted chunks until it pauses, `done` says so, the
    /// guest exits, or `ns` of virtual time passed. `Ok(true)`: paused or
    /// done; `Ok(false)`: time is up without either (callers decide).
    ///
    /// Budgets count instructions, but an idle guest lets virtual time
    /// pass without retiring any: with `adaptive`, each chunk is sized from
    /// the virtual time per instruction the previous chunk saw, so that it
    /// ends near the deadline whether the guest is busy or idle.
    fn chunks(
        &mut self,
        what: &str,
        ns: u64,
        adaptive: bool,
        mut step: impl FnMut(&mut Machine) -> Step,
        mut done: impl FnMut(&Machine, usize) -> bool,
    ) -> Result<bool, Error> {
        let start = self.mark();
        let deadline = self.m.now().saturating_add(ns);
        let mut chunk = if adaptive { MIN_CHUNK } else { ns };
        loop {
            if done(&self.m, start) {
                return Ok(true);
            }
            let (now, insns) = (self.m.now(), self.m.stats().insns);
            if now >= deadline {
                return Ok(false);
            }
            let rem = deadline - now;
            self.m.budget(chunk.clamp(1, rem));
            match step(&mut self.m) {
                Step::Paused => return Ok(true),
                Step::Timeout => {}
                Step::Exited(exit) => return Err(Error::Exited { what: what.to_string(), exit }),
            }
            if adaptive {
                let dn = self.m.now().saturating_sub(now).max(1);
                let di = self.m.stats().insns.saturating_sub(insns).max(1);
                let rem = deadline.saturating_sub(self.m.now());
                let per_insn = (dn / di).max(1);
                chunk = (rem / per_insn / 2).max(MIN_CHUNK);
            } else {
                chunk = deadline.saturating_sub(self.m.now());
            }
        }
    }

    fn bounded(
        &mut self,
        what: &str,
        ns: u64,
        adaptive: bool,
        step: impl FnMut(&mut Machine) -> Step,
        done: impl FnMut(&Machine, usize) -> bool,
    ) -> Result<(), Error> {
        if self.chunks(what, ns, adaptive, step, done)? {
            Ok(())
        } else {
            Err(Error::Timeout { what: what.to_string(), ms: ns / NS_PER_MS })
        }
    }

    /// Send a shell command, wait for the next prompt, return what the
    /// command printed (without the echoed command line and the prompt).
    pub fn command(&mut self, cmd: &str) -> Result<String, Error> {
        let ms = self.command_timeout_ms;
        self.command_with_timeout(cmd, ms)
    }

    /// [`Session::command`] with its own virtual-time limit.
    pub fn command_with_timeout(&mut self, cmd: &str, timeout_ms: u64) -> Result<String, Error> {
        let mark = self.mark();
        self.m.send(&format!("{cmd}\n"));
        let what = format!("command '{cmd}'");
        self.bounded(&what, timeout_ms.saturating_mul(NS_PER_MS), false, |m| m.run_until_idle(), |_, _| false)?;
        Ok(strip_command_output(&self.output_since(mark)))
    }

    /// Wait until `text` appears in the output (from now on); returns the
    /// line it appeared in (as far as it was printed).
    pub fn wait_for_line(&mut self, text: &str, timeout_ms: u64) -> Result<String, Error> {
        let mark = self.mark();
        let needle = text.as_bytes().to_vec();
        let what = format!("wait for '{text}'");
        let found = |m: &Machine, start: usize| {
            let b = m.capture.0.lock();
            b.len() > start && b[start..].windows(needle.len().max(1)).any(|w| w == needle.as_slice())
        };
        self.bounded(&what, timeout_ms.saturating_mul(NS_PER_MS), true, |m| m.run_until(text), found)?;
        let out = self.output_since(mark);
        Ok(out.lines().find(|l| l.contains(text)).unwrap_or(text).to_string())
    }

    /// Let `ms` of virtual time pass (at least; the guest keeps running).
    pub fn run_for(&mut self, ms: u64) -> Result<(), Error> {
        const NEVER: &str = "\u{0}cmaemu-never-printed\u{0}";
        let what = format!("run for {ms} ms");
        self.chunks(&what, ms.saturating_mul(NS_PER_MS), true, |m| m.run_until(NEVER), |_, _| false)?;
        Ok(())
    }

    /// `cat /proc/meminfo`, parsed (values in kB).
    pub fn meminfo(&mut self) -> Result<Counters, Error> {
        Ok(parse_meminfo(&self.command("cat /proc/meminfo")?))
    }

    /// `cat /proc/vmstat`, parsed.
    pub fn vmstat(&mut self) -> Result<Counters, Error> {
        Ok(parse_vmstat(&self.command("cat /proc/vmstat")?))
    }

    /// `poweroff CODE`; returns how the run ended.
    pub fn poweroff(mut self, code: u8) -> Exit {
        self.m.send(&format!("poweroff {code}\n"));
        self.m.budget(self.command_timeout_ms * NS_PER_MS);
        match self.m.run_until_idle() {
            Step::Exited(e) => e,
            Step::Paused => Exit::Error("poweroff: the guest came back to the prompt".into()),
            Step::Timeout => Exit::Error("poweroff: the guest did not power off in time".into()),
        }
    }
}

/// Drop the echoed command line and the trailing prompt.
pub(crate) fn strip_command_output(seg: &str) -> String {
    let body = match seg.find('\n') {
        Some(i) => &seg[i + 1..],
        None => "",
    };
    let body = body.strip_suffix(crate::scenario::PROMPT).unwrap_or(body);
    body.to_string()
}

/// One cause the host found for a `cma_alloc` that retried or failed (a
/// `cma_cause` event).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllocCause {
    /// The CMA area.
    pub area: String,
    pub count: u64,
    /// `crate::explain::Cause::kind` (`pinned`, `out_of_targets`, ...).
    pub kind: String,
    /// The page (or pageblock) it names.
    pub pfn: Option<u32>,
    /// At the allocation's end (else at a busy retry).
    pub last: bool,
    pub errno: i32,
    /// The sentence the console prints.
    pub text: String,
}

impl AllocCause {
    fn of(e: &crate::trace::Event) -> Option<AllocCause> {
        match &e.kind {
            crate::trace::EventKind::CmaCause(c) => {
                let crate::trace::CmaCause { name, count, last, errorno, cause, pfn, text, .. } = &**c;
                Some(AllocCause { area: name.clone(), count: *count, kind: cause.clone(), pfn: *pfn, last: *last, errno: *errorno, text: text.clone() })
            }
            _ => None,
        }
    }
    /// Whether `want` (`KIND` or `KIND 0xPFN`) names this cause.
    pub fn matches(&self, want: &str) -> bool {
        let mut w = want.split_whitespace();
        w.next() == Some(self.kind.as_str()) && w.next().is_none_or(|p| self.pfn.is_some_and(|n| p.eq_ignore_ascii_case(&format!("{n:#x}"))))
    }
}
