/* grammar_graph.c: the automaton's builder, the pass that removes dead
 * edges, and grammar_compile (a spec's body inside its prefix, suffix and
 * repeat). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../base/err.h"
#include "grammar_impl.h"

struct grammar_spec grammar_spec_default(enum grammar_kind kind, const char *text)
{
    struct grammar_spec s;
    memset(&s, 0, sizeof(s));
    s.kind = kind;
    s.text = text;
    s.max_ws = 16;
    return s;
}

bool gb_fail(grammar *g, const char *fmt, ...)
{
    if (g->failed) return false;
    g->failed = true;
    if (g->err && g->err_cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(g->err, g->err_cap, fmt, ap);
        va_end(ap);
    }
    return false;
}

int gb_node(grammar *g)
{
    if (g->n_nodes >= GB_MAX_NODES) {
        gb_fail(g, "grammar too large (more than %d automaton states)", GB_MAX_NODES);
        return 0;
    }
    if (g->n_nodes == g->cap_nodes) {
        g->cap_nodes = g->cap_nodes ? 2 * g->cap_nodes : 256;
        g->nodes = xrealloc(g->nodes, (size_t)g->cap_nodes * sizeof(*g->nodes));
    }
    struct gnode *n = &g->nodes[g->n_nodes];
    memset(n, 0, sizeof(*n));
    n->int_lo_idx = -1;
    return g->n_nodes++;
}

int gb_rule(grammar *g)
{
    if (g->n_rules >= GB_MAX_RULES) {
        gb_fail(g, "grammar too large (more than %d rules)", GB_MAX_RULES);
        return 0;
    }
    if (g->n_rules == g->cap_rules) {
        g->cap_rules = g->cap_rules ? 2 * g->cap_rules : 64;
        g->rules = xrealloc(g->rules, (size_t)g->cap_rules * sizeof(*g->rules));
    }
    g->rules[g->n_rules].start = gb_node(g);
    return g->n_rules++;
}

void gb_end(grammar *g, int node) { g->nodes[node].is_end = true; }

static void add_edge(grammar *g, struct gedge e)
{
    if (g->n_edges >= GB_MAX_EDGES) {
        gb_fail(g, "grammar too large (more than %d automaton edges)", GB_MAX_EDGES);
        return;
    }
    if (g->n_edges == g->cap_edges) {
        g->cap_edges = g->cap_edges ? 2 * g->cap_edges : 1024;
        g->edges = xrealloc(g->edges, (size_t)g->cap_edges * sizeof(*g->edges));
    }
    g->edges[g->n_edges++] = e;
}

void gb_byte(grammar *g, int from, int lo, int hi, int to, int cop, int64_t arg)
{
    add_edge(g, (struct gedge){.kind = EDGE_BYTE, .cop = (uint8_t)cop, .lo = (uint8_t)lo, .hi = (uint8_t)hi,
                               .from = from, .to = to, .callee = -1, .dep = -1, .arg = arg});
}

void gb_eps(grammar *g, int from, int to, int cop, int64_t arg)
{
    add_edge(g, (struct gedge){.kind = EDGE_EPS, .cop = (uint8_t)cop, .from = from, .to = to, .callee = -1, .dep = -1, .arg = arg});
}

void gb_call(grammar *g, int from, int rule, int to, int cop, int64_t arg)
{
    add_edge(g, (struct gedge){.kind = EDGE_CALL, .cop = (uint8_t)cop, .from = from, .to = to, .callee = rule, .dep = -1, .arg = arg});
}

void gb_dep(grammar *g, int node)
{
    if (g->n_edges) g->edges[g->n_edges - 1].dep = node;
}

int gb_lit(grammar *g, int from, const void *s, size_t n)
{
    const uint8_t *p = s;
    for (size_t i = 0; i < n && !g->failed; i++) {
        int t = gb_node(g);
        gb_byte(g, from, p[i], p[i], t, COP_NONE, 0);
        from = t;
    }
    return from;
}

/* Alternatives of literals share their prefixes (a byte trie of graph
 * nodes), so that an enum of many strings is one path per byte, not as
 * many stacks as strings. */
struct gb_trie {
    grammar *g;
    int n, cap;
    struct gb_tn {
        int node, child, sib;
        uint8_t b;
        bool term;
    } *t;
};

struct gb_trie *gb_trie_new(grammar *g, int from)
{
    struct gb_trie *t = xcalloc(1, sizeof(*t));
    t->g = g;
    t->cap = 16;
    t->t = xmalloc((size_t)t->cap * sizeof(*t->t));
    t->t[0] = (struct gb_tn){from, -1, -1, 0, false};
    t->n = 1;
    return t;
}

void gb_trie_add(struct gb_trie *t, const void *s, size_t n, int to)
{
    const uint8_t *p = s;
    int cur = 0;
    for (size_t i = 0; i < n && !t->g->failed; i++) {
        int ch = t->t[cur].child;
        while (ch >= 0 && t->t[ch].b != p[i]) ch = t->t[ch].sib;
        if (ch < 0) {
            if (t->n == t->cap) t->t = xrealloc(t->t, (size_t)(t->cap *= 2) * sizeof(*t->t));
            int node = gb_node(t->g);
            gb_byte(t->g, t->t[cur].node, p[i], p[i], node, COP_NONE, 0);
            t->t[t->n] = (struct gb_tn){node, -1, t->t[cur].child, p[i], false};
            t->t[cur].child = ch = t->n++;
        }
        cur = ch;
    }
    if (!t->t[cur].term) gb_eps(t->g, t->t[cur].node, to, COP_NONE, 0);
    t->t[cur].term = true;
}

void gb_trie_free(struct gb_trie *t)
{
    if (!t) return;
    free(t->t);
    free(t);
}

int gb_ws(grammar *g, int from)
{
    if (g->ws_rule < 0) return from;
    int t = gb_node(g);
    gb_call(g, from, g->ws_rule, t, COP_NONE, 0);
    return t;
}

/* --- finalize: productive nodes, dead edges out, edges grouped by node --- */

/* The distinct nodes edge e's productivity depends on. */
static int edge_deps(const grammar *g, const struct gedge *e, int d[3])
{
    int n = 0;
    d[n++] = e->to;
    if (e->kind == EDGE_CALL && g->rules[e->callee].start != e->to) d[n++] = g->rules[e->callee].start;
    if (e->dep >= 0 && e->dep != d[0] && (n < 2 || e->dep != d[1])) d[n++] = e->dep;
    return n;
}

/* A node is productive when some path from it reaches its rule's end
 * (an int node ends by itself); an edge when its target is, and for a call
 * the callee's start too. Worklist over the edges' dependencies. */
static void mark_productive(grammar *g)
{
    int nn = g->n_nodes, ne = g->n_edges;
    int *need = xcalloc((size_t)ne + 1, sizeof(int));
    int *dep0 = xcalloc((size_t)nn + 1, sizeof(int));
    int *deps = xmalloc(((size_t)3 * ne + 1) * sizeof(int));
    for (int e = 0; e < ne; e++) {
        int d[3], nd = edge_deps(g, &g->edges[e], d);
        for (int k = 0; k < nd; k++) dep0[d[k] + 1]++;
        need[e] = nd;
    }
    for (int i = 0; i < nn; i++) dep0[i + 1] += dep0[i];
    int *fill = xmalloc(((size_t)nn + 1) * sizeof(int));
    memcpy(fill, dep0, ((size_t)nn + 1) * sizeof(int));
    for (int e = 0; e < ne; e++) {
        int d[3], nd = edge_deps(g, &g->edges[e], d);
        for (int k = 0; k < nd; k++) deps[fill[d[k]]++] = e;
    }
    int *work = xmalloc(((size_t)nn + 1) * sizeof(int));
    int nw = 0;
    for (int i = 0; i < nn; i++) {
        g->nodes[i].productive = g->nodes[i].is_end || g->nodes[i].kind == NODE_INT;
        if (g->nodes[i].productive) work[nw++] = i;
    }
    while (nw) {
        int x = work[--nw];
        for (int k = dep0[x]; k < dep0[x + 1]; k++) {
            int e = deps[k];
            if (--need[e] == 0) {
                int s = g->edges[e].from;
                if (!g->nodes[s].productive) {
                    g->nodes[s].productive = true;
                    work[nw++] = s;
                }
            }
        }
    }
    /* need[e] == 0 now says the edge is productive */
    int k = 0;
    for (int e = 0; e < ne; e++)
        if (need[e] == 0 && g->nodes[g->edges[e].from].productive) g->edges[k++] = g->edges[e];
    g->n_edges = k;
    free(need);
    free(dep0);
    free(deps);
    free(fill);
    free(work);
}

/* Counting sort of the edges by source node, byte edges first. */
static void group_edges(grammar *g)
{
    int nn = g->n_nodes, ne = g->n_edges;
    int *cnt = xcalloc((size_t)2 * nn + 1, sizeof(int));
    for (int e = 0; e < ne; e++) cnt[2 * g->edges[e].from + (g->edges[e].kind != EDGE_BYTE) + 1]++;
    for (int i = 0; i < 2 * nn; i++) cnt[i + 1] += cnt[i];
    struct gedge *out = xmalloc(((size_t)ne + 1) * sizeof(*out));
    for (int i = 0; i < nn; i++) {
        g->nodes[i].bytes0 = cnt[2 * i];
        g->nodes[i].bytes1 = g->nodes[i].eps0 = cnt[2 * i + 1];
        g->nodes[i].eps1 = cnt[2 * i + 2];
    }
    for (int e = 0; e < ne; e++) out[cnt[2 * g->edges[e].from + (g->edges[e].kind != EDGE_BYTE)]++] = g->edges[e];
    free(g->edges);
    g->edges = out;
    g->cap_edges = ne + 1;
    free(cnt);
}

/* --- compile --- */

static int body_rule(grammar *g, const struct grammar_spec *spec)
{
    switch (spec->kind) {
    case GRAMMAR_JSON_SCHEMA:
        if (!spec->text) return gb_fail(g, "no schema"), -1;
        return gs_compile(g, spec->text);
    case GRAMMAR_JSON_OBJECT:
        return gs_any_object(g);
    case GRAMMAR_REGEX: {
        if (!spec->text) return gb_fail(g, "no regex"), -1;
        int r = gb_rule(g);
        int e = gr_regex(g, spec->text, g->rules[r].start, false, false, "regex");
        if (e >= 0) gb_end(g, e);
        return r;
    }
    case GRAMMAR_CHOICE: {
        if (!spec->text) return gb_fail(g, "no choices"), -1;
        int r = gs_choice(g, spec->text);
        return r;
    }
    }
    gb_fail(g, "unknown grammar kind %d", (int)spec->kind);
    return -1;
}

static int lit_str(grammar *g, int from, const char *s) { return s ? gb_lit(g, from, s, strlen(s)) : from; }

/* The root: prefix, the body, suffix; with repeat, more copies after the
 * separator, counted by the root's frame. */
static void root_rule(grammar *g, const struct grammar_spec *spec, int body)
{
    int64_t max = spec->repeat && spec->max_repeat > 0 ? spec->max_repeat : INT64_MAX;
    int r = g->rules[g->root].start, a = r;
    if (spec->repeat) {
        a = gb_node(g);
        gb_eps(g, r, a, COP_INC_LT, max);
    }
    int x = lit_str(g, a, spec->prefix);
    int y = gb_node(g);
    gb_call(g, x, body, y, COP_NONE, 0);
    int l = lit_str(g, y, spec->suffix);
    gb_end(g, l);
    if (spec->repeat) {
        int p = gb_node(g);
        gb_eps(g, l, p, COP_LT, max);
        int q = lit_str(g, p, spec->separator);
        gb_eps(g, q, a, COP_INC_LT, max);
    }
}

grammar *grammar_compile(const struct grammar_spec *spec, char *err, size_t err_cap)
{
    if (err && err_cap) err[0] = '\0';
    grammar *g = xcalloc(1, sizeof(*g));
    g->err = err;
    g->err_cap = err_cap;
    g->any_rule = -1;
    g->str_rule = -1;
    g->ws_rule = -1;
    g->max_ws = spec->max_ws;
    g->cache_bytes = spec->cache_bytes ? spec->cache_bytes : GRAMMAR_CACHE_DEFAULT;
    if (spec->max_ws < 0 || spec->max_ws > 64) {
        gb_fail(g, "max_ws must be within 0..64");
        goto fail;
    }
    if (spec->max_repeat < 0) {
        gb_fail(g, "max_repeat must be >= 0");
        goto fail;
    }
    g->root = gb_rule(g);
    if (spec->max_ws > 0) {
        /* whitespace: one rule whose start is its end, and a counter */
        g->ws_rule = gb_rule(g);
        int s = g->rules[g->ws_rule].start;
        gb_end(g, s);
        gb_byte(g, s, ' ', ' ', s, COP_INC_LT, spec->max_ws);
        gb_byte(g, s, '\n', '\n', s, COP_INC_LT, spec->max_ws);
        gb_byte(g, s, '\t', '\t', s, COP_INC_LT, spec->max_ws);
    }
    int body = body_rule(g, spec);
    if (g->failed || body < 0) goto fail;
    root_rule(g, spec, body);
    if (g->failed) goto fail;
    mark_productive(g);
    if (!g->nodes[g->rules[g->root].start].productive) {
        gb_fail(g, "the schema admits no value");
        goto fail;
    }
    group_edges(g);
    g->err = NULL;
    return g;
fail:
    if (err && err_cap && !err[0]) snprintf(err, err_cap, "invalid grammar");
    g->err = NULL;
    grammar_free(g);
    return NULL;
}

void grammar_free(grammar *g)
{
    if (!g) return;
    mask_cache_free(g->cache);
    ninfo_free_all(g);
    free(g->nodes);
    free(g->edges);
    free(g->rules);
    free(g->ints);
    free(g);
}

void grammar_stats(const grammar *g, int *nodes, int *edges, int *rules)
{
    if (nodes) *nodes = g->n_nodes;
    if (edges) *edges = g->n_edges;
    if (rules) *rules = g->n_rules;
}
