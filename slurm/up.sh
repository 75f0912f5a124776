#!/usr/bin/env bash
# Start a real single-node Slurm cluster on this machine (Debian's munge, slurmctld, slurmd),
# for the tests marked `slurm` and for trying sweeps: `make slurm-up`, then `make slurm-down`.
# Installs the packages if missing (as root, non-interactive), writes /etc/slurm/slurm.conf for
# this machine from slurm/slurm.conf.in, starts what is not running, and waits until the node
# is idle. Idempotent: running it again with everything up changes nothing. Never touches a
# slurm.conf it did not write (a real cluster's config is left alone).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/common.sh"
WAIT_SECONDS=${SLURM_UP_WAIT_SECONDS:-60}

everything_up() {
    [[ -r $SLURM_CONF ]] && munge_works && controller_up && [[ "$(node_state)" =~ ^(idle|mix|alloc)$ ]]
}

install_packages() {
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null &&
        command -v sbatch >/dev/null && command -v munged >/dev/null && return 0
    log "installing slurmctld slurmd slurm-client munge (apt-get)"
    # Keep the packages' maintainer scripts from starting the daemons themselves: this script
    # starts them, with its own config, and tracks their PIDs.
    local policy=/usr/sbin/policy-rc.d made_policy=""
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && made_policy=1
    fi
    local apt=(apt-get -q -y -o DPkg::Lock::Timeout=300)
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" update >/dev/null
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" install --no-install-recommends \
        slurmctld slurmd slurm-client munge >/dev/null
    [[ -n $made_policy ]] && rm -f "$policy"
    return 0
}

write_config() {
    if [[ -e $SLURM_CONF ]] && ! head -n 1 "$SLURM_CONF" | grep -qF "$MARKER"; then
        die "$SLURM_CONF exists and was not written by this script; it is left alone.
This script starts a local test cluster only on a machine without a Slurm config."
    fi
    local host resources cpus memory
    host=$(hostname -s)
    # `slurmd -C` prints this machine's node line: CPUs, sockets, cores, threads, RealMemory.
    resources=$(slurmd -C | head -n 1 | sed -e 's/^NodeName=[^ ]* //')
    cpus=$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$resources")
    memory=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$resources")
    mkdir -p "$(dirname "$SLURM_CONF")" "$STATE_DIR/state" "$STATE_DIR/spool"
    sed -e "s|@HOST@|$host|g" -e "s|@STATE_DIR@|$STATE_DIR|g" \
        -e "s|@RESOURCES@|$resources|" -e "s|@MEM_PER_CPU@|$((memory / cpus))|" \
        "$HERE/slurm.conf.in" >"$SLURM_CONF.tmp"
    mv "$SLURM_CONF.tmp" "$SLURM_CONF"
    log "wrote $SLURM_CONF ($resources)"
}

start_munge() {
    if munge_works; then
        return 0 # ours from an earlier run, or the machine's own: either way, usable
    fi
    [[ -s /etc/munge/munge.key ]] || runuser -u munge -- mungekey --create
    install -d -o munge -g munge -m 0755 /run/munge "$STATE_DIR/munge"
    runuser -u munge -- munged --pid-file="$MUNGE_PID_FILE" \
        --log-file="$STATE_DIR/munge/munged.log"
    log "munged started (pid $(cat "$MUNGE_PID_FILE"))"
}

start_slurmctld() {
    controller_up && return 0
    # -c: forget jobs from an earlier cluster (killed with the machine) instead of rerunning them.
    slurmctld -c
    log "slurmctld started"
}

start_slurmd() {
    live_pid "$STATE_DIR/slurmd.pid" "$(command -v slurmd)" >/dev/null && return 0
    slurmd
    log "slurmd started"
}

wait_until_idle() {
    local deadline=$((SECONDS + WAIT_SECONDS))
    until everything_up; do
        if ((SECONDS > deadline)); then
            tail -n 20 "$STATE_DIR/slurmctld.log" "$STATE_DIR/slurmd.log" >&2 || true
            die "the node is not idle after ${WAIT_SECONDS}s (state: $(node_state || echo '?'))"
        fi
        sleep 0.5
    done
}

main() {
    if everything_up; then
        log "already up: $(sinfo --noheader --format='partition %P, %D node, %c CPUs, %m MB')"
        return 0
    fi
    [[ $(id -u) == 0 ]] || die "starting the local cluster needs root (try: sudo make slurm-up)"
    install_packages
    controller_up || write_config
    start_munge
    start_slurmctld
    start_slurmd
    wait_until_idle
    log "up: $(sinfo --noheader --format='partition %P, %D node, %c CPUs, %m MB')"
}

main "$@"
