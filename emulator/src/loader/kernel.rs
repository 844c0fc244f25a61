//! What `--kernel` accepts, and where it goes, as QEMU's ARM loader
//! (`hw/arm/boot.c`, `arm_setup_direct_kernel_boot`) does it: an ELF at
//! its physical addresses; a zImage (magic 0x016f2818 at offset 0x24) at
//! RAM base + 0x10000; a raw Image at RAM base + 0x8000 (TEXT_OFFSET, where
//! an ARM Image must run). The initrd goes at RAM base + min(RAM / 2,
//! 128 MiB) (above the kernel), the DTB after it on a 4 KiB boundary, with
//! `/chosen/linux,initrd-start` and `linux,initrd-end` set.
use super::dtb::{Dtb, DtbError};

/// `arch/arm/boot/compressed/head.S`: the zImage magic word at offset 0x24.
pub const ZIMAGE_MAGIC: u32 = 0x016f_2818;
/// Offset of the magic word in a zImage header.
pub const ZIMAGE_MAGIC_OFFSET: usize = 0x24;
/// QEMU's `KERNEL_LOAD_ADDR`: a zImage's load offset from the RAM base.
pub const ZIMAGE_LOAD_OFFSET: u64 = 0x1_0000;
/// ARM `TEXT_OFFSET`: where a raw (uncompressed) Image runs.
pub const IMAGE_LOAD_OFFSET: u64 = 0x8000;
/// QEMU places the initrd at most this far above the RAM base.
pub const INITRD_MAX_OFFSET: u64 = 128 << 20;
/// DTB alignment after the initrd (QEMU: 4 KiB on 32-bit ARM).
pub const DTB_ALIGN: u64 = 0x1000;

/// A file that is neither an ELF nor a zImage is taken as a raw Image only
/// from this size on (the smallest ARM Linux Image is megabytes; a few
/// bytes of something else is bad input, not a kernel to jump into).
pub const MIN_RAW_IMAGE: usize = 64 << 10;

/// The kind of kernel file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelKind {
    Elf,
    ZImage,
    Image,
}

impl KernelKind {
    /// Detect from the first bytes.
    pub fn detect(bytes: &[u8]) -> KernelKind {
        if bytes.starts_with(b"\x7fELF") {
            return KernelKind::Elf;
        }
        let magic = bytes.get(ZIMAGE_MAGIC_OFFSET..ZIMAGE_MAGIC_OFFSET + 4).map(|b| u32::from_le_bytes(b.try_into().unwrap()));
        if magic == Some(ZIMAGE_MAGIC) {
            KernelKind::ZImage
        } else {
            KernelKind::Image
        }
    }
    /// Load offset from the RAM base of a non-ELF kernel.
    pub fn load_offset(self) -> u64 {
        match self {
            KernelKind::ZImage => ZIMAGE_LOAD_OFFSET,
            _ => IMAGE_LOAD_OFFSET,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            KernelKind::Elf => "ELF",
            KernelKind::ZImage => "zImage",
            KernelKind::Image => "Image",
        }
    }
}

/// Physical placement of the initrd and the DTB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub initrd: Option<(u64, u64)>,
    pub dtb: u64,
}

/// Where the initrd (of `initrd_len` bytes, if any) and the DTB go, above a
/// kernel ending at `kernel_end`.
pub fn layout(ram_base: u64, ram_size: u64, kernel_end: u64, initrd_len: Option<u64>) -> Layout {
    let mut start = ram_base + (ram_size / 2).min(INITRD_MAX_OFFSET);
    if start < kernel_end {
        start = kernel_end.next_multiple_of(DTB_ALIGN);
    }
    match initrd_len {
        Some(len) => Layout { initrd: Some((start, start + len)), dtb: (start + len).next_multiple_of(DTB_ALIGN) },
        None => Layout { initrd: None, dtb: start },
    }
}

/// Set `/chosen/linux,initrd-start` and `linux,initrd-end` (cells as the
/// root's `#address-cells`), as QEMU and U-Boot do.
pub fn set_initrd(dtb: &mut Dtb, start: u64, end: u64) -> Result<(), DtbError> {
    let cells = dtb.address_cells();
    let enc = |v: u64| -> Vec<u8> {
        if cells >= 2 {
            v.to_be_bytes().to_vec()
        } else {
            (v as u32).to_be_bytes().to_vec()
        }
    };
    if dtb.root.child("chosen").is_none() {
        dtb.root.children.push(super::dtb::DtNode::new("chosen"));
    }
    let chosen = dtb.root.child_mut("chosen").expect("just ensured");
    chosen.set_prop("linux,initrd-start", enc(start));
    chosen.set_prop("linux,initrd-end", enc(end));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_kinds() {
        let mut z = vec![0u8; 0x40];
        z[0x24..0x28].copy_from_slice(&ZIMAGE_MAGIC.to_le_bytes());
        assert_eq!(KernelKind::detect(&z), KernelKind::ZImage);
        assert_eq!(KernelKind::detect(b"\x7fELF\x01\x01"), KernelKind::Elf);
        assert_eq!(KernelKind::detect(&[0u8; 0x40]), KernelKind::Image);
        assert_eq!(KernelKind::detect(&[0u8; 4]), KernelKind::Image);
    }

    #[test]
    fn qemu_layout() {
        // 256 MiB: initrd at base + 128 MiB, DTB after it on 4 KiB
        let l = layout(0x6000_0000, 256 << 20, 0x6060_0000, Some(0x1234));
        assert_eq!(l.initrd, Some((0x6800_0000, 0x6800_1234)));
        assert_eq!(l.dtb, 0x6800_2000);
        // 64 MiB: half of RAM; without an initrd the DTB takes its place
        assert_eq!(layout(0x6000_0000, 64 << 20, 0x6060_0000, None).dtb, 0x6200_0000);
        // a kernel reaching past it pushes both up
        assert_eq!(layout(0x6000_0000, 16 << 20, 0x6090_0001, None).dtb, 0x6090_1000);
    }
}
