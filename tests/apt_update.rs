//! `scripts/apt.sh`'s `apt_update`, against stand-in `apt-get` and
//! `apt-cache` commands on PATH: a mirror in the middle of a sync fails
//! one index and `apt-get update` exits 1 though the other lists were read
//! (seen on 2026-12-05: "File has unexpected size ... Mirror sync in
//! progress?"), which used to stop every set-up script at once.
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Run `apt_update ARGS` with an `apt-get update` that fails its first
/// `fails` calls and an `apt-cache policy` that offers `offered`: (exit
/// status, stderr, how many times `apt-get update` ran).
fn apt_update(tag: &str, fails: u32, offered: &[&str], args: &[&str]) -> (i32, String, u32) {
    let dir = std::env::temp_dir().join(format!("cmaemu-apt-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let count = dir.join("count");
    std::fs::write(&count, "0").unwrap();
    let apt_get = format!(
        "#!/bin/bash\n[ \"$1\" = update ] || exit 9\nn=$(($(cat {c}) + 1)); echo $n > {c}\n[ $n -gt {fails} ]\n",
        c = count.display()
    );
    let cases: String = offered.iter().map(|p| format!("  {p}) echo '  Candidate: 1.0-1' ;;\n")).collect();
    // a long version table after the candidate, as apt-cache prints (a
    // reader that stops at the candidate closes the pipe on it)
    let apt_cache = format!("#!/bin/bash\n[ \"$1\" = policy ] || exit 9\necho \"$2:\"\ncase \"$2\" in\n{cases}  *) echo '  Candidate: (none)' ;;\nesac\nfor i in $(seq 1 20000); do echo \"     1.$i 500\"; done\n");
    for (name, body) in [("apt-get", apt_get), ("apt-cache", apt_cache)] {
        let p = dir.join(name);
        std::fs::write(&p, body).unwrap();
        Command::new("chmod").arg("+x").arg(&p).status().unwrap();
    }
    // as the scripts run it: set -euo pipefail
    let script = format!("set -euo pipefail; . {}/scripts/apt.sh; apt_update \"$@\"", root().display());
    let out = Command::new("bash")
        .arg("-c")
        .arg(script)
        .arg("apt_update")
        .args(args)
        .env("PATH", format!("{}:{}", dir.display(), std::env::var("PATH").unwrap()))
        .env("APT_UPDATE_DELAY", "0")
        .env("SUDO", "")
        .output()
        .unwrap();
    let n = std::fs::read_to_string(&count).unwrap().trim().parse().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned(), n)
}

#[test]
fn a_failed_update_is_retried() {
    let (code, err, n) = apt_update("retry", 2, &[], &["qemu-system-arm"]);
    assert_eq!((code, n), (0, 3), "{err}");
    assert_eq!(err, "");
}

#[test]
fn updates_that_keep_failing_go_on_when_every_package_is_offered() {
    let (code, err, n) = apt_update("offered", 9, &["cmake", "lld"], &["cmake", "lld"]);
    assert_eq!((code, n), (0, 3), "{err}");
    assert!(err.contains("apt-get update failed 3 times (a mirror in the middle of a sync?)"), "{err}");
}

#[test]
fn updates_that_keep_failing_stop_naming_the_packages_no_list_offers() {
    let (code, err, n) = apt_update("missing", 9, &["cmake"], &["cmake", "linux-image-armmp:armhf"]);
    assert_eq!((code, n), (1, 3), "{err}");
    assert!(err.contains("no package list offers linux-image-armmp:armhf"), "{err}");
    assert!(!err.contains("offers cmake"), "{err}");
}
