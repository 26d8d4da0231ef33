/*
 * outbox.h - the operation log's source with a state directory: the
 * journal itself, read from where the log server's acknowledgments end.
 *
 * It owns two files of DIR: `origin` (this index's id at the log server,
 * made once, 16 hex digits) and `outbox` (the seq up to which the log
 * server has the journal: 8 bytes and their CRC-32C, rewritten in place
 * after each acknowledged call; a damaged one reads as 0, and the log
 * server then drops what it has already).  Entries are the journal's
 * durable records in order, refused and listing operations too; journal
 * seqs have no gaps, so the seqs sent continue one by one as the log
 * server requires.
 */
#ifndef PEERDEX_OUTBOX_H
#define PEERDEX_OUTBOX_H

#include "journal.h"
#include "logsource.h"

struct outbox;

/*
 * Open the outbox of state directory dir over its open journal j (which
 * keeps what is not yet delivered); its source into *src.  NULL after
 * saying why.
 */
struct outbox *outbox_open(const char *dir, struct journal *j, struct log_source *src);

/* The seq the log server has, as DIR/outbox says (0 when there is none). 0 or -1. */
int outbox_acked(const char *dir, uint64_t *acked);

/*
 * The operation log can never get the seqs up to seq (they are lost, and
 * the log server refuses a jump): go on under a new origin, DIR/origin
 * replaced, DIR/outbox set to seq.  0, or -1 after saying why.
 */
int outbox_skip(const char *dir, uint64_t seq);

/* Close it (the sender has stopped); what was not delivered stays in the
 * journal for the next start.  NULL is fine. */
void outbox_close(struct outbox *o);

#endif
