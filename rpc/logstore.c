/* logstore.c - the operation log file with exactly-once commits; see logstore.h. */
#include "logstore.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uthash.h>

/* The last committed sequence number of one origin. */
struct origin {
    uint64_t origin;
    uint64_t seq;
    UT_hash_handle hh;
};

struct logstore {
    char *path;             /* the log file */
    char *idx_path;         /* path + ".idx" */
    int log_fd;
    int idx_fd;
    off_t committed;        /* the log is committed up to here */
    struct origin *origins; /* uthash by origin */
    uint64_t written;
    uint64_t duplicates;
};

/* Copy one field into the line, at most max bytes, control bytes as '?';
 * an empty field is '-'.  Returns the bytes written. */
static size_t put_field(char *out, const char *s, size_t max)
{
    size_t n = 0;
    if (s == NULL || *s == '\0') {
        out[0] = '-';
        return 1;
    }
    for (; n < max && s[n]; n++) {
        unsigned char c = (unsigned char)s[n];
        out[n] = (char)((c < 0x20 || c == 0x7f) ? '?' : c);
    }
    return n;
}

size_t log_format_line(char *buf, size_t cap, const struct log_record *r)
{
    char line[LOG_LINE_MAX];
    size_t len = put_field(line, r->user, 256);
    line[len++] = ' ';
    len += put_field(line + len, r->operation, 31);
    line[len++] = ' ';
    if (r->path && *r->path) {
        len += put_field(line + len, r->path, 256);
        line[len++] = ' ';
    }
    len += put_field(line + len, r->datetime, 256);
    line[len++] = '\n';
    if (len > cap)
        len = cap;
    memcpy(buf, line, len);
    return len;
}

/* Write all of buf at the file's end (O_APPEND); -1 on error. */
static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static struct origin *find_origin(const struct logstore *ls, uint64_t origin)
{
    struct origin *o;
    HASH_FIND(hh, ls->origins, &origin, sizeof origin, o);
    return o;
}

/* Raise an origin's committed seq (adding the origin); -1 if out of memory. */
static int commit_seq(struct logstore *ls, uint64_t origin, uint64_t seq)
{
    struct origin *o = find_origin(ls, origin);
    if (o == NULL) {
        o = calloc(1, sizeof *o);
        if (o == NULL)
            return -1;
        o->origin = origin;
        HASH_ADD(hh, ls->origins, origin, sizeof o->origin, o);
    }
    if (seq > o->seq)
        o->seq = seq;
    return 0;
}

/*
 * Rewrite the idx from memory: one record per origin at the committed end,
 * through a temporary file and rename, so a crash leaves the old or the new.
 */
static int rewrite_idx(struct logstore *ls)
{
    size_t n = strlen(ls->idx_path) + 8;
    char *tmp = malloc(n);
    if (tmp == NULL)
        return -1;
    snprintf(tmp, n, "%s.tmp", ls->idx_path);
    FILE *f = fopen(tmp, "w");
    int rc = -1;
    if (f != NULL) {
        /* Origin 0 (never a sender's) records the committed end even when
         * nothing has been written yet. */
        fprintf(f, "%016x 0 %lld\n", 0, (long long)ls->committed);
        struct origin *o, *t;
        HASH_ITER(hh, ls->origins, o, t)
            fprintf(f, "%016" PRIx64 " %" PRIu64 " %lld\n", o->origin, o->seq,
                    (long long)ls->committed);
        if (fflush(f) == 0 && fdatasync(fileno(f)) == 0)
            rc = 0;
        if (fclose(f) != 0)
            rc = -1;
    }
    if (rc == 0 && rename(tmp, ls->idx_path) != 0)
        rc = -1;
    if (rc != 0) {
        unlink(tmp);
    } else {
        /* Make the rename itself durable. */
        char *dir = strdup(ls->idx_path);
        int dfd = dir ? open(dirname(dir), O_RDONLY | O_DIRECTORY) : -1;
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
        free(dir);
    }
    free(tmp);
    if (rc == 0) {
        if (ls->idx_fd >= 0)
            close(ls->idx_fd);
        ls->idx_fd = open(ls->idx_path, O_WRONLY | O_APPEND | O_CLOEXEC);
        if (ls->idx_fd < 0)
            rc = -1;
    }
    return rc;
}

/* One number of a record: digits in `base`, then a space or the end. */
static bool parse_number(const char **s, int base, char end, uint64_t *v)
{
    char *stop;
    if (!isxdigit((unsigned char)**s))
        return false;
    errno = 0;
    unsigned long long x = strtoull(*s, &stop, base);
    if (errno != 0 || *stop != end)
        return false;
    *v = x;
    *s = stop + (end != '\0');
    return true;
}

/* A commit record: "<origin hex> <seq> <end offset>", nothing else. */
static bool parse_record(const char *line, uint64_t *origin, uint64_t *seq, uint64_t *off)
{
    return parse_number(&line, 16, ' ', origin) && parse_number(&line, 10, ' ', seq) &&
           parse_number(&line, 10, '\0', off);
}

/*
 * Read the commit records: every origin's last seq, and the end offset of
 * the last complete record (-1 when there is none).  A torn last line (no
 * newline) or a malformed one is ignored.
 */
static off_t read_idx(struct logstore *ls)
{
    off_t end = -1;
    FILE *f = fopen(ls->idx_path, "r");
    if (f == NULL)
        return -1;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        uint64_t origin, seq, off;
        if (line[n - 1] != '\n')
            break;
        line[n - 1] = '\0';
        if (!parse_record(line, &origin, &seq, &off) || off > (uint64_t)INT64_MAX)
            continue;
        if (origin == 0 || commit_seq(ls, origin, seq) == 0)
            end = (off_t)off;
    }
    free(line);
    fclose(f);
    return end;
}

/*
 * Find where the committed part of the log ends: the idx's offset when it is
 * within the file; then back to the last newline, so a torn line goes too.
 */
static off_t committed_end(int fd, off_t idx_end)
{
    off_t size = lseek(fd, 0, SEEK_END);
    off_t end = (idx_end >= 0 && idx_end <= size) ? idx_end : size;
    char c;
    while (end > 0 && (pread(fd, &c, 1, end - 1) != 1 || c != '\n'))
        end--;
    return end;
}

/* Open the log file by path and cut it to its committed end. */
static int open_log(struct logstore *ls, off_t idx_end, char *err, size_t errlen)
{
    ls->log_fd = open(ls->path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (ls->log_fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", ls->path, strerror(errno));
        return -1;
    }
    ls->committed = committed_end(ls->log_fd, idx_end);
    if (ftruncate(ls->log_fd, ls->committed) != 0 || fdatasync(ls->log_fd) != 0) {
        snprintf(err, errlen, "cannot recover %s: %s", ls->path, strerror(errno));
        return -1;
    }
    if (rewrite_idx(ls) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", ls->idx_path, strerror(errno));
        return -1;
    }
    return 0;
}

struct logstore *logstore_open(const char *path, char *err, size_t errlen)
{
    struct logstore *ls = calloc(1, sizeof *ls);
    size_t n = strlen(path) + 5;
    if (ls != NULL)
        ls->log_fd = ls->idx_fd = -1;
    if (ls == NULL || (ls->path = strdup(path)) == NULL || (ls->idx_path = malloc(n)) == NULL) {
        snprintf(err, errlen, "out of memory");
        logstore_close(ls);
        return NULL;
    }
    snprintf(ls->idx_path, n, "%s.idx", path);
    if (open_log(ls, read_idx(ls), err, errlen) != 0) {
        logstore_close(ls);
        return NULL;
    }
    return ls;
}

int logstore_reopen(struct logstore *ls, char *err, size_t errlen)
{
    close(ls->log_fd);
    return open_log(ls, -1, err, errlen);
}

int logstore_append(struct logstore *ls, const struct log_record *recs,
                    size_t n, FILE *echo)
{
    if (n == 0)
        return 0;
    char *text = malloc(n * LOG_LINE_MAX);
    uint64_t (*pend)[2] = calloc(n, sizeof *pend);   /* origin, highest seq */
    size_t npend = 0, len = 0, fresh = 0, dups = 0;
    int rc = -1;
    if (text == NULL || pend == NULL)
        goto out;

    for (size_t i = 0; i < n; i++) {
        const struct log_record *r = &recs[i];
        const struct origin *o = find_origin(ls, r->origin);
        /* This origin's slot among the batch's pending ones (k == npend: none). */
        size_t k = 0;
        while (k < npend && pend[k][0] != r->origin)
            k++;
        uint64_t last = k < npend ? pend[k][1] : 0;
        if ((o && r->seq <= o->seq) || r->seq <= last) {
            dups++;
            continue;
        }
        if (k == npend) {
            /* Create the origin now, so committing cannot fail later. */
            if (commit_seq(ls, r->origin, 0) != 0)
                goto out;
            pend[npend++][0] = r->origin;
        }
        pend[k][1] = r->seq;
        len += log_format_line(text + len, LOG_LINE_MAX, r);
        fresh++;
    }

    if (len > 0) {
        if (write_all(ls->log_fd, text, len) != 0 || fdatasync(ls->log_fd) != 0)
            goto undo;
        off_t end = ls->committed + (off_t)len;
        char rec[96];
        size_t rlen = 0;
        char *recbuf = malloc(npend * sizeof rec);
        if (recbuf == NULL)
            goto undo;
        for (size_t k = 0; k < npend; k++)
            rlen += (size_t)snprintf(recbuf + rlen, sizeof rec, "%016" PRIx64 " %" PRIu64
                                     " %lld\n", pend[k][0], pend[k][1], (long long)end);
        int ok = write_all(ls->idx_fd, recbuf, rlen) == 0 && fdatasync(ls->idx_fd) == 0;
        free(recbuf);
        if (!ok) {
            /* The idx may now end in a torn record: rewrite it whole. */
            rewrite_idx(ls);
            goto undo;
        }
        for (size_t k = 0; k < npend; k++)
            commit_seq(ls, pend[k][0], pend[k][1]);     /* exists: cannot fail */
        ls->committed = end;
        if (echo) {
            fwrite(text, 1, len, echo);
            fflush(echo);
        }
    }
    ls->written += fresh;
    ls->duplicates += dups;
    rc = 0;
    goto out;
undo:
    /* Cut the uncommitted tail so the file stays what the idx says. */
    if (ftruncate(ls->log_fd, ls->committed) != 0)
        rc = -1;
out:
    free(text);
    free(pend);
    return rc;
}

bool logstore_seen(const struct logstore *ls, uint64_t origin, uint64_t seq)
{
    const struct origin *o = find_origin(ls, origin);
    return o != NULL && seq <= o->seq;
}

uint64_t logstore_written(const struct logstore *ls) { return ls->written; }
uint64_t logstore_duplicates(const struct logstore *ls) { return ls->duplicates; }

void logstore_close(struct logstore *ls)
{
    if (ls == NULL)
        return;
    struct origin *o, *t;
    /* uthash keeps the next element in t, so deleting o here is safe. */
    // NOLINTBEGIN(clang-analyzer-unix.Malloc)
    HASH_ITER(hh, ls->origins, o, t) {
        HASH_DEL(ls->origins, o);
        free(o);
    }
    // NOLINTEND(clang-analyzer-unix.Malloc)
    if (ls->log_fd >= 0)
        close(ls->log_fd);
    if (ls->idx_fd >= 0)
        close(ls->idx_fd);
    free(ls->path);
    free(ls->idx_path);
    free(ls);
}
