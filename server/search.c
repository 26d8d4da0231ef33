/* search.c - the token index behind SEARCH; see search.h. */
#include "search.h"

#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "request.h"

/*
 * A posting entry: a document's seq, with TOMB set once the document has
 * left (a tombstone keeps its place so the list stays sorted by seq).
 * Seqs are never reused, so a tombstone never equals a live seq.  Lists
 * hold seqs rather than pointers so that intersecting them reads only the
 * lists; the documents are looked up by seq (the doc table) for matches.
 * Four bytes an entry: the lists are most of the index's memory.  Seqs run
 * from 1 to SEQ_MAX; when they run out the index renumbers its documents
 * 1..n in their order (renumber()), which no caller can tell.
 */
typedef uint32_t entry;
#define TOMB (UINT32_C(1) << 31)
#define SEQ_MAX (TOMB - 1)

struct token {
    entry *post;            /* ascending seq; tombstones among them */
    uint32_t n, cap;        /* entries used and allocated */
    uint32_t live;          /* entries that are not tombstones; > 0 */
    uint32_t hash;          /* of the word: its place in the token table */
    char s[];               /* the word, lower case */
};

/*
 * A crit-bit tree of tokens.  A child pointer is either a token (low bit
 * 0) or an internal node (low bit 1): `byte` is the first byte where the
 * two subtrees' words differ and `otherbits` has every bit set but the
 * critical one of that byte.
 */
struct node {
    void *child[2];
    uint32_t byte;
    uint8_t otherbits;
};

struct search_index {
    void *root;             /* NULL, a token or a tagged node */
    search_text_fn *text;
    uint64_t seq;           /* the last seq given out */
    uint64_t seq_max;       /* the last one there is: SEQ_MAX but in tests */
    size_t ntokens, nposts;
    /* The doc table: every indexed document by seq, open addressing with
     * linear probing; nslots a power of two, at most half full. */
    struct search_doc **slots;
    size_t nslots, ndocs;
    /* The token table: every token by its word, for exact lookups (the
     * tree serves prefixes); open addressing, at most half full. */
    struct token **tslots;
    size_t ntslots;
};

static bool is_node(const void *p) { return ((uintptr_t)p & 1) != 0; }
static struct node *as_node(void *p) { return (struct node *)((uintptr_t)p - 1); }

/* Which child of q a word w of length len descends into. */
static int direction(const struct node *q, const unsigned char *w, size_t len)
{
    unsigned c = q->byte < len ? w[q->byte] : 0;
    return (1 + (q->otherbits | c)) >> 8;
}

/* True for a byte that belongs to a word: see search.h. */
static bool word_byte(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
           (c >= 'A' && c <= 'Z') || c >= 0x80;
}

static unsigned char lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 'a' - 'A') : c;
}

/* The seq of an entry, live or tombstone. */
static entry entry_seq(entry e)
{
    return e & ~TOMB;
}

/* The home slot of seq in a table of nslots. */
static size_t home(uint64_t seq, size_t nslots)
{
    /* Fibonacci hashing: the product's high bits are the well-mixed ones. */
    return (size_t)((seq * UINT64_C(0x9E3779B97F4A7C15)) >> 32) & (nslots - 1);
}

/* The slot of the document with this seq, or of the empty slot where it would go. */
static size_t slot_of(const struct search_index *ix, uint64_t seq)
{
    size_t i = home(seq, ix->nslots);
    while (ix->slots[i] != NULL && ix->slots[i]->seq != seq)
        i = (i + 1) & (ix->nslots - 1);
    return i;
}

/* The empty slot where a seq not in the table goes (no document is read). */
static size_t free_slot(const struct search_index *ix, uint64_t seq)
{
    size_t i = home(seq, ix->nslots);
    while (ix->slots[i] != NULL)
        i = (i + 1) & (ix->nslots - 1);
    return i;
}

/* Room in the doc table for `more` documents; false when out of memory. */
static bool table_room(struct search_index *ix, size_t more)
{
    if (2 * (ix->ndocs + more) <= ix->nslots)
        return true;
    size_t n = ix->nslots ? 2 * ix->nslots : 1024;
    while (n < 2 * (ix->ndocs + more))
        n *= 2;
    struct search_doc **old = ix->slots, **slots = calloc(n, sizeof *slots);
    if (slots == NULL)
        return false;
    size_t oldn = ix->nslots;
    ix->slots = slots;
    ix->nslots = n;
    for (size_t i = 0; i < oldn; i++)
        if (old[i] != NULL)
            slots[free_slot(ix, old[i]->seq)] = old[i];
    free(old);
    return true;
}

/* The indexed document with this seq, or NULL. */
static struct search_doc *table_find(const struct search_index *ix, uint64_t seq)
{
    return ix->nslots ? ix->slots[slot_of(ix, seq)] : NULL;
}

/* Take the document with this seq out of the table (backward-shift delete). */
static void table_remove(struct search_index *ix, uint64_t seq)
{
    size_t mask = ix->nslots - 1, i = slot_of(ix, seq), j = i;
    if (ix->slots[i] == NULL)
        return;
    for (;;) {
        j = (j + 1) & mask;
        if (ix->slots[j] == NULL)
            break;
        size_t k = home(ix->slots[j]->seq, ix->nslots);
        /* Move j into the hole at i unless its home lies cyclically in (i, j]. */
        if (i <= j ? (k <= i || k > j) : (k <= i && k > j)) {
            ix->slots[i] = ix->slots[j];
            i = j;
        }
    }
    ix->slots[i] = NULL;
    ix->ndocs--;
}

struct search_index *search_new(search_text_fn *text)
{
    struct search_index *ix = calloc(1, sizeof *ix);
    if (ix != NULL) {
        ix->text = text;
        ix->seq_max = SEQ_MAX;
    }
    return ix;
}

void search_seq_max(struct search_index *ix, uint64_t max)
{
    ix->seq_max = max > 0 && max < SEQ_MAX ? max : SEQ_MAX;
}

/* Deepest a crit-bit path gets: one level per bit of the longest word. */
#define DEPTH_MAX (8 * (FIELD_MAX + 2))

/*
 * Call fn on every token under p until it returns false, with an explicit
 * stack of DEPTH_MAX slots (handler threads have small stacks).
 */
static void walk(void *p, void **stack, bool (*fn)(void *ctx, struct token *t), void *ctx)
{
    size_t n = 0;
    for (;;) {
        while (is_node(p)) {
            struct node *q = as_node(p);
            stack[n++] = q->child[1];
            p = q->child[0];
        }
        if (!fn(ctx, p) || n == 0)
            return;
        p = stack[--n];
    }
}

/* Free a whole tree, its nodes and tokens (iteratively: see walk()). */
static void free_tree(void *p)
{
    void **stack = malloc(DEPTH_MAX * sizeof *stack);
    size_t n = 0;
    while (p != NULL) {
        if (is_node(p)) {
            struct node *q = as_node(p);
            if (stack != NULL)
                stack[n++] = q->child[1];   /* without a stack: leak, at exit */
            p = q->child[0];
            free(q);
            continue;
        }
        struct token *t = p;
        free(t->post);
        free(t);
        p = n > 0 ? stack[--n] : NULL;
    }
    free(stack);
}

void search_free(struct search_index *ix)
{
    if (ix != NULL) {
        free(ix->slots);
        free(ix->tslots);
        free_tree(ix->root);
        free(ix);
    }
}

/* FNV-1a of a word of len bytes. */
static uint32_t word_hash(const char *w, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)w[i]) * 16777619u;
    return h;
}

/* The token-table slot of word w (hash h), or the empty slot where it would go. */
static size_t token_slot(const struct search_index *ix, const char *w, size_t len, uint32_t h)
{
    size_t mask = ix->ntslots - 1, i = h & mask;
    for (struct token *t; (t = ix->tslots[i]) != NULL; i = (i + 1) & mask)
        if (t->hash == h && strncmp(t->s, w, len) == 0 && t->s[len] == '\0')
            break;
    return i;
}

/* Room in the token table for one more token; false when out of memory. */
static bool token_room(struct search_index *ix)
{
    if (2 * (ix->ntokens + 1) <= ix->ntslots)
        return true;
    size_t n = ix->ntslots ? 2 * ix->ntslots : 256, oldn = ix->ntslots;
    struct token **old = ix->tslots, **slots = calloc(n, sizeof *slots);
    if (slots == NULL)
        return false;
    ix->tslots = slots;
    ix->ntslots = n;
    for (size_t i = 0; i < oldn; i++)
        if (old[i] != NULL) {
            size_t j = old[i]->hash & (n - 1);
            while (slots[j] != NULL)
                j = (j + 1) & (n - 1);
            slots[j] = old[i];
        }
    free(old);
    return true;
}

/* Take t out of the token table (backward-shift delete). */
static void token_unslot(struct search_index *ix, struct token *t)
{
    size_t mask = ix->ntslots - 1, i = token_slot(ix, t->s, strlen(t->s), t->hash), j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (ix->tslots[j] == NULL)
            break;
        size_t k = ix->tslots[j]->hash & mask;
        if (i <= j ? (k <= i || k > j) : (k <= i && k > j)) {
            ix->tslots[i] = ix->tslots[j];
            i = j;
        }
    }
    ix->tslots[i] = NULL;
}

static bool tree_insert(struct search_index *ix, struct token *t);

/* Put new token t (its word not in the index) into the tree and the
 * table; false when out of memory (then in neither). */
static bool insert_token(struct search_index *ix, struct token *t)
{
    size_t len = strlen(t->s);
    t->hash = word_hash(t->s, len);
    if (!token_room(ix) || !tree_insert(ix, t))
        return false;
    ix->tslots[token_slot(ix, t->s, len, t->hash)] = t;
    ix->ntokens++;
    return true;
}

/* Put new token t into the crit-bit tree; false when out of memory. */
static bool tree_insert(struct search_index *ix, struct token *t)
{
    const unsigned char *w = (const unsigned char *)t->s;
    size_t len = strlen(t->s);
    if (ix->root == NULL) {
        ix->root = t;
        return true;
    }
    /* The closest word already there, and the first bit where they differ. */
    void *p = ix->root;
    while (is_node(p))
        p = as_node(p)->child[direction(as_node(p), w, len)];
    const unsigned char *o = (const unsigned char *)((struct token *)p)->s;
    uint32_t byte = 0;
    while (o[byte] == w[byte] && w[byte] != '\0')
        byte++;
    if (o[byte] == w[byte])
        return true;                /* there already (the callers never ask) */
    unsigned bits = o[byte] ^ w[byte];
    bits |= bits >> 1;
    bits |= bits >> 2;
    bits |= bits >> 4;
    uint8_t otherbits = (uint8_t)((bits & ~(bits >> 1)) ^ 255);
    int dir = (1 + (otherbits | o[byte])) >> 8;

    struct node *n = malloc(sizeof *n);
    if (n == NULL)
        return false;
    n->byte = byte;
    n->otherbits = otherbits;
    n->child[1 - dir] = t;

    void **where = &ix->root;
    for (;;) {
        void *c = *where;
        if (!is_node(c))
            break;
        struct node *q = as_node(c);
        if (q->byte > byte || (q->byte == byte && q->otherbits > otherbits))
            break;
        where = &q->child[direction(q, w, len)];
    }
    n->child[dir] = *where;
    *where = (void *)((uintptr_t)n + 1);
    return true;
}

/* Take token t out of the table and the tree, and free it. */
static void delete_token(struct search_index *ix, struct token *t)
{
    token_unslot(ix, t);
    const unsigned char *w = (const unsigned char *)t->s;
    size_t len = strlen(t->s);
    void **where = &ix->root, **whereq = NULL;
    struct node *q = NULL;
    int dir = 0;
    while (is_node(*where)) {
        whereq = where;
        q = as_node(*where);
        dir = direction(q, w, len);
        where = &q->child[dir];
    }
    if (whereq == NULL) {
        ix->root = NULL;
    } else {
        *whereq = q->child[1 - dir];
        free(q);
    }
    ix->ntokens--;
    free(t->post);
    free(t);
}

/* A word of a document: lower case and NUL-terminated in doc_words()'s
 * buffer, with its length and word_hash(). */
struct word {
    const char *s;
    uint32_t len, hash;
};

/* The token of a document's word, or NULL. */
static struct token *find_word(const struct search_index *ix, const struct word *w)
{
    if (ix->ntslots == 0)
        return NULL;
    return ix->tslots[token_slot(ix, w->s, w->len, w->hash)];
}

/*
 * The distinct words of a path and a description into buf (at most
 * 2 * (FIELD_MAX + 1) bytes in all) and words.  Returns the count.
 */
#define DOC_WORDS_MAX (FIELD_MAX + 1)
#define DOC_BUF (2 * (FIELD_MAX + 1) + 2)
static size_t doc_words(const char *path, const char *description, char *buf,
                        struct word *words)
{
    size_t n = 0, used = 0;
    const char *texts[2] = {path, description};
    for (int k = 0; k < 2; k++) {
        const unsigned char *s = (const unsigned char *)texts[k];
        while (*s != '\0') {
            if (!word_byte(*s)) {
                s++;
                continue;
            }
            char *w = buf + used;
            size_t len = 0;
            uint32_t h = 2166136261u;   /* FNV-1a, as word_hash() */
            while (word_byte(*s)) {
                if (used + len + 1 < DOC_BUF) {     /* a field is at most 256 bytes */
                    unsigned char c = lower(*s);
                    w[len++] = (char)c;
                    h = (h ^ c) * 16777619u;
                }
                s++;
            }
            w[len] = '\0';
            bool seen = false;
            for (size_t i = 0; i < n && !seen; i++)
                seen = words[i].hash == h && words[i].len == len &&
                       memcmp(words[i].s, w, len) == 0;
            if (!seen && n < 2 * DOC_WORDS_MAX) {
                words[n++] = (struct word){.s = w, .len = (uint32_t)len, .hash = h};
                used += len + 1;
            }
        }
    }
    return n;
}

/* Append doc to t's postings; false when out of memory. */
static bool post(struct token *t, struct search_doc *doc)
{
    if (t->n == t->cap) {
        if (t->cap >= UINT32_MAX / 2)
            return false;
        uint32_t cap = t->cap ? t->cap * 2 : 2;
        entry *p = realloc(t->post, cap * sizeof *p);
        if (p == NULL)
            return false;
        t->post = p;
        t->cap = cap;
    }
    t->post[t->n++] = (entry)doc->seq;
    t->live++;
    return true;
}

/* Take the last entry (doc's, just posted) off t; frees t when it empties. */
static void unpost_last(struct search_index *ix, struct token *t)
{
    t->n--;
    if (--t->live == 0)
        delete_token(ix, t);
}

static bool renumber(struct search_index *ix);

bool search_add(struct search_index *ix, struct search_doc *doc,
                const char *path, const char *description)
{
    char buf[DOC_BUF];
    struct word words[DOC_WORDS_MAX * 2];
    size_t n = doc_words(path, description, buf, words), i;
    if (!table_room(ix, 1) || (ix->seq >= ix->seq_max && !renumber(ix)))
        return false;
    doc->seq = ix->seq + 1;
    for (i = 0; i < n; i++) {
        size_t len = words[i].len;
        struct token *t = find_word(ix, &words[i]);
        if (t == NULL) {
            t = calloc(1, sizeof *t + len + 1);
            if (t == NULL)
                break;
            memcpy(t->s, words[i].s, len + 1);
            if (!post(t, doc) || !insert_token(ix, t)) {
                free(t->post);
                free(t);
                break;
            }
        } else if (!post(t, doc)) {
            break;
        }
    }
    if (i < n) {                /* out of memory: undo the words done */
        while (i-- > 0)
            unpost_last(ix, find_word(ix, &words[i]));
        doc->seq = 0;
        return false;
    }
    ix->seq++;
    ix->nposts += n;
    ix->slots[free_slot(ix, doc->seq)] = doc;
    ix->ndocs++;
    return true;
}

void search_reserve(struct search_index *ix, size_t n)
{
    if (n > ix->ndocs && n < SIZE_MAX / 4)
        table_room(ix, n - ix->ndocs);  /* a hint: without room, adds grow it */
}

/* Drop t's tombstones, and most of its spare room. */
static void compact(struct token *t)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < t->n; i++)
        if ((t->post[i] & TOMB) == 0)
            t->post[k++] = t->post[i];
    t->n = k;
    if (t->cap > 4 * k + 4) {
        entry *p = realloc(t->post, (2 * k + 2) * sizeof *p);
        if (p != NULL) {        /* else keep the larger block */
            t->post = p;
            t->cap = 2 * k + 2;
        }
    }
}

/* Order of two documents by seq (qsort). */
static int by_seq(const void *a, const void *b)
{
    uint64_t x = (*(struct search_doc *const *)a)->seq;
    uint64_t y = (*(struct search_doc *const *)b)->seq;
    return (x > y) - (x < y);
}

/*
 * The seqs have run out: number the documents 1..n in their order and
 * rewrite every list to match, its tombstones dropped, so the order of
 * every answer stays as it was.  O(postings x log documents) under the
 * owner's lock, once per SEQ_MAX additions.  False when out of memory or
 * when every seq is a live document's (then nothing has changed).
 */
static bool renumber(struct search_index *ix)
{
    if (ix->ndocs >= ix->seq_max)
        return false;
    struct search_doc **doc = malloc((ix->ndocs + 1) * sizeof *doc);
    if (doc == NULL)
        return false;
    size_t n = 0;
    for (size_t i = 0; i < ix->nslots; i++)
        if (ix->slots[i] != NULL)
            doc[n++] = ix->slots[i];
    qsort(doc, n, sizeof *doc, by_seq);
    for (size_t k = 0; k < ix->ntslots; k++) {
        struct token *t = ix->tslots[k];
        if (t == NULL)
            continue;
        compact(t);
        size_t lo = 0;          /* the lists ascend: each search starts at the last find */
        for (uint32_t i = 0; i < t->n; i++) {
            size_t hi = n;
            while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (doc[mid]->seq < t->post[i])
                    lo = mid + 1;
                else
                    hi = mid;
            }
            t->post[i] = (entry)(lo + 1);
        }
    }
    memset(ix->slots, 0, ix->nslots * sizeof *ix->slots);
    for (size_t i = 0; i < n; i++) {
        doc[i]->seq = i + 1;
        ix->slots[free_slot(ix, i + 1)] = doc[i];
    }
    ix->seq = n;
    free(doc);
    return true;
}

void search_remove(struct search_index *ix, struct search_doc *doc,
                   const char *path, const char *description)
{
    char buf[DOC_BUF];
    struct word words[DOC_WORDS_MAX * 2];
    size_t n = doc_words(path, description, buf, words);
    for (size_t i = 0; i < n; i++) {
        struct token *t = find_word(ix, &words[i]);
        if (t == NULL)
            continue;           /* not indexed under it: nothing to do */
        uint32_t lo = 0, hi = t->n;
        while (lo < hi) {       /* the first entry with seq >= doc's */
            uint32_t mid = lo + (hi - lo) / 2;
            if (entry_seq(t->post[mid]) < doc->seq)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo == t->n || t->post[lo] != doc->seq)
            continue;
        t->post[lo] |= TOMB;
        ix->nposts--;
        if (--t->live == 0)
            delete_token(ix, t);
        else if (t->n - t->live > t->live)
            compact(t);
    }
    table_remove(ix, doc->seq);
    doc->seq = 0;
}

size_t search_parse(const char *text, struct search_query *q)
{
    q->nwords = 0;
    if (strlen(text) > FIELD_MAX)
        return 0;
    const unsigned char *s = (const unsigned char *)text;
    size_t used = 0;
    while (*s != '\0') {
        if (!word_byte(*s)) {
            s++;
            continue;
        }
        char *w = q->buf + used;
        while (word_byte(*s))
            q->buf[used++] = (char)lower(*s++);
        q->buf[used++] = '\0';
        q->word[q->nwords++] = w;
    }
    return q->nwords;
}

void search_log_form(const struct search_query *q, char *out)
{
    size_t used = 0;
    for (size_t i = 0; i < q->nwords; i++) {
        size_t len = strlen(q->word[i]);
        if (i > 0)
            out[used++] = '+';
        memcpy(out + used, q->word[i], len);
        used += len;
    }
    out[used] = '\0';
}

/* True when some word of text starts with w (lower case, len bytes). */
static bool has_prefix(const char *text, const char *w, size_t len)
{
    const unsigned char *s = (const unsigned char *)text;
    while (*s != '\0') {
        if (!word_byte(*s)) {
            s++;
            continue;
        }
        size_t i = 0;
        while (i < len && lower(s[i]) == (unsigned char)w[i])
            i++;                /* stops at a NUL: w has none */
        if (i == len)
            return true;
        while (word_byte(*s))
            s++;
    }
    return false;
}

/* The subtree of the words starting with w (len bytes), or NULL. */
static void *prefixed(const struct search_index *ix, const char *w, size_t len)
{
    void *p = ix->root, *top = p;
    if (p == NULL)
        return NULL;
    while (is_node(p)) {
        struct node *q = as_node(p);
        p = q->child[direction(q, (const unsigned char *)w, len)];
        if (q->byte < len)
            top = p;
    }
    return strncmp(((struct token *)p)->s, w, len) == 0 ? top : NULL;
}

/* Adding up the live postings under a subtree, up to a limit. */
struct weight {
    size_t limit, sum, ntok;
};

/* walk() step: count t; stop once the sum passes the limit. */
static bool weigh(void *ctx, struct token *t)
{
    struct weight *w = ctx;
    w->sum += t->live;
    w->ntok++;
    return w->sum <= w->limit;
}

/* A place in one token's postings, at a live entry. */
struct cursor {
    const struct token *t;
    uint32_t i;
    uint64_t seq;
};

/* Move c to the next live entry at or after c->i; false at the end. */
static bool settle(struct cursor *c)
{
    while (c->i < c->t->n && (c->t->post[c->i] & TOMB))
        c->i++;
    if (c->i == c->t->n)
        return false;
    c->seq = c->t->post[c->i];
    return true;
}

/*
 * Whether c's token holds seq, moving c forward to the first entry at or
 * after it (galloping, then binary search): the seqs asked for only grow.
 */
static bool holds(struct cursor *c, uint64_t seq)
{
    const entry *p = c->t->post;
    uint32_t n = c->t->n, lo = c->i, step = 1, hi;
    if (lo >= n)
        return false;
    if (entry_seq(p[lo]) >= seq) {
        hi = lo;
    } else {
        while (lo + step < n && entry_seq(p[lo + step]) < seq) {
            lo += step;
            step *= 2;
        }
        hi = lo + step < n ? lo + step : n;
        while (lo < hi) {           /* p[lo] < seq; find the first >= seq */
            uint32_t mid = lo + (hi - lo) / 2;
            if (entry_seq(p[mid]) < seq)
                lo = mid + 1;
            else
                hi = mid;
        }
    }
    c->i = hi;
    return hi < n && p[hi] == seq;
}

/* Collecting a cursor per token of a subtree, up to `room` of them. */
struct gathering {
    struct cursor *cur;
    size_t n, room;
    bool full;              /* the subtree has more tokens than room */
};

/* walk() step: a cursor at t's first live entry. */
static bool gather(void *ctx, struct token *t)
{
    struct gathering *g = ctx;
    if (g->n == g->room) {
        g->full = true;
        return false;
    }
    g->cur[g->n] = (struct cursor){.t = t, .i = 0};
    if (settle(&g->cur[g->n]))
        g->n++;
    return true;
}

/* Restore the min-heap on seq below slot i. */
static void sift_down(struct cursor *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < n && h[l].seq < h[m].seq)
            m = l;
        if (l + 1 < n && h[l + 1].seq < h[m].seq)
            m = l + 1;
        if (m == i)
            return;
        struct cursor tmp = h[i];
        h[i] = h[m];
        h[m] = tmp;
        i = m;
    }
}

/*
 * A word other than the driver's is checked against each candidate through
 * the posting lists of its tokens when it has at most LIST_TOKENS of them
 * (cursors that only move forward), else through the candidate's text.
 */
#define LIST_TOKENS 16
struct other {
    struct cursor *cur;     /* NULL: check the text */
    size_t n;
};

/* Whether candidate seq holds word w (see struct other). */
static bool other_holds(const struct search_index *ix, struct other *o, uint64_t seq,
                        const char *w, size_t len)
{
    if (o->cur != NULL) {
        bool hit = false;
        for (size_t k = 0; k < o->n; k++)
            hit |= holds(&o->cur[k], seq);      /* every cursor moves on */
        return hit;
    }
    const char *path, *description;
    ix->text(table_find(ix, seq), &path, &description);
    return has_prefix(path, w, len) || has_prefix(description, w, len);
}

/*
 * Matches are looked up in the doc table a batch at a time: each lookup is
 * a cache miss or two (the slot, then the document's seq), and a batch
 * lets them overlap instead of stalling one after the other.
 */
#define BATCH 32

/*
 * Append the documents of the n matching seqs (ascending) that pass pass()
 * to out, which holds found of them already, while found < max; the new
 * found.
 */
static size_t resolve(const struct search_index *ix, const uint64_t *seq, size_t n,
                      search_pass_fn *pass, void *ctx,
                      const struct search_doc **out, size_t found, size_t max)
{
    size_t at[BATCH];
    for (size_t k = 0; k < n; k++) {
        at[k] = home(seq[k], ix->nslots);
        __builtin_prefetch(&ix->slots[at[k]]);
    }
    for (size_t k = 0; k < n; k++)
        if (ix->slots[at[k]] != NULL)
            __builtin_prefetch(ix->slots[at[k]]);
    for (size_t k = 0; k < n && found < max; k++) {
        size_t i = at[k];
        while (ix->slots[i] != NULL && ix->slots[i]->seq != seq[k])
            i = (i + 1) & (ix->nslots - 1);
        const struct search_doc *doc = ix->slots[i];
        if (doc != NULL && (pass == NULL || pass(ctx, doc)))
            out[found++] = doc;
    }
    return found;
}

/*
 * Whether live seq is in each of the n lists of c (cursors moving forward
 * only); *end set when a list ran out below it (nothing later can match).
 */
static bool all_hold(struct cursor *c, size_t n, uint64_t seq, bool *end)
{
    for (size_t k = 0; k < n; k++)
        if (!holds(&c[k], seq)) {
            *end = c[k].i == c[k].t->n;
            return false;
        }
    return true;
}

#ifdef __SSE2__
/* How far ahead of the two-list walk its lists are fetched, in bytes. */
#define AHEAD (512 * sizeof(entry))

/*
 * Whether one of pa[0..3] equals one of pb[0..3] (SSE2, in every x86-64):
 * each of a's four against b's four, rotated.
 */
static bool any_equal(const entry *pa, const entry *pb)
{
    __m128i va = _mm_loadu_si128((const __m128i *)pa);
    __m128i vb = _mm_loadu_si128((const __m128i *)pb);
    __m128i m = _mm_cmpeq_epi32(va, vb);
    m = _mm_or_si128(m, _mm_cmpeq_epi32(va, _mm_shuffle_epi32(vb, 0x39)));   /* rotated */
    m = _mm_or_si128(m, _mm_cmpeq_epi32(va, _mm_shuffle_epi32(vb, 0x4e)));
    m = _mm_or_si128(m, _mm_cmpeq_epi32(va, _mm_shuffle_epi32(vb, 0x93)));
    return _mm_movemask_epi8(m) != 0;
}
#endif

/*
 * The common case: every word of the query is one token (tok, n of them;
 * none a prefix of another indexed word).  The two shortest lists are
 * merged in one pass without data-dependent branches (the lists interleave
 * at random, so a branch per step would mispredict half the time), or the
 * shorter one walked and the other galloped when it is much longer; each
 * common seq is checked against the other lists through forward cursors.
 */
static size_t find_tokens(const struct search_index *ix, const struct token **tok, size_t n,
                          search_pass_fn *pass, void *ctx,
                          const struct search_doc **out, size_t max)
{
    for (size_t i = 1; i < n; i++) {       /* shortest first */
        const struct token *t = tok[i];
        size_t j = i;
        for (; j > 0 && tok[j - 1]->n > t->n; j--)
            tok[j] = tok[j - 1];
        tok[j] = t;
    }
    struct cursor rest[SEARCH_WORDS_MAX];
    for (size_t k = 2; k < n; k++)
        rest[k - 2] = (struct cursor){.t = tok[k], .i = 0};
    size_t nrest = n > 2 ? n - 2 : 0, found = 0, nc = 0;
    size_t room = max < BATCH ? max : BATCH;
    uint64_t cand[BATCH];
    bool end = false;
#define TAKE(seq)                                                                \
    do {                                                                         \
        cand[nc++] = (seq);                                                      \
        if (nc == room) {                                                        \
            found = resolve(ix, cand, nc, pass, ctx, out, found, max);           \
            nc = 0;                                                              \
            if (found == max)                                                    \
                return found;                                                    \
            room = max - found < BATCH ? max - found : BATCH;                    \
        }                                                                        \
    } while (0)

    const entry *a = tok[0]->post;
    uint32_t na = tok[0]->n;
    if (n == 1) {
        for (uint32_t i = 0; i < na; i++)
            if ((a[i] & TOMB) == 0)
                TAKE(a[i]);
    } else if (tok[1]->n / 8 > na) {
        /* A much longer second list: gallop along it. */
        struct cursor c = {.t = tok[1], .i = 0};
        for (uint32_t i = 0; i < na && !end; i++) {
            entry e = a[i];
            if ((e & TOMB) != 0)
                continue;
            if (!holds(&c, e))
                end = c.i == c.t->n;
            else if (all_hold(rest, nrest, e, &end))
                TAKE(e);
        }
    } else {
        const entry *b = tok[1]->post;
        uint32_t i = 0, j = 0, nb = tok[1]->n;
#ifdef __SSE2__
        /* Four entries of each list at a time: the block whose last seq is
         * lower moves on (both when equal), and a rare hit is checked
         * entry by entry (it may be a tombstone in both). */
        while (i + 4 <= na && j + 4 <= nb) {
            const entry *pa = a + i, *pb = b + j;
            /* The lists are seldom in cache: ask for them well ahead (by
             * address: the end of a list is no bound for a prefetch). */
            __builtin_prefetch((const void *)((uintptr_t)pa + AHEAD));
            __builtin_prefetch((const void *)((uintptr_t)pb + AHEAD));
            if (__builtin_expect(any_equal(pa, pb), 0)) {
                for (int u = 0; u < 4; u++) {
                    entry x = pa[u];
                    if ((x & TOMB) != 0 || (x != pb[0] && x != pb[1] && x != pb[2] && x != pb[3]))
                        continue;
                    if (all_hold(rest, nrest, x, &end))
                        TAKE(x);
                    else if (end)
                        goto done;
                }
            }
            uint64_t ma = entry_seq(pa[3]), mb = entry_seq(pb[3]);
            i += (uint32_t)(ma <= mb) * 4;
            j += (uint32_t)(mb <= ma) * 4;
        }
#endif
        while (i < na && j < nb) {
            entry x = a[i], y = b[j];
            /* Equal entries are the same document in both lists, both live
             * or both tombstones. */
            if (x == y && (x & TOMB) == 0) {
                if (all_hold(rest, nrest, x, &end))
                    TAKE(x);
                else if (end)
                    break;
            }
            uint64_t sx = entry_seq(x), sy = entry_seq(y);
            i += sx <= sy;
            j += sy <= sx;
        }
    }
done:
#undef TAKE
    return resolve(ix, cand, nc, pass, ctx, out, found, max);
}

size_t search_find(const struct search_index *ix, const struct search_query *q,
                   search_pass_fn *pass, void *ctx,
                   const struct search_doc **out, size_t max)
{
    if (q->nwords == 0 || max == 0)
        return 0;
    /* The rarest word: longer words first, as they tend to be rarer and
     * bound the count of the others sooner. */
    size_t order[SEARCH_WORDS_MAX], len[SEARCH_WORDS_MAX];
    void *top[SEARCH_WORDS_MAX];
    for (size_t i = 0; i < q->nwords; i++) {
        len[i] = strlen(q->word[i]);
        size_t j = i;
        for (; j > 0 && len[order[j - 1]] < len[i]; j--)
            order[j] = order[j - 1];
        order[j] = i;
    }
    bool single = true;
    for (size_t w = 0; w < q->nwords; w++) {
        if ((top[w] = prefixed(ix, q->word[w], len[w])) == NULL)
            return 0;           /* no file has this word */
        single &= !is_node(top[w]);
    }
    if (single) {
        const struct token *tok[SEARCH_WORDS_MAX] = {0};   /* q->nwords >= 1 of them set */
        for (size_t w = 0; w < q->nwords; w++)
            tok[w] = top[w];
        return find_tokens(ix, tok, q->nwords, pass, ctx, out, max);
    }

    void **stack = malloc(DEPTH_MAX * sizeof *stack);
    if (stack == NULL)
        return SEARCH_NO_MEMORY;
    size_t best_sum = SIZE_MAX, best_ntok = 0, driver = 0;
    for (size_t k = 0; k < q->nwords; k++) {
        size_t w = order[k];
        struct weight wt = {.limit = best_sum};
        walk(top[w], stack, weigh, &wt);
        if (wt.sum < best_sum) {
            best_sum = wt.sum;
            best_ntok = wt.ntok;
            driver = w;
        }
    }

    /* Cursors: the driver's tokens first, then up to LIST_TOKENS per other word. */
    struct cursor *cur = malloc((best_ntok + q->nwords * LIST_TOKENS) * sizeof *cur);
    if (cur == NULL) {
        free(stack);
        return SEARCH_NO_MEMORY;
    }
    struct gathering g = {.cur = cur, .room = best_ntok};
    walk(top[driver], stack, gather, &g);
    struct cursor *heap = cur;
    size_t nheap = g.n;
    struct other others[SEARCH_WORDS_MAX];
    struct cursor *spare = cur + best_ntok;
    for (size_t w = 0; w < q->nwords; w++) {
        if (w == driver)
            continue;
        g = (struct gathering){.cur = spare, .room = LIST_TOKENS};
        walk(top[w], stack, gather, &g);
        others[w] = (struct other){.cur = g.full ? NULL : spare, .n = g.n};
        if (!g.full)
            spare += g.n;
    }
    free(stack);

    size_t found = 0;
    uint64_t last = 0;
    /* Merge the driver's postings in seq order; check the other words. */
    for (size_t i = nheap; i-- > 0;)
        sift_down(heap, nheap, i);
    while (nheap > 0 && found < max) {
        uint64_t seq = heap[0].seq;
        heap[0].i++;
        if (!settle(&heap[0]))
            heap[0] = heap[--nheap];
        sift_down(heap, nheap, 0);
        if (seq == last)
            continue;           /* the same file under another word of the prefix */
        last = seq;
        bool all = true;
        for (size_t w = 0; w < q->nwords && all; w++)
            all = w == driver || other_holds(ix, &others[w], seq, q->word[w], len[w]);
        const struct search_doc *doc = all ? table_find(ix, seq) : NULL;
        if (doc != NULL && (pass == NULL || pass(ctx, doc)))
            out[found++] = doc;
    }
    free(cur);
    return found;
}

size_t search_token_count(const struct search_index *ix)
{
    return ix->ntokens;
}

size_t search_posting_count(const struct search_index *ix)
{
    return ix->nposts;
}
