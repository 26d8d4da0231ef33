/*
 * search.h - the token index behind SEARCH: which indexed files hold which
 * words, so that a query touches the files of its rarest word and not all
 * files.
 *
 * Words.  A word (token) is a maximal run of ASCII letters, ASCII digits and
 * bytes 0x80..0xff (so UTF-8 letters stay inside words); every other byte
 * separates words.  ASCII letters are folded to lower case.  A file's words
 * are those of its path and of its description.  A query is split the same
 * way; a file matches when every query word is a prefix (or the whole) of
 * one of the file's words.
 *
 * Structure.  Each distinct word is interned once (struct token) in a
 * crit-bit tree ordered by bytes, so the words starting with a prefix are
 * one subtree.  A token holds its posting list: the seqs of the documents
 * containing it, ascending (the order they entered the index), four bytes
 * each.  A document leaving the index turns its entries into tombstones
 * (which keep the seq, so the lists stay sorted); a list compacts itself
 * once it holds more tombstones than live entries, and a token with no
 * live entry is removed.
 * A table by seq (open addressing) finds a document from its seq.
 *
 * A query picks its rarest word (the fewest postings over the word's
 * subtree, counted with an early stop), walks the merged postings of that
 * word in seq order, and checks each other word against each candidate:
 * through that word's own posting lists (forward-only galloping cursors)
 * when it has at most 16 tokens, else on the candidate's text.  It stops
 * at the cap.  Cost: the candidates of the rarest word up to the cap,
 * never all documents.  When every word is one token (no other word starts
 * with it: the common case), the two shortest lists are walked together
 * without a data-dependent branch per step, the others through cursors,
 * and the matches are looked up in the doc table a batch at a time.
 *
 * No locking here: the owner (the registry) serializes every call with its
 * own lock.  No I/O.
 */
#ifndef PEERDEX_SEARCH_H
#define PEERDEX_SEARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Results of one SEARCH: default and upper bound of the cap. */
#define SEARCH_DEFAULT_MAX 100
#define SEARCH_MAX_MAX 1000

/* Most words a query may have (a 256-byte query has at most 128). */
#define SEARCH_WORDS_MAX 128

/*
 * The part of an indexed document the index owns; embedded in the owner's
 * record.  seq is 0 while the document is not in the index.
 */
struct search_doc {
    uint64_t seq;
};

/* Gives a document's path and description (the index keeps no copy). */
typedef void search_text_fn(const struct search_doc *doc, const char **path,
                            const char **description);

/* Decides whether a matching document is shown (e.g. its owner is connected). */
typedef bool search_pass_fn(void *ctx, const struct search_doc *doc);

struct search_index;

struct search_index *search_new(search_text_fn *text);
/* Free the index (not the documents). */
void search_free(struct search_index *ix);

/*
 * Put doc (not in the index) into it under the words of path and
 * description; it sorts after every document already there.  False, with
 * nothing changed, when out of memory.
 */
bool search_add(struct search_index *ix, struct search_doc *doc,
                const char *path, const char *description);

/* Make room for n documents in all (a hint before a bulk of adds). */
void search_reserve(struct search_index *ix, size_t n);

/* Take doc (in the index, with this path and description) out of it. */
void search_remove(struct search_index *ix, struct search_doc *doc,
                   const char *path, const char *description);

/* A query split into words: lower-cased copies in buf, each NUL-terminated. */
struct search_query {
    size_t nwords;
    const char *word[SEARCH_WORDS_MAX];
    char buf[512];
};

/*
 * Split text (at most 256 bytes) into q; the number of words, 0 when it
 * has none (an empty query) or is longer than 256 bytes.
 */
size_t search_parse(const char *text, struct search_query *q);

/*
 * The query's words joined by '+' into out (at least 257 bytes): the one
 * field the operation log shows for a SEARCH (no blanks: log fields are
 * space-separated).
 */
void search_log_form(const struct search_query *q, char *out);

/*
 * Up to max documents that match every word of q and pass pass() (NULL:
 * all do), in index order (ascending seq), into out; returns how many, or
 * SEARCH_NO_MEMORY.
 */
#define SEARCH_NO_MEMORY ((size_t)-1)
size_t search_find(const struct search_index *ix, const struct search_query *q,
                   search_pass_fn *pass, void *ctx,
                   const struct search_doc **out, size_t max);

/*
 * Seqs run out after 2^31 - 1 additions; the index then numbers its
 * documents afresh (their order kept).  Tests lower that limit to max
 * (0: back to 2^31 - 1) so that renumbering runs often.
 */
void search_seq_max(struct search_index *ix, uint64_t max);

/* Distinct words and live postings, for tests and statistics. */
size_t search_token_count(const struct search_index *ix);
size_t search_posting_count(const struct search_index *ix);

#endif
