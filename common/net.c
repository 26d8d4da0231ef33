/* net.c - socket helpers; see net.h. */
#define _GNU_SOURCE
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/*
 * Bind a stream socket of this family to every address at port and listen.
 * An AF_INET6 socket takes IPv4 too (IPV6_V6ONLY off).
 */
static int listen_on(int family, unsigned port, int backlog, bool nonblocking,
                     unsigned *bound_port)
{
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0)
        return -1;
    int on = 1, off = 0;
    struct sockaddr_storage ss = {0};
    socklen_t sslen;
    if (family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((unsigned short)port);
        a->sin6_addr = in6addr_any;
        sslen = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((unsigned short)port);
        a->sin_addr.s_addr = htonl(INADDR_ANY);
        sslen = sizeof *a;
    }
    if ((family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off) < 0) ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) < 0 ||
        bind(fd, (struct sockaddr *)&ss, sslen) < 0 ||
        listen(fd, backlog) < 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &sslen) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    *bound_port = ntohs(family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                           : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

int net_listen(unsigned port, int backlog, bool nonblocking, unsigned *bound_port)
{
    return listen_on(AF_INET, port, backlog, nonblocking, bound_port);
}

int net_listen_dual(unsigned port, int backlog, unsigned *bound_port)
{
    int fd = listen_on(AF_INET6, port, backlog, false, bound_port);
    if (fd < 0 && (errno == EAFNOSUPPORT || errno == EADDRNOTAVAIL))
        fd = listen_on(AF_INET, port, backlog, false, bound_port);
    return fd;
}

/* Write the address in ss as text: an IPv4-mapped IPv6 address as dotted IPv4. */
static void address_text(const struct sockaddr_storage *ss, char *ip, size_t len)
{
    const void *addr = &((const struct sockaddr_in *)ss)->sin_addr;
    int family = AF_INET;
    if (ss->ss_family == AF_INET6) {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)ss)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a6)) {
            addr = &a6->s6_addr[12];
        } else {
            addr = a6;
            family = AF_INET6;
        }
    }
    if (inet_ntop(family, addr, ip, (socklen_t)len) == NULL)
        snprintf(ip, len, "?");
}

int net_accept(int lfd, char *ip, size_t len)
{
    struct sockaddr_storage ss = {0};
    socklen_t sslen = sizeof ss;
    int fd = accept4(lfd, (struct sockaddr *)&ss, &sslen, SOCK_CLOEXEC);
    if (fd < 0)
        return -1;
    address_text(&ss, ip, len);
    return fd;
}

int net_local_ip(int fd, char *ip, size_t len)
{
    struct sockaddr_storage ss = {0};
    socklen_t sslen = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sslen) < 0)
        return -1;
    address_text(&ss, ip, len);
    return 0;
}

void net_source_key(const char *ip, unsigned v6_prefix, char *key)
{
    struct in6_addr a6;
    if (inet_pton(AF_INET6, ip, &a6) != 1) {
        snprintf(key, NET_SOURCE_KEY_MAX, "%s", ip);    /* IPv4 (or unknown): itself */
        return;
    }
    if (IN6_IS_ADDR_LOOPBACK(&a6)) {
        snprintf(key, NET_SOURCE_KEY_MAX, "127.0.0.1");
        return;
    }
    if (IN6_IS_ADDR_V4MAPPED(&a6)) {
        inet_ntop(AF_INET, &a6.s6_addr[12], key, NET_SOURCE_KEY_MAX);
        return;
    }
    if (v6_prefix > 128)
        v6_prefix = 128;
    for (unsigned bit = v6_prefix; bit < 128; bit++)
        a6.s6_addr[bit / 8] &= (uint8_t)~(0x80u >> (bit % 8));
    char net[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, &a6, net, sizeof net);
    snprintf(key, NET_SOURCE_KEY_MAX, "%s/%u", net, v6_prefix);
}

bool net_is_loopback(const char *ip)
{
    return strncmp(ip, "127.", 4) == 0 || strcmp(ip, "::1") == 0;
}

int net_connect(const struct sockaddr_in *addr, int timeout_ms)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    bool ok = connect(fd, (const struct sockaddr *)addr, sizeof *addr) == 0;
    if (!ok && errno == EINPROGRESS) {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int err = 0;
        socklen_t len = sizeof err;
        ok = poll(&p, 1, timeout_ms) == 1 &&
             getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
    }
    if (!ok || fcntl(fd, F_SETFL, 0) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

void net_host_ip(char *ip, size_t len)
{
    struct ifaddrs *ifs, *i;
    snprintf(ip, len, "127.0.0.1");
    if (getifaddrs(&ifs) < 0)
        return;
    for (i = ifs; i != NULL; i = i->ifa_next) {
        if (i->ifa_addr == NULL || i->ifa_addr->sa_family != AF_INET ||
            !(i->ifa_flags & IFF_UP) || (i->ifa_flags & IFF_LOOPBACK))
            continue;
        inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr,
                  ip, (socklen_t)len);
        break;
    }
    freeifaddrs(ifs);
}
