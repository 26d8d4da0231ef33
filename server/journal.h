/*
 * journal.h - the append-only journal of a state directory.
 *
 * Every operation the index performs (refused ones too, with their outcome)
 * becomes one record, appended while the registry lock is held and before
 * the reply leaves, so the journal's order is the order in which operations
 * took effect and a record is in the kernel before its client hears of it.
 * The journal is a run of segment files DIR/journal.<first seq>; a
 * compaction starts a new segment after a snapshot (snapshot.h) and removes
 * the segments the snapshot covers once the operation log has them too.
 *
 * One sync thread per journal makes records durable by group commit
 * (fdatasync of everything written so far): at most about a second behind
 * in SYNC_BATCH, at once for waiters in SYNC_ALWAYS, and on demand for the
 * outbox reader, which hands the log server only durable records.  A failed
 * fdatasync is final (journal_failed()); a failed compaction is tried
 * again after a wait that doubles up to a minute.
 *
 * Locks: appends are serialized by the caller (the registry lock); the
 * journal's own mutex guards the segment list, sizes, sequence and sync
 * state.  Order: registry lock, then journal mutex; never the reverse.
 */
#ifndef PEERDEX_JOURNAL_H
#define PEERDEX_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jrec.h"

/* Called for each record replayed at start; non-zero stops the replay. */
typedef int journal_replay_fn(void *ctx, const struct jrec *rec);

/*
 * Called for each run of seqs [from, to] that no segment holds, up to the
 * last record (next: the path of the segment after them, NULL past the
 * last one): those before the oldest segment, those between two segments,
 * and those up to `after` past the newest.  Non-zero stops the replay.
 */
typedef int journal_gap_fn(void *ctx, uint64_t from, uint64_t to, const char *next);

/*
 * Read the segments of dir in order, checking every record and that seqs
 * follow on, and call fn for each record whose seq is above `after` (what
 * the snapshot holds).  Missing seqs go to gap(); without one, seqs above
 * `after` that no segment holds stop the replay, naming the missing file.
 * A torn tail of the last segment is cut off (reported on stderr) when
 * `repair`, else only ignored.  *last is the highest seq seen (or `after`).
 * Returns 0, or -1 after printing the file and offset of a damaged record.
 */
int journal_replay(const char *dir, uint64_t after, bool repair, journal_replay_fn *fn,
                   journal_gap_fn *gap, void *ctx, uint64_t *last);

enum sync_mode { SYNC_BATCH, SYNC_ALWAYS };

struct journal_config {
    const char *dir;
    enum sync_mode sync;
    uint64_t compact_bytes; /* a segment this large asks for a compaction */
    uint64_t budget;        /* undelivered bytes allowed while an outbox reads */
    uint64_t snapshot_seq;  /* the snapshot holds everything up to here */
    bool outbox;            /* an outbox reads: keep segments until delivered */
    uint64_t acked_seq;     /* ...and the log server has everything up to here */
    bool paused;            /* the sync thread compacts only after journal_resume() */
    /* Run by the sync thread when a compaction is due (see durable.c);
     * false when it failed (tried again later, with a growing wait). */
    bool (*compact)(void *ctx);
    void *compact_ctx;
};

struct journal;

/*
 * Open dir's journal for appending after seq `last` (from journal_replay),
 * and start its sync thread.  NULL after printing why.
 */
struct journal *journal_open(const struct journal_config *cfg, uint64_t last);

/*
 * Append rec, giving it the next seq (set in rec->seq).  The caller holds
 * the registry lock.  False when nothing was written: a write error, or the
 * disk budget for undelivered entries is spent (said once on stderr).
 */
bool journal_append(struct journal *j, struct jrec *rec);

/*
 * Wait until the record with this seq is durable (fdatasync'd): true; false
 * when an fdatasync failed first (or the journal is stopping).
 */
bool journal_wait_synced(struct journal *j, uint64_t seq);

/*
 * True once an fdatasync of the journal has failed.  From then on every
 * append is refused, nothing more is synced or handed to the outbox, and
 * only a restart (which recovers from what is on disk) clears it.
 */
bool journal_failed(struct journal *j);

/* The first seq of the current segment (for DIR/manifest). */
uint64_t journal_segment(struct journal *j);

/*
 * Close the current segment and start a new one; the caller holds the
 * registry lock, so *last (the last seq written) is exactly what a
 * snapshot taken under that lock holds.  False when no new segment could
 * be made (appends go on in the old one).
 */
bool journal_rotate(struct journal *j, uint64_t *last);

/*
 * Let the sync thread run compactions (journal_config.paused: the start
 * itself appends and compacts first, with no compaction beside it).
 */
void journal_resume(struct journal *j);

/* Record that a snapshot holds everything up to seq (segments may go). */
void journal_snapshot_done(struct journal *j, uint64_t seq);

/* The log server has everything up to seq: its segments may go. */
void journal_set_acked(struct journal *j, uint64_t seq);

/*
 * Sync what is written and stop the sync thread: from then on only the
 * caller rotates or syncs (a final compaction), and waiters wait no more.
 */
void journal_stop_sync(struct journal *j);

/* Stop the sync thread if it runs, sync, close.  NULL is fine. */
void journal_close(struct journal *j);

/* Bytes in the segments on disk (for statistics and tests). */
uint64_t journal_disk_bytes(struct journal *j);

/* The seq of the last record appended (for statistics). */
uint64_t journal_last_seq(struct journal *j);

/*
 * A reader of durable records from a given seq on, across segments (the
 * operation log's outbox).  One reader per journal.
 */
struct jreader;
struct jreader *jreader_open(struct journal *j, uint64_t from);

/*
 * The next durable record into *rec (its strings live until the next
 * call): 1; 0 when none came within wait_ms; -1 on a read error.
 */
int jreader_next(struct jreader *r, struct jrec *rec, long wait_ms);
void jreader_close(struct jreader *r);

#endif
