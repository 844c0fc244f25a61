//! The board's console: UART0 output to the user, input from the user.
//!
//! Determinism: with a pipe or a script, input is handed to the guest one
//! line at a time, and only while the CPU is idle (WFI) — so the virtual
//! time at which each line arrives depends only on the guest, never on host
//! scheduling. A TTY is interactive and paced by the wall clock.
use crossbeam_channel::{Receiver, RecvTimeoutError};
use std::collections::VecDeque;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

/// Longest output line kept for the tail (the rest of a longer line is
/// dropped from the tail, never from the output itself).
pub const MAX_LINE: usize = 4096;

/// Where console input comes from.
pub enum Input {
    /// No input at all.
    None,
    /// A fixed script (tests, benchmarks): delivered line by line.
    Script(VecDeque<u8>),
    /// Lines from a reader thread (stdin as a pipe or a file).
    Lines(Receiver<Vec<u8>>),
    /// Raw bytes from a terminal in raw mode (interactive).
    Tty(Receiver<Vec<u8>>),
}

/// A sink for console output shared with the caller (tests read it).
#[derive(Clone, Default)]
pub struct Capture(pub Arc<parking_lot::Mutex<Vec<u8>>>);

impl Capture {
    pub fn contents(&self) -> Vec<u8> {
        self.0.lock().clone()
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock()).into_owned()
    }
}

pub struct Console {
    pub input: Input,
    /// Bytes read from the input but not yet accepted by the UART.
    pub pending: VecDeque<u8>,
    pub eof: bool,
    /// Where output goes: the terminal and/or a capture buffer.
    pub stdout: bool,
    pub capture: Option<Capture>,
    /// The last lines of output, for failure reports.
    pub tail: VecDeque<String>,
    line: Vec<u8>,
    /// Ctrl-A pressed (TTY escape), waiting for the command key.
    escape: bool,
    pub quit: bool,
    /// The last value the guest wrote to `SYS_CMAEMU_PROMPT` (None: never).
    prompt_flag: Option<bool>,
}

/// The console's own state for a machine snapshot (the input source and
/// the capture buffer are saved by the caller).
#[derive(Clone)]
pub struct ConsoleState {
    pending: VecDeque<u8>,
    eof: bool,
    tail: VecDeque<String>,
    line: Vec<u8>,
    escape: bool,
    quit: bool,
    prompt_flag: Option<bool>,
}

impl Console {
    /// Its state for a snapshot.
    pub fn save(&self) -> ConsoleState {
        ConsoleState {
            pending: self.pending.clone(),
            eof: self.eof,
            tail: self.tail.clone(),
            line: self.line.clone(),
            escape: self.escape,
            quit: self.quit,
            prompt_flag: self.prompt_flag,
        }
    }

    /// Back to a saved state.
    pub fn restore(&mut self, s: &ConsoleState) {
        self.pending = s.pending.clone();
        self.eof = s.eof;
        self.tail = s.tail.clone();
        self.line = s.line.clone();
        self.escape = s.escape;
        self.quit = s.quit;
        self.prompt_flag = s.prompt_flag;
    }

    pub fn new(input: Input, stdout: bool, capture: Option<Capture>) -> Self {
        let eof = matches!(input, Input::None);
        Console { input, pending: VecDeque::new(), eof, stdout, capture, tail: VecDeque::new(), line: Vec::new(), escape: false, quit: false, prompt_flag: None }
    }

    /// Guest output.
    pub fn output(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if self.stdout {
            let mut o = std::io::stdout().lock();
            let _ = o.write_all(bytes);
        }
        if let Some(c) = &self.capture {
            c.0.lock().extend_from_slice(bytes);
        }
        for &b in bytes {
            match b {
                b'\n' => {
                    let l = String::from_utf8_lossy(&self.line).into_owned();
                    self.tail.push_back(l);
                    if self.tail.len() > 20 {
                        self.tail.pop_front();
                    }
                    self.line.clear();
                }
                b'\r' => {}
                // a guest that never ends its line cannot grow the host
                _ if self.line.len() >= MAX_LINE => {}
                _ => self.line.push(b),
            }
        }
    }

    /// The last lines of output for a failure report, with the line being
    /// written (e.g. a command after the prompt) if it is not empty.
    pub fn tail_lines(&self) -> Vec<String> {
        let mut v: Vec<String> = self.tail.iter().cloned().collect();
        if !self.line.is_empty() {
            v.push(String::from_utf8_lossy(&self.line).into_owned());
        }
        v
    }

    pub fn flush(&mut self) {
        if self.stdout {
            let _ = std::io::stdout().flush();
        }
    }

    /// The output ends with the guest shell's prompt (`# `): the shell is
    /// waiting for a command.
    pub fn at_prompt(&self) -> bool {
        self.line == b"# "
    }

    /// The guest's shell waits for a command: what it said through
    /// `SYS_CMAEMU_PROMPT` once it has used that register, else a last
    /// output line of `# `.
    pub fn waiting_at_prompt(&self) -> bool {
        self.prompt_flag.unwrap_or_else(|| self.at_prompt())
    }

    /// The guest wrote `SYS_CMAEMU_PROMPT`.
    pub fn set_prompt_flag(&mut self, waiting: bool) {
        self.prompt_flag = Some(waiting);
    }

    pub fn is_tty(&self) -> bool {
        matches!(self.input, Input::Tty(_))
    }

    /// The CPU is idle: fetch the next input if the guest has consumed the
    /// previous one. `wait` is the longest a TTY may block (wall clock).
    /// Returns whether new bytes are pending.
    pub fn refill(&mut self, wait: Duration) -> bool {
        if !self.pending.is_empty() {
            return true;
        }
        if self.eof {
            return false;
        }
        match &mut self.input {
            Input::None => {
                self.eof = true;
                false
            }
            Input::Script(s) => {
                if s.is_empty() {
                    self.eof = true;
                    return false;
                }
                while let Some(b) = s.pop_front() {
                    self.pending.push_back(b);
                    if b == b'\n' {
                        break;
                    }
                }
                true
            }
            Input::Lines(rx) => match rx.recv() {
                Ok(line) => {
                    self.pending.extend(line);
                    true
                }
                Err(_) => {
                    self.eof = true;
                    false
                }
            },
            Input::Tty(rx) => match rx.recv_timeout(wait) {
                Ok(bytes) => {
                    for b in bytes {
                        if self.escape {
                            self.escape = false;
                            match b {
                                b'x' | b'X' => self.quit = true,
                                0x01 => self.pending.push_back(0x01),
                                _ => {}
                            }
                        } else if b == 0x01 {
                            self.escape = true;
                        } else {
                            self.pending.push_back(b);
                        }
                    }
                    !self.pending.is_empty()
                }
                Err(RecvTimeoutError::Timeout) => false,
                Err(RecvTimeoutError::Disconnected) => {
                    self.eof = true;
                    false
                }
            },
        }
    }
}

/// Split a byte stream into lines (each with its `\n`; a last line
/// without one is sent as it is) for [`Input::Lines`]. Stops at the end
/// of the stream, a read error, or when the receiver is gone.
pub fn send_lines(mut r: impl std::io::Read, tx: &crossbeam_channel::Sender<Vec<u8>>) {
    let mut line = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                for &b in &buf[..n] {
                    line.push(b);
                    if b == b'\n' && tx.send(std::mem::take(&mut line)).is_err() {
                        return;
                    }
                }
            }
        }
    }
    if !line.is_empty() {
        let _ = tx.send(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_register_outlives_kernel_messages_after_the_prompt() {
        let mut c = Console::new(Input::Script(Default::default()), false, None);
        c.output(b"done\n# ");
        assert!(c.at_prompt() && c.waiting_at_prompt(), "a guest without the register: the last line decides");
        c.output(b"[    0.9] cma: cma_alloc: alloc failed\n");
        assert!(!c.waiting_at_prompt(), "without the register a message after the prompt hides it");
        c.set_prompt_flag(true);
        assert!(c.waiting_at_prompt(), "the shell said it waits");
        c.set_prompt_flag(false);
        c.output(b"# ");
        assert!(!c.waiting_at_prompt(), "once the guest uses the register, the text no longer counts");
    }

    #[test]
    fn tail_lines_include_the_unfinished_line() {
        let mut c = Console::new(Input::None, false, None);
        c.output(b"a
b
# spin 9");
        assert_eq!(c.tail_lines(), ["a", "b", "# spin 9"]);
        c.output(b"
");
        assert_eq!(c.tail_lines(), ["a", "b", "# spin 9"]);
    }
}
