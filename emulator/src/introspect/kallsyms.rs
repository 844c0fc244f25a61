//! The guest kernel's own symbol table (`KALLSYMS`, layout
//! `cmaemu_abi::kallsyms`), read from guest memory at the address the
//! descriptor gives (`kallsyms_pa`): names a kernel function from an
//! address, as the kernel's `%pS` does.
use crate::memory::GuestRam;
use cmaemu_abi::kallsyms::{Entry, Header, KALLSYMS_MAGIC, KALLSYMS_SIZE};

const HEADER: usize = core::mem::size_of::<Header>();
const ENTRY: usize = core::mem::size_of::<Entry>();

fn word(t: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(t.get(at..at + 4)?.try_into().ok()?))
}

/// The function containing `addr` (without `+off/size`), or None (no
/// table, a table that is not one, or an address outside every symbol).
pub fn function_name(ram: &GuestRam, table_pa: u32, addr: u32) -> Option<String> {
    if table_pa == 0 {
        return None;
    }
    let mut t = vec![0u8; KALLSYMS_SIZE];
    ram.read(table_pa as u64, &mut t).ok()?;
    function_in(&t, addr)
}

/// [`function_name`] over the table's bytes.
pub fn function_in(t: &[u8], addr: u32) -> Option<String> {
    if word(t, 0)? != KALLSYMS_MAGIC {
        return None;
    }
    let count = (word(t, 4)? as usize).min(t.len().saturating_sub(HEADER) / ENTRY);
    let entry = |i: usize| -> Option<(u32, u32, u32)> {
        let at = HEADER + i * ENTRY;
        Some((word(t, at)?, word(t, at + 4)?, word(t, at + 8)?))
    };
    // sorted by address: the last entry at or below `addr`
    let (mut lo, mut hi) = (0, count);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if entry(mid)?.0 <= addr {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    let (start, size, name) = entry(lo.checked_sub(1)?)?;
    if addr - start >= size {
        return None;
    }
    let bytes = t.get(name as usize..)?;
    let end = bytes.iter().position(|&b| b == 0)?;
    Some(String::from_utf8_lossy(&bytes[..end]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(syms: &[(u32, u32, &str)]) -> Vec<u8> {
        let mut t = vec![0u8; KALLSYMS_SIZE];
        t[..4].copy_from_slice(&KALLSYMS_MAGIC.to_le_bytes());
        t[4..8].copy_from_slice(&(syms.len() as u32).to_le_bytes());
        let mut names = HEADER + syms.len() * ENTRY;
        for (i, (a, s, n)) in syms.iter().enumerate() {
            let at = HEADER + i * ENTRY;
            t[at..at + 4].copy_from_slice(&a.to_le_bytes());
            t[at + 4..at + 8].copy_from_slice(&s.to_le_bytes());
            t[at + 8..at + 12].copy_from_slice(&(names as u32).to_le_bytes());
            t[names..names + n.len()].copy_from_slice(n.as_bytes());
            names += n.len() + 1;
        }
        t
    }

    #[test]
    fn names_the_function_containing_an_address() {
        let t = table(&[(0xc000_1000, 0x100, "cmaemu_kernel::vm::pin"), (0xc000_2000, 0x40, "cmaemu_kernel::vm::pin_in")]);
        assert_eq!(function_in(&t, 0xc000_1000).as_deref(), Some("cmaemu_kernel::vm::pin"));
        // a Thumb function pointer has bit 0 set
        assert_eq!(function_in(&t, 0xc000_2001).as_deref(), Some("cmaemu_kernel::vm::pin_in"));
        assert_eq!(function_in(&t, 0xc000_1100), None, "past the first symbol's end");
        assert_eq!(function_in(&t, 0xbfff_ffff), None, "below every symbol");
        assert_eq!(function_in(&vec![0u8; KALLSYMS_SIZE], 0xc000_1000), None, "no table");
    }
}
