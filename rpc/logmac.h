/*
 * logmac.h - who may append to the operation log: a shared key and
 * HMAC-SHA256 (nettle) over each batch.
 *
 * The index server and the log server read the same key file (-k FILE on
 * both).  On each connection the log server hands out a fresh random nonce;
 * the sender signs its n-th call on that connection (n = 0, 1, ...) with
 *
 *     HMAC-SHA256(key, nonce || n as 8 bytes big-endian || XDR(batch))
 *
 * so the key never travels, and a recorded call cannot be replayed, neither
 * on another connection (another nonce) nor on the same one (another n).
 *
 * The log server's answer to such a call (LOGRPC_APPEND_PROVEN) is signed
 * in turn, under a key derived from the shared one (so that no request MAC
 * can ever serve as a reply MAC, whatever nonce an impostor hands out):
 *
 *     ack key = HMAC-SHA256(key, "peerdex log acknowledgment")
 *     HMAC-SHA256(ack key, nonce || n as 8 bytes || status as 4 bytes
 *                          || the call's MAC)
 *
 * The call's MAC covers the nonce, n and every byte of the batch, so the
 * reply's MAC says "the holder of the key has exactly this batch".
 */
#ifndef PEERDEX_LOGMAC_H
#define PEERDEX_LOGMAC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "logrpc.h"

#define LOGMAC_KEY_MIN 16
#define LOGMAC_KEY_MAX 1024

struct logmac_key {
    size_t len;
    uint8_t bytes[LOGMAC_KEY_MAX];
};

/*
 * Read a key file: its bytes as they are (a trailing newline dropped),
 * LOGMAC_KEY_MIN to LOGMAC_KEY_MAX of them.  The file must be a regular file
 * (a FIFO, device, directory or symbolic link is refused without being
 * read, so nothing can make the start wait) that neither group nor others
 * may read or write.  0, or -1 with the reason in err.
 */
int logmac_load_key(const char *path, struct logmac_key *key, char *err, size_t errlen);

/* The MAC of a batch, as above, into mac.  false if out of memory. */
bool logmac_sign(const struct logmac_key *key, const char nonce[LOG_NONCE_SIZE],
                 uint64_t call, const log_batch *batch, char mac[LOG_MAC_SIZE]);

/* True when mac is the batch's (compared in constant time). */
bool logmac_check(const struct logmac_key *key, const char nonce[LOG_NONCE_SIZE],
                  uint64_t call, const log_batch *batch, const char mac[LOG_MAC_SIZE]);

/* The MAC of the log server's answer `status` to the call signed `call_mac`. */
void logmac_ack(const struct logmac_key *key, const char nonce[LOG_NONCE_SIZE],
                uint64_t call, log_status status, const char call_mac[LOG_MAC_SIZE],
                char mac[LOG_MAC_SIZE]);

/* True when mac is that answer's (compared in constant time). */
bool logmac_ack_check(const struct logmac_key *key, const char nonce[LOG_NONCE_SIZE],
                      uint64_t call, log_status status, const char call_mac[LOG_MAC_SIZE],
                      const char mac[LOG_MAC_SIZE]);

#endif
