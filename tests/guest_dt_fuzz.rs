//! The guest kernel's device-tree handling under hostile trees: the
//! default board with random, structurally valid mutations of the nodes the
//! guest reads (reserved memory, CMA areas, devices, bootargs). The host
//! accepts every tree (its `/memory` is intact); the guest must boot to its
//! shell and power off cleanly (bad input gets Linux's error lines), or,
//! where Linux itself cannot go on (all RAM reserved, its own image freed
//! by a failed node), stop with a `Kernel panic - not syncing:` line that
//! names the problem. Never an oops, an abort loop or a hang.
//!
//! Memory nodes are mutated too (nested `device_type = "memory"`,
//! `status`, the root memory node's `reg`); every tree goes through the
//! host's `cmaemu boot` path (`prepare_boot_dtb`) first. A tree the host
//! accepts must never stop the guest with a memory-node complaint: the
//! two sides read the same nodes (issue 19).
use cmaemu::board::console::{Capture, Input};
use cmaemu::board::machine::{self, BootConfig, Exit};
use cmaemu::loader::dtb::{DtNode, Dtb};
use cmaemu::loader::{board_dtb, images};

mod common;
use common::Rng;

/// Values that break arithmetic: zero, one, page and section edges,
/// RAM's edges, the top of the address space.
fn nasty_u32(r: &mut Rng) -> u32 {
    let any = r.next() as u32;
    r.pick(&[0, 1, 3, 0xfff, 0x1000, 0x10_0000, 0x40_0000, 0x80_0000, 0x0200_0000, 0x1000_0000, 0x4000_0000, 0x5fff_ffff, 0x6000_0000, 0x6800_0000, 0x9fff_f000, 0xa000_0000, 0xffff_f000, 0xffff_ffff, any])
}

fn be_cells(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|c| c.to_be_bytes()).collect()
}

/// Every node path below `n` (`prefix` is `n`'s path).
fn paths(n: &DtNode, prefix: &str, out: &mut Vec<String>) {
    for c in &n.children {
        let p = format!("{}/{}", prefix, c.name);
        out.push(p.clone());
        paths(c, &p, out);
    }
}

/// One random mutation of a node the guest reads.
fn mutate(d: &mut Dtb, r: &mut Rng) {
    let mut all = Vec::new();
    paths(&d.root, "", &mut all);
    // /memory stays as the host wrote it (the host rejects bad ones itself)
    all.retain(|p| !p.starts_with("/memory"));
    let reserved: Vec<String> = all.iter().filter(|p| p.starts_with("/reserved-memory/")).cloned().collect();
    let path = if !reserved.is_empty() && r.below(2) == 0 { r.pick(&reserved) } else { r.pick(&all) };
    match r.below(14) {
        0 | 1 => {
            let n = 1 + r.below(3);
            let cells: Vec<u32> = (0..n).map(|_| nasty_u32(r)).collect();
            d.find_mut(&path).unwrap().set_prop("reg", be_cells(&cells));
        }
        2 => {
            let v = nasty_u32(r);
            let prop = r.pick(&["size", "alignment"]);
            d.find_mut(&path).unwrap().set_prop(prop, be_cells(&[v]));
        }
        3 => {
            let cells: Vec<u32> = (0..2 * (1 + r.below(2))).map(|_| nasty_u32(r)).collect();
            d.find_mut(&path).unwrap().set_prop("alloc-ranges", be_cells(&cells));
        }
        4 => {
            let p = r.pick(&["reusable", "no-map", "linux,cma-default", "linux,dma-default"]);
            let n = d.find_mut(&path).unwrap();
            if n.remove_prop(p).is_none() {
                n.set_prop(p, Vec::new());
            }
        }
        5 => {
            let c = r.pick(&["shared-dma-pool", "restricted-dma-pool", "", "shared-dma-pool\0shared-dma-pool", "arm,pl011\0arm,primecell"]);
            d.find_mut(&path).unwrap().set_prop("compatible", c.as_bytes().iter().copied().chain([0]).collect());
        }
        6 => {
            // a phandle reference to anything, or nothing
            let ph = r.pick(&[0u32, 1, 2, 3, 7, 0xffff_ffff]);
            let n = 1 + r.below(2);
            d.find_mut(&path).unwrap().set_prop("memory-region", be_cells(&vec![ph; n]));
        }
        7 => {
            let cells = r.pick(&[0u32, 1, 2, 3, 5]);
            let p = r.pick(&["#address-cells", "#size-cells"]);
            let target = if r.below(2) == 0 { "/reserved-memory".to_string() } else { path.clone() };
            if let Some(n) = d.find_mut(&target) {
                n.set_prop(p, be_cells(&[cells]));
            }
        }
        8 => {
            // a property of odd length
            let p = r.pick(&["reg", "size", "interrupts", "alignment", "compatible"]);
            let len = r.below(7);
            let v: Vec<u8> = (0..len).map(|_| r.next() as u8).collect();
            d.find_mut(&path).unwrap().set_prop(p, v);
        }
        9 => {
            // many areas: copies of a reserved-memory child
            if let Some(rm) = d.find_mut("/reserved-memory") {
                if let Some(c) = rm.children.first().cloned() {
                    for i in 0..1 + r.below(9) {
                        let mut k = c.clone();
                        k.name = format!("fuzz{i}@{:x}", 0x6000_0000u32 + (i as u32) * 0x100_0000);
                        k.remove_prop("phandle");
                        rm.children.push(k);
                    }
                }
            }
        }
        11 => {
            // a memory node where Linux does not look for one (nested), or
            // a disabled one at the root: neither side may take it
            let reg = be_cells(&[nasty_u32(r), nasty_u32(r)]);
            let n = d.find_mut(&path).unwrap();
            n.set_prop("device_type", b"memory\0".to_vec());
            n.set_prop("reg", reg.clone());
            if r.below(2) == 0 {
                let mut m = DtNode::new(format!("memory@{:x}", nasty_u32(r)));
                m.set_prop("device_type", b"memory\0".to_vec());
                m.set_prop("reg", reg);
                m.set_prop("status", r.pick(&[&b"disabled\0"[..], b"fail\0", b"\xff\0", b"okay\0"]).to_vec());
                d.root.children.push(m);
            }
        }
        12 => {
            // the root memory node itself: the host must reject what the guest would
            let cells: Vec<u32> = (0..2 * (1 + r.below(2))).map(|_| nasty_u32(r)).collect();
            let m = d.root.children.iter_mut().find(|c| c.name.starts_with("memory")).unwrap();
            m.set_prop("reg", be_cells(&cells));
        }
        13 => {
            let m = d.root.children.iter_mut().find(|c| c.name.starts_with("memory")).unwrap();
            m.set_prop("status", r.pick(&[&b"disabled\0"[..], b"ok\0", b"okay\0", b"\xff\0"]).to_vec());
        }
        _ => {
            let args = r.pick(&[
                "console=ttyAMA0 cma=0",
                "console=ttyAMA0 cma=4G",
                "console=ttyAMA0 cma=16M@0x10000000",
                "console=ttyAMA0 cma=-1",
                "console=ttyAMA0 cma=16M@0x9ff00000-0x9ff80000",
                "console=ttyAMA0 cma=1M@@@",
                "console=ttyAMA0 cmaemu.cma_size_percentage=250 cmaemu.cma_size_sel=percentage",
                "console=ttyAMA0 cmaemu.pageblock_order=31",
                "console=ttyAMA0 cmaemu.max_order=0",
                "console=ttyAMA0 trace_event=cma:*,nonsense:*",
            ]);
            d.set_bootargs(args).unwrap();
        }
    }
}

#[test]
fn mutated_trees_boot_to_the_shell_and_power_off() {
    const RAM: u64 = 256 << 20;
    let mut bases = vec![Dtb::parse(&board_dtb::default_board_dtb(RAM)).unwrap()];
    // Linux's own layout (motherboard/daughterboard nodes, a no-map vram
    // pool, CLCD with memory-region), when dtc is there to compile it
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../dts/vexpress-linux-layout.dts");
    let out = std::env::temp_dir().join(format!("cmaemu-fuzz-linux-layout-{}.dtb", std::process::id()));
    if std::process::Command::new("dtc").args(["-q", "-I", "dts", "-O", "dtb", "-o"]).arg(&out).arg(&src).status().is_ok_and(|s| s.success()) {
        let mut d = Dtb::parse(&std::fs::read(&out).unwrap()).unwrap();
        d.set_memory(0x6000_0000, RAM).unwrap();
        bases.push(d);
    }
    let mut r = Rng(0x5eed_0fd7_f022);
    // CMAEMU_FUZZ_ITERS raises the count for a longer local run.
    let iters: usize = std::env::var("CMAEMU_FUZZ_ITERS").ok().and_then(|v| v.parse().ok()).unwrap_or(40);
    // CMAEMU_FUZZ_ONLY=N boots only mutation N (the others are made, not run)
    let only: Option<usize> = std::env::var("CMAEMU_FUZZ_ONLY").ok().and_then(|v| v.parse().ok());
    let mut failures = Vec::new();
    let mut clean = 0;
    let mut panics = std::collections::BTreeMap::new();
    let mut host_rejected = 0;
    let mut disagreements = Vec::new();
    for i in 0..iters {
        let mut d = bases[i % bases.len()].clone();
        for _ in 0..1 + r.below(3) {
            mutate(&mut d, &mut r);
        }
        let Ok(bytes) = d.to_bytes() else { continue };
        // what `cmaemu boot --dtb` does before the guest sees the tree
        let (bytes, ram) = match board_dtb::prepare_boot_dtb(&bytes, None, None) {
            Ok(x) => x,
            Err(_) => {
                host_rejected += 1;
                continue;
            }
        };
        if only.is_some_and(|n| n != i) {
            continue;
        }
        // a failing tree is kept, to boot by hand
        let saved = std::env::temp_dir().join(format!("cmaemu-dt-fuzz-{i}.dtb"));
        let keep = |why: String| -> String {
            let _ = std::fs::write(&saved, &bytes);
            format!("{why}\n  tree saved: cmaemu boot --dtb {} -m {}M", saved.display(), ram >> 20)
        };
        let dtb_copy = bytes.clone();
        let cap = Capture::default();
        let cfg = BootConfig {
            kernel_elf: images::KERNEL_ELF.to_vec(),
            initrd: None,
            firmware_elf: images::FIRMWARE_ELF.to_vec(),
            dtb: dtb_copy,
            ram_size: ram,
            max_insns: 2_000_000_000,
            input: Input::Script(b"cat /proc/meminfo\necho 1 > /dev/cma_test\npoweroff\n".iter().copied().collect()),
            stdout: false,
            capture: Some(cap.clone()),
            idle_after_eof_ns: 1_000_000_000,
            opts: Default::default(),
        };
        match machine::boot(cfg) {
            Ok(o) if o.exit == Exit::Poweroff(0) && o.violations.is_empty() => clean += 1,
            Ok(o) if matches!(o.exit, Exit::Panic(_)) && cap.text().lines().last().is_some_and(|l| l.contains("] Kernel panic - not syncing: ") && !l.contains("Fatal exception")) => {
                let text = cap.text();
                let why = text.lines().last().and_then(|l| l.split("not syncing: ").nth(1)).unwrap_or("").to_string();
                if why.contains("/memory node") || why.contains("RAM window") {
                    disagreements.push(keep(format!("mutation {i}: the host accepted the tree, the guest said: {why}")));
                }
                // group by the message without its numbers
                let key: String = why.chars().map(|c| if c.is_ascii_hexdigit() && !c.is_alphabetic() { '#' } else { c }).collect();
                *panics.entry(key).or_insert(0u32) += 1;
            }
            Ok(o) => {
                let text = cap.text();
                let tail: Vec<&str> = text.lines().rev().take(12).collect::<Vec<_>>().into_iter().rev().collect();
                failures.push(keep(format!("mutation {i}: {:?}, violations {:?}\n{}", o.exit, o.violations, tail.join("\n"))));
            }
            Err(e) => failures.push(keep(format!("mutation {i}: host error {e}"))),
        }
    }
    eprintln!(
        "guest dt fuzz: {iters} trees: {host_rejected} rejected by the host, {clean} clean, {} clear panics, {} failures, {} host/guest disagreements",
        panics.values().sum::<u32>(),
        failures.len(),
        disagreements.len()
    );
    for (why, n) in &panics {
        eprintln!("  {n:>4} x Kernel panic - not syncing: {why}");
    }
    assert!(failures.is_empty(), "{} of {iters} mutated trees failed:\n{}", failures.len(), failures.join("\n\n"));
    assert!(disagreements.is_empty(), "host/guest disagreement on memory nodes:\n{}", disagreements.join("\n"));
    assert!(only.is_some() || clean > (iters - host_rejected) / 2, "most mutated trees should still boot: {clean} of {}", iters - host_rejected);
}
