//! Host service without stopping the engine.
//!
//! The guest rings the verifiers' doorbell once per migrated page. The
//! MMIO write used to stop the engine at the next block boundary (the
//! callback itself must not stop: Unicorn would replay the store), serve,
//! and resume; each stop and resume cost more than the 4 KiB copy it
//! bracketed. Now the engine calls the counter's `on_stop` at that block
//! start, which serves the doorbell itself, doing exactly what the stop
//! and resume did, in the same order and with the same counts:
//!
//! 1. the stop: the block is not counted and not run;
//! 2. `Cpu::run_from`'s serviced branch: tick the devices to now, re-arm,
//!    run the servicer (it reads and fills the TLB through the engine, as
//!    it did while the engine was stopped), re-arm;
//! 3. the resume: the engine checks the stop conditions again at the same
//!    block start (and stops if a deadline is now due), then counts and
//!    runs the block.
//!
//! A doorbell the servicer can answer without the devices (a verifier's
//! light doorbell: [`super::Servicer::serve_light`]) skips steps 2's
//! ticks and re-arms: at a block start served here no device deadline is
//! due, so ticking would change nothing, and the deadline stays the limit.
//!
//! Whatever needs the run loop (an IRQ line raised, a stop asked for by a
//! device or a verifier) falls back to a real stop after step 2, which the
//! run loop then finishes (ticking and serving again at the same instant
//! change nothing). Virtual time, counts, TLB contents and so every trace
//! stay what they were with a stop per doorbell.
use super::{serve_light_on, serve_on, Bus, State};
use std::ffi::c_void;
use unicorn_engine::Unicorn;

/// Run the servicer at a block start, from the counter's `on_stop` (see
/// the module doc). `ctx` is the `Unicorn<State<B>>` handle the `Cpu`
/// keeps for this; `uc` the raw engine. Returns whether the block may run
/// (false: the engine stops).
///
/// # Safety
/// `ctx` must point to a live `Unicorn<State<B>>` of the engine `uc`, and
/// this must be called from that engine's `on_stop` (on its thread, with
/// no other reference to the engine's data live).
pub(super) unsafe fn serve_inline<B: Bus>(ctx: *mut c_void, _uc: *mut unicorn_engine_sys::uc_engine) -> bool {
    // SAFETY: the caller guarantees `ctx` is our engine handle; the
    // binding's own hook proxies reach the engine the same way while it
    // runs.
    let handle = unsafe { &mut *(ctx as *mut Unicorn<'_, State<B>>) };
    // a doorbell the servicer answers without the devices: nothing to
    // tick (no deadline is due here) and nothing to re-arm
    if serve_light_on(handle) {
        let st = handle.get_data_mut();
        return !(st.bus.stop_requested() || st.fast().irq_line);
    }
    let st = handle.get_data_mut();
    let now = st.now();
    st.bus.tick(now);
    st.rearm();
    serve_on(handle);
    let st = handle.get_data_mut();
    !(st.bus.stop_requested() || st.fast().irq_line)
}
