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
