/* durable.c - the state directory; see durable.h and docs/architecture.md. */
#define _GNU_SOURCE
#include "durable.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "crc32c.h"
#include "ops.h"
#include "fileio.h"
#include "record.h"
#include "snapshot.h"
#include "diag.h"

/* Set by durable_open(), read-only until durable_close(). */
static struct {
    bool on;
    char *dir;
    enum sync_mode sync;
    struct registry *reg;
    struct journal *journal;
    int lock_fd;
} st = {.lock_fd = -1};

/* The registry's log hook with -d: one journal record per operation, lock held. */
static bool journal_hook(void *ctx, struct reg_op *op, enum reg_status status)
{
    char now[32];
    const char *datetime = op->datetime;
    if (datetime == NULL) {
        server_datetime(now, sizeof now);
        datetime = now;
    }
    struct jrec rec = {.status = status, .port = op->port, .op = op->op,
                       .datetime = datetime, .user = op->user, .path = op->path,
                       .description = op->description, .target = op->target,
                       .ip = op->ip, .counter = op->counter, .secret = op->secret};
    if (!journal_append(ctx, &rec))
        return false;
    op->seq = rec.seq;
    return true;
}

/*
 * Apply a journaled operation that succeeded to reg, through the one path
 * (no log hook is installed yet: nothing is logged again); 0, or -1 if it
 * does not succeed again.  An expiry (path REG_EXPIRED_MARK) replays as
 * the DISCONNECT it was: the user was disconnected then and is again now.
 */
static int replay_one(void *ctx, const struct jrec *r)
{
    /* A proven counter counts even when the operation was refused or only
     * read: a copy of that request must stay refused after a restart. */
    if (r->counter != 0)
        registry_restore_key(ctx, r->user, NULL, r->counter);
    if (r->status != REG_OK || ops_read_only(r->op))
        return 0;               /* refused, or a read: it changed nothing */
    /* Trusted: it was proven when it happened. */
    struct reg_op op = {.op = r->op, .datetime = r->datetime, .user = r->user,
                        .path = r->path, .description = r->description,
                        .target = r->target, .ip = r->ip, .port = r->port,
                        .secret = r->secret, .trusted = true};
    struct listing *list = NULL;
    enum reg_status s = ops_perform(ctx, &op, &list);
    listing_release(list);
    return s == REG_OK ? 0 : -1;
}

/* What a compaction builds while the registry lock is held. */
struct compaction {
    struct snapshot *snap;
    uint64_t seq;
};

static void visit_user(void *ctx, const char *name, const char *ip, unsigned port)
{
    snapshot_add_user(((struct compaction *)ctx)->snap, name, ip, port);
}

static void visit_key(void *ctx, const uint8_t *secret, uint64_t counter)
{
    snapshot_add_key(((struct compaction *)ctx)->snap, secret, counter);
}

static void visit_file(void *ctx, const char *path, const char *description)
{
    snapshot_add_file(((struct compaction *)ctx)->snap, path, description);
}

/* Still under the registry lock: the new segment starts right after the snapshot. */
static void visit_done(void *ctx)
{
    struct compaction *c = ctx;
    c->seq = journal_rotate(st.journal);
    snapshot_end(c->snap, c->seq);
}

/*
 * Snapshot the registry and start a new journal segment (the sync thread
 * calls this when the segment outgrows its threshold; close calls it once).
 * The registry is copied to memory under its lock and written outside it.
 */
static void compact(void *unused)
{
    (void)unused;
    struct compaction c = {.snap = snapshot_new()};
    if (c.snap == NULL)
        return;
    struct registry_visitor v = {.user = visit_user, .key = visit_key,
                                 .file = visit_file, .done = visit_done, .ctx = &c};
    registry_visit(st.reg, &v);
    uint64_t bytes;
    if (snapshot_write(c.snap, st.dir, &bytes) == 0)
        journal_snapshot_done(st.journal, c.seq);
    snapshot_free(c.snap);
}

/* Create dir if missing and lock it against a second server. */
static int lock_dir(void)
{
    char path[4096];
    /* Owner only: the snapshot and journal hold users' secrets. */
    if (mkdir(st.dir, 0700) < 0 && errno != EEXIST) {
        diag("server: cannot create %s: %s\n", st.dir, strerror(errno));
        return -1;
    }
    snprintf(path, sizeof path, "%s/lock", st.dir);
    st.lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (st.lock_fd < 0 || flock(st.lock_fd, LOCK_EX | LOCK_NB) < 0) {
        diag("server: cannot lock %s: %s\n", path,
                errno == EWOULDBLOCK ? "another server uses this directory"
                                     : strerror(errno));
        return -1;
    }
    return 0;
}

int durable_open(const struct durable_config *cfg, struct registry *reg)
{
    st.dir = strdup(cfg->dir);
    st.reg = reg;
    st.sync = cfg->sync;
    uint64_t snap_seq, last;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (st.dir == NULL || lock_dir() < 0 ||
        snapshot_load(st.dir, reg, &snap_seq) < 0 ||
        journal_replay(st.dir, snap_seq, true, replay_one, reg, &last) < 0)
        goto fail;
    struct journal_config jc = {
        .dir = st.dir, .sync = cfg->sync, .budget = cfg->budget,
        .compact_bytes = cfg->compact_bytes, .compact = compact,
        .snapshot_seq = snap_seq, .outbox = cfg->outbox,
    };
    /* A segment must be able to go before the budget is spent. */
    if (cfg->outbox && jc.compact_bytes > cfg->budget / 4)
        jc.compact_bytes = cfg->budget / 4 ? cfg->budget / 4 : 1;
    if ((st.journal = journal_open(&jc, last)) == NULL)
        goto fail;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    diag("server: state in %s: %zu users, %zu files (snapshot up to %" PRIu64
                    ", %" PRIu64 " journal records replayed) in %.3f s; sync %s\n",
            st.dir, registry_user_count(reg), registry_file_count(reg), snap_seq,
            last - snap_seq,
            (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
            cfg->sync == SYNC_ALWAYS ? "always" : "batch");
    registry_set_log(reg, journal_hook, st.journal);
    st.on = true;
    return 0;

fail:
    if (st.lock_fd >= 0)
        close(st.lock_fd);
    st.lock_fd = -1;
    free(st.dir);
    st.dir = NULL;
    return -1;
}

bool durable_on(void)
{
    return st.on;
}

void durable_wait(uint64_t seq)
{
    if (st.on && st.sync == SYNC_ALWAYS && seq > 0)
        journal_wait_synced(st.journal, seq);
}

struct journal *durable_journal(void)
{
    return st.on ? st.journal : NULL;
}

void durable_sizes(uint64_t *journal_bytes, uint64_t *snapshot_bytes)
{
    *journal_bytes = *snapshot_bytes = 0;
    if (!st.on)
        return;
    *journal_bytes = journal_disk_bytes(st.journal);
    char path[4096];
    struct stat sb;
    snprintf(path, sizeof path, "%s/snapshot", st.dir);
    if (stat(path, &sb) == 0)
        *snapshot_bytes = (uint64_t)sb.st_size;
}

void durable_close(void)
{
    if (!st.on)
        return;
    journal_stop_sync(st.journal);  /* the final compaction must not race a sync */
    compact(NULL);
    registry_set_log(st.reg, NULL, NULL);
    journal_close(st.journal);
    st.journal = NULL;
    st.on = false;
    close(st.lock_fd);          /* releases the lock */
    free(st.dir);
    st.dir = NULL;
}

/* Dump visitors: one line per user, one indented line per file. */
static void dump_user(void *ctx, const char *name, const char *ip, unsigned port)
{
    if (ip != NULL)
        fprintf(ctx, "user %s connected %s %u\n", name, ip, port);
    else
        fprintf(ctx, "user %s not-connected\n", name);
}

static void dump_file(void *ctx, const char *path, const char *description)
{
    fprintf(ctx, "  file %s %s\n", path, description);
}

int durable_dump(const char *dir, FILE *out)
{
    struct registry *reg = registry_new();
    uint64_t snap_seq, last;
    if (reg == NULL || snapshot_load(dir, reg, &snap_seq) < 0 ||
        journal_replay(dir, snap_seq, false, replay_one, reg, &last) < 0) {
        registry_free(reg);
        return -1;
    }
    fprintf(out, "# %s: %zu users, %zu files; snapshot up to seq %" PRIu64
                 ", journal up to seq %" PRIu64 "\n",
            dir, registry_user_count(reg), registry_file_count(reg), snap_seq, last);
    struct registry_visitor v = {.user = dump_user, .file = dump_file, .ctx = out};
    registry_visit(reg, &v);
    registry_free(reg);
    return 0;
}

int durable_forget_key(const char *dir, const char *user)
{
    struct registry *reg = registry_new();
    struct durable_config cfg = {.dir = dir, .sync = SYNC_ALWAYS,
                                 .budget = DURABLE_BUDGET_DEFAULT,
                                 .compact_bytes = DURABLE_COMPACT_DEFAULT};
    if (reg == NULL || durable_open(&cfg, reg) < 0) {
        registry_free(reg);
        return -1;
    }
    enum reg_status s = registry_forget_key(reg, user);
    if (s == REG_OK)
        diag("server: %s: the secret of %s is forgotten; it is a classic user now "
             "(its client may UNREGISTER and REGISTER it again for a new secret)\n",
             dir, user);
    else
        diag("server: %s: %s %s\n", dir, user,
             s == REG_NO_USER ? "is no registered user" : "has no secret");
    durable_close();            /* the final snapshot holds the user without it */
    registry_free(reg);
    return s == REG_OK ? 0 : -1;
}
