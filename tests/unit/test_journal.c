/* test_journal.c - CRC-32C, record framing, operation records, the journal
 * on disk (append, replay, torn tails cut, damage refused with its offset),
 * snapshots, the registry's journal hook (refused operations journaled,
 * a failing hook undoes the operation), and an expiry journaled and
 * replayed through the state directory. */
#define _GNU_SOURCE
#include <check.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "crc32c.h"
#include "durable.h"
#include "journal.h"
#include "manifest.h"
#include "record.h"
#include "registry.h"
#include "snapshot.h"
#include "unit.h"

/* ---- a temporary state directory, removed after each test ---- */

static char dir[64];

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static void make_dir(void)
{
    strcpy(dir, "/tmp/peerdex-unit-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void remove_dir(void)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static bool noop_compact(void *ctx)
{
    (void)ctx;
    return true;
}

static struct journal *open_journal(uint64_t last)
{
    struct journal_config c = {.dir = dir, .sync = SYNC_BATCH, .compact_bytes = 1 << 30,
                               .budget = 1 << 30, .compact = noop_compact};
    struct journal *j = journal_open(&c, last);
    ck_assert_ptr_nonnull(j);
    return j;
}

/* Append n REGISTER records for user0..user<n-1>. */
static void append_n(struct journal *j, int n)
{
    char name[32];
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "user%d", i);
        struct jrec r = {.op = OP_REGISTER, .datetime = "17/12/2014 13:20:35", .user = name};
        ck_assert(journal_append(j, &r));
    }
}

struct seen {
    int n;
    uint64_t seqs[64];
};

static int count_rec(void *ctx, const struct jrec *r)
{
    struct seen *s = ctx;
    s->seqs[s->n++] = r->seq;
    return 0;
}

static char seg1[128];

static size_t seg1_size(void)
{
    struct stat st;
    snprintf(seg1, sizeof seg1, "%s/journal.%020d", dir, 1);
    ck_assert_int_eq(stat(seg1, &st), 0);
    return (size_t)st.st_size;
}

/* ---- tests ---- */

START_TEST(crc32c_check_value)
{
    ck_assert_uint_eq(crc32c(0, "123456789", 9), 0xE3069283u);
    ck_assert_uint_eq(crc32c(crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
    ck_assert_uint_eq(crc32c(0, "", 0), 0);
    ck_assert_uint_eq(crc32c_portable(0, "123456789", 9), 0xE3069283u);
}
END_TEST

/* The CPU's instruction (where used) and the table agree at every length
 * and alignment, and when a CRC is extended piece by piece. */
START_TEST(crc32c_instruction_matches_table)
{
    unsigned char buf[300];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)(i * 131 + 7);
    for (size_t off = 0; off < 9; off++)
        for (size_t len = 0; off + len <= sizeof buf; len += 1 + len / 8) {
            uint32_t want = crc32c_portable(0, buf + off, len);
            ck_assert_uint_eq(crc32c(0, buf + off, len), want);
            size_t half = len / 2;
            ck_assert_uint_eq(crc32c(crc32c(0, buf + off, half), buf + off + half,
                                     len - half), want);
        }
}
END_TEST

/* A record is OK whole, TORN at every shorter length, BAD with any byte flipped. */
START_TEST(record_torn_and_bad)
{
    static const unsigned char hello[5] = {'h', 'e', 'l', 'l', 'o'};
    unsigned char buf[RECORD_HEAD + sizeof hello], copy[sizeof buf];
    uint32_t len;
    memcpy(buf + RECORD_HEAD, hello, sizeof hello);
    record_seal(buf, 5);
    ck_assert_int_eq(record_check(buf, sizeof buf, &len), RECORD_OK);
    ck_assert_uint_eq(len, 5);
    for (size_t cut = 0; cut < sizeof buf; cut++)
        ck_assert_int_eq(record_check(buf, cut, &len), RECORD_TORN);
    for (size_t i = 0; i < sizeof buf; i++) {
        memcpy(copy, buf, sizeof buf);
        copy[i] ^= 0x10;
        ck_assert_int_eq(record_check(copy, sizeof copy, &len), RECORD_BAD);
    }
}
END_TEST

START_TEST(jrec_round_trip)
{
    unsigned char buf[JREC_MAX];
    struct jrec in = {.seq = 42, .status = 3, .port = 65535, .op = OP_PUBLISH,
                      .datetime = "17/12/2014 13:20:35", .user = "alice",
                      .path = "/a b", .description = "a file", .ip = "::1"}, out;
    size_t n = jrec_encode(&in, buf);
    uint32_t len;
    ck_assert_uint_gt(n, 0);
    ck_assert_int_eq(record_check(buf, n, &len), RECORD_OK);
    ck_assert_int_eq(jrec_decode(buf + RECORD_HEAD, len, &out), 0);
    ck_assert_uint_eq(out.seq, 42);
    ck_assert_uint_eq(out.status, 3);
    ck_assert_uint_eq(out.port, 65535);
    ck_assert_int_eq(out.op, OP_PUBLISH);
    ck_assert_str_eq(out.path, "/a b");
    ck_assert_str_eq(out.description, "a file");
    ck_assert_str_eq(out.target, "");
    ck_assert_str_eq(out.ip, "::1");
    /* A payload cut anywhere does not decode. */
    for (uint32_t cut = 0; cut < len; cut++)
        ck_assert_int_eq(jrec_decode(buf + RECORD_HEAD, cut, &out), -1);
}
END_TEST

/* Appended records replay in order with their seqs; a reopen continues the seqs. */
START_TEST(append_replay_reopen)
{
    make_dir();
    struct journal *j = open_journal(0);
    append_n(j, 5);
    journal_close(j);
    struct seen s = {0};
    uint64_t last;
    ck_assert_int_eq(journal_replay(dir, 0, true, count_rec, NULL, &s, &last), 0);
    ck_assert_int_eq(s.n, 5);
    ck_assert_uint_eq(last, 5);
    for (int i = 0; i < 5; i++)
        ck_assert_uint_eq(s.seqs[i], (uint64_t)i + 1);

    j = open_journal(last);
    append_n(j, 2);
    journal_close(j);
    memset(&s, 0, sizeof s);
    ck_assert_int_eq(journal_replay(dir, 3, true, count_rec, NULL, &s, &last), 0);
    ck_assert_int_eq(s.n, 4);       /* only those after the snapshot's seq 3 */
    ck_assert_uint_eq(s.seqs[0], 4);
    ck_assert_uint_eq(last, 7);
    remove_dir();
}
END_TEST

/* Cut the journal at every byte offset of its last record: the start keeps
 * the others, cuts the tail off the file, and appends after them. */
START_TEST(torn_tail_every_offset)
{
    make_dir();
    struct journal *j = open_journal(0);
    append_n(j, 3);
    size_t two = seg1_size();
    append_n(j, 1);
    journal_close(j);
    size_t full = seg1_size();
    for (size_t cut = two; cut < full; cut++) {
        ck_assert_int_eq(truncate(seg1, (off_t)cut), 0);
        struct seen s = {0};
        uint64_t last;
        ck_assert_int_eq(journal_replay(dir, 0, true, count_rec, NULL, &s, &last), 0);
        ck_assert_int_eq(s.n, 3);
        ck_assert_uint_eq(last, 3);
        ck_assert_uint_eq(seg1_size(), two);
        j = open_journal(last);
        append_n(j, 1);             /* seq 4 again, now whole */
        journal_close(j);
        ck_assert_uint_eq(seg1_size(), full);
    }
    remove_dir();
}
END_TEST

/* A flipped byte in any record but a torn last one: replay refuses. */
START_TEST(flipped_byte_refuses)
{
    make_dir();
    struct journal *j = open_journal(0);
    append_n(j, 4);
    journal_close(j);
    size_t full = seg1_size();
    for (size_t off = 0; off < full; off += 7) {
        int fd = open(seg1, O_RDWR);
        unsigned char b;
        ck_assert_int_eq(pread(fd, &b, 1, (off_t)off), 1);
        b ^= 0x01;
        ck_assert_int_eq(pwrite(fd, &b, 1, (off_t)off), 1);
        struct seen s = {0};
        uint64_t last;
        ck_assert_int_eq(journal_replay(dir, 0, true, count_rec, NULL, &s, &last), -1);
        b ^= 0x01;
        ck_assert_int_eq(pwrite(fd, &b, 1, (off_t)off), 1);
        close(fd);
        ck_assert_uint_eq(seg1_size(), full);   /* nothing was cut */
    }
    remove_dir();
}
END_TEST

/* The runs of seqs no segment holds, as the gap hook hears them. */
struct gaps {
    int n;
    uint64_t from[4], to[4];
};

static int note_gap(void *ctx, uint64_t from, uint64_t to, const char *next)
{
    (void)next;
    struct gaps *g = ctx;
    g->from[g->n] = from;
    g->to[g->n++] = to;
    return 0;
}

static int no_record(void *ctx, const struct jrec *r)
{
    (void)ctx, (void)r;
    return 0;
}

/* Three segments, the middle one removed: without a gap hook the replay
 * stops (it used to skip the missing seqs); with one, it hears them. */
START_TEST(missing_middle_segment)
{
    make_dir();
    struct journal *j = open_journal(0);
    uint64_t last;
    append_n(j, 3);
    ck_assert(journal_rotate(j, &last));
    append_n(j, 2);
    ck_assert(journal_rotate(j, &last));
    append_n(j, 2);
    journal_close(j);
    char path[128];
    snprintf(path, sizeof path, "%s/journal.%020d", dir, 4);
    ck_assert_int_eq(unlink(path), 0);
    struct seen s = {0};
    ck_assert_int_eq(journal_replay(dir, 0, true, count_rec, NULL, &s, &last), -1);
    /* A snapshot holding them makes them unneeded. */
    memset(&s, 0, sizeof s);
    ck_assert_int_eq(journal_replay(dir, 5, true, count_rec, NULL, &s, &last), 0);
    ck_assert_int_eq(s.n, 2);
    ck_assert_uint_eq(last, 7);
    struct gaps g = {0};
    ck_assert_int_eq(journal_replay(dir, 0, true, no_record, note_gap, &g, &last), 0);
    ck_assert_int_eq(g.n, 1);
    ck_assert_uint_eq(g.from[0], 4);
    ck_assert_uint_eq(g.to[0], 5);
    /* Seqs held only by a snapshot past the last segment are heard too. */
    memset(&g, 0, sizeof g);
    snprintf(path, sizeof path, "%s/journal.%020d", dir, 1);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(journal_replay(dir, 9, true, no_record, note_gap, &g, &last), 0);
    ck_assert_int_eq(g.n, 2);
    ck_assert_uint_eq(g.from[0], 1);
    ck_assert_uint_eq(g.to[0], 5);
    ck_assert_uint_eq(g.from[1], 8);
    ck_assert_uint_eq(g.to[1], 9);
    remove_dir();
}
END_TEST

/* DIR/manifest: written and read back; absent reads as 0; damaged as -1. */
START_TEST(manifest_round_trip)
{
    make_dir();
    struct manifest m = {.snapshot_seq = 221, .snapshot_users = 220, .snapshot_files = 3,
                         .snapshot_bytes = 9000, .segment = 222}, back;
    ck_assert_int_eq(manifest_read(dir, &back), 0);
    ck_assert_int_eq(manifest_write(dir, &m), 0);
    ck_assert_int_eq(manifest_read(dir, &back), 1);
    ck_assert_mem_eq(&m, &back, sizeof m);
    char path[128];
    snprintf(path, sizeof path, "%s/manifest", dir);
    int fd = open(path, O_RDWR);
    unsigned char b;
    ck_assert_int_eq(pread(fd, &b, 1, 20), 1);
    b ^= 1;
    ck_assert_int_eq(pwrite(fd, &b, 1, 20), 1);
    close(fd);
    ck_assert_int_eq(manifest_read(dir, &back), -1);
    remove_dir();
}
END_TEST

/* The outbox reader sees each durable record once, in order, across a rotation. */
START_TEST(reader_across_segments)
{
    make_dir();
    struct journal *j = open_journal(0);
    append_n(j, 3);
    uint64_t last;
    ck_assert(journal_rotate(j, &last));
    ck_assert_uint_eq(last, 3);
    append_n(j, 2);
    struct jreader *r = jreader_open(j, 2);
    struct jrec rec;
    for (uint64_t want = 2; want <= 5; want++) {
        ck_assert_int_eq(jreader_next(r, &rec, 2000), 1);
        ck_assert_uint_eq(rec.seq, want);
    }
    ck_assert_int_eq(jreader_next(r, &rec, 50), 0);
    jreader_close(r);
    journal_close(j);
    remove_dir();
}
END_TEST

/* ---- the registry's journal hook ---- */

struct hooked {
    int n;
    char ops[32][16];
    enum reg_status st[32];
    bool fail;
};

static bool hook(void *ctx, struct reg_op *op, enum reg_status st)
{
    struct hooked *h = ctx;
    if (h->fail)
        return false;
    snprintf(h->ops[h->n], sizeof h->ops[0], "%s", op_name(op->op));
    h->st[h->n++] = st;
    return true;
}

START_TEST(hook_sees_refused_ops_too)
{
    struct registry *reg = registry_new();
    struct hooked h = {0};
    registry_set_log(reg, hook, &h);
    ck_assert_int_eq(registry_register(reg, "a"), REG_OK);
    ck_assert_int_eq(registry_register(reg, "a"), REG_USER_EXISTS);
    ck_assert_int_eq(registry_disconnect(reg, "a"), REG_NOT_CONNECTED);
    ck_assert_int_eq(h.n, 3);
    ck_assert_str_eq(h.ops[1], "REGISTER");
    ck_assert_int_eq(h.st[1], REG_USER_EXISTS);
    ck_assert_str_eq(h.ops[2], "DISCONNECT");
    registry_free(reg);
}
END_TEST

START_TEST(failing_hook_undoes)
{
    struct registry *reg = registry_new();
    struct hooked h = {0};
    registry_set_log(reg, hook, &h);
    ck_assert_int_eq(registry_register(reg, "a"), REG_OK);
    ck_assert_int_eq(registry_connect(reg, "a", "127.0.0.1", 5), REG_OK);
    h.fail = true;
    ck_assert_int_eq(registry_register(reg, "b"), REG_NO_MEMORY);
    ck_assert_int_eq(registry_publish(reg, "a", "/f", "d"), REG_NO_MEMORY);
    ck_assert_int_eq(registry_disconnect(reg, "a"), REG_NO_MEMORY);
    ck_assert_int_eq(registry_unregister(reg, "a"), REG_NO_MEMORY);
    h.fail = false;
    ck_assert_uint_eq(registry_user_count(reg), 1);
    ck_assert_uint_eq(registry_file_count(reg), 0);
    ck_assert_int_eq(registry_connect(reg, "a", "127.0.0.1", 5), REG_CONNECTED);
    ck_assert_int_eq(registry_register(reg, "b"), REG_OK);
    registry_free(reg);
}
END_TEST

/* The fields of a list reply as one string, "|"-separated ("" on a refusal). */
static void listed(struct registry *reg, const char *target, char *out, size_t outsz)
{
    struct listing *l;
    enum reg_status st = target != NULL ? registry_list_content(reg, "a", target, &l)
                                        : registry_list_users(reg, "a", &l);
    out[0] = '\0';
    if (st != REG_OK)
        return;
    for (size_t i = 1; i < l->len; i += strlen(l->data + i) + 1) {
        strncat(out, l->data + i, outsz - strlen(out) - 1);
        strncat(out, "|", outsz - strlen(out) - 1);
    }
    listing_release(l);
}

/* Cached listings follow every journaled change and no undone one: a
 * refused journal leaves them as they were, a quota refusal is journaled
 * with its status, an expiry and a restored file show at once. */
START_TEST(listings_follow_journal)
{
    struct registry *reg = registry_new();
    struct hooked h = {0};
    char got[256];
    registry_set_log(reg, hook, &h);
    registry_set_quotas(reg, 1, 1024);
    ck_assert_int_eq(registry_register(reg, "a"), REG_OK);
    ck_assert_int_eq(registry_connect(reg, "a", "10.0.0.1", 5), REG_OK);
    ck_assert_int_eq(registry_publish(reg, "a", "/f", "d"), REG_OK);
    listed(reg, "a", got, sizeof got);
    ck_assert_str_eq(got, "1|/f|");
    int n = h.n;
    ck_assert_int_eq(registry_publish(reg, "a", "/g", "d"), REG_QUOTA_FILES);
    ck_assert_int_eq(h.n, n + 1);
    ck_assert_str_eq(h.ops[n], "PUBLISH");
    ck_assert_int_eq(h.st[n], REG_QUOTA_FILES);

    h.fail = true;      /* refused by the journal: undone, listings unchanged */
    ck_assert_int_eq(registry_delete(reg, "a", "/f"), REG_NO_MEMORY);
    ck_assert_int_eq(registry_disconnect(reg, "a"), REG_NO_MEMORY);
    h.fail = false;
    listed(reg, "a", got, sizeof got);
    ck_assert_str_eq(got, "1|/f|");
    ck_assert_int_eq(registry_delete(reg, "a", "/f"), REG_OK);
    listed(reg, "a", got, sizeof got);
    ck_assert_str_eq(got, "0|");
    h.fail = true;
    ck_assert_int_eq(registry_publish(reg, "a", "/g", "d"), REG_NO_MEMORY);
    h.fail = false;
    listed(reg, "a", got, sizeof got);
    ck_assert_str_eq(got, "0|");
    /* A restore drops the listing too; a path already there stops it at
     * that file, the ones before it in. */
    static const char *const paths[] = {"/r", "/s", "/r"}, *const descs[] = {"d", "e", "f"};
    size_t done;
    ck_assert_int_eq(registry_restore_files(reg, "a", 1, paths, descs, &done), REG_OK);
    ck_assert_uint_eq(done, 1);
    listed(reg, "a", got, sizeof got);
    ck_assert_str_eq(got, "1|/r|");
    ck_assert_int_eq(registry_restore_files(reg, "a", 2, paths + 1, descs + 1, &done),
                     REG_PUBLISHED);
    ck_assert_uint_eq(done, 1);
    listed(reg, "a", got, sizeof got);
    ck_assert_str_eq(got, "2|/r|/s|");
    ck_assert_int_eq(registry_restore_files(reg, "nobody", 1, paths, descs, &done),
                     REG_NO_USER);
    ck_assert_uint_eq(done, 0);
    ck_assert_int_eq(registry_delete(reg, "a", "/s"), REG_OK);

    ck_assert_int_eq(registry_register(reg, "b"), REG_OK);
    h.fail = true;
    ck_assert_int_eq(registry_connect(reg, "b", "10.0.0.2", 6), REG_NO_MEMORY);
    h.fail = false;
    listed(reg, NULL, got, sizeof got);
    ck_assert_str_eq(got, "1|a|10.0.0.1|5|");
    ck_assert_int_eq(registry_connect(reg, "b", "10.0.0.2", 6), REG_OK);
    listed(reg, NULL, got, sizeof got);
    ck_assert(strstr(got, "b|10.0.0.2|6|") != NULL);
    struct reg_endpoint e;
    ck_assert_int_eq(registry_endpoint(reg, "b", &e), REG_OK);
    ck_assert_int_eq(registry_expire(reg, "b", e.session), REG_OK);
    listed(reg, NULL, got, sizeof got);
    ck_assert_str_eq(got, "1|a|10.0.0.1|5|");
    registry_free(reg);
}
END_TEST

/* A snapshot loads back the users, connections and files it was made of. */
START_TEST(snapshot_round_trip)
{
    make_dir();
    struct snapshot *s = snapshot_new();
    snapshot_add_user(s, "a", "127.0.0.1", 4000);
    snapshot_add_file(s, "/x", "desc x");
    snapshot_add_file(s, "/y", "");
    snapshot_add_user(s, "b", NULL, 0);
    snapshot_end(s, 77);
    uint64_t bytes, seq;
    ck_assert_int_eq(snapshot_write(s, dir, &bytes), 0);
    snapshot_free(s);
    struct registry *reg = registry_new();
    ck_assert_int_eq(snapshot_load(dir, reg, &seq), 0);
    ck_assert_uint_eq(seq, 77);
    ck_assert_uint_eq(registry_user_count(reg), 2);
    ck_assert_uint_eq(registry_file_count(reg), 2);
    ck_assert_int_eq(registry_connect(reg, "a", "127.0.0.1", 1), REG_CONNECTED);
    ck_assert_int_eq(registry_connect(reg, "b", "127.0.0.1", 1), REG_OK);
    registry_free(reg);

    /* Damage: refused. */
    char path[128];
    snprintf(path, sizeof path, "%s/snapshot", dir);
    ck_assert_int_eq(truncate(path, (off_t)bytes - 1), 0);
    reg = registry_new();
    ck_assert_int_eq(snapshot_load(dir, reg, &seq), -1);
    registry_free(reg);
    remove_dir();
}
END_TEST


/* SEARCH by user "u0" for query: the count, and the path of match `which`
 * into path. */
static size_t searched(struct registry *reg, const char *query, size_t which, char *path)
{
    struct listing *l;
    path[0] = '\0';
    ck_assert_int_eq(registry_search(reg, "u0", query, 1000, &l), REG_OK);
    const char *p = l->data + 1;
    size_t n = strtoul(p, NULL, 10), field = 0;
    for (p += strlen(p) + 1; p < l->data + l->len; p += strlen(p) + 1, field++)
        if (field == 3 * which + 1)
            strcpy(path, p);
    listing_release(l);
    return n;
}

/* A snapshot of more files than one hand-over block of the loading
 * indexer: every connected owner's file is found again after the load,
 * oldest first as before, a disconnected owner's are not indexed. */
START_TEST(snapshot_load_indexes_in_order)
{
    make_dir();
    struct snapshot *s = snapshot_new();
    char path[64], desc[64], got[64];
    static const char *const owners[] = {"u0", "u1", "u2"};
    for (int u = 0; u < 3; u++) {
        snapshot_add_user(s, owners[u], u == 1 ? NULL : "127.0.0.1", 4000);
        for (int i = 0; i < 5000; i++) {
            snprintf(path, sizeof path, "/%s/f%d", owners[u], i);
            snprintf(desc, sizeof desc, "common w%d", i % 7);
            snapshot_add_file(s, path, desc);
        }
    }
    snapshot_end(s, 9);
    uint64_t bytes, seq;
    ck_assert_int_eq(snapshot_write(s, dir, &bytes), 0);
    snapshot_free(s);
    struct registry *reg = registry_new();
    ck_assert_int_eq(snapshot_load(dir, reg, &seq), 0);
    ck_assert_uint_eq(registry_file_count(reg), 15000);
    ck_assert_uint_eq(searched(reg, "common", 0, got), 1000);
    ck_assert_str_eq(got, "/u0/f0");
    ck_assert_uint_eq(searched(reg, "common", 999, got), 1000);
    ck_assert_str_eq(got, "/u0/f999");
    ck_assert_uint_eq(searched(reg, "u2 f4999", 0, got), 1);
    ck_assert_str_eq(got, "/u2/f4999");
    ck_assert_uint_eq(searched(reg, "u2 w3 f49", 0, got), 15);   /* 493, 4903, ... 4998 */
    ck_assert_str_eq(got, "/u2/f493");
    ck_assert_uint_eq(searched(reg, "u1", 0, got), 0);
    /* u1's files come in when it connects, after u2's. */
    ck_assert_int_eq(registry_connect(reg, "u1", "127.0.0.1", 1), REG_OK);
    ck_assert_uint_eq(searched(reg, "f4999", 1, got), 3);
    ck_assert_str_eq(got, "/u2/f4999");
    ck_assert_uint_eq(searched(reg, "f4999", 2, got), 3);
    ck_assert_str_eq(got, "/u1/f4999");
    registry_free(reg);
    remove_dir();
}
END_TEST

/* Collect the DISCONNECT records of a journal. */
struct disconnects {
    int n;
    char path[4][32];
    char datetime[4][32];
};

static int collect_disconnect(void *ctx, const struct jrec *r)
{
    struct disconnects *d = ctx;
    if (r->op == OP_DISCONNECT && d->n < 4) {
        snprintf(d->path[d->n], sizeof d->path[0], "%s", r->path ? r->path : "");
        snprintf(d->datetime[d->n], sizeof d->datetime[0], "%s", r->datetime);
        d->n++;
    }
    return 0;
}

/*
 * An expiry is journaled as a DISCONNECT record with the path
 * REG_EXPIRED_MARK and the server's date-time; a restart (a kill -9 here:
 * the child exits without closing) replays it, so the expired user is not
 * connected; restored connections get new session numbers; a refused
 * expiry (an older session) journals nothing.
 */
START_TEST(expiry_journaled_and_replayed)
{
    make_dir();
    struct durable_config dc = {.dir = dir, .sync = SYNC_BATCH, .budget = 1 << 30,
                                .compact_bytes = 1 << 30};
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        struct registry *reg = registry_new();
        struct reg_endpoint e;
        int bad = durable_open(&dc, reg) != 0 ||
                  registry_register(reg, "alice") != REG_OK ||
                  registry_register(reg, "bob") != REG_OK ||
                  registry_connect(reg, "alice", "127.0.0.1", 5) != REG_OK ||
                  registry_connect(reg, "bob", "127.0.0.1", 6) != REG_OK ||
                  registry_endpoint(reg, "alice", &e) != REG_OK ||
                  registry_expire(reg, "alice", e.session + 1) != REG_NOT_CONNECTED ||
                  registry_expire(reg, "alice", e.session) != REG_OK ||
                  registry_expire(reg, "alice", e.session) != REG_NOT_CONNECTED;
        _exit(bad);             /* no close: the journal is all there is */
    }
    int status;
    ck_assert_int_eq(waitpid(child, &status, 0), child);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    /* One DISCONNECT record: the expiry, marked, with a server date-time. */
    struct disconnects d = {0};
    uint64_t last;
    ck_assert_int_eq(journal_replay(dir, 0, false, collect_disconnect, NULL, &d, &last), 0);
    ck_assert_int_eq(d.n, 1);
    ck_assert_str_eq(d.path[0], REG_EXPIRED_MARK);
    struct tm tm;
    const char *end = strptime(d.datetime[0], "%d/%m/%Y %H:%M:%S", &tm);
    ck_assert_ptr_nonnull(end);
    ck_assert_str_eq(end, "");

    /* Replayed: alice is not connected, bob is, with a new session. */
    struct registry *reg = registry_new();
    ck_assert_int_eq(durable_open(&dc, reg), 0);
    struct reg_endpoint a, b;
    ck_assert_int_eq(registry_endpoint(reg, "alice", &a), REG_NOT_CONNECTED);
    ck_assert_int_eq(registry_endpoint(reg, "bob", &b), REG_OK);
    ck_assert_uint_eq(b.port, 6);
    ck_assert_uint_ne(b.session, 0);
    ck_assert_int_eq(registry_connect(reg, "alice", "127.0.0.1", 7), REG_OK);
    ck_assert_int_eq(registry_endpoint(reg, "alice", &a), REG_OK);
    ck_assert_uint_ne(a.session, b.session);
    durable_close();
    registry_free(reg);
    remove_dir();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("journal");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, crc32c_check_value);
    tcase_add_test(tc, crc32c_instruction_matches_table);
    tcase_add_test(tc, record_torn_and_bad);
    tcase_add_test(tc, jrec_round_trip);
    tcase_add_test(tc, append_replay_reopen);
    tcase_add_test(tc, torn_tail_every_offset);
    tcase_add_test(tc, flipped_byte_refuses);
    tcase_add_test(tc, reader_across_segments);
    tcase_add_test(tc, missing_middle_segment);
    tcase_add_test(tc, manifest_round_trip);
    tcase_add_test(tc, hook_sees_refused_ops_too);
    tcase_add_test(tc, failing_hook_undoes);
    tcase_add_test(tc, listings_follow_journal);
    tcase_add_test(tc, snapshot_round_trip);
    tcase_add_test(tc, snapshot_load_indexes_in_order);
    tcase_add_test(tc, expiry_journaled_and_replayed);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
