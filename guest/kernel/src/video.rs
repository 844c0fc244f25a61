//! Camera ("cmaemu,camera-v1") and display (PL111 CLCD) drivers with their
//! buffers in CMA (`dma_alloc_coherent` from the device's `memory-region`
//! area, else the default area), and the `preview` pipeline camera →
//! display. While a preview waits for frames, background jobs run.
use crate::arch::{io_p2v, phys_to_virt, readl, writel};
use crate::mm::with_mm;
use crate::{dma, pr_info, println};
use cmaemu_abi::desc::{DMA_DEV_CAMERA, DMA_DEV_CLCD};
use cmaemu_abi::page::Pfn;
use cmaemu_mm::cma::CmaId;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

pub const CAMERA_PA: u32 = cmaemu_abi::camera::CAMERA_BASE;
pub const CLCD_PA: u32 = 0x1002_0000;
pub const IRQ_CAMERA: u32 = 32 + cmaemu_abi::camera::CAMERA_SPI;
pub const IRQ_CLCD: u32 = 32 + 44;

// camera registers: guest/abi's map, shared with the host's device model
use cmaemu_abi::camera::{
    CAM_BUF_ADDR, CAM_BUF_QUEUE, CAM_BUF_SIZE, CAM_CTRL, CAM_DONE_ADDR, CAM_DONE_FRAME, CAM_DONE_POP, CAM_DONE_STATUS, CAM_ERROR,
    CAM_FORMAT, CAM_FRAME_SIZE, CAM_HEIGHT, CAM_ID, CAM_ID_MAGIC, CAM_IRQ_STATUS, CAM_PERIOD_US, CAM_STATUS, CAM_WIDTH, CTRL_ENABLE,
    CTRL_IRQ_EN, CTRL_RESET, FMT_XRGB8888,
};

// PL111 registers
const CLCD_TIM0: u32 = 0x000;
const CLCD_TIM1: u32 = 0x004;
const CLCD_TIM2: u32 = 0x008;
const CLCD_UPBASE: u32 = 0x010;
const CLCD_UPCURR: u32 = 0x02c;
const CLCD_CNTL: u32 = 0x018;
const CLCD_IENB: u32 = 0x01c;
const CLCD_ICR: u32 = 0x028;
const CNTL_LCDEN: u32 = 1 << 0;
const CNTL_BPP24: u32 = 5 << 1;
const CNTL_TFT: u32 = 1 << 5;
const CNTL_BGR: u32 = 1 << 8;
const CNTL_PWR: u32 = 1 << 11;
const INT_LNBU: u32 = 1 << 2;

pub const WIDTH: u32 = 320;
pub const HEIGHT: u32 = 240;
pub const NBUF: usize = 4;

static CAM_IRQS: AtomicU32 = AtomicU32::new(0);
static VSYNCS: AtomicU32 = AtomicU32::new(0);
static PRESENT: AtomicBool = AtomicBool::new(false);
/// The devices' own CMA areas (from `memory-region`), as ids + 1 (0: none).
static CAM_AREA: AtomicU32 = AtomicU32::new(0);
static CLCD_AREA: AtomicU32 = AtomicU32::new(0);

fn cam(off: u32) -> u32 {
    io_p2v(CAMERA_PA) + off
}
fn clcd(off: u32) -> u32 {
    io_p2v(CLCD_PA) + off
}

fn area(v: &AtomicU32) -> Option<CmaId> {
    match v.load(Ordering::Relaxed) {
        0 => None,
        n => Some(CmaId(n as usize - 1)),
    }
}

/// Probe: find the devices in the DT and their `memory-region` areas
/// (`of_reserved_mem_device_init`), enable their interrupts.
/// The camera answered its ID register at probe.
pub fn camera_present() -> bool {
    PRESENT.load(Ordering::Relaxed)
}

pub fn probe(fdt: &fdt::Fdt) {
    for node in fdt.all_nodes() {
        let is_cam = crate::dt::is_compatible(&node, "cmaemu,camera-v1");
        let is_clcd = crate::dt::is_compatible(&node, "arm,pl111");
        if !is_cam && !is_clcd {
            continue;
        }
        if let Some(ph) = crate::dt::prop_u64(&node, "memory-region") {
            if let Some(id) = device_area(ph as u32) {
                let slot = if is_cam { &CAM_AREA } else { &CLCD_AREA };
                slot.store(id.0 as u32 + 1, Ordering::Relaxed);
                with_mm(|mm| {
                    let name = mm.areas.as_ref().map(|a| a.get(id).cma_get_name()).unwrap_or("?");
                    pr_info!("{}: assigned reserved memory node {}", node.name, name);
                });
            }
        }
    }
    if readl(cam(CAM_ID)) == CAM_ID_MAGIC {
        PRESENT.store(true, Ordering::Relaxed);
        crate::drivers::gic::enable(IRQ_CAMERA);
        crate::drivers::gic::enable(IRQ_CLCD);
        pr_info!("cmaemu-camera 10030000.camera: camera v1 at 0x10030000, irq {}", IRQ_CAMERA);
    }
}

pub(crate) fn device_area(phandle: u32) -> Option<CmaId> {
    with_mm(|mm| match mm.rmem.as_ref()?.of_reserved_mem_device_init(phandle) {
        Ok((cmaemu_mm::rmem::RmemOps::Cma(id), _)) => Some(id),
        _ => None,
    })
    .flatten()
}

/// `dma_alloc_coherent` for device `dev`.
fn dma_alloc(dev: u32, area: Option<CmaId>, size: u64) -> Option<Pfn> {
    with_mm(|mm| dma::dma_alloc_coherent(mm, dev, area, size)).flatten()
}

/// `dma_free_coherent` for device `dev`.
fn dma_free(dev: u32, area: Option<CmaId>, pfn: Pfn, size: u64) {
    with_mm(|mm| dma::dma_free_coherent(mm, dev, area, pfn, size));
}

pub fn irq_camera() {
    let st = readl(cam(CAM_IRQ_STATUS));
    writel(cam(CAM_IRQ_STATUS), st);
    CAM_IRQS.fetch_add(1, Ordering::Relaxed);
}
pub fn irq_clcd() {
    let ris = readl(clcd(0x020));
    writel(clcd(CLCD_ICR), 0x1f);
    if ris & INT_MBERROR != 0 {
        pr_info!("pl111 10020000.clcd: AHB master error: scan-out from {:#010x} failed", readl(clcd(CLCD_UPBASE)));
        // stop scanning out garbage, as a driver would on a fatal error
        writel(clcd(CLCD_CNTL), readl(clcd(CLCD_CNTL)) & !CNTL_LCDEN);
    }
    VSYNCS.fetch_add(1, Ordering::Relaxed);
}

const INT_MBERROR: u32 = 1 << 4;

/// Names of the camera's ERROR bits.
fn cam_errors(e: u32) -> &'static str {
    match e.trailing_zeros() {
        0 => "buffer outside RAM",
        1 => "buffer too small",
        2 => "buffer not 64-byte aligned",
        3 => "queue overflow",
        4 => "frame dropped",
        5 => "bad configuration",
        6 => "busy",
        7 => "pop of an empty done queue",
        _ => "none",
    }
}

/// `camera queue ADDR SIZE`: hand the camera a buffer by hand (for testing
/// how it and this driver handle bad programming).
pub fn camera_queue(addr: u32, size: u32) {
    writel(cam(CAM_ERROR), 0xff);
    writel(cam(CAM_BUF_ADDR), addr);
    writel(cam(CAM_BUF_SIZE), size);
    writel(cam(CAM_BUF_QUEUE), 1);
    let e = readl(cam(CAM_ERROR));
    if e != 0 {
        pr_info!("cmaemu-camera 10030000.camera: buffer {:#010x}+{:#x} rejected: error {:#x} ({})", addr, size, e, cam_errors(e));
        writel(cam(CAM_ERROR), e);
        writel(cam(CAM_IRQ_STATUS), 0x3);
    } else {
        println!("camera: buffer {:#010x}+{:#x} queued", addr, size);
        writel(cam(CAM_CTRL), CTRL_RESET); // reset: give it back
    }
}

/// `display base ADDR`: point the display at ADDR and enable it.
pub fn display_base(addr: u32) {
    writel(clcd(CLCD_TIM0), (WIDTH / 16 - 1) << 2);
    writel(clcd(CLCD_TIM1), HEIGHT - 1);
    writel(clcd(CLCD_UPBASE), addr);
    writel(clcd(CLCD_IENB), INT_LNBU | INT_MBERROR);
    writel(clcd(CLCD_CNTL), CNTL_LCDEN | CNTL_BPP24 | CNTL_TFT | CNTL_BGR | CNTL_PWR);
    let vs = VSYNCS.load(Ordering::Relaxed);
    while VSYNCS.load(Ordering::Relaxed) == vs {
        crate::sched::idle();
    }
    writel(clcd(CLCD_CNTL), 0);
    println!("display: one frame from {:#010x}", addr);
}

struct Buf {
    pfn: Pfn,
    size: u64,
}

/// `preview N [zerocopy]`: capture N frames and show each on the display.
pub fn preview(frames: u32, zero_copy: bool) {
    if !PRESENT.load(Ordering::Relaxed) {
        println!("preview: no camera");
        return;
    }
    let fsize = WIDTH * HEIGHT * 4;
    writel(cam(CAM_CTRL), CTRL_RESET); // reset
    writel(cam(CAM_FORMAT), FMT_XRGB8888);
    writel(cam(CAM_WIDTH), WIDTH);
    writel(cam(CAM_HEIGHT), HEIGHT);
    writel(cam(CAM_PERIOD_US), 16_667);
    if readl(cam(CAM_FRAME_SIZE)) != fsize {
        println!("preview: camera rejected the format (error {:#x})", readl(cam(CAM_ERROR)));
        return;
    }
    // buffers from the camera's area, framebuffer from the display's
    let mut bufs: [Option<Buf>; NBUF] = [None, None, None, None];
    for b in bufs.iter_mut() {
        match dma_alloc(DMA_DEV_CAMERA, area(&CAM_AREA), fsize as u64) {
            Some(pfn) => *b = Some(Buf { pfn, size: fsize as u64 }),
            None => {
                println!("preview: no memory for camera buffers");
                free_all(&mut bufs, [None, None]);
                return;
            }
        }
    }
    // Copy mode: two framebuffers, flipped at vsync (a DRM page flip): the
    // CPU only ever writes the one the display is not scanning out.
    let mut fbs: [Option<Pfn>; 2] = [None, None];
    if !zero_copy {
        for f in fbs.iter_mut() {
            *f = dma_alloc(DMA_DEV_CLCD, area(&CLCD_AREA), fsize as u64);
            if f.is_none() {
                println!("preview: no memory for the framebuffer");
                free_all(&mut bufs, fbs);
                return;
            }
        }
    }
    // display: 320x240 XRGB8888 (CNTL_BGR as Linux's pl111 driver sets it)
    writel(clcd(CLCD_TIM0), ((WIDTH / 16 - 1) << 2) | (8 << 8) | (8 << 16) | (8 << 24));
    writel(clcd(CLCD_TIM1), (HEIGHT - 1) | (2 << 10) | (2 << 16) | (2 << 24));
    writel(clcd(CLCD_TIM2), (1 << 26) | ((WIDTH - 1) << 16));
    // the first frame is drawn into fbs[0] while the display shows fbs[1]
    if let Some(f) = fbs[1] {
        writel(clcd(CLCD_UPBASE), f.0 << 12);
    }
    let mut back = 0usize;
    writel(clcd(CLCD_IENB), INT_LNBU);
    // Copy mode scans out the framebuffer from now on; zero-copy mode
    // enables the display at the first camera frame, once there is a
    // buffer to point it at (never at address 0).
    if !zero_copy {
        writel(clcd(CLCD_CNTL), DISPLAY_ON);
    }
    for b in bufs.iter().flatten() {
        writel(cam(CAM_BUF_ADDR), b.pfn.0 << 12);
        writel(cam(CAM_BUF_SIZE), b.size as u32);
        writel(cam(CAM_BUF_QUEUE), 1);
    }
    inject_dma_faults(&mut bufs, fsize);
    writel(cam(CAM_CTRL), CTRL_ENABLE | CTRL_IRQ_EN);
    let mut shown = 0u32;
    let mut last_frame = 0u32;
    let mut stutter = Stutter::default();
    let mut on_screen: Option<u32> = None; // zero-copy: the buffer being scanned out
    let start_vs = VSYNCS.load(Ordering::Relaxed);
    let mut waiting_since = crate::time::sched_clock();
    let mut aborted = false;
    while shown < frames {
        if crate::console::interrupted() {
            crate::console::write_bytes(b"^C\n");
            aborted = true;
            break;
        }
        let st = readl(cam(CAM_STATUS));
        if (st >> 8) & 0xff == 0 {
            if crate::time::sched_clock() - waiting_since > WAIT_NS {
                println!("preview: no frame from the camera in 1 s (status {:#x}, error {:#x})", st, readl(cam(CAM_ERROR)));
                break;
            }
            crate::sched::idle();
            continue;
        }
        let addr = readl(cam(CAM_DONE_ADDR));
        let frame = readl(cam(CAM_DONE_FRAME));
        let status = readl(cam(CAM_DONE_STATUS));
        writel(cam(CAM_DONE_POP), 1);
        if status != 0 {
            println!("preview: camera failed buffer {:#x}: error {:#x}", addr, status);
            break;
        }
        if zero_copy {
            writel(clcd(CLCD_UPBASE), addr);
            if on_screen.is_none() {
                writel(clcd(CLCD_CNTL), DISPLAY_ON);
            }
            // the previous buffer goes back once the display latched the new one
            let latched = wait_flip(addr);
            if let Some(prev) = on_screen.replace(addr) {
                requeue(prev, fsize);
            }
            if !latched {
                break;
            }
            stutter.latched(frame);
        } else if let Some(f) = fbs[back] {
            // Both buffers are ours, in the linear map, fsize long; the
            // display is not reading `f` (it scans out the other one).
            crate::arch::ram_copy(phys_to_virt(addr), phys_to_virt(f.0 << 12), fsize as usize);
            requeue(addr, fsize);
            // flip: the other buffer is written only once this one is latched
            writel(clcd(CLCD_UPBASE), f.0 << 12);
            if !wait_flip(f.0 << 12) {
                break;
            }
            stutter.latched(frame);
            back ^= 1;
        }
        shown += 1;
        last_frame = frame;
        waiting_since = crate::time::sched_clock();
    }
    writel(cam(CAM_CTRL), CTRL_RESET);
    writel(clcd(CLCD_CNTL), 0);
    let vsyncs = VSYNCS.load(Ordering::Relaxed) - start_vs;
    if !aborted {
        println!(
            "preview: {} frames shown (last camera frame {}), {} vsyncs, {} repeated, {} camera frames dropped",
            shown, last_frame, vsyncs, stutter.repeated, stutter.dropped
        );
    }
    free_all(&mut bufs, fbs);
}

/// What the display showed late or twice during a preview, counted as
/// the host's `--stats` and `trace summary` count it from the scanned-out
/// frames: a vsync that showed the frame before it again is a repeat; the
/// camera sequence numbers skipped between two shown frames are dropped.
#[derive(Default)]
struct Stutter {
    /// (VSYNCS at the last latch, its camera frame).
    last: Option<(u32, u32)>,
    repeated: u32,
    dropped: u32,
}

impl Stutter {
    /// Camera frame `frame` was latched for scan-out at the latest vsync.
    fn latched(&mut self, frame: u32) {
        let vs = VSYNCS.load(Ordering::Relaxed);
        if let Some((pvs, pframe)) = self.last {
            self.repeated += vs.wrapping_sub(pvs).saturating_sub(1);
            self.dropped += frame.wrapping_sub(pframe).saturating_sub(1);
        }
        self.last = Some((vs, frame));
    }
}

/// `capture N [in S E]`: V4L2 USERPTR-style capture. The camera writes N
/// small frames (16x16 RGB565, 512 bytes, one every 100 µs) straight into
/// up to 4 pages of the current task (the first whose frames lie in [S, E),
/// default: anywhere) while the kernel compacts those pages. The driver
/// pins each page while the camera holds it (`pin_user_pages` with
/// `FOLL_LONGTERM`: compaction leaves pinned pages alone; the pins are
/// listed in the pin table as the camera's, so a page that loses its
/// mapping meanwhile stays the camera's until it unpins it) and maps it for
/// the device (a `dma_alloc`-style record tells the host the page is the
/// camera's buffer now). The injected `dma_during_migration` forgets the
/// pin: the page migrates under the camera, which keeps writing into the
/// old frame; the writes are lost.
pub fn capture_userptr(frames: u32, start: u32, end: u32) {
    let origin = crate::vm::PinOrigin { command: "capture", func: capture_userptr as fn(u32, u32, u32) as usize };
    use cmaemu_abi::trace::{TraceRecord, INJECT_DMA_DURING_MIGRATION};
    if !PRESENT.load(Ordering::Relaxed) {
        println!("capture: no camera");
        return;
    }
    let mut pages = [(0u32, Pfn(0)); 4];
    let n = with_mm(|mm| crate::vm::pages_in(mm, start, end, &mut pages)).unwrap_or(0);
    if n == 0 {
        println!("capture: no page of this task in pfns {:#x}-{:#x}", start, end);
        return;
    }
    let pages = &pages[..n];
    writel(cam(CAM_CTRL), CTRL_RESET); // reset
    writel(cam(CAM_FORMAT), FMT_RGB565);
    writel(cam(CAM_WIDTH), 16);
    writel(cam(CAM_HEIGHT), 16);
    writel(cam(CAM_PERIOD_US), 100);
    let fsize = readl(cam(CAM_FRAME_SIZE));
    let forget_pin = crate::hostif::injected(INJECT_DMA_DURING_MIGRATION);
    // which pages the camera pinned (and unpins when it lets go of them)
    let mut pinned = [false; 4];
    with_mm(|mm| {
        crate::hostif::begin();
        for (i, &(va, pfn)) in pages.iter().enumerate() {
            if forget_pin {
                crate::hostif::fired(INJECT_DMA_DURING_MIGRATION, pfn.0, va);
            } else {
                pinned[i] = crate::vm::pin_frame(mm, pfn, va, true, origin);
            }
            crate::hostif::push(&TraceRecord::dma_alloc(crate::hostif::now(), DMA_DEV_CAMERA, pfn.0 as u64, 1, 0, 0, 0xff));
            writel(cam(CAM_BUF_ADDR), pfn.0 << 12);
            writel(cam(CAM_BUF_SIZE), 4096);
            writel(cam(CAM_BUF_QUEUE), 1);
        }
        crate::mm::publish::end(mm);
    });
    // Each written frame raises the camera's interrupt (`irq_camera` acks
    // it), which ends the idle below: a driver sleeps until its buffer is
    // done, woken by the device (vb2_wait_for_done_vb), not by whatever
    // else interrupts the CPU — polled at the timer tick alone, the 4
    // buffers filled in 400 us and the camera dropped the tick's other 96
    // frames (`capture 3000` gave up after 404 when no input was pending).
    writel(cam(CAM_CTRL), CTRL_ENABLE | CTRL_IRQ_EN);
    let mut done = 0u32;
    let mut moved = 0u32;
    let mut since = crate::time::sched_clock();
    while done < frames {
        if (readl(cam(CAM_STATUS)) >> 8) & 0xff == 0 {
            // a second with no frame: the camera stopped
            if crate::time::sched_clock() - since > WAIT_NS {
                println!("capture: no frame from the camera in 1 s (error {:#x})", readl(cam(CAM_ERROR)));
                break;
            }
            crate::sched::idle();
            continue;
        }
        let addr = readl(cam(CAM_DONE_ADDR));
        writel(cam(CAM_DONE_POP), 1);
        requeue(addr, 4096);
        done += 1;
        since = crate::time::sched_clock();
        if done == frames / 2 {
            // compaction runs while the camera streams into the pages
            let pfns: [Pfn; 4] = core::array::from_fn(|i| pages.get(i).map_or(Pfn(0), |p| p.1));
            moved = with_mm(|mm| crate::dma::compact_pages(mm, &pfns[..n])).unwrap_or(0);
        }
    }
    writel(cam(CAM_CTRL), CTRL_RESET); // reset: the camera lets go of the pages
    with_mm(|mm| {
        crate::hostif::begin();
        for (i, &(va, pfn)) in pages.iter().enumerate() {
            crate::hostif::push(&TraceRecord::dma_free(crate::hostif::now(), DMA_DEV_CAMERA, pfn.0 as u64, 1));
            if pinned[i] {
                crate::vm::pin_frame(mm, pfn, va, false, origin);
            }
        }
        crate::mm::publish::end(mm);
    });
    println!("capture: {} frames of {} bytes into {} user pages, {} pages moved by compaction meanwhile", done, fsize, n, moved);
}

const FMT_RGB565: u32 = 1;

/// The display's control word while scanning out (320x240 XRGB8888 TFT).
const DISPLAY_ON: u32 = CNTL_LCDEN | CNTL_BPP24 | CNTL_TFT | CNTL_BGR | CNTL_PWR;

/// How long preview waits for a camera frame or a vsync (virtual ns).
const WAIT_NS: u64 = 1_000_000_000;

/// Wait until the display latched `base` (written to LCDUPBASE) at a vsync:
/// LCDUPCURR reads it back, so the buffer scanned out before is free (what
/// a page flip's completion event tells a DRM driver). False, with a
/// message, when the display stopped (the IRQ handler turns it off after an
/// AHB master error) or no vsync latched it within `WAIT_NS`.
fn wait_flip(base: u32) -> bool {
    let since = crate::time::sched_clock();
    while readl(clcd(CLCD_UPCURR)) != base {
        if readl(clcd(CLCD_CNTL)) & CNTL_LCDEN == 0 {
            println!("preview: the display stopped (see the kernel log)");
            return false;
        }
        if crate::time::sched_clock() - since > WAIT_NS {
            println!("preview: no vsync from the display in 1 s");
            return false;
        }
        crate::sched::idle();
    }
    true
}

/// Fault injections on the DMA path (see `cmaemu.inject=`):
/// `dma_after_free` frees a buffer the camera still has queued;
/// `dma_noncontig` queues a buffer made of a half-size allocation, so the
/// frame runs past it into memory that is not the camera's.
fn inject_dma_faults(bufs: &mut [Option<Buf>; NBUF], fsize: u32) {
    use cmaemu_abi::trace::{INJECT_DMA_AFTER_FREE, INJECT_DMA_NONCONTIG};
    if crate::hostif::injected(INJECT_DMA_AFTER_FREE) {
        if let Some(b) = bufs[0].take() {
            dma_free(DMA_DEV_CAMERA, area(&CAM_AREA), b.pfn, b.size);
            crate::hostif::fired(INJECT_DMA_AFTER_FREE, b.pfn.0, b.size as u32);
        }
    }
    if crate::hostif::injected(INJECT_DMA_NONCONTIG) {
        if let Some(p) = dma_alloc(DMA_DEV_CAMERA, area(&CAM_AREA), (fsize / 2) as u64) {
            // the camera is told the buffer is a whole frame long
            requeue(p.0 << 12, fsize);
            crate::hostif::fired(INJECT_DMA_NONCONTIG, p.0, fsize / 2);
        }
    }
}

fn requeue(addr: u32, size: u32) {
    writel(cam(CAM_BUF_ADDR), addr);
    writel(cam(CAM_BUF_SIZE), size);
    writel(cam(CAM_BUF_QUEUE), 1);
}

fn free_all(bufs: &mut [Option<Buf>; NBUF], fbs: [Option<Pfn>; 2]) {
    for b in bufs.iter_mut() {
        if let Some(b) = b.take() {
            dma_free(DMA_DEV_CAMERA, area(&CAM_AREA), b.pfn, b.size);
        }
    }
    for f in fbs.into_iter().flatten() {
        dma_free(DMA_DEV_CLCD, area(&CLCD_AREA), f, (WIDTH * HEIGHT * 4) as u64);
    }
}
