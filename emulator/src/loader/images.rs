//! The guest kernel and firmware built by build.rs, embedded so that
//! `cmaemu` boots from any directory.

/// The default guest kernel ELF (armv7a-none-eabi).
pub static KERNEL_ELF: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/cmaemu-kernel.elf"));
/// The default boot firmware ELF.
pub static FIRMWARE_ELF: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/cmaemu-firmware.elf"));
/// Where the build left the same kernel ELF for debuggers
/// (`<target>/guest/cmaemu-kernel.elf`; `cmaemu boot -s` prints it).
pub const KERNEL_ELF_PATH: &str = env!("CMAEMU_KERNEL_ELF");

/// A file holding the default kernel ELF for `gdb`: the build's copy when
/// it is there and current, else the embedded bytes written to the
/// temporary directory.
pub fn kernel_elf_file() -> std::io::Result<std::path::PathBuf> {
    let built = std::path::PathBuf::from(KERNEL_ELF_PATH);
    if std::fs::read(&built).is_ok_and(|b| b == KERNEL_ELF) {
        return Ok(built);
    }
    let p = std::env::temp_dir().join(format!("cmaemu-kernel-{}.elf", std::process::id()));
    std::fs::write(&p, KERNEL_ELF)?;
    Ok(p)
}
