//! [`Vas`]: the VAs of one migrated page, held in place.
use cmaemu_abi::trace::MIGRATE_VAS_PER_RECORD;

/// VAs a [`Vas`] holds without an allocation: one ring record's worth,
/// almost every page.
pub const VAS_INLINE: usize = MIGRATE_VAS_PER_RECORD;

/// The VAs that mapped a migrated page ([`EventKind::MigratePage`](super::EventKind::MigratePage)):
/// up to [`VAS_INLINE`] held in place (an event made, cloned or dropped
/// allocates nothing), more (continuation records) on the heap. It reads,
/// compares and prints as the `[u32]` it holds.
pub type Vas = smallvec::SmallVec<[u32; VAS_INLINE]>;
