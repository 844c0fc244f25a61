//! The kernel's embedded symbol table (`KALLSYMS`), written by the host
//! build into the linked kernel ELF and read by the kernel's oops code.
//!
//! Layout (little-endian): a [`Header`], `count` [`Entry`]s sorted by
//! address, then NUL-terminated names; `Entry::name` is the byte offset of
//! a name from the start of the table.

/// Size of the table reserved in the kernel image.
pub const KALLSYMS_SIZE: usize = 32 * 1024;
/// `"KSYM"` as a little-endian word.
pub const KALLSYMS_MAGIC: u32 = u32::from_le_bytes(*b"KSYM");

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub magic: u32,
    pub count: u32,
}
const _: () = assert!(core::mem::size_of::<Header>() == 8);

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Start address (virtual).
    pub addr: u32,
    /// Size in bytes (symbols without one run to the next symbol).
    pub size: u32,
    /// Offset of the name from the start of the table.
    pub name: u32,
}
const _: () = assert!(core::mem::size_of::<Entry>() == 12);
