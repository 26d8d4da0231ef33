/*
 * liveness.c - the prober thread and session expiry; see liveness.h.
 *
 * A round copies the connected endpoints out of the registry (under its
 * lock, memory work only), then probes them with non-blocking connect()s,
 * up to PROBES_AT_ONCE in flight, in one poll() loop, outside every lock.
 * A probe succeeds when the connection is made (it is closed at once); it
 * fails when refused, unreachable, or not made within the probe timeout.
 * A probe this host could not even try (no descriptor, no local port) says
 * nothing about the peer and counts neither way.
 *
 * The prober thread alone owns `tracked`, the count of failures in a row of
 * each session, so that table needs no lock.  The settings are written once
 * by liveness_start() before any thread reads them.
 */
#define _GNU_SOURCE
#include "liveness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Make uthash report allocation failure instead of calling exit(). */
#define HASH_NONFATAL_OOM 1
#include <uthash.h>
#undef uthash_nonfatal_oom
#define uthash_nonfatal_oom(obj) (add_failed = true)

#include "clock.h"
#include "console.h"
#include "metrics.h"
#include "ops.h"
#include "diag.h"

#define PROBES_AT_ONCE 256

enum probe_result { PROBE_UNKNOWN, PROBE_ALIVE, PROBE_DEAD };

/* One session's failures in a row, in `tracked`, keyed by session. */
struct tracked {
    UT_hash_handle hh;
    uint64_t session;
    unsigned failures;
    unsigned long round;        /* last round that saw the session */
};

/* Set by liveness_start(), read-only afterwards. */
static bool enabled;
static unsigned interval_ms;
static unsigned max_failures;
static struct registry *registry;
static int stop_fd = -1;        /* an eventfd: readable once stopping */
static pthread_t thread;

/* Owned by the prober thread. */
static struct tracked *tracked;

/*
 * CONNECT-on-conflict probes (liveness_before_connect), per session: when
 * the last one began and how many failed in a row.  A flood of conflicting
 * CONNECTs must neither drive probes at the user nor outvote one live
 * answer, so a session is probed this way at most once per interval and is
 * expired only after as many failures in a row as the regular rounds need
 * (one for an authenticated user, whose CONNECT proved it is that user).
 * conflict_lock guards `conflicts` and every entry; connection threads take
 * it for memory work only, never across a probe.
 */
struct conflict {
    UT_hash_handle hh;
    uint64_t session;
    int64_t last_ms;
    unsigned failures;
};
static pthread_mutex_t conflict_lock = PTHREAD_MUTEX_INITIALIZER;
static struct conflict *conflicts;

/* What a connect() error says about the peer. */
static enum probe_result verdict(int err)
{
    switch (err) {
    case 0:
        return PROBE_ALIVE;
    case ECONNREFUSED: case ECONNRESET: case ETIMEDOUT:
    case ENETUNREACH: case EHOSTUNREACH: case ENETDOWN: case EHOSTDOWN:
        return PROBE_DEAD;
    default:                    /* our own trouble (EADDRNOTAVAIL, ENOBUFS...) */
        return PROBE_UNKNOWN;
    }
}

/*
 * Start a non-blocking connection to e.  Returns the socket while the
 * connection is under way; else -1 with *result the outcome already known.
 */
static int probe_begin(const struct reg_endpoint *e, enum probe_result *result)
{
    struct sockaddr_storage ss = {0};
    struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    socklen_t len;
    *result = PROBE_UNKNOWN;
    if (inet_pton(AF_INET, e->ip, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)e->port);
        len = sizeof *in4;
    } else if (inet_pton(AF_INET6, e->ip, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)e->port);
        len = sizeof *in6;
    } else {
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&ss, len) == 0) {
        *result = PROBE_ALIVE;
    } else if (errno == EINPROGRESS) {
        return fd;
    } else {
        *result = verdict(errno);
    }
    close(fd);
    return -1;
}

/* The outcome of a connection that poll() reported ready. */
static enum probe_result probe_end(int fd)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
    close(fd);
    return verdict(err);
}

/*
 * Probe the n endpoints e[], PROBES_AT_ONCE at a time, each within
 * LIVENESS_PROBE_TIMEOUT_MS, writing result[i] for e[i].  With a stop
 * descriptor (>= 0), return false as soon as it becomes readable (the
 * results are then incomplete).  Uses no shared state: any thread may call
 * it.
 */
static bool probe_all(const struct reg_endpoint *e, size_t n,
                      enum probe_result *result, int stopfd)
{
    struct pollfd pfd[PROBES_AT_ONCE + 1];
    size_t which[PROBES_AT_ONCE];       /* pfd[k + 1] probes e[which[k]] */
    int64_t until[PROBES_AT_ONCE];
    size_t busy = 0, next = 0;
    bool stopped = false;

    pfd[0] = (struct pollfd){.fd = stopfd, .events = POLLIN};
    while (!stopped && (next < n || busy > 0)) {
        while (busy < PROBES_AT_ONCE && next < n) {
            int fd = probe_begin(&e[next], &result[next]);
            if (fd >= 0) {
                pfd[busy + 1] = (struct pollfd){.fd = fd, .events = POLLOUT};
                which[busy] = next;
                until[busy] = clock_ms() + LIVENESS_PROBE_TIMEOUT_MS;
                busy++;
            }
            next++;
        }
        if (busy == 0)
            break;
        int64_t now = clock_ms(), soonest = until[0];
        for (size_t k = 1; k < busy; k++)
            if (until[k] < soonest)
                soonest = until[k];
        int wait = soonest > now ? (int)(soonest - now) : 0;
        if (poll(pfd, busy + 1, wait) < 0 && errno != EINTR)
            poll(NULL, 0, 10);          /* ENOMEM: try again shortly */
        stopped = pfd[0].revents != 0;
        now = clock_ms();
        for (size_t k = 0; k < busy;) {
            struct pollfd *p = &pfd[k + 1];
            if (p->revents != 0 || now >= until[k] || stopped) {
                if (p->revents != 0)
                    result[which[k]] = probe_end(p->fd);
                else {
                    close(p->fd);
                    result[which[k]] = stopped ? PROBE_UNKNOWN : PROBE_DEAD;
                }
                busy--;                 /* move the last one into slot k */
                *p = pfd[busy + 1];
                which[k] = which[busy];
                until[k] = until[busy];
            } else {
                k++;
            }
        }
    }
    return !stopped;
}

/*
 * Expire e's session, saying why on the console, through the one path of
 * operations (ops.h): a DISCONNECT of that session only, logged with the
 * server's date-time and the path REG_EXPIRED_MARK.  When the log cannot
 * take it (a full queue, a journal that refuses it), the session stays for
 * the next round.  Returns true when the session is over (expired here, or
 * ended otherwise meanwhile).
 */
static bool expire(struct registry *reg, const struct reg_endpoint *e,
                   const char *why)
{
    char datetime[32];
    server_datetime(datetime, sizeof datetime);
    struct reg_op op = {.op = OP_DISCONNECT, .datetime = datetime, .user = e->name,
                        .path = REG_EXPIRED_MARK, .session = e->session};
    enum reg_status st = ops_perform(reg, &op, NULL);
    if (st == REG_NO_MEMORY)
        return false;                   /* the log refused it: next round */
    if (st == REG_OK) {
        metrics_expiry(e->name);
        /* The user name came from the network: escaped (see console.h). */
        char name[CONSOLE_ESCAPED_MAX(REG_NAME_MAX)];
        console_printf("s> EXPIRED %s %s %u (%s)\n",
                       console_escape(e->name, name, sizeof name), e->ip, e->port, why);
    }
    return true;
}

/*
 * Count round's results into `tracked` and expire every session that has
 * now failed max_failures rounds in a row; forget sessions the round did
 * not see (they ended).
 */
static void account(const struct reg_endpoint *e, const enum probe_result *result,
                    size_t n, unsigned long round)
{
    /* Round 1 runs as the server starts: a session there was restored from
     * the state directory and its client has not been seen since the
     * restart, so one failed probe ends it. */
    unsigned need = round == 1 ? 1 : max_failures;
    char why[64];
    snprintf(why, sizeof why, "%u probes failed", need);
    for (size_t i = 0; i < n; i++) {
        if (result[i] != PROBE_UNKNOWN)
            metrics_probe(result[i] == PROBE_DEAD);
        struct tracked *t;
        HASH_FIND(hh, tracked, &e[i].session, sizeof e[i].session, t);
        if (t == NULL) {
            if (result[i] != PROBE_DEAD)
                continue;               /* only failing sessions are tracked */
            t = calloc(1, sizeof *t);
            if (t == NULL)
                continue;
            bool add_failed = false;
            t->session = e[i].session;
            HASH_ADD(hh, tracked, session, sizeof t->session, t);
            if (add_failed) {
                free(t);
                continue;
            }
        }
        t->round = round;
        if (result[i] == PROBE_ALIVE)
            t->failures = 0;
        else if (result[i] == PROBE_DEAD)
            t->failures++;
        if (t->failures >= need && expire(registry, &e[i], why)) {
            HASH_DEL(tracked, t);
            free(t);
        }
    }
    struct tracked *t, *tmp;
    /* uthash keeps the next element in tmp, so deleting t here is safe. */
    // NOLINTBEGIN(clang-analyzer-unix.Malloc)
    HASH_ITER(hh, tracked, t, tmp) {
        if (t->round != round || t->failures == 0) {
            HASH_DEL(tracked, t);
            free(t);
        }
    }
    // NOLINTEND(clang-analyzer-unix.Malloc)
}

/*
 * The prober thread: a round at once, then one every interval (at once
 * again when a round took longer), until liveness_stop().
 */
static void *prober_main(void *arg)
{
    (void)arg;
    struct pollfd stop = {.fd = stop_fd, .events = POLLIN};
    for (unsigned long round = 1;; round++) {
        int64_t start = clock_ms();
        struct reg_endpoint *e = NULL;
        size_t n = 0;
        if (registry_endpoints(registry, &e, &n) == REG_OK && n > 0) {
            enum probe_result *result = calloc(n, sizeof *result);
            bool done = result != NULL && probe_all(e, n, result, stop_fd);
            if (done)
                account(e, result, n, round);
            free(result);
        }
        free(e);
        int64_t left = start + interval_ms - clock_ms();
        if (poll(&stop, 1, left > 0 ? (int)left : 0) > 0 || stop.revents != 0)
            break;
    }
    struct tracked *t, *tmp;
    // NOLINTBEGIN(clang-analyzer-unix.Malloc)
    HASH_ITER(hh, tracked, t, tmp) {
        HASH_DEL(tracked, t);
        free(t);
    }
    // NOLINTEND(clang-analyzer-unix.Malloc)
    return NULL;
}

int liveness_start(struct registry *reg, unsigned interval_s, unsigned failures)
{
    if (interval_s == 0)
        return 0;
    registry = reg;
    interval_ms = interval_s * 1000;
    max_failures = failures > 0 ? failures : 1;
    stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (stop_fd < 0)
        return -1;
    enabled = true;
    if (pthread_create(&thread, NULL, prober_main, NULL) != 0) {
        enabled = false;
        close(stop_fd);
        stop_fd = -1;
        return -1;
    }
    return 0;
}

/* Forget conflict entries too old to matter (their session has long been
 * probed again by the rounds); conflict_lock held. */
static void conflicts_sweep(int64_t now)
{
    struct conflict *c, *tmp;
    int64_t keep_ms = (int64_t)(max_failures + 1) * interval_ms;
    // NOLINTBEGIN(clang-analyzer-unix.Malloc)
    HASH_ITER(hh, conflicts, c, tmp) {
        if (now - c->last_ms > keep_ms) {
            HASH_DEL(conflicts, c);
            free(c);
        }
    }
    // NOLINTEND(clang-analyzer-unix.Malloc)
}

/*
 * The conflict entry of session, made when missing, if its probe may run
 * now (none within the interval): it is then marked as probed now.  NULL:
 * no probe (too soon, or no memory).  conflict_lock held.
 */
static struct conflict *conflict_claim(uint64_t session, int64_t now)
{
    struct conflict *c;
    HASH_FIND(hh, conflicts, &session, sizeof session, c);
    if (c == NULL) {
        conflicts_sweep(now);
        if ((c = calloc(1, sizeof *c)) == NULL)
            return NULL;
        bool add_failed = false;
        c->session = session;
        HASH_ADD(hh, conflicts, session, sizeof c->session, c);
        if (add_failed) {
            free(c);
            return NULL;
        }
    } else if (now - c->last_ms < (int64_t)interval_ms) {
        return NULL;
    }
    c->last_ms = now;
    return c;
}

void liveness_before_connect(struct registry *reg, const char *user, bool proven)
{
    struct reg_endpoint e;
    if (!enabled || registry_endpoint(reg, user, &e) != REG_OK)
        return;
    if (e.authenticated && !proven)
        return;                         /* only that user may have it probed */
    pthread_mutex_lock(&conflict_lock);
    bool go = conflict_claim(e.session, clock_ms()) != NULL;
    pthread_mutex_unlock(&conflict_lock);
    if (!go)
        return;                         /* probed lately: the classic answer */
    enum probe_result result = PROBE_UNKNOWN;
    probe_all(&e, 1, &result, -1);
    if (result != PROBE_UNKNOWN)
        metrics_probe(result == PROBE_DEAD);

    struct conflict *c;
    unsigned needed = e.authenticated ? 1 : max_failures;
    pthread_mutex_lock(&conflict_lock);
    HASH_FIND(hh, conflicts, &e.session, sizeof e.session, c);
    if (c != NULL && result == PROBE_DEAD)
        c->failures++;
    else if (c != NULL && result == PROBE_ALIVE)
        c->failures = 0;
    go = c != NULL && c->failures >= needed;
    pthread_mutex_unlock(&conflict_lock);
    if (!go)
        return;
    char why[64];
    if (needed == 1)
        snprintf(why, sizeof why, "probe failed on CONNECT");
    else
        snprintf(why, sizeof why, "%u probes failed on CONNECT", needed);
    if (expire(reg, &e, why)) {
        pthread_mutex_lock(&conflict_lock);
        HASH_FIND(hh, conflicts, &e.session, sizeof e.session, c);
        if (c != NULL) {
            HASH_DEL(conflicts, c);
            free(c);
        }
        pthread_mutex_unlock(&conflict_lock);
    }
}

void liveness_stop(void)
{
    if (stop_fd < 0)
        return;                         /* off, or stopped already */
    uint64_t one = 1;
    if (write(stop_fd, &one, sizeof one) < 0)
        diag_errno("liveness: stop");
    pthread_join(thread, NULL);
    close(stop_fd);
    stop_fd = -1;
    pthread_mutex_lock(&conflict_lock);
    struct conflict *c, *tmp;
    // NOLINTBEGIN(clang-analyzer-unix.Malloc)
    HASH_ITER(hh, conflicts, c, tmp) {
        HASH_DEL(conflicts, c);
        free(c);
    }
    // NOLINTEND(clang-analyzer-unix.Malloc)
    pthread_mutex_unlock(&conflict_lock);
}
