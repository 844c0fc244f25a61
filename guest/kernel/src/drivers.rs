//! Board drivers: PL011 UART, GIC (PL390), SP804 tick, vexpress sysregs.
//! Register offsets follow the ARM TRMs; addresses come from the DTB where
//! it names them, else from the vexpress-a9 legacy map.
use crate::arch::{io_p2v, readl, writel};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// vexpress-a9 legacy map (QEMU `hw/arm/vexpress.c`, `vexpress_a9_map`).
pub mod map {
    pub const SYSREGS: u32 = 0x1000_0000;
    pub const UART0: u32 = 0x1000_9000;
    pub const TIMER01: u32 = 0x1001_1000;
    pub const GIC_CPU: u32 = 0x1e00_0100;
    pub const GIC_DIST: u32 = 0x1e00_1000;
    /// GIC interrupt IDs (32 + SPI number).
    pub const IRQ_TIMER01: u32 = 32 + 2;
    pub const IRQ_UART0: u32 = 32 + 5;
}

pub mod uart {
    use super::*;
    const DR: u32 = 0x00;
    const FR: u32 = 0x18;
    const FR_RXFE: u32 = 1 << 4;
    const FR_TXFF: u32 = 1 << 5;
    const IBRD: u32 = 0x24;
    const FBRD: u32 = 0x28;
    const LCR_H: u32 = 0x2c;
    const CR: u32 = 0x30;
    const IMSC: u32 = 0x38;
    const ICR: u32 = 0x44;
    const INT_RX: u32 = 1 << 4;
    const INT_RT: u32 = 1 << 6;

    static BASE: AtomicU32 = AtomicU32::new(0);

    const RX_LEN: usize = 4096;
    /// The RX ring: the IRQ handler writes at RX_HEAD, the reader takes
    /// at RX_TAIL (single producer, single consumer; bytes are atomics).
    static RX_BUF: [core::sync::atomic::AtomicU8; RX_LEN] = [const { core::sync::atomic::AtomicU8::new(0) }; RX_LEN];
    static RX_HEAD: AtomicU32 = AtomicU32::new(0);
    static RX_TAIL: AtomicU32 = AtomicU32::new(0);
    /// Ring index up to which input is flushed, set by the IRQ on Ctrl-C
    /// (with RX_FLUSH) and applied by the reader.
    static RX_FLUSH_TO: AtomicU32 = AtomicU32::new(0);
    static RX_FLUSH: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

    fn base() -> u32 {
        match BASE.load(Ordering::Relaxed) {
            0 => io_p2v(map::UART0),
            b => b,
        }
    }

    /// Program 38400 8N1 with FIFOs and the receive interrupts.
    pub fn init(pa: u32) {
        BASE.store(io_p2v(pa), Ordering::Relaxed);
        let b = base();
        writel(b + CR, 0);
        writel(b + IBRD, 39);
        writel(b + FBRD, 4);
        writel(b + LCR_H, (3 << 5) | (1 << 4)); // 8 bits, FIFO enable
        writel(b + ICR, 0x7ff);
        writel(b + IMSC, INT_RX | INT_RT);
        writel(b + CR, (1 << 0) | (1 << 8) | (1 << 9)); // UARTEN, TXE, RXE
    }

    pub fn putc(c: u8) {
        let b = base();
        while readl(b + FR) & FR_TXFF != 0 {}
        writel(b + DR, c as u32);
    }

    pub fn write_bytes(s: &[u8]) {
        for &c in s {
            if c == b'\n' {
                putc(b'\r');
            }
            putc(c);
        }
    }

    /// `VINTR` (Ctrl-C): the receive interrupt turns it into an interrupt
    /// of the foreground command instead of input.
    pub const VINTR: u8 = 0x03;

    /// A Ctrl-C arrived (set in IRQ context; the console takes it).
    pub static INTERRUPT: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

    /// IRQ handler: move every received byte into the RX ring.
    pub fn irq() {
        let b = base();
        while readl(b + FR) & FR_RXFE == 0 {
            let c = (readl(b + DR) & 0xff) as u8;
            if c == VINTR {
                // the tty's ISIG: Ctrl-C interrupts the foreground command
                // and flushes the input received before it (no NOFLSH)
                RX_FLUSH_TO.store(RX_HEAD.load(Ordering::Relaxed), Ordering::Relaxed);
                RX_FLUSH.store(true, Ordering::Release);
                INTERRUPT.store(true, Ordering::Relaxed);
                continue;
            }
            let h = RX_HEAD.load(Ordering::Relaxed);
            let t = RX_TAIL.load(Ordering::Relaxed);
            if h.wrapping_sub(t) as usize >= RX_LEN {
                // Full: leave the byte in the FIFO; the host holds the rest.
                writel(b + IMSC, 0);
                return;
            }
            // read by `getc` only after the head index is published
            RX_BUF[h as usize % RX_LEN].store(c, Ordering::Relaxed);
            RX_HEAD.store(h.wrapping_add(1), Ordering::Release);
        }
        writel(b + ICR, INT_RX | INT_RT);
    }

    /// Whether received bytes wait in the RX ring.
    pub fn rx_pending() -> bool {
        RX_HEAD.load(Ordering::Acquire) != RX_TAIL.load(Ordering::Relaxed)
    }

    /// A received byte, if any.
    pub fn getc() -> Option<u8> {
        // a Ctrl-C flushed what came before it: skip to where it was
        if RX_FLUSH.swap(false, Ordering::Acquire) {
            RX_TAIL.store(RX_FLUSH_TO.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        let h = RX_HEAD.load(Ordering::Acquire);
        let t = RX_TAIL.load(Ordering::Relaxed);
        if h == t {
            return None;
        }
        // the slot at `t` was published by `irq` (head moved past it)
        let c = RX_BUF[t as usize % RX_LEN].load(Ordering::Relaxed);
        RX_TAIL.store(t.wrapping_add(1), Ordering::Relaxed);
        // Space again: re-enable RX interrupts if the ring had filled up.
        writel(base() + IMSC, INT_RX | INT_RT);
        Some(c)
    }
}

pub mod gic {
    use super::*;
    const GICD_CTLR: u32 = 0x000;
    const GICD_ISENABLER: u32 = 0x100;
    const GICD_IPRIORITYR: u32 = 0x400;
    const GICD_ITARGETSR: u32 = 0x800;
    const GICC_CTLR: u32 = 0x00;
    const GICC_PMR: u32 = 0x04;
    const GICC_IAR: u32 = 0x0c;
    const GICC_EOIR: u32 = 0x10;

    fn dist() -> u32 {
        io_p2v(map::GIC_DIST)
    }
    fn cpu() -> u32 {
        io_p2v(map::GIC_CPU)
    }

    pub fn init() {
        writel(dist() + GICD_CTLR, 1);
        writel(cpu() + GICC_PMR, 0xf0);
        writel(cpu() + GICC_CTLR, 1);
    }

    /// Enable interrupt `id` at priority 0xa0, routed to CPU 0.
    pub fn enable(id: u32) {
        let prio = dist() + GICD_IPRIORITYR + (id & !3);
        let sh = (id & 3) * 8;
        writel(prio, (readl(prio) & !(0xff << sh)) | (0xa0 << sh));
        let tgt = dist() + GICD_ITARGETSR + (id & !3);
        writel(tgt, (readl(tgt) & !(0xff << sh)) | (1 << sh));
        writel(dist() + GICD_ISENABLER + (id / 32) * 4, 1 << (id % 32));
    }

    pub fn ack() -> u32 {
        readl(cpu() + GICC_IAR)
    }
    pub fn eoi(iar: u32) {
        writel(cpu() + GICC_EOIR, iar);
    }
}

/// The scheduler tick: SP804 timer 0 in periodic mode at HZ.
pub mod timer {
    use super::*;
    pub const HZ: u32 = 100;
    const TIMCLK_HZ: u32 = 1_000_000;
    const LOAD: u32 = 0x00;
    const CONTROL: u32 = 0x08;
    const INTCLR: u32 = 0x0c;
    pub static JIFFIES: AtomicU64 = AtomicU64::new(0);

    pub fn init() {
        let b = io_p2v(map::TIMER01);
        writel(b + CONTROL, 0);
        writel(b + LOAD, TIMCLK_HZ / HZ);
        // enable, periodic, interrupt enable, 32-bit
        writel(b + CONTROL, 0x80 | 0x40 | 0x20 | 0x02);
    }

    pub fn irq() {
        writel(io_p2v(map::TIMER01) + INTCLR, 1);
        JIFFIES.fetch_add(1, Ordering::Relaxed);
    }
}

pub mod sysreg {
    use super::*;
    pub const SYS_ID: u32 = 0x00;
    pub const SYS_24MHZ: u32 = 0x5c;
    pub const SYS_CFGDATA: u32 = 0xa0;
    pub const SYS_CFGCTRL: u32 = 0xa4;
    const CFG_START: u32 = 1 << 31;
    const CFG_WRITE: u32 = 1 << 30;
    const FUNC_SHUTDOWN: u32 = 8;
    const FUNC_REBOOT: u32 = 9;

    pub fn read(off: u32) -> u32 {
        readl(io_p2v(map::SYSREGS) + off)
    }

    /// Power off through the motherboard config controller. The status word
    /// goes to SYS_CFGDATA first (cmaemu's convention: the host's exit code
    /// is its low byte; bit 31 marks a kernel panic).
    pub fn poweroff(status: u32) -> ! {
        let b = io_p2v(map::SYSREGS);
        writel(b + SYS_CFGDATA, status);
        writel(b + SYS_CFGCTRL, CFG_START | CFG_WRITE | (FUNC_SHUTDOWN << 20));
        loop {
            crate::arch::wfi();
        }
    }

    pub fn reboot() -> ! {
        let b = io_p2v(map::SYSREGS);
        writel(b + SYS_CFGCTRL, CFG_START | CFG_WRITE | (FUNC_REBOOT << 20));
        loop {
            crate::arch::wfi();
        }
    }
}
