/*
 * loadgen.c - closed-loop load generator for the index server protocol.
 *
 *   loadgen -p PORT [-h HOST] [-t THREADS] [-d SECONDS] [-m MODE] [-x PREFIX]
 *           [-n COUNT] [-o OWNER] [-w]
 *
 * Each thread repeatedly connects, sends one request, reads the whole reply
 * until the server closes, and closes; it measures each operation's latency
 * (connect to close).  Modes:
 *   register   REGISTER of new, unique users (the write path)
 *   list       LIST_CONTENT of OWNER by OWNER (the read path; see setup)
 *   mixed      per 10 operations: 4 list, 3 register, 2 publish (new files of
 *              OWNER_pub, so OWNER's listing keeps its size), 1 list_users
 *   setup      register and connect OWNER and OWNER_pub, publish COUNT files
 *              for OWNER, then exit
 *   fill       COUNT users, each with 10 files, across the threads, then exit;
 *              with -w the paths and descriptions are drawn from a fixed
 *              vocabulary of 1,000 words (vocab_word()): each file has two
 *              words in its path and three in its description
 *   search     SEARCH by OWNER for two vocabulary words drawn at random
 *              (a -w fill makes such a pair match about 20 files)
 *   publish    PUBLISH of new files of OWNER_pub (as in mixed)
 * With -a, the users are authenticated (the AUTH extension): REGISTER is
 * REGISTER_AUTH with a fixed secret, and in list mode each thread lists as
 * its own authenticated requester PREFIX_r<thread> (registered and connected
 * before the clock starts), every request wrapped in AUTH with its HMAC.
 * Prints one line: ops, ops/s, p50 and p99 latency in microseconds, errors.
 * An error is a failed connect/send/receive or an unexpected result code.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <nettle/hmac.h>

#define DATETIME "17/12/2014 13:20:35"
#define BUCKETS 4096            /* latency histogram: see bucket_of() */
#include <stdbool.h>

static struct sockaddr_in server;
static const char *mode = "register";
static const char *prefix = "lg";
static const char *owner = "bench_owner";
static char publisher[96];          /* OWNER_pub: mixed mode publishes here */
static long count = 1000;
static bool vocabulary;             /* -w: fill with vocabulary words */
static int nthreads = 1;
static double seconds = 2.0;
static atomic_bool stop_flag;
static bool authed;                 /* -a */
static const char secret_hex[] =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

struct worker {
    pthread_t tid;
    int id;
    uint64_t counter;               /* -a: this thread's requester's last AUTH counter */
    uint64_t ops, errors;
    uint64_t hist[BUCKETS];
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Latency histogram: bucket b holds latencies up to 1.01^(b+1) us (1% steps). */
static int bucket_of(double us)
{
    int b = us <= 1 ? 0 : (int)(log(us) / log(1.01));
    return b < BUCKETS ? b : BUCKETS - 1;
}

/* The upper latency (us) of a bucket. */
static double bucket_us(int b)
{
    return pow(1.01, b + 1);
}

/* Frame fields (NULL-terminated list) into buf; returns the length. */
static size_t frame(char *buf, size_t cap, const char *const *fields)
{
    size_t len = 0;
    for (; *fields; fields++) {
        size_t n = strlen(*fields) + 1;
        if (len + n > cap)
            break;
        memcpy(buf + len, *fields, n);
        len += n;
    }
    return len;
}

/* One operation: connect, send, read until close.  Returns the result
 * code, or -1 on a network error. */
static int one_op(const char *req, size_t len)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int code = -1;
    if (connect(fd, (struct sockaddr *)&server, sizeof server) == 0 &&
        send(fd, req, len, MSG_NOSIGNAL) == (ssize_t)len) {
        char buf[65536];
        ssize_t n;
        bool first = true;
        while ((n = recv(fd, buf, sizeof buf, 0)) > 0) {
            if (first)
                code = (unsigned char)buf[0];
            first = false;
        }
        if (n < 0)
            code = -1;
    }
    close(fd);
    return code;
}

/*
 * Word i (0..999) of the fixed vocabulary: three syllables out of ten, so
 * that words share prefixes as real ones do ("kalomi", "kalone", ...).
 */
static const char *vocab_word(unsigned i, char *buf)
{
    static const char *const syl[10] = {"ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo",
                                        "ze", "pu"};
    i %= 1000;
    snprintf(buf, 8, "%s%s%s", syl[i / 100], syl[i / 10 % 10], syl[i % 10]);
    return buf;
}

/* A small fast generator (xorshift), one state per thread. */
static unsigned next_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return (unsigned)(*s >> 32);
}

#define FRAME(cap, ...) (frame(req, (cap), (const char *const[]){__VA_ARGS__, NULL}))
#define OP(...) FRAME(sizeof req, __VA_ARGS__)

/*
 * Wrap the len-byte request in req (of cap bytes) in AUTH with counter:
 * HMAC-SHA256 under the fixed secret of the counter text, its NUL and the
 * request (docs/protocol.md).  Returns the new length.
 */
static size_t wrap_auth(char *req, size_t len, size_t cap, uint64_t counter)
{
    static uint8_t secret[32];
    for (int i = 0; i < 32; i++)
        secret[i] = (uint8_t)i;        /* secret_hex */
    char head[128], text[24];
    int tn = snprintf(text, sizeof text, "%llu", (unsigned long long)counter);
    struct hmac_sha256_ctx ctx;
    uint8_t mac[32];
    hmac_sha256_set_key(&ctx, sizeof secret, secret);
    hmac_sha256_update(&ctx, (size_t)tn + 1, (const uint8_t *)text);
    hmac_sha256_update(&ctx, len, (const uint8_t *)req);
    hmac_sha256_digest(&ctx, sizeof mac, mac);
    int hn = snprintf(head, sizeof head, "AUTH%c%s%c", 0, text, 0);
    for (int i = 0; i < 32; i++)
        hn += snprintf(head + hn, sizeof head - (size_t)hn, "%02x", mac[i]);
    head[hn++] = '\0';
    if ((size_t)hn + len > cap)
        return len;
    memmove(req + hn, req, len);
    memcpy(req, head, (size_t)hn);
    return (size_t)hn + len;
}

/* -a: this worker's authenticated requester's name. */
static void requester(const struct worker *w, char *out, size_t n)
{
    snprintf(out, n, "%s_r%d", prefix, w->id);
}

/* Build the next request of this worker's mode; *want is the expected code. */
static size_t next_request(struct worker *w, uint64_t k, char *req, size_t cap, int *want)
{
    char user[64], path[96];
    const char *m = mode;
    if (strcmp(m, "mixed") == 0) {
        static const char *const plan[10] = {"list", "register", "list", "publish", "list",
                                             "register", "list_users", "publish", "list",
                                             "register"};
        m = plan[k % 10];
    }
    *want = 0;
    if (strcmp(m, "register") == 0) {
        snprintf(user, sizeof user, "%s_%d_%llu", prefix, w->id, (unsigned long long)k);
        if (authed)
            return FRAME(cap, "REGISTER_AUTH", DATETIME, user, secret_hex);
        return FRAME(cap, "REGISTER", DATETIME, user);
    }
    if (strcmp(m, "publish") == 0) {
        snprintf(path, sizeof path, "/bench/%s/%d/%llu", prefix, w->id, (unsigned long long)k);
        return FRAME(cap, "PUBLISH", DATETIME, publisher, path, "benchmark file");
    }
    if (strcmp(m, "list_users") == 0)
        return FRAME(cap, "LIST_USERS", DATETIME, owner);
    if (strcmp(m, "search") == 0) {
        char a[8], b[8], query[32];
        uint64_t s = (uint64_t)w->id * 7919 + k * 2654435761u + 1;
        next_rand(&s);
        snprintf(query, sizeof query, "%s %s", vocab_word(next_rand(&s), a),
                 vocab_word(next_rand(&s), b));
        return FRAME(cap, "SEARCH", DATETIME, owner, query, "");
    }
    if (authed) {
        requester(w, user, sizeof user);
        size_t len = FRAME(cap, "LIST_CONTENT", DATETIME, user, owner);
        return wrap_auth(req, len, cap, ++((struct worker *)w)->counter);
    }
    return FRAME(cap, "LIST_CONTENT", DATETIME, owner, owner);
}

/* -a: register and connect each worker's requester, before the clock starts. */
static int setup_requesters(struct worker *w)
{
    char req[1200], user[64];
    int errors = 0;
    for (int i = 0; i < nthreads; i++) {
        requester(&w[i], user, sizeof user);
        errors += one_op(req, OP("REGISTER_AUTH", DATETIME, user, secret_hex)) != 0;
        size_t len = OP("CONNECT", DATETIME, user, "40000");
        errors += one_op(req, wrap_auth(req, len, sizeof req, ++w[i].counter)) != 0;
    }
    return errors;
}

/* A timed worker: operations until the stop flag. */
static void *timed_worker(void *arg)
{
    struct worker *w = arg;
    char req[1200];
    for (uint64_t k = 0; !atomic_load_explicit(&stop_flag, memory_order_relaxed); k++) {
        int want;
        size_t len = next_request(w, k, req, sizeof req, &want);
        double t0 = now_s();
        int code = one_op(req, len);
        double us = (now_s() - t0) * 1e6;
        if (code != want)
            w->errors++;
        w->ops++;
        w->hist[bucket_of(us)]++;
    }
    return NULL;
}

/* Fill: users id, id+T, ... < count, each registered, connected, 10 files. */
static void *fill_worker(void *arg)
{
    struct worker *w = arg;
    char req[1200], user[64], path[96], desc[64], v[5][8];
    static const char *const ext[8] = {"pdf", "txt", "mp3", "ogg", "jpg", "tar", "c", "md"};
    uint64_t s = (uint64_t)w->id * 104729 + 12345;
    for (long u = w->id; u < count; u += nthreads) {
        snprintf(user, sizeof user, "%s%ld", prefix, u);
        w->errors += one_op(req, OP("REGISTER", DATETIME, user)) != 0;
        w->errors += one_op(req, OP("CONNECT", DATETIME, user, "40000")) != 0;
        for (int f = 0; f < 10; f++) {
            const char *d = "x";
            if (vocabulary) {
                for (int i = 0; i < 5; i++)
                    vocab_word(next_rand(&s), v[i]);
                snprintf(path, sizeof path, "/home/%s/%s-%s-%02d.%s", user, v[0], v[1], f,
                         ext[next_rand(&s) % 8]);
                snprintf(desc, sizeof desc, "%s %s %s", v[2], v[3], v[4]);
                d = desc;
            } else {
                snprintf(path, sizeof path, "/home/%s/file%02d.dat", user, f);
            }
            w->errors += one_op(req, OP("PUBLISH", DATETIME, user, path, d)) != 0;
        }
        w->ops += 12;
    }
    return NULL;
}

/* Setup: the owner with COUNT files, for the read path. */
static int setup(void)
{
    char req[1200], path[96];
    int errors = 0;
    errors += one_op(req, OP("REGISTER", DATETIME, owner)) != 0;
    errors += one_op(req, OP("CONNECT", DATETIME, owner, "40000")) != 0;
    errors += one_op(req, OP("REGISTER", DATETIME, publisher)) != 0;
    errors += one_op(req, OP("CONNECT", DATETIME, publisher, "40001")) != 0;
    for (long i = 0; i < count; i++) {
        snprintf(path, sizeof path, "/home/%s/shared/file_%06ld.bin", owner, i);
        errors += one_op(req, OP("PUBLISH", DATETIME, owner, path, "benchmark file")) != 0;
    }
    printf("setup owner=%s files=%ld errors=%d\n", owner, count, errors);
    return errors ? 1 : 0;
}

/* A number from the command line within [lo, hi], or the usage message. */
static double number(const char *s, double lo, double hi)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "loadgen: bad number '%s'\n", s);
        exit(2);
    }
    return v;
}

static void usage(void)
{
    fprintf(stderr, "usage: loadgen -p PORT [-h HOST] [-t THREADS] [-d SECONDS] "
                    "[-m register|list|mixed|search|publish|setup|fill] [-w] [-x PREFIX] [-n COUNT] "
                    "[-o OWNER] [-a]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    long port = 0;
    int opt;
    while ((opt = getopt(argc, argv, "ap:h:t:d:m:x:n:o:w")) != -1) {
        switch (opt) {
        case 'p': port = (long)number(optarg, 1, 65535); break;
        case 'h': host = optarg; break;
        case 't': nthreads = (int)number(optarg, 1, 1024); break;
        case 'd': seconds = number(optarg, 0.001, 3600); break;
        case 'm': mode = optarg; break;
        case 'x': prefix = optarg; break;
        case 'n': count = (long)number(optarg, 0, 1e9); break;
        case 'o': owner = optarg; break;
        case 'w': vocabulary = true; break;
        case 'a': authed = true; break;
        default: usage();
        }
    }
    snprintf(publisher, sizeof publisher, "%s_pub", owner);
    server.sin_family = AF_INET;
    server.sin_port = htons((uint16_t)port);
    if (port < 1 || port > 65535 || inet_pton(AF_INET, host, &server.sin_addr) != 1 ||
        nthreads < 1 || nthreads > 1024 || seconds <= 0)
        usage();
    if (strcmp(mode, "setup") == 0)
        return setup();

    struct worker *w = calloc((size_t)nthreads, sizeof *w);
    bool fill = strcmp(mode, "fill") == 0;
    for (int i = 0; i < nthreads; i++)
        w[i].id = i;
    if (authed && strcmp(mode, "list") == 0 && setup_requesters(w) != 0) {
        fprintf(stderr, "loadgen: cannot set up the authenticated requesters\n");
        return 1;
    }
    double t0 = now_s();
    for (int i = 0; i < nthreads; i++) {
        pthread_create(&w[i].tid, NULL, fill ? fill_worker : timed_worker, &w[i]);
    }
    if (!fill) {
        struct timespec d = {.tv_sec = (time_t)seconds,
                             .tv_nsec = (long)((seconds - (double)(time_t)seconds) * 1e9)};
        nanosleep(&d, NULL);
        atomic_store(&stop_flag, true);
    }
    uint64_t ops = 0, errors = 0;
    static uint64_t hist[BUCKETS];
    for (int i = 0; i < nthreads; i++) {
        pthread_join(w[i].tid, NULL);
        ops += w[i].ops;
        errors += w[i].errors;
        for (int b = 0; b < BUCKETS; b++)
            hist[b] += w[i].hist[b];
    }
    double elapsed = now_s() - t0;
    double p50 = 0, p99 = 0;
    uint64_t seen = 0;
    for (int b = 0; b < BUCKETS && ops; b++) {
        seen += hist[b];
        if (p50 == 0 && seen * 2 >= ops)
            p50 = bucket_us(b);
        if (p99 == 0 && seen * 100 >= ops * 99)
            p99 = bucket_us(b);
    }
    printf("mode=%s threads=%d ops=%llu seconds=%.3f ops_s=%.1f p50_us=%.0f p99_us=%.0f "
           "errors=%llu\n", mode, nthreads, (unsigned long long)ops, elapsed, ops / elapsed,
           p50, p99, (unsigned long long)errors);
    free(w);
    return 0;
}
