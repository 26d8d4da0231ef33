/*
 * deadline.h - timed waits: a condition variable that measures on the
 * monotonic clock (so a change of the wall clock neither cuts short nor
 * stretches a wait), and the absolute time a wait ends: now plus some
 * milliseconds.  Condition variables set to CLOCK_MONOTONIC take
 * CLOCK_MONOTONIC times, default ones CLOCK_REALTIME.
 */
#ifndef PEERDEX_DEADLINE_H
#define PEERDEX_DEADLINE_H

#include <pthread.h>
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

/* Initialise cv to time its waits on CLOCK_MONOTONIC; 0 or an error number. */
static inline int cond_init_monotonic(pthread_cond_t *cv)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
    return rc;
}

#endif
