/*
 * logsource.h - what the operation log's sender (oplog.h) sends from: a
 * source of entries behind two calls, next batch and acknowledge.
 *
 * Two sources exist: the in-memory queue (logqueue.h, no -d) and the
 * journal outbox (outbox.h, with -d).  Only the sender's thread calls
 * next() and acknowledge().
 */
#ifndef PEERDEX_LOGSOURCE_H
#define PEERDEX_LOGSOURCE_H

#include <stddef.h>
#include <stdint.h>

/* One entry as the sender sends it; the strings belong to the source and
 * live until the entry is acknowledged.  path is "" when there is none. */
struct log_item {
    uint64_t seq;
    const char *user, *op, *path, *datetime;
};

struct log_source {
    /*
     * Point out[0..max) at the oldest entries not yet acknowledged (the
     * same ones again after a send that failed), waiting up to wait_ms for
     * the first one.  Returns the count; 0 when none came in time.
     */
    size_t (*next)(void *ctx, struct log_item *out, size_t max, long wait_ms);
    /* The log server has the first n entries of the last batch: drop them. */
    void (*acknowledge)(void *ctx, size_t n);
    /*
     * For the metrics, from any thread: how many entries the log server
     * has not acknowledged, and when the oldest of them was taken (ms on
     * the monotonic clock; 0 when none).
     */
    void (*backlog)(void *ctx, uint64_t *entries, int64_t *oldest_ms);
    void *ctx;
    uint64_t origin;        /* whose entries these are, at the log server */
    const char *where;      /* where entries wait meanwhile, for messages */
};

/* A new origin id: 64 random bits, never 0 (the log store's own). */
uint64_t log_origin_new(void);

#endif
