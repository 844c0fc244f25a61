//! Pure checkers over introspection snapshots and events.
//!
//! - [`check_dma`]: a DMA transfer lands in one contiguous buffer that the
//!   guest allocated to that device (owner tags, CMA bitmap, live buffers
//!   from `dma_alloc`/`dma_free` records);
//! - [`check_migration`]: content preserved, every listed VA walks to the new
//!   frame, the CPU's cached translation agrees (missing TLB flush), and no
//!   PTE of that address space maps a free frame ([`check_mapped_free`]);
//! - [`check_integrity`]: free lists, page flags, pageblock types and CMA
//!   bitmaps agree (stable snapshots only);
//! - [`check_translation`]: the CMA-aware MMU hook for each translation the
//!   CPU caches.
//!
//! Every checker returns [`Violation`]s and never panics on guest data.
mod dma;
mod integrity;
mod lru;
mod migrate;
mod ownership;
#[cfg(test)]
mod tests;

pub use dma::{check_dma, DmaBuffers, DmaTransfer};
pub use integrity::check_integrity;
pub use lru::{check_lru_batch_pages, check_lru_drained, check_pcp_drained, LruDrainEpisodes};
pub use migrate::{check_mapped_free, check_migration, check_migration_read, check_translation, MigrationInput, MigrationReads};
pub use ownership::{check_frames, check_frames_with, owner_text, FrameChecker};

pub use crate::findings::{Check, CheckCtx, Violation};

/// Most violations one checker call reports (then one "and N more").
pub const MAX_VIOLATIONS_PER_CALL: usize = 64;

pub(crate) struct Out<'a> {
    ctx: &'a CheckCtx,
    v: Vec<Violation>,
    dropped: usize,
}

impl<'a> Out<'a> {
    pub(crate) fn new(ctx: &'a CheckCtx) -> Self {
        Out { ctx, v: Vec::new(), dropped: 0 }
    }
    pub(crate) fn push(&mut self, check: Check, pfn: Option<u32>, va: Option<u32>, device: Option<u32>, detail: String) {
        if self.v.len() < MAX_VIOLATIONS_PER_CALL {
            self.v.push(self.ctx.violation(check, pfn, va, device, detail));
        } else {
            self.dropped += 1;
        }
    }
    pub(crate) fn finish(mut self) -> Vec<Violation> {
        if self.dropped > 0 {
            if let Some(last) = self.v.last_mut() {
                last.detail.push_str(&format!(" (and {} more violations not listed)", self.dropped));
            }
        }
        self.v
    }
}
