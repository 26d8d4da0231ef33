/*
 * framing.h - moving whole requests and replies over a connected socket.
 *
 * framing_read_request() receives bytes until request_parse() (pure, in
 * request.c) accepts or refuses them, so a request is read in as few recv()
 * calls as the peer allows, never byte by byte, and never past its limits.
 * The whole request must arrive within one deadline: a client that stalls
 * or trickles is dropped when it passes, whatever it has sent.  A request
 * that can no longer become valid (a refused field, or a second field that
 * is no date-time) is given up as soon as its sender pauses for 0.5 s.
 * Whatever the outcome, req->why then says why a request was refused (NULL
 * for a connection that closed without sending anything).
 * framing_send_bytes() writes a reply with a single send() in the common
 * case, and never waits past its deadline for a peer that does not read.
 */
#ifndef PEERDEX_FRAMING_H
#define PEERDEX_FRAMING_H

#include <stddef.h>

#include "request.h"

enum read_status {
    READ_OK,            /* a whole, valid request is in `req` */
    READ_UNKNOWN_OP,    /* not an operation we know: close, answer nothing */
    READ_BAD_REQUEST,   /* too long or refused field: answer "other error" */
    READ_EOF,           /* peer closed before the request was whole */
    READ_TIMEOUT,       /* deadline passed before the request was whole */
    READ_ERROR          /* the socket failed */
};

/*
 * Read one request from fd into buf (at least REQUEST_MAX bytes), giving up
 * timeout_ms after the call.  req->op is set whenever the operation name
 * arrived, so the caller can answer its "other error" code.
 */
enum read_status framing_read_request(int fd, char *buf, size_t cap,
                                      int timeout_ms, struct request *req);

/*
 * Send len bytes at data (a result byte, or a shared listing sent without
 * a copy) within timeout_ms; 0 on success, -1 if the peer is gone or does
 * not read it in time.
 */
int framing_send_bytes(int fd, const char *data, size_t len, int timeout_ms);

#endif
