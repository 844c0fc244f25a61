//! A minimal ftrace: the `cma` and `migrate` event systems, switched on by
//! `echo 1 > /sys/kernel/tracing/events/<system>/enable` (or
//! `events/<system>/<event>/enable`) or `trace_event=` on the command
//! line, recorded as Linux 6.1's text lines in a ring read by
//! `cat /sys/kernel/tracing/trace`.
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

const RING: usize = 256 * 1024;
/// The text ring (one owner; used with IRQs masked).
static BUF: crate::arch::Guarded<[u8; RING]> = crate::arch::Guarded::new_with([0; RING]);
static HEAD: AtomicU64 = AtomicU64::new(0);
static ENTRIES: AtomicU64 = AtomicU64::new(0);
static WRITTEN: AtomicU64 = AtomicU64::new(0);

/// Enabled events: bit per event below.
static ENABLED: AtomicU32 = AtomicU32::new(0);

pub const EVENTS: [(&str, &str); 5] = [
    ("cma", "cma_alloc_start"),
    ("cma", "cma_alloc_finish"),
    ("cma", "cma_alloc_busy_retry"),
    ("cma", "cma_release"),
    ("migrate", "mm_migrate_pages"),
];

fn bit(event: &str) -> Option<u32> {
    EVENTS.iter().position(|(_, e)| *e == event).map(|i| 1 << i)
}

/// Enable or disable `system:event` (`event` may be `*`).
pub fn set(system: &str, event: &str, on: bool) -> bool {
    let mut mask = 0;
    for (i, (s, e)) in EVENTS.iter().enumerate() {
        if (system == "*" || *s == system) && (event == "*" || *e == event) {
            mask |= 1 << i;
        }
    }
    if mask == 0 {
        return false;
    }
    if on {
        ENABLED.fetch_or(mask, Ordering::Relaxed);
    } else {
        ENABLED.fetch_and(!mask, Ordering::Relaxed);
    }
    true
}

/// `trace_event=cma:*,migrate:mm_migrate_pages` (boot parameter).
pub fn boot_param(spec: &str) {
    for item in spec.split(',').filter(|s| !s.is_empty()) {
        let (s, e) = item.split_once(':').unwrap_or((item, "*"));
        if !set(s, e, true) {
            crate::pr_info!("Failed to enable trace event: {}", item);
        }
    }
}

pub fn enabled(event: &str) -> bool {
    bit(event).is_some_and(|b| ENABLED.load(Ordering::Relaxed) & b != 0)
}

/// Read an `enable` file: 0, 1, or X for a mixed system.
pub fn enable_state(system: &str, event: &str) -> Option<char> {
    let mut on = 0;
    let mut total = 0;
    for (i, (s, e)) in EVENTS.iter().enumerate() {
        if (system == "*" || *s == system) && (event == "*" || *e == event) {
            total += 1;
            if ENABLED.load(Ordering::Relaxed) & (1 << i) != 0 {
                on += 1;
            }
        }
    }
    match (on, total) {
        (_, 0) => None,
        (0, _) => Some('0'),
        (a, b) if a == b => Some('1'),
        _ => Some('X'),
    }
}

pub struct Line {
    buf: [u8; 512],
    len: usize,
}
impl Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// Record `event` if enabled, stamped `ns` (the same sched_clock reading
/// as the host's record of it); `body` writes its TP_printk text.
pub fn event(event: &str, ns: u64, body: &dyn Fn(&mut Line) -> fmt::Result) {
    if !enabled(event) {
        return;
    }
    let mut l = Line { buf: [0; 512], len: 0 };
    let _ = write!(
        l,
        "{:>16}-{:<7} [{:03}] ..... {:>5}.{:06}: {}: ",
        "sh",
        1,
        0,
        ns / 1_000_000_000,
        (ns % 1_000_000_000) / 1000,
        event
    );
    let _ = body(&mut l);
    let _ = l.write_str("\n");
    crate::arch::without_irqs(|| {
        BUF.with(|buf| {
            let h = HEAD.load(Ordering::Relaxed);
            for (k, &c) in l.buf[..l.len].iter().enumerate() {
                buf[((h as usize) + k) % RING] = c;
            }
            HEAD.store(h + l.len as u64, Ordering::Relaxed);
            ENTRIES.fetch_add(1, Ordering::Relaxed);
            WRITTEN.fetch_add(1, Ordering::Relaxed);
        })
    });
}

/// `cat /sys/kernel/tracing/trace`.
pub fn dump(out: &mut dyn FnMut(&[u8])) {
    let mut hdr = Line { buf: [0; 512], len: 0 };
    let e = ENTRIES.load(Ordering::Relaxed);
    let w = WRITTEN.load(Ordering::Relaxed);
    let _ = write!(hdr, "# tracer: nop\n#\n# entries-in-buffer/entries-written: {}/{}   #P:1\n#\n", e, w);
    out(&hdr.buf[..hdr.len]);
    out(b"#                                _-----=> irqs-off/BH-disabled\n");
    out(b"#                               / _----=> need-resched\n");
    out(b"#                              | / _---=> hardirq/softirq\n");
    out(b"#                              || / _--=> preempt-depth\n");
    out(b"#                              ||| / _-=> migrate-disable\n");
    out(b"#                              |||| /     delay\n");
    out(b"#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION\n");
    out(b"#              | |         |   |||||     |         |\n");
    crate::arch::without_irqs(|| {
        BUF.with(|buf| {
            let h = HEAD.load(Ordering::Relaxed) as usize;
            let mut i = h.saturating_sub(RING);
            if i > 0 {
                // skip the partial first line of a wrapped ring
                while i < h && buf[i % RING] != b'\n' {
                    i += 1;
                }
                i += 1;
            }
            let mut chunk = [0u8; 256];
            while i < h {
                let n = (h - i).min(chunk.len());
                for (k, c) in chunk[..n].iter_mut().enumerate() {
                    *c = buf[(i + k) % RING];
                }
                out(&chunk[..n]);
                i += n;
            }
        })
    });
}

/// `echo > /sys/kernel/tracing/trace`: clear.
pub fn clear() {
    crate::arch::without_irqs(|| {
        HEAD.store(0, Ordering::Relaxed);
        ENTRIES.store(0, Ordering::Relaxed);
    });
}
