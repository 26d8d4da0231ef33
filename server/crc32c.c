/* crc32c.c - byte-at-a-time table CRC-32C; see crc32c.h. */
#include "crc32c.h"

#include <pthread.h>

#define POLY 0x82F63B78u            /* 0x1EDC6F41 bit-reversed */

static uint32_t table[256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

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

uint32_t crc32c(uint32_t crc, const void *p, size_t len)
{
    pthread_once(&table_once, make_table);
    const unsigned char *b = p;
    crc = ~crc;
    while (len--)
        crc = table[(crc ^ *b++) & 0xFF] ^ (crc >> 8);
    return ~crc;
}
