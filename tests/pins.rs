//! Page pins in the booted guest, against Linux 6.1's semantics: a pinned
//! page outlives `munmap` of the VA it was pinned through (the pin's
//! reference keeps it allocated) and `unpin_user_page` releases the page
//! that was pinned, freeing it when the pin was its last reference. The
//! verifiers must count such a page as held while its pin lives, and as an
//! orphan once the pin is leaked.
use cmaemu::board::machine::{Machine, Step};
use cmaemu::introspect::Snapshot;
use cmaemu_abi::page::OWNER_KIND_USER;

mod common;
use common::shell_machine as machine;

/// The output of one shell command.
fn run(m: &mut Machine, cmd: &str) -> String {
    let before = m.output().len();
    m.budget(3_000_000_000);
    assert_eq!(m.command(cmd), Step::Paused, "`{cmd}`: {}", m.output());
    m.output()[before..].to_string()
}

/// The frame `pin in` reports it pinned.
fn pinned_pfn(out: &str) -> u32 {
    let hex = out.split("pinned pfn 0x").nth(1).unwrap_or_else(|| panic!("no pin: {out}"));
    u32::from_str_radix(hex.split_whitespace().next().unwrap(), 16).unwrap()
}

fn snapshot(m: &Machine) -> Snapshot {
    Snapshot::read(m.ram(), m.desc_pa().expect("descriptor published")).unwrap()
}

/// The ownership findings so far, as (pfn, text).
fn orphans(m: &Machine) -> Vec<(Option<u32>, String)> {
    m.violations().into_iter().filter(|v| v.check.name() == "integrity.ownership").map(|v| (v.pfn, v.detail)).collect()
}

#[test]
fn a_page_pinned_then_unmapped_is_held_until_unpin_frees_it() {
    // guest fuzz session 119 (minimised): `pin in` pins the task's first
    // page, `free 50 out` (an empty range: every page is outside) unmaps
    // all of them, the pinned one included
    let mut m = machine("console=ttyAMA0");
    run(&mut m, "fill 40 5");
    let pfn = pinned_pfn(&run(&mut m, "pin in 0x61e56 0x6a000"));
    let out = run(&mut m, "free 50 out 0x70000 0x63f6b");
    assert!(out.contains("free: 10240 pages outside 0x70000-0x63f6b freed"), "{out}");
    // frame periods pass: the verifiers look at the pinned, unmapped page
    run(&mut m, "sleep 40");
    assert_eq!(m.violations(), vec![], "held by its pin, not an orphan");
    let s = snapshot(&m);
    let p = *s.page(pfn).unwrap();
    assert!(!s.is_free(pfn) && p.owner == OWNER_KIND_USER | 1, "{p:?}");
    assert_eq!((p.refcount, p.mapcount), (1, -1), "the pin's reference only: {p:?}");
    assert_eq!(s.pins_of(pfn), 1, "{:?}", s.pins);
    // unpin releases the frame it pinned: the last reference, so it is freed
    assert!(run(&mut m, "unpin").contains("unpin: done"));
    run(&mut m, "sleep 40");
    assert_eq!(m.violations(), vec![]);
    let s = snapshot(&m);
    assert!(s.is_free(pfn), "{:?}", s.page(pfn));
    assert!(s.pins.is_empty(), "{:?}", s.pins);
    // the original session unpinned twice: nothing left to drop
    run(&mut m, "unpin");
    run(&mut m, "sleep 40");
    let s = snapshot(&m);
    assert!(s.is_free(pfn), "{:?}", s.page(pfn));
    assert!(run(&mut m, "check").contains("check: 0 pages ok"));
    assert_eq!(m.violations(), vec![]);
}

#[test]
fn a_page_pinned_while_mapped_keeps_its_mapping_after_unpin() {
    // the common case: unpin drops only the pin's reference
    let mut m = machine("console=ttyAMA0");
    run(&mut m, "fill 4 5");
    let pfn = pinned_pfn(&run(&mut m, "pin in 0x60000 0x70000"));
    assert_eq!(snapshot(&m).page(pfn).map(|p| (p.refcount, p.mapcount)), Some((2, 0)));
    run(&mut m, "unpin");
    let s = snapshot(&m);
    assert_eq!(s.page(pfn).map(|p| (p.refcount, p.mapcount)), Some((1, 0)));
    assert!(s.pins.is_empty());
    assert!(run(&mut m, "check").contains("check: 1024 pages ok"));
    run(&mut m, "sleep 40");
    assert_eq!(m.violations(), vec![]);
}

#[test]
fn a_leaked_pin_is_an_orphan_in_each_pin_workload() {
    // `leaked_pin`: unpin forgets the first pin's reference (and the holder
    // its record): once unmapped, nobody will free the page
    let workloads: [(&str, &[&str]); 3] = [
        // pinned, unmapped, then the pin leaked: the page record does not
        // change at the unpin, only the pin table does
        ("pin in, free out, unpin", &["pin in 0x61e56 0x6a000", "free 50 out 0x70000 0x63f6b", "sleep 40", "unpin"]),
        ("pin N, unpin, free", &["pin 4", "unpin", "free 500"]),
        ("pin in, unpin, free", &["pin in 0x61e56 0x6a000", "unpin", "free 500"]),
    ];
    for (name, cmds) in workloads {
        let mut m = machine("console=ttyAMA0 cmaemu.inject=leaked_pin");
        run(&mut m, "fill 40 5");
        let mut pfn = None;
        for (i, c) in cmds.iter().enumerate() {
            let out = run(&mut m, c);
            if c.starts_with("pin in") {
                pfn = Some(pinned_pfn(&out));
            }
            if i + 1 < cmds.len() {
                assert_eq!(m.violations(), vec![], "{name}: before the leak, after `{c}`");
            }
        }
        run(&mut m, "sleep 40");
        let found = orphans(&m);
        assert_eq!(found.len(), 1, "{name}: {found:#?}");
        let (at, text) = &found[0];
        assert!(text.contains("(refcount 1, mapcount -1) but no PTE maps it: an orphan"), "{name}: {text}");
        if let Some(p) = pfn {
            assert_eq!(*at, Some(p), "{name}: {text}");
        }
        let s = snapshot(&m);
        let p = at.unwrap();
        assert!(!s.is_free(p) && s.pins_of(p) == 0, "{name}: {:?}", s.page(p));
    }
}

#[test]
fn a_full_pin_table_refuses_the_pin_instead_of_leaking_it() {
    // `pin in` keeps at most 64 pins; the 65th is refused (it used to take
    // the reference and drop the record: a pin nobody would release)
    let mut m = machine("console=ttyAMA0");
    run(&mut m, "fill 4 5");
    let mut pinned = Vec::new();
    for _ in 0..64 {
        pinned.push(pinned_pfn(&run(&mut m, "pin in 0x60000 0x70000")));
    }
    let out = run(&mut m, "pin in 0x60000 0x70000");
    assert!(out.contains("pin: 64 pins held already: unpin first"), "{out}");
    let s = snapshot(&m);
    assert_eq!(s.pins.len(), 64);
    // the first page of the range, 64 times: 64 pins and its mapping
    assert!(pinned.iter().all(|&p| p == pinned[0]), "{pinned:x?}");
    assert_eq!(s.page(pinned[0]).map(|p| (p.refcount, p.mapcount)), Some((65, 0)));
    // unmapped, the 64 pins hold it; unpinned, it is freed
    run(&mut m, "free 4");
    run(&mut m, "sleep 40");
    assert_eq!(m.violations(), vec![]);
    assert_eq!(snapshot(&m).page(pinned[0]).map(|p| (p.refcount, p.mapcount)), Some((64, -1)));
    run(&mut m, "unpin");
    run(&mut m, "sleep 40");
    assert_eq!(m.violations(), vec![]);
    assert!(snapshot(&m).is_free(pinned[0]));
}

/// `cmaemu boot -m 256M ARGS` with `script` on stdin: (exit code, stdout,
/// stderr): the capture tests run the binary as a user does.
fn boot(args: &[&str], script: &str) -> (i32, String, String) {
    let args: Vec<&str> = ["boot", "-m", "256M"].into_iter().chain(args.iter().copied()).collect();
    let (code, out, err) = common::cli(&args, script);
    (code, out.replace('\r', ""), err)
}

/// Start a `stress 1` job (task 1), make its task current, and capture
/// 3000 frames into its first 4 pages (one every 100 µs: from 0.9 s to
/// 1.2 s after the job started) while the job ends at 1 s: its last step
/// unmaps every page of its task, the capture's pinned buffers included.
/// `before` runs just before the capture. Returns (exit code, stdout,
/// stderr) of the whole run (powered off after).
fn capture_while_stress_ends(bootargs: &str, before: &str) -> (i32, String, String) {
    let script = format!("stress 1 &\ntask 1\nsleep 900\n{before}capture 3000\ntask\npoweroff\n");
    let (code, out, err) = boot(&["--append", bootargs], &script);
    let cap = out.find("capture: 3000 frames of 512 bytes into 4 user pages").unwrap_or_else(|| panic!("{out}\n{err}"));
    // the job ended during the capture: bash-style, its end is reported at
    // the prompt after it; and it unmapped every page of the task
    let done = out.find("[1]+ Done").unwrap_or_else(|| panic!("the job did not end: {out}"));
    assert!(done > cap, "the job ended before the capture: {out}");
    assert!(out[cap..].contains("task 1*: asid 2 ttbr0 ") && out[cap..].contains(" pages 0 va"), "{out}");
    (code, out, err)
}

/// The frames the host's printed ownership findings name (`frame:  pfn`
/// lines of the first three) and the run's summary line.
fn printed_orphans(err: &str) -> (Vec<u32>, String) {
    let pfns = err.lines().filter_map(|l| l.strip_prefix("cmaemu:   frame:  pfn 0x")).map(|h| u32::from_str_radix(h.split_whitespace().next().unwrap(), 16).unwrap()).collect();
    let summary = err.lines().find(|l| l.contains("verification violation(s):")).unwrap_or("").to_string();
    (pfns, summary)
}

#[test]
fn a_page_the_camera_pinned_is_held_when_it_loses_its_mapping_during_a_capture() {
    // A clean run (no injection). munmap does not wait for pins: the
    // camera's pins hold the 4 pages until the capture ends and unpins
    // them, which frees them (the final check at power-off finds no
    // orphan). Before the camera listed its pins, these were 4
    // integrity.ownership orphans (exit status 5).
    let (code, out, err) = capture_while_stress_ends("console=ttyAMA0", "");
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(!err.contains("VIOLATION") && !err.contains("verification violation"), "{err}");
}

#[test]
fn the_shells_pin_and_the_cameras_on_one_page_are_each_released_by_their_holder() {
    // `pin in` pins the task's first page, the first of the camera's
    // buffers too: the job's `unpin` steps during the capture release the
    // shell's pin (any `unpin` releases the shell's), never the camera's;
    // the page, unmapped at the job's end, stays the camera's until the
    // capture ends. Had an `unpin` step dropped the camera's pins, the
    // job's end would free pages the camera still writes into.
    let (code, out, err) = capture_while_stress_ends("console=ttyAMA0", "pin in 0x60000 0x70000\n");
    assert!(out.contains("pin: pinned pfn 0x"), "{out}");
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(!err.contains("VIOLATION") && !err.contains("verification violation"), "{err}");
}

#[test]
fn a_leaked_pin_of_a_page_the_camera_holds_too_is_an_orphan() {
    // `leaked_pin` in the capture above: the job's `unpin` steps forget
    // the reference its `pin 4` took on the task's first page (one per
    // cycle of its steps), the first of the camera's buffers. Once the job
    // unmaps it, the page has those references and the camera's pin, which
    // alone is listed: an orphan while the capture still holds it, and
    // after the camera's unpin too. The camera's 3 other pages are freed.
    let (code, out, err) = capture_while_stress_ends("console=ttyAMA0 cmaemu.inject=leaked_pin", "");
    assert_eq!(code, 5, "{out}\n{err}");
    let (pfns, summary) = printed_orphans(&err);
    assert!(!pfns.is_empty() && pfns.iter().all(|&p| p == pfns[0]), "{err}");
    assert!(summary.contains("verification violation(s): integrity.ownership ") && !summary.contains(','), "{summary}");
    let first = err.lines().find(|l| l.contains("cmaemu:   what:   frame")).unwrap();
    let refs: i32 = first.split("(refcount ").nth(1).and_then(|t| t.split(',').next()).and_then(|n| n.parse().ok()).unwrap();
    assert!(refs >= 2 && first.contains("mapcount -1) but no PTE maps it: an orphan"), "the leaked references and the camera's pin: {first}");
}

#[test]
fn the_stress_jobs_unpin_leaves_the_shells_pin_in_pins() {
    // `pin in` pins for the shell's user, whatever task runs; a `stress`
    // job unpins its own task's `pin N` pins between fills (every tenth
    // step): it used to drop the shell's pins as well
    let mut m = machine("console=ttyAMA0");
    run(&mut m, "fill 4 5");
    let pfn = pinned_pfn(&run(&mut m, "pin in 0x60000 0x70000"));
    run(&mut m, "stress 1 &");
    run(&mut m, "sleep 600");
    let out = run(&mut m, "jobs");
    assert!(out.contains("stress"), "the job still runs: {out}");
    assert!(m.output().contains("[1]"), "{}", m.output());
    let s = snapshot(&m);
    assert_eq!(s.pins_of(pfn), 1, "{:?}", s.pins);
    let p = *s.page(pfn).unwrap();
    assert_eq!((p.refcount, p.mapcount), (2, 0), "mapped once, pinned once: {p:?}");
    // the shell's unpin drops it
    assert!(run(&mut m, "unpin").contains("unpin: done"));
    let s = snapshot(&m);
    assert!(s.pins.iter().all(|r| r.pfn != pfn), "{:?}", s.pins);
    assert_eq!(s.page(pfn).map(|p| (p.refcount, p.mapcount)), Some((1, 0)));
    assert_eq!(orphans(&m), vec![]);
}
