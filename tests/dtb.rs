//! Device-tree tests: the dtc-compiled board source equals the generated
//! default board, Linux-layout trees are read correctly, rewriting
//! round-trips, and bad input gives one-line errors and never a panic.

use cmaemu::memory::map::RAM_BASE;
use cmaemu::loader::board_dtb::default_board_dtb;
use cmaemu::loader::dtb::{DtNode, Dtb, DtbError};
use std::path::PathBuf;
use std::process::Command;

mod common;
use common::Rng;

fn dts_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../dts")
}

/// Compile a dts with dtc; `None` (with a message) when dtc is not installed.
fn dtc(name: &str) -> Option<Vec<u8>> {
    dtc_with(name, &[])
}

fn dtc_with(name: &str, extra: &[&str]) -> Option<Vec<u8>> {
    let path = dts_dir().join(name);
    let out = match Command::new("dtc").args(["-q", "-I", "dts", "-O", "dtb"]).args(extra).arg(&path).output() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("skipping: dtc not available ({e}); install device-tree-compiler");
            return None;
        }
    };
    assert!(out.status.success(), "dtc failed on {}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    Some(out.stdout)
}

/// First difference between two trees, as a readable path.
fn diff(a: &DtNode, b: &DtNode, path: &str) -> Option<String> {
    if a.name != b.name {
        return Some(format!("{path}: node name {:?} vs {:?}", a.name, b.name));
    }
    let here = if path.is_empty() && a.name.is_empty() { "/".to_string() } else { format!("{path}/{}", a.name) };
    let an: Vec<_> = a.props.iter().map(|(n, _)| n.as_str()).collect();
    let bn: Vec<_> = b.props.iter().map(|(n, _)| n.as_str()).collect();
    if an != bn {
        return Some(format!("{here}: properties {an:?} vs {bn:?}"));
    }
    for ((n, va), (_, vb)) in a.props.iter().zip(&b.props) {
        if va != vb {
            return Some(format!("{here}: property {n} = {va:02x?} vs {vb:02x?}"));
        }
    }
    let ac: Vec<_> = a.children.iter().map(|c| c.name.as_str()).collect();
    let bc: Vec<_> = b.children.iter().map(|c| c.name.as_str()).collect();
    if ac != bc {
        return Some(format!("{here}: children {ac:?} vs {bc:?}"));
    }
    let base = if here == "/" { String::new() } else { here };
    a.children.iter().zip(&b.children).find_map(|(x, y)| diff(x, y, &base))
}

#[test]
fn dtc_source_equals_generated_default_board() {
    let Some(compiled) = dtc("vexpress-cmaemu.dts") else { return };
    let from_dtc = Dtb::parse(&compiled).expect("dtc output parses");
    let generated = Dtb::parse(&default_board_dtb(1 << 30)).expect("generated board parses");
    if let Some(d) = diff(&from_dtc.root, &generated.root, "") {
        panic!("dts/vexpress-cmaemu.dts and default_board_dtb differ: {d}");
    }
    assert_eq!(from_dtc, generated);
    // Same tree, same phandles: both resolve the camera's pool the same way.
    let cam = generated.find("/camera@10030000").unwrap();
    let ph = cam.prop_u32("memory-region").unwrap();
    assert_eq!(generated.find_phandle(ph).unwrap().0, "/reserved-memory/camera-cma");
}

#[test]
fn linux_layout_tree_is_understood() {
    let Some(compiled) = dtc("vexpress-linux-layout.dts") else { return };
    let d = Dtb::parse(&compiled).unwrap();
    assert_eq!(d.model().as_deref(), Some("V2P-CA9"));
    assert_eq!(d.memory_regions().unwrap(), vec![(0x6000_0000, 0x4000_0000)]);
    let (clcd_path, clcd) = d
        .find_compatible("arm,pl111")
        .into_iter()
        .find(|(p, _)| p.contains("clcd@1f000"))
        .expect("motherboard CLCD");
    let (pool_path, pool) = d.find_phandle(clcd.prop_u32("memory-region").unwrap()).unwrap();
    assert_eq!(pool_path, "/reserved-memory/vram@4c000000", "{clcd_path}");
    assert!(pool.prop("no-map").is_some());
    assert!(d.find_compatible("arm,pl011").len() == 4);
    let cma = d.find("/reserved-memory/linux,cma").unwrap();
    assert!(cma.prop("reusable").is_some() && cma.prop("linux,cma-default").is_some());
    // Round trip through the writer keeps everything.
    assert_eq!(Dtb::parse(&d.to_bytes().unwrap()).unwrap(), d);
}

#[test]
fn overlay_symbols_survive_rewriting() {
    // `dtc -@` adds __symbols__, a node name vm-fdt refuses; Linux builds
    // some DTBs this way, so it must still parse, rewrite and round-trip.
    let Some(compiled) = dtc_with("vexpress-linux-layout.dts", &["-@"]) else { return };
    let mut d = Dtb::parse(&compiled).unwrap();
    assert!(d.find("/__symbols__").unwrap().prop_str("vram").is_some());
    d.set_bootargs("console=ttyAMA0 cma=32M").unwrap();
    let r = Dtb::parse(&d.to_bytes().unwrap()).unwrap();
    assert_eq!(r, d);
}

#[test]
fn set_memory_and_bootargs_round_trip() {
    let mut d = Dtb::parse(&default_board_dtb(1 << 30)).unwrap();
    let before = d.clone();
    d.set_memory(0x6000_0000, 0x2000_0000).unwrap();
    d.set_bootargs("console=ttyAMA0 cma=16M loglevel=8").unwrap();
    let bytes = d.to_bytes().unwrap();
    let r = Dtb::parse(&bytes).unwrap();
    assert_eq!(r, d);
    assert_eq!(r.memory_regions().unwrap(), vec![(0x6000_0000, 0x2000_0000)]);
    assert_eq!(r.bootargs().as_deref(), Some("console=ttyAMA0 cma=16M loglevel=8"));
    // Nothing else changed.
    let mut r2 = r.clone();
    r2.set_memory(0x6000_0000, 0x4000_0000).unwrap();
    r2.set_bootargs("console=ttyAMA0").unwrap();
    assert_eq!(r2, before);
    // And unchanged trees serialize byte for byte as vm-fdt wrote them.
    assert_eq!(before.to_bytes().unwrap(), default_board_dtb(1 << 30));
}

#[test]
fn set_bootargs_creates_chosen() {
    let mut d = Dtb::parse(&default_board_dtb(1 << 30)).unwrap();
    d.root.children.retain(|c| c.name != "chosen");
    assert_eq!(d.bootargs(), None);
    d.set_bootargs("root=/dev/ram").unwrap();
    let r = Dtb::parse(&d.to_bytes().unwrap()).unwrap();
    assert_eq!(r.bootargs().as_deref(), Some("root=/dev/ram"));
    assert!(d.set_bootargs("a\0b").is_err());
}

#[test]
fn set_memory_validates() {
    let mut d = Dtb::parse(&default_board_dtb(1 << 30)).unwrap();
    let e = d.set_memory(0x4000_0000, 0x1000_0000).unwrap_err().to_string();
    assert!(e.contains("lies outside RAM window 0x60000000-0x9fffffff"), "{e}");
    assert!(d.set_memory(0x6000_0000, 0).is_err());
    assert!(d.set_memory(0x9000_0000, 0x2000_0000).is_err());
}

#[test]
fn truncated_dtb() {
    let b = default_board_dtb(1 << 30);
    let e = Dtb::parse(&b[..100]).unwrap_err();
    assert_eq!(e.to_string(), format!("dtb: truncated: header says {} bytes, file has 100", b.len()));
    assert!(matches!(Dtb::parse(&b[..20]), Err(DtbError::TooSmall { len: 20 })));
    assert!(matches!(Dtb::parse(&[]), Err(DtbError::TooSmall { len: 0 })));
}

#[test]
fn wrong_magic() {
    let mut b = default_board_dtb(1 << 30);
    b[..4].copy_from_slice(&0x1234_5678u32.to_be_bytes());
    assert_eq!(Dtb::parse(&b).unwrap_err().to_string(), "dtb: bad magic 0x12345678 (expected 0xd00dfeed)");
    let e = Dtb::parse(b"\x7fELF this is not a device tree at all, no no").unwrap_err().to_string();
    assert!(e.starts_with("dtb: bad magic 0x7f454c46"), "{e}");
}

#[test]
fn bad_version_and_layout() {
    let mut b = default_board_dtb(1 << 30);
    b[20..24].copy_from_slice(&16u32.to_be_bytes());
    assert!(Dtb::parse(&b).unwrap_err().to_string().contains("unsupported version 16"));
    let mut b = default_board_dtb(1 << 30);
    b[12..16].copy_from_slice(&0xffff_fff0u32.to_be_bytes()); // strings offset
    let e = Dtb::parse(&b).unwrap_err().to_string();
    assert!(e.starts_with("dtb: strings block at 0xfffffff0"), "{e}");
}

#[test]
fn no_memory_node() {
    let mut d = Dtb::parse(&default_board_dtb(1 << 30)).unwrap();
    d.root.children.retain(|c| !c.name.starts_with("memory"));
    let bytes = d.to_bytes().unwrap();
    let r = Dtb::parse(&bytes).unwrap();
    assert_eq!(r.memory_regions().unwrap_err().to_string(), "dtb: no /memory node (need a root child with device_type = \"memory\")");
    assert!(matches!(r.clone().set_memory(RAM_BASE, 1 << 28), Err(DtbError::NoMemory)));
}

#[test]
fn memory_outside_window() {
    let mut d = Dtb::parse(&default_board_dtb(1 << 30)).unwrap();
    let mem = d.find_mut("/memory").unwrap();
    let mut reg = 0x4000_0000u32.to_be_bytes().to_vec();
    reg.extend_from_slice(&0x1000_0000u32.to_be_bytes());
    mem.set_prop("reg", reg);
    let r = Dtb::parse(&d.to_bytes().unwrap()).unwrap();
    assert_eq!(
        r.memory_regions().unwrap_err().to_string(),
        "dtb: /memory@60000000 reg 0x40000000+0x10000000 lies outside RAM window 0x60000000-0x9fffffff"
    );
    // Straddling the top of the window.
    let mut d2 = r.clone();
    let mut reg = 0x9000_0000u32.to_be_bytes().to_vec();
    reg.extend_from_slice(&0x2000_0000u32.to_be_bytes());
    d2.find_mut("/memory").unwrap().set_prop("reg", reg);
    assert!(matches!(d2.memory_regions(), Err(DtbError::MemoryOutsideWindow { .. })));
    // A malformed reg is an error, not a panic.
    d2.find_mut("/memory").unwrap().set_prop("reg", vec![1, 2, 3]);
    assert!(d2.memory_regions().unwrap_err().to_string().starts_with("dtb: /memory@60000000 reg: "));
}

#[test]
fn fuzzed_mutations_never_panic() {
    let seeds: Vec<Vec<u8>> = {
        let mut v = vec![default_board_dtb(1 << 30)];
        if let Some(b) = dtc("vexpress-linux-layout.dts") {
            v.push(b);
        }
        v
    };
    let mut rng = Rng(0x00c0_ffee_d00d_feed);
    let (mut ok, mut err) = (0, 0);
    // CMAEMU_FUZZ_ITERS raises the count for a longer local run.
    let iters: usize = std::env::var("CMAEMU_FUZZ_ITERS").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    for i in 0..iters {
        let mut b = seeds[i % seeds.len()].clone();
        let n_mut = 1 + rng.below(4);
        for _ in 0..n_mut {
            let len = b.len();
            match rng.below(6) {
                0 => {
                    let at = rng.below(len);
                    b[at] ^= 1 << rng.below(8);
                }
                1 => {
                    let at = rng.below(len);
                    b[at] = rng.next() as u8;
                }
                2 => {
                    // Interesting 32-bit values at an aligned offset (tokens, lengths, offsets).
                    let vals = [0u32, 1, 2, 3, 4, 9, 0x7fff_ffff, 0xffff_ffff, 0x1000, len as u32, 0xd00d_feed];
                    let at = rng.below(len / 4) * 4;
                    if at + 4 <= len {
                        b[at..at + 4].copy_from_slice(&vals[rng.below(vals.len())].to_be_bytes());
                    }
                }
                3 => b.truncate(rng.below(len)),
                4 => {
                    // Header field rewrite.
                    let f = rng.below(10) * 4;
                    if f + 4 <= len {
                        let v = rng.next() as u32 % (len as u32 + 64);
                        b[f..f + 4].copy_from_slice(&v.to_be_bytes());
                    }
                }
                _ => {
                    let at = rng.below(len);
                    let n = rng.below(16).min(len - at);
                    b.drain(at..at + n);
                }
            }
            if b.is_empty() {
                break;
            }
        }
        match Dtb::parse(&b) {
            Ok(d) => {
                ok += 1;
                // Whatever parses must also serialize and parse back to the same tree,
                // and the memory helpers must not panic either.
                let _ = d.memory_regions();
                let _ = d.bootargs();
                let out = d.to_bytes().unwrap_or_else(|e| panic!("mutation {i}: parsed but cannot be written: {e}"));
                assert_eq!(Dtb::parse(&out).expect("re-parse of our own output"), d, "mutation {i}");
            }
            Err(e) => {
                err += 1;
                let s = e.to_string();
                assert!(s.starts_with("dtb: ") && !s.contains('\n'), "mutation {i}: {s}");
                // The validating walk must catch everything before the decoder does.
                assert!(!matches!(e, DtbError::Decoder(_)), "mutation {i} reached the decoder: {s}");
            }
        }
    }
    eprintln!("fuzz: {ok} parsed, {err} rejected");
    assert!(ok > 0 && err > 0);
}
