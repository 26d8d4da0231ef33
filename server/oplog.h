/*
 * oplog.h - the operation log's sender: every operation reported to the
 * log server over ONC-RPC, in order, exactly once.
 *
 * A logging thread owns the RPC client (connection, signing with -k,
 * reconnecting, batching) and delivers what its source (logsource.h)
 * hands it: the in-memory queue (logqueue.h) without a state directory,
 * the journal outbox (outbox.h) with one.  main.c wires the two.
 */
#ifndef PEERDEX_OPLOG_H
#define PEERDEX_OPLOG_H

#include <stdint.h>

#include "logsource.h"

struct oplog_config {
    const char *host;           /* the log server's name or IPv4 address */
    unsigned port;              /* its TCP port; 0: ask its rpcbind */
    uint32_t prog;              /* its ONC-RPC program number; 0: LOGRPC_PROG */
    const char *key_file;       /* sign batches with this key; NULL: unsigned */
};

/*
 * Start the logging thread towards cfg's log server, sending from src.
 * Returns 0, or -1 after saying why.
 */
int oplog_start(const struct oplog_config *cfg, const struct log_source *src);

/*
 * For the metrics: entries the log server has not acknowledged yet, and
 * the age in seconds of the oldest of them (0 when none); zeros when
 * logging is off.  Any thread, while the sender runs or after.
 */
void oplog_backlog(uint64_t *entries, double *oldest_s);

/* Deliver what the source holds, waiting at most drain_ms, then stop the thread. */
void oplog_stop(int drain_ms);

#endif
