/* tokenizer.c: SentencePiece model + tokenizer_config.json. */
#include "tokenizer.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spm.h"

struct tokenizer {
    spm *sp;
    bool add_bos;
    int bos, eos, unk;
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
        snprintf(err, cap, "%s: %s \"%s\" is not in tokenizer.model", path, key, json_string_value(v));
        return -1;
    }
    *id = i;
    return 0;
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
    json_decref(cfg);
    return rc;
}

int tok_load(tokenizer **out, const char *dir, char *err, size_t cap)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/tokenizer.model", dir);
    if (access(path, R_OK) != 0) {
        snprintf(err, cap, "%s: missing (only SentencePiece tokenizer.model is supported)", path);
        return -1;
    }
    char why[512] = "";
    spm *sp = spm_load(path, why, sizeof(why));
    if (!sp) {
        snprintf(err, cap, "%s: not a SentencePiece model: %s", path, why);
        return -2;
    }
    tokenizer *t = calloc(1, sizeof(*t));
    if (!t) abort();
    t->sp = sp;
    t->add_bos = true;
    t->bos = spm_bos_id(sp);
    t->eos = spm_eos_id(sp);
    t->unk = spm_unk_id(sp);
    int rc = load_config(t, dir, err, cap);
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
    spm_free(t->sp);
    free(t);
}

int tok_encode(const tokenizer *t, const char *text, size_t len, bool add_bos, int32_t *ids, int cap)
{
    int bos = add_bos && t->bos >= 0;
    int n = spm_encode(t->sp, text, len, ids + (cap > 0 ? bos : 0), cap > bos ? cap - bos : 0);
    if (n < 0 || (bos && cap < 1)) return -(abs(n) + bos);
    if (bos) ids[0] = t->bos;
    return n + bos;
}

int tok_encode_all(const tokenizer *t, const char *text, size_t len, bool add_bos, int32_t **ids)
{
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

int tok_vocab_size(const tokenizer *t) { return spm_vocab_size(t->sp); }
const char *tok_id_to_piece(const tokenizer *t, int id) { return spm_id_to_piece(t->sp, id); }

int tok_piece_to_id(const tokenizer *t, const char *piece)
{
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
