/* test_registry.c - every status of every registry operation, listings
 * byte for byte, scale, and concurrent use from several threads. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"
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

/* Append a listing's fields (not its result byte) to r, then release it. */
static void append_listing(struct listing *l, struct reply *r)
{
    ck_assert_int_eq(l->data[0], 0);
    for (size_t off = 1; off < l->len; off += strlen(l->data + off) + 1)
        reply_add_field(r, l->data + off);
    listing_release(l);
}

/* registry_list_users(), its fields appended to r as the tests read them. */
static enum reg_status list_users(const char *user, struct reply *r)
{
    struct listing *l;
    enum reg_status st = registry_list_users(reg, user, &l);
    if (st == REG_OK)
        append_listing(l, r);
    return st;
}

/* registry_list_content(), its fields appended to r. */
static enum reg_status list_content(const char *user, const char *target, struct reply *r)
{
    struct listing *l;
    enum reg_status st = registry_list_content(reg, user, target, &l);
    if (st == REG_OK)
        append_listing(l, r);
    return st;
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
    ck_assert_int_eq(list_users("bob", &r), REG_OK);
    assert_bytes(&r, "1\0bob\0" "10.0.0.1\0" "2\0", 17);
    reply_free(&r);

    ck_assert_int_eq(registry_register(reg, "alice"), REG_OK);
    reply_init(&r);
    ck_assert_int_eq(list_content("bob", "alice", &r), REG_OK);
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
    ck_assert_int_eq(list_content("bob", "alice", &r), REG_OK);
    assert_bytes(&r, "1\0/a\0", 5);
    reply_reset(&r);
    ck_assert_int_eq(registry_connect(reg, "alice", "192.168.1.9", 5555), REG_OK);
    ck_assert_int_eq(registry_disconnect(reg, "bob"), REG_OK);
    ck_assert_int_eq(list_users("alice", &r), REG_OK);
    assert_bytes(&r, "1\0alice\0" "192.168.1.9\0" "5555\0", 25);
    reply_free(&r);
}
END_TEST

START_TEST(list_statuses)
{
    struct reply r;
    reply_init(&r);
    ck_assert_int_eq(list_users("ghost", &r), REG_NO_USER);
    ck_assert_int_eq(list_content("ghost", "x", &r), REG_NO_USER);
    ck_assert_int_eq(registry_register(reg, "alice"), REG_OK);
    ck_assert_int_eq(list_users("alice", &r), REG_NOT_CONNECTED);
    ck_assert_int_eq(list_content("alice", "alice", &r), REG_NOT_CONNECTED);
    ck_assert_int_eq(registry_connect(reg, "alice", "1.1.1.1", 1), REG_OK);
    ck_assert_int_eq(list_content("alice", "ghost", &r), REG_NO_TARGET);
    ck_assert_uint_eq(r.len, 0);        /* nothing appended on failure */
    ck_assert_int_eq(list_content("alice", "alice", &r), REG_OK);
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
    ck_assert_int_eq(list_users("user00000", &r), REG_OK);
    ck_assert_str_eq(r.data, "5000");
    reply_reset(&r);
    ck_assert_int_eq(list_content("user00000", "user19996", &r), REG_OK);
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
        ck_assert_int_eq(list_users(name, &r), REG_OK);
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
    ck_assert_int_eq(list_users("t0_u0", &r), REG_OK);
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

/* Split a listing into its NUL-terminated fields; returns how many. */
static size_t split(const struct reply *r, const char **fields, size_t max)
{
    size_t n = 0;
    for (size_t off = 0; off < r->len && n < max; off += strlen(r->data + off) + 1)
        fields[n++] = r->data + off;
    ck_assert_msg(r->len == 0 || r->data[r->len - 1] == '\0', "last field unterminated");
    return n;
}

/* Several users and files: order is free, contents exact. */
START_TEST(listings_are_exact_sets)
{
    online("alice", 4000);
    online("bob", 4001);
    ck_assert_int_eq(registry_register(reg, "carol"), REG_OK);       /* offline */
    ck_assert_int_eq(registry_connect(reg, "dave", "1.1.1.1", 9), REG_NO_USER);
    ck_assert_int_eq(registry_publish(reg, "bob", "/x/1", "one"), REG_OK);
    ck_assert_int_eq(registry_publish(reg, "bob", "/x/2", "two words"), REG_OK);
    ck_assert_int_eq(registry_publish(reg, "bob", "/x/3", ""), REG_OK);
    ck_assert_int_eq(registry_delete(reg, "bob", "/x/2"), REG_OK);

    struct reply r;
    const char *f[16];
    reply_init(&r);
    ck_assert_int_eq(list_users("alice", &r), REG_OK);
    ck_assert_uint_eq(split(&r, f, 16), 7);
    ck_assert_str_eq(f[0], "2");
    int a = strcmp(f[1], "alice") == 0 ? 1 : 4, b = a == 1 ? 4 : 1;
    ck_assert_str_eq(f[a], "alice");
    ck_assert_str_eq(f[a + 1], "10.0.0.1");
    ck_assert_str_eq(f[a + 2], "4000");
    ck_assert_str_eq(f[b], "bob");
    ck_assert_str_eq(f[b + 2], "4001");
    ck_assert_uint_eq(r.len, 2 + 6 + 9 + 5 + 4 + 9 + 5);

    reply_reset(&r);
    ck_assert_int_eq(list_content("alice", "bob", &r), REG_OK);
    ck_assert_uint_eq(split(&r, f, 16), 3);
    ck_assert_str_eq(f[0], "2");
    ck_assert((strcmp(f[1], "/x/1") == 0 && strcmp(f[2], "/x/3") == 0) ||
              (strcmp(f[1], "/x/3") == 0 && strcmp(f[2], "/x/1") == 0));
    ck_assert_uint_eq(r.len, 2 + 5 + 5);

    /* An offline target can be listed; a listing appends to what is there. */
    reply_reset(&r);
    reply_add_byte(&r, 0);
    ck_assert_int_eq(list_content("bob", "carol", &r), REG_OK);
    ck_assert_uint_eq(r.len, 3);
    ck_assert_int_eq(memcmp(r.data, "\0" "0\0", 3), 0);
    reply_free(&r);
}
END_TEST

/* A user unregistered while connected comes back new: not connected, no
 * files, and gone from LIST_USERS in between. */
START_TEST(reregistered_user_starts_fresh)
{
    online("alice", 4000);
    online("bob", 4001);
    ck_assert_int_eq(registry_publish(reg, "alice", "/a", "d"), REG_OK);
    ck_assert_int_eq(registry_unregister(reg, "alice"), REG_OK);
    ck_assert_int_eq(registry_disconnect(reg, "alice"), REG_NO_USER);
    ck_assert_int_eq(registry_publish(reg, "alice", "/a", "d"), REG_NO_USER);
    ck_assert_int_eq(registry_delete(reg, "alice", "/a"), REG_NO_USER);

    struct reply r;
    reply_init(&r);
    ck_assert_int_eq(list_content("bob", "alice", &r), REG_NO_TARGET);
    ck_assert_uint_eq(r.len, 0);
    ck_assert_int_eq(list_users("alice", &r), REG_NO_USER);

    ck_assert_int_eq(registry_register(reg, "alice"), REG_OK);
    ck_assert_int_eq(list_users("alice", &r), REG_NOT_CONNECTED);
    ck_assert_int_eq(registry_disconnect(reg, "alice"), REG_NOT_CONNECTED);
    ck_assert_int_eq(registry_connect(reg, "alice", "10.0.0.2", 7), REG_OK);
    ck_assert_int_eq(registry_delete(reg, "alice", "/a"), REG_NOT_PUBLISHED);
    ck_assert_int_eq(registry_publish(reg, "alice", "/a", "d"), REG_OK);
    ck_assert_uint_eq(registry_file_count(reg), 1);
    reply_free(&r);
}
END_TEST

/* Statuses come in the protocol's order: no user before not connected
 * before the operation's own refusal. */
START_TEST(status_precedence)
{
    ck_assert_int_eq(registry_register(reg, "alice"), REG_OK);
    struct reply r;
    reply_init(&r);
    /* Not connected wins over "no target". */
    ck_assert_int_eq(list_content("alice", "ghost", &r), REG_NOT_CONNECTED);
    /* After disconnect, a published file still answers "not connected". */
    ck_assert_int_eq(registry_connect(reg, "alice", "1.1.1.1", 1), REG_OK);
    ck_assert_int_eq(registry_publish(reg, "alice", "/f", "d"), REG_OK);
    ck_assert_int_eq(registry_disconnect(reg, "alice"), REG_OK);
    ck_assert_int_eq(registry_publish(reg, "alice", "/f", "d"), REG_NOT_CONNECTED);
    ck_assert_int_eq(registry_delete(reg, "alice", "/g"), REG_NOT_CONNECTED);
    ck_assert_uint_eq(registry_file_count(reg), 1);
    ck_assert_uint_eq(r.len, 0);
    reply_free(&r);
}
END_TEST

/* Every thread fights over the same 200 names, then each publishes the
 * same paths under the names it won: exactly one winner per name. */
enum { SHARED_NAMES = 200, OVERLAP_THREADS = 8 };
static int won_by[SHARED_NAMES];

static void *contend_main(void *arg)
{
    int id = *(const int *)arg;
    char name[32];
    for (int i = 0; i < SHARED_NAMES; i++) {
        int k = (i + id * 25) % SHARED_NAMES;     /* start at different places */
        snprintf(name, sizeof name, "common%d", k);
        enum reg_status st = registry_register(reg, name);
        ck_assert(st == REG_OK || st == REG_USER_EXISTS);
        if (st != REG_OK)
            continue;
        won_by[k] = id + 1;         /* each slot written by its one winner */
        ck_assert_int_eq(registry_connect(reg, name, "127.0.0.1", (unsigned)k + 1), REG_OK);
        ck_assert_int_eq(registry_publish(reg, name, "/shared/path", "d"), REG_OK);
        ck_assert_int_eq(registry_publish(reg, name, "/shared/path", "d"), REG_PUBLISHED);
    }
    /* Each thread lists while others may still be changing things. */
    snprintf(name, sizeof name, "common%d", (id * 25) % SHARED_NAMES);
    struct reply r;
    reply_init(&r);
    enum reg_status st = list_users(name, &r);
    if (st == REG_OK) {
        long count = strtol(r.data, NULL, 10);
        ck_assert(count >= 1 && count <= SHARED_NAMES);
    } else {
        ck_assert_int_eq(st, REG_NOT_CONNECTED);    /* its winner not yet connected */
    }
    reply_free(&r);
    return NULL;
}

START_TEST(concurrent_overlapping_names)
{
    pthread_t tid[OVERLAP_THREADS];
    int ids[OVERLAP_THREADS];
    memset(won_by, 0, sizeof won_by);
    for (int t = 0; t < OVERLAP_THREADS; t++) {
        ids[t] = t;
        ck_assert_int_eq(pthread_create(&tid[t], NULL, contend_main, &ids[t]), 0);
    }
    for (int t = 0; t < OVERLAP_THREADS; t++)
        pthread_join(tid[t], NULL);
    for (int k = 0; k < SHARED_NAMES; k++)
        ck_assert_int_ne(won_by[k], 0);
    ck_assert_uint_eq(registry_user_count(reg), SHARED_NAMES);
    ck_assert_uint_eq(registry_file_count(reg), SHARED_NAMES);

    struct reply r;
    reply_init(&r);
    ck_assert_int_eq(list_users("common7", &r), REG_OK);
    ck_assert_str_eq(r.data, "200");
    reply_free(&r);
}
END_TEST

/* One encoded listing is shared by every reader until the files change. */
START_TEST(listing_is_shared_until_a_change)
{
    online("alice", 4000);
    ck_assert_int_eq(registry_publish(reg, "alice", "/a", ""), REG_OK);
    struct listing *l1, *l2, *l3;
    ck_assert_int_eq(registry_list_content(reg, "alice", "alice", &l1), REG_OK);
    ck_assert_int_eq(registry_list_content(reg, "alice", "alice", &l2), REG_OK);
    ck_assert_ptr_eq(l1, l2);
    ck_assert_uint_eq(l1->len, 1 + 2 + 3);
    ck_assert_int_eq(memcmp(l1->data, "\0" "1\0/a\0", 6), 0);
    ck_assert_int_eq(registry_publish(reg, "alice", "/b", ""), REG_OK);
    ck_assert_int_eq(registry_list_content(reg, "alice", "alice", &l3), REG_OK);
    ck_assert_ptr_ne(l3, l1);
    ck_assert_int_eq(l3->data[1], '2');
    ck_assert_int_eq(memcmp(l1->data, "\0" "1\0/a\0", 6), 0);  /* the old one intact */
    listing_release(l1);
    listing_release(l2);
    listing_release(l3);

    struct listing *u1, *u2;
    ck_assert_int_eq(registry_list_users(reg, "alice", &u1), REG_OK);
    ck_assert_int_eq(registry_list_users(reg, "alice", &u2), REG_OK);
    ck_assert_ptr_eq(u1, u2);
    ck_assert(!u1->has_loopback);
    listing_release(u1);
    listing_release(u2);
}
END_TEST

/* PUBLISH past either quota is refused and changes nothing. */
START_TEST(quotas_refuse_publish)
{
    registry_set_quotas(reg, 2, 1 + 21 + 3 + 3);   /* "/a" and "/b" fit */
    online("alice", 4000);
    ck_assert_int_eq(registry_publish(reg, "alice", "/a", ""), REG_OK);
    ck_assert_int_eq(registry_publish(reg, "alice", "/bcd", ""), REG_QUOTA_BYTES);
    ck_assert_int_eq(registry_publish(reg, "alice", "/b", ""), REG_OK);
    ck_assert_int_eq(registry_publish(reg, "alice", "/c", ""), REG_QUOTA_FILES);
    ck_assert_uint_eq(registry_file_count(reg), 2);
    ck_assert_int_eq(registry_delete(reg, "alice", "/a"), REG_OK);
    ck_assert_int_eq(registry_publish(reg, "alice", "/c", ""), REG_OK);
}
END_TEST

/* Loopback addresses in a users listing can be replaced by another one. */
START_TEST(users_listing_with_address)
{
    ck_assert_int_eq(registry_register(reg, "a"), REG_OK);
    ck_assert_int_eq(registry_connect(reg, "a", "127.0.0.1", 7), REG_OK);
    struct listing *l;
    ck_assert_int_eq(registry_list_users(reg, "a", &l), REG_OK);
    ck_assert(l->has_loopback);
    struct listing *c = listing_with_address(l, "192.0.2.10");
    ck_assert_uint_eq(c->len, 1 + 2 + 2 + 11 + 2);
    ck_assert_int_eq(memcmp(c->data, "\0" "1\0a\0" "192.0.2.10\0" "7\0", c->len), 0);
    listing_release(c);
    listing_release(l);
}
END_TEST

/* Readers of a changing listing while it is built outside the lock. */
static void *churn_files(void *arg)
{
    (void)arg;
    char path[32];
    for (int i = 0; i < 2000; i++) {
        snprintf(path, sizeof path, "/churn/%d", i % 50);
        if (registry_publish(reg, "big", path, "") != REG_OK)
            ck_assert_int_eq(registry_delete(reg, "big", path), REG_OK);
    }
    return NULL;
}

static void *read_listings(void *arg)
{
    (void)arg;
    for (int i = 0; i < 2000; i++) {
        struct listing *l;
        ck_assert_int_eq(registry_list_content(reg, "reader", "big", &l), REG_OK);
        size_t fields = 0;
        for (size_t off = 1; off < l->len; off += strlen(l->data + off) + 1)
            fields++;
        ck_assert_uint_eq(fields, strtoul(l->data + 1, NULL, 10) + 1);
        listing_release(l);
    }
    return NULL;
}

START_TEST(listings_stay_whole_while_files_change)
{
    char path[32];
    online("big", 1);
    online("reader", 2);
    for (int i = 0; i < 500; i++) {
        snprintf(path, sizeof path, "/base/%d", i);
        ck_assert_int_eq(registry_publish(reg, "big", path, ""), REG_OK);
    }
    pthread_t tid[4];
    ck_assert_int_eq(pthread_create(&tid[0], NULL, churn_files, NULL), 0);
    for (int t = 1; t < 4; t++)
        ck_assert_int_eq(pthread_create(&tid[t], NULL, read_listings, NULL), 0);
    for (int t = 0; t < 4; t++)
        pthread_join(tid[t], NULL);
}
END_TEST

/* A proof for user's request body under the secret 0, 1, ..., 31: the MAC
 * computed by auth.c itself (the wire format is tested in test_request.c). */
static struct auth_proof proof_for(const char *body, uint64_t counter, char *text,
                                   const uint8_t *secret)
{
    struct auth_proof p = {.counter = counter, .counter_text = text,
                           .inner = body, .inner_len = strlen(body) + 1};
    sprintf(text, "%llu", (unsigned long long)counter);
    struct auth_key key;
    auth_key_init(&key, secret);
    struct hmac_sha256_ctx ctx = key.keyed;
    hmac_sha256_update(&ctx, strlen(text) + 1, (const uint8_t *)text);
    hmac_sha256_update(&ctx, p.inner_len, (const uint8_t *)body);
    hmac_sha256_digest(&ctx, sizeof p.mac, p.mac);
    return p;
}

/* An authenticated user: classic requests acting as it are refused and
 * change nothing; a proof holds once (a replay is stale), a wrong secret
 * never; a later user of the same name is not proven by an earlier proof;
 * a classic user cannot be proven; forgetting the key makes it classic. */
START_TEST(authenticated_users)
{
    uint8_t secret[AUTH_SECRET_SIZE], other[AUTH_SECRET_SIZE];
    for (int i = 0; i < AUTH_SECRET_SIZE; i++) {
        secret[i] = (uint8_t)i;
        other[i] = (uint8_t)(i + 1);
    }
    char text[24];
    ck_assert_int_eq(registry_apply(reg, &(struct reg_op){.op = OP_REGISTER, .user = "bob",
                                                          .secret = secret}, NULL), REG_OK);
    ck_assert_int_eq(registry_connect(reg, "bob", "10.0.0.1", 4000), REG_NOT_PROVEN);
    ck_assert_int_eq(registry_unregister(reg, "bob"), REG_NOT_PROVEN);
    ck_assert_uint_eq(registry_user_count(reg), 1);

    struct auth_proof p = proof_for("x", 10, text, secret);
    struct reg_op op = {.op = OP_CONNECT, .user = "bob", .ip = "10.0.0.1", .port = 4000,
                        .proof = &p};
    ck_assert_int_eq(registry_prove(reg, &op), PROOF_OK);
    ck_assert_uint_eq(op.counter, 10);
    ck_assert_int_eq(registry_apply(reg, &op, NULL), REG_OK);
    ck_assert_int_eq(registry_prove(reg, &op), PROOF_STALE);
    ck_assert_int_eq(registry_disconnect(reg, "bob"), REG_NOT_PROVEN);

    struct auth_proof bad = proof_for("x", 11, text, other);
    op.proof = &bad;
    ck_assert_int_eq(registry_prove(reg, &op), PROOF_BAD);
    ck_assert_int_eq(registry_apply(reg, &op, NULL), REG_NOT_PROVEN);

    /* Proven for the old bob; a new bob (another secret) meanwhile: refused. */
    struct auth_proof p2 = proof_for("x", 12, text, secret);
    struct reg_op un = {.op = OP_UNREGISTER, .user = "bob", .proof = &p2};
    ck_assert_int_eq(registry_prove(reg, &un), PROOF_OK);
    ck_assert_int_eq(registry_apply(reg, &un, NULL), REG_OK);
    ck_assert_int_eq(registry_apply(reg, &(struct reg_op){.op = OP_REGISTER, .user = "bob",
                                                          .secret = other}, NULL), REG_OK);
    ck_assert_int_eq(registry_apply(reg, &un, NULL), REG_NOT_PROVEN);

    ck_assert_int_eq(registry_register(reg, "carol"), REG_OK);
    struct reg_op c = {.op = OP_CONNECT, .user = "carol", .ip = "10.0.0.2", .port = 1,
                       .proof = &p2};
    ck_assert_int_eq(registry_prove(reg, &c), PROOF_NO_KEY);
    ck_assert_int_eq(registry_apply(reg, &c, NULL), REG_NOT_PROVEN);
    ck_assert_int_eq(registry_connect(reg, "carol", "10.0.0.2", 1), REG_OK);

    ck_assert_int_eq(registry_forget_key(reg, "bob"), REG_OK);
    ck_assert_int_eq(registry_forget_key(reg, "carol"), REG_NOT_PROVEN);
    ck_assert_int_eq(registry_connect(reg, "bob", "10.0.0.1", 4000), REG_OK);
}
END_TEST

/* registry_view(): the totals, and at most `max` connected users with
 * their file counts; unconnected users are counted, not listed. */
START_TEST(view_copies_a_bounded_picture)
{
    online("ann", 4001);
    online("ben", 4002);
    online("cid", 4003);
    ck_assert_int_eq(registry_register(reg, "dee"), REG_OK);
    ck_assert_int_eq(registry_publish(reg, "ann", "/a", "x"), REG_OK);
    ck_assert_int_eq(registry_publish(reg, "ann", "/b", "x"), REG_OK);
    ck_assert_int_eq(registry_publish(reg, "ben", "/c", "x"), REG_OK);

    struct reg_user_view v[4];
    struct reg_totals t;
    size_t n;
    ck_assert_int_eq(registry_view(reg, v, 4, &n, &t), REG_OK);
    ck_assert_uint_eq(t.users, 4);
    ck_assert_uint_eq(t.connected, 3);
    ck_assert_uint_eq(t.files, 3);
    ck_assert_uint_eq(n, 3);
    size_t files = 0;
    for (size_t i = 0; i < n; i++) {
        ck_assert_str_eq(v[i].ip, "10.0.0.1");
        ck_assert_int_gt(v[i].since, 0);
        if (strcmp(v[i].name, "ann") == 0)
            ck_assert_uint_eq(v[i].port, 4001);
        files += v[i].files;
    }
    ck_assert_uint_eq(files, 3);

    ck_assert_int_eq(registry_view(reg, v, 2, &n, &t), REG_OK);
    ck_assert_uint_eq(n, 2);                /* bounded; the totals count all */
    ck_assert_uint_eq(t.connected, 3);
    ck_assert_int_eq(registry_view(reg, NULL, 0, &n, &t), REG_OK);
    ck_assert_uint_eq(n, 0);
    ck_assert_uint_eq(t.users, 4);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("registry");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, register_and_unregister);
    tcase_add_test(tc, authenticated_users);
    tcase_add_test(tc, connect_and_disconnect);
    tcase_add_test(tc, publish_and_delete);
    tcase_add_test(tc, published_is_per_user);
    tcase_add_test(tc, unregister_drops_files_and_connection);
    tcase_add_test(tc, disconnect_keeps_files_reconnect_updates_address);
    tcase_add_test(tc, list_statuses);
    tcase_add_test(tc, many_users_and_files);
    tcase_add_test(tc, concurrent_threads_keep_a_consistent_state);
    tcase_add_test(tc, free_full_registry);
    tcase_add_test(tc, listings_are_exact_sets);
    tcase_add_test(tc, reregistered_user_starts_fresh);
    tcase_add_test(tc, status_precedence);
    tcase_add_test(tc, concurrent_overlapping_names);
    tcase_add_test(tc, listing_is_shared_until_a_change);
    tcase_add_test(tc, quotas_refuse_publish);
    tcase_add_test(tc, users_listing_with_address);
    tcase_add_test(tc, listings_stay_whole_while_files_change);
    tcase_add_test(tc, view_copies_a_bounded_picture);
    suite_add_tcase(s, tc);

    return run_suite(s);
}
