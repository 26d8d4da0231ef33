/* logmac.c - key file and batch signatures for the operation log; see logmac.h. */
#include "logmac.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nettle/hmac.h>
#include <nettle/memops.h>

/*
 * The one key reader of both programs.  Opened non-blocking, so that a FIFO
 * or a device cannot hang the start (open of a FIFO waits for a writer);
 * only a regular file is read, and only after its size is checked.
 */
int logmac_load_key(const char *path, struct logmac_key *key, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
    struct stat st;
    if (fd < 0) {
        snprintf(err, errlen, "cannot open the key file %s: %s", path, strerror(errno));
        return -1;
    }
    /* The key, a trailing newline, and one byte more to see a longer file. */
    uint8_t buf[LOGMAC_KEY_MAX + 2];
    int rc = -1;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "the key file %s is not a regular file", path);
    } else if (st.st_mode & 077) {
        snprintf(err, errlen, "the key file %s may be read by others (mode %03o); "
                 "chmod 600 it", path, (unsigned)(st.st_mode & 0777));
    } else if (st.st_size > LOGMAC_KEY_MAX + 1) {
        snprintf(err, errlen, "the key file %s is longer than %d bytes", path,
                 LOGMAC_KEY_MAX);
    } else {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n > 0 && buf[n - 1] == '\n')
            n--;
        if (n < 0)
            snprintf(err, errlen, "cannot read the key file %s: %s", path, strerror(errno));
        else if (n > LOGMAC_KEY_MAX)        /* it grew since fstat */
            snprintf(err, errlen, "the key file %s is longer than %d bytes", path,
                     LOGMAC_KEY_MAX);
        else if (n < LOGMAC_KEY_MIN)
            snprintf(err, errlen, "the key file %s holds fewer than %d bytes", path,
                     LOGMAC_KEY_MIN);
        else {
            memcpy(key->bytes, buf, (size_t)n);
            key->len = (size_t)n;
            rc = 0;
        }
    }
    explicit_bzero(buf, sizeof buf);
    close(fd);
    return rc;
}

/* The call number as 8 bytes, big-endian. */
static void put_u64(uint8_t out[8], uint64_t v)
{
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)(v >> (56 - 8 * i));
}

bool logmac_sign(const struct logmac_key *key, const char nonce[LOG_NONCE_SIZE],
                 uint64_t call, const log_batch *batch, char mac[LOG_MAC_SIZE])
{
    /* The batch's XDR encoding, exactly as it travels. */
    unsigned long size = xdr_sizeof((xdrproc_t)xdr_log_batch, (void *)batch);
    char *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return false;
    XDR x;
    xdrmem_create(&x, buf, (u_int)size, XDR_ENCODE);
    bool ok = xdr_log_batch(&x, (log_batch *)batch);
    if (ok) {
        uint8_t n[8];
        put_u64(n, call);
        struct hmac_sha256_ctx ctx;
        hmac_sha256_set_key(&ctx, key->len, key->bytes);
        hmac_sha256_update(&ctx, LOG_NONCE_SIZE, (const uint8_t *)nonce);
        hmac_sha256_update(&ctx, sizeof n, n);
        hmac_sha256_update(&ctx, xdr_getpos(&x), (const uint8_t *)buf);
        hmac_sha256_digest(&ctx, LOG_MAC_SIZE, (uint8_t *)mac);
    }
    xdr_destroy(&x);
    free(buf);
    return ok;
}

bool logmac_check(const struct logmac_key *key, const char nonce[LOG_NONCE_SIZE],
                  uint64_t call, const log_batch *batch, const char mac[LOG_MAC_SIZE])
{
    char want[LOG_MAC_SIZE];
    return logmac_sign(key, nonce, call, batch, want) &&
           memeql_sec(want, mac, LOG_MAC_SIZE);
}

void logmac_ack(const struct logmac_key *key, const char nonce[LOG_NONCE_SIZE],
                uint64_t call, log_status status, const char call_mac[LOG_MAC_SIZE],
                char mac[LOG_MAC_SIZE])
{
    static const char label[] = "peerdex log acknowledgment";
    uint8_t ack_key[SHA256_DIGEST_SIZE], n[8], st[4];
    struct hmac_sha256_ctx ctx;
    hmac_sha256_set_key(&ctx, key->len, key->bytes);
    hmac_sha256_update(&ctx, sizeof label - 1, (const uint8_t *)label);
    hmac_sha256_digest(&ctx, sizeof ack_key, ack_key);
    put_u64(n, call);
    uint32_t s = (uint32_t)status;
    for (int i = 0; i < 4; i++)
        st[i] = (uint8_t)(s >> (24 - 8 * i));
    hmac_sha256_set_key(&ctx, sizeof ack_key, ack_key);
    hmac_sha256_update(&ctx, LOG_NONCE_SIZE, (const uint8_t *)nonce);
    hmac_sha256_update(&ctx, sizeof n, n);
    hmac_sha256_update(&ctx, sizeof st, st);
    hmac_sha256_update(&ctx, LOG_MAC_SIZE, (const uint8_t *)call_mac);
    hmac_sha256_digest(&ctx, LOG_MAC_SIZE, (uint8_t *)mac);
    explicit_bzero(ack_key, sizeof ack_key);
}

bool logmac_ack_check(const struct logmac_key *key, const char nonce[LOG_NONCE_SIZE],
                      uint64_t call, log_status status, const char call_mac[LOG_MAC_SIZE],
                      const char mac[LOG_MAC_SIZE])
{
    char want[LOG_MAC_SIZE];
    logmac_ack(key, nonce, call, status, call_mac, want);
    return memeql_sec(want, mac, LOG_MAC_SIZE);
}
