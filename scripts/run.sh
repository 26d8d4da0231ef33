#!/bin/sh
# Start the peerdex system in the foreground: the log server and the index
# server on $PORT with logging and liveness probing on, both holding the
# shared key $LOG_KEY (created, mode 0600, when missing).  The index server
# keeps its state in $STATE_DIR (default var/, so users and files survive a
# restart; remove it to start fresh).  The live view (and /api/state,
# /metrics) is served on 127.0.0.1:$HTTP_PORT (default the port after the log
# server's); docs/lab-demo.md shows it to a room.
#
# If either server cannot start, everything this script started is stopped
# and it exits 1, saying which.  A server that dies later is started again
# (why it died on stderr, a pause of 1, 2, 4, 8 s between tries); after
# $MAX_DEATHS deaths within $DEATH_WINDOW s it gives up and exits 1.  Nothing
# acknowledged is lost meanwhile: the index server queues log entries (in its
# journal under $STATE_DIR) until the log server is back, and its state
# directory holds every operation it acknowledged.
#
# SIGTERM stops everything by PID and exits 0; Ctrl-C (SIGINT) does the same
# and then ends by SIGINT (status 130) so the caller sees it was asked to stop.
set -u
BIN=${BIN:-bin}
PORT=${PORT:-8888}
LOG_PORT=${LOG_PORT:-$((PORT + 1))}
HTTP_PORT=${HTTP_PORT:-$((PORT + 2))}
LOG_KEY=${LOG_KEY:-operations.key}
LOG_FILE=${LOG_FILE:-operations.log}
STATE_DIR=${STATE_DIR:-var}
MAX_DEATHS=${MAX_DEATHS:-5}
DEATH_WINDOW=${DEATH_WINDOW:-30}
log_pid=""
server_pid=""
deaths=""       # the times (date +%s) of the deaths in the last DEATH_WINDOW s

# Stop both servers (the index server first: it hands its queue to the log
# server on the way out) and wait for them.
stop_servers() {
    for pid in $server_pid $log_pid; do
        kill -TERM "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
}

stop() {
    trap - INT TERM EXIT
    stop_servers
    exit "${1:-0}"
}

# Ctrl-C: stop quietly.  Under make, exit 0: make, which took the same
# SIGINT, then ends by it with no "*** Interrupt" message; run directly, end
# by SIGINT ourselves.
interrupted() {
    trap - INT TERM EXIT
    stop_servers
    [ -n "${MAKELEVEL:-}" ] && exit 0
    kill -INT $$
    exit 130
}
trap interrupted INT
trap 'stop 0' TERM
trap 'stop 1' EXIT

fail() {
    echo "run.sh: $*; stopping" >&2
    stop 1
}

# Whether the process $1 itself listens on TCP port $2: a listening socket
# on that port (ss asks the kernel for listening sockets only, so the
# thousands of closed connections a busy server leaves in TIME_WAIT are not
# read) whose inode is one of the process's descriptors (a port another
# program holds does not count).
listening() {
    for ino in $(ss -Hltne "sport = :$2" 2>/dev/null | grep -o 'ino:[0-9]*' | cut -d: -f2); do
        ls -l "/proc/$1/fd" 2>/dev/null | grep -q "socket:\[$ino\]" && return 0
    done
    return 1
}

# Wait until the process $1 itself listens on port $2, at most $3 tenths of
# a second (default 100); fail if it exits first.
wait_listening() {
    tries=0
    until listening "$1" "$2"; do
        kill -0 "$1" 2>/dev/null || return 1
        tries=$((tries + 1))
        [ "$tries" -lt "${3:-100}" ] || return 1
        sleep 0.1
    done
}

# The first line says what runs where and how to reach it.
host=$(hostname -I 2>/dev/null | tr ' ' '\n' | grep -m1 '\.' || true)
host=${host:-127.0.0.1}
log_note="log server on port $LOG_PORT (every address; LOG_PORT=n to change)"
log_note="$log_note writing $LOG_FILE"
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

start_log() {
    "$BIN/log_server" -f "$LOG_FILE" -p "$LOG_PORT" -k "$LOG_KEY" &
    log_pid=$!
}

# It reads its state first: a large one takes a while.  -L 30: every 30 s each
# connected user's endpoint is probed; a user whose client died is
# disconnected after 3 failed probes (docs/protocol.md), one restored from
# the state directory whose client died meanwhile by the first probe.  -i 64:
# connections at once from one source (an IPv4 address, or an IPv6 /64); -f,
# -b: files per user and bytes of one user's listing (docs/security.md); -H:
# the live view on loopback only (docs/http.md).  The bare bin/server has none
# of these.  Users our client registers are authenticated (AUTH,
# docs/protocol.md): their secrets live in the state directory (0600).
start_index() {
    "$BIN/server" -p "$PORT" -d "$STATE_DIR" -k "$LOG_KEY" -L 30 \
        -i 64 -f 100000 -b 33554432 -H "127.0.0.1:$HTTP_PORT" &
    server_pid=$!
}

start_log
wait_listening "$log_pid" "$LOG_PORT" ||
    fail "the log server did not start (see above; LOG_PORT=n picks another port)"
export LOG_RPC_IP=127.0.0.1 LOG_RPC_PORT="$LOG_PORT"
start_index
wait_listening "$server_pid" "$PORT" 600 ||
    fail "the index server did not start (see above; PORT=n picks another port)"

# How a process ended, from the status `wait` gave.
ended() {
    if [ "$1" -gt 128 ]; then
        echo "killed by signal $(($1 - 128)) ($(kill -l $(($1 - 128)) 2>/dev/null))"
    else
        echo "exit status $1"
    fi
}

# The server $1 (its PID in $2) died: say why, count the death, pause (more
# after each recent death), or give up after MAX_DEATHS in DEATH_WINDOW s.
died() {
    wait "$2"
    how=$(ended $?)
    now=$(date +%s)
    recent=""
    for t in $deaths $now; do
        [ $((now - t)) -lt "$DEATH_WINDOW" ] && recent="$recent $t"
    done
    deaths=$recent
    n=$(echo $deaths | wc -w)
    if [ "$n" -ge "$MAX_DEATHS" ]; then
        fail "the $1 (pid $2) died: $how; $n deaths in $DEATH_WINDOW s, giving up"
    fi
    pause=$((1 << (n - 1)))
    echo "run.sh: the $1 (pid $2) died: $how; starting it again in $pause s" \
         "($n of $MAX_DEATHS deaths allowed in $DEATH_WINDOW s)" >&2
    sleep "$pause"
}

# Both run: watch them; one that dies is started again.
while :; do
    sleep 0.2
    if ! kill -0 "$log_pid" 2>/dev/null; then
        died "log server" "$log_pid"
        start_log
    fi
    if ! kill -0 "$server_pid" 2>/dev/null; then
        died "index server" "$server_pid"
        start_index
    fi
done
