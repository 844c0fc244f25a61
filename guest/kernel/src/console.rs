//! The console: UART0 output, and line input for the shell.
use crate::drivers::uart;
use core::fmt;
use core::sync::atomic::Ordering;

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

/// Ctrl-C (`VINTR`) as the UART's receive interrupt records it.
use crate::drivers::uart::INTERRUPT;

/// Take a pending Ctrl-C: long-running commands poll this and stop (the
/// shell's stand-in for SIGINT); the shell echoes `^C` as the tty does.
pub fn interrupted() -> bool {
    INTERRUPT.swap(false, Ordering::Relaxed)
}

/// Drop a Ctrl-C that arrived while no command could take it.
pub fn clear_interrupt() {
    INTERRUPT.store(false, Ordering::Relaxed);
}

const LINE_MAX: usize = 512;
const HISTORY: usize = 32;

/// The shell's command history (oldest first), like busybox ash's.
struct History {
    lines: [[u8; LINE_MAX]; HISTORY],
    lens: [usize; HISTORY],
    count: usize,
}

/// The shell's line history (one owner: `HIST.with`, held by `read_line`).
static HIST: crate::arch::Guarded<History> =
    crate::arch::Guarded::new_with(History { lines: [[0; LINE_MAX]; HISTORY], lens: [0; HISTORY], count: 0 });

impl History {
    fn get(&self, i: usize) -> &[u8] {
        &self.lines[i][..self.lens[i]]
    }
    /// Remember a non-empty line unless it repeats the last one.
    fn push(&mut self, line: &[u8]) {
        if line.is_empty() || (self.count > 0 && self.get(self.count - 1) == line) {
            return;
        }
        if self.count == HISTORY {
            self.lines.copy_within(1.., 0);
            self.lens.copy_within(1.., 0);
            self.count -= 1;
        }
        self.lines[self.count][..line.len()].copy_from_slice(line);
        self.lens[self.count] = line.len();
        self.count += 1;
    }
}

/// The line being edited: text, cursor, and the terminal updates.
struct Editor<'a> {
    buf: &'a mut [u8],
    len: usize,
    cur: usize,
}

fn cursor_left(n: usize) {
    if n > 0 {
        crate::print!("\x1b[{}D", n);
    }
}

impl Editor<'_> {
    /// Redraw from the cursor to the end, clear what is left, put the
    /// cursor back.
    fn redraw_tail(&self) {
        write_bytes(&self.buf[self.cur..self.len]);
        write_bytes(b"\x1b[K");
        cursor_left(self.len - self.cur);
    }
    fn insert(&mut self, c: u8) {
        if self.len == self.buf.len() {
            return;
        }
        self.buf.copy_within(self.cur..self.len, self.cur + 1);
        self.buf[self.cur] = c;
        self.len += 1;
        self.cur += 1;
        if self.cur == self.len {
            uart::putc(c); // typing at the end echoes only the byte
        } else {
            uart::putc(c);
            self.redraw_tail();
        }
    }
    /// Delete `n` bytes before the cursor.
    fn delete_back(&mut self, n: usize) {
        let n = n.min(self.cur);
        if n == 0 {
            return;
        }
        self.buf.copy_within(self.cur..self.len, self.cur - n);
        self.len -= n;
        self.cur -= n;
        if self.cur == self.len && n == 1 {
            write_bytes(b"\x08 \x08");
        } else {
            cursor_left(n);
            self.redraw_tail();
        }
    }
    fn delete_at(&mut self) {
        if self.cur < self.len {
            self.buf.copy_within(self.cur + 1..self.len, self.cur);
            self.len -= 1;
            self.redraw_tail();
        }
    }
    fn move_to(&mut self, pos: usize) {
        let pos = pos.min(self.len);
        if pos < self.cur {
            cursor_left(self.cur - pos);
        } else if pos > self.cur {
            crate::print!("\x1b[{}C", pos - self.cur);
        }
        self.cur = pos;
    }
    /// Replace the whole line (history).
    fn replace(&mut self, text: &[u8]) {
        self.move_to(0);
        let n = text.len().min(self.buf.len());
        self.buf[..n].copy_from_slice(&text[..n]);
        self.len = n;
        write_bytes(&self.buf[..n]);
        write_bytes(b"\x1b[K");
        self.cur = n;
    }
    /// Ctrl-W: the word before the cursor (and the blanks after it).
    fn word_back(&self) -> usize {
        let mut i = self.cur;
        while i > 0 && self.buf[i - 1] == b' ' {
            i -= 1;
        }
        while i > 0 && self.buf[i - 1] != b' ' {
            i -= 1;
        }
        self.cur - i
    }
}

/// Escape-sequence state of the input (VT100 / xterm keys).
#[derive(Clone, Copy, PartialEq)]
enum Esc {
    None,
    Esc,
    /// `ESC [` or `ESC O`, with a numeric parameter so far.
    Csi(u8),
}

/// Read one line into `buf` with line editing (left/right, Home/End,
/// Delete, backspace, Ctrl-U, Ctrl-W) and history (up/down); returns its
/// length. Ctrl-C drops the line (`^C`, length 0). Everything depends
/// only on the bytes received, so scripted sessions stay deterministic.
/// Sleeps in WFI while no input is pending.
pub fn read_line(buf: &mut [u8]) -> usize {
    HIST.with(|hist| read_line_with(hist, buf)).unwrap_or(0)
}

fn read_line_with(hist: &mut History, buf: &mut [u8]) -> usize {
    let mut ed = Editor { buf, len: 0, cur: 0 };
    let mut esc = Esc::None;
    // position in the history while browsing (count = the new line)
    let mut at = hist.count;
    let mut draft = [0u8; LINE_MAX];
    let mut draft_len = 0;
    clear_interrupt();
    loop {
        if interrupted() {
            write_bytes(b"^C\n");
            return 0;
        }
        let c = match uart::getc() {
            Some(c) => c,
            None => {
                crate::sched::idle();
                continue;
            }
        };
        match esc {
            Esc::Esc => {
                esc = if c == b'[' || c == b'O' { Esc::Csi(0) } else { Esc::None };
                continue;
            }
            Esc::Csi(p) => {
                esc = Esc::None;
                match c {
                    b'0'..=b'9' => esc = Esc::Csi(p.saturating_mul(10).saturating_add(c - b'0')),
                    b'A' | b'B' => {
                        let next = if c == b'A' { at.checked_sub(1) } else { (at < hist.count).then_some(at + 1) };
                        if let Some(n) = next {
                            if at == hist.count {
                                draft_len = ed.len.min(LINE_MAX);
                                draft[..draft_len].copy_from_slice(&ed.buf[..draft_len]);
                            }
                            at = n;
                            if at == hist.count {
                                ed.replace(&draft[..draft_len]);
                            } else {
                                ed.replace(hist.get(at));
                            }
                        }
                    }
                    b'C' => ed.move_to(ed.cur + 1),
                    b'D' => ed.move_to(ed.cur.saturating_sub(1)),
                    b'H' => ed.move_to(0),
                    b'F' => ed.move_to(ed.len),
                    b'~' if p == 1 || p == 7 => ed.move_to(0),
                    b'~' if p == 4 || p == 8 => ed.move_to(ed.len),
                    b'~' if p == 3 => ed.delete_at(),
                    _ => {}
                }
                continue;
            }
            Esc::None => {}
        }
        match c {
            b'\r' | b'\n' => {
                ed.move_to(ed.len);
                write_bytes(b"\n");
                hist.push(&ed.buf[..ed.len]);
                return ed.len;
            }
            0x1b => esc = Esc::Esc,
            0x08 | 0x7f => ed.delete_back(1),
            0x15 => ed.delete_back(ed.cur),   // Ctrl-U
            0x17 => ed.delete_back(ed.word_back()), // Ctrl-W
            0x20..=0x7e => ed.insert(c),
            _ => {}
        }
    }
}
