/*
 * fuzz_logstore.c - libFuzzer target for the log store: line formatting,
 * duplicate detection, and recovery of a log with garbage after its end.
 *
 * The input is a script.  Byte 0 is how many garbage bytes (from the end of
 * the input) to append to the log before reopening it.  The rest is split
 * into records at '\n': a record's first byte picks one of four origins,
 * its second byte is a sequence number, and the remaining bytes, split at
 * NUL, are user, operation, path and date-time (missing ones are NULL).
 * Records are appended in batches of up to three.  Checks:
 *  - every formatted line is one line: it ends in '\n', contains no other
 *    byte below 0x20 nor 0x7f, fits LOG_LINE_MAX, and has at least three
 *    space-separated words (user, operation, date-time);
 *  - a (origin, seq) is written only if seq is above that origin's highest
 *    so far, and a batch in which an origin's new entries do not continue
 *    its sequence one by one (or with seq 0) is refused whole: the log has
 *    exactly the lines a simple model predicts;
 *  - after garbage is appended and the store reopened, the log is exactly
 *    what was committed, and every committed (origin, seq) is still known.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "logstore.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                        \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "fuzz_logstore: check failed: %s (line %d)\n", \
                    #cond, __LINE__);                                      \
            abort();                                                       \
        }                                                                  \
    } while (0)

#define MAX_RECORDS 64

static char dir[PATH_MAX], log_path[PATH_MAX + 16], idx_path[PATH_MAX + 16];

/* At exit: remove the scratch directory and what the store left in it. */
static void remove_dir(void)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            unlinkat(dirfd(d), e->d_name, 0);
    closedir(d);
    rmdir(dir);
}

/* A scratch directory for the whole run ($TMPDIR or /tmp), made once and
 * removed at exit, so a run leaves nothing behind. */
static void make_paths(void)
{
    if (log_path[0])
        return;
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/peerdex-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    CHECK(mkdtemp(dir) != NULL);
    CHECK(atexit(remove_dir) == 0);
    snprintf(log_path, sizeof log_path, "%s/ops.log", dir);
    snprintf(idx_path, sizeof idx_path, "%s/ops.log.idx", dir);
}

/* The whole log file into buf (NUL-terminated); returns its length. */
static size_t read_log(char *buf, size_t cap)
{
    int fd = open(log_path, O_RDONLY);
    CHECK(fd >= 0);
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    CHECK(n >= 0);
    buf[n] = '\0';
    return (size_t)n;
}

/* One formatted line obeys the line rules. */
static void check_line(const char *line, size_t n)
{
    CHECK(n >= 6 && n <= LOG_LINE_MAX && line[n - 1] == '\n');
    int spaces = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        unsigned char c = (unsigned char)line[i];
        CHECK(c >= 0x20 && c != 0x7f);
        spaces += c == ' ';
    }
    CHECK(spaces >= 2);
}

/* Split one record's bytes (copied into a NUL-terminated buffer). */
static struct log_record parse_record(char *rec, size_t len, char **strings)
{
    struct log_record r = {.origin = (uint64_t)(unsigned char)rec[0] % 4 + 1,
                           .seq = len > 1 ? (unsigned char)rec[1] : 0};
    const char **fields[] = {&r.user, &r.operation, &r.path, &r.datetime};
    size_t pos = 2;
    for (int f = 0; f < 4 && pos < len; f++) {
        *fields[f] = rec + pos;
        pos += strlen(rec + pos) + 1;
    }
    *strings = rec;
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    make_paths();
    unlink(log_path);
    unlink(idx_path);

    size_t garbage = data[0] % 64;
    if (garbage > size - 1)
        garbage = size - 1;
    const uint8_t *script = data + 1;
    size_t script_len = size - 1 - garbage;

    /* Records, each copied and NUL-terminated. */
    struct log_record recs[MAX_RECORDS];
    char *owned[MAX_RECORDS];
    size_t n = 0, start = 0;
    for (size_t i = 0; i <= script_len && n < MAX_RECORDS; i++) {
        if (i < script_len && script[i] != '\n')
            continue;
        size_t len = i - start;
        char *copy = calloc(1, len + 2);
        CHECK(copy != NULL);
        memcpy(copy, script + start, len);
        recs[n] = parse_record(copy, len, &owned[n]);
        n++;
        start = i + 1;
    }

    char err[256];
    struct logstore *ls = logstore_open(log_path, err, sizeof err);
    CHECK(ls != NULL);

    /* The model: highest seq per origin (known[] once one was written),
     * and the lines it expects. */
    uint64_t high[5] = {0};
    bool known[5] = {false};
    static char expect[MAX_RECORDS * LOG_LINE_MAX + 1];
    size_t expect_len = 0;
    for (size_t i = 0; i < n; i += 3) {
        size_t batch = n - i < 3 ? n - i : 3;
        uint64_t last[5];
        bool seen[5];
        memcpy(last, high, sizeof last);
        memcpy(seen, known, sizeof seen);
        size_t start_len = expect_len;
        bool refused = false;
        for (size_t k = i; k < i + batch; k++) {
            char line[LOG_LINE_MAX];
            size_t len = log_format_line(line, sizeof line, &recs[k]);
            check_line(line, len);
            uint64_t o = recs[k].origin, seq = recs[k].seq;
            if (seq == 0) {
                refused = true;
                continue;
            }
            if (!seen[o]) {
                seen[o] = true;
                last[o] = seq - 1;          /* a new origin starts where it says */
            }
            if (seq <= last[o])
                continue;                   /* a duplicate */
            if (seq != last[o] + 1) {
                refused = true;
                continue;
            }
            last[o] = seq;
            memcpy(expect + expect_len, line, len);
            expect_len += len;
        }
        if (refused) {
            expect_len = start_len;
            CHECK(logstore_append(ls, recs + i, batch, NULL) == LOGSTORE_REFUSED);
        } else {
            memcpy(high, last, sizeof high);
            memcpy(known, seen, sizeof known);
            CHECK(logstore_append(ls, recs + i, batch, NULL) == 0);
        }
    }
    logstore_close(ls);

    static char got[MAX_RECORDS * LOG_LINE_MAX + 128];
    CHECK(read_log(got, sizeof got) == expect_len);
    CHECK(memcmp(got, expect, expect_len) == 0);

    /* Garbage after the committed end, as a crash mid-write leaves it. */
    int fd = open(log_path, O_WRONLY | O_APPEND);
    CHECK(fd >= 0);
    CHECK(write(fd, data + size - garbage, garbage) == (ssize_t)garbage);
    close(fd);
    ls = logstore_open(log_path, err, sizeof err);
    CHECK(ls != NULL);
    for (uint64_t o = 1; o <= 4; o++)
        CHECK(!known[o] || logstore_seen(ls, o, high[o]));
    logstore_close(ls);
    CHECK(read_log(got, sizeof got) == expect_len);
    CHECK(memcmp(got, expect, expect_len) == 0);

    for (size_t i = 0; i < n; i++)
        free(owned[i]);
    return 0;
}
