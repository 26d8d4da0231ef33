/*
 * request.h - the index server's requests and their pure parser.
 *
 * request_parse() looks at the bytes received so far and says whether they
 * hold a whole, valid request, need more bytes, or can never become one.  It
 * does no I/O and keeps no state, so the reader can call it after every
 * recv() and the fuzzer and unit tests can call it on any buffer.
 */
#ifndef PEERDEX_REQUEST_H
#define PEERDEX_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"

/* Longest user name, file path, description or date-time, without its NUL. */
#define FIELD_MAX 256

/* Largest request: operation name plus four fields at their limit, after
 * an AUTH wrapper (its name, a counter of at most 19 digits, 64 hex digits). */
#define AUTH_WRAPPER_MAX (5 + 20 + 65)
#define REQUEST_MAX (AUTH_WRAPPER_MAX + 16 + 4 * (FIELD_MAX + 1))

enum op {
    OP_REGISTER,
    OP_UNREGISTER,
    OP_CONNECT,
    OP_DISCONNECT,
    OP_PUBLISH,
    OP_DELETE,
    OP_LIST_USERS,
    OP_LIST_CONTENT,
    OP_EXTENSIONS,      /* extension discovery: no user, never logged */
    OP_SEARCH,          /* extension: docs/protocol.md */
    OP_REGISTER_AUTH,   /* extension: REGISTER with the user's secret */
    OP_COUNT,
    /* Not a request (no client can send it): the journal's mark of a loss
     * the operator accepted (durable.c), logged as "- LOSS <what>". */
    OP_LOSS,
    OP_UNKNOWN = -1
};

enum parse_status {
    PARSE_OK,           /* a whole, valid request */
    PARSE_INCOMPLETE,   /* valid so far; more bytes are needed */
    PARSE_UNKNOWN_OP,   /* the first field is no operation we know */
    PARSE_TOO_LONG,     /* a field is over FIELD_MAX bytes */
    PARSE_BAD_FIELD     /* a field has a value the operation refuses */
};

/*
 * A parsed request.  The strings point into the caller's buffer (each is
 * NUL-terminated there) and live as long as it does.  Fields the operation
 * does not have are NULL.  `op` is set as soon as the operation name is
 * known, even when the status is not PARSE_OK, so that the caller can answer
 * that operation's "other error" code.
 */
struct request {
    enum op op;
    const char *datetime;
    const char *user;       /* the user acting (the requester for lists) */
    const char *path;       /* PUBLISH, DELETE */
    const char *description;/* PUBLISH */
    const char *target;     /* LIST_CONTENT */
    const char *query;      /* SEARCH: words (at least one) */
    unsigned port;          /* CONNECT, 1..65535 */
    unsigned max;           /* SEARCH: results wanted, 1..1000 (100 when sent empty) */
    uint8_t secret[AUTH_SECRET_SIZE];   /* REGISTER_AUTH */
    /* AUTH wrapper (extension): the request above is the inner one, and
     * `proof` what the wrapper claims about it. */
    bool auth;
    struct auth_proof proof;
    size_t len;             /* bytes of the whole request, once PARSE_OK */
    /*
     * Why the request is refused, or can no longer become valid (a field
     * already refused while later ones are still to come); NULL while it
     * may still be valid.  The reader fills in its own reasons (deadline,
     * closed early) for the console line.
     */
    const char *why;
    /* The date-time field arrived and is not shaped DD/MM/YYYY HH:MM:SS.
     * Such a request is still served when it arrives whole (other clients'
     * clocks may differ in format); it only tells the reader not to wait
     * out the whole deadline when the sender stops there. */
    bool odd_datetime;
};

/*
 * Parse buf.  A request may be wrapped: `AUTH\0<counter>\0<mac hex>\0`
 * followed by a whole request of any operation but the registrations
 * (docs/protocol.md); req then describes the inner request, with req->auth
 * set and req->proof filled in.
 */
enum parse_status request_parse(const char *buf, size_t len,
                                struct request *req);

/* The wire name of an operation ("REGISTER"...), or NULL. */
const char *op_name(enum op op);

/* The operation named name (a whole wire name), or OP_UNKNOWN. */
enum op op_by_name(const char *name);

/* The result code an operation answers for "other error" (2, 3 or 4). */
unsigned char op_other_error(enum op op);

/* Longest EXTENSIONS reply extensions_reply() can build. */
#define EXTENSIONS_REPLY_MAX 256

/*
 * The EXTENSIONS reply (docs/protocol.md, "Extensions"): the result byte 0,
 * the count as decimal text, then the name of each extension operation this
 * server speaks, every string NUL-terminated.  Writes it to out (at least
 * EXTENSIONS_REPLY_MAX bytes) and returns its length.
 */
size_t extensions_reply(char *out);

#endif
