//! The one contract between the cmaemu guest kernel and the host.
//!
//! Every layout here is `#[repr(C)]` with a compile-time size assert: the
//! guest writes these records into its RAM, the host reads them back from
//! guest physical memory.
#![no_std]
pub mod page;
pub mod boot;
pub mod desc;
pub mod trace;
pub mod kallsyms;
pub mod camera;
