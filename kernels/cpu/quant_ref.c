/* quant_ref.c: the scalar references of the quantized matmul (kernels.h,
 * "Quantized weights"): activations quantized to int8 per group, and the
 * weight blocks' exact integer dot products with them, scaled in floats.
 * Written to be read; avx512_quant.c is tested against these. */
#include <float.h>
#include <math.h>

#include "kernels.h"
#include "../quant.h"

int qact_group(enum dtype wt)
{
    return wt == DTYPE_Q4_K || wt == DTYPE_Q6_K ? 256 : 32;
}

size_t qact_row_bytes(enum dtype wt, int K)
{
    size_t bytes = (size_t)K + sizeof(float) * (size_t)(K / qact_group(wt)) + sizeof(int16_t) * (size_t)(K / 16);
    return (bytes + 63) / 64 * 64;
}

/* A quantized row's parts (kernels.h): q[K], then d[K / G], then sum16[K / 16]. */
static float *qact_d(void *row, int K) { return (float *)((char *)row + K); }
static int16_t *qact_sum16(void *row, enum dtype wt, int K)
{
    return (int16_t *)((char *)row + K + sizeof(float) * (size_t)(K / qact_group(wt)));
}

void qact_quantize_ref(void *xq, const float *x, int ldx, enum dtype wt, int K, int t0, int t1)
{
    int G = qact_group(wt);
    size_t rb = qact_row_bytes(wt, K);
    for (int t = t0; t < t1; t++) {
        const float *xt = x + (size_t)t * ldx;
        char *row = (char *)xq + (size_t)t * rb;
        int8_t *q = (int8_t *)row;
        float *d = qact_d(row, K);
        int16_t *s16 = qact_sum16(row, wt, K);
        for (int g = 0; g < K / G; g++) {
            float amax = 0.0f;
            for (int i = 0; i < G; i++) amax = fmaxf(amax, fabsf(xt[g * G + i]));
            /* a group too small for 1 / d to be finite is all zeros */
            float dg = amax / 127.0f;
            if (dg < FLT_MIN) dg = 0.0f;
            float id = dg > 0.0f ? 1.0f / dg : 0.0f;
            d[g] = dg;
            for (int i = 0; i < G; i++) q[g * G + i] = (int8_t)nearbyintf(xt[g * G + i] * id);
        }
        for (int i = 0; i < K / 16; i++) {
            int s = 0;
            for (int j = 0; j < 16; j++) s += q[16 * i + j];
            s16[i] = (int16_t)s;
        }
        /* the padding, so that rows are fully defined bytes */
        char *end = (char *)(s16 + K / 16);
        while (end < row + rb) *end++ = 0;
    }
}

// ---------------------------------------------------------------------------
// one weight block against one quantized activation row: exact integer dot
// products, then the block's float scales

/* Q8_0: dw * da * sum(qs * a) */
static float dot_q8_0(const struct blk_q8_0 *b, const int8_t *a, float da)
{
    int32_t s = 0;
    for (int i = 0; i < 32; i++) s += b->qs[i] * a[i];
    return f16_to_f32(b->d) * da * (float)s;
}

/* Q4_0: dw * da * (sum(q * a) - 8 * sum(a)), q the unsigned nibbles */
static float dot_q4_0(const struct blk_q4_0 *b, const int8_t *a, const int16_t *s16, float da)
{
    int32_t s = 0;
    for (int j = 0; j < 16; j++) s += (b->qs[j] & 15) * a[j] + (b->qs[j] >> 4) * a[j + 16];
    s -= 8 * (s16[0] + s16[1]);
    return f16_to_f32(b->d) * da * (float)s;
}

/* Q4_K: da * (d * sum_j sc_j * dot_j - dmin * sum_j m_j * asum_j), 8 groups of 32 */
static float dot_q4_k(const struct blk_q4_k *b, const int8_t *a, const int16_t *s16, float da)
{
    int32_t sum_sc = 0, sum_m = 0;
    for (int j = 0; j < 8; j++) {
        int sc, m;
        q4k_scale_min(b->scales, j, &sc, &m);
        const uint8_t *qs = b->qs + 32 * (j / 2);
        int shift = 4 * (j % 2);
        int32_t dot = 0;
        for (int i = 0; i < 32; i++) dot += ((qs[i] >> shift) & 15) * a[32 * j + i];
        sum_sc += sc * dot;
        sum_m += m * (s16[2 * j] + s16[2 * j + 1]);
    }
    return da * (f16_to_f32(b->d) * (float)sum_sc - f16_to_f32(b->dmin) * (float)sum_m);
}

/* Q6_K: da * d * sum_i scales[i] * (dot(q_i, a_i) - 32 * asum16_i), 16
 * groups of 16. Element k of a 128-element half h: l = k % 32, quarter
 * c = k / 32; low 4 bits from ql[64 h + l + 32 (c & 1)] (>> 4 when c >= 2),
 * high 2 from qh[32 h + l] >> 2 c (ggml's dequantize_row_q6_K). */
static float dot_q6_k(const struct blk_q6_k *b, const int8_t *a, const int16_t *s16, float da)
{
    int32_t sum = 0;
    for (int g = 0; g < 16; g++) {
        int32_t dot = 0;
        for (int i = 0; i < 16; i++) {
            int e = 16 * g + i, h = e / 128, k = e % 128, l = k % 32, c = k / 32;
            int lo = (b->ql[64 * h + l + 32 * (c & 1)] >> (4 * (c >> 1))) & 15;
            int hi = (b->qh[32 * h + l] >> (2 * c)) & 3;
            dot += (lo | hi << 4) * a[e];
        }
        sum += b->scales[g] * (dot - 32 * s16[g]);
    }
    return da * f16_to_f32(b->d) * (float)sum;
}

/* One weight row (nb blocks of type wt) against one quantized activation row. */
static float dot_row(const void *w, enum dtype wt, const void *xq, int K)
{
    int nb = K / dtype_block(wt);
    const int8_t *a = xq;
    const float *d = qact_d((void *)xq, K);
    const int16_t *s16 = qact_sum16((void *)xq, wt, K);
    float acc = 0.0f;
    for (int b = 0; b < nb; b++) {
        switch (wt) {
        case DTYPE_Q8_0: acc += dot_q8_0((const struct blk_q8_0 *)w + b, a + 32 * b, d[b]); break;
        case DTYPE_Q4_0: acc += dot_q4_0((const struct blk_q4_0 *)w + b, a + 32 * b, s16 + 2 * b, d[b]); break;
        case DTYPE_Q4_K: acc += dot_q4_k((const struct blk_q4_k *)w + b, a + 256 * b, s16 + 16 * b, d[b]); break;
        case DTYPE_Q6_K: acc += dot_q6_k((const struct blk_q6_k *)w + b, a + 256 * b, s16 + 16 * b, d[b]); break;
        default: break;
        }
    }
    return acc;
}

void matmul_q_ref(float *y, int ldy, const void *xq, const void *w, enum dtype wt,
                  int T, int K, int n0, int n1, bool accumulate)
{
    size_t wrow = dtype_row_bytes(wt, K), arow = qact_row_bytes(wt, K);
    for (int n = n0; n < n1; n++)
        for (int t = 0; t < T; t++) {
            float s = dot_row((const char *)w + (size_t)n * wrow, wt, (const char *)xq + (size_t)t * arow, K);
            float *yt = &y[(size_t)t * ldy + n];
            *yt = accumulate ? *yt + s : s;
        }
}
