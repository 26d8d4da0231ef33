/*
 * console.c - the server's console lines, written by a thread of their own;
 * see console.h.
 *
 * Handlers append lines to a pending buffer and return; the console thread
 * swaps the pending buffer for an empty one and writes what it took in one
 * write() per round, outside the lock.  After a write it lingers a moment
 * so that under load one write carries many lines, and handlers do not wake
 * it for each line (it is not idle while it lingers).  A line that finds
 * its stream's buffer full is dropped and counted; the writer follows what
 * it writes next with one line saying how many were dropped.
 */
#include "console.h"

#include "clock.h"
#include "diag.h"
#include "fileio.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PENDING_DEFAULT (1 << 20)   /* bytes waiting before lines are dropped */
#define PENDING_MIN 256
#define LINE_STACK 512              /* longer lines are formatted on the heap */
#define LINGER_MS 1                 /* gather lines this long after a write */

/*
 * One buffered stream: `pending` collects lines, the writer alone uses
 * `out` (the buffer it is writing).
 */
struct stream {
    int fd;
    char *pending, *out;
    size_t len;                     /* bytes in pending */
    unsigned long long dropped;     /* lines dropped since the last note */
};

/*
 * `lock` guards every field; `wake` is signalled when a line arrives for
 * an idle writer, or when stopping; `room` when the writer has taken the
 * pending bytes, or has ended.  stream[0] is stdout (the protocol's
 * lines), stream[1] stderr (notes such as refused requests).  While
 * `running` is false, lines go straight out.
 */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake, room;
    struct stream stream[2];
    bool running;                   /* the writer takes lines */
    bool idle;                      /* the writer waits for lines */
    bool stopping;
    size_t cap;                     /* bytes of each buffer */
} con = {.lock = PTHREAD_MUTEX_INITIALIZER, .room = PTHREAD_COND_INITIALIZER,
         .stream = {{.fd = STDOUT_FILENO}, {.fd = STDERR_FILENO}}};

static pthread_t writer;

/* Write all of buf to fd; a failing fd loses the rest of buf only. */
static void write_out(int fd, const char *buf, size_t len)
{
    (void)write_all(fd, buf, len);
}

/* Bytes pending on both streams; lock held. */
static size_t pending_len(void)
{
    return con.stream[0].len + con.stream[1].len;
}

/* Wait on `wake` up to LINGER_MS, or until stopping or half full; lock held. */
static void linger(void)
{
    struct timespec until = deadline_after_ms(CLOCK_MONOTONIC, LINGER_MS);
    while (!con.stopping && con.stream[0].len < con.cap / 2 &&
           con.stream[1].len < con.cap / 2 &&
           pthread_cond_timedwait(&con.wake, &con.lock, &until) == 0)
        ;
}

/* The console thread: write pending lines in order until stopped and empty. */
static void *writer_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&con.lock);
    for (;;) {
        while (pending_len() == 0 && con.stream[0].dropped == 0 &&
               con.stream[1].dropped == 0 && !con.stopping) {
            con.idle = true;
            pthread_cond_wait(&con.wake, &con.lock);
            con.idle = false;
        }
        if (pending_len() == 0 && con.stream[0].dropped == 0 && con.stream[1].dropped == 0)
            break;                  /* stopping, and everything written */
        size_t len[2];
        unsigned long long dropped[2];
        for (int i = 0; i < 2; i++) {
            struct stream *st = &con.stream[i];
            char *buf = st->pending;
            len[i] = st->len;
            dropped[i] = st->dropped;
            st->pending = st->out;
            st->out = buf;
            st->len = 0;
            st->dropped = 0;
        }
        pthread_cond_broadcast(&con.room);
        pthread_mutex_unlock(&con.lock);
        for (int i = 0; i < 2; i++) {
            write_out(con.stream[i].fd, con.stream[i].out, len[i]);
            if (dropped[i] > 0) {
                char note[128];
                int n = snprintf(note, sizeof note, "console: %llu lines dropped "
                                 "(%s was not read fast enough)\n", dropped[i],
                                 i == 0 ? "stdout" : "stderr");
                write_out(con.stream[i].fd, note, (size_t)n);
            }
        }
        pthread_mutex_lock(&con.lock);
        linger();
    }
    con.running = false;            /* from now on lines go straight out */
    pthread_cond_broadcast(&con.room);
    pthread_mutex_unlock(&con.lock);
    return NULL;
}

/* Free both streams' buffers (the writer is not running). */
static void free_buffers(void)
{
    for (int i = 0; i < 2; i++) {
        free(con.stream[i].pending);
        free(con.stream[i].out);
        con.stream[i].pending = con.stream[i].out = NULL;
    }
}

int console_start(size_t bytes)
{
    cond_init_monotonic(&con.wake);
    con.cap = bytes == 0 ? PENDING_DEFAULT : bytes < PENDING_MIN ? PENDING_MIN : bytes;
    bool ok = true;
    for (int i = 0; i < 2; i++) {
        con.stream[i].dropped = 0;
        con.stream[i].pending = malloc(con.cap);
        con.stream[i].out = malloc(con.cap);
        ok = ok && con.stream[i].pending != NULL && con.stream[i].out != NULL;
    }
    con.running = true;
    if (!ok || pthread_create(&writer, NULL, writer_main, NULL) != 0) {
        con.running = false;
        free_buffers();
        return -1;
    }
    return 0;
}

/* Queue one formatted line on stream `which` (0 stdout, 1 stderr). */
static void console_vline(int which, const char *fmt, va_list args)
{
    char stack[LINE_STACK], *line = stack;
    va_list ap;
    va_copy(ap, args);
    /* va_copy() initialised ap: clang-tidy 14's analyzer misses it. */
    int n = vsnprintf(stack, sizeof stack, fmt, ap);    // NOLINT(clang-analyzer-valist.Uninitialized)
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof stack) {    /* a long line: format it whole */
        line = malloc((size_t)n + 1);
        if (line == NULL)
            return;
        va_copy(ap, args);
        vsnprintf(line, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    size_t len = (size_t)n;
    struct stream *st = &con.stream[which];

    pthread_mutex_lock(&con.lock);
    /* Only a line longer than the whole buffer waits (for the lines before
     * it to be taken) and is then written directly; no server line is. */
    while (con.running && len > con.cap && st->len > 0)
        pthread_cond_wait(&con.room, &con.lock);
    bool queued = con.running && len <= con.cap;
    if (queued && st->len + len > con.cap) {
        st->dropped++;              /* full: the stream is that slow */
    } else if (queued) {
        memcpy(st->pending + st->len, line, len);
        st->len += len;
    }
    if (queued && con.idle)
        pthread_cond_signal(&con.wake);
    pthread_mutex_unlock(&con.lock);
    if (!queued)
        write_out(st->fd, line, len);   /* no writer (yet, or any more) */
    if (line != stack)
        free(line);
}

void console_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    console_vline(0, fmt, ap);
    va_end(ap);
}

void diag(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    console_vline(1, fmt, ap);
    va_end(ap);
}

void diag_errno(const char *what)
{
    diag("%s: %s\n", what, strerror(errno));
}

void console_stop(void)
{
    pthread_mutex_lock(&con.lock);
    bool running = con.running;
    con.stopping = true;
    if (running)                    /* `wake` exists once console_start() ran */
        pthread_cond_signal(&con.wake);
    pthread_mutex_unlock(&con.lock);
    if (!running)
        return;
    pthread_join(writer, NULL);
    /* The writer cleared `running` under the lock: no one uses these now. */
    free_buffers();
}

/*
 * The length of the UTF-8 sequence at s (1..4) and its code point, or 0 when
 * s does not start a well-formed one (overlong forms and surrogates included).
 */
static size_t utf8_decode(const unsigned char *s, unsigned *cp)
{
    size_t len;
    unsigned min;
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    } else if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        len = 2, min = 0x80, *cp = s[0] & 0x1f;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        len = 3, min = 0x800, *cp = s[0] & 0x0f;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        len = 4, min = 0x10000, *cp = s[0] & 0x07;
    } else {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)      /* also stops at the NUL */
            return 0;
        *cp = (*cp << 6) | (s[i] & 0x3f);
    }
    if (*cp < min || *cp > 0x10ffff || (*cp >= 0xd800 && *cp <= 0xdfff))
        return 0;
    return len;
}

/* True for the code points console_escape() writes as escapes. */
static bool invisible(unsigned cp)
{
    return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0xad || cp == 0x61c ||
           cp == 0x180e || (cp >= 0x200b && cp <= 0x200f) ||
           (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2060 && cp <= 0x206f) ||
           cp == 0xfeff || (cp >= 0xfff9 && cp <= 0xfffb);
}

const char *console_escape(const char *in, char *out, size_t outsz)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t used = 0;
    if (outsz == 0)
        return out;
    while (*s) {
        char esc[8];
        const char *piece = (const char *)s;
        unsigned cp;
        size_t len = utf8_decode(s, &cp), n = len;
        if (len == 0) {
            n = (size_t)snprintf(esc, sizeof esc, "\\x%02x", *s);
            piece = esc, len = 1;
        } else if (invisible(cp)) {
            n = (size_t)snprintf(esc, sizeof esc, "\\u%04x", cp);
            piece = esc;
        }
        if (used + n >= outsz)
            break;
        memcpy(out + used, piece, n);
        used += n;
        s += len;
    }
    out[used] = '\0';
    return out;
}
