/* hf_load.c: tokenizer.json -> struct hf (see hf.h). Every component the
 * file names is either built or refused with one line naming the file and
 * the component; nothing is guessed from the model's name. */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/err.h"
#include "hf.h"

struct loader {
    const char *path;
    char *err;
    size_t cap;
};

__attribute__((format(printf, 2, 3))) static int fail(const struct loader *L, const char *fmt, ...)
{
    int n = snprintf(L->err, L->cap, "%s: ", L->path);
    va_list ap;
    va_start(ap, fmt);
    if (n >= 0 && (size_t)n < L->cap) vsnprintf(L->err + n, L->cap - (size_t)n, fmt, ap);
    va_end(ap);
    err_one_line(L->err);
    return -1;
}

static const char *type_of(json_t *o) { return json_string_value(json_object_get(o, "type")); }

static bool flag(json_t *o, const char *key, bool dflt)
{
    json_t *v = json_object_get(o, key);
    return json_is_boolean(v) ? json_is_true(v) : dflt;
}

static char *dup_string(json_t *o, const char *key, const char *dflt)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? xstrdup(json_string_value(v)) : dflt ? xstrdup(dflt) : NULL;
}

/* {"String": s} or {"Regex": r}: one of *literal, *re set. */
static int load_pattern(const struct loader *L, json_t *o, const char *where, char **literal, struct regex *re)
{
    json_t *p = json_object_get(o, "pattern"), *s = json_object_get(p, "String"), *r = json_object_get(p, "Regex");
    if (json_is_string(s)) {
        *literal = xstrdup(json_string_value(s));
        return 0;
    }
    if (!json_is_string(r)) return fail(L, "%s: \"pattern\" must be {\"String\": ...} or {\"Regex\": ...}", where);
    char why[300];
    if (regex_compile(re, json_string_value(r), json_string_length(r), why, sizeof(why)))
        return fail(L, "%s: bad regex: %s", where, why);
    return 0;
}

static int load_kids(const struct loader *L, json_t *arr, const char *where, void **kids, int *n, size_t size,
                     int (*one)(const struct loader *, json_t *, void *))
{
    if (!json_is_array(arr)) return fail(L, "%s: Sequence without its list", where);
    *n = (int)json_array_size(arr);
    *kids = xcalloc((size_t)*n + 1, size);
    for (int i = 0; i < *n; i++)
        if (one(L, json_array_get(arr, (size_t)i), (char *)*kids + (size_t)i * size)) return -1;
    return 0;
}

/* ---- normalizers ---- */

static int load_normalizer(const struct loader *L, json_t *o, void *out)
{
    struct normalizer *z = out;
    const char *t = type_of(o);
    static const char *const forms[] = {"NFC", "NFD", "NFKC", "NFKD"};
    for (int i = 0; t && i < 4; i++)
        if (!strcmp(t, forms[i])) {
            z->kind = (enum norm_kind)(NORM_NFC + i);
            return 0;
        }
    if (t && !strcmp(t, "Lowercase")) return z->kind = NORM_LOWERCASE, 0;
    if (t && !strcmp(t, "Prepend")) {
        z->kind = NORM_PREPEND;
        z->text = dup_string(o, "prepend", "");
        return 0;
    }
    if (t && !strcmp(t, "Replace")) {
        z->kind = NORM_REPLACE;
        z->text = dup_string(o, "content", "");
        return load_pattern(L, o, "normalizer Replace", &z->literal, &z->re);
    }
    if (t && !strcmp(t, "Strip")) {
        z->kind = NORM_STRIP;
        z->left = flag(o, "strip_left", true);
        z->right = flag(o, "strip_right", true);
        return 0;
    }
    if (t && !strcmp(t, "Sequence")) {
        z->kind = NORM_SEQUENCE;
        return load_kids(L, json_object_get(o, "normalizers"), "normalizer", (void **)&z->kids, &z->n_kids,
                         sizeof(*z), load_normalizer);
    }
    return fail(L, "normalizer \"%s\" is not supported", t ? t : "(no type)");
}

/* ---- pre-tokenizers ---- */

static int behavior(const struct loader *L, json_t *o, enum split_behavior *b)
{
    static const char *const names[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"};
    const char *s = json_string_value(json_object_get(o, "behavior"));
    if (!s) return *b = SPLIT_ISOLATED, 0;
    for (int i = 0; i < 5; i++)
        if (!strcmp(s, names[i])) return *b = (enum split_behavior)i, 0;
    return fail(L, "pre_tokenizer split behavior \"%s\" is not supported", s);
}

static int prepend_scheme(const struct loader *L, json_t *o, enum prepend_scheme *p)
{
    const char *s = json_string_value(json_object_get(o, "prepend_scheme"));
    if (!s) return *p = flag(o, "add_prefix_space", true) ? PREPEND_ALWAYS : PREPEND_NEVER, 0;
    if (!strcmp(s, "always")) return *p = PREPEND_ALWAYS, 0;
    if (!strcmp(s, "first")) return *p = PREPEND_FIRST, 0;
    if (!strcmp(s, "never")) return *p = PREPEND_NEVER, 0;
    return fail(L, "Metaspace prepend_scheme \"%s\" is not supported", s);
}

static int replacement(const struct loader *L, json_t *o, char out[8])
{
    const char *r = json_string_value(json_object_get(o, "replacement"));
    if (!r) r = "\xe2\x96\x81"; /* U+2581 */
    int k;
    if (!*r || strlen(r) > 4 || (size_t)(utf8_next(r, strlen(r), &k), k) != strlen(r))
        return fail(L, "Metaspace replacement must be one character");
    memcpy(out, r, strlen(r) + 1);
    return 0;
}

static int compile_fixed(const struct loader *L, struct regex *re, const char *pattern)
{
    char why[300];
    return regex_compile(re, pattern, strlen(pattern), why, sizeof(why)) ? fail(L, "%s", why) : 0;
}

static int load_pretok(const struct loader *L, json_t *o, void *out)
{
    struct pretokenizer *p = out;
    const char *t = type_of(o);
    if (!t) return fail(L, "pre_tokenizer without a type");
    if (!strcmp(t, "Split")) {
        p->kind = PRE_SPLIT;
        p->invert = flag(o, "invert", false);
        return behavior(L, o, &p->behavior) || load_pattern(L, o, "pre_tokenizer Split", &p->literal, &p->re);
    }
    if (!strcmp(t, "ByteLevel")) {
        p->kind = PRE_BYTELEVEL;
        p->flag = flag(o, "add_prefix_space", true);
        p->use_regex = flag(o, "use_regex", true);
        return p->use_regex ? compile_fixed(L, &p->re, "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|"
                                                       "\\s+(?!\\S)|\\s+")
                            : 0;
    }
    if (!strcmp(t, "Digits")) return p->kind = PRE_DIGITS, p->flag = flag(o, "individual_digits", false), 0;
    if (!strcmp(t, "Metaspace")) {
        p->kind = PRE_METASPACE;
        p->flag = flag(o, "split", true);
        return replacement(L, o, p->replacement) || prepend_scheme(L, o, &p->prepend);
    }
    if (!strcmp(t, "Punctuation")) return p->kind = PRE_PUNCTUATION, behavior(L, o, &p->behavior);
    if (!strcmp(t, "Whitespace")) return p->kind = PRE_WHITESPACE, compile_fixed(L, &p->re, "\\w+|[^\\w\\s]+");
    if (!strcmp(t, "WhitespaceSplit")) return p->kind = PRE_WHITESPACE_SPLIT, 0;
    if (!strcmp(t, "Sequence")) {
        p->kind = PRE_SEQUENCE;
        return load_kids(L, json_object_get(o, "pretokenizers"), "pre_tokenizer", (void **)&p->kids, &p->n_kids,
                         sizeof(*p), load_pretok);
    }
    return fail(L, "pre_tokenizer \"%s\" is not supported", t);
}

/* ---- decoders ---- */

static int load_decoder(const struct loader *L, json_t *o, void *out)
{
    struct decoder *d = out;
    const char *t = type_of(o);
    if (!t) return fail(L, "decoder without a type");
    if (!strcmp(t, "ByteLevel")) return d->kind = DEC_BYTELEVEL, 0;
    if (!strcmp(t, "ByteFallback")) return d->kind = DEC_BYTEFALLBACK, 0;
    if (!strcmp(t, "Fuse")) return d->kind = DEC_FUSE, 0;
    if (!strcmp(t, "Metaspace")) {
        d->kind = DEC_METASPACE;
        return replacement(L, o, d->replacement) || prepend_scheme(L, o, &d->prepend);
    }
    if (!strcmp(t, "Strip")) {
        d->kind = DEC_STRIP;
        d->content = dup_string(o, "content", " ");
        d->start = (int)json_integer_value(json_object_get(o, "start"));
        d->stop = (int)json_integer_value(json_object_get(o, "stop"));
        return 0;
    }
    if (!strcmp(t, "Replace")) {
        d->kind = DEC_REPLACE;
        d->content = dup_string(o, "content", "");
        return load_pattern(L, o, "decoder Replace", &d->literal, &d->re);
    }
    if (!strcmp(t, "Sequence")) {
        d->kind = DEC_SEQUENCE;
        return load_kids(L, json_object_get(o, "decoders"), "decoder", (void **)&d->kids, &d->n_kids, sizeof(*d),
                         load_decoder);
    }
    return fail(L, "decoder \"%s\" is not supported", t);
}

/* ---- the model ---- */

/* The model's settings; its vocabulary and merges are read already
 * (hf_json.c). */
static int load_model(const struct loader *L, json_t *o, struct bpe *m)
{
    json_t *dropout = json_object_get(o, "dropout");
    if (json_number_value(dropout) > 0) return fail(L, "model.dropout is not supported");
    m->suffix = dup_string(o, "end_of_word_suffix", NULL);
    m->byte_fallback = flag(o, "byte_fallback", false);
    m->fuse_unk = flag(o, "fuse_unk", false);
    m->ignore_merges = flag(o, "ignore_merges", false);
    const char *unk = json_string_value(json_object_get(o, "unk_token"));
    m->unk = unk ? strmap_get(&m->vocab, unk, strlen(unk)) : -1;
    return 0;
}

/* ---- added tokens, post-processor ---- */

static int load_added(const struct loader *L, json_t *arr, struct added *a)
{
    if (arr && !json_is_array(arr)) return fail(L, "\"added_tokens\" must be a list");
    a->n = (int)json_array_size(arr);
    a->tok = xcalloc((size_t)a->n + 1, sizeof(*a->tok));
    for (int i = 0; i < a->n; i++) {
        json_t *o = json_array_get(arr, (size_t)i), *c = json_object_get(o, "content"), *id = json_object_get(o, "id");
        if (!json_is_string(c) || !json_is_integer(id) || json_integer_value(id) < 0 ||
            json_integer_value(id) >= 1 << 24)
            return fail(L, "added_tokens[%d]: needs \"content\" and a valid \"id\"", i);
        struct added_token *k = &a->tok[i];
        k->len = json_string_length(c);
        k->content = xmalloc(k->len + 1);
        memcpy(k->content, json_string_value(c), k->len + 1);
        k->id = (int32_t)json_integer_value(id);
        k->special = flag(o, "special", false);
        k->lstrip = flag(o, "lstrip", false);
        k->rstrip = flag(o, "rstrip", false);
        k->single_word = flag(o, "single_word", false);
        k->normalized = flag(o, "normalized", !k->special);
    }
    return 0;
}

static void push_id(int32_t **v, int *n, int32_t id)
{
    *v = xrealloc(*v, (size_t)(*n + 1) * sizeof(int32_t));
    (*v)[(*n)++] = id;
}

/* TemplateProcessing's "single": special tokens before and after "A". */
static int load_template(const struct loader *L, json_t *o, struct hf *h)
{
    json_t *single = json_object_get(o, "single"), *specials = json_object_get(o, "special_tokens");
    if (!json_is_array(single)) return fail(L, "post_processor TemplateProcessing needs \"single\"");
    bool after = false;
    for (size_t i = 0; i < json_array_size(single); i++) {
        json_t *e = json_array_get(single, i), *sp = json_object_get(e, "SpecialToken");
        if (json_object_get(e, "Sequence")) {
            after = true;
            continue;
        }
        const char *name = json_string_value(json_object_get(sp, "id"));
        json_t *ids = json_object_get(json_object_get(specials, name ? name : ""), "ids");
        if (!name || !json_is_array(ids)) return fail(L, "post_processor: special token \"%s\" has no ids", name ? name : "?");
        for (size_t j = 0; j < json_array_size(ids); j++) {
            json_int_t id = json_integer_value(json_array_get(ids, j));
            if (id < 0 || id >= 1 << 24) return fail(L, "post_processor: bad id for \"%s\"", name);
            if (after) push_id(&h->post_post, &h->n_post_post, (int32_t)id);
            else push_id(&h->post_pre, &h->n_post_pre, (int32_t)id);
        }
    }
    return 0;
}

static int load_post(const struct loader *L, json_t *o, struct hf *h)
{
    const char *t = type_of(o);
    if (!o || json_is_null(o) || (t && !strcmp(t, "ByteLevel"))) return 0; /* ByteLevel moves offsets only */
    if (t && !strcmp(t, "TemplateProcessing")) return load_template(L, o, h);
    if (t && (!strcmp(t, "RobertaProcessing") || !strcmp(t, "BertProcessing"))) {
        json_t *cls = json_array_get(json_object_get(o, "cls"), 1), *sep = json_array_get(json_object_get(o, "sep"), 1);
        if (!json_is_integer(cls) || !json_is_integer(sep)) return fail(L, "post_processor %s needs cls and sep", t);
        push_id(&h->post_pre, &h->n_post_pre, (int32_t)json_integer_value(cls));
        push_id(&h->post_post, &h->n_post_post, (int32_t)json_integer_value(sep));
        return 0;
    }
    if (t && !strcmp(t, "Sequence")) {
        json_t *arr = json_object_get(o, "processors");
        for (size_t i = 0; i < json_array_size(arr); i++)
            if (load_post(L, json_array_get(arr, i), h)) return -1;
        return 0;
    }
    return fail(L, "post_processor \"%s\" is not supported", t ? t : "(no type)");
}

/* id -> text for every id of the vocabulary and the added tokens. */
static void build_ids(struct hf *h, struct strbuf *arena)
{
    const struct strmap *v = &h->bpe.vocab;
    int n = 0;
    for (size_t i = 0; v->slots && i <= v->mask; i++)
        if (v->slots[i].id >= n) n = v->slots[i].id + 1;
    for (int i = 0; i < h->added.n; i++)
        if (h->added.tok[i].id >= n) n = h->added.tok[i].id + 1;
    size_t *off = xmalloc(((size_t)n + 1) * sizeof(size_t));
    for (int i = 0; i < n; i++) off[i] = SIZE_MAX;
    for (size_t i = 0; v->slots && i <= v->mask; i++) {
        if (v->slots[i].id < 0) continue;
        off[v->slots[i].id] = arena->len;
        strbuf_append(arena, strmap_key(v, &v->slots[i]), v->slots[i].len);
        strbuf_append(arena, "", 1);
    }
    h->id_special = xcalloc((size_t)n + 1, sizeof(bool));
    for (int i = 0; i < h->added.n; i++) {
        const struct added_token *k = &h->added.tok[i];
        off[k->id] = arena->len;
        strbuf_append(arena, k->content, k->len + 1);
        h->id_special[k->id] = k->special;
        strmap_put(&h->added_ids, k->content, k->len, k->id);
    }
    h->id_piece = xcalloc((size_t)n + 1, sizeof(char *));
    for (int i = 0; i < n; i++) h->id_piece[i] = off[i] == SIZE_MAX ? NULL : arena->s + off[i];
    h->n_ids = n;
    free(off);
}

static int load_all(const struct loader *L, json_t *root, struct hf *h)
{
    json_t *o;
    if ((o = json_object_get(root, "normalizer")) && !json_is_null(o)) {
        h->norm = xcalloc(1, sizeof(*h->norm));
        if (load_normalizer(L, o, h->norm)) return -1;
    }
    if ((o = json_object_get(root, "pre_tokenizer")) && !json_is_null(o)) {
        h->pre = xcalloc(1, sizeof(*h->pre));
        if (load_pretok(L, o, h->pre)) return -1;
    }
    if ((o = json_object_get(root, "decoder")) && !json_is_null(o)) {
        h->dec = xcalloc(1, sizeof(*h->dec));
        if (load_decoder(L, o, h->dec)) return -1;
    }
    if (load_model(L, json_object_get(root, "model"), &h->bpe) ||
        load_added(L, json_object_get(root, "added_tokens"), &h->added) ||
        load_post(L, json_object_get(root, "post_processor"), h))
        return -1;
    if (added_build(&h->added, h->norm)) return fail(L, "added_tokens: a token's text does not normalize");
    return 0;
}

struct hf *hf_load(const char *path, char *err, size_t cap)
{
    struct strbuf text = {0};
    int rc = strbuf_read_file(&text, path, (size_t)1 << 31);
    struct hf *h = NULL;
    if (rc) snprintf(err, cap, "%s: %s", path, rc == -1 ? "cannot be read" : "larger than 2 GiB");
    else h = hf_load_text(text.s ? text.s : "", text.len, path, err, cap);
    strbuf_free(&text);
    return h;
}

/* The rest of the file, as a JSON tree; NULL after fail(). */
static json_t *parse_rest(const struct loader *L, const char *text, size_t len)
{
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_ALLOW_NUL, &je);
    if (!root || !json_is_object(root)) {
        fail(L, "bad JSON: %s (line %d, column %d)", root ? "not an object" : je.text, je.line, je.column);
        json_decref(root);
        return NULL;
    }
    return root;
}

struct hf *hf_load_text(const char *text, size_t len, const char *path, char *err, size_t cap)
{
    bytelevel_init();
    struct hf *h = xcalloc(1, sizeof(*h));
    struct strbuf rest = {0};
    char why[512];
    if (hf_json_model(text, len, &h->bpe, &rest, why, sizeof(why))) {
        struct loader L = {path, err, cap};
        fail(&L, "%s", why);
        strbuf_free(&rest);
        hf_free(h);
        return NULL;
    }
    h = hf_load_rest(h, rest.s, rest.len, path, err, cap);
    strbuf_free(&rest);
    return h;
}

struct hf *hf_load_rest(struct hf *h, const char *rest, size_t len, const char *path, char *err, size_t cap)
{
    struct loader L = {path, err, cap};
    bytelevel_init();
    json_t *root = parse_rest(&L, rest ? rest : "{}", rest ? len : 2);
    int rc = root ? load_all(&L, root, h) : -1;
    bpe_finish(&h->bpe);
    json_decref(root);
    if (rc) {
        hf_free(h);
        return NULL;
    }
    struct strbuf arena = {0};
    build_ids(h, &arena);
    h->arena = arena.s;
    return h;
}
