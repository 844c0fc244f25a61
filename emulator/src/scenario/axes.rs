//! Parameter axes of a sweep: boot parameters given as lists or ranges
//! (`cma=4M..=64M*2`, `ram=128M,256M`, `dt.camera-cma=8M..=32M:8M`),
//! crossed with each other and with the seeds.
//!
//! | axis | what it sets |
//! | --- | --- |
//! | `cma` | `cma=size[@base[-limit]]` on the command line |
//! | `ram` | RAM size (`-m`), 16M to 1G in whole MiB |
//! | `profile` | `cmaemu.profile=` |
//! | `cmaemu.KNOB` | `cmaemu.KNOB=` (max_order, pageblock_order, vmsplit, cma_size_mbytes, cma_size_sel, cma_size_percentage, inject) |
//! | `dt.NODE` | the size of `/reserved-memory/NODE` in the DTB |
//! | `arg.NAME` | `NAME=` on the command line (any other parameter) |
//!
//! Values are checked when the axis is read, with the guest's own parsers
//! for `cma=` and the knobs, so a bad value is an error naming it before
//! any boot.
use super::file::{parse_size, BoardSpec};
use cmaemu_mm::cmdline::early_cma;
use cmaemu_mm::config::parse_bootargs;

/// The most values one axis may expand to.
pub const MAX_AXIS_VALUES: usize = 10_000;

/// A bad axis: which one, which value, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AxisError {
    #[error("axis {0:?}: unknown parameter (expected cma, ram, profile, cmaemu.KNOB, dt.NODE or arg.NAME)")]
    UnknownName(String),
    #[error("axis {axis}: unknown knob (known: {})", KNOBS.join(", "))]
    UnknownKnob { axis: String },
    #[error("--axis {0:?}: expected NAME=VALUES, e.g. cma=4M,8M or cma=4M..=64M*2")]
    Syntax(String),
    #[error("axis {0}: no values")]
    Empty(String),
    #[error("axis {axis}: value {value:?}: {why}")]
    BadValue { axis: String, value: String, why: String },
    #[error("axis {axis}: range {range:?}: {why}")]
    BadRange { axis: String, range: String, why: String },
    #[error("axis {axis}: value {value:?} appears twice")]
    Duplicate { axis: String, value: String },
    #[error("axis {0} is given twice")]
    Repeated(String),
}

/// Why one value of an axis is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValueWhy {
    #[error("a value is one word (no spaces or quotes)")]
    NotOneWord,
    #[error("a CMA area must fit the 32-bit physical address space (below 4G)")]
    CmaAbove4G,
    /// The guest's `cma=` parser refused it (its error, debug-printed).
    #[error("not size[@base[-limit]] ({0})")]
    NotCma(String),
    #[error("RAM must be a multiple of 1 MiB from 16M to 1G (a size needs its suffix: 256M)")]
    Ram,
    #[error("a reserved-memory size is a non-zero multiple of 4K")]
    ReservedSize,
    /// The guest's knob parser refused it.
    #[error("{0}")]
    Knob(String),
    #[error(transparent)]
    Size(#[from] super::file::ValueError),
    #[error("{0:?} is not a whole number")]
    NotWhole(String),
}

/// The `cmaemu.*` knobs the guest reads (guest/mm/src/config.rs).
pub const KNOBS: [&str; 8] = ["profile", "max_order", "pageblock_order", "vmsplit", "cma_size_mbytes", "cma_size_sel", "cma_size_percentage", "inject"];

/// What an axis sets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Param {
    /// `cma=` on the command line.
    Cma,
    /// RAM size.
    Ram,
    /// `cmaemu.KNOB=` (the full parameter name).
    Knob(String),
    /// Size of `/reserved-memory/NODE`.
    Dt(String),
    /// `NAME=` on the command line.
    Arg(String),
}

/// One axis: a parameter and its values, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Axis {
    /// As written (`cma`, `profile`, `dt.camera-cma`).
    pub name: String,
    pub param: Param,
    /// Canonical values (sizes as `16M`), in the order given.
    pub values: Vec<String>,
}

/// How values of a parameter are read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Size,
    Uint,
    Text,
}

fn knob_kind(knob: &str) -> Kind {
    match knob {
        "max_order" | "pageblock_order" | "cma_size_mbytes" | "cma_size_percentage" => Kind::Uint,
        _ => Kind::Text,
    }
}

/// `16M`, `1536K`, `1G`, `4097`: the largest unit that divides.
pub fn fmt_size(b: u64) -> String {
    match b {
        0 => "0".into(),
        b if b % (1 << 30) == 0 => format!("{}G", b >> 30),
        b if b % (1 << 20) == 0 => format!("{}M", b >> 20),
        b if b % (1 << 10) == 0 => format!("{}K", b >> 10),
        b => b.to_string(),
    }
}

impl Param {
    fn parse(name: &str) -> Result<Param, AxisError> {
        let bad = || AxisError::UnknownName(name.to_string());
        let word = |s: &str| !s.is_empty() && !s.contains(|c: char| c.is_whitespace() || c == '=' || c == '"');
        Ok(match name {
            "cma" => Param::Cma,
            "ram" => Param::Ram,
            "profile" => Param::Knob("cmaemu.profile".into()),
            _ => {
                if let Some(k) = name.strip_prefix("cmaemu.") {
                    if !KNOBS.contains(&k) {
                        return Err(AxisError::UnknownKnob { axis: name.to_string() });
                    }
                    Param::Knob(name.to_string())
                } else if let Some(n) = name.strip_prefix("dt.") {
                    if !word(n) || n.contains('/') {
                        return Err(bad());
                    }
                    Param::Dt(n.to_string())
                } else if let Some(n) = name.strip_prefix("arg.") {
                    if !word(n) {
                        return Err(bad());
                    }
                    Param::Arg(n.to_string())
                } else {
                    return Err(bad());
                }
            }
        })
    }

    fn kind(&self) -> Kind {
        match self {
            Param::Cma | Param::Ram | Param::Dt(_) => Kind::Size,
            Param::Knob(k) => knob_kind(k.trim_start_matches("cmaemu.")),
            Param::Arg(_) => Kind::Text,
        }
    }

    /// Check one value; returns its canonical spelling.
    fn check(&self, v: &str) -> Result<String, ValueWhy> {
        let v = v.trim();
        if v.is_empty() || v.contains(char::is_whitespace) || v.contains('"') {
            return Err(ValueWhy::NotOneWord);
        }
        match self {
            Param::Cma if parse_size(v.split('@').next().unwrap_or(v)).is_ok_and(|b| b > u64::from(u32::MAX)) => Err(ValueWhy::CmaAbove4G),
            Param::Cma => match early_cma(Some(v)) {
                Ok((_, None)) if v.contains('@') => Ok(v.to_string()),
                Ok((c, None)) => Ok(fmt_size(c.size)),
                Ok((_, Some(e))) | Err(e) => Err(ValueWhy::NotCma(format!("{e:?}"))),
            },
            Param::Ram => {
                let b = parse_size(v)?;
                if !crate::memory::map::valid_ram_size(b) {
                    return Err(ValueWhy::Ram);
                }
                Ok(fmt_size(b))
            }
            Param::Dt(_) => {
                let b = parse_size(v)?;
                if b == 0 || b % 4096 != 0 {
                    return Err(ValueWhy::ReservedSize);
                }
                Ok(fmt_size(b))
            }
            Param::Knob(k) => {
                let line = format!("{k}={v}");
                let mut err = None;
                parse_bootargs(&line, &mut |e| {
                    err.get_or_insert_with(|| e.to_string());
                });
                match err {
                    Some(e) => Err(ValueWhy::Knob(e)),
                    None => Ok(v.to_string()),
                }
            }
            Param::Arg(_) => Ok(v.to_string()),
        }
    }

    /// A value as a number, for ranking (`cma` by its size).
    fn number(&self, v: &str) -> Option<u64> {
        match self.kind() {
            Kind::Size => parse_size(v.split('@').next()?).ok(),
            Kind::Uint => v.parse().ok(),
            Kind::Text => None,
        }
    }
}

impl Axis {
    /// `NAME=ITEM,ITEM,...` (the command line's `--axis`).
    pub fn parse_cli(s: &str) -> Result<Axis, AxisError> {
        let (name, list) = s.split_once('=').ok_or_else(|| AxisError::Syntax(s.to_string()))?;
        let items: Vec<&str> = list.split(',').collect();
        Axis::new(name.trim(), &items)
    }

    /// An axis from its name and items; an item is a value or a range of
    /// numbers: `A..B` (B excluded) or `A..=B`, stepping by `:STEP`
    /// (added) or `*F` (multiplied); sizes step by 1 only if said.
    pub fn new(name: &str, items: &[&str]) -> Result<Axis, AxisError> {
        let param = Param::parse(name)?;
        let mut values: Vec<String> = Vec::new();
        for item in items {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            let expanded = if item.contains("..") { expand_range(name, &param, item)? } else { vec![item.to_string()] };
            for v in expanded {
                let c = param.check(&v).map_err(|why| AxisError::BadValue { axis: name.to_string(), value: v.clone(), why: why.to_string() })?;
                if values.contains(&c) {
                    return Err(AxisError::Duplicate { axis: name.to_string(), value: c });
                }
                values.push(c);
                if values.len() > MAX_AXIS_VALUES {
                    return Err(AxisError::BadRange { axis: name.into(), range: item.into(), why: format!("more than {MAX_AXIS_VALUES} values") });
                }
            }
        }
        if values.is_empty() {
            return Err(AxisError::Empty(name.to_string()));
        }
        Ok(Axis { name: name.to_string(), param, values })
    }

    /// Whether values are numbers (sizes, orders): the axis can be sized.
    pub fn numeric(&self) -> bool {
        self.values.iter().all(|v| self.param.number(v).is_some())
    }

    /// A value as a number (for "the smallest value that passes").
    pub fn number(&self, v: &str) -> Option<u64> {
        self.param.number(v)
    }

    /// Set `value` of this axis on a board.
    pub fn apply(&self, value: &str, spec: &mut BoardSpec) {
        match &self.param {
            Param::Cma => spec.args.push(format!("cma={value}")),
            Param::Ram => spec.ram = parse_size(value).ok(),
            Param::Knob(k) => spec.args.push(format!("{k}={value}")),
            Param::Arg(n) => spec.args.push(format!("{n}={value}")),
            Param::Dt(node) => {
                if let Ok(b) = parse_size(value) {
                    spec.reserved_sizes.push((node.clone(), b));
                }
            }
        }
    }
}

fn expand_range(axis: &str, param: &Param, item: &str) -> Result<Vec<String>, AxisError> {
    let bad = |why: &str| AxisError::BadRange { axis: axis.to_string(), range: item.to_string(), why: why.to_string() };
    let kind = param.kind();
    if kind == Kind::Text || item.contains('@') {
        return Err(bad("only sizes and numbers make ranges"));
    }
    let (a, rest, incl) = match item.split_once("..=") {
        Some((a, r)) => (a, r, true),
        None => {
            let (a, r) = item.split_once("..").ok_or_else(|| bad("expected A..B or A..=B"))?;
            (a, r, false)
        }
    };
    enum Step {
        Add(u64),
        Mul(u64),
    }
    let (b, step) = if let Some((b, s)) = rest.split_once(':') {
        (b, Some(Step::Add(num(kind, s).map_err(|e| bad(&format!("step: {e}")))?)))
    } else if let Some((b, f)) = rest.split_once('*') {
        (b, Some(Step::Mul(f.trim().parse().map_err(|_| bad("the factor after * is a whole number"))?)))
    } else {
        (rest, None)
    };
    let a = num(kind, a).map_err(|e| bad(&e.to_string()))?;
    let b = num(kind, b).map_err(|e| bad(&e.to_string()))?;
    let step = match step {
        Some(s) => s,
        None if kind == Kind::Uint => Step::Add(1),
        None => return Err(bad("a size range needs a step: A..=B:STEP (added) or A..=B*F (multiplied)")),
    };
    match step {
        Step::Add(0) | Step::Mul(0 | 1) => return Err(bad("the step must make progress")),
        Step::Mul(_) if a == 0 => return Err(bad("a multiplied range cannot start at 0")),
        _ => {}
    }
    if b < a || (b == a && !incl) {
        return Err(bad("the range is empty or reversed"));
    }
    let mut out = Vec::new();
    let mut v = a;
    while v < b || (incl && v == b) {
        out.push(if kind == Kind::Size { fmt_size(v) } else { v.to_string() });
        if out.len() > MAX_AXIS_VALUES {
            return Err(bad(&format!("more than {MAX_AXIS_VALUES} values")));
        }
        let next = match step {
            Step::Add(s) => v.checked_add(s),
            Step::Mul(f) => v.checked_mul(f),
        };
        match next {
            Some(n) => v = n,
            None => break,
        }
    }
    Ok(out)
}

fn num(kind: Kind, s: &str) -> Result<u64, ValueWhy> {
    match kind {
        Kind::Size => Ok(parse_size(s)?),
        _ => s.trim().parse().map_err(|_| ValueWhy::NotWhole(s.trim().to_string())),
    }
}

/// How many combinations `axes` make (1 with no axes); `None` on overflow.
pub fn combination_count(axes: &[Axis]) -> Option<u64> {
    axes.iter().try_fold(1u64, |n, a| n.checked_mul(a.values.len() as u64))
}

/// The value index of every axis in combination `i` (the first axis
/// varies slowest).
pub fn combination(axes: &[Axis], mut i: u64) -> Vec<usize> {
    let mut idx = vec![0; axes.len()];
    for (k, a) in axes.iter().enumerate().rev() {
        let n = a.values.len() as u64;
        idx[k] = (i % n) as usize;
        i /= n;
    }
    idx
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vals(s: &str) -> Vec<String> {
        Axis::parse_cli(s).unwrap().values
    }

    #[test]
    fn lists_and_ranges() {
        assert_eq!(vals("cma=4M..=64M*2"), ["4M", "8M", "16M", "32M", "64M"]);
        assert_eq!(vals("ram=128M..=512M:128M"), ["128M", "256M", "384M", "512M"]);
        assert_eq!(vals("ram=128M..512M:128M"), ["128M", "256M", "384M"]);
        assert_eq!(vals("cma=16777216,32M@0x68000000-0x70000000"), ["16M", "32M@0x68000000-0x70000000"]);
        assert_eq!(vals("cmaemu.pageblock_order=8..=10"), ["8", "9", "10"]);
        assert_eq!(vals("profile=debian-6.1,biscuitos-5.0"), ["debian-6.1", "biscuitos-5.0"]);
        assert_eq!(vals("dt.camera-cma=8M,1536K"), ["8M", "1536K"]);
        assert_eq!(vals("arg.coherent_pool=1M"), ["1M"]);
        assert!(Axis::parse_cli("cma=4M..=64M*2").unwrap().numeric());
        assert!(!Axis::parse_cli("profile=debian-6.1").unwrap().numeric());
    }

    #[test]
    fn bad_axes_name_the_value() {
        let err = |s: &str| Axis::parse_cli(s).unwrap_err().to_string();
        assert!(err("ram=256").contains("value \"256\"") && err("ram=256").contains("suffix"), "{}", err("ram=256"));
        assert!(err("ram=2G").contains("\"2G\""));
        assert!(err("cma=lots").contains("\"lots\""), "{}", err("cma=lots"));
        assert!(err("cma=4097M").contains("32-bit"), "{}", err("cma=4097M"));
        assert!(err("profile=debian-7").contains("\"debian-7\""), "{}", err("profile=debian-7"));
        assert!(err("cmaemu.max_order=99").contains("out of range"), "{}", err("cmaemu.max_order=99"));
        assert!(err("cmaemu.turbo=1").contains("unknown knob"));
        assert!(err("colour=red").contains("unknown parameter"));
        assert!(err("cma=4M..=64M").contains("needs a step"));
        assert!(err("cma=64M..=4M*2").contains("reversed"));
        assert!(err("cma=4M,4M").contains("twice"));
        assert!(err("cma=").contains("no values"));
        assert!(err("cma").contains("expected NAME=VALUES"));
        assert!(err("dt.camera-cma=100").contains("4K"));
        assert!(err("cmaemu.pageblock_order=0..=99999999").contains("more than"));
    }

    #[test]
    fn knob_list_matches_the_guest_parser() {
        let src = include_str!("../../../guest/mm/src/config.rs");
        for part in src.split("parameq(param, \"cmaemu.").skip(1) {
            let knob = part.split('"').next().unwrap();
            assert!(KNOBS.contains(&knob), "the guest reads cmaemu.{knob}: add it to KNOBS");
        }
    }

    #[test]
    fn combinations_first_axis_slowest() {
        let a = [Axis::parse_cli("cma=4M,8M").unwrap(), Axis::parse_cli("ram=128M,256M,512M").unwrap()];
        assert_eq!(combination_count(&a), Some(6));
        assert_eq!(combination(&a, 0), [0, 0]);
        assert_eq!(combination(&a, 2), [0, 2]);
        assert_eq!(combination(&a, 3), [1, 0]);
    }

    #[test]
    fn applied_to_a_board() {
        let mut b = BoardSpec::default();
        Axis::parse_cli("cma=16M").unwrap().apply("16M", &mut b);
        Axis::parse_cli("ram=256M").unwrap().apply("256M", &mut b);
        Axis::parse_cli("profile=biscuitos-5.0").unwrap().apply("biscuitos-5.0", &mut b);
        Axis::parse_cli("dt.camera-cma=8M").unwrap().apply("8M", &mut b);
        assert_eq!(b.args, ["cma=16M", "cmaemu.profile=biscuitos-5.0"]);
        assert_eq!(b.ram, Some(256 << 20));
        assert_eq!(b.reserved_sizes, [("camera-cma".to_string(), 8 << 20)]);
    }
}
