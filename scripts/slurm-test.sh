#!/usr/bin/env bash
# A sweep on a real cluster engine: bring up a one-node Slurm (Debian's
# slurm-wlm and munge; installed when missing), submit the sweep as a job
# array with examples/cluster/sweep.sbatch (--shard auto in every task),
# merge the shards, and compare byte for byte with the same sweep run on
# this machine alone. Everything runs from a scratch directory (own munge
# socket and key, own Slurm ports, state and logs) and is torn down at exit
# by the pids in its pid files. Needs root (munged runs as user munge).
#
#   bash scripts/slurm-test.sh [path/to/cmaemu]
#
# Exit 0 when the merged result equals the local one; otherwise 1 with the
# reason (and the daemons' logs).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CMAEMU="${1:-${CARGO_TARGET_DIR:-$ROOT/target}/release/cmaemu}"
CMAEMU="$(realpath "$CMAEMU")"
[ -x "$CMAEMU" ] || { echo "slurm-test: $CMAEMU: not an executable (cargo build --release -p cmaemu)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "slurm-test: needs root (munged runs as user munge, slurmd as root)" >&2; exit 1; }

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null || ! command -v sbatch >/dev/null; then
    echo "slurm-test: installing slurm-wlm and munge" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends slurm-wlm munge >/dev/null 2>&1 || {
        . "$ROOT/scripts/apt.sh"
        APT=(apt-get -o DPkg::Lock::Timeout=900)
        apt_update slurm-wlm munge
        apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
    }
fi

D="$(mktemp -d /tmp/cmaemu-slurm.XXXXXX)"
chmod 755 "$D"
started=()
teardown() {
    local rc=$?
    for pf in "$D/slurmd.pid" "$D/slurmctld.pid" "$D/munge/munged.pid"; do
        [ -s "$pf" ] || continue
        local pid
        pid="$(cat "$pf")"
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
    if [ "$rc" != 0 ]; then
        for l in "$D"/slurmctld.log "$D"/slurmd.log "$D"/munge/munged.log "$D"/out/*.log; do
            [ -f "$l" ] && { echo "---- $l" >&2; tail -n 30 "$l" >&2; }
        done
    fi
    rm -rf "$D"
    exit "$rc"
}
trap teardown EXIT
fail() { echo "slurm-test: $*" >&2; exit 1; }

# munge: own key, socket, pid, log and seed files
# (the socket's directory must be searchable by all, the key's private)
mkdir -p "$D/munge" "$D/munge-key"
dd if=/dev/urandom of="$D/munge-key/munge.key" bs=1024 count=1 status=none
chown -R munge:munge "$D/munge" "$D/munge-key"
chmod 755 "$D/munge"
chmod 700 "$D/munge-key"
chmod 400 "$D/munge-key/munge.key"
SOCK="$D/munge/munge.socket"
su -s /bin/sh munge -c "munged --socket=$SOCK --key-file=$D/munge-key/munge.key --pid-file=$D/munge/munged.pid --log-file=$D/munge/munged.log --seed-file=$D/munge/munged.seed" \
    || fail "munged did not start"
munge -S "$SOCK" -n | unmunge -S "$SOCK" >/dev/null || fail "munge -n | unmunge failed"

# slurm: one node, this host, own ports
HOST="$(hostname -s)"
CPUS="$(nproc)"
MEM="$(free -m | awk '/^Mem:/ { print int($2 * 0.9) }')"
PORT=$((20000 + $$ % 20000))
mkdir -p "$D/state" "$D/spool" "$D/out"
cat >"$D/slurm.conf" <<EOF
ClusterName=cmaemu
SlurmctldHost=$HOST
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$SOCK
CredType=cred/munge
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd.pid
SlurmctldLogFile=$D/slurmctld.log
SlurmdLogFile=$D/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MpiDefault=none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
NodeName=$HOST CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=cmaemu Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$D/slurm.conf"
slurmctld -f "$SLURM_CONF" || fail "slurmctld did not start"
slurmd -f "$SLURM_CONF" || fail "slurmd did not start"
for _ in $(seq 120); do
    sinfo -h -o %t 2>/dev/null | grep -qE '^idle' && break
    sleep 0.5
done
sinfo -h -o %t | grep -qE '^idle' || fail "the node did not become idle: $(sinfo 2>&1)"

# the sweep: 2 CMA sizes x 3 seeds of the preview-under-pressure example,
# 3 array tasks of examples/cluster/sweep.sbatch
export CMAEMU SCENARIO="$ROOT/examples/camera-preview-under-pressure.toml" OUT="$D/out"
export AXES="--axis cma=16M,64M" SEEDS="0..3"
t0=$(date +%s)
sbatch --wait --array=0-2 --cpus-per-task=1 --chdir="$ROOT" --output="$D/out/slurm-%A_%a.log" \
    --export=ALL "$ROOT/examples/cluster/sweep.sbatch" >"$D/sbatch.out" || fail "the job array failed: $(cat "$D/sbatch.out")"
t1=$(date +%s)
ls "$D"/out/shard-*.jsonl >/dev/null 2>&1 || fail "no shard outputs"
for k in 0 1 2; do
    grep -q "\"shard\":\"$k/3\"" "$D/out/shard-$k.jsonl" || fail "shard-$k.jsonl is not shard $k/3 (--shard auto from SLURM_ARRAY_TASK_*)"
done
# the merge job of sweep.sbatch (MERGE=1), also through Slurm
MERGE=1 sbatch --wait --chdir="$ROOT" --output="$D/out/merge.log" --export=ALL "$ROOT/examples/cluster/sweep.sbatch" >/dev/null \
    || fail "the merge job failed"
"$CMAEMU" sweep "$SCENARIO" --seeds "$SEEDS" $AXES --jobs 2 -o "$D/local.jsonl" 2>/dev/null || [ $? = 1 ] || fail "the local sweep failed"
cmp "$D/out/sizing.jsonl" "$D/local.jsonl" || fail "the merged Slurm result differs from the local run"
[ -s "$D/out/sizing.png" ] || fail "the merge job drew no plot"
echo "slurm-test: $(grep -c '"type":"run"' "$D/local.jsonl") runs in a 3-task Slurm job array ($((t1 - t0)) s), merged: identical to the local run"
