//! Hardware-in-the-loop-free integration tests: scenario files (TOML) that
//! boot the board, drive its console and check the outcome, and a thin
//! Rust API for `cargo test` users.
//!
//! Everything runs on virtual time (1 instruction = 1 ns), so a scenario
//! gives the same result on every host.
//!
//! # Rust API
//!
//! ```no_run
//! use cmaemu::scenario::Board;
//!
//! let mut s = Board::builder()
//!     .ram(256 << 20)
//!     .bootargs("console=ttyAMA0 cma=16M")
//!     .boot()?;                          // to the shell prompt
//! let out = s.command("fill 8 42")?;      // output of one command
//! assert!(out.contains("pages mapped"));
//! s.run_for(50)?;                         // 50 ms of virtual time
//! let mi = s.meminfo()?;                  // /proc/meminfo, in kB
//! assert_eq!(mi.get("CmaTotal"), Some(16384));
//! let vm = s.vmstat()?;
//! assert!(vm.get("nr_free_pages").is_some());
//! # Ok::<(), cmaemu::scenario::Error>(())
//! ```
//!
//! # Scenario file format
//!
//! ```toml
//! name = "fill-and-check"        # default: the file name
//! description = "..."
//! pending = "why"                # or true: not run, reported as skipped
//! seed = 42                      # what {seed} becomes under `cmaemu test`
//!
//! [board]
//! dtb = "../dts/seeds/x.dts"     # .dts (compiled with dtc) or .dtb, relative
//!                                # to this file; default: the generated board
//! ram = "256M"                   # or bytes; default 1G (or the DTB's /memory)
//! bootargs = "console=ttyAMA0 cma=16M"   # default: the DTB's
//! cma = "64M"                    # generated board: default CMA pool size
//! camera_cma = "32M"             # generated board: camera pool size
//! inject = ["skip_copy"]         # appended as cmaemu.inject=skip_copy
//! max_insns = 50_000_000_000     # whole run
//! boot_timeout_ms = 20000        # virtual ms to reach the shell prompt
//!
//! [[step]]
//! send = "fill 64 {seed}"        # a console command; waits for the prompt
//! repeat = 3                     # (send only) run it 3 times
//! timeout_ms = 20000             # virtual ms (per repetition)
//! expect_line = "pages mapped"   # a line of this step's output contains it
//! expect_no_line = ["error"]     # no line of this step's output contains it
//! expect_cause = "pinned"        # the host found this cause for the step's
//!                                # cma_allocs (KIND or "KIND 0xPFN"; a list)
//!
//! [[step]]
//! wait = "frame 10"              # until this text is printed (from now on)
//! timeout_ms = 500               # default 10000
//!
//! [[step]]
//! run_ms = 100                   # let 100 ms of virtual time pass
//!
//! [[expect]]
//! line = "check: ok"             # some line of the whole output contains it
//! [[expect]]
//! no_line = "Oops"
//! [[expect]]
//! counter = "meminfo.CmaFree >= 4096"        # read by `cat /proc/meminfo`
//! [[expect]]
//! counter = "vmstat.pgmigrate_success > 0"   # OP: >= > <= < == !=
//! [[expect]]
//! no_violations = true           # the host verifier saw no violation
//!
//! [sweep]                        # `cmaemu sweep` (see [`verdict`], [`axes`])
//! seeds = "0..20"
//! size_axis = "cma"              # default: the first numeric axis
//! [sweep.axes]                   # crossed with each other and the seeds
//! cma = ["8M", "16M", "32M"]     # or "8M..=32M*2"; also ram, profile,
//!                                # cmaemu.KNOB, dt.NODE, arg.NAME
//! ```
//!
//! `{seed}` is replaced in commands, waited-for texts, expectations and
//! bootargs. Errors name the line and the table: `x.toml:12: step 3:
//! unknown field 'sned', expected one of ...`.
//!
//! `no_violations` asks the host verifier (DMA contiguity and ownership,
//! migration content/PTEs/TLB, allocator integrity): it fails listing the
//! violations, and fails as "not available" if the verifier is not live
//! in the run (it never passes unchecked).
mod api;
pub mod artifacts;
pub mod axes;
pub mod driver;
mod file;
pub mod metrics;
mod procfs;
mod report;
mod run;
pub mod shard;
pub mod matrix;
mod sweep;
pub mod plot;
pub mod verdict;

pub(crate) use api::strip_command_output;
pub use api::{describe_exit, AllocCause, Board, BoardBuilder, BoardSpecError, Error, PreparedBoard, Session, DEFAULT_BOOT_TIMEOUT_MS, DEFAULT_COMMAND_TIMEOUT_MS, DEFAULT_MAX_INSNS};
pub use file::{parse_size, Action, BoardSpec, Cmp, Counter, Expect, Scenario, ScenarioError, Source, Step, SweepSpec, ValueError};
pub use procfs::{parse_meminfo, parse_vmstat, Counters};
pub use report::{json_line, json_string, junit_xml, xml_escape};
pub use run::{run_prepared, run_prepared_with, run_scenario, ScenarioResult, Status};
pub use sweep::{parse_seed_range, parse_shard, run_indexed};
pub use verdict::{Combination, Header, Line, Plan, RunRecord, Smallest, SweepError};

/// The guest shell's prompt.
pub const PROMPT: &str = "# ";

#[cfg(test)]
mod tests;
