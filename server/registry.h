/*
 * registry.h - the index: users, whether and where they are connected, and
 * the files each one has published.
 *
 * No I/O.  Users live in a hash table by name, connected users also in a
 * second table, and each user's files in a hash table by path, so every
 * operation costs O(1) plus the size of what it returns.  Limits: the
 * quotas set with registry_set_quotas() (files per user, bytes of one
 * user's listing); none on users.
 *
 * Lock discipline: one mutex per registry (`struct registry.lock`) guards
 * every table, every user and every file, the cached listings, and the
 * search index (search.h), which holds exactly the connected users' files.  Each
 * function below takes it on entry and releases it before returning.  Under
 * it the only call out is the log hook (registry_set_log), which appends
 * the operation to the journal (journal.h) or to the operation log's queue
 * (oplog.h); their own mutex is taken after this one, never before; no
 * other lock is taken under it.  Every operation holds it for O(1) work (a
 * lookup, an insert, taking a reference) plus that append, with two
 * exceptions: the
 * connected-users listing is encoded under it, on the first LIST_USERS
 * after a change, and registry_visit() holds it for the whole visit.
 *
 * Listings are encoded once and shared: LIST_CONTENT and LIST_USERS return
 * a reference to an immutable, reference-counted `struct listing` holding
 * the whole reply, which the caller sends straight from its buffer and
 * then releases.  Every change that a listing shows drops it, under the
 * lock and only once the journal has taken the operation (an operation
 * the journal refuses is undone and drops nothing): CONNECT, DISCONNECT,
 * an expiry and UNREGISTER of a connected user drop the connected-users
 * listing; PUBLISH, DELETE, a restored file and UNREGISTER drop the user's.
 * A user's listing is built on the first LIST_CONTENT after its files
 * changed, outside the lock: while it is built the user's file table is
 * frozen (PUBLISH, DELETE, UNREGISTER and registry_restore_files() of that
 * user wait for the build on `struct registry.built`; nothing else does,
 * and nothing else writes a file table).  The journal never reads listings.
 */
#ifndef PEERDEX_REGISTRY_H
#define PEERDEX_REGISTRY_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "reply.h"
#include "request.h"

enum reg_status {
    REG_OK,
    REG_NO_USER,            /* the (acting) user does not exist */
    REG_USER_EXISTS,        /* REGISTER: the name is in use */
    REG_CONNECTED,          /* CONNECT: already connected */
    REG_NOT_CONNECTED,      /* the acting user is not connected */
    REG_PUBLISHED,          /* PUBLISH: this user already published it */
    REG_NOT_PUBLISHED,      /* DELETE: this user has not published it */
    REG_NO_TARGET,          /* LIST_CONTENT: target user does not exist */
    REG_NO_MEMORY,          /* allocation failed; nothing changed */
    REG_QUOTA_FILES,        /* PUBLISH: the user has its quota of files */
    REG_QUOTA_BYTES,        /* PUBLISH: the user's listing would pass its quota */
    REG_NOT_PROVEN          /* an authenticated user, and no proof for it */
};  /* journaled as numbers: new ones go last */

struct registry;

struct registry *registry_new(void);
void registry_free(struct registry *reg);

/*
 * One operation: what registry_apply() performs and the log hook logs.
 * Absent fields are NULL.  An expiry is a DISCONNECT with a session (and
 * the path REG_EXPIRED_MARK): it ends only that session.
 */
struct reg_op {
    enum op op;
    const char *datetime;       /* the client's; NULL: none (the log takes the server's) */
    const char *user, *path, *description, *target, *ip;
    unsigned port;              /* CONNECT */
    uint64_t session;           /* an expiry's session; 0 otherwise */
    const char *query;          /* SEARCH: the words (logged in path's place) */
    size_t max;                 /* SEARCH: most matches, 1..1000 */
    uint64_t seq;               /* out: the log's sequence number; 0: not logged */
    /*
     * Authenticated users (the AUTH extension, docs/protocol.md).  A
     * request's AUTH wrapper: proof (NULL for a classic request), checked
     * by registry_prove(), which on success sets proven (the user's serial)
     * and counter (logged with the operation).  A REGISTER with a secret
     * makes an authenticated user.  trusted (a journal replayed at start):
     * no proof is asked, and a counter only raises the user's.
     */
    const struct auth_proof *proof;
    uint64_t proven;
    uint64_t counter;
    const uint8_t *secret;      /* AUTH_SECRET_SIZE bytes; NULL: a classic REGISTER */
    bool trusted;
};

/*
 * The log hook: called with the registry lock held for every operation
 * (refused ones too, with their status), after the registry has decided the
 * outcome and before anyone can see it, so the log's order is the order in
 * which operations took effect.  It sets op->seq, or returns false when the
 * operation cannot be logged; the registry then undoes it and answers
 * REG_NO_MEMORY ("other error").  NULL (the default): no log.
 */
typedef bool registry_log_fn(void *ctx, struct reg_op *op, enum reg_status st);
void registry_set_log(struct registry *reg, registry_log_fn *fn, void *ctx);

/*
 * Perform op (its seq set by the log hook): the one entry of every
 * operation (ops.h calls it).  A list reply comes back in *out on REG_OK.
 */
enum reg_status registry_apply(struct registry *reg, struct reg_op *op,
                               struct listing **out);

/*
 * Authenticated users: a user registered with a secret is acted as only
 * by operations whose reg_op was proven by registry_prove() (CONNECT,
 * DISCONNECT, PUBLISH, DELETE, UNREGISTER, and LIST_* as the requester);
 * any other is refused with REG_NOT_PROVEN, under the lock, atomically with
 * the operation.  Classic users are untouched.
 */
enum reg_proof {
    PROOF_NONE,         /* a classic request: nothing to prove */
    PROOF_OK,           /* proven: the operation may act as the user */
    PROOF_NO_USER,      /* no such user: the operation answers that */
    PROOF_NO_KEY,       /* a classic user: it has no secret to prove */
    PROOF_BAD,          /* the MAC does not match */
    PROOF_STALE         /* the counter is not above the last one (a replay) */
};

/*
 * Check op->proof (when there is one) for op->user: the one place where a
 * proof is verified, one HMAC under the lock and no allocation.  When it
 * holds, the user's counter advances to the proof's, and op->proven and
 * op->counter are set for registry_apply() and the log.
 */
enum reg_proof registry_prove(struct registry *reg, struct reg_op *op);

/* Why a proof was refused, for the console. */
const char *registry_proof_why(enum reg_proof p);

/*
 * Restore an authenticated user's secret and counter (a snapshot), or only
 * raise its counter (secret NULL).  REG_OK, REG_NO_USER or REG_NO_MEMORY.
 */
enum reg_status registry_restore_key(struct registry *reg, const char *user,
                                     const uint8_t *secret, uint64_t counter);

/* Make an authenticated user classic again (an operator's --forget-key):
 * REG_OK, REG_NO_USER, or REG_NOT_PROVEN when it had no secret. */
enum reg_status registry_forget_key(struct registry *reg, const char *user);

/*
 * Files one user may have, and bytes its LIST_CONTENT reply may take
 * (defaults: no limit).  Set before the registry is shared and after a
 * restore: they bound new PUBLISHes (checked before the log hook, which
 * journals a refused one with its status), not what a journal replays.
 */
void registry_set_quotas(struct registry *reg, size_t files, size_t listing_bytes);

/*
 * Short forms of registry_apply() for one operation with no client
 * date-time (the snapshot loader, the tests).
 */
enum reg_status registry_register(struct registry *reg, const char *user);
enum reg_status registry_unregister(struct registry *reg, const char *user);
enum reg_status registry_connect(struct registry *reg, const char *user,
                                 const char *ip, unsigned port);
enum reg_status registry_disconnect(struct registry *reg, const char *user);
enum reg_status registry_publish(struct registry *reg, const char *user,
                                 const char *path, const char *description);
enum reg_status registry_delete(struct registry *reg, const char *user,
                                const char *path);

/*
 * On REG_OK, *out is a reference to the LIST_USERS reply: the count of
 * connected users as decimal text, then name, IP and port of each.
 */
enum reg_status registry_list_users(struct registry *reg, const char *user,
                                    struct listing **out);

/* On REG_OK, *out is a reference to the reply: target's file count, then each path. */
enum reg_status registry_list_content(struct registry *reg, const char *user,
                                      const char *target, struct listing **out);

/*
 * SEARCH (docs/protocol.md): on REG_OK, *out is a new listing (one
 * reference) holding the reply: the count of matches, then owner, path and
 * description of each, at most max (1..SEARCH_MAX_MAX) of them, in the
 * order the files entered the search index.  Only files of connected users
 * are there (search.h: the index follows PUBLISH, DELETE, CONNECT,
 * DISCONNECT, expiry, UNREGISTER and restores, under the registry lock).
 * The lock is held for the query, whose cost is bounded by the postings of
 * the query's rarest word up to the cap, never by all files.  Journaled as
 * "SEARCH" with the query's words joined by '+' as its path.
 */
enum reg_status registry_search(struct registry *reg, const char *user,
                                const char *query, size_t max, struct listing **out);

/*
 * Restore n files of user without an operation (loading a snapshot): the
 * owner need not be connected.  One call (one lock) per user's files.
 * REG_OK when all n are in; else REG_NO_USER, REG_PUBLISHED (a path
 * already there) or REG_NO_MEMORY for file *done, the files before it in.
 */
enum reg_status registry_restore_files(struct registry *reg, const char *user, size_t n,
                                       const char *const *paths,
                                       const char *const *descriptions, size_t *done);

/*
 * While a snapshot loads into reg, which no one else uses yet: files of
 * connected users are indexed for SEARCH on a second thread, in the order
 * they are restored, while the loader goes on (room is made for `files`
 * of them).  registry_bulk_begin() is false when no thread could be had
 * (the load then indexes as it goes).  registry_bulk_end() waits for the
 * indexer; false when it could not add them all (out of memory).
 */
bool registry_bulk_begin(struct registry *reg, size_t files);
bool registry_bulk_end(struct registry *reg);

/*
 * Visit every user (with its connection; ip NULL when not connected) and,
 * after each user, every file of that user, with the lock held; then call
 * done (may be NULL), still locked, so that what it does is atomic with the
 * visit (a snapshot rotates the journal there).  The visitors must not call
 * the registry.
 */
struct registry_visitor {
    void (*user)(void *ctx, const char *name, const char *ip, unsigned port);
    /* After user, for an authenticated user (may be NULL). */
    void (*key)(void *ctx, const uint8_t *secret, uint64_t counter);
    void (*file)(void *ctx, const char *path, const char *description);
    void (*done)(void *ctx);
    void *ctx;
};
void registry_visit(struct registry *reg, const struct registry_visitor *v);

/*
 * Where a connected user listens, and which session that is: every CONNECT
 * starts a new session with a number never used before in this registry,
 * so an endpoint copied earlier can be told from a later one of the same
 * user.  Names are at most REG_NAME_MAX bytes (the request parser's limit).
 */
#define REG_NAME_MAX 256
struct reg_endpoint {
    uint64_t session;
    bool authenticated;     /* the user holds a secret */
    unsigned port;
    char ip[INET6_ADDRSTRLEN];
    char name[REG_NAME_MAX + 1];
};

/* Copy the endpoint of a connected user: REG_OK, REG_NO_USER or
 * REG_NOT_CONNECTED. */
enum reg_status registry_endpoint(struct registry *reg, const char *user,
                                  struct reg_endpoint *out);

/*
 * Copy the endpoints of every connected user into a new array (*out, for
 * the caller to free; may be NULL when *count is 0).  REG_OK, or
 * REG_NO_MEMORY with nothing returned.
 */
enum reg_status registry_endpoints(struct registry *reg,
                                   struct reg_endpoint **out, size_t *count);

/*
 * Expire a user's session (the short form of registry_apply() with an
 * expiry's reg_op): disconnect it exactly as DISCONNECT does, but only if
 * it is still connected in that session (a probe's verdict on an older
 * session must not end a newer one).  An expiry that happens is logged
 * through the hook as a DISCONNECT whose path is REG_EXPIRED_MARK;
 * replaying that journal record disconnects the user again.  A refused
 * expiry is no operation and is not logged.  REG_OK, REG_NO_USER,
 * REG_NOT_CONNECTED when that session has ended already, or REG_NO_MEMORY
 * when the log refused it (nothing changed: the caller may try again later).
 */
#define REG_EXPIRED_MARK "-expired-"   /* never a file path: those start with '/' */
enum reg_status registry_expire(struct registry *reg, const char *user,
                                uint64_t session);

/*
 * The live view's picture of the index (http.c): the totals, and a copy of
 * at most `max` connected users (*n of them) with their file counts and
 * since when they are connected (Unix seconds).  The lock is held for
 * O(min(max, connected users)): no longer than the LIST_USERS build, and
 * no file is visited.
 */
struct reg_totals {
    size_t users, connected, files;
};
struct reg_user_view {
    char name[REG_NAME_MAX + 1];
    char ip[INET6_ADDRSTRLEN];
    unsigned port;
    size_t files;
    int64_t since;
};
enum reg_status registry_view(struct registry *reg, struct reg_user_view *out,
                              size_t max, size_t *n, struct reg_totals *totals);

/* Counts, for tests and statistics. */
size_t registry_user_count(struct registry *reg);
size_t registry_file_count(struct registry *reg);

#endif
