/*
 * plain_xfer.c - the transfer benchmark's yardstick: a plain file sender and
 * a plain reader that writes to a file, with nothing of the protocol.
 *
 *   plain_xfer send PORT FILE     serve FILE once with sendfile(), then exit
 *                                 (prints "listening on port N"; 0 = any)
 *   plain_xfer recv PORT OUT      connect to 127.0.0.1:PORT, write all to OUT
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static int send_file(int port, const char *path)
{
    int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(ls, (struct sockaddr *)&a, sizeof a) != 0 || listen(ls, 1) != 0 ||
        getsockname(ls, (struct sockaddr *)&a, &alen) != 0)
        return perror("bind"), 1;
    printf("listening on port %u\n", ntohs(a.sin_port));
    fflush(stdout);
    int c = accept(ls, NULL, NULL), fd = open(path, O_RDONLY);
    struct stat st;
    if (c < 0 || fd < 0 || fstat(fd, &st) != 0)
        return perror("accept/open"), 1;
    off_t off = 0;
    while (off < st.st_size)
        if (sendfile(c, fd, &off, (size_t)(st.st_size - off)) <= 0)
            return perror("sendfile"), 1;
    close(c);
    return 0;
}

static int recv_file(int port, const char *path)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int out = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out < 0 || connect(s, (struct sockaddr *)&a, sizeof a) != 0)
        return perror("connect/open"), 1;
    static char buf[1 << 20];
    ssize_t n;
    while ((n = recv(s, buf, sizeof buf, 0)) > 0)
        if (write(out, buf, (size_t)n) != n)
            return perror("write"), 1;
    close(out);
    return n < 0;
}

int main(int argc, char **argv)
{
    char *end = NULL;
    long port = argc == 4 ? strtol(argv[2], &end, 10) : -1;
    if (port < 0 || port > 65535 || (end && *end))
        argc = 0;
    if (argc == 4 && strcmp(argv[1], "send") == 0)
        return send_file((int)port, argv[3]);
    if (argc == 4 && strcmp(argv[1], "recv") == 0)
        return recv_file((int)port, argv[3]);
    fprintf(stderr, "usage: plain_xfer send PORT FILE | plain_xfer recv PORT OUT\n");
    return 2;
}
