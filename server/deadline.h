/*
 * deadline.h - the absolute time, on a given clock, that a timed wait
 * (pthread_cond_timedwait) ends: now plus some milliseconds.  Condition
 * variables set to CLOCK_MONOTONIC take CLOCK_MONOTONIC times, default ones
 * CLOCK_REALTIME.
 */
#ifndef PEERDEX_DEADLINE_H
#define PEERDEX_DEADLINE_H

#include <time.h>

/* Now on `clock`, plus ms milliseconds. */
static inline struct timespec deadline_after_ms(clockid_t clock, long ms)
{
    struct timespec t;
    clock_gettime(clock, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

#endif
