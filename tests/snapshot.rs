//! Machine snapshots (board::snapshot) on cmaemu's own guest: a run
//! restored from a snapshot retires the same instructions and prints the
//! same console bytes as the run that went on from it, and as a machine
//! that never took one. (The real kernel's snapshot test is in
//! tests/linux_boot.rs.)
use cmaemu::board::machine::{Exit, Machine, RunOptions, Step};
use cmaemu::board::snapshot::SnapshotError;
use cmaemu::loader::{board_dtb, images};

const RAM: u64 = 256 << 20;

fn machine(opts: RunOptions) -> Machine {
    let dtb = board_dtb::default_board_dtb(RAM);
    Machine::with_options(images::KERNEL_ELF, images::FIRMWARE_ELF, &dtb, RAM, 20_000_000_000, opts).unwrap()
}

/// Fill memory, allocate from CMA over it (migrating the filled pages),
/// stream camera frames to the display, check the fill, power off:
/// (retired instructions, console bytes).
fn workload(m: &mut Machine) -> (u64, String) {
    for cmd in ["fill 48 7", "echo 1 > /dev/cma_test", "cat /dev/cma_test", "preview 10", "check", "cat /proc/meminfo"] {
        assert_eq!(m.command(cmd), Step::Paused, "{cmd}; console:\n{}", m.output());
    }
    m.send("poweroff 3\n");
    assert_eq!(m.run_until_idle(), Step::Exited(Exit::Poweroff(3)), "console:\n{}", m.output());
    (m.stats().insns, m.output())
}

#[test]
fn a_restored_run_retires_the_same_instructions_and_prints_the_same_bytes() {
    // a machine that never takes a snapshot
    let mut cold = machine(RunOptions::default());
    assert_eq!(cold.run_until_idle(), Step::Paused);
    let (n_cold, out_cold) = workload(&mut cold);
    assert!(out_cold.contains("check: "), "{out_cold}");

    // one that saves at the prompt, runs on, then is restored twice
    let mut m = machine(RunOptions::default());
    assert_eq!(m.run_until_idle(), Step::Paused);
    let at = m.stats().insns;
    let snap = m.save().unwrap();
    assert!(snap.ram_bytes() > 0 && snap.ram_bytes() < RAM as usize, "{} bytes saved", snap.ram_bytes());
    let (n1, out1) = workload(&mut m);
    assert_eq!((n1, &out1), (n_cold, &out_cold), "the run after a save is the run without one");
    for _ in 0..2 {
        let t = std::time::Instant::now();
        m.restore(&snap).unwrap();
        eprintln!("snapshot: restore {:.1} ms ({} MiB of RAM)", t.elapsed().as_secs_f64() * 1e3, snap.ram_bytes() >> 20);
        assert_eq!(m.stats().insns, at, "the counter is back where it was saved");
        let (n, out) = workload(&mut m);
        assert_eq!(n, n_cold, "retired instructions after a restore");
        assert_eq!(out, out_cold, "console bytes after a restore");
    }
}

#[test]
fn instrumented_runs_are_refused_with_a_reason() {
    let mut m = machine(RunOptions { verify: true, ..Default::default() });
    assert_eq!(m.run_until_idle(), Step::Paused);
    let e = m.save().err().expect("a verified run cannot be saved");
    assert!(matches!(e, SnapshotError::Instrumented), "{e}");
    assert!(e.to_string().contains("verifiers"), "{e}");
}
