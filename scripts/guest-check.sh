#!/usr/bin/env bash
# Developer helper: build the guest kernel alone and show its diagnostics.
set -euo pipefail
cd "$(dirname "$0")/.."
RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 \
CARGO_ENCODED_RUSTFLAGS=$(printf -- '-Clinker=ld.lld\x1f-Clink-arg=-T%s/guest/kernel/link.ld\x1f-Crelocation-model=static\x1f-Ctarget-cpu=cortex-a9' "$PWD") \
/usr/bin/cargo build -p cmaemu-kernel --profile guest -Zbuild-std=core,alloc -Zbuild-std-features=compiler-builtins-mem \
  --target armv7a-none-eabi --target-dir "$PWD/target/guest" "$@"
