//! Structure-aware device-tree mutation: parse, edit the tree (the
//! properties Linux and the guest read, with values at arithmetic edges;
//! nodes copied, moved, dropped), serialize. Byte-level havoc rarely gets
//! past the FDT header checks; these edits reach the memory, reserved
//! memory and bootargs logic behind them.
use super::Rng;
use crate::loader::dtb::{DtNode, Dtb, MemReserve};

/// Values that break arithmetic: zero, one, page and section edges, RAM's
/// edges, the top of the address space.
fn nasty(r: &mut Rng) -> u32 {
    let any = r.next() as u32;
    r.pick(&[0, 1, 3, 0xfff, 0x1000, 0x10_0000, 0x40_0000, 0x80_0000, 0x0200_0000, 0x0400_0000, 0x1000_0000, 0x4000_0000, 0x5fff_ffff, 0x6000_0000, 0x6800_0000, 0x7000_0000, 0x9fff_f000, 0xa000_0000, 0xffff_f000, 0xffff_ffff, any])
}

fn cells(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|c| c.to_be_bytes()).collect()
}

fn paths(n: &DtNode, prefix: &str, out: &mut Vec<String>) {
    for c in &n.children {
        let p = format!("{}/{}", prefix, c.name);
        out.push(p.clone());
        paths(c, &p, out);
    }
}

fn node_mut<'a>(d: &'a mut Dtb, path: &str) -> &'a mut DtNode {
    let mut n = &mut d.root;
    for comp in path.split('/').filter(|c| !c.is_empty()) {
        let i = n.children.iter().position(|c| c.name == comp).unwrap_or(0);
        if n.children.is_empty() {
            break;
        }
        n = &mut n.children[i];
    }
    n
}

/// One random edit of `d`.
pub fn mutate_tree(d: &mut Dtb, r: &mut Rng) {
    let mut all = vec![String::new()];
    paths(&d.root, "", &mut all);
    let path = r.pick(&all);
    match r.below(14) {
        0..=2 => {
            let n = 1 + r.below(4);
            let v: Vec<u32> = (0..n).map(|_| nasty(r)).collect();
            let p = r.pick(&["reg", "size", "alignment", "alloc-ranges", "reg", "linux,usable-memory"]);
            node_mut(d, &path).set_prop(p, cells(&v));
        }
        3 => {
            let v = r.pick(&[0u32, 1, 2, 3, 4, 5, 0xffff_ffff]);
            let p = r.pick(&["#address-cells", "#size-cells"]);
            node_mut(d, &path).set_prop(p, cells(&[v]));
        }
        4 => {
            let s = r.pick(&["okay", "ok", "disabled", "fail", "okay\0x", "", "OKAY"]);
            node_mut(d, &path).set_prop("status", s.bytes().chain([0]).collect());
        }
        5 => {
            let s = r.pick(&["memory", "memory\0junk", "cpu", "Memory", ""]);
            node_mut(d, &path).set_prop("device_type", s.bytes().chain([0]).collect());
        }
        6 => {
            let p = r.pick(&["reusable", "no-map", "linux,cma-default", "linux,dma-default", "ranges"]);
            let n = node_mut(d, &path);
            if n.remove_prop(p).is_none() {
                n.set_prop(p, Vec::new());
            }
        }
        7 => {
            let c = r.pick(&["shared-dma-pool", "SHARED-DMA-POOL", "shared-dma-pool-x", "restricted-dma-pool", "", "arm,pl111\0arm,primecell", "cmaemu,camera-v1"]);
            node_mut(d, &path).set_prop("compatible", c.bytes().chain([0]).collect());
        }
        8 => {
            let ph = r.pick(&[0u32, 1, 2, 3, 4, 7, 0xffff_ffff]);
            let p = r.pick(&["memory-region", "phandle", "linux,phandle"]);
            let n = 1 + r.below(2);
            node_mut(d, &path).set_prop(p, cells(&vec![ph; n]));
        }
        9 => {
            // a property of odd length
            let p = r.pick(&["reg", "size", "alignment", "#address-cells", "status", "device_type", "bootargs"]);
            let len = r.below(9);
            let v: Vec<u8> = (0..len).map(|_| r.next() as u8).collect();
            node_mut(d, &path).set_prop(p, v);
        }
        10 => {
            // copy a node under another one (memory under reserved-memory, …)
            let src = node_mut(d, &path).clone();
            let to = r.pick(&all);
            let mut k = src;
            k.name = format!("{}@{:x}", k.name.split('@').next().unwrap_or("n"), nasty(r));
            k.children.truncate(4);
            let parent = node_mut(d, &to);
            if parent.children.len() < 64 {
                parent.children.push(k);
            }
        }
        11 => {
            let n = node_mut(d, &path);
            if !n.children.is_empty() {
                let i = r.below(n.children.len());
                n.children.remove(i);
            }
        }
        12 => {
            if d.reservations.len() < 32 {
                let (a, s) = (nasty(r) as u64, nasty(r) as u64);
                d.reservations.push(MemReserve { address: a, size: s });
            } else {
                d.reservations.clear();
            }
        }
        _ => {
            let args = r.pick(&[
                "console=ttyAMA0 cma=0",
                "console=ttyAMA0 cma=4G",
                "console=ttyAMA0 cma=16M@0x10000000",
                "console=ttyAMA0 cma=16M@0x9ff00000-0x9ff80000",
                "console=ttyAMA0 cma=1M@@@",
                "cmaemu.profile=biscuitos-5.0 cmaemu.pageblock_order=0",
                "cmaemu.cma_size_percentage=250 cmaemu.cma_size_sel=percentage",
                "cmaemu.max_order=0 cmaemu.pageblock_order=31",
                "trace_event=cma:*,nonsense:* cmaemu.inject=skip_copy,bogus",
            ]);
            let _ = d.set_bootargs(args);
        }
    }
}

/// 1 to 3 edits of the tree in `input`; `None` if it does not parse or
/// the result cannot be written.
pub fn mutate_blob(r: &mut Rng, input: &[u8]) -> Option<Vec<u8>> {
    let mut d = Dtb::parse(input).ok()?;
    for _ in 0..1 + r.below(3) {
        mutate_tree(&mut d, r);
    }
    d.to_bytes().ok()
}
