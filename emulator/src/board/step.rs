//! Driving a booted board step by step (tests, scenarios, the gdb stub):
//! run until a text appears, until the guest waits for input, for a time
//! or an instruction budget.
use super::console::{Capture, Console, Input};
use super::machine::{build, Board, BoardError, RunOptions};
use super::run::final_check;
use super::profile::Symbolizer;
use super::run::Exit;
use crate::cpu::{Cpu, CpuStats, Stop};
use crate::memory::GuestRam;

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

    /// As [`Machine::linux`] with explicit options (e.g.
    /// `RunOptions::linux_debuginfo`: read the real kernel's mm state at
    /// quiet points and check its migrations).
    pub fn linux_with_options(kernel: &[u8], initrd: Option<&[u8]>, dtb: &[u8], ram_size: u64, max_insns: u64, opts: RunOptions) -> Result<Machine, BoardError> {
        let capture = Capture::default();
        let console = Console::new(Input::Script(Default::default()), false, Some(capture.clone()));
        let fw = crate::loader::images::FIRMWARE_ELF;
        let (cpu, entry, symbols) = build(kernel, initrd, fw, dtb, ram_size, max_insns, console, u64::MAX, opts)?;
        Ok(Machine { cpu, started: false, entry, capture, max_insns, step_limit: None, symbols })
    }

    /// The real kernel's watcher (with `RunOptions::linux_debuginfo`).
    pub fn linux_session(&self) -> Option<&crate::instrument::linux::LinuxSession> {
        self.cpu.bus().linux.as_deref()
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
        // what the verifiers' thread checked is read from here on
        if let Some(m) = self.cpu.bus_mut().monitor.as_mut() {
            m.join();
        }
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
        let exit = self.exit_of(stop, "reboot is not supported while stepping");
        final_check(&mut self.cpu);
        Step::Exited(exit)
    }

    /// How the run ended, from why the CPU stopped ([`Board::exit_of`]);
    /// a reboot is the error `reboot` (only [`boot`](super::run::boot)
    /// reboots).
    pub fn exit_of(&mut self, stop: Stop, reboot: &str) -> Exit {
        self.cpu.bus_mut().exit_of(stop).unwrap_or_else(|| Exit::Error(reboot.into()))
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

    /// Run until the CPU next waits in WFI with no interrupt to take: a
    /// quiet point, where a kernel's lists are not half-updated (on one
    /// CPU, only the idle task executes WFI, and never inside a spinlock or
    /// an interrupt handler). Host readers of a real kernel's state
    /// (`introspect::linux`) read there.
    pub fn run_until_quiet(&mut self) -> Step {
        self.cpu.bus_mut().pause_at_idle = true;
        let s = self.step();
        self.cpu.bus_mut().pause_at_idle = false;
        s
    }

    /// Send a shell command and run until the next prompt.
    pub fn command(&mut self, cmd: &str) -> Step {
        self.send(&format!("{cmd}\n"));
        self.run_until_idle()
    }

    /// Whether the guest has started running (snapshots).
    pub(super) fn started(&self) -> bool {
        self.started
    }
    pub(super) fn set_started(&mut self, started: bool) {
        self.started = started;
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
    /// Where the guest's introspection descriptor lies (None: the guest
    /// has not published it, or the machine runs without a monitor).
    pub fn desc_pa(&self) -> Option<u64> {
        self.cpu.bus().monitor.as_ref().and_then(|m| m.desc_pa)
    }
    /// Violations the verifiers reported so far.
    pub fn violations(&self) -> Vec<crate::findings::Violation> {
        self.cpu.bus().monitor.as_ref().map(|m| m.violations.clone()).unwrap_or_default()
    }
    /// The events collected so far (guest trace ring, DMA, frames,
    /// violations), in order; none with `RunOptions::drop_events`.
    pub fn events(&self) -> &[crate::trace::Event] {
        self.cpu.bus().monitor.as_ref().map(|m| m.events()).unwrap_or(&[])
    }
    /// Displayed frames checked against the camera: (ok, bad); and the
    /// camera/display frame counts.
    pub fn frames(&self) -> ((u64, u64), (u64, u64)) {
        let b = self.cpu.bus();
        (b.scanout, b.frames)
    }
    /// Displayed camera frames that repeated the one before, and camera
    /// frames skipped between two displayed ones.
    pub fn stutter(&self) -> (u64, u64) {
        let s = self.cpu.bus().stutter;
        (s.repeated, s.dropped)
    }
    /// The last displayed frame (width, height, RGBA).
    pub fn last_frame(&self) -> Option<(u32, u32, Vec<u8>)> {
        self.cpu.bus().last_frame.clone()
    }
    /// Whether the guest's descriptor was accepted (verification is live).
    /// Migrated pages' doorbells served so far without a drain (light
    /// doorbells: `Session::light_doorbell`); 0 without verification.
    pub fn light_doorbells_served(&self) -> u64 {
        self.cpu.bus().monitor.as_ref().map_or(0, |m| m.light_served)
    }

    pub fn verifying(&self) -> bool {
        self.cpu.bus().monitor.as_ref().is_some_and(|m| m.verifying())
    }

    /// Whether the instrumentation attached to the guest's descriptor
    /// (and drains its trace ring), checking or not.
    pub fn attached(&self) -> bool {
        self.cpu.bus().monitor.as_ref().is_some_and(|m| m.attached())
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
