/*
 * baseline_server.c - the benchmark's yardstick: the least a thread-per-
 * connection server of this protocol must do.
 *
 *   baseline_server -p PORT      (0: any free port; the port is printed)
 *
 * Accepts, starts a detached thread per connection (64 KiB stack, as the
 * index server), reads one whole request (the operation name tells how many
 * NUL-terminated fields follow), answers the single byte 0, and closes.  No
 * parsing beyond that, no state, no output per request.
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

/* One connection: read the request, answer one byte, close. */
static void *serve(void *arg)
{
    int fd = *(int *)arg;
    free(arg);
    yardstick_read_request(fd);
    send(fd, "", 1, MSG_NOSIGNAL);
    close(fd);
    return NULL;
}

int main(int argc, char **argv)
{
    char *end = NULL;
    long port = argc == 3 && strcmp(argv[1], "-p") == 0 ? strtol(argv[2], &end, 10) : -1;
    if (port < 0 || port > 65535 || (end && *end)) {
        fprintf(stderr, "usage: baseline_server -p PORT\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    socklen_t alen = sizeof a;
    if (bind(ls, (struct sockaddr *)&a, sizeof a) != 0 || listen(ls, 1024) != 0 ||
        getsockname(ls, (struct sockaddr *)&a, &alen) != 0) {
        perror("baseline_server");
        return 1;
    }
    printf("baseline listening on port %u\n", ntohs(a.sin_port));
    fflush(stdout);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    for (;;) {
        int fd = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        pthread_t t;
        int *arg = malloc(sizeof *arg);
        if (arg == NULL) {
            close(fd);
            continue;
        }
        *arg = fd;
        if (pthread_create(&t, &attr, serve, arg) != 0) {
            close(fd);
            free(arg);
        }
    }
}
