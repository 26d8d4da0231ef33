/*
 * reply.h - a reply under construction: one growable byte buffer.
 *
 * A reply is built whole in memory (result byte, then NUL-terminated fields)
 * and sent with a single write, never one send per string.  Small replies
 * live in the inline array and cost no allocation.  An allocation failure is
 * remembered in `failed` so callers can build without checking every append
 * and decide once, before sending.  No I/O and no locking: a reply belongs to
 * one thread.
 */
#ifndef PEERDEX_REPLY_H
#define PEERDEX_REPLY_H

#include <stdbool.h>
#include <stddef.h>

struct reply {
    char *data;         /* points at inline_buf or at a heap block */
    size_t len;
    size_t cap;
    bool failed;        /* an append could not allocate */
    char inline_buf[256];
};

void reply_init(struct reply *r);
void reply_free(struct reply *r);
void reply_reset(struct reply *r);
void reply_add_byte(struct reply *r, unsigned char b);
void reply_add_field(struct reply *r, const char *s);
void reply_add_uint(struct reply *r, unsigned long long v);

#endif
