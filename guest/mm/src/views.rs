//! `/proc` views of the page allocator in Linux 6.1's exact text formats
//! (mm/vmstat.c `frag_show_print`, `pagetypeinfo_show*`,
//! `zoneinfo_show_print`, `vmstat_show`; fs/proc/meminfo.c `show_val_kb`).
//! Everything is written into a `core::fmt::Write` sink; errors are the
//! sink's `fmt::Error`.
use crate::buddy::PageAlloc;
use crate::pageblock::{MigrateType, MIGRATETYPE_NAMES, MIGRATE_TYPES};
use crate::types::{pages_to_kb, Pfn};
use crate::zone::ZoneType;
use core::fmt::{self, Write};

/// `/proc/buddyinfo`: `Node 0, zone %8s ` then `%6lu ` per order, for each
/// populated zone.
pub fn buddyinfo(pa: &PageAlloc, w: &mut dyn Write) -> fmt::Result {
    for z in pa.zones().iter().filter(|z| z.populated()) {
        write!(w, "Node {}, zone {:>8} ", 0, z.kind.name())?;
        for order in 0..pa.profile.max_order {
            write!(w, "{:>6} ", z.free_area[order as usize].nr_free)?;
        }
        w.write_char('\n')?;
    }
    Ok(())
}

/// `/proc/pagetypeinfo` (without the page_owner "mixed blocks" table, which
/// Linux prints only when `page_owner=on`).
pub fn pagetypeinfo(pa: &PageAlloc, w: &mut dyn Write) -> fmt::Result {
    let max = pa.profile.max_order;
    writeln!(w, "Page block order: {}", pa.profile.pageblock_order)?;
    writeln!(w, "Pages per block:  {}", pa.pageblock_nr_pages())?;
    w.write_char('\n')?;
    // pagetypeinfo_showfree
    write!(w, "{:<43} ", "Free pages count per migrate type at order")?;
    for order in 0..max {
        write!(w, "{:>6} ", order)?;
    }
    w.write_char('\n')?;
    for (zid, z) in pa.zones().iter().enumerate().filter(|(_, z)| z.populated()) {
        for mt in MigrateType::ALL {
            write!(w, "Node {:>4}, zone {:>8}, type {:>12} ", 0, z.kind.name(), mt.name())?;
            for order in 0..max {
                let mut count = 0u64;
                let mut overflow = false;
                let mut cur = pa.get_page_from_free_area(zid, order, mt);
                while let Some(pfn) = cur {
                    count += 1;
                    if count >= 100_000 {
                        overflow = true;
                        break;
                    }
                    let next = pa.mem.page(Pfn(pfn)).map(|p| p.lru_next).unwrap_or(cmaemu_abi::page::PFN_NONE);
                    cur = (next != cmaemu_abi::page::PFN_NONE).then_some(next);
                }
                write!(w, "{}{:>6} ", if overflow { ">" } else { "" }, count)?;
            }
            w.write_char('\n')?;
        }
    }
    // pagetypeinfo_showblockcount
    write!(w, "\n{:<23}", "Number of blocks type ")?;
    for name in MIGRATETYPE_NAMES {
        write!(w, "{:>12} ", name)?;
    }
    w.write_char('\n')?;
    let pb = pa.pageblock_nr_pages();
    for (zid, z) in pa.zones().iter().enumerate().filter(|(_, z)| z.populated()) {
        let mut count = [0u64; MIGRATE_TYPES];
        let mut pfn = z.zone_start_pfn.0;
        while pfn < z.zone_end_pfn().0 {
            if pa.mem.pfn_valid(Pfn(pfn)) && pa.page_zone(Pfn(pfn)) == zid {
                count[pa.mem.get_pageblock_migratetype(Pfn(pfn)).idx()] += 1;
            }
            pfn += pb;
        }
        write!(w, "Node {}, zone {:>8} ", 0, z.kind.name())?;
        for c in count {
            write!(w, "{:>12} ", c)?;
        }
        w.write_char('\n')?;
    }
    Ok(())
}

/// `vm_zone_stat` item names of Linux 6.1 (`zone_stat_name`), with the
/// value we track; the LRU/writeback/mlock/bounce/zspages counters have no
/// counterpart in the guest and read 0.
fn zone_stat_items(free: u64, free_cma: u64) -> [(&'static str, u64); 11] {
    [
        ("nr_free_pages", free),
        ("nr_zone_inactive_anon", 0),
        ("nr_zone_active_anon", 0),
        ("nr_zone_inactive_file", 0),
        ("nr_zone_active_file", 0),
        ("nr_zone_unevictable", 0),
        ("nr_zone_write_pending", 0),
        ("nr_mlock", 0),
        ("nr_bounce", 0),
        ("nr_zspages", 0),
        ("nr_free_cma", free_cma),
    ]
}

/// `/proc/zoneinfo` for every zone of the build (populated or not). The
/// per-node stats block is left out; the pagesets show the one CPU's
/// per-cpu lists (`count`, `high`, `batch`) and `stat_threshold`.
pub fn zoneinfo(pa: &PageAlloc, w: &mut dyn Write) -> fmt::Result {
    for z in pa.zones() {
        write!(w, "Node {}, zone {:>8}", 0, z.kind.name())?;
        write!(
            w,
            "\n  pages free     {}\n        boost    {}\n        min      {}\n        low      {}\n        high     {}\n        spanned  {}\n        present  {}\n        managed  {}\n        cma      {}",
            z.free_pages(),
            z.watermark_boost,
            z.min_wmark_pages(),
            z.low_wmark_pages(),
            z.high_wmark_pages(),
            z.spanned_pages,
            z.present_pages,
            z.managed_pages,
            z.cma_pages
        )?;
        write!(w, "\n        protection: ({}", z.lowmem_reserve[0])?;
        for r in &z.lowmem_reserve[1..pa.nr_zones] {
            write!(w, ", {}", r)?;
        }
        w.write_char(')')?;
        if !z.populated() {
            w.write_char('\n')?;
            continue;
        }
        for (name, v) in zone_stat_items(z.free_pages(), z.free_cma_pages()) {
            write!(w, "\n      {:<12} {}", name, v)?;
        }
        write!(
            w,
            "\n  pagesets\n    cpu: 0\n              count: {}\n              high:  {}\n              batch: {}\n  vm stats threshold: {}",
            z.pcp.count, z.pcp.high, z.pcp.batch, z.stat_threshold
        )?;
        writeln!(w, "\n  node_unreclaimable:  0\n  start_pfn:           {}", z.zone_start_pfn.0)?;
    }
    Ok(())
}

/// The oracle's `cmastat` line per zone with CMA pages, as the oracle
/// module prints it on the real kernel (oracle/user/oracle.c): free CMA
/// pages (`zone_page_state_snapshot(NR_FREE_CMA_PAGES)`), the same counter
/// as `/proc/meminfo` reads it (Linux's lags by the CPU's unfolded
/// `vm_stat_diff`; the guest has no per-CPU counter deltas, so the two are
/// equal), the CMA pages on the per-CPU lists, every page listed there,
/// the list's `batch` and the zone's `stat_threshold`.
pub fn cmastat(pa: &PageAlloc, w: &mut dyn Write) -> fmt::Result {
    for (zid, z) in pa.zones().iter().enumerate() {
        if z.cma_pages == 0 {
            continue;
        }
        let free = z.free_cma_pages();
        writeln!(
            w,
            "cmastat: {}: {} kB free, {} kB counted, {} kB on per-CPU lists ({} pages listed, batch {}, stat_threshold {})",
            z.kind.name(),
            free * 4,
            free * 4,
            pa.pcp_cma_pages(zid) * 4,
            z.pcp.count,
            z.pcp.batch,
            z.stat_threshold
        )?;
    }
    Ok(())
}

/// `/proc/vmstat` subset: the zone counters, then the events we count, in
/// Linux's order.
pub fn vmstat(pa: &PageAlloc, w: &mut dyn Write) -> fmt::Result {
    for (name, v) in zone_stat_items(pa.nr_free_pages(), pa.nr_free_cma_pages()) {
        writeln!(w, "{} {}", name, v)?;
    }
    for (zid, z) in pa.zones().iter().enumerate() {
        let name = match z.kind {
            ZoneType::Dma => "pgalloc_dma",
            ZoneType::Normal => "pgalloc_normal",
            ZoneType::HighMem => "pgalloc_high",
            ZoneType::Movable => "pgalloc_movable",
        };
        writeln!(w, "{} {}", name, pa.events.pgalloc[zid])?;
    }
    let e = &pa.events;
    writeln!(w, "pgfree {}", e.pgfree)?;
    writeln!(w, "pgmigrate_success {}", e.pgmigrate_success)?;
    writeln!(w, "pgmigrate_fail {}", e.pgmigrate_fail)?;
    writeln!(w, "cma_alloc_success {}", e.cma_alloc_success)?;
    writeln!(w, "cma_alloc_fail {}", e.cma_alloc_fail)?;
    Ok(())
}

/// `si_mem_available` without page cache or reclaimable slab: free pages
/// minus `totalreserve_pages`, at least 0.
pub fn si_mem_available(pa: &PageAlloc) -> u64 {
    pa.nr_free_pages().saturating_sub(pa.totalreserve_pages)
}

/// `show_val_kb`: a 16-column label, the value in kB right-aligned in 8.
fn show_val_kb(w: &mut dyn Write, label: &str, pages: u64) -> fmt::Result {
    writeln!(w, "{}{:>8} kB", label, pages_to_kb(pages))
}

/// What `/proc/meminfo` needs beyond the page allocator: the kernel's
/// own counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MeminfoExtra {
    /// `NR_ANON_MAPPED`: anonymous pages mapped into user address spaces.
    pub anon_pages: u64,
    /// `NR_PAGETABLE`: user page-table pages (`pgtable_pte_page_ctor`
    /// counts each `pte_alloc_one` page; ARM's first-level tables are not
    /// counted).
    pub page_table_pages: u64,
}

/// `VMALLOC_TOTAL` in kB: `VMALLOC_END - VMALLOC_START`, with
/// `VMALLOC_START = (high_memory + VMALLOC_OFFSET) & ~(VMALLOC_OFFSET - 1)`
/// (arch/arm/include/asm/pgtable.h) and `high_memory` the virtual end of
/// lowmem (the end of ZONE_DMA and ZONE_NORMAL).
fn vmalloc_total_kb(pa: &PageAlloc) -> u64 {
    use crate::zone::{VMALLOC_END, VMALLOC_OFFSET};
    let lowmem = || pa.zones().iter().filter(|z| matches!(z.kind, ZoneType::Dma | ZoneType::Normal) && z.populated());
    let (Some(phys_offset), Some(lowmem_end)) = (lowmem().map(|z| (z.zone_start_pfn.0 as u64) << 12).min(), lowmem().map(|z| (z.zone_end_pfn().0 as u64) << 12).max()) else {
        return 0;
    };
    let high_memory = pa.profile.vmsplit.page_offset() + (lowmem_end - phys_offset);
    let start = (high_memory + VMALLOC_OFFSET) & !(VMALLOC_OFFSET - 1);
    VMALLOC_END.saturating_sub(start) >> 10
}

/// `/proc/meminfo` (fs/proc/meminfo.c `meminfo_proc_show`) for a Linux 6.1
/// ARM32 build like Debian's armmp: CONFIG_HIGHMEM (with the HighMem
/// profile), CONFIG_ZSWAP, CONFIG_CMA; no THP, hugetlbfs, memory-failure or
/// shadow call stack (those need LPAE or another architecture). Lines in
/// Linux's order; what the guest has no notion of (page cache, LRU lists,
/// slab, swap, vmalloc use, ...) reads 0 as on a kernel without it.
/// `CommitLimit` is `vm_commit_limit()` with the default overcommit ratio
/// (50%) and no swap; `Committed_AS` counts the mapped anonymous pages.
pub fn meminfo(pa: &PageAlloc, extra: &MeminfoExtra, w: &mut dyn Write) -> fmt::Result {
    let total = pa.totalram_pages();
    let free = pa.nr_free_pages();
    let anon = extra.anon_pages;
    show_val_kb(w, "MemTotal:       ", total)?;
    show_val_kb(w, "MemFree:        ", free)?;
    show_val_kb(w, "MemAvailable:   ", si_mem_available(pa))?;
    for label in [
        "Buffers:        ",
        "Cached:         ",
        "SwapCached:     ",
        "Active:         ",
        "Inactive:       ",
        "Active(anon):   ",
        "Inactive(anon): ",
        "Active(file):   ",
        "Inactive(file): ",
        "Unevictable:    ",
        "Mlocked:        ",
    ] {
        show_val_kb(w, label, 0)?;
    }
    if pa.profile.highmem {
        let high_total = pa.totalhigh_pages();
        let high_free = pa.nr_free_highpages();
        show_val_kb(w, "HighTotal:      ", high_total)?;
        show_val_kb(w, "HighFree:       ", high_free)?;
        show_val_kb(w, "LowTotal:       ", total - high_total)?;
        show_val_kb(w, "LowFree:        ", free - high_free)?;
    }
    show_val_kb(w, "SwapTotal:      ", 0)?;
    show_val_kb(w, "SwapFree:       ", 0)?;
    writeln!(w, "Zswap:          {:>8} kB", 0)?;
    writeln!(w, "Zswapped:       {:>8} kB", 0)?;
    show_val_kb(w, "Dirty:          ", 0)?;
    show_val_kb(w, "Writeback:      ", 0)?;
    show_val_kb(w, "AnonPages:      ", anon)?;
    for label in ["Mapped:         ", "Shmem:          ", "KReclaimable:   ", "Slab:           ", "SReclaimable:   ", "SUnreclaim:     "] {
        show_val_kb(w, label, 0)?;
    }
    writeln!(w, "KernelStack:    {:>8} kB", 0)?;
    show_val_kb(w, "PageTables:     ", extra.page_table_pages)?;
    show_val_kb(w, "SecPageTables:  ", 0)?;
    show_val_kb(w, "NFS_Unstable:   ", 0)?;
    show_val_kb(w, "Bounce:         ", 0)?;
    show_val_kb(w, "WritebackTmp:   ", 0)?;
    show_val_kb(w, "CommitLimit:    ", total * 50 / 100)?;
    show_val_kb(w, "Committed_AS:   ", anon)?;
    writeln!(w, "VmallocTotal:   {:>8} kB", vmalloc_total_kb(pa))?;
    show_val_kb(w, "VmallocUsed:    ", 0)?;
    show_val_kb(w, "VmallocChunk:   ", 0)?;
    show_val_kb(w, "Percpu:         ", 0)?;
    show_val_kb(w, "CmaTotal:       ", pa.totalcma_pages)?;
    show_val_kb(w, "CmaFree:        ", pa.nr_free_cma_pages())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buddy::tests::{boot, boot_full};
    use crate::gfp::*;
    use crate::profile::MmProfile;

    #[test]
    fn buddyinfo_of_a_fresh_1g_debian_board() {
        let pa = boot(MmProfile::DEBIAN_6_1, 0x60000, 1 << 18);
        let mut s = String::new();
        buddyinfo(&pa, &mut s).unwrap();
        assert_eq!(
            s,
            "Node 0, zone      DMA      0      0      0      0      0      0      0      0      0      0      0     96 \n\
             Node 0, zone  HighMem      0      0      0      0      0      0      0      0      0      0      0     32 \n"
        );
    }

    #[test]
    fn pagetypeinfo_layout_and_counts() {
        let cma = 0x60000 + 6 * 1024;
        let mut pa = boot_full(MmProfile::BISCUITOS_5_0, 0x60000, 8192, &[(cma, cma + 2048)], None, &[cma, cma + 1024]);
        pa.__alloc_pages(GFP_KERNEL, 0).unwrap();
        let mut s = String::new();
        pagetypeinfo(&pa, &mut s).unwrap();
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines[0], "Page block order: 10");
        assert_eq!(lines[1], "Pages per block:  1024");
        assert_eq!(lines[2], "");
        assert_eq!(lines[3], "Free pages count per migrate type at order       0      1      2      3      4      5      6      7      8      9     10 ");
        assert_eq!(lines[4], "Node    0, zone   Normal, type    Unmovable      1      1      1      1      1      1      1      1      1      1      0 ");
        assert_eq!(lines[5], "Node    0, zone   Normal, type      Movable      0      0      0      0      0      0      0      0      0      0      5 ");
        assert_eq!(lines[8], "Node    0, zone   Normal, type          CMA      0      0      0      0      0      0      0      0      0      0      2 ");
        assert_eq!(lines[10], "");
        assert_eq!(lines[11], "Number of blocks type     Unmovable      Movable  Reclaimable   HighAtomic          CMA      Isolate ");
        assert_eq!(lines[12], "Node 0, zone   Normal            1            5            0            0            2            0 ");
        assert_eq!(lines.len(), 13);
    }

    #[test]
    fn meminfo_and_vmstat_and_zoneinfo() {
        let cma = 0x60000 + 6 * 1024;
        let mut pa = boot_full(MmProfile::BISCUITOS_5_0, 0x60000, 8192, &[(cma, cma + 2048)], None, &[cma, cma + 1024]);
        let mut s = String::new();
        meminfo(&pa, &MeminfoExtra { anon_pages: 3, page_table_pages: 2 }, &mut s).unwrap();
        let avail = 8192 - pa.totalreserve_pages;
        assert!(
            s.starts_with(&format!("MemTotal:          32768 kB\nMemFree:           32768 kB\nMemAvailable:   {:>8} kB\nBuffers:               0 kB\n", avail * 4)),
            "{s}"
        );
        assert!(s.ends_with("CmaTotal:           8192 kB\nCmaFree:            8192 kB\n"), "{s}");
        assert!(s.contains("\nAnonPages:            12 kB\n"), "{s}");
        assert!(s.contains("\nPageTables:            8 kB\n"), "{s}");
        assert!(s.contains("\nCommitLimit:       16384 kB\nCommitted_AS:         12 kB\n"), "{s}");
        assert!(!s.contains("HighTotal"), "no HighMem in the biscuitos profile: {s}");
        // every line is `Label:<spaces>N kB`, 16 + 8 + 3 columns
        assert!(s.lines().all(|l| l.len() == 27 && l.ends_with(" kB")), "{s}");
        let p = pa.__alloc_pages(GFP_HIGHUSER_MOVABLE, 0).unwrap();
        pa.__free_pages(p, 0).unwrap();
        let mut v = String::new();
        vmstat(&pa, &mut v).unwrap();
        assert!(v.starts_with("nr_free_pages 8192\nnr_zone_inactive_anon 0\n"));
        assert!(v.contains("\nnr_free_cma 2048\npgalloc_normal 1\npgalloc_movable 0\npgfree "));
        assert!(v.ends_with("cma_alloc_success 0\ncma_alloc_fail 0\n"));
        let mut z = String::new();
        zoneinfo(&pa, &mut z).unwrap();
        assert!(z.starts_with("Node 0, zone   Normal\n  pages free     8192\n        boost    0\n        min      "));
        assert!(z.contains("\n        cma      2048\n        protection: (0, 0)\n      nr_free_pages 8192"));
        assert!(z.contains("\n  start_pfn:           393216\nNode 0, zone  Movable\n  pages free     0\n"));
        assert!(z.ends_with("        protection: (0, 0)\n"));
    }

    #[test]
    fn meminfo_highmem_split_on_debian() {
        let pa = boot(MmProfile::DEBIAN_6_1, 0x60000, 1 << 18);
        let mut s = String::new();
        meminfo(&pa, &MeminfoExtra::default(), &mut s).unwrap();
        assert!(s.contains("\nMlocked:               0 kB\nHighTotal:        262144 kB\nHighFree:         262144 kB\nLowTotal:         786432 kB\nLowFree:          786432 kB\nSwapTotal:             0 kB\n"), "{s}");
        assert!(s.starts_with("MemTotal:        1048576 kB\n"));
        // Linux's field set and order for 6.1 ARM32 (HIGHMEM, ZSWAP, CMA)
        let names: Vec<&str> = s.lines().map(|l| l.split(':').next().unwrap()).collect();
        assert_eq!(
            names.join(" "),
            "MemTotal MemFree MemAvailable Buffers Cached SwapCached Active Inactive Active(anon) Inactive(anon) \
             Active(file) Inactive(file) Unevictable Mlocked HighTotal HighFree LowTotal LowFree SwapTotal SwapFree \
             Zswap Zswapped Dirty Writeback AnonPages Mapped Shmem KReclaimable Slab SReclaimable SUnreclaim \
             KernelStack PageTables SecPageTables NFS_Unstable Bounce WritebackTmp CommitLimit Committed_AS \
             VmallocTotal VmallocUsed VmallocChunk Percpu CmaTotal CmaFree"
        );
        // 768 MiB lowmem at 0xc0000000: vmalloc from 0xf0800000 to 0xff800000
        assert!(s.contains("\nVmallocTotal:     245760 kB\n"), "{s}");
    }
}
