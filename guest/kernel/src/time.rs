//! Kernel time: `sched_clock` from the vexpress 24 MHz counter (as Linux's
//! `versatile_sched_clock` does on this board). The host derives that
//! counter from retired instructions, so time here is virtual and
//! deterministic.
use crate::drivers::sysreg;
use core::sync::atomic::{AtomicU64, Ordering};

static LAST: AtomicU64 = AtomicU64::new(0);

/// Nanoseconds since power-on (extends the 32-bit counter across wraps;
/// called at least every tick, well inside the 178 s wrap period).
pub fn sched_clock() -> u64 {
    crate::arch::without_irqs(|| {
        let now32 = sysreg::read(sysreg::SYS_24MHZ) as u64;
        let last = LAST.load(Ordering::Relaxed);
        let mut ext = (last & !0xffff_ffff) | now32;
        if ext < last {
            ext += 1 << 32;
        }
        LAST.store(ext, Ordering::Relaxed);
        ext * 125 / 3 // 1e9 / 24e6 = 41.666…
    })
}
