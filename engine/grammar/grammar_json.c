/* grammar_json.c: the rules of JSON values that do not depend on a schema's
 * details: strings (with code point bounds), any value, any object, and the
 * choice list (GRAMMAR_CHOICE). */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../../base/err.h"
#include "grammar_impl.h"

#define INT_BOUND 1000000000000000LL /* |bounds| of integers: 10^15 */

const char *gs_where(const char *path) { return path[0] ? path : "/"; }

/* A JSON string with [min, max] code points (max < 0: unbounded). */
static int string_rule(grammar *g, int64_t min, int64_t max)
{
    int r = gb_rule(g);
    if (max >= 0 && min > max) return r; /* no end: no value */
    int64_t lim = max < 0 ? INT64_MAX : max;
    /* a code point's first byte counts it, where a bound needs the count:
     * no counter otherwise, so that the string's nodes are interior for the
     * mask (grammar_mask.c) */
    int cnt = min > 0 || max >= 0 ? COP_INC_LT : COP_NONE;
    int s0 = g->rules[r].start, s = gb_node(g), end = gb_node(g);
    gb_end(g, end);
    gb_byte(g, s0, '"', '"', s, COP_NONE, 0);
    gb_byte(g, s, '"', '"', end, min > 0 ? COP_GE : COP_NONE, min);
    gb_byte(g, s, 0x20, 0x21, s, cnt, lim);
    gb_byte(g, s, 0x23, 0x5B, s, cnt, lim);
    gb_byte(g, s, 0x5D, 0x7F, s, cnt, lim);
    int c1 = gb_node(g), c2 = gb_node(g), c3 = gb_node(g);
    gb_byte(g, c1, 0x80, 0xBF, s, COP_NONE, 0);
    gb_byte(g, c2, 0x80, 0xBF, c1, COP_NONE, 0);
    gb_byte(g, c3, 0x80, 0xBF, c2, COP_NONE, 0);
    gb_byte(g, s, 0xC2, 0xDF, c1, cnt, lim);
    int e0 = gb_node(g), ed = gb_node(g), f0 = gb_node(g), f4 = gb_node(g);
    gb_byte(g, s, 0xE0, 0xE0, e0, cnt, lim);
    gb_byte(g, e0, 0xA0, 0xBF, c1, COP_NONE, 0);
    gb_byte(g, s, 0xE1, 0xEC, c2, cnt, lim);
    gb_byte(g, s, 0xED, 0xED, ed, cnt, lim);
    gb_byte(g, ed, 0x80, 0x9F, c1, COP_NONE, 0);
    gb_byte(g, s, 0xEE, 0xEF, c2, cnt, lim);
    gb_byte(g, s, 0xF0, 0xF0, f0, cnt, lim);
    gb_byte(g, f0, 0x90, 0xBF, c2, COP_NONE, 0);
    gb_byte(g, s, 0xF1, 0xF3, c3, cnt, lim);
    gb_byte(g, s, 0xF4, 0xF4, f4, cnt, lim);
    gb_byte(g, f4, 0x80, 0x8F, c2, COP_NONE, 0);
    /* escapes; \u of a surrogate (D800-DFFF) is left out */
    int esc = gb_node(g), u1 = gb_node(g), ud = gb_node(g), u2 = gb_node(g), u3 = gb_node(g), u4 = gb_node(g);
    gb_byte(g, s, '\\', '\\', esc, cnt, lim);
    static const char simple[] = "\"\\/bfnrt";
    for (const char *q = simple; *q; q++) gb_byte(g, esc, *q, *q, s, COP_NONE, 0);
    gb_byte(g, esc, 'u', 'u', u1, COP_NONE, 0);
    gb_byte(g, u1, '0', '9', u2, COP_NONE, 0);
    gb_byte(g, u1, 'a', 'c', u2, COP_NONE, 0);
    gb_byte(g, u1, 'A', 'C', u2, COP_NONE, 0);
    gb_byte(g, u1, 'e', 'f', u2, COP_NONE, 0);
    gb_byte(g, u1, 'E', 'F', u2, COP_NONE, 0);
    gb_byte(g, u1, 'd', 'd', ud, COP_NONE, 0);
    gb_byte(g, u1, 'D', 'D', ud, COP_NONE, 0);
    gb_byte(g, ud, '0', '7', u3, COP_NONE, 0);
    int hex[3] = {u2, u3, u4}, nxt[3] = {u3, u4, s};
    for (int i = 0; i < 3; i++) {
        gb_byte(g, hex[i], '0', '9', nxt[i], COP_NONE, 0);
        gb_byte(g, hex[i], 'a', 'f', nxt[i], COP_NONE, 0);
        gb_byte(g, hex[i], 'A', 'F', nxt[i], COP_NONE, 0);
    }
    return r;
}

int gs_string(grammar *g, int64_t min, int64_t max)
{
    if (min > 0 || max >= 0) return string_rule(g, min, max);
    if (g->str_rule < 0) g->str_rule = string_rule(g, 0, -1);
    return g->str_rule;
}

int gs_regex_rule(grammar *g, const char *re, bool json, const char *path)
{
    int r = gb_rule(g);
    int from = g->rules[r].start;
    if (json) from = gb_lit(g, from, "\"", 1);
    int e = gr_regex(g, re, from, json, json, path);
    if (e < 0) return r;
    if (json) e = gb_lit(g, e, "\"", 1);
    gb_end(g, e);
    return r;
}


/* Generic arrays and objects of any values. */
static int any_container(grammar *g, bool obj, int value)
{
    int r = gb_rule(g), str = obj ? gs_string(g, 0, -1) : -1;
    int a = gb_ws(g, gb_lit(g, g->rules[r].start, obj ? "{" : "[", 1));
    int end = gb_node(g);
    gb_end(g, end);
    gb_byte(g, a, obj ? '}' : ']', obj ? '}' : ']', end, COP_NONE, 0);
    int item = gb_node(g), after = gb_node(g);
    gb_eps(g, a, item, COP_NONE, 0);
    int v = item;
    if (obj) {
        int k = gb_node(g);
        gb_call(g, item, str, k, COP_NONE, 0);
        v = gb_ws(g, gb_lit(g, gb_ws(g, k), ":", 1));
    }
    int vend = gb_node(g);
    gb_call(g, v, value, vend, COP_NONE, 0);
    gb_eps(g, gb_ws(g, vend), after, COP_NONE, 0);
    gb_byte(g, after, obj ? '}' : ']', obj ? '}' : ']', end, COP_NONE, 0);
    gb_eps(g, gb_ws(g, gb_lit(g, after, ",", 1)), item, COP_NONE, 0);
    return r;
}

int gs_any_value(grammar *g)
{
    if (g->any_rule >= 0) return g->any_rule;
    int r = g->any_rule = gb_rule(g);
    int s = g->rules[r].start, end = gb_node(g);
    gb_end(g, end);
    int alts[4] = {any_container(g, true, r), any_container(g, false, r), gs_string(g, 0, -1),
                   gs_regex_rule(g, GS_NUMBER_RE, false, "number")};
    for (int i = 0; i < 4; i++) gb_call(g, s, alts[i], end, COP_NONE, 0);
    static const char *const lits[] = {"true", "false", "null"};
    for (int i = 0; i < 3; i++) gb_eps(g, gb_lit(g, s, lits[i], strlen(lits[i])), end, COP_NONE, 0);
    return r;
}

int gs_any_object(grammar *g) { return any_container(g, true, gs_any_value(g)); }

int gs_choice(grammar *g, const char *text)
{
    json_error_t je;
    json_t *a = json_loads(text, JSON_DECODE_ANY, &je);
    int r = -1;
    if (!json_is_array(a) || !json_array_size(a)) {
        gb_fail(g, "choice must be a non-empty JSON array of strings");
        goto done;
    }
    r = gb_rule(g);
    int end = gb_node(g);
    gb_end(g, end);
    struct gb_trie *t = gb_trie_new(g, g->rules[r].start);
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) {
        if (!json_is_string(v)) {
            gb_fail(g, "choice must be a non-empty JSON array of strings");
            break;
        }
        gb_trie_add(t, json_string_value(v), json_string_length(v), end);
    }
    gb_trie_free(t);
done:
    json_decref(a);
    return r;
}


/* --- the typed keywords of strings and integers, and free keys --- */

bool gs_fail_at(grammar *g, const char *path, const char *what, const char *key)
{
    return gb_fail(g, "%s '%s' at %s", what, key, gs_where(path));
}

/* A non-negative integer keyword (absent: dflt). */
bool gs_count_kw(grammar *g, json_t *s, const char *key, int64_t dflt, int64_t *out, const char *path)
{
    json_t *v = json_object_get(s, key);
    *out = dflt;
    if (!v) return true;
    double d = json_is_integer(v) ? (double)json_integer_value(v) : json_is_real(v) ? json_real_value(v) : -1;
    if (d < 0 || d != floor(d) || d > 1e15) return gs_fail_at(g, path, "bad value of", key);
    *out = (int64_t)d;
    return true;
}

static bool int_bound(grammar *g, json_t *s, const char *key, bool lower, bool excl, bool *has, int64_t *out,
                      const char *path)
{
    json_t *v = json_object_get(s, key);
    if (!v) return true;
    if (!json_is_number(v)) return gs_fail_at(g, path, "bad value of", key);
    double d = json_number_value(v);
    if (fabs(d) > (double)INT_BOUND) return gs_fail_at(g, path, "integer bound out of the supported range (|x| <= 1e15) in", key);
    int64_t b = lower ? (int64_t)ceil(d) : (int64_t)floor(d);
    if (excl && (double)b == d) b += lower ? 1 : -1;
    if (!*has || (lower ? b > *out : b < *out)) *out = b;
    *has = true;
    return true;
}

int gs_integer(grammar *g, json_t *s, const char *path)
{
    bool hl = false, hh = false;
    int64_t lo = 0, hi = 0;
    if (!int_bound(g, s, "minimum", true, false, &hl, &lo, path) ||
        !int_bound(g, s, "exclusiveMinimum", true, true, &hl, &lo, path) ||
        !int_bound(g, s, "maximum", false, false, &hh, &hi, path) ||
        !int_bound(g, s, "exclusiveMaximum", false, true, &hh, &hi, path))
        return 0;
    if (!hl && !hh) return gs_regex_rule(g, GS_INTEGER_RE, false, "integer");
    int r = gb_rule(g);
    if (hl && hh && lo > hi) return r; /* no end: no value */
    if (g->n_ints == g->cap_ints) {
        g->cap_ints = g->cap_ints ? 2 * g->cap_ints : 8;
        g->ints = xrealloc(g->ints, (size_t)g->cap_ints * sizeof(*g->ints));
    }
    g->ints[g->n_ints] = (struct gint){.has_lo = hl, .has_hi = hh, .lo = lo, .hi = hi};
    g->nodes[g->rules[r].start].kind = NODE_INT;
    g->nodes[g->rules[r].start].int_lo_idx = g->n_ints++;
    return r;
}

int gs_string_schema(grammar *g, json_t *s, const char *path)
{
    static const char *const fmts[][2] = {
        {"date", "^" "[1-9][0-9]{3}-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)" "$"},
        {"time", "^(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]{1,6})?(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$"},
        {"date-time", "^[1-9][0-9]{3}-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)"
                      "T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]{1,6})?(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$"},
        {"uuid", "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"},
        {"email", "^[a-zA-Z0-9_+-]+(?:\\.[a-zA-Z0-9_+-]+)*@[a-zA-Z0-9-]+(?:\\.[a-zA-Z0-9-]+)+$"},
    };
    json_t *pat = json_object_get(s, "pattern"), *fmt = json_object_get(s, "format");
    int64_t mn, mx;
    if (!gs_count_kw(g, s, "minLength", 0, &mn, path) || !gs_count_kw(g, s, "maxLength", -1, &mx, path)) return 0;
    bool lens = json_object_get(s, "minLength") || json_object_get(s, "maxLength");
    if ((pat || fmt) && lens)
        return gs_fail_at(g, path, "unsupported: minLength/maxLength next to", pat ? "pattern" : "format"), 0;
    if (pat && fmt) return gs_fail_at(g, path, "unsupported: pattern next to", "format"), 0;
    if (fmt) {
        if (!json_is_string(fmt)) return gs_fail_at(g, path, "bad value of", "format"), 0;
        for (size_t i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++)
            if (!strcmp(fmts[i][0], json_string_value(fmt))) return gs_regex_rule(g, fmts[i][1], true, "format");
        return gs_fail_at(g, path, "unsupported format", json_string_value(fmt)), 0;
    }
    if (pat) {
        if (!json_is_string(pat)) return gs_fail_at(g, path, "bad value of", "pattern"), 0;
        char w[300];
        snprintf(w, sizeof(w), "the pattern at %s", gs_where(path));
        return gs_regex_rule(g, json_string_value(pat), true, w);
    }
    return gs_string(g, lens ? mn : 0, lens ? mx : -1);
}

/* '"', a key of printable ASCII but '"' and '\\' that is none of the
 * property names, '"': a byte trie of the names, left for a free run at the
 * first byte off it. Returns the node after the closing quote. */
int gs_free_key(grammar *g, int from, json_t *props)
{
    int q = gb_node(g), fr = gb_node(g), done = gb_node(g);
    gb_byte(g, from, '"', '"', q, COP_NONE, 0);
    int cap = 64, n = 1;
    struct tn { int node, child, sib; uint8_t b; bool term; } *t = xmalloc((size_t)cap * sizeof(*t));
    t[0] = (struct tn){q, -1, -1, 0, false};
    const char *name;
    json_t *v;
    json_object_foreach(props, name, v) {
        int cur = 0;
        for (const uint8_t *p = (const uint8_t *)name; *p && !g->failed; p++) {
            int ch = t[cur].child;
            while (ch >= 0 && t[ch].b != *p) ch = t[ch].sib;
            if (ch < 0) {
                if (n == cap) t = xrealloc(t, (size_t)(cap *= 2) * sizeof(*t));
                t[n] = (struct tn){gb_node(g), -1, t[cur].child, *p, false};
                t[cur].child = ch = n++;
            }
            cur = ch;
        }
        t[cur].term = true;
    }
    for (int i = 0; i < n && !g->failed; i++) {
        int run_lo = -1, run_to = -1;
        for (int b = 0x20; b <= 0x7F; b++) {
            int to = -1;
            if (b < 0x7F && b != '"' && b != '\\') {
                to = fr;
                for (int ch = t[i].child; ch >= 0; ch = t[ch].sib)
                    if (t[ch].b == b) to = t[ch].node;
            }
            if (to != run_to || to == -1 || b == 0x7F) {
                if (run_to >= 0) gb_byte(g, t[i].node, run_lo, b - 1, run_to, COP_NONE, 0);
                run_lo = b, run_to = to;
            }
        }
        if (!t[i].term) gb_byte(g, t[i].node, '"', '"', done, COP_NONE, 0);
    }
    gb_byte(g, fr, 0x20, 0x21, fr, COP_NONE, 0);
    gb_byte(g, fr, 0x23, 0x5B, fr, COP_NONE, 0);
    gb_byte(g, fr, 0x5D, 0x7E, fr, COP_NONE, 0);
    gb_byte(g, fr, '"', '"', done, COP_NONE, 0);
    free(t);
    return done;
}

