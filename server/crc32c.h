/*
 * crc32c.h - CRC-32C (Castagnoli), the checksum of journal and snapshot
 * records.  glibc has none: the CPU's crc32 instruction (x86-64 with
 * SSE4.2, chosen at run time) or a table.
 */
#ifndef PEERDEX_CRC32C_H
#define PEERDEX_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/*
 * Extend crc (0 to start) over len bytes at p.  crc32c(0, "123456789", 9)
 * is 0xE3069283, the check value of the standard.
 */
uint32_t crc32c(uint32_t crc, const void *p, size_t len);

/* The same through the table whatever the CPU has (tests compare the two). */
uint32_t crc32c_portable(uint32_t crc, const void *p, size_t len);

#endif
