//! Transcripts reduced to named quantities, compared, and reported. The
//! same reduction runs on both systems; every line it does not compare is
//! counted under the reason it cannot match.
use super::{Case, LinuxAssets, Transcript};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// One compared quantity: its name and each system's value (None: that
/// system did not print it).
#[derive(Clone, Debug, PartialEq)]
pub struct Quantity {
    pub what: String,
    pub cmaemu: Option<String>,
    pub linux: Option<String>,
}

impl Quantity {
    pub fn same(&self) -> bool {
        self.cmaemu == self.linux
    }
}

/// A case's comparison.
#[derive(Clone, Debug)]
pub struct CaseResult {
    pub name: String,
    pub description: String,
    pub quantities: Vec<Quantity>,
    /// Lines not compared, by reason: (cmaemu's, Linux's).
    pub not_compared: BTreeMap<&'static str, (usize, usize)>,
    pub wall_cmaemu: Duration,
    pub wall_linux: Duration,
    /// What each system printed (for `cmaemu oracle --transcripts`).
    pub transcripts: (Transcript, Transcript),
}

impl CaseResult {
    pub fn identical(&self) -> usize {
        self.quantities.iter().filter(|q| q.same()).count()
    }
}

const R_CMAEMU: &str = "cmaemu's own `cmaemu:` lines";
const R_BOOT: &str = "boot lines of the kernels' own drivers and setup (not CMA placement, reservation or zones)";
const R_FOOTPRINT: &str = "figures that depend on the real kernel's own footprint (image, slab, page cache: MemFree, managed, free counts, watermarks)";
const R_USER_PFN: &str = "pfns of user pages (where the kernel's own allocations left room)";
const R_KMSG: &str = "other kernel messages during a step (the real kernel's drivers)";
const R_VMSTAT: &str = "vmstat counters other than cma_alloc_success/fail";
const R_CMA_DEBUG: &str = "cma_debug_show_areas' line after a failed cma_alloc (CONFIG_CMA_DEBUG: on in cmaemu, as CMA.md asks; Debian's armmp builds without it)";

/// A transcript as (quantity name, value) in order, and the lines left out.
struct Views {
    q: Vec<(String, String)>,
    skipped: BTreeMap<&'static str, usize>,
}

impl Views {
    fn put(&mut self, k: String, v: String) {
        self.q.push((k, v));
    }
    fn skip(&mut self, reason: &'static str) {
        *self.skipped.entry(reason).or_default() += 1;
    }
}

/// `[    1.234567] text` → Some(text).
fn kernel_line(l: &str) -> Option<&str> {
    let r = l.strip_prefix('[')?;
    let (ts, rest) = r.split_once("] ")?;
    ts.trim().chars().all(|c| c.is_ascii_digit() || c == '.').then_some(rest)
}

fn squeeze(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `virt: 0x...` (the kernel's own mapping of a DMA buffer) → `virt: <kva>`.
fn normalise_kva(s: &str) -> String {
    match s.find("virt: 0x") {
        Some(i) => {
            let rest = &s[i + 6..];
            let end = rest.find(' ').unwrap_or(rest.len());
            format!("{}virt: <kva>{}", &s[..i], &rest[end..])
        }
        None => s.to_string(),
    }
}

/// `pfn 0x...` of a user page → `pfn <user>`.
fn normalise_user_pfn(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("pfn 0x") {
        out.push_str(&rest[..i + 4]);
        let r = &rest[i + 4..];
        let end = r.find(|c: char| !(c.is_ascii_hexdigit() || c == 'x')).unwrap_or(r.len());
        out.push_str("<user>");
        rest = &r[end..];
    }
    out.push_str(rest);
    out
}

fn boot_views(v: &mut Views, boot: &str) {
    let mut n_res = 0;
    let mut in_zones = false;
    let mut n_node = 0;
    for l in boot.lines() {
        if l.contains("cmaemu:") {
            v.skip(R_CMAEMU);
            continue;
        }
        let Some(k) = kernel_line(l) else {
            v.skip(R_BOOT);
            continue;
        };
        if k.starts_with("Zone ranges:") {
            in_zones = true;
            continue;
        }
        if in_zones {
            if let Some(z) = k.strip_prefix("  ") {
                let z = squeeze(z);
                let name = z.split(' ').next().unwrap_or("").to_string();
                v.put(format!("boot: zone range {name}"), z);
                continue;
            }
            in_zones = false;
        }
        if k.starts_with("Reserved memory:") || k.starts_with("cma: ") || k.starts_with("OF: reserved mem:") {
            n_res += 1;
            v.put(format!("boot: reservation line {n_res}"), k.to_string());
        } else if k.starts_with("Memory: ") {
            let cma = k.split(", ").find(|p| p.ends_with("cma-reserved")).unwrap_or("(none)");
            v.put("boot: Memory: cma-reserved".into(), cma.trim().to_string());
            v.skip(R_FOOTPRINT);
        } else if k.starts_with("  node ") || k.starts_with("Initmem setup node") || k.starts_with("Movable zone start") {
            n_node += 1;
            v.put(format!("boot: memory node line {n_node}"), squeeze(k));
        } else {
            v.skip(R_BOOT);
        }
    }
}

fn meminfo_views(v: &mut Views, p: &str, out: &str) {
    let mut fields = Vec::new();
    for l in out.lines() {
        let Some((name, val)) = l.split_once(':') else { continue };
        fields.push(name.to_string());
        if name == "CmaTotal" || name == "CmaFree" {
            v.put(format!("{p} {name}"), squeeze(val));
        } else {
            v.skip(R_FOOTPRINT);
        }
    }
    v.put(format!("{p} field set"), fields.join(","));
}

fn vmstat_views(v: &mut Views, p: &str, out: &str) {
    for l in out.lines() {
        match l.split_once(' ') {
            Some((k @ ("cma_alloc_success" | "cma_alloc_fail"), val)) => v.put(format!("{p} {k}"), val.trim().to_string()),
            _ => v.skip(R_VMSTAT),
        }
    }
}

/// zoneinfo: zone names, and per zone start_pfn, spanned, present.
fn zoneinfo_views(v: &mut Views, p: &str, out: &str) {
    let mut zones = Vec::new();
    let mut zone = String::new();
    for l in out.lines() {
        if let Some(z) = l.strip_prefix("Node 0, zone") {
            zone = z.trim().to_string();
            zones.push(zone.clone());
            continue;
        }
        let t = squeeze(l);
        let key = t.split(' ').next().unwrap_or("");
        match key {
            "spanned" | "present" | "start_pfn:" => v.put(format!("{p} {zone} {}", key.trim_end_matches(':')), t),
            _ => v.skip(R_FOOTPRINT),
        }
    }
    v.put(format!("{p} zones"), zones.join(","));
}

fn buddyinfo_views(v: &mut Views, p: &str, out: &str) {
    let zones: Vec<String> = out
        .lines()
        .filter_map(|l| l.split_once("zone").map(|(_, r)| r.split_whitespace().next().unwrap_or("").to_string()))
        .collect();
    v.put(format!("{p} zones"), zones.join(","));
    for _ in out.lines() {
        v.skip(R_FOOTPRINT);
    }
}

/// pagetypeinfo: pageblock order and size, and per zone the number of
/// CMA and Isolate pageblocks.
fn pagetypeinfo_views(v: &mut Views, p: &str, out: &str) {
    let mut header: Vec<String> = Vec::new();
    for l in out.lines() {
        if l.starts_with("Page block order:") || l.starts_with("Pages per block:") {
            v.put(format!("{p} {}", l.split(':').next().unwrap_or("")), squeeze(l));
        } else if let Some(h) = l.strip_prefix("Number of blocks type") {
            header = h.split_whitespace().map(str::to_string).collect();
        } else if !header.is_empty() && l.starts_with("Node") && !l.contains("type") {
            // "Node 0, zone   Normal    3   4 ..." (the counts after the name)
            let t: Vec<&str> = l.split_whitespace().collect();
            let zone = t.get(3).copied().unwrap_or("?");
            let counts = &t[t.len().saturating_sub(header.len())..];
            for (h, c) in header.iter().zip(counts) {
                if h == "CMA" || h == "Isolate" {
                    v.put(format!("{p} {zone} {h} pageblocks"), c.to_string());
                }
            }
            v.skip(R_FOOTPRINT);
        } else {
            v.skip(R_FOOTPRINT);
        }
    }
}

fn step_views(v: &mut Views, i: usize, cmd: &str, out: &str) {
    let p = format!("step {} `{}`:", i + 1, cmd);
    // kernel messages first: the ones our operations print are compared
    let mut plain = String::new();
    let (mut n_test, mut n_cma) = (0, 0);
    for l in out.lines() {
        if l.contains("cmaemu:") {
            v.skip(R_CMAEMU);
        } else if let Some(k) = kernel_line(l) {
            // numbered per source, so that one extra line does not shift the others
            if k.starts_with("misc cma_test:") {
                n_test += 1;
                v.put(format!("{p} kernel cma_test line {n_test}"), normalise_kva(k));
            } else if k.starts_with("cma: number of available pages:") {
                v.skip(R_CMA_DEBUG);
            } else if k.starts_with("cma: ") || k.contains("alloc failed") {
                n_cma += 1;
                v.put(format!("{p} kernel cma line {n_cma}"), k.to_string());
            } else {
                v.skip(R_KMSG);
            }
        } else {
            plain.push_str(l);
            plain.push('\n');
        }
    }
    match cmd.trim() {
        "cat /proc/meminfo" => meminfo_views(v, &p, &plain),
        "cat /proc/vmstat" => vmstat_views(v, &p, &plain),
        "cat /proc/zoneinfo" => zoneinfo_views(v, &p, &plain),
        "cat /proc/buddyinfo" => buddyinfo_views(v, &p, &plain),
        "cat /proc/pagetypeinfo" => pagetypeinfo_views(v, &p, &plain),
        "pfns" => plain.lines().for_each(|_| v.skip(R_USER_PFN)),
        _ => {
            for (k, l) in plain.lines().enumerate() {
                let l = if l.starts_with("pin:") || l.starts_with("check:") {
                    if l.contains("pfn 0x") {
                        v.skip(R_USER_PFN);
                    }
                    normalise_user_pfn(l)
                } else {
                    l.to_string()
                };
                v.put(format!("{p} line {}", k + 1), l);
            }
        }
    }
}

fn views(t: &Transcript) -> Views {
    let mut v = Views { q: Vec::new(), skipped: BTreeMap::new() };
    boot_views(&mut v, &t.boot);
    for (i, (cmd, out)) in t.steps.iter().enumerate() {
        step_views(&mut v, i, cmd, out);
    }
    v
}

/// Compare the two transcripts of a case.
pub fn compare(case: &Case, emu: &Transcript, linux: &Transcript) -> CaseResult {
    let (a, b) = (views(emu), views(linux));
    let mut quantities: Vec<Quantity> = Vec::new();
    for (k, val) in &a.q {
        quantities.push(Quantity { what: k.clone(), cmaemu: Some(val.clone()), linux: b.q.iter().find(|(bk, _)| bk == k).map(|(_, v)| v.clone()) });
    }
    for (k, val) in &b.q {
        if !a.q.iter().any(|(ak, _)| ak == k) {
            quantities.push(Quantity { what: k.clone(), cmaemu: None, linux: Some(val.clone()) });
        }
    }
    let mut not_compared: BTreeMap<&'static str, (usize, usize)> = BTreeMap::new();
    for (r, n) in &a.skipped {
        not_compared.entry(r).or_default().0 += n;
    }
    for (r, n) in &b.skipped {
        not_compared.entry(r).or_default().1 += n;
    }
    CaseResult {
        name: case.name.clone(),
        description: case.description.clone(),
        quantities,
        not_compared,
        wall_cmaemu: emu.wall,
        wall_linux: linux.wall,
        transcripts: (emu.clone(), linux.clone()),
    }
}

/// The suite's report (markdown): cases, quantities, % identical, every
/// difference, what was not compared and why, wall times and ratios.
pub fn report(results: &[CaseResult], a: &LinuxAssets) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# cmaemu differential oracle\n");
    let _ = writeln!(s, "Real kernel: {} on {} -M vexpress-a9 (TCG); cmaemu: this build's guest kernel.\n", a.version, a.qemu.display());
    let _ = writeln!(s, "| case | quantities | identical | % | cmaemu s | QEMU+Linux s | QEMU/cmaemu |");
    let _ = writeln!(s, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    let (mut tq, mut ti) = (0, 0);
    for r in results {
        let (q, i) = (r.quantities.len(), r.identical());
        tq += q;
        ti += i;
        let (ce, li) = (r.wall_cmaemu.as_secs_f64(), r.wall_linux.as_secs_f64());
        let _ = writeln!(s, "| {} | {} | {} | {:.1} | {:.2} | {:.2} | {:.1}x |", r.name, q, i, pct(i, q), ce, li, li / ce.max(1e-9));
    }
    let _ = writeln!(s, "| **all {}** | {} | {} | {:.1} | | | |\n", results.len(), tq, ti, pct(ti, tq));
    let _ = writeln!(s, "## Differences\n");
    let mut any = false;
    for r in results {
        let d: Vec<&Quantity> = r.quantities.iter().filter(|q| !q.same()).collect();
        if d.is_empty() {
            continue;
        }
        any = true;
        let _ = writeln!(s, "### {}\n", r.name);
        for q in d {
            let f = |v: &Option<String>| v.as_deref().map(|x| format!("`{x}`")).unwrap_or_else(|| "(absent)".into());
            let _ = writeln!(s, "- {}: cmaemu {} / Linux {}", q.what, f(&q.cmaemu), f(&q.linux));
        }
        let _ = writeln!(s);
    }
    if !any {
        let _ = writeln!(s, "None.\n");
    }
    let _ = writeln!(s, "## Not compared, by reason (lines: cmaemu / Linux)\n");
    let mut all: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for r in results {
        for (k, (x, y)) in &r.not_compared {
            let e = all.entry(k).or_default();
            e.0 += x;
            e.1 += y;
        }
    }
    for (k, (x, y)) in all {
        let _ = writeln!(s, "- {k}: {x} / {y}");
    }
    s
}

fn pct(a: usize, b: usize) -> f64 {
    if b == 0 {
        100.0
    } else {
        100.0 * a as f64 / b as f64
    }
}
