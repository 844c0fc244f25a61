//! Host-side introspection of guest physical memory.
pub mod snapshot;
pub mod ring;
pub mod va;
pub mod tables;
pub mod linux;
pub mod kallsyms;

pub use ring::RingDrainer;
pub use snapshot::{CmaArea, IntrospectError, MmCounters, PageState, Snapshot, MT_NAMES};
#[doc(hidden)]
pub mod synth;
#[cfg(test)]
mod tests;
