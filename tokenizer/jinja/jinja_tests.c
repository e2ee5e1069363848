/* jinja_tests.c: the `is` tests (jinja2's, with Python's types: a bool is
 * a number but not an integer, an Undefined is iterable and a sequence)
 * and the globals transformers gives templates: range (the sandbox's,
 * at most 100000 items), namespace, dict, raise_exception, strftime_now. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "jinja_internal.h"

static bool is_int(jv v)
{
    return v.kind == JV_INT || v.kind == JV_BOOL;
}

static bool sameas(jv a, jv b)
{
    if (a.kind != b.kind)
        return false;
    switch (a.kind) {
    case JV_NONE: case JV_UNDEF: return true;
    case JV_BOOL: return a.u.b == b.u.b;
    case JV_INT: return a.u.i == b.u.i;
    case JV_STR: return a.u.s == b.u.s && a.n == b.n;
    default: return a.u.l == b.u.l;
    }
}

static bool compare_test(struct jrender *r, const char *name, jv x, jv y, bool *known)
{
    static const char *const names[][3] = {{"equalto", "eq", "=="}, {"ne", "!=", ""}, {"lt", "lessthan", "<"},
                                           {"le", "<=", ""}, {"gt", "greaterthan", ">"}, {"ge", ">=", ""}};
    static const int ops[] = {OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE};
    *known = true;
    for (int i = 0; i < 6; i++)
        for (int k = 0; k < 3; k++)
            if (names[i][k][0] && !strcmp(name, names[i][k]))
                return jv_truthy(jinja__binop(r, ops[i], x, y));
    if (!strcmp(name, "in"))
        return jv_truthy(jinja__binop(r, OP_IN, x, y));
    if (!strcmp(name, "sameas"))
        return sameas(x, y);
    if (!strcmp(name, "divisibleby")) {
        if (x.kind == JV_UNDEF)
            jv_fail_undef(r, x);
        return !jv_truthy(jinja__binop(r, OP_MOD, x, y));
    }
    *known = false;
    return false;
}

static bool str_all(jv x, int (*pred)(int))
{
    if (x.kind != JV_STR)
        return false;
    bool any = false;
    for (size_t i = 0; i < x.n; i++) {
        int c = (unsigned char)x.u.s[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
            any = true;
            if (!pred(c))
                return false;
        }
    }
    return any;
}

static int is_lower(int c) { return c >= 'a' && c <= 'z'; }
static int is_upper(int c) { return c >= 'A' && c <= 'Z'; }

bool jinja__test(struct jrender *r, const char *name, jv x, jv *args, int nargs)
{
    int k = x.kind;
#define IS(s) (name[0] == (s)[0] && !strcmp(name, s))
    if (IS("defined")) return k != JV_UNDEF;
    if (IS("undefined")) return k == JV_UNDEF;
    if (IS("none")) return k == JV_NONE;
    if (IS("string")) return k == JV_STR;
    if (IS("number")) return k == JV_INT || k == JV_FLOAT || k == JV_BOOL;
    if (IS("integer")) return k == JV_INT;
    if (IS("float")) return k == JV_FLOAT;
    if (IS("boolean")) return k == JV_BOOL;
    if (IS("true")) return k == JV_BOOL && x.u.b;
    if (IS("false")) return k == JV_BOOL && !x.u.b;
    if (IS("mapping")) return k == JV_DICT;
    if (IS("iterable")) return k == JV_STR || k == JV_LIST || k == JV_TUPLE || k == JV_DICT || k == JV_UNDEF ||
                               k == JV_LOOP;
    if (IS("sequence")) return k == JV_STR || k == JV_LIST || k == JV_TUPLE || k == JV_DICT || k == JV_UNDEF;
    if (IS("callable")) return k == JV_MACRO || k == JV_FUNC || k == JV_METHOD;
    if (IS("escaped")) return false;
    if (IS("lower")) return str_all(x, is_lower);
    if (IS("upper")) return str_all(x, is_upper);
    if (IS("odd") || IS("even")) {
        if (k == JV_UNDEF)
            jv_fail_undef(r, x);
        if (!is_int(x))
            jinja__fail(r, "unsupported operand type(s) for %%: '%s' and 'int'", jv_type_name(x));
        int64_t i = k == JV_INT ? x.u.i : x.u.b;
        return (i % 2 != 0) == IS("odd");
    }
#undef IS
    bool known;
    bool res = compare_test(r, name, x, nargs ? args[0] : jv_undef(UND_NAME, 0, "argument", 8), &known);
    if (known)
        return res;
    jinja__fail(r, "No test named '%s'.", name);
}

/* ---- globals ---- */

enum { G_RANGE, G_NAMESPACE, G_DICT, G_RAISE, G_STRFTIME };

int jinja__builtin_id(const char *name, size_t n)
{
    static const char *const names[] = {"range", "namespace", "dict", "raise_exception", "strftime_now"};
    for (int i = 0; i < 5; i++)
        if (strlen(names[i]) == n && !memcmp(names[i], name, n))
            return i;
    return -1;
}

static jv g_range(struct jrender *r, jv *args, int nargs)
{
    int64_t v[3] = {0, 0, 1};
    if (nargs < 1 || nargs > 3)
        jinja__fail(r, "range expected at most 3 arguments, got %d", nargs);
    for (int i = 0; i < nargs; i++) {
        if (args[i].kind != JV_INT && args[i].kind != JV_BOOL)
            jinja__fail(r, "'%s' object cannot be interpreted as an integer", jv_type_name(args[i]));
        v[nargs == 1 ? 1 : i] = args[i].kind == JV_INT ? args[i].u.i : args[i].u.b;
    }
    if (v[2] == 0)
        jinja__fail(r, "range() arg 3 must not be zero");
    double count = v[2] > 0 ? ((double)v[1] - (double)v[0]) / (double)v[2] : ((double)v[0] - (double)v[1]) / (double)-v[2];
    if (count > 100000)
        jinja__fail(r, "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
    jv out = jv_list(r, count > 0 ? (size_t)count + 1 : 0);
    for (int64_t i = v[0]; v[2] > 0 ? i < v[1] : i > v[1]; i += v[2])
        jv_push(r, out, jv_int(i));
    return out;
}

/* dict(*args, **kwargs): a mapping or a list of pairs, then keywords. */
static jv g_dict(struct jrender *r, jv *args, int nargs, const char **kwn, jv *kwv, int nkw, bool ns)
{
    jv d = jv_dict(r, 4);
    if (nargs > 1)
        jinja__fail(r, "dict expected at most 1 argument, got %d", nargs);
    if (nargs == 1 && args[0].kind == JV_DICT) {
        for (size_t i = 0; i < args[0].u.d->n; i++)
            jv_dict_set(r, d, args[0].u.d->k[i], args[0].u.d->v[i]);
    } else if (nargs == 1) {
        jv items = jv_iter_list(r, args[0]);
        for (size_t i = 0; i < items.u.l->n; i++) {
            jv p = jv_iter_list(r, items.u.l->v[i]);
            if (p.u.l->n != 2)
                jinja__fail(r, "dictionary update sequence element #%zu has length %zu; 2 is required", i, p.u.l->n);
            jv_dict_set(r, d, p.u.l->v[0], p.u.l->v[1]);
        }
    }
    for (int i = 0; i < nkw; i++)
        jv_dict_set(r, d, jv_cstr(kwn[i]), kwv[i]);
    for (size_t i = 0; ns && i < d.u.d->n; i++) {
        jv k = d.u.d->k[i];
        if (k.kind == JV_STR && k.n && k.u.s[0] == '_')
            jinja__fail(r, "Chat templates cannot store underscore-prefixed attributes on a namespace, but got "
                           "'%.*s'. Please rename the attribute.", (int)k.n, k.u.s);
    }
    if (ns)
        d.kind = JV_NS;
    return d;
}

static jv g_strftime(struct jrender *r, jv *args, int nargs)
{
    if (nargs != 1 || args[0].kind != JV_STR)
        jinja__fail(r, "strftime_now() takes one string argument");
    struct tm tm;
    localtime_r(&r->now, &tm);
    char *fmt = arena_strndup(&r->arena, args[0].u.s, args[0].n);
    size_t cap = args[0].n * 8 + 64;
    char *out = arena_alloc(&r->arena, cap);
    size_t n = strftime(out, cap, fmt, &tm);
    return jv_str(out, n);
}

jv jinja__builtin(struct jrender *r, int id, jv *args, int nargs, const char **kwn, jv *kwv, int nkw)
{
    switch (id) {
    case G_RANGE: return g_range(r, args, nargs);
    case G_NAMESPACE: return g_dict(r, args, nargs, kwn, kwv, nkw, true);
    case G_DICT: return g_dict(r, args, nargs, kwn, kwv, nkw, false);
    case G_RAISE: {
        struct jbuf msg = {0};
        if (nargs)
            jv_write(r, &msg, args[0]);
        jinja__fail(r, "%s", msg.s ? msg.s : "");
    }
    case G_STRFTIME: return g_strftime(r, args, nargs);
    default: jinja__fail(r, "unknown global");
    }
}
