/* registry.c - users and their files in uthash tables; see registry.h. */
#include "registry.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "diag.h"
#include "request.h"
#include "search.h"

/* Make uthash report allocation failure instead of calling exit(). */
#define HASH_NONFATAL_OOM 1
#include <uthash.h>

struct file {
    UT_hash_handle hh;          /* in user->files, keyed by path */
    char *description;
#ifndef REGISTRY_NO_SEARCH
    struct search_doc doc;      /* in the search index while its owner is connected */
    struct user *owner;
#endif
    char path[];
};

struct user {
    UT_hash_handle hh;          /* in registry->users, keyed by name */
    UT_hash_handle hh_conn;     /* in registry->connected while connected */
    struct file *files;
    size_t path_bytes;          /* sum of strlen(path) + 1 over files */
    struct listing *listing;    /* LIST_CONTENT reply; NULL after a change */
    bool building;              /* listing built outside the lock: files frozen */
    bool connected;
    uint64_t session;           /* which CONNECT this is, while connected */
    time_t since;               /* when that CONNECT (or its replay) happened */
    unsigned port;
    char ip[INET6_ADDRSTRLEN];
    struct auth_key *key;       /* an authenticated user's; NULL: classic */
    uint64_t counter;           /* the last proven counter */
    uint64_t serial;            /* tells this user from a later one of the same name */
    char name[];
};

struct registry {
    pthread_mutex_t lock;       /* guards everything below and all it reaches */
    pthread_cond_t built;       /* a user's listing build ended */
    struct user *users;
    struct user *connected;
    struct listing *users_listing;  /* LIST_USERS reply; NULL after a change */
    size_t nfiles;
    size_t files_max, listing_max;  /* quotas; set before sharing */
    registry_log_fn *log;       /* NULL: operations are logged nowhere */
    void *log_ctx;
    uint64_t sessions;          /* CONNECTs so far (replayed ones too): numbers each session */
    struct search_index *search;    /* the files of connected users; NULL: built without */
    struct bulk *bulk;          /* while a snapshot loads: the indexing thread's */
    uint64_t serials;           /* users registered so far: numbers each one */
};

void registry_set_log(struct registry *reg, registry_log_fn *fn, void *ctx)
{
    pthread_mutex_lock(&reg->lock);
    reg->log = fn;
    reg->log_ctx = ctx;
    pthread_mutex_unlock(&reg->lock);
}

/* Log op with outcome st through the hook (setting op->seq); lock held.
 * True without a hook. */
static bool log_op(struct registry *reg, struct reg_op *op, enum reg_status st)
{
    return reg->log == NULL || reg->log(reg->log_ctx, op, st);
}

/* Set by the uthash macros when an insertion cannot allocate. */
#undef uthash_nonfatal_oom
#define uthash_nonfatal_oom(obj) (add_failed = true)

#ifndef REGISTRY_NO_SEARCH
static search_text_fn file_text;
#endif

struct registry *registry_new(void)
{
    struct registry *reg = calloc(1, sizeof *reg);
    if (reg != NULL && pthread_mutex_init(&reg->lock, NULL) != 0) {
        free(reg);
        return NULL;
    }
    if (reg != NULL && pthread_cond_init(&reg->built, NULL) != 0) {
        pthread_mutex_destroy(&reg->lock);
        free(reg);
        return NULL;
    }
    if (reg != NULL)
        reg->files_max = reg->listing_max = SIZE_MAX;
#ifndef REGISTRY_NO_SEARCH
    if (reg != NULL && (reg->search = search_new(file_text)) == NULL) {
        registry_free(reg);
        return NULL;
    }
#endif
    return reg;
}

void registry_set_quotas(struct registry *reg, size_t files, size_t listing_bytes)
{
    reg->files_max = files;
    reg->listing_max = listing_bytes;
}

/* A new file record for path and its description, not yet in any table;
 * NULL when out of memory. */
static struct file *file_new(const char *path, const char *description)
{
    size_t len = strlen(path);
    struct file *f = malloc(sizeof *f + len + 1);
    char *desc = strdup(description);
    if (f == NULL || desc == NULL) {
        free(f);
        free(desc);
        return NULL;
    }
    memset(&f->hh, 0, sizeof f->hh);
    memcpy(f->path, path, len + 1);
    f->description = desc;
#ifndef REGISTRY_NO_SEARCH
    f->doc.seq = 0;
    f->owner = NULL;
#endif
    return f;
}

/*
 * The search index holds exactly the files of connected users (search.h).
 * These keep it so; lock held.  Built with -DREGISTRY_NO_SEARCH (make
 * bench's comparison) there is no index and they do nothing.
 */
#ifndef REGISTRY_NO_SEARCH
/* The file record an index entry is embedded in. */
static const struct file *doc_file(const struct search_doc *doc)
{
    return (const struct file *)((const char *)doc - offsetof(struct file, doc));
}

/* The index's view of a file: its path and description. */
static void file_text(const struct search_doc *doc, const char **path,
                      const char **description)
{
    const struct file *f = doc_file(doc);
    *path = f->path;
    *description = f->description;
}

/*
 * Indexing on a second thread while a snapshot loads (registry_bulk_begin):
 * the loader hands the files over in blocks, in order, and goes on with
 * the next records; the indexer adds them to the index in that order, so
 * the seqs are those a one-thread load gives.  Only the indexer touches
 * the index and the files' doc fields until registry_bulk_end joins it
 * (no one else uses the registry during a load).
 */
#define BULK_BLOCK 4096
struct bulk_block {
    struct bulk_block *next;
    size_t n;
    struct file *f[BULK_BLOCK];
};

struct bulk {
    pthread_t thread;
    struct search_index *search;
    pthread_mutex_t lock;       /* guards head, tail and ended */
    pthread_cond_t more;        /* a block handed over, or the end */
    struct bulk_block *head, **tail;
    bool ended;
    struct bulk_block *filling; /* the loader's, not yet handed over */
    bool failed;                /* the indexer's: a file it could not add */
};

/* Hand the loader's block (if any) to the indexer. */
static void bulk_hand_over(struct bulk *b)
{
    if (b->filling == NULL)
        return;
    pthread_mutex_lock(&b->lock);
    *b->tail = b->filling;
    b->tail = &b->filling->next;
    pthread_cond_signal(&b->more);
    pthread_mutex_unlock(&b->lock);
    b->filling = NULL;
}

/* Queue f for the indexer; false when out of memory. */
static bool bulk_push(struct bulk *b, struct file *f)
{
    if (b->filling != NULL && b->filling->n == BULK_BLOCK)
        bulk_hand_over(b);
    if (b->filling == NULL) {
        if ((b->filling = malloc(sizeof *b->filling)) == NULL)
            return false;
        b->filling->next = NULL;
        b->filling->n = 0;
    }
    b->filling->f[b->filling->n++] = f;
    return true;
}

/* The indexer: add each file handed over, block by block, until the end. */
static void *bulk_main(void *arg)
{
    struct bulk *b = arg;
    for (;;) {
        pthread_mutex_lock(&b->lock);
        while (b->head == NULL && !b->ended)
            pthread_cond_wait(&b->more, &b->lock);
        struct bulk_block *list = b->head;
        b->head = NULL;
        b->tail = &b->head;
        bool ended = b->ended;
        pthread_mutex_unlock(&b->lock);
        while (list != NULL) {
            struct bulk_block *next = list->next;
            for (size_t i = 0; i < list->n && !b->failed; i++) {
                struct file *f = list->f[i];
                b->failed = !search_add(b->search, &f->doc, f->path, f->description);
            }
            free(list);
            list = next;
        }
        if (ended)
            return NULL;
    }
}

/* Put f, a file of connected user u, into the index (or queue it for the
 * indexer during a load); false when out of memory. */
static bool index_file(struct registry *reg, struct user *u, struct file *f)
{
    f->owner = u;
    if (reg->bulk != NULL)
        return bulk_push(reg->bulk, f);
    return search_add(reg->search, &f->doc, f->path, f->description);
}

bool registry_bulk_begin(struct registry *reg, size_t files)
{
    search_reserve(reg->search, files);
    struct bulk *b = calloc(1, sizeof *b);
    if (b == NULL)
        return false;
    b->search = reg->search;
    b->tail = &b->head;
    pthread_mutex_init(&b->lock, NULL);
    pthread_cond_init(&b->more, NULL);
    if (pthread_create(&b->thread, NULL, bulk_main, b) != 0) {
        pthread_mutex_destroy(&b->lock);
        pthread_cond_destroy(&b->more);
        free(b);
        return false;           /* the load indexes as it goes */
    }
    pthread_mutex_lock(&reg->lock);
    reg->bulk = b;
    pthread_mutex_unlock(&reg->lock);
    return true;
}

bool registry_bulk_end(struct registry *reg)
{
    pthread_mutex_lock(&reg->lock);
    struct bulk *b = reg->bulk;
    reg->bulk = NULL;
    pthread_mutex_unlock(&reg->lock);
    if (b == NULL)
        return true;
    bulk_hand_over(b);
    pthread_mutex_lock(&b->lock);
    b->ended = true;
    pthread_cond_signal(&b->more);
    pthread_mutex_unlock(&b->lock);
    pthread_join(b->thread, NULL);
    bool ok = !b->failed;
    pthread_mutex_destroy(&b->lock);
    pthread_cond_destroy(&b->more);
    free(b);
    return ok;
}

/* Take f out of the index, if it is there. */
static void unindex_file(struct registry *reg, struct file *f)
{
    if (f->doc.seq != 0)
        search_remove(reg->search, &f->doc, f->path, f->description);
}
#else
static bool index_file(struct registry *reg, struct user *u, struct file *f)
{
    (void)reg, (void)u, (void)f;
    return true;
}

bool registry_bulk_begin(struct registry *reg, size_t files)
{
    (void)reg, (void)files;
    return false;
}

bool registry_bulk_end(struct registry *reg)
{
    (void)reg;
    return true;
}

static void unindex_file(struct registry *reg, struct file *f)
{
    (void)reg, (void)f;
}
#endif

/* Take all of u's files out of the index (u disconnects or goes). */
static void unindex_user(struct registry *reg, struct user *u)
{
    for (struct file *f = u->files; f != NULL; f = f->hh.next)
        unindex_file(reg, f);
}

/* Put all of u's files into the index (u connects), in publishing order;
 * false, with none of them indexed, when out of memory. */
static bool index_user(struct registry *reg, struct user *u)
{
    for (struct file *f = u->files; f != NULL; f = f->hh.next)
        if (!index_file(reg, u, f)) {
            unindex_user(reg, u);
            return false;
        }
    return true;
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
    listing_release(u->listing);
    free(u->key);
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
    listing_release(reg->users_listing);
    search_free(reg->search);
    pthread_cond_destroy(&reg->built);
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

/*
 * Look a user up by name, waiting while its listing is being built (its
 * files are then frozen), so the caller may change its files; lock held.
 */
static struct user *find_user_settled(struct registry *reg, const char *name)
{
    struct user *u;
    while ((u = find_user(reg, name)) != NULL && u->building)
        pthread_cond_wait(&reg->built, &reg->lock);
    return u;
}

/*
 * May op act as u?  A classic request as a classic user; a wrapped one only
 * as the user it proved (registry_prove); a replayed one always.  u NULL:
 * the operation answers "no such user".  Lock held.
 */
static enum reg_status check_actor(const struct user *u, const struct reg_op *op)
{
    if (u == NULL || op->trusted)
        return REG_OK;
    if (op->proof != NULL)
        return op->proven != 0 && u->serial == op->proven ? REG_OK : REG_NOT_PROVEN;
    return u->key == NULL ? REG_OK : REG_NOT_PROVEN;
}

/* Find op's acting user and check it may be acted as and is connected;
 * lock held. */
static enum reg_status find_connected(struct registry *reg, const struct reg_op *op,
                                      struct user **out)
{
    *out = find_user(reg, op->user);
    if (*out == NULL)
        return REG_NO_USER;
    if (check_actor(*out, op) != REG_OK)
        return REG_NOT_PROVEN;
    return (*out)->connected ? REG_OK : REG_NOT_CONNECTED;
}

enum reg_proof registry_prove(struct registry *reg, struct reg_op *op)
{
    op->proven = op->counter = 0;
    if (op->proof == NULL)
        return PROOF_NONE;
    enum reg_proof p;
    pthread_mutex_lock(&reg->lock);
    struct user *u = find_user(reg, op->user);
    if (u == NULL)
        p = PROOF_NO_USER;
    else if (u->key == NULL)
        p = PROOF_NO_KEY;
    else if (!auth_verify(u->key, op->proof))
        p = PROOF_BAD;
    else if (op->proof->counter <= u->counter)
        p = PROOF_STALE;
    else {
        p = PROOF_OK;
        u->counter = op->proof->counter;
        op->proven = u->serial;
        op->counter = u->counter;
    }
    pthread_mutex_unlock(&reg->lock);
    return p;
}

const char *registry_proof_why(enum reg_proof p)
{
    switch (p) {
    case PROOF_NONE:
    case PROOF_OK:
        return "proven";
    case PROOF_NO_USER:
        return "no such user";
    case PROOF_NO_KEY:
        return "AUTH for a user registered without a secret";
    case PROOF_BAD:
        return "AUTH proof does not match the user's secret";
    case PROOF_STALE:
        return "AUTH counter not above the last one (a replayed request)";
    }
    return "?";
}

enum reg_status registry_restore_key(struct registry *reg, const char *user,
                                     const uint8_t *secret, uint64_t counter)
{
    struct auth_key *key = NULL;
    if (secret != NULL) {
        if ((key = malloc(sizeof *key)) == NULL)
            return REG_NO_MEMORY;
        auth_key_init(key, secret);
    }
    pthread_mutex_lock(&reg->lock);
    struct user *u = find_user(reg, user);
    if (u != NULL) {
        if (key != NULL) {
            free(u->key);
            u->key = key;
            key = NULL;
        }
        if (counter > u->counter)
            u->counter = counter;
    }
    pthread_mutex_unlock(&reg->lock);
    free(key);
    return u != NULL ? REG_OK : REG_NO_USER;
}

enum reg_status registry_forget_key(struct registry *reg, const char *user)
{
    struct auth_key *key = NULL;
    pthread_mutex_lock(&reg->lock);
    struct user *u = find_user(reg, user);
    if (u != NULL) {
        key = u->key;
        u->key = NULL;
        u->counter = 0;
    }
    pthread_mutex_unlock(&reg->lock);
    free(key);
    return u == NULL ? REG_NO_USER : key == NULL ? REG_NOT_PROVEN : REG_OK;
}

/* Take a cached listing out of its slot; the caller releases it unlocked. */
static struct listing *take(struct listing **slot)
{
    struct listing *l = *slot;
    *slot = NULL;
    return l;
}

static enum reg_status do_register(struct registry *reg, struct reg_op *op)
{
    const char *user = op->user;
    size_t n = strlen(user) + 1;
    /* Allocated before locking: an authenticated user's key too. */
    struct user *u = calloc(1, sizeof *u + n);
    if (u != NULL && op->secret != NULL && (u->key = malloc(sizeof *u->key)) != NULL)
        auth_key_init(u->key, op->secret);
    if (u == NULL || (op->secret != NULL && u->key == NULL)) {
        free(u);
        return REG_NO_MEMORY;
    }
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
        else
            u->serial = ++reg->serials;
    }
    if (!log_op(reg, op, st)) {
        if (st == REG_OK)
            HASH_DEL(reg->users, u);
        st = REG_NO_MEMORY;
    }
    pthread_mutex_unlock(&reg->lock);
    if (st != REG_OK)
        user_free(u);
    return st;
}

static enum reg_status do_unregister(struct registry *reg, struct reg_op *op)
{
    const char *user = op->user;
    struct listing *stale = NULL;
    pthread_mutex_lock(&reg->lock);
    struct user *u = find_user_settled(reg, user);
    enum reg_status st = u == NULL ? REG_NO_USER : check_actor(u, op);
    if (!log_op(reg, op, st))
        st = REG_NO_MEMORY;
    if (st != REG_OK)
        u = NULL;
    if (u != NULL) {
        HASH_DEL(reg->users, u);
        unindex_user(reg, u);
        if (u->connected) {
            HASH_DELETE(hh_conn, reg->connected, u);
            stale = take(&reg->users_listing);
        }
        reg->nfiles -= HASH_COUNT(u->files);
    }
    pthread_mutex_unlock(&reg->lock);
    listing_release(stale);
    if (u != NULL)
        user_free(u);           /* unlinked: free it and its listing outside the lock */
    return st;
}

/* Take a connected user out of the connected table and its files out of
 * the search index; lock held.  The caller drops the connected-users
 * listing unless it undoes its own CONNECT. */
static void end_session(struct registry *reg, struct user *u)
{
    HASH_DELETE(hh_conn, reg->connected, u);
    unindex_user(reg, u);
    u->connected = false;
    u->session = 0;
    u->port = 0;
    u->ip[0] = '\0';
}

static enum reg_status do_connect(struct registry *reg, struct reg_op *op)
{
    const char *user = op->user, *ip = op->ip;
    unsigned port = op->port;
    if (strlen(ip) >= INET6_ADDRSTRLEN)
        return REG_NO_MEMORY;
    enum reg_status st = REG_OK;
    bool add_failed = false;
    struct listing *stale = NULL;
    pthread_mutex_lock(&reg->lock);
    struct user *u = find_user(reg, user);
    if (u == NULL) {
        st = REG_NO_USER;
    } else if (check_actor(u, op) != REG_OK) {
        st = REG_NOT_PROVEN;
    } else if (u->connected) {
        st = REG_CONNECTED;
    } else {
        size_t namelen = strlen(u->name);
        HASH_ADD_KEYPTR(hh_conn, reg->connected, u->name, namelen, u);
        if (add_failed) {
            st = REG_NO_MEMORY;
        } else if (!index_user(reg, u)) {
            HASH_DELETE(hh_conn, reg->connected, u);
            st = REG_NO_MEMORY;
        } else {
            u->connected = true;
            u->session = ++reg->sessions;
            u->since = time(NULL);
            u->port = port;
            strcpy(u->ip, ip);
        }
    }
    if (!log_op(reg, op, st)) {
        if (st == REG_OK)
            end_session(reg, u);    /* undone: the listing still holds */
        st = REG_NO_MEMORY;
    } else if (st == REG_OK) {
        stale = take(&reg->users_listing);
    }
    pthread_mutex_unlock(&reg->lock);
    listing_release(stale);
    return st;
}

static enum reg_status do_disconnect(struct registry *reg, struct reg_op *op)
{
    const char *user = op->user;
    struct listing *stale = NULL;
    pthread_mutex_lock(&reg->lock);
    struct user *u = find_user(reg, user);
    enum reg_status st = u == NULL ? REG_NO_USER
                       : check_actor(u, op) != REG_OK ? REG_NOT_PROVEN
                       : !u->connected ? REG_NOT_CONNECTED : REG_OK;
    if (!log_op(reg, op, st))
        st = REG_NO_MEMORY;
    if (st == REG_OK) {
        end_session(reg, u);
        stale = take(&reg->users_listing);
    }
    pthread_mutex_unlock(&reg->lock);
    listing_release(stale);
    return st;
}

/* Bytes of a LIST_CONTENT reply whose paths take path_bytes, for the quota. */
static size_t listing_size(size_t path_bytes)
{
    return 1 + 21 + path_bytes;     /* result byte, count (at most 20 digits) */
}

static enum reg_status do_publish(struct registry *reg, struct reg_op *op)
{
    const char *user = op->user, *path = op->path, *description = op->description;
    /* Allocate before locking so the critical section stays short. */
    size_t n = strlen(path) + 1;   /* its share of the listing: path and NUL */
    struct file *f = file_new(path, description);
    if (f == NULL)
        return REG_NO_MEMORY;

    struct user *u;
    struct file *old;
    struct listing *stale = NULL;
    bool add_failed = false;
    pthread_mutex_lock(&reg->lock);
    find_user_settled(reg, user);
    enum reg_status st = find_connected(reg, op, &u);
    if (st == REG_OK) {
        HASH_FIND_STR(u->files, path, old);
        if (old != NULL) {
            st = REG_PUBLISHED;
        } else if (HASH_COUNT(u->files) >= reg->files_max) {
            st = REG_QUOTA_FILES;
        } else if (listing_size(u->path_bytes + n) > reg->listing_max) {
            st = REG_QUOTA_BYTES;
        } else {
            HASH_ADD_STR(u->files, path, f);
            if (add_failed) {
                st = REG_NO_MEMORY;
            } else if (!index_file(reg, u, f)) {
                HASH_DEL(u->files, f);
                st = REG_NO_MEMORY;
            } else {
                reg->nfiles++;
                u->path_bytes += n;
            }
        }
    }
    /* Refused ones too (a quota's status included). */
    if (!log_op(reg, op, st)) {
        if (st == REG_OK) {
            unindex_file(reg, f);
            HASH_DEL(u->files, f);
            reg->nfiles--;
            u->path_bytes -= n;
        }
        st = REG_NO_MEMORY;
    } else if (st == REG_OK) {
        stale = take(&u->listing);
    }
    pthread_mutex_unlock(&reg->lock);
    listing_release(stale);
    if (st != REG_OK)
        file_free(f);
    return st;
}

static enum reg_status do_delete(struct registry *reg, struct reg_op *op)
{
    const char *user = op->user, *path = op->path;
    struct user *u;
    struct file *f = NULL;
    struct listing *stale = NULL;
    pthread_mutex_lock(&reg->lock);
    find_user_settled(reg, user);
    enum reg_status st = find_connected(reg, op, &u);
    if (st == REG_OK) {
        HASH_FIND_STR(u->files, path, f);
        if (f == NULL)
            st = REG_NOT_PUBLISHED;
    }
    if (!log_op(reg, op, st)) {
        st = REG_NO_MEMORY;
        f = NULL;
    }
    if (st == REG_OK) {
        unindex_file(reg, f);
        HASH_DEL(u->files, f);
        reg->nfiles--;
        u->path_bytes -= strlen(f->path) + 1;
        stale = take(&u->listing);
    }
    pthread_mutex_unlock(&reg->lock);
    listing_release(stale);
    if (f != NULL)
        file_free(f);
    return st;
}

/* Encode the LIST_USERS reply of the connected users, or NULL; lock held. */
static struct listing *build_users(struct registry *reg)
{
    size_t bytes = 0;
    for (struct user *u = reg->connected; u != NULL; u = u->hh_conn.next)
        bytes += strlen(u->name) + strlen(u->ip) + 2 + 6;  /* port: 5 digits, NUL */
    struct listing_builder b;
    if (!listing_begin(&b, HASH_CNT(hh_conn, reg->connected), bytes))
        return NULL;
    for (struct user *u = reg->connected; u != NULL; u = u->hh_conn.next)
        listing_add_user(&b, u->name, u->ip, u->port);
    return listing_end(&b);
}

static enum reg_status do_list_users(struct registry *reg, struct reg_op *op,
                                     struct listing **out)
{
    struct user *u;
    pthread_mutex_lock(&reg->lock);
    enum reg_status st = find_connected(reg, op, &u);
    if (!log_op(reg, op, st))
        st = REG_NO_MEMORY;
    if (st == REG_OK && reg->users_listing == NULL &&
        (reg->users_listing = build_users(reg)) == NULL)
        st = REG_NO_MEMORY;
    if (st == REG_OK)
        *out = listing_ref(reg->users_listing);
    pthread_mutex_unlock(&reg->lock);
    return st;
}

/*
 * Encode t's LIST_CONTENT reply, or NULL.  Called without the lock while
 * t->building is set: no one changes t's files meanwhile.
 */
static struct listing *build_content(const struct user *t, size_t path_bytes)
{
    struct listing_builder b;
    if (!listing_begin(&b, HASH_COUNT(t->files), path_bytes))
        return NULL;
    for (const struct file *f = t->files; f != NULL; f = f->hh.next)
        listing_add_path(&b, f->path);
    return listing_end(&b);
}

static enum reg_status do_list_content(struct registry *reg, struct reg_op *op,
                                       struct listing **out)
{
    const char *target = op->target;
    struct user *u;
    pthread_mutex_lock(&reg->lock);
    /* The target first: waiting for its build releases the lock, and the
     * requester's state is checked (and the outcome journaled) after any
     * such wait. */
    struct user *t = find_user_settled(reg, target);
    enum reg_status st = find_connected(reg, op, &u);
    if (st == REG_OK && t == NULL)
        st = REG_NO_TARGET;
    if (!log_op(reg, op, st))
        st = REG_NO_MEMORY;
    if (st == REG_OK && t->listing != NULL) {
        *out = listing_ref(t->listing);
        pthread_mutex_unlock(&reg->lock);
        return st;
    }
    if (st != REG_OK) {
        pthread_mutex_unlock(&reg->lock);
        return st;
    }
    /* Build it outside the lock; t's files stay as they are meanwhile. */
    t->building = true;
    size_t path_bytes = t->path_bytes;
    pthread_mutex_unlock(&reg->lock);
    struct listing *l = build_content(t, path_bytes);
    pthread_mutex_lock(&reg->lock);
    t->building = false;
    if (l != NULL)
        t->listing = listing_ref(l);
    pthread_cond_broadcast(&reg->built);
    pthread_mutex_unlock(&reg->lock);
    if (l == NULL)
        return REG_NO_MEMORY;
    *out = l;
    return REG_OK;
}

enum reg_status registry_restore_files(struct registry *reg, const char *user, size_t n,
                                       const char *const *paths,
                                       const char *const *descriptions, size_t *done)
{
    enum reg_status st = REG_OK;
    struct listing *stale = NULL;
    size_t i = 0;
    pthread_mutex_lock(&reg->lock);
    struct user *u = find_user_settled(reg, user);
    if (u == NULL)
        st = REG_NO_USER;
    for (; i < n && st == REG_OK; i++) {
        struct file *f = NULL, *old = NULL;
        HASH_FIND_STR(u->files, paths[i], old);
        bool add_failed = false;
        if (old != NULL) {
            st = REG_PUBLISHED;
        } else if ((f = file_new(paths[i], descriptions[i])) == NULL) {
            st = REG_NO_MEMORY;
        } else {
            HASH_ADD_STR(u->files, path, f);
            if (add_failed) {
                st = REG_NO_MEMORY;
            } else if (u->connected && !index_file(reg, u, f)) {
                HASH_DEL(u->files, f);
                st = REG_NO_MEMORY;
            } else {
                reg->nfiles++;
                u->path_bytes += strlen(f->path) + 1;   /* its share of the listing */
            }
        }
        if (st != REG_OK) {
            if (f != NULL)
                file_free(f);
            break;
        }
    }
    if (i > 0)
        stale = take(&u->listing);
    pthread_mutex_unlock(&reg->lock);
    listing_release(stale);
    *done = i;
    return st;
}

void registry_visit(struct registry *reg, const struct registry_visitor *v)
{
    pthread_mutex_lock(&reg->lock);
    for (struct user *u = reg->users; u != NULL; u = u->hh.next) {
        v->user(v->ctx, u->name, u->connected ? u->ip : NULL, u->port);
        if (u->key != NULL && v->key != NULL)
            v->key(v->ctx, u->key->secret, u->counter);
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
    e->authenticated = u->key != NULL;
    return true;
}

enum reg_status registry_endpoint(struct registry *reg, const char *user,
                                  struct reg_endpoint *out)
{
    pthread_mutex_lock(&reg->lock);
    struct user *u = find_user(reg, user);     /* no actor: the server asks */
    enum reg_status st = u == NULL ? REG_NO_USER
                       : !u->connected || !copy_endpoint(u, out) ? REG_NOT_CONNECTED : REG_OK;
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

static enum reg_status do_expire(struct registry *reg, struct reg_op *op)
{
    const char *user = op->user;
    uint64_t session = op->session;
    struct listing *stale = NULL;
    pthread_mutex_lock(&reg->lock);
    struct user *u = find_user(reg, user);
    enum reg_status st = u == NULL ? REG_NO_USER
                       : !u->connected || u->session != session
                       ? REG_NOT_CONNECTED : REG_OK;
    /* Only an expiry that happens is an operation. */
    if (st == REG_OK && !log_op(reg, op, st))
        st = REG_NO_MEMORY;
    if (st == REG_OK) {
        end_session(reg, u);
        stale = take(&reg->users_listing);
    }
    pthread_mutex_unlock(&reg->lock);
    listing_release(stale);
    return st;
}

#ifndef REGISTRY_NO_SEARCH
/* Encode the SEARCH reply of n matches, or NULL; lock held (the files
 * and their owners must stay while they are copied). */
static struct listing *build_search(const struct search_doc *const *found, size_t n)
{
    /* The fields lie in other blocks than the match (the owner's record,
     * the description's, and the file's first line, which points to it):
     * ask for all of their cache lines before reading any. */
    for (size_t i = 0; i < n; i++) {
        const struct file *f = doc_file(found[i]);
        __builtin_prefetch(&f->description);
        __builtin_prefetch(f->owner->name);
    }
    for (size_t i = 0; i < n; i++)
        __builtin_prefetch(doc_file(found[i])->description);
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        const struct file *f = doc_file(found[i]);
        bytes += strlen(f->owner->name) + strlen(f->path) + strlen(f->description) + 3;
    }
    struct listing_builder b;
    if (!listing_begin(&b, n, bytes))
        return NULL;
    for (size_t i = 0; i < n; i++) {
        const struct file *f = doc_file(found[i]);
        listing_add_match(&b, f->owner->name, f->path, f->description);
    }
    return listing_end(&b);
}
#endif

/*
 * SEARCH: the query's words are logged where a file path would stand
 * (search_log_form()); op->path is set to them.
 */
static enum reg_status do_search(struct registry *reg, struct reg_op *op,
                                 struct listing **out)
{
    size_t max = op->max;
    struct search_query q;
    char logged[FIELD_MAX + 1];
    if (op->query == NULL || search_parse(op->query, &q) == 0 || max == 0 ||
        max > SEARCH_MAX_MAX)
        return REG_NO_MEMORY;   /* the parser refuses these first */
    search_log_form(&q, logged);
    op->path = logged;
    const struct search_doc **found = malloc(max * sizeof *found);
    if (found == NULL)
        return REG_NO_MEMORY;
    struct user *u;
    pthread_mutex_lock(&reg->lock);
    enum reg_status st = find_connected(reg, op, &u);
    if (!log_op(reg, op, st))
        st = REG_NO_MEMORY;
#ifndef REGISTRY_NO_SEARCH
    if (st == REG_OK) {
        size_t n = search_find(reg->search, &q, NULL, NULL, found, max);
        if (n == SEARCH_NO_MEMORY || (*out = build_search(found, n)) == NULL)
            st = REG_NO_MEMORY;
    }
#else
    (void)out;
    if (st == REG_OK)
        st = REG_NO_MEMORY;     /* built without the index */
#endif
    pthread_mutex_unlock(&reg->lock);
    free(found);
    op->path = NULL;            /* logged is gone */
    return st;
}

enum reg_status registry_apply(struct registry *reg, struct reg_op *op,
                               struct listing **out)
{
    op->seq = 0;
    switch (op->op) {
    case OP_REGISTER:
        return do_register(reg, op);
    case OP_UNREGISTER:
        return do_unregister(reg, op);
    case OP_CONNECT:
        return do_connect(reg, op);
    case OP_DISCONNECT:
        return op->session != 0 ? do_expire(reg, op) : do_disconnect(reg, op);
    case OP_PUBLISH:
        return do_publish(reg, op);
    case OP_DELETE:
        return do_delete(reg, op);
    case OP_LIST_USERS:
        return do_list_users(reg, op, out);
    case OP_LIST_CONTENT:
        return do_list_content(reg, op, out);
    case OP_SEARCH:
        return do_search(reg, op, out);
    default:
        return REG_NO_MEMORY;       /* no such operation: nothing changes */
    }
}

/* The short forms: one operation with no client date-time. */

enum reg_status registry_register(struct registry *reg, const char *user)
{
    return registry_apply(reg, &(struct reg_op){.op = OP_REGISTER, .user = user}, NULL);
}

enum reg_status registry_unregister(struct registry *reg, const char *user)
{
    return registry_apply(reg, &(struct reg_op){.op = OP_UNREGISTER, .user = user}, NULL);
}

enum reg_status registry_connect(struct registry *reg, const char *user,
                                 const char *ip, unsigned port)
{
    return registry_apply(reg, &(struct reg_op){.op = OP_CONNECT, .user = user, .ip = ip,
                                                .port = port}, NULL);
}

enum reg_status registry_disconnect(struct registry *reg, const char *user)
{
    return registry_apply(reg, &(struct reg_op){.op = OP_DISCONNECT, .user = user}, NULL);
}

enum reg_status registry_publish(struct registry *reg, const char *user,
                                 const char *path, const char *description)
{
    return registry_apply(reg, &(struct reg_op){.op = OP_PUBLISH, .user = user, .path = path,
                                                .description = description}, NULL);
}

enum reg_status registry_delete(struct registry *reg, const char *user,
                                const char *path)
{
    return registry_apply(reg, &(struct reg_op){.op = OP_DELETE, .user = user, .path = path},
                          NULL);
}

enum reg_status registry_list_users(struct registry *reg, const char *user,
                                    struct listing **out)
{
    return registry_apply(reg, &(struct reg_op){.op = OP_LIST_USERS, .user = user}, out);
}

enum reg_status registry_list_content(struct registry *reg, const char *user,
                                      const char *target, struct listing **out)
{
    return registry_apply(reg, &(struct reg_op){.op = OP_LIST_CONTENT, .user = user,
                                                .target = target}, out);
}

enum reg_status registry_expire(struct registry *reg, const char *user,
                                uint64_t session)
{
    if (session == 0)
        return REG_NOT_CONNECTED;       /* no session is numbered 0 */
    return registry_apply(reg, &(struct reg_op){.op = OP_DISCONNECT, .user = user,
                                                .path = REG_EXPIRED_MARK,
                                                .session = session}, NULL);
}

enum reg_status registry_search(struct registry *reg, const char *user,
                                const char *query, size_t max, struct listing **out)
{
    return registry_apply(reg, &(struct reg_op){.op = OP_SEARCH, .user = user, .query = query,
                                                .max = max}, out);
}

enum reg_status registry_view(struct registry *reg, struct reg_user_view *out,
                              size_t max, size_t *n, struct reg_totals *totals)
{
    pthread_mutex_lock(&reg->lock);
    totals->users = HASH_COUNT(reg->users);
    totals->connected = HASH_CNT(hh_conn, reg->connected);
    totals->files = reg->nfiles;
    size_t k = 0;
    for (struct user *u = reg->connected; u != NULL && k < max; u = u->hh_conn.next) {
        struct reg_user_view *v = &out[k];
        size_t len = strlen(u->name);
        if (len >= sizeof v->name)
            continue;                   /* longer than any protocol name */
        memcpy(v->name, u->name, len + 1);
        strcpy(v->ip, u->ip);           /* both INET6_ADDRSTRLEN */
        v->port = u->port;
        v->files = HASH_COUNT(u->files);
        v->since = (int64_t)u->since;
        k++;
    }
    pthread_mutex_unlock(&reg->lock);
    *n = k;
    return REG_OK;
}
