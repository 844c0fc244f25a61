//! A first-day user's path through the CLI, the shell and the failure
//! reports (issue 16): each test is one sharp edge, run the way a user
//! would hit it (the `cmaemu` binary or `scripts/run.sh`).
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// A fresh scratch directory outside the checkout.
fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cmaemu-friction-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Run `prog args` in `cwd` with `stdin` piped in; run.sh uses the test's
/// own `cmaemu` binary (CMAEMU_BIN) instead of building one.
fn run_in(cwd: &Path, prog: &str, args: &[&str], stdin: &str) -> Run {
    use std::io::Write;
    let mut c = Command::new(prog)
        .args(args)
        .current_dir(cwd)
        .env("CMAEMU_BIN", env!("CARGO_BIN_EXE_cmaemu"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = c.stdin.take().unwrap().write_all(stdin.as_bytes());
    let out = c.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn cmaemu(cwd: &Path, args: &[&str], stdin: &str) -> Run {
    run_in(cwd, env!("CARGO_BIN_EXE_cmaemu"), args, stdin)
}

#[test]
fn run_sh_takes_paths_relative_to_the_callers_directory() {
    let d = scratch("runsh");
    let r = cmaemu(&d, &["dtb", "-o", "board.dtb", "-m", "256M"], "");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let script = root().join("scripts/run.sh");
    let r = run_in(&d, "bash", &[script.to_str().unwrap(), "--dtb", "board.dtb", "--append", "console=ttyAMA0 cma=32M"], "cat /proc/iomem\npoweroff 7\n");
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert!(r.stdout.contains("60000000-6fffffff : System RAM"), "{}", r.stdout);
    assert!(r.stdout.contains("cma=32M"), "{}", r.stdout);
    // subcommands pass through, relative paths too
    let r = run_in(&d, "bash", &[script.to_str().unwrap(), "dtb", "-o", "again.dtb"], "");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(d.join("again.dtb").is_file());
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn output_paths_are_checked_before_the_guest_starts() {
    let d = scratch("outputs");
    let cases: [&[&str]; 4] = [
        &["boot", "--trace", "/nonexistent/t.json"],
        &["boot", "--screenshot", "/nonexistent/x.png"],
        &["boot", "--record-frames", "/nonexistent/deep/dir"],
        &["test", "--junit", "/nonexistent/r.xml", "examples/fill-and-check.toml"],
    ];
    for args in cases {
        let r = cmaemu(&root(), args, "poweroff\n");
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains("/nonexistent") && r.stderr.contains("does not exist"), "{args:?}: {}", r.stderr);
        assert!(r.stdout.is_empty(), "{args:?}: the guest ran: {}", r.stdout);
    }
    assert!(!Path::new("/nonexistent").exists(), "no directory tree is created");
    // the output is a directory, not a file
    let r = cmaemu(&d, &["boot", "--trace", "."], "poweroff\n");
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("is a directory"), "{}", r.stderr);
    // one missing level of --record-frames is made, like the file of --screenshot
    let r = cmaemu(&d, &["boot", "-m", "64M", "--record-frames", "frames", "--screenshot", "shot.png"], "poweroff\n");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(d.join("frames").is_dir());
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn size_hints_and_dtb_to_stdout() {
    let d = scratch("sizes");
    let r = cmaemu(&d, &["boot", "-m", "256"], "poweroff\n");
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("did you mean 256M?"), "{}", r.stderr);
    let r = cmaemu(&d, &["dtb", "-o", "x.dtb", "-m", "64"], "");
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("did you mean 64M?"), "{}", r.stderr);
    let r = cmaemu(&d, &["boot", "-m", "4096"], "");
    assert_eq!(r.code, 2);
    assert!(!r.stderr.contains("did you mean"), "4096M is too big: no hint: {}", r.stderr);
    let out = Command::new(env!("CARGO_BIN_EXE_cmaemu")).args(["dtb", "-o", "-", "-m", "256M"]).current_dir(&d).output().unwrap();
    assert!(out.status.success());
    assert_eq!(&out.stdout[..4], &[0xd0, 0x0d, 0xfe, 0xed], "an FDT on stdout");
    assert!(!d.join("-").exists(), "no file named -");
    let file = Command::new(env!("CARGO_BIN_EXE_cmaemu")).args(["dtb", "-o", "b.dtb", "-m", "256M"]).current_dir(&d).output().unwrap();
    assert!(file.status.success());
    assert_eq!(std::fs::read(d.join("b.dtb")).unwrap(), out.stdout);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn max_insns_is_reported_as_the_limit_with_the_last_console_lines() {
    let r = cmaemu(&root(), &["boot", "-m", "64M", "--max-insns", "60000000"], "spin 100000000\n");
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(r.stderr.contains("stopped: --max-insns 60000000 reached"), "{}", r.stderr);
    assert!(!r.stderr.contains("cmaemu: guest failure"), "{}", r.stderr);
    assert!(r.stderr.contains("    | # spin 100000000"), "the command being run is the last line: {}", r.stderr);
    assert!(r.stderr.contains("(spin_loop+0x"), "where the guest was: {}", r.stderr);
    // stopped before the guest printed anything
    let r = cmaemu(&root(), &["boot", "--max-insns", "1000"], "");
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(r.stderr.contains("last console lines: (the guest printed nothing)"), "{}", r.stderr);
}

#[test]
fn failure_report_names_the_functions_at_pc_and_lr() {
    let r = cmaemu(&root(), &["boot", "-m", "64M"], "crash undef\n");
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("cmaemu: guest failure: kernel panic"), "{}", r.stderr);
    assert!(r.stderr.contains("last exception: undefined instruction at pc 0x"), "{}", r.stderr);
    assert!(r.stderr.contains(" (cmaemu_kernel::shell::crash+0x"), "{}", r.stderr);
    assert!(r.stderr.contains("    PC is at cmaemu_kernel::shell::crash+0x"), "{}", r.stderr);
    assert!(r.stderr.contains("    LR is at cmaemu_kernel::shell::"), "{}", r.stderr);
}

use cmaemu::board::console::{Capture, Input};
use cmaemu::board::machine::{self, BootConfig, Exit};
use cmaemu::loader::{board_dtb, images};

/// Boot the default board (256 MiB) with a console script; the console text.
fn boot_script(script: &[u8]) -> (Exit, String) {
    let cap = Capture::default();
    let cfg = BootConfig {
        kernel_elf: images::KERNEL_ELF.to_vec(),
        initrd: None,
        firmware_elf: images::FIRMWARE_ELF.to_vec(),
        dtb: board_dtb::default_board_dtb(256 << 20),
        ram_size: 256 << 20,
        max_insns: 20_000_000_000,
        input: Input::Script(script.iter().copied().collect()),
        stdout: false,
        capture: Some(cap.clone()),
        idle_after_eof_ns: 1_000_000_000,
        opts: Default::default(),
    };
    let o = machine::boot(cfg).expect("boot");
    (o.exit, cap.text())
}

/// The output lines of each command: the text between its prompt line and
/// the next prompt, per command (escape sequences included).
fn after(out: &str, marker: &str) -> String {
    let out = out.replace('\r', "");
    let i = out.find(marker).unwrap_or_else(|| panic!("no {marker:?} in {out}"));
    let rest = &out[i + marker.len()..];
    rest[..rest.find("# ").unwrap_or(rest.len())].to_string()
}

#[test]
fn shell_line_editing_and_history() {
    let script: &[u8] = b"echo abc\x1b[D\x1b[DX\n\
        echo junk\x15echo clean\n\
        echo a b\x17c\n\
        echo abd\x7fc\n\
        echo first\n\
        echo second\n\
        \x1b[A\x1b[A\x1b[B\n\
        echo typed\x1b[A\x1b[B -draft\n\
        X12345\x1b[H\x1b[3~echo \x1b[F6\n\
        \x1b[A\x1b[A\x1b[A\x1b[A\x1b[A\x1b[A\x1b[A\x1b[A\x1b[A\x1b[A\x1b[A\x1b[A\n\
        poweroff 4\n";
    let (exit, out) = boot_script(script);
    assert_eq!(exit, Exit::Poweroff(4), "{out}");
    let results: Vec<String> = out
        .split("# ")
        .skip(1)
        .filter_map(|chunk| chunk.replace('\r', "").split_once('\n').map(|(_, rest)| rest.lines().next().unwrap_or("").to_string()))
        .collect();
    // left/left then X lands before "bc"
    assert!(results.contains(&"aXbc".to_string()), "{results:?}\n{out}");
    assert!(results.contains(&"clean".to_string()), "Ctrl-U: {results:?}");
    assert!(results.contains(&"a c".to_string()), "Ctrl-W: {results:?}");
    assert!(results.contains(&"abc".to_string()), "backspace: {results:?}");
    assert_eq!(results.iter().filter(|r| *r == "second").count(), 2, "up, up, down recalls `echo second`: {results:?}");
    assert!(results.contains(&"typed -draft".to_string()), "down past the newest entry restores the draft: {results:?}");
    assert!(results.contains(&"123456".to_string()), "Home, Delete, typing at the start, End: {results:?}");
    // up past the oldest entry stays at the oldest (`echo abcX...` edited line)
    assert_eq!(results.iter().filter(|r| *r == "aXbc").count(), 2, "{results:?}");
    // deterministic: the same bytes give the same console
    assert_eq!(boot_script(script).1, out);
}

#[test]
fn ctrl_c_stops_the_foreground_command() {
    let (exit, out) = boot_script(b"preview 3000\n\x03echo after\nsleep 100000\n\x03poweroff 6\n");
    assert_eq!(exit, Exit::Poweroff(6), "{out}");
    let p = after(&out, "# preview 3000\n");
    assert!(p.contains("^C"), "{p}");
    assert!(!p.contains("frames shown"), "the preview was stopped: {p}");
    assert!(after(&out, "# sleep 100000\n").contains("^C"), "{out}");
    assert!(after(&out, "# echo after\n").starts_with("after"), "{out}");
    // Ctrl-C at the prompt drops the line being typed
    // (Linux flushes the input received before Ctrl-C)
    let (exit, out) = boot_script(b"echo never\x03\necho ok\npoweroff 2\n");
    assert_eq!(exit, Exit::Poweroff(2), "{out}");
    let out = out.replace('\r', "");
    assert!(out.contains("# ^C\n"), "{out}");
    assert!(!out.contains("\nnever"), "{out}");
    assert!(out.contains("# echo ok\nok\n"), "{out}");
}

#[test]
fn help_lists_every_file_and_ls_lists_every_directory() {
    let (exit, out) = boot_script(b"help\nls\nls /sys/kernel/mm/cma/linux,cma\nls /sys/kernel/debug/cma/linux,cma/\nls /sys/kernel/tracing/events\nls /dev\nls /proc/meminfo\nls /nope\npoweroff\n");
    assert_eq!(exit, Exit::Poweroff(0), "{out}");
    let help = after(&out, "# help\n");
    for f in [
        "/proc/meminfo",
        "/proc/iomem",
        "/sys/kernel/debug/memblock/reserved",
        "/sys/kernel/debug/cma/linux,cma/alloc",
        "/sys/kernel/debug/cma/linux,cma/bitmap",
        "/sys/kernel/mm/cma/linux,cma/alloc_pages_success",
        "/sys/kernel/tracing/trace",
        "/sys/kernel/tracing/events/cma/cma_alloc_start/enable",
        "/dev/cma_test",
    ] {
        assert!(help.lines().any(|l| l.trim() == f), "help lacks {f}: {help}");
    }
    assert_eq!(after(&out, "# ls\n").trim_end(), "dev\nproc\nsys");
    assert_eq!(after(&out, "# ls /sys/kernel/mm/cma/linux,cma\n").trim_end(), "alloc_pages_fail\nalloc_pages_success");
    assert!(after(&out, "# ls /sys/kernel/debug/cma/linux,cma/\n").contains("maxchunk\n"), "{out}");
    assert_eq!(after(&out, "# ls /sys/kernel/tracing/events\n").trim_end(), "cma\nenable\nmigrate");
    assert_eq!(after(&out, "# ls /dev\n").trim_end(), "cma_test");
    assert_eq!(after(&out, "# ls /proc/meminfo\n").trim_end(), "/proc/meminfo");
    assert!(after(&out, "# ls /nope\n").contains("ls: cannot access '/nope': No such file or directory"));
    // every file help names can be read (or, for write-only files, written)
    let files: Vec<&str> = help.lines().map(str::trim).filter(|l| l.starts_with('/')).collect();
    let mut script = String::new();
    for f in &files {
        if !f.ends_with("/alloc") && !f.ends_with("/free") {
            script += &format!("cat {f}\n");
        }
    }
    script += "poweroff\n";
    let (exit, out) = boot_script(script.as_bytes());
    assert_eq!(exit, Exit::Poweroff(0), "{out}");
    assert!(!out.contains("No such file"), "{out}");
}

#[test]
fn proc_iomem_lists_the_clcd_and_the_camera_as_linux_does() {
    let (exit, out) = boot_script(b"cat /proc/iomem\npoweroff\n");
    assert_eq!(exit, Exit::Poweroff(0), "{out}");
    let io = after(&out, "# cat /proc/iomem\n");
    // AMBA devices: the bus's resource, the driver's request nested under it
    assert!(io.contains("10020000-10020fff : clcd@10020000\n  10020000-10020fff : 10020000.clcd clcd@10020000\n"), "{io}");
    assert!(io.contains("10009000-10009fff : serial@10009000\n  10009000-10009fff : 10009000.serial serial@10009000\n"), "{io}");
    // the platform device: the driver's request only
    assert!(io.contains("10030000-10030fff : 10030000.camera camera@10030000\n"), "{io}");
    assert!(io.contains("60000000-6fffffff : System RAM\n  60008000-"), "{io}");
    // in address order
    let starts: Vec<u32> = io.lines().filter(|l| !l.starts_with(' ')).map(|l| u32::from_str_radix(&l[..8], 16).unwrap()).collect();
    assert!(starts.windows(2).all(|w| w[0] < w[1]), "{io}");
}

#[test]
fn proc_meminfo_has_linux_6_1_field_set() {
    let (exit, out) = boot_script(b"fill 4\ncat /proc/meminfo\npoweroff\n");
    assert_eq!(exit, Exit::Poweroff(0), "{out}");
    let mi = after(&out, "# cat /proc/meminfo\n");
    let names: Vec<&str> = mi.lines().map(|l| l.split(':').next().unwrap()).collect();
    // Linux 6.1 ARM32 armmp (HIGHMEM, ZSWAP, CMA), as `cat /proc/meminfo`
    // prints it under qemu-system-arm -M vexpress-a9
    assert_eq!(names.len(), 45, "{mi}");
    assert_eq!(&names[..4], ["MemTotal", "MemFree", "MemAvailable", "Buffers"]);
    assert_eq!(&names[names.len() - 2..], ["CmaTotal", "CmaFree"]);
    assert!(mi.contains("\nAnonPages:          4096 kB\n"), "fill 4 maps 4 MiB: {mi}");
    // 256 MiB of lowmem: vmalloc from 0xd0800000 to 0xff800000, as Linux
    assert!(mi.contains("\nVmallocTotal:     770048 kB\n"), "{mi}");
}

#[test]
fn a_failed_scenario_step_shows_its_own_output() {
    let d = scratch("scenario");
    std::fs::write(
        d.join("s.toml"),
        "name = \"step-output\"\n[board]\nram = \"64M\"\n\
         [[step]]\nsend = \"echo first step\"\n\
         [[step]]\nsend = \"cat /proc/buddyinfo\"\nexpect_line = \"no such text\"\n\
         [[step]]\nsend = \"echo third step\"\n\
         [[expect]]\ncounter = \"vmstat.nr_free_pages > 0\"\n",
    )
    .unwrap();
    let r = cmaemu(&d, &["test", "s.toml"], "");
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("step 2 (line 6): expected a line containing \"no such text\""), "{}", r.stdout);
    let tail = &r.stdout[r.stdout.find("last console lines:").expect(&r.stdout)..];
    assert!(tail.contains("| # cat /proc/buddyinfo"), "the failing step's command: {tail}");
    assert!(tail.contains("| Node 0, zone      DMA"), "and its output: {tail}");
    assert!(!tail.contains("nr_free_pages"), "not the runner's vmstat read: {tail}");
    assert!(!tail.contains("third step"), "not later steps: {tail}");
    // a failed [[expect]] line: the scenario's output, before the runner's reads
    std::fs::write(
        d.join("e.toml"),
        "name = \"expect-line\"\n[board]\nram = \"64M\"\n[[step]]\nsend = \"echo hello\"\n\
         [[expect]]\nline = \"absent\"\n[[expect]]\ncounter = \"vmstat.nr_free_pages > 0\"\n",
    )
    .unwrap();
    let r = cmaemu(&d, &["test", "e.toml"], "");
    assert_eq!(r.code, 1, "{}", r.stdout);
    let tail = &r.stdout[r.stdout.find("last console lines:").expect(&r.stdout)..];
    assert!(tail.contains("| hello"), "{tail}");
    assert!(!tail.contains("nr_free_pages"), "{tail}");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn ftrace_file_names_the_task_as_the_guests_own_trace_does() {
    let d = scratch("ftrace");
    let t = d.join("t.txt");
    let r = cmaemu(
        &d,
        &["boot", "-m", "256M", "--trace", t.to_str().unwrap(), "--trace-format", "ftrace"],
        "echo 1 > /sys/kernel/tracing/events/cma/enable\necho 64 > /sys/kernel/debug/cma/linux,cma/alloc\ncat /sys/kernel/tracing/trace\npoweroff\n",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let host = std::fs::read_to_string(&t).unwrap();
    let guest_lines: Vec<&str> = r.stdout.lines().map(|l| l.trim_end_matches('\r')).filter(|l| l.contains(": cma_alloc_")).collect();
    assert!(!guest_lines.is_empty(), "{}", r.stdout);
    // the same line but for the timestamp (the guest stamps its text line
    // a few instructions after the record the host reads)
    let key = |l: &str| {
        let (task, rest) = l.split_once(" .....").unwrap_or((l, ""));
        (task.to_string(), rest.split_once(": ").map(|x| x.1.to_string()).unwrap_or_default())
    };
    for g in &guest_lines {
        assert!(g.trim_start().starts_with("sh-1 "), "{g}");
        assert!(host.lines().any(|h| key(h) == key(g)), "the host's line differs from the guest's {g:?}:\n{host}");
    }
    assert!(!host.contains("<idle>"), "{host}");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn the_guest_oops_names_the_functions_at_pc_and_lr() {
    for (cmd, func) in [("crash undef", "cmaemu_kernel::shell::crash+0x"), ("crash dabt", "cmaemu_kernel::")] {
        let (exit, out) = boot_script(format!("{cmd}\n").as_bytes());
        assert!(matches!(exit, Exit::Panic(_)), "{cmd}: {exit:?}\n{out}");
        let pc = out.lines().find(|l| l.contains("] PC is at ")).unwrap_or_else(|| panic!("{out}"));
        // Linux's __show_regs: "PC is at func+0x1c/0x80"
        let sym = pc.split("PC is at ").nth(1).unwrap().trim_end();
        assert!(sym.starts_with(func), "{cmd}: {pc}");
        let (off, size) = sym.rsplit_once('+').unwrap().1.split_once('/').unwrap();
        let (off, size) = (u32::from_str_radix(&off[2..], 16).unwrap(), u32::from_str_radix(&size[2..], 16).unwrap());
        assert!(off < size, "{pc}");
        assert!(out.lines().any(|l| l.contains("] LR is at cmaemu_kernel::")), "{out}");
    }
}

#[test]
fn readme_examples_run_verbatim_from_another_directory() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let block = readme
        .split("<!-- examples:begin -->")
        .nth(1)
        .and_then(|r| r.split("<!-- examples:end -->").next())
        .expect("README has an examples block");
    let lines: Vec<&str> = block.lines().filter_map(|l| l.strip_prefix("    ")).collect();
    assert!(lines.len() >= 5, "{block}");
    let d = scratch("readme");
    // one shell, so that the block's own `cd` holds for the lines after it
    let script = format!("set -eu\n{}\n", lines.join("\n"));
    let r = Command::new("bash")
        .args(["-c", &script])
        .current_dir(&d)
        .env("CMAEMU", root())
        .env("CMAEMU_BIN", env!("CARGO_BIN_EXE_cmaemu"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let (out, err) = (String::from_utf8_lossy(&r.stdout), String::from_utf8_lossy(&r.stderr));
    assert!(r.status.success(), "README examples failed ({:?}):\n{out}\n{err}", r.status);
    assert!(out.contains("60000000-9fffffff : System RAM"), "{out}");
    // cma=32M replaces the DT's 64 MiB default pool; the camera keeps its 32 MiB
    assert!(out.contains("Kernel command line: console=ttyAMA0 cma=32M"), "{out}");
    assert!(out.contains("CmaTotal:          65536 kB"), "the cma=32M board: {out}");
    assert!(out.contains("scenarios: 1 passed"), "{out}");
    assert!(out.contains("frame"), "trace summary: {out}");
    std::fs::remove_dir_all(&d).unwrap();
}

/// `gdb-multiarch`, installed from Debian's registry when missing (None:
/// it cannot be installed here).
fn gdb_multiarch() -> Option<&'static str> {
    let have = || Command::new("gdb-multiarch").arg("--version").output().is_ok_and(|o| o.status.success());
    if !have() {
        let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0"));
        let mut c = Command::new(if root { "apt-get" } else { "sudo" });
        if !root {
            c.args(["-n", "apt-get"]);
        }
        let _ = c
            .args(["-o", "DPkg::Lock::Timeout=900", "install", "-y", "-qq", "gdb-multiarch"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    have().then_some("gdb-multiarch")
}

#[test]
fn readme_gdb_recipe_stops_in_a_named_kernel_function() {
    use std::io::BufRead;
    let Some(gdb) = gdb_multiarch() else {
        eprintln!("gdb-multiarch cannot be installed here (no apt or no registry): skipping");
        return;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let mut emu = Command::new(env!("CARGO_BIN_EXE_cmaemu"))
        .args(["boot", "-S", "--gdb-port", &port, "-m", "64M"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(emu.stderr.take().unwrap());
    // the stub prints the exact gdb command line
    let mut line = String::new();
    let elf = loop {
        line.clear();
        assert!(err.read_line(&mut line).unwrap() > 0, "cmaemu ended before printing the symbols line");
        if let Some(rest) = line.trim_end().strip_prefix("cmaemu: kernel symbols: gdb-multiarch ") {
            let (elf, target) = rest.split_once(" -ex ").unwrap();
            assert_eq!(target, format!("'target remote :{port}'"));
            break elf.to_string();
        }
    };
    assert!(Path::new(&elf).is_file(), "{elf}");
    let out = Command::new(gdb)
        .args(["-batch", "-nx", &elf])
        .args(["-ex", &format!("target remote :{port}"), "-ex", "rbreak shell::run$", "-ex", "continue", "-ex", "info symbol $pc", "-ex", "kill"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Breakpoint 1, ") && text.contains("::shell::run"), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    let status = emu.wait().unwrap();
    assert!(status.success(), "{rest}");
    assert!(rest.contains("killed by the debugger"), "{rest}");
}
