/* manifest.c - DIR/manifest, what a state directory must hold; see manifest.h. */
#include "manifest.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "diag.h"
#include "fileio.h"
#include "record.h"

#define MAGIC "peerdex manifest 1"
#define FIELDS 5                    /* the u64s after the magic and its NUL */
#define PAYLOAD (sizeof MAGIC + 8 * FIELDS)

int manifest_read(const char *dir, struct manifest *m)
{
    char path[4096];
    unsigned char buf[RECORD_HEAD + PAYLOAD + 1];
    snprintf(path, sizeof path, "%s/manifest", dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return 0;
    ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf);
    int saved = errno;
    if (fd >= 0)
        close(fd);
    if (n < 0) {
        diag("server: cannot read %s: %s\n", path, strerror(saved));
        return -1;
    }
    uint32_t len;
    const unsigned char *p = buf + RECORD_HEAD;
    if ((size_t)n != RECORD_HEAD + PAYLOAD ||
        record_check(buf, (size_t)n, &len) != RECORD_OK || len != PAYLOAD ||
        memcmp(p, MAGIC, sizeof MAGIC) != 0) {
        diag("server: %s is damaged\n", path);
        return -1;
    }
    p += sizeof MAGIC;
    m->snapshot_seq = get_u64(p);
    m->snapshot_users = get_u64(p + 8);
    m->snapshot_files = get_u64(p + 16);
    m->snapshot_bytes = get_u64(p + 24);
    m->segment = get_u64(p + 32);
    return 1;
}

int manifest_write(const char *dir, const struct manifest *m)
{
    char path[4096];
    unsigned char buf[RECORD_HEAD + PAYLOAD];
    unsigned char *p = buf + RECORD_HEAD;
    memcpy(p, MAGIC, sizeof MAGIC);
    p += sizeof MAGIC;
    put_u64(p, m->snapshot_seq);
    put_u64(p + 8, m->snapshot_users);
    put_u64(p + 16, m->snapshot_files);
    put_u64(p + 24, m->snapshot_bytes);
    put_u64(p + 32, m->segment);
    record_seal(buf, PAYLOAD);
    snprintf(path, sizeof path, "%s/manifest", dir);
    return file_replace(path, buf, sizeof buf, 0600);
}
