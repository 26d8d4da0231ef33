/* journal.c - segments, group commit, replay and the outbox reader; see journal.h. */
#define _GNU_SOURCE
#include "journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "fileio.h"
#include "diag.h"

#define SEG_PREFIX "journal."
#define BATCH_SYNC_MS 1000          /* SYNC_BATCH: durable at most this late */
#define RETRY_FIRST_MS 1000         /* a failed compaction: first wait, doubling... */
#define RETRY_MAX_MS 60000          /* ...up to this */

/* One segment file: the seq of its first record and its size. */
struct segment {
    uint64_t first;
    uint64_t size;
};

struct journal {
    struct journal_config cfg;
    char *dir;
    pthread_t sync_thread;
    pthread_mutex_t lock;           /* guards everything below */
    pthread_cond_t work;            /* the sync thread has something to do */
    pthread_cond_t synced;          /* durable_seq moved, or stopping */
    int fd;                         /* the current (last) segment, for appends */
    struct segment *segs;           /* on disk, oldest first; the last is current */
    size_t nsegs, segs_cap;
    uint64_t next_seq;              /* the seq the next record gets */
    uint64_t durable_seq;           /* records up to this are fdatasync'd */
    uint64_t durable_size;          /* ...and so is the current segment up to here */
    uint64_t snapshot_seq;          /* the snapshot holds everything up to here */
    uint64_t acked_seq;             /* the log server has everything up to here */
    bool outbox;                    /* an outbox reads: keep undelivered segments */
    unsigned sync_waiters;          /* threads waiting in journal_wait_synced() */
    bool reader_waits;              /* the outbox reader waits for durable records */
    bool compact_due, compacting, prune_due, stopping;
    bool over_budget_said;
    bool failed;                    /* an fdatasync failed: no more appends */
    bool paused;                    /* no compaction until journal_resume() */
    unsigned compact_failures;      /* failed compactions in a row */
    struct timespec compact_retry;  /* ...and when to try the next one */
};

/* "DIR/journal.<first>" into buf. */
static void seg_path(char *buf, size_t size, const char *dir, uint64_t first)
{
    snprintf(buf, size, "%s/" SEG_PREFIX "%020" PRIu64, dir, first);
}

/* ---- segments on disk ------------------------------------------------- */

/* Keep the directory entries named journal.<20 digits>. */
static int is_segment(const struct dirent *d)
{
    size_t n = strlen(SEG_PREFIX);
    if (strncmp(d->d_name, SEG_PREFIX, n) != 0 || strlen(d->d_name) != n + 20)
        return 0;
    for (const char *c = d->d_name + n; *c; c++)
        if (*c < '0' || *c > '9')
            return 0;
    return 1;
}

/* The first seqs of dir's segments, ascending, in *out; their count or -1. */
static ssize_t list_segments(const char *dir, uint64_t **out)
{
    struct dirent **names;
    int n = scandir(dir, &names, is_segment, alphasort);
    if (n < 0)
        return -1;
    uint64_t *firsts = malloc(sizeof *firsts * (size_t)(n ? n : 1));
    for (int i = 0; i < n; i++) {
        if (firsts != NULL)
            firsts[i] = strtoull(names[i]->d_name + strlen(SEG_PREFIX), NULL, 10);
        free(names[i]);
    }
    free(names);
    *out = firsts;
    return firsts ? n : -1;
}

/* Read a whole file into a malloc'd buffer; 0, or -1 with errno. */
static int read_file(const char *path, unsigned char **buf, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *len = (size_t)st.st_size;
    *buf = malloc(*len ? *len : 1);
    size_t got = 0;
    while (*buf != NULL && got < *len) {
        ssize_t r = read(fd, *buf + got, *len - got);
        if (r <= 0) {
            free(*buf);
            *buf = NULL;
            if (r == 0)
                errno = EIO;
            break;
        }
        got += (size_t)r;
    }
    close(fd);
    return *buf ? 0 : -1;
}

/*
 * Report the seqs [from, to] that no segment holds (next: the segment after
 * them, or NULL): to gap() when given; else a gap above `after` stops.
 */
static int report_gap(const char *dir, uint64_t from, uint64_t to, const char *next,
                      uint64_t after, journal_gap_fn *gap, void *ctx)
{
    if (gap != NULL)
        return gap(ctx, from, to, next);
    if (to <= after)
        return 0;
    char path[4096];
    seg_path(path, sizeof path, dir, from);
    diag("server: %s is missing: seqs %" PRIu64 " to %" PRIu64
                    " are in no journal segment\n", path, from, to);
    return -1;
}

int journal_replay(const char *dir, uint64_t after, bool repair, journal_replay_fn *fn,
                   journal_gap_fn *gap, void *ctx, uint64_t *last)
{
    uint64_t *firsts;
    ssize_t n = list_segments(dir, &firsts);
    char path[4096];
    *last = after;
    if (n < 0) {
        diag("server: cannot list the journal in %s: %s\n", dir, strerror(errno));
        return -1;
    }
    int rc = 0;
    uint64_t expect = 1;            /* the seq the next record must have */
    for (ssize_t i = 0; i < n && rc == 0; i++) {
        unsigned char *buf = NULL;
        size_t len, off = 0;
        seg_path(path, sizeof path, dir, firsts[i]);
        /* Segments follow on: a later first seq means seqs no file holds
         * (a segment removed by hand; those a snapshot covers may go). */
        if (firsts[i] > expect) {
            if (report_gap(dir, expect, firsts[i] - 1, path, after, gap, ctx) < 0) {
                rc = -1;
                break;
            }
            expect = firsts[i];
        }
        /* Removed since the listing (--dump beside a running server): as if
         * never there; the gaps it leaves are judged like any other. */
        if (read_file(path, &buf, &len) < 0 && errno == ENOENT)
            continue;
        if (buf == NULL) {
            diag("server: cannot read %s: %s\n", path, strerror(errno));
            rc = -1;
            break;
        }
        while (off < len && rc == 0) {
            uint32_t plen;
            struct jrec rec;
            enum record_check c = record_check(buf + off, len - off, &plen);
            if (c == RECORD_TORN && i == n - 1) {
                if (repair && truncate(path, (off_t)off) < 0) {
                    diag("server: cannot cut %s: %s\n", path, strerror(errno));
                    rc = -1;
                } else {
                    diag("server: %s: %s torn tail of %zu bytes at offset %zu "
                                    "(a write cut short by a crash)\n",
                            path, repair ? "cut a" : "ignoring a", len - off, off);
                }
                break;
            }
            if (c != RECORD_OK || jrec_decode(buf + off + RECORD_HEAD, plen, &rec) < 0 ||
                rec.seq != expect) {
                diag("server: %s: damaged record at offset %zu; refusing to "
                                "start (move the state directory aside to start fresh)\n",
                        path, off);
                rc = -1;
                break;
            }
            expect++;
            if (rec.seq > *last)
                *last = rec.seq;
            if (rec.seq > after && fn != NULL && fn(ctx, &rec) != 0) {
                diag("server: %s: record at offset %zu does not replay\n",
                        path, off);
                rc = -1;
            }
            off += RECORD_HEAD + plen;
        }
        free(buf);
    }
    /* Seqs the snapshot holds and no segment does: nothing missing for the
     * index, but the caller may need them (the operation log). */
    if (rc == 0 && gap != NULL && expect <= after)
        rc = gap(ctx, expect, after, NULL);
    free(firsts);
    return rc;
}

/* ---- appending and syncing -------------------------------------------- */

/* Add a segment to the list; lock held.  False when out of memory. */
static bool seg_push(struct journal *j, uint64_t first, uint64_t size)
{
    if (j->nsegs == j->segs_cap) {
        size_t cap = j->segs_cap ? j->segs_cap * 2 : 16;
        struct segment *s = realloc(j->segs, cap * sizeof *s);
        if (s == NULL)
            return false;
        j->segs = s;
        j->segs_cap = cap;
    }
    j->segs[j->nsegs++] = (struct segment){.first = first, .size = size};
    return true;
}

/* Create segment `first` and make it current; lock held.  0 or -1. */
static int seg_create(struct journal *j, uint64_t first)
{
    char path[4096];
    seg_path(path, sizeof path, j->dir, first);
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0 || fsync_dir(j->dir) < 0 || !seg_push(j, first, 0)) {
        /* Said once for failures in a row (the sync thread retries later). */
        if (j->compact_failures == 0)
            diag("server: cannot create %s: %s\n", path, strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(path);       /* no empty segment overlapping the current one */
        }
        return -1;
    }
    j->fd = fd;
    j->durable_size = 0;
    return 0;
}

/* Bytes of the segments not yet all delivered to the log server; lock held. */
static uint64_t undelivered_bytes(struct journal *j)
{
    uint64_t sum = 0;
    for (size_t i = j->nsegs; i-- > 0;) {
        uint64_t last = i + 1 < j->nsegs ? j->segs[i + 1].first - 1 : j->next_seq - 1;
        if (last <= j->acked_seq)
            break;
        sum += j->segs[i].size;
    }
    return sum;
}

bool journal_append(struct journal *j, struct jrec *rec)
{
    unsigned char buf[JREC_MAX];
    pthread_mutex_lock(&j->lock);
    if (j->failed) {
        pthread_mutex_unlock(&j->lock);
        return false;
    }
    if (j->outbox && undelivered_bytes(j) > j->cfg.budget) {
        if (!j->over_budget_said)
            diag("server: the operation log is behind by more than %" PRIu64
                            " bytes of journal; refusing operations until it catches up\n",
                    j->cfg.budget);
        j->over_budget_said = true;
        pthread_mutex_unlock(&j->lock);
        return false;
    }
    rec->seq = j->next_seq;
    int fd = j->fd;
    struct segment *cur = &j->segs[j->nsegs - 1];
    uint64_t size = cur->size;
    pthread_mutex_unlock(&j->lock);

    /* The write itself needs no journal mutex: the registry lock orders
     * appends, and only a rotation (also under the registry lock) changes fd. */
    size_t n = jrec_encode(rec, buf);
    if (n == 0 || write_all(fd, buf, n) < 0) {
        if (n > 0 && ftruncate(fd, (off_t)size) < 0)
            diag("server: journal write failed and cannot be undone: %s\n",
                    strerror(errno));
        return false;
    }

    pthread_mutex_lock(&j->lock);
    j->next_seq++;
    j->segs[j->nsegs - 1].size = size + n;
    if (j->over_budget_said && !(j->outbox && undelivered_bytes(j) > j->cfg.budget)) {
        diag("server: the operation log caught up; accepting operations\n");
        j->over_budget_said = false;
    }
    if (j->reader_waits)
        pthread_cond_signal(&j->work);      /* the outbox wants it durable now */
    if (size + n >= j->cfg.compact_bytes && !j->compact_due && !j->compacting) {
        j->compact_due = true;
        pthread_cond_signal(&j->work);
    }
    pthread_mutex_unlock(&j->lock);
    return true;
}

bool journal_wait_synced(struct journal *j, uint64_t seq)
{
    pthread_mutex_lock(&j->lock);
    j->sync_waiters++;
    pthread_cond_signal(&j->work);
    while (j->durable_seq < seq && !j->stopping && !j->failed)
        pthread_cond_wait(&j->synced, &j->lock);
    j->sync_waiters--;
    bool durable = j->durable_seq >= seq;
    pthread_mutex_unlock(&j->lock);
    return durable;
}

bool journal_failed(struct journal *j)
{
    pthread_mutex_lock(&j->lock);
    bool failed = j->failed;
    pthread_mutex_unlock(&j->lock);
    return failed;
}

uint64_t journal_segment(struct journal *j)
{
    pthread_mutex_lock(&j->lock);
    uint64_t first = j->segs[j->nsegs - 1].first;
    pthread_mutex_unlock(&j->lock);
    return first;
}

/*
 * An fdatasync failed, lock held: what it covered may never reach the disk,
 * and a later sync can report success for pages the kernel has dropped, so
 * nothing written from now on is acknowledged (as PostgreSQL, which stops
 * after a failed fsync).  Waiters are woken to hear it.
 */
static void sync_failed(struct journal *j, int err)
{
    if (!j->failed)
        diag("server: journal fdatasync failed: %s; operations that change the "
                        "index are refused from now on (reads go on); restart the server "
                        "to recover from what is on disk\n", strerror(err));
    j->failed = true;
    pthread_cond_broadcast(&j->synced);
}

/* True when now has reached t (CLOCK_MONOTONIC). */
static bool reached(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > t->tv_sec || (now.tv_sec == t->tv_sec && now.tv_nsec >= t->tv_nsec);
}

/* The earlier of two times. */
static struct timespec earlier(struct timespec a, struct timespec b)
{
    return a.tv_sec < b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec < b.tv_nsec) ? a : b;
}

/*
 * Run a due compaction, lock held (released meanwhile).  A failed one (out
 * of descriptors, a full disk) is tried again after a wait that doubles up
 * to a minute, not at once: one line when it first fails, one with the
 * count when it works again, never a loop.
 */
static void run_compaction(struct journal *j)
{
    j->compact_due = false;
    j->compacting = true;
    pthread_mutex_unlock(&j->lock);
    bool ok = j->cfg.compact(j->cfg.compact_ctx);
    pthread_mutex_lock(&j->lock);
    j->compacting = false;
    if (ok) {
        if (j->compact_failures > 0)
            diag("server: compaction works again after %u failed tries\n",
                    j->compact_failures);
        j->compact_failures = 0;
        /* Appends during the compaction may have filled the new segment. */
        if (j->segs[j->nsegs - 1].size >= j->cfg.compact_bytes)
            j->compact_due = true;
        return;
    }
    unsigned shift = j->compact_failures < 6 ? j->compact_failures : 6;
    long wait_ms = RETRY_FIRST_MS << shift;
    if (wait_ms > RETRY_MAX_MS)
        wait_ms = RETRY_MAX_MS;
    if (j->compact_failures == 0)
        diag("server: compaction failed; trying again in %ld s, then less and "
                        "less often (up to every %d s)\n", wait_ms / 1000, RETRY_MAX_MS / 1000);
    j->compact_failures++;
    j->compact_retry = deadline_after_ms(CLOCK_MONOTONIC, wait_ms);
    j->compact_due = true;
}

/* Remove the segments that the snapshot and the log server both hold; lock held. */
static void prune(struct journal *j)
{
    uint64_t keep_after = j->snapshot_seq;
    if (j->outbox && j->acked_seq < keep_after)
        keep_after = j->acked_seq;
    size_t gone = 0;
    char path[4096];
    /* Never the current segment: it is still written to. */
    while (gone + 1 < j->nsegs && j->segs[gone + 1].first - 1 <= keep_after) {
        seg_path(path, sizeof path, j->dir, j->segs[gone].first);
        if (unlink(path) < 0 && errno != ENOENT)
            break;
        gone++;
    }
    if (gone > 0) {
        memmove(j->segs, j->segs + gone, (j->nsegs - gone) * sizeof *j->segs);
        j->nsegs -= gone;
    }
}

/*
 * The sync thread: fdatasync by group commit, run compactions and prune
 * segments.  In SYNC_BATCH it syncs what is written once a second, and at
 * once when someone waits (a -S always reply, the outbox reader).
 */
static void *sync_main(void *arg)
{
    struct journal *j = arg;
    struct timespec next_batch = deadline_after_ms(CLOCK_MONOTONIC, BATCH_SYNC_MS);
    pthread_mutex_lock(&j->lock);
    for (;;) {
        bool retry_wait = j->compact_due && j->compact_failures > 0 &&
                          !reached(&j->compact_retry);
        if (j->compact_due && !j->stopping && !j->failed && !j->paused && !retry_wait) {
            run_compaction(j);
            continue;
        }
        if (j->prune_due) {
            j->prune_due = false;
            prune(j);
        }
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        bool dirty = j->durable_seq + 1 < j->next_seq && !j->failed;
        bool batch_time = now.tv_sec > next_batch.tv_sec ||
                          (now.tv_sec == next_batch.tv_sec && now.tv_nsec >= next_batch.tv_nsec);
        if (dirty && (j->sync_waiters > 0 || j->reader_waits || batch_time || j->stopping)) {
            uint64_t seq = j->next_seq - 1, size = j->segs[j->nsegs - 1].size;
            int fd = j->fd;     /* only this thread rotates, so fd stays open */
            pthread_mutex_unlock(&j->lock);
            int rc = fdatasync(fd), err = errno;
            pthread_mutex_lock(&j->lock);
            if (rc < 0) {
                sync_failed(j, err);
                continue;
            }
            j->durable_seq = seq;
            j->durable_size = size;
            pthread_cond_broadcast(&j->synced);
            next_batch = deadline_after_ms(CLOCK_MONOTONIC, BATCH_SYNC_MS);
            continue;
        }
        if (j->stopping)
            break;
        if (!dirty)
            next_batch = deadline_after_ms(CLOCK_MONOTONIC, BATCH_SYNC_MS);
        struct timespec until = next_batch;
        if (retry_wait && !j->failed)
            until = earlier(until, j->compact_retry);
        pthread_cond_timedwait(&j->work, &j->lock, &until);
    }
    pthread_mutex_unlock(&j->lock);
    return NULL;
}

struct journal *journal_open(const struct journal_config *cfg, uint64_t last)
{
    struct journal *j = calloc(1, sizeof *j);
    uint64_t *firsts = NULL;
    ssize_t n = -1;
    if (j == NULL || (j->dir = strdup(cfg->dir)) == NULL)
        goto fail;
    j->cfg = *cfg;
    j->cfg.dir = j->dir;
    j->fd = -1;
    j->next_seq = last + 1;
    j->durable_seq = last;
    j->snapshot_seq = cfg->snapshot_seq;
    j->outbox = cfg->outbox;
    j->acked_seq = cfg->acked_seq;
    j->paused = cfg->paused;
    pthread_mutex_init(&j->lock, NULL);
    cond_init_monotonic(&j->work);
    pthread_cond_init(&j->synced, NULL);

    n = list_segments(cfg->dir, &firsts);
    if (n < 0)
        goto fail;
    char path[4096];
    for (ssize_t i = 0; i < n; i++) {
        struct stat st;
        seg_path(path, sizeof path, cfg->dir, firsts[i]);
        if (stat(path, &st) < 0 || !seg_push(j, firsts[i], (uint64_t)st.st_size))
            goto fail;
    }
    if (n > 0 && j->segs[n - 1].size < cfg->compact_bytes) {
        seg_path(path, sizeof path, cfg->dir, firsts[n - 1]);
        j->fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
        if (j->fd < 0)
            goto fail;
        j->durable_size = j->segs[n - 1].size;
        if (fdatasync(j->fd) < 0)   /* what a killed run left in the page cache */
            goto fail;
    } else if (seg_create(j, last + 1) < 0) {
        goto fail;
    }
    free(firsts);
    if (pthread_create(&j->sync_thread, NULL, sync_main, j) != 0)
        goto fail_nothread;
    return j;

fail:
    free(firsts);
    diag("server: cannot open the journal in %s: %s\n", cfg->dir, strerror(errno));
fail_nothread:
    if (j != NULL) {
        if (j->fd >= 0)
            close(j->fd);
        free(j->segs);
        free(j->dir);
        free(j);
    }
    return NULL;
}

bool journal_rotate(struct journal *j, uint64_t *last)
{
    pthread_mutex_lock(&j->lock);
    *last = j->next_seq - 1;
    if (j->segs[j->nsegs - 1].size == 0) {
        pthread_mutex_unlock(&j->lock);
        return true;            /* the current segment is empty: keep it */
    }
    int old = j->fd;
    if (j->failed || fdatasync(old) < 0) {
        if (!j->failed)
            sync_failed(j, errno);
        pthread_mutex_unlock(&j->lock);
        return false;
    }
    if (seg_create(j, j->next_seq) < 0) {
        j->fd = old;            /* keep appending where we were */
        pthread_mutex_unlock(&j->lock);
        return false;
    }
    close(old);
    j->durable_seq = *last;
    pthread_cond_broadcast(&j->synced);
    pthread_mutex_unlock(&j->lock);
    return true;
}

void journal_resume(struct journal *j)
{
    pthread_mutex_lock(&j->lock);
    j->paused = false;
    pthread_cond_signal(&j->work);
    pthread_mutex_unlock(&j->lock);
}

void journal_snapshot_done(struct journal *j, uint64_t seq)
{
    pthread_mutex_lock(&j->lock);
    if (seq > j->snapshot_seq)
        j->snapshot_seq = seq;
    prune(j);
    pthread_mutex_unlock(&j->lock);
}

void journal_set_acked(struct journal *j, uint64_t seq)
{
    pthread_mutex_lock(&j->lock);
    if (seq > j->acked_seq) {
        j->acked_seq = seq;
        j->prune_due = true;
        pthread_cond_signal(&j->work);
    }
    pthread_mutex_unlock(&j->lock);
}

uint64_t journal_disk_bytes(struct journal *j)
{
    uint64_t sum = 0;
    pthread_mutex_lock(&j->lock);
    for (size_t i = 0; i < j->nsegs; i++)
        sum += j->segs[i].size;
    pthread_mutex_unlock(&j->lock);
    return sum;
}

uint64_t journal_last_seq(struct journal *j)
{
    pthread_mutex_lock(&j->lock);
    uint64_t last = j->next_seq - 1;
    pthread_mutex_unlock(&j->lock);
    return last;
}

void journal_stop_sync(struct journal *j)
{
    pthread_mutex_lock(&j->lock);
    bool running = !j->stopping;
    j->stopping = true;
    pthread_cond_signal(&j->work);
    pthread_mutex_unlock(&j->lock);
    if (running)
        pthread_join(j->sync_thread, NULL);   /* it syncs what is written first */
}

void journal_close(struct journal *j)
{
    if (j == NULL)
        return;
    journal_stop_sync(j);
    if (!j->failed && fdatasync(j->fd) < 0)
        diag("server: journal fdatasync failed: %s\n", strerror(errno));
    close(j->fd);
    pthread_cond_destroy(&j->work);
    pthread_cond_destroy(&j->synced);
    pthread_mutex_destroy(&j->lock);
    free(j->segs);
    free(j->dir);
    free(j);
}

/* ---- the outbox reader ------------------------------------------------ */

struct jreader {
    struct journal *j;
    uint64_t from;                  /* skip records below this seq */
    uint64_t seg;                   /* first seq of the segment open in fd */
    int fd;                         /* -1: none open yet */
    uint64_t off;                   /* where the next record starts in it */
    unsigned char buf[RECORD_HEAD + RECORD_MAX];
};

struct jreader *jreader_open(struct journal *j, uint64_t from)
{
    struct jreader *r = malloc(sizeof *r);
    if (r == NULL)
        return NULL;
    r->j = j;
    r->from = from;
    r->fd = -1;
    r->off = 0;
    r->seg = 0;
    return r;
}

/*
 * Where the reader may read up to, lock held: the end of an older segment,
 * or the durable part of the current one.  Moves on to the next segment
 * when the open one is done.  Returns the limit, or 0 with nothing to read.
 */
static uint64_t read_limit(struct jreader *r, char *path, size_t size, bool *reopen)
{
    struct journal *j = r->j;
    size_t i = 0;
    *reopen = false;
    if (r->fd < 0) {
        /* The last segment starting at or before `from`, else the first. */
        while (i + 1 < j->nsegs && j->segs[i + 1].first <= r->from)
            i++;
        *reopen = true;
    } else {
        while (i < j->nsegs && j->segs[i].first != r->seg)
            i++;
        if (i == j->nsegs)
            return 0;           /* cannot happen: unread segments stay */
        bool current = i + 1 == j->nsegs;
        uint64_t limit = current ? j->durable_size : j->segs[i].size;
        if (r->off < limit || current)
            return limit > r->off ? limit : 0;
        i++;                    /* done with an older segment: next one */
        *reopen = true;
    }
    r->seg = j->segs[i].first;
    r->off = 0;
    seg_path(path, size, j->dir, r->seg);
    bool current = i + 1 == j->nsegs;
    return current ? j->durable_size : j->segs[i].size;
}

int jreader_next(struct jreader *r, struct jrec *rec, long wait_ms)
{
    struct journal *j = r->j;
    char path[4096];
    for (;;) {
        bool reopen;
        pthread_mutex_lock(&j->lock);
        uint64_t limit = read_limit(r, path, sizeof path, &reopen);
        if (reopen) {
            if (r->fd >= 0)
                close(r->fd);
            r->fd = open(path, O_RDONLY | O_CLOEXEC);
            if (r->fd < 0) {
                pthread_mutex_unlock(&j->lock);
                return -1;
            }
        }
        if (limit <= r->off) {
            if (wait_ms <= 0) {
                pthread_mutex_unlock(&j->lock);
                return 0;
            }
            /* Nothing durable to read: ask for a sync and wait for it. */
            struct timespec until = deadline_after_ms(CLOCK_REALTIME, wait_ms);
            j->reader_waits = true;
            pthread_cond_signal(&j->work);
            pthread_cond_timedwait(&j->synced, &j->lock, &until);
            j->reader_waits = false;
            pthread_mutex_unlock(&j->lock);
            wait_ms = 0;
            continue;
        }
        pthread_mutex_unlock(&j->lock);

        /* The head, then the payload it announces. */
        uint32_t plen;
        ssize_t got = pread(r->fd, r->buf, RECORD_HEAD, (off_t)r->off);
        if (got != RECORD_HEAD)
            return -1;
        plen = get_u32(r->buf);
        if (plen == 0 || plen > RECORD_MAX || r->off + RECORD_HEAD + plen > limit)
            return -1;
        got = pread(r->fd, r->buf + RECORD_HEAD, plen, (off_t)(r->off + RECORD_HEAD));
        if (got != (ssize_t)plen ||
            record_check(r->buf, RECORD_HEAD + plen, &plen) != RECORD_OK ||
            jrec_decode(r->buf + RECORD_HEAD, plen, rec) < 0)
            return -1;
        r->off += RECORD_HEAD + plen;
        if (rec->seq >= r->from)
            return 1;
    }
}

void jreader_close(struct jreader *r)
{
    if (r == NULL)
        return;
    if (r->fd >= 0)
        close(r->fd);
    free(r);
}
