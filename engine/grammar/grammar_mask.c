/* grammar_mask.c: the vocabulary's byte trie, token masks, and the mask
 * cache.
 *
 * The trie is stored in preorder: node i has its byte, its depth and the
 * index just past its subtree, so that the walk is one loop over an array,
 * and a byte the automaton rejects skips the whole subtree (every token
 * that starts with that prefix) at once. The states along the current path
 * sit in the matcher's per-depth scratch; their frames in its arena, cut
 * back when the walk backs up.
 *
 * The cache maps a state's key (its stacks' hashes, order-free, salted with
 * the vocabulary) to a finished mask, on the grammar, shared by its
 * matchers, bounded in bytes; eviction by the clock (second chance). */
#include <stdlib.h>
#include <string.h>

#include "../../base/err.h"
#include "grammar_impl.h"

/* --- the walk --- */

static void ensure_wst(struct grammar_matcher *m, const struct grammar_vocab *v)
{
    if (m->cap_wst < v->max_depth + 1) {
        m->cap_wst = v->max_depth + 1;
        m->wst = xrealloc(m->wst, (size_t)m->cap_wst * sizeof(*m->wst));
        m->wtop = xrealloc(m->wtop, (size_t)m->cap_wst * sizeof(*m->wtop));
    }
}

/* The tokens of trie nodes [i, end) (a run of whole subtrees below depth
 * base, or the whole trie with base 0) whose bytes after the first base
 * ones m->wst[base] accepts; the states along the path in m->wst, their
 * frames past m->wtop[base]. */
static void walk_range(struct grammar_matcher *m, const struct grammar_vocab *v, int i, int end, uint32_t *bits)
{
    while (i < end) {
        int d = v->tdepth[i];
        m->n_fr = m->wtop[d - 1];
        if (!gm__step(m, &m->wst[d - 1], v->tb[i], &m->wst[d])) {
            i = v->tend[i];
            continue;
        }
        m->wtop[d] = m->n_fr;
        for (int32_t t = v->ttok[i]; t >= 0; t = v->tsame[t]) bits[t >> 5] |= 1u << (t & 31);
        i++;
    }
}

/* Every token whose bytes state st0 accepts: one pass over the trie. */
static void walk(struct grammar_matcher *m, const struct grammar_vocab *v, const struct gstate *st0, uint32_t *bits)
{
    ensure_wst(m, v);
    int32_t top0 = m->n_fr;
    m->wst[0] = *st0;
    m->wtop[0] = top0;
    walk_range(m, v, 0, v->n_nodes, bits);
    m->n_fr = top0;
}

/* --- per node: the tokens a stack whose top is there accepts or refuses
 * whatever lies below (xgrammar's context-independent tokens) ---
 *
 * From node x, a token is followed through byte edges while each node
 * reached is interior (only byte edges: no epsilon, call or end, where the
 * stack below would matter). Edges that count (a code point of a bounded
 * string: "c < L, then c++") are followed too, counting k of them, so
 * that at a miss a token is accepted iff c + k <= L: acc[r] holds the
 * tokens with k <= r. Tokens refused on the way are refused; tokens that
 * end on an interior node are accepted; the rest (a byte with two edges,
 * a guard, a node that is not interior, more than NI_MAX_K counts) are
 * uncertain: whole subtrees of the trie, kept with the node where they
 * left, the bytes read and the count by then, and walked for real at each
 * miss from there. */
#define NI_MAX_K 24

struct ninfo {
    uint64_t serial;
    size_t bytes;
    int64_t lim;        /* L of the counting edges; INT64_MAX when none */
    int max_k;          /* acc[0..max_k] */
    uint32_t *acc;      /* (max_k + 1) masks, each holding the ones before it */
    int n_unc, cap_unc; /* uncertain subtrees: */
    int32_t *unc_i;     /* the trie node at their root */
    int32_t *unc_node;  /* the automaton node after unc_off bytes */
    uint16_t *unc_off;  /* the root's depth, or one less: its byte not read yet */
    uint8_t *unc_k;     /* the counts by then */
};

static bool interior(const grammar *g, int x)
{
    const struct gnode *n = &g->nodes[x];
    return n->kind == NODE_PLAIN && n->eps0 == n->eps1 && !n->is_end && n->bytes1 > n->bytes0;
}

static void add_unc(struct ninfo *ni, int i, int node, int off, int k)
{
    if (ni->n_unc == ni->cap_unc) {
        ni->cap_unc = ni->cap_unc ? 2 * ni->cap_unc : 64;
        ni->unc_i = xrealloc(ni->unc_i, (size_t)ni->cap_unc * sizeof(int32_t));
        ni->unc_node = xrealloc(ni->unc_node, (size_t)ni->cap_unc * sizeof(int32_t));
        ni->unc_off = xrealloc(ni->unc_off, (size_t)ni->cap_unc * sizeof(uint16_t));
        ni->unc_k = xrealloc(ni->unc_k, (size_t)ni->cap_unc);
    }
    ni->unc_i[ni->n_unc] = i;
    ni->unc_node[ni->n_unc] = node;
    ni->unc_off[ni->n_unc] = (uint16_t)off;
    ni->unc_k[ni->n_unc++] = (uint8_t)k;
}

static struct ninfo *ninfo_build(const grammar *g, const struct grammar_vocab *v, int x)
{
    struct ninfo *ni = xcalloc(1, sizeof(*ni));
    ni->serial = v->serial;
    ni->lim = INT64_MAX;
    uint32_t *acc = xcalloc((NI_MAX_K + 1) * v->words + 1, 4); /* by exact k first */
    int32_t *cur = xmalloc(((size_t)v->max_depth + 1) * sizeof(*cur));
    int *ks = xmalloc(((size_t)v->max_depth + 1) * sizeof(*ks));
    bool has_lim = false;
    cur[0] = x, ks[0] = 0;
    for (int i = 0; i < v->n_nodes;) {
        int d = v->tdepth[i], match = 0, k = ks[d - 1];
        const struct gedge *only = NULL;
        const struct gnode *n = &g->nodes[cur[d - 1]];
        for (int32_t e = n->bytes0; e < n->bytes1; e++)
            if (v->tb[i] >= g->edges[e].lo && v->tb[i] <= g->edges[e].hi) match++, only = &g->edges[e];
        bool follow = match == 1 && (only->cop == COP_NONE || only->cop == COP_INC_LT);
        if (follow && only->cop == COP_INC_LT) {
            if (!has_lim) has_lim = true, ni->lim = only->arg;
            follow = only->arg == ni->lim && k < NI_MAX_K;
            k++;
        }
        if (!match) {
            i = v->tend[i];
        } else if (!follow) { /* this byte is stepped for real */
            add_unc(ni, i, cur[d - 1], d - 1, ks[d - 1]);
            i = v->tend[i];
        } else if (!interior(g, only->to)) { /* after it, for real */
            add_unc(ni, i, only->to, d, k);
            i = v->tend[i];
        } else {
            cur[d] = only->to, ks[d] = k;
            if (k > ni->max_k) ni->max_k = k;
            for (int32_t t = v->ttok[i]; t >= 0; t = v->tsame[t]) acc[k * v->words + (t >> 5)] |= 1u << (t & 31);
            i++;
        }
    }
    free(cur);
    free(ks);
    for (int k = 1; k <= ni->max_k; k++)
        for (size_t w = 0; w < v->words; w++) acc[k * v->words + w] |= acc[(k - 1) * v->words + w];
    ni->acc = xrealloc(acc, ((size_t)ni->max_k + 1) * v->words * 4 + 4);
    ni->bytes = ((size_t)ni->max_k + 1) * v->words * 4 + (size_t)ni->n_unc * 11 + sizeof(*ni);
    return ni;
}

static void ninfo_free(struct ninfo *ni)
{
    if (!ni) return;
    free(ni->acc);
    free(ni->unc_i);
    free(ni->unc_node);
    free(ni->unc_off);
    free(ni->unc_k);
    free(ni);
}

void ninfo_free_all(grammar *g)
{
    if (!g->ninfo) return;
    for (int i = 0; i < g->n_nodes; i++) ninfo_free(g->ninfo[i]);
    free(g->ninfo);
    g->ninfo = NULL;
    g->ninfo_bytes = 0;
}

static const struct ninfo *ninfo_get(grammar *g, const struct grammar_vocab *v, int x)
{
    if (!g->ninfo) g->ninfo = xcalloc((size_t)g->n_nodes, sizeof(*g->ninfo));
    struct ninfo *ni = g->ninfo[x];
    if (ni && ni->serial == v->serial) return ni;
    if (ni) {
        g->ninfo_bytes -= ni->bytes;
        ninfo_free(ni);
    }
    ni = ninfo_build(g, v, x);
    if (g->ninfo_bytes + ni->bytes > g->cache_bytes / 2) { /* their share of the budget: start over */
        ninfo_free_all(g);
        g->ninfo = xcalloc((size_t)g->n_nodes, sizeof(*g->ninfo));
    }
    g->ninfo[x] = ni;
    g->ninfo_bytes += ni->bytes;
    return ni;
}

/* The uncertain tokens of ni for the stack whose top is frame f. */
static void walk_uncertain(struct grammar_matcher *m, const struct grammar_vocab *v, const struct ninfo *ni, int32_t f,
                           uint32_t *bits)
{
    ensure_wst(m, v);
    int32_t top0 = m->n_fr;
    struct gframe fr = m->fr[f];
    for (int e = 0; e < ni->n_unc; e++) {
        int k = ni->unc_k[e], off = ni->unc_off[e], i = ni->unc_i[e];
        /* the k counting edges on the way passed iff c + k <= L */
        if (k && (int64_t)fr.counter > ni->lim - k) continue;
        m->n_fr = top0;
        gm__start(m, ni->unc_node[e], fr.counter + (uint64_t)k, fr.parent, fr.depth, &m->wst[off]);
        if (!m->wst[off].n && !m->wst[off].end) continue;
        m->wtop[off] = m->n_fr;
        int j = i;
        if (v->tdepth[i] == off) { /* the root's byte was read */
            for (int32_t t = v->ttok[i]; t >= 0; t = v->tsame[t]) bits[t >> 5] |= 1u << (t & 31);
            j++;
        }
        walk_range(m, v, j, v->tend[i], bits);
    }
    m->n_fr = top0;
}

/* The mask of the matcher's state: stack by stack, a token being allowed
 * when one stack accepts it (the step is a union over stacks; at the
 * bounds gm_accept_bytes goes stack by stack too). An integer's node: a
 * walk of the trie from that stack. */
static void compute_mask(struct grammar_matcher *m, const struct grammar_vocab *v, uint32_t *bits)
{
    grammar *g = (grammar *)m->g;
    for (int i = 0; i < m->cur.n; i++) {
        int32_t f = m->cur.top[i];
        int x = m->fr[f].node;
        if (g->nodes[x].kind == NODE_PLAIN) {
            const struct ninfo *ni = ninfo_get(g, v, x);
            int64_t r = ni->lim == INT64_MAX ? ni->max_k : ni->lim - (int64_t)m->fr[f].counter;
            if (r >= 0) {
                const uint32_t *acc = ni->acc + (size_t)(r < ni->max_k ? r : ni->max_k) * v->words;
                for (size_t w = 0; w < v->words; w++) bits[w] |= acc[w];
            }
            walk_uncertain(m, v, ni, f, bits);
        } else {
            struct gstate one = {.n = 1, .end = false};
            one.top[0] = f;
            one.h[0] = m->fr[f].hash;
            walk(m, v, &one, bits);
        }
    }
}

/* --- the cache --- */

struct mentry {
    uint64_t key;
    uint32_t *mask;
    size_t words;
    int32_t next; /* bucket chain, or the free list */
    bool used, ref;
};

struct mask_cache {
    struct mentry *e;
    int n_e, cap_e, free_head, hand;
    int32_t *bucket;
    uint32_t n_bucket; /* a power of two */
    size_t used, bytes;
    uint64_t hits, misses;
};

static void cache_unlink(struct mask_cache *c, int i)
{
    int32_t *p = &c->bucket[c->e[i].key & (c->n_bucket - 1)];
    while (*p != i) p = &c->e[*p].next;
    *p = c->e[i].next;
    free(c->e[i].mask);
    c->bytes -= c->e[i].words * 4;
    c->used--;
    c->e[i].used = false;
    c->e[i].next = c->free_head;
    c->free_head = i;
}

static void cache_rehash(struct mask_cache *c, uint32_t nb)
{
    free(c->bucket);
    c->n_bucket = nb;
    c->bucket = xmalloc(nb * sizeof(*c->bucket));
    for (uint32_t i = 0; i < nb; i++) c->bucket[i] = -1;
    for (int i = 0; i < c->n_e; i++)
        if (c->e[i].used) {
            int32_t *b = &c->bucket[c->e[i].key & (nb - 1)];
            c->e[i].next = *b;
            *b = i;
        }
}

static int cache_find(struct mask_cache *c, uint64_t key, size_t words)
{
    if (!c->bucket) return -1;
    for (int32_t i = c->bucket[key & (c->n_bucket - 1)]; i >= 0; i = c->e[i].next)
        if (c->e[i].key == key && c->e[i].words == words) return i;
    return -1;
}

static void cache_put(struct mask_cache *c, size_t limit, uint64_t key, const uint32_t *mask, size_t words)
{
    if (words * 4 > limit) return;
    while (c->bytes + words * 4 > limit && c->used) { /* the clock */
        struct mentry *e = &c->e[c->hand];
        if (e->used && !e->ref) cache_unlink(c, c->hand);
        else e->ref = false;
        c->hand = (c->hand + 1) % c->n_e;
    }
    if (!c->bucket || c->used + 1 > c->n_bucket) cache_rehash(c, c->n_bucket ? 2 * c->n_bucket : 256);
    int i = c->free_head;
    if (i >= 0) c->free_head = c->e[i].next;
    else {
        if (c->n_e == c->cap_e) {
            c->cap_e = c->cap_e ? 2 * c->cap_e : 64;
            c->e = xrealloc(c->e, (size_t)c->cap_e * sizeof(*c->e));
        }
        i = c->n_e++;
    }
    struct mentry *e = &c->e[i];
    e->key = key;
    e->words = words;
    e->mask = xmalloc(words * 4);
    memcpy(e->mask, mask, words * 4);
    e->used = true;
    e->ref = false;
    int32_t *b = &c->bucket[key & (c->n_bucket - 1)];
    e->next = *b;
    *b = i;
    c->used++;
    c->bytes += words * 4;
}

void mask_cache_free(struct mask_cache *c)
{
    if (!c) return;
    for (int i = 0; i < c->n_e; i++)
        if (c->e[i].used) free(c->e[i].mask);
    free(c->e);
    free(c->bucket);
    free(c);
}

void gm_fill_mask(struct grammar_matcher *m, const struct grammar_vocab *v, uint32_t *bits)
{
    if (m->terminated) {
        memset(bits, 0, v->words * 4);
        return;
    }
    /* the cache belongs to the grammar, which the matcher only borrows as
     * const: it is bookkeeping, not part of the automaton */
    grammar *g = (grammar *)m->g;
    if (!g->cache) {
        g->cache = xcalloc(1, sizeof(*g->cache));
        g->cache->free_head = -1;
    }
    struct mask_cache *c = g->cache;
    uint64_t key = gm__key(&m->cur, v->serial);
    int i = cache_find(c, key, v->words);
    if (i >= 0) {
        c->hits++;
        c->e[i].ref = true;
        memcpy(bits, c->e[i].mask, v->words * 4);
        return;
    }
    c->misses++;
    memset(bits, 0, v->words * 4);
    compute_mask(m, v, bits);
    if (m->cur.end)
        for (int k = 0; k < v->n_eos; k++) bits[v->eos[k] >> 5] |= 1u << (v->eos[k] & 31);
    cache_put(c, g->cache_bytes, key, bits, v->words);
}

void grammar_cache_stats(const grammar *g, size_t *entries, size_t *bytes, uint64_t *hits, uint64_t *misses)
{
    const struct mask_cache *c = g->cache;
    if (entries) *entries = c ? c->used : 0;
    if (bytes) *bytes = c ? c->bytes : 0;
    if (hits) *hits = c ? c->hits : 0;
    if (misses) *misses = c ? c->misses : 0;
}
