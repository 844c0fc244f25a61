//! `--profile`: retired guest instructions per function, from the CPU's
//! per-block counts and the kernel's and firmware's ELF symbols.
use crate::loader::elf::Image;
use std::collections::HashMap;

/// Maps guest code addresses to function names.
#[derive(Clone, Debug)]
pub struct Symbolizer {
    images: Vec<Image>,
}

impl Symbolizer {
    pub fn new(images: Vec<Image>) -> Self {
        Symbolizer { images }
    }

    /// The kernel's and firmware's images, from their ELF bytes (an image
    /// that does not parse contributes no symbols).
    pub fn from_elves(elves: &[(&str, &[u8])]) -> Self {
        Symbolizer::new(elves.iter().filter_map(|(what, b)| Image::parse(what, b).ok()).collect())
    }

    /// `func+0x1c/0x80` for a code address, as Linux's `%pS` prints it
    /// (`vsprintf.c` `sprint_symbol`); None outside every function.
    pub fn symbol(&self, addr: u64) -> Option<String> {
        let (name, off, size) = self.images.iter().find_map(|i| i.function_offset_at(addr))?;
        Some(format!("{name}+{off:#x}/{size:#x}"))
    }

    /// Fold (block address, instructions) into (function, instructions),
    /// largest first; ties by name so that the order is deterministic.
    pub fn functions(&self, blocks: &[(u64, u64)]) -> Vec<(String, u64)> {
        let mut by_fn: HashMap<String, u64> = HashMap::new();
        for &(addr, n) in blocks {
            let name = self.images.iter().find_map(|i| i.function_at(addr)).unwrap_or_else(|| format!("[unknown {:#010x}]", addr));
            *by_fn.entry(name).or_default() += n;
        }
        let mut v: Vec<(String, u64)> = by_fn.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v
    }
}

/// Format the top `n` functions as `perf report`-like lines.
pub fn format_profile(funcs: &[(String, u64)], n: usize) -> String {
    let total: u64 = funcs.iter().map(|f| f.1).sum();
    let mut out = format!("cmaemu: profile: {} instructions in {} functions (top {})\n", total, funcs.len(), n.min(funcs.len()));
    for (name, insns) in funcs.iter().take(n) {
        out += &format!("  {:6.2}%  {:>12}  {}\n", 100.0 * *insns as f64 / total.max(1) as f64, insns, name);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loader::images;

    #[test]
    fn kernel_blocks_fold_into_named_functions() {
        let k = Image::parse("kernel", images::KERNEL_ELF).unwrap();
        let spin = k.functions.iter().find(|f| f.2 == "spin_loop").unwrap().0;
        let s = Symbolizer::new(vec![k]);
        let f = s.functions(&[(spin, 30), (spin + 4, 12), (0xdead_0000, 5)]);
        assert_eq!(f[0], ("spin_loop".to_string(), 42));
        assert_eq!(f[1], ("[unknown 0xdead0000]".to_string(), 5));
        // spin_loop is assembly without a size: it runs to the next symbol
        let sym = s.symbol(spin + 4).unwrap();
        assert!(sym.starts_with("spin_loop+0x4/0x") && !sym.ends_with("/0x0"), "{sym}");
        assert_eq!(s.symbol(0xdead_0000), None);
        let text = format_profile(&f, 1);
        assert!(text.contains("47 instructions in 2 functions"), "{text}");
        assert!(text.contains("89.36%"), "{text}");
    }
}
