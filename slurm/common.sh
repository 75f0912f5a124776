# Shared by slurm/up.sh and slurm/down.sh (sourced, not run): where the local cluster keeps its
# files, and how to tell whether a PID in one of its pid files is still the daemon it names.
# Never kills anything by name: a PID is trusted only if its executable is the expected daemon.

STATE_DIR=/var/lib/optbench-slurm # pid files, logs, controller state, slurmd spool
SLURM_CONF=/etc/slurm/slurm.conf  # where every Slurm command looks first
MARKER="# Written by optbench slurm/up.sh"
MUNGE_PID_FILE=$STATE_DIR/munge/munged.pid # exists only if up.sh started munged

log() { echo "slurm: $*"; }
die() {
    echo "slurm: error: $*" >&2
    exit 1
}

# live_pid PID_FILE EXECUTABLE: print the PID if that process is alive and runs EXECUTABLE.
live_pid() {
    local pid_file=$1 executable=$2 pid
    [[ -r $pid_file ]] || return 1
    pid=$(tr -dc '0-9' <"$pid_file")
    [[ -n $pid ]] || return 1
    [[ "$(readlink -f "/proc/$pid/exe" 2>/dev/null)" == "$(readlink -f "$executable")" ]] || return 1
    echo "$pid"
}

munge_works() { munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; }
controller_up() { scontrol ping 2>/dev/null | grep -q "is UP"; }
node_state() { sinfo --noheader --Node --format=%t 2>/dev/null | head -n 1; }
