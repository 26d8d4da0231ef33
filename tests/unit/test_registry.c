/* test_registry.c - every status of every registry operation, listings
 * byte for byte, scale, and concurrent use from several threads. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"
#include "reply.h"
#include "unit.h"

static struct registry *reg;

static void setup(void) { reg = registry_new(); ck_assert_ptr_nonnull(reg); }
static void teardown(void) { registry_free(reg); }

/* Register and connect a user in one go. */
static void online(const char *user, unsigned port)
{
    ck_assert_int_eq(registry_register(reg, user), REG_OK);
    ck_assert_int_eq(registry_connect(reg, user, "10.0.0.1", port), REG_OK);
}

/* Check a reply's bytes equal the given ones (which may contain NULs). */
static void assert_bytes(const struct reply *r, const char *want, size_t n)
{
    ck_assert_uint_eq(r->len, n);
    ck_assert_int_eq(memcmp(r->data, want, n), 0);
}

START_TEST(register_and_unregister)
{
    ck_assert_int_eq(registry_register(reg, "alice"), REG_OK);
    ck_assert_int_eq(registry_register(reg, "alice"), REG_USER_EXISTS);
    ck_assert_int_eq(registry_register(reg, "Alice"), REG_OK);  /* case matters */
    ck_assert_uint_eq(registry_user_count(reg), 2);
    ck_assert_int_eq(registry_unregister(reg, "ghost"), REG_NO_USER);
    ck_assert_int_eq(registry_unregister(reg, "alice"), REG_OK);
    ck_assert_int_eq(registry_unregister(reg, "alice"), REG_NO_USER);
    ck_assert_uint_eq(registry_user_count(reg), 1);
}
END_TEST

START_TEST(connect_and_disconnect)
{
    ck_assert_int_eq(registry_connect(reg, "ghost", "1.2.3.4", 1), REG_NO_USER);
    ck_assert_int_eq(registry_disconnect(reg, "ghost"), REG_NO_USER);
    ck_assert_int_eq(registry_register(reg, "alice"), REG_OK);
    ck_assert_int_eq(registry_disconnect(reg, "alice"), REG_NOT_CONNECTED);
    ck_assert_int_eq(registry_connect(reg, "alice", "1.2.3.4", 4000), REG_OK);
    ck_assert_int_eq(registry_connect(reg, "alice", "1.2.3.4", 4001), REG_CONNECTED);
    ck_assert_int_eq(registry_disconnect(reg, "alice"), REG_OK);
    ck_assert_int_eq(registry_disconnect(reg, "alice"), REG_NOT_CONNECTED);
}
END_TEST

START_TEST(publish_and_delete)
{
    ck_assert_int_eq(registry_publish(reg, "ghost", "/f", "d"), REG_NO_USER);
    ck_assert_int_eq(registry_delete(reg, "ghost", "/f"), REG_NO_USER);
    ck_assert_int_eq(registry_register(reg, "alice"), REG_OK);
    ck_assert_int_eq(registry_publish(reg, "alice", "/f", "d"), REG_NOT_CONNECTED);
    ck_assert_int_eq(registry_delete(reg, "alice", "/f"), REG_NOT_CONNECTED);
    ck_assert_int_eq(registry_connect(reg, "alice", "1.2.3.4", 4000), REG_OK);
    ck_assert_int_eq(registry_delete(reg, "alice", "/f"), REG_NOT_PUBLISHED);
    ck_assert_int_eq(registry_publish(reg, "alice", "/f", "d"), REG_OK);
    ck_assert_int_eq(registry_publish(reg, "alice", "/f", "other"), REG_PUBLISHED);
    ck_assert_uint_eq(registry_file_count(reg), 1);
    ck_assert_int_eq(registry_delete(reg, "alice", "/f"), REG_OK);
    ck_assert_int_eq(registry_delete(reg, "alice", "/f"), REG_NOT_PUBLISHED);
    ck_assert_uint_eq(registry_file_count(reg), 0);
}
END_TEST

START_TEST(published_is_per_user)
{
    online("alice", 1);
    online("bob", 2);
    ck_assert_int_eq(registry_publish(reg, "alice", "/same", "a"), REG_OK);
    ck_assert_int_eq(registry_publish(reg, "bob", "/same", "b"), REG_OK);
    ck_assert_int_eq(registry_delete(reg, "alice", "/same"), REG_OK);
    ck_assert_int_eq(registry_delete(reg, "bob", "/same"), REG_OK);
}
END_TEST

START_TEST(unregister_drops_files_and_connection)
{
    online("alice", 1);
    online("bob", 2);
    ck_assert_int_eq(registry_publish(reg, "alice", "/a", ""), REG_OK);
    ck_assert_int_eq(registry_publish(reg, "alice", "/b", ""), REG_OK);
    ck_assert_uint_eq(registry_file_count(reg), 2);
    ck_assert_int_eq(registry_unregister(reg, "alice"), REG_OK);
    ck_assert_uint_eq(registry_file_count(reg), 0);

    struct reply r;
    reply_init(&r);
    ck_assert_int_eq(registry_list_users(reg, "bob", &r), REG_OK);
    assert_bytes(&r, "1\0bob\0" "10.0.0.1\0" "2\0", 17);
    reply_free(&r);

    ck_assert_int_eq(registry_register(reg, "alice"), REG_OK);
    reply_init(&r);
    ck_assert_int_eq(registry_list_content(reg, "bob", "alice", &r), REG_OK);
    assert_bytes(&r, "0\0", 2);
    reply_free(&r);
}
END_TEST

START_TEST(disconnect_keeps_files_reconnect_updates_address)
{
    online("alice", 4000);
    online("bob", 4001);
    ck_assert_int_eq(registry_publish(reg, "alice", "/a", ""), REG_OK);
    ck_assert_int_eq(registry_disconnect(reg, "alice"), REG_OK);

    struct reply r;
    reply_init(&r);
    ck_assert_int_eq(registry_list_content(reg, "bob", "alice", &r), REG_OK);
    assert_bytes(&r, "1\0/a\0", 5);
    reply_reset(&r);
    ck_assert_int_eq(registry_connect(reg, "alice", "192.168.1.9", 5555), REG_OK);
    ck_assert_int_eq(registry_disconnect(reg, "bob"), REG_OK);
    ck_assert_int_eq(registry_list_users(reg, "alice", &r), REG_OK);
    assert_bytes(&r, "1\0alice\0" "192.168.1.9\0" "5555\0", 25);
    reply_free(&r);
}
END_TEST

START_TEST(list_statuses)
{
    struct reply r;
    reply_init(&r);
    ck_assert_int_eq(registry_list_users(reg, "ghost", &r), REG_NO_USER);
    ck_assert_int_eq(registry_list_content(reg, "ghost", "x", &r), REG_NO_USER);
    ck_assert_int_eq(registry_register(reg, "alice"), REG_OK);
    ck_assert_int_eq(registry_list_users(reg, "alice", &r), REG_NOT_CONNECTED);
    ck_assert_int_eq(registry_list_content(reg, "alice", "alice", &r), REG_NOT_CONNECTED);
    ck_assert_int_eq(registry_connect(reg, "alice", "1.1.1.1", 1), REG_OK);
    ck_assert_int_eq(registry_list_content(reg, "alice", "ghost", &r), REG_NO_TARGET);
    ck_assert_uint_eq(r.len, 0);        /* nothing appended on failure */
    ck_assert_int_eq(registry_list_content(reg, "alice", "alice", &r), REG_OK);
    assert_bytes(&r, "0\0", 2);
    reply_free(&r);
}
END_TEST

START_TEST(many_users_and_files)
{
    char name[32], path[64];
    for (int u = 0; u < 20000; u++) {
        snprintf(name, sizeof name, "user%05d", u);
        ck_assert_int_eq(registry_register(reg, name), REG_OK);
        if (u % 4 == 0) {
            ck_assert_int_eq(registry_connect(reg, name, "10.1.2.3", 1000), REG_OK);
            for (int f = 0; f < 20; f++) {
                snprintf(path, sizeof path, "/home/%s/f%02d", name, f);
                ck_assert_int_eq(registry_publish(reg, name, path, "x"), REG_OK);
            }
        }
    }
    ck_assert_uint_eq(registry_user_count(reg), 20000);
    ck_assert_uint_eq(registry_file_count(reg), 100000);

    struct reply r;
    reply_init(&r);
    ck_assert_int_eq(registry_list_users(reg, "user00000", &r), REG_OK);
    ck_assert_str_eq(r.data, "5000");
    ck_assert(!r.failed);
    reply_reset(&r);
    ck_assert_int_eq(registry_list_content(reg, "user00000", "user19996", &r), REG_OK);
    ck_assert_str_eq(r.data, "20");
    reply_free(&r);

    for (int u = 0; u < 20000; u += 2) {
        snprintf(name, sizeof name, "user%05d", u);
        ck_assert_int_eq(registry_unregister(reg, name), REG_OK);
    }
    ck_assert_uint_eq(registry_user_count(reg), 10000);
    ck_assert_uint_eq(registry_file_count(reg), 0);
}
END_TEST

/* Each thread owns users t*100..t*100+99 and also fights over "shared". */
struct worker { int id; int wins; };

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    char name[32], path[32];
    if (registry_register(reg, "shared") == REG_OK)
        w->wins++;
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof name, "t%d_u%d", w->id, i);
        ck_assert_int_eq(registry_register(reg, name), REG_OK);
        ck_assert_int_eq(registry_connect(reg, name, "127.0.0.1", 100 + (unsigned)i), REG_OK);
        for (int f = 0; f < 5; f++) {
            snprintf(path, sizeof path, "/f%d", f);
            ck_assert_int_eq(registry_publish(reg, name, path, "d"), REG_OK);
        }
        ck_assert_int_eq(registry_delete(reg, name, "/f0"), REG_OK);
        struct reply r;
        reply_init(&r);
        ck_assert_int_eq(registry_list_users(reg, name, &r), REG_OK);
        reply_free(&r);
        if (i % 2)
            ck_assert_int_eq(registry_disconnect(reg, name), REG_OK);
    }
    return NULL;
}

START_TEST(concurrent_threads_keep_a_consistent_state)
{
    enum { THREADS = 8 };
    pthread_t tid[THREADS];
    struct worker w[THREADS];
    for (int t = 0; t < THREADS; t++) {
        w[t] = (struct worker){.id = t};
        ck_assert_int_eq(pthread_create(&tid[t], NULL, worker_main, &w[t]), 0);
    }
    int wins = 0;
    for (int t = 0; t < THREADS; t++) {
        pthread_join(tid[t], NULL);
        wins += w[t].wins;
    }
    ck_assert_int_eq(wins, 1);
    ck_assert_uint_eq(registry_user_count(reg), THREADS * 100 + 1);
    ck_assert_uint_eq(registry_file_count(reg), THREADS * 100 * 4);

    struct reply r;
    reply_init(&r);
    ck_assert_int_eq(registry_list_users(reg, "t0_u0", &r), REG_OK);
    ck_assert_str_eq(r.data, "400");        /* the even-numbered users */
    reply_free(&r);
}
END_TEST

START_TEST(free_full_registry)
{
    char name[32];
    for (int u = 0; u < 1000; u++) {
        snprintf(name, sizeof name, "u%d", u);
        online(name, 1);
        ck_assert_int_eq(registry_publish(reg, name, "/x", "y"), REG_OK);
    }
    /* teardown frees it; valgrind shows whether anything leaks */
}
END_TEST

int main(void)
{
    Suite *s = suite_create("registry");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, register_and_unregister);
    tcase_add_test(tc, connect_and_disconnect);
    tcase_add_test(tc, publish_and_delete);
    tcase_add_test(tc, published_is_per_user);
    tcase_add_test(tc, unregister_drops_files_and_connection);
    tcase_add_test(tc, disconnect_keeps_files_reconnect_updates_address);
    tcase_add_test(tc, list_statuses);
    tcase_add_test(tc, many_users_and_files);
    tcase_add_test(tc, concurrent_threads_keep_a_consistent_state);
    tcase_add_test(tc, free_full_registry);
    suite_add_tcase(s, tc);

    return run_suite(s);
}
