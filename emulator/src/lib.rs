//! cmaemu: an instrumented vexpress-a9 emulator.
pub mod board;
pub mod cpu;
pub mod devices;
pub mod explain;
pub mod findings;
pub mod fuzz;
pub mod instrument;
pub mod introspect;
pub mod loader;
pub mod outpath;
pub mod oracle;
pub mod scenario;
pub mod bench;
pub mod memory;
pub mod trace;
pub mod verify;
