//! Cortex-A9 MPCore private timer and watchdog ("TWD"), one core: Linux's
//! `arm,cortex-a9-twd-timer` clock event device (its tick, PPI 29) and
//! `arm,cortex-a9-twd-wdt` (PPI 30).
//!
//! Reference: ARM DDI 0407 (Cortex-A9 MPCore TRM), 4.1 "About the private
//! timer and watchdog blocks". The counters run at PERIPHCLK / (prescaler
//! + 1) with PERIPHCLK = 100 MHz, as QEMU's `arm_mptimer` (10 ns a tick):
//! Linux calibrates the rate against its jiffies, so the same kernel sees
//! the same rate on both.
use super::{BadAccessLog, MmioDevice};

pub const TWD_TIMER_LOAD: u64 = 0x00;
pub const TWD_TIMER_COUNTER: u64 = 0x04;
pub const TWD_TIMER_CONTROL: u64 = 0x08;
pub const TWD_TIMER_INTSTAT: u64 = 0x0c;
pub const TWD_WDOG_LOAD: u64 = 0x20;
pub const TWD_WDOG_COUNTER: u64 = 0x24;
pub const TWD_WDOG_CONTROL: u64 = 0x28;
pub const TWD_WDOG_INTSTAT: u64 = 0x2c;
pub const TWD_WDOG_RESETSTAT: u64 = 0x30;
pub const TWD_WDOG_DISABLE: u64 = 0x34;

pub const TWD_CONTROL_ENABLE: u32 = 1 << 0;
pub const TWD_CONTROL_AUTO_RELOAD: u32 = 1 << 1;
pub const TWD_CONTROL_IT_ENABLE: u32 = 1 << 2;
/// Watchdog control only: watchdog (reset) mode instead of timer mode.
pub const TWD_WDOG_MODE: u32 = 1 << 3;
/// The two magic words that leave watchdog mode (written in this order).
pub const TWD_WDOG_DISABLE_KEY1: u32 = 0x1234_5678;
pub const TWD_WDOG_DISABLE_KEY2: u32 = 0x8765_4321;

/// PPI interrupt IDs (GIC IDs 29 and 30).
pub const TWD_TIMER_PPI: u32 = 29;
pub const TWD_WDOG_PPI: u32 = 30;
/// Nanoseconds per PERIPHCLK tick (100 MHz).
pub const PERIPHCLK_NS: u64 = 10;

/// One down-counter (the private timer or the watchdog).
#[derive(Debug, Clone, Default)]
struct Counter {
    load: u32,
    counter: u32,
    control: u32,
    status: u32,
    /// Virtual time of the last whole tick accounted for.
    last_ns: u64,
}

impl Counter {
    fn period_ns(&self) -> u64 {
        (((self.control >> 8) & 0xff) as u64 + 1) * PERIPHCLK_NS
    }
    fn enabled(&self) -> bool {
        self.control & TWD_CONTROL_ENABLE != 0
    }
    fn auto_reload(&self) -> bool {
        self.control & TWD_CONTROL_AUTO_RELOAD != 0
    }
    /// Count down to `now`; true when the counter reached zero.
    fn advance_to(&mut self, now: u64) -> bool {
        if !self.enabled() {
            self.last_ns = now;
            return false;
        }
        if now <= self.last_ns {
            return false;
        }
        let period = self.period_ns();
        let mut t = (now - self.last_ns) / period;
        self.last_ns += t * period;
        if t == 0 {
            return false;
        }
        let mut fired = false;
        if self.counter == 0 {
            // Expired earlier: an auto-reload counter reloads on the next tick.
            if !self.auto_reload() {
                return false;
            }
        } else if t < self.counter as u64 {
            self.counter -= t as u32;
            return false;
        } else {
            t -= self.counter as u64;
            self.counter = 0;
            fired = true;
            if !self.auto_reload() {
                return true;
            }
        }
        if t > 0 && self.auto_reload() {
            // One tick reloads, `load` ticks count down to zero again.
            let cycle = self.load as u64 + 1;
            let r = t % cycle;
            if t >= cycle {
                fired = true;
            }
            if r == 0 {
                self.counter = 0;
            } else {
                self.counter = (self.load as u64 - (r - 1)) as u32;
                if self.counter == 0 {
                    fired = true;
                }
            }
        }
        fired
    }
    /// When the counter next reaches zero.
    fn next_zero_ns(&self) -> Option<u64> {
        if !self.enabled() {
            return None;
        }
        let ticks = if self.counter > 0 {
            self.counter as u64
        } else if self.auto_reload() {
            self.load as u64 + 1
        } else {
            return None;
        };
        Some(self.last_ns + ticks * self.period_ns())
    }
}

/// The private timer and the watchdog of the (only) core.
#[derive(Debug, Clone, Default)]
pub struct Twd {
    timer: Counter,
    wdog: Counter,
    reset_status: u32,
    disable_key: bool,
    reset_request: bool,
    now: u64,
    log: BadAccessLog,
}

impl Twd {
    pub fn new() -> Self {
        Self::default()
    }
    /// PPI 29: the private timer's event flag with its interrupt enabled.
    pub fn timer_irq(&self) -> bool {
        self.timer.status & 1 != 0 && self.timer.control & TWD_CONTROL_IT_ENABLE != 0
    }
    /// PPI 30: the watchdog in timer mode, event flag with interrupt enabled.
    pub fn wdog_irq(&self) -> bool {
        self.wdog.control & TWD_WDOG_MODE == 0 && self.wdog.status & 1 != 0 && self.wdog.control & TWD_CONTROL_IT_ENABLE != 0
    }
    /// The watchdog (in watchdog mode) expired: the core must reset.
    pub fn take_reset_request(&mut self) -> bool {
        std::mem::take(&mut self.reset_request)
    }
    fn wdog_expired(&mut self) {
        if self.wdog.control & TWD_WDOG_MODE != 0 {
            self.reset_status = 1;
            self.reset_request = true;
        } else {
            self.wdog.status = 1;
        }
    }
}

impl MmioDevice for Twd {
    fn name(&self) -> &'static str {
        "twd"
    }
    fn read(&mut self, offset: u64) -> u32 {
        match offset {
            TWD_TIMER_LOAD => self.timer.load,
            TWD_TIMER_COUNTER => self.timer.counter,
            TWD_TIMER_CONTROL => self.timer.control,
            TWD_TIMER_INTSTAT => self.timer.status,
            TWD_WDOG_LOAD => self.wdog.load,
            TWD_WDOG_COUNTER => self.wdog.counter,
            TWD_WDOG_CONTROL => self.wdog.control,
            TWD_WDOG_INTSTAT => self.wdog.status,
            TWD_WDOG_RESETSTAT => self.reset_status,
            _ => {
                self.log.read(offset);
                0
            }
        }
    }
    fn write(&mut self, offset: u64, value: u32) {
        let now = self.now;
        match offset {
            // Writing Load also sets the counter (TRM 4.2.1).
            TWD_TIMER_LOAD => {
                self.timer.load = value;
                self.timer.counter = value;
                self.timer.last_ns = now;
            }
            TWD_TIMER_COUNTER => {
                self.timer.counter = value;
                self.timer.last_ns = now;
            }
            TWD_TIMER_CONTROL => {
                if !self.timer.enabled() {
                    self.timer.last_ns = now;
                }
                self.timer.control = value & 0xff07;
            }
            TWD_TIMER_INTSTAT => self.timer.status &= !(value & 1),
            TWD_WDOG_LOAD => {
                self.wdog.load = value;
                self.wdog.counter = value;
                self.wdog.last_ns = now;
            }
            TWD_WDOG_COUNTER => self.log.write(offset, value),
            TWD_WDOG_CONTROL => {
                if !self.wdog.enabled() {
                    self.wdog.last_ns = now;
                }
                // Watchdog mode can only be left through the disable keys.
                let keep = self.wdog.control & TWD_WDOG_MODE;
                self.wdog.control = (value & 0xff0f) | keep;
            }
            TWD_WDOG_INTSTAT => self.wdog.status &= !(value & 1),
            TWD_WDOG_RESETSTAT => self.reset_status &= !(value & 1),
            TWD_WDOG_DISABLE => {
                if value == TWD_WDOG_DISABLE_KEY1 {
                    self.disable_key = true;
                } else if value == TWD_WDOG_DISABLE_KEY2 && self.disable_key {
                    self.wdog.control &= !TWD_WDOG_MODE;
                    self.disable_key = false;
                } else {
                    self.disable_key = false;
                }
            }
            _ => self.log.write(offset, value),
        }
    }
    fn bad_accesses(&self) -> &BadAccessLog {
        &self.log
    }
    fn advance_to(&mut self, now_ns: u64) {
        self.now = now_ns;
        if self.timer.advance_to(now_ns) {
            self.timer.status = 1;
        }
        if self.wdog.advance_to(now_ns) {
            self.wdog_expired();
        }
    }
    fn next_deadline_ns(&self) -> Option<u64> {
        let t = if self.timer.control & TWD_CONTROL_IT_ENABLE != 0 && self.timer.status == 0 { self.timer.next_zero_ns() } else { None };
        let w = if self.wdog.control & (TWD_CONTROL_IT_ENABLE | TWD_WDOG_MODE) != 0 { self.wdog.next_zero_ns() } else { None };
        match (t, w) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oneshot_event_like_linux_set_next_event() {
        let mut t = Twd::new();
        t.advance_to(1000);
        // twd_set_next_event: counter = evt, enable with IRQ, no reload
        t.write(TWD_TIMER_COUNTER, 100);
        t.write(TWD_TIMER_CONTROL, TWD_CONTROL_ENABLE | TWD_CONTROL_IT_ENABLE);
        assert_eq!(t.next_deadline_ns(), Some(1000 + 100 * PERIPHCLK_NS));
        t.advance_to(1000 + 99 * PERIPHCLK_NS);
        assert!(!t.timer_irq());
        assert_eq!(t.read(TWD_TIMER_COUNTER), 1);
        t.advance_to(1000 + 100 * PERIPHCLK_NS);
        assert!(t.timer_irq());
        assert_eq!(t.next_deadline_ns(), None);
        t.write(TWD_TIMER_INTSTAT, 1);
        assert!(!t.timer_irq());
        t.advance_to(10_000_000);
        assert!(!t.timer_irq(), "a one-shot fires once");
    }

    #[test]
    fn periodic_with_prescaler() {
        let mut t = Twd::new();
        t.write(TWD_TIMER_LOAD, 9);
        t.write(TWD_TIMER_CONTROL, (1 << 8) | TWD_CONTROL_ENABLE | TWD_CONTROL_AUTO_RELOAD | TWD_CONTROL_IT_ENABLE);
        // 20 ns a tick; the counter starts at 9: zero after 9 ticks
        assert_eq!(t.next_deadline_ns(), Some(180));
        t.advance_to(180);
        assert!(t.timer_irq());
        t.write(TWD_TIMER_INTSTAT, 1);
        // reload tick + 9 more: the next zero one period (10 ticks) later
        assert_eq!(t.next_deadline_ns(), Some(380));
        t.advance_to(370);
        assert!(!t.timer_irq());
        t.advance_to(380);
        assert!(t.timer_irq());
        t.write(TWD_TIMER_INTSTAT, 1);
        // skipping many periods at once (idle) still fires and stays in phase
        t.advance_to(380 + 10 * 200 + 40);
        assert!(t.timer_irq());
        assert_eq!(t.read(TWD_TIMER_COUNTER), 8);
    }

    #[test]
    fn watchdog_mode_requests_reset_and_keys_leave_it() {
        let mut t = Twd::new();
        t.write(TWD_WDOG_LOAD, 5);
        t.write(TWD_WDOG_CONTROL, TWD_CONTROL_ENABLE | TWD_WDOG_MODE);
        t.advance_to(50);
        assert!(t.take_reset_request());
        assert_eq!(t.read(TWD_WDOG_RESETSTAT), 1);
        t.write(TWD_WDOG_CONTROL, 0);
        assert_ne!(t.read(TWD_WDOG_CONTROL) & TWD_WDOG_MODE, 0);
        t.write(TWD_WDOG_DISABLE, TWD_WDOG_DISABLE_KEY1);
        t.write(TWD_WDOG_DISABLE, TWD_WDOG_DISABLE_KEY2);
        assert_eq!(t.read(TWD_WDOG_CONTROL) & TWD_WDOG_MODE, 0);
        assert!(!t.wdog_irq());
    }
}
