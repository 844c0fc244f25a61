//! Debian's kernel assets for the tests that boot it: the `KEY=VALUE`
//! lines scripts/linux-assets.sh and scripts/linux-module.sh print, and
//! Linux's DTB set up as QEMU's `-m` and `-append` would.
use cmaemu::loader::dtb::Dtb;
use cmaemu::memory::map::RAM_BASE;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The checkout's root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// What a set-up script printed.
pub struct Env(Vec<(String, String)>);

impl Env {
    /// Run `scripts/<script> ARGS`; None (skip, with a message) when it
    /// exits 3: the package registry is unreachable.
    pub fn of(script: &str, args: &[&str]) -> Option<Env> {
        let path = root().join("scripts").join(script);
        let out = Command::new("bash").arg(&path).args(args).output().unwrap_or_else(|e| panic!("run {}: {e}", path.display()));
        if out.status.code() == Some(3) {
            eprintln!("SKIPPED: the Debian package registry is unreachable: {}", String::from_utf8_lossy(&out.stderr));
            return None;
        }
        assert!(out.status.success(), "{script} {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout);
        Some(Env(text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect()))
    }

    /// The path printed as `k=`.
    pub fn path(&self, k: &str) -> PathBuf {
        PathBuf::from(&self.0.iter().find(|(key, _)| key == k).unwrap_or_else(|| panic!("{k} missing in {:?}", self.0)).1)
    }

    /// The bytes of the file printed as `k=`.
    pub fn read(&self, k: &str) -> Vec<u8> {
        let p = self.path(k);
        std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }
}

/// Linux's DTB with `ram` bytes of memory and `bootargs`, as QEMU's `-m`
/// and `-append` set them.
pub fn linux_dtb(raw: &[u8], ram: u64, bootargs: &str) -> Vec<u8> {
    let mut t = Dtb::parse(raw).expect("Linux's vexpress-v2p-ca9.dtb parses");
    t.set_memory(RAM_BASE, ram).unwrap();
    t.set_bootargs(bootargs).unwrap();
    t.to_bytes().unwrap()
}
