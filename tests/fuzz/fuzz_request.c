/*
 * fuzz_request.c - libFuzzer target for the pure request parser.
 *
 * request_parse() sees every byte a client sends, so besides "does not
 * crash" this checks what framing.c and handlers.c rely on:
 *  - a PARSE_OK request has exactly its operation's fields, each pointing
 *    into the input and NUL-terminated within it, at most FIELD_MAX bytes,
 *    with the values the operation accepts (user names without blanks,
 *    absolute paths, CONNECT's port in 1..65535, all digits and equal to
 *    its text);
 *  - "need more" never happens at or past REQUEST_MAX bytes, so the reader's
 *    fixed buffer always suffices;
 *  - a verdict on a prefix other than "need more" is the verdict on the
 *    whole input, so the reader may stop at the first one it gets;
 *  - op is known exactly when the operation name is complete and known
 *    (after an AUTH wrapper: the inner request's name), and a wrapped
 *    request's proof covers exactly its inner request.
 * A failed check prints the reason and aborts, which libFuzzer (and the
 * corpus regression driver, regress_main.c) reports as a crash.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Abort with the failed condition when an invariant does not hold. */
#define CHECK(cond)                                                       \
    do {                                                                  \
        if (!(cond)) {                                                    \
            fprintf(stderr, "fuzz_request: check failed: %s (line %d)\n", \
                    #cond, __LINE__);                                     \
            abort();                                                      \
        }                                                                 \
    } while (0)

/* A field of a PARSE_OK request lies in buf and ends with a NUL there. */
static void check_field(const char *f, const char *buf, size_t len)
{
    CHECK(f != NULL);
    CHECK(f >= buf && f < buf + len);
    const char *nul = memchr(f, '\0', (size_t)(buf + len - f));
    CHECK(nul != NULL);
    CHECK((size_t)(nul - f) <= FIELD_MAX);
}

/* True when s is a non-empty word without blanks or control bytes. */
static int is_word(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s; s++)
        if ((unsigned char)*s <= ' ' || *s == 0x7f)
            return 0;
    return 1;
}

/* Check the fields of a PARSE_OK request against its operation. */
static void check_ok(const struct request *r, const char *buf, size_t len)
{
    CHECK(r->op >= 0 && r->op < OP_COUNT);
    CHECK(op_name(r->op) != NULL);
    const char *start = buf;
    if (r->auth) {
        start = r->proof.inner;
        CHECK(start > buf && start < buf + len);
        CHECK(r->proof.inner_len == len - (size_t)(start - buf) ||
              r->proof.inner_len < len - (size_t)(start - buf));
        CHECK(r->proof.counter >= 1 && r->proof.counter <= INT64_MAX);
        check_field(r->proof.counter_text, buf, len);
    }
    CHECK(strncmp(start, op_name(r->op), len - (size_t)(start - buf)) == 0);
    check_field(r->datetime, buf, len);
    if (r->op == OP_EXTENSIONS) {       /* discovery: no user, no other field */
        CHECK(r->user == NULL && r->path == NULL && r->target == NULL && !r->auth);
        return;
    }
    check_field(r->user, buf, len);
    CHECK(is_word(r->user));

    int has_path = r->op == OP_PUBLISH || r->op == OP_DELETE;
    CHECK((r->path != NULL) == has_path);
    if (has_path) {
        check_field(r->path, buf, len);
        CHECK(r->path[0] == '/' && is_word(r->path));
    }
    CHECK((r->description != NULL) == (r->op == OP_PUBLISH));
    if (r->description)
        check_field(r->description, buf, len);
    CHECK((r->target != NULL) == (r->op == OP_LIST_CONTENT));
    CHECK((r->query != NULL) == (r->op == OP_SEARCH));
    if (r->query) {
        check_field(r->query, buf, len);
        CHECK(r->max >= 1 && r->max <= 1000);
    }
    if (r->target) {
        check_field(r->target, buf, len);
        CHECK(is_word(r->target));
    }
    if (r->op == OP_CONNECT) {
        /* The port field follows the user's NUL. */
        const char *text = r->user + strlen(r->user) + 1;
        check_field(text, buf, len);
        CHECK(r->port >= 1 && r->port <= 65535);
        CHECK(strlen(text) >= 1 && strspn(text, "0123456789") == strlen(text));
        CHECK(strtoul(text, NULL, 10) == r->port);
    } else {
        CHECK(r->port == 0);
    }
}

/* Parse a prefix of buf; the fields must match the whole-input result. */
static void check_prefix(const char *buf, size_t n, enum parse_status whole,
                         const struct request *r)
{
    struct request p;
    enum parse_status st = request_parse(buf, n, &p);
    if (st == PARSE_INCOMPLETE)
        return;
    CHECK(st == whole);
    CHECK(p.op == r->op);
    if (st == PARSE_OK)
        CHECK(p.user == r->user && p.path == r->path &&
              p.description == r->description && p.target == r->target &&
              p.port == r->port);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exactly sized copy, so any read past the end is caught. */
    char *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);

    struct request r;
    enum parse_status st = request_parse(buf, size, &r);
    CHECK(st >= PARSE_OK && st <= PARSE_BAD_FIELD);
    /* The name that decides op: after an AUTH wrapper (its name and two
     * fields), the inner request's. */
    size_t nuls = size >= 5 && memcmp(buf, "AUTH", 5) == 0 ? 4 : 1, seen = 0;
    for (size_t i = 0; i < size && seen < nuls; i++)
        seen += buf[i] == '\0';
    int name_done = seen == nuls;
    /* A wrapper field too long ends the request before its inner name counts. */
    CHECK((r.op != OP_UNKNOWN) == (name_done && st != PARSE_UNKNOWN_OP) ||
          (nuls == 4 && st == PARSE_TOO_LONG && r.op == OP_UNKNOWN));
    CHECK(name_done || st == PARSE_INCOMPLETE || st == PARSE_UNKNOWN_OP ||
          (nuls == 4 && st == PARSE_TOO_LONG));     /* a wrapper field too long */
    if (r.op != OP_UNKNOWN) {
        CHECK(r.op >= 0 && r.op < OP_COUNT);
        unsigned char other = op_other_error(r.op);
        CHECK(other >= 2 && other <= 4);
    }
    if (st == PARSE_INCOMPLETE)
        CHECK(size < REQUEST_MAX);
    if (st == PARSE_OK)
        check_ok(&r, buf, size);

    /*
     * The reader stops at the first verdict: prefixes ending at each of the
     * first field ends, and the input less its last byte, must agree.  (A
     * request has at most five fields, after at most three of an AUTH
     * wrapper, so nine ends cover every decision.)
     */
    size_t ends = 0;
    for (size_t i = 0; i < size && ends < 9; i++)
        if (buf[i] == '\0') {
            check_prefix(buf, i + 1, st, &r);
            ends++;
        }
    if (size > 0)
        check_prefix(buf, size - 1, st, &r);

    free(buf);
    return 0;
}
