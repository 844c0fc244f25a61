#!/usr/bin/env bash
# Set up, build (the guest once), and run every test; ends with one
# summary line "tests: N passed, N failed" over all test binaries.
set -euo pipefail
. "$(dirname "$0")/env.sh"
bash "$ROOT/scripts/setup.sh"
# Tests only (scripts/run.sh needs none of it): Chromium for the browser
# test of the HTML report (tests/report_browser.rs, which also installs it
# when run alone, and fails saying why if it cannot).
if ! command -v chromium >/dev/null; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    echo "test setup: installing chromium" >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends chromium >/dev/null \
        || echo "test setup: could not install chromium; the browser test will fail" >&2
fi
cd "$ROOT"
cargo build --release -p cmaemu
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
set +e
cargo test --release --workspace --exclude cmaemu-kernel "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$rc"
