/* rpcserve.c - one ONC-RPC program over TCP, one poll() loop; see rpcserve.h. */
#define _GNU_SOURCE                 /* accept4 */
#include "rpcserve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "diag.h"

#define LAST_FRAGMENT 0x80000000u
#define READ_CHUNK 65536
#define OUT_MAX (256 * 1024)        /* replies waiting for a client that does not read */
#define REPLY_MAX 1024              /* one encoded reply (ours are a few words) */
#define KEEP_BUFFER 65536           /* a larger record buffer is freed after use */

/* One connection.  Only the loop's thread touches it. */
struct conn {
    int fd;
    int64_t since;                  /* accept, or the last request served (clock_ms) */
    int64_t accepted;               /* an unproven one's deadline counts from here */
    bool proven;                    /* a call proved the key (or none is needed) */
    uint8_t hdr[4];                 /* a fragment header being read */
    size_t hdr_have;
    size_t frag_left;               /* payload bytes still due in this fragment */
    bool last_frag;                 /* the current fragment ends the record */
    bool in_frag;                   /* inside a fragment's payload */
    char *rec;                      /* the record so far */
    size_t rec_len, rec_cap;
    char *out;                      /* reply bytes not yet sent */
    size_t out_len, out_off;
    void *user;                     /* the program's per-connection area */
};

/* The loop's state; touched by its thread only. */
static struct {
    const struct rpcserve_config *cfg;
    struct conn **conns;
    int count;
    int listen_fd;
    int spare_fd;                   /* released to refuse a connection when out of fds */
} s;


static void conn_close(int i)
{
    struct conn *c = s.conns[i];
    close(c->fd);
    free(c->rec);
    free(c->out);
    free(c->user);
    free(c);
    s.conns[i] = s.conns[--s.count];
}

/* Queue bytes to send; false when the client has let too much pile up. */
static bool queue_out(struct conn *c, const char *buf, size_t len)
{
    if (c->out_len - c->out_off + len > OUT_MAX)
        return false;
    if (c->out_off > 0) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
    }
    char *grown = realloc(c->out, c->out_len + len);
    if (grown == NULL)
        return false;
    c->out = grown;
    memcpy(c->out + c->out_len, buf, len);
    c->out_len += len;
    return true;
}

/* Send what is queued, as far as the socket takes it; false on error. */
static bool flush_out(struct conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
        c->out_off += (size_t)n;
    }
    c->out_off = c->out_len = 0;
    return true;
}

/* Encode a reply with its record mark and queue it. */
static bool send_reply(struct conn *c, struct rpc_msg *reply)
{
    char buf[REPLY_MAX];
    XDR x;
    xdrmem_create(&x, buf + 4, sizeof buf - 4, XDR_ENCODE);
    bool ok = xdr_replymsg(&x, reply);
    u_int len = xdr_getpos(&x);
    xdr_destroy(&x);
    if (!ok)
        return false;
    uint32_t mark = htonl(LAST_FRAGMENT | len);
    memcpy(buf, &mark, 4);
    return queue_out(c, buf, len + 4);
}

/* Serve one whole record; false when the connection must close. */
static bool serve_record(struct conn *c)
{
    const struct rpcserve_config *cfg = s.cfg;
    char cred[MAX_AUTH_BYTES], verf[MAX_AUTH_BYTES];
    struct rpc_msg call;
    memset(&call, 0, sizeof call);
    call.rm_call.cb_cred.oa_base = cred;
    call.rm_call.cb_verf.oa_base = verf;
    XDR x;
    xdrmem_create(&x, c->rec, (u_int)c->rec_len, XDR_DECODE);
    bool ok = xdr_callmsg(&x, &call) && call.rm_direction == CALL;
    if (!ok) {
        xdr_destroy(&x);
        return false;               /* not a call: nothing sensible to answer */
    }
    struct rpc_msg reply;
    memset(&reply, 0, sizeof reply);
    reply.rm_xid = call.rm_xid;
    reply.rm_direction = REPLY;
    if (call.rm_call.cb_rpcvers != RPC_MSG_VERSION) {
        reply.rm_reply.rp_stat = MSG_DENIED;
        reply.rjcted_rply.rj_stat = RPC_MISMATCH;
        reply.rjcted_rply.rj_vers.low = reply.rjcted_rply.rj_vers.high = RPC_MSG_VERSION;
    } else {
        reply.rm_reply.rp_stat = MSG_ACCEPTED;
        reply.acpted_rply.ar_verf = _null_auth;
        if (call.rm_call.cb_prog != cfg->prog) {
            reply.acpted_rply.ar_stat = PROG_UNAVAIL;
        } else if (call.rm_call.cb_vers != cfg->vers) {
            reply.acpted_rply.ar_stat = PROG_MISMATCH;
            reply.acpted_rply.ar_vers.low = reply.acpted_rply.ar_vers.high = cfg->vers;
        } else {
            struct rpcserve_reply r = cfg->dispatch(c->user, call.rm_call.cb_proc, &x);
            c->proven = c->proven || r.proven;
            reply.acpted_rply.ar_stat = r.stat;
            reply.acpted_rply.ar_results.proc = r.proc;
            reply.acpted_rply.ar_results.where = r.result;
        }
    }
    xdr_destroy(&x);
    c->since = clock_ms();
    return send_reply(c, &reply);
}

/* Take received bytes through the record marking; false to close. */
static bool take_bytes(struct conn *c, const char *p, size_t n)
{
    while (n > 0) {
        if (!c->in_frag) {
            size_t k = 4 - c->hdr_have < n ? 4 - c->hdr_have : n;
            memcpy(c->hdr + c->hdr_have, p, k);
            c->hdr_have += k;
            p += k;
            n -= k;
            if (c->hdr_have < 4)
                return true;
            uint32_t h = (uint32_t)c->hdr[0] << 24 | (uint32_t)c->hdr[1] << 16 |
                         (uint32_t)c->hdr[2] << 8 | c->hdr[3];
            c->hdr_have = 0;
            c->frag_left = h & ~LAST_FRAGMENT;
            c->last_frag = (h & LAST_FRAGMENT) != 0;
            c->in_frag = true;
            if (c->rec_len + c->frag_left > s.cfg->max_record)
                return false;
        }
        size_t k = c->frag_left < n ? c->frag_left : n;
        if (c->rec_len + k > c->rec_cap) {
            /* Grow with what arrives, not with what the header promises. */
            size_t cap = c->rec_cap ? c->rec_cap * 2 : 4096;
            while (cap < c->rec_len + k)
                cap *= 2;
            char *grown = realloc(c->rec, cap);
            if (grown == NULL)
                return false;
            c->rec = grown;
            c->rec_cap = cap;
        }
        memcpy(c->rec + c->rec_len, p, k);
        c->rec_len += k;
        c->frag_left -= k;
        p += k;
        n -= k;
        if (c->frag_left > 0)
            return true;
        c->in_frag = false;
        if (!c->last_frag)
            continue;
        bool ok = serve_record(c);
        c->rec_len = 0;
        if (c->rec_cap > KEEP_BUFFER) {
            free(c->rec);
            c->rec = NULL;
            c->rec_cap = 0;
        }
        if (!ok)
            return false;
    }
    return true;
}

/* The connection is readable; false to close it. */
static bool read_conn(struct conn *c)
{
    char buf[READ_CHUNK];
    ssize_t n = recv(c->fd, buf, sizeof buf, 0);
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    return n > 0 && take_bytes(c, buf, (size_t)n) && flush_out(c);
}

/* Accept one connection and close it at once (over the cap or out of fds). */
static void refuse_one(bool out_of_fds)
{
    if (out_of_fds && s.spare_fd >= 0) {
        close(s.spare_fd);
        s.spare_fd = -1;
    }
    int fd = accept4(s.listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd >= 0)
        close(fd);
    if (s.spare_fd < 0)
        s.spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/* The oldest unproven connection's index, or -1 when all are proven. */
static int oldest_unproven(void)
{
    int found = -1;
    for (int i = 0; i < s.count; i++)
        if (!s.conns[i]->proven &&
            (found < 0 || s.conns[i]->accepted < s.conns[found]->accepted))
            found = i;
    return found;
}

/* The listening socket is readable: take one connection, or refuse it.
 * When full, an unproven connection gives its slot up (rpcserve.h). */
static void accept_one(void)
{
    if (s.count >= s.cfg->max_conns) {
        int old = oldest_unproven();
        if (old < 0) {
            refuse_one(false);
            return;
        }
        conn_close(old);
    }
    int fd = accept4(s.listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE)
            refuse_one(true);
        return;
    }
    struct conn *c = calloc(1, sizeof *c);
    void *user = calloc(1, s.cfg->conn_size ? s.cfg->conn_size : 1);
    if (c == NULL || user == NULL) {
        free(c);
        free(user);
        close(fd);
        return;
    }
    c->fd = fd;
    c->user = user;
    c->since = c->accepted = clock_ms();
    c->proven = !s.cfg->proof_required;
    s.conns[s.count++] = c;
}

/* Milliseconds left before connection c's deadline (rpcserve.h). */
static long ms_left(const struct conn *c, int64_t t)
{
    long left = s.cfg->timeout_ms - (long)(t - c->since);
    if (!c->proven) {
        long unproven = s.cfg->unproven_timeout_ms - (long)(t - c->accepted);
        if (unproven < left)
            left = unproven;
    }
    return left;
}

/* Close the connections past their deadline; ms until the next one is due. */
static int close_late(void)
{
    int64_t t = clock_ms();
    long next = -1;
    for (int i = 0; i < s.count;) {
        long left = ms_left(s.conns[i], t);
        if (left <= 0) {
            conn_close(i);
            continue;
        }
        if (next < 0 || left < next)
            next = left;
        i++;
    }
    return next < 0 ? -1 : (int)(next + 1);
}

int rpcserve_run(int lfd, const struct rpcserve_config *cfg, int event_fd,
                 bool (*on_event)(void))
{
    s.cfg = cfg;
    s.listen_fd = lfd;
    s.count = 0;
    s.conns = calloc((size_t)cfg->max_conns, sizeof(struct conn *));
    struct pollfd *fds = calloc((size_t)cfg->max_conns + 2, sizeof *fds);
    s.spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (s.conns == NULL || fds == NULL) {
        free(s.conns);
        free(fds);
        return -1;
    }
    bool running = true;
    while (running) {
        int timeout = close_late();
        fds[0] = (struct pollfd){.fd = event_fd, .events = POLLIN};
        fds[1] = (struct pollfd){.fd = lfd, .events = POLLIN};
        for (int i = 0; i < s.count; i++) {
            struct conn *c = s.conns[i];
            /* A client that does not read its replies is not read from. */
            short ev = c->out_len > c->out_off ? POLLOUT : POLLIN;
            fds[i + 2] = (struct pollfd){.fd = c->fd, .events = ev};
        }
        int nconn = s.count;
        if (poll(fds, (nfds_t)nconn + 2, timeout) < 0) {
            if (errno == EINTR)
                continue;
            diag_errno("rpcserve: poll");
            break;
        }
        /* Connections first, from the last, so closing one (which moves
         * the last into its slot) never skips another. */
        for (int i = nconn - 1; i >= 0; i--) {
            short re = fds[i + 2].revents;
            if (re == 0)
                continue;
            struct conn *c = s.conns[i];
            bool ok = (re & POLLOUT) ? flush_out(c) : true;
            if (ok && (re & (POLLIN | POLLHUP | POLLERR)) && !(re & POLLOUT))
                ok = read_conn(c);
            if (ok && (re & POLLERR))
                ok = false;
            if (!ok)
                conn_close(i);
        }
        if (fds[1].revents & POLLIN)
            accept_one();
        if ((fds[0].revents & POLLIN) && !on_event())
            running = false;
    }
    while (s.count > 0)
        conn_close(s.count - 1);
    if (s.spare_fd >= 0)
        close(s.spare_fd);
    free(s.conns);
    free(fds);
    return 0;
}
