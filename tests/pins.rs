//! Page pins in the booted guest, against Linux 6.1's semantics: a pinned
//! page outlives `munmap` of the VA it was pinned through (the pin's
//! reference keeps it allocated) and `unpin_user_page` releases the page
//! that was pinned, freeing it when the pin was its last reference. The
//! verifiers must count such a page as held while its pin lives, and as an
//! orphan once the pin is leaked.
use cmaemu::board::machine::{Machine, Step};
use cmaemu::introspect::Snapshot;
use cmaemu::loader::dtb::Dtb;
use cmaemu::loader::{board_dtb, images};
use cmaemu_abi::page::OWNER_KIND_USER;

fn machine(bootargs: &str) -> Machine {
    const RAM: u64 = 256 << 20;
    let mut dtb = Dtb::parse(&board_dtb::default_board_dtb(RAM)).unwrap();
    dtb.set_bootargs(bootargs).unwrap();
    let mut m = Machine::new(images::KERNEL_ELF, images::FIRMWARE_ELF, &dtb.to_bytes().unwrap(), RAM, u64::MAX).unwrap();
    m.budget(3_000_000_000);
    assert_eq!(m.run_until_idle(), Step::Paused, "boot with `{bootargs}`: {}", m.output());
    m
}

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
