//! Writing the guest kernel's symbol table (`KALLSYMS`, layout in
//! `cmaemu_abi::kallsyms`) into its linked ELF. Used by build.rs (which
//! includes this file) right after the kernel is linked, like Linux's
//! kallsyms link passes; the table's size is fixed, so no address moves.
use cmaemu_abi::kallsyms::{KALLSYMS_MAGIC, KALLSYMS_SIZE};
use goblin::elf::Elf;

#[derive(Debug, thiserror::Error)]
pub enum KallsymsError {
    #[error("kernel ELF: {0}")]
    Elf(String),
    #[error("kernel ELF has no KALLSYMS symbol of {KALLSYMS_SIZE} bytes in a loaded segment")]
    NoTable,
    #[error("{count} symbols need {need} bytes, more than the {KALLSYMS_SIZE} KALLSYMS reserves (raise KALLSYMS_SIZE)")]
    TooBig { count: usize, need: usize },
}

/// The table for `(address, size, name)` functions: sorted, one entry per
/// address, sizeless symbols running to the next one.
pub fn build_table(mut funcs: Vec<(u32, u32, String)>) -> Result<Vec<u8>, KallsymsError> {
    funcs.sort();
    funcs.dedup_by(|a, b| a.0 == b.0);
    for i in 0..funcs.len() {
        if funcs[i].1 == 0 {
            funcs[i].1 = funcs.get(i + 1).map_or(4, |n| n.0 - funcs[i].0);
        }
    }
    let head = 8 + 12 * funcs.len();
    let mut names = Vec::new();
    let mut out = Vec::with_capacity(KALLSYMS_SIZE);
    out.extend_from_slice(&KALLSYMS_MAGIC.to_le_bytes());
    out.extend_from_slice(&(funcs.len() as u32).to_le_bytes());
    for (addr, size, name) in &funcs {
        out.extend_from_slice(&addr.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&((head + names.len()) as u32).to_le_bytes());
        names.extend_from_slice(name.as_bytes());
        names.push(0);
    }
    out.extend_from_slice(&names);
    if out.len() > KALLSYMS_SIZE {
        return Err(KallsymsError::TooBig { count: funcs.len(), need: out.len() });
    }
    Ok(out)
}

/// The kernel's code symbols (functions and the assembly labels without a
/// type), demangled, as the host's reports name them.
fn functions(elf: &Elf) -> Vec<(u32, u32, String)> {
    elf.syms
        .iter()
        .filter(|s| matches!(s.st_type(), goblin::elf::sym::STT_FUNC | goblin::elf::sym::STT_NOTYPE))
        .filter(|s| s.st_shndx != 0 && s.st_shndx != goblin::elf::section_header::SHN_ABS as usize)
        .filter_map(|s| {
            let n = elf.strtab.get_at(s.st_name)?;
            (!n.is_empty() && !n.starts_with('$')).then(|| ((s.st_value & !1) as u32, s.st_size as u32, format!("{:#}", rustc_demangle::demangle(n))))
        })
        .collect()
}

/// Write the symbol table into `KALLSYMS` of a linked kernel ELF.
pub fn patch_kernel(bytes: &mut [u8]) -> Result<(), KallsymsError> {
    let (offset, table) = {
        let elf = Elf::parse(bytes).map_err(|e| KallsymsError::Elf(e.to_string()))?;
        let sym = elf
            .syms
            .iter()
            .find(|s| elf.strtab.get_at(s.st_name) == Some("KALLSYMS") && s.st_size as usize == KALLSYMS_SIZE)
            .ok_or(KallsymsError::NoTable)?;
        let va = sym.st_value;
        let ph = elf
            .program_headers
            .iter()
            .find(|p| p.p_type == goblin::elf::program_header::PT_LOAD && va >= p.p_vaddr && va + KALLSYMS_SIZE as u64 <= p.p_vaddr + p.p_filesz)
            .ok_or(KallsymsError::NoTable)?;
        ((va - ph.p_vaddr + ph.p_offset) as usize, build_table(functions(&elf))?)
    };
    bytes[offset..offset + table.len()].copy_from_slice(&table);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_layout_and_sizeless_symbols() {
        let t = build_table(vec![(0x200, 0, "b".into()), (0x100, 0x10, "a".into()), (0x100, 0x10, "a2".into())]).unwrap();
        let w = |i: usize| u32::from_le_bytes(t[i..i + 4].try_into().unwrap());
        assert_eq!(w(0), KALLSYMS_MAGIC);
        assert_eq!(w(4), 2, "one entry per address");
        assert_eq!((w(8), w(12)), (0x100, 0x10));
        assert_eq!((w(20), w(24)), (0x200, 4), "the last sizeless symbol gets one instruction");
        assert_eq!(&t[w(16) as usize..w(16) as usize + 2], b"a\0");
        assert_eq!(&t[w(28) as usize..w(28) as usize + 2], b"b\0");
        let many: Vec<(u32, u32, String)> = (0..5_000).map(|i| (i * 4, 4, format!("function_{i}"))).collect();
        assert!(matches!(build_table(many), Err(KallsymsError::TooBig { .. })));
    }

    #[test]
    fn the_embedded_kernel_carries_its_symbols() {
        let k = crate::loader::images::KERNEL_ELF;
        let mut copy = k.to_vec();
        patch_kernel(&mut copy).unwrap();
        assert_eq!(copy, k, "build.rs wrote the same table into the embedded kernel");
        assert!(k.windows(4).any(|w| w == KALLSYMS_MAGIC.to_le_bytes()));
    }
}
