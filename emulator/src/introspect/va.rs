//! Virtual-address helpers over the walker: translate a VA of a guest
//! address space, and enumerate every page mapping of a TTBR0 table.
use crate::memory::GuestRam;
use crate::memory::walk::{l1_slot, l2_frame, translate, ttbr0_entries, Access, MmuRegs};

/// The physical address `va` maps to under `regs` (None: fault).
pub fn translate_va(ram: &GuestRam, regs: &MmuRegs, va: u32) -> Option<u64> {
    let mut rd = |pa: u64| ram.read_u32(pa);
    translate(regs, va, Access::Read, &mut rd).ok().map(|t| t.pa)
}

/// One page-granular mapping found in a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub va: u32,
    /// Frame base physical address.
    pub pa: u64,
    /// 4 KiB (small page) or 64 KiB (large page).
    pub size: u32,
}

/// Every small/large page mapping reachable from `regs.ttbr0` in the TTBR0
/// half of the address space (sections are skipped: the guest maps user
/// memory with 4 KiB pages, sections are the kernel's linear map).
/// Bounded: at most 4096 L1 entries x 256 L2 entries.
pub fn user_mappings(ram: &GuestRam, regs: &MmuRegs) -> Vec<Mapping> {
    let mut out = Vec::new();
    for_each_user_mapping(ram, regs, |m| out.push(m));
    out
}

/// [`user_mappings`] without collecting them: `f` sees each mapping in
/// the same order (a large board's walk allocates nothing).
pub fn for_each_user_mapping(ram: &GuestRam, regs: &MmuRegs, mut f: impl FnMut(Mapping)) {
    let l1_entries = ttbr0_entries(regs);
    // The TTBR0 table's entries lie one after another from the first
    // slot: read them in one go (entry by entry only if that fails).
    let mut table = [0u8; 16384];
    let table = &mut table[..l1_entries as usize * 4];
    let bulk = ram.read(l1_slot(regs, 0) as u64, table).is_ok();
    for i in 0..l1_entries {
        let va1 = i << 20;
        let l1 = if bulk {
            let w = &table[i as usize * 4..i as usize * 4 + 4];
            u32::from_le_bytes([w[0], w[1], w[2], w[3]])
        } else {
            match ram.read_u32(l1_slot(regs, va1) as u64) {
                Some(v) => v,
                None => continue,
            }
        };
        if l1 & 3 != 0b01 {
            continue;
        }
        let l2base = (l1 & !0x3ff) as u64;
        let mut l2 = [0u8; 1024];
        if ram.read(l2base, &mut l2).is_err() {
            continue;
        }
        for (j, w) in l2.chunks_exact(4).enumerate() {
            let d = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
            let va = va1 | ((j as u32) << 12);
            if let Some(pa) = l2_frame(d, va) {
                f(Mapping { va, pa, size: 4096 });
            }
        }
    }
}

/// What a frame holds of the TTBR0 translation tables of `regs`, found by
/// walking them: the first-level table itself, or the second-level tables
/// of the 1 MiB sections starting at these VAs (ascending; an ARM Linux
/// page-table page holds two, for the 2 MiB of one `pmd`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TableUse {
    L1,
    L2(Vec<u32>),
}

/// [`TableUse`] of the frame `pfn` in the user (TTBR0) tables of `regs`;
/// None: they do not use it.
pub fn table_use(ram: &GuestRam, regs: &MmuRegs, pfn: u32) -> Option<TableUse> {
    let l1_entries = ttbr0_entries(regs);
    let base = l1_slot(regs, 0) as u64;
    let frame = (pfn as u64) << 12;
    if base < frame + 4096 && frame < base + l1_entries as u64 * 4 {
        return Some(TableUse::L1);
    }
    let mut l1 = vec![0u8; l1_entries as usize * 4];
    ram.read(base, &mut l1).ok()?;
    let vas: Vec<u32> = l1
        .chunks_exact(4)
        .enumerate()
        .filter(|(_, w)| {
            let d = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
            d & 3 == 0b01 && (d >> 12) == pfn
        })
        .map(|(i, _)| (i as u32) << 20)
        .collect();
    (!vas.is_empty()).then_some(TableUse::L2(vas))
}
