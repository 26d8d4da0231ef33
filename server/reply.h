/*
 * reply.h - the list replies (LIST_USERS, LIST_CONTENT, SEARCH) as the protocol
 * wants them: encoded once, shared, sent straight from their buffer.
 *
 * A `struct listing` is a whole reply: the result byte 0, the count of
 * entries as decimal text, then the fields, each NUL-terminated.  It is
 * immutable once built and reference-counted (atomically): the registry
 * keeps one per list and drops it on a change, each sender takes a
 * reference and releases it once sent.  No locks, no I/O.
 *
 * Building one: listing_begin() with the count and an upper bound of the
 * bytes of all fields, then one listing_add_*() per entry, then
 * listing_end().
 */
#ifndef PEERDEX_REPLY_H
#define PEERDEX_REPLY_H

#include <stdbool.h>
#include <stddef.h>

struct listing {
    size_t refs;            /* atomic */
    size_t len;             /* of data */
    bool has_loopback;      /* LIST_USERS: some user's address is loopback */
    char data[];
};

/* Take one more reference to l. */
struct listing *listing_ref(struct listing *l);

/* Drop one reference to l (NULL is fine); the last one frees it. */
void listing_release(struct listing *l);

/*
 * A copy of users listing l (one reference, to be released) in which every
 * loopback address is replaced by ip; NULL when out of memory.
 */
struct listing *listing_with_address(const struct listing *l, const char *ip);

/* A listing being built. */
struct listing_builder {
    struct listing *l;
    char *at;
};

/*
 * Start a listing of count entries whose fields take at most field_bytes
 * (NULs included; a port counts 6).  False when out of memory.
 */
bool listing_begin(struct listing_builder *b, size_t count, size_t field_bytes);

/* Add a LIST_USERS entry: name, IP address, port. */
void listing_add_user(struct listing_builder *b, const char *name, const char *ip,
                      unsigned port);

/* Add a LIST_CONTENT entry: a path. */
void listing_add_path(struct listing_builder *b, const char *path);

/* Add a SEARCH entry: owner, path, description. */
void listing_add_match(struct listing_builder *b, const char *owner, const char *path,
                       const char *description);

/* The listing built, with one reference. */
struct listing *listing_end(struct listing_builder *b);

#endif
