/*
 * net.h - the few socket helpers the server needs, in the spirit of a small
 * anet: listen, accept with the peer's address as text, a connection's
 * local address, connect within a timeout, and the host's own address for
 * the start-up banner.
 */
#ifndef PEERDEX_NET_H
#define PEERDEX_NET_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>

/*
 * Listen on all IPv4 interfaces at port (0: any free port).  Returns the
 * socket (close-on-exec; non-blocking if asked, for a poll() loop) and
 * stores the bound port, or -1 with errno set.
 */
int net_listen(unsigned port, int backlog, bool nonblocking, unsigned *bound_port);

/*
 * Listen on every IPv6 and IPv4 address at port (one IPv6 socket with
 * IPV6_V6ONLY off; IPv4 only where the host has no IPv6).  Blocking,
 * close-on-exec; stores the bound port.  -1 with errno set.
 */
int net_listen_dual(unsigned port, int backlog, unsigned *bound_port);

/*
 * Accept a connection (blocking, close-on-exec) and write the peer's IP
 * address as text, taken from the accept itself; an IPv4 peer of a
 * dual-stack socket (an IPv4-mapped address) as dotted IPv4.  -1 with
 * errno as accept4.
 */
int net_accept(int lfd, char *ip, size_t len);

/*
 * Write the local address of connected socket fd (the address its peer
 * reached) as text, IPv4-mapped as dotted IPv4.  0, or -1 with errno set.
 */
int net_local_ip(int fd, char *ip, size_t len);

/*
 * The source an address counts as for a per-source cap, as text into key
 * (NET_SOURCE_KEY_MAX bytes): an IPv6 address as its network of prefix
 * length v6_prefix ("2001:db8::/64"), ::1 as 127.0.0.1, an IPv4-mapped
 * address as dotted IPv4, any other address as itself.  One machine (or
 * one customer's /64) cannot take every slot by holding many addresses.
 */
#define NET_SOURCE_KEY_MAX 64
void net_source_key(const char *ip, unsigned v6_prefix, char *key);

/* True for a loopback address as text: 127.0.0.0/8 or ::1. */
bool net_is_loopback(const char *ip);

/*
 * Connect to addr within timeout_ms.  Returns a connected, blocking,
 * close-on-exec socket, or -1 (refused, unreachable, or too slow).
 */
int net_connect(const struct sockaddr_in *addr, int timeout_ms);

/*
 * Write a real IPv4 address of this host (the first interface that is up
 * and not loopback; 127.0.0.1 when there is none) as text.
 */
void net_host_ip(char *ip, size_t len);

#endif
