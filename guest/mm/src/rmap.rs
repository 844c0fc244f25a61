//! The reverse map of anonymous pages (Linux 6.1 `mm/rmap.c`, reduced).
//!
//! Linux finds the PTEs of an anonymous page through `page->mapping` →
//! `anon_vma` → the VMAs that may map it, then walks each VMA's page table
//! (`page_vma_mapped_walk`). Our guest has no VMAs: it records each mapping
//! of a page directly, as `(asid, va)`, in a fixed pool of [`RmapEntry`]s
//! the caller provides (no allocation). The entries of one page form a
//! singly linked chain:
//!
//! - the chain head lives in [`PageRecord::mapping`] as `index + 1` of the
//!   first entry (`0`: no chain), so the host can follow a frame's mappings
//!   from the page array plus the pool;
//! - unused entries form a free list inside the pool.
//!
//! Counts follow Linux: `_mapcount` starts at -1, each present mapping adds
//! one, so `mapcount + 1` == the number of present entries on the chain.
//! References are the caller's business as in Linux: the first mapping of a
//! fresh page uses the allocation's reference (`page_add_new_anon_rmap`),
//! every further mapping takes one (`get_page`), every unmap drops one.
//!
//! During migration an entry may be a *migration entry*
//! ([`RMAP_MIGRATION`]): the PTE was cleared by `try_to_migrate` and will be
//! re-established by `remove_migration_ptes` (Linux keeps a swap-type
//! migration entry in the page table and finds it again through the
//! `anon_vma`; we keep it on the chain). Migration entries do not count in
//! `mapcount`.
use crate::page::*;
use crate::types::{Pfn, PAGE_SIZE};
use core::fmt;

/// "No entry" in [`RmapEntry::next`] and the free list.
pub const RMAP_NONE: u32 = u32::MAX;
/// [`RmapEntry::flags`]: the PTE is a migration entry (not present).
pub const RMAP_MIGRATION: u16 = 1 << 0;

/// One mapping of a page: address space `asid`, page-aligned user `va`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RmapEntry {
    /// Next entry on the page's chain (or on the free list); [`RMAP_NONE`].
    pub next: u32,
    /// Address-space id.
    pub asid: u16,
    /// `RMAP_*` bits.
    pub flags: u16,
    /// Page-aligned virtual address.
    pub va: u32,
}

impl RmapEntry {
    /// An unused entry.
    pub const EMPTY: RmapEntry = RmapEntry { next: RMAP_NONE, asid: 0, flags: 0, va: 0 };
    /// Whether the PTE is present (not a migration entry).
    pub const fn present(&self) -> bool {
        self.flags & RMAP_MIGRATION == 0
    }
}

/// Errors of the reverse map (never a panic).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RmapError {
    /// Every pool entry is in use.
    PoolFull,
    /// The PFN is not covered by the memory map.
    OutOfRange(Pfn),
    /// The VA is not page aligned.
    Misaligned(u32),
    /// The page is free, reserved or otherwise not mappable.
    BadPage(Pfn),
    /// `(asid, va)` already maps this page.
    AlreadyMapped(Pfn, u16, u32),
    /// `(asid, va)` does not map this page.
    NotMapped(Pfn, u16, u32),
    /// The page's chain is broken (head or link out of the pool, cycle,
    /// count differs from `mapcount`).
    Corrupt(Pfn),
}

impl fmt::Display for RmapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RmapError::PoolFull => f.write_str("rmap pool full"),
            RmapError::OutOfRange(p) => write!(f, "pfn {:#x} outside the memory map", p.0),
            RmapError::Misaligned(va) => write!(f, "va {:#x} not page aligned", va),
            RmapError::BadPage(p) => write!(f, "pfn {:#x} is not an in-use page", p.0),
            RmapError::AlreadyMapped(p, a, va) => {
                write!(f, "pfn {:#x} already mapped at asid {} va {:#x}", p.0, a, va)
            }
            RmapError::NotMapped(p, a, va) => {
                write!(f, "pfn {:#x} not mapped at asid {} va {:#x}", p.0, a, va)
            }
            RmapError::Corrupt(p) => write!(f, "rmap chain of pfn {:#x} corrupt", p.0),
        }
    }
}

/// The reverse map: a pool of entries over caller-provided storage.
pub struct Rmap<'a> {
    pool: &'a mut [RmapEntry],
    free: u32,
    nr_used: u32,
}

/// Iterator over one page's chain (see [`Rmap::for_each_mapping`]); stops
/// after `pool.len()` steps even on a corrupt (cyclic) chain.
pub struct RmapIter<'r> {
    pool: &'r [RmapEntry],
    cur: u32,
    budget: usize,
}

impl Iterator for RmapIter<'_> {
    type Item = RmapEntry;
    fn next(&mut self) -> Option<RmapEntry> {
        if self.cur == RMAP_NONE || self.budget == 0 {
            return None;
        }
        let e = *self.pool.get(self.cur as usize)?;
        self.budget -= 1;
        self.cur = e.next;
        Some(e)
    }
}

/// Chain head index of a page record (`RMAP_NONE` if none).
#[inline]
pub(crate) fn chain_head(p: &PageRecord) -> u32 {
    if p.mapping == 0 {
        RMAP_NONE
    } else {
        p.mapping - 1
    }
}

#[inline]
fn set_chain_head(p: &mut PageRecord, idx: u32) {
    p.mapping = if idx == RMAP_NONE { 0 } else { idx + 1 };
}

impl<'a> Rmap<'a> {
    /// Wraps `pool` (every entry becomes free). At most `u32::MAX - 1`
    /// entries are used.
    pub fn new(pool: &'a mut [RmapEntry]) -> Self {
        let n = pool.len().min(u32::MAX as usize - 1);
        for (i, e) in pool.iter_mut().enumerate() {
            *e = RmapEntry { next: if i + 1 < n { i as u32 + 1 } else { RMAP_NONE }, ..RmapEntry::EMPTY };
        }
        Rmap { free: if n > 0 { 0 } else { RMAP_NONE }, pool, nr_used: 0 }
    }

    /// Entries in use.
    pub fn nr_used(&self) -> u32 {
        self.nr_used
    }

    /// Pool size.
    pub fn capacity(&self) -> usize {
        self.pool.len()
    }

    /// The raw pool (for the host-visible descriptor).
    pub fn entries(&self) -> &[RmapEntry] {
        self.pool
    }

    fn check_mappable(mem: &MemMap, pfn: Pfn) -> Result<(), RmapError> {
        let p = mem.page(pfn).ok_or(RmapError::OutOfRange(pfn))?;
        if p.refcount <= 0 || p.has(PG_BUDDY) || p.has(PG_RESERVED) || p.has(PG_TAIL) {
            return Err(RmapError::BadPage(pfn));
        }
        Ok(())
    }

    /// `page_add_anon_rmap` (`page_add_new_anon_rmap` for the first
    /// mapping): record that `(asid, va)` maps `pfn`; `mapcount` += 1,
    /// `PageAnon` set. The caller holds the mapping's page reference.
    pub fn page_add_anon_rmap(&mut self, mem: &mut MemMap, pfn: Pfn, asid: u16, va: u32) -> Result<(), RmapError> {
        if !va.is_multiple_of(PAGE_SIZE) {
            return Err(RmapError::Misaligned(va));
        }
        Self::check_mappable(mem, pfn)?;
        let head = chain_head(mem.page(pfn).ok_or(RmapError::OutOfRange(pfn))?);
        if self.iter_from(head).any(|e| e.asid == asid && e.va == va) {
            return Err(RmapError::AlreadyMapped(pfn, asid, va));
        }
        let idx = self.free;
        if idx == RMAP_NONE {
            return Err(RmapError::PoolFull);
        }
        self.free = self.pool[idx as usize].next;
        self.pool[idx as usize] = RmapEntry { next: head, asid, flags: 0, va };
        self.nr_used += 1;
        let p = mem.page_mut(pfn).ok_or(RmapError::OutOfRange(pfn))?;
        set_chain_head(p, idx);
        p.mapcount += 1;
        p.flags |= PG_ANON;
        Ok(())
    }

    /// `page_remove_rmap`: `(asid, va)` no longer maps `pfn`; `mapcount`
    /// drops by one. The caller drops the mapping's reference afterwards (`put_page`).
    /// `PageAnon` stays until the page is freed, as in Linux.
    pub fn page_remove_rmap(&mut self, mem: &mut MemMap, pfn: Pfn, asid: u16, va: u32) -> Result<(), RmapError> {
        let present = self.unlink(mem, pfn, |e| e.asid == asid && e.va == va)?.ok_or(RmapError::NotMapped(pfn, asid, va))?;
        if present {
            if let Some(p) = mem.page_mut(pfn) {
                p.mapcount -= 1;
            }
        }
        Ok(())
    }

    /// Unlinks and frees the first entry of `pfn`'s chain matching `f`.
    /// `Ok(Some(present))` if one was found.
    fn unlink(&mut self, mem: &mut MemMap, pfn: Pfn, f: impl Fn(&RmapEntry) -> bool) -> Result<Option<bool>, RmapError> {
        let head = chain_head(mem.page(pfn).ok_or(RmapError::OutOfRange(pfn))?);
        let mut prev = RMAP_NONE;
        let mut cur = head;
        let mut budget = self.pool.len();
        while cur != RMAP_NONE {
            if budget == 0 || cur as usize >= self.pool.len() {
                return Err(RmapError::Corrupt(pfn));
            }
            budget -= 1;
            let e = self.pool[cur as usize];
            if f(&e) {
                if prev == RMAP_NONE {
                    if let Some(p) = mem.page_mut(pfn) {
                        set_chain_head(p, e.next);
                    }
                } else {
                    self.pool[prev as usize].next = e.next;
                }
                self.pool[cur as usize] = RmapEntry { next: self.free, ..RmapEntry::EMPTY };
                self.free = cur;
                self.nr_used -= 1;
                return Ok(Some(e.present()));
            }
            prev = cur;
            cur = e.next;
        }
        Ok(None)
    }

    fn iter_from(&self, head: u32) -> RmapIter<'_> {
        RmapIter { pool: self.pool, cur: head, budget: self.pool.len() }
    }

    /// `rmap_walk`: every entry of `pfn`'s chain (present mappings and
    /// migration entries; see [`RmapEntry::present`]). Empty for an
    /// uncovered PFN.
    pub fn for_each_mapping(&self, mem: &MemMap, pfn: Pfn) -> RmapIter<'_> {
        let head = mem.page(pfn).map_or(RMAP_NONE, chain_head);
        self.iter_from(head)
    }

    /// `page_mapcount`: present mappings of `pfn` (`mapcount + 1`).
    pub fn page_mapcount(mem: &MemMap, pfn: Pfn) -> i32 {
        mem.page(pfn).map_or(0, |p| p.mapcount + 1)
    }

    /// Entry `idx` of `pfn`'s chain becomes a migration entry (its PTE was
    /// cleared); `mapcount` -= 1.
    pub(crate) fn set_migration_entry(&mut self, mem: &mut MemMap, pfn: Pfn, idx: u32) {
        if let Some(e) = self.pool.get_mut(idx as usize) {
            if e.present() {
                e.flags |= RMAP_MIGRATION;
                if let Some(p) = mem.page_mut(pfn) {
                    p.mapcount -= 1;
                }
            }
        }
    }

    /// A migration entry of `pfn` becomes present again (its PTE was set);
    /// `mapcount` += 1.
    pub(crate) fn clear_migration_entry(&mut self, mem: &mut MemMap, pfn: Pfn, idx: u32) {
        if let Some(e) = self.pool.get_mut(idx as usize) {
            if !e.present() {
                e.flags &= !RMAP_MIGRATION;
                if let Some(p) = mem.page_mut(pfn) {
                    p.mapcount += 1;
                }
            }
        }
    }

    /// Visits `(index, entry)` along `pfn`'s chain; `Corrupt` if a link
    /// leaves the pool or the chain is longer than the pool (a cycle).
    pub(crate) fn chain_indices(&self, mem: &MemMap, pfn: Pfn, mut visit: impl FnMut(u32, RmapEntry)) -> Result<(), RmapError> {
        let mut cur = mem.page(pfn).map_or(RMAP_NONE, chain_head);
        let mut budget = self.pool.len();
        while cur != RMAP_NONE {
            if budget == 0 || cur as usize >= self.pool.len() {
                return Err(RmapError::Corrupt(pfn));
            }
            budget -= 1;
            let e = self.pool[cur as usize];
            visit(cur, e);
            cur = e.next;
        }
        Ok(())
    }

    /// One entry by index.
    pub(crate) fn entry(&self, idx: u32) -> Option<RmapEntry> {
        self.pool.get(idx as usize).copied()
    }

    /// `folio_migrate_mapping` for anon pages: the chain moves from `old`
    /// to `new` (Linux copies `page->mapping`; our head must have exactly
    /// one owner, so `old`'s is cleared).
    pub(crate) fn move_chain(mem: &mut MemMap, old: Pfn, new: Pfn) {
        let m = mem.page(old).map_or(0, |p| p.mapping);
        if let Some(p) = mem.page_mut(old) {
            p.mapping = 0;
        }
        if let Some(p) = mem.page_mut(new) {
            p.mapping = m;
        }
    }

    /// Checks `pfn`'s chain: links inside the pool, no cycle, no duplicate
    /// `(asid, va)`, `mapcount + 1` == present entries. Returns the number
    /// of present entries.
    pub fn check_page(&self, mem: &MemMap, pfn: Pfn) -> Result<u32, RmapError> {
        let p = mem.page(pfn).ok_or(RmapError::OutOfRange(pfn))?;
        // Bounded walk first: links inside the pool, no cycle.
        self.chain_indices(mem, pfn, |_, _| {})?;
        let mut present = 0u32;
        for (k, a) in self.for_each_mapping(mem, pfn).enumerate() {
            if a.va % PAGE_SIZE != 0 {
                return Err(RmapError::Corrupt(pfn));
            }
            if a.present() {
                present += 1;
            }
            // Duplicates (quadratic; chains are short).
            if self.for_each_mapping(mem, pfn).skip(k + 1).any(|b| a.asid == b.asid && a.va == b.va) {
                return Err(RmapError::Corrupt(pfn));
            }
        }
        if p.mapcount + 1 != present as i32 {
            return Err(RmapError::Corrupt(pfn));
        }
        Ok(present)
    }

    /// Checks the whole pool against the memory map: every page's chain is
    /// sound ([`Rmap::check_page`]), chains are disjoint, and the used
    /// entries are exactly those on chains. `O(pages + pool)`; needs a
    /// scratch bitmap of `pool.len()` bits (`ceil(len / 32)` words).
    pub fn check_integrity(&self, mem: &MemMap, seen: &mut [u32]) -> Result<(), RmapError> {
        for w in seen.iter_mut() {
            *w = 0;
        }
        let mut on_chains = 0u32;
        let base = mem.base_pfn().0;
        for (i, p) in mem.records().iter().enumerate() {
            if p.mapping == 0 || p.flags & PG_ANON == 0 {
                continue;
            }
            let pfn = Pfn(base + i as u32);
            self.check_page(mem, pfn)?;
            let mut dup = false;
            self.chain_indices(mem, pfn, |idx, _| {
                let (w, b) = ((idx / 32) as usize, idx % 32);
                match seen.get_mut(w) {
                    Some(word) if *word & (1 << b) == 0 => *word |= 1 << b,
                    _ => dup = true,
                }
                on_chains += 1;
            })?;
            if dup {
                return Err(RmapError::Corrupt(pfn));
            }
        }
        if on_chains != self.nr_used {
            return Err(RmapError::Corrupt(mem.base_pfn()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
