/* jrec.c - the journal's record codec; see jrec.h. */
#include "jrec.h"

#include <stdbool.h>
#include <string.h>

#include "auth.h"

/* Append s (NULL as "") with its NUL at *at if it fits before end. */
static bool put_str(unsigned char **at, const unsigned char *end, const char *s)
{
    size_t n = strlen(s ? s : "") + 1;
    if ((size_t)(end - *at) < n)
        return false;
    memcpy(*at, s ? s : "", n);
    *at += n;
    return true;
}

size_t jrec_encode(const struct jrec *rec, unsigned char *buf)
{
    unsigned char *p = buf + RECORD_HEAD, *end = buf + JREC_MAX;
    if (op_name(rec->op) == NULL)
        return 0;
    put_u64(p, rec->seq);
    p[8] = (unsigned char)rec->status;
    put_u16(p + 9, (uint16_t)rec->port);
    p += 11;
    if (!put_str(&p, end, op_name(rec->op)) || !put_str(&p, end, rec->datetime) ||
        !put_str(&p, end, rec->user) || !put_str(&p, end, rec->path) ||
        !put_str(&p, end, rec->description) || !put_str(&p, end, rec->target) ||
        !put_str(&p, end, rec->ip))
        return 0;
    if (rec->counter != 0 || rec->secret != NULL) {
        if (end - p < 8 + AUTH_SECRET_SIZE)
            return 0;
        put_u64(p, rec->counter);
        p += 8;
        if (rec->secret != NULL) {
            memcpy(p, rec->secret, AUTH_SECRET_SIZE);
            p += AUTH_SECRET_SIZE;
        }
    }
    size_t len = (size_t)(p - buf) - RECORD_HEAD;
    record_seal(buf, len);
    return RECORD_HEAD + len;
}

/* The NUL-terminated string at *at before end, advancing; NULL if none. */
static const char *get_str(const unsigned char **at, const unsigned char *end)
{
    const unsigned char *nul = memchr(*at, '\0', (size_t)(end - *at));
    if (nul == NULL)
        return NULL;
    const char *s = (const char *)*at;
    *at = nul + 1;
    return s;
}

int jrec_decode(const unsigned char *payload, size_t len, struct jrec *rec)
{
    if (len < 11)
        return -1;
    const unsigned char *p = payload + 11, *end = payload + len;
    rec->seq = get_u64(payload);
    rec->status = payload[8];
    rec->port = get_u16(payload + 9);
    const char *name = get_str(&p, end);
    const char **fields[] = {&rec->datetime, &rec->user, &rec->path,
                             &rec->description, &rec->target, &rec->ip};
    if (name == NULL || (rec->op = op_by_name(name)) == OP_UNKNOWN)
        return -1;
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if ((*fields[i] = get_str(&p, end)) == NULL)
            return -1;
    rec->counter = 0;
    rec->secret = NULL;
    size_t rest = (size_t)(end - p);
    if (rest == 8 || rest == 8 + AUTH_SECRET_SIZE) {
        rec->counter = get_u64(p);
        rec->secret = rest > 8 ? p + 8 : NULL;
        p = end;
    }
    return p == end && rec->seq > 0 ? 0 : -1;
}
