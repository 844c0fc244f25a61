//! Guest physical memory as every host layer sees it: the RAM mapping
//! ([`GuestRam`]), the ARMv7 short-descriptor page-table walk ([`walk`])
//! and the board's physical memory map ([`map`]). Below `cpu`,
//! `devices`, `introspect`, `verify` and `loader`; imports nothing of the
//! crate.
pub mod map;
pub mod ram;
pub mod snapshot;
pub mod walk;

pub use ram::{GuestRam, RamError};
pub use snapshot::{RamSnapshot, RamSnapshotError};
