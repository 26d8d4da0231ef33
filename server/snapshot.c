/* snapshot.c - writing and loading DIR/snapshot; see snapshot.h. */
#include "snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "journal.h"
#include "fileio.h"
#include "record.h"
#include "registry.h"
#include "diag.h"

#define MAGIC "peerdex snapshot 1"

struct snapshot {
    unsigned char *data;
    size_t len, cap;
    uint64_t users, files;
    bool failed;                    /* out of memory: do not write it */
};

/* Room for n more bytes; false when out of memory. */
static bool reserve(struct snapshot *s, size_t n)
{
    if (s->failed)
        return false;
    if (s->len + n > s->cap) {
        size_t cap = s->cap ? s->cap : 1 << 16;
        while (cap < s->len + n)
            cap *= 2;
        unsigned char *d = realloc(s->data, cap);
        if (d == NULL) {
            s->failed = true;
            return false;
        }
        s->data = d;
        s->cap = cap;
    }
    return true;
}

/* Append one record: a kind byte, fixed bytes, then NUL-terminated strings. */
static void add(struct snapshot *s, char kind, const unsigned char *fixed, size_t nfixed,
                const char *a, const char *b)
{
    size_t la = a ? strlen(a) + 1 : 0, lb = b ? strlen(b) + 1 : 0;
    size_t len = 1 + nfixed + la + lb;
    if (!reserve(s, RECORD_HEAD + len))
        return;
    unsigned char *head = s->data + s->len, *p = head + RECORD_HEAD;
    *p++ = (unsigned char)kind;
    if (nfixed > 0)
        memcpy(p, fixed, nfixed);
    p += nfixed;
    if (a)
        memcpy(p, a, la);
    if (b)
        memcpy(p + la, b, lb);
    record_seal(head, len);
    s->len += RECORD_HEAD + len;
}

struct snapshot *snapshot_new(void)
{
    struct snapshot *s = calloc(1, sizeof *s);
    if (s != NULL)
        add(s, 'H', NULL, 0, MAGIC, NULL);
    return s;
}

void snapshot_add_user(struct snapshot *s, const char *name, const char *ip, unsigned port)
{
    unsigned char fixed[3];
    put_u16(fixed, (uint16_t)port);
    fixed[2] = ip != NULL;
    add(s, 'U', fixed, sizeof fixed, name, ip ? ip : "");
    s->users++;
}

void snapshot_add_key(struct snapshot *s, const uint8_t *secret, uint64_t counter)
{
    unsigned char fixed[8 + AUTH_SECRET_SIZE];
    put_u64(fixed, counter);
    memcpy(fixed + 8, secret, AUTH_SECRET_SIZE);
    add(s, 'K', fixed, sizeof fixed, NULL, NULL);
}

void snapshot_add_file(struct snapshot *s, const char *path, const char *description)
{
    add(s, 'F', NULL, 0, path, description);
    s->files++;
}

void snapshot_end(struct snapshot *s, uint64_t seq)
{
    unsigned char fixed[24];
    put_u64(fixed, seq);
    put_u64(fixed + 8, s->users);
    put_u64(fixed + 16, s->files);
    add(s, 'E', fixed, sizeof fixed, NULL, NULL);
}

void snapshot_counts(const struct snapshot *s, uint64_t *users, uint64_t *files)
{
    *users = s->users;
    *files = s->files;
}

void snapshot_free(struct snapshot *s)
{
    if (s != NULL)
        free(s->data);
    free(s);
}

int snapshot_write(struct snapshot *s, const char *dir, uint64_t *bytes)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/snapshot", dir);
    if (s->failed) {
        errno = ENOMEM;
        return -1;
    }
    /* Owner only: it holds authenticated users' secrets. */
    if (file_replace(path, s->data, s->len, 0600) < 0)
        return -1;
    *bytes = s->len;
    return 0;
}

/* Say where path is damaged; -1. */
static int damaged(const char *path, size_t off, const char *what)
{
    diag("server: %s: %s at offset %zu; refusing to start (move the state "
                    "directory aside to start fresh)\n", path, what, off);
    return -1;
}

/* The end record's size: head, kind, seq, users and files. */
#define END_RECORD (RECORD_HEAD + 1 + 24)

/* The file records of the user being loaded, restored in one call when
 * its last is read: pointers into the mapped snapshot, and each one's
 * offset for the message should it not load. */
struct pending {
    const char **path, **description;
    size_t *off;
    size_t n, cap;
};

/* Room for more pending files; false when out of memory. */
static bool grow(struct pending *p)
{
    size_t cap = p->cap ? 2 * p->cap : 64;
    const char **path = realloc(p->path, cap * sizeof *path);
    if (path != NULL)
        p->path = path;
    const char **description = realloc(p->description, cap * sizeof *description);
    if (description != NULL)
        p->description = description;
    size_t *off = realloc(p->off, cap * sizeof *off);
    if (off != NULL)
        p->off = off;
    if (path == NULL || description == NULL || off == NULL)
        return false;
    p->cap = cap;
    return true;
}

/* Restore owner's pending files; -1 after saying which did not load. */
static int flush(struct pending *p, struct registry *reg, const char *owner,
                 const char *path)
{
    size_t done = 0;
    enum reg_status s = p->n == 0 ? REG_OK
        : registry_restore_files(reg, owner, p->n, p->path, p->description, &done);
    if (s != REG_OK)
        return damaged(path, p->off[done], "record that does not load");
    p->n = 0;
    return 0;
}

int snapshot_load(const char *dir, struct registry *reg, uint64_t *seq)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/snapshot", dir);
    *seq = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return 0;
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        diag("server: cannot read %s: %s\n", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    size_t len = (size_t)st.st_size, off = 0;
    const unsigned char *data = len ? mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
    close(fd);
    if (data == MAP_FAILED) {
        diag("server: cannot read %s: %s\n", path, strerror(errno));
        return -1;
    }
    /* Index on a second thread while loading, with room for the files
     * the end record counts (read first: a hint only, checked below). */
    size_t files_hint = 0;
    uint32_t n_end;
    if (len >= END_RECORD && record_check(data + len - END_RECORD, END_RECORD, &n_end) ==
            RECORD_OK && n_end == END_RECORD - RECORD_HEAD &&
        data[len - END_RECORD + RECORD_HEAD] == 'E')
        files_hint = (size_t)get_u64(data + len - 8);
    bool bulk = registry_bulk_begin(reg, files_hint);
    int rc = -1;
    char owner[REG_NAME_MAX + 1];
    uint64_t users = 0, files = 0;
    bool ended = false;
    struct pending pending = {0};
    owner[0] = '\0';
    while (off < len && !ended) {
        uint32_t n;
        if (record_check(data + off, len - off, &n) != RECORD_OK) {
            rc = damaged(path, off, "damaged record");
            goto out;
        }
        const unsigned char *p = data + off + RECORD_HEAD, *end = p + n;
        char kind = (char)*p++;
        /* Strings must end inside the record. */
        const char *a = NULL, *b = NULL;
        size_t fixed = kind == 'U' ? 3 : kind == 'E' ? 24
                     : kind == 'K' ? 8 + AUTH_SECRET_SIZE : 0;
        if ((size_t)(end - p) < fixed)
            goto bad;
        const unsigned char *str = p + fixed;
        if (kind != 'E' && kind != 'K') {
            const unsigned char *z = memchr(str, '\0', (size_t)(end - str));
            if (z == NULL)
                goto bad;
            a = (const char *)str;
            if (kind != 'H') {
                const unsigned char *z2 = memchr(z + 1, '\0', (size_t)(end - z - 1));
                if (z2 == NULL)
                    goto bad;
                b = (const char *)z + 1;
            }
        }
        if ((off == 0) != (kind == 'H'))
            goto bad;
        if (kind != 'F' && flush(&pending, reg, owner, path) < 0)
            goto out;
        enum reg_status s = REG_OK;
        switch (kind) {
        case 'H':
            if (strcmp(a, MAGIC) != 0)
                goto bad;
            break;
        case 'U':
            if (strlen(a) >= sizeof owner)
                goto bad;
            strcpy(owner, a);
            s = registry_register(reg, a);
            if (s == REG_OK && p[2])
                s = registry_connect(reg, a, b, get_u16(p));
            users++;
            break;
        case 'K':
            s = registry_restore_key(reg, owner, p + 8, get_u64(p));
            break;
        case 'F':
            if (pending.n == pending.cap && !grow(&pending)) {
                rc = damaged(path, off, "record that does not load (out of memory)");
                goto out;
            }
            pending.path[pending.n] = a;
            pending.description[pending.n] = b;
            pending.off[pending.n++] = off;
            files++;
            break;
        case 'E':
            *seq = get_u64(p);
            if (get_u64(p + 8) != users || get_u64(p + 16) != files)
                goto bad;
            ended = true;
            break;
        default:
            goto bad;
        }
        if (s != REG_OK) {
            rc = damaged(path, off, "record that does not load");
            goto out;
        }
        off += RECORD_HEAD + n;
    }
    if (!ended || off != len) {
        rc = damaged(path, off, ended ? "bytes after the end" : "no end record");
        goto out;
    }
    rc = 0;
    goto out;
bad:
    rc = damaged(path, off, "malformed record");
out:
    if (bulk && !registry_bulk_end(reg) && rc == 0) {
        diag("server: %s: out of memory indexing the files for SEARCH\n", path);
        rc = -1;
    }
    free(pending.path);
    free(pending.description);
    free(pending.off);
    if (data != NULL)
        munmap((void *)data, len);
    return rc;
}
