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
pub struct TtyGuard(rustix::termios::Termios);
impl TtyGuard {
    fn raw() -> Option<TtyGuard> {
        use rustix::termios::{tcgetattr, tcsetattr, OptionalActions};
        let saved = tcgetattr(std::io::stdin()).ok()?;
        let mut t = saved.clone();
        t.make_raw(); // cfmakeraw
        let _ = tcsetattr(std::io::stdin(), OptionalActions::Now, &t);
        Some(TtyGuard(saved))
    }
}
impl Drop for TtyGuard {
    fn drop(&mut self) {
        // restores the attributes saved in `raw`
        let _ = rustix::termios::tcsetattr(std::io::stdin(), rustix::termios::OptionalActions::Now, &self.0);
    }
}
