//! Frame ownership: every frame is free or owned exactly as the guest's
//! structures say. One walk of every live address space serves both
//! checks that need it: no PTE maps a free frame ([`Check::PteMapsFree`])
//! and no user page is an orphan or mapped by a foreign PTE
//! ([`Check::Ownership`]).
use super::{Check, CheckCtx, Out, Violation};
use crate::memory::GuestRam;
use crate::introspect::va::for_each_user_mapping;
use crate::introspect::snapshot::is_user_in_use;
use crate::introspect::Snapshot;
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

/// Walk every live user address space once and check, on a stable
/// snapshot: no PTE maps a free frame; every mapped frame is a user page;
/// every user page with a reference is mapped by as many PTEs as its
/// `mapcount` says (none: an orphan — a frame nobody will ever free).
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
            None => out.push(
                Check::Ownership,
                Some(pfn),
                None,
                None,
                format!(
                    "frame {pfn:#x} belongs to the task of asid {} (refcount {}, mapcount {}) but no PTE maps it: an orphan nobody will free (a missed put_page, a leaked pin or old page)",
                    p.owner & !OWNER_KIND_MASK,
                    p.refcount,
                    p.mapcount
                ),
            ),
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
