//! The console of `cmaemu boot` on this terminal: raw mode while the
//! guest runs (restored on drop), or standard input read line by line
//! when it is not a terminal.
use crate::board::console::Input;
use std::io::{IsTerminal, Read};

/// Console input: a raw-mode TTY, or stdin lines from a reader thread.
pub fn console_input() -> (Input, Option<TtyGuard>) {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        let guard = TtyGuard::raw();
        let (tx, rx) = crossbeam_channel::unbounded();
        std::thread::spawn(move || {
            let mut buf = [0u8; 256];
            let mut s = std::io::stdin().lock();
            while let Ok(n) = s.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        (Input::Tty(rx), guard)
    } else {
        let (tx, rx) = crossbeam_channel::unbounded();
        std::thread::spawn(move || crate::board::console::send_lines(std::io::stdin().lock(), &tx));
        (Input::Lines(rx), None)
    }
}

/// Puts the terminal in raw mode and restores it on drop.
pub struct TtyGuard(libc::termios);
impl TtyGuard {
    fn raw() -> Option<TtyGuard> {
        // SAFETY: termios is plain data; tcgetattr fills it for fd 0.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: valid fd and pointer.
        if unsafe { libc::tcgetattr(0, &mut t) } != 0 {
            return None;
        }
        let saved = t;
        // SAFETY: cfmakeraw edits the struct we own; tcsetattr applies it.
        unsafe {
            libc::cfmakeraw(&mut t);
            libc::tcsetattr(0, libc::TCSANOW, &t);
        }
        Some(TtyGuard(saved))
    }
}
impl Drop for TtyGuard {
    fn drop(&mut self) {
        // SAFETY: restores the attributes saved in `raw`.
        unsafe { libc::tcsetattr(0, libc::TCSANOW, &self.0) };
    }
}
