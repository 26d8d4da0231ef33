/*
 * rpcserve.h - serve one ONC-RPC program over TCP from a single poll() loop.
 *
 * Why not libtirpc's svc_vc: its blocking connections let one client that
 * stalls halfway through a request hold the whole server (35 s per read),
 * and its non-blocking mode (RPC_SVC_CONNMAXREC_SET, libtirpc 1.3.3) takes a
 * record sent in several fragments, as libtirpc's own clients send anything
 * over 64 KB, for garbage.  So this module reads the record marking
 * (RFC 5531) itself, non-blocking, and leaves the rest to libtirpc's XDR:
 * xdr_callmsg() for the call header, the program's XDR routines for the
 * arguments, xdr_replymsg() for the reply.
 *
 * Every connection must deliver a whole request (and take its reply)
 * within `timeout_ms` of its accept or of its previous request, or it is
 * closed: that bounds both idle and trickling clients.
 *
 * With `proof_required` (a program with a key), a connection is "unproven"
 * until one of its calls proves that the client holds the key (the
 * dispatcher says so in its reply).  An unproven connection is closed
 * `unproven_timeout_ms` after its accept, whatever it calls meanwhile (a
 * call that proves nothing never extends its life), and when all
 * `max_conns` slots are taken, a new connection takes the slot of the
 * oldest unproven one: clients without the key can never hold the slots
 * that the key's holders need.  Without `proof_required` every connection
 * counts as proven.
 *
 * Past `max_conns` with every connection proven, or when the process is out
 * of descriptors, a new connection is accepted and closed at once (a spare
 * descriptor is kept for that), so the loop never spins on a listening
 * socket it cannot serve.  A record is at most
 * `max_record` bytes; its buffer grows with the bytes actually received.
 */
#ifndef PEERDEX_RPCSERVE_H
#define PEERDEX_RPCSERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <rpc/rpc.h>

/*
 * A procedure's answer: the accept status and, for SUCCESS, the result;
 * `proven` when the call proved that the client holds the program's key.
 */
struct rpcserve_reply {
    enum accept_stat stat;
    xdrproc_t proc;             /* encodes result */
    void *result;               /* must stay valid until the call returns */
    bool proven;
};

/*
 * Serve procedure `proc`: decode its arguments from `args` (and free them
 * again), do the work.  `conn` is this connection's own zeroed area of
 * `conn_size` bytes, kept until it closes.
 */
typedef struct rpcserve_reply (*rpcserve_dispatch)(void *conn, uint32_t proc, XDR *args);

struct rpcserve_config {
    uint32_t prog, vers;
    rpcserve_dispatch dispatch;
    size_t conn_size;
    int max_conns;
    long timeout_ms;
    size_t max_record;
    bool proof_required;
    long unproven_timeout_ms;
};

/*
 * Serve the program on the listening socket lfd (non-blocking) until
 * on_event (called when event_fd is readable) returns false.  Closes
 * every connection before returning; -1 if it could not start.
 */
int rpcserve_run(int lfd, const struct rpcserve_config *cfg, int event_fd,
                 bool (*on_event)(void));

#endif
