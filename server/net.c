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
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int net_listen(unsigned port, int backlog, bool nonblocking, unsigned *bound_port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0)
        return -1;
    int on = 1;
    struct sockaddr_in sa = {
        .sin_family = AF_INET,
        .sin_port = htons((unsigned short)port),
        .sin_addr.s_addr = htonl(INADDR_ANY),
    };
    socklen_t salen = sizeof sa;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) < 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        listen(fd, backlog) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &salen) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    *bound_port = ntohs(sa.sin_port);
    return fd;
}

int net_accept(int lfd, char *ip, size_t len)
{
    struct sockaddr_storage ss = {0};
    socklen_t sslen = sizeof ss;
    int fd = accept4(lfd, (struct sockaddr *)&ss, &sslen, SOCK_CLOEXEC);
    if (fd < 0)
        return -1;
    const void *addr = ss.ss_family == AF_INET6
        ? (const void *)&((struct sockaddr_in6 *)&ss)->sin6_addr
        : (const void *)&((struct sockaddr_in *)&ss)->sin_addr;
    if (inet_ntop(ss.ss_family, addr, ip, (socklen_t)len) == NULL)
        snprintf(ip, len, "?");
    return fd;
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
