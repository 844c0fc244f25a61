//! The differential oracle's CI subset: the `oracle/cases/ci-*.toml` cases
//! on cmaemu and on Debian's pinned 6.1 armmp under QEMU (fetched and built
//! by scripts/linux-oracle.sh from the package registries; skipped, with a
//! message, only when the registry is unreachable). Every compared
//! quantity must be identical, except the named gaps below that issue 14
//! still has to close; the full suite is `bash scripts/oracle.sh`.
use cmaemu::oracle::{self, LinuxAssets};
use std::path::Path;
use std::process::Command;

/// A difference that is a known, named gap issue 14 still has to close
/// (its cause); everything else must match. None left in the CI subset:
/// the zone layout (ZONE_DMA), the memory node lines and the meminfo field
/// set match the real kernel.
fn known_gap(_q: &oracle::Quantity) -> Option<&'static str> {
    None
}

fn linux_env() -> Option<String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/linux-oracle.sh");
    let out = Command::new("bash").arg(&script).output().expect("run scripts/linux-oracle.sh");
    if out.status.code() == Some(3) {
        eprintln!("SKIPPED: the Debian package registry is unreachable: {}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    assert!(out.status.success(), "linux-oracle.sh failed: {}", String::from_utf8_lossy(&out.stderr));
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn ci_cases_match_the_real_kernel() {
    let Some(env) = linux_env() else { return };
    let assets = LinuxAssets::from_env_lines(&env).unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../oracle/cases");
    let mut cases: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("ci-")).collect();
    cases.sort();
    assert!(cases.len() >= 5, "the CI subset has {} cases", cases.len());
    let mut results = Vec::new();
    for c in &cases {
        results.push(oracle::run_case(c, &assets).unwrap_or_else(|e| panic!("{e}")));
    }
    let report = oracle::report(&results, &assets);
    eprintln!("{report}");
    let mut unexpected = Vec::new();
    for r in &results {
        assert!(r.quantities.len() >= 10, "{}: only {} quantities compared", r.name, r.quantities.len());
        for q in r.quantities.iter().filter(|q| !q.same()) {
            if known_gap(q).is_none() {
                unexpected.push(format!("{}: {}: cmaemu {:?} / Linux {:?}", r.name, q.what, q.cmaemu, q.linux));
            }
        }
    }
    assert!(unexpected.is_empty(), "differences from the real kernel:\n{}\n\n{report}", unexpected.join("\n"));
    // the CMA-visible quantities were there to compare on both sides
    let all: Vec<&str> = results.iter().flat_map(|r| r.quantities.iter().map(|q| q.what.as_str())).collect();
    for must in ["CmaFree", "boot: reservation line", "kernel cma_test line", "boot: Memory: cma-reserved"] {
        assert!(all.iter().any(|w| w.contains(must)), "no `{must}` quantity compared");
    }
}
