/* config.c - command line and environment into `config`; see config.h. */
#define _GNU_SOURCE
#include "config.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decimal.h"
#include "diag.h"

struct config config;

enum kind {
    K_UINT,         /* a whole number in [lo, hi] */
    K_MS,           /* seconds, possibly fractional, in [lo, hi] ms; stored in ms */
    K_TEXT,         /* any non-empty text */
    K_FLAG,         /* no argument: sets the field to 1 */
    K_HOSTPORT      /* [HOST:]PORT, the port in [lo, hi]: a struct hostport */
};

/* One setting: where it comes from, what it means, its default and limits. */
struct setting {
    char flag;                  /* command-line letter, or 0 */
    const char *long_name;      /* --long-name for the same option, or NULL */
    const char *env;            /* environment variable, or NULL */
    const char *arg;            /* the argument's name in the help */
    const char *what;           /* what it is, for "bad ..." messages */
    const char *help;
    const char *deflt;          /* default, parsed like a given value; NULL: none */
    bool required;
    enum kind kind;
    unsigned long long lo, hi;
    void *field;                /* in `config`: unsigned long, const char * or
                                   struct hostport */
};

static const struct setting settings[] = {
    {'p', "port", NULL, "PORT", "port", "TCP port to listen on (1-65535; 0 picks a free one)",
     NULL, true, K_UINT, 0, 65535, &config.port},
    {'c', "connections", NULL, "N", "connection cap", "connections served at once",
     "1024", false, K_UINT, 1, 1000000, &config.max_conns},
    {'t', "timeout", NULL, "SECS", "timeout", "time a client has to send its request",
     "10", false, K_MS, 1, 3600000, &config.timeout_ms},
    {'L', "liveness", NULL, "SECS", "probe interval",
     "probe each connected user's endpoint this often; 0 is off",
     "0", false, K_UINT, 0, 86400, &config.probe_s},
    {'N', "probe-failures", NULL, "N", "probe failure count",
     "with -L: disconnect a user after N failed probes in a row",
     "3", false, K_UINT, 1, 1000000, &config.probe_failures},
    {'k', "log-key", NULL, "FILE", "key file",
     "sign the operation log's batches with the key in FILE (as log_server -k)",
     NULL, false, K_TEXT, 0, 0, &config.log_key_file},
    {'i', "per-source", NULL, "N", "per-source cap",
     "connections at once from one IP address; 0 is no cap", "0", false, K_UINT, 0,
     1000000, &config.max_per_source},
    {'P', "v6-prefix", NULL, "BITS", "IPv6 prefix length",
     "with -i: IPv6 sources in one network of this prefix length count as one source",
     "64", false, K_UINT, 1, 128, &config.v6_prefix},
    {'f', "files-per-user", NULL, "N", "file quota",
     "files one user may publish; 0 is no quota", "0", false, K_UINT, 0, 100000000,
     &config.files_per_user},
    {'b', "listing-bytes", NULL, "BYTES", "listing quota",
     "bytes of one user's LIST_CONTENT reply; 0 is no quota", "0", false, K_UINT, 0,
     1ULL << 40, &config.listing_bytes},
    {'H', "http", NULL, "[HOST:]PORT", "HTTP address",
     "serve the live view and /metrics over HTTP (HOST 127.0.0.1 unless given); unset: off",
     NULL, false, K_HOSTPORT, 0, 65535, &config.http},
    {0, NULL, "LOG_RPC_IP", "HOST", "LOG_RPC_IP",
     "log server's address or name (unset: no operation log)",
     NULL, false, K_TEXT, 0, 0, &config.log_host},
    {0, NULL, "LOG_RPC_PORT", "PORT", "LOG_RPC_PORT",
     "log server's TCP port (unset: ask its rpcbind)",
     NULL, false, K_UINT, 1, 65535, &config.log_port},
    {0, NULL, "LOG_RPC_PROG", "PROG", "LOG_RPC_PROG",
     "log server's ONC-RPC program number, in decimal as rpcinfo shows it, from 536870912 "
     "to 1610612735 (0x20000000-0x5fffffff); the log server must have the same "
     "(unset: 772611589, the protocol's 0x2E0D1E05)",
     NULL, false, K_UINT, 0x20000000, 0x5fffffff, &config.log_prog},
    {0, NULL, "LOG_QUEUE_MAX", "N", "LOG_QUEUE_MAX", "log entries waiting for delivery at most",
     "65536", false, K_UINT, 1, 1000000000, &config.log_queue_max},
    {0, NULL, "CONSOLE_BUFFER", "BYTES", "CONSOLE_BUFFER",
     "console bytes waiting for stdout (or stderr) before lines are dropped and counted",
     "1048576", false, K_UINT, 256, 1ULL << 30, &config.console_bytes},
    {'d', "state-dir", NULL, "DIR", "state directory",
     "keep the index in DIR across restarts (unset: in memory only)",
     NULL, false, K_TEXT, 0, 0, &config.state_dir},
    {'S', "sync", NULL, "MODE", "sync mode",
     "with -d: batch (fdatasync at most 1 s late) or always (before each reply)",
     "batch", false, K_TEXT, 0, 0, &config.sync},
    {'B', "log-budget", NULL, "BYTES", "log budget",
     "with -d and a log server: journal bytes kept for it before refusing operations",
     "1073741824", false, K_UINT, 4096, 1ULL << 50, &config.log_budget},
    {'C', "compact", NULL, "BYTES", "compaction size",
     "with -d: journal bytes that start a snapshot and a new journal",
     "67108864", false, K_UINT, 1, 1ULL << 50, &config.compact_bytes},
    {'D', "dump", NULL, "", "dump", "with -d: print the users, connections and files and exit",
     NULL, false, K_FLAG, 0, 0, &config.dump},
    {'A', "accept-loss", NULL, "", "accept loss",
     "with -d: start although files the state directory must hold are missing "
     "(the loss is printed and marked in the operation log)",
     NULL, false, K_FLAG, 0, 0, &config.accept_loss},
    {'K', "forget-key", NULL, "USER", "user name",
     "with -d: make USER (whose secret is lost) a classic user again and exit",
     NULL, false, K_TEXT, 0, 0, &config.forget_key},
};
#define N_SETTINGS (sizeof settings / sizeof settings[0])

/* Print the usage, the options and the environment variables to f. */
static void usage(FILE *f)
{
    fprintf(f, "usage: server");
    for (size_t i = 0; i < N_SETTINGS; i++)
        if (settings[i].flag)
            fprintf(f, settings[i].required ? " -%c%s%s" : " [-%c%s%s]",
                    settings[i].flag, *settings[i].arg ? " " : "", settings[i].arg);
    fprintf(f, "\n");
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const struct setting *s = &settings[i];
        if (!s->flag)
            continue;
        fprintf(f, "  -%c %-6s %s", s->flag, s->arg, s->help);
        if (s->long_name)
            fprintf(f, " (also --%s)", s->long_name);
        if (s->deflt)
            fprintf(f, " (default %s)", s->deflt);
        fprintf(f, "\n");
    }
    fprintf(f, "  -h, --help  this help\nenvironment:\n");
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const struct setting *s = &settings[i];
        if (!s->env)
            continue;
        fprintf(f, "  %s=%s  %s", s->env, s->arg, s->help);
        if (s->deflt)
            fprintf(f, " (default %s)", s->deflt);
        fprintf(f, "\n");
    }
}

/* Parse text as setting s's value and store it; false when it is invalid. */
static bool set(const struct setting *s, const char *text)
{
    unsigned long long v;
    switch (s->kind) {
    case K_UINT:
        if (!decimal_parse(text, s->lo, s->hi, &v))
            return false;
        *(unsigned long *)s->field = (unsigned long)v;
        return true;
    case K_MS: {
        char *end;
        double secs = strtod(text, &end);
        if (end == text || *end != '\0' || !(secs * 1000 >= (double)s->lo) ||
            secs * 1000 > (double)s->hi)
            return false;
        *(unsigned long *)s->field = (unsigned long)(secs * 1000);
        return true;
    }
    case K_TEXT:
        if (*text == '\0')
            return false;
        *(const char **)s->field = text;
        return true;
    case K_FLAG:
        *(unsigned long *)s->field = 1;
        return true;
    case K_HOSTPORT: {
        /* The port follows the last ':'; an IPv6 host may be in brackets. */
        struct hostport *hp = s->field;
        const char *colon = strrchr(text, ':');
        if (!decimal_parse(colon ? colon + 1 : text, s->lo, s->hi, &v))
            return false;
        const char *host = "127.0.0.1";
        if (colon != NULL) {
            size_t n = (size_t)(colon - text);
            if (n >= 2 && text[0] == '[' && text[n - 1] == ']') {
                text++;
                n -= 2;
            }
            if (n == 0 || (host = strndup(text, n)) == NULL)
                return false;
        }
        *hp = (struct hostport){.host = host, .port = (unsigned long)v, .set = true};
        return true;
    }
    }
    return false;
}

/* The setting with this command-line letter, or NULL. */
static const struct setting *by_flag(int flag)
{
    for (size_t i = 0; i < N_SETTINGS; i++)
        if (settings[i].flag && settings[i].flag == flag)
            return &settings[i];
    return NULL;
}

int config_load(int argc, char **argv)
{
    char optstring[2 * N_SETTINGS + 2], *o = optstring;
    struct option longopts[N_SETTINGS + 2], *l = longopts;
    bool given[N_SETTINGS] = {false};

    for (size_t i = 0; i < N_SETTINGS; i++) {
        const struct setting *s = &settings[i];
        if (s->deflt && !set(s, s->deflt))
            abort();            /* a default outside its own limits */
        if (s->flag) {
            bool arg = s->kind != K_FLAG;
            *o++ = s->flag;
            if (arg)
                *o++ = ':';
            if (s->long_name)
                *l++ = (struct option){s->long_name, arg ? required_argument : no_argument,
                                       NULL, s->flag};
        }
    }
    *o++ = 'h';
    *o = '\0';
    *l++ = (struct option){"help", no_argument, NULL, 'h'};
    *l = (struct option){NULL, 0, NULL, 0};

    /* The environment first, so that the command line wins where both set one. */
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const struct setting *s = &settings[i];
        const char *v = s->env ? getenv(s->env) : NULL;
        if (v == NULL || *v == '\0')
            continue;           /* unset or empty: the default */
        if (!set(s, v)) {
            diag("server: bad %s '%s'\n", s->env, v);
            return 1;
        }
    }

    int opt;
    while ((opt = getopt_long(argc, argv, optstring, longopts, NULL)) != -1) {
        const struct setting *s = by_flag(opt);
        if (opt == 'h') {
            usage(stdout);
            return 0;
        }
        if (s == NULL) {
            usage(stderr);
            return 2;
        }
        if (!set(s, s->kind == K_FLAG ? "" : optarg)) {
            diag("server: bad %s '%s'\n", s->what, optarg);
            usage(stderr);
            return 2;
        }
        given[s - settings] = true;
    }
    for (size_t i = 0; i < N_SETTINGS; i++)
        if (settings[i].required && !given[i] && !config.dump && !config.forget_key) {
            fprintf(stderr, "server: missing -%c %s (the %s)\n", settings[i].flag,
                    settings[i].arg, settings[i].what);
            usage(stderr);
            return 2;
        }
    if (strcmp(config.sync, "batch") != 0 && strcmp(config.sync, "always") != 0) {
        diag("server: bad sync mode '%s' (batch or always)\n", config.sync);
        usage(stderr);
        return 2;
    }
    if ((config.dump || config.forget_key) && config.state_dir == NULL) {
        diag("server: --%s needs -d DIR\n", config.dump ? "dump" : "forget-key");
        usage(stderr);
        return 2;
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    return -1;
}
