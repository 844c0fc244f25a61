//! The guest kernel and firmware built by build.rs, embedded so that
//! `cmaemu` boots from any directory, and the images of one boot: the
//! files given on the command line, or the embedded ones.
use std::path::{Path, PathBuf};

/// An image file that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// `FLAG PATH: ERROR`, e.g. `--kernel /x/zImage: No such file or directory (os error 2)`.
    #[error("{flag} {}: {source}", path.display())]
    Read { flag: &'static str, path: PathBuf, source: std::io::Error },
}

/// The bytes of the file given with `flag`.
pub fn read_image(flag: &'static str, path: &Path) -> Result<Vec<u8>, ImageError> {
    std::fs::read(path).map_err(|source| ImageError::Read { flag, path: path.to_path_buf(), source })
}

/// `--kernel`'s file, else the embedded kernel.
pub fn kernel(path: Option<&Path>) -> Result<Vec<u8>, ImageError> {
    path.map_or_else(|| Ok(KERNEL_ELF.to_vec()), |p| read_image("--kernel", p))
}

/// `--firmware`'s file, else the embedded firmware.
pub fn firmware(path: Option<&Path>) -> Result<Vec<u8>, ImageError> {
    path.map_or_else(|| Ok(FIRMWARE_ELF.to_vec()), |p| read_image("--firmware", p))
}

/// `--initrd`'s file, if any.
pub fn initrd(path: Option<&Path>) -> Result<Option<Vec<u8>>, ImageError> {
    path.map(|p| read_image("--initrd", p)).transpose()
}

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
