/*
 * log_server.c - the operation log server: ONC-RPC in, durable lines out.
 *
 *   log_server [-f FILE] [-p PORT] [-k KEYFILE] [-c MAXCONN] [-t SECONDS]
 *              [-g ORIGIN]
 *
 * Receives batches of entries (rpc/logrpc.x), appends each new one to FILE
 * as one protocol line (rpc/logstore.c: durable, exactly once) and prints it
 * on stdout, and acknowledges a batch only once it is on disk.  Registers
 * with rpcbind over TCP when rpcbind runs; with -p it serves on that fixed
 * port as well, so it works with no rpcbind at all.  SIGHUP reopens FILE
 * (log rotation); SIGINT and SIGTERM unregister and exit 0.  LOG_RPC_PROG
 * in the environment replaces the program number (the index server reads
 * the same variable), so that several log servers share one rpcbind.
 *
 * One thread: rpc/rpcserve.c runs the poll() loop over the listening
 * socket, the connections (non-blocking, each with a deadline) and a
 * signalfd; requests are served one at a time as each arrives whole, so a
 * client that stalls halfway holds no one up.  The dispatcher below frees
 * whatever a failed decode had already allocated.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <rpc/rpc.h>

#include "decimal.h"
#include "logmac.h"
#include "logrpc.h"
#include "logstore.h"
#include "net.h"
#include "rpcserve.h"
#include "diag.h"

/* Largest request taken: a full batch of 4,096 entries at the field limits. */
#define MAX_RECORD (4 << 20)
#define MAXCONN_DEFAULT 64
#define TIMEOUT_DEFAULT_S 30
/* With -k: a connection that has not proven the key within this long of its
 * accept is closed, and gives its slot to a newcomer when all are taken. */
#define UNPROVEN_TIMEOUT_MS 5000
/* LOG_RPC_PROG's range: the user-defined and transient program numbers. */
#define PROG_LO 0x20000000u
#define PROG_HI 0x5fffffffu

/* What the server knows of one connection (rpcserve keeps it). */
struct conn {
    bool has_nonce;
    uint64_t calls;                 /* signed calls made on this connection */
    char nonce[LOG_NONCE_SIZE];
};

/* All of this is touched by the single server thread only. */
static struct logstore *store;
static struct logmac_key key;
static bool keyed;
static int sigfd = -1;
static const char *log_path;
static uint32_t prog = LOGRPC_PROG;     /* LOG_RPC_PROG, or the protocol's */

/* Store a batch; the log_status to answer. */
static log_status append(const log_batch *batch)
{
    u_int n = batch->log_batch_len;
    struct log_record *recs = calloc(n ? n : 1, sizeof *recs);
    if (recs == NULL)
        return LOG_IO_ERROR;
    for (u_int i = 0; i < n; i++) {
        const log_entry *e = &batch->log_batch_val[i];
        recs[i] = (struct log_record){
            .origin = e->origin, .seq = e->seq, .user = e->user,
            .operation = e->operation, .path = e->path, .datetime = e->datetime};
    }
    uint64_t gap = logstore_gap_pending(store);
    int rc = logstore_append(store, recs, n, stdout);
    free(recs);
    if (rc == LOGSTORE_REFUSED) {
        uint64_t jump = logstore_jump_origin(store);
        if (jump != 0)
            diag("log_server: batch refused, nothing written: %s (if this log lost those "
                 "entries for good, restart with -g %016" PRIx64 " to record the gap and "
                 "go on: docs/oplog.md)\n", logstore_error(store), jump);
        else
            diag("log_server: batch refused, nothing written: %s\n", logstore_error(store));
        return LOG_REFUSED;
    }
    if (rc == 0 && gap != 0 && logstore_gap_pending(store) == 0) {
        uint64_t first, last;
        logstore_gap_taken(store, &first, &last);
        diag("log_server: recorded the gap of origin %016" PRIx64 ": seq %" PRIu64 " to %"
             PRIu64 " as one LOG_GAP line; -g is spent, leave it out next time\n",
             gap, first, last);
    }
    if (rc != 0) {
        diag("log_server: cannot write the log: %s\n",
                logstore_error(store));
        return LOG_IO_ERROR;
    }
    return LOG_OK;
}

/*
 * A signed batch, the connection's call number `call`: stored when the MAC
 * is right (or when no key is set), else refused.  Its status into *status;
 * true when the MAC proved the sender holds the key.
 */
static bool signed_append(struct conn *c, uint64_t call, const log_signed_batch *sb,
                          log_status *status)
{
    bool proven = keyed && c->has_nonce &&
                  logmac_check(&key, c->nonce, call, &sb->entries, sb->mac);
    if (keyed && !proven) {
        diag("log_server: wrongly signed batch refused\n");
        *status = LOG_REFUSED;
    } else {
        *status = append(&sb->entries);
    }
    return proven;
}

/* XDR for "no arguments" or "no result" (xdr_void has no parameters). */
static bool_t xdr_nothing(XDR *x, void *p)
{
    (void)x;
    (void)p;
    return TRUE;
}

/* Decode the arguments; on failure free what was decoded. */
static bool get_args(XDR *in, xdrproc_t proc, void *args)
{
    if (proc(in, args))
        return true;
    xdr_free(proc, args);
    return false;
}

/* The program's dispatcher: every procedure of rpc/logrpc.x. */
static struct rpcserve_reply dispatch(void *conn, uint32_t proc, XDR *in)
{
    struct conn *c = conn;
    static log_status status;
    static log_hello hello;
    static log_batch batch;
    static log_signed_batch sb;
    static log_proof proof;
    const struct rpcserve_reply garbage = {.stat = GARBAGE_ARGS};
    switch (proc) {
    case NULLPROC:
        return (struct rpcserve_reply){SUCCESS, (xdrproc_t)xdr_nothing, NULL, false};
    case LOGRPC_NONCE:
        if (getrandom(hello.nonce, sizeof hello.nonce, 0) != (ssize_t)sizeof hello.nonce)
            return (struct rpcserve_reply){.stat = SYSTEM_ERR};
        memcpy(c->nonce, hello.nonce, sizeof c->nonce);
        c->has_nonce = true;
        c->calls = 0;
        return (struct rpcserve_reply){SUCCESS, (xdrproc_t)xdr_log_hello, &hello, false};
    case LOGRPC_APPEND:
        memset(&batch, 0, sizeof batch);
        if (!get_args(in, (xdrproc_t)xdr_log_batch, &batch))
            return garbage;
        if (keyed) {
            diag("log_server: unsigned batch refused (a key is set)\n");
            status = LOG_REFUSED;
        } else {
            status = append(&batch);
        }
        xdr_free((xdrproc_t)xdr_log_batch, &batch);
        return (struct rpcserve_reply){SUCCESS, (xdrproc_t)xdr_log_status, &status, false};
    case LOGRPC_APPEND_SIGNED:
    case LOGRPC_APPEND_PROVEN:
        memset(&sb, 0, sizeof sb);
        if (!get_args(in, (xdrproc_t)xdr_log_signed_batch, &sb))
            return garbage;
        uint64_t call = c->calls++;
        bool proven = signed_append(c, call, &sb, &status);
        /* The answer's own MAC (without a key there is nothing to prove it with). */
        proof.status = status;
        memset(proof.mac, 0, sizeof proof.mac);
        if (keyed)
            logmac_ack(&key, c->nonce, call, status, sb.mac, proof.mac);
        xdr_free((xdrproc_t)xdr_log_signed_batch, &sb);
        if (proc == LOGRPC_APPEND_SIGNED)       /* an older index server */
            return (struct rpcserve_reply){SUCCESS, (xdrproc_t)xdr_log_status, &status,
                                           proven};
        return (struct rpcserve_reply){SUCCESS, (xdrproc_t)xdr_log_proof, &proof, proven};
    default:
        return (struct rpcserve_reply){.stat = PROC_UNAVAIL};
    }
}

static void usage(FILE *f)
{
    fprintf(f, "usage: log_server [-f FILE] [-p PORT] [-k KEYFILE] [-c MAXCONN] [-t SECONDS]\n"
               "                  [-g ORIGIN]\n"
               "  -f FILE     append the log to FILE (default operations.log)\n"
               "  -p PORT     also serve on this TCP port (0: any free port), so that\n"
               "              no rpcbind is needed\n"
               "  -k KEYFILE  accept only batches signed with this shared key, and sign\n"
               "              every answer to them; a connection that has not proven\n"
               "              the key is closed %d s after its accept and gives its\n"
               "              slot up to a newcomer when all are taken\n"
               "  -c MAXCONN  connections served at once (default %d)\n"
               "  -t SECONDS  each connection must complete a request within this long\n"
               "              of its accept or of its previous request (default %d)\n"
               "  -g ORIGIN   this log lost entries of ORIGIN (16 hex digits, as the\n"
               "              refusal names it) for good: record the gap as one LOG_GAP\n"
               "              line and let ORIGIN go on (once; docs/oplog.md)\n"
               "  -h, --help  this help\n"
               "environment:\n"
               "  LOG_RPC_PROG=PROG  the ONC-RPC program number served and registered\n"
               "              with rpcbind, in decimal as rpcinfo shows it, from %lu\n"
               "              to %lu; the index server must have the same\n"
               "              (unset: %lu, the protocol's 0x%lX)\n",
               UNPROVEN_TIMEOUT_MS / 1000, MAXCONN_DEFAULT, TIMEOUT_DEFAULT_S,
               (unsigned long)PROG_LO, (unsigned long)PROG_HI, (unsigned long)LOGRPC_PROG,
               (unsigned long)LOGRPC_PROG);
}

/* True when rpcbind answers on this host (a quick TCP connect to port 111). */
static bool rpcbind_running(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(111),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = net_connect(&a, 500);
    if (fd >= 0)
        close(fd);
    return fd >= 0;
}

/*
 * Register the listening port with rpcbind for TCP, first removing any
 * stale registration a killed instance left.
 */
static bool register_rpcbind(int lfd)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    struct netconfig *nc = getnetconfigent("tcp");
    if (nc == NULL || getsockname(lfd, (struct sockaddr *)&a, &alen) != 0) {
        if (nc != NULL)
            freenetconfigent(nc);
        return false;
    }
    struct netbuf nb = {.maxlen = sizeof a, .len = alen, .buf = &a};
    rpcb_unset(prog, LOGRPC_VERS, NULL);
    bool ok = rpcb_set(prog, LOGRPC_VERS, nc, &nb);
    freenetconfigent(nc);
    return ok;
}

/* A signal arrived: SIGHUP reopens the log; false (stop) for the others. */
static bool on_signal(void)
{
    struct signalfd_siginfo si;
    if (read(sigfd, &si, sizeof si) != (ssize_t)sizeof si)
        return true;
    if (si.ssi_signo != SIGHUP)
        return false;
    char err[256];
    if (logstore_reopen(store, err, sizeof err) != 0)
        diag("log_server: %s\n", err);
    else
        diag("log_server: reopened %s\n", log_path);
    return true;
}

/* A whole number in [lo, hi] from an option, or exit 2 with the usage. */
static long number_arg(const char *what, const char *s, long lo, long hi)
{
    unsigned long long v;
    if (!decimal_parse(s, (unsigned long long)lo, (unsigned long long)hi, &v)) {
        diag("log_server: bad %s '%s'\n", what, s);
        usage(stderr);
        exit(2);
    }
    return (long)v;
}

/* An origin from -g: 1 to 16 hex digits, not 0; or exit 2 with the usage. */
static uint64_t origin_arg(const char *s)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 16);
    if (errno || *end || end == s || strlen(s) > 16 || v == 0 || *s == '-' || *s == '+' ||
        isspace((unsigned char)*s)) {
        diag("log_server: bad origin '%s' (16 hex digits, as a refusal names it)\n", s);
        usage(stderr);
        exit(2);
    }
    return (uint64_t)v;
}

int main(int argc, char **argv)
{
    const char *key_path = NULL;
    long port = -1;
    struct rpcserve_config cfg = {
        .vers = LOGRPC_VERS, .dispatch = dispatch,
        .conn_size = sizeof(struct conn), .max_conns = MAXCONN_DEFAULT,
        .timeout_ms = TIMEOUT_DEFAULT_S * 1000L, .max_record = MAX_RECORD,
        .unproven_timeout_ms = UNPROVEN_TIMEOUT_MS};
    int opt;
    if (argc > 1 && strcmp(argv[1], "--help") == 0) {
        usage(stdout);
        return 0;
    }
    log_path = "operations.log";
    uint64_t gap_origin = 0;
    while ((opt = getopt(argc, argv, "f:p:k:c:t:g:h")) != -1) {
        switch (opt) {
        case 'f':
            log_path = optarg;
            break;
        case 'p':
            port = number_arg("port", optarg, 0, 65535);
            break;
        case 'k':
            key_path = optarg;
            break;
        case 'c':
            cfg.max_conns = (int)number_arg("connection count", optarg, 1, 100000);
            break;
        case 't':
            cfg.timeout_ms = number_arg("timeout", optarg, 1, 86400) * 1000L;
            break;
        case 'g':
            gap_origin = origin_arg(optarg);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    const char *env_prog = getenv("LOG_RPC_PROG");
    if (env_prog != NULL && *env_prog != '\0') {
        unsigned long long v;
        if (!decimal_parse(env_prog, PROG_LO, PROG_HI, &v)) {
            diag("log_server: bad LOG_RPC_PROG '%s'\n", env_prog);
            return 1;
        }
        prog = (uint32_t)v;
    }
    cfg.prog = prog;
    setvbuf(stdout, NULL, _IOLBF, 0);

    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    sigprocmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    sigfd = signalfd(-1, &sigs, SFD_CLOEXEC);

    char err[256];
    if (key_path != NULL) {
        if (logmac_load_key(key_path, &key, err, sizeof err) != 0) {
            diag("log_server: %s\n", err);
            return 1;
        }
        keyed = true;
        cfg.proof_required = true;
        if (cfg.unproven_timeout_ms > cfg.timeout_ms)
            cfg.unproven_timeout_ms = cfg.timeout_ms;
    }
    /* Locks the log before anything is written: a second instance stops here. */
    store = logstore_open(log_path, err, sizeof err);
    if (store == NULL) {
        diag("log_server: %s\n", err);
        return 1;
    }

    if (gap_origin != 0) {
        logstore_accept_gap(store, gap_origin);
        diag("log_server: the next jump of origin %016" PRIx64 " is taken as a gap (-g)\n",
             gap_origin);
    }

    bool with_rpcbind = rpcbind_running();
    if (!with_rpcbind && port < 0) {
        diag("log_server: rpcbind is not running; start it, or give -p PORT\n");
        logstore_close(store);
        return 1;
    }
    unsigned bound;
    int lfd = net_listen(port < 0 ? 0 : (unsigned)port, 64, true, &bound);
    if (lfd < 0) {
        diag("log_server: cannot listen on port %ld: %s\n", port < 0 ? 0 : port,
                strerror(errno));
        logstore_close(store);
        return 1;
    }
    if (with_rpcbind && !register_rpcbind(lfd)) {
        diag("log_server: rpcbind refused the registration\n");
        with_rpcbind = false;
        if (port < 0) {
            close(lfd);
            logstore_close(store);
            return 1;
        }
    }
    if (!keyed)
        diag("log_server: no key (-k): anyone who reaches the port can append\n");
    diag("log_server: writing %s; listening on port %u%s\n", log_path, bound,
            with_rpcbind ? ", registered with rpcbind" : " (no rpcbind)");

    int rc = rpcserve_run(lfd, &cfg, sigfd, on_signal) == 0 ? 0 : 1;

    if (with_rpcbind)
        rpcb_unset(prog, LOGRPC_VERS, NULL);
    close(lfd);
    diag("log_server: %llu lines written, %llu duplicates skipped\n",
            (unsigned long long)logstore_written(store),
            (unsigned long long)logstore_duplicates(store));
    logstore_close(store);
    close(sigfd);
    return rc;
}
