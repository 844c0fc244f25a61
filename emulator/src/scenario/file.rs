//! The scenario file format (TOML) and its parser.
//!
//! Parsing never panics: every problem becomes a [`ScenarioError`] that
//! names the file, the line and the step or expectation it belongs to, e.g.
//! `fill.toml:12: step 3: unknown field `sned`, expected one of ...`.
use serde::Deserialize;
use std::fmt;
use toml::Spanned;

/// A parsed scenario (see the module documentation for the format).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scenario {
    /// `name`, or the file stem.
    pub name: String,
    pub description: Option<String>,
    /// `pending = true` / `pending = "reason"`: not run, reported as skipped.
    pub pending: Option<String>,
    /// The default `{seed}` (`cmaemu test` runs with it; `sweep` replaces it).
    pub seed: u64,
    pub board: BoardSpec,
    pub steps: Vec<Step>,
    pub expects: Vec<Expect>,
    /// Where the file was read from (for relative `dtb` paths), if anywhere.
    pub dir: Option<std::path::PathBuf>,
    /// `[sweep]`: what `cmaemu sweep` varies (the command line adds to it).
    pub sweep: SweepSpec,
}

/// `[sweep]`: seeds and parameter axes for `cmaemu sweep`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SweepSpec {
    /// `seeds = "0..20"`.
    pub seeds: Option<std::ops::Range<u64>>,
    /// `size_axis = "cma"`: the axis whose smallest passing value the
    /// verdict names (default: the first numeric axis).
    pub size_axis: Option<String>,
    /// `[sweep.axes]`, in file order.
    pub axes: Vec<super::axes::Axis>,
}

/// `[board]`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct BoardSpec {
    /// A `.dtb` or `.dts` file (relative to the scenario file); without it
    /// the default board is generated.
    pub dtb: Option<String>,
    /// RAM size in bytes (default: 1 GiB, or what the DTB says).
    pub ram: Option<u64>,
    /// Kernel command line (default: the DTB's, or `console=ttyAMA0`).
    pub bootargs: Option<String>,
    /// Size of the generated board's default CMA pool.
    pub cma: Option<u64>,
    /// Size of the generated board's camera CMA pool.
    pub camera_cma: Option<u64>,
    /// Fault injections, appended as `cmaemu.inject=a,b`.
    pub inject: Vec<String>,
    /// Overall instruction limit.
    pub max_insns: Option<u64>,
    /// How long (virtual ms) the boot may take to reach the shell prompt.
    pub boot_timeout_ms: Option<u64>,
    /// Command-line parameters appended after the bootargs and the
    /// injections (`cma=16M`, `cmaemu.max_order=11`: a sweep's axes).
    pub args: Vec<String>,
    /// New sizes of `/reserved-memory` nodes (node name, bytes): a sweep's
    /// `dt.NODE` axes.
    pub reserved_sizes: Vec<(String, u64)>,
}

/// One `[[step]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// 1-based index in the file.
    pub index: usize,
    /// Line of the step in the file.
    pub line: usize,
    pub action: Action,
    /// Virtual-time limit (ms) of the step (each repetition for `send`).
    pub timeout_ms: Option<u64>,
    /// Lines that must / must not occur in this step's output.
    pub expect_line: Vec<String>,
    pub expect_no_line: Vec<String>,
    /// Causes the host found for this step's allocations
    /// (`crate::explain`): a kind (`pinned`), optionally with the pfn it
    /// names (`pinned 0x6d040`).
    pub expect_cause: Vec<String>,
}

/// What a step does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send a console command and wait for the next prompt, `repeat` times.
    Send { cmd: String, repeat: u32 },
    /// Wait until this text appears in the console output.
    Wait(String),
    /// Let this much virtual time pass.
    RunMs(u64),
}

/// One `[[expect]]`, checked after the last step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Some output line contains this text.
    Line(String),
    /// No output line contains this text.
    NoLine(String),
    /// A `/proc/meminfo` or `/proc/vmstat` counter compared with a value.
    Counter(Counter),
    /// The host verifier saw no violation.
    NoViolations,
}

/// `meminfo.CmaFree >= 4096`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counter {
    pub source: Source,
    pub field: String,
    pub op: Cmp,
    pub value: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Meminfo,
    Vmstat,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::Meminfo => "meminfo",
            Source::Vmstat => "vmstat",
        }
    }
    pub fn path(self) -> &'static str {
        match self {
            Source::Meminfo => "/proc/meminfo",
            Source::Vmstat => "/proc/vmstat",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    Ge,
    Gt,
    Le,
    Lt,
    Eq,
    Ne,
}

impl Cmp {
    pub fn symbol(self) -> &'static str {
        match self {
            Cmp::Ge => ">=",
            Cmp::Gt => ">",
            Cmp::Le => "<=",
            Cmp::Lt => "<",
            Cmp::Eq => "==",
            Cmp::Ne => "!=",
        }
    }
    pub fn holds(self, a: u64, b: u64) -> bool {
        match self {
            Cmp::Ge => a >= b,
            Cmp::Gt => a > b,
            Cmp::Le => a <= b,
            Cmp::Lt => a < b,
            Cmp::Eq => a == b,
            Cmp::Ne => a != b,
        }
    }
}

impl fmt::Display for Counter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{} {} {}", self.source.name(), self.field, self.op.symbol(), self.value)
    }
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expect::Line(t) => write!(f, "line {t:?}"),
            Expect::NoLine(t) => write!(f, "no_line {t:?}"),
            Expect::Counter(c) => write!(f, "{c}"),
            Expect::NoViolations => write!(f, "no_violations"),
        }
    }
}

impl Counter {
    /// Parse `meminfo.CmaFree >= 4096` (sizes in the units the file
    /// prints: kB for meminfo, pages or events for vmstat).
    pub fn parse(s: &str) -> Result<Counter, ValueError> {
        let t = s.trim();
        let ops = [(">=", Cmp::Ge), ("<=", Cmp::Le), ("==", Cmp::Eq), ("!=", Cmp::Ne), (">", Cmp::Gt), ("<", Cmp::Lt), ("=", Cmp::Eq)];
        let (at, sym, op) = ops
            .iter()
            .filter_map(|(sym, op)| t.find(sym).map(|i| (i, *sym, *op)))
            .min_by_key(|(i, sym, _)| (*i, usize::MAX - sym.len()))
            .ok_or_else(|| ValueError::CounterSyntax(s.to_string()))?;
        let lhs = t[..at].trim();
        let rhs = t[at + sym.len()..].trim();
        let (src, field) = lhs
            .split_once('.')
            .ok_or_else(|| ValueError::CounterLhs(s.to_string(), lhs.to_string()))?;
        let source = match src.trim() {
            "meminfo" => Source::Meminfo,
            "vmstat" => Source::Vmstat,
            other => return Err(ValueError::CounterSource(s.to_string(), other.to_string())),
        };
        let field = field.trim();
        if field.is_empty() || !field.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '(' || c == ')') {
            return Err(ValueError::CounterField(s.to_string(), field.to_string()));
        }
        let value = parse_u64(rhs).ok_or_else(|| ValueError::CounterValue(s.to_string(), rhs.to_string()))?;
        Ok(Counter { source, field: field.to_string(), op, value })
    }
}

fn parse_u64(s: &str) -> Option<u64> {
    let s = s.trim().replace('_', "");
    if let Some(h) = s.strip_prefix("0x") {
        u64::from_str_radix(h, 16).ok()
    } else {
        s.parse().ok()
    }
}

/// A size or counter expression that does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("'{0}' is not a size (examples: 256M, 1G)")]
    NotASize(String),
    #[error("'{0}' is too large")]
    SizeTooLarge(String),
    #[error("expected a size: an integer (bytes) or a string like \"256M\"")]
    SizeType,
    #[error("counter {0:?}: expected `meminfo.FIELD OP N` or `vmstat.FIELD OP N` with OP one of >= > <= < == !=")]
    CounterSyntax(String),
    #[error("counter {0:?}: `{1}` should be meminfo.FIELD or vmstat.FIELD")]
    CounterLhs(String, String),
    #[error("counter {0:?}: unknown source `{1}` (meminfo or vmstat)")]
    CounterSource(String, String),
    #[error("counter {0:?}: bad field name `{1}`")]
    CounterField(String, String),
    #[error("counter {0:?}: `{1}` is not a non-negative integer")]
    CounterValue(String, String),
}

/// `memparse`-style sizes: 256M, 1G, 65536K, 0x10000000.
pub fn parse_size(s: &str) -> Result<u64, ValueError> {
    let t = s.trim();
    let (num, mul) = match t.chars().last() {
        Some('K' | 'k') => (&t[..t.len() - 1], 1u64 << 10),
        Some('M' | 'm') => (&t[..t.len() - 1], 1 << 20),
        Some('G' | 'g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    let n = parse_u64(num).ok_or_else(|| ValueError::NotASize(s.to_string()))?;
    n.checked_mul(mul).ok_or_else(|| ValueError::SizeTooLarge(s.to_string()))
}

/// A problem with a scenario file: where, and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError {
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// `step 3`, `expect 2`, `board`, when known.
    pub context: Option<String>,
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        write!(f, ": ")?;
        if let Some(c) = &self.context {
            write!(f, "{c}: ")?;
        }
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for ScenarioError {}

// ---- raw serde layer -------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: Option<String>,
    description: Option<String>,
    pending: Option<Spanned<toml::Value>>,
    seed: Option<u64>,
    board: Option<RawBoard>,
    step: Option<Vec<Spanned<RawStep>>>,
    expect: Option<Vec<Spanned<RawExpect>>>,
    sweep: Option<RawSweep>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSweep {
    seeds: Option<Spanned<String>>,
    size_axis: Option<Spanned<String>>,
    axes: Option<std::collections::BTreeMap<String, Spanned<toml::Value>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBoard {
    dtb: Option<String>,
    ram: Option<Spanned<toml::Value>>,
    bootargs: Option<String>,
    cma: Option<Spanned<toml::Value>>,
    camera_cma: Option<Spanned<toml::Value>>,
    inject: Option<Vec<Spanned<String>>>,
    max_insns: Option<u64>,
    boot_timeout_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    send: Option<String>,
    wait: Option<String>,
    run_ms: Option<u64>,
    repeat: Option<u32>,
    timeout_ms: Option<u64>,
    expect_line: Option<Spanned<toml::Value>>,
    expect_no_line: Option<Spanned<toml::Value>>,
    expect_cause: Option<Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    line: Option<String>,
    no_line: Option<String>,
    counter: Option<Spanned<String>>,
    no_violations: Option<bool>,
}

/// 1-based line of a byte offset.
fn line_of(src: &str, offset: usize) -> usize {
    let end = offset.min(src.len());
    src.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
}

/// The table a byte offset belongs to, from the headers before it:
/// `step N`, `expect N`, `board`.
fn context_at(src: &str, offset: usize) -> Option<String> {
    let mut ctx = None;
    let (mut steps, mut expects) = (0, 0);
    let mut pos = 0;
    for line in src.split_inclusive('\n') {
        if pos > offset {
            break;
        }
        let t = line.trim();
        let compact: String = t.split('#').next().unwrap_or("").chars().filter(|c| !c.is_whitespace()).collect();
        if compact == "[[step]]" {
            steps += 1;
            ctx = Some(format!("step {steps}"));
        } else if compact == "[[expect]]" {
            expects += 1;
            ctx = Some(format!("expect {expects}"));
        } else if compact == "[board]" {
            ctx = Some("board".to_string());
        } else if compact.starts_with("[sweep") {
            ctx = Some("sweep".to_string());
        } else if compact.starts_with('[') {
            ctx = None;
        }
        pos += line.len();
    }
    ctx
}

fn strings(v: &toml::Value) -> Option<Vec<String>> {
    match v {
        toml::Value::String(s) => Some(vec![s.clone()]),
        toml::Value::Array(a) => a.iter().map(|x| x.as_str().map(str::to_string)).collect(),
        _ => None,
    }
}

fn size_value(v: &toml::Value) -> Result<u64, ValueError> {
    match v {
        toml::Value::Integer(i) if *i >= 0 => Ok(*i as u64),
        toml::Value::String(s) => parse_size(s),
        _ => Err(ValueError::SizeType),
    }
}

impl Scenario {
    /// Read and parse a file.
    pub fn load(path: &std::path::Path) -> Result<Scenario, ScenarioError> {
        let file = path.display().to_string();
        let src = std::fs::read(path).map_err(|e| ScenarioError { file: file.clone(), line: None, context: None, message: e.to_string() })?;
        let src = String::from_utf8(src).map_err(|e| ScenarioError {
            file: file.clone(),
            line: None,
            context: None,
            message: format!("not UTF-8: {e}"),
        })?;
        let mut s = Scenario::parse(&file, &src)?;
        if s.name == "scenario" || s.name.is_empty() {
            if let Some(stem) = path.file_stem() {
                s.name = stem.to_string_lossy().into_owned();
            }
        }
        s.dir = path.parent().map(|p| p.to_path_buf());
        Ok(s)
    }

    /// Parse `src`; `file` names it in errors. Never panics.
    pub fn parse(file: &str, src: &str) -> Result<Scenario, ScenarioError> {
        let err_at = |offset: Option<usize>, message: String| ScenarioError {
            file: file.to_string(),
            line: offset.map(|o| line_of(src, o)),
            context: offset.and_then(|o| context_at(src, o)),
            message,
        };
        let raw: RawScenario = toml::from_str(src).map_err(|e| {
            let msg = e.message().trim().replace('`', "'");
            err_at(e.span().map(|s| s.start), msg)
        })?;
        let pending = match &raw.pending {
            None => None,
            Some(p) => match p.get_ref() {
                toml::Value::Boolean(false) => None,
                toml::Value::Boolean(true) => Some("pending".to_string()),
                toml::Value::String(s) => Some(s.clone()),
                _ => return Err(err_at(Some(p.span().start), "pending: expected true/false or a reason string".into())),
            },
        };
        let mut board = BoardSpec::default();
        if let Some(b) = raw.board {
            let size = |v: &Option<Spanned<toml::Value>>, what: &str| -> Result<Option<u64>, ScenarioError> {
                match v {
                    None => Ok(None),
                    Some(v) => size_value(v.get_ref()).map(Some).map_err(|m| err_at(Some(v.span().start), format!("{what}: {m}"))),
                }
            };
            board.ram = size(&b.ram, "ram")?;
            board.cma = size(&b.cma, "cma")?;
            board.camera_cma = size(&b.camera_cma, "camera_cma")?;
            if b.dtb.is_some() && (board.cma.is_some() || board.camera_cma.is_some()) {
                let at = b.cma.as_ref().or(b.camera_cma.as_ref()).map(|v| v.span().start);
                return Err(err_at(at, "cma/camera_cma size the generated board; with dtb = ... edit the DTB instead".into()));
            }
            if let Some(r) = board.ram {
                if !crate::memory::map::valid_ram_size(r) {
                    let at = b.ram.as_ref().map(|v| v.span().start);
                    return Err(err_at(at, format!("ram: {r:#x} must be a multiple of 1 MiB from 16M to 1G")));
                }
            }
            for i in b.inject.unwrap_or_default() {
                let name = i.get_ref();
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                    return Err(err_at(Some(i.span().start), format!("inject: {name:?} is not a fault-injection switch name")));
                }
                board.inject.push(name.clone());
            }
            board.dtb = b.dtb;
            board.bootargs = b.bootargs;
            board.max_insns = b.max_insns;
            board.boot_timeout_ms = b.boot_timeout_ms;
        }
        let mut steps = Vec::new();
        for (i, st) in raw.step.unwrap_or_default().into_iter().enumerate() {
            let at = st.span().start;
            let ctx_err = |m: String| ScenarioError {
                file: file.to_string(),
                line: Some(line_of(src, at)),
                context: Some(format!("step {}", i + 1)),
                message: m,
            };
            let r = st.into_inner();
            let n = r.send.is_some() as u8 + r.wait.is_some() as u8 + r.run_ms.is_some() as u8;
            if n != 1 {
                return Err(ctx_err(if n == 0 {
                    "needs one of send = \"cmd\", wait = \"text\", run_ms = N".into()
                } else {
                    "has more than one of send / wait / run_ms (use one step each)".into()
                }));
            }
            if r.repeat.is_some() && r.send.is_none() {
                return Err(ctx_err("repeat only applies to send".into()));
            }
            if r.repeat == Some(0) {
                return Err(ctx_err("repeat must be at least 1".into()));
            }
            let action = if let Some(cmd) = r.send {
                if cmd.contains('\n') || cmd.contains('\r') {
                    return Err(ctx_err("send: one command per step (no newlines)".into()));
                }
                Action::Send { cmd, repeat: r.repeat.unwrap_or(1) }
            } else if let Some(w) = r.wait {
                if w.is_empty() {
                    return Err(ctx_err("wait: empty text".into()));
                }
                Action::Wait(w)
            } else {
                Action::RunMs(r.run_ms.unwrap_or(0))
            };
            let list = |v: Option<Spanned<toml::Value>>, what: &str| -> Result<Vec<String>, ScenarioError> {
                match v {
                    None => Ok(Vec::new()),
                    Some(v) => strings(v.get_ref()).ok_or_else(|| ScenarioError {
                        file: file.to_string(),
                        line: Some(line_of(src, v.span().start)),
                        context: Some(format!("step {}", i + 1)),
                        message: format!("{what}: expected a string or a list of strings"),
                    }),
                }
            };
            let cause_at = r.expect_cause.as_ref().map(|v| v.span().start);
            let expect_cause = list(r.expect_cause, "expect_cause")?;
            for c in &expect_cause {
                let mut w = c.split_whitespace();
                let kind = w.next().unwrap_or("");
                let pfn_ok = w.next().is_none_or(|p| p.strip_prefix("0x").is_some_and(|h| u32::from_str_radix(h, 16).is_ok()));
                if !crate::explain::CAUSE_KINDS.contains(&kind) || !pfn_ok || w.next().is_some() {
                    return Err(ScenarioError {
                        file: file.to_string(),
                        line: cause_at.map(|o| line_of(src, o)),
                        context: Some(format!("step {}", i + 1)),
                        message: format!("expect_cause: {c:?} is not KIND or KIND 0xPFN (KIND: {})", crate::explain::CAUSE_KINDS.join(", ")),
                    });
                }
            }
            steps.push(Step {
                index: i + 1,
                line: line_of(src, at),
                action,
                timeout_ms: r.timeout_ms,
                expect_line: list(r.expect_line, "expect_line")?,
                expect_no_line: list(r.expect_no_line, "expect_no_line")?,
                expect_cause,
            });
        }
        let mut expects = Vec::new();
        for (i, ex) in raw.expect.unwrap_or_default().into_iter().enumerate() {
            let at = ex.span().start;
            let ctx_err = |m: String, off: usize| ScenarioError {
                file: file.to_string(),
                line: Some(line_of(src, off)),
                context: Some(format!("expect {}", i + 1)),
                message: m,
            };
            let r = ex.into_inner();
            let n = r.line.is_some() as u8 + r.no_line.is_some() as u8 + r.counter.is_some() as u8 + r.no_violations.is_some() as u8;
            if n != 1 {
                return Err(ctx_err("needs exactly one of line, no_line, counter, no_violations".into(), at));
            }
            expects.push(if let Some(l) = r.line {
                Expect::Line(l)
            } else if let Some(l) = r.no_line {
                Expect::NoLine(l)
            } else if let Some(c) = r.counter {
                let off = c.span().start;
                Expect::Counter(Counter::parse(c.get_ref()).map_err(|m| ctx_err(m.to_string(), off))?)
            } else if r.no_violations == Some(true) {
                Expect::NoViolations
            } else {
                return Err(ctx_err("no_violations = false checks nothing: remove it".into(), at));
            });
        }
        let mut sweep = SweepSpec::default();
        if let Some(sw) = raw.sweep {
            let at = |sp: std::ops::Range<usize>, m: String| ScenarioError {
                file: file.to_string(),
                line: Some(line_of(src, sp.start)),
                context: Some("sweep".into()),
                message: m,
            };
            if let Some(s) = sw.seeds {
                sweep.seeds = Some(super::sweep::parse_seed_range(s.get_ref()).map_err(|m| at(s.span(), m.to_string().replace("--seeds", "seeds")))?);
            }
            let mut axes: Vec<(usize, super::axes::Axis)> = Vec::new();
            for (name, v) in sw.axes.unwrap_or_default() {
                let items: Vec<String> = match v.get_ref() {
                    toml::Value::String(s) => s.split(',').map(str::to_string).collect(),
                    toml::Value::Integer(i) => vec![i.to_string()],
                    toml::Value::Array(a) => a
                        .iter()
                        .map(|x| match x {
                            toml::Value::String(s) => Ok(s.clone()),
                            toml::Value::Integer(i) => Ok(i.to_string()),
                            _ => Err(()),
                        })
                        .collect::<Result<_, _>>()
                        .map_err(|_| at(v.span(), format!("axis {name}: values are strings or integers")))?,
                    _ => return Err(at(v.span(), format!("axis {name}: expected a list of values or a string like \"4M..=64M*2\""))),
                };
                let refs: Vec<&str> = items.iter().map(String::as_str).collect();
                let axis = super::axes::Axis::new(&name, &refs).map_err(|e| at(v.span(), e.to_string()))?;
                axes.push((v.span().start, axis));
            }
            axes.sort_by_key(|(at, _)| *at);
            sweep.axes = axes.into_iter().map(|(_, a)| a).collect();
            if let Some(sa) = sw.size_axis {
                if !sweep.axes.iter().any(|a| &a.name == sa.get_ref()) {
                    return Err(at(sa.span(), format!("size_axis {:?} is not one of the axes", sa.get_ref())));
                }
                sweep.size_axis = Some(sa.into_inner());
            }
        }
        Ok(Scenario {
            sweep,
            name: raw.name.unwrap_or_else(|| "scenario".into()),
            description: raw.description,
            pending,
            seed: raw.seed.unwrap_or(0),
            board,
            steps,
            expects,
            dir: None,
        })
    }

    /// The scenario with `{seed}` replaced in every command, text and the
    /// bootargs.
    pub fn with_seed(&self, seed: u64) -> Scenario {
        let s = seed.to_string();
        let r = |t: &str| t.replace("{seed}", &s);
        let mut out = self.clone();
        out.seed = seed;
        out.board.bootargs = self.board.bootargs.as_deref().map(r);
        for st in &mut out.steps {
            st.action = match &st.action {
                Action::Send { cmd, repeat } => Action::Send { cmd: r(cmd), repeat: *repeat },
                Action::Wait(w) => Action::Wait(r(w)),
                a => a.clone(),
            };
            st.expect_line = st.expect_line.iter().map(|t| r(t)).collect();
            st.expect_no_line = st.expect_no_line.iter().map(|t| r(t)).collect();
        }
        for e in &mut out.expects {
            match e {
                Expect::Line(t) | Expect::NoLine(t) => *t = r(t),
                _ => {}
            }
        }
        out
    }
}
