//! The CPU side of a machine snapshot (`board::snapshot`): the engine's
//! register context (every mode's banked registers, CP15, VFP: Unicorn's
//! `uc_context_save`), the instruction counter and the glue's own state.
//! RAM and devices are saved by their owners. Taken and restored while the
//! CPU is stopped between runs; in-process only (the engine context holds
//! host pointers).
//!
//! Taking a snapshot drops the engine's TLB, and so does restoring one:
//! the run that goes on after a snapshot and every run restored from it
//! start with the same empty TLB and no translated code, so they retire
//! the same instructions and print the same bytes.
use super::{ucr, Bus, Cpu, CpuError, CpuStats, ExcRecord};

/// The CPU and glue state of a snapshot.
pub struct CpuSnapshot {
    ctx: unicorn_engine::Context,
    insns: u64,
    blocks: u64,
    limit: u64,
    irq_line: bool,
    masked: bool,
    idle_ns: u64,
    max_insns: u64,
    stats: CpuStats,
    last_exc: Option<ExcRecord>,
    nested_aborts: u32,
}

impl<B: Bus> Cpu<'_, B> {
    /// Save the CPU's state (call between runs). Drops the engine's TLB and
    /// translated code (see the module documentation).
    pub fn save(&mut self) -> Result<CpuSnapshot, CpuError> {
        let ctx = ucr("context save", self.uc.context_init())?;
        ucr("flush tlb", self.uc.ctl_flush_tlb())?;
        ucr("flush translations", self.uc.ctl_flush_tb())?;
        let st = self.uc.get_data();
        let f = st.fast();
        Ok(CpuSnapshot {
            ctx,
            insns: f.c.insns,
            blocks: f.c.blocks,
            limit: f.limit,
            irq_line: f.irq_line,
            masked: f.masked,
            idle_ns: st.idle_ns,
            max_insns: st.max_insns,
            stats: st.stats,
            last_exc: st.last_exc,
            nested_aborts: st.nested_aborts,
        })
    }

    /// Put the CPU back as `s` saved it (restore RAM first or after: the
    /// engine's TLB and translated code are dropped here).
    pub fn restore(&mut self, s: &CpuSnapshot) -> Result<(), CpuError> {
        ucr("context restore", self.uc.context_restore(&s.ctx))?;
        ucr("flush tlb", self.uc.ctl_flush_tlb())?;
        ucr("flush translations", self.uc.ctl_flush_tb())?;
        let st = self.uc.get_data_mut();
        st.idle_ns = s.idle_ns;
        st.max_insns = s.max_insns;
        st.stats = s.stats;
        st.last_exc = s.last_exc;
        st.nested_aborts = s.nested_aborts;
        st.stop = None;
        st.fault_pending = None;
        st.pending = None;
        st.last_fill = (0, u64::MAX);
        let f = st.fast_mut();
        f.c.insns = s.insns;
        f.c.blocks = s.blocks;
        f.c.stopped = 0;
        f.set(s.limit, s.irq_line, s.masked);
        Ok(())
    }
}
