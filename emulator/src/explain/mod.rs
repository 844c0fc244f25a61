//! Why a `cma_alloc` failed, retried or could not even start: the host
//! finds the causes in guest memory, most decisive first.
//!
//! Linux says `alloc failed, req-size: 4032 pages, ret: -16` and, with
//! dynamic debug, dumps the pages `alloc_contig_range` gave up on. The host
//! reads the same state the verifiers read (page records, pageblock types,
//! CMA bitmaps, per-CPU lists, the LRU add batch, page tables, live DMA
//! buffers) at the moment the guest reports a busy retry or a failure, and
//! names the page, the reason and the owner:
//!
//! - [`Cause::TooLarge`]: more pages than the area holds;
//! - [`Cause::Pinned`]: a page with more references than mappings (a
//!   `get_user_pages` pin): which task maps it, at which VA, who pinned it;
//!   kind `device` when a device holds it for DMA (a live DMA buffer of
//!   the camera's USERPTR capture covers it);
//! - [`Cause::DeviceOwned`], [`Cause::Unmovable`]: a device's buffer, a
//!   kernel, reserved or page-table page inside the range (a page table is
//!   named by walking every task's translation tables: whose, for which
//!   VAs), or a page held
//!   by a reference nothing accounts for (no mapping, no pin, off the
//!   LRU: leaked);
//! - [`Cause::LruBatch`], [`Cause::PcpList`]: a page held in the LRU add
//!   batch or on a per-CPU list (both are drained before migration: such a
//!   page means a drain was missed or the page came back after it);
//!   [`Cause::PcpTaken`]: a block the host found on a per-CPU list inside
//!   the range when its migration began (the guest's `CMA_PHASE_MIGRATE`
//!   record) and that migration then took as a target;
//! - [`Cause::NotIsolated`]: a pageblock of the range already isolated by
//!   someone else; [`Cause::NotCma`]: a pageblock of the area that lost its
//!   CMA type;
//! - [`Cause::OutOfTargets`]: migration ran out of free pages outside the
//!   area to move into;
//! - [`Cause::NotMigrated`]: a movable page left in the range without an
//!   extra reference: its task, and whether its page tables really map it
//!   as often as its mapcount says (a stale reverse map makes
//!   `try_to_migrate` fail on every pass);
//! - [`Cause::Fragmented`]: no free run of the size at that alignment in
//!   the bitmap (the largest one and where).
//!
//! Nothing is taken on the guest's word: a pin is a reference count above
//! the mapcount plus the references the host can account for (the LRU
//! batch), found in the page record; the VA is found by walking the page
//! tables.
use crate::memory::GuestRam;
use crate::introspect::{CmaArea, Snapshot};
use cmaemu_abi::desc::{dma_dev_name, name_bytes, LruAddRecord, AS_LIVE};
use cmaemu_abi::page::*;
use std::fmt;

pub mod dump;
mod maps;
#[cfg(test)]
mod tests;
mod track;

pub use maps::MapCache;
pub use track::{Found, Tracker};
use std::cell::RefCell;

/// Where a pin came from (the guest's `TR_PIN` records): the command that
/// asked for it and the kernel function that took it (its address; named
/// from the kernel's `KALLSYMS` when a cause is worded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinSite {
    pub asid: u32,
    pub va: u32,
    pub func: u32,
    pub command: String,
}

/// Live pins by frame, oldest first.
pub type PinTable = std::collections::BTreeMap<u32, Vec<PinSite>>;

/// A pin's origin as a cause names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinnedBy {
    /// The command (`pin in`, `capture`, `stress`).
    pub command: String,
    /// The kernel function that took the pin (or its address in hex).
    pub func: String,
    /// The task whose page it pinned (by ASID), when it is live.
    pub pid: Option<u32>,
    pub asid: u32,
}

/// `-EBUSY`.
pub const EBUSY: i32 = -16;
/// `-ENOMEM`.
pub const ENOMEM: i32 = -12;
/// Pages of one kind listed one by one; more are counted in the last.
pub const MAX_PAGES_PER_KIND: usize = 4;

/// What the guest asked for and what came of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Area index in the descriptor's table.
    pub area: usize,
    pub count: u32,
    /// Alignment order (pages).
    pub align: u32,
    /// First pfn of the range `alloc_contig_range` tried (None: the bitmap
    /// had no free run, or the request never got that far).
    pub range: Option<u32>,
    /// The error of that try (`-EBUSY`, `-ENOMEM`, ...).
    pub errno: i32,
}

/// A device buffer the host knows to be live (from `dma_alloc` records).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DmaSpan {
    pub device: u32,
    pub pfn: u32,
    pub count: u32,
}

/// A user mapping of a frame: the task (pid), its ASID and the VA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MappedBy {
    pub pid: u32,
    pub asid: u32,
    pub va: u32,
}

/// One reason the request could not be met at that range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cause {
    /// The request is larger than the area.
    TooLarge { count: u32, area_pages: u32 },
    /// `refcount` exceeds what `mapcount` (+ an LRU batch slot) accounts
    /// for by `extra`: migration cannot move it. `dma`: a device's live
    /// buffer covers it (pinned for DMA).
    /// `by`: who took the (latest) pin, from the guest's pin records.
    Pinned { pfn: u32, refcount: i32, mapcount: i32, extra: i32, mapped: Vec<MappedBy>, dma: Option<u32>, by: Option<PinnedBy>, more: u32 },
    /// A device's DMA buffer (owner tag) inside the range.
    DeviceOwned { pfn: u32, device: u32, more: u32 },
    /// A kernel, reserved or page-table page inside the range.
    Unmovable { pfn: u32, owner: String, more: u32 },
    /// A page in the LRU add batch (not on the LRU: cannot be isolated);
    /// `mapped`: the tasks and VAs that map it (its owners).
    LruBatch { pfn: u32, refcount: i32, mapcount: i32, mapped: Vec<MappedBy>, more: u32 },
    /// A block on a per-CPU list (free, but not in the buddy).
    PcpList { pfn: u32, order: u32, more: u32 },
    /// A block the host found on a per-CPU list inside the isolated range
    /// when migration began (after the drain) and that is in use now:
    /// `rmqueue_pcplist` handed it out as a migration target. `mapped`:
    /// who maps it now (the page moved into it).
    PcpTaken { pfn: u32, order: u32, mapped: Vec<MappedBy>, more: u32 },
    /// A pageblock of the range is `MIGRATE_ISOLATE` (another isolation).
    NotIsolated { pageblock: u32 },
    /// A pageblock of the CMA area has another migrate type than CMA
    /// (`mt`): the area's pages there are handed out as that type.
    NotCma { pageblock: u32, mt: u8 },
    /// Migration needed `needed` more target pages; `free_outside` is the
    /// free pages outside the area per zone.
    OutOfTargets { needed: u32, first: u32, free_outside: Vec<(String, u64)> },
    /// A movable page left in the range with no extra reference. `task`:
    /// its owner (pid, asid) by the owner tag; `ptes`: how many page table
    /// entries of live tasks map it (fewer than `mapcount`: a stale
    /// reverse map).
    NotMigrated { pfn: u32, refcount: i32, mapcount: i32, task: Option<(u32, u32)>, ptes: u32, more: u32 },
    /// No free run of `count` pages at the alignment: the largest one.
    Fragmented { count: u32, align: u32, largest: u32, at: Option<u32>, free: u32 },
}

/// Every [`Cause::kind`] (scenario files check `expect_cause` against it).
pub const CAUSE_KINDS: [&str; 12] = ["too_large", "pinned", "device", "unmovable", "lru_batch", "pcp_list", "pcp_taken", "not_isolated", "not_cma", "out_of_targets", "not_migrated", "fragmented"];

impl Cause {
    /// Stable short name (trace events, tests).
    pub fn kind(&self) -> &'static str {
        match self {
            Cause::TooLarge { .. } => "too_large",
            // a pin a device holds for DMA (the camera's USERPTR buffer)
            Cause::Pinned { dma: Some(_), .. } => "device",
            Cause::Pinned { .. } => "pinned",
            Cause::DeviceOwned { .. } => "device",
            Cause::Unmovable { .. } => "unmovable",
            Cause::LruBatch { .. } => "lru_batch",
            Cause::PcpList { .. } => "pcp_list",
            Cause::PcpTaken { .. } => "pcp_taken",
            Cause::NotIsolated { .. } => "not_isolated",
            Cause::NotCma { .. } => "not_cma",
            Cause::OutOfTargets { .. } => "out_of_targets",
            Cause::NotMigrated { .. } => "not_migrated",
            Cause::Fragmented { .. } => "fragmented",
        }
    }
    /// The page (or pageblock) the cause names.
    pub fn pfn(&self) -> Option<u32> {
        match self {
            Cause::Pinned { pfn, .. }
            | Cause::DeviceOwned { pfn, .. }
            | Cause::Unmovable { pfn, .. }
            | Cause::LruBatch { pfn, .. }
            | Cause::PcpList { pfn, .. }
            | Cause::PcpTaken { pfn, .. }
            | Cause::NotMigrated { pfn, .. } => Some(*pfn),
            Cause::NotIsolated { pageblock } | Cause::NotCma { pageblock, .. } => Some(*pageblock),
            Cause::OutOfTargets { first, .. } => Some(*first),
            Cause::Fragmented { at, .. } => *at,
            Cause::TooLarge { .. } => None,
        }
    }
    /// Decisiveness: lower comes first.
    pub(crate) fn rank(&self) -> u8 {
        match self {
            Cause::TooLarge { .. } => 0,
            // the try stopped at isolation: nothing was migrated
            Cause::NotIsolated { .. } | Cause::NotCma { .. } => 1,
            Cause::Pinned { .. } => 2,
            Cause::DeviceOwned { .. } => 3,
            Cause::Unmovable { .. } => 4,
            Cause::OutOfTargets { .. } => 5,
            Cause::LruBatch { .. } => 6,
            Cause::PcpList { .. } | Cause::PcpTaken { .. } => 7,
            Cause::NotMigrated { .. } => 8,
            Cause::Fragmented { .. } => 9,
        }
    }
}

/// ` — mapped by task P (asid A) at VA V[ and N more mapping(s)]`.
fn mapped_text(f: &mut fmt::Formatter<'_>, mapped: &[MappedBy]) -> fmt::Result {
    match mapped.first() {
        Some(m) => write!(f, " — mapped by task {} (asid {}) at VA {:#010x}", m.pid, m.asid, m.va)?,
        None => write!(f, " — mapped by no task")?,
    }
    if mapped.len() > 1 {
        write!(f, " and {} more mapping(s)", mapped.len() - 1)?;
    }
    Ok(())
}

fn more_text(f: &mut fmt::Formatter<'_>, more: u32, what: &str) -> fmt::Result {
    if more > 0 {
        write!(f, " (and {more} more {what})")?;
    }
    Ok(())
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The sentence a newcomer acts on (no `cmaemu:` prefix).
impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::TooLarge { count, area_pages } => write!(f, "the request ({} pages) is larger than the whole area ({} pages)", thousands(*count as u64), thousands(*area_pages as u64)),
            Cause::Pinned { pfn, refcount, mapcount, extra, mapped, dma, by, more } => {
                write!(f, "pfn {pfn:#x} is pinned (refcount {refcount}, mapcount {mapcount}: {extra} reference(s) no mapping accounts for)")?;
                mapped_text(f, mapped)?;
                if let Some(d) = dma {
                    write!(f, ", held for DMA by {}", dma_dev_name(*d))?;
                }
                if let Some(b) = by {
                    write!(f, "; pinned by `{}` in {}", b.command, b.func)?;
                    match b.pid {
                        Some(pid) => write!(f, " (task {pid}, asid {})", b.asid)?,
                        None => write!(f, " (asid {})", b.asid)?,
                    }
                }
                write!(f, "; migration cannot move it until it is unpinned")?;
                more_text(f, *more, "pinned pages")
            }
            Cause::DeviceOwned { pfn, device, more } => {
                write!(f, "pfn {pfn:#x} is a DMA buffer of {} (not movable)", dma_dev_name(*device))?;
                more_text(f, *more, "pages of device buffers")
            }
            Cause::Unmovable { pfn, owner, more } => {
                write!(f, "pfn {pfn:#x} is not movable: it belongs to {owner}")?;
                more_text(f, *more, "unmovable pages")
            }
            Cause::LruBatch { pfn, refcount, mapcount, mapped, more } => {
                write!(f, "pfn {pfn:#x} sits in the LRU add batch (refcount {refcount}, mapcount {mapcount})")?;
                mapped_text(f, mapped)?;
                write!(f, ": not on the LRU, so not isolated for migration (lru_add_drain missed)")?;
                more_text(f, *more, "batched pages")
            }
            Cause::PcpList { pfn, order, more } => {
                write!(f, "pfn {pfn:#x} (order {order}) sits on a per-CPU free list, not in the buddy (drain_all_pages missed it)")?;
                more_text(f, *more, "per-CPU blocks")
            }
            Cause::PcpTaken { pfn, order, mapped, more } => {
                write!(f, "pfn {pfn:#x} (order {order}) was on a per-CPU free list inside the isolated range when migration began (drain_all_pages missed it) and was handed out as a migration target")?;
                mapped_text(f, mapped)?;
                more_text(f, *more, "per-CPU blocks")
            }
            Cause::NotIsolated { pageblock } => write!(f, "pageblock at pfn {pageblock:#x} could not be isolated: it is already MIGRATE_ISOLATE (another isolation holds it)"),
            Cause::NotCma { pageblock, mt } => write!(
                f,
                "pageblock at pfn {pageblock:#x} of the CMA area has migrate type {}, not CMA (a CMA pageblock must keep MIGRATE_CMA): the range could not be taken as CMA",
                crate::introspect::MT_NAMES.get(*mt as usize).unwrap_or(&"?")
            ),
            Cause::OutOfTargets { needed, first, free_outside } => {
                let total: u64 = free_outside.iter().map(|z| z.1).sum();
                let per: Vec<String> = free_outside.iter().map(|(z, n)| format!("{z} {}", thousands(*n))).collect();
                write!(
                    f,
                    "migration ran out of target memory: {} movable pages (first pfn {first:#x}) still need a new frame and only {} pages are free outside the area ({})",
                    thousands(*needed as u64),
                    thousands(total),
                    per.join(", ")
                )?;
                // what to do about it
                match (*needed as u64).checked_sub(total).filter(|&k| k > 0) {
                    Some(k) => write!(f, "; free at least {} more pages outside the area (or ask for fewer pages) and try again", thousands(k)),
                    None => write!(f, "; the zone watermarks keep those back: free more memory outside the area (or ask for fewer pages) and try again"),
                }
            }
            Cause::NotMigrated { pfn, refcount, mapcount, task, ptes, more } => {
                write!(f, "pfn {pfn:#x} is a movable page")?;
                if let Some((pid, asid)) = task {
                    write!(f, " of task {pid} (asid {asid})")?;
                }
                write!(f, " that was not migrated (refcount {refcount}, mapcount {mapcount})")?;
                if (*ptes as i32) < *mapcount {
                    write!(f, ": {ptes} page table entr{} map it where its mapcount says {mapcount} — a stale reverse map, so try_to_migrate cannot unmap it and every pass fails", if *ptes == 1 { "y" } else { "ies" })?;
                }
                more_text(f, *more, "such pages")
            }
            Cause::Fragmented { count, align, largest, at, free } => {
                write!(f, "no free run of {} pages", thousands(*count as u64))?;
                if *align > 0 {
                    write!(f, " aligned to {} pages", 1u64 << align.min(&63))?;
                }
                write!(f, " in the bitmap: the largest is {} pages", thousands(*largest as u64))?;
                if let Some(p) = at {
                    write!(f, " at pfn {p:#x}")?;
                }
                write!(f, " ({} pages free in all: fragmented)", thousands(*free as u64))
            }
        }
    }
}

/// What the host can see beyond the snapshot.
#[derive(Clone, Copy)]
pub struct Extra<'a> {
    /// Guest RAM (page tables, for the VAs of a page).
    pub ram: &'a GuestRam,
    /// The LRU add batch, read live.
    pub lru: Option<&'a LruAddRecord>,
    /// Live device buffers.
    pub dma: &'a [DmaSpan],
    /// Live pins with their origin (None: not followed).
    pub pins: Option<&'a PinTable>,
    /// Who maps a frame, kept across the tries of one allocation (None:
    /// walk the page tables for this question alone).
    pub maps: Option<&'a RefCell<MapCache>>,
    /// Per-CPU blocks (head pfn, order, ascending) the host found inside
    /// the range of this try when its migration began (after the drain).
    pub pcp_seen: &'a [(u32, u32)],
}

/// The causes of `req`, most decisive first (empty: nothing the host can
/// name; a request that succeeded has no cause).
pub fn explain(s: &Snapshot, x: Extra<'_>, req: &Request) -> Vec<Cause> {
    let Some(area) = s.cma.get(req.area) else { return Vec::new() };
    if req.count > area.count {
        return vec![Cause::TooLarge { count: req.count, area_pages: area.count }];
    }
    let mut out = match req.range {
        Some(start) => range_causes(s, x, area, start, req),
        None => Vec::new(),
    };
    if out.is_empty() || req.range.is_none() {
        if let Some(c) = fragmentation(area, req.count, req.align) {
            out.push(c);
        }
    }
    out.sort_by_key(|c| c.rank());
    out
}

/// The pages of `[start, start + count)` that are not free, by kind.
fn range_causes(s: &Snapshot, x: Extra<'_>, area: &CmaArea, start: u32, req: &Request) -> Vec<Cause> {
    let end = start.saturating_add(req.count);
    let lru: &[u32] = x.lru.map(|l| l.batch()).unwrap_or(&[]);
    let mut pinned: Vec<Cause> = Vec::new();
    let mut device: Vec<Cause> = Vec::new();
    let mut unmovable: Vec<Cause> = Vec::new();
    let mut batched: Vec<Cause> = Vec::new();
    let mut pcp: Vec<Cause> = Vec::new();
    let mut taken: Vec<Cause> = Vec::new();
    let mut left: Vec<(u32, i32, i32, u32)> = Vec::new();
    let local = RefCell::new(MapCache::default());
    let maps = x.maps.unwrap_or(&local);
    let mut pfn = start;
    while pfn < end {
        let Some(p) = s.page(pfn) else { break };
        if let Ok(i) = x.pcp_seen.binary_search_by_key(&pfn, |b| b.0) {
            // on a per-CPU list after the drain, in use now: handed out as
            // a migration target (a block freed back since is no cause)
            let order = x.pcp_seen[i].1;
            if !p.has(PG_PCP) && !s.is_free(pfn) && p.refcount > 0 {
                if taken.len() < MAX_PAGES_PER_KIND {
                    let mapped = maps.borrow_mut().of(s, x.ram, pfn);
                    taken.push(Cause::PcpTaken { pfn, order, mapped, more: 0 });
                } else {
                    bump(&mut taken);
                }
                pfn = pfn.saturating_add(1 << order);
                continue;
            }
        }
        if p.has(PG_PCP) && p.private < s.desc.max_order {
            push_capped(&mut pcp, Cause::PcpList { pfn, order: p.private, more: 0 });
            pfn = pfn.saturating_add(1 << p.private);
            continue;
        }
        if s.is_free(pfn) {
            pfn += 1;
            continue;
        }
        let kind = p.owner & OWNER_KIND_MASK;
        let mapcount = p.mapcount.saturating_add(1);
        let in_batch = lru.contains(&pfn);
        let user = kind == OWNER_KIND_USER || (kind == OWNER_NONE && p.flags & (PG_LRU | PG_ANON) != 0);
        if p.has(PG_RESERVED) || p.has(PG_SLAB) || kind == OWNER_KIND_KERNEL || kind == OWNER_KIND_PGTABLE {
            // (the owner is worded only for the pages listed one by one)
            let owner = if unmovable.len() < MAX_PAGES_PER_KIND { table_owner(s, x.ram, pfn).unwrap_or_else(|| owner_of(p)) } else { String::new() };
            push_capped(&mut unmovable, Cause::Unmovable { pfn, owner, more: 0 });
        } else if kind == OWNER_KIND_DEVICE {
            push_capped(&mut device, Cause::DeviceOwned { pfn, device: p.owner & !OWNER_KIND_MASK, more: 0 });
        } else if user && leaked(p, mapcount, in_batch, x.pins, pfn) {
            push_capped(&mut unmovable, Cause::Unmovable { pfn, owner: leaked_owner(s, p), more: 0 });
        } else if user {
            let extra = p.refcount - mapcount - in_batch as i32;
            if extra > 0 {
                if pinned.len() < MAX_PAGES_PER_KIND {
                    let mapped = maps.borrow_mut().of(s, x.ram, pfn);
                    let dma = x.dma.iter().find(|d| pfn >= d.pfn && pfn - d.pfn < d.count).map(|d| d.device);
                    let by = pinned_by(s, x, pfn);
                    pinned.push(Cause::Pinned { pfn, refcount: p.refcount, mapcount, extra, mapped, dma, by, more: 0 });
                } else {
                    bump(&mut pinned);
                }
            } else if in_batch {
                if batched.len() < MAX_PAGES_PER_KIND {
                    let mapped = maps.borrow_mut().of(s, x.ram, pfn);
                    batched.push(Cause::LruBatch { pfn, refcount: p.refcount, mapcount, mapped, more: 0 });
                } else {
                    bump(&mut batched);
                }
            } else {
                left.push((pfn, p.refcount, mapcount, p.owner));
            }
        } else {
            push_capped(&mut unmovable, Cause::Unmovable { pfn, owner: owner_of(p), more: 0 });
        }
        pfn += 1;
    }
    let mut isolated = isolated_blocks(s, start, end);
    isolated.extend(not_cma_blocks(s, area, start, end));
    let mut out = Vec::new();
    out.extend(pinned);
    out.extend(device);
    out.extend(unmovable);
    // movable pages left behind, pages in the LRU add batch and on per-CPU
    // lists are the consequence of a failed isolation (the try stopped
    // before lru_cache_disable and drain_all_pages, nothing was migrated),
    // not causes of their own
    let consequence = !isolated.is_empty();
    if !consequence {
        out.extend(batched);
        out.extend(taken);
        out.extend(pcp);
    }
    out.extend(isolated);
    if let (Some(&(first, refcount, mapcount, owner)), false) = (left.first(), consequence) {
        if req.errno == crate::explain::ENOMEM {
            out.push(Cause::OutOfTargets { needed: left.len() as u32, first, free_outside: free_outside(s, area) });
        } else {
            let ptes = maps.borrow_mut().of(s, x.ram, first).len() as u32;
            out.push(Cause::NotMigrated { pfn: first, refcount, mapcount, task: user_task(s, owner), ptes, more: left.len() as u32 - 1 });
        }
    }
    out
}

fn push_capped(v: &mut Vec<Cause>, c: Cause) {
    if v.len() < MAX_PAGES_PER_KIND {
        v.push(c);
    } else {
        bump(v);
    }
}

/// Count one more page in the last cause of `v`.
fn bump(v: &mut [Cause]) {
    if let Some(
        Cause::Pinned { more, .. }
        | Cause::DeviceOwned { more, .. }
        | Cause::Unmovable { more, .. }
        | Cause::LruBatch { more, .. }
        | Cause::PcpList { more, .. }
        | Cause::PcpTaken { more, .. }
        | Cause::NotMigrated { more, .. },
    ) = v.last_mut()
    {
        *more += 1;
    }
}

/// A user page held by a reference nothing accounts for: no mapping, no
/// LRU list (so isolation for migration skips it), no LRU add batch and
/// no pin on record (`pins`: None when pins are not followed).
fn leaked(p: &PageRecord, mapcount: i32, in_batch: bool, pins: Option<&PinTable>, pfn: u32) -> bool {
    p.refcount > 0 && mapcount <= 0 && !p.has(PG_LRU) && !in_batch && pins.is_some_and(|t| !t.contains_key(&pfn))
}

/// The owner of a leaked page, for [`Cause::Unmovable`].
fn leaked_owner(s: &Snapshot, p: &PageRecord) -> String {
    let mut o = format!("nobody: {} reference(s) that no mapping, pin or LRU list accounts for (a leaked reference: migration cannot isolate it)", p.refcount);
    if let Some((pid, asid)) = user_task(s, p.owner) {
        o.push_str(&format!("; its owner tag says task {pid} (asid {asid}), which no longer maps it"));
    }
    o
}

/// The live task (pid, asid) a user owner tag names.
fn user_task(s: &Snapshot, owner: u32) -> Option<(u32, u32)> {
    if owner & OWNER_KIND_MASK != OWNER_KIND_USER {
        return None;
    }
    let asid = owner & !OWNER_KIND_MASK;
    s.address_spaces.iter().find(|a| a.flags & AS_LIVE != 0 && a.asid == asid).map(|a| (a.pid, asid))
}

/// The task whose translation tables use the frame `pfn`, found by walking
/// every live address space's TTBR0 tables (not from the owner tag): its
/// first-level table, or the second-level table of which VAs.
fn table_owner(s: &Snapshot, ram: &GuestRam, pfn: u32) -> Option<String> {
    use crate::introspect::va::{table_use, TableUse};
    for a in s.address_spaces.iter().filter(|a| a.flags & AS_LIVE != 0) {
        let Some(regs) = s.mmu_regs(a.asid) else { continue };
        match table_use(ram, &regs, pfn) {
            Some(TableUse::L1) => return Some(format!("the first-level page table (TTBR0) of task {} (asid {})", a.pid, a.asid)),
            Some(TableUse::L2(vas)) => {
                // the MiB whose first-level entries point into the frame
                // (two, one after the other, for an ARM Linux page-table
                // page: 2 MiB of VA), as one range while they follow on
                let first = vas[0];
                let run = vas.iter().zip(&vas[1..]).take_while(|(a, b)| **b == **a + (1 << 20)).count() + 1;
                let mut o = format!("the page table of task {} (asid {}) for VA {first:#010x}-{:#010x}", a.pid, a.asid, vas[run - 1] | 0xf_ffff);
                if vas.len() > run {
                    o.push_str(&format!(" and {} more MiB", vas.len() - run));
                }
                o.push_str(" (its first-level entries point here: a page-table page is never migrated)");
                return Some(o);
            }
            None => {}
        }
    }
    None
}

/// Who a record says owns a frame, for a message.
fn owner_of(p: &PageRecord) -> String {
    let id = p.owner & !OWNER_KIND_MASK;
    if p.has(PG_RESERVED) {
        return "reserved memory (PG_reserved)".into();
    }
    match p.owner & OWNER_KIND_MASK {
        OWNER_KIND_KERNEL if p.has(PG_SLAB) => format!("the kernel's slab ({id:#x})"),
        OWNER_KIND_KERNEL => format!("the kernel (allocation tag {id:#x}, refcount {})", p.refcount),
        OWNER_KIND_PGTABLE => format!("a page table of asid {id}"),
        OWNER_KIND_CMA => format!("another CMA allocation of area {id}"),
        OWNER_NONE => format!("nobody the host can name (flags {:#x}, refcount {})", p.flags & PG_STATE_MASK, p.refcount),
        _ => format!("owner {:#x} (refcount {})", p.owner, p.refcount),
    }
}

/// Who took the latest live pin of `pfn`, named from the kernel's symbols.
fn pinned_by(s: &Snapshot, x: Extra<'_>, pfn: u32) -> Option<PinnedBy> {
    let site = x.pins?.get(&pfn)?.last()?;
    let func = crate::introspect::kallsyms::function_name(x.ram, s.desc.kallsyms_pa, site.func).unwrap_or_else(|| format!("{:#010x}", site.func));
    let pid = s.address_spaces.iter().find(|a| a.flags & AS_LIVE != 0 && a.asid == site.asid).map(|a| a.pid);
    Some(PinnedBy { command: site.command.clone(), func, pid, asid: site.asid })
}

/// The first VA any live address space maps `pfn` at.
pub(crate) fn first_va(s: &Snapshot, x: Extra<'_>, pfn: u32) -> Option<u32> {
    let found = match x.maps {
        Some(m) => m.borrow_mut().of(s, x.ram, pfn),
        None => MapCache::default().of(s, x.ram, pfn),
    };
    found.first().map(|m| m.va)
}

/// Pageblocks touching `[start, end)` that are `MIGRATE_ISOLATE`.
fn isolated_blocks(s: &Snapshot, start: u32, end: u32) -> Vec<Cause> {
    let pb = s.pageblock_pages();
    let mut out = Vec::new();
    let mut b = start - start % pb;
    while b < end {
        if s.pageblock_mt(b.max(s.base_pfn())) == Some(MIGRATE_ISOLATE) {
            out.push(Cause::NotIsolated { pageblock: b });
        }
        b = match b.checked_add(pb) {
            Some(n) => n,
            None => break,
        };
    }
    out
}

/// Pageblocks of `area` touching `[start, end)` whose type is neither CMA
/// nor isolated.
fn not_cma_blocks(s: &Snapshot, area: &CmaArea, start: u32, end: u32) -> Vec<Cause> {
    let pb = s.pageblock_pages();
    let mut out = Vec::new();
    let mut b = start - start % pb;
    while b < end {
        if area.contains(b) {
            if let Some(mt) = s.pageblock_mt(b).filter(|&mt| mt != MIGRATE_CMA && mt != MIGRATE_ISOLATE) {
                out.push(Cause::NotCma { pageblock: b, mt });
            }
        }
        b = match b.checked_add(pb) {
            Some(n) => n,
            None => break,
        };
    }
    out
}

/// Free pages outside `area`, per zone (where migration targets come from).
fn free_outside(s: &Snapshot, area: &CmaArea) -> Vec<(String, u64)> {
    s.zones
        .iter()
        .filter(|z| z.end_pfn > z.start_pfn)
        .map(|z| {
            let n = (z.start_pfn..z.end_pfn).filter(|&p| !area.contains(p) && s.is_free(p)).count() as u64;
            (String::from_utf8_lossy(name_bytes(&z.name)).into_owned(), n)
        })
        .collect()
}

/// `cma_bitmap_aligned_mask()`.
fn aligned_mask(area: &CmaArea, align: u32) -> u64 {
    if align <= area.order_per_bit {
        0
    } else {
        (1u64 << (align - area.order_per_bit).min(63)) - 1
    }
}

/// `cma_bitmap_aligned_offset()`.
fn aligned_offset(area: &CmaArea, align: u32) -> u64 {
    (area.base_pfn as u64 & ((1u64 << align.min(63)) - 1)) >> area.order_per_bit
}

/// The largest free run of the bitmap starting at an allowed (aligned)
/// bit, when it is shorter than `count` pages: what
/// `bitmap_find_next_zero_area_off` could not find.
fn fragmentation(area: &CmaArea, count: u32, align: u32) -> Option<Cause> {
    let nbits = area.nbits() as u64;
    let need = (count as u64).div_ceil(1 << area.order_per_bit);
    let mask = aligned_mask(area, align);
    let offset = aligned_offset(area, align);
    let bit = |i: u64| area.bitmap.get((i / 32) as usize).is_some_and(|w| (w >> (i % 32)) & 1 != 0);
    let (mut best, mut best_at, mut free) = (0u64, None, 0u64);
    let mut i = 0u64;
    while i < nbits {
        if bit(i) {
            i += 1;
            continue;
        }
        let mut e = i;
        while e < nbits && !bit(e) {
            e += 1;
        }
        free += e - i;
        // the first allowed start inside the run [i, e)
        let s = ((i + offset + mask) & !mask).saturating_sub(offset).max(i);
        if s < e && e - s > best {
            best = e - s;
            best_at = Some(s);
        }
        i = e;
    }
    if best >= need {
        return None;
    }
    let pages = |b: u64| ((b << area.order_per_bit).min(area.count as u64)) as u32;
    Some(Cause::Fragmented { count, align, largest: pages(best), at: best_at.map(|b| area.base_pfn + ((b as u32) << area.order_per_bit)), free: pages(free) })
}

/// `-16` as `EBUSY`.
pub fn errno_name(e: i32) -> &'static str {
    match -e {
        0 => "0",
        1 => "EPERM",
        4 => "EINTR",
        12 => "ENOMEM",
        16 => "EBUSY",
        22 => "EINVAL",
        _ => "E?",
    }
}
