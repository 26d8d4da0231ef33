/*
 * metrics.h - the server's counters, for /metrics and /api/state (http.c).
 *
 * Every counter is a C11 atomic updated with relaxed order: counting takes
 * no lock on the request path, and a reader sums what it sees (a scrape may
 * miss an increment that lands while it reads, never a whole count).  The
 * counters run in every server, bare or not; only the HTTP endpoint that
 * shows them is optional (-H).
 *
 * Hooks: the operation path calls metrics_operation() once per operation
 * performed; conns.c counts connections opened, closed and refused at the
 * caps; the request reader's refusals (deadline, malformed) come from the
 * operation path too; liveness.c counts probes and expiries.
 */
#ifndef PEERDEX_METRICS_H
#define PEERDEX_METRICS_H

#include <stdbool.h>
#include <stdio.h>

#include "registry.h"
#include "request.h"

/* Why a connection got no operation performed. */
enum refusal {
    REFUSED_CAP,            /* over the connection cap (-c) */
    REFUSED_PER_SOURCE,     /* over the per-source cap (-i) */
    REFUSED_DEADLINE,       /* the request did not arrive within -t */
    REFUSED_MALFORMED,      /* unknown operation, bad field, cut short */
    REFUSED_KINDS
};

/* Result codes counted per operation: 0..RESULT_CODES-1 (more is clamped). */
#define RESULT_CODES 8

/*
 * One operation performed by `user` (path: its file path or target user,
 * NULL when none), answered with result code `code`; also recorded in the
 * recent operations (activity.h) when those are kept and user is not NULL
 * (EXTENSIONS, which has no user, is only counted).
 */
void metrics_operation(enum op op, unsigned code, const char *user, const char *path);

/* A connection admitted (open until metrics_conn_closed()), or refused. */
void metrics_conn_opened(void);
void metrics_conn_closed(void);
void metrics_refused(enum refusal why);

/* The liveness prober: one probe made (dead: it failed), a session expired. */
void metrics_probe(bool dead);
void metrics_expiry(const char *user);

/* Operations performed so far with result code `code` (for /api/state). */
unsigned long metrics_operations(enum op op, unsigned code);

/* A few sums for /api/state's totals. */
struct metrics_totals {
    unsigned long operations, connections_open, expiries;
};
void metrics_totals(struct metrics_totals *t);

/*
 * Write every metric in the Prometheus text format (version 0.0.4) to out:
 * the counters above, and the gauges read now from the registry (reg),
 * the operation log and the state directory.
 */
void metrics_write(FILE *out, struct registry *reg);

/* Seconds since the server started (since the first call, made at start). */
double metrics_uptime(void);

#endif
