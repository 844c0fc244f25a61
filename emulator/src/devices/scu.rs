//! Cortex-A9 MPCore Snoop Control Unit, single core: what Linux's
//! `scu_get_core_count`, `scu_enable` and `scu_power_mode` read and write.
//!
//! Reference: ARM DDI 0407 (Cortex-A9 MPCore TRM), 2.2 "SCU registers".
use super::{BadAccessLog, MmioDevice};

pub const SCU_CTRL: u64 = 0x00;
pub const SCU_CONFIG: u64 = 0x04;
pub const SCU_CPU_STATUS: u64 = 0x08;
pub const SCU_INVALIDATE: u64 = 0x0c;
pub const SCU_FILTER_START: u64 = 0x40;
pub const SCU_FILTER_END: u64 = 0x44;
pub const SCU_SAC: u64 = 0x50;
pub const SCU_SNSAC: u64 = 0x54;

/// The SCU of a one-core A9 MPCore.
#[derive(Debug, Clone, Default)]
pub struct Scu {
    ctrl: u32,
    cpu_status: u32,
    filter: [u32; 2],
    sac: u32,
    snsac: u32,
    log: BadAccessLog,
}

impl Scu {
    /// Cores in the cluster.
    pub const NUM_CPUS: u32 = 1;
    pub fn new() -> Self {
        Scu { sac: 0xf, ..Default::default() }
    }
    /// SCU_CONFIG: CPU number (cores - 1) in [1:0], the SMP bit of each
    /// core in [7:4] (QEMU's a9_scu reports the same).
    pub fn config(&self) -> u32 {
        (((1 << Self::NUM_CPUS) - 1) << 4) | (Self::NUM_CPUS - 1)
    }
}

impl MmioDevice for Scu {
    fn name(&self) -> &'static str {
        "scu"
    }
    fn read(&mut self, offset: u64) -> u32 {
        match offset {
            SCU_CTRL => self.ctrl,
            SCU_CONFIG => self.config(),
            SCU_CPU_STATUS => self.cpu_status,
            SCU_INVALIDATE => 0,
            SCU_FILTER_START => self.filter[0],
            SCU_FILTER_END => self.filter[1],
            SCU_SAC => self.sac,
            SCU_SNSAC => self.snsac,
            _ => {
                self.log.read(offset);
                0
            }
        }
    }
    fn write(&mut self, offset: u64, value: u32) {
        match offset {
            SCU_CTRL => self.ctrl = value,
            SCU_CONFIG => self.log.write(offset, value),
            SCU_CPU_STATUS => self.cpu_status = value,
            SCU_INVALIDATE => {}
            SCU_FILTER_START => self.filter[0] = value,
            SCU_FILTER_END => self.filter[1] = value,
            SCU_SAC => self.sac = value,
            SCU_SNSAC => self.snsac = value,
            _ => self.log.write(offset, value),
        }
    }
    fn bad_accesses(&self) -> &BadAccessLog {
        &self.log
    }
    fn is_storage_register(&self, offset: u64) -> bool {
        // scu_power_mode writes the CPU status register a byte per core.
        offset == SCU_CPU_STATUS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_core() {
        let mut s = Scu::new();
        assert_eq!(s.read(SCU_CONFIG) & 3, 0, "scu_get_core_count = 1");
        s.write(SCU_CTRL, 1);
        assert_eq!(s.read(SCU_CTRL), 1);
        s.write_sized(SCU_CPU_STATUS, 1, 3);
        assert_eq!(s.read(SCU_CPU_STATUS), 3);
        s.write(SCU_CONFIG, 5);
        assert_eq!(s.bad_accesses().count(), 1);
    }
}
