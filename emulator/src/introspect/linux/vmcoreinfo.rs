//! Linux's `vmcoreinfo` (kernel/crash_core.c): the `KEY=value` text a
//! `CONFIG_CRASH_CORE` kernel keeps in a zeroed page (`vmcoreinfo_data`)
//! for crash dump tools — `SYMBOL(mem_map)=c1234567`, `OFFSET(page.flags)=0`,
//! `SIZE(page)=32`, `LENGTH(zone.free_area)=12`, `NUMBER(PG_lru)=4`, … —
//! found in guest RAM and parsed. Untrusted: every lookup that fails names
//! the missing key.
use crate::memory::GuestRam;
use std::collections::BTreeMap;

/// Why vmcoreinfo could not be found or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VmcoreError {
    /// No page of RAM starts with `OSRELEASE=` followed by the usual keys.
    #[error("no vmcoreinfo page in guest RAM (is the kernel built with CONFIG_CRASH_CORE and booted past its subsys initcalls?)")]
    NotFound,
    /// A line is not `KEY=value`, or a value does not parse.
    #[error("vmcoreinfo line {line}: {text:?}: {why}")]
    BadLine { line: usize, text: String, why: &'static str },
    /// A key a reader needs is missing.
    #[error("vmcoreinfo has no {0}")]
    Missing(String),
}

/// The parsed text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VmcoreInfo {
    /// Physical address of the page it was read from (0 when parsed from text).
    pub pa: u64,
    /// `OSRELEASE` (`uname -r`).
    pub osrelease: String,
    /// `BUILD-ID` (hex), when present.
    pub build_id: Option<String>,
    /// Every `KEY=value` line, the key with its kind (`SYMBOL(mem_map)`).
    entries: BTreeMap<String, String>,
}

/// Most bytes of vmcoreinfo (`VMCOREINFO_BYTES` is one page).
const MAX_BYTES: usize = 4096;

impl VmcoreInfo {
    /// Parse the text (up to the first NUL).
    pub fn parse(text: &str) -> Result<VmcoreInfo, VmcoreError> {
        let mut v = VmcoreInfo::default();
        for (i, line) in text.split('\0').next().unwrap_or("").lines().enumerate() {
            if line.is_empty() {
                continue;
            }
            let Some((k, val)) = line.split_once('=') else {
                return Err(VmcoreError::BadLine { line: i + 1, text: line.into(), why: "no '='" });
            };
            v.entries.insert(k.to_string(), val.to_string());
        }
        v.osrelease = v.entries.get("OSRELEASE").cloned().ok_or_else(|| VmcoreError::Missing("OSRELEASE".into()))?;
        v.build_id = v.entries.get("BUILD-ID").cloned();
        Ok(v)
    }

    /// Find `vmcoreinfo_data` in RAM: the page that starts with
    /// `OSRELEASE=` and parses with `PAGESIZE` and `SIZE(page)` in it.
    pub fn locate(ram: &GuestRam) -> Result<VmcoreInfo, VmcoreError> {
        let mut pa = ram.base();
        let end = ram.base() + ram.len() as u64;
        let mut head = [0u8; 10];
        while pa + MAX_BYTES as u64 <= end {
            if ram.read(pa, &mut head).is_ok() && &head == b"OSRELEASE=" {
                let mut page = vec![0u8; MAX_BYTES];
                if ram.read(pa, &mut page).is_ok() {
                    let n = page.iter().position(|&b| b == 0).unwrap_or(MAX_BYTES);
                    if let Ok(text) = std::str::from_utf8(&page[..n]) {
                        if let Ok(mut v) = VmcoreInfo::parse(text) {
                            if v.entries.contains_key("PAGESIZE") && v.entries.contains_key("SIZE(page)") {
                                v.pa = pa;
                                return Ok(v);
                            }
                        }
                    }
                }
            }
            pa += 4096;
        }
        Err(VmcoreError::NotFound)
    }

    fn get(&self, key: String) -> Result<&str, VmcoreError> {
        self.entries.get(&key).map(|s| s.as_str()).ok_or(VmcoreError::Missing(key))
    }
    fn dec(&self, key: String) -> Result<i64, VmcoreError> {
        let s = self.get(key.clone())?;
        s.parse::<i64>().map_err(|_| VmcoreError::BadLine { line: 0, text: format!("{key}={s}"), why: "not a decimal number" })
    }
    /// `SYMBOL(name)`: a kernel virtual address (hex).
    pub fn symbol(&self, name: &str) -> Result<u32, VmcoreError> {
        let key = format!("SYMBOL({name})");
        let s = self.get(key.clone())?;
        u32::from_str_radix(s, 16).map_err(|_| VmcoreError::BadLine { line: 0, text: format!("{key}={s}"), why: "not a 32-bit hex address" })
    }
    /// `OFFSET(type.member)`.
    pub fn offset(&self, member: &str) -> Result<u32, VmcoreError> {
        self.dec(format!("OFFSET({member})")).map(|v| v as u32)
    }
    /// `SIZE(type)`.
    pub fn size(&self, ty: &str) -> Result<u32, VmcoreError> {
        self.dec(format!("SIZE({ty})")).map(|v| v as u32)
    }
    /// `LENGTH(name)`.
    pub fn length(&self, name: &str) -> Result<u32, VmcoreError> {
        self.dec(format!("LENGTH({name})")).map(|v| v as u32)
    }
    /// `NUMBER(name)` (signed: `PAGE_BUDDY_MAPCOUNT_VALUE` is negative).
    pub fn number(&self, name: &str) -> Result<i64, VmcoreError> {
        self.dec(format!("NUMBER({name})"))
    }
    /// `PAGESIZE`.
    pub fn page_size(&self) -> Result<u32, VmcoreError> {
        self.dec("PAGESIZE".into()).map(|v| v as u32)
    }
    /// Every entry (for reports).
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "OSRELEASE=6.1.0-57-armmp\nBUILD-ID=7fabb78a\nPAGESIZE=4096\nSYMBOL(mem_map)=c1a2b3c4\nSIZE(page)=32\nOFFSET(page.lru)=4\nLENGTH(zone.free_area)=12\nNUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)=-129\n";

    #[test]
    fn parses_each_kind_of_line() {
        let v = VmcoreInfo::parse(TEXT).unwrap();
        assert_eq!(v.osrelease, "6.1.0-57-armmp");
        assert_eq!(v.build_id.as_deref(), Some("7fabb78a"));
        assert_eq!(v.page_size(), Ok(4096));
        assert_eq!(v.symbol("mem_map"), Ok(0xc1a2_b3c4));
        assert_eq!(v.size("page"), Ok(32));
        assert_eq!(v.offset("page.lru"), Ok(4));
        assert_eq!(v.length("zone.free_area"), Ok(12));
        assert_eq!(v.number("PAGE_BUDDY_MAPCOUNT_VALUE"), Ok(-129));
        assert_eq!(v.offset("page.flags"), Err(VmcoreError::Missing("OFFSET(page.flags)".into())));
        assert!(VmcoreInfo::parse("OSRELEASE=x\ngarbage\n").is_err());
        assert!(VmcoreInfo::parse("PAGESIZE=4096\n").is_err());
    }

    #[test]
    fn found_on_a_page_boundary_in_ram() {
        let ram = GuestRam::new(0x6000_0000, 1 << 20).unwrap();
        assert_eq!(VmcoreInfo::locate(&ram), Err(VmcoreError::NotFound));
        // not page-aligned: ignored
        ram.write(0x6000_1010, TEXT.as_bytes()).unwrap();
        assert_eq!(VmcoreInfo::locate(&ram), Err(VmcoreError::NotFound));
        ram.write(0x6003_0000, TEXT.as_bytes()).unwrap();
        let v = VmcoreInfo::locate(&ram).unwrap();
        assert_eq!(v.pa, 0x6003_0000);
        assert_eq!(v.size("page"), Ok(32));
    }
}
