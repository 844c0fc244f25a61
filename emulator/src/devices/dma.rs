//! Shared types of the board's DMA masters (the PL111 CLCD and the cmaemu
//! camera).
//!
//! A device model never owns guest memory. When it moves data it is handed a
//! [`DmaMemory`] — guest **physical** memory as the bus sees it — by the
//! board, and it reports every transfer it made as a [`DmaTransfer`]. Host-side
//! DMA is invisible to Unicorn's memory hooks, so these records are the source
//! of truth for the host's event stream and for the verifiers of DESIGN.md §6
//! (contiguity/ownership of every transfer).
//!
//! [`GuestRam`](crate::memory::GuestRam) implements [`DmaMemory`] directly;
//! [`VecRam`] is a small in-memory implementation for tests.

use std::cell::RefCell;
use std::fmt;

/// A DMA access the memory refused (outside RAM, or otherwise unbacked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmaError {
    /// Guest physical address of the access.
    pub pa: u64,
    /// Length of the access in bytes.
    pub len: u64,
    /// Whether the access was a write to memory.
    pub write: bool,
    /// Human-readable reason.
    pub reason: String,
}

impl DmaError {
    /// A refused access of `len` bytes at `pa`.
    pub fn new(pa: u64, len: u64, write: bool, reason: impl Into<String>) -> Self {
        DmaError { pa, len, write, reason: reason.into() }
    }
}

impl fmt::Display for DmaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DMA {} of {} bytes at {:#x} refused: {}",
            if self.write { "write" } else { "read" },
            self.len,
            self.pa,
            self.reason
        )
    }
}

impl std::error::Error for DmaError {}

/// Guest physical memory as seen by a bus master.
///
/// Contract: an access either succeeds completely or changes nothing (an
/// access that is not entirely inside backed memory fails with no partial
/// effect). Implementations must not panic on any `pa`/length.
pub trait DmaMemory {
    /// Copy `buf.len()` bytes at physical `pa` into `buf`.
    fn read(&self, pa: u64, buf: &mut [u8]) -> Result<(), DmaError>;
    /// Copy `data` to physical `pa`.
    fn write(&self, pa: u64, data: &[u8]) -> Result<(), DmaError>;
}

impl DmaMemory for crate::memory::GuestRam {
    fn read(&self, pa: u64, buf: &mut [u8]) -> Result<(), DmaError> {
        crate::memory::GuestRam::read(self, pa, buf).map_err(|e| DmaError::new(pa, buf.len() as u64, false, e.to_string()))
    }
    fn write(&self, pa: u64, data: &[u8]) -> Result<(), DmaError> {
        crate::memory::GuestRam::write(self, pa, data).map_err(|e| DmaError::new(pa, data.len() as u64, true, e.to_string()))
    }
}

/// One DMA transfer a device performed, for the host event stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DmaTransfer {
    /// The bus master ("pl111", "camera").
    pub device: &'static str,
    /// First guest physical byte.
    pub pa: u64,
    /// Length in bytes (one contiguous range `[pa, pa + len)`).
    pub len: u64,
    /// `true`: the device wrote memory; `false`: it read memory.
    pub write: bool,
    /// The device's frame number this transfer belongs to.
    pub frame: u64,
    /// Virtual time of the transfer (ns).
    pub at_ns: u64,
}

impl DmaTransfer {
    /// One past the last byte.
    pub fn end(&self) -> u64 {
        self.pa.saturating_add(self.len)
    }

    /// The ABI's device number (`cmaemu_abi::desc::DMA_DEV_*`) the guest uses
    /// for this bus master in its `dma_alloc` records, for the verifiers and
    /// the trace events; None for an unknown device name.
    pub fn abi_device(&self) -> Option<u32> {
        use cmaemu_abi::desc::{DMA_DEV_CAMERA, DMA_DEV_CLCD};
        match self.device {
            "pl111" | "clcd" => Some(DMA_DEV_CLCD),
            "camera" => Some(DMA_DEV_CAMERA),
            _ => None,
        }
    }
}

/// A flat RAM `[base, base + size)` in a `Vec`, for tests and tools.
#[derive(Debug)]
pub struct VecRam {
    base: u64,
    data: RefCell<Vec<u8>>,
}

impl VecRam {
    /// Zero-filled RAM of `size` bytes at physical `base`.
    pub fn new(base: u64, size: usize) -> Self {
        VecRam { base, data: RefCell::new(vec![0; size]) }
    }

    /// Physical base address.
    pub fn base(&self) -> u64 {
        self.base
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.data.borrow().len() as u64
    }

    fn index(&self, pa: u64, len: usize) -> Option<usize> {
        let off = pa.checked_sub(self.base)?;
        let end = off.checked_add(len as u64)?;
        (end <= self.size()).then_some(off as usize)
    }

    /// A copy of `len` bytes at `pa` (None outside the RAM).
    pub fn bytes(&self, pa: u64, len: usize) -> Option<Vec<u8>> {
        let i = self.index(pa, len)?;
        Some(self.data.borrow()[i..i + len].to_vec())
    }
}

impl DmaMemory for VecRam {
    fn read(&self, pa: u64, buf: &mut [u8]) -> Result<(), DmaError> {
        let i = self
            .index(pa, buf.len())
            .ok_or_else(|| DmaError::new(pa, buf.len() as u64, false, "outside RAM"))?;
        buf.copy_from_slice(&self.data.borrow()[i..i + buf.len()]);
        Ok(())
    }
    fn write(&self, pa: u64, data: &[u8]) -> Result<(), DmaError> {
        let i = self
            .index(pa, data.len())
            .ok_or_else(|| DmaError::new(pa, data.len() as u64, true, "outside RAM"))?;
        self.data.borrow_mut()[i..i + data.len()].copy_from_slice(data);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vec_ram_bounds() {
        let m = VecRam::new(0x6000_0000, 0x1000);
        m.write(0x6000_0ffc, &[1, 2, 3, 4]).unwrap();
        let mut b = [0u8; 4];
        m.read(0x6000_0ffc, &mut b).unwrap();
        assert_eq!(b, [1, 2, 3, 4]);
        assert!(m.write(0x6000_0ffd, &[0; 4]).is_err());
        assert!(m.read(0x5fff_ffff, &mut b).is_err());
        assert!(m.read(u64::MAX - 1, &mut b).is_err());
        let e = m.write(0x7000_0000, &[0; 8]).unwrap_err();
        assert!(e.write && e.len == 8 && e.to_string().contains("0x70000000"));
        // Failed accesses change nothing.
        assert_eq!(m.bytes(0x6000_0ffc, 4).unwrap(), vec![1, 2, 3, 4]);
    }

    #[test]
    fn abi_device_numbers() {
        let t = DmaTransfer { device: "pl111", pa: 0x1000, len: 16, write: false, frame: 0, at_ns: 0 };
        assert_eq!(t.abi_device(), Some(cmaemu_abi::desc::DMA_DEV_CLCD));
        assert_eq!(DmaTransfer { device: "camera", ..t }.abi_device(), Some(cmaemu_abi::desc::DMA_DEV_CAMERA));
        assert_eq!(DmaTransfer { device: "x", ..t }.abi_device(), None);
        assert_eq!(DmaTransfer { pa: u64::MAX, ..t }.end(), u64::MAX);
    }

    #[test]
    fn guest_ram_is_dma_memory() {
        let ram = crate::memory::GuestRam::new(0x6000_0000, 0x10000).unwrap();
        let m: &dyn DmaMemory = &ram;
        m.write(0x6000_0010, &[9, 8, 7]).unwrap();
        let mut b = [0u8; 3];
        m.read(0x6000_0010, &mut b).unwrap();
        assert_eq!(b, [9, 8, 7]);
        assert!(m.write(0x6001_0000, &[0]).is_err());
        assert!(m.read(0x5000_0000, &mut b).is_err());
    }
}
