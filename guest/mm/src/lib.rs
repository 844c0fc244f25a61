//! Linux-faithful memory management for the cmaemu guest, as pure logic.
#![cfg_attr(not(test), no_std)]
pub mod memblock;
pub mod cmdline;
pub mod config;
