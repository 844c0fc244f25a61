#!/usr/bin/env bash
# Set up, build (the guest once), and run every test.
set -euo pipefail
. "$(dirname "$0")/env.sh"
bash "$ROOT/scripts/setup.sh"
cd "$ROOT"
cargo build --release -p cmaemu
cargo test --release --workspace "$@"
