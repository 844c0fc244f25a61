//! The vexpress-a9 physical memory map and interrupt numbers.
//!
//! Follows QEMU's `hw/arm/vexpress.c` "legacy" motherboard map (V2M-P1, used
//! with the CoreTile A9x4 daughterboard) and Linux's
//! `arch/arm/boot/dts/vexpress-v2p-ca9.dts` / `vexpress-v2m.dtsi`.
//!
//! Interrupt numbers are given as **SPI numbers** (what the `interrupts =
//! <0 SPI flags>` cells of a device tree carry); the GIC interrupt ID is
//! `32 + SPI` ([`gic_id`]).
//!
//! ```text
//! 0x0000_0000  64 MiB  NOR flash 0 alias (boot firmware at the reset vector)
//! 0x1000_0000   4 KiB  V2M system registers (sysregs)           -
//! 0x1000_1000   4 KiB  SP810 system controller                   -
//! 0x1000_9000   4 KiB  PL011 UART0 .. 0x1000_c000 UART3          SPI 5..8
//! 0x1000_f000   4 KiB  SP805 watchdog (motherboard)              SPI 0
//! 0x1001_1000   4 KiB  SP804 timer 0/1                           SPI 2
//! 0x1001_2000   4 KiB  SP804 timer 2/3                           SPI 3
//! 0x1001_7000   4 KiB  PL031 RTC                                 SPI 4
//! 0x1001_f000   4 KiB  PL111 CLCD (motherboard)                  SPI 14
//! 0x1002_0000   4 KiB  PL111 CLCD (daughterboard, the one used)  SPI 44
//! 0x1003_0000   4 KiB  cmaemu camera DMA master (new, free slot) SPI 52
//! 0x100e_4000   4 KiB  SP804 (daughterboard)                     SPI 48, 49
//! 0x1e00_0000   8 KiB  Cortex-A9 private region: SCU, GIC CPU interface
//!                      (+0x100), global timer (+0x200), private timer and
//!                      watchdog (+0x600), GIC distributor (+0x1000)
//! 0x1e00_a000   4 KiB  PL310 L2 cache controller                 SPI 43
//! 0x4000_0000  64 MiB  NOR flash 0;  0x4400_0000 NOR flash 1
//! 0x4800_0000  32 MiB  PSRAM;        0x4c00_0000 8 MiB video RAM
//! 0x6000_0000  ≤1 GiB  DRAM (window 0x6000_0000..0xa000_0000)
//! ```
//!
//! ## The camera slot
//!
//! The camera DMA master is not part of the real board. It sits at
//! [`CAMERA_BASE`] = `0x1003_0000` in the daughterboard's peripheral space
//! (`0x1002_0000..0x2000_0000`): QEMU maps nothing between the CLCD at
//! `0x1002_0000` and the AXI RAM at `0x1006_0000`, and neither does Linux's
//! `vexpress-v2p-ca9.dts`. The motherboard chip-select 7 window
//! (`0x1000_0000..0x1002_0000`) has no free 4 KiB slot that QEMU does not
//! already use for a peripheral or virtio. Its interrupt is [`SPI_CAMERA`] =
//! 52: SPIs 0..42 belong to the motherboard, 43 is the PL310, 44 the CLCD,
//! 45/46 the PL354, 48/49 the daughterboard SP804, 51 its watchdog and
//! 60..63 the PMU; 52 is unused by QEMU and Linux and lies below the 64 SPIs
//! the A9 GIC implements.

/// One entry of the map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// Name used in reports and /proc/iomem-style output.
    pub name: &'static str,
    /// Physical base address.
    pub base: u64,
    /// Size in bytes.
    pub size: u64,
    /// What backs the range.
    pub kind: RegionKind,
}

impl Region {
    /// One past the last byte.
    pub const fn end(&self) -> u64 {
        self.base + self.size
    }
    /// Whether `addr` lies inside the region.
    pub const fn contains(&self, addr: u64) -> bool {
        addr >= self.base && addr < self.base + self.size
    }
}

/// What backs a [`Region`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegionKind {
    /// RAM (or RAM-like: SRAM, VRAM).
    Ram,
    /// Read-only memory (flash) loaded by the host.
    Rom,
    /// Memory-mapped device registers.
    Mmio,
}

// ---- memory ---------------------------------------------------------------

/// Flash 0 alias at the reset vector (the boot firmware lives here).
pub const FLASH_ALIAS_BASE: u64 = 0x0000_0000;
/// Size of each NOR flash bank (QEMU `VEXPRESS_FLASH_SIZE`).
pub const FLASH_SIZE: u64 = 64 << 20;
/// NOR flash 0 (chip select 0).
pub const FLASH0_BASE: u64 = 0x4000_0000;
/// NOR flash 1 (chip select 1).
pub const FLASH1_BASE: u64 = 0x4400_0000;
/// PSRAM (chip select 2), 32 MiB in QEMU.
pub const SRAM_BASE: u64 = 0x4800_0000;
/// PSRAM size.
pub const SRAM_SIZE: u64 = 32 << 20;
/// Video RAM (chip select 3): Linux's `vram@4c000000` pool.
pub const VRAM_BASE: u64 = 0x4c00_0000;
/// Video RAM size (8 MiB).
pub const VRAM_SIZE: u64 = 8 << 20;
/// DRAM base.
pub const RAM_BASE: u64 = 0x6000_0000;
/// Largest DRAM the a9 map can hold (QEMU refuses more).
pub const RAM_MAX_SIZE: u64 = 1 << 30;
/// One past the end of the DRAM window (0xa000_0000).
pub const RAM_WINDOW_END: u64 = RAM_BASE + RAM_MAX_SIZE;
/// Smallest RAM a board has.
pub const RAM_MIN_SIZE: u64 = 16 << 20;

/// Whether the board can have `bytes` of RAM: a whole number of MiB from
/// 16 MiB to 1 GiB. The one check every caller (`-m`, scenario files,
/// sweep axes, the board itself) makes, each naming its own input.
pub const fn valid_ram_size(bytes: u64) -> bool {
    bytes % (1 << 20) == 0 && bytes >= RAM_MIN_SIZE && bytes <= RAM_MAX_SIZE
}

// ---- motherboard peripherals (legacy map, chip select 7) -----------------

/// V2M system registers (`arm,vexpress-sysreg`).
pub const SYSREGS_BASE: u64 = 0x1000_0000;
/// SP810 system controller.
pub const SYSCTL_BASE: u64 = 0x1000_1000;
/// PL011 UART0 (ttyAMA0).
pub const UART0_BASE: u64 = 0x1000_9000;
/// PL011 UART1.
pub const UART1_BASE: u64 = 0x1000_a000;
/// PL011 UART2.
pub const UART2_BASE: u64 = 0x1000_b000;
/// PL011 UART3.
pub const UART3_BASE: u64 = 0x1000_c000;
/// UART bases in index order.
pub const UART_BASES: [u64; 4] = [UART0_BASE, UART1_BASE, UART2_BASE, UART3_BASE];
/// SP805 watchdog on the motherboard.
pub const WDT_BASE: u64 = 0x1000_f000;
/// SP804 dual timer 0/1.
pub const TIMER01_BASE: u64 = 0x1001_1000;
/// SP804 dual timer 2/3.
pub const TIMER23_BASE: u64 = 0x1001_2000;
/// QEMU's virtio-mmio transports (4 × 0x200) — listed so nothing else lands here.
pub const VIRTIO_BASE: u64 = 0x1001_3000;
/// PL031 real-time clock.
pub const RTC_BASE: u64 = 0x1001_7000;
/// PL111 CLCD on the motherboard.
pub const MB_CLCD_BASE: u64 = 0x1001_f000;

// ---- daughterboard peripherals ---------------------------------------------

/// PL111 CLCD on the CoreTile (the display controller we scan out).
pub const CLCD_BASE: u64 = 0x1002_0000;
/// The cmaemu camera DMA master (see the module docs).
pub const CAMERA_BASE: u64 = 0x1003_0000;
/// Size of the camera's register window.
pub const CAMERA_SIZE: u64 = 0x1000;
/// SP804 on the daughterboard.
pub const DB_TIMER_BASE: u64 = 0x100e_4000;

// ---- Cortex-A9 MPCore private region -----------------------------------------

/// PERIPHBASE of the A9 MPCore private memory region.
pub const A9_PRIV_BASE: u64 = 0x1e00_0000;
/// Size of the private region QEMU maps (SCU .. GIC distributor).
pub const A9_PRIV_SIZE: u64 = 0x2000;
/// Snoop control unit.
pub const SCU_BASE: u64 = 0x1e00_0000;
/// Size of the SCU's register window.
pub const SCU_SIZE: u64 = 0x100;
/// GIC CPU interface.
pub const GIC_CPU_BASE: u64 = 0x1e00_0100;
/// Size of the GIC CPU interface window.
pub const GIC_CPU_SIZE: u64 = 0x100;
/// Global timer.
pub const GLOBAL_TIMER_BASE: u64 = 0x1e00_0200;
/// Private timer (and watchdog at +0x20).
pub const PRIVATE_TIMER_BASE: u64 = 0x1e00_0600;
/// The private timer and watchdog block (`TWD`).
pub const TWD_BASE: u64 = PRIVATE_TIMER_BASE;
/// Size of the TWD window (timer at +0, watchdog at +0x20).
pub const TWD_SIZE: u64 = 0x100;
/// GIC distributor.
pub const GIC_DIST_BASE: u64 = 0x1e00_1000;
/// Size of the GIC distributor window.
pub const GIC_DIST_SIZE: u64 = 0x1000;
/// PL310 L2 cache controller.
pub const L2CC_BASE: u64 = 0x1e00_a000;

/// Size of one PrimeCell peripheral window.
pub const PERIPH_SIZE: u64 = 0x1000;

// ---- interrupts (SPI numbers) --------------------------------------------------

/// First GIC interrupt ID of the shared peripheral interrupts.
pub const SPI_BASE_ID: u32 = 32;
/// Interrupt IDs the A9 GIC implements (32 private + 64 SPIs, as QEMU's a9mpcore).
pub const GIC_NUM_IRQS: u32 = 96;
/// SP804 timer 0/1.
pub const SPI_TIMER01: u32 = 2;
/// SP804 timer 2/3.
pub const SPI_TIMER23: u32 = 3;
/// PL031 RTC.
pub const SPI_RTC: u32 = 4;
/// PL011 UART0..3 are SPI 5..8.
pub const SPI_UART0: u32 = 5;
/// PL011 UART1.
pub const SPI_UART1: u32 = 6;
/// PL011 UART2.
pub const SPI_UART2: u32 = 7;
/// PL011 UART3.
pub const SPI_UART3: u32 = 8;
/// Motherboard CLCD.
pub const SPI_MB_CLCD: u32 = 14;
/// Daughterboard CLCD (QEMU `pic[44]`, Linux `interrupts = <0 44 4>`).
pub const SPI_CLCD: u32 = 44;
/// Daughterboard SP804 (first of two).
pub const SPI_DB_TIMER: u32 = 48;
/// The cmaemu camera.
pub const SPI_CAMERA: u32 = 52;

/// PPI IDs of the A9 private peripherals.
pub const PPI_GLOBAL_TIMER_ID: u32 = 27;
/// Private timer interrupt ID (Linux `<1 13 0xf04>` = ID 29).
pub const PPI_PRIVATE_TIMER_ID: u32 = 29;
/// Private watchdog interrupt ID.
pub const PPI_WATCHDOG_ID: u32 = 30;

/// GIC interrupt ID of a shared peripheral interrupt.
pub const fn gic_id(spi: u32) -> u32 {
    SPI_BASE_ID + spi
}

// ---- clocks ---------------------------------------------------------------------

/// SP804 TIMCLK on the V2M (the SP810 selects the 1 MHz reference).
pub const TIMCLK_HZ: u64 = 1_000_000;
/// PL011 UARTCLK (V2M OSC2, 24 MHz).
pub const UARTCLK_HZ: u64 = 24_000_000;

/// Board constants reported by the sysregs (QEMU values for the a9 board).
pub const SYS_ID_A9: u32 = 0x1190_f500;
/// SYS_PROCID0 for the CoreTile A9x4 (HBI-0191).
pub const PROC_ID_A9: u32 = 0x0c00_0191;
/// Linux machine number of the Versatile Express (r1 at boot).
pub const MACH_TYPE_VEXPRESS: u32 = 0x8e0;

/// The board's regions, sorted by base.
pub const REGIONS: &[Region] = &[
    Region { name: "flash-alias", base: FLASH_ALIAS_BASE, size: FLASH_SIZE, kind: RegionKind::Rom },
    Region { name: "sysregs", base: SYSREGS_BASE, size: PERIPH_SIZE, kind: RegionKind::Mmio },
    Region { name: "sysctl", base: SYSCTL_BASE, size: PERIPH_SIZE, kind: RegionKind::Mmio },
    Region { name: "uart0", base: UART0_BASE, size: PERIPH_SIZE, kind: RegionKind::Mmio },
    Region { name: "uart1", base: UART1_BASE, size: PERIPH_SIZE, kind: RegionKind::Mmio },
    Region { name: "uart2", base: UART2_BASE, size: PERIPH_SIZE, kind: RegionKind::Mmio },
    Region { name: "uart3", base: UART3_BASE, size: PERIPH_SIZE, kind: RegionKind::Mmio },
    Region { name: "wdt", base: WDT_BASE, size: PERIPH_SIZE, kind: RegionKind::Mmio },
    Region { name: "timer01", base: TIMER01_BASE, size: PERIPH_SIZE, kind: RegionKind::Mmio },
    Region { name: "timer23", base: TIMER23_BASE, size: PERIPH_SIZE, kind: RegionKind::Mmio },
    Region { name: "rtc", base: RTC_BASE, size: PERIPH_SIZE, kind: RegionKind::Mmio },
    Region { name: "mb-clcd", base: MB_CLCD_BASE, size: PERIPH_SIZE, kind: RegionKind::Mmio },
    Region { name: "clcd", base: CLCD_BASE, size: PERIPH_SIZE, kind: RegionKind::Mmio },
    Region { name: "camera", base: CAMERA_BASE, size: CAMERA_SIZE, kind: RegionKind::Mmio },
    Region { name: "db-timer", base: DB_TIMER_BASE, size: PERIPH_SIZE, kind: RegionKind::Mmio },
    Region { name: "a9-private", base: A9_PRIV_BASE, size: A9_PRIV_SIZE, kind: RegionKind::Mmio },
    Region { name: "l2cc", base: L2CC_BASE, size: PERIPH_SIZE, kind: RegionKind::Mmio },
    Region { name: "flash0", base: FLASH0_BASE, size: FLASH_SIZE, kind: RegionKind::Rom },
    Region { name: "flash1", base: FLASH1_BASE, size: FLASH_SIZE, kind: RegionKind::Rom },
    Region { name: "sram", base: SRAM_BASE, size: SRAM_SIZE, kind: RegionKind::Ram },
    Region { name: "vram", base: VRAM_BASE, size: VRAM_SIZE, kind: RegionKind::Ram },
    Region { name: "ram", base: RAM_BASE, size: RAM_MAX_SIZE, kind: RegionKind::Ram },
];

// Layout invariants, checked at compile time.
const _: () = assert!(GIC_DIST_BASE + GIC_DIST_SIZE <= A9_PRIV_BASE + A9_PRIV_SIZE);
const _: () = assert!(CAMERA_BASE >= CLCD_BASE + PERIPH_SIZE && CAMERA_BASE + CAMERA_SIZE <= 0x1006_0000);
const _: () = assert!(gic_id(SPI_CAMERA) < GIC_NUM_IRQS);

/// The region containing `addr`, if any.
pub fn region_at(addr: u64) -> Option<&'static Region> {
    REGIONS.iter().find(|r| r.contains(addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_sorted_and_disjoint() {
        for w in REGIONS.windows(2) {
            assert!(w[0].end() <= w[1].base, "{} overlaps {}", w[0].name, w[1].name);
        }
    }

    #[test]
    fn a9_private_layout() {
        assert_eq!(GIC_CPU_BASE, A9_PRIV_BASE + 0x100);
        assert_eq!(GIC_DIST_BASE, A9_PRIV_BASE + 0x1000);
        assert_eq!(region_at(GIC_DIST_BASE + 0x100).unwrap().name, "a9-private");
    }

    #[test]
    fn irq_numbers() {
        assert_eq!(gic_id(SPI_UART0), 37);
        assert_eq!(gic_id(SPI_TIMER01), 34);
        assert_eq!(gic_id(SPI_CLCD), 76);
        assert!(gic_id(SPI_CAMERA) < GIC_NUM_IRQS);
        let used = [SPI_TIMER01, SPI_TIMER23, SPI_RTC, SPI_UART0, SPI_UART1, SPI_UART2, SPI_UART3,
            SPI_MB_CLCD, SPI_CLCD, SPI_DB_TIMER, SPI_DB_TIMER + 1, 43, 45, 46, 51, 60, 61, 62, 63];
        assert!(!used.contains(&SPI_CAMERA));
    }

    #[test]
    fn camera_slot_is_free() {
        let r = region_at(CAMERA_BASE).unwrap();
        assert_eq!(r.name, "camera");
        assert_eq!(region_at(RAM_WINDOW_END - 1).unwrap().name, "ram");
        assert!(region_at(RAM_WINDOW_END).is_none());
    }
}

/// cmaemu's own sysregs registers (see `cmaemu_abi::boot`): descriptor,
/// doorbell, prompt. Guests that never write the prompt register are
/// recognised by a last output line of `# `.
pub const SYS_CMAEMU_DESC: u64 = cmaemu_abi::boot::SYS_CMAEMU_DESC as u64;
pub const SYS_CMAEMU_DOORBELL: u64 = cmaemu_abi::boot::SYS_CMAEMU_DOORBELL as u64;
pub const SYS_CMAEMU_PROMPT: u64 = cmaemu_abi::boot::SYS_CMAEMU_PROMPT as u64;
