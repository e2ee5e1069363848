/* model.c: the Llama forward, written once against the backend op table.
 *
 *   x = embed(ids)
 *   for each layer:
 *     h = rmsnorm(x)                       (fused: x += residual first)
 *     q, k, v = h Wq, h Wk, h Wv           (+ biases: Qwen2; one stacked GEMM
 *                                           where the backend stacks them)
 *     q, k = rmsnorm of each head          (Qwen3)
 *     rope(q, k); kv_write(k, v)           (one op after a stacked GEMM)
 *     a = attention(q, paged K/V)          (causal, GQA, varlen)
 *     residual = all_reduce(a Wo)          (+ bias: Qwen3 with attention_bias)
 *     h = rmsnorm(x += residual)
 *     residual = all_reduce((silu(h Wgate) * h Wup) Wdown)  (gate|up stacked too)
 *   logits = rmsnorm(x += residual)[output rows] Wlm
 */
#include "model.h"

#include <math.h>
#include <string.h>

#include "comm.h"
#include "../base/err.h"
#include "gguf_model.h"
#include "model_impl.h"

/* What rank 0 sends before each step (then the arrays), or stop. */
struct plan_header {
    int32_t stop, n_tokens, n_seqs, max_blocks, n_outputs;
};

static void *balloc(struct backend *b, size_t n)
{
    void *p = b->ops->alloc(b, n);
    CHECKF(p, "backend %s: cannot allocate %zu bytes", b->ops->name, n);
    return p;
}

/* The mapped pages of a host weight the backend has copied go back. */
static void release(model *m, const struct tensor *host)
{
    st_release(m->st, host->data, (size_t)host->rows * dtype_row_bytes(host->dtype, host->cols));
}

/* One weight to the backend; the mapped file pages of a weight it copied go
 * back to the kernel (a CPU view keeps them). */
static void upload(model *m, const struct tensor *host, struct tensor *dev, enum weight_use use)
{
    m->b->ops->upload_weight(m->b, host, dev, use);
    if (dev->data != host->data) release(m, host);
}

/* The seven matmul weights of a layer, in one order for uploading and freeing. */
static void layer_matmuls(struct layer_weights *L, struct tensor *out[7])
{
    struct tensor *w[7] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
    memcpy(out, w, sizeof(w));
}

/* The 1-D fp32 weights of a layer (NULL where the architecture has none)
 * and their lengths, in one order for uploading and freeing. */
enum { LAYER_VECS = 8 };
static void layer_vectors(const model *m, struct layer_weights *L, float **out[LAYER_VECS], size_t n[LAYER_VECS])
{
    size_t H = m->cfg.hidden_size, hd = m->cfg.head_dim;
    size_t nq = (size_t)m->host.n_heads * hd, nkv = (size_t)m->host.n_kv_heads * hd;
    float **v[LAYER_VECS] = {&L->attn_norm, &L->mlp_norm, &L->bq, &L->bk, &L->bv, &L->bo, &L->q_norm, &L->k_norm};
    size_t len[LAYER_VECS] = {H, H, nq, nkv, nkv, H, hd, hd};
    memcpy(out, v, sizeof(v));
    memcpy(n, len, sizeof(len));
}

/* A small fp32 vector to the device; NULL stays NULL. */
static float *upload_vec(model *m, const float *host, size_t n)
{
    if (!host) return NULL;
    float *d = balloc(m->b, n * sizeof(float));
    m->b->ops->to_device(m->b, d, host, n * sizeof(float));
    return d;
}

/* On backends that stack projections: q/k/v in one weight unless biases or
 * per-head norms come between the GEMM and RoPE, gate/up in one; either only
 * when its parts share a type (GGUF files may mix them). The parts of a
 * stacked weight are not uploaded again. */
static void upload_stacked(model *m, const struct layer_weights *hl, struct layer_weights *dl)
{
    const struct backend_ops *o = m->b->ops;
    if (!o->upload_stacked || !o->rope_kv_write || !o->silu_mul_stacked) return;
    if (!hl->bq && !hl->q_norm && hl->wq.dtype == hl->wk.dtype && hl->wq.dtype == hl->wv.dtype) {
        const struct tensor *qkv[] = {&hl->wq, &hl->wk, &hl->wv};
        o->upload_stacked(m->b, qkv, 3, &dl->wqkv);
        for (int i = 0; i < 3; i++) release(m, qkv[i]);
        dl->wq = dl->wk = dl->wv = (struct tensor){0};
    }
    if (hl->w_gate.dtype == hl->w_up.dtype) {
        const struct tensor *gu[] = {&hl->w_gate, &hl->w_up};
        o->upload_stacked(m->b, gu, 2, &dl->w_gate_up);
        for (int i = 0; i < 2; i++) release(m, gu[i]);
        dl->w_gate = dl->w_up = (struct tensor){0};
    }
}

static void upload_weights(model *m)
{
    struct weights *h = &m->host, *d = &m->dev;
    *d = *h;
    d->layers = xcalloc(h->n_layers, sizeof(*d->layers));
    d->owned = NULL;
    d->n_owned = 0;
    /* tied embeddings are one upload; only rank 0 computes logits */
    bool tied = h->lm_head.data == h->embed.data;
    upload(m, &h->embed, &d->embed, tied && m->p.rank == 0 ? WEIGHT_BOTH : WEIGHT_ROWS);
    if (tied) d->lm_head = d->embed;
    else if (m->p.rank == 0) upload(m, &h->lm_head, &d->lm_head, WEIGHT_MATMUL);
    else d->lm_head = (struct tensor){0};
    for (int l = 0; l < h->n_layers; l++) {
        struct layer_weights *hl = &h->layers[l], *dl = &d->layers[l];
        *dl = *hl;
        upload_stacked(m, hl, dl);
        struct tensor *src[7], *dst[7];
        layer_matmuls(hl, src);
        layer_matmuls(dl, dst);
        for (int i = 0; i < 7; i++)
            if (dst[i]->data == src[i]->data) upload(m, src[i], dst[i], WEIGHT_MATMUL); /* not stacked */
        /* norms and biases are small fp32 arrays: copy them to the device */
        float **hv[LAYER_VECS], **dv[LAYER_VECS];
        size_t n[LAYER_VECS];
        layer_vectors(m, hl, hv, n);
        layer_vectors(m, dl, dv, n);
        for (int i = 0; i < LAYER_VECS; i++) *dv[i] = upload_vec(m, *hv[i], n[i]);
    }
    d->final_norm = upload_vec(m, h->final_norm, m->cfg.hidden_size);
}

static void alloc_buffers(model *m)
{
    struct backend *b = m->b;
    const struct model_config *c = &m->cfg;
    size_t T = m->p.max_step_tokens, H = c->hidden_size, hd = c->head_dim;
    size_t nq = (size_t)m->dev.n_heads * hd, nkv = (size_t)m->dev.n_kv_heads * hd, I = m->dev.inter;
    size_t f = sizeof(float);
    bool qkv = false, gate_up = false; /* any layer's stacked */
    for (int l = 0; l < m->dev.n_layers; l++)
        qkv |= m->dev.layers[l].wqkv.data != NULL, gate_up |= m->dev.layers[l].w_gate_up.data != NULL;
    m->qkv = qkv ? balloc(b, T * (nq + 2 * nkv) * f) : NULL;
    m->x = balloc(b, T * H * f);
    m->xn = balloc(b, T * H * f);
    m->res = balloc(b, T * H * f);
    m->q = balloc(b, T * nq * f);
    m->att = balloc(b, T * nq * f);
    m->k = balloc(b, T * nkv * f);
    m->v = balloc(b, T * nkv * f);
    m->gate = balloc(b, T * I * (gate_up ? 2 : 1) * f);
    m->up = balloc(b, T * I * f);
    m->xo = balloc(b, T * H * f);
    m->logits = m->p.rank == 0 ? balloc(b, T * (size_t)c->vocab_size * f) : NULL; /* workers: no logits */
    m->cos = balloc(b, T * hd / 2 * f);
    m->sin = balloc(b, T * hd / 2 * f);
    m->h_cos = xmalloc(T * hd / 2 * f);
    m->h_sin = xmalloc(T * hd / 2 * f);
    m->d_ids = balloc(b, T * sizeof(int32_t));
    m->d_pos = balloc(b, T * sizeof(int32_t));
    m->d_tok_seq = balloc(b, T * sizeof(int32_t));
    m->d_out = balloc(b, T * sizeof(int32_t));
    m->d_argmax = balloc(b, T * sizeof(int32_t));
    m->d_slots = balloc(b, T * sizeof(int64_t));
    m->d_bt = balloc(b, (size_t)m->p.max_seqs * m->max_blocks * sizeof(int32_t));
    m->d_seq_start = balloc(b, ((size_t)m->p.max_seqs + 1) * sizeof(int32_t));
    m->h_seq_start = xmalloc(((size_t)m->p.max_seqs + 1) * sizeof(int32_t));
    size_t kv_bytes = (size_t)m->p.num_kv_blocks * m->p.block_size * nkv * dtype_size(b->kv_dtype);
    m->kv = xcalloc(1, c->n_layers * (sizeof(*m->kv) + 2 * sizeof(float))); /* and an fp8 cache's scales */
    float *scales = b->kv_dtype == DTYPE_F8_E4M3 ? (float *)(m->kv + c->n_layers) : NULL;
    for (int l = 0; l < c->n_layers; l++) {
        m->kv[l] = (struct kv_layer){balloc(b, kv_bytes), balloc(b, kv_bytes), m->p.block_size,
                                     m->dev.n_kv_heads, (int)hd, scales ? scales + 2 * l : NULL};
    }
}

int model_load(model **out, const char *dir, struct backend *b, const struct model_params *p)
{
    model *m = xcalloc(1, sizeof(*m));
    m->b = b;
    m->p = *p;
    char gguf_file[4096];
    int rc = model_config_load(&m->cfg, dir), is_gguf = 0;
    if (!rc && (is_gguf = gguf_model_path(dir, gguf_file, sizeof(gguf_file))) < 0) rc = is_gguf;
    if (!rc) rc = is_gguf ? gguf_model_open(&m->st, gguf_file, &m->cfg) : st_open(&m->st, dir);
    if (!rc) rc = weights_load(&m->host, &m->cfg, m->st, p->rank, p->world);
    if (!rc && p->quantize != DTYPE_F32) weights_quantize(&m->host, p->quantize, m->st);
    if (rc) {
        st_close(m->st);
        free(m);
        return rc;
    }
    m->max_blocks = (m->cfg.max_pos + p->block_size - 1) / p->block_size;
    m->inv_freq = xmalloc(m->cfg.head_dim / 2 * sizeof(float));
    model_config_rope_inv_freq(&m->cfg, m->inv_freq);
    upload_weights(m);
    alloc_buffers(m);
    m->graphs = model__graphs_create(m);
    *out = m;
    return 0;
}

/* Frees what upload_weight allocated: not a CPU view of the host weight. */
static void free_weight(model *m, const struct tensor *dev, const struct tensor *host)
{
    if (dev->data && dev->data != host->data) m->b->ops->free(m->b, (void *)dev->data);
    if (dev->packed) m->b->ops->free(m->b, (void *)dev->packed);
}

void model_destroy(model *m)
{
    if (!m) return;
    if (m->p.world > 1 && m->p.rank == 0) { /* the workers' loop ends */
        struct plan_header h = {.stop = 1};
        comm_bcast_idle(&h, sizeof(h));
    }
    struct backend *b = m->b;
    model__graphs_free(m);
    void *bufs[] = {m->x, m->xn, m->res, m->q, m->att, m->k, m->v, m->gate, m->up, m->xo,
                    m->logits, m->cos, m->sin, m->d_ids, m->d_pos, m->d_tok_seq, m->d_out,
                    m->d_slots, m->d_bt, m->d_seq_start, m->d_argmax, m->dev.final_norm, m->qkv};
    for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++) b->ops->free(b, bufs[i]);
    for (int l = 0; l < m->cfg.n_layers; l++) {
        struct layer_weights *dl = &m->dev.layers[l], *hl = &m->host.layers[l];
        b->ops->free(b, m->kv[l].k);
        b->ops->free(b, m->kv[l].v);
        float **dv[LAYER_VECS];
        size_t n[LAYER_VECS];
        layer_vectors(m, dl, dv, n);
        for (int i = 0; i < LAYER_VECS; i++)
            if (*dv[i]) b->ops->free(b, *dv[i]);
        struct tensor *dev[7], *host[7];
        layer_matmuls(dl, dev);
        layer_matmuls(hl, host);
        for (int i = 0; i < 7; i++) free_weight(m, dev[i], host[i]);
        free_weight(m, &dl->wqkv, &hl->wqkv);
        free_weight(m, &dl->w_gate_up, &hl->w_gate_up);
    }
    if (m->dev.lm_head.data != m->dev.embed.data) free_weight(m, &m->dev.lm_head, &m->host.lm_head);
    free_weight(m, &m->dev.embed, &m->host.embed);
    free(m->kv);
    free(m->dev.layers);
    weights_free(&m->host);
    st_close(m->st);
    free(m->inv_freq);
    free(m->h_cos);
    free(m->h_sin);
    free(m->h_seq_start);
    free(m->plan_buf);
    free(m);
}

const struct model_config *model_get_config(const model *m) { return &m->cfg; }
int model_max_blocks_per_seq(const model *m) { return m->max_blocks; }

void model__upload_plan(model *m, const struct step_batch *sb, struct attn_batch *ab)
{
    struct backend *b = m->b;
    int T = sb->n_tokens, half = m->cfg.head_dim / 2;
    int32_t *start = m->h_seq_start;
    ab->max_q_len = ab->max_ctx = ab->n_single = 0;
    for (int s = 0, t = 0; s < sb->n_seqs; s++) {
        start[s] = t;
        while (t < T && sb->tok_seq[t] == s) t++;
        ab->n_single += t - start[s] == 1;
        if (t - start[s] > ab->max_q_len) ab->max_q_len = t - start[s];
        if (t > start[s] && sb->positions[t - 1] + 1 > ab->max_ctx) ab->max_ctx = sb->positions[t - 1] + 1;
    }
    start[sb->n_seqs] = T;
    ab->n_seqs = sb->n_seqs;
    ab->seq_start = m->d_seq_start;
    b->ops->to_device(b, m->d_seq_start, start, (sb->n_seqs + 1) * sizeof(int32_t));
    for (int t = 0; t < T; t++) {
        for (int i = 0; i < half; i++) {
            float a = (float)sb->positions[t] * m->inv_freq[i];
            m->h_cos[(size_t)t * half + i] = cosf(a);
            m->h_sin[(size_t)t * half + i] = sinf(a);
        }
    }
    b->ops->to_device(b, m->cos, m->h_cos, (size_t)T * half * sizeof(float));
    b->ops->to_device(b, m->sin, m->h_sin, (size_t)T * half * sizeof(float));
    b->ops->to_device(b, m->d_ids, sb->token_ids, T * sizeof(int32_t));
    b->ops->to_device(b, m->d_pos, sb->positions, T * sizeof(int32_t));
    b->ops->to_device(b, m->d_tok_seq, sb->tok_seq, T * sizeof(int32_t));
    b->ops->to_device(b, m->d_slots, sb->slots, T * sizeof(int64_t));
    b->ops->to_device(b, m->d_out, sb->output_tokens, sb->n_outputs * sizeof(int32_t));
    b->ops->to_device(b, m->d_bt, sb->block_tables, (size_t)sb->n_seqs * sb->max_blocks * sizeof(int32_t));
}

static int check_batch(const model *m, const struct step_batch *sb)
{
    if (sb->n_tokens <= 0 || sb->n_tokens > m->p.max_step_tokens || sb->n_seqs <= 0 ||
        sb->n_seqs > m->p.max_seqs || sb->n_outputs < 0 || sb->n_outputs > sb->n_tokens ||
        sb->max_blocks > m->max_blocks)
        return err_set(ERR_INVALID, "step batch exceeds the model's limits");
    int64_t n_slots = (int64_t)m->p.num_kv_blocks * m->p.block_size;
    for (int t = 0; t < sb->n_tokens; t++) {
        if (sb->token_ids[t] < 0 || sb->token_ids[t] >= m->cfg.vocab_size)
            return err_set(ERR_INVALID, "token id %d is outside the vocabulary", sb->token_ids[t]);
        if (sb->positions[t] < 0 || sb->positions[t] >= sb->max_blocks * m->p.block_size ||
            sb->slots[t] < 0 || sb->slots[t] >= n_slots || sb->tok_seq[t] < 0 || sb->tok_seq[t] >= sb->n_seqs ||
            (t > 0 && sb->tok_seq[t] < sb->tok_seq[t - 1]))
            return err_set(ERR_INVALID, "token %d has a bad position, slot or sequence (a sequence's tokens are "
                           "contiguous)", t);
    }
    return 0;
}

/* The arrays of a step plan, packed in one buffer (int64 slots first). */
static size_t plan_bytes(const struct plan_header *h)
{
    return (size_t)h->n_tokens * (sizeof(int64_t) + 3 * sizeof(int32_t)) +
           ((size_t)h->n_seqs * h->max_blocks + h->n_outputs) * sizeof(int32_t);
}

/* Points sb's arrays into m->plan_buf, sized for h (grown as needed). */
static void plan_layout(model *m, const struct plan_header *h, struct step_batch *sb)
{
    size_t n = plan_bytes(h);
    if (n > m->plan_cap) {
        free(m->plan_buf);
        m->plan_buf = xmalloc(n);
        m->plan_cap = n;
    }
    unsigned char *p = m->plan_buf;
    int T = h->n_tokens;
    *sb = (struct step_batch){.n_tokens = T, .n_seqs = h->n_seqs, .max_blocks = h->max_blocks,
                              .n_outputs = h->n_outputs};
    sb->slots = (const int64_t *)p;
    p += T * sizeof(int64_t);
    sb->token_ids = (const int32_t *)p;
    sb->positions = sb->token_ids + T;
    sb->tok_seq = sb->positions + T;
    sb->block_tables = sb->tok_seq + T;
    sb->output_tokens = sb->block_tables + (size_t)h->n_seqs * h->max_blocks;
}

/* Rank 0: the plan to every worker. */
static void send_plan(model *m, const struct step_batch *sb)
{
    struct plan_header h = {0, sb->n_tokens, sb->n_seqs, sb->max_blocks, sb->n_outputs};
    comm_bcast_idle(&h, sizeof(h));
    struct step_batch w;
    plan_layout(m, &h, &w);
    int T = sb->n_tokens;
    memcpy((void *)w.slots, sb->slots, T * sizeof(int64_t));
    memcpy((void *)w.token_ids, sb->token_ids, T * sizeof(int32_t));
    memcpy((void *)w.positions, sb->positions, T * sizeof(int32_t));
    memcpy((void *)w.tok_seq, sb->tok_seq, T * sizeof(int32_t));
    memcpy((void *)w.block_tables, sb->block_tables, (size_t)sb->n_seqs * sb->max_blocks * sizeof(int32_t));
    memcpy((void *)w.output_tokens, sb->output_tokens, sb->n_outputs * sizeof(int32_t));
    comm_bcast(m->plan_buf, plan_bytes(&h));
}

static void forward(model *m, const struct step_batch *sb, float *logits, int32_t *ids,
                    const struct sample_batch *sample);

int model_forward(model *m, const struct step_batch *sb, float *logits, int32_t *ids,
                  const struct sample_batch *sample)
{
    int rc = check_batch(m, sb);
    if (rc) return rc;
    if (sample && !m->b->ops->sample) return err_set(ERR_UNSUPPORTED, "this backend samples on the host");
    if (m->p.world > 1) send_plan(m, sb);
    forward(m, sb, logits, ids, sample);
    return 0;
}

bool model_samples_on_device(const model *m) { return m->b->ops->sample != NULL; }

int model_serve_worker(model *m)
{
    for (;;) {
        struct plan_header h;
        comm_bcast_idle(&h, sizeof(h));
        if (h.stop) return 0;
        struct step_batch sb;
        plan_layout(m, &h, &sb);
        comm_bcast(m->plan_buf, plan_bytes(&h));
        int rc = check_batch(m, &sb);
        if (rc) return rc;
        forward(m, &sb, NULL, NULL, NULL);
    }
}

/* q, k, v of the normed hidden states m->xn: the projections (this rank's
 * heads), their biases, and the per-head RMSNorm of q and k. */
static void qkv(model *m, const struct layer_weights *L, int T)
{
    struct backend *b = m->b;
    const struct backend_ops *o = b->ops;
    int nq = m->dev.n_heads, nkv = m->dev.n_kv_heads, hd = m->cfg.head_dim;
    o->matmul(b, m->q, m->xn, &L->wq, T);
    o->matmul(b, m->k, m->xn, &L->wk, T);
    o->matmul(b, m->v, m->xn, &L->wv, T);
    if (L->bq) {
        o->add_bias(b, m->q, L->bq, T, nq * hd);
        o->add_bias(b, m->k, L->bk, T, nkv * hd);
        o->add_bias(b, m->v, L->bv, T, nkv * hd);
    }
    if (L->q_norm) { /* rows of head_dim, in place */
        o->rmsnorm(b, m->q, m->q, NULL, L->q_norm, T * nq, hd, m->cfg.rms_norm_eps);
        o->rmsnorm(b, m->k, m->k, NULL, L->k_norm, T * nkv, hd, m->cfg.rms_norm_eps);
    }
}

/* m->res = all_reduce(attention(normed m->xn) Wo) (+ bias), writing this
 * step's K/V into layer l's cache: q, k, v from one stacked GEMM where the
 * backend stacked them, RoPE fused with the KV write there. */
static void attention_block(model *m, const struct layer_weights *L, int l, const struct attn_batch *ab, int T)
{
    struct backend *b = m->b;
    const struct backend_ops *o = b->ops;
    int H = m->cfg.hidden_size, hd = m->cfg.head_dim, nq = m->dev.n_heads;
    if (L->wqkv.data) {
        o->matmul(b, m->qkv, m->xn, &L->wqkv, T);
        o->rope_kv_write(b, m->q, m->qkv, T, nq, m->cos, m->sin, &m->kv[l], m->d_slots);
    } else {
        qkv(m, L, T);
        o->rope(b, m->q, T, nq, hd, m->cos, m->sin);
        o->rope(b, m->k, T, m->dev.n_kv_heads, hd, m->cos, m->sin);
        o->kv_write(b, &m->kv[l], m->k, m->v, m->d_slots, T);
    }
    o->attention(b, m->att, m->q, &m->kv[l], ab);
    o->matmul(b, m->res, m->att, &L->wo, T);
    o->all_reduce(b, m->res, (int64_t)T * H);
    if (L->bo) o->add_bias(b, m->res, L->bo, T, H); /* after the sum: once, on every rank */
}

/* m->res = all_reduce((silu(m->xn Wgate) * m->xn Wup) Wdown): gate and up
 * from one stacked GEMM where the backend stacked them. */
static void mlp_block(model *m, const struct layer_weights *L, int T)
{
    struct backend *b = m->b;
    const struct backend_ops *o = b->ops;
    int I = m->dev.inter;
    float *h = m->gate;
    if (L->w_gate_up.data) {
        o->matmul(b, m->gate, m->xn, &L->w_gate_up, T); /* [T, 2I] */
        o->silu_mul_stacked(b, m->up, m->gate, T, I);
        h = m->up;
    } else {
        o->matmul(b, m->gate, m->xn, &L->w_gate, T);
        o->matmul(b, m->up, m->xn, &L->w_up, T);
        o->silu_mul(b, m->gate, m->gate, m->up, (int64_t)T * I);
    }
    o->matmul(b, m->res, h, &L->w_down, T);
    o->all_reduce(b, m->res, (int64_t)T * m->cfg.hidden_size);
}

void model__step_ops(model *m, const struct attn_batch *ab, int T, int n_outputs)
{
    struct backend *b = m->b;
    const struct backend_ops *o = b->ops;
    const struct model_config *c = &m->cfg;
    const struct weights *w = &m->dev;
    int H = c->hidden_size;
    float eps = c->rms_norm_eps;
    o->embed(b, m->x, &w->embed, m->d_ids, T);
    const float *pending = NULL; /* residual not yet added into x */
    for (int l = 0; l < c->n_layers; l++) {
        const struct layer_weights *L = &w->layers[l];
        o->rmsnorm(b, m->xn, m->x, pending, L->attn_norm, T, H, eps);
        attention_block(m, L, l, ab, T);
        o->rmsnorm(b, m->xn, m->x, m->res, L->mlp_norm, T, H, eps);
        mlp_block(m, L, T);
        pending = m->res;
    }
    if (n_outputs == 0 || m->p.rank != 0) return;
    /* x += residual over all rows, then only the output rows go on */
    o->rmsnorm(b, m->xn, m->x, pending, w->final_norm, T, H, eps);
    struct tensor rows = {.dtype = DTYPE_F32, .rows = T, .cols = H, .data = m->xn};
    o->embed(b, m->xo, &rows, m->d_out, n_outputs);
    o->matmul(b, m->logits, m->xo, &w->lm_head, n_outputs);
}

/* One step on this rank's slice; only rank 0 computes the logits. */
static void forward(model *m, const struct step_batch *sb, float *logits, int32_t *ids,
                    const struct sample_batch *sample)
{
    struct backend *b = m->b;
    int hd = m->cfg.head_dim;
    struct attn_batch ab = {.n_tokens = sb->n_tokens, .n_heads = m->dev.n_heads, .tok_seq = m->d_tok_seq,
                            .positions = m->d_pos, .block_tables = m->d_bt, .max_blocks = sb->max_blocks,
                            .scale = 1.0f / sqrtf((float)hd)};
    if (!model__graph_step(m, sb, &ab)) {
        model__upload_plan(m, sb, &ab);
        model__step_ops(m, &ab, sb->n_tokens, sb->n_outputs);
    }
    int n = sb->n_outputs, V = m->cfg.vocab_size;
    if (n == 0 || m->p.rank != 0) return;
    if (logits) b->ops->to_host(b, logits, m->logits, (size_t)n * V * sizeof(float));
    if (!ids) return;
    if (sample) b->ops->sample(b, m->d_argmax, m->logits, n, V, sample);
    else b->ops->argmax(b, m->d_argmax, m->logits, n, V); /* the row's token, into d_argmax */
    b->ops->to_host(b, ids, m->d_argmax, n * sizeof(int32_t));
}
