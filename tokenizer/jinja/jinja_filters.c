/* jinja_filters.c: the filters chat templates use, with jinja2's
 * signatures and defaults (sort, unique and dictsort compare strings
 * case-insensitively unless told; default only replaces Undefined unless
 * its boolean argument is true), and transformers' tojson (json.dumps
 * without ASCII escaping unless asked). Unknown filters fail when applied
 * with jinja2's message. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja_internal.h"

struct fargs {
    jv *args;
    int nargs;
    const char **kwn;
    jv *kwv;
    int nkw;
};

/* Argument pos (0-based, after the filtered value) or keyword name. */
static bool arg(const struct fargs *a, int pos, const char *name, jv *out)
{
    if (pos >= 0 && pos < a->nargs) {
        *out = a->args[pos];
        return true;
    }
    for (int i = 0; i < a->nkw; i++)
        if (!strcmp(a->kwn[i], name)) {
            *out = a->kwv[i];
            return true;
        }
    return false;
}

static bool arg_bool(const struct fargs *a, int pos, const char *name, bool dflt)
{
    jv v;
    return arg(a, pos, name, &v) ? jv_truthy(v) : dflt;
}

static int64_t arg_int(struct jrender *r, const struct fargs *a, int pos, const char *name, int64_t dflt)
{
    jv v;
    if (!arg(a, pos, name, &v) || v.kind == JV_NONE)
        return dflt;
    if (v.kind == JV_INT || v.kind == JV_BOOL)
        return v.kind == JV_INT ? v.u.i : v.u.b;
    jinja__fail(r, "'%s' object cannot be interpreted as an integer", jv_type_name(v));
}

static jv need_str(struct jrender *r, jv x)
{
    return jv_to_str(r, x);
}

/* item.a.b for attribute arguments (dotted, digits index lists). */
static jv attr_path(struct jrender *r, jv item, jv path)
{
    if (path.kind != JV_STR)
        return jinja__getitem(r, item, path);
    const char *s = path.u.s, *end = s + path.n;
    while (s <= end) {
        const char *dot = memchr(s, '.', (size_t)(end - s));
        size_t n = dot ? (size_t)(dot - s) : (size_t)(end - s);
        bool digits = n > 0;
        for (size_t i = 0; i < n; i++)
            digits = digits && s[i] >= '0' && s[i] <= '9';
        item = digits ? jinja__getitem(r, item, jv_int(strtoll(s, NULL, 10)))
                      : jinja__getitem(r, item, jv_str(s, n));
        if (!dot)
            break;
        s = dot + 1;
    }
    return item;
}

static jv f_tojson(struct jrender *r, jv x, const struct fargs *a)
{
    struct json_opts o = {.indent = -1};
    jv v;
    o.ascii = arg_bool(a, 0, "ensure_ascii", false);
    if (arg(a, 1, "indent", &v) && v.kind != JV_NONE) {
        if (v.kind != JV_INT && v.kind != JV_STR)
            jinja__fail(r, "tojson: indent must be an integer or a string");
        o.indent = v.kind == JV_STR ? 0 : v.u.i < 0 ? 0 : v.u.i > 64 ? 64 : (int)v.u.i;
        o.indent_str = v.kind == JV_STR ? v : jv_none();
    }
    o.item_sep = o.indent >= 0 ? jv_str(",", 1) : jv_str(", ", 2);
    o.key_sep = jv_str(": ", 2);
    if (arg(a, 2, "separators", &v) && v.kind != JV_NONE) {
        if ((v.kind != JV_LIST && v.kind != JV_TUPLE) || v.u.l->n != 2 || !jv_is_str(v.u.l->v[0]) ||
            !jv_is_str(v.u.l->v[1]))
            jinja__fail(r, "tojson: separators must be two strings");
        o.item_sep = v.u.l->v[0];
        o.key_sep = v.u.l->v[1];
    }
    o.sort_keys = arg_bool(a, 3, "sort_keys", false);
    struct jbuf b = {0};
    jv_dump_json(r, &b, x, &o, 0);
    return jv_buf(&b);
}

static jv f_default(struct jrender *r, jv x, const struct fargs *a)
{
    (void)r;
    jv d;
    if (!arg(a, 0, "default_value", &d))
        d = jv_str("", 0);
    if (x.kind == JV_UNDEF || (arg_bool(a, 1, "boolean", false) && !jv_truthy(x)))
        return d;
    return x;
}

static jv f_join(struct jrender *r, jv x, const struct fargs *a)
{
    jv sep, attr, items = jv_iter_list(r, x);
    if (!arg(a, 0, "d", &sep))
        sep = jv_str("", 0);
    bool by_attr = arg(a, 1, "attribute", &attr);
    struct jbuf b = {0};
    for (size_t i = 0; i < items.u.l->n; i++) {
        if (i)
            jv_write(r, &b, sep);
        jv_write(r, &b, by_attr ? attr_path(r, items.u.l->v[i], attr) : items.u.l->v[i]);
    }
    return jv_buf(&b);
}

static jv f_items(struct jrender *r, jv x, const struct fargs *a)
{
    (void)a;
    if (x.kind == JV_UNDEF)
        return (jv){.kind = JV_LIST, .sub = SUB_GEN, .u.l = jv_list(r, 0).u.l};
    if (x.kind != JV_DICT)
        jinja__fail(r, "Can only get item pairs from a mapping.");
    jv out = jv_list(r, x.u.d->n);
    out.sub = SUB_GEN;
    for (size_t i = 0; i < x.u.d->n; i++) {
        jv pair = jv_list(r, 2);
        jv_push(r, pair, x.u.d->k[i]);
        jv_push(r, pair, x.u.d->v[i]);
        pair.kind = JV_TUPLE;
        jv_push(r, out, pair);
    }
    return out;
}

/* select / reject / selectattr / rejectattr */
static jv select_items(struct jrender *r, jv x, const struct fargs *a, bool by_attr, bool keep)
{
    jv items = jv_truthy(x) ? jv_iter_list(r, x) : jv_list(r, 0), out = jv_list(r, 0), attr = jv_none(), test;
    int first = 0;
    out.sub = SUB_GEN;
    if (by_attr && !arg(a, first++, "attribute", &attr))
        jinja__fail(r, "selectattr needs an attribute");
    bool has_test = first < a->nargs;
    if (has_test) {
        test = a->args[first];
        if (!jv_is_str(test))
            jinja__fail(r, "test name must be a string");
    }
    for (size_t i = 0; i < items.u.l->n; i++) {
        jv item = by_attr ? attr_path(r, items.u.l->v[i], attr) : items.u.l->v[i];
        bool t = has_test ? jinja__test(r, arena_strndup(&r->arena, test.u.s, test.n), item, a->args + first + 1,
                                        a->nargs - first - 1)
                          : jv_truthy(item);
        if (t == keep)
            jv_push(r, out, items.u.l->v[i]);
    }
    return out;
}

static jv f_map(struct jrender *r, jv x, const struct fargs *a)
{
    jv items = jv_truthy(x) ? jv_iter_list(r, x) : jv_list(r, 0), out = jv_list(r, items.u.l->n), attr, dflt;
    out.sub = SUB_GEN;
    bool has_default = arg(a, -1, "default", &dflt);
    if (arg(a, -1, "attribute", &attr)) {
        for (size_t i = 0; i < items.u.l->n; i++) {
            jv v = attr_path(r, items.u.l->v[i], attr);
            jv_push(r, out, v.kind == JV_UNDEF && has_default ? dflt : v);
        }
        return out;
    }
    if (a->nargs < 1 || !jv_is_str(a->args[0]))
        jinja__fail(r, "map requires a filter argument");
    const char *name = arena_strndup(&r->arena, a->args[0].u.s, a->args[0].n);
    for (size_t i = 0; i < items.u.l->n; i++)
        jv_push(r, out, jinja__filter(r, name, items.u.l->v[i], a->args + 1, a->nargs - 1, a->kwn, a->kwv, a->nkw));
    return out;
}

static jv f_indent(struct jrender *r, jv x, const struct fargs *a)
{
    jv s = need_str(r, x), w;
    struct jbuf pad = {0}, b = {0};
    if (arg(a, 0, "width", &w) && w.kind == JV_STR)
        jbuf_put(r, &pad, w.u.s, w.n);
    else
        for (int64_t i = arg_int(r, a, 0, "width", 4); i > 0 && pad.len < 1024; i--)
            jbuf_putc(r, &pad, ' ');
    bool first = arg_bool(a, 1, "first", false), blank = arg_bool(a, 2, "blank", false);
    for (size_t i = 0, line = 0, next; i <= s.n; line++, i = next) { /* lines as (s + "\n").splitlines() */
        size_t e = str_line_end(s.u.s, s.n, i, &next);
        if (line > 0)
            jbuf_putc(r, &b, '\n');
        if (line == 0 ? first : blank || e > i)
            jbuf_put(r, &b, pad.s, pad.len);
        jbuf_put(r, &b, s.u.s + i, e - i);
    }
    return jv_buf(&b);
}

static jv f_int(struct jrender *r, jv x, const struct fargs *a)
{
    jv d;
    if (!arg(a, 0, "default", &d))
        d = jv_int(0);
    if (x.kind == JV_INT || x.kind == JV_BOOL)
        return jv_int(x.kind == JV_INT ? x.u.i : x.u.b);
    if (x.kind == JV_FLOAT)
        return isfinite(x.u.f) && fabs(x.u.f) < 9.2e18 ? jv_int((int64_t)x.u.f) : d;
    if (x.kind != JV_STR)
        return d;
    jv s = str_strip(r, x, NULL, 0, 3);
    char *t = arena_strndup(&r->arena, s.u.s, s.n), *end;
    long long i = strtoll(t, &end, 10);
    if (s.n && !*end)
        return jv_int(i);
    if (strpbrk(t, "xXpP")) /* C's strtod reads hex floats; Python's float() does not */
        return d;
    double f = strtod(t, &end);
    return s.n && !*end && isfinite(f) && fabs(f) < 9.2e18 ? jv_int((int64_t)f) : d;
}

static jv f_float(struct jrender *r, jv x, const struct fargs *a)
{
    jv d;
    if (!arg(a, 0, "default", &d))
        d = jv_float(0);
    if (x.kind == JV_INT || x.kind == JV_BOOL || x.kind == JV_FLOAT)
        return jv_float(x.kind == JV_FLOAT ? x.u.f : x.kind == JV_INT ? (double)x.u.i : x.u.b);
    if (x.kind != JV_STR)
        return d;
    jv s = str_strip(r, x, NULL, 0, 3);
    char *t = arena_strndup(&r->arena, s.u.s, s.n), *end;
    double f = strtod(t, &end);
    return s.n && !*end && !strpbrk(t, "xXpP") ? jv_float(f) : d;
}

static jv f_sort(struct jrender *r, jv x, const struct fargs *a)
{
    jv attr;
    bool has = arg(a, 2, "attribute", &attr) && attr.kind != JV_NONE;
    return jinja__sort(r, x, arg_bool(a, 0, "reverse", false), arg_bool(a, 1, "case_sensitive", false),
                       has ? &attr : NULL);
}

static jv f_dictsort(struct jrender *r, jv x, const struct fargs *a)
{
    jv by;
    bool by_value = arg(a, 1, "by", &by) && by.kind == JV_STR && by.n == 5 && !memcmp(by.u.s, "value", 5);
    return jinja__dictsort(r, x, arg_bool(a, 0, "case_sensitive", false), by_value, arg_bool(a, 2, "reverse", false));
}

static jv f_unique(struct jrender *r, jv x, const struct fargs *a)
{
    jv attr;
    bool has = arg(a, 1, "attribute", &attr) && attr.kind != JV_NONE;
    return jinja__unique(r, x, arg_bool(a, 0, "case_sensitive", false), has ? &attr : NULL);
}

static jv f_minmax(struct jrender *r, jv x, const struct fargs *a, bool max)
{
    jv attr;
    bool has = arg(a, 1, "attribute", &attr) && attr.kind != JV_NONE;
    return jinja__minmax(r, x, arg_bool(a, 0, "case_sensitive", false), has ? &attr : NULL, max);
}

static jv f_first_last(struct jrender *r, jv x, bool last)
{
    jv items = jv_iter_list(r, x);
    if (!items.u.l->n)
        return jv_undef(UND_HINT, 0, last ? "No last item, sequence was empty." : "No first item, sequence was empty.",
                        last ? 33 : 34);
    return items.u.l->v[last ? items.u.l->n - 1 : 0];
}

static jv f_round(struct jrender *r, jv x, const struct fargs *a)
{
    int64_t p = arg_int(r, a, 0, "precision", 0);
    jv method;
    if (x.kind == JV_UNDEF)
        jv_fail_undef(r, x);
    if (x.kind != JV_INT && x.kind != JV_FLOAT && x.kind != JV_BOOL)
        jinja__fail(r, "type %s doesn't define __round__ method", jv_type_name(x));
    double f = x.kind == JV_FLOAT ? x.u.f : x.kind == JV_INT ? (double)x.u.i : x.u.b;
    double scale = pow(10, (double)(p < -20 ? -20 : p > 20 ? 20 : p));
    if (arg(a, 1, "method", &method) && method.kind == JV_STR && method.n >= 4 && !memcmp(method.u.s, "ceil", 4))
        return jv_float(ceil(f * scale) / scale);
    if (arg(a, 1, "method", &method) && method.kind == JV_STR && method.n >= 5 && !memcmp(method.u.s, "floor", 5))
        return jv_float(floor(f * scale) / scale);
    if (x.kind != JV_FLOAT)
        return x.kind == JV_BOOL ? jv_int(x.u.b) : x;
    if (p <= 0)
        return jv_float(nearbyint(f * scale) / scale);
    char buf[64];
    snprintf(buf, sizeof(buf), "%.*f", (int)(p > 20 ? 20 : p), f); /* correctly rounded, half to even */
    return jv_float(strtod(buf, NULL));
}

static jv f_reverse(struct jrender *r, jv x)
{
    if (x.kind == JV_STR) {
        int64_t step = -1;
        return str_slice_cp(r, x, NULL, NULL, &step);
    }
    jv items = jv_iter_list(r, x), out = jv_list(r, items.u.l->n);
    for (size_t i = items.u.l->n; i > 0; i--)
        jv_push(r, out, items.u.l->v[i - 1]);
    return out;
}

static jv f_escape(struct jrender *r, jv x)
{
    jv s = need_str(r, x);
    struct jbuf b = {0};
    for (size_t i = 0; i < s.n; i++) {
        char c = s.u.s[i];
        const char *e = c == '&' ? "&amp;" : c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '"' ? "&#34;"
                      : c == '\'' ? "&#39;" : NULL;
        if (e)
            jbuf_put(r, &b, e, strlen(e));
        else
            jbuf_putc(r, &b, c);
    }
    jv out = jv_buf(&b);
    out.sub = SUB_MARKUP;
    return out;
}

jv jinja__escape(struct jrender *r, jv x)
{
    return x.kind == JV_STR && x.sub == SUB_MARKUP ? x : f_escape(r, x);
}

static jv f_sum(struct jrender *r, jv x, const struct fargs *a)
{
    jv items = jv_iter_list(r, x), attr, total;
    bool has = arg(a, 0, "attribute", &attr) && attr.kind != JV_NONE;
    if (!arg(a, 1, "start", &total))
        total = jv_int(0);
    for (size_t i = 0; i < items.u.l->n; i++)
        total = jinja__binop(r, OP_ADD, total, has ? attr_path(r, items.u.l->v[i], attr) : items.u.l->v[i]);
    return total;
}

static jv f_abs(struct jrender *r, jv x)
{
    if (x.kind == JV_FLOAT)
        return jv_float(fabs(x.u.f));
    if (x.kind == JV_INT && x.u.i != INT64_MIN)
        return jv_int(x.u.i < 0 ? -x.u.i : x.u.i);
    if (x.kind == JV_BOOL)
        return jv_int(x.u.b);
    if (x.kind == JV_UNDEF)
        jv_fail_undef(r, x);
    jinja__fail(r, "bad operand type for abs(): '%s'", jv_type_name(x));
}

static jv f_string_ops(struct jrender *r, const char *name, jv x, const struct fargs *a)
{
    jv s = need_str(r, x), v, w;
    if (!strcmp(name, "trim")) {
        bool has = arg(a, 0, "chars", &v) && v.kind == JV_STR;
        return str_strip(r, s, has ? v.u.s : NULL, has ? v.n : 0, 3);
    }
    if (!strcmp(name, "upper") || !strcmp(name, "lower"))
        return str_case(r, s, name[0] == 'u');
    if (!strcmp(name, "title"))
        return str_case(r, s, 4);
    if (!strcmp(name, "capitalize"))
        return str_case(r, s, 3);
    if (!strcmp(name, "replace")) {
        if (!arg(a, 0, "old", &v) || !arg(a, 1, "new", &w))
            jinja__fail(r, "replace needs two arguments");
        return str_replace(r, s, need_str(r, v), need_str(r, w), arg_int(r, a, 2, "count", -1));
    }
    jv tup = jv_list(r, (size_t)a->nargs); /* format: s % args */
    for (int i = 0; i < a->nargs; i++)
        jv_push(r, tup, a->args[i]);
    tup.kind = JV_TUPLE;
    return str_percent(r, s, tup);
}

static jv f_list(struct jrender *r, jv x)
{
    jv items = jv_iter_list(r, x), out = jv_list(r, items.u.l->n);
    for (size_t i = 0; i < items.u.l->n; i++)
        jv_push(r, out, items.u.l->v[i]);
    return out;
}

jv jinja__filter(struct jrender *r, const char *name, jv x, jv *args, int nargs, const char **kwn, jv *kwv, int nkw)
{
    const struct fargs a = {args, nargs, kwn, kwv, nkw};
    static const char *const str_filters[] = {"trim", "upper", "lower", "title", "capitalize", "replace", NULL};
#define IS(s) (name[0] == (s)[0] && !strcmp(name, s))
    if (IS("tojson")) return f_tojson(r, x, &a);
    for (int i = 0; str_filters[i]; i++)
        if (name[0] == str_filters[i][0] && !strcmp(name, str_filters[i]))
            return f_string_ops(r, name, x, &a);
    if (IS("length") || IS("count")) return jv_int((int64_t)jv_len(r, x));
    if (IS("default") || IS("d")) return f_default(r, x, &a);
    if (IS("string")) return jv_to_str(r, x);
    if (IS("safe")) return x.kind == JV_STR ? (x.sub = SUB_MARKUP, x) : x;
    if (IS("items")) return f_items(r, x, &a);
    if (IS("join")) return f_join(r, x, &a);
    if (IS("list")) return f_list(r, x);
    if (IS("selectattr") || IS("rejectattr")) return select_items(r, x, &a, true, name[0] == 's');
    if (IS("select") || IS("reject")) return select_items(r, x, &a, false, name[0] == 's');
    if (IS("map")) return f_map(r, x, &a);
    if (IS("first") || IS("last")) return f_first_last(r, x, name[0] == 'l');
    if (IS("int")) return f_int(r, x, &a);
    if (IS("float")) return f_float(r, x, &a);
    if (IS("indent")) return f_indent(r, x, &a);
    if (IS("sort")) return f_sort(r, x, &a);
    if (IS("dictsort")) return f_dictsort(r, x, &a);
    if (IS("unique")) return f_unique(r, x, &a);
    if (IS("min") || IS("max")) return f_minmax(r, x, &a, name[1] == 'a');
    if (IS("round")) return f_round(r, x, &a);
    if (IS("abs")) return f_abs(r, x);
    if (IS("reverse")) return f_reverse(r, x);
    if (IS("escape") || IS("e")) return f_escape(r, x);
    if (IS("sum")) return f_sum(r, x, &a);
    if (IS("format")) return f_string_ops(r, name, x, &a);
#undef IS
    jinja__fail(r, "No filter named '%s' found.", name);
}
