/*
 * clock.h - the one clock of both programs: milliseconds on the monotonic
 * clock (so a change of the wall clock neither cuts short nor stretches a
 * wait or a deadline), absolute deadlines for timed waits, condition
 * variables that measure on that clock, and the server's own date-time
 * for operations no client sent.  Condition variables set to
 * CLOCK_MONOTONIC take CLOCK_MONOTONIC times, default ones CLOCK_REALTIME.
 */
#ifndef PEERDEX_CLOCK_H
#define PEERDEX_CLOCK_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Milliseconds on the monotonic clock (from an arbitrary start). */
int64_t clock_ms(void);

/* Milliseconds from now until t on the monotonic clock (negative when past). */
long clock_ms_until(struct timespec t);

/* Now on `clock`, plus ms milliseconds. */
struct timespec deadline_after_ms(clockid_t clock, long ms);

/* Initialise cv to time its waits on CLOCK_MONOTONIC; 0 or an error number. */
int cond_init_monotonic(pthread_cond_t *cv);

/* The date-time to log for an operation no client sent (an expiry), in
 * the protocol's shape DD/MM/YYYY HH:MM:SS, local time, into buf (at least
 * 20 bytes). */
void server_datetime(char *buf, size_t len);

#endif
