//! The cmaemu camera ("cmaemu,camera-v1"): a capture DMA master that exists
//! only in this emulator. Like a V4L2 capture device, the guest queues
//! buffers it allocated (from the camera's CMA area), and once per frame
//! period the camera writes one deterministic test frame into the oldest
//! queued buffer by host-side physical writes and moves the buffer to a
//! *done* queue the guest pops.
//!
//! ## Register map (32-bit registers, 4 KiB window at 0x1003_0000, SPI 52)
//!
//! | offset | name          | access | meaning |
//! |--------|---------------|--------|---------|
//! | 0x000  | ID            | RO     | `0x4341_4d31` ("CAM1") |
//! | 0x004  | VERSION       | RO     | `0x0001_0000` (major 1, minor 0) |
//! | 0x008  | CTRL          | RW     | bit 0 ENABLE (capture runs), bit 1 IRQ_EN (interrupt output enable), bit 31 RESET (write 1: back to power-on state; reads 0) |
//! | 0x00c  | STATUS        | RO     | bits 7:0 queued buffers, 15:8 done entries, bit 16 BUSY (enabled), bit 17 QUEUE_FULL, bit 18 DONE_FULL |
//! | 0x010  | FORMAT        | RW     | pixel format: 1 = RGB565 (DRM RGB565, R in 15:11), 2 = XRGB8888 (DRM XRGB8888, X written as 0xff) |
//! | 0x014  | WIDTH         | RW     | pixels per line, 16..=4096 |
//! | 0x018  | HEIGHT        | RW     | lines, 1..=4096 |
//! | 0x01c  | PERIOD_US     | RW     | frame period in µs of virtual time, 100..=10_000_000 |
//! | 0x020  | BUF_ADDR      | RW     | physical address of the buffer to queue (64-byte aligned) |
//! | 0x024  | BUF_SIZE      | RW     | its size in bytes (≥ FRAME_SIZE) |
//! | 0x028  | BUF_QUEUE     | WO     | write 1: push (BUF_ADDR, BUF_SIZE) on the capture queue (depth 16) |
//! | 0x02c  | FRAME_SIZE    | RO     | bytes of one frame: WIDTH × HEIGHT × (2 or 4), packed lines |
//! | 0x030  | DONE_ADDR     | RO     | head of the done queue: buffer address (0 when empty) |
//! | 0x034  | DONE_FRAME    | RO     | its frame (sequence) number, `0xffff_ffff` if none was written |
//! | 0x038  | DONE_STATUS   | RO     | 0: frame written; else the ERROR bits that failed this buffer |
//! | 0x03c  | DONE_POP      | WO     | write 1: pop the head of the done queue (depth 32) |
//! | 0x040  | FRAME_COUNT   | RO     | frames written since reset |
//! | 0x044  | DROP_COUNT    | RO     | frame periods that produced no frame since reset |
//! | 0x048  | ERROR         | RW1C   | sticky error bits (below); write 1 to clear |
//! | 0x04c  | IRQ_STATUS    | RW1C   | bit 0 FRAME_DONE, bit 1 ERROR; write 1 to clear |
//! | 0x050  | DONE_CHECKSUM | RO     | payload checksum of the head done frame (0 if none) |
//! | 0x054  | SEQUENCE      | RO     | number the next frame period will carry |
//!
//! ERROR bits: 0 BAD_ADDR (buffer outside the DMA window / RAM), 1 TOO_SMALL
//! (BUF_SIZE < FRAME_SIZE, at queue time or when the frame is due), 2
//! UNALIGNED (BUF_ADDR not 64-byte aligned), 3 QUEUE_OVERFLOW (BUF_QUEUE with
//! 16 buffers queued), 4 DROPPED (a frame was due and no buffer was queued,
//! or the done queue was full), 5 BAD_CONFIG (invalid FORMAT/WIDTH/HEIGHT/
//! PERIOD_US value: ignored), 6 BUSY (FORMAT/WIDTH/HEIGHT/PERIOD_US written
//! while enabled: ignored), 7 EMPTY_POP (DONE_POP with an empty done queue).
//! A buffer rejected at BUF_QUEUE is not queued. A queued buffer that fails
//! when its frame is due (outside memory, too small) is returned through the
//! done queue with DONE_STATUS ≠ 0. Every error sets IRQ_STATUS.ERROR.
//! The interrupt output is `CTRL.IRQ_EN && IRQ_STATUS != 0` (level).
//!
//! Timing: enabling (CTRL.ENABLE 0 → 1 at virtual time t) schedules frame
//! periods at t + P, t + 2P, …; disabling pauses (queues are kept); RESET
//! discards both queues (the guest owns all its buffers again). Every period
//! consumes one sequence number, whether a frame is written or dropped.
//!
//! ## Frame content and header
//!
//! The picture ([`render_frame`]) is eight colour bars that scroll left by 4
//! pixels a frame, a grey ramp in the bottom quarter, and a 1/8-size
//! checkered square moving diagonally — a pure function of (sequence,
//! width, height, format). Its first [`HEADER_PIXELS`] = 16 pixels carry the
//! header: eight u32 fields, field *k* split into halves stored in pixel 2*k*
//! (low half) and 2*k*+1 (high half), each half in the pixel's low 16 bits
//! (in XRGB8888 the pixel is `0xff00_0000 | half`). This layout survives a
//! PL111 scan-out with Linux's settings (BGR set), so the header can be read
//! back from the displayed RGBA ([`FrameHeader::from_rgba`]). Fields:
//! 0 magic `0x4346_524d` ("CFRM"), 1 frame sequence number, 2 width,
//! 3 height, 4 format, 5 checksum (32-bit FNV-1a of the raw bytes after the
//! header pixels), 6 capture time in µs (low 32 bits), 7 FNV-1a of fields
//! 0..=6 as little-endian bytes.
//!
//! The host keeps a [`FrameRecord`] per written frame (sequence number,
//! buffer address, length, checksum) to check scanned-out frames against.

use std::collections::VecDeque;

use super::dma::{DmaMemory, DmaTransfer};
use super::{BadAccessLog, MmioDevice};

pub use super::dma::{DmaError, VecRam};

// The register map is guest/abi's (`cmaemu_abi::camera`), which the guest
// driver reads too; offsets widened to the bus's u64.
pub use cmaemu_abi::camera::{
    BUF_ALIGN, CAM_ID_MAGIC, CAM_VERSION_1_0, CTRL_ENABLE, CTRL_IRQ_EN, CTRL_RESET, DONE_DEPTH, ERR_BAD_ADDR, ERR_BAD_CONFIG, ERR_BUSY,
    ERR_DROPPED, ERR_EMPTY_POP, ERR_MASK, ERR_QUEUE_OVERFLOW, ERR_TOO_SMALL, ERR_UNALIGNED, FMT_RGB565, FMT_XRGB8888, HEADER_MAGIC,
    HEADER_PIXELS, IRQ_ERROR, IRQ_FRAME_DONE, NO_FRAME, QUEUE_DEPTH, STATUS_BUSY, STATUS_DONE_FULL, STATUS_QUEUE_FULL,
};
use cmaemu_abi::camera as regs;
/// ID register.
pub const CAM_ID: u64 = regs::CAM_ID as u64;
/// VERSION register.
pub const CAM_VERSION: u64 = regs::CAM_VERSION as u64;
/// CTRL register.
pub const CAM_CTRL: u64 = regs::CAM_CTRL as u64;
/// STATUS register.
pub const CAM_STATUS: u64 = regs::CAM_STATUS as u64;
/// FORMAT register.
pub const CAM_FORMAT: u64 = regs::CAM_FORMAT as u64;
/// WIDTH register.
pub const CAM_WIDTH: u64 = regs::CAM_WIDTH as u64;
/// HEIGHT register.
pub const CAM_HEIGHT: u64 = regs::CAM_HEIGHT as u64;
/// PERIOD_US register.
pub const CAM_PERIOD_US: u64 = regs::CAM_PERIOD_US as u64;
/// BUF_ADDR register.
pub const CAM_BUF_ADDR: u64 = regs::CAM_BUF_ADDR as u64;
/// BUF_SIZE register.
pub const CAM_BUF_SIZE: u64 = regs::CAM_BUF_SIZE as u64;
/// BUF_QUEUE register.
pub const CAM_BUF_QUEUE: u64 = regs::CAM_BUF_QUEUE as u64;
/// FRAME_SIZE register.
pub const CAM_FRAME_SIZE: u64 = regs::CAM_FRAME_SIZE as u64;
/// DONE_ADDR register.
pub const CAM_DONE_ADDR: u64 = regs::CAM_DONE_ADDR as u64;
/// DONE_FRAME register.
pub const CAM_DONE_FRAME: u64 = regs::CAM_DONE_FRAME as u64;
/// DONE_STATUS register.
pub const CAM_DONE_STATUS: u64 = regs::CAM_DONE_STATUS as u64;
/// DONE_POP register.
pub const CAM_DONE_POP: u64 = regs::CAM_DONE_POP as u64;
/// FRAME_COUNT register.
pub const CAM_FRAME_COUNT: u64 = regs::CAM_FRAME_COUNT as u64;
/// DROP_COUNT register.
pub const CAM_DROP_COUNT: u64 = regs::CAM_DROP_COUNT as u64;
/// ERROR register.
pub const CAM_ERROR: u64 = regs::CAM_ERROR as u64;
/// IRQ_STATUS register.
pub const CAM_IRQ_STATUS: u64 = regs::CAM_IRQ_STATUS as u64;
/// DONE_CHECKSUM register.
pub const CAM_DONE_CHECKSUM: u64 = regs::CAM_DONE_CHECKSUM as u64;
/// SEQUENCE register.
pub const CAM_SEQUENCE: u64 = regs::CAM_SEQUENCE as u64;

/// Width limits.
pub const MIN_WIDTH: u32 = 16;
/// Largest width.
pub const MAX_WIDTH: u32 = 4096;
/// Largest height.
pub const MAX_HEIGHT: u32 = 4096;
/// Shortest frame period (µs).
pub const MIN_PERIOD_US: u32 = 100;
/// Longest frame period (µs).
pub const MAX_PERIOD_US: u32 = 10_000_000;
/// Power-on frame period (µs): 30 frames per second.
pub const DEFAULT_PERIOD_US: u32 = 33_333;
/// Power-on size.
pub const DEFAULT_WIDTH: u32 = 320;
/// Power-on height.
pub const DEFAULT_HEIGHT: u32 = 240;

/// Host-side frame records kept.
pub const RECORDS_KEEP: usize = 1024;

/// Pixel format of the camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CamFormat {
    /// DRM RGB565: R 15:11, G 10:5, B 4:0.
    Rgb565,
    /// DRM XRGB8888: X 31:24 (0xff), R 23:16, G 15:8, B 7:0.
    Xrgb8888,
}

impl CamFormat {
    /// From the FORMAT register value.
    pub fn from_reg(v: u32) -> Option<Self> {
        match v {
            FMT_RGB565 => Some(CamFormat::Rgb565),
            FMT_XRGB8888 => Some(CamFormat::Xrgb8888),
            _ => None,
        }
    }

    /// The FORMAT register value.
    pub fn reg(self) -> u32 {
        match self {
            CamFormat::Rgb565 => FMT_RGB565,
            CamFormat::Xrgb8888 => FMT_XRGB8888,
        }
    }

    /// Bytes per pixel.
    pub fn bytes_per_pixel(self) -> usize {
        match self {
            CamFormat::Rgb565 => 2,
            CamFormat::Xrgb8888 => 4,
        }
    }

    /// Bytes of a `width × height` frame.
    pub fn frame_bytes(self, width: u32, height: u32) -> u64 {
        width as u64 * height as u64 * self.bytes_per_pixel() as u64
    }

    fn pack(self, r: u8, g: u8, b: u8, out: &mut [u8]) {
        match self {
            CamFormat::Rgb565 => {
                let v = ((r as u16 >> 3) << 11) | ((g as u16 >> 2) << 5) | (b as u16 >> 3);
                out.copy_from_slice(&v.to_le_bytes());
            }
            CamFormat::Xrgb8888 => out.copy_from_slice(&[b, g, r, 0xff]),
        }
    }

    fn pack_half(self, half: u16, out: &mut [u8]) {
        match self {
            CamFormat::Rgb565 => out.copy_from_slice(&half.to_le_bytes()),
            CamFormat::Xrgb8888 => out.copy_from_slice(&(0xff00_0000u32 | half as u32).to_le_bytes()),
        }
    }

    /// Raw pixel bytes of one RGBA8 pixel as it appears after a scan-out of
    /// this format with red and blue in the DRM positions (PL111 with
    /// `LcdBgr`, as Linux programs it). Exact inverse for every pixel the
    /// camera writes.
    pub fn pixel_from_rgba(self, px: &[u8], out: &mut [u8]) {
        let (r, g, b) = (px[0], px[1], px[2]);
        match self {
            CamFormat::Rgb565 => {
                let v = ((r as u16 >> 3) << 11) | ((g as u16 >> 2) << 5) | (b as u16 >> 3);
                out.copy_from_slice(&v.to_le_bytes());
            }
            CamFormat::Xrgb8888 => out.copy_from_slice(&[b, g, r, 0xff]),
        }
    }
}

/// 32-bit FNV-1a.
pub fn fnv1a(data: &[u8]) -> u32 {
    fnv1a_from(0x811c_9dc5, data)
}

fn fnv1a_from(mut h: u32, data: &[u8]) -> u32 {
    for &b in data {
        h ^= b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// The header embedded in the first [`HEADER_PIXELS`] pixels of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// [`HEADER_MAGIC`].
    pub magic: u32,
    /// Frame sequence number.
    pub frame: u32,
    /// Width in pixels.
    pub width: u32,
    /// Height in lines.
    pub height: u32,
    /// FORMAT register value.
    pub format: u32,
    /// FNV-1a of the raw bytes after the header pixels.
    pub checksum: u32,
    /// Capture time in µs of virtual time (low 32 bits).
    pub time_us: u32,
    /// FNV-1a of the seven fields above.
    pub header_check: u32,
}

impl FrameHeader {
    /// The eight header fields in order.
    pub fn fields(&self) -> [u32; 8] {
        [self.magic, self.frame, self.width, self.height, self.format, self.checksum, self.time_us, self.header_check]
    }

    fn compute_check(f: &[u32]) -> u32 {
        let mut h = 0x811c_9dc5;
        for v in &f[..7] {
            h = fnv1a_from(h, &v.to_le_bytes());
        }
        h
    }

    fn from_fields(f: [u32; 8]) -> Option<Self> {
        if f[0] != HEADER_MAGIC || f[7] != Self::compute_check(&f) {
            return None;
        }
        Some(FrameHeader {
            magic: f[0],
            frame: f[1],
            width: f[2],
            height: f[3],
            format: f[4],
            checksum: f[5],
            time_us: f[6],
            header_check: f[7],
        })
    }

    /// Parse the header from the raw bytes of a frame in `format` (None if
    /// too short, wrong magic or a bad header check).
    pub fn from_raw(raw: &[u8], format: CamFormat) -> Option<Self> {
        let bpp = format.bytes_per_pixel();
        if raw.len() < HEADER_PIXELS * bpp {
            return None;
        }
        let half = |p: usize| u16::from_le_bytes([raw[p * bpp], raw[p * bpp + 1]]) as u32;
        let mut f = [0u32; 8];
        for (k, v) in f.iter_mut().enumerate() {
            *v = half(2 * k) | (half(2 * k + 1) << 16);
        }
        Self::from_fields(f)
    }

    /// Parse the header from RGBA8 pixels scanned out of a frame in `format`
    /// (see [`CamFormat::pixel_from_rgba`]).
    pub fn from_rgba(rgba: &[u8], format: CamFormat) -> Option<Self> {
        if rgba.len() < HEADER_PIXELS * 4 {
            return None;
        }
        Self::from_raw(&raw_from_rgba(&rgba[..HEADER_PIXELS * 4], format), format)
    }
}

/// Raw frame bytes in `format` recovered from scanned-out RGBA8 pixels.
pub fn raw_from_rgba(rgba: &[u8], format: CamFormat) -> Vec<u8> {
    let bpp = format.bytes_per_pixel();
    let n = rgba.len() / 4;
    let mut out = vec![0u8; n * bpp];
    for i in 0..n {
        format.pixel_from_rgba(&rgba[4 * i..4 * i + 4], &mut out[i * bpp..(i + 1) * bpp]);
    }
    out
}

/// The checksum the header carries: FNV-1a of the raw bytes after the header.
pub fn payload_checksum(raw: &[u8], format: CamFormat) -> u32 {
    fnv1a(raw.get(HEADER_PIXELS * format.bytes_per_pixel()..).unwrap_or(&[]))
}

/// The RGB colour of test-pattern pixel (x, y) of frame `seq`.
pub fn pattern_rgb(seq: u64, x: u32, y: u32, width: u32, height: u32) -> (u8, u8, u8) {
    const BARS: [(u8, u8, u8); 8] = [
        (255, 255, 255),
        (255, 255, 0),
        (0, 255, 255),
        (0, 255, 0),
        (255, 0, 255),
        (255, 0, 0),
        (0, 0, 255),
        (0, 0, 0),
    ];
    let (w, h) = (width.max(1) as u64, height.max(1) as u64);
    let (x64, y64) = (x as u64, y as u64);
    // Moving checkered square.
    let s = (w.min(h) / 8).max(2);
    if w > s && h > s {
        let sx = (seq.wrapping_mul(7)) % (w - s);
        let sy = (seq.wrapping_mul(5)) % (h - s);
        if x64 >= sx && x64 < sx + s && y64 >= sy && y64 < sy + s {
            let c = (((x64 - sx) * 4 / s) + ((y64 - sy) * 4 / s)) % 2;
            return if c == 0 { (255, 128, 0) } else { (16, 16, 16) };
        }
    }
    let shifted = x64.wrapping_add(seq.wrapping_mul(4)) % w;
    if y64 * 4 >= h * 3 {
        let v = (shifted * 256 / w) as u8;
        return (v, v, v);
    }
    BARS[((shifted * 8 / w) % 8) as usize]
}

/// Render frame `seq` (raw bytes, header included) into `out`; returns the
/// header. `time_us` goes into the header.
pub fn render_frame(seq: u64, width: u32, height: u32, format: CamFormat, time_us: u32, out: &mut Vec<u8>) -> FrameHeader {
    let bpp = format.bytes_per_pixel();
    let n = width as usize * height as usize;
    out.clear();
    out.resize(n * bpp, 0);
    for y in 0..height {
        let row = y as usize * width as usize;
        for x in 0..width {
            let (r, g, b) = pattern_rgb(seq, x, y, width, height);
            let i = (row + x as usize) * bpp;
            format.pack(r, g, b, &mut out[i..i + bpp]);
        }
    }
    let mut f = [HEADER_MAGIC, seq as u32, width, height, format.reg(), payload_checksum(out, format), time_us, 0];
    f[7] = FrameHeader::compute_check(&f);
    for (k, v) in f.iter().enumerate() {
        for (j, half) in [*v as u16, (*v >> 16) as u16].into_iter().enumerate() {
            let p = 2 * k + j;
            if p < n {
                format.pack_half(half, &mut out[p * bpp..(p + 1) * bpp]);
            }
        }
    }
    FrameHeader::from_fields(f).expect("consistent header")
}

/// What the host remembers about each written frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRecord {
    /// Sequence number.
    pub frame: u64,
    /// Buffer physical address.
    pub pa: u64,
    /// Bytes written.
    pub len: u64,
    /// Payload checksum (as in the header).
    pub checksum: u32,
    /// Capture time (ns of virtual time).
    pub at_ns: u64,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
    /// Format.
    pub format: CamFormat,
}

/// One entry of the done queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DoneEntry {
    /// Buffer address.
    pub addr: u32,
    /// Buffer size as queued.
    pub size: u32,
    /// Sequence number written, [`NO_FRAME`] when the buffer failed.
    pub frame: u32,
    /// 0 or the ERR_* bits that failed the buffer.
    pub status: u32,
    /// Payload checksum (0 when failed).
    pub checksum: u32,
}

#[derive(Debug, Clone, Copy)]
struct Config {
    format: CamFormat,
    width: u32,
    height: u32,
    period_us: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config { format: CamFormat::Xrgb8888, width: DEFAULT_WIDTH, height: DEFAULT_HEIGHT, period_us: DEFAULT_PERIOD_US }
    }
}

/// The camera model.
#[derive(Debug, Clone)]
pub struct Camera {
    ctrl: u32,
    cfg: Config,
    buf_addr: u32,
    buf_size: u32,
    queue: VecDeque<(u32, u32)>,
    done: VecDeque<DoneEntry>,
    frames: u32,
    drops: u32,
    error: u32,
    irq_status: u32,
    sequence: u64,
    now_ns: u64,
    next_frame_ns: Option<u64>,
    window: Option<(u64, u64)>,
    records: VecDeque<FrameRecord>,
    scratch: Vec<u8>,
    bad: BadAccessLog,
}

impl Default for Camera {
    fn default() -> Self {
        Self::new()
    }
}

impl Camera {
    /// Power-on state: disabled, XRGB8888 320 × 240 at 30 fps, empty queues.
    pub fn new() -> Self {
        Camera {
            ctrl: 0,
            cfg: Config::default(),
            buf_addr: 0,
            buf_size: 0,
            queue: VecDeque::with_capacity(QUEUE_DEPTH),
            done: VecDeque::with_capacity(DONE_DEPTH),
            frames: 0,
            drops: 0,
            error: 0,
            irq_status: 0,
            sequence: 0,
            now_ns: 0,
            next_frame_ns: None,
            window: None,
            records: VecDeque::new(),
            scratch: Vec::new(),
            bad: BadAccessLog::default(),
        }
    }

    /// Restrict buffers to `[base, base + size)` (the board's RAM): buffers
    /// outside are rejected at BUF_QUEUE time with ERR_BAD_ADDR. Without a
    /// window, such buffers fail when their frame is due (the DMA write is
    /// refused by [`DmaMemory`]).
    pub fn with_dma_window(mut self, base: u64, size: u64) -> Self {
        self.window = Some((base, base.saturating_add(size)));
        self
    }

    /// Interrupt output level.
    pub fn irq_level(&self) -> bool {
        self.ctrl & CTRL_IRQ_EN != 0 && self.irq_status != 0
    }

    /// Capture enabled.
    pub fn enabled(&self) -> bool {
        self.ctrl & CTRL_ENABLE != 0
    }

    /// Sticky error bits.
    pub fn errors(&self) -> u32 {
        self.error
    }

    /// Frames written since reset.
    pub fn frame_count(&self) -> u32 {
        self.frames
    }

    /// Frame periods without a frame since reset.
    pub fn drop_count(&self) -> u32 {
        self.drops
    }

    /// Queued buffers (address, size), oldest first.
    pub fn queued(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.queue.iter().copied()
    }

    /// Done entries, oldest first.
    pub fn done(&self) -> impl Iterator<Item = &DoneEntry> {
        self.done.iter()
    }

    /// Bytes of one frame in the current configuration.
    pub fn frame_size(&self) -> u64 {
        self.cfg.format.frame_bytes(self.cfg.width, self.cfg.height)
    }

    /// Current (width, height, format).
    pub fn geometry(&self) -> (u32, u32, CamFormat) {
        (self.cfg.width, self.cfg.height, self.cfg.format)
    }

    /// Frame period in ns.
    pub fn period_ns(&self) -> u64 {
        self.cfg.period_us as u64 * 1_000
    }

    /// Records of the last [`RECORDS_KEEP`] written frames, oldest first.
    pub fn records(&self) -> impl Iterator<Item = &FrameRecord> {
        self.records.iter()
    }

    /// The record of frame `seq`, if still kept.
    pub fn record(&self, seq: u64) -> Option<&FrameRecord> {
        self.records.iter().rev().find(|r| r.frame == seq)
    }

    /// Check a scanned-out picture (RGBA8, as a PL111 with Linux's settings
    /// shows a camera buffer) against the records: header valid, checksum of
    /// the recovered payload equal to the header's and to the record's.
    pub fn check_scanout(&self, rgba: &[u8], width: u32, height: u32) -> Result<FrameRecord, ScanoutError> {
        let mut last = ScanoutError::NoHeader;
        for format in [self.cfg.format, CamFormat::Rgb565, CamFormat::Xrgb8888] {
            match check_scanout(rgba, width, height, format) {
                Ok(h) => {
                    let rec = self.record(h.frame as u64).filter(|r| r.frame as u32 == h.frame).ok_or(ScanoutError::NoRecord(h.frame))?;
                    if rec.checksum != h.checksum || rec.width != width || rec.height != height {
                        return Err(ScanoutError::RecordMismatch { frame: h.frame, record: *rec });
                    }
                    return Ok(*rec);
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Record the current virtual time.
    pub fn advance_to(&mut self, now_ns: u64) {
        self.now_ns = self.now_ns.max(now_ns);
    }

    /// When the next frame is due (None while disabled).
    pub fn next_deadline_ns(&self) -> Option<u64> {
        self.next_frame_ns
    }

    fn set_error(&mut self, bits: u32) {
        self.error |= bits;
        self.irq_status |= IRQ_ERROR;
    }

    fn reset(&mut self) {
        let window = self.window;
        let records = std::mem::take(&mut self.records);
        let bad = std::mem::take(&mut self.bad);
        let now = self.now_ns;
        *self = Camera::new();
        self.window = window;
        self.records = records;
        self.bad = bad;
        self.now_ns = now;
    }

    fn push_done(&mut self, e: DoneEntry) {
        // Callers check room first; never grow past the depth.
        if self.done.len() < DONE_DEPTH {
            self.done.push_back(e);
        }
    }

    /// Capture the frame that is due, if [`Camera::next_deadline_ns`] ≤
    /// `now_ns`: write it into the oldest queued buffer through `mem` and
    /// return the transfer. Handles one frame period per call, except that
    /// when no buffer can take a frame all periods up to `now_ns` are dropped
    /// together (None is returned for dropped periods); the board calls it
    /// while the deadline is ≤ now, which takes at most one call per queued
    /// buffer plus one.
    pub fn capture(&mut self, now_ns: u64, mem: &dyn DmaMemory) -> Option<DmaTransfer> {
        self.advance_to(now_ns);
        let due = self.next_frame_ns.filter(|d| *d <= now_ns)?;
        let period = self.period_ns();
        if self.queue.is_empty() || self.done.len() >= DONE_DEPTH {
            // Nothing can change before the guest acts: every period up to
            // now is dropped at once (so a late board costs O(1)).
            let missed = (now_ns - due) / period + 1;
            self.sequence = self.sequence.wrapping_add(missed);
            self.drops = self.drops.wrapping_add(missed as u32);
            self.set_error(ERR_DROPPED);
            // Past u64::MAX ns of virtual time the camera simply stops.
            self.next_frame_ns = missed.checked_mul(period).and_then(|d| due.checked_add(d));
            return None;
        }
        self.next_frame_ns = due.checked_add(period);
        let seq = self.sequence;
        self.sequence = self.sequence.wrapping_add(1);
        let Some((addr, size)) = self.queue.pop_front() else {
            return None; // (checked empty above)
        };
        let Config { format, width, height, .. } = self.cfg;
        let len = format.frame_bytes(width, height);
        let fail = |cam: &mut Camera, bits: u32| {
            cam.drops = cam.drops.wrapping_add(1);
            cam.set_error(bits);
            cam.push_done(DoneEntry { addr, size, frame: NO_FRAME, status: bits, checksum: 0 });
            None
        };
        if (size as u64) < len {
            return fail(self, ERR_TOO_SMALL);
        }
        let mut buf = std::mem::take(&mut self.scratch);
        let hdr = render_frame(seq, width, height, format, (due / 1_000) as u32, &mut buf);
        let res = mem.write(addr as u64, &buf);
        self.scratch = buf;
        if res.is_err() {
            return fail(self, ERR_BAD_ADDR);
        }
        self.frames = self.frames.wrapping_add(1);
        self.irq_status |= IRQ_FRAME_DONE;
        self.push_done(DoneEntry { addr, size, frame: seq as u32, status: 0, checksum: hdr.checksum });
        if self.records.len() == RECORDS_KEEP {
            self.records.pop_front();
        }
        self.records.push_back(FrameRecord {
            frame: seq,
            pa: addr as u64,
            len,
            checksum: hdr.checksum,
            at_ns: due,
            width,
            height,
            format,
        });
        Some(DmaTransfer { device: "camera", pa: addr as u64, len, write: true, frame: seq, at_ns: due })
    }

    fn queue_buffer(&mut self) {
        let (addr, size) = (self.buf_addr, self.buf_size);
        let mut err = 0;
        if self.queue.len() >= QUEUE_DEPTH {
            err |= ERR_QUEUE_OVERFLOW;
        }
        if addr % BUF_ALIGN != 0 {
            err |= ERR_UNALIGNED;
        }
        if (size as u64) < self.frame_size() {
            err |= ERR_TOO_SMALL;
        }
        if let Some((lo, hi)) = self.window {
            let end = addr as u64 + size as u64;
            if (addr as u64) < lo || end > hi {
                err |= ERR_BAD_ADDR;
            }
        }
        if err != 0 {
            self.set_error(err);
        } else {
            self.queue.push_back((addr, size));
        }
    }

    fn write_config(&mut self, offset: u64, value: u32) {
        if self.enabled() {
            self.set_error(ERR_BUSY);
            return;
        }
        let ok = match offset {
            CAM_FORMAT => CamFormat::from_reg(value).map(|f| self.cfg.format = f).is_some(),
            CAM_WIDTH => (MIN_WIDTH..=MAX_WIDTH).contains(&value) && {
                self.cfg.width = value;
                true
            },
            CAM_HEIGHT => (1..=MAX_HEIGHT).contains(&value) && {
                self.cfg.height = value;
                true
            },
            _ => (MIN_PERIOD_US..=MAX_PERIOD_US).contains(&value) && {
                self.cfg.period_us = value;
                true
            },
        };
        if !ok {
            self.set_error(ERR_BAD_CONFIG);
        }
    }

    fn status(&self) -> u32 {
        let mut s = (self.queue.len() as u32) | ((self.done.len() as u32) << 8);
        if self.enabled() {
            s |= STATUS_BUSY;
        }
        if self.queue.len() >= QUEUE_DEPTH {
            s |= STATUS_QUEUE_FULL;
        }
        if self.done.len() >= DONE_DEPTH {
            s |= STATUS_DONE_FULL;
        }
        s
    }
}

impl MmioDevice for Camera {
    fn name(&self) -> &'static str {
        "camera"
    }

    fn read(&mut self, offset: u64) -> u32 {
        let head = self.done.front().copied();
        match offset {
            CAM_ID => CAM_ID_MAGIC,
            CAM_VERSION => CAM_VERSION_1_0,
            CAM_CTRL => self.ctrl,
            CAM_STATUS => self.status(),
            CAM_FORMAT => self.cfg.format.reg(),
            CAM_WIDTH => self.cfg.width,
            CAM_HEIGHT => self.cfg.height,
            CAM_PERIOD_US => self.cfg.period_us,
            CAM_BUF_ADDR => self.buf_addr,
            CAM_BUF_SIZE => self.buf_size,
            CAM_FRAME_SIZE => self.frame_size().min(u32::MAX as u64) as u32,
            CAM_DONE_ADDR => head.map_or(0, |e| e.addr),
            CAM_DONE_FRAME => head.map_or(NO_FRAME, |e| e.frame),
            CAM_DONE_STATUS => head.map_or(0, |e| e.status),
            CAM_DONE_CHECKSUM => head.map_or(0, |e| e.checksum),
            CAM_FRAME_COUNT => self.frames,
            CAM_DROP_COUNT => self.drops,
            CAM_ERROR => self.error,
            CAM_IRQ_STATUS => self.irq_status,
            CAM_SEQUENCE => self.sequence as u32,
            _ => {
                self.bad.read(offset);
                0
            }
        }
    }

    fn write(&mut self, offset: u64, value: u32) {
        match offset {
            CAM_CTRL => {
                if value & CTRL_RESET != 0 {
                    self.reset();
                    return;
                }
                let was = self.enabled();
                self.ctrl = value & (CTRL_ENABLE | CTRL_IRQ_EN);
                match (was, self.enabled()) {
                    (false, true) => self.next_frame_ns = self.now_ns.checked_add(self.period_ns()),
                    (true, false) => self.next_frame_ns = None,
                    _ => {}
                }
            }
            CAM_FORMAT | CAM_WIDTH | CAM_HEIGHT | CAM_PERIOD_US => self.write_config(offset, value),
            CAM_BUF_ADDR => self.buf_addr = value,
            CAM_BUF_SIZE => self.buf_size = value,
            CAM_BUF_QUEUE if value == 1 => self.queue_buffer(),
            CAM_DONE_POP if value == 1 => {
                if self.done.pop_front().is_none() {
                    self.set_error(ERR_EMPTY_POP);
                }
            }
            CAM_ERROR => self.error &= !value,
            CAM_IRQ_STATUS => self.irq_status &= !value,
            _ => self.bad.write(offset, value),
        }
    }

    fn bad_accesses(&self) -> &BadAccessLog {
        &self.bad
    }

    fn advance_to(&mut self, now_ns: u64) {
        Camera::advance_to(self, now_ns)
    }

    fn next_deadline_ns(&self) -> Option<u64> {
        self.next_frame_ns
    }

    fn is_storage_register(&self, offset: u64) -> bool {
        matches!(offset, CAM_FORMAT | CAM_WIDTH | CAM_HEIGHT | CAM_PERIOD_US | CAM_BUF_ADDR | CAM_BUF_SIZE)
    }
}

/// Why a scanned-out picture is not the camera frame it claims to be.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScanoutError {
    #[error("RGBA length {len} is not {width}x{height}x4")]
    Length { len: usize, width: u32, height: u32 },
    #[error("no valid camera header in the first pixels")]
    NoHeader,
    #[error("header {header:?} does not match the {width}x{height} {format:?} scan-out")]
    HeaderMismatch { header: FrameHeader, width: u32, height: u32, format: CamFormat },
    #[error("frame {frame}: payload checksum {sum:#010x}, header says {header:#010x}")]
    Checksum { frame: u32, sum: u32, header: u32 },
    #[error("frame {0} has no record")]
    NoRecord(u32),
    #[error("frame {frame}: scan-out does not match its record {record:?}")]
    RecordMismatch { frame: u32, record: FrameRecord },
}

/// Check a scanned-out picture of a camera frame in `format`: parse the
/// header, recover the raw payload and compare its checksum. Returns the
/// header.
pub fn check_scanout(rgba: &[u8], width: u32, height: u32, format: CamFormat) -> Result<FrameHeader, ScanoutError> {
    if rgba.len() != width as usize * height as usize * 4 {
        return Err(ScanoutError::Length { len: rgba.len(), width, height });
    }
    let h = FrameHeader::from_rgba(rgba, format).ok_or(ScanoutError::NoHeader)?;
    if h.width != width || h.height != height || h.format != format.reg() {
        return Err(ScanoutError::HeaderMismatch { header: h, width, height, format });
    }
    let raw = raw_from_rgba(rgba, format);
    let sum = payload_checksum(&raw, format);
    if sum != h.checksum {
        return Err(ScanoutError::Checksum { frame: h.frame, sum, header: h.checksum });
    }
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAM: u64 = 0x6000_0000;
    const MS: u64 = 1_000_000;

    fn cam(w: u32, h: u32, fmt: u32, period_us: u32) -> Camera {
        let mut c = Camera::new();
        c.write(CAM_FORMAT, fmt);
        c.write(CAM_WIDTH, w);
        c.write(CAM_HEIGHT, h);
        c.write(CAM_PERIOD_US, period_us);
        c
    }

    fn queue(c: &mut Camera, addr: u32, size: u32) {
        c.write(CAM_BUF_ADDR, addr);
        c.write(CAM_BUF_SIZE, size);
        c.write(CAM_BUF_QUEUE, 1);
    }

    /// Run captures up to `now`, collecting transfers.
    fn run(c: &mut Camera, now: u64, mem: &dyn DmaMemory) -> Vec<DmaTransfer> {
        let mut v = Vec::new();
        while c.next_deadline_ns().is_some_and(|d| d <= now) {
            v.extend(c.capture(now, mem));
        }
        v
    }

    #[test]
    fn id_and_power_on_state() {
        let mut c = Camera::new();
        assert_eq!(c.read(CAM_ID), CAM_ID_MAGIC);
        assert_eq!(c.read(CAM_VERSION), CAM_VERSION_1_0);
        assert_eq!(c.read(CAM_FORMAT), FMT_XRGB8888);
        assert_eq!((c.read(CAM_WIDTH), c.read(CAM_HEIGHT)), (320, 240));
        assert_eq!(c.read(CAM_PERIOD_US), DEFAULT_PERIOD_US);
        assert_eq!(c.read(CAM_FRAME_SIZE), 320 * 240 * 4);
        assert_eq!(c.read(CAM_STATUS), 0);
        assert_eq!(c.read(CAM_DONE_FRAME), NO_FRAME);
        assert_eq!(c.next_deadline_ns(), None);
        assert!(!c.irq_level());
        c.write(CAM_ID, 5);
        c.read(0x100);
        assert_eq!(c.bad_accesses().count(), 2);
    }

    #[test]
    fn config_validation() {
        let mut c = Camera::new();
        c.write(CAM_FORMAT, 3);
        assert_eq!(c.read(CAM_ERROR), ERR_BAD_CONFIG);
        assert_eq!(c.read(CAM_FORMAT), FMT_XRGB8888);
        c.write(CAM_ERROR, ERR_BAD_CONFIG);
        for (off, v) in [(CAM_WIDTH, 8), (CAM_WIDTH, 4097), (CAM_HEIGHT, 0), (CAM_PERIOD_US, 99), (CAM_PERIOD_US, u32::MAX)] {
            c.write(off, v);
            assert_eq!(c.read(CAM_ERROR), ERR_BAD_CONFIG, "{off:#x} = {v}");
            c.write(CAM_ERROR, ERR_MASK);
        }
        assert_eq!(c.geometry(), (320, 240, CamFormat::Xrgb8888));
        c.write(CAM_FORMAT, FMT_RGB565);
        c.write(CAM_WIDTH, 4096);
        c.write(CAM_HEIGHT, 4096);
        assert_eq!(c.read(CAM_FRAME_SIZE), 4096 * 4096 * 2);
        assert_eq!(c.read(CAM_ERROR), 0);
        // Busy: configuration is locked while enabled.
        c.write(CAM_CTRL, CTRL_ENABLE);
        c.write(CAM_WIDTH, 64);
        assert_eq!(c.read(CAM_ERROR), ERR_BUSY);
        assert_eq!(c.read(CAM_WIDTH), 4096);
        assert_eq!(c.read(CAM_IRQ_STATUS), IRQ_ERROR);
        assert!(!c.irq_level(), "IRQ_EN is clear");
        c.write(CAM_CTRL, CTRL_ENABLE | CTRL_IRQ_EN);
        assert!(c.irq_level());
        c.write(CAM_IRQ_STATUS, IRQ_ERROR);
        assert!(!c.irq_level());
    }

    #[test]
    fn queue_validation_and_overflow() {
        let mut c = cam(16, 4, FMT_RGB565, 1000).with_dma_window(RAM, 1 << 20);
        let fs = 16 * 4 * 2;
        queue(&mut c, RAM as u32 + 4, fs);
        assert_eq!(c.read(CAM_ERROR), ERR_UNALIGNED);
        queue(&mut c, RAM as u32, fs - 1);
        assert_eq!(c.read(CAM_ERROR), ERR_UNALIGNED | ERR_TOO_SMALL);
        queue(&mut c, (RAM as u32) - 64, fs);
        queue(&mut c, (RAM + (1 << 20) - 64) as u32, fs);
        assert_eq!(c.read(CAM_ERROR) & ERR_BAD_ADDR, ERR_BAD_ADDR);
        assert_eq!(c.read(CAM_STATUS) & 0xff, 0);
        c.write(CAM_ERROR, ERR_MASK);
        for i in 0..QUEUE_DEPTH as u32 {
            queue(&mut c, RAM as u32 + i * 0x1000, fs);
        }
        assert_eq!(c.read(CAM_ERROR), 0);
        assert_eq!(c.read(CAM_STATUS), QUEUE_DEPTH as u32 | STATUS_QUEUE_FULL);
        queue(&mut c, RAM as u32 + 0x10_0000 - 0x1000, fs);
        assert_eq!(c.read(CAM_ERROR), ERR_QUEUE_OVERFLOW);
        assert_eq!(c.queued().count(), QUEUE_DEPTH);
        // BUF_QUEUE with another value does nothing but log.
        c.write(CAM_BUF_QUEUE, 2);
        assert_eq!(c.bad_accesses().count(), 1);
    }

    #[test]
    fn captures_into_queued_buffers_in_order() {
        let ram = VecRam::new(RAM, 1 << 20);
        let mut c = cam(32, 8, FMT_XRGB8888, 1000);
        let fs = 32 * 8 * 4;
        queue(&mut c, RAM as u32 + 0x1000, fs);
        queue(&mut c, RAM as u32 + 0x2000, fs + 100);
        c.advance_to(500_000);
        c.write(CAM_CTRL, CTRL_ENABLE | CTRL_IRQ_EN);
        assert_eq!(c.next_deadline_ns(), Some(1_500_000));
        assert!(run(&mut c, 1_499_999, &ram).is_empty());
        let t = run(&mut c, 2_600_000, &ram);
        assert_eq!(
            t,
            vec![
                DmaTransfer { device: "camera", pa: RAM + 0x1000, len: fs as u64, write: true, frame: 0, at_ns: 1_500_000 },
                DmaTransfer { device: "camera", pa: RAM + 0x2000, len: fs as u64, write: true, frame: 1, at_ns: 2_500_000 },
            ]
        );
        assert!(c.irq_level());
        assert_eq!(c.read(CAM_IRQ_STATUS), IRQ_FRAME_DONE);
        assert_eq!(c.read(CAM_STATUS), STATUS_BUSY | (2 << 8));
        assert_eq!(c.read(CAM_FRAME_COUNT), 2);
        // Pop in order.
        assert_eq!(c.read(CAM_DONE_ADDR), RAM as u32 + 0x1000);
        assert_eq!(c.read(CAM_DONE_FRAME), 0);
        assert_eq!(c.read(CAM_DONE_STATUS), 0);
        let raw = ram.bytes(RAM + 0x1000, fs as usize).unwrap();
        let h = FrameHeader::from_raw(&raw, CamFormat::Xrgb8888).unwrap();
        assert_eq!((h.frame, h.width, h.height, h.format, h.time_us), (0, 32, 8, FMT_XRGB8888, 1500));
        assert_eq!(c.read(CAM_DONE_CHECKSUM), h.checksum);
        assert_eq!(payload_checksum(&raw, CamFormat::Xrgb8888), h.checksum);
        assert_eq!(c.record(0).unwrap().checksum, h.checksum);
        c.write(CAM_DONE_POP, 1);
        assert_eq!(c.read(CAM_DONE_FRAME), 1);
        c.write(CAM_DONE_POP, 1);
        assert_eq!(c.read(CAM_DONE_ADDR), 0);
        c.write(CAM_DONE_POP, 1);
        assert_eq!(c.read(CAM_ERROR), ERR_EMPTY_POP);
        // Bytes past the frame in the larger buffer are untouched.
        assert!(ram.bytes(RAM + 0x2000 + fs as u64, 100).unwrap().iter().all(|b| *b == 0));
    }

    #[test]
    fn dropped_frames_when_no_buffer() {
        let ram = VecRam::new(RAM, 1 << 20);
        let mut c = cam(16, 2, FMT_RGB565, 1000);
        c.write(CAM_CTRL, CTRL_ENABLE | CTRL_IRQ_EN);
        assert!(run(&mut c, 3 * MS, &ram).is_empty());
        assert_eq!(c.read(CAM_DROP_COUNT), 3);
        assert_eq!(c.read(CAM_ERROR), ERR_DROPPED);
        assert_eq!(c.read(CAM_IRQ_STATUS), IRQ_ERROR);
        assert_eq!(c.read(CAM_SEQUENCE), 3);
        queue(&mut c, RAM as u32, 64);
        let t = run(&mut c, 4 * MS, &ram);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].frame, 3, "sequence numbers count dropped periods");
    }

    #[test]
    fn done_queue_full_drops_and_keeps_buffers() {
        let ram = VecRam::new(RAM, 1 << 20);
        let mut c = cam(16, 1, FMT_RGB565, 100);
        c.write(CAM_CTRL, CTRL_ENABLE);
        let mut n = 0u32;
        let mut now = 0;
        while c.done().count() < DONE_DEPTH {
            while c.queued().count() < QUEUE_DEPTH {
                queue(&mut c, RAM as u32 + n * 64, 32);
                n += 1;
            }
            now += 100_000;
            run(&mut c, now, &ram);
        }
        assert_eq!(c.read(CAM_STATUS) & STATUS_DONE_FULL, STATUS_DONE_FULL);
        queue(&mut c, RAM as u32 + 0x8000, 32);
        let q = c.queued().count();
        assert!(run(&mut c, now + 100_000, &ram).is_empty());
        assert_eq!(c.queued().count(), q, "buffer stays queued when the done queue is full");
        assert_eq!(c.read(CAM_ERROR) & ERR_DROPPED, ERR_DROPPED);
    }

    #[test]
    fn failing_buffers_come_back_with_status() {
        let ram = VecRam::new(RAM, 0x10000);
        let mut c = cam(16, 4, FMT_XRGB8888, 1000);
        // No DMA window: accepted at queue time, fails at capture.
        queue(&mut c, 0x1000_0000, 256);
        queue(&mut c, (RAM + 0x10000 - 128) as u32, 256);
        c.write(CAM_CTRL, CTRL_ENABLE | CTRL_IRQ_EN);
        assert!(run(&mut c, 2 * MS, &ram).is_empty());
        assert_eq!(c.read(CAM_ERROR), ERR_BAD_ADDR);
        assert_eq!((c.read(CAM_DONE_ADDR), c.read(CAM_DONE_STATUS), c.read(CAM_DONE_FRAME)), (0x1000_0000, ERR_BAD_ADDR, NO_FRAME));
        c.write(CAM_DONE_POP, 1);
        assert_eq!(c.read(CAM_DONE_STATUS), ERR_BAD_ADDR);
        assert_eq!(c.read(CAM_DROP_COUNT), 2);
        assert_eq!(c.read(CAM_FRAME_COUNT), 0);
        // Too small when due: queued for a smaller format.
        c.write(CAM_CTRL, 0);
        c.write(CAM_WIDTH, 16);
        c.write(CAM_HEIGHT, 1);
        queue(&mut c, RAM as u32, 64);
        c.write(CAM_HEIGHT, 2);
        c.write(CAM_CTRL, CTRL_ENABLE);
        c.advance_to(3 * MS);
        run(&mut c, 5 * MS, &ram);
        assert_eq!(c.read(CAM_ERROR) & ERR_TOO_SMALL, ERR_TOO_SMALL);
        assert_eq!(c.done().last().unwrap().status, ERR_TOO_SMALL);
        assert!(ram.bytes(RAM, 64).unwrap().iter().all(|b| *b == 0), "nothing written");
    }

    #[test]
    fn reset_and_disable() {
        let ram = VecRam::new(RAM, 1 << 20);
        let mut c = cam(16, 2, FMT_RGB565, 1000);
        queue(&mut c, RAM as u32, 64);
        queue(&mut c, RAM as u32 + 64, 64);
        c.write(CAM_CTRL, CTRL_ENABLE);
        run(&mut c, MS, &ram);
        c.write(CAM_CTRL, 0);
        assert_eq!(c.next_deadline_ns(), None);
        assert_eq!(c.queued().count(), 1, "disable pauses, keeps the queue");
        c.write(CAM_CTRL, CTRL_RESET);
        assert_eq!(c.read(CAM_STATUS), 0);
        assert_eq!(c.read(CAM_FRAME_COUNT), 0);
        assert_eq!(c.read(CAM_FORMAT), FMT_XRGB8888);
        assert_eq!(c.read(CAM_CTRL), 0);
        assert_eq!(c.records().count(), 1, "host records survive a reset");
    }

    #[test]
    fn frames_are_deterministic_and_move() {
        for fmt in [CamFormat::Rgb565, CamFormat::Xrgb8888] {
            let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
            let ha = render_frame(7, 64, 48, fmt, 123, &mut a);
            let hb = render_frame(7, 64, 48, fmt, 123, &mut b);
            render_frame(8, 64, 48, fmt, 123, &mut c);
            assert_eq!(a, b);
            assert_eq!(ha, hb);
            assert_ne!(a[HEADER_PIXELS * fmt.bytes_per_pixel()..], c[HEADER_PIXELS * fmt.bytes_per_pixel()..]);
            assert_eq!(FrameHeader::from_raw(&a, fmt), Some(ha));
            // Corrupting one payload byte breaks the checksum, one header byte the header.
            let mut bad = a.clone();
            bad[a.len() - 1] ^= 1;
            assert_ne!(payload_checksum(&bad, fmt), ha.checksum);
            bad[0] ^= 1;
            assert_eq!(FrameHeader::from_raw(&bad, fmt), None);
        }
        // Two cameras programmed alike write byte-identical memory.
        let mems = [VecRam::new(RAM, 1 << 20), VecRam::new(RAM, 1 << 20)];
        for m in &mems {
            let mut c = cam(64, 16, FMT_RGB565, 1000);
            for i in 0..4 {
                queue(&mut c, RAM as u32 + i * 0x1000, 0x1000);
            }
            c.write(CAM_CTRL, CTRL_ENABLE);
            assert_eq!(run(&mut c, 10 * MS, m).len(), 4);
        }
        assert_eq!(mems[0].bytes(RAM, 0x4000), mems[1].bytes(RAM, 0x4000));
    }

    #[test]
    fn pattern_has_bars_and_square() {
        // Frame 0: the square sits at (0, 0); bars start white at the left of row > square.
        let (w, h) = (80u32, 80u32);
        assert_eq!(pattern_rgb(0, 0, 0, w, h), (255, 128, 0));
        assert_eq!(pattern_rgb(0, 0, 20, w, h), (255, 255, 255));
        assert_eq!(pattern_rgb(0, 79, 20, w, h), (0, 0, 0));
        // Bars scroll left by 4 pixels a frame.
        assert_eq!(pattern_rgb(1, 6, 20, w, h), pattern_rgb(0, 10, 20, w, h));
        // Grey ramp at the bottom.
        let (r, g, b) = pattern_rgb(0, 40, 79, w, h);
        assert!(r == g && g == b && r == 128);
        // Tiny sizes do not panic.
        for (w, h) in [(16, 1), (16, 2), (17, 3)] {
            let mut v = Vec::new();
            render_frame(u64::MAX, w, h, CamFormat::Rgb565, 0, &mut v);
            assert_eq!(v.len(), (w * h * 2) as usize);
        }
    }

    #[test]
    fn header_survives_rgba_round_trip() {
        for fmt in [CamFormat::Rgb565, CamFormat::Xrgb8888] {
            let mut raw = Vec::new();
            let hdr = render_frame(42, 32, 8, fmt, 9, &mut raw);
            // Convert like a PL111 with BGR set (DRM formats).
            let rgba: Vec<u8> = raw
                .chunks(fmt.bytes_per_pixel())
                .flat_map(|p| match fmt {
                    CamFormat::Rgb565 => {
                        let v = u16::from_le_bytes([p[0], p[1]]) as u32;
                        let (r, g, b) = (v >> 11, (v >> 5) & 63, v & 31);
                        [((r << 3) | (r >> 2)) as u8, ((g << 2) | (g >> 4)) as u8, ((b << 3) | (b >> 2)) as u8, 255]
                    }
                    CamFormat::Xrgb8888 => [p[2], p[1], p[0], 255],
                })
                .collect();
            assert_eq!(raw_from_rgba(&rgba, fmt), raw);
            assert_eq!(check_scanout(&rgba, 32, 8, fmt), Ok(hdr));
            assert!(check_scanout(&rgba, 16, 16, fmt).is_err());
            assert!(check_scanout(&rgba[..100], 32, 8, fmt).is_err());
        }
    }

    #[test]
    fn garbage_never_panics() {
        let ram = VecRam::new(RAM, 1 << 20);
        let mut c = Camera::new();
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut now = 0u64;
        for _ in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let off = (x >> 20) & 0x7c;
            // Keep frames small so captures are cheap; aim some buffers into RAM.
            let v = match off {
                CAM_WIDTH => 16 + (x as u32 & 63),
                CAM_HEIGHT => (x as u32 & 15).max(1),
                CAM_PERIOD_US => 100 + (x as u32 & 1023),
                CAM_BUF_ADDR => RAM as u32 + (x as u32 & 0xf_ffc0) + (x >> 63) as u32 * 4,
                CAM_BUF_QUEUE | CAM_DONE_POP => 1,
                CAM_CTRL if x & 0xff == 0 => CTRL_RESET,
                _ => x as u32,
            };
            if x & 1 == 0 {
                c.write(off, v);
            } else {
                c.read(off);
            }
            now += (x >> 48) & 0xfffff;
            c.advance_to(now);
            while c.next_deadline_ns().is_some_and(|d| d <= now) {
                let _ = c.capture(now, &ram);
            }
            assert!(c.queued().count() <= QUEUE_DEPTH && c.done().count() <= DONE_DEPTH);
        }
        // The end of virtual time terminates the board loop.
        c.write(CAM_CTRL, CTRL_RESET);
        c.write(CAM_CTRL, CTRL_ENABLE);
        c.advance_to(u64::MAX - 1_000);
        let mut n = 0;
        while c.next_deadline_ns().is_some() {
            let _ = c.capture(u64::MAX, &ram);
            n += 1;
            assert!(n < 10);
        }
        // Reads of the whole window.
        for off in (0..0x1000).step_by(4) {
            c.read(off);
        }
    }
}
