/* test_console.c - the console thread: lines whole and in order, from many
 * threads at once, long lines, direct writes with no writer, and a stdout
 * that does not drain (no one waits; dropped lines are counted). */
#define _GNU_SOURCE
#include <check.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "console.h"
#include "unit.h"

/* Point stdout at a fresh temporary file; returns a descriptor to read it. */
static int capture_stdout(void)
{
    char path[] = "/tmp/peerdex-console-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    unlink(path);
    ck_assert_int_eq(dup2(fd, STDOUT_FILENO), STDOUT_FILENO);
    return fd;
}

/* Everything written to the captured stdout so far (NUL-terminated). */
static char *captured(int fd, size_t *len)
{
    off_t size = lseek(fd, 0, SEEK_END);
    char *buf = malloc((size_t)size + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_int_eq(pread(fd, buf, (size_t)size, 0), size);
    buf[size] = '\0';
    *len = (size_t)size;
    return buf;
}

/* console_escape(): plain text unchanged; controls, C1, bidi and bad UTF-8
 * escaped; a short buffer cut at a character boundary. */
START_TEST(escape_shows_invisible_characters)
{
    char out[CONSOLE_ESCAPED_MAX(64)];
    static const struct { const char *in, *want; } cases[] = {
        {"alice", "alice"},
        {"caf\xc3\xa9_\xe6\x97\xa5\xf0\x9f\x98\x80", "caf\xc3\xa9_\xe6\x97\xa5\xf0\x9f\x98\x80"},
        {"/home/evil/\xe2\x80\xae" "fdp.exe", "/home/evil/\\u202efdp.exe"},
        {"a\xc2\x9b" "b", "a\\u009bb"},
        {"x\x1b[2Jy\x7f", "x\\u001b[2Jy\\u007f"},
        {"\xe2\x81\xa6z\xef\xbb\xbf", "\\u2066z\\ufeff"},
        {"bad\xff\xc3(\xed\xa0\x80", "bad\\xff\\xc3(\\xed\\xa0\\x80"},
        {"\xc0\xaf", "\\xc0\\xaf"},                 /* overlong '/' */
        {"", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        ck_assert_str_eq(console_escape(cases[i].in, out, sizeof out), cases[i].want);
    char small[8];
    ck_assert_str_eq(console_escape("ab\xc2\x9b" "cd", small, sizeof small), "ab");
    ck_assert_str_eq(console_escape("abcdefghij", small, sizeof small), "abcdefg");
    /* The worst case fits the documented size: 64 bytes that are not UTF-8. */
    char worst[65];
    memset(worst, 0xff, 64);
    worst[64] = '\0';
    ck_assert_uint_eq(strlen(console_escape(worst, out, sizeof out)), 4 * 64);
}
END_TEST

START_TEST(lines_keep_their_order)
{
    int fd = capture_stdout();
    ck_assert_int_eq(console_start(0), 0);
    for (int i = 0; i < 1000; i++)
        console_printf("s> OPERATION REGISTER FROM user%d\n", i);
    console_stop();
    size_t len;
    char *out = captured(fd, &len), *at = out;
    for (int i = 0; i < 1000; i++) {
        char want[64];
        int n = snprintf(want, sizeof want, "s> OPERATION REGISTER FROM user%d\n", i);
        ck_assert_int_eq(strncmp(at, want, (size_t)n), 0);
        at += n;
    }
    ck_assert_uint_eq((size_t)(at - out), len);
    free(out);
}
END_TEST

#define WRITERS 8
#define PER_WRITER 2000

static const long writer_ids[WRITERS] = {0, 1, 2, 3, 4, 5, 6, 7};

static void *write_lines(void *arg)
{
    long id = *(const long *)arg;
    for (int i = 0; i < PER_WRITER; i++)
        console_printf("writer %ld line %d\n", id, i);
    return NULL;
}

/* A decimal number at *s, which is left after it; false if there is none. */
static bool number_at(const char **s, long *out)
{
    char *end;
    *out = strtol(*s, &end, 10);
    bool ok = end != *s;
    *s = end;
    return ok;
}

/* Parse exactly "writer ID line N" (a whole line, newline removed). */
static bool parse_line(const char *line, long *id, long *n)
{
    if (strncmp(line, "writer ", 7) != 0)
        return false;
    line += 7;
    if (!number_at(&line, id) || strncmp(line, " line ", 6) != 0)
        return false;
    line += 6;
    return number_at(&line, n) && *line == '\0';
}

/* Lines of 8 threads at once: each whole, each thread's in its order. */
START_TEST(concurrent_lines_are_whole)
{
    int fd = capture_stdout();
    ck_assert_int_eq(console_start(0), 0);
    pthread_t t[WRITERS];
    for (long i = 0; i < WRITERS; i++)
        pthread_create(&t[i], NULL, write_lines, (void *)&writer_ids[i]);
    for (int i = 0; i < WRITERS; i++)
        pthread_join(t[i], NULL);
    console_stop();
    size_t len;
    char *out = captured(fd, &len);
    int next[WRITERS] = {0}, lines = 0;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        long id, n;
        ck_assert(parse_line(line, &id, &n));
        ck_assert(id >= 0 && id < WRITERS);
        ck_assert_int_eq(n, next[id]);
        next[id]++;
        lines++;
    }
    ck_assert_int_eq(lines, WRITERS * PER_WRITER);
    free(out);
}
END_TEST

/* A line longer than the stack buffer, and one longer than the whole
 * pending buffer, both come out whole and in place. */
START_TEST(long_lines_are_not_cut)
{
    int fd = capture_stdout();
    size_t sizes[] = {600, (1 << 20) + 10};
    ck_assert_int_eq(console_start(0), 0);
    console_printf("first\n");
    for (size_t k = 0; k < 2; k++) {
        char *s = malloc(sizes[k] + 1);
        memset(s, 'a' + (int)k, sizes[k]);
        s[sizes[k]] = '\0';
        console_printf("%s\n", s);
        free(s);
    }
    console_stop();
    size_t len;
    char *out = captured(fd, &len);
    ck_assert_uint_eq(len, 6 + sizes[0] + 1 + sizes[1] + 1);
    ck_assert_int_eq(strncmp(out, "first\n", 6), 0);
    ck_assert_int_eq(out[6], 'a');
    ck_assert_int_eq(out[6 + sizes[0]], '\n');
    ck_assert_int_eq(out[6 + sizes[0] + 1], 'b');
    ck_assert_int_eq(out[len - 1], '\n');
    free(out);
}
END_TEST

/* Without a writer (before start, after stop) a line is written at once. */
START_TEST(without_writer_lines_go_out_directly)
{
    int fd = capture_stdout();
    size_t len;
    console_printf("before\n");
    char *out = captured(fd, &len);
    ck_assert_str_eq(out, "before\n");
    free(out);
    ck_assert_int_eq(console_start(0), 0);
    console_stop();
    console_printf("after\n");
    out = captured(fd, &len);
    ck_assert_str_eq(out, "before\nafter\n");
    free(out);
}
END_TEST

static void *write_many(void *arg)
{
    (void)arg;
    for (int i = 0; i < 20000; i++)     /* 880 kB: far past both 16 KiB buffers */
        console_printf("line %08d of a stdout that nobody reads\n", i);
    return NULL;
}

/* Stop the console, then close the pipe on stdout, so that its reader
 * sees the end of what the console wrote. */
static void *stop_and_close_stdout(void *arg)
{
    (void)arg;
    console_stop();
    int null = open("/dev/null", O_WRONLY);
    dup2(null, STDOUT_FILENO);
    close(null);
    return NULL;
}

/* stdout is a pipe nobody reads: the writer of lines never waits (lines
 * that find the buffer full are dropped); once the pipe is read, the lines
 * kept arrive whole and in order, followed by one line counting the others.
 * The pipe and the console's buffer are small (16 KiB each), so the lines
 * overflow both many times over with little work; the time bounds only
 * catch a writer blocked for good (nobody reads before the join), so they
 * are generous enough for a machine with a load average of 40. */
START_TEST(slow_stdout_drops_lines_and_counts_them)
{
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_ge(fcntl(p[1], F_SETPIPE_SZ, 16384), 16384);
    ck_assert_int_eq(dup2(p[1], STDOUT_FILENO), STDOUT_FILENO);
    close(p[1]);
    ck_assert_int_eq(console_start(16384), 0);
    pthread_t t;
    pthread_create(&t, NULL, write_many, NULL);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 60;
    ck_assert_int_eq(pthread_timedjoin_np(t, NULL, &until), 0);    /* never blocked */
    console_printf("last\n");

    /* Stop the console (it writes what it holds, then the count) while
     * this thread reads the pipe to its end: every kept line in order,
     * "last", and the count of the others. */
    pthread_t stopper;
    pthread_create(&stopper, NULL, stop_and_close_stdout, NULL);
    static char out[2 << 20];
    size_t len = 0;
    struct pollfd pfd = {.fd = p[0], .events = POLLIN};
    while (len < sizeof out - 1 && poll(&pfd, 1, 60000) == 1) {
        ssize_t n = read(p[0], out + len, sizeof out - 1 - len);
        if (n <= 0)
            break;                      /* the end: stdout closed after the stop */
        len += (size_t)n;
    }
    out[len] = '\0';
    ck_assert_int_eq(pthread_join(stopper, NULL), 0);
    unsigned long long kept = 0, dropped = 0;
    long prev = -1;
    bool last = false;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        long n;
        unsigned long long d;
        if (sscanf(line, "line %ld of a stdout that nobody reads", &n) == 1) {
            ck_assert_int_gt(n, prev);
            prev = n;
            kept++;
        } else if (sscanf(line, "console: %llu lines dropped", &d) == 1) {
            dropped += d;
        } else {
            ck_assert_str_eq(line, "last");
            last = true;
        }
    }
    ck_assert(last);
    ck_assert_uint_gt(dropped, 0);
    ck_assert_uint_eq(kept + dropped, 20000);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("console");
    TCase *tc = tcase_create("console");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, escape_shows_invisible_characters);
    tcase_add_test(tc, lines_keep_their_order);
    tcase_add_test(tc, concurrent_lines_are_whole);
    tcase_add_test(tc, long_lines_are_not_cut);
    tcase_add_test(tc, without_writer_lines_go_out_directly);
    suite_add_tcase(s, tc);
    /* Its own case: its bounds (above) are longer than the others'. */
    TCase *slow = tcase_create("slow stdout");
    tcase_set_timeout(slow, 150);
    tcase_add_test(slow, slow_stdout_drops_lines_and_counts_them);
    suite_add_tcase(s, slow);
    return run_suite(s);
}
