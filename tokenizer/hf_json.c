/* hf_json.c: the large parts of tokenizer.json (model.vocab: 128K+ entries,
 * model.merges: 280K+) read by a small scanner instead of a JSON tree: a
 * tree of Llama 3's 17 MB file costs 0.7 s to build with jansson, the
 * scanner 0.05 s. The rest of the file, with these two parts cut out, is
 * small and goes to jansson as before (hf_load.c).
 *
 * The scanner reads only what it needs and checks what it reads: strings
 * (escapes, \u surrogate pairs, no raw control characters), nesting depth,
 * integer ids. Anything else is an error with the byte offset. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hf.h"

#define MAX_DEPTH 128

struct scan {
    const char *s;
    size_t n, i;
};

static void ws(struct scan *j)
{
    while (j->i < j->n && (j->s[j->i] == ' ' || j->s[j->i] == '\n' || j->s[j->i] == '\r' || j->s[j->i] == '\t'))
        j->i++;
}

static bool eat(struct scan *j, char c)
{
    ws(j);
    if (j->i < j->n && j->s[j->i] == c) {
        j->i++;
        return true;
    }
    return false;
}

static int hex4(const char *s)
{
    int v = 0;
    for (int k = 0; k < 4; k++) {
        char c = s[k];
        int d = c >= '0' && c <= '9' ? c - '0' : (c | 0x20) >= 'a' && (c | 0x20) <= 'f' ? (c | 0x20) - 'a' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

/* \uXXXX (and its low surrogate) at s[i] (after the 'u'): the character. */
static int32_t unicode_escape(struct scan *j, size_t *i)
{
    if (*i + 4 > j->n) return -1;
    int32_t c = hex4(j->s + *i);
    *i += 4;
    if (c < 0xD800 || c > 0xDFFF) return c;
    if (c > 0xDBFF || *i + 6 > j->n || j->s[*i] != '\\' || j->s[*i + 1] != 'u') return -1;
    int lo = hex4(j->s + *i + 2);
    if (lo < 0xDC00 || lo > 0xDFFF) return -1;
    *i += 6;
    return 0x10000 + ((c - 0xD800) << 10) + (lo - 0xDC00);
}

/* The string at the cursor, decoded, appended to out (NULL: skipped). */
static int string(struct scan *j, struct strbuf *out)
{
    ws(j);
    if (j->i >= j->n || j->s[j->i] != '"') return -1;
    size_t i = j->i + 1;
    for (;;) {
        size_t start = i;
        while (i < j->n && j->s[i] != '"' && j->s[i] != '\\' && (unsigned char)j->s[i] >= 0x20) i++;
        if (out) strbuf_append(out, j->s + start, i - start);
        if (i >= j->n || (unsigned char)j->s[i] < 0x20) return -1;
        if (j->s[i++] == '"') break;
        if (i >= j->n) return -1;
        char e = j->s[i++], c = e == 'b' ? '\b' : e == 'f' ? '\f' : e == 'n' ? '\n' : e == 'r' ? '\r' : e == 't' ? '\t' : e;
        if (e == 'u') {
            int32_t u = unicode_escape(j, &i);
            char buf[4];
            if (u < 0) return -1;
            if (out) strbuf_append(out, buf, (size_t)utf8_put(u, buf));
        } else if (strchr("\"\\/bfnrt", e) && e) {
            if (out) strbuf_append(out, &c, 1);
        } else {
            return -1;
        }
    }
    j->i = i;
    return 0;
}

static int skip(struct scan *j, int depth)
{
    ws(j);
    if (j->i >= j->n || depth > MAX_DEPTH) return -1;
    char c = j->s[j->i];
    if (c == '"') return string(j, NULL);
    if (c != '{' && c != '[') { /* a number, true, false or null: jansson checks it later */
        size_t start = j->i;
        while (j->i < j->n && strchr("+-.0123456789eEtruefalsn", j->s[j->i]) && j->s[j->i]) j->i++;
        return j->i > start ? 0 : -1;
    }
    j->i++;
    char close = c == '{' ? '}' : ']';
    if (eat(j, close)) return 0;
    do {
        if (c == '{' && (string(j, NULL) || !eat(j, ':'))) return -1;
        if (skip(j, depth + 1)) return -1;
    } while (eat(j, ','));
    return eat(j, close) ? 0 : -1;
}

/* Calls member(key, j, ctx) with the cursor on each value of the object at
 * the cursor; member must consume the value. */
static int members(struct scan *j, int (*member)(const char *key, size_t len, struct scan *j, void *ctx), void *ctx)
{
    if (!eat(j, '{')) return -1;
    if (eat(j, '}')) return 0;
    struct strbuf key = {0};
    int rc = 0;
    do {
        key.len = 0;
        rc = string(j, &key) || !eat(j, ':') ? -1 : member(key.s ? key.s : "", key.len, j, ctx);
    } while (!rc && eat(j, ','));
    strbuf_free(&key);
    return rc || !eat(j, '}') ? -1 : 0;
}

struct parts {
    size_t vocab[2], merges[2]; /* [start, end) of each value */
    struct strbuf type, prefix; /* model.type, model.continuing_subword_prefix */
    bool has_prefix;
    size_t n;
};

static int model_member(const char *key, size_t len, struct scan *j, void *ctx)
{
    struct parts *p = ctx;
    (void)len;
    ws(j);
    bool str = j->i < j->n && j->s[j->i] == '"';
    if (!strcmp(key, "type") && str) return p->type.len = 0, string(j, &p->type);
    if (!strcmp(key, "continuing_subword_prefix") && str) return p->has_prefix = true, p->prefix.len = 0, string(j, &p->prefix);
    size_t *span = !strcmp(key, "vocab") ? p->vocab : !strcmp(key, "merges") ? p->merges : NULL;
    ws(j);
    if (span) span[0] = j->i;
    int rc = skip(j, 2);
    if (span) span[1] = j->i;
    return rc;
}

static int top_member(const char *key, size_t len, struct scan *j, void *ctx)
{
    (void)len;
    ws(j);
    if (!strcmp(key, "model") && j->i < j->n && j->s[j->i] == '{') return members(j, model_member, ctx);
    return skip(j, 1);
}

/* ---- the two parts ---- */

struct vocab_ctx {
    struct bpe *m;
    char *why;
    size_t why_cap;
};

static int vocab_member(const char *key, size_t len, struct scan *j, void *ctx)
{
    struct vocab_ctx *v = ctx;
    ws(j);
    long long id = 0;
    size_t start = j->i;
    while (j->i < j->n && j->s[j->i] >= '0' && j->s[j->i] <= '9' && id < 1 << 24) id = id * 10 + (j->s[j->i++] - '0');
    if (j->i == start || id >= 1 << 24) {
        snprintf(v->why, v->why_cap, "model.vocab[\"%.64s\"]: bad id", key);
        return -2;
    }
    strmap_put(&v->m->vocab, key, len, (int32_t)id);
    return 0;
}

/* One merge, "a b" or ["a", "b"], into a, b (decoded, NUL-separated). */
static int merge(struct scan *j, struct strbuf *ab, size_t *na)
{
    ab->len = 0;
    if (eat(j, '[')) {
        if (string(j, ab) || !eat(j, ',')) return -1;
        *na = ab->len;
        strbuf_append(ab, "", 1);
        return string(j, ab) || !eat(j, ']') ? -1 : 0;
    }
    if (string(j, ab)) return -1;
    char *sp = ab->s ? memchr(ab->s, ' ', ab->len) : NULL;
    if (!sp || memchr(sp + 1, ' ', ab->len - (size_t)(sp + 1 - ab->s))) return -2;
    *na = (size_t)(sp - ab->s);
    *sp = 0;
    return 0;
}

static int read_merges(struct scan *j, struct bpe *m, char *why, size_t cap)
{
    if (!eat(j, '[')) return -1;
    if (eat(j, ']')) return 0;
    struct strbuf ab = {0};
    uint32_t rank = 0;
    int rc = 0;
    do {
        size_t na = 0;
        rc = merge(j, &ab, &na);
        if (rc == -2) snprintf(why, cap, "model.merges[%u] is not \"a b\"", rank);
        else if (!rc && bpe_add_merge(m, ab.s, na, ab.s + na + 1, ab.len - na - 1, rank))
            rc = -2, snprintf(why, cap, "model.merges[%u]: a part or the merged token is not in the vocabulary", rank);
        rank++;
    } while (!rc && eat(j, ','));
    strbuf_free(&ab);
    return rc ? rc : eat(j, ']') ? 0 : -1;
}

/* The parts read into m; *rest gets the text without them (their values
 * replaced by empty ones) for jansson. */
static int read_parts(const char *text, struct parts *p, struct bpe *m, struct strbuf *rest, char *why, size_t cap)
{
    /* about 16 bytes a vocabulary entry or a merge in the files seen */
    bpe_reserve(m, (p->vocab[1] - p->vocab[0]) / 16, (p->merges[1] - p->merges[0]) / 16);
    struct scan v = {text, p->vocab[1], p->vocab[0]};
    struct vocab_ctx vc = {m, why, cap};
    int rc = members(&v, vocab_member, &vc);
    if (rc) return rc == -1 ? snprintf(why, cap, "bad JSON in model.vocab near byte %zu", v.i), -1 : -1;
    struct scan g = {text, p->merges[1], p->merges[0]};
    rc = read_merges(&g, m, why, cap);
    if (rc) return rc == -1 ? snprintf(why, cap, "bad JSON in model.merges near byte %zu", g.i), -1 : -1;
    bool vocab_first = p->vocab[0] < p->merges[0];
    size_t *a = vocab_first ? p->vocab : p->merges, *b = vocab_first ? p->merges : p->vocab;
    strbuf_append(rest, text, a[0]);
    strbuf_append(rest, vocab_first ? "{}" : "[]", 2);
    strbuf_append(rest, text + a[1], b[0] - a[1]);
    strbuf_append(rest, vocab_first ? "[]" : "{}", 2);
    strbuf_append(rest, text + b[1], p->n - b[1]);
    return 0;
}

int hf_json_model(const char *text, size_t n, struct bpe *m, struct strbuf *rest, char *why, size_t cap)
{
    struct parts p = {.n = n};
    struct scan j = {text, n, 0};
    int rc = -1;
    if (members(&j, top_member, &p)) snprintf(why, cap, "bad JSON near byte %zu", j.i);
    else if (p.type.len && strcmp(p.type.s, "BPE"))
        snprintf(why, cap, "model \"%s\" is not supported (BPE only)", p.type.s);
    else if (!p.vocab[1] || !p.merges[1]) snprintf(why, cap, "model: BPE needs \"vocab\" and \"merges\"");
    else {
        if (p.has_prefix) m->prefix = strbuf_take(&p.prefix); /* the merges need it */
        rc = read_parts(text, &p, m, rest, why, cap);
    }
    strbuf_free(&p.type);
    strbuf_free(&p.prefix);
    return rc;
}
