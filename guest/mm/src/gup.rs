//! Page pins, following Linux 6.1 `mm/gup.c`: `pin_user_pages` takes a
//! reference on each page (`try_grab_page(page, FOLL_PIN)`), and
//! `unpin_user_page` drops it again (`gup_put_folio(folio, 1, FOLL_PIN)`
//! → `folio_put_refs`).
//!
//! A pin belongs to whoever took it, not to a mapping: the pinned page
//! cannot migrate (its refcount exceeds its mappings', so
//! `folio_migrate_mapping` refuses it), and it outlives `munmap` of the
//! VA it was pinned through — the pin's reference keeps the page
//! allocated until `unpin_user_page`, which then frees it if that was
//! the last reference (`__folio_put` → `__page_cache_release` takes it
//! off the LRU, `free_unref_page` frees it). The holder must therefore
//! unpin the page it pinned (the `struct page *` it keeps), whatever
//! the VA maps now.
//!
//! Linux counts a `FOLL_PIN` of an order-0 page as
//! `GUP_PIN_COUNTING_BIAS` (1024) references so that
//! `folio_maybe_dma_pinned` can tell pins from other references; the
//! guest counts one reference per pin (what `get_user_pages`, `FOLL_GET`,
//! takes), so "pinned" reads `page_count > total_mapcount` here as in
//! `page_pinned` of the migration code.
use crate::buddy::{BuddyError, PageAlloc};
use crate::page::*;
use crate::types::Pfn;

impl PageAlloc<'_> {
    /// `try_grab_page(page, FOLL_PIN)` of an order-0 page in use: one
    /// reference more. A free page (or one without a record) cannot be
    /// pinned: Linux's `try_grab_page` refuses a zero refcount
    /// (`WARN_ON_ONCE(folio_ref_count(folio) <= 0)`, `-ENOMEM`).
    pub fn pin_user_page(&mut self, pfn: Pfn) -> Result<(), BuddyError> {
        let p = self.mem.page_mut(pfn).ok_or(BuddyError::BadPage(pfn, "no page record"))?;
        if p.refcount <= 0 || p.has(PG_BUDDY) {
            return Err(BuddyError::BadPage(pfn, "pinning a free page"));
        }
        p.refcount += 1;
        Ok(())
    }

    /// `unpin_user_page`: drop the pin's reference of `pfn`, the page that
    /// was pinned (mapped or not). The last reference frees the page
    /// (`put_page`: off the LRU, then to the page allocator); returns
    /// whether it did. A page with no reference left to drop (free, or a
    /// refcount at zero) is refused untouched (Linux: `VM_BUG_ON_FOLIO`
    /// in `folio_put_testzero`).
    pub fn unpin_user_page(&mut self, pfn: Pfn) -> Result<bool, BuddyError> {
        let p = self.mem.page_mut(pfn).ok_or(BuddyError::BadPage(pfn, "no page record"))?;
        if p.refcount <= 0 || p.has(PG_BUDDY) {
            return Err(BuddyError::DoubleFree(pfn));
        }
        if p.refcount > 1 {
            p.refcount -= 1;
            return Ok(false);
        }
        // __folio_put_small: __page_cache_release (off the LRU, mlock
        // cleared), then free_unref_page.
        if p.has(PG_LRU) {
            p.flags &= !(PG_LRU | PG_ACTIVE | PG_UNEVICTABLE);
        }
        p.flags &= !PG_MLOCKED;
        self.__free_pages(pfn, 0)?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests;
