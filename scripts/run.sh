#!/usr/bin/env bash
# Set up, build, and boot the default board to its console.
# Arguments are passed to `cmaemu boot` (e.g. --dtb board.dtb -m 256M).
set -euo pipefail
. "$(dirname "$0")/env.sh"
bash "$ROOT/scripts/setup.sh"
cd "$ROOT"
cargo build --release -q -p cmaemu
exec "$ROOT/target/release/cmaemu" boot "$@"
