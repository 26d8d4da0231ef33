/* reply.c - growable reply buffer; see reply.h. */
#include "reply.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Start an empty reply backed by its inline buffer. */
void reply_init(struct reply *r)
{
    r->data = r->inline_buf;
    r->len = 0;
    r->cap = sizeof r->inline_buf;
    r->failed = false;
}

/* Release any heap block; the reply must be re-initialised before reuse. */
void reply_free(struct reply *r)
{
    if (r->data != r->inline_buf)
        free(r->data);
    r->data = r->inline_buf;
    r->len = 0;
    r->cap = sizeof r->inline_buf;
}

/* Drop the contents (and the failure mark) but keep the storage. */
void reply_reset(struct reply *r)
{
    r->len = 0;
    r->failed = false;
}

/* Make room for n more bytes, doubling; on failure mark the reply failed. */
static bool reply_reserve(struct reply *r, size_t n)
{
    if (r->failed)
        return false;
    if (r->cap - r->len >= n)
        return true;
    size_t cap = r->cap;
    while (cap - r->len < n) {
        if (cap > ((size_t)-1) / 2) {
            r->failed = true;
            return false;
        }
        cap *= 2;
    }
    char *p = r->data == r->inline_buf ? malloc(cap) : realloc(r->data, cap);
    if (p == NULL) {
        r->failed = true;
        return false;
    }
    if (r->data == r->inline_buf)
        memcpy(p, r->inline_buf, r->len);
    r->data = p;
    r->cap = cap;
    return true;
}

/* Append one raw byte (the result code). */
void reply_add_byte(struct reply *r, unsigned char b)
{
    if (reply_reserve(r, 1))
        r->data[r->len++] = (char)b;
}

/* Append a string and its terminating NUL. */
void reply_add_field(struct reply *r, const char *s)
{
    size_t n = strlen(s) + 1;
    if (reply_reserve(r, n)) {
        memcpy(r->data + r->len, s, n);
        r->len += n;
    }
}

/* Append a number as decimal text, NUL-terminated, as the protocol wants. */
void reply_add_uint(struct reply *r, unsigned long long v)
{
    char text[24];
    snprintf(text, sizeof text, "%llu", v);
    reply_add_field(r, text);
}
