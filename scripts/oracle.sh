#!/usr/bin/env bash
# The differential oracle (see oracle/README.md): fetch and build the real
# Linux side (scripts/linux-oracle.sh), build cmaemu, run case files on
# both and compare.
#
#   bash scripts/oracle.sh [-o report.md] [--transcripts DIR] [--bench ROUNDS] [CASE.toml...]
#       default: every oracle/cases/*.toml; --transcripts saves both systems'
#       transcripts of each case (CASE.cmaemu.txt, CASE.linux.txt, CASE.side.txt);
#       --bench ROUNDS times each case ROUNDS times on each system alone,
#       interleaved, instead of comparing (medians and ratios)
#
# Exit 0: every compared quantity identical; 1: differences (listed in
# the report); 2: bad input; 3: the package registry is unreachable or a
# run failed.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
. "$HERE/env.sh"
bash "$ROOT/scripts/setup.sh"
env_file="$(mktemp)"
trap 'rm -f "$env_file"' EXIT
set +e
bash "$HERE/linux-oracle.sh" >"$env_file"
rc=$?
set -e
[ "$rc" -eq 0 ] || exit "$rc"
args=()
cases=()
while (($#)); do
    case "$1" in
        -o) args+=(-o "$2"); shift 2 ;;
        --transcripts) args+=(--transcripts "$2"); shift 2 ;;
        --bench) args+=(--bench "$2"); shift 2 ;;
        *) cases+=("$1"); shift ;;
    esac
done
((${#cases[@]})) || cases=("$ROOT"/oracle/cases/*.toml)
(cd "$ROOT" && cargo build --release -q -p cmaemu)
"${CARGO_TARGET_DIR:-$ROOT/target}/release/cmaemu" oracle --linux-env "$env_file" "${args[@]}" "${cases[@]}"
