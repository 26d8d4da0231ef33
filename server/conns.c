/*
 * conns.c - the connections: threads that accept and serve them, the
 * connection caps (in all and per source address), running out of
 * descriptors, and ending every connection at shutdown; see conns.h.
 *
 * Threads (leader/follower): every connection thread blocks in accept4() on
 * the one listening socket itself, serves the connection it gets from
 * request to close (handlers.c), then goes back to accept4().  The kernel
 * wakes one waiting thread per connection, so accepting runs on as many
 * cores as threads wait, and in the steady state no thread hands a
 * connection to another.  A thread that takes a connection while no other
 * waits in accept4() (a burst) hands it to a new thread, which serves it
 * from start to end, and goes on accepting.  A thread that has waited
 * IDLE_WAIT_MS (the listening socket's SO_RCVTIMEO) with nothing to do
 * ends unless it is the last one waiting or the first thread (which stays,
 * so that a server at rest keeps exactly one); at most IDLE_THREADS_MAX
 * finished threads go back to waiting, the others end at once.
 *
 * Locks: `server.lock` guards `server.active`, `server.conns` and the list
 * links of every struct conn, `server.sources` and their counts,
 * `server.n_accepting`, `server.n_threads` and `server.stopping`;
 * `server.idle` is signalled when the last connection or the last thread
 * ends.  `server.spare_lock` guards `server.spare` and is held by the one
 * thread dealing with descriptor exhaustion (it never takes `server.lock`
 * meanwhile).  The registry has its own lock (registry.h); none of these
 * is held together with it.
 */
#define _GNU_SOURCE
#include "conns.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define HASH_NONFATAL_OOM 1
#include <uthash.h>

#include "config.h"
#include "clock.h"
#include "metrics.h"
#include "net.h"

#ifndef CONN_STACK_SIZE
#define CONN_STACK_SIZE (64 * 1024)     /* sanitizer builds ask for more */
#endif

#define SHUTDOWN_GRACE_MS 2000          /* for in-flight requests to finish */
#define IDLE_THREADS_MAX 64             /* threads waiting in accept4() at most... */
#define IDLE_WAIT_MS 1000               /* ...each for this long, unless the last */

/* Connections from one source (an address, or an IPv6 network: see
 * net_source_key), in server.sources while any is open. */
struct source {
    UT_hash_handle hh;          /* keyed by key */
    unsigned conns;             /* guarded by server.lock */
    char key[NET_SOURCE_KEY_MAX];
};

/* One connection being served, linked in server.conns; each thread keeps
 * its record from one connection to the next, unless it hands it over. */
struct conn {
    int fd;
    struct conn *prev, *next;   /* guarded by server.lock */
    struct source *source;
    char ip[INET6_ADDRSTRLEN];
};

static struct {
    struct handler_config handler;
    unsigned max_conns;             /* in all */
    unsigned max_per_source;        /* from one source (address or IPv6 network) */
    unsigned v6_prefix;             /* IPv6 sources: networks of this length */
    int lfd;
    pthread_attr_t thread_attr;
    pthread_mutex_t lock;
    pthread_cond_t idle;            /* no connection active, or no thread left */
    unsigned active;                /* guarded by lock */
    struct conn *conns;             /* guarded by lock */
    struct source *sources;         /* guarded by lock */
    unsigned n_accepting;           /* guarded by lock: threads in accept4() */
    unsigned n_threads;             /* guarded by lock: connection threads alive */
    bool stopping;                  /* guarded by lock */
    pthread_mutex_t spare_lock;
    int spare;                      /* guarded by spare_lock: kept for EMFILE */
} server = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .idle = PTHREAD_COND_INITIALIZER,
    .spare_lock = PTHREAD_MUTEX_INITIALIZER,
    .spare = -1,
};

/*
 * Count connection c in, or refuse it (false) past the cap in all or past
 * the cap of its source address; lock held.
 */
static bool admit(struct conn *c)
{
    if (server.active >= server.max_conns) {
        metrics_refused(REFUSED_CAP);
        return false;
    }
    struct source *s;
    char key[NET_SOURCE_KEY_MAX];
    net_source_key(c->ip, server.v6_prefix, key);
    HASH_FIND_STR(server.sources, key, s);
    if (s == NULL) {
        s = calloc(1, sizeof *s);
        if (s == NULL)
            return false;
        memcpy(s->key, key, sizeof key);
        bool add_failed = false;
#undef uthash_nonfatal_oom
#define uthash_nonfatal_oom(obj) (add_failed = true)
        HASH_ADD_STR(server.sources, key, s);
        if (add_failed) {
            free(s);
            return false;
        }
    } else if (s->conns >= server.max_per_source) {
        metrics_refused(REFUSED_PER_SOURCE);
        return false;
    }
    s->conns++;
    c->source = s;
    server.active++;
    metrics_conn_opened();
    c->prev = NULL;
    c->next = server.conns;
    if (server.conns)
        server.conns->prev = c;
    server.conns = c;
    return true;
}

/* Count a finished connection out (waking shutdown if it was the last); lock held. */
static void release(struct conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        server.conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (--c->source->conns == 0) {
        HASH_DEL(server.sources, c->source);
        free(c->source);
    }
    metrics_conn_closed();
    if (--server.active == 0)
        pthread_cond_broadcast(&server.idle);
}

/*
 * Out of descriptors: accept4() then fails at once, whether or not a
 * connection waits, so wait in poll() for one to arrive (or for shutdown).
 * Serve it if a descriptor has come free meanwhile; else close the spare
 * descriptor kept for this, accept the connection and close it, so its
 * client hears a close instead of waiting, and take the spare back.  Each
 * round waits for a new connection (or 10 ms without a spare): no spinning.
 * One thread at a time does this; the others wait for it on spare_lock.
 * Returns a connection to serve, or -1 with errno EAGAIN when IDLE_WAIT_MS
 * passed with nothing to do (the caller's idle rule applies), else EINTR.
 */
static int out_of_descriptors(char *ip, size_t iplen)
{
    struct timespec until = deadline_after_ms(CLOCK_REALTIME, IDLE_WAIT_MS);
    if (pthread_mutex_timedlock(&server.spare_lock, &until) != 0) {
        errno = EAGAIN;
        return -1;
    }
    int fd = -1, err = EINTR;
    if (server.spare < 0) {
        poll(NULL, 0, 10);
        server.spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
        goto out;
    }
    struct pollfd p = {.fd = server.lfd, .events = POLLIN};
    int ready = poll(&p, 1, IDLE_WAIT_MS);
    if (ready == 0)
        err = EAGAIN;
    if (ready != 1 || (p.revents & (POLLHUP | POLLERR | POLLNVAL)))
        goto out;               /* idle, interrupted, or shut down */
    fd = net_accept(server.lfd, ip, iplen);
    if (fd >= 0 || (errno != EMFILE && errno != ENFILE))
        goto out;
    close(server.spare);
    int refused = accept4(server.lfd, NULL, NULL, SOCK_CLOEXEC);
    if (refused >= 0)
        close(refused);
    server.spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
out:
    pthread_mutex_unlock(&server.spare_lock);
    errno = err;
    return fd;
}

static void *conn_thread(void *arg);

/*
 * Wait in accept4() for the next connection (this thread counted in
 * n_accepting by the caller) and count it in.  c is this thread's
 * connection record, or NULL to allocate one.  When no other thread waits
 * in accept4() (a burst), the connection goes to a new thread, which serves
 * it from start to end, and this one goes on accepting, so a burst costs
 * the acceptor one thread start per connection and no hop between threads.
 * Returns the connection to serve, or NULL when this thread should end
 * (shut down, or idle and not needed); lock held on entry and on return,
 * released while waiting.
 */
static struct conn *next_conn(struct conn *c, bool first)
{
    for (;;) {
        pthread_mutex_unlock(&server.lock);
        if (c == NULL)
            c = malloc(sizeof *c);
        int fd = -1, err = ENOMEM;
        if (c != NULL) {
            fd = net_accept(server.lfd, c->ip, sizeof c->ip);
            err = errno;
        }
        if (fd < 0 && (err == EMFILE || err == ENFILE)) {
            fd = out_of_descriptors(c->ip, sizeof c->ip);
            err = errno;
        } else if (fd < 0 && (err == ENOBUFS || err == ENOMEM)) {
            poll(NULL, 0, 10);
        }
        pthread_mutex_lock(&server.lock);
        server.n_accepting--;
        if (server.stopping || (fd < 0 && (err == EINVAL || err == EBADF)) ||
            (fd < 0 && (err == EAGAIN || err == EWOULDBLOCK) && !first &&
             server.n_accepting > 0)) {
            /* Shut down (no longer listening), or idle for IDLE_WAIT_MS
             * while another thread waits. */
            if (fd >= 0)
                close(fd);
            free(c);
            return NULL;
        }
        if (fd >= 0) {
            c->fd = fd;
            if (admit(c)) {
                if (server.n_accepting > 0)
                    return c;   /* others wait for the next: serve this one */
                server.n_threads++;
                pthread_mutex_unlock(&server.lock);
                pthread_t tid;
                bool handed = pthread_create(&tid, &server.thread_attr, conn_thread, c) == 0;
                pthread_mutex_lock(&server.lock);
                if (!handed) {
                    server.n_threads--;
                    return c;   /* no thread to be had: serve it here */
                }
                c = NULL;       /* the new thread's now */
            } else {
                pthread_mutex_unlock(&server.lock);
                close(fd);      /* over a cap: refuse by closing */
                pthread_mutex_lock(&server.lock);
            }
        }
        /* EINTR, ECONNABORTED, a peer's error, a refusal, a hand-over: again */
        server.n_accepting++;
    }
}

/*
 * Connection thread: serve the connection it was started with (none for
 * the first thread), then accept one, serve it, close it, and again, while
 * it is needed.
 */
static void *conn_thread(void *arg)
{
    struct conn *c = arg;
    bool first = c == NULL;
    pthread_mutex_lock(&server.lock);
    for (;;) {
        if (c != NULL) {
            pthread_mutex_unlock(&server.lock);
            handle_connection(&server.handler, c->fd, c->ip);
            pthread_mutex_lock(&server.lock);
            release(c);
            pthread_mutex_unlock(&server.lock);
            /* Unlinked: conns_stop() can no longer reach the descriptor, so
             * closing it outside the lock (a FIN, often the peer's ACK too)
             * delays no one and a reuse of the number is harmless. */
            close(c->fd);
            pthread_mutex_lock(&server.lock);
            if (server.stopping || (!first && server.n_accepting >= IDLE_THREADS_MAX)) {
                free(c);
                break;
            }
        }
        server.n_accepting++;
        if ((c = next_conn(c, first)) == NULL)
            break;
    }
    if (--server.n_threads == 0)
        pthread_cond_broadcast(&server.idle);
    pthread_mutex_unlock(&server.lock);
    return NULL;
}

/* Wait until *count is 0 or ms pass; lock held. */
static void wait_zero(const unsigned *count, int ms)
{
    struct timespec until = deadline_after_ms(CLOCK_REALTIME, ms);
    while (*count > 0 &&
           pthread_cond_timedwait(&server.idle, &server.lock, &until) == 0)
        ;
}

int conns_start(int lfd, const struct handler_config *handler)
{
    server.handler = *handler;
    server.lfd = lfd;
    server.max_conns = (unsigned)config.max_conns;
    server.max_per_source = config.max_per_source ? (unsigned)config.max_per_source
                                                  : UINT_MAX;    /* 0: no cap */
    server.v6_prefix = (unsigned)config.v6_prefix;
    pthread_attr_init(&server.thread_attr);
    pthread_attr_setdetachstate(&server.thread_attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&server.thread_attr,
                              CONN_STACK_SIZE > PTHREAD_STACK_MIN
                                  ? CONN_STACK_SIZE : PTHREAD_STACK_MIN);
    /* accept4() then returns EAGAIN after IDLE_WAIT_MS with nothing to do. */
    struct timeval idle = {.tv_sec = IDLE_WAIT_MS / 1000,
                           .tv_usec = (IDLE_WAIT_MS % 1000) * 1000};
    setsockopt(lfd, SOL_SOCKET, SO_RCVTIMEO, &idle, sizeof idle);
    server.spare = open("/dev/null", O_RDONLY | O_CLOEXEC);

    pthread_t tid;
    pthread_mutex_lock(&server.lock);
    server.n_threads = 1;
    int rc = pthread_create(&tid, &server.thread_attr, conn_thread, NULL);
    if (rc != 0)
        server.n_threads = 0;
    pthread_mutex_unlock(&server.lock);
    return rc == 0 ? 0 : -1;
}

bool conns_stop(void)
{
    pthread_mutex_lock(&server.lock);
    server.stopping = true;
    pthread_mutex_unlock(&server.lock);
    shutdown(server.lfd, SHUT_RDWR);    /* wakes every thread in accept4() */

    /* Let in-flight requests finish for a grace period, then cut the
     * sockets still open so their threads end at once. */
    pthread_mutex_lock(&server.lock);
    wait_zero(&server.active, SHUTDOWN_GRACE_MS);
    for (struct conn *c = server.conns; c != NULL; c = c->next)
        shutdown(c->fd, SHUT_RDWR);
    wait_zero(&server.active, SHUTDOWN_GRACE_MS);
    bool idle = server.active == 0;
    wait_zero(&server.n_threads, SHUTDOWN_GRACE_MS);
    pthread_mutex_unlock(&server.lock);

    pthread_mutex_lock(&server.spare_lock);
    if (server.spare >= 0)
        close(server.spare);
    server.spare = -1;
    pthread_mutex_unlock(&server.spare_lock);
    pthread_attr_destroy(&server.thread_attr);
    return idle;
}
