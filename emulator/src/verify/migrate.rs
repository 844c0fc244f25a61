//! Migration checks: content, mappings, cached translations.
use super::{Check, CheckCtx, Out, Violation};
use crate::memory::GuestRam;
use crate::introspect::va::{for_each_user_mapping, translate_va};
use crate::introspect::Snapshot;
use cmaemu_abi::desc::AS_LIVE;
use cmaemu_abi::page::PAGE_SHIFT;

/// One moved page, with the host's captures.
#[derive(Clone, Copy, Debug)]
pub struct MigrationInput<'a> {
    pub old_pfn: u32,
    pub new_pfn: u32,
    pub asid: u32,
    /// VAs that mapped the old frame.
    pub vas: &'a [u32],
    /// The old frame's content when its PTEs were cleared.
    pub before: &'a [u8],
    /// The new frame's content after the move.
    pub after: &'a [u8],
    /// Per VA (same index): the translation the CPU has cached for it, if
    /// any (physical address). Shorter than `vas` = nothing cached.
    pub cached: &'a [Option<u64>],
}

/// What [`check_migration`] reads of the guest's state: the two frames'
/// page records and where each VA walks to. Read when the move is
/// drained, or earlier at the same instant a drain would have (a light
/// doorbell: see `Session::light_doorbell`), then checked later.
#[derive(Clone, Debug, Default)]
pub struct MigrationReads {
    pub new_page: Option<cmaemu_abi::page::PageRecord>,
    pub old_page: Option<cmaemu_abi::page::PageRecord>,
    /// (asid, VA, the physical address its page tables give).
    pub walked: smallvec::SmallVec<[(u32, u32, Option<u64>); 4]>,
}

impl MigrationReads {
    /// Read the records of `old_pfn` and `new_pfn` from guest RAM now.
    pub fn pages(s: &Snapshot, ram: &GuestRam, old_pfn: u32, new_pfn: u32) -> Self {
        MigrationReads { new_page: read_page(ram, s, new_pfn), old_page: read_page(ram, s, old_pfn), walked: smallvec::SmallVec::new() }
    }

    /// Walk `vas` of `asid` now (nothing when the snapshot lacks the
    /// address space: the check reports that).
    pub fn walk(&mut self, s: &Snapshot, ram: &GuestRam, asid: u32, vas: &[u32]) {
        if let Some(r) = s.mmu_regs(asid) {
            self.walked.extend(vas.iter().map(|&va| (asid, va, translate_va(ram, &r, va))));
        }
    }

    fn walked(&self, asid: u32, va: u32) -> Option<Option<u64>> {
        self.walked.iter().find(|&&(a, v, _)| (a, v) == (asid, va)).map(|&(_, _, pa)| pa)
    }
}

/// Check one migrated page, reading the guest's state now.
pub fn check_migration(s: &Snapshot, ram: &GuestRam, m: &MigrationInput, ctx: &CheckCtx) -> Vec<Violation> {
    let mut reads = MigrationReads::pages(s, ram, m.old_pfn, m.new_pfn);
    reads.walk(s, ram, m.asid, m.vas);
    check_migration_read(s, ram, m, &reads, ctx)
}

/// Check one migrated page against the state `reads` holds (a VA it did
/// not walk is walked now).
pub fn check_migration_read(s: &Snapshot, ram: &GuestRam, m: &MigrationInput, reads: &MigrationReads, ctx: &CheckCtx) -> Vec<Violation> {
    let mut out = Out::new(ctx);
    if m.before != m.after {
        let diff = m.before.iter().zip(m.after).filter(|(a, b)| a != b).count() + m.before.len().abs_diff(m.after.len());
        let first = m.before.iter().zip(m.after).position(|(a, b)| a != b).unwrap_or(m.before.len().min(m.after.len()));
        let byte = |b: Option<&u8>| b.map(|b| format!("{b:#04x}")).unwrap_or_else(|| "none (unreadable)".into());
        let (o, n) = (byte(m.before.get(first)), byte(m.after.get(first)));
        let va = m.vas.first().copied();
        let at = va.map(|v| format!(" (VA {v:#010x} of asid {})", m.asid)).unwrap_or_default();
        out.push(
            Check::MigrateContent,
            Some(m.new_pfn),
            va,
            None,
            format!("new frame {:#x} differs from old frame {:#x}{at} at the move: {diff} byte(s), first at offset {first:#x} (old byte {o}, new byte {n})", m.new_pfn, m.old_pfn),
        );
    }
    // The new frame's own record, read now (the snapshot may be older
    // than this migration): an allocated page holds a reference.
    if let Some(p) = reads.new_page {
        if p.flags & cmaemu_abi::page::PG_BUDDY != 0 || p.refcount <= 0 {
            out.push(Check::MigratePte, Some(m.new_pfn), None, None, format!("the new frame {:#x} is free", m.new_pfn));
        }
    }
    // The old frame went back to the buddy (Linux: the isolation
    // reference was the last one once the mappings moved).
    // (Read when the move is drained: a frame already handed out again —
    // a CMA or device allocation — was freed in between and is not
    // judged.)
    if let Some(p) = reads.old_page {
        if p.refcount > 0 && p.owner & cmaemu_abi::page::OWNER_KIND_MASK == cmaemu_abi::page::OWNER_KIND_USER {
            out.push(
                Check::MigrateOldPage,
                Some(m.old_pfn),
                m.vas.first().copied(),
                None,
                format!(
                    "the old frame {:#x} still holds {} reference(s) after its move to {:#x}: the move did not free it (a leaked old page; or a pinned page that moved: its pin stays on the old frame, which the pin's holder uses until it unpins it) and belongs to {}",
                    m.old_pfn,
                    p.refcount,
                    m.new_pfn,
                    super::owner_text(p.owner)
                ),
            );
        }
    }
    let regs = s.mmu_regs(m.asid);
    for (i, &va) in m.vas.iter().enumerate() {
        let walked = match regs {
            None => {
                out.push(Check::MigratePte, Some(m.old_pfn), Some(va), None, format!("address space {} is not in the guest's table", m.asid));
                None
            }
            Some(r) => {
                let pa = reads.walked(m.asid, va).unwrap_or_else(|| translate_va(ram, &r, va));
                match pa.map(|p| (p >> PAGE_SHIFT) as u32) {
                    None => out.push(Check::MigratePte, Some(m.new_pfn), Some(va), None, format!("VA {va:#010x} (asid {}) is unmapped after the move of {:#x} -> {:#x}", m.asid, m.old_pfn, m.new_pfn)),
                    Some(p) if p == m.old_pfn => out.push(Check::MigratePte, Some(m.old_pfn), Some(va), None, format!("VA {va:#010x} (asid {}) still maps the old frame {:#x}, not {:#x}", m.asid, m.old_pfn, m.new_pfn)),
                    Some(p) if p != m.new_pfn => out.push(Check::MigratePte, Some(p), Some(va), None, format!("VA {va:#010x} (asid {}) maps frame {p:#x}, expected the new frame {:#x}", m.asid, m.new_pfn)),
                    Some(_) => {}
                }
                pa
            }
        };
        if let Some(Some(c)) = m.cached.get(i) {
            let cpfn = (c >> PAGE_SHIFT) as u32;
            let wpfn = walked.map(|p| (p >> PAGE_SHIFT) as u32);
            if Some(cpfn) != wpfn {
                let stale = if cpfn == m.old_pfn { " (the old frame: missing TLB flush)" } else { "" };
                out.push(
                    Check::MigrateTlb,
                    Some(cpfn),
                    Some(va),
                    None,
                    format!("the CPU's cached translation of VA {va:#010x} (asid {}) points to frame {cpfn:#x}{stale}; the page tables say {}", m.asid, wpfn.map(|p| format!("{p:#x}")).unwrap_or_else(|| "unmapped".into())),
                );
            }
        }
    }
    // (Whole address spaces are walked for PTEs to free frames at every
    // frame boundary: per migration that would cost O(mapped pages).)
    out.finish()
}

/// The page record of `pfn`, read from guest RAM now.
fn read_page(ram: &GuestRam, s: &Snapshot, pfn: u32) -> Option<cmaemu_abi::page::PageRecord> {
    let d = &s.desc;
    let i = pfn.checked_sub(d.base_pfn)?;
    if i >= d.nr_pages {
        return None;
    }
    let mut b = [0u8; 32];
    ram.read(d.page_array_pa as u64 + i as u64 * 32, &mut b).ok()?;
    cmaemu_abi::desc::from_bytes(&b)
}

/// No PTE of a live user address space (`asid`, or all when None) maps a
/// free frame.
pub fn check_mapped_free(s: &Snapshot, ram: &GuestRam, asid: Option<u32>, ctx: &CheckCtx) -> Vec<Violation> {
    let mut out = Out::new(ctx);
    for a in &s.address_spaces {
        if a.flags & AS_LIVE == 0 || asid.is_some_and(|x| x != a.asid) {
            continue;
        }
        let Some(regs) = s.mmu_regs(a.asid) else { continue };
        for_each_user_mapping(ram, &regs, |m| {
            let pfn = (m.pa >> PAGE_SHIFT) as u32;
            if s.is_free(pfn) {
                out.push(Check::PteMapsFree, Some(pfn), Some(m.va), None, format!("VA {:#010x} of asid {} maps frame {pfn:#x}, which is free", m.va, a.asid));
            }
        });
    }
    out.finish()
}

/// The CMA-aware MMU hook: the CPU is about to cache `va -> pa`.
pub fn check_translation(s: &Snapshot, asid: u32, va: u32, pa: u64, ctx: &CheckCtx) -> Option<Violation> {
    let pfn = u32::try_from(pa >> PAGE_SHIFT).ok()?;
    if s.is_free(pfn) {
        return Some(ctx.violation(Check::PteMapsFree, Some(pfn), Some(va), None, format!("the CPU cached a translation of VA {va:#010x} (asid {asid}) to frame {pfn:#x}, which is free")));
    }
    None
}
