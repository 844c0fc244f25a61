//! ARM PrimeCell Level 2 Cache Controller (PL310, "L2C-310"), as Linux's
//! `l2x0_of_init` / `l2c310` code uses it: identification and
//! configuration registers that read back, maintenance operations that
//! complete at once (this model caches nothing: guest memory is always
//! coherent, as under QEMU's `l2x0` model).
//!
//! Reference: ARM DDI 0246 (L2C-310 TRM), chapter 3 "Programmers model".
use super::{BadAccessLog, MmioDevice};

pub const L2X0_CACHE_ID: u64 = 0x000;
pub const L2X0_CACHE_TYPE: u64 = 0x004;
pub const L2X0_CTRL: u64 = 0x100;
pub const L2X0_AUX_CTRL: u64 = 0x104;
pub const L310_TAG_LATENCY_CTRL: u64 = 0x108;
pub const L310_DATA_LATENCY_CTRL: u64 = 0x10c;
pub const L2X0_EVENT_CNT_CTRL: u64 = 0x200;
pub const L2X0_EVENT_CNT1_CFG: u64 = 0x204;
pub const L2X0_EVENT_CNT0_CFG: u64 = 0x208;
pub const L2X0_EVENT_CNT1_VAL: u64 = 0x20c;
pub const L2X0_EVENT_CNT0_VAL: u64 = 0x210;
pub const L2X0_INTR_MASK: u64 = 0x214;
pub const L2X0_MASKED_INTR_STAT: u64 = 0x218;
pub const L2X0_RAW_INTR_STAT: u64 = 0x21c;
pub const L2X0_INTR_CLEAR: u64 = 0x220;
pub const L2X0_CACHE_SYNC: u64 = 0x730;
pub const L2X0_INV_LINE_PA: u64 = 0x770;
pub const L2X0_INV_WAY: u64 = 0x77c;
pub const L2X0_CLEAN_LINE_PA: u64 = 0x7b0;
pub const L2X0_CLEAN_LINE_IDX: u64 = 0x7b8;
pub const L2X0_CLEAN_WAY: u64 = 0x7bc;
pub const L2X0_CLEAN_INV_LINE_PA: u64 = 0x7f0;
pub const L2X0_CLEAN_INV_LINE_IDX: u64 = 0x7f8;
pub const L2X0_CLEAN_INV_WAY: u64 = 0x7fc;
/// Lockdown by way / line: 0x900..=0x93c (D/I pairs per master), 0x950, 0x954.
pub const L2X0_LOCKDOWN_WAY_D_BASE: u64 = 0x900;
pub const L2X0_LOCKDOWN_WAY_END: u64 = 0x93c;
pub const L310_LOCKDOWN_BY_LINE: u64 = 0x950;
pub const L310_UNLOCK_WAY: u64 = 0x954;
pub const L310_ADDR_FILTER_START: u64 = 0xc00;
pub const L310_ADDR_FILTER_END: u64 = 0xc04;
pub const L2X0_DEBUG_CTRL: u64 = 0xf40;
pub const L310_PREFETCH_CTRL: u64 = 0xf60;
pub const L310_POWER_CTRL: u64 = 0xf80;

/// CACHE_ID: implementer ARM (0x41), part L2C-310 (0x3 << 6), RTL r3p2
/// (0x8) — the value QEMU's vexpress-a9 model reports.
pub const PL310_CACHE_ID_VALUE: u32 = 0x4100_00c8;
/// AUX_CTRL at reset on the CoreTile A9x4 (as QEMU): 16-way, 32 KiB ways.
pub const PL310_AUX_CTRL_RESET: u32 = 0x0202_0000;
/// CACHE_TYPE (as QEMU): Harvard bit clear, 8 ways per 16 KiB… as
/// reported by QEMU's model, so Linux prints the same geometry.
pub const PL310_CACHE_TYPE_VALUE: u32 = 0x1c10_0100;

/// The PL310 register file.
#[derive(Debug, Clone)]
pub struct Pl310 {
    ctrl: u32,
    aux_ctrl: u32,
    tag_latency: u32,
    data_latency: u32,
    event_ctrl: u32,
    event_cfg: [u32; 2],
    intr_mask: u32,
    lockdown: [u32; 16],
    lock_line: u32,
    filter: [u32; 2],
    debug: u32,
    prefetch: u32,
    power: u32,
    log: BadAccessLog,
}

impl Default for Pl310 {
    fn default() -> Self {
        Self::new()
    }
}

impl Pl310 {
    pub fn new() -> Self {
        Pl310 {
            ctrl: 0,
            aux_ctrl: PL310_AUX_CTRL_RESET,
            tag_latency: 0,
            data_latency: 0,
            event_ctrl: 0,
            event_cfg: [0; 2],
            intr_mask: 0,
            lockdown: [0; 16],
            lock_line: 0,
            filter: [0; 2],
            debug: 0,
            prefetch: 0,
            power: 0,
            log: BadAccessLog::default(),
        }
    }
    /// L2X0_CTRL bit 0: the cache is enabled.
    pub fn enabled(&self) -> bool {
        self.ctrl & 1 != 0
    }
}

impl MmioDevice for Pl310 {
    fn name(&self) -> &'static str {
        "pl310"
    }
    fn read(&mut self, offset: u64) -> u32 {
        match offset {
            L2X0_CACHE_ID => PL310_CACHE_ID_VALUE,
            L2X0_CACHE_TYPE => PL310_CACHE_TYPE_VALUE,
            L2X0_CTRL => self.ctrl,
            L2X0_AUX_CTRL => self.aux_ctrl,
            L310_TAG_LATENCY_CTRL => self.tag_latency,
            L310_DATA_LATENCY_CTRL => self.data_latency,
            L2X0_EVENT_CNT_CTRL => self.event_ctrl,
            L2X0_EVENT_CNT1_CFG => self.event_cfg[1],
            L2X0_EVENT_CNT0_CFG => self.event_cfg[0],
            L2X0_EVENT_CNT1_VAL | L2X0_EVENT_CNT0_VAL => 0,
            L2X0_INTR_MASK => self.intr_mask,
            L2X0_MASKED_INTR_STAT | L2X0_RAW_INTR_STAT => 0,
            // Background operations are done the moment they start: the
            // "in progress" bits Linux polls read as 0.
            L2X0_CACHE_SYNC | L2X0_INV_WAY | L2X0_CLEAN_WAY | L2X0_CLEAN_INV_WAY => 0,
            L2X0_INV_LINE_PA | L2X0_CLEAN_LINE_PA | L2X0_CLEAN_LINE_IDX | L2X0_CLEAN_INV_LINE_PA | L2X0_CLEAN_INV_LINE_IDX => 0,
            L2X0_LOCKDOWN_WAY_D_BASE..=L2X0_LOCKDOWN_WAY_END if offset % 4 == 0 => {
                self.lockdown[((offset - L2X0_LOCKDOWN_WAY_D_BASE) / 4) as usize]
            }
            L310_LOCKDOWN_BY_LINE => self.lock_line,
            L310_UNLOCK_WAY => 0,
            L310_ADDR_FILTER_START => self.filter[0],
            L310_ADDR_FILTER_END => self.filter[1],
            L2X0_DEBUG_CTRL => self.debug,
            L310_PREFETCH_CTRL => self.prefetch,
            L310_POWER_CTRL => self.power,
            _ => {
                self.log.read(offset);
                0
            }
        }
    }
    fn write(&mut self, offset: u64, value: u32) {
        match offset {
            L2X0_CTRL => self.ctrl = value & 1,
            // AUX_CTRL, latencies and the filter are writable only while
            // the cache is disabled (TRM 3.3.4).
            L2X0_AUX_CTRL if !self.enabled() => self.aux_ctrl = value,
            L310_TAG_LATENCY_CTRL if !self.enabled() => self.tag_latency = value,
            L310_DATA_LATENCY_CTRL if !self.enabled() => self.data_latency = value,
            L310_ADDR_FILTER_START if !self.enabled() => self.filter[0] = value,
            L310_ADDR_FILTER_END if !self.enabled() => self.filter[1] = value,
            L2X0_AUX_CTRL | L310_TAG_LATENCY_CTRL | L310_DATA_LATENCY_CTRL | L310_ADDR_FILTER_START | L310_ADDR_FILTER_END => {
                self.log.write(offset, value)
            }
            L2X0_EVENT_CNT_CTRL => self.event_ctrl = value,
            L2X0_EVENT_CNT1_CFG => self.event_cfg[1] = value,
            L2X0_EVENT_CNT0_CFG => self.event_cfg[0] = value,
            L2X0_EVENT_CNT1_VAL | L2X0_EVENT_CNT0_VAL => {}
            L2X0_INTR_MASK => self.intr_mask = value,
            L2X0_INTR_CLEAR => {}
            // Maintenance operations complete at once.
            L2X0_CACHE_SYNC | L2X0_INV_WAY | L2X0_CLEAN_WAY | L2X0_CLEAN_INV_WAY => {}
            L2X0_INV_LINE_PA | L2X0_CLEAN_LINE_PA | L2X0_CLEAN_LINE_IDX | L2X0_CLEAN_INV_LINE_PA | L2X0_CLEAN_INV_LINE_IDX => {}
            L2X0_LOCKDOWN_WAY_D_BASE..=L2X0_LOCKDOWN_WAY_END if offset % 4 == 0 => {
                self.lockdown[((offset - L2X0_LOCKDOWN_WAY_D_BASE) / 4) as usize] = value
            }
            L310_LOCKDOWN_BY_LINE => self.lock_line = value & 1,
            L310_UNLOCK_WAY => {}
            L2X0_DEBUG_CTRL => self.debug = value,
            L310_PREFETCH_CTRL => self.prefetch = value,
            L310_POWER_CTRL => self.power = value,
            _ => self.log.write(offset, value),
        }
    }
    fn bad_accesses(&self) -> &BadAccessLog {
        &self.log
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linux_l2x0_init_sequence() {
        let mut l2 = Pl310::new();
        assert_eq!(l2.read(L2X0_CACHE_ID), 0x4100_00c8);
        assert_eq!(l2.read(L2X0_AUX_CTRL), 0x0202_0000);
        l2.write(L2X0_AUX_CTRL, 0x0242_0000);
        // invalidate all ways, poll until done
        l2.write(L2X0_INV_WAY, 0xffff);
        assert_eq!(l2.read(L2X0_INV_WAY), 0);
        l2.write(L2X0_CACHE_SYNC, 0);
        assert_eq!(l2.read(L2X0_CACHE_SYNC), 0);
        l2.write(L2X0_CTRL, 1);
        assert!(l2.enabled());
        // AUX is locked while enabled
        l2.write(L2X0_AUX_CTRL, 0);
        assert_eq!(l2.read(L2X0_AUX_CTRL), 0x0242_0000);
        assert_eq!(l2.bad_accesses().count(), 1);
        l2.write(L2X0_LOCKDOWN_WAY_D_BASE + 4, 0xff);
        assert_eq!(l2.read(0x904), 0xff);
        assert_eq!(l2.read(0x500), 0);
        assert_eq!(l2.bad_accesses().count(), 2);
    }
}
