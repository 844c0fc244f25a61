#!/usr/bin/env bash
# Set up, build, and boot the default board to its console; works from any
# directory (relative paths in the arguments are the caller's).
#   run.sh [BOOT ARGS]           -> cmaemu boot [BOOT ARGS] (e.g. --dtb board.dtb -m 256M)
#   run.sh SUBCOMMAND [ARGS]     -> cmaemu SUBCOMMAND [ARGS] (dtb, test, sweep, trace, report, bench, boot)
# CMAEMU_BIN=/path/to/cmaemu skips the setup and build and runs that binary.
set -euo pipefail
. "$(dirname "$0")/env.sh"
bin="${CMAEMU_BIN:-}"
if [ -z "$bin" ]; then
    bash "$ROOT/scripts/setup.sh"
    # no cd: the arguments' relative paths stay the caller's
    cargo build --release -q -p cmaemu --manifest-path "$ROOT/Cargo.toml"
    bin="${CARGO_TARGET_DIR:-$ROOT/target}/release/cmaemu"
fi
case "${1:-}" in
    boot | dtb | test | sweep | trace | report | bench | help | --help | -h | --version | -V) exec "$bin" "$@" ;;
    *) exec "$bin" boot "$@" ;;
esac
