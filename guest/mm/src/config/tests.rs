use super::*;

fn parse(s: &str) -> (Config, Vec<String>) {
    let mut errs = Vec::new();
    let c = parse_bootargs(s, &mut |e| errs.push(e.to_string()));
    (c, errs)
}

#[test]
fn default_profile_is_debian() {
    let (c, e) = parse("console=ttyAMA0");
    assert!(e.is_empty());
    assert_eq!(c, Config::for_profile(Profile::Debian61));
    assert_eq!((c.max_order, c.pageblock_order, c.vmsplit), (12, 11, VmSplit::Split3G));
    assert_eq!(c.cma_size_mbytes, 16);
    assert_eq!(c.cma_size_sel, CmaSizeSel::Mbytes);
    assert_eq!(c.cma_min_alignment_bytes(), 8 << 20);
    assert_eq!(c.cma, None);
}

#[test]
fn biscuitos_profile_anywhere_on_the_line() {
    let (c, e) = parse("cmaemu.max_order=11 cmaemu.profile=biscuitos-5.0");
    assert!(e.is_empty());
    assert_eq!((c.max_order, c.pageblock_order, c.vmsplit), (11, 10, VmSplit::Split2G));
    assert_eq!(c.cma_min_alignment_bytes(), 4 << 20);
}

#[test]
fn knobs_override_profile() {
    let (c, e) = parse(
        "cmaemu.profile=biscuitos-5.0 cmaemu.vmsplit=3G cmaemu.cma_size_mbytes=128 \
         cmaemu.cma_size_sel=max cmaemu.cma_size_percentage=25 cmaemu.pageblock_order=9",
    );
    assert!(e.is_empty(), "{e:?}");
    assert_eq!(c.vmsplit, VmSplit::Split3G);
    assert_eq!(c.cma_size_mbytes, 128);
    assert_eq!(c.cma_size_sel, CmaSizeSel::Max);
    assert_eq!(c.cma_size_percentage, 25);
    assert_eq!(c.pageblock_order, 9);
}

#[test]
fn cma_param_is_recorded() {
    let (c, e) = parse("cma=4M@0x69000000-0x69800000");
    assert!(e.is_empty());
    assert_eq!(c.cma, Some(CmaCmdline { size: 4 << 20, base: 0x6900_0000, limit: 0x6980_0000 }));
    let (c, _) = parse("cma=0");
    assert_eq!(c.cma, Some(CmaCmdline { size: 0, base: 0, limit: 0 }));
}

#[test]
fn cma_without_value_is_reported_and_ignored() {
    let (c, e) = parse("cma");
    assert_eq!(c.cma, None);
    assert_eq!(e, vec!["cma: Config string not provided"]);
}

#[test]
fn malformed_knobs_name_param_and_value() {
    let (c, e) = parse(
        "cmaemu.profile=ubuntu cmaemu.max_order=twelve cmaemu.max_order=40 cmaemu.vmsplit=1G \
         cmaemu.cma_size_sel=most cmaemu.cma_size_percentage=101 cmaemu.pageblock_order",
    );
    assert_eq!(c, Config::default());
    assert_eq!(
        e,
        vec![
            "cmaemu.profile=ubuntu: unknown value (expected debian-6.1 or biscuitos-5.0)",
            "cmaemu.max_order=twelve: not a number",
            "cmaemu.max_order=40: out of range (must be 2..=14)",
            "cmaemu.vmsplit=1G: unknown value (expected 3G or 2G)",
            "cmaemu.cma_size_sel=most: unknown value (expected mbytes, percentage, min or max)",
            "cmaemu.cma_size_percentage=101: out of range (must be 0..=100)",
            "cmaemu.pageblock_order: missing value (expected cmaemu.pageblock_order=...)",
        ]
    );
}

#[test]
fn pageblock_order_clamped_below_max_order() {
    let (c, e) = parse("cmaemu.max_order=10");
    assert_eq!((c.max_order, c.pageblock_order), (10, 9));
    assert_eq!(e, vec!["cmaemu.pageblock_order=11: must be below cmaemu.max_order=10, using 9"]);
}

#[test]
fn inject_set_and_unknown_names() {
    let (c, e) = parse("cmaemu.inject=skip_copy,skip-tlb-flush,bogus,,dma_noncontig");
    assert!(c.inject.contains(Inject::SkipCopy));
    assert!(c.inject.contains(Inject::SkipTlbFlush));
    assert!(c.inject.contains(Inject::DmaNoncontig));
    assert!(!c.inject.contains(Inject::DmaAfterFree));
    assert_eq!(e.len(), 1);
    assert!(e[0].starts_with("cmaemu.inject=bogus: unknown fault-injection switch"));
}

#[test]
fn trace_event_raw_and_truncated() {
    let (c, e) = parse("trace_event=cma:cma_alloc_start,cma:cma_release");
    assert!(e.is_empty());
    assert_eq!(c.trace_event.as_str(), "cma:cma_alloc_start,cma:cma_release");
    let long = format!("trace_event={}", "x".repeat(300));
    let (c, e) = parse(&long);
    assert_eq!(c.trace_event.len(), TRACE_EVENT_MAX);
    assert_eq!(e, vec!["trace_event: value longer than 256 bytes, truncated"]);
}

#[test]
fn coherent_pool_and_memblock_debug() {
    let (c, e) = parse("coherent_pool=1M memblock=debug");
    assert!(e.is_empty());
    assert_eq!(c.coherent_pool, 1 << 20);
    assert!(c.memblock_debug);
    let (c, e) = parse("coherent_pool=1Mx");
    assert_eq!(c.coherent_pool, 1 << 20);
    assert_eq!(e, vec!["coherent_pool=1Mx: ignoring trailing characters"]);
}

#[test]
fn lowmem_limit_per_split() {
    let d = Config::default();
    assert_eq!(d.lowmem_limit(0x6000_0000, 0xa000_0000), 0x9000_0000);
    let b = Config::for_profile(Profile::Biscuitos50);
    assert_eq!(b.lowmem_limit(0x6000_0000, 0xa000_0000), 0xa000_0000);
}

#[test]
fn proc_config_text() {
    let (c, _) = parse("cmaemu.profile=biscuitos-5.0 cmaemu.cma_size_mbytes=128 cmaemu.inject=skip_copy");
    let mut s = String::new();
    c.write_proc_config(&mut s).unwrap();
    assert!(s.contains("# cmaemu.profile=biscuitos-5.0\n"));
    assert!(s.contains("CONFIG_ARCH_FORCE_MAX_ORDER=11\n"));
    assert!(s.contains("CONFIG_CMA_SIZE_MBYTES=128\n"));
    assert!(s.contains("CONFIG_CMA_SIZE_SEL_MBYTES=y\n"));
    assert!(s.contains("# CONFIG_CMA_SIZE_SEL_MAX is not set\n"));
    assert!(s.contains("# CONFIG_HIGHMEM is not set\n"));
    assert!(s.contains("# cmaemu.inject=skip_copy\n"));
}

#[test]
fn sysctl_min_free_kbytes() {
    let (c, e) = parse("console=ttyAMA0 sysctl.vm.min_free_kbytes=4096");
    assert!(e.is_empty(), "{e:?}");
    assert_eq!(c.sysctl_min_free_kbytes, Some(4096));
    // process_sysctl_arg: `sysctl/` and `/` for `.`
    assert_eq!(parse("sysctl/vm/min_free_kbytes=2048").0.sysctl_min_free_kbytes, Some(2048));
    assert_eq!(parse("sysctl.vm/min_free_kbytes=1").0.sysctl_min_free_kbytes, Some(1));
    // not a sysctl, or another one
    assert_eq!(parse("sysctlvm.min_free_kbytes=5 sysctl.vm.min_free_kbyte=5 vm.min_free_kbytes=5").0.sysctl_min_free_kbytes, None);
    let (c, e) = parse("sysctl.vm.min_free_kbytes=x");
    assert_eq!(c.sysctl_min_free_kbytes, None);
    assert_eq!(e, vec!["sysctl.vm.min_free_kbytes=x: not a number"]);
    assert_eq!(Config::default().sysctl_min_free_kbytes, None);
}
