#!/usr/bin/env bash
# Re-record the golden outputs under tests/golden/ (console bytes, counts
# and traces of every example, matrix workload, injection run and boot run
# that tests/golden.rs compares byte for byte). Only for a change that
# alters guest or trace behaviour on purpose: commit the new files with
# it and say in the commit message what changed and why. A refactor must
# never need this.
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$ROOT"
CMAEMU_GOLDEN_RECORD=1 cargo test --release -p cmaemu --test golden "$@"
git status --short tests/golden/ | head -50
