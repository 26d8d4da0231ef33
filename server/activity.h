/*
 * activity.h - the last operations the index performed, for the live view
 * (/api/state): a ring of ACTIVITY_MAX entries, newest overwriting oldest.
 *
 * Kept only when activity_start() was called (the server runs with -H), so
 * the bare server copies nothing.  Each slot has its own mutex: a writer
 * claims the next sequence number with one atomic add and locks only the
 * slot it writes, so writers on different slots never wait for each other
 * and a reader copies one slot at a time.  No other lock is taken with a
 * slot's.
 */
#ifndef PEERDEX_ACTIVITY_H
#define PEERDEX_ACTIVITY_H

#include <stddef.h>
#include <stdint.h>

#include "request.h"

#define ACTIVITY_MAX 64

struct activity {
    uint64_t seq;               /* 1, 2, ...: the order they were recorded */
    int64_t time_ms;            /* when, in Unix milliseconds */
    const char *op;             /* a static name: "REGISTER"..., "EXPIRED" */
    unsigned code;              /* the result code answered */
    char user[FIELD_MAX + 1];
    char path[FIELD_MAX + 1];   /* file path or target user; "" when none */
};

/* Keep the last operations from now on.  Call before any request is served. */
void activity_start(void);

/* Record one operation (path may be NULL); nothing when not started. */
void activity_record(const char *op, unsigned code, const char *user, const char *path);

/* Copy up to max of the newest entries into out, newest first; their count. */
size_t activity_recent(struct activity *out, size_t max);

#endif
