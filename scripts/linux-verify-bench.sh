#!/usr/bin/env bash
# The cost of watching the real Linux kernel (issue 21): the same
# migration-heavy run of Debian's 6.1 armmp with and without
# --linux-vmlinux (mm state read at quiet points + allocator integrity +
# user PTEs + the CLCD scan-out's owner, and every migration checked at
# breakpoints: content and TLB at folio_migrate_flags, PTEs after each
# migrate_pages), interleaved, N rounds (default 5); prints each wall time,
# the medians and the verified / unverified ratios (wall time, and CPU
# time = user + sys, which other load on the machine disturbs less).
#
#   bash scripts/linux-verify-bench.sh [N]
#
# WORKLOAD=cma (default): tests/linux_cma_migrate.rs's run — the oracle's
#   program fills 130 MiB of anonymous memory, then allocates a whole
#   64 MiB reusable pool (the only CMA area, cma=0) with dma_alloc_coherent
#   through the oracle module; the kernel migrates ~4700 pages out of it
#   (oracle initramfs from scripts/linux-oracle.sh).
# WORKLOAD=tmpfs: 8 x 2 MiB of random data in tmpfs, every other file
#   removed, compaction (the busybox initramfs).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
N="${1:-5}"
WORKLOAD="${WORKLOAD:-cma}"
eval "$(bash "$HERE/linux-assets.sh" dbg)"
BIN="${CMAEMU_BIN:-}"
if [ -z "$BIN" ]; then
    (cd "$HERE/.." && cargo build --release -q -p cmaemu)
    BIN="${CARGO_TARGET_DIR:-$HERE/../target}/release/cmaemu"
fi
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
case "$WORKLOAD" in
cma)
    eval "$(bash "$HERE/linux-oracle.sh" | grep '^ORACLE_INITRD=')"
    INITRD="$ORACLE_INITRD"
    APPEND="console=ttyAMA0 cma=0"
    { dtc -q -I dtb -O dts "$DTB"; cat <<'DTS'
/ {
	reserved-memory {
		cam: camera-cma { compatible = "shared-dma-pool"; reusable; size = <0x4000000>; };
	};
	dma-test-0 { compatible = "cmaemu,dma-test"; memory-region = <&cam>; };
};
DTS
    } | dtc -q -I dts -O dtb -o "$TMP/bench.dtb" -
    DTB="$TMP/bench.dtb"
    SCRIPT='fill 130 7
dma alloc camera-cma 16384
cat /proc/vmstat
poweroff
'
    ;;
tmpfs)
    APPEND="console=ttyAMA0"
    SCRIPT='for i in 1 2 3 4 5 6 7 8; do dd if=/dev/urandom of=/f$i bs=4k count=512 2>/dev/null; done; rm /f2 /f4 /f6 /f8
echo 1 > /proc/sys/vm/compact_memory; grep pgmigrate_success /proc/vmstat
poweroff -f
'
    ;;
*) echo "linux-verify-bench: WORKLOAD is cma or tmpfs" >&2; exit 2 ;;
esac
[ -x /usr/bin/time ] || { echo "linux-verify-bench: needs /usr/bin/time (apt-get install time)" >&2; exit 2; }
run() { # run MODE: prints "wall-seconds cpu-seconds" (cpu = user + sys: less
        # sensitive than wall time to other load), the kernel's
        # pgmigrate_success on stderr
    local extra=() out wall user sys
    [ "$1" = verified ] && extra=(--linux-vmlinux "$VMLINUX")
    out="$(printf '%s' "$SCRIPT" | /usr/bin/time -f '%e %U %S' -o "$TMP/time" "$BIN" boot -m 256M --kernel "$ZIMAGE" --dtb "$DTB" --initrd "$INITRD" --append "$APPEND" "${extra[@]}" 2>&1)"
    echo "$out" | grep -q "pgmigrate_success" || { echo "linux-verify-bench: $1 run failed:" >&2; echo "$out" | tail -20 >&2; exit 1; }
    echo "$1: $(echo "$out" | grep -a "pgmigrate_success" | tail -1 | tr -d '\r')" >&2
    read -r wall user sys < "$TMP/time"
    echo "$wall $(echo "$user + $sys" | bc)"
}
median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
PW=(); PC=(); VW=(); VC=()
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for i in $(seq "$N"); do
    read -r pw pc <<<"$(run plain)"
    read -r vw vc <<<"$(run verified)"
    PW+=("$pw"); PC+=("$pc"); VW+=("$vw"); VC+=("$vc")
    echo "round $i: unverified ${pw}s wall ${pc}s cpu, verified ${vw}s wall ${vc}s cpu (load $(cut -d' ' -f1 /proc/loadavg))"
done
mpw="$(printf '%s\n' "${PW[@]}" | median)"; mpc="$(printf '%s\n' "${PC[@]}" | median)"
mvw="$(printf '%s\n' "${VW[@]}" | median)"; mvc="$(printf '%s\n' "${VC[@]}" | median)"
echo "workload $WORKLOAD, $N rounds, load average now: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "median wall: unverified ${mpw}s verified ${mvw}s ratio $(echo "scale=2; $mvw / $mpw" | bc)"
echo "median cpu:  unverified ${mpc}s verified ${mvc}s ratio $(echo "scale=2; $mvc / $mpc" | bc)"
