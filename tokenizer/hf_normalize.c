/* hf_normalize.c: tokenizer.json normalizers (see hf.h): Unicode forms
 * through utf8proc, Prepend, Replace, Strip, Lowercase and Sequence. */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "../base/err.h"
#include "hf.h"

static int unicode_form(enum norm_kind k, const char *s, size_t n, struct strbuf *out)
{
    if (!n) return 0;
    int opt = UTF8PROC_STABLE | (k == NORM_NFC || k == NORM_NFKC ? UTF8PROC_COMPOSE : UTF8PROC_DECOMPOSE) |
              (k == NORM_NFKC || k == NORM_NFKD ? UTF8PROC_COMPAT : 0);
    utf8proc_uint8_t *r = NULL;
    utf8proc_ssize_t m = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &r, opt);
    if (m < 0) return -1;
    strbuf_append(out, r, (size_t)m);
    free(r);
    return 0;
}

/* Every occurrence of literal (or every match of re) replaced by with. */
static int replace_all(const char *literal, const struct regex *re, const char *with, const char *s, size_t n,
                       struct strbuf *out)
{
    size_t wlen = strlen(with);
    if (literal) {
        size_t ll = strlen(literal), at = 0;
        const char *hit;
        while (ll && at < n && (hit = memmem(s + at, n - at, literal, ll))) {
            strbuf_append(out, s + at, (size_t)(hit - s) - at);
            strbuf_append(out, with, wlen);
            at = (size_t)(hit - s) + ll;
        }
        strbuf_append(out, s + at, n - at);
        return 0;
    }
    struct spans sp = {0};
    int rc = regex_spans(re, s, n, &sp);
    for (int i = 0; !rc && i < sp.n; i++) {
        if (sp.v[i].match) strbuf_append(out, with, wlen);
        else strbuf_append(out, s + sp.v[i].start, sp.v[i].end - sp.v[i].start);
    }
    free(sp.v);
    return rc;
}

static void strip(bool left, bool right, const char *s, size_t n, struct strbuf *out)
{
    size_t a = 0, b = n;
    int k;
    while (left && a < b && uni_is_whitespace(utf8_next(s + a, b - a, &k))) a += (size_t)k;
    while (right && b > a) {
        size_t c = b - 1;
        while (c > a && ((unsigned char)s[c] & 0xC0) == 0x80) c--;
        if (!uni_is_whitespace(utf8_next(s + c, b - c, &k))) break;
        b = c;
    }
    strbuf_append(out, s + a, b - a);
}

static void lowercase(const char *s, size_t n, struct strbuf *out)
{
    char buf[4];
    int k;
    for (size_t i = 0; i < n; i += (size_t)k) {
        int32_t c = utf8proc_tolower(utf8_next(s + i, n - i, &k));
        strbuf_append(out, buf, (size_t)utf8_put(c, buf));
    }
}

static int sequence(const struct normalizer *z, const char *s, size_t n, struct strbuf *out)
{
    struct strbuf a = {0}, b = {0};
    strbuf_append(&a, s, n);
    int rc = 0;
    for (int i = 0; !rc && i < z->n_kids; i++) {
        b.len = 0;
        rc = normalize(&z->kids[i], a.s, a.len, &b);
        struct strbuf t = a;
        a = b;
        b = t;
    }
    if (!rc) strbuf_append(out, a.s, a.len);
    strbuf_free(&a);
    strbuf_free(&b);
    return rc;
}

int normalize(const struct normalizer *z, const char *s, size_t n, struct strbuf *out)
{
    if (!z) {
        strbuf_append(out, s, n);
        return 0;
    }
    switch (z->kind) {
    case NORM_NFC:
    case NORM_NFD:
    case NORM_NFKC:
    case NORM_NFKD: return unicode_form(z->kind, s, n, out);
    case NORM_PREPEND:
        if (n) strbuf_append(out, z->text, strlen(z->text));
        strbuf_append(out, s, n);
        return 0;
    case NORM_REPLACE: return replace_all(z->literal, &z->re, z->text, s, n, out);
    case NORM_STRIP: strip(z->left, z->right, s, n, out); return 0;
    case NORM_LOWERCASE: lowercase(s, n, out); return 0;
    case NORM_SEQUENCE: return sequence(z, s, n, out);
    }
    return -1;
}

void normalizer_free(struct normalizer *z)
{
    if (!z) return;
    for (int i = 0; i < z->n_kids; i++) normalizer_free(&z->kids[i]);
    free(z->kids);
    free(z->text);
    free(z->literal);
    regex_free(&z->re);
}
