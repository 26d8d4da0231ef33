/*
 * snapshot.h - the registry as one file, DIR/snapshot, written whole or not
 * at all (a temporary file, fsync, rename, fsync of the directory).
 *
 * The file is a run of framed records (record.h): a head naming the format,
 * one record per user (with its connection), one per file after its owner,
 * and an end record with the journal seq the snapshot holds and the counts.
 * A start loads it, then replays the journal records after that seq.
 */
#ifndef PEERDEX_SNAPSHOT_H
#define PEERDEX_SNAPSHOT_H

#include <stdint.h>

#include "registry.h"

/* A snapshot being built in memory (while the registry lock is held). */
struct snapshot;

struct snapshot *snapshot_new(void);
void snapshot_add_user(struct snapshot *s, const char *name, const char *ip,
                       unsigned port);      /* ip NULL: not connected */
/* After a user: its secret and counter (an authenticated user, AUTH). */
void snapshot_add_key(struct snapshot *s, const uint8_t *secret, uint64_t counter);
void snapshot_add_file(struct snapshot *s, const char *path, const char *description);
/* Close it: it holds the journal up to seq. */
void snapshot_end(struct snapshot *s, uint64_t seq);
/* The users and files added so far. */
void snapshot_counts(const struct snapshot *s, uint64_t *users, uint64_t *files);

/* Write it as DIR/snapshot, durably; 0, or -1 with errno set.  Its size in *bytes. */
int snapshot_write(struct snapshot *s, const char *dir, uint64_t *bytes);
void snapshot_free(struct snapshot *s);

/*
 * Load DIR/snapshot into an empty reg (no journal hook); *seq is the seq it
 * holds, 0 when there is none.  Returns 0, or -1 after printing the file
 * and the offset of what is wrong.
 */
int snapshot_load(const char *dir, struct registry *reg, uint64_t *seq);

#endif
