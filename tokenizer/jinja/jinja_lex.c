/* jinja_lex.c: template text -> tokens, as jinja2's lexer with trim_blocks
 * and lstrip_blocks: text (T_DATA) between tags, and inside {% %} / {{ }}
 * names, strings, numbers and operators. Whitespace control is applied
 * here: {%- / -%} strip all whitespace before / after the tag, lstrip_blocks
 * removes the blanks between a line's start and {% or {#, trim_blocks the
 * first newline after %} or #}; a + (as in {%+ or +%}) turns those off.
 * Comments are dropped and {% raw %} bodies become text. Brackets must
 * balance before a tag can end, as in jinja2. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../../base/err.h"
#include "jinja_internal.h"

struct lexpos {
    const char *src;
    size_t len, pos;
    int line;
};

void jinja__syntax(struct jlexer *lx, int line, const char *fmt, ...)
{
    va_list ap;
    int k = snprintf(lx->err, lx->err_cap, "line %d: ", line);
    va_start(ap, fmt);
    if (k >= 0 && (size_t)k < lx->err_cap)
        vsnprintf(lx->err + k, lx->err_cap - (size_t)k, fmt, ap);
    va_end(ap);
    longjmp(*lx->fail, 1);
}

static struct jtok *emit(struct jlexer *lx, int kind, int line, const char *s, size_t n)
{
    if (lx->ntoks == lx->cap) {
        size_t cap = lx->cap ? lx->cap * 2 : 256;
        struct jtok *t = arena_alloc(lx->arena, cap * sizeof(*t));
        if (lx->ntoks)
            memcpy(t, lx->toks, lx->ntoks * sizeof(*t));
        lx->toks = t;
        lx->cap = cap;
    }
    struct jtok *t = &lx->toks[lx->ntoks++];
    memset(t, 0, sizeof(*t));
    t->kind = (uint8_t)kind;
    t->line = line;
    t->s = s;
    t->n = n;
    return t;
}

static bool ascii_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static int count_lines(const char *s, size_t n)
{
    int k = 0;
    for (size_t i = 0; i < n; i++)
        k += s[i] == '\n';
    return k;
}

/* Length of s[0..n) without its trailing whitespace (Python's rstrip). */
static size_t rstrip_len(const char *s, size_t n)
{
    while (n) {
        size_t b = n - 1;
        while (b && ((unsigned char)s[b] & 0xC0) == 0x80 && n - b < 4)
            b--;
        uint32_t cp;
        u8_decode(s + b, n - b, &cp);
        if (!py_isspace(cp))
            break;
        n = b;
    }
    return n;
}

/* lstrip_blocks: the text minus the blanks between its last line start and
 * the tag, when only blanks are there. */
static size_t lstrip_len(const char *s, size_t n, bool line_starting)
{
    size_t l = n;
    while (l && s[l - 1] != '\n')
        l--;
    if (l == 0 && !line_starting)
        return n;
    if (l == n)
        return n;
    return rstrip_len(s + l, n - l) == 0 ? l : n;
}

static void skip_space(struct lexpos *p)
{
    while (p->pos < p->len && ascii_space(p->src[p->pos])) {
        p->line += p->src[p->pos] == '\n';
        p->pos++;
    }
}

/* Position of the first "a b" two-character sequence at or after from. */
static size_t find2(const struct lexpos *p, size_t from, char a, char b)
{
    for (size_t i = from; i + 1 < p->len; i++)
        if (p->src[i] == a && p->src[i + 1] == b)
            return i;
    return (size_t)-1;
}

/* After an end tag: -: all whitespace; trim (plain %} or #}): one newline. */
static void after_end(struct lexpos *p, char sign, bool trim, bool *line_starting)
{
    if (sign == '-')
        skip_space(p);
    else if (trim && sign != '+' && p->pos < p->len && p->src[p->pos] == '\n') {
        p->pos++;
        p->line++;
    }
    *line_starting = p->pos > 0 && p->src[p->pos - 1] == '\n';
}

static void lex_comment(struct jlexer *lx, struct lexpos *p, bool *line_starting)
{
    size_t j = find2(p, p->pos, '#', '}');
    if (j == (size_t)-1)
        jinja__syntax(lx, p->line, "Missing end of comment tag");
    char sign = j > p->pos && (p->src[j - 1] == '-' || p->src[j - 1] == '+') ? p->src[j - 1] : 0;
    p->line += count_lines(p->src + p->pos, j - p->pos);
    p->pos = j + 2;
    after_end(p, sign, true, line_starting);
}

/* {% raw %} ... {% endraw %}: p is past "{%" (and its sign); true when it
 * was a raw block, emitted as text. */
static bool lex_raw(struct jlexer *lx, struct lexpos *p, bool *line_starting)
{
    struct lexpos q = *p;
    skip_space(&q);
    if (q.len - q.pos < 3 || memcmp(q.src + q.pos, "raw", 3))
        return false;
    q.pos += 3;
    skip_space(&q);
    char sign = q.pos < q.len && q.src[q.pos] == '-' ? '-' : 0;
    if (q.len - q.pos - (sign ? 1 : 0) < 2 || memcmp(q.src + q.pos + (sign ? 1 : 0), "%}", 2))
        return false;
    q.pos += 2 + (sign ? 1 : 0);
    if (sign)
        skip_space(&q);
    for (size_t at = q.pos;; at++) {
        size_t j = find2(&q, at, '{', '%');
        if (j == (size_t)-1)
            jinja__syntax(lx, p->line, "Missing end of raw directive");
        struct lexpos e = q;
        e.pos = j + 2;
        char s2 = e.pos < e.len && (e.src[e.pos] == '-' || e.src[e.pos] == '+') ? e.src[e.pos++] : 0;
        skip_space(&e);
        if (e.len - e.pos < 6 || memcmp(e.src + e.pos, "endraw", 6))
            continue;
        e.pos += 6;
        skip_space(&e);
        char s3 = e.pos < e.len && (e.src[e.pos] == '-' || e.src[e.pos] == '+') ? e.src[e.pos++] : 0;
        if (e.len - e.pos < 2 || memcmp(e.src + e.pos, "%}", 2))
            continue;
        size_t n = j - q.pos;
        if (s2 == '-')
            n = rstrip_len(q.src + q.pos, n);
        else if (s2 != '+')
            n = lstrip_len(q.src + q.pos, n, false);
        if (n)
            emit(lx, T_DATA, q.line, q.src + q.pos, n);
        e.line = q.line + count_lines(q.src + q.pos, e.pos - q.pos);
        e.pos += 2;
        after_end(&e, s3, true, line_starting);
        *p = e;
        return true;
    }
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* One escape after a backslash at s[*i] (Python's unicode-escape); appends
 * its bytes to out, returns how many. */
static size_t unescape(const char *s, size_t n, size_t *i, char *out)
{
    char c = s[*i];
    static const char from[] = "nrtbfva\\'\"", to[] = "\n\r\t\b\f\v\a\\'\"";
    const char *k = strchr(from, c);
    if (c && k) {
        (*i)++;
        out[0] = to[k - from];
        return 1;
    }
    int digits = c == 'x' ? 2 : c == 'u' ? 4 : c == 'U' ? 8 : 0;
    if (digits && *i + (size_t)digits < n) {
        uint32_t cp = 0;
        int d;
        for (d = 1; d <= digits && hexval(s[*i + (size_t)d]) >= 0; d++)
            cp = cp * 16 + (uint32_t)hexval(s[*i + (size_t)d]);
        if (d > digits && cp < 0x110000) {
            *i += (size_t)digits + 1;
            return u8_encode(cp >= 0xD800 && cp < 0xE000 ? 0xFFFD : cp, out); /* no lone surrogates in UTF-8 */
        }
    }
    if (c >= '0' && c <= '7') {
        uint32_t cp = 0;
        for (int d = 0; d < 3 && *i < n && s[*i] >= '0' && s[*i] <= '7'; d++)
            cp = cp * 8 + (uint32_t)(s[(*i)++] - '0');
        return u8_encode(cp, out);
    }
    out[0] = '\\';
    return 1;
}

static void lex_string(struct jlexer *lx, struct lexpos *p)
{
    char q = p->src[p->pos];
    size_t start = ++p->pos, end = start;
    while (end < p->len && p->src[end] != q)
        end += p->src[end] == '\\' && end + 1 < p->len ? 2 : 1;
    if (end >= p->len)
        jinja__syntax(lx, p->line, "unexpected char %s at %zu", q == '"' ? "'\"'" : "\"'\"", start - 1);
    char *out = arena_alloc(lx->arena, (end - start) * 4 + 1);
    size_t o = 0;
    for (size_t i = start; i < end;) {
        if (p->src[i] == '\\') {
            i++;
            o += unescape(p->src, end, &i, out + o);
        } else
            out[o++] = p->src[i++];
    }
    out[o] = 0;
    emit(lx, T_STRING, p->line, out, o);
    p->line += count_lines(p->src + start, end - start);
    p->pos = end + 1;
}

static void lex_number(struct jlexer *lx, struct lexpos *p)
{
    const char *s = p->src;
    size_t i = p->pos, n = p->len;
    bool is_float = false;
    while (i < n && ((s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
        i++;
    if (i + 1 < n && s[i] == '.' && s[i + 1] >= '0' && s[i + 1] <= '9' && (p->pos == 0 || s[p->pos - 1] != '.')) {
        is_float = true;
        for (i++; i < n && ((s[i] >= '0' && s[i] <= '9') || s[i] == '_');)
            i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        size_t j = i + 1 + (i + 1 < n && (s[i + 1] == '+' || s[i + 1] == '-'));
        if (j < n && s[j] >= '0' && s[j] <= '9') {
            is_float = true;
            for (i = j; i < n && s[i] >= '0' && s[i] <= '9';)
                i++;
        }
    }
    char num[64];
    size_t k = 0;
    for (size_t j = p->pos; j < i && k + 1 < sizeof(num); j++)
        if (s[j] != '_')
            num[k++] = s[j];
    num[k] = 0;
    struct jtok *t = emit(lx, is_float ? T_FLOAT : T_INT, p->line, s + p->pos, i - p->pos);
    if (is_float)
        t->f = strtod(num, NULL);
    else
        t->i = strtoll(num, NULL, 10);
    p->pos = i;
}

static size_t op_len(const char *s, size_t n)
{
    static const char *two[] = {"//", "**", "==", "!=", "<=", ">="};
    for (size_t i = 0; i < sizeof(two) / sizeof(*two); i++)
        if (n >= 2 && s[0] == two[i][0] && s[1] == two[i][1])
            return 2;
    return strchr("+-/*%~[](){}<>=.:|,;!", s[0]) && s[0] ? 1 : 0;
}

/* The end of a tag at p (depth 0 only): its length, 0 when none; *sign. */
static size_t tag_end(const struct lexpos *p, char kind, char *sign)
{
    const char *s = p->src + p->pos;
    size_t n = p->len - p->pos;
    char c = kind == '%' ? '%' : '}';
    *sign = 0;
    if (n >= 3 && (s[0] == '-' || (s[0] == '+' && kind == '%')) && s[1] == c && s[2] == '}') {
        *sign = s[0];
        return 3;
    }
    return n >= 2 && s[0] == c && s[1] == '}' ? 2 : 0;
}

static void bracket(struct jlexer *lx, struct lexpos *p, char *stack, int *depth, char c)
{
    const char *open = "([{", *close = ")]}";
    if (strchr(open, c)) {
        if (*depth >= 64)
            jinja__syntax(lx, p->line, "brackets nested too deeply");
        stack[(*depth)++] = close[strchr(open, c) - open];
    } else if (strchr(close, c)) {
        if (*depth == 0)
            jinja__syntax(lx, p->line, "unexpected '%c'", c);
        if (stack[*depth - 1] != c)
            jinja__syntax(lx, p->line, "unexpected '%c', expected '%c'", c, stack[*depth - 1]);
        (*depth)--;
    }
}

/* The inside of {% %} or {{ }} up to and including its end. */
static void lex_tag(struct jlexer *lx, struct lexpos *p, char kind, bool *line_starting)
{
    char stack[64];
    int depth = 0;
    emit(lx, kind == '%' ? T_BLOCK_BEGIN : T_VAR_BEGIN, p->line, NULL, 0);
    for (;;) {
        skip_space(p);
        char sign;
        size_t e = depth == 0 ? tag_end(p, kind, &sign) : 0;
        if (e) {
            emit(lx, kind == '%' ? T_BLOCK_END : T_VAR_END, p->line, NULL, 0);
            p->pos += e;
            after_end(p, sign, kind == '%', line_starting);
            return;
        }
        if (p->pos >= p->len)
            jinja__syntax(lx, p->line, "unexpected end of template, expected end of %s",
                          kind == '%' ? "statement block" : "print statement");
        char c = p->src[p->pos];
        size_t k;
        if (c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
            for (k = p->pos + 1; k < p->len && (p->src[k] == '_' || (p->src[k] >= 'a' && p->src[k] <= 'z') ||
                                               (p->src[k] >= 'A' && p->src[k] <= 'Z') ||
                                               (p->src[k] >= '0' && p->src[k] <= '9'));)
                k++;
            emit(lx, T_NAME, p->line, p->src + p->pos, k - p->pos);
            p->pos = k;
        } else if (c >= '0' && c <= '9')
            lex_number(lx, p);
        else if (c == '\'' || c == '"')
            lex_string(lx, p);
        else if ((k = op_len(p->src + p->pos, p->len - p->pos))) {
            bracket(lx, p, stack, &depth, c);
            emit(lx, T_OP, p->line, p->src + p->pos, k);
            p->pos += k;
        } else
            jinja__syntax(lx, p->line, "unexpected char '%c' at %zu", c, p->pos);
    }
}

void jinja__lex(struct jlexer *lx, const char *src, size_t len)
{
    struct lexpos p = {src, len, 0, 1};
    bool line_starting = true;
    while (p.pos < len) {
        size_t i = p.pos;
        while (i + 1 < len && !(src[i] == '{' && (src[i + 1] == '{' || src[i + 1] == '%' || src[i + 1] == '#')))
            i++;
        if (i + 1 >= len) {
            emit(lx, T_DATA, p.line, src + p.pos, len - p.pos);
            break;
        }
        char kind = src[i + 1];
        char sign = i + 2 < len && (src[i + 2] == '-' || src[i + 2] == '+') ? src[i + 2] : 0;
        size_t n = i - p.pos;
        if (sign == '-')
            n = rstrip_len(src + p.pos, n);
        else if (sign != '+' && kind != '{')
            n = lstrip_len(src + p.pos, n, line_starting);
        if (n)
            emit(lx, T_DATA, p.line, src + p.pos, n);
        p.line += count_lines(src + p.pos, i - p.pos);
        p.pos = i + 2 + (sign ? 1 : 0);
        if (kind == '#')
            lex_comment(lx, &p, &line_starting);
        else if (kind == '%' && lex_raw(lx, &p, &line_starting))
            continue;
        else
            lex_tag(lx, &p, kind == '%' ? '%' : '}', &line_starting);
    }
    emit(lx, T_EOF, p.line, NULL, 0);
}
