//! The guest kernel and firmware built by build.rs, embedded so that
//! `cmaemu` boots from any directory.

/// The default guest kernel ELF (armv7a-none-eabi).
pub static KERNEL_ELF: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/cmaemu-kernel.elf"));
/// The default boot firmware ELF.
pub static FIRMWARE_ELF: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/cmaemu-firmware.elf"));
