/*
 * decimal.h - the one parser of whole numbers written in decimal, for
 * command-line options, environment variables and the protocol's port field.
 *
 * Digits only: no sign, no blanks, no base prefix, and no more digits than
 * the largest value allowed has (so "000080" is refused where 65535 is the
 * limit, as the protocol wants), then the value must lie in [lo, hi].
 */
#ifndef PEERDEX_DECIMAL_H
#define PEERDEX_DECIMAL_H

#include <stdbool.h>

/* Parse s into *out when it is a decimal number in [lo, hi]; else false. */
static inline bool decimal_parse(const char *s, unsigned long long lo,
                                 unsigned long long hi, unsigned long long *out)
{
    unsigned digits_max = 1;
    for (unsigned long long h = hi; h >= 10; h /= 10)
        digits_max++;
    unsigned long long v = 0;
    unsigned n = 0;
    for (; *s != '\0'; s++, n++) {
        if (*s < '0' || *s > '9' || n == digits_max)
            return false;
        v = v * 10 + (unsigned long long)(*s - '0');
    }
    if (n == 0 || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

#endif
