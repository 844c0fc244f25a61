//! The per-CPU LRU add batch (Linux 6.1 `mm/swap.c`): while
//! `lru_cache_disable()` is in force (`alloc_contig_range` migrating a
//! range) the batch must be empty — `lru_cache_disable` drains it with
//! `__lru_add_drain_all(true)` and new pages bypass it. A page left in the
//! batch keeps an extra reference and `PageLRU` clear, so migration cannot
//! isolate it and the contiguous allocation fails or moves elsewhere.
use super::{Check, CheckCtx, Out, Violation};
use crate::introspect::Snapshot;
use cmaemu_abi::desc::{LruAddRecord, PAGEVEC_SIZE};
use cmaemu_abi::page::*;

/// The batch against `lru_disable_count` (any time, stable or not).
pub fn check_lru_drained(rec: &LruAddRecord, ctx: &CheckCtx) -> Vec<Violation> {
    let mut out = Out::new(ctx);
    if rec.nr as usize > PAGEVEC_SIZE {
        out.push(Check::PageState, None, None, None, format!("the LRU add batch claims {} pages (PAGEVEC_SIZE is {PAGEVEC_SIZE})", rec.nr));
    } else if rec.disable_count > 0 && rec.nr > 0 {
        let b = rec.batch();
        out.push(
            Check::LruDrain,
            b.first().copied(),
            None,
            None,
            format!(
                "the LRU add batch holds {} page(s) ({}) while lru_cache_disable() is in force (count {}): lru_add_drain_all() was skipped, migration cannot isolate them",
                b.len(),
                b.iter().map(|p| format!("{p:#x}")).collect::<Vec<_>>().join(", "),
                rec.disable_count
            ),
        );
    }
    out.finish()
}

/// [`check_lru_drained`] as the verifiers run it at every doorbell while
/// `lru_cache_disable()` is in force: one violation per episode (until the
/// count drops to 0); a record the check found nothing in is not checked
/// again while it stays the same (the check reads the record alone, so it
/// would find nothing again: in a migration storm the record is read at
/// every page and rarely changes).
#[derive(Clone, Debug, Default)]
pub struct LruDrainEpisodes {
    reported: bool,
    clean: Option<LruAddRecord>,
}

impl LruDrainEpisodes {
    /// The violations `rec` (read now) adds.
    pub fn check(&mut self, rec: &LruAddRecord, ctx: &CheckCtx) -> Vec<Violation> {
        if rec.disable_count == 0 {
            self.reported = false;
            return Vec::new();
        }
        if self.reported || self.clean == Some(*rec) {
            return Vec::new();
        }
        let v = check_lru_drained(rec, ctx);
        self.reported = !v.is_empty();
        self.clean = v.is_empty().then_some(*rec);
        v
    }
}

/// Per-CPU free blocks `(head pfn, order)` found inside the range
/// `alloc_contig_range` is about to migrate: `drain_all_pages` runs right
/// after `start_isolate_page_range` and, with the range isolated, frees go
/// straight to the buddy, so no block may be left on a per-CPU list there.
pub fn check_pcp_drained(blocks: &[(u32, u32)], ctx: &CheckCtx) -> Vec<Violation> {
    let mut out = Out::new(ctx);
    if let Some(&(pfn, order)) = blocks.first() {
        out.push(
            Check::PcpDrain,
            Some(pfn),
            None,
            None,
            format!(
                "block {pfn:#x} (order {order}){} on a per-CPU free list inside the range alloc_contig_range isolated, as its migration begins: drain_all_pages() was skipped (the block is handed out or stays off the buddy, and test_pages_isolated() fails)",
                if blocks.len() > 1 { format!(" and {} more block(s)", blocks.len() - 1) } else { String::new() }
            ),
        );
    }
    out.finish()
}

/// The batch's pages against the page records of a stable snapshot: each
/// is in use (the batch holds a reference), not yet on the LRU, and listed
/// once.
pub fn check_lru_batch_pages(rec: &LruAddRecord, s: &Snapshot, ctx: &CheckCtx) -> Vec<Violation> {
    let mut out = Out::new(ctx);
    if !s.stable || rec.nr as usize > PAGEVEC_SIZE {
        return out.finish();
    }
    let b = rec.batch();
    for (i, &pfn) in b.iter().enumerate() {
        let Some(p) = s.page(pfn) else {
            out.push(Check::PageState, Some(pfn), None, None, format!("the LRU add batch lists pfn {pfn:#x}, outside the page array"));
            continue;
        };
        if b[..i].contains(&pfn) {
            out.push(Check::PageState, Some(pfn), None, None, format!("page {pfn:#x} is in the LRU add batch twice"));
        } else if s.is_free(pfn) || p.refcount < 1 {
            out.push(Check::PageState, Some(pfn), None, None, format!("page {pfn:#x} is in the LRU add batch but free (refcount {})", p.refcount));
        } else if p.has(PG_LRU) {
            out.push(Check::PageState, Some(pfn), None, None, format!("page {pfn:#x} is in the LRU add batch and already PageLRU"));
        }
    }
    out.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(nr: u32, disable: u32) -> LruAddRecord {
        let mut r = LruAddRecord::INIT;
        for i in 0..nr.min(PAGEVEC_SIZE as u32) {
            r.pfns[i as usize] = 0x60100 + i;
        }
        r.nr = nr;
        r.disable_count = disable;
        r
    }

    #[test]
    fn batch_must_be_empty_while_the_cache_is_disabled() {
        let ctx = CheckCtx::default();
        assert!(check_lru_drained(&rec(3, 0), &ctx).is_empty());
        assert!(check_lru_drained(&rec(0, 1), &ctx).is_empty());
        let v = check_lru_drained(&rec(2, 1), &ctx);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].check, Check::LruDrain);
        assert_eq!(v[0].pfn, Some(0x60100));
        assert!(v[0].detail.contains("0x60100, 0x60101"), "{}", v[0].detail);
        let v = check_lru_drained(&rec(16, 0), &ctx);
        assert_eq!(v[0].check, Check::PageState);
    }

    /// One violation per episode, and a record that changes after the
    /// check found it clean is checked again (a memo keyed on less than the
    /// whole record would miss the page that lands in the batch).
    #[test]
    fn episodes_report_once_and_recheck_a_changed_record() {
        let ctx = CheckCtx::default();
        let mut e = LruDrainEpisodes::default();
        let counts: Vec<usize> = [rec(0, 1), rec(0, 1), rec(1, 1), rec(1, 1), rec(2, 1), rec(0, 0), rec(0, 1), rec(0, 2), rec(1, 2), rec(3, 0), rec(3, 1)]
            .iter()
            .map(|r| e.check(r, &ctx).len())
            .collect();
        assert_eq!(counts, [0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1]);
    }
}
