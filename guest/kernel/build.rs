//! The linker script is passed as `-Clink-arg=-T…` by emulator/build.rs,
//! which cargo does not track: relink when it changes.
fn main() {
    println!("cargo:rerun-if-changed=link.ld");
}
