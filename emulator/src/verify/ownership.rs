//! Frame ownership: every frame is free or owned exactly as the guest's
//! structures say. One walk of every live address space serves both
//! checks that need it: no PTE maps a free frame ([`Check::PteMapsFree`])
//! and no user page is an orphan or mapped by a foreign PTE
//! ([`Check::Ownership`]).
//!
//! A user page no PTE maps is an orphan unless pins hold it: `munmap`
//! does not wait for pins (Linux 6.1 `zap_pte_range` drops the mapping's
//! reference only), so a pinned page outlives its last mapping, held by
//! the pin until its holder's `unpin_user_page` frees it. The guest
//! lists the pins its holders keep by frame, each under its holder's name
//! (the descriptor's pin table, [`Snapshot::pins`]: the shell's `pin in`,
//! the camera's capture buffers); a page whose every reference is such a
//! pin, whoever holds it, is held, not orphaned. A leaked pin (the
//! holder forgot it but the reference stayed) is listed nowhere: its
//! page is an orphan once unmapped.
use super::{Check, CheckCtx, Out, Violation};
use crate::memory::GuestRam;
use crate::introspect::va::for_each_user_mapping;
use crate::introspect::snapshot::is_user_in_use;
use crate::introspect::tables::TableCache;
use crate::introspect::Snapshot;
use std::collections::BTreeSet;
use cmaemu_abi::desc::{dma_dev_name, AS_LIVE};
use cmaemu_abi::page::*;

/// Who a page record says owns the frame, for messages.
pub fn owner_text(owner: u32) -> String {
    let id = owner & !OWNER_KIND_MASK;
    match owner & OWNER_KIND_MASK {
        OWNER_NONE => "nobody".into(),
        OWNER_KIND_KERNEL => format!("the kernel ({id:#x})"),
        OWNER_KIND_DEVICE => format!("device {}", dma_dev_name(id)),
        OWNER_KIND_CMA => format!("a CMA allocation of area {id}"),
        OWNER_KIND_USER => format!("the task of asid {id}"),
        OWNER_KIND_PGTABLE => format!("a page table of asid {id}"),
        _ => format!("owner {owner:#x}"),
    }
}

/// Whether pins alone hold user page `pfn`, which no PTE maps: unmapped
/// by its record too, and every reference of it one of the pins the
/// guest's pin table lists on the frame.
pub fn held_by_pins(s: &Snapshot, pfn: u32, p: &PageRecord) -> bool {
    let pins = s.pins_of(pfn);
    pins > 0 && p.mapcount == -1 && p.refcount as i64 <= pins as i64
}

/// Walk every live user address space once and check, on a stable
/// snapshot: no PTE maps a free frame; every mapped frame is a user page;
/// every user page with a reference is mapped by as many PTEs as its
/// `mapcount` says (none: an orphan — a frame nobody will ever free —
/// unless pins hold it, [`held_by_pins`]).
/// On an unstable snapshot only the free-frame check runs.
pub fn check_frames(s: &Snapshot, ram: &GuestRam, ctx: &CheckCtx) -> Vec<Violation> {
    check_frames_with(s, ram, ctx, &mut Vec::new())
}

/// [`check_frames`] with the caller's per-page scratch (kept between calls
/// so that a large board's counts are not allocated and faulted in anew).
pub fn check_frames_with(s: &Snapshot, ram: &GuestRam, ctx: &CheckCtx, mapped: &mut Vec<(u32, u32, u32)>) -> Vec<Violation> {
    let mut out = Out::new(ctx);
    // per page of the array: (PTEs mapping it, first (asid, va)). With the
    // snapshot's page index the scratch stays all zeros between calls
    // (only the entries this walk touched are reset at the end) and only
    // the user pages are visited after the walk.
    let base = s.base_pfn();
    let ix = s.index();
    let mut touched: Vec<usize> = Vec::new();
    if ix.is_some() {
        if s.stable && mapped.len() != s.pages.len() {
            mapped.clear();
            mapped.resize(s.pages.len(), (0, 0, 0));
        }
    } else {
        mapped.clear();
        if s.stable {
            mapped.resize(s.pages.len(), (0, 0, 0));
        }
    }
    for a in &s.address_spaces {
        if a.flags & AS_LIVE == 0 {
            continue;
        }
        let Some(regs) = s.mmu_regs(a.asid) else { continue };
        for_each_user_mapping(ram, &regs, |m| {
            let pfn = (m.pa >> PAGE_SHIFT) as u32;
            if s.is_free(pfn) {
                out.push(Check::PteMapsFree, Some(pfn), Some(m.va), None, format!("VA {:#010x} of asid {} maps frame {pfn:#x}, which is free", m.va, a.asid));
                return;
            }
            if !s.stable {
                return;
            }
            if let Some(e) = pfn.checked_sub(base).and_then(|i| mapped.get_mut(i as usize)) {
                if e.0 == 0 {
                    *e = (0, a.asid, m.va);
                    touched.push((pfn - base) as usize);
                }
                e.0 += 1;
            }
            if let Some(p) = s.page(pfn) {
                if p.owner & OWNER_KIND_MASK != OWNER_KIND_USER {
                    out.push(
                        Check::Ownership,
                        Some(pfn),
                        Some(m.va),
                        None,
                        format!("VA {:#010x} of asid {} maps frame {pfn:#x}, which belongs to {} (refcount {}), not to a task", m.va, a.asid, owner_text(p.owner), p.refcount),
                    );
                }
            }
        });
    }
    if !s.stable {
        return out.finish();
    }
    let all_pages = 0..s.pages.len();
    let candidates: Box<dyn Iterator<Item = usize> + '_> = match ix {
        Some(ix) => Box::new(ix.user.ones(0..s.pages.len())),
        None => Box::new(all_pages),
    };
    for i in candidates {
        let p = &s.pages[i];
        if !is_user_in_use(p) {
            continue;
        }
        let pfn = base + i as u32;
        match mapped.get(i).filter(|e| e.0 > 0) {
            None if held_by_pins(s, pfn, p) => {}
            None => out.push(Check::Ownership, Some(pfn), None, None, orphan_text(pfn, p)),
            Some(&(n, asid, va)) if n as i64 != p.mapcount as i64 + 1 => out.push(
                Check::Ownership,
                Some(pfn),
                Some(va),
                None,
                format!("frame {pfn:#x} is mapped by {n} PTE(s) (first VA {va:#010x} of asid {asid}) but its mapcount says {}", p.mapcount as i64 + 1),
            ),
            Some(_) => {}
        }
    }
    if ix.is_some() {
        for i in touched {
            mapped[i] = (0, 0, 0);
        }
    } else {
        mapped.clear();
    }
    out.finish()
}

/// [`check_frames`] for one session, kept up to date between calls: the
/// address spaces' tables are cached ([`TableCache`], re-read only where
/// the guest wrote them), each frame's mapping count is kept, and so are
/// the frames a check reports on (mapped but free or not a user page; a
/// user page whose count disagrees with its mapcount), re-judged only
/// where a count or the page's record or free mark changed. It finds what
/// [`check_frames`] finds on the same snapshot and RAM, in the same order.
pub struct FrameChecker {
    tables: TableCache,
    /// The page array's first pfn and length the state below is for.
    base: u32,
    /// Per page of the array: PTEs mapping it (over every walk).
    count: Vec<u32>,
    /// Pages mapped by some PTE but free or not owned by a task.
    bad: BTreeSet<usize>,
    /// User pages in use whose PTEs (none, or not `mapcount + 1`) disagree.
    wrong: BTreeSet<usize>,
    /// Pages whose count changed in this update.
    touched: Vec<usize>,
    /// The frames the pin table listed at the last catch-up (sorted, a
    /// frame once per pin).
    pins: Vec<u32>,
    fresh: bool,
}

impl FrameChecker {
    pub fn new(ram: &GuestRam) -> FrameChecker {
        FrameChecker { tables: TableCache::new(ram), base: 0, count: Vec::new(), bad: BTreeSet::new(), wrong: BTreeSet::new(), touched: Vec::new(), pins: Vec::new(), fresh: true }
    }

    /// [`check_frames`] of `s` and RAM now: [`FrameChecker::catch_up`],
    /// then [`FrameChecker::findings`].
    pub fn check(&mut self, s: &Snapshot, ctx: &CheckCtx, changed: &[std::ops::Range<usize>]) -> Vec<Violation> {
        self.catch_up(s, changed);
        self.findings(s, ctx)
    }

    /// The bookkeeping and judging half of [`FrameChecker::check`], without
    /// findings: bring the cached tables, each frame's mapping count and
    /// the frames to report on up to `s` and RAM now. `changed`: the
    /// page-array index ranges outside which no page record and no free
    /// mark changed since the last catch-up (ignored on the first call and
    /// whenever the array moved: then every page is judged). A session
    /// calls it where a command's writes are read (its prompt), so that
    /// the next check, inside a timed command, judges only what changed
    /// since; what that check finds is what it would find without.
    pub fn catch_up(&mut self, s: &Snapshot, changed: &[std::ops::Range<usize>]) {
        self.read_tables(s);
        self.judge(s, changed);
    }

    /// The half of [`FrameChecker::catch_up`] that reads RAM: the cached
    /// tables brought up to RAM now, each frame's mapping count with them
    /// (the frames whose count changed kept for [`FrameChecker::judge`]).
    pub fn read_tables(&mut self, s: &Snapshot) {
        let n = s.pages.len();
        let base = s.base_pfn();
        if self.fresh || self.base != base || self.count.len() != n {
            let ram = self.tables.ram().clone();
            self.tables = TableCache::new(&ram);
            (self.base, self.count, self.bad, self.wrong, self.fresh) = (base, vec![0; n], BTreeSet::new(), BTreeSet::new(), true);
        }
        let spaces: Vec<(u32, crate::memory::walk::MmuRegs)> =
            s.address_spaces.iter().filter(|a| a.flags & AS_LIVE != 0).filter_map(|a| Some((a.asid, s.mmu_regs(a.asid)?))).collect();
        let (count, touched) = (&mut self.count, &mut self.touched);
        touched.clear();
        self.tables.update(&spaces, &mut |pfn, d| {
            if let Some(i) = pfn.checked_sub(base).map(|i| i as usize).filter(|&i| i < n) {
                count[i] = (count[i] as i64 + d) as u32;
                touched.push(i);
            }
        });
    }

    /// The half of [`FrameChecker::catch_up`] that reads only `s` (the
    /// snapshot [`FrameChecker::read_tables`] was given): judge the frames
    /// whose record, free mark, pin or count changed.
    pub fn judge(&mut self, s: &Snapshot, changed: &[std::ops::Range<usize>]) {
        let (n, base) = (self.count.len(), self.base);
        let mut judge = |i: usize| {
            let p = &s.pages[i];
            let free = s.is_free(base + i as u32);
            let c = self.count[i];
            set(&mut self.bad, i, c > 0 && (free || p.owner & OWNER_KIND_MASK != OWNER_KIND_USER));
            let mapped = if free { 0 } else { c };
            // (the pin table is looked at only for user pages no PTE maps)
            let wrong = is_user_in_use(p) && if mapped == 0 { !held_by_pins(s, base + i as u32, p) } else { mapped as i64 != p.mapcount as i64 + 1 };
            set(&mut self.wrong, i, wrong);
        };
        // the pins that hold (a record naming no holder holds nothing)
        let mut pins: Vec<u32> = s.holding_pins().map(|r| r.pfn).collect();
        pins.sort_unstable();
        if std::mem::take(&mut self.fresh) {
            (0..n).for_each(&mut judge);
        } else {
            for r in changed {
                (r.start.min(n)..r.end.min(n)).for_each(&mut judge);
            }
            let touched = std::mem::take(&mut self.touched);
            touched.iter().copied().for_each(&mut judge);
            self.touched = touched;
            // a pin dropped from (or added to) the table changes whether
            // its frame is held, with or without a change to its record
            if pins != self.pins {
                let mut either: Vec<u32> = pins.iter().chain(&self.pins).copied().collect();
                either.sort_unstable();
                either.dedup();
                either.iter().filter_map(|&pfn| pfn.checked_sub(base).map(|i| i as usize).filter(|&i| i < n)).for_each(&mut judge);
            }
        }
        self.pins = pins;
    }

    /// The findings of the state as of the last catch-up, `s` being the
    /// snapshot it was given: what [`check_frames`] finds on `s` and RAM
    /// as they were then, in the same order.
    pub fn findings(&self, s: &Snapshot, ctx: &CheckCtx) -> Vec<Violation> {
        let base = self.base;
        let mut out = Out::new(ctx);
        if !self.bad.is_empty() {
            self.tables.for_each(|asid, va, pfn| {
                let Some(i) = pfn.checked_sub(base).map(|i| i as usize).filter(|i| self.bad.contains(i)) else { return };
                if s.is_free(pfn) {
                    out.push(Check::PteMapsFree, Some(pfn), Some(va), None, format!("VA {va:#010x} of asid {asid} maps frame {pfn:#x}, which is free"));
                } else if s.stable {
                    let p = &s.pages[i];
                    out.push(
                        Check::Ownership,
                        Some(pfn),
                        Some(va),
                        None,
                        format!("VA {va:#010x} of asid {asid} maps frame {pfn:#x}, which belongs to {} (refcount {}), not to a task", owner_text(p.owner), p.refcount),
                    );
                }
            });
        }
        if !s.stable || self.wrong.is_empty() {
            return out.finish();
        }
        // the first PTE (in walk order) of each page mapped a wrong number of times
        let mut first: std::collections::HashMap<usize, (u32, u32)> = Default::default();
        if self.wrong.iter().any(|&i| self.count[i] > 0 && !s.is_free(base + i as u32)) {
            self.tables.for_each(|asid, va, pfn| {
                if let Some(i) = pfn.checked_sub(base).map(|i| i as usize).filter(|i| self.wrong.contains(i)) {
                    first.entry(i).or_insert((asid, va));
                }
            });
        }
        for &i in &self.wrong {
            let p = &s.pages[i];
            let pfn = base + i as u32;
            let mapped = if s.is_free(pfn) { 0 } else { self.count[i] };
            match first.get(&i).filter(|_| mapped > 0) {
                None => out.push(Check::Ownership, Some(pfn), None, None, orphan_text(pfn, p)),
                Some(&(asid, va)) => out.push(
                    Check::Ownership,
                    Some(pfn),
                    Some(va),
                    None,
                    format!("frame {pfn:#x} is mapped by {mapped} PTE(s) (first VA {va:#010x} of asid {asid}) but its mapcount says {}", p.mapcount as i64 + 1),
                ),
            }
        }
        out.finish()
    }
}

fn set(s: &mut BTreeSet<usize>, i: usize, on: bool) {
    if on {
        s.insert(i);
    } else {
        s.remove(&i);
    }
}

fn orphan_text(pfn: u32, p: &PageRecord) -> String {
    format!(
        "frame {pfn:#x} belongs to the task of asid {} (refcount {}, mapcount {}) but no PTE maps it: an orphan nobody will free (a missed put_page, a leaked pin or old page)",
        p.owner & !OWNER_KIND_MASK,
        p.refcount,
        p.mapcount
    )
}
