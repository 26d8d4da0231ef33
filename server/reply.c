/* reply.c - the list replies, encoded once and shared; see reply.h. */
#include "reply.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net.h"

struct listing *listing_ref(struct listing *l)
{
    __atomic_add_fetch(&l->refs, 1, __ATOMIC_RELAXED);
    return l;
}

void listing_release(struct listing *l)
{
    if (l != NULL && __atomic_sub_fetch(&l->refs, 1, __ATOMIC_ACQ_REL) == 0)
        free(l);
}

/* A listing of len bytes with one reference, or NULL. */
static struct listing *listing_new(size_t len)
{
    struct listing *l = malloc(sizeof *l + len);
    if (l != NULL) {
        l->refs = 1;
        l->len = len;
        l->has_loopback = false;
    }
    return l;
}

struct listing *listing_with_address(const struct listing *l, const char *ip)
{
    /* After the result byte: field 0 is the count, then name, ip and port
     * of each user, so field i is an address when i % 3 == 2. */
    size_t iplen = strlen(ip) + 1, len = l->len;
    const char *p, *end = l->data + l->len;
    size_t i = 0;
    for (p = l->data + 1; p < end; p += strlen(p) + 1, i++)
        if (i % 3 == 2 && net_is_loopback(p))
            len = len - (strlen(p) + 1) + iplen;
    struct listing *copy = listing_new(len);
    if (copy == NULL)
        return NULL;
    char *out = copy->data;
    *out++ = l->data[0];
    for (p = l->data + 1, i = 0; p < end; i++) {
        size_t n = strlen(p) + 1;
        bool swap = i % 3 == 2 && net_is_loopback(p);
        memcpy(out, swap ? ip : p, swap ? iplen : n);
        out += swap ? iplen : n;
        p += n;
    }
    return copy;
}

/* Append s and its NUL. */
static void put(struct listing_builder *b, const char *s)
{
    size_t n = strlen(s) + 1;
    memcpy(b->at, s, n);
    b->at += n;
}

bool listing_begin(struct listing_builder *b, size_t count, size_t field_bytes)
{
    char text[24];
    snprintf(text, sizeof text, "%zu", count);
    b->l = listing_new(1 + strlen(text) + 1 + field_bytes);
    if (b->l == NULL)
        return false;
    b->at = b->l->data;
    *b->at++ = 0;               /* the result code: success */
    put(b, text);
    return true;
}

void listing_add_user(struct listing_builder *b, const char *name, const char *ip,
                      unsigned port)
{
    char text[8];
    snprintf(text, sizeof text, "%u", port);
    put(b, name);
    put(b, ip);
    put(b, text);
    if (net_is_loopback(ip))
        b->l->has_loopback = true;
}

void listing_add_path(struct listing_builder *b, const char *path)
{
    put(b, path);
}

void listing_add_match(struct listing_builder *b, const char *owner, const char *path,
                       const char *description)
{
    put(b, owner);
    put(b, path);
    put(b, description);
}

struct listing *listing_end(struct listing_builder *b)
{
    b->l->len = (size_t)(b->at - b->l->data);
    return b->l;
}
