# Sourced by the scripts that install Debian packages: apt_update.
#
# apt_update PKG...: read the package lists again, retried. A mirror in the
# middle of a sync fails one index for a few minutes ("File has unexpected
# size ... Mirror sync in progress?") and apt-get update then exits 1,
# although every other list was read. So: up to APT_UPDATE_TRIES attempts
# (default 3), APT_UPDATE_DELAY seconds apart (default 10, times the
# attempt); if none succeeded, go on when every PKG has an install
# candidate in the lists that were read, else fail (exit status 1) naming
# what is missing. Uses $SUDO and, when set, the array APT for apt-get.
apt_update() {
    local tries="${APT_UPDATE_TRIES:-3}" delay="${APT_UPDATE_DELAY:-10}" i p policy missing=()
    local apt=(apt-get)
    if declare -p APT >/dev/null 2>&1; then apt=("${APT[@]}"); fi
    for ((i = 1; i <= tries; i++)); do
        if ${SUDO:-} "${apt[@]}" update -qq >/dev/null 2>&1; then
            return 0
        fi
        if ((i < tries)); then
            sleep $((delay * i))
        fi
    done
    for p in "$@"; do
        # (read whole: under pipefail, grep -q closing the pipe early
        # would fail apt-cache)
        policy="$(apt-cache policy "$p" 2>/dev/null || true)"
        grep -q 'Candidate: [^(]' <<<"$policy" || missing+=("$p")
    done
    if ((${#missing[@]} == 0)); then
        echo "apt: apt-get update failed $tries times (a mirror in the middle of a sync?); going on with the package lists it read" >&2
        return 0
    fi
    echo "apt: apt-get update failed $tries times and no package list offers ${missing[*]}" >&2
    return 1
}
