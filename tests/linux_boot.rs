//! Debian 12's Linux 6.1 armmp kernel on cmaemu's board, from the package
//! registry (scripts/linux-assets.sh, cached under $CMAEMU_CACHE/linux):
//! Linux's own vexpress-v2p-ca9.dtb, a busybox initramfs, QEMU's loader
//! layout. Skipped (with a message) only when the registry is unreachable.
use cmaemu::board::machine::{Exit, Machine, Step};

struct Assets {
    zimage: Vec<u8>,
    dtb: Vec<u8>,
    initrd: Vec<u8>,
}

#[path = "common/linux.rs"]
mod linux;

/// `linux-assets.sh env`; None (skip) when the registry is unreachable.
fn assets() -> Option<Assets> {
    let env = linux::Env::of("linux-assets.sh", &["env"])?;
    Some(Assets { zimage: env.read("ZIMAGE"), dtb: env.read("DTB"), initrd: env.read("INITRD") })
}

const RAM: u64 = 256 << 20;

/// Linux's DTB with -m 256M and -append "console=ttyAMA0", as QEMU does.
fn dtb(a: &Assets) -> Vec<u8> {
    linux::linux_dtb(&a.dtb, RAM, "console=ttyAMA0")
}

/// Boot to the busybox prompt, run a command, `poweroff -f`; returns the
/// retired instructions and the console bytes.
fn boot_shell_poweroff(a: &Assets, dtb: &[u8]) -> (u64, String) {
    let mut m = Machine::linux(&a.zimage, Some(&a.initrd), dtb, RAM, 20_000_000_000).expect("build the board");
    let s = m.run_until("/ # ");
    assert_eq!(s, Step::Paused, "no busybox prompt; console:\n{}", m.output());
    command_poweroff(&mut m, "echo hello-$((6*7)) from $(uname -r)\n", "hello-42 from 6.1.0-")
}

/// At the prompt: `cmd`, until `done` appears, then `poweroff -f`:
/// (retired instructions, console bytes).
fn command_poweroff(m: &mut Machine, cmd: &str, done: &str) -> (u64, String) {
    m.send(cmd);
    let s = m.run_until(done);
    assert_eq!(s, Step::Paused, "the command did not run; console:\n{}", m.output());
    m.send("poweroff -f\n");
    let s = m.run_until("text that never appears");
    assert_eq!(s, Step::Exited(Exit::Poweroff(0)), "console:\n{}", m.output());
    (m.stats().insns, m.output())
}

#[test]
fn debian_armmp_boots_to_a_busybox_shell_and_powers_off_deterministically() {
    let Some(a) = assets() else { return };
    let dtb = dtb(&a);
    let (n1, out1) = boot_shell_poweroff(&a, &dtb);
    assert!(out1.contains("Linux version 6.1.0-"), "{out1}");
    assert!(out1.contains("L2C-310 cache controller enabled"), "{out1}");
    assert!(out1.contains("Run /init as init process"), "{out1}");
    let (n2, out2) = boot_shell_poweroff(&a, &dtb);
    assert_eq!(n1, n2, "same inputs, same retired instruction count");
    assert_eq!(out1, out2, "same inputs, same console bytes");
}

/// After the prompt: a command that reads the kernel's memory state, then
/// `poweroff -f`.
const MEMINFO: &str = "grep -E 'MemFree|Cma' /proc/meminfo; echo done-$((6*7))\n";

#[test]
fn debian_armmp_restored_from_a_snapshot_runs_as_it_would_have() {
    let Some(a) = assets() else { return };
    let dtb = dtb(&a);
    let t = std::time::Instant::now();
    let mut m = Machine::linux(&a.zimage, Some(&a.initrd), &dtb, RAM, 20_000_000_000).expect("build the board");
    assert_eq!(m.run_until("/ # "), Step::Paused, "no busybox prompt; console:\n{}", m.output());
    let boot = t.elapsed();
    let t = std::time::Instant::now();
    let snap = m.save().expect("save at the prompt");
    let save = t.elapsed();
    let (n1, out1) = command_poweroff(&mut m, MEMINFO, "done-42");
    assert!(out1.contains("CmaFree:"), "{out1}");
    for round in 0..2 {
        let t = std::time::Instant::now();
        m.restore(&snap).expect("restore");
        let restore = t.elapsed();
        let (n, out) = command_poweroff(&mut m, MEMINFO, "done-42");
        assert_eq!(n, n1, "retired instructions after restore {round}");
        assert_eq!(out, out1, "console bytes after restore {round}");
        eprintln!(
            "snapshot: boot to the prompt {:.0} ms; save {:.1} ms ({} MiB of RAM); restore to the prompt {:.1} ms",
            boot.as_secs_f64() * 1e3,
            save.as_secs_f64() * 1e3,
            snap.ram_bytes() >> 20,
            restore.as_secs_f64() * 1e3
        );
    }
}
