//! ELF loading (goblin): the firmware and the guest kernel.
use goblin::elf::{header, program_header::PT_LOAD, Elf};

#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    #[error("{what}: not an ELF file: {msg}")]
    NotElf { what: String, msg: String },
    #[error("{what}: not a 32-bit little-endian ARM executable (class {class}, machine {machine})")]
    NotArm { what: String, class: u8, machine: u16 },
    #[error("{what}: has no loadable segment")]
    NoSegments { what: String },
    #[error("{what}: segment at physical {pa:#x}+{size:#x} lies outside {region}")]
    OutOfRange { what: String, pa: u64, size: u64, region: String },
    #[error("{what}: segment at {offset:#x}+{size:#x} runs past the end of the file ({len} bytes)")]
    Truncated { what: String, offset: u64, size: u64, len: usize },
    #[error("{what}: segment at physical {pa:#x} has a file size {filesz:#x} larger than its memory size {memsz:#x}")]
    FileLargerThanMemory { what: String, pa: u64, filesz: u64, memsz: u64 },
    #[error("{what}: entry point {entry:#x} is in no loadable segment")]
    BadEntry { what: String, entry: u64 },
}

/// One loadable segment: bytes to place at a physical address.
#[derive(Clone, Debug)]
pub struct Segment {
    pub paddr: u64,
    pub vaddr: u64,
    pub data: Vec<u8>,
    pub memsz: u64,
    /// Mapped executable (`PF_X`).
    pub exec: bool,
}

/// A parsed ARM executable.
#[derive(Clone, Debug)]
pub struct Image {
    pub segments: Vec<Segment>,
    /// Entry point as a physical address (where the CPU starts, MMU off).
    pub entry_pa: u64,
    pub symbols: Vec<(String, u64, u64)>,
    /// Function symbols (address, size, mangled name), sorted by address.
    pub functions: Vec<(u64, u64, String)>,
}

impl Image {
    /// Parse `bytes` (named `what` in errors).
    pub fn parse(what: &str, bytes: &[u8]) -> Result<Image, ElfError> {
        let w = || what.to_string();
        let elf = Elf::parse(bytes).map_err(|e| ElfError::NotElf { what: w(), msg: e.to_string() })?;
        if elf.is_64 || !elf.little_endian || elf.header.e_machine != header::EM_ARM {
            return Err(ElfError::NotArm {
                what: w(),
                class: if elf.is_64 { 64 } else { 32 },
                machine: elf.header.e_machine,
            });
        }
        let mut segments = Vec::new();
        for ph in elf.program_headers.iter().filter(|p| p.p_type == PT_LOAD && p.p_memsz > 0) {
            let off = ph.p_offset;
            let end = off.checked_add(ph.p_filesz).filter(|&e| e <= bytes.len() as u64);
            let Some(end) = end else {
                return Err(ElfError::Truncated { what: w(), offset: off, size: ph.p_filesz, len: bytes.len() });
            };
            // The ELF spec (and QEMU's load_elf) refuse p_filesz > p_memsz:
            // the loaders copy the file bytes into a region of p_memsz.
            if ph.p_filesz > ph.p_memsz {
                return Err(ElfError::FileLargerThanMemory { what: w(), pa: ph.p_paddr, filesz: ph.p_filesz, memsz: ph.p_memsz });
            }
            segments.push(Segment {
                paddr: ph.p_paddr,
                vaddr: ph.p_vaddr,
                data: bytes[off as usize..end as usize].to_vec(),
                memsz: ph.p_memsz,
                exec: ph.p_flags & goblin::elf::program_header::PF_X != 0,
            });
        }
        if segments.is_empty() {
            return Err(ElfError::NoSegments { what: w() });
        }
        let e = elf.entry;
        let entry_pa = segments
            .iter()
            .find(|s| e >= s.vaddr && e < s.vaddr + s.memsz)
            .map(|s| s.paddr + (e - s.vaddr))
            .ok_or(ElfError::BadEntry { what: w(), entry: e })?;
        let symbols = elf
            .syms
            .iter()
            .filter_map(|s| elf.strtab.get_at(s.st_name).map(|n| (n.to_string(), s.st_value, s.st_size)))
            .filter(|(n, _, _)| !n.is_empty())
            .collect();
        let mut functions: Vec<(u64, u64, String)> = elf
            .syms
            .iter()
            .filter(|s| matches!(s.st_type(), goblin::elf::sym::STT_FUNC | goblin::elf::sym::STT_NOTYPE))
            .filter(|s| s.st_shndx != goblin::elf::section_header::SHN_ABS as usize && s.st_shndx != 0)
            .filter_map(|s| elf.strtab.get_at(s.st_name).map(|n| (s.st_value & !1, s.st_size, n.to_string())))
            // ARM mapping symbols ($a, $d, $t) mark code/data, not functions
            .filter(|(_, _, n)| !n.is_empty() && !n.starts_with('$'))
            .collect();
        functions.sort();
        Ok(Image { segments, entry_pa, symbols, functions })
    }

    /// Physical address of a symbol (through its segment's VA→PA offset).
    pub fn symbol_pa(&self, name: &str) -> Option<u64> {
        let (_, va, _) = self.symbols.iter().find(|(n, _, _)| n == name)?;
        self.segments
            .iter()
            .find(|s| *va >= s.vaddr && *va < s.vaddr + s.memsz)
            .map(|s| s.paddr + (va - s.vaddr))
    }

    /// The function containing virtual address `va`, demangled.
    pub fn function_at(&self, va: u64) -> Option<String> {
        self.function_offset_at(va).map(|(name, _, _)| name)
    }

    /// The function containing virtual address `va` (demangled), the
    /// offset of `va` into it and its size.
    pub fn function_offset_at(&self, va: u64) -> Option<(String, u64, u64)> {
        if !self.segments.iter().any(|s| s.exec && va >= s.vaddr && va < s.vaddr + s.memsz) {
            return None;
        }
        let i = self.functions.partition_point(|f| f.0 <= va).checked_sub(1)?;
        let (start, size, name) = &self.functions[i];
        // a symbol without a size (assembly) runs to the next one, as
        // kallsyms sizes every symbol
        let size = match *size {
            0 => self.functions[i + 1..].iter().map(|f| f.0).find(|&a| a > *start).unwrap_or(va + 1) - start,
            s => s,
        };
        (va < start + size).then(|| (format!("{:#}", rustc_demangle::demangle(name)), va - start, size))
    }

    /// Check every segment lies in `[base, base + size)`.
    pub fn check_within(&self, what: &str, base: u64, size: u64, region: &str) -> Result<(), ElfError> {
        for s in &self.segments {
            if s.paddr < base || s.paddr + s.memsz > base + size {
                return Err(ElfError::OutOfRange { what: what.into(), pa: s.paddr, size: s.memsz, region: region.into() });
            }
        }
        Ok(())
    }

    /// Lowest and highest physical addresses the image occupies.
    pub fn extent(&self) -> (u64, u64) {
        let lo = self.segments.iter().map(|s| s.paddr).min().unwrap_or(0);
        let hi = self.segments.iter().map(|s| s.paddr + s.memsz).max().unwrap_or(0);
        (lo, hi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn rejects_garbage_and_foreign_elves() {
        assert!(matches!(Image::parse("x", b"hello"), Err(ElfError::NotElf { .. })));
        // the host's own binary is an ELF but not ARM32
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert!(matches!(Image::parse("x", &me), Err(ElfError::NotArm { .. })));
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// Issue 19: a segment of 0x60 file bytes and 0x50 memory bytes used
    /// to pass here and panic in the firmware flash copy.
    #[test]
    fn rejects_file_size_above_memory_size() {
        let fw = unhex("7f454c46010101000000000000000000020028000100000000000000340000000000000000020005340020000100280000000000010000000000000000000000f00f000060000000500000000500000004000000000000000000000000000000");
        let e = Image::parse("firmware", &fw).unwrap_err();
        assert!(matches!(e, ElfError::FileLargerThanMemory { filesz: 0x60, memsz: 0x50, .. }), "{e:?}");
        assert_eq!(e.to_string(), "firmware: segment at physical 0xff0 has a file size 0x60 larger than its memory size 0x50");
    }
}
