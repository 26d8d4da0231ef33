/* test_logstore.c - the operation log's XDR, its lines, duplicate detection,
 * and recovery after crashes (torn line, crash between log and idx). */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rpc/rpc.h>

#include "logrpc.h"
#include "logstore.h"
#include "unit.h"

static char dir[64], log_path[96], idx_path[112];

static void setup(void)
{
    strcpy(dir, "/tmp/peerdex-logstore-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(log_path, sizeof log_path, "%s/ops.log", dir);
    snprintf(idx_path, sizeof idx_path, "%s/ops.log.idx", dir);
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* The whole content of a file (static buffer). */
static const char *slurp(const char *path)
{
    static char buf[1 << 16];
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    return buf;
}

static void append_raw(const char *path, const char *text)
{
    FILE *f = fopen(path, "a");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static struct log_record rec(uint64_t origin, uint64_t seq, const char *user,
                             const char *op, const char *path)
{
    return (struct log_record){origin, seq, user, op, path, "17/12/2014 13:20:35"};
}

static struct logstore *open_store(void)
{
    char err[256];
    struct logstore *ls = logstore_open(log_path, err, sizeof err);
    ck_assert_msg(ls != NULL, "%s", err);
    return ls;
}

START_TEST(xdr_round_trip)
{
    log_entry in[2] = {
        {.origin = 0xfedcba9876543210ULL, .seq = 1, .user = "alice",
         .operation = "PUBLISH", .path = "/a/b.txt", .datetime = "17/12/2014 13:20:35"},
        {.origin = 7, .seq = 18446744073709551615ULL, .user = "bob",
         .operation = "LIST_USERS", .path = "", .datetime = ""},
    };
    log_batch batch = {.log_batch_len = 2, .log_batch_val = in};
    char buf[4096];
    XDR enc, dec;
    xdrmem_create(&enc, buf, sizeof buf, XDR_ENCODE);
    ck_assert(xdr_log_batch(&enc, &batch));
    u_int used = xdr_getpos(&enc);

    log_batch out = {0};
    xdrmem_create(&dec, buf, used, XDR_DECODE);
    ck_assert(xdr_log_batch(&dec, &out));
    ck_assert_uint_eq(out.log_batch_len, 2);
    for (int i = 0; i < 2; i++) {
        log_entry *e = &out.log_batch_val[i];
        ck_assert(e->origin == in[i].origin && e->seq == in[i].seq);
        ck_assert_str_eq(e->user, in[i].user);
        ck_assert_str_eq(e->operation, in[i].operation);
        ck_assert_str_eq(e->path, in[i].path);
        ck_assert_str_eq(e->datetime, in[i].datetime);
    }
    xdr_free((xdrproc_t)xdr_log_batch, (char *)&out);

    /* A field over the interface's limit does not encode. */
    char big[300];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    in[0].user = big;
    xdrmem_create(&enc, buf, sizeof buf, XDR_ENCODE);
    ck_assert(!xdr_log_batch(&enc, &batch));
}
END_TEST

START_TEST(line_format)
{
    char line[LOG_LINE_MAX];
    struct log_record r = rec(1, 1, "alice", "PUBLISH", "/home/alice/a.txt");
    size_t n = log_format_line(line, sizeof line, &r);
    ck_assert_str_eq((line[n] = '\0', line), "alice PUBLISH /home/alice/a.txt 17/12/2014 13:20:35\n");

    r = rec(1, 2, "bob", "LIST_USERS", "");
    n = log_format_line(line, sizeof line, &r);
    ck_assert_str_eq((line[n] = '\0', line), "bob LIST_USERS 17/12/2014 13:20:35\n");
    r.path = NULL;
    n = log_format_line(line, sizeof line, &r);
    ck_assert_str_eq((line[n] = '\0', line), "bob LIST_USERS 17/12/2014 13:20:35\n");

    /* Control bytes never break a line; an empty date-time keeps the shape. */
    r = (struct log_record){1, 3, "eve", "REGISTER", NULL, "evil\nbob REGISTER x\r\x7f"};
    n = log_format_line(line, sizeof line, &r);
    ck_assert_str_eq((line[n] = '\0', line), "eve REGISTER evil?bob REGISTER x??\n");
    r.datetime = "";
    n = log_format_line(line, sizeof line, &r);
    ck_assert_str_eq((line[n] = '\0', line), "eve REGISTER -\n");

    /* Fields at their limit fit. */
    char f[257];
    memset(f, 'u', 256);
    f[256] = '\0';
    r = (struct log_record){1, 4, f, "PUBLISH", f, f};
    n = log_format_line(line, sizeof line, &r);
    ck_assert_uint_eq(n, 256 * 3 + strlen("PUBLISH") + 4);
    ck_assert_int_eq(line[n - 1], '\n');
}
END_TEST

START_TEST(append_and_duplicates)
{
    struct logstore *ls = open_store();
    struct log_record b1[] = {rec(9, 1, "a", "REGISTER", NULL), rec(9, 2, "a", "CONNECT", NULL)};
    ck_assert_int_eq(logstore_append(ls, b1, 2, NULL), 0);
    /* The same batch again, then an overlapping one. */
    ck_assert_int_eq(logstore_append(ls, b1, 2, NULL), 0);
    struct log_record b2[] = {rec(9, 2, "a", "CONNECT", NULL), rec(9, 3, "a", "DELETE", "/f"),
                              rec(4, 1, "z", "REGISTER", NULL), rec(9, 3, "a", "DELETE", "/f")};
    ck_assert_int_eq(logstore_append(ls, b2, 4, NULL), 0);
    ck_assert_str_eq(slurp(log_path),
                     "a REGISTER 17/12/2014 13:20:35\n"
                     "a CONNECT 17/12/2014 13:20:35\n"
                     "a DELETE /f 17/12/2014 13:20:35\n"
                     "z REGISTER 17/12/2014 13:20:35\n");
    ck_assert_uint_eq(logstore_written(ls), 4);
    ck_assert_uint_eq(logstore_duplicates(ls), 4);
    ck_assert(logstore_seen(ls, 9, 3));
    ck_assert(!logstore_seen(ls, 9, 4));
    ck_assert(logstore_seen(ls, 4, 1));
    ck_assert(!logstore_seen(ls, 5, 1));
    logstore_close(ls);

    /* Across a restart, the same entries are still known. */
    ls = open_store();
    ck_assert(logstore_seen(ls, 9, 3) && logstore_seen(ls, 4, 1));
    ck_assert_int_eq(logstore_append(ls, b2, 4, NULL), 0);
    ck_assert_uint_eq(logstore_written(ls), 0);
    struct log_record b3[] = {rec(9, 4, "a", "DISCONNECT", NULL)};
    ck_assert_int_eq(logstore_append(ls, b3, 1, NULL), 0);
    ck_assert_uint_eq(logstore_written(ls), 1);
    logstore_close(ls);
    ck_assert_uint_eq(strlen(slurp(log_path)), 31 + 30 + 32 + 31 + 33);
}
END_TEST

/* Commit one entry, (origin, 1) by "a", to a fresh store and close it: the
 * starting point of the crash tests. */
static void commit_first(uint64_t origin)
{
    struct logstore *ls = open_store();
    struct log_record b[] = {rec(origin, 1, "a", "REGISTER", NULL)};
    ck_assert_int_eq(logstore_append(ls, b, 1, NULL), 0);
    logstore_close(ls);
}

START_TEST(torn_last_line_is_cut)
{
    commit_first(1);
    append_raw(log_path, "b REGIS");                  /* a crash mid-write */
    struct logstore *ls = open_store();
    ck_assert_str_eq(slurp(log_path), "a REGISTER 17/12/2014 13:20:35\n");
    struct log_record next[] = {rec(1, 2, "b", "REGISTER", NULL)};
    ck_assert_int_eq(logstore_append(ls, next, 1, NULL), 0);
    logstore_close(ls);
    ck_assert_str_eq(slurp(log_path), "a REGISTER 17/12/2014 13:20:35\n"
                                      "b REGISTER 17/12/2014 13:20:35\n");
}
END_TEST

START_TEST(crash_between_log_and_idx)
{
    commit_first(1);
    /* Lines reached the log but their commit record never did: the sender
     * was not acknowledged and will resend them. */
    append_raw(log_path, "b REGISTER 17/12/2014 13:20:35\nc REGISTER 17/12/2014 13:20:35\n");
    struct logstore *ls = open_store();
    ck_assert_str_eq(slurp(log_path), "a REGISTER 17/12/2014 13:20:35\n");
    ck_assert(!logstore_seen(ls, 1, 2));
    struct log_record resend[] = {rec(1, 1, "a", "REGISTER", NULL),
                                  rec(1, 2, "b", "REGISTER", NULL),
                                  rec(1, 3, "c", "REGISTER", NULL)};
    ck_assert_int_eq(logstore_append(ls, resend, 3, NULL), 0);
    logstore_close(ls);
    ck_assert_str_eq(slurp(log_path), "a REGISTER 17/12/2014 13:20:35\n"
                                      "b REGISTER 17/12/2014 13:20:35\n"
                                      "c REGISTER 17/12/2014 13:20:35\n");
}
END_TEST

START_TEST(torn_idx_record_is_ignored)
{
    commit_first(0xab);
    append_raw(log_path, "b REGISTER 17/12/2014 13:20:35\n");
    append_raw(idx_path, "00000000000000ab 2 6");     /* torn: no newline */
    struct logstore *ls = open_store();
    ck_assert(logstore_seen(ls, 0xab, 1) && !logstore_seen(ls, 0xab, 2));
    ck_assert_str_eq(slurp(log_path), "a REGISTER 17/12/2014 13:20:35\n");
    logstore_close(ls);
    /* The idx was rewritten compactly: one fixed-size record per origin. */
    const char *idx = slurp(idx_path);
    ck_assert_uint_eq(strlen(idx), 2 * LOGSTORE_RECORD_LEN);
    ck_assert(strncmp(idx, "0000000000000000 00000000000000000000 00000000000000000031 ",
                      59) == 0);
    ck_assert(strncmp(idx + LOGSTORE_RECORD_LEN,
                      "00000000000000ab 00000000000000000001 00000000000000000031 ", 59) == 0);
}
END_TEST

/* The idx's records, as they are now (for replaying them later). */
static char *copy_idx(void)
{
    return strdup(slurp(idx_path));
}

START_TEST(fragment_glued_before_a_record_hides_nothing)
{
    commit_first(7);
    /* A record torn by a full disk, then the next one glued to it. */
    append_raw(idx_path, "00000000000000");
    struct logstore *ls = open_store();
    struct log_record c[] = {rec(7, 2, "b", "REGISTER", NULL)};
    ck_assert_int_eq(logstore_append(ls, c, 1, NULL), 0);
    logstore_close(ls);
    char *idx = copy_idx();
    append_raw(idx_path, "00000000000000");
    append_raw(idx_path, idx + strlen(idx) - LOGSTORE_RECORD_LEN);  /* glued */
    free(idx);
    ls = open_store();
    ck_assert(logstore_seen(ls, 7, 2));
    ck_assert_str_eq(slurp(log_path), "a REGISTER 17/12/2014 13:20:35\n"
                                      "b REGISTER 17/12/2014 13:20:35\n");
    logstore_close(ls);
}
END_TEST

START_TEST(forged_records_cannot_empty_the_log)
{
    struct logstore *ls = open_store();
    struct log_record b[] = {rec(7, 1, "a", "REGISTER", NULL)};
    ck_assert_int_eq(logstore_append(ls, b, 1, NULL), 0);
    char *early = copy_idx();               /* a valid record with an end of 0 */
    struct log_record c[] = {rec(7, 2, "b", "REGISTER", NULL)};
    ck_assert_int_eq(logstore_append(ls, c, 1, NULL), 0);
    logstore_close(ls);
    append_raw(idx_path, "0000000000000000 0 0\n");      /* the old format */
    append_raw(idx_path, early);                          /* stale records */
    free(early);
    ls = open_store();
    logstore_close(ls);
    ck_assert_str_eq(slurp(log_path), "a REGISTER 17/12/2014 13:20:35\n"
                                      "b REGISTER 17/12/2014 13:20:35\n");
    /* An idx of garbage only, or one from a longer log: not trusted. */
    FILE *f = fopen(idx_path, "w");
    fputs("garbage\n0000000000000000 0 0\n", f);
    fclose(f);
    ls = open_store();
    logstore_close(ls);
    ck_assert_uint_eq(strlen(slurp(log_path)), 62);
}
END_TEST

START_TEST(sequence_jumps_are_refused)
{
    struct logstore *ls = open_store();
    struct log_record b[] = {rec(3, 1, "a", "REGISTER", NULL), rec(3, 2, "a", "CONNECT", NULL)};
    ck_assert_int_eq(logstore_append(ls, b, 2, NULL), 0);
    /* A jump (even after a valid entry in the same batch) refuses the batch. */
    struct log_record jump[] = {rec(3, 3, "a", "DELETE", "/f"),
                                rec(3, UINT64_MAX, "x", "REGISTER", NULL)};
    ck_assert_int_eq(logstore_append(ls, jump, 2, NULL), LOGSTORE_REFUSED);
    ck_assert_ptr_nonnull(strstr(logstore_error(ls), "jumps"));
    struct log_record zero[] = {rec(0, 1, "x", "REGISTER", NULL)};
    ck_assert_int_eq(logstore_append(ls, zero, 1, NULL), LOGSTORE_REFUSED);
    struct log_record zseq[] = {rec(4, 0, "x", "REGISTER", NULL)};
    ck_assert_int_eq(logstore_append(ls, zseq, 1, NULL), LOGSTORE_REFUSED);
    /* Nothing of them was written; the origin continues where it was. */
    struct log_record next[] = {rec(3, 3, "a", "DELETE", "/f")};
    ck_assert_int_eq(logstore_append(ls, next, 1, NULL), 0);
    ck_assert_uint_eq(logstore_written(ls), 3);
    /* A new origin starts where its first entry says. */
    struct log_record fresh[] = {rec(9, 500, "n", "REGISTER", NULL)};
    ck_assert_int_eq(logstore_append(ls, fresh, 1, NULL), 0);
    logstore_close(ls);
    ck_assert_str_eq(slurp(log_path), "a REGISTER 17/12/2014 13:20:35\n"
                                      "a CONNECT 17/12/2014 13:20:35\n"
                                      "a DELETE /f 17/12/2014 13:20:35\n"
                                      "n REGISTER 17/12/2014 13:20:35\n");
}
END_TEST

START_TEST(an_accepted_gap_is_one_marked_line_once)
{
    struct logstore *ls = open_store();
    struct log_record b[] = {rec(3, 1, "a", "REGISTER", NULL), rec(5, 1, "e", "REGISTER", NULL)};
    ck_assert_int_eq(logstore_append(ls, b, 2, NULL), 0);
    logstore_accept_gap(ls, 3);
    /* Another origin's jump is refused as before, and spends nothing. */
    struct log_record other[] = {rec(5, 9, "e", "DELETE", "/f")};
    ck_assert_int_eq(logstore_append(ls, other, 1, NULL), LOGSTORE_REFUSED);
    ck_assert_uint_eq(logstore_jump_origin(ls), 5);
    ck_assert_uint_eq(logstore_gap_pending(ls), 3);
    /* Origin 3's jump from 1 to 7: one LOG_GAP line for 2-6, then the entry. */
    struct log_record jump[] = {rec(3, 7, "a", "CONNECT", NULL), rec(3, 8, "a", "DELETE", "/g")};
    ck_assert_int_eq(logstore_append(ls, jump, 2, NULL), 0);
    ck_assert_uint_eq(logstore_gap_pending(ls), 0);
    uint64_t first, last;
    logstore_gap_taken(ls, &first, &last);
    ck_assert_uint_eq(first, 2);
    ck_assert_uint_eq(last, 6);
    ck_assert(logstore_seen(ls, 3, 8));
    /* Spent: a second jump is refused. */
    struct log_record again[] = {rec(3, 20, "a", "REGISTER", NULL)};
    ck_assert_int_eq(logstore_append(ls, again, 1, NULL), LOGSTORE_REFUSED);
    logstore_close(ls);
    const char *text = slurp(log_path);
    const char *gap = strstr(text, "- LOG_GAP 0000000000000003:2-6 ");
    ck_assert_ptr_nonnull(gap);
    ck_assert_int_eq(strncmp(text, "a REGISTER 17/12/2014 13:20:35\n"
                                   "e REGISTER 17/12/2014 13:20:35\n- LOG_GAP", 71), 0);
    ck_assert_str_eq(strchr(gap, '\n') + 1, "a CONNECT 17/12/2014 13:20:35\n"
                                            "a DELETE /g 17/12/2014 13:20:35\n");
    /* A reopened store knows origin 3 at 8. */
    ls = open_store();
    ck_assert(logstore_seen(ls, 3, 8) && !logstore_seen(ls, 3, 9));
    logstore_close(ls);
}
END_TEST

START_TEST(origins_are_bounded)
{
    struct logstore *ls = open_store();
    static struct log_record b[4096];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 4096; i++)
            b[i] = rec((uint64_t)round * 4096 + (uint64_t)i + 1, 1, "u", "REGISTER", NULL);
        ck_assert_int_eq(logstore_append(ls, b, 4096, NULL), 0);
        ck_assert_uint_le(logstore_origins(ls), LOGSTORE_ORIGINS_MAX);
    }
    /* The most recent are kept; the idx stays near its compact size. */
    ck_assert(logstore_seen(ls, 3 * 4096, 1));
    ck_assert(!logstore_seen(ls, 1, 1));
    logstore_close(ls);
    struct stat st;
    ck_assert_int_eq(stat(idx_path, &st), 0);
    ck_assert_int_le(st.st_size, (LOGSTORE_ORIGINS_MAX + 1) * LOGSTORE_RECORD_LEN);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    ck_assert_int_eq(stat(log_path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
}
END_TEST

START_TEST(rotation_keeps_duplicate_state)
{
    struct logstore *ls = open_store();
    struct log_record b[] = {rec(5, 1, "a", "REGISTER", NULL)};
    ck_assert_int_eq(logstore_append(ls, b, 1, NULL), 0);
    char moved[128], err[256];
    snprintf(moved, sizeof moved, "%s.1", log_path);
    ck_assert_int_eq(rename(log_path, moved), 0);
    ck_assert_int_eq(logstore_reopen(ls, err, sizeof err), 0);
    ck_assert_int_eq(logstore_append(ls, b, 1, NULL), 0);    /* a resend */
    struct log_record next[] = {rec(5, 2, "a", "CONNECT", NULL)};
    ck_assert_int_eq(logstore_append(ls, next, 1, NULL), 0);
    logstore_close(ls);
    ck_assert_str_eq(slurp(moved), "a REGISTER 17/12/2014 13:20:35\n");
    ck_assert_str_eq(slurp(log_path), "a CONNECT 17/12/2014 13:20:35\n");
    /* And after a restart on the new file. */
    ls = open_store();
    ck_assert(logstore_seen(ls, 5, 2));
    logstore_close(ls);
}
END_TEST

START_TEST(crash_before_the_first_commit)
{
    struct logstore *ls = open_store();     /* a fresh, empty log */
    logstore_close(ls);
    append_raw(log_path, "a REGISTER 17/12/2014 13:20:35\n");   /* never committed */
    ls = open_store();
    ck_assert_str_eq(slurp(log_path), "");
    logstore_close(ls);
}
END_TEST

START_TEST(log_without_idx_is_kept)
{
    append_raw(log_path, "old REGISTER 01/01/2000 00:00:00\nhalf a li");
    struct logstore *ls = open_store();
    logstore_close(ls);
    ck_assert_str_eq(slurp(log_path), "old REGISTER 01/01/2000 00:00:00\n");
}
END_TEST

START_TEST(unwritable_path_fails_cleanly)
{
    char err[256];
    ck_assert_ptr_null(logstore_open("/nonexistent-dir/x.log", err, sizeof err));
    ck_assert_ptr_nonnull(strstr(err, "cannot open"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("logstore");
    TCase *tc = tcase_create("store");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, xdr_round_trip);
    tcase_add_test(tc, line_format);
    tcase_add_test(tc, append_and_duplicates);
    tcase_add_test(tc, torn_last_line_is_cut);
    tcase_add_test(tc, crash_between_log_and_idx);
    tcase_add_test(tc, torn_idx_record_is_ignored);
    tcase_add_test(tc, fragment_glued_before_a_record_hides_nothing);
    tcase_add_test(tc, forged_records_cannot_empty_the_log);
    tcase_add_test(tc, sequence_jumps_are_refused);
    tcase_add_test(tc, an_accepted_gap_is_one_marked_line_once);
    tcase_add_test(tc, origins_are_bounded);
    tcase_add_test(tc, rotation_keeps_duplicate_state);
    tcase_add_test(tc, crash_before_the_first_commit);
    tcase_add_test(tc, log_without_idx_is_kept);
    tcase_add_test(tc, unwritable_path_fails_cleanly);
    suite_add_tcase(s, tc);

    return run_suite(s);
}
