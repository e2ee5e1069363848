/* jinja_value.c: the arena, and values with Python's semantics: truthiness,
 * equality (1 == 1.0 == True), ordering (TypeError between str and int),
 * len(), iteration, str() and repr() (None, True, 1.0, 1e+16, ['a', 'b'],
 * {'k': 1}, (1,)), and the conversion of the JSON context. Lists and dicts
 * keep insertion order; dict lookup is linear, as chat data is small. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "../../base/err.h"
#include "jinja_internal.h"

/* ---- arena ---- */

struct arena_chunk {
    struct arena_chunk *next;
    size_t size, used;
    max_align_t data[];
};

void *arena_alloc(struct arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    struct arena_chunk *c = a->head;
    if (!c || c->size - c->used < n) {
        size_t size = n > ((size_t)64 << 10) - sizeof(*c) ? n : ((size_t)64 << 10) - sizeof(*c);
        if (a->limit && a->used + size > a->limit) {
            if (!a->oom)
                CHECKF(0, "arena limit");
            if (a->err_cap)
                snprintf(a->err, a->err_cap, "memory limit reached (%zu MiB)", a->limit >> 20);
            longjmp(*a->oom, 1);
        }
        c = xmalloc(sizeof(*c) + size);
        c->size = size;
        c->used = 0;
        c->next = a->head;
        a->head = c;
        a->used += size;
    }
    void *p = (char *)c->data + c->used;
    c->used += n;
    return p;
}

char *arena_strndup(struct arena *a, const char *s, size_t n)
{
    char *d = arena_alloc(a, n + 1);
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

void arena_free(struct arena *a)
{
    for (struct arena_chunk *c = a->head, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    a->head = NULL;
    a->used = 0;
}

/* ---- construction ---- */

jv jv_none(void) { return (jv){.kind = JV_NONE}; }
jv jv_bool(bool b) { return (jv){.kind = JV_BOOL, .u.b = b}; }
jv jv_int(int64_t i) { return (jv){.kind = JV_INT, .u.i = i}; }
jv jv_float(double f) { return (jv){.kind = JV_FLOAT, .u.f = f}; }
jv jv_str(const char *s, size_t n) { return (jv){.kind = JV_STR, .n = n, .u.s = s}; }
jv jv_cstr(const char *s) { return jv_str(s, strlen(s)); }
jv jv_buf(struct jbuf *b) { return jv_str(b->s ? b->s : "", b->len); }

jv jv_strdup(struct jrender *r, const char *s, size_t n)
{
    return jv_str(arena_strndup(&r->arena, s, n), n);
}

jv jv_undef(uint8_t tag, uint8_t sub, const char *name, size_t n)
{
    return (jv){.kind = JV_UNDEF, .tag = tag, .sub = sub, .n = n, .u.s = name};
}

jv jv_list(struct jrender *r, size_t cap)
{
    struct jlist *l = arena_alloc(&r->arena, sizeof(*l));
    l->n = 0;
    l->cap = cap;
    l->v = cap ? arena_alloc(&r->arena, cap * sizeof(jv)) : NULL;
    return (jv){.kind = JV_LIST, .u.l = l};
}

void jv_push(struct jrender *r, jv list, jv x)
{
    struct jlist *l = list.u.l;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4;
        jv *v = arena_alloc(&r->arena, cap * sizeof(jv));
        if (l->n)
            memcpy(v, l->v, l->n * sizeof(jv));
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = x;
}

jv jv_dict(struct jrender *r, size_t cap)
{
    struct jdict *d = arena_alloc(&r->arena, sizeof(*d));
    d->n = 0;
    d->cap = cap;
    d->k = cap ? arena_alloc(&r->arena, 2 * cap * sizeof(jv)) : NULL;
    d->v = cap ? d->k + cap : NULL;
    return (jv){.kind = JV_DICT, .u.d = d};
}

jv *jv_dict_get(jv d, const char *key, size_t n)
{
    struct jdict *t = d.u.d;
    for (size_t i = 0; i < t->n; i++)
        if (t->k[i].kind == JV_STR && t->k[i].n == n && !memcmp(t->k[i].u.s, key, n))
            return &t->v[i];
    return NULL;
}

jv *jv_dict_find(jv d, jv key)
{
    if (key.kind == JV_STR)
        return jv_dict_get(d, key.u.s, key.n);
    struct jdict *t = d.u.d;
    for (size_t i = 0; i < t->n; i++)
        if (jv_equal(t->k[i], key))
            return &t->v[i];
    return NULL;
}

void jv_dict_set(struct jrender *r, jv d, jv k, jv v)
{
    jv *old = jv_dict_find(d, k);
    if (old) {
        *old = v;
        return;
    }
    struct jdict *t = d.u.d;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 4;
        jv *nk = arena_alloc(&r->arena, cap * sizeof(jv)), *nv = arena_alloc(&r->arena, cap * sizeof(jv));
        if (t->n) {
            memcpy(nk, t->k, t->n * sizeof(jv));
            memcpy(nv, t->v, t->n * sizeof(jv));
        }
        t->k = nk;
        t->v = nv;
        t->cap = cap;
    }
    t->k[t->n] = k;
    t->v[t->n++] = v;
}

/* The JSON context, strings borrowed from it (it outlives the render). */
jv jv_from_json(struct jrender *r, const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        jv d = jv_dict(r, json_object_size(j));
        for (void *it = json_object_iter((json_t *)j); it && d.u.d->n < d.u.d->cap;
             it = json_object_iter_next((json_t *)j, it)) { /* keys are unique: no lookup */
            d.u.d->k[d.u.d->n] = jv_str(json_object_iter_key(it), json_object_iter_key_len(it));
            d.u.d->v[d.u.d->n++] = jv_from_json(r, json_object_iter_value(it));
        }
        return d;
    }
    case JSON_ARRAY: {
        jv l = jv_list(r, json_array_size(j));
        for (size_t i = 0; i < l.u.l->cap; i++)
            l.u.l->v[l.u.l->n++] = jv_from_json(r, json_array_get(j, i));
        return l;
    }
    case JSON_STRING: return jv_str(json_string_value(j), json_string_length(j));
    case JSON_INTEGER: return jv_int(json_integer_value(j));
    case JSON_REAL: return jv_float(json_real_value(j));
    case JSON_TRUE: return jv_bool(true);
    case JSON_FALSE: return jv_bool(false);
    default: return jv_none();
    }
}

/* ---- semantics ---- */

bool jv_is_str(jv v)
{
    return v.kind == JV_STR;
}

static bool is_num(jv v)
{
    return v.kind == JV_BOOL || v.kind == JV_INT || v.kind == JV_FLOAT;
}

static double num_f(jv v)
{
    return v.kind == JV_FLOAT ? v.u.f : v.kind == JV_INT ? (double)v.u.i : (double)v.u.b;
}

static int64_t num_i(jv v)
{
    return v.kind == JV_INT ? v.u.i : (int64_t)v.u.b;
}

bool jv_truthy(jv v)
{
    switch (v.kind) {
    case JV_UNDEF:
    case JV_NONE: return false;
    case JV_BOOL: return v.u.b;
    case JV_INT: return v.u.i != 0;
    case JV_FLOAT: return v.u.f != 0;
    case JV_STR: return v.n != 0;
    case JV_LIST: return v.u.l->n != 0 || v.sub == SUB_GEN;
    case JV_TUPLE: return v.u.l->n != 0;
    case JV_DICT: return v.u.d->n != 0;
    default: return true;
    }
}

static bool equal(jv a, jv b, int depth)
{
    if (depth > JINJA_MAX_RECURSION)
        return false;
    if (is_num(a) && is_num(b)) {
        if (a.kind == JV_FLOAT || b.kind == JV_FLOAT)
            return num_f(a) == num_f(b);
        return num_i(a) == num_i(b);
    }
    if (a.kind != b.kind)
        return false;
    switch (a.kind) {
    case JV_UNDEF:
    case JV_NONE: return true;
    case JV_STR: return a.n == b.n && !memcmp(a.u.s, b.u.s, a.n);
    case JV_LIST:
    case JV_TUPLE:
        if (a.u.l->n != b.u.l->n)
            return false;
        for (size_t i = 0; i < a.u.l->n; i++)
            if (!equal(a.u.l->v[i], b.u.l->v[i], depth + 1))
                return false;
        return true;
    case JV_DICT:
        if (a.u.d->n != b.u.d->n)
            return false;
        for (size_t i = 0; i < a.u.d->n; i++) {
            jv *o = jv_dict_find(b, a.u.d->k[i]);
            if (!o || !equal(a.u.d->v[i], *o, depth + 1))
                return false;
        }
        return true;
    case JV_FUNC: return a.tag == b.tag;
    default: return a.u.d == b.u.d;
    }
}

bool jv_equal(jv a, jv b)
{
    return equal(a, b, 0);
}

const char *jv_type_name(jv v)
{
    static const char *names[] = {"Undefined", "NoneType", "bool", "int", "float", "str", "list", "tuple",
                                  "dict", "TemplateNamespace", "Macro", "function", "builtin_function_or_method",
                                  "LoopContext"};
    return v.kind == JV_LIST && v.sub == SUB_GEN ? "generator" : names[v.kind];
}

int jv_compare(struct jrender *r, jv a, jv b, const char *op)
{
    if (is_num(a) && is_num(b)) {
        if (a.kind == JV_FLOAT || b.kind == JV_FLOAT) {
            double x = num_f(a), y = num_f(b);
            return x < y ? -1 : x > y ? 1 : 0;
        }
        int64_t x = num_i(a), y = num_i(b);
        return x < y ? -1 : x > y ? 1 : 0;
    }
    if (a.kind == JV_STR && b.kind == JV_STR) {
        int c = memcmp(a.u.s, b.u.s, a.n < b.n ? a.n : b.n);
        return c ? c : a.n < b.n ? -1 : a.n > b.n ? 1 : 0;
    }
    if (a.kind == b.kind && (a.kind == JV_LIST || a.kind == JV_TUPLE)) {
        for (size_t i = 0; i < a.u.l->n && i < b.u.l->n; i++)
            if (!jv_equal(a.u.l->v[i], b.u.l->v[i])) {
                jinja__enter(r);
                int c = jv_compare(r, a.u.l->v[i], b.u.l->v[i], op);
                r->nest--;
                return c;
            }
        return a.u.l->n < b.u.l->n ? -1 : a.u.l->n > b.u.l->n ? 1 : 0;
    }
    if (a.kind == JV_UNDEF)
        jv_fail_undef(r, a);
    if (b.kind == JV_UNDEF)
        jv_fail_undef(r, b);
    jinja__fail(r, "'%s' not supported between instances of '%s' and '%s'", op, jv_type_name(a), jv_type_name(b));
}

void jv_fail_undef(struct jrender *r, jv u)
{
    /* jinja2's object_type_repr: "<type> object", module-qualified outside builtins */
    static const char *objs[] = {"Undefined", "None", "bool object", "int object", "float object", "str object",
                                 "list object", "tuple object", "dict object",
                                 "transformers.utils.chat_template_utils.TemplateNamespace object",
                                 "jinja2.runtime.Macro object", "function object",
                                 "builtin_function_or_method object", "jinja2.runtime.LoopContext object"};
    int n = (int)u.n;
    switch (u.tag) {
    case UND_NAME: jinja__fail(r, "'%.*s' is undefined", n, u.u.s);
    case UND_ATTR: jinja__fail(r, "'%s' has no attribute '%.*s'", objs[u.sub], n, u.u.s);
    case UND_ELEM: jinja__fail(r, "%s has no element %.*s", objs[u.sub], n, u.u.s);
    default: jinja__fail(r, "%.*s", n, u.u.s);
    }
}

size_t jv_len(struct jrender *r, jv v)
{
    switch (v.kind) {
    case JV_UNDEF: return 0;
    case JV_STR: jinja__charge(r, v.n); return u8_count(v.u.s, v.n);
    case JV_LIST:
        if (v.sub == SUB_GEN)
            break;
        return v.u.l->n;
    case JV_TUPLE: return v.u.l->n;
    case JV_DICT:
    case JV_NS: return v.u.d->n;
    default: break;
    }
    jinja__fail(r, "object of type '%s' has no len()", jv_type_name(v));
}

jv jv_iter_list(struct jrender *r, jv v)
{
    switch (v.kind) {
    case JV_UNDEF: return jv_list(r, 0);
    case JV_LIST:
    case JV_TUPLE: return v;
    case JV_DICT: {
        jv l = jv_list(r, v.u.d->n);
        for (size_t i = 0; i < v.u.d->n; i++)
            jv_push(r, l, v.u.d->k[i]);
        return l;
    }
    case JV_STR: {
        jv l = jv_list(r, v.n);
        for (size_t i = 0; i < v.n;) {
            uint32_t cp;
            size_t k = u8_decode(v.u.s + i, v.n - i, &cp);
            jv_push(r, l, jv_str(v.u.s + i, k));
            i += k;
        }
        return l;
    }
    default: jinja__fail(r, "'%s' object is not iterable", jv_type_name(v));
    }
}
