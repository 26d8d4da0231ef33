/*
 * registry.h - the index: users, whether and where they are connected, and
 * the files each one has published.
 *
 * No I/O.  Users live in a hash table by name, connected users also in a
 * second table, and each user's files in a hash table by path, so every
 * operation costs O(1) plus the size of what it returns; there is no fixed
 * limit on users or files.
 *
 * Lock discipline: one mutex per registry (`struct registry.lock`) guards
 * every table, every user and every file.  Each function below takes it on
 * entry and releases it before returning.  Under it the only call out is
 * the journal hook (registry_set_journal), which appends the operation to
 * the journal (journal.h: its own mutex is taken after this one, never
 * before); no other lock is taken under it.  List functions copy what they
 * return into the caller's reply while locked, so the caller sends it after
 * the lock is gone.
 */
#ifndef PEERDEX_REGISTRY_H
#define PEERDEX_REGISTRY_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "reply.h"

enum reg_status {
    REG_OK,
    REG_NO_USER,            /* the (acting) user does not exist */
    REG_USER_EXISTS,        /* REGISTER: the name is in use */
    REG_CONNECTED,          /* CONNECT: already connected */
    REG_NOT_CONNECTED,      /* the acting user is not connected */
    REG_PUBLISHED,          /* PUBLISH: this user already published it */
    REG_NOT_PUBLISHED,      /* DELETE: this user has not published it */
    REG_NO_TARGET,          /* LIST_CONTENT: target user does not exist */
    REG_NO_MEMORY           /* allocation failed; nothing changed */
};

struct registry;

struct registry *registry_new(void);
void registry_free(struct registry *reg);

/* One operation as the journal hook sees it; absent fields are NULL. */
struct reg_op {
    const char *op;             /* the wire name: "REGISTER"... */
    const char *datetime;       /* the client's; NULL: none (registry-made) */
    const char *user, *path, *description, *target, *ip;
    unsigned port;
};

/*
 * The journal hook: called with the registry lock held for every operation
 * (refused ones too, with their status), after the registry has decided the
 * outcome and before anyone can see it.  It returns false when the
 * operation cannot be journaled; the registry then undoes it and answers
 * REG_NO_MEMORY ("other error").  NULL (the default): no journal.
 */
typedef bool registry_journal_fn(void *ctx, const struct reg_op *op,
                                 enum reg_status st);
void registry_set_journal(struct registry *reg, registry_journal_fn *fn, void *ctx);

/*
 * Journal op with status st through the hook.  Call it only with the
 * registry lock held, from inside a registry operation; true without a hook.
 */
bool registry_journal(struct registry *reg, const struct reg_op *op,
                      enum reg_status st);

/*
 * The client's date-time that the calling thread's next operations are
 * journaled with (the handler sets it per request; NULL: none).
 */
void registry_set_datetime(const char *datetime);

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
 * On REG_OK, append to `out` the count of connected users as decimal text,
 * then name, IP and port of each, as NUL-terminated fields.
 */
enum reg_status registry_list_users(struct registry *reg, const char *user,
                                    struct reply *out);

/* On REG_OK, append the count of target's files, then each path. */
enum reg_status registry_list_content(struct registry *reg, const char *user,
                                      const char *target, struct reply *out);

/*
 * Restore a file of user without an operation (loading a snapshot): the
 * owner need not be connected.  REG_NO_USER, REG_PUBLISHED or REG_OK.
 */
enum reg_status registry_restore_file(struct registry *reg, const char *user,
                                      const char *path, const char *description);

/*
 * Visit every user (with its connection; ip NULL when not connected) and,
 * after each user, every file of that user, with the lock held; then call
 * done (may be NULL), still locked, so that what it does is atomic with the
 * visit (a snapshot rotates the journal there).  The visitors must not call
 * the registry.
 */
struct registry_visitor {
    void (*user)(void *ctx, const char *name, const char *ip, unsigned port);
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
 * Expire a user's session: disconnect it exactly as DISCONNECT does, but
 * only if it is still connected in that session (a probe's verdict on an
 * older session must not end a newer one).  An expiry that happens is
 * journaled through the hook as a DISCONNECT record whose path is
 * REG_EXPIRED_MARK, with the server's date-time; replaying that record
 * disconnects the user again.  A refused expiry is no operation and is not
 * journaled.  REG_OK, REG_NO_USER, REG_NOT_CONNECTED when that session has
 * ended already, or REG_NO_MEMORY when the journal refused the record
 * (nothing changed: the caller may try again later).
 */
#define REG_EXPIRED_MARK "-expired-"   /* never a file path: those start with '/' */
enum reg_status registry_expire(struct registry *reg, const char *user,
                                uint64_t session);

/* Counts, for tests and statistics. */
size_t registry_user_count(struct registry *reg);
size_t registry_file_count(struct registry *reg);

#endif
