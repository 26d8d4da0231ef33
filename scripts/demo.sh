#!/bin/sh
# demo.sh - a whole peerdex session in one terminal: an index server (and the
# operation log when bin/log_server exists), two clients, a download, and its
# checksum; bob finds the file with SEARCH and downloads match #1.  Prints what each client printed.  Everything it starts is
# stopped by PID on exit.
set -eu
BIN=${BIN:-bin}
PYTHON=${PYTHON:-/usr/bin/python3}
CLIENT="$PYTHON client/client.py"
T=$(mktemp -d /tmp/peerdex-demo.XXXXXX)
PIDS=""

cleanup() {
    exec 3>&- 2>/dev/null || true
    for p in $PIDS; do kill "$p" 2>/dev/null || true; done
    for p in $PIDS; do wait "$p" 2>/dev/null || true; done
    rm -rf "$T"
}
trap cleanup EXIT INT TERM

# wait_for FILE REGEX: until a line of FILE matches (at most 15 s).
wait_for() {
    i=0
    until grep -Eq "$2" "$1" 2>/dev/null; do
        i=$((i + 1))
        [ $i -le 300 ] || { echo "demo: timed out waiting for '$2' in $1" >&2; exit 1; }
        sleep 0.05
    done
}

if [ -x "$BIN/log_server" ]; then
    "$BIN/log_server" -f "$T/operations.log" -p 0 >"$T/log.out" 2>&1 &
    PIDS="$PIDS $!"
    wait_for "$T/log.out" 'listening|port [0-9]+'
    LOG_PORT=$(grep -Eo 'port [0-9]+|:[0-9]+' "$T/log.out" | head -1 | grep -Eo '[0-9]+')
    export LOG_RPC_IP=127.0.0.1 LOG_RPC_PORT="$LOG_PORT"
fi
"$BIN/server" -p 0 >"$T/server.out" 2>&1 &
PIDS="$PIDS $!"
wait_for "$T/server.out" '^s> init server'
PORT=$(sed -n 's/^s> init server .*:\([0-9]*\)$/\1/p' "$T/server.out")

# The file alice shares: 5 MB of random bytes.
mkdir -p "$T/alice" "$T/bob"
head -c 5242880 /dev/urandom >"$T/alice/lecture.bin"

# alice stays up (commands through a FIFO) while bob downloads from her.
mkfifo "$T/alice.in"
$CLIENT -s 127.0.0.1 -p "$PORT" <"$T/alice.in" >"$T/alice.out" 2>&1 &
PIDS="$PIDS $!"
exec 3>"$T/alice.in"
for cmd in "REGISTER alice" "CONNECT alice" "PUBLISH $T/alice/lecture.bin week 1 lecture"; do
    echo "$cmd" >&3
done
wait_for "$T/alice.out" 'PUBLISH (OK|FAIL)'

# bob's script asks for /etc/passwd on purpose (a FAIL line), so his client
# exits 1: that is expected here.
$CLIENT -s 127.0.0.1 -p "$PORT" >"$T/bob.out" 2>&1 <<EOF2 || true
REGISTER bob
CONNECT bob
LIST_USERS
LIST_CONTENT alice
SEARCH week lect
GET_FILE #1 $T/bob
GET_FILE alice /etc/passwd $T/bob/passwd
QUIT
EOF2

echo "QUIT" >&3
exec 3>&-
wait_for "$T/alice.out" 'DISCONNECT (OK|FAIL)'

show() { printf '\n== %s\n' "$1"; sed 's/^/   /' "$2"; }
show "alice (shares $T/alice/lecture.bin)" "$T/alice.out"
show "bob (downloads it)" "$T/bob.out"
show "index server" "$T/server.out"
[ -f "$T/operations.log" ] && show "operation log" "$T/operations.log"

a=$(sha256sum <"$T/alice/lecture.bin" | cut -d' ' -f1)
b=$(sha256sum <"$T/bob/lecture.bin" | cut -d' ' -f1)
printf '\nsha256 alice: %s\nsha256 bob:   %s\n' "$a" "$b"
if [ "$a" = "$b" ]; then echo "demo: the file arrived byte-identical"; else
    echo "demo: CHECKSUM MISMATCH" >&2; exit 1; fi
