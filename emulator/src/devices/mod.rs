//! Device models of the vexpress-a9 board: pure register logic.
//!
//! Every device is a plain struct in the style of rust-vmm's `vm-superio`:
//! datasheet-named register offset constants, `read(offset) -> u32` and
//! `write(offset, value)` for 32-bit accesses, interrupt outputs as levels the
//! board samples (`irq_level()`), and no knowledge of the CPU emulator.
//!
//! Common rules, shared by all devices here:
//!
//! * **Never panic on guest input.** Unknown or reserved offsets read as 0
//!   and ignore writes; each such access is recorded in the device's
//!   [`BadAccessLog`] (exposed through [`MmioDevice::bad_accesses`]) so the
//!   board can count and report them.
//! * **Virtual time is explicit.** Devices that depend on time (timers,
//!   counters, UART receive timeout) take `now_ns` (nanoseconds of virtual
//!   time, derived by the board from retired instructions) through
//!   [`MmioDevice::advance_to`]. The board calls `advance_to(now)` before it
//!   dispatches an access, and uses [`MmioDevice::next_deadline_ns`] to skip
//!   idle time. No device reads a wall clock.
//! * **Sub-word accesses** go through [`MmioDevice::read_sized`] /
//!   [`MmioDevice::write_sized`]: a read of 1 or 2 bytes performs one 32-bit
//!   read of the containing word and extracts the addressed lanes (read side
//!   effects happen once); a write of 1 or 2 bytes is shifted into its lanes
//!   with the other lanes zero (the right thing for data FIFOs and
//!   write-1-to-set/clear registers) unless the device declares the word a
//!   plain storage register through [`MmioDevice::is_storage_register`], in
//!   which case the other lanes are preserved (read-modify-write; used for
//!   the GIC's byte-accessible priority/target registers). 8-byte accesses are
//!   split into two 32-bit accesses.

pub mod camera;
pub mod dma;
pub mod gic;
pub mod pl011;
pub mod pl111;
pub mod pl310;
pub mod scu;
pub mod sp804;
pub mod sysregs;
pub mod twd;

use std::collections::VecDeque;

/// One access the device did not implement (unknown/reserved offset, write to
/// a read-only register, read of a write-only register).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadAccess {
    /// Offset inside the device's MMIO window.
    pub offset: u64,
    /// `Some(value)` for a write, `None` for a read.
    pub write: Option<u32>,
}

/// Counts unhandled accesses and keeps the most recent few for reporting.
#[derive(Debug, Clone, Default)]
pub struct BadAccessLog {
    count: u64,
    recent: VecDeque<BadAccess>,
}

impl BadAccessLog {
    /// How many recent accesses are kept.
    pub const KEEP: usize = 16;

    /// Record an unhandled read.
    pub fn read(&mut self, offset: u64) {
        self.push(BadAccess { offset, write: None });
    }

    /// Record an unhandled write.
    pub fn write(&mut self, offset: u64, value: u32) {
        self.push(BadAccess { offset, write: Some(value) });
    }

    fn push(&mut self, a: BadAccess) {
        self.count = self.count.saturating_add(1);
        if self.recent.len() == Self::KEEP {
            self.recent.pop_front();
        }
        self.recent.push_back(a);
    }

    /// Total number of unhandled accesses since creation.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The most recent unhandled accesses (oldest first), at most [`Self::KEEP`].
    pub fn recent(&self) -> impl Iterator<Item = &BadAccess> {
        self.recent.iter()
    }

    /// Take the recent list (the count is kept).
    pub fn drain(&mut self) -> Vec<BadAccess> {
        self.recent.drain(..).collect()
    }
}

/// Uniform interface the board's bus uses to dispatch MMIO to a device.
pub trait MmioDevice {
    /// Short name for reports ("pl011", "sp804", ...).
    fn name(&self) -> &'static str;
    /// 32-bit read at `offset` (byte offset inside the device window).
    fn read(&mut self, offset: u64) -> u32;
    /// 32-bit write at `offset`.
    fn write(&mut self, offset: u64, value: u32);
    /// The device's log of unhandled accesses.
    fn bad_accesses(&self) -> &BadAccessLog;
    /// Bring time-dependent state up to `now_ns` of virtual time.
    fn advance_to(&mut self, _now_ns: u64) {}
    /// The next virtual time at which the device will change its interrupt
    /// output on its own (None: not before the guest touches it).
    fn next_deadline_ns(&self) -> Option<u64> {
        None
    }
    /// Whether the 32-bit word at `offset` (aligned) is a plain storage
    /// register for which a sub-word write must preserve the other lanes.
    fn is_storage_register(&self, _offset: u64) -> bool {
        false
    }

    /// Access of `size` bytes (1, 2, 4 or 8); see the module docs.
    fn read_sized(&mut self, offset: u64, size: usize) -> u64 {
        match size {
            8 => {
                let lo = self.read(offset) as u64;
                let hi = self.read(offset.wrapping_add(4)) as u64;
                lo | (hi << 32)
            }
            1 | 2 => {
                let word = self.read(offset & !3);
                let shift = (offset & 3) * 8;
                let mask = if size == 1 { 0xff } else { 0xffff };
                ((word >> shift) & mask) as u64
            }
            _ => self.read(offset) as u64,
        }
    }

    /// Write of `size` bytes (1, 2, 4 or 8); see the module docs.
    fn write_sized(&mut self, offset: u64, size: usize, value: u64) {
        match size {
            8 => {
                self.write(offset, value as u32);
                self.write(offset.wrapping_add(4), (value >> 32) as u32);
            }
            1 | 2 => {
                let aligned = offset & !3;
                let shift = ((offset & 3) * 8) as u32;
                let mask: u32 = if size == 1 { 0xff } else { 0xffff };
                let lanes = mask.checked_shl(shift).unwrap_or(0);
                let v = ((value as u32) & mask).checked_shl(shift).unwrap_or(0);
                if self.is_storage_register(aligned) {
                    let old = self.read(aligned);
                    self.write(aligned, (old & !lanes) | v);
                } else {
                    self.write(aligned, v);
                }
            }
            _ => self.write(offset, value as u32),
        }
    }
}

/// ARM PrimeCell identification registers (PeriphID0..3 at 0xFE0..0xFEC,
/// PCellID0..3 at 0xFF0..0xFFC): one byte in the low bits of each word.
/// Returns `None` when `offset` is not in 0xFE0..=0xFFC.
pub(crate) fn primecell_id(offset: u64, periph_id: [u8; 4]) -> Option<u32> {
    const CELL_ID: [u8; 4] = [0x0d, 0xf0, 0x05, 0xb1];
    match offset {
        0xfe0..=0xfec if offset.is_multiple_of(4) => Some(periph_id[((offset - 0xfe0) / 4) as usize] as u32),
        0xff0..=0xffc if offset.is_multiple_of(4) => Some(CELL_ID[((offset - 0xff0) / 4) as usize] as u32),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Regs {
        plain: u32,
        w1s: u32,
        log: BadAccessLog,
    }
    impl MmioDevice for Regs {
        fn name(&self) -> &'static str {
            "regs"
        }
        fn read(&mut self, offset: u64) -> u32 {
            match offset {
                0 => self.plain,
                4 => self.w1s,
                _ => {
                    self.log.read(offset);
                    0
                }
            }
        }
        fn write(&mut self, offset: u64, value: u32) {
            match offset {
                0 => self.plain = value,
                4 => self.w1s |= value,
                _ => self.log.write(offset, value),
            }
        }
        fn bad_accesses(&self) -> &BadAccessLog {
            &self.log
        }
        fn is_storage_register(&self, offset: u64) -> bool {
            offset == 0
        }
    }

    #[test]
    fn sub_word_accesses() {
        let mut r = Regs { plain: 0x1122_3344, w1s: 0, log: BadAccessLog::default() };
        assert_eq!(r.read_sized(1, 1), 0x33);
        assert_eq!(r.read_sized(2, 2), 0x1122);
        r.write_sized(2, 1, 0xaa);
        assert_eq!(r.plain, 0x11aa_3344);
        r.write_sized(5, 1, 0x01);
        assert_eq!(r.w1s, 0x0000_0100);
        r.write_sized(0, 8, 0x0000_0002_dead_beef);
        assert_eq!(r.plain, 0xdead_beef);
        assert_eq!(r.w1s, 0x0000_0102);
        assert_eq!(r.read_sized(0x40, 4), 0);
        assert_eq!(r.bad_accesses().count(), 1);
    }

    #[test]
    fn bad_access_log_keeps_recent() {
        let mut log = BadAccessLog::default();
        for i in 0..40 {
            log.write(i * 4, i as u32);
        }
        assert_eq!(log.count(), 40);
        let recent: Vec<_> = log.recent().copied().collect();
        assert_eq!(recent.len(), BadAccessLog::KEEP);
        assert_eq!(recent[0].offset, 24 * 4);
        assert_eq!(log.drain().len(), BadAccessLog::KEEP);
        assert_eq!(log.count(), 40);
    }

    #[test]
    fn primecell_ids() {
        let p = [0x11, 0x10, 0x14, 0x00];
        assert_eq!(primecell_id(0xfe0, p), Some(0x11));
        assert_eq!(primecell_id(0xfe8, p), Some(0x14));
        assert_eq!(primecell_id(0xffc, p), Some(0xb1));
        assert_eq!(primecell_id(0xfe1, p), None);
        assert_eq!(primecell_id(0xfd0, p), None);
    }
}
