//! The vexpress-a9 board: its devices on one bus ([`bus`]), the boot
//! sequence and the machine's parts ([`machine`]), the DMA masters and frame
//! scheduling ([`scanout`]), console pacing ([`pacing`]), the run loop
//! ([`run`]) and stepping ([`step`]).
pub mod bus;
pub mod console;
pub mod frames;
pub mod machine;
pub mod pacing;
pub mod profile;
pub mod run;
pub mod scanout;
pub mod snapshot;
pub mod step;
pub mod unmodelled;
