/*
 * http.h - the read-only HTTP endpoint (-H): the live view page, its state
 * as JSON and the metrics, served by libmicrohttpd on a thread of its own.
 *
 *   GET /            the live view (page.css and page.js beside it)
 *   GET /api/state   totals, connected users, the last operations (JSON)
 *   GET /metrics     every counter in the Prometheus text format
 *
 * Nothing here changes the index.  The HTTP thread reads the registry
 * through registry_view() only, which holds the registry lock for a
 * bounded copy (HTTP_USERS_MAX users, no file), never longer than a
 * LIST_USERS does; the counters are atomics and the last operations a ring
 * with a lock per slot (metrics.h, activity.h).  See docs/http.md.
 */
#ifndef PEERDEX_HTTP_H
#define PEERDEX_HTTP_H

#include "config.h"
#include "registry.h"

/* Connected users /api/state lists at most (its totals count them all). */
#define HTTP_USERS_MAX 200

/*
 * Listen on addr and serve reg's view there from a thread of libmicrohttpd;
 * say the URL on stderr.  0, or -1 after saying why on stderr.
 */
int http_start(const struct hostport *addr, struct registry *reg);

/* Stop serving (nothing when not started); waits for the thread to end. */
void http_stop(void);

#endif
