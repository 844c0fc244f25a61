//! Guest RAM: one anonymous host mapping shared by Unicorn (mem_map_ptr),
//! the DMA masters and the introspection readers on any thread.
use std::sync::Arc;

/// What a RAM access or reservation can fail with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RamError {
    #[error("cannot reserve {} MiB of host memory", .0 >> 20)]
    Reserve(usize),
    #[error("read of {len} bytes at {pa:#x} is outside RAM")]
    ReadOutside { pa: u64, len: usize },
    #[error("write of {len} bytes at {pa:#x} is outside RAM")]
    WriteOutside { pa: u64, len: usize },
}

struct Mapping {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping is plain memory; concurrent access from the CPU
// thread and readers is the same as a DMA master racing the CPU on
// hardware (byte-level races, no Rust references held across threads:
// every access goes through raw-pointer copies below).
unsafe impl Send for Mapping {}
// SAFETY: see above.
unsafe impl Sync for Mapping {}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` come from the successful mmap in `new`.
        unsafe { libc::munmap(self.ptr as *mut libc::c_void, self.len) };
    }
}

/// Guest physical RAM `[base, base + len)`.
#[derive(Clone)]
pub struct GuestRam {
    m: Arc<Mapping>,
    base: u64,
}

impl GuestRam {
    /// Reserve `len` bytes (committed by the host only when touched).
    pub fn new(base: u64, len: usize) -> Result<Self, RamError> {
        // SAFETY: an anonymous private mapping with no fixed address.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(RamError::Reserve(len));
        }
        Ok(GuestRam { m: Arc::new(Mapping { ptr: p as *mut u8, len }), base })
    }
    pub fn base(&self) -> u64 {
        self.base
    }
    pub fn len(&self) -> usize {
        self.m.len
    }
    pub fn is_empty(&self) -> bool {
        self.m.len == 0
    }
    pub fn contains(&self, pa: u64, len: usize) -> bool {
        pa >= self.base && pa.checked_add(len as u64).is_some_and(|e| e <= self.base + self.m.len as u64)
    }
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.m.ptr
    }
    /// Copy guest bytes at physical `pa` into `buf`.
    pub fn read(&self, pa: u64, buf: &mut [u8]) -> Result<(), RamError> {
        if !self.contains(pa, buf.len()) {
            return Err(RamError::ReadOutside { pa, len: buf.len() });
        }
        // SAFETY: bounds checked above; the mapping lives while `self` does.
        unsafe { std::ptr::copy_nonoverlapping(self.m.ptr.add((pa - self.base) as usize), buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }
    /// Whether the guest bytes at physical `pa` equal `data` (a plain
    /// memory compare in place, no copy).
    pub fn equals(&self, pa: u64, data: &[u8]) -> Result<bool, RamError> {
        if !self.contains(pa, data.len()) {
            return Err(RamError::ReadOutside { pa, len: data.len() });
        }
        // SAFETY: bounds checked above; the mapping lives while `self` does.
        // The slice is only read during this call, on the thread that owns
        // the stopped engine (a racing DMA master is as with `read`).
        let guest = unsafe { std::slice::from_raw_parts(self.m.ptr.add((pa - self.base) as usize), data.len()) };
        Ok(guest == data)
    }
    /// Copy `data` into guest RAM at physical `pa`.
    pub fn write(&self, pa: u64, data: &[u8]) -> Result<(), RamError> {
        if !self.contains(pa, data.len()) {
            return Err(RamError::WriteOutside { pa, len: data.len() });
        }
        // SAFETY: bounds checked above; the mapping lives while `self` does.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.m.ptr.add((pa - self.base) as usize), data.len()) };
        Ok(())
    }
    pub fn read_u32(&self, pa: u64) -> Option<u32> {
        let mut b = [0u8; 4];
        self.read(pa, &mut b).ok()?;
        Some(u32::from_le_bytes(b))
    }
    pub fn write_u32(&self, pa: u64, v: u32) -> Result<(), RamError> {
        self.write(pa, &v.to_le_bytes())
    }
    /// Zero all of RAM by giving its pages back to the host (they read as
    /// zeros and are committed again when touched).
    pub fn discard(&self) {
        // SAFETY: the whole private anonymous mapping made in `new`; after
        // MADV_DONTNEED it stays mapped and reads as zeros. Racing readers
        // see old bytes or zeros, as with any write.
        let r = unsafe { libc::madvise(self.m.ptr as *mut libc::c_void, self.m.len, libc::MADV_DONTNEED) };
        if r != 0 {
            // SAFETY: as above; a plain zero fill if the advice was refused.
            unsafe { std::ptr::write_bytes(self.m.ptr, 0, self.m.len) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equals_compares_in_place() {
        let ram = GuestRam::new(0x6000_0000, 1 << 16).unwrap();
        ram.write(0x6000_1000, &[7u8; 4096]).unwrap();
        assert_eq!(ram.equals(0x6000_1000, &[7u8; 4096]), Ok(true));
        let mut other = [7u8; 4096];
        other[4095] = 8;
        assert_eq!(ram.equals(0x6000_1000, &other), Ok(false));
        assert!(ram.equals(0x6000_f001, &[0u8; 4096]).is_err());
        assert!(ram.equals(0x5fff_f000, &[0u8; 16]).is_err());
    }
}
