//! Host-side device-tree blob reading and rewriting.
//!
//! [`Dtb::parse`] turns any flattened device tree into an owned tree
//! ([`DtNode`]) plus its memory reservation block; [`Dtb::to_bytes`]
//! serializes it back with `vm-fdt`, keeping every property byte for byte
//! (phandles included) and the node/property order.
//!
//! Parsing is defensive: the `fdt` crate (which does the tree decoding)
//! indexes and `unwrap`s freely, so before handing it the bytes this module
//! checks the header (magic, `totalsize` against the file length, version,
//! every block inside the blob) and walks the whole structure block itself
//! (token by token: names NUL-terminated UTF-8, property lengths and
//! string offsets in bounds, nesting depth ≤ 64, properties before
//! subnodes, a final `FDT_END`). `FDT_NOP` tokens, which the `fdt` crate
//! mishandles between properties, are dropped in that pass. The decoding
//! itself still runs under `catch_unwind` as a last resort, and its result
//! is cross-checked against the walk. Every failure is one line starting
//! with `dtb: ` that names the problem.
//!
//! Memory helpers follow Linux 6.1's `early_init_dt_scan_memory` (and the
//! guest kernel's `setup.rs` reads the same nodes): `/memory` nodes are
//! direct children of the root with `device_type = "memory"` whose `status`
//! is absent, `okay` or `ok`; `reg` is decoded with the root's
//! `#address-cells`/`#size-cells` (defaults 2 and 1), and zero-sized ranges
//! are skipped. RAM must start at 0x6000_0000 and fit memblock.

use crate::memory::map::{RAM_BASE, RAM_WINDOW_END};
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The most memory ranges accepted: the guest's memblock holds
/// `INIT_MEMBLOCK_REGIONS` (128) and would drop the rest.
pub const MAX_MEMORY_RANGES: usize = 128;

/// FDT header magic.
pub const FDT_MAGIC: u32 = 0xd00d_feed;
const HEADER_SIZE: usize = 40;
const FDT_BEGIN_NODE: u32 = 1;
const FDT_END_NODE: u32 = 2;
const FDT_PROP: u32 = 3;
const FDT_NOP: u32 = 4;
const FDT_END: u32 = 9;
/// Maximum node nesting, root included (Linux and vm-fdt use 64).
pub const MAX_DEPTH: usize = 64;

/// Everything that can go wrong; the `Display` form is one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DtbError {
    /// Shorter than the 40-byte header.
    #[error("dtb: file too small: {len} bytes, a header needs 40")]
    TooSmall {
        /// File length.
        len: usize,
    },
    /// Wrong magic number.
    #[error("dtb: bad magic {0:#010x} (expected 0xd00dfeed)")]
    BadMagic(u32),
    /// `totalsize` larger than the file.
    #[error("dtb: truncated: header says {header} bytes, file has {file}")]
    Truncated {
        /// `totalsize` from the header.
        header: u64,
        /// Bytes available.
        file: usize,
    },
    /// Unsupported format version.
    #[error("dtb: unsupported version {version} (last compatible {last_comp}); need version 17")]
    Version {
        /// `version` from the header.
        version: u32,
        /// `last_comp_version` from the header.
        last_comp: u32,
    },
    /// A block of the blob lies outside it.
    #[error("dtb: {block} block at {offset:#x}+{size:#x} lies outside the {total}-byte blob")]
    Layout {
        /// Which block.
        block: &'static str,
        /// Its offset.
        offset: u64,
        /// Its size.
        size: u64,
        /// `totalsize`.
        total: u64,
    },
    /// Structure block malformed.
    #[error("dtb: malformed structure block at offset {offset:#x}: {msg}")]
    Structure {
        /// Offset inside the structure block.
        offset: usize,
        /// What is wrong.
        msg: String,
    },
    /// Memory reservation block malformed.
    #[error("dtb: malformed memory reservation block: {0}")]
    Reservations(String),
    /// The decoder failed unexpectedly (caught panic or disagreement).
    #[error("dtb: decoder failed: {0}")]
    Decoder(String),
    /// No usable memory node.
    #[error("dtb: no /memory node (need a root child with device_type = \"memory\")")]
    NoMemory,
    /// A `reg` property that cannot be decoded.
    #[error("dtb: {path} reg: {msg}")]
    BadReg {
        /// Node path.
        path: String,
        /// What is wrong.
        msg: String,
    },
    /// A memory range outside the board's RAM window.
    #[error("dtb: {path} reg {base:#x}+{size:#x} lies outside RAM window {:#x}-{:#x}", RAM_BASE, RAM_WINDOW_END - 1)]
    MemoryOutsideWindow {
        /// Node path.
        path: String,
        /// Range base.
        base: u64,
        /// Range size.
        size: u64,
    },
    /// RAM that does not start where the kernel is loaded.
    #[error("dtb: the lowest /memory range starts at {base:#x}; RAM must start at {:#x}, where the kernel is loaded", RAM_BASE)]
    MemoryNotAtRamBase {
        /// Lowest base of all memory ranges.
        base: u64,
    },
    /// More memory ranges than the kernel's memblock holds.
    #[error("dtb: {count} /memory ranges, more than the {MAX_MEMORY_RANGES} memblock holds (INIT_MEMBLOCK_REGIONS)")]
    TooManyMemoryRanges {
        /// Non-empty ranges found.
        count: usize,
    },
    /// A value that cannot be stored.
    #[error("dtb: {0}")]
    Invalid(String),
    /// Serialization failed.
    #[error("dtb: cannot serialize: {0}")]
    Write(String),
}

/// One node of the owned tree.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DtNode {
    /// Node name with unit address (`""` for the root).
    pub name: String,
    /// Properties in blob order: name and raw value.
    pub props: Vec<(String, Vec<u8>)>,
    /// Subnodes in blob order.
    pub children: Vec<DtNode>,
}

impl DtNode {
    /// An empty node.
    pub fn new(name: impl Into<String>) -> Self {
        DtNode { name: name.into(), props: Vec::new(), children: Vec::new() }
    }

    /// Raw value of property `name`.
    pub fn prop(&self, name: &str) -> Option<&[u8]> {
        self.props.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_slice())
    }

    /// Property as a single big-endian u32 cell.
    pub fn prop_u32(&self, name: &str) -> Option<u32> {
        let v = self.prop(name)?;
        (v.len() == 4).then(|| u32::from_be_bytes([v[0], v[1], v[2], v[3]]))
    }

    /// Property as a string (up to the first NUL; lossy UTF-8).
    pub fn prop_str(&self, name: &str) -> Option<String> {
        let v = self.prop(name)?;
        let end = v.iter().position(|&b| b == 0).unwrap_or(v.len());
        Some(String::from_utf8_lossy(&v[..end]).into_owned())
    }

    /// Property as a string list.
    pub fn prop_strings(&self, name: &str) -> Vec<String> {
        self.prop(name)
            .map(|v| {
                v.split(|&b| b == 0)
                    .filter(|s| !s.is_empty())
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether `compatible` lists `compat`.
    pub fn is_compatible(&self, compat: &str) -> bool {
        self.prop_strings("compatible").iter().any(|c| c == compat)
    }

    /// Set (replace in place, or append) a property.
    pub fn set_prop(&mut self, name: &str, value: Vec<u8>) {
        match self.props.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value,
            None => self.props.push((name.to_string(), value)),
        }
    }

    /// Remove a property; returns its value.
    pub fn remove_prop(&mut self, name: &str) -> Option<Vec<u8>> {
        let i = self.props.iter().position(|(n, _)| n == name)?;
        Some(self.props.remove(i).1)
    }

    /// Child by path component: exact name, or base name if `name` has no `@`.
    pub fn child(&self, name: &str) -> Option<&DtNode> {
        self.children.iter().find(|c| name_matches(&c.name, name))
    }

    /// Mutable child, as [`DtNode::child`].
    pub fn child_mut(&mut self, name: &str) -> Option<&mut DtNode> {
        self.children.iter_mut().find(|c| name_matches(&c.name, name))
    }

    /// Number of nodes in this subtree (self included).
    pub fn node_count(&self) -> usize {
        1 + self.children.iter().map(DtNode::node_count).sum::<usize>()
    }

    /// Number of properties in this subtree.
    pub fn prop_count(&self) -> usize {
        self.props.len() + self.children.iter().map(DtNode::prop_count).sum::<usize>()
    }

    fn is_available(&self) -> bool {
        match self.prop_str("status") {
            None => true,
            Some(s) => s == "okay" || s == "ok",
        }
    }
}

fn name_matches(node_name: &str, wanted: &str) -> bool {
    node_name == wanted || (!wanted.contains('@') && node_name.split('@').next() == Some(wanted))
}

/// One entry of the memory reservation block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemReserve {
    /// Physical address.
    pub address: u64,
    /// Size in bytes.
    pub size: u64,
}

/// A parsed device tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dtb {
    /// The root node (name `""`).
    pub root: DtNode,
    /// The memory reservation block (`/memreserve/`), without the terminator.
    pub reservations: Vec<MemReserve>,
    /// `boot_cpuid_phys` from the header.
    pub boot_cpuid_phys: u32,
}

fn be32(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn be64(b: &[u8], off: usize) -> Option<u64> {
    Some(((be32(b, off)? as u64) << 32) | be32(b, off + 4)? as u64)
}

/// Result of the validating walk: the structure block without NOPs and counts.
struct Walk {
    clean: Vec<u8>,
    nodes: usize,
    props: usize,
}

struct Walker<'a> {
    s: &'a [u8],
    strings: &'a [u8],
    pos: usize,
    out: Vec<u8>,
    nodes: usize,
    props: usize,
}

impl Walker<'_> {
    fn err<T>(&self, msg: impl Into<String>) -> Result<T, DtbError> {
        Err(DtbError::Structure { offset: self.pos, msg: msg.into() })
    }

    fn token(&mut self) -> Result<u32, DtbError> {
        // Skips NOPs; does not copy them.
        loop {
            let Some(t) = be32(self.s, self.pos) else {
                return self.err("unexpected end of structure block");
            };
            if t != FDT_NOP {
                return Ok(t);
            }
            self.pos += 4;
        }
    }

    fn copy(&mut self, n: usize) {
        self.out.extend_from_slice(&self.s[self.pos..self.pos + n]);
        self.pos += n;
    }

    fn node(&mut self, depth: usize) -> Result<(), DtbError> {
        if depth > MAX_DEPTH {
            return self.err(format!("nodes nested deeper than {MAX_DEPTH}"));
        }
        // BEGIN_NODE already peeked by the caller.
        self.copy(4);
        let rest = &self.s[self.pos..];
        let Some(nul) = rest.iter().position(|&b| b == 0) else {
            return self.err("node name not NUL-terminated");
        };
        if std::str::from_utf8(&rest[..nul]).is_err() {
            return self.err("node name is not UTF-8");
        }
        if depth == 1 && nul != 0 {
            return self.err("root node has a non-empty name");
        }
        if depth > 1 && nul == 0 {
            return self.err("subnode with an empty name");
        }
        let padded = (nul + 1).next_multiple_of(4);
        if padded > rest.len() {
            return self.err("node name padding runs past the block");
        }
        self.copy(padded);
        self.nodes += 1;
        let mut seen_child = false;
        loop {
            match self.token()? {
                FDT_PROP => {
                    if seen_child {
                        return self.err("property after a subnode");
                    }
                    let (Some(len), Some(nameoff)) = (be32(self.s, self.pos + 4), be32(self.s, self.pos + 8)) else {
                        return self.err("truncated property header");
                    };
                    let (len, nameoff) = (len as usize, nameoff as usize);
                    let value_end = (self.pos + 12).checked_add(len).filter(|&e| e <= self.s.len());
                    let Some(value_end) = value_end else {
                        return self.err(format!("property length {len} runs past the block"));
                    };
                    let padded_end = (value_end - self.pos).next_multiple_of(4) + self.pos;
                    if padded_end > self.s.len() {
                        return self.err("property padding runs past the block");
                    }
                    let Some(name) = self.strings.get(nameoff..) else {
                        return self.err(format!("property name offset {nameoff:#x} outside the strings block"));
                    };
                    let Some(nul) = name.iter().position(|&b| b == 0) else {
                        return self.err("property name not NUL-terminated");
                    };
                    if nul == 0 || std::str::from_utf8(&name[..nul]).is_err() {
                        return self.err("property name empty or not UTF-8");
                    }
                    self.copy(padded_end - self.pos);
                    self.props += 1;
                }
                FDT_BEGIN_NODE => {
                    seen_child = true;
                    self.node(depth + 1)?;
                }
                FDT_END_NODE => {
                    self.copy(4);
                    return Ok(());
                }
                t => return self.err(format!("unexpected token {t:#x}")),
            }
        }
    }
}

fn walk(structs: &[u8], strings: &[u8]) -> Result<Walk, DtbError> {
    let mut w = Walker { s: structs, strings, pos: 0, out: Vec::with_capacity(structs.len()), nodes: 0, props: 0 };
    if w.token()? != FDT_BEGIN_NODE {
        return w.err("structure block does not start with a node");
    }
    w.node(1)?;
    match w.token()? {
        FDT_END => {
            w.copy(4);
        }
        t => return w.err(format!("expected FDT_END after the root node, found token {t:#x}")),
    }
    Ok(Walk { clean: w.out, nodes: w.nodes, props: w.props })
}

fn build(node: fdt::node::FdtNode<'_, '_>, name: &str) -> DtNode {
    DtNode {
        name: name.to_string(),
        props: node.properties().map(|p| (p.name.to_string(), p.value.to_vec())).collect(),
        children: node.children().map(|c| build(c, c.name)).collect(),
    }
}

/// Decode `reg`-style cells (1 or 2 cells per number).
fn cells_to_u64(c: &[u8]) -> u64 {
    c.chunks(4).fold(0u64, |acc, w| (acc << 32) | u32::from_be_bytes([w[0], w[1], w[2], w[3]]) as u64)
}

fn u64_to_cells(v: u64, cells: u32, out: &mut Vec<u8>) -> bool {
    match cells {
        1 if v <= u32::MAX as u64 => out.extend_from_slice(&(v as u32).to_be_bytes()),
        2 => out.extend_from_slice(&v.to_be_bytes()),
        _ => return false,
    }
    true
}

impl Dtb {
    /// Parse and validate a DTB.
    pub fn parse(bytes: &[u8]) -> Result<Dtb, DtbError> {
        if bytes.len() < HEADER_SIZE {
            return Err(DtbError::TooSmall { len: bytes.len() });
        }
        let h = |i: usize| be32(bytes, i * 4).unwrap_or(0);
        let (magic, total, off_struct, off_strings, off_rsv) = (h(0), h(1) as u64, h(2) as u64, h(3) as u64, h(4) as u64);
        let (version, last_comp, boot_cpuid_phys, size_strings, size_struct) = (h(5), h(6), h(7), h(8) as u64, h(9) as u64);
        if magic != FDT_MAGIC {
            return Err(DtbError::BadMagic(magic));
        }
        if total > bytes.len() as u64 {
            return Err(DtbError::Truncated { header: total, file: bytes.len() });
        }
        if total < HEADER_SIZE as u64 {
            return Err(DtbError::Layout { block: "header", offset: 0, size: HEADER_SIZE as u64, total });
        }
        if version < 17 || last_comp > 17 {
            return Err(DtbError::Version { version, last_comp });
        }
        let total_us = total as usize;
        for (block, offset, size) in [("structure", off_struct, size_struct), ("strings", off_strings, size_strings)] {
            if offset < HEADER_SIZE as u64 || offset + size > total {
                return Err(DtbError::Layout { block, offset, size, total });
            }
        }
        if off_rsv < HEADER_SIZE as u64 || off_rsv + 16 > total {
            return Err(DtbError::Layout { block: "memory reservation", offset: off_rsv, size: 16, total });
        }
        let blob = &bytes[..total_us];

        // Memory reservation block: 16-byte entries up to a (0, 0) terminator.
        let mut reservations = Vec::new();
        let mut at = off_rsv as usize;
        loop {
            let (Some(address), Some(size)) = (be64(blob, at), be64(blob, at + 8)) else {
                return Err(DtbError::Reservations("no terminating entry before the end of the blob".into()));
            };
            if address == 0 && size == 0 {
                break;
            }
            reservations.push(MemReserve { address, size });
            at += 16;
        }

        let structs = &blob[off_struct as usize..(off_struct + size_struct) as usize];
        let strings = &blob[off_strings as usize..(off_strings + size_strings) as usize];
        let walked = walk(structs, strings)?;

        // Rebuild a normalized blob (no NOPs, empty reservation block) for the decoder.
        let mut clean = Vec::with_capacity(HEADER_SIZE + 16 + walked.clean.len() + strings.len());
        let c_struct = (HEADER_SIZE + 16) as u32;
        let c_strings = c_struct + walked.clean.len() as u32;
        let c_total = c_strings + strings.len() as u32;
        for v in [FDT_MAGIC, c_total, c_struct, c_strings, HEADER_SIZE as u32, 17, 16, 0, strings.len() as u32, walked.clean.len() as u32] {
            clean.extend_from_slice(&v.to_be_bytes());
        }
        clean.extend_from_slice(&[0u8; 16]);
        clean.extend_from_slice(&walked.clean);
        clean.extend_from_slice(strings);

        let decoded = catch_unwind(AssertUnwindSafe(|| -> Result<DtNode, DtbError> {
            let fdt = fdt::Fdt::new(&clean).map_err(|e| DtbError::Decoder(e.to_string()))?;
            let root = fdt.find_node("/").ok_or_else(|| DtbError::Decoder("no root node".into()))?;
            Ok(build(root, ""))
        }));
        let root = match decoded {
            Ok(Ok(root)) => root,
            Ok(Err(e)) => return Err(e),
            Err(p) => {
                let msg = p
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "panic".into());
                return Err(DtbError::Decoder(msg));
            }
        };
        if root.node_count() != walked.nodes || root.prop_count() != walked.props {
            return Err(DtbError::Decoder(format!(
                "decoded {} nodes/{} properties, the structure block has {}/{}",
                root.node_count(),
                root.prop_count(),
                walked.nodes,
                walked.props
            )));
        }
        Ok(Dtb { root, reservations, boot_cpuid_phys })
    }

    /// A tree with just an empty root.
    pub fn empty() -> Dtb {
        Dtb { root: DtNode::new(""), reservations: Vec::new(), boot_cpuid_phys: 0 }
    }

    /// Node at an absolute path (`/`, `/chosen`, `/memory@60000000`; a
    /// component without `@` matches the first node with that base name).
    pub fn find(&self, path: &str) -> Option<&DtNode> {
        let mut n = &self.root;
        for comp in path.split('/').filter(|c| !c.is_empty()) {
            n = n.child(comp)?;
        }
        Some(n)
    }

    /// Mutable node at an absolute path.
    pub fn find_mut(&mut self, path: &str) -> Option<&mut DtNode> {
        let mut n = &mut self.root;
        for comp in path.split('/').filter(|c| !c.is_empty()) {
            n = n.child_mut(comp)?;
        }
        Some(n)
    }

    /// All nodes (path, node) whose `compatible` lists `compat`, in tree order.
    pub fn find_compatible(&self, compat: &str) -> Vec<(String, &DtNode)> {
        let mut out = Vec::new();
        fn rec<'a>(n: &'a DtNode, path: String, compat: &str, out: &mut Vec<(String, &'a DtNode)>) {
            if n.is_compatible(compat) {
                out.push((if path.is_empty() { "/".into() } else { path.clone() }, n));
            }
            for c in &n.children {
                rec(c, format!("{path}/{}", c.name), compat, out);
            }
        }
        rec(&self.root, String::new(), compat, &mut out);
        out
    }

    /// The node (path, node) whose `phandle` (or `linux,phandle`) is `ph`.
    pub fn find_phandle(&self, ph: u32) -> Option<(String, &DtNode)> {
        fn rec(n: &DtNode, path: String, ph: u32) -> Option<(String, &DtNode)> {
            if n.prop_u32("phandle") == Some(ph) || n.prop_u32("linux,phandle") == Some(ph) {
                return Some((if path.is_empty() { "/".into() } else { path }, n));
            }
            n.children.iter().find_map(|c| rec(c, format!("{path}/{}", c.name), ph))
        }
        rec(&self.root, String::new(), ph)
    }

    /// Root `#address-cells` (default 2).
    pub fn address_cells(&self) -> u32 {
        self.root.prop_u32("#address-cells").unwrap_or(2)
    }

    /// Root `#size-cells` (default 1).
    pub fn size_cells(&self) -> u32 {
        self.root.prop_u32("#size-cells").unwrap_or(1)
    }

    /// Root `model`.
    pub fn model(&self) -> Option<String> {
        self.root.prop_str("model")
    }

    /// Root `compatible` list.
    pub fn compatible(&self) -> Vec<String> {
        self.root.prop_strings("compatible")
    }

    /// `/chosen/bootargs`.
    pub fn bootargs(&self) -> Option<String> {
        self.find("/chosen")?.prop_str("bootargs")
    }

    /// Set `/chosen/bootargs`, creating `/chosen` if needed.
    pub fn set_bootargs(&mut self, args: &str) -> Result<(), DtbError> {
        if args.contains('\0') {
            return Err(DtbError::Invalid("bootargs contain a NUL byte".into()));
        }
        if self.root.child("chosen").is_none() {
            self.root.children.push(DtNode::new("chosen"));
        }
        let chosen = self.root.child_mut("chosen").expect("just ensured");
        let mut v = args.as_bytes().to_vec();
        v.push(0);
        chosen.set_prop("bootargs", v);
        Ok(())
    }

    fn memory_indices(&self) -> Vec<usize> {
        self.root
            .children
            .iter()
            .enumerate()
            .filter(|(_, c)| c.prop_str("device_type").as_deref() == Some("memory") && c.is_available())
            .map(|(i, _)| i)
            .collect()
    }

    /// Decode a `reg` property with the root's cell sizes: (base, size) pairs.
    fn decode_reg(&self, path: &str, node: &DtNode) -> Result<Vec<(u64, u64)>, DtbError> {
        let (ac, sc) = (self.address_cells(), self.size_cells());
        let bad = |msg: String| DtbError::BadReg { path: path.to_string(), msg };
        if !(1..=2).contains(&ac) || sc > 2 {
            return Err(bad(format!("unsupported #address-cells={ac}/#size-cells={sc} (need 1-2 and 0-2)")));
        }
        let reg = node.prop("reg").ok_or_else(|| bad("missing".into()))?;
        let entry = 4 * (ac + sc) as usize;
        if reg.is_empty() || reg.len() % entry != 0 {
            return Err(bad(format!("{} bytes is not a multiple of {entry} (#address-cells={ac}, #size-cells={sc})", reg.len())));
        }
        Ok(reg
            .chunks(entry)
            .map(|e| {
                let (a, s) = e.split_at(4 * ac as usize);
                (cells_to_u64(a), cells_to_u64(s))
            })
            .collect())
    }

    /// Every enabled device node's `reg` ranges as CPU physical addresses
    /// (translated through the parents' `ranges`, as Linux's
    /// `of_translate_address`): (node path, base, size). Nodes under
    /// `/cpus`, `/memory`, `/reserved-memory` and regions a bus cannot
    /// translate are skipped.
    pub fn device_regions(&self) -> Vec<(String, u64, u64)> {
        let mut out = Vec::new();
        let ac = self.address_cells();
        let sc = self.size_cells();
        for c in &self.root.children {
            if c.name == "cpus" || c.name == "memory" || c.name.starts_with("memory@") || c.name == "reserved-memory" || c.name == "chosen" || c.name == "aliases" {
                continue;
            }
            walk_devices(c, &format!("/{}", c.name), ac, sc, &[], true, &mut out);
        }
        out
    }

    /// RAM ranges from the `/memory` nodes, each checked to lie inside the
    /// board's RAM window 0x6000_0000..0xa000_0000. Zero-sized ranges are skipped.
    pub fn memory_regions(&self) -> Result<Vec<(u64, u64)>, DtbError> {
        let idx = self.memory_indices();
        if idx.is_empty() {
            return Err(DtbError::NoMemory);
        }
        let mut out = Vec::new();
        for i in idx {
            let node = &self.root.children[i];
            let path = format!("/{}", node.name);
            for (base, size) in self.decode_reg(&path, node)? {
                if size == 0 {
                    continue;
                }
                let inside = base >= RAM_BASE && base.checked_add(size).is_some_and(|end| end <= RAM_WINDOW_END);
                if !inside {
                    return Err(DtbError::MemoryOutsideWindow { path, base, size });
                }
                out.push((base, size));
            }
        }
        if out.is_empty() {
            return Err(DtbError::NoMemory);
        }
        // the guest (as Linux with PHYS_OFFSET fixed) needs RAM from its
        // load address, and every range in memblock
        let lowest = out.iter().map(|r| r.0).min().unwrap_or(RAM_BASE);
        if lowest != RAM_BASE {
            return Err(DtbError::MemoryNotAtRamBase { base: lowest });
        }
        if out.len() > MAX_MEMORY_RANGES {
            return Err(DtbError::TooManyMemoryRanges { count: out.len() });
        }
        Ok(out)
    }

    /// Make RAM exactly `base`+`size`: rewrites the first `/memory` node's
    /// `reg` (with the root's cell sizes) and removes any other memory nodes.
    /// A DTB without a memory node is an error (it is not created).
    pub fn set_memory(&mut self, base: u64, size: u64) -> Result<(), DtbError> {
        let idx = self.memory_indices();
        let Some(&first) = idx.first() else {
            return Err(DtbError::NoMemory);
        };
        let path = format!("/{}", self.root.children[first].name);
        let inside = size > 0 && base >= RAM_BASE && base.checked_add(size).is_some_and(|end| end <= RAM_WINDOW_END);
        if !inside {
            return Err(DtbError::MemoryOutsideWindow { path, base, size });
        }
        let (ac, sc) = (self.address_cells(), self.size_cells());
        let mut reg = Vec::new();
        if !u64_to_cells(base, ac, &mut reg) || !u64_to_cells(size, sc, &mut reg) {
            return Err(DtbError::Invalid(format!(
                "memory {base:#x}+{size:#x} does not fit #address-cells={ac}/#size-cells={sc}"
            )));
        }
        self.root.children[first].set_prop("reg", reg);
        for &i in idx[1..].iter().rev() {
            self.root.children.remove(i);
        }
        Ok(())
    }

    /// Serialize with `vm-fdt`. Input `vm-fdt` refuses although `dtc` and
    /// Linux accept it (names like `__symbols__` or longer than 31
    /// characters, zero-sized or overlapping `/memreserve/` entries) makes
    /// this fall back to a plain encoder producing the same layout, so any
    /// tree that parsed can be written back.
    pub fn to_bytes(&self) -> Result<Vec<u8>, DtbError> {
        match self.to_bytes_vm_fdt() {
            Ok(b) => Ok(b),
            Err(_) => self.to_bytes_plain(),
        }
    }

    fn to_bytes_vm_fdt(&self) -> Result<Vec<u8>, vm_fdt::Error> {
        let rsv = self
            .reservations
            .iter()
            .map(|r| vm_fdt::FdtReserveEntry::new(r.address, r.size))
            .collect::<Result<Vec<_>, _>>()?;
        let mut w = vm_fdt::FdtWriter::new_with_mem_reserv(&rsv)?;
        w.set_boot_cpuid_phys(self.boot_cpuid_phys);
        fn rec(w: &mut vm_fdt::FdtWriter, n: &DtNode) -> Result<(), vm_fdt::Error> {
            let h = w.begin_node(&n.name)?;
            for (k, v) in &n.props {
                w.property(k, v)?;
            }
            for c in &n.children {
                rec(w, c)?;
            }
            w.end_node(h)
        }
        rec(&mut w, &self.root)?;
        w.finish()
    }

    fn to_bytes_plain(&self) -> Result<Vec<u8>, DtbError> {
        let mut st = Vec::new();
        let mut strings = Vec::new();
        let mut offs: HashMap<&str, u32> = HashMap::new();
        fn rec<'a>(n: &'a DtNode, depth: usize, st: &mut Vec<u8>, strings: &mut Vec<u8>, offs: &mut HashMap<&'a str, u32>) -> Result<(), DtbError> {
            if depth > MAX_DEPTH {
                return Err(DtbError::Write(format!("nodes nested deeper than {MAX_DEPTH}")));
            }
            if n.name.contains('\0') {
                return Err(DtbError::Write(format!("node name {:?} contains NUL", n.name)));
            }
            st.extend_from_slice(&FDT_BEGIN_NODE.to_be_bytes());
            st.extend_from_slice(n.name.as_bytes());
            st.push(0);
            st.resize(st.len().next_multiple_of(4), 0);
            for (k, v) in &n.props {
                if k.is_empty() || k.contains('\0') {
                    return Err(DtbError::Write(format!("invalid property name {k:?}")));
                }
                let off = match offs.get(k.as_str()) {
                    Some(&o) => o,
                    None => {
                        let o = strings.len() as u32;
                        strings.extend_from_slice(k.as_bytes());
                        strings.push(0);
                        offs.insert(k.as_str(), o);
                        o
                    }
                };
                let len = u32::try_from(v.len()).map_err(|_| DtbError::Write("property too large".into()))?;
                st.extend_from_slice(&FDT_PROP.to_be_bytes());
                st.extend_from_slice(&len.to_be_bytes());
                st.extend_from_slice(&off.to_be_bytes());
                st.extend_from_slice(v);
                st.resize(st.len().next_multiple_of(4), 0);
            }
            for c in &n.children {
                rec(c, depth + 1, st, strings, offs)?;
            }
            st.extend_from_slice(&FDT_END_NODE.to_be_bytes());
            Ok(())
        }
        rec(&self.root, 1, &mut st, &mut strings, &mut offs)?;
        st.extend_from_slice(&FDT_END.to_be_bytes());
        let off_rsv = HEADER_SIZE;
        let off_struct = off_rsv + 16 * (self.reservations.len() + 1);
        let off_strings = off_struct + st.len();
        let total = off_strings + strings.len();
        let total32 = u32::try_from(total).map_err(|_| DtbError::Write("blob larger than 4 GiB".into()))?;
        let mut out = Vec::with_capacity(total);
        for v in [FDT_MAGIC, total32, off_struct as u32, off_strings as u32, off_rsv as u32, 17, 16, self.boot_cpuid_phys, strings.len() as u32, st.len() as u32] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        for r in &self.reservations {
            out.extend_from_slice(&r.address.to_be_bytes());
            out.extend_from_slice(&r.size.to_be_bytes());
        }
        out.extend_from_slice(&[0u8; 16]);
        out.extend_from_slice(&st);
        out.extend_from_slice(&strings);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut w = vm_fdt::FdtWriter::new_with_mem_reserv(&[vm_fdt::FdtReserveEntry::new(0x6000_0000, 0x1000).unwrap()]).unwrap();
        let r = w.begin_node("").unwrap();
        w.property_u32("#address-cells", 1).unwrap();
        w.property_u32("#size-cells", 1).unwrap();
        w.property_string("model", "test").unwrap();
        let c = w.begin_node("chosen").unwrap();
        w.property_string("bootargs", "console=ttyAMA0").unwrap();
        w.end_node(c).unwrap();
        let m = w.begin_node("memory@60000000").unwrap();
        w.property_string("device_type", "memory").unwrap();
        w.property_array_u32("reg", &[0x6000_0000, 0x1000_0000]).unwrap();
        w.end_node(m).unwrap();
        let g = w.begin_node("intc@1e001000").unwrap();
        w.property_phandle(7).unwrap();
        w.property_null("interrupt-controller").unwrap();
        w.end_node(g).unwrap();
        w.end_node(r).unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn parse_basic() {
        let d = Dtb::parse(&sample()).unwrap();
        assert_eq!(d.model().as_deref(), Some("test"));
        assert_eq!(d.bootargs().as_deref(), Some("console=ttyAMA0"));
        assert_eq!(d.memory_regions().unwrap(), vec![(0x6000_0000, 0x1000_0000)]);
        assert_eq!(d.reservations, vec![MemReserve { address: 0x6000_0000, size: 0x1000 }]);
        assert_eq!(d.find_phandle(7).unwrap().0, "/intc@1e001000");
        assert_eq!(d.find("/intc").unwrap().prop("interrupt-controller"), Some(&[][..]));
    }

    /// Issue 19: only root children with device_type = "memory" that are
    /// available are memory, as in Linux 6.1 and the guest's setup.rs.
    #[test]
    fn memory_nodes_are_available_root_children_only() {
        let mut d = Dtb::parse(&sample()).unwrap();
        let mut nested = DtNode::new("cma@70000000");
        nested.set_prop("device_type", b"memory\0".to_vec());
        nested.set_prop("reg", [0x0400_0000u32, 0x10].iter().flat_map(|c| c.to_be_bytes()).collect());
        let mut rm = DtNode::new("reserved-memory");
        rm.children.push(nested);
        d.root.children.push(rm);
        let mut off = DtNode::new("memory@40000000");
        off.set_prop("device_type", b"memory\0".to_vec());
        off.set_prop("reg", [0x4000_0000u32, 0x1000].iter().flat_map(|c| c.to_be_bytes()).collect());
        for status in [&b"disabled\0"[..], b"fail\0", b"\xff\0", b"okayish\0"] {
            off.set_prop("status", status.to_vec());
            let mut d2 = d.clone();
            d2.root.children.push(off.clone());
            assert_eq!(d2.memory_regions().unwrap(), vec![(0x6000_0000, 0x1000_0000)], "{status:?}");
        }
        for status in [&b"okay\0"[..], b"ok\0", b"ok"] {
            off.set_prop("status", status.to_vec());
            let mut d2 = d.clone();
            d2.root.children.push(off.clone());
            assert!(matches!(d2.memory_regions(), Err(DtbError::MemoryOutsideWindow { .. })), "{status:?}");
        }
        assert_eq!(d.memory_regions().unwrap(), vec![(0x6000_0000, 0x1000_0000)]);
    }

    #[test]
    fn ram_starts_at_the_load_address_and_fits_memblock() {
        let mut d = Dtb::parse(&sample()).unwrap();
        let reg = |pairs: &[(u32, u32)]| -> Vec<u8> { pairs.iter().flat_map(|(a, s)| [a.to_be_bytes(), s.to_be_bytes()]).flatten().collect() };
        d.find_mut("/memory").unwrap().set_prop("reg", reg(&[(0x7000_0000, 0x1000_0000)]));
        let e = d.memory_regions().unwrap_err();
        assert_eq!(e.to_string(), "dtb: the lowest /memory range starts at 0x70000000; RAM must start at 0x60000000, where the kernel is loaded");
        let many: Vec<(u32, u32)> = (0..129).map(|i| (0x6000_0000 + i * 0x10_0000, 0x1000)).collect();
        d.find_mut("/memory").unwrap().set_prop("reg", reg(&many[..128]));
        assert_eq!(d.memory_regions().unwrap().len(), 128);
        d.find_mut("/memory").unwrap().set_prop("reg", reg(&many));
        assert!(matches!(d.memory_regions(), Err(DtbError::TooManyMemoryRanges { count: 129 })));
    }

    #[test]
    fn round_trip_identical_bytes() {
        let b = sample();
        let d = Dtb::parse(&b).unwrap();
        assert_eq!(d.to_bytes().unwrap(), b);
    }

    #[test]
    fn nops_are_tolerated() {
        // Turn the `model` property into NOPs, like libfdt's fdt_nop_property.
        let b = sample();
        let d = Dtb::parse(&b).unwrap();
        let mut nb = b.clone();
        let off_struct = be32(&b, 8).unwrap() as usize;
        // root: BEGIN_NODE + "\0" pad = 8 bytes, then #address-cells (16), #size-cells (16), model (12 + 8).
        let model_at = off_struct + 8 + 16 + 16;
        assert_eq!(be32(&nb, model_at), Some(FDT_PROP));
        for k in 0..5 {
            nb[model_at + 4 * k..model_at + 4 * k + 4].copy_from_slice(&FDT_NOP.to_be_bytes());
        }
        let d2 = Dtb::parse(&nb).unwrap();
        assert_eq!(d2.model(), None);
        assert_eq!(d2.root.children, d.root.children);
    }

    #[test]
    fn errors_are_one_line_and_specific() {
        let b = sample();
        let e = Dtb::parse(&b[..100]).unwrap_err().to_string();
        assert_eq!(e, format!("dtb: truncated: header says {} bytes, file has 100", b.len()));
        let mut m = b.clone();
        m[0..4].copy_from_slice(&0x1234_5678u32.to_be_bytes());
        assert_eq!(Dtb::parse(&m).unwrap_err().to_string(), "dtb: bad magic 0x12345678 (expected 0xd00dfeed)");
        assert!(Dtb::parse(&b[..10]).unwrap_err().to_string().contains("too small"));
    }

    #[test]
    fn symbols_node_falls_back_to_plain_encoder() {
        let mut d = Dtb::parse(&sample()).unwrap();
        let mut s = DtNode::new("__symbols__");
        s.set_prop("a_very_long_property_name_over_31_chars", b"/chosen\0".to_vec());
        d.root.children.push(s);
        let b = d.to_bytes().unwrap();
        assert_eq!(Dtb::parse(&b).unwrap(), d);
    }

    #[test]
    fn set_memory_two_cells() {
        let mut d = Dtb::parse(&sample()).unwrap();
        d.root.set_prop("#address-cells", 2u32.to_be_bytes().to_vec());
        d.root.set_prop("#size-cells", 2u32.to_be_bytes().to_vec());
        d.set_memory(0x6000_0000, 0x4000_0000).unwrap();
        assert_eq!(d.find("/memory").unwrap().prop("reg").unwrap().len(), 16);
        assert_eq!(d.memory_regions().unwrap(), vec![(0x6000_0000, 0x4000_0000)]);
        assert!(d.set_memory(0x6000_0000, 0x4000_0001).is_err());
    }
}

/// One `ranges` entry: child bus address, parent (CPU) address, size.
type Range = (u64, u64, u64);

fn read_cells(b: &[u8], cells: u32) -> Option<(u64, &[u8])> {
    let n = cells as usize * 4;
    if b.len() < n || cells > 2 && cells != 3 {
        return None;
    }
    // 3-cell addresses (PCI) are not translated; the 2-cell vexpress
    // chip-select form <cs offset> is folded as cs << 32 | offset.
    let mut v = 0u64;
    for i in 0..cells as usize {
        v = (v << 32) | u32::from_be_bytes(b[4 * i..4 * i + 4].try_into().ok()?) as u64;
    }
    Some((v, &b[n..]))
}

/// Translate a child-bus address to a CPU address through the chain of
/// `ranges` above it (`root` = identity).
fn translate(addr: u64, ranges: &[Range], root: bool) -> Option<u64> {
    if root {
        return Some(addr);
    }
    ranges.iter().find(|(c, _, sz)| addr >= *c && addr - c < *sz).map(|(c, p, _)| p + (addr - c))
}

fn walk_devices(n: &DtNode, path: &str, ac: u32, sc: u32, ranges: &[Range], root: bool, out: &mut Vec<(String, u64, u64)>) {
    if n.prop_str("status").is_some_and(|s| s != "okay" && s != "ok") {
        return;
    }
    if let Some(mut reg) = n.prop("reg") {
        while let Some((a, rest)) = read_cells(reg, ac) {
            let Some((sz, rest)) = read_cells(rest, sc) else { break };
            reg = rest;
            if let Some(pa) = translate(a, ranges, root) {
                if sz > 0 {
                    out.push((path.to_string(), pa, sz));
                }
            }
        }
    }
    // Children: through this node's `ranges` (empty = identity, absent =
    // not memory-mapped: skip the subtree).
    let cac = n.prop_u32("#address-cells").unwrap_or(2);
    let csc = n.prop_u32("#size-cells").unwrap_or(1);
    let Some(r) = n.prop("ranges") else { return };
    let (child_ranges, child_root) = if r.is_empty() {
        (ranges.to_vec(), root)
    } else {
        let mut v = Vec::new();
        let mut b = r;
        while let Some((c, rest)) = read_cells(b, cac) {
            let Some((p, rest)) = read_cells(rest, ac) else { break };
            let Some((sz, rest)) = read_cells(rest, csc) else { break };
            b = rest;
            if let Some(pp) = translate(p, ranges, root) {
                v.push((c, pp, sz));
            }
        }
        (v, false)
    };
    for c in &n.children {
        walk_devices(c, &format!("{path}/{}", c.name), cac, csc, &child_ranges, child_root, out);
    }
}
