//! The user (TTBR0) translation tables of the guest's address spaces,
//! cached and kept up to date through RAM's dirty log: each table's pages
//! (its first-level table and every second-level table it points to) are
//! watched one by one ([`GuestRam::watch_page`]), and an update re-reads
//! only the pages written since the last one. What it yields is what
//! [`for_each_user_mapping`](super::va::for_each_user_mapping) would find
//! walking every table afresh, mapping by mapping in the same order.
use crate::memory::walk::{l1_slot, l2_frame, ttbr0_entries, MmuRegs};
use crate::memory::GuestRam;
use std::collections::{HashMap, HashSet};

/// Second-level descriptors of one 1 MiB section.
type L2 = Box<[u32; 256]>;

/// One TTBR0 table as last read.
struct Table {
    /// Its first-level table: base address and entries (TTBCR.N).
    base: u32,
    entries: u32,
    /// The first-level entries (0 where one is not in RAM).
    l1: Vec<u32>,
    /// Per first-level entry: the second-level table it points to, when
    /// it is one and lies in RAM.
    l2: Vec<Option<L2>>,
    /// The entries with a second-level table, ascending.
    present: Vec<usize>,
    /// Times the current list of address spaces walks it.
    uses: i64,
}

/// The frame a second-level descriptor `d` at `va` maps (None: a fault).
#[inline]
fn frame(d: u32, va: u32) -> Option<u32> {
    l2_frame(d, va).map(|pa| (pa >> 12) as u32)
}

fn l2_page(l1: u32) -> u64 {
    (l1 & !0xfff) as u64
}

impl Table {
    fn new(regs: &MmuRegs) -> Table {
        let entries = ttbr0_entries(regs);
        Table { base: l1_slot(regs, 0), entries, l1: vec![0; entries as usize], l2: (0..entries).map(|_| None).collect(), present: Vec::new(), uses: 0 }
    }
    fn l1_pages(&self) -> impl Iterator<Item = u64> {
        let (lo, hi) = (self.base as u64 & !0xfff, self.base as u64 + self.entries as u64 * 4);
        (lo..hi).step_by(4096)
    }
    /// Every mapping: `f(va, pfn)`, in the walk's order.
    fn for_each(&self, mut f: impl FnMut(u32, u32)) {
        for &i in &self.present {
            let Some(l2) = &self.l2[i] else { continue };
            for (j, &d) in l2.iter().enumerate() {
                let va = ((i as u32) << 20) | ((j as u32) << 12);
                if let Some(pfn) = frame(d, va) {
                    f(va, pfn);
                }
            }
        }
    }
    /// Every mapping of slot `i`, counted `times` more times.
    fn count_slot(&self, i: usize, times: i64, delta: &mut dyn FnMut(u32, i64)) {
        if let (Some(l2), true) = (&self.l2[i], times != 0) {
            for (j, &d) in l2.iter().enumerate() {
                if let Some(pfn) = frame(d, ((i as u32) << 20) | ((j as u32) << 12)) {
                    delta(pfn, times);
                }
            }
        }
    }
}

/// See the module doc. One per reader of RAM's single watched pages.
pub struct TableCache {
    ram: GuestRam,
    tables: Vec<Table>,
    /// The current list: (asid, index into `tables`), in walk order.
    list: Vec<(u32, usize)>,
    /// Pages watched, with how many table pages each holds.
    watched: HashMap<u64, u32>,
}

impl TableCache {
    pub fn new(ram: &GuestRam) -> TableCache {
        TableCache { ram: ram.clone(), tables: Vec::new(), list: Vec::new(), watched: HashMap::new() }
    }

    /// The RAM it reads.
    pub fn ram(&self) -> &GuestRam {
        &self.ram
    }

    fn watch(&mut self, page: u64) {
        let n = self.watched.entry(page).or_insert(0);
        if *n == 0 && !self.ram.watch_page(page, true) {
            // outside RAM: nothing there can change (or be read)
            self.watched.remove(&page);
            return;
        }
        *n += 1;
    }

    fn unwatch(&mut self, page: u64) {
        if let Some(n) = self.watched.get_mut(&page) {
            *n -= 1;
            if *n == 0 {
                self.watched.remove(&page);
                self.ram.watch_page(page, false);
            }
        }
    }

    /// The second-level table first-level entry `l1` points to (None: it
    /// is no such pointer, or the table is not in RAM).
    fn read_l2(&self, l1: u32) -> Option<L2> {
        if l1 & 3 != 0b01 {
            return None;
        }
        let mut b = [0u8; 1024];
        self.ram.read((l1 & !0x3ff) as u64, &mut b).ok()?;
        let mut d = Box::new([0u32; 256]);
        for (k, w) in b.chunks_exact(4).enumerate() {
            d[k] = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
        }
        Some(d)
    }

    /// Read slot `i` of table `t` from its first-level entry (watching the
    /// second-level table's page first).
    fn read_slot(&mut self, t: usize, i: usize) {
        let l1 = self.tables[t].l1[i];
        let l2 = self.read_l2(l1);
        if l2.is_some() {
            self.watch(l2_page(l1));
            let tb = &mut self.tables[t];
            if let Err(k) = tb.present.binary_search(&i) {
                tb.present.insert(k, i);
            }
        }
        self.tables[t].l2[i] = l2;
    }

    /// Forget slot `i` of table `t` (its second-level page unwatched).
    fn drop_slot(&mut self, t: usize, i: usize) {
        let tb = &mut self.tables[t];
        if tb.l2[i].take().is_some() {
            if let Ok(k) = tb.present.binary_search(&i) {
                tb.present.remove(k);
            }
            self.unwatch(l2_page(self.tables[t].l1[i]));
        }
    }

    /// Read the first-level entries of table `t` (as the walk does: all in
    /// one read, or one by one where that fails).
    fn read_l1(&self, t: usize) -> Vec<u32> {
        let tb = &self.tables[t];
        let mut raw = vec![0u8; tb.entries as usize * 4];
        if self.ram.read(tb.base as u64, &mut raw).is_ok() {
            raw.chunks_exact(4).map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]])).collect()
        } else {
            (0..tb.entries).map(|i| self.ram.read_u32(tb.base as u64 + i as u64 * 4).unwrap_or(0)).collect()
        }
    }

    /// Bring the cache up to date with `spaces` — (asid, registers) of each
    /// address space the walk visits, in its order — reading only what was
    /// written since the last update. `delta(pfn, n)`: the number of
    /// mappings of frame `pfn` (over the whole list) changed by `n`.
    pub fn update(&mut self, spaces: &[(u32, MmuRegs)], delta: &mut dyn FnMut(u32, i64)) {
        // the pages written since the last update (None: not known, e.g. a
        // page in the watched range, whose reader takes its marks)
        let dirty: HashSet<u64> = self.watched.keys().copied().filter(|&p| self.ram.take_page(p) != Some(false)).collect();
        let mut uses = vec![0i64; self.tables.len()];
        self.list.clear();
        for (asid, regs) in spaces {
            let probe = Table::new(regs);
            let t = match self.tables.iter().position(|t| (t.base, t.entries) == (probe.base, probe.entries)) {
                Some(t) => t,
                None => {
                    self.tables.push(probe);
                    uses.push(0);
                    self.tables.len() - 1
                }
            };
            uses[t] += 1;
            self.list.push((*asid, t));
        }
        for t in 0..self.tables.len() {
            let old = self.tables[t].uses;
            let new = uses[t];
            if old == 0 {
                // new: watch, then read everything
                if new == 0 {
                    continue;
                }
                let pages: Vec<u64> = self.tables[t].l1_pages().collect();
                for p in pages {
                    self.watch(p);
                }
                self.tables[t].l1 = self.read_l1(t);
                for i in 0..self.tables[t].entries as usize {
                    self.read_slot(t, i);
                    self.tables[t].count_slot(i, new, delta);
                }
                self.tables[t].uses = new;
                continue;
            }
            let l1_dirty = self.tables[t].l1_pages().any(|p| dirty.contains(&p));
            let l1 = if l1_dirty { self.read_l1(t) } else { Vec::new() };
            // every entry when the first-level table was written, else
            // those with a second-level table
            let slots: Vec<usize> = if l1_dirty { (0..self.tables[t].entries as usize).collect() } else { self.tables[t].present.clone() };
            for i in slots {
                let tb = &self.tables[t];
                let moved = l1_dirty && l1[i] != tb.l1[i];
                let l2_dirty = tb.l2[i].is_some() && dirty.contains(&l2_page(tb.l1[i]));
                if moved {
                    self.tables[t].count_slot(i, -old, delta);
                    self.drop_slot(t, i);
                    self.tables[t].l1[i] = l1[i];
                    self.read_slot(t, i);
                    self.tables[t].count_slot(i, old, delta);
                } else if l2_dirty {
                    // the same table (in RAM, so still readable), rewritten
                    let Some(after) = self.read_l2(tb.l1[i]) else { continue };
                    let Some(before) = self.tables[t].l2[i].replace(after) else { continue };
                    let a = self.tables[t].l2[i].as_deref().unwrap_or(&[0; 256]);
                    let b = &*before;
                    for j in 0..256 {
                        if a[j] != b[j] {
                            let va = ((i as u32) << 20) | ((j as u32) << 12);
                            if let Some(pfn) = frame(b[j], va) {
                                delta(pfn, -old);
                            }
                            if let Some(pfn) = frame(a[j], va) {
                                delta(pfn, old);
                            }
                        }
                    }
                }
            }
            if new != old {
                for k in 0..self.tables[t].present.len() {
                    let i = self.tables[t].present[k];
                    self.tables[t].count_slot(i, new - old, delta);
                }
                self.tables[t].uses = new;
            }
        }
        // tables no longer walked: forgotten (their pages unwatched)
        let mut remap = vec![usize::MAX; self.tables.len()];
        let mut kept = 0;
        for t in 0..self.tables.len() {
            if self.tables[t].uses == 0 {
                while let Some(&i) = self.tables[t].present.last() {
                    self.drop_slot(t, i);
                }
                let pages: Vec<u64> = self.tables[t].l1_pages().collect();
                for p in pages {
                    self.unwatch(p);
                }
            } else {
                remap[t] = kept;
                kept += 1;
            }
        }
        self.tables.retain(|t| t.uses != 0);
        for e in &mut self.list {
            e.1 = remap[e.1];
        }
    }

    /// Every mapping of the list as of the last update: `f(asid, va,
    /// pfn)`, in the order a fresh walk of each address space finds them.
    pub fn for_each(&self, mut f: impl FnMut(u32, u32, u32)) {
        for &(asid, t) in &self.list {
            self.tables[t].for_each(|va, pfn| f(asid, va, pfn));
        }
    }
}

impl Drop for TableCache {
    fn drop(&mut self) {
        for &p in self.watched.keys() {
            self.ram.watch_page(p, false);
        }
    }
}
