/* logqueue.c - the in-memory source of the operation log; see logqueue.h. */
#include "logqueue.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "diag.h"

/* One queued entry; its strings live in data[]. */
struct entry {
    struct entry *next;
    struct log_item item;
    int64_t at_ms;                  /* when it was queued (clock_ms()) */
    char data[];
};

/*
 * The queue.  `lock` guards every field; `wake` is signalled when an entry
 * arrives while the sender waits in next().  The entries from head to tail
 * belong to the queue; the sender reads the strings of the entries it is
 * sending without the lock (only acknowledge() removes or frees entries,
 * and submitters never change queued entries).  Lock order: the registry
 * lock (the hook runs under it), then this one.
 */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct entry *head, *tail;
    size_t count, max;
    uint64_t next_seq;
    bool waiting;                   /* the sender waits for entries */
    bool closed;
} q = {.lock = PTHREAD_MUTEX_INITIALIZER, .next_seq = 1};

/* A copy of s (NULL as "") at *at, advancing it. */
static const char *put(char **at, const char *s)
{
    char *start = *at;
    size_t n = strlen(s ? s : "") + 1;
    memcpy(start, s ? s : "", n);
    *at += n;
    return start;
}

/* A new entry holding copies of the strings (any may be NULL), or NULL. */
static struct entry *entry_new(const char *user, const char *op, const char *path,
                               const char *datetime)
{
    size_t size = strlen(user ? user : "") + strlen(op ? op : "") +
                  strlen(path ? path : "") + strlen(datetime ? datetime : "") + 4;
    struct entry *e = malloc(sizeof *e + size);
    if (e == NULL)
        return NULL;
    char *at = e->data;
    e->item.user = put(&at, user);
    e->item.op = put(&at, op);
    e->item.path = put(&at, path);
    e->item.datetime = put(&at, datetime);
    e->next = NULL;
    e->at_ms = clock_ms();
    return e;
}

bool logqueue_op(void *ctx, struct reg_op *op, enum reg_status st)
{
    (void)ctx;
    (void)st;                   /* refused operations are logged too */
    char now[32];
    const char *datetime = op->datetime;
    if (datetime == NULL) {
        server_datetime(now, sizeof now);
        datetime = now;
    }
    struct entry *e = entry_new(op->user, op_name(op->op), op->path, datetime);
    if (e == NULL)
        return false;
    pthread_mutex_lock(&q.lock);
    bool room = q.count < q.max && !q.closed;
    if (room) {
        e->item.seq = op->seq = q.next_seq++;
        if (q.tail)
            q.tail->next = e;
        else
            q.head = e;
        q.tail = e;
        q.count++;
        if (q.waiting)
            pthread_cond_signal(&q.wake);
    }
    pthread_mutex_unlock(&q.lock);
    if (!room)
        free(e);
    return room;
}

/* The source's next(): the first entries of the queue. */
static size_t queue_next(void *ctx, struct log_item *out, size_t max, long wait_ms)
{
    (void)ctx;
    pthread_mutex_lock(&q.lock);
    if (q.count == 0 && wait_ms > 0) {
        struct timespec until = deadline_after_ms(CLOCK_MONOTONIC, wait_ms);
        q.waiting = true;
        while (q.count == 0 && pthread_cond_timedwait(&q.wake, &q.lock, &until) == 0)
            ;
        q.waiting = false;
    }
    size_t n = 0;
    for (struct entry *e = q.head; e && n < max; e = e->next)
        out[n++] = e->item;
    pthread_mutex_unlock(&q.lock);
    return n;
}

/* The source's acknowledge(): drop the first n entries. */
static void queue_acknowledge(void *ctx, size_t n)
{
    (void)ctx;
    struct entry *done = NULL;
    pthread_mutex_lock(&q.lock);
    for (size_t i = 0; i < n; i++) {
        struct entry *e = q.head;
        q.head = e->next;
        e->next = done;
        done = e;
    }
    if (q.head == NULL)
        q.tail = NULL;
    q.count -= n;
    pthread_mutex_unlock(&q.lock);
    while (done) {
        struct entry *next = done->next;
        free(done);
        done = next;
    }
}

/* The source's backlog(): the entries queued, and when the first was. */
static void queue_backlog(void *ctx, uint64_t *entries, int64_t *oldest_ms)
{
    (void)ctx;
    pthread_mutex_lock(&q.lock);
    *entries = q.count;
    *oldest_ms = q.head != NULL ? q.head->at_ms : 0;
    pthread_mutex_unlock(&q.lock);
}

int logqueue_open(size_t max, struct log_source *src)
{
    if (cond_init_monotonic(&q.wake) != 0)
        return -1;
    q.max = max;
    static char where[64];
    snprintf(where, sizeof where, "the queue (at most %zu)", max);
    *src = (struct log_source){.next = queue_next, .acknowledge = queue_acknowledge,
                               .backlog = queue_backlog, .origin = log_origin_new(), .where = where};
    return 0;
}

void logqueue_close(void)
{
    pthread_mutex_lock(&q.lock);
    q.closed = true;
    size_t lost = q.count;
    struct entry *e = q.head;
    q.head = q.tail = NULL;
    q.count = 0;
    pthread_mutex_unlock(&q.lock);
    while (e) {
        struct entry *next = e->next;
        free(e);
        e = next;
    }
    if (lost)
        diag("server: %zu operation log entries could not be delivered before exit\n", lost);
}
