//! Devices a device tree names that the board does not model: their
//! windows read as zero and ignore writes (an AMBA bus then reads PrimeCell
//! ID 0 and skips them), and the list is printed once at boot
//! (`cmaemu: not modelled: …`) so nothing is silent.
use super::bus::DeviceTable;
use crate::memory::map::*;
use crate::loader::dtb::Dtb;

/// One unmodelled window (4 KiB-aligned) and the DT nodes inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NullWindow {
    pub base: u64,
    pub size: u64,
    pub nodes: Vec<String>,
}

/// The unmodelled windows of a boot.
#[derive(Debug, Clone, Default)]
pub struct NullDevices {
    pub windows: Vec<NullWindow>,
    /// Accesses that landed in them.
    pub accesses: u64,
}

const PAGE: u64 = 0x1000;

impl NullDevices {
    /// The DT's device regions that no modelled window, RAM or flash covers.
    pub fn from_dtb(dtb: &[u8], ram_size: u64) -> NullDevices {
        let Ok(tree) = Dtb::parse(dtb) else { return NullDevices::default() };
        let mut taken: Vec<(u64, u64)> = DeviceTable::modelled().windows();
        taken.push((FLASH_ALIAS_BASE, FLASH_SIZE));
        taken.push((RAM_BASE, ram_size));
        // (start, end, node) pieces not covered, page-aligned
        let mut pieces: Vec<(u64, u64, String)> = Vec::new();
        for (path, base, size) in tree.device_regions() {
            let (lo, hi) = (base & !(PAGE - 1), (base.saturating_add(size)).next_multiple_of(PAGE));
            // within the 32-bit physical space only
            if hi > 1 << 32 || lo >= hi {
                continue;
            }
            let mut rest = vec![(lo, hi)];
            for &(tb, ts) in &taken {
                let te = tb + ts;
                rest = rest
                    .into_iter()
                    .flat_map(|(a, b)| {
                        if b <= tb || a >= te {
                            vec![(a, b)]
                        } else {
                            let mut v = Vec::new();
                            if a < tb {
                                v.push((a, tb));
                            }
                            if b > te {
                                v.push((te, b));
                            }
                            v
                        }
                    })
                    .collect();
            }
            for (a, b) in rest {
                pieces.push((a, b, path.clone()));
            }
        }
        pieces.sort();
        let mut windows: Vec<NullWindow> = Vec::new();
        for (a, b, node) in pieces {
            match windows.last_mut() {
                Some(w) if a <= w.base + w.size => {
                    w.size = w.size.max(b - w.base);
                    if !w.nodes.contains(&node) {
                        w.nodes.push(node);
                    }
                }
                _ => windows.push(NullWindow { base: a, size: b - a, nodes: vec![node] }),
            }
        }
        NullDevices { windows, accesses: 0 }
    }

    pub fn contains(&self, pa: u64) -> bool {
        self.windows.iter().any(|w| pa >= w.base && pa < w.base + w.size)
    }

    /// `cmaemu: not modelled: …` (None when everything is modelled).
    pub fn report(&self) -> Option<String> {
        if self.windows.is_empty() {
            return None;
        }
        let names: Vec<String> = self
            .windows
            .iter()
            .flat_map(|w| w.nodes.iter().map(|n| n.rsplit('/').next().unwrap_or(n).to_string()))
            .collect();
        Some(format!("cmaemu: not modelled (read as zero, writes ignored): {}", names.join(", ")))
    }
}
