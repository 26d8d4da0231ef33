/* test_request.c - the pure request parser: every operation, every prefix,
 * the 256-byte limit, field rules, ports, and the operation table. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "request.h"
#include "unit.h"

/* Build "f1\0f2\0..." from a NULL-terminated list; returns the length. */
static size_t build(char *buf, const char *const *fields)
{
    size_t len = 0;
    for (; *fields; fields++) {
        size_t n = strlen(*fields);
        memcpy(buf + len, *fields, n + 1);
        len += n + 1;
    }
    return len;
}

#define REQ(buf, ...) build(buf, (const char *const[]){__VA_ARGS__, NULL})
#define DT "17/12/2014 13:20:35"

static enum parse_status parse(const char *buf, size_t len, struct request *r)
{
    return request_parse(buf, len, r);
}

START_TEST(every_operation_parses)
{
    char b[REQUEST_MAX];
    struct request r;
    size_t n;

    n = REQ(b, "REGISTER", DT, "alice");
    ck_assert_int_eq(parse(b, n, &r), PARSE_OK);
    ck_assert_int_eq(r.op, OP_REGISTER);
    ck_assert_str_eq(r.datetime, DT);
    ck_assert_str_eq(r.user, "alice");
    ck_assert_ptr_null(r.path);

    n = REQ(b, "UNREGISTER", DT, "bob");
    ck_assert_int_eq(parse(b, n, &r), PARSE_OK);
    ck_assert_int_eq(r.op, OP_UNREGISTER);
    ck_assert_str_eq(r.user, "bob");

    n = REQ(b, "CONNECT", DT, "alice", "40001");
    ck_assert_int_eq(parse(b, n, &r), PARSE_OK);
    ck_assert_int_eq(r.op, OP_CONNECT);
    ck_assert_uint_eq(r.port, 40001);

    n = REQ(b, "DISCONNECT", DT, "alice");
    ck_assert_int_eq(parse(b, n, &r), PARSE_OK);
    ck_assert_int_eq(r.op, OP_DISCONNECT);

    n = REQ(b, "PUBLISH", DT, "alice", "/a/b.txt", "a description");
    ck_assert_int_eq(parse(b, n, &r), PARSE_OK);
    ck_assert_int_eq(r.op, OP_PUBLISH);
    ck_assert_str_eq(r.path, "/a/b.txt");
    ck_assert_str_eq(r.description, "a description");

    n = REQ(b, "DELETE", DT, "alice", "/a/b.txt");
    ck_assert_int_eq(parse(b, n, &r), PARSE_OK);
    ck_assert_int_eq(r.op, OP_DELETE);
    ck_assert_str_eq(r.path, "/a/b.txt");

    n = REQ(b, "LIST_USERS", DT, "alice");
    ck_assert_int_eq(parse(b, n, &r), PARSE_OK);
    ck_assert_int_eq(r.op, OP_LIST_USERS);

    n = REQ(b, "LIST_CONTENT", DT, "alice", "bob");
    ck_assert_int_eq(parse(b, n, &r), PARSE_OK);
    ck_assert_int_eq(r.op, OP_LIST_CONTENT);
    ck_assert_str_eq(r.user, "alice");
    ck_assert_str_eq(r.target, "bob");
}
END_TEST

/* Every proper prefix of a valid request needs more bytes, and the op is
 * known as soon as its name is complete. */
START_TEST(every_prefix_is_incomplete)
{
    char b[REQUEST_MAX];
    struct request r;
    size_t n = REQ(b, "PUBLISH", DT, "alice", "/a/b.txt", "desc");
    for (size_t len = 0; len < n; len++) {
        ck_assert_int_eq(parse(b, len, &r), PARSE_INCOMPLETE);
        ck_assert_int_eq(r.op, len > strlen("PUBLISH") ? OP_PUBLISH : OP_UNKNOWN);
    }
    ck_assert_int_eq(parse(b, n, &r), PARSE_OK);
}
END_TEST

START_TEST(unknown_operations)
{
    char b[REQUEST_MAX];
    struct request r;
    const char *bad[] = {"HELLO", "register", "REGISTERX", "LIST", "GET_FILE", "", "REG ISTER"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        size_t n = REQ(b, bad[i], DT, "alice");
        ck_assert_int_eq(parse(b, n, &r), PARSE_UNKNOWN_OP);
        ck_assert_int_eq(r.op, OP_UNKNOWN);
    }
    /* Known to be wrong before the name is even complete. */
    ck_assert_int_eq(parse("REGX", 4, &r), PARSE_UNKNOWN_OP);
    ck_assert_int_eq(parse("x", 1, &r), PARSE_UNKNOWN_OP);
    ck_assert_int_eq(parse("LIST_", 5, &r), PARSE_INCOMPLETE);
    ck_assert_int_eq(parse("LIST_X", 6, &r), PARSE_UNKNOWN_OP);
    /* The whole name without its NUL is still a prefix. */
    ck_assert_int_eq(parse("REGISTER", 8, &r), PARSE_INCOMPLETE);
}
END_TEST

/* EXTENSIONS has only the date-time; its reply is the result byte 0, the
 * count and the names, each NUL-terminated, and fits its buffer. */
START_TEST(extensions_request_and_reply)
{
    char b[REQUEST_MAX];
    struct request r;
    size_t n = REQ(b, "EXTENSIONS", DT);
    ck_assert_int_eq(parse(b, n, &r), PARSE_OK);
    ck_assert_int_eq(r.op, OP_EXTENSIONS);
    ck_assert_ptr_null(r.user);

    char reply[EXTENSIONS_REPLY_MAX];
    size_t len = extensions_reply(reply);
    ck_assert_uint_le(len, EXTENSIONS_REPLY_MAX);
    ck_assert_int_eq(reply[0], 0);
    ck_assert_int_eq(reply[len - 1], '\0');
    /* The count says how many names follow, each a known operation. */
    size_t pos = 1 + strlen(reply + 1) + 1, names = 0;
    while (pos < len) {
        struct request inner;
        char probe[REQUEST_MAX];
        size_t m = REQ(probe, reply + pos, DT);
        ck_assert_int_ne(parse(probe, m, &inner), PARSE_UNKNOWN_OP);
        pos += strlen(reply + pos) + 1;
        names++;
    }
    ck_assert_uint_eq(pos, len);
    char count[24];
    snprintf(count, sizeof count, "%zu", names);
    ck_assert_str_eq(reply + 1, count);
}
END_TEST

START_TEST(field_limit_is_256_bytes)
{
    char b[REQUEST_MAX + 64];
    struct request r;
    char f256[257], f257[258];
    memset(f256, 'u', 256); f256[256] = '\0';
    memset(f257, 'u', 257); f257[257] = '\0';
    size_t n;

    n = REQ(b, "REGISTER", DT, f256);
    ck_assert_int_eq(parse(b, n, &r), PARSE_OK);
    ck_assert_uint_eq(strlen(r.user), 256);

    n = REQ(b, "REGISTER", DT, f257);
    ck_assert_int_eq(parse(b, n, &r), PARSE_TOO_LONG);
    ck_assert_int_eq(r.op, OP_REGISTER);
    /* Refused as soon as the 257th byte arrives, before any NUL. */
    ck_assert_int_eq(parse(b, strlen("REGISTER") + 1 + strlen(DT) + 1 + 257, &r), PARSE_TOO_LONG);
    ck_assert_int_eq(parse(b, strlen("REGISTER") + 1 + strlen(DT) + 1 + 256, &r), PARSE_INCOMPLETE);

    n = REQ(b, "REGISTER", f257, "alice");
    ck_assert_int_eq(parse(b, n, &r), PARSE_TOO_LONG);

    f256[0] = '/';
    n = REQ(b, "PUBLISH", f256 + 1, f256 + 1, f256, f256 + 1);   /* 255,255,256,255 */
    ck_assert_int_eq(parse(b, n, &r), PARSE_OK);
    n = REQ(b, "PUBLISH", DT, "alice", "/p", f257);
    ck_assert_int_eq(parse(b, n, &r), PARSE_TOO_LONG);
    /* A bad field followed by an over-long one is still "too long". */
    n = REQ(b, "PUBLISH", DT, "alice", "relative", f257);
    ck_assert_int_eq(parse(b, n, &r), PARSE_TOO_LONG);
}
END_TEST

START_TEST(empty_fields)
{
    char b[REQUEST_MAX];
    struct request r;
    size_t n;
    n = REQ(b, "REGISTER", DT, "");
    ck_assert_int_eq(parse(b, n, &r), PARSE_BAD_FIELD);
    ck_assert_int_eq(r.op, OP_REGISTER);
    n = REQ(b, "LIST_CONTENT", DT, "alice", "");
    ck_assert_int_eq(parse(b, n, &r), PARSE_BAD_FIELD);
    n = REQ(b, "DELETE", DT, "alice", "");
    ck_assert_int_eq(parse(b, n, &r), PARSE_BAD_FIELD);
    n = REQ(b, "PUBLISH", DT, "alice", "/p", "");
    ck_assert_int_eq(parse(b, n, &r), PARSE_OK);
    ck_assert_str_eq(r.description, "");
    n = REQ(b, "REGISTER", "", "alice");
    ck_assert_int_eq(parse(b, n, &r), PARSE_OK);
    ck_assert_str_eq(r.datetime, "");
}
END_TEST

START_TEST(user_names_and_paths)
{
    char b[REQUEST_MAX];
    struct request r;
    const char *bad_users[] = {"a b", "a\tb", "a\nb", "a\x01", "a\x7f", " a"};
    for (size_t i = 0; i < sizeof bad_users / sizeof *bad_users; i++) {
        size_t n = REQ(b, "REGISTER", DT, bad_users[i]);
        ck_assert_int_eq(parse(b, n, &r), PARSE_BAD_FIELD);
    }
    size_t n = REQ(b, "REGISTER", DT, "\xc3\xa9l\xc3\xa8ve");   /* UTF-8 is fine */
    ck_assert_int_eq(parse(b, n, &r), PARSE_OK);

    n = REQ(b, "PUBLISH", DT, "alice", "relative.txt", "d");
    ck_assert_int_eq(parse(b, n, &r), PARSE_BAD_FIELD);
    n = REQ(b, "PUBLISH", DT, "alice", "/with space", "d");
    ck_assert_int_eq(parse(b, n, &r), PARSE_BAD_FIELD);
    n = REQ(b, "DELETE", DT, "alice", "relative.txt");
    ck_assert_int_eq(parse(b, n, &r), PARSE_BAD_FIELD);
    n = REQ(b, "PUBLISH", DT, "alice", "/ok", "description with\ttabs and spaces");
    ck_assert_int_eq(parse(b, n, &r), PARSE_OK);
}
END_TEST

START_TEST(ports)
{
    char b[REQUEST_MAX];
    struct request r;
    struct { const char *text; unsigned value; } good[] = {
        {"1", 1}, {"65535", 65535}, {"08080", 8080}, {"40001", 40001}};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        size_t n = REQ(b, "CONNECT", DT, "alice", good[i].text);
        ck_assert_int_eq(parse(b, n, &r), PARSE_OK);
        ck_assert_uint_eq(r.port, good[i].value);
    }
    const char *bad[] = {"0", "65536", "70000", "abc", "", "-1", "+1", " 1", "1 ",
                         "123456", "00000000001", "0x10", "1e3"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        size_t n = REQ(b, "CONNECT", DT, "alice", bad[i]);
        ck_assert_msg(parse(b, n, &r) == PARSE_BAD_FIELD, "port '%s'", bad[i]);
        ck_assert_int_eq(r.op, OP_CONNECT);
    }
}
END_TEST

START_TEST(extra_bytes_are_ignored)
{
    char b[REQUEST_MAX];
    struct request r;
    size_t n = REQ(b, "REGISTER", DT, "alice", "extra", "more");
    ck_assert_int_eq(parse(b, n, &r), PARSE_OK);
    ck_assert_str_eq(r.user, "alice");
}
END_TEST

START_TEST(operation_table)
{
    static const struct { enum op op; const char *name; unsigned char other; } want[] = {
        {OP_REGISTER, "REGISTER", 2},     {OP_UNREGISTER, "UNREGISTER", 2},
        {OP_CONNECT, "CONNECT", 3},       {OP_DISCONNECT, "DISCONNECT", 3},
        {OP_PUBLISH, "PUBLISH", 4},       {OP_DELETE, "DELETE", 4},
        {OP_LIST_USERS, "LIST_USERS", 3}, {OP_LIST_CONTENT, "LIST_CONTENT", 4},
        {OP_SEARCH, "SEARCH", 4},
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        ck_assert_str_eq(op_name(want[i].op), want[i].name);
        ck_assert_uint_eq(op_other_error(want[i].op), want[i].other);
    }
    ck_assert_ptr_null(op_name(OP_UNKNOWN));
    ck_assert_ptr_null(op_name(OP_COUNT));
}
END_TEST

/* One valid request of each operation, as fields. */
static const char *const valid[OP_COUNT][6] = {
    [OP_REGISTER]     = {"REGISTER", DT, "alice", NULL},
    [OP_UNREGISTER]   = {"UNREGISTER", DT, "alice", NULL},
    [OP_CONNECT]      = {"CONNECT", DT, "alice", "40001", NULL},
    [OP_DISCONNECT]   = {"DISCONNECT", DT, "alice", NULL},
    [OP_PUBLISH]      = {"PUBLISH", DT, "alice", "/a/b.txt", "a description", NULL},
    [OP_DELETE]       = {"DELETE", DT, "alice", "/a/b.txt", NULL},
    [OP_LIST_USERS]   = {"LIST_USERS", DT, "alice", NULL},
    [OP_LIST_CONTENT] = {"LIST_CONTENT", DT, "alice", "bob", NULL},
    [OP_SEARCH]       = {"SEARCH", DT, "alice", "lecture notes", "10", NULL},
    [OP_EXTENSIONS]   = {"EXTENSIONS", DT, NULL},
    [OP_REGISTER_AUTH] = {"REGISTER_AUTH", DT, "alice",
                          "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
                          NULL},
};

/* Every proper prefix of every operation's request (including the whole
 * request without its final NUL) needs more bytes; `op` is known once the
 * name's NUL has arrived. */
START_TEST(every_prefix_of_every_operation)
{
    char b[REQUEST_MAX];
    struct request r;
    for (int op = 0; op < OP_COUNT; op++) {
        size_t n = build(b, valid[op]);
        size_t name = strlen(valid[op][0]);
        for (size_t len = 0; len < n; len++) {
            ck_assert_msg(parse(b, len, &r) == PARSE_INCOMPLETE, "%s len %zu",
                          valid[op][0], len);
            ck_assert_int_eq(r.op, len > name ? op : OP_UNKNOWN);
        }
        ck_assert_int_eq(parse(b, n, &r), PARSE_OK);
        ck_assert_int_eq(r.op, op);
    }
}
END_TEST

/* Fields an operation does not have are NULL (and port 0). */
START_TEST(absent_fields_are_null)
{
    char b[REQUEST_MAX];
    struct request r;
    ck_assert_int_eq(parse(b, build(b, valid[OP_REGISTER]), &r), PARSE_OK);
    ck_assert_ptr_null(r.path);
    ck_assert_ptr_null(r.description);
    ck_assert_ptr_null(r.target);
    ck_assert_uint_eq(r.port, 0);
    ck_assert_int_eq(parse(b, build(b, valid[OP_LIST_CONTENT]), &r), PARSE_OK);
    ck_assert_ptr_null(r.path);
    ck_assert_ptr_null(r.description);
    ck_assert_ptr_nonnull(r.target);
    ck_assert_int_eq(parse(b, build(b, valid[OP_CONNECT]), &r), PARSE_OK);
    ck_assert_ptr_null(r.path);
    ck_assert_ptr_null(r.target);
    ck_assert_str_eq(r.datetime, DT);
}
END_TEST

/* A name refused as soon as no operation can start with it any more. */
START_TEST(partial_names_refused_early)
{
    struct request r;
    static const char *const bad[] = {
        "r", "register", "Register", "REGISTEr", "X", " ", "\x01", "C0",
        "LIST_U ", "LIST_CONTENT_", "DISCONNECTX", "UNREG_", "PUBLISHE", "\xff"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ck_assert_msg(parse(bad[i], strlen(bad[i]), &r) == PARSE_UNKNOWN_OP, "'%s'", bad[i]);
        ck_assert_int_eq(r.op, OP_UNKNOWN);
    }
    static const char *const ok[] = {"R", "RE", "LIST", "LIST_C", "LIST_USERS", "DIS", "D", "U"};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
        ck_assert_msg(parse(ok[i], strlen(ok[i]), &r) == PARSE_INCOMPLETE, "'%s'", ok[i]);
    /* A complete name that is only a prefix of another op is unknown. */
    ck_assert_int_eq(parse("LIST\0", 5, &r), PARSE_UNKNOWN_OP);
    ck_assert_int_eq(parse("REG\0dt\0a", 9, &r), PARSE_UNKNOWN_OP);
}
END_TEST

/* Each field position of each operation: 256 bytes pass the length check,
 * 257 are refused, even before their NUL arrives. */
START_TEST(every_field_over_the_limit)
{
    char b[REQUEST_MAX + 64];
    char f256[FIELD_MAX + 1], f257[FIELD_MAX + 2];
    memset(f256, '9', FIELD_MAX); f256[FIELD_MAX] = '\0';
    memset(f257, '9', FIELD_MAX + 1); f257[FIELD_MAX + 1] = '\0';
    struct request r;
    for (int op = 0; op < OP_COUNT; op++) {
        for (int k = 1; valid[op][k]; k++) {
            const char *fields[6];
            memcpy(fields, valid[op], sizeof fields);
            fields[k] = f257;
            size_t n = build(b, fields);
            ck_assert_msg(parse(b, n, &r) == PARSE_TOO_LONG, "%s field %d", valid[op][0], k);
            ck_assert_int_eq(r.op, op);
            /* Cut right after the 257th byte of that field. */
            size_t cut = 0;
            for (int j = 0; j < k; j++)
                cut += strlen(fields[j]) + 1;
            ck_assert_int_eq(parse(b, cut + FIELD_MAX + 1, &r), PARSE_TOO_LONG);
            ck_assert_int_eq(parse(b, cut + FIELD_MAX, &r), PARSE_INCOMPLETE);

            /* 256 bytes: never "too long" (a port or user may still be bad). */
            fields[k] = f256;
            n = build(b, fields);
            ck_assert_int_ne(parse(b, n, &r), PARSE_TOO_LONG);
        }
    }
}
END_TEST

/* The largest request there is fits REQUEST_MAX and parses. */
START_TEST(largest_request_fits)
{
    char b[REQUEST_MAX];
    char user[FIELD_MAX + 1], path[FIELD_MAX + 1], text[FIELD_MAX + 1];
    memset(user, 'u', FIELD_MAX); user[FIELD_MAX] = '\0';
    memset(path, 'p', FIELD_MAX); path[0] = '/'; path[FIELD_MAX] = '\0';
    memset(text, ' ', FIELD_MAX); text[FIELD_MAX] = '\0';
    size_t n = REQ(b, "PUBLISH", text, user, path, text);
    ck_assert_uint_le(n, REQUEST_MAX);
    struct request r;
    ck_assert_int_eq(parse(b, n, &r), PARSE_OK);
    ck_assert_uint_eq(strlen(r.path), FIELD_MAX);
    ck_assert_uint_eq(strlen(r.description), FIELD_MAX);
    ck_assert_uint_eq(strlen(r.datetime), FIELD_MAX);
}
END_TEST

/* A request that stops before its last NUL is incomplete, never OK. */
START_TEST(missing_final_nul)
{
    struct request r;
    static const char req[] = "LIST_CONTENT\0dt\0alice\0bob";
    ck_assert_int_eq(parse(req, sizeof req - 1, &r), PARSE_INCOMPLETE);
    ck_assert_int_eq(r.op, OP_LIST_CONTENT);
    ck_assert_int_eq(parse(req, sizeof req, &r), PARSE_OK);
}
END_TEST

/* Empty fields, for every operation that has them. */
START_TEST(empty_required_fields)
{
    char b[REQUEST_MAX];
    struct request r;
    for (int op = 0; op < OP_COUNT; op++) {
        for (int k = 2; valid[op][k]; k++) {
            const char *fields[6];
            memcpy(fields, valid[op], sizeof fields);
            fields[k] = "";
            /* A description may be empty; so may SEARCH's maximum (the default). */
            enum parse_status want = (op == OP_PUBLISH || op == OP_SEARCH) && k == 4
                                     ? PARSE_OK : PARSE_BAD_FIELD;
            ck_assert_msg(parse(b, build(b, fields), &r) == want, "%s field %d",
                          valid[op][0], k);
            ck_assert_int_eq(r.op, op);
        }
    }
}
END_TEST

/* SEARCH: a query needs a word; the maximum is empty (100) or 1..1000. */
START_TEST(search_fields)
{
    char b[REQUEST_MAX];
    struct request r;
    ck_assert_int_eq(parse(b, REQ(b, "SEARCH", DT, "bob", "Lect  NOTES", ""), &r), PARSE_OK);
    ck_assert_str_eq(r.query, "Lect  NOTES");
    ck_assert_uint_eq(r.max, 100);
    ck_assert_int_eq(parse(b, REQ(b, "SEARCH", DT, "bob", "x", "1000"), &r), PARSE_OK);
    ck_assert_uint_eq(r.max, 1000);
    ck_assert_int_eq(parse(b, REQ(b, "SEARCH", DT, "bob", "x", "1"), &r), PARSE_OK);
    ck_assert_uint_eq(r.max, 1);
    static const char *const bad_max[] = {"0", "1001", "-1", "+5", " 5", "5 ", "abc", "10000"};
    for (size_t i = 0; i < sizeof bad_max / sizeof *bad_max; i++)
        ck_assert_msg(parse(b, REQ(b, "SEARCH", DT, "bob", "x", bad_max[i]), &r) ==
                      PARSE_BAD_FIELD, "max '%s'", bad_max[i]);
    static const char *const no_word[] = {"", " ", "--- ./", "\t"};
    for (size_t i = 0; i < sizeof no_word / sizeof *no_word; i++) {
        ck_assert_msg(parse(b, REQ(b, "SEARCH", DT, "bob", no_word[i], ""), &r) ==
                      PARSE_BAD_FIELD, "query '%s'", no_word[i]);
        ck_assert_int_eq(r.op, OP_SEARCH);
    }
}
END_TEST

#define MAC42 "0fb05e45fd1915869b5bc95a48c2ebce3bfcf21fc53a6d096cd60da0ce5cde8b"
#define INNER "CONNECT", "01/01/2020 10:00:00", "alice", "40001"

/* An AUTH request: the inner request's fields, the counter and the MAC
 * (computed independently, with Python's hmac), and every prefix of it
 * incomplete. */
START_TEST(auth_wrapper)
{
    char b[REQUEST_MAX];
    struct request r;
    size_t n = REQ(b, "AUTH", "42", MAC42, INNER);
    for (size_t len = 0; len < n; len++)
        ck_assert_msg(parse(b, len, &r) == PARSE_INCOMPLETE, "len %zu", len);
    ck_assert_int_eq(parse(b, n, &r), PARSE_OK);
    ck_assert(r.auth);
    ck_assert_int_eq(r.op, OP_CONNECT);
    ck_assert_str_eq(r.user, "alice");
    ck_assert_uint_eq(r.port, 40001);
    ck_assert_uint_eq(r.proof.counter, 42);
    ck_assert_uint_eq(r.len, n);
    ck_assert_ptr_eq(r.proof.inner, b + REQ(b, "AUTH", "42", MAC42));
    REQ(b, "AUTH", "42", MAC42, INNER);
    ck_assert_uint_eq(r.proof.inner_len, n - (size_t)(r.proof.inner - b));

    uint8_t secret[AUTH_SECRET_SIZE];
    for (int i = 0; i < AUTH_SECRET_SIZE; i++)
        secret[i] = (uint8_t)i;
    struct auth_key key;
    auth_key_init(&key, secret);
    ck_assert(auth_verify(&key, &r.proof));
    secret[0] = 1;
    auth_key_init(&key, secret);
    ck_assert(!auth_verify(&key, &r.proof));
}
END_TEST

/* What the wrapper refuses: a registration inside, a nested AUTH, a bad
 * counter or MAC (the inner operation is still known, for its code). */
START_TEST(auth_wrapper_refusals)
{
    char b[REQUEST_MAX];
    struct request r;
    ck_assert_int_eq(parse(b, REQ(b, "AUTH", "1", MAC42, "REGISTER", DT, "a"), &r),
                     PARSE_BAD_FIELD);
    ck_assert_int_eq(parse(b, REQ(b, "AUTH", "1", MAC42, "REGISTER_AUTH", DT, "a", MAC42),
                           &r), PARSE_BAD_FIELD);
    ck_assert_int_eq(parse(b, REQ(b, "AUTH", "1", MAC42, "EXTENSIONS", DT), &r),
                     PARSE_BAD_FIELD);
    ck_assert_int_eq(parse(b, REQ(b, "AUTH", "1", MAC42, "AUTH", "1", MAC42, INNER), &r),
                     PARSE_UNKNOWN_OP);
    ck_assert_int_eq(parse(b, REQ(b, "AUTH", "0", MAC42, INNER), &r), PARSE_BAD_FIELD);
    ck_assert_int_eq(r.op, OP_CONNECT);
    ck_assert_int_eq(parse(b, REQ(b, "AUTH", "-1", MAC42, INNER), &r), PARSE_BAD_FIELD);
    ck_assert_int_eq(parse(b, REQ(b, "AUTH", "9223372036854775808", MAC42, INNER), &r),
                     PARSE_BAD_FIELD);
    ck_assert_int_eq(parse(b, REQ(b, "AUTH", "1", "abc", INNER), &r), PARSE_BAD_FIELD);
    ck_assert_ptr_nonnull(r.why);
    ck_assert_int_eq(parse(b, REQ(b, "AUT", "1"), &r), PARSE_UNKNOWN_OP);
    ck_assert_int_eq(parse(b, REQ(b, "REGISTER_AUTH", DT, "a", "00"), &r), PARSE_BAD_FIELD);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("request");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, every_operation_parses);
    tcase_add_test(tc, every_prefix_is_incomplete);
    tcase_add_test(tc, unknown_operations);
    tcase_add_test(tc, extensions_request_and_reply);
    tcase_add_test(tc, search_fields);
    tcase_add_test(tc, field_limit_is_256_bytes);
    tcase_add_test(tc, empty_fields);
    tcase_add_test(tc, user_names_and_paths);
    tcase_add_test(tc, ports);
    tcase_add_test(tc, extra_bytes_are_ignored);
    tcase_add_test(tc, operation_table);
    tcase_add_test(tc, every_prefix_of_every_operation);
    tcase_add_test(tc, absent_fields_are_null);
    tcase_add_test(tc, partial_names_refused_early);
    tcase_add_test(tc, every_field_over_the_limit);
    tcase_add_test(tc, largest_request_fits);
    tcase_add_test(tc, missing_final_nul);
    tcase_add_test(tc, empty_required_fields);
    tcase_add_test(tc, auth_wrapper);
    tcase_add_test(tc, auth_wrapper_refusals);
    suite_add_tcase(s, tc);

    return run_suite(s);
}
