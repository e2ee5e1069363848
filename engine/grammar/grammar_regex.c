/* grammar_regex.c: the regex subset -> automaton paths over UTF-8 bytes.
 *
 * The subset a DFA handles: literals (UTF-8), escapes (\d \w \s and their
 * negations, \. and other escaped punctuation, \n \t \r \f \v, \xHH,
 * \uXXXX), classes [a-z] [^...], '.', groups (...) and (?:...),
 * alternation |, quantifiers ? * + {m} {m,} {m,n} (m, n <= 1000; a lazy '?'
 * after one changes nothing here), and ^ / $ only at the ends. Classes are
 * sets of code points; the automaton spells each as valid UTF-8.
 *
 * Python's re (which checks JSON Schema patterns in jsonschema) reads \d \w
 * \s as Unicode classes: ours are their ASCII parts, and \D \W \S (and a
 * negated class holding \d \w \s) only ASCII, so that whatever matches here
 * matches there too. */
#include <stdlib.h>
#include <string.h>

#include "../../base/err.h"
#include "grammar_impl.h"

#define RE_MAX_DEPTH 64
#define RE_MAX_COUNT 1000

enum { R_EMPTY, R_SET, R_CAT, R_ALT, R_REP };


struct rnode {
    int type;
    int a, b;         /* CAT, ALT: children; REP: a */
    int min, max;     /* REP; max -1: unbounded */
    int set0, nset;   /* SET: ranges */
};

struct rparse {
    grammar *g;
    const char *s;
    size_t i, n;
    const char *where;
    bool json;        /* inside a JSON string */
    struct rnode *nodes;
    int n_nodes, cap_nodes;
    struct gr_range *rs;
    int n_rs, cap_rs;
    bool failed;
};

static int rfail(struct rparse *p, const char *what)
{
    if (!p->failed) gb_fail(p->g, "%s at offset %zu of %s", what, p->i, p->where);
    p->failed = true;
    return -1;
}

static int rnew(struct rparse *p, int type)
{
    if (p->n_nodes == p->cap_nodes) {
        p->cap_nodes = p->cap_nodes ? 2 * p->cap_nodes : 64;
        p->nodes = xrealloc(p->nodes, (size_t)p->cap_nodes * sizeof(*p->nodes));
    }
    p->nodes[p->n_nodes] = (struct rnode){.type = type, .a = -1, .b = -1};
    return p->n_nodes++;
}

/* --- code point sets: a run of ranges at the end of p->rs --- */

static void rs_push(struct rparse *p, uint32_t lo, uint32_t hi)
{
    if (p->n_rs == p->cap_rs) {
        p->cap_rs = p->cap_rs ? 2 * p->cap_rs : 64;
        p->rs = xrealloc(p->rs, (size_t)p->cap_rs * sizeof(*p->rs));
    }
    p->rs[p->n_rs++] = (struct gr_range){lo, hi};
}

static int rng_cmp(const void *a, const void *b)
{
    const struct gr_range *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Sorts and merges the ranges from set0 on; returns their count. */
static int rs_normalize(struct rparse *p, int set0)
{
    int n = p->n_rs - set0;
    struct gr_range *r = p->rs + set0;
    qsort(r, (size_t)n, sizeof(*r), rng_cmp);
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (k && r[i].lo <= r[k - 1].hi + 1) {
            if (r[i].hi > r[k - 1].hi) r[k - 1].hi = r[i].hi;
        } else
            r[k++] = r[i];
    }
    p->n_rs = set0 + k;
    return k;
}

/* Complement within [0, top] of the normalized ranges from set0. */
static int rs_negate(struct rparse *p, int set0, uint32_t top)
{
    int n = p->n_rs - set0;
    struct gr_range *tmp = xmalloc(((size_t)n + 1) * sizeof(*tmp));
    memcpy(tmp, p->rs + set0, (size_t)n * sizeof(*tmp));
    p->n_rs = set0;
    uint32_t next = 0;
    for (int i = 0; i < n && next <= top; i++) {
        if (tmp[i].lo > next) rs_push(p, next, tmp[i].lo - 1 < top ? tmp[i].lo - 1 : top);
        next = tmp[i].hi + 1;
    }
    if (next <= top) rs_push(p, next, top);
    free(tmp);
    return p->n_rs - set0;
}

static int set_node(struct rparse *p, int set0)
{
    int k = rs_normalize(p, set0);
    int x = rnew(p, R_SET);
    p->nodes[x].set0 = set0;
    p->nodes[x].nset = k;
    return x;
}

/* Pushes the ranges of \d \w \s (upper case: their ASCII complement). */
static bool class_escape(struct rparse *p, char c)
{
    int set0 = p->n_rs;
    switch (c | 0x20) {
    case 'd': rs_push(p, '0', '9'); break;
    case 'w': rs_push(p, '0', '9'); rs_push(p, 'A', 'Z'); rs_push(p, 'a', 'z'); rs_push(p, '_', '_'); break;
    case 's': rs_push(p, '\t', '\r'); rs_push(p, ' ', ' '); break;
    default: return false;
    }
    if (c >= 'A' && c <= 'Z') {
        rs_normalize(p, set0);
        rs_negate(p, set0, 0x7F);
    }
    return true;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') return (c | 0x20) - 'a' + 10;
    return -1;
}

/* Decodes one UTF-8 code point at p->i; -1 when invalid. */
static int64_t next_cp(struct rparse *p)
{
    const uint8_t *u = (const uint8_t *)p->s + p->i;
    size_t left = p->n - p->i;
    uint32_t c = u[0];
    int k = c < 0x80 ? 0 : c >= 0xC2 && c <= 0xDF ? 1 : c >= 0xE0 && c <= 0xEF ? 2 : c >= 0xF0 && c <= 0xF4 ? 3 : -1;
    if (k < 0 || (size_t)k >= left) return -1;
    uint32_t cp = k == 0 ? c : c & (0x3F >> k);
    for (int j = 1; j <= k; j++) {
        if ((u[j] & 0xC0) != 0x80) return -1;
        cp = cp << 6 | (u[j] & 0x3F);
    }
    if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > CP_MAX)) || (cp >= 0xD800 && cp <= 0xDFFF)) return -1;
    p->i += (size_t)k + 1;
    return cp;
}

/* After a backslash: a single code point escape (-1: a class escape was
 * pushed; -2: error). */
static int64_t escape_cp(struct rparse *p, bool *shorthand)
{
    if (p->i >= p->n) return rfail(p, "regex ends with a backslash"), -2;
    char c = p->s[p->i++];
    if (class_escape(p, c)) {
        *shorthand = true;
        return -1;
    }
    switch (c) {
    case 'n': return '\n';
    case 't': return '\t';
    case 'r': return '\r';
    case 'f': return '\f';
    case 'v': return '\v';
    case 'x': case 'u': {
        int digits = c == 'x' ? 2 : 4;
        if (p->i + (size_t)digits > p->n) return rfail(p, "bad \\x or \\u escape in regex"), -2;
        int64_t v = 0;
        for (int j = 0; j < digits; j++) {
            int h = hexval(p->s[p->i + (size_t)j]);
            if (h < 0) return rfail(p, "bad \\x or \\u escape in regex"), -2;
            v = v * 16 + h;
        }
        p->i += (size_t)digits;
        if (v >= 0xD800 && v <= 0xDFFF) return rfail(p, "surrogate escape in regex"), -2;
        return v;
    }
    default:
        if ((c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) || (c >= 0x7B && c <= 0x7E))
            return (uint8_t)c;
        p->i--;
        return rfail(p, "unsupported regex escape"), -2;
    }
}

static int parse_class(struct rparse *p)
{
    /* p->i is past '[' */
    bool neg = false, shorthand = false;
    if (p->i < p->n && p->s[p->i] == '^') neg = true, p->i++;
    int set0 = p->n_rs;
    bool first = true;
    for (;;) {
        if (p->i >= p->n) return rfail(p, "unterminated [ in regex");
        if (p->s[p->i] == ']' && !first) {
            p->i++;
            break;
        }
        first = false;
        int64_t lo;
        if (p->s[p->i] == '\\') {
            p->i++;
            lo = escape_cp(p, &shorthand);
            if (lo == -2) return -1;
            if (lo == -1) continue;
        } else if ((lo = next_cp(p)) < 0)
            return rfail(p, "invalid UTF-8 in regex");
        int64_t hi = lo;
        if (p->i + 1 < p->n && p->s[p->i] == '-' && p->s[p->i + 1] != ']') {
            p->i++;
            if (p->s[p->i] == '\\') {
                p->i++;
                bool sh = false;
                hi = escape_cp(p, &sh);
                if (hi < 0) return hi == -1 ? rfail(p, "class escape as a range end in regex") : -1;
            } else if ((hi = next_cp(p)) < 0)
                return rfail(p, "invalid UTF-8 in regex");
            if (hi < lo) return rfail(p, "bad range in regex class");
        }
        rs_push(p, (uint32_t)lo, (uint32_t)hi);
    }
    if (neg) {
        rs_normalize(p, set0);
        rs_negate(p, set0, shorthand ? 0x7F : CP_MAX);
    }
    return set_node(p, set0);
}

static int parse_alt(struct rparse *p, int depth);

static int parse_atom(struct rparse *p, int depth)
{
    char c = p->s[p->i];
    int set0 = p->n_rs;
    switch (c) {
    case '(': {
        p->i++;
        if (p->i + 1 < p->n && p->s[p->i] == '?') {
            if (p->s[p->i + 1] != ':') return rfail(p, "unsupported regex group (only (...) and (?:...))");
            p->i += 2;
        }
        int x = parse_alt(p, depth + 1);
        if (x < 0) return -1;
        if (p->i >= p->n || p->s[p->i] != ')') return rfail(p, "missing ) in regex");
        p->i++;
        return x;
    }
    case '[':
        p->i++;
        return parse_class(p);
    case '.':
        p->i++;
        rs_push(p, 0, '\n' - 1);
        rs_push(p, '\n' + 1, CP_MAX);
        return set_node(p, set0);
    case '\\': {
        p->i++;
        bool sh = false;
        int64_t v = escape_cp(p, &sh);
        if (v == -2) return -1;
        if (v >= 0) rs_push(p, (uint32_t)v, (uint32_t)v);
        return set_node(p, set0);
    }
    case '^': case '$':
        return rfail(p, "unsupported regex anchor (^ and $ only at the ends)");
    case '*': case '+': case '?':
        return rfail(p, "regex quantifier with nothing to repeat");
    default: {
        int64_t v = next_cp(p);
        if (v < 0) return rfail(p, "invalid UTF-8 in regex");
        rs_push(p, (uint32_t)v, (uint32_t)v);
        return set_node(p, set0);
    }
    }
}

/* Digits at p->i (all of them; the value saturates past RE_MAX_COUNT). */
static bool read_int(struct rparse *p, int *out)
{
    size_t i0 = p->i;
    long v = 0;
    while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') {
        v = v * 10 + (p->s[p->i++] - '0');
        if (v > RE_MAX_COUNT) v = RE_MAX_COUNT + 1;
    }
    *out = (int)v;
    return p->i > i0;
}

/* {m}, {m,}, {m,n}, and Python's {,n} and {,} at p->i; false (p->i unchanged)
 * when it is none of them (then '{' is a literal, as in Python). */
static bool parse_braces(struct rparse *p, int *mn, int *mx)
{
    size_t i0 = p->i++;
    bool lo = read_int(p, mn);
    if (!lo) *mn = 0;
    *mx = *mn;
    if (p->i < p->n && p->s[p->i] == ',') {
        p->i++;
        if (!read_int(p, mx)) *mx = -1; /* {m,} and Python's {,} */
    } else if (!lo)
        goto no;
    if (p->i < p->n && p->s[p->i] == '}') {
        p->i++;
        return true;
    }
no:
    p->i = i0;
    return false;
}

static int parse_concat(struct rparse *p, int depth)
{
    if (depth > RE_MAX_DEPTH) return rfail(p, "regex nested too deep");
    int acc = rnew(p, R_EMPTY);
    while (p->i < p->n && p->s[p->i] != '|' && p->s[p->i] != ')') {
        int x = parse_atom(p, depth);
        if (x < 0) return -1;
        for (;;) {
            if (p->i >= p->n) break;
            char c = p->s[p->i];
            int mn, mx;
            if (c == '*') mn = 0, mx = -1, p->i++;
            else if (c == '+') mn = 1, mx = -1, p->i++;
            else if (c == '?') mn = 0, mx = 1, p->i++;
            else if (c == '{' && parse_braces(p, &mn, &mx)) {
                if (mn > RE_MAX_COUNT || mx > RE_MAX_COUNT) return rfail(p, "regex repetition count over 1000");
                if (mx >= 0 && mx < mn) return rfail(p, "regex repetition {m,n} with n < m");
            } else
                break;
            if (p->i < p->n && p->s[p->i] == '?') p->i++; /* lazy: same language */
            if (p->nodes[x].type == R_REP) return rfail(p, "multiple repeat in regex");
            int r = rnew(p, R_REP);
            p->nodes[r].a = x;
            p->nodes[r].min = mn;
            p->nodes[r].max = mx;
            x = r;
        }
        int c = rnew(p, R_CAT);
        p->nodes[c].a = acc;
        p->nodes[c].b = x;
        acc = c;
    }
    return acc;
}

static int parse_alt(struct rparse *p, int depth)
{
    int x = parse_concat(p, depth);
    while (x >= 0 && p->i < p->n && p->s[p->i] == '|') {
        p->i++;
        int y = parse_concat(p, depth);
        if (y < 0) return -1;
        int a = rnew(p, R_ALT);
        p->nodes[a].a = x;
        p->nodes[a].b = y;
        x = a;
    }
    return x;
}

/* --- emission (code point sets: grammar_utf8.c) --- */

static int emit(struct rparse *p, int x, int from, int depth)
{
    grammar *g = p->g;
    if (g->failed) return from;
    const struct rnode *r = &p->nodes[x];
    switch (r->type) {
    case R_EMPTY:
        return from;
    case R_SET: {
        int to = gb_node(g);
        gr_emit_set(g, from, to, p->rs + r->set0, r->nset, p->json);
        return to;
    }
    case R_CAT:
    case R_ALT: {
        /* a left spine of one kind (a long literal, many alternatives) as
         * a loop: recursion stays bounded by the group nesting */
        int n = 0, y = x;
        while (p->nodes[y].type == r->type) n++, y = p->nodes[y].a;
        int *parts = xmalloc(((size_t)n + 1) * sizeof(int));
        y = x;
        for (int k = n; k > 0; k--) parts[k] = p->nodes[y].b, y = p->nodes[y].a;
        parts[0] = y;
        int to = from;
        if (r->type == R_CAT)
            for (int k = 0; k <= n && !g->failed; k++) to = emit(p, parts[k], to, depth + 1);
        else {
            to = gb_node(g);
            for (int k = 0; k <= n && !g->failed; k++) {
                int st = gb_node(g);
                gb_eps(g, from, st, COP_NONE, 0);
                gb_eps(g, emit(p, parts[k], st, depth + 1), to, COP_NONE, 0);
            }
        }
        free(parts);
        return to;
    }
    case R_REP: {
        int cur = from;
        for (int i = 0; i < r->min && !g->failed; i++) cur = emit(p, r->a, cur, depth + 1);
        if (r->max < 0) {
            int loop = gb_node(g);
            gb_eps(g, cur, loop, COP_NONE, 0);
            gb_eps(g, emit(p, r->a, loop, depth + 1), loop, COP_NONE, 0);
            return loop;
        }
        int end = gb_node(g);
        gb_eps(g, cur, end, COP_NONE, 0);
        for (int i = r->min; i < r->max && !g->failed; i++) {
            cur = emit(p, r->a, cur, depth + 1);
            gb_eps(g, cur, end, COP_NONE, 0);
        }
        return end;
    }
    }
    return from;
}

/* Any code point, any number of times, from from: the unanchored ends of
 * a JSON Schema pattern. */
static int any_run(grammar *g, int from, bool json)
{
    int loop = gb_node(g);
    gb_eps(g, from, loop, COP_NONE, 0);
    struct gr_range all = {0, CP_MAX};
    gr_emit_set(g, loop, loop, &all, 1, json);
    return loop;
}

int gr_regex(grammar *g, const char *re, int from, bool json, bool search, const char *where)
{
    size_t n = strlen(re);
    bool a0 = n && re[0] == '^', a1 = false;
    if (n && re[n - 1] == '$') {
        size_t bs = 0;
        while (bs + 1 < n && re[n - 2 - bs] == '\\') bs++;
        a1 = bs % 2 == 0 && !(a0 && n == 1);
    }
    struct rparse p = {.g = g, .s = re + a0, .n = n - a0 - a1, .where = where, .json = json};
    int x = parse_alt(&p, 0);
    if (x >= 0 && p.i < p.n) x = rfail(&p, "unbalanced ) in regex");
    int end = -1;
    if (x >= 0) {
        int cur = search && !a0 ? any_run(g, from, json) : from;
        cur = emit(&p, x, cur, 0);
        end = search && !a1 ? any_run(g, cur, json) : cur;
    }
    free(p.nodes);
    free(p.rs);
    return g->failed ? -1 : end;
}
