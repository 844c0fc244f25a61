//! Scenario files and the scenario runner, end to end on the real guest:
//! every example passes (or is reported skipped when pending), fault
//! injection is caught, the CLI's `test` / `sweep` and its JUnit and JSONL
//! outputs, the Rust API, and the GDB stub.
use cmaemu::scenario::{self, Board, Scenario, Status};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn example(name: &str) -> PathBuf {
    root().join("examples").join(name)
}

fn have_dtc() -> bool {
    Command::new("dtc").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cmaemu-scenarios-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

fn cli(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cmaemu")).args(args).stdin(Stdio::null()).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Run an example through the library; pending ones must be reported
/// skipped (never run), the others must pass.
fn run_example(file: &str) {
    let sc = Scenario::load(&example(file)).unwrap_or_else(|e| panic!("{e}"));
    if sc.board.dtb.as_deref().is_some_and(|d| d.ends_with(".dts")) && !have_dtc() {
        eprintln!("dtc not installed: skipping {file} (run scripts/setup.sh)");
        return;
    }
    let sc = sc.with_seed(sc.seed);
    let r = scenario::run_scenario(&sc).unwrap_or_else(|e| panic!("{file}: {e}"));
    if sc.pending.is_some() {
        assert_eq!(r.status, Status::Skipped, "{file}: {:?}", r.reasons);
        assert!(r.reasons[0].starts_with("pending: "), "{:?}", r.reasons);
        assert_eq!(r.insns, 0, "a pending scenario must not run");
        return;
    }
    assert_eq!(r.status, Status::Pass, "{file}: {:#?}\nconsole:\n{}", r.reasons, r.console_tail.join("\n"));
    assert!(r.insns > 0 && r.virtual_ns >= r.insns);
}

#[test]
fn example_fill_and_check() {
    run_example("fill-and-check.toml");
}
#[test]
fn example_cma_test_device() {
    run_example("cma-test-device.toml");
}
#[test]
fn example_dt_vs_cmdline_placement() {
    run_example("dt-vs-cmdline-placement.toml");
}
#[test]
fn example_dt_864m_placement() {
    run_example("dt-864m-placement.toml");
}
#[test]
fn example_pinned_page_blocks_cma() {
    run_example("pinned-page-blocks-cma.toml");
}
#[test]
fn example_fragmentation_long_run() {
    run_example("fragmentation-long-run.toml");
}
#[test]
fn example_camera_preview_under_pressure() {
    run_example("camera-preview-under-pressure.toml");
}

/// Every file in examples/ has a test above and parses.
#[test]
fn every_example_is_tested_and_parses() {
    let src = include_str!("scenarios.rs");
    for e in std::fs::read_dir(root().join("examples")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            Scenario::load(&p).unwrap_or_else(|e| panic!("{e}"));
            assert!(src.contains(&format!("run_example(\"{name}\")")), "examples/{name} has no test in tests/scenarios.rs");
        }
    }
}

/// A fault injection must make the scenario fail and say why: the host
/// verifier names the violation (`skip_copy` leaves migrated pages without
/// their data: migrate.content), and the guest's own `check` sees it too.
#[test]
fn fault_injection_fails_and_names_the_violation() {
    let src = r#"
name = "inject-skip-copy"
[board]
ram = "256M"
bootargs = "console=ttyAMA0 cma=16M"
inject = ["skip_copy"]
[[step]]
send = "fill 200 5"
[[step]]
send = "echo 2048 > /sys/kernel/debug/cma/reserved/alloc"
[[step]]
send = "check"
expect_line = "pages ok"
[[expect]]
no_violations = true
"#;
    let sc = Scenario::parse("inject.toml", src).unwrap();
    let board = scenario::PreparedBoard::from_spec(&sc.board, None).unwrap();
    assert!(board.bootargs.ends_with(" cmaemu.inject=skip_copy"), "{}", board.bootargs);
    let r = scenario::run_prepared(&sc, &board);
    assert_eq!(r.status, Status::Fail);
    let all = r.reasons.join("\n");
    assert!(all.contains("step 3 (line 11): expected a line containing \"pages ok\""), "{all}");
    assert!(all.contains("expect 1 (no_violations): ") && all.contains("migrate.content"), "{all}");
    // without the injection the same scenario passes, verifier included
    let clean = Scenario::parse("clean.toml", &src.replace("inject = [\"skip_copy\"]", "")).unwrap();
    let r = scenario::run_scenario(&clean).unwrap();
    assert_eq!(r.status, Status::Pass, "{:#?}", r.reasons);
}

#[test]
fn step_and_counter_failures_are_reported_with_reasons() {
    let src = r#"
[board]
ram = "64M"
boot_timeout_ms = 5000
[[step]]
send = "echo hello"
expect_line = "goodbye"
[[step]]
wait = "never printed"
timeout_ms = 30
[[expect]]
counter = "meminfo.CmaTotal > 999999999"
[[expect]]
counter = "vmstat.no_such_counter >= 0"
[[expect]]
line = "hello"
"#;
    let sc = Scenario::parse("f.toml", src).unwrap();
    let r = scenario::run_scenario(&sc).unwrap();
    assert_eq!(r.status, Status::Fail);
    let all = r.reasons.join("\n");
    assert!(all.contains("step 1 (line 5): expected a line containing \"goodbye\""), "{all}");
    assert!(all.contains("step 2 (line 8): wait for 'never printed': not done within 30 ms"), "{all}");
    assert!(all.contains("meminfo.CmaTotal is "), "{all}");
    assert!(all.contains("/proc/vmstat has no field no_such_counter"), "{all}");
    assert_eq!(r.reasons.len(), 4, "{all}");
}

#[test]
fn rust_api_drives_the_console() {
    let mut s = Board::builder().ram(128 << 20).bootargs("console=ttyAMA0 cma=8M").boot().unwrap();
    let out = s.command("echo api-hello").unwrap();
    assert_eq!(out.trim_end(), "api-hello");
    let mi = s.meminfo().unwrap();
    // 8 MiB default area + the generated board's 32 MiB camera pool
    assert_eq!(mi.get("CmaTotal"), Some(40 * 1024), "{mi:?}");
    let t0 = s.now_ns();
    s.run_for(30).unwrap();
    assert!(s.now_ns() >= t0 + 30_000_000);
    let up = s.command("uptime").unwrap();
    assert!(up.starts_with("up 0.0") || up.starts_with("up 0.1"), "{up}");
    s.machine().send("echo later\n");
    let line = s.wait_for_line("later", 100).unwrap();
    assert!(line.contains("later"));
    let vm = s.vmstat().unwrap();
    assert!(vm.get("pgmigrate_success").is_some(), "{vm:?}");
    assert_eq!(s.poweroff(6), cmaemu::board::machine::Exit::Poweroff(6));
    // bad input is an error, not a panic
    assert!(matches!(Board::builder().ram(7 << 20).boot(), Err(scenario::Error::Board(_))));
}

#[test]
fn cli_test_reports_bad_files_with_line_and_exit_2() {
    let bad = tmp("bad.toml");
    std::fs::write(&bad, "[board]\nram = \"64M\"\n\n[[step]]\nsend = \"help\"\n[[step]]\nsned = \"fill 8\"\n").unwrap();
    let (code, _out, err) = cli(&["test", bad.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("bad.toml:7: step 2: unknown field 'sned'"), "{err}");
    let (code, _, err) = cli(&["test", "/nonexistent/x.toml"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn cli_test_junit_round_trip_and_exit_codes() {
    let pass = tmp("pass.toml");
    std::fs::write(&pass, "[board]\nram = \"64M\"\n[[step]]\nsend = \"echo ok-<&>\"\nexpect_line = \"ok-<&>\"\n").unwrap();
    let fail = tmp("fail.toml");
    std::fs::write(&fail, "name = \"fails \\\"quoted\\\"\"\n[board]\nram = \"64M\"\n[[step]]\nsend = \"echo a\"\nexpect_line = \"<b & c>\"\n").unwrap();
    let skip = tmp("skip.toml");
    std::fs::write(&skip, "pending = \"not yet\"\n[[step]]\nsend = \"x\"\n").unwrap();
    let junit = tmp("junit.xml");
    let (code, out, err) = cli(&["test", "-j", "2", pass.to_str().unwrap(), fail.to_str().unwrap(), skip.to_str().unwrap(), "--junit", junit.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("PASS pass"), "{out}");
    assert!(out.contains("FAIL fails \"quoted\""), "{out}");
    assert!(out.contains("expected a line containing \"<b & c>\""), "{out}");
    assert!(out.contains("SKIP skip"), "{out}");
    assert!(out.contains("scenarios: 1 passed, 1 failed, 1 skipped"), "{out}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    // parse it back
    use quick_xml::events::Event;
    let mut rd = quick_xml::Reader::from_str(&xml);
    let (mut cases, mut failures, mut skipped, mut failure_msg) = (Vec::new(), 0, 0, String::new());
    let mut suite_attrs = Vec::new();
    loop {
        match rd.read_event().unwrap() {
            Event::Eof => break,
            Event::Start(e) | Event::Empty(e) => {
                let attr = |k: &str| {
                    e.attributes()
                        .flatten()
                        .find(|a| a.key.as_ref() == k.as_bytes())
                        .map(|a| a.unescape_value().unwrap().into_owned())
                };
                match e.name().as_ref() {
                    b"testsuite" => suite_attrs = vec![attr("tests"), attr("failures"), attr("skipped")],
                    b"testcase" => cases.push(attr("name").unwrap()),
                    b"failure" => {
                        failures += 1;
                        failure_msg = attr("message").unwrap();
                    }
                    b"skipped" => skipped += 1,
                    _ => {}
                }
            }
            _ => {}
        }
    }
    assert_eq!(cases, vec!["pass", "fails \"quoted\"", "skip"]);
    assert_eq!((failures, skipped), (1, 1));
    assert_eq!(suite_attrs, vec![Some("3".into()), Some("1".into()), Some("1".into())]);
    assert!(failure_msg.contains("\"<b & c>\""), "{failure_msg}");
    // all passing → 0
    let (code, out, _) = cli(&["test", pass.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
}

/// The `run` lines of a sweep's JSON lines.
fn runs(text: &str) -> Vec<serde_json::Value> {
    text.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()).filter(|v| v["type"] == "run").collect()
}

#[test]
fn cli_sweep_writes_one_line_per_seed_in_order() {
    let f = tmp("sweep.toml");
    std::fs::write(
        &f,
        "[board]\nram = \"64M\"\nbootargs = \"console=ttyAMA0 seed={seed}\"\n[[step]]\nsend = \"echo seed-{seed}\"\nexpect_line = \"seed-{seed}\"\n[[step]]\nsend = \"cat /proc/cmdline\"\nexpect_line = \"seed={seed}\"\n[[expect]]\nno_line = \"seed-3\"\n",
    )
    .unwrap();
    let out_path = tmp("sweep.jsonl");
    let (code, out, err) = cli(&["sweep", f.to_str().unwrap(), "--seeds", "0..6", "--jobs", "3", "--out", out_path.to_str().unwrap()]);
    assert_eq!(code, 1, "seed 3 fails on purpose: {out}{err}");
    let text = std::fs::read_to_string(&out_path).unwrap();
    let rows: Vec<serde_json::Value> = runs(&text);
    let seeds: Vec<u64> = rows.iter().map(|r| r["seed"].as_u64().unwrap()).collect();
    assert_eq!(seeds, vec![0, 1, 2, 3, 4, 5]);
    for r in &rows {
        let s = r["seed"].as_u64().unwrap();
        assert_eq!(r["pass"].as_bool().unwrap(), s != 3, "{r}");
        assert!(r["virtual_ns"].as_u64().unwrap() > 0 && r["insns"].as_u64().unwrap() > 0, "{r}");
        assert_eq!(r["reasons"].as_array().unwrap().is_empty(), s != 3, "{r}");
    }
    // same seeds, same virtual time: deterministic across threads
    let (code, out, _) = cli(&["sweep", f.to_str().unwrap(), "--seeds", "0..=5", "--jobs", "2", "--shard", "1/2"]);
    assert_eq!(code, 1);
    let shard: Vec<serde_json::Value> = runs(&out);
    assert_eq!(shard.iter().map(|r| r["seed"].as_u64().unwrap()).collect::<Vec<_>>(), vec![1, 3, 5]);
    for r in &shard {
        let s = r["seed"].as_u64().unwrap() as usize;
        assert_eq!(r["virtual_ns"], rows[s]["virtual_ns"], "seed {s}");
        assert_eq!(r["insns"], rows[s]["insns"], "seed {s}");
    }
    let (code, _, err) = cli(&["sweep", f.to_str().unwrap(), "--seeds", "5..2"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = cli(&["sweep", f.to_str().unwrap(), "--seeds", "0..2", "--shard", "2/2"]);
    assert_eq!(code, 2, "{err}");
}

/// Issue 19: `--seeds 0..18446744073709551615` collected the range (a
/// 2 GiB allocation, then an abort) and with `--shard 0/18446744073709551615`
/// spun through 2^64 numbers to find its one seed.
#[test]
fn cli_sweep_counts_huge_ranges_instead_of_walking_them() {
    let f = tmp("sweep-huge.toml");
    std::fs::write(&f, "[board]\nram = \"64M\"\n[[step]]\nsend = \"echo seed-{seed}\"\nexpect_line = \"seed-{seed}\"\n").unwrap();
    let (code, _, err) = cli(&["sweep", f.to_str().unwrap(), "--seeds", "0..18446744073709551615"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("18446744073709551615 seeds, more than the 1048576 one sweep runs"), "{err}");
    let (code, out, err) = cli(&["sweep", f.to_str().unwrap(), "--seeds", "0..18446744073709551615", "--shard", "0/18446744073709551615"]);
    assert_eq!(code, 0, "{out}{err}");
    let seeds: Vec<u64> = runs(&out).iter().map(|r| r["seed"].as_u64().unwrap()).collect();
    assert_eq!(seeds, vec![0]);
}

fn gdb_multiarch() -> Option<&'static str> {
    let ok = |b: &str| Command::new(b).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success());
    if ok("gdb-multiarch") {
        return Some("gdb-multiarch");
    }
    let root = unsafe { libc::geteuid() } == 0;
    if root && std::env::var("CI").as_deref() == Ok("true") {
        let _ = Command::new("apt-get")
            .args(["install", "-y", "-qq", "gdb-multiarch"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if ok("gdb-multiarch") {
            return Some("gdb-multiarch");
        }
    }
    None
}

#[test]
fn gdb_stub_breaks_at_kmain_reads_pc_and_detaches() {
    use std::io::Write;
    let Some(gdb) = gdb_multiarch() else {
        eprintln!("gdb-multiarch not installed: skipping the GDB stub test (apt-get install gdb-multiarch)");
        return;
    };
    let elf = tmp("kernel.elf");
    std::fs::write(&elf, cmaemu::loader::images::KERNEL_ELF).unwrap();
    // a free port
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut emu = Command::new(env!("CARGO_BIN_EXE_cmaemu"))
        .args(["boot", "-m", "128M", "-s", "-S", "--gdb-port", &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // wait for the stub's socket; a probe connection that leaves at once
    // must not release -S
    let t0 = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(t0.elapsed().as_secs() < 30, "the stub never listened");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = Command::new(gdb)
        .args(["-batch", "-nx"])
        .args(["-ex", &format!("file {}", elf.display())])
        .args(["-ex", &format!("target remote 127.0.0.1:{port}")])
        .args(["-ex", "info registers pc"])
        .args(["-ex", "break kmain"])
        .args(["-ex", "continue"])
        .args(["-ex", "info registers pc"])
        .args(["-ex", "stepi"])
        .args(["-ex", "info registers pc cpsr"])
        .args(["-ex", "detach"])
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // the guest runs on after the detach: power it off from the console
    let mut stdin = emu.stdin.take().unwrap();
    let _ = stdin.write_all(b"poweroff 9\n");
    drop(stdin);
    let st = emu.wait_with_output().unwrap();
    let console = String::from_utf8_lossy(&st.stdout);
    assert!(text.contains("Breakpoint 1, ") && text.contains("in kmain"), "{text}");
    assert!(text.contains("<kmain>"), "pc at kmain: {text}");
    assert!(text.contains("<kmain+4>"), "stepi: {text}");
    assert!(text.contains("Inferior 1") && text.contains("detached"), "{text}");
    assert!(console.contains("cmaemu shell"), "{console}\n{}", String::from_utf8_lossy(&st.stderr));
    assert_eq!(st.status.code(), Some(9), "{}", String::from_utf8_lossy(&st.stderr));
}

#[test]
fn sweep_of_200_seeds_on_both_cores() {
    let f = tmp("sweep200.toml");
    std::fs::write(
        &f,
        "[board]\nram = \"32M\"\nbootargs = \"console=ttyAMA0 cmaemu.profile=biscuitos-5.0\"\n[[step]]\nsend = \"fill 1 {seed}\"\nexpect_line = \"fill: 256 pages\"\n[[step]]\nsend = \"check\"\nexpect_line = \"256 pages ok\"\n",
    )
    .unwrap();
    let out_path = tmp("sweep200.jsonl");
    let (code, out, err) = cli(&["sweep", f.to_str().unwrap(), "--seeds", "0..200", "--jobs", "2", "--out", out_path.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    let text = std::fs::read_to_string(&out_path).unwrap();
    let rows: Vec<serde_json::Value> = runs(&text);
    assert_eq!(rows.len(), 200);
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r["seed"].as_u64(), Some(i as u64));
        assert_eq!(r["pass"].as_bool(), Some(true), "{r}");
    }
}
