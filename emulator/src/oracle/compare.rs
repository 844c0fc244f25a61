//! Transcripts reduced to named quantities, compared, and reported. The
//! same reduction runs on both systems; every line it does not compare is
//! counted under the reason it cannot match.
use super::{Case, LinuxAssets, Transcript};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// One compared quantity: its name and each system's value (None: that
/// system did not print it), and, where the raw values differ and a named
/// normalisation applies, the normalised values.
#[derive(Clone, Debug, PartialEq)]
pub struct Quantity {
    pub what: String,
    pub cmaemu: Option<String>,
    pub linux: Option<String>,
    pub normalised: Option<Normalised>,
}

/// A quantity's values under a named normalisation (both shown in the
/// report beside the raw values).
#[derive(Clone, Debug, PartialEq)]
pub struct Normalised {
    /// What the normalisation compares instead, and why.
    pub rule: &'static str,
    /// The compared value of each system.
    pub cmaemu: i64,
    pub linux: i64,
    /// How each value is made up (for the report).
    pub cmaemu_split: String,
    pub linux_split: String,
    /// Identical under the rule (equal values, or within the rule's
    /// stated bound).
    pub same: bool,
}

impl Quantity {
    /// Identical raw, or under its named normalisation.
    pub fn same(&self) -> bool {
        self.raw_same() || self.normalised.as_ref().is_some_and(|n| n.same)
    }
    /// Identical as printed.
    pub fn raw_same(&self) -> bool {
        self.cmaemu == self.linux
    }
}

/// A case's comparison.
#[derive(Clone, Debug)]
pub struct CaseResult {
    pub name: String,
    pub description: String,
    /// The kernel command line both systems booted with.
    pub bootargs: String,
    pub quantities: Vec<Quantity>,
    /// Lines not compared, by reason: (cmaemu's, Linux's).
    pub not_compared: BTreeMap<&'static str, (usize, usize)>,
    pub wall_cmaemu: Duration,
    pub wall_linux: Duration,
    /// Of which the boots (to the first prompt).
    pub boot_cmaemu: Duration,
    pub boot_linux: Duration,
    /// What each system printed (for `cmaemu oracle --transcripts`).
    pub transcripts: (Transcript, Transcript),
}

impl CaseResult {
    pub fn identical(&self) -> usize {
        self.quantities.iter().filter(|q| q.same()).count()
    }
    /// Of [`Self::identical`], those identical as printed.
    pub fn identical_raw(&self) -> usize {
        self.quantities.iter().filter(|q| q.raw_same()).count()
    }
}

const R_CMAEMU: &str = "cmaemu's own `cmaemu:` lines";
const R_BOOT: &str = "boot lines of the kernels' own drivers and setup (not CMA placement, reservation or zones)";
const R_FOOTPRINT: &str = "figures that depend on the real kernel's own footprint (image, slab, page cache: MemFree, managed, free counts; watermarks unless the case sets sysctl.vm.min_free_kbytes)";
const R_USER_PFN: &str = "pfns of user pages (where the kernel's own allocations left room)";
const R_KMSG: &str = "other kernel messages during a step (the real kernel's drivers)";
const R_VMSTAT: &str = "vmstat counters other than cma_alloc_success/fail";
const R_BUDDY_PFN: &str = "addresses of DMA buffers from the buddy allocator (no CMA area: dma_alloc_coherent's remap allocator; where the kernel's own allocations left room)";
const R_LEAVE: &str = "page counts and addresses after a `fill leave` (sized from each kernel's free memory, so they carry the footprint): numbers in `fill:`/`check:`/`free:` lines";
const R_CMASTAT: &str = "the oracle's `cmastat` lines after each `cat /proc/meminfo` (used only to normalise a differing CmaFree, shown with it)";
const R_CMA_DEBUG: &str = "cma_debug_show_areas' line after a failed cma_alloc (CONFIG_CMA_DEBUG: on in cmaemu, as CMA.md asks; Debian's armmp builds without it)";

/// A transcript as (quantity name, value) in order, and the lines left out.
struct Views {
    q: Vec<(String, String)>,
    skipped: BTreeMap<&'static str, usize>,
    /// The case sets `sysctl.vm.min_free_kbytes`: the watermarks and the
    /// per-CPU `high` no longer follow the footprint, and are compared.
    wmarks: bool,
    /// `cmastat` per step prefix: (zone, free kB, counted kB, per-CPU kB).
    cmastat: BTreeMap<String, Vec<CmaStat>>,
    /// A `fill leave` ran: the user pages' count follows the footprint.
    leave: bool,
}

/// Every number (decimal or 0x hex) of a line → `<n>`.
fn mask_numbers(l: &str) -> String {
    let mut out = String::new();
    let mut it = l.char_indices().peekable();
    let b = l.as_bytes();
    while let Some((i, c)) = it.next() {
        let word_start = i == 0 || !(b[i - 1].is_ascii_alphanumeric());
        if c.is_ascii_digit() && word_start {
            while it.peek().is_some_and(|&(_, d)| d.is_ascii_hexdigit() || d == 'x') {
                it.next();
            }
            out.push_str("<n>");
        } else {
            out.push(c);
        }
    }
    out
}

/// One `cmastat` line: `cmastat: ZONE: F kB free, C kB counted, P kB on
/// per-CPU lists (N pages listed)`.
#[derive(Clone, Debug, PartialEq)]
struct CmaStat {
    zone: String,
    free: i64,
    counted: i64,
    pcp: i64,
    /// The per-CPU list's batch and the zone's stat_threshold (pages).
    batch: i64,
    threshold: i64,
}

fn parse_cmastat(l: &str) -> Option<CmaStat> {
    let r = l.strip_prefix("cmastat: ")?;
    let (zone, r) = r.split_once(": ")?;
    let kb = |part: &str, tail: &str| part.trim().strip_suffix(tail)?.trim().parse::<i64>().ok();
    let mut it = r.split(", ");
    let free = kb(it.next()?, "kB free")?;
    let counted = kb(it.next()?, "kB counted")?;
    let (pcp, tail) = it.next()?.split_once(" (")?;
    let pcp = kb(pcp, "kB on per-CPU lists")?;
    // "N pages listed", then the rest of the line: "batch B", "stat_threshold T)"
    let field = |name: &str| r.split(", ").find_map(|f| f.strip_prefix(name)?.trim().trim_end_matches(')').parse::<i64>().ok());
    let _ = tail;
    Some(CmaStat { zone: zone.to_string(), free, counted, pcp, batch: field("batch ")?, threshold: field("stat_threshold ")? })
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

/// zoneinfo: zone names, and per zone start_pfn, spanned, present; with
/// `sysctl.vm.min_free_kbytes` also min, and for the lowmem zones low,
/// high and the per-CPU high.
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
            // the zone's watermarks, and the per-CPU list's high (its low
            // watermark). A HighMem zone's min is managed/1024, but its
            // low/high distance is pages_min * managed / lowmem_pages: the
            // lowmem managed pages, i.e. the footprint.
            "min" if v.wmarks => v.put(format!("{p} {zone} {key}"), t),
            "low" | "high" | "high:" if v.wmarks && (zone == "DMA" || zone == "Normal") => {
                v.put(format!("{p} {zone} {}", if key == "high:" { "pcp high" } else { key }), t)
            }
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

/// The CMA areas and reserved DMA pools the boot log names, `[start, end)`
/// physical: `cma: Reserved N MiB at 0x…` and `Reserved memory: created
/// CMA|DMA memory pool at 0x…, size N MiB`.
fn reserved_areas(boot: &str) -> Vec<(u64, u64)> {
    let hex = |s: &str| u64::from_str_radix(s.trim().trim_start_matches("0x").trim_end_matches(','), 16).ok();
    let mib = |s: &str| s.trim().parse::<u64>().ok().map(|m| m << 20);
    let mut v = Vec::new();
    for l in boot.lines().filter_map(kernel_line) {
        if let Some(r) = l.strip_prefix("cma: Reserved ") {
            // "16 MiB at 0x6f000000"
            if let Some((size, base)) = r.split_once(" MiB at ") {
                if let (Some(s), Some(b)) = (mib(size), hex(base.split_whitespace().next().unwrap_or(""))) {
                    v.push((b, b + s));
                }
            }
        } else if let Some(i) = l.find("memory pool at ") {
            // "0x4c000000, size 8 MiB"
            let r = &l[i + "memory pool at ".len()..];
            if let Some((base, size)) = r.split_once(", size ") {
                if let (Some(b), Some(s)) = (hex(base), mib(size.trim_end_matches(" MiB"))) {
                    v.push((b, b + s));
                }
            }
        }
    }
    v
}

/// `phys: 0x…` outside every reserved area → `phys: <buddy>` (true when
/// it did).
fn normalise_buddy_phys(s: &str, areas: &[(u64, u64)]) -> Option<String> {
    let i = s.find("phys: 0x")?;
    let rest = &s[i + 8..];
    let end = rest.find(|c: char| !c.is_ascii_hexdigit()).unwrap_or(rest.len());
    let pa = u64::from_str_radix(&rest[..end], 16).ok()?;
    if areas.iter().any(|&(a, b)| (a..b).contains(&pa)) {
        return None;
    }
    Some(format!("{}phys: <buddy>{}", &s[..i], &rest[end..]))
}

#[cfg(test)]
pub(super) fn reserved_areas_for_test(boot: &str) -> Vec<(u64, u64)> {
    reserved_areas(boot)
}

fn step_views(v: &mut Views, areas: &[(u64, u64)], i: usize, cmd: &str, out: &str) {
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
                let mut line = normalise_kva(k);
                if let Some(b) = normalise_buddy_phys(&line, areas) {
                    v.skip(R_BUDDY_PFN);
                    line = b;
                }
                v.put(format!("{p} kernel cma_test line {n_test}"), line);
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
        "cat /proc/meminfo" => {
            let (stat, mem): (Vec<&str>, Vec<&str>) = plain.lines().partition(|l| l.starts_with("cmastat:"));
            let parsed: Vec<CmaStat> = stat.iter().filter_map(|l| parse_cmastat(l)).collect();
            for _ in &stat {
                v.skip(R_CMASTAT);
            }
            if !parsed.is_empty() {
                v.cmastat.insert(p.clone(), parsed);
            }
            meminfo_views(v, &p, &mem.join("\n"))
        }
        "cat /proc/vmstat" => vmstat_views(v, &p, &plain),
        "cat /proc/zoneinfo" => zoneinfo_views(v, &p, &plain),
        "cat /proc/buddyinfo" => buddyinfo_views(v, &p, &plain),
        "cat /proc/pagetypeinfo" => pagetypeinfo_views(v, &p, &plain),
        "pfns" => plain.lines().for_each(|_| v.skip(R_USER_PFN)),
        _ => {
            if cmd.trim_start().starts_with("fill leave ") {
                v.leave = true;
            }
            for (k, l) in plain.lines().enumerate() {
                let l = if v.leave && (l.starts_with("fill:") || l.starts_with("check:") || l.starts_with("free:")) {
                    v.skip(R_LEAVE);
                    mask_numbers(l)
                } else if l.starts_with("pin:") || l.starts_with("check:") {
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

fn views(t: &Transcript, wmarks: bool) -> Views {
    let mut v = Views { q: Vec::new(), skipped: BTreeMap::new(), wmarks, cmastat: BTreeMap::new(), leave: false };
    boot_views(&mut v, &t.boot);
    let areas = reserved_areas(&t.boot);
    for (i, (cmd, out)) in t.steps.iter().enumerate() {
        step_views(&mut v, &areas, i, cmd, out);
    }
    v
}

/// The normalisation of a differing `CmaFree`: CMA pages free **or parked
/// on the per-CPU lists**, from the `cmastat` the oracle runs right after
/// each `cat /proc/meminfo` on both systems. Two things make the printed
/// `CmaFree` move with the real kernel's own activity rather than with the
/// workload: Linux 6.1 frees every released CMA page to the per-CPU list
/// (`free_contig_range` → `free_unref_page`; CMA pages ride on the
/// movable list) where it is not counted free until `free_pcppages_bulk`
/// returns it, and how many stay there follows the list's `count` and
/// `free_factor`, which the kernel's own order-0 allocations and frees
/// move; and `/proc/meminfo` reads `NR_FREE_CMA_PAGES` without the CPU's
/// unfolded `vm_stat_diff` (up to `stat_threshold` pages, folded by
/// `vmstat_update` within a second). `cmastat` reads the exact counter
/// (`zone_page_state_snapshot`) and walks the per-CPU lists (pages whose
/// pcppage migratetype is `MIGRATE_CMA`) with interrupts off; the guest
/// prints the same from its own lists (its counter has no per-CPU delta).
const CMAFREE_RULE: &str = "CMA pages free or on the per-CPU lists (cmastat, read right after: exact NR_FREE_CMA_PAGES + pages on the per-CPU lists whose pcppage migratetype is MIGRATE_CMA): released CMA pages park on the per-CPU list uncounted, how many stay follows the kernel's own order-0 traffic, and meminfo's counter lags by the CPU's unfolded vm_stat_diff";

fn cmafree_normalised(what: &str, a: &BTreeMap<String, Vec<CmaStat>>, b: &BTreeMap<String, Vec<CmaStat>>) -> Option<Normalised> {
    let p = what.strip_suffix(" CmaFree")?;
    let (sa, sb) = (a.get(p)?, b.get(p)?);
    let split = |s: &[CmaStat]| {
        s.iter()
            .map(|z| {
                let lag = if z.counted != z.free { format!(" (meminfo's counter {} kB)", z.counted) } else { String::new() };
                format!("{}: {} kB free{lag} + {} kB on per-CPU lists", z.zone, z.free, z.pcp)
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    let sum = |s: &[CmaStat]| s.iter().map(|z| z.free + z.pcp).sum::<i64>();
    let (x, y) = (sum(sa), sum(sb));
    Some(Normalised { rule: CMAFREE_RULE, cmaemu: x, linux: y, cmaemu_split: split(sa), linux_split: split(sb), same: x == y })
}

/// After a `fill leave` (both kernels filled to the same free memory),
/// `__rmqueue` took movable pages from CMA while the zone's free CMA
/// pages exceeded half its free pages, reading both through
/// `zone_page_state`: the counters without the CPU's unfolded
/// `vm_stat_diff`, up to `stat_threshold` pages each, folded on overflow
/// and by `vmstat_update` on a timer (the guest has no per-CPU deltas).
/// So the balance point (free CMA − free / 2) lands up to 1.5 ×
/// `stat_threshold` pages apart, and the fill stops within one `batch`
/// (`rmqueue_bulk` takes a batch off the free count at once) of the
/// target, half of which shows in free CMA: the first `CmaFree` after the
/// fill is compared (CMA pages free or on the lists) within
/// 1.5 × stat_threshold + batch / 2 pages, and every later `CmaFree` of
/// the case as its change since that step.
const FILL_RULE: &str = "after `fill leave`, the first CmaFree (CMA pages free or on the per-CPU lists) within 1.5 x stat_threshold + batch/2 pages: __rmqueue's CMA balance rule (CMA first while free CMA > half the zone's free pages) reads both counters through zone_page_state, which lags the exact count by up to stat_threshold pages each until vmstat_update folds it on a timer, and the fill stops within one rmqueue_bulk batch of the free target";
const FILL_DELTA_RULE: &str = "after `fill leave`, later CmaFree values as their change since the first CmaFree after the fill (CMA pages free or on the per-CPU lists), which carries the fill's balance point (normalisation 'after fill leave, the first CmaFree')";

fn fill_normalise(emu: &Transcript, quantities: &mut [Quantity], a: &BTreeMap<String, Vec<CmaStat>>, b: &BTreeMap<String, Vec<CmaStat>>) {
    let sum = |s: &[CmaStat]| s.iter().map(|z| z.free + z.pcp).sum::<i64>();
    let mut leave = false;
    let mut anchor: Option<(i64, i64, String)> = None;
    for (i, (cmd, _)) in emu.steps.iter().enumerate() {
        if cmd.trim_start().starts_with("fill leave ") {
            leave = true;
            anchor = None;
            continue;
        }
        if !leave {
            continue;
        }
        let p = format!("step {} `{}`:", i + 1, cmd);
        let (Some(sa), Some(sb)) = (a.get(&p), b.get(&p)) else { continue };
        let Some(q) = quantities.iter_mut().find(|q| q.what == format!("{p} CmaFree")) else { continue };
        let (x, y) = (sum(sa), sum(sb));
        let Some((ax, ay, at)) = anchor.clone() else {
            anchor = Some((x, y, p.trim_end_matches(':').to_string()));
            if q.same() {
                continue;
            }
            let t = sa.iter().chain(sb).map(|z| z.threshold).max().unwrap_or(0);
            let batch = sa.iter().chain(sb).map(|z| z.batch).max().unwrap_or(0);
            let bound = (3 * t / 2 + batch / 2) * 4;
            let n = q.normalised.take();
            let split = |n: &Option<Normalised>, f: fn(&Normalised) -> &String| n.as_ref().map(|n| f(n).clone()).unwrap_or_default();
            q.normalised = Some(Normalised {
                rule: FILL_RULE,
                cmaemu: x,
                linux: y,
                cmaemu_split: format!("{} (bound {bound} kB: stat_threshold {t}, batch {batch})", split(&n, |n| &n.cmaemu_split)),
                linux_split: split(&n, |n| &n.linux_split),
                same: (x - y).abs() <= bound,
            });
            continue;
        };
        if q.same() {
            continue;
        }
        let (dx, dy) = (x - ax, y - ay);
        q.normalised = Some(Normalised {
            rule: FILL_DELTA_RULE,
            cmaemu: dx,
            linux: dy,
            cmaemu_split: format!("{x} kB now, {ax} kB at {at}"),
            linux_split: format!("{y} kB now, {ay} kB at {at}"),
            same: dx == dy,
        });
    }
}

/// Compare the two transcripts of a case.
pub fn compare(case: &Case, emu: &Transcript, linux: &Transcript) -> CaseResult {
    let wmarks = case.bootargs.split_whitespace().any(|a| a.starts_with("sysctl.vm.min_free_kbytes="));
    let (a, b) = (views(emu, wmarks), views(linux, wmarks));
    let mut quantities: Vec<Quantity> = Vec::new();
    for (k, val) in &a.q {
        let mut q = Quantity { what: k.clone(), cmaemu: Some(val.clone()), linux: b.q.iter().find(|(bk, _)| bk == k).map(|(_, v)| v.clone()), normalised: None };
        if !q.raw_same() {
            q.normalised = cmafree_normalised(&q.what, &a.cmastat, &b.cmastat);
        }
        quantities.push(q);
    }
    for (k, val) in &b.q {
        if !a.q.iter().any(|(ak, _)| ak == k) {
            quantities.push(Quantity { what: k.clone(), cmaemu: None, linux: Some(val.clone()), normalised: None });
        }
    }
    fill_normalise(emu, &mut quantities, &a.cmastat, &b.cmastat);
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
        bootargs: case.bootargs.clone(),
        quantities,
        not_compared,
        wall_cmaemu: emu.wall,
        wall_linux: linux.wall,
        boot_cmaemu: emu.boot_wall,
        boot_linux: linux.boot_wall,
        transcripts: (emu.clone(), linux.clone()),
    }
}

/// The suite's report (markdown): cases, quantities, % identical, every
/// difference, what was not compared and why, wall times and ratios.
pub fn report(results: &[CaseResult], a: &LinuxAssets) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# cmaemu differential oracle\n");
    let _ = writeln!(s, "Real kernel: {} on {} -M vexpress-a9 (TCG); cmaemu: this build's guest kernel.\n", a.version, a.qemu.display());
    let _ = writeln!(s, "Wall times: whole case (boot + steps), and the steps alone after each system's first prompt. Both systems run at once, one thread each.\n");
    let _ = writeln!(s, "Identical: raw (as printed), or under a named normalisation (listed below with both raw values); the % counts both.\n");
    let _ = writeln!(s, "| case | quantities | identical | of which normalised | % | cmaemu s | QEMU+Linux s | QEMU/cmaemu | cmaemu steps s | QEMU steps s | steps QEMU/cmaemu |");
    let _ = writeln!(s, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let (mut tq, mut ti, mut tn) = (0, 0, 0);
    for r in results {
        let (q, i) = (r.quantities.len(), r.identical());
        let n = i - r.identical_raw();
        tq += q;
        ti += i;
        tn += n;
        let (ce, li) = (r.wall_cmaemu.as_secs_f64(), r.wall_linux.as_secs_f64());
        let (cs, ls) = (ce - r.boot_cmaemu.as_secs_f64(), li - r.boot_linux.as_secs_f64());
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {:.1} | {:.2} | {:.2} | {:.1}x | {:.2} | {:.2} | {:.1}x |",
            r.name,
            q,
            i,
            n,
            pct(i, q),
            ce,
            li,
            li / ce.max(1e-9),
            cs,
            ls,
            ls / cs.max(1e-9)
        );
    }
    let _ = writeln!(s, "| **all {}** | {} | {} | {} | {:.1} | | | | | | |\n", results.len(), tq, ti, tn, pct(ti, tq));
    let _ = writeln!(s, "Raw (as printed): {} of {} identical ({:.1} %); {} more identical under the named normalisation below.\n", ti - tn, tq, pct(ti - tn, tq), tn);
    let _ = writeln!(s, "## Identical under a named normalisation\n");
    let mut rules: Vec<&str> = Vec::new();
    for r in results {
        for q in r.quantities.iter().filter(|q| q.same() && !q.raw_same()) {
            let Some(n) = &q.normalised else { continue };
            if !rules.contains(&n.rule) {
                rules.push(n.rule);
            }
            let f = |v: &Option<String>| v.as_deref().unwrap_or("(absent)").to_string();
            let k = rules.iter().position(|x| *x == n.rule).unwrap_or(0) + 1;
            let val = if n.cmaemu == n.linux { format!("{} kB on both", n.linux) } else { format!("cmaemu {} kB / Linux {} kB", n.cmaemu, n.linux) };
            let _ = writeln!(s, "- {} {}: raw cmaemu `{}` / Linux `{}`; normalisation {k}: {val} (cmaemu {}; Linux {})", r.name, q.what, f(&q.cmaemu), f(&q.linux), n.cmaemu_split, n.linux_split);
        }
    }
    if rules.is_empty() {
        let _ = writeln!(s, "None.");
    }
    for (i, rule) in rules.iter().enumerate() {
        let _ = writeln!(s, "\nNormalisation {}: {rule}.", i + 1);
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "## Differences\n");
    let mut any = false;
    let (mut named, mut ndiff) = (0, 0);
    for r in results {
        let d: Vec<&Quantity> = r.quantities.iter().filter(|q| !q.same()).collect();
        if d.is_empty() {
            continue;
        }
        any = true;
        let _ = writeln!(s, "### {}\n", r.name);
        let causes = causes(r);
        for q in d {
            let f = |v: &Option<String>| v.as_deref().map(|x| format!("`{x}`")).unwrap_or_else(|| "(absent)".into());
            let _ = write!(s, "- {}: cmaemu {} / Linux {}", q.what, f(&q.cmaemu), f(&q.linux));
            if let Some(n) = &q.normalised {
                let _ = write!(s, " (normalised, {}: cmaemu {} kB = {}; Linux {} kB = {})", n.rule.split(" (").next().unwrap_or(""), n.cmaemu, n.cmaemu_split, n.linux, n.linux_split);
            }
            match causes.get(&q.what) {
                Some(c) => {
                    named += 1;
                    let _ = writeln!(s, ". Cause: {c}");
                }
                None => {
                    let _ = writeln!(s, ". Cause: not known");
                }
            }
            ndiff += 1;
        }
        let _ = writeln!(s);
    }
    if !any {
        let _ = writeln!(s, "None.\n");
    } else {
        let _ = writeln!(s, "{named} of {ndiff} differences have a named cause.\n");
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

/// `field:  N kB` of a meminfo text.
fn meminfo_kb(out: &str, field: &str) -> Option<i64> {
    let l = out.lines().find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))?;
    l[field.len() + 1..].trim().trim_end_matches("kB").trim().parse().ok()
}

/// The causes the report can name for a case's differing `CmaFree`s,
/// by quantity name. After a `fill`, `__rmqueue` takes movable pages
/// from CMA first while the zone's free CMA pages exceed half its free
/// pages (`NR_FREE_CMA_PAGES > NR_FREE_PAGES / 2`), so `CmaFree` ends
/// near `MemFree / 2` on a system the fill drove that far; `MemFree`
/// differs by the real kernel's own footprint, and so does `CmaFree`.
/// The first such difference is named so when one system shows the rule
/// (`CmaFree` within 0.5 % + 64 kB of `MemFree / 2`); later `CmaFree`
/// differences of the case follow from it (other pages in CMA to migrate
/// or to find free).
pub fn causes(r: &CaseResult) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let (emu, linux) = &r.transcripts;
    let mut first: Option<usize> = None;
    let mut filled = false;
    let min_free_kbytes = r.bootargs.split_whitespace().find_map(|a| a.strip_prefix("sysctl.vm.min_free_kbytes=")?.parse::<i64>().ok());
    for (i, (cmd, a)) in emu.steps.iter().enumerate() {
        if cmd.starts_with("fill ") {
            filled = true;
        }
        let what = format!("step {} `{}`: CmaFree", i + 1, cmd);
        let Some(q) = r.quantities.iter().find(|q| q.what == what) else { continue };
        if q.same() {
            continue;
        }
        if let Some(j) = first {
            out.insert(what, format!("follows from the difference at step {j} (other pages in CMA to migrate or to find free)"));
            continue;
        }
        let b = linux.steps.get(i).map(|(_, o)| o.as_str()).unwrap_or("");
        if let Some(c) = pcp_cause(&r.transcripts.0, i, q, min_free_kbytes) {
            out.insert(what, c);
            continue;
        }
        // the zone of the CMA pages: all of memory, or HighMem's part
        let side = |o: &str, f: &str| -> Option<(i64, i64)> { Some((meminfo_kb(o, f)?, meminfo_kb(o, "CmaFree")?)) };
        let balanced = |x: Option<(i64, i64)>| x.is_some_and(|(f, c)| f > 0 && (2 * c - f).abs() <= f / 100 + 128);
        let Some(field) = ["MemFree", "HighFree"].into_iter().find(|f| balanced(side(a, f)) || balanced(side(b, f))) else { continue };
        let (Some((fa, _)), Some((fb, _))) = (side(a, field), side(b, field)) else { continue };
        if filled {
            out.insert(
                what,
                format!(
                    "the real kernel's footprint through __rmqueue's CMA balance rule (CMA first while free CMA > half the zone's free pages): {field} cmaemu {fa} kB / Linux {fb} kB, CmaFree near {field}/2 on {}{}",
                    match (balanced(side(a, field)), balanced(side(b, field))) {
                        (true, true) => "both",
                        (true, false) => "cmaemu",
                        _ => "Linux",
                    },
                    if field == "HighFree" {
                        // the fill ran HighMem down to its watermark on both
                        "; HighMem was filled to its low watermark on both, and Debian's armmp build has CONFIG_HIGHPTE=y: the fill's user page tables (unmovable, one page per 2 MiB) come from HighMem on Linux and from lowmem on cmaemu (one per 1 MiB), so on Linux HighMem's free pages fall faster than its movable ones and the rule keeps handing out CMA (probable: not yet reproduced on the guest)"
                    } else {
                        ""
                    }
                ),
            );
            first = Some(i + 1);
        }
    }
    out
}

/// A `CmaFree` difference after CMA pages were released (and none
/// allocated since: `alloc_contig_range`'s `drain_all_pages` empties the
/// lists) that is smaller than the per-CPU list's `high`: released pages
/// go to the per-CPU list (`free_contig_range` → `free_unref_page`) and
/// are not counted free while parked there. How many stay parked follows
/// the list's count and `free_factor`, which the real kernel's own
/// order-0 allocations and frees between the steps (seq_file buffers,
/// slab, tty) move. `high` is the low watermark: 1.25 × `min_free_kbytes`
/// with `sysctl.vm.min_free_kbytes` (one lowmem zone), else it follows the
/// footprint's watermarks.
fn pcp_cause(emu: &Transcript, i: usize, q: &Quantity, min_free_kbytes: Option<i64>) -> Option<String> {
    let kb = |v: &Option<String>| v.as_deref()?.trim_end_matches("kB").trim().parse::<i64>().ok();
    let d = (kb(&q.cmaemu)? - kb(&q.linux)?).abs();
    let is_alloc = |c: &str| c.starts_with("echo 1 > /dev/cma_test") || c.starts_with("dma alloc");
    let is_release = |c: &str| c.starts_with("cat /dev/cma_test") || c.starts_with("dma free") || c.starts_with("free ");
    let last_alloc = emu.steps[..i].iter().rposition(|(c, _)| is_alloc(c));
    let last_release = emu.steps[..i].iter().rposition(|(c, _)| is_release(c))?;
    if last_alloc.is_some_and(|a| a > last_release) {
        return None;
    }
    match min_free_kbytes {
        Some(m) if d <= m * 5 / 4 => Some(format!(
            "released CMA pages parked on the per-CPU list (high = low watermark = {} kB here): how many stay there follows the list's count and free_factor, which the real kernel's own order-0 allocations and frees between the steps move ({d} kB)",
            m * 5 / 4
        )),
        None if d <= 8192 => Some(format!(
            "released CMA pages parked on the per-CPU list, whose high is the low watermark, which follows each kernel's managed pages (the real kernel's footprint; the case sets no sysctl.vm.min_free_kbytes) ({d} kB)"
        )),
        _ => None,
    }
}

fn pct(a: usize, b: usize) -> f64 {
    if b == 0 {
        100.0
    } else {
        100.0 * a as f64 / b as f64
    }
}
