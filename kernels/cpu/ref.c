/* ref.c: scalar reference kernels. Plain loops, fp32 accumulation, written
 * to be read; the fast paths in avx2.c are tested against these. */
#include <math.h>

#include "kernels.h"
#include "../quant.h"

void matmul_ref(float *y, int ldy, const float *x, int ldx, const void *w, enum dtype wt,
                int T, int K, int n0, int n1, bool accumulate)
{
    for (int n = n0; n < n1; n++) {
        const char *row = (const char *)w + (size_t)n * K * dtype_size(wt);
        for (int t = 0; t < T; t++) {
            const float *xt = x + (size_t)t * ldx;
            float acc = 0.0f;
            for (int k = 0; k < K; k++) acc += xt[k] * dtype_get(row, wt, k);
            float *yt = &y[(size_t)t * ldy + n];
            *yt = accumulate ? *yt + acc : acc;
        }
    }
}

void rmsnorm_ref(float *out, const float *x, const float *w, int H, float eps,
                 int t0, int t1)
{
    for (int t = t0; t < t1; t++) {
        const float *xt = x + (size_t)t * H;
        float *ot = out + (size_t)t * H;
        float ss = 0.0f;
        for (int i = 0; i < H; i++) ss += xt[i] * xt[i];
        float inv = 1.0f / sqrtf(ss / H + eps);
        for (int i = 0; i < H; i++) ot[i] = xt[i] * inv * w[i];
    }
}

void rope_ref(float *x, int n_heads, int hd, const float *cos, const float *sin,
              int t0, int t1)
{
    int half = hd / 2;
    for (int t = t0; t < t1; t++) {
        const float *c = cos + (size_t)t * half, *s = sin + (size_t)t * half;
        for (int h = 0; h < n_heads; h++) {
            float *v = x + ((size_t)t * n_heads + h) * hd;
            for (int i = 0; i < half; i++) {
                float a = v[i], b = v[i + half];
                v[i] = a * c[i] - b * s[i];
                v[i + half] = b * c[i] + a * s[i];
            }
        }
    }
}

void silu_mul_ref(float *out, const float *gate, const float *up, int64_t i0, int64_t i1)
{
    for (int64_t i = i0; i < i1; i++) {
        float g = gate[i];
        out[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

int32_t argmax_ref(const float *x, int n)
{
    int32_t best = 0;
    float v = -INFINITY; /* in a register: comparing with x[best] reloads it (6x slower) */
    for (int i = 0; i < n; i++)
        if (x[i] > v) v = x[i], best = i;
    return best;
}

void add_ref(float *x, const float *y, int64_t i0, int64_t i1)
{
    for (int64_t i = i0; i < i1; i++) x[i] += y[i];
}

void add_bias_ref(float *y, const float *bias, int n, int t0, int t1)
{
    for (int t = t0; t < t1; t++)
        for (int i = 0; i < n; i++) y[(size_t)t * n + i] += bias[i];
}

void embed_ref(float *out, const void *table, enum dtype dt, const int32_t *ids,
               int H, int t0, int t1)
{
    for (int t = t0; t < t1; t++)
        dequantize_row(dt, (const char *)table + (size_t)ids[t] * dtype_row_bytes(dt, H), out + (size_t)t * H, H);
}

void kv_write_ref(const struct kv_layer *kv, const float *k, const float *v,
                  const int64_t *slots, int t0, int t1)
{
    int row = kv->n_kv_heads * kv->head_dim;
    for (int t = t0; t < t1; t++) {
        float *kd = kv->k + slots[t] * row, *vd = kv->v + slots[t] * row;
        for (int i = 0; i < row; i++) {
            kd[i] = k[(size_t)t * row + i];
            vd[i] = v[(size_t)t * row + i];
        }
    }
}

/* Address of K or V for (sequence block table row bt, position p, kv head). */
static const float *kv_at(const float *base, const struct kv_layer *kv,
                          const int32_t *bt, int p, int kvh)
{
    int64_t slot = (int64_t)bt[p / kv->block_size] * kv->block_size + p % kv->block_size;
    return base + (slot * kv->n_kv_heads + kvh) * kv->head_dim;
}

void attention_ref(float *out, const float *q, const struct kv_layer *kv,
                   const struct attn_batch *b, float *scratch, int64_t i0, int64_t i1)
{
    int hd = kv->head_dim, group = b->n_heads / kv->n_kv_heads;
    for (int64_t i = i0; i < i1; i++) {
        int t = (int)(i / b->n_heads), h = (int)(i % b->n_heads), kvh = h / group;
        const int32_t *bt = b->block_tables + (size_t)b->tok_seq[t] * b->max_blocks;
        const float *qt = q + (size_t)i * hd;
        int n_ctx = b->positions[t] + 1;
        /* pass 1: scores and their max */
        float mx = -INFINITY;
        for (int p = 0; p < n_ctx; p++) {
            const float *kp = kv_at(kv->k, kv, bt, p, kvh);
            float s = 0.0f;
            for (int d = 0; d < hd; d++) s += qt[d] * kp[d];
            scratch[p] = s * b->scale;
            if (scratch[p] > mx) mx = scratch[p];
        }
        /* pass 2: softmax */
        float sum = 0.0f;
        for (int p = 0; p < n_ctx; p++) {
            scratch[p] = expf(scratch[p] - mx);
            sum += scratch[p];
        }
        /* pass 3: weighted sum of values */
        float *o = out + (size_t)i * hd;
        for (int d = 0; d < hd; d++) o[d] = 0.0f;
        for (int p = 0; p < n_ctx; p++) {
            const float *vp = kv_at(kv->v, kv, bt, p, kvh);
            float wgt = scratch[p] / sum;
            for (int d = 0; d < hd; d++) o[d] += wgt * vp[d];
        }
    }
}
