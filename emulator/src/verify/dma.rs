//! DMA contiguity and ownership.
use super::{Check, CheckCtx, Out, Violation};
use crate::introspect::Snapshot;
use cmaemu_abi::desc::dma_dev_name;
use cmaemu_abi::page::*;
use cmaemu_abi::trace::GuestEvent;
use std::collections::BTreeMap;

/// One transfer of a DMA master.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DmaTransfer {
    pub device: u32,
    pub pa: u64,
    pub len: u64,
    /// Device writes memory (camera) rather than reads it (scan-out).
    pub write: bool,
}

/// Live DMA buffers per device, from `dma_alloc` / `dma_free` records.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DmaBuffers {
    live: BTreeMap<u32, Vec<(u32, u32)>>,
}

impl DmaBuffers {
    /// Follow one guest event.
    pub fn on_event(&mut self, ev: &GuestEvent) {
        match *ev {
            GuestEvent::DmaAlloc { device, pfn, count, errorno: 0, .. } => {
                if let Ok(p) = u32::try_from(pfn) {
                    self.live.entry(device).or_default().push((p, count));
                }
            }
            GuestEvent::DmaFree { device, pfn, .. } => {
                if let Some(v) = self.live.get_mut(&device) {
                    if let Some(i) = v.iter().position(|b| b.0 as u64 == pfn) {
                        v.remove(i);
                    }
                }
            }
            _ => {}
        }
    }
    /// The live buffer of `device` containing `pfn`: (first pfn, pages).
    pub fn buffer_of(&self, device: u32, pfn: u32) -> Option<(u32, u32)> {
        self.live.get(&device)?.iter().copied().find(|&(p, n)| pfn >= p && (pfn as u64) < p as u64 + n as u64)
    }
    /// The live buffer of any device containing `pfn`.
    pub fn buffer_of_any(&self, pfn: u32) -> Option<(u32, u32)> {
        self.live.keys().find_map(|&d| self.buffer_of(d, pfn))
    }
    /// All live buffers of a device.
    pub fn buffers(&self, device: u32) -> &[(u32, u32)] {
        self.live.get(&device).map(|v| v.as_slice()).unwrap_or(&[])
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Bad {
    Outside,
    Free,
    NotInBitmap(String),
    OtherDevice(u32),
    Movable(u32),
    /// A user page nobody pinned for the device.
    Unpinned(u32),
    Foreign(u32),
}

impl Bad {
    fn describe(&self) -> String {
        match self {
            Bad::Outside => "outside the frames the page array describes".into(),
            Bad::Free => "free (in the buddy allocator)".into(),
            Bad::NotInBitmap(a) => format!("in CMA area {a} but not allocated in its bitmap"),
            Bad::OtherDevice(d) => format!("allocated to device {}", dma_dev_name(*d)),
            Bad::Movable(o) => format!("movable (owner {o:#x}): migration may move it under the device"),
            Bad::Unpinned(o) => format!("a movable user page of asid {} that is not pinned for the device: migration may move it under the device", o & !OWNER_KIND_MASK),
            Bad::Foreign(o) => format!("owned by someone else (owner {o:#x})"),
        }
    }
}

fn classify(s: &Snapshot, bufs: Option<&DmaBuffers>, device: u32, write: bool, pfn: u32) -> Option<Bad> {
    let p = match s.page(pfn) {
        Some(p) => p,
        None => return Some(Bad::Outside),
    };
    if s.is_free(pfn) {
        return Some(Bad::Free);
    }
    let want = OWNER_KIND_DEVICE | (device & !OWNER_KIND_MASK);
    if p.owner == want {
        if let Some(a) = s.cma_area_of(pfn) {
            if a.bit(pfn) != Some(true) {
                return Some(Bad::NotInBitmap(a.name.clone()));
            }
        }
        return None;
    }
    if p.owner & OWNER_KIND_MASK == OWNER_KIND_CMA {
        // A `cma_alloc` page (owner CMA | area) belongs to the device whose
        // live `dma_alloc` buffer holds it (any device when unknown).
        let mine = match bufs {
            None => true,
            Some(b) if write => b.buffer_of(device, pfn).is_some(),
            Some(b) => b.buffer_of_any(pfn).is_some(),
        };
        let in_bitmap = s.cma_area_of(pfn).is_none_or(|a| a.bit(pfn) == Some(true));
        return match (mine, in_bitmap) {
            (true, true) => None,
            (true, false) => Some(Bad::NotInBitmap(s.cma_area_of(pfn).map(|a| a.name.clone()).unwrap_or_default())),
            (false, _) => Some(Bad::Foreign(p.owner)),
        };
    }
    if p.owner & OWNER_KIND_MASK == OWNER_KIND_DEVICE {
        // Reading another device's live buffer is sharing (zero-copy
        // preview: the display scans out the camera's frame); writing it is not.
        if !write && s.cma_area_of(pfn).is_none_or(|a| a.bit(pfn) == Some(true)) {
            return None;
        }
        return Some(Bad::OtherDevice(p.owner & !OWNER_KIND_MASK));
    }
    if p.owner & OWNER_KIND_MASK == OWNER_KIND_USER {
        // A user page the driver pinned (pin_user_pages: a reference above
        // its mappings') and mapped for this device (a live buffer) is a
        // USERPTR buffer: migration leaves it alone.
        let pinned = p.refcount as i64 > p.mapcount as i64 + 1;
        let mine = bufs.is_none_or(|b| b.buffer_of(device, pfn).is_some());
        if pinned && mine {
            return None;
        }
        return Some(Bad::Unpinned(p.owner));
    }
    if p.flags & (PG_LRU | PG_ANON | PG_MOVABLE) != 0 {
        return Some(Bad::Movable(p.owner));
    }
    Some(Bad::Foreign(p.owner))
}

/// Check one transfer. `buffers`, when given, also requires the whole
/// transfer to sit in one live buffer of the device (for reads: of any
/// device, buffers may be shared for reading).
pub fn check_dma(s: &Snapshot, buffers: Option<&DmaBuffers>, t: &DmaTransfer, ctx: &CheckCtx) -> Vec<Violation> {
    let mut out = Out::new(ctx);
    if t.len == 0 {
        return out.finish();
    }
    let dir = if t.write { "write" } else { "read" };
    let dev = Some(t.device);
    let end = t.pa.saturating_add(t.len);
    let first = t.pa >> PAGE_SHIFT;
    let last = (end - 1) >> PAGE_SHIFT;
    if last > u32::MAX as u64 {
        out.push(Check::DmaOwnership, None, None, dev, format!("{dir} [{:#x}, {end:#x}) leaves the 32-bit physical space", t.pa));
        return out.finish();
    }
    let (first, last) = (first as u32, last as u32);
    if let Some(b) = buffers {
        let found = if t.write { b.buffer_of(t.device, first) } else { b.buffer_of_any(first) };
        match found {
            None => out.push(
                Check::DmaContiguity,
                Some(first),
                None,
                dev,
                format!("{dir} [{:#x}, {end:#x}) by {}: no live buffer of this device contains its start (freed, or never allocated)", t.pa, dma_dev_name(t.device)),
            ),
            Some((p, n)) if last as u64 >= p as u64 + n as u64 => out.push(
                Check::DmaContiguity,
                Some(p + n),
                None,
                dev,
                format!("{dir} [{:#x}, {end:#x}) by {} runs past the end of its buffer [{p:#x}, {:#x}) (pfns) into pfn {:#x}", t.pa, dma_dev_name(t.device), p as u64 + n as u64, p + n),
            ),
            Some(_) => {}
        }
    }
    // Ownership, frame by frame, grouped into runs of one reason.
    let mut run: Option<(u32, u32, Bad)> = None;
    let flush = |run: &mut Option<(u32, u32, Bad)>, out: &mut Out| {
        if let Some((p, n, bad)) = run.take() {
            out.push(Check::DmaOwnership, Some(p), None, dev, format!("{dir} by {} into {n} frame(s) from pfn {p:#x} that are {}", dma_dev_name(t.device), bad.describe()));
        }
    };
    let mut pfn = first;
    loop {
        let c = classify(s, buffers, t.device, t.write, pfn);
        match (&mut run, c) {
            (Some((_, n, b)), Some(c)) if *b == c => *n += 1,
            (_, c) => {
                flush(&mut run, &mut out);
                run = c.map(|c| (pfn, 1, c));
            }
        }
        if pfn == last {
            break;
        }
        pfn += 1;
    }
    flush(&mut run, &mut out);
    out.finish()
}
