/* record.c - length + CRC-32C framing; see record.h. */
#include "record.h"

#include "crc32c.h"

void put_u16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

uint16_t get_u16(const unsigned char *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

uint32_t get_u32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

void record_seal(unsigned char *head, size_t len)
{
    put_u32(head, (uint32_t)len);
    put_u32(head + 4, crc32c(0, head, 4));
    put_u32(head + 8, crc32c(0, head + RECORD_HEAD, len));
}

enum record_check record_check(const unsigned char *buf, size_t avail, uint32_t *len)
{
    if (avail < 8)
        return RECORD_TORN;         /* not even the length and its checksum */
    uint32_t n = get_u32(buf);
    if (crc32c(0, buf, 4) != get_u32(buf + 4) || n == 0 || n > RECORD_MAX)
        return RECORD_BAD;
    if (avail < RECORD_HEAD)
        return RECORD_TORN;
    if (avail - RECORD_HEAD < n)
        return RECORD_TORN;
    if (crc32c(0, buf + RECORD_HEAD, n) != get_u32(buf + 8))
        return RECORD_BAD;
    *len = n;
    return RECORD_OK;
}
