//! The fuzz harness from the command line: a short budget of every target
//! (CI's smoke run: about a minute in all; the long run is
//! `cmaemu fuzz all --execs 1000000`, see README), and the harness's own
//! detection of panics, hangs and oversized allocations, each saved with
//! a replay command that reproduces it.
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn cmaemu(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cmaemu")).args(args).stdin(Stdio::null()).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cmaemu-fuzz-smoke-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Seconds per target (CMAEMU_FUZZ_SECONDS raises it).
fn seconds() -> String {
    std::env::var("CMAEMU_FUZZ_SECONDS").unwrap_or_else(|_| "5".into())
}

#[test]
fn every_target_runs_clean_for_a_short_budget() {
    let out = tmp("all");
    let (_, list, _) = cmaemu(&["fuzz", "--list"]);
    let names: Vec<&str> = list.lines().filter_map(|l| l.split_whitespace().next()).collect();
    assert!(names.len() >= 11, "{list}");
    let (code, stdout, stderr) = cmaemu(&["fuzz", "all", "--seconds", &seconds(), "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    for n in &names {
        let line = stdout.lines().find(|l| l.split_whitespace().nth(1) == Some(n)).unwrap_or_else(|| panic!("no report for {n}: {stdout}"));
        let execs: u64 = line.split_whitespace().nth(2).unwrap().parse().unwrap();
        assert!(execs >= 50, "{line}");
        assert!(line.ends_with("panics 0, hangs 0"), "{line}");
    }
    eprintln!("{stdout}");
    assert!(!out.exists() || std::fs::read_dir(&out).unwrap().next().is_none(), "reproducers were written");
}

/// The saved file named in `stderr` after "saved as".
fn saved(stderr: &str) -> PathBuf {
    let p = stderr.lines().find_map(|l| l.trim().strip_prefix("input (").and_then(|r| r.split(" saved as ").nth(1))).unwrap_or_else(|| panic!("nothing saved: {stderr}"));
    PathBuf::from(p)
}

fn replay(file: &Path) -> (i32, String, String) {
    cmaemu(&["fuzz", "selftest", "--replay", file.to_str().unwrap(), "--timeout-ms", "300", "--out", file.parent().unwrap().to_str().unwrap()])
}

#[test]
fn panics_hangs_and_huge_allocations_are_saved_with_a_replay_command() {
    let out = tmp("selftest");
    // a panic is found by fuzzing ('!' is in the dictionary), saved, and replays
    let (code, stdout, stderr) = cmaemu(&["fuzz", "selftest", "--execs", "3000", "--out", out.to_str().unwrap()]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.contains("fuzz selftest") && stdout.contains("3000 execs") && !stdout.contains("panics 0,"), "{stdout}");
    let p = saved(&stderr);
    assert!(stderr.contains(&format!("replay: cmaemu fuzz selftest --replay {}", p.display())), "{stderr}");
    assert_eq!(std::fs::read(&p).unwrap().first(), Some(&b'!'));
    let (code, rout, rerr) = replay(&p);
    assert_eq!(code, 1, "{rout}{rerr}");
    assert!(rout.contains("panic: selftest panic (at emulator/src/fuzz/targets.rs:"), "{rout}");
    // a hang ends the run after the time limit, saved
    std::fs::create_dir_all(&out).unwrap();
    let hang = out.join("hang-input");
    std::fs::write(&hang, b"hang").unwrap();
    let (code, _, err) = replay(&hang);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("cmaemu: fuzz selftest: hang: one input ran longer than 300 ms"), "{err}");
    assert_eq!(std::fs::read(saved(&err)).unwrap(), b"hang");
    // one allocation of 1 TiB: saved before the allocator is asked
    let oom = out.join("oom-input");
    std::fs::write(&oom, b"oom").unwrap();
    let (code, _, err) = replay(&oom);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("oom: one allocation of 1099511627776 bytes (limit 536870912)"), "{err}");
    assert_eq!(std::fs::read(saved(&err)).unwrap(), b"oom");
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn bad_arguments_are_exit_2() {
    let (code, _, err) = cmaemu(&["fuzz", "nosuch", "--execs", "1"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no target \"nosuch\" (targets: dtb, board-dtb,"), "{err}");
    let (code, _, err) = cmaemu(&["fuzz", "dtb", "--seconds", "-1"]);
    assert_eq!(code, 2, "{err}");
}

/// Found by `cmaemu fuzz gdb`: `m0,ffffffff10` made the stub stream all
/// 64 MiB of flash as hex (gdbstub serves any length chunk by chunk), over
/// the 2 s per-input limit. Reads now stop at 4 KiB per packet.
#[test]
fn gdb_huge_memory_read_is_bounded() {
    let out = tmp("gdb");
    std::fs::create_dir_all(&out).unwrap();
    let input = out.join("m-huge");
    std::fs::write(&input, b"qSupported:multiprocess+\n?\ng\nm0,ffffffff10\nm60000000,ffffffff\nD").unwrap();
    let (code, stdout, stderr) = cmaemu(&["fuzz", "gdb", "--replay", input.to_str().unwrap(), "--timeout-ms", "2000", "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("no panic (ok: Disconnect)"), "{stdout}");
    let _ = std::fs::remove_dir_all(out);
}
