/*
 * jrec.h - the journal's record codec: one operation as the journal holds
 * it, framed as a record (record.h).  No I/O.
 *
 * Payload: seq (8 bytes), status (1), port (2), then seven NUL-terminated
 * strings: the operation's wire name, date-time, user, path, description,
 * target, IP; then, for an authenticated user's operation, its counter (8)
 * and, for its REGISTER, its secret (32).  The name is kept as text on disk (so a state directory
 * written by an older server still loads); in memory it is the enum.
 */
#ifndef PEERDEX_JREC_H
#define PEERDEX_JREC_H

#include <stddef.h>
#include <stdint.h>

#include "record.h"
#include "request.h"

/* One operation as the journal holds it.  Absent strings are "". */
struct jrec {
    uint64_t seq;
    unsigned status;        /* the registry's enum reg_status of the outcome */
    unsigned port;          /* CONNECT */
    enum op op;
    const char *datetime, *user, *path, *description, *target, *ip;
    /* Authenticated users (AUTH extension): the proven counter (0: none)
     * and, for the REGISTER of such a user, its secret (NULL: none).
     * Written after the strings only when present (8 bytes, then 32), so
     * older records still read. */
    uint64_t counter;
    const uint8_t *secret;
};

/* The largest framed operation record (seven fields of at most 256 bytes). */
#define JREC_MAX 2048

/* Frame rec into buf (JREC_MAX bytes); its size, or 0 when it does not fit. */
size_t jrec_encode(const struct jrec *rec, unsigned char *buf);

/* Decode a payload of len bytes; strings point into it.  0, or -1 if malformed. */
int jrec_decode(const unsigned char *payload, size_t len, struct jrec *rec);

#endif
