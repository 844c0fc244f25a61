//! `cmaemu trace map`: the physical memory of one frame of a JSON-lines
//! trace, replayed from its events (layout, pageblock types, page-state
//! deltas), drawn with a legend, an address axis, zone and CMA-area
//! bands and boundaries, and optionally the occupancy of every page.
use super::draw::{Canvas, GLYPH};
use super::map::MT_COLORS;
use super::{Event, EventKind, Layout, RunInfo};
use crate::introspect::{PageState, MT_NAMES};

/// Why a frame cannot be drawn.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MapError {
    #[error("the trace has no frames (was it written with --trace-format jsonl by this version?)")]
    NoFrames,
    #[error("frame {frame} is out of range: the trace has frames {first}..={last}")]
    OutOfRange { frame: u64, first: u64, last: u64 },
    #[error("no pageblock map at or before frame {0} (was the trace written with --trace-format jsonl?)")]
    NoPageblockMap(u64),
    #[error("--pages: the trace has no page states (written by an older cmaemu?)")]
    NoPageStates,
    /// More memory than a 1 GiB board has: not a cmaemu trace, and
    /// drawing it would take gigabytes.
    #[error("the map at or before frame {frame} covers {pages} pages ({pageblocks} pageblocks), more than the {MAX_MAP_PAGES} of a 1 GiB board (not a cmaemu trace?)")]
    TooBig { frame: u64, pageblocks: u64, pages: u64 },
}

/// The most pages a map can cover: the board's largest RAM (1 GiB). Every
/// pageblock holds at least one page, so this also bounds the pageblocks.
pub const MAX_MAP_PAGES: u64 = crate::memory::map::RAM_MAX_SIZE >> 12;

/// Colour of each [`PageState`] (by code).
pub const PAGE_COLORS: [[u8; 3]; 7] = [
    [232, 240, 232], // free
    [40, 40, 40],    // reserved
    [150, 150, 150], // kernel
    [240, 160, 40],  // user (movable)
    [20, 50, 160],   // CMA allocated
    [190, 40, 190],  // device
    [110, 70, 30],   // page table
];

/// The memory as of the end of one frame.
#[derive(Clone, Debug, Default)]
pub struct FrameView {
    pub frame: u64,
    /// Virtual time of the frame's first event.
    pub ts_ns: u64,
    pub run: Option<RunInfo>,
    pub layout: Option<Layout>,
    /// First pfn of the first pageblock, pages per pageblock, types.
    pub first_pfn: u32,
    pub pageblock_pages: u32,
    pub mts: Vec<u8>,
    /// State code of every page from `layout.base_pfn` (empty: none in the trace).
    pub pages: Vec<u8>,
    /// Pages migrated during the frame (old pfn, new pfn).
    pub migrations: Vec<(u32, u32)>,
}

/// The frames a trace covers: (first, last).
pub fn frame_range(events: &[Event]) -> Option<(u64, u64)> {
    let first = events.iter().map(|e| e.frame).min()?;
    let last = events.iter().map(|e| e.frame).max()?;
    Some((first, last))
}

/// Replay `events` up to the end of `frame`.
pub fn view_at(events: &[Event], frame: u64) -> Result<FrameView, MapError> {
    let (first, last) = frame_range(events).ok_or(MapError::NoFrames)?;
    if frame < first || frame > last {
        return Err(MapError::OutOfRange { frame, first, last });
    }
    let mut v = FrameView { frame, ..Default::default() };
    let mut ts = None;
    for e in events.iter().take_while(|e| e.frame <= frame) {
        if e.frame == frame {
            ts.get_or_insert(e.ts_ns);
        }
        match &e.kind {
            EventKind::Run(r) => v.run = Some((**r).clone()),
            EventKind::Layout(l) => {
                if l.nr_pages as u64 > MAX_MAP_PAGES {
                    return Err(MapError::TooBig { frame, pageblocks: 0, pages: l.nr_pages as u64 });
                }
                v.pages = vec![0; l.nr_pages as usize];
                v.layout = Some((**l).clone());
            }
            EventKind::PageblockMap { first_pfn, pageblock_pages, mts } => {
                let pages = mts.len() as u64 * (*pageblock_pages).max(1) as u64;
                if pages > MAX_MAP_PAGES {
                    return Err(MapError::TooBig { frame, pageblocks: mts.len() as u64, pages });
                }
                v.first_pfn = *first_pfn;
                v.pageblock_pages = *pageblock_pages;
                v.mts = mts.clone();
            }
            EventKind::PageStates { runs, .. } => {
                let base = v.layout.as_ref().map(|l| l.base_pfn).unwrap_or(0);
                for &(p, n, c) in runs {
                    let lo = p.saturating_sub(base) as usize;
                    let hi = (lo + n as usize).min(v.pages.len());
                    if lo < hi {
                        v.pages[lo..hi].fill(c);
                    }
                }
            }
            EventKind::MigratePage { old_pfn, new_pfn, .. } if e.frame == frame => v.migrations.push((*old_pfn, *new_pfn)),
            _ => {}
        }
    }
    v.ts_ns = ts.unwrap_or(0);
    if v.mts.is_empty() {
        return Err(MapError::NoPageblockMap(frame));
    }
    Ok(v)
}

/// Pageblocks per row of the picture.
const PER_ROW: u32 = 16;
/// Pageblock cell width (pixels).
const CELL_W: u32 = 64;
const AXIS_W: u32 = 96;
const BAND_H: u32 = 11;
const MARGIN: u32 = 8;
const WHITE: [u8; 3] = [255, 255, 255];
const BLACK: [u8; 3] = [0, 0, 0];
const ZONE_COLORS: [[u8; 3]; 4] = [[205, 215, 230], [225, 215, 195], [205, 230, 210], [230, 205, 220]];
const AREA_COLOR: [u8; 3] = [60, 110, 220];

fn cell_h(ppb: u32) -> u32 {
    (ppb / CELL_W).clamp(16, 64)
}

/// Draw `v`: one cell per pageblock (16 a row, its border and fill the
/// migrate type; with `pages`, the fill shows every page's state), the
/// start address of every row, the zones and CMA areas as labelled bands
/// above each row with boundary lines through it, and a legend.
pub fn render(v: &FrameView, pages: bool) -> Result<Canvas, MapError> {
    if pages && v.pages.is_empty() {
        return Err(MapError::NoPageStates);
    }
    let ppb = v.pageblock_pages.max(1);
    let ch = cell_h(ppb);
    let nblocks = v.mts.len() as u32;
    let rows = nblocks.div_ceil(PER_ROW).max(1);
    let row_h = 2 * BAND_H + ch + 6;
    let map_w = PER_ROW * CELL_W;
    let width = AXIS_W + map_w + 2 * MARGIN;
    let title_h = 2 * GLYPH + 12;
    let legend_rows = if pages { 2 } else { 1 };
    let legend_h = legend_rows * (GLYPH + 10) + 8;
    let height = title_h + rows * row_h + legend_h + MARGIN;
    let mut c = Canvas::new(width, height, WHITE);

    // title
    let t = format!("frame {}  t={}.{:06} s  {} pageblocks of {} KiB", v.frame, v.ts_ns / 1_000_000_000, (v.ts_ns % 1_000_000_000) / 1000, nblocks, ppb * 4);
    c.text(MARGIN, 4, &t, 1, BLACK);
    if let Some(r) = &v.run {
        let s = format!("{}  RAM {} MiB  {}  {}", r.dtb, r.ram_bytes >> 20, r.profile, r.cmdline);
        let max = ((width - 2 * MARGIN) / GLYPH) as usize;
        c.text(MARGIN, 6 + GLYPH, &s.chars().take(max).collect::<String>(), 1, [70, 70, 70]);
    }
    let pfn_x = |pfn: u32| -> Option<(u32, u32)> {
        // (row, x) of a pfn boundary
        let rel = pfn.checked_sub(v.first_pfn)? as u64;
        let blk = rel * CELL_W as u64 / ppb as u64;
        let row = (blk / (PER_ROW as u64 * CELL_W as u64)) as u32;
        Some((row, AXIS_W + MARGIN + (blk % (PER_ROW as u64 * CELL_W as u64)) as u32))
    };
    let row_y = |r: u32| title_h + r * row_h;
    let row_span = |r: u32| -> (u64, u64) {
        let s = v.first_pfn as u64 + r as u64 * PER_ROW as u64 * ppb as u64;
        (s, s + PER_ROW as u64 * ppb as u64)
    };
    let layout = v.layout.clone().unwrap_or_default();
    for r in 0..rows {
        let y = row_y(r);
        let (s, e) = row_span(r);
        c.text(MARGIN, y + 2 * BAND_H + ch / 2 - GLYPH / 2, &format!("{:#010x}", s << 12), 1, BLACK);
        // bands: zones (upper) and CMA areas (lower)
        for (band, spans) in [(0u32, &layout.zones), (1, &layout.areas)] {
            for (i, z) in spans.iter().enumerate() {
                let (zs, ze) = (z.start as u64, z.end as u64);
                if ze <= s || zs >= e {
                    continue;
                }
                let x0 = AXIS_W + MARGIN + ((zs.max(s) - s) * CELL_W as u64 / ppb as u64) as u32;
                let x1 = AXIS_W + MARGIN + ((ze.min(e) - s) * CELL_W as u64 / ppb as u64) as u32;
                let col = if band == 0 { ZONE_COLORS[i % ZONE_COLORS.len()] } else { AREA_COLOR };
                let by = y + band * BAND_H;
                c.fill(x0, by, x1.saturating_sub(x0), BAND_H - 1, col);
                let name = if zs >= s { format!("{} {:#x}", z.name, zs << 12) } else { z.name.clone() };
                let fits = ((x1.saturating_sub(x0)) / GLYPH) as usize;
                let fg = if band == 0 { BLACK } else { WHITE };
                c.text(x0 + 2, by + 1, &name.chars().take(fits.saturating_sub(1)).collect::<String>(), 1, fg);
            }
        }
    }
    // pageblock cells
    for (i, &mt) in v.mts.iter().enumerate() {
        let (r, col) = (i as u32 / PER_ROW, i as u32 % PER_ROW);
        let (x, y) = (AXIS_W + MARGIN + col * CELL_W, row_y(r) + 2 * BAND_H);
        let mc = MT_COLORS[(mt as usize).min(MT_COLORS.len() - 1)];
        if pages {
            let base = layout.base_pfn;
            let pb_start = v.first_pfn + i as u32 * ppb;
            let area = CELL_W * ch;
            for k in 0..ppb {
                let pfn = pb_start + k;
                let col = match pfn.checked_sub(base).and_then(|o| v.pages.get(o as usize)) {
                    Some(&s) => PAGE_COLORS[(s as usize).min(PAGE_COLORS.len() - 1)],
                    None => WHITE,
                };
                let p = (k as u64 * area as u64 / ppb as u64) as u32;
                c.put(x + p % CELL_W, y + p / CELL_W, col);
            }
            c.outline(x, y, CELL_W, ch, 3, mc);
        } else {
            c.fill(x, y, CELL_W, ch, mc);
        }
        c.outline(x, y, CELL_W, ch, 1, WHITE);
    }
    // boundaries through the cells
    for z in layout.zones.iter().chain(layout.areas.iter()) {
        for pfn in [z.start, z.end] {
            if let Some((r, x)) = pfn_x(pfn) {
                if r < rows {
                    c.fill(x.saturating_sub(1), row_y(r), 2, 2 * BAND_H + ch, BLACK);
                }
            }
        }
    }
    // legend
    let mut y = title_h + rows * row_h + 4;
    let mut x = MARGIN;
    for (i, n) in MT_NAMES.iter().enumerate() {
        c.fill(x, y, GLYPH + 2, GLYPH + 2, MT_COLORS[i]);
        c.text(x + GLYPH + 6, y + 1, n, 1, BLACK);
        x += GLYPH + 6 + Canvas::text_width(n, 1) + 14;
    }
    c.fill(x, y, GLYPH + 2, GLYPH + 2, AREA_COLOR);
    c.text(x + GLYPH + 6, y + 1, "CMA area band", 1, BLACK);
    if pages {
        y += GLYPH + 10;
        x = MARGIN;
        for s in PageState::ALL {
            c.fill(x, y, GLYPH + 2, GLYPH + 2, PAGE_COLORS[s as usize]);
            c.outline(x, y, GLYPH + 2, GLYPH + 2, 1, [120, 120, 120]);
            c.text(x + GLYPH + 6, y + 1, s.name(), 1, BLACK);
            x += GLYPH + 6 + Canvas::text_width(s.name(), 1) + 14;
        }
    }
    Ok(c)
}
