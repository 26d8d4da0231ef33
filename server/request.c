/* request.c - request table and pure parser; see request.h. */
#include "request.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "decimal.h"
#include "search.h"

/* The kinds of field after the operation name and date-time. */
enum field_kind { F_USER, F_PATH, F_DESCRIPTION, F_PORT, F_TARGET, F_QUERY, F_MAX, F_SECRET };

struct op_spec {
    const char *name;
    unsigned char other_error;
    int nargs;                      /* fields after the date-time */
    enum field_kind args[3];
};

static const struct op_spec ops[OP_COUNT] = {
    [OP_REGISTER]     = {"REGISTER",     2, 1, {F_USER}},
    [OP_UNREGISTER]   = {"UNREGISTER",   2, 1, {F_USER}},
    [OP_CONNECT]      = {"CONNECT",      3, 2, {F_USER, F_PORT}},
    [OP_DISCONNECT]   = {"DISCONNECT",   3, 1, {F_USER}},
    [OP_PUBLISH]      = {"PUBLISH",      4, 3, {F_USER, F_PATH, F_DESCRIPTION}},
    [OP_DELETE]       = {"DELETE",       4, 2, {F_USER, F_PATH}},
    [OP_LIST_USERS]   = {"LIST_USERS",   3, 1, {F_USER}},
    [OP_LIST_CONTENT] = {"LIST_CONTENT", 4, 2, {F_USER, F_TARGET}},
    [OP_REGISTER_AUTH] = {"REGISTER_AUTH", 2, 2, {F_USER, F_SECRET}},
    [OP_EXTENSIONS]   = {"EXTENSIONS",   2, 0, {0}},
    [OP_SEARCH]       = {"SEARCH",       4, 3, {F_USER, F_QUERY, F_MAX}},
};

/*
 * The extension operations this server speaks, as EXTENSIONS lists them to
 * a client finding out whether it may use them; NULL ends the list.  A
 * feature adds its operation's name here when it lands.
 */
static const char *const extension_names[] = {
    "SEARCH",
    "AUTH",             /* authenticated users: REGISTER_AUTH and the AUTH wrapper */
    NULL
};

size_t extensions_reply(char *out)
{
    size_t count = 0;
    while (extension_names[count] != NULL)
        count++;
    size_t len = 1;
    out[0] = 0;
    len += (size_t)snprintf(out + len, EXTENSIONS_REPLY_MAX - len, "%zu", count) + 1;
    for (size_t i = 0; i < count; i++) {
        size_t n = strlen(extension_names[i]) + 1;
        memcpy(out + len, extension_names[i], n);   /* the table fits: see the test */
        len += n;
    }
    return len;
}

#define LOSS_NAME "LOSS"           /* OP_LOSS: journal and log only */

const char *op_name(enum op op)
{
    if (op == OP_LOSS)
        return LOSS_NAME;
    return op >= 0 && op < OP_COUNT ? ops[op].name : NULL;
}

enum op op_by_name(const char *name)
{
    for (int i = 0; i < OP_COUNT; i++)
        if (strcmp(name, ops[i].name) == 0)
            return (enum op)i;
    return strcmp(name, LOSS_NAME) == 0 ? OP_LOSS : OP_UNKNOWN;
}

unsigned char op_other_error(enum op op)
{
    return op >= 0 && op < OP_COUNT ? ops[op].other_error : 2;
}

/*
 * Match the (possibly unterminated) first field against the operation names.
 * Returns the operation when complete, OP_COUNT while the bytes so far are a
 * prefix of some name, OP_UNKNOWN when they can never be one.
 */
static enum op match_op(const char *s, size_t n, bool complete)
{
    bool prefix = false;
    for (int i = 0; i < OP_COUNT; i++) {
        size_t len = strlen(ops[i].name);
        if (complete ? (n == len && memcmp(s, ops[i].name, n) == 0)
                     : (n <= len && memcmp(s, ops[i].name, n) == 0)) {
            if (complete)
                return (enum op)i;
            prefix = true;
        }
    }
    return prefix && !complete ? OP_COUNT : OP_UNKNOWN;
}

/* True when s contains a space, tab, newline or other ASCII control byte. */
static bool has_blank_or_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= ' ' || *s == 0x7f)
            return true;
    return false;
}

/* True when s is shaped like the protocol's date-time, DD/MM/YYYY HH:MM:SS. */
static bool datetime_shaped(const char *s)
{
    static const char shape[] = "99/99/9999 99:99:99";
    size_t i;
    for (i = 0; shape[i] != '\0'; i++) {
        if (s[i] == '\0')
            return false;
        if (shape[i] == '9' ? (s[i] < '0' || s[i] > '9') : s[i] != shape[i])
            return false;
    }
    return s[i] == '\0';
}

/* What is wrong with a refused argument, for the console. */
static const char *refusal(enum field_kind kind)
{
    switch (kind) {
    case F_USER:
    case F_TARGET:
        return "user name empty or with blanks or control bytes";
    case F_PATH:
        return "path not absolute, or with blanks or control bytes";
    case F_PORT:
        return "port not a number in 1..65535";
    case F_QUERY:
        return "query with no word (letters, digits or UTF-8)";
    case F_MAX:
        return "maximum not empty or a number in 1..1000";
    case F_SECRET:
        return "secret not 64 hex digits";
    case F_DESCRIPTION:
        break;
    }
    return "bad field";
}

/* Parse a port: decimal digits only, value 1..65535. */
static bool parse_port(const char *s, unsigned *port)
{
    unsigned long long v;
    if (!decimal_parse(s, 1, 65535, &v))
        return false;
    *port = (unsigned)v;
    return true;
}

/*
 * Check one argument and store it in the request.  User names and paths are
 * single words (they appear space-separated in listings and in the log);
 * a path is absolute; a description may be anything, even empty; a SEARCH
 * query has a word (search.h) and its maximum is empty or 1..1000.
 */
static bool take_arg(struct request *req, enum field_kind kind, const char *s)
{
    switch (kind) {
    case F_USER:
        req->user = s;
        return *s != '\0' && !has_blank_or_control(s);
    case F_TARGET:
        req->target = s;
        return *s != '\0' && !has_blank_or_control(s);
    case F_PATH:
        req->path = s;
        return s[0] == '/' && !has_blank_or_control(s);
    case F_DESCRIPTION:
        req->description = s;
        return true;
    case F_PORT:
        return parse_port(s, &req->port);
    case F_QUERY: {
        struct search_query q;
        req->query = s;
        return search_parse(s, &q) > 0;
    }
    case F_MAX: {
        unsigned long long v = SEARCH_DEFAULT_MAX;
        bool ok = *s == '\0' || decimal_parse(s, 1, SEARCH_MAX_MAX, &v);
        req->max = (unsigned)v;
        return ok;
    }
    case F_SECRET:
        return auth_hex_parse(s, req->secret, AUTH_SECRET_SIZE);
    }
    return false;
}

/* Parse a request without a wrapper (request_parse's plain case). */
static enum parse_status parse_plain(const char *buf, size_t len,
                                     struct request *req)
{
    memset(req, 0, sizeof *req);
    req->op = OP_UNKNOWN;

    /* The operation name. */
    const char *nul = memchr(buf, '\0', len);
    size_t n = nul ? (size_t)(nul - buf) : len;
    enum op op = match_op(buf, n, nul != NULL);
    if (op == OP_UNKNOWN) {
        req->why = "unknown operation";
        return PARSE_UNKNOWN_OP;
    }
    if (op == OP_COUNT)
        return PARSE_INCOMPLETE;
    req->op = op;

    /* The date-time, then the operation's own fields. */
    const struct op_spec *spec = &ops[op];
    size_t pos = n + 1;
    bool valid = true;
    for (int i = -1; i < spec->nargs; i++) {
        nul = memchr(buf + pos, '\0', len - pos);
        n = nul ? (size_t)(nul - (buf + pos)) : len - pos;
        if (n > FIELD_MAX) {
            req->why = "field over 256 bytes";
            return PARSE_TOO_LONG;
        }
        if (nul == NULL)
            return PARSE_INCOMPLETE;
        const char *field = buf + pos;
        if (i < 0) {
            req->datetime = field;
            req->odd_datetime = !datetime_shaped(field);
        } else if (!take_arg(req, spec->args[i], field)) {
            valid = false;      /* keep going: a later field may be too long */
            if (req->why == NULL)
                req->why = refusal(spec->args[i]);
        }
        pos += n + 1;
    }
    req->len = pos;
    return valid ? PARSE_OK : PARSE_BAD_FIELD;
}

/*
 * The AUTH wrapper's two fields at buf (after its name): the counter (at
 * most 19 digits) and the MAC (64 hex digits).  Returns the bytes they
 * take, 0 while incomplete, or -1 when a field is longer than it can be
 * (so the wrapper never takes more than AUTH_WRAPPER_MAX bytes); *why is
 * set when a field is refused.
 */
static long parse_wrapper(const char *buf, size_t len, struct auth_proof *proof,
                          const char **why)
{
    static const size_t longest[2] = {19, 2 * AUTH_MAC_SIZE};
    size_t pos = 0;
    for (int i = 0; i < 2; i++) {
        const char *nul = memchr(buf + pos, '\0', len - pos);
        size_t n = nul ? (size_t)(nul - (buf + pos)) : len - pos;
        if (n > longest[i]) {
            *why = i == 0 ? "AUTH counter over 19 digits" : "AUTH proof over 64 hex digits";
            return -1;
        }
        if (nul == NULL)
            return 0;
        unsigned long long v;
        if (i == 0 && decimal_parse(buf + pos, 1, INT64_MAX, &v)) {
            proof->counter = v;
            proof->counter_text = buf + pos;
        } else if (i == 1 && auth_hex_parse(buf + pos, proof->mac, AUTH_MAC_SIZE)) {
            ;
        } else if (*why == NULL) {
            *why = i == 0 ? "AUTH counter not a number in 1..2^63-1"
                          : "AUTH proof not 64 hex digits";
        }
        pos += n + 1;
    }
    return (long)pos;
}

enum parse_status request_parse(const char *buf, size_t len,
                                struct request *req)
{
    static const char wrapper[] = "AUTH";
    const char *nul = memchr(buf, '\0', len);
    size_t n = nul ? (size_t)(nul - buf) : len;
    if (n == 0 || n > 4 || memcmp(buf, wrapper, n) != 0)
        return parse_plain(buf, len, req);      /* not AUTH: no op starts with 'A' */
    if (nul == NULL || n < 4) {
        memset(req, 0, sizeof *req);
        req->op = OP_UNKNOWN;
        if (nul == NULL)
            return PARSE_INCOMPLETE;
        req->why = "unknown operation";
        return PARSE_UNKNOWN_OP;
    }
    struct auth_proof proof = {0};
    const char *why = NULL;
    long took = parse_wrapper(buf + 5, len - 5, &proof, &why);
    if (took <= 0) {
        memset(req, 0, sizeof *req);
        req->op = OP_UNKNOWN;
        req->why = why;
        return took < 0 ? PARSE_TOO_LONG : PARSE_INCOMPLETE;
    }
    size_t at = 5 + (size_t)took;
    enum parse_status st = parse_plain(buf + at, len - at, req);
    req->auth = true;
    proof.inner = buf + at;
    proof.inner_len = st == PARSE_OK ? req->len : 0;
    req->proof = proof;
    if (st == PARSE_OK)
        req->len += at;
    if (req->op == OP_REGISTER || req->op == OP_REGISTER_AUTH) {
        why = "AUTH cannot wrap a registration";
        if (st == PARSE_OK)
            st = PARSE_BAD_FIELD;
    } else if (st == PARSE_OK && req->user == NULL) {
        why = "AUTH wraps only an operation that acts as a user";
        st = PARSE_BAD_FIELD;
    }
    if (why != NULL && req->why == NULL)
        req->why = why;
    if (why != NULL && st == PARSE_OK)
        st = PARSE_BAD_FIELD;
    return st;
}
