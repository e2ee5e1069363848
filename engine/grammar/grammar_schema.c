/* grammar_schema.c: JSON Schema -> rules.
 *
 * Keywords: type (a name or a list), properties, required,
 * additionalProperties (false, true, a schema; when absent: false if
 * properties are listed, else true), items,
 * prefixItems, enum, const, anyOf, oneOf (read as anyOf), allOf with one
 * schema, $ref to "#..." (JSON pointers into the document: $defs,
 * definitions, recursion), minItems, maxItems, minLength, maxLength (code
 * points), pattern (grammar_regex.c's subset, searched as JSON Schema does:
 * unanchored ends match anything), minimum, maximum, exclusiveMinimum,
 * exclusiveMaximum (integers only), format (date-time, date, time, uuid,
 * email). Annotations are ignored: title, description, default, examples,
 * $schema, $id, $comment, deprecated, readOnly, writeOnly, discriminator.
 * Anything else is an error naming it and where it is.
 *
 * Each schema object becomes one rule (memoized by its JSON node, so that a
 * $ref cycle is a recursive rule); subschemas go through a worklist, so that
 * compiling recurses nowhere (nesting is bounded by GS_MAX_NESTING).
 * Limits, not yet lifted: pattern or format together with minLength /
 * maxLength is refused; enum / const take only type next to them. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../base/err.h"
#include "../../base/strbuf.h"
#include "grammar_impl.h"


struct pending {
    json_t *s;
    int rule;
    int depth;
    char *path;
};

struct sctx {
    grammar *g;
    json_t *root;
    struct pending *work; /* doubles as the memo: every schema queued once */
    int n_work, cap_work, next;
};

enum { T_NULL = 1, T_BOOL = 2, T_INT = 4, T_NUM = 8, T_STR = 16, T_ARR = 32, T_OBJ = 64, T_ALL = 127 };

static const char *const ANNOTATIONS[] = {"title", "description", "default", "examples", "$schema", "$id",
                                          "$comment", "deprecated", "readOnly", "writeOnly", "discriminator",
                                          "$defs", "definitions", NULL};
static const char *const KEYWORDS[] = {"type", "properties", "required", "additionalProperties", "items", "prefixItems",
                                       "enum", "const", "anyOf", "oneOf", "allOf", "$ref", "minItems", "maxItems",
                                       "minLength", "maxLength", "pattern", "minimum", "maximum", "exclusiveMinimum",
                                       "exclusiveMaximum", "format", NULL};

static bool in_list(const char *const *l, const char *k)
{
    for (; *l; l++)
        if (!strcmp(*l, k)) return true;
    return false;
}


/* The rule of schema s (queued, compiled later). */
static int sub(struct sctx *c, json_t *s, const char *path, const char *k1, const char *k2, int depth)
{
    for (int i = 0; i < c->n_work; i++)
        if (c->work[i].s == s) return c->work[i].rule;
    if (depth > GS_MAX_NESTING) {
        gb_fail(c->g, "JSON Schema nested deeper than %d at %s", GS_MAX_NESTING, gs_where(path));
        return 0;
    }
    if (c->n_work == c->cap_work) {
        c->cap_work = c->cap_work ? 2 * c->cap_work : 32;
        c->work = xrealloc(c->work, (size_t)c->cap_work * sizeof(*c->work));
    }
    struct strbuf p = {0};
    strbuf_printf(&p, "%s%s%s%s%s", path, k1 ? "/" : "", k1 ? k1 : "", k2 ? "/" : "", k2 ? k2 : "");
    int r = gb_rule(c->g);
    c->work[c->n_work++] = (struct pending){.s = s, .rule = r, .depth = depth, .path = strbuf_take(&p)};
    return r;
}

/* A rule's start calls rule callee and ends after it. */
static void wrap(grammar *g, int r, int callee)
{
    int e = gb_node(g);
    gb_call(g, g->rules[r].start, callee, e, COP_NONE, 0);
    gb_end(g, e);
}

/* --- schemas --- */

static int type_bit(const char *t)
{
    static const char *const names[] = {"null", "boolean", "integer", "number", "string", "array", "object"};
    for (int i = 0; i < 7; i++)
        if (!strcmp(t, names[i])) return 1 << i;
    return 0;
}

static int value_types(json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_NULL: return T_NULL;
    case JSON_TRUE: case JSON_FALSE: return T_BOOL;
    case JSON_INTEGER: return T_INT | T_NUM;
    case JSON_REAL: return T_NUM | (json_real_value(v) == floor(json_real_value(v)) ? T_INT : 0);
    case JSON_STRING: return T_STR;
    case JSON_ARRAY: return T_ARR;
    case JSON_OBJECT: return T_OBJ;
    }
    return 0;
}

static json_t *resolve_ref(struct sctx *c, const char *ref, const char *path)
{
    if (ref[0] != '#') return gs_fail_at(c->g, path, "unsupported $ref (only local ones)", ref), NULL;
    json_t *cur = c->root;
    const char *p = ref + 1;
    while (*p == '/') {
        p++;
        char tok[256];
        size_t k = 0;
        while (*p && *p != '/' && k + 1 < sizeof(tok)) {
            if (p[0] == '~' && p[1] == '0') tok[k++] = '~', p += 2;
            else if (p[0] == '~' && p[1] == '1') tok[k++] = '/', p += 2;
            else tok[k++] = *p++;
        }
        tok[k] = '\0';
        if (json_is_object(cur)) cur = json_object_get(cur, tok);
        else if (json_is_array(cur)) cur = json_array_get(cur, (size_t)strtoul(tok, NULL, 10));
        else cur = NULL;
        if (!cur) break;
    }
    if (!cur || *p) return gs_fail_at(c->g, path, "unresolvable $ref", ref), NULL;
    return cur;
}

/* Literal alternatives: each enum value (of the allowed types) as compact JSON. */
static void enum_body(struct sctx *c, json_t *vals, int types, int r)
{
    grammar *g = c->g;
    int end = gb_node(g);
    gb_end(g, end);
    struct gb_trie *t = gb_trie_new(g, g->rules[r].start);
    size_t i;
    json_t *v;
    json_array_foreach(vals, i, v) {
        if (!(value_types(v) & types)) continue;
        char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!text) continue;
        gb_trie_add(t, text, strlen(text), end);
        free(text);
    }
    gb_trie_free(t);
}

static int array_schema(struct sctx *c, json_t *s, const char *path, int depth)
{
    grammar *g = c->g;
    json_t *items = json_object_get(s, "items"), *pre = json_object_get(s, "prefixItems");
    int64_t mn, mx;
    if (!gs_count_kw(c->g, s, "minItems", 0, &mn, path) || !gs_count_kw(c->g, s, "maxItems", -1, &mx, path)) return 0;
    if (json_is_array(items)) return gs_fail_at(c->g, path, "unsupported: an array as", "items"), 0;
    if (pre && !json_is_array(pre)) return gs_fail_at(c->g, path, "bad value of", "prefixItems"), 0;
    int64_t np = pre ? (int64_t)json_array_size(pre) : 0, lim = mx < 0 ? INT64_MAX : mx;
    int r = gb_rule(g);
    if (mx >= 0 && mn > mx) return r;
    int item = -1;
    if (!items || json_is_true(items)) item = gs_any_value(g);
    else if (!json_is_false(items)) item = sub(c, items, path, "items", NULL, depth + 1);
    if (item < 0 && mn > np) return r;
    int end = gb_node(g);
    gb_end(g, end);
    int a = gb_ws(g, gb_lit(g, g->rules[r].start, "[", 1));
    /* pos: after k items (and whitespace); the prefix part is unrolled, so
     * its bounds are static; the counter bounds the rest */
    int pos = a;
    for (int64_t k = 0; k < np && !g->failed; k++) {
        if (k >= mn) gb_byte(g, pos, ']', ']', end, COP_NONE, 0);
        if (mx >= 0 && k >= mx) break;
        int from = k ? gb_ws(g, gb_lit(g, pos, ",", 1)) : pos;
        char idx[24];
        snprintf(idx, sizeof(idx), "%lld", (long long)k);
        int after = gb_node(g);
        gb_call(g, from, sub(c, json_array_get(pre, (size_t)k), path, "prefixItems", idx, depth + 1), after,
                COP_INC_LT, lim);
        pos = gb_ws(g, after);
    }
    if (mx >= 0 && np > mx) return r;
    int loop = np ? pos : gb_node(g);
    gb_byte(g, pos, ']', ']', end, mn > np ? COP_GE : COP_NONE, mn);
    if (mn > np) gb_dep(g, g->rules[item].start);
    if (item >= 0) {
        int from = gb_node(g);
        if (np) {
            gb_eps(g, pos, from, COP_LT, lim);
            from = gb_ws(g, gb_lit(g, from, ",", 1));
        } else
            gb_eps(g, pos, from, COP_NONE, 0);
        int after = gb_node(g);
        gb_call(g, from, item, after, COP_INC_LT, lim);
        int w = gb_ws(g, after);
        if (!np) {
            gb_eps(g, w, loop, COP_NONE, 0);
            gb_byte(g, loop, ']', ']', end, mn > 0 ? COP_GE : COP_NONE, mn);
            int m = gb_node(g);
            gb_eps(g, loop, m, COP_LT, lim);
            gb_eps(g, gb_ws(g, gb_lit(g, m, ",", 1)), from, COP_NONE, 0);
        } else
            gb_eps(g, w, pos, COP_NONE, 0);
    }
    return r;
}

static int object_schema(struct sctx *c, json_t *s, const char *path, int depth)
{
    grammar *g = c->g;
    json_t *props = json_object_get(s, "properties"), *req = json_object_get(s, "required");
    json_t *add = json_object_get(s, "additionalProperties");
    json_t *empty = json_object();
    if (!props) props = empty;
    if (!json_is_object(props)) return json_decref(empty), gs_fail_at(c->g, path, "bad value of", "properties"), 0;
    if (req && !json_is_array(req)) return json_decref(empty), gs_fail_at(c->g, path, "bad value of", "required"), 0;
    size_t i;
    json_t *v;
    json_array_foreach(req, i, v) {
        if (!json_is_string(v)) return json_decref(empty), gs_fail_at(c->g, path, "bad value of", "required"), 0;
        if (!json_object_get(props, json_string_value(v)))
            return json_decref(empty), gs_fail_at(c->g, path, "unsupported: a required property missing from properties:",
                                               json_string_value(v)), 0;
    }
    /* absent additionalProperties: none where properties are listed (as
     * xgrammar's strict mode: what a schema names is what a model should
     * write, and free keys let a sampler wander), any where none are */
    int addr = -1;
    if (json_is_true(add) || (!add && !json_object_size(props))) addr = gs_any_value(g);
    else if (add && !json_is_false(add)) addr = sub(c, add, path, "additionalProperties", NULL, depth + 1);
    int r = gb_rule(g), end = gb_node(g);
    gb_end(g, end);
    /* st[x]: before the next listed property; x: some member came already */
    int st[2] = {gb_ws(g, gb_lit(g, g->rules[r].start, "{", 1)), gb_node(g)};
    const char *name;
    json_object_foreach(props, name, v) {
        bool required = false;
        json_array_foreach(req, i, v) required |= !strcmp(json_string_value(v), name);
        v = json_object_get(props, name);
        json_t *jk = json_string(name);
        char *key = json_dumps(jk, JSON_ENCODE_ANY);
        json_decref(jk);
        int val = sub(c, v, path, "properties", name, depth + 1);
        int nx[2] = {gb_node(g), gb_node(g)};
        for (int x = 0; x < 2; x++) {
            int cur = x ? gb_ws(g, gb_lit(g, st[x], ",", 1)) : st[x];
            cur = gb_ws(g, gb_lit(g, gb_ws(g, gb_lit(g, cur, key, strlen(key))), ":", 1));
            int after = gb_node(g);
            gb_call(g, cur, val, after, COP_NONE, 0);
            gb_eps(g, gb_ws(g, after), nx[1], COP_NONE, 0);
            if (!required) gb_eps(g, st[x], nx[x], COP_NONE, 0);
        }
        free(key);
        st[0] = nx[0], st[1] = nx[1];
        if (g->failed) break;
    }
    for (int x = 0; x < 2; x++) {
        gb_byte(g, st[x], '}', '}', end, COP_NONE, 0);
        if (addr < 0) continue;
        int cur = x ? gb_ws(g, gb_lit(g, st[x], ",", 1)) : st[x];
        cur = gb_ws(g, gb_lit(g, gb_ws(g, gs_free_key(g, cur, props)), ":", 1));
        int after = gb_node(g);
        gb_call(g, cur, addr, after, COP_NONE, 0);
        gb_eps(g, gb_ws(g, after), st[1], COP_NONE, 0);
    }
    json_decref(empty);
    return r;
}

/* The schema's keywords other than annotations, checked; the first one that
 * is not in keep (NULL: any) is returned through *other. */
static bool check_keywords(struct sctx *c, json_t *s, const char *path, const char *const *keep, const char **other)
{
    const char *k;
    json_t *v;
    *other = NULL;
    json_object_foreach(s, k, v) {
        if (in_list(ANNOTATIONS, k)) continue;
        if (!in_list(KEYWORDS, k)) return gb_fail(c->g, "unsupported JSON Schema keyword '%s' at %s", k, gs_where(path));
        if (keep && !in_list(keep, k) && !*other) *other = k;
    }
    return true;
}

static void alternatives(struct sctx *c, int r, json_t *alts, const char *path, const char *kw, int depth)
{
    int end = gb_node(c->g);
    gb_end(c->g, end);
    size_t i;
    json_t *v;
    json_array_foreach(alts, i, v) {
        char idx[24];
        snprintf(idx, sizeof(idx), "%zu", i);
        gb_call(c->g, c->g->rules[r].start, sub(c, v, path, kw, idx, depth + 1), end, COP_NONE, 0);
    }
}

static int types_of(struct sctx *c, json_t *s, const char *path)
{
    json_t *t = json_object_get(s, "type");
    int bits = 0;
    if (json_is_string(t)) {
        if (!(bits = type_bit(json_string_value(t)))) return gs_fail_at(c->g, path, "unknown type", json_string_value(t)), 0;
    } else if (json_is_array(t) && json_array_size(t)) {
        size_t i;
        json_t *v;
        json_array_foreach(t, i, v) {
            int b = json_is_string(v) ? type_bit(json_string_value(v)) : 0;
            if (!b) return gs_fail_at(c->g, path, "bad value of", "type"), 0;
            bits |= b;
        }
    } else if (t)
        return gs_fail_at(c->g, path, "bad value of", "type"), 0;
    else {
        static const char *const obj[] = {"properties", "required", "additionalProperties", NULL};
        static const char *const arr[] = {"items", "prefixItems", "minItems", "maxItems", NULL};
        static const char *const str[] = {"minLength", "maxLength", "pattern", "format", NULL};
        static const char *const num[] = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", NULL};
        const char *const *lists[] = {obj, arr, str, num};
        int tb[] = {T_OBJ, T_ARR, T_STR, T_INT};
        for (int l = 0; l < 4; l++)
            for (const char *const *k = lists[l]; *k; k++)
                if (json_object_get(s, *k)) bits |= tb[l];
        if (!bits) bits = T_ALL;
    }
    if (bits & T_NUM) {
        static const char *const num[] = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"};
        for (int i = 0; i < 4; i++)
            if (json_object_get(s, num[i]))
                return gb_fail(c->g, "unsupported JSON Schema keyword '%s' for type number at %s", num[i], gs_where(path)), 0;
    }
    return bits;
}

/* enum or const: the values as literals, of the types that "type" allows. */
static void enum_const(struct sctx *c, json_t *s, json_t *v, int r, const char *path)
{
    grammar *g = c->g;
    const char *other;
    static const char *const keep[] = {"enum", "const", "type", NULL};
    if (!check_keywords(c, s, path, keep, &other)) return;
    if (other) return (void)gb_fail(g, "unsupported: '%s' next to enum or const at %s", other, gs_where(path));
    if (json_object_get(s, "enum") && json_object_get(s, "const"))
        return (void)gb_fail(g, "unsupported: enum and const together at %s", gs_where(path));
    int types = json_object_get(s, "type") ? types_of(c, s, path) : T_ALL;
    if (types & T_NUM) types |= T_INT;
    if (json_object_get(s, "enum")) {
        if (!json_is_array(v)) return (void)gs_fail_at(g, path, "bad value of", "enum");
        return enum_body(c, v, types, r);
    }
    json_t *one = json_pack("[O]", v);
    enum_body(c, one, types, r);
    json_decref(one);
}

static void body(struct sctx *c, const struct pending *w)
{
    grammar *g = c->g;
    json_t *s = w->s;
    int r = w->rule, depth = w->depth;
    const char *path = w->path, *other;
    if (json_is_true(s)) return wrap(g, r, gs_any_value(g));
    if (json_is_false(s)) return; /* no end: no value */
    if (!json_is_object(s)) return (void)gb_fail(g, "schema at %s is not an object or a boolean", gs_where(path));
    if (!check_keywords(c, s, path, NULL, &other)) return;
    json_t *v;
    if ((v = json_object_get(s, "$ref"))) {
        static const char *const keep[] = {"$ref", NULL};
        if (!check_keywords(c, s, path, keep, &other)) return;
        if (other) return (void)gs_fail_at(c->g, path, "unsupported: a keyword next to $ref:", other);
        if (!json_is_string(v)) return (void)gs_fail_at(c->g, path, "bad value of", "$ref");
        json_t *t = resolve_ref(c, json_string_value(v), path);
        if (t) wrap(g, r, sub(c, t, json_string_value(v) + 1, NULL, NULL, depth + 1));
        return;
    }
    static const char *const combs[] = {"allOf", "anyOf", "oneOf"};
    for (int k = 0; k < 3; k++) {
        if (!(v = json_object_get(s, combs[k]))) continue;
        const char *keep[] = {combs[k], NULL};
        if (!check_keywords(c, s, path, keep, &other)) return;
        if (other) return (void)gb_fail(g, "unsupported: '%s' next to '%s' at %s", other, combs[k], gs_where(path));
        if (!json_is_array(v) || !json_array_size(v)) return (void)gs_fail_at(c->g, path, "bad value of", combs[k]);
        if (k == 0 && json_array_size(v) != 1)
            return (void)gb_fail(g, "unsupported: 'allOf' with more than one schema at %s", gs_where(path));
        return alternatives(c, r, v, path, combs[k], depth);
    }
    if ((v = json_object_get(s, "enum")) || (v = json_object_get(s, "const"))) return enum_const(c, s, v, r, path);
    int types = types_of(c, s, path);
    if (!types) return;
    if (types == T_ALL && !json_object_get(s, "type")) return wrap(g, r, gs_any_value(g));
    int end = gb_node(g), start = g->rules[r].start;
    gb_end(g, end);
    if (types & T_NULL) gb_eps(g, gb_lit(g, start, "null", 4), end, COP_NONE, 0);
    if (types & T_BOOL) {
        gb_eps(g, gb_lit(g, start, "true", 4), end, COP_NONE, 0);
        gb_eps(g, gb_lit(g, start, "false", 5), end, COP_NONE, 0);
    }
    if (types & T_NUM) gb_call(g, start, gs_regex_rule(g, GS_NUMBER_RE, false, "number"), end, COP_NONE, 0);
    else if (types & T_INT) gb_call(g, start, gs_integer(g, s, path), end, COP_NONE, 0);
    if (types & T_STR) gb_call(g, start, gs_string_schema(g, s, path), end, COP_NONE, 0);
    if (types & T_ARR) gb_call(g, start, array_schema(c, s, path, depth), end, COP_NONE, 0);
    if (types & T_OBJ) gb_call(g, start, object_schema(c, s, path, depth), end, COP_NONE, 0);
}

int gs_compile(grammar *g, const char *text)
{
    json_error_t je;
    json_t *root = json_loads(text, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
    if (!root) return gb_fail(g, "invalid JSON Schema: %s (line %d)", je.text, je.line), -1;
    struct sctx c = {.g = g, .root = root};
    int r = sub(&c, root, "", NULL, NULL, 0);
    while (c.next < c.n_work && !g->failed) {
        body(&c, &c.work[c.next]);
        c.next++;
    }
    for (int i = 0; i < c.n_work; i++) free(c.work[i].path);
    free(c.work);
    json_decref(root);
    return g->failed ? -1 : r;
}
