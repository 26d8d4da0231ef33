/*
 * manifest.h - what a state directory must hold, kept in DIR/manifest.
 *
 * The snapshot and the journal segments cannot tell by themselves that a
 * file is gone: a deleted snapshot looks like a directory that never had
 * one, a deleted last segment like a journal that ended earlier.  The
 * manifest says what was there: the seq the snapshot holds (with its
 * counts, so that a loss can be stated) and the first seq of the current
 * segment.  It is one framed record (record.h), replaced whole
 * (file_replace(), fileio.h) after every start and every compaction; between two writes the directory only grows past it, so a
 * reader checks "at least this much is here".
 */
#ifndef PEERDEX_MANIFEST_H
#define PEERDEX_MANIFEST_H

#include <stdbool.h>
#include <stdint.h>

struct manifest {
    uint64_t snapshot_seq;      /* 0: no snapshot */
    uint64_t snapshot_users, snapshot_files, snapshot_bytes;
    uint64_t segment;           /* first seq of the current journal segment */
};

/*
 * Read DIR/manifest into *m.  1 when read, 0 when there is none, -1 after
 * printing why it cannot be used (damaged, unreadable).
 */
int manifest_read(const char *dir, struct manifest *m);

/* Replace DIR/manifest with *m durably; 0, or -1 with errno set. */
int manifest_write(const char *dir, const struct manifest *m);

#endif
