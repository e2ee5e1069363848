/* gguf_vocab.c: a tokenizer from a GGUF file's tokenizer.ggml.* metadata
 * (base/gguf.h reads the file), built as the tokenizer.json pipeline of
 * hf*.c: the vocabulary and merges go straight into struct bpe, the rest is
 * a small tokenizer.json document for hf_load_rest(). The mapping is
 * transformers' GGUF conversion (integrations/gguf), with llama.cpp's
 * choices where they differ; the ids are llama.cpp's test vectors
 * (tests/tokenizer/test_gguf_vocab.py):
 *
 *   llama (SentencePiece BPE): tokens + scores; merges generated from the
 *     scores (transformers' generate_merges: a pair for each split of a
 *     token into two tokens, ranked by the token's score), <0xXX> byte
 *     fallback, unk. A normalizer writes spaces as U+2581 and prepends one
 *     to every piece of text (tokenizer.ggml.add_space_prefix, default
 *     true; llama.cpp prepends after each special token too, as this
 *     does); remove_extra_whitespaces, when set, as SentencePiece does it.
 *     Decoder: U+2581 -> space, byte fallback, fuse, strip the first space.
 *   gpt2 (byte-level BPE): tokens + merges (rank = position), with the
 *     normalizer and splits of tokenizer.ggml.pre's family (gguf_pre.c).
 *
 * Token types CONTROL and UNKNOWN become special added tokens, USER_DEFINED
 * plain ones: llama.cpp matches them whole in the text. BOS/EOS come from
 * tokenizer.ggml.add_bos_token / add_eos_token (llama.cpp's defaults when
 * absent); an out-of-range special id keeps the default, as in llama.cpp. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/err.h"
#include "../base/gguf.h"
#include "gguf_vocab.h"
#include "hf.h"

/* tokenizer.ggml.token_type, as llama.cpp numbers them */
enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER_DEFINED = 4 };
#define MAX_TOKENS (1 << 24)   /* ids hf.c can hold */
#define MAX_MERGES (1u << 30)
#define MAX_TOKEN_BYTES 65536
/* SentencePiece pieces are at most 16 characters by default
 * (max_piece_length); longer ones are not split into merges, which bounds
 * the work at this many lookups per byte of the vocabulary */
#define MAX_SPLIT_BYTES 256

struct src {
    const gguf *g;
    const char *path;
    char *err;
    size_t cap;
    bool spm;                             /* tokenizer.ggml.model "llama" (else "gpt2") */
    int n;                                /* tokens */
    struct gguf_arr tokens, types, scores, merges;
    bool has_types, has_scores;
    struct gguf_family fam;
};

__attribute__((format(printf, 3, 4))) static int fail(const struct src *s, int code, const char *fmt, ...)
{
    int n = snprintf(s->err, s->cap, "%s: ", s->path);
    va_list ap;
    va_start(ap, fmt);
    if (n >= 0 && (size_t)n < s->cap) vsnprintf(s->err + n, s->cap - (size_t)n, fmt, ap);
    va_end(ap);
    err_one_line(s->err);
    return code;
}

/* A getter's failure: its message names the file and key already. */
static int fail_get(const struct src *s, int rc)
{
    snprintf(s->err, s->cap, "%s", err_msg());
    return rc;
}

static struct gguf_str tok_at(const struct src *s, int i) { return gguf_arr_str(&s->tokens, (uint64_t)i); }

static int token_type(const struct src *s, int i)
{
    return s->has_types ? (int)gguf_arr_int(&s->types, (uint64_t)i) : TT_NORMAL;
}

static bool elem_ok(enum gguf_vtype t, char kind)
{
    if (kind == 's') return t == GGUF_STRING;
    if (kind == 'f') return t == GGUF_FLOAT32 || t == GGUF_FLOAT64;
    return t <= GGUF_INT32 || t == GGUF_UINT64 || t == GGUF_INT64;
}

/* key's array of elements of kind ('s' strings, 'i' integers, 'f' floats)
 * into *a: 0, 1 when absent and not needed, or a negative ERR_*. */
static int get_arr(const struct src *s, const char *key, char kind, bool need, struct gguf_arr *a)
{
    if (gguf_find_key(s->g, key) < 0)
        return need ? fail(s, ERR_MODEL, "no %s (a GGUF without a tokenizer?)", key) : 1;
    int rc = gguf_get_arr(s->g, key, a);
    if (rc) return fail_get(s, rc);
    if (!elem_ok(a->elem, kind))
        return fail(s, ERR_FORMAT, "%s: an array of %s, not of %s", key, kind == 's' ? "strings" : "numbers",
                    gguf_vtype_name(a->elem));
    return 0;
}

/* key's string value, or dflt when absent; NULL after fail(). */
static const char *get_str(const struct src *s, const char *key, const char *dflt, size_t *len)
{
    struct gguf_str v;
    if (gguf_find_key(s->g, key) < 0) return *len = dflt ? strlen(dflt) : 0, dflt;
    int rc = gguf_get_str(s->g, key, &v);
    if (rc) return fail_get(s, rc), NULL;
    *len = (size_t)v.len;
    return v.ptr;
}

static int get_flag(const struct src *s, const char *key, bool *v)
{
    int rc = gguf_find_key(s->g, key) < 0 ? 0 : gguf_get_bool(s->g, key, v);
    return rc ? fail_get(s, rc) : 0;
}

/* tokenizer.ggml.model and the arrays, each count checked against the
 * vocabulary's. */
static int read_arrays(struct src *s)
{
    size_t len = 0;
    const char *model = get_str(s, "tokenizer.ggml.model", NULL, &len);
    if (!model) return gguf_find_key(s->g, "tokenizer.ggml.model") < 0
                           ? fail(s, ERR_MODEL, "no tokenizer.ggml.model (a GGUF without a tokenizer?)")
                           : ERR_FORMAT;
    s->spm = len == 5 && !memcmp(model, "llama", 5);
    if (!s->spm && !(len == 4 && !memcmp(model, "gpt2", 4)))
        return fail(s, ERR_UNSUPPORTED, "tokenizer.ggml.model \"%.*s\" is not supported (llama and gpt2 are)",
                    (int)(len < 64 ? len : 64), model);
    int rc = get_arr(s, "tokenizer.ggml.tokens", 's', true, &s->tokens);
    if (rc) return rc;
    if (s->tokens.n == 0 || s->tokens.n > MAX_TOKENS)
        return fail(s, ERR_MODEL, "tokenizer.ggml.tokens: %llu tokens (1 to %d)", (unsigned long long)s->tokens.n,
                    MAX_TOKENS);
    s->n = (int)s->tokens.n;
    if ((rc = get_arr(s, "tokenizer.ggml.token_type", 'i', false, &s->types)) < 0) return rc;
    s->has_types = rc == 0;
    if ((rc = get_arr(s, "tokenizer.ggml.scores", 'f', false, &s->scores)) < 0) return rc;
    s->has_scores = rc == 0;
    if ((s->has_types && s->types.n != s->tokens.n) || (s->has_scores && s->scores.n != s->tokens.n))
        return fail(s, ERR_MODEL, "tokenizer.ggml.token_type or .scores: not one per token (%d tokens)", s->n);
    if (s->spm) return 0;
    if ((rc = get_arr(s, "tokenizer.ggml.merges", 's', true, &s->merges))) return rc;
    if (s->merges.n > MAX_MERGES)
        return fail(s, ERR_MODEL, "tokenizer.ggml.merges: %llu merges", (unsigned long long)s->merges.n);
    return 0;
}

/* ---- merges ---- */

static int file_merges(const struct src *s, struct bpe *m)
{
    for (uint64_t i = 0; i < s->merges.n; i++) {
        struct gguf_str ab = gguf_arr_str(&s->merges, i);
        const char *sp = ab.len ? memchr(ab.ptr, ' ', (size_t)ab.len) : NULL;
        if (!sp) return fail(s, ERR_MODEL, "tokenizer.ggml.merges[%llu] is not \"a b\"", (unsigned long long)i);
        size_t na = (size_t)(sp - ab.ptr);
        if (bpe_add_merge(m, ab.ptr, na, sp + 1, (size_t)ab.len - na - 1, (uint32_t)i))
            return fail(s, ERR_MODEL, "tokenizer.ggml.merges[%llu]: a part or the merged token is not a token",
                        (unsigned long long)i);
    }
    return 0;
}

/* One generated merge: token tok = l + r (nl, nr characters). */
struct gen {
    double score;
    int32_t tok, l, r;
    uint32_t nl, nr;
};

/* generate_merges' order: score, then the left and the right part's length,
 * all descending; ties keep the vocabulary's order, then (l, r) ascending. */
static int gen_cmp(const void *pa, const void *pb)
{
    const struct gen *a = pa, *b = pb;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    if (a->nl != b->nl) return a->nl > b->nl ? -1 : 1;
    if (a->nr != b->nr) return a->nr > b->nr ? -1 : 1;
    if (a->tok != b->tok) return a->tok < b->tok ? -1 : 1;
    if (a->l != b->l) return a->l < b->l ? -1 : 1;
    return (a->r > b->r) - (a->r < b->r);
}

static bool utf8_cont(char c) { return ((unsigned char)c & 0xC0) == 0x80; }

/* Every split of token i at a character boundary into two tokens. */
static void token_splits(const struct src *s, const struct bpe *m, int i, struct gen **v, size_t *n, size_t *cap)
{
    struct gguf_str t = tok_at(s, i);
    if (t.len > MAX_SPLIT_BYTES) return;
    double score = s->has_scores ? gguf_arr_float(&s->scores, (uint64_t)i) : 0.0;
    if (isnan(score)) score = -INFINITY;
    uint32_t chars = 0, nl = 0;
    for (uint64_t k = 0; k < t.len; k++) chars += !utf8_cont(t.ptr[k]);
    for (size_t k = 0; k < t.len; k++) {
        if (utf8_cont(t.ptr[k])) continue;
        int32_t l = k ? strmap_get(&m->vocab, t.ptr, k) : -1;
        int32_t r = l >= 0 ? strmap_get(&m->vocab, t.ptr + k, (size_t)t.len - k) : -1;
        if (r >= 0) {
            if (*n == *cap) *v = xrealloc(*v, (*cap = 2 * *cap + 1024) * sizeof(**v));
            (*v)[(*n)++] = (struct gen){score, i, l, r, nl, chars - nl};
        }
        nl++;
    }
}

/* SentencePiece vocabularies have scores, not merges: the merges their
 * scores imply. */
static void score_merges(const struct src *s, struct bpe *m)
{
    struct gen *v = NULL;
    size_t n = 0, cap = 0;
    for (int i = 0; i < s->n; i++) {
        struct gguf_str t = tok_at(s, i);
        if (strmap_get(&m->vocab, t.ptr, (size_t)t.len) == i) token_splits(s, m, i, &v, &n, &cap);
    }
    if (n) qsort(v, n, sizeof(*v), gen_cmp);
    CHECK(n <= UINT32_MAX);
    for (size_t k = 0; k < n; k++) {
        struct gguf_str a = tok_at(s, v[k].l), b = tok_at(s, v[k].r);
        bpe_add_merge(m, a.ptr, (size_t)a.len, b.ptr, (size_t)b.len, (uint32_t)k);
    }
    free(v);
}

/* ---- the rest of the tokenizer.json ---- */

/* "added_tokens": control and unknown tokens special, user-defined plain. */
static int added_tokens(const struct src *s, json_t *root)
{
    json_t *list = json_array();
    json_object_set_new(root, "added_tokens", list);
    for (int i = 0; i < s->n; i++) {
        int type = token_type(s, i);
        if (type != TT_CONTROL && type != TT_UNKNOWN && type != TT_USER_DEFINED) continue;
        struct gguf_str t = tok_at(s, i);
        json_t *content = json_stringn(t.ptr, (size_t)t.len);
        if (!content) return fail(s, ERR_MODEL, "tokenizer.ggml.tokens[%d], a special token, is not UTF-8", i);
        bool special = type != TT_USER_DEFINED;
        json_array_append_new(list, json_pack("{s:o, s:i, s:b, s:b}", "content", content, "id", i, "special", special,
                                              "normalized", !special && s->fam.added_normalized));
    }
    return 0;
}

static json_t *replace(const char *kind, const char *pattern, const char *content)
{
    return json_pack("{s:s, s:{s:s}, s:s}", "type", "Replace", "pattern", kind, pattern, "content", content);
}

#define SPACE_MARK "\xe2\x96\x81" /* U+2581 */

/* SentencePiece's normalizer, decoder and model settings. */
static int spm_parts(const struct src *s, json_t *root, json_t *model, int unk)
{
    bool prefix = true, squeeze = false;
    int rc = get_flag(s, "tokenizer.ggml.add_space_prefix", &prefix);
    if (rc || (rc = get_flag(s, "tokenizer.ggml.remove_extra_whitespaces", &squeeze))) return rc;
    json_t *norm = json_array(), *dec = json_array();
    if (squeeze) { /* runs of spaces -> one; none at either end */
        json_array_append_new(norm, replace("Regex", " {2,}", " "));
        json_array_append_new(norm, replace("Regex", "^ +| +\\z", ""));
    }
    if (prefix) json_array_append_new(norm, json_pack("{s:s, s:s}", "type", "Prepend", "prepend", SPACE_MARK));
    json_array_append_new(norm, replace("String", " ", SPACE_MARK));
    json_object_set_new(root, "normalizer", json_pack("{s:s, s:o}", "type", "Sequence", "normalizers", norm));
    json_array_append_new(dec, replace("String", SPACE_MARK, " "));
    json_array_append_new(dec, json_pack("{s:s}", "type", "ByteFallback"));
    json_array_append_new(dec, json_pack("{s:s}", "type", "Fuse"));
    if (prefix) json_array_append_new(dec, json_pack("{s:s, s:s, s:i, s:i}", "type", "Strip", "content", " ",
                                                     "start", 1, "stop", 0));
    json_object_set_new(root, "decoder", json_pack("{s:s, s:o}", "type", "Sequence", "decoders", dec));
    json_object_set_new(model, "byte_fallback", json_true());
    json_object_set_new(model, "fuse_unk", json_true());
    if (unk >= 0) {
        struct gguf_str t = tok_at(s, unk);
        json_t *name = json_stringn(t.ptr, (size_t)t.len);
        if (!name) return fail(s, ERR_MODEL, "the unknown token is not UTF-8");
        json_object_set_new(model, "unk_token", name);
    }
    return 0;
}

/* Byte-level BPE: the family of tokenizer.ggml.pre. */
static int gpt2_parts(struct src *s, json_t *root, json_t *model)
{
    size_t len = 0;
    const char *pre = get_str(s, "tokenizer.ggml.pre", "default", &len);
    if (!pre) return ERR_FORMAT;
    if (gguf_pre_family(pre, len, root, &s->fam))
        return fail(s, ERR_UNSUPPORTED, "tokenizer.ggml.pre \"%.*s\" is not supported", (int)(len < 64 ? len : 64),
                    pre);
    json_object_set_new(root, "decoder", json_pack("{s:s}", "type", "ByteLevel"));
    json_object_set_new(model, "ignore_merges", json_boolean(s->fam.ignore_merges));
    return 0;
}

/* The tokenizer.json text without vocab and merges into *text (malloc'd). */
static int rest_text(struct src *s, int unk, char **text)
{
    json_t *root = json_object(), *model = json_pack("{s:s}", "type", "BPE");
    json_object_set_new(root, "model", model);
    int rc = s->spm ? spm_parts(s, root, model, unk) : gpt2_parts(s, root, model);
    if (!rc) rc = added_tokens(s, root);
    *text = rc ? NULL : json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return rc ? rc : *text ? 0 : fail(s, ERR_NOMEM, "out of memory writing the tokenizer's settings");
}

/* ---- specials, templates, the whole ---- */

/* key's token id into *id when the key is there and the id in range. */
static int special_id(const struct src *s, const char *key, int *id)
{
    int64_t v;
    if (gguf_find_key(s->g, key) < 0) return 0;
    int rc = gguf_get_int(s->g, key, &v);
    if (rc) return fail_get(s, rc);
    if (v >= 0 && v < s->n) *id = (int)v;
    return 0;
}

static int specials(const struct src *s, struct gguf_vocab *v, bool *add_eos)
{
    if (s->spm && s->n > 2) v->unk = 0, v->bos = 1, v->eos = 2; /* llama.cpp's SentencePiece defaults */
    v->add_bos = s->spm || s->fam.add_bos;
    *add_eos = false;
    int rc = special_id(s, "tokenizer.ggml.bos_token_id", &v->bos);
    if (!rc) rc = special_id(s, "tokenizer.ggml.eos_token_id", &v->eos);
    if (!rc) rc = special_id(s, "tokenizer.ggml.unknown_token_id", &v->unk);
    if (!rc) rc = get_flag(s, "tokenizer.ggml.add_bos_token", &v->add_bos);
    if (!rc) rc = get_flag(s, "tokenizer.ggml.add_eos_token", add_eos);
    if (!s->spm) v->unk = -1;
    return rc;
}

/* key's string as a malloc'd C string into *out (NULL when absent). */
static int template_of(const struct src *s, const char *key, char **out)
{
    size_t len = 0;
    const char *t = get_str(s, key, "", &len);
    if (!t) return ERR_FORMAT;
    *out = len ? xmalloc(len + 1) : NULL;
    if (len) memcpy(*out, t, len), (*out)[len] = 0;
    return 0;
}

static void set_post(struct hf *h, const struct gguf_vocab *v, bool add_eos)
{
    if (v->add_bos && v->bos >= 0) {
        h->post_pre = xmalloc(sizeof(int32_t));
        h->post_pre[h->n_post_pre++] = v->bos;
    }
    if (add_eos && v->eos >= 0) {
        h->post_post = xmalloc(sizeof(int32_t));
        h->post_post[h->n_post_post++] = v->eos;
    }
}

/* The vocabulary and merges into m. */
static int fill_model(const struct src *s, struct bpe *m)
{
    bpe_reserve(m, (size_t)s->n, s->spm ? (size_t)s->n : (size_t)s->merges.n);
    for (int i = 0; i < s->n; i++) {
        struct gguf_str t = tok_at(s, i);
        if (t.len > MAX_TOKEN_BYTES)
            return fail(s, ERR_MODEL, "tokenizer.ggml.tokens[%d]: %llu bytes (at most %d)", i,
                        (unsigned long long)t.len, MAX_TOKEN_BYTES);
        strmap_put(&m->vocab, t.ptr, (size_t)t.len, i);
    }
    if (!s->spm) return file_merges(s, m);
    score_merges(s, m);
    return 0;
}

static int build(struct src *s, struct gguf_vocab *v)
{
    int rc = read_arrays(s);
    bool add_eos = false;
    if (!rc && s->spm) rc = specials(s, v, &add_eos); /* the unk token goes into the model */
    char *rest = NULL;
    if (rc || (rc = rest_text(s, v->unk, &rest))) return rc;
    struct hf *h = xcalloc(1, sizeof(*h));
    if ((!s->spm && (rc = specials(s, v, &add_eos))) || (rc = fill_model(s, &h->bpe))) {
        free(rest);
        hf_free(h);
        return rc;
    }
    v->hf = hf_load_rest(h, rest, strlen(rest), s->path, s->err, s->cap);
    free(rest);
    if (!v->hf) return ERR_MODEL;
    set_post(v->hf, v, add_eos);
    v->add_bos = v->hf->n_post_pre + v->hf->n_post_post > 0;
    rc = template_of(s, "tokenizer.chat_template", &v->chat_template);
    return rc ? rc : template_of(s, "tokenizer.chat_template.tool_use", &v->tool_template);
}

int gguf_vocab_from(struct gguf_vocab *v, const gguf *g, const char *path, char *err, size_t cap)
{
    memset(v, 0, sizeof(*v));
    v->bos = v->eos = v->unk = -1;
    struct src s = {.g = g, .path = path, .err = err, .cap = cap};
    int rc = build(&s, v);
    if (rc) gguf_vocab_free(v);
    return rc;
}

void gguf_vocab_free(struct gguf_vocab *v)
{
    hf_free(v->hf);
    free(v->chat_template);
    free(v->tool_template);
    memset(v, 0, sizeof(*v));
}

int gguf_vocab_load(struct gguf_vocab *v, const char *path, char *err, size_t cap)
{
    gguf *g = NULL;
    int rc = gguf_open(&g, path, false);
    if (rc) {
        memset(v, 0, sizeof(*v));
        snprintf(err, cap, "%s", err_msg());
        return rc;
    }
    rc = gguf_vocab_from(v, g, path, err, cap);
    gguf_close(g);
    return rc;
}
