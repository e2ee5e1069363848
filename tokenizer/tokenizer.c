/* tokenizer.c: the facade: a SentencePiece tokenizer.model (spm.cc) or a
 * Hugging Face tokenizer.json (hf*.c), plus tokenizer_config.json; or a
 * GGUF file's metadata as the tokenizer.json pipeline (gguf_vocab.c). */
#include "tokenizer.h"

#include <dirent.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../base/err.h"
#include "hf.h"
#include "spm.h"

struct tokenizer {
    spm *sp;       /* one of sp, hf */
    struct hf *hf;
    bool add_bos;  /* sp: BOS first by default; hf: the post-processor's tokens */
    int bos, eos, unk;
    char *chat_template, *tool_template; /* NULL when none */
};

/* "bos_token": "<s>" or {"content": "<s>", ...} -> id, or keep *id. */
static int special_id(const tokenizer *t, json_t *cfg, const char *key, int *id,
                      const char *path, char *err, size_t cap)
{
    json_t *v = json_object_get(cfg, key);
    if (json_is_object(v)) v = json_object_get(v, "content");
    if (!v || json_is_null(v)) return 0;
    if (!json_is_string(v)) {
        snprintf(err, cap, "%s: \"%s\" must be a string or an object with \"content\"", path, key);
        return -1;
    }
    int i = tok_piece_to_id(t, json_string_value(v));
    if (i < 0) {
        snprintf(err, cap, "%s: %s \"%s\" is not in the vocabulary", path, key, json_string_value(v));
        return -1;
    }
    *id = i;
    return 0;
}

/* transformers' LlamaTokenizerFast rebuilds the post-processor from
 * add_bos_token (default true) and add_eos_token (default false). */
static void llama_post_processor(tokenizer *t, json_t *cfg)
{
    const char *cls = json_string_value(json_object_get(cfg, "tokenizer_class"));
    if (!cls || (strcmp(cls, "LlamaTokenizer") && strcmp(cls, "LlamaTokenizerFast"))) return;
    struct hf *h = t->hf;
    h->n_post_pre = h->n_post_post = 0;
    if (!json_is_false(json_object_get(cfg, "add_bos_token")) && t->bos >= 0) {
        h->post_pre = xrealloc(h->post_pre, sizeof(int32_t));
        h->post_pre[h->n_post_pre++] = t->bos;
    }
    if (json_is_true(json_object_get(cfg, "add_eos_token")) && t->eos >= 0) {
        h->post_post = xrealloc(h->post_post, sizeof(int32_t));
        h->post_post[h->n_post_post++] = t->eos;
    }
}

/* tokenizer_config.json's "chat_template": a string, or a list of
 * {"name", "template"} ("default", "tool_use"). chat_template.jinja, read
 * first, wins, as in transformers. */
static void config_templates(tokenizer *t, json_t *cfg)
{
    json_t *ct = json_object_get(cfg, "chat_template"), *e;
    size_t i;
    if (json_is_string(ct) && !t->chat_template) t->chat_template = xstrdup(json_string_value(ct));
    json_array_foreach(ct, i, e) {
        const char *name = json_string_value(json_object_get(e, "name"));
        const char *text = json_string_value(json_object_get(e, "template"));
        if (!name || !text) continue;
        if (!strcmp(name, "default") && !t->chat_template) t->chat_template = xstrdup(text);
        if (!strcmp(name, "tool_use") && !t->tool_template) t->tool_template = xstrdup(text);
    }
}

/* dir/chat_template.jinja, when it is there (at most 1 MiB). */
static void jinja_file(tokenizer *t, const char *dir)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/chat_template.jinja", dir);
    struct strbuf b = {0};
    if (strbuf_read_file(&b, path, 1 << 20) == 0) t->chat_template = strbuf_take(&b);
    strbuf_free(&b);
}

static int load_config(tokenizer *t, const char *dir, char *err, size_t cap)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/tokenizer_config.json", dir);
    if (access(path, F_OK) != 0) return 0;
    json_error_t je;
    json_t *cfg = json_load_file(path, 0, &je);
    if (!cfg || !json_is_object(cfg)) {
        snprintf(err, cap, "%s: bad JSON: %s (line %d, column %d)", path, cfg ? "not an object" : je.text,
                 je.line, je.column);
        json_decref(cfg);
        return -2;
    }
    int rc = 0;
    json_t *ab = json_object_get(cfg, "add_bos_token");
    if (ab && !json_is_null(ab)) {
        if (!json_is_boolean(ab)) {
            snprintf(err, cap, "%s: \"add_bos_token\" must be true or false", path);
            rc = -3;
        }
        t->add_bos = json_is_true(ab);
    }
    if (!rc && (special_id(t, cfg, "bos_token", &t->bos, path, err, cap) ||
                special_id(t, cfg, "eos_token", &t->eos, path, err, cap) ||
                special_id(t, cfg, "unk_token", &t->unk, path, err, cap)))
        rc = -3;
    if (!rc && t->hf) llama_post_processor(t, cfg);
    if (!rc) config_templates(t, cfg);
    json_decref(cfg);
    return rc;
}

int tok_load(tokenizer **out, const char *dir, char *err, size_t cap)
{
    return tok_load_as(out, dir, TOK_AUTO, err, cap);
}

static tokenizer *load_spm(const char *path, char *err, size_t cap)
{
    char why[512] = "";
    spm *sp = spm_load(path, why, sizeof(why));
    if (!sp) {
        snprintf(err, cap, "%s: not a SentencePiece model: %s", path, why);
        return NULL;
    }
    tokenizer *t = xcalloc(1, sizeof(*t));
    t->sp = sp;
    t->bos = spm_bos_id(sp);
    t->eos = spm_eos_id(sp);
    t->unk = spm_unk_id(sp);
    return t;
}

static tokenizer *load_hf(const char *path, char *err, size_t cap)
{
    struct hf *h = hf_load(path, err, cap);
    if (!h) return NULL;
    tokenizer *t = xcalloc(1, sizeof(*t));
    t->hf = h;
    t->bos = t->eos = -1;
    t->unk = h->bpe.unk;
    return t;
}

static tokenizer *load_gguf(const char *path, char *err, size_t cap, int *rc)
{
    struct gguf_vocab v;
    if ((*rc = gguf_vocab_load(&v, path, err, cap))) return NULL;
    tokenizer *t = xcalloc(1, sizeof(*t));
    t->hf = v.hf;
    t->add_bos = v.add_bos;
    t->bos = v.bos;
    t->eos = v.eos;
    t->unk = v.unk;
    t->chat_template = v.chat_template;
    t->tool_template = v.tool_template;
    return t;
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* How many *.gguf files dir holds; path gets the first one's. */
static int find_gguf(const char *dir, char *path, size_t path_cap)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len <= 5 || strcmp(e->d_name + len - 5, ".gguf")) continue;
        if (n++ == 0) snprintf(path, path_cap, "%s/%s", dir, e->d_name);
    }
    if (d) closedir(d);
    return n;
}

/* TOK_AUTO for dir: a path that is a file (or names a .gguf) is GGUF; a
 * folder's tokenizer.json, else tokenizer.model, else its one .gguf. */
static enum tok_impl pick(const char *dir, const char *json, const char *model, char *gguf, size_t gguf_cap,
                          int *n_gguf)
{
    struct stat st;
    size_t len = strlen(dir);
    if (stat(dir, &st) == 0 ? !S_ISDIR(st.st_mode) : len > 5 && !strcmp(dir + len - 5, ".gguf")) return TOK_GGUF;
    if (access(json, F_OK) == 0) return TOK_HF_JSON;
    if (access(model, F_OK) == 0) return TOK_SENTENCEPIECE;
    *n_gguf = find_gguf(dir, gguf, gguf_cap);
    return *n_gguf == 1 ? TOK_GGUF : TOK_SENTENCEPIECE;
}

/* A .gguf file, or a folder's tokenizer.json / tokenizer.model / only .gguf. */
static int load_file(tokenizer **out, const char *dir, enum tok_impl *implp, char *err, size_t cap)
{
    char json[4096], model[4096], gguf[4096];
    int n_gguf = 0;
    snprintf(json, sizeof(json), "%s/tokenizer.json", dir);
    snprintf(model, sizeof(model), "%s/tokenizer.model", dir);
    snprintf(gguf, sizeof(gguf), "%s", dir);
    enum tok_impl impl = *implp == TOK_AUTO ? pick(dir, json, model, gguf, sizeof(gguf), &n_gguf) : *implp;
    if (*implp == TOK_GGUF && is_dir(dir)) n_gguf = find_gguf(dir, gguf, sizeof(gguf));
    *implp = impl;
    const char *path = impl == TOK_HF_JSON ? json : impl == TOK_SENTENCEPIECE ? model : gguf;
    if (n_gguf > 1 || (impl == TOK_GGUF && !n_gguf && is_dir(dir))) {
        if (n_gguf) snprintf(err, cap, "%s: no tokenizer.json or tokenizer.model, and %d .gguf files: name one", dir,
                             n_gguf);
        else snprintf(err, cap, "%s: no .gguf file", dir);
        return -1;
    }
    if (access(path, R_OK) != 0) {
        if (impl == TOK_SENTENCEPIECE)
            snprintf(err, cap, "%s: missing (and no tokenizer.json or .gguf file beside it)", path);
        else snprintf(err, cap, "%s: missing or unreadable", path);
        return -1;
    }
    int rc = -2;
    *out = impl == TOK_HF_JSON       ? load_hf(path, err, cap)
           : impl == TOK_SENTENCEPIECE ? load_spm(path, err, cap)
                                       : load_gguf(path, err, cap, &rc);
    if (*out && impl != TOK_GGUF) (*out)->add_bos = true;
    return *out ? 0 : rc;
}

int tok_load_as(tokenizer **out, const char *dir, enum tok_impl impl, char *err, size_t cap)
{
    tokenizer *t = NULL;
    int rc = load_file(&t, dir, &impl, err, cap);
    if (rc) return rc;
    if (impl == TOK_GGUF) { /* a GGUF file carries its own settings */
        *out = t;
        return 0;
    }
    jinja_file(t, dir);
    rc = load_config(t, dir, err, cap);
    if (rc) {
        tok_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

void tok_free(tokenizer *t)
{
    if (!t) return;
    if (t->sp) spm_free(t->sp);
    hf_free(t->hf);
    free(t->chat_template);
    free(t->tool_template);
    free(t);
}

/* tokenizer.json encodes valid UTF-8: invalid bytes become U+FFFD first, as
 * Python's decode(errors="replace") would give transformers. Returns 0 or -1. */
static int hf_encode_text(const tokenizer *t, const char *text, size_t len, bool add_special, struct ids *out)
{
    if (utf8_valid_prefix(text, len) == len) return hf_encode(t->hf, text, len, add_special, out);
    size_t cap = 3 * len + 1;
    char *clean = xmalloc(cap);
    size_t n = utf8_sanitize(clean, cap, text, len);
    int rc = hf_encode(t->hf, clean, n, add_special, out);
    free(clean);
    return rc;
}

int tok_encode(const tokenizer *t, const char *text, size_t len, bool add_bos, int32_t *ids, int cap)
{
    if (t->hf) {
        struct ids v = {0};
        int n = hf_encode_text(t, text, len, add_bos && t->add_bos, &v) ? INT_MIN : v.n > cap ? -v.n : v.n;
        if (n > 0) memcpy(ids, v.v, (size_t)n * sizeof(int32_t));
        free(v.v);
        return n;
    }
    int bos = add_bos && t->bos >= 0;
    int n = spm_encode(t->sp, text, len, ids + (cap > 0 ? bos : 0), cap > bos ? cap - bos : 0);
    if (n < 0 || (bos && cap < 1)) return -(abs(n) + bos);
    if (bos) ids[0] = t->bos;
    return n + bos;
}

int tok_encode_all(const tokenizer *t, const char *text, size_t len, bool add_bos, int32_t **ids)
{
    if (t->hf) {
        struct ids v = {0};
        if (hf_encode_text(t, text, len, add_bos && t->add_bos, &v)) {
            free(v.v);
            *ids = NULL;
            return -1;
        }
        *ids = v.v ? v.v : xmalloc(sizeof(int32_t));
        return v.n;
    }
    int cap = (int)(len < 1 << 28 ? len : 1 << 28) + 8, n = -1;
    for (int attempt = 0; attempt < 2 && n < 0; attempt++) { /* bytes + 8 ids fit, but for invalid UTF-8 */
        *ids = malloc((size_t)cap * sizeof(int32_t));
        if (!*ids) abort();
        n = tok_encode(t, text, len, add_bos, *ids, cap);
        if (n < 0) {
            free(*ids);
            *ids = NULL;
            cap = -n;
        }
    }
    return n < 0 ? -1 : n;
}

long tok_decode(const tokenizer *t, const int32_t *ids, int n, char *out, size_t cap)
{
    if (t->hf) {
        struct strbuf b = {0};
        hf_decode(t->hf, ids, n, &b);
        long len = (long)b.len;
        if (b.len <= cap && b.len) memcpy(out, b.s, b.len);
        strbuf_free(&b);
        return (size_t)len <= cap ? len : -len;
    }
    int vs = spm_vocab_size(t->sp);
    int32_t stackbuf[256], *ok = n <= 256 ? stackbuf : malloc(n * sizeof(int32_t));
    if (!ok) abort();
    int m = 0;
    for (int i = 0; i < n; i++)
        if (ids[i] >= 0 && ids[i] < vs) ok[m++] = ids[i];
    long r = spm_decode(t->sp, ok, m, out, cap);
    if (ok != stackbuf) free(ok);
    return r;
}

long tok_token_bytes(const tokenizer *t, int32_t id, char *out, size_t cap)
{
    if (t->sp) return spm_token_bytes(t->sp, id, out, cap);
    struct strbuf b[2] = {{0}};
    long n = hf_token_bytes(t->hf, id, b) ? -1 : (long)b[0].len;
    if (n > 0 && cap) memcpy(out, b[0].s, (size_t)n < cap ? (size_t)n : cap);
    strbuf_free(&b[0]);
    strbuf_free(&b[1]);
    return n;
}

/* Appends id's bytes to all; returns their count or -1. */
static long append_token_bytes(const tokenizer *t, int32_t id, struct strbuf *all, struct strbuf b[2])
{
    if (t->hf) {
        if (hf_token_bytes(t->hf, id, b)) return -1;
        strbuf_append(all, b[0].s ? b[0].s : "", b[0].len);
        return (long)b[0].len;
    }
    char stackbuf[256];
    long n = spm_token_bytes(t->sp, id, stackbuf, sizeof(stackbuf));
    if (n <= (long)sizeof(stackbuf)) {
        if (n > 0) strbuf_append(all, stackbuf, (size_t)n);
        return n;
    }
    char *big = xmalloc((size_t)n);
    spm_token_bytes(t->sp, id, big, (size_t)n);
    strbuf_append(all, big, (size_t)n);
    free(big);
    return n;
}

void tok_vocab_bytes_init(struct tok_vocab_bytes *vb, const tokenizer *t)
{
    int n = tok_vocab_size(t);
    vb->n = n;
    vb->len = xmalloc(((size_t)n + 1) * sizeof(int32_t));
    vb->off = xmalloc(((size_t)n + 1) * sizeof(uint32_t));
    struct strbuf all = {0}, b[2] = {{0}};
    for (int i = 0; i < n; i++) {
        vb->off[i] = (uint32_t)all.len;
        vb->len[i] = (int32_t)append_token_bytes(t, i, &all, b);
        CHECK(all.len <= UINT32_MAX);
    }
    strbuf_free(&b[0]);
    strbuf_free(&b[1]);
    vb->size = all.len;
    vb->data = strbuf_take(&all);
}

void tok_vocab_bytes_deinit(struct tok_vocab_bytes *vb)
{
    free(vb->len);
    free(vb->off);
    free(vb->data);
    memset(vb, 0, sizeof(*vb));
}

int tok_vocab_size(const tokenizer *t) { return t->hf ? t->hf->n_ids : spm_vocab_size(t->sp); }

const char *tok_id_to_piece(const tokenizer *t, int id)
{
    if (t->hf) return id >= 0 && id < t->hf->n_ids ? t->hf->id_piece[id] : NULL;
    return spm_id_to_piece(t->sp, id);
}

int tok_piece_to_id(const tokenizer *t, const char *piece)
{
    if (t->hf) return hf_token_id(t->hf, piece, strlen(piece));
    int id = spm_piece_to_id(t->sp, piece);
    /* PieceToId maps unknown pieces to unk: tell them apart */
    if (id == spm_unk_id(t->sp) && strcmp(piece, spm_id_to_piece(t->sp, id) ? spm_id_to_piece(t->sp, id) : ""))
        return -1;
    return id;
}

int tok_bos_id(const tokenizer *t) { return t->bos; }
int tok_eos_id(const tokenizer *t) { return t->eos; }
int tok_unk_id(const tokenizer *t) { return t->unk; }
bool tok_add_bos(const tokenizer *t) { return t->add_bos; }

const char *tok_chat_template(const tokenizer *t, bool tools)
{
    return tools && t->tool_template ? t->tool_template : t->chat_template;
}
