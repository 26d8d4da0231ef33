/* auth.c - authenticated users' proofs; see auth.h. */
#include "auth.h"

#include <string.h>

#include <nettle/memops.h>

/* The value of one hex digit, or -1. */
static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool auth_hex_parse(const char *s, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int hi = hex_digit(s[2 * i]), lo = hi < 0 ? -1 : hex_digit(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return s[2 * n] == '\0';
}

void auth_hex_write(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

void auth_key_init(struct auth_key *key, const uint8_t secret[AUTH_SECRET_SIZE])
{
    memcpy(key->secret, secret, AUTH_SECRET_SIZE);
    hmac_sha256_set_key(&key->keyed, AUTH_SECRET_SIZE, secret);
}

bool auth_verify(const struct auth_key *key, const struct auth_proof *proof)
{
    struct hmac_sha256_ctx ctx = key->keyed;    /* a copy: the key stays as set */
    uint8_t mac[AUTH_MAC_SIZE];
    hmac_sha256_update(&ctx, strlen(proof->counter_text) + 1,
                       (const uint8_t *)proof->counter_text);
    hmac_sha256_update(&ctx, proof->inner_len, (const uint8_t *)proof->inner);
    hmac_sha256_digest(&ctx, sizeof mac, mac);
    return memeql_sec(mac, proof->mac, sizeof mac) != 0;
}
