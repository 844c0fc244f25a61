#!/usr/bin/env bash
# Installs what cmaemu needs on a Debian 12 machine, idempotently: the
# Unicorn build (cmake, libclang-dev, a C compiler), the guest toolchain
# (rustc-web, cargo-web, rust-web-src, lld) and dtc. Skips what is present.
set -euo pipefail

PKGS=(cmake libclang-dev build-essential pkg-config rustc-web cargo-web rust-web-src lld device-tree-compiler)
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    echo "setup: installing ${missing[*]}" >&2
    . "$(dirname "${BASH_SOURCE[0]}")/apt.sh"
    apt_update "${missing[@]}"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
