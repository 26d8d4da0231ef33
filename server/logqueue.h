/*
 * logqueue.h - the operation log's source without a state directory: a
 * bounded in-memory queue filled by the registry's log hook.
 *
 * Each operation's entry is queued, and given the next sequence number,
 * in the registry's critical section (registry_set_log), so the log's
 * order is the order in which operations took effect.  A full queue
 * refuses the operation rather than perform it unlogged.  The origin is
 * new for each run.
 */
#ifndef PEERDEX_LOGQUEUE_H
#define PEERDEX_LOGQUEUE_H

#include <stdbool.h>
#include <stddef.h>

#include "logsource.h"
#include "registry.h"

/* Make the queue, holding at most max entries; its source into *src.  0 or -1. */
int logqueue_open(size_t max, struct log_source *src);

/*
 * The registry's log hook: queue op's entry (refused operations too),
 * setting op->seq.  False when the queue is full or closed.
 */
bool logqueue_op(void *ctx, struct reg_op *op, enum reg_status st);

/* Refuse new entries, free those left (saying how many were never
 * delivered).  The sender has stopped. */
void logqueue_close(void);

#endif
