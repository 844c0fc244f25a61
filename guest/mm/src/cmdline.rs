//! Kernel command-line primitives, following Linux 6.1: `next_arg()` and
//! `parameq()` (kernel/params.c), `simple_strtoull()` (lib/vsprintf.c),
//! `memparse()` (lib/cmdline.c), and `early_cma()` (kernel/dma/contiguous.c).
//! Everything works on borrowed `&str` slices: no allocation.

use core::fmt;

/// A fixed-capacity string (`char name[N]` in Linux), truncated on overflow
/// at a UTF-8 boundary.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct FixedStr<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> FixedStr<N> {
    /// The empty string.
    pub const fn new() -> Self {
        Self { buf: [0; N], len: 0 }
    }

    /// Copy `s`, truncated to `N` bytes (like `snprintf` into `char[N]`,
    /// which keeps `N - 1` characters plus NUL; we keep the whole `N`).
    /// Returns the string and whether it was truncated.
    pub fn from_str_truncate(s: &str) -> (Self, bool) {
        let mut out = Self::new();
        let truncated = out.push_str(s);
        (out, truncated)
    }

    /// Append `s`; returns true if it had to be truncated.
    pub fn push_str(&mut self, s: &str) -> bool {
        let room = N - self.len;
        let mut n = s.len().min(room);
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        n < s.len()
    }

    /// The contents.
    pub fn as_str(&self) -> &str {
        // only whole UTF-8 sequences are ever copied in
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl<const N: usize> Default for FixedStr<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Debug for FixedStr<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl<const N: usize> fmt::Display for FixedStr<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<const N: usize> fmt::Write for FixedStr<N> {
    /// Truncates silently, like `snprintf`.
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push_str(s);
        Ok(())
    }
}

/// `isspace()` of the kernel's `_ctype` on ASCII.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// `skip_spaces()`.
fn skip_spaces(s: &str) -> &str {
    let n = s.bytes().take_while(|&b| is_space(b)).count();
    &s[n..]
}

/// `next_arg()` (kernel/params.c): split off the next `param[=val]`.
/// Double quotes group spaces; a quote opening the whole argument or the
/// value is dropped, with the quote that closes it at the argument's end.
/// Returns `(param, val, rest)`.
pub fn next_arg(args: &str) -> (&str, Option<&str>, &str) {
    let bytes = args.as_bytes();
    let mut start = 0usize;
    let mut in_quote = false;
    let mut quoted = false;
    if bytes.first() == Some(&b'"') {
        start = 1;
        in_quote = true;
        quoted = true;
    }
    let a = &bytes[start..];
    let mut i = 0usize;
    let mut equals = 0usize;
    while i < a.len() {
        if is_space(a[i]) && !in_quote {
            break;
        }
        if equals == 0 && a[i] == b'=' {
            equals = i;
        }
        if a[i] == b'"' {
            in_quote = !in_quote;
        }
        i += 1;
    }
    // arg = a[..i]; Linux NUL-terminates in place, we slice.
    let mut arg_end = i;
    let (param, val);
    if equals == 0 {
        // a trailing quote closing a quoted argument is dropped
        if quoted && i > 0 && a[i - 1] == b'"' {
            arg_end = i - 1;
        }
        param = &args[start..start + arg_end];
        val = None;
    } else {
        param = &args[start..start + equals];
        let mut vstart = equals + 1;
        let mut vend = arg_end;
        // Don't include quotes in value.
        if a.get(vstart) == Some(&b'"') {
            vstart += 1;
            if a[i - 1] == b'"' {
                vend = i - 1;
            }
        }
        if quoted && i > 0 && a[i - 1] == b'"' {
            vend = i - 1;
        }
        let vend = vend.max(vstart);
        val = Some(&args[start + vstart..start + vend]);
    }
    let rest_start = if i < a.len() { start + i + 1 } else { start + i };
    (param, val, skip_spaces(&args[rest_start..]))
}

/// Iterator over `(param, val)` of a command line, as `parse_args()` walks
/// it: leading spaces skipped, stops at a bare `--`.
#[derive(Clone)]
pub struct Args<'a> {
    rest: &'a str,
}

impl<'a> Args<'a> {
    /// Start walking `cmdline`.
    pub fn new(cmdline: &'a str) -> Self {
        Self { rest: skip_spaces(cmdline) }
    }
}

impl<'a> Iterator for Args<'a> {
    type Item = (&'a str, Option<&'a str>);
    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let (param, val, rest) = next_arg(self.rest);
        self.rest = rest;
        if val.is_none() && param == "--" {
            self.rest = "";
            return None;
        }
        Some((param, val))
    }
}

/// `parameq()`: parameter names compare with `-` and `_` equal.
pub fn parameq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a
            .bytes()
            .zip(b.bytes())
            .all(|(x, y)| x == y || (matches!(x, b'-' | b'_') && matches!(y, b'-' | b'_')))
}

/// `simple_strtoull(cp, &endp, base)`: base 0 picks 16 for `0x` followed
/// by a hex digit, 8 for a leading `0`, else 10. No sign, no leading
/// spaces; overflow wraps as in Linux. Returns `(value, bytes consumed)`.
pub fn simple_strtoull(s: &str, base: u32) -> (u64, usize) {
    let b = s.as_bytes();
    let mut base = base;
    let mut i = 0usize;
    // _parse_integer_fixup_radix()
    if base == 0 {
        if b.first() == Some(&b'0') {
            if b.get(1).map(|c| c.to_ascii_lowercase()) == Some(b'x') && b.get(2).is_some_and(|c| c.is_ascii_hexdigit()) {
                base = 16;
            } else {
                base = 8;
            }
        } else {
            base = 10;
        }
    }
    if base == 16 && b.first() == Some(&b'0') && b.get(1).map(|c| c.to_ascii_lowercase()) == Some(b'x') {
        i = 2;
    }
    let digits_start = i;
    let mut res: u64 = 0;
    while i < b.len() {
        let c = b[i];
        let v = match c {
            b'0'..=b'9' => (c - b'0') as u32,
            b'a'..=b'f' => (c - b'a' + 10) as u32,
            b'A'..=b'F' => (c - b'A' + 10) as u32,
            _ => break,
        };
        if v >= base {
            break;
        }
        res = res.wrapping_mul(base as u64).wrapping_add(v as u64);
        i += 1;
    }
    // "0x" with no digits: Linux consumes only the "0" (fixup_radix saw no
    // hex digit, so base is 8 and the "0" parses).
    if i == digits_start && digits_start == 2 {
        return (0, 1);
    }
    (res, i)
}

/// `memparse()`: a number (base as `simple_strtoull(…, 0)`) with an
/// optional K/M/G/T/P/E suffix (either case). Returns `(value, rest)`.
pub fn memparse(s: &str) -> (u64, &str) {
    let (mut ret, n) = simple_strtoull(s, 0);
    let rest = &s[n..];
    let shift = match rest.as_bytes().first() {
        Some(b'E' | b'e') => 60,
        Some(b'P' | b'p') => 50,
        Some(b'T' | b't') => 40,
        Some(b'G' | b'g') => 30,
        Some(b'M' | b'm') => 20,
        Some(b'K' | b'k') => 10,
        _ => return (ret, rest),
    };
    ret <<= shift; // `ret <<= 10` per step in Linux: bits shifted out are lost
    (ret, &rest[1..])
}

/// A strict `memparse()` for our own knobs: the whole value must be
/// consumed and contain at least one digit.
pub fn memparse_strict(s: &str) -> Option<u64> {
    if !s.as_bytes().first().is_some_and(|b| b.is_ascii_digit()) {
        return None;
    }
    let (v, rest) = memparse(s);
    rest.is_empty().then_some(v)
}

/// A strict decimal/hex/octal integer (`kstrtoull(s, 0)`-like).
pub fn parse_uint_strict(s: &str) -> Option<u64> {
    if !s.as_bytes().first().is_some_and(|b| b.is_ascii_digit()) {
        return None;
    }
    let (v, n) = simple_strtoull(s, 0);
    (n == s.len()).then_some(v)
}

/// What `cma=size[@base[-limit]]` set (`size_cmdline`, `base_cmdline`,
/// `limit_cmdline` in kernel/dma/contiguous.c; absent = `size_cmdline == -1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CmaCmdline {
    pub size: u64,
    pub base: u64,
    pub limit: u64,
}

/// Errors of `cma=` parsing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EarlyCmaError<'a> {
    /// `cma` without `=value`: Linux logs `Config string not provided` and
    /// `Malformed early option 'cma'`, and leaves the defaults.
    NoValue,
    /// Characters memparse did not consume; Linux ignores them silently and
    /// keeps what it parsed (so do we: the value is still applied).
    TrailingGarbage { value: &'a str, rest: &'a str },
}

impl fmt::Display for EarlyCmaError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoValue => f.write_str("cma: Config string not provided"),
            Self::TrailingGarbage { value, rest } => write!(
                f,
                "cma={value}: ignoring trailing characters \"{rest}\" (expected size[@base[-limit]] with K/M/G suffixes)"
            ),
        }
    }
}

/// `early_cma()`: parse `size[@base[-limit]]`. `@base` alone gives
/// `limit = base + size` (a fixed area). Returns the values Linux would
/// set, and a diagnostic for trailing characters Linux would ignore.
pub fn early_cma(p: Option<&str>) -> Result<(CmaCmdline, Option<EarlyCmaError<'_>>), EarlyCmaError<'_>> {
    let Some(p) = p else {
        return Err(EarlyCmaError::NoValue);
    };
    // size_cmdline, base_cmdline, limit_cmdline are 32-bit phys_addr_t
    let r = early_cma_u64(p)?;
    let m = u32::MAX as u64;
    Ok((CmaCmdline { size: r.0.size & m, base: r.0.base & m, limit: r.0.limit & m }, r.1))
}

fn early_cma_u64(p: &str) -> Result<(CmaCmdline, Option<EarlyCmaError<'_>>), EarlyCmaError<'_>> {
    let value = p;
    let (size, rest) = memparse(p);
    let mut out = CmaCmdline { size, base: 0, limit: 0 };
    let check = |rest: &str| -> bool { !rest.is_empty() };
    if !rest.starts_with('@') {
        let warn = (check(rest) || !value.as_bytes().first().is_some_and(|b| b.is_ascii_digit()))
            .then_some(EarlyCmaError::TrailingGarbage { value, rest });
        return Ok((out, warn));
    }
    let (base, rest) = memparse(&rest[1..]);
    out.base = base;
    if !rest.starts_with('-') {
        out.limit = base.wrapping_add(size);
        let warn = check(rest).then_some(EarlyCmaError::TrailingGarbage { value, rest });
        return Ok((out, warn));
    }
    let (limit, rest) = memparse(&rest[1..]);
    out.limit = limit;
    let warn = check(rest).then_some(EarlyCmaError::TrailingGarbage { value, rest });
    Ok((out, warn))
}

#[cfg(test)]
mod tests;
