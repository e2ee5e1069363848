/* avx512.c: the AVX-512 matmul (Zen 4, Ice Lake and later).
 *
 * Same contract as matmul_avx2 (fp32 sums in another order), with 32
 * registers of 16 floats: tiles of 4 weight rows x up to 6 tokens (24 accumulators, 4
 * weight vectors, 1 activation vector) for prompts and batched decodes; for a
 * single decode, rows read whole one after another (one sequential stream:
 * 2.3x the bandwidth of 8 interleaved rows on stories15M's LM head, K = 288,
 * 1.1x at K = 2048: the hardware prefetcher follows one stream, not 8 short
 * ones). K tails use masked loads (no scalar loop), and the accumulators of
 * 4 rows are reduced together into one 4-float store (a quarter of the
 * shuffles of reducing each on its own). Compiled with per-function target
 * attributes, like avx2.c. */
#include <immintrin.h>

#include "kernels.h"

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))
#define INLINE static inline __attribute__((always_inline))

/* The first n of 16 lanes (all 16 when n >= 16). */
INLINE __mmask16 first_lanes(int n) { return n >= 16 ? 0xffff : (__mmask16)((1u << n) - 1); }

/* Sixteen weights at w[i..), of type wt, as fp32; lanes outside `m` read as 0. */
INLINE AVX512 __m512 load16(const void *w, enum dtype wt, size_t i, __mmask16 m)
{
    const uint16_t *h = (const uint16_t *)w + i;
    switch (wt) {
    case DTYPE_F32:
        return _mm512_maskz_loadu_ps(m, (const float *)w + i);
    case DTYPE_F16:
        return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, h));
    default: /* BF16; quantized weights take matmul_q */
        break;
    }
    __m512i u = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, h));
    return _mm512_castsi512_ps(_mm512_slli_epi32(u, 16));
}

/* [sum(a), sum(b), sum(c), sum(d)]: 128-bit lanes folded pairwise across the
 * four vectors, then the four floats within each lane. */
INLINE AVX512 __m128 reduce4(__m512 a, __m512 b, __m512 c, __m512 d)
{
    __m512 ab = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x44), _mm512_shuffle_f32x4(a, b, 0xee));
    __m512 cd = _mm512_add_ps(_mm512_shuffle_f32x4(c, d, 0x44), _mm512_shuffle_f32x4(c, d, 0xee));
    /* lane j of s: the four partial sums of a, b, c, d for j = 0..3 */
    __m512 s = _mm512_add_ps(_mm512_shuffle_f32x4(ab, cd, 0x88), _mm512_shuffle_f32x4(ab, cd, 0xdd));
    s = _mm512_add_ps(s, _mm512_permute_ps(s, 0x4e));
    s = _mm512_add_ps(s, _mm512_permute_ps(s, 0xb1));
    /* every float of lane j now holds its sum: gather element 0 of each lane */
    return _mm512_castps512_ps128(_mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0,
                                                                          0, 0, 0, 0), s));
}

/* One 16-wide step along K of a tile's accumulators; lanes outside m are 0.
 * (Prefetching past the matrix's end is harmless: prefetches never fault.) */
INLINE AVX512 void step(int RN, int RT, __m512 acc[4][6], const char *const wr[4], const float *xt,
                        int ldx, enum dtype wt, int K, int k, __mmask16 m)
{
    __m512 wv[4];
#pragma GCC unroll 4
    for (int r = 0; r < RN; r++) {
        wv[r] = load16(wr[r], wt, k, m);
        /* the same place in the next RN rows, into L2: without it the first
         * token tile of each row group waits on DRAM (batch 16, TinyLlama's
         * MLP: 80 -> 97 GFLOP/s a thread; batch 4: 50 -> 85) */
        _mm_prefetch(wr[r] + ((size_t)RN * K + k) * dtype_size(wt), _MM_HINT_T1);
    }
#pragma GCC unroll 6
    for (int c = 0; c < RT; c++) {
        __m512 xv = _mm512_maskz_loadu_ps(m, xt + (size_t)c * ldx + k);
#pragma GCC unroll 4
        for (int r = 0; r < RN; r++) acc[r][c] = _mm512_fmadd_ps(wv[r], xv, acc[r][c]);
    }
}

/* y[n .. n + 4) = v, or += v */
INLINE AVX512 void store4(float *y, __m128 v, bool accumulate)
{
    _mm_storeu_ps(y, accumulate ? _mm_add_ps(v, _mm_loadu_ps(y)) : v);
}

/* y[t + c, n + r] for r < RN, c < RT: RN is 1 or 4. The unroll pragmas keep
 * acc[][] in registers (see avx2.c). */
INLINE AVX512 void tile(int RN, int RT, float *y, int ldy, const float *x, int ldx, const void *w,
                        enum dtype wt, int K, int n, int t, bool accumulate)
{
    __m512 acc[4][6];
    const char *wr[4];
#pragma GCC unroll 4
    for (int r = 0; r < RN; r++) {
        wr[r] = (const char *)w + (size_t)(n + r) * K * dtype_size(wt);
#pragma GCC unroll 6
        for (int c = 0; c < RT; c++) acc[r][c] = _mm512_setzero_ps();
    }
    const float *xt = x + (size_t)t * ldx;
    int k = 0;
    for (; k + 16 <= K; k += 16) step(RN, RT, acc, wr, xt, ldx, wt, K, k, 0xffff);
    if (k < K) step(RN, RT, acc, wr, xt, ldx, wt, K, k, first_lanes(K - k));
#pragma GCC unroll 6
    for (int c = 0; c < RT; c++) {
        float *yt = y + (size_t)(t + c) * ldy + n;
        if (RN == 1) {
            float s = _mm512_reduce_add_ps(acc[0][c]);
            yt[0] = accumulate ? yt[0] + s : s;
            continue;
        }
        store4(yt, reduce4(acc[0][c], acc[1][c], acc[2][c], acc[3][c]), accumulate);
    }
}

/* All T tokens against rows n..n+RN, in as few tiles of at most 6 tokens as
 * possible, evenly sized (16 tokens: 6 + 5 + 5, not 6 + 6 + 4). */
INLINE AVX512 void tokens(int RN, float *y, int ldy, const float *x, int ldx, const void *w,
                          enum dtype wt, int T, int K, int n, bool accumulate)
{
    int n_tiles = (T + 5) / 6;
    for (int i = 0, t = 0; i < n_tiles; i++) {
        int rt = (T - t) / (n_tiles - i);
        switch (rt) {
        case 6: tile(RN, 6, y, ldy, x, ldx, w, wt, K, n, t, accumulate); break;
        case 5: tile(RN, 5, y, ldy, x, ldx, w, wt, K, n, t, accumulate); break;
        case 4: tile(RN, 4, y, ldy, x, ldx, w, wt, K, n, t, accumulate); break;
        case 3: tile(RN, 3, y, ldy, x, ldx, w, wt, K, n, t, accumulate); break;
        case 2: tile(RN, 2, y, ldy, x, ldx, w, wt, K, n, t, accumulate); break;
        default: tile(RN, 1, y, ldy, x, ldx, w, wt, K, n, t, accumulate); break;
        }
        t += rt;
    }
}

/* One token, rows n..n+4 read one after another (one sequential stream). */
INLINE AVX512 void gemv4(float *y, const float *x, const void *w, enum dtype wt, int K, int n,
                         bool accumulate)
{
    __m512 acc[4];
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) {
        const char *wr = (const char *)w + (size_t)(n + r) * K * dtype_size(wt);
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
        int k = 0;
        for (; k + 32 <= K; k += 32) {
            a0 = _mm512_fmadd_ps(load16(wr, wt, k, 0xffff), _mm512_loadu_ps(x + k), a0);
            a1 = _mm512_fmadd_ps(load16(wr, wt, k + 16, 0xffff), _mm512_loadu_ps(x + k + 16), a1);
        }
        for (; k < K; k += 16) {
            __mmask16 m = first_lanes(K - k);
            a0 = _mm512_fmadd_ps(load16(wr, wt, k, m), _mm512_maskz_loadu_ps(m, x + k), a0);
        }
        acc[r] = _mm512_add_ps(a0, a1);
    }
    store4(y + n, reduce4(acc[0], acc[1], acc[2], acc[3]), accumulate);
}

INLINE AVX512 void matmul_typed(float *y, int ldy, const float *x, int ldx, const void *w,
                                enum dtype wt, int T, int K, int n0, int n1, bool accumulate)
{
    int n = n0;
    if (T == 1)
        for (; n + 4 <= n1; n += 4) gemv4(y, x, w, wt, K, n, accumulate);
    for (; n + 4 <= n1; n += 4) tokens(4, y, ldy, x, ldx, w, wt, T, K, n, accumulate);
    for (; n < n1; n++) tokens(1, y, ldy, x, ldx, w, wt, T, K, n, accumulate);
}

AVX512 void matmul_avx512(float *y, int ldy, const float *x, int ldx, const void *w, enum dtype wt,
                          int T, int K, int n0, int n1, bool accumulate)
{
    switch (wt) {
    case DTYPE_F32: matmul_typed(y, ldy, x, ldx, w, DTYPE_F32, T, K, n0, n1, accumulate); break;
    case DTYPE_F16: matmul_typed(y, ldy, x, ldx, w, DTYPE_F16, T, K, n0, n1, accumulate); break;
    case DTYPE_BF16: matmul_typed(y, ldy, x, ldx, w, DTYPE_BF16, T, K, n0, n1, accumulate); break;
    default: break; /* quantized weights take matmul_q */
    }
}
