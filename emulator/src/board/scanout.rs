//! The board's DMA masters at each device tick: the camera's captures and
//! the CLCD's scan-out (each displayed frame checked against the frame the
//! camera wrote, saved or overlaid as asked), their transfers handed to
//! the instrumentation, and the frame boundaries the verifiers and the
//! trace run at.
use super::machine::{Board, FRAME_NS};
use crate::devices::camera::{CamFormat, FrameHeader};
use crate::trace::{Event, EventKind};
use crate::devices::MmioDevice;

/// Repeated and dropped frames among the displayed camera frames, counted
/// as `trace summary`'s display table counts them (`trace::summary::
/// stutters`): a vsync showing the same camera frame as the displayed one
/// before it repeats it; camera frames skipped between two displayed ones
/// were dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stutter {
    last: Option<u64>,
    pub repeated: u64,
    pub dropped: u64,
}

impl Stutter {
    /// A vsync scanned out camera frame `cam`.
    pub fn shown(&mut self, cam: u64) {
        if let Some(prev) = self.last {
            if cam == prev {
                self.repeated += 1;
            }
            self.dropped += cam.saturating_sub(prev.saturating_add(1));
        }
        self.last = Some(cam);
    }
}

impl Board {
    /// The camera writes the frames due by `now`; the CLCD scans out.
    pub(super) fn run_dma_masters(&mut self, now: u64) {
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
                let shown = self.check_scanout(&f.rgba, f.width, f.height, f.number);
                if let Some(cam) = shown {
                    self.stutter.shown(cam);
                }
                let period = self.clcd.frame_period_ns();
                self.dma_event(&f.transfer, now, period);
                if let Some(m) = &mut self.monitor {
                    let kind = EventKind::DisplayFrame { number: f.number, pa: f.transfer.pa, camera: shown };
                    m.notes.push(Event { ts_ns: now, frame: self.frame_index, kind });
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
    }

    /// A displayed camera frame must match what the camera wrote; returns
    /// the camera frame shown. (A picture without the camera's header — a
    /// framebuffer not written yet — is not a camera frame: not checked.)
    fn check_scanout(&mut self, rgba: &[u8], width: u32, height: u32, number: u64) -> Option<u64> {
        let has_header = FrameHeader::from_rgba(rgba, CamFormat::Xrgb8888).is_some() || FrameHeader::from_rgba(rgba, CamFormat::Rgb565).is_some();
        if !has_header || self.camera.records().next().is_none() {
            return None;
        }
        match self.camera.check_scanout(rgba, width, height) {
            Ok(rec) => {
                self.scanout.0 += 1;
                Some(rec.frame as u64)
            }
            Err(e) => {
                self.scanout.1 += 1;
                if self.scanout.1 <= 5 && self.opts.report {
                    eprintln!("cmaemu: display frame {number} does not match the camera: {e}");
                }
                None
            }
        }
    }

    /// A DMA master moved a frame; it took `dur_ns` (its frame period).
    fn dma_event(&mut self, t: &crate::devices::dma::DmaTransfer, now: u64, dur_ns: u64) {
        if let (Some(m), Some(dev)) = (&mut self.monitor, t.abi_device()) {
            let vt = crate::verify::DmaTransfer { device: dev, pa: t.pa, len: t.len, write: t.write };
            m.dma.push((vt, now, dur_ns));
        }
    }

    /// Frame boundaries for the verifiers and the trace.
    pub(super) fn schedule_frame(&mut self, now: u64) {
        if now >= self.next_frame {
            self.frame_index += now / FRAME_NS - (self.next_frame - FRAME_NS) / FRAME_NS;
            self.next_frame = (now / FRAME_NS + 1) * FRAME_NS;
            if let Some(m) = &mut self.monitor {
                if self.opts.every_frame || std::mem::take(&mut self.activity) {
                    m.frame_due = Some(self.frame_index);
                }
            }
        }
    }
}
