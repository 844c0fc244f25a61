//! Linux-faithful memory management for the cmaemu guest, as pure logic.
#![cfg_attr(not(test), no_std)]
pub mod memblock;
pub mod cmdline;
pub mod config;
pub mod types;
pub mod profile;
pub mod zone;
pub mod page;
pub mod pageblock;
pub mod gfp;
pub mod buddy;
pub mod pcp;
pub mod swap;
pub mod isolation;
pub mod cma;
pub mod contiguous;
pub mod rmem;
pub mod views;
pub mod rmap;
pub mod gup;
pub mod migrate;
pub mod contig;
