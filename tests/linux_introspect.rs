//! The host reads the real Debian 6.1 armmp kernel's mm state out of guest
//! RAM (introspect::linux: vmcoreinfo found in RAM + the DWARF of the
//! build's vmlinux from the -dbg package) at a quiet point, and prints it
//! as the kernel prints /proc/buddyinfo, /proc/pagetypeinfo and meminfo's
//! CMA lines: the texts must equal what the guest itself prints there.
//! Skipped (with a message) only when the package registry is unreachable.
use cmaemu::board::machine::{Machine, Step};
use cmaemu::findings::CheckCtx;
use cmaemu::introspect::linux::{procfs, snapshot::to_snapshot, DebugInfo, Layout, LinuxMm, VmcoreInfo};
use std::path::PathBuf;
use std::process::Command;

struct Assets {
    zimage: Vec<u8>,
    dtb: Vec<u8>,
    initrd: Vec<u8>,
    vmlinux: PathBuf,
}

#[path = "common/linux.rs"]
mod linux;

/// `linux-assets.sh dbg`; None (skip) when the registry is unreachable.
fn assets() -> Option<Assets> {
    let env = linux::Env::of("linux-assets.sh", &["dbg"])?;
    Some(Assets { zimage: env.read("ZIMAGE"), dtb: env.read("DTB"), initrd: env.read("INITRD"), vmlinux: env.path("VMLINUX") })
}

const RAM: u64 = 256 << 20;

fn dtb(a: &Assets) -> Vec<u8> {
    linux::linux_dtb(&a.dtb, RAM, "console=ttyAMA0")
}

/// The text between `from` and `to` in the console (carriage returns dropped).
fn between(out: &str, from: &str, to: &str) -> String {
    let out = out.replace('\r', "");
    let a = out.rfind(from).unwrap_or_else(|| panic!("no {from:?} in\n{out}")) + from.len();
    let b = a + out[a..].find(to).unwrap_or_else(|| panic!("no {to:?} after {from:?} in\n{out}"));
    out[a..b].trim_start_matches('\n').to_string()
}

/// Builtins only (no fork, no exec): printing a /proc file changes no
/// allocator state once the shell's own buffers have grown.
const SHOW: &str = "show() { while IFS= read -r l; do echo \"$l\"; done < $1; }; cma() { while IFS= read -r l; do case \"$l\" in MemFree*|Cma*) echo \"$l\";; esac; done < /proc/meminfo; }";
const PRINT: &str = "echo @@$((1))B; show /proc/buddyinfo; echo @@$((1))P; show /proc/pagetypeinfo; echo @@$((1))M; cma; echo @@$((1))E";

#[test]
fn host_read_free_lists_pageblocks_and_cma_equal_the_kernels_own_proc_files() {
    let Some(a) = assets() else { return };
    let t = std::time::Instant::now();
    let debug = DebugInfo::load(&a.vmlinux).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("debug info of {} read in {:.1} s", a.vmlinux.display(), t.elapsed().as_secs_f64());
    let dtb = dtb(&a);
    let mut m = Machine::linux(&a.zimage, Some(&a.initrd), &dtb, RAM, 40_000_000_000).expect("build the board");
    assert_eq!(m.run_until("/ # "), Step::Paused, "no busybox prompt; console:\n{}", m.output());
    m.send(&format!("{SHOW}\n"));
    // Twice to let the shell's buffers and the kernel's caches settle, then the one compared.
    for _ in 0..3 {
        m.send(&format!("{PRINT}\n"));
        assert_eq!(m.run_until("@@1E"), Step::Paused, "console:\n{}", m.output());
    }
    assert_eq!(m.run_until_quiet(), Step::Paused, "console:\n{}", m.output());
    let out = m.output();
    let vmcore = VmcoreInfo::locate(m.ram()).unwrap_or_else(|e| panic!("{e}"));
    let layout = Layout::new(&vmcore, &debug).unwrap_or_else(|e| panic!("{e}"));
    let mm = LinuxMm::read(m.ram(), &layout).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("vmcoreinfo at {:#x}: {} zones, {} CMA areas {:?}", vmcore.pa, mm.zones.len(), mm.cma.len(), mm.cma.iter().map(|c| (&c.name, c.base_pfn, c.count)).collect::<Vec<_>>());

    let guest_buddy = between(&out, "@@1B\n", "@@1P");
    let guest_pti = between(&out, "@@1P\n", "@@1M");
    let guest_cma = between(&out, "@@1M\n", "@@1E");
    let host_buddy = procfs::buddyinfo(&mm);
    let host_pti = procfs::pagetypeinfo(&mm);
    let host_cma = procfs::meminfo_free_cma(&mm);
    eprintln!("guest:\n{guest_buddy}{guest_pti}{guest_cma}\nhost:\n{host_buddy}{host_pti}{host_cma}");
    assert_eq!(host_buddy, guest_buddy, "/proc/buddyinfo");
    assert_eq!(host_pti.trim_end(), guest_pti.trim_end(), "/proc/pagetypeinfo");
    assert_eq!(host_cma, guest_cma, "/proc/meminfo MemFree/CmaTotal/CmaFree");

    // CMA areas as the boot log reports them: `cma: Reserved 16 MiB at
    // 0x6f000000`, `16384K cma-reserved`, and the one allocation from the
    // area at boot, `DMA: preallocated 256 KiB pool for atomic coherent
    // allocations` (arch/arm/mm/dma-mapping.c takes it with cma_alloc):
    // exactly that many bits set in the bitmap.
    let log = |pat: &str| -> String {
        let l = out.lines().find(|l| l.contains(pat)).unwrap_or_else(|| panic!("no {pat:?} in the boot log"));
        l[l.find(pat).unwrap() + pat.len()..].to_string()
    };
    assert_eq!(mm.cma.len(), 1, "{:?}", mm.cma);
    let area = &mm.cma[0];
    let reserved = log("cma: Reserved ");
    assert_eq!(reserved, format!("{} MiB at {:#010x}", area.count >> 8, (area.base_pfn as u64) << 12), "the area's size and base");
    assert!(log("Memory: ").contains(&format!(" {}K cma-reserved", mm.totalcma_pages * 4)), "totalcma_pages");
    assert_eq!(area.count, mm.totalcma_pages);
    let pool_kib: u64 = log("DMA: preallocated ").split(' ').next().unwrap().parse().unwrap();
    assert_eq!(area.used_pages() * 4, pool_kib, "bitmap bits set = the atomic pool's pages");
    let first_set = (0..area.count).find(|&b| area.bitmap[(b / 32) as usize] >> (b % 32) & 1 != 0).unwrap();
    assert!((first_set..first_set + (pool_kib / 4) as u32).all(|b| area.bitmap[(b / 32) as usize] >> (b % 32) & 1 != 0), "one contiguous run");

    // The same state as the verifiers' snapshot model: allocator integrity holds.
    let snap = to_snapshot(&mm).unwrap_or_else(|e| panic!("{e}"));
    let v = cmaemu::verify::check_integrity(&snap, &CheckCtx::default());
    assert!(v.is_empty(), "integrity violations on the real kernel: {:#?}", &v[..v.len().min(5)]);

    // Bugs planted by the host in the kernel's memory are caught.
    let ram = m.ram().clone();
    // (1) a free CMA page's bitmap bit set: a leaked bit.
    let free_cma = (area.base_pfn..area.base_pfn + area.count).find(|&p| snap.is_free(p)).expect("a free CMA page");
    let bit = free_cma - area.base_pfn;
    let word_pa = mm.lowmem_pa(area.bitmap_va) + (bit / 32) as u64 * 4;
    let old = ram.read_u32(word_pa).unwrap();
    ram.write_u32(word_pa, old | 1 << (bit % 32)).unwrap();
    let v = check(&ram, &layout);
    ram.write_u32(word_pa, old).unwrap();
    assert!(v.iter().any(|v| v.check == cmaemu::findings::Check::CmaBitmap && v.pfn == Some(free_cma)), "leaked CMA bit not caught: {v:#?}");
    // (2) a page inside a free buddy block with a reference: a use after free.
    let head = mm.zones[0].buddy.iter().find(|b| b.order >= 1).expect("a free block of order >= 1");
    let victim = head.pfn + 1;
    let ref_pa = mm.page_pa(victim).unwrap() + layout.page_refcount as u64;
    let old = ram.read_u32(ref_pa).unwrap();
    ram.write_u32(ref_pa, 1).unwrap();
    let v = check(&ram, &layout);
    ram.write_u32(ref_pa, old).unwrap();
    assert!(v.iter().any(|v| v.check == cmaemu::findings::Check::PageState && v.pfn == Some(victim)), "referenced free page not caught: {v:#?}");
    assert!(check(&ram, &layout).is_empty(), "state restored");

    // (3) a user PTE of the shell pointed at a free frame.
    let ctx = CheckCtx::default();
    assert!(cmaemu::instrument::linux::check_user_ptes(&ram, &layout, &snap, &ctx).is_empty(), "no user PTE maps a free frame");
    let spaces = cmaemu::introspect::linux::address_spaces(&ram, &layout).unwrap();
    // the linear map as the library found it (PAGE_OFFSET is not assumed)
    let (va, _) = cmaemu::introspect::linux::user_pages(&ram, &mm.map, &spaces[0]).into_iter().next().expect("the shell maps pages");
    eprintln!("{} user address spaces; planting a PTE at VA {va:#x} of pid {}", spaces.len(), spaces[0].pid);
    let l1 = ram.read_u32(spaces[0].pgd_pa + (va >> 20) as u64 * 4).unwrap();
    let pte_pa = (l1 & !0x3ff) as u64 + ((va >> 12) & 0xff) as u64 * 4;
    let old = ram.read_u32(pte_pa).unwrap();
    let free = head.pfn;
    ram.write_u32(pte_pa, (old & 0xfff) | free << 12).unwrap();
    let v = cmaemu::instrument::linux::check_user_ptes(&ram, &layout, &snap, &ctx);
    ram.write_u32(pte_pa, old).unwrap();
    assert!(v.iter().any(|v| v.check == cmaemu::findings::Check::PteMapsFree && v.pfn == Some(free) && v.va == Some(va)), "PTE to a free frame not caught: {v:#?}");
}

/// Read the kernel again and run the integrity check on its snapshot.
fn check(ram: &cmaemu::memory::GuestRam, layout: &Layout) -> Vec<cmaemu::findings::Violation> {
    let mm = LinuxMm::read(ram, layout).unwrap_or_else(|e| panic!("{e}"));
    cmaemu::verify::check_integrity(&to_snapshot(&mm).unwrap(), &CheckCtx::default())
}

/// `cmaemu boot --linux-vmlinux`: the real kernel read at quiet points
/// into the same trace as cmaemu's own guest; `trace summary` and `trace
/// map` read it unchanged.
#[test]
fn cli_traces_the_real_kernels_memory_for_summary_and_map() {
    // the files themselves: the CLI reads them
    let Some(env) = linux::Env::of("linux-assets.sh", &["dbg"]) else { return };
    let dir = std::env::temp_dir().join(format!("cmaemu-linux-introspect-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let trace = dir.join("t.jsonl");
    let exe = env!("CARGO_BIN_EXE_cmaemu");
    let mut child = Command::new(exe)
        .args(["boot", "-m", "256M", "--append", "console=ttyAMA0", "--trace-format", "jsonl"])
        .arg("--kernel").arg(env.path("ZIMAGE"))
        .arg("--dtb").arg(env.path("DTB"))
        .arg("--initrd").arg(env.path("INITRD"))
        .arg("--linux-vmlinux").arg(env.path("VMLINUX"))
        .arg("--trace").arg(&trace)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"echo hi\npoweroff -f\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "cmaemu boot: {}\n{}", String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout));
    let t = std::fs::read_to_string(&trace).unwrap();
    assert!(t.contains(r#""event":"layout""#) && t.contains(r#""cma_areas":[{"name":"reserved","start_pfn":454656,"end_pfn":458752}]"#), "layout event with the kernel's CMA area:\n{}", &t[..t.len().min(2000)]);
    assert!(t.contains(r#""event":"page_states""#) && t.contains(r#""event":"pageblock_map""#) && t.contains(r#""event":"counters""#), "frame events");
    assert!(!t.contains(r#""event":"violation""#), "no violations on a clean kernel");
    let summary = Command::new(exe).args(["trace", "summary"]).arg(&trace).output().unwrap();
    assert!(summary.status.success(), "{}", String::from_utf8_lossy(&summary.stderr));
    let s = String::from_utf8_lossy(&summary.stdout);
    let frames = s.lines().filter(|l| l.trim_start().chars().next().is_some_and(|c| c.is_ascii_digit())).count();
    assert!(frames >= 3, "frames read at quiet points:\n{s}");
    let png = dir.join("map.png");
    let map = Command::new(exe).args(["trace", "map", "--pages", "--frame", &(frames - 1).to_string(), "-o"]).arg(&png).arg(&trace).output().unwrap();
    assert!(map.status.success(), "{}", String::from_utf8_lossy(&map.stderr));
    assert!(std::fs::metadata(&png).unwrap().len() > 1000);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Migrations of the real kernel checked page by page at a breakpoint on
/// `folio_migrate_flags` (every migration path calls it right after
/// `folio_copy`): a tmpfs fill, holes punched, then compaction. Every
/// migration the kernel counts (`pgmigrate_success`) is checked, none
/// fails; then the host patches `folio_copy` out of the kernel's text in
/// guest memory (its first instruction becomes `bx lr`) and the lost
/// copies are caught.
#[test]
fn real_kernel_migrations_checked_page_by_page_and_a_planted_lost_copy_caught() {
    let Some(a) = assets() else { return };
    let debug = std::sync::Arc::new(DebugInfo::load(&a.vmlinux).unwrap_or_else(|e| panic!("{e}")));
    let opts = cmaemu::board::machine::RunOptions { linux_debuginfo: Some(debug.clone()), ..Default::default() };
    let mut m = Machine::linux_with_options(&a.zimage, Some(&a.initrd), &dtb(&a), RAM, 60_000_000_000, opts).expect("build the board");
    assert_eq!(m.run_until("/ # "), Step::Paused, "no busybox prompt; console:\n{}", m.output());
    // Fill tmpfs with 8 x 2 MiB of random data, free every other file, compact.
    let round = |m: &mut Machine, r: u32| -> u64 {
        m.send(&format!(
            "for i in 1 2 3 4 5 6 7 8; do dd if=/dev/urandom of=/r{r}f$i bs=4k count=512 2>/dev/null; done; rm /r{r}f2 /r{r}f4 /r{r}f6 /r{r}f8; echo 1 > /proc/sys/vm/compact_memory; grep pgmigrate_success /proc/vmstat; echo @@$(({r}))done\n"
        ));
        assert_eq!(m.run_until(&format!("@@{r}done")), Step::Paused, "console:\n{}", m.output());
        let out = m.output().replace('\r', "");
        let line = out.lines().rfind(|l| l.starts_with("pgmigrate_success ")).expect("pgmigrate_success");
        line["pgmigrate_success ".len()..].trim().parse().unwrap()
    };
    let migrated = round(&mut m, 1);
    let s = m.linux_session().unwrap();
    eprintln!("round 1: the kernel migrated {migrated} pages, the host checked {}", s.migrations_checked);
    assert!(migrated >= 500, "a migration-heavy run: {migrated}");
    assert_eq!(s.migrations_checked, migrated, "every migration the kernel counts was checked");
    assert!(s.violations.is_empty(), "violations on a clean kernel: {:#?}", &s.violations[..s.violations.len().min(3)]);

    // The planted bug: folio_copy returns at once.
    let folio_copy = debug.symbol("folio_copy").unwrap();
    let layout = Layout::new(&VmcoreInfo::locate(m.ram()).unwrap(), &debug).unwrap();
    let pa = LinuxMm::read(m.ram(), &layout).unwrap().lowmem_pa(folio_copy);
    m.ram().write_u32(pa, 0xe12f_ff1e).unwrap(); // bx lr
    m.cpu().flush_caches();
    let migrated2 = round(&mut m, 2);
    let s = m.linux_session().unwrap();
    eprintln!("round 2 (copy patched out): {} more migrations, {} violations", migrated2 - migrated, s.violations.len());
    assert!(migrated2 > migrated, "round 2 migrated pages");
    let lost = s.violations.iter().filter(|v| v.check == cmaemu::findings::Check::MigrateContent).count() as u64;
    assert!(lost > 0 && lost <= migrated2 - migrated, "lost copies caught: {lost} of {}", migrated2 - migrated);
    eprintln!("first: {}", s.violations[0].detail);
}
