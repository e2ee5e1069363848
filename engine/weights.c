/* weights.c: name lookup, shape checks and the tensor-parallel slice. */
#include "weights.h"

#include <stdio.h>
#include <string.h>

#include "../base/err.h"
#include "../kernels/quant.h"

static void *own(struct weights *w, size_t n)
{
    w->owned = xrealloc(w->owned, (w->n_owned + 1) * sizeof(void *));
    return w->owned[w->n_owned++] = xmalloc(n);
}

/* The file a missing tensor was looked for in: the one weights file, or the
 * index of a sharded folder. */
static void weights_file(const safetensors *st, char *buf, size_t n)
{
    const char *f = st_count(st) ? st_at(st, 0)->file : "model.safetensors";
    for (int i = 1; i < st_count(st); i++) {
        if (strcmp(st_at(st, i)->file, f)) {
            const char *slash = strrchr(f, '/');
            snprintf(buf, n, "%.*smodel.safetensors.index.json", slash ? (int)(slash - f + 1) : 0, f);
            return;
        }
    }
    snprintf(buf, n, "%s", f);
}

static int find(const safetensors *st, const char *name, int64_t rows, int64_t cols,
                const struct st_tensor **out)
{
    const struct st_tensor *t = st_find(st, name);
    if (!t) {
        char file[4096];
        weights_file(st, file, sizeof(file));
        return err_set(ERR_MODEL, "%s: tensor \"%s\" is missing", file, name);
    }
    const char *shown = t->orig_name ? t->orig_name : name; /* as the file names it */
    if (!t->dtype_ok)
        return err_set(ERR_UNSUPPORTED, "%s: tensor \"%s\" has dtype %s (supported: F32, F16, BF16)",
                       t->file, shown, t->dtype_name);
    bool ok = cols ? (t->ndim == 2 && t->shape[0] == rows && t->shape[1] == cols)
                   : (t->ndim == 1 && t->shape[0] == rows);
    if (!ok) {
        char got[64] = "", want[48];
        for (int i = 0; i < t->ndim; i++)
            snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%lld", i ? ", " : "",
                     (long long)t->shape[i]);
        if (cols) snprintf(want, sizeof(want), "[%lld, %lld]", (long long)rows, (long long)cols);
        else snprintf(want, sizeof(want), "[%lld]", (long long)rows);
        return err_set(ERR_MODEL, "%s: tensor \"%s\" has shape [%s], expected %s", t->file, shown, got, want);
    }
    *out = t;
    return 0;
}

/* Elements [i0, i0 + n) of a 1-D weight of `len` as an owned fp32 copy. */
static int load_vec_part(struct weights *w, const safetensors *st, const char *name, int64_t len, int64_t i0,
                         int64_t n, float **out)
{
    const struct st_tensor *t;
    int rc = find(st, name, len, 0, &t);
    if (rc) return rc;
    float *v = own(w, n * sizeof(float));
    for (int64_t i = 0; i < n; i++) v[i] = dtype_get(t->data, t->dtype, i0 + i);
    *out = v;
    return 0;
}

static int load_vec(struct weights *w, const safetensors *st, const char *name, int64_t n, float **out)
{
    return load_vec_part(w, st, name, n, 0, n, out);
}

/* Rows [r0, r0 + nr) of a [rows, cols] weight: a view, no copy. */
static int load_rows(const safetensors *st, const char *name, int64_t rows, int64_t cols,
                     int64_t r0, int64_t nr, struct tensor *out)
{
    const struct st_tensor *t;
    int rc = find(st, name, rows, cols, &t);
    if (rc) return rc;
    out->dtype = t->dtype;
    out->rows = nr;
    out->cols = cols;
    out->data = (const char *)t->data + r0 * dtype_row_bytes(t->dtype, cols);
    return 0;
}

/* Columns [c0, c0 + nc) of a [rows, cols] weight: a copy unless whole. */
static int load_cols(struct weights *w, const safetensors *st, const char *name, int64_t rows,
                     int64_t cols, int64_t c0, int64_t nc, struct tensor *out)
{
    int rc = load_rows(st, name, rows, cols, 0, rows, out);
    if (rc || nc == cols) return rc;
    int block = dtype_block(out->dtype);
    if (c0 % block || nc % block)
        return err_set(ERR_UNSUPPORTED, "%s: tensor \"%s\" is %s: its %lld columns do not split into %d ranks at "
                       "blocks of %d", st_find(st, name)->file, name, dtype_name(out->dtype), (long long)cols,
                       w->world, block);
    size_t row = dtype_row_bytes(out->dtype, cols), part = dtype_row_bytes(out->dtype, nc);
    size_t skip = dtype_row_bytes(out->dtype, c0);
    char *dst = own(w, rows * part);
    for (int64_t r = 0; r < rows; r++) memcpy(dst + r * part, (const char *)out->data + r * row + skip, part);
    out->cols = nc;
    out->data = dst;
    return 0;
}

static int load_layer(struct weights *w, const struct model_config *c, const safetensors *st,
                      int l, struct layer_weights *L)
{
    char n[256];
    int64_t H = c->hidden_size, hd = c->head_dim;
    int64_t q0 = (int64_t)w->rank * w->n_heads * hd;
    /* KV heads: this rank's block, or the one head its query heads use when replicated */
    int64_t kv_first = c->n_kv_heads >= w->world
                           ? (int64_t)w->rank * w->n_kv_heads
                           : (int64_t)w->rank * w->n_heads / (c->n_heads / c->n_kv_heads);
    int64_t i0 = (int64_t)w->rank * w->inter;
    int rc;
#define NAME(s) (snprintf(n, sizeof(n), "model.layers.%d.%s", l, s), n)
    if ((rc = load_vec(w, st, NAME("input_layernorm.weight"), H, &L->attn_norm)) ||
        (rc = load_vec(w, st, NAME("post_attention_layernorm.weight"), H, &L->mlp_norm)) ||
        (rc = load_rows(st, NAME("self_attn.q_proj.weight"), c->n_heads * hd, H, q0, w->n_heads * hd, &L->wq)) ||
        (rc = load_rows(st, NAME("self_attn.k_proj.weight"), c->n_kv_heads * hd, H, kv_first * hd, w->n_kv_heads * hd, &L->wk)) ||
        (rc = load_rows(st, NAME("self_attn.v_proj.weight"), c->n_kv_heads * hd, H, kv_first * hd, w->n_kv_heads * hd, &L->wv)) ||
        (rc = load_cols(w, st, NAME("self_attn.o_proj.weight"), H, c->n_heads * hd, q0, w->n_heads * hd, &L->wo)) ||
        (rc = load_rows(st, NAME("mlp.gate_proj.weight"), c->intermediate_size, H, i0, w->inter, &L->w_gate)) ||
        (rc = load_rows(st, NAME("mlp.up_proj.weight"), c->intermediate_size, H, i0, w->inter, &L->w_up)) ||
        (rc = load_cols(w, st, NAME("mlp.down_proj.weight"), H, c->intermediate_size, i0, w->inter, &L->w_down)))
        return rc;
    if (c->qkv_bias &&
        ((rc = load_vec_part(w, st, NAME("self_attn.q_proj.bias"), c->n_heads * hd, q0, w->n_heads * hd, &L->bq)) ||
         (rc = load_vec_part(w, st, NAME("self_attn.k_proj.bias"), c->n_kv_heads * hd, kv_first * hd,
                             w->n_kv_heads * hd, &L->bk)) ||
         (rc = load_vec_part(w, st, NAME("self_attn.v_proj.bias"), c->n_kv_heads * hd, kv_first * hd,
                             w->n_kv_heads * hd, &L->bv))))
        return rc;
    if (c->o_bias && (rc = load_vec(w, st, NAME("self_attn.o_proj.bias"), H, &L->bo))) return rc;
    if (c->qk_norm && ((rc = load_vec(w, st, NAME("self_attn.q_norm.weight"), hd, &L->q_norm)) ||
                       (rc = load_vec(w, st, NAME("self_attn.k_norm.weight"), hd, &L->k_norm))))
        return rc;
#undef NAME
    return 0;
}

int weights_load(struct weights *w, const struct model_config *c, const safetensors *st,
                 int rank, int world)
{
    memset(w, 0, sizeof(*w));
    w->rank = rank;
    w->world = world;
    if (c->n_heads % world || c->intermediate_size % world ||
        (c->n_kv_heads >= world ? c->n_kv_heads % world : world % c->n_kv_heads))
        return err_set(ERR_MODEL,
                       "model config: %d heads, %d KV heads and intermediate size %d do not split over %d ranks",
                       c->n_heads, c->n_kv_heads, c->intermediate_size, world);
    w->n_heads = c->n_heads / world;
    w->n_kv_heads = c->n_kv_heads >= world ? c->n_kv_heads / world : 1;
    w->inter = c->intermediate_size / world;
    int64_t H = c->hidden_size, V = c->vocab_size;
    int rc = load_rows(st, "model.embed_tokens.weight", V, H, 0, V, &w->embed);
    if (!rc) rc = load_vec(w, st, "model.norm.weight", H, &w->final_norm);
    if (!rc) {
        if (c->tie_word_embeddings && !st_find(st, "lm_head.weight")) w->lm_head = w->embed;
        else rc = load_rows(st, "lm_head.weight", V, H, 0, V, &w->lm_head);
    }
    w->n_layers = c->n_layers;
    w->layers = xcalloc(c->n_layers, sizeof(*w->layers));
    for (int l = 0; l < c->n_layers && !rc; l++) rc = load_layer(w, c, st, l, &w->layers[l]);
    if (rc) weights_free(w);
    return rc;
}

void weights_free(struct weights *w)
{
    for (int i = 0; i < w->n_owned; i++) free(w->owned[i]);
    free(w->owned);
    free(w->layers);
    memset(w, 0, sizeof(*w));
}

static void quantize_tensor(struct weights *w, struct tensor *t, enum dtype to, safetensors *st)
{
    if (dtype_is_quant(t->dtype) || t->cols % 32) return;
    size_t in_row = dtype_row_bytes(t->dtype, t->cols), out_row = dtype_row_bytes(to, t->cols);
    char *dst = own(w, (size_t)t->rows * out_row);
    float *row = xmalloc((size_t)t->cols * sizeof(float));
    for (int64_t r = 0; r < t->rows; r++) {
        dequantize_row(t->dtype, (const char *)t->data + r * in_row, row, t->cols);
        (to == DTYPE_Q8_0   ? quantize_row_q8_0
         : to == DTYPE_Q4_0 ? quantize_row_q4_0
                            : quantize_row_f8_rows)(row, dst + r * out_row, t->cols);
    }
    free(row);
    st_release(st, t->data, (size_t)t->rows * in_row); /* no-op unless it is the file's mapping */
    t->data = dst;
    t->dtype = to;
}

void weights_quantize(struct weights *w, enum dtype to, safetensors *st)
{
    for (int l = 0; l < w->n_layers; l++) {
        struct layer_weights *L = &w->layers[l];
        struct tensor *m[7] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (int i = 0; i < 7; i++) quantize_tensor(w, m[i], to, st);
    }
    /* fp8 leaves the LM head as it is (as vLLM's fp8 does) */
    if (w->lm_head.data && w->lm_head.data != w->embed.data && to != DTYPE_F8_ROWS)
        quantize_tensor(w, &w->lm_head, DTYPE_Q8_0, st);
}
