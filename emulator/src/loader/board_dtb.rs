//! The default board's device tree, generated with `vm-fdt`.
//!
//! [`default_board_dtb`] produces the same tree as `dts/vexpress-cmaemu.dts`
//! compiled by `dtc` (the `dtb` integration test checks node for node and
//! byte for byte per property, with the RAM size of the source, 1 GiB). It
//! describes the devices cmaemu emulates, with Linux's compatible strings
//! and QEMU's addresses and interrupts (see [`crate::memory::map`]), plus
//! the CMA pools under `/reserved-memory`:
//!
//! * `linux,cma` — the default CMA area (`linux,cma-default`), 64 MiB,
//!   `reusable`, placed dynamically by the kernel; also the CLCD's
//!   `memory-region` (its framebuffers come from CMA);
//! * `camera-cma` — a 32 MiB `reusable` pool for the camera
//!   (`cmaemu,camera-v1`, see `dts/bindings/cmaemu,camera-v1.yaml`),
//!   referenced by the camera node's `memory-region`.
//!
//! Phandles are fixed: GIC 1, default CMA 2, camera CMA 3, 24 MHz clock 4,
//! 1 MHz reference clock 5.

use crate::memory::map::{
    CAMERA_BASE, CAMERA_SIZE, CLCD_BASE, GIC_CPU_BASE, GIC_CPU_SIZE, GIC_DIST_BASE, GIC_DIST_SIZE, PERIPH_SIZE,
    RAM_BASE, RAM_MAX_SIZE, SCU_BASE, SPI_CAMERA, SPI_CLCD, SPI_TIMER01, SPI_UART0, SYSREGS_BASE, TIMER01_BASE,
    UART0_BASE,
};
use crate::loader::dtb::DtbError;
use crate::loader::images::{read_image, ImageError};
use crate::memory::map::valid_ram_size;
use std::path::Path;
use vm_fdt::{Error, FdtWriter};

/// Phandle of the GIC.
pub const PHANDLE_GIC: u32 = 1;
/// Phandle of the default CMA pool.
pub const PHANDLE_CMA_DEFAULT: u32 = 2;
/// Phandle of the camera CMA pool.
pub const PHANDLE_CAMERA_CMA: u32 = 3;
/// Phandle of the 24 MHz clock.
pub const PHANDLE_CLK24MHZ: u32 = 4;
/// Phandle of the 1 MHz reference clock.
pub const PHANDLE_REFCLK1MHZ: u32 = 5;

/// Default CMA size (64 MiB).
pub const DEFAULT_CMA_SIZE: u64 = 64 << 20;
/// Camera pool size (32 MiB).
pub const CAMERA_CMA_SIZE: u64 = 32 << 20;
/// Alignment requested for both pools (Linux's binding example; the kernel
/// raises it to its CMA minimum alignment anyway).
pub const CMA_ALIGNMENT: u64 = 0x2000;
/// Default kernel command line.
pub const DEFAULT_BOOTARGS: &str = "console=ttyAMA0";

/// Knobs of the generated board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardDtbOptions {
    /// RAM at 0x6000_0000, clamped to 1 GiB.
    pub ram_size: u64,
    /// `/chosen/bootargs`.
    pub bootargs: String,
    /// Size of the default CMA pool (`linux,cma`).
    pub cma_size: u64,
    /// Size of the camera pool.
    pub camera_cma_size: u64,
}

impl BoardDtbOptions {
    /// The defaults with `ram_size` of RAM.
    pub fn new(ram_size: u64) -> Self {
        BoardDtbOptions {
            ram_size,
            bootargs: DEFAULT_BOOTARGS.to_string(),
            cma_size: DEFAULT_CMA_SIZE,
            camera_cma_size: CAMERA_CMA_SIZE,
        }
    }
}

/// The default board with `ram_size` bytes of RAM (clamped to 1 GiB) and
/// the default bootargs and pools.
pub fn default_board_dtb(ram_size: u64) -> Vec<u8> {
    board_dtb(&BoardDtbOptions::new(ram_size))
}

/// The board with explicit options. Sizes are clamped to 32 bits (one cell);
/// a NUL in `bootargs` truncates it there.
pub fn board_dtb(opts: &BoardDtbOptions) -> Vec<u8> {
    // Only impossible-by-construction errors can happen (valid names, one
    // root, balanced nodes, unique phandles); fall back to an empty tree
    // rather than panic.
    write_board(opts).unwrap_or_else(|_| {
        let mut w = FdtWriter::new().expect("empty writer");
        let r = w.begin_node("").expect("root");
        w.end_node(r).expect("root end");
        w.finish().expect("finish")
    })
}

/// What `cmaemu boot` does to a device tree before the guest sees it:
/// parse it, apply `-m` (rewrite `/memory`) and `--append` (rewrite
/// `/chosen/bootargs`), check the memory nodes, serialize. Returns the
/// blob and the RAM size the board needs (the end of the highest memory
/// range, rounded up to 1 MiB, at least 16 MiB). `memory` must already be
/// a valid board RAM size.
pub fn prepare_boot_dtb(bytes: &[u8], memory: Option<u64>, append: Option<&str>) -> Result<(Vec<u8>, u64), DtbError> {
    let mut dtb = crate::loader::dtb::Dtb::parse(bytes)?;
    if let Some(m) = memory {
        dtb.set_memory(RAM_BASE, m)?;
    }
    if let Some(args) = append {
        dtb.set_bootargs(args)?;
    }
    let regions = dtb.memory_regions()?;
    // every range ends inside the RAM window: no overflow, end >= RAM_BASE
    let end = regions.iter().map(|(b, s)| b + s).max().unwrap_or(RAM_BASE);
    let ram = (end - RAM_BASE).div_ceil(1 << 20) << 20;
    Ok((dtb.to_bytes()?, ram.max(16 << 20)))
}

/// Why the device tree of a boot could not be made.
#[derive(Debug, thiserror::Error)]
pub enum BootDtbError {
    /// `-m` is no board RAM size (a bare number valid in MiB gets a hint).
    #[error("-m {}: RAM must be a multiple of 1 MiB from 16M to 1G (vexpress-a9 maps RAM at 0x60000000-0x9fffffff){}", human(*.0), mib_hint(*.0))]
    RamSize(u64),
    /// `--dtb`'s file could not be read.
    #[error(transparent)]
    Read(#[from] ImageError),
    /// The tree (named by its file, or `default board`) is bad.
    #[error("{what}: {source}")]
    Dtb { what: String, source: DtbError },
}

/// `-m`: a multiple of 1 MiB from 16M to 1G; a bare number that would be
/// valid in MiB gets a hint (`-m 256` is 256 bytes, as in QEMU's size
/// syntax with a suffix).
pub fn check_ram_size(m: u64) -> Result<(), BootDtbError> {
    if valid_ram_size(m) {
        Ok(())
    } else {
        Err(BootDtbError::RamSize(m))
    }
}

fn mib_hint(m: u64) -> String {
    match m.checked_mul(1 << 20) {
        Some(mib) if valid_ram_size(mib) => format!(" (did you mean {m}M?)"),
        _ => String::new(),
    }
}

fn human(n: u64) -> String {
    if n % (1 << 30) == 0 && n > 0 {
        format!("{}G", n >> 30)
    } else if n % (1 << 20) == 0 && n > 0 {
        format!("{}M", n >> 20)
    } else {
        format!("{n}")
    }
}

/// The DTB handed to the guest by `cmaemu boot`: `--dtb`'s file or the
/// default board (sized by `-m`, else 1 GiB), with `-m` and `--append`
/// applied and checked ([`prepare_boot_dtb`]). Returns the blob and the
/// board's RAM size.
pub fn boot_dtb(dtb: Option<&Path>, memory: Option<u64>, append: Option<&str>) -> Result<(Vec<u8>, u64), BootDtbError> {
    if let Some(m) = memory {
        check_ram_size(m)?;
    }
    let bytes = match dtb {
        Some(p) => read_image("--dtb", p)?,
        None => default_board_dtb(memory.unwrap_or(RAM_MAX_SIZE)),
    };
    let what = dtb.map(|p| p.display().to_string()).unwrap_or_else(|| "default board".into());
    prepare_boot_dtb(&bytes, memory, append).map_err(|source| BootDtbError::Dtb { what, source })
}

fn cell(v: u64) -> u32 {
    v.min(u32::MAX as u64) as u32
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn write_board(o: &BoardDtbOptions) -> Result<Vec<u8>, Error> {
    let ram = o.ram_size.min(RAM_MAX_SIZE);
    let bootargs = o.bootargs.split('\0').next().unwrap_or("");
    let spi = |n: u32| [0u32, n, 4]; // GIC_SPI n IRQ_TYPE_LEVEL_HIGH

    let mut w = FdtWriter::new()?;
    let root = w.begin_node("")?;
    w.property_string("model", "V2P-CA9")?;
    w.property_u32("arm,hbi", 0x191)?;
    w.property_u32("arm,vexpress,site", 0xf)?;
    w.property_string_list("compatible", strings(&["arm,vexpress,v2p-ca9", "arm,vexpress"]))?;
    w.property_u32("interrupt-parent", PHANDLE_GIC)?;
    w.property_u32("#address-cells", 1)?;
    w.property_u32("#size-cells", 1)?;

    let n = w.begin_node("chosen")?;
    w.property_string("bootargs", bootargs)?;
    w.property_string("stdout-path", "serial0:115200n8")?;
    w.end_node(n)?;

    let n = w.begin_node("aliases")?;
    w.property_string("serial0", &format!("/serial@{UART0_BASE:x}"))?;
    w.end_node(n)?;

    let cpus = w.begin_node("cpus")?;
    w.property_u32("#address-cells", 1)?;
    w.property_u32("#size-cells", 0)?;
    let n = w.begin_node("cpu@0")?;
    w.property_string("device_type", "cpu")?;
    w.property_string("compatible", "arm,cortex-a9")?;
    w.property_u32("reg", 0)?;
    w.end_node(n)?;
    w.end_node(cpus)?;

    let n = w.begin_node(&format!("memory@{RAM_BASE:x}"))?;
    w.property_string("device_type", "memory")?;
    w.property_array_u32("reg", &[RAM_BASE as u32, cell(ram)])?;
    w.end_node(n)?;

    let rm = w.begin_node("reserved-memory")?;
    w.property_u32("#address-cells", 1)?;
    w.property_u32("#size-cells", 1)?;
    w.property_null("ranges")?;
    let n = w.begin_node("linux,cma")?;
    w.property_string("compatible", "shared-dma-pool")?;
    w.property_null("reusable")?;
    w.property_u32("size", cell(o.cma_size))?;
    w.property_u32("alignment", CMA_ALIGNMENT as u32)?;
    w.property_null("linux,cma-default")?;
    w.property_phandle(PHANDLE_CMA_DEFAULT)?;
    w.end_node(n)?;
    let n = w.begin_node("camera-cma")?;
    w.property_string("compatible", "shared-dma-pool")?;
    w.property_null("reusable")?;
    w.property_u32("size", cell(o.camera_cma_size))?;
    w.property_u32("alignment", CMA_ALIGNMENT as u32)?;
    w.property_phandle(PHANDLE_CAMERA_CMA)?;
    w.end_node(n)?;
    w.end_node(rm)?;

    let n = w.begin_node("clk24mhz")?;
    w.property_string("compatible", "fixed-clock")?;
    w.property_u32("#clock-cells", 0)?;
    w.property_u32("clock-frequency", 24_000_000)?;
    w.property_string("clock-output-names", "v2m:clk24mhz")?;
    w.property_phandle(PHANDLE_CLK24MHZ)?;
    w.end_node(n)?;

    let n = w.begin_node("refclk1mhz")?;
    w.property_string("compatible", "fixed-clock")?;
    w.property_u32("#clock-cells", 0)?;
    w.property_u32("clock-frequency", 1_000_000)?;
    w.property_string("clock-output-names", "v2m:refclk1mhz")?;
    w.property_phandle(PHANDLE_REFCLK1MHZ)?;
    w.end_node(n)?;

    let n = w.begin_node(&format!("sysreg@{SYSREGS_BASE:x}"))?;
    w.property_string("compatible", "arm,vexpress-sysreg")?;
    w.property_array_u32("reg", &[SYSREGS_BASE as u32, PERIPH_SIZE as u32])?;
    w.end_node(n)?;

    let n = w.begin_node(&format!("serial@{UART0_BASE:x}"))?;
    w.property_string_list("compatible", strings(&["arm,pl011", "arm,primecell"]))?;
    w.property_array_u32("reg", &[UART0_BASE as u32, PERIPH_SIZE as u32])?;
    w.property_array_u32("interrupts", &spi(SPI_UART0))?;
    w.property_array_u32("clocks", &[PHANDLE_CLK24MHZ, PHANDLE_CLK24MHZ])?;
    w.property_string_list("clock-names", strings(&["uartclk", "apb_pclk"]))?;
    w.end_node(n)?;

    let n = w.begin_node(&format!("timer@{TIMER01_BASE:x}"))?;
    w.property_string_list("compatible", strings(&["arm,sp804", "arm,primecell"]))?;
    w.property_array_u32("reg", &[TIMER01_BASE as u32, PERIPH_SIZE as u32])?;
    w.property_array_u32("interrupts", &spi(SPI_TIMER01))?;
    w.property_array_u32("clocks", &[PHANDLE_REFCLK1MHZ, PHANDLE_REFCLK1MHZ, PHANDLE_CLK24MHZ])?;
    w.property_string_list("clock-names", strings(&["timclken1", "timclken2", "apb_pclk"]))?;
    w.end_node(n)?;

    let n = w.begin_node(&format!("clcd@{CLCD_BASE:x}"))?;
    w.property_string_list("compatible", strings(&["arm,pl111", "arm,primecell"]))?;
    w.property_array_u32("reg", &[CLCD_BASE as u32, PERIPH_SIZE as u32])?;
    w.property_string("interrupt-names", "combined")?;
    w.property_array_u32("interrupts", &spi(SPI_CLCD))?;
    w.property_array_u32("clocks", &[PHANDLE_CLK24MHZ, PHANDLE_CLK24MHZ])?;
    w.property_string_list("clock-names", strings(&["clcdclk", "apb_pclk"]))?;
    w.property_u32("memory-region", PHANDLE_CMA_DEFAULT)?;
    w.end_node(n)?;

    let n = w.begin_node(&format!("camera@{CAMERA_BASE:x}"))?;
    w.property_string("compatible", "cmaemu,camera-v1")?;
    w.property_array_u32("reg", &[CAMERA_BASE as u32, CAMERA_SIZE as u32])?;
    w.property_array_u32("interrupts", &spi(SPI_CAMERA))?;
    w.property_u32("memory-region", PHANDLE_CAMERA_CMA)?;
    w.end_node(n)?;

    let n = w.begin_node(&format!("scu@{SCU_BASE:x}"))?;
    w.property_string("compatible", "arm,cortex-a9-scu")?;
    w.property_array_u32("reg", &[SCU_BASE as u32, 0x58])?;
    w.end_node(n)?;

    let n = w.begin_node(&format!("interrupt-controller@{GIC_DIST_BASE:x}"))?;
    w.property_string("compatible", "arm,cortex-a9-gic")?;
    w.property_u32("#interrupt-cells", 3)?;
    w.property_u32("#address-cells", 0)?;
    w.property_null("interrupt-controller")?;
    w.property_array_u32(
        "reg",
        &[GIC_DIST_BASE as u32, GIC_DIST_SIZE as u32, GIC_CPU_BASE as u32, GIC_CPU_SIZE as u32],
    )?;
    w.property_phandle(PHANDLE_GIC)?;
    w.end_node(n)?;

    w.end_node(root)?;
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loader::dtb::Dtb;

    #[test]
    fn default_board_parses_and_has_the_essentials() {
        let d = Dtb::parse(&default_board_dtb(1 << 30)).unwrap();
        assert_eq!(d.model().as_deref(), Some("V2P-CA9"));
        assert_eq!(d.compatible(), vec!["arm,vexpress,v2p-ca9", "arm,vexpress"]);
        assert_eq!(d.memory_regions().unwrap(), vec![(0x6000_0000, 0x4000_0000)]);
        assert_eq!(d.bootargs().as_deref(), Some("console=ttyAMA0"));
        let cma = d.find("/reserved-memory/linux,cma").unwrap();
        assert!(cma.prop("linux,cma-default").is_some() && cma.prop("reusable").is_some());
        assert_eq!(cma.prop_u32("size"), Some(64 << 20));
        let (cam_path, cam) = &d.find_compatible("cmaemu,camera-v1")[0];
        assert_eq!(cam_path, "/camera@10030000");
        let pool = d.find_phandle(cam.prop_u32("memory-region").unwrap()).unwrap();
        assert_eq!(pool.0, "/reserved-memory/camera-cma");
        assert_eq!(pool.1.prop_u32("size"), Some(32 << 20));
        let gic = d.find_compatible("arm,cortex-a9-gic");
        assert_eq!(gic[0].1.prop_u32("phandle"), d.root.prop_u32("interrupt-parent"));
        let uart = d.find("/serial@10009000").unwrap();
        assert_eq!(uart.prop("interrupts").unwrap(), &[0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 4]);
    }

    #[test]
    fn ram_size_and_options() {
        let d = Dtb::parse(&default_board_dtb(256 << 20)).unwrap();
        assert_eq!(d.memory_regions().unwrap(), vec![(0x6000_0000, 256 << 20)]);
        let d = Dtb::parse(&default_board_dtb(u64::MAX)).unwrap();
        assert_eq!(d.memory_regions().unwrap(), vec![(0x6000_0000, 1 << 30)]);
        let mut o = BoardDtbOptions::new(1 << 29);
        o.bootargs = "console=ttyAMA0 cma=32M".into();
        o.camera_cma_size = 16 << 20;
        let d = Dtb::parse(&board_dtb(&o)).unwrap();
        assert_eq!(d.bootargs().as_deref(), Some("console=ttyAMA0 cma=32M"));
        assert_eq!(d.find("/reserved-memory/camera-cma").unwrap().prop_u32("size"), Some(16 << 20));
    }
}
