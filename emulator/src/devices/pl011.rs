//! ARM PrimeCell UART (PL011), after the PL011 r1p5 TRM (DDI 0183) and QEMU's
//! `hw/char/pl011.c`.
//!
//! * Transmission is instantaneous: a write to `UARTDR` queues the byte for
//!   the board ([`Pl011::take_tx`] / [`Pl011::flush_tx`] into a
//!   [`SerialSink`]); the TX FIFO therefore always reads empty (`FR.TXFE=1`,
//!   `TXFF=0`, `BUSY=0`) and, as in QEMU, each write raises `TXRIS` until the
//!   guest clears it through `UARTICR`. Bytes are sent even when `CR.UARTEN`
//!   or `CR.TXE` is clear (QEMU does the same; early boot code often forgets).
//! * Reception: [`Pl011::enqueue_rx`] puts bytes into the receive FIFO (16
//!   entries with `LCR_H.FEN`, a 1-byte holding register without) and
//!   returns how many it accepted. It never drops data: bytes that do not
//!   fit (or arrive while `CR.UARTEN`/`CR.RXE` are clear) stay with the
//!   caller, who offers them again later. Consequently the overrun error
//!   never occurs.
//! * Interrupts: `RXRIS` when the FIFO fill level reaches the `IFLS` trigger
//!   (any byte with the FIFO disabled); `RTRIS` (receive timeout) when data
//!   sits below the trigger level for 32 bit periods of virtual time
//!   (computed from `IBRD`/`FBRD` and the 24 MHz UARTCLK; immediately if the
//!   baud rate is not programmed); `TXRIS` as above. [`Pl011::irq_level`]
//!   is `RIS & IMSC != 0`.
//! * Sub-word accesses: see the [`crate::devices`] module docs (byte writes
//!   to `UARTDR` transmit the byte).

use super::{primecell_id, BadAccessLog, MmioDevice};
use std::collections::VecDeque;

/// Data register.
pub const UARTDR: u64 = 0x000;
/// Receive status / error clear register.
pub const UARTRSR: u64 = 0x004;
/// Flag register.
pub const UARTFR: u64 = 0x018;
/// IrDA low-power counter register.
pub const UARTILPR: u64 = 0x020;
/// Integer baud rate divisor.
pub const UARTIBRD: u64 = 0x024;
/// Fractional baud rate divisor.
pub const UARTFBRD: u64 = 0x028;
/// Line control register.
pub const UARTLCR_H: u64 = 0x02c;
/// Control register.
pub const UARTCR: u64 = 0x030;
/// Interrupt FIFO level select.
pub const UARTIFLS: u64 = 0x034;
/// Interrupt mask set/clear.
pub const UARTIMSC: u64 = 0x038;
/// Raw interrupt status.
pub const UARTRIS: u64 = 0x03c;
/// Masked interrupt status.
pub const UARTMIS: u64 = 0x040;
/// Interrupt clear.
pub const UARTICR: u64 = 0x044;
/// DMA control.
pub const UARTDMACR: u64 = 0x048;

/// FR: busy transmitting.
pub const FR_BUSY: u32 = 1 << 3;
/// FR: receive FIFO empty.
pub const FR_RXFE: u32 = 1 << 4;
/// FR: transmit FIFO full.
pub const FR_TXFF: u32 = 1 << 5;
/// FR: receive FIFO full.
pub const FR_RXFF: u32 = 1 << 6;
/// FR: transmit FIFO empty.
pub const FR_TXFE: u32 = 1 << 7;

/// LCR_H: FIFO enable.
pub const LCR_H_FEN: u32 = 1 << 4;
/// CR: UART enable.
pub const CR_UARTEN: u32 = 1 << 0;
/// CR: loopback enable.
pub const CR_LBE: u32 = 1 << 7;
/// CR: transmit enable.
pub const CR_TXE: u32 = 1 << 8;
/// CR: receive enable.
pub const CR_RXE: u32 = 1 << 9;

/// Interrupt bit: receive.
pub const INT_RX: u32 = 1 << 4;
/// Interrupt bit: transmit.
pub const INT_TX: u32 = 1 << 5;
/// Interrupt bit: receive timeout.
pub const INT_RT: u32 = 1 << 6;
/// All interrupt bits the PL011 defines.
pub const INT_ALL: u32 = 0x7ff;

/// Receive FIFO depth with `LCR_H.FEN` set.
pub const FIFO_DEPTH: usize = 16;
/// UARTCLK on the V2M motherboard.
pub const UARTCLK_HZ: u64 = 24_000_000;
/// PeriphID0..3 (part 0x011, designer ARM, revision 1), as QEMU's `pl011_id_arm`.
pub const PERIPH_ID: [u8; 4] = [0x11, 0x10, 0x14, 0x00];

/// Where transmitted bytes go.
pub trait SerialSink {
    /// One byte written by the guest to `UARTDR`.
    fn tx(&mut self, byte: u8);
}

impl SerialSink for Vec<u8> {
    fn tx(&mut self, byte: u8) {
        self.push(byte);
    }
}

/// A PL011 UART.
#[derive(Debug, Clone)]
pub struct Pl011 {
    rx: VecDeque<u8>,
    tx_out: Vec<u8>,
    rsr: u32,
    ilpr: u32,
    ibrd: u32,
    fbrd: u32,
    lcr_h: u32,
    cr: u32,
    ifls: u32,
    imsc: u32,
    ris: u32,
    dmacr: u32,
    now_ns: u64,
    /// Virtual time of the last received byte (for the receive timeout).
    last_rx_ns: u64,
    bad: BadAccessLog,
}

impl Default for Pl011 {
    fn default() -> Self {
        Self::new()
    }
}

impl Pl011 {
    /// A UART in its reset state (`CR = TXE|RXE`, `IFLS = 1/2`, FIFOs off).
    pub fn new() -> Self {
        Pl011 {
            rx: VecDeque::with_capacity(FIFO_DEPTH),
            tx_out: Vec::new(),
            rsr: 0,
            ilpr: 0,
            ibrd: 0,
            fbrd: 0,
            lcr_h: 0,
            cr: CR_TXE | CR_RXE,
            ifls: 0x12,
            imsc: 0,
            ris: 0,
            dmacr: 0,
            now_ns: 0,
            last_rx_ns: 0,
            bad: BadAccessLog::default(),
        }
    }

    fn fifo_enabled(&self) -> bool {
        self.lcr_h & LCR_H_FEN != 0
    }

    fn rx_capacity(&self) -> usize {
        if self.fifo_enabled() {
            FIFO_DEPTH
        } else {
            1
        }
    }

    /// Bytes the receiver can take now (0 while the UART or receiver is disabled).
    pub fn rx_space(&self) -> usize {
        if self.cr & CR_UARTEN == 0 || self.cr & CR_RXE == 0 {
            return 0;
        }
        self.rx_capacity().saturating_sub(self.rx.len())
    }

    /// Offer received bytes; returns how many were accepted (a prefix of
    /// `bytes`). The caller keeps the rest and offers them again later.
    pub fn enqueue_rx(&mut self, bytes: &[u8]) -> usize {
        let n = self.rx_space().min(bytes.len());
        if n == 0 {
            return 0;
        }
        self.rx.extend(&bytes[..n]);
        self.last_rx_ns = self.now_ns;
        self.update_rx_int();
        n
    }

    /// Bytes waiting in the receive FIFO.
    pub fn rx_pending(&self) -> usize {
        self.rx.len()
    }

    /// Take the bytes the guest transmitted since the last call.
    pub fn take_tx(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.tx_out)
    }

    /// Hand the transmitted bytes to `sink`, in order.
    pub fn flush_tx(&mut self, sink: &mut impl SerialSink) {
        for b in self.tx_out.drain(..) {
            sink.tx(b);
        }
    }

    /// Interrupt output (level): any unmasked raw interrupt.
    pub fn irq_level(&self) -> bool {
        self.ris & self.imsc != 0
    }

    /// Receive FIFO trigger level in bytes (IFLS.RXIFLSEL: 1/8 .. 7/8).
    fn rx_trigger(&self) -> usize {
        if !self.fifo_enabled() {
            return 1;
        }
        match (self.ifls >> 3) & 7 {
            0 => 2,
            1 => 4,
            2 => 8,
            3 => 12,
            _ => 14,
        }
    }

    /// 32 bit periods at the programmed baud rate, in ns (0 if unprogrammed).
    fn rx_timeout_ns(&self) -> u64 {
        // baud divisor in 1/64ths: BAUDDIV = UARTCLK / (16 * baud)
        let div64 = ((self.ibrd as u64) << 6) | (self.fbrd as u64 & 0x3f);
        if div64 == 0 {
            return 0;
        }
        // one bit = 16 * BAUDDIV / UARTCLK seconds = 16 * div64 / 64 / UARTCLK
        // 32 bits = 8 * div64 / UARTCLK seconds
        (8 * div64).saturating_mul(1_000_000_000) / UARTCLK_HZ
    }

    fn update_rx_int(&mut self) {
        if self.rx.len() >= self.rx_trigger() {
            self.ris |= INT_RX;
        } else {
            self.ris &= !INT_RX;
        }
        if self.rx.is_empty() {
            self.ris &= !INT_RT;
        } else if self.now_ns >= self.last_rx_ns.saturating_add(self.rx_timeout_ns()) {
            self.ris |= INT_RT;
        }
    }

    fn reset_fifos(&mut self) {
        self.rx.clear();
        self.update_rx_int();
    }

    fn read_dr(&mut self) -> u32 {
        let v = self.rx.pop_front().map(u32::from).unwrap_or(0);
        self.rsr = 0;
        // Reading restarts the timeout: the TRM counts from the last FIFO activity.
        self.last_rx_ns = self.now_ns;
        self.ris &= !INT_RT;
        self.update_rx_int();
        v
    }

    fn flags(&self) -> u32 {
        let mut fr = FR_TXFE;
        if self.rx.is_empty() {
            fr |= FR_RXFE;
        }
        if self.rx.len() >= self.rx_capacity() {
            fr |= FR_RXFF;
        }
        fr
    }
}

impl MmioDevice for Pl011 {
    fn name(&self) -> &'static str {
        "pl011"
    }

    fn read(&mut self, offset: u64) -> u32 {
        match offset {
            UARTDR => self.read_dr(),
            UARTRSR => self.rsr,
            UARTFR => self.flags(),
            UARTILPR => self.ilpr,
            UARTIBRD => self.ibrd,
            UARTFBRD => self.fbrd,
            UARTLCR_H => self.lcr_h,
            UARTCR => self.cr,
            UARTIFLS => self.ifls,
            UARTIMSC => self.imsc,
            UARTRIS => self.ris,
            UARTMIS => self.ris & self.imsc,
            UARTDMACR => self.dmacr,
            _ => match primecell_id(offset, PERIPH_ID) {
                Some(v) => v,
                None => {
                    self.bad.read(offset);
                    0
                }
            },
        }
    }

    fn write(&mut self, offset: u64, value: u32) {
        match offset {
            UARTDR => {
                let byte = value as u8;
                if self.cr & CR_LBE != 0 {
                    // Loopback: the byte comes back to the receiver if it fits.
                    if self.rx.len() < self.rx_capacity() {
                        self.rx.push_back(byte);
                        self.last_rx_ns = self.now_ns;
                    }
                    self.update_rx_int();
                } else {
                    self.tx_out.push(byte);
                }
                self.ris |= INT_TX;
            }
            UARTRSR => self.rsr = 0,
            UARTILPR => self.ilpr = value & 0xff,
            UARTIBRD => self.ibrd = value & 0xffff,
            UARTFBRD => self.fbrd = value & 0x3f,
            UARTLCR_H => {
                let old = self.lcr_h;
                self.lcr_h = value & 0xff;
                if (old ^ self.lcr_h) & LCR_H_FEN != 0 {
                    self.reset_fifos();
                }
                self.update_rx_int();
            }
            UARTCR => self.cr = value & 0xff87,
            UARTIFLS => {
                self.ifls = value & 0x3f;
                self.update_rx_int();
            }
            UARTIMSC => self.imsc = value & INT_ALL,
            UARTICR => {
                self.ris &= !(value & INT_ALL);
                // Level conditions that still hold re-assert at once.
                if value & INT_RT != 0 {
                    self.last_rx_ns = self.now_ns;
                }
                self.update_rx_int();
            }
            UARTDMACR => self.dmacr = value & 7,
            _ => self.bad.write(offset, value),
        }
    }

    fn bad_accesses(&self) -> &BadAccessLog {
        &self.bad
    }

    fn advance_to(&mut self, now_ns: u64) {
        if now_ns > self.now_ns {
            self.now_ns = now_ns;
        }
        self.update_rx_int();
    }

    fn next_deadline_ns(&self) -> Option<u64> {
        if self.rx.is_empty() || self.ris & INT_RT != 0 || self.imsc & INT_RT == 0 {
            return None;
        }
        Some(self.last_rx_ns.saturating_add(self.rx_timeout_ns()))
    }

    fn is_storage_register(&self, offset: u64) -> bool {
        matches!(offset, UARTILPR | UARTIBRD | UARTFBRD | UARTLCR_H | UARTCR | UARTIFLS | UARTIMSC | UARTDMACR)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enabled() -> Pl011 {
        let mut u = Pl011::new();
        u.write(UARTCR, CR_UARTEN | CR_TXE | CR_RXE);
        u
    }

    #[test]
    fn reset_values_and_ids() {
        let mut u = Pl011::new();
        assert_eq!(u.read(UARTFR), FR_TXFE | FR_RXFE);
        assert_eq!(u.read(UARTCR), 0x300);
        assert_eq!(u.read(UARTIFLS), 0x12);
        let ids: Vec<u32> = (0..8).map(|i| u.read(0xfe0 + i * 4)).collect();
        assert_eq!(ids, vec![0x11, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1]);
        assert_eq!(u.bad_accesses().count(), 0);
    }

    #[test]
    fn tx_goes_to_sink_and_raises_txris() {
        let mut u = enabled();
        u.write(UARTIMSC, INT_TX);
        assert!(!u.irq_level());
        for b in b"hi\n" {
            u.write(UARTDR, *b as u32);
        }
        assert!(u.irq_level());
        assert_eq!(u.read(UARTMIS), INT_TX);
        let mut out = Vec::new();
        u.flush_tx(&mut out);
        assert_eq!(out, b"hi\n");
        u.write(UARTICR, INT_TX);
        assert!(!u.irq_level());
        u.write_sized(0, 1, b'x' as u64);
        assert_eq!(u.take_tx(), b"x");
    }

    #[test]
    fn rx_without_fifo_holds_one_byte() {
        let mut u = enabled();
        assert_eq!(u.enqueue_rx(b"abc"), 1);
        assert_eq!(u.read(UARTFR) & (FR_RXFE | FR_RXFF), FR_RXFF);
        assert_eq!(u.read(UARTDR), b'a' as u32);
        assert_eq!(u.read(UARTFR) & FR_RXFE, FR_RXFE);
        assert_eq!(u.enqueue_rx(b"bc"), 1);
        assert_eq!(u.read(UARTDR), b'b' as u32);
    }

    #[test]
    fn rx_fifo_back_pressure_no_loss() {
        let mut u = enabled();
        u.write(UARTLCR_H, LCR_H_FEN | 0x60);
        let data: Vec<u8> = (0..40).collect();
        let mut offered = &data[..];
        let mut got = Vec::new();
        while !offered.is_empty() {
            let n = u.enqueue_rx(offered);
            assert!(n <= FIFO_DEPTH);
            offered = &offered[n..];
            while u.read(UARTFR) & FR_RXFE == 0 {
                got.push(u.read(UARTDR) as u8);
            }
        }
        assert_eq!(got, data);
        assert_eq!(u.read(UARTRSR), 0);
    }

    #[test]
    fn disabled_receiver_accepts_nothing() {
        let mut u = Pl011::new(); // UARTEN clear
        assert_eq!(u.enqueue_rx(b"x"), 0);
        u.write(UARTCR, CR_UARTEN | CR_TXE);
        assert_eq!(u.enqueue_rx(b"x"), 0);
    }

    #[test]
    fn rx_trigger_level_and_timeout() {
        let mut u = enabled();
        u.write(UARTLCR_H, LCR_H_FEN);
        u.write(UARTIFLS, 0x10); // RX at 1/2 = 8 bytes
        u.write(UARTIBRD, 13); // 115200 baud at 24 MHz: 13 + 1/64*1
        u.write(UARTFBRD, 1);
        u.write(UARTIMSC, INT_RX | INT_RT);
        u.advance_to(1_000);
        assert_eq!(u.enqueue_rx(b"abc"), 3);
        assert!(!u.irq_level(), "below trigger, timeout not yet elapsed");
        let deadline = u.next_deadline_ns().unwrap();
        // 32 bits at ~115200 baud ~ 277 us
        assert!(deadline > 1_000 + 270_000 && deadline < 1_000 + 290_000, "{deadline}");
        u.advance_to(deadline - 1);
        assert!(!u.irq_level());
        u.advance_to(deadline);
        assert!(u.irq_level());
        assert_eq!(u.read(UARTMIS), INT_RT);
        assert_eq!(u.next_deadline_ns(), None);
        assert_eq!(u.enqueue_rx(b"defgh"), 5);
        assert_ne!(u.read(UARTRIS) & INT_RX, 0);
        for _ in 0..8 {
            u.read(UARTDR);
        }
        assert!(!u.irq_level());
    }

    #[test]
    fn timeout_immediate_without_baud() {
        let mut u = enabled();
        u.write(UARTLCR_H, LCR_H_FEN);
        u.write(UARTIMSC, INT_RT);
        u.enqueue_rx(b"a");
        assert!(u.irq_level());
    }

    #[test]
    fn toggling_fen_flushes() {
        let mut u = enabled();
        u.write(UARTLCR_H, LCR_H_FEN);
        u.enqueue_rx(b"abcd");
        u.write(UARTLCR_H, 0);
        assert_eq!(u.rx_pending(), 0);
    }

    #[test]
    fn loopback() {
        let mut u = enabled();
        u.write(UARTCR, CR_UARTEN | CR_TXE | CR_RXE | CR_LBE);
        u.write(UARTDR, b'q' as u32);
        assert!(u.take_tx().is_empty());
        assert_eq!(u.read(UARTDR), b'q' as u32);
    }

    #[test]
    fn unknown_offsets_are_logged() {
        let mut u = enabled();
        assert_eq!(u.read(0x800), 0);
        u.write(0x7fc, 5);
        u.write(UARTFR, 1); // read-only
        assert_eq!(u.bad_accesses().count(), 3);
    }
}
