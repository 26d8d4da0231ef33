"""In memory mode (no -d) the operation log's order is the order in which
operations took effect: replaying the log in its order gives every client
the result code it was answered (docs/oplog.md, "Order")."""
import threading

import harness
from log_lib import wait_lines

THREADS = 12
PER_THREAD = 500
USERS = ("u0", "u1")


def model_code(state, op, user):
    """The classic result code of op on the model {user: connected}, applied."""
    if op == "REGISTER":
        if user in state:
            return 1
        state[user] = False
    elif op == "UNREGISTER":
        if user not in state:
            return 1
        del state[user]
    elif op == "CONNECT":
        if user not in state:
            return 1
        if state[user]:
            return 2
        state[user] = True
    elif op == "DISCONNECT":
        if user not in state:
            return 1
        if not state[user]:
            return 2
        state[user] = False
    return 0


def test_log_order_is_effect_order_under_conflicting_threads(logs, logged_server):
    log = logs(port=0)
    srv = logged_server(log.port)
    answers = {}                # date-time -> (op, user, code)
    lock = threading.Lock()

    def worker(t):
        ops = ("REGISTER", "CONNECT", "DISCONNECT", "UNREGISTER")
        for i in range(PER_THREAD):
            op = ops[(i + t) % len(ops)]
            user = USERS[(i // len(ops) + t) % len(USERS)]
            # A date-time of the protocol's shape that names this request.
            dt = "%02d/%02d/%04d 00:00:00" % (t + 1, 1 + i // 1000, i % 1000 + 1000)
            args = (op, user, "4000") if op == "CONNECT" else (op, user)
            c = harness.code(srv.port, *args, datetime=dt)
            with lock:
                answers[dt] = (op, user, c)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    total = THREADS * PER_THREAD
    assert len(answers) == total
    assert all(c in (0, 1, 2) for _, _, c in answers.values())
    lines = wait_lines(log.path, total)
    assert len(lines) == total

    state, disagreements = {}, []
    for line in lines:
        user, op, dt = line.split(" ", 2)
        assert answers[dt][:2] == (op, user), line
        expected = model_code(state, op, user)
        if expected != answers[dt][2]:
            disagreements.append((line, expected, answers[dt][2]))
    assert disagreements == []
