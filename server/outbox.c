/* outbox.c - the journal as the operation log's source; see outbox.h. */
#define _GNU_SOURCE
#include "outbox.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "crc32c.h"
#include "diag.h"
#include "fileio.h"
#include "record.h"

#define PENDING_MAX 1024            /* records read ahead of the acknowledgments */

/* A journal record copied out of the reader (its strings live in data[]). */
struct copy {
    struct log_item item;
    int64_t at_ms;                  /* when it was read (clock_ms()) */
    char data[];
};

/* Only the sender's thread touches an open outbox (after outbox_open()). */
struct outbox {
    struct journal *journal;
    struct jreader *reader;
    char *dir;
    int fd;                         /* DIR/outbox, rewritten in place */
    struct copy *pending[PENDING_MAX];  /* read, not yet acknowledged, oldest first */
    size_t npending;
    /*
     * A record read but not yet copied (out of memory).  It is copied
     * before anything else is read: its strings live until the next
     * jreader_next(), and skipping it would make the seqs sent jump,
     * which the log server refuses.
     */
    struct jrec held;
    bool holding;
    /* For backlog(), read by any thread: the seq the log server has, and
     * when the oldest pending record was read (0: none pending). */
    _Atomic uint64_t acked;
    _Atomic int64_t oldest_ms;
};

/* Read DIR/origin, or make one and keep it durably.  0, or -1 after saying why. */
static int load_origin(const char *dir, uint64_t *origin)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/origin", dir);
    FILE *f = fopen(path, "r");
    if (f != NULL) {
        char line[32], *end;
        bool ok = fgets(line, sizeof line, f) != NULL;
        fclose(f);
        errno = 0;
        *origin = ok ? strtoull(line, &end, 16) : 0;
        if (ok && errno == 0 && end != line && *end == '\n' && *origin != 0)
            return 0;
        diag("server: %s is damaged; refusing to start\n", path);
        return -1;
    }
    *origin = log_origin_new();
    char text[32];
    int n = snprintf(text, sizeof text, "%016" PRIx64 "\n", *origin);
    if (file_replace(path, text, (size_t)n, 0600) < 0) {
        diag("server: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* The acknowledged seq in the open DIR/outbox fd (a damaged one reads as 0). */
static uint64_t read_acked(int fd)
{
    unsigned char b[12];
    if (pread(fd, b, sizeof b, 0) == (ssize_t)sizeof b && crc32c(0, b, 8) == get_u32(b + 8))
        return get_u64(b);
    return 0;
}

/* Write seq as the acknowledged one into the open DIR/outbox fd.  0 or -1. */
static int write_acked(int fd, uint64_t seq)
{
    unsigned char b[12];
    put_u64(b, seq);
    put_u32(b + 8, crc32c(0, b, 8));
    return pwrite_all(fd, b, sizeof b, 0);
}

/* Open DIR/outbox into o->fd and read the acknowledged seq.  0, or -1 after saying why. */
static int load_acked(struct outbox *o, uint64_t *acked)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/outbox", o->dir);
    o->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (o->fd < 0) {
        diag("server: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    *acked = read_acked(o->fd);
    return 0;
}

int outbox_acked(const char *dir, uint64_t *acked)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/outbox", dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    *acked = 0;
    if (fd < 0 && errno == ENOENT)
        return 0;
    if (fd < 0) {
        diag("server: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    *acked = read_acked(fd);
    close(fd);
    return 0;
}

int outbox_skip(const char *dir, uint64_t seq)
{
    char path[4096], text[32];
    uint64_t origin = log_origin_new();
    int n = snprintf(text, sizeof text, "%016" PRIx64 "\n", origin);
    snprintf(path, sizeof path, "%s/origin", dir);
    if (file_replace(path, text, (size_t)n, 0600) < 0) {
        diag("server: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    snprintf(path, sizeof path, "%s/outbox", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || write_acked(fd, seq) < 0 || fsync(fd) < 0) {
        diag("server: cannot write %s: %s\n", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    diag("server: %s: the operation log goes on under origin %016" PRIx64 " after seq %"
         PRIu64 "\n", dir, origin, seq);
    return 0;
}

/* The log server has everything up to seq: keep that in DIR, and let the
 * journal drop the segments it covers. */
static void set_acked(struct outbox *o, uint64_t seq)
{
    if (write_acked(o->fd, seq) < 0)
        diag("server: cannot write %s/outbox: %s\n", o->dir, strerror(errno));
    journal_set_acked(o->journal, seq);
}

/* A copy of s (NULL as "") at *at, advancing it. */
static const char *put(char **at, const char *s)
{
    char *start = *at;
    size_t n = strlen(s ? s : "") + 1;
    memcpy(start, s ? s : "", n);
    *at += n;
    return start;
}

/* A copy of the held record, or NULL. */
static struct copy *copy_held(const struct jrec *r)
{
    const char *op = op_name(r->op);
    struct copy *c = malloc(sizeof *c + strlen(r->user) + strlen(op) + strlen(r->path) +
                            strlen(r->datetime) + 4);
    if (c == NULL)
        return NULL;
    char *at = c->data;
    c->item = (struct log_item){.seq = r->seq, .user = put(&at, r->user),
                                .op = put(&at, op), .path = put(&at, r->path),
                                .datetime = put(&at, r->datetime)};
    c->at_ms = clock_ms();
    return c;
}

/* The source's next(): top up `pending` from the journal, then hand it out. */
static size_t outbox_next(void *ctx, struct log_item *out, size_t max, long wait_ms)
{
    struct outbox *o = ctx;
    int r = 0;
    while (o->npending < PENDING_MAX) {
        if (!o->holding &&
            (r = jreader_next(o->reader, &o->held, o->npending ? 0 : wait_ms)) <= 0)
            break;
        o->holding = true;
        struct copy *c = copy_held(&o->held);
        if (c == NULL) {
            r = -1;                 /* copy it again, after the next acknowledgment */
            break;
        }
        if (o->npending == 0)
            o->oldest_ms = c->at_ms;
        o->pending[o->npending++] = c;
        o->holding = false;
    }
    if (o->npending == 0 && r < 0) {
        diag("server: cannot %s the journal for the operation log\n",
             o->holding ? "copy a record of" : "read");
        poll(NULL, 0, wait_ms < 1000 ? (int)wait_ms : 1000);
    }
    size_t n = o->npending < max ? o->npending : max;
    for (size_t i = 0; i < n; i++)
        out[i] = o->pending[i]->item;
    return n;
}

/* The source's acknowledge(): the log server has the first n pending records. */
static void outbox_acknowledge(void *ctx, size_t n)
{
    struct outbox *o = ctx;
    set_acked(o, o->pending[n - 1]->item.seq);
    o->acked = o->pending[n - 1]->item.seq;
    o->oldest_ms = n < o->npending ? o->pending[n]->at_ms : 0;
    for (size_t i = 0; i < n; i++)
        free(o->pending[i]);
    memmove(&o->pending[0], &o->pending[n], (o->npending - n) * sizeof(struct copy *));
    o->npending -= n;
}

/*
 * The source's backlog(): the journal's records past what the log server
 * has, and when the oldest of those read so far was read (a record not
 * yet durable is not read: at most about a second younger).
 */
static void outbox_backlog(void *ctx, uint64_t *entries, int64_t *oldest_ms)
{
    struct outbox *o = ctx;
    uint64_t last = journal_last_seq(o->journal), acked = o->acked;
    *entries = last > acked ? last - acked : 0;
    *oldest_ms = o->oldest_ms;
}

struct outbox *outbox_open(const char *dir, struct journal *j, struct log_source *src)
{
    struct outbox *o = calloc(1, sizeof *o);
    uint64_t origin, acked;
    if (o == NULL || (o->dir = strdup(dir)) == NULL) {
        diag("server: no memory for the outbox\n");
        free(o);
        return NULL;
    }
    o->journal = j;
    o->fd = -1;
    if (load_origin(dir, &origin) < 0 || load_acked(o, &acked) < 0)
        goto fail;
    journal_set_acked(j, acked);
    o->acked = acked;
    /* Resume where the log server is. */
    if ((o->reader = jreader_open(j, acked + 1)) == NULL) {
        diag("server: cannot read the journal for the operation log\n");
        goto fail;
    }
    *src = (struct log_source){.next = outbox_next, .acknowledge = outbox_acknowledge,
                               .backlog = outbox_backlog, .ctx = o, .origin = origin, .where = "the journal"};
    return o;

fail:
    outbox_close(o);
    return NULL;
}

void outbox_close(struct outbox *o)
{
    if (o == NULL)
        return;
    for (size_t i = 0; i < o->npending; i++)
        free(o->pending[i]);
    if (o->reader != NULL)
        jreader_close(o->reader);
    if (o->fd >= 0)
        close(o->fd);
    free(o->dir);
    free(o);
}
