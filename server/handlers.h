/*
 * handlers.h - serving one connection: read a request, apply it to the
 * registry, answer, close.
 */
#ifndef PEERDEX_HANDLERS_H
#define PEERDEX_HANDLERS_H

#include "registry.h"

struct handler_config {
    struct registry *registry;
    int timeout_ms;             /* deadline for the whole request */
};

/*
 * Serve the one operation of connection fd, whose peer address is peer_ip
 * (text).  Never closes fd: the caller owns it.
 */
void handle_connection(const struct handler_config *cfg, int fd,
                       const char *peer_ip);

#endif
