/*
 * oplog.c - the index server's side of the operation log; see oplog.h and
 * docs/oplog.md.
 *
 * Handlers append entries to a bounded in-memory queue and return at once.
 * One logging thread owns the only RPC client: it sends the queue's head in
 * batches, in order, and drops entries only once the log server has
 * acknowledged them as durably written.  When a call fails it closes the
 * client, waits (50 ms doubling to 1 s), reconnects and sends the same
 * entries again with the same sequence numbers; the log server writes each
 * (origin, seq) once.  A full queue refuses new entries (the handler then
 * answers "other error" without performing the operation), so no operation
 * is ever performed without its entry, and no entry is dropped silently.
 *
 * With a state directory (-d) the journal is the outbox instead of the
 * queue: the logging thread reads the journal's durable records in order
 * (their seq is the journal's, the origin id is kept in DIR), and after
 * each acknowledged call records in DIR how far the log server has them.
 * A restart resends from there; the log server drops what it has already.
 * Every journal record is sent (refused and listing operations too, as the
 * queue has them), and journal seqs have no gaps, so the seqs sent continue
 * one by one as the log server requires.
 *
 * With a key (-k), the client asks each new connection for its nonce and
 * signs every batch (rpc/logmac.h), in either mode; a client unused for
 * 10 s is replaced before the next call, as the log server closes silent
 * connections.
 */
#include "oplog.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <rpc/rpc.h>

#include "config.h"
#include "clock.h"
#include "durable.h"
#include "journal.h"
#include "logmac.h"
#include "logrpc.h"
#include "net.h"
#include "diag.h"

#define BATCH_MAX 1024              /* entries per RPC call */
#define CALL_TIMEOUT_MS 5000
#define CONNECT_TIMEOUT_MS 1000
#define IDLE_RECONNECT_MS 10000     /* a client unused this long is replaced
                                       (the log server closes silent ones) */
#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 1000
#define LINGER_MS 20                /* gather entries this long after a send */
#define LINGER_BELOW 256            /* ...unless at least this many wait */

/* One queued entry; its strings live in data[]. */
struct entry {
    struct entry *next;
    uint64_t seq;
    char *user, *op, *path, *datetime;
    char data[];
};

/*
 * The queue.  `lock` guards every field of this struct; `wake` is signalled
 * when an entry arrives for an idle logging thread, or when stopping.  The
 * entries from head to tail belong to the queue; the logging thread reads
 * the strings of the entries it is sending without the lock (only it ever
 * removes or frees entries, and submitters never change queued entries).
 */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct entry *head, *tail;
    size_t count;
    uint64_t next_seq;
    bool idle;                      /* the logging thread waits for entries */
    bool stopping;
    struct timespec drain_until;    /* when stopping: give up after this */
} q = {.lock = PTHREAD_MUTEX_INITIALIZER, .next_seq = 1};

/* Set once by oplog_start(), read-only afterwards. */
static bool enabled;
static size_t queue_max;           /* from config.log_queue_max */
static uint64_t origin;             /* this server run, 64 random bits */
static struct sockaddr_in log_addr; /* port 0: ask rpcbind on each connect */
static pthread_t thread;
static struct jreader *outbox;      /* with -d: the journal is the outbox */

/*
 * Outbox mode: the entries read from the journal and not yet acknowledged,
 * oldest first.  Only the logging thread touches these.
 */
static struct entry *pending[BATCH_MAX];
static size_t npending;

/* Milliseconds from now until t (negative when past). */
static long ms_until(struct timespec t)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long)(t.tv_sec - now.tv_sec) * 1000 + (t.tv_nsec - now.tv_nsec) / 1000000L;
}

/* Ask the log host's rpcbind for the log server's TCP address. */
static int rpcbind_lookup(struct sockaddr_in *a)
{
    char host[INET_ADDRSTRLEN];
    struct sockaddr_in found;
    struct netbuf nb = {.maxlen = sizeof found, .len = 0, .buf = &found};
    struct netconfig *nc = getnetconfigent("tcp");
    bool ok = nc != NULL && inet_ntop(AF_INET, &a->sin_addr, host, sizeof host) != NULL &&
              rpcb_getaddr(LOGRPC_PROG, LOGRPC_VERS, nc, &nb, host) &&
              nb.len == sizeof found && found.sin_family == AF_INET;
    if (nc != NULL)
        freenetconfigent(nc);
    if (!ok)
        return -1;
    a->sin_port = found.sin_port;
    return 0;
}

/*
 * With a key (-k): the key, and the current connection's nonce and count of
 * signed calls (rpc/logmac.h).  Set by oplog_start(); afterwards only the
 * logging thread touches them.
 */
static bool keyed;
static struct logmac_key key;
static char nonce[LOG_NONCE_SIZE];
static uint64_t signed_calls;
static struct timespec last_call;   /* when the current client was last used */

/*
 * An RPC client over a fresh connection, or NULL.  Our own connected socket:
 * given RPC_ANYSOCK, libtirpc would scan for a reserved port first.  With a
 * key, asks for the connection's nonce first.
 */
static CLIENT *new_client(void)
{
    struct sockaddr_in a = log_addr;
    if (a.sin_port == 0 && rpcbind_lookup(&a) != 0)
        return NULL;
    int fd = net_connect(&a, CONNECT_TIMEOUT_MS), one = 1;
    if (fd < 0)
        return NULL;
    CLIENT *c = NULL;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0)
        c = clnttcp_create(&a, LOGRPC_PROG, LOGRPC_VERS, &fd, 0, 0);
    if (c == NULL) {
        close(fd);
        return NULL;
    }
    clnt_control(c, CLSET_FD_CLOSE, NULL);
    if (keyed) {
        log_hello hello;
        struct timeval tv = {.tv_sec = CONNECT_TIMEOUT_MS / 1000};
        clnt_control(c, CLSET_TIMEOUT, (char *)&tv);
        if (logrpc_nonce_1(NULL, &hello, c) != RPC_SUCCESS) {
            clnt_destroy(c);
            return NULL;
        }
        memcpy(nonce, hello.nonce, sizeof nonce);
        signed_calls = 0;
    }
    clock_gettime(CLOCK_MONOTONIC, &last_call);
    return c;
}

/* The client to send with: c, unless it sat unused too long; a new one if none. */
static CLIENT *ready_client(CLIENT *c)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (c != NULL && (now.tv_sec - last_call.tv_sec) * 1000 > IDLE_RECONNECT_MS) {
        clnt_destroy(c);
        c = NULL;
    }
    return c != NULL ? c : new_client();
}

/* Send entries[0..n) in one call; true when the log server has them. */
static bool send_batch(CLIENT *c, struct entry **entries, size_t n, long timeout_ms)
{
    log_entry batch[BATCH_MAX];
    for (size_t i = 0; i < n; i++)
        batch[i] = (log_entry){.origin = origin, .seq = entries[i]->seq,
                               .user = entries[i]->user, .operation = entries[i]->op,
                               .path = entries[i]->path, .datetime = entries[i]->datetime};
    log_batch arg = {.log_batch_len = (u_int)n, .log_batch_val = batch};
    log_status status = LOG_IO_ERROR;
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    clnt_control(c, CLSET_TIMEOUT, (char *)&tv);
    enum clnt_stat rc;
    if (keyed) {
        log_signed_batch sb = {.entries = arg};
        if (!logmac_sign(&key, nonce, signed_calls++, &arg, sb.mac))
            return false;
        rc = logrpc_append_signed_1(&sb, &status, c);
    } else {
        rc = logrpc_append_1(&arg, &status, c);
    }
    clock_gettime(CLOCK_MONOTONIC, &last_call);
    static bool said_refused;
    if (rc == RPC_SUCCESS && status == LOG_REFUSED && !said_refused)
        diag("server: the log server refuses our entries (%s; it says why); "
                "they wait in the %s\n", keyed ? "is its -k key the same as ours?" :
                "it wants them signed: give -k with its key",
                outbox != NULL ? "journal" : "queue");
    said_refused = said_refused || (rc == RPC_SUCCESS && status == LOG_REFUSED);
    return rc == RPC_SUCCESS && status == LOG_OK;
}

static struct entry *entry_new(const char *user, const char *op, const char *path,
                               const char *datetime);

/* Whether a stop was asked for, and whether its drain deadline has passed. */
static bool stopping(bool *late)
{
    pthread_mutex_lock(&q.lock);
    bool stop = q.stopping;
    *late = stop && ms_until(q.drain_until) <= 0;
    pthread_mutex_unlock(&q.lock);
    return stop;
}

/*
 * Outbox mode: a record read from the journal but not yet copied into an
 * entry (out of memory).  It is copied before anything else is read: its
 * strings live until the next jreader_next(), and skipping it would make
 * the seqs sent jump, which the log server refuses.  Logging thread only.
 */
static struct jrec held;
static bool holding;

/*
 * Outbox mode: top up `pending` from the journal, waiting a moment when
 * there is nothing; copy it to out.  0 when it is time to stop (stopping,
 * and nothing more came within a short wait, or the deadline passed).
 */
static size_t outbox_batch(struct entry **out)
{
    for (;;) {
        bool late, stop = stopping(&late);
        if (late)
            return 0;
        int r = 0;
        while (npending < BATCH_MAX) {
            if (!holding && (r = jreader_next(outbox, &held, npending ? 0 : 100)) <= 0)
                break;
            holding = true;
            struct entry *e = entry_new(held.user, held.op, held.path, held.datetime);
            if (e == NULL) {
                r = -1;         /* copy it again, after the next acknowledgement */
                break;
            }
            e->seq = held.seq;
            pending[npending++] = e;
            holding = false;
        }
        if (npending > 0) {
            for (size_t i = 0; i < npending; i++)
                out[i] = pending[i];
            return npending;
        }
        if (stop)
            return 0;
        if (r < 0) {
            diag("server: cannot %s the journal for the operation log\n",
                    holding ? "copy a record of" : "read");
            poll(NULL, 0, 1000);
        }
    }
}

/* Outbox mode: the log server has the first n pending entries. */
static void outbox_acknowledge(size_t n)
{
    durable_set_acked(pending[n - 1]->seq);
    for (size_t i = 0; i < n; i++)
        free(pending[i]);
    for (size_t i = n; i < npending; i++)
        pending[i - n] = pending[i];
    npending -= n;
}

/*
 * Wait for entries; copy up to BATCH_MAX pointers from the head.  Returns
 * the count, or 0 when it is time to stop (queue empty and stopping, or
 * the drain deadline passed).
 */
static size_t next_batch(struct entry **out)
{
    if (outbox != NULL)
        return outbox_batch(out);
    pthread_mutex_lock(&q.lock);
    while (q.count == 0 && !q.stopping) {
        q.idle = true;
        pthread_cond_wait(&q.wake, &q.lock);
        q.idle = false;
    }
    size_t n = 0;
    if (!(q.stopping && (q.count == 0 || ms_until(q.drain_until) <= 0)))
        for (struct entry *e = q.head; e && n < BATCH_MAX; e = e->next)
            out[n++] = e;
    pthread_mutex_unlock(&q.lock);
    return n;
}

/* Drop the first n entries: the log server has them. */
static void acknowledge(size_t n)
{
    if (outbox != NULL) {
        outbox_acknowledge(n);
        return;
    }
    struct entry *done = NULL;
    pthread_mutex_lock(&q.lock);
    for (size_t i = 0; i < n; i++) {
        struct entry *e = q.head;
        q.head = e->next;
        e->next = done;
        done = e;
    }
    if (q.head == NULL)
        q.tail = NULL;
    q.count -= n;
    pthread_mutex_unlock(&q.lock);
    while (done) {
        struct entry *next = done->next;
        free(done);
        done = next;
    }
}

/*
 * After a send, let entries gather for a moment before the next one, so that
 * under load one call (and one pair of fdatasyncs on the log server) carries
 * many entries, and handlers do not wake this thread for each entry: while
 * it lingers it is not idle, so submitters do not signal it.
 */
static void linger(void)
{
    pthread_mutex_lock(&q.lock);
    if (q.count < LINGER_BELOW && !q.stopping) {
        struct timespec until = deadline_after_ms(CLOCK_MONOTONIC, LINGER_MS);
        while (!q.stopping &&
               pthread_cond_timedwait(&q.wake, &q.lock, &until) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&q.lock);
}

/* Sleep ms before retrying, unless stopping makes that pointless. */
static void back_off(long ms)
{
    pthread_mutex_lock(&q.lock);
    struct timespec until = deadline_after_ms(CLOCK_MONOTONIC, ms);
    if (q.stopping && ms_until(q.drain_until) < ms)
        until = q.drain_until;
    while (ms_until(until) > 0 &&
           pthread_cond_timedwait(&q.wake, &q.lock, &until) != ETIMEDOUT) {
        /* Woken: a stop may have brought the deadline closer. */
        if (q.stopping && ms_until(q.drain_until) < ms_until(until))
            until = q.drain_until;
    }
    pthread_mutex_unlock(&q.lock);
}

/* How long a call may take: bounded by the drain deadline when stopping. */
static long call_timeout(void)
{
    pthread_mutex_lock(&q.lock);
    long ms = CALL_TIMEOUT_MS;
    if (q.stopping && ms_until(q.drain_until) < ms)
        ms = ms_until(q.drain_until);
    pthread_mutex_unlock(&q.lock);
    return ms > 10 ? ms : 10;
}

/* The logging thread: deliver the queue in order, forever retrying. */
static void *logging_main(void *arg)
{
    (void)arg;
    static struct entry *batch[BATCH_MAX];
    CLIENT *client = NULL;
    long backoff = BACKOFF_MIN_MS;
    bool reported_down = false;
    size_t n;

    while ((n = next_batch(batch)) > 0) {
        client = ready_client(client);
        if (client != NULL && send_batch(client, batch, n, call_timeout())) {
            acknowledge(n);
            backoff = BACKOFF_MIN_MS;
            if (reported_down)
                diag("server: operation log reachable again\n");
            reported_down = false;
            linger();
            continue;
        }
        if (client != NULL) {
            clnt_destroy(client);
            client = NULL;
        }
        if (!reported_down) {
            if (outbox != NULL)
                diag("server: operation log unreachable; entries wait in the "
                                "journal and are resent\n");
            else
                diag("server: operation log unreachable; entries wait in the "
                                "queue (at most %zu) and are resent\n", queue_max);
        }
        reported_down = true;
        back_off(backoff);
        backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
    }
    if (client != NULL)
        clnt_destroy(client);
    return NULL;
}

/* Resolve the log host (a name or an IPv4 address) into log_addr. */
static int resolve(const char *host, unsigned long port)
{
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res;
    if (getaddrinfo(host, NULL, &hints, &res) != 0)
        return -1;
    memcpy(&log_addr, res->ai_addr, sizeof log_addr);
    freeaddrinfo(res);
    log_addr.sin_port = htons((uint16_t)port);
    return 0;
}

int oplog_start(void)
{
    const char *host = config.log_host;
    if (host == NULL) {
        diag("server: LOG_RPC_IP not set: running without an operation log\n");
        return 0;
    }
    if (resolve(host, config.log_port) != 0) {
        diag("server: bad LOG_RPC_IP '%s'\n", host);
        return -1;
    }
    queue_max = config.log_queue_max;
    if (config.log_key_file != NULL) {
        char err[256];
        if (logmac_load_key(config.log_key_file, &key, err, sizeof err) != 0) {
            diag("server: %s\n", err);
            return -1;
        }
        keyed = true;
    }
    if (durable_journal() != NULL) {
        /* The journal is the outbox: resume where the log server is. */
        origin = durable_origin();
        outbox = jreader_open(durable_journal(), durable_acked() + 1);
        if (outbox == NULL) {
            diag("server: cannot read the journal for the operation log\n");
            return -1;
        }
    } else if (getrandom(&origin, sizeof origin, 0) != (ssize_t)sizeof origin) {
        origin = (uint64_t)time(NULL) << 20 ^ (uint64_t)getpid();
    }
    if (origin == 0)
        origin = 1;                 /* 0 is the log store's own */
    cond_init_monotonic(&q.wake);
    if (pthread_create(&thread, NULL, logging_main, NULL) != 0) {
        diag("server: cannot start the logging thread\n");
        jreader_close(outbox);
        outbox = NULL;
        return -1;
    }
    enabled = true;
    if (config.log_port != 0)
        diag("server: operation log at %s port %lu\n", host, config.log_port);
    else
        diag("server: operation log at %s (port from rpcbind)\n", host);
    return 0;
}

/* A copy of s (NULL as "") at *at, advancing it. */
static char *put(char **at, const char *s)
{
    char *start = *at;
    size_t n = strlen(s ? s : "") + 1;
    memcpy(start, s ? s : "", n);
    *at += n;
    return start;
}

/* A new entry holding copies of the strings (path may be NULL), or NULL. */
static struct entry *entry_new(const char *user, const char *op, const char *path,
                               const char *datetime)
{
    size_t size = strlen(user) + strlen(op) + strlen(path ? path : "") +
                  strlen(datetime) + 4;
    struct entry *e = malloc(sizeof *e + size);
    if (e == NULL)
        return NULL;
    char *at = e->data;
    e->user = put(&at, user);
    e->op = put(&at, op);
    e->path = put(&at, path);
    e->datetime = put(&at, datetime);
    e->next = NULL;
    return e;
}

bool oplog_submit(const char *user, const char *op, const char *path,
                  const char *datetime)
{
    if (!enabled || outbox != NULL)
        return true;            /* no log, or the journal is the outbox */
    struct entry *e = entry_new(user, op, path, datetime);
    if (e == NULL)
        return false;

    pthread_mutex_lock(&q.lock);
    bool room = q.count < queue_max && !q.stopping;
    if (room) {
        e->seq = q.next_seq++;
        if (q.tail)
            q.tail->next = e;
        else
            q.head = e;
        q.tail = e;
        q.count++;
        if (q.idle)
            pthread_cond_signal(&q.wake);
    }
    pthread_mutex_unlock(&q.lock);
    if (!room)
        free(e);
    return room;
}

void oplog_stop(int drain_ms)
{
    if (!enabled)
        return;
    pthread_mutex_lock(&q.lock);
    q.stopping = true;
    q.drain_until = deadline_after_ms(CLOCK_MONOTONIC, drain_ms);
    pthread_cond_signal(&q.wake);
    pthread_mutex_unlock(&q.lock);
    pthread_join(thread, NULL);
    if (outbox != NULL) {
        /* What was not delivered stays in the journal for the next start. */
        for (size_t i = 0; i < npending; i++)
            free(pending[i]);
        npending = 0;
        holding = false;
        jreader_close(outbox);
        outbox = NULL;
    }

    size_t lost = q.count;
    while (q.head) {
        struct entry *next = q.head->next;
        free(q.head);
        q.head = next;
    }
    q.tail = NULL;
    q.count = 0;
    if (lost)
        diag("server: %zu operation log entries could not be delivered "
                        "before exit\n", lost);
    pthread_cond_destroy(&q.wake);
    enabled = false;
}
