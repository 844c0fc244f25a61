use super::compare::*;
use std::time::Duration;
use super::*;

fn case() -> Case {
    Case { name: "t".into(), description: String::new(), dtb: DtbSource::Generated, ram: 256 << 20, bootargs: String::new(), dts_append: String::new(), steps: vec![] }
}

fn tr(boot: &str, steps: &[(&str, &str)]) -> Transcript {
    Transcript { boot: boot.into(), steps: steps.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(), wall: Duration::from_secs(1), boot_wall: Duration::ZERO }
}

#[test]
fn timestamps_kvas_and_user_pfns_are_normalised_and_counted() {
    let a = tr(
        "[    0.000000] cma: Reserved 32 MiB at 0x6d000000\n[    0.000000] Memory: 1K/2K available (3K kernel code, 49152K cma-reserved, 0K highmem)\ncmaemu: not modelled: x\n",
        &[
            ("echo 1 > /dev/cma_test", "[    5.100000] misc cma_test: alloc virt: 0xc1000000 phys: 0x6d100000\n"),
            ("pin 2", "pin: 2 pages pinned (first at va 0x00400000, pfn 0x6a123)\n"),
            ("cat /proc/meminfo", "MemTotal: 5 kB\nCmaTotal:          32768 kB\nCmaFree:           30720 kB\n"),
        ],
    );
    let b = tr(
        "[   12.123456] cma: Reserved 32 MiB at 0x6d000000\n[    0.000000] Memory: 9K/2K available (7K kernel code, 49152K cma-reserved, 0K highmem)\n[    3.0] amba: probe\n",
        &[
            ("echo 1 > /dev/cma_test", "[  100.000001] misc cma_test: alloc virt: 0xffe00000 phys: 0x6d100000\n[  100.1] random driver\n"),
            ("pin 2", "pin: 2 pages pinned (first at va 0x00400000, pfn 0x7f001)\n"),
            ("cat /proc/meminfo", "MemTotal: 7 kB\nCmaTotal:          32768 kB\nCmaFree:           30720 kB\n"),
        ],
    );
    let r = compare(&case(), &a, &b);
    assert_eq!(r.identical(), r.quantities.len(), "{:#?}", r.quantities);
    assert!(r.quantities.iter().any(|q| q.what.contains("CmaFree")));
    assert!(r.quantities.iter().any(|q| q.what == "boot: Memory: cma-reserved" && q.cmaemu.as_deref() == Some("49152K cma-reserved")));
    assert_eq!(r.not_compared.get("cmaemu's own `cmaemu:` lines"), Some(&(1, 0)));
    assert!(r.not_compared.keys().any(|k| k.starts_with("pfns of user pages")));
    assert!(r.not_compared.keys().any(|k| k.starts_with("other kernel messages")));
}

#[test]
fn a_different_cma_pfn_or_zone_is_a_difference() {
    let a = tr("[    0.000000] Zone ranges:\n[    0.000000]   Normal   [mem 0x60000000-0x6fffffff]\n", &[("dma alloc x 16", "dma: x: 16 pages at pfn 0x6f000\n")]);
    let b = tr("[    0.000000] Zone ranges:\n[    0.000000]   DMA      [mem 0x60000000-0x6fffffff]\n", &[("dma alloc x 16", "dma: x: 16 pages at pfn 0x6f010\n")]);
    let r = compare(&case(), &a, &b);
    let d: Vec<&str> = r.quantities.iter().filter(|q| !q.same()).map(|q| q.what.as_str()).collect();
    assert_eq!(d, ["boot: zone range Normal", "step 1 `dma alloc x 16`: line 1", "boot: zone range DMA"], "{:#?}", r.quantities);
    let rep = super::report(&[r], &LinuxAssets { version: "linux-image-x 1 (pinned)".into(), ..Default::default() });
    assert!(rep.contains("linux-image-x 1 (pinned)") && rep.contains("cmaemu `dma: x: 16 pages at pfn 0x6f000` / Linux `dma: x: 16 pages at pfn 0x6f010`"), "{rep}");
}

#[test]
fn pagetypeinfo_compares_cma_pageblocks_per_zone() {
    let t = "Page block order: 11\nPages per block:  2048\n\nFree pages count per migrate type at order       0 \nNumber of blocks type     Unmovable      Movable  Reclaimable   HighAtomic          CMA      Isolate \nNode 0, zone   Normal            3            9            0            0            4            0 \n";
    let t2 = t.replace("           4            0 \n", "           5            0 \n");
    let r = compare(&case(), &tr("", &[("cat /proc/pagetypeinfo", t)]), &tr("", &[("cat /proc/pagetypeinfo", &t2)]));
    let d: Vec<&str> = r.quantities.iter().filter(|q| !q.same()).map(|q| q.what.as_str()).collect();
    assert_eq!(d, ["step 1 `cat /proc/pagetypeinfo`: Normal CMA pageblocks"]);
}

#[test]
fn case_files_are_checked() {
    let p = Path::new("/x/c.toml");
    let ok = Case::parse(p, "dtb = \"linux\"\nram = \"256M\"\nbootargs = \"console=ttyAMA0\"\nsteps = [\"cat /proc/meminfo\"]\n").unwrap();
    assert_eq!((ok.name.as_str(), ok.ram, ok.dtb), ("c", 256 << 20, DtbSource::Linux));
    let e = Case::parse(p, "dtb = \"linux\"\nram = \"lots\"\nbootargs = \"\"\nsteps = []\n").unwrap_err().to_string();
    assert!(e.contains("ram"), "{e}");
    let e = Case::parse(p, "dtb = \"linux\"\nram = \"256M\"\nbootarg = \"\"\nsteps = []\n").unwrap_err().to_string();
    assert!(e.contains("bootarg"), "{e}");
    assert!(Case::parse(p, "dtb = \"linux\"\nram = \"256M\"\nbootargs = \"\"\nsteps = [\"poweroff\"]\n").is_err());
}

#[test]
fn a_kernel_message_inside_the_echoed_command_is_taken_out() {
    let raw = "ca[  101.5] misc cma_test: free virt: 0xf0000000 phys: 0x70700000\nt /dev/cma_test\r\nplain\noracle# ";
    assert_eq!(super::step_text(raw), "[  101.5] misc cma_test: free virt: 0xf0000000 phys: 0x70700000\nplain\n");
    assert_eq!(super::step_text("cmd\nout\n# "), "out\n");
}

#[test]
fn the_cma_debug_line_is_not_compared_and_named() {
    let a = tr("", &[("dma alloc x 4096", "[    1.0] cma: cma_alloc: x: alloc failed, req-size: 4096 pages, ret: -12\n[    1.0] cma: number of available pages: 4032@64=> 4032 free of 4096 total pages\ndma: x: failed\n")]);
    let b = tr("", &[("dma alloc x 4096", "[    9.0] cma: cma_alloc: x: alloc failed, req-size: 4096 pages, ret: -12\ndma: x: failed\n")]);
    let r = compare(&case(), &a, &b);
    assert_eq!(r.identical(), r.quantities.len(), "{:#?}", r.quantities);
    assert!(r.not_compared.iter().any(|(k, n)| k.contains("CONFIG_CMA_DEBUG") && *n == (1, 0)), "{:?}", r.not_compared);
}

#[test]
fn cma_test_addresses_outside_every_area_are_buddy_and_counted() {
    let boot = "[    0.000000] Reserved memory: created DMA memory pool at 0x4c000000, size 8 MiB\n[    0.000000] cma: Reserved 16 MiB at 0x6f000000\n";
    let a = tr(boot, &[("echo 1 > /dev/cma_test", "[    5.1] misc cma_test: alloc virt: 0xc1000000 phys: 0x63a00000\n"), ("echo 1 > /dev/cma_test", "[    5.2] misc cma_test: alloc virt: 0xc2000000 phys: 0x6f000000\n")]);
    let b = tr(boot, &[("echo 1 > /dev/cma_test", "[    9.1] misc cma_test: alloc virt: 0xe1000000 phys: 0x62800000\n"), ("echo 1 > /dev/cma_test", "[    9.2] misc cma_test: alloc virt: 0xe2000000 phys: 0x6f100000\n")]);
    let r = compare(&case(), &a, &b);
    let q = |w: &str| r.quantities.iter().find(|q| q.what.starts_with(w)).unwrap().clone();
    // the buddy's addresses depend on each kernel's own footprint
    assert!(q("step 1").same(), "{:?}", q("step 1"));
    assert_eq!(q("step 1").cmaemu.as_deref(), Some("misc cma_test: alloc virt: <kva> phys: <buddy>"));
    // inside the CMA area: compared
    assert!(!q("step 2").same());
    assert!(r.not_compared.iter().any(|(k, n)| k.starts_with("addresses of DMA buffers from the buddy") && *n == (1, 1)));
    assert_eq!(reserved_areas_for_test(boot), vec![(0x4c00_0000, 0x4c80_0000), (0x6f00_0000, 0x7000_0000)]);
}

#[test]
fn cma_free_after_a_fill_is_named_by_the_balance_rule_and_later_steps_follow() {
    let mi = |free: u32, cma: u32| format!("MemFree: {free} kB\nHighFree: 0 kB\nCmaFree: {cma} kB\n");
    let steps = |f1: u32, c1: u32, f2: u32, c2: u32, c3: u32| {
        vec![
            ("cat /proc/meminfo".to_string(), mi(250000, 32512)),
            ("fill 200 3".to_string(), String::new()),
            ("cat /proc/meminfo".to_string(), mi(f1, c1)),
            ("dma alloc a 1024".to_string(), String::new()),
            ("cat /proc/meminfo".to_string(), mi(f2, c2)),
            ("cat /proc/meminfo".to_string(), mi(f2, c3)),
        ]
    };
    let t = |s: Vec<(String, String)>| Transcript { boot: String::new(), steps: s, wall: Duration::from_secs(1), boot_wall: Duration::ZERO };
    // cmaemu: 26112 ~ 52168/2; Linux: 10732 ~ 21420/2; step 5 follows; step 6 identical
    let a = t(steps(52168, 26112, 40000, 14380, 9000));
    let b = t(steps(21420, 10732, 6240, 0, 9000));
    let r = compare(&case(), &a, &b);
    let c = causes(&r);
    assert!(c["step 3 `cat /proc/meminfo`: CmaFree"].contains("MemFree cmaemu 52168 kB / Linux 21420 kB, CmaFree near MemFree/2 on both"), "{c:?}");
    assert!(c["step 5 `cat /proc/meminfo`: CmaFree"].starts_with("follows from the difference at step 3"), "{c:?}");
    assert!(!c.contains_key("step 6 `cat /proc/meminfo`: CmaFree"));
    // HighMem run to its watermark: 0 kB CMA free of 496 is not the balance point
    let mh = |high: u32, cma: u32| format!("MemFree: 400000 kB\nHighFree: {high} kB\nCmaFree: {cma} kB\n");
    let th = |high: u32, cma: u32| t(vec![("fill 600 7".to_string(), String::new()), ("cat /proc/meminfo".to_string(), mh(high, cma))]);
    let rh = compare(&case(), &th(588, 324), &th(496, 0));
    let ch = causes(&rh);
    assert!(ch["step 2 `cat /proc/meminfo`: CmaFree"].contains("HighFree cmaemu 588 kB / Linux 496 kB, CmaFree near HighFree/2 on cmaemu; HighMem was filled"), "{ch:?}");
    let rep = super::report(&[r], &LinuxAssets::default());
    assert!(rep.contains("2 of 2 differences have a named cause"), "{rep}");
    // no fill before it, or far from the rule: not named
    let mut a2 = t(steps(52168, 26112, 40000, 14380, 9000));
    a2.steps[1].0 = "echo 1 > /dev/cma_test".into();
    let mut b2 = t(steps(21420, 10732, 6240, 0, 9000));
    b2.steps[1].0 = "echo 1 > /dev/cma_test".into();
    assert!(causes(&compare(&case(), &a2, &b2)).is_empty());
    let r3 = compare(&case(), &t(steps(52168, 20000, 40000, 14380, 9000)), &t(steps(21420, 3000, 6240, 0, 9000)));
    assert!(causes(&r3).is_empty());
    assert!(super::report(&[r3], &LinuxAssets::default()).contains("Cause: not known"));
}

#[test]
fn cma_free_after_a_release_within_the_pcp_high_is_named_as_parked_pages() {
    let mi = |cma: u32| format!("MemFree: 200000 kB\nCmaFree: {cma} kB\n");
    let t = |s: &[(&str, String)]| Transcript { boot: String::new(), steps: s.iter().map(|(a, b)| (a.to_string(), b.clone())).collect(), wall: Duration::from_secs(1), boot_wall: Duration::ZERO };
    let steps = |after_release: u32, after_alloc: u32| {
        vec![
            ("echo 1 > /dev/cma_test", String::new()),
            ("cat /proc/meminfo", mi(after_alloc)),
            ("cat /dev/cma_test", String::new()),
            ("cat /proc/meminfo", mi(after_release)),
        ]
    };
    let mut c = case();
    c.bootargs = "console=ttyAMA0 cma=128M sysctl.vm.min_free_kbytes=4096".into();
    // 24 kB apart after the release: within high (5120 kB)
    let r = compare(&c, &t(&steps(125956, 100000)), &t(&steps(125932, 100001)));
    let k = causes(&r);
    assert!(k["step 4 `cat /proc/meminfo`: CmaFree"].contains("parked on the per-CPU list (high = low watermark = 5120 kB here)"), "{k:?}");
    // after the allocation (the lists were drained): not this cause
    assert!(!k.contains_key("step 2 `cat /proc/meminfo`: CmaFree"), "{k:?}");
    // more than high apart: not named
    let r = compare(&c, &t(&steps(125956, 1)), &t(&steps(115932, 1)));
    assert!(causes(&r).is_empty());
}

#[test]
fn watermarks_are_compared_only_with_a_fixed_min_free_kbytes() {
    let zi = |min: u32, pcp: u32| format!("Node 0, zone      DMA\n  pages free     100\n        min      {min}\n        low      {}\n        high     {}\n        spanned  32768\n        present  32768\n        managed  {}\n  pagesets\n    cpu: 0\n              count: 5\n              high:  {pcp}\n              batch: 7\n", min + 256, min + 512, 30000 + min);
    let a = tr("", &[("cat /proc/zoneinfo", &zi(1024, 1280))]);
    let b = tr("", &[("cat /proc/zoneinfo", &zi(1023, 1279))]);
    // the default: footprint figures, not compared
    let r = compare(&case(), &a, &b);
    assert_eq!(r.identical(), r.quantities.len(), "{:#?}", r.quantities);
    let mut c = case();
    c.bootargs = "console=ttyAMA0 sysctl.vm.min_free_kbytes=4096".into();
    let r = compare(&c, &a, &b);
    let differ: Vec<&str> = r.quantities.iter().filter(|q| !q.same()).map(|q| q.what.as_str()).collect();
    assert_eq!(differ, ["step 1 `cat /proc/zoneinfo`: DMA min", "step 1 `cat /proc/zoneinfo`: DMA low", "step 1 `cat /proc/zoneinfo`: DMA high", "step 1 `cat /proc/zoneinfo`: DMA pcp high"]);
    // managed and batch stay footprint figures
    assert!(!r.quantities.iter().any(|q| q.what.contains("managed") || q.what.contains("batch")));
}

#[test]
fn highmem_low_and_high_follow_the_lowmem_footprint_and_are_not_compared() {
    let zi = |low: u32| format!("Node 0, zone  HighMem\n  pages free     100\n        min      64\n        low      {low}\n        high     {}\n        spanned  65536\n", low + 88);
    let mut c = case();
    c.bootargs = "sysctl.vm.min_free_kbytes=4096".into();
    let r = compare(&c, &tr("", &[("cat /proc/zoneinfo", &zi(150))]), &tr("", &[("cat /proc/zoneinfo", &zi(152))]));
    assert_eq!(r.identical(), r.quantities.len(), "{:#?}", r.quantities);
    assert!(r.quantities.iter().any(|q| q.what.ends_with("HighMem min")));
}

#[test]
fn cmafree_is_normalised_by_the_cma_pages_on_the_per_cpu_lists_and_shown_raw() {
    let out = |free: u32, counted: u32, pcp: u32| format!("MemTotal: 5 kB\nCmaTotal:          16384 kB\nCmaFree:           {counted} kB\ncmastat: HighMem: {free} kB free, {counted} kB counted, {pcp} kB on per-CPU lists (132 pages listed, batch 15, stat_threshold 6)\n");
    // released pages parked on the list, and meminfo's counter lagging (the real kernel)
    let a = tr("", &[("cat /proc/meminfo", &out(15576, 15576, 552))]);
    let b = tr("", &[("cat /proc/meminfo", &out(15600, 15576, 528))]);
    let r = compare(&case(), &a, &b);
    let q = r.quantities.iter().find(|q| q.what.ends_with("CmaFree")).unwrap();
    // raw identical here (the counter lags), so nothing to normalise
    assert!(q.raw_same() && q.normalised.is_none());
    let b = tr("", &[("cat /proc/meminfo", &out(15600, 15600, 528))]);
    let r = compare(&case(), &a, &b);
    let q = r.quantities.iter().find(|q| q.what.ends_with("CmaFree")).unwrap();
    assert!(!q.raw_same() && q.same(), "{q:?}");
    let n = q.normalised.as_ref().unwrap();
    assert_eq!((n.cmaemu, n.linux), (16128, 16128));
    assert_eq!(r.identical_raw() + 1, r.identical());
    // the cmastat lines are not meminfo fields, and are counted as such
    assert!(r.quantities.iter().any(|q| q.what.ends_with("field set") && q.cmaemu.as_deref() == Some("MemTotal,CmaTotal,CmaFree")));
    assert!(r.not_compared.iter().any(|(k, n)| k.contains("cmastat") && *n == (1, 1)), "{:?}", r.not_compared);
    let rep = super::report(&[r], &LinuxAssets::default());
    assert!(rep.contains("raw cmaemu `15576 kB` / Linux `15600 kB`; normalisation 1: 16128 kB on both"), "{rep}");
    assert!(rep.contains("Raw (as printed): "), "{rep}");
    // a CMA page in use on one side only stays a difference, with the split shown
    let b = tr("", &[("cat /proc/meminfo", &out(15596, 15596, 528))]);
    let r = compare(&case(), &a, &b);
    let q = r.quantities.iter().find(|q| q.what.ends_with("CmaFree")).unwrap();
    assert!(!q.same(), "{q:?}");
    let rep = super::report(&[r], &LinuxAssets::default());
    assert!(rep.contains("Linux 16124 kB = HighMem: 15596 kB free + 528 kB on per-CPU lists"), "{rep}");
}

#[test]
fn page_counts_after_a_fill_sized_from_free_memory_are_masked_and_counted() {
    let a = tr("", &[("fill leave 40 3", "fill: 46080 pages mapped at 0x00400000-0x0b800000\n"), ("check", "check: 46080 pages ok\n")]);
    let b = tr("", &[("fill leave 40 3", "fill: 38412 pages mapped at 0x00400000-0x09c0c000\n"), ("check", "check: 38412 pages ok\n")]);
    let r = compare(&case(), &a, &b);
    assert_eq!(r.identical(), r.quantities.len(), "{:#?}", r.quantities);
    assert!(r.quantities.iter().any(|q| q.cmaemu.as_deref() == Some("fill: <n> pages mapped at <n>-<n>")));
    assert!(r.not_compared.iter().any(|(k, n)| k.contains("fill leave") && *n == (2, 2)), "{:?}", r.not_compared);
    // a bad page is still a difference
    let b = tr("", &[("fill leave 40 3", "fill: 38412 pages mapped at 0x00400000-0x09c0c000\n"), ("check", "check: 1 of 38412 pages bad\n")]);
    assert!(compare(&case(), &a, &b).quantities.iter().any(|q| !q.same()));
    // without `fill leave`, counts are compared
    let a = tr("", &[("fill 40 3", "fill: 10240 pages mapped at 0x00400000-0x02c00000\n")]);
    let b = tr("", &[("fill 40 3", "fill: 10239 pages mapped at 0x00400000-0x02bff000\n")]);
    assert!(compare(&case(), &a, &b).quantities.iter().any(|q| !q.same()));
}

#[test]
fn after_a_fill_sized_from_free_memory_cmafree_is_compared_within_the_rules_lag_then_as_changes() {
    let mem = |free: u32, pcp: u32| format!("CmaTotal:          32768 kB\nCmaFree:           {free} kB\ncmastat: DMA: {free} kB free, {free} kB counted, {pcp} kB on per-CPU lists (40 pages listed, batch 15, stat_threshold 6)\n");
    let steps = |f: u32, g: u32, h: u32| vec![("fill leave 40 7".to_string(), "fill: 1 pages mapped at 0x00400000-0x00401000\n".to_string()), ("cat /proc/meminfo".into(), mem(f, 28)), ("dma alloc camera-cma 2048".into(), "dma: camera-cma: 2048 pages at pfn 0x6e000\n".into()), ("cat /proc/meminfo".into(), mem(g, 0)), ("cat /proc/meminfo".into(), mem(h, 0))];
    let t = |v: Vec<(String, String)>| Transcript { boot: String::new(), steps: v, wall: Duration::from_secs(1), boot_wall: Duration::ZERO };
    // 20 kB apart after the fill (bound (9 + 7) pages = 64 kB), then the same changes
    let a = t(steps(20500, 12336, 12336));
    let b = t(steps(20480, 12316, 12320));
    let r = compare(&case(), &a, &b);
    let q = |w: &str| r.quantities.iter().find(|q| q.what == format!("{w} CmaFree")).unwrap().clone();
    let first = q("step 2 `cat /proc/meminfo`:");
    assert!(first.same() && !first.raw_same(), "{first:?}");
    assert!(first.normalised.as_ref().unwrap().cmaemu_split.contains("bound 64 kB"), "{first:?}");
    assert!(q("step 4 `cat /proc/meminfo`:").same());
    // a change of 4 kB more on one side is a difference
    let last = q("step 5 `cat /proc/meminfo`:");
    assert!(!last.same(), "{last:?}");
    assert_eq!(last.normalised.as_ref().map(|n| (n.cmaemu, n.linux)), Some((-8192, -8188)));
    // beyond the bound: a difference
    let r = compare(&case(), &a, &t(steps(20400, 12236, 12236)));
    assert!(!r.quantities.iter().find(|q| q.what == "step 2 `cat /proc/meminfo`: CmaFree").unwrap().same());
    // without `fill leave` no such rule
    let mut c = steps(20500, 12336, 12336);
    c[0].0 = "fill 180 7".into();
    let mut d = steps(20480, 12316, 12316);
    d[0].0 = "fill 180 7".into();
    let r = compare(&case(), &t(c), &t(d));
    assert!(r.quantities.iter().filter(|q| q.what.ends_with("CmaFree")).all(|q| !q.same()));
}
