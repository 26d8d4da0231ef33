/* http.c - the live view, /api/state and /metrics over HTTP; see http.h. */
#define _GNU_SOURCE
#include "http.h"

#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "activity.h"
#include "diag.h"
#include "metrics.h"
#include "net.h"
#include "web_assets.h"

/* Sent with every answer: the page may load only its own script and style
 * (no inline code, nothing from elsewhere), and may talk only to here. */
#define CSP "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " \
            "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

/* The daemon (NULL: off) and the registry it shows; set before it starts. */
static struct MHD_Daemon *daemon_;
static struct registry *registry;

/* One static resource: its path, bytes and type. */
struct asset {
    const char *path;
    const unsigned char *data;
    const size_t *len;
    const char *type;
};

static const struct asset assets[] = {
    {"/", asset_index_html, &asset_index_html_len, "text/html; charset=utf-8"},
    {"/page.css", asset_page_css, &asset_page_css_len, "text/css; charset=utf-8"},
    {"/page.js", asset_page_js, &asset_page_js_len, "text/javascript; charset=utf-8"},
};

/*
 * The length of the well-formed UTF-8 sequence at s (1 to 4), or 0 when s
 * starts no such sequence (a stray continuation byte, an overlong form, a
 * surrogate, past U+10FFFF, or cut short by the terminating NUL).
 */
static size_t utf8_sequence(const unsigned char *s)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    if (c < 0xC2)
        return 0;
    if ((s[1] & 0xC0) != 0x80)
        return 0;
    if (c < 0xE0)
        return 2;
    if ((s[2] & 0xC0) != 0x80 || (c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] >= 0xA0))
        return 0;
    if (c < 0xF0)
        return 3;
    if (c > 0xF4 || (s[3] & 0xC0) != 0x80 || (c == 0xF0 && s[1] < 0x90) ||
        (c == 0xF4 && s[1] >= 0x90))
        return 0;
    return 4;
}

/*
 * Write s as a JSON string: quotes, backslashes and control characters
 * escaped, '<', '>' and '&' as \u escapes too (harmless anywhere the text
 * lands), and each byte that is not part of well-formed UTF-8 as U+FFFD,
 * so the document is always valid JSON whatever bytes a client sent.
 */
static void json_string(FILE *out, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    putc('"', out);
    while (*p) {
        size_t n = utf8_sequence(p);
        if (n == 0) {
            fputs("\\ufffd", out);
            p++;
        } else if (n > 1) {
            fwrite(p, 1, n, out);
            p += n;
        } else {
            unsigned char c = *p++;
            if (c == '"' || c == '\\')
                fprintf(out, "\\%c", c);
            else if (c == '\n')
                fputs("\\n", out);
            else if (c == '\t')
                fputs("\\t", out);
            else if (c < 0x20 || c == 0x7f || c == '<' || c == '>' || c == '&')
                fprintf(out, "\\u%04x", c);
            else
                putc(c, out);
        }
    }
    putc('"', out);
}

/* Unix milliseconds as an ISO 8601 UTC time, e.g. "2026-12-02T11:55:01.123Z". */
static void json_time(FILE *out, int64_t ms)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    char text[32];
    gmtime_r(&secs, &tm);
    strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(out, "\"%s.%03dZ\"", text, (int)(ms % 1000));
}

/* The body of /api/state (see docs/http.md) into out. */
static void write_state(FILE *out)
{
    static struct reg_user_view users[HTTP_USERS_MAX];     /* HTTP thread only */
    static struct activity recent[ACTIVITY_MAX];
    struct reg_totals t;
    size_t n_users, n_recent = activity_recent(recent, ACTIVITY_MAX);
    registry_view(registry, users, HTTP_USERS_MAX, &n_users, &t);
    struct metrics_totals m;
    metrics_totals(&m);

    fprintf(out, "{\"uptime_s\":%.3f,\"totals\":{\"users\":%zu,\"connected\":%zu,"
                 "\"files\":%zu,\"operations\":%lu,\"connections_open\":%lu,"
                 "\"expiries\":%lu},\"operations\":{",
            metrics_uptime(), t.users, t.connected, t.files, m.operations,
            m.connections_open, m.expiries);
    for (int op = 0; op < OP_COUNT; op++) {
        fprintf(out, "%s\"%s\":{", op ? "," : "", op_name((enum op)op));
        bool first = true;
        for (unsigned c = 0; c < RESULT_CODES; c++) {
            unsigned long k = metrics_operations((enum op)op, c);
            if (k > 0) {
                fprintf(out, "%s\"%u\":%lu", first ? "" : ",", c, k);
                first = false;
            }
        }
        putc('}', out);
    }
    fputs("},\"users\":[", out);
    for (size_t i = 0; i < n_users; i++) {
        fputs(i ? ",{\"name\":" : "{\"name\":", out);
        json_string(out, users[i].name);
        fputs(",\"address\":", out);
        json_string(out, users[i].ip);
        fprintf(out, ",\"port\":%u,\"files\":%zu,\"since\":%" PRId64 "}",
                users[i].port, users[i].files, users[i].since);
    }
    fputs("],\"recent\":[", out);
    for (size_t i = 0; i < n_recent; i++) {
        const struct activity *a = &recent[i];
        fprintf(out, "%s{\"seq\":%" PRIu64 ",\"time_ms\":%" PRId64 ",\"time\":",
                i ? "," : "", a->seq, a->time_ms);
        json_time(out, a->time_ms);
        fputs(",\"user\":", out);
        json_string(out, a->user);
        fputs(",\"operation\":", out);
        json_string(out, a->op);
        fputs(",\"path\":", out);
        json_string(out, a->path);
        fprintf(out, ",\"result\":%u}", a->code);
    }
    fputs("]}\n", out);
}

/* Queue a response with the headers every answer carries; frees r. */
static enum MHD_Result send_response(struct MHD_Connection *conn, unsigned status,
                                     struct MHD_Response *r, const char *type)
{
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Content-Security-Policy", CSP);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    enum MHD_Result ok = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ok;
}

/* A short text answer: an error, or the reason a method is refused. */
static enum MHD_Result send_text(struct MHD_Connection *conn, unsigned status,
                                 const char *text)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    if (r != NULL && status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, "Allow", "GET, HEAD");
    return send_response(conn, status, r, "text/plain; charset=utf-8");
}

/* A body written by fn into memory, sent and then freed. */
static enum MHD_Result send_written(struct MHD_Connection *conn, void (*fn)(FILE *),
                                    const char *type)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    if (out == NULL)
        return send_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
    fn(out);
    if (fclose(out) != 0) {
        free(buf);
        return send_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_FREE);
    if (r == NULL)
        free(buf);
    return send_response(conn, MHD_HTTP_OK, r, type);
}

/* /metrics, for send_written(). */
static void write_metrics(FILE *out)
{
    metrics_write(out, registry);
}

/* libmicrohttpd's request callback: route a GET or HEAD; refuse the rest. */
static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version,
                              const char *upload_data, size_t *upload_data_size,
                              void **con_cls)
{
    (void)cls, (void)version, (void)upload_data, (void)upload_data_size, (void)con_cls;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return send_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "read-only: GET or HEAD\n");
    if (strcmp(url, "/api/state") == 0)
        return send_written(conn, write_state, "application/json");
    if (strcmp(url, "/metrics") == 0)
        return send_written(conn, write_metrics, "text/plain; version=0.0.4; charset=utf-8");
    for (size_t i = 0; i < sizeof assets / sizeof assets[0]; i++)
        if (strcmp(url, assets[i].path) == 0)
            return send_response(conn, MHD_HTTP_OK,
                                 MHD_create_response_from_buffer(
                                     *assets[i].len, (void *)assets[i].data,
                                     MHD_RESPMEM_PERSISTENT),
                                 assets[i].type);
    return send_text(conn, MHD_HTTP_NOT_FOUND, "not found\n");
}

/*
 * A non-blocking listening socket on host:port; the port bound in *bound
 * and the address as URL text (IPv6 in brackets) in url_host.  -1 after
 * saying why.
 */
static int http_listen(const char *host, unsigned long port, unsigned *bound,
                       char *url_host, size_t url_len)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV}, *res;
    char service[16];
    snprintf(service, sizeof service, "%lu", port);
    int rc = getaddrinfo(host, service, &hints, &res);
    if (rc != 0) {
        diag("server: cannot serve HTTP on %s: %s\n", host, gai_strerror(rc));
        return -1;
    }
    int fd = -1, err = 0;
    for (struct addrinfo *a = res; a != NULL && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
            err = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        struct sockaddr_storage ss = {0};
        socklen_t sl = sizeof ss;
        if (bind(fd, a->ai_addr, a->ai_addrlen) < 0 || listen(fd, 64) < 0 ||
            getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
            err = errno;
            close(fd);
            fd = -1;
            continue;
        }
        char ip[INET6_ADDRSTRLEN] = "?", serv[8] = "0";
        getnameinfo((struct sockaddr *)&ss, sl, ip, sizeof ip, serv, sizeof serv,
                    NI_NUMERICHOST | NI_NUMERICSERV);
        *bound = (unsigned)strtoul(serv, NULL, 10);
        if (strcmp(ip, "0.0.0.0") == 0 || strcmp(ip, "::") == 0)
            net_host_ip(ip, sizeof ip);         /* all addresses: name one */
        snprintf(url_host, url_len, strchr(ip, ':') ? "[%s]" : "%s", ip);
    }
    freeaddrinfo(res);
    if (fd < 0)
        diag("server: cannot serve HTTP on %s port %lu: %s\n", host, port,
                strerror(err));
    return fd;
}

int http_start(const struct hostport *addr, struct registry *reg)
{
    unsigned bound;
    char url_host[INET6_ADDRSTRLEN + 2];
    int fd = http_listen(addr->host, addr->port, &bound, url_host, sizeof url_host);
    if (fd < 0)
        return -1;
    registry = reg;
    activity_start();
    /* One internal thread (epoll or poll) serves every HTTP connection; a
     * few browsers and a scraper need no more. */
    daemon_ = MHD_start_daemon(
        MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, answer, NULL,
        MHD_OPTION_LISTEN_SOCKET, fd,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)64,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)16,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
        MHD_OPTION_END);
    if (daemon_ == NULL) {
        diag("server: cannot start the HTTP thread\n");
        close(fd);
        return -1;
    }
    diag("server: live view at http://%s:%u/ (also /api/state, /metrics)\n",
                    url_host, bound);
    return 0;
}

void http_stop(void)
{
    if (daemon_ != NULL)
        MHD_stop_daemon(daemon_);
    daemon_ = NULL;
}
