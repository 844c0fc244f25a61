//! The cause finder in the booted guest (issue 13): a failed or retried
//! `cma_alloc` gets one `cmaemu:` console line per cause after Linux's own
//! lines, naming the page, the reason and the owner, and a `cma_cause`
//! trace event with the same fields; an allocation that succeeds on its
//! first try gets none.
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

/// `cmaemu boot ARGS` with `script` on stdin: (exit code, stdout lines).
mod common;

fn boot(args: &[&str], script: &str) -> (i32, Vec<String>) {
    let (code, lines, _) = boot_err(args, script);
    (code, lines)
}

/// [`boot`], and stderr.
fn boot_err(args: &[&str], script: &str) -> (i32, Vec<String>, String) {
    let args: Vec<&str> = ["boot"].into_iter().chain(args.iter().copied()).collect();
    let (code, out, err) = common::cli(&args, script);
    (code, out.replace('\r', "").lines().map(str::to_string).collect(), err)
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cmaemu-explain-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

fn jsonl(p: &PathBuf) -> Vec<Value> {
    std::fs::read_to_string(p).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn index_of(lines: &[String], pat: &str) -> usize {
    lines.iter().position(|l| l.contains(pat)).unwrap_or_else(|| panic!("no line contains {pat:?}:\n{}", lines.join("\n")))
}

/// The first pfn of `area` in hex, from the output of `cat
/// /sys/kernel/debug/cma/AREA/base_pfn` (decimal).
fn base_pfn(lines: &[String], area: &str) -> String {
    let at = index_of(lines, &format!("cat /sys/kernel/debug/cma/{area}/base_pfn"));
    format!("{:#x}", lines[at + 1].trim().parse::<u64>().unwrap_or_else(|_| panic!("base_pfn of {area}: {:?}", lines[at + 1])))
}

fn cause_lines(lines: &[String]) -> Vec<&String> {
    lines.iter().filter(|l| l.starts_with("cmaemu: cma_alloc ")).collect()
}

/// Linux 6.1's `dump_page()` lines (mm/debug.c) of `pfn`, each after
/// `cmaemu: `.
fn assert_dump(d: &[String], pfn: &str, index: u64, flags: &str, reason: &str) {
    let head = d[0].strip_prefix("cmaemu: page:").unwrap_or_else(|| panic!("{d:?}"));
    let (ptr, rest) = head.split_once(' ').unwrap();
    assert!(ptr.len() == 8 && ptr.chars().all(|c| c.is_ascii_hexdigit()), "%p of the page: {d:?}");
    assert!(rest.starts_with("refcount:") && rest.ends_with(&format!(" mapping:00000000 index:{index:#x} pfn:{pfn}")), "{d:?}");
    assert_eq!(d[1], format!("cmaemu: {flags}"));
    let raw: Vec<&str> = d[2].strip_prefix("cmaemu: raw: ").unwrap_or_else(|| panic!("{d:?}")).split(' ').collect();
    assert!(raw.len() == 8 && raw.iter().all(|w| w.len() == 8), "print_hex_dump of a 32-byte struct page: {d:?}");
    assert_eq!(d[3], format!("cmaemu: page dumped because: {reason}"));
}

/// The `pfn` of the first `inject` event named `what` in a JSON lines trace.
fn injected_pfn(evs: &[Value], what: &str) -> String {
    let e = evs.iter().find(|e| e["event"] == "inject" && e["injection"] == what).unwrap_or_else(|| panic!("no {what} injection fired"));
    format!("{:#x}", e["pfn"].as_u64().unwrap())
}

#[test]
fn a_pinned_page_is_named_with_its_task_and_va_and_a_clean_allocation_has_no_cause() {
    let trace = tmp("pinned.jsonl");
    let script = "fill 200 7\npin in 0x6d000 0x6e000\necho 4032 > /sys/kernel/debug/cma/reserved/alloc\nunpin\necho 4032 > /sys/kernel/debug/cma/reserved/alloc\npoweroff\n";
    let (code, lines) = boot(&["-m", "256M", "--append", "console=ttyAMA0 cma=16M", "--trace", trace.to_str().unwrap(), "--trace-format", "jsonl"], script);
    assert_eq!(code, 0, "{}", lines.join("\n"));
    // pin: pinned pfn 0x6d040 (va 0x09fdc000)
    let pin = &lines[index_of(&lines, "pin: pinned pfn ")];
    let words: Vec<&str> = pin.split_whitespace().collect();
    let (pfn, va) = (words[3], words[5].trim_end_matches(')'));
    let causes = cause_lines(&lines);
    assert_eq!(causes.len(), 1, "one cause for the failure, none for the allocation after unpin: {causes:?}");
    let c = causes[0];
    assert!(c.starts_with("cmaemu: cma_alloc reserved 4,032 pages failed (-16 EBUSY)"), "{c}");
    assert!(c.contains(&format!(": pfn {pfn} is pinned (refcount 2, mapcount 1")), "{c}");
    assert!(c.contains(&format!("mapped by task 1 (asid 1) at VA {va}")), "{c}");
    // after Linux's own lines, which are unchanged, and before the shell's
    let failed = index_of(&lines, "cma: cma_alloc: reserved: alloc failed, req-size: 4032 pages, ret: -16");
    let ours = index_of(&lines, "cmaemu: cma_alloc reserved");
    assert!(lines[failed + 1].contains("cma: number of available pages: 4032@64=> 4032 free of 4096 total pages"));
    assert_eq!(ours, failed + 2);
    // who pinned it: the command and the kernel function (from KALLSYMS)
    assert!(c.contains("; pinned by `pin in` in cmaemu_kernel::vm::pin_in (task 1, asid 1); migration cannot move it"), "{c}");
    // then Linux's dump_page() of that page, as alloc_contig_dump_pages()
    // prints it
    let vpn = u64::from_str_radix(va.trim_start_matches("0x"), 16).unwrap() >> 12;
    assert_dump(&lines[ours + 1..ours + 5], pfn, vpn, "anon flags: 0x80014(uptodate|lru|swapbacked|zone=0) CMA", "migration failure");
    // the shell says what the debugfs write returned, as Linux's shells do
    assert_eq!(lines[ours + 5], "sh: write error: Cannot allocate memory");
    // the trace event carries the same page
    let evs = jsonl(&trace);
    let pfn_n = u64::from_str_radix(pfn.trim_start_matches("0x"), 16).unwrap();
    let ce: Vec<&Value> = evs.iter().filter(|e| e["event"] == "cma_cause").collect();
    assert!(!ce.is_empty());
    assert!(ce.iter().all(|e| e["cause"] == "pinned" && e["pfn"] == pfn_n && e["name"] == "reserved" && e["count"] == 4032), "{ce:?}");
    assert!(ce.iter().any(|e| e["last"] == true && e["errorno"] == -16));
    assert!(ce.iter().all(|e| e["text"].as_str().unwrap().contains("is pinned")));
    // the first try ended in a busy retry: its time is the retried time
    let out = Command::new(env!("CARGO_BIN_EXE_cmaemu")).args(["trace", "summary", trace.to_str().unwrap()]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let row = text.lines().find(|l| l.contains(" reserved ") && l.contains(" -16 EBUSY ")).unwrap_or_else(|| panic!("{text}"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols[7], "1", "{row}");
    let retried: f64 = cols[13].parse().unwrap();
    let latency: f64 = cols[5].parse().unwrap();
    assert!(retried > 0.0 && retried < latency, "{row}");
}

#[test]
fn migration_out_of_target_memory_says_so_with_free_pages_vs_needed() {
    let trace = tmp("oot.jsonl");
    let script = "cat /sys/kernel/debug/cma/linux,cma/base_pfn\nfill 200\necho 16000 > /sys/kernel/debug/cma/linux,cma/alloc\npoweroff\n";
    let (code, lines) = boot(&["-m", "256M", "--trace", trace.to_str().unwrap(), "--trace-format", "jsonl"], script);
    assert_eq!(code, 0, "{}", lines.join("\n"));
    let causes = cause_lines(&lines);
    assert_eq!(causes.len(), 1, "{causes:?}");
    let c = causes[0];
    assert!(c.starts_with("cmaemu: cma_alloc linux,cma 16,000 pages failed (-12 ENOMEM), "), "{c}");
    assert!(c.contains("pages migrated: migration ran out of target memory: "), "{c}");
    let num = |after: &str, before: &str| -> u64 {
        let s = &c[c.find(after).unwrap_or_else(|| panic!("{after:?} in {c}")) + after.len()..];
        s[..s.find(before).unwrap()].replace(',', "").trim().parse().unwrap()
    };
    let migrated = num("(-12 ENOMEM), ", " pages migrated");
    let needed = num("target memory: ", " movable pages");
    let free = num("and only ", " pages are free outside the area");
    assert!(free < needed, "{c}");
    // per zone, adding up to the total
    let zones = &c[c.find("outside the area (").unwrap() + 18..];
    let zones = &zones[..zones.find(')').unwrap()];
    let per: u64 = zones.split(", ").map(|z| z.rsplit(' ').next().unwrap().replace(',', "").parse::<u64>().unwrap_or_else(|_| panic!("{zones}"))).sum();
    assert_eq!(per, free, "{c}");
    // and what to do, on the same line
    assert!(c.ends_with(&format!("; free at least {} more pages outside the area (or ask for fewer pages) and try again", cmaemu::explain::thousands(needed - free))), "{c}");
    // the migrated count is the sum of the allocation's mm_migrate_pages
    let evs = jsonl(&trace);
    let start = evs.iter().position(|e| e["event"] == "cma_alloc_start" && e["count"] == 16000).unwrap();
    let end = evs.iter().position(|e| e["event"] == "cma_alloc_finish" && e["count"] == 16000).unwrap();
    let sum: u64 = evs[start..end].iter().filter(|e| e["event"] == "mm_migrate_pages").map(|e| e["nr_succeeded"].as_u64().unwrap()).sum();
    assert_eq!(migrated, sum);
    assert!(migrated > 10_000, "{c}");
    // the first page still to move: in the area, never moved by this
    // allocation, a page of the fill (an anonymous page of task 1)
    let first = c[c.find("(first pfn 0x").unwrap() + 13..].split(')').next().unwrap().to_string();
    let first = u64::from_str_radix(&first, 16).unwrap();
    let base = u64::from_str_radix(base_pfn(&lines, "linux,cma").trim_start_matches("0x"), 16).unwrap();
    assert!(first >= base && first < base + 16384, "{first:#x} outside the area at {base:#x}: {c}");
    let moves = evs[start..end].iter().filter(|e| e["event"] == "migrate_page").count();
    assert_eq!(moves as u64, migrated, "one migrate_page event per page moved");
    assert!(!evs[start..end].iter().any(|e| e["event"] == "migrate_page" && e["old_pfn"] == first), "{first:#x} was moved: {c}");
    // Linux's own lines stay as they were, ours follow them
    let failed = index_of(&lines, "cma: cma_alloc: linux,cma: alloc failed, req-size: 16000 pages, ret: -12");
    assert_eq!(index_of(&lines, "cmaemu: cma_alloc linux,cma"), failed + 2);
    let ce: Vec<&Value> = evs.iter().filter(|e| e["event"] == "cma_cause").collect();
    assert_eq!(ce.len(), 1, "{ce:?}");
    assert_eq!(ce[0]["cause"], "out_of_targets");
    assert_eq!(ce[0]["pfn"], first);
    assert_eq!(ce[0]["migrated"], migrated);
    // trace summary: one row per allocation with its cause
    let out = Command::new(env!("CARGO_BIN_EXE_cmaemu")).args(["trace", "summary", trace.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let row = text.lines().find(|l| l.contains(" linux,cma ") && l.contains(" 16000 ")).unwrap_or_else(|| panic!("{text}"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    // alloc start_us area count align latency_us migrated retries errno... cause
    assert_eq!(&cols[2..5], &["linux,cma", "16000", "0"], "{row}");
    assert_eq!(cols[6], migrated.to_string(), "{row}");
    assert_eq!(cols[7], "0", "{row}");
    assert!(row.contains(" -12 ENOMEM  out_of_targets 0x"), "{row}");
    // where the time went: bitmap, isolate, drain, migrate, finish (µs)
    // add up to the latency; migration dominates; no busy retry
    let f = |i: usize| -> f64 { cols[i].parse().unwrap_or_else(|_| panic!("column {i} of {row}")) };
    let phases: f64 = (8..13).map(f).sum();
    assert!((phases - f(5)).abs() < 0.01, "phases {phases} vs latency {}: {row}", f(5));
    assert!(f(11) > 0.9 * f(5), "migration is most of it: {row}");
    assert_eq!(f(13), 0.0, "{row}");
    assert_eq!(cols[14], format!("{:.1}", migrated as f64 / 256.0), "MiB copied: {row}");
    let phases: Vec<&str> = evs.iter().filter(|e| e["event"] == "cma_alloc_phase").filter_map(|e| e["phase"].as_str()).collect();
    assert_eq!(&phases[..4], &["isolate", "drain", "migrate", "finish"]);
}

#[test]
fn too_large_and_fragmented_requests_and_no_cause_for_a_clean_allocation() {
    let trace = tmp("frag.ftrace");
    let script = "cat /sys/kernel/debug/cma/linux,cma/base_pfn\necho 20000 > /sys/kernel/debug/cma/linux,cma/alloc\necho 16000 > /sys/kernel/debug/cma/linux,cma/alloc\necho 1000 > /sys/kernel/debug/cma/linux,cma/alloc\npoweroff\n";
    let (code, lines) = boot(&["-m", "256M", "--trace", trace.to_str().unwrap(), "--trace-format", "ftrace"], script);
    assert_eq!(code, 0, "{}", lines.join("\n"));
    let causes = cause_lines(&lines);
    assert_eq!(causes.len(), 2, "none for the 16000 pages that fit at once: {causes:?}");
    assert_eq!(causes[0], "cmaemu: cma_alloc linux,cma 20,000 pages failed (-12 ENOMEM): the request (20,000 pages) is larger than the whole area (16,384 pages)");
    // 16384 - 64 (the boot-time atomic pool, first) - 16000 = 320 pages
    // left at the end: where, from the area's base_pfn and the 16000-page
    // allocation's cma_alloc_finish
    let base = u64::from_str_radix(base_pfn(&lines, "linux,cma").trim_start_matches("0x"), 16).unwrap();
    let ft = std::fs::read_to_string(&trace).unwrap();
    let got = ft.lines().find(|l| l.contains(": cma_alloc_finish: ") && l.contains(" count=16000 ")).unwrap_or_else(|| panic!("no 16000-page cma_alloc_finish"));
    let pfn = u64::from_str_radix(got.split("pfn=0x").nth(1).unwrap().split_whitespace().next().unwrap(), 16).unwrap();
    assert_eq!(pfn, base + 64, "{got}");
    assert_eq!(
        causes[1],
        &format!("cmaemu: cma_alloc linux,cma 1,000 pages failed (-12 ENOMEM): no free run of 1,000 pages in the bitmap: the largest is 320 pages at pfn {:#x} (320 pages free in all: fragmented)", pfn + 16000)
    );
    let ev: Vec<&str> = ft.lines().filter(|l| l.contains(": cmaemu_cma_cause: ")).collect();
    assert_eq!(ev.len(), 2, "{ev:?}");
    assert!(ev[0].contains("name=linux,cma count=20000 align=0 retries=0 last=1 ret=-12 migrated=0 cause=too_large text=\"the request"), "{}", ev[0]);
    assert!(ev[1].contains(&format!("cause=fragmented pfn={:#x} ", pfn + 16000)), "{}", ev[1]);
    // the allocation that got as far as alloc_contig_range went through its
    // phases; the ones the bitmap refused did not
    let ph: Vec<&str> = ft.lines().filter_map(|l| l.split(": cmaemu_cma_alloc_phase: ").nth(1)).collect();
    assert_eq!(ph, ["phase=isolate", "phase=drain", "phase=migrate", "phase=finish"]);
}

#[test]
fn several_causes_are_listed_most_decisive_first() {
    // leak_isolation leaves the area's first pageblock isolated at boot: the
    // allocation fails at isolation (nothing migrates), and the pinned page
    // would have stopped it too
    let trace = tmp("multi.json");
    let script = "cat /sys/kernel/debug/cma/reserved/base_pfn\nfill 200 7\npin in 0x6d000 0x6e000\necho 4032 > /sys/kernel/debug/cma/reserved/alloc\npoweroff\n";
    let (_code, lines) = boot(
        &["-m", "256M", "--on-violation", "warn", "--append", "console=ttyAMA0 cma=16M cmaemu.inject=leak_isolation", "--trace", trace.to_str().unwrap()],
        script,
    );
    let pin = &lines[index_of(&lines, "pin: pinned pfn ")];
    let pfn = pin.split_whitespace().nth(3).unwrap().to_string();
    // the area's first pageblock (where the boot-time allocation was)
    let base = base_pfn(&lines, "reserved");
    let causes = cause_lines(&lines);
    assert_eq!(causes.len(), 2, "{causes:?}");
    assert!(causes[0].ends_with(&format!(": pageblock at pfn {base} could not be isolated: it is already MIGRATE_ISOLATE (another isolation holds it)")), "{}", causes[0]);
    assert!(causes[1].contains(&format!(": pfn {pfn} is pinned (refcount 2, mapcount 1")), "{}", causes[1]);
    // Perfetto: instants with the cause's fields as args
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&trace).unwrap()).unwrap();
    let inst: Vec<&Value> = doc["traceEvents"].as_array().unwrap().iter().filter(|e| e["name"].as_str().is_some_and(|n| n.starts_with("cma cause: "))).collect();
    assert!(inst.iter().any(|e| e["ph"] == "i" && e["args"]["cause"] == "not_isolated" && e["args"]["pfn"] == base.as_str()), "{inst:?}");
    assert!(inst.iter().any(|e| e["args"]["cause"] == "pinned" && e["args"]["pfn"] == pfn.as_str() && e["args"]["area"] == "reserved"), "{inst:?}");
}

#[test]
fn a_pin_taken_by_the_pin_command_in_another_task_and_area_names_its_origin() {
    // task 1 fills memory so that task 2's pages come from the camera's
    // CMA area at the top of RAM; task 2 pins 4 of them
    let script = "fill 200 3\ntask new\nfill 1\npin 4\necho 8000 > /sys/kernel/debug/cma/camera-cma/alloc\npoweroff\n";
    let (code, lines) = boot(&["-m", "256M"], script);
    assert_eq!(code, 0, "{}", lines.join("\n"));
    // pin: 4 pages pinned (first at va 0x00400000, pfn 0x6fe67)
    let pin = &lines[index_of(&lines, "pin: 4 pages pinned")];
    let pfn = pin.rsplit("pfn ").next().unwrap().trim_end_matches(')').to_string();
    let va = pin.split("first at va ").nth(1).unwrap().split(',').next().unwrap().to_string();
    let causes = cause_lines(&lines);
    assert!(!causes.is_empty() && causes.len() <= 4, "{causes:?}");
    let c = causes[0];
    assert!(c.starts_with("cmaemu: cma_alloc camera-cma 8,000 pages failed (-16 EBUSY) after "), "{c}");
    assert!(c.contains(&format!(": pfn {pfn} is pinned (refcount 2, mapcount 1: 1 reference(s) no mapping accounts for) — mapped by task 2 (asid 2) at VA {va}; pinned by `pin` in cmaemu_kernel::vm::pin (task 2, asid 2); ")), "{c}");
    assert!(causes.iter().all(|l| l.contains(" is pinned ") && l.contains("pinned by `pin` in cmaemu_kernel::vm::pin (task 2")), "{causes:?}");
    let at = index_of(&lines, c);
    let vpn = u64::from_str_radix(va.trim_start_matches("0x"), 16).unwrap() >> 12;
    assert_dump(&lines[at + 1..at + 5], &pfn, vpn, "anon flags: 0x80014(uptodate|lru|swapbacked|zone=0) CMA", "migration failure");
}

#[test]
fn a_page_left_in_the_lru_batch_is_named_in_two_workloads() {
    // skip_lru_drain: lru_cache_disable() without draining; the last pages
    // `fill` mapped stay in the batch, at the top of RAM (the camera area)
    for (n, fill) in ["fill 200 3", "fill 190 3"].iter().enumerate() {
        let trace = tmp(&format!("lru{n}.jsonl"));
        let script = format!("{fill}\necho 8000 > /sys/kernel/debug/cma/camera-cma/alloc\npoweroff\n");
        let (code, lines) = boot(
            &["-m", "256M", "--on-violation", "warn", "--append", "console=ttyAMA0 cmaemu.inject=skip_lru_drain", "--trace", trace.to_str().unwrap(), "--trace-format", "jsonl"],
            &script,
        );
        assert_eq!(code, 0, "{}", lines.join("\n"));
        let evs = jsonl(&trace);
        let first = injected_pfn(&evs, "skip_lru_drain");
        let causes = cause_lines(&lines);
        assert!(!causes.is_empty(), "{fill}: {}", lines.join("\n"));
        let c = causes[0];
        assert!(c.starts_with("cmaemu: cma_alloc camera-cma 8,000 pages failed (-16 EBUSY) after "), "{fill}: {c}");
        // its owner: the shell's task, at a VA of what `fill` mapped
        // (`fill: 38400 pages mapped at 0x00400000-0x09a00000`)
        let owner = format!(": pfn {first} sits in the LRU add batch (refcount 2, mapcount 1) — mapped by task 1 (asid 1) at VA 0x");
        assert!(c.contains(&owner), "{fill}: {c}");
        let va = u64::from_str_radix(&c[c.find(&owner).unwrap() + owner.len()..][..8], 16).unwrap();
        let mapped = lines[index_of(&lines, "fill: ")].rsplit(' ').next().unwrap().to_string();
        let (lo, hi) = mapped.split_once('-').unwrap();
        let (lo, hi) = (u64::from_str_radix(&lo[2..], 16).unwrap(), u64::from_str_radix(&hi[2..], 16).unwrap());
        assert!(va >= lo && va < hi && va % 4096 == 0, "{fill}: VA {va:#x} outside {mapped}: {c}");
        assert!(c.contains(&format!("{owner}{va:08x}: not on the LRU, so not isolated for migration (lru_add_drain missed)")), "{fill}: {c}");
        let at = index_of(&lines, c);
        assert_eq!(lines[at + 4], "cmaemu: page dumped because: migration failure", "{fill}");
        // not on the LRU yet: no `lru` flag
        assert_eq!(lines[at + 2], "cmaemu: anon flags: 0x80004(uptodate|swapbacked|zone=0) CMA", "{fill}");
        let ce: Vec<&Value> = evs.iter().filter(|e| e["event"] == "cma_cause" && e["last"] == true).collect();
        assert!(ce.iter().any(|e| e["cause"] == "lru_batch"), "{fill}: {ce:?}");
    }
}

#[test]
fn a_cma_pageblock_that_lost_its_type_is_named() {
    // wrong_migratetype retypes the area's first pageblock Movable at boot:
    // every try at that range fails before anything migrates
    let script = "cat /sys/kernel/debug/cma/linux,cma/base_pfn\ntask new\ntask new\nfill 8\necho 16000 > /sys/kernel/debug/cma/linux,cma/alloc\npoweroff\n";
    let (code, lines) = boot(&["-m", "256M", "--on-violation", "warn", "--append", "console=ttyAMA0 cmaemu.inject=wrong_migratetype"], script);
    assert_eq!(code, 0, "{}", lines.join("\n"));
    let causes = cause_lines(&lines);
    assert_eq!(causes.len(), 1, "the movable pages left behind are its consequence, not causes: {causes:?}");
    assert!(causes[0].starts_with("cmaemu: cma_alloc linux,cma 16,000 pages failed (-16 EBUSY) after "), "{}", causes[0]);
    let base = base_pfn(&lines, "linux,cma");
    assert!(causes[0].contains(&format!(": pageblock at pfn {base} of the CMA area has migrate type Movable, not CMA (a CMA pageblock must keep MIGRATE_CMA)")), "{}", causes[0]);
}

#[test]
fn a_scenario_file_asserts_the_cause_and_a_wrong_one_fails_naming_what_was_found() {
    let dir = tmp("scenarios");
    std::fs::create_dir_all(&dir).unwrap();
    let body = |want: &str| {
        format!(
            "[board]\nram = \"256M\"\nbootargs = \"console=ttyAMA0 cma=16M\"\n\n[[step]]\nsend = \"fill 200 7\"\n\n[[step]]\nsend = \"pin in 0x6d000 0x6e000\"\n\n[[step]]\nsend = \"echo 4032 > /sys/kernel/debug/cma/reserved/alloc\"\nexpect_cause = {want}\n"
        )
    };
    let run = |f: &PathBuf, extra: &[&str]| Command::new(env!("CARGO_BIN_EXE_cmaemu")).arg("test").args(extra).arg(f).output().unwrap();
    // the wrong cause fails, naming the pinned page: the one the guest's
    // console says `pin in` pinned (from the run's saved console)
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, body("\"out_of_targets\"")).unwrap();
    let out = dir.join("out");
    let o = run(&bad, &["--trace-dir", out.to_str().unwrap()]);
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.status.code(), Some(1), "{text}");
    let console = std::fs::read_to_string(out.join("bad.console")).unwrap().replace('\r', "");
    let lines: Vec<String> = console.lines().map(str::to_string).collect();
    // pin: pinned pfn 0x6d040 (va 0x09fdc000)
    let pfn = lines[index_of(&lines, "pin: pinned pfn ")].split_whitespace().nth(3).unwrap().to_string();
    assert!(text.contains(&format!("step 3 (line 11): expected cause \"out_of_targets\" for the step's allocations; found pinned {pfn}")), "{text}");
    // the right kind and page pass; the right kind at another page fails
    let ok = dir.join("ok.toml");
    std::fs::write(&ok, body(&format!("[\"pinned\", \"pinned {pfn}\"]"))).unwrap();
    let o = run(&ok, &[]);
    assert_eq!(o.status.code(), Some(0), "{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let other = u32::from_str_radix(pfn.trim_start_matches("0x"), 16).unwrap() + 1;
    let near = dir.join("near.toml");
    std::fs::write(&near, body(&format!("\"pinned {other:#x}\""))).unwrap();
    let o = run(&near, &[]);
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(text.contains(&format!("expected cause \"pinned {other:#x}\" for the step's allocations; found pinned {pfn}")), "{text}");
}

/// `preview: N frames shown (last camera frame L), V vsyncs, R repeated,
/// D camera frames dropped` as (N, R, D).
fn preview_counts(lines: &[String]) -> (u64, u64, u64) {
    let l = &lines[index_of(lines, "preview: ")];
    let w: Vec<&str> = l.split(|c: char| c == ' ' || c == ',' || c == ')').filter(|w| !w.is_empty()).collect();
    let n = |after: &str| -> u64 { w[w.iter().rposition(|x| *x == after).unwrap_or_else(|| panic!("{after:?} in {l}")) - 1].parse().unwrap_or_else(|_| panic!("{after:?} in {l}")) };
    assert!(l.ends_with(" camera frames dropped"), "{l}");
    (w[1].parse().unwrap(), n("repeated"), n("camera"))
}

/// `frames_repeated` and `camera_frames_dropped` of `--stats`.
fn stats_counts(err: &str) -> (u64, u64) {
    let l = err.lines().find(|l| l.starts_with("cmaemu: stats: ")).unwrap_or_else(|| panic!("no stats line: {err}"));
    let v = |k: &str| -> u64 { l.split(' ').find_map(|w| w.strip_prefix(k)).unwrap_or_else(|| panic!("{k} in {l}")).parse().unwrap() };
    (v("frames_repeated="), v("camera_frames_dropped="))
}

/// `cmaemu trace summary FILE`'s display table (from its `display:` line).
fn display_table(trace: &PathBuf) -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_cmaemu")).args(["trace", "summary", trace.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).lines().skip_while(|l| !l.starts_with("display: ")).map(str::to_string).collect()
}

#[test]
fn preview_stutter_is_blamed_on_the_allocation_that_held_it_back_and_a_clean_preview_has_none() {
    // clean: nothing else runs
    let clean = tmp("preview-clean.jsonl");
    let (code, lines, err) = boot_err(&["-m", "256M", "--stats", "--trace", clean.to_str().unwrap(), "--trace-format", "jsonl"], "preview 30\npoweroff\n");
    assert_eq!(code, 0, "{}", lines.join("\n"));
    let t = display_table(&clean);
    assert_eq!(t.first().map(String::as_str), Some("display: 30 frames shown, 0 repeated, 0 camera frames dropped"), "{t:?}");
    assert_eq!(t.len(), 1, "{t:?}");
    // preview and --stats say the same
    assert_eq!(preview_counts(&lines), (30, 0, 0), "{}", lines.join("\n"));
    assert_eq!(stats_counts(&err), (0, 0), "{err}");
    // under a stress job whose CMA allocations migrate much of a 150 MiB fill
    let busy = tmp("preview-stress.jsonl");
    let script = "fill 150 1\nstress 2 1 &\npreview 60\npoweroff\n";
    let (code, lines, err) = boot_err(&["-m", "256M", "--stats", "--trace", busy.to_str().unwrap(), "--trace-format", "jsonl"], script);
    assert_eq!(code, 0, "{}", lines.join("\n"));
    let t = display_table(&busy);
    assert!(t[0].starts_with("display: ") && !t[0].contains(" 0 camera frames dropped"), "{t:?}");
    // the preview line and --stats count the same repeats and drops as the
    // trace's display table
    let (shown, repeated, dropped) = preview_counts(&lines);
    assert_eq!(shown, 60);
    assert!(dropped > 0, "{}", lines.join("\n"));
    // (the table counts vsyncs that showed a camera frame: repeats too)
    assert_eq!(t[0], format!("display: {} frames shown, {repeated} repeated, {dropped} camera frames dropped", shown + repeated));
    assert_eq!(stats_counts(&err), (repeated, dropped), "{err}");
    let blamed: Vec<&String> = t.iter().filter(|l| l.contains("  cma_alloc linux,cma ")).collect();
    assert!(blamed.iter().any(|l| l.contains(" drop ")), "a dropped frame blamed on an allocation: {t:?}");
    // the allocation it names is in the trace, started before that vsync
    let evs = jsonl(&busy);
    for l in blamed {
        let cols: Vec<&str> = l.split_whitespace().collect();
        let vsync_ns = (cols[1].parse::<f64>().unwrap() * 1e3).round() as u64;
        let count: u64 = cols[cols.iter().position(|c| *c == "pages").unwrap() - 1].parse().unwrap();
        let start_ns = (cols[cols.len() - 2].trim_start_matches('@').parse::<f64>().unwrap() * 1e3).round() as u64;
        assert!(start_ns < vsync_ns, "{l}");
        assert!(evs.iter().any(|e| e["event"] == "cma_alloc_start" && e["count"] == count && e["ts_ns"].as_u64().is_some_and(|t| t.abs_diff(start_ns) <= 1)), "{l}");
    }
}

/// The `pfn`s of every `inject` event named `what` in a JSON lines trace.
fn injected_pfns(evs: &[Value], what: &str) -> Vec<String> {
    evs.iter().filter(|e| e["event"] == "inject" && e["injection"] == what).map(|e| format!("{:#x}", e["pfn"].as_u64().unwrap())).collect()
}

/// The pfn a cause line names (`...: pfn 0x6f000 is ...`).
fn cause_pfn(line: &str) -> String {
    let at = line.find(": pfn ").unwrap_or_else(|| panic!("no pfn in {line}")) + 6;
    line[at..].split_whitespace().next().unwrap().to_string()
}

#[test]
fn a_page_under_dma_by_the_camera_is_named_with_the_device_task_and_pin_site() {
    // the camera streams into 4 of the shell's pages in the default area
    // (USERPTR: pinned and mapped for the device) while the stress job's
    // cma_alloc of 1,024 pages in that area runs into them
    let trace = tmp("device.jsonl");
    let script = "fill 200 3\nstress 1 &\ncapture 1000 in 0x6a040 0x6a440\npoweroff\n";
    let (code, lines) = boot(&["-m", "256M", "--trace", trace.to_str().unwrap(), "--trace-format", "jsonl"], script);
    assert_eq!(code, 0, "{}", lines.join("\n"));
    assert!(lines.iter().any(|l| l.starts_with("capture: 1000 frames of 512 bytes into 4 user pages")), "{}", lines.join("\n"));
    let evs = jsonl(&trace);
    // the camera's buffers: the capture's one-page dma_alloc records
    let camera: Vec<String> =
        evs.iter().filter(|e| e["event"] == "dma_alloc" && e["device"] == "camera" && e["count"] == 1).map(|e| format!("{:#x}", e["pfn"].as_u64().unwrap())).collect();
    assert_eq!(camera.len(), 4, "{camera:?}");
    let causes = cause_lines(&lines);
    assert!(!causes.is_empty(), "{}", lines.join("\n"));
    for c in &causes {
        assert!(c.starts_with("cmaemu: cma_alloc linux,cma 1,024 pages succeeded after "), "{c}");
        let pfn = cause_pfn(c);
        assert!(camera.contains(&pfn), "{pfn} is not one of the camera's pages {camera:?}: {c}");
        assert!(c.contains(" is pinned (refcount 2, mapcount 1: 1 reference(s) no mapping accounts for) — mapped by task 1 (asid 1) at VA 0x"), "{c}");
        assert!(c.contains(", held for DMA by camera; pinned by `capture` in cmaemu_kernel::video::capture_userptr (task 1, asid 1); "), "{c}");
    }
    // every camera page is named, and the trace calls it a device's
    let named: Vec<String> = causes.iter().map(|c| cause_pfn(c)).collect();
    assert!(camera.iter().all(|p| named.contains(p)), "{camera:?} vs {named:?}");
    let ce: Vec<&Value> = evs.iter().filter(|e| e["event"] == "cma_cause").collect();
    assert!(!ce.is_empty() && ce.iter().all(|e| e["cause"] == "device" && camera.contains(&e["pfn"].as_str().map(str::to_string).unwrap_or_else(|| format!("{:#x}", e["pfn"].as_u64().unwrap())))), "{ce:?}");
}

#[test]
fn a_page_left_behind_by_a_stale_reverse_map_is_named_not_migrated_with_its_task() {
    // skip_remap: the first allocation's migrations leave each new page's
    // PTE unset while the reverse map moves to it; many new pages land in
    // the camera's area, and an allocation there cannot unmap them
    let trace = tmp("notmig.jsonl");
    let script = "fill 200 3\necho 2000 > /sys/kernel/debug/cma/linux,cma/alloc\necho 8150 > /sys/kernel/debug/cma/camera-cma/alloc\npoweroff\n";
    let (code, lines) = boot(&["-m", "256M", "--on-violation", "warn", "--append", "console=ttyAMA0 cmaemu.inject=skip_remap", "--trace", trace.to_str().unwrap(), "--trace-format", "jsonl"], script);
    assert_eq!(code, 0, "{}", lines.join("\n"));
    let evs = jsonl(&trace);
    let moved_to = injected_pfns(&evs, "skip_remap");
    assert_eq!(moved_to.len(), 2000);
    let causes = cause_lines(&lines);
    assert_eq!(causes.len(), 1, "the first allocation migrates without a retry: {causes:?}");
    let c = causes[0];
    assert!(c.starts_with("cmaemu: cma_alloc camera-cma 8,150 pages failed (-16 EBUSY) after "), "{c}");
    let pfn = cause_pfn(c);
    assert!(moved_to.contains(&pfn), "{pfn}: not a page the injected migration left unmapped: {c}");
    assert!(
        c.contains(&format!(": pfn {pfn} is a movable page of task 1 (asid 1) that was not migrated (refcount 1, mapcount 1): 0 page table entries map it where its mapcount says 1 — a stale reverse map, so try_to_migrate cannot unmap it and every pass fails (and ")),
        "{c}"
    );
    let at = index_of(&lines, c);
    assert_dump(&lines[at + 1..at + 5], &pfn, 0, "anon flags: 0x80014(uptodate|lru|swapbacked|zone=0) CMA", "migration failure");
    let ce: Vec<&Value> = evs.iter().filter(|e| e["event"] == "cma_cause" && e["last"] == true).collect();
    assert_eq!(ce.len(), 1, "{ce:?}");
    assert_eq!(ce[0]["cause"], "not_migrated");
}

#[test]
fn a_page_held_by_a_leaked_reference_is_named_unmovable_with_its_last_owner() {
    // missed_put_page: `free 1` unmaps the fill's top pages (in the camera's
    // area) and forgets one put_page: that frame keeps a reference nobody
    // holds, off the LRU, and migration cannot isolate it
    let trace = tmp("leak.jsonl");
    let script = "fill 200 3\nfree 1\necho 8150 > /sys/kernel/debug/cma/camera-cma/alloc\npoweroff\n";
    let (code, lines) = boot(&["-m", "256M", "--on-violation", "warn", "--append", "console=ttyAMA0 cmaemu.inject=missed_put_page", "--trace", trace.to_str().unwrap(), "--trace-format", "jsonl"], script);
    assert_eq!(code, 0, "{}", lines.join("\n"));
    let evs = jsonl(&trace);
    let leaked = injected_pfn(&evs, "missed_put_page");
    let causes = cause_lines(&lines);
    assert_eq!(causes.len(), 1, "{causes:?}");
    let c = causes[0];
    assert!(c.starts_with("cmaemu: cma_alloc camera-cma 8,150 pages failed (-16 EBUSY) after "), "{c}");
    assert!(
        c.contains(&format!(": pfn {leaked} is not movable: it belongs to nobody: 1 reference(s) that no mapping, pin or LRU list accounts for (a leaked reference: migration cannot isolate it); its owner tag says task 1 (asid 1), which no longer maps it")),
        "{c}"
    );
    let at = index_of(&lines, c);
    assert_dump(&lines[at + 1..at + 5], &leaked, 0, "anon flags: 0x80004(uptodate|swapbacked|zone=0) CMA", "unmovable page");
    let ce: Vec<&Value> = evs.iter().filter(|e| e["event"] == "cma_cause" && e["last"] == true).collect();
    assert!(ce.iter().any(|e| e["cause"] == "unmovable"), "{ce:?}");
}

#[test]
fn a_per_cpu_page_left_in_the_range_by_a_missed_drain_is_named_with_who_holds_it_now_and_caught() {
    // skip_pcp_drain: alloc_contig_range leaves out drain_all_pages. Task 0
    // fills memory into the camera's area, task 1 maps 1 MiB above it,
    // task 0 frees its frames in the area (the last freed stay on the
    // per-CPU list); task 1's pages then migrate, and the first targets
    // come from that list: pages inside the isolated range, below the
    // migration scan, so the range is busy (as in 6.1: neither
    // rmqueue_pcplist nor alloc_migration_target looks at the pageblock)
    let trace = tmp("pcp.jsonl");
    let script = "cat /sys/kernel/debug/cma/camera-cma/base_pfn\nfill 200 3\ntask new\ntask 1\nfill 1 5\ntask 0\nfree 200 out 0 0x6e000\ntask 1\necho 8100 > /sys/kernel/debug/cma/camera-cma/alloc\ncheck\npoweroff\n";
    let (code, lines, err) = boot_err(&["-m", "256M", "--on-violation", "warn", "--append", "console=ttyAMA0 cmaemu.inject=skip_pcp_drain", "--trace", trace.to_str().unwrap(), "--trace-format", "jsonl"], script);
    assert_eq!(code, 0, "{}", lines.join("\n"));
    // the frames freed are those of the camera's area (its base from the run)
    let base = base_pfn(&lines, "camera-cma");
    assert_eq!(base, "0x6e000", "the script frees task 0's frames from the area's base");
    let base = u64::from_str_radix(base.trim_start_matches("0x"), 16).unwrap();
    assert!(lines.iter().any(|l| l.contains("pages ok")), "task 1's pages moved intact: {}", lines.join("\n"));
    let evs = jsonl(&trace);
    // the guest's word on what the first try left on the lists: the lowest
    // block and how many pages
    let inj = evs.iter().find(|e| e["event"] == "inject" && e["injection"] == "skip_pcp_drain").expect("skip_pcp_drain never fired");
    let (lowest, left) = (inj["pfn"].as_u64().unwrap(), inj["arg"].as_u64().unwrap());
    // the first try is busy, the second (one page on) succeeds
    let retry = evs.iter().find(|e| e["event"] == "cma_alloc_busy_retry").expect("no busy retry");
    assert_eq!(retry["pfn"].as_u64(), Some(base));
    let fin = evs.iter().find(|e| e["event"] == "cma_alloc_finish").unwrap();
    assert_eq!((fin["errorno"].as_i64(), fin["pfn"].as_u64()), (Some(0), Some(base + 1)));
    // the moves of the first try whose new frame lies inside its range
    // (before its busy retry): the per-CPU pages handed out as targets
    let retry_ts = retry["ts_ns"].as_u64().unwrap();
    let mut into: Vec<(u64, u64, u64)> = evs
        .iter()
        .filter(|e| e["event"] == "migrate_page" && e["ts_ns"].as_u64().unwrap() < retry_ts)
        .map(|e| (e["new_pfn"].as_u64().unwrap(), e["asid"].as_u64().unwrap(), e["vas"][0].as_u64().unwrap()))
        .filter(|&(n, _, _)| n >= base && n < base + 8100)
        .collect();
    into.sort();
    assert!(!into.is_empty() && into.len() as u64 <= left && into[0].0 >= lowest, "{into:x?} vs {left} pages from {lowest:#x}");
    // the blocks still on the list when the range was found busy: what the
    // guest says it left at the second try (from the first still there)
    let inj2 = evs.iter().filter(|e| e["event"] == "inject" && e["injection"] == "skip_pcp_drain").nth(1).expect("the second try left none");
    let (still, still_n) = (inj2["pfn"].as_u64().unwrap(), inj2["arg"].as_u64().unwrap());
    assert_eq!(into.len() as u64 + still_n, left, "every block the first try left was either handed out or is still listed");
    let causes = cause_lines(&lines);
    assert_eq!(causes.len(), 8, "{causes:?}");
    let head = "cmaemu: cma_alloc camera-cma 8,100 pages succeeded after 1 busy retry, ";
    for (c, &(pfn, asid, va)) in causes[..4].iter().zip(&into) {
        assert!(c.starts_with(head), "{c}");
        assert!(
            c.contains(&format!(": pfn {pfn:#x} (order 0) was on a per-CPU free list inside the isolated range when migration began (drain_all_pages missed it) and was handed out as a migration target — mapped by task 2 (asid {asid}) at VA {va:#010x}")),
            "{c}"
        );
    }
    assert!(causes[3].ends_with(&format!(" (and {} more per-CPU blocks)", into.len() - 4)), "{} (moves into the range: {})", causes[3], into.len());
    let listed: Vec<u64> = causes[4..].iter().map(|c| u64::from_str_radix(cause_pfn(c).trim_start_matches("0x"), 16).unwrap()).collect();
    assert_eq!(listed[0], still, "{causes:?}");
    assert!(listed.windows(2).all(|w| w[0] < w[1]) && listed.iter().all(|p| !into.iter().any(|m| m.0 == *p)), "{listed:x?}");
    for c in &causes[4..] {
        assert!(c.starts_with(head) && c.contains(" (order 0) sits on a per-CPU free list, not in the buddy (drain_all_pages missed it)"), "{c}");
    }
    assert!(causes[7].ends_with(&format!(" (and {} more per-CPU blocks)", still_n - 4)), "{}", causes[7]);
    // Linux's dump_page() of the first: task 1's page, on the LRU now
    let at = index_of(&lines, causes[0]);
    assert_dump(&lines[at + 1..at + 5], &format!("{:#x}", into[0].0), into[0].2 >> 12, "anon flags: 0x80014(uptodate|lru|swapbacked|zone=0) CMA", "migration failure");
    // the verifier, from the host's own scan at the migrate phase: the
    // lowest block and as many blocks as the guest says it left
    assert!(err.contains(&format!("migrate.pcp_drain pfn={lowest:#x}: block {lowest:#x} (order 0) and {} more block(s) on a per-CPU free list inside the range", left - 1)), "{err}");
    let v: Vec<&Value> = evs.iter().filter(|e| e["event"] == "violation").collect();
    assert!(!v.is_empty() && v.iter().all(|e| e["violation"]["check"] == "migrate.pcp_drain"), "{v:?}");
    let ce: Vec<&Value> = evs.iter().filter(|e| e["event"] == "cma_cause").collect();
    assert_eq!(ce.iter().map(|e| e["cause"].as_str().unwrap()).collect::<Vec<_>>(), ["pcp_taken"; 4].iter().chain(&["pcp_list"; 4]).copied().collect::<Vec<_>>(), "{ce:?}");
    assert_eq!(ce[..4].iter().map(|e| e["pfn"].as_u64().unwrap()).collect::<Vec<_>>(), into.iter().take(4).map(|m| m.0).collect::<Vec<_>>());
    assert_eq!(ce[4..].iter().map(|e| e["pfn"].as_u64().unwrap()).collect::<Vec<_>>(), listed);
}

#[test]
fn a_page_table_in_a_cma_pageblock_is_named_with_its_task_and_va_range_and_caught() {
    // pgtable_movable: the L2 page tables are allocated with a movable gfp
    // (a mis-flagged allocation), so some come from CMA pageblocks; an
    // allocation over the area fails on them
    let trace = tmp("pgtable.jsonl");
    let script = "cat /sys/kernel/debug/cma/camera-cma/base_pfn\ncat /sys/kernel/debug/cma/camera-cma/count\nfill 200 3\necho 8192 > /sys/kernel/debug/cma/camera-cma/alloc\npoweroff\n";
    let (code, lines, err) = boot_err(&["-m", "256M", "--on-violation", "warn", "--append", "console=ttyAMA0 cmaemu.inject=pgtable_movable", "--trace", trace.to_str().unwrap(), "--trace-format", "jsonl"], script);
    assert_eq!(code, 0, "{}", lines.join("\n"));
    let base = u64::from_str_radix(base_pfn(&lines, "camera-cma").trim_start_matches("0x"), 16).unwrap();
    let count: u64 = lines[index_of(&lines, "cat /sys/kernel/debug/cma/camera-cma/count") + 1].trim().parse().unwrap();
    assert_eq!(count, 8192, "the script allocates the whole area");
    let evs = jsonl(&trace);
    // the guest's word: which page-table pages landed in CMA, for which
    // 2 MiB of VA (one page per pmd: two hardware tables)
    let mut tables: Vec<(u64, u64)> = evs
        .iter()
        .filter(|e| e["event"] == "inject" && e["injection"] == "pgtable_movable")
        .map(|e| (e["pfn"].as_u64().unwrap(), e["arg"].as_u64().unwrap()))
        .filter(|&(p, _)| p >= base && p < base + count)
        .collect();
    tables.sort();
    assert!(!tables.is_empty(), "no page table landed in the camera's area");
    let causes = cause_lines(&lines);
    assert!(!causes.is_empty(), "{}", lines.join("\n"));
    let named: Vec<&&String> = causes.iter().filter(|c| c.contains(" is not movable: it belongs to the page table of ")).collect();
    assert_eq!(named.len(), tables.len().min(4), "{causes:?} vs {tables:x?}");
    for (c, &(pfn, va)) in named.iter().zip(&tables) {
        assert!(c.starts_with("cmaemu: cma_alloc camera-cma 8,192 pages failed (-16 EBUSY)"), "{c}");
        assert!(
            c.contains(&format!(": pfn {pfn:#x} is not movable: it belongs to the page table of task 1 (asid 1) for VA {va:#010x}-{:#010x} (its first-level entries point here: a page-table page is never migrated)", va | 0x1f_ffff)),
            "{c}"
        );
    }
    if tables.len() > 4 {
        assert!(named[3].ends_with(&format!(" (and {} more unmovable pages)", tables.len() - 4)), "{}", named[3]);
    }
    // Linux's dump_page() of the first, as has_unmovable_pages() prints it
    let at = index_of(&lines, named[0]);
    assert_dump(&lines[at + 1..at + 5], &format!("{:#x}", tables[0].0), 0, "flags: 0x0(zone=0) CMA", "unmovable page");
    // the verifier: a page table in a MIGRATE_CMA pageblock, the lowest one
    // the guest put in CMA (in either area)
    let first = evs.iter().filter(|e| e["event"] == "inject" && e["injection"] == "pgtable_movable").map(|e| e["pfn"].as_u64().unwrap()).min().unwrap();
    let v: Vec<&Value> = evs.iter().filter(|e| e["event"] == "violation").collect();
    assert!(!v.is_empty() && v.iter().all(|e| e["violation"]["check"] == "integrity.cma_unmovable"), "{v:?}");
    assert!(v.iter().any(|e| e["violation"]["pfn"] == first), "{first:#x} not reported: {v:?}");
    // every page it reports is a page table the guest put in CMA (it lists
    // at most 64 per check, lowest first)
    let fired: Vec<u64> = evs.iter().filter(|e| e["event"] == "inject" && e["injection"] == "pgtable_movable").map(|e| e["pfn"].as_u64().unwrap()).collect();
    assert!(v.iter().all(|e| fired.contains(&e["violation"]["pfn"].as_u64().unwrap())), "{v:?} vs {fired:x?}");
    assert!(v.len() >= fired.len().min(64), "{} reported of {}", v.len(), fired.len());
    assert!(err.contains("integrity.cma_unmovable pfn=0x") && err.contains("in a MIGRATE_CMA pageblock is owned by a page table of asid 1 (refcount 1)"), "{err}");
    let ce: Vec<&Value> = evs.iter().filter(|e| e["event"] == "cma_cause" && e["last"] == true).collect();
    assert!(ce.iter().any(|e| e["cause"] == "unmovable" && e["pfn"] == tables[0].0), "{ce:?}");
}
