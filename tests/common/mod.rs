//! Helpers shared by the integration tests (each test file is its own
//! crate and includes this with `mod common;`).

/// xorshift64* — deterministic, no dependency.
#[allow(dead_code)] // not every test crate draws
pub struct Rng(pub u64);

#[allow(dead_code)]
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform-ish in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    /// One element of `v` (which must not be empty).
    #[allow(dead_code)] // not every test crate picks
    pub fn pick<T: Clone>(&mut self, v: &[T]) -> T {
        v[self.below(v.len())].clone()
    }
}

/// Run the `cmaemu` binary with `args`, `stdin` piped in: (exit code,
/// stdout, stderr). The process may exit before reading (bad input): a
/// broken pipe is ignored.
#[allow(dead_code)]
pub fn cli(args: &[&str], stdin: &str) -> (i32, String, String) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut c = Command::new(env!("CARGO_BIN_EXE_cmaemu")).args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let _ = c.stdin.take().unwrap().write_all(stdin.as_bytes());
    let out = c.wait_with_output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The default 256 MiB board with `bootargs`, booted to the shell's
/// prompt and stepped from there (`Machine::command`).
#[allow(dead_code)]
pub fn shell_machine(bootargs: &str) -> cmaemu::board::machine::Machine {
    use cmaemu::board::machine::{Machine, Step};
    use cmaemu::loader::{board_dtb, dtb::Dtb, images};
    const RAM: u64 = 256 << 20;
    let mut dtb = Dtb::parse(&board_dtb::default_board_dtb(RAM)).unwrap();
    dtb.set_bootargs(bootargs).unwrap();
    let mut m = Machine::new(images::KERNEL_ELF, images::FIRMWARE_ELF, &dtb.to_bytes().unwrap(), RAM, u64::MAX).unwrap();
    m.budget(3_000_000_000);
    assert_eq!(m.run_until_idle(), Step::Paused, "boot with `{bootargs}`: {}", m.output());
    m
}
