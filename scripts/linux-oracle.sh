#!/usr/bin/env bash
# The differential oracle's real-Linux side: Debian's pinned 6.1 armmp
# kernel and DTB (scripts/linux-assets.sh), qemu-system-arm, the oracle's
# module (oracle/module, built by scripts/linux-module.sh), its static
# user program (oracle/user/oracle.c, gcc-arm-linux-gnueabihf) and an
# initramfs of busybox + both whose /init loads the module, turns address
# space randomisation off and runs the program on the console.
#
#   bash scripts/linux-oracle.sh        prints KEY=VALUE lines (LINUX_VERSION,
#                                       LINUX_PKG, LINUX_PIN, ZIMAGE, DTB,
#                                       QEMU, ORACLE_INITRD, ...)
#
# Cached under ${CMAEMU_CACHE:-~/.cache/cmaemu}/linux (rebuilt when the
# module or program sources change). Exit 3: the registry is unreachable.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
LINUX_ASSETS_LIB=1 . "$HERE/linux-assets.sh"
mkdir -p "$LINUX_CACHE"
need_tools
fetch_kernel
fetch_initramfs
ensure_qemu
eval "$(bash "$HERE/linux-module.sh" "$ROOT/oracle/module" | grep -E '^(MODULE|KREL)=')"
KO="$MODULE"

# a digest of everything that goes into the initramfs
sum="$(cat "$INITRD" "$KO" "$ROOT/oracle/user/oracle.c" "$ROOT/oracle/module/cmaemu_oracle.h" "$0" "$HERE/linux-assets.sh" | sha256sum | cut -c1-16)"
ORACLE_INITRD="$LINUX_CACHE/oracle-initramfs-$KREL-$sum.cpio.gz"
if [ ! -s "$ORACLE_INITRD" ]; then
    log "building the oracle initramfs"
    w="$(mktemp -d "$LINUX_CACHE/.oracle.XXXXXX")"
    trap 'rm -rf "$w"' EXIT
    arm-linux-gnueabihf-gcc -static -O2 -Wall -o "$w/oracle" "$ROOT/oracle/user/oracle.c"
    mkdir -p "$w/root"
    (cd "$w/root" && gzip -dc "$INITRD" | cpio -id --quiet)
    cp "$w/oracle" "$w/root/bin/oracle"
    mkdir -p "$w/root/lib/modules"
    cp "$KO" "$w/root/lib/modules/cmaemu_oracle.ko"
    # linux-assets.sh's /init, its tail: address space randomisation off,
    # the module loaded, the program on the console
    write_init "$w/root/init" 'echo 0 >/proc/sys/kernel/randomize_va_space
insmod /lib/modules/cmaemu_oracle.ko
echo "init: oracle ready on Linux $(uname -r)"
exec /bin/oracle'
    tmp="$(mktemp "$LINUX_CACHE/.oinitrd.XXXXXX")"
    (cd "$w/root" && find . | LC_ALL=C sort | cpio -o -H newc --owner=0:0 --quiet | gzip -9n >"$tmp")
    mv -f "$tmp" "$ORACLE_INITRD"
fi
print_env
echo "ORACLE_MODULE=$KO"
echo "ORACLE_INITRD=$ORACLE_INITRD"
