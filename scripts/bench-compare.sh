#!/usr/bin/env bash
# Compare `cmaemu bench` figures of an old revision with the working tree:
#
#   bash scripts/bench-compare.sh OLD_REV [boot|cma|verify|sweep ...]   (default: boot cma verify)
#
# Builds OLD_REV in a temporary git worktree with its own target directory
# (seeded by copying this checkout's, so Unicorn's C build is reused), keeps
# only its `cmaemu` binary (the guest images are inside it) under
# ${CMAEMU_CACHE:-~/.cache/cmaemu}/bench-old/SHA/, and builds the working
# tree. Then ROUNDS times (default 5; ROUNDS=N to change) it runs
# `cmaemu bench WHAT` with the old and the new binary, alternating which goes
# first, and prints for every figure the benches print (matched by its line's
# text with the numbers taken out, the how-manieth such line, and the
# number's position in it — so a bench that gained or lost lines between the
# revisions still pairs its figures right; lines only one side prints are
# listed apart) the median of the old runs, of the new ones, and new/old.
# Each bench already takes its own medians inside a run; this takes the
# median over rounds. Wall times: a ratio above 1 is slower; MIPS and
# boots/min: below 1 is slower; instruction counts are exact.
set -euo pipefail
. "$(dirname "$0")/env.sh"
if [ $# -lt 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
    sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
OLD_REV="$1"
shift
WHATS=("$@")
[ ${#WHATS[@]} -gt 0 ] || WHATS=(boot cma verify)
for w in "${WHATS[@]}"; do
    case "$w" in boot|cma|verify|sweep) ;; *) echo "bench-compare: unknown bench '$w' (boot, cma, verify, sweep)" >&2; exit 2 ;; esac
done
ROUNDS="${ROUNDS:-5}"
cd "$ROOT"
SHA="$(git rev-parse --verify "$OLD_REV^{commit}" 2>/dev/null)" || { echo "bench-compare: $OLD_REV is not a revision of $ROOT" >&2; exit 2; }
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
CACHE="${CMAEMU_CACHE:-$HOME/.cache/cmaemu}/bench-old/$SHA"
OLD_BIN="$CACHE/cmaemu"

if [ ! -x "$OLD_BIN" ]; then
    WORK="$(mktemp -d "${TMPDIR:-/tmp}/cmaemu-bench-old.XXXXXX")"
    cleanup_build() {
        git -C "$ROOT" worktree remove --force "$WORK/src" >/dev/null 2>&1 || true
        rm -rf "$WORK"
    }
    trap cleanup_build EXIT
    echo "bench-compare: building $OLD_REV ($SHA) in $WORK" >&2
    git worktree add --detach "$WORK/src" "$SHA" >/dev/null
    if [ -d "$TARGET" ]; then
        echo "bench-compare: seeding its target directory from $TARGET" >&2
        mkdir -p "$WORK/target"
        # the release build only (debug and test artefacts are not needed)
        for d in "$TARGET"/release "$TARGET"/guest; do
            [ -d "$d" ] && cp -a "$d" "$WORK/target/"
        done
    fi
    (cd "$WORK/src" && CARGO_TARGET_DIR="$WORK/target" cargo build --release -p cmaemu)
    mkdir -p "$CACHE"
    cp "$WORK/target/release/cmaemu" "$CACHE/cmaemu.tmp.$$"
    mv "$CACHE/cmaemu.tmp.$$" "$OLD_BIN"
    cleanup_build
    trap - EXIT
fi

echo "bench-compare: building the working tree" >&2
cargo build --release -p cmaemu
NEW_BIN="$TARGET/release/cmaemu"

OUT="$(mktemp -d "${TMPDIR:-/tmp}/cmaemu-bench-compare.XXXXXX")"
trap 'rm -rf "$OUT"' EXIT
for r in $(seq 1 "$ROUNDS"); do
    for w in "${WHATS[@]}"; do
        if [ $((r % 2)) -eq 1 ]; then order="old new"; else order="new old"; fi
        for side in $order; do
            bin="$OLD_BIN"; [ "$side" = new ] && bin="$NEW_BIN"
            echo "bench-compare: round $r/$ROUNDS: bench $w ($side)" >&2
            if ! "$bin" bench "$w" >"$OUT/$side.$w.$r.out" 2>"$OUT/$side.$w.$r.err"; then
                echo "bench-compare: bench $w ($side) failed:" >&2
                cat "$OUT/$side.$w.$r.err" >&2
                exit 1
            fi
        done
    done
done

echo "bench-compare: $OLD_REV ($SHA) vs working tree ($(git rev-parse --short HEAD)$(git diff --quiet && echo "" || echo ", modified")), median of $ROUNDS rounds each, interleaved"
for w in "${WHATS[@]}"; do
    echo
    echo "== bench $w"
    # Every number of every output line is a figure, keyed by its line
    # number and position; its label is the line with numbers as '#'.
    awk -v what="$w" '
        function median(s,   a, n, i, j, t) {
            n = split(s, a, " ")
            for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
            return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
        }
        FNR == 1 { side = (FILENAME ~ /\/old\./) ? "old" : "new"; delete seen }
        {
            line = $0; label = $0
            gsub(/[0-9]+(\.[0-9]+)?/, "#", label)
            gsub(/[ \t]+/, " ", label)
            if (label !~ /#/) next
            nth = ++seen[label]
            k = 0
            while (match(line, /[0-9]+(\.[0-9]+)?/)) {
                k++
                v = substr(line, RSTART, RLENGTH)
                line = substr(line, RSTART + RLENGTH)
                key = label SUBSEP nth SUBSEP k
                vals[side, key] = vals[side, key] " " v
                if (!(key in labels)) { labels[key] = label; order[++nkeys] = key }
            }
        }
        END {
            printf "%-10s %-10s %-8s %s\n", "old", "new", "new/old", "figure (text, #n = the nth number; (m) = the mth line with that text)"
            for (i = 1; i <= nkeys; i++) {
                key = order[i]; split(key, p, SUBSEP)
                l = labels[key]; if (length(l) > 90) l = substr(l, 1, 90) "..."
                if (p[2] > 1) l = l " (" p[2] ")"
                if (!(("old", key) in vals)) { only["new"] = only["new"] sprintf("  %s #%d\n", l, p[3]); continue }
                if (!(("new", key) in vals)) { only["old"] = only["old"] sprintf("  %s #%d\n", l, p[3]); continue }
                o = median(vals["old", key]); n = median(vals["new", key])
                r = (o != 0) ? sprintf("%.3f", n / o) : "-"
                printf "%-10s %-10s %-8s %s #%d\n", o, n, r, l, p[3]
            }
            if ("old" in only) printf "figures only the old revision prints:\n%s", only["old"]
            if ("new" in only) printf "figures only the working tree prints:\n%s", only["new"]
        }' "$OUT"/old."$w".*.out "$OUT"/new."$w".*.out
done
