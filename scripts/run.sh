#!/bin/sh
# Start the peerdex system in the foreground: the log server (when built) and
# the index server on $PORT with logging and liveness probing on, keeping its
# state in $STATE_DIR (default var/, so users and files survive a restart;
# remove it to start fresh).  Ctrl-C stops everything this script started,
# by PID.
set -u
BIN=${BIN:-bin}
PORT=${PORT:-8888}
LOG_PORT=${LOG_PORT:-$((PORT + 1))}
pids=""

stop() {
    trap - INT TERM EXIT
    for pid in $pids; do kill -TERM "$pid" 2>/dev/null; done
    for pid in $pids; do wait "$pid" 2>/dev/null; done
    exit 0
}
trap stop INT TERM EXIT

# The first line says what runs where and how to reach it.
host=$(hostname -I 2>/dev/null | tr ' ' '\n' | grep -m1 '\.' || true)
host=${host:-127.0.0.1}
if [ -x "$BIN/log_server" ]; then
    log_note="log server on 127.0.0.1:$LOG_PORT writing ${LOG_FILE:-operations.log}"
else
    log_note="no log server (bin/log_server not built)"
fi
client="make client"
[ "$PORT" = 8888 ] || client="make client PORT=$PORT"
echo "peerdex: index server on port $PORT (this host: $host), $log_note." \
     "Start a client in another terminal: $client" \
     "(another machine: make client SERVER=$host PORT=$PORT). Ctrl-C stops it all."

if [ -x "$BIN/log_server" ]; then
    "$BIN/log_server" -f "${LOG_FILE:-operations.log}" -p "$LOG_PORT" &
    pids="$pids $!"
    export LOG_RPC_IP=127.0.0.1 LOG_RPC_PORT="$LOG_PORT"
fi
# -L 30: every 30 s each connected user's endpoint is probed; a user whose
# client died is disconnected after 3 failed probes (docs/protocol.md), also
# one restored from the state directory whose client died meanwhile.
"$BIN/server" -p "$PORT" -d "${STATE_DIR:-var}" -L 30 &
pids="$pids $!"
wait
