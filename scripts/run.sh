#!/bin/sh
# Start the peerdex system in the foreground: the log server and the index
# server on $PORT with logging and liveness probing on, both holding the
# shared key $LOG_KEY (created, mode 0600, when missing).  The index server
# keeps its state in $STATE_DIR (default var/, so users and files survive a
# restart; remove it to start fresh).  If either server cannot start, or
# stops later, everything this script started is stopped and it exits 1,
# saying which; Ctrl-C stops everything by PID and exits 0.  The live view
# (and /api/state, /metrics) is served on 127.0.0.1:$HTTP_PORT (default the
# port after the log server's); docs/lab-demo.md shows it to a room.
set -u
BIN=${BIN:-bin}
PORT=${PORT:-8888}
LOG_PORT=${LOG_PORT:-$((PORT + 1))}
HTTP_PORT=${HTTP_PORT:-$((PORT + 2))}
LOG_KEY=${LOG_KEY:-operations.key}
PYTHON=${PYTHON:-/usr/bin/python3}
pids=""

stop() {
    trap - INT TERM EXIT
    for pid in $pids; do kill -TERM "$pid" 2>/dev/null; done
    for pid in $pids; do wait "$pid" 2>/dev/null; done
    exit "${1:-0}"
}
trap 'stop 0' INT TERM
trap 'stop 1' EXIT

fail() {
    echo "run.sh: $*; stopping" >&2
    stop 1
}

# Wait until the process $1 listens on port $2, at most $3 tenths of a
# second (default 100); fail if it exits first.
wait_listening() {
    tries=0
    until "$PYTHON" -c 'import socket, sys
socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.5).close()' "$2" 2>/dev/null; do
        kill -0 "$1" 2>/dev/null || return 1
        tries=$((tries + 1))
        [ "$tries" -lt "${3:-100}" ] || return 1
        sleep 0.1
    done
    # The port may answer for another program: the process must live on.
    sleep 0.3
    kill -0 "$1" 2>/dev/null
}

# The first line says what runs where and how to reach it.
host=$(hostname -I 2>/dev/null | tr ' ' '\n' | grep -m1 '\.' || true)
host=${host:-127.0.0.1}
log_note="log server on 127.0.0.1:$LOG_PORT writing ${LOG_FILE:-operations.log}"
client="make client"
[ "$PORT" = 8888 ] || client="make client PORT=$PORT"
echo "peerdex: index server on port $PORT (this host: $host)," \
     "live view at http://127.0.0.1:$HTTP_PORT/, $log_note." \
     "Start a client in another terminal: $client" \
     "(another machine: make client SERVER=$host PORT=$PORT). Ctrl-C stops it all."

if [ ! -e "$LOG_KEY" ]; then
    (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' > "$LOG_KEY") ||
        fail "cannot create the log key $LOG_KEY"
    echo "run.sh: created the log key $LOG_KEY" >&2
fi

"$BIN/log_server" -f "${LOG_FILE:-operations.log}" -p "$LOG_PORT" -k "$LOG_KEY" &
log_pid=$!
pids="$pids $log_pid"
wait_listening "$log_pid" "$LOG_PORT" || fail "the log server did not start (see above)"
export LOG_RPC_IP=127.0.0.1 LOG_RPC_PORT="$LOG_PORT"

# It reads its state first: a large one takes a while.  -L 30: every 30 s each
# connected user's endpoint is probed; a user whose client died is
# disconnected after 3 failed probes (docs/protocol.md), also one restored
# from the state directory whose client died meanwhile.  -i 64: connections
# at once from one source (an IPv4 address, or an IPv6 /64); -f, -b: files
# per user and bytes of one user's listing (docs/security.md); -H: the live
# view on loopback only (docs/http.md).  The bare bin/server has none of
# these.  Users our client registers are authenticated (AUTH,
# docs/protocol.md): their secrets live in var/ (0600).
"$BIN/server" -p "$PORT" -d "${STATE_DIR:-var}" -k "$LOG_KEY" -L 30 \
    -i 64 -f 100000 -b 33554432 -H "127.0.0.1:$HTTP_PORT" &
server_pid=$!
pids="$pids $server_pid"
wait_listening "$server_pid" "$PORT" 600 || fail "the index server did not start (see above)"

# Both run: watch them; the first to stop ends the run.
while kill -0 "$log_pid" 2>/dev/null && kill -0 "$server_pid" 2>/dev/null; do
    sleep 1
done
kill -0 "$log_pid" 2>/dev/null || fail "the log server stopped"
fail "the index server stopped"
