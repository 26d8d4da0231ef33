/*
 * record.h - framed records, the unit of the journal and the snapshot.
 *
 * A record is a 4-byte little-endian payload length, the CRC-32C of those
 * four bytes, the CRC-32C of the payload, then the payload.  The length has
 * a checksum of its own so that a damaged length is never taken for a
 * record that runs past the end of the file.  A reader can tell a whole, intact record
 * from one cut short by the end of the file (a torn tail, left by a crash
 * in the middle of a write) and from a damaged one (a checksum or length
 * that cannot be right).  No I/O here.
 */
#ifndef PEERDEX_RECORD_H
#define PEERDEX_RECORD_H

#include <stddef.h>
#include <stdint.h>

#define RECORD_HEAD 12              /* length and two checksums */
#define RECORD_MAX (64 * 1024)      /* longest payload accepted */

enum record_check {
    RECORD_OK,          /* a whole record with a matching checksum */
    RECORD_TORN,        /* the bytes end before the record does */
    RECORD_BAD          /* a bad length, or a checksum that does not match */
};

/* Write the head of a record whose payload of len bytes follows it. */
void record_seal(unsigned char *head, size_t len);

/*
 * Look at the avail bytes at buf, where a record starts: whole and intact,
 * torn, or bad.  On RECORD_OK, *len is the payload's length.
 */
enum record_check record_check(const unsigned char *buf, size_t avail, uint32_t *len);

/* Little-endian integers, for payloads. */
void put_u16(unsigned char *p, uint16_t v);
void put_u32(unsigned char *p, uint32_t v);
void put_u64(unsigned char *p, uint64_t v);
uint16_t get_u16(const unsigned char *p);
uint32_t get_u32(const unsigned char *p);
uint64_t get_u64(const unsigned char *p);

#endif
