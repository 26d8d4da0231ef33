/* registry.c - users and their files in uthash tables; see registry.h. */
#include "registry.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Make uthash report allocation failure instead of calling exit(). */
#define HASH_NONFATAL_OOM 1
#include <uthash.h>

struct file {
    UT_hash_handle hh;          /* in user->files, keyed by path */
    char *description;
    char path[];
};

struct user {
    UT_hash_handle hh;          /* in registry->users, keyed by name */
    UT_hash_handle hh_conn;     /* in registry->connected while connected */
    struct file *files;
    bool connected;
    uint64_t session;           /* which CONNECT this is, while connected */
    unsigned port;
    char ip[INET6_ADDRSTRLEN];
    char name[];
};

struct registry {
    pthread_mutex_t lock;       /* guards everything below and all it reaches */
    struct user *users;
    struct user *connected;
    size_t nfiles;
    registry_journal_fn *journal;   /* NULL: no journal */
    void *journal_ctx;
    uint64_t sessions;          /* CONNECTs so far (replayed ones too): numbers each session */
};

/* The date-time of the request this thread is serving (registry_set_datetime). */
static __thread const char *op_datetime;

void registry_set_datetime(const char *datetime)
{
    op_datetime = datetime;
}

void registry_set_journal(struct registry *reg, registry_journal_fn *fn, void *ctx)
{
    pthread_mutex_lock(&reg->lock);
    reg->journal = fn;
    reg->journal_ctx = ctx;
    pthread_mutex_unlock(&reg->lock);
}

bool registry_journal(struct registry *reg, const struct reg_op *op,
                      enum reg_status st)
{
    return reg->journal == NULL || reg->journal(reg->journal_ctx, op, st);
}

/* An operation of this thread's request, for the journal. */
#define OP(name, ...) (&(struct reg_op){.op = name, .datetime = op_datetime, __VA_ARGS__})

/* Set by the uthash macros when an insertion cannot allocate. */
#undef uthash_nonfatal_oom
#define uthash_nonfatal_oom(obj) (add_failed = true)

struct registry *registry_new(void)
{
    struct registry *reg = calloc(1, sizeof *reg);
    if (reg != NULL && pthread_mutex_init(&reg->lock, NULL) != 0) {
        free(reg);
        return NULL;
    }
    return reg;
}

/* Free a file record. */
static void file_free(struct file *f)
{
    free(f->description);
    free(f);
}

/* Free a user and all its files; the caller has unlinked it already. */
static void user_free(struct user *u)
{
    struct file *f, *tmp;
    /* uthash keeps the next element in tmp, so deleting f here is safe. */
    // NOLINTBEGIN(clang-analyzer-unix.Malloc)
    HASH_ITER(hh, u->files, f, tmp) {
        HASH_DEL(u->files, f);
        file_free(f);
    }
    // NOLINTEND(clang-analyzer-unix.Malloc)
    free(u);
}

void registry_free(struct registry *reg)
{
    if (reg == NULL)
        return;
    struct user *u, *tmp;
    HASH_CLEAR(hh_conn, reg->connected);
    HASH_ITER(hh, reg->users, u, tmp) {
        HASH_DEL(reg->users, u);
        user_free(u);
    }
    pthread_mutex_destroy(&reg->lock);
    free(reg);
}

/* Look a user up by name; lock held. */
static struct user *find_user(struct registry *reg, const char *name)
{
    struct user *u;
    HASH_FIND_STR(reg->users, name, u);
    return u;
}

/* Find the acting user and check it is connected; lock held. */
static enum reg_status find_connected(struct registry *reg, const char *name,
                                      struct user **out)
{
    *out = find_user(reg, name);
    if (*out == NULL)
        return REG_NO_USER;
    return (*out)->connected ? REG_OK : REG_NOT_CONNECTED;
}

enum reg_status registry_register(struct registry *reg, const char *user)
{
    size_t n = strlen(user) + 1;
    struct user *u = calloc(1, sizeof *u + n);
    if (u == NULL)
        return REG_NO_MEMORY;
    memcpy(u->name, user, n);

    enum reg_status st = REG_OK;
    bool add_failed = false;
    pthread_mutex_lock(&reg->lock);
    if (find_user(reg, user) != NULL) {
        st = REG_USER_EXISTS;
    } else {
        HASH_ADD_STR(reg->users, name, u);
        if (add_failed)
            st = REG_NO_MEMORY;
    }
    if (!registry_journal(reg, OP("REGISTER", .user = user), st)) {
        if (st == REG_OK)
            HASH_DEL(reg->users, u);
        st = REG_NO_MEMORY;
    }
    pthread_mutex_unlock(&reg->lock);
    if (st != REG_OK)
        free(u);
    return st;
}

enum reg_status registry_unregister(struct registry *reg, const char *user)
{
    pthread_mutex_lock(&reg->lock);
    struct user *u = find_user(reg, user);
    enum reg_status st = u != NULL ? REG_OK : REG_NO_USER;
    if (!registry_journal(reg, OP("UNREGISTER", .user = user), st)) {
        st = REG_NO_MEMORY;
        u = NULL;
    }
    if (u != NULL) {
        HASH_DEL(reg->users, u);
        if (u->connected)
            HASH_DELETE(hh_conn, reg->connected, u);
        reg->nfiles -= HASH_COUNT(u->files);
    }
    pthread_mutex_unlock(&reg->lock);
    if (u != NULL)
        user_free(u);           /* unlinked: free it outside the lock */
    return st;
}

/* Take a connected user out of the connected table; lock held. */
static void end_session(struct registry *reg, struct user *u)
{
    HASH_DELETE(hh_conn, reg->connected, u);
    u->connected = false;
    u->session = 0;
    u->port = 0;
    u->ip[0] = '\0';
}

enum reg_status registry_connect(struct registry *reg, const char *user,
                                 const char *ip, unsigned port)
{
    if (strlen(ip) >= INET6_ADDRSTRLEN)
        return REG_NO_MEMORY;
    enum reg_status st = REG_OK;
    bool add_failed = false;
    pthread_mutex_lock(&reg->lock);
    struct user *u = find_user(reg, user);
    if (u == NULL) {
        st = REG_NO_USER;
    } else if (u->connected) {
        st = REG_CONNECTED;
    } else {
        size_t namelen = strlen(u->name);
        HASH_ADD_KEYPTR(hh_conn, reg->connected, u->name, namelen, u);
        if (add_failed) {
            st = REG_NO_MEMORY;
        } else {
            u->connected = true;
            u->session = ++reg->sessions;
            u->port = port;
            strcpy(u->ip, ip);
        }
    }
    if (!registry_journal(reg, OP("CONNECT", .user = user, .ip = ip, .port = port), st)) {
        if (st == REG_OK)
            end_session(reg, u);
        st = REG_NO_MEMORY;
    }
    pthread_mutex_unlock(&reg->lock);
    return st;
}

enum reg_status registry_disconnect(struct registry *reg, const char *user)
{
    pthread_mutex_lock(&reg->lock);
    struct user *u = find_user(reg, user);
    enum reg_status st = u == NULL ? REG_NO_USER
                       : !u->connected ? REG_NOT_CONNECTED : REG_OK;
    if (!registry_journal(reg, OP("DISCONNECT", .user = user), st))
        st = REG_NO_MEMORY;
    if (st == REG_OK)
        end_session(reg, u);
    pthread_mutex_unlock(&reg->lock);
    return st;
}

enum reg_status registry_publish(struct registry *reg, const char *user,
                                 const char *path, const char *description)
{
    /* Allocate before locking so the critical section stays short. */
    size_t n = strlen(path) + 1;
    struct file *f = malloc(sizeof *f + n);
    char *desc = strdup(description);
    if (f == NULL || desc == NULL) {
        free(f);
        free(desc);
        return REG_NO_MEMORY;
    }
    memset(&f->hh, 0, sizeof f->hh);
    memcpy(f->path, path, n);
    f->description = desc;

    struct user *u;
    struct file *old;
    bool add_failed = false;
    pthread_mutex_lock(&reg->lock);
    enum reg_status st = find_connected(reg, user, &u);
    if (st == REG_OK) {
        HASH_FIND_STR(u->files, path, old);
        if (old != NULL) {
            st = REG_PUBLISHED;
        } else {
            HASH_ADD_STR(u->files, path, f);
            if (add_failed)
                st = REG_NO_MEMORY;
            else
                reg->nfiles++;
        }
    }
    if (!registry_journal(reg, OP("PUBLISH", .user = user, .path = path,
                                  .description = description), st)) {
        if (st == REG_OK) {
            HASH_DEL(u->files, f);
            reg->nfiles--;
        }
        st = REG_NO_MEMORY;
    }
    pthread_mutex_unlock(&reg->lock);
    if (st != REG_OK)
        file_free(f);
    return st;
}

enum reg_status registry_delete(struct registry *reg, const char *user,
                                const char *path)
{
    struct user *u;
    struct file *f = NULL;
    pthread_mutex_lock(&reg->lock);
    enum reg_status st = find_connected(reg, user, &u);
    if (st == REG_OK) {
        HASH_FIND_STR(u->files, path, f);
        if (f == NULL)
            st = REG_NOT_PUBLISHED;
    }
    if (!registry_journal(reg, OP("DELETE", .user = user, .path = path), st)) {
        st = REG_NO_MEMORY;
        f = NULL;
    }
    if (st == REG_OK) {
        HASH_DEL(u->files, f);
        reg->nfiles--;
    }
    pthread_mutex_unlock(&reg->lock);
    if (f != NULL)
        file_free(f);
    return st;
}

enum reg_status registry_list_users(struct registry *reg, const char *user,
                                    struct reply *out)
{
    struct user *u;
    pthread_mutex_lock(&reg->lock);
    enum reg_status st = find_connected(reg, user, &u);
    if (!registry_journal(reg, OP("LIST_USERS", .user = user), st))
        st = REG_NO_MEMORY;
    if (st == REG_OK) {
        reply_add_uint(out, HASH_CNT(hh_conn, reg->connected));
        for (u = reg->connected; u != NULL; u = u->hh_conn.next) {
            reply_add_field(out, u->name);
            reply_add_field(out, u->ip);
            reply_add_uint(out, u->port);
        }
    }
    pthread_mutex_unlock(&reg->lock);
    return st;
}

enum reg_status registry_list_content(struct registry *reg, const char *user,
                                      const char *target, struct reply *out)
{
    struct user *u, *t;
    pthread_mutex_lock(&reg->lock);
    enum reg_status st = find_connected(reg, user, &u);
    if (st == REG_OK && (t = find_user(reg, target)) == NULL)
        st = REG_NO_TARGET;
    if (!registry_journal(reg, OP("LIST_CONTENT", .user = user, .target = target), st))
        st = REG_NO_MEMORY;
    if (st == REG_OK) {
        reply_add_uint(out, HASH_COUNT(t->files));
        for (struct file *f = t->files; f != NULL; f = f->hh.next)
            reply_add_field(out, f->path);
    }
    pthread_mutex_unlock(&reg->lock);
    return st;
}

enum reg_status registry_restore_file(struct registry *reg, const char *user,
                                      const char *path, const char *description)
{
    size_t n = strlen(path) + 1;
    struct file *f = malloc(sizeof *f + n);
    char *desc = strdup(description);
    if (f == NULL || desc == NULL) {
        free(f);
        free(desc);
        return REG_NO_MEMORY;
    }
    memset(&f->hh, 0, sizeof f->hh);
    memcpy(f->path, path, n);
    f->description = desc;

    struct file *old = NULL;
    bool add_failed = false;
    pthread_mutex_lock(&reg->lock);
    struct user *u = find_user(reg, user);
    enum reg_status st = u == NULL ? REG_NO_USER : REG_OK;
    if (u != NULL)
        HASH_FIND_STR(u->files, path, old);
    if (old != NULL)
        st = REG_PUBLISHED;
    if (st == REG_OK) {
        HASH_ADD_STR(u->files, path, f);
        if (add_failed)
            st = REG_NO_MEMORY;
        else
            reg->nfiles++;
    }
    pthread_mutex_unlock(&reg->lock);
    if (st != REG_OK)
        file_free(f);
    return st;
}

void registry_visit(struct registry *reg, const struct registry_visitor *v)
{
    pthread_mutex_lock(&reg->lock);
    for (struct user *u = reg->users; u != NULL; u = u->hh.next) {
        v->user(v->ctx, u->name, u->connected ? u->ip : NULL, u->port);
        for (struct file *f = u->files; f != NULL; f = f->hh.next)
            v->file(v->ctx, f->path, f->description);
    }
    if (v->done != NULL)
        v->done(v->ctx);
    pthread_mutex_unlock(&reg->lock);
}

size_t registry_user_count(struct registry *reg)
{
    pthread_mutex_lock(&reg->lock);
    size_t n = HASH_COUNT(reg->users);
    pthread_mutex_unlock(&reg->lock);
    return n;
}

size_t registry_file_count(struct registry *reg)
{
    pthread_mutex_lock(&reg->lock);
    size_t n = reg->nfiles;
    pthread_mutex_unlock(&reg->lock);
    return n;
}

/* Copy a connected user's endpoint into e; lock held.  False when the name
 * is longer than a protocol name can be (such a user is never probed). */
static bool copy_endpoint(const struct user *u, struct reg_endpoint *e)
{
    size_t n = strlen(u->name);
    if (n >= sizeof e->name)
        return false;
    memcpy(e->name, u->name, n + 1);
    strcpy(e->ip, u->ip);               /* both INET6_ADDRSTRLEN */
    e->port = u->port;
    e->session = u->session;
    return true;
}

enum reg_status registry_endpoint(struct registry *reg, const char *user,
                                  struct reg_endpoint *out)
{
    struct user *u;
    pthread_mutex_lock(&reg->lock);
    enum reg_status st = find_connected(reg, user, &u);
    if (st == REG_OK && !copy_endpoint(u, out))
        st = REG_NOT_CONNECTED;
    pthread_mutex_unlock(&reg->lock);
    return st;
}

enum reg_status registry_endpoints(struct registry *reg,
                                   struct reg_endpoint **out, size_t *count)
{
    struct reg_endpoint *all = NULL;
    size_t cap = 0, n;
    for (;;) {
        /* Allocate outside the lock; retry in the rare case that more users
         * connected between the count and the copy. */
        pthread_mutex_lock(&reg->lock);
        size_t want = HASH_CNT(hh_conn, reg->connected);
        n = 0;
        if (want <= cap)
            for (struct user *u = reg->connected; u != NULL && n < cap;
                 u = u->hh_conn.next)
                if (copy_endpoint(u, &all[n]))
                    n++;
        pthread_mutex_unlock(&reg->lock);
        if (want <= cap)
            break;
        cap = want + want / 8 + 16;
        struct reg_endpoint *bigger = realloc(all, cap * sizeof *all);
        if (bigger == NULL) {
            free(all);
            return REG_NO_MEMORY;
        }
        all = bigger;
    }
    *out = all;
    *count = n;
    return REG_OK;
}

enum reg_status registry_expire(struct registry *reg, const char *user,
                                uint64_t session)
{
    pthread_mutex_lock(&reg->lock);
    struct user *u = find_user(reg, user);
    enum reg_status st = u == NULL ? REG_NO_USER
                       : !u->connected || u->session != session
                       ? REG_NOT_CONNECTED : REG_OK;
    /* Registry-made: no client date-time, the journal hook takes the
     * server's clock.  Only an expiry that happens is an operation. */
    if (st == REG_OK &&
        !registry_journal(reg, &(struct reg_op){.op = "DISCONNECT", .user = user,
                                                .path = REG_EXPIRED_MARK}, st))
        st = REG_NO_MEMORY;
    if (st == REG_OK)
        end_session(reg, u);
    pthread_mutex_unlock(&reg->lock);
    return st;
}
