/* hf_bpe.c: the BPE model of tokenizer.json (see hf.h), as tokenizers'
 * BPE::merge_word and Word::merge_all: a word starts as its characters (or
 * their bytes' <0xXX> tokens, or unk), then the adjacent pair of lowest merge
 * rank is merged, leftmost first, until no pair has a rank. A heap of
 * candidates keeps this O(n log n) in the word's length. */
#include <stdlib.h>
#include <string.h>

#include "../base/err.h"
#include "hf.h"

#define PAIR_EMPTY UINT64_MAX

static size_t pair_hash(uint64_t key, size_t mask) { return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 20) & mask; }

static void pairmap_rehash(struct pairmap *m, size_t cap)
{
    size_t old_cap = m->slots ? m->mask + 1 : 0;
    struct pair_slot *old = m->slots;
    m->slots = xmalloc(cap * sizeof(*m->slots));
    for (size_t i = 0; i < cap; i++) m->slots[i].key = PAIR_EMPTY;
    m->mask = cap - 1;
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i].key == PAIR_EMPTY) continue;
        size_t h = pair_hash(old[i].key, m->mask);
        while (m->slots[h].key != PAIR_EMPTY) h = (h + 1) & m->mask;
        m->slots[h] = old[i];
    }
    free(old);
}

static void pairmap_put(struct pairmap *m, uint64_t key, uint64_t val)
{
    if (!m->slots || 2 * (m->n + 1) > m->mask + 1) pairmap_rehash(m, m->slots ? 2 * (m->mask + 1) : 4096);
    size_t h = pair_hash(key, m->mask);
    while (m->slots[h].key != PAIR_EMPTY && m->slots[h].key != key) h = (h + 1) & m->mask;
    if (m->slots[h].key == PAIR_EMPTY) m->n++;
    m->slots[h] = (struct pair_slot){key, val};
}

/* rank << 32 | merged id of the pair (a, b), or PAIR_EMPTY. */
static uint64_t pairmap_get(const struct pairmap *m, int32_t a, int32_t b)
{
    if (!m->slots) return PAIR_EMPTY;
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    for (size_t h = pair_hash(key, m->mask);; h = (h + 1) & m->mask) {
        if (m->slots[h].key == key) return m->slots[h].val;
        if (m->slots[h].key == PAIR_EMPTY) return PAIR_EMPTY;
    }
}

void bpe_reserve(struct bpe *m, size_t n_vocab, size_t n_merges)
{
    strmap_reserve(&m->vocab, n_vocab);
    size_t cap = 4096;
    while (cap < 2 * n_merges) cap *= 2;
    if (!m->merges.slots || cap > m->merges.mask + 1) pairmap_rehash(&m->merges, cap);
}

int bpe_add_merge(struct bpe *m, const char *a, size_t na, const char *b, size_t nb, uint32_t rank)
{
    int32_t ia = strmap_get(&m->vocab, a, na), ib = strmap_get(&m->vocab, b, nb);
    size_t pl = m->prefix ? strlen(m->prefix) : 0;
    if (pl && nb >= pl && !memcmp(b, m->prefix, pl)) { /* the merged token drops b's prefix */
        b += pl;
        nb -= pl;
    }
    char stack[256], *ab = na + nb <= sizeof(stack) ? stack : xmalloc(na + nb);
    memcpy(ab, a, na);
    memcpy(ab + na, b, nb);
    int32_t id = strmap_get(&m->vocab, ab, na + nb);
    if (ab != stack) free(ab);
    if (ia < 0 || ib < 0 || id < 0) return -1;
    pairmap_put(&m->merges, (uint64_t)(uint32_t)ia << 32 | (uint32_t)ib, (uint64_t)rank << 32 | (uint32_t)id);
    return 0;
}

void bpe_finish(struct bpe *m)
{
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof(name), "<0x%02X>", b);
        m->byte_ids[b] = strmap_get(&m->vocab, name, 6);
    }
}

/* ---- one word ---- */

struct sym {
    int32_t id, prev, next; /* id -1: merged into the symbol before it */
};
struct cand {
    uint32_t rank;
    int32_t pos, id;
};
struct word {
    struct sym *s;
    int n, cap;
    struct cand *h; /* min-heap on (rank, pos) */
    int hn, hcap;
    int32_t unk, unk_bytes; /* a pending unk, for fuse_unk */
};

static void word_add(struct word *w, int32_t id)
{
    if (w->n == w->cap) {
        w->cap = 2 * w->cap + 16;
        w->s = xrealloc(w->s, (size_t)w->cap * sizeof(*w->s));
    }
    w->s[w->n] = (struct sym){id, w->n - 1, -1};
    if (w->n) w->s[w->n - 1].next = w->n;
    w->n++;
}

static bool cand_less(struct cand a, struct cand b) { return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos); }

static void heap_push(struct word *w, const struct pairmap *pm, int pos)
{
    int next = w->s[pos].next;
    if (next < 0) return;
    uint64_t v = pairmap_get(pm, w->s[pos].id, w->s[next].id);
    if (v == PAIR_EMPTY) return;
    if (w->hn == w->hcap) {
        w->hcap = 2 * w->hcap + 16;
        w->h = xrealloc(w->h, (size_t)w->hcap * sizeof(*w->h));
    }
    struct cand c = {(uint32_t)(v >> 32), pos, (int32_t)(uint32_t)v};
    int i = w->hn++;
    while (i && cand_less(c, w->h[(i - 1) / 2])) {
        w->h[i] = w->h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    w->h[i] = c;
}

static struct cand heap_pop(struct word *w)
{
    struct cand top = w->h[0], last = w->h[--w->hn];
    int i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= w->hn) break;
        if (c + 1 < w->hn && cand_less(w->h[c + 1], w->h[c])) c++;
        if (!cand_less(w->h[c], last)) break;
        w->h[i] = w->h[c];
        i = c;
    }
    if (w->hn) w->h[i] = last;
    return top;
}

static void merge_all(struct word *w, const struct pairmap *pm)
{
    for (int i = 0; i + 1 < w->n; i++) heap_push(w, pm, i);
    while (w->hn) {
        struct cand c = heap_pop(w);
        struct sym *x = &w->s[c.pos];
        if (x->id < 0 || x->next < 0) continue;
        uint64_t v = pairmap_get(pm, x->id, w->s[x->next].id);
        if (v == PAIR_EMPTY || (int32_t)(uint32_t)v != c.id) continue; /* a stale candidate */
        int gone = x->next;
        x->id = c.id;
        x->next = w->s[gone].next;
        w->s[gone].id = -1;
        if (x->next >= 0) w->s[x->next].prev = c.pos;
        if (x->prev >= 0) heap_push(w, pm, x->prev);
        heap_push(w, pm, c.pos);
    }
}

/* The symbol(s) of one character (key: the character with any prefix or
 * suffix, bytes: its length in the word). */
static void add_char(const struct bpe *m, struct word *w, const char *key, size_t len, int bytes)
{
    int32_t id = strmap_get(&m->vocab, key, len);
    if (id >= 0) {
        if (w->unk >= 0) word_add(w, w->unk);
        w->unk = -1;
        word_add(w, id);
        return;
    }
    bool all = m->byte_fallback;
    for (size_t i = 0; all && i < len; i++) all = m->byte_ids[(unsigned char)key[i]] >= 0;
    if (all) {
        for (size_t i = 0; i < len; i++) word_add(w, m->byte_ids[(unsigned char)key[i]]);
        return;
    }
    if (m->unk < 0) return; /* no unk token: the character is dropped, as tokenizers does */
    if (w->unk >= 0 && m->fuse_unk) {
        w->unk_bytes += bytes;
        return;
    }
    if (w->unk >= 0) word_add(w, w->unk);
    w->unk = m->unk;
    w->unk_bytes = bytes;
}

void bpe_encode(const struct bpe *m, const char *s, size_t n, struct ids *out)
{
    if (!n) return;
    int32_t whole = m->ignore_merges ? strmap_get(&m->vocab, s, n) : -1;
    if (whole >= 0) {
        ids_push(out, whole);
        return;
    }
    struct word w = {.unk = -1};
    struct strbuf key = {0};
    size_t pl = m->prefix ? strlen(m->prefix) : 0, sl = m->suffix ? strlen(m->suffix) : 0;
    int k;
    for (size_t i = 0; i < n; i += (size_t)k) {
        utf8_next(s + i, n - i, &k);
        if (!pl && !sl) {
            add_char(m, &w, s + i, (size_t)k, k);
            continue;
        }
        key.len = 0;
        if (i && pl) strbuf_append(&key, m->prefix, pl);
        strbuf_append(&key, s + i, (size_t)k);
        if (i + (size_t)k == n && sl) strbuf_append(&key, m->suffix, sl);
        add_char(m, &w, key.s, key.len, k);
    }
    if (w.unk >= 0) word_add(&w, w.unk);
    merge_all(&w, &m->merges);
    for (int i = 0; i < w.n; i = w.s[i].next) {
        ids_push(out, w.s[i].id);
        if (w.s[i].next < 0) break;
    }
    free(w.s);
    free(w.h);
    strbuf_free(&key);
}

void bpe_free(struct bpe *m)
{
    strmap_free(&m->vocab);
    free(m->merges.slots);
    free(m->prefix);
    free(m->suffix);
}
