/*
 * liveness.h - finding connected users whose client has died, and expiring
 * their sessions.
 *
 * With liveness on, one prober thread tries a TCP connection to the
 * listening endpoint of every connected user every interval (and once right
 * at start, so sessions restored from disk are checked at once), many at a
 * time in one poll() loop, and closes each connection as soon as it is made.
 * A user whose endpoint fails `failures` rounds in a row is expired: it is
 * disconnected as DISCONNECT would, with a console line and an
 * operation-log entry (docs/protocol.md).  A CONNECT of a user who is
 * connected already probes that user's endpoint first, so a user whose
 * client crashed can connect again at once.
 *
 * The registry lock is never held across a probe: endpoints are copied out
 * first and a session is expired only if it is still the one probed.
 */
#ifndef PEERDEX_LIVENESS_H
#define PEERDEX_LIVENESS_H

#include <stdbool.h>

#include "registry.h"

/* How long one probe may take to connect before it counts as failed. */
#define LIVENESS_PROBE_TIMEOUT_MS 1000

/*
 * Start probing reg's connected users every interval_s seconds, expiring a
 * session after `failures` failed probes in a row.  interval_s 0 turns
 * liveness off (nothing is started; every function here then does nothing).
 * Call once, before any request is served.  Returns 0, or -1 when the
 * prober cannot start.
 */
int liveness_start(struct registry *reg, unsigned interval_s, unsigned failures);

/*
 * Before a CONNECT of `user`: if liveness is on and user is connected
 * already, probe its recorded endpoint now (at most the probe timeout) and
 * expire that session if the probe fails, so that the CONNECT that follows
 * can succeed.  A live session is left alone.  Called by connection threads.
 */
void liveness_before_connect(struct registry *reg, const char *user, bool proven);

/* Stop the prober thread (at once, even mid-round) and free its state. */
void liveness_stop(void);

#endif
