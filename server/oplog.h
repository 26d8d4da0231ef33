/*
 * oplog.h - reporting every operation to the log server over ONC-RPC.
 *
 * Request handlers call oplog_submit(), which only queues the entry; a
 * logging thread owns the RPC client and delivers entries in order.
 */
#ifndef PEERDEX_OPLOG_H
#define PEERDEX_OPLOG_H

#include <stdbool.h>

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

/* Deliver what is queued, waiting at most drain_ms, then stop the thread. */
void oplog_stop(int drain_ms);

#endif
