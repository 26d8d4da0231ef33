/* unit.h - what every unit test program shares. */
#ifndef PEERDEX_UNIT_H
#define PEERDEX_UNIT_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The bytes of a reply as the tests expect it (a result byte, then
 * NUL-terminated fields), built up in a growing buffer; an allocation
 * failure fails the test.
 */
struct reply {
    char *data;
    size_t len, cap;
};

static inline void reply_init(struct reply *r)
{
    *r = (struct reply){0};
}

static inline void reply_free(struct reply *r)
{
    free(r->data);
    *r = (struct reply){0};
}

static inline void reply_reset(struct reply *r)
{
    r->len = 0;
}

/* Append n bytes. */
static inline void reply_add(struct reply *r, const void *p, size_t n)
{
    if (r->len + n > r->cap) {
        r->cap = (r->len + n) * 2;
        r->data = realloc(r->data, r->cap);
        ck_assert_ptr_nonnull(r->data);
    }
    memcpy(r->data + r->len, p, n);
    r->len += n;
}

static inline void reply_add_byte(struct reply *r, unsigned char b)
{
    reply_add(r, &b, 1);
}

static inline void reply_add_field(struct reply *r, const char *s)
{
    reply_add(r, s, strlen(s) + 1);
}

static inline void reply_add_uint(struct reply *r, unsigned long long v)
{
    char text[24];
    snprintf(text, sizeof text, "%llu", v);
    reply_add_field(r, text);
}

/* Run every test of the suite (forked, as check does by default); the
 * program's exit status: EXIT_FAILURE if any test failed. */
static inline int run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
