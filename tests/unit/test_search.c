/* test_search.c - the token index (server/search.c): words, prefixes,
 * order, removal, tombstones and compaction, the cap, and a random run
 * checked against a brute-force model. */
#include <check.h>
#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "search.h"
#include "unit.h"

struct doc {
    struct search_doc sd;       /* first: the index hands this back */
    bool in;
    char path[64], desc[64];
};

static void text(const struct search_doc *d, const char **path, const char **desc)
{
    const struct doc *x = (const struct doc *)d;
    *path = x->path;
    *desc = x->desc;
}

static struct search_index *ix;
static struct doc docs[3000];

static void setup(void)
{
    ix = search_new(text);
    ck_assert_ptr_nonnull(ix);
    memset(docs, 0, sizeof docs);
}

static void teardown(void) { search_free(ix); }

static void add(int i, const char *path, const char *desc)
{
    snprintf(docs[i].path, sizeof docs[i].path, "%s", path);
    snprintf(docs[i].desc, sizeof docs[i].desc, "%s", desc);
    ck_assert(search_add(ix, &docs[i].sd, docs[i].path, docs[i].desc));
    docs[i].in = true;
}

static void drop(int i)
{
    search_remove(ix, &docs[i].sd, docs[i].path, docs[i].desc);
    docs[i].in = false;
}

/* The indexes (into docs) of what query finds, as "i,j,k" for easy asserts. */
static const char *find(const char *query, size_t max)
{
    static char out[8192];
    const struct search_doc *found[1000];
    struct search_query q;
    ck_assert_uint_gt(search_parse(query, &q), 0);
    size_t n = search_find(ix, &q, NULL, NULL, found, max);
    ck_assert_uint_ne(n, SEARCH_NO_MEMORY);
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(out + len, sizeof out - len, "%s%d", i ? "," : "",
                                (int)((const struct doc *)found[i] - docs));
    return out;
}

START_TEST(words_prefixes_and_case)
{
    add(0, "/home/a/Lecture-Notes.pdf", "Week 3 of NETWORKS");
    add(1, "/home/a/lab.txt", "lecture lab");
    add(2, "/x/y", "");
    ck_assert_str_eq(find("lect", 100), "0,1");
    ck_assert_str_eq(find("LECTURE notes", 100), "0");
    ck_assert_str_eq(find("networks week", 100), "0");
    ck_assert_str_eq(find("ecture", 100), "");
    ck_assert_str_eq(find("lab lab", 100), "1");
    ck_assert_str_eq(find("y", 100), "2");
    ck_assert_str_eq(find("zzz", 100), "");
    ck_assert_str_eq(find("l", 1), "0");
}
END_TEST

START_TEST(words_that_prefix_each_other)
{
    static const char *const w[] = {"a", "aa", "aaa", "ab", "b", "ba", "abc", "a0", "\xc3\xa9t\xc3\xa9"};
    for (int i = 0; i < 9; i++)
        add(i, "/", w[i]);
    ck_assert_uint_eq(search_token_count(ix), 9);
    ck_assert_str_eq(find("a", 100), "0,1,2,3,6,7");
    ck_assert_str_eq(find("aa", 100), "1,2");
    ck_assert_str_eq(find("ab", 100), "3,6");
    ck_assert_str_eq(find("abc", 100), "6");
    ck_assert_str_eq(find("b", 100), "4,5");
    ck_assert_str_eq(find("\xc3\xa9", 100), "8");
    for (int i = 0; i < 9; i++)
        drop(i);
    ck_assert_uint_eq(search_token_count(ix), 0);
    ck_assert_uint_eq(search_posting_count(ix), 0);
    ck_assert_str_eq(find("a", 100), "");
}
END_TEST

START_TEST(parse_and_log_form)
{
    struct search_query q;
    char out[300];
    ck_assert_uint_eq(search_parse("  Lect-NOTES.pdf  x ", &q), 4);
    search_log_form(&q, out);
    ck_assert_str_eq(out, "lect+notes+pdf+x");
    ck_assert_uint_eq(search_parse("", &q), 0);
    ck_assert_uint_eq(search_parse(" -./ ", &q), 0);
    char big[300];
    memset(big, 'a', 257);
    big[257] = '\0';
    ck_assert_uint_eq(search_parse(big, &q), 0);     /* over 256 bytes */
    big[256] = '\0';
    ck_assert_uint_eq(search_parse(big, &q), 1);
}
END_TEST

/* Index order: oldest first; a document put back comes after the others. */
START_TEST(order_removal_and_readding)
{
    for (int i = 0; i < 5; i++)
        add(i, "/f", "shared");
    drop(1);
    drop(3);
    ck_assert_str_eq(find("shared", 100), "0,2,4");
    add(1, "/f", "shared");
    ck_assert_str_eq(find("shared", 100), "0,2,4,1");
    ck_assert_str_eq(find("shared", 2), "0,2");
}
END_TEST

/* Many removals compact a list; what stays is found, in order. */
START_TEST(tombstones_compact)
{
    for (int i = 0; i < 1000; i++)
        add(i, "/common", i % 10 == 0 ? "keep" : "go");
    for (int i = 0; i < 1000; i++)
        if (i % 10)
            drop(i);
    ck_assert_uint_eq(search_posting_count(ix), 100 * 2);
    const char *got = find("common", 1000);
    char want[8192];
    size_t len = 0;
    for (int i = 0; i < 1000; i += 10)
        len += (size_t)snprintf(want + len, sizeof want - len, "%s%d", i ? "," : "", i);
    ck_assert_str_eq(got, want);
    ck_assert_str_eq(find("go", 10), "");
}
END_TEST

/* A word of many tokens (past the list cursors) is checked on the text. */
START_TEST(word_of_many_tokens)
{
    for (int i = 0; i < 40; i++) {
        char d[32];
        snprintf(d, sizeof d, "w%02d common", i);
        add(i, "/d", d);
    }
    add(40, "/d", "common");
    const char *got = find("common w", 1000);
    char want[512];
    size_t len = 0;
    for (int i = 0; i < 40; i++)
        len += (size_t)snprintf(want + len, sizeof want - len, "%s%d", i ? "," : "", i);
    ck_assert_str_eq(got, want);
    drop(7);
    ck_assert_str_eq(find("w0 common", 1000), "0,1,2,3,4,5,6,8,9");
}
END_TEST

/* A random run against a brute-force model: every query's answer is the
 * in-index documents (in index order) whose words start with each query word. */
static bool model_match(const struct doc *d, const struct search_query *q)
{
    for (size_t w = 0; w < q->nwords; w++) {
        bool hit = false;
        const char *texts[2] = {d->path, d->desc};
        for (int k = 0; k < 2 && !hit; k++) {
            const char *s = texts[k];
            size_t len = strlen(q->word[w]);
            for (size_t i = 0; s[i] && !hit; i++) {
                bool start = (i == 0 || !isalnum((unsigned char)s[i - 1])) &&
                             isalnum((unsigned char)s[i]);
                hit = start && strncasecmp(s + i, q->word[w], len) == 0;
            }
        }
        if (!hit)
            return false;
    }
    return true;
}

START_TEST(random_run_matches_model)
{
    static const char *const vocab[] = {"alpha", "alps", "al", "beta", "bet", "b2",
                                        "gamma", "GAMMAray", "delta", "d", "x9", "x"};
    uint64_t order[3000] = {0}, next = 1;
    unsigned seed = 12345;
    search_seq_max(ix, 4000);   /* seqs run out every few thousand adds: renumbered */
    for (int step = 0; step < 20000; step++) {
        int i = (int)(rand_r(&seed) % 3000);
        if (docs[i].in) {
            drop(i);
        } else {
            char p[64], d[64];
            snprintf(p, sizeof p, "/%s/%s.%s", vocab[rand_r(&seed) % 12],
                     vocab[rand_r(&seed) % 12], vocab[rand_r(&seed) % 12]);
            snprintf(d, sizeof d, "%s %s", vocab[rand_r(&seed) % 12], vocab[rand_r(&seed) % 12]);
            add(i, p, d);
            order[i] = next++;
        }
        if (step % 500 != 0)
            continue;
        for (int k = 0; k < 20; k++) {
            char query[64];
            snprintf(query, sizeof query, "%.*s %.*s", 1 + (int)(rand_r(&seed) % 4),
                     vocab[rand_r(&seed) % 12], 1 + (int)(rand_r(&seed) % 4),
                     vocab[rand_r(&seed) % 12]);
            struct search_query q;
            search_parse(query, &q);
            /* The model: matching docs sorted by when they were last added. */
            int want[3000], n = 0;
            for (int j = 0; j < 3000; j++)
                if (docs[j].in && model_match(&docs[j], &q)) {
                    int at = n++;
                    while (at > 0 && order[want[at - 1]] > order[j]) {
                        want[at] = want[at - 1];
                        at--;
                    }
                    want[at] = j;
                }
            char expect[16384];
            size_t len = 0;
            expect[0] = '\0';
            for (int j = 0; j < n && j < 1000; j++)
                len += (size_t)snprintf(expect + len, sizeof expect - len, "%s%d",
                                        j ? "," : "", want[j]);
            ck_assert_msg(strcmp(find(query, 1000), expect) == 0, "query '%s'", query);
        }
    }
}
END_TEST

/* Passes the documents with an even index (search_pass_fn). */
static bool even_only(void *ctx, const struct search_doc *d)
{
    (*(int *)ctx)++;
    return ((const struct doc *)d - docs) % 2 == 0;
}

/*
 * Words that are one token each (none starts another): the two-list walk,
 * the galloping walk (a word in nearly every document against a rare one),
 * more than two words, tombstones, caps around the lookup batch, and a
 * pass() that turns some matches away, against the model.
 */
START_TEST(one_token_words_match_model)
{
    static const char *const vocab[] = {"common", "rare", "red", "green", "blue", "cyan",
                                        "mauve", "olive", "x1", "y2"};
    static const size_t caps[] = {1, 2, 31, 32, 33, 64, 65, 100, 1000};
    uint64_t order[3000] = {0}, next = 1;
    unsigned seed = 777;
    search_seq_max(ix, 3500);   /* seqs run out every few thousand adds: renumbered */
    for (int step = 0; step < 30000; step++) {
        int i = (int)(rand_r(&seed) % 3000);
        if (docs[i].in) {
            drop(i);
        } else {
            char p[64], d[64];
            snprintf(p, sizeof p, "/%s/%s", rand_r(&seed) % 50 ? "common" : "rare",
                     vocab[2 + rand_r(&seed) % 8]);
            snprintf(d, sizeof d, "%s %s", vocab[2 + rand_r(&seed) % 8],
                     rand_r(&seed) % 40 ? "" : "rare");
            add(i, p, d);
            order[i] = next++;
        }
        if (step % 1000 != 0)
            continue;
        for (int k = 0; k < 40; k++) {
            char query[64];
            int nw = 1 + (int)(rand_r(&seed) % 3);
            size_t used = 0;
            for (int w = 0; w < nw; w++)
                used += (size_t)snprintf(query + used, sizeof query - used, "%s%s",
                                         w ? " " : "", vocab[rand_r(&seed) % 10]);
            size_t max = caps[rand_r(&seed) % 9];
            bool filter = rand_r(&seed) % 2;
            struct search_query q;
            ck_assert_uint_eq(search_parse(query, &q), (size_t)nw);
            int want[3000], n = 0;
            for (int j = 0; j < 3000; j++)
                if (docs[j].in && model_match(&docs[j], &q) && (!filter || j % 2 == 0)) {
                    int at = n++;
                    while (at > 0 && order[want[at - 1]] > order[j]) {
                        want[at] = want[at - 1];
                        at--;
                    }
                    want[at] = j;
                }
            const struct search_doc *found[1000];
            int asked = 0;
            size_t got = search_find(ix, &q, filter ? even_only : NULL, &asked, found, max);
            ck_assert_uint_eq(got, (size_t)n < max ? (size_t)n : max);
            for (size_t j = 0; j < got; j++)
                ck_assert_msg((const struct doc *)found[j] - docs == want[j],
                              "query '%s' max %zu: match %zu", query, max, j);
            /* pass() is asked about each match in order, up to the last one shown
             * when the cap is reached. */
            uint64_t last = got == max && got > 0 ? order[want[got - 1]] : UINT64_MAX;
            int ask = 0;
            for (int j = 0; j < 3000; j++)
                ask += docs[j].in && model_match(&docs[j], &q) && order[j] <= last;
            if (filter)
                ck_assert_int_eq(asked, ask);
        }
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("search");
    TCase *tc = tcase_create("index");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, words_prefixes_and_case);
    tcase_add_test(tc, words_that_prefix_each_other);
    tcase_add_test(tc, parse_and_log_form);
    tcase_add_test(tc, order_removal_and_readding);
    tcase_add_test(tc, tombstones_compact);
    tcase_add_test(tc, word_of_many_tokens);
    tcase_add_test(tc, random_run_matches_model);
    tcase_add_test(tc, one_token_words_match_model);
    suite_add_tcase(s, tc);
    return run_suite(s);
}
