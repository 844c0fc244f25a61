//! Builds the armv7a-none-eabi guest kernel and firmware once per target
//! directory (cargo's own incremental build makes reruns no-ops) and hands
//! their ELFs to the emulator through OUT_DIR.
//!
//! Toolchain: Debian's rustc-web + rust-web-src (`/usr/bin/rustc`,
//! `/usr/bin/cargo`) with `-Zbuild-std`, or any toolchain named by
//! CMAEMU_GUEST_RUSTC / CMAEMU_GUEST_CARGO that has the library sources.
use std::path::{Path, PathBuf};

#[path = "src/loader/kallsyms.rs"]
#[allow(dead_code)] // its tests and error variants are the library's
mod kallsyms;
use std::process::Command;

/// How cargo is asked for one guest binary: the firmware is its own
/// workspace (release profile), the kernel a member of the root workspace
/// built with `--profile guest`.
struct GuestBin<'a> {
    crate_dir: &'a Path,
    bin: &'a str,
    /// `Some((workspace root, profile))` for a member of the root workspace.
    member_of: Option<(&'a Path, &'a str)>,
}

fn build(g: &GuestBin, target_dir: &Path, out: &Path) {
    let (crate_dir, bin) = (g.crate_dir, g.bin);
    let rustc = std::env::var("CMAEMU_GUEST_RUSTC").unwrap_or_else(|_| "/usr/bin/rustc".into());
    let cargo = std::env::var("CMAEMU_GUEST_CARGO").unwrap_or_else(|_| "/usr/bin/cargo".into());
    let link = crate_dir.join("link.ld");
    let flags = [
        "-Clinker=ld.lld".to_string(),
        format!("-Clink-arg=-T{}", link.display()),
        "-Crelocation-model=static".to_string(),
        "-Ctarget-cpu=cortex-a9".to_string(),
    ]
    .into_iter()
    .chain(remap_flags())
    .collect::<Vec<_>>()
    .join("\x1f");
    let mut cmd = Command::new(&cargo);
    // The outer build's cargo/rustc settings must not leak into the guest
    // build (keep CARGO_HOME so the registry cache is shared).
    for (k, _) in std::env::vars() {
        if (k.starts_with("CARGO_") && k != "CARGO_HOME") || k.starts_with("RUSTC") || k == "RUSTFLAGS" || k == "RUSTUP_TOOLCHAIN" || k == "RUSTDOCFLAGS" {
            cmd.env_remove(&k);
        }
    }
    cmd.env("RUSTC", &rustc).env("RUSTC_BOOTSTRAP", "1").env("CARGO_ENCODED_RUSTFLAGS", flags);
    let profile_dir = match g.member_of {
        Some((root, profile)) => {
            cmd.current_dir(root).args(["build", "-p", bin, "--profile", profile]);
            profile
        }
        None => {
            cmd.current_dir(crate_dir).args(["build", "--release"]);
            "release"
        }
    };
    cmd.args(["--target", "armv7a-none-eabi"])
        .args(["-Zbuild-std=core,alloc", "-Zbuild-std-features=compiler-builtins-mem"])
        .arg("--target-dir")
        .arg(target_dir);
    let status = cmd.status().unwrap_or_else(|e| panic!("cannot run {cargo} for the guest: {e} (run the README's setup)"));
    if !status.success() {
        panic!("building {} for armv7a-none-eabi failed", crate_dir.display());
    }
    let elf = target_dir.join("armv7a-none-eabi").join(profile_dir).join(bin);
    let mut bytes = std::fs::read(&elf).unwrap_or_else(|e| panic!("read {}: {e}", elf.display()));
    if bin == "cmaemu-kernel" {
        kallsyms::patch_kernel(&mut bytes).unwrap_or_else(|e| panic!("{}: {e}", elf.display()));
        // a stable path for gdb (README): <target>/guest/cmaemu-kernel.elf
        write_atomic(&target_dir.join("cmaemu-kernel.elf"), &bytes);
    }
    write_atomic(&out.join(format!("{bin}.elf")), &bytes);
}

/// Source paths the image embeds (panic locations) made the same on every
/// machine: the checkout as `/cmaemu`, cargo's registry as
/// `/cargo/registry`. A longer checkout path would otherwise grow the
/// kernel's read-only data, and with it the pages the image occupies and
/// every count derived from them (tests/golden.rs would differ between
/// two clones).
fn remap_flags() -> Vec<String> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest.parent().unwrap().to_path_buf();
    let mut v = vec![format!("--remap-path-prefix={}=/cmaemu", root.display())];
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    if let Some(h) = cargo_home {
        v.push(format!("--remap-path-prefix={}=/cargo/registry", h.join("registry").display()));
    }
    v
}

/// Write through a temporary name and rename (parallel builds share the
/// guest target directory).
fn write_atomic(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes).unwrap_or_else(|e| panic!("write {}: {e}", tmp.display()));
    std::fs::rename(&tmp, path).unwrap_or_else(|e| panic!("rename to {}: {e}", path.display()));
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest.parent().unwrap().to_path_buf();
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    // One guest target dir per workspace target dir: `cargo build` and
    // `cargo test` share it, so the guest is compiled once per run.
    let target_dir = std::env::var("CMAEMU_GUEST_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| {
        // OUT_DIR = <target>/<profile>/build/<pkg>/out
        out.ancestors().nth(4).map(|t| t.join("guest")).unwrap_or_else(|| root.join("target/guest"))
    });
    for dir in ["guest/kernel", "guest/mm", "guest/abi", "firmware"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    println!("cargo:rerun-if-env-changed=CMAEMU_GUEST_RUSTC");
    println!("cargo:rerun-if-env-changed=CMAEMU_GUEST_CARGO");
    println!("cargo:rerun-if-changed={}", root.join("Cargo.toml").display());
    let firmware = GuestBin { crate_dir: &root.join("firmware"), bin: "cmaemu-firmware", member_of: None };
    build(&firmware, &target_dir, &out);
    let kernel = GuestBin { crate_dir: &root.join("guest/kernel"), bin: "cmaemu-kernel", member_of: Some((&root, "guest")) };
    build(&kernel, &target_dir, &out);
    println!("cargo:rustc-env=CMAEMU_KERNEL_ELF={}", target_dir.join("cmaemu-kernel.elf").display());
}
