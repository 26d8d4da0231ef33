/* framing.c - deadline-bound request reading and whole-reply sending. */
#include "framing.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <stdint.h>
#include <time.h>

#include "clock.h"

/*
 * A request that can no longer be valid (a field refused, or a second
 * field that is no date-time: "REGISTER\0alice\0" from a client that sends
 * no date-time) is answered once its sender has sent nothing for this long,
 * instead of at the deadline.  It is longer than a delayed ACK holding back
 * the next piece of a request sent in several writes.
 */
#define MALFORMED_QUIET_MS 500

/* Milliseconds on the monotonic clock. */
enum read_status framing_read_request(int fd, char *buf, size_t cap,
                                      int timeout_ms, struct request *req)
{
    int64_t deadline = clock_ms() + timeout_ms;
    size_t len = 0;
    bool doomed = false;        /* it can no longer become a valid request */

    request_parse(buf, 0, req);
    for (;;) {
        /* Try first: the request has usually arrived already. */
        ssize_t n = recv(fd, buf + len, cap - len, MSG_DONTWAIT);
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                req->why = len ? "connection failed mid-request" : NULL;
                return READ_ERROR;
            }
            int64_t left = deadline - clock_ms();
            if (left <= 0) {
                req->why = len ? "no whole request within the deadline"
                               : "nothing sent within the deadline";
                return READ_TIMEOUT;
            }
            if (doomed && left > MALFORMED_QUIET_MS)
                left = MALFORMED_QUIET_MS;
            struct pollfd pfd = {.fd = fd, .events = POLLIN};
            int ready = poll(&pfd, 1, (int)left);
            if (ready < 0 && errno != EINTR)
                return READ_ERROR;
            if (ready == 0 && doomed) {
                if (req->why == NULL)
                    req->why = "no date-time";
                return READ_BAD_REQUEST;    /* the sender stopped there */
            }
            continue;
        }
        if (n == 0) {
            req->why = len ? "closed mid-request" : NULL;
            return READ_EOF;
        }
        len += (size_t)n;

        switch (request_parse(buf, len, req)) {
        case PARSE_OK:
            return READ_OK;
        case PARSE_UNKNOWN_OP:
            return READ_UNKNOWN_OP;
        case PARSE_TOO_LONG:
        case PARSE_BAD_FIELD:
            return READ_BAD_REQUEST;
        case PARSE_INCOMPLETE:
            if (len == cap)     /* cannot happen with cap >= REQUEST_MAX */
                return READ_BAD_REQUEST;
            doomed = req->why != NULL || req->odd_datetime;
            break;
        }
    }
}

int framing_send_bytes(int fd, const char *data, size_t len, int timeout_ms)
{
    int64_t deadline = clock_ms() + timeout_ms;
    size_t off = 0;
    while (off < len) {
        /* Non-blocking: the reply usually fits the socket buffer at once,
         * and a reader that stalls is waited for only until the deadline. */
        ssize_t n = send(fd, data + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n >= 0) {
            off += (size_t)n;
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
        int64_t left = deadline - clock_ms();
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        if (left <= 0 || (poll(&pfd, 1, (int)left) < 0 && errno != EINTR))
            return -1;
    }
    return 0;
}
