//! The per-CPU LRU add batch, following Linux 6.1 `mm/swap.c`:
//! `folio_add_lru`, `folio_batch_move_lru`, `lru_add_drain`,
//! `lru_add_drain_all`, `lru_cache_disable`/`lru_cache_enable`.
//!
//! A new anonymous page is not put on the LRU at once: `folio_add_lru`
//! takes an extra reference and parks it in the CPU's `lru_add` batch of
//! `PAGEVEC_SIZE` (15) folios; the batch moves to the LRU (`PG_lru` set,
//! the extra reference dropped) when it fills, or when someone drains it.
//! Until then the page is neither `PageLRU` nor free of the extra
//! reference, so migration cannot isolate it: `alloc_contig_range` drains
//! every CPU's batches first (`__alloc_contig_migrate_range` →
//! `lru_cache_disable` → `__lru_add_drain_all(true)`), and while the cache
//! is disabled new pages skip the batch.
//!
//! One CPU: `lru_add_drain_all` is the local drain. Only the `lru_add`
//! batch is kept (the rotate/deactivate/activate batches have no users in
//! the guest). The state is [`PageAlloc::lru_add`], an ABI record the host
//! reads in place (Linux's per-cpu `cpu_fbatches` + `lru_disable_count`).
use crate::buddy::PageAlloc;
use crate::page::*;
use crate::types::Pfn;
pub use cmaemu_abi::desc::{LruAddRecord as LruAdd, PAGEVEC_SIZE};

impl PageAlloc<'_> {
    /// `lru_cache_disabled`.
    pub fn lru_cache_disabled(&self) -> bool {
        self.lru_add.disable_count != 0
    }

    /// `folio_add_lru` for an order-0 page the caller holds (refcount >= 1):
    /// `folio_get`, then `folio_batch_add`; the batch moves to the LRU when
    /// it is full or the cache is disabled.
    pub fn folio_add_lru(&mut self, pfn: Pfn) {
        let in_batch = self.in_lru_add_batch(pfn);
        let Some(p) = self.mem.page_mut(pfn) else { return };
        if p.refcount <= 0 || p.has(PG_LRU) || in_batch {
            // VM_BUG_ON_FOLIO(folio_test_lru(folio)): refuse.
            return;
        }
        p.refcount += 1;
        let b = &mut self.lru_add;
        b.pfns[b.nr as usize] = pfn.0;
        b.nr += 1;
        if b.nr as usize == PAGEVEC_SIZE || self.lru_cache_disabled() {
            self.folio_batch_move_lru();
        }
    }

    /// `folio_batch_move_lru` with `lru_add_fn`: every folio of the batch
    /// goes on the LRU, then `release_pages` drops the batch's reference;
    /// a page whose other references went meanwhile (unmapped and put while
    /// still in the batch) is freed now.
    pub fn folio_batch_move_lru(&mut self) {
        let b = self.lru_add;
        self.lru_add.nr = 0;
        self.lru_add.pfns = [PFN_NONE; PAGEVEC_SIZE];
        for &pfn in b.batch() {
            if let Some(p) = self.mem.page_mut(Pfn(pfn)) {
                p.flags |= PG_LRU; // lru_add_fn
            }
        }
        for &pfn in b.batch() {
            self.release_batch_ref(Pfn(pfn));
        }
    }

    /// `release_pages` for one folio of a batch: drop a reference; the last
    /// one takes the page off the LRU and frees it.
    fn release_batch_ref(&mut self, pfn: Pfn) {
        let Some(p) = self.mem.page_mut(pfn) else { return };
        if p.refcount > 1 {
            p.refcount -= 1;
            return;
        }
        // __folio_put: off the LRU, then to the page allocator.
        p.flags &= !(PG_LRU | PG_ACTIVE | PG_UNEVICTABLE);
        let _ = self.__free_pages(pfn, 0);
    }

    /// `lru_add_drain` (`lru_add_drain_cpu` of this CPU's `lru_add`).
    pub fn lru_add_drain(&mut self) {
        if self.lru_add.nr != 0 {
            self.folio_batch_move_lru();
        }
    }

    /// `lru_add_drain_all`: every CPU's batches (one CPU here).
    pub fn lru_add_drain_all(&mut self) {
        self.lru_add_drain();
    }

    /// `lru_cache_disable`: new pages bypass the batches from now on, and
    /// the batches are drained (`__lru_add_drain_all(true)`). With
    /// `skip_drain` (the `skip_lru_drain` fault injection) the drain is
    /// left out: pages parked in the batch stay off the LRU, so migration
    /// cannot isolate them.
    pub fn lru_cache_disable(&mut self, skip_drain: bool) {
        self.lru_add.disable_count += 1;
        if !skip_drain {
            self.lru_add_drain_all();
        }
    }

    /// `lru_cache_enable`.
    pub fn lru_cache_enable(&mut self) {
        self.lru_add.disable_count = self.lru_add.disable_count.saturating_sub(1);
    }

    /// Whether `pfn` sits in the LRU add batch (`folio_batch` membership).
    pub fn in_lru_add_batch(&self, pfn: Pfn) -> bool {
        self.lru_add.batch().contains(&pfn.0)
    }
}

#[cfg(test)]
mod tests;
