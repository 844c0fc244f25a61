//! Who maps a frame, for the causes: the user mappings of every live
//! address space, found by walking their page tables once per allocation
//! and kept across its busy retries.
//!
//! A `cma_alloc` that retries 193 times would otherwise walk every page
//! table 193 times. Inside one allocation the guest changes user PTEs only
//! by migrating pages (one CPU, `cma_alloc` does not sleep), and every move
//! is a `migrate_page` record naming the new frame, the address space and
//! the VAs: those are added as candidates, and nothing is removed. Every
//! answer is checked against the page tables as they are now (one
//! translation per candidate), so a stale candidate (the old frame of a
//! move, a PTE an injected bug left unset) is never reported. The cache is
//! dropped when the allocation ends: between allocations tasks map, unmap
//! and exit without a record.
use super::MappedBy;
use crate::introspect::va::{translate_va, user_mappings};
use crate::introspect::Snapshot;
use crate::memory::GuestRam;
use cmaemu_abi::desc::AS_LIVE;
use cmaemu_abi::page::PAGE_SHIFT;
use std::collections::HashMap;

/// Candidate mappings by frame (see the module doc).
#[derive(Clone, Debug, Default)]
pub struct MapCache {
    by_pfn: Option<HashMap<u32, Vec<MappedBy>>>,
}

impl MapCache {
    /// The mappings of `pfn` as the page tables hold them now (walking
    /// them all on the first question since [`MapCache::clear`]).
    pub fn of(&mut self, s: &Snapshot, ram: &GuestRam, pfn: u32) -> Vec<MappedBy> {
        let by_pfn = self.by_pfn.get_or_insert_with(|| walk(s, ram));
        let Some(cands) = by_pfn.get(&pfn) else { return Vec::new() };
        let mut out: Vec<MappedBy> = Vec::new();
        for m in cands {
            if !out.contains(m) && maps_now(s, ram, m, pfn) {
                out.push(*m);
            }
        }
        out
    }

    /// A page moved to `new_pfn`, mapped at `vas` of address space `asid`.
    pub fn moved(&mut self, s: &Snapshot, new_pfn: u32, asid: u32, vas: &[u32]) {
        let Some(by_pfn) = &mut self.by_pfn else { return };
        let Some(pid) = s.address_spaces.iter().find(|a| a.flags & AS_LIVE != 0 && a.asid == asid).map(|a| a.pid) else { return };
        let e = by_pfn.entry(new_pfn).or_default();
        for &va in vas {
            e.push(MappedBy { pid, asid, va });
        }
    }

    /// Forget everything (the allocation ended).
    pub fn clear(&mut self) {
        self.by_pfn = None;
    }
}

/// Does `m` map `pfn` in the page tables as they are now?
fn maps_now(s: &Snapshot, ram: &GuestRam, m: &MappedBy, pfn: u32) -> bool {
    let live = s.address_spaces.iter().any(|a| a.flags & AS_LIVE != 0 && a.asid == m.asid && a.pid == m.pid);
    live && s.mmu_regs(m.asid).and_then(|regs| translate_va(ram, &regs, m.va)).is_some_and(|pa| pa >> PAGE_SHIFT == pfn as u64)
}

/// Every user mapping of every live address space, by frame.
fn walk(s: &Snapshot, ram: &GuestRam) -> HashMap<u32, Vec<MappedBy>> {
    let mut out: HashMap<u32, Vec<MappedBy>> = HashMap::new();
    for a in s.address_spaces.iter().filter(|a| a.flags & AS_LIVE != 0) {
        let Some(regs) = s.mmu_regs(a.asid) else { continue };
        for m in user_mappings(ram, &regs) {
            out.entry((m.pa >> PAGE_SHIFT) as u32).or_default().push(MappedBy { pid: a.pid, asid: a.asid, va: m.va });
        }
    }
    out
}
