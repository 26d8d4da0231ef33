/*
 * oplog.h - reporting every operation to the log server over ONC-RPC.
 *
 * Request handlers call oplog_submit(), which only queues the entry; a
 * logging thread owns the RPC client and delivers entries in order.  With a
 * state directory (durable.h, started before oplog_start()) the thread reads
 * the journal instead and oplog_submit() queues nothing.
 */
#ifndef PEERDEX_OPLOG_H
#define PEERDEX_OPLOG_H

#include <stdbool.h>
#include <stdint.h>

/*
 * Start the logging thread towards config.log_host (LOG_RPC_IP) and
 * config.log_port.  Without a log host the server runs with no operation
 * log and says so once.
 * Returns 0, or -1 when logging was asked for but cannot start.
 */
int oplog_start(void);

/*
 * Queue one entry (path may be NULL).  Returns false when the entry cannot
 * be accepted; the caller then refuses the operation rather than perform it
 * unlogged.  Always true when logging is off.
 */
bool oplog_submit(const char *user, const char *op, const char *path,
                  const char *datetime);

/*
 * For the metrics: entries the log server has not acknowledged yet (queued,
 * or journaled past what it has), and the age in seconds of the oldest of
 * them (0 when none; with -d, counted from when the logging thread read it
 * from the journal).  Zeros when logging is off.  Any thread.
 */
void oplog_backlog(uint64_t *entries, double *oldest_s);

/* Deliver what is queued, waiting at most drain_ms, then stop the thread. */
void oplog_stop(int drain_ms);

#endif
