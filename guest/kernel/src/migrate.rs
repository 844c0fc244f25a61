//! The migration environment: `MigrateEnv` over our page tables (PTE
//! clear/set, TLB flush, page copy, the `mm_migrate_pages` tracepoint, the
//! host's `migrate_page` records), the migration fault injections, and the
//! `alloc_contig_range` context (`CmaContig`) CMA allocations run in.
use crate::arch::{self, phys_to_virt};
use crate::mm::pending::{self, Pending};
use crate::mm::task::Tasks;
use crate::mm::Mm;
use crate::vm;
use cmaemu_abi::page::Pfn;
use cmaemu_mm::cma::CmaAreas;
use cmaemu_mm::config::Config;
use cmaemu_mm::contig::CmaContig;
use cmaemu_mm::migrate::{MigrateEnv, MigrateFaults, MigratePagesEvent, Migrator, PteError};
use core::fmt;

/// The kernel's page-table, TLB and copy hooks for migration: the tasks'
/// tables and the page in flight, lent by the caller's `Mm`.
pub struct KEnv<'a> {
    pub tasks: &'a mut Tasks,
    pub pending: &'a mut Option<Pending>,
}

impl MigrateEnv for KEnv<'_> {
    fn contig_phase(&mut self, phase: u8, start: Pfn, end: Pfn) {
        crate::hostif::push(&cmaemu_abi::trace::TraceRecord::cma_phase(crate::hostif::now(), phase, start.0, end.0.saturating_sub(start.0)));
        if phase == cmaemu_abi::trace::CMA_PHASE_MIGRATE {
            // the drains are done: the host looks at what the per-CPU
            // lists still hold inside the range in the state of this moment
            crate::hostif::doorbell();
        }
    }
    fn clear_pte(&mut self, asid: u16, va: u32) -> Result<Pfn, PteError> {
        let t = self.tasks.by_asid(asid).ok_or(PteError::NoAsid(asid))?;
        let old = vm::clear_pte(t, va).ok_or(PteError::NotPresent(asid, va))?;
        let same = matches!(self.pending, Some(p) if p.old == old.0);
        if !same {
            // the previous page's records go with this page's doorbell
            pending::flush_quiet(self.pending);
            *self.pending = Some(Pending::new(old.0));
            // the host captures the old frame now, before anything moves
            crate::hostif::push(&cmaemu_abi::trace::TraceRecord::migrate_page_begin(crate::hostif::now(), old.0, 0, Some((asid as u32, va))));
            crate::hostif::doorbell();
        }
        if let Some(p) = self.pending {
            p.add_map(asid, va);
        }
        Ok(old)
    }
    fn set_pte(&mut self, asid: u16, va: u32, pfn: Pfn) {
        if let Some(t) = self.tasks.by_asid(asid) {
            // the slot was just cleared: its L2 table exists
            vm::set_pte(t, va, pfn, None);
        }
        if let Some(p) = self.pending {
            p.new = pfn.0;
        }
    }
    fn flush_tlb_page(&mut self, asid: u16, va: u32) {
        // flush_tlb_page: TLBIMVA (no ASIDs are in use; see vm.rs)
        arch::tlb_flush_va(va);
        crate::hostif::push(&cmaemu_abi::trace::TraceRecord::tlb_flush(crate::hostif::now(), 1, asid as u32, va));
    }
    fn copy_highpage(&mut self, from: Pfn, to: Pfn) {
        if let Some(p) = self.pending {
            if p.old == from.0 {
                p.new = to.0;
            }
        }
        // All RAM is in the kernel linear map (kmap_atomic is the identity).
        // Both frames are RAM in the linear map; `to` was just allocated
        // and `from` is isolated by migration: no overlap.
        arch::ram_copy(phys_to_virt(from.0 << 12), phys_to_virt(to.0 << 12), 4096);
    }
    fn trace_mm_migrate_pages(&mut self, ev: &MigratePagesEvent) {
        pending::flush(self.pending);
        let mode = ev.mode as u8;
        let ts = crate::hostif::now();
        let rec = cmaemu_abi::trace::TraceRecord::mm_migrate_pages(
            ts,
            ev.succeeded as u32,
            ev.failed as u32,
            0,
            0,
            0,
            mode,
            cmaemu_abi::trace::MR_CONTIG_RANGE,
        );
        crate::hostif::push(&rec);
        crate::trace::event("mm_migrate_pages", ts, &|w| {
            use core::fmt::Write;
            write!(w, "{}", ev)
        });
    }
    fn fault_fired(&mut self, name: &'static str, pfn: Pfn, arg: u32) {
        crate::hostif::fired_name(name, pfn.0, arg);
    }
    fn printk(&mut self, args: fmt::Arguments<'_>) {
        crate::printk::printk(args);
    }
    fn injected(&mut self, fault: MigrateFaults, pfn: Pfn, arg: u32) {
        if fault.contains(MigrateFaults::SKIP_LRU_DRAIN) {
            crate::hostif::fired(cmaemu_abi::trace::INJECT_SKIP_LRU_DRAIN, pfn.0, arg);
        }
    }
}

/// Migration fault injections from `cmaemu.inject=` (the names migrate.rs
/// knows; others belong to other subsystems).
pub fn migrate_faults(cfg: &Config) -> MigrateFaults {
    let mut f = MigrateFaults::NONE;
    for i in cfg.inject.iter() {
        if let Some(x) = MigrateFaults::from_name(i.name()) {
            f = f.with(x);
        }
    }
    f
}

/// Run `f` with a `Migrator` over the mm state (`None` before the page
/// allocator and the reverse map exist).
pub fn with_migrator<R>(mm: &mut Mm, f: impl FnOnce(&mut Migrator<'_, 'static, 'static, KEnv<'_>>) -> R) -> Option<R> {
    let Mm { pa, rmap, tasks, pending, config, .. } = mm;
    let (Some(pa), Some(rmap)) = (pa.as_mut(), rmap.as_mut()) else { return None };
    let mut env = KEnv { tasks, pending };
    let mut m = Migrator::new(pa, rmap, &mut env);
    m.faults = migrate_faults(config);
    Some(f(&mut m))
}

/// Run `f` with the CMA areas and a `ContigRange` (alloc_contig_range with
/// migration) for CMA area `area`.
pub fn with_contig<R>(
    mm: &mut Mm,
    area: u32,
    f: impl FnOnce(&mut CmaAreas<'static>, &mut CmaContig<'_, 'static, 'static, KEnv<'_>>) -> R,
) -> Option<R> {
    let Mm { pa, rmap, tasks, pending, config, areas, .. } = mm;
    let (Some(pa), Some(rmap), Some(areas)) = (pa.as_mut(), rmap.as_mut(), areas.as_mut()) else { return None };
    let mut env = KEnv { tasks, pending };
    let mut m = Migrator::new(pa, rmap, &mut env);
    m.faults = migrate_faults(config);
    let mut cc = CmaContig::new(m, area);
    Some(f(areas, &mut cc))
}
