//! loader
pub mod dtb;
pub mod board_dtb;
pub mod elf;
pub mod images;
pub mod kallsyms;
pub mod kernel;
