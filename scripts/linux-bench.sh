#!/usr/bin/env bash
# Wall time from power-on to power-down of Debian's 6.1 armmp kernel with
# the busybox initramfs (its /init powers off at once: `poweroff` on the
# command line), cmaemu against QEMU in the same run, interleaved:
# cmaemu, qemu-system-arm, qemu-system-arm -icount shift=0, repeated N
# times (default 5). Prints each time, the medians and the ratios
# QEMU median / cmaemu median (>= 1: cmaemu is as fast or faster).
#
#   bash scripts/linux-bench.sh [N]
#
# Needs the assets (scripts/linux-assets.sh, run here) and a built cmaemu
# (CARGO_TARGET_DIR or target/release).
set -euo pipefail
. "$(dirname "$0")/env.sh"
N="${1:-5}"
eval "$(bash "$ROOT/scripts/linux-assets.sh" all | grep '=')"
CMAEMU="${CMAEMU:-${CARGO_TARGET_DIR:-$ROOT/target}/release/cmaemu}"
[ -x "$CMAEMU" ] || (cd "$ROOT" && cargo build --release -p cmaemu)
APPEND="console=ttyAMA0 poweroff"
MEM=256M

run_cmaemu() {
    "$CMAEMU" boot -m "$MEM" -kernel "$ZIMAGE" -dtb "$DTB" -initrd "$INITRD" -append "$APPEND" </dev/null >"$LOG" 2>&1
}
run_qemu() {
    timeout 300 "$QEMU" -M vexpress-a9 -m "$MEM" -nographic -monitor none -serial stdio "$@" \
        -kernel "$ZIMAGE" -dtb "$DTB" -initrd "$INITRD" -append "$APPEND" </dev/null >"$LOG" 2>&1
}
# seconds (3 decimals) a command takes; fails if it did not power down
timed() {
    local t0 t1
    t0=$(date +%s.%N)
    "$@" || { echo "linux-bench: '$*' failed (exit $?), log: $LOG" >&2; exit 1; }
    t1=$(date +%s.%N)
    grep -q "reboot: Power down" "$LOG" || { echo "linux-bench: no power-down in $LOG" >&2; exit 1; }
    echo "$t1 - $t0" | bc -l | xargs printf '%.3f'
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

LOG="$(mktemp)"
trap 'rm -f "$LOG"' EXIT
command -v bc >/dev/null || apt-get -o DPkg::Lock::Timeout=900 install -y -qq bc >/dev/null
echo "linux-bench: $LINUX_PKG ($LINUX_VERSION), -m $MEM, $N rounds, interleaved"
c=(); q=(); qi=()
for i in $(seq 1 "$N"); do
    c+=("$(timed run_cmaemu)")
    q+=("$(timed run_qemu)")
    qi+=("$(timed run_qemu -icount shift=0)")
    echo "round $i: cmaemu ${c[-1]} s, qemu ${q[-1]} s, qemu -icount shift=0 ${qi[-1]} s"
done
mc=$(median "${c[@]}"); mq=$(median "${q[@]}"); mqi=$(median "${qi[@]}")
echo "median: cmaemu $mc s, qemu $mq s, qemu -icount shift=0 $mqi s"
printf 'ratio (qemu / cmaemu): plain %.2f, icount %.2f\n' "$(echo "$mq / $mc" | bc -l)" "$(echo "$mqi / $mc" | bc -l)"
