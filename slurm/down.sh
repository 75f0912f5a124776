#!/usr/bin/env bash
# Stop the local cluster that slurm/up.sh started: cancel its jobs, then stop slurmd, slurmctld
# and munged, each only if its pid file (written when up.sh started it) still names that daemon.
# Never kills by name, and never stops a munged that up.sh found already running.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/common.sh"

stop() { # stop NAME PID_FILE EXECUTABLE
    local name=$1 pid_file=$2 executable=$3 pid
    if ! pid=$(live_pid "$pid_file" "$executable"); then
        rm -f "$pid_file"
        return 0
    fi
    kill -TERM "$pid"
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    rm -f "$pid_file"
    log "$name stopped (pid $pid)"
}

cancel_jobs() {
    controller_up || return 0
    [[ -n "$(squeue --noheader --format=%i)" ]] || return 0
    log "cancelling the jobs still queued or running"
    scancel --partition=local || true
    for _ in $(seq 300); do
        [[ -z "$(squeue --noheader --states=RUNNING,COMPLETING --format=%i)" ]] && return 0
        sleep 0.1
    done
}

if ! head -n 1 "$SLURM_CONF" 2>/dev/null | grep -qF "$MARKER"; then
    log "no cluster of slurm/up.sh's here ($SLURM_CONF is absent or not its own); nothing to stop"
    exit 0
fi
[[ $(id -u) == 0 ]] || die "stopping the local cluster needs root (try: sudo make slurm-down)"
cancel_jobs
stop slurmd "$STATE_DIR/slurmd.pid" "$(command -v slurmd)"
stop slurmctld "$STATE_DIR/slurmctld.pid" "$(command -v slurmctld)"
stop munged "$MUNGE_PID_FILE" "$(command -v munged)"
log "down"
