//! `cmaemu trace summary|map` and `cmaemu report`: read a JSON-lines
//! trace written by `boot --trace FILE --trace-format jsonl`.
use super::bad_input;
use crate::trace::{self, framemap, html, read, Event};
use std::path::Path;
use std::process::ExitCode;

/// The events of a JSON-lines trace file (`Err`: the exit status, after
/// the message naming the file).
fn read_trace(file: &Path) -> Result<Vec<Event>, ExitCode> {
    let text = std::fs::read_to_string(file).map_err(|e| bad_input(format!("{}: {e}", file.display())))?;
    read::read_jsonl(&text).map_err(|e| bad_input(format!("{}: {e}", file.display())))
}

/// `cmaemu trace summary FILE`: the per-frame table.
pub fn summary(file: &Path) -> ExitCode {
    match read_trace(file) {
        Ok(events) => {
            print!("{}", trace::summary(&events));
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

/// `cmaemu trace map FILE --frame N -o PNG [--pages]`.
pub fn map(file: &Path, frame: u64, output: &Path, pages: bool) -> ExitCode {
    let events = match read_trace(file) {
        Ok(ev) => ev,
        Err(code) => return code,
    };
    let c = match framemap::view_at(&events, frame).and_then(|v| framemap::render(&v, pages)) {
        Ok(x) => x,
        Err(e) => return bad_input(format!("{}: {e}", file.display())),
    };
    match crate::board::frames::write_png(output, c.width, c.height, &c.rgba) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => bad_input(format!("{}: {e}", output.display())),
    }
}

/// `cmaemu report TRACE -o FILE`.
pub fn report(file: &Path, output: &Path) -> ExitCode {
    let events = match read_trace(file) {
        Ok(ev) => ev,
        Err(code) => return code,
    };
    let title = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let r = std::fs::File::create(output).and_then(|f| {
        let mut w = std::io::BufWriter::new(f);
        html::write_report(&events, &title, &[], &mut w)?;
        std::io::Write::flush(&mut w)
    });
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => bad_input(format!("{}: {e}", output.display())),
    }
}
