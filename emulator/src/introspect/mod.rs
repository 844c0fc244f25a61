//! Host-side introspection of guest physical memory.
pub mod walk;
