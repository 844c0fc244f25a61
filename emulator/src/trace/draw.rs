//! A small RGBA canvas with rectangles and 8×8 bitmap text (the public
//! domain `font8x8` glyphs): what `trace map` and the screenshot overlay
//! draw with.
use font8x8::legacy::BASIC_LEGACY;

/// Glyph size in pixels at scale 1.
pub const GLYPH: u32 = 8;

/// An RGBA8 picture.
#[derive(Clone, Debug)]
pub struct Canvas {
    pub width: u32,
    pub height: u32,
    pub rgba: Vec<u8>,
}

impl Canvas {
    /// A `width × height` canvas filled with `bg`.
    pub fn new(width: u32, height: u32, bg: [u8; 3]) -> Canvas {
        let mut rgba = Vec::with_capacity(width as usize * height as usize * 4);
        for _ in 0..width as usize * height as usize {
            rgba.extend_from_slice(&[bg[0], bg[1], bg[2], 255]);
        }
        Canvas { width, height, rgba }
    }

    /// Wrap existing RGBA pixels (None if the length does not match).
    pub fn from_rgba(width: u32, height: u32, rgba: Vec<u8>) -> Option<Canvas> {
        (rgba.len() as u64 == width as u64 * height as u64 * 4).then_some(Canvas { width, height, rgba })
    }

    /// Set one pixel (outside: ignored).
    pub fn put(&mut self, x: u32, y: u32, c: [u8; 3]) {
        if x < self.width && y < self.height {
            let i = (y as usize * self.width as usize + x as usize) * 4;
            self.rgba[i..i + 3].copy_from_slice(&c);
            self.rgba[i + 3] = 255;
        }
    }

    /// Fill `[x, x + w) × [y, y + h)` (clipped).
    pub fn fill(&mut self, x: u32, y: u32, w: u32, h: u32, c: [u8; 3]) {
        for yy in y..y.saturating_add(h).min(self.height) {
            for xx in x..x.saturating_add(w).min(self.width) {
                self.put(xx, yy, c);
            }
        }
    }

    /// A rectangle outline `t` pixels thick.
    pub fn outline(&mut self, x: u32, y: u32, w: u32, h: u32, t: u32, c: [u8; 3]) {
        self.fill(x, y, w, t, c);
        self.fill(x, (y + h).saturating_sub(t), w, t, c);
        self.fill(x, y, t, h, c);
        self.fill((x + w).saturating_sub(t), y, t, h, c);
    }

    /// Width in pixels of `s` at `scale`.
    pub fn text_width(s: &str, scale: u32) -> u32 {
        s.chars().count() as u32 * GLYPH * scale
    }

    /// Draw `s` with its top-left corner at (x, y); non-ASCII shows as '?'.
    pub fn text(&mut self, x: u32, y: u32, s: &str, scale: u32, c: [u8; 3]) {
        let scale = scale.max(1);
        for (i, ch) in s.chars().enumerate() {
            let code = if ch.is_ascii() { ch as usize } else { '?' as usize };
            let glyph = BASIC_LEGACY[code];
            let gx = x + i as u32 * GLYPH * scale;
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..8u32 {
                    if bits >> col & 1 != 0 {
                        self.fill(gx + col * scale, y + row as u32 * scale, scale, scale, c);
                    }
                }
            }
        }
    }

    /// `s` in `fg` on a `bg` box with a 2-pixel margin: readable on any picture.
    pub fn label(&mut self, x: u32, y: u32, s: &str, scale: u32, (fg, bg): ([u8; 3], [u8; 3])) {
        const PAD: u32 = 2;
        let w = Self::text_width(s, scale) + 2 * PAD;
        let h = GLYPH * scale + 2 * PAD;
        self.fill(x, y, w, h, bg);
        self.text(x + PAD, y + PAD, s, scale, fg);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_draws_glyph_pixels_and_nothing_outside() {
        let mut c = Canvas::new(40, 10, [255, 255, 255]);
        c.text(0, 0, "A", 1, [0, 0, 0]);
        let black = |x: u32, y: u32| c.rgba[((y * 40 + x) * 4) as usize] == 0;
        // 'A' of font8x8: row 0 is 0x0C (columns 2 and 3)
        assert!(black(2, 0) && black(3, 0) && !black(0, 0));
        assert!((8..40).all(|x| (0..10).all(|y| !black(x, y))));
        assert_eq!(Canvas::text_width("frame 12", 2), 128);
    }

    #[test]
    fn fill_clips_at_the_edges() {
        let mut c = Canvas::new(4, 4, [0, 0, 0]);
        c.fill(2, 2, 100, 100, [9, 9, 9]);
        assert_eq!(c.rgba.len(), 64);
        assert_eq!(c.rgba[(3 * 4 + 3) * 4], 9);
        assert_eq!(c.rgba[0], 0);
    }
}
