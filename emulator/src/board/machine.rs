//! The vexpress-a9 machine: device wiring, the bus the CPU sees, the boot
//! sequence (firmware in flash, kernel and DTB in RAM) and the run loop.
use super::console::{Capture, Console, Input};
use crate::memory::map::*;
use crate::cpu::{self, Cpu, CpuStats, ExcRecord, GuestRam, Stop};
use crate::devices::gic::Gic;
use crate::devices::pl011::Pl011;
use crate::devices::sp804::Sp804;
use crate::devices::camera::Camera;
use crate::devices::pl111::Pl111;
use crate::devices::pl310::Pl310;
use crate::devices::scu::Scu;
use crate::devices::twd::{Twd, TWD_TIMER_PPI, TWD_WDOG_PPI};
const _: () = assert!(TWD_TIMER_PPI == PPI_PRIVATE_TIMER_ID && TWD_WDOG_PPI == PPI_WATCHDOG_ID);
use crate::devices::sysregs::{PowerEvent, Sysregs};
use crate::instrument::{Instrumentation, OnViolation};
use crate::devices::MmioDevice;
use crate::loader::dtb::{Dtb, DtbError};
use crate::loader::elf::{ElfError, Image};
use crate::loader::kernel::{self, KernelKind};
use cmaemu_abi::boot::{MACHINE_ID_VEXPRESS, POWEROFF_CODE_MASK, POWEROFF_PANIC};
use super::profile::Symbolizer;
use super::unmodelled::NullDevices;
use std::time::{Duration, Instant};

/// Virtual nanoseconds per retired instruction (a 1 GHz Cortex-A9, IPC 1).
pub const NS_PER_INSN: u64 = 1;

/// Everything a boot needs.
pub struct BootConfig {
    /// The kernel: an ELF, a zImage or a raw Image (see `loader::kernel`).
    pub kernel_elf: Vec<u8>,
    /// An initramfs/initrd image (placed as QEMU does, named in /chosen).
    pub initrd: Option<Vec<u8>>,
    pub firmware_elf: Vec<u8>,
    pub dtb: Vec<u8>,
    pub ram_size: u64,
    pub max_insns: u64,
    pub input: Input,
    pub stdout: bool,
    pub capture: Option<Capture>,
    /// After console input ends, how long (virtual ns) the guest may stay
    /// idle before the run ends.
    pub idle_after_eof_ns: u64,
    /// Host verification and event collection.
    pub opts: RunOptions,
}

/// Verification, tracing and frame capture options.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Attach the verifiers when the guest announces its descriptor.
    pub verify: bool,
    pub on_violation: OnViolation,
    /// Emit frame markers and counters at every frame (for traces), not
    /// only after mm activity.
    pub every_frame: bool,
    /// Print violations on stderr as they happen.
    pub report: bool,
    /// Save every scanned-out frame as PNG here.
    pub record_frames: Option<std::path::PathBuf>,
    /// Count retired instructions per guest function (slower).
    pub profile: bool,
    /// Collect the guest's events for a trace even when `verify` is off.
    pub trace: bool,
    /// What the trace's `run` event names the device tree (a file name;
    /// default "default board").
    pub dtb_label: Option<String>,
    /// Draw the display frame number, the camera frame shown and the
    /// buffer address on saved pictures (`--screenshot`, `--record-frames`).
    pub overlay: bool,
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exit {
    /// The guest powered off with this code.
    Poweroff(u8),
    /// The guest kernel oopsed or panicked (status word from the guest).
    Panic(u32),
    MaxInsns,
    /// Input ended and the guest stayed idle.
    IdleAfterEof,
    /// Ctrl-A x on the terminal.
    UserQuit,
    /// A verifier failed with `--on-violation stop`.
    Violation,
    /// The emulator could not continue.
    Error(String),
}

pub struct Outcome {
    pub exit: Exit,
    /// Every verification violation, in order.
    pub violations: Vec<crate::findings::Violation>,
    /// Violation counts per check and the first one (printed at exit).
    pub violation_summary: crate::findings::ViolationSummary,
    /// The event stream (for the trace writers).
    pub events: Vec<crate::trace::Event>,
    /// The last introspection snapshot (for `trace map`).
    pub snapshot: Option<crate::introspect::snapshot::Snapshot>,
    /// The last scanned-out frame (width, height, RGBA).
    pub last_frame: Option<(u32, u32, Vec<u8>)>,
    /// Camera frames captured, display frames scanned out.
    pub frames: (u64, u64),
    /// Displayed frames checked against the camera's records: (ok, bad).
    pub scanout: (u64, u64),
    pub stats: CpuStats,
    pub wall: Duration,
    pub last_exception: Option<ExcRecord>,
    pub regs: ([u32; 16], u32),
    pub console_tail: Vec<String>,
    pub reboots: u32,
    /// With `RunOptions::profile`: retired instructions per guest
    /// function, largest first.
    pub profile: Vec<(String, u64)>,
}

#[derive(Debug, thiserror::Error)]
pub enum BoardError {
    #[error(transparent)]
    Elf(#[from] ElfError),
    #[error("kernel image ends at {end:#x}, past the DTB at {dtb:#x}")]
    KernelTooBig { end: u64, dtb: u64 },
    #[error("{0}")]
    Cpu(#[from] cpu::CpuError),
    #[error("DTB: {0}")]
    Dtb(#[from] DtbError),
    #[error("kernel: not an ELF, a zImage (no magic 0x016f2818 at offset 0x24) or a raw Linux Image ({len} bytes, under 64 KiB)")]
    NotAKernel { len: usize },
    #[error("RAM size {0:#x} is not a multiple of 1 MiB between 16 MiB and 1 GiB")]
    RamSize(u64),
    #[error("{0}")]
    Ram(#[from] crate::memory::RamError),
    #[error("initrd of {len} bytes at {at:#x}: {source}")]
    Initrd { len: usize, at: u64, source: crate::memory::RamError },
    #[error("the DTB ({len} bytes at {at:#x}) does not fit in RAM")]
    DtbTooBig { len: usize, at: u64 },
}

/// Length of one frame (the display period) when no display runs.
pub const FRAME_NS: u64 = 16_666_667;

/// The bus: the devices the CPU reaches through MMIO.
pub struct Board {
    pub sysregs: Sysregs,
    pub uart0: Pl011,
    pub timer01: Sp804,
    pub gic: Gic,
    pub clcd: Pl111,
    pub camera: Camera,
    pub scu: Scu,
    pub twd: Twd,
    pub l2: Pl310,
    /// DT devices the board does not model (read as zero).
    pub null: NullDevices,
    pub ram: GuestRam,
    monitor: Option<Box<Instrumentation>>,
    opts: RunOptions,
    next_frame: u64,
    frame_index: u64,
    activity: bool,
    pub last_frame: Option<(u32, u32, Vec<u8>)>,
    recorder: Option<super::frames::FrameRecorder>,
    pub frames: (u64, u64),
    /// Displayed frames that matched a camera frame record / that did not.
    pub scanout: (u64, u64),
    pub console: Console,
    power: Option<PowerEvent>,
    idle_after_eof_ns: u64,
    eof_at: Option<u64>,
    pub unhandled: u64,
    /// Stepping: stop once this text appears in the output ...
    watch: Option<(String, Vec<u8>)>,
    /// ... or once the guest waits for input and none is left.
    pause_when_starved: bool,
    paused: bool,
    /// Stepping: pause once virtual time reaches this (a step's budget).
    time_limit: Option<u64>,
    timed_out: bool,
}

impl Board {
    fn new(console: Console, idle_after_eof_ns: u64, ram: GuestRam, opts: RunOptions) -> Self {
        let size = ram.len() as u64;
        let recorder = opts.record_frames.as_ref().and_then(|d| super::frames::FrameRecorder::new(d).ok());
        Board {
            sysregs: Sysregs::new(),
            uart0: Pl011::new(),
            timer01: Sp804::new(),
            gic: Gic::new(),
            clcd: Pl111::new(),
            camera: Camera::new().with_dma_window(RAM_BASE, size),
            scu: Scu::new(),
            twd: Twd::new(),
            l2: Pl310::new(),
            null: NullDevices::default(),
            monitor: if opts.verify || opts.trace { Some(Box::new(Instrumentation::new(ram.clone(), opts.on_violation, opts.report, opts.verify))) } else { None },
            ram,
            opts,
            next_frame: FRAME_NS,
            frame_index: 0,
            activity: false,
            last_frame: None,
            recorder,
            frames: (0, 0),
            scanout: (0, 0),
            console,
            power: None,
            idle_after_eof_ns,
            eof_at: None,
            unhandled: 0,
            watch: None,
            pause_when_starved: false,
            paused: false,
            time_limit: None,
            timed_out: false,
        }
    }

    /// The MMIO windows the CPU maps (4 KiB granules).
    pub fn mmio_windows() -> Vec<(u64, u64)> {
        vec![
            (SYSREGS_BASE, 0x1000),
            (UART0_BASE, 0x1000),
            (TIMER01_BASE, 0x1000),
            (CLCD_BASE, 0x1000),
            (CAMERA_BASE, CAMERA_SIZE),
            (A9_PRIV_BASE, A9_PRIV_SIZE),
            (L2CC_BASE, PERIPH_SIZE),
        ]
    }

    fn update_lines(&mut self) {
        let t = self.timer01.irq_level();
        self.gic.set_spi_level(SPI_TIMER01, t);
        let u = self.uart0.irq_level();
        self.gic.set_spi_level(SPI_UART0, u);
        let c = self.clcd.irq_level();
        self.gic.set_spi_level(SPI_CLCD, c);
        let cam = self.camera.irq_level();
        self.gic.set_spi_level(SPI_CAMERA, cam);
        let (t, w) = (self.twd.timer_irq(), self.twd.wdog_irq());
        self.gic.set_ppi_level(TWD_TIMER_PPI, t);
        self.gic.set_ppi_level(TWD_WDOG_PPI, w);
        if self.twd.take_reset_request() {
            self.power = Some(PowerEvent::Reboot);
        }
        let tx = self.uart0.take_tx();
        if !tx.is_empty() {
            if let Some((needle, seen)) = &mut self.watch {
                seen.extend_from_slice(&tx);
                if seen.windows(needle.len().max(1)).any(|w| w == needle.as_bytes()) {
                    self.paused = true;
                }
            }
        }
        self.console.output(&tx);
        if let Some(ev) = self.sysregs.take_power_event() {
            self.power = Some(ev);
        }
    }

    /// A DMA master moved a frame; it took `dur_ns` (its frame period).
    fn dma_event(&mut self, t: &crate::devices::dma::DmaTransfer, now: u64, dur_ns: u64) {
        if let (Some(m), Some(dev)) = (&mut self.monitor, t.abi_device()) {
            let vt = crate::verify::DmaTransfer { device: dev, pa: t.pa, len: t.len, write: t.write };
            m.dma.push((vt, now, dur_ns));
        }
    }

    fn deliver_input(&mut self) {
        if self.console.pending.is_empty() {
            return;
        }
        let bytes: Vec<u8> = self.console.pending.iter().copied().collect();
        let n = self.uart0.enqueue_rx(&bytes);
        self.console.pending.drain(..n);
    }
}

impl cpu::Bus for Board {
    fn mmio_read(&mut self, pa: u64, size: usize, now: u64) -> u64 {
        let v = match pa {
            _ if (SYSREGS_BASE..SYSREGS_BASE + 0x1000).contains(&pa) => {
                self.sysregs.advance_to(now);
                self.sysregs.read_sized(pa - SYSREGS_BASE, size)
            }
            _ if (UART0_BASE..UART0_BASE + 0x1000).contains(&pa) => {
                self.uart0.advance_to(now);
                self.uart0.read_sized(pa - UART0_BASE, size)
            }
            _ if (TIMER01_BASE..TIMER01_BASE + 0x1000).contains(&pa) => {
                self.timer01.advance_to(now);
                self.timer01.read_sized(pa - TIMER01_BASE, size)
            }
            _ if (GIC_CPU_BASE..GIC_CPU_BASE + GIC_CPU_SIZE).contains(&pa) => {
                self.gic.cpu_interface().read_sized(pa - GIC_CPU_BASE, size)
            }
            _ if (CLCD_BASE..CLCD_BASE + 0x1000).contains(&pa) => {
                self.clcd.advance_to(now);
                self.clcd.read_sized(pa - CLCD_BASE, size)
            }
            _ if (CAMERA_BASE..CAMERA_BASE + CAMERA_SIZE).contains(&pa) => {
                self.camera.advance_to(now);
                self.camera.read_sized(pa - CAMERA_BASE, size)
            }
            _ if (GIC_DIST_BASE..GIC_DIST_BASE + GIC_DIST_SIZE).contains(&pa) => {
                self.gic.distributor().read_sized(pa - GIC_DIST_BASE, size)
            }
            _ if (SCU_BASE..SCU_BASE + SCU_SIZE).contains(&pa) => self.scu.read_sized(pa - SCU_BASE, size),
            _ if (TWD_BASE..TWD_BASE + TWD_SIZE).contains(&pa) => {
                self.twd.advance_to(now);
                self.twd.read_sized(pa - TWD_BASE, size)
            }
            _ if (L2CC_BASE..L2CC_BASE + PERIPH_SIZE).contains(&pa) => self.l2.read_sized(pa - L2CC_BASE, size),
            _ if self.null.contains(pa) => {
                self.null.accesses += 1;
                0
            }
            _ => {
                self.unhandled += 1;
                0
            }
        };
        self.update_lines();
        v
    }

    fn mmio_write(&mut self, pa: u64, size: usize, value: u64, now: u64) {
        match pa {
            // cmaemu's registers in the sysregs block (see guest hostif.rs)
            _ if pa == SYSREGS_BASE + SYS_CMAEMU_DESC => {
                if let Some(m) = &mut self.monitor {
                    m.desc_pa = Some(value & 0xffff_ffff);
                    m.doorbell = true;
                }
            }
            _ if pa == SYSREGS_BASE + SYS_CMAEMU_DOORBELL => {
                if let Some(m) = &mut self.monitor {
                    m.doorbell = true;
                    m.alloc_done |= value == cmaemu_abi::boot::DOORBELL_CMA_ALLOC_DONE as u64;
                    self.activity = true;
                }
            }
            _ if pa == SYSREGS_BASE + SYS_CMAEMU_PROMPT => self.console.set_prompt_flag(value != 0),
            _ if (SYSREGS_BASE..SYSREGS_BASE + 0x1000).contains(&pa) => {
                self.sysregs.advance_to(now);
                self.sysregs.write_sized(pa - SYSREGS_BASE, size, value)
            }
            _ if (CLCD_BASE..CLCD_BASE + 0x1000).contains(&pa) => {
                self.clcd.advance_to(now);
                self.clcd.write_sized(pa - CLCD_BASE, size, value)
            }
            _ if (CAMERA_BASE..CAMERA_BASE + CAMERA_SIZE).contains(&pa) => {
                self.camera.advance_to(now);
                self.camera.write_sized(pa - CAMERA_BASE, size, value)
            }
            _ if (UART0_BASE..UART0_BASE + 0x1000).contains(&pa) => {
                self.uart0.advance_to(now);
                self.uart0.write_sized(pa - UART0_BASE, size, value)
            }
            _ if (TIMER01_BASE..TIMER01_BASE + 0x1000).contains(&pa) => {
                self.timer01.advance_to(now);
                self.timer01.write_sized(pa - TIMER01_BASE, size, value)
            }
            _ if (GIC_CPU_BASE..GIC_CPU_BASE + GIC_CPU_SIZE).contains(&pa) => {
                self.gic.cpu_interface().write_sized(pa - GIC_CPU_BASE, size, value)
            }
            _ if (GIC_DIST_BASE..GIC_DIST_BASE + GIC_DIST_SIZE).contains(&pa) => {
                self.gic.distributor().write_sized(pa - GIC_DIST_BASE, size, value)
            }
            _ if (SCU_BASE..SCU_BASE + SCU_SIZE).contains(&pa) => self.scu.write_sized(pa - SCU_BASE, size, value),
            _ if (TWD_BASE..TWD_BASE + TWD_SIZE).contains(&pa) => {
                self.twd.advance_to(now);
                self.twd.write_sized(pa - TWD_BASE, size, value)
            }
            _ if (L2CC_BASE..L2CC_BASE + PERIPH_SIZE).contains(&pa) => self.l2.write_sized(pa - L2CC_BASE, size, value),
            _ if self.null.contains(pa) => self.null.accesses += 1,
            _ => self.unhandled += 1,
        }
        self.update_lines();
    }

    fn tick(&mut self, now: u64) {
        self.timer01.advance_to(now);
        self.uart0.advance_to(now);
        self.sysregs.advance_to(now);
        self.clcd.advance_to(now);
        self.camera.advance_to(now);
        self.twd.advance_to(now);
        // DMA masters: the camera writes frames, the CLCD scans out.
        while self.camera.next_deadline_ns().is_some_and(|d| d <= now) {
            match self.camera.capture(now, &self.ram) {
                Some(t) => {
                    self.frames.0 += 1;
                    let period = self.camera.period_ns();
                    self.dma_event(&t, now, period);
                }
                None => break,
            }
        }
        if self.clcd.next_deadline_ns().is_some_and(|d| d <= now) {
            if let Some(f) = self.clcd.vsync(now, &self.ram) {
                self.frames.1 += 1;
                // A displayed camera frame must match what the camera wrote.
                // (A picture without the camera's header — a framebuffer
                // not written yet — is not a camera frame: not checked.)
                let has_header = crate::devices::camera::FrameHeader::from_rgba(&f.rgba, crate::devices::camera::CamFormat::Xrgb8888).is_some()
                    || crate::devices::camera::FrameHeader::from_rgba(&f.rgba, crate::devices::camera::CamFormat::Rgb565).is_some();
                let mut shown = None;
                if has_header && self.camera.records().next().is_some() {
                    match self.camera.check_scanout(&f.rgba, f.width, f.height) {
                        Ok(rec) => {
                            self.scanout.0 += 1;
                            shown = Some(rec.frame as u64);
                        }
                        Err(e) => {
                            self.scanout.1 += 1;
                            if self.scanout.1 <= 5 && self.opts.report {
                                eprintln!("cmaemu: display frame {} does not match the camera: {e}", f.number);
                            }
                        }
                    }
                }
                let period = self.clcd.frame_period_ns();
                self.dma_event(&f.transfer, now, period);
                if let Some(m) = &mut self.monitor {
                    let kind = crate::trace::EventKind::DisplayFrame { number: f.number, pa: f.transfer.pa, camera: shown };
                    m.notes.push(crate::trace::Event { ts_ns: now, frame: self.frame_index, kind });
                }
                let mut rgba = f.rgba;
                if self.opts.overlay {
                    super::frames::overlay(&mut rgba, f.width, f.height, f.number, shown, f.transfer.pa);
                }
                if let Some(r) = &mut self.recorder {
                    let _ = r.record(f.number, f.width, f.height, &rgba);
                }
                self.last_frame = Some((f.width, f.height, rgba));
            }
        }
        // Frame boundaries for the verifiers and the trace.
        if now >= self.next_frame {
            self.frame_index += now / FRAME_NS - (self.next_frame - FRAME_NS) / FRAME_NS;
            self.next_frame = (now / FRAME_NS + 1) * FRAME_NS;
            if let Some(m) = &mut self.monitor {
                if self.opts.every_frame || std::mem::take(&mut self.activity) {
                    m.frame_due = Some(self.frame_index);
                }
            }
        }
        self.update_lines();
    }

    fn next_deadline(&self) -> u64 {
        let t = self.timer01.next_deadline_ns().unwrap_or(u64::MAX);
        let u = self.uart0.next_deadline_ns().unwrap_or(u64::MAX);
        let c = self.clcd.next_deadline_ns().unwrap_or(u64::MAX);
        let cam = self.camera.next_deadline_ns().unwrap_or(u64::MAX);
        let twd = self.twd.next_deadline_ns().unwrap_or(u64::MAX);
        let f = if self.monitor.as_ref().is_some_and(|m| m.attached()) { self.next_frame } else { u64::MAX };
        t.min(u).min(c).min(cam).min(twd).min(f)
    }

    fn wants_service(&self) -> bool {
        self.monitor.as_ref().is_some_and(|m| m.has_work())
    }

    type Servicer = Box<Instrumentation>;

    fn take_servicer(&mut self) -> Option<Box<Instrumentation>> {
        if self.monitor.as_ref().is_some_and(|m| m.has_work()) {
            return self.monitor.take();
        }
        None
    }

    fn put_servicer(&mut self, mut m: Box<Instrumentation>) {
        // the cause finder's lines, after the guest's own (it rang the
        // doorbell once they were printed)
        for l in std::mem::take(&mut m.console_lines) {
            self.console.output(format!("{l}
").as_bytes());
        }
        self.monitor = Some(m);
    }

    fn irq_pending(&self) -> bool {
        self.gic.irq_pending()
    }

    fn stop_requested(&self) -> bool {
        self.power.is_some() || self.console.quit || self.paused || self.monitor.as_ref().is_some_and(|m| m.stop_requested)
    }

    fn idle(&mut self, now: u64) -> Option<u64> {
        self.console.flush();
        if self.time_limit.is_some_and(|l| now >= l) {
            self.paused = true;
            self.timed_out = true;
            return Some(now);
        }
        let deadline = self.next_deadline();
        let wait = if self.console.is_tty() {
            let ns = deadline.saturating_sub(now).min(20_000_000);
            Duration::from_nanos(ns)
        } else {
            Duration::ZERO
        };
        self.uart0.advance_to(now);
        // A line at a time: the rest of the current line as the FIFO makes
        // room, the next line only once the guest has read everything.
        if !self.console.pending.is_empty() {
            if self.uart0.rx_space() > 0 {
                self.deliver_input();
                self.update_lines();
                return Some(now);
            }
        } else if self.uart0.rx_pending() == 0 && self.uart0.rx_space() > 0 && self.console.refill(wait) {
            self.deliver_input();
            self.update_lines();
            return Some(now);
        }
        if self.console.quit {
            return Some(now);
        }
        if self.pause_when_starved && self.console.pending.is_empty() && self.uart0.rx_pending() == 0 && self.console.waiting_at_prompt() {
            self.paused = true;
            return Some(now);
        }
        // Input ended: stop once the shell has sat at its prompt for the
        // idle limit (a guest busy with a long command is not idle).
        if self.console.eof && self.console.waiting_at_prompt() {
            let since = *self.eof_at.get_or_insert(now);
            if now.saturating_sub(since) > self.idle_after_eof_ns {
                return None;
            }
        } else {
            self.eof_at = None;
        }
        if deadline == u64::MAX {
            return if self.console.eof { None } else { Some(now) };
        }
        Some(deadline)
    }
}

/// A booted board that can be driven step by step (tests, scenarios).
pub struct Machine {
    cpu: Cpu<'static, Board>,
    started: bool,
    entry: u32,
    pub capture: Capture,
    max_insns: u64,
    step_limit: Option<u64>,
    symbols: Symbolizer,
}

/// What a step ended with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// The awaited text appeared / the guest is waiting for input.
    Paused,
    /// The instruction budget of the step ran out (the run can go on).
    Timeout,
    /// The run is over.
    Exited(Exit),
}

impl Machine {
    /// Build the board (firmware in flash, kernel and DTB in RAM) without
    /// running it. Console input is a script the caller feeds with `send`.
    pub fn new(kernel_elf: &[u8], firmware_elf: &[u8], dtb: &[u8], ram_size: u64, max_insns: u64) -> Result<Machine, BoardError> {
        let opts = RunOptions { verify: true, report: false, ..Default::default() };
        Self::with_options(kernel_elf, firmware_elf, dtb, ram_size, max_insns, opts)
    }

    /// As [`Machine::new`] with explicit verification/trace options.
    pub fn with_options(kernel_elf: &[u8], firmware_elf: &[u8], dtb: &[u8], ram_size: u64, max_insns: u64, opts: RunOptions) -> Result<Machine, BoardError> {
        let capture = Capture::default();
        let console = Console::new(Input::Script(Default::default()), false, Some(capture.clone()));
        let (cpu, entry, symbols) = build(kernel_elf, None, firmware_elf, dtb, ram_size, max_insns, console, u64::MAX, opts)?;
        Ok(Machine { cpu, started: false, entry, capture, max_insns, step_limit: None, symbols })
    }

    /// A board booting a Linux kernel (zImage, Image or ELF) with an
    /// optional initramfs, on `dtb` (Linux's own vexpress-v2p-ca9.dtb
    /// works), without the cmaemu verifiers.
    pub fn linux(kernel: &[u8], initrd: Option<&[u8]>, dtb: &[u8], ram_size: u64, max_insns: u64) -> Result<Machine, BoardError> {
        let capture = Capture::default();
        let console = Console::new(Input::Script(Default::default()), false, Some(capture.clone()));
        let opts = RunOptions::default();
        let fw = crate::loader::images::FIRMWARE_ELF;
        let (cpu, entry, symbols) = build(kernel, initrd, fw, dtb, ram_size, max_insns, console, u64::MAX, opts)?;
        Ok(Machine { cpu, started: false, entry, capture, max_insns, step_limit: None, symbols })
    }

    /// Queue console input (a line is delivered when the guest is idle).
    pub fn send(&mut self, text: &str) {
        let c = &mut self.cpu.bus_mut().console;
        if let Input::Script(q) = &mut c.input {
            q.extend(text.bytes());
        }
        c.eof = false;
    }

    fn step(&mut self) -> Step {
        let stop = if self.started { self.cpu.resume() } else {
            self.started = true;
            self.cpu.run(self.entry)
        };
        if stop == Stop::MaxInsns {
            if let Some(limit) = self.step_limit.take() {
                self.cpu.set_max_insns(limit);
                if self.cpu.stats().insns < limit {
                    let b = self.cpu.bus_mut();
                    b.watch = None;
                    b.pause_when_starved = false;
                    return Step::Timeout;
                }
            }
        }
        if let Some(limit) = self.step_limit.take() {
            self.cpu.set_max_insns(limit);
        }
        let b = self.cpu.bus_mut();
        b.time_limit = None;
        if b.paused {
            b.paused = false;
            b.watch = None;
            b.pause_when_starved = false;
            if std::mem::take(&mut b.timed_out) {
                return Step::Timeout;
            }
            return Step::Paused;
        }
        b.watch = None;
        b.pause_when_starved = false;
        let exit = match stop {
            Stop::Device => match b.power.take() {
                Some(PowerEvent::Shutdown { code }) if code & POWEROFF_PANIC != 0 => Exit::Panic(code),
                Some(PowerEvent::Shutdown { code }) => Exit::Poweroff((code & POWEROFF_CODE_MASK) as u8),
                Some(PowerEvent::Reboot) => Exit::Error("reboot is not supported while stepping".into()),
                None if b.monitor.as_ref().is_some_and(|m| m.stop_requested) => Exit::Violation,
                None => Exit::UserQuit,
            },
            Stop::MaxInsns => Exit::MaxInsns,
            Stop::Idle => Exit::IdleAfterEof,
            Stop::Error(e) => Exit::Error(e),
        };
        final_check(&mut self.cpu);
        Step::Exited(exit)
    }

    /// Drain the guest's ring and run every state check on the current
    /// state now (what every exit does; scenarios call it before they
    /// judge `no_violations`).
    pub fn final_check(&mut self) {
        final_check(&mut self.cpu);
    }

    /// Every fault injection that fired so far: (virtual ns, `INJECT_*`
    /// id, pfn), from the guest's trace records.
    pub fn injections_fired(&self) -> Vec<(u64, u8, u64)> {
        self.cpu.bus().monitor.as_ref().map(|m| m.fired.clone()).unwrap_or_default()
    }

    /// Violation counts per check and the first violation.
    pub fn violation_summary(&self) -> crate::findings::ViolationSummary {
        self.cpu.bus().monitor.as_ref().map(|m| m.summary.clone()).unwrap_or_default()
    }

    /// Give the next step at most `insns` more instructions (it returns
    /// `Step::Timeout` if they run out; the overall limit still applies).
    pub fn budget(&mut self, insns: u64) {
        let now = self.cpu.stats().insns;
        let lim = now.saturating_add(insns).min(self.max_insns);
        self.step_limit = Some(self.max_insns);
        self.cpu.set_max_insns(lim);
        // idle time counts too (1 instruction = 1 ns of virtual time)
        let t = self.cpu.now().saturating_add(insns);
        self.cpu.bus_mut().time_limit = Some(t);
    }

    /// Let `ns` of virtual time pass (the guest runs or idles meanwhile).
    pub fn run_for(&mut self, ns: u64) -> Step {
        let t = self.cpu.now().saturating_add(ns);
        self.cpu.bus_mut().time_limit = Some(t);
        match self.step() {
            Step::Timeout => Step::Paused,
            s => s,
        }
    }

    /// Virtual time (ns) and retired instructions so far.
    pub fn now(&self) -> u64 {
        self.cpu.now()
    }
    pub fn stats(&self) -> CpuStats {
        self.cpu.stats()
    }

    /// Run until `text` appears in the console output (from now on).
    pub fn run_until(&mut self, text: &str) -> Step {
        self.cpu.bus_mut().watch = Some((text.to_string(), Vec::new()));
        self.step()
    }

    /// Run until the guest has consumed all queued input and its shell waits
    /// at the prompt for more (a long command such as `preview` runs to its
    /// end first).
    pub fn run_until_idle(&mut self) -> Step {
        self.cpu.bus_mut().pause_when_starved = true;
        self.step()
    }

    /// Send a shell command and run until the next prompt.
    pub fn command(&mut self, cmd: &str) -> Step {
        self.send(&format!("{cmd}\n"));
        self.run_until_idle()
    }

    pub fn ram(&self) -> &GuestRam {
        self.cpu.ram()
    }
    pub fn cpu(&mut self) -> &mut Cpu<'static, Board> {
        &mut self.cpu
    }
    pub fn output(&self) -> String {
        self.capture.text()
    }
    /// Violations the verifiers reported so far.
    pub fn violations(&self) -> Vec<crate::findings::Violation> {
        self.cpu.bus().monitor.as_ref().map(|m| m.violations.clone()).unwrap_or_default()
    }
    /// The events collected so far (guest trace ring, DMA, frames,
    /// violations), in order.
    pub fn events(&self) -> &[crate::trace::Event] {
        self.cpu.bus().monitor.as_ref().map(|m| &m.events[..]).unwrap_or(&[])
    }
    /// Displayed frames checked against the camera: (ok, bad); and the
    /// camera/display frame counts.
    pub fn frames(&self) -> ((u64, u64), (u64, u64)) {
        let b = self.cpu.bus();
        (b.scanout, b.frames)
    }
    /// The last displayed frame (width, height, RGBA).
    pub fn last_frame(&self) -> Option<(u32, u32, Vec<u8>)> {
        self.cpu.bus().last_frame.clone()
    }
    /// Whether the guest's descriptor was accepted (verification is live).
    pub fn verifying(&self) -> bool {
        self.cpu.bus().monitor.as_ref().is_some_and(|m| m.verifying())
    }

    /// Start counting retired instructions per guest function (the
    /// count restarts at every `take_profile`).
    pub fn enable_profile(&mut self) -> Result<(), BoardError> {
        Ok(self.cpu.enable_profile()?)
    }

    /// Instructions per guest function since profiling started or the
    /// last call, largest first.
    pub fn take_profile(&mut self) -> Vec<(String, u64)> {
        let raw = self.cpu.take_profile();
        self.symbols.functions(&raw)
    }
}

/// The checked images of a boot: the kernel (inside RAM, ending below the
/// DTB), the firmware (inside flash) and the flash contents with the boot
/// info the firmware reads (magic, machine id, DTB and kernel entry).
pub struct LoadPlan {
    pub kernel: Image,
    pub firmware: Image,
    pub flash: Vec<u8>,
    pub dtb_pa: u64,
}

/// Parse and check the kernel and firmware ELFs for a board with
/// `ram_size` bytes of RAM (everything before Unicorn is touched).
pub fn load_plan(kernel_elf: &[u8], firmware_elf: &[u8], ram_size: u64) -> Result<LoadPlan, BoardError> {
    let (kernel, dtb_pa) = check_kernel(kernel_elf, ram_size)?;
    let (firmware, flash) = flash_image(firmware_elf, dtb_pa, kernel.entry_pa)?;
    Ok(LoadPlan { kernel, firmware, flash, dtb_pa })
}

/// The kernel image, checked to lie in RAM below the DTB, and the DTB's
/// address.
pub fn check_kernel(kernel_elf: &[u8], ram_size: u64) -> Result<(Image, u64), BoardError> {
    let kernel = Image::parse("kernel", kernel_elf)?;
    kernel.check_within("kernel", RAM_BASE, ram_size, "RAM")?;
    let dtb_pa = dtb_address(ram_size);
    let (_, kend) = kernel.extent();
    if kend > dtb_pa {
        return Err(BoardError::KernelTooBig { end: kend, dtb: dtb_pa });
    }
    Ok((kernel, dtb_pa))
}

/// The firmware image, checked to lie in flash, and the flash contents
/// with the boot info it reads at `BOOT_INFO` (magic, machine id, DTB
/// address, kernel entry).
pub fn flash_image(firmware_elf: &[u8], dtb_pa: u64, kernel_entry: u64) -> Result<(Image, Vec<u8>), BoardError> {
    let firmware = Image::parse("firmware", firmware_elf)?;
    firmware.check_within("firmware", 0, FLASH_SIZE, "flash")?;
    // check_within: every segment (memsz >= file size) ends inside flash
    let flash = flash_contents(&firmware, dtb_pa, kernel_entry);
    Ok((firmware, flash))
}

/// The flash image: the firmware's segments (checked to lie inside flash)
/// and its BOOT_INFO words (magic, machine id, DTB, kernel entry).
fn flash_contents(firmware: &Image, dtb_pa: u64, kernel_entry: u64) -> Vec<u8> {
    let (_, fw_end) = firmware.extent();
    let mut flash = vec![0u8; fw_end.max(4096) as usize];
    for s in &firmware.segments {
        flash[s.paddr as usize..s.paddr as usize + s.data.len()].copy_from_slice(&s.data);
    }
    if let Some(bi) = firmware.symbol_pa("BOOT_INFO") {
        let words = [0x434d_4142u32, MACHINE_ID_VEXPRESS, dtb_pa as u32, kernel_entry as u32];
        for (i, w) in words.iter().enumerate() {
            let at = (bi as usize).saturating_add(4 * i);
            if at.saturating_add(4) <= flash.len() {
                flash[at..at + 4].copy_from_slice(&w.to_le_bytes());
            }
        }
    }
    flash
}

#[allow(clippy::too_many_arguments)]
fn build(
    kernel_bytes: &[u8],
    initrd: Option<&[u8]>,
    firmware_elf: &[u8],
    dtb: &[u8],
    ram_size: u64,
    max_insns: u64,
    console: Console,
    idle_after_eof_ns: u64,
    opts: RunOptions,
) -> Result<(Cpu<'static, Board>, u32, Symbolizer), BoardError> {
    if ram_size % (1 << 20) != 0 || ram_size < (16 << 20) || ram_size > RAM_MAX_SIZE {
        return Err(BoardError::RamSize(ram_size));
    }
    let firmware = Image::parse("firmware", firmware_elf)?;
    firmware.check_within("firmware", 0, FLASH_SIZE, "flash")?;
    let ram = GuestRam::new(RAM_BASE, ram_size as usize)?;
    let kind = KernelKind::detect(kernel_bytes);
    let (kernel_image, kernel_entry, kend) = match kind {
        KernelKind::Elf => {
            let kernel = Image::parse("kernel", kernel_bytes)?;
            kernel.check_within("kernel", RAM_BASE, ram_size, "RAM")?;
            for s in &kernel.segments {
                ram.write(s.paddr, &s.data)?;
            }
            let (_, kend) = kernel.extent();
            let entry = kernel.entry_pa;
            (Some(kernel), entry, kend)
        }
        KernelKind::Image if kernel_bytes.len() < kernel::MIN_RAW_IMAGE => {
            return Err(BoardError::NotAKernel { len: kernel_bytes.len() });
        }
        KernelKind::ZImage | KernelKind::Image => {
            let at = RAM_BASE + kind.load_offset();
            let end = at + kernel_bytes.len() as u64;
            if end > RAM_BASE + ram_size {
                return Err(BoardError::KernelTooBig { end, dtb: RAM_BASE + ram_size });
            }
            ram.write(at, kernel_bytes)?;
            (None, at, end)
        }
    };
    let lay = kernel::layout(RAM_BASE, ram_size, kend, initrd.map(|i| i.len() as u64));
    let dtb_pa = lay.dtb;
    if kend > dtb_pa {
        return Err(BoardError::KernelTooBig { end: kend, dtb: dtb_pa });
    }
    let mut dtb_bytes = std::borrow::Cow::Borrowed(dtb);
    if let (Some(data), Some((start, end))) = (initrd, lay.initrd) {
        ram.write(start, data).map_err(|source| BoardError::Initrd { len: data.len(), at: start, source })?;
        let mut tree = Dtb::parse(dtb)?;
        kernel::set_initrd(&mut tree, start, end)?;
        dtb_bytes = std::borrow::Cow::Owned(tree.to_bytes()?);
    }
    if dtb_pa + dtb_bytes.len() as u64 > RAM_BASE + ram_size {
        return Err(BoardError::DtbTooBig { len: dtb_bytes.len(), at: dtb_pa });
    }
    ram.write(dtb_pa, &dtb_bytes)?;
    let flash = flash_contents(&firmware, dtb_pa, kernel_entry);
    let profile = opts.profile;
    let run = run_info(&dtb_bytes, ram_size, &opts);
    let null = NullDevices::from_dtb(&dtb_bytes, ram_size);
    let mut windows = Board::mmio_windows();
    windows.extend(null.windows.iter().map(|w| (w.base, w.size)));
    let mut board = Board::new(console, idle_after_eof_ns, ram.clone(), opts);
    board.null = null;
    if let Some(m) = &mut board.monitor {
        m.events.push(crate::trace::Event { ts_ns: 0, frame: 0, kind: crate::trace::EventKind::Run(run) });
    }
    let mut cpu = Cpu::new(board, ram, RAM_BASE, &flash, &windows, max_insns)?;
    if profile {
        cpu.enable_profile()?;
    }
    let entry = firmware.entry_pa as u32;
    let mut images: Vec<Image> = kernel_image.into_iter().collect();
    images.push(firmware);
    Ok((cpu, entry, Symbolizer::new(images)))
}

/// The trace's `run` event: device tree, command line, RAM, profile.
fn run_info(dtb: &[u8], ram_size: u64, opts: &RunOptions) -> crate::trace::RunInfo {
    let cmdline = crate::loader::dtb::Dtb::parse(dtb).ok().and_then(|d| d.bootargs()).unwrap_or_default();
    crate::trace::RunInfo {
        dtb: opts.dtb_label.clone().unwrap_or_else(|| "default board".into()),
        profile: crate::trace::RunInfo::profile_of(&cmdline),
        cmdline,
        ram_bytes: ram_size,
    }
}

/// The run is over: drain the guest's ring and run every state check once
/// more on the final state (at every exit, whatever ended the run).
fn final_check(cpu: &mut Cpu<'static, Board>) {
    if let Some(m) = cpu.bus_mut().monitor.as_mut() {
        m.request_final_check();
    }
    cpu.serve();
}

/// Where the firmware puts the DTB: QEMU's `arm_load_dtb` places it at
/// `loader_start + MIN(ram_size / 2, 128 MiB)` when there is no initrd.
pub fn dtb_address(ram_size: u64) -> u64 {
    RAM_BASE + (ram_size / 2).min(128 << 20)
}

/// Boot the machine and run it until it stops.
pub fn boot(cfg: BootConfig) -> Result<Outcome, BoardError> {
    let start = Instant::now();
    let mut console = Console::new(cfg.input, cfg.stdout, cfg.capture);
    let mut reboots = 0;
    loop {
        let (mut cpu, entry, symbols) = build(&cfg.kernel_elf, cfg.initrd.as_deref(), &cfg.firmware_elf, &cfg.dtb, cfg.ram_size, cfg.max_insns, console, cfg.idle_after_eof_ns, cfg.opts.clone())?;
        if reboots == 0 && cfg.opts.report {
            if let Some(line) = cpu.bus().null.report() {
                eprintln!("{line}");
            }
        }
        let stop = cpu.run(entry);
        let stats = cpu.stats();
        let profile = symbols.functions(&cpu.take_profile());
        let last_exception = cpu.last_exception();
        let regs = cpu.regs();
        let power = cpu.bus_mut().power.take();
        let quit = cpu.bus().console.quit;
        cpu.bus_mut().console.flush();
        let exit = match stop {
            Stop::Device if quit => Exit::UserQuit,
            Stop::Device => match power {
                Some(PowerEvent::Reboot) if reboots < 16 => {
                    reboots += 1;
                    // keep the console (and its pending input) across the reset
                    let b = std::mem::replace(&mut cpu.bus_mut().console, Console::new(Input::None, false, None));
                    console = b;
                    continue;
                }
                Some(PowerEvent::Reboot) => Exit::Error("too many reboots".into()),
                Some(PowerEvent::Shutdown { code }) if code & POWEROFF_PANIC != 0 => Exit::Panic(code),
                Some(PowerEvent::Shutdown { code }) => Exit::Poweroff((code & POWEROFF_CODE_MASK) as u8),
                None => Exit::Error("stopped without a power event".into()),
            },
            Stop::MaxInsns => Exit::MaxInsns,
            Stop::Idle => Exit::IdleAfterEof,
            Stop::Error(e) => Exit::Error(e),
        };
        let console_tail = cpu.bus().console.tail_lines();
        final_check(&mut cpu);
        let b = cpu.bus_mut();
        let (events, violations, snapshot, violation_summary) = match b.monitor.as_mut() {
            Some(m) => {
                let snap = m.snapshot();
                (m.finish(), m.violations.clone(), snap, m.summary.clone())
            }
            None => (Vec::new(), Vec::new(), None, Default::default()),
        };
        let exit = if exit == Exit::Error("stopped without a power event".into()) && !violations.is_empty() {
            Exit::Violation
        } else {
            exit
        };
        let last_frame = b.last_frame.take();
        let frames = b.frames;
        let scanout = b.scanout;
        return Ok(Outcome {
            scanout,
            exit,
            violations,
            violation_summary,
            events,
            snapshot,
            last_frame,
            frames,
            stats,
            wall: start.elapsed(),
            last_exception,
            regs,
            console_tail,
            reboots,
            profile,
        });
    }
}
