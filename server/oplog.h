/*
 * oplog.h - reporting every operation to the log server over ONC-RPC.
 *
 * Without a state directory the registry's log hook (oplog_queue_op) puts
 * each operation's entry on a queue under the registry lock; a logging
 * thread owns the RPC client and delivers entries in order.  With a state
 * directory (durable.h, started before oplog_start()) the thread reads the
 * journal instead, and nothing is queued.
 */
#ifndef PEERDEX_OPLOG_H
#define PEERDEX_OPLOG_H

#include <stdbool.h>

#include "registry.h"

/*
 * Start the logging thread towards config.log_host (LOG_RPC_IP) and
 * config.log_port.  Without a log host the server runs with no operation
 * log and says so once.
 * Returns 0, or -1 when logging was asked for but cannot start.
 */
int oplog_start(void);

/*
 * The registry's log hook in memory mode (no -d) once oplog_start() has
 * started a log: queue op's entry and give it the next sequence number
 * (op->seq), under the registry lock, so the log's order is the order in
 * which operations took effect.  False when the queue is full or stopping
 * (the registry then refuses the operation rather than perform it
 * unlogged).
 */
bool oplog_queue_op(void *ctx, struct reg_op *op, enum reg_status st);

/* Deliver what is queued, waiting at most drain_ms, then stop the thread. */
void oplog_stop(int drain_ms);

#endif
