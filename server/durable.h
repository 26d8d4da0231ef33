/*
 * durable.h - the index's state directory (-d DIR): the snapshot, the
 * journal and the operation log's outbox position, tied to the registry.
 *
 * DIR holds: snapshot (snapshot.h), journal.<seq> segments (journal.h),
 * manifest (what DIR must hold, manifest.h) and, once a log server is
 * used, the outbox's origin and outbox files (outbox.h).  The running
 * server flocks DIR itself (one server per directory).  A start loads the
 * snapshot, replays the journal after it, checks that nothing the index or
 * the operation log needs is missing, and installs the registry's journal
 * hook; from then on every operation is journaled under the registry
 * lock.  One instance per process.
 */
#ifndef PEERDEX_DURABLE_H
#define PEERDEX_DURABLE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "journal.h"
#include "registry.h"

#define DURABLE_BUDGET_DEFAULT (1ULL << 30)         /* undelivered journal bytes */
#define DURABLE_COMPACT_DEFAULT (64ULL << 20)       /* a segment this big: snapshot */

struct durable_config {
    const char *dir;
    enum sync_mode sync;
    uint64_t budget;
    uint64_t compact_bytes;
    bool outbox;            /* the operation log reads the journal (outbox.h) */
    bool accept_loss;       /* start even with files missing (said, marked) */
};

/*
 * Create or open DIR, load its state into reg (empty, no hook yet), and
 * journal every operation from now on.  0, or -1 after saying why.
 */
int durable_open(const struct durable_config *cfg, struct registry *reg);

/* True between durable_open() and durable_close(). */
bool durable_on(void);

/*
 * After an operation, before its reply: under -S always, wait until the
 * journal record with this seq is durable.  False when its sync failed:
 * the operation must not be acknowledged.  True at once otherwise.
 */
bool durable_wait(uint64_t seq);

/*
 * True once a journal fdatasync has failed: operations that change the
 * index are refused until a restart (reads go on).  For /metrics.
 */
bool durable_failed(void);

/* The journal, for the outbox (outbox.h); NULL when off. */
struct journal *durable_journal(void);

/*
 * For the metrics: bytes of the journal segments and of the snapshot file
 * now; zeros without a state directory.  Any thread; takes no registry lock.
 */
void durable_sizes(uint64_t *journal_bytes, uint64_t *snapshot_bytes);

/* Sync, write a final snapshot and close (so a restart replays nothing). */
void durable_close(void);

/*
 * The operator's --forget-key: open dir (refused while a server holds its
 * lock), make user a classic user again, and close with a snapshot that no
 * longer holds its secret.  0, or -1 after saying why.
 */
int durable_forget_key(const char *dir, const char *user);

/*
 * Print the state in dir (users, connections, files) to out, changing
 * nothing and taking no lock (a server may be running): 0, or -1 when no
 * whole state could be read (something missing or damaged, said why).
 */
int durable_dump(const char *dir, FILE *out);

#endif
