/* test_framing.c - reading requests under a deadline and sending whole
 * replies, over a real socketpair. */
#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "framing.h"
#include "unit.h"

static const char REGISTER_REQ[] = "REGISTER\0" "17/12/2014 13:20:35\0alice";
#define REGISTER_LEN sizeof REGISTER_REQ        /* includes the final NUL */

static int sv[2];

static void setup(void) { ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0); }
static void teardown(void) { close(sv[0]); if (sv[1] >= 0) close(sv[1]); }

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

START_TEST(whole_request_in_one_write)
{
    char buf[REQUEST_MAX];
    struct request r;
    ck_assert_int_eq(write(sv[1], REGISTER_REQ, REGISTER_LEN), (ssize_t)REGISTER_LEN);
    ck_assert_int_eq(framing_read_request(sv[0], buf, sizeof buf, 1000, &r), READ_OK);
    ck_assert_int_eq(r.op, OP_REGISTER);
    ck_assert_str_eq(r.user, "alice");
}
END_TEST

/* Writes the request one byte at a time with short pauses. */
static void *trickle(void *arg)
{
    (void)arg;
    for (size_t i = 0; i < REGISTER_LEN; i++) {
        if (write(sv[1], REGISTER_REQ + i, 1) != 1)
            break;
        usleep(500);
    }
    return NULL;
}

START_TEST(request_in_single_bytes)
{
    char buf[REQUEST_MAX];
    struct request r;
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, trickle, NULL), 0);
    ck_assert_int_eq(framing_read_request(sv[0], buf, sizeof buf, 3000, &r), READ_OK);
    pthread_join(t, NULL);
    ck_assert_str_eq(r.user, "alice");
}
END_TEST

START_TEST(eof_mid_request)
{
    char buf[REQUEST_MAX];
    struct request r;
    ck_assert_int_eq(write(sv[1], REGISTER_REQ, 12), 12);
    close(sv[1]);
    sv[1] = -1;
    ck_assert_int_eq(framing_read_request(sv[0], buf, sizeof buf, 1000, &r), READ_EOF);
    ck_assert_int_eq(r.op, OP_REGISTER);
}
END_TEST

START_TEST(stall_times_out)
{
    char buf[REQUEST_MAX];
    struct request r;
    ck_assert_int_eq(write(sv[1], REGISTER_REQ, 12), 12);
    double start = now_s();
    ck_assert_int_eq(framing_read_request(sv[0], buf, sizeof buf, 200, &r), READ_TIMEOUT);
    double took = now_s() - start;
    ck_assert(took >= 0.19 && took < 2.0);
    ck_assert_int_eq(r.op, OP_REGISTER);
}
END_TEST

START_TEST(unknown_op_needs_no_more_bytes)
{
    char buf[REQUEST_MAX];
    struct request r;
    ck_assert_int_eq(write(sv[1], "HELLO", 5), 5);
    double start = now_s();
    ck_assert_int_eq(framing_read_request(sv[0], buf, sizeof buf, 3000, &r), READ_UNKNOWN_OP);
    ck_assert(now_s() - start < 1.0);
}
END_TEST

START_TEST(oversize_field_answers_at_once)
{
    char buf[REQUEST_MAX];
    char big[400];
    struct request r;
    memcpy(big, "REGISTER\0x\0", 11);    // NOLINT(bugprone-not-null-terminated-result)
    memset(big + 11, 'u', sizeof big - 11);         /* no NUL: never finishes */
    ck_assert_int_eq(write(sv[1], big, sizeof big), (ssize_t)sizeof big);
    double start = now_s();
    ck_assert_int_eq(framing_read_request(sv[0], buf, sizeof buf, 3000, &r), READ_BAD_REQUEST);
    ck_assert(now_s() - start < 1.0);
    ck_assert_int_eq(r.op, OP_REGISTER);
}
END_TEST

START_TEST(bad_field_is_a_bad_request)
{
    char buf[REQUEST_MAX];
    struct request r;
    static const char req[] = "CONNECT\0dt\0alice\0" "70000";
    ck_assert_int_eq(write(sv[1], req, sizeof req), (ssize_t)sizeof req);
    ck_assert_int_eq(framing_read_request(sv[0], buf, sizeof buf, 1000, &r), READ_BAD_REQUEST);
    ck_assert_int_eq(r.op, OP_CONNECT);
}
END_TEST

/* Reads everything from sv[1] until EOF; returns the byte count. */
static void *drain(void *arg)
{
    size_t *total = arg;
    char chunk[65536];
    ssize_t n;
    while ((n = read(sv[1], chunk, sizeof chunk)) > 0)
        *total += (size_t)n;
    return NULL;
}

START_TEST(large_reply_arrives_whole)
{
    struct reply rep;
    reply_init(&rep);
    reply_add_byte(&rep, 0);
    char field[1024];
    memset(field, 'f', sizeof field - 1);
    field[sizeof field - 1] = '\0';
    for (int i = 0; i < 1024; i++)
        reply_add_field(&rep, field);
    ck_assert_uint_eq(rep.len, 1 + 1024 * 1024);

    size_t total = 0;
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, drain, &total), 0);
    ck_assert_int_eq(framing_send_bytes(sv[0], rep.data, rep.len, 2000), 0);
    shutdown(sv[0], SHUT_WR);
    pthread_join(t, NULL);
    ck_assert_uint_eq(total, rep.len);
    reply_free(&rep);
}
END_TEST

START_TEST(send_to_closed_peer_fails_without_sigpipe)
{
    signal(SIGPIPE, SIG_DFL);           /* a SIGPIPE would kill this test */
    struct reply rep;
    reply_init(&rep);
    reply_add_field(&rep, "hello");
    close(sv[1]);
    sv[1] = -1;
    ck_assert_int_eq(framing_send_bytes(sv[0], rep.data, rep.len, 2000), -1);
    reply_free(&rep);
}
END_TEST

START_TEST(send_to_a_peer_that_never_reads_times_out)
{
    struct reply rep;
    reply_init(&rep);
    char field[65536];
    memset(field, 'x', sizeof field - 1);
    field[sizeof field - 1] = '\0';
    for (int i = 0; i < 64; i++)            /* 4 MB: far more than the buffers */
        reply_add_field(&rep, field);
    double start = now_s();
    ck_assert_int_eq(framing_send_bytes(sv[0], rep.data, rep.len, 300), -1);
    double took = now_s() - start;
    ck_assert(took >= 0.29 && took < 3.0);
    reply_free(&rep);
}
END_TEST

START_TEST(eof_before_anything)
{
    char buf[REQUEST_MAX];
    struct request r;
    close(sv[1]);
    sv[1] = -1;
    ck_assert_int_eq(framing_read_request(sv[0], buf, sizeof buf, 1000, &r), READ_EOF);
    ck_assert_int_eq(r.op, OP_UNKNOWN);
}
END_TEST

START_TEST(stall_in_operation_name_times_out)
{
    char buf[REQUEST_MAX];
    struct request r;
    ck_assert_int_eq(write(sv[1], "LIST_", 5), 5);
    double start = now_s();
    ck_assert_int_eq(framing_read_request(sv[0], buf, sizeof buf, 200, &r), READ_TIMEOUT);
    ck_assert(now_s() - start >= 0.19);
    ck_assert_int_eq(r.op, OP_UNKNOWN);
}
END_TEST

/* What a writer thread sends: `len` bytes of `data`, `step` bytes at a
 * time, pausing `pause_us` between pieces. */
struct piecewise { const char *data; size_t len, step; useconds_t pause_us; };

/* Thread body: send a request in pieces to sv[1]; stops if the peer goes. */
static void *write_pieces(void *arg)
{
    const struct piecewise *p = arg;
    for (size_t off = 0; off < p->len; off += p->step) {
        size_t n = p->len - off < p->step ? p->len - off : p->step;
        if (send(sv[1], p->data + off, n, MSG_NOSIGNAL) != (ssize_t)n)
            break;
        usleep(p->pause_us);
    }
    return NULL;
}

/* The trickle below: the request, its bytes sent so far, and the reader's
 * word to stop. */
static char trickle_req[300];
static size_t trickle_len;
static atomic_size_t trickle_sent;
static atomic_bool trickle_stop;

/* Thread body: send trickle_req's user name (the rest went at once) one
 * byte every 20 ms to sv[1] until the reader says stop (or the peer goes). */
static void *trickle_name(void *arg)
{
    (void)arg;
    for (size_t off = 29; off < trickle_len && !atomic_load(&trickle_stop); off++) {
        if (send(sv[1], trickle_req + off, 1, MSG_NOSIGNAL) != 1)
            break;
        atomic_store(&trickle_sent, off + 1);
        usleep(20000);
    }
    return NULL;
}

/* The deadline covers the whole request: bytes that keep coming, but too
 * slowly, do not extend it.  A byte every 20 ms (far inside the 300 ms
 * deadline) of a request that takes over 5 s to send: the read gives up at
 * the deadline while the bytes still come, not once they stop.  Told by
 * the count of bytes sent, not by a clock, so a busy machine cannot fail
 * it (the reader would have to wait 5 s for the CPU). */
START_TEST(trickle_slower_than_deadline_times_out)
{
    char buf[REQUEST_MAX];
    struct request r;
    /* REGISTER, the date-time, a 240-byte user name: 270 bytes. */
    memcpy(trickle_req, "REGISTER\0" "17/12/2014 13:20:35", 29);
    memset(trickle_req + 29, 'a', 240);
    trickle_req[269] = '\0';
    trickle_len = 270;
    /* The operation and the date-time at once, so that the operation is
     * known however late the thread runs. */
    ck_assert_int_eq(write(sv[1], trickle_req, 29), 29);
    atomic_store(&trickle_sent, 29);
    atomic_store(&trickle_stop, false);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, trickle_name, NULL), 0);
    double start = now_s();
    enum read_status st = framing_read_request(sv[0], buf, sizeof buf, 300, &r);
    double took = now_s() - start;
    size_t sent = atomic_load(&trickle_sent);
    atomic_store(&trickle_stop, true);
    pthread_join(t, NULL);
    ck_assert_int_eq(st, READ_TIMEOUT);
    ck_assert(took >= 0.29);                    /* not before the deadline */
    ck_assert_uint_lt(sent, trickle_len);       /* nor after the bytes stopped */
    ck_assert_int_eq(r.op, OP_REGISTER);
}
END_TEST

/* Every operation, split into 3-byte pieces by another thread. */
START_TEST(every_operation_in_pieces)
{
    static const struct { const char *req; size_t len; enum op op; } reqs[] = {
#define R(lit, op) {(lit), sizeof(lit), (op)}
        R("REGISTER\0dt\0alice", OP_REGISTER),
        R("UNREGISTER\0dt\0alice", OP_UNREGISTER),
        R("CONNECT\0dt\0alice\0" "40001", OP_CONNECT),
        R("DISCONNECT\0dt\0alice", OP_DISCONNECT),
        R("PUBLISH\0dt\0alice\0/a/b.txt\0some text", OP_PUBLISH),
        R("DELETE\0dt\0alice\0/a/b.txt", OP_DELETE),
        R("LIST_USERS\0dt\0alice", OP_LIST_USERS),
        R("LIST_CONTENT\0dt\0alice\0bob", OP_LIST_CONTENT),
#undef R
    };
    for (size_t i = 0; i < sizeof reqs / sizeof *reqs; i++) {
        char buf[REQUEST_MAX];
        struct request r;
        struct piecewise p = {reqs[i].req, reqs[i].len, 3, 200};
        pthread_t t;
        ck_assert_int_eq(pthread_create(&t, NULL, write_pieces, &p), 0);
        enum read_status st = framing_read_request(sv[0], buf, sizeof buf, 3000, &r);
        pthread_join(t, NULL);
        ck_assert_int_eq(st, READ_OK);
        ck_assert_int_eq(r.op, reqs[i].op);
        ck_assert_str_eq(r.user, "alice");
    }
}
END_TEST

START_TEST(bytes_after_request_are_ignored)
{
    char buf[REQUEST_MAX];
    struct request r;
    static const char two[] = "DISCONNECT\0dt\0bob\0garbage\0REGISTER\0dt\0x";
    ck_assert_int_eq(write(sv[1], two, sizeof two), (ssize_t)sizeof two);
    ck_assert_int_eq(framing_read_request(sv[0], buf, sizeof buf, 1000, &r), READ_OK);
    ck_assert_int_eq(r.op, OP_DISCONNECT);
    ck_assert_str_eq(r.user, "bob");
}
END_TEST

START_TEST(not_a_socket_is_an_error)
{
    char buf[REQUEST_MAX];
    struct request r;
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(write(p[1], REGISTER_REQ, REGISTER_LEN), (ssize_t)REGISTER_LEN);
    ck_assert_int_eq(framing_read_request(p[0], buf, sizeof buf, 1000, &r), READ_ERROR);
    close(p[0]);
    close(p[1]);
}
END_TEST

START_TEST(small_reply_arrives_exact)
{
    struct reply rep;
    reply_init(&rep);
    reply_add_byte(&rep, 0);
    reply_add_uint(&rep, 1);
    reply_add_field(&rep, "/a");
    ck_assert_int_eq(framing_send_bytes(sv[0], rep.data, rep.len, 1000), 0);
    char got[16];
    ck_assert_int_eq(read(sv[1], got, sizeof got), 6);
    ck_assert_int_eq(memcmp(got, "\0" "1\0/a\0", 6), 0);
    reply_free(&rep);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("framing");
    TCase *tc = tcase_create("socketpair");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, whole_request_in_one_write);
    tcase_add_test(tc, request_in_single_bytes);
    tcase_add_test(tc, eof_mid_request);
    tcase_add_test(tc, stall_times_out);
    tcase_add_test(tc, unknown_op_needs_no_more_bytes);
    tcase_add_test(tc, oversize_field_answers_at_once);
    tcase_add_test(tc, bad_field_is_a_bad_request);
    tcase_add_test(tc, large_reply_arrives_whole);
    tcase_add_test(tc, send_to_closed_peer_fails_without_sigpipe);
    tcase_add_test(tc, send_to_a_peer_that_never_reads_times_out);
    tcase_add_test(tc, eof_before_anything);
    tcase_add_test(tc, stall_in_operation_name_times_out);
    tcase_add_test(tc, trickle_slower_than_deadline_times_out);
    tcase_add_test(tc, every_operation_in_pieces);
    tcase_add_test(tc, bytes_after_request_are_ignored);
    tcase_add_test(tc, not_a_socket_is_an_error);
    tcase_add_test(tc, small_reply_arrives_exact);
    suite_add_tcase(s, tc);

    return run_suite(s);
}
