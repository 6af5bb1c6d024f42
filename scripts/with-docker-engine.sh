#!/usr/bin/env bash
# Run CMD with a Docker engine available, starting one for the duration if need be.
#
#   scripts/with-docker-engine.sh CMD [ARGS...]
#
# - an engine already answers (`docker info`): exec CMD, nothing else;
# - else, as root with `dockerd` installed: start dockerd in the background (log in
#   reports/dockerd.log, pidfile in a temp dir, socket unix:///var/run/docker.sock), wait for it
#   (60 s at most), run CMD, then stop that dockerd, and only that one (SIGTERM, 20 s, SIGKILL),
#   whatever way CMD ends; the exit status is CMD's;
# - else: say why there is no engine and run CMD anyway (the stack tier skips, with the reason).
#
# Environment: SPOTREG_DOCKERD_LOG (log file), SPOTREG_DOCKERD_START_TIMEOUT (seconds, 60),
# SPOTREG_DOCKERD_STOP_TIMEOUT (seconds, 20), SPOTREG_DOCKERD_ARGS (extra dockerd arguments).
set -uo pipefail

if (($# == 0)); then
    echo "usage: $0 CMD [ARGS...]" >&2
    exit 2
fi

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
socket=/var/run/docker.sock
start_timeout=${SPOTREG_DOCKERD_START_TIMEOUT:-60}
stop_timeout=${SPOTREG_DOCKERD_STOP_TIMEOUT:-20}

say() { printf 'engine: %s\n' "$*" >&2; }

# engine_answers [SECONDS]: does `docker info` (or, without a docker CLI, /_ping) answer in time?
engine_answers() {
    local limit=${1:-20}
    if command -v docker >/dev/null 2>&1; then
        timeout "$limit" docker info >/dev/null 2>&1
    elif command -v curl >/dev/null 2>&1 && [[ -S $socket ]]; then
        [[ $(curl -fsS --max-time "$limit" --unix-socket "$socket" http://localhost/_ping 2>/dev/null) == OK ]]
    else
        return 1
    fi
}

# alive PID: the process exists and is not a zombie waiting to be reaped
alive() {
    local stat
    [[ -r /proc/$1/stat ]] || return 1
    stat=$(<"/proc/$1/stat") || return 1
    stat=${stat##*) }
    [[ ${stat%% *} != Z ]]
}

# runs PID NAME: PID is alive and its command line mentions NAME (a recycled pid does not count)
runs() {
    alive "$1" && [[ $(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null) == *"$2"* ]]
}

if engine_answers; then
    exec "$@"
fi

why=""
if [[ $(id -u) -ne 0 ]]; then
    why="not root, so no dockerd can be started here"
elif ! command -v dockerd >/dev/null 2>&1; then
    why="dockerd is not installed (Debian: apt-get install -y docker.io, or scripts/ensure-debian-packages.sh)"
elif [[ -n ${DOCKER_HOST:-} && ${DOCKER_HOST} != "unix://$socket" ]]; then
    why="DOCKER_HOST=$DOCKER_HOST does not answer; not starting a local dockerd in its place"
fi
if [[ -n $why ]]; then
    say "no Docker engine answers and none can be started: $why"
    say "running without one: the stack tier will be skipped (each test says why)"
    exec "$@"
fi

# A dockerd killed without cleaning up leaves its pidfile, and a new dockerd refuses to start
# while it is there. Remove it when its process is gone; when it is alive, that dockerd may be
# still starting (or stuck): wait for it rather than start a second one on the same data root.
existing_pid=""
if [[ -f /var/run/docker.pid ]]; then
    existing_pid=$(tr -dc '0-9' </var/run/docker.pid)
    if [[ -n $existing_pid ]] && runs "$existing_pid" dockerd; then
        say "a dockerd (pid $existing_pid) runs but does not answer yet; waiting for it, not starting another"
    else
        say "removing stale /var/run/docker.pid (pid ${existing_pid:-?} is not running)"
        rm -f /var/run/docker.pid
        existing_pid=""
    fi
fi

# The same for the containerd a dockerd starts for itself: a new dockerd finding its pidfile with a
# pid that still looks alive (even a zombie nobody reaps) waits for that containerd and gives up.
containerd_pidfile=/var/run/docker/containerd/containerd.pid
if [[ -z $existing_pid && -f $containerd_pidfile ]]; then
    containerd_pid=$(tr -dc '0-9' <"$containerd_pidfile")
    if [[ -z $containerd_pid ]] || ! runs "$containerd_pid" containerd; then
        say "removing stale $containerd_pidfile (pid ${containerd_pid:-?} is not running)"
        rm -f "$containerd_pidfile"
    fi
fi

state_dir=$(mktemp -d "${TMPDIR:-/tmp}/spotreg-dockerd.XXXXXX")
dockerd_pid=""
cleaned=0

# shellcheck disable=SC2317  # invoked from the EXIT trap
stop_dockerd() {
    ((cleaned)) && return 0
    cleaned=1
    if [[ -n $dockerd_pid ]] && alive "$dockerd_pid"; then
        say "stopping the dockerd this run started (pid $dockerd_pid)"
        kill -TERM "$dockerd_pid" 2>/dev/null
        local waited=0
        while alive "$dockerd_pid" && ((waited < stop_timeout * 10)); do
            sleep 0.1
            waited=$((waited + 1))
        done
        if alive "$dockerd_pid"; then
            say "dockerd (pid $dockerd_pid) still running after ${stop_timeout} s: SIGKILL"
            kill -KILL "$dockerd_pid" 2>/dev/null
            # its containerd would outlive it: stop that too, by the pid dockerd recorded
            local containerd_pid
            containerd_pid=$(tr -dc '0-9' <"$containerd_pidfile" 2>/dev/null)
            if [[ -n $containerd_pid ]] && alive "$containerd_pid"; then
                kill -KILL "$containerd_pid" 2>/dev/null
            fi
        fi
        wait "$dockerd_pid" 2>/dev/null
    fi
    rm -rf "$state_dir"
}

rc=0
# shellcheck disable=SC2317  # the EXIT trap
on_exit() {
    stop_dockerd
    exit "$rc"
}
trap on_exit EXIT
trap 'rc=130; exit' INT
trap 'rc=143; exit' TERM

if [[ -z $existing_pid ]]; then
    log=${SPOTREG_DOCKERD_LOG:-$repo_root/reports/dockerd.log}
    if ! mkdir -p "$(dirname "$log")" 2>/dev/null || ! : >>"$log" 2>/dev/null; then
        log=$state_dir/dockerd.log
    fi
    read -r -a extra_args <<<"${SPOTREG_DOCKERD_ARGS:-}"
    say "no Docker engine answers: starting dockerd (log: $log)"
    printf '\n=== %s dockerd started by %s ===\n' "$(date -u +%FT%TZ)" "$0" >>"$log"
    dockerd --host "unix://$socket" --pidfile "$state_dir/dockerd.pid" "${extra_args[@]}" >>"$log" 2>&1 &
    dockerd_pid=$!
    export DOCKER_HOST="unix://$socket"
fi

printf 'engine: waiting for the Docker engine ' >&2
deadline=$((SECONDS + start_timeout))
ready=0
while ((SECONDS < deadline)); do
    if engine_answers 5; then
        ready=1
        break
    fi
    if [[ -n $dockerd_pid ]] && ! alive "$dockerd_pid"; then
        break
    fi
    printf '.' >&2
    sleep 1
done
if ((ready)); then
    printf ' ready\n' >&2
else
    printf ' gave up\n' >&2
    if [[ -n $dockerd_pid ]] && ! alive "$dockerd_pid"; then
        say "dockerd exited during startup; the end of its log ($log):"
    else
        say "no answer after ${start_timeout} s${log:+; the end of its log ($log):}"
    fi
    [[ -n ${log:-} ]] && tail -n 20 "$log" | sed 's/^/engine:   /' >&2
    say "running without an engine: the stack tier will be skipped (each test says why)"
fi

"$@"
rc=$?
exit "$rc"
