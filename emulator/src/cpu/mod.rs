//! The only module that touches Unicorn: the Cortex-A9 core, guest RAM,
//! MMIO glue, the host-side MMU (virtual TLB + short-descriptor walk),
//! exception entry (Unicorn never vectors exceptions itself), IRQ
//! injection and instruction-counted virtual time.
//!
//! Virtual time is the number of retired instructions (counted per
//! translated block, ARM state: 4 bytes an instruction) plus the idle time
//! the board skipped while the CPU waited in WFI. No per-instruction hook.
use crate::memory::walk::{self, Access, MmuRegs};
use std::ffi::c_void;
use unicorn_engine::{
    uc_error, Arch, ArmCpuModel, HookType, MemType, Mode, Prot, RegisterARM, RegisterARMCP, TlbEntry, TlbType,
    Unicorn,
};

pub mod bare;
pub mod gdb;
mod serve_inline;
pub mod snapshot;
#[cfg(test)]
mod tests;
pub use crate::memory::GuestRam;
use crate::memory::ram::{DirtySync, PreserveSync, PRESERVE_LAYOUT};

/// Physical page that stands for "this translation faulted": nothing is
/// mapped there, so the access lands in the unmapped-memory hook, which
/// then knows the exact faulting address.
const FAULT_PA: u64 = 0xF000_0000;

/// What the board provides to the CPU: MMIO, devices' time and IRQ line.
pub trait Bus {
    /// A device read of `size` bytes at physical `pa`.
    fn mmio_read(&mut self, pa: u64, size: usize, now: u64) -> u64;
    /// A device write.
    fn mmio_write(&mut self, pa: u64, size: usize, value: u64, now: u64);
    /// Whether the last [`Bus::mmio_write`] left every device as it was (a
    /// write to the board's own host registers, such as the verifiers'
    /// doorbell): the CPU's deadline and IRQ state stand, nothing to
    /// re-arm.
    fn write_left_devices(&self) -> bool {
        false
    }
    /// Bring devices up to virtual time `now` (ns).
    fn tick(&mut self, now: u64);
    /// The next virtual time (ns) at which a device changes state by itself.
    fn next_deadline(&self) -> u64;
    /// The level of the CPU's IRQ input (the GIC's output).
    fn irq_pending(&self) -> bool;
    /// A device asked the run to stop (power off, reboot).
    fn stop_requested(&self) -> bool;
    /// The CPU is idle in WFI at `now` with no interrupt to take: the board
    /// delivers input or returns the time to skip to (None: stop the run).
    fn idle(&mut self, now: u64) -> Option<u64>;
    /// The board's host-side work that needs the CPU's cached translations
    /// (the verifiers); [`NoServicer`] for a board without any.
    type Servicer: Servicer;
    /// Hand the servicer out while the CPU is stopped at a block boundary;
    /// it comes back with `put_servicer`.
    fn take_servicer(&mut self) -> Option<Self::Servicer> {
        None
    }
    /// The servicer has work that should not wait for the next deadline
    /// (a doorbell): the CPU stops at the next block boundary.
    fn wants_service(&self) -> bool {
        false
    }
    fn put_servicer(&mut self, _s: Self::Servicer) {}
    /// The guest invalidated TLB entries (a CP15 c8 write; see [`TlbOp`])
    /// at virtual time `now`. Host-side flushes are not reported.
    fn tlb_maintenance(&mut self, _op: TlbOp, _now: u64) {}
    /// Who handles the addresses given to [`Cpu::add_breakpoints`].
    type Breaker: Breaker;
    /// Hand the breakpoint handler out while the CPU is stopped at one of
    /// them; it comes back with `put_breaker`.
    fn take_breaker(&mut self) -> Option<Self::Breaker> {
        None
    }
    fn put_breaker(&mut self, _b: Self::Breaker) {}
}

/// The registers a breakpoint handler sees.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BreakRegs {
    /// r0..r3: a function's first four arguments at its entry.
    pub args: [u32; 4],
    pub sp: u32,
    pub lr: u32,
}

/// The handler of [`Cpu::add_breakpoints`]' addresses.
pub trait Breaker {
    /// The CPU is about to execute the instruction at `pc` (a kernel
    /// function's entry, or the instruction after a call), at `now`.
    fn hit(&mut self, pc: u32, regs: &BreakRegs, now: u64, ram: &GuestRam, tlb: &mut dyn CpuTlb);
}

impl<S: Breaker + ?Sized> Breaker for Box<S> {
    fn hit(&mut self, pc: u32, regs: &BreakRegs, now: u64, ram: &GuestRam, tlb: &mut dyn CpuTlb) {
        (**self).hit(pc, regs, now, ram, tlb)
    }
}

impl Breaker for NoServicer {
    fn hit(&mut self, _pc: u32, _regs: &BreakRegs, _now: u64, _ram: &GuestRam, _tlb: &mut dyn CpuTlb) {
        match *self {}
    }
}

/// See [`Bus::take_servicer`].
pub trait Servicer {
    fn service(&mut self, now: u64, tlb: &mut dyn CpuTlb);
    /// Serve the work due now without the devices, if it needs nothing of
    /// them (a verifier's light doorbell): true when it was served — the
    /// CPU then neither ticks the devices nor re-arms their deadlines
    /// (none is due at a block start served inline, so ticking would
    /// change nothing). False: nothing was done, [`Servicer::service`]
    /// follows as usual.
    fn serve_light(&mut self, _now: u64, _tlb: &mut dyn CpuTlb) -> bool {
        false
    }
}

impl<S: Servicer + ?Sized> Servicer for Box<S> {
    fn service(&mut self, now: u64, tlb: &mut dyn CpuTlb) {
        (**self).service(now, tlb)
    }
    fn serve_light(&mut self, now: u64, tlb: &mut dyn CpuTlb) -> bool {
        (**self).serve_light(now, tlb)
    }
}

/// The servicer of a board that has none (it cannot be built).
pub enum NoServicer {}

impl Servicer for NoServicer {
    fn service(&mut self, _now: u64, _tlb: &mut dyn CpuTlb) {
        match *self {}
    }
}

/// A TLB invalidate operation the guest issued (ARMv7 CP15 c8: the
/// unified, instruction-side, data-side and Inner Shareable forms are
/// reported alike).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlbOp {
    /// TLBIALL: every entry.
    All,
    /// TLBIMVA: the page holding `va`, for `asid`.
    Va { va: u32, asid: u8 },
    /// TLBIASID: every non-global entry of `asid`.
    Asid(u8),
    /// TLBIMVAA: the page holding `va`, for every ASID.
    VaAllAsids(u32),
}

impl TlbOp {
    /// From the vendored Unicorn's report (`UC_CMAEMU_TLBI_*`, the value
    /// the guest wrote).
    fn from_raw(op: u32, value: u32) -> Option<TlbOp> {
        Some(match op {
            0 => TlbOp::All,
            1 => TlbOp::Va { va: value & !0xfff, asid: value as u8 },
            2 => TlbOp::Asid(value as u8),
            3 => TlbOp::VaAllAsids(value & !0xfff),
            _ => return None,
        })
    }
    /// Whether this removes the translation of the page holding `va`
    /// (any ASID: the guest runs without ASIDs, like QEMU's model of
    /// these operations, which flushes by VA for every ASID and treats
    /// TLBIASID as TLBIALL).
    pub fn covers(self, va: u32) -> bool {
        match self {
            TlbOp::All | TlbOp::Asid(_) => true,
            TlbOp::Va { va: p, .. } | TlbOp::VaAllAsids(p) => p == va & !0xfff,
        }
    }
    /// Whether this removes the translation of the page holding `va` in
    /// address space `asid`, as an ARMv7 TLB does for a non-global entry
    /// (user pages under Linux): TLBIMVA and TLBIASID only for the ASID
    /// they name.
    pub fn covers_asid(self, va: u32, asid: u8) -> bool {
        match self {
            TlbOp::All => true,
            TlbOp::Asid(a) => a == asid,
            TlbOp::Va { va: p, asid: a } => a == asid && p == va & !0xfff,
            TlbOp::VaAllAsids(p) => p == va & !0xfff,
        }
    }
}

/// The engine reports a guest TLB invalidate (the vendored Unicorn's
/// `uc_cmaemu_set_tlbi_hook`): hand it to the board.
///
/// # Safety
/// `opaque` must be the `Unicorn<State<B>>` handle the `Cpu` keeps for
/// inline service (`Fast::serve_ctx`), called from that engine's thread
/// while it runs, with no other reference to the engine's data live (the
/// engine calls this from a CP15 write helper, as it calls hooks).
unsafe extern "C" fn on_tlbi<B: Bus>(opaque: *mut c_void, op: u32, value: u32) {
    // SAFETY: see the function's contract; the binding's hook proxies
    // reach the engine's data the same way while it runs.
    let handle = unsafe { &mut *(opaque as *mut Unicorn<'_, State<B>>) };
    let st = handle.get_data_mut();
    let now = st.now();
    if let Some(op) = TlbOp::from_raw(op, value) {
        st.bus.tlb_maintenance(op, now);
    }
}

/// The CPU's TLB as host-side checks see it (the current address space's
/// translations, at the privilege the kernel runs at).
pub trait CpuTlb {
    /// The current TTBR0.
    fn ttbr0(&mut self) -> u32;
    /// The current CONTEXTIDR (its low byte is the ASID).
    fn contextidr(&mut self) -> u32;
    /// Make the TLB hold `va -> pa` (read/write, never executable) unless
    /// it already holds an entry for `va`: what a CPU that used a mapping
    /// before its PTE changed may still cache until a TLB invalidate.
    fn retain(&mut self, va: u32, pa: u64);
}

/// [`CpuTlb`] over the engine, while it is stopped.
struct EngineTlb<'u, 'a, B: Bus> {
    uc: &'u mut Unicorn<'a, State<B>>,
}

impl<B: Bus> CpuTlb for EngineTlb<'_, '_, B> {
    fn ttbr0(&mut self) -> u32 {
        // one direct read of the CPU state (a coprocessor read looks the
        // register up in a hash table: a cost at every migrated page)
        ttbr0(self.uc)
    }
    fn contextidr(&mut self) -> u32 {
        read_cp15(self.uc, 13, 0, 0, 1)
    }
    fn retain(&mut self, va: u32, pa: u64) {
        let h = self.uc.get_handle() as *mut unicorn_engine_sys::uc_engine;
        // SAFETY: a valid engine handle, stopped or at a block start (the
        // servicer runs only there).
        unsafe { unicorn_engine_sys::uc_cmaemu_tlb_hold(h, va as u64, pa) };
    }
}

/// Let the board's servicer serve what is due without the devices
/// ([`Servicer::serve_light`]), at a block start inside the engine
/// ([`serve_inline`]): true when it did (the serve is no longer due; the
/// engine's deadline is the limit again, unchanged).
fn serve_light_on<B: Bus>(uc: &mut Unicorn<'_, State<B>>) -> bool {
    let now = uc.get_data().now();
    let Some(mut s) = uc.get_data_mut().bus.take_servicer() else { return false };
    let served = s.serve_light(now, &mut EngineTlb { uc });
    let st = uc.get_data_mut();
    st.bus.put_servicer(s);
    if served {
        let f = st.fast_mut();
        f.set_limit(f.limit);
        dirty_sync(uc);
    }
    served
}

/// Run the board's servicer (if it has work) on the engine `uc`, stopped
/// or at a block start inside the engine ([`serve_inline`]).
fn serve_on<B: Bus>(uc: &mut Unicorn<'_, State<B>>) {
    let now = uc.get_data().now();
    if let Some(mut s) = uc.get_data_mut().bus.take_servicer() {
        s.service(now, &mut EngineTlb { uc });
        uc.get_data_mut().bus.put_servicer(s);
        uc.get_data_mut().rearm();
    }
    dirty_sync(uc);
}

/// Bring the engine's dirty log in line with RAM's (see
/// [`GuestRam::engine_sync`]): a new watched range, or a re-arm after the
/// host took the marks. Called after every host service and before the
/// guest runs again, so no guest store into a watched page goes unlogged.
fn dirty_sync<B: Bus>(uc: &mut Unicorn<'_, State<B>>) {
    let h = uc.get_handle() as *mut unicorn_engine_sys::uc_engine;
    match uc.get_data().ram.engine_sync() {
        DirtySync::None => {}
        // SAFETY: a valid engine handle; `bitmap` and `watch` are RAM's
        // dirty log and watched pages, one bit per 4 KiB page from `base`,
        // which live as long as the RAM mapping — the engine's data holds
        // a clone of it, so they outlive the engine's use (the log is
        // turned off when the engine is dropped with it).
        DirtySync::Watch { bitmap, watch, base, pages } => unsafe {
            let (bitmap, watch) = if pages > 0 { (bitmap, watch) } else { (std::ptr::null_mut(), std::ptr::null()) };
            unicorn_engine_sys::uc_cmaemu_set_dirty_log(h, bitmap, watch, base, pages);
        },
        // SAFETY: a valid engine handle, stopped or at a block start.
        DirtySync::Rearm => unsafe {
            unicorn_engine_sys::uc_cmaemu_dirty_rearm(h);
        },
    }
    preserve_sync(uc);
}

// RAM's copy-on-write record is the engine's `uc_cmaemu_preserve`.
const _: () = {
    use unicorn_engine_sys::uc_cmaemu_preserve as P;
    let (size, pa, copied, buf) = PRESERVE_LAYOUT;
    assert!(size == std::mem::size_of::<P>());
    assert!(pa == std::mem::offset_of!(P, pa));
    assert!(copied == std::mem::offset_of!(P, copied));
    assert!(buf == std::mem::offset_of!(P, buf));
};

/// Bring the engine's copy-on-write page in line with RAM's (see
/// [`GuestRam::preserve`]): the record, or an arm after a page was named.
fn preserve_sync<B: Bus>(uc: &mut Unicorn<'_, State<B>>) {
    let h = uc.get_handle() as *mut unicorn_engine_sys::uc_engine;
    match uc.get_data().ram.preserve_sync() {
        PreserveSync::None => {}
        // SAFETY: a valid engine handle; `rec` is RAM's copy-on-write
        // record (the engine's `uc_cmaemu_preserve`, same layout: checked
        // above), which lives as long as the RAM mapping — the engine's
        // data holds a clone of it, so it outlives the engine's use.
        PreserveSync::Set { rec, base, pages } => unsafe {
            unicorn_engine_sys::uc_cmaemu_set_preserve(h, rec as *mut unicorn_engine_sys::uc_cmaemu_preserve, base, pages);
        },
        // SAFETY: a valid engine handle, stopped or at a block start.
        PreserveSync::Arm => unsafe {
            unicorn_engine_sys::uc_cmaemu_preserve_arm(h);
        },
    }
}

/// ARM exception kinds the host emulates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExcKind {
    Undef,
    Svc,
    PrefetchAbort,
    DataAbort,
    Irq,
}

impl ExcKind {
    fn mode(self) -> u32 {
        match self {
            ExcKind::Undef => 0x1b,
            ExcKind::Svc => 0x13,
            ExcKind::PrefetchAbort | ExcKind::DataAbort => 0x17,
            ExcKind::Irq => 0x12,
        }
    }
    fn vector(self) -> u32 {
        match self {
            ExcKind::Undef => 0x04,
            ExcKind::Svc => 0x08,
            ExcKind::PrefetchAbort => 0x0c,
            ExcKind::DataAbort => 0x10,
            ExcKind::Irq => 0x18,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            ExcKind::Undef => "undefined instruction",
            ExcKind::Svc => "supervisor call",
            ExcKind::PrefetchAbort => "prefetch abort",
            ExcKind::DataAbort => "data abort",
            ExcKind::Irq => "irq",
        }
    }
}

/// The last non-IRQ exception the CPU took (for failure reports).
#[derive(Clone, Copy, Debug)]
pub struct ExcRecord {
    pub kind: ExcKind,
    /// Address of the instruction that caused it.
    pub pc: u32,
    pub far: u32,
    pub fsr: u32,
    pub regs: [u32; 16],
    pub cpsr: u32,
    pub at: u64,
}

/// Why a run stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stop {
    /// A device asked (power off / reboot): the board knows which.
    Device,
    /// `--max-insns` reached.
    MaxInsns,
    /// The board ended the run while the CPU was idle.
    Idle,
    /// Something the emulator cannot continue from.
    Error(String),
}

#[derive(Clone, Copy)]
struct PendingFault {
    va: u32,
    fsr: u32,
    fetch: bool,
}

/// Counters for `--stats`.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuStats {
    pub insns: u64,
    pub idle_ns: u64,
    pub blocks: u64,
    pub irqs: u64,
    pub exceptions: u64,
    pub tlb_fills: u64,
    pub wfi: u64,
}

/// The instruction counter and stop conditions, kept by translated code
/// (the vendored Unicorn's `uc_cmaemu_set_counter`, CMAEMU-PATCHES.md): at
/// every block start the engine stops before running the block when
/// `insns` has reached `deadline`, or while `watch_unmask` is set and
/// CPSR.I is clear; else it adds the block's instruction count (ARM or
/// Thumb) to `insns`. No hook call per block. Before it stops it calls
/// `on_stop` ([`on_counter_stop`]), which serves a verifier doorbell on the
/// spot ([`serve_inline`]); anything more (device deadlines, IRQ injection,
/// limits) is served by `Cpu::run` after the stop.
#[repr(C)]
struct Fast {
    /// Shared with the engine: `insns` (retired instructions; a block cut
    /// short by an abort counts whole), `deadline` (`limit`, or 0 when an
    /// unmasked IRQ is pending or a doorbell is due; kept derived by
    /// `Fast::set`), `blocks` (statistics), `watch_unmask` (`irq_line &&
    /// masked`: stop at the first block boundary after the guest clears
    /// CPSR.I — Linux's idle loop unmasks for a few instructions only, then
    /// waits in WFI), `stopped` (the engine stopped for one of these) and
    /// `on_stop`.
    c: unicorn_engine_sys::uc_cmaemu_counter,
    /// Stop when `insns` reaches this (min of the next device deadline and
    /// the instruction limit, in instructions).
    limit: u64,
    /// The GIC drives the CPU's IRQ input.
    irq_line: bool,
    /// The IRQ is pending but was found masked (CPSR.I set).
    masked: bool,
    /// A doorbell asked for host service and nothing else needs the run
    /// loop: `deadline` is 0 until the next block start, where `on_stop`
    /// serves it without stopping the engine ([`serve_inline`]). Any re-arm
    /// first cancels it, as it cancelled the stop this replaces.
    serve_due: bool,
    /// `serve_inline::serve_inline::<B>` and the engine handle it serves
    /// through (None: doorbells stop the engine).
    serve_fn: Option<unsafe fn(*mut c_void, *mut unicorn_engine_sys::uc_engine) -> bool>,
    serve_ctx: *mut c_void,
}

impl Fast {
    /// Set the limit, IRQ line and masked state, and derive the engine's
    /// deadline and unmask watch from them.
    fn set(&mut self, limit: u64, irq_line: bool, masked: bool) {
        self.limit = limit;
        self.irq_line = irq_line;
        self.masked = masked;
        self.c.deadline = if irq_line && !masked { 0 } else { limit };
        self.c.watch_unmask = (irq_line && masked) as u32;
        self.serve_due = false;
    }
    /// Serve the host at the next block boundary (see `serve_due`).
    fn request_service(&mut self) {
        self.c.deadline = 0;
        self.serve_due = true;
    }
    fn set_limit(&mut self, limit: u64) {
        self.set(limit, self.irq_line, self.masked);
    }
    fn set_masked(&mut self, masked: bool) {
        self.set(self.limit, self.irq_line, masked);
    }
    fn insns(&self) -> u64 {
        self.c.insns
    }
    /// The engine stopped at a block start for the counter; clears it.
    fn take_stopped(&mut self) -> bool {
        std::mem::replace(&mut self.c.stopped, 0) != 0
    }
}

/// CPSR bits the glue reads.
const CPSR_T: u32 = 1 << 5;
const CPSR_I: u32 = 1 << 7;

/// Instructions in a translated block of `size` bytes for `--profile`
/// (exact in ARM state; a Thumb block is estimated at size / 4, at least 1).
#[inline(always)]
fn block_insns(size: u32) -> u64 {
    (size as u64 / 4).max(1)
}

/// The counter's `on_stop`: the engine is about to stop at a block start.
/// If only a doorbell is due, serve it here and let the block run (the
/// engine checks the stop conditions again first).
///
/// # Safety
/// Only the engine calls it (registered by `Cpu::new` as the counter's
/// `on_stop`): `c` is the counter embedded at the start of the `Cpu`'s
/// `Fast`, and `uc` the engine running on this thread.
unsafe extern "C" fn on_counter_stop(c: *mut unicorn_engine_sys::uc_cmaemu_counter, uc: *mut unicorn_engine_sys::uc_engine) -> i32 {
    // SAFETY: `c` is the first field of the repr(C) Box<Fast> owned by the
    // Cpu, alive while the engine runs; only this thread touches it.
    let f = unsafe { &mut *(c as *mut Fast) };
    if let (true, Some(serve), false) = (f.serve_due && f.c.insns < f.limit, f.serve_fn, f.irq_line) {
        let ctx = f.serve_ctx;
        // SAFETY: `serve_fn` is `serve_inline::<B>` for this engine and
        // `ctx` its handle (set by `Cpu::new`); we are in the engine's
        // block-start callback and `f` is not used after this.
        return unsafe { serve(ctx, uc) } as i32;
    }
    0
}

struct State<B: Bus> {
    bus: B,
    ram: GuestRam,
    idle_ns: u64,
    max_insns: u64,
    stop: Option<Stop>,
    fault_pending: Option<(u32, u32, Access)>,
    pending: Option<PendingFault>,
    last_fill: (u32, u64),
    last_exc: Option<ExcRecord>,
    stats: CpuStats,
    fast: *mut Fast,
    /// Retired instructions per block start address (`--profile`).
    profile: Option<std::collections::HashMap<u64, u64>>,
    /// Aborts taken in a row while already in Abort mode (see
    /// `NESTED_ABORT_LIMIT`).
    nested_aborts: u32,
}

impl<B: Bus> State<B> {
    fn fast(&self) -> &Fast {
        // SAFETY: `fast` points to the Box<Fast> owned by the Cpu for the
        // whole life of the engine; single-threaded access.
        unsafe { &*self.fast }
    }
    fn fast_mut(&mut self) -> &mut Fast {
        // SAFETY: as in `fast`.
        unsafe { &mut *self.fast }
    }
    fn now(&self) -> u64 {
        self.fast().insns() + self.idle_ns
    }
    /// Recompute the hook's stop limit after device state changed.
    fn rearm(&mut self) {
        let d = self.bus.next_deadline();
        let idle = self.idle_ns;
        let max = self.max_insns;
        let irq = self.bus.irq_pending();
        let f = self.fast_mut();
        // A newly raised line is looked at once before it counts as masked.
        let masked = irq && f.irq_line && f.masked;
        f.set(d.saturating_sub(idle).min(max), irq, masked);
    }
}

/// The Cortex-A9 core with RAM, flash and the board's MMIO.
pub struct Cpu<'a, B: Bus + 'a> {
    uc: Unicorn<'a, State<B>>,
    /// The engine handle the block hook serves doorbells through
    /// (`Fast::serve_ctx` points to it). Dropped before `_fast`: the
    /// engine closes while the hook's data is still alive.
    _serve_handle: Box<Unicorn<'a, State<B>>>,
    _fast: Box<Fast>,
}

/// Errors setting the machine up.
#[derive(Debug, thiserror::Error)]
pub enum CpuError {
    #[error("unicorn: {what}: {err:?}")]
    Unicorn { what: &'static str, err: uc_error },
    #[error("guest RAM: firmware of {0} bytes does not fit the 64 MiB flash")]
    FlashTooSmall(usize),
    /// The gdb stub's socket.
    #[error("gdb: {0}")]
    GdbSocket(std::io::Error),
    #[error("gdb: accept: {0}")]
    GdbAccept(std::io::Error),
    /// The gdb remote protocol session failed (gdbstub's error, as text).
    #[error("{0}")]
    GdbSession(String),
}

pub(crate) fn ucr<T>(what: &'static str, r: Result<T, uc_error>) -> Result<T, CpuError> {
    r.map_err(|err| CpuError::Unicorn { what, err })
}

fn cp15(crn: u32, opc1: u32, crm: u32, opc2: u32) -> RegisterARMCP {
    RegisterARMCP { cp: 15, is64: 0, sec: 0, crn, crm, opc1, opc2, val: 0 }
}

fn read_cp15<D>(uc: &Unicorn<D>, crn: u32, opc1: u32, crm: u32, opc2: u32) -> u32 {
    let mut r = cp15(crn, opc1, crm, opc2);
    let _ = uc.reg_read_arm_coproc(&mut r);
    r.val as u32
}

fn write_cp15<D>(uc: &mut Unicorn<D>, crn: u32, opc1: u32, crm: u32, opc2: u32, v: u32) {
    let mut r = cp15(crn, opc1, crm, opc2);
    r.val = v as u64;
    let _ = uc.reg_write_arm_coproc(&r);
}

fn mmu_regs<D>(uc: &Unicorn<D>) -> MmuRegs {
    let mut r = [0u32; 6];
    // SAFETY: a valid engine handle and a 6-word buffer, as the vendored
    // Unicorn's `uc_cmaemu_mmu_regs` requires.
    if unsafe { unicorn_engine_sys::uc_cmaemu_mmu_regs(uc.get_handle() as *mut unicorn_engine_sys::uc_engine, r.as_mut_ptr()) } == uc_error::OK {
        let [sctlr, ttbr0, ttbr1, ttbcr, dacr, cpsr] = r;
        return MmuRegs { sctlr, ttbr0, ttbr1, ttbcr, dacr, privileged: cpsr & 0x1f != 0x10 };
    }
    mmu_regs_one_by_one(uc)
}

/// TTBR0 alone, as [`mmu_regs`] reads it (the verifiers ask at every
/// migrated page which address space is current).
fn ttbr0<D>(uc: &Unicorn<D>) -> u32 {
    let mut r = 0u32;
    // SAFETY: a valid engine handle and one word, as the vendored Unicorn's
    // `uc_cmaemu_ttbr0` requires.
    if unsafe { unicorn_engine_sys::uc_cmaemu_ttbr0(uc.get_handle() as *mut unicorn_engine_sys::uc_engine, &mut r) } == uc_error::OK {
        return r;
    }
    mmu_regs(uc).ttbr0
}

/// The same registers read one coprocessor register at a time (the
/// fallback of [`mmu_regs`], and its reference in the tests).
fn mmu_regs_one_by_one<D>(uc: &Unicorn<D>) -> MmuRegs {
    let cpsr = uc.reg_read(RegisterARM::CPSR).unwrap_or(0) as u32;
    MmuRegs {
        sctlr: read_cp15(uc, 1, 0, 0, 0),
        ttbr0: read_cp15(uc, 2, 0, 0, 0),
        ttbr1: read_cp15(uc, 2, 0, 0, 1),
        ttbcr: read_cp15(uc, 2, 0, 0, 2),
        dacr: read_cp15(uc, 3, 0, 0, 0),
        privileged: cpsr & 0x1f != 0x10,
    }
}

const GPRS: [RegisterARM; 16] = [
    RegisterARM::R0,
    RegisterARM::R1,
    RegisterARM::R2,
    RegisterARM::R3,
    RegisterARM::R4,
    RegisterARM::R5,
    RegisterARM::R6,
    RegisterARM::R7,
    RegisterARM::R8,
    RegisterARM::R9,
    RegisterARM::R10,
    RegisterARM::R11,
    RegisterARM::R12,
    RegisterARM::SP,
    RegisterARM::LR,
    RegisterARM::PC,
];

fn read_gprs<D>(uc: &Unicorn<D>) -> [u32; 16] {
    let mut r = [0u32; 16];
    for (i, reg) in GPRS.iter().enumerate() {
        r[i] = uc.reg_read(*reg).unwrap_or(0) as u32;
    }
    r
}

/// An abort taken while the CPU is already in Abort mode has clobbered the
/// handler's own LR and SPSR: the handler itself faults (a corrupt stack or
/// vectors). Hardware would spin on it forever at a few instructions per
/// fault; after this many in a row the run stops with a report.
pub const NESTED_ABORT_LIMIT: u32 = 10_000;

/// Emulate exception entry (ARM ARM B1.8): new mode with banked SP/LR/SPSR,
/// SPSR = old CPSR, LR = `lr`, I set (A too for IRQ and aborts), T from
/// SCTLR.TE, IT/J cleared, PC = vector base + offset.
fn take_exception<B: Bus>(uc: &mut Unicorn<State<B>>, kind: ExcKind, lr: u32, insn_pc: u32, far: u32, fsr: u32) {
    let old = uc.reg_read(RegisterARM::CPSR).unwrap_or(0) as u32;
    if matches!(kind, ExcKind::DataAbort | ExcKind::PrefetchAbort) {
        let st = uc.get_data_mut();
        st.nested_aborts = if old & 0x1f == 0x17 { st.nested_aborts + 1 } else { 0 };
        if st.nested_aborts >= NESTED_ABORT_LIMIT {
            let what = if kind == ExcKind::DataAbort { "data abort" } else { "prefetch abort" };
            st.stop = Some(Stop::Error(format!(
                "exception loop: {what} at pc {insn_pc:#010x} (fault address {far:#010x}, status {fsr:#x}) taken {} times in a row in Abort mode: the abort handler itself faults (corrupt stack or vectors)",
                st.nested_aborts
            )));
        }
    }
    let sctlr = read_cp15(uc, 1, 0, 0, 0);
    let mut new = old & !(0x1f | (1 << 5) | (1 << 24) | (0x3 << 25) | (0x3f << 10));
    new |= kind.mode() | 0x80;
    if matches!(kind, ExcKind::Irq | ExcKind::PrefetchAbort | ExcKind::DataAbort) {
        new |= 0x100;
    }
    if sctlr & (1 << 30) != 0 {
        new |= 1 << 5;
    }
    if sctlr & (1 << 25) != 0 {
        new |= 1 << 9;
    } else {
        new &= !(1 << 9);
    }
    if kind != ExcKind::Irq {
        let regs = read_gprs(uc);
        let st = uc.get_data_mut();
        st.stats.exceptions += 1;
        let at = st.now();
        st.last_exc = Some(ExcRecord { kind, pc: insn_pc, far, fsr, regs, cpsr: old, at });
    } else {
        uc.get_data_mut().stats.irqs += 1;
    }
    let _ = uc.reg_write(RegisterARM::CPSR, new as u64);
    let _ = uc.reg_write(RegisterARM::SPSR, old as u64);
    let _ = uc.reg_write(RegisterARM::LR, lr as u64);
    let base = if sctlr & (1 << 13) != 0 { 0xffff_0000 } else { read_cp15(uc, 12, 0, 0, 0) & !0x1f };
    let _ = uc.reg_write(RegisterARM::PC, (base + kind.vector()) as u64);
}

impl<'a, B: Bus + 'a> Cpu<'a, B> {
    /// A Cortex-A9 with `ram` at `ram_base`, `flash` (read-only, executable)
    /// at 0, and the board's MMIO windows.
    pub fn new(bus: B, ram: GuestRam, ram_base: u64, flash: &[u8], mmio: &[(u64, u64)], max_insns: u64) -> Result<Self, CpuError> {
        // RAM watched for an earlier engine: this one must log it too (and
        // what ran before it was not logged by it).
        ram.rewatch();
        let state = State {
            bus,
            ram: ram.clone(),
            idle_ns: 0,
            max_insns,
            stop: None,
            fault_pending: None,
            pending: None,
            last_fill: (0, u64::MAX),
            last_exc: None,
            stats: CpuStats::default(),
            fast: std::ptr::null_mut(),
            profile: None,
            nested_aborts: 0,
        };
        let mut fast = Box::new(Fast {
            c: unicorn_engine_sys::uc_cmaemu_counter {
                insns: 0,
                deadline: 0,
                blocks: 0,
                watch_unmask: 0,
                stopped: 0,
                on_stop: Some(on_counter_stop),
            },
            limit: 0,
            irq_line: false,
            masked: false,
            serve_due: false,
            serve_fn: None,
            serve_ctx: std::ptr::null_mut(),
        });
        let mut uc = ucr("open", Unicorn::new_with_data(Arch::ARM, Mode::ARM, state))?;
        uc.get_data_mut().fast = &mut *fast as *mut Fast;
        ucr("cpu model", uc.ctl_set_cpu_model(ArmCpuModel::CORTEX_A9 as i32))?;
        ucr("page size", uc.ctl_set_page_size(4096))?;
        ucr("tlb type", uc.ctl_set_tlb_type(TlbType::VIRTUAL))?;
        let flash_size = 64 << 20;
        ucr("map flash", uc.mem_map(0, flash_size, Prot::READ | Prot::EXEC))?;
        if flash.len() as u64 > flash_size {
            return Err(CpuError::FlashTooSmall(flash.len()));
        }
        ucr("write flash", uc.mem_write(0, flash))?;
        // SAFETY: `ram` owns an anonymous mapping of `ram.len()` bytes that
        // stays alive as long as any GuestRam clone (State keeps one, so at
        // least as long as the Unicorn instance that uses it).
        ucr("map ram", unsafe { uc.mem_map_ptr(ram_base, ram.len() as u64, Prot::ALL, ram.as_ptr() as *mut c_void) })?;
        for &(base, size) in mmio {
            ucr(
                "map mmio",
                uc.mmio_map(
                    base,
                    size,
                    Some(move |uc: &mut Unicorn<State<B>>, off: u64, sz: usize| {
                        let st = uc.get_data_mut();
                        let now = st.now();
                        let v = st.bus.mmio_read(base + off, sz, now);
                        st.rearm();
                        // Never stop inside an MMIO callback: Unicorn would
                        // re-execute the access on resume (a FIFO read twice,
                        // a byte written twice). Serve at the next block.
                        if st.fast().irq_line || st.bus.stop_requested() {
                            st.fast_mut().set_limit(0);
                        }
                        v
                    }),
                    Some(move |uc: &mut Unicorn<State<B>>, off: u64, sz: usize, v: u64| {
                        let st = uc.get_data_mut();
                        let now = st.now();
                        st.bus.mmio_write(base + off, sz, v, now);
                        if !st.bus.write_left_devices() {
                            st.rearm();
                        }
                        if st.fast().irq_line || st.bus.stop_requested() {
                            st.fast_mut().set_limit(0);
                        } else if st.bus.wants_service() {
                            st.fast_mut().request_service();
                        }
                    }),
                ),
            )?;
        }
        // SAFETY: a valid engine handle; the counter is the Box<Fast> kept
        // in the returned Cpu, alive as long as the engine.
        let r = unsafe {
            unicorn_engine_sys::uc_cmaemu_set_counter(
                uc.get_handle() as *mut unicorn_engine_sys::uc_engine,
                &mut fast.c as *mut unicorn_engine_sys::uc_cmaemu_counter,
            )
        };
        ucr("instruction counter", if r == uc_error::OK { Ok(()) } else { Err(r) })?;
        ucr("intr hook", uc.add_intr_hook(Self::on_intr))?;
        ucr("invalid insn hook", uc.add_insn_invalid_hook(Self::on_invalid))?;
        ucr("tlb hook", uc.add_tlb_hook(0, u64::MAX, Self::on_tlb_fill))?;
        // The unmapped hook covers everything but RAM: Unicorn treats any
        // memory hook over a page as a reason never to mark its TLB entry
        // dirty, which sends every store to RAM through the slow
        // self-modifying-code path (measured: 10x slower boot).
        let ram_end = ram_base + ram.len() as u64;
        if ram_base > 0 {
            ucr("unmapped hook", uc.add_mem_hook(HookType::MEM_UNMAPPED, 0, ram_base - 1, Self::on_unmapped))?;
        }
        ucr("unmapped hook", uc.add_mem_hook(HookType::MEM_UNMAPPED, ram_end, u64::MAX, Self::on_unmapped))?;
        let mut serve_handle = Box::new(uc.clone());
        fast.serve_ctx = &mut *serve_handle as *mut Unicorn<'a, State<B>> as *mut c_void;
        fast.serve_fn = Some(serve_inline::serve_inline::<B>);
        // SAFETY: a valid engine handle; `serve_ctx` is the boxed handle
        // kept in the returned Cpu (dropped before the engine closes, and
        // the engine only calls the hook while it runs).
        let r = unsafe {
            unicorn_engine_sys::uc_cmaemu_set_tlbi_hook(uc.get_handle() as *mut unicorn_engine_sys::uc_engine, Some(on_tlbi::<B>), fast.serve_ctx)
        };
        ucr("tlb maintenance hook", if r == uc_error::OK { Ok(()) } else { Err(r) })?;
        Ok(Cpu { uc, _serve_handle: serve_handle, _fast: fast })
    }

    fn on_intr(uc: &mut Unicorn<State<B>>, intno: u32) {
        let pc = uc.reg_read(RegisterARM::PC).unwrap_or(0) as u32;
        match intno {
            // EXCP_SWI: PC is already past the SVC instruction.
            2 => take_exception(uc, ExcKind::Svc, pc, pc.wrapping_sub(4), 0, 0),
            // EXCP_BKPT: the guest has no debugger; treat as undefined.
            7 => {
                let thumb = uc.reg_read(RegisterARM::CPSR).unwrap_or(0) as u32 & CPSR_T != 0;
                take_exception(uc, ExcKind::Undef, pc + if thumb { 2 } else { 4 }, pc, 0, 0)
            }
            _ => {
                let st = uc.get_data_mut();
                st.stop = Some(Stop::Error(format!("unexpected CPU exception {} at pc {:#010x}", intno, pc)));
                let _ = uc.emu_stop();
            }
        }
    }

    fn on_invalid(uc: &mut Unicorn<State<B>>) -> bool {
        let pc = uc.reg_read(RegisterARM::PC).unwrap_or(0) as u32;
        let thumb = uc.reg_read(RegisterARM::CPSR).unwrap_or(0) as u32 & CPSR_T != 0;
        if Self::after_hint(uc, pc, thumb) {
            return true;
        }
        // Undefined-instruction entry: LR = the instruction's address + 4
        // in ARM state, + 2 in Thumb state (ARM ARM B1.9.6; Linux's
        // __und_usr_thumb reads the instruction at LR - 2).
        let lr = if thumb { pc + 2 } else { pc + 4 };
        take_exception(uc, ExcKind::Undef, lr, pc, 0, 0);
        true
    }

    /// WFE / YIELD / SEV reach the invalid-instruction hook with PC already
    /// past them; on a single core they are hints: carry on.
    fn after_hint(uc: &Unicorn<State<B>>, pc: u32, thumb: bool) -> bool {
        let (prev, len) = if thumb { (pc.wrapping_sub(2), 2) } else { (pc.wrapping_sub(4), 4) };
        let Ok(t) = Self::translate(uc, prev, Access::Fetch) else { return false };
        let mut insn = [0u8; 4];
        if uc.get_data().ram.read(t, &mut insn[..len]).is_err() && uc.mem_read(t, &mut insn[..len]).is_err() {
            return false;
        }
        let w = u32::from_le_bytes(insn);
        if thumb {
            // T1 encodings: YIELD 0xbf10, WFE 0xbf20, SEV 0xbf40.
            matches!(w & 0xffff, 0xbf10 | 0xbf20 | 0xbf40)
        } else {
            // A1 encodings: YIELD, WFE (…f001/…f002), SEV (…f004).
            w & 0x0fff_fffc == 0x0320_f000 || w & 0x0fff_ffff == 0x0320_f004
        }
    }

    fn translate(uc: &Unicorn<State<B>>, va: u32, access: Access) -> Result<u64, walk::Fault> {
        let regs = mmu_regs(uc);
        let ram = &uc.get_data().ram;
        walk::translate(&regs, va, access, &mut |pa| ram.read_u32(pa)).map(|t| t.pa)
    }

    fn on_tlb_fill(uc: &mut Unicorn<State<B>>, va: u64, ty: MemType) -> Option<TlbEntry> {
        let access = match ty {
            MemType::WRITE => Access::Write,
            MemType::FETCH => Access::Fetch,
            _ => Access::Read,
        };
        let regs = mmu_regs(uc);
        let st = uc.get_data_mut();
        st.stats.tlb_fills += 1;
        let ram = &st.ram;
        match walk::translate(&regs, va as u32, access, &mut |pa| ram.read_u32(pa)) {
            Ok(t) => {
                let mut p = Prot::NONE;
                if t.perms.read {
                    p |= Prot::READ;
                }
                if t.perms.write {
                    p |= Prot::WRITE;
                }
                if t.perms.exec {
                    p |= Prot::EXEC;
                }
                st.last_fill = (va as u32, t.pa & !0xfff);
                Some(TlbEntry { paddr: t.pa & !0xfff, perms: p })
            }
            Err(f) => {
                st.fault_pending = Some((va as u32, f.fsr, access));
                Some(TlbEntry { paddr: FAULT_PA, perms: Prot::ALL })
            }
        }
    }

    fn on_unmapped(uc: &mut Unicorn<State<B>>, ty: MemType, addr: u64, _size: usize, _value: i64) -> bool {
        let st = uc.get_data_mut();
        let write = ty == MemType::WRITE_UNMAPPED;
        let fetch = ty == MemType::FETCH_UNMAPPED;
        let wnr = if write { 1 << 11 } else { 0 };
        if addr & !0xfff == FAULT_PA {
            if let Some((va_page, fsr, _)) = st.fault_pending.take() {
                st.pending = Some(PendingFault { va: va_page | (addr & 0xfff) as u32, fsr: fsr | wnr, fetch });
                return false;
            }
        }
        // A translation to physical space with nothing behind it:
        // synchronous external abort (FS = 0b01000).
        let va = if st.last_fill.1 == addr & !0xfff { st.last_fill.0 | (addr & 0xfff) as u32 } else { addr as u32 };
        st.pending = Some(PendingFault { va, fsr: 0b01000 | wnr, fetch });
        false
    }

    /// Set the entry point (physical; the MMU is off at reset) and run
    /// until something stops the machine.
    /// Run the board's host-side servicer (if it has work) with access to
    /// the CPU's cached translations.
    pub fn serve(&mut self) {
        serve_on(&mut self.uc);
    }

    /// Inject a pending IRQ if the CPU has them unmasked; returns the PC
    /// to resume at. A masked IRQ is taken at the first block boundary
    /// after the guest clears CPSR.I (the block hook watches for it).
    fn maybe_take_irq(&mut self, pc: u64) -> u64 {
        if !self.uc.get_data().fast().irq_line {
            return pc;
        }
        let cpsr = self.uc.reg_read(RegisterARM::CPSR).unwrap_or(CPSR_I as u64) as u32;
        if cpsr & CPSR_I == 0 {
            // IRQ entry: LR = preferred return address + 4 in ARM and Thumb.
            take_exception(&mut self.uc, ExcKind::Irq, pc as u32 + 4, pc as u32, 0, 0);
            self.uc.get_data_mut().fast_mut().set_masked(false);
            self.uc.reg_read(RegisterARM::PC).unwrap_or(0)
        } else {
            self.uc.get_data_mut().fast_mut().set_masked(true);
            pc
        }
    }

    /// The address to hand `emu_start` to continue at `pc` in the CPU's
    /// current instruction set: Unicorn takes the T bit from bit 0 of the
    /// start address, not from CPSR.
    fn start_address(&self, pc: u64) -> u64 {
        let cpsr = self.uc.reg_read(RegisterARM::CPSR).unwrap_or(0) as u32;
        if cpsr & CPSR_T != 0 {
            pc | 1
        } else {
            pc
        }
    }

    /// Set the entry point (physical; the MMU is off at reset) and run
    /// until something stops the machine.
    ///
    /// The block hook stops the engine when a device deadline or the
    /// instruction limit is reached or an IRQ is pending; the stop takes
    /// effect at a block boundary, so where it lands depends only on the
    /// guest's instruction stream: runs stay deterministic.
    pub fn run(&mut self, entry: u32) -> Stop {
        self.run_from(entry as u64)
    }

    /// Continue where the last run stopped.
    pub fn resume(&mut self) -> Stop {
        let pc = self.uc.reg_read(RegisterARM::PC).unwrap_or(0);
        self.run_from(pc)
    }

    fn run_from(&mut self, start: u64) -> Stop {
        let mut pc = start;
        self.uc.get_data_mut().rearm();
        loop {
            let begin = if pc & 1 != 0 { pc } else { self.start_address(pc) };
            dirty_sync(&mut self.uc);
            let r = self.uc.emu_start(begin, u64::MAX, 0, 0);
            pc = self.uc.reg_read(RegisterARM::PC).unwrap_or(0);
            let st = self.uc.get_data_mut();
            if let Some(stop) = st.stop.take() {
                return stop;
            }
            let serviced = st.fast_mut().take_stopped();
            match r {
                Ok(()) if serviced => {
                    if st.fast().insns() >= st.max_insns {
                        return Stop::MaxInsns;
                    }
                    let now = st.now();
                    st.bus.tick(now);
                    st.rearm();
                    self.serve();
                    let st = self.uc.get_data_mut();
                    if st.bus.stop_requested() {
                        return Stop::Device;
                    }
                    pc = self.maybe_take_irq(pc);
                }
                Ok(()) => {
                    // WFI: skip idle time to the next event.
                    st.stats.wfi += 1;
                    let mut guard = 0;
                    loop {
                        let st = self.uc.get_data_mut();
                        let now = st.now();
                        st.bus.tick(now);
                        st.rearm();
                        self.serve();
                        let st = self.uc.get_data_mut();
                        if st.fast().irq_line || st.bus.stop_requested() {
                            break;
                        }
                        match st.bus.idle(now) {
                            Some(t) => {
                                if t > now {
                                    st.idle_ns += t - now;
                                }
                            }
                            None => return Stop::Idle,
                        }
                        guard += 1;
                        if guard > 1_000_000 {
                            return Stop::Error("idle loop made no progress".into());
                        }
                    }
                    let st = self.uc.get_data_mut();
                    if st.bus.stop_requested() {
                        return Stop::Device;
                    }
                    st.fast_mut().set_masked(false);
                    pc = self.maybe_take_irq(pc);
                }
                Err(e @ (uc_error::READ_UNMAPPED | uc_error::WRITE_UNMAPPED | uc_error::FETCH_UNMAPPED)) => {
                    let Some(f) = st.pending.take() else {
                        return Stop::Error(format!("{:?} at pc {:#010x} with no fault recorded", e, pc));
                    };
                    let _ = self.uc.ctl_flush_tlb();
                    if f.fetch {
                        write_cp15(&mut self.uc, 6, 0, 0, 2, f.va);
                        write_cp15(&mut self.uc, 5, 0, 0, 1, f.fsr & !(1 << 11));
                        // LR = the instruction's address + 4 (ARM and Thumb);
                        // IFAR = the address that faulted, which differs for
                        // a Thumb-2 instruction straddling into the next page.
                        take_exception(&mut self.uc, ExcKind::PrefetchAbort, pc as u32 + 4, pc as u32, f.va, f.fsr & !(1 << 11));
                    } else {
                        write_cp15(&mut self.uc, 6, 0, 0, 0, f.va);
                        write_cp15(&mut self.uc, 5, 0, 0, 0, f.fsr);
                        take_exception(&mut self.uc, ExcKind::DataAbort, pc as u32 + 8, pc as u32, f.va, f.fsr);
                    }
                    if let Some(stop) = self.uc.get_data_mut().stop.take() {
                        return stop;
                    }
                    pc = self.uc.reg_read(RegisterARM::PC).unwrap_or(0);
                }
                Err(e) => return Stop::Error(format!("unicorn stopped with {:?} at pc {:#010x}", e, pc)),
            }
        }
    }

    pub fn bus(&self) -> &B {
        &self.uc.get_data().bus
    }
    pub fn bus_mut(&mut self) -> &mut B {
        &mut self.uc.get_data_mut().bus
    }
    /// Count retired instructions per block address from now on (a
    /// second block hook: slower, for `--profile`). Translated code is
    /// dropped so that every block gets the hook.
    pub fn enable_profile(&mut self) -> Result<(), CpuError> {
        if self.uc.get_data().profile.is_some() {
            return Ok(());
        }
        self.uc.get_data_mut().profile = Some(Default::default());
        ucr(
            "profile hook",
            self.uc.add_block_hook(1, 0, |uc: &mut Unicorn<State<B>>, address: u64, size: u32| {
                if let Some(p) = uc.get_data_mut().profile.as_mut() {
                    *p.entry(address).or_default() += block_insns(size);
                }
            }),
        )?;
        let _ = self.uc.ctl_flush_tb();
        Ok(())
    }
    /// Hand the bus's [`Breaker`] the CPU whenever it is about to execute
    /// the instruction at one of `addrs` (virtual addresses: kernel
    /// function entries, return sites). Only those instructions get the
    /// hook (Unicorn checks a code hook's range when it translates a
    /// block); translated code is dropped so that blocks already
    /// translated get it too.
    pub fn add_breakpoints(&mut self, addrs: &[u32]) -> Result<(), CpuError> {
        for &a in addrs {
            ucr(
                "breakpoint hook",
                self.uc.add_code_hook(a as u64, a as u64, move |uc: &mut Unicorn<State<B>>, address: u64, _size: u32| {
                    let mut regs = BreakRegs::default();
                    for (i, r) in [RegisterARM::R0, RegisterARM::R1, RegisterARM::R2, RegisterARM::R3].iter().enumerate() {
                        regs.args[i] = uc.reg_read(*r).unwrap_or(0) as u32;
                    }
                    regs.sp = uc.reg_read(RegisterARM::SP).unwrap_or(0) as u32;
                    regs.lr = uc.reg_read(RegisterARM::LR).unwrap_or(0) as u32;
                    let st = uc.get_data_mut();
                    let now = st.now();
                    let ram = st.ram.clone();
                    let Some(mut b) = st.bus.take_breaker() else { return };
                    b.hit(address as u32, &regs, now, &ram, &mut EngineTlb { uc });
                    uc.get_data_mut().bus.put_breaker(b);
                    dirty_sync(uc);
                }),
            )?;
        }
        let _ = self.uc.ctl_flush_tb();
        Ok(())
    }
    /// The profile so far: (block address, retired instructions), and
    /// start a new one.
    pub fn take_profile(&mut self) -> Vec<(u64, u64)> {
        match self.uc.get_data_mut().profile.as_mut() {
            Some(p) => std::mem::take(p).into_iter().collect(),
            None => Vec::new(),
        }
    }
    pub fn stats(&self) -> CpuStats {
        let st = self.uc.get_data();
        CpuStats { insns: st.fast().insns(), idle_ns: st.idle_ns, blocks: st.fast().c.blocks, ..st.stats }
    }
    pub fn now(&self) -> u64 {
        self.uc.get_data().now()
    }
    /// Guest stores to RAM that took the engine's not-dirty slow path so
    /// far (the vendored Unicorn's `uc_cmaemu_slow_stores`).
    pub fn slow_stores(&self) -> u64 {
        // SAFETY: a valid engine handle; the call only reads a counter.
        unsafe { unicorn_engine_sys::uc_cmaemu_slow_stores(self.uc.get_handle() as *mut unicorn_engine_sys::uc_engine) }
    }
    /// How many times the engine's main loop entered translated code so
    /// far (the vendored Unicorn's `uc_cmaemu_tb_entries`).
    pub fn tb_entries(&self) -> u64 {
        // SAFETY: a valid engine handle; the call only reads a counter.
        unsafe { unicorn_engine_sys::uc_cmaemu_tb_entries(self.uc.get_handle() as *mut unicorn_engine_sys::uc_engine) }
    }
    /// How many times translated code found its next block through the
    /// jump lookup so far (the vendored Unicorn's `uc_cmaemu_tb_lookups`).
    pub fn tb_lookups(&self) -> u64 {
        // SAFETY: a valid engine handle; the call only reads a counter.
        unsafe { unicorn_engine_sys::uc_cmaemu_tb_lookups(self.uc.get_handle() as *mut unicorn_engine_sys::uc_engine) }
    }
    /// How many copy-on-write arms looked at every TLB entry (more than
    /// four virtual pages had stored into the page since its last arm; the
    /// vendored Unicorn's `uc_cmaemu_preserve_scans`).
    pub fn preserve_scans(&self) -> u64 {
        // SAFETY: a valid engine handle; the call only reads a counter.
        unsafe { unicorn_engine_sys::uc_cmaemu_preserve_scans(self.uc.get_handle() as *mut unicorn_engine_sys::uc_engine) }
    }
    pub fn last_exception(&self) -> Option<ExcRecord> {
        self.uc.get_data().last_exc
    }
    /// General registers r0..r15 and CPSR.
    pub fn regs(&self) -> ([u32; 16], u32) {
        (read_gprs(&self.uc), self.uc.reg_read(RegisterARM::CPSR).unwrap_or(0) as u32)
    }
    /// Guest RAM (for host-side readers and DMA masters).
    pub fn ram(&self) -> &GuestRam {
        &self.uc.get_data().ram
    }
    /// Raise the instruction limit (for stepping APIs).
    pub fn set_max_insns(&mut self, max: u64) {
        let st = self.uc.get_data_mut();
        st.max_insns = max;
        st.rearm();
    }
    /// Drop cached translations and translated code (after host writes to
    /// page tables or code).
    pub fn flush_caches(&mut self) {
        let _ = self.uc.ctl_flush_tlb();
        let _ = self.uc.ctl_flush_tb();
    }
    /// CP15 translation registers (for the host page-table walker).
    pub fn mmu_regs(&self) -> MmuRegs {
        mmu_regs(&self.uc)
    }
}
