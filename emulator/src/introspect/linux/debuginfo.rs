//! What vmcoreinfo does not say, from the kernel's own debug information:
//! the `vmlinux` of Debian's `linux-image-*-dbg` package, its ELF symbol
//! table (addresses of `cma_areas`, `__per_cpu_offset`, …) and its DWARF
//! (read with `gimli`): struct layouts (`struct cma`, `struct zone`,
//! `struct per_cpu_pages`, …), enumerators (`PG_reserved`,
//! `NR_FREE_CMA_PAGES`, `MIGRATE_CMA`, `NR_PAGEBLOCK_BITS`, …) and array
//! lengths. Only the compile units that define them are parsed.
use gimli::{AttributeValue, EndianSlice, LittleEndian};
use std::collections::HashMap;
use std::path::Path;

type Slice<'a> = EndianSlice<'a, LittleEndian>;

/// Why the debug information could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DebugInfoError {
    #[error("{path}: {err}")]
    Io { path: String, err: std::io::Error },
    #[error("{path}: not an ELF file: {err}")]
    Elf { path: String, err: String },
    #[error("{path}: DWARF: {err}")]
    Dwarf { path: String, err: gimli::Error },
    /// No compile unit named one of the sources we read.
    #[error("{path}: no DWARF compile unit for {unit} (a vmlinux without debug info?)")]
    NoUnit { path: String, unit: &'static str },
    /// A struct, member, enumerator, symbol or array the readers need is missing.
    #[error("kernel debug info has no {0}")]
    Missing(String),
}

/// One member of a struct (anonymous unions and structs flattened).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    pub offset: u32,
    /// Size of the member's type in bytes (for an array: the whole array).
    pub size: u32,
    /// Elements of an array member (its first dimension).
    pub count: Option<u32>,
}

/// A struct's size and members.
#[derive(Clone, Debug, Default)]
pub struct StructInfo {
    pub size: u32,
    pub members: HashMap<String, Member>,
}

/// The parts of a kernel's debug information the Linux readers use.
#[derive(Clone, Debug, Default)]
pub struct DebugInfo {
    structs: HashMap<String, StructInfo>,
    enumerators: HashMap<String, i64>,
    /// Global variables that are arrays: elements of the first dimension.
    array_vars: HashMap<String, u32>,
    symbols: HashMap<String, u32>,
    /// The ELF `.note.gnu.build-id`, hex.
    pub build_id: Option<String>,
    /// The kernel's `.text` (for [`DebugInfo::call_returns`]) and its address.
    text: Vec<u8>,
    text_addr: u32,
}

/// Compile units parsed: they define everything the readers use.
pub const UNITS: [&str; 3] = ["mm/cma.c", "mm/page_alloc.c", "mm/swapfile.c"];

impl DebugInfo {
    /// Read `vmlinux` (symbols, build id, and the DWARF of [`UNITS`]).
    pub fn load(path: &Path) -> Result<DebugInfo, DebugInfoError> {
        let p = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|err| DebugInfoError::Io { path: p.clone(), err })?;
        // SAFETY: the file is mapped read-only and only read; a cache file
        // is replaced by rename, never rewritten in place.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|err| DebugInfoError::Io { path: p.clone(), err })?;
        let data: &[u8] = &map;
        let elf = goblin::elf::Elf::parse(data).map_err(|e| DebugInfoError::Elf { path: p.clone(), err: e.to_string() })?;
        let mut info = DebugInfo::default();
        for s in elf.syms.iter() {
            if let Some(name) = elf.strtab.get_at(s.st_name) {
                if !name.is_empty() && s.st_value != 0 {
                    info.symbols.entry(name.to_string()).or_insert(s.st_value as u32);
                }
            }
        }
        let section = |name: &str| -> &[u8] {
            for sh in &elf.section_headers {
                if elf.shdr_strtab.get_at(sh.sh_name) == Some(name) && sh.sh_type != goblin::elf::section_header::SHT_NOBITS {
                    let (o, n) = (sh.sh_offset as usize, sh.sh_size as usize);
                    return data.get(o..o.saturating_add(n)).unwrap_or(&[]);
                }
            }
            &[]
        };
        for sh in &elf.section_headers {
            if elf.shdr_strtab.get_at(sh.sh_name) == Some(".text") {
                info.text = section(".text").to_vec();
                info.text_addr = sh.sh_addr as u32;
            }
        }
        let note = section(".note.gnu.build-id");
        // Elf32_Nhdr: namesz, descsz, type, then "GNU\0" and the id.
        if note.len() >= 16 {
            let descsz = u32::from_le_bytes(note[4..8].try_into().unwrap()) as usize;
            let namesz = u32::from_le_bytes(note[0..4].try_into().unwrap()) as usize;
            let start = 12 + namesz.div_ceil(4) * 4;
            if let Some(id) = note.get(start..start + descsz) {
                info.build_id = Some(id.iter().map(|b| format!("{b:02x}")).collect());
            }
        }
        let dwarf = gimli::Dwarf::load(|id| -> Result<Slice<'_>, gimli::Error> { Ok(EndianSlice::new(section(id.name()), LittleEndian)) })
            .map_err(|err| DebugInfoError::Dwarf { path: p.clone(), err })?;
        let derr = |err| DebugInfoError::Dwarf { path: p.clone(), err };
        let mut found = [false; UNITS.len()];
        let mut headers = dwarf.units();
        while let Some(h) = headers.next().map_err(derr)? {
            let unit = dwarf.unit(h).map_err(derr)?;
            let Some(name) = unit.name.and_then(|n| n.to_string().ok().map(|s| s.to_string())) else { continue };
            let Some(k) = UNITS.iter().position(|u| name == *u || name.ends_with(&format!("/{u}"))) else { continue };
            found[k] = true;
            info.read_unit(&dwarf, &unit).map_err(derr)?;
            if found.iter().all(|f| *f) {
                break;
            }
        }
        if let Some(k) = found.iter().position(|f| !f) {
            return Err(DebugInfoError::NoUnit { path: p, unit: UNITS[k] });
        }
        Ok(info)
    }

    /// Top-level structs, enums and array variables of one unit.
    fn read_unit(&mut self, dwarf: &gimli::Dwarf<Slice<'_>>, unit: &gimli::Unit<Slice<'_>>) -> gimli::Result<()> {
        let mut tree = unit.entries_tree(None)?;
        let root = tree.root()?;
        let mut children = root.children();
        while let Some(node) = children.next()? {
            let e = node.entry();
            let name = match (e.attr_value(gimli::DW_AT_name)?, e.attr_value(gimli::DW_AT_specification)?) {
                (Some(v), _) => dwarf.attr_string(unit, v)?.to_string_lossy().into_owned(),
                // a definition of something declared before (`static T x[N]`
                // after the header's `extern T x[]`): the declaration names it
                (None, Some(AttributeValue::UnitRef(d))) => match unit.entry(d)?.attr_value(gimli::DW_AT_name)? {
                    Some(v) => dwarf.attr_string(unit, v)?.to_string_lossy().into_owned(),
                    None => String::new(),
                },
                _ => String::new(),
            };
            match e.tag() {
                gimli::DW_TAG_structure_type if !name.is_empty() && e.attr_value(gimli::DW_AT_declaration)?.is_none() => {
                    if self.structs.contains_key(&name) {
                        continue;
                    }
                    let size = udata(e.attr_value(gimli::DW_AT_byte_size)?).unwrap_or(0) as u32;
                    let mut s = StructInfo { size, members: HashMap::new() };
                    collect_members(dwarf, unit, e.offset(), 0, &mut s.members)?;
                    self.structs.insert(name, s);
                }
                gimli::DW_TAG_enumeration_type => {
                    let mut kids = node.children();
                    while let Some(k) = kids.next()? {
                        let ke = k.entry();
                        if ke.tag() != gimli::DW_TAG_enumerator {
                            continue;
                        }
                        let (Some(n), Some(v)) = (ke.attr_value(gimli::DW_AT_name)?, ke.attr_value(gimli::DW_AT_const_value)?) else { continue };
                        let n = dwarf.attr_string(unit, n)?.to_string_lossy().into_owned();
                        if let Some(v) = sdata(v) {
                            self.enumerators.entry(n).or_insert(v);
                        }
                    }
                }
                // (a declaration's array may have no bound: `extern T x[];`)
                gimli::DW_TAG_variable if !name.is_empty() => {
                    if let Some(AttributeValue::UnitRef(t)) = e.attr_value(gimli::DW_AT_type)? {
                        if let (_, Some(n)) = type_size(unit, t)? {
                            if n > 0 {
                                self.array_vars.entry(name).or_insert(n);
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// `struct name`'s layout.
    pub fn struct_info(&self, name: &str) -> Result<&StructInfo, DebugInfoError> {
        self.structs.get(name).ok_or_else(|| DebugInfoError::Missing(format!("struct {name}")))
    }
    /// `struct ty`'s member `m`.
    pub fn member(&self, ty: &str, m: &str) -> Result<Member, DebugInfoError> {
        self.struct_info(ty)?.members.get(m).copied().ok_or_else(|| DebugInfoError::Missing(format!("member {m} of struct {ty}")))
    }
    /// The offset of `ty.m`.
    pub fn offset(&self, ty: &str, m: &str) -> Result<u32, DebugInfoError> {
        self.member(ty, m).map(|m| m.offset)
    }
    /// `sizeof(struct ty)`.
    pub fn size(&self, ty: &str) -> Result<u32, DebugInfoError> {
        self.struct_info(ty).map(|s| s.size)
    }
    /// The value of enumerator `name`.
    pub fn enumerator(&self, name: &str) -> Result<i64, DebugInfoError> {
        self.enumerators.get(name).copied().ok_or_else(|| DebugInfoError::Missing(format!("enumerator {name}")))
    }
    /// Elements of the global array `name`.
    pub fn array_len(&self, name: &str) -> Result<u32, DebugInfoError> {
        self.array_vars.get(name).copied().ok_or_else(|| DebugInfoError::Missing(format!("array variable {name}")))
    }
    /// The address of symbol `name` (ELF symbol table).
    pub fn symbol(&self, name: &str) -> Result<u32, DebugInfoError> {
        self.symbols.get(name).copied().ok_or_else(|| DebugInfoError::Missing(format!("symbol {name}")))
    }
    /// The return addresses of every call to function `name` in the
    /// kernel's text: the instruction after each ARM `BL name` (an
    /// unconditional or conditional branch-with-link, encoding A1), where
    /// the caller resumes once `name` returned. Empty for a Thumb-2 kernel.
    pub fn call_returns(&self, name: &str) -> Vec<u32> {
        let Ok(target) = self.symbol(name) else { return Vec::new() };
        self.text
            .chunks_exact(4)
            .enumerate()
            .filter_map(|(i, w)| {
                let w = u32::from_le_bytes(w.try_into().unwrap());
                let at = self.text_addr.wrapping_add(i as u32 * 4);
                // cond != 0b1111 (BLX), bits 27..24 = 0b1011; PC reads as at + 8
                let off = (((w & 0x00ff_ffff) << 8) as i32 >> 6) as u32;
                (w >> 28 != 0xf && (w >> 24) & 0xf == 0xb && at.wrapping_add(8).wrapping_add(off) == target).then_some(at + 4)
            })
            .collect()
    }
    /// Whether the symbol table has `name`.
    pub fn has_symbol(&self, name: &str) -> bool {
        self.symbols.contains_key(name)
    }
}

fn udata(v: Option<AttributeValue<Slice<'_>>>) -> Option<u64> {
    v.and_then(|v| v.udata_value())
}

fn sdata(v: AttributeValue<Slice<'_>>) -> Option<i64> {
    match v {
        AttributeValue::Sdata(x) => Some(x),
        AttributeValue::Udata(x) => Some(x as i64),
        AttributeValue::Data1(x) => Some(x as i8 as i64),
        AttributeValue::Data2(x) => Some(x as i16 as i64),
        AttributeValue::Data4(x) => Some(x as i32 as i64),
        AttributeValue::Data8(x) => Some(x as i64),
        _ => None,
    }
}

/// Members of the struct/union at `off`, at `base` bytes into the outer
/// struct; anonymous struct/union members are flattened into `out`.
fn collect_members(dwarf: &gimli::Dwarf<Slice<'_>>, unit: &gimli::Unit<Slice<'_>>, off: gimli::UnitOffset, base: u32, out: &mut HashMap<String, Member>) -> gimli::Result<()> {
    let mut tree = unit.entries_tree(Some(off))?;
    let root = tree.root()?;
    let mut kids = root.children();
    while let Some(k) = kids.next()? {
        let e = k.entry();
        if e.tag() != gimli::DW_TAG_member {
            continue;
        }
        let loc = udata(e.attr_value(gimli::DW_AT_data_member_location)?).unwrap_or(0) as u32;
        let Some(AttributeValue::UnitRef(t)) = e.attr_value(gimli::DW_AT_type)? else { continue };
        match e.attr_value(gimli::DW_AT_name)? {
            Some(n) => {
                let n = dwarf.attr_string(unit, n)?.to_string_lossy().into_owned();
                let (size, count) = type_size(unit, t)?;
                out.entry(n).or_insert(Member { offset: base + loc, size: size as u32, count });
            }
            None => {
                let t = strip(unit, t)?;
                collect_members(dwarf, unit, t, base + loc, out)?;
            }
        }
    }
    Ok(())
}

/// Follow typedefs and qualifiers.
fn strip(unit: &gimli::Unit<Slice<'_>>, mut t: gimli::UnitOffset) -> gimli::Result<gimli::UnitOffset> {
    for _ in 0..32 {
        let e = unit.entry(t)?;
        match e.tag() {
            gimli::DW_TAG_typedef | gimli::DW_TAG_const_type | gimli::DW_TAG_volatile_type | gimli::DW_TAG_restrict_type | gimli::DW_TAG_atomic_type => {
                match e.attr_value(gimli::DW_AT_type)? {
                    Some(AttributeValue::UnitRef(n)) => t = n,
                    _ => return Ok(t),
                }
            }
            _ => return Ok(t),
        }
    }
    Ok(t)
}

/// A type's size in bytes and, for an array, its first dimension.
fn type_size(unit: &gimli::Unit<Slice<'_>>, t: gimli::UnitOffset) -> gimli::Result<(u64, Option<u32>)> {
    let t = strip(unit, t)?;
    let e = unit.entry(t)?;
    if e.tag() == gimli::DW_TAG_pointer_type {
        return Ok((udata(e.attr_value(gimli::DW_AT_byte_size)?).unwrap_or(unit.encoding().address_size as u64), None));
    }
    if e.tag() != gimli::DW_TAG_array_type {
        return Ok((udata(e.attr_value(gimli::DW_AT_byte_size)?).unwrap_or(0), None));
    }
    let elem = match e.attr_value(gimli::DW_AT_type)? {
        Some(AttributeValue::UnitRef(n)) => type_size(unit, n)?.0,
        _ => 0,
    };
    let mut tree = unit.entries_tree(Some(t))?;
    let root = tree.root()?;
    let mut kids = root.children();
    let mut dims: Vec<u64> = Vec::new();
    while let Some(k) = kids.next()? {
        let ke = k.entry();
        if ke.tag() != gimli::DW_TAG_subrange_type {
            continue;
        }
        let n = if let Some(c) = udata(ke.attr_value(gimli::DW_AT_count)?) {
            c
        } else if let Some(u) = ke.attr_value(gimli::DW_AT_upper_bound)?.and_then(sdata) {
            (u + 1).max(0) as u64
        } else {
            0
        };
        dims.push(n);
    }
    let total: u64 = dims.iter().product::<u64>() * elem;
    Ok((total, dims.first().map(|&d| d as u32)))
}
