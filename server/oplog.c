/*
 * oplog.c - the operation log's sender; see oplog.h and docs/oplog.md.
 *
 * One logging thread owns the only RPC client: it takes a batch from its
 * source (logsource.h: the in-memory queue, or the journal outbox), sends
 * it in one call, and has the source drop it only once the log server has
 * acknowledged it as durably written.  When a call fails it closes the
 * client, waits (50 ms doubling to 1 s), reconnects and sends the same
 * entries again with the same sequence numbers; the log server writes each
 * (origin, seq) once.
 *
 * With a key (-k), the client asks each new connection for its nonce and
 * signs every batch (rpc/logmac.h), and takes as an acknowledgment only a
 * reply the log server signed in turn (acknowledged()); a client unused for
 * 10 s is replaced before the next call, as the log server closes silent
 * connections.
 */
#include "oplog.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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

#include "clock.h"
#include "diag.h"
#include "logmac.h"
#include "logrpc.h"
#include "net.h"

#define BATCH_MAX 1024              /* entries per RPC call */
#define CALL_TIMEOUT_MS 5000
#define CONNECT_TIMEOUT_MS 1000
#define IDLE_RECONNECT_MS 10000     /* a client unused this long is replaced
                                       (the log server closes silent ones) */
#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 1000
#define LINGER_MS 20                /* gather entries this long after a send */
#define LINGER_BELOW 256            /* ...unless the batch sent had this many */
#define POLL_MS 100                 /* a source is asked again this often, and
                                       waited for once more when stopping (the
                                       journal syncs its tail for the outbox) */

/*
 * Stopping.  `lock` guards these; `wake` is signalled when a stop is
 * asked for, so that a linger or a back-off ends early.
 */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping;
    struct timespec drain_until;    /* when stopping: give up after this */
} stop = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Set once by oplog_start(), read-only afterwards. */
static bool enabled;
static struct log_source source;
static struct sockaddr_in log_addr; /* port 0: ask rpcbind on each connect */
static uint32_t log_prog;           /* the log server's program number */
static pthread_t thread;

uint64_t log_origin_new(void)
{
    uint64_t origin;
    if (getrandom(&origin, sizeof origin, 0) != (ssize_t)sizeof origin)
        origin = (uint64_t)time(NULL) << 20 ^ (uint64_t)getpid();
    return origin != 0 ? origin : 1;        /* 0 is the log store's own */
}

/* Ask the log host's rpcbind for the log server's TCP address. */
static int rpcbind_lookup(struct sockaddr_in *a)
{
    char host[INET_ADDRSTRLEN];
    struct sockaddr_in found;
    struct netbuf nb = {.maxlen = sizeof found, .len = 0, .buf = &found};
    struct netconfig *nc = getnetconfigent("tcp");
    bool ok = nc != NULL && inet_ntop(AF_INET, &a->sin_addr, host, sizeof host) != NULL &&
              rpcb_getaddr(log_prog, LOGRPC_VERS, nc, &nb, host) &&
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
static struct sockaddr_in peer;     /* the address the current client talks to */

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
    peer = a;
    int fd = net_connect(&a, CONNECT_TIMEOUT_MS), one = 1;
    if (fd < 0)
        return NULL;
    CLIENT *c = NULL;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0)
        c = clnttcp_create(&a, log_prog, LOGRPC_VERS, &fd, 0, 0);
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

/*
 * Is this reply a proven acknowledgment?  The call went through, the log
 * server says the entries are durably written, and, with a key, the reply
 * is the log server's own: its MAC (rpc/logmac.h: over this connection's
 * nonce, the call's number, the status and the batch's MAC) was made with
 * the key.  Anyone else on the log port, or a log server with another key
 * or none, cannot make us drop entries.  *proven says whether the reply
 * (whatever its status) came from the key's holder; an unproven one is said
 * once per episode on stderr, with the peer's address.
 */
static bool acknowledged(enum clnt_stat rc, const log_proof *reply, uint64_t call,
                         const char call_mac[LOG_MAC_SIZE], bool *proven)
{
    static bool said;
    *proven = !keyed || (rc == RPC_SUCCESS &&
                         logmac_ack_check(&key, nonce, call, reply->status, call_mac,
                                          reply->mac));
    if (*proven) {
        said = false;
        return rc == RPC_SUCCESS && reply->status == LOG_OK;
    }
    if (!said && (rc == RPC_SUCCESS || rc == RPC_PROCUNAVAIL || rc == RPC_CANTDECODERES)) {
        char host[INET_ADDRSTRLEN] = "?";
        inet_ntop(AF_INET, &peer.sin_addr, host, sizeof host);
        diag("server: the log server at %s:%u did not prove the key (%s); its answer is "
             "not taken as an acknowledgment, entries wait in %s and are resent\n", host,
             ntohs(peer.sin_port),
             rc == RPC_PROCUNAVAIL ? "it cannot: a log_server older than this server?"
                                   : "not our log server, or it has no -k or another key",
             source.where);
        said = true;
    }
    return false;
}

/*
 * Send items[0..n) in one call; true when the log server has them.
 * *refused: it answered and will not take them (it refuses them, or cannot
 * prove the key), so that resending cannot deliver them before someone acts.
 */
static bool send_batch(CLIENT *c, const struct log_item *items, size_t n, long timeout_ms,
                       bool *refused)
{
    log_entry batch[BATCH_MAX];
    for (size_t i = 0; i < n; i++)
        batch[i] = (log_entry){.origin = source.origin, .seq = items[i].seq,
                               .user = (char *)items[i].user, .operation = (char *)items[i].op,
                               .path = (char *)items[i].path,
                               .datetime = (char *)items[i].datetime};
    log_batch arg = {.log_batch_len = (u_int)n, .log_batch_val = batch};
    log_signed_batch sb = {.entries = arg};
    log_proof reply = {.status = LOG_IO_ERROR};
    uint64_t call = 0;
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    clnt_control(c, CLSET_TIMEOUT, (char *)&tv);
    enum clnt_stat rc;
    if (keyed) {
        call = signed_calls++;
        if (!logmac_sign(&key, nonce, call, &arg, sb.mac))
            return false;
        rc = logrpc_append_proven_1(&sb, &reply, c);
    } else {
        rc = logrpc_append_1(&arg, &reply.status, c);
    }
    clock_gettime(CLOCK_MONOTONIC, &last_call);
    bool proven, acked = acknowledged(rc, &reply, call, sb.mac, &proven);
    static bool said_refused;
    bool refusal = rc == RPC_SUCCESS && proven && reply.status == LOG_REFUSED;
    if (refusal && !said_refused)
        diag("server: the log server refuses our entries (%sit says why); "
             "they wait in %s\n", keyed ? "" :
             "does it want them signed? then give -k with its key; ", source.where);
    said_refused = said_refused || refusal;
    *refused = refusal || (!proven && (rc == RPC_SUCCESS || rc == RPC_PROCUNAVAIL ||
                                       rc == RPC_CANTDECODERES));
    return acked;
}

/* Whether a stop was asked for, and whether its drain deadline has passed. */
static bool stopping(bool *late)
{
    pthread_mutex_lock(&stop.lock);
    bool s = stop.stopping;
    *late = s && clock_ms_until(stop.drain_until) <= 0;
    pthread_mutex_unlock(&stop.lock);
    return s;
}

/*
 * Wait up to ms, on the stop condition.  A stop ends the wait at once when
 * end_at_stop (a linger: drain now), else only brings its end to the drain
 * deadline (a back-off).
 */
static void pause_ms(long ms, bool end_at_stop)
{
    pthread_mutex_lock(&stop.lock);
    struct timespec until = deadline_after_ms(CLOCK_MONOTONIC, ms);
    for (;;) {
        if (stop.stopping && end_at_stop)
            break;
        if (stop.stopping && clock_ms_until(stop.drain_until) < clock_ms_until(until))
            until = stop.drain_until;
        if (clock_ms_until(until) <= 0 ||
            pthread_cond_timedwait(&stop.wake, &stop.lock, &until) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&stop.lock);
}

/* How long a call may take: bounded by the drain deadline when stopping. */
static long call_timeout(void)
{
    pthread_mutex_lock(&stop.lock);
    long ms = CALL_TIMEOUT_MS;
    if (stop.stopping && clock_ms_until(stop.drain_until) < ms)
        ms = clock_ms_until(stop.drain_until);
    pthread_mutex_unlock(&stop.lock);
    return ms > 10 ? ms : 10;
}

/*
 * The logging thread: deliver the source in order, forever retrying, until
 * stopped and drained (or past the drain deadline, or at once when the log
 * server's last answer refused the entries: it can never take them in the
 * drain, and waiting it out would only delay the exit).  After a send that
 * carried few entries it lingers a moment, so that under load one call
 * (and one pair of fdatasyncs on the log server) carries many, and
 * submitters do not wake this thread for each entry.
 */
static void *logging_main(void *arg)
{
    (void)arg;
    static struct log_item batch[BATCH_MAX];
    CLIENT *client = NULL;
    long backoff = BACKOFF_MIN_MS;
    bool reported_down = false, refused = false;

    for (;;) {
        bool late, stop_asked = stopping(&late);
        if (late || (stop_asked && refused))
            break;
        size_t n = source.next(source.ctx, batch, BATCH_MAX, POLL_MS);
        if (n == 0) {
            if (stop_asked)
                break;          /* stopped, and everything delivered */
            continue;
        }
        client = ready_client(client);
        refused = false;
        if (client != NULL && send_batch(client, batch, n, call_timeout(), &refused)) {
            source.acknowledge(source.ctx, n);
            backoff = BACKOFF_MIN_MS;
            if (reported_down)
                diag("server: operation log reachable again\n");
            reported_down = false;
            if (n < LINGER_BELOW && !stop_asked)
                pause_ms(LINGER_MS, true);
            continue;
        }
        if (client != NULL) {
            clnt_destroy(client);
            client = NULL;
        }
        if (!reported_down)
            diag("server: operation log unreachable; entries wait in %s and are resent\n",
                 source.where);
        reported_down = true;
        pause_ms(backoff, refused);     /* a stop ends it at once after a refusal */
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

int oplog_start(const struct oplog_config *cfg, const struct log_source *src)
{
    if (resolve(cfg->host, cfg->port) != 0) {
        diag("server: bad LOG_RPC_IP '%s'\n", cfg->host);
        return -1;
    }
    if (cfg->key_file != NULL) {
        char err[256];
        if (logmac_load_key(cfg->key_file, &key, err, sizeof err) != 0) {
            diag("server: %s\n", err);
            return -1;
        }
        keyed = true;
    } else {
        diag("server: no key (-k): the log server's acknowledgments are not proven "
             "(any process on its port could take entries)\n");
    }
    log_prog = cfg->prog != 0 ? cfg->prog : LOGRPC_PROG;
    source = *src;
    cond_init_monotonic(&stop.wake);
    if (pthread_create(&thread, NULL, logging_main, NULL) != 0) {
        diag("server: cannot start the logging thread\n");
        return -1;
    }
    enabled = true;
    if (cfg->port != 0)
        diag("server: operation log at %s port %u\n", cfg->host, cfg->port);
    else
        diag("server: operation log at %s (port from rpcbind)\n", cfg->host);
    return 0;
}

void oplog_stop(int drain_ms)
{
    if (!enabled)
        return;
    pthread_mutex_lock(&stop.lock);
    stop.stopping = true;
    stop.drain_until = deadline_after_ms(CLOCK_MONOTONIC, drain_ms);
    pthread_cond_signal(&stop.wake);
    pthread_mutex_unlock(&stop.lock);
    pthread_join(thread, NULL);
    pthread_cond_destroy(&stop.wake);
    enabled = false;
}

void oplog_backlog(uint64_t *entries, double *oldest_s)
{
    int64_t since = 0;
    *entries = 0;
    if (enabled && source.backlog != NULL)
        source.backlog(source.ctx, entries, &since);
    *oldest_s = since > 0 ? (double)(clock_ms() - since) / 1000.0 : 0;
}
