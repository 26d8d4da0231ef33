/* durable.c - the state directory; see durable.h and docs/architecture.md. */
#define _GNU_SOURCE
#include "durable.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "diag.h"
#include "manifest.h"
#include "ops.h"
#include "outbox.h"
#include "record.h"
#include "snapshot.h"

#define MAX_LOSSES 16           /* losses listed one by one (more are counted) */
#define DUMP_TRIES 50           /* --dump: reads of a directory that changes meanwhile */

/* Set by durable_open(), read-only until durable_close() (but `manifest`,
 * which only a compaction, in the sync thread after the start, rewrites). */
static struct {
    bool on;
    char *dir;
    enum sync_mode sync;
    struct registry *reg;
    struct journal *journal;
    int lock_fd;            /* DIR itself, flock'ed: one server per directory */
    int gen_fd;             /* DIR/lock: held while a compaction replaces files */
    struct manifest manifest;   /* as last written */
} st = {.lock_fd = -1, .gen_fd = -1};

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
        /* After a failed sync reads go on, unjournaled (so unlogged). */
        return ops_read_only(op->op) && journal_failed(ctx);
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
    if (r->status != REG_OK || ops_read_only(r->op) || r->op == OP_LOSS)
        return 0;               /* refused, a read or a loss mark: it changed nothing */
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

/* ---- what the directory must hold ------------------------------------- */

/*
 * A load of the state directory that checks nothing is missing: the seqs
 * above the snapshot's (for the index) and above the outbox's (for the
 * operation log) must all be in journal segments, the snapshot and the
 * current segment DIR/manifest names must be there.  Each loss found is
 * said (unless quiet) with its size and kept for the loss marks.
 */
struct load {
    const char *dir;
    struct registry *reg;
    bool quiet;             /* --dump trying again: say nothing */
    uint64_t snap_seq;      /* the snapshot loaded holds up to here */
    uint64_t log_from;      /* the operation log needs seqs from here; UINT64_MAX: none */
    uint64_t last;          /* the highest seq on disk */
    uint64_t records;       /* records replayed (above snap_seq) */
    uint64_t unapplied;     /* ...that did not apply after a loss */
    bool index_lost, log_lost;
    size_t nlost;
    char lost[MAX_LOSSES][200];
};

/* Keep and (unless quiet) say one loss. */
static void loss(struct load *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void loss(struct load *l, const char *fmt, ...)
{
    char text[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (l->nlost < MAX_LOSSES)
        memcpy(l->lost[l->nlost], text, sizeof text);
    l->nlost++;
    if (!l->quiet)
        diag("server: %s: missing: %s\n", l->dir, text);
}

/* journal_replay's gap hook: seqs [from, to] are in no segment. */
static int load_gap(void *ctx, uint64_t from, uint64_t to, const char *next)
{
    (void)next;
    struct load *l = ctx;
    bool index = to > l->snap_seq, log = to >= l->log_from;
    if (!index && !log)
        return 0;               /* a snapshot holds them and the log has them */
    uint64_t need = index ? l->snap_seq + 1 : l->log_from;
    if (log && l->log_from < need)
        need = l->log_from;
    if (from < need)
        from = need;
    l->index_lost |= index;
    l->log_lost |= log;
    loss(l, "journal.%020" PRIu64 ": seqs %" PRIu64 " to %" PRIu64 " (%" PRIu64
            " operations), lost to %s", from, from, to, to - from + 1,
         index ? (log ? "the index and the operation log" : "the index")
               : "the operation log");
    return 0;
}

/* journal_replay's record hook: apply it; after a loss one may not apply. */
static int load_record(void *ctx, const struct jrec *r)
{
    struct load *l = ctx;
    l->records++;
    if (replay_one(l->reg, r) == 0)
        return 0;
    if (!l->index_lost)
        return -1;
    l->unapplied++;
    return 0;
}

/*
 * Load dir into the empty reg: snapshot, journal, and the checks against
 * DIR/manifest (m, or NULL when there is none).  0 when it loaded (losses
 * in l->nlost); -1 after saying why it cannot (damage).
 */
static int load_state(struct load *l, const struct manifest *m, bool repair)
{
    char path[4096];
    if (snapshot_load(l->dir, l->reg, &l->snap_seq) < 0 ||
        journal_replay(l->dir, l->snap_seq, repair, load_record, load_gap, l, &l->last) < 0)
        return -1;
    if (m == NULL) {
        /* A directory that holds state but says nothing of what it must hold. */
        if (l->last > 0)
            loss(l, "manifest (what this directory must hold is not known: the snapshot "
                    "or journal segments may be gone)");
        return 0;
    }
    if (l->snap_seq < m->snapshot_seq && (l->records == 0 || l->index_lost)) {
        loss(l, "snapshot: up to seq %" PRIu64 " (%" PRIu64 " users, %" PRIu64
                " files, %" PRIu64 " bytes)%s", m->snapshot_seq, m->snapshot_users,
             m->snapshot_files, m->snapshot_bytes,
             l->snap_seq ? " (an older one is there)" : "");
        l->index_lost = true;
    }
    snprintf(path, sizeof path, "%s/journal.%020" PRIu64, l->dir, m->segment);
    if (l->last < m->segment && access(path, F_OK) < 0 && errno == ENOENT) {
        loss(l, "journal.%020" PRIu64 ": seqs from %" PRIu64 " on (how many is not known)",
             m->segment, m->segment);
        l->index_lost = true;
        l->log_lost |= l->log_from != UINT64_MAX;
    }
    if (l->unapplied > 0 && !l->quiet)
        diag("server: %s: %" PRIu64 " operations after a loss did not apply "
                        "(they depended on what is lost)\n", l->dir, l->unapplied);
    return 0;
}

/*
 * DIR/manifest now: the snapshot as of the last compaction, the current
 * segment.  0, or -1 with errno set.
 */
static int write_manifest(void)
{
    st.manifest.segment = journal_segment(st.journal);
    return manifest_write(st.dir, &st.manifest);
}

/* The last compaction failed and said why (its retries say nothing);
 * compactions run one at a time (the sync thread, or open and close). */
static bool compact_failing;

/* ---- compaction -------------------------------------------------------- */

/* What a compaction builds while the registry lock is held. */
struct compaction {
    struct snapshot *snap;
    uint64_t seq;
    bool rotated;
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
    c->rotated = journal_rotate(st.journal, &c->seq);
    snapshot_end(c->snap, c->seq);
}

/*
 * Snapshot the registry and start a new journal segment (the sync thread
 * calls this when the segment outgrows its threshold; open and close call
 * it too).  The registry is copied to memory under its lock and written
 * outside it; then DIR/manifest says so.  False when any step failed.
 */
static bool compact(void *unused)
{
    (void)unused;
    struct compaction c = {.snap = snapshot_new()};
    if (c.snap == NULL)
        return false;
    struct registry_visitor v = {.user = visit_user, .key = visit_key,
                                 .file = visit_file, .done = visit_done, .ctx = &c};
    registry_visit(st.reg, &v);
    uint64_t bytes;
    /* --dump reads under a shared lock of DIR/lock: it never sees a new
     * snapshot with segments the old one needed gone, nor the reverse. */
    if (st.gen_fd >= 0)
        flock(st.gen_fd, LOCK_EX);
    const char *failed = NULL;
    bool written = snapshot_write(c.snap, st.dir, &bytes) == 0;
    int err = errno;
    if (!written)
        failed = "snapshot";
    if (written) {
        st.manifest.snapshot_seq = c.seq;
        st.manifest.snapshot_bytes = bytes;
        snapshot_counts(c.snap, &st.manifest.snapshot_users, &st.manifest.snapshot_files);
        journal_snapshot_done(st.journal, c.seq);
    }
    snapshot_free(c.snap);
    if (write_manifest() < 0 && failed == NULL) {
        failed = "manifest";
        err = errno;
    }
    if (st.gen_fd >= 0)
        flock(st.gen_fd, LOCK_UN);
    if (failed != NULL && !compact_failing)
        diag("server: cannot write %s/%s: %s\n", st.dir, failed, strerror(err));
    compact_failing = failed != NULL || !c.rotated;
    return !compact_failing;
}

/*
 * Create dir if missing and lock it against a second server: the lock is
 * on the directory itself, which no one can delete while it holds files
 * (a lock file could be removed, and a second server would lock a new one).
 */
static int lock_dir(void)
{
    /* Owner only: the snapshot and journal hold users' secrets. */
    if (mkdir(st.dir, 0700) < 0 && errno != EEXIST) {
        diag("server: cannot create %s: %s\n", st.dir, strerror(errno));
        return -1;
    }
    st.lock_fd = open(st.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (st.lock_fd < 0 || flock(st.lock_fd, LOCK_EX | LOCK_NB) < 0) {
        diag("server: cannot lock %s: %s\n", st.dir,
             errno == EWOULDBLOCK ? "another server uses this directory" : strerror(errno));
        return -1;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/lock", st.dir);
    st.gen_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (st.gen_fd < 0) {
        diag("server: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

/*
 * --accept-loss: the operator takes the losses found.  Each is marked in
 * the journal (so in the operation log) as an OP_LOSS record; a compaction
 * then leaves a snapshot and a journal with no gap, so the next start
 * finds nothing missing.  (When the operation log misses seqs it can never
 * get, durable_open() has already moved the outbox to a new origin.)
 */
static int accept_loss(const struct load *l)
{
    char now[32], what[256];
    server_datetime(now, sizeof now);
    for (size_t i = 0; i < l->nlost && i < MAX_LOSSES; i++) {
        snprintf(what, sizeof what, "%s", l->lost[i]);
        struct jrec rec = {.status = REG_OK, .op = OP_LOSS, .datetime = now, .user = "-",
                           .path = what, .description = "", .target = "", .ip = ""};
        if (!journal_append(st.journal, &rec))
            return -1;
    }
    diag("server: %s: started with %zu losses accepted (--accept-loss), marked in the "
         "journal and the operation log%s\n", st.dir, l->nlost,
         l->log_lost ? "; the operation log goes on under a new origin" : "");
    return compact(NULL) ? 0 : -1;
}

int durable_open(const struct durable_config *cfg, struct registry *reg)
{
    st.dir = strdup(cfg->dir);
    st.reg = reg;
    st.sync = cfg->sync;
    struct load l = {.dir = cfg->dir, .reg = reg, .log_from = UINT64_MAX};
    struct manifest m;
    int have_manifest = -1;
    uint64_t acked = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (st.dir == NULL || lock_dir() < 0 || outbox_acked(st.dir, &acked) < 0 ||
        (have_manifest = manifest_read(st.dir, &m)) < 0)
        goto fail;
    if (cfg->outbox)
        l.log_from = acked + 1;
    if (load_state(&l, have_manifest ? &m : NULL, true) < 0)
        goto fail;
    if (l.nlost > 0 && !cfg->accept_loss) {
        diag("server: %s: refusing to start with %zu losses (above); restore the files, "
             "or start with --accept-loss to go on without them\n", st.dir, l.nlost);
        goto fail;
    }
    /* The log cannot get the seqs it misses: a new origin, delivered from here. */
    if (l.nlost > 0 && l.log_lost && outbox_skip(st.dir, l.last) < 0)
        goto fail;
    /* The snapshot the manifest vouches for: the one loaded. */
    st.manifest = (struct manifest){.snapshot_seq = l.snap_seq};
    if (have_manifest && m.snapshot_seq == l.snap_seq)
        st.manifest = m;
    struct journal_config jc = {
        .dir = st.dir, .sync = cfg->sync, .budget = cfg->budget,
        .compact_bytes = cfg->compact_bytes, .compact = compact,
        .snapshot_seq = l.snap_seq, .outbox = cfg->outbox,
        .paused = true,     /* until the loss marks and the manifest are written */
    };
    /* A segment must be able to go before the budget is spent. */
    if (cfg->outbox && jc.compact_bytes > cfg->budget / 4)
        jc.compact_bytes = cfg->budget / 4 ? cfg->budget / 4 : 1;
    if ((st.journal = journal_open(&jc, l.last)) == NULL)
        goto fail;
    /* Appends here take no registry lock: no other thread appends or
     * rotates yet (no hook installed, compactions paused). */
    if ((l.nlost > 0 ? accept_loss(&l) : write_manifest()) < 0) {
        journal_close(st.journal);
        st.journal = NULL;
        goto fail;
    }
    journal_resume(st.journal);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    diag("server: state in %s: %zu users, %zu files (snapshot up to %" PRIu64
         ", %" PRIu64 " journal records replayed) in %.3f s; sync %s\n",
         st.dir, registry_user_count(reg), registry_file_count(reg), l.snap_seq, l.records,
         (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
         cfg->sync == SYNC_ALWAYS ? "always" : "batch");
    registry_set_log(reg, journal_hook, st.journal);
    st.on = true;
    return 0;

fail:
    if (st.lock_fd >= 0)
        close(st.lock_fd);
    if (st.gen_fd >= 0)
        close(st.gen_fd);
    st.lock_fd = st.gen_fd = -1;
    free(st.dir);
    st.dir = NULL;
    return -1;
}

bool durable_on(void)
{
    return st.on;
}

bool durable_wait(uint64_t seq)
{
    if (!st.on || st.sync != SYNC_ALWAYS || seq == 0)
        return true;
    return journal_wait_synced(st.journal, seq);
}

bool durable_failed(void)
{
    return st.on && journal_failed(st.journal);
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
    /* After a failed sync the memory may hold what the disk does not: the
     * next start recovers from the disk, as after a crash. */
    if (journal_failed(st.journal))
        diag("server: no final snapshot after a failed sync; the next start replays "
             "the journal on disk\n");
    else
        compact(NULL);
    registry_set_log(st.reg, NULL, NULL);
    journal_close(st.journal);
    st.journal = NULL;
    st.on = false;
    close(st.lock_fd);          /* releases the lock */
    close(st.gen_fd);
    st.lock_fd = st.gen_fd = -1;
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

/*
 * One read of dir for --dump: true when it is whole (nothing missing,
 * nothing damaged).  Quiet: what is wrong is not said (stderr is
 * /dev/null meanwhile; --dump runs no other thread).
 */
static bool dump_once(const char *dir, FILE *out, bool quiet)
{
    struct manifest m;
    struct registry *reg = registry_new();
    struct load l = {.dir = dir, .reg = reg, .quiet = quiet, .log_from = UINT64_MAX};
    int saved = -1, null = quiet ? open("/dev/null", O_WRONLY | O_CLOEXEC) : -1;
    if (null >= 0 && (saved = dup(STDERR_FILENO)) >= 0)
        dup2(null, STDERR_FILENO);
    /* No compaction replaces files meanwhile (a server without DIR/lock,
     * which someone removed, is still caught by the checks). */
    char path[4096];
    snprintf(path, sizeof path, "%s/lock", dir);
    int gen = open(path, O_RDONLY | O_CLOEXEC);
    if (gen >= 0)
        flock(gen, LOCK_SH);
    /* The manifest first: the snapshot and segments read after it are as
     * new or newer, never older. */
    int have = manifest_read(dir, &m);
    bool whole = reg != NULL && have >= 0 &&
                 load_state(&l, have ? &m : NULL, false) == 0 && l.nlost == 0;
    if (gen >= 0)
        close(gen);             /* releases the lock */
    if (saved >= 0) {
        dup2(saved, STDERR_FILENO);
        close(saved);
    }
    if (null >= 0)
        close(null);
    if (whole) {
        fprintf(out, "# %s: %zu users, %zu files; snapshot up to seq %" PRIu64
                     ", journal up to seq %" PRIu64 "\n",
                dir, registry_user_count(reg), registry_file_count(reg), l.snap_seq, l.last);
        struct registry_visitor v = {.user = dump_user, .file = dump_file, .ctx = out};
        registry_visit(reg, &v);
    }
    registry_free(reg);
    return whole;
}

int durable_dump(const char *dir, FILE *out)
{
    /* No lock: the server keeps running.  What is read is checked whole
     * (the snapshot, then every seq after it, against the manifest), so a
     * read that raced a compaction (a snapshot replaced, segments removed
     * meanwhile) is seen and done again; the last try says what is wrong. */
    for (int i = 0; i < DUMP_TRIES; i++) {
        if (dump_once(dir, out, i + 1 < DUMP_TRIES))
            return 0;
        poll(NULL, 0, 10);
    }
    diag("server: %s: no whole state could be read; nothing printed\n", dir);
    return -1;
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
