/* avx2_quant.c: the quantized matmul with AVX2 only (kernels.h, "Quantized
 * weights"), for CPUs without AVX-512 VNNI (Zen 2/3, Intel client parts):
 * weights as GGUF lays them out, int8 activations from qact_quantize.
 *
 * u8 x s8 products with vpmaddubsw (int16 pair sums, which saturate: every
 * type below keeps |pair| <= 2 * 127 * 127), then vpmaddwd to int32 (by ones,
 * or by the group's integer scale), one int -> float conversion and FMA per
 * block and (row, token) pair:
 *   Q8_0: |w| as u8 times a with w's sign (vpsignb);
 *   Q4_0: nibbles as u8; the -8 * a part is vpmaddubsw(8, a), once per token
 *         and block, subtracted in int16 (|(q - 8) a| pairs <= 2032);
 *   Q4_K: per group of 32, vpmaddwd by the 6-bit scale; the mins' term from
 *         sum16 by one vpmaddwd per super-block;
 *   Q6_K: the 6-bit q (0..63) rebuilt from ql/qh, vpmaddwd by the int8 scale
 *         of each 16; -32 * sum_g sc_g asum16_g by one vpmaddwd.
 * Tiles of RN rows x RT tokens (decode: Q8_0/Q4_0 4 rows sharing the
 * token's loads, K-quants 2; batches: 2 rows x up to 3 tokens, within
 * AVX2's 16 registers). Compiled
 * with per-function target attributes, like avx2.c. */
#include <float.h>
#include <immintrin.h>
#include <string.h>

#include "kernels.h"
#include "../quant.h"

#define QAVX2 __attribute__((target("avx2,fma,f16c")))
#define INLINE static inline __attribute__((always_inline))

// ---------------------------------------------------------------------------
// quantized activations

/* 32 int32 (4 vectors) -> 32 int8 in order; |v| <= 127 so no saturation. */
INLINE QAVX2 __m256i pack32(__m256i q0, __m256i q1, __m256i q2, __m256i q3)
{
    __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q0, q1), _mm256_packs_epi32(q2, q3));
    return _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* [sum(a), sum(b)] of 8 int32 each, in lanes 0 and 1. */
INLINE QAVX2 __m128i hsum2(__m256i a, __m256i b)
{
    __m256i h = _mm256_hadd_epi32(a, b);
    h = _mm256_hadd_epi32(h, h);
    return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

QAVX2 void qact_quantize_avx2(void *xq, const float *x, int ldx, enum dtype wt, int K, int t0, int t1)
{
    int G = qact_group(wt);
    size_t rb = qact_row_bytes(wt, K);
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    for (int t = t0; t < t1; t++) {
        const float *xt = x + (size_t)t * ldx;
        char *row = (char *)xq + (size_t)t * rb;
        float *d = (float *)(row + K);
        int16_t *s16 = (int16_t *)(row + K + sizeof(float) * (size_t)(K / G));
        for (int g = 0; g < K / G; g++) {
            const float *xg = xt + (size_t)g * G;
            __m256 m = _mm256_setzero_ps();
            /* max(|x|, m): a NaN x leaves m, as fmaxf does in the reference */
            for (int i = 0; i < G; i += 8) m = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(xg + i), abs_mask), m);
            __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
            m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
            m4 = _mm_max_ss(m4, _mm_shuffle_ps(m4, m4, 1));
            float dg = _mm_cvtss_f32(m4) / 127.0f;
            if (dg < FLT_MIN) dg = 0.0f;
            __m256 id = _mm256_set1_ps(dg > 0.0f ? 1.0f / dg : 0.0f);
            d[g] = dg;
            for (int i = 0; i < G; i += 32) {
                __m256i q[4];
                for (int j = 0; j < 4; j++)
                    q[j] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xg + i + 8 * j), id));
                _mm256_storeu_si256((__m256i *)(row + g * G + i), pack32(q[0], q[1], q[2], q[3]));
                __m128i s = hsum2(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
                s16[(g * G + i) / 16] = (int16_t)_mm_cvtsi128_si32(s);
                s16[(g * G + i) / 16 + 1] = (int16_t)_mm_extract_epi32(s, 1);
            }
        }
        char *end = (char *)(s16 + K / 16);
        memset(end, 0, (size_t)(row + rb - end));
    }
}

// ---------------------------------------------------------------------------
// helpers

enum { RMAX = 4, TMAX = 3 };

/* The operands of one tile: RN weight rows from w, RT tokens from a. */
struct qtile {
    const char *w;    /* the tile's first row */
    size_t wrow;      /* bytes of a weight row */
    const char *a;    /* the tile's first token's quantized row */
    size_t arow;      /* bytes of a quantized activation row */
    int K;
};

INLINE const float *act_d(const char *a, int K) { return (const float *)(a + K); }
INLINE const int16_t *act_s16(const char *a, int K, int G)
{
    return (const int16_t *)(a + K + sizeof(float) * (size_t)(K / G));
}

INLINE QAVX2 __m256 half8(const void *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return _mm256_set1_ps(_cvtsh_ss(h));
}

INLINE QAVX2 float hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

/* [sum(a), sum(b), sum(c), sum(d)] */
INLINE QAVX2 __m128 hsum4(__m256 a, __m256 b, __m256 c, __m256 d)
{
    __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
    return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

// ---------------------------------------------------------------------------
// Q8_0 and Q4_0: a block of 32 a step

INLINE QAVX2 void step_b32(int RN, int RT, bool q8, const struct qtile *q, int b, __m256 acc[RMAX][TMAX])
{
    const __m256i ones = _mm256_set1_epi16(1), lo4 = _mm256_set1_epi8(15);
    __m256i wq[RMAX];
    __m256 dw[RMAX];
#pragma GCC unroll 4
    for (int r = 0; r < RN; r++) {
        const char *blk = q->w + r * q->wrow + (q8 ? 34 : 18) * (size_t)b;
        dw[r] = half8(blk);
        if (q8) {
            wq[r] = _mm256_loadu_si256((const __m256i *)(blk + 2));
        } else {
            __m128i raw = _mm_loadu_si128((const __m128i *)(blk + 2));
            wq[r] = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw), lo4);
        }
    }
#pragma GCC unroll 3
    for (int c = 0; c < RT; c++) {
        const char *a = q->a + c * q->arow;
        __m256i av = _mm256_loadu_si256((const __m256i *)(a + 32 * (size_t)b));
        __m256 da = _mm256_set1_ps(act_d(a, q->K)[b]);
        __m256i a8 = q8 ? av : _mm256_maddubs_epi16(_mm256_set1_epi8(8), av);
#pragma GCC unroll 4
        for (int r = 0; r < RN; r++) {
            __m256i p = q8 ? _mm256_maddubs_epi16(_mm256_abs_epi8(wq[r]), _mm256_sign_epi8(av, wq[r]))
                           : _mm256_sub_epi16(_mm256_maddubs_epi16(wq[r], av), a8);
            __m256 fi = _mm256_cvtepi32_ps(_mm256_madd_epi16(p, ones));
            acc[r][c] = _mm256_fmadd_ps(fi, _mm256_mul_ps(dw[r], da), acc[r][c]);
        }
    }
}

// ---------------------------------------------------------------------------
// Q4_K and Q6_K: a super-block of 256 a step, 8 chunks of 32

/* Q4_K's 8 scales and 8 mins, one byte each (ggml's unpacking). */
INLINE void q4k_unpack(const uint8_t *scales, uint8_t sc[8], uint8_t m[8])
{
    uint32_t u[3], o[4];
    memcpy(u, scales, 12);
    const uint32_t m1 = 0x3f3f3f3f, m2 = 0x0f0f0f0f, m3 = 0x03030303;
    o[0] = u[0] & m1;
    o[1] = (u[2] & m2) | (((u[0] >> 6) & m3) << 4);
    o[2] = u[1] & m1;
    o[3] = ((u[2] >> 4) & m2) | (((u[1] >> 6) & m3) << 4);
    memcpy(sc, o, 8);
    memcpy(m, o + 2, 8);
}

/* Row r's super-block, decoded once per tile: per-chunk scales are picked by
 * vpshufb from sc (int16 scales in both 128-bit lanes). */
struct ksb {
    const uint8_t *q;  /* Q4_K: qs; Q6_K: ql */
    const uint8_t *qh; /* Q6_K */
    __m256i sc[2];     /* Q4_K: sc[0] the 8 scales; Q6_K: scales 8 h .. 8 h + 7 */
    __m256i corr;      /* int16 weights of the sum16 term */
    __m256 d, dmin;    /* dmin negated */
};

INLINE QAVX2 void w_q4_k(const char *row, int s, struct ksb *k)
{
    const struct blk_q4_k *b = (const struct blk_q4_k *)(row + 144 * (size_t)s);
    uint8_t sc[8], m[8];
    q4k_unpack(b->scales, sc, m);
    __m128i sc16 = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)sc));
    __m128i m8 = _mm_loadl_epi64((const __m128i *)m);
    k->q = b->qs;
    k->sc[0] = _mm256_broadcastsi128_si256(sc16);
    /* lane p of 16: m_{p/2}, as sum16[p] belongs to group p/2 */
    k->corr = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m8, m8));
    k->d = _mm256_set1_ps(_cvtsh_ss(b->d));
    k->dmin = _mm256_set1_ps(-_cvtsh_ss(b->dmin));
}

INLINE QAVX2 void w_q6_k(const char *row, int s, struct ksb *k)
{
    const struct blk_q6_k *b = (const struct blk_q6_k *)(row + 210 * (size_t)s);
    __m128i s8 = _mm_loadu_si128((const __m128i *)b->scales);
    k->q = b->ql;
    k->qh = b->qh;
    k->sc[0] = _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(s8));
    k->sc[1] = _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(_mm_srli_si128(s8, 8)));
    k->corr = _mm256_sub_epi16(_mm256_setzero_si256(), _mm256_slli_epi16(_mm256_cvtepi8_epi16(s8), 5));
    k->d = _mm256_set1_ps(_cvtsh_ss(b->d));
}

/* Chunk j's 32 quants as u8 and the int16 scale of each vpmaddubsw lane. */
INLINE QAVX2 void chunk_q4_k(const struct ksb *k, int j, __m256i *qv, __m256i *sv)
{
    __m256i v = _mm256_loadu_si256((const __m256i *)(k->q + 32 * (j / 2)));
    if (j % 2) v = _mm256_srli_epi16(v, 4);
    *qv = _mm256_and_si256(v, _mm256_set1_epi8(15));
    *sv = _mm256_shuffle_epi8(k->sc[0], _mm256_set1_epi16((short)((2 * j + 1) << 8 | 2 * j)));
}

/* Chunk j = 4 h + c (half h, quarter c; see quant_ref.c's dot_q6_k): low
 * half lanes take group 2 j's scale, high half group 2 j + 1's. */
INLINE QAVX2 void chunk_q6_k(const struct ksb *k, int j, __m256i *qv, __m256i *sv)
{
    int h = j / 4, c = j % 4;
    __m256i l = _mm256_loadu_si256((const __m256i *)(k->q + 64 * h + 32 * (c & 1)));
    __m256i hb = _mm256_loadu_si256((const __m256i *)(k->qh + 32 * h));
    if (c >= 2) l = _mm256_srli_epi16(l, 4);
    /* bits 2c, 2c+1 of qh to bits 4, 5 (16-bit shifts: the mask drops what crosses bytes) */
    hb = c == 0 ? _mm256_slli_epi16(hb, 4) : c == 1 ? _mm256_slli_epi16(hb, 2) : c == 3 ? _mm256_srli_epi16(hb, 2) : hb;
    *qv = _mm256_or_si256(_mm256_and_si256(l, _mm256_set1_epi8(15)), _mm256_and_si256(hb, _mm256_set1_epi8(0x30)));
    __m128i lo = _mm_set1_epi16((short)((4 * c + 1) << 8 | 4 * c));
    __m128i hi = _mm_set1_epi16((short)((4 * c + 3) << 8 | (4 * c + 2)));
    *sv = _mm256_shuffle_epi8(k->sc[h], _mm256_set_m128i(hi, lo));
}

INLINE QAVX2 void step_k(int RN, int RT, bool q4k, const struct qtile *q, int s, __m256 acc[RMAX][TMAX])
{
    struct ksb k[RMAX];
    __m256i isum[RMAX][TMAX];
#pragma GCC unroll 4
    for (int r = 0; r < RN; r++) {
        if (q4k) w_q4_k(q->w + r * q->wrow, s, &k[r]);
        else w_q6_k(q->w + r * q->wrow, s, &k[r]);
#pragma GCC unroll 3
        for (int c = 0; c < RT; c++) isum[r][c] = _mm256_setzero_si256();
    }
    for (int j = 0; j < 8; j++) {
        __m256i qv[RMAX], sv[RMAX];
#pragma GCC unroll 4
        for (int r = 0; r < RN; r++) {
            if (q4k) chunk_q4_k(&k[r], j, &qv[r], &sv[r]);
            else chunk_q6_k(&k[r], j, &qv[r], &sv[r]);
        }
#pragma GCC unroll 3
        for (int c = 0; c < RT; c++) {
            __m256i av = _mm256_loadu_si256((const __m256i *)(q->a + c * q->arow + 256 * (size_t)s + 32 * j));
#pragma GCC unroll 4
            for (int r = 0; r < RN; r++)
                isum[r][c] = _mm256_add_epi32(isum[r][c], _mm256_madd_epi16(_mm256_maddubs_epi16(qv[r], av), sv[r]));
        }
    }
#pragma GCC unroll 3
    for (int c = 0; c < RT; c++) {
        const char *a = q->a + c * q->arow;
        __m256i s16 = _mm256_loadu_si256((const __m256i *)(act_s16(a, q->K, 256) + 16 * s));
        __m256 da = _mm256_set1_ps(act_d(a, q->K)[s]);
#pragma GCC unroll 4
        for (int r = 0; r < RN; r++) {
            __m256i corr = _mm256_madd_epi16(k[r].corr, s16);
            if (q4k) {
                __m256 fi = _mm256_cvtepi32_ps(isum[r][c]);
                __m256 v = _mm256_fmadd_ps(fi, k[r].d, _mm256_mul_ps(_mm256_cvtepi32_ps(corr), k[r].dmin));
                acc[r][c] = _mm256_fmadd_ps(v, da, acc[r][c]);
            } else {
                __m256 fi = _mm256_cvtepi32_ps(_mm256_add_epi32(isum[r][c], corr));
                acc[r][c] = _mm256_fmadd_ps(fi, _mm256_mul_ps(k[r].d, da), acc[r][c]);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// tiles, rows, tokens

INLINE QAVX2 void tile(int RN, int RT, enum dtype wt, float *y, int ldy, const struct qtile *q, int n, int t,
                       bool accumulate)
{
    __m256 acc[RMAX][TMAX];
#pragma GCC unroll 4
    for (int r = 0; r < RN; r++)
#pragma GCC unroll 3
        for (int c = 0; c < RT; c++) acc[r][c] = _mm256_setzero_ps();
    int nb = q->K / dtype_block(wt);
    for (int b = 0; b < nb; b++) {
        switch (wt) {
        case DTYPE_Q8_0: step_b32(RN, RT, true, q, b, acc); break;
        case DTYPE_Q4_0: step_b32(RN, RT, false, q, b, acc); break;
        case DTYPE_Q4_K: step_k(RN, RT, true, q, b, acc); break;
        case DTYPE_Q6_K: step_k(RN, RT, false, q, b, acc); break;
        default: break;
        }
    }
#pragma GCC unroll 3
    for (int c = 0; c < RT; c++) {
        float *yt = y + (size_t)(t + c) * ldy + n;
        if (RN == 4) {
            __m128 v = hsum4(acc[0][c], acc[1][c], acc[2][c], acc[3][c]);
            _mm_storeu_ps(yt, accumulate ? _mm_add_ps(v, _mm_loadu_ps(yt)) : v);
            continue;
        }
#pragma GCC unroll 4
        for (int r = 0; r < RN; r++) {
            float v = hsum(acc[r][c]);
            yt[r] = accumulate ? yt[r] + v : v;
        }
    }
}

/* All T tokens against rows n .. n + RN, in evenly sized tiles of at most TMAX. */
INLINE QAVX2 void tokens(int RN, enum dtype wt, float *y, int ldy, struct qtile q, int T, int n, bool accumulate)
{
    int n_tiles = (T + TMAX - 1) / TMAX;
    const char *a0 = q.a;
    for (int i = 0, t = 0; i < n_tiles; i++) {
        int rt = (T - t) / (n_tiles - i);
        q.a = a0 + (size_t)t * q.arow;
        switch (rt) {
        case 3: tile(RN, 3, wt, y, ldy, &q, n, t, accumulate); break;
        case 2: tile(RN, 2, wt, y, ldy, &q, n, t, accumulate); break;
        default: tile(RN, 1, wt, y, ldy, &q, n, t, accumulate); break;
        }
        t += rt;
    }
}

INLINE QAVX2 void matmul_q_typed(enum dtype wt, float *y, int ldy, const void *xq, const void *w, int T, int K,
                                 int n0, int n1, bool accumulate)
{
    struct qtile q = {NULL, dtype_row_bytes(wt, K), xq, qact_row_bytes(wt, K), K};
    int n = n0;
    /* one token: Q8_0/Q4_0 rows in fours share the token's loads; K-quants
     * stay at 2 rows (4 rows' decoded scales spill: Q6_K 2048 x 2048, one
     * thread, measured 0.65 -> 0.39 ms). More tokens: 2 rows x up to 3
     * tokens keep the sums (and the K-quants' int sums) in registers */
    if (T == 1 && (wt == DTYPE_Q8_0 || wt == DTYPE_Q4_0))
        for (; n + 4 <= n1; n += 4) {
            q.w = (const char *)w + (size_t)n * q.wrow;
            tile(4, 1, wt, y, ldy, &q, n, 0, accumulate);
        }
    for (; n + 2 <= n1; n += 2) {
        q.w = (const char *)w + (size_t)n * q.wrow;
        tokens(2, wt, y, ldy, q, T, n, accumulate);
    }
    for (; n < n1; n++) {
        q.w = (const char *)w + (size_t)n * q.wrow;
        tokens(1, wt, y, ldy, q, T, n, accumulate);
    }
}

QAVX2 void matmul_q_avx2(float *y, int ldy, const void *xq, const void *w, enum dtype wt,
                         int T, int K, int n0, int n1, bool accumulate)
{
    switch (wt) {
    case DTYPE_Q8_0: matmul_q_typed(DTYPE_Q8_0, y, ldy, xq, w, T, K, n0, n1, accumulate); break;
    case DTYPE_Q4_0: matmul_q_typed(DTYPE_Q4_0, y, ldy, xq, w, T, K, n0, n1, accumulate); break;
    case DTYPE_Q4_K: matmul_q_typed(DTYPE_Q4_K, y, ldy, xq, w, T, K, n0, n1, accumulate); break;
    case DTYPE_Q6_K: matmul_q_typed(DTYPE_Q6_K, y, ldy, xq, w, T, K, n0, n1, accumulate); break;
    default: matmul_q_ref(y, ldy, xq, w, wt, T, K, n0, n1, accumulate); break;
    }
}
