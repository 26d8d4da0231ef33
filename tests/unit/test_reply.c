/* test_reply.c - the reply buffer: inline storage, growth to the heap with
 * the content kept, numbers as decimal text, reset and free. */
#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "reply.h"
#include "unit.h"

START_TEST(starts_empty_and_inline)
{
    struct reply r;
    reply_init(&r);
    ck_assert_uint_eq(r.len, 0);
    ck_assert(!r.failed);
    ck_assert_ptr_eq(r.data, r.inline_buf);
    ck_assert_uint_eq(r.cap, sizeof r.inline_buf);
    reply_free(&r);
}
END_TEST

/* Filling the inline buffer exactly stays inline; one byte more moves the
 * whole content to the heap unchanged. */
START_TEST(inline_to_heap_keeps_content)
{
    struct reply r;
    char field[sizeof r.inline_buf];
    reply_init(&r);
    reply_add_byte(&r, 4);
    memset(field, 'a', sizeof field - 2);       /* 254 chars + NUL = 255 */
    field[sizeof field - 2] = '\0';
    reply_add_field(&r, field);
    ck_assert_uint_eq(r.len, sizeof r.inline_buf);
    ck_assert_ptr_eq(r.data, r.inline_buf);

    reply_add_byte(&r, 9);
    ck_assert(!r.failed);
    ck_assert_ptr_ne(r.data, r.inline_buf);
    ck_assert_uint_ge(r.cap, r.len);
    ck_assert_uint_eq(r.len, sizeof r.inline_buf + 1);
    ck_assert_uint_eq((unsigned char)r.data[0], 4);
    ck_assert_str_eq(r.data + 1, field);
    ck_assert_uint_eq((unsigned char)r.data[r.len - 1], 9);

    /* Many more appends: earlier bytes never move or change. */
    for (int i = 0; i < 10000; i++)
        reply_add_uint(&r, (unsigned long long)i);
    ck_assert(!r.failed);
    ck_assert_str_eq(r.data + 1, field);
    size_t off = sizeof r.inline_buf + 1;
    char want[16];
    for (int i = 0; i < 10000; i++) {
        snprintf(want, sizeof want, "%d", i);
        ck_assert_str_eq(r.data + off, want);
        off += strlen(want) + 1;
    }
    ck_assert_uint_eq(off, r.len);
    reply_free(&r);
}
END_TEST

START_TEST(uint_is_decimal_text)
{
    struct reply r;
    reply_init(&r);
    reply_add_uint(&r, 0);
    reply_add_uint(&r, 5);
    reply_add_uint(&r, 40001);
    reply_add_uint(&r, 1048576);
    reply_add_uint(&r, ULLONG_MAX);
    static const char want[] = "0\0" "5\0" "40001\0" "1048576\0" "18446744073709551615";
    ck_assert_uint_eq(r.len, sizeof want);
    ck_assert_int_eq(memcmp(r.data, want, sizeof want), 0);
    reply_free(&r);
}
END_TEST

START_TEST(fields_and_bytes_are_exact)
{
    struct reply r;
    reply_init(&r);
    reply_add_byte(&r, 0);
    reply_add_field(&r, "");
    reply_add_field(&r, "a b");
    reply_add_byte(&r, 255);
    static const char want[] = "\0" "\0" "a b\0" "\xff";
    ck_assert_uint_eq(r.len, sizeof want - 1);
    ck_assert_int_eq(memcmp(r.data, want, r.len), 0);
    reply_free(&r);
}
END_TEST

/* Reset empties the reply but keeps its (heap) storage for reuse. */
START_TEST(reset_keeps_storage)
{
    struct reply r;
    reply_init(&r);
    for (int i = 0; i < 100; i++)
        reply_add_field(&r, "0123456789");
    char *data = r.data;
    size_t cap = r.cap;
    ck_assert_ptr_ne(data, r.inline_buf);
    reply_reset(&r);
    ck_assert_uint_eq(r.len, 0);
    ck_assert(!r.failed);
    ck_assert_ptr_eq(r.data, data);
    ck_assert_uint_eq(r.cap, cap);
    reply_add_field(&r, "again");
    ck_assert_uint_eq(r.len, 6);
    ck_assert_str_eq(r.data, "again");
    reply_free(&r);
    ck_assert_ptr_eq(r.data, r.inline_buf);
    ck_assert_uint_eq(r.len, 0);
}
END_TEST

/* A failed reply refuses further appends until reset clears the mark. */
START_TEST(failed_mark_sticks_until_reset)
{
    struct reply r;
    reply_init(&r);
    reply_add_field(&r, "x");
    r.failed = true;
    reply_add_field(&r, "y");
    reply_add_byte(&r, 1);
    ck_assert_uint_eq(r.len, 2);
    reply_reset(&r);
    ck_assert(!r.failed);
    reply_add_field(&r, "z");
    ck_assert_str_eq(r.data, "z");
    reply_free(&r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("reply");
    TCase *tc = tcase_create("buffer");
    tcase_add_test(tc, starts_empty_and_inline);
    tcase_add_test(tc, inline_to_heap_keeps_content);
    tcase_add_test(tc, uint_is_decimal_text);
    tcase_add_test(tc, fields_and_bytes_are_exact);
    tcase_add_test(tc, reset_keeps_storage);
    tcase_add_test(tc, failed_mark_sticks_until_reset);
    suite_add_tcase(s, tc);

    return run_suite(s);
}
