//! Versatile Express V2M system registers (`arm,vexpress-sysreg`), after the
//! V2M-P1 TRM (DUI 0447) and QEMU's `hw/misc/arm_sysctl.c` as configured for
//! `-M vexpress-a9` (SYS_ID `0x1190f500`, SYS_PROCID0 `0x0c000191`).
//!
//! Registers not listed below read as 0 and ignore writes, as in QEMU; offsets
//! QEMU does not know are also recorded as bad accesses.
//!
//! ## Counters
//! `SYS_100HZ` and `SYS_24MHZ` count from virtual time 0 at 100 Hz and
//! 24 MHz (`floor(now_ns * f / 1e9)`, truncated to 32 bits); the board keeps
//! them current through [`MmioDevice::advance_to`].
//!
//! ## The configuration bus (SYS_CFGDATA / SYS_CFGCTRL / SYS_CFGSTAT)
//! A write to `SYS_CFGCTRL` with the START bit (31) set runs one
//! transaction: `DCC[29:26]`, `FUNCTION[25:20]`, `SITE[17:16]`,
//! `POSITION[15:12]`, `DEVICE[11:0]`, bit 30 = write. `SYS_CFGSTAT` then
//! reads COMPLETE (bit 0), plus ERROR (bit 1) for an unsupported
//! transaction. Oscillator (function 1) reads/writes and voltage (2) reads
//! return QEMU's values for the a9 board; muxfpga (7) and dvimode (11)
//! writes are accepted and ignored.
//!
//! ## Power-off exit code (cmaemu convention)
//! A *write* transaction with function `SYS_CFG_SHUTDOWN` (8) or
//! `SYS_CFG_REBOOT` (9) to the motherboard (site 0, position 0, device 0) —
//! what Linux's `vexpress-poweroff` driver issues — yields a
//! [`PowerEvent`] for the board, fetched with [`Sysregs::take_power_event`].
//! For shutdown, the event carries `code` = the value last written to
//! `SYS_CFGDATA` before the `SYS_CFGCTRL` write. Linux writes 0 there, so a
//! Linux power-off exits with status 0; the cmaemu guest writes its exit
//! status (e.g. the failed-test count) to `SYS_CFGDATA` first, and the
//! emulator process exits with `code` (the board decides how to clamp
//! values above 255). The convention is also documented in
//! `dts/bindings/arm,vexpress-sysreg-poweroff.txt`.

use super::{BadAccessLog, MmioDevice};

/// Board identification.
pub const SYS_ID: u64 = 0x00;
/// User switches.
pub const SYS_SW: u64 = 0x04;
/// User LEDs.
pub const SYS_LED: u64 = 0x08;
/// Lock register (unlock value 0xa05f).
pub const SYS_LOCK: u64 = 0x20;
/// 100 Hz counter.
pub const SYS_100HZ: u64 = 0x24;
/// Configuration data 1.
pub const SYS_CFGDATA1: u64 = 0x28;
/// Configuration data 2.
pub const SYS_CFGDATA2: u64 = 0x2c;
/// Flags (read) / flags set (write).
pub const SYS_FLAGS: u64 = 0x30;
/// Flags set (alias of `SYS_FLAGS` for writes).
pub const SYS_FLAGSSET: u64 = 0x30;
/// Flags clear.
pub const SYS_FLAGSCLR: u64 = 0x34;
/// Non-volatile flags (read) / set (write).
pub const SYS_NVFLAGS: u64 = 0x38;
/// Non-volatile flags set.
pub const SYS_NVFLAGSSET: u64 = 0x38;
/// Non-volatile flags clear.
pub const SYS_NVFLAGSCLR: u64 = 0x3c;
/// MMC card status.
pub const SYS_MCI: u64 = 0x48;
/// Flash control.
pub const SYS_FLASH: u64 = 0x4c;
/// Boot chip-select switches.
pub const SYS_CFGSW: u64 = 0x58;
/// 24 MHz counter.
pub const SYS_24MHZ: u64 = 0x5c;
/// Miscellaneous control.
pub const SYS_MISC: u64 = 0x60;
/// DMA peripheral map.
pub const SYS_DMA: u64 = 0x64;
/// Processor ID 0 (daughterboard site 1).
pub const SYS_PROCID0: u64 = 0x84;
/// Processor ID 1 (daughterboard site 2).
pub const SYS_PROCID1: u64 = 0x88;
/// Configuration bus data.
pub const SYS_CFGDATA: u64 = 0xa0;
/// Configuration bus control.
pub const SYS_CFGCTRL: u64 = 0xa4;
/// Configuration bus status.
pub const SYS_CFGSTAT: u64 = 0xa8;

/// SYS_CFGCTRL: start a transaction.
pub const CFGCTRL_START: u32 = 1 << 31;
/// SYS_CFGCTRL: write transaction.
pub const CFGCTRL_WRITE: u32 = 1 << 30;
/// SYS_CFGSTAT: transaction complete.
pub const CFGSTAT_COMPLETE: u32 = 1 << 0;
/// SYS_CFGSTAT: transaction error.
pub const CFGSTAT_ERROR: u32 = 1 << 1;

/// Config function: oscillator.
pub const SYS_CFG_OSC: u32 = 1;
/// Config function: voltage.
pub const SYS_CFG_VOLT: u32 = 2;
/// Config function: video mux.
pub const SYS_CFG_MUXFPGA: u32 = 7;
/// Config function: shutdown.
pub const SYS_CFG_SHUTDOWN: u32 = 8;
/// Config function: reboot.
pub const SYS_CFG_REBOOT: u32 = 9;
/// Config function: DVI mode.
pub const SYS_CFG_DVIMODE: u32 = 11;

/// SYS_ID of the vexpress-a9 board in QEMU.
pub const SYS_ID_A9: u32 = 0x1190_f500;
/// SYS_PROCID0 of the CoreTile A9x4.
pub const PROC_ID_A9: u32 = 0x0c00_0191;
const LOCK_VALUE: u32 = 0xa05f;

/// Motherboard oscillators at reset, Hz (QEMU).
const MB_CLOCKS: [u32; 6] = [50_000_000, 23_750_000, 24_000_000, 24_000_000, 24_000_000, 24_000_000];
/// Daughterboard oscillators at reset, Hz (QEMU a9_clocks).
const DB_CLOCKS: [u32; 3] = [45_000_000, 23_750_000, 66_670_000];
/// Daughterboard voltages, µV (QEMU a9_voltages).
const DB_VOLTAGES: [u32; 6] = [1_000_000, 1_000_000, 1_000_000, 1_800_000, 900_000, 3_300_000];

/// A power request from the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerEvent {
    /// SYS_CFG_SHUTDOWN; `code` = SYS_CFGDATA at the time of the request.
    Shutdown {
        /// The guest's exit status (see the module docs).
        code: u32,
    },
    /// SYS_CFG_REBOOT.
    Reboot,
}

/// The V2M system register block.
#[derive(Debug, Clone)]
pub struct Sysregs {
    sys_id: u32,
    proc_id: u32,
    sw: u32,
    leds: u32,
    lock: u32,
    cfgdata1: u32,
    cfgdata2: u32,
    flags: u32,
    nvflags: u32,
    cfgdata: u32,
    cfgctrl: u32,
    cfgstat: u32,
    mb_clocks: [u32; 6],
    db_clocks: [u32; 3],
    now_ns: u64,
    event: Option<PowerEvent>,
    bad: BadAccessLog,
}

impl Default for Sysregs {
    fn default() -> Self {
        Self::new()
    }
}

impl Sysregs {
    /// The a9 board's system registers.
    pub fn new() -> Self {
        Sysregs {
            sys_id: SYS_ID_A9,
            proc_id: PROC_ID_A9,
            sw: 0,
            leds: 0,
            lock: 0,
            cfgdata1: 0,
            cfgdata2: 0,
            flags: 0,
            nvflags: 0,
            cfgdata: 0,
            cfgctrl: 0,
            cfgstat: 0,
            mb_clocks: MB_CLOCKS,
            db_clocks: DB_CLOCKS,
            now_ns: 0,
            event: None,
            bad: BadAccessLog::default(),
        }
    }

    /// Set the user switches (`SYS_SW`).
    pub fn set_switches(&mut self, sw: u32) {
        self.sw = sw;
    }

    /// Current `SYS_LED` value (the guest's LEDs).
    pub fn leds(&self) -> u32 {
        self.leds
    }

    /// Current `SYS_FLAGS` (secondary-CPU boot address on real firmware).
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// Take the pending power request, if the guest made one.
    pub fn take_power_event(&mut self) -> Option<PowerEvent> {
        self.event.take()
    }

    fn counter(&self, hz: u64) -> u32 {
        ((self.now_ns as u128 * hz as u128) / 1_000_000_000u128) as u32
    }

    fn cfg_transaction(&mut self) -> bool {
        let c = self.cfgctrl;
        let dcc = (c >> 26) & 0xf;
        let function = (c >> 20) & 0x3f;
        let site = (c >> 16) & 3;
        let position = (c >> 12) & 0xf;
        let device = (c & 0xfff) as usize;
        let write = c & CFGCTRL_WRITE != 0;
        if dcc != 0 || position != 0 || site > 1 {
            return false;
        }
        let mb = site == 0;
        match (function, write) {
            (SYS_CFG_OSC, false) => {
                let v = if mb { self.mb_clocks.get(device) } else { self.db_clocks.get(device) };
                match v {
                    Some(&v) => {
                        self.cfgdata = v;
                        true
                    }
                    None => false,
                }
            }
            (SYS_CFG_OSC, true) => {
                let slot = if mb { self.mb_clocks.get_mut(device) } else { self.db_clocks.get_mut(device) };
                match slot {
                    Some(s) => {
                        *s = self.cfgdata;
                        true
                    }
                    None => false,
                }
            }
            (SYS_CFG_VOLT, false) => {
                let v = if mb { (device == 0).then_some(3_300_000) } else { DB_VOLTAGES.get(device).copied() };
                match v {
                    Some(v) => {
                        self.cfgdata = v;
                        true
                    }
                    None => false,
                }
            }
            (SYS_CFG_MUXFPGA | SYS_CFG_DVIMODE, true) => mb && device == 0,
            (SYS_CFG_SHUTDOWN, true) if mb && device == 0 => {
                self.event = Some(PowerEvent::Shutdown { code: self.cfgdata });
                true
            }
            (SYS_CFG_REBOOT, true) if mb && device == 0 => {
                self.event = Some(PowerEvent::Reboot);
                true
            }
            _ => false,
        }
    }
}

impl MmioDevice for Sysregs {
    fn name(&self) -> &'static str {
        "sysregs"
    }

    fn read(&mut self, offset: u64) -> u32 {
        match offset {
            SYS_ID => self.sys_id,
            SYS_SW => self.sw,
            SYS_LED => self.leds,
            SYS_LOCK => self.lock,
            SYS_100HZ => self.counter(100),
            SYS_CFGDATA1 => self.cfgdata1,
            SYS_CFGDATA2 => self.cfgdata2,
            SYS_FLAGS => self.flags,
            SYS_NVFLAGS => self.nvflags,
            SYS_24MHZ => self.counter(24_000_000),
            SYS_PROCID0 => self.proc_id,
            SYS_PROCID1 => 0xff00_0000,
            SYS_CFGDATA => self.cfgdata,
            SYS_CFGCTRL => self.cfgctrl,
            SYS_CFGSTAT => self.cfgstat,
            // OSC0-4, RESETCTL, MCI, FLASH, CLCD, CLCDSER, BOOTCS, MISC, DMA,
            // IOSEL, PLDCTL, BUSID, OSCRESET0-4, TEST_OSC0-4: RAZ as in QEMU
            // (PCICTL reads 1 there).
            0x0c..=0x1c | 0x40 | 0x48..=0x58 | 0x60..=0x74 | 0x80 | 0x8c..=0x9c | 0xc0..=0xd0
                if offset.is_multiple_of(4) =>
            {
                0
            }
            0x44 => 1,
            _ => {
                self.bad.read(offset);
                0
            }
        }
    }

    fn write(&mut self, offset: u64, value: u32) {
        match offset {
            SYS_LED => self.leds = value,
            SYS_LOCK => self.lock = if value == LOCK_VALUE { value } else { value & 0x7fff },
            SYS_CFGDATA1 => self.cfgdata1 = value,
            SYS_CFGDATA2 => self.cfgdata2 = value,
            SYS_FLAGSSET => self.flags |= value,
            SYS_FLAGSCLR => self.flags &= !value,
            SYS_NVFLAGSSET => self.nvflags |= value,
            SYS_NVFLAGSCLR => self.nvflags &= !value,
            SYS_CFGDATA => self.cfgdata = value,
            SYS_CFGCTRL => {
                // Bits [19:18] are RAZ/WI; START always reads 0.
                self.cfgctrl = value & !((3 << 18) | CFGCTRL_START);
                if value & CFGCTRL_START != 0 {
                    self.cfgstat = CFGSTAT_COMPLETE;
                    if !self.cfg_transaction() {
                        self.cfgstat |= CFGSTAT_ERROR;
                    }
                }
            }
            SYS_CFGSTAT => self.cfgstat = value & 3,
            // Writable-but-ignored registers in QEMU.
            0x0c..=0x1c | 0x40 | 0x44 | 0x4c..=0x54 | 0x64..=0x74 | 0x80..=0x9c if offset.is_multiple_of(4) => {}
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
    }

    fn is_storage_register(&self, offset: u64) -> bool {
        matches!(offset, SYS_LED | SYS_CFGDATA | SYS_CFGDATA1 | SYS_CFGDATA2 | SYS_CFGCTRL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(function: u32, site: u32, device: u32, write: bool) -> u32 {
        CFGCTRL_START | if write { CFGCTRL_WRITE } else { 0 } | (function << 20) | (site << 16) | device
    }

    #[test]
    fn identification() {
        let mut s = Sysregs::new();
        assert_eq!(s.read(SYS_ID), 0x1190_f500);
        assert_eq!(s.read(SYS_PROCID0), 0x0c00_0191);
        assert_eq!(s.read(SYS_PROCID1), 0xff00_0000);
        assert_eq!(s.read(SYS_MISC), 0);
        assert_eq!(s.bad_accesses().count(), 0);
    }

    #[test]
    fn counters_follow_virtual_time() {
        let mut s = Sysregs::new();
        s.advance_to(1_000_000_000);
        assert_eq!(s.read(SYS_24MHZ), 24_000_000);
        assert_eq!(s.read(SYS_100HZ), 100);
        s.advance_to(1_015_000_000);
        assert_eq!(s.read(SYS_100HZ), 101);
        s.advance_to(5); // time never goes back
        assert_eq!(s.read(SYS_100HZ), 101);
    }

    #[test]
    fn flags_set_clear_and_leds() {
        let mut s = Sysregs::new();
        s.write(SYS_FLAGSSET, 0xf0);
        s.write(SYS_FLAGSCLR, 0x30);
        assert_eq!(s.read(SYS_FLAGS), 0xc0);
        s.write(SYS_NVFLAGSSET, 3);
        s.write(SYS_NVFLAGSCLR, 1);
        assert_eq!(s.read(SYS_NVFLAGS), 2);
        s.write(SYS_LED, 0x55);
        assert_eq!(s.leds(), 0x55);
    }

    #[test]
    fn shutdown_carries_cfgdata_as_exit_code() {
        let mut s = Sysregs::new();
        s.write(SYS_CFGDATA, 3);
        s.write(SYS_CFGCTRL, cfg(SYS_CFG_SHUTDOWN, 0, 0, true));
        assert_eq!(s.take_power_event(), Some(PowerEvent::Shutdown { code: 3 }));
        assert_eq!(s.take_power_event(), None);
        assert_eq!(s.read(SYS_CFGSTAT), CFGSTAT_COMPLETE);
        assert_eq!(s.read(SYS_CFGCTRL) & CFGCTRL_START, 0);
    }

    #[test]
    fn linux_style_poweroff_is_code_zero_and_reboot() {
        let mut s = Sysregs::new();
        s.write(SYS_CFGDATA, 0);
        s.write(SYS_CFGCTRL, cfg(SYS_CFG_SHUTDOWN, 0, 0, true));
        assert_eq!(s.take_power_event(), Some(PowerEvent::Shutdown { code: 0 }));
        s.write(SYS_CFGCTRL, cfg(SYS_CFG_REBOOT, 0, 0, true));
        assert_eq!(s.take_power_event(), Some(PowerEvent::Reboot));
    }

    #[test]
    fn no_event_without_start_or_write_or_wrong_site() {
        let mut s = Sysregs::new();
        s.write(SYS_CFGCTRL, cfg(SYS_CFG_SHUTDOWN, 0, 0, true) & !CFGCTRL_START);
        assert_eq!(s.take_power_event(), None);
        s.write(SYS_CFGCTRL, cfg(SYS_CFG_SHUTDOWN, 0, 0, false));
        assert_eq!(s.take_power_event(), None);
        assert_eq!(s.read(SYS_CFGSTAT), CFGSTAT_COMPLETE | CFGSTAT_ERROR);
        s.write(SYS_CFGCTRL, cfg(SYS_CFG_SHUTDOWN, 1, 0, true));
        assert_eq!(s.take_power_event(), None);
    }

    #[test]
    fn oscillators_and_voltages() {
        let mut s = Sysregs::new();
        s.write(SYS_CFGCTRL, cfg(SYS_CFG_OSC, 1, 1, false));
        assert_eq!(s.read(SYS_CFGDATA), 23_750_000);
        s.write(SYS_CFGDATA, 65_000_000);
        s.write(SYS_CFGCTRL, cfg(SYS_CFG_OSC, 1, 1, true));
        s.write(SYS_CFGCTRL, cfg(SYS_CFG_OSC, 1, 1, false));
        assert_eq!(s.read(SYS_CFGDATA), 65_000_000);
        s.write(SYS_CFGCTRL, cfg(SYS_CFG_VOLT, 0, 0, false));
        assert_eq!(s.read(SYS_CFGDATA), 3_300_000);
        s.write(SYS_CFGCTRL, cfg(SYS_CFG_VOLT, 1, 5, false));
        assert_eq!(s.read(SYS_CFGDATA), 3_300_000);
        s.write(SYS_CFGCTRL, cfg(SYS_CFG_VOLT, 1, 99, false));
        assert_eq!(s.read(SYS_CFGSTAT), CFGSTAT_COMPLETE | CFGSTAT_ERROR);
    }

    #[test]
    fn unknown_offsets_logged_not_fatal() {
        let mut s = Sysregs::new();
        assert_eq!(s.read(0x800), 0);
        s.write(0xffc, 1);
        s.write(SYS_ID, 1); // read-only
        assert_eq!(s.read(SYS_ID), SYS_ID_A9);
        assert_eq!(s.bad_accesses().count(), 3);
    }
}
