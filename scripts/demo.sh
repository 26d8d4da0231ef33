#!/bin/sh
# demo.sh - a whole peerdex session in one terminal, the session of
# docs/lab-demo.md: an index server (and the operation log when bin/log_server
# exists); alice publishes, bob lists, finds the file with SEARCH and downloads
# match #1 (checksum compared), alice
# DELETEs, bob's second download fails, both QUIT, and a third client, carol,
# sees neither in LIST_USERS.  Prints what each client printed.  Everything it
# starts is stopped by PID on exit.
set -eu
BIN=${BIN:-bin}
PYTHON=${PYTHON:-/usr/bin/python3}
CLIENT="$PYTHON client/client.py"
T=$(mktemp -d /tmp/peerdex-demo.XXXXXX)
PIDS=""

cleanup() {
    exec 3>&- 4>&- 2>/dev/null || true
    for p in $PIDS; do kill "$p" 2>/dev/null || true; done
    for p in $PIDS; do wait "$p" 2>/dev/null || true; done
    rm -rf "$T"
}
trap cleanup EXIT INT TERM

# wait_for FILE REGEX [N]: until N lines (default 1) of FILE match (at most 15 s).
wait_for() {
    i=0
    until [ "$(grep -Ec "$2" "$1" 2>/dev/null)" -ge "${3:-1}" ]; do
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

# bob also stays up, so that alice's DELETE comes between his two downloads.
# He asks for /etc/passwd on purpose (never served: a FAIL line).
mkfifo "$T/bob.in"
$CLIENT -s 127.0.0.1 -p "$PORT" <"$T/bob.in" >"$T/bob.out" 2>&1 &
PIDS="$PIDS $!"
exec 4>"$T/bob.in"
for cmd in "REGISTER bob" "CONNECT bob" "LIST_USERS" "LIST_CONTENT alice" \
           "SEARCH week lect" "GET_FILE #1 $T/bob" \
           "GET_FILE alice /etc/passwd $T/bob/passwd"; do
    echo "$cmd" >&4
done
wait_for "$T/bob.out" '^c> GET_FILE' 2

# alice withdraws the file: bob's next GET_FILE of it fails.
echo "DELETE $T/alice/lecture.bin" >&3
wait_for "$T/alice.out" 'DELETE (OK|FAIL)'
echo "GET_FILE alice $T/alice/lecture.bin $T/bob/again.bin" >&4
wait_for "$T/bob.out" '^c> GET_FILE' 3

# Both leave; a third client sees neither of them connected.
echo "QUIT" >&3
echo "QUIT" >&4
exec 3>&- 4>&-
wait_for "$T/alice.out" 'DISCONNECT (OK|FAIL)'
wait_for "$T/bob.out" 'DISCONNECT (OK|FAIL)'
$CLIENT -s 127.0.0.1 -p "$PORT" >"$T/carol.out" 2>&1 <<EOF2
REGISTER carol
CONNECT carol
LIST_USERS
QUIT
EOF2

show() { printf '\n== %s\n' "$1"; sed 's/^/   /' "$2"; }
show "alice (shares $T/alice/lecture.bin)" "$T/alice.out"
show "bob (downloads it; after alice's DELETE the second download fails)" "$T/bob.out"
show "carol (a third client: alice and bob are gone)" "$T/carol.out"
show "index server" "$T/server.out"
[ -f "$T/operations.log" ] && show "operation log" "$T/operations.log"

a=$(sha256sum <"$T/alice/lecture.bin" | cut -d' ' -f1)
b=$(sha256sum <"$T/bob/lecture.bin" | cut -d' ' -f1)
printf '\nsha256 alice: %s\nsha256 bob:   %s\n' "$a" "$b"
if [ "$a" = "$b" ]; then echo "demo: the file arrived byte-identical"; else
    echo "demo: CHECKSUM MISMATCH" >&2; exit 1; fi
