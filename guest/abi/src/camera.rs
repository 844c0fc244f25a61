//! The register map of the cmaemu camera ("cmaemu,camera-v1"), a capture
//! DMA master that exists only in this emulator: read by the guest's
//! driver (`guest/kernel/src/video.rs`) and the host's device model
//! (`emulator/src/devices/camera.rs`, which documents each register's
//! behaviour; the binding is `dts/bindings/cmaemu,camera-v1.yaml`).
//!
//! 32-bit registers in a 4 KiB window at 0x1003_0000, SPI 52.

/// The register block as the guest sees it, one `u32` per register: its
/// field offsets are the `CAM_*` constants below (asserted).
#[repr(C)]
pub struct CameraRegs {
    pub id: u32,
    pub version: u32,
    pub ctrl: u32,
    pub status: u32,
    pub format: u32,
    pub width: u32,
    pub height: u32,
    pub period_us: u32,
    pub buf_addr: u32,
    pub buf_size: u32,
    pub buf_queue: u32,
    pub frame_size: u32,
    pub done_addr: u32,
    pub done_frame: u32,
    pub done_status: u32,
    pub done_pop: u32,
    pub frame_count: u32,
    pub drop_count: u32,
    pub error: u32,
    pub irq_status: u32,
    pub done_checksum: u32,
    pub sequence: u32,
}

/// Physical base of the register window.
pub const CAMERA_BASE: u32 = 0x1003_0000;
/// Size of the register window.
pub const CAMERA_WINDOW: u32 = 0x1000;
/// Its interrupt: SPI 52.
pub const CAMERA_SPI: u32 = 52;

/// ID (RO): [`CAM_ID_MAGIC`].
pub const CAM_ID: u32 = 0x000;
/// VERSION (RO): [`CAM_VERSION_1_0`].
pub const CAM_VERSION: u32 = 0x004;
/// CTRL (RW): `CTRL_*` bits.
pub const CAM_CTRL: u32 = 0x008;
/// STATUS (RO): bits 7:0 queued buffers, 15:8 done entries, `STATUS_*`.
pub const CAM_STATUS: u32 = 0x00c;
/// FORMAT (RW): `FMT_*`.
pub const CAM_FORMAT: u32 = 0x010;
/// WIDTH (RW): pixels per line.
pub const CAM_WIDTH: u32 = 0x014;
/// HEIGHT (RW): lines.
pub const CAM_HEIGHT: u32 = 0x018;
/// PERIOD_US (RW): frame period in µs of virtual time.
pub const CAM_PERIOD_US: u32 = 0x01c;
/// BUF_ADDR (RW): physical address of the buffer to queue.
pub const CAM_BUF_ADDR: u32 = 0x020;
/// BUF_SIZE (RW): its size in bytes.
pub const CAM_BUF_SIZE: u32 = 0x024;
/// BUF_QUEUE (WO): write 1 to queue (BUF_ADDR, BUF_SIZE).
pub const CAM_BUF_QUEUE: u32 = 0x028;
/// FRAME_SIZE (RO): bytes of one frame.
pub const CAM_FRAME_SIZE: u32 = 0x02c;
/// DONE_ADDR (RO): head of the done queue (0 when empty).
pub const CAM_DONE_ADDR: u32 = 0x030;
/// DONE_FRAME (RO): its frame number ([`NO_FRAME`] if none was written).
pub const CAM_DONE_FRAME: u32 = 0x034;
/// DONE_STATUS (RO): 0, or the ERROR bits that failed the buffer.
pub const CAM_DONE_STATUS: u32 = 0x038;
/// DONE_POP (WO): write 1 to pop the head of the done queue.
pub const CAM_DONE_POP: u32 = 0x03c;
/// FRAME_COUNT (RO): frames written since reset.
pub const CAM_FRAME_COUNT: u32 = 0x040;
/// DROP_COUNT (RO): frame periods without a frame since reset.
pub const CAM_DROP_COUNT: u32 = 0x044;
/// ERROR (RW1C): sticky `ERR_*` bits.
pub const CAM_ERROR: u32 = 0x048;
/// IRQ_STATUS (RW1C): `IRQ_*` bits.
pub const CAM_IRQ_STATUS: u32 = 0x04c;
/// DONE_CHECKSUM (RO): payload checksum of the head done frame.
pub const CAM_DONE_CHECKSUM: u32 = 0x050;
/// SEQUENCE (RO): the number the next frame period carries.
pub const CAM_SEQUENCE: u32 = 0x054;

/// ID value ("CAM1").
pub const CAM_ID_MAGIC: u32 = 0x4341_4d31;
/// VERSION value (1.0).
pub const CAM_VERSION_1_0: u32 = 0x0001_0000;

/// CTRL: capture enable.
pub const CTRL_ENABLE: u32 = 1 << 0;
/// CTRL: interrupt output enable.
pub const CTRL_IRQ_EN: u32 = 1 << 1;
/// CTRL: reset (self-clearing).
pub const CTRL_RESET: u32 = 1 << 31;

/// STATUS: busy (enabled).
pub const STATUS_BUSY: u32 = 1 << 16;
/// STATUS: capture queue full.
pub const STATUS_QUEUE_FULL: u32 = 1 << 17;
/// STATUS: done queue full.
pub const STATUS_DONE_FULL: u32 = 1 << 18;

/// FORMAT: RGB565.
pub const FMT_RGB565: u32 = 1;
/// FORMAT: XRGB8888.
pub const FMT_XRGB8888: u32 = 2;

/// ERROR: buffer outside the DMA window / RAM.
pub const ERR_BAD_ADDR: u32 = 1 << 0;
/// ERROR: buffer smaller than a frame.
pub const ERR_TOO_SMALL: u32 = 1 << 1;
/// ERROR: buffer address not aligned to [`BUF_ALIGN`].
pub const ERR_UNALIGNED: u32 = 1 << 2;
/// ERROR: capture queue overflow.
pub const ERR_QUEUE_OVERFLOW: u32 = 1 << 3;
/// ERROR: a frame was due and could not be captured (no buffer / done full).
pub const ERR_DROPPED: u32 = 1 << 4;
/// ERROR: invalid FORMAT/WIDTH/HEIGHT/PERIOD_US value.
pub const ERR_BAD_CONFIG: u32 = 1 << 5;
/// ERROR: configuration written while enabled.
pub const ERR_BUSY: u32 = 1 << 6;
/// ERROR: DONE_POP with an empty done queue.
pub const ERR_EMPTY_POP: u32 = 1 << 7;
/// All error bits.
pub const ERR_MASK: u32 = 0xff;

/// IRQ_STATUS: a frame was written.
pub const IRQ_FRAME_DONE: u32 = 1 << 0;
/// IRQ_STATUS: an error bit was set.
pub const IRQ_ERROR: u32 = 1 << 1;

/// Capture queue depth.
pub const QUEUE_DEPTH: usize = 16;
/// Done queue depth.
pub const DONE_DEPTH: usize = 32;
/// Required buffer alignment in bytes.
pub const BUF_ALIGN: u32 = 64;
/// DONE_FRAME of an entry with no frame written.
pub const NO_FRAME: u32 = 0xffff_ffff;
/// Frame header magic ("CFRM") in the first pixels of every frame.
pub const HEADER_MAGIC: u32 = 0x4346_524d;
/// Pixels the header occupies at the start of a frame.
pub const HEADER_PIXELS: usize = 16;

const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<CameraRegs>() == CAM_SEQUENCE as usize + 4);
    assert!(size_of::<CameraRegs>() <= CAMERA_WINDOW as usize);
    assert!(offset_of!(CameraRegs, id) == CAM_ID as usize);
    assert!(offset_of!(CameraRegs, version) == CAM_VERSION as usize);
    assert!(offset_of!(CameraRegs, ctrl) == CAM_CTRL as usize);
    assert!(offset_of!(CameraRegs, status) == CAM_STATUS as usize);
    assert!(offset_of!(CameraRegs, format) == CAM_FORMAT as usize);
    assert!(offset_of!(CameraRegs, width) == CAM_WIDTH as usize);
    assert!(offset_of!(CameraRegs, height) == CAM_HEIGHT as usize);
    assert!(offset_of!(CameraRegs, period_us) == CAM_PERIOD_US as usize);
    assert!(offset_of!(CameraRegs, buf_addr) == CAM_BUF_ADDR as usize);
    assert!(offset_of!(CameraRegs, buf_size) == CAM_BUF_SIZE as usize);
    assert!(offset_of!(CameraRegs, buf_queue) == CAM_BUF_QUEUE as usize);
    assert!(offset_of!(CameraRegs, frame_size) == CAM_FRAME_SIZE as usize);
    assert!(offset_of!(CameraRegs, done_addr) == CAM_DONE_ADDR as usize);
    assert!(offset_of!(CameraRegs, done_frame) == CAM_DONE_FRAME as usize);
    assert!(offset_of!(CameraRegs, done_status) == CAM_DONE_STATUS as usize);
    assert!(offset_of!(CameraRegs, done_pop) == CAM_DONE_POP as usize);
    assert!(offset_of!(CameraRegs, frame_count) == CAM_FRAME_COUNT as usize);
    assert!(offset_of!(CameraRegs, drop_count) == CAM_DROP_COUNT as usize);
    assert!(offset_of!(CameraRegs, error) == CAM_ERROR as usize);
    assert!(offset_of!(CameraRegs, irq_status) == CAM_IRQ_STATUS as usize);
    assert!(offset_of!(CameraRegs, done_checksum) == CAM_DONE_CHECKSUM as usize);
    assert!(offset_of!(CameraRegs, sequence) == CAM_SEQUENCE as usize);
    assert!(ERR_MASK == 0xff && IRQ_FRAME_DONE & IRQ_ERROR == 0);
};
