//! PNG output of scanned-out frames: `--screenshot out.png` (one picture)
//! and `--record-frames DIR` (one numbered PNG per frame), plus a decoder for
//! tests.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Why a picture could not be encoded, decoded or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The pixel buffer does not hold `width × height` RGBA8 pixels.
    #[error("RGBA buffer of {len} bytes does not hold {width}x{height} pixels")]
    Size {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// Buffer length.
        len: usize,
    },
    /// PNG encoding failed.
    #[error("PNG encoding: {0}")]
    Encode(#[from] png::EncodingError),
    /// PNG decoding failed.
    #[error("PNG decoding: {0}")]
    Decode(#[from] png::DecodingError),
    /// The decoded PNG is not in a layout [`decode_png`] converts.
    #[error("unsupported PNG layout: {0}")]
    Unsupported(String),
    /// File I/O.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

/// Encode `width × height` RGBA8 pixels (row-major) as a PNG file image.
pub fn encode_png(width: u32, height: u32, rgba: &[u8]) -> Result<Vec<u8>, FrameError> {
    if width == 0 || height == 0 || rgba.len() as u64 != width as u64 * height as u64 * 4 {
        return Err(FrameError::Size { width, height, len: rgba.len() });
    }
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, width, height);
        enc.set_color(png::ColorType::Rgba);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::Fast);
        let mut w = enc.write_header()?;
        w.write_image_data(rgba)?;
        w.finish()?;
    }
    Ok(out)
}

/// Encode and write a PNG to `path`.
pub fn write_png(path: impl AsRef<Path>, width: u32, height: u32, rgba: &[u8]) -> Result<(), FrameError> {
    let path = path.as_ref();
    let bytes = encode_png(width, height, rgba)?;
    fs::write(path, bytes).map_err(|source| FrameError::Io { path: path.to_path_buf(), source })
}

/// Decode a PNG into `(width, height, RGBA8 pixels)`. Handles 8-bit RGBA,
/// RGB, grey and grey+alpha images (palettes are expanded).
pub fn decode_png(bytes: &[u8]) -> Result<(u32, u32, Vec<u8>), FrameError> {
    let mut dec = png::Decoder::new(bytes);
    dec.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = dec.read_info()?;
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf)?;
    buf.truncate(info.buffer_size());
    let (w, h) = (info.width, info.height);
    let rgba = match info.color_type {
        png::ColorType::Rgba => buf,
        png::ColorType::Rgb => buf.chunks_exact(3).flat_map(|p| [p[0], p[1], p[2], 255]).collect(),
        png::ColorType::Grayscale => buf.iter().flat_map(|&v| [v, v, v, 255]).collect(),
        png::ColorType::GrayscaleAlpha => buf.chunks_exact(2).flat_map(|p| [p[0], p[0], p[0], p[1]]).collect(),
        other => return Err(FrameError::Unsupported(format!("{other:?}"))),
    };
    if info.bit_depth != png::BitDepth::Eight || rgba.len() as u64 != w as u64 * h as u64 * 4 {
        return Err(FrameError::Unsupported(format!("{:?} {:?} {w}x{h}", info.color_type, info.bit_depth)));
    }
    Ok((w, h, rgba))
}

/// Read and decode a PNG file.
pub fn read_png(path: impl AsRef<Path>) -> Result<(u32, u32, Vec<u8>), FrameError> {
    let path = path.as_ref();
    let bytes = fs::read(path).map_err(|source| FrameError::Io { path: path.to_path_buf(), source })?;
    decode_png(&bytes)
}

/// Draw a readable label at the bottom-left of a picture: the display
/// frame number, the camera frame it shows and the buffer address
/// (`--overlay`). The bottom keeps the camera's header row intact.
pub fn overlay(rgba: &mut Vec<u8>, width: u32, height: u32, number: u64, camera: Option<u64>, pa: u64) {
    use crate::trace::draw::{Canvas, GLYPH};
    let text = match camera {
        Some(c) => format!("frame {number} cam {c} buf {pa:#010x}"),
        None => format!("frame {number} buf {pa:#010x}"),
    };
    let scale = (width / 320).max(1);
    let h = GLYPH * scale + 4;
    if height < h + 2 || width < 16 {
        return;
    }
    let Some(mut c) = Canvas::from_rgba(width, height, std::mem::take(rgba)) else { return };
    c.label(2, height - h - 2, &text, scale, ([255, 255, 255], [0, 0, 0]));
    *rgba = c.rgba;
}

/// Writes one PNG per frame into a directory (`frame-000042.png`), for
/// `--record-frames DIR`.
#[derive(Debug)]
pub struct FrameRecorder {
    dir: PathBuf,
    written: u64,
}

impl FrameRecorder {
    /// Create `dir` if needed (not its parents: a missing parent is an
    /// error, as for any output path).
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self, FrameError> {
        let dir = dir.into();
        if !dir.is_dir() {
            fs::create_dir(&dir).map_err(|source| FrameError::Io { path: dir.clone(), source })?;
        }
        Ok(FrameRecorder { dir, written: 0 })
    }

    /// The path frame `number` is written to.
    pub fn path_for(&self, number: u64) -> PathBuf {
        self.dir.join(format!("frame-{number:06}.png"))
    }

    /// Write frame `number`; returns its path.
    pub fn record(&mut self, number: u64, width: u32, height: u32, rgba: &[u8]) -> Result<PathBuf, FrameError> {
        let path = self.path_for(number);
        write_png(&path, width, height, rgba)?;
        self.written += 1;
        Ok(path)
    }

    /// Frames written so far.
    pub fn written(&self) -> u64 {
        self.written
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picture(w: u32, h: u32) -> Vec<u8> {
        (0..w * h).flat_map(|i| [(i * 7) as u8, (i * 13) as u8, (i / w) as u8, 255]).collect()
    }

    #[test]
    fn round_trip() {
        let rgba = picture(37, 5);
        let png = encode_png(37, 5, &rgba).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(decode_png(&png).unwrap(), (37, 5, rgba));
    }

    #[test]
    fn bad_sizes_and_data() {
        assert!(matches!(encode_png(2, 2, &[0; 15]), Err(FrameError::Size { .. })));
        assert!(encode_png(0, 0, &[]).is_err());
        assert!(decode_png(b"not a png").is_err());
        let png = encode_png(4, 4, &picture(4, 4)).unwrap();
        assert!(decode_png(&png[..png.len() / 2]).is_err());
    }

    #[test]
    fn decodes_rgb_and_grey() {
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, 2, 1);
            enc.set_color(png::ColorType::Grayscale);
            enc.set_depth(png::BitDepth::Eight);
            let mut w = enc.write_header().unwrap();
            w.write_image_data(&[10, 200]).unwrap();
        }
        assert_eq!(decode_png(&out).unwrap(), (2, 1, vec![10, 10, 10, 255, 200, 200, 200, 255]));
    }

    #[test]
    fn recorder_writes_numbered_files() {
        let dir = std::env::temp_dir().join(format!("cmaemu-frames-{}", std::process::id()));
        let mut r = FrameRecorder::new(&dir).unwrap();
        let p = r.record(3, 16, 2, &picture(16, 2)).unwrap();
        assert!(p.ends_with("frame-000003.png"));
        assert_eq!(read_png(&p).unwrap(), (16, 2, picture(16, 2)));
        assert_eq!(r.written(), 1);
        assert!(r.record(4, 16, 2, &[0; 3]).is_err());
        assert!(write_png(dir.join("no/such/dir/x.png"), 16, 2, &picture(16, 2)).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
