#!/usr/bin/env bash
# Build an out-of-tree kernel module for the real Linux kernel that
# scripts/linux-assets.sh fetches (Debian 12's 6.1 armmp, armhf), with
# nothing but the package registry:
#
#   bash scripts/linux-module.sh DIR [-o OUTDIR]
#
# DIR holds the module's sources and a Kbuild (or Makefile) with `obj-m`.
# The sources are copied to a scratch directory (DIR is left clean), built
# with Kbuild against Debian's headers for that kernel
# (`linux-headers-<abi>-armmp` armhf + `-common`, and `linux-kbuild-6.1`,
# downloaded, not installed, unpacked under
# ${CMAEMU_CACHE:-~/.cache/cmaemu}/linux/headers-<abi>-armmp/) and the
# cross compiler `gcc-arm-linux-gnueabihf` (installed with apt when
# missing). Each built .ko is copied to OUTDIR (default
# $CMAEMU_CACHE/linux/modules/<abi>-armmp/) and printed as a line
# `MODULE=/path/name.ko`, after the `KEY=VALUE` lines of linux-assets.sh
# (LINUX_VERSION, LINUX_PKG, KREL, ...). Exit 3 when the registry is
# unreachable, 1 when the build fails (the compiler's output is shown).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LINUX_ASSETS_LIB=1 . "$HERE/linux-assets.sh"

usage() {
    echo "usage: linux-module.sh DIR [-o OUTDIR]" >&2
    exit 2
}

SRC=""
OUT=""
while (($#)); do
    case "$1" in
        -o) [ $# -ge 2 ] || usage; OUT="$2"; shift 2 ;;
        -h|--help) usage ;;
        -*) echo "linux-module: unknown option '$1'" >&2; usage ;;
        *) [ -z "$SRC" ] || usage; SRC="$1"; shift ;;
    esac
done
[ -n "$SRC" ] || usage
[ -d "$SRC" ] || { echo "linux-module: $SRC: not a directory" >&2; exit 2; }
if [ ! -f "$SRC/Kbuild" ] && [ ! -f "$SRC/Makefile" ]; then
    echo "linux-module: $SRC has neither Kbuild nor Makefile (obj-m := name.o)" >&2
    exit 2
fi
SRC="$(cd "$SRC" && pwd)"

# The cross compiler Debian builds its armhf kernels with (gcc-12).
ensure_cross_gcc() {
    if ! command -v arm-linux-gnueabihf-gcc-12 >/dev/null 2>&1; then
        log "installing gcc-arm-linux-gnueabihf"
        DEBIAN_FRONTEND=noninteractive $SUDO "${APT[@]}" install -y -qq --no-install-recommends \
            gcc-arm-linux-gnueabihf libc6-dev-armhf-cross make >/dev/null 2>&1 \
            || { apt_update gcc-arm-linux-gnueabihf libc6-dev-armhf-cross make || unreachable "apt-get update failed"
                 DEBIAN_FRONTEND=noninteractive $SUDO "${APT[@]}" install -y -qq --no-install-recommends \
                     gcc-arm-linux-gnueabihf libc6-dev-armhf-cross make >/dev/null \
                     || unreachable "apt-get install gcc-arm-linux-gnueabihf failed"; }
    fi
}

# Debian's module-building tree for $LINUX_PKG at $LINUX_VERSION, unpacked
# once into $HDIR (KSRC: the directory to run make -C in).
fetch_headers() {
    KREL="${LINUX_PKG#linux-image-}"
    local abi="${KREL%-armmp}"
    HDIR="$LINUX_CACHE/headers-$KREL"
    KSRC="$HDIR/usr/src/linux-headers-$KREL"
    if [ "$(cat "$HDIR/version" 2>/dev/null)" = "$LINUX_VERSION" ] && [ -f "$KSRC/Makefile" ]; then
        return
    fi
    log "downloading the headers for $KREL $LINUX_VERSION"
    local d1 d2 d3 x
    d1="$(apt_fetch "linux-headers-$KREL:armhf=$LINUX_VERSION" "$LINUX_CACHE/debs")"
    d2="$(apt_fetch "linux-headers-$abi-common=$LINUX_VERSION" "$LINUX_CACHE/debs")"
    d3="$(apt_fetch "linux-kbuild-6.1=$LINUX_VERSION" "$LINUX_CACHE/debs")"
    x="$(mktemp -d "$LINUX_CACHE/.hdr.XXXXXX")"
    for d in "$d1" "$d2" "$d3"; do deb_extract "$d" "$x"; done
    # The arch tree includes the common one by its installed path: point it
    # at the unpacked copy (the scripts/ symlinks are relative already).
    echo "include $HDIR/usr/src/linux-headers-$abi-common/Makefile" >"$x/usr/src/linux-headers-$KREL/Makefile"
    echo "$LINUX_VERSION" >"$x/version"
    rm -rf "$HDIR.old"
    [ -d "$HDIR" ] && mv "$HDIR" "$HDIR.old"
    mv "$x" "$HDIR"
    rm -rf "$HDIR.old"
}

main() {
    mkdir -p "$LINUX_CACHE"
    fetch_kernel
    ensure_cross_gcc
    fetch_headers
    OUT="${OUT:-$LINUX_CACHE/modules/$KREL}"
    mkdir -p "$OUT"
    OUT="$(cd "$OUT" && pwd)"
    BUILD="$(mktemp -d "${TMPDIR:-/tmp}/linux-module.XXXXXX")"
    trap 'rm -rf "$BUILD"' EXIT
    local b="$BUILD"
    cp -a "$SRC/." "$b/"
    if ! make -s -C "$KSRC" M="$b" ARCH=arm CROSS_COMPILE=arm-linux-gnueabihf- modules >"$b/.build.log" 2>&1; then
        cat "$b/.build.log" >&2
        log "building the module in $SRC failed"
        exit 1
    fi
    print_env
    echo "KREL=$KREL"
    local ko n=0
    for ko in "$b"/*.ko; do
        [ -e "$ko" ] || continue
        install_atomic "$ko" "$OUT/$(basename "$ko")"
        echo "MODULE=$OUT/$(basename "$ko")"
        n=$((n + 1))
    done
    ((n)) || { log "no .ko built in $SRC (obj-m?)"; exit 1; }
}

main
