/* test_registry_sessions.c - sessions, endpoint copies and expiry: what the
 * liveness prober relies on to never end a session it did not probe. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"
#include "unit.h"

static struct registry *reg;

static void setup(void) { reg = registry_new(); ck_assert_ptr_nonnull(reg); }
static void teardown(void) { registry_free(reg); }

/* Whether LIST_USERS (asked by `asker`) names `user`. */
static int is_listed(const char *asker, const char *user)
{
    struct listing *l;
    ck_assert_int_eq(registry_list_users(reg, asker, &l), REG_OK);
    ck_assert_int_eq(l->data[0], 0);
    int found = 0;
    for (size_t i = 1; i < l->len; i += strlen(l->data + i) + 1)
        if (strcmp(l->data + i, user) == 0)
            found = 1;
    listing_release(l);
    return found;
}

START_TEST(endpoint_of_connected_user)
{
    struct reg_endpoint e;
    ck_assert_int_eq(registry_endpoint(reg, "ghost", &e), REG_NO_USER);
    ck_assert_int_eq(registry_register(reg, "alice"), REG_OK);
    ck_assert_int_eq(registry_endpoint(reg, "alice", &e), REG_NOT_CONNECTED);
    ck_assert_int_eq(registry_connect(reg, "alice", "10.0.0.1", 4000), REG_OK);
    ck_assert_int_eq(registry_endpoint(reg, "alice", &e), REG_OK);
    ck_assert_str_eq(e.name, "alice");
    ck_assert_str_eq(e.ip, "10.0.0.1");
    ck_assert_uint_eq(e.port, 4000);
    ck_assert(e.session != 0);
}
END_TEST

START_TEST(every_connect_is_a_new_session)
{
    struct reg_endpoint a, b;
    ck_assert_int_eq(registry_register(reg, "alice"), REG_OK);
    ck_assert_int_eq(registry_connect(reg, "alice", "10.0.0.1", 4000), REG_OK);
    ck_assert_int_eq(registry_endpoint(reg, "alice", &a), REG_OK);
    ck_assert_int_eq(registry_disconnect(reg, "alice"), REG_OK);
    ck_assert_int_eq(registry_connect(reg, "alice", "10.0.0.1", 4000), REG_OK);
    ck_assert_int_eq(registry_endpoint(reg, "alice", &b), REG_OK);
    ck_assert(a.session != b.session);
}
END_TEST

START_TEST(expire_ends_only_the_probed_session)
{
    struct reg_endpoint old, now;
    ck_assert_int_eq(registry_expire(reg, "ghost", 1), REG_NO_USER);
    ck_assert_int_eq(registry_register(reg, "alice"), REG_OK);
    ck_assert_int_eq(registry_register(reg, "bob"), REG_OK);
    ck_assert_int_eq(registry_connect(reg, "bob", "10.0.0.2", 5000), REG_OK);
    ck_assert_int_eq(registry_connect(reg, "alice", "10.0.0.1", 4000), REG_OK);
    ck_assert_int_eq(registry_publish(reg, "alice", "/f", "d"), REG_OK);
    ck_assert_int_eq(registry_endpoint(reg, "alice", &old), REG_OK);
    /* alice reconnects before the verdict on her old session arrives */
    ck_assert_int_eq(registry_disconnect(reg, "alice"), REG_OK);
    ck_assert_int_eq(registry_connect(reg, "alice", "10.0.0.9", 4001), REG_OK);
    ck_assert_int_eq(registry_expire(reg, "alice", old.session), REG_NOT_CONNECTED);
    ck_assert(is_listed("bob", "alice"));
    /* the current session expires as DISCONNECT would: files stay */
    ck_assert_int_eq(registry_endpoint(reg, "alice", &now), REG_OK);
    ck_assert_int_eq(registry_expire(reg, "alice", now.session), REG_OK);
    ck_assert(!is_listed("bob", "alice"));
    ck_assert_int_eq(registry_endpoint(reg, "alice", &now), REG_NOT_CONNECTED);
    ck_assert_int_eq(registry_expire(reg, "alice", now.session), REG_NOT_CONNECTED);
    ck_assert_uint_eq(registry_file_count(reg), 1);
    ck_assert_int_eq(registry_connect(reg, "alice", "10.0.0.1", 4000), REG_OK);
}
END_TEST

START_TEST(endpoints_copies_every_connected_user)
{
    struct reg_endpoint *e = NULL;
    size_t n = 99;
    ck_assert_int_eq(registry_endpoints(reg, &e, &n), REG_OK);
    ck_assert_uint_eq(n, 0);
    free(e);

    char name[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(name, sizeof name, "u%d", i);
        ck_assert_int_eq(registry_register(reg, name), REG_OK);
        if (i % 2 == 0)
            ck_assert_int_eq(registry_connect(reg, name, "::1", 1 + i), REG_OK);
    }
    ck_assert_int_eq(registry_endpoints(reg, &e, &n), REG_OK);
    ck_assert_uint_eq(n, 500);
    for (size_t k = 0; k < n; k++) {
        int i = (int)strtol(e[k].name + 1, NULL, 10);
        ck_assert_int_eq(i % 2, 0);
        ck_assert_uint_eq(e[k].port, 1 + i);
        ck_assert_str_eq(e[k].ip, "::1");
        for (size_t j = 0; j < k; j++)
            ck_assert(e[j].session != e[k].session);
    }
    free(e);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("registry_sessions");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, endpoint_of_connected_user);
    tcase_add_test(tc, every_connect_is_a_new_session);
    tcase_add_test(tc, expire_ends_only_the_probed_session);
    tcase_add_test(tc, endpoints_copies_every_connected_user);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
