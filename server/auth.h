/*
 * auth.h - the proofs of authenticated users (the AUTH extension,
 * docs/protocol.md): a user's 256-bit secret, and checking that a request
 * carries HMAC-SHA256(secret, counter, request bytes).  Pure: no I/O, no
 * allocation, no state, so the registry can call it under its lock.
 */
#ifndef PEERDEX_AUTH_H
#define PEERDEX_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nettle/hmac.h>

#define AUTH_SECRET_SIZE 32         /* bytes; 64 hex digits on the wire */
#define AUTH_MAC_SIZE 32            /* HMAC-SHA256 */

/* A user's key, with nettle's keyed state computed once at registration so
 * that checking a request costs the message's blocks only. */
struct auth_key {
    uint8_t secret[AUTH_SECRET_SIZE];
    struct hmac_sha256_ctx keyed;
};

/* What an AUTH request claims: its counter, its MAC, and the bytes of the
 * inner request the MAC covers. */
struct auth_proof {
    uint64_t counter;
    const char *counter_text;       /* the counter field as sent */
    uint8_t mac[AUTH_MAC_SIZE];
    const char *inner;
    size_t inner_len;
};

/* Parse exactly 2*n lowercase or uppercase hex digits of s into out. */
bool auth_hex_parse(const char *s, uint8_t *out, size_t n);

/* Write n bytes as 2*n lowercase hex digits and a NUL into out. */
void auth_hex_write(const uint8_t *in, size_t n, char *out);

/* Set up key from a secret. */
void auth_key_init(struct auth_key *key, const uint8_t secret[AUTH_SECRET_SIZE]);

/*
 * True when proof's MAC is HMAC-SHA256 under key of the counter field (its
 * decimal text and its NUL, exactly as sent) followed by the inner request's
 * bytes; compared in constant time.
 */
bool auth_verify(const struct auth_key *key, const struct auth_proof *proof);

#endif
