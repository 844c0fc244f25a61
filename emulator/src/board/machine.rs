//! The vexpress-a9 machine: its parts ([`Board`]: the devices, the guest's
//! RAM, the instrumentation, the console), the options of a run, and the
//! boot sequence (firmware in flash, kernel and DTB in RAM). The bus is in
//! [`super::bus`], the run loop in [`super::run`], stepping in
//! [`super::step`].
use super::bus::{dev_null, DeviceTable};
use super::console::{Capture, Console, Input};
use super::profile::Symbolizer;
use super::unmodelled::NullDevices;
use crate::cpu::{self, Cpu};
use crate::devices::camera::Camera;
use crate::devices::gic::Gic;
use crate::devices::pl011::Pl011;
use crate::devices::pl111::Pl111;
use crate::devices::pl310::Pl310;
use crate::devices::scu::Scu;
use crate::devices::sp804::Sp804;
use crate::devices::sysregs::{PowerEvent, Sysregs};
use crate::devices::twd::Twd;
use crate::instrument::{Instrumentation, OnViolation};
use crate::loader::dtb::{Dtb, DtbError};
use crate::loader::elf::{ElfError, Image};
use crate::loader::kernel::{self, KernelKind};
use crate::memory::map::*;
use crate::memory::GuestRam;
use cmaemu_abi::boot::MACHINE_ID_VEXPRESS;

pub use super::run::{boot, Exit, Outcome};
pub use super::step::{Machine, Step};

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
    /// A real Linux kernel's debug info (`--linux-vmlinux`): read its mm
    /// state at quiet points (`instrument::linux`).
    pub linux_debuginfo: Option<std::sync::Arc<crate::introspect::linux::DebugInfo>>,
    /// Leave the cause finder (`crate::explain`) out: no `cmaemu:` lines or
    /// `cma_cause` events (what `bench explain` compares against).
    pub no_explain: bool,
    /// Nothing reads the event stream (no trace, no report, no scenario
    /// metrics: `bench`): each event is dropped once the instrumentation
    /// has counted it. Every check still runs, violations and injections
    /// are still collected (each violation with the events before it), but
    /// `Machine::events` and `Outcome::events` hold none of the guest's
    /// events. Off by default: the whole stream is kept.
    pub drop_events: bool,
    /// Verification's floor (`bench verify --floor`): the instrumentation
    /// attaches and serves every doorbell, so the guest writes every trace
    /// record as with `verify`, but the ring is only drained (where
    /// verification drains it: a migrated page's light doorbell leaves its
    /// records for the next drain): no record is decoded, nothing is
    /// checked or captured, no event is emitted. What the guest's tracing
    /// and the doorbells cost alone; not for users' runs (it sees nothing).
    pub transport_only: bool,
    /// Drain the ring at every doorbell, a migrated page's too (`bench
    /// verify --floor`'s `drain` mode: verification as it was before light
    /// doorbells, the same findings). Off by default.
    pub drain_every_doorbell: bool,
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
    /// The only MMIO map: address range → device.
    pub(super) devices: DeviceTable,
    pub ram: GuestRam,
    pub(super) monitor: Option<Box<Instrumentation>>,
    /// A real Linux kernel read at quiet points (`RunOptions::linux_debuginfo`).
    pub(super) linux: Option<Box<crate::instrument::linux::LinuxSession>>,
    pub(super) opts: RunOptions,
    pub(super) next_frame: u64,
    pub(super) frame_index: u64,
    pub(super) activity: bool,
    pub last_frame: Option<(u32, u32, Vec<u8>)>,
    pub(super) recorder: Option<super::frames::FrameRecorder>,
    pub frames: (u64, u64),
    /// Displayed frames that matched a camera frame record / that did not.
    pub scanout: (u64, u64),
    /// Repeated and dropped frames among the displayed camera frames.
    pub stutter: super::scanout::Stutter,
    pub console: Console,
    pub(super) power: Option<PowerEvent>,
    pub(super) idle_after_eof_ns: u64,
    pub(super) eof_at: Option<u64>,
    pub unhandled: u64,
    /// The last MMIO write went to cmaemu's own registers (no device
    /// changed: see `Bus::write_left_devices`).
    pub(super) host_write: bool,
    /// Stepping: stop once this text appears in the output ...
    pub(super) watch: Option<(String, Vec<u8>)>,
    /// ... or once the guest waits for input and none is left.
    pub(super) pause_when_starved: bool,
    /// ... or at the next WFI (a quiet point: see `Machine::run_until_quiet`).
    pub(super) pause_at_idle: bool,
    pub(super) paused: bool,
    /// Stepping: pause once virtual time reaches this (a step's budget).
    pub(super) time_limit: Option<u64>,
    pub(super) timed_out: bool,
}
impl Board {
    pub(super) fn new(console: Console, idle_after_eof_ns: u64, ram: GuestRam, opts: RunOptions) -> Self {
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
            devices: DeviceTable::modelled(),
            monitor: if opts.verify || opts.trace || opts.transport_only {
                let mut i = Instrumentation::new(ram.clone(), opts.on_violation, opts.report, opts.verify && !opts.transport_only);
                i.explain = !opts.no_explain;
                i.transport_only = opts.transport_only;
                i.light_doorbells = !opts.drain_every_doorbell;
                i.keep_events = !opts.drop_events;
                Some(Box::new(i))
            } else {
                None
            },
            linux: opts.linux_debuginfo.clone().map(|d| Box::new(crate::instrument::linux::LinuxSession::new(d, FRAME_NS))),
            ram,
            opts,
            next_frame: FRAME_NS,
            frame_index: 0,
            activity: false,
            last_frame: None,
            recorder,
            frames: (0, 0),
            scanout: (0, 0),
            stutter: Default::default(),
            console,
            power: None,
            idle_after_eof_ns,
            eof_at: None,
            unhandled: 0,
            host_write: false,
            watch: None,
            pause_when_starved: false,
            pause_at_idle: false,
            paused: false,
            time_limit: None,
            timed_out: false,
        }
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
pub(super) fn build(
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
    if !valid_ram_size(ram_size) {
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
    let breakpoints = opts.linux_debuginfo.as_deref().map(crate::instrument::linux::LinuxSession::breakpoints).unwrap_or_default();
    let mut board = Board::new(console, idle_after_eof_ns, ram.clone(), opts);
    for (i, w) in null.windows.iter().enumerate() {
        // outside every modelled window by construction (see NullDevices)
        let _ = board.devices.insert(w.base, w.size, dev_null(i));
    }
    board.null = null;
    let windows = board.devices.windows();
    if let Some(m) = &mut board.monitor {
        m.push_event(crate::trace::Event { ts_ns: 0, frame: 0, kind: crate::trace::EventKind::Run(Box::new(run)) });
    }
    let mut cpu = Cpu::new(board, ram, RAM_BASE, &flash, &windows, max_insns)?;
    if !breakpoints.is_empty() {
        cpu.add_breakpoints(&breakpoints)?;
    }
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


/// Where the firmware puts the DTB: QEMU's `arm_load_dtb` places it at
/// `loader_start + MIN(ram_size / 2, 128 MiB)` when there is no initrd.
pub fn dtb_address(ram_size: u64) -> u64 {
    RAM_BASE + (ram_size / 2).min(128 << 20)
}

