#!/usr/bin/env bash
# A one-node SLURM cluster on this host, for tests/test_slurm.py (and for trying the SLURM
# profile by hand). Installs Debian's slurm-wlm and munge when missing, writes the
# configuration into $TRACEKD_SLURM_DIR (default /tmp/tracekd-slurm), starts munged,
# slurmctld and slurmd as daemons with their logs there, waits for the node to be idle and
# checks that a GPU job is scheduled with CUDA_VISIBLE_DEVICES set (one fake A100: a device
# node with /dev/null's numbers behind gres.conf's File=). Idempotent: a cluster that is
# already up is kept.
#
#   tests/slurm/start.sh && export SLURM_CONF=/tmp/tracekd-slurm/etc/slurm.conf
#   tests/slurm/stop.sh
#
# Also links /etc/slurm/slurm.conf to the configuration (jobs' srun reads that path; see
# below) where no such file exists; stop.sh removes the link.
#
# Needs root (SlurmUser=root) and, unless the packages are installed, apt-get. Exits non-zero
# with a one-line reason ("start.sh: ...") on the last line of its output when SLURM cannot
# be started. Environment: TRACEKD_SLURM_DIR, TRACEKD_SLURM_PORT (slurmctld's port; slurmd
# uses the next one), TRACEKD_SLURM_MEM_MARGIN_MB (memory left out of RealMemory),
# TRACEKD_SLURM_APT_BUDGET_S (seconds all apt-get calls may take together, default 240).
set -euo pipefail

DIR="${TRACEKD_SLURM_DIR:-/tmp/tracekd-slurm}"
PORT="${TRACEKD_SLURM_PORT:-6817}"
MARGIN_MB="${TRACEKD_SLURM_MEM_MARGIN_MB:-1024}"
APT_BUDGET_S="${TRACEKD_SLURM_APT_BUDGET_S:-240}"
PARTITION="tracekd"
CONF="$DIR/etc/slurm.conf"
export SLURM_CONF="$CONF"
export PATH="$PATH:/usr/sbin:/sbin"

say() { printf 'start.sh: %s\n' "$*"; }
die() {
    printf 'start.sh: %s\n' "$*" >&2
    exit 1
}
# the last lines of a daemon's log, to explain a failure
log_tail() {
    if [ -f "$1" ]; then tail -n 15 "$1" | sed 's/^/    /' >&2; fi
}
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

[ "$(id -u)" -eq 0 ] || die "SLURM test cluster needs root (SlurmUser=root); running as uid $(id -u)"

# --- packages -------------------------------------------------------------------------------
missing=""
for cmd in munged slurmctld slurmd sbatch sinfo squeue scontrol; do
    command -v "$cmd" >/dev/null 2>&1 || missing="$missing $cmd"
done
if [ -n "$missing" ]; then
    command -v apt-get >/dev/null 2>&1 || die "slurm-wlm/munge not installed (missing:$missing) and no apt-get"
    say "installing slurm-wlm and munge with apt-get (missing:$missing)"
    mkdir -p "$DIR"
    : >"$DIR/apt.log"
    # every apt-get call shares one time budget, so the script ends before a caller's timeout
    apt_deadline=$((SECONDS + APT_BUDGET_S))
    apt_get() {
        local left=$((apt_deadline - SECONDS))
        [ "$left" -gt 10 ] || return 1
        DEBIAN_FRONTEND=noninteractive timeout "$left" apt-get -qq -o DPkg::Lock::Timeout=60 \
            "$@" >>"$DIR/apt.log" 2>&1
    }
    updated=0
    # a fresh machine may have no package lists yet
    if ! apt-cache show slurm-wlm munge >/dev/null 2>&1; then
        say "apt-get update"
        apt_get update || true
        updated=1
    fi
    if ! apt_get install -y --no-install-recommends slurm-wlm munge; then
        # stale lists (a 404 on download): update once and retry
        if [ "$updated" -eq 0 ]; then
            say "apt-get install failed; apt-get update and retry"
            apt_get update || true
        fi
        apt_get install -y --no-install-recommends slurm-wlm munge || {
            log_tail "$DIR/apt.log"
            die "apt-get install slurm-wlm munge failed or took over ${APT_BUDGET_S} s (see $DIR/apt.log)"
        }
    fi
    for cmd in $missing; do
        command -v "$cmd" >/dev/null 2>&1 || die "$cmd still missing after installing slurm-wlm and munge"
    done
fi
say "$(slurmctld -V) and $(munged -V 2>&1 | awk '{print $1; exit}')"

HOST="$(hostname -s)"
[ -n "$HOST" ] || die "hostname -s is empty"

SYSCONF=/etc/slurm/slurm.conf # see below
if [ -e "$SYSCONF" ] && ! { [ -L "$SYSCONF" ] && [ "$(readlink "$SYSCONF")" = "$CONF" ]; }; then
    die "$SYSCONF exists and is not this test cluster's (jobs' srun would read it); not replacing it"
fi

# --- already up? ----------------------------------------------------------------------------
node_state() { timeout 15 sinfo -h -n "$HOST" -o %T 2>/dev/null | head -n 1 | tr -d '*~#'; }
if alive "$DIR/run/munged.pid" && alive "$DIR/run/slurmctld.pid" && alive "$DIR/run/slurmd.pid"; then
    state="$(node_state || true)"
    case "$state" in
    idle | mixed | allocated | completing)
        say "cluster already running in $DIR (node $HOST: $state)"
        already=1
        ;;
    *)
        say "daemons running but node $HOST is '${state:-unknown}'; restarting"
        "$(dirname "$0")/stop.sh" >/dev/null 2>&1 || true
        already=0
        ;;
    esac
else
    # a partial cluster (one daemon died) is stopped and started afresh
    "$(dirname "$0")/stop.sh" >/dev/null 2>&1 || true
    already=0
fi

if [ "$already" -eq 0 ]; then
    # --- configuration ----------------------------------------------------------------------
    say "writing a one-node configuration in $DIR (node $HOST)"
    mkdir -p "$DIR"/etc "$DIR"/munge "$DIR"/run "$DIR"/log "$DIR"/state "$DIR"/spool "$DIR"/dev "$DIR"/jobs
    chmod 700 "$DIR"/munge
    mem_kb="$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)"
    REAL_MB=$((mem_kb / 1024 - MARGIN_MB))
    [ "$REAL_MB" -gt 1024 ] || die "too little memory for a SLURM node (MemTotal ${mem_kb} kB)"
    CPUS="$(nproc)"
    # the fake A100: Slurm wants a character device behind File= (without cgroups it only
    # stats it); one with /dev/null's numbers, else a link to /dev/null where mknod is refused
    GPU_FILE="$DIR/dev/fake-gpu0"
    if [ ! -c "$GPU_FILE" ]; then
        rm -f "$GPU_FILE"
        mknod "$GPU_FILE" c 1 3 2>/dev/null || ln -s /dev/null "$GPU_FILE"
    fi

    cat >"$CONF" <<EOF
# Written by tests/slurm/start.sh: a one-node test cluster, no accounting, no cgroups.
ClusterName=tracekd
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$DIR/munge/munge.socket
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
MailProg=/bin/true
PlugStackConfig=$DIR/etc/plugstack.conf
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
GresTypes=gpu
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
ReturnToService=2
SlurmdParameters=config_overrides
MinJobAge=3600
KillWait=5
MessageTimeout=10
SlurmctldTimeout=30
SlurmdTimeout=60
InactiveLimit=0
Waittime=0
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$REAL_MB Gres=gpu:a100:1 State=UNKNOWN
PartitionName=$PARTITION Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
    cat >"$DIR/etc/gres.conf" <<EOF
NodeName=$HOST Name=gpu Type=a100 File=$GPU_FILE
EOF
    : >"$DIR/etc/plugstack.conf" # no SPANK plugins from the host's /etc/slurm

    # --- daemons ----------------------------------------------------------------------------
    if [ ! -s "$DIR/munge/munge.key" ]; then
        dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
        chmod 600 "$DIR/munge/munge.key"
    fi
    say "starting munged"
    munged --force --key-file="$DIR/munge/munge.key" --socket="$DIR/munge/munge.socket" \
        --pid-file="$DIR/run/munged.pid" --log-file="$DIR/log/munged.log" \
        --seed-file="$DIR/munge/munged.seed" ||
        {
            log_tail "$DIR/log/munged.log"
            die "munged failed to start (see $DIR/log/munged.log)"
        }
    for _ in $(seq 1 50); do [ -S "$DIR/munge/munge.socket" ] && break; sleep 0.2; done
    munge -n -S "$DIR/munge/munge.socket" | unmunge -S "$DIR/munge/munge.socket" >/dev/null ||
        die "munge cannot encode and decode a credential (see $DIR/log/munged.log)"

    say "starting slurmctld"
    slurmctld -c -i -f "$CONF" || {
        log_tail "$DIR/log/slurmctld.log"
        die "slurmctld failed to start (see $DIR/log/slurmctld.log)"
    }
    for _ in $(seq 1 60); do timeout 10 scontrol ping 2>/dev/null | grep -q UP && break; sleep 0.5; done
    timeout 10 scontrol ping 2>/dev/null | grep -q UP || {
        log_tail "$DIR/log/slurmctld.log"
        die "slurmctld does not answer scontrol ping (see $DIR/log/slurmctld.log)"
    }

    say "starting slurmd"
    slurmd -f "$CONF" -N "$HOST" || {
        log_tail "$DIR/log/slurmd.log"
        die "slurmd failed to start (see $DIR/log/slurmd.log)"
    }
fi

# Inside a job, snakemake-executor-plugin-slurm-jobstep runs the rule with srun after dropping
# every SLURM_* variable but the job's identity, SLURM_CONF included: srun then reads the
# default /etc/slurm/slurm.conf. It is linked to ours; a real one is never replaced.
if ! { [ -L "$SYSCONF" ] && [ "$(readlink "$SYSCONF")" = "$CONF" ]; }; then
    mkdir -p "$(dirname "$SYSCONF")"
    rm -f "$SYSCONF" # at most a dangling link: a real file stopped us above
    ln -s "$CONF" "$SYSCONF"
fi

# --- node idle ------------------------------------------------------------------------------
say "waiting for node $HOST to be idle"
state=""
for _ in $(seq 1 60); do
    state="$(node_state || true)"
    case "$state" in idle | mixed | allocated) break ;; esac
    sleep 1
done
case "$state" in
idle | mixed | allocated) say "node $HOST is $state: $(sinfo -h -N -n "$HOST" -o '%c CPUs, %m MB, %G')" ;;
*)
    timeout 10 sinfo -R >&2 || true
    log_tail "$DIR/log/slurmd.log"
    die "node $HOST is '${state:-unknown}', not idle, after 60 s (see $DIR/log/slurmd.log and slurmctld.log)"
    ;;
esac

# --- a GPU job ------------------------------------------------------------------------------
say "submitting a GPU job: sbatch --gpus=a100:1 (and srun inside it)"
out="$DIR/jobs/gpu-check.out"
rm -f "$out"
# and a job step started by srun as the jobstep plugin starts it (without SLURM_CONF)
# shellcheck disable=SC2016  # $CUDA_VISIBLE_DEVICES is the job's, not ours
jobid="$(timeout 30 sbatch --parsable --gpus=a100:1 --mem=100 -t 2 -o "$out" -D "$DIR/jobs" \
    --wrap 'echo "CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-unset}"
            env -u SLURM_CONF srun -n1 true && echo "srun=ok"')" ||
    die "sbatch --gpus=a100:1 was refused"
jobstate=""
for _ in $(seq 1 60); do
    jobstate="$(timeout 10 squeue -h -j "$jobid" -t all -o %T 2>/dev/null || true)"
    case "$jobstate" in COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY) break ;; esac
    sleep 1
done
[ "$jobstate" = COMPLETED ] || {
    timeout 10 scontrol show job "$jobid" >&2 || true
    log_tail "$DIR/log/slurmd.log"
    die "GPU job $jobid did not complete (state '${jobstate:-unknown}')"
}
cuda="$(sed -n 's/^CUDA_VISIBLE_DEVICES=//p' "$out" 2>/dev/null || true)"
case "$cuda" in
'' | unset) die "GPU job $jobid ran without CUDA_VISIBLE_DEVICES (output: $(cat "$out" 2>/dev/null))" ;;
esac
grep -qx 'srun=ok' "$out" || die "srun failed inside job $jobid: $(tail -n 3 "$out" 2>/dev/null)"
say "GPU job $jobid completed with CUDA_VISIBLE_DEVICES=$cuda; srun works inside it"
say "ready: export SLURM_CONF=$CONF  (partition $PARTITION)"
