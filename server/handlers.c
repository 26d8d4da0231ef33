/* handlers.c - one operation per connection; see handlers.h. */
#include "handlers.h"

#include "console.h"
#include "framing.h"
#include "oplog.h"
#include "reply.h"
#include "request.h"

/*
 * The result code of each registry status, per operation.  A status an
 * operation cannot produce maps to 0 here and never occurs; REG_NO_MEMORY
 * and anything unexpected become the operation's "other error".
 */
static unsigned char result_code(enum op op, enum reg_status st)
{
    switch (st) {
    case REG_OK:
        return 0;
    case REG_NO_USER:
        return 1;
    case REG_USER_EXISTS:
        return op == OP_REGISTER ? 1 : op_other_error(op);
    case REG_CONNECTED:
    case REG_NOT_CONNECTED:
        return 2;
    case REG_PUBLISHED:
    case REG_NOT_PUBLISHED:
    case REG_NO_TARGET:
        return 3;
    case REG_NO_MEMORY:
        break;
    }
    return op_other_error(op);
}

/* Apply a valid request to the registry; list results go into out. */
static enum reg_status apply(struct registry *reg, const struct request *req,
                             const char *peer_ip, struct reply *out)
{
    switch (req->op) {
    case OP_REGISTER:
        return registry_register(reg, req->user);
    case OP_UNREGISTER:
        return registry_unregister(reg, req->user);
    case OP_CONNECT:
        return registry_connect(reg, req->user, peer_ip, req->port);
    case OP_DISCONNECT:
        return registry_disconnect(reg, req->user);
    case OP_PUBLISH:
        return registry_publish(reg, req->user, req->path, req->description);
    case OP_DELETE:
        return registry_delete(reg, req->user, req->path);
    case OP_LIST_USERS:
        return registry_list_users(reg, req->user, out);
    case OP_LIST_CONTENT:
        return registry_list_content(reg, req->user, req->target, out);
    default:
        return REG_NO_MEMORY;   /* unreachable: the parser knows no other */
    }
}

void handle_connection(const struct handler_config *cfg, int fd,
                       const char *peer_ip)
{
    char buf[REQUEST_MAX];
    struct request req;
    enum read_status rs = framing_read_request(fd, buf, sizeof buf,
                                               cfg->timeout_ms, &req);
    if (rs == READ_UNKNOWN_OP || req.op == OP_UNKNOWN)
        return;                 /* nothing to answer: just close */

    struct reply out;
    reply_init(&out);
    if (rs != READ_OK) {
        /* Bad, partial or stalled request: "other error", no state change. */
        reply_add_byte(&out, op_other_error(req.op));
    } else {
        /* The user name comes from the network: escaped (see console.h). */
        char user[CONSOLE_ESCAPED_MAX(FIELD_MAX)];
        console_printf("s> OPERATION %s FROM %s\n", op_name(req.op),
                       console_escape(req.user, user, sizeof user));
        if (!oplog_submit(req.user, op_name(req.op), req.path, req.datetime)) {
            reply_add_byte(&out, op_other_error(req.op));
        } else {
            /* The list data goes after the result byte, so reserve it. */
            reply_add_byte(&out, 0);
            enum reg_status st = apply(cfg->registry, &req, peer_ip, &out);
            if (out.failed) {
                /* The registry answered, but the reply could not be built. */
                reply_reset(&out);
                reply_add_byte(&out, op_other_error(req.op));
            } else {
                out.data[0] = (char)result_code(req.op, st);
            }
        }
    }
    if (rs != READ_ERROR)
        framing_send(fd, &out, cfg->timeout_ms);
    reply_free(&out);
}
