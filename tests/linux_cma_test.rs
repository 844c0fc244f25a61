//! The seed article's `cma_test` module (in oracle/module, built against
//! Debian's headers by scripts/linux-module.sh) on Debian's 6.1 armmp
//! kernel, once on cmaemu's board and once on `qemu-system-arm -M
//! vexpress-a9`, with the same kernel, DTB, command line and initramfs:
//! every allocation and free it logs names the same physical (and
//! virtual) address on both, and `/proc/meminfo`'s CMA lines agree.
//! Skipped (with a message) only when the package registry is unreachable.
use cmaemu::board::machine::{Exit, Machine, Step};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RAM: u64 = 256 << 20;
const BOOTARGS: &str = "console=ttyAMA0 cma=32M";
const DONE: &str = "cma-test-done";

/// What /init runs: load the module, allocate 1, 2, 3, 4 MiB, free the
/// two lowest, allocate again (the freed 1 MiB slot), print the CMA
/// counters, power off.
const INIT: &str = r#"#!/bin/sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
insmod /lib/modules/cmaemu_oracle.ko
for i in 1 2 3 4; do echo 1 > /dev/cma_test; done
cat /dev/cma_test
cat /dev/cma_test
echo 1 > /dev/cma_test
grep -E '^Cma' /proc/meminfo
echo cma-test-done
poweroff -f
"#;

#[path = "common/linux.rs"]
mod linux;
use linux::{root, Env};

/// The busybox initramfs with a second archive appended (Linux unpacks
/// concatenated archives in order; later files win): the module and INIT.
fn initramfs(base: &Path, module: &Path, dir: &Path) -> Vec<u8> {
    let tree = dir.join("tree");
    std::fs::create_dir_all(tree.join("lib/modules")).unwrap();
    std::fs::copy(module, tree.join("lib/modules/cmaemu_oracle.ko")).unwrap();
    std::fs::write(tree.join("init"), INIT).unwrap();
    let st = Command::new("bash")
        .arg("-c")
        .arg("chmod 0755 init && find . | LC_ALL=C sort | cpio -o -H newc --owner=0:0 --quiet | gzip -9n > ../overlay.cpio.gz")
        .current_dir(&tree)
        .status()
        .unwrap();
    assert!(st.success(), "building the overlay archive");
    let mut bytes = std::fs::read(base).unwrap();
    bytes.extend(std::fs::read(dir.join("overlay.cpio.gz")).unwrap());
    bytes
}

/// The module's and meminfo's lines, without timestamps: `alloc virt: …
/// phys: …`, `free virt: … phys: …`, `CmaTotal: …`, `CmaFree: …`.
fn cma_lines(console: &str) -> Vec<String> {
    console
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter_map(|l| {
            if let Some(i) = l.find("cma_test: ") {
                let rest = &l[i + "cma_test: ".len()..];
                (rest.starts_with("alloc ") || rest.starts_with("free ") || rest.starts_with("no mem")).then(|| rest.to_string())
            } else {
                l.starts_with("Cma").then(|| l.to_string())
            }
        })
        .collect()
}

fn run_qemu(qemu: &Path, zimage: &Path, dtb: &Path, initrd: &Path) -> String {
    let mut child = Command::new(qemu)
        .args(["-M", "vexpress-a9", "-m", "256M", "-kernel"])
        .arg(zimage)
        .arg("-dtb")
        .arg(dtb)
        .arg("-initrd")
        .arg(initrd)
        .args(["-append", BOOTARGS, "-nographic", "-no-reboot", "-monitor", "none", "-serial", "stdio"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", qemu.display()));
    let mut out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        std::io::Read::read_to_end(&mut out, &mut s).ok();
        String::from_utf8_lossy(&s).into_owned()
    });
    let t = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if t.elapsed() > Duration::from_secs(600) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("QEMU did not power off within 600 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    reader.join().unwrap()
}

#[test]
fn the_seed_cma_test_module_gets_the_same_addresses_on_cmaemu_and_on_qemu() {
    let Some(assets) = Env::of("linux-assets.sh", &["all"]) else { return };
    let module_dir = root().join("oracle/module");
    let Some(module) = Env::of("linux-module.sh", &[module_dir.to_str().unwrap()]) else { return };
    let dir = std::env::temp_dir().join(format!("cmaemu-cma-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let initrd = initramfs(&assets.path("INITRD"), &module.path("MODULE"), &dir);
    let initrd_path = dir.join("initrd.cpio.gz");
    std::fs::write(&initrd_path, &initrd).unwrap();
    let dtb = linux::linux_dtb(&assets.read("DTB"), RAM, BOOTARGS);
    let dtb_path = dir.join("board.dtb");
    std::fs::write(&dtb_path, &dtb).unwrap();
    let zimage = assets.path("ZIMAGE");

    let mut m = Machine::linux(&std::fs::read(&zimage).unwrap(), Some(&initrd), &dtb, RAM, 40_000_000_000).expect("build the board");
    assert_eq!(m.run_until("text that never appears"), Step::Exited(Exit::Poweroff(0)), "console:\n{}", m.output());
    let ours = m.output();
    let qemu = run_qemu(&assets.path("QEMU"), &zimage, &dtb_path, &initrd_path);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(ours.contains(DONE), "cmaemu: the script did not finish:\n{ours}");
    assert!(qemu.contains(DONE), "QEMU: the script did not finish:\n{qemu}");

    let (a, b) = (cma_lines(&ours), cma_lines(&qemu));
    eprintln!("cmaemu / QEMU:\n{}", a.iter().zip(&b).map(|(x, y)| format!("  {x}\n  {y}")).collect::<Vec<_>>().join("\n"));
    assert_eq!(a.iter().filter(|l| l.starts_with("alloc ")).count(), 5, "five allocations logged: {a:?}");
    assert_eq!(a.iter().filter(|l| l.starts_with("free ")).count(), 2, "two frees logged: {a:?}");
    assert!(a.iter().any(|l| l.starts_with("CmaTotal:")), "{a:?}");
    assert_eq!(a, b, "cma_test's addresses and the CMA counters, cmaemu vs QEMU");
}
