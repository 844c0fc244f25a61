//! `/reserved-memory` handling, following Linux 6.1
//! `early_init_fdt_scan_reserved_mem()` and its helpers in
//! `drivers/of/fdt.c` and `drivers/of/of_reserved_mem.c`, with the two
//! `shared-dma-pool` init functions: `rmem_cma_setup()`
//! (kernel/dma/contiguous.c) and `rmem_dma_setup()` (kernel/dma/coherent.c).
//!
//! The kernel reads the DTB and fills one [`RmemNode`] per child of
//! `/reserved-memory`, copying the cell-encoded properties raw
//! ([`PropCells`]), so that the length checks and `#address-cells` /
//! `#size-cells` decoding here are Linux's own.
//!
//! `RESERVEDMEM_OF_DECLARE` order: both init functions match
//! `shared-dma-pool`; `contiguous.o` links before `coherent.o` in
//! kernel/dma/Makefile, so `rmem_cma_setup()` is tried first and
//! `rmem_dma_setup()` gets the node when it fails.

use core::fmt;

use crate::cma::{CmaAreas, CmaId, Errno, Level, Log};
use crate::cmdline::FixedStr;
use crate::config::Config;
use crate::memblock::{Memblock, Pa, PhysAddr, MEMBLOCK_ALLOC_ANYWHERE, SMP_CACHE_BYTES};

/// `MAX_RESERVED_REGIONS`.
pub const MAX_RESERVED_REGIONS: usize = 64;
/// Cells kept per property (128 bytes: 16 `reg` pairs of 2+2 cells).
pub const PROP_MAX_CELLS: usize = 32;
/// Bytes kept of a `compatible` list.
pub const COMPATIBLE_MAX: usize = 128;
const SZ_1M: u64 = 1 << 20;
/// `OF_MAX_ADDR_CELLS` (drivers/of/address.c): the most cells an address
/// (or size) of any bus has. Linux's flat scan does not check the root's
/// counts and overflows `t_len` on absurd ones; we refuse them.
pub const OF_MAX_CELLS: u32 = 4;

/// Why `/reserved-memory` was not scanned at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RmemError {
    /// The root's `#address-cells` / `#size-cells` are out of range.
    RootCells { addr_cells: u32, size_cells: u32 },
}

impl fmt::Display for RmemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RootCells { addr_cells, size_cells } => write!(
                f,
                "root #address-cells={addr_cells}/#size-cells={size_cells} out of range (1-{OF_MAX_CELLS} and 0-{OF_MAX_CELLS}), /reserved-memory ignored"
            ),
        }
    }
}

/// A cell-encoded property as found in the FDT: its length in bytes (which
/// need not be a multiple of 4: Linux checks it) and its cells, host order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PropCells {
    cells: [u32; PROP_MAX_CELLS],
    len: usize,
}

impl PropCells {
    /// From the raw big-endian property bytes (cells beyond
    /// [`PROP_MAX_CELLS`] are dropped; `len` still records the full length).
    pub fn from_be_bytes(b: &[u8]) -> Self {
        let mut cells = [0u32; PROP_MAX_CELLS];
        for (i, c) in b.chunks_exact(4).take(PROP_MAX_CELLS).enumerate() {
            cells[i] = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
        }
        Self { cells, len: b.len() }
    }

    /// From cells.
    pub fn from_cells(c: &[u32]) -> Self {
        let mut cells = [0u32; PROP_MAX_CELLS];
        let n = c.len().min(PROP_MAX_CELLS);
        cells[..n].copy_from_slice(&c[..n]);
        Self { cells, len: c.len() * 4 }
    }

    /// Encode `(addr, size)` pairs with the given cell counts.
    pub fn from_pairs(pairs: &[(u64, u64)], addr_cells: u32, size_cells: u32) -> Self {
        let mut p = Self { cells: [0; PROP_MAX_CELLS], len: 0 };
        for &(a, s) in pairs {
            p.push(a, addr_cells);
            p.push(s, size_cells);
        }
        p
    }

    /// Encode one number in `n` cells.
    pub fn from_number(v: u64, n: u32) -> Self {
        let mut p = Self { cells: [0; PROP_MAX_CELLS], len: 0 };
        p.push(v, n);
        p
    }

    fn push(&mut self, v: u64, n: u32) {
        for k in (0..n).rev() {
            let i = self.len / 4;
            if i < PROP_MAX_CELLS {
                self.cells[i] = if k >= 2 { 0 } else { (v >> (32 * k)) as u32 };
            }
            self.len += 4;
        }
    }

    /// Length in bytes (`len` from `of_get_flat_dt_prop()`).
    pub fn len_bytes(&self) -> usize {
        self.len
    }

    /// `dt_mem_next_cell()` / `of_read_number()` of `n` cells at cell `at`,
    /// stored into a 32-bit `phys_addr_t` as Linux does (high bits lost).
    /// Only the last two cells survive the shifts of a u64, so only they
    /// are read (bounded work for any `n`).
    fn read(&self, at: usize, n: usize) -> u64 {
        let mut r = 0u64;
        let end = at.saturating_add(n);
        for i in end.saturating_sub(2).max(at)..end {
            r = (r << 32) | self.cells.get(i).copied().unwrap_or(0) as u64;
        }
        r & crate::memblock::PHYS_ADDR_MAX
    }
}

/// One child of `/reserved-memory`, as the kernel reads it from the DTB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RmemNode {
    /// Node name with unit address (`fdt_get_name()`: `cma@69000000`,
    /// `linux,cma`): the reserved_mem and CMA area name.
    pub name: FixedStr<64>,
    /// Raw `compatible` (NUL-separated list).
    pub compatible: FixedStr<COMPATIBLE_MAX>,
    /// `of_fdt_device_is_available()`: no `status`, or `okay`/`ok`.
    pub available: bool,
    pub reg: Option<PropCells>,
    pub size: Option<PropCells>,
    pub alignment: Option<PropCells>,
    pub alloc_ranges: Option<PropCells>,
    pub reusable: bool,
    pub no_map: bool,
    /// `linux,cma-default`.
    pub cma_default: bool,
    /// `linux,dma-default` (only honoured with `CONFIG_DMA_GLOBAL_POOL`,
    /// which ARM selects only without an MMU: recorded, not used).
    pub dma_default: bool,
    /// `phandle` or `linux,phandle`.
    pub phandle: Option<u32>,
}

impl RmemNode {
    /// A node with no properties.
    pub fn new(name: &str) -> Self {
        Self {
            name: FixedStr::from_str_truncate(name).0,
            compatible: FixedStr::new(),
            available: true,
            reg: None,
            size: None,
            alignment: None,
            alloc_ranges: None,
            reusable: false,
            no_map: false,
            cma_default: false,
            dma_default: false,
            phandle: None,
        }
    }

    /// Builder: `compatible` (one string; NUL-separate several).
    pub fn compatible(mut self, c: &str) -> Self {
        self.compatible = FixedStr::from_str_truncate(c).0;
        self
    }
    /// Builder: `reg` with the given cells.
    pub fn reg(mut self, pairs: &[(u64, u64)], addr_cells: u32, size_cells: u32) -> Self {
        self.reg = Some(PropCells::from_pairs(pairs, addr_cells, size_cells));
        self
    }
    /// Builder: `size` in `size_cells` cells.
    pub fn size(mut self, size: u64, size_cells: u32) -> Self {
        self.size = Some(PropCells::from_number(size, size_cells));
        self
    }
    /// Builder: `alignment` in `addr_cells` cells.
    pub fn alignment(mut self, a: u64, addr_cells: u32) -> Self {
        self.alignment = Some(PropCells::from_number(a, addr_cells));
        self
    }
    /// Builder: `alloc-ranges`.
    pub fn alloc_ranges(mut self, pairs: &[(u64, u64)], addr_cells: u32, size_cells: u32) -> Self {
        self.alloc_ranges = Some(PropCells::from_pairs(pairs, addr_cells, size_cells));
        self
    }
    /// Builder: `reusable`.
    pub fn reusable(mut self) -> Self {
        self.reusable = true;
        self
    }
    /// Builder: `no-map`.
    pub fn no_map(mut self) -> Self {
        self.no_map = true;
        self
    }
    /// Builder: `linux,cma-default`.
    pub fn cma_default(mut self) -> Self {
        self.cma_default = true;
        self
    }
    /// Builder: `phandle`.
    pub fn phandle(mut self, p: u32) -> Self {
        self.phandle = Some(p);
        self
    }

    /// `of_flat_dt_is_compatible()`: any list entry matching `compat` over
    /// `strlen(compat)` bytes, case-insensitively (`of_compat_cmp()` is
    /// `strncasecmp`, so a longer entry with that prefix matches too).
    pub fn is_compatible(&self, compat: &str) -> bool {
        self.compatible
            .as_str()
            .split('\0')
            .filter(|s| !s.is_empty())
            .any(|cp| cp.len() >= compat.len() && cp.as_bytes()[..compat.len()].eq_ignore_ascii_case(compat.as_bytes()))
    }
}

/// The `/reserved-memory` node itself.
#[derive(Clone, Copy, Debug)]
pub struct ReservedMemoryDt<'n> {
    /// Its `#address-cells` (must equal the root's).
    pub addr_cells: Option<u32>,
    /// Its `#size-cells` (must equal the root's).
    pub size_cells: Option<u32>,
    /// It has a `ranges` property.
    pub has_ranges: bool,
    /// Its children, in DT order.
    pub children: &'n [RmemNode],
}

/// What a reserved region was set up as (`rmem->ops`/`priv`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RmemOps {
    /// No init function accepted it (or none matched).
    None,
    /// `rmem_cma_ops`: a CMA area.
    Cma(CmaId),
    /// `rmem_dma_ops`: a per-device coherent pool (`dma_declare_coherent`).
    DmaCoherent,
}

/// `struct reserved_mem`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReservedMem {
    pub name: FixedStr<64>,
    /// Index of the node in [`ReservedMemoryDt::children`] (`fdt_node`).
    pub node: usize,
    pub phandle: Option<u32>,
    pub base: u64,
    pub size: u64,
    pub ops: RmemOps,
}

impl ReservedMem {
    const EMPTY: Self = Self { name: FixedStr::new(), node: 0, phandle: None, base: 0, size: 0, ops: RmemOps::None };
}

/// `reserved_mem[]` and `reserved_mem_count`.
#[derive(Clone, Debug)]
pub struct ReservedMemTable {
    entries: [ReservedMem; MAX_RESERVED_REGIONS],
    count: usize,
}

impl Default for ReservedMemTable {
    fn default() -> Self {
        Self::new()
    }
}

/// The kernel's `sort()` (lib/sort.c, bottom-up heapsort), so that entries
/// comparing equal end up in the same order as in Linux.
pub fn linux_sort<T>(v: &mut [T], cmp: impl Fn(&T, &T) -> core::cmp::Ordering) {
    let num = v.len();
    let mut n = num;
    let mut a = num / 2;
    if a == 0 {
        return;
    }
    let parent = |i: usize| (i - 1) / 2;
    loop {
        if a > 0 {
            a -= 1; // Building heap: sift down --a
        } else {
            n -= 1;
            if n == 0 {
                break; // Sort complete
            }
            v.swap(0, n); // Sorting: Extract root to --n
        }
        // Sift element at "a" down into heap (bottom-up variant).
        let mut b = a;
        let (mut c, mut d);
        loop {
            c = 2 * b + 1;
            d = c + 1;
            if d >= n {
                break;
            }
            b = if cmp(&v[c], &v[d]) != core::cmp::Ordering::Less { c } else { d };
        }
        if d == n {
            b = c; // Special case last leaf with no sibling
        }
        // Now backtrack from "b" to the correct location for "a"
        while b != a && cmp(&v[a], &v[b]) != core::cmp::Ordering::Less {
            b = parent(b);
        }
        let c = b;
        while b != a {
            b = parent(b);
            v.swap(b, c);
        }
    }
}

/// One `reg`/`alloc-ranges` entry length in bytes (the counts are at
/// most [`OF_MAX_CELLS`], checked on entry).
fn t_len(ac: u32, sc: u32) -> usize {
    (ac as usize + sc as usize) * 4
}

impl ReservedMemTable {
    /// Empty.
    pub const fn new() -> Self {
        Self { entries: [ReservedMem::EMPTY; MAX_RESERVED_REGIONS], count: 0 }
    }

    /// The regions, in the order `fdt_init_reserved_mem()` left them
    /// (sorted by base, dynamic ones first).
    pub fn entries(&self) -> &[ReservedMem] {
        &self.entries[..self.count]
    }

    /// `fdt_reserved_mem_save_node()`.
    fn fdt_reserved_mem_save_node(&mut self, node: usize, uname: &FixedStr<64>, base: u64, size: u64, log: &mut dyn Log) {
        if self.count == MAX_RESERVED_REGIONS {
            log.line_level(Level::Err, format_args!("OF: reserved mem: not enough space for all defined regions."));
            return;
        }
        self.entries[self.count] = ReservedMem { name: *uname, node, phandle: None, base, size, ops: RmemOps::None };
        self.count += 1;
    }

    /// `early_init_fdt_scan_reserved_mem()`: reserve the header's
    /// `/memreserve/` entries, then `fdt_scan_reserved_mem()` (reserve every
    /// `reg`) and `fdt_init_reserved_mem()` (allocate `size` nodes, run the
    /// init functions: CMA areas, coherent pools). `root_cells` is the
    /// root node's `(#address-cells, #size-cells)`; counts above
    /// [`OF_MAX_CELLS`] (or no address cells) leave `/reserved-memory`
    /// unscanned and are returned as an error (the `/memreserve/` entries
    /// are still reserved).
    #[allow(clippy::too_many_arguments)]
    pub fn early_init_fdt_scan_reserved_mem(
        &mut self,
        mem_rsv: &[(u64, u64)],
        dt: Option<&ReservedMemoryDt<'_>>,
        root_cells: (u32, u32),
        mb: &mut Memblock,
        areas: &mut CmaAreas<'_>,
        cfg: &Config,
        log: &mut dyn Log,
    ) -> Result<(), RmemError> {
        // Process header /memreserve/ fields
        for &(base, size) in mem_rsv {
            if size == 0 {
                break;
            }
            let _ = mb.memblock_reserve(PhysAddr(base), size);
        }
        let Some(dt) = dt else { return Ok(()) };
        let (ac, sc) = root_cells;
        if !(1..=OF_MAX_CELLS).contains(&ac) || sc > OF_MAX_CELLS {
            return Err(RmemError::RootCells { addr_cells: ac, size_cells: sc });
        }
        if self.fdt_scan_reserved_mem(dt, root_cells, mb, log).is_ok() {
            self.fdt_init_reserved_mem(dt.children, root_cells, mb, areas, cfg, log);
        }
        Ok(())
    }

    /// `__reserved_mem_check_root()` + `fdt_scan_reserved_mem()`.
    fn fdt_scan_reserved_mem(&mut self, dt: &ReservedMemoryDt<'_>, root_cells: (u32, u32), mb: &mut Memblock, log: &mut dyn Log) -> Result<(), Errno> {
        let (ac, sc) = root_cells;
        if dt.size_cells != Some(sc) || dt.addr_cells != Some(ac) || !dt.has_ranges {
            log.line_level(Level::Err, format_args!("OF: fdt: Reserved memory: unsupported node format, ignoring"));
            return Err(Errno::EINVAL);
        }
        for (i, child) in dt.children.iter().enumerate() {
            if !child.available {
                continue;
            }
            let err = self.reserved_mem_reserve_reg(i, child, root_cells, mb, log);
            if err == Err(Errno::ENOENT) && child.size.is_some() {
                self.fdt_reserved_mem_save_node(i, &child.name, 0, 0, log);
            }
        }
        Ok(())
    }

    /// `__reserved_mem_reserve_reg()`: reserve (or mark no-map) every `reg`
    /// entry; save the node with its first entry.
    fn reserved_mem_reserve_reg(&mut self, idx: usize, node: &RmemNode, (ac, sc): (u32, u32), mb: &mut Memblock, log: &mut dyn Log) -> Result<(), Errno> {
        let t_len = t_len(ac, sc);
        let Some(prop) = node.reg else { return Err(Errno::ENOENT) };
        let mut len = prop.len_bytes();
        if t_len == 0 || (len != 0 && len % t_len != 0) {
            log.line_level(
                Level::Err,
                format_args!("OF: fdt: Reserved memory: invalid reg property in '{}', skipping node.", node.name),
            );
            return Err(Errno::EINVAL);
        }
        let nomap = node.no_map;
        let mut at = 0usize;
        let mut first = true;
        while len >= t_len {
            let base = prop.read(at, ac as usize);
            let size = prop.read(at + ac as usize, sc as usize);
            at += (ac + sc) as usize;
            if size != 0 && early_init_dt_reserve_memory(mb, base, size, nomap).is_ok() {
                // pr_debug("Reserved memory: reserved region for node ...")
            } else {
                log.line_level(
                    Level::Err,
                    format_args!(
                        "OF: fdt: Reserved memory: failed to reserve memory for node '{}': base {}, size {} MiB",
                        node.name,
                        Pa(base),
                        size / SZ_1M
                    ),
                );
            }
            len -= t_len;
            if first {
                self.fdt_reserved_mem_save_node(idx, &node.name, base, size, log);
                first = false;
            }
        }
        Ok(())
    }

    /// `__rmem_check_for_overlap()`: sort by (base, size) and report
    /// overlapping neighbours.
    fn rmem_check_for_overlap(&mut self, log: &mut dyn Log) {
        if self.count < 2 {
            return;
        }
        linux_sort(&mut self.entries[..self.count], |a, b| (a.base, a.size).cmp(&(b.base, b.size)));
        for i in 0..self.count - 1 {
            let (this, next) = (self.entries[i], self.entries[i + 1]);
            // 32-bit phys_addr_t arithmetic
            let m = crate::memblock::PHYS_ADDR_MAX;
            if (this.base + this.size) & m > next.base {
                let this_end = (this.base + this.size) & m;
                let next_end = (next.base + next.size) & m;
                log.line_level(Level::Err, format_args!("OF: reserved mem: OVERLAP DETECTED!"));
                log.line_level(
                    Level::Err,
                    format_args!(
                        "{} ({}--{}) overlaps with {} ({}--{})",
                        this.name,
                        Pa(this.base),
                        Pa(this_end),
                        next.name,
                        Pa(next.base),
                        Pa(next_end)
                    ),
                );
            }
        }
    }

    /// `fdt_init_reserved_mem()`.
    fn fdt_init_reserved_mem(
        &mut self,
        nodes: &[RmemNode],
        root_cells: (u32, u32),
        mb: &mut Memblock,
        areas: &mut CmaAreas<'_>,
        cfg: &Config,
        log: &mut dyn Log,
    ) {
        self.rmem_check_for_overlap(log);
        for i in 0..self.count {
            let node = &nodes[self.entries[i].node];
            let nomap = node.no_map;
            self.entries[i].phandle = node.phandle;
            let mut err = Ok(());
            if self.entries[i].size == 0 {
                err = reserved_mem_alloc_size(node, root_cells, mb, areas.cma_min_alignment_bytes(), log).map(|(b, s)| {
                    self.entries[i].base = b;
                    self.entries[i].size = s;
                });
            }
            if err.is_ok() {
                let r = self.reserved_mem_init_node(i, node, mb, areas, cfg, log);
                if let Err(e) = r {
                    if e != Errno::ENOENT {
                        let rm = self.entries[i];
                        log.line_level(Level::Info, format_args!("OF: reserved mem: node {} compatible matching fail", rm.name));
                        if nomap {
                            let _ = mb.memblock_clear_nomap(PhysAddr(rm.base), rm.size);
                        } else {
                            let _ = mb.memblock_phys_free(PhysAddr(rm.base), rm.size);
                        }
                    }
                }
            }
        }
    }

    /// `__reserved_mem_init_node()`: try each `RESERVEDMEM_OF_DECLARE`
    /// entry whose compatible matches, until one accepts.
    fn reserved_mem_init_node(&mut self, i: usize, node: &RmemNode, mb: &mut Memblock, areas: &mut CmaAreas<'_>, cfg: &Config, log: &mut dyn Log) -> Result<(), Errno> {
        const COMPAT: &str = "shared-dma-pool";
        let mut ret = Err(Errno::ENOENT);
        if !node.is_compatible(COMPAT) {
            return ret;
        }
        // cma: rmem_cma_setup, then dma: rmem_dma_setup
        for setup in 0..2 {
            ret = if setup == 0 {
                rmem_cma_setup(&mut self.entries[i], node, mb, areas, cfg, log)
            } else {
                rmem_dma_setup(&mut self.entries[i], node, log)
            };
            if ret.is_ok() {
                log.line_level(
                    Level::Info,
                    format_args!("OF: reserved mem: initialized node {}, compatible id {}", self.entries[i].name, COMPAT),
                );
                break;
            }
        }
        ret
    }

    /// `__find_rmem()`: the region whose node has this phandle.
    pub fn find_by_phandle(&self, phandle: u32) -> Option<&ReservedMem> {
        if phandle == 0 {
            return None;
        }
        self.entries().iter().find(|r| r.phandle == Some(phandle))
    }

    /// `of_reserved_mem_lookup()`: by node name.
    pub fn of_reserved_mem_lookup(&self, name: &str) -> Option<&ReservedMem> {
        self.entries().iter().find(|r| r.name.as_str() == name)
    }

    /// `of_reserved_mem_device_init_by_idx()` for a device whose
    /// `memory-region` points at `phandle`: what `rmem->ops->device_init`
    /// gives the device (`rmem_cma_device_init()` sets `dev->cma_area`).
    /// `-EINVAL` when the phandle is unknown or the region has no ops. The
    /// kernel logs `<dev>: assigned reserved memory node <name>` on success.
    pub fn of_reserved_mem_device_init(&self, phandle: u32) -> Result<(RmemOps, &ReservedMem), Errno> {
        let rmem = self.find_by_phandle(phandle).ok_or(Errno::EINVAL)?;
        match rmem.ops {
            RmemOps::None => Err(Errno::EINVAL),
            ops => Ok((ops, rmem)),
        }
    }
}

/// `early_init_dt_reserve_memory()`.
fn early_init_dt_reserve_memory(mb: &mut Memblock, base: u64, size: u64, nomap: bool) -> Result<(), Errno> {
    if nomap {
        // If the memory is already reserved (by another region), we should
        // not allow it to be marked nomap, but don't worry if the region
        // isn't memory as it won't be mapped.
        if mb.memory.memblock_overlaps_region(base, size) && mb.memblock_is_region_reserved(PhysAddr(base), size) {
            return Err(Errno::EBUSY);
        }
        return mb.memblock_mark_nomap(PhysAddr(base), size).map_err(|e| Errno(e.errno()));
    }
    mb.memblock_reserve(PhysAddr(base), size).map_err(|e| Errno(e.errno()))
}

/// `early_init_dt_alloc_reserved_memory_arch()`.
fn early_init_dt_alloc_reserved_memory_arch(mb: &mut Memblock, size: u64, align: u64, start: u64, end: u64, nomap: bool) -> Result<u64, Errno> {
    let end = if end == 0 { MEMBLOCK_ALLOC_ANYWHERE } else { end };
    let align = if align == 0 { SMP_CACHE_BYTES } else { align };
    let base = mb
        .memblock_phys_alloc_range(size, align, PhysAddr(start), PhysAddr(end))
        .ok_or(Errno::ENOMEM)?
        .0;
    if nomap && mb.memblock_mark_nomap(PhysAddr(base), size).is_err() {
        let _ = mb.memblock_phys_free(PhysAddr(base), size);
        return Err(Errno::ENOMEM);
    }
    Ok(base)
}

/// `__reserved_mem_alloc_size()`: allocate a `size` node (optionally
/// `alignment`, `alloc-ranges`). Returns `(base, size)`.
fn reserved_mem_alloc_size(node: &RmemNode, (ac, sc): (u32, u32), mb: &mut Memblock, cma_min_alignment: u64, log: &mut dyn Log) -> Result<(u64, u64), Errno> {
    let t_len = t_len(ac, sc);
    let uname = &node.name;
    let Some(prop) = node.size else { return Err(Errno::EINVAL) };
    if prop.len_bytes() != sc as usize * 4 {
        log.line_level(Level::Err, format_args!("OF: reserved mem: invalid size property in '{}' node.", uname));
        return Err(Errno::EINVAL);
    }
    let size = prop.read(0, sc as usize);
    let mut align = 0u64;
    if let Some(a) = node.alignment {
        if a.len_bytes() != ac as usize * 4 {
            log.line_level(Level::Err, format_args!("OF: reserved mem: invalid alignment property in '{}' node.", uname));
            return Err(Errno::EINVAL);
        }
        align = a.read(0, ac as usize);
    }
    let nomap = node.no_map;
    // Need adjust the alignment to satisfy the CMA requirement
    if node.is_compatible("shared-dma-pool") && node.reusable && !nomap {
        align = align.max(cma_min_alignment);
    }
    // memblock needs a power of two; Linux would misbehave silently
    if align != 0 && !align.is_power_of_two() {
        align = align.next_power_of_two();
    }
    let mut base = 0u64;
    if let Some(ranges) = node.alloc_ranges {
        let mut len = ranges.len_bytes();
        if t_len == 0 || len % t_len != 0 {
            log.line_level(
                Level::Err,
                format_args!("OF: reserved mem: invalid alloc-ranges property in '{}', skipping node.", uname),
            );
            return Err(Errno::EINVAL);
        }
        let mut at = 0usize;
        while len > 0 {
            let start = ranges.read(at, ac as usize);
            let end = (start + ranges.read(at + ac as usize, sc as usize)) & crate::memblock::PHYS_ADDR_MAX;
            at += (ac + sc) as usize;
            if let Ok(b) = early_init_dt_alloc_reserved_memory_arch(mb, size, align, start, end, nomap) {
                base = b;
                break;
            }
            len -= t_len;
        }
    } else if let Ok(b) = early_init_dt_alloc_reserved_memory_arch(mb, size, align, 0, 0, nomap) {
        base = b;
    }
    if base == 0 {
        log.line_level(
            Level::Err,
            format_args!("OF: reserved mem: failed to allocate memory for node '{}': size {} MiB", uname, size / SZ_1M),
        );
        return Err(Errno::ENOMEM);
    }
    Ok((base, size))
}

/// `rmem_cma_setup()`: a `reusable`, not `no-map`, suitably aligned
/// `shared-dma-pool` becomes a CMA area named after the node;
/// `linux,cma-default` makes it the default area — unless `cma=` was given
/// (6.1: the node is bypassed and later freed).
pub fn rmem_cma_setup(rmem: &mut ReservedMem, node: &RmemNode, mb: &mut Memblock, areas: &mut CmaAreas<'_>, cfg: &Config, log: &mut dyn Log) -> Result<(), Errno> {
    let default_cma = node.cma_default;
    if cfg.cma.is_some() && default_cma {
        log.line_level(
            Level::Info,
            format_args!("Reserved memory: bypass {} node, using cmdline CMA params instead", rmem.name),
        );
        return Err(Errno::EBUSY);
    }
    if !node.reusable || node.no_map {
        return Err(Errno::EINVAL);
    }
    if !(rmem.base | rmem.size).is_multiple_of(areas.cma_min_alignment_bytes()) {
        log.line_level(Level::Err, format_args!("Reserved memory: incorrect alignment of CMA region"));
        return Err(Errno::EINVAL);
    }
    let id = match areas.cma_init_reserved_mem(mb, PhysAddr(rmem.base), rmem.size, 0, Some(rmem.name.as_str()), log) {
        Ok(id) => id,
        Err(e) => {
            log.line_level(Level::Err, format_args!("Reserved memory: unable to setup CMA region"));
            return Err(e.errno());
        }
    };
    // Architecture specific contiguous memory fixup: the kernel remaps
    // lowmem CMA from the area table (dma_contiguous_early_fixup()).
    if default_cma {
        areas.dma_contiguous_default_area = Some(id);
    }
    rmem.ops = RmemOps::Cma(id);
    log.line_level(
        Level::Info,
        format_args!("Reserved memory: created CMA memory pool at {}, size {} MiB", Pa(rmem.base), rmem.size / SZ_1M),
    );
    Ok(())
}

/// `rmem_dma_setup()`: a non-reusable `shared-dma-pool` is a per-device
/// coherent pool; on ARM it must be `no-map`.
pub fn rmem_dma_setup(rmem: &mut ReservedMem, node: &RmemNode, log: &mut dyn Log) -> Result<(), Errno> {
    if node.reusable {
        return Err(Errno::EINVAL);
    }
    // CONFIG_ARM
    if !node.no_map {
        log.line_level(Level::Err, format_args!("Reserved memory: regions without no-map are not yet supported"));
        return Err(Errno::EINVAL);
    }
    rmem.ops = RmemOps::DmaCoherent;
    log.line_level(
        Level::Info,
        format_args!("Reserved memory: created DMA memory pool at {}, size {} MiB", Pa(rmem.base), rmem.size / SZ_1M),
    );
    Ok(())
}

impl fmt::Display for RmemOps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("none"),
            Self::Cma(id) => write!(f, "cma area {}", id.0),
            Self::DmaCoherent => f.write_str("coherent pool"),
        }
    }
}

#[cfg(test)]
mod tests;
