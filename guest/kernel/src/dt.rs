//! Reading the flattened device tree the firmware hands over (r2).
//!
//! The `fdt` crate parses; this module checks the header against the
//! memory it lives in first, and reads `reg`-style properties itself with
//! the parent's `#address-cells` / `#size-cells`, validating every length,
//! so that a malformed tree gives an error line instead of a fault.
use fdt::node::FdtNode;
use fdt::Fdt;

pub const FDT_MAGIC: u32 = 0xd00d_feed;
/// The largest tree we accept (Linux's MAX_FDT_SIZE on ARM is 1 MiB).
pub const MAX_FDT_SIZE: u32 = 1 << 20;

#[derive(Debug, Clone, Copy)]
pub enum DtError {
    Misaligned(u32),
    BadMagic(u32),
    BadSize(u32),
    Parse,
}

impl core::fmt::Display for DtError {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        match self {
            DtError::Misaligned(a) => write!(f, "DTB at {:#010x} is not 8-byte aligned", a),
            DtError::BadMagic(m) => write!(f, "bad DTB magic {:#010x} (expected 0xd00dfeed)", m),
            DtError::BadSize(s) => write!(f, "DTB totalsize {} out of range", s),
            DtError::Parse => write!(f, "DTB structure block is malformed"),
        }
    }
}

/// Read the header of the tree at linear-map address `va` and return its
/// total size.
pub fn check_header(va: u32) -> Result<u32, DtError> {
    if va & 7 != 0 {
        return Err(DtError::Misaligned(va));
    }
    // `va` lies in the kernel linear map (the firmware placed the DTB
    // inside RAM), so reading the 8-byte header is a valid load.
    let (magic, size) = (u32::from_be(crate::arch::ram_read32(va)), u32::from_be(crate::arch::ram_read32(va + 4)));
    if magic != FDT_MAGIC {
        return Err(DtError::BadMagic(magic));
    }
    if !(40..=MAX_FDT_SIZE).contains(&size) {
        return Err(DtError::BadSize(size));
    }
    Ok(size)
}

/// The tree, borrowed from RAM for the kernel's lifetime.
pub fn open(va: u32, size: u32) -> Result<Fdt<'static>, DtError> {
    // SAFETY: `check_header` verified the size; the DTB region is reserved
    // in memblock and never freed, so the slice stays valid and unchanged.
    let bytes = unsafe { core::slice::from_raw_parts(va as *const u8, size as usize) };
    Fdt::new(bytes).map_err(|_| DtError::Parse)
}

/// Big-endian cells of a property as (address, size) pairs.
pub struct RegIter<'a> {
    data: &'a [u8],
    ac: usize,
    sc: usize,
}
impl<'a> RegIter<'a> {
    pub fn new(data: &'a [u8], ac: usize, sc: usize) -> Option<Self> {
        if ac == 0 || ac > 2 || sc > 2 || data.len() % (4 * (ac + sc)) != 0 {
            return None;
        }
        Some(RegIter { data, ac, sc })
    }
}
fn read_cells(d: &[u8], n: usize) -> u64 {
    let mut v = 0u64;
    for i in 0..n {
        v = (v << 32) | u32::from_be_bytes([d[4 * i], d[4 * i + 1], d[4 * i + 2], d[4 * i + 3]]) as u64;
    }
    v
}
impl Iterator for RegIter<'_> {
    type Item = (u64, u64);
    fn next(&mut self) -> Option<(u64, u64)> {
        let w = 4 * (self.ac + self.sc);
        if self.data.len() < w {
            return None;
        }
        let a = read_cells(self.data, self.ac);
        let s = read_cells(&self.data[4 * self.ac..], self.sc);
        self.data = &self.data[w..];
        Some((a, s))
    }
}

/// `#address-cells` / `#size-cells` of a node (defaults 2 / 1 as Linux's
/// `OF_ROOT_NODE_*_CELLS_DEFAULT`).
pub fn cells(node: &FdtNode) -> (usize, usize) {
    let get = |n: &str, d: usize| {
        node.property(n)
            .and_then(|p| if p.value.len() == 4 { Some(read_cells(p.value, 1) as usize) } else { None })
            .unwrap_or(d)
    };
    (get("#address-cells", 2), get("#size-cells", 1))
}

/// A single big-endian integer property of 1 or 2 cells.
pub fn prop_u64(node: &FdtNode, name: &str) -> Option<u64> {
    let p = node.property(name)?;
    match p.value.len() {
        4 => Some(read_cells(p.value, 1)),
        8 => Some(read_cells(p.value, 2)),
        _ => None,
    }
}

/// A string property (first string of a string list).
pub fn prop_str<'a>(node: &FdtNode<'_, 'a>, name: &str) -> Option<&'a str> {
    let p = node.property(name)?;
    let end = p.value.iter().position(|&c| c == 0).unwrap_or(p.value.len());
    core::str::from_utf8(&p.value[..end]).ok()
}

/// `of_fdt_device_is_available()`: no `status`, or `status` is `okay` or
/// `ok` (compared up to the first NUL, as `strcmp` does, on raw bytes).
pub fn is_available(node: &FdtNode) -> bool {
    match node.property("status") {
        None => true,
        Some(p) => {
            let end = p.value.iter().position(|&c| c == 0).unwrap_or(p.value.len());
            matches!(&p.value[..end], b"okay" | b"ok")
        }
    }
}

/// Whether a `compatible` string list contains `want`.
pub fn is_compatible(node: &FdtNode, want: &str) -> bool {
    match node.property("compatible") {
        Some(p) => p.value.split(|&c| c == 0).any(|s| s == want.as_bytes()),
        None => false,
    }
}
