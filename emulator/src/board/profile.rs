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
        let text = format_profile(&f, 1);
        assert!(text.contains("47 instructions in 2 functions"), "{text}");
        assert!(text.contains("89.36%"), "{text}");
    }
}
