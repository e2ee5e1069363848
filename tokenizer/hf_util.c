/* hf_util.c: the containers, regular expressions and Unicode classes the
 * tokenizer.json pipeline shares (see hf.h). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>
#include <xxhash.h>

#include "../base/err.h"
#include "hf.h"

void ids_push(struct ids *a, int32_t id)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? 2 * a->cap : 64;
        a->v = xrealloc(a->v, (size_t)a->cap * sizeof(*a->v));
    }
    a->v[a->n++] = id;
}

void pieces_add(struct pieces *p, const char *s, size_t len, int32_t id, int flags)
{
    if (id < 0 && !len) return; /* tokenizers drops empty splits */
    if (p->n == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 16;
        p->v = xrealloc(p->v, (size_t)p->cap * sizeof(*p->v));
    }
    p->v[p->n++] = (struct piece){.off = p->text.len, .len = len, .id = id, .flags = flags};
    strbuf_append(&p->text, s, len);
}

void pieces_reset(struct pieces *p)
{
    p->n = 0;
    p->text.len = 0;
}

void pieces_free(struct pieces *p)
{
    free(p->v);
    strbuf_free(&p->text);
    *p = (struct pieces){0};
}

/* ---- strmap ---- */
/* Keys of up to 8 bytes (most tokens) live in their slot, longer ones in the
 * keys arena: a lookup touches one cache line, not two. */

const char *strmap_key(const struct strmap *m, const struct strmap_slot *e)
{
    return e->len <= sizeof(e->k.b) ? e->k.b : m->keys.s + e->k.off;
}

static void strmap_rehash(struct strmap *m, size_t cap)
{
    struct strmap_slot *old = m->slots;
    size_t old_cap = old ? m->mask + 1 : 0;
    m->slots = xmalloc(cap * sizeof(*m->slots));
    for (size_t i = 0; i < cap; i++) m->slots[i].id = -1;
    m->mask = cap - 1;
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i].id < 0) continue;
        size_t h = XXH3_64bits(strmap_key(m, &old[i]), old[i].len) & m->mask;
        while (m->slots[h].id >= 0) h = (h + 1) & m->mask;
        m->slots[h] = old[i];
    }
    free(old);
}

/* The slot of s, or the empty slot where it would go. */
static struct strmap_slot *strmap_find(const struct strmap *m, const char *s, size_t len)
{
    size_t h = XXH3_64bits(s, len) & m->mask;
    for (;; h = (h + 1) & m->mask) {
        struct strmap_slot *e = &m->slots[h];
        if (e->id < 0 || (e->len == len && !memcmp(strmap_key(m, e), s, len))) return e;
    }
}

void strmap_reserve(struct strmap *m, size_t n)
{
    size_t cap = 1024;
    while (cap < 2 * n) cap *= 2;
    if (!m->slots || cap > m->mask + 1) strmap_rehash(m, cap);
}

void strmap_put(struct strmap *m, const char *s, size_t len, int32_t id)
{
    if (!m->slots || 2 * (m->n + 1) > m->mask + 1) strmap_rehash(m, m->slots ? 2 * (m->mask + 1) : 1024);
    struct strmap_slot *e = strmap_find(m, s, len);
    if (e->id < 0) {
        CHECK(len < UINT32_MAX);
        e->len = (uint32_t)len;
        if (len <= sizeof(e->k.b)) {
            memcpy(e->k.b, s, len);
        } else {
            e->k.off = m->keys.len;
            strbuf_append(&m->keys, s, len);
        }
        m->n++;
    }
    e->id = id;
}

int32_t strmap_get(const struct strmap *m, const char *s, size_t len)
{
    return m->slots ? strmap_find(m, s, len)->id : -1;
}

void strmap_free(struct strmap *m)
{
    free(m->slots);
    strbuf_free(&m->keys);
    *m = (struct strmap){0};
}

/* ---- regular expressions ---- */

int regex_compile(struct regex *r, const char *pattern, size_t len, char *why, size_t cap)
{
    int ec;
    PCRE2_SIZE at;
    r->code = pcre2_compile((PCRE2_SPTR)pattern, len, PCRE2_UTF | PCRE2_UCP, &ec, &at, NULL);
    if (!r->code) {
        char msg[256];
        pcre2_get_error_message(ec, (PCRE2_UCHAR *)msg, sizeof(msg));
        snprintf(why, cap, "%s at offset %zu", msg, (size_t)at);
        return -1;
    }
    pcre2_jit_compile(r->code, PCRE2_JIT_COMPLETE); /* without JIT it still works, slower */
    return 0;
}

void regex_free(struct regex *r)
{
    pcre2_code_free(r->code);
    r->code = NULL;
}

void spans_add(struct spans *s, size_t start, size_t end, bool match)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->v = xrealloc(s->v, (size_t)s->cap * sizeof(*s->v));
    }
    s->v[s->n++] = (struct span){start, end, match};
}

/* One match at or after *at: 1 with [*ms, *me), 0 when none, -1 on error.
 * The JIT's small stack can run out on long subjects: then the
 * interpreter, whose memory is on the heap, tries again. */
static int match_at(const struct regex *r, pcre2_match_data *md, const char *s, size_t n, size_t at, size_t *ms,
                    size_t *me)
{
    int rc = pcre2_match(r->code, (PCRE2_SPTR)s, n, at, PCRE2_NO_UTF_CHECK, md, NULL);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
        rc = pcre2_match(r->code, (PCRE2_SPTR)s, n, at, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, md, NULL);
    if (rc == PCRE2_ERROR_NOMATCH) return 0;
    if (rc < 0) return -1;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    *ms = ov[0];
    *me = ov[1];
    return 1;
}

int regex_spans(const struct regex *r, const char *s, size_t n, struct spans *out)
{
    out->n = 0;
    if (!n) {
        spans_add(out, 0, 0, false);
        return 0;
    }
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(r->code, NULL);
    if (!md) abort();
    size_t prev = 0, at = 0, ms, me;
    int rc;
    while (at <= n && (rc = match_at(r, md, s, n, at, &ms, &me)) > 0) {
        if (prev != ms) spans_add(out, prev, ms, false);
        spans_add(out, ms, me, true);
        prev = me;
        if (me > ms) {
            at = me;
        } else { /* an empty match: the next search starts a character later */
            if (me >= n) break;
            int k;
            utf8_next(s + me, n - me, &k);
            at = me + (size_t)k;
        }
    }
    pcre2_match_data_free(md);
    if (rc < 0) return -1;
    if (prev != n) spans_add(out, prev, n, false);
    return 0;
}

/* ---- Unicode ---- */

int32_t utf8_next(const char *s, size_t n, int *len)
{
    utf8proc_int32_t c;
    utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &c);
    if (k <= 0) { /* not valid UTF-8: callers validate, but never loop forever */
        *len = 1;
        return 0xFFFD;
    }
    *len = (int)k;
    return c;
}

int utf8_put(int32_t c, char *out) { return (int)utf8proc_encode_char(c, (utf8proc_uint8_t *)out); }

bool uni_is_whitespace(int32_t c)
{
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

bool uni_is_numeric(int32_t c)
{
    utf8proc_category_t k = utf8proc_category(c);
    return k == UTF8PROC_CATEGORY_ND || k == UTF8PROC_CATEGORY_NL || k == UTF8PROC_CATEGORY_NO;
}

bool uni_is_alnum(int32_t c)
{
    utf8proc_category_t k = utf8proc_category(c);
    return (k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO) || k == UTF8PROC_CATEGORY_MC || uni_is_numeric(c);
}

bool uni_is_punct(int32_t c)
{
    if (c < 0x80) return c > 0x20 && c < 0x7F && !((c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z'));
    utf8proc_category_t k = utf8proc_category(c);
    return k >= UTF8PROC_CATEGORY_PC && k <= UTF8PROC_CATEGORY_PO;
}
