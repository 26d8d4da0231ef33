/*
 * ceiling_server.c - the benchmark's ceiling: what a server of this protocol
 * could reach on this machine with no registry and nothing to decide.
 *
 *   ceiling_server -p PORT [-n THREADS] [-b BYTES]
 *
 * THREADS threads (default: one per core) are made once; each has its own
 * SO_REUSEPORT listener on PORT (0: a free one, printed) and blocks in
 * accept4() on it, reads one whole request (the operation name tells how
 * many NUL-terminated fields follow), writes a reply built once at start
 * (BYTES long, default 1: the result byte 0 and, past it, NUL-terminated
 * filler, as large as the real listing it stands for), and closes.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "yardstick.h"

static char *reply;
static size_t reply_len = 1;

/* A listener on port with SO_REUSEPORT, or -1. */
static int listener(unsigned port)
{
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (ls < 0 || setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        setsockopt(ls, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
        bind(ls, (struct sockaddr *)&a, sizeof a) != 0 || listen(ls, 1024) != 0) {
        perror("ceiling_server");
        return -1;
    }
    return ls;
}

/* One thread: accept on its own listener, read the request, answer, close. */
static void *serve(void *arg)
{
    int ls = *(const int *)arg;
    for (;;) {
        int fd = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        yardstick_read_request(fd);
        for (size_t off = 0; off < reply_len;) {
            ssize_t n = send(fd, reply + off, reply_len - off, MSG_NOSIGNAL);
            if (n <= 0)
                break;
            off += (size_t)n;
        }
        close(fd);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    long port = -1, threads = sysconf(_SC_NPROCESSORS_ONLN), bytes = 1;
    int opt;
    while ((opt = getopt(argc, argv, "p:n:b:")) != -1) {
        char *end;
        long v = strtol(optarg, &end, 10);
        if (*end != '\0' || v < 0)
            opt = '?';
        switch (opt) {
        case 'p': port = v; break;
        case 'n': threads = v; break;
        case 'b': bytes = v; break;
        default:
            fprintf(stderr, "usage: ceiling_server -p PORT [-n THREADS] [-b BYTES]\n");
            return 2;
        }
    }
    if (port < 0 || port > 65535 || threads < 1 || threads > 1024 || bytes < 1) {
        fprintf(stderr, "usage: ceiling_server -p PORT [-n THREADS] [-b BYTES]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    reply_len = (size_t)bytes;
    reply = calloc(1, reply_len);
    for (size_t i = 1; reply != NULL && i < reply_len; i++)
        reply[i] = i % 32 == 0 || i == reply_len - 1 ? '\0' : 'x';

    /* The first listener picks the port; the others share it. */
    int first = listener((unsigned)port);
    struct sockaddr_in a = {0};
    socklen_t alen = sizeof a;
    if (reply == NULL || first < 0 || getsockname(first, (struct sockaddr *)&a, &alen) != 0)
        return 1;
    unsigned bound = ntohs(a.sin_port);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    static int listeners[1024];
    for (long i = 0; i < threads; i++) {
        listeners[i] = i == 0 ? first : listener(bound);
        pthread_t t;
        if (listeners[i] < 0 || pthread_create(&t, &attr, serve, &listeners[i]) != 0)
            return 1;
    }
    printf("ceiling listening on port %u (%ld threads, %zu-byte reply)\n", bound, threads,
           reply_len);
    fflush(stdout);
    pause();
    return 0;
}
