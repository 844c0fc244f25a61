//! `cmaemu dtb -o FILE [-m SIZE]`: write the default board's device tree.
use super::bad_input;
use crate::loader::board_dtb;
use std::path::Path;
use std::process::ExitCode;

/// Write the default board's DTB for `memory` bytes of RAM to `output`
/// (`-`: standard output).
pub fn run(output: &Path, memory: u64) -> ExitCode {
    if let Err(e) = board_dtb::check_ram_size(memory) {
        return bad_input(e);
    }
    let b = board_dtb::default_board_dtb(memory);
    let written = if output.as_os_str() == "-" {
        use std::io::Write;
        std::io::stdout().lock().write_all(&b).and_then(|_| std::io::stdout().flush())
    } else {
        std::fs::write(output, b)
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => bad_input(format!("{}: {e}", output.display())),
    }
}
