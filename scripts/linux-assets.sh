#!/usr/bin/env bash
# Real-Linux assets for cmaemu, from Debian 12's package registry, cached in
# ${CMAEMU_CACHE:-$HOME/.cache/cmaemu}/linux (idempotent; safe when two runs
# fill the cache at once: everything is written under a temporary name and
# renamed into place).
#
#   bash scripts/linux-assets.sh [all]     kernel + dtb + initramfs + qemu (default)
#   bash scripts/linux-assets.sh kernel    zImage and vexpress-v2p-ca9.dtb
#   bash scripts/linux-assets.sh initramfs busybox initramfs (cpio newc, gzip)
#   bash scripts/linux-assets.sh qemu      install qemu-system-arm (apt)
#   bash scripts/linux-assets.sh env       print the KEY=path lines only
#   bash scripts/linux-assets.sh dbg       + the kernel's vmlinux with debug info (VMLINUX=)
#
# It ends by printing KEY=VALUE lines (LINUX_VERSION, LINUX_PKG, ZIMAGE,
# DTB, INITRD, QEMU) that callers `eval` or grep. Exit 3 when the package
# registry cannot be reached (tests skip on that, and only on that).
#
# Other scripts may source it to reuse the functions (asset_dir, apt_fetch,
# resolve_armmp, ...): with LINUX_ASSETS_LIB=1 set it defines them and
# returns without running anything.
set -euo pipefail

CACHE="${CMAEMU_CACHE:-$HOME/.cache/cmaemu}"
LINUX_CACHE="$CACHE/linux"
# Bump when write_init changes (the initramfs name carries it).
INIT_VERSION=1
APT=(apt-get -o DPkg::Lock::Timeout=900)
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

log() { echo "linux-assets: $*" >&2; }
. "$(dirname "${BASH_SOURCE[0]}")/apt.sh"

# Exit 3 (registry unreachable) with a clear message.
unreachable() {
    log "the Debian package registry is unreachable: $*"
    exit 3
}

# Enable armhf packages (download only: nothing armhf is installed); read
# the package lists again only when they lack armhf (no network otherwise).
ensure_armhf() {
    if ! dpkg --print-foreign-architectures | grep -qx armhf; then
        $SUDO dpkg --add-architecture armhf
    fi
    if [ -z "${APT_UPDATED:-}" ] && ! apt-cache show linux-image-armmp:armhf >/dev/null 2>&1; then
        apt_update linux-image-armmp:armhf || unreachable "apt-get update failed"
    fi
    APT_UPDATED=1
}

# The versioned package the armmp metapackage points at now, e.g.
# linux-image-6.1.0-50-armmp (Debian 12's current kernel).
resolve_armmp() {
    local dep
    dep="$(apt-cache depends linux-image-armmp:armhf 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { sub(":armhf", "", $2); print $2; exit }')"
    [ -n "$dep" ] || unreachable "cannot resolve linux-image-armmp:armhf (no package list for armhf?)"
    echo "$dep"
}

# apt_fetch PKG[:ARCH] DIR: download the .deb (no install) into DIR, print its path.
apt_fetch() {
    local pkg="$1" dir="$2" tmp deb
    mkdir -p "$dir"
    tmp="$(mktemp -d "$dir/.dl.XXXXXX")"
    (cd "$tmp" && "${APT[@]}" download -qq "$pkg" >/dev/null 2>&1) || { rm -rf "$tmp"; unreachable "apt-get download $pkg failed"; }
    deb="$(ls "$tmp"/*.deb | head -1)"
    mv -f "$deb" "$dir/"
    rmdir "$tmp" 2>/dev/null || rm -rf "$tmp"
    echo "$dir/$(basename "$deb")"
}

# deb_extract DEB DIR: unpack the data of a .deb into DIR.
deb_extract() {
    mkdir -p "$2"
    dpkg-deb -x "$1" "$2"
}

# install_atomic SRC DST: copy to a temporary name beside DST, then rename.
install_atomic() {
    local tmp
    tmp="$(mktemp "$(dirname "$2")/.$(basename "$2").XXXXXX")"
    cp -f "$1" "$tmp"
    chmod 0644 "$tmp"
    mv -f "$tmp" "$2"
}

# The kernel version in use: the pin in scripts/linux-pin (LINUX_PKG and
# LINUX_VERSION lines), upgraded deliberately by editing that file. When
# Debian's registry no longer carries the pinned build (its 6.1 point
# releases move) and it is not cached, the current one is used and
# LINUX_PIN says so (every oracle report prints it).
# CMAEMU_LINUX=current always takes the current one.
resolve_pinned() {
    local pin="${CMAEMU_LINUX_PIN_FILE:-$(dirname "${BASH_SOURCE[0]}")/linux-pin}" ppkg="" pver=""
    if [ "${CMAEMU_LINUX:-}" != current ] && [ -f "$pin" ]; then
        ppkg="$(sed -n 's/^LINUX_PKG=//p' "$pin")"
        pver="$(sed -n 's/^LINUX_VERSION=//p' "$pin")"
    fi
    if [ -n "$ppkg" ] && [ -n "$pver" ]; then
        if [ "$(cat "$LINUX_CACHE/$ppkg/version" 2>/dev/null)" = "$pver" ] && [ -s "$LINUX_CACHE/$ppkg/vmlinuz" ]; then
            LINUX_PKG="$ppkg" LINUX_VERSION="$pver" LINUX_PIN="pinned"
            return
        fi
        ensure_armhf
        if apt-cache madison "$ppkg:armhf" 2>/dev/null | awk -v v="$pver" '$3 == v { f = 1 } END { exit !f }'; then
            LINUX_PKG="$ppkg" LINUX_VERSION="$pver" LINUX_PIN="pinned"
            return
        fi
    fi
    ensure_armhf
    LINUX_PKG="$(resolve_armmp)"
    LINUX_VERSION="$(apt-cache policy "$LINUX_PKG:armhf" | awk '/Candidate:/ { print $2 }')"
    if [ -n "$ppkg" ]; then
        LINUX_PIN="moved: pinned $ppkg $pver is gone from the registry, using $LINUX_PKG $LINUX_VERSION (update scripts/linux-pin)"
        log "$LINUX_PIN"
    else
        LINUX_PIN="current"
    fi
}

# The kernel: zImage + Linux's vexpress-v2p-ca9.dtb, in $LINUX_CACHE/<version>/.
fetch_kernel() {
    resolve_pinned
    KDIR="$LINUX_CACHE/$LINUX_PKG"
    ZIMAGE="$KDIR/vmlinuz"
    DTB="$KDIR/vexpress-v2p-ca9.dtb"
    if [ -s "$ZIMAGE" ] && [ -s "$DTB" ] && [ "$(cat "$KDIR/version" 2>/dev/null)" = "$LINUX_VERSION" ]; then
        return
    fi
    mkdir -p "$KDIR"
    local deb x
    log "downloading $LINUX_PKG $LINUX_VERSION (armhf)"
    deb="$(apt_fetch "$LINUX_PKG:armhf=$LINUX_VERSION" "$LINUX_CACHE/debs")"
    x="$(mktemp -d "$KDIR/.x.XXXXXX")"
    deb_extract "$deb" "$x"
    local krel="${LINUX_PKG#linux-image-}"
    install_atomic "$x/boot/vmlinuz-$krel" "$ZIMAGE"
    local dtb
    dtb="$(find "$x/usr/lib" -name vexpress-v2p-ca9.dtb | head -1)"
    [ -n "$dtb" ] || { log "no vexpress-v2p-ca9.dtb in $deb"; exit 1; }
    install_atomic "$dtb" "$DTB"
    [ -f "$x/boot/config-$krel" ] && install_atomic "$x/boot/config-$krel" "$KDIR/config"
    rm -rf "$x"
    echo "$LINUX_VERSION" >"$KDIR/version.tmp.$$" && mv -f "$KDIR/version.tmp.$$" "$KDIR/version"
}

# The initramfs /init: mount proc, sys, debugfs and run a shell on the
# console. With the word `poweroff` on the kernel command line (Linux hands
# unknown bare words to init as arguments) it powers off at once instead:
# the boot-to-power-down run the benchmarks time.
#
# write_init FILE [TAIL]: TAIL (shell lines) replaces what follows the
# mounts (the banner and the shell): scripts/linux-oracle.sh's /init loads
# its module and runs its program there. Without TAIL the file is the same
# byte for byte (INIT_VERSION is not bumped by a TAIL).
write_init() {
    {
        cat <<'EOF'
#!/bin/sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t debugfs debugfs /sys/kernel/debug
mount -t devtmpfs devtmpfs /dev 2>/dev/null
EOF
        if [ -n "${2:-}" ]; then
            printf '%s\n' "$2"
        else
            cat <<'EOF'
echo "init: busybox $(busybox | head -1 | cut -d' ' -f2) on Linux $(uname -r)"
case " $* " in
    *" poweroff "*) echo "init: poweroff"; exec poweroff -f ;;
esac
exec /bin/sh
EOF
        fi
    } >"$1"
    chmod 0755 "$1"
}

# The kernel's vmlinux with DWARF, from linux-image-<abi>-armmp-dbg (a
# 622 MB download): only vmlinux is extracted and kept, as
# $KDIR/vmlinux (the .deb is deleted). For introspect::linux's debug info.
fetch_dbg() {
    fetch_kernel
    VMLINUX="$KDIR/vmlinux"
    if [ -s "$VMLINUX" ] && [ "$(cat "$KDIR/vmlinux.version" 2>/dev/null)" = "$LINUX_VERSION" ]; then
        return
    fi
    local krel="${LINUX_PKG#linux-image-}" tmp deb
    log "downloading $LINUX_PKG-dbg $LINUX_VERSION (armhf, ~620 MB; only vmlinux is kept)"
    tmp="$(mktemp -d "$KDIR/.dbg.XXXXXX")"
    deb="$(apt_fetch "$LINUX_PKG-dbg:armhf=$LINUX_VERSION" "$tmp")"
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" "./usr/lib/debug/boot/vmlinux-$krel" \
        || { rm -rf "$tmp"; log "no vmlinux-$krel in $deb"; exit 1; }
    mv -f "$tmp/usr/lib/debug/boot/vmlinux-$krel" "$KDIR/.vmlinux.$$"
    rm -rf "$tmp"
    mv -f "$KDIR/.vmlinux.$$" "$VMLINUX"
    echo "$LINUX_VERSION" >"$KDIR/vmlinux.version.tmp.$$" && mv -f "$KDIR/vmlinux.version.tmp.$$" "$KDIR/vmlinux.version"
}

# The busybox initramfs (cpio newc, gzip) at $LINUX_CACHE/initramfs-<busybox version>.cpio.gz.
fetch_initramfs() {
    ensure_armhf
    local ver
    ver="$(apt-cache policy busybox-static:armhf | awk '/Candidate:/ { print $2 }')"
    [ -n "$ver" ] && [ "$ver" != "(none)" ] || unreachable "busybox-static:armhf not found"
    INITRD="$LINUX_CACHE/initramfs-v$INIT_VERSION-busybox-${ver//:/_}.cpio.gz"
    BUSYBOX_VERSION="$ver"
    [ -s "$INITRD" ] && return
    log "building the busybox $ver initramfs"
    local deb root
    deb="$(apt_fetch "busybox-static:armhf" "$LINUX_CACHE/debs")"
    root="$(mktemp -d "$LINUX_CACHE/.root.XXXXXX")"
    local x
    x="$(mktemp -d "$LINUX_CACHE/.bb.XXXXXX")"
    deb_extract "$deb" "$x"
    mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,root,etc,usr/bin,usr/sbin}
    cp "$x/bin/busybox" "$root/bin/busybox"
    rm -rf "$x"
    ln -s busybox "$root/bin/sh"
    write_init "$root/init"
    local tmp
    tmp="$(mktemp "$LINUX_CACHE/.initrd.XXXXXX")"
    # Device nodes need root; the kernel's devtmpfs provides them anyway,
    # and the kernel creates /dev/console for an initramfs that lacks it.
    (cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --owner=0:0 --quiet | gzip -9n >"$tmp")
    rm -rf "$root"
    mv -f "$tmp" "$INITRD"
}

# qemu-system-arm from Debian (for comparisons; cmaemu itself needs none).
ensure_qemu() {
    if ! command -v qemu-system-arm >/dev/null 2>&1; then
        log "installing qemu-system-arm"
        apt_update qemu-system-arm || unreachable "apt-get update failed"
        DEBIAN_FRONTEND=noninteractive $SUDO "${APT[@]}" install -y -qq --no-install-recommends qemu-system-arm >/dev/null \
            || unreachable "apt-get install qemu-system-arm failed"
    fi
    QEMU="$(command -v qemu-system-arm)"
}

need_tools() {
    local missing=()
    command -v cpio >/dev/null || missing+=(cpio)
    command -v gzip >/dev/null || missing+=(gzip)
    if ((${#missing[@]})); then
        $SUDO "${APT[@]}" install -y -qq "${missing[@]}" >/dev/null || unreachable "apt-get install ${missing[*]} failed"
    fi
}

print_env() {
    [ -n "${LINUX_VERSION:-}" ] && echo "LINUX_VERSION=$LINUX_VERSION"
    [ -n "${LINUX_PKG:-}" ] && echo "LINUX_PKG=$LINUX_PKG"
    [ -n "${LINUX_PIN:-}" ] && echo "LINUX_PIN=$LINUX_PIN"
    [ -n "${ZIMAGE:-}" ] && echo "ZIMAGE=$ZIMAGE"
    [ -n "${DTB:-}" ] && echo "DTB=$DTB"
    [ -n "${BUSYBOX_VERSION:-}" ] && echo "BUSYBOX_VERSION=$BUSYBOX_VERSION"
    [ -n "${INITRD:-}" ] && echo "INITRD=$INITRD"
    [ -n "${QEMU:-}" ] && echo "QEMU=$QEMU"
    [ -n "${VMLINUX:-}" ] && echo "VMLINUX=$VMLINUX"
    return 0
}

main() {
    mkdir -p "$LINUX_CACHE"
    local cmd="${1:-all}"
    case "$cmd" in
        all) need_tools; fetch_kernel; fetch_initramfs; ensure_qemu ;;
        kernel) fetch_kernel ;;
        initramfs) need_tools; fetch_initramfs ;;
        qemu) ensure_qemu ;;
        env) need_tools; fetch_kernel; fetch_initramfs ;;
        dbg) need_tools; fetch_kernel; fetch_initramfs; fetch_dbg ;;
        *) log "unknown subcommand '$cmd' (all|kernel|initramfs|qemu|env|dbg)"; exit 2 ;;
    esac
    print_env
}

if [ -z "${LINUX_ASSETS_LIB:-}" ]; then
    main "$@"
fi
