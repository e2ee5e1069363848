/* hf_pretok.c: tokenizer.json pre-tokenizers (see hf.h): Split, ByteLevel,
 * Digits, Metaspace, Punctuation, Whitespace, WhitespaceSplit, Sequence.
 * Each splits a text piece into spans, matches of a pattern or not, then
 * keeps, isolates or merges the matches as tokenizers' SplitDelimiterBehavior
 * says. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "hf.h"

/* GPT-2's byte-to-unicode table: printable bytes show as themselves, the
 * others as U+0100 onwards in byte order. */
char bytelevel_char[256][3];
static int16_t bytelevel_rev[324];

static void bytelevel_build(void)
{
    int n = 0;
    for (int b = 0; b < 256; b++) {
        bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        int c = printable ? b : 256 + n++;
        utf8_put(c, bytelevel_char[b]);
    }
    for (int i = 0; i < 324; i++) bytelevel_rev[i] = -1;
    for (int b = 0; b < 256; b++) {
        int len;
        bytelevel_rev[utf8_next(bytelevel_char[b], strlen(bytelevel_char[b]), &len)] = (int16_t)b;
    }
}

void bytelevel_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, bytelevel_build);
}

int bytelevel_byte(int32_t c) { return c >= 0 && c < 324 ? bytelevel_rev[c] : -1; }

/* Each character for which pred holds is a match of its own. */
static void char_spans(const char *s, size_t n, bool (*pred)(int32_t c, const void *ctx), const void *ctx,
                       struct spans *out)
{
    out->n = 0;
    size_t last = 0;
    int k;
    for (size_t i = 0; i < n; i += (size_t)k) {
        int32_t c = utf8_next(s + i, n - i, &k);
        if (!pred(c, ctx)) continue;
        if (last < i) spans_add(out, last, i, false);
        spans_add(out, i, i + (size_t)k, true);
        last = i + (size_t)k;
    }
    if (n > last) spans_add(out, last, n, false);
    if (!n) spans_add(out, 0, 0, false);
}

static void literal_spans(const char *lit, const char *s, size_t n, struct spans *out)
{
    out->n = 0;
    size_t ll = strlen(lit), prev = 0;
    const char *hit;
    while (ll && prev < n && (hit = memmem(s + prev, n - prev, lit, ll))) {
        size_t at = (size_t)(hit - s);
        if (at > prev) spans_add(out, prev, at, false);
        spans_add(out, at, at + ll, true);
        prev = at + ll;
    }
    if (prev < n || !n) spans_add(out, prev, n, false);
}

/* The spans as pieces of out, per the behavior (tokenizers' split()). */
static void split_spans(struct spans *sp, enum split_behavior b, bool invert, const char *s, int flags,
                        struct pieces *out)
{
    for (int i = 0; i < sp->n; i++) sp->v[i].match ^= invert;
    int m = 0;
    bool prev = false;
    if (b == SPLIT_MERGED_NEXT) { /* backwards: a match joins the piece after it */
        int w = sp->n;
        for (int i = sp->n - 1; i >= 0; i--) {
            struct span x = sp->v[i];
            if (x.match && !prev && w < sp->n) sp->v[w].start = x.start;
            else sp->v[--w] = x;
            prev = x.match;
        }
        m = sp->n - w;
        memmove(sp->v, sp->v + w, (size_t)m * sizeof(*sp->v));
    } else {
        for (int i = 0; i < sp->n; i++) {
            struct span x = sp->v[i];
            bool merge = b == SPLIT_CONTIGUOUS ? x.match == prev : b == SPLIT_MERGED_PREV && x.match && !prev;
            prev = x.match;
            if (merge && m) sp->v[m - 1].end = x.end;
            else sp->v[m++] = x;
        }
    }
    for (int i = 0; i < m; i++)
        if (b != SPLIT_REMOVED || !sp->v[i].match)
            pieces_add(out, s + sp->v[i].start, sp->v[i].end - sp->v[i].start, -1,
                       sp->v[i].start == 0 ? flags : 0);
}

static bool is_numeric(int32_t c, const void *ctx) { return (void)ctx, uni_is_numeric(c); }
static bool is_punct(int32_t c, const void *ctx) { return (void)ctx, uni_is_punct(c); }
static bool is_space(int32_t c, const void *ctx) { return (void)ctx, uni_is_whitespace(c); }
static bool is_char(int32_t c, const void *ctx) { return c == *(const int32_t *)ctx; }

/* The bytes of s shown in the byte-level alphabet, as one piece. */
static void bytelevel_map(const char *s, size_t n, int flags, struct pieces *out, struct strbuf *tmp)
{
    tmp->len = 0;
    for (size_t i = 0; i < n; i++) {
        const char *c = bytelevel_char[(unsigned char)s[i]];
        strbuf_append(tmp, c, c[1] ? 2 : 1);
    }
    pieces_add(out, tmp->s, tmp->len, -1, flags);
}

static int bytelevel(const struct pretokenizer *p, const char *s, size_t n, int flags, struct pieces *out)
{
    struct strbuf t = {0};
    if (p->flag && (!n || s[0] != ' ')) strbuf_append(&t, " ", 1);
    strbuf_append(&t, s, n);
    struct spans sp = {0};
    int rc = 0;
    struct strbuf tmp = {0};
    if (p->use_regex) {
        rc = regex_spans(&p->re, t.s, t.len, &sp);
        for (int i = 0; !rc && i < sp.n; i++)
            if (sp.v[i].end > sp.v[i].start)
                bytelevel_map(t.s + sp.v[i].start, sp.v[i].end - sp.v[i].start, sp.v[i].start ? 0 : flags, out, &tmp);
    } else {
        bytelevel_map(t.s, t.len, flags, out, &tmp);
    }
    strbuf_free(&tmp);
    strbuf_free(&t);
    free(sp.v);
    return rc;
}

static void metaspace(const struct pretokenizer *p, const char *s, size_t n, int flags, struct pieces *out,
                      struct spans *sp)
{
    struct strbuf t = {0};
    size_t rl = strlen(p->replacement);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ') strbuf_append(&t, p->replacement, rl);
        else strbuf_append(&t, s + i, 1);
    }
    bool starts = t.len >= rl && !memcmp(t.s, p->replacement, rl);
    if (!starts && (p->prepend == PREPEND_ALWAYS || (p->prepend == PREPEND_FIRST && (flags & PIECE_FIRST)))) {
        struct strbuf u = {0};
        strbuf_append(&u, p->replacement, rl);
        strbuf_append(&u, t.s, t.len);
        strbuf_free(&t);
        t = u;
    }
    if (p->flag) {
        int len;
        int32_t c = utf8_next(p->replacement, rl, &len);
        char_spans(t.s, t.len, is_char, &c, sp);
        split_spans(sp, SPLIT_MERGED_NEXT, false, t.s, flags, out);
    } else {
        pieces_add(out, t.s, t.len, -1, flags);
    }
    strbuf_free(&t);
}

/* One pre-tokenizer (not a Sequence) on one text piece. */
static int pretok_one(const struct pretokenizer *p, const char *s, size_t n, int flags, struct pieces *out,
                      struct spans *sp)
{
    switch (p->kind) {
    case PRE_SPLIT:
        if (p->literal) literal_spans(p->literal, s, n, sp);
        else if (regex_spans(&p->re, s, n, sp)) return -1;
        split_spans(sp, p->behavior, p->invert, s, flags, out);
        return 0;
    case PRE_BYTELEVEL: return bytelevel(p, s, n, flags, out);
    case PRE_DIGITS:
        char_spans(s, n, is_numeric, NULL, sp);
        split_spans(sp, p->flag ? SPLIT_ISOLATED : SPLIT_CONTIGUOUS, false, s, flags, out);
        return 0;
    case PRE_METASPACE: metaspace(p, s, n, flags, out, sp); return 0;
    case PRE_PUNCTUATION:
        char_spans(s, n, is_punct, NULL, sp);
        split_spans(sp, p->behavior, false, s, flags, out);
        return 0;
    case PRE_WHITESPACE:
        if (regex_spans(&p->re, s, n, sp)) return -1;
        split_spans(sp, SPLIT_REMOVED, true, s, flags, out);
        return 0;
    case PRE_WHITESPACE_SPLIT:
        char_spans(s, n, is_space, NULL, sp);
        split_spans(sp, SPLIT_REMOVED, false, s, flags, out);
        return 0;
    case PRE_SEQUENCE: break;
    }
    return -1;
}

static int sequence(const struct pretokenizer *p, const struct pieces *in, struct pieces *out)
{
    struct pieces a = {0}, b = {0};
    const struct pieces *src = in;
    int rc = 0;
    for (int i = 0; !rc && i < p->n_kids; i++) {
        struct pieces *dst = i == p->n_kids - 1 ? out : (src == &a ? &b : &a);
        if (dst != out) pieces_reset(dst);
        rc = pretokenize(&p->kids[i], src, dst);
        src = dst;
    }
    if (!p->n_kids)
        for (int i = 0; i < in->n; i++) pieces_add(out, piece_text(in, i), in->v[i].len, in->v[i].id, in->v[i].flags);
    pieces_free(&a);
    pieces_free(&b);
    return rc;
}

int pretokenize(const struct pretokenizer *p, const struct pieces *in, struct pieces *out)
{
    if (p && p->kind == PRE_SEQUENCE) return sequence(p, in, out);
    struct spans sp = {0};
    int rc = 0;
    for (int i = 0; !rc && i < in->n; i++) {
        const struct piece *x = &in->v[i];
        if (x->id >= 0 || !p) pieces_add(out, piece_text(in, i), x->len, x->id, x->flags);
        else rc = pretok_one(p, piece_text(in, i), x->len, x->flags, out, &sp);
    }
    free(sp.v);
    return rc;
}

void pretokenizer_free(struct pretokenizer *p)
{
    if (!p) return;
    for (int i = 0; i < p->n_kids; i++) pretokenizer_free(&p->kids[i]);
    free(p->kids);
    free(p->literal);
    regex_free(&p->re);
}
