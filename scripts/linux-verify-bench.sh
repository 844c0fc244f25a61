#!/usr/bin/env bash
# The cost of watching the real Linux kernel (issue 21): the same
# migration-heavy run of Debian's 6.1 armmp (8 x 2 MiB of random data in
# tmpfs, every other file removed, compaction, power-off) with and without
# --linux-vmlinux (mm state read at quiet points + allocator integrity +
# every migration's content checked at a breakpoint on
# folio_migrate_flags), interleaved, N rounds (default 5); prints each
# wall time, the medians and the verified / unverified ratio.
#
#   bash scripts/linux-verify-bench.sh [N]
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
N="${1:-5}"
eval "$(bash "$HERE/linux-assets.sh" dbg)"
BIN="${CMAEMU_BIN:-}"
if [ -z "$BIN" ]; then
    (cd "$HERE/.." && cargo build --release -q -p cmaemu)
    BIN="${CARGO_TARGET_DIR:-$HERE/../target}/release/cmaemu"
fi
SCRIPT='for i in 1 2 3 4 5 6 7 8; do dd if=/dev/urandom of=/f$i bs=4k count=512 2>/dev/null; done; rm /f2 /f4 /f6 /f8
echo 1 > /proc/sys/vm/compact_memory; grep pgmigrate_success /proc/vmstat
poweroff -f
'
run() { # run MODE: prints wall seconds
    local extra=() t0 t1 out
    [ "$1" = verified ] && extra=(--linux-vmlinux "$VMLINUX")
    t0=$(date +%s.%N)
    out="$(printf '%s' "$SCRIPT" | "$BIN" boot -m 256M --kernel "$ZIMAGE" --dtb "$DTB" --initrd "$INITRD" --append console=ttyAMA0 "${extra[@]}" 2>&1)"
    t1=$(date +%s.%N)
    echo "$out" | grep -q "pgmigrate_success" || { echo "linux-verify-bench: $1 run failed:" >&2; echo "$out" | tail -20 >&2; exit 1; }
    echo "$t1 - $t0" | bc
}
median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
P=(); V=()
for i in $(seq "$N"); do
    p="$(run plain)"; v="$(run verified)"
    P+=("$p"); V+=("$v")
    echo "round $i: unverified ${p}s verified ${v}s"
done
mp="$(printf '%s\n' "${P[@]}" | median)"
mv="$(printf '%s\n' "${V[@]}" | median)"
echo "median: unverified ${mp}s verified ${mv}s ratio $(echo "scale=2; $mv / $mp" | bc)"
