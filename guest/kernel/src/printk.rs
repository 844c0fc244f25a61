//! printk: the kernel log ring (`dmesg`) and the console, with Linux's
//! `[    0.000000] ` time stamps (sched_clock, i.e. virtual time).
use core::fmt::{self, Write};

const LOG_LEN: usize = 128 * 1024;

struct LogRing {
    buf: [u8; LOG_LEN],
    /// Total bytes ever written; the ring holds the last LOG_LEN.
    head: usize,
}

static LOG: crate::arch::Guarded<LogRing> = crate::arch::Guarded::new_with(LogRing { buf: [0; LOG_LEN], head: 0 });

/// Run `f` on the log with IRQs masked (an IRQ handler's printk waits
/// instead of finding the log borrowed).
fn with_log<R>(f: impl FnOnce(&mut LogRing) -> R) -> R {
    crate::arch::without_irqs(|| LOG.with(f)).unwrap_or_else(|| unreachable!("the log is always present"))
}

impl LogRing {
    fn push(&mut self, b: &[u8]) {
        for &c in b {
            self.buf[self.head % LOG_LEN] = c;
            self.head += 1;
        }
    }
}

/// A fixed line buffer used to format one record.
pub struct LineBuf {
    pub buf: [u8; 1024],
    pub len: usize,
}
impl LineBuf {
    pub const fn new() -> Self {
        LineBuf { buf: [0; 1024], len: 0 }
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(self.as_bytes()).unwrap_or("")
    }
}
impl Write for LineBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// Log one message: each line gets a time stamp, goes to the ring and to
/// the console.
pub fn printk(args: fmt::Arguments) {
    let mut lb = LineBuf::new();
    let _ = lb.write_fmt(args);
    let ns = crate::time::sched_clock();
    let mut stamp = LineBuf::new();
    let _ = write!(stamp, "[{:5}.{:06}] ", ns / 1_000_000_000, (ns % 1_000_000_000) / 1000);
    for line in lb.as_bytes().split_inclusive(|&c| c == b'\n') {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        with_log(|l| {
            l.push(stamp.as_bytes());
            l.push(line);
            l.push(b"\n");
        });
        crate::console::write_bytes(stamp.as_bytes());
        crate::console::write_bytes(line);
        crate::console::write_bytes(b"\n");
    }
}

/// Write the whole log ring (what `dmesg` prints).
pub fn dump(out: &mut dyn FnMut(&[u8])) {
    with_log(|l| {
        let start = l.head.saturating_sub(LOG_LEN);
        let mut i = start;
        // skip a partial first line when the ring has wrapped
        if start > 0 {
            while i < l.head && l.buf[i % LOG_LEN] != b'\n' {
                i += 1;
            }
            i += 1;
        }
        let mut chunk = [0u8; 256];
        while i < l.head {
            let n = (l.head - i).min(chunk.len());
            for (k, c) in chunk[..n].iter_mut().enumerate() {
                *c = l.buf[(i + k) % LOG_LEN];
            }
            out(&chunk[..n]);
            i += n;
        }
    })
}

#[macro_export]
macro_rules! pr_info {
    ($($arg:tt)*) => { $crate::printk::printk(format_args!($($arg)*)) };
}
