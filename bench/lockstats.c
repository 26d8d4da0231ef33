/*
 * lockstats.c - how long each operation holds the registry lock: a
 * wrapper linked into build/bench/server_lockstats only (make bench), so
 * the registry itself carries no profiling.
 *
 * The link wraps the registry's entry points (registry_apply() and the
 * others below: each notes which call this thread is in) and the pthread
 * mutex calls (-Wl,--wrap=...).  Within a registry call, the first mutex
 * the thread takes is the registry lock (every registry function takes it
 * before anything else); each hold of it is timed from just after it is
 * taken to just before it is released, a wait on a condition variable
 * (a listing build) not counted.  The counters are updated while the lock
 * is still held, so the lock itself serializes them.  At exit, one line
 * per kind of call seen goes to stderr.
 */
#include <pthread.h>
#include <stdio.h>
#include <time.h>

#include "registry.h"

enum { K_EXPIRY = OP_COUNT, K_RESTORE, K_VISIT, K_ENDPOINTS, K_VIEW, K_KINDS };

static struct { unsigned long long n, ns, max_ns; } stats[K_KINDS];

static __thread int kind = -1;              /* the registry call this thread is in */
static __thread pthread_mutex_t *reg_lock;  /* its lock, once taken in this call */
static __thread pthread_mutex_t *held;      /* ...while this thread holds it */
static __thread struct timespec since;

int __real_pthread_mutex_lock(pthread_mutex_t *m);
int __real_pthread_mutex_unlock(pthread_mutex_t *m);
int __real_pthread_cond_wait(pthread_cond_t *c, pthread_mutex_t *m);
enum reg_status __real_registry_apply(struct registry *reg, struct reg_op *op,
                                      struct listing **out);
enum reg_status __real_registry_restore_files(struct registry *reg, const char *user,
                                              size_t n, const char *const *paths,
                                              const char *const *descriptions, size_t *done);
void __real_registry_visit(struct registry *reg, const struct registry_visitor *v);
enum reg_status __real_registry_endpoint(struct registry *reg, const char *user,
                                         struct reg_endpoint *out);
enum reg_status __real_registry_endpoints(struct registry *reg,
                                          struct reg_endpoint **out, size_t *count);
enum reg_status __real_registry_view(struct registry *reg, struct reg_user_view *out,
                                     size_t max, size_t *n, struct reg_totals *totals);

/* The hold that ends now, into this call's counters. */
static void hold_end(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    unsigned long long ns = (unsigned long long)((now.tv_sec - since.tv_sec) * 1000000000LL +
                                                 (now.tv_nsec - since.tv_nsec));
    stats[kind].n++;
    stats[kind].ns += ns;
    if (ns > stats[kind].max_ns)
        stats[kind].max_ns = ns;
    held = NULL;
}

int __wrap_pthread_mutex_lock(pthread_mutex_t *m)
{
    int rc = __real_pthread_mutex_lock(m);
    if (kind >= 0 && held == NULL && (reg_lock == NULL || reg_lock == m)) {
        reg_lock = held = m;
        clock_gettime(CLOCK_MONOTONIC, &since);
    }
    return rc;
}

int __wrap_pthread_mutex_unlock(pthread_mutex_t *m)
{
    if (held != NULL && held == m)
        hold_end();
    return __real_pthread_mutex_unlock(m);
}

int __wrap_pthread_cond_wait(pthread_cond_t *c, pthread_mutex_t *m)
{
    if (held == NULL || held != m)
        return __real_pthread_cond_wait(c, m);
    hold_end();
    int rc = __real_pthread_cond_wait(c, m);
    held = m;
    clock_gettime(CLOCK_MONOTONIC, &since);
    return rc;
}

/* Run a registry call as kind k. */
#define AS(k, call) do { kind = (k); reg_lock = NULL; call; kind = -1; } while (0)

enum reg_status __wrap_registry_apply(struct registry *reg, struct reg_op *op,
                                      struct listing **out)
{
    enum reg_status st;
    int k = op->op == OP_DISCONNECT && op->session != 0 ? K_EXPIRY : (int)op->op;
    AS(k >= 0 && k < K_KINDS ? k : K_EXPIRY, st = __real_registry_apply(reg, op, out));
    return st;
}

enum reg_status __wrap_registry_restore_files(struct registry *reg, const char *user,
                                              size_t n, const char *const *paths,
                                              const char *const *descriptions, size_t *done)
{
    enum reg_status st;
    AS(K_RESTORE, st = __real_registry_restore_files(reg, user, n, paths, descriptions, done));
    return st;
}

void __wrap_registry_visit(struct registry *reg, const struct registry_visitor *v)
{
    AS(K_VISIT, __real_registry_visit(reg, v));
}

enum reg_status __wrap_registry_endpoint(struct registry *reg, const char *user,
                                         struct reg_endpoint *out)
{
    enum reg_status st;
    AS(K_ENDPOINTS, st = __real_registry_endpoint(reg, user, out));
    return st;
}

enum reg_status __wrap_registry_endpoints(struct registry *reg,
                                          struct reg_endpoint **out, size_t *count)
{
    enum reg_status st;
    AS(K_ENDPOINTS, st = __real_registry_endpoints(reg, out, count));
    return st;
}

enum reg_status __wrap_registry_view(struct registry *reg, struct reg_user_view *out,
                                     size_t max, size_t *n, struct reg_totals *totals)
{
    enum reg_status st;
    AS(K_VIEW, st = __real_registry_view(reg, out, max, n, totals));
    return st;
}

/* At exit: the counters, one line per kind of call seen. */
__attribute__((destructor)) static void print_holds(void)
{
    static const char *const extra[] = {"expiry", "restore", "visit", "endpoints", "view"};
    for (int k = 0; k < K_KINDS; k++)
        if (stats[k].n > 0)
            fprintf(stderr, "registry lock held by %s: %llu times, mean %llu ns, max %llu ns\n",
                    k < OP_COUNT ? op_name((enum op)k) : extra[k - OP_COUNT], stats[k].n,
                    stats[k].ns / stats[k].n, stats[k].max_ns);
}
