/* avx2.c: AVX2 + FMA + F16C fast paths of the CPU kernels.
 *
 * Compiled with per-function target attributes, so the file builds with any
 * -march and the dispatcher (dispatch.c) picks these only on CPUs that have
 * the instructions. Each function computes what its `_ref` twin in ref.c
 * computes, up to fp32 summation order. */
#include <immintrin.h>
#include <math.h>

#include "kernels.h"

#define AVX2 __attribute__((target("avx2,fma,f16c")))
#define INLINE static inline __attribute__((always_inline))

// ---------------------------------------------------------------------------
// helpers

/* Eight consecutive weights at w[i..i+8) of type wt, as fp32. */
INLINE AVX2 __m256 load8(const void *w, enum dtype wt, size_t i)
{
    const uint16_t *h = (const uint16_t *)w + i;
    switch (wt) {
    case DTYPE_F32:
        return _mm256_loadu_ps((const float *)w + i);
    case DTYPE_F16:
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)h));
    default: /* BF16; quantized weights take matmul_q */
        break;
    }
    __m256i u = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)h));
    return _mm256_castsi256_ps(_mm256_slli_epi32(u, 16));
}

INLINE AVX2 float hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* exp(x) for 8 lanes: Cephes-style range reduction and degree-5 polynomial,
 * about 2 ulp on [-87, 88]; inputs are clamped to the finite range. */
INLINE AVX2 __m256 exp8(__m256 x)
{
    x = _mm256_min_ps(x, _mm256_set1_ps(88.3762626647949f));
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.3365447504f));
    __m256 fx = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f));
    fx = _mm256_floor_ps(fx);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
    __m256 y = _mm256_set1_ps(1.9875691500e-4f);
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507e-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073e-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894e-2f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459e-1f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201e-1f));
    y = _mm256_fmadd_ps(y, _mm256_mul_ps(x, x), _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
    __m256i n = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(n));
}

INLINE AVX2 float dot(const float *a, const float *b, int n)
{
    __m256 acc = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8)
        acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
    float s = hsum(acc);
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

/* y[i] += a * x[i] */
INLINE AVX2 void axpy(float *y, float a, const float *x, int n)
{
    __m256 av = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * x[i];
}

// ---------------------------------------------------------------------------
// matmul: register tiles of RN weight rows x RT tokens: 3 x 4 for prompts (the
// 12 accumulators, 3 weight vectors and 1 activation vector fill the 16 ymm
// registers; each weight vector is loaded and converted once per 4 tokens).
// One token reads rows whole, one after another: a single sequential stream
// for the hardware prefetcher (2.3x the bandwidth of interleaved rows at
// K = 288, the stories15M LM head; see avx512.c).
// The unroll pragmas matter: without them gcc -O2 keeps acc[][] on the stack
// (2.5x slower). Blocking K inside a tile for L1 did not help prompts; long
// rows come as column blocks from the backend instead (backend_cpu.c).

INLINE AVX2 void tile(int RN, int RT, float *y, int ldy, const float *x, int ldx,
                      const void *w, enum dtype wt, int K, int n, int t, bool accumulate)
{
    __m256 acc[3][4];
    const char *wr[3];
#pragma GCC unroll 3
    for (int r = 0; r < RN; r++) {
        wr[r] = (const char *)w + (size_t)(n + r) * K * dtype_size(wt);
#pragma GCC unroll 6
        for (int c = 0; c < RT; c++) acc[r][c] = _mm256_setzero_ps();
    }
    const float *xt = x + (size_t)t * ldx;
    int k = 0;
    for (; k + 8 <= K; k += 8) {
        __m256 wv[3];
#pragma GCC unroll 3
        for (int r = 0; r < RN; r++) {
            wv[r] = load8(wr[r], wt, k);
            /* the next RN rows into L2 while the first token tile runs (see
             * avx512.c; prefetching in every tile costs 10% at 128 tokens here) */
            if (t == 0) _mm_prefetch(wr[r] + ((size_t)RN * K + k) * dtype_size(wt), _MM_HINT_T1);
        }
#pragma GCC unroll 6
        for (int c = 0; c < RT; c++) {
            __m256 xv = _mm256_loadu_ps(xt + (size_t)c * ldx + k);
#pragma GCC unroll 6
            for (int r = 0; r < RN; r++) acc[r][c] = _mm256_fmadd_ps(wv[r], xv, acc[r][c]);
        }
    }
#pragma GCC unroll 6
    for (int r = 0; r < RN; r++) {
#pragma GCC unroll 6
        for (int c = 0; c < RT; c++) {
            float s = hsum(acc[r][c]);
            for (int kk = k; kk < K; kk++) s += xt[(size_t)c * ldx + kk] * dtype_get(wr[r], wt, kk);
            float *yo = &y[(size_t)(t + c) * ldy + n + r];
            *yo = accumulate ? *yo + s : s;
        }
    }
}

INLINE AVX2 void tiles_for_rows(int RN, float *y, int ldy, const float *x, int ldx,
                                const void *w, enum dtype wt, int T, int K, int n, bool accumulate)
{
    int t = 0;
    for (; t + 4 <= T; t += 4) tile(RN, 4, y, ldy, x, ldx, w, wt, K, n, t, accumulate);
    switch (T - t) {
    case 3: tile(RN, 3, y, ldy, x, ldx, w, wt, K, n, t, accumulate); break;
    case 2: tile(RN, 2, y, ldy, x, ldx, w, wt, K, n, t, accumulate); break;
    case 1: tile(RN, 1, y, ldy, x, ldx, w, wt, K, n, t, accumulate); break;
    }
}

/* y[n .. n + 4) for one token, rows read one after another. */
INLINE AVX2 void gemv4(float *y, const float *x, const void *w, enum dtype wt, int K, int n,
                       bool accumulate)
{
    __m256 acc[4];
    int k16 = K & ~15;
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) {
        const void *wr = (const char *)w + (size_t)(n + r) * K * dtype_size(wt);
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        for (int k = 0; k < k16; k += 16) {
            a0 = _mm256_fmadd_ps(load8(wr, wt, k), _mm256_loadu_ps(x + k), a0);
            a1 = _mm256_fmadd_ps(load8(wr, wt, k + 8), _mm256_loadu_ps(x + k + 8), a1);
        }
        acc[r] = _mm256_add_ps(a0, a1);
    }
    /* [sum(acc[0]), .., sum(acc[3])] in one hadd tree */
    __m256 s = _mm256_hadd_ps(_mm256_hadd_ps(acc[0], acc[1]), _mm256_hadd_ps(acc[2], acc[3]));
    __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    if (accumulate) s4 = _mm_add_ps(s4, _mm_loadu_ps(y + n));
    _mm_storeu_ps(y + n, s4);
    for (int r = 0; r < 4 && k16 < K; r++) {
        const void *wr = (const char *)w + (size_t)(n + r) * K * dtype_size(wt);
        for (int k = k16; k < K; k++) y[n + r] += x[k] * dtype_get(wr, wt, k);
    }
}

INLINE AVX2 void matmul_typed(float *y, int ldy, const float *x, int ldx, const void *w,
                              enum dtype wt, int T, int K, int n0, int n1, bool accumulate)
{
    int n = n0;
    if (T == 1)
        for (; n + 4 <= n1; n += 4) gemv4(y, x, w, wt, K, n, accumulate);
    for (; n + 3 <= n1; n += 3) tiles_for_rows(3, y, ldy, x, ldx, w, wt, T, K, n, accumulate);
    for (; n < n1; n++) tiles_for_rows(1, y, ldy, x, ldx, w, wt, T, K, n, accumulate);
}

AVX2 void matmul_avx2(float *y, int ldy, const float *x, int ldx, const void *w, enum dtype wt,
                      int T, int K, int n0, int n1, bool accumulate)
{
    switch (wt) {
    case DTYPE_F32: matmul_typed(y, ldy, x, ldx, w, DTYPE_F32, T, K, n0, n1, accumulate); break;
    case DTYPE_F16: matmul_typed(y, ldy, x, ldx, w, DTYPE_F16, T, K, n0, n1, accumulate); break;
    case DTYPE_BF16: matmul_typed(y, ldy, x, ldx, w, DTYPE_BF16, T, K, n0, n1, accumulate); break;
    default: break; /* quantized weights take matmul_q */
    }
}

// ---------------------------------------------------------------------------
// element-wise and row-wise ops

AVX2 void rmsnorm_avx2(float *out, const float *x, const float *w, int H, float eps,
                       int t0, int t1)
{
    for (int t = t0; t < t1; t++) {
        const float *xt = x + (size_t)t * H;
        float *ot = out + (size_t)t * H;
        float inv = 1.0f / sqrtf(dot(xt, xt, H) / H + eps);
        __m256 iv = _mm256_set1_ps(inv);
        int i = 0;
        for (; i + 8 <= H; i += 8)
            _mm256_storeu_ps(ot + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(xt + i), iv),
                                                   _mm256_loadu_ps(w + i)));
        for (; i < H; i++) ot[i] = xt[i] * inv * w[i];
    }
}

AVX2 void rope_avx2(float *x, int n_heads, int hd, const float *cos, const float *sin,
                    int t0, int t1)
{
    int half = hd / 2;
    for (int t = t0; t < t1; t++) {
        const float *c = cos + (size_t)t * half, *s = sin + (size_t)t * half;
        for (int h = 0; h < n_heads; h++) {
            float *v = x + ((size_t)t * n_heads + h) * hd;
            int i = 0;
            for (; i + 8 <= half; i += 8) {
                __m256 a = _mm256_loadu_ps(v + i), b = _mm256_loadu_ps(v + i + half);
                __m256 cv = _mm256_loadu_ps(c + i), sv = _mm256_loadu_ps(s + i);
                _mm256_storeu_ps(v + i, _mm256_fmsub_ps(a, cv, _mm256_mul_ps(b, sv)));
                _mm256_storeu_ps(v + i + half, _mm256_fmadd_ps(b, cv, _mm256_mul_ps(a, sv)));
            }
            for (; i < half; i++) {
                float a = v[i], b = v[i + half];
                v[i] = a * c[i] - b * s[i];
                v[i + half] = b * c[i] + a * s[i];
            }
        }
    }
}

AVX2 void silu_mul_avx2(float *out, const float *gate, const float *up, int64_t i0, int64_t i1)
{
    int64_t i = i0;
    __m256 one = _mm256_set1_ps(1.0f);
    for (; i + 8 <= i1; i += 8) {
        __m256 g = _mm256_loadu_ps(gate + i);
        __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), g));
        __m256 sg = _mm256_div_ps(g, _mm256_add_ps(one, e));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(sg, _mm256_loadu_ps(up + i)));
    }
    silu_mul_ref(out, gate, up, i, i1);
}

AVX2 void add_avx2(float *x, const float *y, int64_t i0, int64_t i1)
{
    int64_t i = i0;
    for (; i + 8 <= i1; i += 8)
        _mm256_storeu_ps(x + i, _mm256_add_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < i1; i++) x[i] += y[i];
}

// ---------------------------------------------------------------------------
// attention: the reference's three passes (scores, softmax, weighted sum of
// V), vectorised across positions: scores of 8 positions at a time from 8
// independent accumulators reduced together (one hadd tree instead of 8
// horizontal sums), and the output kept in registers, 64 dimensions at a
// time, while the positions stream by.

/* K or V row of kv head kvh at each position, walking the block table. */
struct kv_walk {
    const float *base;
    const int32_t *bt;
    int64_t row, block_stride, head_off;
    int bs, blk, off;
};

INLINE const float *walk_next(struct kv_walk *w)
{
    const float *r = w->base + (int64_t)w->bt[w->blk] * w->block_stride + w->off * w->row + w->head_off;
    if (++w->off == w->bs) {
        w->off = 0;
        w->blk++;
    }
    return r;
}

/* [q.k0, ..., q.k7] over the first hd8 dimensions (a multiple of 8). */
INLINE AVX2 __m256 dot_x8(const float *q, const float *const k[8], int hd8)
{
    __m256 a[8];
#pragma GCC unroll 8
    for (int j = 0; j < 8; j++) a[j] = _mm256_setzero_ps();
    for (int d = 0; d < hd8; d += 8) {
        __m256 qv = _mm256_loadu_ps(q + d);
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) a[j] = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k[j] + d), a[j]);
    }
    __m256 s0123 = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
    __m256 s4567 = _mm256_hadd_ps(_mm256_hadd_ps(a[4], a[5]), _mm256_hadd_ps(a[6], a[7]));
    return _mm256_add_ps(_mm256_permute2f128_ps(s0123, s4567, 0x20), _mm256_permute2f128_ps(s0123, s4567, 0x31));
}

/* o[0 .. 8*NV) = sum_p w[p] * v_p[d0 ..] with the accumulators in registers. */
INLINE AVX2 void weighted_sum(int NV, float *o, const float *w, int n_ctx, struct kv_walk vw, int d0)
{
    __m256 acc[8];
#pragma GCC unroll 8
    for (int j = 0; j < NV; j++) acc[j] = _mm256_setzero_ps();
    for (int p = 0; p < n_ctx; p++) {
        const float *v = walk_next(&vw) + d0;
        __m256 wp = _mm256_set1_ps(w[p]);
#pragma GCC unroll 8
        for (int j = 0; j < NV; j++) acc[j] = _mm256_fmadd_ps(wp, _mm256_loadu_ps(v + 8 * j), acc[j]);
    }
#pragma GCC unroll 8
    for (int j = 0; j < NV; j++) _mm256_storeu_ps(o + 8 * j, acc[j]);
}

AVX2 void attention_avx2(float *out, const float *q, const struct kv_layer *kv,
                         const struct attn_batch *b, float *scratch, int64_t i0, int64_t i1)
{
    int hd = kv->head_dim, hd8 = hd & ~7, group = b->n_heads / kv->n_kv_heads;
    int64_t row = (int64_t)kv->n_kv_heads * hd;
    for (int64_t i = i0; i < i1; i++) {
        int t = (int)(i / b->n_heads), h = (int)(i % b->n_heads);
        struct kv_walk start = {NULL, b->block_tables + (size_t)b->tok_seq[t] * b->max_blocks, row,
                                row * kv->block_size, (int64_t)(h / group) * hd, kv->block_size, 0, 0};
        const float *qt = q + (size_t)i * hd;
        int n_ctx = b->positions[t] + 1;

        /* scores */
        struct kv_walk kw = start;
        kw.base = kv->k;
        __m256 vmax = _mm256_set1_ps(-INFINITY), scale = _mm256_set1_ps(b->scale);
        int p = 0;
        for (; p + 8 <= n_ctx; p += 8) {
            const float *k[8];
            for (int j = 0; j < 8; j++) k[j] = walk_next(&kw);
            __m256 sc = dot_x8(qt, k, hd8);
            for (int d = hd8; d < hd; d++) /* odd head sizes */
                sc = _mm256_add_ps(sc, _mm256_setr_ps(qt[d] * k[0][d], qt[d] * k[1][d], qt[d] * k[2][d],
                                                      qt[d] * k[3][d], qt[d] * k[4][d], qt[d] * k[5][d],
                                                      qt[d] * k[6][d], qt[d] * k[7][d]));
            sc = _mm256_mul_ps(sc, scale);
            _mm256_storeu_ps(scratch + p, sc);
            vmax = _mm256_max_ps(vmax, sc);
        }
        float mx = -INFINITY;
        for (int j = 0; j < 8; j++) mx = fmaxf(mx, vmax[j]);
        for (; p < n_ctx; p++) {
            scratch[p] = dot(qt, walk_next(&kw), hd) * b->scale;
            mx = scratch[p] > mx ? scratch[p] : mx;
        }

        /* softmax weights */
        __m256 vsum = _mm256_setzero_ps();
        for (p = 0; p + 8 <= n_ctx; p += 8) {
            __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(scratch + p), _mm256_set1_ps(mx)));
            _mm256_storeu_ps(scratch + p, e);
            vsum = _mm256_add_ps(vsum, e);
        }
        float sum = hsum(vsum);
        for (; p < n_ctx; p++) {
            scratch[p] = expf(scratch[p] - mx);
            sum += scratch[p];
        }
        float inv = 1.0f / sum;
        for (p = 0; p < n_ctx; p++) scratch[p] *= inv;

        /* weighted sum of V */
        float *o = out + (size_t)i * hd;
        struct kv_walk vw = start;
        vw.base = kv->v;
        int d0 = 0;
        for (; d0 + 64 <= hd8; d0 += 64) weighted_sum(8, o + d0, scratch, n_ctx, vw, d0);
        switch ((hd8 - d0) / 8) {
        case 7: weighted_sum(7, o + d0, scratch, n_ctx, vw, d0); break;
        case 6: weighted_sum(6, o + d0, scratch, n_ctx, vw, d0); break;
        case 5: weighted_sum(5, o + d0, scratch, n_ctx, vw, d0); break;
        case 4: weighted_sum(4, o + d0, scratch, n_ctx, vw, d0); break;
        case 3: weighted_sum(3, o + d0, scratch, n_ctx, vw, d0); break;
        case 2: weighted_sum(2, o + d0, scratch, n_ctx, vw, d0); break;
        case 1: weighted_sum(1, o + d0, scratch, n_ctx, vw, d0); break;
        }
        for (int d = hd8; d < hd; d++) {
            float acc = 0.0f;
            struct kv_walk tw = vw;
            for (p = 0; p < n_ctx; p++) acc += scratch[p] * walk_next(&tw)[d];
            o[d] = acc;
        }
    }
}
