/*
 * main.c - the index server's start-up order and its wait for a signal.
 *
 * Configuration (config.c), the registry with its state directory when -d
 * is given (durable.c), the listening socket, the logging thread (oplog.c),
 * the console thread (console.c), the HTTP endpoint (http.c, with -H), the
 * liveness prober (liveness.c, with -L) and the connections (conns.c) are
 * started in that order, so the prober's first round checks the sessions
 * restored from the state directory; the main thread then waits on a
 * signalfd for SIGINT/SIGTERM and stops them in the reverse order.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "config.h"
#include "conns.h"
#include "console.h"
#include "durable.h"
#include "handlers.h"
#include "http.h"
#include "liveness.h"
#include "metrics.h"
#include "net.h"
#include "logqueue.h"
#include "oplog.h"
#include "outbox.h"
#include "registry.h"
#include "diag.h"

#define OPLOG_DRAIN_MS 5000             /* for queued log entries to leave */

/*
 * Undo a start that failed once the registry was made (a refused state
 * directory, a port in use, a refused log key): close what was opened, so
 * that nothing leaks, and give the exit status.
 */
static int start_failed(struct registry *reg, int lfd)
{
    if (lfd >= 0)
        close(lfd);
    durable_close();            /* nothing when no state directory is open */
    registry_free(reg);
    return 1;
}

/* The operation log's source when it is the journal (-d), else NULL. */
static struct outbox *outbox;

/*
 * The operation log: its source (with -d the journal outbox; without, the
 * in-memory queue, which then logs every operation under the registry
 * lock as the registry's log hook) and the sender that delivers it.
 * Without LOG_RPC_IP, none, said once.  0, or -1 after saying why.
 */
static int start_log(struct registry *reg)
{
    if (config.log_host == NULL) {
        diag("server: LOG_RPC_IP not set: running without an operation log\n");
        return 0;
    }
    struct log_source src;
    if (durable_journal() != NULL) {
        if ((outbox = outbox_open(config.state_dir, durable_journal(), &src)) == NULL)
            return -1;
    } else if (logqueue_open(config.log_queue_max, &src) < 0) {
        diag("server: cannot make the operation log's queue\n");
        return -1;
    }
    struct oplog_config oc = {.host = config.log_host, .port = (unsigned)config.log_port,
                              .prog = (uint32_t)config.log_prog,
                              .key_file = config.log_key_file};
    if (oplog_start(&oc, &src) < 0) {
        outbox_close(outbox);
        outbox = NULL;
        return -1;
    }
    if (outbox == NULL)
        registry_set_log(reg, logqueue_op, NULL);
    return 0;
}

/* Deliver what waits (for a while), then stop the operation log. */
static void stop_log(void)
{
    if (config.log_host == NULL)
        return;
    oplog_stop(OPLOG_DRAIN_MS);
    if (outbox != NULL)
        outbox_close(outbox);
    else
        logqueue_close();       /* says how many entries were not delivered */
    outbox = NULL;
}

int main(int argc, char **argv)
{
    int status = config_load(argc, argv);
    if (status >= 0)
        return status;
    if (config.dump)
        return durable_dump(config.state_dir, stdout) == 0 ? 0 : 1;
    if (config.forget_key)
        return durable_forget_key(config.state_dir, config.forget_key) == 0 ? 0 : 1;

    metrics_uptime();                   /* the clock starts now */
    signal(SIGPIPE, SIG_IGN);
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    /* Blocked here, so in every thread; the main loop reads them. */
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    int sfd = signalfd(-1, &stop_signals, SFD_CLOEXEC);

    /* Static, so the registry stays reachable when the server exits without
     * freeing it (an early error, or threads still using it at shutdown). */
    static struct handler_config handler;
    handler.registry = registry_new();
    handler.timeout_ms = (int)config.timeout_ms;
    if (sfd < 0 || handler.registry == NULL) {
        diag_errno("server: start-up");
        return 1;
    }
    if (config.state_dir != NULL) {
        struct durable_config dc = {
            .dir = config.state_dir, .budget = config.log_budget,
            .sync = strcmp(config.sync, "always") == 0 ? SYNC_ALWAYS : SYNC_BATCH,
            .compact_bytes = config.compact_bytes, .outbox = config.log_host != NULL,
            .accept_loss = config.accept_loss != 0,
        };
        if (durable_open(&dc, handler.registry) < 0)
            return start_failed(handler.registry, -1);
    }
    /* After the restore: quotas bound new PUBLISHes, not what was accepted
     * (and journaled) before.  0 (the bare default): no quota. */
    registry_set_quotas(handler.registry,
                        config.files_per_user ? config.files_per_user : SIZE_MAX,
                        config.listing_bytes ? config.listing_bytes : SIZE_MAX);

    unsigned bound;
    int lfd = net_listen_dual((unsigned)config.port, SOMAXCONN, &bound);
    if (lfd < 0) {
        diag("server: cannot listen on port %lu: %s\n", config.port,
                strerror(errno));
        return start_failed(handler.registry, -1);
    }
    if (start_log(handler.registry) < 0)
        return start_failed(handler.registry, lfd);
    if (console_start(config.console_bytes) < 0)
        diag("server: no console thread; writing lines directly\n");
    /* Before the prober and the connections, so the last operations (and
     * expiries) are kept from the first. */
    if (config.http.set && http_start(&config.http, handler.registry) < 0)
        return 1;
    /* Before accepting, so handlers see liveness on from the first CONNECT. */
    if (liveness_start(handler.registry, (unsigned)config.probe_s,
                       (unsigned)config.probe_failures) < 0) {
        diag_errno("server: liveness prober");
        return 1;
    }
    /* Accepting starts before the banner, so the server is in its steady
     * state once it says it is up. */
    if (conns_start(lfd, &handler) < 0) {
        diag_errno("server: start-up");
        return 1;
    }
    char host[64];
    net_host_ip(host, sizeof host);
    console_printf("s> init server %s:%u\n", host, bound);

    /* This thread only waits for SIGINT or SIGTERM. */
    struct signalfd_siginfo si;
    while (read(sfd, &si, sizeof si) < 0 && errno == EINTR)
        ;
    http_stop();                        /* it reads the registry, the log, the journal */
    bool idle = conns_stop();
    close(lfd);
    liveness_stop();                    /* it logs and prints: stop it first */
    stop_log();
    durable_close();            /* a final snapshot: the next start replays nothing */
    console_stop();
    if (idle)
        registry_free(handler.registry);    /* else threads still use it */
    close(sfd);
    return 0;
}
