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
#include <time.h>
#include <unistd.h>

#include <uthash.h>

#include "diag.h"
#include "fileio.h"

/* The last committed sequence number of one origin. */
struct origin {
    uint64_t origin;
    uint64_t seq;
    UT_hash_handle hh;
};

struct logstore {
    char *path;             /* the log file */
    char *idx_path;         /* path + ".idx" */
    int log_fd;             /* locked (fcntl F_WRLCK) while open */
    int idx_fd;
    off_t committed;        /* the log is committed up to here */
    off_t idx_end;          /* the idx's valid records end here */
    size_t idx_records;     /* records in the idx */
    struct origin *origins; /* uthash by origin, least recently committed first */
    uint64_t written;
    uint64_t duplicates;
    uint64_t gap_origin;    /* logstore_accept_gap(): its next jump is taken; 0: none */
    uint64_t jump_origin;   /* the origin of the last jump refused */
    uint64_t gap_first, gap_last;   /* the gap taken, once taken */
    char error[160];
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

static struct origin *find_origin(const struct logstore *ls, uint64_t origin)
{
    struct origin *o;
    HASH_FIND(hh, ls->origins, &origin, sizeof origin, o);
    return o;
}

/*
 * Record an origin's committed seq, moving it to the most recent end
 * (adding it, from `fresh` when given, else allocated); -1 if out of memory.
 */
static int commit_seq(struct logstore *ls, uint64_t origin, uint64_t seq, struct origin *fresh)
{
    struct origin *o = find_origin(ls, origin);
    if (o != NULL) {
        HASH_DEL(ls->origins, o);
        free(fresh);
    } else {
        o = fresh ? fresh : calloc(1, sizeof *o);
        if (o == NULL)
            return -1;
        o->origin = origin;
    }
    if (seq > o->seq)
        o->seq = seq;
    HASH_ADD(hh, ls->origins, origin, sizeof o->origin, o);
    return 0;
}

/* Forget the least recently committed origins beyond the bound. */
static void retire_origins(struct logstore *ls)
{
    /* The head is the oldest; HASH_DEL moves the head on before o is freed. */
    // NOLINTBEGIN(clang-analyzer-unix.Malloc)
    while (HASH_COUNT(ls->origins) > LOGSTORE_ORIGINS_MAX) {
        struct origin *o = ls->origins;
        HASH_DEL(ls->origins, o);
        free(o);
    }
    // NOLINTEND(clang-analyzer-unix.Malloc)
}

/* FNV-1a 64: the checksum of a commit record (detects torn or mixed bytes). */
static uint64_t checksum(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
    return h;
}

#define RECORD_BODY (LOGSTORE_RECORD_LEN - 18)     /* before " <checksum>\n" */

/* Format one commit record (exactly LOGSTORE_RECORD_LEN bytes, no NUL). */
static void format_record(char *out, uint64_t origin, uint64_t seq, off_t end)
{
    char rec[LOGSTORE_RECORD_LEN + 1];
    snprintf(rec, RECORD_BODY + 1, "%016" PRIx64 " %020" PRIu64 " %020lld", origin, seq,
             (long long)end);
    snprintf(rec + RECORD_BODY, sizeof rec - RECORD_BODY, " %016" PRIx64 "\n",
             checksum(rec, RECORD_BODY));
    memcpy(out, rec, LOGSTORE_RECORD_LEN);
}

/* Digits of one field: n bytes, all hex or all decimal. */
static bool all_digits(const char *s, size_t n, bool hex)
{
    for (size_t i = 0; i < n; i++)
        if (!(hex ? isxdigit((unsigned char)s[i]) : isdigit((unsigned char)s[i])))
            return false;
    return true;
}

/* Parse the LOGSTORE_RECORD_LEN bytes at r; false unless a valid record. */
static bool parse_record(const char *r, uint64_t *origin, uint64_t *seq, uint64_t *end)
{
    if (r[16] != ' ' || r[37] != ' ' || r[58] != ' ' || r[75] != '\n' ||
        !all_digits(r, 16, true) || !all_digits(r + 17, 20, false) ||
        !all_digits(r + 38, 20, false) || !all_digits(r + 59, 16, true))
        return false;
    char f[4][24];
    const int at[4] = {0, 17, 38, 59}, len[4] = {16, 20, 20, 16};
    for (int i = 0; i < 4; i++) {
        memcpy(f[i], r + at[i], (size_t)len[i]);
        f[i][len[i]] = '\0';
    }
    errno = 0;
    *origin = strtoull(f[0], NULL, 16);
    *seq = strtoull(f[1], NULL, 10);
    *end = strtoull(f[2], NULL, 10);
    uint64_t sum = strtoull(f[3], NULL, 16);
    return errno == 0 && *end <= (uint64_t)INT64_MAX && sum == checksum(r, RECORD_BODY);
}

/* The largest idx we read; anything bigger is not ours and is not trusted. */
#define IDX_READ_MAX (64L << 20)

/*
 * Read the commit records: every origin's last seq, the largest committed
 * end (-1 when there is no valid record), and where the last valid record
 * ends in the idx (*good).  A record is the LOGSTORE_RECORD_LEN bytes before
 * a newline; anything else is skipped.
 */
static off_t read_idx(struct logstore *ls, off_t *good)
{
    off_t end = -1;
    *good = 0;
    int fd = open(ls->idx_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    char *buf = NULL;
    ssize_t n = -1;
    if (fstat(fd, &st) == 0 && st.st_size <= IDX_READ_MAX &&
        (buf = malloc((size_t)st.st_size + 1)) != NULL)
        n = pread(fd, buf, (size_t)st.st_size, 0);
    close(fd);
    for (ssize_t i = LOGSTORE_RECORD_LEN - 1; i < n; i++) {
        uint64_t origin, seq, off;
        if (buf[i] != '\n' ||
            !parse_record(buf + i + 1 - LOGSTORE_RECORD_LEN, &origin, &seq, &off))
            continue;
        if (origin != 0 && commit_seq(ls, origin, seq, NULL) != 0)
            continue;
        if ((off_t)off > end)
            end = (off_t)off;
        *good = (off_t)i + 1;
        ls->idx_records++;
    }
    free(buf);
    retire_origins(ls);
    return end;
}

/* The committed end must be at a line's end: back up to the last newline. */
static off_t line_end_before(int fd, off_t end)
{
    char c;
    while (end > 0 && (pread(fd, &c, 1, end - 1) != 1 || c != '\n'))
        end--;
    return end;
}

/*
 * Rewrite the idx from memory: one record per origin at the committed end,
 * through a temporary file (0600) and rename, so a crash leaves the old or
 * the new.  On failure the idx on disk is unchanged.
 */
static int rewrite_idx(struct logstore *ls)
{
    size_t n = strlen(ls->idx_path) + 8;
    char *tmp = malloc(n);
    size_t count = HASH_COUNT(ls->origins) + 1;
    char *text = malloc(count * LOGSTORE_RECORD_LEN);
    int rc = -1, fd = -1;
    if (tmp == NULL || text == NULL)
        goto out;
    snprintf(tmp, n, "%s.tmp", ls->idx_path);
    /* Origin 0 (never a sender's) records the committed end even when
     * nothing has been written yet. */
    format_record(text, 0, 0, ls->committed);
    size_t len = LOGSTORE_RECORD_LEN;
    struct origin *o, *t;
    HASH_ITER(hh, ls->origins, o, t) {
        format_record(text + len, o->origin, o->seq, ls->committed);
        len += LOGSTORE_RECORD_LEN;
    }
    fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || pwrite_all(fd, text, len, 0) != 0 || fdatasync(fd) != 0 ||
        rename(tmp, ls->idx_path) != 0) {
        int e = errno;
        unlink(tmp);
        errno = e;
        goto out;
    }
    (void)fsync_parent(ls->idx_path);
    if (ls->idx_fd >= 0)
        close(ls->idx_fd);
    ls->idx_fd = fd;
    fd = -1;
    ls->idx_end = (off_t)len;
    ls->idx_records = count;
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    free(tmp);
    free(text);
    return rc;
}

/*
 * Open the log file by path and lock it (before anything is written).
 * Returns the descriptor, or -1 with the reason in err; when another process
 * holds the lock, says which.
 */
static int open_locked(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    struct flock lk = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (fcntl(fd, F_SETLK, &lk) == 0)
        return fd;
    int e = errno;
    struct flock who = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if ((e == EAGAIN || e == EACCES) && fcntl(fd, F_GETLK, &who) == 0 && who.l_type != F_UNLCK)
        snprintf(err, errlen, "%s is in use by process %ld (another log server); "
                 "nothing was changed", path, (long)who.l_pid);
    else
        snprintf(err, errlen, "cannot lock %s: %s", path, strerror(e));
    close(fd);
    return -1;
}

/*
 * Cut the (locked) log at fd to its committed end and make fd the store's
 * log; then rewrite the idx, or, when that fails (no room), keep the old
 * idx cut after its last valid record.
 */
static int recover(struct logstore *ls, int fd, off_t idx_end, off_t idx_good,
                   char *err, size_t errlen)
{
    off_t size = lseek(fd, 0, SEEK_END);
    if (idx_end > size) {
        diag("logstore: %s.idx says %lld bytes are committed, but the log has "
                "%lld: not trusted, the log is kept whole\n", ls->path,
                (long long)idx_end, (long long)size);
        idx_end = -1;
    }
    off_t end = line_end_before(fd, idx_end >= 0 ? idx_end : size);
    if (ftruncate(fd, end) != 0 || fdatasync(fd) != 0) {
        snprintf(err, errlen, "cannot recover %s: %s", ls->path, strerror(errno));
        return -1;
    }
    if (ls->log_fd >= 0)
        close(ls->log_fd);
    ls->log_fd = fd;
    ls->committed = end;
    if (rewrite_idx(ls) == 0)
        return 0;
    int e = errno;
    int ifd = open(ls->idx_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (ifd < 0 || ftruncate(ifd, idx_good) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", ls->idx_path,
                 strerror(ifd < 0 ? errno : e));
        if (ifd >= 0)
            close(ifd);
        return -1;
    }
    diag("logstore: cannot rewrite %s (%s); appending to it as it is\n",
            ls->idx_path, strerror(e));
    if (ls->idx_fd >= 0)
        close(ls->idx_fd);
    ls->idx_fd = ifd;
    ls->idx_end = idx_good;
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
    int fd = open_locked(path, err, errlen);
    if (fd < 0) {
        logstore_close(ls);
        return NULL;
    }
    off_t good;
    off_t idx_end = read_idx(ls, &good);
    struct stat st;
    if (idx_end < 0 && stat(ls->idx_path, &st) == 0 && st.st_size > 0)
        diag("logstore: %s holds no valid commit record: not trusted, the log "
                "is kept whole\n", ls->idx_path);
    if (recover(ls, fd, idx_end, good, err, errlen) != 0) {
        if (ls->log_fd != fd)
            close(fd);
        logstore_close(ls);
        return NULL;
    }
    return ls;
}

int logstore_reopen(struct logstore *ls, char *err, size_t errlen)
{
    int fd = open_locked(ls->path, err, errlen);
    if (fd < 0)
        return -1;
    /* The new file starts a fresh idx: the committed end is its size. */
    if (recover(ls, fd, -1, 0, err, errlen) != 0) {
        if (ls->log_fd != fd)
            close(fd);
        return -1;
    }
    return 0;
}

/* One origin's state within a batch being checked. */
struct pending {
    uint64_t origin;
    uint64_t last;              /* highest seq so far, committed or in this batch */
    bool fresh;                 /* has new entries in this batch */
    struct origin *added;       /* allocated for an origin not known yet */
};

/* The batch's state for an origin, added on first sight: a known origin
 * continues from its committed seq, a new one from just below seq. */
static struct pending *pending_for(struct pending *p, size_t *np, const struct logstore *ls,
                                   uint64_t origin, uint64_t seq)
{
    for (size_t k = 0; k < *np; k++)
        if (p[k].origin == origin)
            return &p[k];
    const struct origin *o = find_origin(ls, origin);
    p[*np] = (struct pending){.origin = origin, .last = o ? o->seq : seq - 1};
    return &p[(*np)++];
}

/* Cut both files back to their good ends after a failed write. */
static void undo(struct logstore *ls)
{
    int e = errno;
    if (ftruncate(ls->log_fd, ls->committed) != 0 || ftruncate(ls->idx_fd, ls->idx_end) != 0)
        diag("logstore: cannot cut %s back: %s (the next write goes at the "
                "good end anyway)\n", ls->path, strerror(errno));
    errno = e;
}

/*
 * The marked line that stands for origin's seqs from..to, lost before they
 * reached the log: `- LOG_GAP <origin hex>:<from>-<to> <date-time now>`.
 */
static size_t format_gap(char *buf, uint64_t origin, uint64_t from, uint64_t to)
{
    char range[64], when[32];
    time_t t = time(NULL);
    struct tm tm;
    snprintf(range, sizeof range, "%016" PRIx64 ":%" PRIu64 "-%" PRIu64, origin, from, to);
    if (localtime_r(&t, &tm) == NULL || strftime(when, sizeof when, "%d/%m/%Y %H:%M:%S",
                                                 &tm) == 0)
        snprintf(when, sizeof when, "-");
    struct log_record gap = {.user = "", .operation = "LOG_GAP", .path = range,
                             .datetime = when};
    return log_format_line(buf, LOG_LINE_MAX, &gap);
}

int logstore_append(struct logstore *ls, const struct log_record *recs,
                    size_t n, FILE *echo)
{
    ls->error[0] = '\0';
    if (n == 0)
        return 0;
    char *text = malloc((n + 1) * LOG_LINE_MAX);        /* + a gap line */
    struct pending *pend = calloc(n, sizeof *pend);
    char *recbuf = malloc(n * LOGSTORE_RECORD_LEN);
    size_t npend = 0, len = 0, fresh = 0, dups = 0, nrec = 0;
    bool gap = false;           /* this batch records the accepted gap */
    int rc = -1;
    if (text == NULL || pend == NULL || recbuf == NULL) {
        snprintf(ls->error, sizeof ls->error, "out of memory");
        goto out;
    }

    for (size_t i = 0; i < n; i++) {
        const struct log_record *r = &recs[i];
        if (r->origin == 0 || r->seq == 0) {
            snprintf(ls->error, sizeof ls->error, "origin 0 and seq 0 are reserved");
            rc = LOGSTORE_REFUSED;
            goto out;
        }
        struct pending *p = pending_for(pend, &npend, ls, r->origin, r->seq);
        if (r->seq <= p->last) {
            dups++;
            continue;
        }
        if (r->seq != p->last + 1 && r->origin == ls->gap_origin && !gap) {
            len += format_gap(text + len, r->origin, p->last + 1, r->seq - 1);
            gap = true;
            ls->gap_first = p->last + 1;
            ls->gap_last = r->seq - 1;
        } else if (r->seq != p->last + 1) {
            snprintf(ls->error, sizeof ls->error, "origin %016" PRIx64 " jumps from seq %"
                     PRIu64 " to %" PRIu64, r->origin, p->last, r->seq);
            ls->jump_origin = r->origin;
            rc = LOGSTORE_REFUSED;
            goto out;
        }
        p->last = r->seq;
        p->fresh = true;
        len += log_format_line(text + len, LOG_LINE_MAX, r);
        fresh++;
    }
    /* Allocate new origins now, so that committing cannot fail later. */
    for (size_t k = 0; k < npend; k++)
        if (pend[k].fresh && find_origin(ls, pend[k].origin) == NULL &&
            (pend[k].added = calloc(1, sizeof *pend[k].added)) == NULL) {
            snprintf(ls->error, sizeof ls->error, "out of memory");
            goto out;
        }

    if (len > 0) {
        off_t end = ls->committed + (off_t)len;
        for (size_t k = 0; k < npend; k++)
            if (pend[k].fresh)
                format_record(recbuf + LOGSTORE_RECORD_LEN * nrec++, pend[k].origin,
                              pend[k].last, end);
        if (pwrite_all(ls->log_fd, text, len, ls->committed) != 0 ||
            fdatasync(ls->log_fd) != 0 ||
            pwrite_all(ls->idx_fd, recbuf, nrec * LOGSTORE_RECORD_LEN, ls->idx_end) != 0 ||
            fdatasync(ls->idx_fd) != 0) {
            snprintf(ls->error, sizeof ls->error, "%s", strerror(errno));
            undo(ls);
            goto out;
        }
        for (size_t k = 0; k < npend; k++)
            if (pend[k].fresh) {
                commit_seq(ls, pend[k].origin, pend[k].last, pend[k].added);
                pend[k].added = NULL;       /* the store owns it now */
            }
        ls->committed = end;
        if (gap)
            ls->gap_origin = 0;         /* taken once */
        ls->idx_end += (off_t)(nrec * LOGSTORE_RECORD_LEN);
        ls->idx_records += nrec;
        retire_origins(ls);
        /* Compact once appends made the idx four times its compact size;
         * if that fails, the appended idx is as good. */
        if (ls->idx_records > 4 * (HASH_COUNT(ls->origins) + 1) + 64)
            rewrite_idx(ls);
        if (echo) {
            fwrite(text, 1, len, echo);
            fflush(echo);
        }
    }
    ls->written += fresh;
    ls->duplicates += dups;
    rc = 0;
out:
    if (pend != NULL)
        for (size_t k = 0; k < npend; k++)
            free(pend[k].added);
    free(text);
    free(pend);
    free(recbuf);
    return rc;
}

bool logstore_seen(const struct logstore *ls, uint64_t origin, uint64_t seq)
{
    const struct origin *o = find_origin(ls, origin);
    return o != NULL && seq <= o->seq;
}

void logstore_accept_gap(struct logstore *ls, uint64_t origin) { ls->gap_origin = origin; }
uint64_t logstore_gap_pending(const struct logstore *ls) { return ls->gap_origin; }

void logstore_gap_taken(const struct logstore *ls, uint64_t *first, uint64_t *last)
{
    *first = ls->gap_first;
    *last = ls->gap_last;
}

uint64_t logstore_jump_origin(const struct logstore *ls) { return ls->jump_origin; }
uint64_t logstore_written(const struct logstore *ls) { return ls->written; }
uint64_t logstore_duplicates(const struct logstore *ls) { return ls->duplicates; }
const char *logstore_error(const struct logstore *ls) { return ls->error; }
size_t logstore_origins(const struct logstore *ls) { return HASH_COUNT(ls->origins); }

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
