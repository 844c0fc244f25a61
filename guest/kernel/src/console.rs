//! The console: UART0 output, and line input for the shell.
use crate::drivers::uart;
use core::fmt;

pub fn write_bytes(b: &[u8]) {
    uart::write_bytes(b);
}

/// `print!`-style console output (not logged).
pub struct Console;
impl fmt::Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        write_bytes(s.as_bytes());
        Ok(())
    }
}

#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => {{ use core::fmt::Write as _; let _ = write!($crate::console::Console, $($arg)*); }};
}
#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => {{ $crate::print!($($arg)*); $crate::print!("\n"); }};
}

/// Read one line (echoed, with backspace editing) into `buf`; returns its
/// length. Sleeps in WFI while no input is pending.
pub fn read_line(buf: &mut [u8]) -> usize {
    let mut n = 0;
    loop {
        let c = match uart::getc() {
            Some(c) => c,
            None => {
                crate::sched::idle();
                continue;
            }
        };
        match c {
            b'\r' | b'\n' => {
                write_bytes(b"\n");
                return n;
            }
            0x08 | 0x7f => {
                if n > 0 {
                    n -= 1;
                    write_bytes(b"\x08 \x08");
                }
            }
            0x20..=0x7e if n < buf.len() => {
                buf[n] = c;
                n += 1;
                uart::putc(c);
            }
            _ => {}
        }
    }
}
