//! Introspection of a real Linux kernel (Debian's 6.1 armmp) from guest
//! RAM: [`vmcoreinfo`] found in RAM, [`debuginfo`] from the build's
//! `vmlinux` (DWARF via gimli), their [`layout`] of the kernel's
//! structures, [`read`] of zones, free lists, per-CPU lists, pageblocks,
//! CMA areas and `struct page`s at a quiet point, [`procfs`] texts as the
//! kernel prints them, and [`snapshot`]: the same [`Snapshot`] model the
//! verifiers, maps and traces use for cmaemu's own guest.
//!
//! [`Snapshot`]: crate::introspect::Snapshot
pub mod debuginfo;
pub mod layout;
pub mod procfs;
pub mod read;
pub mod snapshot;
pub mod vmcoreinfo;

pub use debuginfo::{DebugInfo, DebugInfoError};
pub use layout::{Layout, LayoutError};
pub use read::{address_spaces, linux_pte, linux_ptes, user_pages, AddressSpace, Cma, LinuxMm, Pte, ReadError, Zone};
pub use vmcoreinfo::{VmcoreError, VmcoreInfo};
