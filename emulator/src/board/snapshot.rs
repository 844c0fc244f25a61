//! Machine snapshots: the whole board (CPU context, RAM, every device, the
//! console and the board's own timing state) saved after a boot and put
//! back in milliseconds, so tests and sweeps on a slow-booting kernel (the
//! real Linux one) boot once. A run restored from a snapshot retires the
//! same instructions and prints the same console bytes as the run that
//! went on from the point the snapshot was taken.
//!
//! In-process only: the engine's register context holds host pointers.
//! Runs with verifiers, traces or frame recording are refused (their state
//! lives in files and threads a snapshot cannot hold).
use std::collections::VecDeque;

use super::console::{ConsoleState, Input};
use super::machine::Board;
use super::step::Machine;
use super::unmodelled::NullDevices;
use crate::cpu::snapshot::CpuSnapshot;
use crate::cpu::CpuError;
use crate::devices::{camera::Camera, gic::Gic, pl011::Pl011, pl111::Pl111, pl310::Pl310, scu::Scu, sp804::Sp804, sysregs::PowerEvent, sysregs::Sysregs, twd::Twd};
use crate::memory::{RamSnapshot, RamSnapshotError};

/// Why a snapshot could not be taken or restored.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot: runs with verifiers or traces cannot be saved (start the machine without them)")]
    Instrumented,
    #[error("snapshot: runs that record frames cannot be saved")]
    RecordingFrames,
    #[error("snapshot: the console reads from a terminal or a pipe, which cannot be rewound")]
    LiveInput,
    #[error("snapshot: {0}")]
    Ram(#[from] RamSnapshotError),
    #[error("snapshot: {0}")]
    Cpu(#[from] CpuError),
}

/// The devices and the board's own state (everything but CPU and RAM).
#[derive(Clone)]
struct BoardState {
    sysregs: Sysregs,
    uart0: Pl011,
    timer01: Sp804,
    gic: Gic,
    clcd: Pl111,
    camera: Camera,
    scu: Scu,
    twd: Twd,
    l2: Pl310,
    null: NullDevices,
    next_frame: u64,
    frame_index: u64,
    activity: bool,
    last_frame: Option<(u32, u32, Vec<u8>)>,
    frames: (u64, u64),
    scanout: (u64, u64),
    stutter: super::scanout::Stutter,
    console: ConsoleState,
    script: VecDeque<u8>,
    /// Bytes in the console capture when saved.
    captured: usize,
    power: Option<PowerEvent>,
    eof_at: Option<u64>,
    unhandled: u64,
}

/// A saved machine (see the module documentation).
pub struct Snapshot {
    cpu: CpuSnapshot,
    ram: RamSnapshot,
    board: BoardState,
    started: bool,
}

impl Snapshot {
    /// Bytes of guest RAM the snapshot holds (non-zero pages only).
    pub fn ram_bytes(&self) -> usize {
        self.ram.saved_bytes()
    }
}

impl Board {
    fn save_state(&self) -> Result<BoardState, SnapshotError> {
        if self.monitor.is_some() || self.linux.is_some() {
            return Err(SnapshotError::Instrumented);
        }
        if self.recorder.is_some() {
            return Err(SnapshotError::RecordingFrames);
        }
        let script = match &self.console.input {
            Input::None => VecDeque::new(),
            Input::Script(q) => q.clone(),
            Input::Lines(_) | Input::Tty(_) => return Err(SnapshotError::LiveInput),
        };
        Ok(BoardState {
            sysregs: self.sysregs.clone(),
            uart0: self.uart0.clone(),
            timer01: self.timer01.clone(),
            gic: self.gic.clone(),
            clcd: self.clcd.clone(),
            camera: self.camera.clone(),
            scu: self.scu.clone(),
            twd: self.twd.clone(),
            l2: self.l2.clone(),
            null: self.null.clone(),
            next_frame: self.next_frame,
            frame_index: self.frame_index,
            activity: self.activity,
            last_frame: self.last_frame.clone(),
            frames: self.frames,
            scanout: self.scanout,
            stutter: self.stutter,
            console: self.console.save(),
            script,
            captured: self.console.capture.as_ref().map_or(0, |c| c.0.lock().len()),
            power: self.power,
            eof_at: self.eof_at,
            unhandled: self.unhandled,
        })
    }

    fn restore_state(&mut self, s: &BoardState) {
        self.sysregs = s.sysregs.clone();
        self.uart0 = s.uart0.clone();
        self.timer01 = s.timer01.clone();
        self.gic = s.gic.clone();
        self.clcd = s.clcd.clone();
        self.camera = s.camera.clone();
        self.scu = s.scu.clone();
        self.twd = s.twd.clone();
        self.l2 = s.l2.clone();
        self.null = s.null.clone();
        self.next_frame = s.next_frame;
        self.frame_index = s.frame_index;
        self.activity = s.activity;
        self.last_frame = s.last_frame.clone();
        self.frames = s.frames;
        self.scanout = s.scanout;
        self.stutter = s.stutter;
        self.console.restore(&s.console);
        if let Input::Script(q) = &mut self.console.input {
            *q = s.script.clone();
        }
        if let Some(c) = &self.console.capture {
            c.0.lock().truncate(s.captured);
        }
        self.power = s.power;
        self.eof_at = s.eof_at;
        self.unhandled = s.unhandled;
        // stepping state: whatever the caller asks next
        self.watch = None;
        self.pause_when_starved = false;
        self.paused = false;
        self.time_limit = None;
        self.timed_out = false;
    }
}

impl Machine {
    /// Save the whole machine (between steps). The run goes on unchanged.
    pub fn save(&mut self) -> Result<Snapshot, SnapshotError> {
        let board = self.cpu().bus().save_state()?;
        let ram = self.ram().save();
        let cpu = self.cpu().save()?;
        Ok(Snapshot { cpu, ram, board, started: self.started() })
    }

    /// Put the machine back as `s` saved it (a snapshot of this machine:
    /// same RAM layout and images). Console output captured since the
    /// snapshot is dropped.
    pub fn restore(&mut self, s: &Snapshot) -> Result<(), SnapshotError> {
        self.ram().restore(&s.ram)?;
        self.cpu().restore(&s.cpu)?;
        self.cpu().bus_mut().restore_state(&s.board);
        self.set_started(s.started);
        Ok(())
    }
}
