/* ops.c - log, apply, wait: the one path of every operation; see ops.h. */
#include "ops.h"

#include "durable.h"

enum reg_status ops_perform(struct registry *reg, struct reg_op *op, struct listing **list)
{
    enum reg_status st = registry_apply(reg, op, list);    /* logs op->seq */
    /* -S always: the record is durable first.  A failed sync is no OK for
     * a change (it stays in memory, unacknowledged, until a restart). */
    if (op->seq != 0 && !durable_wait(op->seq) && !ops_read_only(op->op))
        st = REG_NO_MEMORY;
    return st;
}

bool ops_read_only(enum op op)
{
    return op == OP_LIST_USERS || op == OP_LIST_CONTENT || op == OP_SEARCH;
}
