/*
 * config.h - the index server's configuration, read in one place: the
 * command line and the environment variables, each checked once at start-up
 * against its limits.  Modules read the fields of `config`; none reads an
 * option or getenv() itself.
 *
 * Adding a setting: a field below and one row in config.c's table (its
 * flag or variable, its help line, its default and its limits); parsing,
 * checking, the error message and the help text follow from the row.
 *
 * `config` is written by config_load() before any other thread starts and
 * only read afterwards, so it needs no lock.
 */
#ifndef PEERDEX_CONFIG_H
#define PEERDEX_CONFIG_H

#include <stdbool.h>

/* A listening address given as [HOST:]PORT; HOST defaults to 127.0.0.1. */
struct hostport {
    const char *host;
    unsigned long port;             /* 0 picks a free one */
    bool set;                       /* false: the option was not given */
};

struct config {
    /* Command line. */
    unsigned long port;             /* -p: TCP port, 0 picks a free one */
    unsigned long max_conns;        /* -c: connections served at once */
    unsigned long timeout_ms;       /* -t: time a client has for its request */
    unsigned long probe_s;          /* -L: liveness probe interval; 0: off */
    unsigned long probe_failures;   /* -N: failed probes in a row that expire */
    const char *log_key_file;       /* -k: key shared with the log server; NULL: none */
    unsigned long max_per_source;   /* -i: connections at once from one IP address */
    unsigned long v6_prefix;        /* -P: IPv6 sources counted per network of this length */
    unsigned long files_per_user;   /* -f: files one user may publish */
    unsigned long listing_bytes;    /* -b: bytes of one user's LIST_CONTENT reply */
    struct hostport http;           /* -H: the live view and /metrics; unset: off */
    /* Environment: the operation log (docs/oplog.md). */
    const char *log_host;           /* LOG_RPC_IP; NULL: no operation log */
    unsigned long log_port;         /* LOG_RPC_PORT; 0: ask rpcbind */
    unsigned long log_prog;         /* LOG_RPC_PROG; 0: the protocol's number */
    unsigned long log_queue_max;    /* LOG_QUEUE_MAX: entries waiting at most */
    unsigned long console_bytes;    /* CONSOLE_BUFFER: console bytes waiting at most */
    /* The state directory (docs/architecture.md, "Durable state"). */
    const char *state_dir;          /* -d: NULL: the classic in-memory index */
    const char *sync;               /* -S: "batch" or "always" */
    unsigned long log_budget;       /* -B: undelivered journal bytes at most */
    unsigned long compact_bytes;    /* -C: a journal segment this big: snapshot */
    unsigned long dump;             /* -D: print the state of -d DIR and exit */
    unsigned long accept_loss;      /* -A: start despite missing state files */
    const char *forget_key;         /* -K: with -d: forget this user's secret and exit */
};

extern struct config config;

/*
 * Fill `config` from the defaults, the environment and argv.  Returns -1
 * when the server should run; otherwise the status to exit with at once
 * (0 after -h, 2 after a bad command line, 1 after a bad environment
 * variable), having said why on stderr.
 */
int config_load(int argc, char **argv);

#endif
