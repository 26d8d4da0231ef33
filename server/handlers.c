/* handlers.c - one operation per connection; see handlers.h. */
#include "handlers.h"

#include <netinet/in.h>
#include <string.h>

#include "config.h"
#include "console.h"
#include "framing.h"
#include "liveness.h"
#include "metrics.h"
#include "net.h"
#include "ops.h"
#include "request.h"
#include "diag.h"

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
        return op == OP_REGISTER || op == OP_REGISTER_AUTH ? 1 : op_other_error(op);
    case REG_CONNECTED:
    case REG_NOT_CONNECTED:
        return 2;
    case REG_PUBLISHED:
    case REG_NOT_PUBLISHED:
    case REG_NO_TARGET:
        return 3;
    case REG_QUOTA_FILES:
    case REG_QUOTA_BYTES:
    case REG_NO_MEMORY:
    case REG_NOT_PROVEN:
        break;
    }
    return op_other_error(op);
}

/*
 * Up to 32 bytes of s (stopping at a NUL or at len) as printable ASCII,
 * anything else as '?', into out (at least 33 bytes): a client's bytes
 * shown on the console cannot forge lines or move the cursor.
 */
static const char *excerpt(const char *s, size_t len, char *out)
{
    size_t i;
    for (i = 0; i < len && i < 32 && s[i] != '\0'; i++)
        out[i] = s[i] >= ' ' && s[i] < 0x7f && s[i] != '"' ? s[i] : '?';
    out[i] = '\0';
    return out;
}

/*
 * Say on stderr why a request was refused, and from where, so that whoever
 * runs the server sees why another client fails.  stdout keeps only the
 * protocol's lines.
 */
static void report_refusal(enum read_status rs, const struct request *req,
                           const char *buf, const char *peer_ip)
{
    char shown[33];
    if (req->why == NULL)
        return;                 /* closed without sending anything */
    if (rs == READ_UNKNOWN_OP)
        diag("s> REFUSED request FROM %s: unknown operation \"%s\"\n",
                        peer_ip, excerpt(buf, 32, shown));
    else if (req->odd_datetime && strcmp(req->why, "no date-time") == 0)
        diag("s> REFUSED %s FROM %s: no date-time (second field \"%s\")\n",
                        op_name(req->op), peer_ip,
                        excerpt(req->datetime, strlen(req->datetime), shown));
    else
        diag("s> REFUSED %s FROM %s: %s\n",
                        req->op == OP_UNKNOWN ? "request" : op_name(req->op),
                        peer_ip, req->why);
}

/*
 * A users listing as this requester should see it: users connected from
 * loopback are listed with the address the requester reached this server
 * at, unless the requester is on loopback too (a peer elsewhere could not
 * dial our loopback).  Returns list itself, or a copy (list released), or
 * NULL (list released) when no copy could be made.
 */
static struct listing *as_seen_by(struct listing *list, int fd, const char *peer_ip)
{
    char local[INET6_ADDRSTRLEN];
    if (!list->has_loopback || net_is_loopback(peer_ip) ||
        net_local_ip(fd, local, sizeof local) < 0)
        return list;
    struct listing *copy = listing_with_address(list, local);
    listing_release(list);
    return copy;
}

/* Say on the console why a PUBLISH was refused past a quota; user is the
 * requester's name, escaped already. */
static void report_quota(const char *user, enum reg_status st)
{
    if (st == REG_QUOTA_FILES)
        console_printf("s> PUBLISH FROM %s REFUSED: quota of %lu files per user reached\n",
                       user, config.files_per_user);
    else if (st == REG_QUOTA_BYTES)
        console_printf("s> PUBLISH FROM %s REFUSED: listing would pass its quota of "
                       "%lu bytes\n", user, config.listing_bytes);
}

/*
 * Check a request's AUTH proof, if any, before it is performed (registry_prove
 * is the one place where proofs are verified).  False, after saying why on
 * the console, when the request is refused for its proof.
 */
static bool check_proof(struct registry *reg, struct reg_op *op, const char *peer_ip,
                        const char *user, enum op wire_op)
{
    enum reg_proof p = registry_prove(reg, op);
    if (p == PROOF_NONE || p == PROOF_OK || p == PROOF_NO_USER)
        return true;            /* an unknown user: the operation answers that */
    diag("s> REFUSED AUTH %s FROM %s: %s (user %s)\n", op_name(wire_op), peer_ip,
         registry_proof_why(p), user);
    return false;
}

void handle_connection(const struct handler_config *cfg, int fd,
                       const char *peer_ip)
{
    char buf[REQUEST_MAX];
    struct request req;
    memset(buf, 0, 33);         /* so excerpt() ends where the bytes received do */
    enum read_status rs = framing_read_request(fd, buf, sizeof buf,
                                               cfg->timeout_ms, &req);
    if (rs != READ_OK) {
        report_refusal(rs, &req, buf, peer_ip);
        if (req.why != NULL)    /* it sent something: a refused request */
            metrics_refused(rs == READ_TIMEOUT ? REFUSED_DEADLINE : REFUSED_MALFORMED);
    }
    if (rs == READ_UNKNOWN_OP || req.op == OP_UNKNOWN)
        return;                 /* nothing to answer: just close */
    if (rs == READ_OK && req.op == OP_EXTENSIONS) {
        /* Discovery, not a user's operation: no console line, no log entry. */
        char reply[EXTENSIONS_REPLY_MAX];
        framing_send_bytes(fd, reply, extensions_reply(reply), cfg->timeout_ms);
        metrics_operation(req.op, 0, NULL, NULL);   /* counted, not listed */
        return;
    }

    unsigned char code = op_other_error(req.op);
    struct listing *list = NULL;
    /* The user name comes from the network: escaped (see console.h). */
    char user[CONSOLE_ESCAPED_MAX(FIELD_MAX)];
    if (rs == READ_OK)
        console_escape(req.user, user, sizeof user);
    /* REGISTER_AUTH is the REGISTER of a user with a secret (logged as
     * REGISTER, its secret never); an AUTH wrapper's proof goes along. */
    struct reg_op op = {.op = req.op == OP_REGISTER_AUTH ? OP_REGISTER : req.op,
                        .datetime = req.datetime, .user = req.user,
                        .path = req.path, .description = req.description,
                        .target = req.target, .ip = peer_ip, .port = req.port,
                        .query = req.query, .max = req.max,
                        .proof = req.auth ? &req.proof : NULL,
                        .secret = req.op == OP_REGISTER_AUTH ? req.secret : NULL};
    if (rs == READ_OK && check_proof(cfg->registry, &op, peer_ip, user, req.op)) {
        /* With liveness on, a dead session of this user ends first. */
        if (req.op == OP_CONNECT)
            liveness_before_connect(cfg->registry, req.user, op.proven != 0);
        console_printf("s> OPERATION %s FROM %s\n", op_name(req.op), user);
        /* A log that cannot take it (a full queue) refuses the operation
         * rather than perform it unlogged: REG_NO_MEMORY, "other error". */
        enum reg_status st = ops_perform(cfg->registry, &op, &list);
        code = result_code(req.op, st);
        report_quota(user, st);
        if (st == REG_NOT_PROVEN)
            diag("s> REFUSED %s FROM %s: %s is an authenticated user and the request "
                 "carries no proof for it\n", op_name(req.op), peer_ip, user);
        if (st == REG_OK && req.op == OP_LIST_USERS)
            list = as_seen_by(list, fd, peer_ip);
        if (st == REG_OK && list == NULL && ops_read_only(req.op))
            code = op_other_error(req.op);      /* no memory for the copy */
        metrics_operation(req.op, code, req.user, req.path ? req.path : req.target);
    }
    /* A bad, partial or stalled request gets "other error", no state change.
     * A list reply goes out straight from the shared listing (its first
     * byte is the result code 0). */
    if (rs != READ_ERROR) {
        if (list != NULL)
            framing_send_bytes(fd, list->data, list->len, cfg->timeout_ms);
        else
            framing_send_bytes(fd, (const char *)&code, 1, cfg->timeout_ms);
    }
    listing_release(list);
}
