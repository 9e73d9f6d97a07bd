# Shared helpers for scripts/*: sourced, not run. Paths, pid files and readiness checks.
# shellcheck shell=bash

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN="${BACKTEST_RUN_DIR:-$REPO/.run}"
PIDS="$RUN/pids"
LOGS="$RUN/logs"
# The project virtual environment (created by scripts/setup): the backtest command and every service
# run from it, so a second checkout never re-points the code this one runs.
BASE_PY="${BACKTEST_BASE_PYTHON:-python3.11}"
VENV="${BACKTEST_VENV:-$REPO/.venv}"
PY="${PYTHON:-$VENV/bin/python}"
export PATH="$VENV/bin:$PATH"
NATS_PORT="${BACKTEST_NATS_PORT:-4222}"
NATS_MONITOR_PORT="${BACKTEST_NATS_MONITOR_PORT:-8222}"
MONGO_PORT="${BACKTEST_MONGO_PORT:-27017}"
GATEWAY_PORT="${BACKTEST_GATEWAY_PORT:-8000}"
mkdir -p "$PIDS" "$LOGS"
chmod 700 "$LOGS" # logs hold request lines: owner only

say() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

# pid_alive NAME: true if .run/pids/NAME.pid names a live process.
pid_alive() {
    local f="$PIDS/$1.pid"
    [[ -f "$f" ]] && kill -0 "$(cat "$f")" 2>/dev/null
}

# start_bg NAME LOGFILE CMD...: start CMD in its own session, record its pid; LOGFILE is made 0600.
start_bg() {
    local name="$1" logfile="$2"
    shift 2
    (umask 077 && touch "$logfile") && chmod 600 "$logfile"
    setsid "$@" >>"$logfile" 2>&1 </dev/null &
    echo $! >"$PIDS/$name.pid"
}

# stop_pid NAME [SECONDS]: TERM the process of .run/pids/NAME.pid, KILL after SECONDS (default 15).
stop_pid() {
    local name="$1" grace="${2:-15}" f="$PIDS/$1.pid" pid
    [[ -f "$f" ]] || return 0
    pid="$(cat "$f")"
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 $((grace * 10))); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            say "$name (pid $pid) did not stop in ${grace}s: KILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        say "stopped $name (pid $pid)"
    fi
    rm -f "$f"
}

# wait_for DESCRIPTION SECONDS CMD...: retry CMD every 0.2 s until it succeeds or time runs out.
wait_for() {
    local what="$1" secs="$2"
    shift 2
    local deadline=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
    say "$what ready"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
docker_ready() { docker info >/dev/null 2>&1; }
nats_ready() { curl -sf "http://127.0.0.1:$1/healthz?js-enabled-only=true" >/dev/null; }
mongo_ready() {
    "$PY" -c 'import sys, pymongo
pymongo.MongoClient(sys.argv[1], serverSelectionTimeoutMS=2000).admin.command("ping")' "$1"
}

# redact URI: hide the password of a mongodb:// URI.
redact() { sed -E 's#(://[^:/@]+):[^@]*@#\1:***@#' <<<"$1"; }

# load_env: read .run/env (written by scripts/infra up) into the environment.
load_env() {
    [[ -f "$RUN/env" ]] || die "no $RUN/env: run scripts/infra up first"
    set -a
    # shellcheck disable=SC1091
    source "$RUN/env"
    set +a
}
