//! The host's reading of the kernel printed as the kernel prints it:
//! `/proc/buddyinfo`, `/proc/pagetypeinfo` (mm/vmstat.c, Linux 6.1) and
//! `/proc/meminfo`'s CMA lines, so that a test can compare them byte for
//! byte with what the guest itself prints.
use super::read::LinuxMm;
use crate::introspect::MT_NAMES;
use std::fmt::Write;

fn mt_name(mt: usize) -> String {
    MT_NAMES.get(mt).map(|s| s.to_string()).unwrap_or_else(|| format!("type{mt}"))
}

/// `/proc/buddyinfo` (`frag_show_print`, populated zones of node 0).
pub fn buddyinfo(mm: &LinuxMm) -> String {
    let mut s = String::new();
    for z in mm.zones.iter().filter(|z| z.populated()) {
        let _ = write!(s, "Node 0, zone {:>8} ", z.name);
        for n in &z.nr_free {
            let _ = write!(s, "{n:6} ");
        }
        s.push('\n');
    }
    s
}

/// `/proc/pagetypeinfo` (`pagetypeinfo_show`: free blocks per order and
/// migrate type, counted on the lists, then pageblocks per migrate type).
pub fn pagetypeinfo(mm: &LinuxMm) -> String {
    let l = &mm.layout;
    let mut s = String::new();
    let _ = writeln!(s, "Page block order: {}", l.pageblock_order);
    let _ = writeln!(s, "Pages per block:  {}", 1u32 << l.pageblock_order);
    s.push('\n');
    let _ = write!(s, "{:<43} ", "Free pages count per migrate type at order");
    for order in 0..l.max_order {
        let _ = write!(s, "{order:6} ");
    }
    s.push('\n');
    for z in mm.zones.iter().filter(|z| z.populated()) {
        for mt in 0..l.migrate_types as usize {
            let _ = write!(s, "Node {:4}, zone {:>8}, type {:>12} ", 0, z.name, mt_name(mt));
            for order in 0..l.max_order as usize {
                let n = z.list_blocks[order][mt];
                // the kernel stops counting at 100000
                if n >= 100_000 {
                    let _ = write!(s, ">{:6} ", 100_000);
                } else {
                    let _ = write!(s, "{n:6} ");
                }
            }
            s.push('\n');
        }
    }
    let _ = write!(s, "\n{:<23}", "Number of blocks type ");
    for mt in 0..l.migrate_types as usize {
        let _ = write!(s, "{:>12} ", mt_name(mt));
    }
    s.push('\n');
    let pb = 1u32 << l.pageblock_order;
    for z in mm.zones.iter().filter(|z| z.populated()) {
        let mut count = vec![0u64; l.migrate_types as usize];
        let mut pfn = z.start_pfn;
        while pfn < z.end_pfn() {
            if let Some(mt) = mm.pageblock_mt(pfn) {
                if let Some(c) = count.get_mut(mt as usize) {
                    *c += 1;
                }
            }
            pfn += pb;
        }
        let _ = write!(s, "Node 0, zone {:>8} ", z.name);
        for c in count {
            let _ = write!(s, "{c:12} ");
        }
        s.push('\n');
    }
    s
}

/// `/proc/meminfo`'s `MemFree:`, `CmaTotal:` and `CmaFree:` lines (the
/// global `NR_FREE_PAGES`, `totalcma_pages` and the global
/// `NR_FREE_CMA_PAGES`; per-CPU deltas not folded in, as there).
pub fn meminfo_free_cma(mm: &LinuxMm) -> String {
    let free = mm.global_free_pages().max(0) as u64;
    let cma_free: i64 = mm.zones.iter().map(|z| z.vm_free_cma).sum::<i64>().max(0);
    format!("MemFree:        {:8} kB\nCmaTotal:       {:8} kB\nCmaFree:        {:8} kB\n", free * 4, mm.totalcma_pages as u64 * 4, cma_free as u64 * 4)
}
