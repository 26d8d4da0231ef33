/* crc32c.c - CRC-32C, by the CPU's crc32 instruction where there is one,
 * else by a table; see crc32c.h. */
#include "crc32c.h"

#include <pthread.h>
#include <string.h>

#define POLY 0x82F63B78u            /* 0x1EDC6F41 bit-reversed */

static uint32_t table[256];

/* Fill the table: the CRC of each byte value on its own. */
static void make_table(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ POLY : c >> 1;
        table[i] = c;
    }
}

/* Byte at a time through the table (crc not inverted: the callers do). */
static uint32_t by_table(uint32_t crc, const unsigned char *b, size_t len)
{
    while (len--)
        crc = table[(crc ^ *b++) & 0xFF] ^ (crc >> 8);
    return crc;
}

#if defined(__x86_64__) && defined(__GNUC__)
/* Eight bytes at a time with SSE4.2's crc32 instruction (same polynomial). */
__attribute__((target("sse4.2")))
static uint32_t by_instruction(uint32_t crc, const unsigned char *b, size_t len)
{
    uint64_t c = crc;
    for (; len >= 8; b += 8, len -= 8) {
        uint64_t word;
        memcpy(&word, b, 8);
        c = __builtin_ia32_crc32di(c, word);
    }
    crc = (uint32_t)c;
    while (len--)
        crc = __builtin_ia32_crc32qi(crc, *b++);
    return crc;
}
#endif

static uint32_t (*extend)(uint32_t, const unsigned char *, size_t) = by_table;
static pthread_once_t pick_once = PTHREAD_ONCE_INIT;

/* Choose the instruction when the CPU has it, else the table. */
static void pick(void)
{
    make_table();
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("sse4.2"))
        extend = by_instruction;
#endif
}

uint32_t crc32c(uint32_t crc, const void *p, size_t len)
{
    pthread_once(&pick_once, pick);
    return ~extend(~crc, p, len);
}

uint32_t crc32c_portable(uint32_t crc, const void *p, size_t len)
{
    pthread_once(&pick_once, pick);
    return ~by_table(~crc, p, len);
}
