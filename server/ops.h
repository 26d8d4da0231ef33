/*
 * ops.h - the one path of every operation.
 *
 * A client's request (handlers.c), a session's expiry (liveness.c) and a
 * journal record replayed at start (durable.c) all go through
 * ops_perform(): the operation is logged (the registry's log hook appends
 * it to the journal with -d, or to the operation log's queue without, in
 * the same critical section as the change, so the log's order is the
 * order in which operations took effect), applied to the registry, and,
 * under -S always, made durable before the caller answers anyone.
 */
#ifndef PEERDEX_OPS_H
#define PEERDEX_OPS_H

#include "registry.h"

/*
 * Perform op on reg: log, apply, wait for durability.  A list reply
 * comes back in *list on REG_OK (the caller releases it).  A log that
 * cannot take the operation (a full queue, a journal that refuses it)
 * leaves the registry unchanged and answers REG_NO_MEMORY; so does a
 * change whose journal sync failed (durable.h), though it was applied.
 */
enum reg_status ops_perform(struct registry *reg, struct reg_op *op, struct listing **list);

/* True for the operations that only read (the lists): a replay skips them. */
bool ops_read_only(enum op op);

#endif
