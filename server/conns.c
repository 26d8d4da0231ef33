/*
 * conns.c - the connections: the accepting thread, one detached thread per
 * connection (reused when one waits), the connection cap, running out of
 * descriptors, and ending every connection at shutdown; see conns.h.
 *
 * Threads: one accepting thread blocks in accept4(); each accepted
 * connection gets a small-stack detached thread of its own that serves it
 * (handlers.c).  A thread whose connection is done waits a moment to be
 * handed the next one before it exits (a thread cache: no clone and exit
 * per connection under load).
 *
 * Locks: `server.lock` guards `server.active`, `server.conns` and the list
 * links of every struct conn, the list of idle threads with the connection
 * each is handed, `server.n_threads` and `server.stopping`; `server.idle`
 * is signalled when the last connection or the last thread ends.  The
 * registry has its own lock (registry.h); the two are never held together.
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
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "deadline.h"
#include "net.h"

#ifndef CONN_STACK_SIZE
#define CONN_STACK_SIZE (64 * 1024)     /* sanitizer builds ask for more */
#endif

#define SHUTDOWN_GRACE_MS 2000          /* for in-flight requests to finish */
#define IDLE_THREADS_MAX 64             /* finished connection threads kept... */
#define IDLE_WAIT_MS 1000               /* ...this long, waiting for a connection */

/* One connection being served, linked in server.conns. */
struct conn {
    int fd;
    struct conn *prev, *next;   /* guarded by server.lock */
    char ip[64];
};

/*
 * A connection thread between two connections, waiting (on its own stack)
 * for conn_start() to hand it the next one.
 */
struct idle_thread {
    pthread_cond_t wake;
    struct conn *conn;          /* the connection handed over; guarded by server.lock */
    struct idle_thread *next;   /* in server.idle_threads; guarded by server.lock */
};

static struct {
    struct handler_config handler;
    unsigned max_conns;
    pthread_t acceptor;             /* the accepting thread */
    pthread_attr_t thread_attr;
    pthread_mutex_t lock;
    pthread_cond_t idle;            /* no connection active, or no thread left */
    unsigned active;                /* guarded by lock */
    struct conn *conns;             /* guarded by lock */
    struct idle_thread *idle_threads;   /* guarded by lock; most recent first */
    unsigned n_idle;                /* guarded by lock: length of idle_threads */
    unsigned n_threads;             /* guarded by lock: connection threads alive */
    bool stopping;                  /* guarded by lock: idle threads must end */
} server = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .idle = PTHREAD_COND_INITIALIZER,
};

/*
 * Unlink a finished connection, count it out (waking shutdown if it was the
 * last), then close it outside the lock: once unlinked, drain_connections()
 * can no longer reach its descriptor, so a reuse of the number is harmless,
 * and the close (a FIN, often the peer's ACK too) delays no one else.
 */
static void conn_finish(struct conn *c)
{
    pthread_mutex_lock(&server.lock);
    if (c->prev)
        c->prev->next = c->next;
    else
        server.conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (--server.active == 0)
        pthread_cond_broadcast(&server.idle);
    pthread_mutex_unlock(&server.lock);
    close(c->fd);
    free(c);
}

/*
 * After a connection: wait up to IDLE_WAIT_MS for conn_start() to hand this
 * thread the next one, unless IDLE_THREADS_MAX threads wait already or the
 * server is stopping.  Returns the next connection, or NULL when the thread
 * should end (it is then counted out).  Reusing a thread saves the clone,
 * the exit and the stack's unmapping that a new thread per connection costs.
 */
static struct conn *next_conn(struct idle_thread *self)
{
    struct timespec until = deadline_after_ms(CLOCK_MONOTONIC, IDLE_WAIT_MS);
    pthread_mutex_lock(&server.lock);
    self->conn = NULL;
    if (!server.stopping && server.n_idle < IDLE_THREADS_MAX) {
        self->next = server.idle_threads;
        server.idle_threads = self;
        server.n_idle++;
        while (self->conn == NULL && !server.stopping &&
               pthread_cond_timedwait(&self->wake, &server.lock, &until) == 0)
            ;
        if (self->conn == NULL) {   /* still listed: take this thread out */
            struct idle_thread **p = &server.idle_threads;
            while (*p != self)
                p = &(*p)->next;
            *p = self->next;
            server.n_idle--;
        }
    }
    struct conn *next = self->conn;
    if (next == NULL && --server.n_threads == 0)
        pthread_cond_broadcast(&server.idle);
    pthread_mutex_unlock(&server.lock);
    return next;
}

/* Connection thread: serve connections, one at a time, while handed some. */
static void *conn_thread(void *arg)
{
    struct conn *c = arg;
    struct idle_thread self;
    cond_init_monotonic(&self.wake);
    do {
        handle_connection(&server.handler, c->fd, c->ip);
        conn_finish(c);
    } while ((c = next_conn(&self)) != NULL);
    pthread_cond_destroy(&self.wake);
    return NULL;
}

/* Take an accepted socket: refuse it past the cap, else give it a thread. */
static void conn_start(int fd, const char *ip)
{
    struct conn *c = calloc(1, sizeof *c);
    if (c == NULL) {
        close(fd);
        return;
    }
    c->fd = fd;
    snprintf(c->ip, sizeof c->ip, "%s", ip);

    pthread_mutex_lock(&server.lock);
    if (server.active >= server.max_conns) {
        pthread_mutex_unlock(&server.lock);
        close(fd);              /* over the cap: refuse by closing */
        free(c);
        return;
    }
    server.active++;
    c->next = server.conns;
    if (server.conns)
        server.conns->prev = c;
    server.conns = c;
    struct idle_thread *t = server.idle_threads;
    if (t != NULL) {            /* a thread waits: hand it the connection */
        server.idle_threads = t->next;
        server.n_idle--;
        t->conn = c;
        pthread_cond_signal(&t->wake);
    } else {
        server.n_threads++;
    }
    pthread_mutex_unlock(&server.lock);
    if (t != NULL)
        return;

    pthread_t tid;
    if (pthread_create(&tid, &server.thread_attr, conn_thread, c) != 0) {
        conn_finish(c);         /* no thread to be had: close it */
        pthread_mutex_lock(&server.lock);
        if (--server.n_threads == 0)
            pthread_cond_broadcast(&server.idle);
        pthread_mutex_unlock(&server.lock);
    }
}

/* What the accepting thread owns: the listening socket and the spare. */
struct acceptor {
    int lfd;
    int spare;                  /* kept open for running out of descriptors */
};

/*
 * Out of descriptors: accept4() then fails at once, whether or not a
 * connection waits, so wait in poll() for one to arrive (or for shutdown).
 * Serve it if a descriptor has come free meanwhile; else close the spare
 * descriptor kept for this, accept the connection and close it, so its
 * client hears a close instead of waiting, and take the spare back.  Each
 * round waits for a new connection (or 10 ms without a spare): no spinning.
 */
static void out_of_descriptors(int lfd, int *spare)
{
    if (*spare < 0) {
        poll(NULL, 0, 10);
        *spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
        return;
    }
    struct pollfd p = {.fd = lfd, .events = POLLIN};
    if (poll(&p, 1, -1) != 1 || (p.revents & (POLLHUP | POLLERR | POLLNVAL)))
        return;                 /* interrupted, or shut down */
    char ip[INET6_ADDRSTRLEN];
    int fd = net_accept(lfd, ip, sizeof ip);
    if (fd >= 0) {
        conn_start(fd, ip);
        return;
    }
    if (errno != EMFILE && errno != ENFILE)
        return;
    close(*spare);
    fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);    /* one waits: no block */
    if (fd >= 0)
        close(fd);
    *spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/*
 * The accepting thread: block in accept4() and hand each connection to a
 * thread of its own, one system call per connection as in the simplest
 * server.  It ends when main() shuts the listening socket down (accept4()
 * then fails with EINVAL).
 */
static void *accept_main(void *arg)
{
    struct acceptor *a = arg;
    char ip[INET6_ADDRSTRLEN];

    for (;;) {
        int fd = net_accept(a->lfd, ip, sizeof ip);
        if (fd >= 0)
            conn_start(fd, ip);
        else if (errno == EMFILE || errno == ENFILE)
            out_of_descriptors(a->lfd, &a->spare);
        else if (errno == ENOBUFS || errno == ENOMEM)
            poll(NULL, 0, 10);
        else if (errno == EINVAL || errno == EBADF)
            break;              /* shut down: no longer listening */
        /* EINTR, ECONNABORTED, a peer's error: go on */
    }
    if (a->spare >= 0)
        close(a->spare);
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

/*
 * Shut down: end the idle threads, let in-flight requests finish for a
 * grace period, then cut the sockets still open so their threads end at
 * once.  Returns true when no connection is left (so none uses the
 * registry any more).
 */
static bool drain_connections(void)
{
    pthread_mutex_lock(&server.lock);
    server.stopping = true;
    for (struct idle_thread *t = server.idle_threads; t != NULL; t = t->next)
        pthread_cond_signal(&t->wake);
    wait_zero(&server.active, SHUTDOWN_GRACE_MS);
    for (struct conn *c = server.conns; c != NULL; c = c->next)
        shutdown(c->fd, SHUT_RDWR);
    wait_zero(&server.active, SHUTDOWN_GRACE_MS);
    bool idle = server.active == 0;
    wait_zero(&server.n_threads, SHUTDOWN_GRACE_MS);
    pthread_mutex_unlock(&server.lock);
    return idle;
}

/* What the accepting thread owns: the listening socket and the spare. */
static struct acceptor acc;

int conns_start(int lfd, const struct handler_config *handler)
{
    server.handler = *handler;
    server.max_conns = (unsigned)config.max_conns;
    pthread_attr_init(&server.thread_attr);
    pthread_attr_setdetachstate(&server.thread_attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&server.thread_attr,
                              CONN_STACK_SIZE > PTHREAD_STACK_MIN
                                  ? CONN_STACK_SIZE : PTHREAD_STACK_MIN);
    acc.lfd = lfd;
    acc.spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (pthread_create(&server.acceptor, NULL, accept_main, &acc) != 0)
        return -1;
    return 0;
}

bool conns_stop(void)
{
    shutdown(acc.lfd, SHUT_RDWR);   /* wakes the blocked accept4() */
    pthread_join(server.acceptor, NULL);
    bool idle = drain_connections();
    pthread_attr_destroy(&server.thread_attr);
    return idle;
}
