/* quant.c: ggml's block formats decoded and the reference Q8_0 / Q4_0
 * quantizers, bit for bit as the gguf package (gguf.quants), which mirrors
 * ggml-quants.c.
 *
 * Decoding, the order of float operations cannot change a result: d is a
 * half (11 significant bits) and scale and quant add at most 12 more (Q6_K:
 * 7 + 5), so every product is exact in float; the one rounding is Q4_K's
 * final subtraction, which an FMA rounds the same way. We keep gguf-py's
 * order (d * sc first) all the same. The quantizers do round at each step,
 * and follow gguf-py's steps one by one. */
#include "quant.h"

#include <math.h>

/* Q4_K: 8 groups of 32; group g's values in the low (g even) or high nibbles
 * of qs[32 (g / 2) .. +32). */
static float q4k_get(const struct blk_q4_k *b, int i)
{
    int g = i / 32, sc, m;
    q4k_scale_min(b->scales, g, &sc, &m);
    float d1 = f16_to_f32(b->d) * (float)sc, m1 = f16_to_f32(b->dmin) * (float)m;
    int q = (b->qs[32 * (g / 2) + i % 32] >> (4 * (g & 1))) & 15;
    return d1 * (float)q - m1;
}

/* Q6_K: two halves of 128; in half h, quarter k (32 values each) takes the
 * low (k < 2) or high nibble of ql[64 h + 32 (k & 1) + l] and bits 2k, 2k+1
 * of qh[32 h + l]; the scale is scales[i / 16]. */
static float q6k_get(const struct blk_q6_k *b, int i)
{
    int h = i / 128, k = (i % 128) / 32, l = i % 32;
    int lo = (b->ql[64 * h + 32 * (k & 1) + l] >> (4 * (k >> 1))) & 15;
    int hi = (b->qh[32 * h + l] >> (2 * k)) & 3;
    float ds = f16_to_f32(b->d) * (float)b->scales[i / 16];
    return ds * (float)((lo | (hi << 4)) - 32);
}

static float q8_0_get(const struct blk_q8_0 *b, int i)
{
    return (float)b->qs[i] * f16_to_f32(b->d);
}

static float q4_0_get(const struct blk_q4_0 *b, int i)
{
    int q = i < 16 ? b->qs[i] & 15 : b->qs[i - 16] >> 4;
    return (float)(q - 8) * f16_to_f32(b->d);
}

/* An F8_ROWS row's scale (the first 4 bytes of its head). */
static float f8_rows_scale(const void *row)
{
    float d;
    memcpy(&d, row, 4);
    return d;
}

float dequantize_one(enum dtype t, const void *src, int64_t i)
{
    if (t == DTYPE_F8_ROWS) return f8e4m3_to_f32(((const uint8_t *)src)[F8_ROWS_HEAD + i]) * f8_rows_scale(src);
    int64_t nb = i / dtype_block(t);
    int j = (int)(i % dtype_block(t));
    const char *blk = (const char *)src + (size_t)nb * dtype_block_bytes(t);
    switch (t) {
    case DTYPE_Q8_0: return q8_0_get((const struct blk_q8_0 *)blk, j);
    case DTYPE_Q4_0: return q4_0_get((const struct blk_q4_0 *)blk, j);
    case DTYPE_Q4_K: return q4k_get((const struct blk_q4_k *)blk, j);
    case DTYPE_Q6_K: return q6k_get((const struct blk_q6_k *)blk, j);
    default: return dtype_get(src, t, (size_t)i);
    }
}

static void deq_q4k_block(const struct blk_q4_k *b, float *y)
{
    float d = f16_to_f32(b->d), dmin = f16_to_f32(b->dmin);
    for (int g = 0; g < 8; g++) {
        int sc, m;
        q4k_scale_min(b->scales, g, &sc, &m);
        float d1 = d * (float)sc, m1 = dmin * (float)m;
        const uint8_t *q = b->qs + 32 * (g / 2);
        int shift = 4 * (g & 1);
        for (int l = 0; l < 32; l++) y[32 * g + l] = d1 * (float)((q[l] >> shift) & 15) - m1;
    }
}

static void deq_q6k_block(const struct blk_q6_k *b, float *y)
{
    float d = f16_to_f32(b->d);
    for (int h = 0; h < 2; h++) {
        const uint8_t *ql = b->ql + 64 * h, *qh = b->qh + 32 * h;
        for (int k = 0; k < 4; k++) {
            float *yk = y + 128 * h + 32 * k;
            const uint8_t *qlk = ql + 32 * (k & 1);
            int sl = 4 * (k >> 1), sh = 2 * k;
            for (int l = 0; l < 32; l++) {
                int q = ((qlk[l] >> sl) & 15) | (((qh[l] >> sh) & 3) << 4);
                yk[l] = d * (float)b->scales[(128 * h + 32 * k + l) / 16] * (float)(q - 32);
            }
        }
    }
}

void dequantize_row(enum dtype t, const void *src, float *y, int64_t n)
{
    int64_t nb = n / dtype_block(t);
    switch (t) {
    case DTYPE_Q8_0:
        for (int64_t b = 0; b < nb; b++)
            for (int j = 0; j < 32; j++) y[32 * b + j] = q8_0_get((const struct blk_q8_0 *)src + b, j);
        break;
    case DTYPE_Q4_0:
        for (int64_t b = 0; b < nb; b++)
            for (int j = 0; j < 32; j++) y[32 * b + j] = q4_0_get((const struct blk_q4_0 *)src + b, j);
        break;
    case DTYPE_Q4_K:
        for (int64_t b = 0; b < nb; b++) deq_q4k_block((const struct blk_q4_k *)src + b, y + 256 * b);
        break;
    case DTYPE_Q6_K:
        for (int64_t b = 0; b < nb; b++) deq_q6k_block((const struct blk_q6_k *)src + b, y + 256 * b);
        break;
    case DTYPE_F8_ROWS:
        for (int64_t i = 0; i < n; i++) y[i] = dequantize_one(t, src, i);
        break;
    case DTYPE_F32: /* bytes as they are: a signalling NaN stays one */
        memcpy(y, src, (size_t)n * 4);
        break;
    default:
        for (int64_t i = 0; i < n; i++) y[i] = dtype_get(src, t, (size_t)i);
        break;
    }
}

void quantize_row_q8_0(const float *x, void *dst, int64_t n)
{
    struct blk_q8_0 *out = dst;
    for (int64_t b = 0; b < n / 32; b++) {
        const float *xb = x + 32 * b;
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(xb[j]));
        float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        out[b].d = f32_to_f16(d);
        /* roundf: half away from zero, as gguf-py's np_roundf */
        for (int j = 0; j < 32; j++) out[b].qs[j] = (int8_t)roundf(xb[j] * id);
    }
}

void quantize_row_f8_rows(const float *x, void *dst, int64_t n)
{
    float amax = 0.0f;
    for (int64_t i = 0; i < n; i++) amax = fmaxf(amax, fabsf(x[i]));
    float d = amax > 0.0f ? amax / 448.0f : 1.0f;
    memset(dst, 0, F8_ROWS_HEAD);
    memcpy(dst, &d, 4);
    uint8_t *q = (uint8_t *)dst + F8_ROWS_HEAD;
    for (int64_t i = 0; i < n; i++) q[i] = f32_to_f8e4m3(x[i] / d);
}

void quantize_row_q4_0(const float *x, void *dst, int64_t n)
{
    struct blk_q4_0 *out = dst;
    for (int64_t b = 0; b < n / 32; b++) {
        const float *xb = x + 32 * b;
        /* the first element of largest magnitude, with its sign (numpy's
         * argmax). ggml starts from max = +0.0 and replaces it only on a
         * strictly larger |v|, so on an all-zero block whose first element
         * is -0.0 ggml stores d = -0.0 (0x8000) and gguf-py +0.0 (0x0000);
         * we follow gguf-py. The quants (8) are the same either way. */
        int imax = 0;
        for (int j = 1; j < 32; j++)
            if (fabsf(xb[j]) > fabsf(xb[imax])) imax = j;
        float d = xb[imax] / -8.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        out[b].d = f32_to_f16(d);
        for (int j = 0; j < 16; j++) {
            /* x * id rounded to float before + 8.5 (its own statement:
             * clang fuses a * b + c within one expression), truncated */
            float v0 = xb[j] * id, v1 = xb[j + 16] * id;
            int q0 = (int)(v0 + 8.5f), q1 = (int)(v1 + 8.5f);
            q0 = q0 > 15 ? 15 : q0;
            q1 = q1 > 15 ? 15 : q1;
            out[b].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}
