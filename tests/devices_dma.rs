//! The two DMA masters together, without a CPU: the camera writes frames into
//! a fake RAM, the PL111 scans the same buffers out as Linux's pl111 driver
//! would program it, the pictures go through PNG and back, and the camera's
//! embedded header and checksum are checked on the far side.

use cmaemu::board::frames::{decode_png, encode_png, FrameRecorder};
use cmaemu::devices::camera::{self, *};
use cmaemu::devices::dma::{DmaMemory, DmaTransfer, VecRam};
use cmaemu::devices::pl111::{self, Pl111};
use cmaemu::devices::MmioDevice;

const RAM: u64 = 0x6000_0000;
const RAM_SIZE: usize = 16 << 20;
const MS: u64 = 1_000_000;

/// Program the PL111 like Linux's `pl111_display_enable` for a DRM format.
fn program_clcd(d: &mut Pl111, w: u32, h: u32, base: u64, fmt: CamFormat) {
    d.write(pl111::CLCD_TIM0, ((w / 16 - 1) << 2) | (9 << 8) | (9 << 16) | (9 << 24));
    d.write(pl111::CLCD_TIM1, (h - 1) | (1 << 10) | (4 << 16) | (4 << 24));
    d.write(pl111::CLCD_TIM2, pl111::TIM2_BCD | ((w - 1) << 16));
    d.write(pl111::CLCD_UBAS, base as u32);
    // DRM XRGB8888 → LCDBPP24 | BGR, DRM RGB565 → LCDBPP16_565 | BGR.
    let bpp = match fmt {
        CamFormat::Xrgb8888 => pl111::CNTL_LCDBPP24,
        CamFormat::Rgb565 => pl111::CNTL_LCDBPP16_565,
    };
    d.write(pl111::CLCD_PL111_IENB, pl111::INT_LNBU);
    d.write(
        pl111::CLCD_PL111_CNTL,
        pl111::CNTL_LCDEN | pl111::CNTL_LCDTFT | pl111::CNTL_LCDPWR | pl111::CNTL_BGR | bpp | (1 << pl111::CNTL_LCDVCOMP_SHIFT),
    );
}

fn program_camera(c: &mut Camera, w: u32, h: u32, fmt: CamFormat, period_us: u32) {
    c.write(CAM_FORMAT, fmt.reg());
    c.write(CAM_WIDTH, w);
    c.write(CAM_HEIGHT, h);
    c.write(CAM_PERIOD_US, period_us);
}

fn queue(c: &mut Camera, addr: u64, size: u64) {
    c.write(CAM_BUF_ADDR, addr as u32);
    c.write(CAM_BUF_SIZE, size as u32);
    c.write(CAM_BUF_QUEUE, 1);
}

/// Run the camera up to `now` as the board does.
fn run_camera(c: &mut Camera, now: u64, mem: &dyn DmaMemory) -> Vec<DmaTransfer> {
    let mut out = Vec::new();
    while c.next_deadline_ns().is_some_and(|d| d <= now) {
        out.extend(c.capture(now, mem));
    }
    out
}

#[test]
fn camera_frame_through_clcd_and_png() {
    for fmt in [CamFormat::Xrgb8888, CamFormat::Rgb565] {
        let ram = VecRam::new(RAM, RAM_SIZE);
        let (w, h) = (160u32, 120u32);
        let buf = RAM + 0x40_0000;
        let mut cam = Camera::new().with_dma_window(RAM, RAM_SIZE as u64);
        program_camera(&mut cam, w, h, fmt, 10_000);
        let frame_len = cam.frame_size();
        // Let three periods pass with no buffer (dropped), then capture frame 3.
        cam.write(CAM_CTRL, CTRL_ENABLE | CTRL_IRQ_EN);
        assert!(run_camera(&mut cam, 30 * MS, &ram).is_empty());
        cam.write(CAM_ERROR, ERR_MASK);
        cam.write(CAM_IRQ_STATUS, 3);
        queue(&mut cam, buf, frame_len);
        let t = run_camera(&mut cam, 40 * MS, &ram);
        assert_eq!(t, vec![DmaTransfer { device: "camera", pa: buf, len: frame_len, write: true, frame: 3, at_ns: 40 * MS }]);
        assert!(cam.irq_level());
        assert_eq!(cam.read(CAM_DONE_ADDR) as u64, buf);
        assert_eq!(cam.read(CAM_DONE_FRAME), 3);
        let done_sum = cam.read(CAM_DONE_CHECKSUM);

        // Scan the buffer out.
        let mut clcd = Pl111::new();
        clcd.set_frame_period_ns(16 * MS);
        clcd.advance_to(40 * MS);
        program_clcd(&mut clcd, w, h, buf, fmt);
        let vs = clcd.next_deadline_ns().unwrap();
        let f = clcd.vsync(vs, &ram).expect("scan-out");
        assert!(clcd.irq_level());
        assert_eq!((f.width, f.height), (w, h));
        assert_eq!(f.transfer, DmaTransfer { device: "pl111", pa: buf, len: frame_len, write: false, frame: 0, at_ns: vs });

        // Through PNG and back: lossless.
        let png = encode_png(f.width, f.height, &f.rgba).unwrap();
        let (pw, ph, rgba) = decode_png(&png).unwrap();
        assert_eq!((pw, ph), (w, h));
        assert_eq!(rgba, f.rgba);

        // The header and the checksum survive the trip.
        let hdr = camera::check_scanout(&rgba, w, h, fmt).unwrap();
        assert_eq!((hdr.frame, hdr.width, hdr.height, hdr.format, hdr.time_us), (3, w, h, fmt.reg(), 40_000));
        assert_eq!(hdr.checksum, done_sum);
        let rec = cam.check_scanout(&rgba, w, h).unwrap();
        assert_eq!((rec.frame, rec.pa, rec.len, rec.checksum), (3, buf, frame_len, done_sum));

        // Pixels: every non-header pixel is the test pattern of frame 3.
        for y in 0..h {
            for x in 0..w {
                let i = (y * w + x) as usize;
                if i < HEADER_PIXELS {
                    continue;
                }
                let (r, g, b) = pattern_rgb(3, x, y, w, h);
                let want = match fmt {
                    CamFormat::Xrgb8888 => [r, g, b, 255],
                    // 565 keeps the top 5/6/5 bits, the CLCD expands them back.
                    CamFormat::Rgb565 => {
                        let (r5, g6, b5) = (r >> 3, g >> 2, b >> 3);
                        [(r5 << 3) | (r5 >> 2), (g6 << 2) | (g6 >> 4), (b5 << 3) | (b5 >> 2), 255]
                    }
                };
                assert_eq!(&rgba[4 * i..4 * i + 4], &want, "{fmt:?} pixel ({x}, {y})");
            }
        }

        // The raw buffer in RAM carries the same header.
        let raw = ram.bytes(buf, frame_len as usize).unwrap();
        assert_eq!(FrameHeader::from_raw(&raw, fmt), Some(hdr));

        // A corrupted scan-out is caught.
        let mut bad = rgba.clone();
        let last = bad.len() - 4;
        bad[last] ^= 0x80;
        assert!(camera::check_scanout(&bad, w, h, fmt).is_err());
        assert!(cam.check_scanout(&bad, w, h).is_err());
    }
}

/// A preview pipeline as the guest will run it: four buffers cycle between
/// the camera and the display; every DMA transfer lands in one buffer, every
/// scanned-out frame matches the camera's record of it.
#[test]
fn preview_pipeline_transfers_stay_in_buffers() {
    let ram = VecRam::new(RAM, RAM_SIZE);
    let (w, h, fmt) = (64u32, 48u32, CamFormat::Rgb565);
    let mut cam = Camera::new().with_dma_window(RAM, RAM_SIZE as u64);
    program_camera(&mut cam, w, h, fmt, 33_333);
    let len = cam.frame_size();
    let bufs: Vec<u64> = (0..4).map(|i| RAM + 0x10_0000 + i * 0x1_0000).collect();
    for b in &bufs[..3] {
        queue(&mut cam, *b, len);
    }
    let mut clcd = Pl111::new();
    clcd.set_frame_period_ns(16_666_667);
    program_clcd(&mut clcd, w, h, bufs[3], fmt);
    cam.write(CAM_CTRL, CTRL_ENABLE | CTRL_IRQ_EN);

    let mut displayed = bufs[3];
    let mut showing_camera = false;
    let mut transfers = Vec::new();
    let mut checked = 0;
    let mut now = 0;
    while now < 2_000 * MS {
        // Next event: camera frame or vsync.
        now = cam.next_deadline_ns().unwrap().min(clcd.next_deadline_ns().unwrap());
        cam.advance_to(now);
        clcd.advance_to(now);
        transfers.extend(run_camera(&mut cam, now, &ram));
        // Guest IRQ handler: take the newest done frame, show it, requeue the old one.
        if cam.irq_level() {
            cam.write(CAM_IRQ_STATUS, IRQ_FRAME_DONE | IRQ_ERROR);
            while cam.read(CAM_DONE_ADDR) != 0 {
                assert_eq!(cam.read(CAM_DONE_STATUS), 0);
                let addr = cam.read(CAM_DONE_ADDR) as u64;
                cam.write(CAM_DONE_POP, 1);
                queue(&mut cam, displayed, len);
                displayed = addr;
                showing_camera = true;
                clcd.write(pl111::CLCD_UBAS, addr as u32);
            }
        }
        if clcd.next_deadline_ns().is_some_and(|d| d <= now) {
            if let Some(f) = clcd.vsync(now, &ram) {
                transfers.push(f.transfer);
                if showing_camera {
                    let rec = cam.check_scanout(&f.rgba, w, h).unwrap();
                    assert_eq!(rec.pa, f.base);
                    checked += 1;
                }
            }
            clcd.write(pl111::CLCD_PL111_ICR, pl111::INT_MASK);
        }
    }
    assert_eq!(cam.read(CAM_ERROR), 0, "no drops, no errors");
    assert_eq!(cam.frame_count() as usize, transfers.iter().filter(|t| t.device == "camera").count());
    assert!(cam.frame_count() >= 59, "{} frames", cam.frame_count());
    assert!(checked >= 100, "{checked} scan-outs checked");
    for t in &transfers {
        assert_eq!(t.len, len);
        assert!(bufs.contains(&t.pa), "{t:?} is not inside one buffer");
    }
}

#[test]
fn same_programming_gives_identical_pngs() {
    let run = || {
        let ram = VecRam::new(RAM, RAM_SIZE);
        let mut cam = Camera::new();
        program_camera(&mut cam, 96, 64, CamFormat::Xrgb8888, 1_000);
        for i in 0..5 {
            queue(&mut cam, RAM + i * 0x10_0000, 0x10_0000);
        }
        cam.write(CAM_CTRL, CTRL_ENABLE);
        assert_eq!(run_camera(&mut cam, 5 * MS, &ram).len(), 5);
        let mut clcd = Pl111::new();
        let mut pngs = Vec::new();
        for i in 0..5 {
            program_clcd(&mut clcd, 96, 64, RAM + i * 0x10_0000, CamFormat::Xrgb8888);
            let f = clcd.vsync(10 * MS + i * MS, &ram).unwrap();
            pngs.push(encode_png(f.width, f.height, &f.rgba).unwrap());
        }
        pngs
    };
    let (a, b) = (run(), run());
    assert_eq!(a, b);
    // The picture moves from frame to frame.
    for p in a.windows(2) {
        assert_ne!(p[0], p[1]);
    }
}

#[test]
fn recorder_writes_scanned_frames() {
    let ram = VecRam::new(RAM, RAM_SIZE);
    let mut cam = Camera::new();
    program_camera(&mut cam, 32, 16, CamFormat::Rgb565, 1_000);
    queue(&mut cam, RAM, 0x1000);
    cam.write(CAM_CTRL, CTRL_ENABLE);
    run_camera(&mut cam, MS, &ram);
    let mut clcd = Pl111::new();
    program_clcd(&mut clcd, 32, 16, RAM, CamFormat::Rgb565);
    let dir = std::env::temp_dir().join(format!("cmaemu-devices-dma-{}", std::process::id()));
    let mut rec = FrameRecorder::new(&dir).unwrap();
    let f = clcd.vsync(2 * MS, &ram).unwrap();
    let path = rec.record(f.number, f.width, f.height, &f.rgba).unwrap();
    let (w, h, rgba) = cmaemu::board::frames::read_png(&path).unwrap();
    assert_eq!(cam.check_scanout(&rgba, w, h).unwrap().frame, 0);
    // A screenshot of the same buffer, taken without side effects, is identical.
    let (sw, sh, shot) = clcd.snapshot(&ram).unwrap();
    assert_eq!((sw, sh, &shot), (w, h, &rgba));
    std::fs::remove_dir_all(&dir).unwrap();
}
