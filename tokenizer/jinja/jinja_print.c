/* jinja_print.c: values as text, Python's way: str() (what {{ x }} prints),
 * repr() (inside lists and dicts, and the string filter of one), floats as
 * Python's repr (shortest round trip: 1.0, 0.1, 1e+16, 1.5e-05), and
 * json.dumps as transformers' tojson calls it (ensure_ascii=False;
 * separators ", " and ": ", or "," and ": " with an indent). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "jinja_internal.h"

void jv_fmt_float(double f, char *buf, size_t cap)
{
    if (isnan(f) || isinf(f)) {
        snprintf(buf, cap, "%s", isnan(f) ? "nan" : f > 0 ? "inf" : "-inf");
        return;
    }
    char e[40], digits[24];
    for (int p = 1; p <= 17; p++) {
        snprintf(e, sizeof(e), "%.*e", p - 1, f);
        if (strtod(e, NULL) == f)
            break;
    }
    const char *s = e;
    bool neg = *s == '-';
    s += neg;
    int nd = 0;
    for (; *s && *s != 'e'; s++)
        if (*s >= '0' && *s <= '9')
            digits[nd++] = *s;
    int x = atoi(s + 1);
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    digits[nd] = 0;
    char *o = buf;
    size_t left = cap;
#define PUT(...) do { int k_ = snprintf(o, left, __VA_ARGS__); if (k_ < 0 || (size_t)k_ >= left) return; o += k_; left -= (size_t)k_; } while (0)
    if (neg)
        PUT("-");
    if (x >= -4 && x < 16) {
        if (x >= 0) {
            for (int i = 0; i <= x; i++)
                PUT("%c", i < nd ? digits[i] : '0');
            PUT(".%s", nd > x + 1 ? digits + x + 1 : "0");
        } else {
            PUT("0.");
            for (int i = 0; i < -x - 1; i++)
                PUT("0");
            PUT("%s", digits);
        }
    } else {
        PUT("%c", digits[0]);
        if (nd > 1)
            PUT(".%s", digits + 1);
        PUT("e%c%02d", x < 0 ? '-' : '+', x < 0 ? -x : x);
    }
#undef PUT
}

static bool printable(uint32_t cp)
{
    if (cp == ' ')
        return true;
    switch (utf8proc_category((utf8proc_int32_t)cp)) {
    case UTF8PROC_CATEGORY_CC: case UTF8PROC_CATEGORY_CF: case UTF8PROC_CATEGORY_CS: case UTF8PROC_CATEGORY_CO:
    case UTF8PROC_CATEGORY_CN: case UTF8PROC_CATEGORY_ZL: case UTF8PROC_CATEGORY_ZP: case UTF8PROC_CATEGORY_ZS:
        return false;
    default: return true;
    }
}

static void repr_str(struct jrender *r, struct jbuf *b, const char *s, size_t n)
{
    char q = memchr(s, '\'', n) && !memchr(s, '"', n) ? '"' : '\'';
    jbuf_putc(r, b, q);
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = u8_decode(s + i, n - i, &cp);
        if (cp == (uint32_t)q || cp == '\\') {
            jbuf_putc(r, b, '\\');
            jbuf_putc(r, b, (char)cp);
        } else if (cp == '\n' || cp == '\r' || cp == '\t')
            jbuf_put(r, b, cp == '\n' ? "\\n" : cp == '\r' ? "\\r" : "\\t", 2);
        else if (cp < 0x7f && cp >= 0x20)
            jbuf_putc(r, b, (char)cp);
        else if (printable(cp) && cp != 0x7f)
            jbuf_put(r, b, s + i, k);
        else
            jbuf_printf(r, b, cp < 0x100 ? "\\x%02x" : cp < 0x10000 ? "\\u%04x" : "\\U%08x", cp);
        i += k;
    }
    jbuf_putc(r, b, q);
}

static void repr_seq(struct jrender *r, struct jbuf *b, jv v)
{
    jinja__enter(r);
    if (v.kind == JV_DICT || v.kind == JV_NS) {
        jbuf_putc(r, b, '{');
        for (size_t i = 0; i < v.u.d->n; i++) {
            if (i)
                jbuf_put(r, b, ", ", 2);
            jv_repr(r, b, v.u.d->k[i]);
            jbuf_put(r, b, ": ", 2);
            jv_repr(r, b, v.u.d->v[i]);
        }
        jbuf_putc(r, b, '}');
        r->nest--;
        return;
    }
    jbuf_putc(r, b, v.kind == JV_TUPLE ? '(' : '[');
    for (size_t i = 0; i < v.u.l->n; i++) {
        if (i)
            jbuf_put(r, b, ", ", 2);
        jv_repr(r, b, v.u.l->v[i]);
    }
    if (v.kind == JV_TUPLE && v.u.l->n == 1)
        jbuf_putc(r, b, ',');
    jbuf_putc(r, b, v.kind == JV_TUPLE ? ')' : ']');
    r->nest--;
}

void jv_write(struct jrender *r, struct jbuf *b, jv v)
{
    char num[64];
    switch (v.kind) {
    case JV_UNDEF: return;
    case JV_NONE: jbuf_put(r, b, "None", 4); return;
    case JV_BOOL: jbuf_put(r, b, v.u.b ? "True" : "False", v.u.b ? 4 : 5); return;
    case JV_INT: jbuf_printf(r, b, "%lld", (long long)v.u.i); return;
    case JV_FLOAT:
        jv_fmt_float(v.u.f, num, sizeof(num));
        jbuf_put(r, b, num, strlen(num));
        return;
    case JV_STR: jbuf_put(r, b, v.u.s, v.n); return;
    case JV_LIST: case JV_TUPLE: case JV_DICT: repr_seq(r, b, v); return;
    case JV_NS:
        jbuf_put(r, b, "<Namespace ", 11);
        repr_seq(r, b, v);
        jbuf_putc(r, b, '>');
        return;
    case JV_MACRO: jbuf_printf(r, b, "<Macro '%s'>", v.u.m->name); return;
    default: jbuf_printf(r, b, "<%s object>", jv_type_name(v)); return;
    }
}

void jv_repr(struct jrender *r, struct jbuf *b, jv v)
{
    if (v.kind == JV_STR)
        repr_str(r, b, v.u.s, v.n);
    else if (v.kind == JV_UNDEF)
        jbuf_put(r, b, "Undefined", 9);
    else
        jv_write(r, b, v);
}

jv jv_to_str(struct jrender *r, jv v)
{
    if (v.kind == JV_STR)
        return v;
    if (v.kind == JV_UNDEF)
        return jv_str("", 0);
    struct jbuf b = {0};
    jv_write(r, &b, v);
    return jv_buf(&b);
}

/* ---- json.dumps ---- */

static void json_str(struct jrender *r, struct jbuf *b, const char *s, size_t n, bool ascii)
{
    static const unsigned char plain[256] = { /* 1: no escape; 2: none unless ensure_ascii */
        [' '] = 1, ['!'] = 1, ['#' ... '['] = 1, [']' ... 0x7F] = 1, [0x80 ... 0xFF] = 2};
    const unsigned char need = ascii ? 1 : 3;
    size_t run = 0, i = 0;
    while (i < n && (plain[(unsigned char)s[i]] & need))
        i++;
    if (i == n) { /* nothing to escape (the common case): one copy */
        if (b->cap - b->len <= n + 2 || n + 2 > r->out_limit - r->written)
            jbuf_grow(r, b, n + 2);
        b->s[b->len] = '"';
        memcpy(b->s + b->len + 1, s, n);
        b->s[b->len + n + 1] = '"';
        b->len += n + 2;
        b->s[b->len] = 0;
        r->written += n + 2;
        return;
    }
    jbuf_putc(r, b, '"');
    for (; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (plain[c] & need)
            continue;
        jbuf_put(r, b, s + run, i - run);
        run = i + 1;
        if (c >= 0x80) { /* ensure_ascii: \uXXXX, surrogate pairs above the BMP */
            uint32_t cp;
            size_t k = u8_decode(s + i, n - i, &cp);
            if (cp >= 0x10000)
                jbuf_printf(r, b, "\\u%04x\\u%04x", 0xD800 + ((cp - 0x10000) >> 10), 0xDC00 + ((cp - 0x10000) & 0x3FF));
            else
                jbuf_printf(r, b, "\\u%04x", cp);
            i += k - 1;
            run = i + 1;
            continue;
        }
        const char *esc = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\n' ? "\\n" : c == '\r' ? "\\r"
                        : c == '\t' ? "\\t" : c == '\b' ? "\\b" : c == '\f' ? "\\f" : NULL;
        if (esc)
            jbuf_put(r, b, esc, 2);
        else
            jbuf_printf(r, b, "\\u%04x", c);
    }
    jbuf_put(r, b, s + run, n - run);
    jbuf_putc(r, b, '"');
}

static void newline(struct jrender *r, struct jbuf *b, const struct json_opts *o, int level)
{
    if (o->indent_str.kind == JV_STR) {
        jbuf_putc(r, b, '\n');
        for (int i = 0; i < level; i++)
            jbuf_put(r, b, o->indent_str.u.s, o->indent_str.n);
        return;
    }
    int indent = o->indent;
    static const char spaces[] = "\n                                                                ";
    jbuf_putc(r, b, '\n');
    for (int k = indent * level; k > 0; k -= 64)
        jbuf_put(r, b, spaces + 1, k < 64 ? (size_t)k : 64);
}

static int key_cmp(const void *x, const void *y)
{
    const jv *a = *(const jv *const *)x, *c = *(const jv *const *)y;
    int k = memcmp(a->u.s, c->u.s, a->n < c->n ? a->n : c->n);
    return k ? k : (a->n > c->n) - (a->n < c->n);
}

static void json_key(struct jrender *r, struct jbuf *b, jv k, const struct json_opts *o)
{
    if (k.kind == JV_STR)
        json_str(r, b, k.u.s, k.n, o->ascii);
    else if (k.kind == JV_INT || k.kind == JV_FLOAT || k.kind == JV_BOOL || k.kind == JV_NONE) {
        jbuf_putc(r, b, '"');
        if (k.kind == JV_BOOL || k.kind == JV_NONE)
            jbuf_put(r, b, k.kind == JV_NONE ? "null" : k.u.b ? "true" : "false", k.kind == JV_NONE ? 4 : k.u.b ? 4 : 5);
        else
            jv_write(r, b, k);
        jbuf_putc(r, b, '"');
    } else
        jinja__fail(r, "keys must be str, int, float, bool or None, not %s", jv_type_name(k));
}

static void json_dict(struct jrender *r, struct jbuf *b, jv v, const struct json_opts *o, int level)
{
    struct jdict *d = v.u.d;
    if (!d->n) {
        jbuf_put(r, b, "{}", 2);
        return;
    }
    const jv **order = arena_alloc(&r->arena, d->n * sizeof(*order));
    for (size_t i = 0; i < d->n; i++) {
        order[i] = &d->k[i];
        if (o->sort_keys && d->k[i].kind != JV_STR)
            jinja__fail(r, "'<' not supported between instances of '%s' and 'str'", jv_type_name(d->k[i]));
    }
    if (o->sort_keys)
        qsort(order, d->n, sizeof(*order), key_cmp);
    jbuf_putc(r, b, '{');
    for (size_t i = 0; i < d->n; i++) {
        if (i)
            jbuf_put(r, b, o->item_sep.u.s, o->item_sep.n);
        if (o->indent >= 0)
            newline(r, b, o, level + 1);
        json_key(r, b, *order[i], o);
        jbuf_put(r, b, o->key_sep.u.s, o->key_sep.n);
        jv_dump_json(r, b, d->v[order[i] - d->k], o, level + 1);
    }
    if (o->indent >= 0)
        newline(r, b, o, level);
    jbuf_putc(r, b, '}');
}

/* indent < 0: none (one line). */
void jv_dump_json(struct jrender *r, struct jbuf *b, jv v, const struct json_opts *o, int level)
{
    if (level > JINJA_MAX_NEST)
        jinja__fail(r, "maximum recursion depth exceeded while encoding a JSON object");
    switch (v.kind) {
    case JV_NONE: jbuf_put(r, b, "null", 4); return;
    case JV_BOOL: jbuf_put(r, b, v.u.b ? "true" : "false", v.u.b ? 4 : 5); return;
    case JV_INT: jv_write(r, b, v); return;
    case JV_FLOAT:
        if (isnan(v.u.f) || isinf(v.u.f))
            jbuf_printf(r, b, "%s", isnan(v.u.f) ? "NaN" : v.u.f > 0 ? "Infinity" : "-Infinity");
        else
            jv_write(r, b, v);
        return;
    case JV_STR: json_str(r, b, v.u.s, v.n, o->ascii); return;
    case JV_DICT: json_dict(r, b, v, o, level); return;
    case JV_LIST:
    case JV_TUPLE:
        if (v.sub == SUB_GEN)
            break;
        if (!v.u.l->n) {
            jbuf_put(r, b, "[]", 2);
            return;
        }
        jbuf_putc(r, b, '[');
        for (size_t i = 0; i < v.u.l->n; i++) {
            if (i)
                jbuf_put(r, b, o->item_sep.u.s, o->item_sep.n);
            if (o->indent >= 0)
                newline(r, b, o, level + 1);
            jv_dump_json(r, b, v.u.l->v[i], o, level + 1);
        }
        if (o->indent >= 0)
            newline(r, b, o, level);
        jbuf_putc(r, b, ']');
        return;
    default: break;
    }
    jinja__fail(r, "Object of type %s is not JSON serializable", jv_type_name(v));
}
