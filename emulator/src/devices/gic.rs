//! Cortex-A9 MPCore interrupt controller: a GICv1 (PL390-style) distributor
//! and one CPU interface, after the ARM GIC Architecture Specification v1,
//! the Cortex-A9 MPCore TRM and QEMU's `hw/intc/arm_gic.c` (as configured by
//! QEMU's `a9mpcore_priv`: 96 interrupt IDs = 32 private + 64 SPIs, one CPU,
//! no Security Extensions, 5 priority bits).
//!
//! * Interrupt inputs are levels: [`Gic::set_spi_level`] for shared
//!   peripheral interrupts (SPI n = ID 32+n) and [`Gic::set_ppi_level`] for
//!   private ones (ID 16..31). A level-sensitive interrupt is pending while
//!   its line is high (or after a software `ISPENDR` write until
//!   `ICPENDR`/acknowledge); an edge-triggered one (`ICFGR` bit 2n+1) latches
//!   pending on a rising edge.
//! * SPIs are forwarded only if `ITARGETSR` names CPU 0 (bit 0), as on
//!   hardware (reset value 0: the guest must set targets). SGIs are always
//!   enabled (RAO/WI), as on the A9.
//! * [`Gic::irq_pending`] is the CPU's nIRQ input: distributor and CPU
//!   interface enabled, and the highest-priority pending enabled non-active
//!   interrupt has priority below `GICC_PMR` and a group priority (per
//!   `GICC_BPR`) higher than the running priority.
//! * `GICC_IAR` acknowledges (marks active, clears a latched pending state,
//!   returns the ID or 1023); `GICC_EOIR` deactivates and drops the running
//!   priority. Nested (preempting) interrupts are supported.
//! * The two register windows are reached through [`Gic::distributor`] and
//!   [`Gic::cpu_interface`], which implement [`MmioDevice`]. Byte accesses to
//!   `IPRIORITYR`/`ITARGETSR` (which Linux uses) are read-modify-write;
//!   byte writes to set/clear-enable/pending registers affect only the
//!   written bits.

use super::{BadAccessLog, MmioDevice};

/// Interrupt IDs implemented (QEMU a9mpcore: 64 external lines + 32 private).
pub const NUM_IRQS: usize = 96;
/// Number of SPIs.
pub const NUM_SPIS: u32 = (NUM_IRQS - 32) as u32;
/// Spurious interrupt ID.
pub const SPURIOUS_ID: u32 = 1023;
/// Implemented priority bits (the A9 has 5: the low 3 bits read as zero).
pub const PRIORITY_MASK: u8 = 0xf8;
/// Minimum binary point with 5 priority bits.
pub const BPR_MIN: u32 = 2;

// Distributor registers.
/// Distributor control.
pub const GICD_CTLR: u64 = 0x000;
/// Interrupt controller type.
pub const GICD_TYPER: u64 = 0x004;
/// Implementer identification.
pub const GICD_IIDR: u64 = 0x008;
/// Interrupt group (security) registers: RAZ/WI without Security Extensions.
pub const GICD_IGROUPR: u64 = 0x080;
/// Set-enable.
pub const GICD_ISENABLER: u64 = 0x100;
/// Clear-enable.
pub const GICD_ICENABLER: u64 = 0x180;
/// Set-pending.
pub const GICD_ISPENDR: u64 = 0x200;
/// Clear-pending.
pub const GICD_ICPENDR: u64 = 0x280;
/// Active status (read-only in GICv1).
pub const GICD_ISACTIVER: u64 = 0x300;
/// Clear-active (GICv2; accepted here because Linux writes it at init).
pub const GICD_ICACTIVER: u64 = 0x380;
/// Priority, one byte per interrupt.
pub const GICD_IPRIORITYR: u64 = 0x400;
/// CPU targets, one byte per interrupt.
pub const GICD_ITARGETSR: u64 = 0x800;
/// Configuration, two bits per interrupt.
pub const GICD_ICFGR: u64 = 0xc00;
/// Software generated interrupt register.
pub const GICD_SGIR: u64 = 0xf00;

// CPU interface registers.
/// CPU interface control.
pub const GICC_CTLR: u64 = 0x00;
/// Priority mask.
pub const GICC_PMR: u64 = 0x04;
/// Binary point.
pub const GICC_BPR: u64 = 0x08;
/// Interrupt acknowledge.
pub const GICC_IAR: u64 = 0x0c;
/// End of interrupt.
pub const GICC_EOIR: u64 = 0x10;
/// Running priority.
pub const GICC_RPR: u64 = 0x14;
/// Highest priority pending interrupt.
pub const GICC_HPPIR: u64 = 0x18;
/// Aliased binary point.
pub const GICC_ABPR: u64 = 0x1c;
/// CPU interface identification.
pub const GICC_IIDR: u64 = 0xfc;

/// Distributor identification registers 0xFD0..0xFFC (QEMU `gic_id_gicv1`).
const DIST_ID: [u8; 12] = [0x04, 0x00, 0x00, 0x00, 0x90, 0xb3, 0x1b, 0x00, 0x0d, 0xf0, 0x05, 0xb1];

/// The interrupt controller state.
#[derive(Debug, Clone)]
pub struct Gic {
    dist_ctlr: u32,
    enabled: [bool; NUM_IRQS],
    latch: [bool; NUM_IRQS],
    line: [bool; NUM_IRQS],
    active: [bool; NUM_IRQS],
    config: [u8; NUM_IRQS],
    priority: [u8; NUM_IRQS],
    targets: [u8; NUM_IRQS],
    cpu_ctlr: u32,
    pmr: u8,
    bpr: u32,
    abpr: u32,
    /// Active interrupts in acknowledge order with their priorities.
    active_stack: Vec<(u32, u8)>,
    acks: u64,
    dist_bad: BadAccessLog,
    cpu_bad: BadAccessLog,
}

impl Default for Gic {
    fn default() -> Self {
        Self::new()
    }
}

impl Gic {
    /// A GIC in its reset state: everything disabled, priorities 0, PMR 0
    /// (masks everything), SGIs enabled and edge-triggered.
    pub fn new() -> Self {
        let mut g = Gic {
            dist_ctlr: 0,
            enabled: [false; NUM_IRQS],
            latch: [false; NUM_IRQS],
            line: [false; NUM_IRQS],
            active: [false; NUM_IRQS],
            config: [0; NUM_IRQS],
            priority: [0; NUM_IRQS],
            targets: [0; NUM_IRQS],
            cpu_ctlr: 0,
            pmr: 0,
            bpr: BPR_MIN,
            abpr: BPR_MIN + 1,
            active_stack: Vec::new(),
            acks: 0,
            dist_bad: BadAccessLog::default(),
            cpu_bad: BadAccessLog::default(),
        };
        for i in 0..16 {
            g.enabled[i] = true;
            g.config[i] = 0b10;
        }
        for i in 0..32 {
            g.targets[i] = 1;
        }
        g
    }

    fn is_edge(&self, irq: usize) -> bool {
        self.config[irq] & 0b10 != 0
    }

    fn is_pending(&self, irq: usize) -> bool {
        self.latch[irq] || (!self.is_edge(irq) && self.line[irq])
    }

    fn set_line(&mut self, irq: usize, level: bool) {
        if irq >= NUM_IRQS {
            return;
        }
        if self.is_edge(irq) && level && !self.line[irq] {
            self.latch[irq] = true;
        }
        self.line[irq] = level;
    }

    /// Drive shared peripheral interrupt `spi` (ID 32+spi). Out-of-range
    /// numbers are ignored.
    pub fn set_spi_level(&mut self, spi: u32, level: bool) {
        if spi < NUM_SPIS {
            self.set_line(32 + spi as usize, level);
        }
    }

    /// Drive private peripheral interrupt `id` (16..=31). Others are ignored.
    pub fn set_ppi_level(&mut self, id: u32, level: bool) {
        if (16..32).contains(&id) {
            self.set_line(id as usize, level);
        }
    }

    /// Whether interrupt `id` is pending (latched or level high).
    pub fn is_irq_pending(&self, id: u32) -> bool {
        (id as usize) < NUM_IRQS && self.is_pending(id as usize)
    }

    /// Whether interrupt `id` is active.
    pub fn is_irq_active(&self, id: u32) -> bool {
        (id as usize) < NUM_IRQS && self.active[id as usize]
    }

    /// Number of interrupts acknowledged through `GICC_IAR` so far.
    pub fn ack_count(&self) -> u64 {
        self.acks
    }

    /// Highest-priority pending, enabled, non-active interrupt forwarded to
    /// CPU 0: (id, priority). Ties go to the lowest ID.
    fn hppi(&self) -> Option<(u32, u8)> {
        if self.dist_ctlr & 1 == 0 {
            return None;
        }
        // Nothing latched and no line high: nothing is pending (the common
        // case; a scan of two byte arrays instead of the per-IRQ tests —
        // the CPU asks at every re-arm, twice per host service).
        if !self.latch.iter().chain(&self.line).any(|&b| b) {
            return None;
        }
        let mut best: Option<(u32, u8)> = None;
        for i in 0..NUM_IRQS {
            if self.enabled[i]
                && !self.active[i]
                && self.is_pending(i)
                && (i < 32 || self.targets[i] & 1 != 0)
                && best.is_none_or(|(_, p)| self.priority[i] < p)
            {
                best = Some((i as u32, self.priority[i]));
            }
        }
        best
    }

    fn running_priority(&self) -> u32 {
        self.active_stack.last().map(|&(_, p)| p as u32).unwrap_or(0x100)
    }

    fn group_mask(&self) -> u32 {
        // Group priority = bits [7 : bpr+1].
        (0xffu32 << (self.bpr + 1)) & 0xff
    }

    /// (id, priority) of the interrupt the CPU interface would signal now.
    fn signalled(&self) -> Option<(u32, u8)> {
        if self.cpu_ctlr & 1 == 0 {
            return None;
        }
        let (id, prio) = self.hppi()?;
        if prio >= self.pmr {
            return None;
        }
        let running = self.running_priority();
        if running != 0x100 && (prio as u32 & self.group_mask()) >= (running & self.group_mask()) {
            return None;
        }
        Some((id, prio))
    }

    /// The CPU's IRQ input.
    pub fn irq_pending(&self) -> bool {
        self.signalled().is_some()
    }

    /// Read `GICC_IAR`: acknowledge the signalled interrupt.
    pub fn acknowledge(&mut self) -> u32 {
        let Some((id, prio)) = self.signalled() else {
            return SPURIOUS_ID;
        };
        let i = id as usize;
        self.latch[i] = false;
        self.active[i] = true;
        self.active_stack.push((id, prio));
        self.acks += 1;
        // SGIs carry the source CPU in bits [12:10]; it is always CPU 0.
        id
    }

    /// Write `GICC_EOIR`.
    pub fn end_of_interrupt(&mut self, value: u32) {
        let id = value & 0x3ff;
        if (id as usize) >= NUM_IRQS || !self.active[id as usize] {
            return;
        }
        self.active[id as usize] = false;
        if let Some(pos) = self.active_stack.iter().rposition(|&(a, _)| a == id) {
            self.active_stack.remove(pos);
        }
    }

    fn deactivate(&mut self, irq: usize) {
        if self.active[irq] {
            self.active[irq] = false;
            self.active_stack.retain(|&(a, _)| a as usize != irq);
        }
    }

    /// The distributor register window (GIC_DIST_BASE).
    pub fn distributor(&mut self) -> Distributor<'_> {
        Distributor(self)
    }

    /// The CPU interface register window (GIC_CPU_BASE).
    pub fn cpu_interface(&mut self) -> CpuInterface<'_> {
        CpuInterface(self)
    }

    fn bits_read(&self, base: u64, offset: u64, f: impl Fn(&Self, usize) -> bool) -> u32 {
        let first = ((offset - base) / 4 * 32) as usize;
        let mut v = 0;
        for b in 0..32 {
            let irq = first + b;
            if irq < NUM_IRQS && f(self, irq) {
                v |= 1 << b;
            }
        }
        v
    }

    fn bits_write(&mut self, base: u64, offset: u64, value: u32, mut f: impl FnMut(&mut Self, usize)) {
        let first = ((offset - base) / 4 * 32) as usize;
        for b in 0..32 {
            let irq = first + b;
            if irq < NUM_IRQS && value & (1 << b) != 0 {
                f(self, irq);
            }
        }
    }

    /// Distributor read (32-bit).
    pub fn dist_read(&mut self, offset: u64) -> u32 {
        match offset {
            GICD_CTLR => self.dist_ctlr,
            GICD_TYPER => (NUM_IRQS as u32 / 32) - 1,
            GICD_IIDR => 0x0000_043b,
            0x080..=0x0fc => 0,
            0x100..=0x17c => self.bits_read(GICD_ISENABLER, offset & !3, |g, i| g.enabled[i]),
            0x180..=0x1fc => self.bits_read(GICD_ICENABLER, offset & !3, |g, i| g.enabled[i]),
            0x200..=0x27c => self.bits_read(GICD_ISPENDR, offset & !3, |g, i| g.is_pending(i)),
            0x280..=0x2fc => self.bits_read(GICD_ICPENDR, offset & !3, |g, i| g.is_pending(i)),
            0x300..=0x37c => self.bits_read(GICD_ISACTIVER, offset & !3, |g, i| g.active[i]),
            0x380..=0x3fc => self.bits_read(GICD_ICACTIVER, offset & !3, |g, i| g.active[i]),
            0x400..=0x7fb => self.bytes_read(GICD_IPRIORITYR, offset, |g, i| g.priority[i]),
            0x800..=0xbfb => self.bytes_read(GICD_ITARGETSR, offset, |g, i| g.targets[i]),
            0xc00..=0xcfc => {
                let first = ((offset & !3) - GICD_ICFGR) as usize / 4 * 16;
                let mut v = 0;
                for k in 0..16 {
                    if first + k < NUM_IRQS {
                        v |= (self.config[first + k] as u32 & 3) << (2 * k);
                    }
                }
                v
            }
            0xfd0..=0xffc if offset.is_multiple_of(4) => DIST_ID[((offset - 0xfd0) / 4) as usize] as u32,
            _ => {
                self.dist_bad.read(offset);
                0
            }
        }
    }

    fn bytes_read(&self, base: u64, offset: u64, f: impl Fn(&Self, usize) -> u8) -> u32 {
        let first = ((offset & !3) - base) as usize;
        let mut v = 0;
        for k in 0..4 {
            if first + k < NUM_IRQS {
                v |= (f(self, first + k) as u32) << (8 * k);
            }
        }
        v
    }

    /// Distributor write (32-bit).
    pub fn dist_write(&mut self, offset: u64, value: u32) {
        match offset {
            GICD_CTLR => self.dist_ctlr = value & 1,
            0x080..=0x0fc => {}
            0x100..=0x17c => self.bits_write(GICD_ISENABLER, offset & !3, value, |g, i| {
                if i >= 16 {
                    g.enabled[i] = true
                }
            }),
            0x180..=0x1fc => self.bits_write(GICD_ICENABLER, offset & !3, value, |g, i| {
                if i >= 16 {
                    g.enabled[i] = false
                }
            }),
            0x200..=0x27c => self.bits_write(GICD_ISPENDR, offset & !3, value, |g, i| {
                if i >= 16 {
                    g.latch[i] = true
                }
            }),
            0x280..=0x2fc => self.bits_write(GICD_ICPENDR, offset & !3, value, |g, i| {
                if i >= 16 {
                    g.latch[i] = false
                }
            }),
            0x300..=0x37c => self.dist_bad.write(offset, value), // read-only in GICv1
            0x380..=0x3fc => self.bits_write(GICD_ICACTIVER, offset & !3, value, |g, i| g.deactivate(i)),
            0x400..=0x7fb => {
                let first = ((offset & !3) - GICD_IPRIORITYR) as usize;
                for k in 0..4 {
                    if first + k < NUM_IRQS {
                        self.priority[first + k] = (value >> (8 * k)) as u8 & PRIORITY_MASK;
                    }
                }
            }
            0x800..=0xbfb => {
                let first = ((offset & !3) - GICD_ITARGETSR) as usize;
                for k in 0..4 {
                    // SGI/PPI targets are read-only (always this CPU); one CPU: bit 0 only.
                    if first + k >= 32 && first + k < NUM_IRQS {
                        self.targets[first + k] = (value >> (8 * k)) as u8 & 1;
                    }
                }
            }
            0xc00..=0xcfc => {
                let first = ((offset & !3) - GICD_ICFGR) as usize / 4 * 16;
                for k in 0..16 {
                    let irq = first + k;
                    if (16..NUM_IRQS).contains(&irq) {
                        self.config[irq] = ((value >> (2 * k)) & 3) as u8;
                    }
                }
            }
            GICD_SGIR => {
                let id = (value & 0xf) as usize;
                let hit = match (value >> 24) & 3 {
                    0 => (value >> 16) & 1 != 0,
                    2 => true,
                    _ => false,
                };
                if hit {
                    self.latch[id] = true;
                }
            }
            _ => self.dist_bad.write(offset, value),
        }
    }

    /// CPU interface read (32-bit).
    pub fn cpu_read(&mut self, offset: u64) -> u32 {
        match offset {
            GICC_CTLR => self.cpu_ctlr,
            GICC_PMR => self.pmr as u32,
            GICC_BPR => self.bpr,
            GICC_IAR => self.acknowledge(),
            GICC_RPR => self.active_stack.last().map(|&(_, p)| p as u32).unwrap_or(0xff),
            GICC_HPPIR => {
                if self.cpu_ctlr & 1 == 0 {
                    SPURIOUS_ID
                } else {
                    self.hppi().map(|(id, _)| id).unwrap_or(SPURIOUS_ID)
                }
            }
            GICC_ABPR => self.abpr,
            GICC_IIDR => 0x0001_043b,
            _ => {
                self.cpu_bad.read(offset);
                0
            }
        }
    }

    /// CPU interface write (32-bit).
    pub fn cpu_write(&mut self, offset: u64, value: u32) {
        match offset {
            GICC_CTLR => self.cpu_ctlr = value & 1,
            GICC_PMR => self.pmr = value as u8 & PRIORITY_MASK,
            GICC_BPR => self.bpr = (value & 7).max(BPR_MIN),
            GICC_EOIR => self.end_of_interrupt(value),
            GICC_ABPR => self.abpr = (value & 7).max(BPR_MIN + 1),
            _ => self.cpu_bad.write(offset, value),
        }
    }
}

/// The distributor window of a [`Gic`].
pub struct Distributor<'a>(&'a mut Gic);

impl MmioDevice for Distributor<'_> {
    fn name(&self) -> &'static str {
        "gic-dist"
    }
    fn read(&mut self, offset: u64) -> u32 {
        self.0.dist_read(offset)
    }
    fn write(&mut self, offset: u64, value: u32) {
        self.0.dist_write(offset, value)
    }
    fn bad_accesses(&self) -> &BadAccessLog {
        &self.0.dist_bad
    }
    fn is_storage_register(&self, offset: u64) -> bool {
        matches!(offset, 0x400..=0xbfb | 0xc00..=0xcfc | GICD_CTLR)
    }
}

/// The CPU interface window of a [`Gic`].
pub struct CpuInterface<'a>(&'a mut Gic);

impl MmioDevice for CpuInterface<'_> {
    fn name(&self) -> &'static str {
        "gic-cpu"
    }
    fn read(&mut self, offset: u64) -> u32 {
        self.0.cpu_read(offset)
    }
    fn write(&mut self, offset: u64, value: u32) {
        self.0.cpu_write(offset, value)
    }
    fn bad_accesses(&self) -> &BadAccessLog {
        &self.0.cpu_bad
    }
    fn is_storage_register(&self, offset: u64) -> bool {
        matches!(offset, GICC_CTLR | GICC_PMR | GICC_BPR | GICC_ABPR)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Enable distributor + CPU interface, PMR open, SPI `spi` enabled with
    /// priority `prio` targeting CPU 0.
    fn setup(g: &mut Gic, spi: u32, prio: u8) {
        let id = 32 + spi as u64;
        g.dist_write(GICD_CTLR, 1);
        g.cpu_write(GICC_CTLR, 1);
        g.cpu_write(GICC_PMR, 0xf0);
        g.distributor().write_sized(GICD_IPRIORITYR + id, 1, prio as u64);
        g.distributor().write_sized(GICD_ITARGETSR + id, 1, 1);
        g.dist_write(GICD_ISENABLER + (id / 32) * 4, 1 << (id % 32));
    }

    #[test]
    fn typer_and_ids() {
        let mut g = Gic::new();
        assert_eq!(g.dist_read(GICD_TYPER) & 0x1f, 2, "96 interrupt IDs");
        assert_eq!(g.dist_read(0xfe0), 0x90);
        assert_eq!(g.dist_read(0xffc), 0xb1);
        assert_eq!(g.dist_read(GICD_ISENABLER), 0xffff, "SGIs always enabled");
        assert_eq!(g.dist_read(GICD_ITARGETSR), 0x0101_0101);
        assert_eq!(g.dist_read(GICD_ICFGR), 0xaaaa_aaaa);
    }

    #[test]
    fn level_spi_ack_eoi() {
        let mut g = Gic::new();
        setup(&mut g, 5, 0xa0);
        assert!(!g.irq_pending());
        g.set_spi_level(5, true);
        assert!(g.irq_pending());
        assert_eq!(g.cpu_read(GICC_HPPIR), 37);
        assert_eq!(g.cpu_read(GICC_IAR), 37);
        assert_eq!(g.cpu_read(GICC_RPR), 0xa0);
        assert!(!g.irq_pending(), "active interrupt is not re-signalled");
        assert!(g.is_irq_active(37) && g.is_irq_pending(37));
        g.set_spi_level(5, false);
        g.cpu_write(GICC_EOIR, 37);
        assert_eq!(g.cpu_read(GICC_RPR), 0xff);
        assert!(!g.irq_pending());
        assert_eq!(g.cpu_read(GICC_IAR), SPURIOUS_ID);
    }

    #[test]
    fn level_still_high_after_eoi_resignals() {
        let mut g = Gic::new();
        setup(&mut g, 2, 0x80);
        g.set_spi_level(2, true);
        assert_eq!(g.cpu_read(GICC_IAR), 34);
        g.cpu_write(GICC_EOIR, 34);
        assert!(g.irq_pending());
    }

    #[test]
    fn edge_spi_latches() {
        let mut g = Gic::new();
        setup(&mut g, 52, 0x80);
        g.dist_write(GICD_ICFGR + (84 / 16) * 4, 0b10 << ((84 % 16) * 2));
        g.set_spi_level(52, true);
        g.set_spi_level(52, false);
        assert!(g.irq_pending());
        assert_eq!(g.cpu_read(GICC_IAR), 84);
        g.cpu_write(GICC_EOIR, 84);
        assert!(!g.irq_pending());
    }

    #[test]
    fn masking_by_enable_target_pmr_and_ctlr() {
        let mut g = Gic::new();
        setup(&mut g, 5, 0xa0);
        g.set_spi_level(5, true);
        g.cpu_write(GICC_PMR, 0xa0);
        assert!(!g.irq_pending(), "priority must be below PMR");
        g.cpu_write(GICC_PMR, 0xa8);
        assert!(g.irq_pending());
        g.distributor().write_sized(GICD_ITARGETSR + 37, 1, 0);
        assert!(!g.irq_pending(), "not targeted at CPU 0");
        g.distributor().write_sized(GICD_ITARGETSR + 37, 1, 1);
        g.dist_write(GICD_ICENABLER + 4, 1 << 5);
        assert!(!g.irq_pending());
        g.dist_write(GICD_ISENABLER + 4, 1 << 5);
        g.cpu_write(GICC_CTLR, 0);
        assert!(!g.irq_pending());
        assert_eq!(g.cpu_read(GICC_IAR), SPURIOUS_ID);
        g.cpu_write(GICC_CTLR, 1);
        g.dist_write(GICD_CTLR, 0);
        assert!(!g.irq_pending());
    }

    #[test]
    fn priority_order_and_preemption() {
        let mut g = Gic::new();
        setup(&mut g, 2, 0xa0);
        setup(&mut g, 5, 0x40);
        setup(&mut g, 6, 0x40);
        g.set_spi_level(2, true);
        assert_eq!(g.cpu_read(GICC_IAR), 34);
        g.set_spi_level(6, true);
        g.set_spi_level(5, true);
        assert!(g.irq_pending(), "higher priority preempts");
        assert_eq!(g.cpu_read(GICC_IAR), 37, "lowest ID wins a tie");
        assert!(!g.irq_pending(), "same group priority does not preempt");
        g.set_spi_level(5, false);
        g.cpu_write(GICC_EOIR, 37);
        assert_eq!(g.cpu_read(GICC_RPR), 0xa0);
        assert_eq!(g.cpu_read(GICC_IAR), 38);
        g.cpu_write(GICC_EOIR, 38);
        g.cpu_write(GICC_EOIR, 34);
        assert_eq!(g.cpu_read(GICC_RPR), 0xff);
    }

    #[test]
    fn priority_bits_and_byte_access() {
        let mut g = Gic::new();
        g.dist_write(GICD_IPRIORITYR + 32, 0xffff_ffff);
        assert_eq!(g.dist_read(GICD_IPRIORITYR + 32), 0xf8f8_f8f8);
        g.distributor().write_sized(GICD_IPRIORITYR + 33, 1, 0x10);
        assert_eq!(g.dist_read(GICD_IPRIORITYR + 32), 0xf8f8_10f8);
        assert_eq!(g.distributor().read_sized(GICD_IPRIORITYR + 33, 1), 0x10);
        g.cpu_write(GICC_BPR, 0);
        assert_eq!(g.cpu_read(GICC_BPR), BPR_MIN);
    }

    #[test]
    fn sgi_and_software_pending() {
        let mut g = Gic::new();
        g.dist_write(GICD_CTLR, 1);
        g.cpu_write(GICC_CTLR, 1);
        g.cpu_write(GICC_PMR, 0xff);
        g.dist_write(GICD_SGIR, (1 << 16) | 3);
        assert_eq!(g.cpu_read(GICC_IAR), 3);
        g.cpu_write(GICC_EOIR, 3);
        g.dist_write(GICD_SGIR, (1 << 24) | 4); // others only: nobody
        assert!(!g.irq_pending());
        setup(&mut g, 10, 0x80);
        g.dist_write(GICD_ISPENDR + 4, 1 << 10);
        assert_eq!(g.dist_read(GICD_ISPENDR + 4), 1 << 10);
        g.dist_write(GICD_ICPENDR + 4, 1 << 10);
        assert!(!g.irq_pending());
    }

    #[test]
    fn out_of_range_inputs_ignored() {
        let mut g = Gic::new();
        g.set_spi_level(64, true);
        g.set_spi_level(u32::MAX, true);
        g.set_ppi_level(3, true);
        g.cpu_write(GICC_EOIR, 1023);
        g.cpu_write(GICC_EOIR, 0xffff_ffff);
        assert_eq!(g.dist_read(GICD_ISENABLER + 0x7c), 0);
        assert_eq!(g.dist_read(0xd00), 0);
        assert_eq!(g.cpu_read(0x40), 0);
        assert_eq!(g.distributor().bad_accesses().count(), 1);
        assert_eq!(g.cpu_interface().bad_accesses().count(), 1);
    }

    #[test]
    fn garbage_never_panics() {
        let mut g = Gic::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..50_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let off = (x >> 32) & 0xfff;
            let size = [1usize, 2, 4, 8][(x & 3) as usize];
            match (x >> 2) & 7 {
                0 => g.distributor().write_sized(off, size, x >> 11),
                1 => {
                    g.distributor().read_sized(off, size);
                }
                2 => g.cpu_interface().write_sized(off & 0xff, size, x >> 7),
                3 => {
                    g.cpu_interface().read_sized(off & 0xff, size);
                }
                4 => g.set_spi_level((x >> 40) as u32 % 70, x & 0x100 != 0),
                _ => {
                    if g.irq_pending() {
                        let id = g.cpu_read(GICC_IAR);
                        g.cpu_write(GICC_EOIR, id);
                    }
                }
            }
        }
    }
}
