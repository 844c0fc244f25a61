//! ARM dual-timer module (SP804), after the SP804 TRM (DDI 0271) and QEMU's
//! `hw/timer/arm_timer.c`.
//!
//! Two down-counters at offsets 0x00 and 0x20 share one interrupt output
//! (the vexpress wires `TIMINT1 | TIMINT2` to one SPI, like QEMU). They count
//! TIMCLK = 1 MHz on the vexpress (the SP810 selects the 1 MHz reference),
//! divided by the prescaler (1, 16, 256; the undefined setting 3 counts
//! undivided, as in QEMU).
//!
//! Time is virtual and explicit: the counters are a pure function of the
//! absolute tick count `floor(now_ns * TIMCLK / 1e9)` divided by the
//! prescaler, advanced by [`Sp804::advance_to`]; [`MmioDevice::next_deadline_ns`]
//! tells the board when the next interrupt will be raised so it can skip idle
//! time.
//!
//! Counting follows the TRM: the counter goes `L, L-1, …, 1, 0` (one value
//! per prescaled tick), raises its raw interrupt when it *reaches* 0, and on
//! the next tick reloads — from `Load` in periodic mode (period `L+1`
//! ticks), from `0xFFFF_FFFF` (`0xFFFF` in 16-bit mode) in free-running
//! mode. In one-shot mode it halts at 0 until `Load` is written. Writing
//! `Load` sets the counter immediately; writing `BGLoad` only changes the
//! reload value.

use super::{primecell_id, BadAccessLog, MmioDevice};

/// Load register (offset within a timer's 0x20 block).
pub const TIMER_LOAD: u64 = 0x00;
/// Current value (read-only).
pub const TIMER_VALUE: u64 = 0x04;
/// Control register.
pub const TIMER_CONTROL: u64 = 0x08;
/// Interrupt clear (write-only).
pub const TIMER_INTCLR: u64 = 0x0c;
/// Raw interrupt status.
pub const TIMER_RIS: u64 = 0x10;
/// Masked interrupt status.
pub const TIMER_MIS: u64 = 0x14;
/// Background load.
pub const TIMER_BGLOAD: u64 = 0x18;
/// Offset of the second timer's block.
pub const TIMER2_OFFSET: u64 = 0x20;

/// Control: one-shot mode.
pub const CTRL_ONESHOT: u32 = 1 << 0;
/// Control: 32-bit counter (else 16-bit).
pub const CTRL_32BIT: u32 = 1 << 1;
/// Control: prescale field shift (bits 3:2).
pub const CTRL_PRESCALE_SHIFT: u32 = 2;
/// Control: interrupt enable.
pub const CTRL_IE: u32 = 1 << 5;
/// Control: periodic mode (else free-running).
pub const CTRL_PERIODIC: u32 = 1 << 6;
/// Control: timer enable.
pub const CTRL_ENABLE: u32 = 1 << 7;

/// TIMCLK on the vexpress motherboard.
pub const TIMCLK_HZ: u64 = 1_000_000;
/// PeriphID0..3 (part 0x804, ARM, revision 1), as QEMU's `sp804_ids`.
pub const PERIPH_ID: [u8; 4] = [0x04, 0x18, 0x14, 0x00];

/// One of the two counters.
#[derive(Debug, Clone)]
struct Counter {
    load: u32,
    value: u32,
    control: u32,
    ris: bool,
    /// One-shot counter reached zero and stopped.
    halted: bool,
}

impl Counter {
    fn new() -> Self {
        // TRM reset values: Load 0, Value 0xFFFFFFFF, Control 0x20 (IE set).
        Counter { load: 0, value: 0xffff_ffff, control: CTRL_IE, ris: false, halted: false }
    }

    fn running(&self) -> bool {
        self.control & CTRL_ENABLE != 0 && !self.halted
    }

    fn divider(&self) -> u64 {
        match (self.control >> CTRL_PRESCALE_SHIFT) & 3 {
            1 => 16,
            2 => 256,
            _ => 1,
        }
    }

    fn mask(&self) -> u32 {
        if self.control & CTRL_32BIT != 0 {
            0xffff_ffff
        } else {
            0xffff
        }
    }

    /// Value loaded on the tick after reaching zero.
    fn reload(&self) -> u32 {
        if self.control & CTRL_PERIODIC != 0 {
            self.load & self.mask()
        } else {
            self.mask()
        }
    }

    /// Apply `k` prescaled ticks.
    fn tick(&mut self, k: u64) {
        if k == 0 || !self.running() {
            return;
        }
        let v = (self.value & self.mask()) as u64;
        if k < v {
            self.value = (v - k) as u32;
            return;
        }
        // Reaches zero after v ticks (v may be 0 when it already sits at 0;
        // then the first tick reloads).
        if v > 0 {
            self.ris = true;
            if self.control & CTRL_ONESHOT != 0 {
                self.value = 0;
                self.halted = true;
                return;
            }
        } else if self.control & CTRL_ONESHOT != 0 {
            self.value = 0;
            self.halted = true;
            return;
        }
        let r = k - v; // ticks after sitting at zero
        if r == 0 {
            self.value = 0;
            return;
        }
        let period = self.reload() as u64 + 1;
        // Sitting at 0, r ticks later: 0 -> R -> ... ; zero again every `period`.
        let pos = r % period;
        self.value = ((period - pos) % period) as u32;
        if r >= period {
            self.ris = true;
        }
    }

    /// Prescaled ticks until the counter next reaches zero (None: never).
    fn ticks_to_zero(&self) -> Option<u64> {
        if !self.running() {
            return None;
        }
        let v = (self.value & self.mask()) as u64;
        if v > 0 {
            Some(v)
        } else if self.control & CTRL_ONESHOT != 0 {
            None
        } else {
            Some(self.reload() as u64 + 1)
        }
    }
}

/// An SP804 dual timer.
#[derive(Debug, Clone)]
pub struct Sp804 {
    timers: [Counter; 2],
    /// Absolute TIMCLK ticks at the last `advance_to`.
    timclk: u64,
    now_ns: u64,
    clk_hz: u64,
    bad: BadAccessLog,
}

impl Default for Sp804 {
    fn default() -> Self {
        Self::new()
    }
}

impl Sp804 {
    /// A dual timer clocked at 1 MHz (vexpress TIMCLK).
    pub fn new() -> Self {
        Self::with_clock(TIMCLK_HZ)
    }

    /// A dual timer clocked at `clk_hz` (must be non-zero; 0 is treated as 1 MHz).
    pub fn with_clock(clk_hz: u64) -> Self {
        let clk_hz = if clk_hz == 0 { TIMCLK_HZ } else { clk_hz };
        Sp804 { timers: [Counter::new(), Counter::new()], timclk: 0, now_ns: 0, clk_hz, bad: BadAccessLog::default() }
    }

    fn ns_to_ticks(&self, ns: u64) -> u64 {
        ((ns as u128 * self.clk_hz as u128) / 1_000_000_000u128) as u64
    }

    /// First ns at which the absolute TIMCLK count reaches `ticks`.
    fn ticks_to_ns(&self, ticks: u64) -> u64 {
        let ns = (ticks as u128 * 1_000_000_000u128).div_ceil(self.clk_hz as u128);
        ns.min(u64::MAX as u128) as u64
    }

    /// Bring both counters up to `now_ns` of virtual time (earlier times are ignored).
    pub fn advance_to(&mut self, now_ns: u64) {
        if now_ns <= self.now_ns {
            return;
        }
        self.now_ns = now_ns;
        let new = self.ns_to_ticks(now_ns);
        let old = self.timclk;
        self.timclk = new;
        for t in &mut self.timers {
            let d = t.divider();
            t.tick(new / d - old / d);
        }
    }

    /// Combined interrupt output: either counter's `RIS & IE`.
    pub fn irq_level(&self) -> bool {
        self.timers.iter().any(|t| t.ris && t.control & CTRL_IE != 0)
    }

    /// Per-counter interrupt outputs (TIMINT1, TIMINT2).
    pub fn irq_levels(&self) -> [bool; 2] {
        [0, 1].map(|i| self.timers[i].ris && self.timers[i].control & CTRL_IE != 0)
    }

    /// Virtual time at which a counter with its interrupt enabled will next
    /// raise it (None: no interrupt will come without guest action).
    pub fn next_deadline_ns(&self) -> Option<u64> {
        self.timers
            .iter()
            .filter(|t| t.control & CTRL_IE != 0 && !t.ris)
            .filter_map(|t| {
                let k = t.ticks_to_zero()?;
                let d = t.divider();
                let target = (self.timclk / d).checked_add(k)?.checked_mul(d)?;
                Some(self.ticks_to_ns(target))
            })
            .min()
    }

    fn counter_read(&mut self, i: usize, reg: u64, offset: u64) -> u32 {
        let t = &self.timers[i];
        match reg {
            TIMER_LOAD | TIMER_BGLOAD => t.load,
            TIMER_VALUE => t.value & t.mask(),
            TIMER_CONTROL => t.control,
            TIMER_RIS => t.ris as u32,
            TIMER_MIS => (t.ris && t.control & CTRL_IE != 0) as u32,
            _ => {
                self.bad.read(offset);
                0
            }
        }
    }

    fn counter_write(&mut self, i: usize, reg: u64, offset: u64, value: u32) {
        let t = &mut self.timers[i];
        match reg {
            TIMER_LOAD => {
                t.load = value;
                t.value = value;
                t.halted = false;
            }
            TIMER_BGLOAD => t.load = value,
            TIMER_CONTROL => {
                t.control = value & 0xff;
                if t.control & CTRL_ONESHOT == 0 {
                    t.halted = false;
                }
            }
            TIMER_INTCLR => t.ris = false,
            _ => self.bad.write(offset, value),
        }
    }
}

impl MmioDevice for Sp804 {
    fn name(&self) -> &'static str {
        "sp804"
    }

    fn read(&mut self, offset: u64) -> u32 {
        match offset {
            0x00..=0x1c => self.counter_read(0, offset, offset),
            0x20..=0x3c => self.counter_read(1, offset - TIMER2_OFFSET, offset),
            _ => match primecell_id(offset, PERIPH_ID) {
                Some(v) => v,
                None => {
                    self.bad.read(offset);
                    0
                }
            },
        }
    }

    fn write(&mut self, offset: u64, value: u32) {
        match offset {
            0x00..=0x1c => self.counter_write(0, offset, offset, value),
            0x20..=0x3c => self.counter_write(1, offset - TIMER2_OFFSET, offset, value),
            _ => self.bad.write(offset, value),
        }
    }

    fn bad_accesses(&self) -> &BadAccessLog {
        &self.bad
    }

    fn advance_to(&mut self, now_ns: u64) {
        Sp804::advance_to(self, now_ns)
    }

    fn next_deadline_ns(&self) -> Option<u64> {
        Sp804::next_deadline_ns(self)
    }

    fn is_storage_register(&self, offset: u64) -> bool {
        matches!(offset & 0x1f, TIMER_LOAD | TIMER_BGLOAD | TIMER_CONTROL) && offset < 0x40
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: u64 = 1_000;

    fn periodic(load: u32) -> Sp804 {
        let mut t = Sp804::new();
        t.write(TIMER_LOAD, load);
        t.write(TIMER_CONTROL, CTRL_ENABLE | CTRL_PERIODIC | CTRL_IE | CTRL_32BIT);
        t
    }

    #[test]
    fn reset_state_and_ids() {
        let mut t = Sp804::new();
        assert_eq!(t.read(TIMER_CONTROL), 0x20);
        assert_eq!(t.read(TIMER_VALUE), 0xffff); // 16-bit at reset
        assert_eq!(t.read(0xfe0), 0x04);
        assert_eq!(t.read(0xfe4), 0x18);
        assert_eq!(t.read(0xffc), 0xb1);
        assert!(!t.irq_level());
        assert_eq!(t.next_deadline_ns(), None);
    }

    #[test]
    fn periodic_counts_and_interrupts() {
        let mut t = periodic(999); // period 1000 ticks = 1 ms
        t.advance_to(500 * US);
        assert_eq!(t.read(TIMER_VALUE), 499);
        assert!(!t.irq_level());
        assert_eq!(t.next_deadline_ns(), Some(999 * US));
        t.advance_to(999 * US);
        assert!(t.irq_level());
        assert_eq!(t.read(TIMER_VALUE), 0);
        assert_eq!(t.read(TIMER_MIS), 1);
        t.write(TIMER_INTCLR, 1);
        assert!(!t.irq_level());
        t.advance_to(1000 * US);
        assert_eq!(t.read(TIMER_VALUE), 999);
        assert_eq!(t.next_deadline_ns(), Some(1999 * US));
        // Jump over many periods at once.
        t.advance_to(10_500 * US);
        assert!(t.irq_level());
        assert_eq!(t.read(TIMER_VALUE), 499);
    }

    #[test]
    fn deadline_driven_loop_matches_expected_count() {
        let mut t = periodic(9_999); // 10 ms
        let mut irqs = 0;
        let mut now = 0;
        while let Some(d) = t.next_deadline_ns() {
            if d > 1_000_000_000 {
                break;
            }
            assert!(d > now);
            now = d;
            t.advance_to(now);
            assert!(t.irq_level());
            irqs += 1;
            t.write(TIMER_INTCLR, 0);
        }
        assert_eq!(irqs, 100);
    }

    #[test]
    fn oneshot_halts_at_zero() {
        let mut t = Sp804::new();
        t.write(TIMER_LOAD, 100);
        t.write(TIMER_CONTROL, CTRL_ENABLE | CTRL_ONESHOT | CTRL_IE | CTRL_32BIT);
        t.advance_to(100 * US);
        assert!(t.irq_level());
        t.write(TIMER_INTCLR, 0);
        t.advance_to(10_000 * US);
        assert_eq!(t.read(TIMER_VALUE), 0);
        assert!(!t.irq_level());
        assert_eq!(t.next_deadline_ns(), None);
        t.write(TIMER_LOAD, 50);
        assert_eq!(t.next_deadline_ns(), Some(10_050 * US));
    }

    #[test]
    fn free_running_wraps_16bit() {
        let mut t = Sp804::new();
        t.write(TIMER_LOAD, 10);
        t.write(TIMER_CONTROL, CTRL_ENABLE | CTRL_IE); // free-running, 16-bit
        t.advance_to(11 * US);
        assert_eq!(t.read(TIMER_VALUE), 0xffff);
        assert!(t.irq_level());
    }

    #[test]
    fn prescaler_divides() {
        let mut t = Sp804::new();
        t.write(TIMER_LOAD, 100);
        t.write(TIMER_CONTROL, CTRL_ENABLE | CTRL_PERIODIC | CTRL_32BIT | CTRL_IE | (1 << CTRL_PRESCALE_SHIFT));
        t.advance_to(160 * US);
        assert_eq!(t.read(TIMER_VALUE), 90);
        assert_eq!(t.next_deadline_ns(), Some(1600 * US));
    }

    #[test]
    fn second_timer_and_bgload() {
        let mut t = Sp804::new();
        t.write(0x20 + TIMER_LOAD, 9);
        t.write(0x20 + TIMER_CONTROL, CTRL_ENABLE | CTRL_PERIODIC | CTRL_32BIT | CTRL_IE);
        t.write(0x20 + TIMER_BGLOAD, 19);
        assert_eq!(t.read(0x20 + TIMER_VALUE), 9);
        t.advance_to(9 * US);
        assert_eq!(t.irq_levels(), [false, true]);
        t.advance_to(10 * US);
        assert_eq!(t.read(0x20 + TIMER_VALUE), 19);
    }

    #[test]
    fn disabled_or_masked_gives_no_deadline() {
        let mut t = periodic(5);
        t.write(TIMER_CONTROL, CTRL_PERIODIC | CTRL_IE | CTRL_32BIT);
        assert_eq!(t.next_deadline_ns(), None);
        t.advance_to(100 * US);
        assert_eq!(t.read(TIMER_VALUE), 5);
        t.write(TIMER_CONTROL, CTRL_ENABLE | CTRL_PERIODIC | CTRL_32BIT);
        assert_eq!(t.next_deadline_ns(), None);
        t.advance_to(200 * US);
        assert_eq!(t.read(TIMER_RIS), 1);
        assert!(!t.irq_level());
    }

    #[test]
    fn garbage_never_panics() {
        let mut t = Sp804::with_clock(0);
        let mut x: u64 = 0x1234_5678;
        for i in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let off = (x >> 20) & 0xffc;
            if x & 1 == 0 {
                t.write(off, x as u32);
            } else {
                t.read(off);
            }
            t.advance_to(i * 997);
            let _ = t.next_deadline_ns();
        }
        t.advance_to(u64::MAX);
        let _ = t.next_deadline_ns();
    }
}
