/* test_framing.c - reading requests under a deadline and sending whole
 * replies, over a real socketpair; and the reply buffer itself. */
#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "framing.h"
#include "reply.h"
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
    ck_assert(!rep.failed);
    ck_assert_uint_eq(rep.len, 1 + 1024 * 1024);

    size_t total = 0;
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, drain, &total), 0);
    ck_assert_int_eq(framing_send(sv[0], &rep, 2000), 0);
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
    ck_assert_int_eq(framing_send(sv[0], &rep, 2000), -1);
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
    ck_assert_int_eq(framing_send(sv[0], &rep, 300), -1);
    double took = now_s() - start;
    ck_assert(took >= 0.29 && took < 3.0);
    reply_free(&rep);
}
END_TEST

START_TEST(reply_grows_and_keeps_content)
{
    struct reply r;
    reply_init(&r);
    reply_add_byte(&r, 3);
    reply_add_uint(&r, 0);
    reply_add_uint(&r, 18446744073709551615ULL);
    ck_assert_uint_eq(r.len, 1 + 2 + 21);
    ck_assert_int_eq(memcmp(r.data, "\x03" "0\0" "18446744073709551615\0", r.len), 0);
    for (int i = 0; i < 1000; i++)
        reply_add_field(&r, "0123456789");
    ck_assert(!r.failed);
    ck_assert_uint_eq(r.len, 24 + 1000 * 11);
    ck_assert_int_eq(memcmp(r.data, "\x03" "0\0", 3), 0);
    ck_assert_str_eq(r.data + r.len - 11, "0123456789");
    reply_reset(&r);
    ck_assert_uint_eq(r.len, 0);
    reply_add_field(&r, "again");
    ck_assert_str_eq(r.data, "again");
    reply_free(&r);
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
    suite_add_tcase(s, tc);
    TCase *tr = tcase_create("reply");
    tcase_add_test(tr, reply_grows_and_keeps_content);
    suite_add_tcase(s, tr);

    return run_suite(s);
}
