#!/usr/bin/env bash
# Stops the one-node test cluster of tests/slurm/start.sh: cancels its jobs, then stops
# slurmd, slurmctld and munged by their pid files in $TRACEKD_SLURM_DIR (default
# /tmp/tracekd-slurm), and removes start.sh's link /etc/slurm/slurm.conf. Safe to run when
# nothing is running; never touches other daemons.
set -uo pipefail

DIR="${TRACEKD_SLURM_DIR:-/tmp/tracekd-slurm}"
export SLURM_CONF="$DIR/etc/slurm.conf"
export PATH="$PATH:/usr/sbin:/sbin"

say() { printf 'stop.sh: %s\n' "$*"; }

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

if alive "$DIR/run/slurmctld.pid" && command -v scancel >/dev/null 2>&1; then
    timeout 15 scancel --partition=tracekd 2>/dev/null || true
fi

# stop a daemon by its pid file: TERM, up to 15 s, then KILL
stop() {
    local name=$1 pidfile=$2 pid
    if ! alive "$pidfile"; then
        rm -f "$pidfile"
        return 0
    fi
    pid="$(cat "$pidfile")"
    say "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 30); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "$name did not stop; killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
}

stop slurmd "$DIR/run/slurmd.pid"
stop slurmctld "$DIR/run/slurmctld.pid"
stop munged "$DIR/run/munged.pid"
# start.sh's link of /etc/slurm/slurm.conf, never a real file
if [ -L /etc/slurm/slurm.conf ] && [ "$(readlink /etc/slurm/slurm.conf)" = "$SLURM_CONF" ]; then
    rm -f /etc/slurm/slurm.conf
fi
say "stopped (configuration and logs kept in $DIR)"
