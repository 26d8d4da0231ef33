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
 * entry and releases it before returning; none calls out (no I/O, no
 * callbacks) while holding it, and no other lock is ever taken under it.
 * List functions copy what they return into the caller's reply while
 * locked, so the caller sends it after the lock is gone.
 */
#ifndef PEERDEX_REGISTRY_H
#define PEERDEX_REGISTRY_H

#include <netinet/in.h>
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
 * older session must not end a newer one).  REG_OK, REG_NO_USER, or
 * REG_NOT_CONNECTED when that session has ended already.
 */
enum reg_status registry_expire(struct registry *reg, const char *user,
                                uint64_t session);

/* Counts, for tests and statistics. */
size_t registry_user_count(struct registry *reg);
size_t registry_file_count(struct registry *reg);

#endif
