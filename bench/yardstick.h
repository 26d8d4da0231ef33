/*
 * yardstick.h - what the benchmark's yardsticks (baseline_server.c,
 * ceiling_server.c) share: reading one whole request of the protocol with
 * no parsing beyond counting its fields, so that both do exactly the same
 * work per request and differ only in how they accept and answer.
 */
#ifndef PEERDEX_YARDSTICK_H
#define PEERDEX_YARDSTICK_H

#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

/* Fields in a whole request of this operation (name and date-time included). */
static inline int yardstick_fields_of(const char *op)
{
    static const struct { const char *name; int fields; } ops[] = {
        {"REGISTER", 3}, {"UNREGISTER", 3}, {"CONNECT", 4}, {"DISCONNECT", 3},
        {"PUBLISH", 5}, {"DELETE", 4}, {"LIST_USERS", 3}, {"LIST_CONTENT", 4}};
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
        if (strcmp(op, ops[i].name) == 0)
            return ops[i].fields;
    return 1;
}

/*
 * Read one request from fd: until its operation's fields have all arrived
 * (the operation name tells how many NUL-terminated fields follow), the
 * peer closes, or 2 KiB are in.
 */
static inline void yardstick_read_request(int fd)
{
    char buf[2048];
    size_t len = 0;
    int nuls = 0, want = 1;
    ssize_t n;
    while (nuls < want && len < sizeof buf &&
           (n = recv(fd, buf + len, sizeof buf - len, 0)) > 0) {
        for (size_t i = len; i < len + (size_t)n; i++)
            if (buf[i] == '\0' && ++nuls == 1)
                want = yardstick_fields_of(buf);
        len += (size_t)n;
    }
}

#endif
