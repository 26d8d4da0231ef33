/*
 * conns.h - accepting connections and serving each one on a thread of its
 * own, from request to close, within the connection cap (config.max_conns);
 * running out of descriptors; ending every connection at shutdown.
 */
#ifndef PEERDEX_CONNS_H
#define PEERDEX_CONNS_H

#include <stdbool.h>

#include "handlers.h"

/*
 * Start accepting on the listening socket lfd; each connection is served
 * by handle_connection(handler, ...).  Returns 0, or -1 when no accepting
 * thread could start.
 */
int conns_start(int lfd, const struct handler_config *handler);

/*
 * Stop accepting (lfd is shut down, not closed), let in-flight requests
 * finish for a grace period, then cut the connections still open.  Returns
 * true when no connection is left, so nothing uses the registry any more.
 */
bool conns_stop(void);

#endif
