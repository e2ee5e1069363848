/* grammar_match.c: the matcher: a set of stacks of frames stepped byte by
 * byte.
 *
 * A state holds only stacks whose top frame sits at a node that reads bytes
 * (a byte edge, or an integer node): after each byte the new tops are
 * closed over epsilon edges, calls (push the return frame, then the
 * callee's start) and rule ends (pop to the parent, which already is the
 * return frame). Frames live in an arena and are never changed, so stacks
 * share their lower frames; a frame's hash names its whole stack, which
 * merges equal stacks and keys the mask cache. Left recursion or runaway
 * nesting stops at GRAMMAR_MAX_DEPTH frames (that stack is dropped). */
#include <string.h>
#include <xxhash.h>

#include "../../base/err.h"
#include "grammar_impl.h"

#define INT_NEG (1ull << 62)
#define INT_DIG (1ull << 61)
#define INT_SAT (1ull << 60)
#define INT_MAG ((1ull << 60) - 1)
#define INT_LIM 10000000000000000ull /* past it a magnitude only counts as "huge" */
#define ROOT_HASH 0x6a09e667f3bcc908ull

static inline uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

static int32_t new_frame(struct grammar_matcher *m, int32_t node, uint64_t counter, int32_t parent, int32_t depth)
{
    if (m->n_fr == m->cap_fr) {
        m->cap_fr = m->cap_fr ? 2 * m->cap_fr : 1024;
        m->fr = xrealloc(m->fr, (size_t)m->cap_fr * sizeof(*m->fr));
    }
    uint64_t ph = parent >= 0 ? m->fr[parent].hash : ROOT_HASH;
    struct gframe *f = &m->fr[m->n_fr];
    f->node = node;
    f->parent = parent;
    f->depth = depth;
    f->pad = 0;
    f->counter = counter;
    f->hash = mix64(mix64(ph ^ ((uint64_t)(uint32_t)node << 1 | 1)) + counter * 0x9E3779B97F4A7C15ull);
    return m->n_fr++;
}

/* --- bounded integers: the counter holds sign, digits seen, magnitude --- */

/* Whether some completion of the digits so far (or they themselves, when
 * there are any) lies in [lo, hi]. */
static bool int_feasible(const struct gint *r, uint64_t c)
{
    bool neg = c & INT_NEG, dig = c & INT_DIG;
    if (c & INT_SAT) return neg ? !r->has_lo : !r->has_hi;
    int64_t mag = (int64_t)(c & INT_MAG);
    if (!dig) {
        if (!neg) return true;
        int64_t top = r->has_hi && r->hi < 0 ? r->hi : 0;
        return !r->has_lo || r->lo <= top;
    }
    if (mag == 0) return (!r->has_lo || r->lo <= 0) && (!r->has_hi || r->hi >= 0);
    for (int64_t p = 1;; p *= 10) {
        if ((uint64_t)mag > INT_LIM / (uint64_t)p) return neg ? !r->has_lo : !r->has_hi;
        int64_t a = mag * p, b = a + p - 1;
        int64_t sl = neg ? -b : a, sh = neg ? -a : b;
        if ((!r->has_lo || sh >= r->lo) && (!r->has_hi || sl <= r->hi)) return true;
    }
}

static bool int_done(const struct gint *r, uint64_t c)
{
    if (!(c & INT_DIG)) return false;
    bool neg = c & INT_NEG;
    if (c & INT_SAT) return neg ? !r->has_lo : !r->has_hi;
    int64_t v = (int64_t)(c & INT_MAG);
    if (neg) v = -v;
    return (!r->has_lo || v >= r->lo) && (!r->has_hi || v <= r->hi);
}

static bool int_step(const struct gint *r, uint64_t c, uint8_t b, uint64_t *out)
{
    if (b == '-') {
        if (c & (INT_DIG | INT_NEG)) return false;
        c |= INT_NEG;
    } else if (b >= '0' && b <= '9') {
        if (!(c & INT_SAT)) {
            uint64_t mag = c & INT_MAG;
            if ((c & INT_DIG) && mag == 0) return false; /* no leading zeros */
            mag = mag * 10 + (b - '0');
            c = (c & ~INT_MAG) | INT_DIG;
            c |= mag > INT_LIM ? INT_SAT : mag;
        }
    } else
        return false;
    *out = c;
    return int_feasible(r, c);
}

/* --- closure and step --- */

static bool cop_ok(const struct gedge *e, uint64_t *c)
{
    switch (e->cop) {
    case COP_LT: return (int64_t)*c < e->arg;
    case COP_INC_LT:
        if ((int64_t)*c >= e->arg) return false;
        (*c)++;
        return true;
    case COP_GE: return (int64_t)*c >= e->arg;
    default: return true;
    }
}

/* Marks hash h seen in this step; false when it was, or the set is full
 * (then the stack is dropped: fewer outputs, never a wrong one). */
static bool see(struct grammar_matcher *m, uint64_t h)
{
    if (m->n_seen >= GM_SEEN / 2) return m->dropped = true, false;
    uint32_t i = (uint32_t)h & (GM_SEEN - 1);
    while (m->seen_gen[i] == m->gen) {
        if (m->seen_h[i] == h) return false;
        i = (i + 1) & (GM_SEEN - 1);
    }
    m->seen_gen[i] = m->gen;
    m->seen_h[i] = h;
    m->n_seen++;
    return true;
}

static void push_work(struct grammar_matcher *m, int32_t f)
{
    if (m->n_work == m->cap_work) {
        m->cap_work = m->cap_work ? 2 * m->cap_work : 256;
        m->work = xrealloc(m->work, (size_t)m->cap_work * sizeof(*m->work));
    }
    m->work[m->n_work++] = f;
}

static void closure(struct grammar_matcher *m, int32_t f0, struct gstate *out)
{
    const grammar *g = m->g;
    m->n_work = 0;
    push_work(m, f0);
    while (m->n_work) {
        int32_t f = m->work[--m->n_work];
        if (!see(m, m->fr[f].hash)) continue;
        struct gframe fr = m->fr[f];
        const struct gnode *nd = &g->nodes[fr.node];
        bool is_int = nd->kind == NODE_INT;
        if (is_int || nd->bytes1 > nd->bytes0) {
            if (out->n < GRAMMAR_MAX_STACKS) {
                out->top[out->n] = f;
                out->h[out->n++] = fr.hash;
            } else
                m->dropped = true;
        }
        if (nd->is_end || (is_int && int_done(&g->ints[nd->int_lo_idx], fr.counter))) {
            if (fr.parent < 0) out->end = true;
            else push_work(m, fr.parent);
        }
        for (int32_t k = nd->eps0; k < nd->eps1; k++) {
            const struct gedge *e = &g->edges[k];
            uint64_t c = fr.counter;
            if (!cop_ok(e, &c)) continue;
            if (e->kind == EDGE_EPS) {
                push_work(m, new_frame(m, e->to, c, fr.parent, fr.depth));
            } else if (fr.depth + 1 < GRAMMAR_MAX_DEPTH) {
                int32_t ret = new_frame(m, e->to, c, fr.parent, fr.depth);
                push_work(m, new_frame(m, g->rules[e->callee].start, 0, ret, fr.depth + 1));
            }
        }
    }
}

bool gm__step(struct grammar_matcher *m, const struct gstate *in, uint8_t b, struct gstate *out)
{
    const grammar *g = m->g;
    out->n = 0;
    out->end = false;
    m->gen++;
    m->n_seen = 0;
    for (int i = 0; i < in->n; i++) {
        const struct gframe fr = m->fr[in->top[i]];
        const struct gnode *nd = &g->nodes[fr.node];
        if (nd->kind == NODE_INT) {
            uint64_t c;
            if (int_step(&g->ints[nd->int_lo_idx], fr.counter, b, &c))
                closure(m, new_frame(m, fr.node, c, fr.parent, fr.depth), out);
            continue;
        }
        for (int32_t k = nd->bytes0; k < nd->bytes1; k++) {
            const struct gedge *e = &g->edges[k];
            if (b < e->lo || b > e->hi) continue;
            uint64_t c = fr.counter;
            if (!cop_ok(e, &c)) continue;
            closure(m, new_frame(m, e->to, c, fr.parent, fr.depth), out);
        }
    }
    return out->n > 0 || out->end;
}

void gm__start(struct grammar_matcher *m, int32_t node, uint64_t counter, int32_t parent, int32_t depth,
               struct gstate *out)
{
    out->n = 0;
    out->end = false;
    m->gen++;
    m->n_seen = 0;
    closure(m, new_frame(m, node, counter, parent, depth), out);
}

uint64_t gm__key(const struct gstate *s, uint64_t seed)
{
    uint64_t h[GRAMMAR_MAX_STACKS + 1];
    int n = s->n;
    memcpy(h, s->h, (size_t)n * sizeof(*h));
    for (int i = 1; i < n; i++) /* insertion sort: n is small */
        for (int j = i; j > 0 && h[j - 1] > h[j]; j--) {
            uint64_t t = h[j];
            h[j] = h[j - 1];
            h[j - 1] = t;
        }
    h[n] = s->end;
    return XXH3_64bits_withSeed(h, (size_t)(n + 1) * sizeof(*h), seed);
}

/* --- the public matcher --- */

struct grammar_matcher *gm_new(const grammar *g)
{
    struct grammar_matcher *m = xcalloc(1, sizeof(*m));
    m->g = g;
    gm_reset(m);
    return m;
}

void gm_free(struct grammar_matcher *m)
{
    if (!m) return;
    free(m->fr);
    free(m->work);
    free(m->wst);
    free(m->wtop);
    free(m);
}

void gm_reset(struct grammar_matcher *m)
{
    m->n_fr = 0;
    m->terminated = false;
    m->cur.n = 0;
    m->cur.end = false;
    m->gen++;
    m->n_seen = 0;
    closure(m, new_frame(m, m->g->rules[m->g->root].start, 0, -1, 0), &m->cur);
    m->live_fr = m->n_fr;
}

struct grammar_matcher *gm_clone(const struct grammar_matcher *m)
{
    struct grammar_matcher *c = xcalloc(1, sizeof(*c));
    c->g = m->g;
    c->cap_fr = m->n_fr > 0 ? m->n_fr : 1;
    c->fr = xmalloc((size_t)c->cap_fr * sizeof(*c->fr));
    memcpy(c->fr, m->fr, (size_t)m->n_fr * sizeof(*c->fr));
    c->n_fr = m->n_fr;
    c->live_fr = m->live_fr;
    c->cur = m->cur;
    c->terminated = m->terminated;
    return c;
}

/* Copies the frames the current stacks use to the front of the arena
 * (parents come before children, so one ascending pass keeps order). */
static void compact(struct grammar_matcher *m)
{
    int32_t *map = xmalloc((size_t)m->n_fr * sizeof(*map));
    for (int i = 0; i < m->n_fr; i++) map[i] = -1;
    for (int i = 0; i < m->cur.n; i++)
        for (int32_t f = m->cur.top[i]; f >= 0 && map[f] < 0; f = m->fr[f].parent) map[f] = 0;
    int k = 0;
    for (int i = 0; i < m->n_fr; i++) {
        if (map[i] < 0) continue;
        struct gframe fr = m->fr[i];
        if (fr.parent >= 0) fr.parent = map[fr.parent];
        map[i] = k;
        m->fr[k++] = fr;
    }
    for (int i = 0; i < m->cur.n; i++) m->cur.top[i] = map[m->cur.top[i]];
    m->n_fr = m->live_fr = k;
    free(map);
}

/* The bytes stepped from in; false when nothing survives. */
static bool run_bytes(struct grammar_matcher *m, const struct gstate *in, const uint8_t *b, size_t n, struct gstate *out)
{
    struct gstate st[2];
    for (size_t i = 0; i < n; i++) {
        if (!gm__step(m, in, b[i], &st[i & 1])) return false;
        in = &st[i & 1];
    }
    *out = *in;
    return true;
}

/* After a step that dropped stacks at the bounds: the stacks one by one,
 * as gm_fill_mask sees them, so that a token is accepted exactly when its
 * mask bit says so (the union of the survivors, to the bound). */
static bool run_stack_by_stack(struct grammar_matcher *m, const uint8_t *b, size_t n, struct gstate *out)
{
    out->n = 0;
    out->end = false;
    for (int i = 0; i < m->cur.n; i++) {
        struct gstate one = {.n = 1, .end = false}, r;
        one.top[0] = m->cur.top[i];
        one.h[0] = m->cur.h[i];
        if (!run_bytes(m, &one, b, n, &r)) continue;
        out->end |= r.end;
        for (int k = 0; k < r.n && out->n < GRAMMAR_MAX_STACKS; k++) {
            bool dup = false;
            for (int j = 0; j < out->n && !dup; j++) dup = out->h[j] == r.h[k];
            if (!dup) out->top[out->n] = r.top[k], out->h[out->n++] = r.h[k];
        }
    }
    return out->n > 0 || out->end;
}

bool gm_accept_bytes(struct grammar_matcher *m, const uint8_t *b, size_t n)
{
    if (m->terminated) return false;
    if (!n) return true;
    int32_t top0 = m->n_fr;
    struct gstate out;
    m->dropped = false;
    bool ok = run_bytes(m, &m->cur, b, n, &out);
    if (m->dropped) ok = run_stack_by_stack(m, b, n, &out);
    if (!ok) {
        m->n_fr = top0;
        return false;
    }
    m->cur = out;
    if (m->n_fr > 4096 && m->n_fr > 4 * m->live_fr) compact(m);
    return true;
}

bool gm_can_end(const struct grammar_matcher *m) { return !m->terminated && m->cur.end; }

bool gm_must_end(const struct grammar_matcher *m)
{
    if (!gm_can_end(m)) return false;
    const grammar *g = m->g;
    for (int i = 0; i < m->cur.n; i++) {
        const struct gframe *fr = &m->fr[m->cur.top[i]];
        const struct gnode *nd = &g->nodes[fr->node];
        if (nd->kind == NODE_INT) {
            for (int b = '0'; b <= '9'; b++) {
                uint64_t c;
                if (int_step(&g->ints[nd->int_lo_idx], fr->counter, (uint8_t)b, &c)) return false;
            }
            continue;
        }
        for (int32_t k = nd->bytes0; k < nd->bytes1; k++) {
            uint64_t c = fr->counter;
            if (cop_ok(&g->edges[k], &c)) return false;
        }
    }
    return true;
}

bool gm_terminated(const struct grammar_matcher *m) { return m->terminated; }

/* gm_accept_token is in grammar_mask.c, next to the vocabulary. */
void gm__terminate(struct grammar_matcher *m) { m->terminated = true; }
