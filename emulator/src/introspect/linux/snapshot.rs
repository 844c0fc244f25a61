//! A real kernel's mm state ([`LinuxMm`]) as the [`Snapshot`] model of
//! cmaemu's own guest, so that the integrity checker, page-state maps,
//! counters and traces work on it unchanged.
//!
//! What Linux does not record is filled from where the reader found it:
//! a free block's list migrate type is the list it was walked on, a
//! per-CPU block's order comes from its list index, a page's zone from
//! the zone spans; pages allocated from a CMA area (bit set, not free)
//! get the CMA owner tag. Page-table pages are not told apart (Linux
//! marks them with a page type the debug info does not name).
use super::read::LinuxMm;
use crate::introspect::{CmaArea, Snapshot};
use cmaemu_abi::desc::{CmaAreaRecord, GuestDesc, ZoneRecord, CMA_AREA_ACTIVE, CMA_NAME_LEN, DESC_MAGIC, DESC_MAX_ORDER, DESC_MAX_ZONES, DESC_VERSION, ZONE_NAME_LEN};
use cmaemu_abi::page::*;

/// Why a kernel state does not fit the snapshot model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    #[error("the kernel has {what} = {value}; the snapshot model holds at most {max}")]
    TooMany { what: &'static str, value: u64, max: u64 },
    #[error("zone {zone} (index {idx}) is populated; the snapshot model has {max} zones")]
    ZoneBeyondModel { zone: String, idx: usize, max: usize },
}

fn fill_name(dst: &mut [u8], s: &str) {
    let b = s.as_bytes();
    let n = b.len().min(dst.len() - 1);
    dst[..n].copy_from_slice(&b[..n]);
}

/// The snapshot of `mm` (read at a quiet point: `stable`).
pub fn to_snapshot(mm: &LinuxMm) -> Result<Snapshot, ModelError> {
    let l = &mm.layout;
    if l.max_order as usize > DESC_MAX_ORDER {
        return Err(ModelError::TooMany { what: "MAX_ORDER", value: l.max_order as u64, max: DESC_MAX_ORDER as u64 });
    }
    if l.migrate_types as usize != MIGRATE_TYPES {
        return Err(ModelError::TooMany { what: "MIGRATE_TYPES", value: l.migrate_types as u64, max: MIGRATE_TYPES as u64 });
    }
    if let Some(z) = mm.zones.iter().skip(DESC_MAX_ZONES).find(|z| z.spanned > 0) {
        return Err(ModelError::ZoneBeyondModel { zone: z.name.clone(), idx: z.idx, max: DESC_MAX_ZONES });
    }
    let base = mm.node_start_pfn;
    let n = mm.node_spanned as usize;
    let mut pages: Vec<PageRecord> = Vec::with_capacity(n);
    let zone_of = |pfn: u32| mm.zones.iter().position(|z| z.spanned > 0 && pfn >= z.start_pfn && pfn < z.end_pfn()).unwrap_or(0) as u32;
    for (i, p) in mm.pages.iter().enumerate() {
        let pfn = base + i as u32;
        let mut flags = 0;
        let bit = |b: u32| p.flags & (1 << b) != 0;
        if bit(l.pg_reserved) {
            flags |= PG_RESERVED;
        }
        if bit(l.pg_lru) {
            flags |= PG_LRU;
        }
        if bit(l.pg_slab) {
            flags |= PG_SLAB;
        }
        if p.flags & l.pg_head_mask != 0 {
            flags |= PG_HEAD;
        }
        if p.compound_head & 1 != 0 {
            flags |= PG_TAIL;
        }
        match p.mapping & 3 {
            1 | 3 => flags |= PG_ANON,
            2 => flags |= PG_MOVABLE,
            _ => {}
        }
        flags |= (zone_of(pfn) & PG_ZONE_MASK) << PG_ZONE_SHIFT;
        let buddy = p.mapcount == l.buddy_mapcount;
        if buddy {
            flags |= PG_BUDDY;
        }
        pages.push(PageRecord {
            flags,
            refcount: p.refcount,
            mapcount: if buddy { -1 } else { p.mapcount },
            private: if buddy { p.private } else { 0 },
            lru_next: PFN_NONE,
            lru_prev: PFN_NONE,
            owner: OWNER_NONE,
            mapping: 0,
        });
    }
    let mut zones = [ZoneRecord::EMPTY; DESC_MAX_ZONES];
    for z in mm.zones.iter().take(DESC_MAX_ZONES) {
        let r = &mut zones[z.idx];
        fill_name(&mut r.name[..ZONE_NAME_LEN], &z.name);
        r.start_pfn = z.start_pfn;
        r.end_pfn = z.end_pfn();
        r.present_pages = z.present;
        r.managed_pages = z.managed;
        r.cma_pages = z.cma_pages;
        r.nr_free_pages = (z.vm_free + z.diff_free).max(0) as u32;
        r.nr_free_cma_pages = (z.vm_free_cma + z.diff_free_cma).max(0) as u32;
        r.nr_isolate_pageblock = z.nr_isolate_pageblock;
        for (o, nf) in z.nr_free.iter().enumerate() {
            r.nr_free[o] = *nf;
        }
        // Link each list's blocks by pfn, in list order.
        let mut link = |blocks: &[super::read::FreeBlock], pcp: bool, r: &mut ZoneRecord| {
            let mut prev: Option<(u32, u32, u32)> = None; // (pfn, order, mt)
            for b in blocks {
                let Some(i) = b.pfn.checked_sub(base).map(|i| i as usize).filter(|&i| i < n) else { continue };
                let same_list = prev.is_some_and(|(_, o, m)| o == b.order && m == b.mt);
                let pr = &mut pages[i];
                pr.flags |= (b.mt & PG_LIST_MT_MASK) << PG_LIST_MT_SHIFT;
                if pcp {
                    pr.flags |= PG_PCP;
                    pr.private = b.order;
                }
                pr.lru_prev = if same_list { prev.unwrap().0 } else { PFN_NONE };
                if same_list {
                    let pi = (prev.unwrap().0 - base) as usize;
                    pages[pi].lru_next = b.pfn;
                } else if !pcp && (b.order as usize) < DESC_MAX_ORDER && (b.mt as usize) < MIGRATE_TYPES {
                    r.free_head[b.order as usize][b.mt as usize] = b.pfn;
                }
                prev = Some((b.pfn, b.order, b.mt));
            }
        };
        link(&z.buddy, false, r);
        link(&z.pcp, true, r);
    }
    // One pageblock bitmap over the node, from each zone's.
    let pb = 1u32 << l.pageblock_order;
    let pb_base = base / pb * pb;
    let nblocks = (base + mm.node_spanned - pb_base).div_ceil(pb);
    let mut words = vec![0u32; (nblocks * NR_PAGEBLOCK_BITS).div_ceil(32) as usize];
    for b in 0..nblocks {
        let pfn = (pb_base + b * pb).max(base);
        if let Some(mt) = mm.pageblock_mt(pfn) {
            let bit = b * NR_PAGEBLOCK_BITS;
            words[(bit / 32) as usize] |= (mt as u32 & MIGRATETYPE_MASK) << (bit % 32);
        }
    }
    let mut cma = Vec::new();
    for (idx, a) in mm.cma.iter().enumerate() {
        let mut rec = CmaAreaRecord {
            name: [0; CMA_NAME_LEN],
            base_pfn: a.base_pfn,
            count: a.count,
            order_per_bit: a.order_per_bit,
            bitmap_pa: 0,
            bitmap_words: a.bitmap.len() as u32,
            flags: if a.bitmap.is_empty() { 0 } else { CMA_AREA_ACTIVE },
            alloc_pages_success: 0,
            alloc_pages_fail: 0,
        };
        fill_name(&mut rec.name, &a.name);
        let area = CmaArea { index: idx, name: a.name.clone(), base_pfn: a.base_pfn, count: a.count, order_per_bit: a.order_per_bit, active: !a.bitmap.is_empty(), bitmap: a.bitmap.clone(), record: rec };
        cma.push(area);
    }
    let mut d: GuestDesc = cmaemu_abi::desc::zeroed();
    d.magic = DESC_MAGIC;
    d.version = DESC_VERSION;
    d.desc_size = std::mem::size_of::<GuestDesc>() as u32;
    d.page_record_size = std::mem::size_of::<PageRecord>() as u32;
    d.page_size = PAGE_SIZE;
    d.base_pfn = base;
    d.nr_pages = mm.node_spanned;
    d.page_array_va = mm.mem_map_va;
    d.page_array_pa = mm.lowmem_pa(mm.mem_map_va) as u32;
    d.pageblock_words = words.len() as u32;
    d.pageblock_base_pfn = pb_base;
    d.pageblock_order = l.pageblock_order;
    d.max_order = l.max_order;
    d.nr_zones = mm.zones.len().min(DESC_MAX_ZONES) as u32;
    d.nr_cma_areas = cma.len() as u32;
    d.zones = zones;
    let mut s = Snapshot::from_parts(d, pages, words, cma, true);
    // Pages a CMA area handed out (bit set, not free) carry its tag.
    let tags: Vec<(u32, u32)> = s
        .cma
        .iter()
        .filter(|a| a.active)
        .flat_map(|a| (a.base_pfn..a.base_pfn + a.count).filter(|&p| a.bit(p) == Some(true)).map(move |p| (p, a.index as u32)))
        .collect();
    for (pfn, idx) in tags {
        if !s.is_free(pfn) {
            if let Some(i) = pfn.checked_sub(base) {
                if let Some(p) = s.pages.get_mut(i as usize) {
                    p.owner = OWNER_KIND_CMA | idx;
                }
            }
        }
    }
    Ok(s)
}
