/*
 * logstore.h - the operation log file, its lines, and exactly-once writing.
 *
 * The log file holds only protocol lines, `<user> <OPERATION> [<file>]
 * <date-time>`.  Beside it, `<log>.idx` holds commit records, each a line of
 * exactly LOGSTORE_RECORD_LEN bytes: `<origin hex> <seq> <end offset>
 * <checksum>` (fixed widths; the checksum is FNV-1a 64 of what precedes it),
 * meaning "origin's entries up to seq are in the log, which is committed up
 * to end offset".  A record is recognised by the LOGSTORE_RECORD_LEN bytes
 * before each newline, so a torn fragment glued before a record cannot hide
 * it.
 *
 * One store per log: the log file is locked (fcntl, exclusive) before
 * anything is read, written or replaced; a second opener fails, naming the
 * process that holds the lock, having changed nothing.
 *
 * Appending a batch: entries at or below their origin's committed seq are
 * duplicates (skipped); the others must continue it one by one (a new origin
 * starts where its first entry says): a batch with a jump, or with origin or
 * seq 0, is refused whole and nothing is written.  Then the new lines are
 * written at the committed end and the log fdatasync'd, one commit record
 * per origin is written at the idx's good end and the idx fdatasync'd; only
 * then may the batch be acknowledged.  A failed write or sync cuts both
 * files back to their good ends (which needs no free space), and the next
 * write goes at the good end whether or not the cut succeeded.
 *
 * Recovery at open: the committed end is the largest end of all valid
 * records (ends only grow, so a record with a smaller end, forged or stale,
 * cuts nothing); anything after it in the log (lines never acknowledged, or
 * a torn last line) is cut off, and its senders will send it again.  Origin
 * 0 is reserved: its record holds the committed end even before any entry
 * was written.  An idx with no valid record, or one whose end lies beyond
 * the log, is not trusted: the log is kept whole up to its last newline.
 * The idx is rewritten compactly (one record per origin) at every open and
 * reopen, and whenever appends have made it four times longer than that;
 * when there is no room for the rewrite the old idx is kept, cut after its
 * last valid record.
 *
 * A gap: a known origin's entries that the log lost (its files restored
 * from an older copy) can never come again, since their sender had them
 * acknowledged.  After logstore_accept_gap(origin), the first batch in
 * which that origin jumps is taken: one marked line,
 * `- LOG_GAP <origin hex>:<first>-<last> <date-time>`, written and committed
 * with the batch, stands for the missing seqs; then the origin goes on as
 * before and the acceptance is spent.  Nothing else changes.
 *
 * At most LOGSTORE_ORIGINS_MAX origins are remembered; past that, those
 * that appended least recently are forgotten (a forgotten origin that comes
 * back is taken as new: its next batch starts where it says).
 *
 * Not thread-safe: one log server thread owns a store.
 */
#ifndef PEERDEX_LOGSTORE_H
#define PEERDEX_LOGSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Longest line: three 256-byte fields, an operation name, spaces, newline. */
#define LOG_LINE_MAX (3 * 256 + 32 + 8)

/* "<16 hex> <20 digits> <20 digits> <16 hex>\n" */
#define LOGSTORE_RECORD_LEN 76
#define LOGSTORE_ORIGINS_MAX 1024
#define LOGSTORE_REFUSED (-2)

/* One entry as the log server receives it. */
struct log_record {
    uint64_t origin;
    uint64_t seq;
    const char *user;
    const char *operation;
    const char *path;           /* NULL or "" when the operation has none */
    const char *datetime;
};

/*
 * Format one log line (with its newline) into buf; returns its length.
 * Fields are written as received, except that bytes below 0x20 and 0x7f
 * become '?' so that no field can break or forge a line, and an empty
 * field is written as '-' so that the line keeps its shape.  A field is
 * cut at 256 bytes (the wire limit) so the line always fits.
 */
size_t log_format_line(char *buf, size_t cap, const struct log_record *r);

struct logstore;

/*
 * Open (creating if needed) the log at `path` and its idx, recover as
 * described above, and rewrite the idx compactly.  NULL on failure, with
 * the reason in err.
 */
struct logstore *logstore_open(const char *path, char *err, size_t errlen);

/*
 * Append a batch durably, writing each new line also to `echo` (stdout, or
 * NULL).  Entries already committed are skipped.  Returns 0 when the whole
 * batch is committed (the caller may acknowledge), -1 on an I/O error (the
 * store stays consistent: the uncommitted tail is cut off again), or
 * LOGSTORE_REFUSED when the batch breaks the sequence rules (nothing
 * written).  logstore_error() then says why.
 */
int logstore_append(struct logstore *ls, const struct log_record *recs,
                    size_t n, FILE *echo);

/* Why the last append failed or was refused. */
const char *logstore_error(const struct logstore *ls);

/* The number of origins remembered. */
size_t logstore_origins(const struct logstore *ls);

/* True when (origin, seq) is already committed. */
bool logstore_seen(const struct logstore *ls, uint64_t origin, uint64_t seq);

/* Take origin's next jump as a gap (above); origin 0: none. */
void logstore_accept_gap(struct logstore *ls, uint64_t origin);

/* The origin whose gap is still to be taken (0: none, or taken). */
uint64_t logstore_gap_pending(const struct logstore *ls);

/* The seqs the gap line stood for, once it was written. */
void logstore_gap_taken(const struct logstore *ls, uint64_t *first, uint64_t *last);

/* The origin of the last batch refused for a jump (0: none yet). */
uint64_t logstore_jump_origin(const struct logstore *ls);

/* Lines written, and duplicates skipped, since open (for tests and logs). */
uint64_t logstore_written(const struct logstore *ls);
uint64_t logstore_duplicates(const struct logstore *ls);

/*
 * Reopen the log by its path (after log rotation moved it away), keeping
 * the duplicate state; the new file is locked and gets a fresh compact idx.
 * On failure the store keeps the file it had.
 */
int logstore_reopen(struct logstore *ls, char *err, size_t errlen);

void logstore_close(struct logstore *ls);

#endif
