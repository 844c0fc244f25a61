//! A picture of a snapshot: the pageblock map (one 16x16 cell per
//! pageblock, 32 per row, colored by migrate type) above the page map (one
//! pixel per page, 512 per row, colored by state).
use crate::introspect::Snapshot;
use cmaemu_abi::page::*;
use std::io;
use std::path::Path;

/// Image width in pixels.
pub const WIDTH: u32 = 512;
/// Pageblock cell size in pixels.
pub const CELL: u32 = 16;
const SEP: u32 = 4;

/// Colors of the migrate types (index = type), then an invalid type.
pub const MT_COLORS: [[u8; 3]; 7] = [
    [200, 60, 60],   // Unmovable
    [60, 170, 80],   // Movable
    [220, 200, 60],  // Reclaimable
    [160, 80, 200],  // HighAtomic
    [60, 110, 220],  // CMA
    [120, 120, 120], // Isolate
    [0, 0, 0],       // invalid
];

/// Page states of the page map.
pub mod page_color {
    pub const RESERVED: [u8; 3] = [30, 30, 30];
    pub const FREE: [u8; 3] = [200, 235, 200];
    pub const FREE_CMA: [u8; 3] = [185, 205, 250];
    pub const CMA_ALLOCATED: [u8; 3] = [20, 50, 160];
    pub const DEVICE: [u8; 3] = [120, 40, 160];
    pub const MOVABLE: [u8; 3] = [230, 150, 40];
    pub const USED: [u8; 3] = [110, 110, 110];
    pub const BACKGROUND: [u8; 3] = [255, 255, 255];
    pub const SEPARATOR: [u8; 3] = [0, 0, 0];
}

fn page_rgb(s: &Snapshot, pfn: u32) -> [u8; 3] {
    let Some(p) = s.page(pfn) else { return page_color::BACKGROUND };
    let area = s.cma_area_of(pfn);
    if s.is_free(pfn) {
        return if area.is_some() { page_color::FREE_CMA } else { page_color::FREE };
    }
    if p.has(PG_RESERVED) {
        return page_color::RESERVED;
    }
    if area.is_some_and(|a| a.bit(pfn) == Some(true)) {
        return page_color::CMA_ALLOCATED;
    }
    match p.owner & OWNER_KIND_MASK {
        OWNER_KIND_DEVICE | OWNER_KIND_CMA => page_color::DEVICE,
        _ if p.flags & (PG_LRU | PG_ANON | PG_MOVABLE) != 0 || p.owner & OWNER_KIND_MASK == OWNER_KIND_USER => page_color::MOVABLE,
        _ => page_color::USED,
    }
}

/// The picture as RGB8 pixels: (width, height, pixels).
pub fn map_rgb(s: &Snapshot) -> (u32, u32, Vec<u8>) {
    let blocks: Vec<u32> = s.pageblocks().collect();
    let per_row = WIDTH / CELL;
    let pb_rows = (blocks.len() as u32).div_ceil(per_row).max(1);
    let pages = s.pages.len() as u32;
    let page_rows = pages.div_ceil(WIDTH).max(1);
    let height = pb_rows * CELL + SEP + page_rows;
    let mut px = vec![255u8; (WIDTH * height * 3) as usize];
    let mut put = |x: u32, y: u32, c: [u8; 3]| {
        let i = ((y * WIDTH + x) * 3) as usize;
        px[i..i + 3].copy_from_slice(&c);
    };
    for (i, &pb) in blocks.iter().enumerate() {
        let mt = s.pageblock_mt(pb.max(s.base_pfn())).map(|m| m.min(6)).unwrap_or(6) as usize;
        let (cx, cy) = ((i as u32 % per_row) * CELL, (i as u32 / per_row) * CELL);
        for y in 0..CELL {
            for x in 0..CELL {
                let edge = x == CELL - 1 || y == CELL - 1;
                put(cx + x, cy + y, if edge { page_color::BACKGROUND } else { MT_COLORS[mt] });
            }
        }
    }
    for y in 0..SEP {
        for x in 0..WIDTH {
            put(x, pb_rows * CELL + y, if y == SEP / 2 { page_color::SEPARATOR } else { page_color::BACKGROUND });
        }
    }
    let y0 = pb_rows * CELL + SEP;
    for i in 0..pages {
        put(i % WIDTH, y0 + i / WIDTH, page_rgb(s, s.base_pfn() + i));
    }
    (WIDTH, height, px)
}

/// Write the picture as a PNG file.
pub fn map_png(s: &Snapshot, path: &Path) -> io::Result<()> {
    let (w, h, px) = map_rgb(s);
    let f = std::fs::File::create(path)?;
    let mut enc = png::Encoder::new(io::BufWriter::new(f), w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut wr = enc.write_header().map_err(io::Error::other)?;
    wr.write_image_data(&px).map_err(io::Error::other)?;
    wr.finish().map_err(io::Error::other)
}
