/* activity.c - the ring of the last operations; see activity.h. */
#include "activity.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* slot[i].lock guards slot[i].a; `next` is atomic. */
static struct {
    pthread_mutex_t lock;
    struct activity a;
} slot[ACTIVITY_MAX];
static atomic_uint_fast64_t next;       /* the last sequence number claimed */
static bool started;                    /* set before threads start */

void activity_start(void)
{
    for (size_t i = 0; i < ACTIVITY_MAX; i++)
        pthread_mutex_init(&slot[i].lock, NULL);
    started = true;
}

void activity_record(const char *op, unsigned code, const char *user, const char *path)
{
    if (!started)
        return;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    uint64_t seq = atomic_fetch_add_explicit(&next, 1, memory_order_relaxed) + 1;
    struct activity *a = &slot[seq % ACTIVITY_MAX].a;
    pthread_mutex_lock(&slot[seq % ACTIVITY_MAX].lock);
    if (a->seq < seq) {         /* else a writer a whole ring later came first */
        a->seq = seq;
        a->time_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
        a->op = op;
        a->code = code;
        snprintf(a->user, sizeof a->user, "%s", user ? user : "");
        snprintf(a->path, sizeof a->path, "%s", path ? path : "");
    }
    pthread_mutex_unlock(&slot[seq % ACTIVITY_MAX].lock);
}

size_t activity_recent(struct activity *out, size_t max)
{
    if (!started)
        return 0;
    uint64_t last = atomic_load_explicit(&next, memory_order_relaxed);
    size_t n = 0;
    /* A slot still being written by its claimer is skipped this time. */
    for (uint64_t s = last; s > 0 && last - s < ACTIVITY_MAX && n < max; s--) {
        pthread_mutex_lock(&slot[s % ACTIVITY_MAX].lock);
        if (slot[s % ACTIVITY_MAX].a.seq == s)
            out[n++] = slot[s % ACTIVITY_MAX].a;
        pthread_mutex_unlock(&slot[s % ACTIVITY_MAX].lock);
    }
    return n;
}
