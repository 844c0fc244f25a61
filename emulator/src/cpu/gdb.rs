//! A GDB remote stub for the Cortex-A9 (the `gdbstub` crate), like QEMU's
//! `-s -S`: registers r0-r15 and CPSR, memory through the guest's virtual
//! addresses (the CPU's own MMU registers and page-table walk; physical
//! when the MMU is off), software breakpoints, single step, continue and
//! Ctrl-C.
//!
//! Breakpoints are Unicorn code hooks on their addresses, installed only
//! while gdb has any: with none set the run loop is exactly the normal one.
//! A single step is a code hook on every address that stops the run at the
//! second instruction it sees (so an instruction that traps stops at its
//! vector, as on hardware). The run goes on in chunks of instructions so
//! that the stub can notice Ctrl-C from gdb.
use super::{read_gprs, Bus, Cpu, CpuError, Stop, GPRS};
use crate::memory::walk::{self, Access};
use gdbstub::arch::Arch;
use gdbstub::common::Signal;
use gdbstub::conn::ConnectionExt;
use gdbstub::stub::run_blocking::{BlockingEventLoop, Event, WaitForStopReasonError};
use gdbstub::stub::{DisconnectReason, GdbStub, SingleThreadStopReason};
use gdbstub::target::ext::base::singlethread::{
    SingleThreadBase, SingleThreadResume, SingleThreadResumeOps, SingleThreadSingleStep, SingleThreadSingleStepOps,
};
use gdbstub::target::ext::base::BaseOps;
use gdbstub::target::ext::breakpoints::{Breakpoints, BreakpointsOps, SwBreakpoint, SwBreakpointOps};
use gdbstub::target::{Target, TargetError, TargetResult};
use gdbstub_arch::arm::reg::id::ArmCoreRegId;
use gdbstub_arch::arm::reg::ArmCoreRegs;
use gdbstub_arch::arm::ArmBreakpointKind;
use std::cell::RefCell;
use std::net::{TcpListener, TcpStream};
use std::rc::Rc;
use unicorn_engine::{RegisterARM, UcHookId};

/// Instructions run between two looks at the gdb connection.
const CHUNK: u64 = 2_000_000;
/// The most bytes one `m` packet may read: what fits a reply in the
/// packet size we advertise (4 KiB; gdb asks for at most that). `gdbstub`
/// would serve any length chunk by chunk, so `m0,ffffffff` streamed all of
/// flash and RAM as hex. QEMU refuses more than half its packet size with
/// `E22`; we end the reply with `E16` (EINVAL) after one packet's worth.
pub const MAX_MEM_READ: usize = 4 << 10;
/// Marks a stop that the stub's own hooks asked for.
const GDB_STOP: &str = "\u{0}gdb-stop";

/// The Cortex-A9 as gdb sees it: the classic ARM register file (r0-r15,
/// the FPA slots, CPSR), architecture `arm`.
pub enum CortexA9 {}

impl Arch for CortexA9 {
    type Usize = u32;
    type Registers = ArmCoreRegs;
    type RegId = ArmCoreRegId;
    type BreakpointKind = ArmBreakpointKind;

    fn target_description_xml() -> Option<&'static str> {
        Some(r#"<?xml version="1.0"?><!DOCTYPE target SYSTEM "gdb-target.dtd"><target version="1.0"><architecture>arm</architecture></target>"#)
    }
}

#[derive(Default)]
struct Shared {
    /// A breakpoint stopped the run at this address.
    hit: Option<u32>,
    /// Don't stop at this breakpoint address once (resuming from it).
    skip: Option<u32>,
    /// Single step: instructions seen so far; the step is done at 2.
    stepping: Option<u32>,
    step_done: bool,
}

enum ExecMode {
    Continue,
    Step,
}

/// How a debug session ended.
#[derive(Debug)]
pub enum GdbEnd {
    /// The run stopped by itself (power off, limit, error).
    Stopped(Stop),
    /// gdb asked to kill the target.
    Killed,
}

/// The target gdbstub drives: the CPU, its breakpoints, the run limit.
pub struct GdbTarget<'c, B: Bus + 'static> {
    cpu: &'c mut Cpu<'static, B>,
    breakpoints: Vec<(u32, UcHookId)>,
    step_hook: Option<UcHookId>,
    shared: Rc<RefCell<Shared>>,
    mode: ExecMode,
    max_insns: u64,
    /// The run ended (the guest cannot go on).
    ended: Option<Stop>,
    /// gdb resumed the guest at least once in this session.
    resumed: bool,
    /// Bytes received from gdb so far (a change: a new packet).
    received: Rc<std::cell::Cell<u64>>,
    /// (`received` at the current `m` packet, bytes it has read so far).
    read_run: (u64, usize),
}

/// A connection that counts the bytes gdb sends, so the target can tell
/// one packet's memory reads from the next one's.
struct CountingConn<C> {
    inner: C,
    received: Rc<std::cell::Cell<u64>>,
}

impl<C: gdbstub::conn::Connection> gdbstub::conn::Connection for CountingConn<C> {
    type Error = C::Error;
    fn write(&mut self, byte: u8) -> Result<(), Self::Error> {
        self.inner.write(byte)
    }
    fn write_all(&mut self, buf: &[u8]) -> Result<(), Self::Error> {
        self.inner.write_all(buf)
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        self.inner.flush()
    }
    fn on_session_start(&mut self) -> Result<(), Self::Error> {
        self.inner.on_session_start()
    }
}

impl<C: ConnectionExt> ConnectionExt for CountingConn<C> {
    fn read(&mut self) -> Result<u8, Self::Error> {
        let b = self.inner.read()?;
        self.received.set(self.received.get() + 1);
        Ok(b)
    }
    fn peek(&mut self) -> Result<Option<u8>, Self::Error> {
        self.inner.peek()
    }
}

impl<'c, B: Bus + 'static> GdbTarget<'c, B> {
    pub fn new(cpu: &'c mut Cpu<'static, B>, max_insns: u64) -> Self {
        GdbTarget {
            cpu,
            breakpoints: Vec::new(),
            step_hook: None,
            shared: Rc::default(),
            mode: ExecMode::Continue,
            max_insns,
            ended: None,
            resumed: false,
            received: Rc::default(),
            read_run: (u64::MAX, 0),
        }
    }

    fn pc(&self) -> u32 {
        self.cpu.uc.reg_read(RegisterARM::PC).unwrap_or(0) as u32
    }

    /// Guest virtual → physical, for the debugger (no permission checks
    /// beyond readability at PL1; identity while the MMU is off).
    fn translate(&self, va: u32) -> Option<u64> {
        let mut regs = super::mmu_regs(&self.cpu.uc);
        if regs.sctlr & 1 == 0 {
            return Some(va as u64);
        }
        regs.privileged = true;
        let ram = &self.cpu.uc.get_data().ram;
        walk::translate(&regs, va, Access::Read, &mut |pa| ram.read_u32(pa)).ok().map(|t| t.pa)
    }

    fn read_phys(&self, pa: u64, buf: &mut [u8]) -> bool {
        let ram = &self.cpu.uc.get_data().ram;
        if ram.read(pa, buf).is_ok() {
            return true;
        }
        // flash (the firmware) at 0; never MMIO (reads have side effects)
        pa + (buf.len() as u64) <= 64 << 20 && self.cpu.uc.mem_read(pa, buf).is_ok()
    }

    fn install_step_hook(&mut self) {
        // a step requested again before the last one ran reuses its hook
        // (a second hook would leak: only one id is kept to remove)
        if self.step_hook.is_some() {
            return;
        }
        let sh = self.shared.clone();
        let id = self.cpu.uc.add_code_hook(1, 0, move |uc, _addr, _size| {
            let mut s = sh.borrow_mut();
            if let Some(n) = s.stepping.as_mut() {
                *n += 1;
                if *n >= 2 {
                    s.stepping = None;
                    s.step_done = true;
                    uc.get_data_mut().stop = Some(Stop::Error(GDB_STOP.into()));
                    let _ = uc.emu_stop();
                }
            }
        });
        if let Ok(id) = id {
            self.step_hook = Some(id);
            self.cpu.flush_caches();
        }
    }

    fn remove_step_hook(&mut self) {
        if let Some(id) = self.step_hook.take() {
            let _ = self.cpu.uc.remove_hook(id);
            self.cpu.flush_caches();
        }
    }

    /// Run one chunk in the current mode; `Some` when the target stopped.
    fn run_chunk(&mut self) -> Option<SingleThreadStopReason<u32>> {
        if let Some(s) = &self.ended {
            return Some(stop_reason(s));
        }
        let insns = self.cpu.stats().insns;
        if insns >= self.max_insns {
            self.ended = Some(Stop::MaxInsns);
            return Some(stop_reason(&Stop::MaxInsns));
        }
        self.cpu.set_max_insns(insns.saturating_add(CHUNK).min(self.max_insns));
        let stop = self.cpu.resume();
        self.cpu.set_max_insns(self.max_insns);
        let mut sh = self.shared.borrow_mut();
        sh.skip = None;
        if let Some(addr) = sh.hit.take() {
            drop(sh);
            self.remove_step_hook();
            let _ = addr;
            return Some(SingleThreadStopReason::SwBreak(()));
        }
        if std::mem::take(&mut sh.step_done) {
            drop(sh);
            self.remove_step_hook();
            return Some(SingleThreadStopReason::DoneStep);
        }
        drop(sh);
        match stop {
            Stop::MaxInsns if self.cpu.stats().insns < self.max_insns => None,
            Stop::Error(ref e) if e == GDB_STOP => None,
            s => {
                self.remove_step_hook();
                let r = stop_reason(&s);
                self.ended = Some(s);
                Some(r)
            }
        }
    }

    fn prepare_resume(&mut self) {
        self.resumed = true;
        let pc = self.pc();
        let mut sh = self.shared.borrow_mut();
        sh.hit = None;
        sh.step_done = false;
        sh.skip = self.breakpoints.iter().any(|(a, _)| *a == pc).then_some(pc);
    }

    fn clear_all_breakpoints(&mut self) {
        for (_, id) in std::mem::take(&mut self.breakpoints) {
            let _ = self.cpu.uc.remove_hook(id);
        }
        self.remove_step_hook();
        self.cpu.flush_caches();
    }
}

fn stop_reason(s: &Stop) -> SingleThreadStopReason<u32> {
    match s {
        Stop::Device | Stop::Idle => SingleThreadStopReason::Exited(0),
        Stop::MaxInsns => SingleThreadStopReason::Terminated(Signal::SIGXCPU),
        Stop::Error(_) => SingleThreadStopReason::Terminated(Signal::SIGSEGV),
    }
}

impl<'c, B: Bus + 'static> Target for GdbTarget<'c, B> {
    type Arch = CortexA9;
    type Error = CpuError;

    fn base_ops(&mut self) -> BaseOps<'_, Self::Arch, Self::Error> {
        BaseOps::SingleThread(self)
    }

    fn support_breakpoints(&mut self) -> Option<BreakpointsOps<'_, Self>> {
        Some(self)
    }
}

impl<'c, B: Bus + 'static> SingleThreadBase for GdbTarget<'c, B> {
    fn read_registers(&mut self, regs: &mut ArmCoreRegs) -> TargetResult<(), Self> {
        let r = read_gprs(&self.cpu.uc);
        regs.r.copy_from_slice(&r[..13]);
        regs.sp = r[13];
        regs.lr = r[14];
        regs.pc = r[15];
        regs.cpsr = self.cpu.uc.reg_read(RegisterARM::CPSR).unwrap_or(0) as u32;
        Ok(())
    }

    fn write_registers(&mut self, regs: &ArmCoreRegs) -> TargetResult<(), Self> {
        // CPSR first: a mode change switches the banked SP/LR.
        let uc = &mut self.cpu.uc;
        uc.reg_write(RegisterARM::CPSR, regs.cpsr as u64).map_err(|_| TargetError::NonFatal)?;
        for (i, reg) in GPRS.iter().enumerate() {
            let v = match i {
                0..=12 => regs.r[i],
                13 => regs.sp,
                14 => regs.lr,
                _ => regs.pc,
            };
            uc.reg_write(*reg, v as u64).map_err(|_| TargetError::NonFatal)?;
        }
        Ok(())
    }

    fn read_addrs(&mut self, start: u32, data: &mut [u8]) -> TargetResult<usize, Self> {
        // gdbstub calls this once per buffer-sized chunk of one `m` packet
        let packet = self.received.get();
        if self.read_run.0 != packet {
            self.read_run = (packet, 0);
        }
        if self.read_run.1 >= MAX_MEM_READ {
            return Err(TargetError::Errno(22)); // EINVAL, as QEMU's E22
        }
        self.read_run.1 += data.len();
        let mut done = 0usize;
        while done < data.len() {
            let va = start.wrapping_add(done as u32);
            let in_page = (0x1000 - (va & 0xfff)) as usize;
            let n = in_page.min(data.len() - done);
            let Some(pa) = self.translate(va) else { break };
            if !self.read_phys(pa, &mut data[done..done + n]) {
                break;
            }
            done += n;
        }
        if done == 0 && !data.is_empty() {
            return Err(TargetError::Errno(14)); // EFAULT
        }
        Ok(done)
    }

    fn write_addrs(&mut self, start: u32, data: &[u8]) -> TargetResult<(), Self> {
        let mut done = 0usize;
        while done < data.len() {
            let va = start.wrapping_add(done as u32);
            let in_page = (0x1000 - (va & 0xfff)) as usize;
            let n = in_page.min(data.len() - done);
            let pa = self.translate(va).ok_or(TargetError::Errno(14))?;
            self.cpu.uc.get_data().ram.write(pa, &data[done..done + n]).map_err(|_| TargetError::Errno(14))?;
            done += n;
        }
        // the bytes may be code Unicorn has translated
        self.cpu.flush_caches();
        Ok(())
    }

    fn support_resume(&mut self) -> Option<SingleThreadResumeOps<'_, Self>> {
        Some(self)
    }
}

impl<'c, B: Bus + 'static> SingleThreadResume for GdbTarget<'c, B> {
    fn resume(&mut self, _signal: Option<Signal>) -> Result<(), Self::Error> {
        self.mode = ExecMode::Continue;
        self.prepare_resume();
        Ok(())
    }

    fn support_single_step(&mut self) -> Option<SingleThreadSingleStepOps<'_, Self>> {
        Some(self)
    }
}

impl<'c, B: Bus + 'static> SingleThreadSingleStep for GdbTarget<'c, B> {
    fn step(&mut self, _signal: Option<Signal>) -> Result<(), Self::Error> {
        self.mode = ExecMode::Step;
        self.prepare_resume();
        self.shared.borrow_mut().stepping = Some(0);
        self.install_step_hook();
        Ok(())
    }
}

impl<'c, B: Bus + 'static> Breakpoints for GdbTarget<'c, B> {
    fn support_sw_breakpoint(&mut self) -> Option<SwBreakpointOps<'_, Self>> {
        Some(self)
    }
}

impl<'c, B: Bus + 'static> SwBreakpoint for GdbTarget<'c, B> {
    fn add_sw_breakpoint(&mut self, addr: u32, _kind: ArmBreakpointKind) -> TargetResult<bool, Self> {
        if self.breakpoints.iter().any(|(a, _)| *a == addr) {
            return Ok(true);
        }
        let sh = self.shared.clone();
        let id = self
            .cpu
            .uc
            .add_code_hook(addr as u64, addr as u64, move |uc, at, _size| {
                let mut s = sh.borrow_mut();
                if s.skip == Some(at as u32) {
                    s.skip = None;
                    return;
                }
                s.skip = None;
                s.hit = Some(at as u32);
                s.stepping = None;
                uc.get_data_mut().stop = Some(Stop::Error(GDB_STOP.into()));
                let _ = uc.emu_stop();
            })
            .map_err(|err| TargetError::Fatal(CpuError::Unicorn { what: "breakpoint hook", err }))?;
        self.breakpoints.push((addr, id));
        self.cpu.flush_caches();
        Ok(true)
    }

    fn remove_sw_breakpoint(&mut self, addr: u32, _kind: ArmBreakpointKind) -> TargetResult<bool, Self> {
        let Some(i) = self.breakpoints.iter().position(|(a, _)| *a == addr) else { return Ok(false) };
        let (_, id) = self.breakpoints.remove(i);
        let _ = self.cpu.uc.remove_hook(id);
        self.cpu.flush_caches();
        Ok(true)
    }
}

struct EventLoop<'c, B, C>(std::marker::PhantomData<(&'c (), B, C)>);

impl<'c, B: Bus + 'static, C: ConnectionExt<Error = std::io::Error>> BlockingEventLoop for EventLoop<'c, B, C> {
    type Target = GdbTarget<'c, B>;
    type Connection = C;
    type StopReason = SingleThreadStopReason<u32>;

    fn wait_for_stop_reason(
        target: &mut Self::Target,
        conn: &mut Self::Connection,
    ) -> Result<Event<Self::StopReason>, WaitForStopReasonError<CpuError, std::io::Error>> {
        loop {
            match conn.peek() {
                Ok(Some(_)) => {
                    let b = conn.read().map_err(WaitForStopReasonError::Connection)?;
                    return Ok(Event::IncomingData(b));
                }
                Ok(None) => {}
                Err(e) => return Err(WaitForStopReasonError::Connection(e)),
            }
            if let Some(r) = target.run_chunk() {
                return Ok(Event::TargetStopped(r));
            }
        }
    }

    fn on_interrupt(_target: &mut Self::Target) -> Result<Option<Self::StopReason>, CpuError> {
        Ok(Some(SingleThreadStopReason::Signal(Signal::SIGINT)))
    }
}

/// Where the stub listens and whether the CPU waits for the debugger.
#[derive(Clone, Debug)]
pub struct GdbOptions {
    /// TCP port on 127.0.0.1 (QEMU's `-s`: 1234).
    pub port: u16,
    /// QEMU's `-S`: don't run the first instruction before gdb says so.
    pub wait: bool,
}

/// Bind the stub's socket (127.0.0.1 only).
pub fn listen(port: u16) -> std::io::Result<TcpListener> {
    TcpListener::bind(("127.0.0.1", port))
}

impl<B: Bus + 'static> Cpu<'static, B> {
    /// One debugger session on `conn` until it detaches, kills or the
    /// connection ends: how it ended, the stop that ended the run (if it
    /// did), and whether gdb resumed the guest. Breakpoints are removed.
    pub fn gdb_session<C: ConnectionExt<Error = std::io::Error>>(
        &mut self,
        conn: C,
        max_insns: u64,
    ) -> (Result<DisconnectReason, CpuError>, Option<Stop>, bool) {
        let mut target = GdbTarget::new(self, max_insns);
        let conn = CountingConn { inner: conn, received: target.received.clone() };
        let r = GdbStub::new(conn).run_blocking::<EventLoop<'_, B, CountingConn<C>>>(&mut target).map_err(|e| CpuError::GdbSession(e.to_string()));
        target.clear_all_breakpoints();
        (r, target.ended.take(), target.resumed)
    }

    /// Run from `entry` (the reset PC) with a GDB stub on `listener`: with
    /// `wait`, nothing runs before a debugger attached and resumed; without,
    /// the guest runs and a debugger may attach at any time (the guest
    /// stops when it does). After gdb detaches the guest runs on.
    pub fn run_with_gdb(&mut self, entry: u32, listener: &TcpListener, wait: bool, max_insns: u64) -> Result<GdbEnd, CpuError> {
        let _ = self.uc.reg_write(RegisterARM::PC, entry as u64);
        let mut pending: Option<TcpStream> = None;
        // -S: hold the CPU until a debugger has resumed it (a client that
        // leaves before that, e.g. a port probe, does not release it)
        let mut hold = wait;
        loop {
            if hold && pending.is_none() {
                listener.set_nonblocking(false).map_err(CpuError::GdbSocket)?;
                let (s, _) = listener.accept().map_err(CpuError::GdbAccept)?;
                pending = Some(s);
            }
            listener.set_nonblocking(true).map_err(CpuError::GdbSocket)?;
            if pending.is_none() {
                if let Ok((s, _)) = listener.accept() {
                    pending = Some(s);
                }
            }
            if let Some(conn) = pending.take() {
                let _ = conn.set_nonblocking(false);
                let (r, ended, resumed) = self.gdb_session(conn, max_insns);
                if resumed {
                    hold = false;
                }
                match r {
                    Ok(DisconnectReason::Kill) => return Ok(GdbEnd::Killed),
                    Ok(DisconnectReason::TargetExited(_)) | Ok(DisconnectReason::TargetTerminated(_)) => {
                        return Ok(GdbEnd::Stopped(ended.unwrap_or(Stop::Idle)));
                    }
                    Ok(DisconnectReason::Disconnect) => {}
                    Err(e) => eprintln!("cmaemu: gdb session ended: {e}"),
                }
                if let Some(s) = ended {
                    return Ok(GdbEnd::Stopped(s));
                }
                if hold {
                    continue;
                }
            }
            // run a chunk without a debugger, then look for one again
            let insns = self.stats().insns;
            if insns >= max_insns {
                return Ok(GdbEnd::Stopped(Stop::MaxInsns));
            }
            self.set_max_insns(insns.saturating_add(CHUNK * 50).min(max_insns));
            let stop = self.resume();
            self.set_max_insns(max_insns);
            match stop {
                Stop::MaxInsns if self.stats().insns < max_insns => {}
                s => return Ok(GdbEnd::Stopped(s)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_description_names_arm() {
        assert!(CortexA9::target_description_xml().unwrap().contains("<architecture>arm</architecture>"));
    }

    /// A bus with nothing on it.
    struct NullBus;

    impl Bus for NullBus {
        type Servicer = crate::cpu::NoServicer;
        type Breaker = crate::cpu::NoServicer;
        fn mmio_read(&mut self, _pa: u64, _size: usize, _now: u64) -> u64 {
            0
        }
        fn mmio_write(&mut self, _pa: u64, _size: usize, _value: u64, _now: u64) {}
        fn tick(&mut self, _now: u64) {}
        fn next_deadline(&self) -> u64 {
            u64::MAX
        }
        fn irq_pending(&self) -> bool {
            false
        }
        fn stop_requested(&self) -> bool {
            false
        }
        fn idle(&mut self, _now: u64) -> Option<u64> {
            None
        }
    }

    /// A step asked for twice before it ran (e.g. `vCont;s` then `s` on a
    /// session that ends) used to install a second step hook and forget
    /// the first, which stayed in the engine for good: every later hook
    /// removal walked a longer list (the gdb fuzz target slowed from
    /// 7,000 to 100 inputs/s). Each hook holds a reference to the shared
    /// state, so a leaked one shows in the count.
    #[test]
    fn a_step_requested_twice_leaves_no_hook_behind() {
        let ram = crate::cpu::GuestRam::new(0x6000_0000, 1 << 20).unwrap();
        let mut cpu = Cpu::new(NullBus, ram, 0x6000_0000, &[0u8; 0x1000], &[], 1_000).unwrap();
        let mut t = GdbTarget::new(&mut cpu, u64::MAX);
        t.step(None).unwrap();
        t.step(None).unwrap();
        assert!(matches!(t.add_sw_breakpoint(0x100, ArmBreakpointKind::Arm32), Ok(true)));
        t.clear_all_breakpoints();
        assert_eq!(Rc::strong_count(&t.shared), 1, "a hook closure still holds the shared state");
    }
}
