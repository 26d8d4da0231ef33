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
 * every table, every user and every file, and the cached listings.  Each
 * function below takes it on entry and releases it before returning; none
 * calls out (no I/O, no callbacks) while holding it, and no other lock is
 * ever taken under it.  Every operation holds it for O(1) work (a lookup,
 * an insert, taking a reference), with one exception: the connected-users
 * listing is encoded under it, on the first LIST_USERS after a change.
 *
 * Listings are encoded once and shared: LIST_CONTENT and LIST_USERS return
 * a reference to an immutable, reference-counted `struct listing` holding
 * the whole reply, which the caller sends straight from its buffer and
 * then releases.  A user's listing is built on the first LIST_CONTENT after
 * its files changed, outside the lock: while it is built the user's file
 * table is frozen (PUBLISH, DELETE and UNREGISTER of that user wait for
 * the build on `struct registry.built`; nothing else does).
 */
#ifndef PEERDEX_REGISTRY_H
#define PEERDEX_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>

enum reg_status {
    REG_OK,
    REG_NO_USER,            /* the (acting) user does not exist */
    REG_USER_EXISTS,        /* REGISTER: the name is in use */
    REG_CONNECTED,          /* CONNECT: already connected */
    REG_NOT_CONNECTED,      /* the acting user is not connected */
    REG_PUBLISHED,          /* PUBLISH: this user already published it */
    REG_NOT_PUBLISHED,      /* DELETE: this user has not published it */
    REG_NO_TARGET,          /* LIST_CONTENT: target user does not exist */
    REG_QUOTA_FILES,        /* PUBLISH: the user has its quota of files */
    REG_QUOTA_BYTES,        /* PUBLISH: the user's listing would pass its quota */
    REG_NO_MEMORY           /* allocation failed; nothing changed */
};

/*
 * A whole list reply, encoded once: the result byte 0, then the fields,
 * each NUL-terminated.  Immutable once published; freed by the release
 * that drops its last reference.
 */
struct listing {
    size_t refs;            /* atomic */
    size_t len;             /* of data */
    bool has_loopback;      /* LIST_USERS: some user's address is loopback */
    char data[];
};

/* Drop one reference to l (NULL is fine); the last one frees it. */
void listing_release(struct listing *l);

/*
 * A copy of users listing l (one reference, to be released) in which every
 * loopback address is replaced by ip; NULL when out of memory.
 */
struct listing *listing_with_address(const struct listing *l, const char *ip);

struct registry;

struct registry *registry_new(void);
void registry_free(struct registry *reg);

/* Files one user may have, and bytes its LIST_CONTENT reply may take
 * (defaults: no limit).  Set before the registry is shared. */
void registry_set_quotas(struct registry *reg, size_t files, size_t listing_bytes);

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

/* Counts, for tests and statistics. */
size_t registry_user_count(struct registry *reg);
size_t registry_file_count(struct registry *reg);

#endif
