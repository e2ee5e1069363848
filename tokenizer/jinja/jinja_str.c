/* jinja_str.c: Python's str operations on UTF-8 text, counted in code
 * points as Python counts them: len, slicing (negative steps too),
 * strip/lstrip/rstrip (whitespace as str.isspace, or given characters),
 * lower/upper/title/capitalize (utf8proc's simple case mappings), replace,
 * split, str.format and % formatting (the common cases). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "jinja_internal.h"

size_t u8_decode(const char *s, size_t n, uint32_t *cp)
{
    const unsigned char *u = (const unsigned char *)s;
    int len = u[0] < 0x80 ? 1 : (u[0] & 0xE0) == 0xC0 ? 2 : (u[0] & 0xF0) == 0xE0 ? 3 : (u[0] & 0xF8) == 0xF0 ? 4 : 0;
    if (len == 0 || (size_t)len > n) {
        *cp = u[0];
        return 1;
    }
    uint32_t c = len == 1 ? u[0] : u[0] & (0x7F >> len);
    for (int i = 1; i < len; i++) {
        if ((u[i] & 0xC0) != 0x80) {
            *cp = u[0];
            return 1;
        }
        c = c << 6 | (u[i] & 0x3F);
    }
    *cp = c;
    return (size_t)len;
}

size_t u8_encode(uint32_t cp, char *out)
{
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | cp >> 6);
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | cp >> 12);
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | cp >> 18);
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

size_t u8_count(const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += ((unsigned char)s[i] & 0xC0) != 0x80;
    return k;
}

bool py_isspace(uint32_t cp)
{
    if (cp < 0x80)
        return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20);
    return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
           cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

static bool in_chars(uint32_t cp, const char *chars, size_t n)
{
    if (!chars)
        return py_isspace(cp);
    for (size_t i = 0; i < n;) {
        uint32_t c;
        i += u8_decode(chars + i, n - i, &c);
        if (c == cp)
            return true;
    }
    return false;
}

/* Start of the code point that ends at s[n). */
static size_t prev_cp(const char *s, size_t n)
{
    size_t b = n - 1;
    while (b && ((unsigned char)s[b] & 0xC0) == 0x80 && n - b < 4)
        b--;
    return b;
}

jv str_strip(struct jrender *r, jv s, const char *chars, size_t nchars, int which)
{
    (void)r;
    size_t a = 0, e = s.n;
    uint32_t cp;
    while ((which & 1) && a < e) {
        size_t k = u8_decode(s.u.s + a, e - a, &cp);
        if (!in_chars(cp, chars, nchars))
            break;
        a += k;
    }
    while ((which & 2) && e > a) {
        size_t b = prev_cp(s.u.s, e);
        if (b < a)
            b = a;
        u8_decode(s.u.s + b, e - b, &cp);
        if (!in_chars(cp, chars, nchars))
            break;
        e = b;
    }
    return jv_str(s.u.s + a, e - a);
}

static bool cased(uint32_t cp)
{
    utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
    return c == UTF8PROC_CATEGORY_LU || c == UTF8PROC_CATEGORY_LL || c == UTF8PROC_CATEGORY_LT;
}

/* mode: 0 lower, 1 upper, 2 str.title, 3 str.capitalize, 4 the title filter
 * (a capital after the start and after runs of - ( { [ < and whitespace). */
jv str_case(struct jrender *r, jv s, int mode)
{
    struct jbuf b = {0};
    bool start = true;
    for (size_t i = 0; i < s.n;) {
        uint32_t cp;
        size_t k = u8_decode(s.u.s + i, s.n - i, &cp);
        utf8proc_int32_t c = (utf8proc_int32_t)cp;
        bool up = mode == 1 || ((mode == 2 || mode == 3 || mode == 4) && start);
        if (cp == 0xDF && up) { /* Python's full case mapping: ß -> SS (Ss as a title) */
            jbuf_put(r, &b, mode == 1 ? "SS" : "Ss", 2);
            start = mode == 4 ? false : mode == 2 ? false : start && mode != 3;
            i += k;
            continue;
        }
        c = up ? (mode == 1 ? utf8proc_toupper(c) : utf8proc_totitle(c)) : utf8proc_tolower(c);
        if (mode == 2)
            start = !cased(cp);
        else if (mode == 3)
            start = false;
        else if (mode == 4)
            start = py_isspace(cp) || (cp < 0x80 && strchr("-({[<", (int)cp) && cp);
        char enc[4];
        jbuf_put(r, &b, enc, u8_encode((uint32_t)c, enc));
        i += k;
    }
    return jv_buf(&b);
}

jv str_replace(struct jrender *r, jv s, jv old, jv new_, int64_t count)
{
    jinja__charge(r, s.n);
    struct jbuf b = {0};
    size_t i = 0;
    int64_t done = 0;
    if (!old.n) {
        for (; i <= s.n && (count < 0 || done < count); done++) {
            jbuf_put(r, &b, new_.u.s, new_.n);
            if (i == s.n) {
                i++;
                break;
            }
            uint32_t cp;
            size_t k = u8_decode(s.u.s + i, s.n - i, &cp);
            jbuf_put(r, &b, s.u.s + i, k);
            i += k;
        }
        if (i < s.n)
            jbuf_put(r, &b, s.u.s + i, s.n - i);
        return jv_buf(&b);
    }
    while (i < s.n && (count < 0 || done < count)) {
        const char *hit = memmem(s.u.s + i, s.n - i, old.u.s, old.n);
        if (!hit)
            break;
        jbuf_put(r, &b, s.u.s + i, (size_t)(hit - (s.u.s + i)));
        jbuf_put(r, &b, new_.u.s, new_.n);
        i = (size_t)(hit - s.u.s) + old.n;
        done++;
    }
    jbuf_put(r, &b, s.u.s + i, s.n - i);
    return jv_buf(&b);
}

size_t str_line_end(const char *s, size_t n, size_t i, size_t *next)
{
    for (size_t j = i; j < n; j++) {
        unsigned char c = (unsigned char)s[j], c1 = j + 1 < n ? (unsigned char)s[j + 1] : 0;
        if (c == '\n' || c == '\v' || c == '\f' || (c >= 0x1c && c <= 0x1e) || c == '\r') {
            *next = j + 1 + (c == '\r' && c1 == '\n');
            return j;
        }
        if (c == 0xC2 && c1 == 0x85) { /* U+0085 */
            *next = j + 2;
            return j;
        }
        if (c == 0xE2 && c1 == 0x80 && j + 2 < n && ((unsigned char)s[j + 2] | 1) == 0xA9) { /* U+2028, U+2029 */
            *next = j + 3;
            return j;
        }
    }
    *next = n + 1;
    return n;
}

static size_t skip_ws(jv s, size_t i)
{
    while (i < s.n) {
        uint32_t cp;
        size_t k = u8_decode(s.u.s + i, s.n - i, &cp);
        if (!py_isspace(cp))
            break;
        i += k;
    }
    return i;
}

/* str.split(sep=None, maxsplit=-1) */
jv str_split(struct jrender *r, jv s, const jv *sep, int64_t maxsplit)
{
    jv out = jv_list(r, 4);
    jinja__charge(r, s.n);
    if (sep && !sep->n)
        jinja__fail(r, "empty separator");
    size_t i = sep ? 0 : skip_ws(s, 0);
    while (sep || i < s.n) {
        if (maxsplit >= 0 && (int64_t)out.u.l->n >= maxsplit) {
            size_t e = s.n;
            if (!sep) /* the rest, trailing whitespace dropped */
                e = str_strip(r, jv_str(s.u.s + i, s.n - i), NULL, 0, 2).n + i;
            jv_push(r, out, jv_str(s.u.s + i, e - i));
            return out;
        }
        size_t j = i;
        if (sep) {
            const char *hit = memmem(s.u.s + i, s.n - i, sep->u.s, sep->n);
            j = hit ? (size_t)(hit - s.u.s) : s.n;
            jv_push(r, out, jv_str(s.u.s + i, j - i));
            if (!hit)
                return out;
            i = j + sep->n;
            continue;
        }
        while (j < s.n) {
            uint32_t cp;
            size_t k = u8_decode(s.u.s + j, s.n - j, &cp);
            if (py_isspace(cp))
                break;
            j += k;
        }
        jv_push(r, out, jv_str(s.u.s + i, j - i));
        i = skip_ws(s, j);
    }
    return out;
}

void jinja__slice_indices(struct jrender *r, int64_t len, const int64_t *start, const int64_t *stop,
                          const int64_t *step, int64_t *a, int64_t *e, int64_t *st)
{
    *st = step ? *step : 1;
    if (*st == 0)
        jinja__fail(r, "slice step cannot be zero");
    int64_t lower = *st > 0 ? 0 : -1, upper = *st > 0 ? len : len - 1;
    const int64_t *in[2] = {start, stop};
    int64_t *out[2] = {a, e};
    for (int k = 0; k < 2; k++) {
        if (!in[k]) {
            *out[k] = (k == 0) == (*st > 0) ? lower : upper;
            continue;
        }
        int64_t v = *in[k];
        if (v < 0) {
            v += len;
            if (v < lower)
                v = lower;
        } else if (v > upper)
            v = upper;
        *out[k] = v;
    }
}

jv str_slice_cp(struct jrender *r, jv s, const int64_t *start, const int64_t *stop, const int64_t *step)
{
    size_t n = u8_count(s.u.s, s.n);
    size_t *off = NULL;
    jinja__charge(r, s.n * 4);
    if (n != s.n) { /* byte offset of each code point */
        off = arena_alloc(&r->arena, (n + 1) * sizeof(*off));
        for (size_t i = 0, k = 0; i <= s.n; i++)
            if (i == s.n || ((unsigned char)s.u.s[i] & 0xC0) != 0x80)
                off[k++] = i;
    }
    int64_t a, e, st;
    jinja__slice_indices(r, (int64_t)n, start, stop, step, &a, &e, &st);
    if (st == 1 && a <= e)
        return off ? jv_str(s.u.s + off[a], off[e] - off[a]) : jv_str(s.u.s + a, (size_t)(e - a));
    struct jbuf b = {0};
    for (int64_t i = a; st > 0 ? i < e : i > e; i += st) {
        size_t from = off ? off[i] : (size_t)i, to = off ? off[i + 1] : (size_t)i + 1;
        jbuf_put(r, &b, s.u.s + from, to - from);
    }
    return jv_buf(&b);
}

/* str.format: {} {0} {name}, !r / !s, {{ }}; format specs other than
 * empty are not supported. */
jv str_format(struct jrender *r, jv fmt, jv *args, int nargs, const char **kwn, jv *kwv, int nkw)
{
    struct jbuf b = {0};
    const char *s = fmt.u.s;
    int autonum = 0;
    for (size_t i = 0; i < fmt.n; i++) {
        if ((s[i] == '{' || s[i] == '}') && i + 1 < fmt.n && s[i + 1] == s[i]) {
            jbuf_putc(r, &b, s[i++]);
            continue;
        }
        if (s[i] == '}')
            jinja__fail(r, "Single '}' encountered in format string");
        if (s[i] != '{') {
            jbuf_putc(r, &b, s[i]);
            continue;
        }
        const char *end = memchr(s + i, '}', fmt.n - i);
        if (!end)
            jinja__fail(r, "Single '{' encountered in format string");
        size_t a = i + 1, e = (size_t)(end - s), ne = a;
        while (ne < e && s[ne] != '!' && s[ne] != ':')
            ne++;
        bool repr = ne + 1 < e && s[ne] == '!' && s[ne + 1] == 'r';
        jv v;
        if (ne == a || (s[a] >= '0' && s[a] <= '9')) {
            int idx = ne == a ? autonum++ : atoi(s + a);
            if (idx >= nargs)
                jinja__fail(r, "tuple index out of range"); /* the sandbox's formatter says so */
            v = args[idx];
        } else {
            int k = 0;
            while (k < nkw && (strlen(kwn[k]) != ne - a || memcmp(kwn[k], s + a, ne - a)))
                k++;
            if (k == nkw)
                jinja__fail(r, "'%.*s'", (int)(ne - a), s + a);
            v = kwv[k];
        }
        if (repr)
            jv_repr(r, &b, v);
        else
            jv_write(r, &b, v);
        i = e;
    }
    return jv_buf(&b);
}

/* fmt % args: %s %r %d %i %f (with a precision) and %%. */
jv str_percent(struct jrender *r, jv fmt, jv args)
{
    struct jbuf b = {0};
    const char *s = fmt.u.s;
    size_t used = 0, have = args.kind == JV_TUPLE ? args.u.l->n : 1;
    for (size_t i = 0; i < fmt.n; i++) {
        if (s[i] != '%') {
            jbuf_putc(r, &b, s[i]);
            continue;
        }
        size_t j = i + 1;
        int prec = -1;
        if (j < fmt.n && s[j] == '.')
            for (prec = 0, j++; j < fmt.n && s[j] >= '0' && s[j] <= '9'; j++)
                prec = prec * 10 + (s[j] - '0');
        char c = j < fmt.n ? s[j] : 0;
        i = j;
        if (c == '%') {
            jbuf_putc(r, &b, '%');
            continue;
        }
        if (!c || !strchr("srdif", c))
            jinja__fail(r, "unsupported format character '%c'", c ? c : '?');
        if (used >= have)
            jinja__fail(r, "not enough arguments for format string");
        jv v = args.kind == JV_TUPLE ? args.u.l->v[used] : args;
        used++;
        if (c == 's')
            jv_write(r, &b, v);
        else if (c == 'r')
            jv_repr(r, &b, v);
        else if (v.kind != JV_INT && v.kind != JV_FLOAT && v.kind != JV_BOOL)
            jinja__fail(r, "%%%c format: a real number is required, not %s", c, jv_type_name(v));
        else if (c == 'f')
            jbuf_printf(r, &b, "%.*f", prec < 0 ? 6 : prec,
                        v.kind == JV_FLOAT ? v.u.f : v.kind == JV_INT ? (double)v.u.i : (double)v.u.b);
        else
            jbuf_printf(r, &b, "%lld",
                        (long long)(v.kind == JV_FLOAT ? (int64_t)v.u.f : v.kind == JV_INT ? v.u.i : v.u.b));
    }
    if (used < have)
        jinja__fail(r, "not all arguments converted during string formatting");
    return jv_buf(&b);
}
