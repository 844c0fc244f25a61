//! Saving and restoring guest RAM (machine snapshots, `board::snapshot`).
use super::ram::{GuestRam, RamError};

/// Page size of a RAM snapshot.
const PAGE: usize = 4096;

/// Guest RAM as it was: every page that was not all zeros (untouched RAM
/// reads as zero, so a booted guest saves a fraction of its RAM).
#[derive(Clone)]
pub struct RamSnapshot {
    base: u64,
    len: usize,
    /// Indexes of the saved pages, ascending.
    pages: Vec<u32>,
    /// Their contents, `PAGE` bytes each, in the same order.
    data: Vec<u8>,
}

/// Why a RAM snapshot cannot be restored.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RamSnapshotError {
    #[error("the snapshot holds {saved_mib} MiB of RAM at {saved_base:#x}, this machine {have_mib} MiB at {have_base:#x}")]
    Layout { saved_base: u64, saved_mib: usize, have_base: u64, have_mib: usize },
    #[error(transparent)]
    Ram(#[from] RamError),
}

impl RamSnapshot {
    /// Bytes of RAM the snapshot holds.
    pub fn saved_bytes(&self) -> usize {
        self.data.len()
    }
}

impl GuestRam {
    /// Save every non-zero page.
    pub fn save(&self) -> RamSnapshot {
        let mut pages = Vec::new();
        let mut data = Vec::new();
        let mut page = vec![0u8; PAGE];
        for i in 0..self.len() / PAGE {
            let pa = self.base() + (i * PAGE) as u64;
            if self.read(pa, &mut page).is_err() {
                break; // not reached: the page lies inside RAM
            }
            if page.iter().any(|&b| b != 0) {
                pages.push(i as u32);
                data.extend_from_slice(&page);
            }
        }
        RamSnapshot { base: self.base(), len: self.len(), pages, data }
    }

    /// Put RAM back as `s` saved it: zero it all (the host hands zero pages
    /// back on the next touch), then copy the saved pages in.
    pub fn restore(&self, s: &RamSnapshot) -> Result<(), RamSnapshotError> {
        if s.len != self.len() || s.base != self.base() {
            return Err(RamSnapshotError::Layout { saved_base: s.base, saved_mib: s.len >> 20, have_base: self.base(), have_mib: self.len() >> 20 });
        }
        self.discard();
        for (k, &i) in s.pages.iter().enumerate() {
            self.write(self.base() + i as u64 * PAGE as u64, &s.data[k * PAGE..(k + 1) * PAGE])?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_brings_back_written_pages_and_zeroes_the_rest() {
        let ram = GuestRam::new(0x6000_0000, 1 << 20).unwrap();
        ram.write_u32(0x6000_1004, 0xdead_beef).unwrap();
        let s = ram.save();
        assert_eq!(s.saved_bytes(), PAGE, "one non-zero page");
        ram.write_u32(0x6000_1004, 1).unwrap();
        ram.write_u32(0x6008_0000, 2).unwrap();
        ram.restore(&s).unwrap();
        assert_eq!(ram.read_u32(0x6000_1004), Some(0xdead_beef));
        assert_eq!(ram.read_u32(0x6008_0000), Some(0), "a page written after the snapshot reads zero again");
    }

    #[test]
    fn a_snapshot_of_another_layout_is_refused() {
        let s = GuestRam::new(0x6000_0000, 1 << 20).unwrap().save();
        let other = GuestRam::new(0x6000_0000, 2 << 20).unwrap();
        assert!(matches!(other.restore(&s), Err(RamSnapshotError::Layout { .. })));
    }
}
