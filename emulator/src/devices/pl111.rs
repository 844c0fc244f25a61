//! ARM PrimeCell Color LCD Controller (PL111), after the PL111 TRM (DDI 0293),
//! Linux's `drivers/gpu/drm/pl111` (`pl111_drm.h`, `pl111_display.c`) and
//! QEMU's `hw/display/pl110.c` (`pl111` variant).
//!
//! ## Register map (offsets in the 4 KiB window)
//!
//! | offset        | name                | access | notes                                  |
//! |---------------|---------------------|--------|----------------------------------------|
//! | 0x000         | LCDTiming0          | RW     | PPL 7:2, HSW 15:8, HFP 23:16, HBP 31:24 |
//! | 0x004         | LCDTiming1          | RW     | LPP 9:0, VSW 15:10, VFP 23:16, VBP 31:24 |
//! | 0x008         | LCDTiming2          | RW     | PCD_LO 4:0, CLKSEL 5, ACB 10:6, IVS 11, IHS 12, IPC 13, IOE 14, CPL 25:16, BCD 26, PCD_HI 31:27 |
//! | 0x00c         | LCDTiming3          | RW     | LED 6:0, LEE 16                         |
//! | 0x010         | LCDUPBASE           | RW     | upper panel frame base (bits 1:0 read 0) |
//! | 0x014         | LCDLPBASE           | RW     | lower panel frame base                  |
//! | 0x018         | LCDControl          | RW     | `CLCD_PL111_CNTL`, see `CNTL_*`          |
//! | 0x01c         | LCDIMSC             | RW     | `CLCD_PL111_IENB`, see `INT_*`           |
//! | 0x020         | LCDRIS              | RO     | raw interrupt status                    |
//! | 0x024         | LCDMIS              | RO     | RIS & IMSC                              |
//! | 0x028         | LCDICR              | WO     | write 1 to clear RIS bits               |
//! | 0x02c         | LCDUPCURR           | RO     | upper panel base latched at the last frame start |
//! | 0x030         | LCDLPCURR           | RO     | lower panel base latched at the last frame start |
//! | 0x200..0x3fc  | LCDPalette          | RW     | 256 × 16-bit entries, two per word       |
//! | 0x800..0xbfc  | CursorImage         | RW     | stored, not drawn                        |
//! | 0xc00..0xc14  | ClcdCrsrCtrl/Config/Palette0/Palette1/XY/Clip | RW | stored, not drawn |
//! | 0xc20         | ClcdCrsrIMSC        | RW     | stored; the cursor never interrupts      |
//! | 0xc24         | ClcdCrsrICR         | WO     |                                          |
//! | 0xc28/0xc2c   | ClcdCrsrRIS/MIS     | RO     | always 0                                 |
//! | 0xfe0..0xffc  | PeriphID/PCellID    | RO     | PeriphID = 0x00041111 (Linux's amba id), PCellID = 0xb105f00d |
//!
//! ## Scan-out
//!
//! The board calls [`Pl111::vsync`] once per frame period (when
//! [`MmioDevice::next_deadline_ns`] has passed). With `LcdEn` set, every
//! vsync latches LCDUPBASE/LCDLPBASE into the CURR registers and raises the
//! *next base update* (`INT_LNBU`, what Linux's pl111 driver enables and
//! treats as vblank) and *vertical compare* (`INT_VCOMP`) raw interrupts.
//! With `LcdEn` and `LcdPwr` set it also reads the frame from LCDUPBASE by
//! guest-physical DMA reads, converts it to RGBA8 and returns it with one
//! [`DmaTransfer`] (read) record. A frame that is not entirely inside backed
//! memory raises the AHB master error interrupt (`INT_MBERROR`) and records a
//! [`ScanoutError`]; nothing panics.
//!
//! The frame is `16 × (PPL + 1)` pixels wide and `LPP + 1` lines high,
//! packed (the PL111 has no stride register).
//!
//! ## Supported pixel formats (single-panel, little-endian bytes and pixels)
//!
//! | LcdBpp (CNTL 3:1)   | memory layout, `LcdBgr` = 0 (R in the low bits) | `LcdBgr` = 1 (Linux's DRM format) |
//! |---------------------|--------------------------------------------------|-----------------------------------|
//! | 0..3 (1/2/4/8 bpp)  | palette index, LSB-first; palette entry R 4:0, G 9:5, B 14:10 | R/B swapped in the entry |
//! | 4 (16 bpp 1555)     | R 4:0, G 9:5, B 14:10 (DRM XBGR1555)             | DRM XRGB1555                       |
//! | 5 (24 bpp)          | 32-bit words: R 7:0, G 15:8, B 23:16 (DRM XBGR8888) | DRM XRGB8888 (B 7:0, R 23:16)   |
//! | 6 (16 bpp 565)      | R 4:0, G 10:5, B 15:11 (DRM BGR565)              | DRM RGB565 (R 15:11)               |
//! | 7 (12 bpp 444)      | R 3:0, G 7:4, B 11:8 (DRM XBGR4444)              | DRM XRGB4444                       |
//!
//! As Linux's driver notes, the ARM format reader takes red from the low
//! bits; Linux sets `CNTL_BGR` for the DRM `XRGB8888`/`RGB565` formats.
//! Unsupported settings — dual panel (`LcdDual`), monochrome STN (`LcdBw`
//! without `LcdTft`), big-endian byte or pixel order (`BEBO`, `BEPO`) — are
//! logged as a bad access when `LcdEn` is written and make each vsync record
//! a [`ScanoutError::Format`] instead of a frame (interrupts still run).

use super::dma::{DmaError, DmaMemory, DmaTransfer};
use super::{primecell_id, BadAccessLog, MmioDevice};

/// LCDTiming0.
pub const CLCD_TIM0: u64 = 0x000;
/// LCDTiming1.
pub const CLCD_TIM1: u64 = 0x004;
/// LCDTiming2.
pub const CLCD_TIM2: u64 = 0x008;
/// LCDTiming3.
pub const CLCD_TIM3: u64 = 0x00c;
/// Upper panel frame base address.
pub const CLCD_UBAS: u64 = 0x010;
/// Lower panel frame base address.
pub const CLCD_LBAS: u64 = 0x014;
/// Control register (PL111 layout).
pub const CLCD_PL111_CNTL: u64 = 0x018;
/// Interrupt mask set/clear (enable).
pub const CLCD_PL111_IENB: u64 = 0x01c;
/// Raw interrupt status.
pub const CLCD_PL111_RIS: u64 = 0x020;
/// Masked interrupt status.
pub const CLCD_PL111_MIS: u64 = 0x024;
/// Interrupt clear.
pub const CLCD_PL111_ICR: u64 = 0x028;
/// Upper panel current address.
pub const CLCD_PL111_UCUR: u64 = 0x02c;
/// Lower panel current address.
pub const CLCD_PL111_LCUR: u64 = 0x030;
/// First palette word.
pub const CLCD_PALETTE: u64 = 0x200;
/// First cursor image word.
pub const CLCD_CRSR_IMAGE: u64 = 0x800;
/// Cursor control.
pub const CLCD_CRSR_CTRL: u64 = 0xc00;
/// Cursor interrupt mask.
pub const CLCD_CRSR_IMSC: u64 = 0xc20;
/// Cursor interrupt clear.
pub const CLCD_CRSR_ICR: u64 = 0xc24;
/// Cursor raw interrupt status.
pub const CLCD_CRSR_RIS: u64 = 0xc28;
/// Cursor masked interrupt status.
pub const CLCD_CRSR_MIS: u64 = 0xc2c;

/// CNTL: controller enable (timing generator runs).
pub const CNTL_LCDEN: u32 = 1 << 0;
/// CNTL: bits-per-pixel field shift (bits 3:1).
pub const CNTL_LCDBPP_SHIFT: u32 = 1;
/// CNTL: 1 bpp (palettized).
pub const CNTL_LCDBPP1: u32 = 0 << 1;
/// CNTL: 2 bpp (palettized).
pub const CNTL_LCDBPP2: u32 = 1 << 1;
/// CNTL: 4 bpp (palettized).
pub const CNTL_LCDBPP4: u32 = 2 << 1;
/// CNTL: 8 bpp (palettized).
pub const CNTL_LCDBPP8: u32 = 3 << 1;
/// CNTL: 16 bpp, 5:5:5 + intensity.
pub const CNTL_LCDBPP16: u32 = 4 << 1;
/// CNTL: "24 bpp" (one pixel per 32-bit word).
pub const CNTL_LCDBPP24: u32 = 5 << 1;
/// CNTL: 16 bpp 5:6:5 (PL111 only).
pub const CNTL_LCDBPP16_565: u32 = 6 << 1;
/// CNTL: 12 bpp 4:4:4 (PL111 only).
pub const CNTL_LCDBPP16_444: u32 = 7 << 1;
/// CNTL: monochrome STN.
pub const CNTL_LCDBW: u32 = 1 << 4;
/// CNTL: TFT panel.
pub const CNTL_LCDTFT: u32 = 1 << 5;
/// CNTL: 8-bit monochrome STN interface.
pub const CNTL_LCDMONO8: u32 = 1 << 6;
/// CNTL: dual panel.
pub const CNTL_LCDDUAL: u32 = 1 << 7;
/// CNTL: swap red and blue.
pub const CNTL_BGR: u32 = 1 << 8;
/// CNTL: big-endian byte order.
pub const CNTL_BEBO: u32 = 1 << 9;
/// CNTL: big-endian pixel order within a byte.
pub const CNTL_BEPO: u32 = 1 << 10;
/// CNTL: panel power (data output enable).
pub const CNTL_LCDPWR: u32 = 1 << 11;
/// CNTL: vertical compare position field shift (bits 13:12).
pub const CNTL_LCDVCOMP_SHIFT: u32 = 12;
/// CNTL: DMA FIFO request timing.
pub const CNTL_LDMAFIFOTIME: u32 = 1 << 15;
/// CNTL: DMA FIFO watermark (8 instead of 4 free words).
pub const CNTL_WATERMARK: u32 = 1 << 16;
/// Writable CNTL bits.
pub const CNTL_MASK: u32 = 0x1_ffff;

/// Interrupt: FIFO underflow (never raised: the model has no FIFO).
pub const INT_FUF: u32 = 1 << 1;
/// Interrupt: LCD next base address update (Linux `CLCD_IRQ_NEXTBASE_UPDATE`).
pub const INT_LNBU: u32 = 1 << 2;
/// Interrupt: vertical compare.
pub const INT_VCOMP: u32 = 1 << 3;
/// Interrupt: AHB master bus error (scan-out outside memory).
pub const INT_MBERROR: u32 = 1 << 4;
/// All interrupt bits.
pub const INT_MASK: u32 = INT_FUF | INT_LNBU | INT_VCOMP | INT_MBERROR;

/// TIM2: pixel clock divisor bypass.
pub const TIM2_BCD: u32 = 1 << 26;
/// TIM2: invert vertical sync.
pub const TIM2_IVS: u32 = 1 << 11;
/// TIM2: invert horizontal sync.
pub const TIM2_IHS: u32 = 1 << 12;
/// TIM2: invert panel clock.
pub const TIM2_IPC: u32 = 1 << 13;
/// TIM2: invert output enable.
pub const TIM2_IOE: u32 = 1 << 14;
/// TIM2: clock select (CLCDCLK vs HCLK).
pub const TIM2_CLKSEL: u32 = 1 << 5;

/// PeriphID0..3: part 0x111, designer ARM (0x41), revision 0 — `0x00041111`,
/// the id Linux's pl111 driver matches (`amba_id` 0x00041111, mask 0x000fffff).
pub const PERIPH_ID: [u8; 4] = [0x11, 0x11, 0x04, 0x00];

/// Frame period used until the board sets one (60 Hz).
pub const DEFAULT_FRAME_PERIOD_NS: u64 = 16_666_667;

/// Bytes of the palette (256 16-bit entries).
const PALETTE_WORDS: usize = 128;
/// Words of the cursor image (0x800..0xc00).
const CURSOR_WORDS: usize = 256;

/// Decoded LCDTiming0..3 (values are in the units the TRM gives, the
/// "minus one" encodings already undone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timings {
    /// Active pixels per line: `16 × (PPL + 1)`.
    pub pixels_per_line: u32,
    /// Horizontal sync width in pixel clocks (`HSW + 1`).
    pub hsync_width: u32,
    /// Horizontal front porch in pixel clocks (`HFP + 1`).
    pub h_front_porch: u32,
    /// Horizontal back porch in pixel clocks (`HBP + 1`).
    pub h_back_porch: u32,
    /// Active lines per panel: `LPP + 1`.
    pub lines_per_panel: u32,
    /// Vertical sync width in lines (`VSW + 1`).
    pub vsync_width: u32,
    /// Vertical front porch in lines (`VFP`).
    pub v_front_porch: u32,
    /// Vertical back porch in lines (`VBP`).
    pub v_back_porch: u32,
    /// Panel clock divisor `PCD` (10 bits: PCD_HI:PCD_LO); CLCP = CLCDCLK/(PCD+2).
    pub pcd: u32,
    /// Divisor bypass: CLCP = CLCDCLK.
    pub bypass_divisor: bool,
    /// Clocks per line (`CPL + 1`).
    pub clocks_per_line: u32,
    /// AC bias pin frequency (`ACB`).
    pub ac_bias: u32,
    /// Clock select (TIM2 bit 5).
    pub clksel: bool,
    /// Invert vertical sync.
    pub ivs: bool,
    /// Invert horizontal sync.
    pub ihs: bool,
    /// Invert panel clock.
    pub ipc: bool,
    /// Invert output enable.
    pub ioe: bool,
    /// Line end delay (`LED + 1` when enabled).
    pub line_end_delay: u32,
    /// Line end enable.
    pub line_end_enable: bool,
}

impl Timings {
    /// Decode the four timing registers.
    pub fn decode(tim: [u32; 4]) -> Self {
        let [t0, t1, t2, t3] = tim;
        Timings {
            pixels_per_line: 16 * (((t0 >> 2) & 0x3f) + 1),
            hsync_width: ((t0 >> 8) & 0xff) + 1,
            h_front_porch: ((t0 >> 16) & 0xff) + 1,
            h_back_porch: ((t0 >> 24) & 0xff) + 1,
            lines_per_panel: (t1 & 0x3ff) + 1,
            vsync_width: ((t1 >> 10) & 0x3f) + 1,
            v_front_porch: (t1 >> 16) & 0xff,
            v_back_porch: (t1 >> 24) & 0xff,
            pcd: ((t2 >> 27) << 5) | (t2 & 0x1f),
            bypass_divisor: t2 & TIM2_BCD != 0,
            clocks_per_line: ((t2 >> 16) & 0x3ff) + 1,
            ac_bias: (t2 >> 6) & 0x1f,
            clksel: t2 & TIM2_CLKSEL != 0,
            ivs: t2 & TIM2_IVS != 0,
            ihs: t2 & TIM2_IHS != 0,
            ipc: t2 & TIM2_IPC != 0,
            ioe: t2 & TIM2_IOE != 0,
            line_end_delay: (t3 & 0x7f) + 1,
            line_end_enable: t3 & (1 << 16) != 0,
        }
    }

    /// Pixel clocks per line including sync and porches.
    pub fn htotal(&self) -> u64 {
        self.pixels_per_line as u64 + self.hsync_width as u64 + self.h_front_porch as u64 + self.h_back_porch as u64
    }

    /// Lines per frame including sync and porches.
    pub fn vtotal(&self) -> u64 {
        self.lines_per_panel as u64 + self.vsync_width as u64 + self.v_front_porch as u64 + self.v_back_porch as u64
    }

    /// Panel clock for a CLCDCLK of `clcdclk_hz`.
    pub fn pixel_clock_hz(&self, clcdclk_hz: u64) -> u64 {
        if self.bypass_divisor {
            clcdclk_hz
        } else {
            clcdclk_hz / (self.pcd as u64 + 2)
        }
    }

    /// Frame period in ns for a CLCDCLK of `clcdclk_hz` (None if the clock is 0).
    pub fn frame_period_ns(&self, clcdclk_hz: u64) -> Option<u64> {
        let pix = self.pixel_clock_hz(clcdclk_hz);
        if pix == 0 {
            return None;
        }
        let clocks = self.htotal() as u128 * self.vtotal() as u128;
        Some(((clocks * 1_000_000_000u128).div_ceil(pix as u128)).min(u64::MAX as u128) as u64)
    }
}

/// Pixel format selected by `LcdBpp` (CNTL bits 3:1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelFormat {
    /// 1 bpp palettized.
    Pal1,
    /// 2 bpp palettized.
    Pal2,
    /// 4 bpp palettized.
    Pal4,
    /// 8 bpp palettized.
    Pal8,
    /// 16 bpp 5:5:5 (+ intensity bit, ignored).
    Rgb1555,
    /// "24 bpp": 8:8:8 in a 32-bit word.
    Rgb888,
    /// 16 bpp 5:6:5.
    Rgb565,
    /// 12 bpp 4:4:4 in a 16-bit halfword.
    Rgb444,
}

impl PixelFormat {
    /// From the CNTL register.
    pub fn from_cntl(cntl: u32) -> Self {
        match (cntl >> CNTL_LCDBPP_SHIFT) & 7 {
            0 => PixelFormat::Pal1,
            1 => PixelFormat::Pal2,
            2 => PixelFormat::Pal4,
            3 => PixelFormat::Pal8,
            4 => PixelFormat::Rgb1555,
            5 => PixelFormat::Rgb888,
            6 => PixelFormat::Rgb565,
            _ => PixelFormat::Rgb444,
        }
    }

    /// Bits each pixel occupies in memory.
    pub fn bits_per_pixel(self) -> u32 {
        match self {
            PixelFormat::Pal1 => 1,
            PixelFormat::Pal2 => 2,
            PixelFormat::Pal4 => 4,
            PixelFormat::Pal8 => 8,
            PixelFormat::Rgb1555 | PixelFormat::Rgb565 | PixelFormat::Rgb444 => 16,
            PixelFormat::Rgb888 => 32,
        }
    }

    /// Bytes of a packed `width × height` frame.
    pub fn frame_bytes(self, width: u32, height: u32) -> u64 {
        (width as u64 * height as u64 * self.bits_per_pixel() as u64).div_ceil(8)
    }
}

/// Why a vsync produced no frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanoutError {
    /// The CNTL setting is not supported by the model (see module docs).
    Format {
        /// The CNTL value.
        cntl: u32,
    },
    /// The frame is not entirely inside backed memory (raises `INT_MBERROR`).
    Bus(DmaError),
}

impl std::fmt::Display for ScanoutError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScanoutError::Format { cntl } => write!(f, "pl111: unsupported LCDControl {cntl:#x}"),
            ScanoutError::Bus(e) => write!(f, "pl111: scan-out bus error: {e}"),
        }
    }
}

/// One scanned-out frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Scan-out sequence number (0, 1, ...; counts frames actually read).
    pub number: u64,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Memory format.
    pub format: PixelFormat,
    /// `LcdBgr` was set.
    pub bgr: bool,
    /// Physical base the frame was read from (LCDUPBASE).
    pub base: u64,
    /// `width × height` RGBA8 pixels (alpha 255), row-major.
    pub rgba: Vec<u8>,
    /// The DMA read that fetched it.
    pub transfer: DmaTransfer,
}

/// Convert a packed frame in `format` to RGBA8 (see the module docs for the
/// layouts). `palette` is the 256-entry palette used by the palettized
/// formats. `raw` shorter than the frame reads as zeros.
pub fn to_rgba(raw: &[u8], width: u32, height: u32, format: PixelFormat, bgr: bool, palette: &[u16; 256]) -> Vec<u8> {
    let n = width as usize * height as usize;
    let mut out = Vec::with_capacity(n * 4);
    let byte = |i: usize| raw.get(i).copied().unwrap_or(0);
    let half = |i: usize| u16::from_le_bytes([byte(2 * i), byte(2 * i + 1)]);
    let ex5 = |v: u32| ((v << 3) | (v >> 2)) as u8;
    let ex6 = |v: u32| ((v << 2) | (v >> 4)) as u8;
    let ex4 = |v: u32| (v * 17) as u8;
    let mut push = |lo: u8, mid: u8, hi: u8| {
        // `lo` is the channel in the low bits: red unless BGR.
        let (r, g, b) = if bgr { (hi, mid, lo) } else { (lo, mid, hi) };
        out.extend_from_slice(&[r, g, b, 0xff]);
    };
    match format {
        PixelFormat::Rgb888 => {
            for i in 0..n {
                push(byte(4 * i), byte(4 * i + 1), byte(4 * i + 2));
            }
        }
        PixelFormat::Rgb565 => {
            for i in 0..n {
                let v = half(i) as u32;
                push(ex5(v & 0x1f), ex6((v >> 5) & 0x3f), ex5(v >> 11));
            }
        }
        PixelFormat::Rgb1555 => {
            for i in 0..n {
                let v = half(i) as u32;
                push(ex5(v & 0x1f), ex5((v >> 5) & 0x1f), ex5((v >> 10) & 0x1f));
            }
        }
        PixelFormat::Rgb444 => {
            for i in 0..n {
                let v = half(i) as u32;
                push(ex4(v & 0xf), ex4((v >> 4) & 0xf), ex4((v >> 8) & 0xf));
            }
        }
        PixelFormat::Pal1 | PixelFormat::Pal2 | PixelFormat::Pal4 | PixelFormat::Pal8 => {
            let bits = format.bits_per_pixel() as usize;
            let mask = (1u32 << bits) - 1;
            for i in 0..n {
                let bit = i * bits;
                let idx = (byte(bit / 8) as u32 >> (bit % 8)) & mask;
                let e = palette[idx as usize] as u32;
                push(ex5(e & 0x1f), ex5((e >> 5) & 0x1f), ex5((e >> 10) & 0x1f));
            }
        }
    }
    out
}

/// The PL111 model.
#[derive(Debug, Clone)]
pub struct Pl111 {
    tim: [u32; 4],
    upbase: u32,
    lpbase: u32,
    cntl: u32,
    imsc: u32,
    ris: u32,
    upcurr: u32,
    lpcurr: u32,
    palette: [u32; PALETTE_WORDS],
    cursor_image: Box<[u32; CURSOR_WORDS]>,
    /// ClcdCrsrCtrl, Config, Palette0, Palette1, XY, Clip (0xc00..0xc14).
    cursor_regs: [u32; 6],
    cursor_imsc: u32,
    now_ns: u64,
    period_ns: u64,
    clcdclk_hz: Option<u64>,
    next_vsync_ns: Option<u64>,
    vsyncs: u64,
    scanned: u64,
    errors: u64,
    last_error: Option<ScanoutError>,
    scratch: Vec<u8>,
    bad: BadAccessLog,
}

impl Default for Pl111 {
    fn default() -> Self {
        Self::new()
    }
}

impl Pl111 {
    /// Reset state (all registers 0, controller disabled), frame period
    /// [`DEFAULT_FRAME_PERIOD_NS`].
    pub fn new() -> Self {
        Pl111 {
            tim: [0; 4],
            upbase: 0,
            lpbase: 0,
            cntl: 0,
            imsc: 0,
            ris: 0,
            upcurr: 0,
            lpcurr: 0,
            palette: [0; PALETTE_WORDS],
            cursor_image: Box::new([0; CURSOR_WORDS]),
            cursor_regs: [0; 6],
            cursor_imsc: 0,
            now_ns: 0,
            period_ns: DEFAULT_FRAME_PERIOD_NS,
            clcdclk_hz: None,
            next_vsync_ns: None,
            vsyncs: 0,
            scanned: 0,
            errors: 0,
            last_error: None,
            scratch: Vec::new(),
            bad: BadAccessLog::default(),
        }
    }

    /// Use a fixed frame period (board-chosen), replacing any pixel clock.
    pub fn set_frame_period_ns(&mut self, ns: u64) {
        self.period_ns = ns.max(1);
        self.clcdclk_hz = None;
    }

    /// Derive the frame period from the timing registers and a CLCDCLK of
    /// `hz` (the vexpress CoreTile feeds OSC1); falls back to the fixed
    /// period while the clock is 0.
    pub fn set_clcdclk_hz(&mut self, hz: u64) {
        self.clcdclk_hz = Some(hz);
    }

    /// The frame period now in force.
    pub fn frame_period_ns(&self) -> u64 {
        self.clcdclk_hz
            .and_then(|hz| self.timings().frame_period_ns(hz))
            .unwrap_or(self.period_ns)
            .max(1)
    }

    /// Decoded timing registers.
    pub fn timings(&self) -> Timings {
        Timings::decode(self.tim)
    }

    /// The LCDControl register.
    pub fn control(&self) -> u32 {
        self.cntl
    }

    /// Controller enabled (`LcdEn`): vsync interrupts run.
    pub fn enabled(&self) -> bool {
        self.cntl & CNTL_LCDEN != 0
    }

    /// Enabled and powered: vsyncs scan out.
    pub fn scanning(&self) -> bool {
        self.cntl & (CNTL_LCDEN | CNTL_LCDPWR) == CNTL_LCDEN | CNTL_LCDPWR
    }

    /// Active size in pixels (width, height).
    pub fn size(&self) -> (u32, u32) {
        let t = self.timings();
        (t.pixels_per_line, t.lines_per_panel)
    }

    /// The memory format, or `None` when CNTL selects an unsupported mode.
    pub fn pixel_format(&self) -> Option<PixelFormat> {
        Self::supported(self.cntl).then(|| PixelFormat::from_cntl(self.cntl))
    }

    fn supported(cntl: u32) -> bool {
        cntl & (CNTL_LCDDUAL | CNTL_BEBO | CNTL_BEPO) == 0 && !(cntl & CNTL_LCDBW != 0 && cntl & CNTL_LCDTFT == 0)
    }

    /// Frame base address (LCDUPBASE).
    pub fn base(&self) -> u64 {
        self.upbase as u64
    }

    /// What the panel shows now: (physical base latched at the last
    /// vsync, frame bytes), once a frame was scanned out and while the
    /// controller scans out in a supported format.
    pub fn scanout(&self) -> Option<(u64, u64)> {
        if self.scanned == 0 || !self.scanning() {
            return None;
        }
        let (w, h) = self.size();
        Some((self.upcurr as u64, self.pixel_format()?.frame_bytes(w, h)))
    }

    /// Vsyncs seen while enabled.
    pub fn vsync_count(&self) -> u64 {
        self.vsyncs
    }

    /// Frames scanned out.
    pub fn frame_count(&self) -> u64 {
        self.scanned
    }

    /// Vsyncs that failed to scan out (format or bus errors).
    pub fn error_count(&self) -> u64 {
        self.errors
    }

    /// The most recent scan-out error.
    pub fn last_error(&self) -> Option<&ScanoutError> {
        self.last_error.as_ref()
    }

    /// Interrupt output (CLCDINTR): `RIS & IMSC != 0`.
    pub fn irq_level(&self) -> bool {
        self.ris & self.imsc != 0
    }

    /// Raw interrupt status.
    pub fn raw_status(&self) -> u32 {
        self.ris
    }

    /// The 256 palette entries.
    pub fn palette(&self) -> [u16; 256] {
        let mut p = [0u16; 256];
        for (i, w) in self.palette.iter().enumerate() {
            p[2 * i] = *w as u16;
            p[2 * i + 1] = (*w >> 16) as u16;
        }
        p
    }

    /// Record the current virtual time.
    pub fn advance_to(&mut self, now_ns: u64) {
        self.now_ns = self.now_ns.max(now_ns);
    }

    /// When the board must call [`Pl111::vsync`] next (None while disabled,
    /// or when the next frame would lie past `u64::MAX` ns).
    pub fn next_vsync_ns(&self) -> Option<u64> {
        self.next_vsync_ns
    }

    /// One frame: latch the bases, raise LNBU and VCOMP, and (when powered)
    /// scan the frame out of `mem`. Call when [`Pl111::next_vsync_ns`] has
    /// passed (or at any time: a board-driven vsync). Returns the frame, or
    /// None when disabled, unpowered or on error (see [`Pl111::last_error`]).
    pub fn vsync(&mut self, now_ns: u64, mem: &dyn DmaMemory) -> Option<Frame> {
        self.advance_to(now_ns);
        if !self.enabled() {
            self.next_vsync_ns = None;
            return None;
        }
        // The first period boundary after `now_ns` (missed frames are
        // skipped, not replayed); None once virtual time would overflow.
        let period = self.frame_period_ns();
        let last = self.next_vsync_ns.unwrap_or(now_ns);
        let next = if last > now_ns {
            Some(last)
        } else {
            ((now_ns - last) / period + 1).checked_mul(period).and_then(|d| last.checked_add(d))
        };
        self.next_vsync_ns = next;
        self.vsyncs += 1;
        self.upcurr = self.upbase;
        self.lpcurr = self.lpbase;
        self.ris |= INT_LNBU | INT_VCOMP;
        if !self.scanning() {
            return None;
        }
        match self.read_frame(mem) {
            Ok((format, width, height, rgba)) => {
                let number = self.scanned;
                self.scanned += 1;
                let transfer = DmaTransfer {
                    device: "pl111",
                    pa: self.upbase as u64,
                    len: format.frame_bytes(width, height),
                    write: false,
                    frame: number,
                    at_ns: now_ns,
                };
                Some(Frame {
                    number,
                    width,
                    height,
                    format,
                    bgr: self.cntl & CNTL_BGR != 0,
                    base: self.upbase as u64,
                    rgba,
                    transfer,
                })
            }
            Err(e) => {
                if matches!(e, ScanoutError::Bus(_)) {
                    self.ris |= INT_MBERROR;
                }
                self.errors += 1;
                self.last_error = Some(e);
                None
            }
        }
    }

    /// The picture the panel would show now, read from `mem` without any
    /// device side effect (no interrupt, no counters): for screenshots.
    pub fn snapshot(&self, mem: &dyn DmaMemory) -> Result<(u32, u32, Vec<u8>), ScanoutError> {
        let mut copy = Pl111 { scratch: Vec::new(), ..self.clone() };
        copy.read_frame(mem).map(|(_, w, h, rgba)| (w, h, rgba))
    }

    fn read_frame(&mut self, mem: &dyn DmaMemory) -> Result<(PixelFormat, u32, u32, Vec<u8>), ScanoutError> {
        let format = self.pixel_format().ok_or(ScanoutError::Format { cntl: self.cntl })?;
        let (width, height) = self.size();
        let len = format.frame_bytes(width, height) as usize;
        self.scratch.resize(len, 0);
        mem.read(self.upbase as u64, &mut self.scratch).map_err(ScanoutError::Bus)?;
        let rgba = to_rgba(&self.scratch, width, height, format, self.cntl & CNTL_BGR != 0, &self.palette());
        Ok((format, width, height, rgba))
    }

    fn write_cntl(&mut self, value: u32) {
        let old = self.cntl;
        self.cntl = value & CNTL_MASK;
        if self.cntl & CNTL_LCDEN != 0 {
            if old & CNTL_LCDEN == 0 {
                self.next_vsync_ns = self.now_ns.checked_add(self.frame_period_ns());
            }
            if !Self::supported(self.cntl) {
                self.bad.write(CLCD_PL111_CNTL, value);
            }
        } else {
            self.next_vsync_ns = None;
        }
    }
}

impl MmioDevice for Pl111 {
    fn name(&self) -> &'static str {
        "pl111"
    }

    fn read(&mut self, offset: u64) -> u32 {
        match offset {
            CLCD_TIM0..=CLCD_TIM3 if offset.is_multiple_of(4) => self.tim[(offset / 4) as usize],
            CLCD_UBAS => self.upbase,
            CLCD_LBAS => self.lpbase,
            CLCD_PL111_CNTL => self.cntl,
            CLCD_PL111_IENB => self.imsc,
            CLCD_PL111_RIS => self.ris,
            CLCD_PL111_MIS => self.ris & self.imsc,
            CLCD_PL111_UCUR => self.upcurr,
            CLCD_PL111_LCUR => self.lpcurr,
            0x200..=0x3fc if offset.is_multiple_of(4) => self.palette[((offset - CLCD_PALETTE) / 4) as usize],
            0x800..=0xbfc if offset.is_multiple_of(4) => self.cursor_image[((offset - CLCD_CRSR_IMAGE) / 4) as usize],
            0xc00..=0xc14 if offset.is_multiple_of(4) => self.cursor_regs[((offset - CLCD_CRSR_CTRL) / 4) as usize],
            CLCD_CRSR_IMSC => self.cursor_imsc,
            CLCD_CRSR_RIS | CLCD_CRSR_MIS => 0,
            _ => match primecell_id(offset, PERIPH_ID) {
                Some(v) => v,
                None => {
                    // ICR and CrsrICR are write-only; everything else is reserved.
                    self.bad.read(offset);
                    0
                }
            },
        }
    }

    fn write(&mut self, offset: u64, value: u32) {
        match offset {
            CLCD_TIM0..=CLCD_TIM3 if offset.is_multiple_of(4) => self.tim[(offset / 4) as usize] = value,
            CLCD_UBAS => self.upbase = value & !3,
            CLCD_LBAS => self.lpbase = value & !3,
            CLCD_PL111_CNTL => self.write_cntl(value),
            CLCD_PL111_IENB => self.imsc = value & INT_MASK,
            CLCD_PL111_ICR => self.ris &= !(value & INT_MASK),
            0x200..=0x3fc if offset.is_multiple_of(4) => self.palette[((offset - CLCD_PALETTE) / 4) as usize] = value,
            0x800..=0xbfc if offset.is_multiple_of(4) => {
                self.cursor_image[((offset - CLCD_CRSR_IMAGE) / 4) as usize] = value
            }
            0xc00..=0xc14 if offset.is_multiple_of(4) => self.cursor_regs[((offset - CLCD_CRSR_CTRL) / 4) as usize] = value,
            CLCD_CRSR_IMSC => self.cursor_imsc = value & 0xf,
            CLCD_CRSR_ICR => {}
            _ => self.bad.write(offset, value),
        }
    }

    fn bad_accesses(&self) -> &BadAccessLog {
        &self.bad
    }

    fn advance_to(&mut self, now_ns: u64) {
        Pl111::advance_to(self, now_ns)
    }

    fn next_deadline_ns(&self) -> Option<u64> {
        self.next_vsync_ns
    }

    fn is_storage_register(&self, offset: u64) -> bool {
        matches!(offset, 0x000..=0x01c | 0x200..=0x3fc | 0x800..=0xc14 | CLCD_CRSR_IMSC)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::dma::VecRam;

    const RAM: u64 = 0x6000_0000;

    /// Program like Linux's pl111_display_enable for a `w × h` mode.
    fn program(d: &mut Pl111, w: u32, h: u32, base: u32, cntl_fmt: u32) {
        let (hsw, hfp, hbp) = (96u32, 16u32, 48u32);
        let (vsw, vfp, vbp) = (2u32, 10u32, 33u32);
        d.write(CLCD_TIM0, ((w / 16 - 1) << 2) | ((hsw - 1) << 8) | ((hfp - 1) << 16) | ((hbp - 1) << 24));
        d.write(CLCD_TIM1, (h - 1) | ((vsw - 1) << 10) | (vfp << 16) | (vbp << 24));
        d.write(CLCD_TIM2, TIM2_BCD | ((w - 1) << 16));
        d.write(CLCD_TIM3, 0);
        d.write(CLCD_UBAS, base);
        d.write(CLCD_PL111_CNTL, CNTL_LCDEN | CNTL_LCDTFT | CNTL_LCDPWR | (1 << CNTL_LCDVCOMP_SHIFT) | cntl_fmt);
    }

    #[test]
    fn ids_and_reset_state() {
        let mut d = Pl111::new();
        let id: Vec<u32> = (0..4).map(|i| d.read(0xfe0 + 4 * i)).collect();
        assert_eq!(id, vec![0x11, 0x11, 0x04, 0x00]);
        let cell: Vec<u32> = (0..4).map(|i| d.read(0xff0 + 4 * i)).collect();
        assert_eq!(cell, vec![0x0d, 0xf0, 0x05, 0xb1]);
        assert_eq!(d.read(CLCD_PL111_CNTL), 0);
        assert!(!d.irq_level());
        assert_eq!(d.next_deadline_ns(), None);
        assert_eq!(d.bad_accesses().count(), 0);
    }

    #[test]
    fn register_storage_and_masks() {
        let mut d = Pl111::new();
        d.write(CLCD_UBAS, 0x6010_0003);
        assert_eq!(d.read(CLCD_UBAS), 0x6010_0000);
        d.write(CLCD_PL111_CNTL, 0xffff_fffe);
        assert_eq!(d.read(CLCD_PL111_CNTL), CNTL_MASK & !1);
        d.write(CLCD_PL111_IENB, 0xffff_ffff);
        assert_eq!(d.read(CLCD_PL111_IENB), INT_MASK);
        d.write(0x204, 0x1234_5678);
        assert_eq!(d.read(0x204), 0x1234_5678);
        assert_eq!(d.palette()[2], 0x5678);
        assert_eq!(d.palette()[3], 0x1234);
        d.write(0xc10, 0x0010_0020);
        assert_eq!(d.read(0xc10), 0x0010_0020);
        // Byte write to the palette preserves the other lanes.
        d.write_sized(0x205, 1, 0xab);
        assert_eq!(d.read(0x204), 0x1234_ab78);
        // Reserved / write-only offsets.
        assert_eq!(d.read(CLCD_PL111_ICR), 0);
        d.write(CLCD_PL111_RIS, 1);
        d.write(0x100, 1);
        assert_eq!(d.read(0x034), 0);
        assert_eq!(d.bad_accesses().count(), 4);
    }

    #[test]
    fn timings_decode_like_linux_encodes() {
        let mut d = Pl111::new();
        program(&mut d, 640, 480, RAM as u32, CNTL_LCDBPP24);
        let t = d.timings();
        assert_eq!((t.pixels_per_line, t.lines_per_panel), (640, 480));
        assert_eq!((t.hsync_width, t.h_front_porch, t.h_back_porch), (96, 16, 48));
        assert_eq!((t.vsync_width, t.v_front_porch, t.v_back_porch), (2, 10, 33));
        assert_eq!(t.clocks_per_line, 640);
        assert!(t.bypass_divisor);
        assert_eq!(t.htotal(), 800);
        assert_eq!(t.vtotal(), 525);
        // VGA at 25.175 MHz is 59.94 Hz.
        assert_eq!(t.frame_period_ns(25_175_000), Some(16_683_218));
        assert_eq!(t.frame_period_ns(0), None);
        let t2 = Timings::decode([0, 0, (3 << 27) | 2, 0]);
        assert_eq!(t2.pcd, (3 << 5) | 2);
        assert_eq!(t2.pixel_clock_hz(100 * 100), 100);
    }

    #[test]
    fn pixel_conversion_xrgb8888_and_rgb565() {
        let pal = [0u16; 256];
        // DRM XRGB8888 (Linux sets BGR): word 0xXXRRGGBB.
        let raw = 0x0011_2233u32.to_le_bytes();
        assert_eq!(to_rgba(&raw, 1, 1, PixelFormat::Rgb888, true, &pal), vec![0x11, 0x22, 0x33, 0xff]);
        // Without BGR the hardware takes red from the low byte (DRM XBGR8888).
        assert_eq!(to_rgba(&raw, 1, 1, PixelFormat::Rgb888, false, &pal), vec![0x33, 0x22, 0x11, 0xff]);
        // DRM RGB565 with BGR: pure red, green, blue, white.
        let px: Vec<u8> = [0xf800u16, 0x07e0, 0x001f, 0xffff].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(
            to_rgba(&px, 4, 1, PixelFormat::Rgb565, true, &pal),
            vec![255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 255, 255, 255, 255, 255]
        );
        assert_eq!(to_rgba(&px[..2], 1, 1, PixelFormat::Rgb565, false, &pal), vec![0, 0, 255, 255]);
        // 5/6-bit expansion.
        let mid = (0x10u16 << 11) | (0x20 << 5) | 0x01;
        assert_eq!(to_rgba(&mid.to_le_bytes(), 1, 1, PixelFormat::Rgb565, true, &pal), vec![0x84, 0x82, 0x08, 255]);
    }

    #[test]
    fn pixel_conversion_other_formats() {
        let mut pal = [0u16; 256];
        pal[1] = 0x1f; // red
        pal[2] = 0x1f << 10; // blue
        pal[255] = 0x7fff;
        assert_eq!(to_rgba(&[0x01, 0xff], 2, 1, PixelFormat::Pal8, false, &pal), vec![255, 0, 0, 255, 255, 255, 255, 255]);
        // 2 bpp LSB-first: pixels 1, 2, 0, 1 in one byte.
        let b = 0b01_00_10_01u8;
        let out = to_rgba(&[b], 4, 1, PixelFormat::Pal2, false, &pal);
        assert_eq!(&out[0..4], &[255, 0, 0, 255]);
        assert_eq!(&out[4..8], &[0, 0, 255, 255]);
        assert_eq!(&out[8..12], &[0, 0, 0, 255]);
        // 1555 and 444.
        let v = (0x1fu16 << 10).to_le_bytes();
        assert_eq!(to_rgba(&v, 1, 1, PixelFormat::Rgb1555, true, &pal), vec![255, 0, 0, 255]);
        let v = 0x0f00u16.to_le_bytes();
        assert_eq!(to_rgba(&v, 1, 1, PixelFormat::Rgb444, false, &pal), vec![0, 0, 255, 255]);
        // Short input reads as zeros, no panic.
        assert_eq!(to_rgba(&[], 2, 1, PixelFormat::Rgb888, false, &pal).len(), 8);
    }

    #[test]
    fn vsync_scans_out_and_interrupts() {
        let ram = VecRam::new(RAM, 1 << 20);
        let (w, h) = (32u32, 4u32);
        let mut fb = Vec::new();
        for i in 0..w * h {
            fb.extend_from_slice(&(0xff00_0000u32 | i).to_le_bytes());
        }
        ram.write(RAM + 0x1000, &fb).unwrap();
        let mut d = Pl111::new();
        d.set_frame_period_ns(1_000_000);
        d.advance_to(5_000);
        program(&mut d, w, h, (RAM + 0x1000) as u32, CNTL_LCDBPP24 | CNTL_BGR);
        assert_eq!(d.next_deadline_ns(), Some(1_005_000));
        d.write(CLCD_PL111_IENB, INT_LNBU);
        assert!(!d.irq_level());
        let f = d.vsync(1_005_000, &ram).expect("frame");
        assert_eq!((f.width, f.height, f.number), (32, 4, 0));
        assert_eq!(&f.rgba[4 * 5..4 * 6], &[0, 0, 5, 255]);
        assert_eq!(
            f.transfer,
            DmaTransfer { device: "pl111", pa: RAM + 0x1000, len: 512, write: false, frame: 0, at_ns: 1_005_000 }
        );
        assert_eq!(d.next_deadline_ns(), Some(2_005_000));
        assert!(d.irq_level());
        assert_eq!(d.read(CLCD_PL111_RIS), INT_LNBU | INT_VCOMP);
        assert_eq!(d.read(CLCD_PL111_MIS), INT_LNBU);
        assert_eq!(d.read(CLCD_PL111_UCUR), (RAM + 0x1000) as u32);
        d.write(CLCD_PL111_ICR, INT_LNBU);
        assert!(!d.irq_level());
        assert_eq!(d.read(CLCD_PL111_RIS), INT_VCOMP);
        // A late board skips missed frames rather than bursting.
        let f = d.vsync(4_500_000, &ram).unwrap();
        assert_eq!(f.number, 1);
        assert_eq!(d.next_deadline_ns(), Some(5_005_000));
        assert_eq!(d.frame_count(), 2);
    }

    #[test]
    fn disabled_or_unpowered() {
        let ram = VecRam::new(RAM, 1 << 16);
        let mut d = Pl111::new();
        assert!(d.vsync(0, &ram).is_none());
        assert_eq!(d.read(CLCD_PL111_RIS), 0);
        program(&mut d, 16, 1, RAM as u32, CNTL_LCDBPP16_565);
        d.write(CLCD_PL111_CNTL, CNTL_LCDEN | CNTL_LCDBPP16_565);
        assert!(d.vsync(100, &ram).is_none());
        assert_eq!(d.read(CLCD_PL111_RIS), INT_LNBU | INT_VCOMP);
        assert_eq!(d.frame_count(), 0);
        assert_eq!(d.vsync_count(), 1);
        d.write(CLCD_PL111_CNTL, 0);
        assert_eq!(d.next_deadline_ns(), None);
    }

    #[test]
    fn scanout_outside_ram_is_a_bus_error() {
        let ram = VecRam::new(RAM, 1 << 16);
        let mut d = Pl111::new();
        program(&mut d, 64, 64, (RAM + 0xf000) as u32, CNTL_LCDBPP24);
        d.write(CLCD_PL111_IENB, INT_MBERROR);
        assert!(d.vsync(1, &ram).is_none());
        assert!(d.irq_level());
        assert!(matches!(d.last_error(), Some(ScanoutError::Bus(e)) if e.pa == RAM + 0xf000 && e.len == 64 * 64 * 4));
        d.write(CLCD_UBAS, 0xffff_fff0);
        assert!(d.vsync(2, &ram).is_none());
        assert_eq!(d.error_count(), 2);
    }

    #[test]
    fn unsupported_modes_are_errors_not_panics() {
        let ram = VecRam::new(RAM, 1 << 20);
        let mut d = Pl111::new();
        program(&mut d, 16, 16, RAM as u32, CNTL_LCDBPP24 | CNTL_LCDDUAL);
        assert_eq!(d.bad_accesses().count(), 1);
        assert!(d.vsync(1, &ram).is_none());
        assert!(matches!(d.last_error(), Some(ScanoutError::Format { .. })));
        assert_eq!(d.read(CLCD_PL111_RIS) & INT_MBERROR, 0);
        d.write(CLCD_PL111_CNTL, CNTL_LCDEN | CNTL_LCDPWR | CNTL_LCDBPP16 | CNTL_BEBO);
        assert!(d.snapshot(&ram).is_err());
        // Maximum size (1024 × 1024 × 32 bpp) from near the end: bus error.
        d.write(CLCD_TIM0, 0x3f << 2);
        d.write(CLCD_TIM1, 0x3ff);
        d.write(CLCD_PL111_CNTL, CNTL_LCDEN | CNTL_LCDPWR | CNTL_LCDBPP24);
        assert_eq!(d.size(), (1024, 1024));
        assert!(d.vsync(2, &ram).is_none());
        assert!(matches!(d.last_error(), Some(ScanoutError::Bus(_))));
    }

    #[test]
    fn snapshot_has_no_side_effects() {
        let ram = VecRam::new(RAM, 1 << 16);
        let mut d = Pl111::new();
        program(&mut d, 16, 2, RAM as u32, CNTL_LCDBPP16_565 | CNTL_BGR);
        ram.write(RAM, &0xf800u16.to_le_bytes()).unwrap();
        let (w, h, rgba) = d.snapshot(&ram).unwrap();
        assert_eq!((w, h), (16, 2));
        assert_eq!(&rgba[..4], &[255, 0, 0, 255]);
        assert_eq!(d.read(CLCD_PL111_RIS), 0);
        assert_eq!(d.frame_count(), 0);
    }

    #[test]
    fn period_from_pixel_clock() {
        let mut d = Pl111::new();
        assert_eq!(d.frame_period_ns(), DEFAULT_FRAME_PERIOD_NS);
        program(&mut d, 640, 480, RAM as u32, CNTL_LCDBPP24);
        d.set_clcdclk_hz(25_175_000);
        assert_eq!(d.frame_period_ns(), 16_683_218);
        d.set_clcdclk_hz(0);
        assert_eq!(d.frame_period_ns(), DEFAULT_FRAME_PERIOD_NS);
        d.set_frame_period_ns(0);
        assert_eq!(d.frame_period_ns(), 1);
    }

    #[test]
    fn garbage_never_panics() {
        let ram = VecRam::new(RAM, 1 << 20);
        let mut d = Pl111::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for i in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let off = (x >> 20) & 0xfff;
            let size = [1, 2, 4, 8][(x >> 40) as usize & 3];
            // Bias towards small frames in RAM so some scan-outs succeed.
            let v = if off & !3 == CLCD_UBAS { RAM as u32 + ((x >> 8) as u32 & 0xffff) } else { x as u32 };
            if x & 1 == 0 {
                d.write_sized(off, size, v as u64);
            } else {
                d.read_sized(off, size);
            }
            d.advance_to(i * 997);
            if i % 64 == 0 && d.size().0 * d.size().1 <= 64 * 64 {
                let _ = d.vsync(i * 997, &ram);
            }
            let _ = d.next_deadline_ns();
        }
        // The end of virtual time terminates (no deadline past u64::MAX).
        d.write(CLCD_PL111_CNTL, 0);
        d.advance_to(u64::MAX - 10);
        d.write(CLCD_PL111_CNTL, CNTL_LCDEN | CNTL_LCDPWR | CNTL_LCDBPP24);
        assert_eq!(d.next_deadline_ns(), None);
        let _ = d.vsync(u64::MAX, &ram);
        assert_eq!(d.next_deadline_ns(), None);
    }
}
