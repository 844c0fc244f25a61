//! Allocator integrity: free lists, page flags, pageblock types and CMA
//! bitmaps agree.
use super::{Check, CheckCtx, Out, Violation};
use crate::introspect::snapshot::{is_busy, is_free_head, is_unmovable_in_use};
use crate::introspect::{Snapshot, MT_NAMES};
use cmaemu_abi::page::*;

fn mt_name(mt: u32) -> String {
    MT_NAMES.get(mt as usize).map(|s| s.to_string()).unwrap_or_else(|| format!("type{mt}"))
}

/// Check a stable snapshot. Returns nothing for an unstable one (`mm_seq`
/// odd: the guest was in the middle of an mm operation).
#[allow(clippy::needless_range_loop)]
pub fn check_integrity(s: &Snapshot, ctx: &CheckCtx) -> Vec<Violation> {
    let mut out = Out::new(ctx);
    if !s.stable {
        return out.finish();
    }
    let base = s.base_pfn();
    let n = s.pages.len();
    let max_order = s.desc.max_order;

    // 1. Buddy blocks and blocks on the per-cpu lists: shape, overlaps,
    //    free pages not owned/mapped; unmovable pages in CMA pageblocks.
    //    With the snapshot's page index only the heads, the unmovable
    //    pages of CMA pageblocks and the busy pages inside free blocks are
    //    visited (the same findings in the same order: pages are taken in
    //    ascending order, so a block overlaps an earlier one exactly when
    //    an earlier block ends past its head, and its head is the first
    //    page covered).
    let ix = s.index();
    let mut covered = if ix.is_some() { Vec::new() } else { vec![false; n] };
    let mut covered_end = 0usize;
    let all_pages = 0..n;
    let visit: Box<dyn Iterator<Item = usize> + '_> = match ix {
        Some(ix) => {
            let pb = s.pageblock_pages() as u64;
            let cma_blocks: Vec<std::ops::Range<usize>> = s
                .pageblocks()
                .filter(|&b| s.pageblock_mt(b.max(base)) == Some(MIGRATE_CMA))
                .map(|b| ((b.max(base) - base) as usize)..((b as u64 + pb).min(s.end_pfn()) - base as u64) as usize)
                .collect();
            let mut heads = ix.heads.ones(0..n).peekable();
            let mut unmovable = cma_blocks.into_iter().flat_map(move |r| ix.unmovable.ones(r)).peekable();
            Box::new(std::iter::from_fn(move || match (heads.peek(), unmovable.peek()) {
                (Some(h), Some(u)) if h < u => heads.next(),
                (_, Some(_)) => unmovable.next(),
                (Some(_), None) => heads.next(),
                (None, None) => None,
            }))
        }
        None => Box::new(all_pages),
    };
    for i in visit {
        let p = s.pages[i];
        if !is_free_head(&p) {
            if is_unmovable_in_use(&p) {
                let pfn = base + i as u32;
                if s.pageblock_mt(pfn) == Some(MIGRATE_CMA) {
                    out.push(
                        Check::CmaUnmovable,
                        Some(pfn),
                        None,
                        None,
                        format!("page {pfn:#x} in a MIGRATE_CMA pageblock is owned by {} (refcount {}): a CMA pageblock may hold only movable pages, and no cma_alloc over it can succeed", super::owner_text(p.owner), p.refcount),
                    );
                }
            }
            continue;
        }
        if p.has(PG_BUDDY) && p.has(PG_PCP) {
            let pfn = base + i as u32;
            out.push(Check::PageState, Some(pfn), None, None, format!("page {pfn:#x} is both a buddy block head and on a per-cpu list"));
        }
        let pfn = base + i as u32;
        let order = p.private;
        if order >= max_order {
            out.push(Check::PageState, Some(pfn), None, None, format!("free block head {pfn:#x} has order {order} >= MAX_ORDER {max_order}"));
            continue;
        }
        let len = 1usize << order;
        if !pfn.is_multiple_of(len as u32) || i + len > n {
            out.push(Check::PageState, Some(pfn), None, None, format!("free block {pfn:#x} of order {order} is misaligned or runs past the page array"));
            continue;
        }
        let first_covered = match ix {
            Some(_) => (covered_end > i).then_some(i),
            None => (i..i + len).find(|&k| covered[k]),
        };
        if let Some(k) = first_covered {
            out.push(Check::FreeList, Some(base + k as u32), None, None, format!("free block {pfn:#x} (order {order}) overlaps another free block at {:#x} (double free?)", base + k as u32));
        }
        covered_end = covered_end.max(i + len);
        let block = i..i + len;
        let inside: Box<dyn Iterator<Item = usize> + '_> = match ix {
            Some(ix) => Box::new(ix.busy.ones(block)),
            None => Box::new(block),
        };
        for k in inside {
            if ix.is_none() {
                covered[k] = true;
            }
            let q = s.pages[k];
            let qp = base + k as u32;
            if is_busy(&q) {
                out.push(
                    Check::PageState,
                    Some(qp),
                    None,
                    None,
                    format!("page {qp:#x} is free (block {pfn:#x} order {order}) but refcount={} mapcount={} owner={:#x} flags={:#x}", q.refcount, q.mapcount, q.owner, q.flags & PG_STATE_MASK),
                );
            }
        }
    }

    // 2. Pageblock types against CMA areas; isolation left behind.
    for pb in s.pageblocks() {
        let pfn = pb.max(base);
        let Some(mt) = s.pageblock_mt(pfn) else { continue };
        let area = s.cma.iter().find(|a| a.active && a.contains(pfn));
        if mt as usize >= MIGRATE_TYPES {
            out.push(Check::Pageblock, Some(pb), None, None, format!("pageblock {pb:#x} has invalid migrate type {mt}"));
        } else if mt == MIGRATE_ISOLATE {
            out.push(Check::Isolation, Some(pb), None, None, format!("pageblock {pb:#x} is still MIGRATE_ISOLATE while no mm operation runs (isolation leaked)"));
        } else if mt == MIGRATE_CMA && area.is_none() {
            out.push(Check::Pageblock, Some(pb), None, None, format!("pageblock {pb:#x} is MIGRATE_CMA but lies in no active CMA area"));
        } else if let (Some(a), false) = (area, mt == MIGRATE_CMA) {
            out.push(Check::Pageblock, Some(pb), None, None, format!("pageblock {pb:#x} of CMA area {} has type {} (must stay CMA)", a.name, mt_name(mt as u32)));
        }
    }
    for z in &s.zones {
        if z.nr_isolate_pageblock != 0 {
            out.push(Check::Isolation, None, None, None, format!("zone {} counts {} isolated pageblocks while no mm operation runs", zone_name(z), z.nr_isolate_pageblock));
        }
    }

    // 3. Free lists: walk, links, order/type agreement, counts.
    let mut on_list = OnList::new(n, ix.is_some());
    for z in &s.zones {
        let mut total_free: u64 = 0;
        let mut cma_free: u64 = 0;
        for order in 0..(max_order as usize).min(z.nr_free.len()) {
            let mut blocks: u64 = 0;
            for mt in 0..MIGRATE_TYPES {
                let mut prev = PFN_NONE;
                let mut cur = z.free_head[order][mt];
                let mut steps = 0usize;
                while cur != PFN_NONE {
                    steps += 1;
                    if steps > n {
                        out.push(Check::FreeList, Some(cur), None, None, format!("free list order {order} {} of zone {} does not end (cycle)", MT_NAMES[mt], zone_name(z)));
                        break;
                    }
                    let Some(p) = s.page(cur) else {
                        out.push(Check::FreeList, Some(cur), None, None, format!("free list order {order} {} links to pfn {cur:#x} outside the page array", MT_NAMES[mt]));
                        break;
                    };
                    let i = (cur - base) as usize;
                    if cur < z.start_pfn || cur >= z.end_pfn {
                        out.push(Check::FreeList, Some(cur), None, None, format!("page {cur:#x} on a free list of zone {} lies outside the zone", zone_name(z)));
                    }
                    if on_list.get(i) {
                        out.push(Check::FreeList, Some(cur), None, None, format!("page {cur:#x} is on a free list twice (order {order} {}): double free", MT_NAMES[mt]));
                        break;
                    }
                    on_list.set(i);
                    if !p.has(PG_BUDDY) || p.private as usize != order {
                        out.push(Check::FreeList, Some(cur), None, None, format!("page {cur:#x} on the order-{order} {} list is not a free block of that order (buddy={} order={})", MT_NAMES[mt], p.has(PG_BUDDY), p.private));
                    }
                    if p.list_mt() as usize != mt {
                        out.push(Check::FreeList, Some(cur), None, None, format!("page {cur:#x} on the {} list records list type {}", MT_NAMES[mt], mt_name(p.list_mt() as u32)));
                    }
                    if p.lru_prev != prev {
                        out.push(Check::FreeList, Some(cur), None, None, format!("page {cur:#x}: lru_prev {:#x} but the previous node is {prev:#x}", p.lru_prev));
                    }
                    if let Some(pbmt) = s.pageblock_mt(cur) {
                        let mt = mt as u8;
                        let bad = (pbmt == MIGRATE_CMA && mt != MIGRATE_CMA && mt != MIGRATE_ISOLATE)
                            || (mt == MIGRATE_CMA && pbmt != MIGRATE_CMA)
                            || (pbmt == MIGRATE_ISOLATE && mt != MIGRATE_ISOLATE)
                            || (mt == MIGRATE_ISOLATE && pbmt != MIGRATE_ISOLATE);
                        if bad {
                            out.push(Check::Pageblock, Some(cur), None, None, format!("free block {cur:#x} is on the {} list but its pageblock is {}", MT_NAMES[mt as usize], mt_name(pbmt as u32)));
                        }
                    }
                    blocks += 1;
                    total_free += 1u64 << order;
                    if mt == MIGRATE_CMA as usize {
                        cma_free += 1u64 << order;
                    }
                    prev = cur;
                    cur = p.lru_next;
                }
            }
            if blocks != z.nr_free[order] as u64 {
                out.push(Check::Accounting, None, None, None, format!("zone {} order {order}: nr_free says {} blocks, the lists hold {blocks}", zone_name(z), z.nr_free[order]));
            }
        }
        if total_free != z.nr_free_pages as u64 {
            out.push(Check::Accounting, None, None, None, format!("zone {}: NR_FREE_PAGES is {}, the free lists hold {total_free} pages", zone_name(z), z.nr_free_pages));
        }
        if cma_free != z.nr_free_cma_pages as u64 {
            out.push(Check::Accounting, None, None, None, format!("zone {}: NR_FREE_CMA_PAGES is {}, the CMA lists hold {cma_free} pages", zone_name(z), z.nr_free_cma_pages));
        }
    }
    let all_pages = 0..n;
    let heads: Box<dyn Iterator<Item = usize> + '_> = match ix {
        Some(ix) => Box::new(ix.heads.ones(0..n)),
        None => Box::new(all_pages),
    };
    for i in heads {
        if s.pages[i].has(PG_BUDDY) && !on_list.get(i) {
            let pfn = base + i as u32;
            out.push(Check::FreeList, Some(pfn), None, None, format!("free block {pfn:#x} (order {}) is on no free list", s.pages[i].private));
        }
    }

    // 4. CMA bitmaps against page states.
    for a in s.cma.iter().filter(|a| a.active) {
        let chunk = 1u32 << a.order_per_bit;
        let mut run: Option<(u32, u32, bool)> = None; // (first pfn, pages, set-but-free?)
        let flush = |run: &mut Option<(u32, u32, bool)>, out: &mut Out| {
            if let Some((p, k, set)) = run.take() {
                let d = if set {
                    let what = match s.page(p) {
                        Some(_) if s.is_free(p) => "free in the buddy".to_string(),
                        Some(q) => format!("owned by {} (refcount {})", super::owner_text(q.owner), q.refcount),
                        None => "outside the page array".to_string(),
                    };
                    format!("CMA area {}: {k} page(s) from {p:#x} have their bitmap bits set but the area did not hand them out (the first is {what}): bitmap leaked", a.name)
                } else {
                    format!("CMA area {}: {k} page(s) from {p:#x} are allocated to a device/CMA user but their bitmap bits are clear", a.name)
                };
                out.push(Check::CmaBitmap, Some(p), None, None, d);
            }
        };
        for b in 0..a.nbits() {
            let set = a.bitmap.get((b / 32) as usize).is_some_and(|w| (w >> (b % 32)) & 1 != 0);
            let first = a.base_pfn + b * chunk;
            let mut bad: Option<u32> = None;
            for pfn in first..first.saturating_add(chunk) {
                // A set bit covers a frame the area handed out (a CMA or
                // device allocation), whatever else may occupy it.
                let owned = !s.is_free(pfn) && s.page(pfn).is_some_and(|p| p.refcount > 0 && matches!(p.owner & OWNER_KIND_MASK, OWNER_KIND_DEVICE | OWNER_KIND_CMA));
                if set != owned {
                    bad = Some(pfn);
                    break;
                }
            }
            match (bad, &mut run) {
                (Some(_), Some((p, k, s2))) if *s2 == set && *p + *k == first => *k += chunk,
                (Some(pfn), _) => {
                    flush(&mut run, &mut out);
                    run = Some((pfn, first + chunk - pfn, set));
                }
                (None, _) => flush(&mut run, &mut out),
            }
        }
        flush(&mut run, &mut out);
    }
    out.finish()
}

fn zone_name(z: &cmaemu_abi::desc::ZoneRecord) -> String {
    String::from_utf8_lossy(cmaemu_abi::desc::name_bytes(&z.name)).into_owned()
}

/// The pages found on free lists: one flag per page, or (with a page
/// index, where the heads are few) a set of them.
enum OnList {
    All(Vec<bool>),
    Few(std::collections::HashSet<usize>),
}

impl OnList {
    fn new(n: usize, few: bool) -> OnList {
        if few {
            OnList::Few(Default::default())
        } else {
            OnList::All(vec![false; n])
        }
    }
    fn get(&self, i: usize) -> bool {
        match self {
            OnList::All(v) => v[i],
            OnList::Few(h) => h.contains(&i),
        }
    }
    fn set(&mut self, i: usize) {
        match self {
            OnList::All(v) => v[i] = true,
            OnList::Few(h) => {
                h.insert(i);
            }
        }
    }
}
