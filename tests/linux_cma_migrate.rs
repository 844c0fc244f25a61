//! Migrations driven by a CMA allocation on the real Debian 6.1 armmp
//! kernel, checked page by page from the host (issue 21): the oracle's
//! user program (oracle/user) fills anonymous memory until movable pages
//! land in the CMA areas, then allocates a whole 16 MiB pool with
//! `dma_alloc_coherent` through the oracle module's platform device whose
//! DT node names the pool by `memory-region`; the kernel migrates every
//! used page out of it. The host checks each move at the kernel's own
//! functions (instrument::linux: content at `folio_migrate_flags`, the
//! TLB after `ptep_clear_flush`, every PTE after the migration pass), and
//! the number of moves it checked equals the kernel's `pgmigrate_success`.
//! Then the host plants bugs in the kernel's text in guest memory — the
//! TLB flush (`flush_tlb_page` returns at once, or flushes another ASID)
//! and the restore of the PTEs (`remove_migration_pte` returns at once) —
//! and each is caught, in a CMA allocation and in compaction.
//!
//! Skipped (with a message) only when the package registry is unreachable.
use cmaemu::board::machine::{Machine, RunOptions, Step};
use cmaemu::findings::Check;
use cmaemu::introspect::linux::{DebugInfo, Layout, LinuxMm, VmcoreInfo};
use cmaemu::oracle::{build_dtb, Case, DtbSource, LinuxAssets};
use std::sync::Arc;

#[path = "common/linux.rs"]
#[allow(dead_code)] // linux_dtb: this test builds its DTB with the oracle's dtc merge
mod linux;

const RAM: u64 = 256 << 20;
const PROMPT: &str = "oracle# ";
/// A 64 MiB reusable pool and the oracle's device using it.
const DTS: &str = r#"
/ {
	reserved-memory {
		cam: camera-cma { compatible = "shared-dma-pool"; reusable; size = <0x4000000>; };
	};
	dma-test-0 { compatible = "cmaemu,dma-test"; memory-region = <&cam>; };
};
"#;
const POOL: &str = "camera-cma";
const POOL_PAGES: u32 = 16384;
/// The pool is the only CMA area (no default one): movable allocations
/// take its pages once they are more than half the free pages (Linux
/// 6.1's `__rmqueue`).
const BOOTARGS: &str = "console=ttyAMA0 cma=0";

struct Run {
    m: Machine,
    debug: Arc<DebugInfo>,
}

impl Run {
    /// Send one command to the oracle program; its output.
    fn cmd(&mut self, c: &str) -> String {
        let before = self.m.output().len();
        self.m.send(&format!("{c}\n"));
        assert_eq!(self.m.run_until(PROMPT), Step::Paused, "`{c}` did not return to the prompt:\n{}", &self.m.output()[before..]);
        self.m.output()[before..].replace('\r', "")
    }

    /// The last command of a run whose kernel a planted bug may have broken:
    /// run until its prompt or the kernel's oops, in steps of 200 M
    /// instructions.
    fn last(&mut self, c: &str) {
        let before = self.m.output().len();
        self.m.send(&format!("{c}\n"));
        for _ in 0..50 {
            self.m.budget(200_000_000);
            match self.m.run_until(PROMPT) {
                Step::Timeout => {
                    let out = &self.m.output()[before..];
                    if out.contains("Internal error") || out.contains("Kernel panic") {
                        return;
                    }
                }
                _ => return,
            }
        }
        panic!("`{c}` neither returned nor oopsed:\n{}", &self.m.output()[before..]);
    }

    /// `/proc/vmstat`'s `pgmigrate_success`.
    fn migrated(&mut self) -> u64 {
        let out = self.cmd("cat /proc/vmstat");
        let l = out.lines().find(|l| l.starts_with("pgmigrate_success ")).expect("pgmigrate_success in /proc/vmstat");
        l["pgmigrate_success ".len()..].trim().parse().unwrap()
    }

    fn session(&self) -> &cmaemu::instrument::linux::LinuxSession {
        self.m.linux_session().expect("the Linux session")
    }

    /// (migrations, TLB checks, PTE checks, violations of `check`) so far.
    fn counts(&self, check: Check) -> (u64, u64, u64, usize) {
        let s = self.session();
        (s.migrations_checked, s.tlb_checked, s.ptes_checked, s.violations.iter().filter(|v| v.check == check).count())
    }

    /// The kernel's layout (its linear map from the library, not assumed).
    fn mm(&self) -> LinuxMm {
        let v = VmcoreInfo::locate(self.m.ram()).unwrap();
        LinuxMm::read(self.m.ram(), &Layout::new(&v, &self.debug).unwrap()).unwrap()
    }

    /// Allocate the whole pool with `flush_tlb_page` replaced by `insns`:
    /// every TLB check of the allocation reports a stale translation, no
    /// other check fires, and the fill (`pages` in all) reads back intact
    /// once the stale entries are dropped; then free the pool.
    fn tlb_flush_planted_in_a_cma_allocation(&mut self, insns: &[u32], what: &str, pages: u32) {
        let old = self.patch("flush_tlb_page", insns);
        let c0 = self.counts(Check::MigrateTlb);
        self.cmd(&format!("dma alloc {POOL} {POOL_PAGES}"));
        self.patch("flush_tlb_page", &old);
        let c1 = self.counts(Check::MigrateTlb);
        eprintln!("CMA allocation {what}: {} moves, {} TLB checks, {} stale translations reported", c1.0 - c0.0, c1.1 - c0.1, c1.3 - c0.3);
        assert!(c1.1 - c0.1 >= 100, "TLB flushes to check: {}", c1.1 - c0.1);
        assert_eq!((c1.3 - c0.3) as u64, c1.1 - c0.1, "every planted bug caught ({what})");
        self.m.cpu().flush_caches();
        let out = self.cmd("check");
        assert!(out.contains(&format!("check: {pages} pages ok")), "the fill is intact:\n{out}");
        let others: Vec<_> = self.session().violations.iter().filter(|v| v.check != Check::MigrateTlb).collect();
        assert!(others.is_empty(), "only the planted bug's check fired: {:#?}", &others[..others.len().min(3)]);
        self.cmd(&format!("dma free {POOL}"));
    }

    /// Overwrite the first instructions of kernel function `name` in guest
    /// memory (and drop translated code); returns what was there.
    fn patch(&mut self, name: &str, insns: &[u32]) -> Vec<u32> {
        let pa = self.mm().lowmem_pa(self.debug.symbol(name).unwrap());
        let ram = self.m.ram().clone();
        let old: Vec<u32> = (0..insns.len()).map(|i| ram.read_u32(pa + 4 * i as u64).unwrap()).collect();
        for (i, w) in insns.iter().enumerate() {
            ram.write_u32(pa + 4 * i as u64, *w).unwrap();
        }
        self.m.cpu().flush_caches();
        old
    }
}

const BX_LR: u32 = 0xe12f_ff1e;
const MOV_R0_1: u32 = 0xe3a0_0001;
/// `orr r1, r1, #0xff`: the ASID field of `flush_tlb_page`'s address.
const ORR_R1_R1_FF: u32 = 0xe381_10ff;
/// `mcr p15, 0, r1, c8, c3, 1`: TLBIMVAIS (the VA and ASID in r1).
const MCR_TLBIMVAIS_R1: u32 = 0xee08_1f33;

fn boot() -> Option<Run> {
    let assets = linux::Env::of("linux-assets.sh", &["dbg"])?;
    let oracle = linux::Env::of("linux-oracle.sh", &[])?;
    let la = LinuxAssets { zimage: assets.path("ZIMAGE"), initrd: oracle.path("ORACLE_INITRD"), dtb: assets.path("DTB"), qemu: Default::default(), version: String::new() };
    let case = Case { name: "linux-cma-migrate".into(), description: String::new(), dtb: DtbSource::Linux, ram: RAM, bootargs: BOOTARGS.into(), dts_append: DTS.into(), steps: Vec::new() };
    let dtb = build_dtb(&case, &la).unwrap_or_else(|e| panic!("{e}"));
    let debug = Arc::new(DebugInfo::load(&assets.path("VMLINUX")).unwrap_or_else(|e| panic!("{e}")));
    let opts = RunOptions { linux_debuginfo: Some(debug.clone()), ..Default::default() };
    let m = Machine::linux_with_options(&assets.read("ZIMAGE"), Some(&oracle.read("ORACLE_INITRD")), &dtb, RAM, 200_000_000_000, opts).expect("build the board");
    let mut r = Run { m, debug };
    assert_eq!(r.m.run_until(PROMPT), Step::Paused, "no oracle prompt; console:\n{}", r.m.output());
    Some(r)
}

/// The CMA allocation migrates every used page out of the pool; each move
/// is checked (content, TLB, PTEs), as many as the kernel counts, none
/// fails; then the TLB flush patched out of the kernel is caught in a CMA
/// allocation and in compaction, and so is the PTE restore.
#[test]
fn cma_allocation_through_the_test_module_migrates_pages_checked_one_by_one_and_planted_bugs_are_caught() {
    let t = std::time::Instant::now();
    let Some(mut r) = boot() else { return };
    eprintln!("booted in {:.1} s", t.elapsed().as_secs_f64());
    let mm = r.mm();
    let pool = mm.cma.iter().find(|c| c.name == POOL).unwrap_or_else(|| panic!("no {POOL} area: {:?}", mm.cma.iter().map(|c| &c.name).collect::<Vec<_>>())).clone();
    assert_eq!(pool.count, POOL_PAGES, "the pool's pages");

    // Clean: fill, then allocate the whole pool.
    let out = r.cmd("fill 130 7");
    assert!(out.contains("fill: 33280 pages mapped"), "{out}");
    let before = r.migrated();
    let c0 = r.counts(Check::MigrateTlb);
    let out = r.cmd(&format!("dma alloc {POOL} {POOL_PAGES}"));
    assert!(out.contains(&format!("dma: {POOL}: {POOL_PAGES} pages at pfn {:#x}", pool.base_pfn)), "the whole pool allocated at its base:\n{out}");
    let kernel = r.migrated() - before;
    let c1 = r.counts(Check::MigrateTlb);
    let (moves, tlb, ptes) = (c1.0 - c0.0, c1.1 - c0.1, c1.2 - c0.2);
    eprintln!("CMA allocation: the kernel migrated {kernel} pages; the host checked {moves} moves, {tlb} TLB flushes, {ptes} PTEs; {:.1} s so far", t.elapsed().as_secs_f64());
    assert!(kernel >= 500, "a migration-heavy allocation: {kernel} pages migrated");
    assert_eq!(moves, kernel, "every migration the kernel counts was checked");
    assert!(tlb >= kernel / 2, "TLB flushes checked for the current task's pages: {tlb} of {kernel}");
    assert!(ptes >= kernel, "every moved page's PTE found on the new frame: {ptes} of {kernel}");
    let out = r.cmd("check");
    assert!(out.contains("check: 33280 pages ok"), "the task's data survived the moves:\n{out}");
    let s = r.session();
    assert!(s.violations.is_empty(), "violations on a clean kernel: {:#?}", &s.violations[..s.violations.len().min(3)]);
    assert!(s.error.is_none(), "{:?}", s.error);
    // The pool's bitmap, read at a quiet point, holds what the kernel
    // reported allocating (the module's `dma: camera-cma: 16384 pages at
    // pfn ...`): every bit.
    assert_eq!(r.m.run_until_quiet(), Step::Paused);
    let area = r.mm().cma.into_iter().find(|c| c.name == POOL).unwrap();
    assert_eq!((area.base_pfn, area.used_pages()), (pool.base_pfn, POOL_PAGES as u64), "the bitmap holds the whole pool");

    // The TLB flush patched out (flush_tlb_page returns at once), in
    // compaction: unmap the top of the fill (holes all over the zone), compact.
    r.cmd("free 80");
    let old = r.patch("flush_tlb_page", &[BX_LR]);
    let c0 = r.counts(Check::MigrateTlb);
    r.cmd("echo 1 > /proc/sys/vm/compact_memory");
    r.patch("flush_tlb_page", &old);
    let c1 = r.counts(Check::MigrateTlb);
    eprintln!("compaction without TLB flushes: {} moves, {} TLB checks, {} stale translations reported", c1.0 - c0.0, c1.1 - c0.1, c1.3 - c0.3);
    assert!(c1.1 - c0.1 >= 100 && (c1.3 - c0.3) as u64 == c1.1 - c0.1, "every missing flush caught in compaction: {} of {}", c1.3 - c0.3, c1.1 - c0.1);
    eprintln!("first: {}", r.session().violations.iter().find(|v| v.check == Check::MigrateTlb).unwrap().detail);
    r.m.cpu().flush_caches(); // the stale translations the planted bug left
    let out = r.cmd("check");
    assert!(out.contains("check: 12800 pages ok"), "the rest of the fill is intact (the stale translations dropped):\n{out}");
    r.cmd(&format!("dma free {POOL}"));
    assert_eq!(r.m.run_until_quiet(), Step::Paused);
    let area = r.mm().cma.into_iter().find(|c| c.name == POOL).unwrap();
    assert_eq!(area.used_pages(), 0, "the kernel released the pool: no bit left set");

    // ... and in a CMA allocation: the pool is free and more than half the
    // free memory, so fresh pages land in it; the allocation moves them.
    r.cmd("fill 20 11");
    r.tlb_flush_planted_in_a_cma_allocation(&[BX_LR], "without TLB flushes", 17920);

    // A flush for the wrong address space: flush_tlb_page invalidates the
    // VA under ASID 0xff (TLBIMVAIS naming an ASID no task of this run
    // holds) instead of the task's own; the task's translation stays in a
    // real TLB. Each is caught (an ASID-blind check would take the
    // invalidate as covering the VA and report nothing).
    r.cmd("fill 20 12");
    r.tlb_flush_planted_in_a_cma_allocation(&[ORR_R1_R1_FF, MCR_TLBIMVAIS_R1, BX_LR], "flushing ASID 0xff", 23040);

    // The PTE restore patched out (remove_migration_pte returns true at
    // once: every PTE of a moved page stays a migration entry for the old,
    // freed frame), in a CMA allocation. It may break the oracle program's
    // own pages too (compaction moved some into the pool), so the kernel
    // may oops when it next touches them: the last step.
    r.cmd("fill 20 13");
    r.patch("remove_migration_pte", &[MOV_R0_1, BX_LR]);
    let c0 = r.counts(Check::MigratePte);
    r.last(&format!("dma alloc {POOL} {POOL_PAGES}"));
    let c1 = r.counts(Check::MigratePte);
    eprintln!("CMA allocation without PTE restore: {} moves, {} PTEs not restored reported; {:.1} s in all", c1.0 - c0.0, c1.3 - c0.3, t.elapsed().as_secs_f64());
    assert!(c1.0 - c0.0 >= 200 && (c1.3 - c0.3) as u64 * 10 >= (c1.0 - c0.0) * 9, "PTEs left as migration entries caught: {} in {} moves", c1.3 - c0.3, c1.0 - c0.0);
    eprintln!("first: {}", r.session().violations.iter().find(|v| v.check == Check::MigratePte).unwrap().detail);
}

/// The PTE restore patched out of the kernel (`remove_migration_pte`
/// returns true at once) in compaction: every PTE left as a migration
/// entry is reported. A boot of its own: the broken PTEs cannot even be
/// unmapped, and the oracle program's own pages break too.
#[test]
fn compaction_that_leaves_migration_entries_behind_is_caught() {
    let t = std::time::Instant::now();
    let Some(mut r) = boot() else { return };
    r.cmd("fill 130 7");
    r.cmd(&format!("dma alloc {POOL} {POOL_PAGES}"));
    r.cmd("free 80");
    r.patch("remove_migration_pte", &[MOV_R0_1, BX_LR]);
    let c0 = r.counts(Check::MigratePte);
    r.last("echo 1 > /proc/sys/vm/compact_memory");
    let c1 = r.counts(Check::MigratePte);
    eprintln!("compaction without PTE restore: {} moves, {} PTEs not restored reported; {:.1} s", c1.0 - c0.0, c1.3 - c0.3, t.elapsed().as_secs_f64());
    assert!(c1.0 - c0.0 >= 100 && c1.3 > c0.3, "PTEs left as migration entries caught in compaction: {} in {} moves", c1.3 - c0.3, c1.0 - c0.0);
    eprintln!("first: {}", r.session().violations.iter().find(|v| v.check == Check::MigratePte).unwrap().detail);
}
