/*
 * logstore.h - the operation log file, its lines, and exactly-once writing.
 *
 * The log file holds only protocol lines, `<user> <OPERATION> [<file>]
 * <date-time>`.  Beside it, `<log>.idx` holds commit records, one text line
 * each: `<origin hex> <seq> <end offset>`, meaning "origin's entries up to
 * seq are in the log, which is committed up to end offset".
 *
 * Appending a batch: skip entries already written (seq <= the origin's last
 * committed seq), write the new lines, fdatasync the log, append one commit
 * record per origin in the batch, fdatasync the idx; only then may the batch
 * be acknowledged.  Recovery at open: the last complete commit record gives
 * the committed end of the log; anything after it (lines never
 * acknowledged, or a torn last line) is cut off, and its senders will send
 * it again.  Origin 0 is reserved: its record holds the committed end even
 * before any entry was written.  A crash at any point therefore leaves a (log, idx) pair from
 * which no acknowledged entry is lost and none is written twice.  The idx is
 * rewritten compactly (one record per origin) at every open and reopen.
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
 * store stays consistent: the uncommitted tail is cut off again).
 */
int logstore_append(struct logstore *ls, const struct log_record *recs,
                    size_t n, FILE *echo);

/* True when (origin, seq) is already committed. */
bool logstore_seen(const struct logstore *ls, uint64_t origin, uint64_t seq);

/* Lines written, and duplicates skipped, since open (for tests and logs). */
uint64_t logstore_written(const struct logstore *ls);
uint64_t logstore_duplicates(const struct logstore *ls);

/*
 * Reopen the log by its path (after log rotation moved it away), keeping
 * the duplicate state; the new file gets a fresh compact idx.
 */
int logstore_reopen(struct logstore *ls, char *err, size_t errlen);

void logstore_close(struct logstore *ls);

#endif
