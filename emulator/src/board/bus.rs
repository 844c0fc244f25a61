//! The bus the CPU sees: one device table (physical address range →
//! device, the way Firecracker's `Bus` maps them) that is the board's only
//! MMIO map — the CPU's MMIO windows, reads and writes all come from it —
//! the interrupt wiring, and the [`cpu::Bus`] implementation.
use super::machine::Board;
use crate::cpu;
use crate::devices::sysregs::PowerEvent;
use crate::devices::twd::{TWD_TIMER_PPI, TWD_WDOG_PPI};
use crate::devices::MmioDevice;
use crate::instrument::Instrumentation;
use crate::memory::map::*;

const _: () = assert!(TWD_TIMER_PPI == PPI_PRIVATE_TIMER_ID && TWD_WDOG_PPI == PPI_WATCHDOG_ID);

/// A device on the bus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dev {
    Sysregs,
    Uart0,
    Timer01,
    Clcd,
    Camera,
    Scu,
    GicCpu,
    Twd,
    GicDist,
    L2,
    /// The `i`th window the DT names and the board does not model (reads
    /// as zero, ignores writes).
    Null(usize),
}

/// The device of the `i`th unmodelled window.
pub fn dev_null(i: usize) -> Dev {
    Dev::Null(i)
}

/// `[base, base + len)` of the physical address space.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct BusRange {
    pub base: u64,
    pub len: u64,
}

impl BusRange {
    fn end(self) -> u64 {
        self.base + self.len
    }
    fn overlaps(self, o: BusRange) -> bool {
        self.base < o.end() && o.base < self.end()
    }
}

/// Two devices claim the same addresses.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("MMIO window [{:#x}, {:#x}) of {new:?} overlaps {old:?}", .range.base, .range.base + .range.len)]
pub struct BusConflict {
    pub range: BusRange,
    pub new: Dev,
    pub old: Dev,
}

/// The board's modelled devices and their windows (QEMU's vexpress-a9
/// addresses, see [`crate::memory::map`]).
pub const MODELLED: &[(u64, u64, Dev)] = &[
    (SYSREGS_BASE, PERIPH_SIZE, Dev::Sysregs),
    (UART0_BASE, PERIPH_SIZE, Dev::Uart0),
    (TIMER01_BASE, PERIPH_SIZE, Dev::Timer01),
    (CLCD_BASE, PERIPH_SIZE, Dev::Clcd),
    (CAMERA_BASE, CAMERA_SIZE, Dev::Camera),
    (SCU_BASE, SCU_SIZE, Dev::Scu),
    (GIC_CPU_BASE, GIC_CPU_SIZE, Dev::GicCpu),
    (TWD_BASE, TWD_SIZE, Dev::Twd),
    (GIC_DIST_BASE, GIC_DIST_SIZE, Dev::GicDist),
    (L2CC_BASE, PERIPH_SIZE, Dev::L2),
];

/// Address range → device, sorted by base, no overlaps.
#[derive(Clone, Debug, Default)]
pub struct DeviceTable {
    entries: Vec<(BusRange, Dev)>,
}

impl DeviceTable {
    /// The modelled devices.
    pub fn modelled() -> DeviceTable {
        let mut t = DeviceTable::default();
        for &(base, len, d) in MODELLED {
            t.insert(base, len, d).expect("the modelled windows do not overlap");
        }
        t
    }

    /// Map `[base, base + len)` to `dev`.
    pub fn insert(&mut self, base: u64, len: u64, dev: Dev) -> Result<(), BusConflict> {
        let range = BusRange { base, len };
        if let Some(&(_, old)) = self.entries.iter().find(|(r, _)| r.overlaps(range)) {
            return Err(BusConflict { range, new: dev, old });
        }
        let at = self.entries.partition_point(|(r, _)| r.base < base);
        self.entries.insert(at, (range, dev));
        Ok(())
    }

    /// The device at `pa` and the offset of `pa` in its window.
    #[inline]
    pub fn find(&self, pa: u64) -> Option<(Dev, u64)> {
        let i = self.entries.partition_point(|(r, _)| r.base <= pa).checked_sub(1)?;
        let (r, d) = self.entries[i];
        (pa < r.end()).then_some((d, pa - r.base))
    }

    /// The 4 KiB pages the CPU maps as MMIO, merged into windows.
    pub fn windows(&self) -> Vec<(u64, u64)> {
        let mut out: Vec<(u64, u64)> = Vec::new();
        for (r, _) in &self.entries {
            let (lo, hi) = (r.base & !0xfff, r.end().next_multiple_of(0x1000));
            match out.last_mut() {
                Some((b, s)) if *b + *s >= lo => *s = (*s).max(hi - *b),
                _ => out.push((lo, hi - lo)),
            }
        }
        out
    }
}

impl Board {
    /// Run `f` on the device `d` (brought up to `now` first).
    fn with_device<R>(&mut self, d: Dev, now: u64, f: impl FnOnce(&mut dyn MmioDevice) -> R) -> R {
        let dev: &mut dyn MmioDevice = match d {
            Dev::Sysregs => &mut self.sysregs,
            Dev::Uart0 => &mut self.uart0,
            Dev::Timer01 => &mut self.timer01,
            Dev::Clcd => &mut self.clcd,
            Dev::Camera => &mut self.camera,
            Dev::Scu => &mut self.scu,
            Dev::Twd => &mut self.twd,
            Dev::L2 => &mut self.l2,
            Dev::GicCpu => return f(&mut self.gic.cpu_interface()),
            Dev::GicDist => return f(&mut self.gic.distributor()),
            Dev::Null(_) => unreachable!("unmodelled windows have no device"),
        };
        dev.advance_to(now);
        f(dev)
    }

    /// Sample every device's interrupt output into the GIC; collect UART
    /// output and power requests.
    pub(super) fn update_lines(&mut self) {
        let t = self.timer01.irq_level();
        self.gic.set_spi_level(SPI_TIMER01, t);
        let u = self.uart0.irq_level();
        self.gic.set_spi_level(SPI_UART0, u);
        let c = self.clcd.irq_level();
        self.gic.set_spi_level(SPI_CLCD, c);
        let cam = self.camera.irq_level();
        self.gic.set_spi_level(SPI_CAMERA, cam);
        let (t, w) = (self.twd.timer_irq(), self.twd.wdog_irq());
        self.gic.set_ppi_level(TWD_TIMER_PPI, t);
        self.gic.set_ppi_level(TWD_WDOG_PPI, w);
        if self.twd.take_reset_request() {
            self.power = Some(PowerEvent::Reboot);
        }
        let tx = self.uart0.take_tx();
        if !tx.is_empty() {
            if let Some((needle, seen)) = &mut self.watch {
                seen.extend_from_slice(&tx);
                if seen.windows(needle.len().max(1)).any(|w| w == needle.as_bytes()) {
                    self.paused = true;
                }
            }
        }
        self.console.output(&tx);
        if let Some(ev) = self.sysregs.take_power_event() {
            self.power = Some(ev);
        }
    }

    /// cmaemu's own registers in the sysregs block (see the guest's host
    /// channel): true when `pa` was one of them.
    fn cmaemu_register_write(&mut self, pa: u64, value: u64) -> bool {
        match pa.wrapping_sub(SYSREGS_BASE) {
            SYS_CMAEMU_DESC => {
                if let Some(m) = &mut self.monitor {
                    m.desc_pa = Some(value & 0xffff_ffff);
                    m.doorbell = true;
                }
            }
            SYS_CMAEMU_DOORBELL => {
                if let Some(m) = &mut self.monitor {
                    m.doorbell = true;
                    m.alloc_done |= value == cmaemu_abi::boot::DOORBELL_CMA_ALLOC_DONE as u64;
                    self.activity = true;
                }
            }
            SYS_CMAEMU_PROMPT => {
                self.console.set_prompt_flag(value != 0);
                if let (Some(m), true) = (&mut self.monitor, value != 0) {
                    m.prompt = true;
                }
            }
            _ => return false,
        }
        true
    }
}

impl cpu::Bus for Board {
    fn mmio_read(&mut self, pa: u64, size: usize, now: u64) -> u64 {
        let v = match self.devices.find(pa) {
            Some((Dev::Null(_), _)) => {
                self.null.accesses += 1;
                0
            }
            Some((d, off)) => self.with_device(d, now, |dev| dev.read_sized(off, size)),
            None => {
                self.unhandled += 1;
                0
            }
        };
        self.update_lines();
        v
    }

    fn mmio_write(&mut self, pa: u64, size: usize, value: u64, now: u64) {
        self.host_write = self.cmaemu_register_write(pa, value);
        if self.host_write {
            // no device changed: their lines stand
            return;
        }
        match self.devices.find(pa) {
            Some((Dev::Null(_), _)) => self.null.accesses += 1,
            Some((d, off)) => self.with_device(d, now, |dev| dev.write_sized(off, size, value)),
            None => self.unhandled += 1,
        }
        self.update_lines();
    }

    fn write_left_devices(&self) -> bool {
        self.host_write
    }

    fn tick(&mut self, now: u64) {
        self.timer01.advance_to(now);
        self.uart0.advance_to(now);
        self.sysregs.advance_to(now);
        self.clcd.advance_to(now);
        self.camera.advance_to(now);
        self.twd.advance_to(now);
        self.run_dma_masters(now);
        self.schedule_frame(now);
        self.update_lines();
    }

    fn next_deadline(&self) -> u64 {
        let t = self.timer01.next_deadline_ns().unwrap_or(u64::MAX);
        let u = self.uart0.next_deadline_ns().unwrap_or(u64::MAX);
        let c = self.clcd.next_deadline_ns().unwrap_or(u64::MAX);
        let cam = self.camera.next_deadline_ns().unwrap_or(u64::MAX);
        let twd = self.twd.next_deadline_ns().unwrap_or(u64::MAX);
        let f = if self.monitor.as_ref().is_some_and(|m| m.attached()) { self.next_frame } else { u64::MAX };
        t.min(u).min(c).min(cam).min(twd).min(f)
    }

    fn wants_service(&self) -> bool {
        self.monitor.as_ref().is_some_and(|m| m.has_work())
    }

    type Servicer = Box<Instrumentation>;

    fn take_servicer(&mut self) -> Option<Box<Instrumentation>> {
        if self.monitor.as_ref().is_some_and(|m| m.has_work()) {
            return self.monitor.take();
        }
        None
    }

    fn put_servicer(&mut self, mut m: Box<Instrumentation>) {
        // the cause finder's lines, after the guest's own (it rang the
        // doorbell once they were printed)
        for l in std::mem::take(&mut m.console_lines) {
            self.console.output(format!("{l}\r\n").as_bytes());
        }
        self.monitor = Some(m);
    }

    fn irq_pending(&self) -> bool {
        self.gic.irq_pending()
    }

    fn stop_requested(&self) -> bool {
        self.power.is_some() || self.console.quit || self.paused || self.monitor.as_ref().is_some_and(|m| m.stop_requested)
    }

    fn idle(&mut self, now: u64) -> Option<u64> {
        self.pace_idle(now)
    }

    fn tlb_maintenance(&mut self, op: cpu::TlbOp, now: u64) {
        if let Some(m) = &mut self.monitor {
            m.tlb_maintenance(op, now);
        }
        if let Some(l) = &mut self.linux {
            l.tlb_maintenance(op);
        }
    }

    type Breaker = Box<crate::instrument::linux::LinuxSession>;

    fn take_breaker(&mut self) -> Option<Self::Breaker> {
        self.linux.take()
    }

    fn put_breaker(&mut self, b: Self::Breaker) {
        self.linux = Some(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_finds_devices_and_refuses_overlaps() {
        let t = DeviceTable::modelled();
        assert_eq!(t.find(UART0_BASE + 0x18), Some((Dev::Uart0, 0x18)));
        assert_eq!(t.find(GIC_CPU_BASE), Some((Dev::GicCpu, 0)));
        assert_eq!(t.find(GIC_DIST_BASE + GIC_DIST_SIZE), None);
        assert_eq!(t.find(GLOBAL_TIMER_BASE), None);
        assert_eq!(t.find(0), None);
        let mut t2 = t.clone();
        assert_eq!(t2.insert(UART0_BASE + 0x800, 0x1000, Dev::Null(0)).unwrap_err().old, Dev::Uart0);
        // the CPU maps whole pages, adjacent ones merged
        assert_eq!(
            t.windows(),
            vec![
                (SYSREGS_BASE, 0x1000),
                (UART0_BASE, 0x1000),
                (TIMER01_BASE, 0x1000),
                (CLCD_BASE, 0x1000),
                (CAMERA_BASE, CAMERA_SIZE),
                (A9_PRIV_BASE, A9_PRIV_SIZE),
                (L2CC_BASE, PERIPH_SIZE),
            ]
        );
    }
}
