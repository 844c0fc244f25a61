//! The fuzz targets: every input the host takes, parsed as `cmaemu` parses
//! it, with the checks each allows. Seeds come from the repo: the board
//! DTB and `dts/` compiled with `dtc` (when installed), the built guest
//! kernel and firmware, `examples/`, a recorded trace.
use super::{dtbmut, Rng, Target};
use crate::board::console::{Capture, Console, Input};
use crate::board::machine::{self, Machine};
use crate::memory::map::{RAM_BASE, RAM_MAX_SIZE};
use crate::loader::dtb::Dtb;
use crate::loader::{board_dtb, images};
use crate::scenario;
use cmaemu_mm::cma::{CmaAreas, NoLog};
use cmaemu_mm::memblock::{Memblock, PhysAddr};
use cmaemu_mm::rmem::{PropCells, ReservedMemTable, ReservedMemoryDt, RmemNode};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Every target, in `cmaemu fuzz all` order.
pub fn all() -> Vec<Box<dyn Target>> {
    vec![
        Box::new(DtbTarget),
        Box::new(BoardDtb),
        Box::new(ElfKernel),
        Box::new(ElfFirmware),
        Box::new(ScenarioToml),
        Box::new(Trace),
        Box::new(Size),
        Box::new(Cmdline),
        Box::new(Rmem),
        Box::new(Gdb),
        Box::new(ConsoleInput),
    ]
}

/// The target named `name` (also `selftest`, which is not in `all`).
pub fn by_name(name: &str) -> Option<Box<dyn Target>> {
    if name == "selftest" {
        return Some(Box::new(SelfTest));
    }
    all().into_iter().find(|t| t.name() == name)
}

/// The harness's own test: panics on inputs starting with `!`, hangs on
/// `hang`, asks for 1 TiB on `oom` (so that tests can see each kind
/// caught, saved and replayed).
pub struct SelfTest;

impl Target for SelfTest {
    fn name(&self) -> &'static str {
        "selftest"
    }
    fn about(&self) -> &'static str {
        "the harness itself: '!…' panics, 'hang' hangs, 'oom' allocates 1 TiB"
    }
    fn seeds(&self) -> Vec<Vec<u8>> {
        vec![b"abc".to_vec()]
    }
    fn dictionary(&self) -> &'static [&'static str] {
        &["!"]
    }
    fn run(&self, input: &[u8]) -> String {
        match input {
            [b'!', ..] => panic!("selftest panic"),
            b"hang" => loop {
                std::thread::sleep(Duration::from_millis(10));
            },
            b"oom" => {
                let v = vec![1u8; 1 << 40];
                format!("{}", v[input.len()])
            }
            _ => "ok".into(),
        }
    }
}

/// The repo checkout this binary was built from (for `dts/`, `examples/`).
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn err_class(e: impl std::fmt::Display) -> String {
    format!("err: {e}")
}

/// The board DTBs: generated (1 GiB, 256 MiB, 64 MiB) and every `.dts` of
/// the repo compiled with `dtc` if it is installed (compiled once per
/// process).
pub fn dtb_seeds() -> Vec<Vec<u8>> {
    static SEEDS: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    SEEDS
        .get_or_init(|| {
            let mut v = vec![board_dtb::default_board_dtb(RAM_MAX_SIZE), board_dtb::default_board_dtb(256 << 20), board_dtb::default_board_dtb(64 << 20)];
            let mut srcs = Vec::new();
            for dir in ["dts", "dts/seeds"] {
                if let Ok(rd) = std::fs::read_dir(repo().join(dir)) {
                    srcs.extend(rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "dts")));
                }
            }
            srcs.sort();
            for src in srcs {
                if let Ok(out) = std::process::Command::new("dtc").args(["-q", "-I", "dts", "-O", "dtb"]).arg(&src).output() {
                    if out.status.success() {
                        v.push(out.stdout);
                    }
                }
            }
            v
        })
        .clone()
}

fn files(dir: &str, ext: &str) -> Vec<Vec<u8>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(repo().join(dir))
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == ext)).collect())
        .unwrap_or_default();
    paths.sort();
    paths.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

// ---------------------------------------------------------------- dtb

/// `Dtb::parse`, the memory and node helpers, and the writer: what we
/// write must parse back to the same tree.
pub struct DtbTarget;

impl Target for DtbTarget {
    fn name(&self) -> &'static str {
        "dtb"
    }
    fn about(&self) -> &'static str {
        "DTB reader (Dtb::parse, memory_regions, lookups) and writer (to_bytes round trip)"
    }
    fn seeds(&self) -> Vec<Vec<u8>> {
        dtb_seeds()
    }
    fn dictionary(&self) -> &'static [&'static str] {
        &["\u{d0}\r\u{fe}\u{ed}", "memory\0", "reg\0", "status\0", "device_type\0", "#address-cells\0", "#size-cells\0", "\0\0\0\u{1}", "\0\0\0\u{2}", "\0\0\0\u{3}", "\0\0\0\u{4}", "\0\0\0\u{9}"]
    }
    fn max_len(&self) -> usize {
        1 << 17
    }
    fn mutate(&self, rng: &mut Rng, input: &[u8]) -> Option<Vec<u8>> {
        dtbmut::mutate_blob(rng, input)
    }
    fn run(&self, input: &[u8]) -> String {
        let d = match Dtb::parse(input) {
            Ok(d) => d,
            Err(e) => return err_class(e),
        };
        let _ = (d.model(), d.compatible(), d.bootargs(), d.root.node_count(), d.root.prop_count());
        let _ = d.find_compatible("shared-dma-pool");
        let _ = (d.find_phandle(1), d.find("/reserved-memory/linux,cma"), d.find("/chosen"));
        let mem = d.memory_regions();
        let out = match d.to_bytes() {
            Ok(b) => b,
            Err(e) => return err_class(e),
        };
        let back = Dtb::parse(&out).unwrap_or_else(|e| panic!("our own output does not parse: {e}"));
        assert_eq!(back.root, d.root, "round trip changed the tree");
        assert_eq!(back.reservations, d.reservations, "round trip changed /memreserve/");
        match mem {
            Ok(r) => format!("ok: {} memory ranges", r.len().min(3)),
            Err(e) => err_class(e),
        }
    }
}

// ---------------------------------------------------------- board-dtb

/// `cmaemu boot`'s DTB path: `-m` and `--append` rewrites, the memory
/// checks, serialization ([`board_dtb::prepare_boot_dtb`]). Input: one
/// byte choosing `-m` (or none), one byte `n` (bit 7: no `--append`),
/// `n` bytes of `--append`, then the DTB.
pub struct BoardDtb;

const M_CHOICES: [Option<u64>; 8] = [None, Some(16 << 20), Some(32 << 20), Some(64 << 20), Some(256 << 20), Some(512 << 20), Some(RAM_MAX_SIZE), Some(17 << 20)];

impl Target for BoardDtb {
    fn name(&self) -> &'static str {
        "board-dtb"
    }
    fn about(&self) -> &'static str {
        "board DTB rewrite for boot: -m, --append, memory checks, serialization"
    }
    fn seeds(&self) -> Vec<Vec<u8>> {
        let mut v = Vec::new();
        for (i, d) in dtb_seeds().into_iter().enumerate() {
            let args: &[u8] = [&b"console=ttyAMA0 cma=16M"[..], b"", b"cmaemu.profile=biscuitos-5.0"][i % 3];
            let mut s = vec![(i % M_CHOICES.len()) as u8, if i % 4 == 3 { 0x80 } else { args.len() as u8 }];
            if i % 4 != 3 {
                s.extend_from_slice(args);
            }
            s.extend_from_slice(&d);
            v.push(s);
        }
        v
    }
    fn max_len(&self) -> usize {
        1 << 17
    }
    fn mutate(&self, rng: &mut Rng, input: &[u8]) -> Option<Vec<u8>> {
        let (m, append, dtb) = split_board(input)?;
        let blob = dtbmut::mutate_blob(rng, dtb)?;
        let mut s = vec![if rng.chance(4) { rng.next() as u8 } else { m }];
        match append {
            Some(a) if !rng.chance(8) => {
                s.push(a.len() as u8);
                s.extend_from_slice(a);
            }
            _ => s.push(0x80),
        }
        s.extend_from_slice(&blob);
        Some(s)
    }
    fn run(&self, input: &[u8]) -> String {
        let Some((m, append, dtb)) = split_board(input) else { return "short".into() };
        let memory = M_CHOICES[m as usize % M_CHOICES.len()];
        let append = append.map(String::from_utf8_lossy);
        match board_dtb::prepare_boot_dtb(dtb, memory, append.as_deref()) {
            Err(e) => err_class(e),
            Ok((blob, ram)) => {
                assert!(ram % (1 << 20) == 0 && (16 << 20..=RAM_MAX_SIZE).contains(&ram), "ram size {ram:#x}");
                if let Some(m) = memory {
                    assert_eq!(ram, m, "-m {m:#x} gave a {ram:#x} board");
                }
                let d = Dtb::parse(&blob).unwrap_or_else(|e| panic!("prepared DTB does not parse: {e}"));
                let regions = d.memory_regions().unwrap_or_else(|e| panic!("prepared DTB lost its memory: {e}"));
                assert!(regions.iter().all(|&(b, s)| b >= RAM_BASE && b + s <= RAM_BASE + ram), "{regions:x?} outside {ram:#x}");
                if let Some(a) = &append {
                    if !a.contains('\0') {
                        assert_eq!(d.bootargs().as_deref(), Some(a.as_ref()), "--append lost");
                    }
                }
                format!("ok: {} ranges", regions.len().min(3))
            }
        }
    }
}

fn split_board(input: &[u8]) -> Option<(u8, Option<&[u8]>, &[u8])> {
    let (&m, rest) = input.split_first()?;
    let (&n, rest) = rest.split_first()?;
    if n & 0x80 != 0 {
        return Some((m, None, rest));
    }
    let n = (n as usize).min(rest.len());
    Some((m, Some(&rest[..n]), &rest[n..]))
}

// ---------------------------------------------------------------- elf

const ELF_DICT: &[&str] = &["\u{7f}ELF", "\u{1}\u{1}\u{1}", "\0\0\0\u{60}", "\0\0\0\0", "\u{ff}\u{ff}\u{ff}\u{ff}", "BOOT_INFO\0"];

/// The ELFs with their section headers dropped (`e_shnum = 0`: no
/// symbols to parse, so mutations of the program headers run faster).
fn elf_seeds(main: &[u8]) -> Vec<Vec<u8>> {
    let mut v = vec![main.to_vec()];
    let mut bare = main.to_vec();
    if bare.len() > 0x34 {
        bare[0x30] = 0;
        bare[0x31] = 0;
        v.push(bare);
    }
    v
}

/// The kernel ELF as `cmaemu boot --kernel` loads it.
pub struct ElfKernel;

impl Target for ElfKernel {
    fn name(&self) -> &'static str {
        "elf-kernel"
    }
    fn about(&self) -> &'static str {
        "kernel ELF loader (parse, RAM and DTB checks, symbols)"
    }
    fn seeds(&self) -> Vec<Vec<u8>> {
        elf_seeds(images::KERNEL_ELF)
    }
    fn dictionary(&self) -> &'static [&'static str] {
        ELF_DICT
    }
    fn max_len(&self) -> usize {
        images::KERNEL_ELF.len() + 4096
    }
    fn run(&self, input: &[u8]) -> String {
        match machine::check_kernel(input, 256 << 20) {
            Err(e) => err_class(e),
            Ok((k, dtb_pa)) => {
                let (lo, hi) = k.extent();
                assert!(lo >= RAM_BASE && hi <= dtb_pa, "kernel {lo:#x}-{hi:#x} past the DTB at {dtb_pa:#x}");
                let _ = (k.function_at(k.entry_pa), k.symbol_pa("start_kernel"));
                "ok".into()
            }
        }
    }
}

/// The firmware ELF as `cmaemu boot --firmware` loads it into flash.
pub struct ElfFirmware;

impl Target for ElfFirmware {
    fn name(&self) -> &'static str {
        "elf-firmware"
    }
    fn about(&self) -> &'static str {
        "firmware ELF loader (parse, flash checks, flash image with BOOT_INFO)"
    }
    fn seeds(&self) -> Vec<Vec<u8>> {
        elf_seeds(images::FIRMWARE_ELF)
    }
    fn dictionary(&self) -> &'static [&'static str] {
        ELF_DICT
    }
    fn max_len(&self) -> usize {
        images::FIRMWARE_ELF.len() + 4096
    }
    fn run(&self, input: &[u8]) -> String {
        match machine::flash_image(input, 0x6800_0000, 0x6000_8000) {
            Err(e) => err_class(e),
            Ok((f, flash)) => {
                let (_, hi) = f.extent();
                assert!(flash.len() as u64 >= hi.max(4096), "flash {} bytes, image ends at {hi:#x}", flash.len());
                "ok".into()
            }
        }
    }
}

// ----------------------------------------------------------- scenario

/// Scenario TOML: parse, `{seed}` expansion, and the generated board.
pub struct ScenarioToml;

impl Target for ScenarioToml {
    fn name(&self) -> &'static str {
        "scenario"
    }
    fn about(&self) -> &'static str {
        "scenario TOML (Scenario::parse, with_seed, the [board] it describes)"
    }
    fn seeds(&self) -> Vec<Vec<u8>> {
        let mut v = files("examples", "toml");
        v.push(b"name = \"x\"\n[board]\nram = \"64M\"\nbootargs = \"console=ttyAMA0 seed={seed}\"\ncma = \"8M\"\n[[step]]\nsend = \"echo {seed}\"\nexpect_line = \"{seed}\"\n[[expect]]\nmeminfo = \"CmaFree >= 1024\"\n".to_vec());
        v
    }
    fn dictionary(&self) -> &'static [&'static str] {
        &["[board]\n", "[[step]]\n", "[[expect]]\n", "ram = ", "cma = ", "camera_cma = ", "bootargs = ", "inject = [\"skip_copy\"]", "max_insns = ", "boot_timeout_ms = ", "send = ", "expect_line = ", "timeout_ms = ", "meminfo = \"", "vmstat = \"", "no_line = ", "{seed}", "pending = true", "seed = ", "\"", "0x", "18446744073709551615", "4G", "\n", " >= ", " == ", " < "]
    }
    fn run(&self, input: &[u8]) -> String {
        let text = String::from_utf8_lossy(input);
        let sc = match scenario::Scenario::parse("fuzz.toml", &text) {
            Ok(s) => s,
            Err(e) => return err_class(e),
        };
        let v = sc.with_seed(super::fnv(input));
        if v.board.dtb.is_some() {
            // a path: reading files is not this target's business
            return "ok: dtb path".into();
        }
        match scenario::PreparedBoard::from_spec(&v.board, None) {
            Ok(b) => {
                // the file parser checks `ram`: a board it accepts boots
                assert!(b.ram_size % (1 << 20) == 0 && (16 << 20..=RAM_MAX_SIZE).contains(&b.ram_size), "ram {:#x}", b.ram_size);
                Dtb::parse(&b.dtb).unwrap_or_else(|e| panic!("generated board does not parse: {e}"));
                "ok".into()
            }
            Err(e) => err_class(e),
        }
    }
}

// -------------------------------------------------------------- trace

/// `cmaemu trace summary|map`: the JSONL reader, the summary table, the
/// pageblock map; and the writers on what was read.
pub struct Trace;

impl Target for Trace {
    fn name(&self) -> &'static str {
        "trace"
    }
    fn about(&self) -> &'static str {
        "JSONL trace reader with trace summary, trace map, the HTML report and the writers"
    }
    fn seeds(&self) -> Vec<Vec<u8>> {
        vec![include_bytes!("seeds/trace.jsonl").to_vec()]
    }
    fn dictionary(&self) -> &'static [&'static str] {
        &["{\"ts_ns\":0,\"frame\":0,\"event\":\"", "pageblock_map", "\"mts\":\"", "migrate_page", "violation", "dma_transfer", "cma_alloc_start", "cma_alloc_finish", "mm_migrate_pages", "\"len\":18446744073709551615", "\"vas\":[1,2]", "\"check\":\"migrate_tlb\"", "\"errorno\":-12", "\"pfn\":", "\"frame\":18446744073709551615", "\"}\n", "null", "1e400", "-1"]
    }
    fn run(&self, input: &[u8]) -> String {
        use crate::trace::{chrome, framemap, ftrace, html, jsonl, read, summary};
        let text = String::from_utf8_lossy(input);
        let evs = match read::read_jsonl(&text) {
            Ok(e) => e,
            Err(e) => return err_class(e),
        };
        let s = summary::summary(&evs);
        // the per-frame table ends with its total (the per-allocation table may follow)
        assert!(s.lines().any(|l| l.trim_start().starts_with("total")), "{s}");
        let map = [(0, false), (u64::MAX, true)].map(|(f, pages)| {
            framemap::view_at(&evs, f).and_then(|v| framemap::render(&v, pages)).map(|c| assert_eq!(c.rgba.len(), c.width as usize * c.height as usize * 4))
        });
        let mut sink = Vec::new();
        jsonl::write_jsonl(&evs, &mut sink).expect("write to a Vec");
        chrome::write_chrome(&evs, &mut sink).expect("write to a Vec");
        ftrace::write_ftrace(&evs, &mut sink).expect("write to a Vec");
        html::write_report(&evs, "fuzz", &[], &mut sink).expect("write to a Vec");
        format!("ok: map {}", map[1].is_ok())
    }
}

// --------------------------------------------------------------- size

/// Size strings: `-m` and the scenario sizes (one parser), the guest's
/// `memparse` and number parsers.
pub struct Size;

impl Target for Size {
    fn name(&self) -> &'static str {
        "size"
    }
    fn about(&self) -> &'static str {
        "size strings (-m / scenario parse_size, guest memparse, simple_strtoull, Counter::parse)"
    }
    fn seeds(&self) -> Vec<Vec<u8>> {
        ["256M", "1G", "65536K", "0x10000000", "16m", "18446744073709551615", "17179869184G", "0x", "K", "-1", " 64M ", "4096@0x60000000", "MemFree >= 1024", "CmaFree == 0x10"].iter().map(|s| s.as_bytes().to_vec()).collect()
    }
    fn dictionary(&self) -> &'static [&'static str] {
        &["K", "M", "G", "T", "P", "E", "0x", "0", "9", "@", "-", " ", ">=", "=="]
    }
    fn max_len(&self) -> usize {
        256
    }
    fn run(&self, input: &[u8]) -> String {
        use cmaemu_mm::cmdline::{memparse, memparse_strict, parse_uint_strict, simple_strtoull};
        let s = String::from_utf8_lossy(input);
        let host = scenario::parse_size(&s);
        let (v, rest) = memparse(&s);
        assert!(rest.len() <= s.len());
        let strict = memparse_strict(&s);
        if let Some(x) = strict {
            assert_eq!(x, v, "memparse_strict disagrees with memparse on {s:?}");
        }
        for base in [0, 8, 10, 16] {
            let (_, used) = simple_strtoull(&s, base);
            assert!(used <= s.len());
        }
        let _ = (parse_uint_strict(&s), scenario::Counter::parse(&s));
        match host {
            Ok(_) => "ok".into(),
            Err(e) => err_class(e),
        }
    }
}

// ------------------------------------------------------------ cmdline

/// The guest's kernel command line: `parse_bootargs` (every knob, `cma=`,
/// injections, `trace_event=`), the argument splitter, `early_cma`, and
/// `/proc/cmaemu/config`.
pub struct Cmdline;

impl Target for Cmdline {
    fn name(&self) -> &'static str {
        "cmdline"
    }
    fn about(&self) -> &'static str {
        "guest/mm command line (parse_bootargs, next_arg, early_cma, /proc/cmaemu/config)"
    }
    fn seeds(&self) -> Vec<Vec<u8>> {
        [
            "console=ttyAMA0",
            "console=ttyAMA0 cma=4M@0x69000000-0x69800000 cmaemu.profile=biscuitos-5.0",
            "cmaemu.max_order=12 cmaemu.pageblock_order=10 cmaemu.vmsplit=2G cmaemu.cma_size_mbytes=64",
            "cmaemu.cma_size_sel=percentage cmaemu.cma_size_percentage=10 trace_event=cma:*,migrate:mm_migrate_pages",
            "cmaemu.inject=skip_copy,skip_remap,skip_tlb_flush,leak_old_page,ignore_pin,dma_noncontig",
            "\"quoted arg=with spaces\" cma=\"16M\" -- init=/bin/sh",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect()
    }
    fn dictionary(&self) -> &'static [&'static str] {
        &[" cma=", " cmaemu.profile=", "biscuitos-5.0", "debian-6.1", " cmaemu.max_order=", " cmaemu.pageblock_order=", " cmaemu.vmsplit=", "3G", " cmaemu.cma_size_mbytes=", " cmaemu.cma_size_sel=", "min", "max", " cmaemu.cma_size_percentage=", " trace_event=", "cma:*", " cmaemu.inject=", "double_free", "\"", "=", "@", "-", "0x", "4294967295", "18446744073709551615", "--", " "]
    }
    fn max_len(&self) -> usize {
        4096
    }
    fn run(&self, input: &[u8]) -> String {
        use cmaemu_mm::cmdline::{early_cma, next_arg, Args};
        let s = String::from_utf8_lossy(input);
        // which diagnostics the line drew (their kinds, not their values)
        let mut diags = std::collections::BTreeSet::new();
        let cfg = cmaemu_mm::config::parse_bootargs(&s, &mut |e| {
            diags.insert(super::class_of(&e.to_string()).split(':').next().unwrap_or("").chars().take(40).collect::<String>());
        });
        let mut text = String::new();
        cfg.write_proc_config(&mut text).expect("write to a String");
        let mut n = 0;
        for (param, val) in Args::new(&s) {
            n += 1;
            if param == "cma" {
                let _ = early_cma(val);
            }
        }
        let (_, _, rest) = next_arg(&s);
        assert!(rest.len() <= s.len());
        format!("ok: {} args, {diags:?}", n.min(4))
    }
}

// --------------------------------------------------------------- rmem

/// The guest's `/reserved-memory` handling on the host: the DTB's nodes
/// read as the kernel reads them (`guest/kernel/src/cma.rs`), then
/// `early_init_fdt_scan_reserved_mem` and `dma_contiguous_reserve`.
pub struct Rmem;

/// The kernel's node table size (`guest/kernel/src/cma.rs` MAX_NODES).
const RMEM_MAX_NODES: usize = 32;

fn prop_u64(n: &crate::loader::dtb::DtNode, name: &str) -> Option<u64> {
    let v = n.prop(name)?;
    match v.len() {
        4 => Some(u32::from_be_bytes([v[0], v[1], v[2], v[3]]) as u64),
        8 => Some(u64::from_be_bytes([v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]])),
        _ => None,
    }
}

impl Target for Rmem {
    fn name(&self) -> &'static str {
        "rmem"
    }
    fn about(&self) -> &'static str {
        "guest/mm reserved-memory (early_init_fdt_scan_reserved_mem, dma_contiguous_reserve) from a DTB"
    }
    fn seeds(&self) -> Vec<Vec<u8>> {
        dtb_seeds()
    }
    fn max_len(&self) -> usize {
        1 << 17
    }
    fn mutate(&self, rng: &mut Rng, input: &[u8]) -> Option<Vec<u8>> {
        dtbmut::mutate_blob(rng, input)
    }
    fn run(&self, input: &[u8]) -> String {
        let d = match Dtb::parse(input) {
            Ok(d) => d,
            Err(e) => return err_class(e),
        };
        let bootargs = d.bootargs().unwrap_or_default();
        let cfg = cmaemu_mm::config::parse_bootargs(&bootargs, &mut |_| {});
        let mut mb = Memblock::new();
        let regions = d.memory_regions().unwrap_or_else(|_| vec![(RAM_BASE, 256 << 20)]);
        for &(b, s) in &regions {
            let _ = mb.memblock_add(PhysAddr(b), s);
        }
        let (lo, hi) = (mb.memblock_start_of_DRAM().0, mb.memblock_end_of_DRAM().0);
        let lowmem = cfg.lowmem_limit(lo, hi);
        mb.memblock_set_current_limit(PhysAddr(lowmem));
        let _ = mb.memblock_reserve(PhysAddr(RAM_BASE + 0x4000), 0x40_0000);
        let mut nodes = Vec::new();
        let rm = d.find("/reserved-memory");
        for child in rm.map(|r| r.children.as_slice()).unwrap_or(&[]).iter().take(RMEM_MAX_NODES) {
            let mut n = RmemNode::new(&child.name);
            if let Some(c) = child.prop("compatible").and_then(|c| std::str::from_utf8(c).ok()) {
                n = n.compatible(c.trim_end_matches('\0'));
            }
            n.available = match child.prop("status") {
                None => true,
                Some(v) => matches!(v.split(|&c| c == 0).next(), Some(b"okay" | b"ok")),
            };
            let cells = |p: &str| child.prop(p).map(PropCells::from_be_bytes);
            (n.reg, n.size, n.alignment, n.alloc_ranges) = (cells("reg"), cells("size"), cells("alignment"), cells("alloc-ranges"));
            n.reusable = child.prop("reusable").is_some();
            n.no_map = child.prop("no-map").is_some();
            n.cma_default = child.prop("linux,cma-default").is_some();
            n.dma_default = child.prop("linux,dma-default").is_some();
            n.phandle = prop_u64(child, "phandle").or_else(|| prop_u64(child, "linux,phandle")).map(|v| v as u32);
            nodes.push(n);
        }
        let dt = rm.map(|r| ReservedMemoryDt {
            addr_cells: prop_u64(r, "#address-cells").map(|v| v as u32),
            size_cells: prop_u64(r, "#size-cells").map(|v| v as u32),
            has_ranges: r.prop("ranges").is_some(),
            children: &nodes,
        });
        let rsv: Vec<(u64, u64)> = d.reservations.iter().take(16).map(|r| (r.address, r.size)).collect();
        let mut areas = CmaAreas::for_config(&cfg);
        let mut table = ReservedMemTable::new();
        let scanned = table.early_init_fdt_scan_reserved_mem(&rsv, dt.as_ref(), (d.address_cells(), d.size_cells()), &mut mb, &mut areas, &cfg, &mut NoLog);
        let _ = cmaemu_mm::contiguous::dma_contiguous_reserve(&mut areas, &mut mb, &cfg, PhysAddr(0xffff_ffff), PhysAddr(lowmem), &mut NoLog);
        for r in table.entries() {
            let _ = table.of_reserved_mem_device_init(r.phandle.unwrap_or(0));
        }
        match scanned {
            Ok(()) => format!("ok: {} regions", table.entries().len().min(4)),
            Err(e) => err_class(e),
        }
    }
}

// ---------------------------------------------------------------- gdb

/// The GDB remote stub: packets from "gdb" into `gdbstub` and our target
/// (registers, memory through the MMU walk, breakpoints, step, continue)
/// on a booting machine. Input: packet bodies, one a line, each framed as
/// `$body#checksum`; a first byte 0 sends the rest raw.
pub struct Gdb;

/// Instructions each input may run the guest for.
const GDB_INSNS: u64 = 20_000;

/// A connection that reads the input and discards what the stub writes.
struct ScriptConn {
    data: Vec<u8>,
    pos: usize,
}

impl gdbstub::conn::Connection for ScriptConn {
    type Error = std::io::Error;
    fn write(&mut self, _byte: u8) -> Result<(), Self::Error> {
        Ok(())
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

impl gdbstub::conn::ConnectionExt for ScriptConn {
    fn read(&mut self) -> Result<u8, Self::Error> {
        let b = self.data.get(self.pos).copied().ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))?;
        self.pos += 1;
        Ok(b)
    }
    fn peek(&mut self) -> Result<Option<u8>, Self::Error> {
        // at the end the stub waits for the target: say the line is gone
        self.data.get(self.pos).copied().map(Some).ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))
    }
}

/// Frame packet bodies (one a line) as `$body#cs`; leading 0: raw.
pub fn gdb_stream(input: &[u8]) -> Vec<u8> {
    if let Some((0, raw)) = input.split_first() {
        return raw.to_vec();
    }
    let mut out = Vec::new();
    for body in input.split(|&b| b == b'\n') {
        if body == b"\x03" {
            out.push(3);
            continue;
        }
        let cs = body.iter().fold(0u8, |a, &b| a.wrapping_add(b));
        out.push(b'$');
        out.extend_from_slice(body);
        out.extend_from_slice(format!("#{cs:02x}").as_bytes());
    }
    out
}

std::thread_local! {
    static GDB_MACHINE: std::cell::RefCell<Option<Machine>> = const { std::cell::RefCell::new(None) };
}

impl Target for Gdb {
    fn name(&self) -> &'static str {
        "gdb"
    }
    fn about(&self) -> &'static str {
        "GDB remote protocol packets through gdbstub into our target (one machine, reused)"
    }
    fn seeds(&self) -> Vec<Vec<u8>> {
        [
            "qSupported:multiprocess+;swbreak+;hwbreak+;qRelocInsn+\n?\ng\nqAttached\nm60008000,40\nm0,10\nD",
            "?\nZ0,60008000,4\nc\ng\nz0,60008000,4\ns\ns\np f\nP 0=12345678\nG00000000\nk",
            "qXfer:features:read:target.xml:0,ffb\nqfThreadInfo\nqC\nM60100000,4:deadbeef\nm60100000,4\nvCont?\nvCont;s\n\u{3}\nD",
            "m9ffffffc,10\nmffffffff,ffffffff\nM0,1:00\nZ0,0,2\nZ1,0,4\nX60100000,0:\nD",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect()
    }
    fn dictionary(&self) -> &'static [&'static str] {
        &["\ng", "\nm", "\nM", "\nZ0,", "\nz0,", "\nc", "\ns", "\nk", "\nD", "\n?", "\np", "\nP", "\nG", "\nX", "\nvCont;c", "\nqXfer:features:read:target.xml:", "\nqSupported", "ffffffff", "60008000", ",", ":", "\n\u{3}"]
    }
    fn max_len(&self) -> usize {
        4096
    }
    fn run(&self, input: &[u8]) -> String {
        let data = gdb_stream(input);
        GDB_MACHINE.with(|m| {
            let mut m = m.borrow_mut();
            let machine = m.get_or_insert_with(|| {
                Machine::new(images::KERNEL_ELF, images::FIRMWARE_ELF, &board_dtb::default_board_dtb(16 << 20), 16 << 20, u64::MAX).expect("the default board builds")
            });
            let cpu = machine.cpu();
            let limit = cpu.stats().insns.saturating_add(GDB_INSNS);
            let (r, ended, _) = cpu.gdb_session(ScriptConn { data, pos: 0 }, limit);
            cpu.set_max_insns(u64::MAX);
            // a run that ended (power off, fault) cannot go on: start over;
            // one that used its instruction budget goes on with the next input
            if ended.is_some_and(|s| !matches!(s, crate::cpu::Stop::MaxInsns)) {
                *m = None;
            }
            match r {
                Ok(d) => format!("ok: {d:?}"),
                Err(e) => err_class(e),
            }
        })
    }
}

// ------------------------------------------------------------ console

/// Console input and output paths: the TTY escape handling (Ctrl-A x),
/// scripts and piped lines delivered one line at a time, the output tail;
/// and what scenarios read from the console (`/proc/meminfo`,
/// `/proc/vmstat`, command output). Input: one mode byte, then the bytes.
pub struct ConsoleInput;

impl Target for ConsoleInput {
    fn name(&self) -> &'static str {
        "console"
    }
    fn about(&self) -> &'static str {
        "console input (TTY escapes, scripts, piped lines), output tail, scenario output parsers"
    }
    fn seeds(&self) -> Vec<Vec<u8>> {
        let mut v = Vec::new();
        for mode in 0..4u8 {
            v.push([&[mode][..], b"cat /proc/meminfo\n\x01x\x01\x01poweroff\n\r\n# "].concat());
            v.push([&[mode][..], b"MemTotal:        1035812 kB\nCmaFree:  65536 kB\nnr_free_pages 12345\n# cat /proc/meminfo\r\n# "].concat());
        }
        v
    }
    fn dictionary(&self) -> &'static [&'static str] {
        &["\u{1}", "\u{1}x", "\u{1}X", "\n", "\r\n", "# ", "MemFree:", " kB", "nr_free_pages ", "18446744073709551616"]
    }
    fn run(&self, input: &[u8]) -> String {
        let Some((&mode, data)) = input.split_first() else { return "empty".into() };
        match mode % 4 {
            0 => {
                // TTY: raw bytes in arbitrary chunks; Ctrl-A x quits, Ctrl-A Ctrl-A sends one
                let (tx, rx) = crossbeam_channel::unbounded();
                let mut at = 0;
                while at < data.len() {
                    let n = 1 + (data[at] as usize % 7);
                    tx.send(data[at..(at + n).min(data.len())].to_vec()).expect("receiver alive");
                    at += n;
                }
                drop(tx);
                let mut c = Console::new(Input::Tty(rx), false, None);
                let mut got = Vec::new();
                let mut rounds = 0;
                while !c.eof && !c.quit {
                    c.refill(Duration::ZERO);
                    got.extend(c.pending.drain(..));
                    rounds += 1;
                    assert!(rounds <= data.len() + 2, "TTY input does not end");
                }
                let (want, quit) = tty_oracle(data);
                assert_eq!(c.quit, quit, "Ctrl-A x");
                if !quit {
                    assert_eq!(got, want, "TTY bytes");
                } else {
                    assert!(want.starts_with(&got) || got.starts_with(&want[..want.len().min(got.len())]));
                }
                format!("ok: tty quit {quit}")
            }
            1 | 2 => {
                // a script, or piped lines: handed over one line at a time
                let mut c = if mode % 4 == 1 {
                    Console::new(Input::Script(data.iter().copied().collect()), false, None)
                } else {
                    let (tx, rx) = crossbeam_channel::unbounded();
                    crate::board::console::send_lines(data, &tx);
                    drop(tx);
                    Console::new(Input::Lines(rx), false, None)
                };
                let mut got = Vec::new();
                let mut rounds = 0;
                while c.refill(Duration::ZERO) {
                    let line: Vec<u8> = c.pending.drain(..).collect();
                    assert!(line.iter().position(|&b| b == b'\n').is_none_or(|i| i + 1 == line.len()), "more than one line at once");
                    got.extend(line);
                    rounds += 1;
                    assert!(rounds <= data.len() + 1, "input does not end");
                }
                assert_eq!(got, data, "input bytes");
                "ok: lines".into()
            }
            _ => {
                // guest output: capture, tail, prompt; what scenarios parse from it
                let cap = Capture::default();
                let mut c = Console::new(Input::None, false, Some(cap.clone()));
                for chunk in data.chunks(13) {
                    c.output(chunk);
                }
                assert_eq!(cap.contents(), data, "captured output");
                let tail = c.tail_lines();
                assert!(tail.len() <= 21 && tail.iter().all(|l| l.len() <= 3 * crate::board::console::MAX_LINE), "tail too big");
                let text = String::from_utf8_lossy(data);
                let _ = (scenario::parse_meminfo(&text), scenario::parse_vmstat(&text), c.waiting_at_prompt());
                let _ = scenario::strip_command_output(&text);
                "ok: output".into()
            }
        }
    }
}

/// What the TTY path should deliver: bytes with Ctrl-A escapes applied,
/// and whether Ctrl-A x was typed.
fn tty_oracle(data: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut esc = false;
    for &b in data {
        if esc {
            esc = false;
            match b {
                b'x' | b'X' => return (out, true),
                1 => out.push(1),
                _ => {}
            }
        } else if b == 1 {
            esc = true;
        } else {
            out.push(b);
        }
    }
    (out, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every seed of every target runs clean (a seed that fails its own
    /// checks would make the fuzzer report noise).
    #[test]
    fn every_seed_runs_clean() {
        for t in all() {
            if t.name() == "gdb" {
                continue; // boots a machine; the fuzz smoke test covers it
            }
            let seeds = t.seeds();
            assert!(!seeds.is_empty(), "{}", t.name());
            for s in seeds {
                let class = t.run(&s);
                assert!(!class.is_empty());
            }
        }
    }

    #[test]
    fn gdb_framing() {
        assert_eq!(gdb_stream(b"g\n?"), b"$g#67$?#3f".to_vec());
        assert_eq!(gdb_stream(b"\0raw"), b"raw".to_vec());
        assert_eq!(gdb_stream(b"\x03"), vec![3]);
    }

    #[test]
    fn tty_oracle_applies_escapes() {
        assert_eq!(tty_oracle(b"a\x01\x01b\x01zc\x01xd"), (b"a\x01bc".to_vec(), true));
    }
}
