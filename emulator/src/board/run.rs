//! The run loop: boot the board, run it to its end (rebooting when the
//! guest asks), and turn why the CPU stopped into how the run ended — the
//! one mapping from a [`Stop`] to an [`Exit`] ([`Board::exit_of`]).
use super::console::{Console, Input};
use super::machine::{build, Board, BoardError, BootConfig};
use crate::cpu::Cpu;
use crate::cpu::{CpuStats, ExcRecord, Stop};
use crate::devices::sysregs::PowerEvent;
use cmaemu_abi::boot::{POWEROFF_CODE_MASK, POWEROFF_PANIC};
use std::time::{Duration, Instant};

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
    /// Displayed camera frames repeated, camera frames dropped between
    /// displayed ones (as `trace summary`'s display table counts them).
    pub stutter: (u64, u64),
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

impl Board {
    /// How the run ended, from why the CPU stopped: the one mapping from a
    /// [`Stop`] to an [`Exit`]. None: the guest asked for a reboot (the
    /// caller reboots or refuses).
    pub fn exit_of(&mut self, stop: Stop) -> Option<Exit> {
        Some(match stop {
            Stop::Device if self.console.quit => Exit::UserQuit,
            Stop::Device => match self.power.take() {
                Some(PowerEvent::Reboot) => return None,
                Some(PowerEvent::Shutdown { code }) if code & POWEROFF_PANIC != 0 => Exit::Panic(code),
                Some(PowerEvent::Shutdown { code }) => Exit::Poweroff((code & POWEROFF_CODE_MASK) as u8),
                None if self.monitor.as_ref().is_some_and(|m| m.stop_requested) => Exit::Violation,
                None => Exit::Error("stopped without a power event".into()),
            },
            Stop::MaxInsns => Exit::MaxInsns,
            Stop::Idle => Exit::IdleAfterEof,
            Stop::Error(e) => Exit::Error(e),
        })
    }
}

/// The run is over: drain the guest's ring and run every state check once
/// more on the final state (at every exit, whatever ended the run).
pub(super) fn final_check(cpu: &mut Cpu<'static, Board>) {
    if let Some(m) = cpu.bus_mut().monitor.as_mut() {
        m.request_final_check();
    }
    cpu.serve();
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
        cpu.bus_mut().console.flush();
        let exit = match cpu.bus_mut().exit_of(stop) {
            Some(exit) => exit,
            None if reboots < 16 => {
                reboots += 1;
                // keep the console (and its pending input) across the reset
                console = std::mem::replace(&mut cpu.bus_mut().console, Console::new(Input::None, false, None));
                continue;
            }
            None => Exit::Error("too many reboots".into()),
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
        let (mut events, mut violations, mut violation_summary, mut snapshot) = (events, violations, violation_summary, snapshot);
        if let Some(l) = b.linux.as_mut() {
            if let Some(e) = &l.error {
                eprintln!("cmaemu: linux introspection: {e}");
            }
            events.extend(l.take_events());
            events.sort_by_key(|e| e.ts_ns);
            for v in &l.violations {
                violation_summary.add(v);
            }
            violations.extend(l.violations.iter().cloned());
            if snapshot.is_none() {
                snapshot = l.last.take();
            }
        }
        let last_frame = b.last_frame.take();
        let frames = b.frames;
        let scanout = b.scanout;
        let stutter = (b.stutter.repeated, b.stutter.dropped);
        return Ok(Outcome {
            scanout,
            stutter,
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
