//! Console pacing: while the CPU idles in WFI, hand the guest its input a
//! line at a time (the next line only once it has read the previous one and
//! sits at its prompt), pause a stepping run when it waits for input or
//! reaches its time budget, and end a run whose input is over and whose
//! shell has sat idle for the limit.
use super::machine::Board;
use crate::cpu::Bus;
use std::time::Duration;
use crate::devices::MmioDevice;

impl Board {
    /// [`Bus::idle`]: the time to skip to, or None to end the run.
    pub(super) fn pace_idle(&mut self, now: u64) -> Option<u64> {
        self.console.flush();
        if let Some(l) = &mut self.linux {
            l.quiet(&self.ram, now, self.clcd.scanout());
        }
        if std::mem::take(&mut self.pause_at_idle) {
            self.paused = true;
            return Some(now);
        }
        if self.time_limit.is_some_and(|l| now >= l) {
            self.paused = true;
            self.timed_out = true;
            return Some(now);
        }
        let deadline = self.next_deadline();
        let wait = if self.console.is_tty() {
            let ns = deadline.saturating_sub(now).min(20_000_000);
            Duration::from_nanos(ns)
        } else {
            Duration::ZERO
        };
        self.uart0.advance_to(now);
        // A line at a time: the rest of the current line as the FIFO makes
        // room, the next line only once the guest has read everything.
        if !self.console.pending.is_empty() {
            if self.uart0.rx_space() > 0 {
                self.deliver_input();
                self.update_lines();
                return Some(now);
            }
        } else if self.uart0.rx_pending() == 0 && self.uart0.rx_space() > 0 && self.console.refill(wait) {
            self.deliver_input();
            self.update_lines();
            return Some(now);
        }
        if self.console.quit {
            return Some(now);
        }
        if self.pause_when_starved && self.console.pending.is_empty() && self.uart0.rx_pending() == 0 && self.console.waiting_at_prompt() {
            self.paused = true;
            return Some(now);
        }
        // Input ended: stop once the shell has sat at its prompt for the
        // idle limit (a guest busy with a long command is not idle).
        if self.console.eof && self.console.waiting_at_prompt() {
            let since = *self.eof_at.get_or_insert(now);
            if now.saturating_sub(since) > self.idle_after_eof_ns {
                return None;
            }
        } else {
            self.eof_at = None;
        }
        if deadline == u64::MAX {
            return if self.console.eof { None } else { Some(now) };
        }
        Some(deadline)
    }

    /// Move pending console bytes into the UART's receive FIFO.
    fn deliver_input(&mut self) {
        if self.console.pending.is_empty() {
            return;
        }
        let bytes: Vec<u8> = self.console.pending.iter().copied().collect();
        let n = self.uart0.enqueue_rx(&bytes);
        self.console.pending.drain(..n);
    }
}
