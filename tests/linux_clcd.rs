//! The real Debian 6.1 armmp kernel's CLCD scan-out, checked for ownership
//! from the host (issue 21).
//!
//! Debian's armmp build drives the PL111 with the built-in fbdev driver
//! `amba-clcd` (`CONFIG_FB_ARMCLCD=y`; `CONFIG_DRM_PL111` is off). Linux's
//! stock DTB gives the CoreTile CLCD the DVI transmitter as its port (the
//! driver only takes a `panel-dpi`, so it does not probe) and a no-map
//! `vram` pool to the motherboard's. Here the DTB gives the CLCD a
//! `panel-dpi` panel (640x480) and makes a 16 MiB reusable `shared-dma-pool`
//! the default CMA area (`linux,cma-default`). Without a `memory-region`
//! the driver allocates its frame buffer with `dma_alloc_coherent`, which
//! for a blocking allocation on ARM is `cma_alloc` from the device's CMA
//! area, the default one (with a `memory-region` it `of_iomap`s the node's
//! `reg`, which ARM refuses for mapped RAM: a reusable pool cannot back it).
//! So the frame the CLCD scans out is a CMA allocation of the real kernel.
//!
//! At each quiet point the host checks the frame the CLCD scanned out last
//! lies in pages of a CMA area whose bitmap bits are set
//! (`instrument::linux::check_scanout`). The test checks the kernel's own
//! report of the allocation (the `cma_alloc_finish` trace event, enabled
//! from the command line) names the same pages, the host's bitmap equals
//! the allocations the kernel reported, no violation on the clean kernel;
//! then two bugs planted by the host are caught: the bitmap bits under the
//! frame cleared (the buffer no longer owned), and the CLCD's base pointed
//! at free memory.
//!
//! Skipped (with a message) only when the package registry is unreachable.
use cmaemu::board::machine::{Machine, RunOptions, Step};
use cmaemu::devices::MmioDevice;
use cmaemu::findings::Check;
use cmaemu::introspect::linux::{snapshot::to_snapshot, DebugInfo, Layout, LinuxMm, VmcoreInfo};
use cmaemu::oracle::{build_dtb, Case, DtbSource, LinuxAssets};
use std::sync::Arc;

#[path = "common/linux.rs"]
#[allow(dead_code)] // linux_dtb: this test builds its DTB with the oracle's dtc merge
mod linux;

const RAM: u64 = 256 << 20;
const AREA: &str = "linux,cma";
const POOL_MIB: u64 = 16;
/// The default CMA area as a DT pool, and a DPI panel on the CLCD's port.
const DTS: &str = r#"
/ {
	reserved-memory {
		linux,cma { compatible = "shared-dma-pool"; reusable; size = <0x1000000>; linux,cma-default; };
	};
	panel {
		compatible = "panel-dpi";
		port { panel_in: endpoint { remote-endpoint = <&{/clcd@10020000/port/endpoint}>; }; };
		panel-timing {
			clock-frequency = <25175000>;
			hactive = <640>; vactive = <480>;
			hfront-porch = <16>; hback-porch = <48>; hsync-len = <96>;
			vfront-porch = <10>; vback-porch = <33>; vsync-len = <2>;
		};
	};
	clcd@10020000 { port { endpoint { remote-endpoint = <&panel_in>; }; }; };
};
"#;
/// The kernel reports every CMA allocation and release from boot on.
const BOOTARGS: &str = "console=ttyAMA0 trace_event=cma:cma_alloc_finish,cma:cma_release";
const CLCD_UBAS: u64 = 0x010;

/// One `cma_alloc_finish` / `cma_release` line of the kernel's trace:
/// (area, pfn, count, released).
fn trace_records(trace: &str) -> Vec<(String, u32, u32, bool)> {
    let field = |l: &str, k: &str| -> Option<String> { l.split_whitespace().find_map(|w| w.strip_prefix(k)).map(str::to_string) };
    let hex = |s: String| u32::from_str_radix(s.trim_start_matches("0x"), 16).unwrap();
    trace
        .lines()
        .filter_map(|l| {
            let released = l.contains(" cma_release: ");
            if !released && !l.contains(" cma_alloc_finish: ") {
                return None;
            }
            // A failed allocation: an error number (later kernels) or no page (6.1).
            if field(l, "errorno=").is_some_and(|e| e != "0") || field(l, "page=").is_some_and(|p| p == "(null)" || p.trim_start_matches('0').is_empty()) {
                return None;
            }
            Some((field(l, "name=")?, hex(field(l, "pfn=")?), field(l, "count=")?.parse().unwrap(), released))
        })
        .collect()
}

/// Run until the host has checked `n` more scan-outs at quiet points.
fn until_checked(m: &mut Machine, n: u64) {
    let want = m.linux_session().unwrap().scanouts_checked + n;
    for _ in 0..200 {
        if m.linux_session().unwrap().scanouts_checked >= want {
            return;
        }
        m.run_for(20_000_000);
    }
    panic!("no quiet point checked the scan-out; console:\n{}", m.output());
}

#[test]
fn the_real_kernels_framebuffer_is_a_cma_allocation_and_planted_ownership_bugs_are_caught() {
    let t = std::time::Instant::now();
    let Some(assets) = linux::Env::of("linux-assets.sh", &["dbg"]) else { return };
    let la = LinuxAssets { zimage: assets.path("ZIMAGE"), initrd: assets.path("INITRD"), dtb: assets.path("DTB"), qemu: Default::default(), version: String::new() };
    let case = Case { name: "linux-clcd".into(), description: String::new(), dtb: DtbSource::Linux, ram: RAM, bootargs: BOOTARGS.into(), dts_append: DTS.into(), steps: Vec::new() };
    let dtb = build_dtb(&case, &la).unwrap_or_else(|e| panic!("{e}"));
    let debug = Arc::new(DebugInfo::load(&assets.path("VMLINUX")).unwrap_or_else(|e| panic!("{e}")));
    let opts = RunOptions { linux_debuginfo: Some(debug.clone()), ..Default::default() };
    let mut m = Machine::linux_with_options(&assets.read("ZIMAGE"), Some(&assets.read("INITRD")), &dtb, RAM, 60_000_000_000, opts).expect("build the board");
    assert_eq!(m.run_until("/ # "), Step::Paused, "no busybox prompt; console:\n{}", m.output());
    eprintln!("booted in {:.1} s", t.elapsed().as_secs_f64());
    let out = m.output().replace('\r', "");
    let probe = out.lines().find(|l| l.contains("clcd-pl11x") && l.contains(" display")).unwrap_or_else(|| panic!("the CLCD driver did not register a framebuffer:\n{out}"));
    eprintln!("{probe}");
    assert!(probe.contains("640x480"), "{probe}");
    let created = out.lines().find(|l| l.contains("Reserved memory: created CMA memory pool at ")).unwrap_or_else(|| panic!("no DT CMA pool in the boot log"));

    // The kernel's own report of its CMA allocations since boot.
    let before = m.output().len();
    m.send("cat /sys/kernel/debug/tracing/trace; echo @@$((1))T\n");
    assert_eq!(m.run_until("@@1T"), Step::Paused);
    let trace = m.output()[before..].replace('\r', "");
    let records = trace_records(&trace);
    eprintln!("the kernel's CMA trace: {records:?}");

    until_checked(&mut m, 2);
    let s = m.linux_session().unwrap();
    assert!(s.violations.is_empty(), "violations on a clean kernel: {:#?}", &s.violations[..s.violations.len().min(3)]);
    assert!(s.error.is_none(), "{:?}", s.error);
    let (base, len) = s.last_scanout.expect("a scan-out checked");
    let checked = s.scanouts_checked;
    let layout = Layout::new(&VmcoreInfo::locate(m.ram()).unwrap(), &debug).unwrap();
    let mm = LinuxMm::read(m.ram(), &layout).unwrap();
    let area = mm.cma.iter().find(|c| c.name == AREA).unwrap_or_else(|| panic!("no {AREA} area: {:?}", mm.cma)).clone();

    // The area as the boot log reports it.
    assert!(created.ends_with(&format!("created CMA memory pool at {:#010x}, size {POOL_MIB} MiB", (area.base_pfn as u64) << 12)), "{created}");
    assert_eq!(area.count as u64, POOL_MIB << 8);
    // The frame scanned out is the allocation the kernel reported for it.
    assert_eq!(len, 640 * 480 * 2, "640x480 at 16 bpp (max-memory-bandwidth 95 MB/s at 25 MHz)");
    let live: Vec<(u32, u32)> = {
        let mut v: Vec<(u32, u32)> = Vec::new();
        for (name, pfn, count, released) in &records {
            assert_eq!(name, AREA, "the only CMA area");
            if *released {
                let i = v.iter().position(|&(p, _)| p == *pfn).expect("a release of a live allocation");
                v.remove(i);
            } else {
                v.push((*pfn, *count));
            }
        }
        v
    };
    let fb = live.iter().copied().find(|&(p, _)| (p as u64) << 12 == base).unwrap_or_else(|| panic!("the scan-out base {base:#x} is not the start of a CMA allocation the kernel reported: {live:?}"));
    assert!(len <= (fb.1 as u64) << 12, "the frame fits the allocation: {len} bytes in {} pages", fb.1);
    eprintln!("scan-out [{base:#x}, {:#x}) = the kernel's allocation of {} pages at pfn {:#x} in {AREA} [{:#x}, {:#x}); {checked} scan-outs checked", base + len, fb.1, fb.0, area.base_pfn, area.base_pfn + area.count);
    // The host's bitmap is exactly the live allocations the kernel reported.
    let bit = |b: u32| area.bitmap[(b / 32) as usize] >> (b % 32) & 1 != 0;
    let set: Vec<u32> = (0..area.count).filter(|&b| bit(b)).map(|b| area.base_pfn + b).collect();
    let mut want: Vec<u32> = live.iter().flat_map(|&(p, n)| p..p + n).collect();
    want.sort_unstable();
    assert_eq!(area.order_per_bit, 0);
    assert_eq!(set, want, "bitmap bits set = the kernel's live allocations {live:?}");

    // Planted (1): the bitmap bits under the frame cleared (host writes the
    // kernel's bitmap): the buffer is no longer an owned CMA allocation.
    let ram = m.ram().clone();
    let words: Vec<u64> = ((fb.0 - area.base_pfn) / 32..=(fb.0 + fb.1 - 1 - area.base_pfn) / 32).map(|w| mm.lowmem_pa(area.bitmap_va) + 4 * w as u64).collect();
    let saved: Vec<u32> = words.iter().map(|&pa| ram.read_u32(pa).unwrap()).collect();
    for (&pa, &old) in words.iter().zip(&saved) {
        let mut w = old;
        for b in 0..32u32 {
            let pfn = area.base_pfn + (pa - mm.lowmem_pa(area.bitmap_va)) as u32 / 4 * 32 + b;
            if (fb.0..fb.0 + fb.1).contains(&pfn) {
                w &= !(1 << b);
            }
        }
        ram.write_u32(pa, w).unwrap();
    }
    until_checked(&mut m, 1);
    for (&pa, &old) in words.iter().zip(&saved) {
        ram.write_u32(pa, old).unwrap();
    }
    let s = m.linux_session().unwrap();
    let caught: Vec<_> = s.violations.iter().filter(|v| v.check == Check::DmaOwnership).collect();
    eprintln!("bitmap cleared under the frame: {} violation(s); first: {}", s.violations.len(), caught.first().map(|v| v.detail.as_str()).unwrap_or("none"));
    assert!(caught.iter().any(|v| v.pfn == Some(fb.0) && v.detail.contains(&format!("{} frame(s) from pfn {:#x} are in CMA area {AREA} but not allocated in its bitmap", fb.1, fb.0))), "the scan-out of an unowned buffer caught: {:#?}", s.violations);
    let n1 = s.violations.len();

    // Planted (2): the CLCD's base pointed at a free frame (the host writes
    // the device's register, as a driver bug or a stale base would).
    let snap = to_snapshot(&LinuxMm::read(m.ram(), &layout).unwrap()).unwrap();
    let free = (area.base_pfn..area.base_pfn + area.count).rev().find(|&p| (0..len.div_ceil(4096) as u32).all(|i| snap.is_free(p - i))).expect("free CMA pages") - (len.div_ceil(4096) as u32 - 1);
    m.cpu().bus_mut().clcd.write(CLCD_UBAS, free << 12);
    until_checked(&mut m, 2);
    m.cpu().bus_mut().clcd.write(CLCD_UBAS, base as u32);
    let s = m.linux_session().unwrap();
    let caught: Vec<_> = s.violations[n1..].iter().filter(|v| v.check == Check::DmaOwnership).collect();
    eprintln!("base pointed at free frames from pfn {free:#x}: {} violation(s); first: {}", s.violations.len() - n1, caught.first().map(|v| v.detail.as_str()).unwrap_or("none"));
    assert!(caught.iter().any(|v| v.pfn == Some(free) && v.detail.contains("free")), "the scan-out of free memory caught: {:#?}", &s.violations[n1..]);

    // Restored: clean again.
    until_checked(&mut m, 2);
    let n2 = m.linux_session().unwrap().violations.len();
    until_checked(&mut m, 2);
    assert_eq!(m.linux_session().unwrap().violations.len(), n2, "no new violation once restored");
    eprintln!("{:.1} s in all", t.elapsed().as_secs_f64());
}
