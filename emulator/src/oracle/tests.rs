use super::compare::*;
use std::time::Duration;
use super::*;

fn case() -> Case {
    Case { name: "t".into(), description: String::new(), dtb: DtbSource::Generated, ram: 256 << 20, bootargs: String::new(), dts_append: String::new(), steps: vec![] }
}

fn tr(boot: &str, steps: &[(&str, &str)]) -> Transcript {
    Transcript { boot: boot.into(), steps: steps.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(), wall: Duration::from_secs(1) }
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
