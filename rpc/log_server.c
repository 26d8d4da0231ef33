/*
 * log_server.c - the operation log server: ONC-RPC in, durable lines out.
 *
 *   log_server [-f FILE] [-p PORT]
 *
 * Receives batches of entries (rpc/logrpc.x), appends each new one to FILE
 * as one protocol line (rpc/logstore.c: durable, exactly once) and prints it
 * on stdout, and acknowledges a batch only once it is on disk.  Registers
 * with rpcbind over TCP when rpcbind runs; with -p it serves on that fixed
 * port as well, so it works with no rpcbind at all.  SIGHUP reopens FILE
 * (log rotation); SIGINT and SIGTERM unregister and exit 0.
 *
 * One thread: RPC requests are served one at a time, in arrival order, from
 * a poll() loop that also reads signals from a signalfd.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <rpc/rpc.h>

#include "logrpc.h"
#include "logstore.h"
#include "net.h"

/* The dispatcher rpcgen generates (rpcgen -m: no main of its own). */
void logrpc_prog_1(struct svc_req *rqstp, SVCXPRT *transp);

/* The one store; only the single server thread touches it. */
static struct logstore *store;

/* Serve one APPEND: store the batch, answer only once it is durable. */
bool_t logrpc_append_1_svc(log_batch *batch, log_status *result, struct svc_req *rq)
{
    (void)rq;
    u_int n = batch->log_batch_len;
    struct log_record *recs = calloc(n ? n : 1, sizeof *recs);
    if (recs == NULL) {
        *result = LOG_IO_ERROR;
        return TRUE;
    }
    for (u_int i = 0; i < n; i++) {
        const log_entry *e = &batch->log_batch_val[i];
        recs[i] = (struct log_record){
            .origin = e->origin, .seq = e->seq, .user = e->user,
            .operation = e->operation, .path = e->path, .datetime = e->datetime};
    }
    *result = logstore_append(store, recs, n, stdout) == 0 ? LOG_OK : LOG_IO_ERROR;
    if (*result != LOG_OK)
        fprintf(stderr, "log_server: cannot write the log: %s\n", strerror(errno));
    free(recs);
    return TRUE;
}

/* Free what a reply held (nothing: the result is an enum). */
int logrpc_prog_1_freeresult(SVCXPRT *transp, xdrproc_t xdr_result, caddr_t result)
{
    (void)transp;
    xdr_free(xdr_result, result);
    return 1;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: log_server [-f FILE] [-p PORT]\n"
               "  -f FILE  append the log to FILE (default operations.log)\n"
               "  -p PORT  also serve on this TCP port (0: any free port), so that\n"
               "           no rpcbind is needed\n"
               "  -h, --help  this help\n");
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
 * Register the transport's port with rpcbind for TCP, first removing any
 * stale registration a killed instance left.  (rpcb_set with our own
 * address, rather than svc_register's pmap_set, which leaks in libtirpc.)
 */
static bool register_rpcbind(SVCXPRT *xprt)
{
    struct netconfig *nc = getnetconfigent("tcp");
    if (nc == NULL)
        return false;
    rpcb_unset(LOGRPC_PROG, LOGRPC_VERS, NULL);
    bool ok = rpcb_set(LOGRPC_PROG, LOGRPC_VERS, nc, &xprt->xp_ltaddr);
    freenetconfigent(nc);
    return ok;
}

/* Serve RPC requests until SIGINT/SIGTERM; SIGHUP reopens the log. */
static void serve(int sigfd, const char *path)
{
    for (;;) {
        int n = svc_max_pollfd;
        struct pollfd fds[n + 1];
        memcpy(fds, svc_pollfd, (size_t)n * sizeof *fds);
        fds[n] = (struct pollfd){.fd = sigfd, .events = POLLIN};
        int ready = poll(fds, (nfds_t)n + 1, -1);
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            perror("log_server: poll");
            return;
        }
        if (fds[n].revents & POLLIN) {
            struct signalfd_siginfo si;
            if (read(sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
                if (si.ssi_signo != SIGHUP)
                    return;
                char err[256];
                if (logstore_reopen(store, err, sizeof err) != 0)
                    fprintf(stderr, "log_server: %s\n", err);
                else
                    fprintf(stderr, "log_server: reopened %s\n", path);
            }
            ready--;
        }
        if (ready > 0)
            svc_getreq_poll(fds, ready);
    }
}

int main(int argc, char **argv)
{
    const char *path = "operations.log";
    long port = -1;
    int opt;
    if (argc > 1 && strcmp(argv[1], "--help") == 0) {
        usage(stdout);
        return 0;
    }
    while ((opt = getopt(argc, argv, "f:p:h")) != -1) {
        char *end;
        switch (opt) {
        case 'f':
            path = optarg;
            break;
        case 'p':
            errno = 0;
            port = strtol(optarg, &end, 10);
            if (errno || *end || end == optarg || port < 0 || port > 65535) {
                fprintf(stderr, "log_server: bad port '%s'\n", optarg);
                usage(stderr);
                return 2;
            }
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
    setvbuf(stdout, NULL, _IOLBF, 0);

    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    sigprocmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    int sigfd = signalfd(-1, &sigs, SFD_CLOEXEC);

    char err[256];
    store = logstore_open(path, err, sizeof err);
    if (store == NULL) {
        fprintf(stderr, "log_server: %s\n", err);
        return 1;
    }

    bool with_rpcbind = rpcbind_running();
    if (!with_rpcbind && port < 0) {
        fprintf(stderr, "log_server: rpcbind is not running; start it, or give -p PORT\n");
        logstore_close(store);
        return 1;
    }
    unsigned bound;
    int sock = net_listen(port < 0 ? 0 : (unsigned)port, 64, true, &bound);
    SVCXPRT *xprt = sock >= 0 ? svctcp_create(sock, 0, 0) : NULL;
    if (xprt == NULL) {
        fprintf(stderr, "log_server: cannot listen on port %ld: %s\n", port < 0 ? 0 : port,
                strerror(errno));
        logstore_close(store);
        return 1;
    }
    if (!svc_register(xprt, LOGRPC_PROG, LOGRPC_VERS, logrpc_prog_1, 0)) {
        fprintf(stderr, "log_server: cannot register the program\n");
        svc_destroy(xprt);
        logstore_close(store);
        return 1;
    }
    if (with_rpcbind && !register_rpcbind(xprt)) {
        fprintf(stderr, "log_server: rpcbind refused the registration\n");
        with_rpcbind = false;
        if (port < 0) {
            svc_destroy(xprt);
            logstore_close(store);
            return 1;
        }
    }
    fprintf(stderr, "log_server: writing %s; listening on port %u%s\n", path, bound,
            with_rpcbind ? ", registered with rpcbind" : " (no rpcbind)");

    serve(sigfd, path);

    if (with_rpcbind)
        rpcb_unset(LOGRPC_PROG, LOGRPC_VERS, NULL);
    svc_destroy(xprt);
    fprintf(stderr, "log_server: %llu lines written, %llu duplicates skipped\n",
            (unsigned long long)logstore_written(store),
            (unsigned long long)logstore_duplicates(store));
    logstore_close(store);
    close(sigfd);
    return 0;
}
